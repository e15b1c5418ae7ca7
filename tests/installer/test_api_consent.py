"""The apis step respects consent: ``apis.enable: false`` without ``--yes`` enables nothing and says which APIs are
missing and how to consent; ``--yes`` (``assume_yes``) is consent. Against a real sandbox, through ``run.install``."""
from __future__ import annotations

import pytest

from installer.answers import Answers
from installer.errors import PreflightFailed
from installer.plan import Plan, build_plan
from installer.run import build_backend_steps, install

MISSING = ["container.googleapis.com", "sqladmin.googleapis.com"]


def _answers(enable: bool) -> Answers:
    a = Answers(project="mlops-demo-project", region="us-central1", prefix="demo", zone="us-central1-a")
    a.apis.enable = enable
    return a


def _apis_only(answers: Answers) -> tuple[Plan, dict]:
    full = build_plan(answers)
    plan = Plan(answers, [full["apis"]])
    return plan, build_backend_steps(plan)


def _enables(sandbox) -> list:
    return [r for r in sandbox.requests(api="serviceusage", mutating=True)]


async def test_no_consent_preflight_names_the_apis_and_how_to_consent(sandbox):
    sandbox.enable()
    sandbox.scenario("api_disabled", services=MISSING)
    sandbox.clear_requests()
    events: list = []
    with pytest.raises(PreflightFailed):
        await install(_answers(False), events.append, assume_yes=False)
    check = next(c for e in events if e.type == "PreflightDone" for c in e.checks if c["name"] == "apis")
    text = f"{check.get('message', '')} {check.get('remedy', '')}"
    assert check["ok"] is False
    for api in MISSING:
        assert api in text
    assert "--yes" in text and "apis.enable: true" in text
    assert _enables(sandbox) == []


async def test_no_consent_apis_step_enables_nothing_and_fails_clearly(sandbox):
    sandbox.enable()
    sandbox.scenario("api_disabled", services=MISSING)
    sandbox.clear_requests()
    answers = _answers(False)
    plan, steps = _apis_only(answers)
    events: list = []
    fin = await install(answers, events.append, assume_yes=False, preflight=False, plan=plan, steps=steps)
    assert fin.exit_code == 4 and fin.failed == ["apis"]
    failed = next(e for e in events if e.type == "StepFailed")
    for api in MISSING:
        assert api in failed.message
    assert "--yes" in failed.remedy and "apis.enable: true" in failed.remedy
    assert _enables(sandbox) == []


async def test_yes_is_consent(sandbox):
    sandbox.enable()
    sandbox.scenario("api_disabled", services=MISSING)
    answers = _answers(False)
    events: list = []
    from backends.preflight import run_preflight
    report = await run_preflight(answers, runtime={"assume_yes": True, "enable_apis": True})
    assert next(c for c in report.checks if c.name == "apis").status == "warn"  # will enable: not a failure
    plan, steps = _apis_only(answers)
    fin = await install(answers, events.append, assume_yes=True, preflight=False, plan=plan, steps=steps)
    assert fin.exit_code == 0, [e for e in events if e.type == "StepFailed"]
    assert sorted(fin.outputs["apis"]["enabled"]) == MISSING
    assert _enables(sandbox)
