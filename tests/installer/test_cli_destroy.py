"""``mlops-install destroy``: a real install into a sandbox, then taken down through the command line. It asks
first (no terminal and no --yes: nothing is touched), removes what the install made and keeps the APIs, records
it in the journal, a second destroy has nothing to do, and an install afterwards makes the environment again."""
from __future__ import annotations

import json

import pytest

from .test_cli import EXAMPLE, cli, no_traceback

def _ours(state: dict, prefix: str = "demo") -> dict[str, list[str]]:
    """What of the environment with ``prefix`` (the example's: "demo") the sandbox holds, by kind."""
    insts = state.get("sql_instances") or state.get("instances") or {}
    return {
        "clusters": [c["name"] for c in state["clusters"].values() if c["name"] == f"{prefix}-kfp-cluster"],
        "networks": [n["name"] for n in state["networks"].values() if n["name"] == f"{prefix}-network"],
        "subnets": [s["name"] for s in state["subnetworks"].values() if s["name"] == f"{prefix}-subnet"],
        "service accounts": [e for e in state["service_accounts"] if e.startswith(f"{prefix}-")],
        "buckets": [b for b in state["buckets"] if b == f"{prefix}-artifact-store"],
        "sql": [i["name"] for i in insts.values() if i.get("name") == f"{prefix}-ml-metadata" and not i.get("_gone")
                and i.get("state") not in ("PENDING_DELETE",)],
    }


def install_example(sandbox, tmp_path, kfp_fixtures):
    """The example answers (with the local KFP manifests) installed into the sandbox through the command line:
    (answers file, the sandbox's environment, the finished process)."""
    answers = tmp_path / "answers.yaml"
    answers.write_text(EXAMPLE.read_text().replace("manifests: upstream", f"manifests: {kfp_fixtures}"))
    env = dict(sandbox.env)
    p = cli("--non-interactive", "--answers", str(answers), "--yes", tmp=tmp_path, env_extra=env, timeout=240)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    return answers, env, p


@pytest.mark.e2e
def test_destroy_asks_removes_ours_keeps_apis_and_can_install_again(sandbox, tmp_path, kfp_fixtures):
    answers, env, p = install_example(sandbox, tmp_path, kfp_fixtures)
    made = _ours(sandbox.state())
    assert all(made.values()), made
    # what to do now, with this environment's real values (installer/next_steps.py)
    steps = p.stdout[p.stdout.index("Next steps:"):]
    assert "KFP UI:  https://" in steps or "KFP UI: https://" in steps, steps
    assert ("gcloud container clusters get-credentials demo-kfp-cluster --zone us-central1-a "
            "--project mlops-demo-project && kubectl -n kubeflow get pods") in steps, steps
    assert 'kfp.Client(host="https://' in steps and f"mlops-install destroy --answers {answers}" in steps, steps

    # no terminal, no --yes: it says what would go, asks for --yes, and touches nothing
    sandbox.clear_requests()
    p = cli("destroy", "--answers", str(answers), tmp=tmp_path, env_extra=env)
    assert p.returncode == 2, p.stdout + p.stderr
    no_traceback(p)
    assert "remove  GKE cluster: demo-kfp-cluster" in p.stdout, p.stdout
    assert "keep    Required APIs" in p.stdout, p.stdout
    assert "--yes" in p.stderr and "no terminal" in p.stderr, p.stderr
    assert sandbox.requests(mutating=True) == []

    p = cli("destroy", "--answers", str(answers), "--yes", tmp=tmp_path, env_extra=env, timeout=240)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    no_traceback(p)
    assert "destroy finished" in p.stdout and "apis: kept (the APIs stay enabled)" in p.stdout, p.stdout[-2000:]
    gone = _ours(sandbox.state())
    assert not any(gone.values()), gone
    enabled = {s for s, rec in sandbox.state()["services"][sandbox.project].items() if rec["state"] == "ENABLED"}
    assert "container.googleapis.com" in enabled and "sqladmin.googleapis.com" in enabled  # the APIs stay
    st = cli("status", "--answers", str(answers), "--output", "json", tmp=tmp_path, env_extra=env)
    env_status = json.loads(st.stdout)["environments"][0]
    assert env_status["status"] == "destroyed", env_status

    # again: nothing to do, nothing sent
    sandbox.clear_requests()
    p = cli("destroy", "--answers", str(answers), "--yes", tmp=tmp_path, env_extra=env)
    assert p.returncode == 0 and "nothing to destroy" in p.stdout, p.stdout + p.stderr
    assert [r for r in sandbox.requests(mutating=True) if not r["path"].startswith("/token")] == []

    # and an install afterwards makes it all again
    p = cli("--non-interactive", "--answers", str(answers), "--yes", tmp=tmp_path, env_extra=env, timeout=240)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert all(_ours(sandbox.state()).values())


def test_destroy_of_an_environment_never_installed_here(tmp_path):
    p = cli("destroy", "--answers", str(EXAMPLE), "--yes", tmp=tmp_path)
    assert p.returncode == 2
    no_traceback(p)
    assert "no install of mlops-demo-project--demo is recorded here" in p.stderr
    assert "mlops-install status" in p.stderr  # how to find the right one
