"""Widgets of the install view: one pane per backend group (steps, times, what it waits on, a log)."""
from __future__ import annotations

from dataclasses import dataclass, field

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Log


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(seconds, 0.0)
    if seconds < 9.95 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def fmt_short(seconds: float | None) -> str:
    """Compact, for the narrow panes: 0.4s, 22s, 1m30s, 4m, 10m."""
    if seconds is None:
        return "?"
    if 60 <= seconds < 120 and seconds % 60 == 0:
        return "1m"
    if seconds < 120:
        return fmt_duration(seconds)
    return f"{int(round(seconds / 60))}m"


ICONS = {
    "pending": ("·", "dim"),
    "running": ("▶", "bold yellow"),
    "done": ("✔", "green"),
    "failed": ("✘", "bold red"),
    "skipped": ("⊘", "dim red"),
}


@dataclass
class StepView:
    id: str
    title: str
    expected: float
    status: str = "pending"
    started: float | None = None
    finished: float | None = None
    outcome: str = ""
    waiting: str = ""
    waiting_since: float | None = None
    note: str = ""

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.finished or now) - self.started


class Painted(Widget):
    """Shows one renderable at a fixed height: ``show()`` repaints without a new layout (a layout of the whole
    install screen costs tens of milliseconds of the event loop; a repaint of this widget costs almost nothing)."""

    DEFAULT_CSS = "Painted { height: 1; }"

    def __init__(self, lines: int = 1, **kw) -> None:
        super().__init__(**kw)
        self._renderable = Text("")
        self.styles.height = lines

    def show(self, renderable) -> None:
        self._renderable = renderable
        self.refresh()

    def render(self):
        return self._renderable


class GroupPane(Vertical):
    """Attributes down: the install screen sets ``steps`` and calls ``refresh_view`` and ``write``."""

    DEFAULT_CSS = """
    GroupPane { width: 1fr; height: 1fr; border: round $panel; padding: 0 1; }
    GroupPane.running { border: round $warning; }
    GroupPane.done { border: round $success; }
    GroupPane.failed { border: round $error; }
    GroupPane .pane-wait { color: $warning; }
    GroupPane Log { height: 1fr; min-height: 3; background: $surface; }
    """

    def __init__(self, group: str, title: str, **kw) -> None:
        super().__init__(**kw)
        self.group = group
        self.border_title = title
        self.steps: list[StepView] = []
        self._pending: list[str] = []

    def compose(self) -> ComposeResult:
        yield Painted(max(len(self.steps), 1), classes="pane-steps")
        yield Painted(2 if len(self.steps) > 4 else 1, classes="pane-wait")
        yield Log(max_lines=2000, auto_scroll=True, classes="pane-log")

    def write(self, line: str) -> None:
        """Queue a log line; ``flush_log`` writes the queue in one go (each write re-lays the screen out)."""
        self._pending.append(line)

    def flush_log(self) -> bool:
        if not self._pending:
            return False
        lines, self._pending = self._pending, []
        self.query_one(Log).write_lines(lines)
        return True

    def refresh_view(self, now: float) -> None:
        t = Table.grid(padding=(0, 1), expand=True)
        t.add_column(width=1)
        t.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        waits = []
        for s in self.steps:
            icon, style = ICONS.get(s.status, ("?", ""))
            el = s.elapsed(now)
            if s.status == "pending":
                times = Text(f"~{fmt_short(s.expected)}", style="dim")
            elif s.status == "skipped":
                times = Text("blocked", style="dim red")
            elif s.status == "running":
                slow = el is not None and el > 2 * s.expected + 5
                times = Text(f"{fmt_short(el)}/{fmt_short(s.expected)}", style="red" if slow else "yellow")
            else:
                times = Text(fmt_short(el))
            title = Text(s.title, style="bold" if s.status == "running" else "")
            if s.status == "done" and s.outcome and s.outcome != "created":
                title.append(f" ({s.outcome})", style="dim")
            t.add_row(Text(icon, style=style), title, times)
            if s.status == "running" and s.waiting:
                waits.append((s.waiting, now - (s.waiting_since or now)))
        self.query_one(".pane-steps", Painted).show(t)
        w = Table.grid(expand=True)
        w.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        w.add_column(no_wrap=True, justify="right")
        for on, secs in waits:
            w.add_row(Text(f"⧗ {on}", style="yellow"), Text(f" {fmt_duration(secs)}", style="yellow"))
        self.query_one(".pane-wait", Painted).show(w)
        statuses = {s.status for s in self.steps}
        if "failed" in statuses or "skipped" in statuses:
            state = "failed"
        elif statuses == {"done"}:
            state = "done"
        elif "running" in statuses:
            state = "running"
        else:
            state = ""
        for c in ("running", "done", "failed"):  # class changes restyle: only when the state changes
            if c != state and self.has_class(c):
                self.remove_class(c)
        if state and not self.has_class(state):
            self.add_class(state)
        done = sum(1 for s in self.steps if s.status == "done")
        sub = f"{done}/{len(self.steps)}"
        if self.border_subtitle != sub:
            self.border_subtitle = sub
