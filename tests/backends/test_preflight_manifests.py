"""A local kfp.manifests folder that differs from the release (here: an added ClusterRoleBinding to cluster-admin)
is stopped by the preflight, before anything is made, unless the user consents (--yes or the wizard's question)."""
from __future__ import annotations

import shutil

import yaml

from backends.preflight import run_preflight
from installer.answers import Answers
from installer.plan import build_plan
from secrets_kfp_support import kfp_fixture

EXTRA = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "friendly-admin"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "User", "name": "someone@example.com", "apiGroup": "rbac.authorization.k8s.io"}]}


def _answers(sandbox, folder) -> Answers:
    a = Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix="demo")
    a.kfp.manifests = str(folder)
    return a


async def test_a_folder_that_differs_needs_consent_before_anything_is_made(sandbox, tmp_path):
    sandbox.enable()
    folder = tmp_path / "kfp"
    shutil.copytree(kfp_fixture(), folder)
    same = await run_preflight(_answers(sandbox, folder))
    assert same.get("manifests").status == "ok", same.to_table()
    with open(folder / "cluster-scoped.yaml", "a") as f:
        f.write("---\n" + yaml.safe_dump(EXTRA))
    a = _answers(sandbox, folder)
    assert f"from {folder}" in build_plan(a)["kfp-deploy"].resource
    report = await run_preflight(a)
    c = report.get("manifests")
    assert not report.ok and c.status == "fail", report.to_table()
    assert "ClusterRoleBinding/friendly-admin" in c.detail and "--yes" in c.fix
    assert sandbox.requests(mutating=True) == []
    asked = []
    report = await run_preflight(a, runtime={"consent": lambda q: asked.append(q) or True})
    assert report.get("manifests").status == "warn" and "friendly-admin" in asked[0]
    assert (await run_preflight(a, runtime={"assume_yes": True})).get("manifests").status == "warn"


async def test_plan_says_the_folder_differs_without_credentials(tmp_path, monkeypatch):
    from installer.run import describe_plan
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "none.json"))
    folder = tmp_path / "kfp"
    shutil.copytree(kfp_fixture(), folder)
    with open(folder / "cluster-scoped.yaml", "a") as f:
        f.write("---\n" + yaml.safe_dump(EXTRA))
    a = Answers(project="mlops-demo-project", region="us-central1", zone="us-central1-a", prefix="demo")
    a.kfp.manifests = str(folder)
    rows = {r.step_id: r for r in await describe_plan(a, check=False)}
    assert "ClusterRoleBinding/friendly-admin" in rows["kfp-cluster-scoped"].detail
    assert "needs --yes" in rows["kfp-deploy"].detail
