"""The artifact bucket and the bucket-level role the GKE node account needs on it.

The bucket is global (its name is taken across all of Google Cloud); ours carries the label
``mlops-install-env=<prefix>``; one named by ``bucket.existing`` (or found in the project) is adopted.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from installer.answers import Answers
from installer.errors import ErrorClass, InstallerError
from installer.steps import Observation, StepContext

from backends.gcp.calls import call, call_storage
from backends.gcp.errors import ApiError, classify, note_project_number
from backends.gcp.policy import add_member, has_member, read_modify_write, remove_member

from .common import InfraStep, Outputs, conflict, is_ours, labels


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
    note_project_number(project, num)
    return num


@dataclass(frozen=True)
class BucketOutputs(Outputs):
    """What the ``bucket`` step records: the KFP steps read ``BucketOutputs.of(ctx.outputs_of("bucket")).bucket``."""
    bucket: str = ""  # the name
    url: str = ""  # gs://NAME
    location: str = ""  # lower case

    @classmethod
    def made(cls, name: str, location: str) -> dict[str, Any]:
        return cls(bucket=name, url=f"gs://{name}", location=location.lower()).to_dict()


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
        out = BucketOutputs.made(name, b.location or "")
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
        return BucketOutputs.made(name, location)

    async def destroy(self, ctx: StepContext) -> None:
        a, name = ctx.answers, ctx.names.bucket
        obs = await self.inspect(a, ctx.runtime)
        if obs.status != "ready" or obs.adopted:
            return
        # google-cloud-storage's Bucket.delete(force=True) "will cowardly refuse to delete the objects (or the
        # bucket)" when there are more than 256 (_MAX_OBJECTS_FOR_ITERATION; ValueError "Refusing to delete bucket
        # with more than 256 objects", google/cloud/storage/bucket.py), and buckets.delete "Deletes an empty bucket"
        # [disc: storage.v1]: the objects go first, a page at a time.
        # An object written while the bucket is emptied (the remote journal's last write in flight when this destroy
        # began, installer.remote) makes the delete a 409 "not empty": empty it again, a few times.
        for attempt in range(3):
            deleted = await empty_bucket(a.project, name, ctx)
            if deleted:
                ctx.log(f"deleted {deleted} object(s) of gs://{name}")
            try:
                await call_storage(a.project, lambda c: c.bucket(name).delete(retry=None), raw=True)
                return
            except ApiError as err:
                if err.not_found:
                    return
                if not (err.http == 409 and "not empty" in err.message and attempt < 2):
                    raise classify(err, what=f"bucket {name}", project=a.project) from err


PAGE = 1000  # objects.list maxResults: at most 1000 [disc: storage.v1 objects.list]
PARALLEL = 16


async def empty_bucket(project: str, name: str, ctx: StepContext | None = None) -> int:
    """Delete every object of bucket ``name``, a listed page at a time; each page's deletes run in parallel in worker
    threads (``call_storage``: off the event loop, each thread with its own client). Objects already gone (404)
    count as deleted. Returns how many were deleted."""
    total = 0
    sem = asyncio.Semaphore(PARALLEL)

    async def delete(blob_name: str) -> int:
        async with sem:
            try:
                await call_storage(project, lambda c: c.bucket(name).blob(blob_name).delete(retry=None), raw=True)
            except ApiError as err:
                if err.not_found:
                    return 0
                raise classify(err, what=f"object gs://{name}/{blob_name}", project=project) from err
            return 1

    while True:
        # always the first page: what was deleted is gone from the listing, so no page token is needed, and an
        # object written meanwhile is not missed
        page = await call_storage(project, lambda c: [b.name for b in c.list_blobs(
            name, max_results=PAGE, page_size=PAGE, retry=None)], raw=True)
        if not page:
            return total
        total += sum(await asyncio.gather(*(delete(n) for n in page)))
        if ctx is not None:
            ctx.progress(f"deleted {total} object(s) of gs://{name}")


# Storage Admin on the bucket: it holds storage.buckets.get, which KFP's API server needs (BucketExists through the
# MinIO GCS gateway at start-up, backend/src/apiserver/client_manager/client_manager.go @2.14.4); Storage Object
# Admin/Viewer do not ("Storage Admin (roles/storage.admin) ... storage.buckets.*", "Lowest-level resources where you
# can grant this role: Bucket": https://cloud.google.com/storage/docs/access-control/iam-roles). Upstream's
# gcp-workload-identity-setup.sh grants the same role on the bucket.
BUCKET_ROLE = "roles/storage.admin"


def _node_member(answers: Answers) -> str:
    return f"serviceAccount:{answers.names.gke_sa_email}"


async def bucket_policy(name: str, project: str) -> dict:
    """The bucket's IAM policy (storage.v1 buckets.getIamPolicy, ``GET b/{bucket}/iam``)."""
    return await call("storage", lambda s: s.buckets().getIamPolicy(bucket=name), raw=True, project=project)


class BucketRolesStep(InfraStep):
    """A bucket-level role for the GKE node account that holds ``storage.buckets.get`` (issue 10, item 2), on an
    adopted bucket too; destroy takes out only that member from that role."""

    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        name, member = answers.names.bucket, _node_member(answers)
        out = {"bucket": name, "member": member, "role": BUCKET_ROLE}
        try:
            policy = await bucket_policy(name, answers.project)
        except ApiError as err:
            if err.not_found:
                return Observation("absent", f"bucket gs://{name} does not exist yet", out)
            raise classify(err, what=f"IAM policy of bucket {name}", project=answers.project) from err
        if has_member(policy, BUCKET_ROLE, member):
            return Observation("ready", f"{member} holds {BUCKET_ROLE} on gs://{name}", out)
        return Observation("absent", f"{member} lacks {BUCKET_ROLE} on gs://{name}", out)

    async def _modify(self, ctx: StepContext, edit) -> bool:
        a, name = ctx.answers, ctx.names.bucket

        async def write(policy: dict) -> Any:  # carries the etag it was read with
            return await call("storage", lambda s: s.buckets().setIamPolicy(bucket=name, body=policy), raw=True,
                              project=a.project)
        return await read_modify_write(lambda: bucket_policy(name, a.project), write, edit,
                                       what=f"{BUCKET_ROLE} on gs://{name}", project=a.project,
                                       on_wait=lambda m: ctx.progress(m))

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        member = _node_member(ctx.answers)
        await self._modify(ctx, lambda pol: add_member(pol, member, [BUCKET_ROLE]))
        return {"bucket": ctx.names.bucket, "member": member, "role": BUCKET_ROLE}

    async def destroy(self, ctx: StepContext) -> None:
        member = _node_member(ctx.answers)
        try:
            await self._modify(ctx, lambda pol: remove_member(pol, member, [BUCKET_ROLE]))
        except ApiError as err:  # the read
            if not err.not_found:  # the bucket is gone: so is its policy
                raise classify(err, what=f"IAM policy of bucket {ctx.names.bucket}", project=ctx.answers.project)
        except InstallerError as exc:  # the write
            if exc.details.get("http") != 404:
                raise
