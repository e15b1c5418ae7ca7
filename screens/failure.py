"""Failure: each failed step's error class, message and remedy, where the log is; Retry (resume) or Quit."""
from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Static

FIXABLE = {"bad-input", "api-disabled", "permission-denied", "quota", "org-policy", "name-taken", "conflict", "auth",
           "tool-missing"}


class FailureScreen(Screen):
    BINDINGS = [
        Binding("r", "retry", "Retry"),
        Binding("b", "review", "Change answers"),
        Binding("q", "quit_later", "Quit, resume later"),
        Binding("d", "app.destroy_env", "Destroy…"),
    ]

    def __init__(self, failures: list, finished, *, log_path: str, titles: dict[str, str], env_id: str,
                 skipped: int = 0, checks: list[dict] | None = None, account: str | None = None,
                 zone: str | None = None, kind: str = "install") -> None:
        super().__init__()
        self.kind = kind  # "destroy": a destroy stopped; Retry goes on with it, there are no answers to change
        self.account = account
        self.zone = zone
        self.checks = [c for c in (checks or []) if not c.get("ok", True)]
        self.failures = failures
        self.finished = finished
        self.log_path = log_path
        self.titles = titles
        self.env_id = env_id
        self.skipped = skipped

    def compose(self) -> ComposeResult:
        with Vertical(id="failure-frame"):
            yield Static(f"[b]mlops-install[/b]  The {self.kind} stopped", id="failure-title")
            with VerticalScroll(id="failure-body"):
                yield Static(self._failures_renderable(), id="failures")
                yield Static(self._where_renderable(), id="failure-where")
            with Horizontal(id="failure-nav"):
                yield Button("Retry (r)", id="retry", variant="primary")
                if self.kind == "install":
                    yield Button("Change answers (b)", id="review")
                yield Button("Quit, resume later (q)" if self.kind == "install" else "Quit (q)", id="quit")
        yield Footer()

    def check_action(self, action: str, parameters) -> bool | None:
        if self.kind == "destroy" and action in ("review", "destroy_env"):
            return False  # Retry goes on with the destroy
        return True

    def on_mount(self) -> None:
        self.query_one("#failure-body").focus()  # the arrows scroll the reasons at once; r, b and q still work

    def _failures_renderable(self):
        parts = []
        if self.checks:
            t = Table.grid(padding=(0, 1))
            t.add_column(no_wrap=True)
            t.add_column(style="bold", no_wrap=True)
            t.add_column()
            for c in self.checks:
                warn = c.get("level") == "warning"
                t.add_row(Text("!" if warn else "✘", style="yellow" if warn else "bold red"), c.get("name", "?"),
                          c.get("message") or c.get("detail") or "")
                if c.get("remedy") or c.get("fix"):
                    t.add_row("", "", Text(f"fix: {c.get('remedy') or c.get('fix')}", style="green"))
            parts += [Text("Preflight checks that did not pass (nothing was created):", style="bold"), t, Text("")]
        for f in self.failures:
            t = Table.grid(padding=(0, 1))
            t.add_column(style="bold", no_wrap=True)
            t.add_column()
            title = self.titles.get(f.step_id, f.step_id)
            t.add_row(Text("✘", style="bold red"), Text(title, style="bold"))
            kind = "you can fix this" if f.error_class in FIXABLE else "not your fault; Retry usually helps"
            t.add_row("class", Text(f"{f.error_class} ({kind})", style="red"))
            t.add_row("what", f.message)
            from . import services
            fix = services.actionable(f.error_class, f.message, f.remedy, project=self.env_id.partition("--")[0],
                                      account=self.account, zone=self.zone)
            if fix.remedy:
                t.add_row("fix", Text(fix.remedy, style="green"))
            if fix.keys:
                t.add_row("here", Text.assemble((fix.keys, "bold"), f": {fix.change}"))
            if fix.link:
                t.add_row("console", Text(fix.link, style="underline"))
            parts.append(t)
            parts.append(Text(""))
        if not parts:
            parts.append(Text("The install did not finish (no step reported an error).", style="red"))
        return Group(*parts)

    def _where_renderable(self):
        t = Text()
        if self.skipped:
            t.append(f"{self.skipped} later steps were not started because of this.\n")
        if self.kind == "destroy":
            t.append("What is not removed yet stays, and the journal says so; Retry goes on with the destroy (a "
                     "step already destroyed is skipped).\n")
        else:
            t.append("Everything already made is kept; Retry resumes where it stopped (each step checks what is "
                     "there first); d destroys what was made.\n")
        t.append("Log: ", style="bold")
        t.append(f"{self.log_path}\n")
        if self.kind == "destroy":
            t.append("Later: ", style="bold")
            t.append(f"mlops-install destroy --answers ... goes on ({self.env_id}).", style="")
            return t
        t.append("Resume later: ", style="bold")
        t.append("run mlops-install again; it offers to resume this environment ")
        t.append(f"({self.env_id}).", style="dim")
        return t

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {"retry": self.action_retry, "review": self.action_review, "quit": self.action_quit_later}[event.button.id]()

    def action_retry(self) -> None:
        self.app.retry_install()

    def action_review(self) -> None:
        self.app.walk_steps("review")

    def action_quit_later(self) -> None:
        self.app.finish(self.finished.exit_code if self.finished is not None and self.finished.exit_code else 4)
