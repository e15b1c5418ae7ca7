"""Issue 14, case 1: destroy removes only what the install created.

An adopted cluster (``cluster.existing``) already holds the ``kubeflow`` Namespace with a user's ConfigMap, Argo's
CRD ``workflows.argoproj.io`` (applied by kubectl) with a user's Workflow in another namespace, and a user's own
``kubeflow/mysql-secret``. The install stops before replacing that Secret without consent, says what it found, and
goes on with it (``--yes``); the destroy listing names what stays, and the destroy keeps exactly that: the
Namespace and the user's ConfigMap, the CRD and the Workflow, the user's Secret (KFP's objects are gone)."""
from __future__ import annotations

import dataclasses

import yaml

from backends.k8s.apply import wait_crds_established
from installer.destroy import destroy, destroy_plan
from installer.journal import Journal
from installer.plan import Plan, build_plan
from installer.run import build_backend_steps
from secrets_kfp_support import FIXTURES, Isolated, answers, failures, kube, secret_data, step_events

UP_TO_CLUSTER = ("apis", "network", "subnet", "gke-sa", "gke-sa-roles", "cluster")
WF_CRD = "workflows.argoproj.io"


def _crd(name: str) -> dict:
    docs = [d for d in yaml.safe_load_all((FIXTURES / "cluster-scoped.yaml").read_text()) if d]
    return next(d for d in docs if d["kind"] == "CustomResourceDefinition" and d["metadata"]["name"] == name)


async def _run(a, iso, *, plan=None, yes: bool):
    from installer.logs import setup_logging
    from installer.run import install
    setup_logging(state_dir=iso.state)
    iso.events.clear()
    return await install(a, iso.events.append, assume_yes=yes, preflight=False, plan=plan, runtime={})


async def test_destroy_keeps_what_existed_before(sandbox, tmp_path, monkeypatch):
    iso = Isolated(tmp_path / "run", monkeypatch)
    # someone else's cluster, made with another prefix; our install adopts it
    other = answers(sandbox.project, "key", prefix="other")
    full = build_plan(other)
    fin = await _run(other, iso, plan=Plan(answers=other, steps=[full[s] for s in UP_TO_CLUSTER]), yes=True)
    assert fin.status == "done", failures(iso)
    base = answers(sandbox.project, "key", prefix="demo")
    a = dataclasses.replace(base, cluster=dataclasses.replace(base.cluster, existing=other.names.cluster))

    client = await kube(other)
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubeflow"}}, field_manager="kubectl")
    client.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "user-cm", "namespace": "kubeflow"},
                  "data": {"mine": "yes"}}, field_manager="kubectl")
    client.apply(_crd(WF_CRD), field_manager="kubectl")
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}, field_manager="kubectl")
    await wait_crds_established(client, [WF_CRD])
    client.forget_discovery()
    client.apply({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                  "metadata": {"name": "user-wf", "namespace": "team"}, "spec": {"entrypoint": "main"}},
                 field_manager="kubectl")
    user_secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": "mysql-secret", "namespace": "kubeflow"},
                   "stringData": {"username": "someone", "password": "their-own-password-1"}}
    client.apply(user_secret, field_manager="kubectl")

    # every step up to the KFP objects (whether KFP's pods could start on someone else's cluster is not the point)
    plan = Plan(answers=a, steps=[s for s in build_plan(a) if s.id not in ("kfp-db-components", "kfp-ready", "kfp-ui", "kfp-verify")])

    # without consent: the user's Secret is named and left as it is
    fin = await _run(a, iso, plan=plan, yes=False)
    assert "mysql-secret" in fin.failed, failures(iso)
    err = step_events(iso, "StepFailed", "mysql-secret")[0]
    assert err.error_class == "conflict" and "Secret kubeflow/mysql-secret already exists" in err.message
    assert "--yes" in err.remedy
    assert secret_data(client, "kubeflow", "mysql-secret")["password"] == "their-own-password-1"

    # with consent (--yes) it is replaced, and said so
    fin = await _run(a, iso, plan=plan, yes=True)
    assert fin.status == "done", failures(iso)
    logs = [e.message for e in step_events(iso, "StepLog", "mysql-secret")]
    assert any("existed and was not made by this install: replaced" in m for m in logs), logs
    assert secret_data(client, "kubeflow", "mysql-secret")["username"] == "kfp"

    j = Journal(a.env_id)
    listing = {sid: (what, removed) for sid, _, what, removed in destroy_plan(j, build_plan(a))}
    assert listing["kfp-namespace"][1] is False and listing["mysql-secret"][1] is False
    assert listing["cluster"][1] is False  # adopted
    cs_what, cs_removed = listing["kfp-cluster-scoped"]
    assert cs_removed and f"CustomResourceDefinition {WF_CRD}" in cs_what.split("keeps what existed before")[1]
    assert "Namespace kubeflow" in cs_what.split("keeps what existed before")[1]
    created = {(o["kind"], o["name"]) for o in j.step("kfp-cluster-scoped")["outputs"]["created"]}
    assert ("CustomResourceDefinition", WF_CRD) not in created and ("Namespace", "kubeflow") not in created
    assert ("CustomResourceDefinition", "scheduledworkflows.kubeflow.org") in created

    events: list = []
    fin = await destroy(a, events.append, steps=build_backend_steps(build_plan(a)))
    assert fin.exit_code == 0, [e.to_dict() for e in events if e.type == "StepFailed"]
    # what existed before stays, with what it held
    assert client.get("v1", "Namespace", "kubeflow") is not None
    assert client.get("v1", "ConfigMap", "user-cm", "kubeflow")["data"] == {"mine": "yes"}
    assert client.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", WF_CRD) is not None
    assert client.get("argoproj.io/v1alpha1", "Workflow", "user-wf", "team") is not None
    assert client.get("v1", "Secret", "mysql-secret", "kubeflow") is not None
    # what the install made is gone
    assert client.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "scheduledworkflows.kubeflow.org") is None
    assert client.list("apps/v1", "Deployment", "kubeflow") == []
    assert client.get("v1", "Secret", "user-gcp-sa", "kubeflow") is None
    # the listing and the deed agree: each step listed "keep" was not touched
    done = {e.step_id: e.outcome for e in events if e.type == "StepDone"}
    assert done["kfp-namespace"].startswith("kept") and done["mysql-secret"].startswith("kept"), done
