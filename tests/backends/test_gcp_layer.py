"""The Google client layer against the sandbox: real HTTP, real clients."""
from __future__ import annotations

import asyncio

import pytest

from backends.gcp import auth, operations
from backends.gcp.calls import call, call_sync
from backends.gcp.errors import ApiError
from installer.errors import ErrorClass, InstallerError


def test_access_token_and_endpoints(sandbox):
    tok = auth.access_token()
    assert isinstance(tok, str) and tok
    assert auth.access_token() == tok  # cached while valid
    email, source = auth.account()
    assert email == sandbox.caller_email and source == "adc-service-account"


async def test_transient_errors_are_retried(sandbox):
    p = sandbox.project
    sandbox.fault(r"/v1/projects/.*/services$", 503, times=2)
    sandbox.fault(r"/v1/projects/.*/services$", 429, times=1)
    sandbox.clear_requests()
    resp = await call("serviceusage", lambda s: s.services().list(parent=f"projects/{p}", pageSize=5))
    assert resp["services"]
    statuses = [r["status"] for r in sandbox.requests() if r["path"].endswith("/services")]
    assert statuses == [503, 503, 429, 200]


def test_sync_call_and_not_found_raw(sandbox):
    p = sandbox.project
    with pytest.raises(ApiError) as ei:
        call_sync("serviceusage", lambda s: s.services().get(name=f"projects/{p}/services/nope.googleapis.com"),
                  raw=True)
    assert ei.value.http in (403, 404)


async def test_api_disabled_is_classified_with_activation_url(sandbox):
    p = sandbox.project
    with pytest.raises(InstallerError) as ei:
        await call("iam", lambda s: s.projects().serviceAccounts().list(name=f"projects/{p}"), project=p)
    e = ei.value
    assert e.error_class == ErrorClass.API_DISABLED
    assert "iam.googleapis.com" in e.remedy and "console.developers.google.com" in e.details["activation_url"]


async def test_permission_denied_names_permission_and_role(sandbox):
    p = sandbox.project
    sandbox.enable("iam")
    sandbox.scenario("missing_permission", permission="iam.serviceAccounts.create")
    with pytest.raises(InstallerError) as ei:
        await call("iam", lambda s: s.projects().serviceAccounts().create(
            name=f"projects/{p}", body={"accountId": "someone-sa"}), project=p)
    e = ei.value
    assert e.error_class == ErrorClass.PERMISSION_DENIED
    assert e.details["permission"] == "iam.serviceAccounts.create"
    assert "roles/iam.serviceAccountAdmin" in e.remedy


async def test_operation_waiter_and_operation_error(sandbox):
    p = sandbox.project
    op = await call("serviceusage", lambda s: s.services().batchEnable(
        parent=f"projects/{p}", body={"serviceIds": ["iam.googleapis.com", "sqladmin.googleapis.com"]}))
    ref = operations.op_ref("serviceusage", op, p)
    done = await operations.wait(ref, what="enabling", initial=op)
    assert done.get("done") and not done.get("error")
    # already enabled: the noop operation is done at once and never polled
    sandbox.clear_requests()
    op = await call("serviceusage", lambda s: s.services().enable(
        name=f"projects/{p}/services/iam.googleapis.com", body={}))
    assert op["name"].endswith("DONE_OPERATION")
    await operations.wait(operations.op_ref("serviceusage", op, p), initial=op)
    assert len([r for r in sandbox.requests() if "operations" in r["path"]]) == 0
    # an operation that ends in error raises its message
    sandbox.fault(op="serviceusage.enable", message="[160009] boom with failed services")
    op = await call("serviceusage", lambda s: s.services().enable(
        name=f"projects/{p}/services/dataflow.googleapis.com", body={}))
    with pytest.raises(InstallerError) as ei:
        await operations.wait(operations.op_ref("serviceusage", op, p), what="enabling dataflow", initial=op)
    assert "boom" in ei.value.message


async def test_calls_run_concurrently(sandbox):
    """Nothing in the layer serialises requests: 6 slow reads take about as long as one."""
    p = sandbox.project
    sandbox.fault(r"/v1/projects/.*/services$", None, delay=0.4, times=6, method="GET")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.gather(*(call("serviceusage", lambda s: s.services().list(parent=f"projects/{p}", pageSize=1))
                           for _ in range(6)))
    assert loop.time() - t0 < 1.6


async def test_quota_and_org_policy_and_name_taken_classes(sandbox):
    p = sandbox.project
    sandbox.enable()
    body = {"cluster": {"name": "big", "network": "default", "subnetwork": "default",
                        "nodePools": [{"name": "p", "initialNodeCount": 10,
                                       "config": {"machineType": "e2-standard-8"}}]}}
    with pytest.raises(InstallerError) as ei:
        await call("container", lambda s: s.projects().locations().clusters().create(
            parent=f"projects/{p}/locations/us-central1-a", body=body), project=p, region="us-central1",
            what="cluster big")
    e = ei.value
    assert e.error_class == ErrorClass.QUOTA, e.message
    assert e.details["quota"] == "CPUS" and "us-central1" in e.remedy

    sa = await call("iam", lambda s: s.projects().serviceAccounts().create(
        name=f"projects/{p}", body={"accountId": "keyed-sa"}))
    sandbox.scenario("org_policy_keys", enforced=True)
    with pytest.raises(InstallerError) as ei:
        await call("iam", lambda s: s.projects().serviceAccounts().keys().create(
            name=f"projects/{p}/serviceAccounts/{sa['email']}", body={}), project=p,
            retry_if=lambda err: err.http == 404)
    e = ei.value
    assert e.error_class == ErrorClass.ORG_POLICY
    assert "disableServiceAccountKeyCreation" in e.details["constraint"] and "workload-identity" in e.remedy

    with pytest.raises(InstallerError) as ei:
        await call("iam", lambda s: s.projects().serviceAccounts().create(
            name=f"projects/{p}", body={"accountId": "keyed-sa"}), project=p, what="service account keyed-sa")
    assert ei.value.error_class == ErrorClass.NAME_TAKEN and "keyed-sa" in ei.value.remedy
