"""What a step is, and what it gets to work with.

A backend step implements four coroutines (see ``Step``). The engine calls
``look`` first; when the resource is already there and fits it records the
outcome without calling ``apply`` (so a re-run makes no mutating request),
otherwise it calls ``apply`` then ``verify``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

from .answers import Answers, Names
from .events import Event, StepLog, StepProgress, StepWaiting
from .journal import Journal
from .journal_writer import Saved
from .plan import Plan, StepSpec

LookStatus = Literal["absent", "ready", "pending", "conflict", "drifted"]


@dataclass
class Observation:
    """What ``look`` found.

    - absent: nothing there; apply will create it.
    - ready: there and fitting (ours, or adoptable); ``outputs`` are recorded and apply is skipped.
    - pending: there but not finished (e.g. an operation from an interrupted run); apply waits for it.
    - drifted: ours but some setting differs; apply updates it.
    - conflict: there, not ours, and does not fit: the step fails with ``detail`` as the message.
    """
    status: LookStatus
    detail: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    adopted: bool = False
    remedy: str = ""


@dataclass
class StepContext:
    answers: Answers
    plan: Plan
    spec: StepSpec
    record: dict[str, Any]  # this step's journal record ("outputs" holds ids; never a secret)
    runtime: dict[str, Any]  # in-memory values shared between steps of one run (may hold secrets; never persisted)
    emit: Callable[[Event], None]
    # persist the journal (returns the journal's ``Saved``: await it where the snapshot must be on disk)
    save: Callable[[], Any]
    outputs_of: Callable[[str], dict[str, Any]]
    # the journal's status of another step ("done", "failed", "running", ... or None): what the last runs did
    status_of: Callable[[str], str | None] = lambda step_id: None

    @property
    def names(self) -> Names:
        return self.answers.names

    @property
    def outputs(self) -> dict[str, Any]:
        return self.record.setdefault("outputs", {})

    def remember(self, **ids: Any) -> Saved:
        """Record ids of what was made (e.g. an operation name, a key id) and save the journal at once.

        ``await ctx.remember(...)`` before the next mutation: the journal is written by a writer thread during an
        install (off the event loop), and the awaited ``Saved`` says the snapshot holding the ids is on disk."""
        self.outputs.update(ids)
        saved = self.save()
        return saved if isinstance(saved, Saved) else Saved()

    @classmethod
    def of(cls, plan: Plan, step_id: str, journal: Journal, runtime: dict[str, Any],
           emit: Callable[[Event], None]) -> "StepContext":
        """The one way a step gets its context from a run's journal: the install and destroy (the engine) and
        ``plan``'s read-only look (``installer.run.describe_plan``)."""
        return cls(answers=plan.answers, plan=plan, spec=plan[step_id], record=journal.step(step_id),
                   runtime=runtime, emit=emit, save=journal.save,
                   outputs_of=lambda sid: journal.step(sid).get("outputs", {}), status_of=journal.status_of)

    @classmethod
    def detached(cls, plan: Plan, step_id: str, emit: Callable[[Event], None]) -> "StepContext":
        """A context outside any run (no journal: nothing recorded, no other step's outputs), for a step used on
        its own: the wizard's "enable the APIs now" (``backends.queries.enable_apis``)."""
        return cls(answers=plan.answers, plan=plan, spec=plan[step_id], record={}, runtime={}, emit=emit,
                   save=Saved, outputs_of=lambda sid: {})

    def log(self, message: str, level: str = "info") -> None:
        self.emit(StepLog(self.spec.id, message, level))

    def progress(self, message: str = "", fraction: float | None = None) -> None:
        self.emit(StepProgress(self.spec.id, fraction, message))

    def waiting(self, on: str, since: float | None = None, expected_seconds: float | None = None) -> None:
        self.emit(StepWaiting(self.spec.id, on, since or time.time(), expected_seconds))


class Step(Protocol):
    spec: StepSpec

    async def look(self, ctx: StepContext) -> Observation: ...

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any] | None: ...

    async def verify(self, ctx: StepContext) -> None: ...

    async def destroy(self, ctx: StepContext) -> None: ...


class BaseStep:
    """Convenience base: verify is a no-op, destroy is unsupported."""

    def __init__(self, spec: StepSpec) -> None:
        self.spec = spec

    async def look(self, ctx: StepContext) -> Observation:  # pragma: no cover - overridden
        return Observation("absent")

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any] | None:  # pragma: no cover
        return None

    async def verify(self, ctx: StepContext) -> None:
        return None

    async def destroy(self, ctx: StepContext) -> None:
        return None
