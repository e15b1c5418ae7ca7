"""Read-only questions the wizard and preflight ask of Google Cloud.

All functions are blocking (they use googleapiclient); callers on an event loop
run them with ``asyncio.to_thread``. Owned by the infrastructure backend.
"""
from __future__ import annotations


def whoami() -> dict:
    """{"account": email or None, "source": "adc-service-account" | "adc-user" | "gcloud" | None, "project": default project or None}"""
    raise NotImplementedError


def list_projects() -> list[dict]:
    """[{"projectId", "name", "projectNumber"}] the caller can see (Resource Manager projects.search/list)."""
    raise NotImplementedError


def list_regions(project: str) -> list[str]:
    raise NotImplementedError


def list_zones(project: str, region: str) -> list[str]:
    raise NotImplementedError


def api_states(project: str, apis: list[str]) -> dict[str, bool]:
    """{api: enabled?} for each of ``apis``."""
    raise NotImplementedError


def key_creation_allowed(project: str) -> bool | None:
    """False when org policy iam.disableServiceAccountKeyCreation is enforced; None when unknown."""
    raise NotImplementedError
