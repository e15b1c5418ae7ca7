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
import signal
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web

from . import catalog, faults, keys
from .apis import billing, compute, container, control, crm, iam, oauth, serviceusage, sqladmin, storage
from .clusters import ClusterApis, import_kube
from .env import state_folder
from .errors import ApiError, error_body_for_http, error_info, service_disabled_error
from .routing import API_SERVICE, Ctx, Route, Router, json_response
from .store import Store

log = logging.getLogger("sandbox")


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
        self.clusters = ClusterApis(self)
        self.fault_rngs: dict[str, Any] = {}  # fault id -> random.Random (faults with a rate)
        self._advance_lock = asyncio.Lock()
        self._key_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task | None = None
        self._runner: web.AppRunner | None = None
        self.signer_key = None
        self.pool = keys.KeyPool()
        for mod in (oauth, serviceusage, crm, iam, compute, container, sqladmin, storage, billing):
            mod.register(self.router)
        # the timeline's events: name -> coroutine (see advance)
        self.actions: dict[str, Callable[..., Awaitable[None]]] = {
            **serviceusage.ACTIONS, **compute.ACTIONS, **container.ACTIONS, **sqladmin.ACTIONS}

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
        await self.clusters.restart()
        self.store.save()
        self._ticker = asyncio.create_task(self._tick())
        import threading

        threading.Thread(target=self.pool.top_up, name="keypool", daemon=True).start()
        # import the Kubernetes half now, off the loop, rather than when the first cluster is created
        threading.Thread(target=import_kube, name="kube-import", daemon=True).start()
        return self.port

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        await self.clusters.stop_all()
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
            sa = iam.new_sa_record(catalog.PROJECT_ID, catalog.CALLER_ACCOUNT_ID, "mlops-install sandbox caller",
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

    def append_log(self, entry: dict) -> None:
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
                fault = faults.match_fault(self, request.method, path)
                if fault is not None:
                    resp = await faults.fault_response(fault, "rpc")
                    if resp is not None:
                        return resp
            return await control.handle(self, request)
        t0 = time.time()
        method = request.method
        route, params, path_known = self.router.match(method, path)
        entry = {"method": method, "path": path, "query": request.query_string, "time": t0,
                 "api": route.api if route else None, "mutating": route.is_mutating if route else method != "GET"}
        style = route.style if route else "rpc"
        try:
            resp = await self._dispatch(request, route, params, path_known, style)
        except ApiError as e:
            resp = json_response(e.body(style), e.http)
        except Exception:  # noqa: BLE001
            log.error("handler crashed: %s", traceback.format_exc())
            resp = json_response(error_body_for_http(500, style=style), 500)
        if self.store.dirty:
            self.store.save()
        entry["status"] = resp.status
        entry["duration"] = round(time.time() - t0, 4)
        self.append_log(entry)
        return resp

    async def _dispatch(self, request: web.Request, route: Route | None, params: dict, path_known: bool,
                        style: str) -> web.StreamResponse:
        # the request's time is taken before the timeline is advanced, so everything due by then has happened: an
        # operation a handler shows as done at ``ctx.now`` has its effects applied (a later clock could see an
        # operation done whose scheduled effect, e.g. a cluster turning RUNNING, has not run yet)
        now = time.time()
        await self.advance()
        # faults first: they stand for the network and Google's front end
        fault = faults.match_fault(self, request.method, request.path)
        if fault is not None:
            resp = await faults.fault_response(fault, style)
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
        return json_response(result, status, ctx.extra_headers)

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
    state_dir = state_folder(state_dir)
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
