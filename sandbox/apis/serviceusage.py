"""Service Usage v1: services list/get/enable/disable/batchEnable/batchGet and operations (§1, §12.3–4)."""

from __future__ import annotations

import time
import uuid

from .. import catalog
from ..errors import ApiError, error_info, RPC_CODE
from ..faults import take_op_fault
from ..routing import Ctx, Router

NOOP = "operations/noop.DONE_OPERATION"
EMPTY_META = {"@type": "type.googleapis.com/google.protobuf.Empty"}


def service_view(ctx: Ctx, project: dict, name: str) -> dict:
    rec = ctx.data["services"].setdefault(project["projectId"], {}).get(name)
    state = rec["state"] if rec else "DISABLED"
    num = project["projectNumber"]
    return {
        "name": f"projects/{num}/services/{name}",
        "config": {
            "name": name,
            "title": catalog.SERVICE_TITLES.get(name, name),
            "documentation": {},
            "quota": {},
            "authentication": {},
            "usage": {"requirements": ["serviceusage.googleapis.com/tos/cloud"]},
            "monitoring": {},
        },
        "state": state,
        "parent": f"projects/{num}",
    }


def _unknown(names: list[str]) -> ApiError:
    joined = ", ".join(names)
    return ApiError("PERMISSION_DENIED", f"Not found or permission denied for service(s): {joined}.",
                    details=[error_info("SERVICE_CONFIG_NOT_FOUND_OR_PERMISSION_DENIED", "serviceusage.googleapis.com",
                                        {"services": joined})])


async def list_services(ctx: Ctx, project: str) -> dict:
    proj = ctx.project(project)
    ctx.require("serviceusage.services.list", f"projects/{project}")
    flt = ctx.query.get("filter", "").replace(" ", "")
    want = None
    if flt:
        if flt.upper() in ("STATE:ENABLED", "STATE=ENABLED"):
            want = "ENABLED"
        elif flt.upper() in ("STATE:DISABLED", "STATE=DISABLED"):
            want = "DISABLED"
        else:
            raise ApiError("INVALID_ARGUMENT", f"Invalid filter: {ctx.query.get('filter')}")
    views = [service_view(ctx, proj, s) for s in sorted(catalog.SERVICE_TITLES)]
    if want:
        views = [v for v in views if v["state"] == want]
    size = int(ctx.query.get("pageSize") or 50)
    if size <= 0 or size > 200:
        size = 200 if size > 200 else 50
    start = int(ctx.query.get("pageToken") or 0)
    page = views[start:start + size]
    out: dict = {"services": page} if page else {}
    if start + size < len(views):
        out["nextPageToken"] = str(start + size)
    return out


async def get_service(ctx: Ctx, project: str, service: str) -> dict:
    proj = ctx.project(project)
    ctx.require("serviceusage.services.get", f"projects/{project}/services/{service}")
    if service not in catalog.SERVICE_TITLES:
        raise _unknown([service])
    return service_view(ctx, proj, service)


async def batch_get(ctx: Ctx, project: str) -> dict:
    proj = ctx.project(project)
    names = ctx.request.query.getall("names", [])
    if len(names) > 30:
        raise ApiError("INVALID_ARGUMENT", "Too many services requested (max 30).")
    out = []
    for n in names:
        svc = n.rsplit("/", 1)[-1]
        if svc not in catalog.SERVICE_TITLES:
            raise _unknown([svc])
        out.append(service_view(ctx, proj, svc))
    return {"services": out}


def _expand(names: list[str]) -> list[str]:
    out: list[str] = []
    todo = list(names)
    while todo:
        n = todo.pop(0)
        if n in out:
            continue
        out.append(n)
        todo.extend(catalog.SERVICE_DEPENDENCIES.get(n, []))
    return out


def _start_enable(ctx: Ctx, proj: dict, names: list[str], kind: str) -> dict:
    pid = proj["projectId"]
    unknown = [n for n in names if n not in catalog.SERVICE_TITLES]
    if unknown:
        raise _unknown(unknown)
    svcs = ctx.data["services"].setdefault(pid, {})
    all_names = _expand(names)
    if all(svcs.get(n, {}).get("state") == "ENABLED" for n in all_names):
        resp_type = ("BatchEnableServicesResponse" if kind == "batch" else "EnableServiceResponse")
        response: dict = {"@type": f"type.googleapis.com/google.api.serviceusage.v1.{resp_type}"}
        if kind == "batch":
            response["services"] = [service_view(ctx, proj, n) for n in names]
        else:
            response["service"] = service_view(ctx, proj, names[0])
        return {"name": NOOP, "metadata": EMPTY_META, "done": True, "response": response}
    fault = take_op_fault(ctx.srv, "serviceusage.enable")
    name = f"operations/acat.p2-{proj['projectNumber']}-{uuid.uuid4()}"
    done_at = ctx.now + ctx.dur("serviceusage.enable")
    op = {"name": name, "project": pid, "services": names, "kind": kind, "created": ctx.now,
          "done_at": done_at, "error": None}
    if fault:
        op["error"] = {"code": fault.get("code", RPC_CODE["FAILED_PRECONDITION"]),
                       "message": fault.get("message") or
                       f"[160009] Failed to enable services with failed services [{', '.join(names)}]",
                       "details": []}
    ctx.data["su_operations"][name] = op
    if not fault:
        ctx.srv.schedule(done_at, "su.enable_done", project=pid, services=all_names)
    ctx.store.touch()
    return op_view(ctx, op)


def op_view(ctx: Ctx, op: dict, now: float | None = None) -> dict:
    out: dict = {"name": op["name"], "metadata": EMPTY_META}
    if (time.time() if now is None else now) >= op["done_at"]:
        out["done"] = True
        if op.get("error"):
            out["error"] = op["error"]
        else:
            proj = ctx.data["projects"][op["project"]]
            if op["kind"] == "batch":
                out["response"] = {"@type": "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse",
                                   "services": [service_view(ctx, proj, n) for n in op["services"]]}
            elif op["kind"] == "disable":
                out["response"] = {"@type": "type.googleapis.com/google.api.serviceusage.v1.DisableServiceResponse",
                                   "service": service_view(ctx, proj, op["services"][0])}
            else:
                out["response"] = {"@type": "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse",
                                   "service": service_view(ctx, proj, op["services"][0])}
    return out


async def enable(ctx: Ctx, project: str, service: str) -> dict:
    proj = ctx.project(project)
    ctx.require("serviceusage.services.enable", service)
    return _start_enable(ctx, proj, [service], "single")


async def batch_enable(ctx: Ctx, project: str) -> dict:
    proj = ctx.project(project)
    ids = ctx.body.get("serviceIds") or []
    if not ids:
        raise ApiError("INVALID_ARGUMENT", "No service ids were specified.")
    if len(ids) > 20:
        raise ApiError("INVALID_ARGUMENT", f"A maximum of 20 services can be enabled in a single request; "
                       f"{len(ids)} were requested.")
    for s in ids:
        ctx.require("serviceusage.services.enable", s)
    return _start_enable(ctx, proj, list(dict.fromkeys(ids)), "batch")


async def disable(ctx: Ctx, project: str, service: str) -> dict:
    proj = ctx.project(project)
    ctx.require("serviceusage.services.disable", service)
    if service not in catalog.SERVICE_TITLES:
        raise _unknown([service])
    svcs = ctx.data["services"].setdefault(proj["projectId"], {})
    if not ctx.body.get("disableDependentServices"):
        dependents = [d for d, deps in catalog.SERVICE_DEPENDENCIES.items()
                      if service in deps and svcs.get(d, {}).get("state") == "ENABLED"]
        if dependents:
            raise ApiError("FAILED_PRECONDITION", f"The service {service} is depended on by the following active "
                           f"service(s): {','.join(dependents)}; Please specify disable_dependent_services=true if "
                           f"you want to proceed with disabling all services and the resources that depend on them.")
    name = f"operations/acf.p2-{proj['projectNumber']}-{uuid.uuid4()}"
    done_at = ctx.now + ctx.dur("serviceusage.enable") / 3
    op = {"name": name, "project": proj["projectId"], "services": [service], "kind": "disable",
          "created": ctx.now, "done_at": done_at, "error": None}
    ctx.data["su_operations"][name] = op
    ctx.srv.schedule(done_at, "su.disable_done", project=proj["projectId"], services=[service])
    ctx.store.touch()
    return op_view(ctx, op)


async def get_operation(ctx: Ctx, op: str) -> dict:
    name = f"operations/{op}"
    if name == NOOP:
        raise ApiError("INVALID_ARGUMENT", f"Invalid operation name: {name}. The operation was already done; "
                       f"there is nothing to poll.")
    rec = ctx.data["su_operations"].get(name)
    if rec is None:
        raise ApiError("NOT_FOUND", f"Operation '{name}' not found.")
    # judged at the request's time, by which everything due has happened (the services' state flips in a scheduled
    # action: a later clock could see the operation done with the services still DISABLED)
    return op_view(ctx, rec, ctx.now)


async def _enable_done(srv, project: str, services: list[str]) -> None:
    now = time.time()
    svcs = srv.store.data["services"].setdefault(project, {})
    usable = now + srv.profile("serviceusage.usable") * srv.speed
    for s in services:
        cur = svcs.get(s)
        if cur and cur["state"] == "ENABLED":
            continue
        svcs[s] = {"state": "ENABLED", "enabled_at": now, "usable_at": usable}
    if "compute.googleapis.com" in services:
        from .compute import ensure_default_network

        ensure_default_network(srv, project, now)
    srv.store.touch()


async def _disable_done(srv, project: str, services: list[str]) -> None:
    svcs = srv.store.data["services"].setdefault(project, {})
    for s in services:
        svcs[s] = {"state": "DISABLED", "enabled_at": None, "usable_at": None}
    srv.store.touch()


ACTIONS = {"su.enable_done": _enable_done, "su.disable_done": _disable_done}


def register(r: Router) -> None:
    a = "serviceusage"
    r.add("GET", "/v1/projects/{project}/services", list_services, a)
    r.add("GET", "/v1/projects/{project}/services:batchGet", batch_get, a)
    r.add("POST", "/v1/projects/{project}/services:batchEnable", batch_enable, a)
    r.add("GET", "/v1/projects/{project}/services/{service}", get_service, a)
    r.add("POST", "/v1/projects/{project}/services/{service}:enable", enable, a)
    r.add("POST", "/v1/projects/{project}/services/{service}:disable", disable, a)
    r.add("GET", "/v1/operations/{op}", get_operation, a)
