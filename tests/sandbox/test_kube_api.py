"""The sandbox's per-cluster Kubernetes API, driven by the real `kubernetes` Python client over TLS."""
from __future__ import annotations

import json
import threading
import time

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from .kube_helpers import TOKEN, KubeThread, kube, wait_until  # noqa: F401  (fixture)


def _status(exc: client.ApiException) -> dict:
    return json.loads(exc.body)


def _cm(name, ns="default", labels=None, data=None):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}}, "data": data or {}}


def _deployment(name, ns="default", replicas=1, image="nginx:1.27", labels=None):
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "main", "image": image}]}}}}


def _raw(kt: KubeThread, method: str, path: str, token: str | None = TOKEN, body=None, headers=None):
    http = urllib3.PoolManager(ca_certs=str(kt.ca_file()), cert_reqs="CERT_REQUIRED")
    h = {"Content-Type": "application/json", **(headers or {})}
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    return http.request(method, f"{kt.host}{path}", body=data, headers=h)


# ------------------------------------------------------------------------------------------ TLS, auth, discovery
def test_tls_and_bearer_token(kube):
    # TLS verification against the server's own CA succeeds (IP SAN 127.0.0.1), and "localhost" too
    r = _raw(kube, "GET", "/version", token=None)
    assert r.status == 200 and json.loads(r.data)["major"] == "1"
    # everything else needs a valid bearer token
    for tok in (None, "wrong-token"):
        r = _raw(kube, "GET", "/api/v1/namespaces", token=tok)
        assert r.status == 401
        body = json.loads(r.data)
        assert body["kind"] == "Status" and body["reason"] == "Unauthorized" and body["code"] == 401
    with pytest.raises(client.ApiException) as ei:
        client.CoreV1Api(kube.api_client(token="nope")).list_namespace()
    assert ei.value.status == 401
    assert "BEGIN CERTIFICATE" in kube.srv.ca_pem


def test_discovery_documents(kube):
    api = kube.api_client()
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
    for g in ("apps", "rbac.authorization.k8s.io", "apiextensions.k8s.io", "scheduling.k8s.io", "batch"):
        assert g in groups
    assert groups["apps"].preferred_version.group_version == "apps/v1"
    core = {r.name: r for r in client.CoreV1Api(api).get_api_resources().resources}
    assert core["configmaps"].namespaced and not core["namespaces"].namespaced
    assert core["configmaps"].kind == "ConfigMap" and "watch" in core["configmaps"].verbs
    apps = {r.name: r for r in client.AppsV1Api(api).get_api_resources().resources}
    assert {"deployments", "deployments/status", "deployments/scale", "statefulsets"} <= set(apps)
    r = _raw(kube, "GET", "/apis/rbac.authorization.k8s.io")
    assert json.loads(r.data)["kind"] == "APIGroup"
    # aggregated discovery (what kubectl asks for first), and the legacy format for clients that don't
    r = _raw(kube, "GET", "/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"})
    assert r.headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    agg = json.loads(r.data)
    apps_v1 = next(i for i in agg["items"] if i["metadata"]["name"] == "apps")["versions"][0]
    dep = next(x for x in apps_v1["resources"] if x["resource"] == "deployments")
    assert dep["scope"] == "Namespaced" and dep["responseKind"]["kind"] == "Deployment"
    assert {s["subresource"] for s in dep["subresources"]} == {"status", "scale"}
    r = _raw(kube, "GET", "/apis", headers={"Accept": "application/json"})
    assert r.headers["Content-Type"].startswith("application/json") and json.loads(r.data)["kind"] == "APIGroupList"
    # openapi v3 index and a group-version document
    idx = json.loads(_raw(kube, "GET", "/openapi/v3").data)["paths"]
    assert "api/v1" in idx and "apis/apps/v1" in idx
    doc = json.loads(_raw(kube, "GET", idx["apis/apps/v1"]["serverRelativeURL"]).data)
    assert any("patch" in p for p in doc["paths"].values())


def test_unknown_resources_are_404(kube):
    for path in ("/apis/example.com/v1/widgets", "/api/v1/widgets", "/apis/apps/v9/deployments",
                 "/apis/apps/v1/namespaces/default/widgets/x"):
        r = _raw(kube, "GET", path)
        assert r.status == 404, path
        assert json.loads(r.data)["reason"] == "NotFound"
    dyn = DynamicClient(kube.api_client(), cache_file=str(kube.state_dir.parent / "dyn-cache.json"))
    with pytest.raises(ResourceNotFoundError):
        dyn.resources.get(api_version="example.com/v1", kind="Widget")


# ------------------------------------------------------------------------------------------ CRUD + Status errors
def test_typed_crud_and_status_errors(kube):
    api = kube.api_client()
    v1, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ns = v1.create_namespace({"metadata": {"name": "kubeflow"}})
    assert ns.status.phase == "Active" and ns.metadata.uid and int(ns.metadata.resource_version) > 0
    # the namespace gets what kube-controller-manager puts in every namespace
    wait_until(lambda: v1.read_namespaced_service_account("default", "kubeflow"))
    assert "ca.crt" in v1.read_namespaced_config_map("kube-root-ca.crt", "kubeflow").data

    cm = v1.create_namespaced_config_map("kubeflow", _cm("params", "kubeflow", data={"a": "1"}))
    assert cm.metadata.creation_timestamp is not None and cm.metadata.generation is None
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_config_map("kubeflow", _cm("params", "kubeflow"))
    assert ei.value.status == 409 and _status(ei.value)["reason"] == "AlreadyExists"
    assert _status(ei.value)["message"] == 'configmaps "params" already exists'
    with pytest.raises(client.ApiException) as ei:
        v1.read_namespaced_config_map("missing", "kubeflow")
    assert ei.value.status == 404 and _status(ei.value)["details"] == {"name": "missing", "kind": "configmaps"}
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_config_map("nowhere", _cm("x", "nowhere"))
    assert ei.value.status == 404 and _status(ei.value)["message"] == 'namespaces "nowhere" not found'
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_config_map("kubeflow", _cm("Bad_Name", "kubeflow"))
    assert ei.value.status == 422 and _status(ei.value)["reason"] == "Invalid"
    assert _status(ei.value)["details"]["causes"][0]["field"] == "metadata.name"

    # update: resourceVersion is a precondition
    cur = v1.read_namespaced_config_map("params", "kubeflow")
    cur.data["a"] = "2"
    upd = v1.replace_namespaced_config_map("params", "kubeflow", cur)
    assert upd.data["a"] == "2" and int(upd.metadata.resource_version) > int(cur.metadata.resource_version)
    cur.data["a"] = "3"  # still carries the old resourceVersion
    with pytest.raises(client.ApiException) as ei:
        v1.replace_namespaced_config_map("params", "kubeflow", cur)
    assert ei.value.status == 409 and _status(ei.value)["reason"] == "Conflict"

    # secrets: stringData becomes data
    s = v1.create_namespaced_secret("kubeflow", {"metadata": {"name": "mysql-secret"},
                                                 "stringData": {"username": "root", "password": ""}})
    assert s.data == {"username": "cm9vdA==", "password": ""} and s.type == "Opaque"

    # deployments: validation and generation
    bad = _deployment("web", "kubeflow")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(client.ApiException) as ei:
        apps.create_namespaced_deployment("kubeflow", bad)
    assert ei.value.status == 422
    d = apps.create_namespaced_deployment("kubeflow", _deployment("web", "kubeflow"))
    assert d.metadata.generation == 1
    for _ in range(20):  # read-modify-write, retried on Conflict: its controller writes status meanwhile
        d = apps.read_namespaced_deployment("web", "kubeflow")
        d.spec.replicas = 2
        try:
            d2 = apps.replace_namespaced_deployment("web", "kubeflow", d)
            break
        except client.ApiException as exc:
            assert exc.status == 409

    assert d2.metadata.generation == 2

    # delete, then 404
    st = v1.delete_namespaced_config_map("params", "kubeflow")  # a Status (a plain dict in client >= 35)
    assert (st["status"] if isinstance(st, dict) else st.status) == "Success"
    with pytest.raises(client.ApiException) as ei:
        v1.delete_namespaced_config_map("params", "kubeflow")
    assert ei.value.status == 404


def test_cluster_scoped_kinds(kube):
    api = kube.api_client()
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_cluster_role({"metadata": {"name": "system:kfp-reader"},
                              "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
    assert rbac.read_cluster_role("system:kfp-reader").rules[0].verbs == ["get"]
    pcs = client.SchedulingV1Api(api).list_priority_class().items
    assert "system-cluster-critical" in {p.metadata.name for p in pcs}
    r = _raw(kube, "GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/clusterroles")
    assert r.status == 404
    nodes = client.CoreV1Api(api).list_node().items
    assert nodes and all(n.status.conditions[0].type == "Ready" for n in nodes)


# ------------------------------------------------------------------------------------------ selectors, paging
def test_label_and_field_selectors(kube):
    v1 = client.CoreV1Api(kube.api_client())
    for name, labels in (("a", {"app": "ml", "tier": "web"}), ("b", {"app": "ml", "tier": "db"}),
                         ("c", {"app": "other"}), ("d", {})):
        v1.create_namespaced_config_map("default", _cm(name, labels=labels))

    def names(**kw):
        return sorted(i.metadata.name for i in v1.list_namespaced_config_map("default", **kw).items
                      if i.metadata.name != "kube-root-ca.crt")

    assert names(label_selector="app=ml") == ["a", "b"]
    assert names(label_selector="app==ml,tier=db") == ["b"]
    assert names(label_selector="app!=ml") == ["c", "d"]
    assert names(label_selector="tier in (web, db)") == ["a", "b"]
    assert names(label_selector="app notin (ml)") == ["c", "d"]
    assert names(label_selector="tier") == ["a", "b"]
    assert names(label_selector="!tier") == ["c", "d"]
    assert names(label_selector="app in (ml,other),!tier") == ["c"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert names(field_selector="metadata.name!=c", label_selector="app") == ["a", "b"]
    assert [i.metadata.name for i in v1.list_config_map_for_all_namespaces(
        field_selector="metadata.namespace=default,metadata.name=a").items] == ["a"]
    with pytest.raises(client.ApiException) as ei:
        v1.list_namespaced_config_map("default", field_selector="data.x=1")
    assert ei.value.status == 400
    with pytest.raises(client.ApiException) as ei:
        v1.list_namespaced_config_map("default", label_selector="a in (b")
    assert ei.value.status == 400


def test_pagination_and_deletecollection(kube):
    v1 = client.CoreV1Api(kube.api_client())
    for i in range(7):
        v1.create_namespaced_config_map("default", _cm(f"cm-{i}", labels={"batch": "x"}))
    seen, cont = [], None
    while True:
        page = v1.list_namespaced_config_map("default", label_selector="batch=x", limit=3, _continue=cont)
        seen += [i.metadata.name for i in page.items]
        cont = page.metadata._continue
        if not cont:
            break
    assert seen == [f"cm-{i}" for i in range(7)]
    v1.delete_collection_namespaced_config_map("default", label_selector="batch=x")
    assert v1.list_namespaced_config_map("default", label_selector="batch=x").items == []


# ------------------------------------------------------------------------------------------ patches, SSA
def test_patch_content_types(kube):
    api = kube.api_client()
    v1, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    v1.create_namespaced_config_map("default", _cm("p", data={"a": "1", "b": "2"}))
    # merge patch (the Python client sends merge-patch for a dict body by default)
    out = v1.patch_namespaced_config_map("p", "default", {"data": {"b": None, "c": "3"}})
    assert out.data == {"a": "1", "c": "3"}
    # JSON patch
    out = v1.patch_namespaced_config_map("p", "default", [{"op": "replace", "path": "/data/a", "value": "9"},
                                                          {"op": "add", "path": "/metadata/labels",
                                                           "value": {"x": "y"}}])
    assert out.data["a"] == "9" and out.metadata.labels == {"x": "y"}
    r = _raw(kube, "PATCH", "/api/v1/namespaces/default/configmaps/p",
             body=[{"op": "test", "path": "/data/a", "value": "0"}],
             headers={"Content-Type": "application/json-patch+json"})
    assert r.status == 422
    # a stale resourceVersion in a patch is a precondition failure
    r = _raw(kube, "PATCH", "/api/v1/namespaces/default/configmaps/p",
             body={"metadata": {"resourceVersion": "1"}, "data": {"a": "x"}},
             headers={"Content-Type": "application/merge-patch+json"})
    assert r.status == 409 and json.loads(r.data)["reason"] == "Conflict"
    # strategic merge: containers are merged by name
    apps.create_namespaced_deployment("default", _deployment("web"))
    r = _raw(kube, "PATCH", "/apis/apps/v1/namespaces/default/deployments/web",
             body={"spec": {"template": {"spec": {"containers": [
                 {"name": "sidecar", "image": "busybox:1"}, {"name": "main", "image": "nginx:2"}]}}}},
             headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status == 200, r.data
    cs = json.loads(r.data)["spec"]["template"]["spec"]["containers"]
    assert {c["name"]: c["image"] for c in cs} == {"main": "nginx:2", "sidecar": "busybox:1"}
    assert json.loads(r.data)["metadata"]["generation"] == 2
    r = _raw(kube, "PATCH", "/api/v1/namespaces/default/configmaps/p", body={"data": {}},
             headers={"Content-Type": "text/plain"})
    assert r.status == 415


def test_server_side_apply_with_dynamic_client(kube):
    dyn = DynamicClient(kube.api_client(), cache_file=str(kube.state_dir.parent / "dyn-cache.json"))
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    body = _cm("applied", labels={"app": "kfp"}, data={"a": "1", "b": "2"})
    before = len(kube.mutating())
    obj = cms.server_side_apply(body=body, namespace="default", field_manager="mlops-install")
    assert obj.data.a == "1"
    assert [(m.manager, m.operation) for m in obj.metadata.managedFields] == [("mlops-install", "Apply")]
    rv = obj.metadata.resourceVersion
    # a no-op re-apply changes nothing (same resourceVersion), though it is still a mutating request
    again = cms.server_side_apply(body=body, namespace="default", field_manager="mlops-install")
    assert again.metadata.resourceVersion == rv
    assert len(kube.mutating()) == before + 2
    # another writer sets a field; re-applying a different value conflicts unless forced
    cms.patch(name="applied", namespace="default", body={"data": {"a": "other"}},
              content_type="application/merge-patch+json", field_manager="someone-else")
    body2 = _cm("applied", labels={"app": "kfp"}, data={"a": "1"})  # also drops "b"
    with pytest.raises(Exception) as ei:
        cms.server_side_apply(body=body2, namespace="default", field_manager="mlops-install")
    body_text = ei.value.body.decode() if isinstance(ei.value.body, bytes) else str(ei.value.body)
    assert ei.value.status == 409 and "conflict" in body_text.lower()
    obj = cms.server_side_apply(body=body2, namespace="default", field_manager="mlops-install",
                                 force_conflicts=True)
    assert dict(obj.data) == {"a": "1"}  # forced value, and "b" (no longer applied by its manager) removed
    # SSA through the typed client's raw patch path, with application/apply-patch+yaml
    r = _raw(kube, "PATCH", "/apis/apps/v1/namespaces/default/deployments/ssa?fieldManager=kubectl",
             body=_deployment("ssa"), headers={"Content-Type": "application/apply-patch+yaml"})
    assert r.status == 201
    r = _raw(kube, "PATCH", "/apis/apps/v1/namespaces/default/deployments/ssa",
             body=_deployment("ssa"), headers={"Content-Type": "application/apply-patch+yaml"})
    assert r.status == 422  # fieldManager is required for apply
    r = _raw(kube, "PATCH", "/api/v1/namespaces/default/configmaps/dry?fieldManager=x&dryRun=All",
             body=_cm("dry"), headers={"Content-Type": "application/apply-patch+yaml"})
    assert r.status == 201
    assert _raw(kube, "GET", "/api/v1/namespaces/default/configmaps/dry").status == 404


def test_dynamic_client_crud(kube):
    dyn = DynamicClient(kube.api_client(), cache_file=str(kube.state_dir.parent / "dyn-cache.json"))
    deps = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    deps.create(body=_deployment("dyn"), namespace="default")
    got = deps.get(name="dyn", namespace="default")
    assert got.spec.replicas == 1
    listed = deps.get(namespace="default", label_selector="app=dyn")
    assert [i.metadata.name for i in listed.items] == ["dyn"]
    deps.delete(name="dyn", namespace="default")
    # the Deployment's ReplicaSets and Pods are garbage-collected with it
    wait_until(lambda: not client.CoreV1Api(kube.api_client()).list_namespaced_pod(
        "default", label_selector="app=dyn").items, what="pods gone")


# ------------------------------------------------------------------------------------------ watch
def test_watch_streams_events(kube):
    v1 = client.CoreV1Api(kube.api_client())
    v1.create_namespaced_config_map("default", _cm("existing", labels={"w": "1"}))
    events: list[tuple[str, str]] = []
    watching = threading.Event()  # set once the watch has delivered its first event: it is established

    def writer():
        assert watching.wait(timeout=30)
        v1.create_namespaced_config_map("default", _cm("new", labels={"w": "1"}))
        v1.create_namespaced_config_map("default", _cm("ignored", labels={"w": "2"}))
        v1.patch_namespaced_config_map("new", "default", {"data": {"k": "v"}})
        v1.delete_namespaced_config_map("new", "default")

    t = threading.Thread(target=writer)
    t.start()
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, "default", label_selector="w=1", timeout_seconds=30):
        events.append((ev["type"], ev["object"].metadata.name))
        watching.set()
        if len(events) == 4:
            w.stop()
    t.join()
    assert events == [("ADDED", "existing"), ("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "new")]

    # resume from a resourceVersion: only later events
    rv = v1.list_namespaced_config_map("default").metadata.resource_version
    v1.create_namespaced_config_map("default", _cm("later"))
    w = watch.Watch()
    got = []
    for ev in w.stream(v1.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=2):
        got.append((ev["type"], ev["object"].metadata.name))
        w.stop()
    assert got == [("ADDED", "later")]


def test_watch_timeout_and_gone(kube):
    t0 = time.monotonic()
    out = {}
    # a field-selector watch (what kubectl wait does) sees the existing object first; run it meanwhile
    t = threading.Thread(target=lambda: out.setdefault("r", _raw(
        kube, "GET", "/api/v1/namespaces?watch=true&timeoutSeconds=1&fieldSelector=metadata.name%3Ddefault")))
    t.start()
    r = _raw(kube, "GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1&resourceVersion=999999")
    assert r.status == 200 and time.monotonic() - t0 >= 0.9
    assert r.data == b""
    t.join()
    lines = [json.loads(x) for x in out["r"].data.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [("ADDED", "default")]


# ------------------------------------------------------------------------------------------ CRDs
def _crd(plural="widgets", group="example.com", kind="Widget", scope="Namespaced"):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": scope,
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List",
                               "shortNames": ["wd"]},
                     "versions": [{"name": "v1alpha1", "served": True, "storage": False,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}},
                                  {"name": "v1", "served": True, "storage": True,
                                   "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]}}


def test_crd_adds_resources_once_established(tmp_path):
    kt = KubeThread(tmp_path / "kube", speed=1.0)  # establishment takes ~1 s here: observable on a loaded machine
    kt.start()
    try:
        api = kt.api_client()
        ext = client.ApiextensionsV1Api(api)
        ext.create_custom_resource_definition(_crd())
        # not yet Established: not in discovery, and its paths are unknown
        assert _raw(kt, "GET", "/apis/example.com/v1").status == 404
        def established():
            st = ext.read_custom_resource_definition("widgets.example.com").status
            return st and any(c.type == "Established" and c.status == "True" for c in st.conditions or [])

        wait_until(established, what="CRD Established")
        crd = ext.read_custom_resource_definition("widgets.example.com")
        assert crd.status.accepted_names.kind == "Widget" and crd.status.stored_versions == ["v1"]
        group = json.loads(_raw(kt, "GET", "/apis/example.com").data)
        assert group["preferredVersion"]["version"] == "v1"
        assert [v["version"] for v in group["versions"]] == ["v1", "v1alpha1"]
        co = client.CustomObjectsApi(api)
        w = co.create_namespaced_custom_object("example.com", "v1", "default", "widgets",
                                               {"apiVersion": "example.com/v1", "kind": "Widget",
                                                "metadata": {"name": "w1"}, "spec": {"size": 3}})
        assert w["metadata"]["generation"] == 1
        # the status subresource: the main resource ignores status, /status takes only status
        w["status"] = {"ok": True}
        w2 = co.replace_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1", w)
        assert "status" not in w2
        w2["status"] = {"ok": True}
        w3 = co.replace_namespaced_custom_object_status("example.com", "v1", "default", "widgets", "w1", w2)
        assert w3["status"] == {"ok": True} and w3["metadata"]["generation"] == 1
        # served at the other version as well
        assert co.get_namespaced_custom_object("example.com", "v1alpha1", "default", "widgets", "w1")[
            "apiVersion"] == "example.com/v1alpha1"
        dyn = DynamicClient(api, cache_file=str(tmp_path / "dyn.json"))
        assert dyn.resources.get(api_version="example.com/v1", kind="Widget").namespaced
        items = co.list_namespaced_custom_object("example.com", "v1", "default", "widgets")["items"]
        assert [i["metadata"]["name"] for i in items] == ["w1"] and items[0]["kind"] == "Widget"
        # deleting the CRD deletes its objects and its discovery entries
        ext.delete_custom_resource_definition("widgets.example.com")
        assert _raw(kt, "GET", "/apis/example.com/v1/namespaces/default/widgets").status == 404
        with pytest.raises(client.ApiException) as ei:
            ext.create_custom_resource_definition({**_crd(), "metadata": {"name": "wrong.example.com"}})
        assert ei.value.status == 422
    finally:
        kt.close()


# ------------------------------------------------------------------------------------------ controllers
def test_deployment_available_and_inverse_proxy_hostname(kube):
    api = kube.api_client()
    v1, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    v1.create_namespace({"metadata": {"name": "kubeflow"}})
    v1.create_namespaced_config_map("kubeflow", _cm("inverse-proxy-config", "kubeflow"))
    apps.create_namespaced_deployment("kubeflow", _deployment("proxy-agent", "kubeflow"))
    apps.create_namespaced_deployment("kubeflow", _deployment("ml-pipeline", "kubeflow", replicas=2))
    d = apps.read_namespaced_deployment("ml-pipeline", "kubeflow")
    assert not d.status or not d.status.available_replicas  # not instantly

    def available(name):
        st = apps.read_namespaced_deployment_status(name, "kubeflow").status
        if st is None:
            return False
        conds = {c.type: c.status for c in (st.conditions or [])}
        return conds.get("Available") == "True" and st.available_replicas == st.replicas and st

    st = wait_until(lambda: available("ml-pipeline"), timeout=10, what="Deployment Available")
    assert st.ready_replicas == 2 and st.observed_generation == 1
    pods = v1.list_namespaced_pod("kubeflow", label_selector="app=ml-pipeline").items
    assert len(pods) == 2 and all(p.status.phase == "Running" for p in pods)
    host = wait_until(lambda: (v1.read_namespaced_config_map("inverse-proxy-config", "kubeflow").data or {})
                      .get("Hostname"), timeout=10, what="inverse-proxy Hostname")
    assert host.endswith("-dot-us-central1.pipelines.googleusercontent.com")
    # scaling: status follows the new spec
    apps.patch_namespaced_deployment_scale("ml-pipeline", "kubeflow", {"spec": {"replicas": 3}})
    wait_until(lambda: (apps.read_namespaced_deployment("ml-pipeline", "kubeflow").status.ready_replicas == 3),
               timeout=10, what="scaled")
    assert len(v1.list_namespaced_pod("kubeflow", label_selector="app=ml-pipeline").items) == 3


def test_proxy_agent_creates_configmap_when_absent(kube):
    apps = client.AppsV1Api(kube.api_client())
    apps.create_namespaced_deployment("default", _deployment("proxy-agent"))
    v1 = client.CoreV1Api(kube.api_client())

    def hostname():
        try:
            return (v1.read_namespaced_config_map("inverse-proxy-config", "default").data or {}).get("Hostname")
        except client.ApiException:
            return None

    assert wait_until(hostname, timeout=10, what="Hostname")


def test_namespace_termination(tmp_path):
    kube = KubeThread(tmp_path / "kube", speed=0.2)  # termination takes ~1 s here
    kube.start()
    try:
        _namespace_termination(kube)
    finally:
        kube.close()


def _namespace_termination(kube):
    v1 = client.CoreV1Api(kube.api_client())
    v1.create_namespace({"metadata": {"name": "gone"}})
    v1.create_namespaced_config_map("gone", _cm("x", "gone"))
    v1.delete_namespace("gone")  # the client reads the answer as a V1Status: the phase is looked up below
    r = _raw(kube, "GET", "/api/v1/namespaces/gone")
    assert json.loads(r.data)["status"]["phase"] == "Terminating"
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_config_map("gone", _cm("y", "gone"))
    assert ei.value.status == 403

    def gone():
        try:
            v1.read_namespace("gone")
            return False
        except client.ApiException as exc:
            return exc.status == 404

    wait_until(gone, timeout=10, what="namespace deleted")
    assert _raw(kube, "GET", "/api/v1/namespaces/gone/configmaps/x").status == 404


# ------------------------------------------------------------------------------------------ persistence, log
def test_restart_keeps_state(tmp_path):
    kt = KubeThread(tmp_path / "kube")
    kt.start()
    try:
        v1 = client.CoreV1Api(kt.api_client())
        v1.create_namespace({"metadata": {"name": "kubeflow"}})
        cm = v1.create_namespaced_config_map("kubeflow", _cm("keep", "kubeflow", data={"x": "1"}))
        client.AppsV1Api(kt.api_client()).create_namespaced_deployment("kubeflow", _deployment("d", "kubeflow"))
        ca = kt.srv.ca_pem
        kt.stop()
    finally:
        kt.close()
    kt2 = KubeThread(tmp_path / "kube")
    kt2.start()
    try:
        assert kt2.srv.ca_pem == ca
        v1 = client.CoreV1Api(kt2.api_client())
        got = v1.read_namespaced_config_map("keep", "kubeflow")
        assert got.metadata.uid == cm.metadata.uid and got.data == {"x": "1"}
        assert got.metadata.resource_version == cm.metadata.resource_version
        new = v1.create_namespaced_config_map("kubeflow", _cm("after", "kubeflow"))
        assert int(new.metadata.resource_version) > int(cm.metadata.resource_version)
        # time-based transitions continue from stored timestamps
        wait_until(lambda: client.AppsV1Api(kt2.api_client()).read_namespaced_deployment("d", "kubeflow")
                   .status.available_replicas == 1, timeout=10, what="Available after restart")
    finally:
        kt2.close()


def test_request_log(kube):
    v1 = client.CoreV1Api(kube.api_client())
    n0 = len(kube.log)
    v1.create_namespaced_config_map("default", _cm("logme"))
    v1.read_namespaced_config_map("logme", "default")
    v1.patch_namespaced_config_map("logme", "default", {"data": {"a": "b"}})
    v1.delete_namespaced_config_map("logme", "default")
    entries = kube.log[n0:]
    assert [(e["method"], e["status"], e["mutating"]) for e in entries] == [
        ("POST", 201, True), ("GET", 200, False), ("PATCH", 200, True), ("DELETE", 200, True)]
    assert entries[0]["path"] == "/api/v1/namespaces/default/configmaps"
    assert all(isinstance(e["time"], float) for e in entries)


def test_fault_injection(kube):
    v1 = client.CoreV1Api(kube.api_client())
    kube.srv.inject_fault(r"/configmaps$", 500, method="GET", times=1)
    with pytest.raises(client.ApiException) as ei:
        v1.list_namespaced_config_map("default")
    assert ei.value.status == 500 and _status(ei.value)["reason"] == "InternalError"
    assert v1.list_namespaced_config_map("default").items is not None  # only once
    # a 503 carries Retry-After, which urllib3 (under the kubernetes client) honours by retrying
    n0 = len(kube.log)
    kube.srv.inject_fault(r"/configmaps$", 503, method="GET", times=1)
    v1.list_namespaced_config_map("default")
    assert [e["status"] for e in kube.log[n0:]] == [503, 200]
    kube.srv.inject_fault(r"/namespaces/default/secrets", 500, method="POST", times=-1, message="etcd is sad")
    for _ in range(2):
        with pytest.raises(client.ApiException) as ei:
            v1.create_namespaced_secret("default", {"metadata": {"name": "s"}})
        assert ei.value.status == 500 and _status(ei.value)["message"] == "etcd is sad"
    kube.srv.clear_faults()
    v1.create_namespaced_secret("default", {"metadata": {"name": "s"}})
    assert [e["status"] for e in kube.log if e["method"] == "POST"][-3:] == [500, 500, 201]


def test_pods_logs_events_and_tables(kube):
    api = kube.api_client()
    v1, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", _deployment("web", replicas=2))
    def running():
        pods = v1.list_namespaced_pod("default", label_selector="app=web").items
        return len(pods) == 2 and all(p.status.phase == "Running" for p in pods)

    wait_until(running, timeout=10, what="pods Running")
    pod = v1.list_namespaced_pod("default", label_selector="app=web").items[0]
    assert pod.metadata.owner_references[0].kind == "ReplicaSet" and pod.spec.node_name
    assert "simulated pod" in v1.read_namespaced_pod_log(pod.metadata.name, "default")
    reasons = {e.reason for e in v1.list_namespaced_event("default").items}
    assert {"ScalingReplicaSet", "SuccessfulCreate", "Scheduled", "Started"} <= reasons
    evs = v1.list_namespaced_event("default", field_selector=f"involvedObject.name={pod.metadata.name}").items
    assert evs and all(e.involved_object.name == pod.metadata.name for e in evs)
    # server-side printing, as kubectl get asks for it (list, and each watch event)
    accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    tab = json.loads(_raw(kube, "GET", "/apis/apps/v1/namespaces/default/deployments", headers=accept).data)
    assert tab["kind"] == "Table" and [c["name"] for c in tab["columnDefinitions"]][:2] == ["Name", "Ready"]
    assert tab["rows"][0]["cells"][:2] == ["web", "2/2"]
    assert tab["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    r = _raw(kube, "GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1", headers=accept)
    ev = json.loads(r.data.splitlines()[0])
    assert ev["type"] == "ADDED" and ev["object"]["kind"] == "Table"


def test_service_defaults_and_update(kube):
    v1 = client.CoreV1Api(kube.api_client())
    svc = v1.create_namespaced_service("default", {"metadata": {"name": "ml-pipeline"},
                                                   "spec": {"selector": {"app": "ml"}, "ports": [{"port": 8888}]}})
    ip = svc.spec.cluster_ip
    assert ip and svc.spec.type == "ClusterIP" and svc.spec.ports[0].target_port == 8888
    # an update that leaves the allocated IP out keeps it; changing it is refused
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ml-pipeline"},
            "spec": {"selector": {"app": "ml2"}, "ports": [{"port": 8888}]}}
    assert v1.replace_namespaced_service("ml-pipeline", "default", body).spec.cluster_ip == ip
    body["spec"]["clusterIP"] = "10.0.0.99"
    with pytest.raises(client.ApiException) as ei:
        v1.replace_namespaced_service("ml-pipeline", "default", body)
    assert ei.value.status == 422
    with pytest.raises(client.ApiException) as ei:
        v1.create_namespaced_service("default", {"metadata": {"name": "noports"}, "spec": {}})
    assert ei.value.status == 422


def test_deletion_policies_and_finalizers(kube):
    api = kube.api_client()
    v1, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    for name in ("fg", "orphan"):
        apps.create_namespaced_deployment("default", _deployment(name))
        wait_until(lambda n=name: apps.list_namespaced_replica_set("default", label_selector=f"app={n}").items,
                   what="ReplicaSet")
    apps.delete_namespaced_deployment("fg", "default", propagation_policy="Foreground")
    assert not apps.list_namespaced_replica_set("default", label_selector="app=fg").items
    assert not v1.list_namespaced_pod("default", label_selector="app=fg").items
    apps.delete_namespaced_deployment("orphan", "default", body=client.V1DeleteOptions(propagation_policy="Orphan"))
    rs = apps.list_namespaced_replica_set("default", label_selector="app=orphan").items
    assert len(rs) == 1 and not rs[0].metadata.owner_references
    # a finalizer keeps a deleted object (with deletionTimestamp) until it is removed
    v1.create_namespaced_config_map("default", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    v1.delete_namespaced_config_map("held", "default")
    held = v1.read_namespaced_config_map("held", "default")
    assert held.metadata.deletion_timestamp is not None
    v1.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(client.ApiException) as ei:
        v1.read_namespaced_config_map("held", "default")
    assert ei.value.status == 404


def test_deleted_pod_is_replaced(kube):
    api = kube.api_client()
    v1, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", _deployment("web"))

    def running_pod():
        pods = v1.list_namespaced_pod("default", label_selector="app=web").items
        return len(pods) == 1 and pods[0].status.phase == "Running" and pods[0]

    first = wait_until(running_pod, timeout=30, what="pod Running")
    v1.delete_namespaced_pod(first.metadata.name, "default")
    second = wait_until(lambda: (lambda p: p if p and p.metadata.name != first.metadata.name else None)(
        running_pod()), timeout=30, what="replacement pod")
    assert second.metadata.owner_references[0].name == first.metadata.owner_references[0].name
