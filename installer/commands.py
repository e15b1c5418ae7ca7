"""The command line's commands that read (``validate``, ``init``, ``schema``, ``plan``, ``status``, ``gather``,
``render``),
and what every command shares: its output (``echo``, ``echo_err``, ``print_problems``), its debug log
(``setup_log``) and its answers (``load_inputs``: an answers file under the input flags, ``installer.inputs``).

The commands that change things are in ``installer.run_commands``, the demo in ``installer.demo``; the parser and the
dispatch in ``installer.cli``. Start-up stays fast: only the standard library at the top; the rest is imported by
the command that needs it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from . import PROG
from .errors import EXIT_OK, BadInput

# ---------------------------------------------------------------------------------------------------------------
# output

def echo_err(text: str) -> None:
    try:
        sys.stderr.write(text.rstrip("\n") + "\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass


def echo(text: str = "") -> None:
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass


def redacted(text: str) -> str:
    from .logs import redact
    return redact(text)


def print_problems(exc: BadInput, output: str = "plain") -> None:
    if output == "json":
        echo(json.dumps({"ok": False, "message": exc.message, "remedy": exc.remedy,
                         "problems": [_problem_dict(p) for p in exc.problems]}))
        return
    echo_err(f"error: {exc.message}" + (":" if exc.problems else ""))
    for p in exc.problems:
        echo_err(f"  {redacted(_plain_problem(p) if hasattr(p, 'path') else str(p))}")
    if exc.remedy:
        echo_err(f"how to fix: {exc.remedy}")


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
# the debug log and the answers

def setup_log(args: argparse.Namespace) -> Path | None:
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


def input_argv(args: argparse.Namespace) -> str:
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


def sources_note(resolved) -> str:
    text = resolved.describe()
    return f"from outside the answers file: {text}" if text else ""


# ---------------------------------------------------------------------------------------------------------------
# the commands that read

def cmd_validate(args: argparse.Namespace) -> int:
    answers, resolved = load_inputs(args, args.file)
    what = args.file or "the inputs"
    if args.output == "json":
        echo(json.dumps({"ok": True, "env_id": answers.env_id, "names": answers.names.__dict__,
                         "sources": resolved.sources}))
    else:
        n = answers.names
        echo(f"{what}: valid (project {answers.project}, prefix {answers.prefix}, "
             f"{'zone ' + answers.zone if answers.zone else 'region ' + answers.region}, "
             f"credentials {answers.credentials}); cluster {n.cluster}, bucket {n.bucket}")
        note = sources_note(resolved)
        if note:
            echo(note)
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
        echo(json.dumps({"ok": True, "path": str(path), "complete": answers is not None,
                         "missing": [p.path for p in left], "sources": resolved.sources}))
        return EXIT_OK
    echo(f"wrote {path} (mode 0600)")
    from .inputs import Resolved
    shown = Resolved(resolved.data, {k: v for k, v in resolved.sources.items()})
    if shown.describe():
        echo(f"  {shown.describe()}")
    if answers is None:
        echo("still to fill in: " + ", ".join(dict.fromkeys(p.path for p in left)) +
             f" (then `{PROG} validate {path}`)")
    else:
        echo(f"next: `{PROG} plan --answers {path}`, then `{PROG} install --non-interactive --answers {path} "
             f"--enable-apis`")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from .fields import json_schema
    echo(json.dumps(json_schema(), indent=2))
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
        echo(json.dumps({"env_id": answers.env_id, "steps": [r.__dict__ for r in rows],
                         "summary": plan_summary(rows)}, default=list))
        return rc
    where = f"zone {answers.zone}" if answers.zone else f"region {answers.region} (regional cluster)"
    echo(f"Plan for project {answers.project}, prefix {answers.prefix}: {where}, credentials {answers.credentials}")
    echo("(nothing is changed by this command)")
    note = sources_note(resolved)
    if note:
        echo(note)
    w_id = max(len(r.step_id) for r in rows)
    w_res = min(58, max(len(r.resource) for r in rows))
    group = None
    for r in rows:
        if r.group != group:
            group = r.group
            echo(f"\n{GROUP_TITLES.get(group, group)}")
        detail = _one_line(r.detail)
        action = r.action + (f" ({detail})" if detail and r.action not in ("not checked",) else "")
        journal = f"  [journal: {r.journal_status}]" if r.journal_status else ""
        echo(f"  {r.step_id:<{w_id}}  {r.resource:<{w_res}}  {action}{journal}")
        for c in r.changes if r.action == "update" else ():
            how = f"  ({_one_line(str(c['how']))})" if c.get("how") else ""
            echo(f"  {'':<{w_id}}    {c.get('field')}: {c.get('old')} -> {c.get('new')}{how}")
    if rows and rows[0].action == "not checked":
        echo(f"\nnot checked: {rows[0].detail}")
    echo(f"\ncluster: {cluster_size(answers).describe()}")
    echo(plan_summary(rows))
    secs, path = plan.critical_path()
    total = sum(s.expected_seconds for s in plan)
    echo(f"{len(rows)} steps; expected ~{fmt_duration(secs)} along the longest chain "
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
    from .journal import Journal, list_envs
    from .paths import state_root

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
        from .field_checks import check_prefix, check_project
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
                echo(json.dumps({"environments": []}))
            else:
                echo(f"no environments yet (state dir: {state_root()})")
            return EXIT_OK
    if args.output == "json":
        echo(json.dumps({"environments": [j.summary() for j in journals]}, default=str))
    else:
        echo("\n\n".join(j.format_status(order) for j in journals))
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


def cmd_gather(args: argparse.Namespace) -> int:
    """``gather``: the diagnostics bundle (``installer.gather``); says where it is and what it could not read."""
    from .gather import gather

    answers, _resolved = load_inputs(args, getattr(args, "answers", None))
    out = Path(args.out).expanduser() if getattr(args, "out", None) else None
    if out is not None and (out.exists() or out.is_symlink()):
        raise BadInput(f"--out {args.out} exists", remedy="give a new file name; a bundle never overwrites a file")
    path, bundle = gather(answers, out)
    say = echo_err if args.output == "json" else echo
    for note in bundle.notes:
        say(f"note: {note}")
    if args.output == "json":
        echo(json.dumps({"bundle": str(path), "files": sorted(bundle.files), "notes": bundle.notes}))
    else:
        echo(f"bundle written: {path} ({len(bundle.files)} files, redacted; attach it to a report)")
    return EXIT_OK


def cmd_render(argv: list[str]) -> int:
    """``render``: the KFP overlay and the rendered manifests written for review, changing nothing
    (``backends.kfp.render.write_review``). Its own parser (it takes the input flags but not the top-level
    options); errors reach the top-level handler as every command's do."""
    ap = argparse.ArgumentParser(prog=f"{PROG} render",
                                 description="Write the KFP overlay and the rendered manifests for review "
                                             "(changes nothing).")
    ap.add_argument("--answers", help="the answers file (optional when the input flags, the environment or "
                    "gcloud's config give project, region and prefix)")
    ap.add_argument("--out", required=True, help="folder to write into")
    ap.add_argument("--connection-name", default=None,
                    help="Cloud SQL connection name to show (default: from the journal, if the install ran)")
    from .inputs import add_flags, load_resolved
    add_flags(ap, top=True)  # --project, --region, --zone, --prefix, --credentials, --set: as every command
    args = ap.parse_args(argv)
    answers, _ = load_resolved(args.answers, args)
    from backends.kfp.render import write_review
    for f in write_review(answers, Path(args.out), args.connection_name):
        echo(str(f))
    return EXIT_OK
