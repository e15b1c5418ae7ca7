"""Discovery: ``/version``'s answer, aggregated discovery (apidiscovery.k8s.io/v2, which kubectl asks for first) and a
minimal ``/openapi/v3``. The legacy discovery documents (``/api``, ``/apis``, ...) are answered in ``server.py``.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from . import errors as E
from .cluster import Cluster
from .resources import Resource
from .rest import json_response

K8S_VERSION = {
    "major": "1", "minor": "32", "emulationMajor": "1", "emulationMinor": "32",
    "gitVersion": "v1.32.4-gke.1000", "gitCommit": "5c8a6f3d2e1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f",
    "gitTreeState": "clean", "buildDate": "2025-04-15T09:21:36Z", "goVersion": "go1.23.6 X:boringcrypto",
    "compiler": "gc", "platform": "linux/amd64",
}


def aggregated(c: Cluster, core: bool) -> web.Response:
    """apidiscovery.k8s.io/v2 APIGroupDiscoveryList, which kubectl (client-go >= 1.30) asks for first."""
    if core:
        groups = [("", ["v1"])]
    else:
        groups = [(g["name"], [v["version"] for v in g["versions"]]) for g in c.groups()]
    items = []
    for name, versions in groups:
        vs = []
        for v in versions:
            vs.append({"version": v, "freshness": "Current",
                       "resources": [_discovery_resource(r) for r in c.resources_in(name, v)]})
        md: dict = {"creationTimestamp": None}
        if name:
            md["name"] = name
        items.append({"metadata": md, "versions": vs})
    body = {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": items}
    resp = web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=200)
    resp.headers["Content-Type"] = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    return resp


def openapi(c: Cluster, rest: list[str]) -> web.Response:
    """``/openapi/v3`` and its group-versions: enough for kubectl to learn that the server validates fields."""
    gvs = sorted({(r.group, r.version) for r in c.resources.values()})
    if rest == ["v3"]:
        paths = {}
        for g, v in gvs:
            key = f"apis/{g}/{v}" if g else f"api/{v}"
            h = _hash(json.dumps(_openapi_doc(c, g, v), sort_keys=True))
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={h}"}
        return json_response({"paths": paths})
    if len(rest) >= 3 and rest[0] == "v3":
        if rest[1] == "api" and len(rest) == 3:
            g, v = "", rest[2]
        elif rest[1] == "apis" and len(rest) == 4:
            g, v = rest[2], rest[3]
        else:
            raise E.resource_not_found()
        if (g, v) not in gvs:
            raise E.resource_not_found()
        return json_response(_openapi_doc(c, g, v))
    # /openapi/v2 is served only as protobuf by real servers; not served here (kubectl uses v3 first).
    raise E.resource_not_found()


def _openapi_doc(c: Cluster, group: str, version: str) -> dict:
    params = [{"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
              for n in ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")]
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    for r in c.resources_in(group, version):
        gvk = {"group": group, "version": version, "kind": r.kind}
        obj_path = (f"{prefix}/namespaces/{{namespace}}/{r.plural}/{{name}}" if r.namespaced
                    else f"{prefix}/{r.plural}/{{name}}")
        op_id = f"{r.kind}{version}"
        ops = {}
        for verb in ("get", "put", "patch", "delete"):
            ops[verb] = {"operationId": f"{verb}{op_id}", "x-kubernetes-action": verb if verb != "put"
                         else "put", "x-kubernetes-group-version-kind": gvk,
                         "parameters": list(params) if verb in ("patch", "put") else [],
                         "responses": {"200": {"description": "OK"}}}
        paths[obj_path] = ops
        schema_name = ".".join(filter(None, ["io.sandbox", group or "core", version, r.kind]))
        schemas[schema_name] = {"type": "object", "x-kubernetes-group-version-kind": [gvk],
                                "x-kubernetes-preserve-unknown-fields": True}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": K8S_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": schemas}}


def wants_aggregated(accept: str) -> bool:
    for rng in accept.split(","):
        parts = [p.strip() for p in rng.split(";")]
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if parts[0] == "application/json" and params.get("g") == "apidiscovery.k8s.io" \
                and params.get("v") == "v2" and params.get("as") == "APIGroupDiscoveryList":
            return True
    return False


def _discovery_resource(r: Resource) -> dict:
    out: dict = {"resource": r.plural, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                 "scope": "Namespaced" if r.namespaced else "Cluster", "singularResource": r.singular,
                 "verbs": list(r.verbs)}
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    subs = []
    for sub in r.subresources:
        if sub == "scale":
            subs.append({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1",
                                                                  "kind": "Scale"},
                         "verbs": ["get", "patch", "update"]})
        elif sub == "status":
            subs.append({"subresource": "status", "responseKind": dict(out["responseKind"]),
                         "verbs": ["get", "patch", "update"]})
        elif sub == "log":
            subs.append({"subresource": "log", "responseKind": {"group": "", "version": "v1", "kind": "Pod"},
                         "verbs": ["get"]})
    if subs:
        out["subresources"] = subs
    return out


def _hash(s: str) -> str:
    return hashlib.sha512(s.encode()).hexdigest()[:128].upper()
