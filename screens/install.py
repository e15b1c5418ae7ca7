"""Install: a pane per backend group, each with its steps, times, what it waits on and a log; an overall bar.

Few widgets, since the screen is drawn while the install runs on the same event loop (its first frame and every
re-layout hold the loop): the title and the overall bar are one painted line each (the bar is a Rich renderable,
not Textual's compound ProgressBar), the panes sit directly in a row on the screen (no frame container), each
pane holds two painted blocks and a tail of its log, and the keys are one painted line. Nothing changes size
while the install runs, so an event repaints a widget or two and never re-lays the screen out.
"""
from __future__ import annotations

import re
import time
from typing import Callable

from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen

from installer.reporters import fmt_duration

from .widgets import GroupPane, KeyBar, Painted, StepView, fmt_short

WAIT_EVERY = 30.0  # a "still waiting" line per wait at most this often (as the plain reporter and terraform do)
NARROW = 100  # narrower than this: one pane at a time, with tabs
_OP_ID = re.compile(r"\s*\(operation [^)]*\)")


def calm(text: str) -> str:
    """A wait or progress message as the pane shows it: no operation ids (they are in the debug log)."""
    return _OP_ID.sub("", text).strip()


class InstallScreen(Screen):
    BINDINGS = [Binding("ctrl+q", "app.quit_wizard", "Stop (resume later)", priority=True),
                Binding("l", "full_log", "Full log"),
                Binding("tab", "next_pane", "Next pane"),
                Binding("question_mark", "app.help", "Keys", key_display="?"),
                Binding("q", "quit_done", "Quit")]  # once the run is over (check_action)

    def __init__(self, plan, *, scale: float = 1.0, clock: Callable[[], float] = time.time,
                 wait_every: float = WAIT_EVERY, verb: str = "Installing", log_path: str = "") -> None:
        super().__init__()
        self.log_path = log_path  # the debug log, named under the full log (l)
        self.verb = verb  # "Destroying": the same panes for a destroy (installer.destroy through the engine)
        from installer.plan import GROUP_TITLES, GROUPS

        self.plan = plan
        self.clock = clock
        self.started: float | None = None
        self.finished: float | None = None
        self.views = {s.id: StepView(s.id, s.title, s.expected_seconds * scale) for s in plan}
        self.groups = {g: [self.views[s.id] for s in plan if s.group == g] for g in GROUPS}
        self.group_titles = GROUP_TITLES
        self.group_of = {s.id: s.group for s in plan}
        self.deps = {s.id: tuple(d for d in s.deps if d in self.views) for s in plan}
        self.expected_total = plan.critical_path()[0] * scale
        self.resumed = False
        self._early: list = []
        self._ready = False
        self._dirty: set[str] = set()
        self.run_status = ""
        self.wait_every = wait_every
        self._said: dict[str, tuple[str, float]] = {}  # step -> (the wait or progress said last, when)
        self.all_lines: list[tuple[str, str]] = []  # every pane's lines in order (the full log view, l)
        self.tab: str = next(iter(self.groups))  # the pane shown when the terminal is narrow
        self.tab_chosen = False  # the user picked a tab: it no longer follows the running steps

    def compose(self) -> ComposeResult:
        self.set_class(self.app.size.width < NARROW, "narrow")
        title = Painted(1, id="install-title")
        title.show(self._title())
        yield title
        yield Painted(1, id="overall")
        yield Painted(1, id="tabs")
        for g, views in self.groups.items():  # the screen's grid places them in a row (no container to draw)
            pane = GroupPane(g, self.group_titles.get(g, g), id=f"pane-{g}", classes="shown" if g == self.tab else "")
            pane.steps = views
            yield pane
        yield KeyBar()

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "next_pane":  # tabs only when one pane is shown at a time
            return self.has_class("narrow")
        if action == "quit_done":  # a destroy's panes stay once it is over: q quits then
            return self.finished is not None
        return True

    def action_quit_done(self) -> None:
        self.app.action_quit_wizard()

    def on_resize(self, event) -> None:
        narrow = self.app.size.width < NARROW
        if narrow != self.has_class("narrow"):
            self.set_class(narrow, "narrow")
            self._show_tab()

    # ---- one pane at a time (narrow terminals)
    def action_next_pane(self) -> None:
        groups = list(self.groups)
        self.tab_chosen = True
        self._select(groups[(groups.index(self.tab) + 1) % len(groups)])

    def _select(self, group: str) -> None:
        if group == self.tab:
            return
        self.tab = group
        if self.has_class("narrow"):
            self._show_tab()

    def _show_tab(self) -> None:
        for g, p in self._panes():
            p.set_class(g == self.tab, "shown")  # a re-layout: only when the shown pane changes
        self._show_tabs()

    def _follow(self, sid: str | None, failed: bool = False) -> None:
        """Show the pane of a step that starts (or fails), unless the user chose a tab (a failure always shows)."""
        g = self.group_of.get(sid or "")
        if g and (failed or not self.tab_chosen):
            self._select(g)

    def _show_tabs(self) -> None:
        if not self.has_class("narrow"):
            return
        t = Text(no_wrap=True, overflow="ellipsis")
        for g, views in self.groups.items():
            done = sum(1 for v in views if v.status == "done")
            bad = any(v.status in ("failed", "skipped") for v in views)
            run = any(v.status == "running" for v in views)
            mark = "✘ " if bad else ("▶ " if run else ("✔ " if done == len(views) else ""))
            label = f" {mark}{self.group_titles.get(g, g)} {done}/{len(views)} "
            t.append(label, style="reverse bold" if g == self.tab else ("red" if bad else "dim"))
            t.append(" ")
        t.append("Tab: next pane", style="dim")
        try:
            self.query_one("#tabs", Painted).show(t)
        except Exception:
            pass

    # ---- the full log (l)
    def action_full_log(self) -> None:
        from .modals import LogModal

        self._flush()
        self.app.push_screen(LogModal("Install log", self.all_lines, log_path=self.log_path))

    def _title(self) -> Text:
        t = Text.from_markup(f"[b]mlops-install[/b]  {self.verb}")
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
        self._still_waiting()
        self.refresh_all(running)

    def _still_waiting(self) -> None:
        """A "still waiting" line per open wait, at most every ``wait_every`` seconds (the ⧗ row counts on)."""
        now = self.clock()
        for v in self.views.values():
            if v.status != "running" or not v.waiting:
                continue
            said, at = self._said.get(v.id, ("", now))
            if now - at >= self.wait_every:
                self._said[v.id] = (said, now)
                self._write(v.id, f"{time.strftime('%H:%M:%S', time.localtime(now))} {v.title}: still waiting, "
                                  f"{fmt_short(now - (v.waiting_since or at))}")
                self._dirty.add(self.group_of[v.id])

    def _write(self, sid: str | None, line: str, kind: str = "") -> None:
        pane = self._pane(sid) or next(iter(self._panes()), (None, None))[1]
        self.all_lines.append((line, kind))
        if pane is not None:
            pane.write(line, kind)

    def _say(self, v: StepView, text: str, stamp: str, now: float) -> None:
        """A wait or progress line only when it says something new for the step (a change of state)."""
        if self._said.get(v.id, ("", 0.0))[0] == text:
            return
        self._said[v.id] = (text, self.clock())  # the screen's clock, as _still_waiting's
        self._write(v.id, f"{stamp} {v.title}: {text}")

    # ---- events from the engine (the app forwards them: attributes down)
    def apply(self, ev) -> None:
        from installer import events as E

        if not self._ready:
            self._early.append(ev)
            return
        now = ev.ts if ev.ts else self.clock()
        sid = getattr(ev, "step_id", None)
        v = self.views.get(sid) if sid else None
        stamp = time.strftime("%H:%M:%S", time.localtime(now))
        if isinstance(ev, E.RunStarted):
            self.started = self.started or now
            self.finished = None
            self.resumed = ev.resumed
            self.run_status = ""
            self.query_one("#install-title", Painted).show(self._title())  # said once, not in every pane
        elif isinstance(ev, E.StepStarted) and v:
            v.status, v.started, v.finished, v.waiting, v.note = "running", now, None, "", ""
            self._said.pop(v.id, None)
            self._write(sid, f"{stamp} {v.title}: started")
            self._follow(sid)
        elif isinstance(ev, E.StepProgress) and v:
            v.note = calm(ev.message or "")
            if v.note:
                self._say(v, v.note, stamp, now)
        elif isinstance(ev, E.StepLog):
            self._write(sid, f"{stamp} {(v.title + ': ') if v else ''}{ev.message}",
                        ev.level if ev.level in ("warning", "error") else "")
        elif isinstance(ev, E.StepWaiting) and v:
            # a step re-reports its wait at each poll, and each operation has its own id: the log says a wait
            # once per change, and "still waiting" at most every wait_every seconds (_still_waiting)
            on = calm(ev.on)
            v.waiting, v.waiting_since = on, ev.since
            if ev.expected_seconds and not v.expected:
                v.expected = ev.expected_seconds
            self._say(v, on if on.lower().startswith("waiting") else f"waiting on {on}", stamp, now)
        elif isinstance(ev, E.StepDone) and v:
            v.status, v.finished, v.outcome, v.waiting = "done", now, ev.outcome, ""
            if v.started is None:
                v.started = now - ev.seconds
            self._write(sid, f"{stamp} {v.title}: {ev.outcome} in {fmt_duration(ev.seconds)}")
        elif isinstance(ev, E.StepFailed):
            if v:
                v.status, v.finished, v.waiting = "failed", now, ""
            first_line = (ev.message or "").strip().splitlines()[0] if (ev.message or "").strip() else ""
            self._write(sid, f"{stamp} {(v.title if v else ev.step_id)} failed ({ev.error_class}): {first_line}",
                        "error")
            if ev.remedy:
                self._write(sid, f"{stamp} fix: {ev.remedy}", "warning")
            self._follow(sid, failed=True)
        elif isinstance(ev, E.StepSkipped) and v:
            v.status = "skipped"
            self._write(sid, f"{stamp} {v.title}: not started ({ev.reason})")
        elif isinstance(ev, E.Notice):
            self._write(None, f"{stamp} {ev.level}: {ev.message}",
                        ev.level if ev.level in ("warning", "error") else "")
        elif isinstance(ev, E.PreflightDone):
            bad = [c for c in ev.checks if not c.get("ok", True)]
            failed = [c for c in bad if c.get("level") != "warning"]
            warned = len(bad) - len(failed)
            self._write(None, f"{stamp} preflight: {len(ev.checks) - len(failed)}/{len(ev.checks)} checks passed"
                        + (f", {warned} warning(s)" if warned else ""))
            for c in bad:  # a warning is not a failure: "!" as on the failure screen, "✘" only for a fail
                mark = "!" if c.get("level") == "warning" else "✘"
                self._write(None, f"{stamp}   {mark} {c.get('name')}: {c.get('message', '')}",
                            "warning" if mark == "!" else "error")
        elif isinstance(ev, E.RunFinished):
            self.finished = now
            self.run_status = f"run {ev.status}"
            self.query_one("#install-title", Painted).show(self._title())
            self.query_one(KeyBar).rebuild()  # q: quit, now that the run is over
        if isinstance(ev, (E.StepStarted, E.StepDone)) and self.verb == "Installing":
            self._update_held()
        if isinstance(ev, E.RunFinished):
            for _, p in self._panes():
                p.flush_log()
            self.refresh_all()
        else:
            self._dirty.add(self.group_of.get(sid or "", "infrastructure"))

    def _update_held(self) -> None:
        """A pending step whose own pane's steps before it are done, held back only by another pane's (the KFP
        database components by the database user, issue 20): the pane says what it waits for."""
        for sid, v in self.views.items():
            held = ""
            if v.status == "pending":
                open_deps = [d for d in self.deps.get(sid, ()) if self.views[d].status != "done"]
                if open_deps and all(self.group_of[d] != self.group_of[sid] for d in open_deps):
                    held = ", ".join(self.views[d].title for d in open_deps)
            if held != v.held:
                v.held = held
                self._dirty.add(self.group_of[sid])

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
        self._show_tabs()
