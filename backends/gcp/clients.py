"""googleapiclient services and the storage client, safe across threads.

Built from the bundled discovery documents (``static_discovery=True``, no fetch), with ``api_endpoint`` from the
environment's overrides. httplib2 is not thread-safe, so every thread has its own authorised http:

- ``request(api, factory)`` builds the request on one shared service per API (building a service costs
  0.1-0.3 s of CPU for compute's 5 MB document, so it is done once per process), under a per-API lock
  (googleapiclient fills in the parsed document on first use); ``thread_http()`` is this thread's http, given
  to ``HttpRequest.execute(http=...)``: the network I/O runs in parallel, outside any lock.
- ``service(api)`` is a whole service of this thread's own (for callers that want one).

Imported only by workers (heavy imports).
"""
from __future__ import annotations

import threading
from typing import Any

from .auth import credentials, ensure_valid
from .env import APIS, creds_key, endpoint, env_key

_local = threading.local()
HTTP_TIMEOUT = 60


def _cache() -> dict:
    key = creds_key()
    if getattr(_local, "key", None) != key:
        _local.key = key
        _local.services = {}
    return _local.services


_docs: dict[tuple[str, str], str | None] = {}
_docs_lock = threading.Lock()


def _document(name: str, version: str) -> str | None:
    """The bundled discovery document's text, read once per process (each build parses its own copy: the
    client library mutates the parsed document, so it is never shared between threads)."""
    key = (name, version)
    with _docs_lock:
        if key not in _docs:
            from googleapiclient.discovery_cache import get_static_doc
            _docs[key] = get_static_doc(name, version)
        return _docs[key]


def thread_http() -> Any:
    """This thread's authorised httplib2 (shared credentials, refreshed by the caller before use)."""
    cache = _cache()
    http = cache.get("_http")
    if http is None:
        import google_auth_httplib2
        import httplib2
        creds, _ = credentials()
        http = cache["_http"] = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=HTTP_TIMEOUT))
    return http


def _build(api: str, http: Any) -> Any:
    from googleapiclient.discovery import build, build_from_document

    name, version, _ = APIS[api]
    opts = {"api_endpoint": endpoint(api)} if endpoint(api) else None
    doc = _document(name, version)
    if doc is None:  # not bundled: let build() find it (static_discovery=True: never fetched)
        return build(name, version, http=http, client_options=opts, static_discovery=True, cache_discovery=False)
    return build_from_document(doc, http=http, client_options=opts)


class _Resources:
    """A service (or one of its resources) whose sub-resources are built once. googleapiclient builds a new
    Resource at each ``svc.networks()``: a method object and a docstring (its schema pretty-printed) for each of the
    resource's methods, 2-15 ms of CPU per call for compute's and SQL's, in a worker thread that contends with the
    event loop for the GIL. The shared services are only used under their API's lock, so sharing is safe."""

    __slots__ = ("_target", "_children", "_names")

    def __init__(self, target: Any) -> None:
        self._target = target
        self._children: dict[str, _Resources] = {}
        self._names = frozenset((getattr(target, "_resourceDesc", None) or {}).get("resources", {}))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name not in self._names:
            return attr  # a method (get, insert, ...) or anything else: as it is

        def child() -> _Resources:
            r = self._children.get(name)
            if r is None:
                r = self._children[name] = _Resources(attr())
            return r
        return child


_shared: dict[tuple, Any] = {}
_shared_locks: dict[str, threading.Lock] = {}
_shared_guard = threading.Lock()


def request(api: str, factory) -> Any:
    """``factory(service)`` on the process's shared service for ``api``, under that API's lock (fast: it only
    builds the HttpRequest). Execute the result with ``.execute(http=thread_http())``."""
    with _shared_guard:
        lock = _shared_locks.setdefault(api, threading.Lock())
    with lock:
        key = (env_key(), api)
        svc = _shared.get(key)
        if svc is None:
            import httplib2
            svc = _shared[key] = _Resources(_build(api, httplib2.Http(timeout=HTTP_TIMEOUT)))  # its http: unused
        return factory(svc)


def prebuild(apis: tuple[str, ...] = ("serviceusage", "cloudresourcemanager", "iam", "compute", "container",
                                       "sqladmin")) -> None:
    """Build the shared services now (``backends.registry.warm_up``, in a thread before an install). Parsing a
    discovery document is one ``json.loads`` call that holds the GIL throughout: 50-90 ms for compute's 5 MB, which
    stalls the event loop wherever it happens, so it should not happen in the middle of an install's first steps."""
    for api in apis:
        request(api, lambda svc: None)


def service(api: str) -> Any:
    """A googleapiclient Resource for ``api`` of this thread's own (see ``env.APIS`` for the names)."""
    cache = _cache()
    svc = cache.get(api)
    if svc is None:
        svc = cache[api] = _build(api, thread_http())
    return svc


def storage_client(project: str) -> Any:
    """This thread's google-cloud-storage Client for ``project`` (STORAGE_EMULATOR_HOST honoured by the library)."""
    cache = _cache()
    key = ("gcs", project)
    client = cache.get(key)
    if client is not None:
        return client
    from google.cloud import storage

    creds = ensure_valid()
    client = storage.Client(project=project, credentials=creds)
    cache[key] = client
    return client
