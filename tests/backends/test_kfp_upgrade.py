"""kfp.version changed on a re-run: the new manifests are applied and what the old version had and the new one
lacks is removed (only what this installer created), with consent (--yes; the wizard's confirm); plan shows an
update row with the old and new version."""
from __future__ import annotations

import shutil

import pytest
import yaml

from installer.plan import Plan, build_plan
from installer.run import build_backend_steps, describe_plan
from secrets_kfp_support import Isolated, answers, failures, kfp_fixture, kube, step_events

STEPS = ("apis", "network", "subnet", "gke-sa", "kfp-sa", "gke-sa-roles", "kfp-sa-roles", "cluster", "sql-instance",
         "sql-user", "bucket", "bucket-roles", "kfp-namespace", "mysql-secret", "kfp-sa-key", "kfp-cluster-scoped",
         "kfp-deploy")
GONE = "ml-pipeline-visualizationserver"


def _next_release(tmp_path):
    """A 'next release' folder: the fixture without the visualization server (its Deployment and Service)."""
    folder = tmp_path / "kfp-next"
    shutil.copytree(kfp_fixture(), folder)
    env = folder / "env-gcp.yaml"
    docs = [d for d in yaml.safe_load_all(env.read_text()) if d]
    keep = [d for d in docs if not (d["kind"] in ("Deployment", "Service") and d["metadata"]["name"] == GONE)]
    assert len(keep) == len(docs) - 2
    env.write_text(yaml.safe_dump_all(keep))
    return folder


async def _run(a, iso, assume_yes):
    from installer.logs import setup_logging
    from installer.run import install
    setup_logging(state_dir=iso.state)
    full = build_plan(a)
    plan = Plan(a, [full[s] for s in STEPS])
    return await install(a, iso.events.append, assume_yes=assume_yes, preflight=False, plan=plan,
                         steps=build_backend_steps(plan), runtime={})


@pytest.mark.sandbox_speed(0.005)
async def test_version_change_applies_the_new_manifests_and_prunes_ours(sandbox, tmp_path, monkeypatch):
    iso = Isolated(tmp_path / "run", monkeypatch)
    a = answers(sandbox.project, "key")
    fin = await _run(a, iso, True)
    assert fin.status == "done", failures(iso)
    client = await kube(a)
    ns = a.kfp.namespace
    assert client.get("apps/v1", "Deployment", GONE, ns) is not None

    b = answers(sandbox.project, "key", manifests=str(_next_release(tmp_path)))
    b.kfp.version = "2.14.5"
    rows = {r.step_id: r for r in await describe_plan(b, check=True, steps=build_backend_steps(build_plan(b)))}
    assert rows["kfp-deploy"].action == "update"
    assert rows["kfp-deploy"].changes[0]["field"] == "kfp.version"
    assert (rows["kfp-deploy"].changes[0]["old"], rows["kfp-deploy"].changes[0]["new"]) == ("2.14.4", "2.14.5")

    iso.events.clear()
    fin = await _run(b, iso, False)  # no consent: nothing is removed
    assert fin.status == "failed", failures(iso)
    assert "kfp.version 2.14.4 -> 2.14.5" in step_events(iso, "StepFailed")[0].message
    assert client.get("apps/v1", "Deployment", GONE, ns) is not None

    iso.events.clear()
    fin = await _run(b, iso, True)
    assert fin.status == "done", failures(iso)
    assert client.get("apps/v1", "Deployment", GONE, ns) is None
    assert client.get("v1", "Service", GONE, ns) is None
    assert client.get("apps/v1", "Deployment", "ml-pipeline", ns) is not None
    assert fin.outputs["kfp-deploy"]["version"] == "2.14.5"
    said = [e.message for e in step_events(iso, "StepProgress", "kfp-deploy") if e.message.startswith("removed ")]
    assert any(GONE in m for m in said), said
