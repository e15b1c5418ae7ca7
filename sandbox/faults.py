"""The fault engine: faults injected through the control API (``POST /_sandbox/faults``, ``sandbox/apis/control.py``).

Path faults: method + regex -> status/body and/or delay, ``times`` hits, an optional ``rate`` (probability per
matching request, seeded RNG) and a ``target`` (``google``, ``kube`` or a cluster name); see ``match_fault``. The
server asks ``match_fault`` for each request (``sandbox/server.py``), each cluster's Kubernetes API through its
fault source. Operation faults (``op``: an operation kind) make the next operation of that kind fail; the API that
runs it asks ``take_op_fault``. This module imports no API module and not the server.
"""

from __future__ import annotations

import asyncio
import random
import re
import uuid

from aiohttp import web

from .errors import error_body_for_http
from .routing import json_response

TOKEN_PATHS = ("/token", "/oauth2/v4/token")
GOOGLE = "google"
KUBE = "kube"


def fault_target(f: dict) -> str:
    """Where a path fault applies: ``google`` (the Google APIs; the default), ``kube`` (every cluster's Kubernetes
    API) or a cluster name (that cluster's Kubernetes API only)."""
    return f.get("target") or GOOGLE


def _target_matches(f: dict, cluster: str | None) -> bool:
    t = fault_target(f)
    if cluster is None:
        return t == GOOGLE
    return t in (KUBE, cluster)


def _fault_rng(srv, f: dict) -> random.Random:
    """The fault's own RNG, seeded from its ``seed`` (and its hits so far, so a restart does not replay it)."""
    rngs = srv.fault_rngs
    rng = rngs.get(f["id"])
    if rng is None:
        rng = rngs[f["id"]] = random.Random(f"{f.get('seed')}/{f.get('hits', 0)}")
    return rng


def match_fault(srv, method: str, path: str, cluster: str | None = None) -> dict | None:
    """The first path fault that hits this request (and counts the hit), or None.

    ``cluster`` is None for a request to the Google APIs, else the name of the cluster whose Kubernetes API got it.
    The token endpoints and the control API are skipped unless the fault's regex names them (``token``,
    ``_sandbox``); a fault with a ``rate`` hits each matching request with that probability (its own seeded RNG).
    """
    faults = srv.store.data["faults"]
    for f in list(faults):
        if f.get("op") or not _target_matches(f, cluster):
            continue
        if f["method"] not in ("*", method):
            continue
        if cluster is None:
            if path in TOKEN_PATHS and "token" not in f["path"]:
                continue
            if path.startswith("/_sandbox") and "_sandbox" not in f["path"]:
                continue
        if not re.search(f["path"], path):
            continue
        rate = f.get("rate")
        if rate is not None and _fault_rng(srv, f).random() >= rate:
            continue
        _hit(srv, f)
        return f
    return None


def _hit(srv, f: dict) -> None:
    """Count a hit; a fault whose ``times`` are used up is removed (with its RNG, if it has one)."""
    f["hits"] = f.get("hits", 0) + 1
    if f.get("times") is not None:
        f["times"] -= 1
        if f["times"] <= 0:
            srv.store.data["faults"].remove(f)
            srv.fault_rngs.pop(f["id"], None)
    srv.store.touch()


def take_op_fault(srv, kind: str) -> dict | None:
    faults = srv.store.data["faults"]
    for f in faults:
        if f.get("op") != kind:
            continue
        _hit(srv, f)
        return f
    return None


def add_fault(srv, spec: dict) -> dict:
    f = {"id": uuid.uuid4().hex[:12], "hits": 0}
    if spec.get("op"):
        f.update({"op": spec["op"], "message": spec.get("message"), "code": spec.get("code"),
                  "times": spec.get("times", 1)})
    else:
        path = spec.get("path")
        if not path:
            raise ValueError("a fault needs 'path' (a regex) or 'op' (an operation kind)")
        re.compile(path)
        rate = spec.get("rate")
        if rate is not None:
            rate = float(rate)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate must be between 0 and 1, not {rate}")
        seed = spec.get("seed")
        if rate is not None and seed is None:
            seed = random.SystemRandom().randrange(2**32)  # recorded, so a run can be replayed
        target = spec.get("target") or GOOGLE
        if not isinstance(target, str):
            raise ValueError("target must be 'google', 'kube' or a cluster name")
        # times: how many requests it hits; unset: 1, or every one for a fault with a rate; None: every one
        times = spec["times"] if "times" in spec else (None if rate is not None else 1)
        f.update({"method": (spec.get("method") or "*").upper(), "path": path, "status": spec.get("status"),
                  "body": spec.get("body"), "message": spec.get("message"), "times": times,
                  "delay": spec.get("delay"), "reason": spec.get("reason"), "rate": rate, "seed": seed,
                  "target": target})
        if f["status"] is None and not f["delay"]:
            raise ValueError("a fault needs a status, a delay, or both")
    srv.store.data["faults"].append(f)
    srv.store.touch()
    return f


async def fault_response(fault: dict, style: str) -> web.Response | None:
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
    return json_response(body, int(fault["status"]))
