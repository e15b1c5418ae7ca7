"""The engine's gate (the preflight's deferred checks): every step outside ``plan.gate`` waits for it; when it
fails nothing else starts, the exception propagates and the run is recorded."""
from __future__ import annotations

import asyncio
import json

import pytest

from installer.answers import Answers
from installer.engine import Engine
from installer.errors import PreflightFailed
from installer.journal import Journal
from installer.plan import build_plan

from .timed_steps import World, timed_steps

A = Answers(project="mlops-demo-project", region="us-central1", prefix="gate", zone="us-central1-a")


def _engine(tmp_path, world, gate):
    plan = build_plan(A)
    assert plan.gate == ("apis",)
    journal = Journal(A.env_id, tmp_path)
    journal.start_run(plan=plan.ids)
    return Engine(plan, timed_steps(plan, world), journal, lambda e: None, {}, gate=gate), journal


def test_gate_runs_after_the_apis_step_and_before_any_other(tmp_path):
    world = World()
    seen: list[set[str]] = []

    async def gate() -> None:
        seen.append(set(world.made))
        await asyncio.sleep(0.05)
        assert set(world.made) == {"apis"}  # nothing else started while it ran

    eng, _ = _engine(tmp_path, world, gate)
    fin = asyncio.run(eng.run())
    assert fin.exit_code == 0 and seen == [{"apis"}]
    first_other = min(t for s, c, t in world.calls if s != "apis")
    assert first_other > world.made["apis"]


def test_a_failed_gate_starts_nothing_else_and_propagates(tmp_path):
    world = World()

    async def gate() -> None:
        raise PreflightFailed("preflight failed: quota")

    eng, journal = _engine(tmp_path, world, gate)
    with pytest.raises(PreflightFailed):
        asyncio.run(eng.run())
    assert set(world.made) == {"apis"} and {s for s, _, _ in world.calls} == {"apis"}
    data = json.loads(journal.path.read_text()) if journal.path.exists() else journal.data
    assert data["status"] == "preflight-failed"
    assert data["steps"]["apis"]["status"] == "done" and not data["steps"].get("cluster", {}).get("status")


def test_a_failed_apis_step_blocks_everything_behind_the_gate(tmp_path):
    world = World()
    ran: list[bool] = []

    async def gate() -> None:
        ran.append(True)

    plan = build_plan(A)
    journal = Journal(A.env_id, tmp_path)
    eng = Engine(plan, timed_steps(plan, world, fail={"apis"}), journal, lambda e: None, {}, gate=gate)
    fin = asyncio.run(eng.run())
    assert fin.exit_code == 4 and ran == [] and set(world.made) == set()
