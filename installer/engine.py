"""The async engine: runs each step as soon as its dependencies are done.

Independent steps run at the same time. A failed step stops only its
dependents. Cancellation (Ctrl-C) records state and re-raises.

*Destroy mode* (``teardown=``: for each step of the plan a ``Teardown``, ``installer.destroy``) runs the graph the
other way round: each step's ``destroy`` starts once every step that depends on it is destroyed (a cluster before
its subnet, the bindings before the account they name), independent ones at the same time (the cluster and the SQL
instance), with the same events, journal records (``running`` while it runs, then ``destroyed`` or ``failed``; the
run's status ``destroyed``) and failure handling: a failed destroy keeps only what must outlive it (the steps it
depends on), whose journal records stay as they are, so the next destroy goes on from there.

A *gate* (``gate=``: a coroutine function) holds every step outside ``plan.gate`` until it has passed: it runs once
the steps of ``plan.gate`` in the plan are done (at once when the plan has none of them). The install uses it for
the preflight's checks that had to wait for the APIs step (``installer.run``): if it raises (``PreflightFailed``),
no other step starts, the run is recorded as ``preflight-failed`` and the exception propagates.

A *checkpoint* (``checkpoint=``: a coroutine function) runs each time a step ends, before another starts: the
install and destroy use it for the remote lock (``installer.remote.RemoteState.claim``: once the artifact bucket
exists, a second installer that started before it did learns here that another one holds the environment). If it
raises an ``InstallerError``, no other step starts, the steps still running finish, the run is recorded as
``stopped`` and the exception propagates.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from .errors import (EXIT_INSTALL_FAILED, EXIT_INTERRUPTED, EXIT_OK, ErrorClass, InstallerError)
from .events import (Event, RunFinished, RunStarted, StepDone, StepFailed, StepSkipped, StepStarted)
from .plan import Plan
from .steps import Observation, Step, StepContext

log = logging.getLogger("mlops_install.engine")
GATE = "(gate)"  # the gate's task name (no step id has parentheses)


@dataclass(frozen=True)
class Teardown:
    """What a destroy does with one step: call its ``destroy`` (``remove``), or leave what it made as it is (the
    kept APIs, what was adopted or existed before); ``outcome`` is what the journal and ``StepDone`` then say."""
    remove: bool = True
    outcome: str = "destroyed"


class Engine:
    def __init__(self, plan: Plan, steps: dict[str, Step], journal, emit: Callable[[Event], None],
                 runtime: dict[str, Any] | None = None,
                 gate: Callable[[], Awaitable[None]] | None = None,
                 teardown: dict[str, Teardown] | None = None,
                 checkpoint: Callable[[], Awaitable[None]] | None = None) -> None:
        missing = [s.id for s in plan if s.id not in steps]
        if missing:
            raise ValueError(f"no implementation for steps: {', '.join(missing)}")
        if teardown is not None and gate is not None:
            raise ValueError("a destroy has no gate")
        self.plan = plan
        self.steps = steps
        self.journal = journal
        self._emit = emit
        self.runtime = runtime if runtime is not None else {}
        self.status: dict[str, str] = {}
        self.errors: dict[str, InstallerError] = {}
        self.gate = gate
        self.gate_steps = {s for s in plan.gate if s in plan.ids} if gate is not None else set()
        self.teardown = teardown
        self.checkpoint = checkpoint
        # what each step waits for: its dependencies (install), or every step that depends on it (destroy)
        self.waits_for: dict[str, tuple[str, ...]] = {
            s.id: s.deps if teardown is None else tuple(t.id for t in plan if s.id in t.deps) for s in plan}

    def emit(self, event: Event) -> None:
        try:
            self._emit(event)
        except Exception:  # a broken reporter must not break the install
            log.exception("event sink failed on %s", event.type)

    def _context(self, step_id: str) -> StepContext:
        return StepContext.of(self.plan, step_id, self.journal, self.runtime, self.emit)

    async def _run_step(self, step_id: str) -> None:
        impl = self.steps[step_id]
        ctx = self._context(step_id)
        down = self.teardown.get(step_id, Teardown()) if self.teardown is not None else None
        if down is not None and not down.remove:  # kept: nothing of it is touched (the listing and the deed agree)
            self._succeed(step_id, down.outcome, {}, 0.0)
            return
        started = time.time()
        self.journal.set_status(step_id, "running", started=started)
        self.emit(StepStarted(step_id, self.plan[step_id].title))
        try:
            if down is not None:
                await impl.destroy(ctx)
                outcome, outputs = down.outcome, {}
            else:
                outcome = await self._bring_up(impl, ctx, step_id)
                outputs = dict(ctx.outputs)
        except asyncio.CancelledError:
            self.journal.set_status(step_id, "interrupted")
            raise
        except InstallerError as exc:
            self._fail(step_id, exc)
            return
        except Exception as exc:  # an unexpected bug or client error: report it, keep the others going
            log.exception("step %s failed unexpectedly", step_id)
            self._fail(step_id, InstallerError(f"{type(exc).__name__}: {exc}", error_class=ErrorClass.UNEXPECTED,
                                               remedy="Run the same command again to go on; if it fails again, "
                                                      "report it with the debug log."))
            return
        self._succeed(step_id, outcome, outputs, time.time() - started)

    async def _bring_up(self, impl: Step, ctx: StepContext, step_id: str) -> str:
        """Install one step: ``look``, then ``apply`` and ``verify`` unless it is ready; returns the outcome."""
        observed: Observation = await impl.look(ctx)
        if observed.status == "conflict":
            raise InstallerError(observed.detail or f"{self.plan[step_id].title} exists and does not fit",
                                 error_class=ErrorClass.CONFLICT, remedy=observed.remedy)
        if observed.status == "ready":
            ctx.outputs.update(observed.outputs)
            return "adopted" if observed.adopted else "unchanged"
        produced = await impl.apply(ctx, observed)
        if produced:
            ctx.outputs.update(produced)
        await impl.verify(ctx)
        return {"absent": "created", "pending": "created", "drifted": "updated"}[observed.status]

    def _succeed(self, step_id: str, outcome: str, outputs: dict[str, Any], secs: float) -> None:
        self.status[step_id] = "done"
        self.journal.set_status(step_id, "done" if self.teardown is None else "destroyed", finished=time.time(),
                                outcome=outcome)
        self.emit(StepDone(step_id, outcome, outputs, secs))

    def _fail(self, step_id: str, exc: InstallerError) -> None:
        self.status[step_id] = "failed"
        self.errors[step_id] = exc
        self.journal.set_status(step_id, "failed", finished=time.time(),
                                error={"class": exc.error_class.value, "message": exc.message, "remedy": exc.remedy})
        self.emit(StepFailed(step_id, exc.error_class.value, exc.message, exc.remedy))

    def _skip(self, step_id: str, bad: list[str]) -> None:
        if self.teardown is None:
            self.journal.set_status(step_id, "blocked")
            self.emit(StepSkipped(step_id, f"waiting on {', '.join(bad)}, which did not finish"))
        else:  # what it made stays, and its record with it: the next destroy takes it down
            self.emit(StepSkipped(step_id, f"kept: {', '.join(bad)} depend{'s' if len(bad) == 1 else ''} on it "
                                           f"and {'was' if len(bad) == 1 else 'were'} not destroyed"))

    async def _stop_at_gate(self, running: dict[str, asyncio.Task], exc: BaseException) -> None:
        """The gate failed: let the gate's steps still running finish (they began before it), start nothing else,
        record the run and raise ``exc``."""
        if running:
            await asyncio.gather(*running.values(), return_exceptions=True)
        self.journal.finish("preflight-failed")
        raise exc

    async def _stop_at_checkpoint(self, running: dict[str, asyncio.Task], exc: InstallerError) -> None:
        """The checkpoint refused to go on: the steps still running finish, nothing else starts; recorded, raised."""
        if running:
            await asyncio.gather(*running.values(), return_exceptions=True)
        self.journal.finish("stopped")
        raise exc

    async def run(self) -> RunFinished:
        start = time.time()
        if self.teardown is None:
            resumed = any(self.journal.step(s.id).get("status") for s in self.plan)
        else:  # an earlier destroy took some of it down already, or was stopped in the middle of a step
            resumed = any(rec.get("status") in ("destroyed", "interrupted")
                          for rec in self.journal.data.get("steps", {}).values())
        self.emit(RunStarted(self.journal.env_id, self.plan.ids, resumed))
        self.status = {s.id: "pending" for s in self.plan}
        running: dict[str, asyncio.Task] = {}
        gate = "waiting" if self.gate is not None else "passed"  # waiting | running | passed | failed
        try:
            while True:
                if gate == "waiting" and all(self.status[s] in ("done", "failed", "skipped") for s in self.gate_steps):
                    if any(self.status[s] != "done" for s in self.gate_steps):
                        gate = "failed"  # what the gate waits on did not finish: nothing behind it may start
                    else:
                        gate = "running"
                        running[GATE] = asyncio.create_task(self.gate(), name=GATE)
                for spec in self.plan:
                    if self.status[spec.id] != "pending":
                        continue
                    if gate != "passed" and spec.id not in self.gate_steps:
                        if gate == "failed":
                            self.status[spec.id] = "skipped"
                            self.journal.set_status(spec.id, "blocked")
                            self.emit(StepSkipped(spec.id, f"waiting on {', '.join(sorted(self.gate_steps))}, "
                                                           "which did not finish"))
                        continue
                    waits = self.waits_for[spec.id]
                    dep_states = [self.status[d] for d in waits]
                    if any(st in ("failed", "skipped") for st in dep_states):
                        self.status[spec.id] = "skipped"
                        bad = [d for d in waits if self.status[d] in ("failed", "skipped")]
                        self._skip(spec.id, bad)
                    elif all(st == "done" for st in dep_states):
                        self.status[spec.id] = "running"
                        running[spec.id] = asyncio.create_task(self._run_step(spec.id), name=spec.id)
                if not running:
                    break
                done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
                step_ended = False
                for task in done:
                    running.pop(task.get_name(), None)
                    if task.get_name() == GATE:
                        exc = None if task.cancelled() else task.exception()
                        if exc is not None:
                            await self._stop_at_gate(running, exc)
                        gate = "passed"
                        continue
                    task.result()  # _run_step handles its own errors; re-raise only cancellation
                    step_ended = True
                if step_ended and self.checkpoint is not None:
                    try:
                        await self.checkpoint()
                    except InstallerError as exc:
                        await self._stop_at_checkpoint(running, exc)
        except asyncio.CancelledError:
            for t in running.values():
                t.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)
            self.journal.save()
            fin = RunFinished("interrupted", EXIT_INTERRUPTED, [], time.time() - start)
            self.emit(fin)
            raise
        failed = [s for s, st in self.status.items() if st == "failed"]
        if self.teardown is None:
            outputs = {s.id: dict(self.journal.step(s.id).get("outputs", {})) for s in self.plan}
            status = "failed" if failed else "done"
        else:
            outputs, status = {}, "failed" if failed else "destroyed"
        fin = RunFinished(status, EXIT_INSTALL_FAILED if failed else EXIT_OK, failed, time.time() - start, outputs)
        self.journal.finish(fin.status)
        self.emit(fin)
        return fin
