"""KFP rendering (offline, from ../shared/fixtures/kfp-2.14.4): the installer's overlay, both local folder shapes,
the Python fallback, and ``mlops-install render``."""
from __future__ import annotations

import shutil

import pytest
import yaml

from backends.kfp import render as R
from installer.cli import main
from secrets_kfp_support import answers, kfp_fixture

PROJECT = "mlops-demo-project"


def _by(objs, kind, name):
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.mark.parametrize("mode", ["key", "workload-identity"])
def test_overlay_sets_params_drops_mysql_secret_and_annotates(mode):
    a = answers(PROJECT, mode)
    cs = R.render_part(a, "cluster-scoped")
    env = R.render_part(a, "env", R.params(a, "mlops-demo-project:us-central1:demo-ml-metadata"))
    assert len(cs.objects) == 15 and len(env.objects) == 75  # 76 upstream minus mysql-secret
    assert sum(o["kind"] == "CustomResourceDefinition" for o in cs.objects) == 11
    cm = _by(env.objects, "ConfigMap", "pipeline-install-config")["data"]
    assert cm["bucketName"] == "demo-artifact-store" and cm["gcsProjectId"] == PROJECT
    assert cm["gcsCloudSqlInstanceName"] == "mlops-demo-project:us-central1:demo-ml-metadata"
    assert cm["pipelineDb"] == "pipelinedb"  # upstream keys are kept (a merge, not a replace)
    assert not [o for o in env.objects if o["kind"] == "Secret" and o["metadata"]["name"] == "mysql-secret"]
    assert all(o["metadata"]["labels"]["mlops-install-env"] == "demo" for o in cs.objects + env.objects)
    runner = _by(env.objects, "ServiceAccount", "pipeline-runner")["metadata"].get("annotations") or {}
    proxy = _by(env.objects, "ServiceAccount", "kubeflow-pipelines-cloudsql-proxy")["metadata"].get("annotations") or {}
    if mode == "workload-identity":
        assert runner["iam.gke.io/gcp-service-account"] == a.names.kfp_sa_email
        assert proxy["iam.gke.io/gcp-service-account"] == a.names.gke_sa_email
    else:
        assert "iam.gke.io/gcp-service-account" not in runner
    # the overlay applied in Python (the default for rendered files) equals what kubectl kustomize builds
    assert env.tool == "the Python overlay"
    if mode == "key":
        return  # workload-identity exercises every transformation (a superset): compared once, there
    for part, r in (("cluster-scoped", cs), ("env", env)):
        kz = R.render_part(a, part, R.params(a, "mlops-demo-project:us-central1:demo-ml-metadata"), tool="kustomize")
        assert kz.tool in ("kubectl kustomize", "kustomize build")
        assert kz.digest == r.digest, part


def test_other_namespace_and_kustomization_folder(tmp_path):
    fx = kfp_fixture()
    # a folder holding kustomizations (the shape of upstream's manifests/kustomize), here built on the rendered files
    root = tmp_path / "manifests" / "kustomize"
    for sub, f in (("cluster-scoped-resources", "cluster-scoped.yaml"), ("env/gcp", "env-gcp.yaml")):
        d = root / sub
        d.mkdir(parents=True)
        shutil.copy(fx / f, d / f)
        (d / "kustomization.yaml").write_text(yaml.safe_dump({"resources": [f]}))
    a = answers(PROJECT, "key", namespace="kfp-system")
    a.kfp.manifests = str(tmp_path)
    src = R.find_source(a)
    assert src.kind == "kustomize"
    cs = R.render_part(a, "cluster-scoped")
    env = R.render_part(a, "env", R.params(a, "p:r:i"))
    assert cs.tool in ("kubectl kustomize", "kustomize build")
    # rendered files moved to another namespace go through kustomize too; the Python overlay agrees with it
    b = answers(PROJECT, "key", namespace="kfp-system")
    for part in ("env",):
        kz = R.render_part(b, part, R.params(b, "p:r:i"))
        assert kz.tool in ("kubectl kustomize", "kustomize build")
        assert R.render_part(b, part, R.params(b, "p:r:i"), tool="python").digest == kz.digest
    assert _by(cs.objects, "Namespace", "kfp-system")
    assert {o["metadata"].get("namespace") for o in env.objects if o["kind"] not in R.CLUSTER_SCOPED_KINDS} == \
        {"kfp-system"}
    crb = _by(cs.objects, "ClusterRoleBinding", "kubeflow-pipelines-cache-deployer-clusterrolebinding")
    assert crb["subjects"][0]["namespace"] == "kfp-system"


def test_bad_folder_is_a_clear_error(tmp_path):
    from installer.errors import ErrorClass, InstallerError
    a = answers(PROJECT)
    a.kfp.manifests = str(tmp_path)
    with pytest.raises(InstallerError) as ei:
        R.find_source(a)
    assert ei.value.error_class == ErrorClass.BAD_INPUT and "cluster-scoped.yaml" in ei.value.message


def test_upstream_source_uses_remote_bases_at_the_version():
    a = answers(PROJECT)
    a.kfp.manifests = "upstream"
    src = R.find_source(a)
    assert src.cluster_scoped == \
        "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=2.14.4"
    assert src.env == "github.com/kubeflow/pipelines/manifests/kustomize/env/gcp?ref=2.14.4"
    k = R.overlay(a, "env", src.env, R.params(a, "p:r:i"))
    assert k["resources"] == [src.env] and k["namespace"] == "kubeflow"


def test_render_command_writes_overlay_and_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_INSTALL_STATE_DIR", str(tmp_path / "state"))
    fx = kfp_fixture()
    ans = tmp_path / "answers.yaml"
    ans.write_text(yaml.safe_dump({"version": 1, "project": PROJECT, "region": "us-central1", "prefix": "demo",
                                   "credentials": "workload-identity", "kfp": {"manifests": str(fx)}}))
    out = tmp_path / "out"
    assert main(["render", "--answers", str(ans), "--out", str(out)]) == 0
    for f in ("overlay/cluster-scoped/kustomization.yaml", "overlay/env/kustomization.yaml",
              "cluster-scoped.yaml", "env.yaml"):
        assert (out / f).is_file(), f
    k = yaml.safe_load((out / "overlay/env/kustomization.yaml").read_text())
    assert [(out / "overlay/env" / r).resolve() for r in k["resources"]] == [(fx / "env-gcp.yaml").resolve()]
    objs = [d for d in yaml.safe_load_all((out / "env.yaml").read_text()) if d]
    assert len(objs) == 75
    assert main(["render", "--answers", str(tmp_path / "missing.yaml"), "--out", str(out)]) == 2


@pytest.mark.parametrize("tool", ["python", "kustomize"])
def test_pipeline_root_and_argo_bucket_are_ours(tool):
    """v2 runs write under our bucket (not the global 'mlpipeline' of the launcher's default), and Argo's artifact
    repository names our bucket, whichever tool built the objects: no upstream placeholder is left."""
    a = answers(PROJECT, "key")
    env = R.render_part(a, "env", R.params(a, "mlops-demo-project:us-central1:demo-ml-metadata"), tool=tool)
    cm = _by(env.objects, "ConfigMap", "pipeline-install-config")["data"]
    assert cm["defaultPipelineRoot"] == "minio://demo-artifact-store/v2/artifacts"
    assert _by(env.objects, "ConfigMap", "kfp-launcher")["data"]["defaultPipelineRoot"] == cm["defaultPipelineRoot"]
    repo = yaml.safe_load(_by(env.objects, "ConfigMap", "workflow-controller-configmap")["data"]["artifactRepository"])
    assert repo["s3"]["bucket"] == "demo-artifact-store" and repo["archiveLogs"] is True
    text = yaml.safe_dump_all(env.objects)
    assert not [p for p in R.UPSTREAM_PLACEHOLDERS if p in text]


def test_render_output_holds_no_upstream_placeholder(tmp_path, sandbox_free_answers_file, monkeypatch):
    monkeypatch.setenv("MLOPS_INSTALL_STATE_DIR", str(tmp_path / "state"))
    out = tmp_path / "out"
    assert main(["render", "--answers", str(sandbox_free_answers_file), "--out", str(out),
                 "--connection-name", "mlops-demo-project:us-central1:demo-ml-metadata"]) == 0
    text = "".join(p.read_text() for p in out.rglob("*.yaml"))
    assert "minio://demo-artifact-store/v2/artifacts" in text
    assert not [p for p in R.UPSTREAM_PLACEHOLDERS if p in text]


@pytest.fixture
def sandbox_free_answers_file(tmp_path):
    f = tmp_path / "answers.yaml"
    f.write_text(yaml.safe_dump({"version": 1, "project": PROJECT, "region": "us-central1", "prefix": "demo",
                                 "kfp": {"manifests": str(kfp_fixture())}}))
    return f
