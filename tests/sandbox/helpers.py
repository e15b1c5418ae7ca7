"""Real clients pointed at the sandbox through the environment the fixture set (no mocks)."""

from __future__ import annotations

import json
import os
import time

import google.auth
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

ENV_FOR = {
    "serviceusage": "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE",
    "cloudresourcemanager": "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER",
    "iam": "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM",
    "compute": "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE",
    "container": "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER",
    "sqladmin": "CLOUDSDK_API_ENDPOINT_OVERRIDES_SQL",
}


def api(name: str, version: str = "v1", credentials=None):
    if credentials is None:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return build(name, version, credentials=credentials, static_discovery=True, cache_discovery=False,
                 client_options={"api_endpoint": os.environ[ENV_FOR[name]]})


def error(exc: HttpError) -> dict:
    return json.loads(exc.content)["error"]


def wait_until(fn, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def enable_and_wait(su, project: str, services: list[str], speed: float) -> dict:
    op = su.services().batchEnable(parent=f"projects/{project}", body={"serviceIds": services}).execute()
    while not op.get("done"):
        time.sleep(0.02)
        op = su.operations().get(name=op["name"]).execute()
    time.sleep(60 * speed + 0.05)  # propagation
    return op


def shared(tmp_path_factory, speed: float = 0.01):
    """A sandbox shared by one test module (tests use distinct names); apply env per test with monkeypatch."""
    from sandbox.testing import Sandbox

    return Sandbox(tmp_path_factory.mktemp("shared-sandbox"), speed, None)
