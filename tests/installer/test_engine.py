"""The engine and run.install with timed test steps (the outside world), the real engine and journal."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from installer.answers import Answers
from installer.errors import EXIT_INSTALL_FAILED, EXIT_INTERRUPTED, EXIT_OK
from installer.events import Notice, RunFinished, StepDone, StepFailed, StepSkipped, StepWaiting
from installer.journal import Journal
from installer.plan import Plan, StepSpec, build_plan
from installer.run import install

from .timed_steps import TimedStep, World, timed_steps

ANSWERS = Answers(project="mlops-demo-project", region="us-central1", prefix="demo", zone="us-central1-a")


def _overhead(plan, answers=ANSWERS) -> float:
    """Time of the same graph with instant steps: the engine's and the journal's own cost (fsync per save)."""
    t0 = time.monotonic()
    fin = asyncio.run(install(answers, lambda e: None, steps=timed_steps(plan, World(), default=0.0), plan=plan,
                              preflight=False, journal_root=Path(tempfile.mkdtemp())))
    assert fin.exit_code == EXIT_OK
    return time.monotonic() - t0


def test_independent_steps_overlap_critical_path_not_sum():
    """A graph of timed steps finishes in about its critical path, not the sum of its steps."""
    plan = build_plan(ANSWERS)
    world = World()
    secs = {s.id: 0.05 for s in plan}
    secs.update({"cluster": 1.5, "sql-instance": 1.5, "apis": 0.1})
    critical, chain = plan.critical_path(secs)
    total = sum(secs.values())
    overhead = _overhead(plan)
    events = []
    t0 = time.monotonic()
    fin = asyncio.run(install(ANSWERS, events.append, steps=timed_steps(plan, world, secs), preflight=False))
    elapsed = time.monotonic() - t0
    assert fin.exit_code == EXIT_OK and fin.status == "done"
    assert len(world.made) == len(plan)
    assert elapsed < critical + overhead + 0.5, (elapsed, critical, overhead, chain)
    assert elapsed - overhead < 0.75 * total, (elapsed, total, overhead)
    # the two long poles ran at the same time
    start = {s: t for s, c, t in world.calls if c == "apply"}
    assert abs(start["cluster"] - start["sql-instance"]) < 0.2 + overhead
    # every step started only after its dependencies were made
    for spec in plan:
        for d in spec.deps:
            assert world.made[d] <= start[spec.id] + 1e-3, (spec.id, d)


def test_wide_graph_runs_in_parallel():
    specs = [StepSpec(f"s{i}", "infrastructure", f"step {i}", "test", f"r{i}") for i in range(8)]
    specs.append(StepSpec("last", "kfp", "last", "test", "r", tuple(f"s{i}" for i in range(8))))
    plan = Plan(ANSWERS, specs)
    overhead = _overhead(plan)
    world = World()
    steps = {s.id: TimedStep(s, world, 0.5) for s in plan}
    t0 = time.monotonic()
    fin = asyncio.run(install(ANSWERS, lambda e: None, steps=steps, plan=plan, preflight=False))
    elapsed = time.monotonic() - t0
    assert fin.exit_code == EXIT_OK
    assert elapsed < 1.0 + overhead + 0.5, (elapsed, overhead)  # 2 x 0.5 on the critical path; 4.5 s one by one


def test_failure_stops_only_dependents_and_resume(state_dir):
    plan = build_plan(ANSWERS)
    world = World()
    events = []
    fin = asyncio.run(install(ANSWERS, events.append, steps=timed_steps(plan, world, fail={"network"}),
                              preflight=False))
    assert fin.exit_code == EXIT_INSTALL_FAILED and fin.failed == ["network"]
    blocked = plan.dependents("network")
    assert blocked >= {"subnet", "cluster", "kfp-namespace", "kfp-deploy"}
    skipped = {e.step_id for e in events if isinstance(e, StepSkipped)}
    assert skipped == blocked
    done = {e.step_id for e in events if isinstance(e, StepDone)}
    assert done == set(plan.ids) - blocked - {"network"}
    assert {"sql-instance", "sql-user", "bucket", "gke-sa", "kfp-sa"} <= done
    failed = [e for e in events if isinstance(e, StepFailed)]
    assert failed[0].error_class == "quota" and failed[0].remedy == "raise the quota"
    j = Journal(ANSWERS.env_id)
    assert j.step("network")["status"] == "failed"
    assert j.step("network")["error"]["class"] == "quota"
    assert j.step("cluster")["status"] == "blocked"
    assert j.step("bucket")["status"] == "done"
    assert j.data["answers"]["prefix"] == "demo"

    # resume: the failing step works now; the done steps are looked at and not applied again
    before = dict(world.applies)
    events2 = []
    fin2 = asyncio.run(install(ANSWERS, events2.append, steps=timed_steps(plan, world), preflight=False))
    assert fin2.exit_code == EXIT_OK
    again = {k for k, v in world.applies.items() if v > before.get(k, 0)}
    assert again == blocked | {"network"}
    unchanged = {e.step_id for e in events2 if isinstance(e, StepDone) and e.outcome == "unchanged"}
    assert unchanged == done


def test_changed_answers_are_explained():
    plan = build_plan(ANSWERS)
    world = World()
    asyncio.run(install(ANSWERS, lambda e: None, steps=timed_steps(plan, world), preflight=False))
    changed = Answers(project="mlops-demo-project", region="us-central1", prefix="demo", zone="us-central1-a")
    changed.cluster.node_count = 5
    changed.kfp.version = "2.14.3"
    events = []
    asyncio.run(install(changed, events.append, steps=timed_steps(build_plan(changed), world), preflight=False))
    notes = [e.message for e in events if isinstance(e, Notice)]
    assert any("cluster.node_count: 3 -> 5" in n and "kfp.version: '2.14.4' -> '2.14.3'" in n for n in notes), notes
    # honest about it: what is updated in place and what is refused (QA: node_count 3 -> 2 gave "cluster: unchanged"
    # after a note promising updates; the cluster step now resizes, tests/backends/test_changed_settings.py)
    assert all("updates or adopts" not in n for n in notes) and any("updated in place" in n for n in notes)


async def test_cancellation_records_state_and_gives_130(state_dir):
    plan = build_plan(ANSWERS)
    world = World()
    secs = {"cluster": 5.0, "sql-instance": 5.0}
    events = []
    task = asyncio.create_task(install(ANSWERS, events.append, steps=timed_steps(plan, world, secs),
                                       preflight=False))
    for _ in range(200):
        await asyncio.sleep(0.02)
        if any(isinstance(e, StepWaiting) for e in events):
            break
    task.cancel()
    fin = await task
    assert fin.exit_code == EXIT_INTERRUPTED and fin.status == "interrupted"
    assert [e for e in events if isinstance(e, RunFinished)][-1].status == "interrupted"
    j = Journal(ANSWERS.env_id)
    assert j.data["status"] == "interrupted"
    statuses = {s: r.get("status") for s, r in j.data["steps"].items()}
    assert statuses["sql-instance"] == "interrupted"
    assert j.step("sql-instance")["outputs"]["operation"] == "op-sql-instance"  # the id was recorded at once
    assert statuses["apis"] == "done"
    assert j.lock_holder() is None  # the lock was released


def test_sigint_in_a_process_exits_130(tmp_path):
    """Ctrl-C on a running install: the journal is saved and the process exits 130."""
    script = tmp_path / "run_it.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from installer.answers import Answers
        from installer.plan import build_plan
        from installer.run import run_install_sync
        from tests.installer.timed_steps import World, timed_steps
        a = Answers(project="mlops-demo-project", region="us-central1", prefix="demo")
        steps = timed_steps(build_plan(a), World(), {{"sql-instance": 30.0, "cluster": 30.0}})
        def emit(e):
            if e.type == "StepWaiting":
                print("WAITING", flush=True)
        fin = run_install_sync(a, emit, steps=steps, preflight=False)
        print("FINISHED", fin.status, flush=True)
        sys.exit(fin.exit_code)
    """))
    env = {**os.environ, "MLOPS_INSTALL_STATE_DIR": str(tmp_path / "state")}
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "WAITING"
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=20)
    assert p.returncode == 130, out
    assert "FINISHED interrupted" in out
    data = json.loads((tmp_path / "state" / "envs" / "mlops-demo-project--demo" / "journal.json").read_text())
    assert data["status"] == "interrupted"
    assert data["steps"]["sql-instance"]["status"] == "interrupted"


def test_second_installer_on_same_environment_is_refused():
    from installer.journal import JournalLocked
    plan = build_plan(ANSWERS)
    j = Journal(ANSWERS.env_id)
    j.lock()
    try:
        with pytest.raises(JournalLocked) as err:
            asyncio.run(install(ANSWERS, lambda e: None, steps=timed_steps(plan, World()), preflight=False))
        assert f"pid {os.getpid()}" in err.value.message
    finally:
        j.unlock()


def test_describe_plan_uses_look_only():
    """`plan`'s rows: each step's read-only look decides create / exists; dependents of missing ones are 'create'."""
    from installer.run import describe_plan
    plan = build_plan(ANSWERS)
    world = World()
    world.made.update({"apis": 0.0, "network": 0.0, "bucket": 0.0})
    rows = asyncio.run(describe_plan(ANSWERS, steps=timed_steps(plan, world)))
    by = {r.step_id: r for r in rows}
    assert by["apis"].action == "exists: unchanged" and by["network"].action == "exists: unchanged"
    assert by["subnet"].action == "create" and by["gke-sa"].action == "create"
    assert by["cluster"].action == "create" and "after" in by["cluster"].detail
    assert not [c for c in world.calls if c[1] == "apply"]  # nothing was changed
    assert not Journal(ANSWERS.env_id).exists  # and nothing written
    rows = asyncio.run(describe_plan(ANSWERS, check=False))
    assert {r.action for r in rows} == {"not checked"}
