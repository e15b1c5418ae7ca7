# Over ~500 lines, one job: GKE v1's clusters, node pools and operations, sharing the cluster record here.
"""Container (GKE) v1: clusters create/get/list/delete, operations, PROVISIONING→RUNNING, workload pool,
endpoint + CA of a Kubernetes API started per cluster (§5, §12.9)."""

from __future__ import annotations

import copy
import re
import secrets
import time

from .. import catalog
from ..errors import ApiError, RPC_CODE
from ..faults import take_op_fault
from ..routing import Ctx, Router
from ..store import numeric_id, utc
from . import compute

NAME_RX = re.compile(r"^[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$")
VERSION = "1.33.5-gke.1080000"


def _link(ctx_or_srv, path: str) -> str:
    return f"{ctx_or_srv.url}/v1/{path}"


def _loc_kind(location: str) -> str | None:
    if location in catalog.REGIONS:
        return "region"
    if catalog.zone_region(location):
        return "zone"
    return None


def _cluster_path(pid: str, location: str, name: str, legacy: bool = False) -> str:
    return f"projects/{pid}/{'zones' if legacy else 'locations'}/{location}/clusters/{name}"


def _name_of(value: str | None, kind: str) -> str | None:
    if not value:
        return None
    m = re.search(rf"{kind}/([^/]+)$", value)
    return m.group(1) if m else value


def cluster_view(c: dict) -> dict:
    return copy.deepcopy({k: v for k, v in c.items() if not k.startswith("_")})


def _get(ctx: Ctx, pid: str, location: str, name: str, legacy: bool = False) -> dict:
    c = ctx.data["clusters"].get(f"{pid}/{location}/{name}")
    if c is None:
        raise ApiError("NOT_FOUND", f"Not found: {_cluster_path(pid, location, name, legacy)}.")
    return c


def _running_op(ctx: Ctx, c: dict) -> dict | None:
    now = time.time()
    for op in ctx.data["container_operations"].values():
        if op["_cluster"] == c["_key"] and now < op["_done_at"]:
            return op
    return None


def new_op(ctx: Ctx, pid: str, location: str, op_type: str, target: str, duration: float, cluster_key: str,
           error: dict | None) -> dict:
    now = ctx.now
    name = f"operation-{int(now * 1000)}-{secrets.token_hex(4)}"
    op = {"name": name, "zone": location, "operationType": op_type,
          "selfLink": _link(ctx, f"projects/{ctx.data['projects'][pid]['projectNumber']}/"
                                 f"locations/{location}/operations/{name}"),
          "targetLink": _link(ctx, target), "startTime": utc(now), "location": location,
          "_project": pid, "_cluster": cluster_key, "_created": now, "_done_at": now + duration, "_error": error}
    ctx.data["container_operations"][f"{pid}/{location}/{name}"] = op
    ctx.store.touch()
    return op


def op_view(op: dict, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    out = {k: v for k, v in op.items() if not k.startswith("_")}
    if now < op["_done_at"]:
        out["status"] = "RUNNING"
        span = max(op["_done_at"] - op["_created"], 1e-9)
        frac = (now - op["_created"]) / span
        out["progress"] = {"metrics": [{"name": "CLUSTER_CONFIGURING", "intValue": str(int(frac * 7))}, {"name": "CLUSTER_CONFIGURING_TOTAL", "intValue": "7"}]}
    else:
        out["status"] = "DONE"
        out["endTime"] = utc(op["_done_at"])
        if op.get("_error"):
            out["statusMessage"] = op["_error"]["message"]
            out["error"] = op["_error"]
    return out


async def create_cluster(ctx: Ctx, project: str, location: str, legacy: bool = False) -> tuple[int, dict]:
    p = ctx.project(project)
    pid = p["projectId"]
    spec = ctx.body.get("cluster")
    if not isinstance(spec, dict):
        raise ApiError("INVALID_ARGUMENT", "Cluster is required.")
    name = spec.get("name", "")
    if not NAME_RX.match(name or ""):
        raise ApiError("INVALID_ARGUMENT", f"Invalid value for field \"cluster.name\": \"{name}\". Must be a match of "
                       "regex '(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)' (only alphanumerics and '-' allowed, must start "
                       "with a letter and end with an alphanumeric, and must be no longer than 40 characters).")
    kind = _loc_kind(location)
    if kind is None:
        raise ApiError("NOT_FOUND", f"Location \"{location}\" does not exist.")
    ctx.require("container.clusters.create", f"projects/{pid}")
    key = f"{pid}/{location}/{name}"
    if key in ctx.data["clusters"]:
        raise ApiError("ALREADY_EXISTS", f"Already exists: {_cluster_path(pid, location, name, legacy)}.")
    region = location if kind == "region" else catalog.zone_region(location)
    now = time.time()
    # network / subnetwork
    net_name = _name_of(spec.get("network") or (spec.get("networkConfig") or {}).get("network"), "networks") \
        or "default"
    net = ctx.data["networks"].get(f"{pid}/{net_name}")
    if net is None or now < net["_ready_at"] or net.get("_deleting"):
        raise ApiError("INVALID_ARGUMENT", f"Network \"{net_name}\" does not exist.")
    sub_name = _name_of(spec.get("subnetwork") or (spec.get("networkConfig") or {}).get("subnetwork"),
                        "subnetworks")
    if sub_name is None and net.get("autoCreateSubnetworks"):
        sub_name = net_name
    if sub_name is None:
        raise ApiError("INVALID_ARGUMENT", f"Network \"{net_name}\" is a custom subnet mode network; you must "
                       "specify a subnetwork.")
    sub = ctx.data["subnetworks"].get(f"{pid}/{region}/{sub_name}")
    if sub is None or now < sub["_ready_at"] or sub["_network"] != net_name:
        raise ApiError("INVALID_ARGUMENT", f"Subnetwork \"projects/{pid}/regions/{region}/subnetworks/{sub_name}\" "
                       f"does not exist or is not in network \"{net_name}\".")
    if now < sub["_settled_at"]:
        raise ApiError("FAILED_PRECONDITION", f"Google Compute Engine: The resource 'projects/{pid}/regions/{region}/"
                       f"subnetworks/{sub_name}' is not ready.")
    # node pools
    pools_spec = spec.get("nodePools") or [{"name": "default-pool", "initialNodeCount":
                                            spec.get("initialNodeCount", 3), "config": spec.get("nodeConfig") or {}}]
    zones = spec.get("locations") or ([location] if kind == "zone" else catalog.REGIONS[location][:3])
    total_cpus = 0.0
    pools = []
    for ps in pools_spec:
        cfg = dict(ps.get("config") or {})
        cfg.setdefault("machineType", "e2-medium")
        cfg.setdefault("diskSizeGb", 100)
        cfg.setdefault("diskType", "pd-balanced")
        cfg.setdefault("imageType", "COS_CONTAINERD")
        cfg.setdefault("oauthScopes", ["https://www.googleapis.com/auth/devstorage.read_only",
                                       "https://www.googleapis.com/auth/logging.write",
                                       "https://www.googleapis.com/auth/monitoring"])
        cfg.setdefault("serviceAccount", "default")
        if cfg["machineType"] not in catalog.machine_types():
            raise ApiError("INVALID_ARGUMENT", f"Invalid machine type \"{cfg['machineType']}\": not available in "
                           f"{location}.")
        sa = cfg["serviceAccount"]
        if sa != "default":
            rec = ctx.data["service_accounts"].get(sa)
            if rec is None or now < rec.get("visible_at", 0):
                raise ApiError("INVALID_ARGUMENT", f"Service account \"projects/-/serviceAccounts/{sa}\" does not "
                               "exist.")
        # NodeConfig.workloadMetadataConfig.mode (container.v1 discovery): GKE_METADATA "can only be enabled if
        # Workload Identity is enabled at the cluster level"; on a cluster created with a workload pool, node pools
        # run the GKE metadata server unless told otherwise
        # (https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity#enable_on_clusters_and_node_pools).
        # The 400's wording is the sandbox's own (not verified against Google).
        wi_pool = (spec.get("workloadIdentityConfig") or {}).get("workloadPool")
        mode = (cfg.get("workloadMetadataConfig") or {}).get("mode") or ("GKE_METADATA" if wi_pool else
                                                                         "GCE_METADATA")
        if mode == "GKE_METADATA" and not wi_pool:
            raise ApiError("INVALID_ARGUMENT", f"Node pool \"{ps.get('name', 'default-pool')}\": workload metadata "
                           "mode GKE_METADATA requires Workload Identity to be enabled on the cluster.")
        cfg["workloadMetadataConfig"] = {"mode": mode}
        count = int(ps.get("initialNodeCount") or 0)
        if count < 1:
            raise ApiError("INVALID_ARGUMENT", f"Node pool \"{ps.get('name')}\" requires at least one node.")
        total_cpus += count * len(zones) * catalog.machine_cpus(cfg["machineType"])
        pool = {"name": ps.get("name", "default-pool"), "config": cfg, "initialNodeCount": count,
                "locations": list(zones), "management": {"autoUpgrade": True, "autoRepair": True},
                "podIpv4CidrSize": 24, "status": "PROVISIONING", "version": VERSION,
                "selfLink": _link(ctx, f"projects/{pid}/locations/{location}/clusters/{name}/nodePools/"
                                       f"{ps.get('name', 'default-pool')}")}
        if ps.get("autoscaling"):
            pool["autoscaling"] = ps["autoscaling"]
        pools.append(pool)
    wi = spec.get("workloadIdentityConfig")
    if wi:
        pool_name = wi.get("workloadPool")
        if pool_name != f"{pid}.svc.id.goog":
            raise ApiError("INVALID_ARGUMENT", f"Workload Identity pool \"{pool_name}\" is invalid; the only supported "
                           f"pool for this project is \"{pid}.svc.id.goog\".")
    # every quota the nodes take, checked at the request (a synchronous 403, gcp-api-behaviour.md §0)
    wants = compute._cluster_usage({"_cpus": total_cpus, "nodePools": pools, "location": location})
    short = compute.short_of(ctx.data, pid, region, {m: wants[m] for m in ("CPUS", "IN_USE_ADDRESSES",
                                                                            "SSD_TOTAL_GB", "CPUS_ALL_REGIONS")
                                                     if m in wants})
    if short is not None:
        raise short
    fault = take_op_fault(ctx.srv, "container.create")
    duration = ctx.dur("container.create_regional" if kind == "region" else "container.create_zonal")
    error = None
    short = next((z for z in zones if z in (ctx.data["scenario"].get("gke_stockout") or {})), None)
    if short and not fault:
        error = _capacity_error(ctx.data["scenario"]["gke_stockout"][short], short, name, region)
    if fault:
        msg = fault.get("message") or ("Try a different location, or try again later: Google Compute Engine does "
                                       "not have enough resources available to fulfill request: "
                                       f"{location}.")
        error = {"code": fault.get("code") or RPC_CODE["RESOURCE_EXHAUSTED"], "message": msg}
    path = f"projects/{pid}/locations/{location}/clusters/{name}"
    c = {
        "name": name, "description": spec.get("description", ""), "nodeConfig": copy.deepcopy(pools[0]["config"]),
        "masterAuth": {}, "loggingService": "logging.googleapis.com/kubernetes",
        "monitoringService": "monitoring.googleapis.com/kubernetes", "network": net_name,
        "clusterIpv4Cidr": "10.4.0.0/14", "addonsConfig": spec.get("addonsConfig") or {
            "httpLoadBalancing": {}, "horizontalPodAutoscaling": {}, "networkPolicyConfig": {"disabled": True},
            "gcePersistentDiskCsiDriverConfig": {"enabled": True}},
        "subnetwork": sub_name, "nodePools": pools, "locations": list(zones),
        "labelFingerprint": "a9dc16a7", "legacyAbac": {}, "networkPolicy": {},
        "ipAllocationPolicy": {"useIpAliases": True, "clusterIpv4CidrBlock": "10.4.0.0/14",
                               "servicesIpv4CidrBlock": "10.8.0.0/20", "stackType": "IPV4",
                               **(spec.get("ipAllocationPolicy") or {})},
        "masterAuthorizedNetworksConfig": {}, "maintenancePolicy": {"resourceVersion": "e3b0c442"},
        "networkConfig": {"network": f"projects/{pid}/global/networks/{net_name}",
                          "subnetwork": f"projects/{pid}/regions/{region}/subnetworks/{sub_name}",
                          "defaultSnatStatus": {}, "datapathProvider": "LEGACY_DATAPATH"},
        "defaultMaxPodsConstraint": {"maxPodsPerNode": "110"}, "resourceLabels": dict(spec.get("resourceLabels") or {}),
        "releaseChannel": spec.get("releaseChannel") or {"channel": "REGULAR"},
        "selfLink": _link(ctx, path), "zone": location, "endpoint": "", "initialClusterVersion": VERSION,
        "currentMasterVersion": VERSION, "currentNodeVersion": VERSION, "createTime": utc(now),
        "status": "PROVISIONING", "servicesIpv4Cidr": "10.8.0.0/20", "currentNodeCount": 0,
        "location": location, "id": secrets.token_hex(32)[:64], "etag": secrets.token_hex(4),
        "_project": pid, "_key": key, "_cpus": total_cpus, "_legacy": legacy,
    }
    if wi:
        c["workloadIdentityConfig"] = {"workloadPool": wi["workloadPool"]}
    if spec.get("privateClusterConfig"):
        c["privateClusterConfig"] = spec["privateClusterConfig"]
    ctx.data["clusters"][key] = c
    op = new_op(ctx, pid, location, "CREATE_CLUSTER", path, duration, key, error)
    c["_op"] = op["name"]
    ctx.srv.schedule(op["_done_at"], "container.failed" if error else "container.running", key=key)
    if not error:  # its Kubernetes API is prepared meanwhile (in a thread), ready when the cluster is due
        ctx.srv.clusters.prepare(key, c)
    return 200, op_view(op)


def _capacity_error(kind: str, zone: str, cluster: str, region: str) -> dict:
    """A create operation that ends DONE with error code 8 (RESOURCE_EXHAUSTED) and no HTTP error (§5): the
    ``gke_stockout`` scenario. Texts: GCE_STOCKOUT "Try a different location, or try again later: Google Compute
    Engine does not have enough resources available to fulfill request: <zone>." (gcp-api-behaviour.md §5;
    kubeflow/pipelines#673), and a node's quota, code 8 "Instance '<node>' creation failed: Quota 'IN_USE_ADDRESSES'
    exceeded.  Limit: 8.0 in region <region>." (kubernetes-sigs/sig-storage-local-static-provisioner#526)."""
    if kind == "quota":
        node = f"gke-{cluster[:20]}-default-pool-{secrets.token_hex(4)}-{secrets.token_hex(2)}"
        msg = f"Instance '{node}' creation failed: Quota 'IN_USE_ADDRESSES' exceeded.  Limit: 8.0 in region {region}."
    else:
        msg = ("Try a different location, or try again later: Google Compute Engine does not have enough resources "
               f"available to fulfill request: {zone}.")
    return {"code": RPC_CODE["RESOURCE_EXHAUSTED"], "message": msg}


async def create_cluster_legacy(ctx: Ctx, project: str, zone: str):
    return await create_cluster(ctx, project, zone, legacy=True)


async def get_cluster(ctx: Ctx, project: str, location: str, cluster: str) -> dict:
    pid = ctx.project(project)["projectId"]
    ctx.require("container.clusters.get", f"projects/{pid}/locations/{location}/clusters/{cluster}")
    return cluster_view(_get(ctx, pid, location, cluster))


async def get_cluster_legacy(ctx: Ctx, project: str, zone: str, cluster: str) -> dict:
    pid = ctx.project(project)["projectId"]
    return cluster_view(_get(ctx, pid, zone, cluster, legacy=True))


async def list_clusters(ctx: Ctx, project: str, location: str) -> dict:
    pid = ctx.project(project)["projectId"]
    ctx.require("container.clusters.list", f"projects/{pid}")
    if location != "-" and _loc_kind(location) is None:
        raise ApiError("NOT_FOUND", f"Location \"{location}\" does not exist.")
    items = [cluster_view(c) for c in ctx.data["clusters"].values()
             if c["_project"] == pid and (location == "-" or c["location"] == location)]
    return {"clusters": items} if items else {}


async def list_clusters_legacy(ctx: Ctx, project: str, zone: str) -> dict:
    return await list_clusters(ctx, project, zone)


async def delete_cluster(ctx: Ctx, project: str, location: str, cluster: str, legacy: bool = False) -> dict:
    pid = ctx.project(project)["projectId"]
    ctx.require("container.clusters.delete", f"projects/{pid}/locations/{location}/clusters/{cluster}")
    c = _get(ctx, pid, location, cluster, legacy)
    running = _running_op(ctx, c)
    if running is not None:
        raise ApiError("FAILED_PRECONDITION", f"Cluster is running incompatible operation {running['name']}.",
                       details=[{"@type": "type.googleapis.com/google.rpc.RequestInfo",
                                 "requestId": secrets.token_hex(8)}])
    fault = take_op_fault(ctx.srv, "container.delete")
    error = None
    if fault:
        error = {"code": fault.get("code") or RPC_CODE["INTERNAL"],
                 "message": fault.get("message") or "Internal error while deleting the cluster."}
    path = f"projects/{pid}/locations/{location}/clusters/{cluster}"
    op = new_op(ctx, pid, location, "DELETE_CLUSTER", path, ctx.dur("container.delete"), c["_key"], error)
    c["status"] = "STOPPING"
    c["_op"] = op["name"]
    ctx.srv.schedule(op["_done_at"], "container.failed" if error else "container.deleted", key=c["_key"])
    return op_view(op)


async def delete_cluster_legacy(ctx: Ctx, project: str, zone: str, cluster: str) -> dict:
    return await delete_cluster(ctx, project, zone, cluster, legacy=True)


def _busy(ctx: Ctx, c: dict) -> None:
    running = _running_op(ctx, c)
    if running is not None:
        raise ApiError("FAILED_PRECONDITION", f"Cluster is running incompatible operation {running['name']}.")


async def update_cluster(ctx: Ctx, project: str, location: str, cluster: str) -> dict:
    """clusters.update (container.v1: PUT …/clusters/{c}, UpdateClusterRequest.update = ClusterUpdate); modelled:
    ``desiredWorkloadIdentityConfig`` (enable or change the workload pool), an UPDATE_CLUSTER operation during which
    the cluster is RECONCILING."""
    pid = ctx.project(project)["projectId"]
    ctx.require("container.clusters.update", f"projects/{pid}/locations/{location}/clusters/{cluster}")
    c = _get(ctx, pid, location, cluster)
    _busy(ctx, c)
    upd = (ctx.body or {}).get("update") or {}
    wi = upd.get("desiredWorkloadIdentityConfig")
    if wi is None:
        raise ApiError("INVALID_ARGUMENT", "Must specify a field to update.")
    if wi.get("workloadPool") not in ("", None, f"{pid}.svc.id.goog"):
        raise ApiError("INVALID_ARGUMENT", f"Workload Identity pool \"{wi.get('workloadPool')}\" is invalid; the "
                       f"only supported pool for this project is \"{pid}.svc.id.goog\".")
    path = f"projects/{pid}/locations/{location}/clusters/{cluster}"
    op = new_op(ctx, pid, location, "UPDATE_CLUSTER", path, ctx.dur("container.update"), c["_key"], None)
    c["status"] = "RECONCILING"
    ctx.srv.schedule(op["_done_at"], "container.updated", key=c["_key"], workload_pool=wi.get("workloadPool") or "")
    return op_view(op)


def _pool_to_update(ctx: Ctx, project: str, location: str, cluster: str, pool: str) -> tuple[str, dict, dict]:
    """(project id, cluster, node pool) for a node pool change: permission, no other operation, the pool exists."""
    pid = ctx.project(project)["projectId"]
    ctx.require("container.clusters.update", f"projects/{pid}/locations/{location}/clusters/{cluster}")
    c = _get(ctx, pid, location, cluster)
    _busy(ctx, c)
    np_ = next((p for p in c["nodePools"] if p["name"] == pool), None)
    if np_ is None:
        raise ApiError("NOT_FOUND", f"Not found: projects/{pid}/locations/{location}/clusters/{cluster}/nodePools/"
                       f"{pool}.")
    return pid, c, np_


async def update_node_pool(ctx: Ctx, project: str, location: str, cluster: str, pool: str) -> dict:
    """nodePools.update (container.v1: PUT …/nodePools/{np}, UpdateNodePoolRequest); modelled:
    ``workloadMetadataConfig`` (GKE_METADATA only on a cluster with a workload pool, as at create), an
    UPGRADE_NODES operation (the nodes are recreated) during which the cluster is RECONCILING."""
    pid, c, np_ = _pool_to_update(ctx, project, location, cluster, pool)
    mode = ((ctx.body or {}).get("workloadMetadataConfig") or {}).get("mode")
    if mode not in ("GCE_METADATA", "GKE_METADATA"):
        raise ApiError("INVALID_ARGUMENT", "Must specify a field to update.")
    if mode == "GKE_METADATA" and not (c.get("workloadIdentityConfig") or {}).get("workloadPool"):
        raise ApiError("INVALID_ARGUMENT", f"Node pool \"{pool}\": workload metadata mode GKE_METADATA requires "
                       "Workload Identity to be enabled on the cluster.")
    path = f"projects/{pid}/locations/{location}/clusters/{cluster}/nodePools/{pool}"
    op = new_op(ctx, pid, location, "UPGRADE_NODES", path, ctx.dur("container.node_pool_update"), c["_key"], None)
    c["status"] = "RECONCILING"
    ctx.srv.schedule(op["_done_at"], "container.updated", key=c["_key"], pool=pool, mode=mode)
    return op_view(op)


async def set_node_pool_size(ctx: Ctx, project: str, location: str, cluster: str, pool: str) -> dict:
    """nodePools.setSize (container.v1: POST …/nodePools/{np}:setSize, SetNodePoolSizeRequest.nodeCount: "The new
    size will be used for all replicas", i.e. per zone of the pool): a SET_NODE_POOL_SIZE operation during which the
    cluster is RECONCILING; growing checks the quota the new nodes take, as a create does."""
    pid, c, np_ = _pool_to_update(ctx, project, location, cluster, pool)
    count = (ctx.body or {}).get("nodeCount")
    if not isinstance(count, int) or count < 0:
        raise ApiError("INVALID_ARGUMENT", "Invalid value for field \"nodeCount\": must be a non-negative integer.")
    region = location if _loc_kind(location) == "region" else catalog.zone_region(location)
    grow = count - int(np_["initialNodeCount"])
    if grow > 0:
        extra = dict(np_, initialNodeCount=grow)
        cpus = grow * len(np_["locations"]) * catalog.machine_cpus(np_["config"]["machineType"])
        wants = compute._cluster_usage({"_cpus": cpus, "nodePools": [extra], "location": location})
        short = compute.short_of(ctx.data, pid, region, {m: wants[m] for m in ("CPUS", "IN_USE_ADDRESSES",
                                                                                "SSD_TOTAL_GB", "CPUS_ALL_REGIONS")})
        if short is not None:
            raise short
    path = f"projects/{pid}/locations/{location}/clusters/{cluster}/nodePools/{pool}"
    op = new_op(ctx, pid, location, "SET_NODE_POOL_SIZE", path, ctx.dur("container.node_pool_update"), c["_key"],
                None)
    c["status"] = "RECONCILING"
    ctx.srv.schedule(op["_done_at"], "container.resized", key=c["_key"], pool=pool, count=count)
    return op_view(op)


async def _resized(srv, key: str, pool: str, count: int) -> None:
    c = srv.store.data["clusters"].get(key)
    if c is None:
        return
    for p in c["nodePools"]:
        if p["name"] == pool:
            p["initialNodeCount"] = count
    c["_cpus"] = sum(p["initialNodeCount"] * len(p["locations"]) * catalog.machine_cpus(p["config"]["machineType"])
                     for p in c["nodePools"])
    c["currentNodeCount"] = sum(p["initialNodeCount"] * len(p["locations"]) for p in c["nodePools"])
    c["status"] = "RUNNING"
    srv.store.touch()


async def list_node_pools(ctx: Ctx, project: str, location: str, cluster: str) -> dict:
    pid = ctx.project(project)["projectId"]
    c = _get(ctx, pid, location, cluster)
    return {"nodePools": copy.deepcopy(c["nodePools"])}


async def get_node_pool(ctx: Ctx, project: str, location: str, cluster: str, pool: str) -> dict:
    pid = ctx.project(project)["projectId"]
    c = _get(ctx, pid, location, cluster)
    for p in c["nodePools"]:
        if p["name"] == pool:
            return copy.deepcopy(p)
    raise ApiError("NOT_FOUND", f"Not found: projects/{pid}/locations/{location}/clusters/{cluster}/nodePools/{pool}.")


def _find_op(ctx: Ctx, project: str, location: str, op: str) -> dict:
    pid = ctx.project(project)["projectId"]
    rec = ctx.data["container_operations"].get(f"{pid}/{location}/{op}")
    if rec is None:
        raise ApiError("NOT_FOUND", f"Not found: operation {op}.")
    return rec


async def get_op(ctx: Ctx, project: str, location: str, op: str) -> dict:
    return op_view(_find_op(ctx, project, location, op), ctx.now)


async def list_ops(ctx: Ctx, project: str, location: str) -> dict:
    pid = ctx.project(project)["projectId"]
    now = time.time()
    items = [op_view(o, now) for o in ctx.data["container_operations"].values()
             if o["_project"] == pid and (location == "-" or o["location"] == location)]
    return {"operations": items} if items else {}


async def server_config(ctx: Ctx, project: str, location: str) -> dict:
    ctx.project(project)
    return {"defaultClusterVersion": VERSION, "validNodeVersions": [VERSION], "defaultImageType": "COS_CONTAINERD",
            "validImageTypes": ["COS_CONTAINERD", "UBUNTU_CONTAINERD"], "validMasterVersions": [VERSION],
            "channels": [{"channel": c, "defaultVersion": VERSION, "validVersions": [VERSION]}
                         for c in ("RAPID", "REGULAR", "STABLE")]}


# ---------------------------------------------------------------- timeline actions
async def _running(srv, key: str) -> None:
    c = srv.store.data["clusters"].get(key)
    if c is None:
        return
    try:
        if not await srv.clusters.start(key, c, wait=False):  # still being prepared (in a thread): look again soon
            srv.schedule(time.time() + 0.01, "container.running", key=key)
            return
    except Exception:  # noqa: BLE001  keep PROVISIONING and try again shortly
        import logging
        import traceback

        logging.getLogger("sandbox").error("starting the Kubernetes API of %s failed: %s", key,
                                           traceback.format_exc())
        srv.schedule(time.time() + 1.0, "container.running", key=key)
        return
    c["status"] = "RUNNING"
    c["currentNodeCount"] = sum(p["initialNodeCount"] * len(p["locations"]) for p in c["nodePools"])
    for p in c["nodePools"]:
        p["status"] = "RUNNING"
        p["instanceGroupUrls"] = [f"{srv.url}/compute/v1/projects/{c['_project']}/zones/{z}/instanceGroupManagers/"
                                  f"gke-{c['name'][:20]}-{p['name'][:10]}-{secrets.token_hex(4)}-grp"
                                  for z in p["locations"]]
    srv.store.touch()


async def _failed(srv, key: str) -> None:
    c = srv.store.data["clusters"].get(key)
    if c is None:
        return
    op = next((o for o in srv.store.data["container_operations"].values() if o["name"] == c.get("_op")), None)
    c["status"] = "ERROR"
    c["statusMessage"] = (op or {}).get("_error", {}).get("message", "Cluster operation failed.")
    for p in c["nodePools"]:
        p["status"] = "ERROR"
    srv.store.touch()


async def _deleted(srv, key: str) -> None:
    srv.store.data["clusters"].pop(key, None)
    await srv.clusters.stop(key)
    await srv.clusters.forget(key)  # a cluster created again under this name starts empty, as on GKE
    srv.store.touch()


async def _reconciling(srv, key: str) -> None:
    """An upgrade or repair of the control plane (Cluster.status RECONCILING, container.v1 discovery): a zonal
    cluster's API server does not answer until it is done ("Zonal clusters have a single control plane ... During
    the upgrade, the cluster's API is unavailable",
    https://cloud.google.com/kubernetes-engine/docs/concepts/cluster-upgrades). Scenario cluster_reconciling."""
    c = srv.store.data["clusters"].get(key)
    if c is None:
        return
    c["status"] = "RECONCILING"
    await srv.clusters.stop(key)
    srv.store.touch()


async def _updated(srv, key: str, workload_pool: str | None = None, pool: str | None = None,
                   mode: str | None = None) -> None:
    c = srv.store.data["clusters"].get(key)
    if c is None:
        return
    if workload_pool is not None:
        if workload_pool:
            c["workloadIdentityConfig"] = {"workloadPool": workload_pool}
        else:
            c.pop("workloadIdentityConfig", None)
    if pool is not None:
        for p in c["nodePools"]:
            if p["name"] == pool:
                p["config"]["workloadMetadataConfig"] = {"mode": mode}
    c["status"] = "RUNNING"
    srv.store.touch()


ACTIONS = {"container.running": _running, "container.failed": _failed, "container.deleted": _deleted,
           "container.reconciling": _reconciling, "container.updated": _updated, "container.resized": _resized}


def register(r: Router) -> None:
    a = "container"
    base = "/v1/projects/{project}/locations/{location}"
    r.add("POST", base + "/clusters", create_cluster, a)
    r.add("GET", base + "/clusters", list_clusters, a)
    r.add("GET", base + "/clusters/{cluster}", get_cluster, a)
    r.add("DELETE", base + "/clusters/{cluster}", delete_cluster, a)
    r.add("PUT", base + "/clusters/{cluster}", update_cluster, a)
    r.add("PUT", base + "/clusters/{cluster}/nodePools/{pool}", update_node_pool, a)
    r.add("POST", base + "/clusters/{cluster}/nodePools/{pool}:setSize", set_node_pool_size, a)
    r.add("GET", base + "/clusters/{cluster}/nodePools", list_node_pools, a)
    r.add("GET", base + "/clusters/{cluster}/nodePools/{pool}", get_node_pool, a)
    r.add("GET", base + "/operations", list_ops, a)
    r.add("GET", base + "/operations/{op}", get_op, a)
    r.add("GET", base + "/serverConfig", server_config, a)
    zb = "/v1/projects/{project}/zones/{zone}"
    r.add("POST", zb + "/clusters", create_cluster_legacy, a)
    r.add("GET", zb + "/clusters", list_clusters_legacy, a)
    r.add("GET", zb + "/clusters/{cluster}", get_cluster_legacy, a)
    r.add("DELETE", zb + "/clusters/{cluster}", delete_cluster_legacy, a)
    r.add("GET", zb + "/operations/{op}", lambda ctx, project, zone, op: get_op(ctx, project, zone, op), a)
    r.add("GET", zb + "/serverconfig", lambda ctx, project, zone: server_config(ctx, project, zone), a)


_ = numeric_id
