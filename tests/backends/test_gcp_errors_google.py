"""Google's error answers, classified the way a user can act on them (issue 10, items 6 and 14). Against the sandbox:
real HTTP, the real clients, the real engine; each answer in Google's own shape (the sandbox reproduces them)."""
from __future__ import annotations

import pytest

from backends.gcp.calls import call, call_storage
from installer.errors import ErrorClass, InstallerError
from installer.plan import Plan, build_plan
from backends.infra.harness import run_infra
from tests.backends.test_infra import answers

CLUSTER_SUB = ("apis", "network", "subnet", "gke-sa", "gke-sa-roles", "cluster")


def _sub(a, ids) -> Plan:
    full = build_plan(a)
    return Plan(a, [full[s] for s in ids])


# ---- item 6: code 8 is capacity or quota, not rate limiting -------------------------------------------------------

@pytest.mark.parametrize("kind,expect", [("stockout", "another zone"), ("quota", "IN_USE_ADDRESSES")])
async def test_gke_create_ending_with_code_8_is_quota_with_a_remedy(sandbox, tmp_path, kind, expect):
    sandbox.enable()
    sandbox.scenario("gke_stockout", zone="us-central1-a", kind=kind)
    a = answers(sandbox)
    fin, events = await run_infra(a, journal_root=tmp_path / "state", plan=_sub(a, CLUSTER_SUB))
    assert fin.status == "failed" and fin.failed == ["cluster"]
    fail = next(e for e in events if e.type == "StepFailed")
    assert fail.error_class == "quota", (fail.message, fail.remedy)
    assert "rate" not in fail.remedy.lower() and "wait a minute" not in fail.remedy
    assert expect.lower() in (fail.message + fail.remedy).lower()
    if kind == "quota":
        assert "fewer or smaller nodes" in fail.remedy
        assert f"https://console.cloud.google.com/iam-admin/quotas?project={a.project}" in fail.remedy
    else:
        assert "us-central1-a" in fail.remedy and "not your quota" in fail.remedy
    creates = [r for r in sandbox.requests(mutating=True) if r["method"] == "POST" and r["path"].endswith("/clusters")
               and r["status"] == 200]
    assert len(creates) == 1  # the operation's failure is not retried as if it were a rate limit


async def test_429_naming_a_resource_quota_is_quota_and_a_rate_limit_is_retried(sandbox):
    sandbox.enable()
    p = sandbox.project
    # RESOURCE_EXHAUSTED whose ErrorInfo names a quota limit that is not a rate (google.rpc.Code 8; ErrorInfo
    # metadata as Google sends it for quota errors: gcp-api-behaviour.md §0)
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                      "message": "Quota 'NETWORKS' exceeded.  Limit: 5.0 globally.",
                      "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RESOURCE_EXHAUSTED",
                                   "domain": "compute.googleapis.com",
                                   "metadata": {"quota_metric": "compute.googleapis.com/networks",
                                                "quota_limit": "NETWORKS-per-project"}}]}}
    sandbox.fault(r"/global/networks$", 429, method="POST", body=body, times=1)
    with pytest.raises(InstallerError) as ei:
        await call("compute", lambda s: s.networks().insert(project=p, body={"name": "n1"}), project=p,
                   what="network n1")
    assert ei.value.error_class is ErrorClass.QUOTA
    assert "networks" in ei.value.remedy.lower() and "rate" not in ei.value.remedy.lower()
    # a per-minute limit is a rate limit: retried, and the call succeeds
    sandbox.fault(r"/v1/projects/.*/services$", 429, times=1)  # Google's per-minute message (sandbox default)
    resp = await call("serviceusage", lambda s: s.services().list(parent=f"projects/{p}", pageSize=5))
    assert resp["services"]


# ---- item 14: a 403 names the permission, a predefined role and the command ---------------------------------------

def _net(p):
    return "compute", lambda s: s.networks().insert(project=p, body={"name": "n1", "autoCreateSubnetworks": False})


def _cluster(p):
    return "container", lambda s: s.projects().locations().clusters().create(
        parent=f"projects/{p}/locations/us-central1-a", body={"cluster": {"name": "c1"}})


def _sa(p):
    return "iam", lambda s: s.projects().serviceAccounts().create(
        name=f"projects/{p}", body={"accountId": "someone-sa", "serviceAccount": {}})


def _policy(p):
    return "cloudresourcemanager", lambda s: s.projects().setIamPolicy(resource=p, body={"policy": {"bindings": []}})


def _sql(p):
    return "sqladmin", lambda s: s.instances().insert(project=p, body={
        "name": "i1", "databaseVersion": "MYSQL_8_0", "region": "us-central1", "settings": {"tier": "db-f1-micro"}})


def _enable(p):
    return "serviceusage", lambda s: s.services().enable(name=f"projects/{p}/services/bigquery.googleapis.com",
                                                         body={})


@pytest.mark.parametrize("permission,request_of,role,named", [
    ("compute.networks.create", _net, "roles/compute.networkAdmin", True),
    ("container.clusters.create", _cluster, "roles/container.admin", True),
    ("iam.serviceAccounts.create", _sa, "roles/iam.serviceAccountAdmin", True),
    ("resourcemanager.projects.setIamPolicy", _policy, "roles/resourcemanager.projectIamAdmin", True),
    ("cloudsql.instances.create", _sql, "roles/cloudsql.admin", False),  # "The client is not authorized ..."
    ("serviceusage.services.enable", _enable, "roles/serviceusage.serviceUsageAdmin", True),
])
async def test_permission_denied_names_permission_role_and_command(sandbox, permission, request_of, role, named):
    sandbox.enable()
    p = sandbox.project
    await call("serviceusage", lambda s: s.services().list(parent=f"projects/{p}", pageSize=1))  # credentials loaded
    sandbox.scenario("missing_permission", permission=permission)
    api, factory = request_of(p)
    with pytest.raises(InstallerError) as ei:
        await call(api, factory, project=p, what="the request")
    e = ei.value
    assert e.error_class is ErrorClass.PERMISSION_DENIED, e.message
    assert e.details["role"] == role and "roles/owner" not in e.remedy
    if named:
        assert e.details["permission"] == permission and permission in e.remedy
    else:
        assert "cloudsql" in e.details["permission"]
    member = f"serviceAccount:{sandbox.caller_email}"
    assert f"`gcloud projects add-iam-policy-binding {p} --member={member} --role={role}`" in e.remedy


async def test_storage_permission_denied_names_permission_and_role(sandbox):
    sandbox.enable()
    p = sandbox.project
    sandbox.scenario("missing_permission", permission="storage.buckets.create")

    def create(client):
        return client.create_bucket(client.bucket("some-new-bucket-x"), project=p, location="us-central1")
    with pytest.raises(InstallerError) as ei:
        await call_storage(p, create, what="bucket some-new-bucket-x")
    e = ei.value
    assert e.error_class is ErrorClass.PERMISSION_DENIED
    assert e.details["permission"] == "storage.buckets.create" and e.details["role"] == "roles/storage.admin"
    assert f"gcloud projects add-iam-policy-binding {p} --member=" in e.remedy and "--role=roles/storage.admin" in e.remedy
