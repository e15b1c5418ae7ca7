"""``installer.events.RunTally``: one owner for what a run's events add up to (issue 18: the wizard rebuilt it by
scanning its event list, and told the preflight's event apart by its class name)."""
from __future__ import annotations

from installer.events import PreflightDone, RunTally, StepDone, StepFailed, StepLog, StepSkipped


def test_the_tally_keeps_outcomes_the_last_failure_of_each_step_skips_and_the_preflight():
    t = RunTally()
    for ev in (PreflightDone(True, [{"name": "quota", "ok": True}]), StepDone("apis", "adopted"),
               StepFailed("gke-cluster", "quota", "first"), StepLog("gke-cluster", "retrying"),
               StepFailed("gke-cluster", "quota", "second"), StepSkipped("kfp-deploy", "blocked by gke-cluster"),
               StepDone("bucket")):
        t.add(ev)
    assert t.outcomes == {"apis": "adopted", "bucket": "created"}
    assert [f.message for f in t.failures.values()] == ["second"]
    assert t.skipped == {"kfp-deploy"}
    assert t.failed_checks() == []  # the preflight passed: the failure screen lists no check


def test_a_failed_preflight_gives_its_checks():
    t = RunTally()
    t.add(PreflightDone(False, [{"name": "quota", "ok": False, "message": "not enough CPUS"}]))
    assert t.failed_checks() == [{"name": "quota", "ok": False, "message": "not enough CPUS"}]
