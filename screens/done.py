"""Done: the KFP UI address, what was made, where the answers were written, how to repeat without the wizard."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Static

from installer.next_steps import ui_url_of, verified_line
from installer.reporters import fmt_duration

from .widgets import KeyBar


class DoneScreen(Screen):
    # q is on the button ("Quit (q)"); the footer's Quit is the app's ^q (one "Quit" there, not two)
    BINDINGS = [Binding("q", "finish", "Quit", show=False), Binding("enter", "finish", "Quit", show=False),
                Binding("d", "app.destroy_env", "Destroy…")]

    def __init__(self, finished, *, plan, outcomes: dict[str, str], answers_path: str, command: str,
                 log_path: str, written: list | None = None, steps: list[tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.steps = list(steps or [])  # installer.next_steps rows: kubectl, the KFP client, destroy, ...
        self.written = list(written or [])  # installer.flags.Written: what --export-key / --write-kubeconfig wrote
        self.finished = finished
        self.plan = plan
        self.outcomes = outcomes
        self.answers_path = answers_path
        self.command = command
        self.log_path = log_path

    def compose(self) -> ComposeResult:
        # few widgets, none nested deeper than needed: this screen's first frame is drawn in one go as the install ends
        yield Static("[b]mlops-install[/b]  Done", id="done-title")
        with VerticalScroll(id="done-body"):
            summary, made = self._summary()
            yield Static(summary, id="done-text")
            yield Static(made, id="done-made")
        with Horizontal(id="done-nav"):
            yield Button("Quit (q)", id="finish", variant="success")
        yield KeyBar()

    def on_mount(self) -> None:
        # the body: the arrows scroll it at once (Enter and q still quit, the screen's keys)
        self.query_one("#done-body").focus()

    def _summary(self):
        url = ui_url_of(self.finished.outputs)
        head = Text()
        head.append("Kubeflow Pipelines is up", style="bold green")
        head.append(f" (in {fmt_duration(self.finished.seconds)}).\n")
        head.append("KFP UI: ", style="bold")
        head.append(url or "(the address was not reported; see the log)", style="bold cyan underline" if url else "red")
        verified = verified_line((self.finished.outputs or {}).get("kfp-verify") or {})
        if verified:  # "verified: pipeline run succeeded in Ns: <the run's page>" (step kfp-verify)
            head.append("\n")
            head.append(verified, style="green")
        where = Text()
        for w in self.written:
            where.append(f"{w.what[:1].upper()}{w.what[1:]}: ", style="bold")
            where.append(f"{w.text}\n", style="" if w.ok else "yellow")
        where.append("Answers written to: ", style="bold")
        where.append(f"{self.answers_path}\n")
        where.append("Repeat without the wizard: ", style="bold")
        where.append(f"{self.command}\n")
        where.append("Log: ", style="bold")
        where.append(self.log_path)
        shown = {"KFP UI", "Answers", "Log"}  # said above
        rows = [(what, text) for what, text in self.steps if what not in shown]
        if rows:
            where.append("\n\nNext steps (printed again when you quit):\n", style="bold")
            where.append("\n".join(f"{what}: {text}" for what, text in rows))
        # one Text, not a Rich table: the screen's first frame is drawn as the install ends, on the event loop
        made = [(spec.title, self.outcomes.get(spec.id, ""), spec.resource) for spec in self.plan if spec.mutating]
        w = max((len(t) for t, _, _ in made), default=0)
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append("What the install made or found:\n", style="bold")
        for title, oc, resource in made:
            style = {"created": "green", "adopted": "cyan", "unchanged": "dim", "updated": "yellow"}.get(oc, "")
            out.append(f"{title:<{w}}  ")
            out.append(f"{oc:<9}", style=style)
            out.append(f"  {resource}\n")
        out.rstrip()
        return Text("\n").join([head, Text(""), where]), out

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_finish()

    def action_finish(self) -> None:
        self.app.finish(0)
