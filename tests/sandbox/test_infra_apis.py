"""Compute, Container, SQL Admin with the real discovery clients (one sandbox for the module, distinct names)."""

import base64
import ssl
import tempfile
import time
import urllib.request

import google.auth
import pytest
from google.auth.transport.requests import Request
from googleapiclient.errors import HttpError

from .helpers import TOKEN_SCOPES, api, error, shared, wait_until

P = "mlops-demo-project"
pytestmark = pytest.mark.xdist_group("sandbox-test_infra_apis")  # its tests share one sandbox
SPEED = 0.002


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    yield from shared(tmp_path_factory, SPEED,
                      enable=("compute", "container", "iam", "sqladmin", "cloudresourcemanager"))


@pytest.fixture(autouse=True)
def _env(sb, monkeypatch):
    sb.apply_env(monkeypatch)
    sb.control.scenario("reset")


def _network(comp, name, subnet=None, cidr="10.128.0.0/20", region="us-central1"):
    op = comp.networks().insert(project=P, body={"name": name, "autoCreateSubnetworks": False}).execute()
    while op["status"] != "DONE":
        op = comp.globalOperations().wait(project=P, operation=op["name"]).execute()
    if subnet:
        op = comp.subnetworks().insert(project=P, region=region, body={
            "name": subnet, "network": f"projects/{P}/global/networks/{name}", "ipCidrRange": cidr,
            "privateIpGoogleAccess": True}).execute()
        while op["status"] != "DONE":
            op = comp.regionOperations().wait(project=P, region=region, operation=op["name"]).execute()


def test_regions_zones_and_quota(sb):
    comp = api("compute")
    regions = {r["name"]: r for r in comp.regions().list(project=P).execute()["items"]}
    assert "us-central1" in regions
    cpus = next(q for q in regions["us-central1"]["quotas"] if q["metric"] == "CPUS")
    assert cpus["limit"] == 24.0
    assert comp.zones().get(project=P, zone="us-central1-a").execute()["region"].endswith("/regions/us-central1")
    mt = comp.machineTypes().get(project=P, zone="us-central1-a", machineType="e2-standard-4").execute()
    assert (mt["guestCpus"], mt["memoryMb"]) == (4, 16384)
    with pytest.raises(HttpError):
        comp.machineTypes().get(project=P, zone="us-central1-a", machineType="e2-huge-999").execute()
    with pytest.raises(HttpError) as ei:
        comp.regions().get(project=P, region="mars-north1").execute()
    assert ei.value.status_code == 404 and error(ei.value)["errors"][0]["reason"] == "notFound"


def test_network_and_subnet_lifecycle(sb):
    comp = api("compute")
    # windows long enough to observe on a loaded machine
    sb.scenario("profile", **{"compute.subnet_not_ready": 300, "compute.network_insert": 300})
    op = comp.networks().insert(project=P, body={"name": "life-net", "autoCreateSubnetworks": False}).execute()
    assert op["kind"] == "compute#operation" and op["status"] in ("PENDING", "RUNNING")
    assert op["targetLink"].endswith(f"/projects/{P}/global/networks/life-net")
    with pytest.raises(HttpError) as ei:  # the name is taken at once
        comp.networks().insert(project=P, body={"name": "life-net", "autoCreateSubnetworks": False}).execute()
    assert ei.value.status_code == 409 and error(ei.value)["errors"][0]["reason"] == "alreadyExists"
    with pytest.raises(HttpError):  # not visible until the operation is done
        comp.networks().get(project=P, network="life-net").execute()
    done = comp.globalOperations().wait(project=P, operation=op["name"]).execute()
    while done["status"] != "DONE":  # wait may return early (as Google's does, after ≤ 2 min)
        done = comp.globalOperations().wait(project=P, operation=op["name"]).execute()
    assert "error" not in done
    assert comp.networks().get(project=P, network="life-net").execute()["autoCreateSubnetworks"] is False
    op = comp.subnetworks().insert(project=P, region="us-central1", body={
        "name": "life-subnet", "network": f"projects/{P}/global/networks/life-net", "ipCidrRange": "10.128.0.0/14",
        "privateIpGoogleAccess": True}).execute()
    assert op["region"].endswith("/regions/us-central1")
    polled = wait_until(lambda: (o := comp.regionOperations().get(project=P, region="us-central1",
                                                                  operation=op["name"]).execute())["status"] == "DONE"
                        and o)
    assert polled["progress"] == 100
    # just created: not ready for a short window
    with pytest.raises(HttpError) as ei:
        comp.subnetworks().delete(project=P, region="us-central1", subnetwork="life-subnet").execute()
    assert error(ei.value)["errors"][0]["reason"] == "resourceNotReady"
    with pytest.raises(HttpError) as ei:
        comp.networks().delete(project=P, network="life-net").execute()
    assert error(ei.value)["errors"][0]["reason"] == "resourceInUseByAnotherResource"
    time.sleep(300 * SPEED + 0.02)
    op = comp.subnetworks().delete(project=P, region="us-central1", subnetwork="life-subnet").execute()
    while op["status"] != "DONE":
        op = comp.regionOperations().wait(project=P, region="us-central1", operation=op["name"]).execute()
    op = comp.networks().delete(project=P, network="life-net").execute()
    while op["status"] != "DONE":
        op = comp.globalOperations().wait(project=P, operation=op["name"]).execute()
    with pytest.raises(HttpError) as ei:
        comp.networks().get(project=P, network="life-net").execute()
    assert ei.value.status_code == 404
    bad = {"name": "Bad_Name", "autoCreateSubnetworks": False}
    with pytest.raises(HttpError) as ei:
        comp.networks().insert(project=P, body=bad).execute()
    assert error(ei.value)["errors"][0]["reason"] == "invalid"


def _cluster_body(name, net, sub, sa=None, nodes=1, machine="e2-standard-4"):
    cfg = {"machineType": machine, "oauthScopes": ["https://www.googleapis.com/auth/cloud-platform"]}
    if sa:
        cfg["serviceAccount"] = sa
    return {"cluster": {"name": name, "network": net, "subnetwork": sub, "ipAllocationPolicy": {"useIpAliases": True},
                        "nodePools": [{"name": "default-pool", "initialNodeCount": nodes, "config": cfg}],
                        "releaseChannel": {"channel": "REGULAR"},
                        "workloadIdentityConfig": {"workloadPool": f"{P}.svc.id.goog"}}}


def test_gke_cluster_lifecycle_with_kubernetes_endpoint(sb):
    comp, gke = api("compute"), api("container")
    _network(comp, "gke-net", "gke-subnet")
    time.sleep(5 * SPEED + 0.02)
    sb.scenario("profile", **{"iam.sa_visible": 500, "container.create_zonal": 750, "container.delete": 400})
    sa = api("iam").projects().serviceAccounts().create(name=f"projects/{P}", body={"accountId": "gke-nodes"}).execute()
    clusters = gke.projects().locations().clusters()
    parent = f"projects/{P}/locations/us-central1-a"
    with pytest.raises(HttpError) as ei:  # node SA not yet visible to GKE
        clusters.create(parent=parent, body=_cluster_body("kfp-cluster", "gke-net", "gke-subnet", sa["email"])).execute()
    assert "does not exist" in error(ei.value)["message"]
    time.sleep(500 * SPEED + 0.02)
    with pytest.raises(HttpError) as ei:
        clusters.create(parent=parent, body=_cluster_body("Bad_Name", "gke-net", "gke-subnet")).execute()
    assert ei.value.status_code == 400
    op = clusters.create(parent=parent, body=_cluster_body("kfp-cluster", "gke-net", "gke-subnet", sa["email"])).execute()
    assert op["operationType"] == "CREATE_CLUSTER" and op["status"] == "RUNNING"
    name = f"{parent}/clusters/kfp-cluster"
    c = clusters.get(name=name).execute()
    assert c["status"] == "PROVISIONING"
    assert c["workloadIdentityConfig"]["workloadPool"] == f"{P}.svc.id.goog"
    with pytest.raises(HttpError) as ei:
        clusters.create(parent=parent, body=_cluster_body("kfp-cluster", "gke-net", "gke-subnet")).execute()
    assert ei.value.status_code == 409 and error(ei.value)["message"].startswith("Already exists: ")
    with pytest.raises(HttpError) as ei:
        clusters.delete(name=name).execute()
    assert "incompatible operation" in error(ei.value)["message"]
    wait_until(lambda: gke.projects().locations().operations().get(
        name=f"{parent}/operations/{op['name']}").execute()["status"] == "DONE", timeout=20)
    c = clusters.get(name=name).execute()
    assert c["status"] == "RUNNING" and c["endpoint"].startswith("127.0.0.1:")
    assert [x["name"] for x in clusters.list(parent=f"projects/{P}/locations/-").execute()["clusters"]] == [
        "kfp-cluster"]
    ca = base64.b64decode(c["masterAuth"]["clusterCaCertificate"]).decode()
    if ca:  # the Kubernetes half is there: reach it like the installer would
        creds, _ = google.auth.default(scopes=TOKEN_SCOPES)
        creds.refresh(Request())
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
            f.write(ca)
            f.flush()
            ctx = ssl.create_default_context(cafile=f.name)
            req = urllib.request.Request(f"https://{c['endpoint']}/version",
                                         headers={"Authorization": f"Bearer {creds.token}"})
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                assert r.status == 200
    # IAM now accepts the workload identity member (the pool exists)
    sas = api("iam").projects().serviceAccounts()
    member = f"serviceAccount:{P}.svc.id.goog[kubeflow/pipeline-runner]"
    sas.setIamPolicy(resource=sa["name"], body={"policy": {"bindings": [
        {"role": "roles/iam.workloadIdentityUser", "members": [member]}]}}).execute()
    # regional quota is consumed by the cluster
    region = api("compute").regions().get(project=P, region="us-central1").execute()
    assert next(q for q in region["quotas"] if q["metric"] == "CPUS")["usage"] == 4.0
    op = clusters.delete(name=name).execute()
    assert clusters.get(name=name).execute()["status"] == "STOPPING"
    wait_until(lambda: gke.projects().locations().operations().get(
        name=f"{parent}/operations/{op['name']}").execute()["status"] == "DONE", timeout=20)
    with pytest.raises(HttpError) as ei:
        clusters.get(name=name).execute()
    assert ei.value.status_code == 404 and error(ei.value)["message"].startswith("Not found: ")


def test_gke_quota_and_failing_operation(sb):
    comp, gke = api("compute"), api("container")
    _network(comp, "quota-net", "quota-subnet", cidr="10.64.0.0/20", region="us-east1")
    time.sleep(5 * SPEED + 0.02)
    clusters = gke.projects().locations().clusters()
    parent = f"projects/{P}/locations/us-east1-b"
    sb.scenario("cpu_quota", region="us-east1", limit=8)
    with pytest.raises(HttpError) as ei:
        clusters.create(parent=parent, body=_cluster_body("too-big", "quota-net", "quota-subnet", nodes=3)).execute()
    assert ei.value.status_code == 403
    assert error(ei.value)["message"].startswith("Insufficient regional quota to satisfy request: resource \"CPUS\": "
                                                 "request requires '12.0' and is short '4.0'")
    sb.fault(op="container.create", message="Try a different location: GCE_STOCKOUT")
    op = clusters.create(parent=parent, body=_cluster_body("stocked-out", "quota-net", "quota-subnet")).execute()
    done = wait_until(lambda: (o := gke.projects().locations().operations().get(
        name=f"{parent}/operations/{op['name']}").execute())["status"] == "DONE" and o, timeout=20)
    assert done["error"]["message"] == "Try a different location: GCE_STOCKOUT"
    assert done["statusMessage"] == "Try a different location: GCE_STOCKOUT"
    c = clusters.get(name=f"{parent}/clusters/stocked-out").execute()
    assert c["status"] == "ERROR"


def test_cloud_sql_instance_users_and_one_op_at_a_time(sb):
    sql = api("sqladmin", "v1beta4")
    body = {"name": "ml-metadata", "databaseVersion": "MYSQL_8_0", "region": "us-central1",
            "settings": {"tier": "db-n1-standard-2", "dataDiskSizeGb": 20, "storageAutoResize": True,
                         "ipConfiguration": {"ipv4Enabled": True, "authorizedNetworks": []},
                         "deletionProtectionEnabled": True}}
    op = sql.instances().insert(project=P, body=body).execute()
    assert op["kind"] == "sql#operation" and op["operationType"] == "CREATE"
    inst = sql.instances().get(project=P, instance="ml-metadata").execute()
    assert inst["state"] == "PENDING_CREATE" and inst["connectionName"] == f"{P}:us-central1:ml-metadata"
    with pytest.raises(HttpError) as ei:
        sql.instances().insert(project=P, body=body).execute()
    assert ei.value.status_code == 409 and error(ei.value)["errors"][0]["reason"] == "instanceAlreadyExists"
    with pytest.raises(HttpError) as ei:
        sql.users().insert(project=P, instance="ml-metadata", body={"name": "kfp", "password": "s3cret"}).execute()
    assert ei.value.status_code == 409 and error(ei.value)["errors"][0]["reason"] == "operationInProgress"
    wait_until(lambda: sql.operations().get(project=P, operation=op["name"]).execute()["status"] == "DONE", 20)
    assert sql.instances().get(project=P, instance="ml-metadata").execute()["state"] == "RUNNABLE"
    uop = sql.users().insert(project=P, instance="ml-metadata", body={"name": "kfp", "password": "s3cret"}).execute()
    assert uop["operationType"] == "CREATE_USER"
    wait_until(lambda: sql.operations().get(project=P, operation=uop["name"]).execute()["status"] == "DONE")
    users = sql.users().list(project=P, instance="ml-metadata").execute()["items"]
    assert {(u["name"], u["host"]) for u in users} == {("root", "%"), ("kfp", "%")}
    assert all("password" not in u for u in users)
    upd = sql.users().update(project=P, instance="ml-metadata", name="kfp", host="%", body={"password": "n3w"}).execute()
    assert upd["operationType"] == "UPDATE_USER"
    wait_until(lambda: sql.operations().get(project=P, operation=upd["name"]).execute()["status"] == "DONE")
    with pytest.raises(HttpError) as ei:  # deletion protection
        sql.instances().delete(project=P, instance="ml-metadata").execute()
    assert ei.value.status_code == 400
    # the same service through the v1 paths
    v1 = api("sqladmin", "v1")
    assert v1.instances().list(project=P).execute()["items"][0]["name"] == "ml-metadata"
    assert "sql/v1beta4" not in v1.instances().get(project=P, instance="ml-metadata").execute()["selfLink"]


def test_cloud_sql_operation_fault(sb):
    sql = api("sqladmin", "v1beta4")
    sb.fault(op="sql.create", message="Internal error while creating the instance.")
    op = sql.instances().insert(project=P, body={"name": "doomed-db", "region": "us-central1",
                                                 "settings": {"tier": "db-f1-micro"}}).execute()
    done = wait_until(lambda: (o := sql.operations().get(project=P, operation=op["name"]).execute())["status"] ==
                      "DONE" and o, 20)
    assert done["error"]["errors"][0]["message"] == "Internal error while creating the instance."
    assert sql.instances().get(project=P, instance="doomed-db").execute()["state"] == "FAILED"


def test_cloud_sql_name_reuse_window(sb):
    sql = api("sqladmin", "v1beta4")
    sb.scenario("profile", **{"sql.delete": 300})
    body = {"name": "short-lived", "region": "us-central1", "settings": {"tier": "db-f1-micro"}}
    op = sql.instances().insert(project=P, body=body).execute()
    wait_until(lambda: sql.operations().get(project=P, operation=op["name"]).execute()["status"] == "DONE", 20)
    op = sql.instances().delete(project=P, instance="short-lived").execute()
    assert sql.instances().get(project=P, instance="short-lived").execute()["state"] == "PENDING_DELETE"
    wait_until(lambda: sql.operations().get(project=P, operation=op["name"]).execute()["status"] == "DONE", 20)
    with pytest.raises(HttpError) as ei:
        sql.instances().get(project=P, instance="short-lived").execute()
    assert ei.value.status_code == 404 and error(ei.value)["errors"][0]["reason"] == "instanceDoesNotExist"
    sb.scenario("sql_name_reuse", seconds=7 * 86400)
    with pytest.raises(HttpError) as ei:
        sql.instances().insert(project=P, body=body).execute()
    assert ei.value.status_code == 409 and "one week from the deletion date" in error(ei.value)["message"]
    sb.scenario("reset")  # today's rule: the name is free at once
    sql.instances().insert(project=P, body=body).execute()
