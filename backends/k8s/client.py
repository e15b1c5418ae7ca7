"""``KubeClient``: the Kubernetes REST API through ``kubernetes.client.ApiClient``, from endpoint + CA + token.

No kubeconfig and no gcloud: ``host = https://<endpoint>``, ``ca_cert_data`` = the cluster CA (PEM, in memory, no
file), bearer token from a ``TokenSource`` through ``refresh_api_key_hook`` (so every request carries a token that
is still valid, however long the install waits). Objects are plain dicts; the typed models are not used.

Requests are retried on connection errors, 429 and 5xx (a few times, with backoff); a 401 drops the cached token
and retries once. Bodies are never logged (Secrets pass through here).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import quote

from installer.errors import ErrorClass, InstallerError

from .auth import TokenSource

log = logging.getLogger("mlops_install.k8s")

FIELD_MANAGER = "mlops-install"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"


def time_scale() -> float:
    """The sandbox's speed (``MLOPS_INSTALL_TIME_SCALE``, default 1): every poll interval and timeout scales by it."""
    try:
        v = float(os.environ.get("MLOPS_INSTALL_TIME_SCALE", "1") or 1)
    except ValueError:
        return 1.0
    return v if v > 0 else 1.0


class KubeError(InstallerError):
    """A Kubernetes API error: HTTP ``status``, the Status ``reason`` (e.g. NotFound, AlreadyExists, Conflict).
    It is an ``InstallerError`` whose class follows the status (401 auth, 403 permission, 0/429/5xx transient)."""

    def __init__(self, status: int, reason: str, message: str, *, method: str = "", path: str = "") -> None:
        text = f"Kubernetes API: {status} {reason}: {message}" + (f" ({method} {path})" if method else "")
        if status == 401:
            cls, remedy = ErrorClass.AUTH, "Sign in again (`gcloud auth application-default login`), then run again."
        elif status == 403:
            cls, remedy = ErrorClass.PERMISSION_DENIED, ("Grant your account roles/container.admin on the project "
                                                         "(or cluster-admin in the cluster), then run again.")
        elif status in (0, 429) or status >= 500:
            cls, remedy = ErrorClass.TRANSIENT, "Run the installer again to resume."
        else:
            cls, remedy = ErrorClass.UNEXPECTED, ("Run the installer again; if it fails again, report it with the "
                                                  "debug log.")
        super().__init__(text, error_class=cls, remedy=remedy)
        self.status = status
        self.reason = reason
        self.kube_message = message  # the server's own text (``message`` is the full, user-facing one)
        self.method = method
        self.path = path


@dataclass(frozen=True)
class Resource:
    group_version: str  # "v1", "apps/v1"
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        return base


def obj_ref(obj: dict[str, Any]) -> str:
    """``Kind namespace/name`` for messages and progress."""
    md = obj.get("metadata", {})
    ns = md.get("namespace")
    return f"{obj.get('kind')} {ns + '/' if ns else ''}{md.get('name')}"


class KubeClient:
    def __init__(self, endpoint: str, ca_pem: str | bytes | None, tokens: TokenSource | None = None, *,
                 cluster: str = "", request_timeout: float = 30.0, retries: int = 5) -> None:
        from kubernetes.client import ApiClient, Configuration

        self.endpoint = endpoint
        self.cluster = cluster
        self.tokens = tokens or TokenSource()
        cfg = Configuration()
        cfg.host = endpoint if endpoint.startswith(("https://", "http://")) else f"https://{endpoint}"
        if ca_pem:
            cfg.ca_cert_data = ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem
        cfg.api_key = {"BearerToken": ""}
        cfg.api_key_prefix = {"BearerToken": "Bearer"}
        cfg.refresh_api_key_hook = self._refresh_hook
        self.configuration = cfg
        self.api = ApiClient(cfg)
        self.request_timeout = request_timeout
        self.retries = retries
        self._discovery: dict[str, dict[str, Resource]] = {}
        self._disc_lock = threading.Lock()
        self.requests = 0

    def _refresh_hook(self, cfg) -> None:
        cfg.api_key["BearerToken"] = self.tokens.token()

    def close(self) -> None:
        try:
            self.api.close()
        except Exception:  # pragma: no cover - best effort
            pass

    # -- raw requests -----------------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, query: list[tuple[str, Any]] | None = None,
                body: Any = None, content_type: str = "application/json", timeout: float | None = None,
                text: bool = False) -> Any:
        """One API call; returns the decoded JSON (or None for an empty body; with ``text`` the body as text, e.g.
        a pod's log). Raises ``KubeError``."""
        import urllib3

        headers = {"Accept": "text/plain" if text else "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        payload = json.dumps(body) if body is not None and not isinstance(body, (str, bytes)) else body
        attempt = 0
        refreshed = False
        delay = 0.5 * time_scale()
        while True:
            attempt += 1
            m, url, hdrs, _, _ = self.api.param_serialize(method, path, query_params=query or None,
                                                          header_params=dict(headers),
                                                          auth_settings=["BearerToken"])
            try:
                self.requests += 1
                resp = self.api.call_api(m, url, header_params=hdrs, body=payload,
                                         _request_timeout=timeout or self.request_timeout)
                data = resp.read()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if attempt <= self.retries:
                    log.debug("k8s %s %s: %s; retrying", method, path, exc)
                    time.sleep(delay)
                    delay = min(delay * 2, 10 * time_scale())
                    continue
                raise KubeError(0, "Unreachable", f"cannot reach the Kubernetes API at {self.endpoint}: {exc}",
                                method=method, path=path) from exc
            status = resp.status
            if 200 <= status < 300:
                if text:
                    return (data or b"").decode("utf-8", "replace")
                if not data:
                    return None
                return json.loads(data)
            reason, message = _status_of(status, data)
            if status == 401 and not refreshed:
                refreshed = True
                self.tokens.invalidate()
                continue
            if (status == 429 or status >= 500) and attempt <= self.retries:
                log.debug("k8s %s %s: %s %s; retrying", method, path, status, reason)
                time.sleep(delay)
                delay = min(delay * 2, 10 * time_scale())
                continue
            raise KubeError(status, reason, message, method=method, path=path)

    # -- discovery --------------------------------------------------------------------------------------------
    def _load_group_version(self, gv: str) -> dict[str, Resource]:
        path = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        try:
            doc = self.request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return {}
            raise
        out: dict[str, Resource] = {}
        for r in (doc or {}).get("resources", []):
            if "/" in r.get("name", ""):
                continue  # subresources (status, scale, ...)
            out[r["kind"]] = Resource(gv, r["kind"], r["name"], bool(r.get("namespaced")))
        return out

    def resource(self, api_version: str, kind: str) -> Resource:
        """The REST resource for ``apiVersion``/``kind``; re-reads discovery once on a miss (new CRDs)."""
        with self._disc_lock:
            known = self._discovery.get(api_version)
            if known is None or kind not in known:
                self._discovery[api_version] = known = self._load_group_version(api_version)
            res = known.get(kind)
        if res is None:
            raise KubeError(404, "NotFound", f"the server has no resource of kind {kind} in {api_version}")
        return res

    def forget_discovery(self, api_version: str | None = None) -> None:
        with self._disc_lock:
            if api_version:
                self._discovery.pop(api_version, None)
            else:
                self._discovery.clear()

    # -- objects ----------------------------------------------------------------------------------------------
    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        """The live object, or None when it does not exist (or its kind is not served yet)."""
        try:
            res = self.resource(api_version, kind)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        try:
            return self.request("GET", res.path(namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict]:
        try:
            res = self.resource(api_version, kind)
        except KubeError as exc:
            if exc.status == 404:
                return []
            raise
        query = [("labelSelector", label_selector)] if label_selector else None
        doc = self.request("GET", res.path(namespace), query=query) or {}
        return list(doc.get("items") or [])

    def logs(self, namespace: str, pod: str, container: str | None = None, *, tail: int = 5,
             previous: bool = False) -> str:
        """The last ``tail`` lines of a container's log (``previous``: of its last terminated run)."""
        query: list[tuple[str, Any]] = [("tailLines", tail)]
        if container:
            query.append(("container", container))
        if previous:
            query.append(("previous", "true"))
        return self.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query=query, text=True)

    def apply(self, obj: dict[str, Any], *, field_manager: str = FIELD_MANAGER, force: bool = True) -> dict:
        """Server-side apply of one object (PATCH ``application/apply-patch+yaml``, ``fieldManager``)."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        md = obj.get("metadata", {})
        res = self.resource(api_version, kind)
        ns = md.get("namespace") if res.namespaced else None
        if res.namespaced and not ns:
            raise KubeError(400, "BadRequest", f"{obj_ref(obj)} is namespaced but names no namespace")
        query: list[tuple[str, Any]] = [("fieldManager", field_manager)]
        if force:
            query.append(("force", "true"))
        return self.request("PATCH", res.path(ns, md["name"]), query=query, body=json.dumps(obj),
                            content_type=APPLY_CONTENT_TYPE)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete; False when it was not there."""
        try:
            res = self.resource(api_version, kind)
            self.request("DELETE", res.path(namespace, name))
            return True
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise


def _status_of(status: int, data: bytes | None) -> tuple[str, str]:
    try:
        doc = json.loads(data or b"{}")
    except ValueError:
        return (str(status), (data or b"")[:200].decode("utf-8", "replace"))
    if isinstance(doc, dict):
        return (doc.get("reason") or str(status), doc.get("message") or "")
    return (str(status), "")


def group_of(objs: Iterable[dict]) -> dict[tuple[str, str, str | None], list[dict]]:
    """Objects grouped by (apiVersion, kind, namespace): one list call per group checks they exist."""
    out: dict[tuple[str, str, str | None], list[dict]] = {}
    for o in objs:
        out.setdefault((o["apiVersion"], o["kind"], o.get("metadata", {}).get("namespace")), []).append(o)
    return out
