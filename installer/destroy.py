"""Destroy: take an environment down (``mlops-install destroy``), in the reverse order of its plan's graph.

Only what the journal says an install ran is touched, and each step's ``destroy`` removes only what is ours: a
resource the install adopted (it existed and was not made by us) stays, as do the enabled APIs. Like an install, a
destroy takes the environment's lock, runs through the engine (``installer.engine.Engine`` in destroy mode: each
step's ``destroy`` starts once every step that depends on it is destroyed, independent ones at the same time, e.g.
the cluster and the SQL instance), records each step in the journal ("running", then "destroyed" or "failed") and
can be run again: a step already destroyed is skipped, one that failed, was interrupted or was kept because a step
depending on it failed is tried again. A failure keeps only what must outlive it (the steps it depends on).
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from .answers import Answers
from .engine import Engine, Teardown
from .errors import EXIT_INTERRUPTED, BadInput, InstallerError
from .events import Event, Notice, RunFinished
from .journal import Journal
from .plan import Plan, build_plan
from .steps import Step

log = logging.getLogger("mlops_install.destroy")

SKIP = (None, "destroyed")  # never ran here, or already taken down
KEPT = {"apis": "kept (the APIs stay enabled)"}  # steps whose resources a destroy leaves as they are


def recorded_journal(answers: Answers, root: Path | None = None, remote: bool = False) -> Journal:
    """The journal of ``answers``' environment, or ``BadInput`` when no install of it is recorded here; with
    ``remote``, a machine without it takes the remote journal (``installer.remote``, in memory until saved)."""
    journal = Journal(answers.env_id, root)
    if not journal.exists and remote:
        from .remote import RemoteState

        rs = RemoteState(answers)
        try:
            data = rs.fetch()
        except InstallerError:
            raise
        except Exception as exc:  # noqa: BLE001 - no Cloud Storage at hand: said below
            log.warning("could not read the remote journal %s: %s", rs.url(rs.journal_name), exc)
            data = None
        if data is not None:
            journal.adopt(data, rs.url(rs.journal_name))
            return journal
    if not journal.exists:
        raise BadInput(f"no install of {answers.env_id} is recorded here ({journal.path})",
                       remedy="give the answers file of an install made from this machine (`mlops-install status` "
                              "lists them), or set MLOPS_INSTALL_STATE_DIR to where its state is")
    return journal


def _ref(rec: dict) -> str:
    ns = rec.get("namespace")
    return f"{rec.get('kind')} {ns + '/' if ns else ''}{rec.get('name')}"


def step_objects(record: dict) -> tuple[list[str], list[str]]:
    """The Kubernetes objects of a step's journal record: (those its destroy deletes, those it keeps because
    they existed before the install). The steps' ``destroy`` reads the same record (``created``/``preexisting``
    in the outputs), so what is listed is what is done."""
    out = record.get("outputs") or {}
    return [_ref(r) for r in out.get("created") or [] if isinstance(r, dict)], list(out.get("preexisting") or [])


def removes(spec_id: str, record: dict) -> bool:
    """Whether a destroy calls the step's ``destroy``: not for the kept steps (the APIs), nor for what the install
    adopted, nor for a step whose only object existed before the install."""
    out = record.get("outputs") or {}
    if spec_id in KEPT or record.get("outcome") == "adopted":
        return False
    if out.get("preexisting") and not out.get("created") and not out.get("made_here") and not out.get("key_id"):
        return False
    return True


def destroy_plan(journal: Journal, plan: Plan) -> list[tuple[str, str, str, bool]]:
    """What a destroy would do, last step first: (step id, title, what the journal says of it, removed?).
    Kubernetes objects are named: each one that existed before the install and stays, and those deleted."""
    out = []
    for spec in reversed(plan.topological()):
        rec = journal.data.get("steps", {}).get(spec.id) or {}
        status = rec.get("status")
        if status in SKIP:
            continue
        outcome = rec.get("outcome") or status
        remove = removes(spec.id, rec)
        what = f"{spec.resource} ({outcome})" if spec.resource else str(outcome)
        gone, kept = step_objects(rec)
        if gone and remove:
            what += f"; deletes {len(gone)} object(s) it made: " + ", ".join(gone[:6]) + \
                (f" and {len(gone) - 6} more" if len(gone) > 6 else "")
        if kept:
            what += "; keeps what existed before the install: " + ", ".join(kept)
        out.append((spec.id, spec.title, what, remove))
    return out


def _outcome(step: Step, spec_id: str, record: dict) -> str:
    from .steps import BaseStep

    if spec_id in KEPT:
        return KEPT[spec_id]
    if record.get("outcome") == "adopted":
        return "kept (adopted: not made by the install)"
    if not removes(spec_id, record):
        return "kept (it existed before the install)"
    if getattr(type(step), "destroy", None) is BaseStep.destroy:
        return "nothing to remove"
    return "destroyed"


def teardown_plan(plan: Plan, ids: Iterable[str]) -> Plan:
    """The part of ``plan`` that a destroy runs (``ids``, in their order: the steps it lists), each step keeping, as
    dependencies, the nearest of ``ids`` it depends on through the steps left out (never ran, or already destroyed):
    the engine runs it the other way round, so nothing goes before what still depends on it."""
    order = list(ids)
    keep = set(order)
    nearest: dict[str, tuple[str, ...]] = {}
    for spec in plan.topological():  # dependencies first
        found: list[str] = []
        for d in spec.deps:
            for x in ((d,) if d in keep else nearest[d]):
                if x not in found:
                    found.append(x)
        nearest[spec.id] = tuple(found)
    return Plan(plan.answers, [dataclasses.replace(plan[i], deps=nearest[i]) for i in order], gate=())


async def destroy(answers: Answers, emit: Callable[[Event], None], *, journal_root: Path | None = None,
                  runtime: dict[str, Any] | None = None, steps: dict[str, Step] | None = None,
                  plan: Plan | None = None, tick: Callable[[], None] | None = None,
                  tick_interval: float = 1.0) -> RunFinished:
    """Destroy what the journal of ``answers``' environment records; return the ``RunFinished`` (status
    "destroyed", exit 0; "failed", exit 4, run again to go on; "interrupted", exit 130).

    ``plan=`` a ready plan (default: ``build_plan(answers)``), ``steps=`` a ready ``{step_id: Step}``, ``tick``
    called every ``tick_interval`` seconds (a reporter's open waits), as for ``installer.run.install``.
    Raises ``BadInput`` when nothing of this environment is recorded here, and ``JournalLocked`` when another
    installer holds it."""
    from .run import _tick, build_backend_steps, start_worker_threads, time_scale, warm_up_backends

    from .run import join_remote, leave_remote, remote_checkpoint

    runtime = runtime if runtime is not None else {}
    runtime.setdefault("remote_state", steps is None)
    journal = await asyncio.to_thread(recorded_journal, answers, journal_root,
                                      remote=runtime.get("remote_state"))
    await asyncio.to_thread(journal.lock)
    # the remote lock and mirror (issue 17); a journal taken from the remote was confirmed by the destroy's question
    await join_remote(journal, answers, dict(runtime, adopt_remote=True), f"mlops-install destroy --answers FILE")
    journal.start_writer()
    runtime.setdefault("time_scale", time_scale())
    plan = plan if plan is not None else build_plan(answers)
    start = time.time()
    engine: Engine | None = None
    ticker: asyncio.Task | None = None
    fin: RunFinished | None = None
    try:
        for note in journal.notes:  # e.g. a stale lock taken over
            log.warning(note)
            emit(Notice(note, "warning"))
        await start_worker_threads()
        listed = {sid: remove for sid, _, _, remove in destroy_plan(journal, plan)}
        down = teardown_plan(plan, listed)
        if steps is None:
            await asyncio.to_thread(warm_up_backends)
            steps = build_backend_steps(down)
        teardown = {sid: Teardown(remove, _outcome(steps[sid], sid, journal.step(sid)))
                    for sid, remove in listed.items()}
        journal.start_run(plan=down.ids, action="destroy")
        if tick is not None:
            ticker = asyncio.create_task(_tick(tick, tick_interval))
        engine = Engine(down, steps, journal, emit, runtime, teardown=teardown, checkpoint=remote_checkpoint(journal))
        fin = await engine.run()
    except asyncio.CancelledError:
        # Ctrl-C: the engine has cancelled the running destroys, saved the journal and emitted RunFinished
        cur = asyncio.current_task()
        if cur is not None and hasattr(cur, "uncancel"):
            cur.uncancel()
        try:
            journal.finish("interrupted")
        except Exception:  # noqa: BLE001 - unlock() writes what is queued, or raises
            log.exception("could not save the journal after an interruption")
        fin = RunFinished("interrupted", EXIT_INTERRUPTED, [], time.time() - start)
        if engine is None:  # interrupted before the engine started: nobody emitted it yet
            emit(fin)
        log.warning("interrupted; journal saved at %s", journal.path)
    finally:
        if ticker is not None:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        try:
            await journal.aflush()
        except BaseException:  # noqa: BLE001 - unlock() writes what is queued, or raises
            log.exception("could not save the journal after the destroy")
        await leave_remote(journal)
        journal.unlock()
    return fin
