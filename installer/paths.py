"""Where the installer keeps its state: the one owner of every path under the state dir.

    <state>/envs/<project>--<prefix>/journal.json, lock, answers.yaml   (installer.journal; the wizard's answers)
    <state>/logs/mlops-install-<stamp>-<pid>.log                          (installer.logs)
    <state>/sandbox/                                                      (demo's sandbox)

``MLOPS_INSTALL_STATE_DIR`` overrides the user state dir (tests, the sandbox). No third-party import at module level
(the wizard's first frame).
"""
from __future__ import annotations

import os
from pathlib import Path

JOURNAL_FILE = "journal.json"
ANSWERS_FILE = "answers.yaml"


def state_root() -> Path:
    """The user state directory (``MLOPS_INSTALL_STATE_DIR`` overrides, for tests and the sandbox)."""
    env = os.environ.get("MLOPS_INSTALL_STATE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_state_dir
    return Path(user_state_dir("mlops-install"))


def envs_dir(root: Path | None = None) -> Path:
    return (root or state_root()) / "envs"


def env_dir(env_id: str, root: Path | None = None) -> Path:
    """One environment's folder: its journal, lock and (the wizard's) answers."""
    return envs_dir(root) / env_id


def env_answers(env_id: str, root: Path | None = None) -> Path:
    return env_dir(env_id, root) / ANSWERS_FILE


def logs_dir(root: Path | None = None) -> Path:
    return (root or state_root()) / "logs"


def sandbox_dir(root: Path | None = None) -> Path:
    return (root or state_root()) / "sandbox"
