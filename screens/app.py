"""The wizard's entry point, ``run_wizard`` (what ``mlops-install`` calls): the prefill and the runtime flags checked,
the debug log set up, then the Textual ``WizardApp`` (``screens.wizard``) or plain mode, and what stays printed after
the wizard is gone. ``WizardApp`` is importable from here too.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.flags import RunFlags

from . import answer_rules, core_runs
from .state import WizardState
from .wizard import WizardApp

if TYPE_CHECKING:  # pragma: no cover
    from installer.inputs import Given

__all__ = ["WizardApp", "run_wizard"]

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


def run_wizard(answers_path: str | None = None, *, prefill: Any = None, given: Given | None = None,
               plain: bool = False, assume_yes: bool = False, log_path: str | Path | None = None,
               sandbox: bool = False, flags: RunFlags | None = None, manifests: str | None = None,
               sources: dict[str, str] | None = None) -> int:
    """Ask what is missing, install, and return the exit code (0 done, 2 bad input, 3 preflight, 4 failed,
    130 interrupted).

    ``answers_path``: a (partial) answers file that prefills; ``prefill``: a mapping on top of it, or the core's
    ``validation.Partial`` of the whole input chain (``installer.inputs.load_partial_resolved``, which read the file:
    it is not read again). Fields that fail their rule are not prefilled (the wizard asks them).
    ``flags``: the command line's runtime flags for the install (``installer.flags.RunFlags``: ``--export-key PATH``,
    ``--write-kubeconfig``), refused as the command line refuses them; what the steps wrote is shown on the done
    screen and printed after the wizard.
    ``manifests``: ``--manifests DIR``; else the answers', else the core's lookup (``installer.manifests``).
    ``sources``: where each prefilled value came from (``installer.inputs.Resolved.sources``): shown by the screens;
    the environment's and gcloud's values are defaults, not answers.
    ``given``: instead of ``prefill`` and ``sources``, the command line's inputs as read (``installer.inputs.
    read_given``, which refused what cannot be read): the whole input chain is checked against the answers' rules
    here for plain mode, and by the full-screen wizard right after its first frame (``WizardApp(given=...)``)."""
    from installer.errors import EXIT_INTERRUPTED, InstallerError, exit_code

    flags = flags or RunFlags()
    data: dict = {}
    problems: list[str] = []
    full_screen = not plain and can_drive_terminal()
    try:
        if given is not None and not full_screen:
            from installer.inputs import partial_resolved
            prefill, resolved = partial_resolved(given)
            sources, given = resolved.sources, None
        if given is None:
            from installer.validation import Partial
            # the command line's prefill (a Partial of the whole input chain) holds the file already: read once
            if answers_path and not isinstance(prefill, Partial):
                data, problems = answer_rules.load_answers_file(answers_path)
            if prefill is not None:
                more, more_problems = answer_rules.prefill_from(prefill)
                data = answer_rules.deep_merge(data, more)
                problems += [p for p in more_problems if p not in problems]
            manifests_from = answer_rules.fill_manifests(data, manifests)
        else:
            # the wizard fills kfp.manifests once it has the prefill; a folder named for them that is not one
            # (--manifests DIR, else MLOPS_INSTALL_KFP_MANIFESTS when the inputs name none) is refused now, as above
            from installer.manifests import local_manifests
            if manifests or not given.gives("kfp.manifests"):
                local_manifests(manifests)
            manifests_from = ""
        flags.check()  # without answers: the credentials are asked later (written_files says what that made)
    except InstallerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for p in getattr(exc, "problems", []) or []:
            print(f"  - {p}", file=sys.stderr)
        if exc.remedy:
            print(f"how to fix: {exc.remedy}", file=sys.stderr)
        return exit_code(exc)
    if log_path is None:
        from installer.logs import current_log_path
        log_path = current_log_path()
    log_path = log_path or core_runs.default_log_path()
    setup_log(log_path)
    runtime = flags.runtime()
    if not full_screen:
        import gc
        gc.enable()  # off for the full-screen wizard's start (installer.run_commands.run_interactive)
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
                    prefill_problems=problems, runtime=runtime, given=given, manifests=manifests)
    if given is None:
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
