"""Without a terminal the full-screen wizard can drive (stdin not a TTY, ``TERM=dumb``), ``mlops-install`` falls
back to the plain prompts as docs/wizard.md says, and says so (issue 19, item 7)."""
from __future__ import annotations

import os
import subprocess

from test_tmux_wizard import BIN, _q, tmux  # noqa: F401 - the fixture


def test_piped_stdin_gets_the_plain_prompts_and_a_clear_end_of_input(sandbox, tmp_path):
    env = {**os.environ, **sandbox.env, "MLOPS_INSTALL_STATE_DIR": str(tmp_path / "state"), "HOME": str(tmp_path),
           "TERM": "xterm-256color"}
    p = subprocess.run([str(BIN)], input="\n", capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "stdin is not a terminal, so the full-screen wizard cannot start: plain prompts instead (--plain)" \
        in p.stderr, p.stderr
    assert "--non-interactive --answers FILE" in p.stderr
    assert "no answer (end of input)" in p.stdout, p.stdout


def test_term_dumb_gets_the_plain_prompts(tmux, tmp_path, kfp_fixtures):  # noqa: F811
    env = {"MLOPS_INSTALL_STATE_DIR": str(tmp_path / "state"), "TERM": "dumb", "HOME": str(tmp_path),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    tmux.start(f"{_q(str(BIN))} --sandbox --speed 0.01", env)
    screen = tmux.wait("Project id", 90)
    assert "TERM is dumb, so the full-screen wizard cannot start: plain prompts instead" in screen.replace("\n", ""), \
        screen
    tmux.keys("C-c")
    screen = tmux.wait("EXIT=", 30)
    assert "EXIT=130" in screen, screen
