"""bucket-roles (issue 10, item 2): the GKE node account gets roles/storage.admin on the artifact bucket (it holds
storage.buckets.get, which KFP's API server needs at start-up), on an adopted bucket too; a re-run makes no mutating
request; destroy takes out only that member from that role. Real HTTP, real clients, the real engine."""
from __future__ import annotations

from backends.infra.bucket import BUCKET_ROLE
from backends.infra.harness import infra_steps, run_infra
from installer.plan import Plan, build_plan
from installer.steps import StepContext
from tests.backends.test_infra import answers

SUB = ("apis", "gke-sa", "bucket", "bucket-roles")
OTHER = "user:someone-else@example.com"


def _plan(a) -> Plan:
    full = build_plan(a)
    return Plan(a, [full[s] for s in SUB])


def _bindings(sandbox, bucket: str) -> dict[str, set[str]]:
    pol = sandbox.state()["bucket_iam"][bucket]
    return {b["role"]: set(b["members"]) for b in pol["bindings"]}


async def _destroy(a, plan: Plan, step_id: str) -> None:
    spec = plan[step_id]
    ctx = StepContext(answers=a, plan=plan, spec=spec, record={}, runtime={}, emit=lambda e: None,
                      save=lambda: None, outputs_of=lambda sid: {})
    await infra_steps(plan)[step_id].destroy(ctx)


async def test_node_account_gets_storage_admin_on_the_bucket_and_destroy_takes_only_it(sandbox, tmp_path):
    sandbox.enable()
    a = answers(sandbox)
    member = f"serviceAccount:{a.names.gke_sa_email}"
    plan = _plan(a)
    # one stale-etag answer (another writer got there first): the read-modify-write starts again
    sandbox.fault(r"/storage/v1/b/demo-artifact-store/iam$", 412, method="PUT", times=1)
    fin, events = await run_infra(a, journal_root=tmp_path / "state", plan=plan)
    assert fin.status == "done", [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    assert member in _bindings(sandbox, "demo-artifact-store")[BUCKET_ROLE]
    puts = [r["status"] for r in sandbox.requests(mutating=True) if r["path"].endswith("/iam")]
    assert puts[0] == 412 and puts[-1] == 200

    # someone else's member in the same role, added after the install
    from backends.gcp.calls import call
    pol = await call("storage", lambda s: s.buckets().getIamPolicy(bucket="demo-artifact-store"))
    next(b for b in pol["bindings"] if b["role"] == BUCKET_ROLE)["members"].append(OTHER)
    await call("storage", lambda s: s.buckets().setIamPolicy(bucket="demo-artifact-store", body=pol))

    sandbox.clear_requests()
    fin, events = await run_infra(a, journal_root=tmp_path / "state", plan=plan)
    assert fin.status == "done"
    assert sandbox.requests(mutating=True) == []  # look: ready, no write

    await _destroy(a, plan, "bucket-roles")
    after = _bindings(sandbox, "demo-artifact-store")
    assert member not in after.get(BUCKET_ROLE, set())
    assert OTHER in after[BUCKET_ROLE]  # only our member left that role
    assert "roles/storage.legacyBucketOwner" in after  # the bucket's own bindings stay
    sandbox.clear_requests()
    await _destroy(a, plan, "bucket-roles")  # again: nothing to remove, no write
    assert sandbox.requests(mutating=True) == []


async def test_adopted_bucket_gets_the_binding_and_keeps_everything_else(sandbox, tmp_path):
    sandbox.enable()
    from backends.gcp.calls import call_storage
    p = sandbox.project

    def make(client):
        b = client.bucket("team-artifacts")
        b.iam_configuration.uniform_bucket_level_access_enabled = True
        return client.create_bucket(b, project=p, location="us-central1")
    await call_storage(p, make)
    a = answers(sandbox)
    a.bucket.existing = "team-artifacts"
    member = f"serviceAccount:{a.names.gke_sa_email}"
    plan = _plan(a)
    fin, events = await run_infra(a, journal_root=tmp_path / "state", plan=plan)
    assert fin.status == "done", [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    outcomes = {e.step_id: e.outcome for e in events if e.type == "StepDone"}
    assert outcomes["bucket"] == "adopted"
    before = _bindings(sandbox, "team-artifacts")
    assert member in before[BUCKET_ROLE]

    await _destroy(a, plan, "bucket-roles")
    await _destroy(a, plan, "bucket")
    st = sandbox.state()
    assert "team-artifacts" in st["buckets"]  # adopted: stays
    after = _bindings(sandbox, "team-artifacts")
    assert member not in after.get(BUCKET_ROLE, set())
    assert {r: m for r, m in before.items() if r != BUCKET_ROLE} == {r: m for r, m in after.items() if r != BUCKET_ROLE}
