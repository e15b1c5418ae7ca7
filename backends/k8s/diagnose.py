"""Why a Deployment is not Available, at the level a person would look: its pods' waiting reasons, restarts, the
last Warning event, and the last log lines of a container that keeps exiting (as ``kubectl describe pod`` and
``kubectl logs --previous`` show them). Read-only; blocking (call through ``asyncio.to_thread``)."""
from __future__ import annotations

from typing import Any

from .client import KubeClient, KubeError


def selector(dep: dict) -> str:
    """The label selector of a Deployment's pods (its matchLabels)."""
    labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def pod_state(pod: dict) -> tuple[str, str, str | None]:
    """(reason, message, container to read the previous log of) for a pod that is not Ready; ("", "", None) when
    it is Ready. Reasons as kubelet and the scheduler give them: Unschedulable, CreateContainerConfigError,
    ContainerCreating, CrashLoopBackOff, Error, ..."""
    st = pod.get("status") or {}
    conds = {c.get("type"): c for c in st.get("conditions") or []}
    sched = conds.get("PodScheduled") or {}
    if sched.get("status") == "False":
        return sched.get("reason") or "Unschedulable", sched.get("message") or "", None
    if (conds.get("Ready") or {}).get("status") == "True":
        return "", "", None
    for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        if cs.get("ready"):
            continue
        waiting = (cs.get("state") or {}).get("waiting") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        restarts = cs.get("restartCount") or 0
        if waiting:
            msg = waiting.get("message") or ""
            if last:
                msg = (f"exit code {last.get('exitCode')} ({last.get('reason') or 'Error'}), {restarts} restart(s)"
                       + (f"; {msg}" if msg and waiting.get("reason") != "CrashLoopBackOff" else ""))
            return waiting.get("reason") or "Waiting", msg, cs.get("name") if last else None
        if (cs.get("state") or {}).get("running"):
            return "NotReady", f"container {cs.get('name')} is running but not ready", None
    return st.get("phase") or "Pending", st.get("message") or "", None


def explain(client: KubeClient, namespace: str, deployments: list[dict], *, log_lines: int = 3) -> dict[str, str]:
    """``{deployment name: one line}`` saying why each of ``deployments`` is not Available."""
    try:
        events = client.list("v1", "Event", namespace)
    except KubeError:
        events = []
    warnings: dict[str, dict] = {}
    for ev in events:
        inv = ev.get("involvedObject") or {}
        if ev.get("type") == "Warning" and inv.get("kind") == "Pod":
            prev = warnings.get(inv.get("name"))
            if prev is None or (ev.get("lastTimestamp") or "") >= (prev.get("lastTimestamp") or ""):
                warnings[inv.get("name")] = ev
    out: dict[str, str] = {}
    for dep in deployments:
        name = dep["metadata"]["name"]
        pods = client.list("v1", "Pod", namespace, label_selector=selector(dep)) if selector(dep) else []
        if not pods:
            out[name] = "no pod yet" + _rs_hint(client, namespace, dep)
            continue
        reason, message, crashed = "", "", None
        pod: dict[str, Any] = pods[0]
        for p in pods:
            reason, message, crashed = pod_state(p)
            if reason:
                pod = p
                break
        line = f"{reason or 'Ready'}" + (f": {message}" if message else "")
        ev = warnings.get(pod["metadata"]["name"])
        if ev and ev.get("message") and ev.get("message") not in line:
            line += f"; last event {ev.get('reason')}: {ev.get('message')}"
        if crashed:
            try:
                tail = client.logs(namespace, pod["metadata"]["name"], crashed, tail=log_lines, previous=True)
            except KubeError:
                tail = ""
            tail = " | ".join(x.strip() for x in tail.strip().splitlines()[-log_lines:] if x.strip())
            if tail:
                line += f"; log: {tail}"
        out[name] = f"pod {pod['metadata']['name']}: {line}"
    return out


def _rs_hint(client: KubeClient, namespace: str, dep: dict) -> str:
    """Why the ReplicaSet made no pod (e.g. a missing ServiceAccount): its last FailedCreate event."""
    try:
        events = client.list("v1", "Event", namespace)
    except KubeError:
        return ""
    msgs = [e.get("message") for e in events if e.get("reason") == "FailedCreate"
            and (e.get("involvedObject") or {}).get("name", "").startswith(dep["metadata"]["name"] + "-")]
    return f" ({msgs[-1]})" if msgs else ""
