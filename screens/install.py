"""Install: a pane per backend group, each with its steps, times, what it waits on and a log; an overall bar.

Few widgets, since the screen is drawn while the install runs on the same event loop (its first frame and every
re-layout hold the loop): the title and the overall bar are one painted line each (the bar is a Rich renderable,
not Textual's compound ProgressBar), the panes sit directly in a row on the screen (no frame container), each
pane holds two painted blocks and a tail of its log, and the keys are one painted line. Nothing changes size
while the install runs, so an event repaints a widget or two and never re-lays the screen out.
"""
from __future__ import annotations

import time
from typing import Callable

from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from .widgets import GroupPane, KeyBar, Painted, StepView, fmt_duration


class InstallScreen(Screen):
    BINDINGS = [Binding("ctrl+q", "app.quit_wizard", "Stop (resume later)", priority=True)]

    def __init__(self, plan, *, scale: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        from installer.plan import GROUP_TITLES, GROUPS

        self.plan = plan
        self.clock = clock
        self.started: float | None = None
        self.finished: float | None = None
        self.views = {s.id: StepView(s.id, s.title, s.expected_seconds * scale) for s in plan}
        self.groups = {g: [self.views[s.id] for s in plan if s.group == g] for g in GROUPS}
        self.group_titles = GROUP_TITLES
        self.group_of = {s.id: s.group for s in plan}
        self.expected_total = plan.critical_path()[0] * scale
        self.resumed = False
        self._early: list = []
        self._ready = False
        self._dirty: set[str] = set()
        self.run_status = ""

    def compose(self) -> ComposeResult:
        title = Painted(1, id="install-title")
        title.show(self._title())
        yield title
        yield Painted(1, id="overall")
        for g, views in self.groups.items():  # the screen's grid places them in a row (no container to draw)
            pane = GroupPane(g, self.group_titles.get(g, g), id=f"pane-{g}")
            pane.steps = views
            yield pane
        yield KeyBar()

    def _title(self) -> Text:
        t = Text.from_markup("[b]mlops-install[/b]  Installing")
        if self.started:
            t.append(f" · started {time.strftime('%H:%M:%S', time.localtime(self.started))}", style="dim")
            if self.resumed:
                t.append(" (resuming)", style="dim")
        if self.finished:
            t.append(f" · {self.run_status}", style="bold")
        return t

    def on_mount(self) -> None:
        self._ready = True
        early, self._early = self._early, []
        for ev in early:  # events that came before the screen was up
            self.apply(ev)
        for _, p in self._panes():
            p.flush_log()
        self.refresh_all()
        # events only mark what changed; the panes are repainted and the queued log lines written twice a
        # second (each log write re-lays the screen out, which must not happen per event), and the running
        # clocks once a second
        self.set_interval(0.5, self._flush)
        self.set_interval(1.0, self._tick)

    def _flush(self) -> None:
        for _, p in self._panes():
            p.flush_log()
        if self._dirty:
            groups, self._dirty = self._dirty, set()
            self.refresh_all(groups)

    def _tick(self) -> None:
        running = {self.group_of[v.id] for v in self.views.values() if v.status == "running"}
        self.refresh_all(running)

    # ---- events from the engine (the app forwards them: attributes down)
    def apply(self, ev) -> None:
        from installer import events as E

        if not self._ready:
            self._early.append(ev)
            return
        now = ev.ts if ev.ts else self.clock()
        sid = getattr(ev, "step_id", None)
        v = self.views.get(sid) if sid else None
        pane = self._pane(sid)
        stamp = time.strftime("%H:%M:%S", time.localtime(now))
        if isinstance(ev, E.RunStarted):
            self.started = self.started or now
            self.finished = None
            self.resumed = ev.resumed
            self.run_status = ""
            self.query_one("#install-title", Painted).show(self._title())  # said once, not in every pane
        elif isinstance(ev, E.StepStarted) and v:
            v.status, v.started, v.finished, v.waiting, v.note = "running", now, None, "", ""
            pane and pane.write(f"{stamp} {v.title}: started")
        elif isinstance(ev, E.StepProgress) and v:
            v.note = ev.message
            if ev.message:
                pane and pane.write(f"{stamp} {v.title}: {ev.message}")
        elif isinstance(ev, E.StepLog):
            if pane:
                pane.write(f"{stamp} {(v.title + ': ') if v else ''}{ev.message}",
                           ev.level if ev.level in ("warning", "error") else "")
        elif isinstance(ev, E.StepWaiting) and v:
            again = v.waiting == ev.on  # a step re-reports its wait at each poll: the log says it once
            v.waiting, v.waiting_since = ev.on, ev.since
            if ev.expected_seconds and not v.expected:
                v.expected = ev.expected_seconds
            on = ev.on if ev.on.lower().startswith("waiting") else f"waiting on {ev.on}"
            if not again:
                pane and pane.write(f"{stamp} {v.title}: {on}")
        elif isinstance(ev, E.StepDone) and v:
            v.status, v.finished, v.outcome, v.waiting = "done", now, ev.outcome, ""
            if v.started is None:
                v.started = now - ev.seconds
            pane and pane.write(f"{stamp} {v.title}: {ev.outcome} in {fmt_duration(ev.seconds)}")
        elif isinstance(ev, E.StepFailed):
            if v:
                v.status, v.finished, v.waiting = "failed", now, ""
            target = pane or self._pane(self.plan.steps[0].id)
            if target:
                target.write(f"{stamp} {(v.title if v else ev.step_id)}: FAILED ({ev.error_class}) {ev.message}",
                             "error")
        elif isinstance(ev, E.StepSkipped) and v:
            v.status = "skipped"
            pane and pane.write(f"{stamp} {v.title}: not started ({ev.reason})")
        elif type(ev).__name__ == "Notice":
            for g, p in self._panes():
                p.write(f"{stamp} {ev.level}: {ev.message}", ev.level if ev.level in ("warning", "error") else "")
                break
        elif type(ev).__name__ == "PreflightDone":
            first = next(iter(self._panes()), (None, None))[1]
            if first is not None:
                bad = [c for c in ev.checks if not c.get("ok", True)]
                failed = [c for c in bad if c.get("level") != "warning"]
                warned = len(bad) - len(failed)
                first.write(f"{stamp} preflight: {len(ev.checks) - len(failed)}/{len(ev.checks)} checks passed"
                            + (f", {warned} warning(s)" if warned else ""))
                for c in bad:  # a warning is not a failure: "!" as on the failure screen, "✘" only for a fail
                    mark = "!" if c.get("level") == "warning" else "✘"
                    first.write(f"{stamp}   {mark} {c.get('name')}: {c.get('message', '')}",
                                "warning" if mark == "!" else "error")
        elif isinstance(ev, E.RunFinished):
            self.finished = now
            self.run_status = f"run {ev.status}"
            self.query_one("#install-title", Painted).show(self._title())
        if isinstance(ev, E.RunFinished):
            for _, p in self._panes():
                p.flush_log()
            self.refresh_all()
        else:
            self._dirty.add(self.group_of.get(sid or "", "infrastructure"))

    def _panes(self):
        for g in self.groups:
            try:
                yield g, self.query_one(f"#pane-{g}", GroupPane)
            except Exception:
                continue

    def _pane(self, sid: str | None) -> GroupPane | None:
        g = self.group_of.get(sid or "")
        if g is None:
            return None
        try:
            return self.query_one(f"#pane-{g}", GroupPane)
        except Exception:
            return None

    def refresh_all(self, groups: set[str] | None = None) -> None:
        now = self.finished or self.clock()
        for g, p in self._panes():
            if groups is None or g in groups:
                p.refresh_view(now)
        done = sum(1 for v in self.views.values() if v.status == "done")
        partial = sum(min((v.elapsed(now) or 0) / v.expected, 0.9) for v in self.views.values()
                      if v.status == "running" and v.expected)
        el = (now - self.started) if self.started else 0
        failed = sum(1 for v in self.views.values() if v.status == "failed")
        txt = Text(f" {done}/{len(self.views)} steps · {fmt_duration(el)} of ~{fmt_duration(self.expected_total)}")
        if failed:
            txt.append(f" · {failed} failed", style="bold red")
        running = [v.title for v in self.views.values() if v.status == "running"]
        if running:
            txt.append(f" · {len(running)} running", style="yellow")
        total = max(len(self.views), 1)
        row = Table.grid(expand=True)
        row.add_column(ratio=2)  # the bar: 40 % of the line
        row.add_column(no_wrap=True, width=6, justify="right")
        row.add_column(ratio=3, no_wrap=True, overflow="ellipsis")
        row.add_row(ProgressBar(total=total, completed=done + partial, complete_style="bold green",
                                finished_style="bold green"),
                    Text(f"{100 * (done + partial) / total:.0f}%"), txt)
        self.query_one("#overall", Painted).show(row)
