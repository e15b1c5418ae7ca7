# Over ~500 lines, one job: the pod lifecycle below, one pass over a Pod's state from scheduling to restarts.
"""The pod lifecycle of a sandbox cluster: what kube-scheduler and kubelet do to a Pod a ReplicaSet made.

1. Scheduling (kube-scheduler, NodeResourcesFit + NodeAffinity filters, LeastAllocated scoring): the sum of the
   pods' ``resources.requests`` per node against ``status.allocatable``; no node fits -> ``Pending``,
   ``PodScheduled=False/Unschedulable`` and a ``FailedScheduling`` event with the scheduler's text.
2. Volumes (kubelet's volume manager): a missing Secret/ConfigMap behind a ``secret``, ``configMap`` or
   ``projected`` volume keeps the pod ``ContainerCreating`` with ``FailedMount`` events.
3. Container config (kubelet, makeEnvironmentVariables): a missing object or key behind ``env.valueFrom`` or
   ``envFrom`` -> waiting ``CreateContainerConfigError`` and a ``Failed`` event. Re-checked at each pass.
4. Start: the cluster's judge (``runtime.py``) says whether the process runs (``Verdict``); a failing one
   terminates, kubelet restarts it after a back-off of 10 s doubling up to 300 s (``CrashLoopBackOff``) and asks
   the judge again at each restart, so a fix made meanwhile lets it start on the next try.

Each pod's lifecycle state lives in its record's ``sim`` (persisted with the object, wall-clock seconds):
``start_at`` (when its containers may start: the Deployment's rollout delay) and per container ``cs[name]``.
The Pod's ``status`` is derived from that state and committed only when it changes.
"""
from __future__ import annotations

import hashlib
import logging
import random
import time
from typing import Callable

from . import errors as E
from .cluster import Cluster
from .objects import now_ts
from .nodes import pod_requests, quantity
from .patch import fast_copy
from .runtime import Judge, Verdict

log = logging.getLogger("sandbox.kube")
INF = float("inf")
# kubelet's container restart back-off: 10 s, doubled after each failure, capped at 300 s
# (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#restart-policy; kubelet's
# pkg/kubelet/kubelet.go: backOffPeriod = 10 s, MaxContainerBackOff = 300 s)
BACKOFF_S, BACKOFF_MAX_S = 10.0, 300.0
PROBE_PERIOD_S = 10.0  # readinessProbe.periodSeconds default (https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/#configure-probes)
SCHEDULER = "default-scheduler"


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for whole seconds: 10s, 1m20s, 5m0s (as kubelet's messages print it)."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s"


# ---------------------------------------------------------------------------------------------- the judge's view
class View:
    """``runtime.ClusterView`` over a Cluster's stored objects (read-only: callers must not modify them)."""

    def __init__(self, cluster: Cluster):
        self.c = cluster
        self.name = cluster.name
        self._keys: dict[str, tuple[str, bool] | None] = {}

    def _key(self, kind: str) -> tuple[str, bool] | None:
        if kind not in self._keys:
            found = None
            for r in self.c.resources.values():
                if r.kind == kind and (found is None or r.group in ("", "apps")):
                    found = (r.store_key, r.namespaced)
            self._keys[kind] = found
        return self._keys[kind]

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        k = self._key(kind)
        if k is None:
            return None
        rec = self.c.data.get(k[0], {}).get((namespace if k[1] else "", name))
        return rec["obj"] if rec else None

    def list(self, kind: str, namespace: str | None = None) -> list[dict]:
        k = self._key(kind)
        if k is None:
            return []
        return [rec["obj"] for (ns, _), rec in sorted(self.c.data.get(k[0], {}).items())
                if namespace is None or ns == namespace]

    def deployment_available(self, namespace: str, name: str) -> bool:
        dep = self.get("Deployment", namespace, name)
        return any(c.get("type") == "Available" and c.get("status") == "True"
                   for c in ((dep or {}).get("status") or {}).get("conditions") or [])

    def node(self, name: str) -> dict | None:
        return self.get("Node", "", name)

    def revision(self, kind: str) -> int:
        k = self._key(kind)
        return self.c.rv_of_kind(k[0]) if k else 0


# ---------------------------------------------------------------------------------------------- events
class Events:
    """Records Events as the components do; a repeat of the same (object, reason, message) bumps the first one's
    ``count`` and ``lastTimestamp`` (client-go's event correlator, tools/record/events_cache.go)."""

    def __init__(self, cluster: Cluster):
        self.c = cluster
        self._seen: dict[tuple, tuple[str, str]] = {}

    def emit(self, obj: dict, reason: str, message: str, component: str, etype: str = "Normal") -> None:
        md = obj["metadata"]
        ns = md.get("namespace") or "default"
        res = self.c.lookup("", "v1", "events")
        if self.c.data.get("core~namespaces", {}).get(("", ns)) is None:
            return
        ts = now_ts()
        key = (md["uid"], reason, message, etype)
        try:
            seen = self._seen.get(key)
            rec = self.c.get_record(res, *seen) if seen else None
            if rec is not None:
                new = fast_copy(rec["obj"])
                new["count"] = int(new.get("count") or 1) + 1
                new["lastTimestamp"] = ts
                self.c.commit(res, new, "MODIFIED", rec["obj"])
                return
            name = f"{md['name']}.{random.getrandbits(64):016x}"[:253]
            ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
                  "involvedObject": {"kind": obj.get("kind"), "namespace": md.get("namespace"), "name": md["name"],
                                     "uid": md["uid"], "apiVersion": obj.get("apiVersion"),
                                     "resourceVersion": md.get("resourceVersion")},
                  "reason": reason, "message": message, "type": etype, "count": 1,
                  "source": {"component": component}, "firstTimestamp": ts, "lastTimestamp": ts,
                  "reportingComponent": component, "reportingInstance": ""}
            self.c.create(res, ns, ev, manager="kube-controller-manager")
            self._seen[key] = (ns, name)
        except E.ApiError:  # events are best effort, as in a real cluster
            pass


# ---------------------------------------------------------------------------------------------- the lifecycle
class PodLifecycle:
    def __init__(self, cluster: Cluster, speed: float, judge: Judge, events: Events,
                 log_entry: Callable[[dict], None] | None = None):
        self.c = cluster
        self.speed = speed
        self.judge = judge
        self.events = events
        self.view = View(cluster)
        self._log = log_entry
        self.pod_res = cluster.lookup("", "v1", "pods")

    # ------------------------------------------------------------------ admission (ReplicaSet controller side)
    def admission_error(self, namespace: str, spec: dict, generate_name: str) -> str:
        """Why the API server refuses the ReplicaSet's pod, or "" (the ServiceAccount admission plugin,
        plugin/pkg/admission/serviceaccount/admission.go)."""
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        if self.view.get("ServiceAccount", namespace, sa) is None:
            return (f'pods "{generate_name}" is forbidden: error looking up service account {namespace}/{sa}: '
                    f'serviceaccount "{sa}" not found')
        return ""

    # ------------------------------------------------------------------ one pass over one pod
    def step(self, rec: dict, now: float) -> float:
        """Advance one Pod (its stored record: scheduler, then kubelet); commit its status if it changed.
        Returns when it next needs a pass (INF: only when something it depends on changes)."""
        pod = rec["obj"]
        md = pod["metadata"]
        ns, name = md["namespace"], md["name"]
        if md.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return INF  # a terminated pod (restartPolicy Never) never runs again
        sim = rec.setdefault("sim", {})
        before = fast_copy(sim)
        spec = pod.get("spec") or {}
        due = INF
        if not spec.get("nodeName"):
            node, why = self._schedule(pod)
            if node is None:
                if sim.get("sched_msg") != why:
                    sim["sched_msg"] = why
                    self.events.emit(pod, "FailedScheduling", why, SCHEDULER, "Warning")
                    self._runtime(pod, "", False, "kube.scheduler.Unschedulable", why)
                self._commit(rec, self._status(pod, sim, now), before)
                return INF
            new = fast_copy(pod)
            new["spec"]["nodeName"] = node["metadata"]["name"]  # the binding
            sim.pop("sched_msg", None)
            sim["bound_at"] = now_ts()
            self.c.commit(self.pod_res, new, "MODIFIED", pod)
            self.events.emit(new, "Scheduled", f"Successfully assigned {ns}/{name} to {node['metadata']['name']}",
                             SCHEDULER)
            pod = rec["obj"]
            spec = pod["spec"]
        sim.setdefault("bound_at", now_ts())
        mount = self._mount_problem(pod)
        if mount:
            vol, msg = mount
            text = f'MountVolume.SetUp failed for volume "{vol}" : {msg}'
            if sim.get("mount_msg") != text:
                sim["mount_msg"] = text
                self.events.emit(pod, "FailedMount", text, "kubelet", "Warning")
                self._runtime(pod, "", False, "kubelet.FailedMount", text)
            self._commit(rec, self._status(pod, sim, now), before)
            return INF
        sim.pop("mount_msg", None)
        if now < sim.get("start_at", 0):
            self._commit(rec, self._status(pod, sim, now), before)
            return sim["start_at"]
        cstates = sim.setdefault("cs", {})
        for c in spec.get("containers") or []:
            cs = cstates.setdefault(c["name"], {"restarts": 0})
            due = min(due, self._container(pod, c, cs, now))
        self._commit(rec, self._status(pod, sim, now), before)
        return due

    def _commit(self, rec: dict, status: dict, sim_before: dict) -> None:
        cur = rec["obj"]
        if cur.get("status") != status:
            new = fast_copy(cur)
            new["status"] = status
            self.c.commit(self.pod_res, new, "MODIFIED", cur)
        elif rec.get("sim") != sim_before:
            md = cur["metadata"]
            self.c.persist(self.pod_res.store_key, rec, md["namespace"], md["name"])

    # ------------------------------------------------------------------ kube-scheduler
    def _schedule(self, pod: dict) -> tuple[dict | None, str]:
        """The node the scheduler binds the pod to, or (None, the FailedScheduling message).
        Filters: NodeAffinity (spec.nodeSelector) and NodeResourcesFit (cpu, memory, pods)
        (pkg/scheduler/framework/plugins/noderesources/fit.go); message: FitError.Error()
        (pkg/scheduler/framework/types.go) with the preemption's PostFilter text
        (pkg/scheduler/framework/preemption/preemption.go)."""
        nodes = [r["obj"] for r in self.c.data.get("core~nodes", {}).values()]
        want = pod_requests(pod.get("spec") or {})
        used: dict[str, list[float]] = {n["metadata"]["name"]: [0.0, 0.0, 0] for n in nodes}
        for prec in self.c.data.get("core~pods", {}).values():
            p = prec["obj"]
            node = (p.get("spec") or {}).get("nodeName")
            if node in used and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                r = pod_requests(p["spec"])
                u = used[node]
                u[0] += r["cpu"]
                u[1] += r["memory"]
                u[2] += 1
        selector = (pod.get("spec") or {}).get("nodeSelector") or {}
        reasons: dict[str, int] = {}
        post: dict[str, int] = {}
        fits = []
        for n in nodes:
            labels = n["metadata"].get("labels") or {}
            if any(labels.get(k) != v for k, v in selector.items()):
                why = ["node(s) didn't match Pod's node affinity/selector"]
                post["Preemption is not helpful for scheduling"] = post.get(
                    "Preemption is not helpful for scheduling", 0) + 1
            else:
                alloc = (n.get("status") or {}).get("allocatable") or {}
                u = used[n["metadata"]["name"]]
                why = []
                if u[2] + 1 > quantity(alloc.get("pods", 110)):
                    why.append("Too many pods")
                free_cpu = quantity(alloc.get("cpu", 0)) - u[0]
                free_mem = quantity(alloc.get("memory", 0)) - u[1]
                if want["cpu"] > free_cpu + 1e-9:
                    why.append("Insufficient cpu")
                if want["memory"] > free_mem:
                    why.append("Insufficient memory")
                if why:
                    post["No preemption victims found for incoming pod"] = post.get(
                        "No preemption victims found for incoming pod", 0) + 1
                else:
                    cpu_t, mem_t = quantity(alloc.get("cpu", 1)) or 1, quantity(alloc.get("memory", 1)) or 1
                    # LeastAllocated scoring (noderesources/least_allocated.go): most free share first
                    score = (free_cpu - want["cpu"]) / cpu_t + (free_mem - want["memory"]) / mem_t
                    fits.append((-score, u[2], n["metadata"]["name"], n))
            for w in why:
                reasons[w] = reasons.get(w, 0) + 1
        if fits:
            return min(fits, key=lambda f: f[:3])[3], ""
        total = len(nodes)
        hist = ", ".join(sorted(f"{v} {k}" for k, v in reasons.items()))
        msg = f"0/{total} nodes are available: {hist}." if hist else f"0/{total} nodes are available."
        if post:
            msg += (f" preemption: 0/{total} nodes are available: "
                    f"{', '.join(sorted(f'{v} {k}' for k, v in post.items()))}.")
        return None, msg

    # ------------------------------------------------------------------ kubelet: volumes and config
    def _mount_problem(self, pod: dict) -> tuple[str, str] | None:
        """(volume, error) of the first secret/configMap/projected volume whose object or key is missing
        (pkg/volume/secret/secret.go, pkg/volume/configmap/configmap.go, pkg/volume/projected/projected.go;
        the message: pkg/volume/util/operationexecutor/operation_generator.go)."""
        ns = pod["metadata"]["namespace"]
        for v in (pod.get("spec") or {}).get("volumes") or []:
            sources = []
            if v.get("secret"):
                sources.append(("Secret", v["secret"].get("secretName"), v["secret"]))
            if v.get("configMap"):
                sources.append(("ConfigMap", v["configMap"].get("name"), v["configMap"]))
            for s in (v.get("projected") or {}).get("sources") or []:
                if s.get("secret"):
                    sources.append(("Secret", s["secret"].get("name"), s["secret"]))
                if s.get("configMap"):
                    sources.append(("ConfigMap", s["configMap"].get("name"), s["configMap"]))
            for kind, oname, src in sources:
                obj = self.view.get(kind, ns, oname or "")
                if obj is None:
                    if not src.get("optional"):
                        return v.get("name", ""), f'{kind.lower()} "{oname}" not found'
                    continue
                data = {**(obj.get("data") or {}), **(obj.get("binaryData") or {})}
                for item in src.get("items") or []:
                    if item.get("key") not in data and not src.get("optional"):
                        # pkg/volume/secret/secret.go MakePayload
                        return v.get("name", ""), (f"references non-existent {kind.lower()} key: {item.get('key')}")
        return None

    def _config_problem(self, pod: dict, c: dict) -> str:
        """kubelet's makeEnvironmentVariables error for this container, or "" (pkg/kubelet/kubelet_pods.go:
        ``secret "x" not found`` from the API, ``couldn't find key k in Secret ns/x``)."""
        ns = pod["metadata"]["namespace"]
        for ef in c.get("envFrom") or []:
            for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                ref = ef.get(field)
                if ref and not ref.get("optional") and self.view.get(kind, ns, ref.get("name", "")) is None:
                    return f'{kind.lower()} "{ref.get("name")}" not found'
        for e in c.get("env") or []:
            vf = e.get("valueFrom") or {}
            for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = vf.get(field)
                if not ref:
                    continue
                obj = self.view.get(kind, ns, ref.get("name", ""))
                if obj is None:
                    if ref.get("optional"):
                        continue
                    return f'{kind.lower()} "{ref.get("name")}" not found'
                if ref.get("key") not in (obj.get("data") or {}) and not ref.get("optional"):
                    return f"couldn't find key {ref.get('key')} in {kind} {ns}/{ref.get('name')}"
        return ""

    # ------------------------------------------------------------------ kubelet: one container
    def _container(self, pod: dict, c: dict, cs: dict, now: float) -> float:
        """Advance one container's state (cs, in the pod's sim). Returns when it next needs a pass."""
        state = cs.get("state")
        if state == "done" or (state == "running" and cs.get("ready")):
            return INF
        if state in ("running", "crash") and now < cs.get("next_at", 0):
            return cs["next_at"]  # a back-off or the next readiness probe: the judge is not asked before
        problem = self._config_problem(pod, c)
        if problem:
            if state == "running":
                return INF  # env is resolved once, at container start: a running container keeps its values
            if cs.get("config_msg") != problem:
                cs["config_msg"] = problem
                # kuberuntime_container.go startContainer: ErrCreateContainerConfig, event "Failed" "Error: ..."
                self.events.emit(pod, "Failed", f"Error: {problem}", "kubelet", "Warning")
                self._runtime(pod, c["name"], False, "kubelet.CreateContainerConfigError", problem)
            cs["state"] = "config" if state != "crash" else "crash"
            cs["config_err"] = True
            return INF
        cs.pop("config_msg", None)
        cs.pop("config_err", None)
        verdict = self._judge(pod, c)
        ts = now_ts()
        never = (pod.get("spec") or {}).get("restartPolicy") == "Never"
        if verdict.completes or (never and not verdict.ok):
            # the process ran to its end; with restartPolicy Never kubelet does not restart it, whatever its exit
            # code (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#restart-policy)
            code = 0 if verdict.ok else verdict.exit_code
            self._runtime(pod, c["name"], verdict.ok, verdict.rule, verdict.message, verdict)
            self.events.emit(pod, "Pulled", f'Container image "{c.get("image")}" already present on machine',
                             "kubelet")
            self.events.emit(pod, "Created", f"Created container: {c['name']}", "kubelet")
            self.events.emit(pod, "Started", f"Started container {c['name']}", "kubelet")
            cs.update(state="done", ready=False, logs=list(verdict.logs),
                      end={"exitCode": code, "reason": "Completed" if code == 0 else verdict.reason,
                           "startedAt": ts, "finishedAt": ts,
                           "containerID": _container_id(pod, c["name"], cs.get("restarts", 0))})
            return INF
        if verdict.ok:
            was = (state, cs.get("ready"))
            if state != "running":
                if state == "crash":
                    cs["prev_logs"] = cs.get("logs")
                cs.update(state="running", started_at=ts, run_at=now, logs=list(verdict.logs) or [
                    f"{ts} sandbox: container {c['name']} ({c.get('image')}) started; this is a simulated pod, "
                    "it runs nothing"])
                if cs.get("restarts", 0) == 0:
                    self.events.emit(pod, "Pulled", f'Container image "{c.get("image")}" already present on '
                                     "machine", "kubelet")
                self.events.emit(pod, "Created", f"Created container: {c['name']}", "kubelet")
                self.events.emit(pod, "Started", f"Started container {c['name']}", "kubelet")
            cs["ready"] = verdict.ready
            if not verdict.ready:
                cs["next_at"] = now + _probe_period(c) * self.speed
                # pkg/kubelet/prober/prober.go: event Unhealthy "Readiness probe failed: <output>"
                self.events.emit(pod, "Unhealthy", f"Readiness probe failed: {_probe_output(pod, c)}", "kubelet",
                                 "Warning")
            else:
                cs.pop("next_at", None)
            if was != ("running", verdict.ready):
                self._runtime(pod, c["name"], True, verdict.rule, verdict.message, verdict)
            return cs.get("next_at", INF)
        # the process exited: kubelet restarts it after a back-off (CrashLoopBackOff)
        if cs.get("state") != "crash" or cs.get("rule") != verdict.rule:
            self._runtime(pod, c["name"], False, verdict.rule, verdict.message, verdict)
        if state != "crash":
            self.events.emit(pod, "Pulled", f'Container image "{c.get("image")}" already present on machine',
                             "kubelet")
        self.events.emit(pod, "Created", f"Created container: {c['name']}", "kubelet")
        self.events.emit(pod, "Started", f"Started container {c['name']}", "kubelet")
        restarts = cs.get("restarts", 0) + 1
        backoff = min(BACKOFF_S * 2 ** (restarts - 1), BACKOFF_MAX_S)
        cid = _container_id(pod, c["name"], restarts - 1)  # the attempt that just ended
        cs.update(state="crash", ready=False, restarts=restarts, rule=verdict.rule, backoff=backoff,
                  next_at=now + backoff * self.speed, logs=list(verdict.logs),
                  last={"exitCode": verdict.exit_code, "reason": verdict.reason,
                        "startedAt": ts, "finishedAt": ts, "containerID": cid})
        # pkg/kubelet/kuberuntime/kuberuntime_manager.go doBackOff; event BackOff (events.BackOffStartContainer)
        self.events.emit(pod, "BackOff", f"Back-off restarting failed container {c['name']} in pod "
                         f"{_pod_ref(pod)}", "kubelet", "Warning")
        return cs["next_at"]

    def _judge(self, pod: dict, c: dict) -> Verdict:
        try:
            return self.judge(self.view, pod, c)
        except Exception as exc:  # noqa: BLE001 - a judge bug shows as a crashing container, never a dead loop
            log.exception("sandbox kube %s: the judge failed on %s/%s", self.c.name, pod["metadata"]["name"],
                          c.get("name"))
            return Verdict(False, logs=(f"sandbox: the runtime's judge raised {exc!r}",), rule="sandbox.judge-error",
                           message=f"the judge raised {exc!r}")

    def _runtime(self, pod: dict, container: str, ok: bool, rule: str, message: str,
                 verdict: Verdict | None = None) -> None:
        """A decision that changed a container's state, for the sandbox request log (``api: runtime``)."""
        if self._log is None:
            return
        md = pod["metadata"]
        entry = {"api": "runtime", "method": "RUNTIME", "status": 0, "mutating": False, "time": time.time(),
                 "path": f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}", "query": "",
                 "duration_ms": 0, "cluster": self.c.name, "namespace": md["namespace"], "pod": md["name"],
                 "container": container, "ok": ok, "rule": rule, "message": message}
        if verdict is not None:
            entry.update(ready=verdict.ready, source=verdict.source)
            if not verdict.ok:
                entry.update(exit_code=verdict.exit_code, reason=verdict.reason)
        try:
            self._log(entry)
        except Exception:  # noqa: BLE001
            pass

    # ------------------------------------------------------------------ the Pod's status
    def _status(self, pod: dict, sim: dict, now: float) -> dict:
        spec = pod.get("spec") or {}
        old = pod.get("status") or {}
        ts = now_ts()
        containers = spec.get("containers") or []
        qos = _qos(containers)
        if not spec.get("nodeName"):
            conds = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                      "message": sim.get("sched_msg", ""), "lastProbeTime": None, "lastTransitionTime": ts}]
            return {"phase": "Pending", "qosClass": qos,
                    "conditions": keep_times(old.get("conditions"), conds)}
        node = self.view.node(spec["nodeName"]) or {}
        host_ip = next((a["address"] for a in (node.get("status") or {}).get("addresses") or []
                        if a.get("type") == "InternalIP"), "10.128.0.10")
        cidr = (node.get("spec") or {}).get("podCIDR", "10.8.0.0/24").split("/")[0].rsplit(".", 1)[0]
        idx = int(hashlib.sha256(pod["metadata"]["uid"].encode()).hexdigest()[:4], 16) % 250
        pod_ip = f"{cidr}.{idx + 2}"
        mounted = not sim.get("mount_msg")
        started = mounted and now >= sim.get("start_at", 0)
        cstates = sim.get("cs") or {}
        statuses, unready, waiting_new, running, done = [], [], 0, 0, []
        for c in containers:
            cs = cstates.get(c["name"]) if started else None
            st = {"name": c["name"], "image": c.get("image"), "imageID": "", "ready": False,
                  "restartCount": (cs or {}).get("restarts", 0), "started": False, "lastState": {}}
            image_id = f"{c.get('image')}@sha256:{hashlib.sha256(str(c.get('image')).encode()).hexdigest()}"
            if cs and cs.get("last"):
                st["lastState"] = {"terminated": dict(cs["last"])}
                st["imageID"] = image_id
            state = (cs or {}).get("state")
            if state == "done":
                st.update(state={"terminated": dict(cs["end"])}, imageID=image_id,
                          containerID=cs["end"]["containerID"])
                done.append(cs["end"]["exitCode"])
            elif state == "running":
                st.update(state={"running": {"startedAt": cs["started_at"]}}, started=True, ready=cs.get("ready", True),
                          imageID=image_id, containerID=_container_id(pod, c["name"], cs.get("restarts", 0)))
                running += 1
            elif cs and cs.get("config_err") and not cs.get("last"):
                st["state"] = {"waiting": {"reason": "CreateContainerConfigError", "message": cs.get("config_msg", "")}}
                st["imageID"] = image_id
                waiting_new += 1
            elif state == "crash":
                msg = (f"back-off {go_duration(cs.get('backoff', BACKOFF_S))} restarting failed container="
                       f"{c['name']} pod={_pod_ref(pod)}")
                if cs.get("config_err"):
                    st["state"] = {"waiting": {"reason": "CreateContainerConfigError",
                                               "message": cs.get("config_msg", "")}}
                else:
                    st["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": msg}}
                st["containerID"] = cs["last"]["containerID"]
            else:
                st["state"] = {"waiting": {"reason": "ContainerCreating"}}
                waiting_new += 1
            if not st["ready"]:
                unready.append(c["name"])
            statuses.append(st)
        # kubelet getPhase (pkg/kubelet/kubelet_pods.go): a container that never ran keeps the pod Pending;
        # restarting ones (restartPolicy Always) count as Running
        phase = "Pending" if waiting_new else "Running"
        if containers and len(done) == len(containers):  # every container terminated (restartPolicy Never)
            phase = "Succeeded" if not any(done) else "Failed"
        all_ready = not unready
        bound = sim.get("bound_at") or ts
        conds = [
            {"type": "PodReadyToStartContainers", "status": "True" if mounted else "False"},
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "True" if all_ready else "False"},
            {"type": "ContainersReady", "status": "True" if all_ready else "False"},
            {"type": "PodScheduled", "status": "True"},
        ]
        for cd in conds:
            cd.update(lastProbeTime=None, lastTransitionTime=bound if cd["type"] == "PodScheduled" else ts)
            if cd["type"] in ("Ready", "ContainersReady") and phase in ("Succeeded", "Failed"):
                cd.update(reason="PodCompleted")
            elif cd["type"] in ("Ready", "ContainersReady") and not all_ready:
                cd.update(reason="ContainersNotReady", message=f"containers with unready status: [{' '.join(unready)}]")
        out = {"phase": phase, "conditions": keep_times(old.get("conditions"), conds), "hostIP": host_ip,
               "hostIPs": [{"ip": host_ip}], "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "qosClass": qos,
               "startTime": bound, "containerStatuses": statuses}
        return out

    # ------------------------------------------------------------------ kubectl logs
    def logs(self, pod: dict, container: str, previous: bool, tail: int | None) -> str:
        """What ``GET .../pods/<p>/log`` answers: the apiserver's container checks (pkg/registry/core/pod/strategy.go
        LogLocation) and kubelet's (pkg/kubelet/kubelet_pods.go validateContainerLogStatus)."""
        name = pod["metadata"]["name"]
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        if not container:
            if len(containers) != 1:
                raise E.bad_request(f"a container name must be specified for pod {name}, choose one of: "
                                    f"[{' '.join(containers)}]")
            container = containers[0]
        elif container not in containers:
            raise E.bad_request(f"container {container} is not valid for pod {name}")
        if not (pod.get("spec") or {}).get("nodeName"):
            return ""  # not scheduled: no kubelet to ask, the apiserver streams nothing
        rec = self.c.get_record(self.pod_res, pod["metadata"]["namespace"], name) or {}
        cs = ((rec.get("sim") or {}).get("cs") or {}).get(container) or {}
        st = next((s for s in (pod.get("status") or {}).get("containerStatuses") or [] if s["name"] == container), {})
        if previous:
            if not (st.get("lastState") or {}).get("terminated"):
                raise E.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
            lines = cs.get("prev_logs") if cs.get("state") == "running" else cs.get("logs")
        elif "running" in (st.get("state") or {}) or "terminated" in (st.get("state") or {}):
            lines = cs.get("logs")
        elif (st.get("lastState") or {}).get("terminated"):
            lines = cs.get("logs")  # restarting: the last terminated run's output
        else:
            reason = ((st.get("state") or {}).get("waiting") or {}).get("reason", "ContainerCreating")
            raise E.bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        lines = list(lines or [])
        if tail is not None and tail >= 0:
            lines = lines[len(lines) - tail:] if tail else []
        return "".join(line + "\n" for line in lines)


# ---------------------------------------------------------------------------------------------- helpers
def _pod_ref(pod: dict) -> str:
    """kubelet's format.Pod: name_namespace(uid) (pkg/kubelet/util/format/pod.go)."""
    md = pod["metadata"]
    return f"{md['name']}_{md['namespace']}({md['uid']})"


def _container_id(pod: dict, name: str, attempt: int) -> str:
    return "containerd://" + hashlib.sha256(f"{pod['metadata']['uid']}/{name}/{attempt}".encode()).hexdigest()


def _probe_period(c: dict) -> float:
    return float((c.get("readinessProbe") or {}).get("periodSeconds") or PROBE_PERIOD_S)


def _probe_output(pod: dict, c: dict) -> str:
    """The prober's failure text for the container's readiness probe kind (pkg/probe/http, pkg/probe/tcp)."""
    probe = c.get("readinessProbe") or {}
    if probe.get("tcpSocket"):
        port = probe["tcpSocket"].get("port")
        ip = (pod.get("status") or {}).get("podIP", "10.8.0.2")
        return f"dial tcp {ip}:{port}: connect: connection refused"
    if probe.get("exec"):
        return "command exited with a non-zero status"
    return "HTTP probe failed with statuscode: 503"


def _qos(containers: list[dict]) -> str:
    """https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/"""
    any_set, guaranteed = False, True
    for c in containers:
        res = c.get("resources") or {}
        lim, req = res.get("limits") or {}, {**(res.get("limits") or {}), **(res.get("requests") or {})}
        if lim or req:
            any_set = True
        for k in ("cpu", "memory"):
            if k not in lim or quantity(req.get(k, 0)) != quantity(lim[k]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def keep_times(old: list | None, new: list, also: tuple = ()) -> list:
    """Keep lastTransitionTime (and `also` fields) of conditions whose status did not change."""
    prev = {c.get("type"): c for c in old or []}
    out = []
    for c in new:
        p = prev.get(c["type"])
        if p and p.get("status") == c["status"]:
            c = dict(c)
            if "lastTransitionTime" in p:
                c["lastTransitionTime"] = p["lastTransitionTime"]
            if p.get("reason") == c.get("reason"):
                for k in also:
                    if k in p:
                        c[k] = p[k]
        out.append(c)
    return out
