"""How big the cluster an answers file asks for is: nodes, vCPUs, boot disk and addresses, in all zones; the
default node count; the Compute quota it takes and, when it does not fit, the choices that would. One rule, used by
the answers' default, the preflight's quota check, ``plan``, the cluster step's body and the wizard. Light: no
client imports."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # answers.py imports this module for its default node count
    from .answers import Answers

# container.v1 NodeConfig.diskSizeGb: "If unspecified, the default disk size is 100GB." The cluster step sends both
# size and type explicitly (NodeConfig.diskType's own default is documented as pd-standard, GKE's docs say
# pd-balanced since 1.24: sending it removes the doubt about which quota it takes).
BOOT_DISK_GB = 100
BOOT_DISK_TYPE = "pd-balanced"
# A regional cluster's node pools are replicated in three zones of the region by default
# (https://cloud.google.com/kubernetes-engine/docs/concepts/regional-clusters).
REGIONAL_ZONES = 3
# Nodes per zone when the answers give none: a regional cluster gets 1 per zone (3 in all, 12 vCPU of e2-standard-4,
# which fits a new project's regional CPUS quota of 24), a zonal one 3.
DEFAULT_NODES_PER_ZONE = {"regional": 1, "zonal": 3}

# Compute quota metrics (https://cloud.google.com/compute/resource-usage; Compute v1 Region.quotas[] and
# Project.quotas[], metric names from the compute.v1 discovery document's Quota.metric enum):
# - CPUS: regional vCPUs of the E2, N1 (and shared-core) families; other families have their own metric
#   (N2_CPUS, N2D_CPUS, C2_CPUS, ...); CPUS_ALL_REGIONS: every family's vCPUs in all regions together.
# - IN_USE_ADDRESSES: regional external IPv4 addresses in use; a GKE node of a public cluster has one.
# - SSD_TOTAL_GB: regional SSD and balanced persistent disk GB (pd-balanced counts against it; pd-standard against
#   DISKS_TOTAL_GB).
REGIONAL_METRICS = ("CPUS", "IN_USE_ADDRESSES", "SSD_TOTAL_GB")
PROJECT_METRICS = ("CPUS_ALL_REGIONS",)
_FAMILY_CPU_METRIC = {"n2": "N2_CPUS", "n2d": "N2D_CPUS", "c2": "C2_CPUS", "c2d": "C2D_CPUS", "c3": "C3_CPUS",
                      "m1": "M1_CPUS", "a2": "A2_CPUS", "t2d": "T2D_CPUS", "n4": "N4_CPUS"}
# Smaller machines offered when the CPUs do not fit (vCPUs from the name, see machine_vcpus).
SMALLER_MACHINES = ("e2-standard-8", "e2-standard-4", "e2-standard-2")


def default_nodes_per_zone(zone: str | None) -> int:
    """The node count (per zone) an answers file without ``cluster.node_count`` gets."""
    return DEFAULT_NODES_PER_ZONE["zonal" if zone else "regional"]


def machine_vcpus(machine_type: str) -> float:
    """vCPUs of a predefined machine type, from its name (``e2-standard-4`` -> 4; the shared-core e2-micro/small/
    medium count 2 against the CPUS quota). Unknown shapes count 1."""
    tail = machine_type.rsplit("-", 1)[-1]
    if tail.isdigit():
        return float(tail)
    return {"micro": 2.0, "small": 2.0, "medium": 2.0}.get(tail, 1.0)


def cpu_metric(machine_type: str) -> str:
    """The regional CPU quota metric a machine type's vCPUs count against."""
    return _FAMILY_CPU_METRIC.get(machine_type.split("-", 1)[0], "CPUS")


@dataclass(frozen=True)
class ClusterSize:
    zones: int
    nodes_per_zone: int
    vcpus_per_node: float
    machine_type: str = ""

    @property
    def nodes(self) -> int:
        return self.zones * self.nodes_per_zone

    @property
    def vcpus(self) -> float:
        return self.nodes * self.vcpus_per_node

    @property
    def boot_disk_gb(self) -> int:
        return self.nodes * BOOT_DISK_GB

    @property
    def addresses(self) -> int:
        return self.nodes

    def describe(self) -> str:
        where = f"{self.nodes_per_zone} per zone in {self.zones} zones" if self.zones > 1 else "1 zone"
        return f"{self.nodes} node{'s' if self.nodes != 1 else ''} ({where}), {self.vcpus:g} vCPU, " \
               f"{self.boot_disk_gb} GB boot disk"

    def quota(self) -> dict[str, float]:
        """What this many nodes take of each Compute quota metric (regional ones and CPUS_ALL_REGIONS)."""
        return {cpu_metric(self.machine_type): self.vcpus, "IN_USE_ADDRESSES": float(self.addresses),
                "SSD_TOTAL_GB": float(self.boot_disk_gb), "CPUS_ALL_REGIONS": self.vcpus}

    def quota_to_grow_from(self, existing: "ClusterSize | None") -> dict[str, float]:
        """What a run that makes (``existing`` None) or resizes to this size takes on top of what exists."""
        want = self.quota()
        if existing is None:
            return want
        have = existing.quota()
        return {m: max(0.0, v - have.get(m, 0.0)) for m, v in want.items() if v - have.get(m, 0.0) > 0}


def cluster_size(answers: "Answers", vcpus_per_node: float | None = None) -> ClusterSize:
    """``vcpus_per_node``: the machine type's ``guestCpus`` when known (Compute machineTypes.get), else the name's."""
    mt = answers.cluster.machine_type
    nodes = answers.cluster.node_count or default_nodes_per_zone(answers.zone)
    return ClusterSize(1 if answers.zone else REGIONAL_ZONES, nodes, vcpus_per_node or machine_vcpus(mt), mt)


def size_of_cluster(cluster: dict) -> ClusterSize:
    """The size of a live cluster (container.v1 Cluster: nodePools[].initialNodeCount per zone, locations,
    config.machineType), for what it already takes of the quota."""
    pools = cluster.get("nodePools") or []
    zones = len(cluster.get("locations") or []) or 1
    per_zone = sum(int(p.get("initialNodeCount") or 0) for p in pools)
    mt = next(((p.get("config") or {}).get("machineType") for p in pools), "") or ""
    return ClusterSize(zones, per_zone, machine_vcpus(mt) if mt else 0.0, mt)


def fitting_choices(answers: "Answers", free: dict[str, float], vcpus_per_node: float | None = None) -> list[str]:
    """The changes of the answers that make a new cluster fit ``free`` (metric -> free amount; metrics without data
    are left out): fewer nodes, a zonal cluster, a smaller machine."""
    size = cluster_size(answers, vcpus_per_node)

    def fits(s: ClusterSize) -> bool:
        return all(need <= free[m] for m, need in s.quota().items() if m in free)

    out: list[str] = []
    for n in range(size.nodes_per_zone - 1, 0, -1):
        s = ClusterSize(size.zones, n, size.vcpus_per_node, size.machine_type)
        if fits(s):
            out.append(f"fewer nodes: cluster.node_count: {n} ({s.describe()})")
            break
    if size.zones > 1:
        for n in range(size.nodes, 0, -1):  # up to as many nodes as the regional one, in one zone
            s = ClusterSize(1, n, size.vcpus_per_node, size.machine_type)
            if fits(s):
                out.append(f"a zonal cluster: zone: {answers.region}-<a|b|c...>, cluster.node_count: {n} "
                           f"({s.describe()})")
                break
    for mt in SMALLER_MACHINES:
        if machine_vcpus(mt) < size.vcpus_per_node:
            s = ClusterSize(size.zones, size.nodes_per_zone, machine_vcpus(mt), mt)
            if fits(s):
                out.append(f"a smaller machine: cluster.machine_type: {mt} ({s.describe()})")
                break
    return out
