"""The wizard's Textual app, ``WizardApp``: the screen flow (``screens.app.run_wizard`` starts it).

Flow: welcome → auth → project → APIs → location/prefix → credentials → review → install → done | failure.
Screens that a prefill (``--answers``) already answers are skipped on the way forward; Back still reaches them.
The install and the destroy are driven by ``screens.run_driver.RunDriver`` (a part of this app): the core's async
``install`` runs in an app worker, its events arrive as messages and go down to the install screen. Nothing blocking
runs on the event loop: backend queries run in thread workers.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from . import answer_rules, core_runs
from .base import Move
from .run_driver import RunDriver
from .state import WizardState

if TYPE_CHECKING:  # pragma: no cover
    from installer.inputs import Given

log = logging.getLogger("mlops_install.wizard")

HERE = Path(__file__).parent
# The APIs come right after the project: on a fresh project the Compute API (regions, zones) and the IAM
# API (the key policy) are off until enabled, so the later questions can only be answered from real lists after it.
STEP_ORDER = ["welcome", "auth", "project", "apis", "location", "credentials", "review"]
STEP_TITLES = {"welcome": "Welcome", "auth": "Sign-in", "project": "Project", "apis": "APIs",
               "location": "Location", "credentials": "Credentials", "review": "Review"}


class WizardApp(RunDriver, App[int]):
    TITLE = "mlops-install"
    # What the first frame needs (the welcome screen); the dialogs' and the other screens' files come right after the
    # first frame (read_later_css), before a dialog can open (the resume offer's waits for a thread started then):
    # parsing them before it cost ~10 ms of CPU
    CSS_PATH = [HERE / "base.tcss", HERE / "welcome.tcss"]
    LATER_CSS_PATH = [HERE / "modals.tcss", HERE / "auth.tcss", HERE / "project.tcss", HERE / "location.tcss",
                      HERE / "credentials.tcss", HERE / "apis.tcss", HERE / "review.tcss", HERE / "install.tcss",
                      HERE / "failure.tcss", HERE / "done.tcss"]
    BINDINGS = [Binding("ctrl+q", "quit_wizard", "Quit", priority=True),
                Binding("question_mark", "help", "Keys", key_display="?", show=False)]
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, prefill: dict | None = None, *, answers_path: str | None = None, assume_yes: bool = False,
                 log_path: str | Path | None = None, start: str | None = None, offer_resume: bool = True,
                 clock: Callable[[], float] = time.time, prefill_problems: list[str] | None = None,
                 runtime: dict | None = None, manifests: str | None = None, given: Given | None = None) -> None:
        super().__init__()
        self.prefill_problems = list(prefill_problems or [])
        self.state = WizardState(prefill)
        # given: the command line's inputs, read; they become the prefill right after the first frame (_take_given)
        self._given = given
        self._manifests_flag = manifests
        if given is None:
            self._fill_manifests()
        self.answers_file = answers_path
        self.assume_yes = assume_yes
        self.log_path = str(log_path or core_runs.default_log_path())
        self.start_step = start
        self.offer_resume = offer_resume
        self.clock = clock
        self.current: str | None = None
        self.went_back = False
        self.return_to_review = False
        self.resuming = False  # the resume offer was taken: a signed-in auth step is skipped too
        self.stopping = False  # Ctrl+Q during a run: the install worker's end is not shown
        self.moves: asyncio.Queue = asyncio.Queue()  # what the steps hand back to the step coroutine (_walk)
        self._walker: asyncio.Task | None = None
        self.events: list = []  # the run's events, as they came
        self.tally = None  # an installer.events.RunTally once a run starts (RunDriver._new_run): what they add up to
        self.finished = None
        self.written_answers: Path | None = None
        self._answers_to_write = None  # the running install's answers, written once its run starts (RunDriver)
        self._run_started = False
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
        self._later_css_read = False  # LATER_CSS_PATH added (read_later_css)
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
        # a step's result the step coroutine has not read yet: the next screen is not shown yet either
        # the prefill not taken yet (keys typed before the first frame): the steps it answers are not known
        return (bool(self._key_holders) or not self.moves.empty() or not self.screen.stack_updates
                or self._given is not None or self._key_still_acting())

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
        if self.start_step:
            self.read_later_css()  # the first screen is a later one: its CSS now
            self.walk_steps(self.start_step)
            return
        self.walk_steps("welcome", shown=True)  # the default screen (get_default_screen)
        if self._given is None:
            self._say_prefill_problems()

    def _fill_manifests(self) -> None:
        """Where the KFP manifests come from, found as `demo` finds them (Review shows it; m changes it)."""
        from installer.errors import BadInput
        try:
            self.state.manifests_from = answer_rules.fill_manifests(self.state.data, self._manifests_flag)
        except BadInput as exc:  # e.g. MLOPS_INSTALL_KFP_MANIFESTS names no folder: asked on Review
            self.state.manifests_from = ""
            self.prefill_problems.append(exc.message)

    def _say_prefill_problems(self) -> None:
        if self.prefill_problems:
            self.notify("These answers do not fit their rules and will be asked:\n" +
                        "\n".join(self.prefill_problems[:5]), severity="warning", timeout=15)

    def _take_given(self) -> None:
        """The command line's inputs (``installer.inputs.Given``) with the environment's and gcloud's values, checked
        against the answers' rules and made the prefill. Done right after the first frame, not before: the rules'
        modules cost the start-up ~12 ms. Keys typed meanwhile wait for it (``_keys_wait``)."""
        from installer.inputs import partial_resolved

        partial, resolved = partial_resolved(self._given)
        self._given = None
        data, problems = answer_rules.prefill_from(partial)
        self.state.take_prefill(data, resolved.sources)
        self.prefill_problems += [p for p in problems if p not in self.prefill_problems]
        self._fill_manifests()
        self._say_prefill_problems()

    def _first_frame(self) -> None:
        self.first_frame_at = time.time()
        marker = os.environ.get("MLOPS_WIZARD_FIRST_FRAME_FILE")
        if marker:  # benchmarks/wizard_first_frame.py
            t = os.times()  # CPU seconds this process used up to its first frame (barely moved by other load)
            Path(marker).write_text(f"{self.first_frame_at:.6f} {t.user + t.system:.3f}\n")
        gc.enable()  # off for the start-up (installer.run_commands.run_interactive)
        # the environment's look-up (gcloud --version: ~0.6 s of CPU in a child process on a 2-core machine) and the
        # search for an unfinished install (journals, installer.journal's import) start now: started in on_mount
        # they ran beside the first frame's work and cost it ~8 ms of CPU (the GIL) and the child's core
        self.detect_env()
        if self._given is not None:
            self._take_given()  # before the search for an unfinished install, which looks for the prefill's env
        if self.offer_resume and not self.start_step:
            self.check_resume()
        # the install's heavy one-time work (imports, ~1 s of CPU; parsing the discovery documents, one GIL-holding
        # call of 50-90 ms for compute's) done now, in a thread, while the questions are asked, not as it starts
        self.run_worker(core_runs.warm_up, thread=True, group="warm-up", name="warm-up", exit_on_error=False)
        self.read_later_css()
        self.call_after_refresh(self._import_later_screens)

    def read_later_css(self) -> None:
        """The later screens' CSS (LATER_CSS_PATH), added once, after CSS_PATH's files as when they were all in
        CSS_PATH. Every rule in them names its screen's class, so what the welcome screen shows does not change: no
        restyle, and Textual parses only the new sources (it keeps the parsed ones) on its next styling.
        ``Stylesheet.add_source`` is what ``Stylesheet.read`` does, and it also drops the cached rules map."""
        if self._later_css_read:
            return
        self._later_css_read = True
        for path in self.LATER_CSS_PATH:
            self.stylesheet.add_source(path.read_text(encoding="utf-8"), read_from=(os.path.abspath(path), ""))
        if self.css_monitor is not None:  # textual's --dev mode: watch them too
            self.css_monitor.add_paths(self.LATER_CSS_PATH)
        if self.current not in (None, "welcome"):
            # a later screen came up before its CSS (keys typed ahead of the first frame): style everything again
            self.refresh_css(animate=False)

    def _import_later_screens(self) -> None:
        """The other screens' modules, imported now (~15 ms on the loop while the welcome screen is read) rather than
        before the first frame, or when Enter on the review screen starts the install."""
        from . import apis, auth, credentials, done, failure, install, location, project, review  # noqa: F401

    def detect_env(self) -> None:
        self.run_worker(self._detect_env, thread=True, group="env", name="env", exit_on_error=False)

    def _detect_env(self) -> None:
        from . import lookups  # imported here, after the first frame
        env = lookups.detect_environment()
        self.call_from_thread(self._env_detected, env)

    def _env_detected(self, env) -> None:
        self.state.env = env
        from .welcome import WelcomeScreen

        if isinstance(self.screen, WelcomeScreen):
            self.screen.show_env()

    def check_resume(self) -> None:
        self.run_worker(self._find_unfinished, thread=True, group="resume", name="resume", exit_on_error=False)

    def _find_unfinished(self) -> None:
        d = self.state.data
        env_id = f"{d['project']}--{d['prefix']}" if d.get("project") and d.get("prefix") else None
        try:
            found = core_runs.find_unfinished(env_id)
        except Exception:
            log.exception("looking for an unfinished install failed")
            found = None
        if found is not None:
            self.call_from_thread(self._offer_resume, found)

    def _offer_resume(self, found: core_runs.UnfinishedRun) -> None:
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
            merged = answer_rules.deep_merge(found.answers or {}, self.state.data)
            merged.setdefault("project", project)
            merged.setdefault("prefix", prefix)
            self.state.data = merged
            self.state.prefilled |= {k for k, v in merged.items() if v is not None}
            # resume goes straight to the review once the answers are complete
            self.resuming = True
            if self.current == "welcome":
                self.moves.put_nowait(Move("welcome", "next"))

        self.push_screen(ConfirmModal("Resume the unfinished install?", text, yes="Resume", no="Start anew"),
                         answered)

    # ------------------------------------------------------------------ navigation
    def step_titles(self) -> dict[str, str]:
        return STEP_TITLES

    def make_screen(self, name: str):
        if name == "welcome":  # the first frame's: the other steps' modules are imported after it (~10 ms)
            from .welcome import WelcomeScreen
            return WelcomeScreen()
        from . import apis, auth, credentials, location, project, review

        cls = {"auth": auth.AuthScreen, "project": project.ProjectScreen, "location": location.LocationScreen,
               "credentials": credentials.CredentialsScreen, "apis": apis.ApisScreen,
               "review": review.ReviewScreen}[name]
        return cls()

    def get_default_screen(self) -> Screen:
        """The bottom of the screen stack: the first welcome step itself, or (``start``: a later step first) a blank
        screen. The steps after it are shown above it (``_show``); a blank default screen under the welcome step
        cost its first frame ~15 ms (benchmarks/wizard_first_frame.py): it was styled, laid out and drawn too."""
        if self.start_step:
            return super().get_default_screen()
        return self.make_screen("welcome")

    def walk_steps(self, first: str, *, shown: bool = False) -> None:
        """Show step ``first`` now (at start-up: before the first frame; ``shown``: it is already the screen, the
        default one) and start the step coroutine from it (at start-up, or the failure screen's "change the
        answers"); it replaces one that is still waiting (e.g. under a destroy started from the welcome screen). A
        task of the app's, not a worker: workers are the backends' work, which tests and benchmarks wait for."""
        if self._walker is not None:
            self._walker.cancel()
        self.moves = asyncio.Queue()
        self.current = first
        if not shown:
            self._show(self.make_screen(first))
        self._walker = asyncio.get_running_loop().create_task(self._walk(), name="wizard-steps")
        self._walker.add_done_callback(self._walk_ended)

    def _walk_ended(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.call_next(self._raise, task.exception())  # a bug: Textual's crash report, as from a key handler

    @staticmethod
    def _raise(exc: BaseException) -> None:
        raise exc

    def on_unmount(self) -> None:
        if self._walker is not None:
            self._walker.cancel()

    async def _walk(self) -> None:
        """The wizard's one step coroutine: wait for the result the shown step hands back (``Move``), work out the
        next step and show it, until the review's Next starts the install. A move from a screen already left (a
        second Enter) is dropped."""
        while True:
            move = await self.moves.get()
            while move.step != self.current:
                move = await self.moves.get()
            step = self._after(move)
            if step == "install":
                self.start_install()
                return
            if step != self.current:
                self.current = step
                self._show(self.make_screen(step))

    def _after(self, move: Move) -> str:
        """The step that comes after ``move``: Back goes to the step before (the first step stays); Next skips the
        steps a prefill answers (not after going back) and returns to the review when a change was asked from
        there; any other ``to`` is a step to change, after which Next returns to the review."""
        if move.to == "back":
            self.return_to_review = False
            i = STEP_ORDER.index(move.step)
            if i == 0:
                return move.step
            self.went_back = True
            self.clear_notifications()  # they were about the step being left (and would cover the next dialog)
            return STEP_ORDER[i - 1]
        if move.to != "next":
            self.return_to_review = True
            return move.to
        if move.step == "review":
            return "install"
        if self.return_to_review and move.step != "welcome":
            self.return_to_review = False
            return "review"
        i = STEP_ORDER.index(move.step) + 1
        while i < len(STEP_ORDER) - 1 and self._skippable(STEP_ORDER[i]):
            i += 1
        return STEP_ORDER[i]

    def _show(self, scr):
        """Show ``scr``; returns an awaitable that is done when the screen it replaced is gone."""
        # one wizard screen at a time above the default screen (the first welcome screen, or a blank one), which
        # stays under them (Textual cannot switch it away); modals sit on top and are closed first
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
            return bool(self.resuming and a is not None and a.ok)
        return self.state.answered(name)

    # ------------------------------------------------------------------ APIs (one confirm, enabled at once)
    async def enable_apis(self) -> tuple[bool, str]:
        """Enable the missing required APIs now (the backend's own APIs step, off the event loop)."""
        project = self.state.data["project"]
        required = list((self.state.data.get("apis") or {}).get("required") or [])
        if not required:
            from installer.answers import REQUIRED_APIS
            required = list(REQUIRED_APIS)
        from . import lookups
        try:
            out = await lookups.enable_apis_async(project, required,
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
