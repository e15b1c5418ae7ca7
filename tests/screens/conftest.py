"""Helpers for the wizard's tests: every test runs against a real sandbox (the ``sandbox`` fixture)."""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from textual.worker import WorkerCancelled, WorkerFailed

from .textshot import screen_text


FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "kfp-2.14.4"


def kfp_manifests() -> str:
    """The rendered KFP 2.14.4 manifests (no network here for the upstream kustomize base)."""
    if not FIXTURES.is_dir():
        msg = f"test fixtures missing: {FIXTURES}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return str(FIXTURES)


@pytest.fixture
def wiz_env(sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The sandbox plus a private installer state dir (journals, answers, logs) and the local KFP manifests."""
    state = tmp_path / "installer-state"
    monkeypatch.setenv("MLOPS_INSTALL_STATE_DIR", str(state))
    sandbox.state_root = state
    sandbox.manifests = kfp_manifests()
    return sandbox


async def settle(app, pilot, timeout: float = 60.0) -> None:
    """Let messages flow and every worker finish (backend queries run in thread workers): no fixed sleep, but
    until three turns in a row find no worker running (a finishing worker's call_from_thread has landed by then).
    Bounded and generous: CI runs this on a loaded 2-core machine."""
    end = time.monotonic() + timeout
    idle = 0
    while idle < 3:
        if time.monotonic() > end:
            raise AssertionError(f"workers still running after {timeout:g}s; screen:\n{screen_text(app)}")
        waiting = [w for w in app.workers if w.is_running and w.group != "install"]  # not the install itself
        if waiting:  # (an empty list would mean "all workers" to wait_for_complete)
            try:
                await asyncio.wait_for(app.workers.wait_for_complete(waiting), max(end - time.monotonic(), 0.1))
            except (WorkerCancelled, WorkerFailed, asyncio.TimeoutError):  # replaced by a newer one, or failed
                pass
        await pilot.pause()
        busy = any(w.is_running and w.group != "install" for w in app.workers)
        idle = 0 if busy else idle + 1


async def wait_for(app, pilot, predicate, timeout: float = 60.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what or predicate}; screen:\n{screen_text(app)}")


async def wait_current(app, pilot, name: str, timeout: float = 90.0) -> None:
    await wait_for(app, pilot, lambda: app.current == name and not _modal(app), timeout, f"screen {name}")
    await settle(app, pilot)


def _modal(app) -> bool:
    from textual.screen import ModalScreen
    return isinstance(app.screen, ModalScreen)


async def type_text(pilot, text: str) -> None:
    await pilot.press(*[{" ": "space", "-": "minus"}.get(c, c) for c in text])


async def clear_input(pilot, n: int = 40) -> None:
    await pilot.press(*(["end"] + ["backspace"] * n))


async def install_from_review(app, pilot) -> None:
    """Enter on Review once its checks have run; accept the preflight's warnings if it asks (the sandbox's billing
    and org-policy reads are warnings)."""
    from screens.modals import ConfirmModal

    await settle(app, pilot)
    await pilot.press("enter")
    await pilot.pause(0.2)
    if isinstance(app.screen, ConfirmModal) and "warning" in screen_text(app):
        await pilot.press("y")
