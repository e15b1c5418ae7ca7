"""The Nodes of a sandbox GKE cluster, made from its node pools (container.v1 ``Cluster.nodePools``), and the
resource quantities the scheduler compares (``resources.requests`` against a node's ``status.allocatable``).

A node pool has ``initialNodeCount`` nodes in each of its ``locations`` (zones): a regional cluster over three
zones with ``initialNodeCount: 1`` has three nodes. Names follow GKE's ``gke-<cluster>-<pool>-<8 hex>-<4 chars>``
(one 8-hex group per zone: the zone's managed instance group), stable per cluster, pool and zone, so a restart
finds the same nodes.

Allocatable CPU and memory follow GKE's reservation formula ("Node allocatable resources",
https://cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes#memory_cpu):
memory: 255 MiB on machines with less than 1 GiB, else 25 % of the first 4 GiB, 20 % of the next 4 GiB, 10 % of
the next 8 GiB, 6 % of the next 112 GiB, 2 % above 128 GiB; plus 100 MiB for kubelet's eviction threshold.
CPU: 6 % of the first core, 1 % of the next, 0.5 % of the next two, 0.25 % above four; shared-core machines
(e2-micro/small/medium, f1-micro, g1-small) get 940m allocatable. The machine's vCPUs and memory come from the
sandbox's machine type catalogue (``sandbox/catalog.py``, Compute Engine's published sizes).
"""
from __future__ import annotations

import random
import re
import uuid

KUBELET_VERSION = "v1.32.4-gke.1000"
MAX_PODS = 110  # GKE's default maxPodsPerNode (defaultMaxPodsConstraint)
DEFAULT_POOLS = [{"name": "default-pool", "initialNodeCount": 3, "config": {"machineType": "e2-standard-4"},
                  "locations": ["us-central1-a"]}]
SHARED_CORE = {"e2-micro", "e2-small", "e2-medium", "f1-micro", "g1-small"}
_FALLBACK_SIZES = {"e2-standard-4": (4, 16384)}

# ---------------------------------------------------------------------------------------------- quantities
# resource.Quantity suffixes (k8s.io/apimachinery/pkg/api/resource/suffix.go)
_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "m": 0.001}
_QTY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")


def quantity(v) -> float:
    """A Kubernetes quantity ("250m", "1.5", "512Mi", "1G", 2) as a number (cores, bytes). Invalid: 0."""
    if isinstance(v, (int, float)):
        return float(v)
    m = _QTY.match(str(v).strip())
    if not m:
        return 0.0
    return float(m.group(1)) * _SUFFIX[m.group(2) or ""]


def pod_requests(spec: dict) -> dict[str, float]:
    """What the scheduler counts for a pod: per resource, the larger of the sum over its containers and the
    largest init container (https://kubernetes.io/docs/concepts/workloads/pods/init-containers/#resource-sharing-within-containers).
    A container with a limit and no request requests its limit (API defaulting,
    https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#requests-and-limits)."""
    def of(c: dict) -> dict[str, float]:
        res = c.get("resources") or {}
        req = dict(res.get("limits") or {})
        req.update(res.get("requests") or {})
        return {k: quantity(req[k]) for k in ("cpu", "memory") if k in req}

    total = {"cpu": 0.0, "memory": 0.0}
    for c in spec.get("containers") or []:
        for k, v in of(c).items():
            total[k] += v
    for c in spec.get("initContainers") or []:
        for k, v in of(c).items():
            total[k] = max(total[k], v)
    return total


# ---------------------------------------------------------------------------------------------- allocatable
def _tiers(amount: float, tiers: list[tuple[float, float]]) -> float:
    """Sum of rate x the part of amount in each (upper bound, rate) tier."""
    out, low = 0.0, 0.0
    for high, rate in tiers:
        if amount <= low:
            break
        out += (min(amount, high) - low) * rate
        low = high
    return out


def machine_size(machine_type: str) -> tuple[int, int]:
    """(vCPUs, memory MiB) of a machine type."""
    try:
        from ..catalog import machine_types
        return machine_types().get(machine_type) or _FALLBACK_SIZES["e2-standard-4"]
    except ImportError:  # sandbox.kube used alone
        return _FALLBACK_SIZES.get(machine_type, _FALLBACK_SIZES["e2-standard-4"])


def allocatable(machine_type: str) -> tuple[dict, dict]:
    """(capacity, allocatable) of a node of ``machine_type``, as Node.status shows them (see the module doc)."""
    cpus, mem_mib = machine_size(machine_type)
    gib = mem_mib / 1024
    if gib < 1:
        reserved_mib = 255.0
    else:
        reserved_mib = 1024 * _tiers(gib, [(4, 0.25), (8, 0.20), (16, 0.10), (128, 0.06), (float("inf"), 0.02)])
    alloc_mib = mem_mib - reserved_mib - 100  # 100 MiB: kubelet's hard eviction threshold (memory.available)
    if machine_type in SHARED_CORE:
        cpu_alloc_m = 940
    else:
        cpu_alloc_m = cpus * 1000 - round(1000 * _tiers(cpus, [(1, 0.06), (2, 0.01), (4, 0.005),
                                                              (float("inf"), 0.0025)]))
    capacity = {"cpu": str(cpus), "ephemeral-storage": "98831908Ki", "memory": f"{mem_mib * 1024}Ki",
                "pods": str(MAX_PODS)}
    alloc = {"cpu": f"{cpu_alloc_m}m", "ephemeral-storage": "47060071478", "memory": f"{int(alloc_mib * 1024)}Ki",
             "pods": str(MAX_PODS)}
    return capacity, alloc


# ---------------------------------------------------------------------------------------------- nodes
def _metadata_mode(pool: dict, workload_identity: bool) -> str:
    """The pool's workloadMetadataConfig.mode; a cluster with Workload Identity defaults pools to GKE_METADATA
    (https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity#enable_on_clusters_and_node_pools)."""
    mode = (((pool.get("config") or {}).get("workloadMetadataConfig") or {}).get("mode") or "")
    return mode or ("GKE_METADATA" if workload_identity else "GCE_METADATA")


def node_objects(cluster: str, pools: list[dict] | None = None, locations: list[str] | None = None,
                 project: str = "sandbox", workload_identity: bool = False) -> list[dict]:
    """The Node objects of a cluster with these node pools (default: 3 x e2-standard-4 in one zone)."""
    pools = pools or DEFAULT_POOLS
    out: list[dict] = []
    i = 0
    for pool in pools:
        pname = pool.get("name") or "default-pool"
        cfg = pool.get("config") or {}
        mtype = cfg.get("machineType") or "e2-medium"
        zones = pool.get("locations") or locations or ["us-central1-a"]
        count = int(pool.get("initialNodeCount") or 0)
        capacity, alloc = allocatable(mtype)
        meta_mode = _metadata_mode(pool, workload_identity)
        for zone in zones:
            rnd = random.Random(f"{cluster}/{pname}/{zone}")
            group = "".join(rnd.choice("0123456789abcdef") for _ in range(8))
            for _ in range(count):
                suffix = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(4))
                name = f"gke-{cluster[:20]}-{pname[:20]}-{group}-{suffix}"
                region = zone.rsplit("-", 1)[0]
                labels = {
                    "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/instance-type": mtype,
                    "beta.kubernetes.io/os": "linux",
                    "cloud.google.com/gke-boot-disk": cfg.get("diskType") or "pd-balanced",
                    "cloud.google.com/gke-container-runtime": "containerd",
                    "cloud.google.com/gke-max-pods-per-node": str(MAX_PODS),
                    "cloud.google.com/gke-nodepool": pname,
                    "cloud.google.com/gke-os-distribution": "cos",
                    "cloud.google.com/gke-provisioning": "standard",
                    "cloud.google.com/machine-family": mtype.split("-", 1)[0],
                    "failure-domain.beta.kubernetes.io/region": region,
                    "failure-domain.beta.kubernetes.io/zone": zone,
                    "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                    "node.kubernetes.io/instance-type": mtype,
                    "topology.gke.io/zone": zone,
                    "topology.kubernetes.io/region": region, "topology.kubernetes.io/zone": zone,
                }
                if meta_mode == "GKE_METADATA":
                    labels["iam.gke.io/gke-metadata-server-enabled"] = "true"
                labels.update(cfg.get("labels") or {})
                out.append({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": labels},
                    "spec": {"podCIDR": f"10.8.{i}.0/24", "podCIDRs": [f"10.8.{i}.0/24"],
                             "providerID": f"gce://{project}/{zone}/{name}"},
                    "status": {
                        "capacity": capacity, "allocatable": alloc,
                        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                        "message": "kubelet is posting ready status"}],
                        "addresses": [{"type": "InternalIP", "address": f"10.128.{i // 250}.{10 + i % 250}"},
                                      {"type": "Hostname", "address": name}],
                        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                        "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                                     "osImage": "Container-Optimized OS from Google",
                                     "kernelVersion": "6.6.72+", "containerRuntimeVersion": "containerd://1.7.24",
                                     "architecture": "amd64", "operatingSystem": "linux",
                                     "bootID": str(uuid.UUID(int=rnd.getrandbits(128))),
                                     "machineID": "%032x" % rnd.getrandbits(128),
                                     "systemUUID": str(uuid.UUID(int=rnd.getrandbits(128)))}},
                })
                i += 1
    return out
