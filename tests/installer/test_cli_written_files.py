"""``--export-key PATH`` and ``--write-kubeconfig``: a real non-interactive install into a sandbox writes them, says
where, and a re-run changes nothing and says the key file is already there."""
from __future__ import annotations

import json

import pytest
import yaml

from .test_cli import EXAMPLE, cli, no_traceback
from tests.installer.test_remote_state import state_request

@pytest.mark.e2e
def test_export_key_and_write_kubeconfig(sandbox, tmp_path, kfp_fixtures):
    answers = tmp_path / "answers.yaml"
    answers.write_text(EXAMPLE.read_text().replace("manifests: upstream", f"manifests: {kfp_fixtures}"))
    key = tmp_path / "out" / "kfp-sa.json"
    kubeconfig = tmp_path / "kube" / "config"
    env = {**sandbox.env, "KUBECONFIG": str(kubeconfig)}
    args = ("--non-interactive", "--answers", str(answers), "--yes", "--export-key", str(key), "--write-kubeconfig")
    p = cli(*args, tmp=tmp_path, env_extra=env, timeout=240)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    no_traceback(p)
    assert f"key file written: {key}" in p.stdout and "kubeconfig written: " in p.stdout, p.stdout[-2000:]
    assert oct(key.stat().st_mode & 0o777) == "0o600" and oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
    body = json.loads(key.read_text())
    assert body["client_email"].startswith("demo-kfp-sa@")
    cfg = yaml.safe_load(kubeconfig.read_text())
    ctx = "gke_mlops-demo-project_us-central1-a_demo-kfp-cluster"
    assert cfg["current-context"] == ctx and ctx in p.stdout
    assert "token" not in json.dumps(cfg["users"])  # the exec plugin, no token on disk
    # the installer's own files hold no key material
    pem_line = body["private_key"].splitlines()[3]
    for f in (tmp_path / "state").rglob("*"):
        if f.is_file():
            text = f.read_text(errors="replace")
            assert "PRIVATE KEY-----\n" not in text and pem_line not in text, f
    # a re-run: nothing mutating, the key file is left as it is
    sandbox.clear_requests()
    p = cli(*args, "--output", "json", tmp=tmp_path, env_extra=env, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    for line in p.stdout.splitlines():  # stdout stays pure JSON lines; the notes go to stderr
        json.loads(line)
    assert f"key file: {key} is already there" in p.stderr and "kubeconfig written: " in p.stderr
    # (but for the remote journal's and lock's writes, issue 17)
    assert [r for r in sandbox.requests(mutating=True) if not r["path"].startswith("/token")
            and not state_request(r)] == []
