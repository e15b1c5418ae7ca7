"""How big the cluster an answers file asks for is: nodes, vCPUs and boot disk, in all zones. One rule, used by the
preflight's quota check, ``plan`` and the wizard. Light: no client imports."""
from __future__ import annotations

from dataclasses import dataclass

from .answers import Answers

# container.v1 NodeConfig.diskSizeGb: "If unspecified, the default disk size is 100GB."
BOOT_DISK_GB = 100
# A regional cluster's node pools are replicated in three zones of the region by default
# (https://cloud.google.com/kubernetes-engine/docs/concepts/regional-clusters).
REGIONAL_ZONES = 3


def machine_vcpus(machine_type: str) -> float:
    """vCPUs of a predefined machine type, from its name (``e2-standard-4`` -> 4; the shared-core e2-micro/small/
    medium count 2 against the CPUS quota). Unknown shapes count 1."""
    tail = machine_type.rsplit("-", 1)[-1]
    if tail.isdigit():
        return float(tail)
    return {"micro": 2.0, "small": 2.0, "medium": 2.0}.get(tail, 1.0)


@dataclass(frozen=True)
class ClusterSize:
    zones: int
    nodes_per_zone: int
    vcpus_per_node: float

    @property
    def nodes(self) -> int:
        return self.zones * self.nodes_per_zone

    @property
    def vcpus(self) -> float:
        return self.nodes * self.vcpus_per_node

    @property
    def boot_disk_gb(self) -> int:
        return self.nodes * BOOT_DISK_GB

    def describe(self) -> str:
        where = f"{self.nodes_per_zone} per zone in {self.zones} zones" if self.zones > 1 else "1 zone"
        return f"{self.nodes} nodes ({where}), {self.vcpus:g} vCPU, {self.boot_disk_gb} GB boot disk"


def cluster_size(answers: Answers, vcpus_per_node: float | None = None) -> ClusterSize:
    """``vcpus_per_node``: the machine type's ``guestCpus`` when known (Compute machineTypes.get), else the name's."""
    return ClusterSize(1 if answers.zone else REGIONAL_ZONES, answers.cluster.node_count,
                       vcpus_per_node or machine_vcpus(answers.cluster.machine_type))
