"""The verbs and flags of issue 15: init, install, -o, --enable-apis/--yes, plan --detailed-exitcode, completion,
and the debug logs (none for read-only commands; old ones pruned)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from installer import logs
from installer.cli import build_parser, main
from installer.commands import plan_exit_code
from installer.run import PlanRow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "answers.yaml"
FLAGS = ["--project", "init-proj-1", "--region", "europe-west4", "--prefix", "ini"]


@pytest.fixture
def no_ambient(monkeypatch, tmp_path):
    for v in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "CLOUDSDK_COMPUTE_REGION", "CLOUDSDK_COMPUTE_ZONE",
              "CLOUDSDK_ACTIVE_CONFIG_NAME"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_init_writes_a_commented_file_that_validates(no_ambient, capsys):
    assert main(["init", *FLAGS, "--set", "cluster.node_count=2"]) == 0
    f = no_ambient / "answers.yaml"
    assert f.stat().st_mode & 0o777 == 0o600
    text = f.read_text()
    assert "# Google Cloud project id" in text and "project: init-proj-1  # from flag --project" in text
    data = yaml.safe_load(text)
    assert data["cluster"]["node_count"] == 2 and data["region"] == "europe-west4"
    assert main(["validate", str(f)]) == 0
    out = capsys.readouterr().out
    assert "wrote answers.yaml (mode 0600)" in out and "init-proj-1--ini" not in out.split("\n")[0]
    # no overwrite without --force; --force replaces
    before = f.read_text()
    assert main(["init", *FLAGS[:4], "--prefix", "other"]) == 2
    assert "already exists" in capsys.readouterr().err and f.read_text() == before
    assert main(["init", *FLAGS[:4], "--prefix", "other", "--force"]) == 0
    assert "prefix: other" in f.read_text()


def test_init_never_writes_through_a_link(no_ambient, capsys):
    target = no_ambient / "elsewhere.yaml"
    target.write_text("keep: me\n")
    link = no_ambient / "link.yaml"
    link.symlink_to(target)
    assert main(["init", str(link), *FLAGS]) == 2
    assert main(["init", str(link), *FLAGS, "--force"]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and target.read_text() == "keep: me\n"
    dangling = no_ambient / "dangling.yaml"
    dangling.symlink_to(no_ambient / "nowhere.yaml")
    assert main(["init", str(dangling), *FLAGS]) == 2 and not (no_ambient / "nowhere.yaml").exists()


def test_init_without_inputs_leaves_the_required_to_fill(no_ambient, capsys):
    assert main(["init", "a.yaml"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("still to fill in: "))
    assert {"project", "region", "prefix"} <= set(line.split(": ", 1)[1].split(" (")[0].split(", "))
    assert "project:  # REQUIRED" in (no_ambient / "a.yaml").read_text()
    assert main(["validate", "a.yaml"]) == 2


def test_install_verb_and_short_output_flag(no_ambient, capsys):
    p = build_parser()
    a = p.parse_args(["install", "--non-interactive", "--answers", "x.yaml", "--enable-apis", "-o", "json",
                      "--project", "pp-proj-1"])
    assert (a.command, a.non_interactive, a.answers, a.enable_apis, a.output, a.in_project) == \
        ("install", True, "x.yaml", True, "json", "pp-proj-1")
    assert not a.yes
    # the bare command keeps its flags
    b = p.parse_args(["--non-interactive", "--answers", "x.yaml", "--yes"])
    assert b.command is None and b.yes and not b.enable_apis
    # the install verb reads its inputs as the other commands do: a bad --set is bad input (2), nothing starts
    assert main(["install", "--non-interactive", *FLAGS, "--set", "cluster.node_cont=2"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'cluster.node_count'?" in err and "Traceback" not in err
    assert main(["-o", "json", "validate", str(EXAMPLE)]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_enable_apis_is_the_consent_and_old_yes_gets_a_notice(no_ambient):
    from installer.inputs import flag_values
    a = build_parser().parse_args(["install", "--enable-apis", *FLAGS])
    values, sources, _ = flag_values(a)
    assert values["apis.enable"] is True and sources["apis.enable"] == "flag --enable-apis"
    assert "apis.enable" not in flag_values(build_parser().parse_args(["install", "--yes"]))[0]


def row(action: str) -> PlanRow:
    return PlanRow(step_id="s", group="g", title="t", resource="r", deps=(), action=action)


def test_detailed_exitcode_rule():
    assert plan_exit_code([row("exists: unchanged"), row("exists: adopt")]) == 0
    assert plan_exit_code([row("exists: unchanged"), row("create")]) == 2
    assert plan_exit_code([row("update")]) == 2 and plan_exit_code([row("not checked")]) == 2


def test_plan_detailed_exitcode_and_summary(no_ambient, capsys):
    assert main(["plan", "--answers", str(EXAMPLE), "--no-check", "--detailed-exitcode"]) == 2  # not checked
    out = capsys.readouterr().out
    assert "0 create, 0 adopt, 0 update, 20 not checked" in out or "not checked" in out.splitlines()[-2]
    assert main(["plan", "--answers", "missing.yaml", "--no-check", "--detailed-exitcode"]) == 1
    assert main(["plan", "--answers", "missing.yaml", "--no-check"]) == 2  # without the flag: bad input
    assert main(["plan", "--answers", str(EXAMPLE), "--no-check", "-o", "json"]) == 0
    assert "not checked" in json.loads(capsys.readouterr().out)["summary"]


def test_completion_scripts_come_from_the_parser(capsys):
    for shell in ("bash", "zsh", "fish"):
        assert main(["completion", shell]) == 0
        text = capsys.readouterr().out
        for word in ("install", "init", "plan", "detailed-exitcode", "enable-apis", "project", "set"):
            assert word in text, (shell, word)
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    done = subprocess.run(["bash", "-c", script + "\nCOMP_WORDS=(mlops-install pl); COMP_CWORD=1; _mlops_install; "
                           "echo ${COMPREPLY[@]}; COMP_WORDS=(mlops-install plan --det); COMP_CWORD=2; "
                           "_mlops_install; echo ${COMPREPLY[@]}; COMP_WORDS=(mlops-install plan -o ''); "
                           "COMP_CWORD=3; _mlops_install; echo ${COMPREPLY[@]}"],
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["plan", "--detailed-exitcode", "plain json"]
    if shutil.which("fish"):
        assert main(["completion", "fish"]) == 0
        chk = subprocess.run(["fish", "--no-execute"], input=capsys.readouterr().out, text=True,
                             capture_output=True, timeout=20)
        assert chk.returncode == 0, chk.stderr
    assert main(["completion", "tcsh"]) == 2


def test_read_only_commands_write_no_log(no_ambient, state_dir, capsys):
    f = no_ambient / "a.yaml"
    for argv in (["validate", str(EXAMPLE)], ["schema"], ["status"], ["plan", "--answers", str(EXAMPLE),
                 "--no-check"], ["init", str(f), *FLAGS], ["completion", "bash"], ["--help"], ["plan", "--help"]):
        assert main(argv) == 0, argv
        assert not (state_dir / "logs").exists(), argv
    capsys.readouterr()
    log = no_ambient / "v.log"
    assert main(["validate", str(EXAMPLE), "--log-file", str(log)]) == 0
    assert "argv: validate" in log.read_text()


def test_old_logs_beyond_the_newest_50_are_pruned_at_start(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    now = time.time()
    made = []
    for i in range(60):  # 60 logs, one per day back from now: the 10 oldest are beyond 50; 9 beyond 30 days too
        p = d / f"mlops-install-20260101-{i:06d}-{100 + i}.log"
        p.write_text("x")
        age = now - (i + 0.5) * 86400
        os.utime(p, (age, age))
        made.append(p)
    other = d / "notes.log"
    other.write_text("mine")
    os.utime(other, (now - 90 * 86400,) * 2)
    link = d / "mlops-install-20200101-000000-1.log"
    link.symlink_to(other)
    removed = logs.prune_logs(d, now=now)
    assert sorted(removed) == sorted(made[50:])
    assert all(p.exists() for p in made[:50]) and other.exists() and link.is_symlink()
    # younger than 30 days beyond the newest 50: kept
    young = d / "mlops-install-20260101-999999-1.log"
    young.write_text("y")
    os.utime(young, (now - 40 * 3600,) * 2)
    for p in made[:50]:
        os.utime(p, (now,) * 2)
    assert logs.prune_logs(d, now=now) == [] and young.exists()


def test_setup_logging_prunes(state_dir):
    d = state_dir / "logs"
    d.mkdir(parents=True)
    old = time.time() - 40 * 86400
    for i in range(55):
        p = d / f"mlops-install-20250101-{i:06d}-1.log"
        p.write_text("x")
        os.utime(p, (old - i, old - i))
    logs.setup_logging()
    assert len(list(d.glob("mlops-install-*.log"))) == 51  # the newest 50 old ones and this run's


def test_render_and_destroy_take_the_input_flags(no_ambient, kfp_fixtures, capsys):
    out = no_ambient / "rendered"
    assert main(["render", *FLAGS, "--set", f"kfp.manifests={kfp_fixtures}", "--out", str(out)]) == 0
    assert (out / "cluster-scoped.yaml").is_file()
    assert main(["render", "--out", str(out)]) == 2
    assert "give --project mlops-demo-project" in capsys.readouterr().err
    # destroy of an environment never installed here: the flags name it (nothing recorded, nothing destroyed)
    assert main(["destroy", *FLAGS, "--yes"]) in (0, 2)
    seen = capsys.readouterr()
    assert "init-proj-1--ini" in seen.out + seen.err and "Traceback" not in seen.err


def test_yes_keeps_its_old_meaning_with_a_one_line_notice(no_ambient, capsys):
    """--yes without --enable-apis, with apis.enable false: the old consent, said once, before anything runs (here
    a bad --export-key stops the run right after)."""
    base = ["install", "--non-interactive", *FLAGS, "--set", "apis.enable=false", "--credentials",
            "workload-identity", "--export-key", "k.json"]
    assert main([*base, "--yes"]) == 2
    seen = capsys.readouterr()
    notices = [ln for ln in seen.out.splitlines() if "--yes also consents to enabling" in ln]
    assert len(notices) == 1 and "--enable-apis" in notices[0], seen
    assert "--export-key needs credentials: key" in seen.err
    assert main([*base, "--yes", "--enable-apis"]) == 2
    assert "--yes also consents" not in capsys.readouterr().out
    assert main([*base[:-2], "--set", "apis.enable=true", "--yes", "--export-key", "k.json"]) == 2
    assert "--yes also consents" not in capsys.readouterr().out  # consent given in the answers: no notice
