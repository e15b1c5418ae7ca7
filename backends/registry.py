"""Maps the plan's step ids to their implementations (imported lazily: cloud clients are heavy)."""
from __future__ import annotations

from installer.plan import Plan
from installer.steps import Step


def build_steps(plan: Plan) -> dict[str, Step]:
    from backends.infra.steps import STEPS as infra
    from backends.kfp.steps import STEPS as kfp
    from backends.secrets.steps import STEPS as secrets

    registry = {**infra, **secrets, **kfp}  # step id -> class taking the StepSpec
    return {spec.id: registry[spec.id](spec) for spec in plan}
