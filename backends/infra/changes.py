"""Settings of an existing resource of ours that differ from the answers (``Change``), and the consent to update them
in place (``--yes``, the wizard's confirm). Used by the cluster and Cloud SQL steps, the KFP steps and the preflight.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from installer.answers import Answers
from installer.errors import ErrorClass, InstallerError
from installer.steps import StepContext


@dataclass
class Change:
    """A setting of an existing resource of ours that differs from the answers. ``in_place``: the step updates it
    (``how``); else it is refused before anything is made, with the way out."""
    resource: str  # e.g. "cluster demo-kfp-cluster"
    field: str  # the answers' field, e.g. "cluster.node_count"
    old: Any
    new: Any
    in_place: bool
    how: str = ""

    def __str__(self) -> str:
        return f"{self.resource}: {self.field} {self.old} -> {self.new}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def way_out(a: Answers) -> str:
    return (f"It cannot change in place: put back the old value, or take the environment down first "
            f"(`mlops-install destroy --answers <file>`: project {a.project}, prefix {a.prefix}) and install again, "
            f"or install beside it with a new prefix.")


def consent_to_change(runtime: dict | None) -> bool:
    """Consent to update settings of existing resources: ``runtime["apply_changes"]`` (``--yes``; the wizard's
    confirm sets it too)."""
    return bool((runtime or {}).get("apply_changes"))


def changes_remedy(changes: list[Change]) -> str:
    return ("Run the same command with --yes to apply " + ("it" if len(changes) == 1 else "them")
            + " (the wizard asks), or put back the old value(s) in the answers.")


def require_consent(ctx: StepContext, changes: list[Change]) -> None:
    if changes and not consent_to_change(ctx.runtime):
        raise InstallerError("settings of an existing resource differ from the answers: "
                             + "; ".join(str(c) for c in changes), error_class=ErrorClass.CONFLICT,
                             remedy=changes_remedy(changes))
