"""The command line: ``mlops-install`` (console script) and ``python -m installer``.

Exit codes (README, "Exit codes"): 0 done, 2 bad input (including: another installer holds the environment's
lock, no terminal for the wizard), 3 preflight failed, 4 install failed (resumable) or an unexpected error,
130 interrupted.

Start-up stays fast: this module imports only the standard library at the top; the wizard (Textual), the
sandbox and the cloud clients are imported by the commands that need them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from . import PROG
from .errors import EXIT_BAD_INPUT, EXIT_OK, BadInput, ErrorClass, InstallerError, PreflightFailed, exit_code
from .flags import RunFlags, written_files

REPO_ROOT = Path(__file__).resolve().parent.parent
# the example answers: in the package (a wheel carries them; in a checkout installer/examples/answers.yaml links to
# examples/answers.yaml)
EXAMPLE_ANSWERS = (Path(__file__).resolve().parent / "examples" / "answers.yaml").resolve()
DEMO_SPEED = 0.05
SANDBOX_IDLE_MINUTES = 60  # the background sandbox of --sandbox / demo stops after this long without a request

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


def _speed(text: str) -> float:
    """A sandbox speed factor: a number > 0 (1 = Google's latencies, 0.05 = the demo's)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a factor such as 0.05") from None
    if not (v > 0 and v == v and v != float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number above 0, such as 0.05 (1 = Google's "
                                         f"latencies)")
    return v


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
    p.add_argument("--speed", type=_speed, metavar="F", help=f"sandbox speed factor with --sandbox (default "
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


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Stand up Kubeflow Pipelines on GKE with Cloud SQL and GCS in one command. "
                "On a terminal without options it starts the wizard.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    _install_flags(p, top=True)
    _common(p, top=True)
    p.set_defaults(output="plain", log_file=None, command=None, speed=None, set=None)
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
    sx.add_argument("--speed", type=_speed, default=argparse.SUPPRESS, metavar="F", help="sandbox speed factor")
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
    sd.add_argument("--speed", type=_speed, default=DEMO_SPEED, help=f"sandbox speed factor (default {DEMO_SPEED})")
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


# ---------------------------------------------------------------------------------------------------------------
# output helpers

def _err(text: str) -> None:
    try:
        sys.stderr.write(text.rstrip("\n") + "\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass


def _out(text: str = "") -> None:
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass


def _redacted(text: str) -> str:
    from .logs import redact
    return redact(text)


def print_problems(exc: BadInput, output: str = "plain") -> None:
    if output == "json":
        _out(json.dumps({"ok": False, "message": exc.message, "remedy": exc.remedy,
                         "problems": [_problem_dict(p) for p in exc.problems]}))
        return
    _err(f"error: {exc.message}" + (":" if exc.problems else ""))
    for p in exc.problems:
        _err(f"  {_redacted(_plain_problem(p) if hasattr(p, 'path') else str(p))}")
    if exc.remedy:
        _err(f"how to fix: {exc.remedy}")


def _plain_problem(p: Any) -> str:
    where = f"line {p.line}: " if getattr(p, "line", None) else ""
    text = f"{where}{p.path or '(file)'}: {p.message}"
    if getattr(p, "hint", ""):
        text += "\n      hint: " + str(p.hint).replace("\n", "\n            ")
    return text


def _one_line(text: str, n: int = 100) -> str:
    """The first meaningful line of a (possibly multi-line) message, shortened."""
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return line if len(line) <= n else line[: n - 3] + "..."


def _problem_dict(p: Any) -> dict[str, Any]:
    return p.to_dict() if hasattr(p, "to_dict") else {"path": "", "line": None, "message": str(p), "hint": ""}


# ---------------------------------------------------------------------------------------------------------------
# commands

def load_inputs(args: argparse.Namespace, path: str | None):
    """The answers of a command: the answers file at ``path`` (may be None) under the input flags, over the
    environment and gcloud's config (``installer.inputs``); returns (Answers, Resolved)."""
    from .inputs import load_resolved
    if path is None and not _has_inputs(args):
        from .inputs import ambient
        if not ambient():
            raise BadInput("no answers: give an answers file or the input flags",
                           remedy=f"e.g. `{PROG} {args.command or 'install'} --project P --region R --prefix X`, "
                                  f"or write a file with `{PROG} init` and pass it with --answers FILE")
    return load_resolved(path, args)


def _has_inputs(args: argparse.Namespace) -> bool:
    from .inputs import FLAG_PATHS
    return bool(getattr(args, "set", None)) or any(getattr(args, f"in_{d}", None) is not None for d in FLAG_PATHS)


def _input_argv(args: argparse.Namespace) -> str:
    """The answers file and input flags of this command, to repeat in a message."""
    import shlex
    from .inputs import FLAG_PATHS
    parts = ["--answers", str(args.answers)] if getattr(args, "answers", None) else []
    for d in FLAG_PATHS:
        v = getattr(args, f"in_{d}", None)
        if v is not None:
            parts += [f"--{d}", v]
    for item in getattr(args, "set", None) or []:
        parts += ["--set", item]
    return shlex.join(parts)


def _sources_note(resolved) -> str:
    text = resolved.describe()
    return f"from outside the answers file: {text}" if text else ""


def cmd_validate(args: argparse.Namespace) -> int:
    answers, resolved = load_inputs(args, args.file)
    what = args.file or "the inputs"
    if args.output == "json":
        _out(json.dumps({"ok": True, "env_id": answers.env_id, "names": answers.names.__dict__,
                         "sources": resolved.sources}))
    else:
        n = answers.names
        _out(f"{what}: valid (project {answers.project}, prefix {answers.prefix}, "
             f"{'zone ' + answers.zone if answers.zone else 'region ' + answers.region}, "
             f"credentials {answers.credentials}); cluster {n.cluster}, bucket {n.bucket}")
        note = _sources_note(resolved)
        if note:
            _out(note)
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    """``init [FILE]``: write a commented answers file from the flags, the environment and gcloud's config (as
    ``openshift-install create install-config``); mode 0600, never over a file without --force, never through a
    link."""
    from .files import UnsafePath, create_new, write_file
    from .inputs import commented_answers, flag_values, resolve
    from .validation import validate_text

    flags, fsrc, problems = flag_values(args)
    if problems:
        raise BadInput(f"{len(problems)} flag(s) cannot be used", problems=problems, remedy="fix the flags listed")
    resolved = resolve(None, flags, fsrc)
    path = Path(args.file)
    text = commented_answers(resolved, path.name)
    if path.is_dir():
        raise BadInput(f"{args.file} is a folder", remedy=f"give the file to write, e.g. {path / 'answers.yaml'}")
    try:
        if args.force:
            write_file(path, text, mode=0o600)
        else:
            create_new(path, text, mode=0o600)
    except FileExistsError:
        raise BadInput(f"{args.file} already exists; init does not replace it",
                       remedy=f"give another FILE, or replace it with `{PROG} init {args.file} --force`") from None
    except UnsafePath as exc:
        raise BadInput(f"{args.file}: {exc.message.split(': ', 1)[-1]}", remedy=exc.remedy) from None
    except OSError as exc:
        raise BadInput(f"cannot write {args.file}: {exc.strerror or exc}",
                       remedy="give a path in a folder you can write") from None
    answers, left = validate_text(text, path.parent.resolve())
    if args.output == "json":
        _out(json.dumps({"ok": True, "path": str(path), "complete": answers is not None,
                         "missing": [p.path for p in left], "sources": resolved.sources}))
        return EXIT_OK
    _out(f"wrote {path} (mode 0600)")
    from .inputs import Resolved
    shown = Resolved(resolved.data, {k: v for k, v in resolved.sources.items()})
    if shown.describe():
        _out(f"  {shown.describe()}")
    if answers is None:
        _out("still to fill in: " + ", ".join(dict.fromkeys(p.path for p in left)) +
             f" (then `{PROG} validate {path}`)")
    else:
        _out(f"next: `{PROG} plan --answers {path}`, then `{PROG} install --non-interactive --answers {path} "
             f"--enable-apis`")
    return EXIT_OK


def cmd_completion(args: argparse.Namespace) -> int:
    from .completion import script
    _out(script(build_parser(), args.shell))
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from .validation import json_schema
    _out(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    import asyncio

    from .plan import GROUP_TITLES, build_plan
    from .reporters import fmt_duration
    from .run import describe_plan
    from .sizing import cluster_size

    answers, resolved = load_inputs(args, args.answers)
    rows = asyncio.run(describe_plan(answers, check=args.check))
    plan = build_plan(answers)
    rc = plan_exit_code(rows) if getattr(args, "detailed_exitcode", False) else EXIT_OK
    if args.output == "json":
        _out(json.dumps({"env_id": answers.env_id, "steps": [r.__dict__ for r in rows],
                         "summary": plan_summary(rows)}, default=list))
        return rc
    where = f"zone {answers.zone}" if answers.zone else f"region {answers.region} (regional cluster)"
    _out(f"Plan for project {answers.project}, prefix {answers.prefix}: {where}, credentials {answers.credentials}")
    _out("(nothing is changed by this command)")
    note = _sources_note(resolved)
    if note:
        _out(note)
    w_id = max(len(r.step_id) for r in rows)
    w_res = min(58, max(len(r.resource) for r in rows))
    group = None
    for r in rows:
        if r.group != group:
            group = r.group
            _out(f"\n{GROUP_TITLES.get(group, group)}")
        detail = _one_line(r.detail)
        action = r.action + (f" ({detail})" if detail and r.action not in ("not checked",) else "")
        journal = f"  [journal: {r.journal_status}]" if r.journal_status else ""
        _out(f"  {r.step_id:<{w_id}}  {r.resource:<{w_res}}  {action}{journal}")
        for c in r.changes if r.action == "update" else ():
            how = f"  ({_one_line(str(c['how']))})" if c.get("how") else ""
            _out(f"  {'':<{w_id}}    {c.get('field')}: {c.get('old')} -> {c.get('new')}{how}")
    if rows and rows[0].action == "not checked":
        _out(f"\nnot checked: {rows[0].detail}")
    _out(f"\ncluster: {cluster_size(answers).describe()}")
    _out(plan_summary(rows))
    secs, path = plan.critical_path()
    total = sum(s.expected_seconds for s in plan)
    _out(f"{len(rows)} steps; expected ~{fmt_duration(secs)} along the longest chain "
         f"({' -> '.join(path)}), ~{fmt_duration(total)} if run one by one")
    return rc


# --detailed-exitcode (as `terraform plan -detailed-exitcode`): 0 nothing to do, 2 changes, 1 an error
EXIT_PLAN_CHANGES, EXIT_PLAN_ERROR = 2, 1
NOTHING_TO_DO = ("exists: unchanged", "exists: adopt")  # run.describe_plan's actions that make no change


def plan_exit_code(rows) -> int:
    """0 when every row exists as wanted (unchanged, or adopted as it is), else 2 (a create, an update, or a row
    that was not checked or is not known: it may change)."""
    return EXIT_OK if rows and all(r.action in NOTHING_TO_DO for r in rows) else EXIT_PLAN_CHANGES


def plan_summary(rows) -> str:
    """One line counting the plan's rows by what happens: "N create, M adopt, K update" (then what else there is:
    unchanged, conflict, in progress, unknown, not checked)."""
    counts: dict[str, int] = {}
    for r in rows:
        word = r.action.split(":", 1)[-1].strip().split()[0] if r.action else "unknown"
        word = {"wait": "in progress", "checked": "not checked"}.get(word, word)
        if r.action.startswith("not checked"):
            word = "not checked"
        counts[word] = counts.get(word, 0) + 1
    first = [f"{counts.pop(w, 0)} {w}" for w in ("create", "adopt", "update")]
    rest = [f"{n} {w}" for w, n in counts.items()]
    return ", ".join(first + rest)


def cmd_status(args: argparse.Namespace) -> int:
    from .journal import Journal, list_envs, state_root

    order = None
    if args.answers:
        from .validation import load_answers
        from .plan import build_plan
        answers = load_answers(args.answers)
        journals = [_remote_or_local(Journal(answers.env_id), answers=answers)]
        order = build_plan(answers).ids
    elif args.project or args.prefix:
        if not args.project:
            raise BadInput("status --prefix needs --project", remedy="or give --answers FILE")
        from .validation import check_prefix, check_project
        bad = [m for m, _ in check_project(args.project) + (check_prefix(args.prefix) if args.prefix else [])]
        if bad:
            raise BadInput("; ".join(bad), remedy="give the project id and prefix of the answers file, "
                           f"or run `{PROG} status` to list every environment")
        if args.prefix:
            journals = [_remote_or_local(Journal(f"{args.project}--{args.prefix}"), project=args.project,
                                         prefix=args.prefix)]
        else:  # every environment of the project: the local journals, the labelled buckets and their journals
            journals = _project_environments(args.project)
    else:
        journals = list(list_envs())
        if not journals:
            if args.output == "json":
                _out(json.dumps({"environments": []}))
            else:
                _out(f"no environments yet (state dir: {state_root()})")
            return EXIT_OK
    if args.output == "json":
        _out(json.dumps({"environments": [j.summary() for j in journals]}, default=str))
    else:
        _out("\n\n".join(j.format_status(order) for j in journals))
    return EXIT_OK


def _remote_or_local(journal, **where: Any):
    """``journal``, or, when this machine has none, the remote one (issue 17; with Google credentials only)."""
    from .run import credentials_present

    if journal.exists or not credentials_present():
        return journal
    from .remote import RemoteState, read_journal
    return read_journal(journal, RemoteState(where.pop("answers", None), **where))


def _project_environments(project: str) -> list:
    from .journal import list_envs
    from .run import credentials_present

    if not credentials_present():
        return [j for j in list_envs() if j.env_id.startswith(f"{project}--")]
    from .remote import project_environments
    return project_environments(project)


def _delegate(module: str, rest: list[str], what: str) -> int:
    import importlib
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            _err(f"error: `{PROG} {what}` is not available in this build ({module} is missing)")
            return EXIT_BAD_INPUT
        raise
    try:
        rc = mod.main(rest)
    except SystemExit as exc:  # their argparse: --help (0) or a usage error (2); or SystemExit("message")
        if isinstance(exc.code, str):
            _err(f"error: {exc.code}")
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_BAD_INPUT)
    except OSError as exc:  # e.g. urllib's URLError: nothing answers at the sandbox's address
        reason = getattr(exc, "reason", None) or exc
        if what == "sandbox" and isinstance(reason, (ConnectionError, TimeoutError, OSError)):
            url = os.environ.get("MLOPS_SANDBOX_URL", "")
            raise BadInput(f"no sandbox answers{' at ' + url if url else ''} ({reason})",
                           remedy=f"start one with `{PROG} sandbox serve --state DIR` (and pass the same --state "
                                  f"DIR here), or check MLOPS_SANDBOX_URL") from None
        raise
    return int(rc or 0)


class _NoSandbox(InstallerError):
    pass


def _start_sandbox(state_dir: Path, speed: float):
    """Start the sandbox in the background; put its environment into os.environ; return its handle."""
    try:
        from sandbox.launcher import start_background
    except ModuleNotFoundError as exc:
        if exc.name and "sandbox.launcher".startswith(exc.name):
            raise _NoSandbox("the sandbox is not available in this build (sandbox.launcher is missing)",
                             error_class=ErrorClass.BAD_INPUT,
                             remedy="use a Google Cloud project instead of --sandbox") from None
        raise
    try:
        # gone with this installer, however it ends (the terminal closed too), or after an idle hour
        handle = start_background(state_dir, speed, exit_with_parent=True, idle_minutes=SANDBOX_IDLE_MINUTES)
    except Exception as exc:  # noqa: BLE001 - e.g. SandboxError: the server did not come up
        import logging
        logging.getLogger("mlops_install.cli").exception("sandbox start failed")
        raise InstallerError(f"the sandbox did not start: {exc}", error_class=ErrorClass.UNEXPECTED,
                             remedy=f"see {Path(state_dir) / 'sandbox.log'}") from None
    env = getattr(handle, "env", None)
    if env is None and isinstance(handle, dict):
        env = handle
    os.environ.update({k: str(v) for k, v in (env or {}).items()})
    return handle


def _stop_sandbox(handle: Any) -> None:
    stop = getattr(handle, "stop", None)
    if callable(stop):
        try:
            stop()
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
        (_err if output == "json" else _out)(written.line())
    if output == "json":
        return
    from .journal import state_root
    from .next_steps import next_steps, next_steps_text, ui_url_of, verified_line
    ui = ui_url_of(fin.outputs)
    if fin.exit_code == EXIT_OK and ui:
        _out(f"Kubeflow Pipelines UI: {ui}")
    verified = verified_line((fin.outputs or {}).get("kfp-verify") or {})
    if fin.exit_code == EXIT_OK and verified:
        _out(verified)
    if fin.exit_code == EXIT_OK and answers is not None:  # what to do now, with this environment's values
        _out(next_steps_text(next_steps(answers, fin.outputs, answers_path=answers_path, log_path=str(log_path or ""),
                                        kubeconfig=(runtime or {}).get("kubeconfig_written"), destroy=destroy)))
    elif fin.exit_code != EXIT_OK and answers_path:  # a report needs more than the message: the bundle
        _out(f"for a report: {PROG} gather --answers {answers_path}  (a redacted diagnostics bundle)")
    _out(f"state: {state_root()}   debug log: {log_path}")


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


def cmd_gather(args: argparse.Namespace) -> int:
    """``gather``: the diagnostics bundle (``installer.gather``); says where it is and what it could not read."""
    from .gather import gather

    answers, _resolved = load_inputs(args, getattr(args, "answers", None))
    out = Path(args.out).expanduser() if getattr(args, "out", None) else None
    if out is not None and (out.exists() or out.is_symlink()):
        raise BadInput(f"--out {args.out} exists", remedy="give a new file name; a bundle never overwrites a file")
    path, bundle = gather(answers, out)
    say = _err if args.output == "json" else _out
    for note in bundle.notes:
        say(f"note: {note}")
    if args.output == "json":
        _out(json.dumps({"bundle": str(path), "files": sorted(bundle.files), "notes": bundle.notes}))
    else:
        _out(f"bundle written: {path} ({len(bundle.files)} files, redacted; attach it to a report)")
    return EXIT_OK


def cmd_destroy(args: argparse.Namespace, log_path: Path | None) -> int:
    """``destroy``: say what goes, ask (a terminal) or take ``--yes``, then destroy with the reporter's lines."""
    from .destroy import destroy, destroy_plan, recorded_journal
    from .plan import build_plan
    from .reporters import make_reporter
    from .run import run_cancellable

    answers, _resolved = load_inputs(args, getattr(args, "answers", None))
    journal = recorded_journal(answers, remote=_remote_on())
    todo = destroy_plan(journal, build_plan(answers))
    say = _err if args.output == "json" else _out
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
                                  f"{_input_argv(args)} --yes")
        try:
            typed = input(f"Type the environment id ({answers.env_id}) to destroy it: ").strip()
        except EOFError:
            typed = ""
        if typed != answers.env_id:
            raise BadInput("not confirmed: nothing was destroyed",
                           remedy=f"type {answers.env_id} exactly at the question, or pass --yes")
    handle = None
    if getattr(args, "sandbox", False):
        from .journal import state_root
        handle = _start_sandbox(state_root() / "sandbox", getattr(args, "speed", None) or DEMO_SPEED)
    try:
        reporter = make_reporter(args.output, wait_interval=_wait_interval(), what="destroy")
        fin = run_cancellable(lambda: destroy(answers, logged(reporter), tick=reporter.tick, runtime={
            "force_unlock": getattr(args, "force_unlock", None)}))
    finally:
        if handle is not None:
            _stop_sandbox(handle)
    if fin.exit_code != 0 and log_path:
        _err(f"debug log: {log_path}")
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
    say = _err if args.output == "json" else _out
    note = _sources_note(resolved)
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
        from .journal import state_root
        handle = _start_sandbox(state_root() / "sandbox", args.speed or DEMO_SPEED)
    try:
        from .environment import detect_runtime
        runtime = detect_runtime()
        import logging
        logging.getLogger("mlops_install.cli").info("runtime: %s", runtime)
        for note in runtime.notes:
            (_err if args.output == "json" else _out)(f"note: {note}")
        reporter = make_reporter(args.output, wait_interval=_wait_interval())
        try:
            fin = run_install_sync(answers, logged(reporter), assume_yes=args.yes, tick=reporter.tick,
                                   preflight=not args.no_preflight, runtime=flags)
        except PreflightFailed as exc:
            _err(f"error: {exc.message}")
            if args.output == "json":  # stdout holds JSON only: say here what failed and how to fix it
                from .run import _check_to_dict
                for c in (getattr(exc.report, "checks", None) or []):
                    d = _check_to_dict(c)
                    if d.get("status") == "fail" or (not d.get("ok", True) and d.get("level") == "error"):
                        _err(_redacted(f"  {d.get('name')}: {d.get('message') or d.get('detail', '')}"
                                       + (f"\n    fix: {d.get('remedy') or d.get('fix')}"
                                          if d.get('remedy') or d.get('fix') else "")))
            _err(f"how to fix: {exc.remedy}")
            _err(f"debug log: {log_path}")
            return exit_code(exc)
        _summary_after(fin, log_path, args.output, flags, answers, answers_path,
                       _destroy_command(args, answers_path))
        return fin.exit_code
    finally:
        if handle is not None:
            _stop_sandbox(handle)


def _prompt_plain(partial) -> dict[str, Any]:
    """Ask for the missing required answers on the terminal (``--plain``)."""
    from .validation import FIELD_BY_PATH
    values = dict(partial.values)
    for path in partial.missing:
        spec = FIELD_BY_PATH[path]
        while True:
            default = spec.example if path != "project" else (os.environ.get("GOOGLE_CLOUD_PROJECT") or "")
            raw = input(f"{spec.description}\n  {path} [{default}]: ").strip() or str(default or "")
            if raw:
                values[path] = raw
                break
    return values


def _nest(values: dict[str, Any]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for path, v in values.items():
        head, _, rest = path.partition(".")
        if rest:
            d.setdefault(head, {})[rest] = v
        else:
            d[head] = v
    return d


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
    from .environment import is_interactive

    if not args.plain and not is_interactive():
        # as docs/wizard.md says: a terminal the full-screen wizard cannot drive gets the plain prompts
        _err(f"note: {_no_wizard_reason()}, so the full-screen wizard cannot start: plain prompts instead "
             f"(--plain). Without questions: `{PROG} --non-interactive --answers FILE` (start from "
             f"`{PROG} init`)")
        args.plain = True
    from .inputs import load_partial_resolved
    # the wizard has never taken --force-unlock (issue 18 changes no behaviour: noted for a later issue)
    flags = replace(RunFlags.from_args(args), force_unlock=None)
    if flags.no_verify:  # the same answer as `verify: false`, for the wizard and plain mode too
        args.set = [*(getattr(args, "set", None) or []), "verify=false"]
    prefill, resolved = load_partial_resolved(args.answers, args)
    try:
        from screens.app import run_wizard
    except ModuleNotFoundError as exc:
        if not (exc.name and "screens.app".startswith(exc.name)):
            raise
        run_wizard = None
    if run_wizard is None and not args.plain:
        _err(f"error: the wizard is not available in this build.\n"
             f"how to fix: use `{PROG} --plain` or `{PROG} --non-interactive --answers FILE`")
        return EXIT_BAD_INPUT
    handle = None
    if args.sandbox:
        from .journal import state_root
        handle = _start_sandbox(state_root() / "sandbox", args.speed or DEMO_SPEED)
    try:
        if run_wizard is not None:
            return int(run_wizard(answers_path=args.answers, prefill=prefill, plain=args.plain,
                                  log_path=log_path, assume_yes=args.yes, sandbox=handle is not None,
                                  flags=flags, manifests=getattr(args, "manifests", None),
                                  sources=resolved.sources) or 0)
        return _run_plain_fallback(prefill, args, log_path)
    finally:
        if handle is not None:
            _stop_sandbox(handle)


def _run_plain_fallback(prefill, args: argparse.Namespace, log_path: Path | None) -> int:
    """``--plain`` without the screens package: ask the missing required answers, then install."""
    from .journal import state_root
    from .validation import answers_from_dict, dump_answers, validate_partial
    partial = prefill or validate_partial({})
    if partial.problems:
        raise BadInput(f"{args.answers} has {len(partial.problems)} problem(s)", problems=partial.problems,
                       remedy="fix them, or leave the fields out to be asked")
    answers = partial.answers or answers_from_dict(_nest(_prompt_plain(partial)))
    saved = dump_answers(answers, state_root() / "envs" / answers.env_id / "answers.yaml", why="--plain")
    _out(f"answers saved to {saved}")
    ns = argparse.Namespace(**{**vars(args), "output": "plain", "sandbox": False})
    return run_non_interactive(str(saved), ns, log_path)


def offline_manifests(explicit: str | None = None, repo: Path = REPO_ROOT) -> tuple[Path | None, str]:
    """The rendered KFP manifests the demo, ``--sandbox`` and the wizard deploy (``installer.manifests``)."""
    from .manifests import local_manifests
    return local_manifests(explicit, repo)


def cmd_demo(args: argparse.Namespace, log_path: Path | None) -> int:
    import tempfile

    from .environment import is_interactive

    say = _err if args.output == "json" else _out  # keep stdout pure JSON lines with --output json

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
        log_path = _setup_log(args)
        import logging
        logging.getLogger("mlops_install.cli").info("argv: %s", " ".join(sys.argv[1:]))
    manifests, found = offline_manifests(getattr(args, "manifests", None))
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
    try:
        handle = _start_sandbox(state / "sandbox", args.speed)
    except _NoSandbox as exc:
        # no sandbox in this build: show the plan of the example answers instead
        _out(f"note: {exc.message}; showing the plan of {answers_path} instead")
        return cmd_plan(argparse.Namespace(answers=answers_path, check=False, output=args.output))
    try:
        say(f"sandbox running (state {state / 'sandbox'}, speed {args.speed:g}); "
             f"installer state {state / 'installer'}")
        if getattr(args, "destroy", False):
            rc = cmd_destroy(argparse.Namespace(answers=answers_path, yes=True, output=args.output), log_path)
            say(f"demo state: {state}")
            return rc
        if is_interactive() and args.output != "json":
            try:
                from screens.app import run_wizard
                from .validation import load_partial
                partial, _ = load_partial(answers_path)
                rc = int(run_wizard(prefill=partial, answers_path=answers_path, log_path=log_path,
                                    assume_yes=True, sandbox=True) or 0)
            except ModuleNotFoundError:
                rc = None
            if rc is not None:
                _out(f"demo state: {state}   debug log: {log_path}")
                return rc
        ns = argparse.Namespace(**{**vars(args), "sandbox": False, "yes": True, "enable_apis": True,
                                   "no_preflight": False})
        rc = run_non_interactive(answers_path, ns, log_path)
        say(f"demo state: {state} (sandbox: {state / 'sandbox'}, journals and logs: {state / 'installer'})")
        return rc
    finally:
        _stop_sandbox(handle)


# ---------------------------------------------------------------------------------------------------------------
# main

def _setup_log(args: argparse.Namespace) -> Path | None:
    from .logs import setup_logging
    try:
        return setup_logging(args.log_file)
    except OSError as exc:
        if args.log_file:
            raise BadInput(f"cannot write the log file {args.log_file}: {exc.strerror or exc}",
                           remedy="give a writable path with --log-file") from None
        import tempfile
        try:  # an unwritable state dir must not stop the installer
            return setup_logging(Path(tempfile.gettempdir()) / f"mlops-install-{os.getpid()}.log")
        except OSError:
            return None


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
        return _guarded(lambda: _delegate("sandbox.cli", argv[1:], "sandbox"), None, "plain")
    if argv and argv[0] == "render":
        log_path = None
        if "-h" not in argv and "--help" not in argv:
            try:
                log_path = _setup_log(argparse.Namespace(log_file=None))
            except BadInput:
                log_path = None
        return _guarded(lambda: _delegate("backends.kfp.render", argv[1:], "render"), log_path, "plain")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_BAD_INPUT)
    log_path = None
    # read-only commands write no log unless --log-file; the demo opens its log under its own state dir (a log
    # here would be a stray file in the user's state dir, holding only argv)
    if args.log_file or not (read_only(args) or args.command == "demo"):
        try:
            log_path = _setup_log(args)
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
    from .journal import state_root
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
        _err(f"error: {exc.message}\nhow to fix: {exc.remedy}{log_hint}")
        return exit_code(exc)
    except InstallerError as exc:
        log.error("%s [%s] %s", exc.message, exc.error_class.value, exc.remedy)
        _err(_redacted(f"error: {exc.message}" + (f"\nhow to fix: {exc.remedy}" if exc.remedy else "") + log_hint))
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        _err(f"interrupted{log_hint}")
        return exit_code(exc)
    except RecursionError as exc:
        log.exception("recursion")
        _err(f"error: the input is nested too deeply ({exc}){log_hint}")
        return exit_code(exc)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        log.exception("unexpected error")
        _err(_redacted(f"error: unexpected {type(exc).__name__}: {exc}\n"
                       f"how to fix: run the same command again (an install resumes where it stopped); if it "
                       f"fails again, report it with the debug log{log_hint}"))
        return exit_code(exc)
