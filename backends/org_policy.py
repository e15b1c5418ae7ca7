"""Whether organization policy lets a project create service-account keys (``await key_policy(project)``): read
by the preflight's org-policy check, the wizard's credentials screen and ``backends.queries``. Read-only."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from installer.errors import InstallerError

# The two constraints that forbid service-account keys. Resource Manager v1 getEffectiveOrgPolicy reads only the
# legacy one: for a managed constraint Google answers 400 "… is in a Managed constraint format. Managed constraints
# are only supported with Org Policy V2 API …" (terraform-google-modules/terraform-google-org-policy#183). The
# managed one is read through Org Policy v2 projects.policies.getEffectivePolicy (orgpolicy.v2 discovery document,
# GET v2/{+name}:getEffectivePolicy; PolicySpec.rules[].enforce), which needs orgpolicy.googleapis.com enabled and
# orgpolicy.policy.get. Organizations created since 3 May 2024 enforce the managed one by default
# (https://cloud.google.com/resource-manager/docs/secure-by-default-organizations).
LEGACY_KEY_CONSTRAINT = "constraints/iam.disableServiceAccountKeyCreation"
MANAGED_KEY_CONSTRAINT = "iam.managed.disableServiceAccountKeyCreation"


@dataclass
class KeyPolicy:
    """Whether organization policy lets this project create service-account keys."""
    enforced: bool | None  # True: a constraint forbids keys; False: neither does; None: not known
    unread: list[str]  # "constraint (why)" for each constraint that could not be read

    @property
    def note(self) -> str:
        return "; ".join(self.unread)


def why_unread(err: Exception) -> str:
    """Why a read failed, in a few words (an API not enabled, no permission, the HTTP status)."""
    from backends.gcp.errors import ApiError, is_service_disabled
    if isinstance(err, ApiError):
        if is_service_disabled(err):
            svc = (err.error_info.get("metadata") or {}).get("service") or "its API"
            return f"{svc} is not enabled"
        if err.http == 403:
            return "no permission to read it"
        return f"HTTP {err.http}: {err.message[:120]}"
    return str(getattr(err, "message", err))[:120]


async def key_policy(project: str) -> KeyPolicy:
    """Both key constraints, each through the API that can read it; anything unreadable is unknown, never a
    failure."""
    from backends.gcp.calls import call
    from backends.gcp.errors import ApiError

    async def legacy() -> bool:
        pol = await call("cloudresourcemanager", lambda s: s.projects().getEffectiveOrgPolicy(
            resource=f"projects/{project}", body={"constraint": LEGACY_KEY_CONSTRAINT}), project=project,
            what="organization policy", raw=True, budget=20)
        return bool((pol.get("booleanPolicy") or {}).get("enforced"))

    async def managed() -> bool:
        pol = await call("orgpolicy", lambda s: s.projects().policies().getEffectivePolicy(
            name=f"projects/{project}/policies/{MANAGED_KEY_CONSTRAINT}"), project=project,
            what="organization policy", raw=True, budget=20, propagation=False)
        return any(r.get("enforce") and not r.get("condition") for r in (pol.get("spec") or {}).get("rules") or [])

    results = await asyncio.gather(legacy(), managed(), return_exceptions=True)
    unread, enforced = [], False
    for name, res in zip((LEGACY_KEY_CONSTRAINT.split("/", 1)[1], MANAGED_KEY_CONSTRAINT), results):
        if isinstance(res, BaseException):
            if not isinstance(res, (ApiError, InstallerError)):
                raise res
            unread.append(f"{name} ({why_unread(res)})")
        elif res:
            enforced = True
    return KeyPolicy(True if enforced else (None if unread else False), unread)

