"""Start a sandbox as a background process (for ``mlops-install --sandbox``, ``make demo`` and tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .env import env_vars


class SandboxError(RuntimeError):
    pass


class SandboxHandle:
    """A running sandbox process. ``env`` holds the variables that point clients at it."""

    def __init__(self, proc: subprocess.Popen, state_dir: Path, speed: float, info: dict) -> None:
        self.proc = proc
        self.state_dir = state_dir
        self.speed = speed
        self.info = info
        self.url: str = info["url"]
        self.port: int = info["port"]
        self.pid: int = proc.pid
        self.env: dict[str, str] = env_vars(state_dir, info)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        """Die without a goodbye (SIGKILL), as a crash would."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> "SandboxHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _health(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url + "/_sandbox/health", timeout=2) as r:
            return json.loads(r.read())
    except OSError:
        return None


def start_background(state_dir: str | os.PathLike, speed: float = 0.05, port: int = 0,
                     timeout: float = 30.0, exit_with_parent: bool = False) -> SandboxHandle:
    """Start ``python -m sandbox serve`` on ``state_dir`` and wait until it answers.

    The process outlives its starter (so an installer can be killed and resumed against the same "cloud") unless
    ``exit_with_parent`` is set, as the test fixture does. Its output goes to ``state_dir/sandbox.log``.
    """
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    info_path = state_dir / "sandbox.json"
    cmd = [sys.executable, "-m", "sandbox", "serve", "--state", str(state_dir), "--speed", repr(float(speed))]
    if port:
        cmd += ["--port", str(port)]
    if exit_with_parent:
        cmd += ["--exit-with", str(os.getpid())]
    log = open(state_dir / "sandbox.log", "ab")
    env = dict(os.environ)
    # the package must be importable from the child whatever the cwd
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    log.close()
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            tail = (state_dir / "sandbox.log").read_text(errors="replace")[-2000:]
            raise SandboxError(f"sandbox exited with {proc.returncode}:\n{tail}")
        try:
            info = json.loads(info_path.read_text())
        except (OSError, ValueError):
            info = None
        if info and info.get("pid") == proc.pid and _health(info["url"]):
            return SandboxHandle(proc, state_dir, float(speed), info)
        time.sleep(0.02)
    proc.kill()
    raise SandboxError(f"sandbox did not come up within {timeout}s (log: {state_dir / 'sandbox.log'})")
