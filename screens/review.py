"""Review: the plan (create or adopt, per resource) and the expected time; jump back to change anything."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from . import services
from .base import StepScreen
from .widgets import fmt_duration


class ReviewScreen(StepScreen):
    STEP = "review"
    TITLE_TEXT = "Review the plan"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "next", "Install"),
        Binding("p", "change('project')", "Project"),
        Binding("l", "change('location')", "Location/prefix"),
        Binding("c", "change('credentials')", "Credentials"),
        Binding("a", "change('apis')", "APIs"),
    ]

    def body(self) -> ComposeResult:
        with VerticalScroll(id="review-scroll"):
            yield Static("", id="summary")
            yield Static("", id="plan")
            yield Static("", id="estimate")

    def on_mount(self) -> None:
        self.query_one("#next").label = "Install"
        self.hint("Enter: install · p/l/c/a: change · Esc: back")
        self.show()

    def show(self) -> None:
        try:
            answers = self.state.answers()
        except Exception as exc:
            self.query_one("#summary", Static).update(f"[red]The answers are incomplete: {exc}[/red]")
            return
        d = self.state.data
        s = Table.grid(padding=(0, 1))
        s.add_column(style="bold")
        s.add_column()
        s.add_column(style="dim")
        s.add_row("Project", answers.project, "p")
        s.add_row("Location", f"{answers.region}" + (f", zone {answers.zone} (zonal cluster)" if answers.zone
                                                     else " (regional cluster)"), "l")
        s.add_row("Prefix", answers.prefix, "l")
        s.add_row("Credentials", {"key": "service-account key", "workload-identity": "Workload Identity"}
                  [answers.credentials], "c")
        miss = len([a for a, on in (self.state.api_states or {}).items() if not on])
        s.add_row("APIs", (f"{miss} to enable" if miss else "all enabled") if self.state.api_states is not None
                  else "checked during the install", "a")
        self.query_one("#summary", Static).update(s)

        plan = services.build_plan(answers)
        done = self.state.journal_status(answers.env_id)
        t = Table(box=None, padding=(0, 1), expand=True, show_edge=False, header_style="bold")
        t.add_column("group", no_wrap=True, style="dim")
        t.add_column("resource", no_wrap=True)
        t.add_column("name", overflow="ellipsis", no_wrap=True)
        t.add_column("action", no_wrap=True)
        from installer.plan import GROUP_TITLES
        existing = {"cluster": (d.get("cluster") or {}).get("existing"),
                    "sql-instance": (d.get("sql") or {}).get("existing"),
                    "bucket": (d.get("bucket") or {}).get("existing")}
        for spec in plan:
            if done.get(spec.id) == "done":
                action = Text("done earlier: check", style="green")
            elif existing.get(spec.id):
                action = Text("adopt existing", style="cyan")
            elif not spec.mutating:
                action = Text("wait", style="dim")
            else:
                action = Text("create (adopt if ours)", style="yellow")
            t.add_row(GROUP_TITLES.get(spec.group, spec.group), spec.title, spec.resource, action)
        self.query_one("#plan", Static).update(t)

        total, chain = plan.critical_path()
        scale = services.time_scale()
        est = f"Expected time: [b]about {fmt_duration(total * scale)}[/b] (the longest chain: " \
              f"{' → '.join(chain[-4:]) if len(chain) > 4 else ' → '.join(chain)})."
        if scale != 1:
            est += f" [dim]({fmt_duration(total)} at real-cloud speed; this cloud runs at ×{1 / scale:g})[/dim]"
        if any(v == "done" for v in done.values()):
            est += "\n[green]An earlier run of this environment left state; the install resumes it.[/green]"
        self.query_one("#estimate", Static).update(est)

    def action_change(self, step: str) -> None:
        self.wizard.goto(step, returning=True)

    def commit(self) -> bool:
        try:
            self.state.answers()
        except Exception as exc:
            self.notify(str(exc), severity="error")
            return False
        return True
