"""Command-line errors found in QA: each is a clear message with a documented exit code, never a traceback."""
from __future__ import annotations

from installer.manifests import local_manifests

from .test_cli import EXAMPLE, cli, no_traceback


def _bad(p, *needles: str) -> None:
    assert p.returncode == 2, (p.stdout, p.stderr)
    no_traceback(p)
    for n in needles:
        assert n in p.stderr, p.stderr


def test_speed_must_be_above_zero(tmp_path):
    for args in (["--sandbox", "--speed", "-1", "--non-interactive", "--answers", str(EXAMPLE)],
                 ["demo", "--speed", "0", "--state-dir", str(tmp_path / "d")], ["--speed", "nan"],
                 ["sandbox", "serve", "--state", str(tmp_path / "d"), "--speed", "-1"]):  # the same rule
        _bad(cli(*args, tmp=tmp_path), "above 0")
    assert not (tmp_path / "d").exists()  # no sandbox was started


def test_demo_bad_state_dir_and_manifests(tmp_path):
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    _bad(cli("demo", "--state-dir", str(a_file), tmp=tmp_path), "is a file, not a folder", "how to fix")
    _bad(cli("demo", "--state-dir", str(tmp_path / "d"), "--manifests", str(tmp_path / "none"), tmp=tmp_path),
         "--manifests", "is not a folder")


def test_sandbox_commands_without_a_sandbox(tmp_path):
    # no sandbox.json, no MLOPS_SANDBOX_URL: their message must be shown (it was swallowed)
    p = cli("sandbox", "requests", "--state", str(tmp_path / "none"), tmp=tmp_path)
    _bad(p, "no sandbox found")
    # an address where nothing answers: a message, not urllib's traceback
    for args in (["requests"], ["scenario"], ["scenario", "reset"], ["fault", "--list"]):
        p = cli("sandbox", *args, "--state", str(tmp_path / "none"), tmp=tmp_path,
                env_extra={"MLOPS_SANDBOX_URL": "http://127.0.0.1:9"})
        _bad(p, "no sandbox answers at http://127.0.0.1:9", "sandbox serve")


def test_status_rejects_ids_that_are_not_ids(tmp_path):
    for project, prefix in (("../../etc", "demo"), ("mlops-demo-project", "a/b")):
        p = cli("status", "--project", project, "--prefix", prefix, tmp=tmp_path)
        _bad(p, "not valid", "how to fix")


def test_multi_line_hint_stays_indented(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nproject: mlops-demo-project\nregion: us-central1\nprefix: demo\napis: yes\n")
    p = cli("validate", str(bad), tmp=tmp_path)
    _bad(p, "line 5: apis")
    hint_lines = p.stderr.split("hint:", 1)[1].splitlines()[1:3]
    assert hint_lines and all(ln.startswith("            ") for ln in hint_lines), p.stderr


def test_export_key_checked_before_anything_runs(tmp_path):
    wi = tmp_path / "wi.yaml"
    wi.write_text(EXAMPLE.read_text().replace("credentials: key", "credentials: workload-identity"))
    assert "credentials: workload-identity" in wi.read_text()
    _bad(cli("--non-interactive", "--answers", str(wi), "--export-key", str(tmp_path / "k.json"), tmp=tmp_path),
         "--export-key needs credentials: key")
    _bad(cli("--non-interactive", "--answers", str(EXAMPLE), "--export-key", str(tmp_path), tmp=tmp_path),
         "is a folder")
    assert not (tmp_path / "state" / "envs").exists()  # nothing started: no journal


def test_demo_finds_the_manifests_of_the_checkout_a_clone_came_from(tmp_path, monkeypatch):
    """`git clone /work/main /tmp/x && make demo`: ../shared is beside the origin, not beside the clone."""
    fixtures = tmp_path / "work" / "shared" / "fixtures" / "kfp-2.14.4"
    fixtures.mkdir(parents=True)
    (tmp_path / "work" / "main").mkdir()
    clone = tmp_path / "elsewhere" / "clone"
    (clone / ".git").mkdir(parents=True)
    (clone / ".git" / "config").write_text(
        '[core]\n\tbare = false\n[remote "origin"]\n\turl = %s\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n'
        % (tmp_path / "work" / "main"))
    monkeypatch.delenv("MLOPS_INSTALL_KFP_MANIFESTS", raising=False)
    found, why = local_manifests(repo=clone)
    assert found == fixtures.resolve() and "origin" in why
    # a remote origin (https) has nothing local: upstream, with a note
    (clone / ".git" / "config").write_text('[remote "origin"]\n\turl = https://github.com/x/y.git\n')
    assert local_manifests(repo=clone) == (None, "")
    # the variable and the option win
    monkeypatch.setenv("MLOPS_INSTALL_KFP_MANIFESTS", str(fixtures))
    assert local_manifests(repo=clone)[1] == "MLOPS_INSTALL_KFP_MANIFESTS"
    assert local_manifests(str(fixtures), repo=clone)[1] == "--manifests"


def test_no_traceback_reaches_the_terminal_from_delegated_commands(tmp_path):
    p = cli("sandbox", "requests", tmp=tmp_path, env_extra={"MLOPS_SANDBOX_URL": "http://127.0.0.1:9"})
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and "File \"" not in p.stderr, p.stderr


def test_debug_log_of_a_non_interactive_run_tells_what_happened(tmp_path):
    """The log was only argv and client noise: the failed checks and step messages were only on the terminal."""
    p = cli("--non-interactive", "--answers", str(EXAMPLE), "--yes", tmp=tmp_path)
    assert p.returncode == 3, p.stderr
    logs = list((tmp_path / "state" / "logs").glob("*.log"))
    text = logs[0].read_text()
    assert "PreflightDone" in text and "'name': 'credentials'" in text, text[-2000:]


def test_json_output_preflight_failure_names_the_failed_checks_on_stderr(tmp_path):
    """With --output json, "fix the failed checks above" pointed at nothing on the terminal."""
    p = cli("--non-interactive", "--answers", str(EXAMPLE), "--yes", "--output", "json", tmp=tmp_path)
    assert p.returncode == 3, p.stderr
    import json
    for line in p.stdout.splitlines():
        json.loads(line)
    assert "  credentials: " in p.stderr and "fix: " in p.stderr, p.stderr


def test_demo_leaves_no_stray_log_in_the_user_state_dir(tmp_path):
    """The demo's log goes under its --state-dir; main() used to open one more (argv only) in the user state dir."""
    d = tmp_path / "demo"
    p = cli("demo", "--state-dir", str(d), "--manifests", str(tmp_path / "none"), tmp=tmp_path)
    assert p.returncode == 2, p.stderr
    assert not (tmp_path / "state" / "logs").exists()
    assert list((d / "installer" / "logs").glob("*.log"))


def test_plan_check_without_credentials_says_so_once(tmp_path):
    p = cli("plan", "--answers", str(EXAMPLE), "--check", tmp=tmp_path)
    assert p.returncode == 0, p.stderr
    no_traceback(p)
    assert "unknown" not in p.stdout and p.stdout.count("No Google credentials") == 1, p.stdout  # not on 18 rows
    assert "not checked: " in p.stdout
