"""Pilot walks through the whole wizard against the sandbox, as a person would with the keyboard."""
from __future__ import annotations

import os
import re
import stat

import pytest

from screens.app import WizardApp

from .conftest import install_from_review, clear_input, settle, type_text, wait_current, wait_for
from .textshot import screen_text

SIZE = (100, 32)


def full_prefill(sandbox, prefix: str, credentials: str = "key") -> dict:
    """Every answer given (the wizard goes straight to the review), for the sandbox's project."""
    return {"project": sandbox.project, "region": "us-central1", "zone": "us-central1-a", "prefix": prefix,
            "credentials": credentials, "apis": {"enable": True}, "kfp": {"manifests": sandbox.manifests}}


async def walk_to_review(app, pilot, *, prefix: str, mode: str, listable: bool) -> None:
    await wait_current(app, pilot, "welcome")
    assert "sandbox" in screen_text(app)
    await pilot.press("enter")

    await wait_current(app, pilot, "auth")
    text = screen_text(app)
    assert "mlops-demo-project.iam.gserviceaccount.com" in text, text
    await pilot.press("enter")

    await wait_current(app, pilot, "project")
    await clear_input(pilot)
    if listable:
        await type_text(pilot, "demo")  # filter as you type: only the sandbox's project matches
        await settle(app, pilot)
        assert "mlops-demo-project" in screen_text(app)
    else:  # Resource Manager's API is still disabled: the list says why, and an id can be typed
        text = screen_text(app)
        assert "could not list projects" in text, text
        await type_text(pilot, "mlops-demo-project")
    await pilot.press("enter")

    await wait_current(app, pilot, "apis")
    assert app.state.data["project"] == "mlops-demo-project"
    text = screen_text(app)
    assert "disabled" in text, text
    await pilot.press("enter")  # asks once: enable the missing
    await wait_for(app, pilot, lambda: "Enable" in screen_text(app), 60, "the confirm dialog")
    await pilot.press("y")

    await wait_current(app, pilot, "location", timeout=60)
    await clear_input(pilot)
    await type_text(pilot, "x" * 24)  # too long: the names that break a rule turn red, Enter refuses
    await settle(app, pilot)
    assert "✘" in screen_text(app)
    await pilot.press("enter")
    await settle(app, pilot)
    assert app.current == "location"
    await clear_input(pilot)
    await type_text(pilot, prefix)
    await settle(app, pilot)
    text = screen_text(app)
    assert f"{prefix}-kfp-cluster" in text and f"{prefix}-artifact-store" in text
    assert "✘" not in text and "not checked" not in text, text
    await pilot.press("enter")

    await wait_current(app, pilot, "credentials")
    # Workload Identity is first (and the default when keys are not known to be allowed), the key second
    await pilot.press("end" if mode == "key" else "home")
    await pilot.press("enter")
    await wait_current(app, pilot, "review", timeout=60)
    assert app.state.data["credentials"] == mode


async def install_to_done(app, pilot, timeout: float = 180) -> None:
    await install_from_review(app, pilot)
    await wait_for(app, pilot, lambda: app.current in ("done", "failure"), timeout, "the install to end")
    await settle(app, pilot)
    assert app.current == "done", screen_text(app)


@pytest.mark.parametrize("mode", ["key", "workload-identity"])
async def test_walk_to_done(wiz_env, mode, tmp_path, monkeypatch):
    sandbox = wiz_env
    kubeconfig, key_file = tmp_path / "kube" / "config", tmp_path / "out" / "kfp-key.json"
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # the command line's --export-key PATH and --write-kubeconfig, as run_wizard passes them on
    runtime = {"export_key_path": str(key_file), "write_kubeconfig": True}
    app = WizardApp({"kfp": {"manifests": sandbox.manifests}}, log_path=str(sandbox.state_root / "wizard.log"),
                    runtime=runtime)
    prefix = "wiz" + ("k" if mode == "key" else "w")
    listable = mode == "key"
    if listable:  # a project where some APIs are on already; the other case starts with all of them off
        sandbox.enable("cloudresourcemanager.googleapis.com", "compute.googleapis.com")
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_review(app, pilot, prefix=prefix, mode=mode, listable=listable)
        text = screen_text(app)
        assert f"{prefix}-kfp-cluster" in text and "Expected time" in text
        await install_to_done(app, pilot)
        text = screen_text(app)
        assert "KFP UI: https://" in text, text
        assert "answers.yaml" in text
        path = app.written_answers
        assert path is not None and path.exists()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        body = path.read_text()
        assert f"prefix: {prefix}" in body and f"credentials: {mode}" in body
        flat = text.replace("\n", "")
        # the words without the wrapping: a long path breaks anywhere, and the scrollbar's glyphs sit at line ends
        squashed = re.sub(r"[\s\u2580-\u259f]+", "", text)
        assert "Kubeconfig written:" in text and kubeconfig.exists(), text
        assert stat.S_IMODE(os.stat(kubeconfig).st_mode) == 0o600
        if mode == "key":
            assert "Key file written:" in text and str(key_file) in squashed, text
            assert key_file.exists() and stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
            assert f"--export-key{key_file}--write-kubeconfig" in squashed, text
        else:  # Workload Identity makes no key: the done screen says so, nothing is written
            assert "Workload Identity makes no key" in flat and not key_file.exists(), text
            assert "--export-key" not in flat.split("Repeat without the wizard:")[1].split("Log:")[0], text
        await pilot.press("q")
    assert app.return_code == 0


async def test_failure_fix_retry(wiz_env):
    sandbox = wiz_env
    sandbox.enable()
    sandbox.fault(r"/storage/v1/b$", 403, method="POST", times=100,
                  message="The caller does not have permission storage.buckets.create")
    prefill = full_prefill(sandbox, "wizf")
    app = WizardApp(prefill, log_path=str(sandbox.state_root / "wizard.log"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_current(app, pilot, "welcome")
        await pilot.press("enter")
        await wait_current(app, pilot, "auth")
        await pilot.press("enter")
        await wait_current(app, pilot, "review")  # everything else was answered
        await install_from_review(app, pilot)
        await wait_for(app, pilot, lambda: app.current in ("done", "failure"), 180, "the install to end")
        await settle(app, pilot)
        assert app.current == "failure", screen_text(app)
        text = screen_text(app)
        assert "Artifact bucket" in text and "permission" in text.lower(), text
        assert "Retry" in text and str(app.log_path) in text.replace("\n", "") or "Log:" in text
        sandbox.clear_faults()
        await pilot.press("r")
        await wait_for(app, pilot, lambda: app.current in ("done", "failure") and app.finished is not None,
                       180, "the retry to end")
        await settle(app, pilot)
        assert app.current == "done", screen_text(app)
        # the retry resumed: what was made before was found again, not made twice
        assert any(o in ("unchanged", "adopted") for o in app.tally.outcomes.values()), app.tally.outcomes
        await pilot.press("q")
    assert app.return_code == 0


async def test_failure_quit_resume_later(wiz_env):
    sandbox = wiz_env
    sandbox.enable()
    sandbox.fault(r"/storage/v1/b$", 403, method="POST", times=100)
    prefill = full_prefill(sandbox, "wizq", "workload-identity")
    app = WizardApp(prefill, log_path=str(sandbox.state_root / "wizard.log"), start="review")
    async with app.run_test(size=SIZE) as pilot:
        await wait_current(app, pilot, "review")
        await install_from_review(app, pilot)
        await wait_for(app, pilot, lambda: app.current in ("done", "failure"), 180, "the install to end")
        await settle(app, pilot)
        assert app.current == "failure"
        await pilot.press("q")
    assert app.return_code == 4

    # a new wizard on the same environment offers to resume; yes → straight to the review
    sandbox.clear_faults()
    app2 = WizardApp({}, log_path=str(sandbox.state_root / "wizard.log"))
    async with app2.run_test(size=SIZE) as pilot:
        await wait_for(app2, pilot, lambda: "Resume the unfinished install" in screen_text(app2), 60,
                       "the resume offer")
        assert "mlops-demo-project--wizq" in screen_text(app2)
        await pilot.press("y")
        await wait_current(app2, pilot, "auth")
        await pilot.press("enter")
        await wait_current(app2, pilot, "review")
        assert app2.state.data["credentials"] == "workload-identity"
        assert "An earlier run of this environment left state" in screen_text(app2)
        await install_to_done(app2, pilot)
        await pilot.press("q")
    assert app2.return_code == 0


async def test_prefill_skips_answered_and_back_reaches_them(wiz_env):
    sandbox = wiz_env
    prefill = {"project": sandbox.project, "region": "us-central1", "prefix": "wizp"}
    app = WizardApp(prefill, log_path=str(sandbox.state_root / "wizard.log"), offer_resume=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_current(app, pilot, "welcome")
        await pilot.press("enter")
        await wait_current(app, pilot, "auth")
        await pilot.press("enter")
        await wait_current(app, pilot, "apis")  # the project was answered
        await pilot.press("escape")
        await wait_current(app, pilot, "project")  # ... but Back reaches it
        assert app.screen.query_one("#project-input").value == sandbox.project
        await pilot.press("ctrl+q")
    assert app.return_code == 130


async def test_key_mode_blocked_by_org_policy(wiz_env):
    sandbox = wiz_env
    sandbox.enable()
    sandbox.scenario("org_policy_keys", enforced=True)
    prefill = {"project": sandbox.project, "region": "us-central1", "prefix": "wizo"}
    app = WizardApp(prefill, log_path=str(sandbox.state_root / "wizard.log"), start="credentials",
                    offer_resume=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_current(app, pilot, "credentials")
        text = screen_text(app)
        assert "iam.disableServiceAccountKeyCreation" in text, text
        await pilot.press("down", "enter")  # key: refused
        await settle(app, pilot)
        assert app.current == "credentials"
        await pilot.press("up", "enter")
        await wait_current(app, pilot, "review")
        assert app.state.data["credentials"] == "workload-identity"


async def test_stop_during_install_is_130_and_resumable(wiz_env):
    sandbox = wiz_env
    sandbox.enable()
    prefill = full_prefill(sandbox, "wizs")
    app = WizardApp(prefill, log_path=str(sandbox.state_root / "wizard.log"), start="review", offer_resume=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_current(app, pilot, "review")
        await install_from_review(app, pilot)
        await wait_for(app, pilot, lambda: any(type(e).__name__ == "StepStarted" and e.step_id == "cluster"
                                               for e in app.events), 60, "the cluster step to start")
        await pilot.press("ctrl+q")
        await wait_for(app, pilot, lambda: "Stop the install?" in screen_text(app), 60, "the stop dialog")
        await pilot.press("y")
        await wait_for(app, pilot, lambda: app.return_code is not None, 90, "the app to exit")
    assert app.return_code == 130
    from installer.journal import Journal
    j = Journal(f"{sandbox.project}--wizs", sandbox.state_root)
    assert j.data.get("status") == "interrupted"
    assert j.lock_holder() is None  # the lock was released


async def test_preflight_failure_stops_on_review_before_install(wiz_env):
    """The preflight runs on Review (issue 19, item 3): a failing check is listed there with its fix, Install is
    not offered (Enter stays), nothing is created; the quota's fix says so and the install never starts."""
    sandbox = wiz_env
    sandbox.enable()
    sandbox.scenario("cpu_quota", region="us-central1", limit=2)
    prefill = full_prefill(sandbox, "wizpf")
    app = WizardApp(prefill, log_path=str(sandbox.state_root / "wizard.log"), start="review", offer_resume=False)
    async with app.run_test(size=(120, 60)) as pilot:
        await wait_current(app, pilot, "review")
        text = screen_text(app)
        assert "✘ 1 failed: fix them before Install" in text and "quota" in text.lower(), text
        await install_from_review(app, pilot)
        await settle(app, pilot)
        assert app.current == "review" and app.install_screen is None, screen_text(app)
        assert not [r for r in sandbox.requests(mutating=True) if "/_sandbox/" not in r.get("path", "")
                    and r.get("api") != "serviceusage"], "preflight must not create anything"
        await pilot.press("ctrl+q")
    assert app.return_code == 130


async def test_unusable_project_stops_on_the_project_screen_unrecorded(wiz_env):
    """A typed project id that does not exist (issue 19 item 2): the project screen says once that it cannot be
    used and stays; nothing is recorded (no environment folder, no journal, no answers); a usable id goes on."""
    app = WizardApp({"kfp": {"manifests": wiz_env.manifests}}, log_path=str(wiz_env.state_root / "wizard.log"),
                    start="project", offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_current(app, pilot, "project")
        await clear_input(pilot)
        await type_text(pilot, "no-such-project-1")
        await pilot.press("enter")
        await wait_for(app, pilot, lambda: "cannot be used" in screen_text(app), 60, "the unusable project")
        await settle(app, pilot)
        text = screen_text(app)
        assert app.current == "project" and text.count("cannot be used") == 1, text
        assert app.state.data.get("project") != "no-such-project-1"
        assert not (wiz_env.state_root / "envs").exists() or not any((wiz_env.state_root / "envs").iterdir())
        await clear_input(pilot)
        await type_text(pilot, wiz_env.project)
        await pilot.press("enter")
        await wait_current(app, pilot, "apis")
        assert app.state.data["project"] == wiz_env.project
        await pilot.press("ctrl+q")


async def test_a_fresh_install_writes_its_answers_when_the_run_starts(wiz_env, caplog):
    """A new environment has no folder until the install's run takes its lock: the answers are written beside the
    journal once the run has started (its RunStarted event), so an install stopped midway still has them, and
    never before (the write once failed on every fresh install: no folder yet, only a line in the log)."""
    from installer.events import StepStarted
    from installer.paths import env_answers

    sandbox = wiz_env
    sandbox.enable()
    app = WizardApp(full_prefill(sandbox, "wizan"), log_path=str(sandbox.state_root / "wizard.log"),
                    start="review", offer_resume=False)
    path = env_answers(f"{sandbox.project}--wizan", sandbox.state_root)
    async with app.run_test(size=SIZE) as pilot:
        await wait_current(app, pilot, "review")
        assert not path.parent.exists()
        await install_from_review(app, pilot)
        await wait_for(app, pilot, lambda: any(isinstance(e, StepStarted) for e in app.events), 60, "a step")
        await wait_for(app, pilot, path.exists, 30, "the answers file")
        assert "prefix: wizan" in path.read_text()
        await wait_for(app, pilot, lambda: app.current in ("done", "failure"), 180, "the install to end")
        assert app.current == "done" and app.written_answers == path
    assert not [r for r in caplog.records if "could not write the answers" in r.getMessage()]
