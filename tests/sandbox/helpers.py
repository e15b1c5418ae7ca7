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


# What kubectl's and the kubernetes client's GKE auth ask for: without userinfo.email a service account's token
# reaches a cluster as its numeric id and is forbidden (sandbox/server.py kube_user).
TOKEN_SCOPES = ["https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email"]


def api(name: str, version: str = "v1", credentials=None):
    if credentials is None:
        credentials, _ = google.auth.default(scopes=TOKEN_SCOPES)
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


def shared(tmp_path_factory, speed: float = 0.01, enable: tuple[str, ...] = ()):
    """A sandbox shared by one test module (tests use distinct names), for a module fixture to
    ``yield from``: started (with ``enable``'s APIs on), then stopped when the module is done. Apply its
    environment per test with monkeypatch."""
    from sandbox.testing import Sandbox

    s = Sandbox(tmp_path_factory.mktemp("shared-sandbox"), speed, None)
    try:
        if enable:
            s.enable(*enable)
        yield s
    finally:
        s.stop()


def network_and_subnet(comp, project: str, network: str, subnet: str, region: str = "us-central1",
                       cidr: str = "10.10.0.0/20", **subnet_fields) -> None:
    """A custom-mode VPC network and one subnet in it, each operation waited on until DONE."""
    op = comp.networks().insert(project=project, body={"name": network, "autoCreateSubnetworks": False}).execute()
    while op["status"] != "DONE":
        op = comp.globalOperations().wait(project=project, operation=op["name"]).execute()
    op = comp.subnetworks().insert(project=project, region=region, body={
        "name": subnet, "network": f"projects/{project}/global/networks/{network}", "ipCidrRange": cidr,
        **subnet_fields}).execute()
    while op["status"] != "DONE":
        op = comp.regionOperations().wait(project=project, region=region, operation=op["name"]).execute()


def core_api(cluster: dict, token: str, tmp_path, retries: int | None = None):
    """A kubernetes CoreV1Api on a (sandbox) GKE cluster: its endpoint, its CA, a bearer token."""
    import base64

    from kubernetes import client

    ca = tmp_path / f"ca-{cluster['endpoint'].replace(':', '_')}.pem"
    ca.write_bytes(base64.b64decode(cluster["masterAuth"]["clusterCaCertificate"]))
    cfg = client.Configuration()
    cfg.host = f"https://{cluster['endpoint']}"
    cfg.ssl_ca_cert = str(ca)
    cfg.api_key = {"authorization": f"Bearer {token}"}
    if retries is not None:
        cfg.retries = retries
    return client.CoreV1Api(client.ApiClient(cfg))
