# Over ~500 lines, one job: Compute v1's handlers, which share the operation and link helpers here.
"""Compute v1 (mounted at /compute/v1/): project, regions, zones, networks, subnetworks, firewalls, and
global/regional/zonal operations with ``wait`` (§4, §12.8)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import secrets
import time
import zlib

from .. import catalog
from ..errors import ApiError
from ..faults import take_op_fault
from ..routing import Ctx, Router
from ..store import numeric_id, utc

NAME_RX = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
NETWORK_QUOTA = 15
ROOT = "/compute/v1/projects/{project}"
PUBLIC_BASE = "https://www.googleapis.com/compute/v1/"


def link(ctx_or_srv, path: str) -> str:
    return f"{ctx_or_srv.url}/compute/v1/{path}"


def _err(status: str, message: str, reason: str, http: int | None = None) -> ApiError:
    return ApiError(status, message, reason=reason, style="compute", http=http)


def not_found(path: str) -> ApiError:
    return _err("NOT_FOUND", f"The resource '{path}' was not found", "notFound")


def ts(t: float) -> str:
    """Compute's timestamps: RFC 3339 with an offset."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}-00:00"


def _pid(ctx: Ctx, project: str) -> str:
    return ctx.project(project)["projectId"]


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_RX.match(name):
        raise _err("INVALID_ARGUMENT", f"Invalid value for field 'resource.name': '{name}'. Must be a match of regex "
                   "'(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", "invalid")


def _check_region(ctx: Ctx, pid: str, region: str) -> None:
    if region not in catalog.REGIONS:
        raise not_found(f"projects/{pid}/regions/{region}")


def _visible(rec: dict | None, now: float) -> bool:
    return bool(rec) and now >= rec["_ready_at"] and not rec.get("_gone")


def _list(kind: str, ctx: Ctx, path: str, items: list) -> dict:
    out = {"kind": f"compute#{kind}List", "id": path, "selfLink": link(ctx, path)}
    if items:
        out["items"] = items
    return out


# ---------------------------------------------------------------- operations
def new_op(ctx: Ctx, pid: str, op_type: str, target: str, target_id: str, duration: float, scope: str,
           fault_kind: str) -> dict:
    now = ctx.now
    name = f"operation-{int(now * 1000)}-{secrets.token_hex(6)[:13]}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
    op = {
        "kind": "compute#operation", "id": numeric_id(), "name": name, "operationType": op_type,
        "targetLink": link(ctx, target), "targetId": target_id, "user": ctx.caller or "anonymous",
        "insertTime": ts(now), "_project": pid, "_scope": scope, "_created": now,
        "_start_at": now + min(0.5 * ctx.speed, duration / 10), "_done_at": now + duration,
        "selfLink": link(ctx, f"projects/{pid}/{scope}/operations/{name}"),
    }
    if scope.startswith("regions/"):
        op["region"] = link(ctx, f"projects/{pid}/{scope}")
    elif scope.startswith("zones/"):
        op["zone"] = link(ctx, f"projects/{pid}/{scope}")
    fault = take_op_fault(ctx.srv, fault_kind)
    if fault:
        op["_error"] = {"errors": [{"code": fault.get("code") or "RESOURCE_OPERATION_RATE_EXCEEDED",
                                    "message": fault.get("message") or "Operation rate exceeded for resource "
                                    f"'{target}'. Too frequent operations from the source resource."}]}
    ctx.data["compute_operations"][f"{pid}/{scope}/{name}"] = op
    ctx.store.touch()
    return op


def op_view(op: dict, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    out = {k: v for k, v in op.items() if not k.startswith("_")}
    if now < op["_start_at"]:
        out.update(status="PENDING", progress=0)
    elif now < op["_done_at"]:
        span = max(op["_done_at"] - op["_start_at"], 1e-9)
        out.update(status="RUNNING", progress=int(100 * (now - op["_start_at"]) / span), startTime=ts(op["_start_at"]))
    else:
        out.update(status="DONE", progress=100, startTime=ts(op["_start_at"]), endTime=ts(op["_done_at"]))
        if op.get("_error"):
            out["error"] = op["_error"]
            out["httpErrorStatusCode"] = 400
            out["httpErrorMessage"] = "BAD REQUEST"
    return out


def _find_op(ctx: Ctx, project: str, scope: str, op: str) -> dict:
    pid = _pid(ctx, project)
    rec = ctx.data["compute_operations"].get(f"{pid}/{scope}/{op}")
    if rec is None:
        raise not_found(f"projects/{pid}/{scope}/operations/{op}")
    return rec


async def get_global_op(ctx: Ctx, project: str, op: str) -> dict:
    return op_view(_find_op(ctx, project, "global", op), ctx.now)


async def get_region_op(ctx: Ctx, project: str, region: str, op: str) -> dict:
    return op_view(_find_op(ctx, project, f"regions/{region}", op), ctx.now)


async def get_zone_op(ctx: Ctx, project: str, zone: str, op: str) -> dict:
    return op_view(_find_op(ctx, project, f"zones/{zone}", op), ctx.now)


async def _wait(ctx: Ctx, rec: dict) -> dict:
    deadline = time.time() + max(0.05, 120 * ctx.speed)
    while time.time() < min(deadline, rec["_done_at"]):
        await asyncio.sleep(min(0.05, max(0.001, rec["_done_at"] - time.time())))
    now = time.time()
    await ctx.srv.advance()  # what was due by ``now`` has happened
    return op_view(rec, now)


async def wait_global_op(ctx: Ctx, project: str, op: str) -> dict:
    return await _wait(ctx, _find_op(ctx, project, "global", op))


async def wait_region_op(ctx: Ctx, project: str, region: str, op: str) -> dict:
    return await _wait(ctx, _find_op(ctx, project, f"regions/{region}", op))


async def wait_zone_op(ctx: Ctx, project: str, zone: str, op: str) -> dict:
    return await _wait(ctx, _find_op(ctx, project, f"zones/{zone}", op))


async def list_global_ops(ctx: Ctx, project: str) -> dict:
    pid = _pid(ctx, project)
    now = time.time()
    items = [op_view(o, now) for k, o in ctx.data["compute_operations"].items() if k.startswith(f"{pid}/global/")]
    return _list("operation", ctx, f"projects/{pid}/global/operations", items)


async def list_region_ops(ctx: Ctx, project: str, region: str) -> dict:
    pid = _pid(ctx, project)
    now = time.time()
    items = [op_view(o, now) for k, o in ctx.data["compute_operations"].items()
             if k.startswith(f"{pid}/regions/{region}/")]
    return _list("operation", ctx, f"projects/{pid}/regions/{region}/operations", items)


# ---------------------------------------------------------------- project, regions, zones
# Quotas (https://cloud.google.com/compute/resource-usage; Region.quotas[] / Project.quotas[] of the compute.v1
# discovery document, each {metric, limit, usage}): what a GKE cluster's nodes take of them, as Compute counts its
# VMs: regional CPUS (E2/N1 vCPUs), IN_USE_ADDRESSES (a public node's external IP), SSD_TOTAL_GB (pd-balanced and
# pd-ssd boot disks; pd-standard counts against DISKS_TOTAL_GB), INSTANCES; project-wide CPUS_ALL_REGIONS. The
# limits are a new project's typical defaults (*assumed*: Google sets them per project); scenario ``cpu_quota``
# (``metric=``, ``region=global`` for a project metric) changes one.
REGIONAL_LIMITS = {"CPUS": catalog.DEFAULT_CPU_QUOTA, "DISKS_TOTAL_GB": 4096.0, "IN_USE_ADDRESSES": 8.0,
                   "SSD_TOTAL_GB": 500.0, "INSTANCES": 24.0}
PROJECT_LIMITS = {"CPUS_ALL_REGIONS": 32.0}
SSD_TYPES = ("pd-balanced", "pd-ssd")


def _cluster_usage(c: dict) -> dict[str, float]:
    """What a cluster's nodes take, by metric (its region's and the project's)."""
    out = {"CPUS": float(c.get("_cpus", 0.0)), "CPUS_ALL_REGIONS": float(c.get("_cpus", 0.0))}
    for p in c.get("nodePools") or []:
        nodes = float(int(p.get("initialNodeCount") or 0) * len(p.get("locations") or [c.get("location")]))
        cfg = p.get("config") or {}
        disk = float(cfg.get("diskSizeGb") or 100) * nodes
        out["IN_USE_ADDRESSES"] = out.get("IN_USE_ADDRESSES", 0.0) + nodes
        out["INSTANCES"] = out.get("INSTANCES", 0.0) + nodes
        key = "SSD_TOTAL_GB" if cfg.get("diskType", "pd-balanced") in SSD_TYPES else "DISKS_TOTAL_GB"
        out[key] = out.get(key, 0.0) + disk
    return out


def _counted(c: dict) -> bool:
    return c.get("status") not in ("ERROR",) and not c.get("_gone")


def usage(data: dict, region: str | None, metric: str, pid: str | None = None) -> float:
    """Usage of ``metric`` in ``region`` (None: the whole project) by the sandbox's clusters."""
    used = 0.0
    for c in data["clusters"].values():
        if not _counted(c) or (pid and c.get("_project") != pid):
            continue
        loc = c["location"]
        if region is None or loc == region or catalog.zone_region(loc) == region:
            used += _cluster_usage(c).get(metric, 0.0)
    return used


def limit(data: dict, region: str | None, metric: str) -> float:
    sc = data["scenario"]
    if metric == "CPUS" and region is not None and region in sc["cpu_quota"]:
        return float(sc["cpu_quota"][region])
    over = (sc.get("quotas") or {}).get(region or "global", {})
    if metric in over:
        return float(over[metric])
    return (REGIONAL_LIMITS if region is not None else PROJECT_LIMITS)[metric]


def cpu_usage(data: dict, region: str) -> float:
    return usage(data, region, "CPUS")


def cpu_quota(data: dict, region: str) -> float:
    return limit(data, region, "CPUS")


def short_of(data: dict, pid: str, region: str, wants: dict[str, float]) -> ApiError | None:
    """The synchronous 403 for the first quota ``wants`` (metric -> amount) exceeds, else None. Regional text:
    "Insufficient regional quota to satisfy request: resource "CPUS": request requires '12.0' and is short '4.0'…"
    (gcp-api-behaviour.md §0, Quota); the project-wide wording "Insufficient project quota" is *assumed*."""
    for metric, want in wants.items():
        regional = metric not in PROJECT_LIMITS
        lim = limit(data, region if regional else None, metric)
        free = lim - usage(data, region if regional else None, metric, None if regional else pid)
        if want > free:
            scope = "regional" if regional else "project"
            return ApiError("PERMISSION_DENIED", f"Insufficient {scope} quota to satisfy request: resource "
                            f"\"{metric}\": request requires '{want:.1f}' and is short '{want - free:.1f}'. project "
                            f"has a quota of '{lim:.1f}' with '{free:.1f}' available. View and manage quotas at "
                            f"https://console.cloud.google.com/iam-admin/quotas?usage=USED&project={pid}.",
                            reason="forbidden")
    return None


def region_view(ctx: Ctx, pid: str, region: str) -> dict:
    zones = catalog.REGIONS[region]
    data = ctx.data
    return {
        "kind": "compute#region", "id": str(1000 + list(catalog.REGIONS).index(region)),
        "creationTimestamp": "1969-12-31T16:00:00.000-08:00", "name": region,
        "description": catalog.REGION_DESC[region], "status": "UP",
        "zones": [link(ctx, f"projects/{pid}/zones/{z}") for z in zones],
        "quotas": [{"metric": m, "limit": limit(data, region, m), "usage": usage(data, region, m)}
                   for m in REGIONAL_LIMITS],
        "selfLink": link(ctx, f"projects/{pid}/regions/{region}"), "supportsPzs": False,
    }


def zone_view(ctx: Ctx, pid: str, zone: str) -> dict:
    region = catalog.zone_region(zone)
    return {"kind": "compute#zone", "id": str(2000 + sum(([z for z in zs] for zs in catalog.REGIONS.values()), [])
                                               .index(zone)),
            "creationTimestamp": "1969-12-31T16:00:00.000-08:00", "name": zone, "description": zone,
            "status": "UP", "region": link(ctx, f"projects/{pid}/regions/{region}"),
            "selfLink": link(ctx, f"projects/{pid}/zones/{zone}"),
            "availableCpuPlatforms": ["Intel Broadwell", "Intel Cascade Lake", "AMD Milan"], "supportsPzs": False}


async def get_project(ctx: Ctx, project: str) -> dict:
    p = ctx.project(project)
    pid = p["projectId"]
    now = time.time()
    nets = sum(1 for n in ctx.data["networks"].values() if n["_project"] == pid and _visible(n, now))
    return {"kind": "compute#project", "id": p["projectNumber"], "creationTimestamp": "2026-01-01T00:00:00.000-08:00",
            "name": pid, "commonInstanceMetadata": {"kind": "compute#metadata", "fingerprint": "sandbox0000="},
            "quotas": [{"metric": "NETWORKS", "limit": float(NETWORK_QUOTA), "usage": float(nets)},
                       {"metric": "FIREWALLS", "limit": 200.0, "usage": 0.0},
                       {"metric": "SUBNETWORKS", "limit": 175.0, "usage": 0.0}]
            + [{"metric": m, "limit": limit(ctx.data, None, m), "usage": usage(ctx.data, None, m, pid)}
               for m in PROJECT_LIMITS],
            "selfLink": link(ctx, f"projects/{pid}"),
            "defaultServiceAccount": f"{p['projectNumber']}-compute@developer.gserviceaccount.com",
            "xpnProjectStatus": "UNSPECIFIED_XPN_PROJECT_STATUS", "defaultNetworkTier": "PREMIUM"}


async def list_regions(ctx: Ctx, project: str) -> dict:
    pid = _pid(ctx, project)
    ctx.require("compute.regions.list", f"projects/{pid}")
    return _list("region", ctx, f"projects/{pid}/regions", [region_view(ctx, pid, r) for r in catalog.REGIONS])


async def get_region(ctx: Ctx, project: str, region: str) -> dict:
    pid = _pid(ctx, project)
    _check_region(ctx, pid, region)
    return region_view(ctx, pid, region)


async def list_zones(ctx: Ctx, project: str) -> dict:
    pid = _pid(ctx, project)
    zones = [z for zs in catalog.REGIONS.values() for z in zs]
    return _list("zone", ctx, f"projects/{pid}/zones", [zone_view(ctx, pid, z) for z in zones])


async def get_zone(ctx: Ctx, project: str, zone: str) -> dict:
    pid = _pid(ctx, project)
    if catalog.zone_region(zone) is None:
        raise not_found(f"projects/{pid}/zones/{zone}")
    return zone_view(ctx, pid, zone)


def machine_type_view(ctx: Ctx, pid: str, zone: str, name: str, cpus: int, mem: int) -> dict:
    return {"kind": "compute#machineType", "id": str(zlib.crc32(name.encode())), "creationTimestamp":
            "1969-12-31T16:00:00.000-08:00", "name": name, "description": f"{cpus} vCPUs, {mem / 1024:g} GB RAM",
            "guestCpus": cpus, "memoryMb": mem, "imageSpaceGb": 0, "maximumPersistentDisks": 128,
            "maximumPersistentDisksSizeGb": "263168", "zone": zone, "isSharedCpu": name in (
                "e2-micro", "e2-small", "e2-medium", "f1-micro", "g1-small"),
            "selfLink": link(ctx, f"projects/{pid}/zones/{zone}/machineTypes/{name}")}


async def list_machine_types(ctx: Ctx, project: str, zone: str) -> dict:
    pid = _pid(ctx, project)
    if catalog.zone_region(zone) is None:
        raise not_found(f"projects/{pid}/zones/{zone}")
    items = [machine_type_view(ctx, pid, zone, n, c, m) for n, (c, m) in sorted(catalog.machine_types().items())]
    return _list("machineType", ctx, f"projects/{pid}/zones/{zone}/machineTypes", items)


async def get_machine_type(ctx: Ctx, project: str, zone: str, machine_type: str) -> dict:
    pid = _pid(ctx, project)
    mt = catalog.machine_types().get(machine_type)
    if catalog.zone_region(zone) is None or mt is None:
        raise not_found(f"projects/{pid}/zones/{zone}/machineTypes/{machine_type}")
    return machine_type_view(ctx, pid, zone, machine_type, *mt)


# ---------------------------------------------------------------- networks
def network_view(ctx, rec: dict, now: float) -> dict:
    out = {k: v for k, v in rec.items() if not k.startswith("_")}
    subs = [link(ctx, f"projects/{s['_project']}/regions/{s['_region']}/subnetworks/{s['name']}")
            for s in ctx.data["subnetworks"].values()
            if s["_network"] == rec["name"] and s["_project"] == rec["_project"] and _visible(s, now)]
    if subs:
        out["subnetworks"] = subs
    return out


def _net_rec(srv_or_ctx, pid: str, name: str, body: dict, now: float, ready_at: float) -> dict:
    path = f"projects/{pid}/global/networks/{name}"
    rec = {
        "kind": "compute#network", "id": numeric_id(), "creationTimestamp": ts(now), "name": name,
        "description": body.get("description", ""), "selfLink": link(srv_or_ctx, path),
        "selfLinkWithId": "", "autoCreateSubnetworks": bool(body.get("autoCreateSubnetworks", False)),
        "routingConfig": {"routingMode": (body.get("routingConfig") or {}).get("routingMode", "REGIONAL")},
        "networkFirewallPolicyEnforcementOrder": "AFTER_CLASSIC_FIREWALL", "mtu": int(body.get("mtu") or 1460),
        "_project": pid, "_ready_at": ready_at,
    }
    rec["selfLinkWithId"] = link(srv_or_ctx, f"projects/{pid}/global/networks/{rec['id']}")
    if "autoCreateSubnetworks" not in body:
        rec["IPv4Range"] = "10.240.0.0/16"
        rec["gatewayIPv4"] = "10.240.0.1"
        del rec["autoCreateSubnetworks"]
    return rec


def _auto_subnets(srv_or_ctx, data: dict, pid: str, net: str, now: float, ready_at: float) -> None:
    for i, region in enumerate(catalog.REGIONS):
        cidr = f"10.{128 + i * 4}.0.0/20"
        data["subnetworks"][f"{pid}/{region}/{net}"] = _sub_rec(
            srv_or_ctx, pid, region, net, {"name": net, "ipCidrRange": cidr, "privateIpGoogleAccess": False},
            now, ready_at, ready_at)


def ensure_default_network(srv, project: str, now: float) -> None:
    data = srv.store.data
    key = f"{project}/default"
    if key in data["networks"]:
        return
    data["networks"][key] = _net_rec(srv, project, "default", {"autoCreateSubnetworks": True,
                                                               "description": "Default network for the project"},
                                     now, now)
    _auto_subnets(srv, data, project, "default", now, now)
    srv.store.touch()


async def list_networks(ctx: Ctx, project: str) -> dict:
    pid = _pid(ctx, project)
    ctx.require("compute.networks.list", f"projects/{pid}")
    now = time.time()
    items = [network_view(ctx, n, now) for n in ctx.data["networks"].values()
             if n["_project"] == pid and _visible(n, now)]
    return _list("network", ctx, f"projects/{pid}/global/networks", items)


def _get_net(ctx: Ctx, pid: str, network: str) -> dict:
    rec = ctx.data["networks"].get(f"{pid}/{network}")
    if not _visible(rec, time.time()):
        raise not_found(f"projects/{pid}/global/networks/{network}")
    return rec  # type: ignore[return-value]


async def get_network(ctx: Ctx, project: str, network: str) -> dict:
    pid = _pid(ctx, project)
    ctx.require("compute.networks.get", f"projects/{pid}/global/networks/{network}")
    return network_view(ctx, _get_net(ctx, pid, network), time.time())


async def insert_network(ctx: Ctx, project: str) -> dict:
    pid = _pid(ctx, project)
    name = ctx.body.get("name")
    ctx.require("compute.networks.create", f"projects/{pid}/global/networks/{name}")
    _check_name(name)
    key = f"{pid}/{name}"
    if key in ctx.data["networks"]:
        raise _err("ALREADY_EXISTS", f"The resource 'projects/{pid}/global/networks/{name}' already exists",
                   "alreadyExists")
    if sum(1 for n in ctx.data["networks"].values() if n["_project"] == pid) >= NETWORK_QUOTA:
        raise _err("PERMISSION_DENIED", f"Quota 'NETWORKS' exceeded.  Limit: {float(NETWORK_QUOTA)} globally.",
                   "quotaExceeded", http=403)
    dur = ctx.dur("compute.network_insert")
    path = f"projects/{pid}/global/networks/{name}"
    rec = _net_rec(ctx, pid, name, ctx.body, ctx.now, ctx.now + dur)
    op = new_op(ctx, pid, "insert", path, rec["id"], dur, "global", "compute.network.insert")
    if op.get("_error"):
        return op_view(op)
    ctx.data["networks"][key] = rec
    if rec.get("autoCreateSubnetworks"):
        _auto_subnets(ctx, ctx.data, pid, name, ctx.now, ctx.now + dur)
    return op_view(op)


async def delete_network(ctx: Ctx, project: str, network: str) -> dict:
    pid = _pid(ctx, project)
    ctx.require("compute.networks.delete", f"projects/{pid}/global/networks/{network}")
    rec = _get_net(ctx, pid, network)
    path = f"projects/{pid}/global/networks/{network}"
    if rec.get("_deleting"):
        raise _err("INVALID_ARGUMENT", f"The resource '{path}' is not ready", "resourceNotReady")
    users = [f"projects/{pid}/regions/{s['_region']}/subnetworks/{s['name']}" for s in ctx.data["subnetworks"].values()
             if s["_project"] == pid and s["_network"] == network and not rec.get("autoCreateSubnetworks")]
    users += [f"projects/{pid}/global/firewalls/{f['name']}" for f in ctx.data.setdefault("firewalls", {}).values()
              if f["_project"] == pid and f["_network"] == network]
    if users:
        raise _err("INVALID_ARGUMENT", f"The network resource '{path}' is already being used by '{users[0]}'",
                   "resourceInUseByAnotherResource")
    dur = ctx.dur("compute.delete")
    op = new_op(ctx, pid, "delete", path, rec["id"], dur, "global", "compute.network.delete")
    if not op.get("_error"):
        rec["_deleting"] = True
        ctx.srv.schedule(op["_done_at"], "compute.remove", table="networks", key=f"{pid}/{network}")
        if rec.get("autoCreateSubnetworks"):
            for k, s in list(ctx.data["subnetworks"].items()):
                if s["_project"] == pid and s["_network"] == network:
                    ctx.srv.schedule(op["_done_at"], "compute.remove", table="subnetworks", key=k)
    return op_view(op)


# ---------------------------------------------------------------- subnetworks
def _sub_rec(ctx, pid: str, region: str, network: str, body: dict, now: float, ready_at: float,
             settled_at: float) -> dict:
    cidr = ipaddress.ip_network(body["ipCidrRange"])
    path = f"projects/{pid}/regions/{region}/subnetworks/{body['name']}"
    return {
        "kind": "compute#subnetwork", "id": numeric_id(), "creationTimestamp": ts(now), "name": body["name"],
        "description": body.get("description", ""), "network": link(ctx, f"projects/{pid}/global/networks/{network}"),
        "ipCidrRange": str(cidr), "gatewayAddress": str(cidr.network_address + 1),
        "region": link(ctx, f"projects/{pid}/regions/{region}"), "selfLink": link(ctx, path),
        "privateIpGoogleAccess": bool(body.get("privateIpGoogleAccess", False)),
        "secondaryIpRanges": list(body.get("secondaryIpRanges") or []), "fingerprint": "sandbox0000=",
        "stackType": "IPV4_ONLY", "purpose": "PRIVATE",
        "_project": pid, "_region": region, "_network": network, "_ready_at": ready_at, "_settled_at": settled_at,
    }


def _network_name(value: str) -> str:
    m = re.search(r"(?:^|/)networks/([^/]+)$", value or "")
    return m.group(1) if m else (value or "")


async def list_subnets(ctx: Ctx, project: str, region: str) -> dict:
    pid = _pid(ctx, project)
    _check_region(ctx, pid, region)
    now = time.time()
    items = [{k: v for k, v in s.items() if not k.startswith("_")} for s in ctx.data["subnetworks"].values()
             if s["_project"] == pid and s["_region"] == region and _visible(s, now)]
    return _list("subnetwork", ctx, f"projects/{pid}/regions/{region}/subnetworks", items)


async def aggregated_subnets(ctx: Ctx, project: str) -> dict:
    pid = _pid(ctx, project)
    now = time.time()
    items: dict = {}
    for region in catalog.REGIONS:
        subs = [{k: v for k, v in s.items() if not k.startswith("_")} for s in ctx.data["subnetworks"].values()
                if s["_project"] == pid and s["_region"] == region and _visible(s, now)]
        items[f"regions/{region}"] = {"subnetworks": subs} if subs else {
            "warning": {"code": "NO_RESULTS_ON_PAGE", "message": "There are no results for scope "
                        f"'regions/{region}' on this page.", "data": [{"key": "scope", "value": f"regions/{region}"}]}}
    return {"kind": "compute#subnetworkAggregatedList", "id": f"projects/{pid}/aggregated/subnetworks",
            "items": items, "selfLink": link(ctx, f"projects/{pid}/aggregated/subnetworks")}


def _get_sub(ctx: Ctx, pid: str, region: str, name: str) -> dict:
    rec = ctx.data["subnetworks"].get(f"{pid}/{region}/{name}")
    if not _visible(rec, time.time()):
        raise not_found(f"projects/{pid}/regions/{region}/subnetworks/{name}")
    return rec  # type: ignore[return-value]


def check_subnet_ready(ctx: Ctx, rec: dict) -> None:
    if time.time() < rec["_settled_at"] or rec.get("_deleting"):
        raise _err("INVALID_ARGUMENT", f"The resource 'projects/{rec['_project']}/regions/{rec['_region']}/"
                   f"subnetworks/{rec['name']}' is not ready", "resourceNotReady")


async def get_subnet(ctx: Ctx, project: str, region: str, subnetwork: str) -> dict:
    pid = _pid(ctx, project)
    rec = _get_sub(ctx, pid, region, subnetwork)
    return {k: v for k, v in rec.items() if not k.startswith("_")}


async def insert_subnet(ctx: Ctx, project: str, region: str) -> dict:
    pid = _pid(ctx, project)
    _check_region(ctx, pid, region)
    b = ctx.body
    name = b.get("name")
    ctx.require("compute.subnetworks.create", f"projects/{pid}/regions/{region}/subnetworks/{name}")
    _check_name(name)
    net_name = _network_name(b.get("network", ""))
    net = ctx.data["networks"].get(f"{pid}/{net_name}")
    if net is None or net.get("_deleting"):
        raise _err("INVALID_ARGUMENT", f"Invalid value for field 'resource.network': '{b.get('network')}'. The "
                   "referenced network resource cannot be found.", "invalid")
    if time.time() < net["_ready_at"]:
        raise _err("INVALID_ARGUMENT", f"The resource 'projects/{pid}/global/networks/{net_name}' is not ready",
                   "resourceNotReady")
    if "IPv4Range" in net:
        raise _err("INVALID_ARGUMENT", f"Invalid value for field 'resource.network': '{b.get('network')}'. "
                   "Subnetworks cannot be created in a legacy network.", "invalid")
    try:
        cidr = ipaddress.ip_network(b.get("ipCidrRange", ""), strict=True)
    except ValueError:
        raise _err("INVALID_ARGUMENT", f"Invalid value for field 'resource.ipCidrRange': '{b.get('ipCidrRange')}'. "
                   "Invalid IPCidrRange: " + str(b.get("ipCidrRange")), "invalid") from None
    key = f"{pid}/{region}/{name}"
    if key in ctx.data["subnetworks"]:
        raise _err("ALREADY_EXISTS", f"The resource 'projects/{pid}/regions/{region}/subnetworks/{name}' already "
                   "exists", "alreadyExists")
    for s in ctx.data["subnetworks"].values():
        if s["_project"] == pid and s["_network"] == net_name and \
                ipaddress.ip_network(s["ipCidrRange"]).overlaps(cidr):
            raise _err("INVALID_ARGUMENT", f"Invalid IPCidrRange: {cidr} conflicts with existing subnetwork "
                       f"'{s['name']}' in region '{s['_region']}'.", "invalid")
    dur = ctx.dur("compute.subnetwork_insert")
    rec = _sub_rec(ctx, pid, region, net_name, b, ctx.now, ctx.now + dur,
                   ctx.now + dur + ctx.dur("compute.subnet_not_ready"))
    path = f"projects/{pid}/regions/{region}/subnetworks/{name}"
    op = new_op(ctx, pid, "insert", path, rec["id"], dur, f"regions/{region}", "compute.subnetwork.insert")
    if not op.get("_error"):
        ctx.data["subnetworks"][key] = rec
    return op_view(op)


async def delete_subnet(ctx: Ctx, project: str, region: str, subnetwork: str) -> dict:
    pid = _pid(ctx, project)
    ctx.require("compute.subnetworks.delete", f"projects/{pid}/regions/{region}/subnetworks/{subnetwork}")
    rec = _get_sub(ctx, pid, region, subnetwork)
    check_subnet_ready(ctx, rec)
    path = f"projects/{pid}/regions/{region}/subnetworks/{subnetwork}"
    for c in ctx.data["clusters"].values():
        if c["_project"] == pid and c.get("subnetwork") == subnetwork and c.get("network") == rec["_network"] \
                and (c["location"] == region or catalog.zone_region(c["location"]) == region):
            raise _err("INVALID_ARGUMENT", f"The subnetwork resource '{path}' is already being used by "
                       f"'projects/{pid}/zones/{c['location']}/instanceGroupManagers/gke-{c['name']}-default-pool'",
                       "resourceInUseByAnotherResource")
    op = new_op(ctx, pid, "delete", path, rec["id"], ctx.dur("compute.delete"), f"regions/{region}",
                "compute.subnetwork.delete")
    if not op.get("_error"):
        rec["_deleting"] = True
        ctx.srv.schedule(op["_done_at"], "compute.remove", table="subnetworks", key=f"{pid}/{region}/{subnetwork}")
    return op_view(op)


# ---------------------------------------------------------------- firewalls
async def list_firewalls(ctx: Ctx, project: str) -> dict:
    pid = _pid(ctx, project)
    now = time.time()
    items = [{k: v for k, v in f.items() if not k.startswith("_")} for f in ctx.data.setdefault("firewalls", {}).values()
             if f["_project"] == pid and _visible(f, now)]
    return _list("firewall", ctx, f"projects/{pid}/global/firewalls", items)


async def get_firewall(ctx: Ctx, project: str, firewall: str) -> dict:
    pid = _pid(ctx, project)
    rec = ctx.data.setdefault("firewalls", {}).get(f"{pid}/{firewall}")
    if not _visible(rec, time.time()):
        raise not_found(f"projects/{pid}/global/firewalls/{firewall}")
    return {k: v for k, v in rec.items() if not k.startswith("_")}  # type: ignore[union-attr]


async def insert_firewall(ctx: Ctx, project: str) -> dict:
    pid = _pid(ctx, project)
    b = ctx.body
    name = b.get("name")
    _check_name(name)
    fws = ctx.data.setdefault("firewalls", {})
    if f"{pid}/{name}" in fws:
        raise _err("ALREADY_EXISTS", f"The resource 'projects/{pid}/global/firewalls/{name}' already exists",
                   "alreadyExists")
    net_name = _network_name(b.get("network", "global/networks/default"))
    if not _visible(ctx.data["networks"].get(f"{pid}/{net_name}"), time.time()):
        raise _err("INVALID_ARGUMENT", f"Invalid value for field 'resource.network': '{b.get('network')}'. The "
                   "referenced network resource cannot be found.", "invalid")
    dur = ctx.dur("compute.subnetwork_insert") / 2
    path = f"projects/{pid}/global/firewalls/{name}"
    rec = dict(b)
    rec.update({"kind": "compute#firewall", "id": numeric_id(), "creationTimestamp": ts(ctx.now),
                "network": link(ctx, f"projects/{pid}/global/networks/{net_name}"), "selfLink": link(ctx, path),
                "direction": b.get("direction", "INGRESS"), "priority": b.get("priority", 1000),
                "_project": pid, "_network": net_name, "_ready_at": ctx.now + dur})
    op = new_op(ctx, pid, "insert", path, rec["id"], dur, "global", "compute.firewall.insert")
    if not op.get("_error"):
        fws[f"{pid}/{name}"] = rec
    return op_view(op)


async def delete_firewall(ctx: Ctx, project: str, firewall: str) -> dict:
    pid = _pid(ctx, project)
    fws = ctx.data.setdefault("firewalls", {})
    rec = fws.get(f"{pid}/{firewall}")
    path = f"projects/{pid}/global/firewalls/{firewall}"
    if not _visible(rec, time.time()):
        raise not_found(path)
    dur = ctx.dur("compute.delete") / 2
    op = new_op(ctx, pid, "delete", path, rec["id"], dur, "global", "compute.firewall.delete")  # type: ignore[index]
    if not op.get("_error"):
        ctx.srv.schedule(op["_done_at"], "compute.remove", table="firewalls", key=f"{pid}/{firewall}")
    return op_view(op)


async def _remove(srv, table: str, key: str) -> None:
    srv.store.data.setdefault(table, {}).pop(key, None)
    srv.store.touch()


ACTIONS = {"compute.remove": _remove}


def register(r: Router) -> None:
    a = dict(api="compute", style="compute")
    r.add("GET", ROOT, get_project, **a)
    r.add("GET", ROOT + "/regions", list_regions, **a)
    r.add("GET", ROOT + "/regions/{region}", get_region, **a)
    r.add("GET", ROOT + "/zones", list_zones, **a)
    r.add("GET", ROOT + "/zones/{zone}", get_zone, **a)
    r.add("GET", ROOT + "/zones/{zone}/machineTypes", list_machine_types, **a)
    r.add("GET", ROOT + "/zones/{zone}/machineTypes/{machine_type}", get_machine_type, **a)
    r.add("GET", ROOT + "/global/networks", list_networks, **a)
    r.add("POST", ROOT + "/global/networks", insert_network, **a)
    r.add("GET", ROOT + "/global/networks/{network}", get_network, **a)
    r.add("DELETE", ROOT + "/global/networks/{network}", delete_network, **a)
    r.add("GET", ROOT + "/global/firewalls", list_firewalls, **a)
    r.add("POST", ROOT + "/global/firewalls", insert_firewall, **a)
    r.add("GET", ROOT + "/global/firewalls/{firewall}", get_firewall, **a)
    r.add("DELETE", ROOT + "/global/firewalls/{firewall}", delete_firewall, **a)
    r.add("GET", ROOT + "/aggregated/subnetworks", aggregated_subnets, **a)
    r.add("GET", ROOT + "/regions/{region}/subnetworks", list_subnets, **a)
    r.add("POST", ROOT + "/regions/{region}/subnetworks", insert_subnet, **a)
    r.add("GET", ROOT + "/regions/{region}/subnetworks/{subnetwork}", get_subnet, **a)
    r.add("DELETE", ROOT + "/regions/{region}/subnetworks/{subnetwork}", delete_subnet, **a)
    r.add("GET", ROOT + "/global/operations", list_global_ops, **a)
    r.add("GET", ROOT + "/global/operations/{op}", get_global_op, **a)
    r.add("POST", ROOT + "/global/operations/{op}/wait", wait_global_op, mutating=False, **a)
    r.add("GET", ROOT + "/regions/{region}/operations", list_region_ops, **a)
    r.add("GET", ROOT + "/regions/{region}/operations/{op}", get_region_op, **a)
    r.add("POST", ROOT + "/regions/{region}/operations/{op}/wait", wait_region_op, mutating=False, **a)
    r.add("GET", ROOT + "/zones/{zone}/operations/{op}", get_zone_op, **a)
    r.add("POST", ROOT + "/zones/{zone}/operations/{op}/wait", wait_zone_op, mutating=False, **a)


_ = utc
