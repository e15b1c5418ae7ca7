"""Reporters for ``--non-interactive``: plain lines with times, or one JSON event per line.

Both are callables taking an ``installer.events.Event`` (the engine's ``emit``). Long waits are reported as they
go: ``tick()`` (called periodically by ``run.py``) prints "waiting for cluster demo-kfp-cluster (operation …):
2m10s of ~4m" for every wait still open.
"""
from __future__ import annotations

import json
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from .logs import redact

if TYPE_CHECKING:  # pragma: no cover
    from .events import Event, RunFinished, StepWaiting


def fmt_duration(seconds: float | None) -> str:
    """A duration for people, the same on the command line and in the wizard: 4.2s under ten seconds (a whole
    number without the tenth: 2s), then 42s, 2m10s, 1h06m (rounded to the second: 59.6 is 1m00s, not 60s);
    ``None`` (not known) is "?"."""
    if seconds is None:
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 9.95 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    if m == 0:
        return f"{s}s"
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def fmt_expected(seconds: float) -> str:
    if seconds < 10:
        return f"~{seconds:.1f}s"
    if seconds < 60:
        return f"~{seconds:.0f}s"
    mins = seconds / 60
    return f"~{mins:.0f}m" if mins >= 2 or mins.is_integer() else f"~{mins:.1f}m"


class PlainReporter:
    """One line per event, prefixed with the elapsed time since the run started."""

    def __init__(self, stream: IO[str] | None = None, *, wait_interval: float = 30.0,
                 clock=time.time, what: str = "install") -> None:
        self.what = what  # "install" or "destroy": how the last line names the run
        self.stream = stream or sys.stdout
        self.clock = clock
        self.start = clock()
        self.wait_interval = wait_interval
        self.waits: dict[str, StepWaiting] = {}
        self._last_wait_line: dict[str, float] = {}
        self.titles: dict[str, str] = {}
        self.finished: RunFinished | None = None
        self.progress_interval = wait_interval / 6  # progress lines per step at most this often
        self._last_progress: dict[str, float] = {}

    def line(self, text: str) -> None:
        elapsed = fmt_duration(self.clock() - self.start)
        try:
            self.stream.write(f"[{elapsed:>6}] {redact(text)}\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):  # stdout closed: keep installing, the log has it all
            pass

    def __call__(self, ev: Event) -> None:
        # the event classes are imported here, not at the top: the wizard's screens import fmt_duration before
        # their first frame, and installer.events (a dozen dataclasses) costs ~5 ms to import
        from .events import (Notice, PreflightDone, RunFinished, RunStarted, StepDone, StepFailed, StepLog,
                             StepProgress, StepSkipped, StepStarted, StepWaiting)

        if isinstance(ev, RunStarted):
            self.line(f"{'resuming' if ev.resumed else 'starting'} {self.what} of {ev.env_id}: "
                      f"{len(ev.step_ids)} steps")
        elif isinstance(ev, StepStarted):
            self.titles[ev.step_id] = ev.title
            self.line(f"start  {ev.step_id}: {ev.title}")
        elif isinstance(ev, StepProgress):
            now = self.clock()
            final = ev.fraction is not None and ev.fraction >= 1.0
            if not final and now - self._last_progress.get(ev.step_id, -1e9) < self.progress_interval:
                return  # throttled: the debug log has every event
            self._last_progress[ev.step_id] = now
            pct = f" {ev.fraction * 100:.0f}%" if ev.fraction is not None else ""
            self.line(f"       {ev.step_id}:{pct} {ev.message}")
        elif isinstance(ev, StepLog):
            tag = {"warning": "warn ", "error": "error"}.get(ev.level, "      ")
            self.line(f"{tag} {ev.step_id}: {ev.message}")
        elif isinstance(ev, StepWaiting):
            first = ev.step_id not in self.waits or self.waits[ev.step_id].on != ev.on
            self.waits[ev.step_id] = ev
            if first:
                self._wait_line(ev)
        elif isinstance(ev, StepDone):
            self.waits.pop(ev.step_id, None)
            self.line(f"done   {ev.step_id}: {ev.outcome} in {fmt_duration(ev.seconds)}")
        elif isinstance(ev, StepFailed):
            self.waits.pop(ev.step_id, None)
            self.line(f"FAILED {ev.step_id} [{ev.error_class}]: {ev.message}")
            if ev.remedy:
                self.line(f"       fix: {ev.remedy}")
        elif isinstance(ev, StepSkipped):
            self.line(f"skip   {ev.step_id}: {ev.reason}")
        elif isinstance(ev, Notice):
            tag = {"warning": "warn ", "error": "error"}.get(ev.level, "note ")
            self.line(f"{tag}  {ev.message}")
        elif isinstance(ev, PreflightDone):
            for c in ev.checks:
                ok = c.get("ok", True)
                mark = "ok  " if ok else ("warn" if c.get("level") == "warning" else "FAIL")
                self.line(f"check  {mark} {c.get('name', '?')}: {c.get('message', '')}")
                if not ok and c.get("remedy"):
                    self.line(f"            fix: {c['remedy']}")
            self.line("preflight passed" if ev.ok else "preflight failed")
        elif isinstance(ev, RunFinished):
            self.waits.clear()
            self.finished = ev
            if ev.status in ("done", "destroyed"):
                self.line(f"{self.what} finished in {fmt_duration(ev.seconds)}")
            elif ev.status == "interrupted":
                self.line("interrupted: the journal is saved; run the same command again to resume")
            else:
                self.line(f"{self.what} failed ({', '.join(ev.failed)}); fix the problem above and run the same "
                          f"command again to {'go on' if self.what == 'destroy' else 'resume'}")

    def _wait_line(self, w: StepWaiting) -> None:
        now = self.clock()
        on = w.on[len("waiting for "):] if w.on.lower().startswith("waiting for ") else w.on
        text = f"waiting for {on}: {fmt_duration(now - w.since)}"
        if w.expected_seconds:
            text += f" of {fmt_expected(w.expected_seconds)}"
        self.line(text)
        self._last_wait_line[w.step_id] = now

    def tick(self) -> None:
        """Report every open wait not reported within ``wait_interval``."""
        now = self.clock()
        for sid, w in list(self.waits.items()):
            if now - self._last_wait_line.get(sid, 0) >= self.wait_interval:
                self._wait_line(w)


class JsonReporter:
    """One JSON object per event per line (``--output json``), redacted."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.finished: RunFinished | None = None

    def __call__(self, ev: Event) -> None:
        from .events import RunFinished

        if isinstance(ev, RunFinished):
            self.finished = ev
        try:
            self.stream.write(redact(json.dumps(ev.to_dict(), default=_default, sort_keys=True)) + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass

    def tick(self) -> None:
        return None


def _default(o: Any) -> Any:
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    return str(o)


def make_reporter(output: str = "plain", stream: IO[str] | None = None, wait_interval: float = 30.0,
                  what: str = "install"):
    if output == "json":
        return JsonReporter(stream)
    return PlainReporter(stream, wait_interval=wait_interval, what=what)
