"""Server-side printing: `meta.k8s.io/v1 Table` responses, which `kubectl get` asks for."""
from __future__ import annotations

import json
import re
import time

from .objects import parse_ts
from .resources import Resource


def _age(obj: dict) -> str:
    return _since(obj.get("metadata", {}).get("creationTimestamp"))


def _since(ts: str | None) -> str:
    """kubectl's duration.HumanDuration of the time since ts."""
    if not ts:
        return "<unknown>"
    s = max(0, int(time.time() - parse_ts(ts)))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


def _col(name: str, typ: str = "string", fmt: str = "", prio: int = 0, desc: str = "") -> dict:
    return {"name": name, "type": typ, "format": fmt, "description": desc or name, "priority": prio}


def _ready_pods(obj: dict) -> str:
    cs = (obj.get("status") or {}).get("containerStatuses") or []
    total = len((obj.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for c in cs if c.get('ready'))}/{total}"


def _pod_status_restarts(obj: dict) -> tuple[str, str]:
    """STATUS and RESTARTS of `kubectl get pods` (printPod, pkg/printers/internalversion/printers.go)."""
    status = obj.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    restarts, last = 0, ""
    for cs in reversed(status.get("containerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        term = (cs.get("lastState") or {}).get("terminated") or {}
        if term.get("finishedAt") and term["finishedAt"] > last:
            last = term["finishedAt"]
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
    if obj["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return reason, (f"{restarts} ({_since(last)} ago)" if restarts and last else str(restarts))


def _ports(obj: dict) -> str:
    ports = (obj.get("spec") or {}).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


COLUMNS = {
    "Deployment": ([_col("Name", fmt="name"), _col("Ready"), _col("Up-to-date", "integer"),
                    _col("Available", "integer"), _col("Age")],
                   lambda o: [o["metadata"]["name"],
                              f"{(o.get('status') or {}).get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 1)}",
                              (o.get("status") or {}).get("updatedReplicas", 0),
                              (o.get("status") or {}).get("availableReplicas", 0), _age(o)]),
    "StatefulSet": ([_col("Name", fmt="name"), _col("Ready"), _col("Age")],
                    lambda o: [o["metadata"]["name"],
                               f"{(o.get('status') or {}).get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 1)}",
                               _age(o)]),
    "ReplicaSet": ([_col("Name", fmt="name"), _col("Desired", "integer"), _col("Current", "integer"),
                    _col("Ready", "integer"), _col("Age")],
                   lambda o: [o["metadata"]["name"], (o.get("spec") or {}).get("replicas", 0),
                              (o.get("status") or {}).get("replicas", 0),
                              (o.get("status") or {}).get("readyReplicas", 0), _age(o)]),
    "Pod": ([_col("Name", fmt="name"), _col("Ready"), _col("Status"), _col("Restarts"), _col("Age"),
             _col("IP", prio=1), _col("Node", prio=1)],
            lambda o: [o["metadata"]["name"], _ready_pods(o), *_pod_status_restarts(o), _age(o),
                       (o.get("status") or {}).get("podIP", "<none>"),
                       (o.get("spec") or {}).get("nodeName", "<none>")]),
    "Service": ([_col("Name", fmt="name"), _col("Type"), _col("Cluster-IP"), _col("External-IP"),
                 _col("Port(s)"), _col("Age")],
                lambda o: [o["metadata"]["name"], (o.get("spec") or {}).get("type", "ClusterIP"),
                           (o.get("spec") or {}).get("clusterIP", "<none>"),
                           ",".join(i.get("ip", i.get("hostname", "")) for i in
                                    ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])
                           or "<none>", _ports(o), _age(o)]),
    "ConfigMap": ([_col("Name", fmt="name"), _col("Data", "integer"), _col("Age")],
                  lambda o: [o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                             _age(o)]),
    "Secret": ([_col("Name", fmt="name"), _col("Type"), _col("Data", "integer"), _col("Age")],
               lambda o: [o["metadata"]["name"], o.get("type", "Opaque"), len(o.get("data") or {}), _age(o)]),
    "Namespace": ([_col("Name", fmt="name"), _col("Status"), _col("Age")],
                  lambda o: [o["metadata"]["name"], (o.get("status") or {}).get("phase", "Active"), _age(o)]),
    "ServiceAccount": ([_col("Name", fmt="name"), _col("Secrets", "integer"), _col("Age")],
                       lambda o: [o["metadata"]["name"], len(o.get("secrets") or []), _age(o)]),
    "CustomResourceDefinition": ([_col("Name", fmt="name"), _col("Created At", "date")],
                                 lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]),
    "Node": ([_col("Name", fmt="name"), _col("Status"), _col("Roles"), _col("Age"), _col("Version")],
             lambda o: [o["metadata"]["name"], "Ready", "<none>", _age(o),
                        ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")]),
    "PriorityClass": ([_col("Name", fmt="name"), _col("Value", "integer"), _col("Global-Default", "boolean"),
                       _col("Age")],
                      lambda o: [o["metadata"]["name"], o.get("value", 0), bool(o.get("globalDefault", False)),
                                 _age(o)]),
    "RoleBinding": ([_col("Name", fmt="name"), _col("Role"), _col("Age")],
                    lambda o: [o["metadata"]["name"],
                               f"{(o.get('roleRef') or {}).get('kind')}/{(o.get('roleRef') or {}).get('name')}",
                               _age(o)]),
    "ClusterRoleBinding": ([_col("Name", fmt="name"), _col("Role"), _col("Age")],
                           lambda o: [o["metadata"]["name"],
                                      f"{(o.get('roleRef') or {}).get('kind')}/{(o.get('roleRef') or {}).get('name')}",
                                      _age(o)]),
    "Role": ([_col("Name", fmt="name"), _col("Created At", "date")],
             lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]),
    "ClusterRole": ([_col("Name", fmt="name"), _col("Created At", "date")],
                    lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]),
    "Event": ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")],
              lambda o: [_age({"metadata": {"creationTimestamp": o.get("lastTimestamp")
                                            or o["metadata"].get("creationTimestamp")}}),
                         o.get("type", ""), o.get("reason", ""),
                         f"{(o.get('involvedObject') or {}).get('kind', '').lower()}/"
                         f"{(o.get('involvedObject') or {}).get('name', '')}", o.get("message", "")]),
}
DEFAULT = ([_col("Name", fmt="name"), _col("Age")], lambda o: [o["metadata"]["name"], _age(o)])


def _json_path(obj, path: str):
    """The simple JSONPath subset CRD printer columns use: `.a.b`, `.a[0].b`."""
    cur = obj
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            idx = int(part[1:-1])
            cur = cur[idx] if isinstance(cur, list) and idx < len(cur) else None
        else:
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur is None:
            return None
    return cur


def crd_columns(printer_columns: list[dict]):
    cols = [_col("Name", fmt="name")]
    specs = []
    for pc in printer_columns:
        typ = pc.get("type", "string")
        cols.append(_col(pc.get("name", ""), typ if typ != "date" else "string", pc.get("format", ""),
                         pc.get("priority", 0), pc.get("description", "")))
        specs.append((pc.get("jsonPath", ""), typ))

    def row(o):
        cells = [o["metadata"]["name"]]
        for path, typ in specs:
            v = _json_path(o, path)
            if typ == "date" and isinstance(v, str):
                v = _age({"metadata": {"creationTimestamp": v}})
            elif isinstance(v, (dict, list)):
                v = json.dumps(v, separators=(",", ":"))
            cells.append(v)
        return cells

    return cols, row


def table(res: Resource, objs: list[dict], rv: str, cont: str = "", include_object: str = "Metadata",
          printer_columns: list[dict] | None = None) -> dict:
    if printer_columns:
        cols, row = crd_columns(printer_columns)
    else:
        cols, row = COLUMNS.get(res.kind, DEFAULT) if res.builtin else DEFAULT
    rows = []
    for o in objs:
        r = {"cells": row(o)}
        if include_object == "Object":
            r["object"] = o
        elif include_object != "None":
            r["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": o["metadata"]}
        rows.append(r)
    md = {"resourceVersion": rv}
    if cont:
        md["continue"] = cont
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": md, "columnDefinitions": cols,
            "rows": rows}
