"""Project: the projects the account can see, filtered as you type, or an id typed in."""
from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from . import services
from .base import StepScreen


class ProjectScreen(StepScreen):
    STEP = "project"
    TITLE_TEXT = "Google Cloud project"
    HINT = "Enter: choose · ↓: the list · Esc: back"
    AUTO_FOCUS = "#project-input"
    _usable: str | None = None  # the project last checked usable (Enter goes on without checking it again)

    def body(self) -> ComposeResult:
        yield Static("Type to filter, ↓ to pick from the list, or type a project id and press Enter.", classes="muted")
        yield Input(value=self.state.data.get("project") or self.state.default_project() or "",
                    placeholder="project id", id="project-input")
        yield Static("", id="project-check")
        default = self.state.data.get("project") or self.state.default_project()
        note = self.state.source_note("project") if default else ""
        if note:  # where the id it starts from came from: a flag, the answers file, the environment, gcloud
            yield Static(f"[dim]{default}: {note}[/dim]", id="project-source")
        yield OptionList(id="projects")

    def on_mount(self) -> None:
        inp = self.query_one(Input)
        inp.cursor_blink = not self.app.is_headless
        self._validate(inp.value)
        if self.state.projects is None:
            self.query_one(OptionList).loading = True
            self.load()
        else:
            self._fill()

    @work(thread=True, exclusive=True, group="projects", exit_on_error=False)
    def load(self) -> None:
        try:
            projects = services.list_projects()
            err = ""
        except Exception as exc:  # shown, not fatal: an id can still be typed
            projects, err = [], services._short(exc)
        self.app.call_from_thread(self._loaded, projects, err)

    def _loaded(self, projects, err: str) -> None:
        if not self.is_attached:  # the user moved on before the answer came
            return
        self.state.projects = projects
        self.state.projects_error = err
        self.query_one(OptionList).loading = False
        self._fill()
        self._validate(self.query_one(Input).value)

    def _fill(self) -> None:
        ol = self.query_one(OptionList)
        flt = self.query_one(Input).value.strip().lower()
        ol.clear_options()
        items = [p for p in (self.state.projects or [])
                 if not flt or flt in p.get("projectId", "").lower() or flt in (p.get("name") or "").lower()]
        # an exact match (the prefill) keeps the whole list in view
        if any(p.get("projectId") == flt for p in items) and len(items) == 1:
            items = list(self.state.projects or [])
        for p in items:
            pid = p.get("projectId", "")
            name = p.get("name") or ""
            ol.add_option(Option(f"{pid}  [dim]{name}[/dim]" if name and name != pid else pid, id=pid))
        if not items:
            if self.state.projects_error:
                ol.add_option(Option(f"[red]could not list projects: {self.state.projects_error}[/red]\n"
                                     f"[dim]type the project id above and press Enter[/dim]", disabled=True))
            else:
                ol.add_option(Option("[dim]no project matches; Enter uses the id as typed[/dim]", disabled=True))
        else:
            cur = self.query_one(Input).value.strip()
            ids = [p.get("projectId") for p in items]
            ol.highlighted = ids.index(cur) if cur in ids else 0

    @on(Input.Changed, "#project-input")
    def _changed(self, event: Input.Changed) -> None:
        self._fill()
        self._validate(event.value)

    def _validate(self, value: str) -> bool:
        value = value.strip()
        check = self.query_one("#project-check", Static)
        prob = services.project_id_problem(value)
        known = [p.get("projectId") for p in (self.state.projects or [])]
        matches = [k for k in known if value and value.lower() in k.lower()]
        if prob and matches:  # filtering, not a typo: say what Enter picks
            pick = matches[0] if len(matches) == 1 else "the highlighted project"
            check.update(f"[dim]filter: {len(matches)} of {len(known)} projects; Enter picks {pick}[/dim]")
            return False
        if prob:
            check.update(f"[red]✘ {prob}[/red]" if value else "")
            return False
        if self.state.projects is not None and known and value not in known:
            check.update(f"[yellow]● {value}: a valid id, but not among the projects this account can see[/yellow]")
        else:
            check.update(f"[green]✔ {value}[/green]")
        return True

    @on(Input.Submitted, "#project-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_next()

    @on(OptionList.OptionSelected, "#projects")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.query_one(Input).value = event.option.id
            self.action_next()

    def commit(self) -> bool:
        inp = self.query_one(Input)
        value = inp.value.strip()
        known = [p.get("projectId") for p in (self.state.projects or [])]
        if value not in known:
            flt = value.lower()
            matches = [k for k in known if flt and flt in k.lower()]
            if len(matches) == 1 or (matches and not services.looks_like_project_id(value)):
                ol = self.query_one(OptionList)
                opt = ol.get_option_at_index(ol.highlighted) if ol.highlighted is not None else None
                value = opt.id if opt is not None and opt.id else matches[0]
                inp.value = value
        if not self._validate(value):
            self.notify(services.project_id_problem(value) or "invalid project id", severity="error")
            return False
        if self._usable == value:
            self.state.set("project", value)
            return True
        # a project that cannot be used (does not exist, no permission) stops here, before anything is recorded
        self.query_one("#project-check", Static).update(f"[dim]checking that {value} can be used…[/dim]")
        self.wizard.hold_keys_while(self.check_usable(value))  # keys typed meanwhile are for the next step
        return False

    @work(thread=True, exclusive=True, group="project-usable", exit_on_error=False)
    def check_usable(self, project: str) -> None:
        problem, states = services.project_problem(project)
        self.app.call_from_thread(self._checked_usable, project, problem, states)

    def _checked_usable(self, project: str, problem: str | None, states) -> None:
        if not self.is_attached or self.query_one(Input).value.strip() != project:
            return  # the user moved on, or typed another id meanwhile
        if problem:
            self.query_one("#project-check", Static).update(
                f"[red]✘ {project} cannot be used: {problem}[/red]\nIt may not exist, or this account has no role "
                f"on it. Check the id, or pick a project from the list.")
            return
        self._usable = project
        self.state.set("project", project)
        if states is not None:  # the APIs screen shows them without asking again
            self.state.api_states_for, self.state.api_states = project, states
        self.action_next()
