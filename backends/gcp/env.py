"""Where the Google APIs are (endpoint overrides) and how fast time runs. Light: no client imports."""
from __future__ import annotations

import os

# api name used in this package -> (googleapiclient service name, version, env suffix, Google's default root)
APIS: dict[str, tuple[str, str, str]] = {
    "serviceusage": ("serviceusage", "v1", "SERVICEUSAGE"),
    "cloudresourcemanager": ("cloudresourcemanager", "v1", "CLOUDRESOURCEMANAGER"),
    "cloudresourcemanager.v3": ("cloudresourcemanager", "v3", "CLOUDRESOURCEMANAGER"),
    "iam": ("iam", "v1", "IAM"),
    "compute": ("compute", "v1", "COMPUTE"),
    "container": ("container", "v1", "CONTAINER"),
    "sqladmin": ("sqladmin", "v1beta4", "SQL"),
    "storage": ("storage", "v1", ""),
    "orgpolicy": ("orgpolicy", "v2", "ORGPOLICY"),  # read-only: managed constraints (v1 CRM refuses them)
    "cloudbilling": ("cloudbilling", "v1", "CLOUDBILLING"),  # read-only: projects.getBillingInfo (preflight)
}

# The Service Usage id behind each client api (for SERVICE_DISABLED handling and the activation URL).
SERVICE_OF_API = {
    "serviceusage": "serviceusage.googleapis.com",
    "cloudresourcemanager": "cloudresourcemanager.googleapis.com",
    "cloudresourcemanager.v3": "cloudresourcemanager.googleapis.com",
    "iam": "iam.googleapis.com",
    "compute": "compute.googleapis.com",
    "container": "container.googleapis.com",
    "sqladmin": "sqladmin.googleapis.com",
    "storage": "storage.googleapis.com",
    "gcs": "storage.googleapis.com",
    "orgpolicy": "orgpolicy.googleapis.com",
    "cloudbilling": "cloudbilling.googleapis.com",
}


def endpoint(api: str) -> str | None:
    """The ``api_endpoint`` to give googleapiclient for ``api`` (None: Google's own)."""
    if api == "storage":
        host = os.environ.get("STORAGE_EMULATOR_HOST")
        return host.rstrip("/") + "/storage/v1/" if host else None
    suffix = APIS[api][2]
    value = os.environ.get(f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{suffix}")
    if not value:
        return None
    return value if value.endswith("/") else value + "/"


def is_overridden() -> bool:
    """True when any endpoint points somewhere other than Google (the sandbox)."""
    return any(k.startswith("CLOUDSDK_API_ENDPOINT_OVERRIDES_") for k in os.environ) or \
        bool(os.environ.get("STORAGE_EMULATOR_HOST"))


def time_scale() -> float:
    """The sandbox speed: every poll interval, backoff and budget is multiplied by it (default 1)."""
    try:
        v = float(os.environ.get("MLOPS_INSTALL_TIME_SCALE", "1"))
    except ValueError:
        return 1.0
    return v if v > 0 else 1.0


def scaled(seconds: float, floor: float = 0.0) -> float:
    return max(seconds * time_scale(), floor)


def env_key() -> tuple:
    """What the clients depend on: caches are keyed by it so a new sandbox gets new clients."""
    keys = ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "STORAGE_EMULATOR_HOST", "CLOUDSDK_AUTH_TOKEN_HOST")
    return tuple(os.environ.get(k) for k in keys) + tuple(
        sorted((k, v) for k, v in os.environ.items() if k.startswith("CLOUDSDK_API_ENDPOINT_OVERRIDES_")))


# The project the installer works on (``auth.set_target_project``): user credentials carry it as their quota project.
TARGET: dict[str, str | None] = {"project": None}


def creds_key() -> tuple:
    """What credentials (and the authorised https and storage clients built on them) depend on."""
    return env_key() + (("target", TARGET["project"]),)
