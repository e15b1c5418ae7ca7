"""The Kubernetes half inside the whole sandbox: a GKE cluster's endpoint and CA, reached with a Google token the
sandbox issued, its requests in the sandbox's request log, and the cluster's objects across a hard restart."""
from __future__ import annotations

import base64
import json
import time

import google.auth
import pytest
from google.auth.transport.requests import Request
from kubernetes import client

from .helpers import TOKEN_SCOPES, api, core_api, network_and_subnet, wait_until

P = "mlops-demo-project"
ZONE = "us-central1-a"


def _network(comp, name, subnet, region="us-central1"):
    network_and_subnet(comp, P, name, subnet, region, cidr="10.128.0.0/20", privateIpGoogleAccess=True)


@pytest.mark.sandbox_speed(0.002)
def test_gke_cluster_kubernetes_api_end_to_end(sandbox, tmp_path):
    sandbox.enable("compute", "container", "iam")
    _network(api("compute"), "kube-net", "kube-subnet")
    time.sleep(0.1)
    clusters = api("container").projects().locations().clusters()
    parent = f"projects/{P}/locations/{ZONE}"
    body = {"cluster": {"name": "kfp-cluster", "network": "kube-net", "subnetwork": "kube-subnet",
                        "ipAllocationPolicy": {"useIpAliases": True},
                        "nodePools": [{"name": "default-pool", "initialNodeCount": 1,
                                       "config": {"machineType": "e2-standard-4"}}],
                        "workloadIdentityConfig": {"workloadPool": f"{P}.svc.id.goog"}}}
    clusters.create(parent=parent, body=body).execute()
    name = f"{parent}/clusters/kfp-cluster"
    cluster = wait_until(lambda: (lambda c: c if c["status"] == "RUNNING" else None)(
        clusters.get(name=name).execute()), timeout=30)
    assert cluster["endpoint"].startswith("127.0.0.1:")

    creds, _ = google.auth.default(scopes=TOKEN_SCOPES)
    creds.refresh(Request())
    v1 = core_api(cluster, creds.token, tmp_path)
    assert {"default", "kube-system"} <= {n.metadata.name for n in v1.list_namespace().items}
    t0 = time.time() - 1
    cm = v1.create_namespaced_config_map("default", {"metadata": {"name": "e2e"}, "data": {"a": "1"}})
    # a token the sandbox did not issue is refused
    with pytest.raises(client.ApiException) as ei:
        core_api(cluster, "ya29.not-issued-by-the-sandbox", tmp_path).list_namespace()
    assert ei.value.status == 401
    # the cluster's requests are in the sandbox's request log
    log = [r for r in sandbox.requests(since=t0) if "/configmaps" in r.get("path", "")]
    assert any(r["method"] == "POST" and r["status"] == 201 and r["mutating"] for r in log), json.dumps(log)

    # a hard restart of the sandbox keeps the cluster's objects and CA
    sandbox.restart(hard=True)
    cluster2 = api("container").projects().locations().clusters().get(name=name).execute()
    assert cluster2["masterAuth"]["clusterCaCertificate"] == cluster["masterAuth"]["clusterCaCertificate"]
    v1 = core_api(cluster2, creds.token, tmp_path)
    got = wait_until(lambda: _get_or_none(v1, "e2e"), timeout=15)
    assert got.metadata.uid == cm.metadata.uid and got.data == {"a": "1"}


def _get_or_none(v1, name):
    try:
        return v1.read_namespaced_config_map(name, "default")
    except Exception:  # noqa: BLE001 - the cluster's API may still be starting
        return None


def test_kubernetes_api_is_prepared_while_the_cluster_provisions(sandbox):
    """The blocking part of starting a cluster's Kubernetes API (CA, certificate, its objects on disk) happens in
    a thread while the cluster is PROVISIONING, not on the event loop when it becomes RUNNING
    (benchmarks/sandbox_cluster_stall.py measures the stall)."""
    sandbox.enable("compute", "container")
    sandbox.profile(**{"compute.network_insert": 1, "compute.subnetwork_insert": 1, "compute.subnet_not_ready": 0,
                       "container.create_zonal": 400})  # 4 s at speed 0.01: time to look
    _network(api("compute"), "prep-net", "prep-subnet")
    clusters = api("container").projects().locations().clusters()
    parent = f"projects/{P}/locations/{ZONE}"
    clusters.create(parent=parent, body={"cluster": {
        "name": "prep-cluster", "network": "prep-net", "subnetwork": "prep-subnet",
        "nodePools": [{"name": "default-pool", "initialNodeCount": 1,
                       "config": {"machineType": "e2-standard-4"}}]}}).execute()
    name = f"{parent}/clusters/prep-cluster"

    def prepared():
        dirs = list((sandbox.state_dir / "kube").glob("*prep-cluster*"))
        return dirs and (dirs[0] / "tls" / "ca.pem").exists() and (dirs[0] / "meta.json").exists() and dirs[0]

    kdir = wait_until(prepared, timeout=20)
    assert clusters.get(name=name).execute()["status"] == "PROVISIONING"
    cluster = wait_until(lambda: (lambda c: c if c["status"] == "RUNNING" else None)(
        clusters.get(name=name).execute()), timeout=30)
    assert base64.b64decode(cluster["masterAuth"]["clusterCaCertificate"]).decode() == \
        (kdir / "tls" / "ca.pem").read_text()


def test_a_cluster_created_again_under_the_same_name_starts_empty(sandbox, tmp_path):
    sandbox.enable("compute", "container")
    sandbox.profile(**{"compute.network_insert": 1, "compute.subnetwork_insert": 1, "compute.subnet_not_ready": 0,
                       "container.create_zonal": 20, "container.delete": 20})
    _network(api("compute"), "again-net", "again-subnet")
    clusters = api("container").projects().locations().clusters()
    parent = f"projects/{P}/locations/{ZONE}"
    name = f"{parent}/clusters/again"
    body = {"cluster": {"name": "again", "network": "again-net", "subnetwork": "again-subnet",
                        "nodePools": [{"name": "default-pool", "initialNodeCount": 1,
                                       "config": {"machineType": "e2-standard-4"}}]}}

    def running():
        try:
            c = clusters.get(name=name).execute()
        except Exception:  # noqa: BLE001 - not there yet
            return None
        return c if c["status"] == "RUNNING" else None

    creds, _ = google.auth.default(scopes=TOKEN_SCOPES)
    creds.refresh(Request())
    clusters.create(parent=parent, body=body).execute()
    first = wait_until(running, timeout=30)
    core_api(first, creds.token, tmp_path).create_namespaced_config_map("default", {"metadata": {"name": "old"}})
    clusters.delete(name=name).execute()

    def gone():
        try:
            clusters.get(name=name).execute()
            return False
        except Exception as e:  # noqa: BLE001
            return getattr(getattr(e, "resp", None), "status", None) == 404

    wait_until(gone, timeout=30)
    clusters.create(parent=parent, body=body).execute()
    second = wait_until(running, timeout=30)
    assert second["masterAuth"]["clusterCaCertificate"] != first["masterAuth"]["clusterCaCertificate"]
    (tmp_path / "second").mkdir()
    v1 = core_api(second, creds.token, tmp_path / "second")
    names = {c.metadata.name for c in v1.list_namespaced_config_map("default").items}
    assert "old" not in names and "kube-root-ca.crt" in names
