"""`KubeApiServer`: a fake Kubernetes API server for one sandbox GKE cluster (aiohttp, TLS, 127.0.0.1).

    srv = KubeApiServer(name="demo-kfp-cluster", state_dir=Path(...), token_checker=lambda t: ...,
                        speed=0.01, log=lambda entry: ...)
    port = await srv.start(port=0)
    srv.ca_pem        # PEM of the cluster CA (the GKE masterAuth.clusterCaCertificate, base64-decoded)
    await srv.stop()

What it reproduces: legacy discovery (`/api`, `/apis`, `/apis/<g>`, `/apis/<g>/<v>`; aggregated discovery is not
served, so clients that ask for it get the legacy format and fall back, as client-go does), a minimal
`/openapi/v3` (enough for kubectl to learn that the server does field validation, so `kubectl apply` needs no
`--validate=false`), `/version`; create, get, list (label/field selectors, limit/continue), watch (chunked JSON
lines, resourceVersion, timeoutSeconds, sendInitialEvents), update (PUT; 409 on resourceVersion mismatch),
patch (JSON merge, JSON patch, strategic merge approximated by key-aware merge, server-side apply approximated:
create-or-merge, managedFields per manager, field removal for the same manager, conflicts unless force),
delete (finalizers, ownerReference garbage collection, namespace termination) and deletecollection; status and
scale subresources; server-side Table printing for `kubectl get`; dryRun=All.
CRDs add their resources to discovery once Established (after ~1 s x speed).
Simulated controllers: see `controllers.py`.

Not reproduced: real field ownership on lists (lists without a known key are owned whole), schema validation
and pruning of custom resources, admission webhooks, RBAC (every valid token is cluster-admin), protobuf.
"""
from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import random
import re
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

from aiohttp import web

from . import errors as E
from . import protobuf
from .certs import ensure_certs, server_ssl_context
from .cluster import Cluster, scale_of
from .objects import Watcher
from .controllers import Simulator
from .nodes import node_objects
from .runtime import Judge, allow_all
from .resources import Resource
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .tables import table

K8S_VERSION = {
    "major": "1", "minor": "32", "emulationMajor": "1", "emulationMinor": "32",
    "gitVersion": "v1.32.4-gke.1000", "gitCommit": "5c8a6f3d2e1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f",
    "gitTreeState": "clean", "buildDate": "2025-04-15T09:21:36Z", "goVersion": "go1.23.6 X:boringcrypto",
    "compiler": "gc", "platform": "linux/amd64",
}
log = logging.getLogger("sandbox.kube")
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
            410: "Expired", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
            504: "Timeout"}
UNAUTHENTICATED = {"/version", "/healthz", "/livez", "/readyz"}


class KubeApiServer:
    def __init__(self, name: str, state_dir: Path, token_checker: Callable[[str], bool], speed: float = 1.0,
                 log: Callable[[dict], None] | None = None, region: str = "us-central1",
                 fault_source: Callable[[str, str], dict | None] | None = None, judge: Judge | None = None,
                 node_pools: list[dict] | None = None, project: str = "sandbox", workload_identity: bool = False):
        """``fault_source(method, path)``: an outside list of faults (the sandbox's control API) asked after the
        ones given to ``inject_fault``; it returns a fault dict (status, delay, message, reason, body) or None.
        ``judge(view, pod, container)``: whether a container can start (``runtime.py``); default: every one.
        ``node_pools``: the GKE cluster's ``nodePools`` (each with ``locations``, ``initialNodeCount``,
        ``config.machineType``, ``config.workloadMetadataConfig``): its Nodes (``nodes.py``); default: 3 x
        e2-standard-4 in one zone. ``workload_identity``: the cluster has a workload pool (pools default to
        GKE_METADATA)."""
        self.name = name
        self.nodes = node_objects(name, node_pools, project=project, workload_identity=workload_identity)
        self.judge: Judge = judge or allow_all
        self.fault_source = fault_source
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.token_checker = token_checker
        self.speed = float(speed)
        self._log = log
        self.region = region
        ca_path, self._crt, self._key = ensure_certs(self.state_dir / "tls", name)
        self.ca_pem: str = ca_path.read_text()
        self.cluster: Cluster | None = None
        self.sim: Simulator | None = None
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._tick_task: asyncio.Task | None = None
        self._watch_tasks: set[asyncio.Task] = set()
        self._stopping = False
        self._faults: list[dict] = []
        self._ssl = None
        # (Service name, port) -> async handler(request, namespace, path segments) behind the service proxy
        self.service_backends: dict[tuple[str, str], Callable] = {}

    # ------------------------------------------------------------------ faults
    def inject_fault(self, path: str, status: int = 500, *, method: str = "*", times: int = 1,
                     message: str = "", delay: float = 0.0, reason: str = "", rate: float | None = None,
                     seed: int | str | None = None) -> dict:
        """Answer the next `times` requests matching method and path (a regular expression, searched in
        the URL path) with a `Status` error of `status` (0: no error, only the delay). times<0: forever.
        With `rate` (0..1) each matching request is hit with that probability (RNG seeded with `seed`)."""
        fault = {"method": method.upper(), "path": re.compile(path), "status": status, "times": times,
                 "message": message, "delay": delay, "reason": reason, "rate": rate,
                 "rng": random.Random(seed) if rate is not None else None}
        self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self._faults.clear()

    def _match_fault(self, request: web.Request) -> dict | None:
        for f in self._faults:
            if f["times"] == 0:
                continue
            if f["method"] not in ("*", request.method) or not f["path"].search(request.path):
                continue
            if f.get("rate") is not None and f["rng"].random() >= f["rate"]:
                continue
            if f["times"] > 0:
                f["times"] -= 1
            return f
        return None

    # ------------------------------------------------------------------ lifecycle
    def prepare(self) -> None:
        """The blocking part of `start`: load (or create and persist) the cluster's objects and defaults, and the
        TLS context. Safe to call from a thread before `start` (nothing else uses the server yet), e.g.
        ``await asyncio.to_thread(srv.prepare)``; `start` calls it itself otherwise."""
        if self.cluster is None:
            cluster = Cluster(self.name, self.state_dir, self.speed, self.ca_pem, nodes=self.nodes)
            self.sim = Simulator(cluster, self.speed, self.region, judge=self.judge, log=self._emit_log)
            cluster.on_commit.append(self._on_commit)
            self.cluster = cluster
            self._ensure_root_ca_configmaps()
        if self._ssl is None:
            self._ssl = server_ssl_context(self._crt, self._key)

    async def start(self, port: int = 0) -> int:
        self._stopping = False
        self.prepare()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=self._ssl)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.sim.tick()
        self._tick_task = asyncio.create_task(self._ticker())
        return self.port

    async def stop(self) -> None:
        self._stopping = True
        if self._tick_task:
            self._tick_task.cancel()
            try:
                await self._tick_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._tick_task = None
        if self.cluster:
            for w in list(self.cluster.watchers):
                w.queue.put_nowait(None)
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _ticker(self) -> None:
        interval = min(0.5, max(0.02, self.speed * 2))
        while True:
            await asyncio.sleep(interval)
            try:
                self.sim.tick()
            except Exception:  # noqa: BLE001 - a controller bug must not stop the server
                log.exception("sandbox kube %s: simulated controllers failed", self.name)

    def _on_commit(self, res: Resource, etype: str, obj: dict, old: dict | None) -> None:
        if res.kind == "Namespace" and etype == "ADDED":
            self._namespace_defaults(obj["metadata"]["name"])

    def _ensure_root_ca_configmaps(self) -> None:
        for (_, name) in list(self.cluster.data.get("core~namespaces", {})):
            self._namespace_defaults(name)

    def _namespace_defaults(self, ns: str) -> None:
        """What kube-controller-manager puts in every namespace: SA `default` and ConfigMap `kube-root-ca.crt`."""
        c = self.cluster
        sa = c.lookup("", "v1", "serviceaccounts")
        cm = c.lookup("", "v1", "configmaps")
        if c.get_record(sa, ns, "default") is None:
            c.create(sa, ns, {"apiVersion": "v1", "kind": "ServiceAccount",
                              "metadata": {"name": "default", "namespace": ns}}, manager="kube-controller-manager")
        if c.get_record(cm, ns, "kube-root-ca.crt") is None:
            c.create(cm, ns, {"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                                           "annotations": {"kubernetes.io/description": "Contains a CA bundle that "
                                                           "can be used to verify the kube-apiserver when using "
                                                           "internal endpoints such as the internal service IP or "
                                                           "kubernetes.default.svc. No other usage is guaranteed "
                                                           "across distributions of Kubernetes clusters."}},
                              "data": {"ca.crt": self.ca_pem}}, manager="kube-controller-manager")

    # ------------------------------------------------------------------ plumbing
    def _emit_log(self, entry: dict) -> None:
        if self._log:
            try:
                self._log(entry)
            except Exception:  # noqa: BLE001
                pass

    async def _check_token(self, request: web.Request) -> str | bool:
        """The caller's user name (the token checker may give one) or True; False: not authenticated."""
        auth = request.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            return False
        token = auth[7:].strip()
        if not token:
            return False
        try:
            ok = self.token_checker(token)
            if inspect.isawaitable(ok):
                ok = await ok
        except Exception:  # noqa: BLE001
            return False
        return ok if isinstance(ok, str) and ok else bool(ok)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        t0 = time.time()
        status = 500
        try:
            fault = self._match_fault(request) if self._faults else None
            if fault is None and self.fault_source is not None:
                fault = self.fault_source(request.method, request.path)
            if fault:
                if fault.get("delay"):
                    await asyncio.sleep(float(fault["delay"]))
                if fault.get("status") and fault.get("body") is not None:
                    status = int(fault["status"])
                    return _json(fault["body"], status)
                if fault.get("status"):
                    code = int(fault["status"])
                    reason = fault.get("reason") or _REASONS.get(code, "InternalError")
                    raise E.ApiError(code, reason, fault.get("message") or f"sandbox: injected fault ({code} {reason})",
                                     {"retryAfterSeconds": 1} if code in (429, 503) else None)
            resp = await self._dispatch(request)
            status = resp.status
            return resp
        except E.ApiError as exc:
            status = exc.code
            resp = _json(exc.status(), exc.code)
            if exc.code in (429, 503):
                resp.headers["Retry-After"] = "1"
            return resp
        except Exception as exc:  # noqa: BLE001
            status = 500
            return _json(E.ApiError(500, "InternalError", f"Internal error occurred: {exc!r}").status(), 500)
        finally:
            self._emit_log({
                "method": request.method, "path": request.path, "query": request.query_string, "status": status,
                "time": t0, "duration_ms": round((time.time() - t0) * 1000, 2),
                "mutating": request.method in MUTATING, "cluster": self.name,
            })

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/version":
            return _json(K8S_VERSION)
        user = await self._check_token(request)
        if not user:
            raise E.unauthorized()
        segs = [unquote(s) for s in path.strip("/").split("/")] if path != "/" else []
        if isinstance(user, str) and user.isdigit():
            _forbid_unbound(user, request.method, segs)
        if not segs:
            return _json({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v2", "/openapi/v3",
                                    "/readyz", "/version"] + [f"/apis/{g['name']}" for g in self.cluster.groups()]})
        if segs[0] == "openapi":
            return self._openapi(segs[1:])
        if segs[0] in ("api", "apis") and len(segs) == 1 and _wants_aggregated(request.headers.get("Accept", "")):
            return self._aggregated(core=segs[0] == "api")
        if segs[:3] == ["api", "v1", "namespaces"] and len(segs) >= 7 and segs[4] == "services" \
                and segs[6] == "proxy":
            return await self._service_proxy(request, segs[3], segs[5], segs[7:])
        if segs[0] == "api":
            if len(segs) == 1:
                return _json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}]})
            if segs[1] != "v1":
                raise E.resource_not_found()
            group, version, rest = "", "v1", segs[2:]
        elif segs[0] == "apis":
            if len(segs) == 1:
                return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": self.cluster.groups()})
            groups = {g["name"]: g for g in self.cluster.groups()}
            g = groups.get(segs[1])
            if g is None:
                raise E.resource_not_found()
            if len(segs) == 2:
                return _json({"kind": "APIGroup", "apiVersion": "v1", **g})
            if segs[2] not in {v["version"] for v in g["versions"]}:
                raise E.resource_not_found()
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise E.resource_not_found()
        if not rest:
            if request.method != "GET":
                raise E.method_not_allowed()
            return _json({"kind": "APIResourceList", "apiVersion": "v1",
                          "groupVersion": f"{group}/{version}" if group else version,
                          "resources": [x for r in self.cluster.resources_in(group, version)
                                        for x in r.api_resources()]})
        return await self._resource_request(request, group, version, rest)

    # ------------------------------------------------------------------ service proxy
    async def _service_proxy(self, request: web.Request, ns: str, ref: str, tail: list[str]) -> web.StreamResponse:
        """``/api/v1/namespaces/NS/services/[scheme:]NAME[:PORT]/proxy/PATH``: the API server forwards to one ready
        endpoint of the Service (kubernetes/kubernetes pkg/registry/core/service/storage/storage.go
        ResourceLocation: the Service must exist, the port must be one of its ports (by name or number), and an
        endpoint must be ready, else 503 with the texts below). What answers behind a Service is a backend
        registered in ``service_backends[(NAME, PORT)]`` (the sandbox's ml-pipeline API); any other Service's
        endpoints refuse the connection."""
        parts = ref.split(":")
        name, port = (parts[1], parts[2]) if len(parts) == 3 else (parts[0], parts[1] if len(parts) > 1 else "")
        svc = self.cluster.get(self.cluster.lookup("", "v1", "services"), ns, name)
        ports = (svc.get("spec") or {}).get("ports") or []
        p = next((x for x in ports if not port or port in (str(x.get("port")), x.get("name"))), None)
        if p is None:
            return _unavailable(f'no service port "{port}" found for service "{name}"')
        selector = (svc.get("spec") or {}).get("selector") or {}
        ready = []
        for rec in self.cluster.data.get("core~pods", {}).values():
            pod = rec["obj"]
            md = pod["metadata"]
            labels = md.get("labels") or {}
            if md.get("namespace") != ns or not selector or any(labels.get(k) != v for k, v in selector.items()):
                continue
            if any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (pod.get("status") or {}).get("conditions") or []):
                ready.append(pod)
        if not ready:
            return _unavailable(f'no endpoints available for service "{name}"')
        backend = self.service_backends.get((name, str(p.get("port"))))
        if backend is None:
            ip = (ready[0].get("status") or {}).get("podIP", "10.8.0.2")
            return _unavailable(f"error trying to reach service: dial tcp {ip}:{p.get('targetPort', p.get('port'))}: "
                                "connect: connection refused")
        return await backend(request, ns, tail)

    # ------------------------------------------------------------------ aggregated discovery
    def _aggregated(self, core: bool) -> web.Response:
        """apidiscovery.k8s.io/v2 APIGroupDiscoveryList, which kubectl (client-go >= 1.30) asks for first."""
        c = self.cluster
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

    # ------------------------------------------------------------------ openapi
    def _openapi(self, rest: list[str]) -> web.Response:
        c = self.cluster
        gvs = sorted({(r.group, r.version) for r in c.resources.values()})
        if rest == ["v3"]:
            paths = {}
            for g, v in gvs:
                key = f"apis/{g}/{v}" if g else f"api/{v}"
                h = _hash(json.dumps(self._openapi_doc(g, v), sort_keys=True))
                paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={h}"}
            return _json({"paths": paths})
        if len(rest) >= 3 and rest[0] == "v3":
            if rest[1] == "api" and len(rest) == 3:
                g, v = "", rest[2]
            elif rest[1] == "apis" and len(rest) == 4:
                g, v = rest[2], rest[3]
            else:
                raise E.resource_not_found()
            if (g, v) not in gvs:
                raise E.resource_not_found()
            return _json(self._openapi_doc(g, v))
        # /openapi/v2 is served only as protobuf by real servers; not served here (kubectl uses v3 first).
        raise E.resource_not_found()

    def _openapi_doc(self, group: str, version: str) -> dict:
        params = [{"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
                  for n in ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")]
        paths: dict[str, Any] = {}
        schemas: dict[str, Any] = {}
        prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        for r in self.cluster.resources_in(group, version):
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

    # ------------------------------------------------------------------ resources
    async def _resource_request(self, request: web.Request, group: str, version: str,
                                rest: list[str]) -> web.StreamResponse:
        c = self.cluster
        watch_path = False
        if rest[0] == "watch":
            watch_path, rest = True, rest[1:]
            if not rest:
                raise E.resource_not_found()
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if len(rest) > 3:
            raise E.resource_not_found()
        res = c.lookup(group, version, plural)
        if res is None:
            raise E.resource_not_found()
        if ns and not res.namespaced:
            raise E.resource_not_found()
        if sub == "log" and request.method != "GET":
            raise E.method_not_allowed(res, name)
        if sub == "log" and res.kind == "Pod":
            q = request.query
            try:
                tail = int(q["tailLines"]) if q.get("tailLines") else None
            except ValueError as exc:
                raise E.bad_request(f"invalid tailLines: {q['tailLines']}") from exc
            text = self.sim.pods.logs(c.get(res, ns, name), q.get("container", ""),
                                      q.get("previous") in ("true", "1", "True"), tail)
            return web.Response(text=text, content_type="text/plain")
        if sub and sub not in res.subresources and not (res.kind == "Namespace" and sub == "finalize"):
            raise E.resource_not_found()
        q = request.query
        method = request.method
        dry_run = "All" in q.getall("dryRun", [])
        manager = q.get("fieldManager", "") or _manager_from_ua(request.headers.get("User-Agent", ""))
        wants_table = "as=Table" in request.headers.get("Accept", "")
        if method == "GET" and (watch_path or q.get("watch") in ("1", "true", "True")):
            if name:  # watch of one object: a field selector on its name
                return await self._watch(request, res, ns, f"metadata.name={name}")
            return await self._watch(request, res, ns, q.get("fieldSelector", ""))
        if not name:
            if method == "GET":
                return self._list(request, res, ns, wants_table)
            if method == "POST":
                if res.namespaced and not ns and res.kind not in ("SelfSubjectAccessReview",):
                    raise E.method_not_allowed(res)
                if "create" not in res.verbs:
                    raise E.method_not_allowed(res)
                body = await _read_body(request)
                obj = c.create(res, ns, body, manager=manager, dry_run=dry_run)
                code = 201
                if res.kind in ("SelfSubjectAccessReview", "SelfSubjectRulesReview", "SelfSubjectReview"):
                    code = 201
                return _json(obj, code)
            if method == "DELETE":
                if "deletecollection" not in res.verbs:
                    raise E.method_not_allowed(res)
                return self._delete_collection(request, res, ns, await _read_body(request, allow_empty=True),
                                               dry_run)
            raise E.method_not_allowed(res)
        if "get" not in res.verbs:
            raise E.method_not_allowed(res, name)
        if method == "GET":
            obj = c.get(res, ns, name)
            if sub == "scale":
                return _json(scale_of(res, obj))
            if wants_table and not sub:
                return _json(table(res, [obj], str(c.rv), include_object=q.get("includeObject", "Metadata"),
                                   printer_columns=self._printer_columns(res)))
            return _json(obj)
        if method == "PUT":
            body = await _read_body(request)
            if sub == "finalize":
                sub = ""
            obj = c.update(res, ns, name, body, subresource=sub, manager=manager, dry_run=dry_run)
            return _json(scale_of(res, obj) if sub == "scale" else obj)
        if method == "PATCH":
            raw = await request.read()
            ct = request.headers.get("Content-Type", "")
            force = q.get("force") in ("true", "1", "True")
            if ct.startswith("application/apply-patch") and not q.get("fieldManager"):
                manager = ""
            obj, created = c.patch(res, ns, name, ct, raw, subresource=sub, manager=manager, force=force,
                                   dry_run=dry_run)
            if sub == "scale":
                obj = scale_of(res, obj)
            return _json(obj, 201 if created else 200)
        if method == "DELETE":
            body = await _read_body(request, allow_empty=True) or {}
            opts = dict(body) if isinstance(body, dict) else {}
            if q.get("propagationPolicy"):
                opts["propagationPolicy"] = q["propagationPolicy"]
            return _json(c.delete(res, ns, name, opts, dry_run=dry_run))
        raise E.method_not_allowed(res, name)

    def _printer_columns(self, res: Resource) -> list[dict] | None:
        if res.builtin or not res.crd_name:
            return None
        rec = self.cluster.data.get("apiextensions.k8s.io~customresourcedefinitions", {}).get(("", res.crd_name))
        if rec is None:
            return None
        for v in (rec["obj"].get("spec") or {}).get("versions") or []:
            if v.get("name") == res.version:
                cols = v.get("additionalPrinterColumns")
                if cols:
                    return cols
        return [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]

    def _selectors(self, request: web.Request, res: Resource, field_sel: str | None = None):
        q = request.query
        try:
            lp = parse_label_selector(q.get("labelSelector", ""))
            fp = parse_field_selector(q.get("fieldSelector", "") if field_sel is None else field_sel, res.kind)
        except SelectorError as exc:
            raise E.bad_request(f"unable to parse requirement: {exc}") from exc
        return lp, fp

    def _list(self, request: web.Request, res: Resource, ns: str, wants_table: bool) -> web.Response:
        c = self.cluster
        q = request.query
        if res.namespaced and ns and c.data.get("core~namespaces", {}).get(("", ns)) is None:
            pass  # the real server lists an empty collection for a missing namespace
        lp, fp = self._selectors(request, res)
        items = c.list(res, ns or None, lp, fp)
        start = 0
        cont_in = q.get("continue", "")
        if cont_in:
            try:
                token = json.loads(base64.urlsafe_b64decode(cont_in.encode() + b"==").decode())
                start = int(token["start"])
            except Exception as exc:  # noqa: BLE001
                raise E.bad_request(f"continue key is not valid: {exc}") from exc
        limit = int(q.get("limit", "0") or 0)
        page = items[start:]
        cont, remaining = "", None
        if limit > 0 and len(page) > limit:
            page = page[:limit]
            cont = base64.urlsafe_b64encode(json.dumps({"rv": c.rv, "start": start + limit}).encode()).decode()
            cont = cont.rstrip("=")
            remaining = len(items) - start - limit
        if wants_table:
            return _json(table(res, page, str(c.rv), cont, q.get("includeObject", "Metadata"),
                               printer_columns=self._printer_columns(res)))
        if res.builtin:
            for it in page:
                it.pop("apiVersion", None)
                it.pop("kind", None)
        md: dict = {"resourceVersion": str(c.rv)}
        if cont:
            md["continue"] = cont
            md["remainingItemCount"] = remaining
        return _json({"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": md, "items": page})

    def _delete_collection(self, request: web.Request, res: Resource, ns: str, body: Any,
                           dry_run: bool) -> web.Response:
        c = self.cluster
        lp, fp = self._selectors(request, res)
        items = c.list(res, ns or None, lp, fp)
        opts = body if isinstance(body, dict) else {}
        for it in items:
            try:
                c.delete(res, it["metadata"].get("namespace", ""), it["metadata"]["name"], opts, dry_run=dry_run)
            except E.ApiError:
                pass
        for it in items:
            it.pop("apiVersion", None) if res.builtin else None
            it.pop("kind", None) if res.builtin else None
        return _json({"kind": f"{res.kind}List", "apiVersion": res.api_version,
                      "metadata": {"resourceVersion": str(c.rv)}, "items": items})

    async def _watch(self, request: web.Request, res: Resource, ns: str, field_sel: str) -> web.StreamResponse:
        c = self.cluster
        q = request.query
        lp, fp = self._selectors(request, res, field_sel)
        rv_s = q.get("resourceVersion", "")
        try:
            since = int(rv_s) if rv_s else None
        except ValueError as exc:
            raise E.bad_request(f"invalid resource version: {rv_s}") from exc
        send_initial = q.get("sendInitialEvents") in ("true", "1")
        timeout = float(q.get("timeoutSeconds", "0") or 0) or 1800.0
        w = Watcher(res.store_key, ns or None, lp, fp, res)
        gone = c.add_watcher(w, since, send_initial)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                       "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        wants_table = "as=Table" in request.headers.get("Accept", "")
        printer = self._printer_columns(res) if wants_table else None
        try:
            if gone:
                await resp.write(_line({"type": "ERROR", "object": {
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": gone,
                    "reason": "Expired", "code": 410}}))
                return resp
            deadline = time.monotonic() + timeout
            last_bm = time.monotonic()
            while not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    ev = await asyncio.wait_for(w.queue.get(), timeout=min(left, 5.0))
                except asyncio.TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break  # the client went away
                    if bookmarks and time.monotonic() < deadline and time.monotonic() - last_bm >= 30:
                        last_bm = time.monotonic()
                        await resp.write(_line({"type": "BOOKMARK", "object": {
                            "kind": res.kind, "apiVersion": res.api_version,
                            "metadata": {"resourceVersion": str(c.rv)}}}))
                    continue
                if ev is None:
                    break
                etype, obj = ev
                if etype == "BOOKMARK":
                    if not (bookmarks or send_initial):
                        continue
                    obj = {"kind": res.kind, "apiVersion": res.api_version, **obj}
                else:
                    obj = dict(obj)
                    obj["apiVersion"], obj["kind"] = res.api_version, res.kind
                    if wants_table:  # kubectl get -w: every event carries a one-row Table
                        obj = table(res, [obj], obj["metadata"].get("resourceVersion", ""),
                                    include_object=q.get("includeObject", "Metadata"), printer_columns=printer)
                await resp.write(_line({"type": etype, "object": obj}))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            c.remove_watcher(w)
        try:
            await resp.write_eof()
        except Exception:  # noqa: BLE001
            pass
        return resp


# ---------------------------------------------------------------------------------------------- helpers
def _unavailable(message: str) -> web.Response:
    """The service proxy's 503 (apierrors.NewServiceUnavailable: no Retry-After, unlike a throttled request)."""
    return _json(E.ApiError(503, "ServiceUnavailable", message).status(), 503)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(obj, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


def _line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _wants_aggregated(accept: str) -> bool:
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


def _forbid_unbound(user: str, method: str, segs: list[str]) -> None:
    """A Google token that reaches GKE as a service account's numeric id (no userinfo.email scope): discovery is
    open to every authenticated user (the system:discovery ClusterRole), anything else is denied, with the text of
    GKE's IAM authorizer ("... is forbidden: User \"<id>\" cannot list resource \"namespaces\" in API group \"\" at
    the cluster scope: requires one of [\"container.namespaces.list\"] permission(s).", as in public logs)."""
    core = bool(segs) and segs[0] == "api"
    rest = segs[2:] if core else segs[3:]
    if not segs or segs[0] not in ("api", "apis") or not rest:
        return
    group = "" if core else segs[1]
    ns = rest[1] if len(rest) > 2 and rest[0] == "namespaces" else None
    parts = rest[2:] if ns else rest
    resource, named = parts[0], len(parts) > 1
    verb = {"GET": "get" if named else "list", "POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete"}.get(method, method.lower())
    scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
    raise E.forbidden(f'{resource} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group '
                      f'"{group}" {scope}: requires one of ["container.{resource}.{verb}"] permission(s).')


def _hash(s: str) -> str:
    import hashlib
    return hashlib.sha512(s.encode()).hexdigest()[:128].upper()


def _manager_from_ua(ua: str) -> str:
    """The real server derives a default field manager from the User-Agent's first segment."""
    return (ua.split("/")[0] or "unknown")[:128] if ua else "unknown"


async def _read_body(request: web.Request, allow_empty: bool = False) -> Any:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return None
        raise E.bad_request("the body of the request was empty")
    ct = request.headers.get("Content-Type", "application/json")
    if ct.startswith(protobuf.PROTOBUF):
        try:
            return protobuf.decode(raw)
        except (protobuf.ProtobufError, UnicodeDecodeError, IndexError) as exc:
            raise E.ApiError(415, "UnsupportedMediaType", str(exc)) from exc
    try:
        if "yaml" in ct:
            import yaml
            return yaml.safe_load(raw.decode())
        return json.loads(raw.decode())
    except Exception as exc:  # noqa: BLE001
        raise E.bad_request(f"the body of the request could not be decoded: {exc}") from exc
