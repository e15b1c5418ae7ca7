"""The ``apis`` step: the services the install needs, enabled in batches (with consent), then waited on until
listed and usable.

Enabling propagates after its operation is done: the step polls the list and a cheap read per API before it is done.
"""
from __future__ import annotations

import asyncio
from typing import Any

from installer.answers import LEGACY_APIS, Answers
from installer.errors import InstallerError
from installer.steps import Observation, StepContext

from backends.gcp import operations
from backends.gcp.calls import call, note_enabled
from backends.gcp.env import scaled
from backends.gcp.errors import ApiError, is_service_disabled

from .common import InfraStep, conflict, poll_until, tail

BATCH = 20


async def enabled_services(project: str) -> set[str]:
    out: set[str] = set()
    token = None
    while True:
        resp = await call("serviceusage", lambda s, t=token: s.services().list(
            parent=f"projects/{project}", filter="state:ENABLED", pageSize=200, pageToken=t), project=project)
        for svc in resp.get("services") or []:
            out.add(svc.get("config", {}).get("name") or tail(svc.get("name")))
        token = resp.get("nextPageToken")
        if not token:
            return out


def batches(missing: list[str]) -> list[list[str]]:
    """At most 20 per batch; each legacy API alone (batchEnable is all-or-nothing)."""
    normal = [a for a in missing if a not in LEGACY_APIS]
    out = [normal[i:i + BATCH] for i in range(0, len(normal), BATCH)]
    return out + [[a] for a in missing if a in LEGACY_APIS]


# A cheap read per API, to know it is usable (enabling propagates after the operation is done).
def _probe(api: str, answers: Answers):
    p = answers.project
    return {
        "compute.googleapis.com": ("compute", lambda s: s.regions().get(project=p, region=answers.region)),
        "container.googleapis.com": ("container", lambda s: s.projects().locations().clusters().list(
            parent=f"projects/{p}/locations/-")),
        "sqladmin.googleapis.com": ("sqladmin", lambda s: s.instances().list(project=p, maxResults=1)),
        "iam.googleapis.com": ("iam", lambda s: s.projects().serviceAccounts().list(
            name=f"projects/{p}", pageSize=1)),
        "cloudresourcemanager.googleapis.com": ("cloudresourcemanager", lambda s: s.projects().get(projectId=p)),
        "storage.googleapis.com": ("storage", lambda s: s.buckets().list(project=p, maxResults=1)),
    }.get(api)


def consent_to_enable(answers: Answers, runtime: dict | None = None) -> bool:
    """Consent to enable the missing APIs: ``apis.enable: true`` in the answers, or ``--yes`` (the core puts
    ``runtime["enable_apis"]`` / ``runtime["assume_yes"]``; the wizard's confirm does the same)."""
    rt = runtime or {}
    return bool(answers.apis.enable or rt.get("enable_apis") or rt.get("assume_yes"))


def consent_remedy(answers: Answers, hard: list[str]) -> str:
    return (f"Nothing was enabled: apis.enable is false and --yes was not given. To let the installer enable "
            f"them, run the same command with --yes (or set apis.enable: true in the answers file); or enable "
            f"them yourself: `gcloud services enable {' '.join(hard)} --project {answers.project}`.")


class ApisStep(InfraStep):
    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        enabled = await enabled_services(answers.project)
        needed = answers.apis_needed
        missing = [a for a in needed if a not in enabled]
        if not missing:
            return Observation("ready", "all required APIs are enabled", {"apis": len(needed)})
        hard = [a for a in missing if a not in LEGACY_APIS]
        consent = consent_to_enable(answers, runtime)
        if not consent and hard:
            return conflict(f"{len(hard)} required API(s) not enabled: {', '.join(hard)}",
                            consent_remedy(answers, hard))
        if not hard and not consent:
            return Observation("ready", f"legacy APIs not enabled: {', '.join(missing)}",
                               {"apis": len(needed) - len(missing), "legacy_missing": missing})
        return Observation("absent", f"{len(missing)} APIs to enable: {', '.join(missing)}",
                           {"missing": missing})

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        p = ctx.answers.project
        missing = list(observed.outputs.get("missing") or [])
        warnings: list[str] = []

        async def enable(batch: list[str]) -> None:
            legacy = len(batch) == 1 and batch[0] in LEGACY_APIS
            ctx.log(f"enabling {', '.join(batch)}")
            try:
                for attempt in range(4):
                    if len(batch) == 1:
                        op = await call("serviceusage", lambda s: s.services().enable(
                            name=f"projects/{p}/services/{batch[0]}", body={}), project=p, what=batch[0])
                    else:
                        op = await call("serviceusage", lambda s: s.services().batchEnable(
                            parent=f"projects/{p}", body={"serviceIds": batch}), project=p, what="APIs")
                    ref = operations.op_ref("serviceusage", op, p)
                    try:
                        await operations.wait(ref, ctx=ctx, what=f"enabling {', '.join(batch)}", initial=op,
                                              expected_seconds=30)
                        break
                    except InstallerError as exc:
                        # "[160009] ... with failed services": an internal error terraform retries too
                        if "160009" not in exc.message or attempt == 3:
                            raise
                        ctx.log(f"enabling {', '.join(batch)} failed ({exc.message}); trying again", "warning")
                        await asyncio.sleep(scaled(5) * (attempt + 1))
            except InstallerError as exc:
                if legacy:
                    warnings.append(batch[0])
                    ctx.log(f"could not enable legacy API {batch[0]} (not needed): {exc.message}", "warning")
                    return
                raise

        plan = batches(missing)
        normal = [b for b in plan if not (len(b) == 1 and b[0] in LEGACY_APIS)]
        legacy = [b for b in plan if b not in normal]
        for b in normal:  # one activation at a time (concurrent ones get "another activation in progress")
            await enable(b)
        legacy_task = asyncio.gather(*(enable(b) for b in legacy)) if legacy else None
        want = {a for a in missing if a not in LEGACY_APIS}
        note_enabled(sorted(want))

        async def listed() -> bool:
            return want <= await enabled_services(p)

        # (at most 3 s apart: the notice lag of operations.NOTICE_FLOOR, issue 20)
        await poll_until(listed, what="waiting for the enabled APIs to show as enabled", timeout=20 * 60, ctx=ctx,
                         max_interval=3.0)
        await self._usable(ctx, sorted(want))
        if legacy_task is not None:
            await legacy_task
        return {"apis": len(ctx.answers.apis_needed) - len(warnings), "enabled": sorted(missing),
                **({"legacy_missing": warnings} if warnings else {})}

    async def _usable(self, ctx: StepContext, services: list[str]) -> None:
        """Wait until each newly enabled API answers (enabling propagates after the operation is done)."""
        pending = [s for s in services if _probe(s, ctx.answers)]

        async def usable(svc: str) -> bool:
            api, fac = _probe(svc, ctx.answers)
            try:
                await call(api, fac, raw=True, project=ctx.answers.project, budget=30, propagation=False)
            except ApiError as err:
                return not is_service_disabled(err)  # any other answer means the API is reachable
            return True

        async def all_usable() -> bool:
            nonlocal pending
            ok = await asyncio.gather(*(usable(s) for s in pending))
            pending = [s for s, good in zip(pending, ok) if not good]
            return not pending

        await poll_until(all_usable, what="waiting for the enabled APIs to become usable", timeout=20 * 60,
                         ctx=ctx, max_interval=3.0)

    async def destroy(self, ctx: StepContext) -> None:
        return None  # APIs are left enabled: other things in the project may use them
