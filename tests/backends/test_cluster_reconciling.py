"""A cluster that is RECONCILING (an upgrade or repair; its API server away) is waited for, shown as such, and the
Kubernetes steps go on once it is RUNNING again, instead of failing as unreachable."""
from __future__ import annotations

import pytest

from installer.plan import Plan, build_plan
from secrets_kfp_support import Isolated, answers, failures


@pytest.mark.sandbox_speed(0.01)
async def test_kubernetes_steps_wait_for_a_reconciling_cluster(sandbox, tmp_path, monkeypatch):
    from installer.logs import setup_logging
    from installer.run import install

    iso = Isolated(tmp_path / "run", monkeypatch)
    setup_logging(state_dir=iso.state)
    a = answers(sandbox.project, "key", manifests="upstream")
    full = build_plan(a)
    infra = Plan(a, [full[s] for s in ("apis", "network", "subnet", "gke-sa", "gke-sa-roles", "cluster")])
    fin = await install(a, iso.events.append, assume_yes=True, preflight=False, plan=infra, runtime={})
    assert fin.status == "done", failures(iso)

    # an upgrade starts: RECONCILING for 400 s (x speed), the API server not answering meanwhile
    sandbox.scenario("cluster_reconciling", cluster=a.names.cluster, seconds=400)
    iso.events.clear()
    plan = Plan(a, [full[s] for s in ("apis", "network", "subnet", "gke-sa", "gke-sa-roles", "cluster",
                                      "kfp-namespace")])
    fin = await install(a, iso.events.append, assume_yes=True, preflight=False, plan=plan, runtime={})
    assert fin.status == "done", failures(iso)
    waits = [e.on for e in iso.events if e.type == "StepWaiting" and e.step_id == "kfp-namespace"]
    assert any("RECONCILING" in w and "upgrade or repair" in w for w in waits), waits
    st = next(c for c in sandbox.state()["clusters"].values() if c["name"] == a.names.cluster)
    assert st["status"] == "RUNNING"
