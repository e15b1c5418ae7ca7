"""One fake cluster: the API semantics (create / get / list / update / patch / apply / delete) the HTTP layer in
`server.py` exposes, on the object store of `objects.py` (records, persistence, watches); validation and defaults in
`validation.py`, managed fields and server-side apply's conflicts in `managed.py`.

Everything here runs on the sandbox's asyncio loop thread; methods are synchronous.
"""
from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

from . import errors as E
from .managed import apply_conflicts, last_applied_paths, managed_update, take_ownership
from .nodes import node_objects
from .objects import ObjectStore, now_ts
from .patch import (PatchError, PatchTestFailed, apply_merge, fast_copy, json_patch, load_apply_body, merge_patch,
                    strategic_merge)
from .resources import RETURNS_DELETED_OBJECT, Resource, resources_from_crd
from .validation import apply_defaults, validate

# kinds whose metadata.generation the real API server maintains (custom resources always have one)
GENERATION_KINDS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
                    "CustomResourceDefinition", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Ingress",
                    "NetworkPolicy", "ReplicationController"}


class Cluster(ObjectStore):
    def __init__(self, name: str, state_dir: Path, speed: float = 1.0, ca_pem: str = "",
                 nodes: list[dict] | None = None):
        """``nodes``: the Node objects of the cluster's node pools (``nodes.node_objects``; default: 3 x
        e2-standard-4 in one zone)."""
        self.name = name
        self.node_specs = nodes if nodes is not None else node_objects(name)
        self.speed = speed
        self.ca_pem = ca_pem
        super().__init__(state_dir)
        self._bootstrap()

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
                self.remove(res, rec["obj"])
        for name, node in want.items():
            if ("", name) not in self.data[res.store_key]:
                node = fast_copy(node)
                for c in node["status"]["conditions"]:
                    c["lastHeartbeatTime"] = c["lastTransitionTime"] = now_ts()
                self.create(res, "", node, manager="kubelet")

    def _next_cluster_ip(self) -> str:
        self.ip_counter += 1
        return f"34.118.{(self.ip_counter // 250) % 250}.{self.ip_counter % 250 + 2}"

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
        validate(res, obj)
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
        apply_defaults(res, obj, self._next_cluster_ip)
        if res.kind in ("SelfSubjectAccessReview", "SelfSubjectRulesReview", "SelfSubjectReview"):
            return self._review(res, obj)
        if "status" in res.subresources and res.kind not in ("Namespace", "Service", "Pod", "Node",
                                                             "PersistentVolumeClaim"):
            # the status of a kind with a status subresource is not set by create (except by controllers)
            if manager not in ("kubelet", "kube-controller-manager", "kube-apiserver"):
                obj.pop("status", None)
        managed_update(res, None, obj, manager, operation, applied)
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
            apply_defaults(res, new, self._next_cluster_ip)
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
        validate(res, new)
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
        managed_update(res, old, new, manager, operation, applied, subresource)
        if _same(old, new):
            return self._present(res, old)
        # finalizers emptied on an object being deleted: it goes away now
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") \
                and res.kind != "Namespace":
            if not dry_run:
                self.remove(res, new)
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
            conflicts = apply_conflicts(live, body, manager, managed)
            if conflicts and manager == "kubectl":
                # as the real server does for `kubectl apply --server-side` after client-side apply: conflicts
                # on fields of the last-applied-configuration annotation are allowed (ownership is taken over)
                allowed = last_applied_paths(live)
                conflicts = [c for c in conflicts if not (c[0] == "kubectl-client-side-apply" and c[2] in allowed)]
                if not conflicts:
                    force = True
                    take_ownership(managed, body, manager)
            if conflicts:
                lines = [f'conflict with "{m}"{" using " + av if av else ""}: {p}' for m, av, p in conflicts]
                msg = (f"Apply failed with {len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''}: "
                       + "\n".join(lines))
                raise E.ApiError(409, "Conflict", msg, {
                    "name": name, **({"group": res.group} if res.group else {}), "kind": res.plural,
                    "causes": [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": p}
                               for m, _, p in conflicts]})
        else:
            take_ownership(managed, body, manager)
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
        self.remove(res, obj, orphan=(policy == "Orphan"))
        if res.kind in RETURNS_DELETED_OBJECT or not res.builtin:
            return self._present(res, obj)
        details = {"name": name, "kind": res.plural, "uid": md["uid"]}
        if res.group:
            details["group"] = res.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def remove(self, res: Resource, obj: dict, orphan: bool = False) -> None:
        """Remove the object now (its finalizers aside) and, as the garbage collector does, its dependents, or with
        ``orphan`` their owner references to it. What the controllers delete themselves goes this way."""
        self.commit(res, obj, "DELETED", fast_copy(obj))
        uid = obj["metadata"]["uid"]
        if res.kind == "CustomResourceDefinition":
            for r in resources_from_crd(obj)[:1]:
                for key, rec in list(self.data.get(r.store_key, {}).items()):
                    self.commit(r, rec["obj"], "DELETED", fast_copy(rec["obj"]))
            self.rebuild_registry()
        for dres, dobj in self.dependents(uid):
            if not orphan:
                self.remove(dres, dobj)
            else:  # orphaned dependents lose their ownerReference
                new = fast_copy(dobj)
                new["metadata"]["ownerReferences"] = [o for o in new["metadata"].get("ownerReferences") or []
                                                      if o.get("uid") != uid]
                if not new["metadata"]["ownerReferences"]:
                    del new["metadata"]["ownerReferences"]
                self.commit(dres, new, "MODIFIED", dobj)


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _same(a: dict, b: dict) -> bool:
    def norm(o):
        o = fast_copy(o)
        o["metadata"].pop("managedFields", None)
        o["metadata"].pop("resourceVersion", None)
        return o
    return norm(a) == norm(b)


def scale_of(res: Resource, obj: dict) -> dict:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    return {"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {k: obj["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                         "creationTimestamp") if k in obj["metadata"]},
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": {"replicas": status.get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sel.items())}}
