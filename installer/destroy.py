"""Destroy: take an environment down (``mlops-install destroy``), in the reverse order of its plan.

Only what the journal says an install ran is touched, and each step's ``destroy`` removes only what is ours: a
resource the install adopted (it existed and was not made by us) stays, as do the enabled APIs. Like an install, a
destroy takes the environment's lock, records each step in the journal ("destroyed") and can be run again: a step
already destroyed is skipped, and one that failed is tried again. The steps run one at a time, last first
(a cluster goes before its subnet, a service account after the bindings that name it).
"""
from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Callable

from .answers import Answers
from .errors import EXIT_INSTALL_FAILED, EXIT_INTERRUPTED, EXIT_OK, BadInput, InstallerError
from .events import Event, RunFinished, RunStarted, StepDone, StepFailed, StepSkipped, StepStarted
from .journal import Journal
from .plan import Plan, build_plan
from .steps import Step, StepContext

log = logging.getLogger("mlops_install.destroy")

SKIP = (None, "destroyed")  # never ran here, or already taken down
KEPT = {"apis": "kept (the APIs stay enabled)"}  # steps whose resources a destroy leaves as they are


def recorded_journal(answers: Answers, root: Path | None = None) -> Journal:
    """The journal of ``answers``' environment, or ``BadInput`` when no install of it is recorded here."""
    journal = Journal(answers.env_id, root)
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


async def destroy(answers: Answers, emit: Callable[[Event], None], *, journal_root: Path | None = None,
                  runtime: dict[str, Any] | None = None, steps: dict[str, Step] | None = None) -> RunFinished:
    """Destroy what the journal of ``answers``' environment records; return the ``RunFinished`` (status
    "destroyed", exit 0; "failed", exit 4, run again to go on; "interrupted", exit 130).

    Raises ``BadInput`` when nothing of this environment is recorded here, and ``JournalLocked`` when another
    installer holds it."""
    from .run import build_backend_steps, start_worker_threads, warm_up_backends

    journal = await asyncio.to_thread(recorded_journal, answers, journal_root)
    await asyncio.to_thread(journal.lock)
    journal.start_writer()
    runtime = runtime if runtime is not None else {}
    plan = build_plan(answers)
    start = time.time()
    failed: list[str] = []
    status = "interrupted"
    try:
        await start_worker_threads()
        if steps is None:
            await asyncio.to_thread(warm_up_backends)
            steps = build_backend_steps(plan)
        journal.start_run(plan=plan.ids, action="destroy")
        emit(RunStarted(answers.env_id, plan.ids))
        listed = {sid: remove for sid, _, _, remove in destroy_plan(journal, plan)}
        for spec in reversed(plan.topological()):
            if spec.id not in listed:
                continue
            if not listed[spec.id]:  # listed as "keep": nothing of it is touched (the listing and the deed agree)
                outcome = _outcome(steps[spec.id], spec.id, journal.step(spec.id))
                journal.set_status(spec.id, "destroyed", finished=time.time(), outcome=outcome)
                emit(StepDone(spec.id, outcome, {}, 0.0))
                continue
            if failed:  # what comes before a failed step still depends on it: keep it, say so
                emit(StepSkipped(spec.id, f"kept: {failed[0]} could not be destroyed"))
                continue
            emit(StepStarted(spec.id, spec.title))
            t0 = time.time()
            ctx = StepContext(answers=answers, plan=plan, spec=spec, record=journal.step(spec.id), runtime=runtime,
                              emit=emit, save=journal.save,
                              outputs_of=lambda sid: journal.step(sid).get("outputs", {}),
                              status_of=lambda sid: journal.step(sid).get("status"))
            try:
                await steps[spec.id].destroy(ctx)
            except InstallerError as exc:
                failed.append(spec.id)
                journal.set_status(spec.id, "failed", error={"class": exc.error_class.value,
                                                             "message": exc.message, "remedy": exc.remedy})
                emit(StepFailed(spec.id, exc.error_class.value, exc.message, exc.remedy))
                continue
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as exc:  # noqa: BLE001 - reported as the step's failure, with the log
                log.exception("destroy of %s failed", spec.id)
                failed.append(spec.id)
                journal.set_status(spec.id, "failed", error={"class": "unexpected", "message": str(exc)})
                emit(StepFailed(spec.id, "unexpected", f"{type(exc).__name__}: {exc}",
                                "Run the same command again; if it fails again, report it with the debug log."))
                continue
            outcome = _outcome(steps[spec.id], spec.id, ctx.record)
            journal.set_status(spec.id, "destroyed", finished=time.time(), outcome=outcome)
            emit(StepDone(spec.id, outcome, {}, time.time() - t0))
        status = "failed" if failed else "destroyed"
    except asyncio.CancelledError:
        cur = asyncio.current_task()
        if cur is not None and hasattr(cur, "uncancel"):
            cur.uncancel()
        status = "interrupted"
    finally:
        try:
            journal.finish(status)
            await journal.aflush()
        except BaseException:  # noqa: BLE001 - unlock() writes what is queued, or raises
            log.exception("could not save the journal after the destroy")
        journal.unlock()
    code = {"destroyed": EXIT_OK, "failed": EXIT_INSTALL_FAILED}.get(status, EXIT_INTERRUPTED)
    fin = RunFinished(status, code, failed, time.time() - start)
    emit(fin)
    return fin
