"""The command line's exit codes, run as `python -m installer ...` subprocesses, and its start-up cost."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "answers.yaml"
HEAVY = ("textual", "googleapiclient", "kubernetes", "google.cloud", "yaml", "platformdirs")


def cli(*args: str, env_extra: dict | None = None, tmp: Path, timeout: float = 120, stdin=subprocess.DEVNULL):
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUD_SHELL", "DEVSHELL_GCLOUD_CONFIG")
           and not k.startswith("CLOUDSDK_API_ENDPOINT_OVERRIDES")}
    env.update({"MLOPS_INSTALL_STATE_DIR": str(tmp / "state"), "CLOUDSDK_CONFIG": str(tmp / "gcloud"),
                "HOME": str(tmp / "home"), "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false", "NO_GCE_CHECK": "True",
                "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9"})
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "installer", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout, stdin=stdin)


def no_traceback(p):
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr


def test_version_and_help(tmp_path):
    p = cli("--version", tmp=tmp_path)
    assert p.returncode == 0 and p.stdout.startswith("mlops-install ")
    p = cli("--help", tmp=tmp_path)
    assert p.returncode == 0 and "--non-interactive" in p.stdout and "exit codes" in p.stdout
    assert not (tmp_path / "state").exists()  # --help and --version write nothing


def test_validate_exit_codes(tmp_path):
    assert cli("validate", str(EXAMPLE), tmp=tmp_path).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nregion: us-central1\nprefix: Bad_Prefix\nclustr: {}\n")
    p = cli("validate", str(bad), tmp=tmp_path)
    assert p.returncode == 2
    assert "line 3: prefix" in p.stderr and "line 4: clustr" in p.stderr and "project" in p.stderr
    no_traceback(p)
    p = cli("validate", str(tmp_path / "missing.yaml"), tmp=tmp_path)
    assert p.returncode == 2 and "does not exist" in p.stderr
    no_traceback(p)


def test_usage_errors_are_2(tmp_path):
    for args in (["--bogus"], ["plan"], ["validate"], ["--output", "xml"], ["status", "--project", "p"]):
        p = cli(*args, tmp=tmp_path)
        assert p.returncode == 2, (args, p.stderr)
        no_traceback(p)


def test_plan_prints_derived_names(tmp_path):
    p = cli("plan", "--answers", str(EXAMPLE), "--no-check", tmp=tmp_path)
    assert p.returncode == 0, p.stderr
    for name in ("demo-network", "demo-subnet", "demo-gke-sa@mlops-demo-project.iam.gserviceaccount.com",
                 "demo-kfp-sa@", "demo-kfp-cluster", "demo-ml-metadata", "gs://demo-artifact-store",
                 "kubeflow/user-gcp-sa"):
        assert name in p.stdout
    assert "not checked" in p.stdout
    p = cli("plan", "--answers", str(EXAMPLE), "--output", "json", tmp=tmp_path)
    assert p.returncode == 0
    rows = json.loads(p.stdout)["steps"]
    assert {r["resource"] for r in rows} >= {"demo-kfp-cluster", "demo-ml-metadata"}


def test_no_terminal_points_to_non_interactive(tmp_path):
    p = cli(tmp=tmp_path)
    assert p.returncode == 2 and "--non-interactive" in p.stderr
    p = cli("--non-interactive", tmp=tmp_path)
    assert p.returncode == 2 and "--answers" in p.stderr


def test_non_interactive_bad_answers_is_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("project: x\n")
    p = cli("--non-interactive", "--answers", str(bad), tmp=tmp_path)
    assert p.returncode == 2 and "region" in p.stderr
    no_traceback(p)


def test_no_credentials_is_preflight_failure_3(tmp_path):
    pytest.importorskip("backends.preflight")
    p = cli("--non-interactive", "--answers", str(EXAMPLE), "--yes", tmp=tmp_path)
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert "preflight failed" in p.stderr and "debug log:" in p.stderr
    no_traceback(p)
    logs = list((tmp_path / "state" / "logs").glob("*.log"))
    assert logs and oct(logs[0].stat().st_mode & 0o777) == "0o600"


def test_status(tmp_path):
    p = cli("status", tmp=tmp_path)
    assert p.returncode == 0 and "no environments" in p.stdout
    p = cli("status", "--answers", str(EXAMPLE), tmp=tmp_path)
    assert p.returncode == 0 and "no journal yet" in p.stdout
    p = cli("status", "--project", "mlops-demo-project", "--prefix", "demo", "--output", "json", tmp=tmp_path)
    assert p.returncode == 0 and json.loads(p.stdout)["environments"][0]["exists"] is False


def test_schema(tmp_path):
    p = cli("schema", tmp=tmp_path)
    assert p.returncode == 0 and json.loads(p.stdout)["required"] == ["project", "region", "prefix"]


def test_log_file_unwritable_is_2(tmp_path):
    p = cli("validate", str(EXAMPLE), "--log-file", "/proc/nope/x.log", tmp=tmp_path)
    assert p.returncode == 2 and "log file" in p.stderr
    no_traceback(p)


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_startup_imports_nothing_heavy(argv, tmp_path):
    code = ("import sys; from installer.cli import main\n"
            "try:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('textual', 'googleapiclient', 'kubernetes') "
            "or m.startswith('google.cloud') or m == 'yaml']\n"
            "print('HEAVY', heavy)" % (argv,))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "HEAVY []" in p.stdout, p.stdout


def test_version_matches_pyproject():
    import tomllib

    import installer
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert installer.__version__ == meta["project"]["version"]


FIXTURES = ROOT.parent / "shared" / "fixtures" / "kfp-2.14.4"


@pytest.mark.e2e
def test_demo_installs_into_a_sandbox_json_lines_and_no_secret_on_disk(tmp_path):
    """`make demo`'s command, non-interactive (no terminal), at a faster sandbox speed, with --output json."""
    if not FIXTURES.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{FIXTURES} is missing")
        pytest.skip(f"{FIXTURES} is missing")
    pytest.importorskip("sandbox.launcher")
    state = tmp_path / "demo"
    p = cli("demo", "--state-dir", str(state), "--speed", "0.01", "--output", "json", tmp=tmp_path, timeout=400)
    assert p.returncode == 0, p.stderr[-3000:]
    events = [json.loads(line) for line in p.stdout.splitlines()]  # every line is one JSON event
    kinds = [e["event"] for e in events]
    assert kinds[0] == "PreflightDone" and "RunStarted" in kinds and kinds[-1] == "RunFinished"
    assert events[-1]["status"] == "done" and events[-1]["exit_code"] == 0
    assert "demo state:" in p.stderr
    journal = json.loads((state / "installer" / "envs" / "mlops-demo-project--demo" / "journal.json").read_text())
    assert all(r["status"] == "done" for r in journal["steps"].values())
    for f in (state / "installer").rglob("*"):  # journal, logs, answers: never a secret
        if f.is_file():
            text = f.read_text(errors="replace")
            assert "PRIVATE KEY-----\n" not in text and "ya29." not in text.replace("ya29.<redacted>", ""), f
            assert oct(f.stat().st_mode & 0o777) == "0o600", f
    # and down again, through the same sandbox state: the demo's destroy
    p = cli("demo", "--destroy", "--state-dir", str(state), "--speed", "0.01", "--output", "json", tmp=tmp_path,
            timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    events = [json.loads(line) for line in p.stdout.splitlines()]
    assert events[-1]["event"] == "RunFinished" and events[-1]["status"] == "destroyed", events[-1]
    done = {e["step_id"]: e["outcome"] for e in events if e["event"] == "StepDone"}
    assert done["cluster"] == "destroyed" and done["apis"].startswith("kept"), done
    journal = json.loads((state / "installer" / "envs" / "mlops-demo-project--demo" / "journal.json").read_text())
    assert journal["status"] == "destroyed"


def test_delegated_commands(tmp_path):
    for cmd in ("sandbox", "render"):
        p = cli(cmd, "--help", tmp=tmp_path)
        assert p.returncode == 0 and "usage" in p.stdout.lower(), (cmd, p.stderr)
    p = cli("render", tmp=tmp_path)
    assert p.returncode == 2
    no_traceback(p)


def test_locked_environment_is_2(tmp_path):
    from installer.journal import Journal
    j = Journal("mlops-demo-project--demo", tmp_path / "state")
    j.lock()
    try:
        p = cli("--non-interactive", "--answers", str(EXAMPLE), "--yes", tmp=tmp_path)
    finally:
        j.unlock()
    assert p.returncode == 2, p.stderr
    assert f"pid {os.getpid()}" in p.stderr and "how to fix" in p.stderr
    no_traceback(p)


def test_the_bare_command_parses_as_with_the_commands():
    """The bare command (the wizard's start) is parsed without the commands' parsers: to the same namespace."""
    from installer.cli import build_parser
    assert vars(build_parser(commands=False).parse_args([])) == vars(build_parser().parse_args([]))
