"""Welcome: where the wizard runs (Cloud Shell, the tfx-dev image or other), which tools are there, the terminal."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from .base import StepScreen

RUNTIME_TEXT = {
    "cloud-shell": "Google Cloud Shell: already signed in; keep the tab active during the install (20 min idle limit)",
    "tfx-dev": "the tfx-dev image",
    "other": "a workstation or container (not Cloud Shell, not tfx-dev)",
}
TOOL_NOTES = {
    "gcloud": "sign-in and project defaults",
    "kubectl": "optional: inspect the cluster afterwards",
    "gke-gcloud-auth-plugin": "optional: kubectl access to GKE",
    "kustomize": "optional: the installer renders KFP itself",
}


class WelcomeScreen(StepScreen):
    STEP = "welcome"
    TITLE_TEXT = "Welcome"
    HINT = "Enter: begin · Ctrl+Q: quit"
    BACK = False
    BINDINGS = StepScreen.BINDINGS + [Binding("d", "app.pick_destroy", "Destroy a recorded environment")]

    def body(self) -> ComposeResult:
        yield Static(
            "This wizard stands up Kubeflow Pipelines on GKE with Cloud SQL and a GCS bucket in your Google Cloud "
            # the default plan's critical path on Google's latencies is 12m52s (issue 20: KFP's rollout overlaps
            # Cloud SQL's creation; benchmarks/whole_install_wall_time.py); Review shows the plan's own figure
            "project. It asks a few questions, shows the plan, then installs (about 13 minutes).",
            id="intro")
        yield Static("Looking at this environment…", id="env")
        yield Static(self._term_text(self.app.size.width, self.app.size.height), id="term")

    def check_action(self, action: str, parameters) -> bool | None:
        return action != "back"  # the first step: nothing to go back to (and the footer does not offer it)

    def on_mount(self) -> None:
        self.show_env()

    def show_env(self) -> None:
        env = self.state.env
        if env is None or not self.query("#env"):  # not composed yet: on_mount shows it
            return
        t = Table.grid(padding=(0, 1))
        t.add_column(style="bold")
        t.add_column()
        t.add_row("Runs in", RUNTIME_TEXT.get(env.runtime, env.runtime))
        for note in env.notes:
            t.add_row("Note", Text(note, style="yellow"))
        if env.sandbox:
            t.add_row("Cloud", Text("the local sandbox (no real Google Cloud is touched)", style="yellow"))
        for tool, path in env.tools.items():
            mark = Text("✔ ", style="green") if path else Text("✘ ", style="red" if tool == "gcloud" else "yellow")
            t.add_row(tool, mark + Text("found" if path else "not found", style="") +
                      Text(f"  {TOOL_NOTES.get(tool, '')}", style="dim"))
        self.query_one("#env", Static).update(t)

    def on_resize(self, event: events.Resize) -> None:
        self._show_term(self.app.size.width, self.app.size.height)

    def _show_term(self, w: int, h: int) -> None:
        self.query_one("#term", Static).update(self._term_text(w, h))

    @staticmethod
    def _term_text(w: int, h: int) -> Text:
        ok = w >= 80 and h >= 24
        txt = Text(f"Terminal {w}×{h}: ", style="bold")
        txt.append("fine" if ok else "smaller than 80×24; enlarge it for a readable install view",
                   style="green" if ok else "red")
        return txt
