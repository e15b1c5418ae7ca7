"""Run only the infrastructure part of the plan (tests and the wall-time benchmark).

``await run_infra(answers, journal_root=..., preflight=False)`` -> (RunFinished, [events]) runs the real
orchestration (``installer.run.install``) on the plan's "infrastructure" group with this package's steps.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from installer.answers import Answers
from installer.plan import Plan, build_plan
from installer.run import install


def infra_plan(answers: Answers) -> Plan:
    full = build_plan(answers)
    return Plan(answers=answers, steps=[s for s in full if s.group == "infrastructure"])


def infra_steps(plan: Plan) -> dict[str, Any]:
    from .steps import STEPS
    return {s.id: STEPS[s.id](s) for s in plan}


async def run_infra(answers: Answers, *, journal_root: Path | None = None, preflight: bool = False,
                    runtime: dict | None = None, plan: Plan | None = None,
                    assume_yes: bool | None = None) -> tuple[Any, list]:
    """``assume_yes`` (``--yes``: consent to enable APIs) defaults to the answers' ``apis.enable``."""
    events: list = []
    if assume_yes is None:
        assume_yes = bool(answers.apis.enable)
    plan = plan or infra_plan(answers)
    runtime = runtime if runtime is not None else {}
    fin = await install(answers, events.append, assume_yes=assume_yes, runtime=runtime, steps=infra_steps(plan),
                        preflight=preflight, journal_root=journal_root, plan=plan)
    return fin, events
