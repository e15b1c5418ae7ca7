"""Real kubectl against the sandbox's per-cluster Kubernetes API: the KFP 2.14.4 manifests, applied server-side."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from .kube_helpers import TOKEN, kube, require_fixtures, require_kubectl, wait_until  # noqa: F401  (fixture)

pytestmark = pytest.mark.tools


class Kubectl:
    def __init__(self, kt, tmp_path, token: str = TOKEN):
        self.bin = require_kubectl()
        self.kubeconfig = kt.kubeconfig(tmp_path / f"kubeconfig-{abs(hash(token))}", token=token)
        self.cache = tmp_path / "kube-cache"
        self.env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(tmp_path)}

    def run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        p = subprocess.run([self.bin, "--cache-dir", str(self.cache), *args], env=self.env, capture_output=True,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def json(self, *args: str) -> dict:
        return json.loads(self.run(*args, "-o", "json").stdout)


def _rvs(items: list[dict]) -> dict:
    return {(i["kind"], i["metadata"].get("namespace"), i["metadata"]["name"]): i["metadata"]["resourceVersion"]
            for i in items}


def test_kubectl_apply_server_side_kfp_manifests(kube, tmp_path):
    fixtures = require_fixtures()
    cluster_scoped, env_gcp = str(fixtures / "cluster-scoped.yaml"), str(fixtures / "env-gcp.yaml")
    k = Kubectl(kube, tmp_path)
    assert "v1.32" in k.run("version", "-o", "json").stdout  # client and server versions

    out = k.run("apply", "--server-side", "-f", cluster_scoped).stdout
    assert out.count("serverside-applied") == 15, out
    # as a user would: wait for the CRDs (applications.app.k8s.io above all) before the env overlay
    k.run("wait", "--for", "condition=established", "crd", "--all", "--timeout=30s")
    out = k.run("apply", "--server-side", "-f", env_gcp).stdout
    assert out.count("serverside-applied") == 76, out

    # kubectl get finds every object of both files
    assert len(k.json("get", "-f", cluster_scoped)["items"]) == 15
    env_items = k.json("get", "-f", env_gcp)["items"]
    assert len(env_items) == 76
    assert sum(1 for i in env_items if i["kind"] == "Deployment") == 16
    table = k.run("get", "-f", env_gcp).stdout  # server-side printed tables
    assert "deployment.apps/proxy-agent" in table and "application.app.k8s.io/pipeline" in table
    assert "priorityclass.scheduling.k8s.io/workflow-controller" in table
    apps = k.run("get", "applications", "-n", "kubeflow").stdout  # the CRD's additionalPrinterColumns
    assert apps.split()[:6] == ["NAME", "TYPE", "VERSION", "OWNER", "READY", "AGE"] and "Kubeflow Pipelines" in apps

    # the simulated controllers: every Deployment becomes Available, then the inverse proxy's Hostname appears
    k.run("wait", "--for", "condition=available", "deployment", "--all", "-n", "kubeflow", "--timeout=30s")
    k.run("rollout", "status", "deployment/ml-pipeline", "-n", "kubeflow", "--timeout=30s")
    host = wait_until(lambda: k.run("get", "configmap", "inverse-proxy-config", "-n", "kubeflow", "-o",
                                    "jsonpath={.data.Hostname}").stdout.strip(), timeout=15, what="Hostname")
    assert host.endswith(".pipelines.googleusercontent.com")
    pods = k.json("get", "pods", "-n", "kubeflow")["items"]
    assert len(pods) == 16 and all(p["status"]["phase"] == "Running" for p in pods)
    assert "Running" in k.run("get", "pods", "-n", "kubeflow").stdout

    # re-applying both files changes nothing: same resourceVersions, and the Hostname survives
    before = _rvs(k.json("get", "-f", cluster_scoped)["items"] + k.json("get", "-f", env_gcp)["items"])
    n0 = len(kube.mutating())
    k.run("apply", "--server-side", "-f", cluster_scoped)
    k.run("apply", "--server-side", "-f", env_gcp)
    assert len(kube.mutating()) - n0 == 91  # one PATCH per object
    after = _rvs(k.json("get", "-f", cluster_scoped)["items"] + k.json("get", "-f", env_gcp)["items"])
    assert after == before
    assert k.run("get", "configmap", "inverse-proxy-config", "-n", "kubeflow", "-o",
                 "jsonpath={.data.Hostname}").stdout.strip() == host

    # and the objects survive a restart of the server (same state dir, new port)
    kube.stop()
    kube.start()
    k2 = Kubectl(kube, tmp_path)
    assert len(k2.json("get", "-f", env_gcp)["items"]) == 76


def test_kubectl_errors_and_auth(kube, tmp_path):
    k = Kubectl(kube, tmp_path)
    p = k.run("get", "configmap", "nope", "-n", "default", check=False)
    assert p.returncode == 1 and 'configmaps "nope" not found' in p.stderr
    p = k.run("get", "widgets", check=False)
    assert p.returncode == 1 and "the server doesn't have a resource type" in p.stderr
    bad = Kubectl(kube, tmp_path, token="not-a-valid-token")
    p = bad.run("get", "namespaces", check=False)
    assert p.returncode == 1 and "Unauthorized" in p.stderr
    # kubectl's typed clients send protobuf bodies for these
    assert k.run("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    k.run("create", "namespace", "scratch")
    k.run("create", "secret", "generic", "s1", "-n", "scratch", "--from-literal=password=pw")
    assert k.run("get", "secret", "s1", "-n", "scratch", "-o", "jsonpath={.type} {.data.password}").stdout == \
        "Opaque cHc="
    k.run("create", "role", "reader", "-n", "scratch", "--verb=get", "--resource=pods")
    k.run("create", "rolebinding", "rb", "-n", "scratch", "--role=reader", "--serviceaccount=scratch:default")
    rb = k.json("get", "rolebinding", "rb", "-n", "scratch")
    assert rb["roleRef"]["name"] == "reader" and rb["subjects"][0]["name"] == "default"
    # client-side apply: create, then a strategic merge patch computed by kubectl
    manifest = tmp_path / "web.json"
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "scratch"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx:1",
                                                          "env": [{"name": "A", "value": "1"}]}]}}}}
    manifest.write_text(json.dumps(dep))
    assert "created" in k.run("apply", "-f", str(manifest)).stdout
    dep["spec"]["replicas"] = 2
    dep["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "2"
    manifest.write_text(json.dumps(dep))
    assert "configured" in k.run("apply", "-f", str(manifest)).stdout
    live = k.json("get", "deployment", "web", "-n", "scratch")
    assert live["spec"]["replicas"] == 2 and live["metadata"]["generation"] == 2
    assert live["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "2"}]
    k.run("scale", "deployment", "web", "-n", "scratch", "--replicas=3")
    k.run("rollout", "status", "deployment/web", "-n", "scratch", "--timeout=30s")
    assert k.json("get", "deployment", "web", "-n", "scratch")["status"]["readyReplicas"] == 3
    assert "simulated pod" in k.run("logs", "deployment/web", "-n", "scratch").stdout
    assert "Scheduled" in k.run("get", "events", "-n", "scratch").stdout
    # upgrading from client-side to server-side apply takes over the client-side fields without conflicts,
    # but a field last written by someone else conflicts unless forced
    dep["spec"]["replicas"] = 4
    manifest.write_text(json.dumps(dep))
    assert "serverside-applied" in k.run("apply", "--server-side", "-f", str(manifest)).stdout
    k.run("patch", "deployment", "web", "-n", "scratch", "--type=merge", "-p", '{"spec":{"replicas":1}}')
    p = k.run("apply", "--server-side", "-f", str(manifest), check=False)
    assert p.returncode == 1 and "conflict" in p.stderr
    k.run("apply", "--server-side", "--force-conflicts", "-f", str(manifest))
    assert k.json("get", "deployment", "web", "-n", "scratch")["spec"]["replicas"] == 4
    # plain create / label / delete with kubectl
    k.run("create", "configmap", "c1", "-n", "scratch", "--from-literal=a=b")
    k.run("label", "configmap", "c1", "-n", "scratch", "tier=x")
    assert k.run("get", "cm", "-n", "scratch", "-l", "tier=x", "-o", "name").stdout.strip() == "configmap/c1"
    k.run("delete", "configmap", "c1", "-n", "scratch")
    assert k.run("get", "cm", "-n", "scratch", "-l", "tier=x", "-o", "name").stdout.strip() == ""
