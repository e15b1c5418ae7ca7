"""Making requests: off the event loop, with retries of transient errors.

``await call(api, lambda svc: svc.networks().get(project=p, network=n))`` runs the request factory on this
thread's service (``clients.service(api)``) inside ``asyncio.to_thread`` and returns the decoded JSON. Transient
failures (``errors.is_transient``) are retried with capped exponential backoff and full jitter inside a
per-request time budget; ``retry_if`` adds a predicate (with its own, longer budget: consistency windows such as
a just-created service account). Any other error raises an ``InstallerError`` built by ``errors.classify``
unless ``raw=True`` asks for the ``ApiError`` (so callers can act on 404/409 themselves).
``call_sync`` is the same for blocking callers (the wizard's queries). Nothing here holds a global lock.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any, Callable

from .auth import ensure_valid
from .env import SERVICE_OF_API, env_key, scaled
from .errors import ApiError, classify, is_service_disabled, is_transient, parse

log = logging.getLogger("mlops_install.gcp")

BASE_DELAY = 0.5  # seconds at speed 1
MAX_DELAY = 10.0
BUDGET = 90.0  # per request, like terraform's transport
CONSISTENCY_BUDGET = 300.0
MIN_BUDGET = 5.0  # real seconds, whatever the speed (HTTP itself takes time)
MAX_ATTEMPTS = 12

# Services this process enabled: for a while, a SERVICE_DISABLED from one of them is propagation, not a fault.
recently_enabled: dict[tuple, float] = {}
PROPAGATION_WINDOW = 600.0


class Stats:
    """Counts of requests and retries made by this process (for the benchmark and tests)."""
    requests = 0
    retries = 0


def _delay(attempt: int, err: ApiError) -> float:
    hint = err.retry_delay
    cap = scaled(MAX_DELAY)
    if hint is not None:
        return min(scaled(hint), cap * 3)
    return random.uniform(0.5, 1.0) * min(cap, scaled(BASE_DELAY) * (2 ** attempt))


def _propagating(err: ApiError, api: str) -> bool:
    if err.http == 400 and "should enable service" in err.message:  # GKE on a just-enabled project
        svc = SERVICE_OF_API.get(api, "")
    elif not is_service_disabled(err):
        return False
    svc = (err.error_info.get("metadata") or {}).get("service") or SERVICE_OF_API.get(api, "")
    at = recently_enabled.get((env_key(), svc))
    return at is not None and time.monotonic() - at < scaled(PROPAGATION_WINDOW, 5.0)


def _run_once(api: str, factory: Callable[[Any], Any]) -> Any:
    from .clients import request, thread_http
    ensure_valid()
    Stats.requests += 1
    if api == "gcs":
        return factory(None).execute()
    req = request(api, factory)
    if not hasattr(req, "execute"):
        return req
    return req.execute(http=thread_http(), num_retries=0)


def _decide(exc: BaseException, api: str, attempt: int, started: float, budget: float,
            retry_if: Callable[[ApiError], bool] | None, c_budget: float,
            propagation: bool = True) -> tuple[ApiError | None, float | None]:
    """(parsed error, seconds to sleep before retrying or None to give up)."""
    err = parse(exc, api)
    if err is None:
        return None, None
    elapsed = time.monotonic() - started
    if attempt >= 200:  # a hard stop whatever the predicates say
        return err, None
    if retry_if is not None and retry_if(err):
        if elapsed < c_budget:
            return err, _delay(min(attempt, 4), err)
        return err, None
    if propagation and _propagating(err, api) and elapsed < scaled(PROPAGATION_WINDOW, 5.0):
        return err, _delay(min(attempt, 4), err)
    if is_transient(err, api) and elapsed < budget and attempt + 1 < MAX_ATTEMPTS:
        return err, _delay(attempt, err)
    return err, None


def _budgets(budget: float | None, consistency_budget: float | None) -> tuple[float, float]:
    return (scaled(budget if budget is not None else BUDGET, MIN_BUDGET),
            scaled(consistency_budget if consistency_budget is not None else CONSISTENCY_BUDGET, 2 * MIN_BUDGET))


def _fail(err: ApiError | None, exc: BaseException, raw: bool, what: str, project: str, region: str):
    if err is None:
        raise exc
    if raw:
        raise err from exc
    raise classify(err, what=what, project=project, region=region) from exc


async def call(api: str, factory: Callable[[Any], Any], *, raw: bool = False, what: str = "", project: str = "",
               region: str = "", retry_if: Callable[[ApiError], bool] | None = None,
               budget: float | None = None, consistency_budget: float | None = None,
               on_retry: Callable[[ApiError, float], None] | None = None, propagation: bool = True) -> Any:
    """Run ``factory(service(api)).execute()`` in a thread, retrying transient errors. Returns the JSON dict.

    ``factory`` may also do the whole call itself and return a value (used for the storage client).
    ``raw=True`` raises ``errors.ApiError`` instead of an ``InstallerError`` (to handle 404/409 locally).
    ``propagation=False``: do not wait out SERVICE_DISABLED for an API this process has just enabled.
    """
    b, cb = _budgets(budget, consistency_budget)
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return await asyncio.to_thread(_run_once, api, factory)
        except Exception as exc:  # noqa: BLE001 - classified below
            err, wait = _decide(exc, api, attempt, started, b, retry_if, cb, propagation)
            if wait is None:
                _fail(err, exc, raw, what, project, region)
            Stats.retries += 1
            log.debug("retrying %s after %s (%.2fs)", api, err, wait)
            if on_retry is not None:
                on_retry(err, wait)
            await asyncio.sleep(wait)
            attempt += 1


def call_sync(api: str, factory: Callable[[Any], Any], *, raw: bool = False, what: str = "", project: str = "",
              region: str = "", retry_if: Callable[[ApiError], bool] | None = None,
              budget: float | None = None, consistency_budget: float | None = None) -> Any:
    """Blocking twin of ``call`` (for the wizard's queries, run by the caller in a thread)."""
    b, cb = _budgets(budget, consistency_budget)
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return _run_once(api, factory)
        except Exception as exc:  # noqa: BLE001
            err, wait = _decide(exc, api, attempt, started, b, retry_if, cb)
            if wait is None:
                _fail(err, exc, raw, what, project, region)
            Stats.retries += 1
            time.sleep(wait)
            attempt += 1


class _Direct:
    """Wraps a callable doing its own I/O (storage client) so ``call`` can retry it."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn

    def execute(self, num_retries: int = 0) -> Any:
        return self.fn()


async def call_storage(project: str, fn: Callable[[Any], Any], **kw: Any) -> Any:
    """Run ``fn(storage_client)`` in a thread with the same retries (``fn`` gets this thread's client)."""
    from .clients import storage_client
    kw.setdefault("project", project)  # for the error's remedy (the grant command names the project)
    return await call("gcs", lambda _svc: _Direct(lambda: fn(storage_client(project))), **kw)


def note_enabled(services: list[str]) -> None:
    now, key = time.monotonic(), env_key()
    for s in services:
        recently_enabled[(key, s)] = now
