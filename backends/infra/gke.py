"""The ``cluster`` step: the GKE cluster (regional or zonal), its node pool for the credentials mode, in-place updates
(node count, Workload Identity, metadata mode) with consent, and a recreate after a failed create.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from installer.answers import Answers
from installer.errors import ErrorClass, InstallerError
from installer.sizing import BOOT_DISK_GB, BOOT_DISK_TYPE, size_of_cluster
from installer.steps import Observation, StepContext

from backends.gcp import operations
from backends.gcp.calls import call
from backends.gcp.errors import ApiError, sa_not_visible

from .changes import Change, require_consent, way_out
from .common import (InfraStep, Outputs, conflict, create_and_wait, is_ours, labels, not_found, poll_until,
                     read_or_none, tail, unless_op_running, wait_recorded_create)


def node_metadata_mode(a: Answers) -> str:
    """The node pools' workload metadata mode for the credentials mode.

    Workload Identity: ``GKE_METADATA`` (pods get the Google SA their KSA is bound to). Key mode: ``GCE_METADATA``
    and no workload pool. In env/gcp of KFP 2.14.4 only the pipeline pods mount ``user-gcp-sa``; the Cloud SQL proxy,
    the MinIO GCS gateway and the UI use the node's identity, which the GKE metadata server hides ("Workload
    Identity Federation for GKE ... Pods can't use the node's service account",
    https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity#metadata_server). See
    docs/credentials.md for why key mode keeps the node identity rather than binding those KSAs."""
    return "GKE_METADATA" if a.credentials == "workload-identity" else "GCE_METADATA"


def _metadata_mode(pool: dict) -> str:
    # A pool without workloadMetadataConfig on a cluster without a workload pool exposes the node's metadata
    # (GCE_METADATA); a cluster with Workload Identity defaults new pools to GKE_METADATA (GKE docs above).
    return ((pool.get("config") or {}).get("workloadMetadataConfig") or {}).get("mode") or "GCE_METADATA"


def placement(a: Answers) -> dict:
    """Where and how big a cluster create was: what a retry after a capacity or quota failure must change."""
    return {"location": a.location, "machine_type": a.cluster.machine_type, "node_count": a.cluster.node_count}


def metadata_fix(a: Answers, c: dict) -> dict | None:
    """What a live cluster lacks for the credentials mode: ``{"workload_pool": bool, "pools": {pool: mode},
    "why": text, "remedy": gcloud commands}``, or None when it fits. Enabling Workload Identity on an existing
    cluster and changing a pool's metadata mode are in-place updates
    (https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity#enable_on_clusters_and_node_pools:
    `gcloud container clusters update --workload-pool`, `gcloud container node-pools update --workload-metadata`)."""
    name, want = a.names.cluster, node_metadata_mode(a)
    need_pool = a.credentials == "workload-identity" and not (c.get("workloadIdentityConfig") or {}).get(
        "workloadPool")
    wrong = {p.get("name"): _metadata_mode(p) for p in c.get("nodePools") or [] if _metadata_mode(p) != want}
    if not need_pool and not wrong:
        return None
    bits, cmds = [], []
    if need_pool:
        bits.append("has no Workload Identity pool")
        cmds.append(f"`gcloud container clusters update {name} --location {a.location} "
                    f"--workload-pool={a.names.workload_pool}`")
    if wrong:
        why = ("in key mode the Cloud SQL proxy and the MinIO GCS gateway run as the node's service account, which "
               "the GKE metadata server hides from pods" if want == "GCE_METADATA" else
               "Workload Identity needs the GKE metadata server on every node")
        bits.append("node pool(s) " + ", ".join(f"{p} ({m})" for p, m in wrong.items())
                    + f" must use workload metadata {want} ({why})")
        cmds += [f"`gcloud container node-pools update {p} --cluster {name} --location {a.location} "
                 f"--workload-metadata={want}`" for p in wrong]
    other = "workload-identity" if want == "GCE_METADATA" else "key"
    return {"workload_pool": need_pool, "pools": {p: want for p in wrong}, "why": "; ".join(bits),
            "remedy": "; then ".join(cmds) + f"; or use credentials: {other}."}


def cluster_body(a: Answers) -> dict:
    n = a.names
    cluster: dict[str, Any] = {
        "name": n.cluster,
        "network": n.network,
        "subnetwork": n.subnet,
        "ipAllocationPolicy": {"useIpAliases": True},  # VPC-native; GKE makes the secondary ranges
        "releaseChannel": {"channel": a.cluster.release_channel},
        "resourceLabels": labels(a),
        "nodePools": [{
            "name": "default-pool",
            "initialNodeCount": a.cluster.node_count,
            "config": {
                "machineType": a.cluster.machine_type,
                # explicit, so the quota they take is known (installer.sizing: SSD_TOTAL_GB for pd-balanced)
                "diskSizeGb": BOOT_DISK_GB,
                "diskType": BOOT_DISK_TYPE,
                "serviceAccount": n.gke_sa_email,
                "oauthScopes": ["https://www.googleapis.com/auth/cloud-platform"],
                # container.v1 NodeConfig.workloadMetadataConfig (discovery: mode GCE_METADATA | GKE_METADATA)
                "workloadMetadataConfig": {"mode": node_metadata_mode(a)},
                "labels": labels(a),
            },
        }],
    }
    if a.credentials == "workload-identity":
        cluster["workloadIdentityConfig"] = {"workloadPool": n.workload_pool}
    return {"cluster": cluster}


@dataclass(frozen=True)
class ClusterOutputs(Outputs):
    """What the ``cluster`` step records: Kubernetes access (``backends.k8s.cluster``) reads
    ``ClusterOutputs.of(ctx.outputs_of("cluster"))``."""
    cluster: str = ""  # the name
    location: str = ""
    endpoint: str = ""
    ca_certificate: str = ""
    self_link: str = ""


def cluster_outputs(c: dict, location: str) -> dict:
    return ClusterOutputs(cluster=c.get("name"), location=location, endpoint=c.get("endpoint", ""),
                          ca_certificate=(c.get("masterAuth") or {}).get("clusterCaCertificate", ""),
                          self_link=c.get("selfLink", "")).to_dict()


def cluster_changes(a: Answers, c: dict) -> list[Change]:
    """What differs between the answers and our live cluster: the node count per zone (container.v1
    nodePools.setSize: "The new size will be used for all replicas"), in place; the machine type, not (a node
    pool's machine type is fixed at its creation: changing it means a new node pool,
    https://cloud.google.com/kubernetes-engine/docs/how-to/node-pools#upgrading_to_a_new_machine_type)."""
    what = f"cluster {a.names.cluster}"
    size = size_of_cluster(c)
    out = []
    if size.machine_type and size.machine_type != a.cluster.machine_type:
        out.append(Change(what, "cluster.machine_type", size.machine_type, a.cluster.machine_type, False))
    pools = c.get("nodePools") or []
    if len(pools) == 1 and size.nodes_per_zone != a.cluster.node_count:
        out.append(Change(what, "cluster.node_count", size.nodes_per_zone, a.cluster.node_count, True,
                          f"node pool {pools[0].get('name')} resized to {a.cluster.node_count} per zone"))
    return out


async def cluster_elsewhere(a: Answers) -> Change | None:
    """Our cluster of this name in another location (the region or zone changed): it cannot move."""
    resp = await call("container", lambda s: s.projects().locations().clusters().list(
        parent=f"projects/{a.project}/locations/-"), project=a.project, what="clusters")
    for c in resp.get("clusters") or []:
        if c.get("name") == a.names.cluster and c.get("location") != a.location and \
                is_ours(a, c.get("resourceLabels")):
            zonal = a.zone or c["location"].count("-") == 2  # us-central1-a
            return Change(f"cluster {a.names.cluster}", "zone" if zonal else "region", c["location"], a.location,
                          False)
    return None


def cluster_path(a: Answers) -> str:
    return f"projects/{a.project}/locations/{a.location}/clusters/{a.names.cluster}"


async def get_cluster(a: Answers) -> dict | None:
    return await read_or_none("container", lambda s: s.projects().locations().clusters().get(name=cluster_path(a)),
                              what=f"cluster {a.names.cluster}", project=a.project)


class ClusterStep(InfraStep):
    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        a, name = answers, answers.names.cluster
        c = await get_cluster(a)
        if c is None:
            return not_found(f"cluster {name}", bool(a.cluster.existing), "cluster.existing",
                             "Check cluster.existing and the zone/region, or remove it to create a new cluster.",
                             f" in {a.location}")
        ours = is_ours(a, c.get("resourceLabels"))
        adopt = a.cluster.existing == name
        status = c.get("status")
        out = cluster_outputs(c, a.location)
        if not ours and not adopt:
            if tail(c.get("network")) != a.names.network or tail(c.get("subnetwork")) != a.names.subnet:
                return conflict(f"cluster {name} exists in {a.location}, was not made by mlops-install and is on "
                                f"network {tail(c.get('network'))}",
                                f"Set cluster.existing: {name} to adopt it, or choose another name prefix.")
        changes = cluster_changes(a, c) if ours and status not in ("ERROR", "STOPPING") else []
        refused = [ch for ch in changes if not ch.in_place]
        if refused:
            return Observation("conflict", "; ".join(f"{ch} cannot change in place" for ch in refused),
                               {"changes": [ch.to_dict() for ch in changes]}, remedy=way_out(a))
        fix = metadata_fix(a, c)
        if (fix or changes) and status != "PROVISIONING":
            if ours and status in ("RUNNING", "RECONCILING", "DEGRADED"):
                # ours, made for the other credentials mode: switched in place (GKE supports both changes); a new
                # node count: the node pool is resized
                why = "; ".join(([fix["why"]] if fix else []) + [str(ch) for ch in changes])
                return Observation("drifted", f"cluster {name}: {why}; it will be updated in place",
                                   {**out, "changes": [ch.to_dict() for ch in changes]})
            if fix and not ours:
                return conflict(f"cluster {name}: {fix['why']}", fix["remedy"])
        if status in ("PROVISIONING",):
            return Observation("pending", f"cluster {name} is being created", out, adopted=not ours)
        if status == "STOPPING":
            return conflict(f"cluster {name} is being deleted", "Wait until it is gone, then run again.")
        if status == "ERROR":
            if ours:
                return Observation("drifted", f"cluster {name} is in ERROR state ({c.get('statusMessage', '')}); "
                                   "it will be recreated", out)
            return conflict(f"cluster {name} is in ERROR state", "Repair or delete it, then run again.")
        return Observation("ready", f"cluster {name} is {status}", out, adopted=not ours)

    async def look(self, ctx: StepContext) -> Observation:
        obs = await unless_op_running(ctx, await self.inspect(ctx.answers), "cluster",
                                      statuses=("absent", "drifted"))
        if obs.status == "drifted" and "ERROR state" in obs.detail:
            failed = await operations.recorded_failure(ctx.outputs.get("operation"), what=f"cluster {ctx.names.cluster}")
            if failed is not None and failed.error_class == ErrorClass.QUOTA:
                # code 8 (quota, stockout): never recreated without saying where, and what to change if it fails
                # again (a stockout can clear within minutes; a quota may have been raised meanwhile)
                p = placement(ctx.answers)
                same = ctx.outputs.get("placed") in (None, p)
                ctx.log(f"the earlier create of cluster {ctx.names.cluster} failed: {failed.message}. "
                        + (f"Recreating it in the same place ({p['location']}, {p['node_count']} x "
                           f"{p['machine_type']}); if it fails again: {failed.remedy}" if same else
                           f"Recreating it as {p['node_count']} x {p['machine_type']} in {p['location']}"), "warning")
                obs.detail += f"; the earlier create failed ({failed.message})" + (
                    " and is retried in the same place" if same else "")
        return obs

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        a, name = ctx.answers, ctx.names.cluster
        what = f"cluster {name}"
        expected = ctx.spec.expected_seconds
        live = await get_cluster(a) if observed.status == "drifted" else None
        fix = metadata_fix(a, live) if live is not None and live.get("status") != "ERROR" else None
        changes = cluster_changes(a, live) if live is not None and live.get("status") != "ERROR" else []
        if fix or changes:
            require_consent(ctx, changes)
            if fix:
                await self._switch_mode(ctx, fix)
            if changes:
                await self._resize(ctx, live)
            c = await get_cluster(a)
            return cluster_outputs(c or {}, a.location)
        if observed.status == "drifted":
            ctx.log(f"{what} is in ERROR state from an earlier attempt; deleting it to create it again", "warning")
            op = await call("container", lambda s: s.projects().locations().clusters().delete(name=cluster_path(a)),
                            what=what, project=a.project)
            ref = operations.op_ref("container", op, a.project)
            await ctx.remember(delete_operation=ref)
            await operations.wait(ref, ctx=ctx, what=f"deleting {what}", initial=op, expected_seconds=180)
            observed = Observation("absent")
        if observed.status == "pending":
            await wait_recorded_create(ctx, what, self._wait_status)
        else:
            def retry(err: ApiError) -> bool:  # the node service account inside its invisibility window
                return sa_not_visible(err) or (err.http == 400 and "failed to check status" in err.message.lower())
            # remembered before waiting: a resumed run waits on the same operation, and knows where it tried
            if not await create_and_wait(ctx, "container", lambda s: s.projects().locations().clusters().create(
                    parent=f"projects/{a.project}/locations/{a.location}", body=cluster_body(a)),
                    what=what, region=a.region, scope=a.location, retry_if=retry, expected_seconds=expected,
                    placed=placement(a)):
                await self._wait_status(ctx)
        c = await get_cluster(a)
        if c is None or c.get("status") not in ("RUNNING", "RECONCILING"):
            raise InstallerError(f"{what} is {c.get('status') if c else 'missing'} after its creation: "
                                 f"{(c or {}).get('statusMessage', '')}", error_class=ErrorClass.UNEXPECTED,
                                 remedy="Run the installer again: it recreates a cluster that failed.")
        return cluster_outputs(c, a.location)

    async def _switch_mode(self, ctx: StepContext, fix: dict) -> None:
        """Update our cluster in place for the credentials mode: the workload pool, then each pool's metadata mode
        (the nodes are recreated: minutes)."""
        a, name = ctx.answers, ctx.names.cluster
        ctx.log(f"cluster {name}: {fix['why']}; updating it for credentials: {a.credentials}", "warning")
        await self._settled(ctx)
        if fix["workload_pool"]:
            op = await call("container", lambda s: s.projects().locations().clusters().update(
                name=cluster_path(a), body={"update": {"desiredWorkloadIdentityConfig": {
                    "workloadPool": a.names.workload_pool}}}), what=f"cluster {name}", project=a.project)
            await operations.wait(operations.op_ref("container", op, a.project), ctx=ctx,
                                  what=f"enabling Workload Identity on {name}", initial=op, expected_seconds=120)
            await self._settled(ctx)
        for pool, mode in fix["pools"].items():
            op = await call("container", lambda s, p=pool, m=mode: s.projects().locations().clusters().nodePools()
                            .update(name=f"{cluster_path(a)}/nodePools/{p}", body={"workloadMetadataConfig": {"mode": m}}),
                            what=f"node pool {pool}", project=a.project)
            await operations.wait(operations.op_ref("container", op, a.project), ctx=ctx,
                                  what=f"node pool {pool} to {mode} (its nodes are recreated)", initial=op,
                                  expected_seconds=300)

    async def _resize(self, ctx: StepContext, live: dict) -> None:
        """Set our node pool's size to the answers' node count per zone (container.v1 nodePools.setSize)."""
        a, name = ctx.answers, ctx.names.cluster
        pool = (live.get("nodePools") or [{}])[0].get("name", "default-pool")
        await self._settled(ctx)
        ctx.log(f"cluster {name}: resizing node pool {pool} to {a.cluster.node_count} node(s) per zone")
        op = await call("container", lambda s: s.projects().locations().clusters().nodePools().setSize(
            name=f"{cluster_path(a)}/nodePools/{pool}", body={"nodeCount": a.cluster.node_count}),
            what=f"node pool {pool}", project=a.project, region=a.region)
        await operations.wait(operations.op_ref("container", op, a.project), ctx=ctx,
                              what=f"resizing node pool {pool} of {name}", initial=op, expected_seconds=300)
        await self._settled(ctx)

    async def _settled(self, ctx: StepContext) -> None:
        a = ctx.answers

        async def settled() -> bool:  # one operation at a time on a cluster (else 400 "incompatible operation")
            c = await get_cluster(a)
            return c is not None and c.get("status") not in ("RECONCILING", "PROVISIONING")
        await poll_until(settled, what=f"waiting for cluster {a.names.cluster} to settle", timeout=60 * 60, ctx=ctx)

    async def _wait_status(self, ctx: StepContext) -> None:
        a = ctx.answers

        async def settled() -> bool:
            c = await get_cluster(a)
            return c is not None and c.get("status") not in ("PROVISIONING",)
        await poll_until(settled, what=f"waiting for cluster {a.names.cluster}", timeout=90 * 60, ctx=ctx)

    async def verify(self, ctx: StepContext) -> None:
        c = await get_cluster(ctx.answers)
        if not c or c.get("status") not in ("RUNNING", "RECONCILING"):
            raise InstallerError(f"cluster {ctx.names.cluster} is not running", error_class=ErrorClass.UNEXPECTED,
                                 remedy="Run the installer again.")

    async def destroy(self, ctx: StepContext) -> None:
        a = ctx.answers
        c = await get_cluster(a)
        if c is None or not is_ours(a, c.get("resourceLabels")):
            return
        # One operation at a time on a cluster ("Cluster is running incompatible operation", gcp-api-behaviour.md
        # §5; terraform waits for a resting state before deleting): a deletion already under way (an interrupted
        # destroy) is waited for, not sent again; a create, update or repair is let finish first.
        if c.get("status") in ("STOPPING", "PROVISIONING", "RECONCILING"):
            stopping = c.get("status") == "STOPPING"

            async def settled() -> bool:
                cur = await get_cluster(a)
                return cur is None or (not stopping and cur.get("status") not in ("PROVISIONING", "RECONCILING"))
            await poll_until(settled, what=f"waiting for cluster {a.names.cluster} "
                             + ("to be deleted (a deletion already under way)" if stopping else "to settle"),
                             timeout=60 * 60, ctx=ctx)
            if stopping or await get_cluster(a) is None:
                return
        op = await call("container", lambda s: s.projects().locations().clusters().delete(name=cluster_path(a)),
                        what=f"cluster {a.names.cluster}", project=a.project)
        await operations.wait(operations.op_ref("container", op, a.project), ctx=ctx,
                              what=f"deleting cluster {a.names.cluster}", initial=op, expected_seconds=180)
