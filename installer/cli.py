"""The command line: ``mlops-install`` (console script) and ``python -m installer``: its parser and its dispatch.

The commands are in ``installer.commands`` (those that read), ``installer.run_commands`` (install, destroy) and
``installer.demo``; ``sandbox …`` and ``render …`` are parsed by their owners (``sandbox.cli``,
``installer.commands.cmd_render``).

Exit codes (README, "Exit codes"; ``installer.errors.exit_code``): 0 done, 2 bad input (including: another
installer holds the environment's lock, no terminal for the wizard), 3 preflight failed, 4 install failed
(resumable) or an unexpected error, 130 interrupted.

Start-up stays fast: these modules import only the standard library at the top; the wizard (Textual), the
sandbox and the cloud clients are imported by the commands that need them.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from . import PROG
from .commands import (EXIT_PLAN_ERROR, cmd_gather, cmd_init, cmd_plan, cmd_schema, cmd_status, cmd_validate, echo,
                       echo_err, print_problems, redacted, setup_log)
from .demo import cmd_demo
from .errors import EXIT_BAD_INPUT, EXIT_OK, BadInput, InstallerError, PreflightFailed, exit_code
from .run_commands import DEMO_SPEED, cmd_destroy, run_interactive, run_non_interactive
from sandbox.cli import speed_factor

EPILOG = """\
commands:
  install [--non-interactive] [--answers FILE] [input flags]
                             install (the wizard on a terminal; as the bare command)
  init [FILE] [input flags]  write a commented answers file (from the flags, the environment, gcloud's config)
  plan [--answers FILE] [input flags] [--detailed-exitcode]
                             show every resource, its derived name and what will happen (changes nothing)
  validate [FILE] [input flags]
                             check the answers; lists every problem with its line
  schema                     print the answers file's JSON Schema
  status [--answers FILE | --project P [--prefix X]]
                             show the journal of an environment (all here without arguments; --project P
                             alone: every environment of the project, found by label, with its journal in
                             Cloud Storage)
  render --answers FILE --out DIR
                             render the KFP manifests the install would apply
  sandbox ...                the local stand-in for Google Cloud (mlops-install sandbox --help)
  demo [--destroy]           start a sandbox and install the example answers into it (or take them down)
  destroy [--answers FILE] [input flags] [--yes]
                             take the environment down: what its installs made (adopted resources and the
                             enabled APIs stay); asks first unless --yes
  gather [--answers FILE | --project P --prefix X] [--out FILE]
                             a diagnostics bundle (journal, logs, plan, preflight, the kubeflow namespace),
                             redacted, for a report
  completion bash|zsh|fish   print a shell completion script

input flags: --project, --region, --zone, --prefix, --credentials, --set key.path=value (repeatable); each
  wins over the answers file, which wins over GOOGLE_CLOUD_PROJECT / CLOUDSDK_CORE_PROJECT /
  CLOUDSDK_COMPUTE_REGION / CLOUDSDK_COMPUTE_ZONE, which win over gcloud's active configuration

exit codes: 0 done, 2 bad input, 3 preflight failed, 4 install failed (run again to resume), 130 interrupted;
  plan --detailed-exitcode: 0 nothing to do, 2 changes, 1 error
"""


def _version() -> str:
    from . import __version__  # a constant: importlib.metadata would cost ~100 ms of start-up
    return __version__


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in our words (still exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n"
                         f"how to fix: see `{self.prog} --help`\n")
        raise SystemExit(EXIT_BAD_INPUT)


def _common(p: argparse.ArgumentParser, top: bool) -> None:
    d = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("--log-file", metavar="PATH", help="where to write the debug log (default: the state dir's "
                   "logs/; read-only commands write none unless given)", **d)
    p.add_argument("-o", "--output", choices=("plain", "json"), help="output format (default: plain)", **d)


def _inputs(p: argparse.ArgumentParser, top: bool = False) -> None:
    from .inputs import add_flags
    add_flags(p, top)


def _install_flags(p: argparse.ArgumentParser, top: bool) -> None:
    """The install's flags, on the bare command and on ``install``."""
    d = {} if top else {"default": argparse.SUPPRESS}
    b = {"action": "store_true", **d}
    p.add_argument("--non-interactive", help="no wizard: install from the answers file and/or the input flags", **b)
    p.add_argument("--answers", metavar="FILE", help="answers file (with --non-interactive: the input, under the "
                   "flags; otherwise: prefills the wizard)", **d)
    p.add_argument("--plain", help="no full-screen wizard: plain prompts and plain output", **b)
    p.add_argument("--sandbox", help="start a local sandbox in the background and install into it instead of "
                   "Google Cloud", **b)
    p.add_argument("--speed", type=speed_factor, metavar="F", help=f"sandbox speed factor with --sandbox (default "
                   f"{DEMO_SPEED})", **d)
    p.add_argument("--manifests", metavar="DIR", help="the wizard: a folder of rendered KFP manifests to deploy "
                   "(default: the answers' kfp.manifests, else $MLOPS_INSTALL_KFP_MANIFESTS, else "
                   "../shared/fixtures/kfp-2.14.4 beside the checkout, else upstream from github.com)", **d)
    p.add_argument("--enable-apis", help="consent to enable the required APIs that are disabled (as "
                   "apis.enable: true)", **b)
    p.add_argument("--yes", "-y", help="do not ask for confirmations (e.g. changing settings of resources that "
                   "exist); as before, it also consents to enabling APIs (prefer --enable-apis)", **b)
    p.add_argument("--export-key", metavar="PATH", help="credentials: key only: also write the KFP service "
                   "account's key file to PATH (mode 0600); it is a credential, keep it safe", **d)
    p.add_argument("--write-kubeconfig", help="add the cluster to your kubeconfig (as `gcloud container clusters "
                   "get-credentials` does; kubectl then needs gke-gcloud-auth-plugin)", **b)
    p.add_argument("--no-verify", help="do not end the install with a first pipeline run (step kfp-verify; as "
                   "verify: false; the full-screen wizard reads verify: false from --answers FILE)", **b)
    p.add_argument("--no-preflight", help=argparse.SUPPRESS, **b)
    p.add_argument("--force-unlock", metavar="ID", help="take the environment's lock ID (named by the refusal) "
                   "from an installer that is not running any more (issue 17)", **d)
    _inputs(p, top)


def build_parser(commands: bool = True) -> argparse.ArgumentParser:
    """The command line's parser; without ``commands``, only the bare command's flags (what an empty command line
    parses to is the same: the commands' parsers are only reached by naming one)."""
    p = _Parser(prog=PROG, description="Stand up Kubeflow Pipelines on GKE with Cloud SQL and GCS in one command. "
                "On a terminal without options it starts the wizard.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    _install_flags(p, top=True)
    _common(p, top=True)
    p.set_defaults(output="plain", log_file=None, command=None, speed=None, set=None)
    if not commands:
        return p
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    si = sub.add_parser("install", help="install: the wizard on a terminal, or --non-interactive (as the bare "
                        "command)")
    _install_flags(si, top=False)
    _common(si, top=False)

    sn = sub.add_parser("init", help="write a commented answers file from the flags, the environment and gcloud's "
                        "config")
    sn.add_argument("file", metavar="FILE", nargs="?", default="answers.yaml",
                    help="where to write it (default answers.yaml)")
    sn.add_argument("--force", action="store_true", help="replace FILE if it exists")
    _inputs(sn)
    _common(sn, top=False)

    sp = sub.add_parser("plan", help="show what an install would do, changing nothing")
    sp.add_argument("--answers", metavar="FILE", help="answers file (optional when the flags, the environment "
                    "and gcloud's config give project, region and prefix)")
    sp.add_argument("--detailed-exitcode", action="store_true", help="exit 0 when there is nothing to do, 2 when "
                    "there are changes, 1 on an error (as terraform plan)")
    _inputs(sp)
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--check", dest="check", action="store_true", default=None,
                   help="look at the real resources (read-only); the default when credentials are present")
    g.add_argument("--no-check", dest="check", action="store_false", help="do not look at the real resources")
    _common(sp, top=False)

    sv = sub.add_parser("validate", help="check an answers file")
    sv.add_argument("file", metavar="FILE", nargs="?", help="the answers file (optional with input flags)")
    _inputs(sv)
    _common(sv, top=False)

    ss = sub.add_parser("schema", help="print the JSON Schema of the answers file")
    _common(ss, top=False)

    st = sub.add_parser("status", help="show the journal of an environment")
    st.add_argument("--answers", metavar="FILE")
    st.add_argument("--project")
    st.add_argument("--prefix")
    _common(st, top=False)

    sx = sub.add_parser("destroy", help="take an environment down: what its installs made (asks first)")
    sx.add_argument("--answers", metavar="FILE", help="the answers file of the install (or the same input flags)")
    _inputs(sx)
    sx.add_argument("--yes", "-y", action="store_true", default=argparse.SUPPRESS,
                    help="do not ask (needed without a terminal)")
    sx.add_argument("--sandbox", action="store_true", default=argparse.SUPPRESS,
                    help="the environment is in the local sandbox (as installed with --sandbox)")
    sx.add_argument("--speed", type=speed_factor, default=argparse.SUPPRESS, metavar="F", help="sandbox speed factor")
    sx.add_argument("--force-unlock", metavar="ID", default=argparse.SUPPRESS,
                    help="take the environment's lock ID from an installer that is not running any more")
    _common(sx, top=False)

    sg = sub.add_parser("gather", help="write a diagnostics bundle of an environment (journal, logs, plan, "
                        "preflight, the kubeflow namespace's pods, events and logs), redacted, for a report")
    sg.add_argument("--answers", metavar="FILE", help="the answers file of the install (or the same input flags)")
    _inputs(sg)
    sg.add_argument("--out", metavar="FILE", help="the bundle to write (default: "
                    "./mlops-install-gather-PROJECT--PREFIX-TIME.tar.gz; an existing file is never overwritten)")
    _common(sg, top=False)

    sd = sub.add_parser("demo", help="start a sandbox and install the example answers into it")
    sd.add_argument("--state-dir", metavar="DIR", help="where the sandbox and the installer keep their state "
                    "(default ./demo-state, or a temporary folder)")
    sd.add_argument("--speed", type=speed_factor, default=DEMO_SPEED, help=f"sandbox speed factor (default {DEMO_SPEED})")
    sd.add_argument("--manifests", metavar="DIR", help="a folder of rendered KFP manifests to deploy (default: "
                    "$MLOPS_INSTALL_KFP_MANIFESTS, else ../shared/fixtures/kfp-2.14.4 beside the checkout, else "
                    "upstream, which needs network access to github.com)")
    sd.add_argument("--answers", metavar="FILE", help="answers file (default examples/answers.yaml)")
    sd.add_argument("--destroy", action="store_true", help="take the demo environment down again (as `destroy` "
                    "does, without asking: it is the sandbox's)")
    _common(sd, top=False)

    # delegated: listed for --help, parsed by their owners
    sub.add_parser("sandbox", help="the local stand-in for Google Cloud (see `mlops-install sandbox --help`)",
                   add_help=False)
    sub.add_parser("render", help="render the KFP manifests (--answers FILE and/or input flags, --out DIR)",
                   add_help=False)
    sc = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)")
    sc.add_argument("shell", choices=("bash", "zsh", "fish"))
    return p


def cmd_completion(args: argparse.Namespace) -> int:
    from .completion import script
    echo(script(build_parser(), args.shell))
    return EXIT_OK


def _exit_status(exc: SystemExit) -> int:
    """An argparse ``SystemExit`` as an exit code: --help and --version 0, a usage error (or a message) 2."""
    code = exc.code
    return code if isinstance(code, int) else (0 if code is None else EXIT_BAD_INPUT)


def _delegate(what: str, rest: list[str]) -> int:
    """``sandbox …`` and ``render …``: parsed and run by their owners."""
    if what == "sandbox":
        from sandbox.cli import main as run
    else:
        from .commands import cmd_render as run
    try:
        return int(run(rest) or 0)
    except SystemExit as exc:  # their argparse: --help (0) or a usage error (2); or SystemExit("message")
        if isinstance(exc.code, str):
            echo_err(f"error: {exc.code}")
        return _exit_status(exc)
    except OSError as exc:  # e.g. urllib's URLError: nothing answers at the sandbox's address
        reason = getattr(exc, "reason", None) or exc
        if what == "sandbox" and isinstance(reason, (ConnectionError, TimeoutError, OSError)):
            url = os.environ.get("MLOPS_SANDBOX_URL", "")
            raise BadInput(f"no sandbox answers{' at ' + url if url else ''} ({reason})",
                           remedy=f"start one with `{PROG} sandbox serve --state DIR` (and pass the same --state "
                                  f"DIR here), or check MLOPS_SANDBOX_URL") from None
        raise


def _dispatch(args: argparse.Namespace, log_path: Path | None) -> int:
    simple = {"validate": cmd_validate, "schema": cmd_schema, "plan": cmd_plan, "status": cmd_status,
              "gather": cmd_gather, "init": cmd_init, "completion": cmd_completion}
    with_log = {"demo": cmd_demo, "destroy": cmd_destroy}  # these also name the debug log
    if args.command in simple:
        return simple[args.command](args)
    if args.command in with_log:
        return with_log[args.command](args, log_path)
    if args.non_interactive:
        return run_non_interactive(args.answers, args, log_path)
    return run_interactive(args, log_path)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    import logging  # without a log file (sandbox, --help), a logged traceback must not reach the terminal
    _root_log = logging.getLogger("mlops_install")
    if not any(isinstance(h, logging.NullHandler) for h in _root_log.handlers):
        _root_log.addHandler(logging.NullHandler())
    if argv and argv[0] == "sandbox":
        return _guarded(lambda: _delegate("sandbox", argv[1:]), None, "plain")
    if argv and argv[0] == "render":
        log_path = None
        if "-h" not in argv and "--help" not in argv:
            try:
                log_path = setup_log(argparse.Namespace(log_file=None))
            except BadInput:
                log_path = None
        return _guarded(lambda: _delegate("render", argv[1:]), log_path, "plain")
    # the bare command (the wizard) needs none of the commands' parsers: building them cost ~4 ms of its start-up
    parser = build_parser(commands=bool(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return _exit_status(exc)
    log_path = None
    # read-only commands write no log unless --log-file; the demo opens its log under its own state dir (a log
    # here would be a stray file in the user's state dir, holding only argv)
    if args.log_file or not (read_only(args) or args.command == "demo"):
        try:
            log_path = setup_log(args)
        except BadInput as exc:
            print_problems(exc, args.output)
            return EXIT_BAD_INPUT
    elif args.command in ("status", "plan"):  # no log, but journals are read: a state folder not ours is refused
        try:
            _check_state_dir()
        except BadInput as exc:
            print_problems(exc, args.output)
            return EXIT_BAD_INPUT
    import logging
    logging.getLogger("mlops_install.cli").info("argv: %s", " ".join(argv))
    if args.command == "plan" and args.detailed_exitcode:
        done: list[int] = []  # an error is 1, not 2 (2 says: changes), as terraform's -detailed-exitcode

        def plan_rc() -> int:
            done.append(_dispatch(args, log_path))
            return done[0]
        rc = _guarded(plan_rc, log_path, args.output)
        return rc if done else EXIT_PLAN_ERROR
    return _guarded(lambda: _dispatch(args, log_path), log_path, args.output)


def _check_state_dir() -> None:
    """The state folder, when there is one, must be ours (``files.private_dir``; nothing is created)."""
    from .files import lstat_or_none, private_dir
    from .paths import state_root
    root = state_root()
    if lstat_or_none(root) is not None:
        private_dir(root)


READ_ONLY_COMMANDS = ("validate", "schema", "status", "init", "completion")


def read_only(args: argparse.Namespace) -> bool:
    """Commands that look and change nothing in the cloud write no debug log (unless --log-file): validate,
    schema, status, init, completion, plan --no-check."""
    return args.command in READ_ONLY_COMMANDS or (args.command == "plan" and args.check is False)


def _guarded(fn, log_path: Path | None, output: str) -> int:
    """The top-level handler: every failure becomes a message (what, how to fix, the log), never a traceback; its
    exit code is ``errors.exit_code``'s."""
    import logging
    log = logging.getLogger("mlops_install.cli")
    log_hint = f"\ndebug log: {log_path}" if log_path else ""
    try:
        return fn()
    except BadInput as exc:
        log.info("bad input: %s %s", exc.message, [str(p) for p in exc.problems])
        print_problems(exc, output)
        return exit_code(exc)
    except PreflightFailed as exc:
        echo_err(f"error: {exc.message}\nhow to fix: {exc.remedy}{log_hint}")
        return exit_code(exc)
    except InstallerError as exc:
        log.error("%s [%s] %s", exc.message, exc.error_class.value, exc.remedy)
        echo_err(redacted(f"error: {exc.message}" + (f"\nhow to fix: {exc.remedy}" if exc.remedy else "") + log_hint))
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        echo_err(f"interrupted{log_hint}")
        return exit_code(exc)
    except RecursionError as exc:
        log.exception("recursion")
        echo_err(f"error: the input is nested too deeply ({exc}){log_hint}")
        return exit_code(exc)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        log.exception("unexpected error")
        echo_err(redacted(f"error: unexpected {type(exc).__name__}: {exc}\n"
                          f"how to fix: run the same command again (an install resumes where it stopped); if it "
                          f"fails again, report it with the debug log{log_hint}"))
        return exit_code(exc)
