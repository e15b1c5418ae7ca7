"""``mlops-install gather`` (issue 16 item 2): after a real install into the sandbox, the bundle holds the journal,
the answers, the plan, the preflight, the newest logs and the kubeflow namespace as the cluster reports it; secrets
planted in a log do not reach it, and an existing file is never overwritten."""
from __future__ import annotations

import tarfile

import pytest

from tests.keymaterial import body_line, pem

from .test_cli import cli, no_traceback
from .test_cli_destroy import install_example


@pytest.mark.e2e
def test_gather_bundle_after_an_install(sandbox, tmp_path, kfp_fixtures):
    answers, env, _ = install_example(sandbox, tmp_path, kfp_fixtures)

    # secrets where a careless log line could have put them: a private key, an access token, a password field
    key = pem()
    token = "ya29." + "A0AfB_byC" * 12
    logs = tmp_path / "state" / "logs"
    (logs / "mlops-install-99999999-000000-1.log").write_text(
        f"DEBUG a key {key}\nDEBUG Authorization: Bearer {token}\nDEBUG body {{\"password\": \"hunter2-hunter2\"}}\n")

    out = tmp_path / "bundle.tar.gz"
    g = cli("gather", "--answers", str(answers), "--out", str(out), tmp=tmp_path, env_extra=env, timeout=120)
    assert g.returncode == 0, g.stdout + g.stderr
    no_traceback(g)
    assert f"bundle written: {out}" in g.stdout, g.stdout
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(out) as tar:
        files = {m.name.removeprefix("gather/"): tar.extractfile(m).read().decode() for m in tar.getmembers()}
    for name in ("MANIFEST.txt", "journal.json", "answers.yaml", "plan.txt", "preflight.json",
                 "cluster/pods.txt", "cluster/events.txt", "cluster/deployments.txt"):
        assert name in files, (name, sorted(files), files.get("MANIFEST.txt"))
    assert any(n.startswith("logs/") for n in files), sorted(files)
    assert '"status": "done"' in files["journal.json"]
    assert "kfp-deploy" in files["plan.txt"] and "demo-kfp-cluster" in files["plan.txt"]
    pods = files["cluster/pods.txt"]
    assert "ml-pipeline-" in pods and "\tReady\t" in pods, pods
    assert "ml-pipeline\tAvailable=True" in files["cluster/deployments.txt"], files["cluster/deployments.txt"]
    everything = "\n".join(files.values())
    for secret in (body_line(key), token, token[5:], "hunter2-hunter2"):
        assert secret not in everything, secret[:12]

    # never over a file that is there
    again = cli("gather", "--answers", str(answers), "--out", str(out), tmp=tmp_path, env_extra=env)
    assert again.returncode == 2 and "never overwrites" in again.stderr, again.stdout + again.stderr
    no_traceback(again)
