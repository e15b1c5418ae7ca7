"""Preflight against the sandbox: each failure scenario gives its message and nothing is created."""
from __future__ import annotations

import pytest

from backends.infra.harness import run_infra
from backends.preflight import run_preflight
from installer.answers import Answers
from installer.errors import PreflightFailed
from secrets_kfp_support import kfp_fixture


def answers(sandbox, **kw) -> Answers:
    a = Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix="demo")
    a.kfp.manifests = str(kfp_fixture())  # a local folder: no kustomize, no network
    for k, v in kw.items():
        setattr(a, k, v)
    return a


async def test_fresh_project_passes_with_warnings_then_all_ok(sandbox):
    """APIs still disabled (enable: true): checks that need them say so, as warnings."""
    report = await run_preflight(answers(sandbox))
    assert report.ok, report.to_table()
    by = {c.name: c for c in report.checks}
    assert by["credentials"].status == "ok" and sandbox.caller_email in by["credentials"].detail
    assert by["apis"].status == "warn" and "will enable" in by["apis"].detail
    assert by["quota"].status == "warn" and "after enabling" in by["quota"].detail
    assert "preflight passed" in report.to_table()
    assert sandbox.requests(mutating=True) == []
    # everything enabled: all ok
    sandbox.enable()
    report = await run_preflight(answers(sandbox))
    assert report.ok, report.to_table()
    statuses = {c.name: c.status for c in report.checks}
    assert all(s == "ok" for n, s in statuses.items() if n != "tools"), report.to_table()
    # a project that does not exist (or that the caller cannot see)
    other = answers(sandbox)
    other.project = "no-such-project-42"
    report = await run_preflight(other)
    assert not report.ok
    c = report.get("project")
    assert c.status == "fail" and "no-such-project-42" in c.detail, report.to_table()


async def _fails(sandbox, tmp_path, a, check: str, *needles: str):
    sandbox.clear_requests()
    with pytest.raises(PreflightFailed) as ei:
        await run_infra(a, journal_root=tmp_path / "state", preflight=True)
    report = ei.value.report
    c = report.get(check)
    assert c is not None and c.status == "fail", report.to_table()
    text = (c.detail + " " + c.fix).lower()
    for n in needles:
        assert n.lower() in text, report.to_table()
    assert sandbox.requests(mutating=True) == []  # a failed preflight creates nothing
    return c


async def test_api_disabled_without_consent(sandbox, tmp_path):
    a = answers(sandbox)
    a.apis.enable = False
    await _fails(sandbox, tmp_path, a, "apis", "container.googleapis.com", "apis.enable")


async def test_permission_missing(sandbox, tmp_path):
    sandbox.enable()
    sandbox.scenario("missing_permission", permission="container.clusters.create")
    await _fails(sandbox, tmp_path, answers(sandbox), "permissions", "container.clusters.create",
                 "roles/container.admin")


async def test_org_policy_blocks_keys_in_key_mode(sandbox, tmp_path):
    sandbox.enable()
    sandbox.scenario("org_policy_keys", enforced=True)
    await _fails(sandbox, tmp_path, answers(sandbox), "org-policy", "workload-identity")
    # in workload-identity mode the same policy is fine
    report = await run_preflight(answers(sandbox, credentials="workload-identity"))
    assert report.get("org-policy").status == "ok"


async def test_cpu_quota_too_small(sandbox, tmp_path):
    sandbox.enable()
    sandbox.scenario("cpu_quota", region="us-central1", limit=8)
    await _fails(sandbox, tmp_path, answers(sandbox), "quota", "CPUS", "us-central1", "need 12")
    # a regional cluster has its node count in each of 3 zones
    sandbox.scenario("cpu_quota", region="us-central1", limit=24)
    regional = answers(sandbox, zone=None)
    regional.cluster.node_count = 1  # the regional default: 3 nodes, 12 vCPU, 300 GB
    assert (await run_preflight(regional)).get("quota").status == "ok"
    regional.cluster.node_count = 2  # 24 vCPU fit; 600 GB of pd-balanced boot disk do not (SSD_TOTAL_GB 500)
    c = (await run_preflight(regional)).get("quota")
    assert c.status == "fail" and "SSD_TOTAL_GB in us-central1: need 600, 500 free" in c.detail, c.detail
    regional.cluster.node_count = 3
    c = (await run_preflight(regional)).get("quota")
    assert c.status == "fail" and "need 36" in c.detail


async def test_bucket_name_taken(sandbox, tmp_path):
    sandbox.enable()
    sandbox.scenario("bucket_taken", bucket="demo-artifact-store")
    await _fails(sandbox, tmp_path, answers(sandbox), "bucket", "demo-artifact-store", "taken")
