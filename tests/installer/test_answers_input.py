"""Issue 14, cases 4 and 5: answers files, local manifests folders, redaction, and a failed preflight.

Answers files are regular files of at most 1 MB (a FIFO, /dev/zero, a folder: exit 2 at once), at most 50
problems are printed, every rule matches the whole value; a ``kfp.manifests`` folder without manifests fails
``validate``; a folder that adds cluster-wide RBAC is named against the release's object list; secrets without
their usual markers are masked; a run whose preflight fails leaves no environment folder."""
from __future__ import annotations

import json

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from installer.errors import BadInput
from installer.validation import load_answers, validate_dict

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "kfp-2.14.4"
BASE = {"version": 1, "project": "p-demo-project", "region": "us-central1", "prefix": "demo"}


def cli(*args: str, tmp: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLOPS_INSTALL_STATE_DIR": str(tmp / "state")}
    return subprocess.run([sys.executable, "-m", "installer", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder"])
def test_answers_path_that_is_not_a_regular_file(tmp_path, kind):
    path = {"fifo": tmp_path / "a.yaml", "dev-zero": Path("/dev/zero"), "folder": tmp_path}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    t0 = time.monotonic()
    p = cli("validate", str(path), tmp=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert time.monotonic() - t0 < 25 and "Traceback" not in p.stderr
    assert ("FIFO" if kind == "fifo" else "device" if kind == "dev-zero" else "folder") in p.stderr, p.stderr


def test_large_answers_file_and_many_problems(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("x: " + "a" * (1 << 20) + "\n")
    p = cli("validate", str(big), tmp=tmp_path)
    assert p.returncode == 2 and "at most 1048576" in p.stderr, p.stderr
    many = tmp_path / "many.yaml"
    many.write_text(yaml.safe_dump({**BASE, **{f"unknown{i}": i for i in range(500)}}))
    p = cli("validate", str(many), tmp=tmp_path)
    assert p.returncode == 2
    assert "and 450 more problem(s)" in p.stderr, p.stderr[-500:]
    assert len([ln for ln in p.stderr.splitlines() if ln.startswith("  line ")]) == 50


@pytest.mark.parametrize("field,value", [("project", "p-demo-project\n"), ("prefix", "demo\n"),
                                         ("region", "us-central1\n"), ("kfp", {"version": "2.14.4\n"}),
                                         ("kfp", {"namespace": "kubeflow\n"})])
def test_rules_match_the_whole_value(field, value):
    answers, problems = validate_dict({**BASE, field: value})
    assert answers is None and problems, (field, value)


def test_a_folder_without_manifests_fails_validate(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text(yaml.safe_dump({**BASE, "kfp": {"manifests": "/etc"}}))
    p = cli("validate", str(f), tmp=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "holds no Kubeflow Pipelines manifests" in p.stderr, p.stderr
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "cluster-scoped.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    (tmp_path / "m" / "env-gcp.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\n- 1\n")
    f.write_text(yaml.safe_dump({**BASE, "kfp": {"manifests": "m"}}))
    with pytest.raises(BadInput) as ei:
        load_answers(f)
    text = "\n".join(str(p) for p in ei.value.problems)
    assert "kind Pod is not part of Kubeflow Pipelines" in text and "not a Kubernetes object" in text, text


def _fixture() -> Path:
    if not (FIXTURES / "cluster-scoped.yaml").is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"test fixture missing: {FIXTURES}")
        pytest.skip(f"test fixture missing: {FIXTURES}")
    return FIXTURES


def test_a_folder_adding_cluster_admin_is_named_against_the_release(tmp_path):
    from installer.answers import Answers, KfpAnswers
    from backends.kfp.release import review
    src = _fixture()
    same = Answers(project="p-demo-project", region="us-central1", prefix="demo", kfp=KfpAnswers(manifests=str(src)))
    assert review(same).differs is False
    folder = tmp_path / "kfp"
    folder.mkdir()
    (folder / "env-gcp.yaml").write_text((src / "env-gcp.yaml").read_text())
    crb = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
           "metadata": {"name": "helpful-admin"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
           "subjects": [{"kind": "User", "name": "outsider@example.com"}]}
    (folder / "cluster-scoped.yaml").write_text((src / "cluster-scoped.yaml").read_text() + "---\n"
                                                + yaml.safe_dump(crb))
    a = Answers(project="p-demo-project", region="us-central1", prefix="demo", kfp=KfpAnswers(manifests=str(folder)))
    rev = review(a)
    assert rev.differs and rev.rbac == ["ClusterRoleBinding/helpful-admin"]
    assert "cluster-wide permissions not in the release: ClusterRoleBinding/helpful-admin" in rev.lines()[0]


def test_kustomize_runs_with_its_default_load_restrictor(tmp_path):
    import shutil
    if not (shutil.which("kustomize") or shutil.which("kubectl")):
        pytest.skip("neither kustomize nor kubectl")
    from installer.answers import Answers, KfpAnswers
    from installer.errors import InstallerError
    from backends.kfp.render import render_part
    secret = tmp_path / "private.txt"
    secret.write_text("not for the cluster")
    root = tmp_path / "kfp"
    for part in ("cluster-scoped-resources", "env/gcp"):
        (root / part).mkdir(parents=True)
        (root / part / "kustomization.yaml").write_text(yaml.safe_dump({
            "resources": [], "configMapGenerator": [{"name": "leak", "files": [str(secret)]}]}))
    a = Answers(project="p-demo-project", region="us-central1", prefix="demo", kfp=KfpAnswers(manifests=str(root)))
    with pytest.raises(InstallerError) as ei:
        render_part(a, "cluster-scoped", None)
    assert "not in or below" in ei.value.message or "security" in ei.value.message


def test_secrets_without_their_markers_are_masked():
    from installer.secret_guard import SecretInJournal, check_no_secrets
    from installer.logs import redact
    body = ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" + "a" * 200)
    assert "aaaa" not in redact(f"error: {body}")
    assert "AIzaSyD" not in redact("key=AIzaSyD" + "x" * 32 + " rest")
    redact.register("ya29.c.b0Aaekm1K" + "z" * 60)
    assert "zzzz" not in redact("token c.b0Aaekm1K" + "z" * 60)
    with pytest.raises(SecretInJournal):
        check_no_secrets({"error": "AIzaSyD" + "x" * 32})


def test_caller_key_is_registered_at_start(tmp_path, monkeypatch):
    from installer.logs import redact, setup_logging
    key = tmp_path / "caller.json"
    from tests.keymaterial import body_line, pem
    pk_line = body_line(pem())  # generated here: no key block in a tracked file
    key.write_text(json.dumps({"type": "service_account", "private_key": pem()}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    setup_logging(state_dir=tmp_path / "state")
    assert pk_line not in redact(f"echoed: {pk_line}")


def test_journal_error_texts_are_redacted_and_short(tmp_path):
    from installer.journal import Journal
    j = Journal("p--demo", tmp_path)
    j.set_status("x", "failed", error={"message": "AIzaSyD" + "x" * 32 + " " + "y" * 5000, "class": "unexpected"})
    msg = j.step("x")["error"]["message"]
    assert "AIzaSyD" not in msg and len(msg) <= 600


def test_a_failed_preflight_leaves_no_environment(tmp_path):
    from installer.answers import Answers
    from installer.journal import Journal

    # installer.run.install takes the lock, records the answers, runs the preflight, and unlocks when it raises
    a = Answers(project="p-demo-project", region="us-central1", prefix="demo")
    j = Journal(a.env_id, tmp_path)
    j.lock()
    j.record_answers(a)
    assert j.path.exists()
    j.unlock()  # stopped before any step or run: nothing stays
    assert not j.dir.exists()
    j = Journal(a.env_id, tmp_path)
    j.lock()
    j.start_run(plan=[])
    j.unlock()  # a run started: the journal stays
    assert j.path.exists()
