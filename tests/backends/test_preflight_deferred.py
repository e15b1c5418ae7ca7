"""Issue 13's measured cases on the sandbox: the preflight's deferred checks hold before anything is made, a re-run
and a resume never trip on their own cluster's quota, billing is checked."""
from __future__ import annotations

import asyncio
import json

import pytest

from backends.infra.harness import run_infra
from backends.preflight import run_preflight
from installer.answers import Answers
from installer.errors import PreflightFailed
from installer.sizing import cluster_size
from secrets_kfp_support import kfp_fixture


def regional(sandbox, prefix: str = "demo") -> Answers:
    a = Answers(project=sandbox.project, region="us-central1", prefix=prefix)  # node_count: the default
    a.kfp.manifests = str(kfp_fixture())  # a local folder: no kustomize, no network
    return a


def mutating_apis(sandbox) -> set[str]:
    return {r["api"] for r in sandbox.requests(mutating=True)}


@pytest.mark.sandbox_speed(0.005)
async def test_fresh_project_regional_default_fits(sandbox, tmp_path):
    """(a) Compute disabled, regional cluster at the defaults: 1 node per zone (3, 12 vCPU, 300 GB) fits a new
    project's quota; the quota waited for Compute, then was checked before the first resource."""
    a = regional(sandbox)
    assert a.cluster.node_count == 1 and cluster_size(a).describe() == "3 nodes (1 per zone in 3 zones), 12 vCPU, " \
        "300 GB boot disk"
    fin, events = await run_infra(a, journal_root=tmp_path / "state", preflight=True)
    assert fin.exit_code == 0, [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    reports = [e for e in events if e.type == "PreflightDone"]
    assert len(reports) == 2  # the first, then the deferred checks after the APIs step
    first = {c["name"]: c for c in reports[0].checks}
    second = {c["name"]: c for c in reports[1].checks}
    assert "after enabling" in first["quota"]["message"] and second["quota"]["status"] == "ok", second["quota"]
    assert "CPUS 12 needed" in second["quota"]["message"]
    assert first["billing"]["status"] == "warn" and "unknown" in first["billing"]["message"]  # API not enabled
    types = [e.type for e in events]
    apis_done = next(i for i, e in enumerate(events) if e.type == "StepDone" and e.step_id == "apis")
    others = [i for i, e in enumerate(events) if e.type == "StepStarted" and e.step_id != "apis"]
    assert types.index("PreflightDone", types.index("PreflightDone") + 1) > apis_done and min(others) > \
        types.index("PreflightDone", types.index("PreflightDone") + 1)


@pytest.mark.sandbox_speed(0.005)
async def test_fresh_project_quota_short_exits_3_with_only_apis_enabled(sandbox, tmp_path):
    """(a) with a quota that does not fit: exit 3 after the APIs step; the request log holds no mutating request
    but Service Usage's; the message gives need, free, limit and the choices that fit."""
    sandbox.scenario("cpu_quota", region="us-central1", limit=8)
    a = regional(sandbox)
    with pytest.raises(PreflightFailed) as ei:
        await run_infra(a, journal_root=tmp_path / "state", preflight=True)
    c = ei.value.report.get("quota")
    assert c.status == "fail", ei.value.report.to_table()
    assert "CPUS in us-central1: need 12, 8 free of 8" in c.detail
    assert "fewer nodes" not in c.fix  # 1 per zone is already the least
    assert "a zonal cluster: zone: us-central1-<a|b|c...>, cluster.node_count: 2" in c.fix, c.fix
    assert "a smaller machine: cluster.machine_type: e2-standard-2" in c.fix
    assert "iam-admin/quotas?project=" in c.fix
    assert mutating_apis(sandbox) == {"serviceusage"}, sandbox.requests(mutating=True)
    journal = json.loads((tmp_path / "state" / "envs" / a.env_id / "journal.json").read_text())
    assert journal["status"] == "preflight-failed"


@pytest.mark.sandbox_speed(0.005)
async def test_project_wide_cpus_and_addresses_are_checked(sandbox, tmp_path):
    sandbox.enable()
    sandbox.scenario("cpu_quota", region="global", metric="CPUS_ALL_REGIONS", limit=10)
    sandbox.scenario("cpu_quota", region="us-central1", metric="IN_USE_ADDRESSES", limit=2)
    c = (await run_preflight(regional(sandbox))).get("quota")
    assert c.status == "fail"
    assert "CPUS_ALL_REGIONS in all regions: need 12, 10 free of 10" in c.detail, c.detail
    assert "IN_USE_ADDRESSES in us-central1: need 3, 2 free of 2" in c.detail
    assert "cluster.node_count: 2" in c.fix and "zonal" in c.fix  # 2 nodes in one zone: 8 vCPU, 2 addresses


@pytest.mark.sandbox_speed(0.005)
async def test_rerun_and_resume_with_a_lowered_quota(sandbox, tmp_path):
    """(c) killed once the cluster is being made, the CPU quota lowered: the resume completes (the cluster takes no
    new quota); (b) then a re-run with the quota still lowered: exit 0 and no mutating request."""
    sandbox.enable()
    a = regional(sandbox)
    root = tmp_path / "state"
    task = asyncio.create_task(run_infra(a, journal_root=root, preflight=True))
    journal = root / "envs" / a.env_id / "journal.json"
    while True:
        await asyncio.sleep(0.02)
        assert not task.done()
        try:
            if (json.loads(journal.read_text())["steps"].get("cluster") or {}).get("outputs", {}).get("operation"):
                break
        except (OSError, ValueError):
            continue
    task.cancel()
    try:
        fin, _ = await task
        assert fin.status == "interrupted"
    except asyncio.CancelledError:
        pass
    sandbox.scenario("cpu_quota", region="us-central1", limit=16)  # 12 used by our cluster: 4 free
    fin, events = await run_infra(a, journal_root=root, preflight=True, runtime={})
    assert fin.exit_code == 0, [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    quota = next(c for c in [e for e in events if e.type == "PreflightDone"][0].checks if c["name"] == "quota")
    assert quota["status"] == "ok" and "this run makes no nodes" in quota["message"]
    sandbox.clear_requests()
    fin, events = await run_infra(a, journal_root=root, preflight=True, runtime={})
    assert fin.exit_code == 0
    assert sandbox.requests(mutating=True) == []


async def test_billing_disabled_fails_the_preflight_with_the_link(sandbox, tmp_path):
    sandbox.enable()
    sandbox.scenario("billing_disabled")
    with pytest.raises(PreflightFailed) as ei:
        await run_infra(regional(sandbox), journal_root=tmp_path / "state", preflight=True)
    c = ei.value.report.get("billing")
    assert c.status == "fail" and "no open billing account" in c.detail
    assert f"https://console.cloud.google.com/billing/linkedaccount?project={sandbox.project}" in c.fix
    assert sandbox.requests(mutating=True) == []
    sandbox.scenario("billing_disabled", disabled=False)
    assert (await run_preflight(regional(sandbox))).get("billing").status == "ok"
