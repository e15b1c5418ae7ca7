"""The background sandbox of ``mlops-install --sandbox`` stops when its installer is gone, however that ends (here:
the terminal closed), and its watchdog stops it after a while without a request (issue 19, item 6)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sandbox.launcher import _pid_alive, start_background, watch
from test_tmux_wizard import BIN, _q, tmux  # noqa: F401 - the fixture


def _gone(pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not _pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_closing_the_terminal_stops_the_sandbox(tmux, tmp_path):  # noqa: F811
    state = tmp_path / "state"
    env = {"MLOPS_INSTALL_STATE_DIR": str(state), "TERM": "xterm-256color", "HOME": str(tmp_path),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    tmux.start(f"{_q(str(BIN))} --sandbox --speed 0.01", env)
    tmux.wait("Welcome", 60)
    pid = int(json.loads((state / "sandbox" / "sandbox.json").read_text())["pid"])
    assert _pid_alive(pid)
    tmux.kill()  # the terminal goes away: the installer gets SIGHUP, and the sandbox follows it
    try:
        assert _gone(pid, 20), "the sandbox outlived its installer"
    finally:
        if _pid_alive(pid):
            os.kill(pid, 9)


def test_an_idle_sandbox_is_stopped_by_its_watchdog(tmp_path: Path):
    h = start_background(tmp_path / "sb", 0.05, exit_with_parent=True)
    try:
        t0 = time.monotonic()
        assert watch(h.pid, h.state_dir, idle_seconds=1.0, every=0.1) == "idle"
        assert time.monotonic() - t0 >= 0.9
        assert _gone(h.pid, 15)
        assert "watchdog: no request" in (h.state_dir / "sandbox.log").read_text()
        assert watch(h.pid, h.state_dir, idle_seconds=1.0) == "gone"
    finally:
        h.stop()


def test_the_launcher_starts_the_watchdog(tmp_path: Path):
    h = start_background(tmp_path / "sb", 0.05, exit_with_parent=True, idle_minutes=0.03)  # ~2 s
    try:
        # the state folder it made holds keys and the clusters' Secrets: the owner's only
        assert (tmp_path / "sb").stat().st_mode & 0o777 == 0o700
        assert _gone(h.pid, 30), "the idle sandbox was not stopped"
    finally:
        h.stop()
