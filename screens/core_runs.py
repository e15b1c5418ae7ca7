"""The core's runs for the wizard (split from ``screens/services.py``, the wizard's facade, which re-exports them):
the plan, the journal's unfinished and recorded environments, and the install, destroy and preflight through
``installer.run``, ``installer.destroy`` and ``backends.preflight``, with what they raise before the engine starts
turned into events. Everything is imported lazily so the first frame comes up fast.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .answer_rules import load_answers_file

# ---------------------------------------------------------------------------------------------- plan, journal


def build_plan(answers):
    from installer.plan import build_plan as bp
    return bp(answers)


def time_scale() -> float:
    from installer.run import time_scale as ts
    return ts()


@dataclass
class UnfinishedRun:
    env_id: str
    done: int
    total: int
    failed: list[str]
    answers: dict | None  # the answers written for that environment, when found
    updated: float


def find_unfinished(env_id: str | None = None) -> UnfinishedRun | None:
    """An environment whose journal exists and did not finish ``done`` (the given one, else the newest)."""
    from installer.journal import list_envs

    journals = sorted((j for j in list_envs() if env_id is None or j.env_id == env_id),
                      key=lambda j: j.path.stat().st_mtime, reverse=True)
    for j in journals:
        if j.data.get("status") in ("done", "destroyed"):  # finished, or taken down: nothing to resume
            continue
        steps = j.data.get("steps", {})
        if not steps:
            continue
        done = sum(1 for r in steps.values() if r.get("status") == "done")
        failed = [s for s, r in steps.items() if r.get("status") == "failed"]
        return UnfinishedRun(j.env_id, done, len(steps), failed, _recorded_answers(j),
                             float(j.data.get("updated") or 0))
    return None


def _recorded_answers(journal) -> dict | None:
    """The answers of an environment's last run: the journal records them (no secret in them), else the
    answers.yaml the wizard wrote beside it."""
    folder = journal.path.parent
    ans = journal.data.get("answers")
    if not ans and (folder / "answers.yaml").exists():
        try:
            ans, _ = load_answers_file(str(folder / "answers.yaml"))
        except Exception:
            ans = None
    return ans


@dataclass
class RecordedEnv:
    env_id: str
    status: str  # the journal's: "done", "failed", "interrupted", ...
    answers: dict | None
    updated: float


def recorded_environments() -> list[RecordedEnv]:
    """The environments whose journal is under this machine's state dir and not taken down, newest first (what the
    welcome screen offers to destroy; ``mlops-install status`` lists the same journals)."""
    from installer.journal import list_envs

    found = []
    for j in list_envs():
        if j.data.get("status") == "destroyed" or not j.data.get("steps"):
            continue
        found.append(RecordedEnv(j.env_id, str(j.data.get("status") or "unknown"), _recorded_answers(j),
                                 float(j.data.get("updated") or 0)))
    return sorted(found, key=lambda e: e.updated, reverse=True)


def destroy_preview(answers):
    """Blocking (a thread): what destroying ``answers``' environment does, last step first, as ``mlops-install
    destroy`` lists it (``installer.destroy.destroy_plan``), and the plan of the steps it runs (``teardown_plan``,
    the same the core's destroy builds: the progress panes show exactly those). BadInput when nothing is recorded."""
    from installer.destroy import destroy_plan, recorded_journal, teardown_plan

    journal = recorded_journal(answers)
    plan = build_plan(answers)
    rows = destroy_plan(journal, plan)
    return rows, teardown_plan(plan, [sid for sid, *_ in rows])


async def destroy(answers, emit: Callable[[Any], None], *, runtime: dict | None = None):
    """Run (or go on with) a destroy through the core's ``installer.destroy.destroy``; return its RunFinished
    (what it raises before the engine starts comes back as events, as for ``install``)."""
    from installer.destroy import destroy as core_destroy

    return await _reported(core_destroy(answers, emit, runtime=runtime), emit, "destroy")


# ---------------------------------------------------------------------------------------------- install


def warm_up() -> None:
    """Blocking (a thread): the backends' imports and the Google services' discovery documents, before the install
    needs them (``installer.run.warm_up_backends``)."""
    from installer.run import warm_up_backends
    warm_up_backends()


async def install(answers, emit: Callable[[Any], None], *, assume_yes: bool = True, runtime: dict | None = None):
    """Run (or resume) the install through the core's ``installer.run.install``; return its RunFinished."""
    from installer.run import install as core_install

    return await _reported(core_install(answers, emit, assume_yes=assume_yes, runtime=runtime), emit, "install")


async def _reported(run, emit: Callable[[Any], None], what: str):
    """Await the core's install or destroy. What it raises before the engine starts (preflight failed, nothing
    recorded, the journal locked by another installer) or when the engine's checkpoint stops it (another installer
    took the environment's remote lock once the bucket existed) comes back as a StepFailed event (step ``what``, or
    "preflight") plus a RunFinished carrying the matching exit code."""
    from installer.errors import InstallerError, PreflightFailed, exit_code
    from installer.events import RunFinished, StepFailed

    try:
        return await run
    except InstallerError as exc:
        step = "preflight" if isinstance(exc, PreflightFailed) else what
        emit(StepFailed(step, exc.error_class.value, exc.message, exc.remedy))
        fin = RunFinished("failed", exit_code(exc), [step])
    emit(fin)
    return fin


async def preflight(answers, runtime: dict | None = None):
    """The core's read-only preflight (``backends.preflight.run_preflight``), for Review before Install: its report
    (``.ok``, ``.checks`` with ``status`` ok | warn | fail, ``detail``, ``fix``)."""
    from backends.preflight import run_preflight
    return await run_preflight(answers, runtime)


def default_log_path() -> Path:
    from installer.logs import default_log_path as dlp
    return dlp()


def repeat_command(answers_path: Path | str, runtime: dict | None = None, credentials: str | None = None) -> str:
    from installer import PROG
    from installer.flags import repeat_flags
    return f"{PROG} --non-interactive --yes --answers {answers_path}{repeat_flags(runtime, credentials)}"
