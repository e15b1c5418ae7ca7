"""The pod lifecycle of a sandbox cluster (sandbox/kube/pods.py): scheduling against the node pool, Secret /
ConfigMap / ServiceAccount references, the judge deciding each container start, CrashLoopBackOff, logs, and the
Deployment status that follows the pods. Each rule: the passing case and what a user sees on GKE when it fails.
Real HTTP, the `kubernetes` client and real kubectl; the judge is a plain function given to the server."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from pathlib import Path

import google.auth
import pytest
from google.auth.transport.requests import Request
from kubernetes import client

from sandbox.kube.runtime import ALLOW, Verdict

from .helpers import TOKEN_SCOPES, api, core_api, network_and_subnet
from .kube_helpers import KubeThread, require_kubectl, wait_until

SPEED = 0.01
P = "mlops-demo-project"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cluster(tmp_path):
    """A cluster whose judge is `cluster.rules`: container name -> function(view, pod, container) -> Verdict."""
    rules: dict = {}
    calls: list[tuple[float, str, str]] = []
    lock = threading.Lock()

    def judge(view, pod, container):
        with lock:
            calls.append((time.monotonic(), pod["metadata"]["name"], container["name"]))
        rule = rules.get(container["name"])
        return rule(view, pod, container) if rule else ALLOW

    kt = KubeThread(tmp_path / "kube", speed=SPEED, judge=judge)
    kt.rules, kt.calls = rules, calls
    kt.start()
    try:
        yield kt
    finally:
        kt.close()


def _apis(kt):
    api = kt.api_client()
    return client.CoreV1Api(api), client.AppsV1Api(api)


def _deploy(apps, name, ns="default", container=None, replicas=1, **spec):
    c = {"name": "main", "image": "gcr.io/x/app:1", **(container or {})}
    apps.create_namespaced_deployment(ns, {
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, **spec.pop("dep", {}),
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [c], **spec}}}})


def _pod(v1, app, ns="default"):
    pods = v1.list_namespaced_pod(ns, label_selector=f"app={app}").items
    return pods[0] if len(pods) == 1 else None


def _events(v1, name, ns="default"):
    return [(e.type, e.reason, e.message) for e in
            v1.list_namespaced_event(ns, field_selector=f"involvedObject.name={name}").items]


def _waiting(pod, i=0):
    cs = (pod.status.container_statuses or [None])[i] if pod else None
    return cs.state.waiting if cs and cs.state and cs.state.waiting else None


def _waiting_for(v1, app, reason, ns="default"):
    """The pod's first container's waiting state if its reason is ``reason``."""
    w = _waiting(_pod(v1, app, ns))
    return w if w is not None and w.reason == reason else None


def _conds(obj):
    return {c.type: c for c in (obj.status and obj.status.conditions) or []}


def _ready(pod):
    return pod is not None and pod.status.phase == "Running" and _conds(pod)["Ready"].status == "True"


def _runtime(kt):
    return [e for e in list(kt.log) if e.get("api") == "runtime"]


def test_nodes_model_the_gke_node_pool(tmp_path):
    pools = [{"name": "kfp-pool", "initialNodeCount": 1, "locations": ["us-east1-b", "us-east1-c", "us-east1-d"],
              "config": {"machineType": "n2-standard-8", "workloadMetadataConfig": {"mode": "GKE_METADATA"}}}]
    kt = KubeThread(tmp_path / "kube", speed=SPEED, name="prod-cluster", node_pools=pools)
    kt.start()
    try:
        nodes = client.CoreV1Api(kt.api_client()).list_node().items
        assert len(nodes) == 3  # one node per zone of a regional pool
        assert {n.metadata.labels["topology.kubernetes.io/zone"] for n in nodes} == set(pools[0]["locations"])
        for n in nodes:
            assert n.metadata.name.startswith("gke-prod-cluster-kfp-pool-")
            group, suffix = n.metadata.name.split("-")[-2:]
            assert len(group) == 8 and int(group, 16) >= 0 and len(suffix) == 4
            lab = n.metadata.labels
            assert lab["cloud.google.com/gke-nodepool"] == "kfp-pool"
            assert lab["node.kubernetes.io/instance-type"] == "n2-standard-8"
            assert lab["iam.gke.io/gke-metadata-server-enabled"] == "true"
            # GKE's reservation: 8 cores - (60+10+2x5+4x2.5)m; 32 GiB - (25% of 4 + 20% of 4 + 10% of 8 + 6% of 16)
            # GiB - 100 MiB eviction threshold
            assert n.status.capacity["cpu"] == "8" and n.status.allocatable["cpu"] == "7910m"
            assert n.status.allocatable["memory"] == f"{int((32768 - 3.56 * 1024 - 100) * 1024)}Ki"
    finally:
        kt.close()
    # a standalone cluster: 3 x e2-standard-4 in one zone, no GKE metadata server label
    kt = KubeThread(tmp_path / "kube2", speed=SPEED)
    kt.start()
    try:
        nodes = client.CoreV1Api(kt.api_client()).list_node().items
        assert len(nodes) == 3 and all(n.status.allocatable["cpu"] == "3920m" for n in nodes)
        assert all("iam.gke.io/gke-metadata-server-enabled" not in n.metadata.labels for n in nodes)
    finally:
        kt.close()


def test_scheduling_against_node_allocatable(cluster):
    v1, apps = _apis(cluster)
    _deploy(apps, "small", container={"resources": {"requests": {"cpu": "2", "memory": "1Gi"}}})
    _deploy(apps, "huge", container={"resources": {"requests": {"cpu": "8", "memory": "1Gi"}}})
    small = wait_until(lambda: (lambda p: p if _ready(p) else None)(_pod(v1, "small")), what="small Running")
    assert small.spec.node_name.startswith("gke-demo-kfp-cluster-default-pool-")
    assert ("Normal", "Scheduled", f"Successfully assigned default/{small.metadata.name} to "
            f"{small.spec.node_name}") in _events(v1, small.metadata.name)

    msg = ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
           "3 No preemption victims found for incoming pod.")
    huge = wait_until(lambda: (lambda p: p if p and p.status.conditions else None)(_pod(v1, "huge")))
    sched = _conds(huge)["PodScheduled"]
    assert huge.status.phase == "Pending" and not huge.spec.node_name
    assert (sched.status, sched.reason, sched.message) == ("False", "Unschedulable", msg)
    assert ("Warning", "FailedScheduling", msg) in _events(v1, huge.metadata.name)
    dep = apps.read_namespaced_deployment("huge", "default")
    assert _conds(dep)["Available"].status == "False" and dep.status.unavailable_replicas == 1
    # 2 cores used on one node: two pods of 1.9 cores go to the two emptier nodes; then 2.5 cores fit nowhere
    _deploy(apps, "pair", replicas=2, container={"resources": {"requests": {"cpu": "1900m"}}})
    wait_until(lambda: (apps.read_namespaced_deployment("pair", "default").status or
                        client.V1DeploymentStatus()).ready_replicas == 2, what="pair Ready")
    nodes = {p.spec.node_name for p in v1.list_namespaced_pod("default", label_selector="app=pair").items}
    assert small.spec.node_name not in nodes and len(nodes) == 2  # LeastAllocated spreads them
    _deploy(apps, "more", container={"resources": {"requests": {"cpu": "2500m"}}})
    more = wait_until(lambda: (lambda p: p if p and p.status.conditions else None)(_pod(v1, "more")))
    assert _conds(more)["PodScheduled"].message.startswith("0/3 nodes are available: 3 Insufficient cpu.")


def test_env_references_to_a_missing_secret_and_key(cluster):
    v1, apps = _apis(cluster)
    env = [{"name": "DB_USER", "valueFrom": {"secretKeyRef": {"name": "mysql-secret", "key": "username"}}},
           {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "x", "optional": True}}}]
    _deploy(apps, "db", container={"env": env})
    w = wait_until(lambda: _waiting_for(v1, "db", "CreateContainerConfigError"), what="CreateContainerConfigError")
    assert w.message == 'secret "mysql-secret" not found'
    pod = _pod(v1, "db")
    assert pod.status.phase == "Pending"
    assert ("Warning", "Failed", 'Error: secret "mysql-secret" not found') in _events(v1, pod.metadata.name)
    with pytest.raises(client.ApiException) as ei:
        v1.read_namespaced_pod_log(pod.metadata.name, "default")
    assert ei.value.status == 400
    assert json.loads(ei.value.body)["message"] == (f'container "main" in pod "{pod.metadata.name}" is waiting to '
                                                    "start: CreateContainerConfigError")
    # the Secret without the key: kubelet's other message
    v1.create_namespaced_secret("default", {"metadata": {"name": "mysql-secret"}, "stringData": {"password": "p"}})
    wait_until(lambda: (_waiting_for(v1, "db", "CreateContainerConfigError") or client.V1ContainerStateWaiting())
               .message == "couldn't find key username in Secret default/mysql-secret", what="missing key")
    assert not _ready(_pod(v1, "db"))
    # with the key the container starts (re-checked at each pass); the optional reference never mattered
    v1.patch_namespaced_secret("mysql-secret", "default", {"stringData": {"username": "root"}})
    pod = wait_until(lambda: (lambda p: p if _ready(p) else None)(_pod(v1, "db")), what="db Running")
    assert pod.status.container_statuses[0].restart_count == 0
    rules = [(e["ok"], e["rule"], e["message"]) for e in _runtime(cluster) if e["pod"] == pod.metadata.name]
    assert (False, "kubelet.CreateContainerConfigError", 'secret "mysql-secret" not found') in rules
    assert rules[-1][0] is True


def test_missing_secret_volume_keeps_the_pod_container_creating(cluster):
    v1, apps = _apis(cluster)
    _deploy(apps, "cache", volumes=[{"name": "webhook-tls-certs", "secret": {"secretName": "webhook-server-tls"}},
                                    {"name": "opt", "configMap": {"name": "absent", "optional": True}}],
            container={"volumeMounts": [{"name": "webhook-tls-certs", "mountPath": "/etc/webhook/certs"}]})
    text = 'MountVolume.SetUp failed for volume "webhook-tls-certs" : secret "webhook-server-tls" not found'
    name = wait_until(lambda: next((p.metadata.name for p in v1.list_namespaced_pod("default").items
                                    if ("Warning", "FailedMount", text) in _events(v1, p.metadata.name)), None),
                      what="FailedMount")
    pod = v1.read_namespaced_pod(name, "default")
    assert pod.status.phase == "Pending" and _waiting(pod).reason == "ContainerCreating"
    assert _conds(pod)["PodReadyToStartContainers"].status == "False"
    v1.create_namespaced_secret("default", {"metadata": {"name": "webhook-server-tls"}, "stringData": {"a": "b"}})
    wait_until(lambda: _ready(_pod(v1, "cache")), what="cache Running once the Secret exists")


def test_missing_service_account_refuses_the_pods(cluster):
    v1, apps = _apis(cluster)
    _deploy(apps, "agent", serviceAccountName="proxy-agent-runner")
    rs = wait_until(lambda: next(iter(apps.list_namespaced_replica_set("default", label_selector="app=agent").items),
                                 None), what="ReplicaSet")
    msg = (f'pods "{rs.metadata.name}-" is forbidden: error looking up service account '
           'default/proxy-agent-runner: serviceaccount "proxy-agent-runner" not found')
    wait_until(lambda: ("Warning", "FailedCreate", f"Error creating: {msg}") in _events(v1, rs.metadata.name),
               what="FailedCreate")
    assert v1.list_namespaced_pod("default", label_selector="app=agent").items == []
    dep = wait_until(lambda: (lambda d: d if "ReplicaFailure" in _conds(d) else None)(
        apps.read_namespaced_deployment("agent", "default")), what="ReplicaFailure")
    assert _conds(dep)["ReplicaFailure"].message == msg and _conds(dep)["Available"].status == "False"
    v1.create_namespaced_service_account("default", {"metadata": {"name": "proxy-agent-runner"}})
    pod = wait_until(lambda: (lambda p: p if _ready(p) else None)(_pod(v1, "agent")), what="agent Running")
    assert pod.spec.service_account_name == "proxy-agent-runner"
    wait_until(lambda: "ReplicaFailure" not in _conds(apps.read_namespaced_deployment("agent", "default")))


def test_a_failing_container_backs_off_and_starts_after_a_fix(cluster, tmp_path):
    v1, apps = _apis(cluster)

    def needs_config(view, pod, container):
        if view.get("ConfigMap", pod["metadata"]["namespace"], "api-config") is None:
            return Verdict(False, logs=("starting api", "F0101 cannot read ConfigMap api-config: not found"),
                           exit_code=2, rule="test.api-config", message="ConfigMap api-config is missing",
                           source="https://example.invalid/rule")
        return Verdict(True, logs=("api serving on :8888",))

    cluster.rules["api"] = needs_config
    _deploy(apps, "api", container={"name": "api"})  # progressDeadlineSeconds: 600 (x 0.01: 6 s)

    def crashed(n):
        p = _pod(v1, "api")
        cs = p and p.status.container_statuses and p.status.container_statuses[0]
        return p if cs and cs.restart_count >= n and cs.state.waiting and \
            cs.state.waiting.reason == "CrashLoopBackOff" else None

    pod = wait_until(lambda: crashed(1), what="CrashLoopBackOff")
    name, uid = pod.metadata.name, pod.metadata.uid
    cs = pod.status.container_statuses[0]
    assert pod.status.phase == "Running" and not cs.ready
    assert cs.last_state.terminated.exit_code == 2 and cs.last_state.terminated.reason == "Error"
    assert cs.state.waiting.message.startswith("back-off ") and cs.state.waiting.message.endswith(
        f" restarting failed container=api pod={name}_default({uid})")
    first = crashed(1).status.container_statuses[0]
    if first.restart_count == 1:
        assert first.state.waiting.message.startswith("back-off 10s ")
    assert (f"Back-off restarting failed container api in pod {name}_default({uid})"
            in [m for t, r, m in _events(v1, name) if (t, r) == ("Warning", "BackOff")])
    assert v1.read_namespaced_pod_log(name, "default", container="api") == (
        "starting api\nF0101 cannot read ConfigMap api-config: not found\n")
    assert v1.read_namespaced_pod_log(name, "default", previous=True, tail_lines=1) == (
        "F0101 cannot read ConfigMap api-config: not found\n")
    # kubelet's back-off: 10 s, 20 s, 40 s (x speed) between the judge's calls; never asked before it ends
    pod = wait_until(lambda: crashed(3), what="third failure")
    times = [t for t, p, c in list(cluster.calls) if p == name]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) >= 3 and gaps[0] >= 10 * SPEED * 0.95 and gaps[1] >= 20 * SPEED * 0.95, gaps
    # Deployment status follows the pod
    dep = apps.read_namespaced_deployment("api", "default")
    assert _conds(dep)["Available"].reason == "MinimumReplicasUnavailable"
    assert dep.status.unavailable_replicas == 1 and not dep.status.ready_replicas
    assert _conds(dep)["Progressing"].reason == "ReplicaSetUpdated"
    entries = [e for e in _runtime(cluster) if e["pod"] == name]
    assert entries[0]["ok"] is False and entries[0]["rule"] == "test.api-config" and entries[0]["exit_code"] == 2
    assert entries[0]["cluster"] == "demo-kfp-cluster" and entries[0]["namespace"] == "default"
    assert len([e for e in entries if not e["ok"]]) == 1  # the same failure again is not a new decision

    # the fix: the next restart starts it; restartCount and the previous run's log stay
    v1.create_namespaced_config_map("default", {"metadata": {"name": "api-config"}, "data": {"a": "1"}})
    pod = wait_until(lambda: (lambda p: p if _ready(p) else None)(_pod(v1, "api")), timeout=20, what="api Ready")
    cs = pod.status.container_statuses[0]
    assert cs.restart_count >= 3 and cs.state.running and cs.last_state.terminated.exit_code == 2
    assert v1.read_namespaced_pod_log(name, "default") == "api serving on :8888\n"
    assert "F0101" in v1.read_namespaced_pod_log(name, "default", previous=True)
    dep = wait_until(lambda: (lambda d: d if _conds(d)["Available"].status == "True" else None)(
        apps.read_namespaced_deployment("api", "default")), what="Available")
    assert _conds(dep)["Progressing"].reason == "NewReplicaSetAvailable" and dep.status.available_replicas == 1
    assert _runtime(cluster)[-1]["ok"] is True and _runtime(cluster)[-1]["pod"] == name


def test_progress_deadline_and_readiness(cluster):
    v1, apps = _apis(cluster)
    cluster.rules["web"] = lambda view, pod, c: Verdict(True, ready=False, rule="test.backend-down",
                                                        message="its backend is down")
    _deploy(apps, "web", container={"name": "web", "readinessProbe": {"httpGet": {"path": "/healthz",
                                                                                  "port": 8080}}},
            dep={"progressDeadlineSeconds": 30})  # x 0.01: 0.3 s
    wait_until(lambda: (lambda p: p and p.status.phase == "Running")(_pod(v1, "web")), what="web Running")
    dep = wait_until(lambda: (lambda d: d if _conds(d).get("Progressing") and _conds(d)["Progressing"].status
                              == "False" else None)(apps.read_namespaced_deployment("web", "default")),
                     what="ProgressDeadlineExceeded")
    prog = _conds(dep)["Progressing"]
    assert prog.reason == "ProgressDeadlineExceeded" and prog.message.endswith("has timed out progressing.")
    pod = _pod(v1, "web")
    assert pod.status.phase == "Running" and pod.status.container_statuses[0].state.running
    assert _conds(pod)["Ready"].status == "False" and _conds(pod)["Ready"].message == \
        "containers with unready status: [web]"
    assert ("Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503") in \
        _events(v1, pod.metadata.name)
    # the probe asks the judge again: once the backend is up, the pod is Ready and the rollout completes
    cluster.rules["web"] = lambda view, pod, c: ALLOW
    dep = wait_until(lambda: (lambda d: d if _conds(d)["Progressing"].status == "True" and
                              _conds(d)["Available"].status == "True" else None)(
        apps.read_namespaced_deployment("web", "default")), what="Available after the fix")
    assert _conds(dep)["Progressing"].reason == "NewReplicaSetAvailable"


def test_inverse_proxy_hostname_only_while_the_agent_runs(cluster):
    v1, apps = _apis(cluster)
    v1.create_namespace({"metadata": {"name": "kubeflow"}})
    broken = {"on": True}
    cluster.rules["proxy-agent"] = lambda view, pod, c: (
        Verdict(False, logs=("could not register the inverse proxy",), rule="test.agent") if broken["on"] else ALLOW)
    _deploy(apps, "proxy-agent", ns="kubeflow", container={"name": "proxy-agent"})
    wait_until(lambda: (lambda p: p and p.status.container_statuses and
                        p.status.container_statuses[0].restart_count >= 3)(_pod(v1, "proxy-agent", "kubeflow")),
               what="agent crashing")  # 10+20 s back-off x speed: past the 20 s x speed of a registration
    cms = [c.metadata.name for c in v1.list_namespaced_config_map("kubeflow").items]
    assert "inverse-proxy-config" not in cms
    broken["on"] = False
    host = wait_until(lambda: ((v1.read_namespaced_config_map("inverse-proxy-config", "kubeflow").data or {})
                               .get("Hostname") if "inverse-proxy-config" in
                               [c.metadata.name for c in v1.list_namespaced_config_map("kubeflow").items] else None),
                      timeout=20, what="Hostname")
    assert host.endswith("-dot-us-central1.pipelines.googleusercontent.com")


def test_kubectl_get_describe_logs(cluster, tmp_path):
    kubectl = require_kubectl()
    v1, apps = _apis(cluster)
    cluster.rules["ml-pipeline-api-server"] = lambda view, pod, c: Verdict(
        False, logs=("I0101 Initializing client manager", "F0101 Failed to connect to mysql"), exit_code=1)
    _deploy(apps, "ml-pipeline", container={"name": "ml-pipeline-api-server"})
    pod = wait_until(lambda: (lambda p: p if p and p.status.container_statuses and
                              p.status.container_statuses[0].restart_count >= 2 else None)(_pod(v1, "ml-pipeline")),
                     what="restarts")
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig(tmp_path / "kubeconfig")), "HOME": str(tmp_path)}

    def k(*args, check=True):
        p = subprocess.run([kubectl, "--cache-dir", str(tmp_path / "cache"), *args], env=env, capture_output=True,
                           text=True, timeout=60)
        assert not check or p.returncode == 0, p.stderr
        return p

    row = k("get", "pods", "-l", "app=ml-pipeline").stdout.splitlines()[1].split()
    assert row[0] == pod.metadata.name and row[1] == "0/1" and row[2] == "CrashLoopBackOff"
    assert int(row[3]) >= 2 and row[5] == "ago)"  # RESTARTS: "2 (0s ago)"
    desc = k("describe", "pod", pod.metadata.name).stdout
    assert "Reason:       CrashLoopBackOff" in desc and "Last State:     Terminated" in desc
    assert "Exit Code:    1" in desc and "Back-off restarting failed container ml-pipeline-api-server" in desc
    assert k("logs", pod.metadata.name).stdout == "I0101 Initializing client manager\nF0101 Failed to connect to mysql\n"
    assert k("logs", pod.metadata.name, "--previous", "--tail=1").stdout == "F0101 Failed to connect to mysql\n"
    # a container waiting on its config: kubectl shows the kubelet's refusal
    _deploy(apps, "cfg", container={"envFrom": [{"configMapRef": {"name": "pipeline-install-config"}}]})
    wait_until(lambda: _waiting_for(v1, "cfg", "CreateContainerConfigError"), what="config error")
    cfg = _pod(v1, "cfg")
    assert k("get", "pod", cfg.metadata.name).stdout.splitlines()[1].split()[2] == "CreateContainerConfigError"
    out = k("logs", cfg.metadata.name, check=False)
    assert out.returncode == 1 and out.stderr.strip() == (
        f'Error from server (BadRequest): container "main" in pod "{cfg.metadata.name}" is waiting to start: '
        "CreateContainerConfigError")
    assert 'Error: configmap "pipeline-install-config" not found' in k("describe", "pod", cfg.metadata.name).stdout


@pytest.mark.sandbox_speed(0.002)
def test_gke_cluster_nodes_and_runtime_log(sandbox, tmp_path):
    """Inside the whole sandbox: the cluster's Nodes model its node pool (regional, GKE_METADATA), and the pod
    runtime's decisions are in the request log (`api: runtime`), shown by `sandbox requests --runtime`."""
    sandbox.enable("compute", "container", "iam")
    sandbox.profile(**{"compute.network_insert": 1, "compute.subnetwork_insert": 1, "compute.subnet_not_ready": 0})
    network_and_subnet(api("compute"), P, "pods-net", "pods-subnet", "us-central1", cidr="10.128.0.0/20")
    clusters = api("container").projects().locations().clusters()
    parent = f"projects/{P}/locations/us-central1"
    clusters.create(parent=parent, body={"cluster": {
        "name": "pods-cluster", "network": "pods-net", "subnetwork": "pods-subnet",
        "ipAllocationPolicy": {"useIpAliases": True},
        "workloadIdentityConfig": {"workloadPool": f"{P}.svc.id.goog"},
        "nodePools": [{"name": "kfp-pool", "initialNodeCount": 1, "config": {
            "machineType": "e2-standard-4", "workloadMetadataConfig": {"mode": "GKE_METADATA"}}}]}}).execute()
    name = f"{parent}/clusters/pods-cluster"
    cluster = wait_until(lambda: (lambda c: c if c["status"] == "RUNNING" else None)(
        clusters.get(name=name).execute()), timeout=60)
    creds, _ = google.auth.default(scopes=TOKEN_SCOPES)
    creds.refresh(Request())
    v1 = core_api(cluster, creds.token, tmp_path)
    nodes = v1.list_node().items
    assert len(nodes) == 3 and {n.metadata.labels["topology.kubernetes.io/zone"] for n in nodes} == \
        set(cluster["locations"])
    assert all(n.metadata.name.startswith("gke-pods-cluster-kfp-pool-") for n in nodes)
    assert all(n.metadata.labels["iam.gke.io/gke-metadata-server-enabled"] == "true" and
               n.metadata.labels["cloud.google.com/gke-nodepool"] == "kfp-pool" and
               n.spec.provider_id.startswith(f"gce://{P}/us-central1-") for n in nodes)

    apps = client.AppsV1Api(v1.api_client)
    _deploy(apps, "db", container={"env": [{"name": "U", "valueFrom": {"secretKeyRef": {
        "name": "mysql-secret", "key": "username"}}}]})
    entry = wait_until(lambda: next((r for r in sandbox.requests(api="runtime")
                                     if r.get("rule") == "kubelet.CreateContainerConfigError"), None), timeout=20)
    assert entry["cluster"] == "pods-cluster" and entry["namespace"] == "default" and entry["ok"] is False
    assert entry["message"] == 'secret "mysql-secret" not found' and not entry["mutating"]
    out = subprocess.run([sys.executable, "-m", "sandbox", "requests", "--runtime", "--url", sandbox.url],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert f"NO  pods-cluster default/{entry['pod']} main: kubelet.CreateContainerConfigError: " \
           'secret "mysql-secret" not found' in out.stdout
    assert all(" RUNTIME " not in line for line in out.stdout.splitlines())
    plain = subprocess.run([sys.executable, "-m", "sandbox", "requests", "--url", sandbox.url],
                           capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert plain.returncode == 0 and "kubelet.CreateContainerConfigError" in plain.stdout
