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
            "One key file for the KFP service account, in the Secret user-gcp-sa."),
}


class CredentialsScreen(StepScreen):
    STEP = "credentials"
    TITLE_TEXT = "Credentials for workloads"
    HINT = "↑↓: choose · Enter: continue · Esc: back"
    AUTO_FOCUS = "#modes"
    _picked_here: str | None = None  # the mode picked on this screen (kept when the policy's answer redraws)
    _chosen: str | None = None  # the mode the list shows as chosen

    def body(self) -> ComposeResult:
        yield Static("How should pipelines running on the cluster reach Google Cloud?", classes="muted")
        yield OptionList(id="modes")
        yield Static("Checking the organisation policy on key creation…", id="policy")

    def on_mount(self) -> None:
        self._fill()
        if self.state.key_allowed_for != self.state.data.get("project"):
            self.check()
        else:
            self._show_policy()

    def _fill(self) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        allowed = self.state.key_allowed if self.state.key_allowed_for == self.state.data.get("project") else None
        # the default: Workload Identity unless keys are known to be allowed here (then either works: the key, as
        # before); the choice shows as ● / ○, not only by colour (NO_COLOR)
        current = self._picked_here or self.state.data.get("credentials") or (
            "key" if allowed is True else "workload-identity")
        if current not in MODES:
            current = "workload-identity"
        self._chosen = current
        for mode, (title, text) in MODES.items():
            warn = "\n    [red]blocked here by iam.disableServiceAccountKeyCreation[/red]" if (
                mode == "key" and allowed is False) else ""
            mark = "●" if mode == current else "○"
            ol.add_option(Option(f"{mark} [b]{title}[/b]\n    [dim]{text}[/dim]{warn}", id=mode))
        ol.highlighted = list(MODES).index(current)

    @work(thread=True, exclusive=True, group="policy", exit_on_error=False)
    def check(self) -> None:
        project = self.state.data["project"]
        try:
            info = services.key_policy(project)
        except Exception as exc:
            info = services.KeyPolicyInfo(None, services._short(exc))
        self.app.call_from_thread(self._checked, project, info)

    def _checked(self, project: str, info) -> None:
        if not self.is_attached:  # the user moved on before the answer came
            return
        self.state.key_allowed_for = project
        self.state.key_allowed = info.allowed
        self.state.key_policy_note = info.note
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
            note = self.state.key_policy_note
            if "not enabled" in note and "no permission" not in note:
                why = "the Org Policy API is not enabled in this project"
            elif "no permission" in note and "not enabled" not in note:
                why = "no permission to read the organisation policy here"
            else:
                why = note or "it could not be read"
            text = (f"[yellow]! Not known whether the organisation policy allows keys[/yellow] ({why}; "
                    "organisations made since May 2024 forbid keys by default). Workload Identity is the default "
                    "because it always works.")
        self.query_one("#policy", Static).update(text)

    @on(OptionList.OptionHighlighted, "#modes")
    def _moved(self, event: OptionList.OptionHighlighted) -> None:
        """The ● follows the highlight: the marked mode is the one Enter takes."""
        mode = event.option.id
        if mode and mode != self._chosen:
            self._picked_here = mode  # kept when the policy's answer redraws the list
            self._fill()

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
