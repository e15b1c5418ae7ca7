"""The wizard: ``WizardApp`` (Textual) and ``run_wizard`` (what ``mlops-install`` calls).

Flow: welcome → auth → project → APIs → location/prefix → credentials → review → install → done | failure.
Screens that a prefill (``--answers``) already answers are skipped on the way forward; Back still reaches them.
The install runs the core's async ``install`` in an app worker; its events arrive as messages and go down to the
install screen. Nothing blocking runs on the event loop: backend queries run in thread workers.
"""
from __future__ import annotations

import asyncio

import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.worker import Worker, WorkerState

from installer.flags import RunFlags, written_files

from . import services

log = logging.getLogger("mlops_install.wizard")

HERE = Path(__file__).parent
# The APIs come right after the project: on a fresh project the Compute API (regions, zones) and the IAM
# API (the key policy) are off until enabled, so the later questions can only be answered from real lists after it.
STEP_ORDER = ["welcome", "auth", "project", "apis", "location", "credentials", "review"]
STEP_TITLES = {"welcome": "Welcome", "auth": "Sign-in", "project": "Project", "apis": "APIs",
               "location": "Location", "credentials": "Credentials", "review": "Review"}


class WizardState:
    """What the screens share: the answers being built and what was found out along the way."""

    def __init__(self, prefill: dict | None = None, sources: dict[str, str] | None = None) -> None:
        self.data: dict[str, Any] = dict(prefill or {})
        self.prefilled: set[str] = {k for k, v in self.data.items() if v is not None}
        # where each prefilled value came from (installer.inputs: flag, answers file, environment, gcloud config);
        # values from the environment or gcloud's config are defaults the screens start from, not answers
        self.sources: dict[str, str] = {}
        self.defaults: dict[str, Any] = {}
        if sources:
            self.adopt_sources(sources)
        self.env: services.EnvInfo | None = None
        self.auth: services.AuthInfo | None = None
        self.projects: list[dict] | None = None
        self.projects_error = ""
        self.regions: dict[str, list[str]] = {}
        self.zones: dict[tuple[str, str], list[str]] = {}
        self.key_allowed: bool | None = None
        self.key_allowed_for: str | None = None
        self.key_policy_note = ""  # why the key policy is not known (the API not enabled, no permission)
        self.api_states: dict[str, bool] | None = None
        self.api_states_for: str | None = None
        self.apis_confirmed = False
        self.manifests_from = ""  # where kfp.manifests came from (services.fill_manifests)

    def adopt_sources(self, sources: dict[str, str]) -> None:
        """Take the input chain's sources: the environment's and gcloud's values move from the answers to the
        defaults (their screens are asked, starting from them)."""
        from installer.inputs import is_ambient
        self.sources = dict(sources)
        for key, src in self.sources.items():
            if "." not in key and is_ambient(src) and key in self.data:
                self.defaults[key] = self.data.pop(key)
                self.prefilled.discard(key)

    def given_elsewhere(self) -> list[str]:
        """"credentials from flag --credentials", ...: the answers that came from outside the wizard (a flag, the
        environment, gcloud's config; the answers file is named on its own) and were kept (Review lists them)."""
        from installer.inputs import FILE
        return [f"{k} from {src}" for k, src in sorted(self.sources.items()) if src not in (FILE, "default")]

    def source_note(self, key: str) -> str:
        """"from gcloud config core/project, configuration default" (or the flag, the file, the environment)."""
        src = self.sources.get(key)
        return f"from {src}" if src else ""

    def default(self, key: str) -> Any:
        """The answer so far, else the default from the environment or gcloud's config."""
        return self.data.get(key) if self.data.get(key) is not None else self.defaults.get(key)

    def set(self, key: str, value: Any) -> None:
        if value != self.default(key):  # answered here, not as the flag, file, environment or gcloud said
            self.sources.pop(key, None)
        if self.data.get(key) != value:
            if key == "project":  # what was found for another project no longer holds
                self.api_states = None
                self.key_allowed_for = None
            self.data[key] = value
        elif key not in self.data:
            self.data[key] = value

    def set_api_consent(self, yes: bool) -> None:
        apis = dict(self.data.get("apis") or {})
        apis["enable"] = yes
        self.data["apis"] = apis

    def answered(self, step: str) -> bool:
        p = self.prefilled
        if step == "project":
            return "project" in p
        if step == "location":
            return {"region", "prefix"} <= p
        if step == "credentials":
            return "credentials" in p
        if step == "apis":
            return "enable" in (self.data.get("apis") or {}) and "apis" in p
        return False

    def default_project(self) -> str | None:
        if self.data.get("project"):
            return self.data["project"]
        if self.defaults.get("project"):
            return self.defaults["project"]
        from installer.inputs import ambient  # the same chain as the command line: environment, gcloud config
        found = ambient().get("project")
        if found:
            return found[0]
        if self.auth and self.auth.project:
            return self.auth.project
        return None

    def answers(self):
        missing = [k for k in ("project", "region", "prefix") if not self.data.get(k)]
        if missing:
            raise ValueError(f"missing: {', '.join(missing)}")
        return services.answers_from_dict(self.data)

    def journal_status(self, env_id: str) -> dict[str, str]:
        try:
            from installer.journal import Journal
            j = Journal(env_id)
        except Exception:
            return {}
        return {sid: rec.get("status", "") for sid, rec in j.data.get("steps", {}).items()}


class EngineEvent(Message):
    """An engine event crossing into the UI."""

    def __init__(self, event) -> None:
        super().__init__()
        self.event = event


class WizardApp(App[int]):
    TITLE = "mlops-install"
    CSS_PATH = [HERE / "base.tcss", HERE / "modals.tcss", HERE / "welcome.tcss", HERE / "auth.tcss",
                HERE / "project.tcss", HERE / "location.tcss", HERE / "credentials.tcss", HERE / "apis.tcss",
                HERE / "review.tcss", HERE / "install.tcss", HERE / "failure.tcss", HERE / "done.tcss"]
    BINDINGS = [Binding("ctrl+q", "quit_wizard", "Quit", priority=True),
                Binding("question_mark", "help", "Keys", key_display="?", show=False)]
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, prefill: dict | None = None, *, answers_path: str | None = None, assume_yes: bool = False,
                 log_path: str | Path | None = None, start: str | None = None, offer_resume: bool = True,
                 clock: Callable[[], float] = time.time, prefill_problems: list[str] | None = None,
                 runtime: dict | None = None, manifests: str | None = None) -> None:
        super().__init__()
        self.prefill_problems = list(prefill_problems or [])
        self.state = WizardState(prefill)
        # where the KFP manifests come from, found as `demo` finds them (Review shows it; m changes it)
        try:
            self.state.manifests_from = services.fill_manifests(self.state.data, manifests)
        except Exception as exc:  # e.g. MLOPS_INSTALL_KFP_MANIFESTS names no folder: asked on Review
            self.state.manifests_from = ""
            self.prefill_problems.append(getattr(exc, "message", None) or str(exc))
        self.answers_file = answers_path
        self.assume_yes = assume_yes
        self.log_path = str(log_path or services.default_log_path())
        self.start_step = start
        self.offer_resume = offer_resume
        self.clock = clock
        self.current: str | None = None
        self.went_back = False
        self.return_to_review = False
        self.events: list = []
        self.finished = None
        self.written_answers: Path | None = None
        self.install_screen = None
        self.install_starting = False
        self.run_kind = "install"  # or "destroy": what the progress screen shows and what Retry runs again
        self.next_steps: list[tuple[str, str]] = []  # installer.next_steps rows once an install is done
        self.destroy_answers = None
        self.install_window: tuple[float, float | None] | None = None
        self.plan = None
        # the command line's runtime flags (export_key_path, write_kubeconfig); the steps add what they wrote
        # (exported_key_path, kubeconfig_written) and secrets of one run stay in memory (and across a Retry)
        self.runtime: dict = dict(runtime or {})
        self.first_frame_at: float | None = None
        self.worst_stall = 0.0
        # Review's confirmations: the changed settings of an installed environment (runtime apply_changes) and the
        # questions the backends will ask that the user already answered there (not asked twice)
        self.changes_confirmed = False
        self.consented: set[str] = set()
        # type-ahead: keys that arrive while a screen is changing, or while a step works before it moves on by
        # itself (the project's check, enabling the APIs), wait here and go to the next screen once it has its focus
        self._held_keys: list[events.Key] = []
        self._key_holders: list = []  # workers whose end moves the wizard on
        self._key_acting_since: float | None = None

    # ------------------------------------------------------------------ type-ahead
    # A terminal delivers a fast typist's keys at once: Enter on one step and the first letters of the next. Textual
    # hands each key to whatever has the focus when the key is read, while what a key does (a button, a binding, a
    # dialog's answer, a field's submit) takes effect a few messages later, and a screen that has just been pushed has
    # no focus until it is mounted and resumed; so the letters after such a key went to the screen being left, or to
    # nothing, and were lost (issue 19). Here a key waits, in order, while:
    # - the key before it may still be acting: it was not a letter typed into a field, and the messages it set off
    #   are still queued on the screens or their widgets (at most KEY_ACT_MAX: the install screen is never idle);
    # - the screen on top has not been resumed yet (Textual focuses it then);
    # - a step is working before it moves on by itself (sign-in check, project check, enabling APIs: hold_keys_while).
    # Quit (Ctrl+Q, Ctrl+C) never waits.
    NEVER_HELD = frozenset({"ctrl+q", "ctrl+c"})
    HELD_KEYS_MAX = 256  # a key held down during a long wait: the rest is dropped, not replayed for minutes
    KEY_ACT_MAX = 1.0  # s
    KEY_RECHECK = 0.01  # s between looks while keys wait

    def hold_keys_while(self, worker) -> None:
        """Keys wait until ``worker`` ends: a step that moves on by itself when its work is done."""
        self._key_holders.append(worker)

    def _key_still_acting(self) -> bool:
        if self._key_acting_since is None:
            return False
        if time.monotonic() - self._key_acting_since < self.KEY_ACT_MAX:
            # a message on its way (a key bubbling up, a Submitted, Pressed, a dismissed dialog's callback, which
            # Textual keeps in the pump's _next_callbacks until it is idle); Textual is pinned, see pyproject.toml
            for screen in self.screen_stack:
                for pump in (screen, *screen.walk_children()):
                    if pump.message_queue_size or pump._next_callbacks:
                        return True
            if self._next_callbacks:
                return True
        self._key_acting_since = None
        return False

    def _keys_wait(self) -> bool:
        self._key_holders = [w for w in self._key_holders if not w.is_finished]
        # a screen takes keys once it has been resumed (mounted, then focused by Textual's ScreenResume handler,
        # which counts it in stack_updates); a modal's screen below keeps its count, so closing a modal does not wait
        return bool(self._key_holders) or not self.screen.stack_updates or self._key_still_acting()

    async def on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.Key) or event.is_forwarded or event.key in self.NEVER_HELD:
            await super().on_event(event)
        elif self._held_keys or self._keys_wait():
            if len(self._held_keys) < self.HELD_KEYS_MAX:
                self._held_keys.append(event)
            if len(self._held_keys) == 1:
                self.set_timer(self.KEY_RECHECK, self._replay_keys)
        else:
            await self._pass_key(event)

    async def _pass_key(self, key: events.Key) -> None:
        from textual.widgets import Input

        await super().on_event(key)
        if not (key.is_printable and isinstance(self.focused, Input)):
            self._key_acting_since = time.monotonic()

    async def _replay_keys(self) -> None:
        while self._held_keys and not self._keys_wait():
            await self._pass_key(self._held_keys.pop(0))
        if self._held_keys:
            self.set_timer(self.KEY_RECHECK, self._replay_keys)

    # ------------------------------------------------------------------ start
    def on_mount(self) -> None:
        self.call_after_refresh(self._first_frame)
        self.detect_env()
        if self.start_step:
            self.goto(self.start_step)
            return
        self.goto("welcome")
        if self.prefill_problems:
            self.notify("These answers do not fit their rules and will be asked:\n" +
                        "\n".join(self.prefill_problems[:5]), severity="warning", timeout=15)
        if self.offer_resume:
            self.check_resume()

    def _first_frame(self) -> None:
        self.first_frame_at = time.time()
        marker = os.environ.get("MLOPS_WIZARD_FIRST_FRAME_FILE")
        if marker:
            t = os.times()  # CPU seconds this process used up to its first frame (barely moved by other load)
            Path(marker).write_text(f"{self.first_frame_at:.6f} {t.user + t.system:.3f}\n")
        # the install's heavy one-time work (imports, ~1 s of CPU; parsing the discovery documents, one GIL-holding
        # call of 50-90 ms for compute's) done now, in a thread, while the questions are asked, not as it starts
        self.run_worker(services.warm_up, thread=True, group="warm-up", name="warm-up", exit_on_error=False)
        self.call_after_refresh(self._import_later_screens)

    def _import_later_screens(self) -> None:
        """The install, done and failure screens' modules, imported now (a few ms on the loop while the welcome
        screen is read) rather than when Enter on the review screen starts the install."""
        from . import done, failure, install  # noqa: F401

    def detect_env(self) -> None:
        self.run_worker(self._detect_env, thread=True, group="env", name="env", exit_on_error=False)

    def _detect_env(self) -> None:
        env = services.detect_environment()
        self.call_from_thread(self._env_detected, env)

    def _env_detected(self, env) -> None:
        self.state.env = env
        scr = self.screen
        if hasattr(scr, "show_env"):
            scr.show_env()

    def check_resume(self) -> None:
        self.run_worker(self._find_unfinished, thread=True, group="resume", name="resume", exit_on_error=False)

    def _find_unfinished(self) -> None:
        d = self.state.data
        env_id = f"{d['project']}--{d['prefix']}" if d.get("project") and d.get("prefix") else None
        try:
            found = services.find_unfinished(env_id)
        except Exception:
            log.exception("looking for an unfinished install failed")
            found = None
        if found is not None:
            self.call_from_thread(self._offer_resume, found)

    def _offer_resume(self, found: services.UnfinishedRun) -> None:
        from .modals import ConfirmModal

        failed = f"; stopped at {', '.join(found.failed)}" if found.failed else ""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(found.updated)) if found.updated else "earlier"
        text = (f"Environment [b]{found.env_id}[/b] has an install that did not finish ({found.done} of "
                f"{found.total} steps done{failed}; last change {when}).\n\nResume it? Every step checks what is "
                f"already there, so nothing is made twice.")

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            project, _, prefix = found.env_id.partition("--")
            merged = services.deep_merge(found.answers or {}, self.state.data)
            merged.setdefault("project", project)
            merged.setdefault("prefix", prefix)
            self.state.data = merged
            self.state.prefilled |= {k for k, v in merged.items() if v is not None}
            # resume goes straight to the review once the answers are complete
            self.resuming = True
            if self.current == "welcome":
                self.go_next("welcome")

        self.push_screen(ConfirmModal("Resume the unfinished install?", text, yes="Resume", no="Start anew"),
                         answered)

    # ------------------------------------------------------------------ navigation
    def step_titles(self) -> dict[str, str]:
        return STEP_TITLES

    def make_screen(self, name: str):
        from . import apis, auth, credentials, location, project, review, welcome

        cls = {"welcome": welcome.WelcomeScreen, "auth": auth.AuthScreen, "project": project.ProjectScreen,
               "location": location.LocationScreen, "credentials": credentials.CredentialsScreen,
               "apis": apis.ApisScreen, "review": review.ReviewScreen}[name]
        return cls()

    def goto(self, name: str, *, returning: bool = False) -> None:
        if name == "install":
            self.start_install()
            return
        if returning:
            self.return_to_review = True
        scr = self.make_screen(name)
        self.current = name
        self._show(scr)

    def _show(self, scr):
        """Show ``scr``; returns an awaitable that is done when the screen it replaced is gone."""
        # one wizard screen at a time above the default screen; modals sit on top and are closed first
        while len(self.screen_stack) > 2:
            self.pop_screen()
        if len(self.screen_stack) > 1:
            return self.switch_screen(scr)
        return self.push_screen(scr)

    def _skippable(self, name: str) -> bool:
        if self.went_back:
            return False
        if name == "auth":
            a = self.state.auth
            return bool(getattr(self, "resuming", False) and a is not None and a.ok)
        return self.state.answered(name)

    def go_next(self, current: str) -> None:
        if current == "review":
            self.start_install()
            return
        if self.return_to_review and current != "welcome":
            self.return_to_review = False
            self.goto("review")
            return
        i = STEP_ORDER.index(current) + 1
        while i < len(STEP_ORDER) - 1 and self._skippable(STEP_ORDER[i]):
            i += 1
        self.goto(STEP_ORDER[i])

    def go_back(self, current: str) -> None:
        self.return_to_review = False
        i = STEP_ORDER.index(current)
        if i == 0:
            return
        self.went_back = True
        self.clear_notifications()  # they were about the step being left (and would cover the next dialog)
        self.goto(STEP_ORDER[i - 1])

    # ------------------------------------------------------------------ APIs (one confirm, enabled at once)
    async def enable_apis(self) -> tuple[bool, str]:
        """Enable the missing required APIs now (the backend's own APIs step, off the event loop)."""
        project = self.state.data["project"]
        required = list((self.state.data.get("apis") or {}).get("required") or [])
        if not required:
            from installer.answers import REQUIRED_APIS
            required = list(REQUIRED_APIS)
        try:
            out = await services.enable_apis_async(project, required,
                                                  lambda msg: log.info("enable APIs: %s", msg))
        except Exception as exc:
            log.exception("enabling the APIs failed")
            msg = getattr(exc, "message", None) or str(exc)
            remedy = getattr(exc, "remedy", "")
            return False, f"{msg} {remedy}".strip()
        legacy = (out or {}).get("legacy_missing") or []
        if legacy:
            self.notify(f"Legacy APIs not enabled (only a warning): {', '.join(legacy)}", severity="warning")
        return True, ""

    # ------------------------------------------------------------------ install
    def start_install(self) -> None:
        from .install import InstallScreen

        if self.install_starting or any(w.name == "install" and w.is_running for w in self.workers):
            return  # a second Enter must not start (and so cancel) a second run
        try:
            answers = self.state.answers()
        except Exception as exc:
            self.notify(f"The answers are incomplete: {exc}", severity="error")
            return
        problems = services.full_problems(answers)
        if problems:
            self.notify("The answers do not validate:\n" + "\n".join(problems[:6]), severity="error", timeout=12)
            return
        self.plan = services.build_plan(answers)
        self.run_kind = "install"
        self.events = []
        self.finished = None
        self.current = "install"
        self.install_screen = InstallScreen(self.plan, scale=services.time_scale(), clock=self.clock)
        self.install_starting = True

        def begin() -> None:
            # once the install screen is drawn and the review screen gone: drawing a new screen holds the event loop for some tens of
            # milliseconds, and the install's first requests and threads should not have to wait for it (nor it
            # for them); the user sees the panes at once either way
            self.install_starting = False
            self.run_worker(self._install(answers), group="install", name="install", exit_on_error=False,
                            exclusive=True)

        shown = self._show(self.install_screen)

        async def when_drawn() -> None:
            await shown  # the review screen is gone (its removal re-lays the install screen out once more)
            self.call_after_refresh(begin)

        self.run_worker(when_drawn(), group="install-start", name="install-start", exit_on_error=False)

    # ------------------------------------------------------------------ destroy
    # A Destroy action on the done and failure screens (this environment) and on the welcome screen (an environment
    # recorded on this machine): the same as `mlops-install destroy` (installer.destroy through services.destroy):
    # what goes and what stays is listed, the environment id is typed to confirm (as the command line asks), and the
    # steps' destroys run through the engine with the install's progress panes and journal.
    def action_pick_destroy(self) -> None:
        self.run_worker(self._find_recorded, thread=True, group="recorded", name="recorded", exit_on_error=False)

    def _find_recorded(self) -> None:
        envs = services.recorded_environments()
        self.call_from_thread(self._pick_destroy, envs)

    def _pick_destroy(self, envs: list) -> None:
        from .modals import PickModal

        if not envs:
            self.notify("No environment is recorded on this machine (nothing to destroy).", severity="warning")
            return
        by_id = {e.env_id: e for e in envs}

        def picked(env_id: str | None) -> None:
            env = by_id.get(env_id or "")
            if env is None:
                return
            try:
                answers = services.answers_from_dict(env.answers or {})
            except Exception as exc:
                self.notify(f"The recorded answers of {env.env_id} are incomplete: {exc}", severity="error")
                return
            self.action_destroy_env(answers)

        options = [(e.env_id, f"{e.env_id}  ({e.status}, "
                              f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(e.updated)) if e.updated else '?'})")
                   for e in envs]
        self.push_screen(PickModal("Destroy a recorded environment",
                                   "The environments installed from this machine. Pick one to see what a destroy "
                                   "removes; nothing goes before you confirm.", options), picked)

    def action_destroy_env(self, answers=None) -> None:
        """What destroying the environment does, then the confirm (``answers``: the shown install's by default)."""
        if answers is None:
            try:
                answers = self.state.answers()
            except Exception as exc:
                self.notify(f"The answers are incomplete: {exc}", severity="error")
                return
        self.run_worker(lambda: self._destroy_preview(answers), thread=True, group="destroy-preview",
                        name="destroy-preview", exit_on_error=False)

    def _destroy_preview(self, answers) -> None:
        try:
            rows, down = services.destroy_preview(answers)
        except Exception as exc:
            msg = f"{getattr(exc, 'message', '') or exc} {getattr(exc, 'remedy', '')}".strip()
            self.call_from_thread(self.notify, msg, severity="error", timeout=12)
            return
        self.call_from_thread(self._confirm_destroy, answers, rows, down)

    def _confirm_destroy(self, answers, rows, down) -> None:
        from rich.markup import escape

        from .modals import InputModal

        if not any(remove for *_, remove in rows):
            self.notify(f"Nothing of {answers.env_id} is left to destroy here.", severity="warning")
            return
        def line(mark: str, title: str, what: str) -> str:
            # one line a step: what it is, and how many Kubernetes objects go; the objects that existed before the
            # install (kept) are named in full (`mlops-install destroy` lists every object)
            parts = what.split("; ")
            head = parts[0] if len(parts[0]) <= 50 else parts[0][:49] + "…"
            extra = [p.split(":")[0] if p.startswith("deletes ") else p for p in parts[1:]]
            return f"  {mark} {escape(title)}: {escape('; '.join([head, *extra]))}"

        # in the plan's order (network, cluster, database first), what stays before what goes
        gone = [line("✘", title, what) for _, title, what, remove in reversed(rows) if remove]
        kept = [line("●", title, what) for _, title, what, remove in reversed(rows) if not remove]
        text = "\n".join((["[b]Kept[/b]:", *kept] if kept else [])
                         + ["[b]Removed[/b] (made by the install):", *gone]
                         + ["", f"Type [b]{escape(answers.env_id)}[/b] to destroy it (Esc cancels)."])

        def typed(value: str | None) -> None:
            if value == answers.env_id:
                self.start_destroy(answers, down)

        self.push_screen(InputModal(f"Destroy {answers.env_id}?", text, placeholder=answers.env_id,
                                    check=lambda v: None if v == answers.env_id else
                                    f"type {answers.env_id} exactly, or Esc to cancel"), typed)

    def start_destroy(self, answers, down) -> None:
        from .install import InstallScreen

        if any(w.name == "install" and w.is_running for w in self.workers):
            return
        self.run_kind = "destroy"
        self.destroy_answers = answers
        self.plan = down
        self.events = []
        self.finished = None
        self.current = "destroy"
        self.install_screen = InstallScreen(down, scale=services.time_scale(), clock=self.clock, verb="Destroying")
        self._show(self.install_screen)
        log.info("destroy of %s starts", answers.env_id)

        def emit(ev) -> None:
            self.post_message(EngineEvent(ev))

        self.run_worker(services.destroy(answers, emit, runtime={"consent": self.ask_consent}), group="install",
                        name="install", exit_on_error=False, exclusive=True)

    def _destroy_finished(self, fin) -> None:
        from .failure import FailureScreen

        self.finished = fin
        answers = self.destroy_answers
        if fin.exit_code == 0:
            self.current = "destroyed"
            self.notify(f"{answers.env_id} is destroyed. q quits.", timeout=30)
            return
        titles = {"destroy": "Destroy"} | {s.id: s.title for s in self.plan}
        self.current = "failure"
        self._show(FailureScreen(self._last_failures(), fin, log_path=self.log_path, titles=titles,
                                 env_id=answers.env_id, account=self.state.auth.account if self.state.auth else None,
                                 zone=answers.zone, kind="destroy"))

    async def _install(self, answers):
        log.info("install of %s starts (answers %s)", answers.env_id, answers.digest())

        def emit(ev) -> None:
            self.post_message(EngineEvent(ev))

        self.install_window = (time.time(), None)  # while the install's worker runs (the stall benchmark's phases)
        try:
            await self._write_answers(answers)  # when the install starts, and again when it ends (off the loop: fsync)
            # consent: APIs were agreed to on their screen; changed settings on Review (apply_changes); what the
            # backends ask while they run (a Secret not made by this install, manifests that differ from the
            # release, fields owned by another manager) is asked on screen through the consent hook; --yes says yes
            self.runtime["enable_apis"] = True
            self.runtime["apply_changes"] = bool(self.assume_yes or self.changes_confirmed)
            self.runtime["consent"] = self.ask_consent
            try:
                return await services.install(answers, emit, assume_yes=self.assume_yes, runtime=self.runtime)
            finally:
                await self._write_answers(answers)
        finally:
            self.install_window = (self.install_window[0], time.time())

    def ask_consent(self, question: str):
        """The backends' consent hook (``runtime["consent"]``, ``backends.k8s.apply.ask_consent``): the question in
        a dialog over the install screen (Replace / Cancel); returns an awaitable of the answer. From another
        thread it blocks that thread until the answer (the dialog is shown on the app's loop)."""
        import threading

        if threading.get_ident() != self._thread_id:
            return self.call_from_thread(self._consent_dialog, question)
        return self._consent_dialog(question)

    _DIFFERS = re.compile(r"differs? from Kubeflow Pipelines [^:]+: (.*)\. Apply them(?: anyway)?\?$", re.S)

    def _consented(self, question: str) -> bool:
        """Answered on Review: the same question, or the manifests' differences of one part (a KFP step asks about
        its own objects) all among those the user agreed to there for the whole folder."""
        if question in self.consented:
            return True
        m = self._DIFFERS.search(question)
        if not m:
            return False
        items = set(m.group(1).split("; "))
        for q in self.consented:
            agreed = self._DIFFERS.search(q)
            if agreed and items <= set(agreed.group(1).split("; ")):
                return True
        return False

    async def _consent_dialog(self, question: str) -> bool:
        from .modals import ConfirmModal

        if self._consented(question):  # answered on Review before Install
            log.info("consent given on Review: %s", question)
            return True
        log.info("asking for consent: %s", question)
        answer: asyncio.Future = asyncio.get_running_loop().create_future()

        def answered(yes: bool | None) -> None:
            if not answer.done():
                answer.set_result(bool(yes))

        yes_word = "Replace" if "Replace it?" in question else "Apply" if "anyway?" in question else "Yes"
        self.push_screen(ConfirmModal("The install needs your consent", question, yes=yes_word, no="Cancel"),
                         answered)
        yes = await answer
        log.info("consent %s", "given" if yes else "refused")
        return yes

    async def _write_answers(self, answers) -> None:
        try:
            self.written_answers = await asyncio.to_thread(
                services.write_answers, answers, services.answers_path_for(answers.env_id))
        except Exception:
            log.exception("could not write the answers")

    def on_engine_event(self, message: EngineEvent) -> None:
        ev = message.event
        self.events.append(ev)
        self._log_event(ev)
        if self.install_screen is not None:
            self.install_screen.apply(ev)

    def _log_event(self, ev) -> None:
        try:
            d = ev.to_dict()
            d.pop("ts", None)
            d.pop("outputs", None)
            log.info("event %s", d)
        except Exception:
            pass

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        w = event.worker
        if w.name != "install":
            if event.state == WorkerState.ERROR:
                log.error("worker %s failed: %r", w.name, w.error)
            return
        if getattr(self, "stopping", False):
            return
        if event.state == WorkerState.SUCCESS:
            self.call_after_refresh(self._install_finished, w.result)
        elif event.state == WorkerState.ERROR:
            from installer.events import RunFinished, StepFailed

            err = w.error
            log.error("the install raised", exc_info=err)
            self.events.append(StepFailed("install", "unexpected", f"{type(err).__name__}: {err}",
                                          "Retry; if it fails again, report it with the log."))
            self._install_finished(RunFinished("failed", 4, ["install"]))

    def _install_finished(self, fin) -> None:
        from installer.events import StepDone, StepSkipped

        if self.run_kind == "destroy":
            self._destroy_finished(fin)
            return

        from .done import DoneScreen
        from .failure import FailureScreen

        self.finished = fin
        answers = self.state.answers()
        titles = {"preflight": "Preflight", "install": "Install", "answers": "Answers"}
        titles.update({s.id: s.title for s in self.plan} if self.plan else {})
        if fin.exit_code == 0 and fin.status == "done":
            from installer.next_steps import next_steps

            outcomes = {e.step_id: e.outcome for e in self.events if isinstance(e, StepDone)}
            self.current = "done"
            path = str(self.written_answers or "")
            self.next_steps = next_steps(answers, fin.outputs, answers_path=path or None, log_path=self.log_path,
                                         kubeconfig=self.runtime.get("kubeconfig_written"))
            self._show(DoneScreen(fin, plan=self.plan, outcomes=outcomes, answers_path=path,
                                  command=services.repeat_command(path, self.runtime, answers.credentials),
                                  log_path=self.log_path, written=self.written_files(), steps=self.next_steps))
        else:
            skipped = len({e.step_id for e in self.events if isinstance(e, StepSkipped)})
            self.current = "failure"
            pre = [e for e in self.events if type(e).__name__ == "PreflightDone"]
            checks = list(pre[-1].checks) if pre and not pre[-1].ok else []
            self._show(FailureScreen(self._last_failures(), fin, log_path=self.log_path, titles=titles,
                                     env_id=answers.env_id, skipped=skipped, checks=checks,
                                     account=self.state.auth.account if self.state.auth else None,
                                     zone=answers.zone))

    def _last_failures(self) -> list:
        """The last failure of each step this run reported (a Retry may have fixed earlier ones)."""
        from installer.events import StepFailed

        last: dict[str, Any] = {}
        for e in self.events:
            if isinstance(e, StepFailed):
                last[e.step_id] = e
        return list(last.values())

    def written_files(self) -> list:
        """What ``--export-key`` / ``--write-kubeconfig`` made this run write (for the done screen and after exit)."""
        if not self.finished:
            return []
        creds = self.state.data.get("credentials")
        return written_files(self.runtime, self.finished, creds)

    def retry_install(self) -> None:
        """Retry on the failure screen: the run that stopped, again (an install resumes; a destroy goes on)."""
        if self.run_kind == "destroy":
            self.action_destroy_env(self.destroy_answers)
        else:
            self.start_install()

    # ------------------------------------------------------------------ quitting
    async def _stop_install(self) -> None:
        """Cancel the install and let the core record the state (journal saved, lock released), then exit 130."""
        self.stopping = True
        for w in list(self.workers):
            if w.name == "install" and w.is_running:
                w.cancel()
                try:
                    await w.wait()
                except Exception:
                    pass
        self.finish(130)

    def finish(self, code: int) -> None:
        self.exit(code, return_code=code)

    def action_help(self) -> None:
        """``?``: the keys of the screen shown, with the ones that work everywhere."""
        from .modals import HelpModal

        if isinstance(self.screen, HelpModal):
            return
        rows: list[tuple[str, str]] = []
        seen: set[str] = set()
        for _node, binding, enabled, _tip in self.screen.active_bindings.values():
            if not binding.description or binding.action in seen or binding.action == "help" or not enabled:
                continue
            seen.add(binding.action)
            rows.append((self.get_key_display(binding), binding.description))
        rows += [("Tab / Shift+Tab", "the next / previous field or button"),
                 ("↑ ↓ PgUp PgDn", "scroll a list or a long page"),
                 ("?", "these keys"), ("Ctrl+Q", "quit (during an install: stop it, resume later)")]
        self.push_screen(HelpModal(rows, "Keys on this screen"))

    def action_quit_wizard(self) -> None:
        from .modals import ConfirmModal

        if self.current in ("install", "destroy") and self.finished is None:
            def answered(yes: bool | None) -> None:
                if yes:
                    self.run_worker(self._stop_install(), group="stop", name="stop", exit_on_error=False)
            if self.current == "install":
                title, text = "Stop the install?", ("What is made so far is kept and recorded; run mlops-install "
                                                    "again to resume.")
            else:
                title, text = "Stop the destroy?", ("What is not removed yet stays and is recorded; destroy again "
                                                    "to go on.")
            self.push_screen(ConfirmModal(title, text, yes="Stop", no="Keep going"), answered)
            return
        if self.current in ("done", "destroyed"):
            self.finish(0)
        elif self.current == "failure" and self.finished is not None:
            self.finish(self.finished.exit_code or 4)
        else:
            self.finish(130)


# ---------------------------------------------------------------------------------------------- entry point


def can_drive_terminal() -> bool:
    """Whether Textual can drive this terminal (the core's rule: ``installer.environment.is_interactive``)."""
    from installer.environment import is_interactive
    return is_interactive()


def setup_log(log_path: str | Path) -> Path:
    """The core's redacting 0600 debug log (kept when the command line already set it up at that path)."""
    from installer.logs import current_log_path, setup_logging

    cur = current_log_path()
    if cur is not None and Path(cur) == Path(log_path):
        return cur
    return setup_logging(log_path)


def run_wizard(answers_path: str | None = None, *, prefill: Any = None, plain: bool = False,
               assume_yes: bool = False, log_path: str | Path | None = None, sandbox: bool = False,
               flags: RunFlags | None = None, manifests: str | None = None,
               sources: dict[str, str] | None = None) -> int:
    """Ask what is missing, install, and return the exit code (0 done, 2 bad input, 3 preflight, 4 failed,
    130 interrupted).

    ``answers_path``: a (partial) answers file that prefills; ``prefill``: a mapping or the core's
    ``validation.Partial`` on top of it. Fields that fail their rule are not prefilled (the wizard asks them).
    ``flags``: the command line's runtime flags for the install (``installer.flags.RunFlags``: ``--export-key PATH``,
    ``--write-kubeconfig``), refused as the command line refuses them; what the steps wrote is shown on the done
    screen and printed after the wizard.
    ``manifests``: ``--manifests DIR``; else the answers', else the core's lookup (``installer.manifests``).
    ``sources``: where each prefilled value came from (``installer.inputs.Resolved.sources``): shown by the screens;
    the environment's and gcloud's values are defaults, not answers."""
    from installer.errors import EXIT_INTERRUPTED, InstallerError, exit_code

    flags = flags or RunFlags()
    data: dict = {}
    problems: list[str] = []
    try:
        if answers_path:
            data, problems = services.load_answers_file(answers_path)
        if prefill is not None:
            more, more_problems = services.prefill_from(prefill)
            data = services.deep_merge(data, more)
            problems += [p for p in more_problems if p not in problems]
        manifests_from = services.fill_manifests(data, manifests)
        flags.check()  # without answers: the credentials are asked later (written_files says what that made)
    except InstallerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for p in getattr(exc, "problems", []) or []:
            print(f"  - {p}", file=sys.stderr)
        if exc.remedy:
            print(f"how to fix: {exc.remedy}", file=sys.stderr)
        return exit_code(exc)
    if log_path is None:
        try:
            from installer.logs import current_log_path
            log_path = current_log_path()
        except ImportError:
            log_path = None
    log_path = log_path or services.default_log_path()
    setup_log(log_path)
    runtime = flags.runtime()
    if plain or not can_drive_terminal():
        if problems:
            print("these answers do not fit their rules and will be asked:", file=sys.stderr)
            for p in problems:
                print(f"  - {p}", file=sys.stderr)
        from .plain import run_plain
        split = WizardState(data, sources=sources)  # the environment's and gcloud's values: defaults, not answers
        data = split.data
        return run_plain(data, answers_path=answers_path, assume_yes=assume_yes, log_path=str(log_path),
                         defaults=split.defaults, sources=split.sources,
                         runtime=runtime, manifests_from=manifests_from)
    app = WizardApp(data, answers_path=answers_path, assume_yes=assume_yes, log_path=log_path,
                    prefill_problems=problems, runtime=runtime)
    app.state.manifests_from = manifests_from
    if sources:
        app.state.adopt_sources(sources)
    try:
        rc = app.run()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    for w in app.written_files():  # the done screen is gone with the wizard: say it where it stays
        print(w.line())
    if app.written_answers and app.finished is not None:
        print(f"answers written to {app.written_answers}")
        if app.finished.exit_code != 0:
            print(f"debug log: {app.log_path}")
    from installer.next_steps import interrupted_text, next_steps_text

    if app.run_kind == "install" and app.next_steps and app.finished is not None and app.finished.exit_code == 0:
        print(next_steps_text(app.next_steps))  # the done screen is gone: the UI address and what to do stay
    elif app.run_kind == "install" and app.current == "install" and app.return_code == EXIT_INTERRUPTED:
        print(interrupted_text(app.written_answers or answers_path, app.log_path))  # Ctrl+Q during the install
    if rc is None:
        rc = app.return_code if app.return_code is not None else EXIT_INTERRUPTED
    return int(rc)
