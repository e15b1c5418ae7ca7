"""The control API under ``/_sandbox/``: health, request log, faults, scenarios, state.

Not a Google API: no auth, not logged.

| method | path | body / effect |
|---|---|---|
| GET | /_sandbox/health | {ok, url, port, pid, speed} |
| GET | /_sandbox/requests | the request log (``?api=``, ``?mutating=1``, ``?since=<epoch>``) |
| DELETE | /_sandbox/requests | clear it |
| GET/POST/DELETE | /_sandbox/faults | list / add / remove all |
| DELETE | /_sandbox/faults/{id} | remove one |
| GET/POST | /_sandbox/scenario | current switches / apply one: {"name": ..., ...} |
| GET | /_sandbox/state | the whole state document (no secrets are kept in it) |

The faults themselves (what a fault is, which request it hits) are the fault engine's: ``sandbox/faults.py``.
"""

from __future__ import annotations

import json
import os
import re
import time

from aiohttp import web

from .. import catalog
from ..faults import add_fault
from ..routing import json_response

SCENARIOS = ("api_disabled", "api_enabled", "missing_permission", "grant_permission", "org_policy_keys",
             "cpu_quota", "bucket_taken", "key_limit_legacy", "sql_name_reuse", "sql_default_edition", "cluster_reconciling",
             "profile",
             "gke_stockout", "project", "inverse_proxy_region", "billing_disabled",
             "reset")


def _bad(msg: str) -> web.Response:
    return json_response({"error": msg}, 400)


def _project_id(srv, body: dict) -> str:
    return body.get("project") or catalog.PROJECT_ID


def apply_scenario(srv, body: dict) -> dict:
    name = body.get("name")
    data = srv.store.data
    sc = data["scenario"]
    now = time.time()
    if name == "api_disabled":
        pid = _project_id(srv, body)
        for s in _services(body):
            data["services"].setdefault(pid, {})[s] = {"state": "DISABLED", "enabled_at": None, "usable_at": None}
    elif name == "api_enabled":  # instantly enabled and usable (test set-up helper)
        from .serviceusage import _expand

        pid = _project_id(srv, body)
        names = list(catalog.SERVICE_TITLES) if body.get("all") else _expand(_services(body))
        for s in names:
            data["services"].setdefault(pid, {})[s] = {"state": "ENABLED", "enabled_at": now, "usable_at": now}
        if "compute.googleapis.com" in names:
            from .compute import ensure_default_network

            ensure_default_network(srv, pid, now)
    elif name == "missing_permission":
        perms = body.get("permissions") or [body["permission"]]
        for p in perms:
            if p not in sc["denied_permissions"]:
                sc["denied_permissions"].append(p)
    elif name == "grant_permission":
        perms = body.get("permissions") or [body["permission"]]
        sc["denied_permissions"] = [p for p in sc["denied_permissions"] if p not in perms]
    elif name == "org_policy_keys":  # managed=true: the managed constraint (readable through Org Policy v2 only)
        managed = str(body.get("managed", False)).lower() in ("1", "true", "yes")
        sc["org_policy_keys_managed" if managed else "org_policy_keys"] = \
            str(body.get("enforced", True)).lower() in ("1", "true", "yes")
    elif name == "cpu_quota":  # metric= another Compute quota (region=global: a project-wide one, CPUS_ALL_REGIONS)
        region, metric = body.get("region", "us-central1"), body.get("metric", "CPUS")
        if metric == "CPUS" and region != "global":
            sc["cpu_quota"][region] = float(body["limit"])
        else:
            sc.setdefault("quotas", {}).setdefault(region, {})[metric] = float(body["limit"])
    elif name == "billing_disabled":  # the project has no open billing account (sandbox/apis/billing.py)
        pid = _project_id(srv, body)
        off = sc.setdefault("billing_disabled", [])
        sc["billing_disabled"] = [p for p in off if p != pid]
        if str(body.get("disabled", True)).lower() in ("1", "true", "yes"):
            sc["billing_disabled"].append(pid)
    elif name == "bucket_taken":
        bname = body["bucket"] if "bucket" in body else body["bucket_name"] if "bucket_name" in body else body["value"]
        from .storage import new_bucket_record

        if bname not in data["buckets"]:
            data["buckets"][bname] = new_bucket_record(bname, catalog.OTHER_PROJECT, "999999999999", {}, now)
    elif name == "gke_stockout":  # GKE creates in this zone end in error code 8 (kind: stockout | quota)
        zones = sc.setdefault("gke_stockout", {})
        if body.get("clear"):
            zones.pop(body["zone"], None)
        else:
            zones[body["zone"]] = body.get("kind", "stockout")
    elif name == "project":  # another project of the caller's (e.g. the quota project of user credentials)
        pid = body["project"]
        data["projects"].setdefault(pid, {
            "projectId": pid, "projectNumber": str(body["number"]), "name": pid, "displayName": pid,
            "createTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "parent": {"type": "organization", "id": catalog.ORG_ID}, "labels": {}})
        data["services"].setdefault(pid, {})
        for s in _expand_list(body.get("services") or []):
            data["services"][pid][s] = {"state": "ENABLED", "enabled_at": now, "usable_at": now}
    elif name == "key_limit_legacy":
        sc["key_limit_legacy"] = bool(body.get("enabled", True))
    elif name == "cluster_reconciling":  # RECONCILING (API server away) for `seconds` x speed, then RUNNING
        key = next((k for k, c in data["clusters"].items() if c["name"] == body["cluster"]), None)
        if key is None:
            raise ValueError(f"no cluster named {body['cluster']!r}")
        data["clusters"][key]["status"] = "RECONCILING"
        srv.schedule(now, "container.reconciling", key=key)
        srv.schedule(now + float(body.get("seconds", 60)) * srv.speed, "container.running", key=key)
    elif name == "sql_default_edition":  # the edition an instance gets when the request names none
        sc["sql_default_edition"] = body.get("edition") or None
    elif name == "sql_name_reuse":
        sc["sql_name_reuse_seconds"] = float(body.get("seconds", 7 * 86400))
    elif name == "profile":  # override latency keys (seconds at speed 1), e.g. {"iam.sa_visible": 120}
        over = {k: v for k, v in body.items() if k != "name"}
        unknown = [k for k in over if k not in catalog.PROFILE]
        if unknown:
            raise ValueError(f"unknown latency keys {unknown}; known: {sorted(catalog.PROFILE)}")
        sc.setdefault("profile", {}).update({k: float(v) for k, v in over.items()})
    elif name == "inverse_proxy_region":  # is REGION served by KFP's inverse proxy? (sandbox/workloads/kfp.py)
        region = body.get("region", "us-central1")
        if region not in catalog.REGIONS:
            raise ValueError(f"unknown region {region!r}; known: {', '.join(catalog.REGIONS)}")
        sc.setdefault("inverse_proxy_regions", {})[region] = \
            str(body.get("served", True)).lower() in ("1", "true", "yes")
    elif name == "reset":
        sc["inverse_proxy_regions"] = {}
        sc.update({"denied_permissions": [], "org_policy_keys": False, "org_policy_keys_managed": False,
                   "cpu_quota": {}, "quotas": {}, "billing_disabled": [], "key_limit_legacy": False,
                   "sql_name_reuse_seconds": 0, "sql_default_edition": None, "profile": {}})
        data["faults"] = []
    else:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if name == "reset":
        sc["gke_stockout"] = {}
    srv.store.touch()
    srv.store.save()
    return scenario_view(srv)


def _expand_list(names: list[str]) -> list[str]:
    return [x if "." in x else f"{x}.googleapis.com" for x in names]


def _services(body: dict) -> list[str]:
    s = body.get("services") or [body["service"]]
    return [x if "." in x else f"{x}.googleapis.com" for x in s]


def scenario_view(srv) -> dict:
    data = srv.store.data
    out = dict(data["scenario"])
    out["taken_buckets"] = sorted(n for n, b in data["buckets"].items() if b["_project"] == catalog.OTHER_PROJECT)
    out["disabled_services"] = sorted(s for s, r in data["services"].get(catalog.PROJECT_ID, {}).items()
                                      if r["state"] != "ENABLED")
    return out


async def handle(srv, request: web.Request) -> web.Response:
    path = request.path.rstrip("/")
    method = request.method
    body: dict = {}
    if request.can_read_body:
        raw = await request.read()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return _bad("body must be JSON")
    if path == "/_sandbox/health":
        return json_response({"ok": True, "url": srv.url, "port": srv.port, "pid": os.getpid(), "speed": srv.speed,
                   "state_dir": str(srv.state_dir), "clusters": {k: v.get("endpoint") for k, v in
                                                                srv.store.data["clusters"].items()}})
    if path == "/_sandbox/requests":
        if method == "DELETE":
            return json_response({"cleared": srv.clear_log()})
        out = srv.requests
        q = request.query
        if "api" in q:
            out = [r for r in out if r.get("api") == q["api"]]
        if "mutating" in q:
            want = q["mutating"] not in ("0", "false")
            out = [r for r in out if bool(r.get("mutating")) == want]
        if "since" in q:
            out = [r for r in out if r["time"] >= float(q["since"])]
        return json_response({"requests": out})
    if path == "/_sandbox/faults":
        if method == "GET":
            return json_response({"faults": srv.store.data["faults"]})
        if method == "DELETE":
            srv.store.data["faults"] = []
            srv.store.save()
            return json_response({"faults": []})
        if method == "POST":
            try:
                f = add_fault(srv, body)
            except (ValueError, KeyError, re.error) as e:
                return _bad(str(e))
            srv.store.save()
            return json_response(f)
    if path.startswith("/_sandbox/faults/") and method == "DELETE":
        fid = path.rsplit("/", 1)[-1]
        before = len(srv.store.data["faults"])
        srv.store.data["faults"] = [f for f in srv.store.data["faults"] if f["id"] != fid]
        srv.store.save()
        return json_response({"removed": before - len(srv.store.data["faults"])})
    if path == "/_sandbox/scenario":
        if method == "GET":
            return json_response(scenario_view(srv))
        try:
            return json_response(apply_scenario(srv, body))
        except (ValueError, KeyError) as e:
            return _bad(f"{type(e).__name__}: {e}")
    if path == "/_sandbox/state":
        await srv.advance()
        d = dict(srv.store.data)
        d.pop("tokens", None)
        return json_response(d)
    return json_response({"error": f"unknown control path {path}"}, 404)
