"""Simulated controllers: CRD establishment, Deployment/StatefulSet rollout (with ReplicaSets and Pods),
namespace termination, and the KFP inverse-proxy agent writing `Hostname` into ConfigMap `inverse-proxy-config`.

Transitions are computed from timestamps stored with each object (`rec["sim"]`, wall-clock seconds), so they
survive a restart of the server. Delays are profile seconds multiplied by `speed`.
"""
from __future__ import annotations


from .patch import fast_copy
import hashlib
import json
import random
import time

from .cluster import Cluster, _condition_true, now_ts
from .resources import Resource
from .runtime import Judge, allow_all

CRD_ESTABLISH_S = 1.0          # real API servers establish a CRD within about a second
DEPLOY_MIN_S, DEPLOY_SPAN_S = 30.0, 150.0   # first rollout: 30..180 s (the KFP profile: all pods Ready ~180 s)
REROLL_MIN_S, REROLL_SPAN_S = 10.0, 20.0    # later rollouts
PROXY_HOSTNAME_S = 20.0        # the agent registers, then patches the ConfigMap
NS_TERMINATE_S = 5.0
HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
MANAGER = "kube-controller-manager"


def _stable_fraction(*parts: str) -> float:
    h = hashlib.sha256("/".join(parts).encode()).digest()
    return int.from_bytes(h[:4], "big") / 2**32


def _hash_str(data: str, n: int) -> str:
    h = hashlib.sha256(data.encode()).digest()
    return "".join(HASH_ALPHABET[b % len(HASH_ALPHABET)] for b in h[:n])


class Simulator:
    def __init__(self, cluster: Cluster, speed: float, region: str = "us-central1", judge: Judge = allow_all):
        self.c = cluster
        self.judge = judge
        self.speed = speed
        self.region = region
        self._settled: dict[tuple, tuple] = {}  # workload -> signature of the state last reconciled
        cluster.on_commit.append(self._on_commit)

    # -------------------------------------------------------------- commit hook: record when things started
    def _on_commit(self, res: Resource, etype: str, obj: dict, old: dict | None) -> None:
        if etype == "DELETED":
            if res.kind in ("Pod", "ReplicaSet"):
                self._settled.clear()  # a workload lost a Pod or ReplicaSet: reconcile (and replace) it
            return
        md = obj["metadata"]
        rec = self.c.get_record(res, md.get("namespace", ""), md["name"])
        if rec is None:
            return
        sim = rec.setdefault("sim", {})
        now = time.time()
        changed = False
        if res.kind == "CustomResourceDefinition":
            if "established_at" not in sim:
                sim["established_at"] = now + CRD_ESTABLISH_S * self.speed
                changed = True
            elif etype == "MODIFIED":
                self.c.rebuild_registry()  # served versions may have changed
        elif res.kind in ("Deployment", "StatefulSet", "DaemonSet"):
            gen = md.get("generation", 1)
            if sim.get("gen") != gen:
                first = "gen" not in sim
                f = _stable_fraction(self.c.name, md.get("namespace", ""), md["name"], str(gen))
                delay = (DEPLOY_MIN_S + f * DEPLOY_SPAN_S) if first else (REROLL_MIN_S + f * REROLL_SPAN_S)
                sim.update({"gen": gen, "gen_at": now, "ready_at": now + delay * self.speed})
                changed = True
        elif res.kind == "Namespace" and md.get("deletionTimestamp") and "terminate_at" not in sim:
            sim["terminate_at"] = now + NS_TERMINATE_S * self.speed
            changed = True
        if changed:
            self.c._persist(res.store_key, rec, md.get("namespace", ""), md["name"])

    # -------------------------------------------------------------- the periodic pass
    def tick(self) -> None:
        now = time.time()
        self._crds(now)
        for kind_key in ("apps~deployments", "apps~statefulsets", "apps~daemonsets"):
            res = self.c._resource_for_store_key(kind_key)
            for rec in list(self.c.data.get(kind_key, {}).values()):
                self._workload(res, rec, now)
        self._namespaces(now)

    def _crds(self, now: float) -> None:
        res = self.c.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        changed = False
        for rec in list(self.c.data.get(res.store_key, {}).values()):
            crd = rec["obj"]
            if crd["metadata"].get("deletionTimestamp"):
                continue
            sim = rec.setdefault("sim", {})
            est_at = sim.get("established_at", 0)
            status = crd.get("status") or {}
            names_ok = _condition_true(crd, "NamesAccepted")
            est_ok = _condition_true(crd, "Established")
            want_names = crd["spec"]["names"]
            if names_ok and est_ok and status.get("acceptedNames") == _accepted(want_names):
                continue
            if names_ok and not est_ok and now < est_at and status.get("acceptedNames") == _accepted(want_names):
                continue
            new = fast_copy(crd)
            ts = now_ts()
            conds = [{"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                      "message": "no conflicts found", "lastTransitionTime": ts}]
            if now >= est_at:
                conds.append({"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                              "message": "the initial names have been accepted", "lastTransitionTime": ts})
            else:
                conds.append({"type": "Established", "status": "False", "reason": "Installing",
                              "message": "the initial names have not been accepted", "lastTransitionTime": ts})
            new["status"] = {"conditions": _keep_times(status.get("conditions"), conds),
                             "acceptedNames": _accepted(want_names),
                             "storedVersions": sorted({v["name"] for v in crd["spec"]["versions"]
                                                       if v.get("storage")} |
                                                      set(status.get("storedVersions") or []))}
            self.c.commit(res, new, "MODIFIED", crd)
            changed = True
        if changed:
            self.c.rebuild_registry()

    # -------------------------------------------------------------- workloads
    def _workload(self, res: Resource, rec: dict, now: float) -> None:
        obj = rec["obj"]
        md = obj["metadata"]
        if md.get("deletionTimestamp"):
            return
        sim = rec.get("sim") or {}
        gen = md.get("generation", 1)
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        if res.kind == "DaemonSet":
            replicas = len(self.c.data.get("core~nodes", {}))
        ready = now >= sim.get("ready_at", 0) and sim.get("gen") == gen
        key = (res.store_key, md.get("namespace", ""), md["name"])
        sig = (md["resourceVersion"], ready,
               self.c.rv_of_kind("core~configmaps") if md["name"] == "proxy-agent" else 0, sim.get("hostname_at"),
               now >= (sim.get("hostname_at") or float("inf")))
        if self._settled.get(key) == sig:
            return
        status = obj.get("status") or {}
        want = self._status(res, obj, status, replicas, ready, gen)
        if res.kind == "Deployment":
            self._pods_for_deployment(obj, replicas, ready)
        if want != status:
            new = fast_copy(obj)
            new["status"] = want
            self.c.commit(res, new, "MODIFIED", obj)
            if res.kind == "Deployment" and ready and md["name"] == "proxy-agent" and "hostname_at" not in sim:
                rec2 = self.c.get_record(res, md.get("namespace", ""), md["name"])
                rec2.setdefault("sim", {})["hostname_at"] = now + PROXY_HOSTNAME_S * self.speed
                self.c._persist(res.store_key, rec2, md.get("namespace", ""), md["name"])
        if res.kind == "Deployment" and md["name"] == "proxy-agent":
            at = (self.c.get_record(res, md.get("namespace", ""), md["name"]) or {}).get("sim", {}).get("hostname_at")
            if at and now >= at:
                self._inverse_proxy(md.get("namespace", ""))
        cur = self.c.get_record(res, md.get("namespace", ""), md["name"])
        if cur is not None:
            csim = cur.get("sim") or {}
            self._settled[key] = (cur["obj"]["metadata"]["resourceVersion"], ready,
                                  self.c.rv_of_kind("core~configmaps") if md["name"] == "proxy-agent" else 0,
                                  csim.get("hostname_at"), now >= (csim.get("hostname_at") or float("inf")))

    def _status(self, res: Resource, obj: dict, status: dict, replicas: int, ready: bool, gen: int) -> dict:
        ts = now_ts()
        old_conds = status.get("conditions") or []
        if res.kind == "DaemonSet":
            n = replicas
            return {"currentNumberScheduled": n, "desiredNumberScheduled": n, "numberMisscheduled": 0,
                    "numberReady": n if ready else 0, "numberAvailable": n if ready else 0,
                    "updatedNumberScheduled": n, "observedGeneration": gen,
                    **({} if ready else {"numberUnavailable": n})}
        if res.kind == "StatefulSet":
            out = {"observedGeneration": gen, "replicas": replicas, "currentReplicas": replicas,
                   "updatedReplicas": replicas, "collisionCount": 0,
                   "currentRevision": f"{obj['metadata']['name']}-{_hash_str(json.dumps(obj['spec'].get('template'), sort_keys=True), 10)}",
                   "updateRevision": f"{obj['metadata']['name']}-{_hash_str(json.dumps(obj['spec'].get('template'), sort_keys=True), 10)}"}
            if ready:
                out.update({"readyReplicas": replicas, "availableReplicas": replicas})
            else:
                out["availableReplicas"] = 0
            return out
        if res.kind == "ReplicaSet":
            out = {"observedGeneration": gen, "replicas": replicas, "fullyLabeledReplicas": replicas}
            if ready and replicas:
                out.update({"readyReplicas": replicas, "availableReplicas": replicas})
            return out
        # Deployment
        was_available = any(c.get("type") == "Available" and c.get("status") == "True" for c in old_conds)
        out = {"observedGeneration": gen, "replicas": replicas, "updatedReplicas": replicas if ready else 0}
        if ready or replicas == 0:
            if replicas:
                out.update({"readyReplicas": replicas, "availableReplicas": replicas})
            conds = [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability."},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": f'ReplicaSet "{self._rs_name(obj)}" has successfully progressed.'},
            ]
        else:
            if was_available:
                prev = status.get("availableReplicas", 0)
                out.update({"readyReplicas": prev, "availableReplicas": prev})
                conds = [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                          "message": "Deployment has minimum availability."}]
            else:
                out["unavailableReplicas"] = replicas
                conds = [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                          "message": "Deployment does not have minimum availability."}]
            conds.append({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                          "message": f'ReplicaSet "{self._rs_name(obj)}" is progressing.'})
        for c in conds:
            c["lastUpdateTime"] = ts
            c["lastTransitionTime"] = ts
        out["conditions"] = _keep_times(old_conds, conds, also=("lastUpdateTime",))
        return out

    def _rs_name(self, dep: dict) -> str:
        tmpl = json.dumps((dep.get("spec") or {}).get("template") or {}, sort_keys=True)
        return f"{dep['metadata']['name']}-{_hash_str(tmpl, 10)}"

    def _pods_for_deployment(self, dep: dict, replicas: int, ready: bool) -> None:
        ns = dep["metadata"]["namespace"]
        rs_res = self.c.lookup("apps", "v1", "replicasets")
        pod_res = self.c.lookup("", "v1", "pods")
        rs_name = self._rs_name(dep)
        pod_hash = rs_name.rsplit("-", 1)[1]
        tmpl = fast_copy((dep.get("spec") or {}).get("template") or {})
        labels = dict((tmpl.get("metadata") or {}).get("labels") or {})
        labels["pod-template-hash"] = pod_hash
        owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"],
                 "uid": dep["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
        # old ReplicaSets of this Deployment: scale to 0 once the new one is ready
        for key, rec in list(self.c.data.get(rs_res.store_key, {}).items()):
            o = rec["obj"]
            refs = o["metadata"].get("ownerReferences") or []
            if key[0] == ns and any(r.get("uid") == owner["uid"] for r in refs) and o["metadata"]["name"] != rs_name:
                if ready and (o.get("spec") or {}).get("replicas", 0) != 0:
                    new = fast_copy(o)
                    new["spec"]["replicas"] = 0
                    new["status"] = {"replicas": 0, "observedGeneration": new["metadata"].get("generation", 1)}
                    self.c.commit(rs_res, new, "MODIFIED", o)
                    for _, pod in self.c._dependents(o["metadata"]["uid"]):
                        self.c._remove(pod_res, pod)
        rec = self.c.get_record(rs_res, ns, rs_name)
        if rec is None:
            sel = fast_copy((dep.get("spec") or {}).get("selector") or {})
            sel.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
            tmpl.setdefault("metadata", {})["labels"] = labels
            rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                  "metadata": {"name": rs_name, "namespace": ns, "labels": labels, "ownerReferences": [owner],
                               "annotations": {"deployment.kubernetes.io/revision": "1"}},
                  "spec": {"replicas": replicas, "selector": sel, "template": tmpl},
                  "status": {"replicas": 0}}
            self.c.create(rs_res, ns, rs, manager=MANAGER)
            rec = self.c.get_record(rs_res, ns, rs_name)
            self._event(dep, "ScalingReplicaSet", f"Scaled up replica set {rs_name} from 0 to {replicas}",
                        "deployment-controller")
        rs = rec["obj"]
        rs_status = {"replicas": replicas, "fullyLabeledReplicas": replicas,
                     "observedGeneration": rs["metadata"].get("generation", 1),
                     **({"readyReplicas": replicas, "availableReplicas": replicas} if ready and replicas else {})}
        if (rs.get("spec") or {}).get("replicas") != replicas or rs.get("status") != rs_status:
            new = fast_copy(rs)
            new["spec"]["replicas"] = replicas
            new["status"] = rs_status
            self.c.commit(rs_res, new, "MODIFIED", rs)
            rs = new
        rs_owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name, "uid": rs["metadata"]["uid"],
                    "controller": True, "blockOwnerDeletion": True}
        pods = [p for _, p in self.c._dependents(rs["metadata"]["uid"])]
        pods.sort(key=lambda p: p["metadata"]["name"])
        for extra in pods[replicas:]:
            self.c._remove(pod_res, extra)
        pods = pods[:replicas]
        rnd = random.Random()
        existing = {p["metadata"]["name"] for p in pods}
        while len(pods) < replicas:
            name = f"{rs_name}-{''.join(rnd.choice(HASH_ALPHABET) for _ in range(5))}"
            if name in existing:
                continue
            existing.add(name)
            nodes = sorted(k[1] for k in self.c.data.get("core~nodes", {}))
            spec = fast_copy(tmpl.get("spec") or {})
            spec["nodeName"] = nodes[len(pods) % len(nodes)] if nodes else ""
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": [rs_owner],
                                "annotations": dict((tmpl.get("metadata") or {}).get("annotations") or {})},
                   "spec": spec, "status": {"phase": "Pending"}}
            created = self.c.create(pod_res, ns, pod, manager=MANAGER)
            pods.append(created)
            self._event(rs, "SuccessfulCreate", f"Created pod: {name}", "replicaset-controller")
            self._event(created, "Scheduled", f"Successfully assigned {ns}/{name} to {spec['nodeName']}",
                        "default-scheduler")
        for p in pods:
            rec_p = self.c.get_record(pod_res, ns, p["metadata"]["name"])
            if rec_p is None:
                continue
            cur = rec_p["obj"]
            want = self._pod_status(cur, ready)
            if cur.get("status") != want:
                new = fast_copy(cur)
                new["status"] = want
                self.c.commit(pod_res, new, "MODIFIED", cur)
                if want.get("phase") == "Running" and (cur.get("status") or {}).get("phase") != "Running":
                    for c in (cur.get("spec") or {}).get("containers") or []:
                        self._event(new, "Pulled", f'Container image "{c.get("image")}" already present on '
                                    "machine", "kubelet")
                        self._event(new, "Created", f"Created container: {c.get('name')}", "kubelet")
                        self._event(new, "Started", f"Started container {c.get('name')}", "kubelet")

    def _pod_status(self, pod: dict, ready: bool) -> dict:
        old = pod.get("status") or {}
        containers = (pod.get("spec") or {}).get("containers") or []
        idx = sum(map(ord, pod["metadata"]["name"])) % 200
        base = {"hostIP": "10.128.0.10", "podIP": old.get("podIP") or f"10.8.{idx // 250}.{idx % 250 + 2}",
                "qosClass": "BestEffort", "startTime": old.get("startTime") or now_ts()}
        if not ready:
            return {**base, "phase": "Pending",
                    "conditions": [{"type": "PodScheduled", "status": "True"},
                                   {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                    "containerStatuses": [{"name": c.get("name"), "image": c.get("image"), "ready": False,
                                           "restartCount": 0, "started": False, "imageID": "",
                                           "state": {"waiting": {"reason": "ContainerCreating"}}}
                                          for c in containers]}
        if old.get("phase") == "Running":
            return old
        ts = now_ts()
        return {**base, "phase": "Running",
                "conditions": [{"type": t, "status": "True", "lastTransitionTime": ts}
                               for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
                "containerStatuses": [{"name": c.get("name"), "image": c.get("image"), "ready": True,
                                       "restartCount": 0, "started": True,
                                       "imageID": f"{c.get('image')}@sha256:{hashlib.sha256(str(c.get('image')).encode()).hexdigest()}",
                                       "containerID": f"containerd://{hashlib.sha256(pod['metadata']['name'].encode()).hexdigest()}",
                                       "state": {"running": {"startedAt": ts}}} for c in containers]}

    def _inverse_proxy(self, ns: str) -> None:
        res = self.c.lookup("", "v1", "configmaps")
        rec = self.c.get_record(res, ns, "inverse-proxy-config")
        data = (rec["obj"].get("data") or {}) if rec else {}
        if data.get("Hostname"):
            return
        rnd = random.Random(f"{self.c.name}/{ns}/inverse-proxy")
        backend = "".join(rnd.choice("0123456789abcdef") for _ in range(16))
        patch = {"data": {"Hostname": f"{backend}-dot-{self.region}.pipelines.googleusercontent.com",
                          "ProxyUrl": f"https://datalab-{self.region}.cloud.google.com/tun/m/4592f092208ecc84946b8f8f8016274df1b36a14",
                          "BackendId": backend}}
        if rec is None:
            self.c.create(res, ns, {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "inverse-proxy-config", "namespace": ns}, **patch},
                          manager="kubectl-create")
        else:
            self.c.patch(res, ns, "inverse-proxy-config", "application/merge-patch+json",
                         json.dumps(patch).encode(), manager="kubectl-patch")

    # -------------------------------------------------------------- events
    def _event(self, obj: dict, reason: str, message: str, component: str, etype: str = "Normal") -> None:
        md = obj["metadata"]
        ns = md.get("namespace") or "default"
        res = self.c.lookup("", "v1", "events")
        if self.c.data.get("core~namespaces", {}).get(("", ns)) is None:
            return
        ts = now_ts()
        name = f"{md['name']}.{_hash_str(md['uid'] + reason + message, 8)}{random.getrandbits(32):08x}"
        ev = {"apiVersion": "v1", "kind": "Event",
              "metadata": {"name": name[:253], "namespace": ns},
              "involvedObject": {"kind": obj.get("kind"), "namespace": md.get("namespace"), "name": md["name"],
                                 "uid": md["uid"], "apiVersion": obj.get("apiVersion"),
                                 "resourceVersion": md.get("resourceVersion")},
              "reason": reason, "message": message, "type": etype, "count": 1,
              "source": {"component": component}, "firstTimestamp": ts, "lastTimestamp": ts,
              "reportingComponent": component, "reportingInstance": ""}
        try:
            self.c.create(res, ns, ev, manager=MANAGER)
        except Exception:  # noqa: BLE001 - events are best effort, as in a real cluster
            pass

    # -------------------------------------------------------------- namespaces
    def _namespaces(self, now: float) -> None:
        res = self.c.lookup("", "v1", "namespaces")
        for rec in list(self.c.data.get(res.store_key, {}).values()):
            ns = rec["obj"]
            if not ns["metadata"].get("deletionTimestamp"):
                continue
            if now < (rec.get("sim") or {}).get("terminate_at", 0):
                continue
            name = ns["metadata"]["name"]
            for r, obj in self.c.namespace_contents(name):
                if self.c.get_record(r, name, obj["metadata"]["name"]) is not None:
                    self.c._remove(r, obj)
            self.c._remove(res, ns)


def _accepted(names: dict) -> dict:
    out = dict(names)
    out.setdefault("singular", names.get("kind", "").lower())
    out.setdefault("listKind", names.get("kind", "") + "List")
    return out


def _keep_times(old: list | None, new: list, also: tuple = ()) -> list:
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
