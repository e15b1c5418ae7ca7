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
Simulated controllers: see `controllers.py`. This module is the HTTP server (TLS, faults, authentication, the
path dispatch, legacy discovery, the service proxy); the resource paths are `rest.py`'s, aggregated discovery and
OpenAPI `discovery.py`'s.

Not reproduced: real field ownership on lists (lists without a known key are owned whole), schema validation
and pruning of custom resources, admission webhooks, RBAC (every valid token is cluster-admin), protobuf.
"""
from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

from aiohttp import web

from . import discovery
from . import errors as E
from .certs import ensure_certs, server_ssl_context
from .cluster import Cluster
from .controllers import Simulator
from .nodes import node_objects
from .resources import Resource
from .rest import json_response, resource_request
from .runtime import Judge, allow_all

log = logging.getLogger("sandbox.kube")
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
            410: "Expired", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
            504: "Timeout"}
UNAUTHENTICATED = {"/version", "/healthz", "/livez", "/readyz"}


class KubeApiServer:
    def __init__(self, name: str, state_dir: Path, token_checker: Callable[[str], str | bool | None],
                 speed: float = 1.0, log: Callable[[dict], None] | None = None, region: str = "us-central1",
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
        self.stopping = False
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
        self.stopping = False
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
        self.stopping = True
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
                    return json_response(fault["body"], status)
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
            resp = json_response(exc.status(), exc.code)
            if exc.code in (429, 503):
                resp.headers["Retry-After"] = "1"
            return resp
        except Exception as exc:  # noqa: BLE001
            status = 500
            return json_response(E.ApiError(500, "InternalError", f"Internal error occurred: {exc!r}").status(), 500)
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
            return json_response(discovery.K8S_VERSION)
        user = await self._check_token(request)
        if not user:
            raise E.unauthorized()
        segs = [unquote(s) for s in path.strip("/").split("/")] if path != "/" else []
        if isinstance(user, str) and user.isdigit():
            _forbid_unbound(user, request.method, segs)
        if not segs:
            return json_response({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v2",
                                            "/openapi/v3", "/readyz", "/version"]
                                  + [f"/apis/{g['name']}" for g in self.cluster.groups()]})
        if segs[0] == "openapi":
            return discovery.openapi(self.cluster, segs[1:])
        if segs[0] in ("api", "apis") and len(segs) == 1 \
                and discovery.wants_aggregated(request.headers.get("Accept", "")):
            return discovery.aggregated(self.cluster, core=segs[0] == "api")
        if segs[:3] == ["api", "v1", "namespaces"] and len(segs) >= 7 and segs[4] == "services" \
                and segs[6] == "proxy":
            return await self._service_proxy(request, segs[3], segs[5], segs[7:])
        if segs[0] == "api":
            if len(segs) == 1:
                return json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}]})
            if segs[1] != "v1":
                raise E.resource_not_found()
            group, version, rest = "", "v1", segs[2:]
        elif segs[0] == "apis":
            if len(segs) == 1:
                return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": self.cluster.groups()})
            groups = {g["name"]: g for g in self.cluster.groups()}
            g = groups.get(segs[1])
            if g is None:
                raise E.resource_not_found()
            if len(segs) == 2:
                return json_response({"kind": "APIGroup", "apiVersion": "v1", **g})
            if segs[2] not in {v["version"] for v in g["versions"]}:
                raise E.resource_not_found()
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise E.resource_not_found()
        if not rest:
            if request.method != "GET":
                raise E.method_not_allowed()
            return json_response({"kind": "APIResourceList", "apiVersion": "v1",
                          "groupVersion": f"{group}/{version}" if group else version,
                          "resources": [x for r in self.cluster.resources_in(group, version)
                                        for x in r.api_resources()]})
        return await resource_request(self, request, group, version, rest)

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


# ---------------------------------------------------------------------------------------------- helpers
def _unavailable(message: str) -> web.Response:
    """The service proxy's 503 (apierrors.NewServiceUnavailable: no Retry-After, unlike a throttled request)."""
    return json_response(E.ApiError(503, "ServiceUnavailable", message).status(), 503)


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


