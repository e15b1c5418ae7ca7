"""The service-account steps (``gke-sa``, ``kfp-sa``) and their project roles (``gke-sa-roles``, ``kfp-sa-roles``).

Service accounts take no labels: ours carry the marker in their description. Roles are granted and removed by a
read-modify-write of the project IAM policy with its etag.
"""
from __future__ import annotations

import asyncio
from typing import Any

from installer.answers import Answers
from installer.steps import Observation, StepContext

from backends.gcp.calls import call
from backends.gcp.errors import ApiError, classify, sa_not_visible
from backends.gcp.policy import add_member, missing_roles, read_modify_write, remove_member

from .common import InfraStep, conflict, has_marker, marker, poll_until


class ServiceAccountStep(InfraStep):
    which = "gke"

    def ids(self, answers: Answers) -> tuple[str, str, str]:
        n = answers.names
        if self.which == "gke":
            return n.gke_sa, n.gke_sa_email, "GKE node service account"
        return n.kfp_sa, n.kfp_sa_email, "Kubeflow Pipelines service account"

    async def _get(self, answers: Answers, email: str, **kw) -> dict:
        return await call("iam", lambda s: s.projects().serviceAccounts().get(
            name=f"projects/{answers.project}/serviceAccounts/{email}"), raw=True, **kw)

    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        account_id, email, _ = self.ids(answers)
        try:
            sa = await self._get(answers, email)
        except ApiError as err:
            if err.not_found:
                return Observation("absent", f"service account {email} does not exist")
            raise classify(err, what=f"service account {email}", project=answers.project) from err
        out = {"email": sa.get("email", email), "unique_id": sa.get("uniqueId", "")}
        if sa.get("disabled"):
            return conflict(f"service account {email} exists but is disabled",
                            f"Enable it (`gcloud iam service-accounts enable {email}`) and run again.")
        return Observation("ready", f"service account {email} exists", out,
                           adopted=not has_marker(answers, sa.get("description")))

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        a = ctx.answers
        account_id, email, title = self.ids(a)
        body = {"accountId": account_id,
                "serviceAccount": {"displayName": f"{title} ({a.prefix})", "description": marker(a)}}
        try:
            sa = await call("iam", lambda s: s.projects().serviceAccounts().create(
                name=f"projects/{a.project}", body=body), raw=True)
        except ApiError as err:
            if not err.already_exists:
                raise classify(err, what=f"service account {email}", project=a.project) from err
            sa = None
        await ctx.remember(email=email)
        if sa is None:  # made by an earlier, interrupted run (or just now by someone else): read it back
            sa = await self._get(a, email, retry_if=sa_not_visible)
        return {"email": sa.get("email", email), "unique_id": sa.get("uniqueId", "")}

    async def verify(self, ctx: StepContext) -> None:
        # IAM's own reads are eventually consistent: wait until the account reads back (later users such as
        # setIamPolicy and GKE retry "does not exist" for their own, longer, window).
        _, email, _ = self.ids(ctx.answers)
        await self._get(ctx.answers, email, retry_if=sa_not_visible)

    async def destroy(self, ctx: StepContext) -> None:
        a = ctx.answers
        obs = await self.inspect(a)
        if obs.status != "ready" or obs.adopted:
            return
        _, email, _ = self.ids(a)
        try:
            await call("iam", lambda s: s.projects().serviceAccounts().delete(
                name=f"projects/{a.project}/serviceAccounts/{email}"), raw=True)
        except ApiError as err:
            if not err.not_found:
                raise classify(err, what=f"service account {email}", project=a.project) from err


class GkeSaStep(ServiceAccountStep):
    which = "gke"


class KfpSaStep(ServiceAccountStep):
    which = "kfp"


def _iam_lock(ctx: StepContext) -> asyncio.Lock:
    # One read-modify-write at a time per project within a run (like terraform's mutex); a lock per run, so it
    # never serialises anything but IAM policy writes. Concurrent writers elsewhere are handled by the etag.
    key = f"_iam_lock:{ctx.answers.project}"
    lock = ctx.runtime.get(key)
    if lock is None:
        lock = ctx.runtime[key] = asyncio.Lock()
    return lock


async def get_policy(project: str) -> dict:
    return await call("cloudresourcemanager", lambda s: s.projects().getIamPolicy(
        resource=project, body={"options": {"requestedPolicyVersion": 3}}), project=project,
        what=f"IAM policy of {project}")


async def modify_policy(ctx: StepContext, edit, what: str) -> None:
    """Read-modify-write of the project IAM policy with its etag (``backends.gcp.policy.read_modify_write``: retried
    on 409 ABORTED and while a just-created account is not yet visible), one at a time per project in a run."""
    p = ctx.answers.project

    async def write(policy: dict) -> None:
        policy.setdefault("version", 1)
        if any(b.get("condition") for b in policy.get("bindings", [])):
            policy["version"] = 3
        await call("cloudresourcemanager", lambda s: s.projects().setIamPolicy(
            resource=p, body={"policy": policy, "updateMask": "bindings,etag"}), raw=True)

    async with _iam_lock(ctx):
        await read_modify_write(lambda: get_policy(p), write, edit, what=what, project=p, on_wait=ctx.progress)


class RolesStep(InfraStep):
    which = "gke"

    def member_roles(self, answers: Answers) -> tuple[str, list[str]]:
        n, sa = answers.names, answers.service_accounts
        if self.which == "gke":
            return f"serviceAccount:{n.gke_sa_email}", list(sa.gke_roles)
        return f"serviceAccount:{n.kfp_sa_email}", list(sa.kfp_roles)

    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        member, roles = self.member_roles(answers)
        policy = await get_policy(answers.project)
        missing = missing_roles(policy, member, roles)
        out = {"member": member, "roles": roles}
        if not missing:
            return Observation("ready", f"{member} holds its {len(roles)} roles", out)
        return Observation("absent", f"{member} lacks {', '.join(missing)}", out)

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        member, roles = self.member_roles(ctx.answers)
        await modify_policy(ctx, lambda pol: add_member(pol, member, roles), f"roles for {member}")
        return {"member": member, "roles": roles}

    async def verify(self, ctx: StepContext) -> None:
        member, roles = self.member_roles(ctx.answers)

        async def shows() -> bool:
            return not missing_roles(await get_policy(ctx.answers.project), member, roles)
        await poll_until(shows, what=f"checking the roles of {member}", timeout=120)

    async def destroy(self, ctx: StepContext) -> None:
        member, roles = self.member_roles(ctx.answers)
        await modify_policy(ctx, lambda pol: remove_member(pol, member, roles), f"roles for {member}")


class GkeRolesStep(RolesStep):
    which = "gke"


class KfpRolesStep(RolesStep):
    which = "kfp"
