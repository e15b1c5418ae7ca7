"""The infrastructure steps against the sandbox: real HTTP, real clients, the real engine."""
from __future__ import annotations

import asyncio
import collections
import json
import re

import pytest

from backends.infra.harness import infra_plan, run_infra
from installer.answers import Answers
from secrets_kfp_support import kfp_fixture

CREATE_PATTERNS = {
    "network": ("POST", r"/compute/v1/projects/[^/]+/global/networks$"),
    "subnet": ("POST", r"/compute/v1/projects/[^/]+/regions/[^/]+/subnetworks$"),
    "service account": ("POST", r"/v1/projects/[^/]+/serviceAccounts$"),
    "cluster": ("POST", r"/v1/projects/[^/]+/locations/[^/]+/clusters$"),
    "sql instance": ("POST", r"/sql/v1beta4/projects/[^/]+/instances$"),
    "sql user": ("POST", r"/sql/v1beta4/projects/[^/]+/instances/[^/]+/users$"),
    "bucket": ("POST", r"/storage/v1/b$"),
}


def answers(sandbox, **kw) -> Answers:
    a = Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix="demo")
    a.kfp.manifests = str(kfp_fixture())  # a local folder: no kustomize, no network
    for k, v in kw.items():
        setattr(a, k, v)
    return a


def successful_creates(sandbox) -> dict[str, int]:
    counts: dict[str, int] = collections.Counter()
    for r in sandbox.requests(mutating=True):
        for kind, (method, rx) in CREATE_PATTERNS.items():
            if r["method"] == method and re.search(rx, r["path"]) and 200 <= r["status"] < 300:
                counts[kind] += 1
    return dict(counts)


def step_events(events, step_id):
    return [e for e in events if getattr(e, "step_id", None) == step_id]


async def test_full_install_then_rerun_makes_no_mutating_request(sandbox, tmp_path):
    a = answers(sandbox)
    runtime: dict = {}
    fin, events = await run_infra(a, journal_root=tmp_path / "state", preflight=True, runtime=runtime)
    failed = [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    assert fin.status == "done", failed
    out = fin.outputs
    assert out["cluster"]["endpoint"] and out["cluster"]["location"] == "us-central1-a"
    assert out["sql-instance"]["connection_name"] == f"{sandbox.project}:us-central1:demo-ml-metadata"
    assert out["bucket"]["bucket"] == "demo-artifact-store"
    assert out["gke-sa"]["email"] == f"demo-gke-sa@{sandbox.project}.iam.gserviceaccount.com"
    assert successful_creates(sandbox) == {"network": 1, "subnet": 1, "service account": 2, "cluster": 1,
                                           "sql instance": 1, "sql user": 1, "bucket": 1}
    # the password is in memory only, never in the journal
    pw = runtime["sql_password"]
    assert len(pw) >= 24
    journal_text = "".join(p.read_text() for p in (tmp_path / "state").rglob("*.json"))
    assert pw not in journal_text
    # what was sent: labels, settings (from the sandbox's own state)
    st = sandbox.state()
    cluster = next(iter(st["clusters"].values()))
    assert cluster["resourceLabels"] == {"mlops-install-env": "demo"}
    # key mode: the nodes keep their own identity (the Cloud SQL proxy and the GCS gateway use it); no pool
    assert "workloadIdentityConfig" not in cluster
    assert cluster["nodePools"][0]["config"]["workloadMetadataConfig"] == {"mode": "GCE_METADATA"}
    assert cluster["nodePools"][0]["config"]["serviceAccount"].startswith("demo-gke-sa@")
    inst = next(iter(st["sql_instances"].values()))
    assert inst["databaseVersion"] == "MYSQL_8_0" and inst["region"] == "us-central1"
    s = inst["settings"]
    assert s["deletionProtectionEnabled"] is True and s["userLabels"] == {"mlops-install-env": "demo"}
    assert s["ipConfiguration"]["ipv4Enabled"] is True and s["ipConfiguration"].get("authorizedNetworks", []) == []
    assert s["tier"] == "db-n1-standard-2" and s["dataDiskType"] == "PD_SSD" and s["storageAutoResize"] is True
    assert str(s["dataDiskSizeGb"]) == "20"
    bucket = st["buckets"]["demo-artifact-store"]
    assert bucket["labels"] == {"mlops-install-env": "demo"} and bucket["location"].lower() == "us-central1"
    assert bucket["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"] is True
    net = next(n for n in st["networks"].values() if n["name"] == "demo-network")
    assert net["autoCreateSubnetworks"] is False and net["routingConfig"]["routingMode"] == "REGIONAL"
    sub = next(x for x in st["subnetworks"].values() if x["name"] == "demo-subnet")
    assert sub["ipCidrRange"] == "10.128.0.0/14" and sub["privateIpGoogleAccess"] is True
    # the cluster and the SQL instance were being created at the same time
    starts = {e.step_id: e.ts for e in events if e.type == "StepStarted"}
    dones = {e.step_id: e.ts for e in events if e.type == "StepDone"}
    assert starts["cluster"] < dones["sql-instance"] and starts["sql-instance"] < dones["cluster"]

    # second run: every step looks, finds it there, and changes nothing
    sandbox.clear_requests()
    fin2, events2 = await run_infra(a, journal_root=tmp_path / "state", preflight=True, runtime={})
    assert fin2.status == "done"
    mutating = [(r["method"], r["path"]) for r in sandbox.requests(mutating=True)]
    assert mutating == []
    outcomes = {e.step_id: e.outcome for e in events2 if e.type == "StepDone"}
    assert set(outcomes.values()) == {"unchanged"}, outcomes


@pytest.mark.sandbox_speed(0.005)
async def test_converges_with_ten_percent_transient_failures(sandbox, tmp_path):
    """5% of the requests to every Google API answer 503 and another 5% 429 (seeded; the token endpoint is
    left alone): the run still converges, creates each resource once, and the faults really fired."""
    a = answers(sandbox)
    f503 = sandbox.fault(r".*", 503, rate=0.05, seed=503, times=None)
    f429 = sandbox.fault(r".*", 429, rate=0.05, seed=429, times=None)
    assert f503["target"] == f429["target"] == "google"
    fin, events = await run_infra(a, journal_root=tmp_path / "state")
    hits = {f["status"]: f["hits"] for f in sandbox.control.faults()}
    sandbox.clear_faults()
    failed = [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    assert fin.status == "done", failed
    reqs = [r for r in sandbox.requests() if r.get("api") != "kubernetes"]
    # the faults fired, about as often as asked, and the log shows each one
    by_status = collections.Counter(r["status"] for r in reqs)
    assert by_status[503] >= 1 and by_status[429] >= 1, by_status
    assert hits == {503: by_status[503], 429: by_status[429]}
    assert 0.03 <= (by_status[503] + by_status[429]) / len(reqs) <= 0.2, (by_status, len(reqs))
    assert not [r for r in reqs if r["path"] in ("/token", "/oauth2/v4/token") and r["status"] in (429, 503)]
    # nothing was created twice: one successful create per resource, and no create met "already exists"
    assert successful_creates(sandbox) == {"network": 1, "subnet": 1, "service account": 2, "cluster": 1,
                                           "sql instance": 1, "sql user": 1, "bucket": 1}
    creates = [r for r in reqs if any(r["method"] == m and re.search(rx, r["path"])
                                      for m, rx in CREATE_PATTERNS.values())]
    assert not [r for r in creates if r["status"] == 409], creates
    st = sandbox.state()
    assert sorted(n["name"] for n in st["networks"].values() if n["name"].startswith("demo")) == ["demo-network"]
    assert [c["name"] for c in st["clusters"].values()] == ["demo-kfp-cluster"]
    assert [i["name"] for i in st["sql_instances"].values()] == ["demo-ml-metadata"]


@pytest.mark.sandbox_speed(0.005)
async def test_gke_operation_error_is_reported_and_a_rerun_resumes(sandbox, tmp_path):
    sandbox.enable()
    a = answers(sandbox)
    sandbox.fault(op="container.create", message="Google Compute Engine: Zone us-central1-a does not have enough "
                  "resources available to fulfill the request. (GCE_STOCKOUT)")
    fin, events = await run_infra(a, journal_root=tmp_path / "state")
    assert fin.status == "failed" and fin.failed == ["cluster"]
    fail = next(e for e in events if e.type == "StepFailed")
    assert "GCE_STOCKOUT" in fail.message and "cluster demo-kfp-cluster" in fail.message
    assert fail.remedy
    # the rest went on: SQL, bucket, roles are done
    done = {e.step_id for e in events if e.type == "StepDone"}
    assert {"sql-instance", "sql-user", "bucket", "subnet"} <= done
    sandbox.clear_faults()
    sandbox.clear_requests()
    fin2, events2 = await run_infra(a, journal_root=tmp_path / "state", runtime={})
    failed = [(e.step_id, e.message) for e in events2 if e.type == "StepFailed"]
    assert fin2.status == "done", failed
    # the resume says what failed before and that it tries the same place again (code 8: capacity, not a rate)
    said = [getattr(e, "message", "") for e in events2 if getattr(e, "step_id", "") == "cluster"]
    assert any("GCE_STOCKOUT" in m and "Recreating it in the same place (us-central1-a" in m for m in said), said
    outcomes = {e.step_id: e.outcome for e in events2 if e.type == "StepDone"}
    assert outcomes["cluster"] in ("created", "updated")
    assert outcomes["sql-instance"] == "unchanged"
    assert successful_creates(sandbox) == {"cluster": 1}


@pytest.mark.sandbox_speed(0.005)
async def test_interrupted_while_creating_resumes_on_the_same_operations(sandbox, tmp_path):
    """Ctrl-C while the cluster and the SQL instance are being created: the re-run waits on the remembered
    operations instead of creating them again."""
    sandbox.enable()
    a = answers(sandbox)
    root = tmp_path / "state"
    task = asyncio.create_task(run_infra(a, journal_root=root))
    journal = root / "envs" / a.env_id / "journal.json"
    while True:
        await asyncio.sleep(0.05)
        assert not task.done()
        try:
            steps = json.loads(journal.read_text())["steps"]
        except (OSError, ValueError):
            continue
        if all((steps.get(s) or {}).get("outputs", {}).get("operation") for s in ("cluster", "sql-instance")):
            break
    task.cancel()
    try:
        fin, _ = await task
        assert fin.status == "interrupted"
    except asyncio.CancelledError:
        pass
    fin, events = await run_infra(a, journal_root=root, runtime={})
    assert fin.status == "done", [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    assert successful_creates(sandbox) == {"network": 1, "subnet": 1, "service account": 2, "cluster": 1,
                                           "sql instance": 1, "sql user": 1, "bucket": 1}
    waits = [e.on for e in events if e.type == "StepWaiting" and getattr(e, "step_id", "") == "cluster"]
    assert any("operation" in w for w in waits)
