"""Widgets of the install view: one pane per backend group (steps, times, what it waits on, a log)."""
from __future__ import annotations

import re
import textwrap
from collections import deque
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from installer.reporters import fmt_duration


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
    held: str = ""  # pending only because of steps of another pane (e.g. "Database user"): said under the rows

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


_STAMP = re.compile(r"\d\d:\d\d:\d\d ")


def wrap_log_line(line: str, width: int) -> list[tuple[str, str]]:
    """``line`` as rows of at most ``width`` cells, each a (lead, text) pair. A "HH:MM:SS " stamp is the first
    row's lead and the rows after it are indented under the text (a hanging indent), so a long message stays
    readable; in a pane too narrow for that, the whole line is wrapped."""
    def wrap(text: str, w: int) -> list[str]:
        return textwrap.wrap(text, width=max(w, 1), break_on_hyphens=False) or [""]

    if _STAMP.match(line) and width - 9 >= 12:
        rows = wrap(line[9:], width - 9)
        return [(line[:9], rows[0])] + [(" " * 9, r) for r in rows[1:]]
    return [("", r) for r in wrap(line, width)]


class KeyBar(Widget):
    """The screen's keys in one painted line, as Textual's ``Footer`` shows them, but built once when the screen
    is mounted: the footer is a widget per key and re-composes them whenever the bindings are refreshed, each
    time re-laying the screen out, which the install and done screens can't afford while an install runs on
    the same event loop. A click on a key presses it."""

    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $footer-background; color: $footer-foreground; }
    KeyBar > .keybar--key { color: $footer-key-foreground; background: $footer-key-background; text-style: bold; }
    """
    COMPONENT_CLASSES = {"keybar--key"}

    def __init__(self, keys: list[tuple[str, str, str]] | None = None, **kw) -> None:
        """``keys``: (key, as shown, description) to show instead of the screen's bindings (a dialog's own)."""
        super().__init__(**kw)
        self.keys: list[tuple[str, str, str]] = list(keys or [])
        self._fixed = keys is not None
        self._spans: list[tuple[int, int, str]] = []

    def on_mount(self) -> None:
        self.rebuild()

    def rebuild(self) -> None:
        """The screen's keys as they are now (after a change of what its ``check_action`` allows)."""
        if self._fixed:
            return
        seen: set[str] = set()
        keys = []
        for _node, binding, enabled, _tip in self.screen.active_bindings.values():
            if binding.show and enabled and binding.action not in seen:  # one key per action, as the footer
                seen.add(binding.action)
                keys.append((binding.key, self.app.get_key_display(binding), binding.description))
        self.keys = keys
        self.refresh()

    def render(self):
        key_style = self.get_component_rich_style("keybar--key", partial=True)
        t = Text(no_wrap=True, overflow="ellipsis")
        self._spans = []
        for key, shown, desc in self.keys:
            start = t.cell_len
            t.append(f" {shown} ", style=key_style)
            t.append(f" {desc} ")
            self._spans.append((start, t.cell_len, key))
        return t

    async def _on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                event.stop()
                self.app.simulate_key(key)  # as the footer's keys do
                return


class GroupPane(Widget):
    """One backend group's pane, drawn line by line: a rounded border whose colour is the group's state, the
    group's title and "done/total", a row per step (icon, title, elapsed against expected), what the running
    steps wait on, and the newest lines of its log, wrapped with a hanging indent.

    It is one widget on purpose. Textual's ``Log`` changes its virtual size and scrolls on each write, and a
    container's border or class change repaints all its children; each of those re-lays out or re-renders most
    of the screen (30-150 ms of the event loop at 120x40, while the install runs on the same loop). Here an
    update rebuilds this pane's rows from plain segments (about a millisecond) and repaints just this widget;
    nothing changes size. Every log line is kept (up to ``max_lines``) and the whole log is in the debug log.

    Attributes down: the install screen sets ``steps``, calls ``write``/``flush_log`` and ``refresh_view``.
    """

    DEFAULT_CSS = "GroupPane { width: 1fr; height: 1fr; }"
    # the colours, by theme variable (see ``_palette``): not component classes, each of which Textual styles
    # for every pane as it is mounted (10 classes x 3 panes were ~15 ms of the install screen's first frame)
    PALETTE = {"border": "panel-lighten-2", "border-running": "warning", "border-done": "success",
               "border-failed": "error", "log": "surface", "error": "text-error", "warning": "text-warning",
               "wait": "text-warning"}
    _palettes: dict[str, dict[str, Style]] = {}

    def __init__(self, group: str, title: str, *, max_lines: int = 2000, **kw) -> None:
        super().__init__(**kw)
        self.group = group
        self.title = title
        self.steps: list[StepView] = []
        self.state = ""  # "" | running | done | failed
        self.lines: deque[tuple[str, str]] = deque(maxlen=max_lines)  # (text, kind: "" | error | warning)
        self._pending: list[tuple[str, str]] = []
        self._rows: list[tuple] = []  # (icon, icon style, title, suffix, times, times style, bold)
        self._waits: list[tuple[str, str]] = []
        self._strips: list[Strip] | None = None
        self._strips_for: tuple[int, int] = (0, 0)
        self._cache: dict[tuple, list[Strip]] = {}  # built rows: a log line's (wrapped) or a step's, by content

    # ---- what the screen calls
    def write(self, line: str, kind: str = "") -> None:
        """Queue a log line (``kind``: "", "error" or "warning"); ``flush_log`` shows the queue in one repaint."""
        self._pending.append((line, kind))

    def flush_log(self) -> bool:
        if not self._pending:
            return False
        self.lines.extend(self._pending)
        self._pending = []
        self._changed()
        return True

    @property
    def log_text(self) -> str:
        return "\n".join(t for t, _ in self.lines)

    def refresh_view(self, now: float) -> None:
        rows, waits = [], []
        for s in self.steps:
            icon, style = ICONS.get(s.status, ("?", ""))
            el = s.elapsed(now)
            if s.status == "pending":
                times, tstyle = f"~{fmt_short(s.expected)}", "dim"
            elif s.status == "skipped":
                times, tstyle = "blocked", "dim red"
            elif s.status == "running":
                slow = el is not None and el > 2 * s.expected + 5
                times, tstyle = f"{fmt_short(el)}/{fmt_short(s.expected)}", "red" if slow else "yellow"
            else:
                times, tstyle = fmt_short(el), ""
            suffix = f" ({s.outcome})" if s.status == "done" and s.outcome and s.outcome != "created" else ""
            rows.append((icon, style, s.title, suffix, times, tstyle, s.status == "running"))
            if s.status == "running" and s.waiting:
                on = s.waiting[len("waiting for "):] if s.waiting.lower().startswith("waiting for ") else s.waiting
                waits.append((f"⧗ {on}", fmt_duration(now - (s.waiting_since or now))))  # ⧗ says "waiting"
            elif s.status == "pending" and s.held:
                waits.append((f"⧗ after {s.held}: {s.title}", ""))  # what it waits for first (narrow panes)
        statuses = {s.status for s in self.steps}
        if "failed" in statuses or "skipped" in statuses:
            state = "failed"
        elif statuses == {"done"}:
            state = "done"
        elif "running" in statuses:
            state = "running"
        else:
            state = ""
        if (rows, waits, state) != (self._rows, self._waits, self.state):
            self._rows, self._waits, self.state = rows, waits, state
            self._changed()

    @property
    def done_count(self) -> str:
        return f"{sum(1 for s in self.steps if s.status == 'done')}/{len(self.steps)}"

    # ---- drawing
    def _changed(self) -> None:
        """Rebuild the rows now and repaint only the lines that differ (a clock tick changes a line or two; Textual
        re-renders and re-composites every line of a widget that is refreshed whole)."""
        width, height = self.size
        old, old_for = self._strips, self._strips_for
        if old is None or old_for != (width, height) or not width or not height:
            self._strips = None
            self.refresh()
            return
        new = self._build(width, height)
        self._strips = new
        changed = [y for y in range(min(len(old), len(new))) if old[y] != new[y]]
        if len(old) != len(new):
            changed += list(range(min(len(old), len(new)), max(len(old), len(new))))
        # one region per run of changed lines
        start = prev = None
        for y in changed + [None]:
            if start is not None and (y is None or y != prev + 1):
                self.refresh(Region(0, start, width, prev - start + 1))
                start = None
            if y is not None and start is None:
                start = y
            prev = y

    def _on_resize(self, event: events.Resize) -> None:
        self._strips = None
        self._cache.clear()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips = None
        self._cache.clear()

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._strips is None or self._strips_for != (width, height):
            self._strips, self._strips_for = self._build(width, height), (width, height)
        return self._strips[y] if y < len(self._strips) else Strip.blank(width, self.rich_style)

    @property
    def wait_rows(self) -> int:
        return 2 if len(self.steps) > 4 else 1

    def _style(self, name: str) -> Style:
        """The style of one of this pane's parts ("error", "border-running", ...: ``PALETTE``), from the theme."""
        theme = self.app.theme
        pal = self._palettes.get(theme)
        if pal is None:
            v = self.app.theme_variables
            pal = {k: Style(bgcolor=v[var]) if k == "log" else Style(color=v[var])
                   for k, var in self.PALETTE.items() if v.get(var, "").startswith("#")}
            pal["title"] = Style(bold=True)
            pal["stamp"] = Style(dim=True)
            self._palettes[theme] = pal
        return pal.get(name, Style())

    def _build(self, width: int, height: int) -> list[Strip]:
        comp = self._style
        base = self.rich_style
        border = base + comp("border" + (f"-{self.state}" if self.state else ""))
        log_base = base + comp("log")
        inner = max(width - 4, 1)  # a border and a space on each side

        def framed(segs: list[Segment], fill: Style = base) -> Strip:
            body = Strip(segs).crop_extend(0, inner, fill)
            return Strip([Segment("│", border), Segment(" ", fill), *body, Segment(" ", fill), Segment("│", border)])

        def edge(left: str, right: str, label: str, at_end: bool) -> Strip:
            label = _fit(label, max(width - 6, 0))
            run = max(width - 2 - (cell_len(label) + 2 if label else 0) - 1, 0)
            segs = [Segment(left, border)]
            lab = [Segment(" ", border), Segment(label, base + comp("title")), Segment(" ", border)] \
                if label else []
            if at_end:
                segs += [Segment("─" * run, border), *lab, Segment("─", border)]
            else:
                segs += [Segment("─", border), *lab, Segment("─" * run, border)]
            segs.append(Segment(right, border))
            return Strip(segs).crop_extend(0, width, base)

        if width < 6 or height < 3:
            return [Strip.blank(width, base)] * height
        out = [edge("╭", "╮", self.title, False)]
        room = height - 2
        n_steps = min(len(self._rows), room)
        for row in self._rows[:n_steps]:
            key = ("step", self.state, inner, row)
            built = self._cache.get(key)
            if built is None:
                icon, istyle, title, suffix, times, tstyle, bold = row
                avail = max(inner - 2 - cell_len(times) - 1, 1)
                name = _fit(title + suffix, avail)
                name_main, name_suffix = name[:len(title)], name[len(title):]
                pad = inner - 2 - cell_len(name) - cell_len(times)
                built = self._remember(key, [framed([
                    Segment(icon, base + Style.parse(istyle) if istyle else base), Segment(" ", base),
                    Segment(name_main, base + Style(bold=True) if bold else base),
                    Segment(name_suffix, base + Style(dim=True)), Segment(" " * max(pad, 1), base),
                    Segment(times, base + Style.parse(tstyle) if tstyle else base)])])
            out += built
        room -= n_steps
        wait_style = base + comp("wait")
        n_wait = min(self.wait_rows, room)
        for i in range(n_wait):
            if i < len(self._waits):
                on, secs = self._waits[i]
                on = _fit(on, max(inner - cell_len(secs) - 1, 1))
                pad = inner - cell_len(on) - cell_len(secs)
                out.append(framed([Segment(on, wait_style), Segment(" " * max(pad, 1), base),
                                   Segment(secs, wait_style)]))
            else:
                out.append(framed([]))
        room -= n_wait
        out += self._log_rows(inner, room, log_base, framed)
        out.append(edge("╰", "╯", self.done_count, True))
        return out

    def _remember(self, key: tuple, strips: list[Strip]) -> list[Strip]:
        if len(self._cache) > 4000:  # rows of lines long gone by, or of an older width
            self._cache.clear()
        self._cache[key] = strips
        return strips

    def _log_rows(self, inner: int, room: int, log_base: Style, framed) -> list[Strip]:
        if room <= 0:
            return []
        comp = self._style
        styles = {"": log_base, "error": log_base + comp("error"),
                  "warning": log_base + comp("warning")}
        stamp_style = log_base + comp("stamp")
        entries: list[list[Strip]] = []
        used = 0
        for text, kind in reversed(self.lines):  # newest first, whole entries only, until the log area is full
            key = ("log", self.state, inner, text, kind)
            built = self._cache.get(key)
            if built is None:
                built = self._remember(key, [
                    framed([Segment(lead, stamp_style), Segment(body, styles.get(kind, log_base))], log_base)
                    for lead, body in wrap_log_line(text, inner)])
            if used + len(built) > room:
                if not entries:  # the newest entry alone is taller than the area: its beginning
                    entries.append(built[:room])
                    used = room
                break  # an older entry that does not fit whole is left out: the tail never starts mid-entry
            entries.append(built)
            used += len(built)
        rows = [strip for built in reversed(entries) for strip in built]
        rows += [framed([], log_base)] * (room - len(rows))
        return rows


def _fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells with an ellipsis."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"
