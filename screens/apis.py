"""APIs: the required APIs and their state; enable the missing ones with one confirm."""
from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Button, DataTable, Static

from . import services
from .base import StepScreen
from .modals import ConfirmModal


class ApisScreen(StepScreen):
    STEP = "apis"
    TITLE_TEXT = "Google Cloud APIs"
    HINT = "Enter or e: enable the missing (asks first) · Esc: back"
    BINDINGS = StepScreen.BINDINGS + [Binding("e", "enable", "Enable missing"), Binding("r", "refresh", "Refresh")]

    def body(self) -> ComposeResult:
        yield Static("Checking which APIs are enabled…", id="summary")
        yield DataTable(id="api-table", cursor_type="row", zebra_stripes=True)
        yield Button("Enable the missing APIs", id="enable", variant="warning")

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("API", "state")
        self.query_one("#enable").display = False
        project = self.state.data["project"]
        if self.state.api_states_for == project and self.state.api_states is not None:
            self._show()
        else:
            t.loading = True
            self.check()

    @property
    def required(self) -> list[str]:
        from installer.answers import REQUIRED_APIS
        return list((self.state.data.get("apis") or {}).get("required") or REQUIRED_APIS)

    @work(thread=True, exclusive=True, group="apis", exit_on_error=False)
    def check(self) -> None:
        project = self.state.data["project"]
        try:
            states, err = services.api_states(project, self.required), ""
        except Exception as exc:
            states, err = None, services._short(exc)
            cls = getattr(getattr(exc, "error_class", None), "value", "")
            if cls in ("permission-denied", "not-found") or "permission" in err.lower() or "not found" in err.lower():
                self.unreachable = err
        self.app.call_from_thread(self._checked, project, states, err)

    def _checked(self, project, states, err) -> None:
        if not self.is_attached:  # the user moved on before the answer came
            return
        self.query_one(DataTable).loading = False
        self.state.api_states_for = project
        self.state.api_states = states
        if err and self.unreachable:
            self.query_one("#summary", Static).update(
                f"[red]✘ Project [b]{project}[/b] cannot be used: {err}[/red]\nIt may not exist, or this account "
                f"has no role on it. Esc goes back to the project; check the id (Enter continues anyway).")
        elif err:
            self.query_one("#summary", Static).update(f"[red]Could not read the API states: {err}[/red]")
        self._show()

    @property
    def missing(self) -> list[str]:
        st = self.state.api_states or {}
        return [a for a in self.required if not st.get(a)]

    def _show(self) -> None:
        from installer.answers import LEGACY_APIS

        t = self.query_one(DataTable)
        t.clear()
        st = self.state.api_states
        for api in self.required:
            if st is None:
                state = Text("unknown", style="yellow")
            elif st.get(api):
                state = Text("✔ enabled", style="green")
            elif api in LEGACY_APIS:
                state = Text("✘ disabled (legacy: only warns)", style="yellow")
            else:
                state = Text("✘ disabled", style="red")
            t.add_row(api, state, key=api)
        miss = self.missing
        btn = self.query_one("#enable", Button)
        if st is None:
            return
        if not miss:
            self.query_one("#summary", Static).update(f"[green]✔ All {len(self.required)} required APIs are enabled.[/green]")
            btn.display = False
        else:
            consent = (self.state.data.get("apis") or {}).get("enable")
            extra = " They will be enabled as the install's first step." if consent and self.state.apis_confirmed else ""
            self.query_one("#summary", Static).update(
                f"[b]{len(miss)} of {len(self.required)}[/b] required APIs are disabled.{extra}")
            btn.label = f"Enable the {len(miss)} missing APIs now"
            btn.display = True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        # Textual calls StepScreen.on_button_pressed too (every class's handler in the MRO): Back and Next are
        # handled there; calling super() here as well ran Next twice
        if event.button.id == "enable":
            event.stop()
            self.action_enable()

    def action_refresh(self) -> None:
        self.state.api_states = None
        self.unreachable, self._warned = "", False
        self.query_one(DataTable).loading = True
        self.check()

    def action_enable(self, then_next: bool = False) -> None:
        miss = self.missing
        if not miss:
            self.notify("Nothing to enable.")
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            self.state.set_api_consent(True)
            self.state.apis_confirmed = True
            worker = self.enable_now(then_next)
            if then_next:  # keys typed while the APIs are enabled are for the next step
                self.wizard.hold_keys_while(worker)

        names = ", ".join(a.removesuffix(".googleapis.com") for a in miss)
        self.app.push_screen(ConfirmModal(
            f"Enable {len(miss)} APIs in {self.state.data['project']}?",
            f"{names} (.googleapis.com)\n\nEnabling an API can take a minute; billing applies to what the APIs "
            f"create.", yes="Enable", no="Not now"), answered)

    @work(exclusive=True, group="enable", exit_on_error=False)
    async def enable_now(self, then_next: bool) -> None:
        self.query_one("#summary", Static).update("Enabling the missing APIs…")
        self.query_one(DataTable).loading = True
        ok, msg = await self.wizard.enable_apis()
        self.query_one(DataTable).loading = False
        if not ok:
            self.query_one("#summary", Static).update(f"[red]Enabling failed: {msg}[/red]")
            self.notify(f"Enabling failed: {msg}", severity="error", timeout=10)
            return
        import asyncio

        project = self.state.data["project"]
        try:
            states = await asyncio.to_thread(services.api_states, project, self.required)
        except Exception:
            states = None
        self._checked(project, states, "")
        self.notify("APIs enabled.")
        if then_next:
            self.move("next")

    unreachable = ""
    _warned = False

    def commit(self) -> bool:
        if self.unreachable and not self._warned:  # a project that does not answer: say so once before going on
            self._warned = True
            self.notify(f"{self.state.data['project']} cannot be used ({self.unreachable}). Esc: back to the "
                        f"project; Enter again: continue anyway.", severity="warning", timeout=10)
            return False
        if self.state.api_states is None:
            self.state.set_api_consent(True)
            return True
        if self.missing and not self.state.apis_confirmed:
            self.action_enable(then_next=True)
            return False
        return True
