"""Issue 20: KFP rolls out while the Cloud SQL instance is being made. A full install on the sandbox (its latency
profile: the cluster is up minutes before the SQL instance) applies KFP and the Database secret before the SQL
instance is ready, holds the components that need MySQL (and their clients) at 0 replicas, and starts them once the
SQL user exists, in stages: nothing crash-loops on the way (the sandbox's pod lifecycle: no BackOff event, no
restart, no failed start in its runtime log)."""
from __future__ import annotations

from backends.kfp.db_stages import DB_STAGES, HELD

from secrets_kfp_support import Isolated, answers, failures, install, kube, secret_data, step_events


async def test_kfp_overlaps_sql_and_nothing_crash_loops(sandbox, tmp_path, monkeypatch):
    iso = Isolated(tmp_path / "run", monkeypatch)
    a = answers(sandbox.project, "workload-identity")
    fin = await install(a, iso)
    assert fin.status == "done", failures(iso)

    done = {e.step_id: e.ts for e in step_events(iso, "StepDone")}
    started = {e.step_id: e.ts for e in step_events(iso, "StepStarted")}
    # the Secret and KFP's objects did not wait for the SQL instance; the held-back components did
    assert done["mysql-secret"] < done["sql-instance"] and done["kfp-deploy"] < done["sql-instance"]
    assert started["kfp-db-components"] >= done["sql-user"]
    held_logs = [e.message for e in step_events(iso, "StepLog", "kfp-deploy") if "wait for the database" in e.message]
    assert held_logs and all(n in held_logs[0] for n in HELD)

    # the pods of the held-back components started only once the SQL user existed, stage after stage
    runtime = [r for r in sandbox.requests() if r.get("api") == "runtime" and r.get("namespace") == a.kfp.namespace]
    first = {}
    for r in runtime:
        dep = r["pod"].rsplit("-", 2)[0]
        first.setdefault(dep, r["time"])
    for name in HELD:
        assert first[name] >= done["sql-user"], name
    for (_, earlier), (_, later) in zip(DB_STAGES, DB_STAGES[1:]):
        assert max(first[n] for n in earlier) < min(first[n] for n in later)

    # no CrashLoopBackOff on the way: no failed start, no BackOff event, no restart
    assert [f"{r['pod']}/{r['container']}: {r['rule']}: {r['message']}" for r in runtime
            if not r.get("ok") and r["rule"] != "kubelet.FailedMount"] == []
    client = await kube(a)
    backoffs = [f"{e['involvedObject']['name']}: {e['message']}" for e in client.list("v1", "Event", a.kfp.namespace)
                if e.get("reason") == "BackOff"]
    assert backoffs == []
    restarts = {p["metadata"]["name"]: cs["restartCount"] for p in client.list("v1", "Pod", a.kfp.namespace)
                for cs in (p.get("status") or {}).get("containerStatuses") or [] if cs.get("restartCount")}
    assert restarts == {}
    # every held-back Deployment runs its rendered replicas, and the Secret holds the password the user was given
    deps = {d["metadata"]["name"]: d for d in client.list("apps/v1", "Deployment", a.kfp.namespace)}
    assert all(deps[n]["spec"]["replicas"] == 1 for n in HELD)
    assert secret_data(client, a.kfp.namespace, "mysql-secret")["password"] == iso.runtime["sql_password"]

    # a re-run changes nothing (the released components stay released)
    before = len(sandbox.requests(mutating=True))
    fin2 = await install(a, iso)
    assert fin2.status == "done", failures(iso)
    # (the remote journal's own writes to the bucket aside)
    assert [f"{r['method']} {r['path']}" for r in sandbox.requests(mutating=True)[before:]
            if not (r["path"].startswith("/upload/storage/") or "/o/" in r["path"])] == []


async def test_resume_sets_one_new_password_on_the_user_and_in_the_secret(sandbox, tmp_path, monkeypatch):
    """The Secret was written by a run that stopped before the SQL user was made (its password lived only in that
    run's memory): the next run, with nothing in memory, gives the user a new password and the Secret the same."""
    from installer.plan import Plan, build_plan
    from sandbox.apis.sqladmin import password_matches

    iso = Isolated(tmp_path / "run", monkeypatch)
    a = answers(sandbox.project, "workload-identity", manifests="upstream")
    full = build_plan(a)
    first = Plan(a, [s for s in full if s.id not in ("sql-user",) and s.group != "kfp"])
    fin = await install_plan(a, iso, first)
    assert fin.status == "done", failures(iso)
    client = await kube(a)
    old = secret_data(client, a.kfp.namespace, "mysql-secret")["password"]
    assert old == iso.runtime["sql_password"]

    iso.runtime = {}  # a new process
    second = Plan(a, [s for s in full if s.group != "kfp"])
    fin = await install_plan(a, iso, second)
    assert fin.status == "done", failures(iso)
    new = secret_data(client, a.kfp.namespace, "mysql-secret")["password"]
    assert new == iso.runtime["sql_password"] and new != old
    users = [u for u in sandbox.state()["sql_users"].values() if u.get("name") == a.names.db_user]
    assert len(users) == 1 and password_matches(users[0], new)


async def install_plan(a, iso, plan):
    from installer.logs import setup_logging
    from installer.run import build_backend_steps, install as run_install

    setup_logging(state_dir=iso.state)
    return await run_install(a, iso.events.append, assume_yes=True, preflight=False, plan=plan,
                             steps=build_backend_steps(plan), runtime=iso.runtime)
