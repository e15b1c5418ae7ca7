"""``mlops-install demo``: start a sandbox (the local stand-in for Google Cloud) under ``./demo-state`` and install
the example answers into it, with the wizard on a terminal, else without questions; ``--destroy`` takes them down.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .commands import echo, echo_err, setup_log
from .errors import BadInput
from .run_commands import cmd_destroy, run_non_interactive, start_sandbox, stop_sandbox

# the example answers: in the package (a wheel carries them; in a checkout installer/examples/answers.yaml links to
# examples/answers.yaml)
EXAMPLE_ANSWERS = (Path(__file__).resolve().parent / "examples" / "answers.yaml").resolve()


def cmd_demo(args: argparse.Namespace, log_path: Path | None) -> int:
    import tempfile

    from .environment import is_interactive
    from .manifests import local_manifests

    say = echo_err if args.output == "json" else echo  # keep stdout pure JSON lines with --output json

    if args.state_dir:
        state = Path(args.state_dir)
        if state.exists() and not state.is_dir():
            raise BadInput(f"--state-dir {args.state_dir} is a file, not a folder",
                           remedy="give a folder (it is created if missing), e.g. --state-dir ./demo-state")
    else:
        state = Path.cwd() / "demo-state"
        try:
            state.mkdir(parents=True, exist_ok=True)
            probe = state / ".probe"
            probe.write_text("")
            probe.unlink()
        except OSError:
            state = Path(tempfile.mkdtemp(prefix="mlops-install-demo-"))
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot make the demo's state folder {state}: {exc.strerror or exc}",
                       remedy="give a writable folder with --state-dir") from None
    answers_path = args.answers or str(EXAMPLE_ANSWERS)
    os.environ["MLOPS_INSTALL_STATE_DIR"] = str(state / "installer")
    if not args.log_file:  # the demo's log goes with the demo's state
        log_path = setup_log(args)
        import logging
        logging.getLogger("mlops_install.cli").info("argv: %s", " ".join(sys.argv[1:]))
    manifests, found = local_manifests(getattr(args, "manifests", None))
    if not args.answers and (manifests is not None or not EXAMPLE_ANSWERS.exists()):
        # the sandbox has no network: use rendered KFP manifests instead of upstream;
        # an installed copy (no examples/ folder) uses the same answers, built from the model's defaults
        from .answers import Answers
        from .validation import dump_answers, load_answers
        demo_answers = load_answers(EXAMPLE_ANSWERS) if EXAMPLE_ANSWERS.exists() else \
            Answers(project="mlops-demo-project", region="us-central1", prefix="demo", zone="us-central1-a")
        why = "demo"
        if manifests is not None:
            demo_answers.kfp.manifests = str(manifests)
            why = f"demo: kfp.manifests = {manifests} ({found})"
        answers_path = str(dump_answers(demo_answers, state / "answers.yaml", why=why))
        say(f"demo answers: {answers_path} ({why})")
    elif args.answers and getattr(args, "manifests", None):
        say("note: --manifests is ignored with --answers (set kfp.manifests in the answers file)")
    if manifests is None and not args.answers:
        say("note: no local Kubeflow Pipelines manifests found, so the demo builds them from github.com (needs "
            "network and git). Offline: `mlops-install demo --manifests DIR` or MLOPS_INSTALL_KFP_MANIFESTS=DIR "
            "(a folder of rendered KFP 2.14.4 manifests)")
    handle = start_sandbox(state / "sandbox", args.speed)
    try:
        say(f"sandbox running (state {state / 'sandbox'}, speed {args.speed:g}); "
             f"installer state {state / 'installer'}")
        if getattr(args, "destroy", False):
            rc = cmd_destroy(argparse.Namespace(answers=answers_path, yes=True, output=args.output), log_path)
            say(f"demo state: {state}")
            return rc
        if is_interactive() and args.output != "json":
            from screens.app import run_wizard

            from .validation import load_partial
            partial, _ = load_partial(answers_path)
            rc = int(run_wizard(prefill=partial, answers_path=answers_path, log_path=log_path,
                                assume_yes=True, sandbox=True) or 0)
            echo(f"demo state: {state}   debug log: {log_path}")
            return rc
        ns = argparse.Namespace(**{**vars(args), "sandbox": False, "yes": True, "enable_apis": True,
                                   "no_preflight": False})
        rc = run_non_interactive(answers_path, ns, log_path)
        say(f"demo state: {state} (sandbox: {state / 'sandbox'}, journals and logs: {state / 'installer'})")
        return rc
    finally:
        stop_sandbox(handle)
