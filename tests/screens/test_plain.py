"""Plain mode and run_wizard's entry checks (no full-screen terminal: questionary, then the plain reporter)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from screens.app import run_wizard

from .conftest import kfp_manifests

REPO = Path(__file__).resolve().parents[2]


def test_bad_answers_file_is_exit_2(tmp_path, capsys):
    bad = tmp_path / "a.yaml"
    bad.write_text("project: [unclosed\n")
    assert run_wizard(str(bad), log_path=str(tmp_path / "w.log")) == 2
    assert "error" in capsys.readouterr().err


def test_missing_answers_file_is_exit_2(tmp_path):
    assert run_wizard(str(tmp_path / "nope.yaml"), log_path=str(tmp_path / "w.log")) == 2


def test_plain_complete_answers_installs_to_done(wiz_env, tmp_path):
    """--plain with every answer given: nothing to ask; the plain reporter's lines, exit 0, answers written."""
    sandbox = wiz_env
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        f"version: 1\nproject: {sandbox.project}\nregion: us-central1\nzone: us-central1-a\nprefix: plain\n"
        f"credentials: workload-identity\napis:\n  enable: true\nkfp:\n  manifests: {kfp_manifests()}\n")
    env = {**os.environ, "MLOPS_INSTALL_STATE_DIR": str(sandbox.state_root)}
    p = subprocess.run([sys.executable, "-m", "screens", "--plain", "--yes", "--answers", str(answers),
                        "--log", str(tmp_path / "w.log")], cwd=REPO, env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=240)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "KFP UI: https://" in out
    assert "answers written to" in out
    written = sandbox.state_root / "envs" / f"{sandbox.project}--plain" / "answers.yaml"
    assert written.exists() and (written.stat().st_mode & 0o777) == 0o600
