"""Credentials mode: a service-account key in a Kubernetes secret, or Workload Identity (no keys)."""
from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from . import services
from .base import StepScreen

MODES = {
    # one line each at 80 columns (a wrapped line of an option loses its indent)
    "workload-identity": ("Workload Identity (recommended)",
                          "No keys: KFP's Kubernetes accounts act as the Google service accounts."),
    "key": ("Service-account key",
            "The seed's way: one KFP service-account key, kept in Secret user-gcp-sa."),
}


class CredentialsScreen(StepScreen):
    STEP = "credentials"
    TITLE_TEXT = "Credentials for workloads"
    AUTO_FOCUS = "#modes"

    def body(self) -> ComposeResult:
        yield Static("How should pipelines running on the cluster reach Google Cloud?", classes="muted")
        yield OptionList(id="modes")
        yield Static("Checking the organisation policy on key creation…", id="policy")

    def on_mount(self) -> None:
        self.hint("↑↓: choose · Enter: continue · Esc: back")
        self._fill()
        if self.state.key_allowed_for != self.state.data.get("project"):
            self.check()
        else:
            self._show_policy()

    def _fill(self) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        allowed = self.state.key_allowed if self.state.key_allowed_for == self.state.data.get("project") else None
        for mode, (title, text) in MODES.items():
            warn = "\n  [red]blocked here by iam.disableServiceAccountKeyCreation[/red]" if (
                mode == "key" and allowed is False) else ""
            ol.add_option(Option(f"[b]{title}[/b]\n  [dim]{text}[/dim]{warn}", id=mode))
        current = self.state.data.get("credentials") or ("workload-identity" if allowed is False else "key")
        ol.highlighted = list(MODES).index(current) if current in MODES else 0

    @work(thread=True, exclusive=True, group="policy", exit_on_error=False)
    def check(self) -> None:
        project = self.state.data["project"]
        try:
            allowed = services.key_creation_allowed(project)
        except Exception:
            allowed = None
        self.app.call_from_thread(self._checked, project, allowed)

    def _checked(self, project: str, allowed) -> None:
        if not self.is_attached:  # the user moved on before the answer came
            return
        self.state.key_allowed_for = project
        self.state.key_allowed = allowed
        self._fill()
        self._show_policy()

    def _show_policy(self) -> None:
        allowed = self.state.key_allowed
        if allowed is False:
            text = ("[red]✘ The organisation policy iam.disableServiceAccountKeyCreation is enforced on this "
                    "project:[/red] key creation will fail. Choose Workload Identity.")
        elif allowed is True:
            text = "[green]✔ Service-account keys may be created in this project.[/green] Either mode works."
        else:
            text = ("[yellow]● Could not read whether the organisation policy forbids keys[/yellow] (the Org "
                    "Policy API is off or not readable here; organisations made since May 2024 forbid keys by "
                    "default). Workload Identity always works.")
        self.query_one("#policy", Static).update(text)

    @on(OptionList.OptionSelected, "#modes")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_next()

    def commit(self) -> bool:
        ol = self.query_one(OptionList)
        if ol.highlighted is None:
            return False
        mode = ol.get_option_at_index(ol.highlighted).id
        if mode == "key" and self.state.key_allowed is False:
            self.notify("Key creation is blocked by the organisation policy in this project; "
                        "the install would fail. Choose Workload Identity.", severity="error", timeout=8)
            return False
        self.state.set("credentials", mode)
        return True
