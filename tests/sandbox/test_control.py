"""Control API, CLI, request log, faults, and restarts on the same state."""

import json
import os
import subprocess
import sys
import time

import pytest
import requests
from google.cloud import storage
from googleapiclient.errors import HttpError

from .helpers import TOKEN_SCOPES, api, error, network_and_subnet

P = "mlops-demo-project"


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True, text=True, timeout=30,
                          env=env or os.environ)


def test_env_command_prints_the_exports(sandbox):
    out = _cli("env", "--state", str(sandbox.state_dir))
    assert out.returncode == 0, out.stderr
    lines = dict(line[len("export "):].split("=", 1) for line in out.stdout.splitlines())
    assert lines["CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE"] == f"{sandbox.url}/compute/v1/"
    for k in ("SERVICEUSAGE", "CLOUDRESOURCEMANAGER", "IAM", "CONTAINER", "SQL"):
        assert lines[f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{k}"] == f"{sandbox.url}/"
    assert lines["STORAGE_EMULATOR_HOST"] == sandbox.url
    assert lines["CLOUDSDK_AUTH_TOKEN_HOST"] == f"{sandbox.url}/token"
    assert lines["CLOUDSDK_CORE_PROJECT"] == P and lines["CLOUDSDK_CORE_CHECK_GCE_METADATA"] == "false"
    assert lines["MLOPS_INSTALL_TIME_SCALE"] == "0.01" and lines["MLOPS_SANDBOX_URL"] == sandbox.url
    key = json.loads(open(lines["GOOGLE_APPLICATION_CREDENTIALS"]).read())
    assert key["token_uri"] == f"{sandbox.url}/token"
    from cryptography.hazmat.primitives import serialization
    assert serialization.load_pem_private_key(key["private_key"].encode(), password=None).key_size >= 2048
    assert oct(os.stat(lines["GOOGLE_APPLICATION_CREDENTIALS"]).st_mode & 0o777) == "0o600"
    js = json.loads(_cli("env", "--state", str(sandbox.state_dir), "--json").stdout)
    assert js == sandbox.env
    # the same through the product's command line
    mlops = os.path.join(os.path.dirname(sys.executable), "mlops-install")
    out = subprocess.run([mlops, "sandbox", "env", "--state", str(sandbox.state_dir), "--json"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == sandbox.env


def test_one_sandbox_per_state_dir(sandbox):
    from sandbox.launcher import start_background

    again = start_background(sandbox.state_dir, 0.01)
    assert again.attached and again.pid == sandbox.pid and again.env == sandbox.env
    out = _cli("serve", "--state", str(sandbox.state_dir))
    assert out.returncode != 0 and "another sandbox is already serving" in out.stderr


def test_cli_fault_scenario_requests(sandbox):
    st = str(sandbox.state_dir)
    out = _cli("fault", "--state", st, "--method", "GET", "--path", "/storage/v1/b$", "--status", "429",
               "--times", "1")
    assert out.returncode == 0, out.stderr
    client = storage.Client(project=P)
    with pytest.raises(Exception, match="429|Quota"):
        list(client.list_buckets(retry=None))
    assert list(client.list_buckets()) == []
    assert _cli("scenario", "--state", st, "bucket_taken", "bucket=taken-name").returncode == 0
    assert json.loads(_cli("scenario", "--state", st).stdout)["taken_buckets"] == ["taken-name"]
    bad = _cli("scenario", "--state", st, "no_such_scenario")
    assert bad.returncode == 1 and "unknown scenario" in bad.stderr
    out = _cli("requests", "--state", st)
    assert "429 GET    /storage/v1/b" in out.stdout
    assert _cli("requests", "--state", st, "--clear").returncode == 0
    assert sandbox.requests() == []


def test_faults_delay_times_method_and_body(sandbox):
    su = api("serviceusage")
    f = sandbox.fault(r"/services/storage\.googleapis\.com$", 404, method="GET", times=None,
                      body={"error": {"code": 404, "message": "custom", "status": "NOT_FOUND"}})
    for _ in range(2):
        with pytest.raises(HttpError) as ei:
            su.services().get(name=f"projects/{P}/services/storage.googleapis.com").execute()
        assert error(ei.value)["message"] == "custom"
    sandbox.control.remove_fault(f["id"])
    assert su.services().get(name=f"projects/{P}/services/storage.googleapis.com").execute()["state"] == "ENABLED"
    sandbox.fault(r"/services$", None, delay=0.3, times=1)
    t = time.time()
    su.services().list(parent=f"projects/{P}").execute()
    assert time.time() - t >= 0.3
    sandbox.fault(r"/services$", 500, method="POST", times=1)  # wrong method: not hit
    su.services().list(parent=f"projects/{P}").execute()
    assert len(sandbox.control.faults()) == 1


def test_request_log_marks_mutations(sandbox):
    sandbox.enable("cloudresourcemanager", "iam")
    crm = api("cloudresourcemanager")
    sandbox.clear_requests()
    crm.projects().getIamPolicy(resource=P, body={}).execute()
    crm.projects().testIamPermissions(resource=P, body={"permissions": ["a.b.c"]}).execute()
    assert sandbox.requests(mutating=True) == []
    api("iam").projects().serviceAccounts().create(name=f"projects/{P}", body={"accountId": "logged-sa"}).execute()
    muts = sandbox.requests(mutating=True)
    assert [(r["method"], r["path"], r["status"]) for r in muts] == [
        ("POST", f"/v1/projects/{P}/serviceAccounts", 200)]
    entry = muts[0]
    assert set(entry) >= {"method", "path", "status", "time", "mutating", "api"}
    assert "Authorization" not in json.dumps(sandbox.requests())


def test_restart_keeps_state_and_time_keeps_going(sandbox):
    sandbox.enable("compute", "iam")
    comp = api("compute")
    api("iam").projects().serviceAccounts().create(name=f"projects/{P}", body={"accountId": "survivor"}).execute()
    storage.Client(project=P).create_bucket("survivor-bucket")
    op = comp.networks().insert(project=P, body={"name": "slow-net", "autoCreateSubnetworks": False}).execute()
    sandbox.fault(r"/never$", 500, times=3)
    port, key = sandbox.port, sandbox.key_file.read_text()
    sandbox.restart(hard=True)  # SIGKILL: no goodbye
    assert sandbox.port == port and sandbox.key_file.read_text() == key
    time.sleep(22 * sandbox.speed)
    done = comp.globalOperations().get(project=P, operation=op["name"]).execute()
    assert done["status"] == "DONE"
    assert comp.networks().get(project=P, network="slow-net").execute()["name"] == "slow-net"
    sas = api("iam").projects().serviceAccounts().list(name=f"projects/{P}").execute()["accounts"]
    assert "survivor@mlops-demo-project.iam.gserviceaccount.com" in [a["email"] for a in sas]
    assert storage.Client(project=P).get_bucket("survivor-bucket").name == "survivor-bucket"
    assert [f["path"] for f in sandbox.control.faults()] == ["/never$"]
    sandbox.restart()  # SIGTERM
    assert comp.networks().get(project=P, network="slow-net").execute()["name"] == "slow-net"


def test_unknown_path_and_health(sandbox):
    r = requests.get(sandbox.url + "/v1/nothing/here", timeout=5)
    assert r.status_code == 404 and r.json()["error"]["code"] == 404
    h = requests.get(sandbox.url + "/_sandbox/health", timeout=5).json()
    assert h["ok"] and h["pid"] == sandbox.pid and h["speed"] == 0.01


def test_running_cluster_comes_back_after_restart(sandbox):
    import base64
    import ssl
    import tempfile
    import urllib.request

    import google.auth
    from google.auth.transport.requests import Request

    sandbox.enable("compute", "container")
    sandbox.scenario("profile", **{"compute.network_insert": 1, "compute.subnetwork_insert": 1,
                                   "compute.subnet_not_ready": 0, "container.create_zonal": 10})
    comp, gke = api("compute"), api("container")
    network_and_subnet(comp, P, "k-net", "k-sub")
    parent = f"projects/{P}/locations/us-central1-c"
    gke.projects().locations().clusters().create(parent=parent, body={"cluster": {
        "name": "k-cluster", "network": "k-net", "subnetwork": "k-sub",
        "nodePools": [{"name": "default-pool", "initialNodeCount": 1, "config": {"machineType": "e2-standard-4"}}]}}
    ).execute()
    get = gke.projects().locations().clusters().get(name=f"{parent}/clusters/k-cluster")
    deadline = time.time() + 10
    while get.execute()["status"] != "RUNNING":
        assert time.time() < deadline
        time.sleep(0.05)
    before = get.execute()
    ca = base64.b64decode(before["masterAuth"]["clusterCaCertificate"]).decode()
    if not ca:
        pytest.skip("the Kubernetes half (sandbox/kube) is not there")
    sandbox.restart(hard=True)
    after = api("container").projects().locations().clusters().get(name=f"{parent}/clusters/k-cluster").execute()
    assert after["status"] == "RUNNING"
    assert after["masterAuth"]["clusterCaCertificate"] == before["masterAuth"]["clusterCaCertificate"]
    creds, _ = google.auth.default(scopes=TOKEN_SCOPES)
    creds.refresh(Request())
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
        f.write(ca)
        f.flush()
        req = urllib.request.Request(f"https://{after['endpoint']}/version",
                                     headers={"Authorization": f"Bearer {creds.token}"})
        with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=f.name), timeout=10) as r:
            assert r.status == 200
    # the request log survived the restart too, and now holds the Kubernetes call
    assert any(r.get("api") == "kubernetes" for r in sandbox.requests())
    assert any(r["path"].endswith("/clusters") and r["method"] == "POST" for r in sandbox.requests())


def test_state_files_are_owner_only(sandbox):
    """The sandbox's state holds secrets (issued keys, the clusters' Secrets): nothing in it is group/world readable."""
    import stat

    sandbox.enable()
    sandbox.clear_requests()
    files = [p for p in sandbox.state_dir.rglob("*") if p.is_file()]
    assert any(p.name == "state.json" for p in files), files
    loose = [str(p) for p in files if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert loose == []
