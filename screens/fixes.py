"""A failure's fix where the user is (split from ``screens/services.py``, the wizard's facade, which re-exports
``actionable``): the backend's remedy with its placeholders filled in, the wizard keys that change the answer
(``WIZARD_FIX``) and a console page for the project (``CONSOLE_PAGE``)."""
from __future__ import annotations

import re
from dataclasses import dataclass

CONSOLE = "https://console.cloud.google.com"
# what the wizard can change about a failure of each class: (the keys, from the failure screen, what they change)
WIZARD_FIX = {
    "quota": ("b → l", "fewer nodes or a smaller machine, or another region or zone"),
    "name-taken": ("b → l", "another name prefix"),
    "conflict": ("b → l", "another name prefix (the resource that is there is not ours)"),
    "org-policy": ("b → c", "Workload Identity (no key)"),
    "api-disabled": ("b → a", "enable the APIs"),
    "auth": ("q", "quit, sign in (gcloud auth login --update-adc), run mlops-install again"),
}
CONSOLE_PAGE = {
    "permission-denied": ("IAM", "/iam-admin/iam"),
    "quota": ("quotas", "/iam-admin/quotas"),
    "api-disabled": ("APIs", "/apis/dashboard"),
    "org-policy": ("organisation policies", "/iam-admin/orgpolicies"),
}


@dataclass
class Fix:
    remedy: str  # the backend's fix, its placeholders filled in with the real values
    keys: str = ""  # the wizard keys that change the answer ("b → l")
    change: str = ""  # what they change
    link: str = ""  # a console page with the project filled in


def actionable(error_class: str, message: str, remedy: str, *, project: str = "", account: str | None = None,
               zone: str | None = None) -> Fix:
    """A failure's fix where the user is: real values for the placeholders, the wizard key, a console link; advice
    that does not apply to the answers is left out (a zonal cluster is not told to use a zone)."""
    text = remedy or ""
    if project:
        text = text.replace("<project>", project).replace("PROJECT_ID", project)
    if account:
        member = f"serviceAccount:{account}" if account.endswith(".gserviceaccount.com") else f"user:{account}"
        text = text.replace("user:<your-email>", member).replace("<member>", member).replace("<you>", member)
    if zone:  # already zonal: drop the sentence that advises a zone
        text = " ".join(s for s in re.split(r"(?<=[.;])\s+", text) if not re.search(r"\b(use|pick|choose) a zone\b",
                                                                                 s, re.I)).strip()
    keys, change = WIZARD_FIX.get(error_class, ("", ""))
    if error_class == "bad-input" and "kfp.manifests" in f"{message} {remedy}":
        keys, change = "b → m", "another folder of KFP manifests"
    if "github.com" in message and "manifests" in message:
        keys, change = "b → m", "a local folder of rendered KFP manifests"
    link = ""
    if project and error_class in CONSOLE_PAGE:
        link = f"{CONSOLE}{CONSOLE_PAGE[error_class][1]}?project={project}"
    return Fix(text, keys, change, link)
