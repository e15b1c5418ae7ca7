"""The sandbox process: one aiohttp server on 127.0.0.1 serving every Google API the installer uses.

Request flow (``SandboxServer.dispatch``): control API (``/_sandbox/``) aside, every request first brings the
world up to date (``advance``: due events of the timeline), then meets the injected faults, then the route table,
authentication (a bearer token this sandbox issued), the enabled-service check (403 SERVICE_DISABLED), the
handler, the state save, and the request log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web

from . import catalog, keys
from .errors import ApiError, error_body_for_http, error_info
from .store import Store

log = logging.getLogger("sandbox")

API_SERVICE = {
    "serviceusage": "serviceusage.googleapis.com",
    "crm": "cloudresourcemanager.googleapis.com",
    "iam": "iam.googleapis.com",
    "compute": "compute.googleapis.com",
    "container": "container.googleapis.com",
    "sqladmin": "sqladmin.googleapis.com",
    "storage": "storage.googleapis.com",
    "orgpolicy": "orgpolicy.googleapis.com",
    "billing": "cloudbilling.googleapis.com",
}

Handler = Callable[..., Awaitable[Any]]


@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: Handler
    api: str
    style: str = "rpc"
    auth: bool = True
    mutating: bool | None = None
    check_service: bool = True

    @property
    def is_mutating(self) -> bool:
        return self.mutating if self.mutating is not None else self.method != "GET"


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler, api: str, **kw: Any) -> None:
        # {name} -> a path segment without ':' ; {name+} -> anything up to the next literal
        rx = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+?)", path)
        rx = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/:]+)", rx)
        self.routes.append(Route(method, re.compile("^" + rx + "$"), handler, api, **kw))

    def match(self, method: str, path: str) -> tuple[Route | None, dict, bool]:
        path_known = False
        for r in self.routes:
            m = r.pattern.match(path)
            if m:
                path_known = True
                if r.method == method:
                    return r, m.groupdict(), True
        return None, {}, path_known


@dataclass
class Ctx:
    srv: "SandboxServer"
    request: web.Request
    route: Route
    body: Any
    query: dict[str, str]
    now: float
    caller: str | None
    extra_headers: dict = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.srv.store

    @property
    def data(self) -> dict:
        return self.srv.store.data

    @property
    def speed(self) -> float:
        return self.srv.speed

    def dur(self, key: str) -> float:
        return self.srv.profile(key) * self.srv.speed

    async def sleep(self, key: str) -> None:
        d = self.dur(key)
        if d > 0:
            await asyncio.sleep(d)

    @property
    def base(self) -> str:
        return self.srv.url

    def denied(self, permission: str) -> bool:
        return permission in self.data["scenario"]["denied_permissions"]

    def require(self, permission: str, resource: str) -> None:
        if self.denied(permission):
            raise permission_error(self.route.api, permission, resource, self.caller)

    def project(self, project: str) -> dict:
        """The project record by id or number, or the error the route's API gives for a project you can't see."""
        for p in self.data["projects"].values():
            if project in (p["projectId"], p["projectNumber"]):
                return p
        api = self.route.api
        if api == "compute":
            raise ApiError("NOT_FOUND", f"The resource 'projects/{project}' was not found", style="compute",
                           reason="notFound")
        if api == "sqladmin":
            raise ApiError("PERMISSION_DENIED", "The client is not authorized to make this request.",
                           reason="notAuthorized", style="compute")
        if api == "container":
            raise ApiError("PERMISSION_DENIED", f"Required \"container.clusters.list\" permission(s) for "
                           f"\"projects/{project}\".")
        raise ApiError("PERMISSION_DENIED", "The caller does not have permission")


def permission_error(api: str, permission: str, resource: str, caller: str | None) -> ApiError:
    if api == "iam":
        return ApiError("PERMISSION_DENIED", f"Permission '{permission}' denied on resource (or it may not exist).",
                        reason="forbidden", details=[error_info("IAM_PERMISSION_DENIED", "iam.googleapis.com",
                                                                {"permission": permission})])
    if api == "compute":
        return ApiError("PERMISSION_DENIED", f"Required '{permission}' permission for '{resource}'",
                        reason="forbidden", style="compute")
    if api == "container":
        return ApiError("PERMISSION_DENIED", f"Required \"{permission}\" permission(s) for \"{resource}\".")
    if api == "sqladmin":
        return ApiError("PERMISSION_DENIED", "The client is not authorized to make this request.",
                        reason="notAuthorized", style="compute")
    if api == "storage":
        who = caller or "Anonymous caller"
        return ApiError("PERMISSION_DENIED",
                        f"{who} does not have {permission} access to the Google Cloud Storage bucket. "
                        f"Permission '{permission}' denied on resource (or it may not exist).",
                        reason="forbidden", style="compute")
    if api == "serviceusage":
        return ApiError("PERMISSION_DENIED", f"Permission denied to {permission.rsplit('.', 1)[-1]} service "
                        f"[{resource}]", details=[error_info("AUTH_PERMISSION_DENIED", "serviceusage.googleapis.com",
                                                              {"permission": permission})])
    return ApiError("PERMISSION_DENIED", "The caller does not have permission",
                    details=[error_info("IAM_PERMISSION_DENIED", "cloudresourcemanager.googleapis.com",
                                        {"permission": permission, "resource": resource})])


def service_disabled_error(project: dict, service: str) -> ApiError:
    num = project["projectNumber"]
    title = catalog.SERVICE_TITLES.get(service, service)
    url = f"https://console.developers.google.com/apis/api/{service}/overview?project={num}"
    msg = (f"{title} has not been used in project {num} before or it is disabled. Enable it by visiting {url} "
           f"then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our "
           f"systems and retry.")
    return ApiError(
        "PERMISSION_DENIED", msg, style="rpc", reason="accessNotConfigured",
        errors_extra={"domain": "usageLimits", "extendedHelp": "https://console.developers.google.com"},
        details=[
            error_info("SERVICE_DISABLED", "googleapis.com", {
                "service": service, "consumer": f"projects/{num}", "serviceTitle": title,
                "containerInfo": num, "activationUrl": url}),
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": msg},
            {"@type": "type.googleapis.com/google.rpc.Help",
             "links": [{"description": "Google developers console API activation", "url": url}]},
        ],
    )


class SandboxServer:
    def __init__(self, state_dir: Path, speed: float = 1.0) -> None:
        self.state_dir = Path(state_dir)
        self.speed = float(speed)
        self.store = Store(self.state_dir)
        self.router = Router()
        self.requests: list[dict] = []
        self._log_file = None
        self._load_log()
        self.url = ""
        self.port = 0
        self.kube: dict[str, Any] = {}  # cluster key -> KubeApiServer
        self.fault_rngs: dict[str, Any] = {}  # fault id -> random.Random (faults with a rate)
        self._kube_prep: dict[str, asyncio.Task] = {}  # cluster key -> KubeApiServer being prepared (thread)
        self._advance_lock = asyncio.Lock()
        self._key_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task | None = None
        self._runner: web.AppRunner | None = None
        self.signer_key = None
        self.pool = keys.KeyPool()
        from .apis import billing, control, compute, container, crm, iam, oauth, serviceusage, sqladmin, storage

        self.control = control
        for mod in (oauth, serviceusage, crm, iam, compute, container, sqladmin, storage, billing):
            mod.register(self.router)
        self.actions: dict[str, Callable[..., Awaitable[None]]] = {}
        for mod in (serviceusage, compute, container, sqladmin, iam):
            for name, fn in getattr(mod, "ACTIONS", {}).items():
                self.actions[name] = fn

    # ---------------------------------------------------------------- lifecycle
    async def start(self, port: int = 0) -> int:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = None
        for p in ([port] if port else []) + [0]:
            try:
                site = web.TCPSite(self._runner, "127.0.0.1", p)
                await site.start()
                break
            except OSError:
                if p == 0:
                    raise
        assert site is not None
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._ensure_caller()
        await self.advance()
        await self._restart_clusters()
        self.store.save()
        self._ticker = asyncio.create_task(self._tick())
        import threading

        threading.Thread(target=self.pool.top_up, name="keypool", daemon=True).start()
        # import the Kubernetes half now, off the loop, rather than when the first cluster is created
        threading.Thread(target=_import_kube, name="kube-import", daemon=True).start()
        return self.port

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        for key in list(self.kube):
            await self.stop_kube(key)
        if self.store.dirty:
            self.store.save()
        if self._runner:
            await self._runner.cleanup()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    async def _tick(self) -> None:
        while True:
            nxt = self.store.next_event_at()
            delay = 0.5 if nxt is None else max(0.0, min(0.5, nxt - time.time()))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay + 0.001)
            except asyncio.TimeoutError:
                pass
            try:
                await self.advance()
                if self.store.dirty:
                    self.store.save()
            except Exception:  # noqa: BLE001
                log.error("advance failed: %s", traceback.format_exc())

    def profile(self, key: str) -> float:
        """Seconds at speed 1 for a latency key (catalog.PROFILE, overridden by the ``profile`` scenario)."""
        over = self.store.data["scenario"].get("profile") or {}
        return float(over.get(key, catalog.PROFILE[key]))

    def wake(self) -> None:
        self._wake.set()

    async def advance(self) -> None:
        async with self._advance_lock:
            while True:
                ev = self.store.pop_due(time.time())
                if ev is None:
                    break
                fn = self.actions.get(ev["action"])
                if fn is None:
                    log.error("unknown event %s", ev["action"])
                    continue
                try:
                    await fn(self, **ev["args"])
                except Exception:  # noqa: BLE001
                    log.error("event %s failed: %s", ev["action"], traceback.format_exc())

    def schedule(self, at: float, action: str, **args: Any) -> None:
        self.store.schedule(at, action, **args)
        self.wake()

    # ---------------------------------------------------------------- caller credentials
    @property
    def caller_key_path(self) -> Path:
        return self.state_dir / "caller-key.json"

    @property
    def gcloud_token_path(self) -> Path:
        return self.state_dir / "gcloud-access-token"

    @property
    def gcloud_config_dir(self) -> Path:
        return self.state_dir / "gcloud"

    def _ensure_caller(self) -> None:
        data = self.store.data
        sa = data["service_accounts"].get(catalog.CALLER_EMAIL)
        if sa is None:
            from .apis.iam import new_sa_record

            sa = new_sa_record(catalog.PROJECT_ID, catalog.CALLER_ACCOUNT_ID, "mlops-install sandbox caller",
                               "The identity the sandbox's key file logs in as", time.time() - 86400)
            sa["visible_at"] = sa["visible_iam_at"] = 0
            data["service_accounts"][catalog.CALLER_EMAIL] = sa
        # signer for id tokens
        signer_path = self.state_dir / "signer.pem"
        if not signer_path.exists():
            _write_private(signer_path, keys.private_pem(self.new_rsa_key()))
        self.signer_key = keys.load_private(signer_path.read_text())
        if self.caller_key_path.exists():
            info = json.loads(self.caller_key_path.read_text())
        else:
            pk = self.new_rsa_key()
            kid = keys.new_key_id()
            info = keys.service_account_key_file(
                project_id=catalog.PROJECT_ID, key_id=kid, private_key_pem=keys.private_pem(pk),
                client_email=catalog.CALLER_EMAIL, client_id=sa["oauth2ClientId"], token_uri="")
            data["keys"][kid] = {"sa": catalog.CALLER_EMAIL, "public_pem": keys.public_pem(pk),
                                 "created": time.time() - 86400, "type": "USER_MANAGED", "disabled": False}
        info["token_uri"] = f"{self.url}/token"
        _write_private(self.caller_key_path, json.dumps(info, indent=2))
        # a long-lived access token for gcloud (CLOUDSDK_AUTH_ACCESS_TOKEN_FILE)
        tok = None
        if self.gcloud_token_path.exists():
            tok = self.gcloud_token_path.read_text().strip()
            if self.store.token_email(tok) is None:
                tok = None
        if tok is None:
            tok = "ya29.sandbox-gcloud-" + uuid.uuid4().hex + uuid.uuid4().hex
            self.store.add_token(tok, catalog.CALLER_EMAIL, time.time() + 365 * 86400)
            _write_private(self.gcloud_token_path, tok)
        self.gcloud_config_dir.mkdir(exist_ok=True)
        self.store.touch()

    def new_rsa_key(self):
        """A real RSA-2048 key this sandbox has not handed out before (from the machine's key pool)."""
        used = self.store.data.setdefault("pool_keys_used", [])
        key, _ = self.pool.take(used)
        self.store.touch()
        return key

    async def new_rsa_key_async(self):
        """As new_rsa_key, off the event loop; one at a time so two callers never get the same pool key."""
        async with self._key_lock:
            used = list(self.store.data.setdefault("pool_keys_used", []))
            key, fp = await asyncio.to_thread(self.pool.take, used)
            self.store.data["pool_keys_used"].append(fp)
            self.store.touch()
            return key

    def issue_token(self, email: str, lifetime: int = 3600, scopes: list[str] | None = None) -> str:
        tok = "ya29.sandbox-" + uuid.uuid4().hex + uuid.uuid4().hex
        self.store.add_token(tok, email, time.time() + lifetime, scopes)
        self.store.save()
        return tok

    def token_ok(self, token: str) -> bool:
        return self.store.token_email(token) is not None

    def kube_user(self, token: str) -> str | None:
        """The Kubernetes user name GKE gives a Google access token (None: not a valid token). A service account's
        token without the userinfo.email scope carries no email, so GKE knows the caller only by the account's
        numeric id, which no RBAC or IAM binding names (kubernetes-client/python kube_config.py asks for
        cloud-platform + userinfo.email for that reason; gcp-api-behaviour.md §10)."""
        rec = self.store.token_record(token)
        if rec is None:
            return None
        scopes = rec.get("scopes")
        if scopes is None or "https://www.googleapis.com/auth/userinfo.email" in scopes or \
                "email" in scopes:
            return rec["email"]
        sa = self.store.data["service_accounts"].get(rec["email"]) or {}
        return sa.get("uniqueId") or rec["email"]

    # ---------------------------------------------------------------- kubernetes per cluster
    def _build_kube(self, key: str, name: str, location: str) -> Any:
        """A prepared (not yet listening) KubeApiServer for a cluster: certificates, objects, defaults. Blocking
        (imports, key generation, a few dozen file writes): runs in a thread, see prepare_kube."""
        from .kube.server import KubeApiServer
        from .workloads import judge_for

        kdir = self._kube_dir(key)
        kdir.mkdir(parents=True, exist_ok=True)
        region = location if location in catalog.REGIONS else catalog.zone_region(location)
        rec = self.store.data["clusters"].get(key) or {}  # its Nodes model the node pools (sandbox/kube/nodes.py)
        pools = [dict(p, locations=list(p.get("locations") or rec.get("locations") or [location]))
                 for p in rec.get("nodePools") or []] or None
        srv = KubeApiServer(name=name, state_dir=kdir, token_checker=self.kube_user, speed=self.speed,
                            log=self._kube_log(name), region=region or "us-central1",
                            fault_source=self._kube_fault_source(name), judge=judge_for(self, key),
                            node_pools=pools, project=key.split("/", 1)[0],
                            workload_identity=bool(rec.get("workloadIdentityConfig")))
        srv.prepare()
        from .workloads.kfp_api import KfpApi
        srv.service_backends[("ml-pipeline", "8888")] = KfpApi(srv, kdir / "ml-pipeline-db.json").handle
        return srv

    def prepare_kube(self, key: str, cluster: dict) -> "asyncio.Task":
        """Start preparing the cluster's Kubernetes API in a thread (at most once); the task gives the server.
        Called when a cluster is created, so it is ready long before the cluster is due to be RUNNING."""
        task = self._kube_prep.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.ensure_future(asyncio.to_thread(self._build_kube, key, cluster["name"],
                                                           cluster.get("location", "")))
            task.add_done_callback(self._kube_prepared)
            self._kube_prep[key] = task
        return task

    def _kube_prepared(self, task: "asyncio.Task") -> None:
        if not task.cancelled() and task.exception() is not None:  # retrieved here; start_kube re-raises it
            log.debug("preparing a Kubernetes API failed: %r", task.exception())
        self.wake()  # a cluster waiting for it becomes RUNNING now

    async def start_kube(self, key: str, cluster: dict, wait: bool = True) -> bool:
        """Make the cluster's Kubernetes API listen and put its endpoint and CA into the cluster record.
        The blocking preparation runs in a thread (prepare_kube), never on the event loop. With ``wait=False``
        it returns False at once while that preparation is still running (the caller tries again later)."""
        if key in self.kube:
            return True
        try:
            task = self.prepare_kube(key, cluster)
        except Exception as exc:  # noqa: BLE001
            log.warning("no Kubernetes API for cluster %s: %s", key, exc)
            return True
        if not task.done() and not wait:
            return False
        try:
            srv = await task
        except ImportError as exc:  # the other half may not exist yet
            self._kube_prep.pop(key, None)
            log.warning("no Kubernetes API for cluster %s: sandbox.kube is not importable (%s)", key, exc)
            cluster["endpoint"] = cluster.get("endpoint") or "127.0.0.1"
            cluster.setdefault("masterAuth", {})["clusterCaCertificate"] = ""
            return True
        except BaseException:
            self._kube_prep.pop(key, None)
            raise
        if key in self.kube:  # someone else started it while we waited
            return True
        self._kube_prep.pop(key, None)
        old = cluster.get("_kube_port") or 0
        try:
            port = await srv.start(port=old)
        except OSError:
            port = await srv.start(port=0)
        self.kube[key] = srv
        import base64

        cluster["_kube_port"] = port
        cluster["endpoint"] = f"127.0.0.1:{port}"
        cluster.setdefault("masterAuth", {})["clusterCaCertificate"] = base64.b64encode(
            srv.ca_pem.encode()).decode()
        self.store.touch()
        return True

    def _kube_dir(self, key: str) -> Path:
        return self.state_dir / "kube" / key.replace("/", "__")

    async def forget_kube(self, key: str) -> None:
        """Remove a deleted cluster's Kubernetes state (objects, CA), off the loop."""
        import shutil

        self._kube_prep.pop(key, None)
        await asyncio.to_thread(shutil.rmtree, self._kube_dir(key), True)

    def _kube_fault_source(self, cluster: str) -> Callable[[str, str], dict | None]:
        """Faults of the control API with target ``kube`` or this cluster's name, for its Kubernetes API."""
        def source(method: str, path: str) -> dict | None:
            if not self.store.data["faults"]:
                return None
            return self.control.match_fault(self, method, path, cluster=cluster)

        return source

    async def stop_kube(self, key: str) -> None:
        self._kube_prep.pop(key, None)
        srv = self.kube.pop(key, None)
        if srv is not None:
            try:
                await srv.stop()
            except Exception:  # noqa: BLE001
                log.error("kube stop failed: %s", traceback.format_exc())

    def _kube_log(self, cluster: str) -> Callable[[dict], None]:
        def _log(entry: dict) -> None:
            e = dict(entry)
            e.setdefault("api", "kubernetes")
            e["cluster"] = cluster
            e.setdefault("time", time.time())
            self._append_log(e)

        return _log

    async def _restart_clusters(self) -> None:
        for key, c in list(self.store.data["clusters"].items()):
            if c.get("status") in ("RUNNING", "RECONCILING", "STOPPING"):
                await self.start_kube(key, c)
            elif c.get("status") == "PROVISIONING":  # ready by the time it is due
                self.prepare_kube(key, c)

    # ---------------------------------------------------------------- request handling
    def _load_log(self) -> None:
        """The request log survives restarts: ``STATE/requests.jsonl`` (method, path, status, time; no headers)."""
        path = self.state_dir / "requests.jsonl"
        if path.exists():
            lines = path.read_text().splitlines()
            for line in lines[-20000:]:
                try:
                    self.requests.append(json.loads(line))
                except ValueError:
                    pass
            if len(lines) > 20000:  # keep the file bounded too
                path.write_text("".join(json.dumps(r) + "\n" for r in self.requests))
        self._log_file = open(path, "a", buffering=1)

    def _append_log(self, entry: dict) -> None:
        self.requests.append(entry)
        if len(self.requests) > 20000:
            del self.requests[:5000]
        if self._log_file is not None:
            self._log_file.write(json.dumps(entry) + "\n")

    def clear_log(self) -> int:
        n = len(self.requests)
        self.requests.clear()
        if self._log_file is not None:
            self._log_file.truncate(0)
        return n

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_sandbox/") or path == "/_sandbox":
            # the control API meets only faults whose regex names it, and never on /_sandbox/faults
            if not path.startswith("/_sandbox/faults") and any(
                    "_sandbox" in (f.get("path") or "") for f in self.store.data["faults"]):
                fault = self.control.match_fault(self, request.method, path)
                if fault is not None:
                    resp = await self._fault_response(fault, "rpc")
                    if resp is not None:
                        return resp
            return await self.control.handle(self, request)
        t0 = time.time()
        method = request.method
        route, params, path_known = self.router.match(method, path)
        entry = {"method": method, "path": path, "query": request.query_string, "time": t0,
                 "api": route.api if route else None, "mutating": route.is_mutating if route else method != "GET"}
        style = route.style if route else "rpc"
        try:
            resp = await self._dispatch(request, route, params, path_known, style)
        except ApiError as e:
            resp = _json(e.body(style), e.http)
        except Exception:  # noqa: BLE001
            log.error("handler crashed: %s", traceback.format_exc())
            resp = _json(error_body_for_http(500, style=style), 500)
        if self.store.dirty:
            self.store.save()
        entry["status"] = resp.status
        entry["duration"] = round(time.time() - t0, 4)
        self._append_log(entry)
        return resp

    async def _dispatch(self, request: web.Request, route: Route | None, params: dict, path_known: bool,
                        style: str) -> web.StreamResponse:
        # the request's time is taken before the timeline is advanced, so everything due by then has happened: an
        # operation a handler shows as done at ``ctx.now`` has its effects applied (a later clock could see an
        # operation done whose scheduled effect, e.g. a cluster turning RUNNING, has not run yet)
        now = time.time()
        await self.advance()
        # faults first: they stand for the network and Google's front end
        fault = self.control.match_fault(self, request.method, request.path)
        if fault is not None:
            resp = await self._fault_response(fault, style)
            if resp is not None:
                return resp
        if route is None:
            if path_known:
                raise ApiError("INVALID_ARGUMENT", f"Method not allowed: {request.method}", http=405)
            raise ApiError("NOT_FOUND", f"The requested URL {request.path} was not found on this server.",
                           reason="notFound")
        caller = None
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            caller = self.store.token_email(auth[7:].strip())
            if caller is None:
                raise ApiError("UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 "
                               "access token, login cookie or other valid authentication credential. See "
                               "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                               reason="authError", errors_extra={"location": "Authorization",
                                                                  "locationType": "header"},
                               details=[error_info("ACCESS_TOKEN_EXPIRED", "googleapis.com",
                                                   {"service": API_SERVICE.get(route.api, ""),
                                                    "method": route.handler.__name__})])
        elif route.auth:
            raise ApiError("UNAUTHENTICATED", "Request is missing required authentication credential. Expected "
                           "OAuth 2 access token, login cookie or other valid authentication credential. See "
                           "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                           reason="required", errors_extra={"location": "Authorization", "locationType": "header"})
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            ctype = request.headers.get("Content-Type", "")
            if raw and "json" in ctype:
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise ApiError("INVALID_ARGUMENT", "Invalid JSON payload received.") from None
            elif raw and "x-www-form-urlencoded" in ctype:
                from urllib.parse import parse_qs

                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            elif raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
        if body is None:
            body = {}
        query = {k: request.query.getone(k) for k in request.query.keys()}
        ctx = Ctx(self, request, route, body, query, now, caller)
        if route.check_service and route.api in API_SERVICE:
            self._check_service(ctx, route, params)
        result = await route.handler(ctx, **params)
        if isinstance(result, web.StreamResponse):
            return result
        status = 200
        if isinstance(result, tuple):
            status, result = result
        return _json(result, status, ctx.extra_headers)

    async def _fault_response(self, fault: dict, style: str) -> web.Response | None:
        """Wait the fault's delay; then its error response, or None (a delay-only fault: carry on)."""
        if fault.get("delay"):
            await asyncio.sleep(float(fault["delay"]))
        if not fault.get("status"):
            return None
        body = fault.get("body")
        if body is None:
            body = error_body_for_http(int(fault["status"]), fault.get("message"), style=style)
            if fault.get("reason"):
                body["error"]["errors"][0]["reason"] = fault["reason"]
        return _json(body, int(fault["status"]))

    def _check_service(self, ctx: Ctx, route: Route, params: dict) -> None:
        pid = params.get("project")
        if route.api == "storage":
            pid = ctx.query.get("project") or pid
            if pid is None and "bucket" in params:
                b = self.store.data["buckets"].get(params["bucket"])
                pid = b["_project"] if b else None
        if (not pid or pid == "-") and ctx.caller:
            sa = self.store.data["service_accounts"].get(ctx.caller)
            pid = sa["projectId"] if sa else None
        if not pid or pid == "-":
            return
        proj = None
        for p in self.store.data["projects"].values():
            if pid in (p["projectId"], p["projectNumber"]):
                proj = p
        if proj is None:
            return
        # User credentials may name a quota project (header x-goog-user-project, google-auth's quota_project_id). For
        # client-based APIs the API must be enabled there, not in the resource's project, and SERVICE_DISABLED names
        # that project as its consumer; resource-based APIs (Compute, GKE, SQL, Storage) use the resource's project
        # (https://cloud.google.com/docs/quotas/quota-project). Service Usage and Resource Manager are treated as
        # client-based here.
        quota_project = ctx.request.headers.get("x-goog-user-project")
        if quota_project and route.api in ("serviceusage", "crm"):
            proj = next((p for p in self.store.data["projects"].values()
                         if quota_project in (p["projectId"], p["projectNumber"])), proj)
        svc = API_SERVICE[route.api]
        if not self.service_usable(proj["projectId"], svc):
            raise service_disabled_error(proj, svc)

    def service_usable(self, project_id: str, service: str) -> bool:
        rec = self.store.data["services"].get(project_id, {}).get(service)
        return bool(rec and rec["state"] == "ENABLED" and rec.get("usable_at", 0) <= time.time())


def _import_kube() -> None:
    try:
        import sandbox.kube.server  # noqa: F401
    except Exception:  # noqa: BLE001  reported when a cluster needs it
        pass


def _json(body: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json",
                        headers=headers or None)


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log.warning("parent %s is gone: stopping", pid)
            stop.set()
            return
        except PermissionError:
            pass
        await asyncio.sleep(1.0)


async def serve(state_dir: Path, speed: float, port: int = 0, parent_pid: int | None = None,
                locked: bool = False) -> None:
    """Run until SIGTERM/SIGINT; write ``state_dir/sandbox.json`` once listening."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    info_path = state_dir / "sandbox.json"
    if not port and info_path.exists():
        try:
            port = int(json.loads(info_path.read_text()).get("port") or 0)
        except (ValueError, OSError):
            port = 0
    if not locked:  # the CLI takes the lock itself, before its imports
        import fcntl

        lock = open(state_dir / ".sandbox.lock", "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another sandbox is already serving {state_dir} (see {info_path})") from None
    srv = SandboxServer(state_dir, speed)
    await srv.start(port)
    info = {"url": srv.url, "port": srv.port, "pid": os.getpid(), "speed": speed, "started": time.time(),
            "state_dir": str(state_dir.resolve())}
    tmp = info_path.with_name(".sandbox.json.tmp")
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, info_path)
    print(f"sandbox listening on {srv.url} (state {state_dir}, speed {speed})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_parent(parent_pid, stop)) if parent_pid else None
    await stop.wait()
    if watcher:
        watcher.cancel()
    await srv.stop()
