"""The state of one fake cluster: objects, resourceVersions, watches, persistence, and the API semantics
(create / get / list / update / patch / apply / delete) the HTTP layer in `server.py` exposes.

Everything here runs on the sandbox's asyncio loop thread; methods are synchronous.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import datetime as dt
import json
import os
import random
import re
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import errors as E
from .patch import (PatchError, fast_copy, load_apply_body, PatchTestFailed, apply_merge, fields_v1, json_patch, merge_patch, strategic_merge,
                    _leaf_paths)
from .resources import BUILTIN, RETURNS_DELETED_OBJECT, Resource, resources_from_crd, version_priority
from .nodes import node_objects

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

# kinds whose metadata.generation the real API server maintains (custom resources always have one)
GENERATION_KINDS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
                    "CustomResourceDefinition", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Ingress",
                    "NetworkPolicy", "ReplicationController"}
PATH_SEGMENT_NAME_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
DNS_LABEL_KINDS = {"Namespace", "Service"}
HISTORY = 5000


def now_ts(t: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if t is None else t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(s: str) -> float:
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp()


@dataclass
class Watcher:
    store_key: str
    namespace: str | None
    label_pred: Callable[[dict], bool]
    field_pred: Callable[[dict], bool]
    resource: Resource
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)

    def matches(self, obj: dict | None) -> bool:
        if obj is None:
            return False
        if self.namespace and obj.get("metadata", {}).get("namespace") != self.namespace:
            return False
        return self.label_pred(obj.get("metadata", {}).get("labels") or {}) and self.field_pred(obj)


class Cluster:
    def __init__(self, name: str, state_dir: Path, speed: float = 1.0, ca_pem: str = "",
                 nodes: list[dict] | None = None):
        """``nodes``: the Node objects of the cluster's node pools (``nodes.node_objects``; default: 3 x
        e2-standard-4 in one zone)."""
        self.name = name
        self.node_specs = nodes if nodes is not None else node_objects(name)
        self.state_dir = Path(state_dir)
        self.obj_dir = self.state_dir / "objects"
        self.obj_dir.mkdir(parents=True, exist_ok=True)
        self.speed = speed
        self.ca_pem = ca_pem
        self.rv = 0
        self.data: dict[str, dict[tuple[str, str], dict]] = collections.defaultdict(dict)
        self.history: collections.deque = collections.deque(maxlen=HISTORY)
        self.watchers: list[Watcher] = []
        self.resources: dict[tuple[str, str, str], Resource] = {}
        self.on_commit: list[Callable[[Resource, str, dict, dict | None], None]] = []
        self.ip_counter = 10
        self.kind_rv: dict[str, int] = {}  # store key -> resourceVersion of its last change
        self._store_key_res: dict[str, Resource] = {}
        self._load()
        self.rebuild_registry()
        self._bootstrap()

    # ------------------------------------------------------------------ persistence
    def _file_for(self, store_key: str, ns: str, name: str) -> Path:
        q = urllib.parse.quote
        return self.obj_dir / f"{q(store_key, safe='')}~{q(ns or '_', safe='')}~{q(name, safe='')}.json"

    def _load(self) -> None:
        meta = self.state_dir / "meta.json"
        if meta.exists():
            m = json.loads(meta.read_text())
            self.rv = int(m.get("rv", 0))
            self.ip_counter = int(m.get("ip_counter", 10))
        for f in sorted(self.obj_dir.glob("*.json")):
            try:
                rec = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            obj = rec["obj"]
            md = obj["metadata"]
            self.data[rec["store_key"]][(md.get("namespace", ""), md["name"])] = rec
            self.rv = max(self.rv, int(md.get("resourceVersion", "0") or 0))

    @staticmethod
    def _write_atomic(path: Path, text: str) -> None:
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)

    def _persist(self, store_key: str, rec: dict | None, ns: str, name: str) -> None:
        path = self._file_for(store_key, ns, name)
        if rec is None:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        else:
            self._write_atomic(path, json.dumps({"store_key": store_key, **rec}, separators=(",", ":")))
        self._write_atomic(self.state_dir / "meta.json", json.dumps({"rv": self.rv, "ip_counter": self.ip_counter}))

    # ------------------------------------------------------------------ registry
    def rebuild_registry(self) -> None:
        res: dict[tuple[str, str, str], Resource] = {}
        for r in BUILTIN:
            res[(r.group, r.version, r.plural)] = r
        for rec in self.data.get("apiextensions.k8s.io~customresourcedefinitions", {}).values():
            crd = rec["obj"]
            if not _condition_true(crd, "Established") or crd["metadata"].get("deletionTimestamp"):
                continue
            for r in resources_from_crd(crd):
                res.setdefault((r.group, r.version, r.plural), r)
        self.resources = res

    def lookup(self, group: str, version: str, plural: str) -> Resource | None:
        return self.resources.get((group, version, plural))

    def resource_for_kind(self, api_version: str, kind: str) -> Resource | None:
        group, _, version = api_version.rpartition("/")
        for r in self.resources.values():
            if r.group == group and r.version == version and r.kind == kind:
                return r
        return None

    def groups(self) -> list[dict]:
        """APIGroup entries (excluding the core group), in a stable order: built-in first, then CRD groups."""
        order: list[str] = []
        versions: dict[str, set[str]] = collections.defaultdict(set)
        for r in self.resources.values():
            if r.group and r.group not in order:
                order.append(r.group)
            if r.group:
                versions[r.group].add(r.version)
        out = []
        for g in order:
            vs = sorted(versions[g], key=version_priority)
            out.append({
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
            })
        return out

    def resources_in(self, group: str, version: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.group == group and r.version == version]

    # ------------------------------------------------------------------ bootstrap
    def _bootstrap(self) -> None:
        ns_res = self.lookup("", "v1", "namespaces")
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            if (("", ns)) not in self.data[ns_res.store_key]:
                self.create(ns_res, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                            manager="kube-apiserver")
        svc = self.lookup("", "v1", "services")
        if ("default", "kubernetes") not in self.data[svc.store_key]:
            self.create(svc, "default", {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": "34.118.224.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                                 "targetPort": 443}]}}, manager="kube-apiserver")
        pc = self.lookup("scheduling.k8s.io", "v1", "priorityclasses")
        for name, value in (("system-cluster-critical", 2000000000), ("system-node-critical", 2000001000)):
            if ("", name) not in self.data[pc.store_key]:
                self.create(pc, "", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                     "metadata": {"name": name}, "value": value,
                                     "description": "Used for system critical pods that must run in the cluster, "
                                                    "but can be moved to another node if necessary.",
                                     "preemptionPolicy": "PreemptLowerPriority"}, manager="kube-apiserver")
        sc = self.lookup("storage.k8s.io", "v1", "storageclasses")
        for name, ptype, default in (("standard-rwo", "pd-balanced", True), ("standard", "pd-standard", False),
                                     ("premium-rwo", "pd-ssd", False)):
            if ("", name) not in self.data[sc.store_key]:
                md: dict = {"name": name}
                if default:
                    md["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
                self.create(sc, "", {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": md,
                                     "provisioner": "pd.csi.storage.gke.io", "parameters": {"type": ptype},
                                     "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
                                     "allowVolumeExpansion": True}, manager="kube-apiserver")
        self._ensure_nodes()

    def _ensure_nodes(self) -> None:
        """The node pool's Nodes (``nodes.py``): missing ones are created, ones no pool has any more removed."""
        res = self.lookup("", "v1", "nodes")
        want = {n["metadata"]["name"]: n for n in self.node_specs}
        for (_, name), rec in list(self.data[res.store_key].items()):
            if name not in want:
                self._remove(res, rec["obj"])
        for name, node in want.items():
            if ("", name) not in self.data[res.store_key]:
                node = fast_copy(node)
                for c in node["status"]["conditions"]:
                    c["lastHeartbeatTime"] = c["lastTransitionTime"] = now_ts()
                self.create(res, "", node, manager="kubelet")

    # ------------------------------------------------------------------ helpers
    def _records(self, res: Resource) -> dict[tuple[str, str], dict]:
        return self.data[res.store_key]

    def get_record(self, res: Resource, ns: str, name: str) -> dict | None:
        return self._records(res).get((ns if res.namespaced else "", name))

    def _present(self, res: Resource, obj: dict, keep_kind: bool = True) -> dict:
        out = fast_copy(obj)
        out["apiVersion"] = res.api_version
        out["kind"] = res.kind
        return out

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _check_namespace(self, res: Resource, ns: str, creating: bool = False) -> None:
        if not res.namespaced:
            return
        if not ns:
            raise E.bad_request("the server could not find the requested resource: a namespace is required")
        nsrec = self.data["core~namespaces"].get(("", ns))
        if nsrec is None:
            raise E.namespace_not_found(ns)
        if creating and nsrec["obj"]["metadata"].get("deletionTimestamp"):
            raise E.forbidden(f'{res.plural} "" is forbidden: unable to create new content in namespace {ns} '
                              f'because it is being terminated', res)

    def commit(self, res: Resource, obj: dict, etype: str, old: dict | None, sim: dict | None = None,
               dry_run: bool = False) -> dict:
        """Store obj (new resourceVersion), persist it, notify watchers and controllers."""
        md = obj["metadata"]
        key = (md.get("namespace", "") if res.namespaced else "", md["name"])
        if dry_run:
            return obj
        md["resourceVersion"] = self._next_rv()
        self.kind_rv[res.store_key] = self.rv
        recs = self._records(res)
        if etype == "DELETED":
            rec = recs.pop(key, None)
            self._persist(res.store_key, None, *key)
        else:
            rec = recs.get(key)
            if rec is None:
                rec = {"obj": obj, "sim": sim or {}}
                recs[key] = rec
            else:
                rec["obj"] = obj
                if sim is not None:
                    rec["sim"] = sim
            self._persist(res.store_key, rec, *key)
        self._emit(res, etype, obj, old)
        for hook in list(self.on_commit):
            hook(res, etype, obj, old)
        return obj

    def _emit(self, res: Resource, etype: str, obj: dict, old: dict | None) -> None:
        snap = fast_copy(obj)
        self.history.append((self.rv, res.store_key, etype, snap, fast_copy(old) if old else None))
        for w in list(self.watchers):
            if w.store_key != res.store_key:
                continue
            ev = watch_event_for(w, etype, snap, old)
            if ev:
                w.queue.put_nowait(ev)

    # ------------------------------------------------------------------ read
    def get(self, res: Resource, ns: str, name: str) -> dict:
        if res.namespaced and ns:
            pass
        rec = self.get_record(res, ns, name)
        if rec is None:
            raise E.not_found(res, name)
        return self._present(res, rec["obj"])

    def list(self, res: Resource, ns: str | None, label_pred, field_pred) -> list[dict]:
        out = []
        for (ons, _), rec in sorted(self._records(res).items()):
            if res.namespaced and ns and ons != ns:
                continue
            obj = rec["obj"]
            if label_pred(obj["metadata"].get("labels") or {}) and field_pred(obj):
                out.append(self._present(res, obj))
        return out

    # ------------------------------------------------------------------ validation and defaults
    def _validate_name(self, res: Resource, name: str) -> list[tuple[str, str, str]]:
        if not name:
            return [("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")]
        if res.kind in PATH_SEGMENT_NAME_KINDS:
            if name in (".", "..") or "/" in name or "%" in name:
                return [("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": may not contain "/"')]
            return []
        if res.kind in DNS_LABEL_KINDS:
            if len(name) > 63 or not DNS1123_LABEL.match(name):
                return [("metadata.name", "FieldValueInvalid",
                         f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case '
                         f"alphanumeric characters or '-', and must start and end with an alphanumeric character")]
            return []
        if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
            return [("metadata.name", "FieldValueInvalid",
                     f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                     f"alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")]
        return []

    def _validate(self, res: Resource, obj: dict) -> None:
        md = obj.get("metadata") or {}
        name = md.get("name", "")
        causes = self._validate_name(res, name)
        for k, v in (md.get("labels") or {}).items():
            if not isinstance(v, str) or len(v) > 63 or (v and not re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", v)):
                causes.append((f"metadata.labels[{k}]", "FieldValueInvalid", f'Invalid value: "{v}": a valid label '
                               "must be an empty string or consist of alphanumeric characters, '-', '_' or '.'"))
        for k, v in (md.get("annotations") or {}).items():
            if not isinstance(v, str):
                causes.append((f"metadata.annotations[{k}]", "FieldValueInvalid",
                               "Invalid value: annotations must be strings"))
        kind = res.kind
        if kind in ("ConfigMap", "Secret"):
            for fld in ("data", "binaryData") if kind == "ConfigMap" else ("data", "stringData"):
                d = obj.get(fld)
                if d is None:
                    continue
                if not isinstance(d, dict):
                    causes.append((fld, "FieldValueInvalid", "Invalid value: must be a map"))
                    continue
                for k, v in d.items():
                    if not CONFIG_KEY.match(k):
                        causes.append((f"{fld}[{k}]", "FieldValueInvalid", f'Invalid value: "{k}": a valid config '
                                       f"key must consist of alphanumeric characters, '-', '_' or '.'"))
                    if not isinstance(v, str):
                        causes.append((f"{fld}[{k}]", "FieldValueInvalid", "Invalid value: must be a string"))
                    elif kind == "Secret" and fld == "data":
                        try:
                            base64.b64decode(v, validate=True)
                        except ValueError:
                            causes.append((f"data[{k}]", "FieldValueInvalid", "Invalid value: illegal base64 data"))
        elif kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
            spec = obj.get("spec") or {}
            sel = spec.get("selector")
            tmpl_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if not sel:
                causes.append(("spec.selector", "FieldValueRequired", "Required value"))
            else:
                ml = sel.get("matchLabels") or {}
                if not ml and not sel.get("matchExpressions"):
                    causes.append(("spec.selector", "FieldValueInvalid", "Invalid value: empty selector is invalid "
                                   "for deployment"))
                elif any(tmpl_labels.get(k) != v for k, v in ml.items()):
                    causes.append(("spec.template.metadata.labels", "FieldValueInvalid",
                                   f"Invalid value: {json.dumps(tmpl_labels)}: `selector` does not match template "
                                   f"`labels`"))
            containers = ((spec.get("template") or {}).get("spec") or {}).get("containers")
            if not containers:
                causes.append(("spec.template.spec.containers", "FieldValueRequired", "Required value"))
            else:
                for i, c in enumerate(containers):
                    if not isinstance(c, dict) or not c.get("name"):
                        causes.append((f"spec.template.spec.containers[{i}].name", "FieldValueRequired",
                                       "Required value"))
                    elif not c.get("image"):
                        causes.append((f"spec.template.spec.containers[{i}].image", "FieldValueRequired",
                                       "Required value"))
            r = spec.get("replicas")
            if r is not None and (not isinstance(r, int) or r < 0):
                causes.append(("spec.replicas", "FieldValueInvalid",
                               f"Invalid value: {r}: must be greater than or equal to 0"))
        elif kind == "Pod":
            if not ((obj.get("spec") or {}).get("containers")):
                causes.append(("spec.containers", "FieldValueRequired", "Required value"))
        elif kind == "Service":
            spec = obj.get("spec") or {}
            if spec.get("type", "ClusterIP") != "ExternalName" and spec.get("clusterIP") != "None" \
                    and not spec.get("ports"):
                causes.append(("spec.ports", "FieldValueRequired", "Required value"))
        elif kind == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            names = spec.get("names") or {}
            group = spec.get("group", "")
            if not group or "." not in group:
                causes.append(("spec.group", "FieldValueInvalid", f'Invalid value: "{group}": should be a domain '
                               "with at least one dot"))
            if not names.get("plural"):
                causes.append(("spec.names.plural", "FieldValueRequired", "Required value"))
            if not names.get("kind"):
                causes.append(("spec.names.kind", "FieldValueRequired", "Required value"))
            if names.get("plural") and group and name != f"{names['plural']}.{group}":
                causes.append(("metadata.name", "FieldValueInvalid",
                               f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
            if spec.get("scope") not in ("Namespaced", "Cluster"):
                causes.append(("spec.scope", "FieldValueNotSupported", f'Unsupported value: "{spec.get("scope")}": '
                               'supported values: "Cluster", "Namespaced"'))
            versions = spec.get("versions") or []
            if not versions:
                causes.append(("spec.versions", "FieldValueInvalid", "Invalid value: must have exactly one version "
                               "marked as storage version"))
            elif sum(1 for v in versions if v.get("storage")) != 1:
                causes.append(("spec.versions", "FieldValueInvalid", "Invalid value: must have exactly one version "
                               "marked as storage version"))
        elif kind == "PriorityClass":
            if not isinstance(obj.get("value"), int):
                causes.append(("value", "FieldValueRequired", "Required value"))
        if causes:
            raise E.invalid(res, name, causes)

    def _defaults(self, res: Resource, obj: dict) -> None:
        kind = res.kind
        md = obj["metadata"]
        if kind == "Namespace":
            md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj.setdefault("status", {}).setdefault("phase", "Active")
        elif kind == "Secret":
            if not obj.get("type"):
                obj["type"] = "Opaque"
            sd = obj.pop("stringData", None)
            if sd:
                data = obj.setdefault("data", {})
                for k, v in sd.items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
        elif kind == "Service":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            if spec["type"] != "ExternalName":
                if not spec.get("clusterIP"):
                    self.ip_counter += 1
                    spec["clusterIP"] = f"34.118.{(self.ip_counter // 250) % 250}.{self.ip_counter % 250 + 2}"
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
                spec.setdefault("ipFamilies", ["IPv4"])
                spec.setdefault("ipFamilyPolicy", "SingleStack")
                spec.setdefault("internalTrafficPolicy", "Cluster")
            for p in spec.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
                    if "port" in p:
                        p.setdefault("targetPort", p["port"])
            obj.setdefault("status", {}).setdefault("loadBalancer", {})
        elif kind in ("Deployment", "StatefulSet", "ReplicaSet"):
            spec = obj.setdefault("spec", {})
            spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            if kind == "Deployment":
                spec.setdefault("progressDeadlineSeconds", 600)
                spec.setdefault("strategy", {"type": "RollingUpdate",
                                             "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
            if kind == "StatefulSet":
                spec.setdefault("podManagementPolicy", "OrderedReady")
                spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
            tspec = (spec.get("template") or {}).get("spec")
            if isinstance(tspec, dict):
                _pod_spec_defaults(tspec)
        elif kind == "Pod":
            _pod_spec_defaults(obj.setdefault("spec", {}))
            obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
        elif kind == "ServiceAccount":
            pass
        elif kind == "PriorityClass":
            obj.setdefault("preemptionPolicy", "PreemptLowerPriority")
        elif kind == "PersistentVolumeClaim":
            obj.setdefault("status", {"phase": "Pending"})
            spec = obj.setdefault("spec", {})
            spec.setdefault("volumeMode", "Filesystem")
            spec.setdefault("storageClassName", "standard-rwo")
        elif kind == "CustomResourceDefinition":
            spec = obj["spec"]
            for v in spec.get("versions") or []:
                v.setdefault("served", True)
            spec.setdefault("conversion", {"strategy": "None"})

    # ------------------------------------------------------------------ managed fields
    def _managed_update(self, res: Resource, old: dict | None, new: dict, manager: str, operation: str,
                        applied: dict | None = None, subresource: str = "") -> None:
        if not manager:
            return
        md = new["metadata"]
        managed = [m for m in (md.get("managedFields") or []) if isinstance(m, dict)]
        if operation == "Apply":
            fs = fields_v1(_without_meta_noise(applied or {}))
        else:
            changed = _diff(_without_meta_noise(old or {}), _without_meta_noise(new))
            if not changed:
                md["managedFields"] = managed
                return
            fs = fields_v1(changed)
            prev = next((m for m in managed if m.get("manager") == manager and m.get("operation") == operation
                         and m.get("subresource", "") == subresource), None)
            if prev:
                fs = _merge_fields(prev.get("fieldsV1") or {}, fs)
        entry = {"manager": manager, "operation": operation, "apiVersion": res.api_version, "time": now_ts(),
                 "fieldsType": "FieldsV1", "fieldsV1": fs}
        if subresource:
            entry["subresource"] = subresource
        managed = [m for m in managed if not (m.get("manager") == manager and m.get("operation") == operation
                                              and m.get("subresource", "") == subresource)]
        managed.append(entry)
        md["managedFields"] = managed

    # ------------------------------------------------------------------ create
    def create(self, res: Resource, ns: str, body: Any, manager: str = "", dry_run: bool = False,
               sim: dict | None = None, operation: str = "Update", applied: dict | None = None) -> dict:
        if not isinstance(body, dict):
            raise E.bad_request("the body of the request was not a JSON object")
        obj = fast_copy(body)
        self._check_kind(res, obj)
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise E.bad_request("metadata must be an object")
        if res.namespaced:
            bns = md.get("namespace")
            if bns and ns and bns != ns:
                raise E.bad_request("the namespace of the provided object does not match the namespace sent on "
                                    "the request")
            ns = ns or bns or ""
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if res.kind in ("SelfSubjectAccessReview", "SelfSubjectRulesReview", "SelfSubjectReview"):
            return self._review(res, obj)
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        self._validate(res, obj)
        self._check_namespace(res, ns, creating=True)
        if self.get_record(res, ns, md["name"]) is not None:
            raise E.already_exists(res, md["name"])
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            md.pop(k, None)
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now_ts()
        if res.kind in GENERATION_KINDS or not res.builtin:
            md["generation"] = 1
        else:
            md.pop("generation", None)
        md.pop("managedFields", None)
        self._defaults(res, obj)
        if res.kind in ("SelfSubjectAccessReview", "SelfSubjectRulesReview", "SelfSubjectReview"):
            return self._review(res, obj)
        if "status" in res.subresources and res.kind not in ("Namespace", "Service", "Pod", "Node",
                                                             "PersistentVolumeClaim"):
            # the status of a kind with a status subresource is not set by create (except by controllers)
            if manager not in ("kubelet", "kube-controller-manager", "kube-apiserver"):
                obj.pop("status", None)
        self._managed_update(res, None, obj, manager, operation, applied)
        stored = fast_copy(obj)
        stored["apiVersion"], stored["kind"] = res.api_version, res.kind
        self.commit(res, stored, "ADDED", None, sim=sim, dry_run=dry_run)
        return self._present(res, stored)

    def _check_kind(self, res: Resource, obj: dict) -> None:
        kind, av = obj.get("kind"), obj.get("apiVersion")
        if kind and kind != res.kind:
            raise E.bad_request(f"the API version in the data ({av}) does not match the expected API version "
                                f"({res.api_version})" if av and av != res.api_version else
                                f'the kind in the data ({kind}) does not match the expected kind ({res.kind})')
        if av and av != res.api_version:
            raise E.bad_request(f"the API version in the data ({av}) does not match the expected API version "
                                f"({res.api_version})")

    def _review(self, res: Resource, obj: dict) -> dict:
        obj = self._present(res, obj)
        obj["metadata"] = {"creationTimestamp": None}
        if res.kind == "SelfSubjectAccessReview":
            obj["status"] = {"allowed": True, "reason": "sandbox: the caller is cluster-admin"}
        elif res.kind == "SelfSubjectRulesReview":
            obj["status"] = {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                             "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}
        else:
            obj["status"] = {"userInfo": {"username": "sandbox-caller@mlops-demo-project.iam.gserviceaccount.com",
                                          "groups": ["system:authenticated"]}}
        return obj

    # ------------------------------------------------------------------ update
    def update(self, res: Resource, ns: str, name: str, body: Any, subresource: str = "", manager: str = "",
               dry_run: bool = False, operation: str = "Update", applied: dict | None = None,
               precondition_rv: bool = True) -> dict:
        if not isinstance(body, dict):
            raise E.bad_request("the body of the request was not a JSON object")
        rec = self.get_record(res, ns, name)
        if rec is None:
            raise E.not_found(res, name)
        old = rec["obj"]
        new = fast_copy(body)
        self._check_kind(res, new)
        md = new.setdefault("metadata", {})
        if md.get("name") and md["name"] != name:
            raise E.bad_request(f"the name of the object ({md['name']}) does not match the name on the URL ({name})")
        if res.namespaced and md.get("namespace") and md["namespace"] != ns:
            raise E.bad_request("the namespace of the provided object does not match the namespace sent on the "
                                "request")
        brv = md.get("resourceVersion")
        if precondition_rv and brv and brv != old["metadata"]["resourceVersion"]:
            raise E.conflict(res, name)
        if subresource == "status":
            merged = fast_copy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        elif subresource == "scale":
            merged = fast_copy(old)
            replicas = (new.get("spec") or {}).get("replicas")
            merged.setdefault("spec", {})["replicas"] = replicas
            new = merged
        else:
            md["name"] = name
            if res.namespaced:
                md["namespace"] = ns
            for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
                if k in old["metadata"]:
                    md[k] = old["metadata"][k]
                else:
                    md.pop(k, None)
            if "status" in res.subresources and res.kind != "Namespace":
                if "status" in old:
                    new["status"] = fast_copy(old["status"])
                else:
                    new.pop("status", None)
            elif res.kind == "Namespace":
                new["status"] = fast_copy(old.get("status", {}))
            if "managedFields" not in md and "managedFields" in old["metadata"]:
                md["managedFields"] = fast_copy(old["metadata"]["managedFields"])
            if res.kind == "Service":  # an update that omits the allocated IPs keeps them
                spec_old, spec_new = old.get("spec") or {}, new.setdefault("spec", {})
                for k in ("clusterIP", "clusterIPs"):
                    if not spec_new.get(k) and spec_old.get(k):
                        spec_new[k] = fast_copy(spec_old[k])
            self._defaults(res, new)
            if res.kind == "Service":
                spec_old, spec_new = old.get("spec") or {}, new.get("spec") or {}
                if spec_old.get("clusterIP") and spec_new.get("clusterIP") not in (None, "",
                                                                                     spec_old["clusterIP"]):
                    raise E.invalid(res, name, [("spec.clusterIP", "FieldValueInvalid",
                                                 f'Invalid value: "{spec_new["clusterIP"]}": field is immutable')])
            if res.kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
                if (old.get("spec") or {}).get("selector") != (new.get("spec") or {}).get("selector"):
                    raise E.invalid(res, name, [("spec.selector", "FieldValueInvalid",
                                                 "Invalid value: field is immutable")])
            if res.kind == "CustomResourceDefinition":
                new["status"] = fast_copy(old.get("status", {}))
        new["apiVersion"], new["kind"] = res.api_version, res.kind
        self._validate(res, new)
        # generation
        gen_old = old["metadata"].get("generation")
        if gen_old is not None:
            md_new = new["metadata"]
            md_new["generation"] = gen_old
            if _spec_part(old) != _spec_part(new):
                md_new["generation"] = gen_old + 1
        else:
            new["metadata"].pop("generation", None)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        self._managed_update(res, old, new, manager, operation, applied, subresource)
        if _same(old, new):
            return self._present(res, old)
        # finalizers emptied on an object being deleted: it goes away now
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") \
                and res.kind != "Namespace":
            if not dry_run:
                self._remove(res, new)
            return self._present(res, new)
        self.commit(res, new, "MODIFIED", old, dry_run=dry_run)
        return self._present(res, new)

    # ------------------------------------------------------------------ patch
    def patch(self, res: Resource, ns: str, name: str, content_type: str, raw: bytes, subresource: str = "",
              manager: str = "", force: bool = False, dry_run: bool = False) -> tuple[dict, bool]:
        ct = content_type.split(";")[0].strip().lower()
        try:
            if ct == "application/apply-patch+yaml":
                body = load_apply_body(raw)
            else:
                body = json.loads(raw.decode() or "null")
        except Exception as exc:  # noqa: BLE001 - any decode error is a 400
            raise E.bad_request(f"error decoding patch: {exc}") from exc
        if ct == "application/apply-patch+yaml":
            return self._apply(res, ns, name, body, subresource, manager, force, dry_run)
        rec = self.get_record(res, ns, name)
        if rec is None:
            raise E.not_found(res, name)
        current = self._present(res, rec["obj"])
        if subresource == "scale":
            current = scale_of(res, current)
        try:
            if ct == "application/json-patch+json":
                patched = json_patch(current, body)
            elif ct == "application/merge-patch+json":
                patched = merge_patch(current, body)
            elif ct == "application/strategic-merge-patch+json":
                if not res.builtin:
                    raise E.ApiError(415, "UnsupportedMediaType",
                                     "the body of the request was in an unknown format - accepted media types "
                                     "include: application/json-patch+json, application/merge-patch+json, "
                                     "application/apply-patch+yaml")
                patched = strategic_merge(current, body)
            else:
                raise E.unsupported_media_type(ct)
        except PatchTestFailed as exc:
            raise E.ApiError(422, "Invalid", str(exc)) from exc
        except PatchError as exc:
            raise E.ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                             f"{exc}") from exc
        if not isinstance(patched, dict):
            raise E.bad_request("the patched object is not a JSON object")
        if subresource == "scale":
            patched = {"spec": {"replicas": (patched.get("spec") or {}).get("replicas")},
                       "metadata": {"resourceVersion": (patched.get("metadata") or {}).get("resourceVersion")}}
        return self.update(res, ns, name, patched, subresource, manager=manager or "unknown", dry_run=dry_run), False

    def _apply(self, res: Resource, ns: str, name: str, body: Any, subresource: str, manager: str, force: bool,
               dry_run: bool) -> tuple[dict, bool]:
        if not manager:
            raise E.ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
                             'value: is required for apply patch',
                             {"group": "meta.k8s.io", "kind": "PatchOptions",
                              "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required "
                                          "for apply patch", "field": "fieldManager"}]})
        if not isinstance(body, dict):
            raise E.bad_request("error decoding YAML: the applied configuration is not an object")
        if not body.get("apiVersion") or not body.get("kind"):
            raise E.bad_request("invalid object type: apiVersion and kind are required for apply")
        self._check_kind(res, body)
        bmd = body.get("metadata") or {}
        if bmd.get("name") and bmd["name"] != name:
            raise E.bad_request(f"the name of the object ({bmd['name']}) does not match the name on the URL "
                                f"({name})")
        rec = self.get_record(res, ns, name)
        if rec is None:
            if subresource:
                raise E.not_found(res, name)
            obj = fast_copy(body)
            obj.setdefault("metadata", {})["name"] = name
            obj["metadata"].pop("managedFields", None)
            return self.create(res, ns, obj, manager=manager, dry_run=dry_run, operation="Apply",
                               applied=body), True
        live = self._present(res, rec["obj"])
        managed = live["metadata"].get("managedFields") or []
        if not force:
            conflicts = _conflicts(live, body, manager, managed)
            if conflicts and manager == "kubectl":
                # as the real server does for `kubectl apply --server-side` after client-side apply: conflicts
                # on fields of the last-applied-configuration annotation are allowed (ownership is taken over)
                allowed = _last_applied_paths(live)
                conflicts = [c for c in conflicts if not (c[0] == "kubectl-client-side-apply" and c[2] in allowed)]
                if not conflicts:
                    force = True
                    _take_ownership(managed, body, manager)
            if conflicts:
                lines = [f'conflict with "{m}"{" using " + av if av else ""}: {p}' for m, av, p in conflicts]
                msg = (f"Apply failed with {len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''}: "
                       + "\n".join(lines))
                raise E.ApiError(409, "Conflict", msg, {
                    "name": name, **({"group": res.group} if res.group else {}), "kind": res.plural,
                    "causes": [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": p}
                               for m, _, p in conflicts]})
        else:
            _take_ownership(managed, body, manager)
        merged = apply_merge(live, body, manager, managed)
        if "status" in res.subresources and subresource != "status":
            if "status" in live:
                merged["status"] = live["status"]
        merged["metadata"]["managedFields"] = managed
        return self.update(res, ns, name, merged, subresource, manager=manager, dry_run=dry_run, operation="Apply",
                           applied=body, precondition_rv=bool(bmd.get("resourceVersion"))), False

    # ------------------------------------------------------------------ delete
    def delete(self, res: Resource, ns: str, name: str, options: dict | None = None, dry_run: bool = False) -> dict:
        options = options or {}
        rec = self.get_record(res, ns, name)
        if rec is None:
            raise E.not_found(res, name)
        obj = fast_copy(rec["obj"])
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
            raise E.conflict(res, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object "
                             f"meta: {obj['metadata']['uid']}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise E.conflict(res, name, "the object has been modified; please apply your changes to the latest "
                             "version and try again")
        if dry_run:
            return self._present(res, obj)
        md = obj["metadata"]
        if res.kind == "Namespace":
            if name in ("default", "kube-system", "kube-public"):
                raise E.forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted', res, name)
            if not md.get("deletionTimestamp"):
                old = fast_copy(obj)
                md["deletionTimestamp"] = now_ts()
                md["deletionGracePeriodSeconds"] = 0
                obj.setdefault("status", {})["phase"] = "Terminating"
                self.commit(res, obj, "MODIFIED", old)
            return self._present(res, obj)
        policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else "Background")
        if md.get("finalizers"):
            if not md.get("deletionTimestamp"):
                old = fast_copy(obj)
                md["deletionTimestamp"] = now_ts()
                md["deletionGracePeriodSeconds"] = 0
                self.commit(res, obj, "MODIFIED", old)
            return self._present(res, obj)
        # Foreground and Background both end with the dependents gone; the simulated garbage collector is
        # instantaneous, so the owner does not linger with a foregroundDeletion finalizer.
        self._remove(res, obj, orphan=(policy == "Orphan"))
        if res.kind in RETURNS_DELETED_OBJECT or not res.builtin:
            return self._present(res, obj)
        details = {"name": name, "kind": res.plural, "uid": md["uid"]}
        if res.group:
            details["group"] = res.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _remove(self, res: Resource, obj: dict, orphan: bool = False) -> None:
        self.commit(res, obj, "DELETED", fast_copy(obj))
        uid = obj["metadata"]["uid"]
        if res.kind == "CustomResourceDefinition":
            for r in resources_from_crd(obj)[:1]:
                for key, rec in list(self.data.get(r.store_key, {}).items()):
                    self.commit(r, rec["obj"], "DELETED", fast_copy(rec["obj"]))
            self.rebuild_registry()
        for dres, dobj in self._dependents(uid):
            if not orphan:
                self._remove(dres, dobj)
            else:  # orphaned dependents lose their ownerReference
                new = fast_copy(dobj)
                new["metadata"]["ownerReferences"] = [o for o in new["metadata"].get("ownerReferences") or []
                                                      if o.get("uid") != uid]
                if not new["metadata"]["ownerReferences"]:
                    del new["metadata"]["ownerReferences"]
                self.commit(dres, new, "MODIFIED", dobj)

    def _dependents(self, uid: str) -> list[tuple[Resource, dict]]:
        out = []
        for store_key, recs in self.data.items():
            res = self._resource_for_store_key(store_key)
            if res is None:
                continue
            for rec in list(recs.values()):
                if any(o.get("uid") == uid for o in rec["obj"]["metadata"].get("ownerReferences") or []):
                    out.append((res, rec["obj"]))
        return out

    def _resource_for_store_key(self, store_key: str) -> Resource | None:
        r = self._store_key_res.get(store_key)
        if r is not None and self.resources.get((r.group, r.version, r.plural)) is r:
            return r
        for r in self.resources.values():
            if r.store_key == store_key:
                self._store_key_res[store_key] = r
                return r
        return None

    def rv_of_kind(self, store_key: str) -> int:
        return self.kind_rv.get(store_key, 0)

    def namespace_contents(self, ns: str) -> list[tuple[Resource, dict]]:
        out = []
        for store_key, recs in self.data.items():
            res = self._resource_for_store_key(store_key)
            if res is None or not res.namespaced:
                continue
            for (ons, _), rec in list(recs.items()):
                if ons == ns:
                    out.append((res, rec["obj"]))
        return out

    # ------------------------------------------------------------------ watch
    def add_watcher(self, w: Watcher, since_rv: int | None, send_initial: bool) -> str | None:
        """Register w, queue its initial events. Returns an error string for 410 Gone, else None."""
        if since_rv is not None and since_rv > 0 and not send_initial:
            oldest = self.history[0][0] if self.history else self.rv + 1
            if since_rv < oldest - 1 and since_rv < self.rv:
                return f"too old resource version: {since_rv} ({self.rv})"
            for rv, store_key, etype, obj, old in self.history:
                if rv <= since_rv or store_key != w.store_key:
                    continue
                ev = watch_event_for(w, etype, obj, old)
                if ev:
                    w.queue.put_nowait(ev)
        else:
            for rec in sorted(self._records(w.resource).values(), key=lambda r: int(r["obj"]["metadata"]
                                                                                    ["resourceVersion"])):
                if w.matches(rec["obj"]):
                    w.queue.put_nowait(("ADDED", fast_copy(rec["obj"])))
            if send_initial:
                w.queue.put_nowait(("BOOKMARK", {"metadata": {"resourceVersion": str(self.rv), "annotations": {
                    "k8s.io/initial-events-end": "true"}}}))
        self.watchers.append(w)
        return None

    def remove_watcher(self, w: Watcher) -> None:
        if w in self.watchers:
            self.watchers.remove(w)


# ---------------------------------------------------------------------------------------------- helpers
def watch_event_for(w: Watcher, etype: str, obj: dict, old: dict | None):
    if etype == "MODIFIED":
        now_m, old_m = w.matches(obj), w.matches(old) if old is not None else True
        if now_m and old_m:
            return ("MODIFIED", obj)
        if now_m:
            return ("ADDED", obj)
        if old_m and old is not None:
            return ("DELETED", obj)
        return None
    if w.matches(obj):
        return (etype, obj)
    return None


def _condition_true(obj: dict, ctype: str) -> bool:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype and c.get("status") == "True":
            return True
    return False


def _pod_spec_defaults(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in spec.get("containers") or []:
        if isinstance(c, dict):
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("imagePullPolicy", "Always" if str(c.get("image", "")).endswith(":latest")
                         or ":" not in str(c.get("image", "")).rsplit("/", 1)[-1] else "IfNotPresent")
            c.setdefault("resources", {})


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _without_meta_noise(obj: dict) -> dict:
    out = fast_copy(obj)
    md = out.get("metadata")
    if isinstance(md, dict):
        for k in ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink",
                  "deletionTimestamp", "deletionGracePeriodSeconds"):
            md.pop(k, None)
    out.pop("apiVersion", None)
    out.pop("kind", None)
    return out


def _same(a: dict, b: dict) -> bool:
    def norm(o):
        o = fast_copy(o)
        o["metadata"].pop("managedFields", None)
        o["metadata"].pop("resourceVersion", None)
        return o
    return norm(a) == norm(b)


def _diff(old: Any, new: Any) -> Any:
    """The part of `new` that differs from `old` (maps recursively; other values whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = {}
        for k, v in new.items():
            if k not in old:
                out[k] = v
            elif old[k] != v:
                d = _diff(old[k], v)
                out[k] = d if d not in (None, {}) or not isinstance(v, dict) else v
        return out
    return new


def _merge_fields(a: dict, b: dict) -> dict:
    out = fast_copy(a)
    for k, v in b.items():
        out[k] = _merge_fields(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def _value_at(obj: Any, path: tuple) -> tuple[bool, Any]:
    cur = obj
    for seg in path:
        if seg.startswith("f:") and isinstance(cur, dict):
            if seg[2:] not in cur:
                return False, None
            cur = cur[seg[2:]]
        elif seg.startswith("k:") and isinstance(cur, list):
            want = json.loads(seg[2:])
            for item in cur:
                if isinstance(item, dict) and all(item.get(a) == b for a, b in want.items()):
                    cur = item
                    break
            else:
                return False, None
        else:
            return False, None
    return True, cur


def _conflicts(live: dict, applied: dict, manager: str, managed: list[dict]) -> list[tuple[str, str, str]]:
    mine = _leaf_paths(fields_v1(_without_meta_noise(applied)))
    out = []
    for m in managed:
        if m.get("manager") == manager or m.get("subresource"):
            continue
        theirs = _leaf_paths(m.get("fieldsV1") or {})
        for p in sorted(mine & theirs):
            ok_a, va = _value_at(applied, p)
            ok_l, vl = _value_at(live, p)
            if ok_a and (not ok_l or va != vl):
                out.append((m.get("manager", ""), m.get("apiVersion", ""), _dotted(p)))
    return out


def _last_applied_paths(live: dict) -> set[str]:
    ann = (live.get("metadata") or {}).get("annotations") or {}
    text = ann.get("kubectl.kubernetes.io/last-applied-configuration")
    if not text:
        return set()
    try:
        last = json.loads(text)
    except ValueError:
        return set()
    return {_dotted(p) for p in _leaf_paths(fields_v1(_without_meta_noise(last)))}


def _take_ownership(managed: list[dict], applied: dict, manager: str) -> None:
    mine = _leaf_paths(fields_v1(_without_meta_noise(applied)))
    for m in managed:
        if m.get("manager") == manager:
            continue
        fs = m.get("fieldsV1") or {}
        for p in mine & _leaf_paths(fs):
            _drop_path(fs, p)


def _drop_path(fs: dict, path: tuple) -> None:
    cur = fs
    for seg in path[:-1]:
        cur = cur.get(seg)
        if not isinstance(cur, dict):
            return
    cur.pop(path[-1], None)


def _dotted(path: tuple) -> str:
    out = ""
    for seg in path:
        if seg.startswith("f:"):
            out += "." + seg[2:]
        else:
            out += "[" + seg[2:].strip("{}").replace('"', "").replace(":", "=") + "]"
    return out


def scale_of(res: Resource, obj: dict) -> dict:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    return {"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {k: obj["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                         "creationTimestamp") if k in obj["metadata"]},
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": {"replicas": status.get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sel.items())}}
