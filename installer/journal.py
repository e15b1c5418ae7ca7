"""The journal: one per environment (project + prefix), the install's state on disk.

It holds the answers' digest, each step's status, the ids of what was made and
times. Never a secret. Writes are atomic (temp file, fsync, rename) and 0600; a
lock file keeps a second installer off the same environment.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

JOURNAL_VERSION = 1


def state_root() -> Path:
    """The user state directory (``MLOPS_INSTALL_STATE_DIR`` overrides, for tests and the sandbox)."""
    env = os.environ.get("MLOPS_INSTALL_STATE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_state_dir
    return Path(user_state_dir("mlops-install"))


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class Journal:
    def __init__(self, env_id: str, root: Path | None = None) -> None:
        self.env_id = env_id
        self.dir = (root or state_root()) / "envs" / env_id
        self.path = self.dir / "journal.json"
        self.data: dict[str, Any] = {"version": JOURNAL_VERSION, "env_id": env_id, "steps": {},
                                     "answers_digest": None, "runs": []}
        if self.path.exists():
            self.data = json.loads(self.path.read_text())

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def step(self, step_id: str) -> dict[str, Any]:
        return self.data["steps"].setdefault(step_id, {})

    def set_status(self, step_id: str, status: str, **extra: Any) -> None:
        rec = self.step(step_id)
        rec["status"] = status
        rec.update(extra)
        if status != "failed":
            rec.pop("error", None)
        self.save()

    def finish(self, status: str) -> None:
        self.data["status"] = status
        self.data["finished"] = time.time()
        self.save()

    def save(self) -> None:
        self.data["updated"] = time.time()
        atomic_write(self.path, json.dumps(self.data, indent=2, sort_keys=True).encode())
