"""Fixtures for the installer's tests: every test gets its own state dir (journals, logs)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    d = tmp_path / "state"
    monkeypatch.setenv("MLOPS_INSTALL_STATE_DIR", str(d))
    yield d
    from installer.logs import close_logging, redact
    close_logging()
    redact.forget_all()
