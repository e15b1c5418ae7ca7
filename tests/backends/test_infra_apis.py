"""The APIs step: batches, the 160009 internal error retried, a legacy API failing is only a warning."""
from __future__ import annotations

from backends.infra.harness import run_infra
from backends.infra.apis import batches
from installer.answers import LEGACY_APIS, Answers
from installer.plan import Plan, build_plan


def test_batches_of_twenty_with_legacy_alone():
    apis = [f"api{i}.googleapis.com" for i in range(45)] + sorted(LEGACY_APIS)
    out = batches(apis)
    assert [len(b) for b in out] == [20, 20, 5, 1, 1]
    assert all(len(b) == 1 for b in out if set(b) & LEGACY_APIS)


async def test_internal_error_retried_and_legacy_failure_only_warns(sandbox, tmp_path):
    a = Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix="demo")
    plan = Plan(answers=a, steps=[build_plan(a)["apis"]])
    sandbox.fault(op="serviceusage.enable", times=1)  # the first batch's operation ends in [160009]
    sandbox.fault(r"/services/ml\.googleapis\.com:enable$", 403, times=None,
                  message="Permission denied to enable service [ml.googleapis.com]")
    fin, events = await run_infra(a, journal_root=tmp_path / "state", plan=plan)
    assert fin.status == "done", [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    out = fin.outputs["apis"]
    assert out["legacy_missing"] == ["ml.googleapis.com"]
    warnings = [e.message for e in events if e.type == "StepLog" and e.level == "warning"]
    assert any("160009" in w for w in warnings) and any("ml.googleapis.com" in w for w in warnings)
    batch_calls = [r for r in sandbox.requests(mutating=True) if r["path"].endswith(":batchEnable")]
    assert len(batch_calls) == 2 and all(r["status"] == 200 for r in batch_calls)
