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


def service(api: str) -> Any:
    """This thread's googleapiclient Resource for ``api`` (see ``env.APIS`` for the names)."""
    cache = _cache()
    svc = cache.get(api)
    if svc is not None:
        return svc
    import google_auth_httplib2
    import httplib2
    from googleapiclient.discovery import build

    name, version, _ = APIS[api]
    creds, _ = credentials()
    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=HTTP_TIMEOUT))
    opts = {"api_endpoint": endpoint(api)} if endpoint(api) else None
    svc = build(name, version, http=http, client_options=opts, static_discovery=True, cache_discovery=False)
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
