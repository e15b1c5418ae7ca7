"""When KFP does not come up, the installer says why at the level of the pods (waiting reason, restarts, the
component's own last log lines), as a person would find with kubectl describe / logs --previous; when only the
inverse-proxy agent fails, it says KFP runs and how to reach the UI without it."""
from __future__ import annotations

from typing import Any

import pytest

from installer.plan import build_plan
from installer.steps import BaseStep, Observation, StepContext
from secrets_kfp_support import Isolated, answers, failures, step_events


class NoBucketRole(BaseStep):
    """Replays the old install's mistake: no bucket-level role with storage.buckets.get for the node account."""

    async def look(self, ctx: StepContext) -> Observation:
        return Observation("ready", outputs={"skipped": True})

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        return {}


async def _install(sandbox, iso, a, steps=None):
    from installer.logs import setup_logging
    from installer.run import build_backend_steps, install

    setup_logging(state_dir=iso.state)
    plan = build_plan(a)
    all_steps = build_backend_steps(plan)
    all_steps.update(steps or {})
    return await install(a, iso.events.append, assume_yes=True, preflight=False, plan=plan, steps=all_steps,
                         runtime={})


@pytest.mark.sandbox_speed(0.005)
async def test_laggards_are_named_with_their_pods_reasons(sandbox, tmp_path, monkeypatch):
    iso = Isolated(tmp_path / "run", monkeypatch)
    a = answers(sandbox.project, "key")
    fin = await _install(sandbox, iso, a, {"bucket-roles": NoBucketRole(build_plan(a)["bucket-roles"])})
    # ml-pipeline is held back until the database is there: the step that starts it is the one that waits for it
    assert fin.status == "failed" and fin.failed == ["kfp-db-components"], failures(iso)
    err = step_events(iso, "StepFailed", "kfp-db-components")[0]
    assert err.error_class == "timeout"
    # ml-pipeline exits at start-up on BucketExists (client_manager.go @2.14.4), and the message says so
    assert "ml-pipeline: pod ml-pipeline-" in err.message and "CrashLoopBackOff" in err.message
    assert "restart(s)" in err.message and "Failed to check if object store bucket exists" in err.message
    assert "logs --previous" in err.remedy


@pytest.mark.sandbox_speed(0.005)
async def test_inverse_proxy_not_serving_is_said_with_the_way_to_the_ui(sandbox, tmp_path, monkeypatch):
    iso = Isolated(tmp_path / "run", monkeypatch)
    a = answers(sandbox.project, "key")
    sandbox.scenario("inverse_proxy_region", region="us-central1", served=False)
    fin = await _install(sandbox, iso, a)
    assert fin.status == "failed" and fin.failed == ["kfp-ready"], failures(iso)
    err = step_events(iso, "StepFailed", "kfp-ready")[0]
    assert "Kubeflow Pipelines is running, but the inverse proxy is not serving" in err.message
    assert "No valid URLs found for zone" in err.message
    assert "port-forward svc/ml-pipeline-ui 8080:80" in err.remedy
    assert "kfp-ui" not in {e.step_id for e in step_events(iso, "StepDone")}
