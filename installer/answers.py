"""The answers model: every input the installer needs, and the names derived from it.

This module defines the *shape* (dataclasses) and the derived names. Loading and
validation (with line numbers, did-you-mean, JSON Schema) live in
``installer.validation``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

CredentialsMode = Literal["key", "workload-identity"]

# The seed's 12 APIs, plus the successors of Container Registry and AI Platform.
REQUIRED_APIS: tuple[str, ...] = (
    "compute.googleapis.com",
    "storage.googleapis.com",
    "container.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "ml.googleapis.com",
    "iam.googleapis.com",
    "sql-component.googleapis.com",
    "sqladmin.googleapis.com",
    "dataflow.googleapis.com",
    "containerregistry.googleapis.com",
    "artifactregistry.googleapis.com",
    "aiplatform.googleapis.com",
    "serviceusage.googleapis.com",
)
# APIs a credentials mode needs, added whatever apis.required lists (an answers file written before a mode's need was
# known must still work). Workload Identity: the GKE metadata server mints a KSA's Google tokens through the IAM
# Service Account Credentials API; without it pods get 403 "IAM Service Account Credentials API has not been used
# in project ..." (https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity, "Before you begin":
# enable the IAM Service Account Credentials API).
MODE_APIS: dict[str, tuple[str, ...]] = {"workload-identity": ("iamcredentials.googleapis.com",), "key": ()}
# APIs whose enablement failing is only a warning (shut down / legacy).
LEGACY_APIS: frozenset[str] = frozenset({"containerregistry.googleapis.com", "ml.googleapis.com"})

GKE_SA_ROLES: tuple[str, ...] = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/storage.objectViewer",
    "roles/cloudsql.client",
    "roles/storage.objectAdmin",
)
KFP_SA_ROLES: tuple[str, ...] = (
    "roles/storage.admin",
    "roles/bigquery.admin",
    "roles/automl.admin",
    "roles/automl.predictor",
    "roles/ml.admin",
    "roles/dataflow.admin",
    "roles/cloudsql.admin",
)
# Workload identity: KSA -> which GSA it impersonates ("kfp" or "gke").
WI_KSA_BINDINGS: dict[str, str] = {
    "pipeline-runner": "kfp",
    "kubeflow-pipelines-container-builder": "kfp",
    "kubeflow-pipelines-viewer": "kfp",
    "ml-pipeline-ui": "gke",
    "ml-pipeline-visualizationserver": "gke",
    "kubeflow-pipelines-minio-gcs-gateway": "gke",
    "kubeflow-pipelines-cloudsql-proxy": "gke",
}
LABEL_KEY = "mlops-install-env"

# Cloud SQL edition the installer creates, sent explicitly: the API's default edition differs by database version
# and by project (instances created without it can come out ENTERPRISE_PLUS, which refuses every Enterprise tier:
# 400 "Invalid Tier (db-n1-standard-2) for (ENTERPRISE_PLUS) Edition", seen in public logs on GitHub). Enterprise
# Plus runs only the N2 (db-perf-optimized-N-*) and C4A machine series; Enterprise the shared-core, dedicated-core
# (db-n1-*, db-custom-*) and N4 ones (https://cloud.google.com/sql/docs/mysql/machine-series-overview).
SQL_EDITION = "ENTERPRISE"
ENTERPRISE_PLUS_TIER_PREFIXES = ("db-perf-optimized-", "db-c4a-")


def sql_tier_problem(tier: str) -> str | None:
    """Why ``tier`` cannot be used with the edition the installer creates (None: it can)."""
    if tier.startswith(ENTERPRISE_PLUS_TIER_PREFIXES):
        return (f"SQL tier {tier!r} belongs to Cloud SQL Enterprise Plus; the installer creates Enterprise "
                "instances (e.g. db-n1-standard-2, db-custom-2-7680)")
    return None


@dataclass
class ApisAnswers:
    enable: bool = True  # consent to enable the missing APIs
    required: list[str] = field(default_factory=lambda: list(REQUIRED_APIS))


@dataclass
class ClusterAnswers:
    machine_type: str = "e2-standard-4"
    # nodes per zone; None: the default for the location (``installer.sizing.default_nodes_per_zone``: 1 per zone for
    # a regional cluster, 3 for a zonal one), filled in by ``Answers`` when it is made
    node_count: int | None = None
    release_channel: str = "REGULAR"  # RAPID | REGULAR | STABLE | EXTENDED
    existing: str | None = None  # name of an existing cluster to adopt


@dataclass
class SqlAnswers:
    tier: str = "db-n1-standard-2"
    database_version: str = "MYSQL_8_0"
    disk_size_gb: int = 20
    existing: str | None = None  # name of an existing instance to adopt


@dataclass
class BucketAnswers:
    location: str | None = None  # default: the region
    existing: str | None = None  # name of an existing bucket to adopt


@dataclass
class StateAnswers:
    # a bucket of yours, existing already, for the remote journal and lock (issue 17; installer.remote);
    # default (None): the artifact bucket, once the install has made it
    bucket: str | None = None


@dataclass
class KfpAnswers:
    version: str = "2.14.4"
    namespace: str = "kubeflow"
    manifests: str = "upstream"  # "upstream" or a local folder holding cluster-scoped.yaml / env-gcp.yaml or kustomizations


@dataclass
class ServiceAccountsAnswers:
    gke_roles: list[str] = field(default_factory=lambda: list(GKE_SA_ROLES))
    kfp_roles: list[str] = field(default_factory=lambda: list(KFP_SA_ROLES))


@dataclass
class Answers:
    project: str
    region: str
    prefix: str
    zone: str | None = None
    credentials: CredentialsMode = "key"
    apis: ApisAnswers = field(default_factory=ApisAnswers)
    cluster: ClusterAnswers = field(default_factory=ClusterAnswers)
    sql: SqlAnswers = field(default_factory=SqlAnswers)
    bucket: BucketAnswers = field(default_factory=BucketAnswers)
    kfp: KfpAnswers = field(default_factory=KfpAnswers)
    service_accounts: ServiceAccountsAnswers = field(default_factory=ServiceAccountsAnswers)
    state: StateAnswers = field(default_factory=StateAnswers)
    # the install ends with a pipeline run through KFP's API (step kfp-verify); false (or --no-verify) skips it
    verify: bool = True
    version: int = 1

    def __post_init__(self) -> None:
        if self.cluster.node_count is None:  # an explicit node_count wins; set it again if you change ``zone``
            from .sizing import default_nodes_per_zone
            self.cluster.node_count = default_nodes_per_zone(self.zone)

    @property
    def names(self) -> "Names":
        return Names.derive(self)

    @property
    def env_id(self) -> str:
        """The environment's identity: one journal per project + prefix."""
        return f"{self.project}--{self.prefix}"

    @property
    def apis_needed(self) -> list[str]:
        """The APIs this install enables and checks: ``apis.required`` plus what the credentials mode needs."""
        return list(self.apis.required) + [a for a in MODE_APIS[self.credentials] if a not in self.apis.required]

    @property
    def mode_apis_added(self) -> list[str]:
        """The APIs the credentials mode adds to ``apis.required`` (shown on the review and by ``plan``)."""
        return [a for a in MODE_APIS[self.credentials] if a not in self.apis.required]

    @property
    def location(self) -> str:
        """Where the cluster lives: the zone if given (zonal), else the region."""
        return self.zone or self.region

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        import hashlib  # here: ~1.5 ms of the wizard's start-up, before its first frame

        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def prefixed(prefix: str) -> dict[str, str]:
    """The names the install derives from a prefix, before the answers' ``existing`` overrides (the one rule:
    ``Names.derive``, the answers' checks of the derived names, the wizard's name table, the remote state's bucket)."""
    return {"network": f"{prefix}-network", "subnet": f"{prefix}-subnet", "gke_sa": f"{prefix}-gke-sa",
            "kfp_sa": f"{prefix}-kfp-sa", "cluster": f"{prefix}-kfp-cluster",
            "sql_instance": f"{prefix}-ml-metadata", "bucket": f"{prefix}-artifact-store"}


@dataclass(frozen=True)
class Names:
    network: str
    subnet: str
    gke_sa: str
    kfp_sa: str
    cluster: str
    sql_instance: str
    db_user: str
    bucket: str
    gke_sa_email: str
    kfp_sa_email: str
    workload_pool: str

    @classmethod
    def derive(cls, a: Answers) -> "Names":
        d = prefixed(a.prefix)
        return cls(
            network=d["network"],
            subnet=d["subnet"],
            gke_sa=d["gke_sa"],
            kfp_sa=d["kfp_sa"],
            cluster=a.cluster.existing or d["cluster"],
            sql_instance=a.sql.existing or d["sql_instance"],
            db_user="kfp",
            bucket=a.bucket.existing or d["bucket"],
            gke_sa_email=f"{d['gke_sa']}@{a.project}.iam.gserviceaccount.com",
            kfp_sa_email=f"{d['kfp_sa']}@{a.project}.iam.gserviceaccount.com",
            workload_pool=f"{a.project}.svc.id.goog",
        )
