"""Secrets steps on the sandbox: mysql-secret across a resume that lost the password, --write-kubeconfig, and the
refusal to touch any cluster but the journal's."""
from __future__ import annotations

import os
import stat

import pytest
import yaml

from installer.errors import ErrorClass, InstallerError
from installer.journal import Journal
from installer.plan import Plan, build_plan
from installer.steps import StepContext
from secrets_kfp_support import Isolated, answers, failures, kube, secret_data

import time

from backends.k8s.apply import WaitTimeout, apply_all, wait_configmap_key, wait_deployments_available
from backends.k8s.auth import TokenSource, _fetch_google
from backends.k8s.client import KubeClient


def _deployment(name: str, ns: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}

UP_TO_DB_SECRET = ("apis", "network", "subnet", "gke-sa", "gke-sa-roles", "cluster", "kfp-namespace",
                   "sql-instance", "sql-user", "mysql-secret")


def db_plan(a) -> Plan:
    full = build_plan(a)
    return Plan(answers=a, steps=[full[s] for s in UP_TO_DB_SECRET])


async def run(a, iso, runtime):
    from installer.logs import setup_logging
    from installer.run import install
    setup_logging(state_dir=iso.state)
    iso.runtime = runtime
    return await install(a, iso.events.append, assume_yes=True, preflight=False, plan=db_plan(a), runtime=runtime)


async def test_mysql_secret_resume_kubeconfig_and_cluster_guard(sandbox, tmp_path, monkeypatch):
    iso = Isolated(tmp_path / "run", monkeypatch)
    a = answers(sandbox.project, "key", manifests="upstream")  # these plans never render KFP
    kubeconfig = iso.home / ".kube" / "config"
    kubeconfig.parent.mkdir(parents=True)
    kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "other",
                                          "clusters": [{"name": "other", "cluster": {"server": "https://x"}}],
                                          "users": [{"name": "other", "user": {"token": "t"}}],
                                          "contexts": [{"name": "other",
                                                        "context": {"cluster": "other", "user": "other"}}]}))

    first = {}
    fin = await run(a, iso, first)
    assert fin.status == "done", failures(iso)
    client = await kube(a)
    ns = a.kfp.namespace
    assert secret_data(client, ns, "mysql-secret") == {"username": "kfp", "password": first["sql_password"]}

    # The Secret is lost and the new run has no password in memory: it sets a new one on the DB user and writes it
    client.delete("v1", "Secret", "mysql-secret", ns)
    sandbox.clear_requests()
    second = {"write_kubeconfig": True}
    fin = await run(a, iso, second)
    assert fin.status == "done", failures(iso)
    pw = second.get("sql_password")
    assert pw and pw != first["sql_password"]
    assert secret_data(client, ns, "mysql-secret") == {"username": "kfp", "password": pw}
    updates = [r for r in sandbox.requests(mutating=True) if r["method"] == "PUT" and "/users" in r["path"]]
    assert len(updates) == 1  # users.update, once

    # --write-kubeconfig: a gke_ context with the exec plugin, made current; the other context is kept
    path, name = second["kubeconfig_written"]
    assert path == str(kubeconfig) and name == f"gke_{a.project}_{a.location}_{a.names.cluster}"
    cfg = yaml.safe_load(kubeconfig.read_text())
    assert cfg["current-context"] == name
    assert {c["name"] for c in cfg["contexts"]} == {"other", name}
    user = next(u for u in cfg["users"] if u["name"] == name)["user"]
    assert user["exec"]["command"] == "gke-gcloud-auth-plugin" and "token" not in user
    cl = next(c for c in cfg["clusters"] if c["name"] == name)["cluster"]
    assert cl["server"] == client.configuration.host and cl["certificate-authority-data"]
    assert stat.S_IMODE(os.stat(kubeconfig).st_mode) == 0o600

    # a third run changes nothing
    sandbox.clear_requests()
    fin = await run(a, iso, {})
    assert fin.status == "done", failures(iso)
    assert sandbox.requests(mutating=True) == []

    # the Kubernetes steps refuse a cluster whose endpoint is not the one in the journal
    from backends.k8s.cluster import connect
    plan = build_plan(a)
    j = Journal(a.env_id)
    recorded = dict(j.step("cluster")["outputs"])
    tampered = {**recorded, "endpoint": "127.0.0.1:1"}
    ctx = StepContext(answers=a, plan=plan, spec=plan["kfp-namespace"], record={}, runtime={},
                      emit=lambda e: None, save=lambda: None,
                      outputs_of=lambda sid: tampered if sid == "cluster" else j.step(sid).get("outputs", {}))
    with pytest.raises(InstallerError) as ei:
        await connect(ctx)
    assert ei.value.error_class == ErrorClass.CONFLICT and "Refusing to deploy" in ei.value.message
    ctx.outputs_of = lambda sid: {} if sid == "cluster" else j.step(sid).get("outputs", {})
    with pytest.raises(InstallerError) as ei:
        await connect(ctx)
    assert "journal holds no endpoint" in ei.value.message

    # -- Kubernetes access itself (same cluster): token refresh and 401 retry, SSA field manager, the waits
    out = j.step("cluster")["outputs"]
    import base64
    ca = base64.b64decode(out["ca_certificate"])
    # tokens: a stale/invalid one first -> 401 -> refreshed once; and a short-lived one refreshed before expiry
    calls = []

    def fetch():
        calls.append(time.time())
        tok, _ = _fetch_google()
        if len(calls) == 1:
            return "ya29.not-a-valid-token", None
        return tok, time.time() + 5.0  # expires soon: refreshed again once within min_ttl (0.5 s) of its expiry

    client = KubeClient(out["endpoint"], ca, TokenSource(fetch, min_ttl=0.5), cluster=out["cluster"])
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t1"}}
    await apply_all(client, [ns, _deployment("web", "t1"), _deployment("api", "t1")])
    assert len(calls) == 2  # the 401 made it fetch a new token, the retry succeeded
    # the apply had 4.5 s before the token came within min_ttl of expiry (room for a loaded machine); now wait
    # until it has, and the next call must refresh it first
    time.sleep(max(0.0, calls[1] + 4.6 - time.time()))
    assert client.get("v1", "Namespace", "t1")["metadata"]["name"] == "t1"
    assert len(calls) == 3  # refreshed before the token's expiry, during a "long wait"
    live = client.get("apps/v1", "Deployment", "web", "t1")
    assert any(m["manager"] == "mlops-install" and m["operation"] == "Apply" for m in live["metadata"]["managedFields"])

    # a wait that times out names each Deployment that is not Available, with its conditions
    client.apply(_deployment("late", "t1"))
    with pytest.raises(WaitTimeout) as ei:
        await wait_deployments_available(client, "t1", ["late", "nope"], timeout=0, min_timeout=0)
    msg = str(ei.value)
    assert "late: 0/1 available" in msg and "nope: not found" in msg
    ready = await wait_deployments_available(client, "t1", ["web", "api", "late"], timeout=60)
    assert len(ready) == 3

    with pytest.raises(WaitTimeout) as ei:
        await wait_configmap_key(client, "t1", "inverse-proxy-config", "Hostname", timeout=0, min_timeout=0)
    assert "does not exist" in str(ei.value)
    client.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "t1"},
                  "data": {"Hostname": "h.example"}})
    assert await wait_configmap_key(client, "t1", "cm", "Hostname", timeout=5) == "h.example"

    # a re-apply of the same objects by the same manager changes nothing on the server
    rv = client.get("apps/v1", "Deployment", "web", "t1")["metadata"]["resourceVersion"]
    client.apply(_deployment("web", "t1"))
    assert client.get("apps/v1", "Deployment", "web", "t1")["metadata"]["resourceVersion"] == rv
