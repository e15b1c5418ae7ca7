"""Destroy at the speed of its graph (issue 13, item 6): a real infrastructure install into a sandbox, then
``installer.destroy.destroy`` through the engine: each step's destroy starts once every step depending on it is
destroyed, the cluster and the SQL instance go at the same time (the sandbox's request log and the events say so), a
failed deletion keeps only what must outlive it and a second destroy goes on from there, as after a Ctrl-C. Real
HTTP, real clients, the real engine and journal; the waits are on events, never fixed sleeps."""
from __future__ import annotations

import asyncio
import re


from backends.infra.harness import infra_plan, infra_steps, run_infra
from installer.answers import Answers
from installer.destroy import destroy
from installer.errors import EXIT_INSTALL_FAILED, EXIT_INTERRUPTED, EXIT_OK
from installer.journal import Journal

CLUSTER_PATH = r"/clusters/demo-kfp-cluster$"
SQL_PATH = r"/instances/demo-ml-metadata$"


def _answers(sandbox) -> Answers:
    return Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix="demo")


async def _installed(sandbox) -> Answers:
    sandbox.enable()  # the APIs at once: the install is not the point here
    a = _answers(sandbox)
    fin, events = await run_infra(a)
    assert fin.status == "done", [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    return a


async def _destroy(a: Answers, events: list) -> object:
    plan = infra_plan(a)
    return await destroy(a, events.append, plan=plan, steps=infra_steps(plan))


def _deletes(sandbox, rx: str) -> list[dict]:
    return [r for r in sandbox.requests(mutating=True) if r["method"] == "DELETE" and re.search(rx, r["path"])]


def _ours_left(sandbox) -> dict[str, list[str]]:
    st = sandbox.state()
    return {
        "clusters": [c["name"] for c in st["clusters"].values() if c["name"] == "demo-kfp-cluster"],
        "networks": [n["name"] for n in st["networks"].values() if n["name"] == "demo-network"],
        "subnets": [s["name"] for s in st["subnetworks"].values() if s["name"] == "demo-subnet"],
        "service accounts": [e for e in st["service_accounts"] if e.startswith("demo-")],
        "buckets": [b for b in st["buckets"] if b == "demo-artifact-store"],
        "sql": [i["name"] for i in (st.get("sql_instances") or st.get("instances") or {}).values()
                if i.get("name") == "demo-ml-metadata" and not i.get("_gone")
                and i.get("state") != "PENDING_DELETE"],
    }


def _assert_reverse_order(a: Answers, events: list) -> None:
    """No step's destroy started before every step depending on it was destroyed (in this run, or by an earlier
    one: the journal says so)."""
    started = {e.step_id: e.ts for e in events if e.type == "StepStarted"}
    done = {e.step_id: e.ts for e in events if e.type == "StepDone"}
    before = {e.step_id for e in events if e.type == "StepDone"}
    status = {sid: rec.get("status") for sid, rec in Journal(a.env_id).data["steps"].items()}
    for spec in infra_plan(a):
        for d in spec.deps:
            if d not in started:
                continue
            if spec.id in done:
                assert done[spec.id] <= started[d], (d, "started before", spec.id, "was destroyed")
            else:
                assert spec.id not in before and status.get(spec.id) == "destroyed", (d, spec.id)


async def test_destroy_runs_cluster_and_sql_together_in_reverse_dependency_order(sandbox):
    a = await _installed(sandbox)
    sandbox.clear_requests()
    events: list = []
    fin = await _destroy(a, events)
    assert fin.status == "destroyed" and fin.exit_code == EXIT_OK, \
        [(e.step_id, e.message) for e in events if e.type == "StepFailed"]

    # the request log: the SQL instance's DELETE went out while the cluster's deletion was under way, and the
    # other way round (each step's StepDone comes once its deletion operation is done)
    done = {e.step_id: e.ts for e in events if e.type == "StepDone"}
    (cluster_del,), (sql_del,) = _deletes(sandbox, CLUSTER_PATH), _deletes(sandbox, SQL_PATH)
    assert sql_del["time"] < done["cluster"] and cluster_del["time"] < done["sql-instance"], \
        (cluster_del["time"], sql_del["time"], done["cluster"], done["sql-instance"])
    # and the subnet went only after the cluster that used it, the network after its subnet
    (subnet_del,) = _deletes(sandbox, r"/subnetworks/demo-subnet$")
    (network_del,) = _deletes(sandbox, r"/networks/demo-network$")
    assert subnet_del["time"] >= done["cluster"] and network_del["time"] >= done["subnet"]
    _assert_reverse_order(a, events)

    # the same events as an install: one RunStarted, a StepStarted/StepDone per removed step, the kept APIs done
    assert [e.type for e in events].count("RunStarted") == 1 and events[-1].type == "RunFinished"
    outcomes = {e.step_id: e.outcome for e in events if e.type == "StepDone"}
    assert outcomes["apis"] == "kept (the APIs stay enabled)" and "apis" not in {
        e.step_id for e in events if e.type == "StepStarted"}
    assert outcomes["cluster"] == outcomes["sql-instance"] == "destroyed"

    j = Journal(a.env_id)
    assert j.data["status"] == "destroyed" and j.data["runs"][-1]["action"] == "destroy"
    assert {sid: rec["status"] for sid, rec in j.data["steps"].items()} == {s.id: "destroyed" for s in infra_plan(a)}
    assert not any(_ours_left(sandbox).values()), _ours_left(sandbox)
    enabled = {s for s, rec in sandbox.state()["services"][sandbox.project].items() if rec["state"] == "ENABLED"}
    assert {"container.googleapis.com", "sqladmin.googleapis.com", "compute.googleapis.com"} <= enabled


async def test_a_failed_deletion_keeps_only_what_waits_for_it_and_a_second_destroy_goes_on(sandbox):
    a = await _installed(sandbox)
    sandbox.fault(op="container.delete", message="Internal error while deleting the cluster (injected).")
    sandbox.clear_requests()
    events: list = []
    fin = await _destroy(a, events)
    assert fin.status == "failed" and fin.exit_code == EXIT_INSTALL_FAILED and fin.failed == ["cluster"]
    failed = next(e for e in events if e.type == "StepFailed")
    assert failed.step_id == "cluster" and "injected" in failed.message
    # what the cluster stands on stays (its subnet and network, its node account and that account's roles), and
    # the APIs step after them; everything else went, the SQL instance while the cluster's deletion ran
    skipped = {e.step_id: e.reason for e in events if e.type == "StepSkipped"}
    assert set(skipped) == {"subnet", "network", "gke-sa-roles", "gke-sa", "apis"}, skipped
    assert skipped["subnet"].startswith("kept: cluster depends on it")
    destroyed = {e.step_id for e in events if e.type == "StepDone"}
    assert destroyed == {"sql-user", "sql-instance", "bucket-roles", "bucket", "kfp-sa-roles", "kfp-sa"}
    assert _deletes(sandbox, r"/subnetworks/|/networks/") == []  # nothing that waits for the cluster was tried
    _assert_reverse_order(a, events)
    left = _ours_left(sandbox)
    assert left["clusters"] and left["subnets"] and left["networks"] and not left["sql"] and not left["buckets"]
    assert left["service accounts"] == [a.names.gke_sa_email], left

    j = Journal(a.env_id)
    st = {sid: rec["status"] for sid, rec in j.data["steps"].items()}
    assert j.data["status"] == "failed" and st["cluster"] == "failed" and "injected" in \
        j.data["steps"]["cluster"]["error"]["message"]
    assert st["sql-instance"] == st["bucket"] == st["kfp-sa"] == "destroyed"
    assert st["subnet"] == st["network"] == st["gke-sa"] == st["apis"] == "done"  # as the install left them

    # the same command again goes on where it stopped: only what is left
    sandbox.clear_requests()
    events = []
    fin = await _destroy(a, events)
    assert fin.status == "destroyed" and fin.exit_code == EXIT_OK, \
        [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    assert next(e for e in events if e.type == "RunStarted").resumed
    assert {e.step_id for e in events if e.type == "StepStarted"} == {"cluster", "subnet", "network", "gke-sa-roles",
                                                                      "gke-sa"}
    assert _deletes(sandbox, SQL_PATH) == []
    _assert_reverse_order(a, events)
    assert Journal(a.env_id).data["status"] == "destroyed"
    assert not any(_ours_left(sandbox).values()), _ours_left(sandbox)


async def _interrupted_during_cluster_deletion(sandbox) -> Answers:
    """An install, then a destroy cancelled (Ctrl-C: the command line cancels the run) once the cluster's deletion
    operation is under way; the journal says where it stopped."""
    a = await _installed(sandbox)
    events: list = []
    task: asyncio.Task | None = None

    def emit(e) -> None:
        events.append(e)
        if e.type == "StepWaiting" and e.step_id == "cluster" and task is not None:
            task.cancel()

    plan = infra_plan(a)
    task = asyncio.create_task(destroy(a, emit, plan=plan, steps=infra_steps(plan)))
    fin = await asyncio.wait_for(task, 60)
    assert fin.status == "interrupted" and fin.exit_code == EXIT_INTERRUPTED
    assert [e.status for e in events if e.type == "RunFinished"] == ["interrupted"]
    j = Journal(a.env_id)
    assert j.data["status"] == "interrupted" and j.data["steps"]["cluster"]["status"] == "interrupted"
    assert j.data["steps"]["subnet"]["status"] == "done"  # not begun: it waits for the cluster
    assert _deletes(sandbox, r"/subnetworks/") == []
    return a


async def _until(check, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.05)


async def test_an_interrupted_destroy_is_saved_and_the_next_one_completes(sandbox):
    a = await _interrupted_during_cluster_deletion(sandbox)
    # the deletion that was sent goes on at Google; once it is through, the same command again finishes the rest
    await _until(lambda: not _ours_left(sandbox)["clusters"])
    events: list = []
    fin = await _destroy(a, events)
    assert fin.status == "destroyed", [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    assert next(e for e in events if e.type == "RunStarted").resumed
    _assert_reverse_order(a, events)
    assert Journal(a.env_id).data["status"] == "destroyed"
    assert not any(_ours_left(sandbox).values()), _ours_left(sandbox)


async def test_a_destroy_resumed_while_the_cluster_deletion_still_runs_completes(sandbox):
    a = await _interrupted_during_cluster_deletion(sandbox)
    events: list = []
    fin = await _destroy(a, events)
    assert fin.status == "destroyed", [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
