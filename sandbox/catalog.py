"""Static facts of the sandbox world: the project, services, regions and zones, and the latency profile."""

from __future__ import annotations

PROJECT_ID = "mlops-demo-project"
PROJECT_NUMBER = "123456789012"
ORG_ID = "100000000001"
CALLER_ACCOUNT_ID = "mlops-installer"
CALLER_EMAIL = f"{CALLER_ACCOUNT_ID}@{PROJECT_ID}.iam.gserviceaccount.com"
OTHER_PROJECT = "someone-elses-project"  # owns names taken "by someone else"

# gcp-api-behaviour.md §13, seconds at --speed 1 (medians).
PROFILE = {
    "serviceusage.enable": 30.0,
    "serviceusage.usable": 60.0,  # after the op is done, until the API works
    "iam.sa_create": 0.5,
    "iam.sa_visible_iam": 3.0,  # IAM's own reads are eventually consistent
    "iam.sa_visible": 30.0,  # other APIs (CRM setIamPolicy, GKE node SA)
    "iam.key_create": 1.0,
    "crm.iam_policy": 0.7,
    "crm.binding_effective": 120.0,
    "compute.network_insert": 22.0,
    "compute.subnetwork_insert": 20.0,
    "compute.subnet_not_ready": 5.0,  # after the subnet op is done
    "compute.delete": 25.0,
    "container.create_zonal": 240.0,
    "container.create_regional": 540.0,
    "container.delete": 180.0,
    # estimates, no measured source: a control-plane update (enabling Workload Identity) and a node pool update
    # that recreates the nodes (changing the workload metadata mode)
    "container.update": 120.0,
    "container.node_pool_update": 300.0,
    "sql.create": 600.0,
    "sql.delete": 100.0,
    "sql.user_op": 8.0,
    "sql.patch": 60.0,
    "storage.bucket_insert": 2.0,
    "storage.bucket_delete": 1.0,
    "sync.read": 0.05,
}

SERVICE_TITLES = {
    "aiplatform.googleapis.com": "Vertex AI API",
    "analyticshub.googleapis.com": "Analytics Hub API",
    "artifactregistry.googleapis.com": "Artifact Registry API",
    "automl.googleapis.com": "Cloud AutoML API",
    "bigquery.googleapis.com": "BigQuery API",
    "bigqueryconnection.googleapis.com": "BigQuery Connection API",
    "bigquerydatapolicy.googleapis.com": "BigQuery Data Policy API",
    "bigquerymigration.googleapis.com": "BigQuery Migration API",
    "bigqueryreservation.googleapis.com": "BigQuery Reservation API",
    "bigquerystorage.googleapis.com": "BigQuery Storage API",
    "cloudapis.googleapis.com": "Google Cloud APIs",
    "cloudbilling.googleapis.com": "Cloud Billing API",
    "cloudbuild.googleapis.com": "Cloud Build API",
    "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API",
    "cloudtrace.googleapis.com": "Cloud Trace API",
    "compute.googleapis.com": "Compute Engine API",
    "container.googleapis.com": "Kubernetes Engine API",
    "containerregistry.googleapis.com": "Container Registry API",
    "dataflow.googleapis.com": "Dataflow API",
    "dataform.googleapis.com": "Dataform API",
    "dataplex.googleapis.com": "Cloud Dataplex API",
    "datastore.googleapis.com": "Cloud Datastore API",
    "iam.googleapis.com": "Identity and Access Management (IAM) API",
    "iamcredentials.googleapis.com": "IAM Service Account Credentials API",
    "logging.googleapis.com": "Cloud Logging API",
    "ml.googleapis.com": "AI Platform Training & Prediction API",
    "monitoring.googleapis.com": "Cloud Monitoring API",
    "orgpolicy.googleapis.com": "Organization Policy API",
    "oslogin.googleapis.com": "Cloud OS Login API",
    "pubsub.googleapis.com": "Cloud Pub/Sub API",
    "secretmanager.googleapis.com": "Secret Manager API",
    "servicemanagement.googleapis.com": "Service Management API",
    "serviceusage.googleapis.com": "Service Usage API",
    "sql-component.googleapis.com": "Cloud SQL",
    "sqladmin.googleapis.com": "Cloud SQL Admin API",
    "storage-api.googleapis.com": "Google Cloud Storage JSON API",
    "storage-component.googleapis.com": "Cloud Storage",
    "storage.googleapis.com": "Cloud Storage API",
}

# What a project created today has enabled (https://cloud.google.com/service-usage/docs/enabled-service#default).
DEFAULT_ENABLED = [
    "analyticshub.googleapis.com", "bigquery.googleapis.com", "bigqueryconnection.googleapis.com",
    "bigquerydatapolicy.googleapis.com", "bigquerymigration.googleapis.com", "bigqueryreservation.googleapis.com",
    "bigquerystorage.googleapis.com", "cloudapis.googleapis.com", "cloudtrace.googleapis.com",
    "dataform.googleapis.com", "dataplex.googleapis.com", "datastore.googleapis.com", "logging.googleapis.com",
    "monitoring.googleapis.com", "servicemanagement.googleapis.com", "serviceusage.googleapis.com",
    "sql-component.googleapis.com", "storage-api.googleapis.com", "storage-component.googleapis.com",
    "storage.googleapis.com",
]

# Enabling a key also enables its values (container implies compute, §12.3).
SERVICE_DEPENDENCIES = {
    "container.googleapis.com": ["compute.googleapis.com", "oslogin.googleapis.com", "pubsub.googleapis.com",
                                 "containerregistry.googleapis.com", "artifactregistry.googleapis.com",
                                 "iam.googleapis.com", "iamcredentials.googleapis.com"],
    "compute.googleapis.com": ["oslogin.googleapis.com"],
    "dataflow.googleapis.com": ["compute.googleapis.com", "storage-api.googleapis.com", "pubsub.googleapis.com",
                                "bigquery.googleapis.com", "logging.googleapis.com", "monitoring.googleapis.com",
                                "datastore.googleapis.com"],
    "sqladmin.googleapis.com": ["sql-component.googleapis.com"],
    "aiplatform.googleapis.com": ["storage.googleapis.com"],
    "cloudbuild.googleapis.com": ["pubsub.googleapis.com", "logging.googleapis.com"],
}

REGIONS = {
    "us-central1": ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"],
    "us-east1": ["us-east1-b", "us-east1-c", "us-east1-d"],
    "us-west1": ["us-west1-a", "us-west1-b", "us-west1-c"],
    "europe-west1": ["europe-west1-b", "europe-west1-c", "europe-west1-d"],
    "europe-west4": ["europe-west4-a", "europe-west4-b", "europe-west4-c"],
    "asia-east1": ["asia-east1-a", "asia-east1-b", "asia-east1-c"],
}
REGION_DESC = {
    "us-central1": "us-central1", "us-east1": "us-east1", "us-west1": "us-west1",
    "europe-west1": "europe-west1", "europe-west4": "europe-west4", "asia-east1": "asia-east1",
}
DEFAULT_CPU_QUOTA = 24.0


def zone_region(zone: str) -> str | None:
    for region, zones in REGIONS.items():
        if zone in zones:
            return region
    return None


def machine_cpus(machine_type: str) -> float:
    """vCPUs of a machine type name (e2-standard-4 → 4, e2-medium → 2, n1-standard-1 → 1)."""
    tail = machine_type.rsplit("-", 1)[-1]
    if tail.isdigit():
        return float(tail)
    return {"micro": 2.0, "small": 2.0, "medium": 2.0}.get(tail, 1.0)


def machine_types() -> dict[str, tuple[int, int]]:
    """name -> (vCPUs, memory MB) of the machine types every sandbox zone offers."""
    out: dict[str, tuple[int, int]] = {"e2-micro": (2, 1024), "e2-small": (2, 2048), "e2-medium": (2, 4096),
                                       "f1-micro": (1, 614), "g1-small": (1, 1740)}
    for n in (2, 4, 8, 16, 32):
        out[f"e2-standard-{n}"] = (n, n * 4096)
        out[f"e2-highmem-{n}"] = (n, n * 8192)
        out[f"e2-highcpu-{n}"] = (n, n * 1024)
        out[f"n2-standard-{n}"] = (n, n * 4096)
        out[f"n2-highmem-{n}"] = (n, n * 8192)
    for n in (1, 2, 4, 8, 16, 32):
        out[f"n1-standard-{n}"] = (n, int(n * 3840))
    for n in (2, 4, 8, 16, 32):
        out[f"n1-highmem-{n}"] = (n, n * 6656)
    return out
