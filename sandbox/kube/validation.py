"""What the API server checks in an object (names, labels, config keys, workload selectors, CRDs) and the defaults it
fills in, for the kinds the sandbox models.
"""
from __future__ import annotations

import base64
import json
import re
from typing import Callable

from . import errors as E
from .resources import Resource

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
PATH_SEGMENT_NAME_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
DNS_LABEL_KINDS = {"Namespace", "Service"}


def _validate_name(res: Resource, name: str) -> list[tuple[str, str, str]]:
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

def validate(res: Resource, obj: dict) -> None:
    """The object's fields as the API server checks them on create and update: 422 Invalid with the causes."""
    md = obj.get("metadata") or {}
    name = md.get("name", "")
    causes = _validate_name(res, name)
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

def apply_defaults(res: Resource, obj: dict, next_cluster_ip: Callable[[], str]) -> None:
    """The defaults the API server fills in; ``next_cluster_ip`` allocates a Service's ClusterIP."""
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
                spec["clusterIP"] = next_cluster_ip()
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
            pod_spec_defaults(tspec)
    elif kind == "Pod":
        pod_spec_defaults(obj.setdefault("spec", {}))
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


def pod_spec_defaults(spec: dict) -> None:
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

