"""Faults with a rate (each matching request hit with a probability, seeded RNG), the token endpoints and the
control API left alone unless named, and faults on the clusters' Kubernetes APIs (``target=``): through the
fixture, the control API and the CLI. Real clients, real HTTP."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import google.auth
import pytest
import requests
from google.auth.transport.requests import Request
from googleapiclient.errors import HttpError
from kubernetes import client

from .helpers import TOKEN_SCOPES, api, core_api, error, network_and_subnet, wait_until

P = "mlops-demo-project"
SERVICE = f"/v1/projects/{P}/services/storage.googleapis.com"
SECRET = r"/api/v1/namespaces/kubeflow/secrets/user-gcp-sa$"


def _token() -> str:
    creds, _ = google.auth.default(scopes=TOKEN_SCOPES)
    creds.refresh(Request())
    return creds.token


def _statuses(sandbox, n: int, token: str, path: str = SERVICE) -> list[int]:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return [s.get(sandbox.url + path, timeout=10).status_code for _ in range(n)]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True, text=True, timeout=30,
                          env=os.environ)


# ------------------------------------------------------------------------------------------ rate, seed
def test_rate_hits_about_that_share_and_a_seed_replays_the_same_pattern(sandbox):
    token = _token()
    f = sandbox.fault(SERVICE + "$", 503, method="GET", rate=0.3, seed=42)
    assert f["rate"] == 0.3 and f["seed"] == 42 and f["times"] is None  # a rate means every matching request
    first = _statuses(sandbox, 200, token)
    assert set(first) == {200, 503}
    assert 30 <= first.count(503) <= 90  # binomial(200, 0.3): mean 60, sd 6.5
    listed = sandbox.control.faults()
    assert [x["hits"] for x in listed] == [first.count(503)]
    # the log shows the same: a 503 for each hit, with Google's canonical body
    logged = [r["status"] for r in sandbox.requests() if r["path"] == SERVICE]
    assert logged == first
    # the same seed, from the start: the same pattern; another seed: another one
    sandbox.clear_faults()
    sandbox.fault(SERVICE + "$", 503, method="GET", rate=0.3, seed=42)
    assert _statuses(sandbox, 200, token) == first
    sandbox.clear_faults()
    sandbox.fault(SERVICE + "$", 503, method="GET", rate=0.3, seed=43)
    assert _statuses(sandbox, 200, token) != first
    sandbox.clear_faults()
    # a real client sees the canonical error of the status
    sandbox.fault(SERVICE + "$", 429, rate=1.0, times=1)
    with pytest.raises(HttpError) as ei:
        api("serviceusage").services().get(name=f"projects/{P}/services/storage.googleapis.com").execute()
    assert ei.value.resp.status == 429 and error(ei.value)["status"] == "RESOURCE_EXHAUSTED"
    assert sandbox.control.faults() == []  # times=1 with a rate: gone after its one hit


def test_rate_edges_times_and_two_faults_in_turn(sandbox):
    token = _token()
    sandbox.fault(SERVICE + "$", 500, rate=0.0)
    assert set(_statuses(sandbox, 30, token)) == {200}
    sandbox.clear_faults()
    sandbox.fault(SERVICE + "$", 500, rate=1.0, times=None)
    assert set(_statuses(sandbox, 10, token)) == {500}
    sandbox.clear_faults()
    # times counts hits, not matches: exactly 3 failures, then the fault is gone
    sandbox.fault(SERVICE + "$", 503, rate=0.5, seed=1, times=3)
    got = _statuses(sandbox, 60, token)
    assert got.count(503) == 3 and sandbox.control.faults() == []
    # two faults on the same path: the first one's misses go on to the second
    sandbox.fault(SERVICE + "$", 503, rate=0.2, seed=5)
    sandbox.fault(SERVICE + "$", 429, rate=0.2, seed=6)
    got = _statuses(sandbox, 300, token)
    assert got.count(503) >= 20 and got.count(429) >= 15 and got.count(200) >= 150
    hits = {f["status"]: f["hits"] for f in sandbox.control.faults()}
    assert hits == {503: got.count(503), 429: got.count(429)}
    # an unseeded fault records the seed it drew, so a run can be replayed
    sandbox.clear_faults()
    f = sandbox.fault(SERVICE + "$", 503, rate=0.1)
    assert isinstance(f["seed"], int)
    # bad rates are refused
    for bad in (1.5, -0.1):
        with pytest.raises(RuntimeError, match="rate must be between 0 and 1"):
            sandbox.fault(SERVICE + "$", 503, rate=bad)


def test_token_endpoint_and_control_api_are_skipped_unless_named(sandbox):
    sandbox.fault(r".*", 503, rate=1.0)  # every Google API request fails ...
    token = _token()  # ... but the OAuth token endpoints still answer (google-auth's real JWT flow)
    assert set(_statuses(sandbox, 5, token)) == {503}
    assert len(sandbox.requests()) >= 5  # the control API too
    assert [f["hits"] for f in sandbox.control.faults()] == [5]
    sandbox.clear_faults()
    # a regex that names the token endpoint hits it
    sandbox.fault(r"/token$", 503, times=1)
    r = requests.post(sandbox.url + "/token", data={"grant_type": "x"}, timeout=10)
    assert r.status_code == 503 and r.json()["error"]["status"] == "UNAVAILABLE"
    assert _token()  # used up
    # one that names the control API hits it, but never /_sandbox/faults, so it can always be cleared
    sandbox.fault(r"^/_sandbox/state$", 503, times=None)
    with pytest.raises(RuntimeError, match="503"):
        sandbox.state()
    assert len(sandbox.control.faults()) == 1
    sandbox.clear_faults()
    assert sandbox.state()["faults"] == []


def test_rate_fault_survives_a_restart_and_the_cli_sets_one(sandbox):
    st = str(sandbox.state_dir)
    out = _cli("fault", "--state", st, "--method", "GET", "--path", SERVICE + "$", "--status", "503",
               "--rate", "0.25", "--seed", "9")
    assert out.returncode == 0, out.stderr
    f = json.loads(out.stdout)
    assert (f["rate"], f["seed"], f["times"], f["target"]) == (0.25, 9, None, "google")
    bad = _cli("fault", "--state", st, "--path", "x", "--status", "503", "--rate", "2")
    assert bad.returncode == 1 and "rate must be between 0 and 1" in bad.stderr
    out = _cli("fault", "--state", st, "--path", "/services$", "--status", "503", "--rate", "0.5", "--times", "2")
    assert out.returncode == 0 and json.loads(out.stdout)["times"] == 2
    sandbox.restart(hard=True)
    listed = {x["path"]: x for x in sandbox.control.faults()}
    assert listed[SERVICE + "$"]["rate"] == 0.25 and listed[SERVICE + "$"]["seed"] == 9
    got = _statuses(sandbox, 80, _token())
    assert 5 <= got.count(503) <= 40


# ------------------------------------------------------------------------------------------ Kubernetes targets
def _clusters(sandbox, names: list[str]) -> dict[str, dict]:
    sandbox.enable("compute", "container")
    sandbox.profile(**{"compute.network_insert": 1, "compute.subnetwork_insert": 1, "compute.subnet_not_ready": 0,
                       "container.create_zonal": 20})
    comp, gke = api("compute"), api("container")
    network_and_subnet(comp, P, "f-net", "f-sub")
    parent = f"projects/{P}/locations/us-central1-a"
    clusters = gke.projects().locations().clusters()
    for n in names:
        clusters.create(parent=parent, body={"cluster": {
            "name": n, "network": "f-net", "subnetwork": "f-sub",
            "nodePools": [{"name": "default-pool", "initialNodeCount": 1,
                           "config": {"machineType": "e2-standard-4"}}]}}).execute()
    out = {}
    for n in names:
        out[n] = wait_until(lambda n=n: (lambda c: c if c["status"] == "RUNNING" else None)(
            clusters.get(name=f"{parent}/clusters/{n}").execute()), timeout=30)
    return out


def _core(cluster: dict, token: str, tmp_path):
    return core_api(cluster, token, tmp_path, retries=0)  # urllib3 would retry a 429/503 by itself (Retry-After)


def test_kube_faults_by_target_method_path_rate_and_restart(sandbox, tmp_path):
    cl = _clusters(sandbox, ["fa", "fb"])
    token = _token()
    a, b = _core(cl["fa"], token, tmp_path), _core(cl["fb"], token, tmp_path)
    for v1 in (a, b):
        v1.create_namespace({"metadata": {"name": "kubeflow"}})
        v1.create_namespaced_secret("kubeflow", {"metadata": {"name": "user-gcp-sa"}, "data": {"k": "djE="}})

    # the secrets engineer's case: the Secret write fails once, on every cluster's API (target="kube")
    f = sandbox.fault(SECRET, 500, method="PATCH", target="kube")
    assert f["target"] == "kube" and f["times"] == 1
    assert a.read_namespaced_secret("user-gcp-sa", "kubeflow").data == {"k": "djE="}  # GET: not hit
    t0 = time.time()
    with pytest.raises(client.ApiException) as ei:
        a.patch_namespaced_secret("user-gcp-sa", "kubeflow", {"data": {"k": "djI="}})
    assert ei.value.status == 500
    st = json.loads(ei.value.body)
    assert st["kind"] == "Status" and st["code"] == 500 and st["reason"] == "InternalError"
    assert a.read_namespaced_secret("user-gcp-sa", "kubeflow").data == {"k": "djE="}  # nothing was written
    a.patch_namespaced_secret("user-gcp-sa", "kubeflow", {"data": {"k": "djI="}})  # times=1: used up
    assert sandbox.control.faults() == []
    log = [r for r in sandbox.requests(since=t0) if r.get("api") == "kubernetes" and r["method"] == "PATCH"]
    assert [(r["cluster"], r["status"]) for r in log] == [("fa", 500), ("fa", 200)]

    # a cluster name targets that cluster only; Google's APIs are not touched by kube faults
    sandbox.fault(r"^/api/v1/namespaces$", 503, method="GET", target="fb", times=2)
    sandbox.fault(r".*", 500, target="kube", times=None, method="DELETE")
    assert "kubeflow" in {n.metadata.name for n in a.list_namespace().items}
    for _ in range(2):
        with pytest.raises(client.ApiException) as ei:
            b.list_namespace()
        assert ei.value.status == 503 and ei.value.headers.get("Retry-After") == "1"
    assert "kubeflow" in {n.metadata.name for n in b.list_namespace().items}
    api("container").projects().locations().clusters().list(parent=f"projects/{P}/locations/-").execute()
    sandbox.clear_faults()

    # a Google fault does not touch the clusters
    sandbox.fault(r".*", 503, times=None)
    assert a.read_namespaced_secret("user-gcp-sa", "kubeflow").data == {"k": "djI="}
    sandbox.clear_faults()

    # a rate on a cluster, a custom body, a delay only
    sandbox.fault(r"/secrets/user-gcp-sa$", 429, method="GET", target="fa", rate=0.4, seed=3)
    got = []
    for _ in range(50):
        try:
            a.read_namespaced_secret("user-gcp-sa", "kubeflow")
            got.append(200)
        except client.ApiException as e:
            got.append(e.status)
    assert set(got) == {200, 429} and 8 <= got.count(429) <= 35
    assert [x["hits"] for x in sandbox.control.faults()] == [got.count(429)]
    sandbox.clear_faults()
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "etcdserver: request timed out",
            "reason": "Timeout", "code": 504}
    sandbox.fault(r"/secrets$", 504, method="POST", target="fb", body=body)
    with pytest.raises(client.ApiException) as ei:
        b.create_namespaced_secret("kubeflow", {"metadata": {"name": "other"}})
    assert ei.value.status == 504 and json.loads(ei.value.body)["message"] == "etcdserver: request timed out"
    sandbox.fault(r"/secrets/user-gcp-sa$", None, method="GET", target="fb", delay=0.3)
    t = time.time()
    b.read_namespaced_secret("user-gcp-sa", "kubeflow")
    assert time.time() - t >= 0.3

    # kube faults are kept in the state: after a hard restart they still apply
    sandbox.fault(SECRET, 500, method="PATCH", target="kube", times=None)
    sandbox.restart(hard=True)
    cl2 = {n: api("container").projects().locations().clusters().get(
        name=f"projects/{P}/locations/us-central1-a/clusters/{n}").execute() for n in ("fa", "fb")}
    b2 = _core(cl2["fb"], token, tmp_path)
    wait_until(lambda: _ready(b2), timeout=15)
    with pytest.raises(client.ApiException) as ei:
        b2.patch_namespaced_secret("user-gcp-sa", "kubeflow", {"data": {"k": "djM="}})
    assert ei.value.status == 500


def _ready(v1) -> bool:
    try:
        v1.read_namespace("kubeflow")
        return True
    except Exception:  # noqa: BLE001 - the cluster's API may still be starting
        return False


def test_kube_fault_through_the_cli_and_a_cluster_created_later(sandbox, tmp_path):
    st = str(sandbox.state_dir)
    out = _cli("fault", "--state", st, "--method", "GET", "--path", r"^/api/v1/namespaces/default$",
               "--status", "503", "--times", "1", "--target", "kube")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["target"] == "kube"
    cl = _clusters(sandbox, ["later"])  # the fault was there before the cluster: it applies once it runs
    v1 = _core(cl["later"], _token(), tmp_path)
    with pytest.raises(client.ApiException) as ei:
        v1.read_namespace("default")
    assert ei.value.status == 503 and json.loads(ei.value.body)["reason"] == "ServiceUnavailable"
    assert v1.read_namespace("default").metadata.name == "default"
    listed = json.loads(_cli("fault", "--state", st, "--list").stdout)
    assert listed == []
