"""Adoption, refusal of foreign resources that do not fit, and destroy (only what is ours)."""
from __future__ import annotations

import pytest

from backends.gcp import operations
from backends.gcp.calls import call
from backends.infra.harness import infra_plan, infra_steps, run_infra
from installer.steps import StepContext
from tests.backends.test_infra import answers


async def _foreign_network_and_cluster(sandbox, workload_identity: bool = False) -> None:
    p = sandbox.project
    op = await call("compute", lambda s: s.networks().insert(project=p, body={
        "name": "demo-network", "autoCreateSubnetworks": False}))
    await operations.wait(operations.op_ref("compute", op, p), initial=op)
    body = {"cluster": {"name": "demo-kfp-cluster", "network": "default", "subnetwork": "default",
                        "nodePools": [{"name": "pool", "initialNodeCount": 1,
                                       "config": {"machineType": "e2-standard-2"}}]}}
    if workload_identity:  # its pools then run the GKE metadata server
        body["cluster"]["workloadIdentityConfig"] = {"workloadPool": f"{p}.svc.id.goog"}
    op = await call("container", lambda s: s.projects().locations().clusters().create(
        parent=f"projects/{p}/locations/us-central1-a", body=body))
    await operations.wait(operations.op_ref("container", op, p), initial=op)


@pytest.mark.sandbox_speed(0.005)
async def test_foreign_resources_adopted_or_refused_and_destroy_spares_them(sandbox, tmp_path):
    sandbox.enable()
    await _foreign_network_and_cluster(sandbox)
    a = answers(sandbox)
    fin, events = await run_infra(a, journal_root=tmp_path / "state")
    assert fin.status == "failed" and fin.failed == ["cluster"]
    fail = next(e for e in events if e.type == "StepFailed")
    assert fail.error_class == "conflict"
    assert "demo-kfp-cluster" in fail.message and "cluster.existing: demo-kfp-cluster" in fail.remedy
    outcomes = {e.step_id: e.outcome for e in events if e.type == "StepDone"}
    assert outcomes["network"] == "adopted"  # exists, fits (custom subnets), not made by us

    a.cluster.existing = "demo-kfp-cluster"
    fin, events = await run_infra(a, journal_root=tmp_path / "state")
    assert fin.status == "done", [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    outcomes = {e.step_id: e.outcome for e in events if e.type == "StepDone"}
    assert outcomes["cluster"] == "adopted"
    assert fin.outputs["cluster"]["endpoint"]

    # destroy, in reverse order: ours goes, the adopted network and cluster stay
    plan = infra_plan(a)
    steps = infra_steps(plan)
    for spec in reversed(plan.topological()):
        ctx = StepContext(answers=a, plan=plan, spec=spec, record={}, runtime={}, emit=lambda e: None,
                          save=lambda: None, outputs_of=lambda sid: {})
        await steps[spec.id].destroy(ctx)
    st = sandbox.state()
    assert [c["name"] for c in st["clusters"].values()] == ["demo-kfp-cluster"]
    assert "demo-network" in {n["name"] for n in st["networks"].values()}
    assert not any(s["name"] == "demo-subnet" for s in st["subnetworks"].values())
    assert not any(e.startswith("demo-") for e in st["service_accounts"])
    assert "demo-artifact-store" not in st["buckets"]
    insts = st.get("sql_instances") or st.get("instances") or {}
    assert not any(i.get("name") == "demo-ml-metadata" and not i.get("_gone") and i.get("state") != "PENDING_DELETE"
                   for i in insts.values())
    members = {m for b in st["iam_policies"][sandbox.project]["bindings"] for m in b["members"]}
    assert not any("demo-gke-sa" in m or "demo-kfp-sa" in m for m in members)


async def test_bucket_taken_by_someone_else_is_name_taken(sandbox, tmp_path):
    """Without preflight, the bucket step itself refuses a global name owned elsewhere (NAME_TAKEN)."""
    sandbox.enable()
    sandbox.scenario("bucket_taken", bucket="demo-artifact-store")
    a = answers(sandbox)
    plan = infra_plan(a)
    plan = type(plan)(answers=a, steps=[plan["apis"], plan["bucket"]])
    fin, events = await run_infra(a, journal_root=tmp_path / "state", plan=plan)
    fail = next(e for e in events if e.type == "StepFailed")
    assert fail.step_id == "bucket" and fail.error_class == "name-taken"
    assert "demo-artifact-store" in fail.message and "prefix" in fail.remedy
    assert not [r for r in sandbox.requests(mutating=True) if r["path"].startswith("/storage")]


@pytest.mark.sandbox_speed(0.005)
async def test_adopted_cluster_with_gke_metadata_nodes_is_refused_in_key_mode(sandbox, tmp_path):
    """Key mode needs the nodes' own identity: a cluster whose pools run the GKE metadata server is reported with
    the command that fixes it; in workload-identity mode the same cluster is adopted."""
    sandbox.enable()
    await _foreign_network_and_cluster(sandbox, workload_identity=True)
    a = answers(sandbox)
    a.cluster.existing = "demo-kfp-cluster"
    fin, events = await run_infra(a, journal_root=tmp_path / "state")
    assert fin.status == "failed" and fin.failed == ["cluster"]
    fail = next(e for e in events if e.type == "StepFailed")
    assert fail.error_class == "conflict" and "pool (GKE_METADATA)" in fail.message
    assert ("gcloud container node-pools update pool --cluster demo-kfp-cluster --location us-central1-a "
            "--workload-metadata=GCE_METADATA") in fail.remedy and "workload-identity" in fail.remedy
    a.credentials = "workload-identity"
    fin, events = await run_infra(a, journal_root=tmp_path / "state2")
    assert fin.status == "done", [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    assert {e.step_id: e.outcome for e in events if e.type == "StepDone"}["cluster"] == "adopted"
