"""Snapshots of every screen (pytest-textual-snapshot; baselines under __snapshots__/, made with --snapshot-update).

Deterministic: fixed terminal size, every worker awaited, cursor blink off (the app turns it off when headless),
no tools on PATH for the welcome screen (their versions differ between machines), a fixed clock and UTC for the
install view, fixed paths on the done/failure screens. The wizard screens run against the sandbox."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.app import App
from textual.worker import WorkerCancelled, WorkerFailed

from screens.app import WizardApp

SIZE = (80, 24)
PREFILL = {"project": "mlops-demo-project", "region": "us-central1", "zone": "us-central1-a", "prefix": "snap",
           "credentials": "key"}


async def quiet(pilot, timeout: float = 60.0) -> None:
    """Wait until no worker is left (a worker's answer may start the next one, e.g. regions → zones), and the
    answer of the last one has been painted. Bounded, and generous for a loaded 2-core machine."""
    app = pilot.app
    end = time.monotonic() + timeout
    idle = 0
    while idle < 3:  # three idle turns in a row: a call_from_thread posted by a finishing worker has landed
        if time.monotonic() > end:
            raise AssertionError(f"workers still running after {timeout:g}s: "
                                 f"{[w.name for w in app.workers if w.is_running]}")
        try:
            await app.workers.wait_for_complete()
        except (WorkerCancelled, WorkerFailed):  # an exclusive worker replaced by a newer one (regions → zones)
            pass
        await pilot.pause()
        busy = any(w.is_running for w in app.workers)
        idle = 0 if busy else idle + 1
    await pilot.wait_for_scheduled_animations()


async def until(pilot, predicate, what: str, timeout: float = 30.0) -> None:
    """Await a condition (bounded) instead of sleeping a fixed time."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await pilot.pause(0.02)
    await pilot.pause()


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
        from screens.modals import ConfirmModal
        await quiet(pilot)
        await pilot.press("e")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal), "the confirm dialog")
        await quiet(pilot)

    assert snap_compare(wizard("apis"), terminal_size=SIZE, run_before=run_before)


def test_resume_dialog(snap_env, snap_compare):
    """The offer to resume an unfinished install, as the wizard shows it on start (fixed values: the real
    journal's times change from run to run; test_walk covers finding the journal)."""
    from screens.modals import ConfirmModal
    from screens.services import UnfinishedRun

    async def run_before(pilot):
        await quiet(pilot)
        pilot.app._offer_resume(UnfinishedRun("mlops-demo-project--snap", 9, 18, ["cluster"], None, T0 + 3600))
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal), "the resume dialog")
        await quiet(pilot)

    assert snap_compare(wizard("welcome"), terminal_size=SIZE, run_before=run_before)


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


def test_review_120x40(snap_env, snap_compare):
    """The checks before install (the preflight) under the estimate, the manifests' source with its key."""
    snap_env.enable()
    assert snap_compare(wizard("review"), terminal_size=(120, 40), run_before=quiet)


def test_review_80x24(snap_env, snap_compare):
    """At 80×24 the summary's right-hand column still says which key changes a row."""
    snap_env.enable()
    assert snap_compare(wizard("review"), terminal_size=SIZE, run_before=quiet)


# ---- the install, failure and done screens, fed fixed events (a fixed clock keeps the times still)

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


class Host(App):
    CSS_PATH = [*WizardApp.CSS_PATH, *WizardApp.LATER_CSS_PATH]
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


def _running_install():
    """The install screen 95 s into a run (fixed clock), with ``_events()`` applied."""
    from screens.install import InstallScreen

    scr = InstallScreen(_plan(), scale=1.0, clock=lambda: T0 + 95)
    for e in _events():
        scr.apply(e)
    return scr


def test_install_running(snap_env, snap_compare):
    async def run_before(pilot):
        from screens.install import InstallScreen
        await until(pilot, lambda: isinstance(pilot.app.screen, InstallScreen) and pilot.app.screen._ready,
                    "the install screen")
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(Host(_running_install), terminal_size=(120, 40), run_before=run_before)


def test_install_running_80x24(snap_env, snap_compare):
    assert snap_compare(Host(_running_install), terminal_size=SIZE)


def test_install_full_log_80x24(snap_env, snap_compare):
    """**l** on the install screen: every pane's lines in order, scrollable, wrapped at word boundaries."""
    async def run_before(pilot):
        from screens.install import InstallScreen
        from screens.modals import LogModal
        await until(pilot, lambda: isinstance(pilot.app.screen, InstallScreen) and pilot.app.screen._ready,
                    "the install screen")
        await pilot.press("l")
        await until(pilot, lambda: isinstance(pilot.app.screen, LogModal), "the full log")
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(Host(_running_install), terminal_size=SIZE, run_before=run_before)


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


def test_failure_120x40(snap_env, snap_compare):
    """A quota failure of a zonal cluster: the key that changes the answer, the console link, no zone advice."""
    from installer.events import RunFinished, StepFailed
    from screens.failure import FailureScreen

    fails = [StepFailed("cluster", "quota", "Insufficient regional quota to satisfy request: resource CPUS in "
                        "us-central1 (needs 12, 8 free)", "Ask for more CPUS quota in us-central1, or use fewer "
                        "nodes. Or use a zone.", ts=T0)]
    plan = _plan()
    make = lambda: FailureScreen(fails, RunFinished("failed", 4, ["cluster"], ts=T0), log_path="/var/log/x.log",
                                 titles={s.id: s.title for s in plan}, env_id="mlops-demo-project--snap", skipped=9,
                                 account="ada@example.com", zone="us-central1-a")
    assert snap_compare(Host(make), terminal_size=(120, 40))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_done(snap_env, snap_compare, size):
    """The body has the focus: the arrows scroll it at once; Enter and q quit."""
    from installer.events import RunFinished
    from screens.done import DoneScreen

    plan = _plan()
    ui = "https://abc123-dot-us-central1.pipelines.googleusercontent.com"
    fin = RunFinished("done", 0, [], 912.0, {"kfp-ui": {"ui_url": ui}, "kfp-verify": {
        "state": "SUCCEEDED", "seconds": 41.3, "run_url": f"{ui}/#/runs/details/5f0c6e1a"}}, ts=T0)
    outcomes = {s.id: "created" for s in plan}
    outcomes["apis"] = "unchanged"
    from installer.flags import written_files
    runtime = {"export_key_path": "/home/me/kfp-key.json", "exported_key_path": "/home/me/kfp-key.json",
               "write_kubeconfig": True, "kubeconfig_written": ("/home/me/.kube/config", "gke_p_us-central1-a_c")}
    from installer.next_steps import next_steps
    steps = next_steps(plan.answers, fin.outputs, answers_path="/home/me/answers.yaml",
                       log_path="/home/me/.local/state/mlops-install/logs/x.log",
                       kubeconfig=runtime["kubeconfig_written"])
    make = lambda: DoneScreen(fin, plan=plan, outcomes=outcomes, answers_path="/home/me/answers.yaml",
                              command="mlops-install --non-interactive --yes --answers /home/me/answers.yaml",
                              log_path="/home/me/.local/state/mlops-install/logs/x.log",
                              written=written_files(runtime, fin, "key"), steps=steps)
    assert snap_compare(Host(make), terminal_size=size)


# ---- issue 19 part B: changed settings on Review, the backends' consent question

def _installed_infra(sandbox, prefix: str) -> dict:
    """The infrastructure installed with 3 nodes; the prefill asks for 2 (an update row on Review)."""
    import asyncio

    from backends.infra.harness import run_infra
    from installer.answers import Answers
    from installer.paths import state_root

    a = Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix=prefix)
    fin, _ = asyncio.run(run_infra(a, journal_root=state_root(), preflight=False))
    assert fin.exit_code == 0
    return {**PREFILL, "prefix": prefix, "cluster": {"node_count": 2}}


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_review_update_rows(snap_env, snap_compare, size):
    """An installed environment whose node count changed: the cluster's update row and its change (3 → 2)."""
    snap_env.enable()
    prefill = _installed_infra(snap_env, "snapu")

    async def run_before(pilot):
        await quiet(pilot)
        await pilot.press("down", "down", "down", "down", "down", "down", "down", "down")  # to the cluster's rows
        await quiet(pilot)

    assert snap_compare(wizard("review", prefill), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_consent_dialog(snap_env, snap_compare, size):
    """A backend's question (runtime["consent"]) in a dialog: Replace / Cancel, the keys shown."""
    snap_env.enable()

    async def run_before(pilot):
        await quiet(pilot)
        pilot.app.run_worker(pilot.app.ask_consent(
            "Secret kubeflow/mysql-secret already exists and was not made by this install (it would be replaced "
            "with one holding the new SQL user's password). Replace it?"), group="consent")
        await until(pilot, lambda: pilot.app.screen.__class__.__name__ == "ConfirmModal", "the dialog")

    assert snap_compare(wizard("review"), terminal_size=size, run_before=run_before)


# ---- issue 19 item 5 at 120×40 too: the APIs hint, the credentials' markers and note, the Done body's focus

def test_apis_missing_120x40(snap_env, snap_compare):
    snap_env.enable("cloudresourcemanager.googleapis.com", "compute.googleapis.com", "iam.googleapis.com")
    assert snap_compare(wizard("apis"), terminal_size=(120, 40), run_before=quiet)


def test_credentials_org_policy_120x40(snap_env, snap_compare):
    snap_env.enable()
    snap_env.scenario("org_policy_keys", enforced=True)
    assert snap_compare(wizard("credentials", {**PREFILL, "credentials": None}), terminal_size=(120, 40),
                        run_before=quiet)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_credentials_policy_unknown(snap_env, snap_compare, size):
    """The Org Policy API not enabled: Workload Identity marked ● as the default, and why."""
    from sandbox.catalog import SERVICE_TITLES

    snap_env.enable(*[s for s in SERVICE_TITLES if s != "orgpolicy.googleapis.com"])
    assert snap_compare(wizard("credentials", {**PREFILL, "credentials": None}), terminal_size=size,
                        run_before=quiet)


def test_location_size_120x40(snap_env, snap_compare):
    """Nodes per zone and machine type beside region and zone, the cluster's size under them (issue 19 item 2)."""
    snap_env.enable()
    assert snap_compare(wizard("location", {**PREFILL, "cluster": {"node_count": 2, "machine_type": "e2-standard-8"}}),
                        terminal_size=(120, 40), run_before=quiet)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_project_unusable(snap_env, snap_compare, size):
    """A project id that does not exist stops on the project screen with one message (issue 19 item 2)."""
    async def run_before(pilot):
        await quiet(pilot)
        await pilot.press(*(["end"] + ["backspace"] * 30), *"no-such-project-1", "enter")
        await until(pilot, lambda: "cannot be used" in str(pilot.app.screen.query_one("#project-check").render()),
                    "the message")
        await quiet(pilot)

    assert snap_compare(wizard("project", {}), terminal_size=size, run_before=run_before)
