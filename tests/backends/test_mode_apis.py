"""APIs a credentials mode needs are enabled whatever apis.required lists (an answers file written before the mode's
need was known still works), and plan/review show them."""
from __future__ import annotations

import pytest

from backends.infra.harness import run_infra
from installer.answers import REQUIRED_APIS, Answers
from installer.plan import Plan, build_plan
from secrets_kfp_support import kfp_fixture

IAMCREDENTIALS = "iamcredentials.googleapis.com"


def _answers(sandbox, mode: str) -> Answers:
    a = Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix="demo", credentials=mode)
    a.kfp.manifests = str(kfp_fixture())  # a local folder: no kustomize, no network
    assert IAMCREDENTIALS not in a.apis.required and list(a.apis.required) == list(REQUIRED_APIS)
    return a


def test_plan_names_the_api_the_mode_adds():
    wi = Answers(project="mlops-demo-project", region="us-central1", prefix="demo", credentials="workload-identity")
    assert wi.apis_needed[-1] == IAMCREDENTIALS and len(wi.apis_needed) == len(REQUIRED_APIS) + 1
    assert f"with {IAMCREDENTIALS} for workload-identity" in build_plan(wi)["apis"].resource
    key = Answers(project="mlops-demo-project", region="us-central1", prefix="demo")
    assert IAMCREDENTIALS not in key.apis_needed and build_plan(key)["apis"].resource == "15 APIs"


@pytest.mark.sandbox_speed(0.005)
async def test_workload_identity_enables_iamcredentials(sandbox, tmp_path):
    sandbox.enable()
    sandbox.scenario("api_disabled", service=IAMCREDENTIALS)
    a = _answers(sandbox, "workload-identity")
    fin, events = await run_infra(a, journal_root=tmp_path / "state", plan=Plan(a, [build_plan(a)["apis"]]))
    assert fin.status == "done", [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    assert fin.outputs["apis"]["enabled"] == [IAMCREDENTIALS]
    assert sandbox.state()["services"][sandbox.project][IAMCREDENTIALS]["state"] == "ENABLED"
    # key mode does not need it: nothing to enable
    sandbox.scenario("api_disabled", service=IAMCREDENTIALS)
    k = _answers(sandbox, "key")
    fin, _ = await run_infra(k, journal_root=tmp_path / "state2", plan=Plan(k, [build_plan(k)["apis"]]))
    assert fin.status == "done" and not fin.outputs["apis"].get("enabled")
