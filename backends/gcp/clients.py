"""googleapiclient services and the storage client, one per thread (they are not thread-safe).

Built from the bundled discovery documents (``static_discovery=True``, no fetch), with ``api_endpoint`` from the
environment's overrides and an authorised httplib2 per service. Imported only by workers (heavy imports).
"""
from __future__ import annotations

import threading
from typing import Any

from .auth import credentials, ensure_valid
from .env import APIS, endpoint, env_key

_local = threading.local()
HTTP_TIMEOUT = 60


def _cache() -> dict:
    key = env_key()
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


def service(api: str) -> Any:
    """This thread's googleapiclient Resource for ``api`` (see ``env.APIS`` for the names)."""
    cache = _cache()
    svc = cache.get(api)
    if svc is not None:
        return svc
    import google_auth_httplib2
    import httplib2
    from googleapiclient.discovery import build

    from googleapiclient.discovery import build_from_document

    name, version, _ = APIS[api]
    creds, _ = credentials()
    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=HTTP_TIMEOUT))
    opts = {"api_endpoint": endpoint(api)} if endpoint(api) else None
    doc = _document(name, version)
    if doc is None:  # not bundled: let build() find it (static_discovery=True: never fetched)
        svc = build(name, version, http=http, client_options=opts, static_discovery=True, cache_discovery=False)
    else:
        svc = build_from_document(doc, http=http, client_options=opts)
    cache[api] = svc
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
