"""Changed settings of what exists, on a re-run (issue 13 item 5): node count -> node pool resize, SQL tier and a
larger disk -> patch, with consent (--yes); machine type and zone refused before anything is made."""
from __future__ import annotations

import copy

import pytest

from backends.infra.harness import infra_plan, infra_steps, run_infra
from installer.answers import Answers
from installer.errors import PreflightFailed
from installer.run import describe_plan
from secrets_kfp_support import kfp_fixture


def zonal(sandbox) -> Answers:
    a = Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix="chg")
    a.kfp.manifests = str(kfp_fixture())  # a local folder: no kustomize, no network
    return a


def mutations(sandbox) -> list[tuple[str, str]]:
    return [(r["method"], r["path"].rsplit("/projects/", 1)[-1]) for r in sandbox.requests(mutating=True)]


@pytest.mark.sandbox_speed(0.005)
async def test_changed_settings_are_applied_with_consent_and_refused_when_they_cannot(sandbox, tmp_path):
    sandbox.enable()
    a = zonal(sandbox)
    root = tmp_path / "state"
    fin, _ = await run_infra(a, journal_root=root, preflight=True)
    assert fin.exit_code == 0

    b = copy.deepcopy(a)
    b.cluster.node_count = 2
    b.sql.tier = "db-n1-standard-4"
    b.sql.disk_size_gb = 30
    # plan: update rows with the field, old and new value
    rows = {r.step_id: r for r in await describe_plan(b, journal_root=root, steps=infra_steps(infra_plan(b)))}
    assert rows["cluster"].action == "update"
    assert [(c["field"], c["old"], c["new"]) for c in rows["cluster"].changes] == [("cluster.node_count", 3, 2)]
    assert rows["sql-instance"].action == "update"
    assert {(c["field"], c["old"], c["new"]) for c in rows["sql-instance"].changes} == {
        ("sql.tier", "db-n1-standard-2", "db-n1-standard-4"), ("sql.disk_size_gb", 20, 30)}

    # without consent: exit 3, nothing changed, the message says how
    sandbox.clear_requests()
    with pytest.raises(PreflightFailed) as ei:
        await run_infra(b, journal_root=root, preflight=True, runtime={"apply_changes": False})
    c = ei.value.report.get("changes")
    assert c.status == "fail" and "cluster.node_count 3 -> 2" in c.detail and "--yes" in c.fix, c
    assert mutations(sandbox) == []

    # with --yes: resized and patched, nothing else
    fin, events = await run_infra(b, journal_root=root, preflight=True, assume_yes=True)
    assert fin.exit_code == 0, [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    outcomes = {e.step_id: e.outcome for e in events if e.type == "StepDone"}
    assert outcomes["cluster"] == "updated" and outcomes["sql-instance"] == "updated"
    muts = mutations(sandbox)
    assert any(m == "POST" and p.endswith("nodePools/default-pool:setSize") for m, p in muts), muts
    assert any(m == "PATCH" and p.endswith("instances/chg-ml-metadata") for m, p in muts), muts
    assert not any(p.endswith("/clusters") or p.endswith("/instances") for _, p in muts)  # no create
    state = sandbox.state()
    cluster = next(x for x in state["clusters"].values() if x["name"] == "chg-kfp-cluster")
    assert cluster["nodePools"][0]["initialNodeCount"] == 2
    inst = next(x for x in state["sql_instances"].values() if x["name"] == "chg-ml-metadata")
    assert inst["settings"]["tier"] == "db-n1-standard-4" and inst["settings"]["dataDiskSizeGb"] == "30"

    # a smaller disk is no change (storage only grows); the same answers again: nothing
    b.sql.disk_size_gb = 10
    sandbox.clear_requests()
    fin, _ = await run_infra(b, journal_root=root, preflight=True, assume_yes=True)
    assert fin.exit_code == 0 and mutations(sandbox) == []

    # what cannot change in place is refused before anything is made, with the way out
    for field, value, needle in (("machine_type", "e2-standard-8", "cluster.machine_type e2-standard-4 -> "
                                  "e2-standard-8"), ("zone", "us-central1-b", "zone us-central1-a -> us-central1-b")):
        d = copy.deepcopy(b)
        if field == "zone":
            d.zone = value
        else:
            d.cluster.machine_type = value
        sandbox.clear_requests()
        with pytest.raises(PreflightFailed) as ei:
            await run_infra(d, journal_root=root, preflight=True, assume_yes=True)
        c = ei.value.report.get("changes")
        assert c.status == "fail" and needle in c.detail and "cannot change in place" in c.detail, c
        assert "mlops-install destroy" in c.fix and "new prefix" in c.fix
        assert mutations(sandbox) == []
