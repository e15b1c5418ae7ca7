"""How the wizard drives a run (a part of ``WizardApp``, ``screens.wizard``): the install from Review, the destroy
from the done, failure and welcome screens (what goes and what stays, then the environment id typed to confirm), the
backends' consent questions in a dialog, the engine's events on the progress screen, and the done or failure screen
at the end. The runs are the core's (``installer.run.install``, ``installer.destroy.destroy``) through
``screens.core_runs``.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time

from textual.message import Message
from textual.worker import Worker, WorkerState

from installer.flags import written_files

from . import answer_rules, core_runs

log = logging.getLogger("mlops_install.wizard")


class EngineEvent(Message):
    """An engine event crossing into the UI."""

    def __init__(self, event) -> None:
        super().__init__()
        self.event = event


class RunDriver:
    """The install and destroy driving of ``WizardApp`` (a Textual ``App``): its state (``run_kind``, ``events``,
    ``finished``, ``plan``, ``install_screen``, ``runtime``) is set up in ``WizardApp.__init__``."""

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
        problems = answer_rules.full_problems(answers)
        if problems:
            self.notify("The answers do not validate:\n" + "\n".join(problems[:6]), severity="error", timeout=12)
            return
        self.plan = core_runs.build_plan(answers)
        self.run_kind = "install"
        self._new_run()
        self.current = "install"
        self.install_screen = InstallScreen(self.plan, scale=core_runs.time_scale(), clock=self.clock,
                                           log_path=self.log_path)
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
    # recorded on this machine): the same as `mlops-install destroy` (installer.destroy through core_runs.destroy):
    # what goes and what stays is listed, the environment id is typed to confirm (as the command line asks), and the
    # steps' destroys run through the engine with the install's progress panes and journal.
    def action_pick_destroy(self) -> None:
        self.run_worker(self._find_recorded, thread=True, group="recorded", name="recorded", exit_on_error=False)

    def _find_recorded(self) -> None:
        envs = core_runs.recorded_environments()
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
                answers = answer_rules.answers_from_dict(env.answers or {})
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
            rows, down = core_runs.destroy_preview(answers)
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
        self._new_run()
        self.current = "destroy"
        self.install_screen = InstallScreen(down, scale=core_runs.time_scale(), clock=self.clock, verb="Destroying",
                                           log_path=self.log_path)
        self._show(self.install_screen)
        log.info("destroy of %s starts", answers.env_id)

        def emit(ev) -> None:
            self.post_message(EngineEvent(ev))

        self.run_worker(core_runs.destroy(answers, emit, runtime={"consent": self.ask_consent}), group="install",
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
        self._show(FailureScreen(list(self.tally.failures.values()), fin, log_path=self.log_path, titles=titles,
                                 env_id=answers.env_id, account=self.state.auth.account if self.state.auth else None,
                                 zone=answers.zone, kind="destroy"))

    async def _install(self, answers):
        log.info("install of %s starts (answers %s)", answers.env_id, answers.digest())

        def emit(ev) -> None:
            self.post_message(EngineEvent(ev))

        self.install_window = (time.time(), None)  # while the install's worker runs (the stall benchmark's phases)
        # the answers are written beside the journal when the run starts (RunStarted: the environment's folder
        # exists from then on; a preflight that fails leaves no folder behind) and again when it ends
        self._answers_to_write = answers
        self._run_started = False
        try:
            # consent: APIs were agreed to on their screen; changed settings on Review (apply_changes); what the
            # backends ask while they run (a Secret not made by this install, manifests that differ from the
            # release, fields owned by another manager) is asked on screen through the consent hook; --yes says yes
            self.runtime["enable_apis"] = True
            self.runtime["apply_changes"] = bool(self.assume_yes or self.changes_confirmed)
            self.runtime["consent"] = self.ask_consent
            try:
                return await core_runs.install(answers, emit, assume_yes=self.assume_yes, runtime=self.runtime)
            finally:
                if self._run_started:
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
                answer_rules.write_answers, answers, answer_rules.answers_path_for(answers.env_id))
        except Exception:
            log.exception("could not write the answers")

    def _new_run(self) -> None:
        """A run starts: no events yet, nothing added up, nothing finished."""
        from installer.events import RunTally  # imported with the engine; not at start (~5 ms before the first frame)

        self.events = []
        self.tally = RunTally()
        self.finished = None

    def on_engine_event(self, message: EngineEvent) -> None:
        from installer.events import RunStarted  # imported with the engine; not at start (~5 ms before the first frame)

        ev = message.event
        self.events.append(ev)
        self.tally.add(ev)
        self._log_event(ev)
        if isinstance(ev, RunStarted) and self.run_kind == "install":
            self._run_started = True
            self.run_worker(self._write_answers(self._answers_to_write), group="answers", name="answers",
                            exit_on_error=False)
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
        if self.stopping:
            return
        if event.state == WorkerState.SUCCESS:
            self.call_after_refresh(self._install_finished, w.result)
        elif event.state == WorkerState.ERROR:
            from installer.events import RunFinished, StepFailed

            err = w.error
            log.error("the install raised", exc_info=err)
            failed = StepFailed("install", "unexpected", f"{type(err).__name__}: {err}",
                                "Retry; if it fails again, report it with the log.")
            self.events.append(failed)
            self.tally.add(failed)
            self._install_finished(RunFinished("failed", 4, ["install"]))

    def _install_finished(self, fin) -> None:
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

            self.current = "done"
            path = str(self.written_answers or "")
            self.next_steps = next_steps(answers, fin.outputs, answers_path=path or None, log_path=self.log_path,
                                         kubeconfig=self.runtime.get("kubeconfig_written"))
            self._show(DoneScreen(fin, plan=self.plan, outcomes=self.tally.outcomes, answers_path=path,
                                  command=core_runs.repeat_command(path, self.runtime, answers.credentials),
                                  log_path=self.log_path, written=self.written_files(), steps=self.next_steps))
        else:
            self.current = "failure"
            self._show(FailureScreen(list(self.tally.failures.values()), fin, log_path=self.log_path, titles=titles,
                                     env_id=answers.env_id, skipped=len(self.tally.skipped),
                                     checks=self.tally.failed_checks(),
                                     account=self.state.auth.account if self.state.auth else None,
                                     zone=answers.zone))

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
