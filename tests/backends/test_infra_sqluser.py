"""The kfp database user: password only in memory; on a resume that needs it again, reset with users.update."""
from __future__ import annotations

from typing import Any

import pytest

from backends.infra.harness import infra_steps, run_infra
from installer.answers import Answers
from installer.plan import Plan, StepSpec, build_plan
from installer.steps import BaseStep, Observation, StepContext


class SecretStandIn(BaseStep):
    """Stands in for the secrets backend's mysql-secret step: takes the password from the runtime."""
    seen: list[str] = []

    async def look(self, ctx: StepContext) -> Observation:
        return Observation("ready" if ctx.outputs.get("secret") else "absent")

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        pw = ctx.runtime.get("sql_password")
        assert pw, "the sql-user step must leave the password in ctx.runtime"
        SecretStandIn.seen.append(pw)
        return {"secret": "kubeflow/mysql-secret"}


@pytest.mark.sandbox_speed(0.005)
async def test_password_in_runtime_only_and_reset_when_needed_again(sandbox, tmp_path):
    sandbox.enable()
    a = Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix="demo")
    full = build_plan(a)
    plan = Plan(answers=a, steps=[full["apis"], full["sql-instance"], full["sql-user"],
                                  StepSpec("mysql-secret", "secrets", "Database secret", "k8s.secret", "x",
                                           ("sql-user",), 1)])
    steps = infra_steps(Plan(answers=a, steps=plan.steps[:3]))
    steps["mysql-secret"] = SecretStandIn(plan["mysql-secret"])
    SecretStandIn.seen = []

    from installer.run import install
    events: list = []
    fin = await install(a, events.append, steps=steps, plan=plan, preflight=False, journal_root=tmp_path / "j1",
                        runtime={})
    assert fin.status == "done"
    first = SecretStandIn.seen[-1]
    assert first not in "".join(p.read_text() for p in (tmp_path / "j1").rglob("*.json"))

    # a resume whose mysql-secret step still has to run, in a new process (no password in memory): reset it
    sandbox.clear_requests()
    fin = await install(a, events.append, steps=steps, plan=plan, preflight=False, journal_root=tmp_path / "j2",
                        runtime={})
    assert fin.status == "done"
    second = SecretStandIn.seen[-1]
    assert second != first and len(second) >= 24
    muts = [(r["method"], r["path"]) for r in sandbox.requests(mutating=True)]
    assert [m for m, p in muts if "/users" in p] == ["PUT"]
    assert not any(p.endswith("/instances") for m, p in muts)

    # a re-run after the secret was written: nothing needs the password, nothing changes
    sandbox.clear_requests()
    fin = await install(a, events.append, steps=steps, plan=plan, preflight=False, journal_root=tmp_path / "j2",
                        runtime={})
    assert fin.status == "done"
    assert sandbox.requests(mutating=True) == []
