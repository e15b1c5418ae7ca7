import time

import pytest
from googleapiclient.errors import HttpError

from .helpers import api, enable_and_wait, error, shared, wait_until

P = "mlops-demo-project"
pytestmark = pytest.mark.xdist_group("sandbox-test_serviceusage")  # its tests share one sandbox
TOUCHED = ["container", "compute", "iam", "sqladmin", "oslogin", "pubsub", "containerregistry", "artifactregistry",
           "iamcredentials"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    yield from shared(tmp_path_factory)


@pytest.fixture(autouse=True)
def _fresh(sandbox, monkeypatch):
    """Every test starts from a new project's services, no faults, no log."""
    sandbox.apply_env(monkeypatch)
    sandbox.scenario("reset")
    sandbox.scenario("api_disabled", services=TOUCHED)
    sandbox.clear_requests()


def test_list_filter_and_get(sandbox):
    su = api("serviceusage")
    enabled = su.services().list(parent=f"projects/{P}", filter="state:ENABLED", pageSize=200).execute()
    names = {s["config"]["name"] for s in enabled["services"]}
    assert "serviceusage.googleapis.com" in names and "container.googleapis.com" not in names
    s = su.services().get(name=f"projects/{P}/services/container.googleapis.com").execute()
    assert s["state"] == "DISABLED" and s["parent"] == "projects/123456789012"
    assert s["config"]["title"] == "Kubernetes Engine API"


def test_service_disabled_error_body(sandbox):
    with pytest.raises(HttpError) as ei:
        api("compute").networks().list(project=P).execute()
    err = error(ei.value)
    assert ei.value.status_code == 403 and err["status"] == "PERMISSION_DENIED"
    assert err["message"].startswith("Compute Engine API has not been used in project 123456789012 before or it is "
                                     "disabled. Enable it by visiting https://console.developers.google.com/apis/api/"
                                     "compute.googleapis.com/overview?project=123456789012 then retry.")
    info = err["details"][0]
    assert info["reason"] == "SERVICE_DISABLED" and info["metadata"]["service"] == "compute.googleapis.com"
    assert info["metadata"]["activationUrl"].endswith("compute.googleapis.com/overview?project=123456789012")


def test_batch_enable_lifecycle_container_implies_compute_and_propagation(sandbox):
    sandbox.scenario("profile", **{"serviceusage.usable": 150})  # 1.5 s: observable on a loaded machine
    su, comp = api("serviceusage"), api("compute")
    op = su.services().batchEnable(parent=f"projects/{P}", body={"serviceIds": ["container.googleapis.com"]}).execute()
    assert op["name"].startswith("operations/acat.p2-123456789012-") and not op.get("done")
    while not op.get("done"):
        time.sleep(0.02)
        op = su.operations().get(name=op["name"]).execute()
    assert "error" not in op
    assert op["response"]["services"][0]["state"] == "ENABLED"
    compute = su.services().get(name=f"projects/{P}/services/compute.googleapis.com").execute()
    assert compute["state"] == "ENABLED"  # implied
    # done, listed as ENABLED, but not usable yet: SERVICE_DISABLED until propagation
    with pytest.raises(HttpError) as ei:
        comp.networks().list(project=P).execute()
    assert error(ei.value)["details"][0]["reason"] == "SERVICE_DISABLED"

    def usable():
        try:
            return comp.networks().list(project=P).execute()
        except HttpError:
            return None

    nets = wait_until(usable, timeout=10, interval=0.1)
    assert [n["name"] for n in nets["items"]] == ["default"]
    # enabling again: the no-op operation, done at once
    op = su.services().enable(name=f"projects/{P}/services/container.googleapis.com", body={}).execute()
    assert op["name"] == "operations/noop.DONE_OPERATION" and op["done"] is True


def test_batch_enable_limit_and_atomicity(sandbox):
    su = api("serviceusage")
    many = [f"svc{i}.googleapis.com" for i in range(21)]
    with pytest.raises(HttpError) as ei:
        su.services().batchEnable(parent=f"projects/{P}", body={"serviceIds": many}).execute()
    assert ei.value.status_code == 400
    with pytest.raises(HttpError) as ei:
        su.services().batchEnable(parent=f"projects/{P}", body={
            "serviceIds": ["iam.googleapis.com", "nonexistent.googleapis.com"]}).execute()
    assert ei.value.status_code == 403
    assert error(ei.value)["details"][0]["reason"] == "SERVICE_CONFIG_NOT_FOUND_OR_PERMISSION_DENIED"
    iam = su.services().get(name=f"projects/{P}/services/iam.googleapis.com").execute()
    assert iam["state"] == "DISABLED"
    assert not sandbox.requests(mutating=True)[-1:] or all(r["status"] >= 400 for r in sandbox.requests(mutating=True))


def test_googleapiclient_retries_injected_503(sandbox):
    sandbox.fault(r"^/v1/projects/[^/]+/services$", 503, method="GET", times=2)
    su = api("serviceusage")
    req = su.services().list(parent=f"projects/{P}", filter="state:ENABLED")
    req._rand = lambda: 0.05  # the client's own backoff jitter, made small (its retry logic is untouched)
    resp = req.execute(num_retries=3)
    assert resp["services"]
    statuses = [r["status"] for r in sandbox.requests(api="serviceusage")]
    assert statuses == [503, 503, 200]
    # without retries the 503 surfaces
    sandbox.fault(r"/services$", 503, times=1)
    with pytest.raises(HttpError) as ei:
        su.services().list(parent=f"projects/{P}").execute()
    assert ei.value.status_code == 503 and error(ei.value)["status"] == "UNAVAILABLE"


def test_enable_operation_fault_ends_in_error(sandbox):
    sandbox.fault(op="serviceusage.enable", message="[160009] with failed services [sqladmin.googleapis.com]")
    su = api("serviceusage")
    op = su.services().enable(name=f"projects/{P}/services/sqladmin.googleapis.com", body={}).execute()
    while not op.get("done"):
        time.sleep(0.02)
        op = su.operations().get(name=op["name"]).execute()
    assert "160009" in op["error"]["message"]
    assert su.services().get(name=f"projects/{P}/services/sqladmin.googleapis.com").execute()["state"] == "DISABLED"
    # and a real enable works afterwards
    enable_and_wait(su, P, ["sqladmin.googleapis.com"], sandbox.speed)
    assert su.services().get(name=f"projects/{P}/services/sqladmin.googleapis.com").execute()["state"] == "ENABLED"


def test_api_disabled_scenario(sandbox):
    sandbox.enable("compute")
    api("compute").regions().list(project=P).execute()
    sandbox.scenario("api_disabled", service="compute")
    with pytest.raises(HttpError) as ei:
        api("compute").regions().list(project=P).execute()
    assert error(ei.value)["details"][0]["reason"] == "SERVICE_DISABLED"


def test_rate_limit_403_is_retried_by_the_client_but_a_plain_403_is_not(sandbox):
    su = api("serviceusage")
    sandbox.fault(r"/services$", 403, method="GET", times=1, reason="rateLimitExceeded",
                  message="Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute'")
    req = su.services().list(parent=f"projects/{P}")
    req._rand = lambda: 0.05  # the client's own jitter, made small
    assert req.execute(num_retries=2)["services"]
    sandbox.fault(r"/services$", 403, method="GET", times=1)
    req = su.services().list(parent=f"projects/{P}")
    req._rand = lambda: 0.05
    with pytest.raises(HttpError) as ei:
        req.execute(num_retries=2)
    assert ei.value.status_code == 403
    assert [r["status"] for r in sandbox.requests(api="serviceusage")] == [403, 200, 403]
