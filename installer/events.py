"""Typed events emitted by the engine; reporters and screens render them."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Event:
    ts: float = field(default_factory=time.time, kw_only=True)

    @property
    def type(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["event"] = self.type
        return d


@dataclass
class RunStarted(Event):
    env_id: str
    step_ids: list[str]
    resumed: bool = False


@dataclass
class StepStarted(Event):
    step_id: str
    title: str = ""


@dataclass
class StepProgress(Event):
    step_id: str
    fraction: float | None = None  # 0..1 when known
    message: str = ""


@dataclass
class StepLog(Event):
    step_id: str
    message: str
    level: str = "info"


@dataclass
class StepWaiting(Event):
    """A long wait: on what (e.g. "cluster x (operation y)"), since when, and how long it usually takes."""
    step_id: str
    on: str
    since: float
    expected_seconds: float | None = None


@dataclass
class StepDone(Event):
    step_id: str
    outcome: str = "created"  # created | adopted | unchanged | updated
    outputs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class StepFailed(Event):
    step_id: str
    error_class: str
    message: str
    remedy: str = ""


@dataclass
class StepSkipped(Event):
    step_id: str
    reason: str


@dataclass
class RunFinished(Event):
    status: str  # done | failed | interrupted
    exit_code: int
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)  # e.g. {"ui_url": ...}


@dataclass
class Notice(Event):
    """A run-level message that belongs to no step (changed answers, a skipped preflight, a stale lock taken over)."""
    message: str
    level: str = "info"  # info | warning | error


@dataclass
class PreflightDone(Event):
    ok: bool
    checks: list[dict[str, Any]] = field(default_factory=list)  # {"name", "ok", "message", "remedy", ...}


@dataclass
class RunTally:
    """What one run's events add up to, folded as they arrive (``add``), so that nobody rebuilds it by scanning the
    event list: each step's outcome, each step's last failure (a Retry may have fixed an earlier one), the skipped
    steps, and the preflight's report."""
    outcomes: dict[str, str] = field(default_factory=dict)
    failures: dict[str, StepFailed] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    preflight: PreflightDone | None = None

    def add(self, ev: Event) -> None:
        if isinstance(ev, StepDone):
            self.outcomes[ev.step_id] = ev.outcome
        elif isinstance(ev, StepFailed):
            self.failures[ev.step_id] = ev
        elif isinstance(ev, StepSkipped):
            self.skipped.add(ev.step_id)
        elif isinstance(ev, PreflightDone):
            self.preflight = ev

    def failed_checks(self) -> list[dict[str, Any]]:
        """The preflight's checks when it failed (the failure screen lists them), else none."""
        return list(self.preflight.checks) if self.preflight is not None and not self.preflight.ok else []
