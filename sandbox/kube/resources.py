"""The resource table: built-in kinds plus the ones CustomResourceDefinitions add."""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    verbs: list[str] = field(default_factory=lambda: list(ALL_VERBS))
    subresources: tuple[str, ...] = ()  # "status", "scale"
    builtin: bool = True
    crd_name: str = ""  # for custom resources: the CRD's metadata.name

    def __post_init__(self) -> None:
        if not self.singular:
            self.singular = self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, `configmaps` — as Status messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def store_key(self) -> str:
        """Objects are stored per group+plural (not per version)."""
        return f"{self.group or 'core'}~{self.plural}"

    def storage_version_hash(self) -> str:
        digest = hashlib.sha256(f"{self.group}/{self.version}/{self.kind}".encode()).digest()
        return base64.b64encode(digest[:8]).decode()

    def api_resources(self) -> list[dict]:
        out = [
            {
                "name": self.plural,
                "singularName": self.singular,
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": list(self.verbs),
                **({"shortNames": list(self.short_names)} if self.short_names else {}),
                **({"categories": list(self.categories)} if self.categories else {}),
                "storageVersionHash": self.storage_version_hash(),
            }
        ]
        for sub in self.subresources:
            if sub == "status":
                out.append({"name": f"{self.plural}/status", "singularName": "", "namespaced": self.namespaced,
                            "kind": self.kind, "verbs": ["get", "patch", "update"]})
            elif sub == "log":
                out.append({"name": f"{self.plural}/log", "singularName": "", "namespaced": self.namespaced,
                            "kind": self.kind, "verbs": ["get"]})
            elif sub == "scale":
                out.append({"name": f"{self.plural}/scale", "singularName": "", "namespaced": self.namespaced,
                            "group": "autoscaling", "version": "v1", "kind": "Scale",
                            "verbs": ["get", "patch", "update"]})
        return out


def _r(group, version, plural, kind, namespaced, short=(), cats=(), subs=("status",), verbs=None, singular=""):
    return Resource(group, version, plural, kind, namespaced, singular=singular, short_names=list(short),
                    categories=list(cats), subresources=tuple(subs), verbs=list(verbs or ALL_VERBS))


_CREATE_ONLY = ["create"]
_NO_DC = ["create", "delete", "get", "list", "patch", "update", "watch"]

BUILTIN: list[Resource] = [
    # core/v1
    _r("", "v1", "namespaces", "Namespace", False, ["ns"], verbs=_NO_DC),
    _r("", "v1", "nodes", "Node", False, ["no"]),
    _r("", "v1", "persistentvolumes", "PersistentVolume", False, ["pv"]),
    _r("", "v1", "configmaps", "ConfigMap", True, ["cm"], subs=()),
    _r("", "v1", "secrets", "Secret", True, subs=()),
    _r("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"], subs=()),
    _r("", "v1", "services", "Service", True, ["svc"], ["all"], verbs=_NO_DC),
    _r("", "v1", "endpoints", "Endpoints", True, ["ep"], subs=()),
    _r("", "v1", "pods", "Pod", True, ["po"], ["all"], subs=("status", "log")),
    _r("", "v1", "events", "Event", True, ["ev"], subs=()),
    _r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ["pvc"]),
    _r("", "v1", "resourcequotas", "ResourceQuota", True, ["quota"]),
    _r("", "v1", "limitranges", "LimitRange", True, ["limits"], subs=()),
    _r("", "v1", "replicationcontrollers", "ReplicationController", True, ["rc"], ["all"], subs=("status", "scale")),
    # apps/v1
    _r("apps", "v1", "deployments", "Deployment", True, ["deploy"], ["all"], subs=("status", "scale")),
    _r("apps", "v1", "replicasets", "ReplicaSet", True, ["rs"], ["all"], subs=("status", "scale")),
    _r("apps", "v1", "statefulsets", "StatefulSet", True, ["sts"], ["all"], subs=("status", "scale")),
    _r("apps", "v1", "daemonsets", "DaemonSet", True, ["ds"], ["all"]),
    _r("apps", "v1", "controllerrevisions", "ControllerRevision", True, subs=()),
    # batch/v1
    _r("batch", "v1", "jobs", "Job", True, cats=["all"]),
    _r("batch", "v1", "cronjobs", "CronJob", True, ["cj"], ["all"]),
    # autoscaling/v2
    _r("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ["hpa"], ["all"]),
    # policy/v1
    _r("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"]),
    # rbac
    _r("rbac.authorization.k8s.io", "v1", "roles", "Role", True, subs=()),
    _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, subs=()),
    _r("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, subs=()),
    _r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False, subs=()),
    # networking
    _r("networking.k8s.io", "v1", "ingresses", "Ingress", True, ["ing"]),
    _r("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ["netpol"], subs=()),
    # storage
    _r("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ["sc"], subs=()),
    # scheduling
    _r("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ["pc"], subs=()),
    # coordination
    _r("coordination.k8s.io", "v1", "leases", "Lease", True, subs=()),
    # apiextensions
    _r("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
       ["crd", "crds"], cats=["api-extensions"]),
    # authorization / authentication (create-only reviews)
    _r("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False, subs=(),
       verbs=_CREATE_ONLY),
    _r("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False, subs=(),
       verbs=_CREATE_ONLY),
    _r("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False, subs=(), verbs=_CREATE_ONLY),
]

# Kinds whose DELETE answers with the deleted object rather than a Status (as the real registry does).
RETURNS_DELETED_OBJECT = {"Pod", "Namespace"}

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(v: str) -> tuple:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first; others last by name."""
    m = _VERSION_RE.match(v)
    if not m:
        return (3, 0, 0, v)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, v)


def resources_from_crd(crd: dict) -> list[Resource]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for ver in spec.get("versions") or []:
        if not ver.get("served", True):
            continue
        subs = []
        sr = ver.get("subresources") or spec.get("subresources") or {}
        if "status" in sr:
            subs.append("status")
        if "scale" in sr:
            subs.append("scale")
        out.append(
            Resource(
                group=spec.get("group", ""),
                version=ver["name"],
                plural=names.get("plural", ""),
                kind=names.get("kind", ""),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names.get("kind", "").lower(),
                short_names=list(names.get("shortNames") or []),
                categories=list(names.get("categories") or []),
                subresources=tuple(subs),
                builtin=False,
                crd_name=crd["metadata"]["name"],
            )
        )
    return out
