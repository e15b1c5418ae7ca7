"""The infrastructure steps against the sandbox: real HTTP, real clients, the real engine."""
from __future__ import annotations

import asyncio
import collections
import json
import re
import threading
import time

import pytest

from backends.infra.harness import infra_plan, run_infra
from installer.answers import Answers

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
    a.kfp.manifests = "/nonexistent-local-manifests"  # no kustomize needed: the tools check only warns
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
    assert cluster["workloadIdentityConfig"]["workloadPool"] == f"{sandbox.project}.svc.id.goog"
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


class TransientFaults:
    """Arms one 503 or 429 fault (times=1) for about every 10th request to a Google API, while running."""

    def __init__(self, sandbox, every: int = 10) -> None:
        self.sandbox, self.every = sandbox, every
        self.stop = threading.Event()
        self.armed = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        seen = 0
        while not self.stop.is_set():
            n = len(self.sandbox.requests())
            while n - seen >= self.every:
                seen += self.every
                status = 503 if self.armed % 2 == 0 else 429
                self.sandbox.fault(r"^/(?!token)", status, times=1)
                self.armed += 1
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.sandbox.clear_faults()


@pytest.mark.sandbox_speed(0.005)
async def test_converges_with_ten_percent_transient_failures(sandbox, tmp_path):
    a = answers(sandbox)
    with TransientFaults(sandbox) as tf:
        fin, events = await run_infra(a, journal_root=tmp_path / "state")
    failed = [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    assert fin.status == "done", failed
    reqs = sandbox.requests()
    injected = [r for r in reqs if r["status"] in (503, 429)]
    assert tf.armed >= 5 and len(injected) >= 5
    assert successful_creates(sandbox) == {"network": 1, "subnet": 1, "service account": 2, "cluster": 1,
                                           "sql instance": 1, "sql user": 1, "bucket": 1}


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
