"""Destroy of an artifact bucket holding more than 256 objects (issue 10, item 9): google-cloud-storage refuses
``Bucket.delete(force=True)`` above 256, so the bucket step deletes the objects a page at a time first. Also the
sandbox's objects: multipart upload as google-cloud-storage sends it, list in pages, and Google's 409 for deleting a
bucket that still has objects. Real HTTP, real clients."""
from __future__ import annotations

import asyncio

import pytest

from backends.gcp.calls import call_storage
from backends.gcp.errors import ApiError
from backends.infra.harness import infra_steps, run_infra
from installer.plan import Plan, build_plan
from installer.steps import StepContext
from tests.backends.test_infra import answers

N = 300


async def _upload(project: str, bucket: str, n: int) -> None:
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            await call_storage(project, lambda c: c.bucket(bucket).blob(f"v2/artifacts/run-{i:04d}.json")
                               .upload_from_string(b'{"i": %d}' % i, content_type="application/json"))
    await asyncio.gather(*(one(i) for i in range(n)))


async def test_destroy_deletes_300_objects_then_the_bucket(sandbox, tmp_path):
    sandbox.enable()
    a = answers(sandbox)
    full = build_plan(a)
    plan = Plan(a, [full["apis"], full["bucket"]])
    fin, _ = await run_infra(a, journal_root=tmp_path / "state", plan=plan)
    assert fin.status == "done"
    p, name = sandbox.project, a.names.bucket
    await _upload(p, name, N)

    # the objects are there, listed in pages (maxResults + pageToken), content intact
    pages = await call_storage(p, lambda c: [len(list(pg)) for pg in c.list_blobs(name, page_size=128).pages])
    assert pages == [128, 128, N - 256]
    body = await call_storage(p, lambda c: c.bucket(name).blob("v2/artifacts/run-0007.json").download_as_bytes())
    assert body == b'{"i": 7}'
    # what the step must not rely on: the client refuses force=True above 256 objects
    with pytest.raises(ValueError, match="more than 256"):
        await call_storage(p, lambda c: c.bucket(name).delete(force=True, retry=None))
    # and Google refuses to delete a bucket that is not empty
    with pytest.raises(ApiError) as ei:
        await call_storage(p, lambda c: c.bucket(name).delete(retry=None), raw=True)
    assert ei.value.http == 409 and "not empty" in ei.value.message

    spec = plan["bucket"]
    ctx = StepContext(answers=a, plan=plan, spec=spec, record={}, runtime={}, emit=lambda e: None,
                      save=lambda: None, outputs_of=lambda sid: {})
    await infra_steps(plan)["bucket"].destroy(ctx)
    st = sandbox.state()
    assert name not in st["buckets"]
    assert not (st.get("objects") or {}).get(name)
    deletes = [r for r in sandbox.requests(mutating=True) if r["method"] == "DELETE" and "/o/" in r["path"]]
    assert len([r for r in deletes if r["status"] == 204]) == N
    await infra_steps(plan)["bucket"].destroy(ctx)  # gone already: nothing to do, no error
