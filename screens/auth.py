"""Auth: the active account and application default credentials; log in through the real terminal when missing."""
from __future__ import annotations

import signal
import subprocess

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Button, Static

from . import services
from .base import StepScreen


class AuthScreen(StepScreen):
    STEP = "auth"
    TITLE_TEXT = "Sign-in"
    HINT = "Enter: continue · l: log in · r: check again"
    BINDINGS = StepScreen.BINDINGS + [Binding("l", "login", "Log in"), Binding("r", "recheck", "Check again")]

    def body(self) -> ComposeResult:
        yield Static("Checking the active account…", id="who")
        yield Static("", id="advice")
        yield Button("Log in (gcloud auth login --update-adc)", id="login")

    def on_mount(self) -> None:
        self.query_one("#login").display = False
        if self.state.auth is not None:
            self.show_auth()
        else:  # a second or two: keys typed meanwhile (Enter to go on) wait for the answer rather than be refused
            self.wizard.hold_keys_while(self.check())

    @work(thread=True, exclusive=True, group="auth", exit_on_error=False)
    def check(self) -> None:
        info = services.whoami()
        self.app.call_from_thread(self._checked, info)

    def _checked(self, info) -> None:
        if not self.is_attached:  # the user moved on before the answer came
            return
        self.state.auth = info
        self.show_auth()

    def show_auth(self) -> None:
        info = self.state.auth
        env = self.state.env
        t = Table.grid(padding=(0, 1))
        t.add_column(style="bold")
        t.add_column()
        t.add_row("Account", Text(info.account or "none", style="green" if info.account else "red"))
        t.add_row("gcloud", Text(info.gcloud_account or "no active account", style="" if info.gcloud_account
                                 else "dim"))
        src = {"adc-service-account": "application default credentials (a service-account key)",
               "adc-user": "application default credentials (your user)",
               "gcloud": "gcloud's active account", "cloud-shell": "Cloud Shell"}.get(info.source or "", info.source)
        t.add_row("From", src or "-")
        t.add_row("ADC", Text("present" if info.adc else "missing", style="green" if info.adc else "red"))
        if info.project:
            t.add_row("Default project", info.project)
        if info.error:
            t.add_row("Problem", Text(info.error, style="red"))
        self.query_one("#who", Static).update(t)
        login = self.query_one("#login", Button)
        if info.ok:
            advice = "Signed in. The installer uses these credentials for every call."
            login.display = False
        elif env is not None and env.cloud_shell:
            advice = ("Cloud Shell signs you in; if a dialog 'Authorize Cloud Shell' shows in the browser, click "
                      "Authorize, then press r to check again.")
            login.display = False
        else:
            advice = ("No usable credentials. Press l to run `gcloud auth login --update-adc` in this terminal "
                      "(the wizard steps aside and comes back), then r to check again.")
            login.display = True
        self.query_one("#advice", Static).update(advice)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        # Textual calls StepScreen.on_button_pressed too (every class's handler in the MRO): Back and Next are
        # handled there; calling super() here as well ran Next twice
        if event.button.id == "login":
            event.stop()
            self.action_login()

    def action_recheck(self) -> None:
        self.query_one("#who", Static).update("Checking the active account…")
        self.check()

    def action_login(self) -> None:
        """Suspend the TUI and run gcloud's login in the real terminal (main thread: App.suspend is synchronous)."""
        from textual.app import SuspendNotSupported

        env = self.state.env
        if env is not None and env.cloud_shell:
            self.notify("Cloud Shell needs no login.")
            return
        cmd = services.login_command(env)
        try:
            with self.app.suspend():
                print(f"$ {' '.join(cmd)}\n(Ctrl+C gives up and returns to the wizard)\n", flush=True)
                # Ctrl+C in the real terminal reaches the whole process group: let it stop gcloud, not the
                # wizard (a Python handler, unlike SIG_IGN, is not inherited by the child)
                old = signal.signal(signal.SIGINT, lambda *_: None)
                try:
                    rc = subprocess.run(cmd).returncode
                except FileNotFoundError:
                    print("gcloud is not installed; see https://cloud.google.com/sdk/docs/install", flush=True)
                    rc = 127
                finally:
                    signal.signal(signal.SIGINT, old)
        except SuspendNotSupported:
            self.notify(f"This terminal cannot hand over; run `{' '.join(cmd)}` in another shell, then press r.",
                        severity="warning", timeout=10)
            return
        if rc != 0:
            self.notify(f"gcloud auth login exited with {rc}", severity="error")
        self.action_recheck()

    def commit(self) -> bool:
        info = self.state.auth
        if info is None:
            self.notify("Still checking the account…")
            return False
        if not info.ok:
            self.notify("Sign in first (l), or check again (r).", severity="error")
            return False
        return True
