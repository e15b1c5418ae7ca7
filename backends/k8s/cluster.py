"""Connect to the journal's GKE cluster, and to no other.

The cluster step records what it made (its ``endpoint``); ``connect`` reads the live cluster with Container API
``clusters.get`` (endpoint, ``masterAuth.clusterCaCertificate``) and refuses to go on when the live endpoint is not
the one the journal holds (another cluster under the same name, a recreated cluster, a wrong project). One
``KubeClient`` per cluster is kept in ``ctx.runtime`` for the run (in memory only).
"""
from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any

from installer.errors import ErrorClass, InstallerError

from backends.infra.gke import ClusterOutputs

from .client import KubeClient

_RUNTIME_KEY = "_k8s_clients"


@dataclass(frozen=True)
class ClusterInfo:
    project: str
    location: str
    name: str
    endpoint: str
    ca_b64: str
    status: str = "RUNNING"

    @property
    def ca_pem(self) -> bytes:
        return base64.b64decode(self.ca_b64)


def recorded_cluster(ctx) -> dict[str, Any]:
    """What the journal says about the cluster: name, location, endpoint (from the cluster step's outputs)."""
    out = ClusterOutputs.of(ctx.outputs_of("cluster"))
    return {
        "name": out.cluster or ctx.names.cluster,
        "location": out.location or ctx.answers.location,
        "endpoint": out.endpoint,
    }


async def cluster_info(project: str, location: str, name: str) -> ClusterInfo:
    """The live cluster's endpoint and CA (Container API ``clusters.get``, through ``backends.gcp``)."""
    from backends.gcp.calls import call

    c = await call("container", lambda s: s.projects().locations().clusters().get(
        name=f"projects/{project}/locations/{location}/clusters/{name}"), what=f"cluster {name}", project=project)
    return ClusterInfo(project, location, name, c.get("endpoint", ""),
                       (c.get("masterAuth") or {}).get("clusterCaCertificate", ""), c.get("status") or "")


# Cluster.status RECONCILING (container.v1 discovery: "Some work is actively being done on the cluster, such as
# upgrading the master or node software"): a zonal cluster's API server is away during a control-plane upgrade
# (https://cloud.google.com/kubernetes-engine/docs/concepts/cluster-upgrades). Upgrades take minutes; wait for it,
# bounded, rather than let Kubernetes calls fail as unreachable.
RECONCILING_TIMEOUT = 30 * 60.0


async def wait_until_settled(ctx, rec: dict) -> ClusterInfo:
    """The live cluster once it is not RECONCILING (or PROVISIONING), shown as a wait meanwhile."""
    import time

    from .client import time_scale

    info = await cluster_info(ctx.answers.project, rec["location"], rec["name"])
    if info.status not in ("RECONCILING", "PROVISIONING"):
        return info
    since = time.time()
    deadline = time.monotonic() + max(RECONCILING_TIMEOUT * time_scale(), 2.0)
    ctx.waiting(f"cluster {rec['name']} is {info.status} (an upgrade or repair); its API server answers again "
                "when that is done", since=since, expected_seconds=300)
    while info.status in ("RECONCILING", "PROVISIONING"):
        if time.monotonic() > deadline:
            raise InstallerError(f"Cluster {rec['name']} has been {info.status} for {time.time() - since:.0f}s",
                                 error_class=ErrorClass.TIMEOUT,
                                 remedy=f"See `gcloud container operations list --location {rec['location']}`; run "
                                        "the installer again once the cluster is RUNNING.")
        await asyncio.sleep(max(10.0 * time_scale(), 0.05))
        info = await cluster_info(ctx.answers.project, rec["location"], rec["name"])
    ctx.log(f"cluster {rec['name']} is {info.status} again after {time.time() - since:.0f}s")
    return info


async def connect(ctx) -> KubeClient:
    rec = recorded_cluster(ctx)
    if not rec["endpoint"]:
        raise InstallerError(
            f"The journal holds no endpoint for cluster {rec['name']}; the Kubernetes steps deploy only into the "
            "cluster this installer recorded.", error_class=ErrorClass.CONFLICT,
            remedy="Run the installer again so the cluster step records the cluster (it adopts an existing one).")
    cache: dict = ctx.runtime.setdefault(_RUNTIME_KEY, {})
    key = (ctx.answers.project, rec["location"], rec["name"], rec["endpoint"])
    if key in cache:
        return cache[key]
    locks = ctx.runtime.setdefault("_k8s_connect_locks", {})
    lock = locks.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())
    async with lock:  # steps starting together share one client (one clusters.get)
        if key in cache:
            return cache[key]
        return await _connect(ctx, rec, key, cache)


async def _connect(ctx, rec: dict, key: tuple, cache: dict) -> KubeClient:
    info = await wait_until_settled(ctx, rec)
    if info.endpoint != rec["endpoint"]:
        raise InstallerError(
            f"Refusing to deploy: cluster {rec['name']} in {rec['location']} answers at {info.endpoint or 'no endpoint'}, "
            f"but the journal recorded {rec['endpoint']}. This is not the cluster this installer made or adopted.",
            error_class=ErrorClass.CONFLICT,
            remedy="Check the project and prefix in the answers file; if the cluster was recreated on purpose, "
                   "run the installer again so the cluster step records the new one.")
    if not info.ca_b64:
        raise InstallerError(f"Cluster {rec['name']} has no CA certificate yet", error_class=ErrorClass.TRANSIENT,
                             remedy="Run the installer again in a minute.")
    # building the client imports the kubernetes package (~0.3 s the first time): off the event loop
    client = await asyncio.to_thread(KubeClient, info.endpoint, info.ca_pem, cluster=info.name)
    cache[key] = client
    ctx.runtime.setdefault("_k8s_cluster_info", {})[key] = info
    return client


def connected_info(ctx) -> ClusterInfo | None:
    rec = recorded_cluster(ctx)
    key = (ctx.answers.project, rec["location"], rec["name"], rec["endpoint"])
    return ctx.runtime.get("_k8s_cluster_info", {}).get(key)
