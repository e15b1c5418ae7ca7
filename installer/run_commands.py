"""The command line's commands that change things: ``install`` (without questions, or handed to the wizard) and
``destroy``, with the local sandbox they start for ``--sandbox`` and what they print after the run.

Start-up stays fast: only the standard library at the top; the wizard (Textual), the sandbox and the cloud clients
are imported by the command that needs them.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from . import PROG
from .commands import echo, echo_err, input_argv, load_inputs, redacted, sources_note
from .errors import EXIT_OK, BadInput, ErrorClass, InstallerError, PreflightFailed, exit_code
from .flags import RunFlags, written_files
from .paths import sandbox_dir, state_root

DEMO_SPEED = 0.05
SANDBOX_IDLE_MINUTES = 60  # the background sandbox of --sandbox / demo stops after this long without a request


def start_sandbox(state_dir: Path, speed: float):
    """Start the sandbox in the background; put its environment into os.environ; return its handle."""
    from sandbox.launcher import start_background

    try:
        # gone with this installer, however it ends (the terminal closed too), or after an idle hour
        handle = start_background(state_dir, speed, exit_with_parent=True, idle_minutes=SANDBOX_IDLE_MINUTES)
    except Exception as exc:  # noqa: BLE001 - e.g. SandboxError: the server did not come up
        import logging
        logging.getLogger("mlops_install.cli").exception("sandbox start failed")
        raise InstallerError(f"the sandbox did not start: {exc}", error_class=ErrorClass.UNEXPECTED,
                             remedy=f"see {Path(state_dir) / 'sandbox.log'}") from None
    os.environ.update(handle.env)
    return handle


def stop_sandbox(handle: Any) -> None:
    try:
        handle.stop()
    except Exception:  # noqa: BLE001
        import logging
        logging.getLogger("mlops_install.cli").exception("stopping the sandbox failed")


def _destroy_command(args: argparse.Namespace, answers_path: str | None) -> str | None:
    """How this run's environment is taken down, when not plainly ``destroy --answers FILE``."""
    import shlex
    if args.command == "demo":
        return f"{PROG} demo --destroy" + (f" --state-dir {shlex.quote(args.state_dir)}" if args.state_dir else "")
    if getattr(args, "sandbox", False) and answers_path:
        return f"{PROG} destroy --answers {shlex.quote(str(answers_path))} --sandbox"
    return None


def _summary_after(fin: Any, log_path: Path | None, output: str, runtime: dict[str, Any] | None = None,
                   answers: Any = None, answers_path: str | None = None, destroy: str | None = None) -> None:
    for written in written_files(runtime, fin, answers.credentials if answers is not None else None):
        (echo_err if output == "json" else echo)(written.line())
    if output == "json":
        return
    from .next_steps import next_steps, next_steps_text, ui_url_of, verified_line
    ui = ui_url_of(fin.outputs)
    if fin.exit_code == EXIT_OK and ui:
        echo(f"Kubeflow Pipelines UI: {ui}")
    verified = verified_line((fin.outputs or {}).get("kfp-verify") or {})
    if fin.exit_code == EXIT_OK and verified:
        echo(verified)
    if fin.exit_code == EXIT_OK and answers is not None:  # what to do now, with this environment's values
        echo(next_steps_text(next_steps(answers, fin.outputs, answers_path=answers_path, log_path=str(log_path or ""),
                                        kubeconfig=(runtime or {}).get("kubeconfig_written"), destroy=destroy)))
    elif fin.exit_code != EXIT_OK and answers_path:  # a report needs more than the message: the bundle
        echo(f"for a report: {PROG} gather --answers {answers_path}  (a redacted diagnostics bundle)")
    echo(f"state: {state_root()}   debug log: {log_path}")


def logged(emit):
    """``emit`` that also writes each event to the debug log (the failure messages, the checks, what was done), so
    a log sent with a report tells what happened; progress and waits at debug level."""
    import logging
    log = logging.getLogger("mlops_install.events")

    def emit_and_log(event: Any) -> None:
        try:
            kind = getattr(event, "type", type(event).__name__)
            level = logging.DEBUG if kind in ("StepProgress", "StepWaiting") else logging.INFO
            if log.isEnabledFor(level):
                log.log(level, "%s %s", kind, event.to_dict() if hasattr(event, "to_dict") else event)
        except Exception:  # noqa: BLE001 - logging must never break the install
            pass
        emit(event)
    return emit_and_log


def cmd_destroy(args: argparse.Namespace, log_path: Path | None) -> int:
    """``destroy``: say what goes, ask (a terminal) or take ``--yes``, then destroy with the reporter's lines."""
    from .destroy import destroy, destroy_plan, recorded_journal
    from .plan import build_plan
    from .reporters import make_reporter
    from .run import run_cancellable

    answers, _resolved = load_inputs(args, getattr(args, "answers", None))
    journal = recorded_journal(answers, remote=_remote_on())
    todo = destroy_plan(journal, build_plan(answers))
    say = echo_err if args.output == "json" else echo
    if not todo:
        say(f"nothing to destroy: no step of {answers.env_id} is recorded as run here "
            f"(journal status: {journal.data.get('status') or 'none'})")
        return EXIT_OK
    if journal.source:  # taken from the remote journal (issue 17): the question below confirms it too
        say(f"no journal of {answers.env_id} on this machine: using the one in {journal.source}")
    say(f"destroy {answers.env_id}: each step removes what the install made; what it adopted, and the enabled "
        f"APIs, stay:")
    for _sid, title, what, removed in todo:
        say(f"  {'remove' if removed else 'keep  '}  {title}: {what}")
    if not getattr(args, "yes", False):
        if args.output == "json" or not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise BadInput("destroy deletes resources and asks first; there is no terminal to ask on",
                           remedy=f"run it on a terminal, or confirm with --yes: {PROG} destroy "
                                  f"{input_argv(args)} --yes")
        try:
            typed = input(f"Type the environment id ({answers.env_id}) to destroy it: ").strip()
        except EOFError:
            typed = ""
        if typed != answers.env_id:
            raise BadInput("not confirmed: nothing was destroyed",
                           remedy=f"type {answers.env_id} exactly at the question, or pass --yes")
    handle = None
    if getattr(args, "sandbox", False):
        handle = start_sandbox(sandbox_dir(), getattr(args, "speed", None) or DEMO_SPEED)
    try:
        reporter = make_reporter(args.output, wait_interval=_wait_interval(), what="destroy")
        fin = run_cancellable(lambda: destroy(answers, logged(reporter), tick=reporter.tick,
                                              runtime=RunFlags.from_args(args).runtime()))
    finally:
        if handle is not None:
            stop_sandbox(handle)
    if fin.exit_code != 0 and log_path:
        echo_err(f"debug log: {log_path}")
    return fin.exit_code


def _remote_on() -> bool:
    """Whether the remote journal is looked for (issue 17): with Google credentials at hand."""
    from .run import credentials_present
    return credentials_present()


def _wait_interval() -> float:
    from .run import time_scale
    return max(0.5, 30.0 * time_scale())


def run_non_interactive(answers_path: str, args: argparse.Namespace, log_path: Path | None) -> int:
    from .reporters import make_reporter
    from .run import run_install_sync
    answers, resolved = load_inputs(args, answers_path)
    say = echo_err if args.output == "json" else echo
    note = sources_note(resolved)
    if note:
        say(note)
    if getattr(args, "yes", False) and not getattr(args, "enable_apis", False) and not answers.apis.enable:
        say("note: --yes also consents to enabling the required APIs, as it did before; say so with --enable-apis "
            "(--yes is for skipping confirmations)")
    run_flags = RunFlags.from_args(args)
    run_flags.apply_to(answers)
    run_flags.check(answers)
    flags = run_flags.runtime()
    handle = None
    if args.sandbox:
        handle = start_sandbox(sandbox_dir(), args.speed or DEMO_SPEED)
    try:
        from .environment import detect_runtime
        runtime = detect_runtime()
        import logging
        logging.getLogger("mlops_install.cli").info("runtime: %s", runtime)
        for note in runtime.notes:
            (echo_err if args.output == "json" else echo)(f"note: {note}")
        reporter = make_reporter(args.output, wait_interval=_wait_interval())
        try:
            fin = run_install_sync(answers, logged(reporter), assume_yes=args.yes, tick=reporter.tick,
                                   preflight=not args.no_preflight, runtime=flags)
        except PreflightFailed as exc:
            echo_err(f"error: {exc.message}")
            if args.output == "json":  # stdout holds JSON only: say here what failed and how to fix it
                for c in exc.report.failed if exc.report is not None else []:
                    echo_err(redacted(f"  {c.name}: {c.detail}" + (f"\n    fix: {c.fix}" if c.fix else "")))
            echo_err(f"how to fix: {exc.remedy}")
            echo_err(f"debug log: {log_path}")
            return exit_code(exc)
        _summary_after(fin, log_path, args.output, flags, answers, answers_path,
                       _destroy_command(args, answers_path))
        return fin.exit_code
    finally:
        if handle is not None:
            stop_sandbox(handle)


def _no_wizard_reason() -> str:
    """Why this terminal cannot drive the full-screen wizard, in a few words."""
    def tty(stream: Any) -> bool:
        try:
            return bool(stream.isatty())
        except (AttributeError, ValueError):
            return False
    if not tty(sys.stdin):
        return "stdin is not a terminal"
    if not tty(sys.stdout):
        return "stdout is not a terminal"
    return f"TERM is {os.environ.get('TERM') or 'not set'}"


def run_interactive(args: argparse.Namespace, log_path: Path | None) -> int:
    """The wizard (or its plain prompts). The garbage collector is off until the wizard's first frame: the start-up
    (Textual's import, the app, the first screen) makes many objects and frees few, and the collector's ~130 passes
    over them cost ~12 ms of CPU before the first frame (os.times, in tmux). WizardApp turns it on again after its
    first frame, run_wizard before plain prompts, and this on the way out."""
    import gc
    gc.disable()
    try:
        return _run_interactive(args, log_path)
    finally:
        gc.enable()


def _run_interactive(args: argparse.Namespace, log_path: Path | None) -> int:
    from .environment import is_interactive

    if not args.plain and not is_interactive():
        # as docs/wizard.md says: a terminal the full-screen wizard cannot drive gets the plain prompts
        echo_err(f"note: {_no_wizard_reason()}, so the full-screen wizard cannot start: plain prompts instead "
                 f"(--plain). Without questions: `{PROG} --non-interactive --answers FILE` (start from "
                 f"`{PROG} init`)")
        args.plain = True
    from .inputs import read_given
    # every flag as without questions, --force-unlock ID too (the remote lock's refusal names it for the wizard)
    flags = RunFlags.from_args(args)
    if flags.no_verify:  # the same answer as `verify: false`, for the wizard and plain mode too
        args.set = [*(getattr(args, "set", None) or []), "verify=false"]
    given = read_given(args.answers, args)  # checked against the answers' rules by run_wizard (or the wizard)
    from screens.app import run_wizard
    handle = None
    if args.sandbox:
        handle = start_sandbox(sandbox_dir(), args.speed or DEMO_SPEED)
    try:
        return int(run_wizard(answers_path=args.answers, given=given, plain=args.plain,
                              log_path=log_path, assume_yes=args.yes, sandbox=handle is not None,
                              flags=flags, manifests=getattr(args, "manifests", None)) or 0)
    finally:
        if handle is not None:
            stop_sandbox(handle)
