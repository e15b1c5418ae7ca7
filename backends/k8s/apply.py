"""Apply and wait, async: each blocking call runs in ``asyncio.to_thread``; sleeps are ``asyncio.sleep`` (so a
Ctrl-C stops a wait at once).

- ``apply_all``: server-side apply of many objects in a safe order, one progress callback per object.
- ``missing_objects``: which of the given objects are not on the server (one list call per kind/namespace).
- ``wait_crds_established``, ``wait_deployments_available`` (naming the laggards and their conditions),
  ``wait_configmap_key``.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from .client import KubeClient, KubeError, group_of, obj_ref, time_scale

Progress = Callable[[int, int, str], None]  # (done, total, "Kind ns/name")

# Apply order (as kubectl/helm do): what others refer to goes first.
KIND_ORDER = [
    "Namespace", "CustomResourceDefinition", "PriorityClass", "ClusterRole", "ClusterRoleBinding",
    "ServiceAccount", "Secret", "ConfigMap", "Role", "RoleBinding", "Service",
    "Deployment", "StatefulSet", "DaemonSet", "Job",
]


class WaitTimeout(Exception):
    def __init__(self, message: str, laggards: list[dict] | None = None) -> None:
        super().__init__(message)
        self.laggards = laggards or []


def sort_for_apply(objs: list[dict]) -> list[dict]:
    def key(o: dict) -> int:
        k = o.get("kind", "")
        return KIND_ORDER.index(k) if k in KIND_ORDER else len(KIND_ORDER)
    return sorted(objs, key=key)  # stable: keeps the manifest order within a kind


# Called when another field manager owns fields an object sets: (object, the server's conflict text) -> True to
# take them over (force), after saying so; False (or raising) to stop.
OnConflict = Callable[[dict, str], Awaitable[bool]]


async def apply_all(client: KubeClient, objs: list[dict], progress: Progress | None = None,
                    on_conflict: OnConflict | None = None) -> list[dict]:
    """SSA every object (ordered by kind); returns what the server answered. A kind that the server does not know
    yet (a CRD just applied) is retried after re-reading discovery.

    Applied without ``force``: when another field manager owns a field we set, the API server answers 409 Conflict
    naming the managers and fields ("Server-Side Apply", Conflicts:
    https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts); then ``on_conflict`` decides
    (it says so, and may take the fields over with force); without it the conflict is raised."""
    ordered = sort_for_apply(objs)
    out = []
    for i, obj in enumerate(ordered, 1):
        ref = obj_ref(obj)
        force = False
        for attempt in range(20):
            try:
                live = await asyncio.to_thread(client.apply, obj, force=force)
                break
            except KubeError as exc:
                if exc.status == 404 and "no resource of kind" in exc.kube_message and attempt < 19:
                    client.forget_discovery(obj["apiVersion"])
                    await asyncio.sleep(max(0.01, 1.0 * time_scale()))
                    continue
                if exc.status == 409 and not force and on_conflict is not None \
                        and await on_conflict(obj, exc.kube_message):
                    force = True
                    continue
                raise
        out.append(live)
        if progress:
            progress(i, len(ordered), ref)
    return out


async def missing_objects(client: KubeClient, objs: list[dict]) -> list[str]:
    """``Kind ns/name`` of each object that is not on the server (read-only)."""
    missing: list[str] = []
    for (api_version, kind, ns), group in group_of(objs).items():
        try:
            res = await asyncio.to_thread(client.resource, api_version, kind)
        except KubeError as exc:
            if exc.status == 404:
                missing += [obj_ref(o) for o in group]
                continue
            raise
        items = await asyncio.to_thread(client.list, api_version, kind, ns if res.namespaced else None)
        have = {i.get("metadata", {}).get("name") for i in items}
        missing += [obj_ref(o) for o in group if o["metadata"]["name"] not in have]
    return missing


def object_record(obj: dict) -> dict[str, str]:
    """What the journal keeps of an object (enough to delete it, and to list it): apiVersion, kind, name, ns."""
    md = obj.get("metadata", {})
    rec = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": md["name"]}
    if md.get("namespace"):
        rec["namespace"] = md["namespace"]
    return rec


async def ask_consent(runtime: dict[str, Any], question: str) -> bool:
    """Consent for something the user must agree to (replacing what is not ours, applying what differs from the
    release): ``--yes`` (``runtime["assume_yes"]``) gives it; else the front-end's hook ``runtime["consent"]``
    (a callable taking the question, returning a bool or an awaitable of one; the wizard asks on screen);
    without either: no."""
    if runtime.get("assume_yes"):
        return True
    hook = runtime.get("consent")
    if hook is None:
        return False
    answer = hook(question)
    if asyncio.iscoroutine(answer) or isinstance(answer, asyncio.Future):
        answer = await answer
    return bool(answer)


def _cond(obj: dict, ctype: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def _interval(base: float) -> float:
    return max(0.01, base * time_scale())


async def wait_crds_established(client: KubeClient, names: list[str], *, timeout: float = 120.0,
                                interval: float = 2.0, on_wait: Callable[[list[str]], None] | None = None,
                                min_timeout: float = 2.0) -> None:
    deadline = time.monotonic() + max(timeout * time_scale(), min_timeout)
    pending = list(names)
    while True:
        still = []
        for n in pending:
            crd = await asyncio.to_thread(client.get, "apiextensions.k8s.io/v1", "CustomResourceDefinition", n)
            c = _cond(crd or {}, "Established")
            if not (c and c.get("status") == "True"):
                still.append(n)
        pending = still
        if not pending:
            return
        if on_wait:
            on_wait(pending)
        if time.monotonic() > deadline:
            raise WaitTimeout(f"CRDs not Established after {timeout:.0f}s: {', '.join(pending)}")
        await asyncio.sleep(_interval(interval))


def describe_deployment(d: dict) -> str:
    st = d.get("status") or {}
    conds = st.get("conditions") or []
    bits = [f"{c.get('type')}={c.get('status')}" + (f" ({c.get('reason')}: {c.get('message')})"
                                                     if c.get("reason") or c.get("message") else "")
            for c in conds]
    want = (d.get("spec") or {}).get("replicas", 1)
    return (f"{d['metadata']['name']}: {st.get('availableReplicas', 0) or 0}/{want} available"
            + (f"; {'; '.join(bits)}" if bits else "; no conditions yet"))


def deployment_available(d: dict) -> bool:
    c = _cond(d, "Available")
    if not (c and c.get("status") == "True"):
        return False
    st = d.get("status") or {}
    gen, seen = d.get("metadata", {}).get("generation"), st.get("observedGeneration")
    return gen is None or seen is None or seen >= gen


async def wait_deployments_available(client: KubeClient, namespace: str, names: list[str] | None = None, *,
                                     timeout: float = 900.0, interval: float = 5.0,
                                     progress: Callable[[int, int, list[str]], None] | None = None,
                                     min_timeout: float = 2.0) -> list[dict]:
    """Wait until every Deployment (of ``names``, or all in the namespace) is Available.
    On timeout raises ``WaitTimeout`` naming each laggard with its conditions. ``timeout`` and ``interval`` are
    seconds at speed 1 (scaled by ``MLOPS_INSTALL_TIME_SCALE``); ``min_timeout`` is real seconds."""
    deadline = time.monotonic() + max(timeout * time_scale(), min_timeout)
    last: tuple[int, int] | None = None
    while True:
        items = await asyncio.to_thread(client.list, "apps/v1", "Deployment", namespace)
        by_name = {d["metadata"]["name"]: d for d in items}
        wanted = names if names is not None else sorted(by_name)
        lag = [n for n in wanted if n not in by_name or not deployment_available(by_name[n])]
        ready = len(wanted) - len(lag)
        if progress and (ready, len(wanted)) != last:
            progress(ready, len(wanted), lag)
            last = (ready, len(wanted))
        if wanted and not lag:
            return [by_name[n] for n in wanted]
        if time.monotonic() > deadline:
            laggards = [by_name[n] for n in lag if n in by_name]
            text = "; ".join([describe_deployment(d) for d in laggards]
                             + [f"{n}: not found" for n in lag if n not in by_name]) or "no Deployments found"
            raise WaitTimeout(f"{len(lag)} of {len(wanted)} Deployments in {namespace} not Available after "
                              f"{timeout:.0f}s: {text}", laggards)
        await asyncio.sleep(_interval(interval))


async def wait_configmap_key(client: KubeClient, namespace: str, name: str, key: str, *, timeout: float = 600.0,
                             interval: float = 5.0, on_wait: Callable[[], None] | None = None,
                             min_timeout: float = 2.0) -> str:
    deadline = time.monotonic() + max(timeout * time_scale(), min_timeout)
    while True:
        cm = await asyncio.to_thread(client.get, "v1", "ConfigMap", name, namespace)
        val = ((cm or {}).get("data") or {}).get(key)
        if val:
            return val
        if on_wait:
            on_wait()
        if time.monotonic() > deadline:
            state = "does not exist" if cm is None else f"has no {key!r} yet"
            raise WaitTimeout(f"ConfigMap {namespace}/{name} {state} after {timeout:.0f}s")
        await asyncio.sleep(_interval(interval))


def strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - small helper
    md = {k: v for k, v in obj.get("metadata", {}).items()
          if k in ("name", "namespace", "labels", "annotations")}
    return {**{k: v for k, v in obj.items() if k not in ("status", "metadata")}, "metadata": md}
