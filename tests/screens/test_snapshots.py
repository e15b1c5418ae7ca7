"""Snapshots of every screen (pytest-textual-snapshot; baselines under __snapshots__/, made with --snapshot-update).

Deterministic: fixed terminal size, every worker awaited, cursor blink off (the app turns it off when headless),
no tools on PATH for the welcome screen (their versions differ between machines), a fixed clock and UTC for the
install view, fixed paths on the done/failure screens. The wizard screens run against the sandbox."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.app import App

from screens.app import WizardApp

SIZE = (80, 24)
PREFILL = {"project": "mlops-demo-project", "region": "us-central1", "zone": "us-central1-a", "prefix": "snap",
           "credentials": "key"}


async def quiet(pilot) -> None:
    """Wait until no worker is left (a worker's answer may start the next one, e.g. regions → zones)."""
    app = pilot.app
    for _ in range(50):
        await pilot.pause(0.05)
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in app.workers) and not any(w.is_running for w in app.screen.workers):
            break
    await pilot.pause(0.1)


@pytest.fixture
def snap_env(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_INSTALL_STATE_DIR", str(tmp_path / "state"))
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield sandbox
    monkeypatch.undo()
    time.tzset()


def wizard(start: str, prefill: dict | None = None) -> WizardApp:
    return WizardApp(dict(PREFILL if prefill is None else prefill), log_path="/tmp/wizard-snapshot.log",
                     start=start, offer_resume=False)


def test_welcome(snap_env, snap_compare):
    assert snap_compare(wizard("welcome"), terminal_size=SIZE, run_before=quiet)


def test_auth(snap_env, snap_compare):
    assert snap_compare(wizard("auth"), terminal_size=SIZE, run_before=quiet)


def test_project_filtered(snap_env, snap_compare):
    snap_env.enable("cloudresourcemanager.googleapis.com")

    async def run_before(pilot):
        await quiet(pilot)
        await pilot.press(*(["end"] + ["backspace"] * 30), "d", "e", "m", "o")
        await quiet(pilot)

    assert snap_compare(wizard("project", {}), terminal_size=SIZE, run_before=run_before)


def test_apis_missing(snap_env, snap_compare):
    snap_env.enable("cloudresourcemanager.googleapis.com", "compute.googleapis.com", "iam.googleapis.com")
    assert snap_compare(wizard("apis"), terminal_size=SIZE, run_before=quiet)


def test_apis_confirm(snap_env, snap_compare):
    async def run_before(pilot):
        await quiet(pilot)
        await pilot.press("e")
        await pilot.pause(0.2)

    assert snap_compare(wizard("apis"), terminal_size=SIZE, run_before=run_before)


def test_location_prefix_bad(snap_env, snap_compare):
    snap_env.enable()

    async def run_before(pilot):
        await quiet(pilot)
        await pilot.press(*(["end"] + ["backspace"] * 30), *"my-very-long-prefix-12345")
        await quiet(pilot)

    assert snap_compare(wizard("location"), terminal_size=SIZE, run_before=run_before)


def test_credentials_org_policy(snap_env, snap_compare):
    snap_env.enable()
    snap_env.scenario("org_policy_keys", enforced=True)
    assert snap_compare(wizard("credentials", {**PREFILL, "credentials": None}), terminal_size=SIZE,
                        run_before=quiet)


def test_review(snap_env, snap_compare):
    snap_env.enable()
    assert snap_compare(wizard("review"), terminal_size=(100, 32), run_before=quiet)


# ---- the install, failure and done screens, fed fixed events (a fixed clock keeps the times still)

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


class Host(App):
    CSS_PATH = WizardApp.CSS_PATH
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, make) -> None:
        super().__init__()
        self._make = make

    def on_mount(self) -> None:
        self.push_screen(self._make())


def _plan():
    from installer.answers import Answers
    from installer.plan import build_plan
    return build_plan(Answers(project="mlops-demo-project", region="us-central1", zone="us-central1-a",
                              prefix="snap"))


def _events():
    from installer import events as E
    ev = [E.RunStarted("mlops-demo-project--snap", _plan().ids, ts=T0)]
    t = T0
    for sid in ("apis", "network", "gke-sa", "kfp-sa", "bucket", "subnet", "gke-sa-roles", "kfp-sa-roles"):
        ev.append(E.StepStarted(sid, ts=t))
        t += 2
        ev.append(E.StepDone(sid, "created" if sid != "apis" else "unchanged", seconds=2.0, ts=t))
    ev += [E.StepStarted("cluster", ts=t), E.StepStarted("sql-instance", ts=T0 + 2),
           E.StepWaiting("cluster", "cluster snap-kfp-cluster (operation operation-123)", since=t, ts=t + 1),
           E.StepWaiting("sql-instance", "Cloud SQL instance snap-ml-metadata (operation op-456)", since=T0 + 3,
                         ts=T0 + 3),
           E.StepLog("sql-instance", "instance is PENDING_CREATE", ts=T0 + 20)]
    return ev


def test_install_running(snap_env, snap_compare):
    from screens.install import InstallScreen

    def make():
        scr = InstallScreen(_plan(), scale=1.0, clock=lambda: T0 + 95)
        for e in _events():
            scr.apply(e)
        return scr

    async def run_before(pilot):
        await pilot.pause(0.2)

    assert snap_compare(Host(make), terminal_size=(120, 40), run_before=run_before)


def test_install_running_80x24(snap_env, snap_compare):
    from screens.install import InstallScreen

    def make():
        scr = InstallScreen(_plan(), scale=1.0, clock=lambda: T0 + 95)
        for e in _events():
            scr.apply(e)
        return scr

    assert snap_compare(Host(make), terminal_size=SIZE)


def test_failure(snap_env, snap_compare):
    from installer.events import RunFinished, StepFailed
    from screens.failure import FailureScreen

    fails = [StepFailed("bucket", "permission-denied",
                        "The caller does not have permission storage.buckets.create on project mlops-demo-project",
                        "Grant roles/storage.admin to the account, then Retry.", ts=T0)]
    plan = _plan()
    make = lambda: FailureScreen(fails, RunFinished("failed", 4, ["bucket"], ts=T0), log_path="/var/log/x.log",
                                 titles={s.id: s.title for s in plan}, env_id="mlops-demo-project--snap", skipped=5)
    assert snap_compare(Host(make), terminal_size=SIZE)


def test_done(snap_env, snap_compare):
    from installer.events import RunFinished
    from screens.done import DoneScreen

    plan = _plan()
    fin = RunFinished("done", 0, [], 912.0, {"kfp-ui": {"ui_url": "https://abc123-dot-us-central1.pipelines."
                                                                  "googleusercontent.com"}}, ts=T0)
    outcomes = {s.id: "created" for s in plan}
    outcomes["apis"] = "unchanged"
    make = lambda: DoneScreen(fin, plan=plan, outcomes=outcomes, answers_path="/home/me/answers.yaml",
                              command="mlops-install --non-interactive --yes --answers /home/me/answers.yaml",
                              log_path="/home/me/.local/state/mlops-install/logs/x.log")
    assert snap_compare(Host(make), terminal_size=SIZE)
