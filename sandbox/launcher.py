"""Start a sandbox as a background process (for ``mlops-install --sandbox``, ``make demo`` and tests).

A sandbox started for an installer (``exit_with_parent``) stops when that installer is gone, however it ends (Ctrl+C,
a crash, SIGKILL, the terminal closed: the sandbox's own watch of the parent pid, ``sandbox serve --exit-with``), and
``idle_minutes`` adds a watchdog process that stops it after that long without a request (``requests.jsonl`` not
written), in case the pid watch misses (the pid reused). Its state stays on disk: the next installer's sandbox picks
it up (a resumed install finds what it made).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .env import env_vars, state_folder


class SandboxError(RuntimeError):
    pass


class SandboxHandle:
    """A running sandbox process. ``env`` holds the variables that point clients at it.

    ``proc`` is None when the handle attached to a sandbox that was already running on the state dir
    (``attached`` is then True); ``stop()`` stops it all the same.
    """

    def __init__(self, proc: subprocess.Popen | None, state_dir: Path, speed: float, info: dict) -> None:
        self.proc = proc
        self.state_dir = state_dir
        self.speed = speed
        self.info = info
        self.url: str = info["url"]
        self.port: int = info["port"]
        self.pid: int = proc.pid if proc is not None else int(info["pid"])
        self.attached = proc is None
        self.env: dict[str, str] = env_vars(state_dir, info)

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return _pid_alive(self.pid)

    def _signal_and_wait(self, sig: int, timeout: float) -> bool:
        if self.proc is not None:
            if self.proc.poll() is not None:
                return True
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        if not _pid_alive(self.pid):
            return True
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not _pid_alive(self.pid):
                return True
            time.sleep(0.02)
        return False

    def stop(self, timeout: float = 10.0) -> None:
        if not self._signal_and_wait(signal.SIGTERM, timeout):
            self._signal_and_wait(signal.SIGKILL, 5)

    def kill(self) -> None:
        """Die without a goodbye (SIGKILL), as a crash would."""
        self._signal_and_wait(signal.SIGKILL, 5)

    def __enter__(self) -> "SandboxHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def running(state_dir: str | os.PathLike) -> dict | None:
    """The info of the sandbox serving ``state_dir`` right now, if one does."""
    try:
        info = json.loads((Path(state_dir) / "sandbox.json").read_text())
    except (OSError, ValueError):
        return None
    if not _pid_alive(int(info.get("pid", 0))):
        return None
    health = _health(info["url"])
    if not health or int(health.get("pid", -1)) != int(info["pid"]):
        return None
    return info


def _health(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url + "/_sandbox/health", timeout=2) as r:
            return json.loads(r.read())
    except OSError:
        return None


def start_background(state_dir: str | os.PathLike, speed: float = 0.05, port: int = 0,
                     timeout: float = 30.0, exit_with_parent: bool = False,
                     idle_minutes: float | None = None) -> SandboxHandle:
    """Start ``python -m sandbox serve`` on ``state_dir`` and wait until it answers.

    If a sandbox already serves ``state_dir``, the handle attaches to it instead (``handle.attached``).
    The process outlives its starter unless ``exit_with_parent`` is set (``mlops-install --sandbox``, ``demo`` and the
    test fixture do): then it stops when this process is gone, and a resumed installer starts a new one on the same
    state. ``idle_minutes``: also stop it after that long without a request (a watchdog process, ``watch``).
    Its output goes to ``state_dir/sandbox.log``.
    """
    state_dir = state_folder(Path(state_dir).resolve())
    info_path = state_dir / "sandbox.json"
    current = running(state_dir)
    if current is not None:  # one sandbox per state dir: attach to it (e.g. an installer resumed after a kill)
        return SandboxHandle(None, state_dir, float(current.get("speed", speed)), current)
    cmd = [sys.executable, "-m", "sandbox", "serve", "--state", str(state_dir), "--speed", repr(float(speed))]
    if port:
        cmd += ["--port", str(port)]
    if exit_with_parent:
        cmd += ["--exit-with", str(os.getpid())]
    log = open(os.open(state_dir / "sandbox.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    os.chmod(state_dir / "sandbox.log", 0o600)
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
            if idle_minutes:
                _start_watchdog(proc.pid, state_dir, idle_minutes * 60.0, env)
            return SandboxHandle(proc, state_dir, float(speed), info)
        time.sleep(0.02)
    proc.kill()
    raise SandboxError(f"sandbox did not come up within {timeout}s (log: {state_dir / 'sandbox.log'})")


# ---------------------------------------------------------------------------------------------- idle watchdog

WATCH_EVERY = 15.0  # seconds between looks


def _start_watchdog(pid: int, state_dir: Path, idle_seconds: float, env: dict[str, str]) -> None:
    """``python -m sandbox.launcher watch``: its own session, no terminal, gone when the sandbox is."""
    subprocess.Popen([sys.executable, "-m", "sandbox.launcher", "watch", str(pid), str(state_dir), repr(idle_seconds)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                     start_new_session=True)


def last_activity(state_dir: Path, since: float) -> float:
    """When the sandbox last answered a request (its request log's mtime), not before ``since``."""
    try:
        return max(since, (Path(state_dir) / "requests.jsonl").stat().st_mtime)
    except OSError:
        return since


def watch(pid: int, state_dir: Path, idle_seconds: float, every: float = WATCH_EVERY) -> str:
    """Until the sandbox ``pid`` is gone (returns "gone"), or idle for ``idle_seconds`` (SIGTERM; returns "idle")."""
    started = time.time()
    while True:
        if not _pid_alive(pid):
            return "gone"
        idle = time.time() - last_activity(state_dir, started)
        if idle >= idle_seconds:
            try:
                with open(Path(state_dir) / "sandbox.log", "a") as f:
                    f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} watchdog: no request for {idle / 60:.0f} min: "
                            f"stopping the sandbox (pid {pid})\n")
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
            return "idle"
        time.sleep(min(every, max(idle_seconds - idle, 0.05)))


if __name__ == "__main__":  # python -m sandbox.launcher watch PID STATE_DIR IDLE_SECONDS
    if len(sys.argv) == 5 and sys.argv[1] == "watch":
        watch(int(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]))
    else:
        raise SystemExit("usage: python -m sandbox.launcher watch PID STATE_DIR IDLE_SECONDS")
