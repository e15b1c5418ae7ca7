"""One waiter for every API's long-running operations.

``op_ref(api, op, project)`` turns an operation answer (Service Usage, Compute global/regional/zonal, Container,
SQL Admin) into a small JSON-able dict ``{"api", "name", "project", "scope"}`` that can be remembered in the
journal (``ctx.remember(operation=ref)``) before waiting, so a resumed run waits on the same operation.
``await wait(ref, ctx=..., what="cluster x")`` polls it from 2 s up to 10 s (times ``MLOPS_INSTALL_TIME_SCALE``),
emitting ``ctx.waiting``/``ctx.progress`` while it waits, and returns the final operation; an operation that
ends in error raises an ``InstallerError`` classified like a request error.
"""
from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from installer.errors import ErrorClass, InstallerError

from .calls import call
from .env import scaled
from .errors import ApiError, classify

MIN_POLL = 2.0
MAX_POLL = 10.0
# How late the installer may notice that an operation has ended (issue 20): at most 3 s or 2 % of the operation,
# whichever is larger (speed 1). Sleeping at most max(3 s, 2 % of the time waited so far) between polls keeps every
# lag within it, as an operation lasts at least as long as it has been waited for. (Service Usage, GKE and Cloud SQL
# Admin have no long-poll for their operations; Compute's operations.wait would, its operations are short.)
NOTICE_FLOOR, NOTICE_SHARE = 3.0, 0.02
DEFAULT_TIMEOUT = 90 * 60.0  # terraform's GKE/SQL timeouts


def op_ref(api: str, op: dict, project: str) -> dict:
    name = op.get("name", "")
    ref: dict[str, Any] = {"api": api, "name": name, "project": project, "scope": ""}
    if api == "compute":
        if op.get("zone"):
            ref["scope"] = "zones/" + op["zone"].rsplit("/", 1)[-1]
        elif op.get("region"):
            ref["scope"] = "regions/" + op["region"].rsplit("/", 1)[-1]
        else:
            ref["scope"] = "global"
    elif api == "container":
        loc = op.get("location") or op.get("zone") or ""
        if not loc:
            m = re.search(r"/(?:locations|zones)/([^/]+)/", op.get("selfLink", ""))
            loc = m.group(1) if m else ""
        ref["scope"] = loc
    return ref


def _is_done(api: str, op: dict) -> bool:
    if api == "serviceusage":
        return bool(op.get("done")) or op.get("name", "").endswith("DONE_OPERATION")
    return op.get("status") == "DONE"


def _op_error(api: str, op: dict) -> ApiError | None:
    """The error a finished operation carries (``ApiError.operation`` set): Service Usage and GKE put a
    google.rpc.Status in ``error`` ({code, message, details}; code 8 RESOURCE_EXHAUSTED is a quota or a stockout,
    gcp-api-behaviour.md §5, never a rate limit: ``errors.is_quota_exceeded``), GKE also ``statusMessage``; Compute
    and SQL an ``error.errors[]`` list with string codes such as QUOTA_EXCEEDED [disc: compute.v1 Operation]."""
    if api == "serviceusage":
        e = op.get("error")
        if e:
            return ApiError(_http_of(e.get("code")), e.get("message", "operation failed"), status=_status_of(e.get("code")),
                            details=e.get("details") or [], api=api, operation=True)
        return None
    if api == "container":
        e = op.get("error")
        if e and (e.get("message") or e.get("code")):
            return ApiError(_http_of(e.get("code")), e.get("message") or op.get("statusMessage", ""),
                            status=_status_of(e.get("code")), details=e.get("details") or [], api=api,
                            operation=True)
        if op.get("statusMessage"):
            return ApiError(500, op["statusMessage"], api=api, operation=True)
        return None
    errs = ((op.get("error") or {}).get("errors")) or []
    if not errs:
        return None
    msgs = "; ".join(str(x.get("message") or x.get("code")) for x in errs)
    codes = [str(x.get("code", "")) for x in errs]
    details: list[dict] = []
    for x in errs:
        for d in x.get("errorDetails") or []:
            if d.get("quotaInfo"):
                q = d["quotaInfo"]
                msgs += f" (quota {q.get('metricName')} limit {q.get('limit')})"
    http = int(op.get("httpErrorStatusCode") or 400)
    return ApiError(http, msgs, reasons=codes, details=details, api=api, operation=True)


_RPC_TO_HTTP = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400, 12: 501,
                13: 500, 14: 503, 15: 500, 16: 401}


_RPC_NAMES = {1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
              6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
              10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
              15: "DATA_LOSS", 16: "UNAUTHENTICATED"}  # google.rpc.Code


def _status_of(code: Any) -> str:
    try:
        return _RPC_NAMES.get(int(code), "")
    except (TypeError, ValueError):
        return ""


def _http_of(code: Any) -> int:
    try:
        return _RPC_TO_HTTP.get(int(code), 500)
    except (TypeError, ValueError):
        return 500


def failure(ref: dict, op: dict, what: str = "") -> InstallerError | None:
    """The classified error of a finished operation (None when it succeeded or is still running)."""
    perr = _op_error(ref["api"], op) if _is_done(ref["api"], op) else None
    if perr is None:
        return None
    exc = classify(perr, what=what, project=ref["project"])
    exc.message = f"{what + ': ' if what else ''}operation {ref['name'].rsplit('/', 1)[-1]} failed: {perr.message}"
    exc.args = (exc.message,)
    exc.details["operation"] = ref
    return exc


async def recorded_failure(ref: dict | None, what: str = "") -> InstallerError | None:
    """For a resume: how the operation an earlier run recorded ended, when it failed (e.g. a GKE create that ended
    with code 8: ``error_class`` QUOTA, ``details["kind"]`` "stockout" or "quota"), else None."""
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    try:
        op = await call(ref["api"], _getter(ref), raw=True, project=ref["project"])
    except ApiError:
        return None
    return failure(ref, op, what)


def _getter(ref: dict):
    api, name, project, scope = ref["api"], ref["name"], ref["project"], ref.get("scope", "")
    short = name.rsplit("/", 1)[-1]
    if api == "serviceusage":
        return lambda s: s.operations().get(name=name)
    if api == "compute":
        if scope.startswith("zones/"):
            return lambda s: s.zoneOperations().get(project=project, zone=scope[6:], operation=short)
        if scope.startswith("regions/"):
            return lambda s: s.regionOperations().get(project=project, region=scope[8:], operation=short)
        return lambda s: s.globalOperations().get(project=project, operation=short)
    if api == "container":
        full = name if name.startswith("projects/") else f"projects/{project}/locations/{scope}/operations/{short}"
        return lambda s: s.projects().locations().operations().get(name=full)
    if api == "sqladmin":
        return lambda s: s.operations().get(project=project, operation=short)
    raise ValueError(f"no operation waiter for {api}")


def _poll_cap(elapsed: float) -> float:
    """The longest sleep between two polls after ``elapsed`` seconds of waiting (the notice-lag bound)."""
    return max(scaled(NOTICE_FLOOR), NOTICE_SHARE * elapsed)


def _next_sleep(interval: float, elapsed: float, expected: float | None) -> float:
    """The poll interval (2 s -> 10 s, scaled, at most ``_poll_cap``), but never sleeping far past the operation's
    usual duration."""
    interval = min(interval, _poll_cap(elapsed))
    if expected and elapsed < expected < elapsed + interval:
        return max(expected - elapsed + scaled(0.5), scaled(MIN_POLL) / 2)
    return interval


def _fraction(api: str, op: dict, elapsed: float, expected: float | None) -> float | None:
    if api == "compute" and isinstance(op.get("progress"), (int, float)) and op["progress"]:
        return min(1.0, op["progress"] / 100.0)
    if expected:
        return min(0.95, elapsed / expected)
    return None


async def wait(ref: dict, *, ctx: Any = None, what: str = "", expected_seconds: float | None = None,
               timeout: float | None = None, initial: dict | None = None) -> dict:
    """Wait for the operation ``ref`` (from ``op_ref``) to finish; return the final operation dict.

    ``initial`` is the operation as returned by the creating call (saves one poll if it is already done).
    Raises InstallerError: the operation's own error (classified), or TIMEOUT.
    """
    api = ref["api"]
    label = f"{what} (operation {ref['name'].rsplit('/', 1)[-1]})" if what else f"operation {ref['name']}"
    started = time.time()
    expected = scaled(expected_seconds) if expected_seconds else None
    deadline = time.monotonic() + scaled(timeout or DEFAULT_TIMEOUT, 30.0)
    if ctx is not None:
        ctx.waiting(f"waiting for {label}", since=started, expected_seconds=expected)
    op: dict | None = initial or None
    interval = scaled(MIN_POLL)
    misses = 0
    first = True
    passed_expected = False
    while True:
        if op is not None and _is_done(api, op):
            break
        if time.monotonic() > deadline:
            raise InstallerError(f"timed out waiting for {label}", error_class=ErrorClass.TIMEOUT,
                                 remedy="The operation may still finish; run the installer again to resume "
                                        "waiting on it.")
        if not (first and op is None):  # a resumed wait polls at once; a fresh op first waits one interval
            await asyncio.sleep(_next_sleep(interval, time.time() - started, expected))
            interval = min(scaled(MAX_POLL), interval * 1.5)
            if expected and time.time() - started >= expected and not passed_expected:
                passed_expected = True  # past its usual duration: it is most likely to finish now, poll densely
                interval = scaled(MIN_POLL)
        first = False
        try:
            op = await call(api, _getter(ref), raw=True, project=ref["project"])
            misses = 0
        except ApiError as err:
            if err.http == 404 and misses < 5:  # not visible yet: terraform treats this as pending
                misses += 1
                op = None
                continue
            if err.http == 400 and api == "serviceusage" and "DONE_OPERATION" in ref["name"]:
                op = {"name": ref["name"], "done": True}
                break
            raise classify(err, what=what, project=ref["project"]) from err
        if ctx is not None:
            ctx.progress(f"waiting for {label}", _fraction(api, op, time.time() - started, expected))
    exc = failure(ref, op, what)
    if exc is not None:
        raise exc
    return op
