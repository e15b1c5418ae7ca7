"""The artifact bucket and the bucket-level role the GKE node account needs on it.

The bucket is global (its name is taken across all of Google Cloud); ours carries the label
``mlops-install-env=<prefix>``; one named by ``bucket.existing`` (or found in the project) is adopted.
"""
from __future__ import annotations

from typing import Any

from installer.answers import Answers
from installer.errors import ErrorClass, InstallerError
from installer.steps import Observation, StepContext

from backends.gcp.calls import call, call_storage
from backends.gcp.errors import ApiError, classify

from .common import InfraStep, conflict, is_ours, labels


async def project_number(project: str, runtime: dict | None = None) -> str | None:
    key = f"_project_number:{project}"
    if runtime is not None and runtime.get(key):
        return runtime[key]
    try:
        p = await call("cloudresourcemanager", lambda s: s.projects().get(projectId=project), raw=True)
    except ApiError:
        return None
    num = str(p.get("projectNumber") or "") or None
    if runtime is not None and num:
        runtime[key] = num
    return num


def _taken(obs: Observation) -> Observation:
    obs.outputs["name_taken"] = True
    return obs


class BucketStep(InfraStep):
    async def look(self, ctx: StepContext) -> Observation:
        obs = await self.inspect(ctx.answers, ctx.runtime)
        if obs.status == "conflict" and obs.outputs.get("name_taken"):
            raise InstallerError(obs.detail, error_class=ErrorClass.NAME_TAKEN, remedy=obs.remedy,
                                 details={"name": ctx.names.bucket})
        return obs

    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        a, name = answers, answers.names.bucket
        try:
            b = await call_storage(a.project, lambda c: c.get_bucket(name, retry=None), raw=True)
        except ApiError as err:
            if err.not_found:
                if a.bucket.existing:
                    return conflict(f"bucket {name} (bucket.existing) does not exist",
                                    "Check bucket.existing, or remove it to create a new bucket.")
                return Observation("absent", f"bucket gs://{name} does not exist")
            if err.http == 403:
                return _taken(conflict(f"bucket name {name} is taken by someone else (bucket names are global)",
                                       "Choose another name prefix, or set bucket.existing to a bucket you own."))
            raise classify(err, what=f"bucket {name}", project=a.project) from err
        out = {"bucket": name, "url": f"gs://{name}", "location": (b.location or "").lower()}
        if is_ours(a, b.labels):
            return Observation("ready", f"bucket gs://{name} exists", out)
        mine = a.bucket.existing == name
        if not mine:
            num = await project_number(a.project, runtime)
            mine = bool(num) and str(b.project_number) == num
            if not mine:
                return _taken(conflict(f"bucket name {name} is taken by a bucket in another project "
                                       "(bucket names are global)",
                                       "Choose another name prefix, or set bucket.existing to a bucket you own."))
            want = (a.bucket.location or a.region).lower()
            if (b.location or "").lower() != want:
                return conflict(f"bucket gs://{name} exists in your project in {b.location}, not {want}, and was "
                                "not made by mlops-install",
                                f"Set bucket.existing: {name} to adopt it anyway, or choose another prefix.")
        return Observation("ready", f"bucket gs://{name} exists (not made by mlops-install)", out, adopted=True)

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        a, name = ctx.answers, ctx.names.bucket
        location = a.bucket.location or a.region

        def create(client):
            bucket = client.bucket(name)
            bucket.labels = labels(a)
            bucket.iam_configuration.uniform_bucket_level_access_enabled = True
            return client.create_bucket(bucket, project=a.project, location=location, retry=None)
        try:
            await call_storage(a.project, create, raw=True)
        except ApiError as err:
            if not (err.http == 409 or err.already_exists):
                raise classify(err, what=f"bucket {name}", project=a.project) from err
            obs = await self.inspect(a, ctx.runtime)  # "you already own it" (an earlier run) or taken
            if obs.status != "ready":
                raise InstallerError(f"bucket name {name} is taken: {err.message}", error_class=ErrorClass.NAME_TAKEN,
                                     remedy=obs.remedy or "Choose another name prefix.") from err
            return obs.outputs
        return {"bucket": name, "url": f"gs://{name}", "location": location.lower()}

    async def destroy(self, ctx: StepContext) -> None:
        a, name = ctx.answers, ctx.names.bucket
        obs = await self.inspect(a, ctx.runtime)
        if obs.status != "ready" or obs.adopted:
            return
        try:
            await call_storage(a.project, lambda c: c.bucket(name).delete(force=True, retry=None), raw=True)
        except ApiError as err:
            if not err.not_found:
                raise classify(err, what=f"bucket {name}", project=a.project) from err


class BucketRolesStep(InfraStep):
    """A bucket-level role for the GKE node account that holds ``storage.buckets.get`` (issue 10, item 2)."""

    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        return Observation("ready", "not implemented yet")

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        return {}

    async def destroy(self, ctx: StepContext) -> None:
        return None
