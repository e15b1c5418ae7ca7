"""The wizard's Destroy action (issue 13 item 6): from the done screen, and for an environment recorded on this
machine from the welcome screen. What goes and what stays is listed, the environment id is typed to confirm (as
`mlops-install destroy` asks on a terminal), and the destroys run through the engine with the install's panes."""
from __future__ import annotations

import json

from screens.app import WizardApp
from screens.modals import InputModal, PickModal

from tests.installer.test_cli_destroy import _ours

from .conftest import clear_input, settle, type_text, wait_current, wait_for
from .test_walk import full_prefill, install_to_done
from .textshot import screen_text

SIZE = (100, 32)


def _journal_status(sandbox, env_id: str) -> str:
    return json.loads((sandbox.state_root / "envs" / env_id / "journal.json").read_text())["status"]


async def test_destroy_from_the_done_screen(wiz_env):
    sandbox = wiz_env
    sandbox.enable()
    app = WizardApp(full_prefill(sandbox, "wzd"), start="review", offer_resume=False)
    env_id = f"{sandbox.project}--wzd"
    async with app.run_test(size=SIZE) as pilot:
        await wait_current(app, pilot, "review", timeout=60)
        await install_to_done(app, pilot)
        assert app.current == "done", screen_text(app)
        assert all(_ours(sandbox.state(), "wzd").values())
        assert "Destroy" in screen_text(app)  # the key is offered

        await pilot.press("d")
        await wait_for(app, pilot, lambda: isinstance(app.screen, InputModal), 30, "the destroy confirm")
        text = screen_text(app)
        assert "Removed" in text and "wzd-kfp-cluster" in text and "Kept" in text and "APIs" in text, text
        sandbox.clear_requests()
        await type_text(pilot, "wrong")  # not the id: refused, still asking, nothing sent
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, InputModal) and f"type {env_id} exactly" in screen_text(app)
        assert [r for r in sandbox.requests(mutating=True) if not r["path"].startswith("/token")] == []
        await clear_input(pilot)
        await type_text(pilot, env_id)
        await pilot.press("enter")

        await wait_for(app, pilot, lambda: app.current == "destroy", 30, "the destroy to start")
        assert "Destroying" in screen_text(app)
        await wait_for(app, pilot, lambda: app.current in ("destroyed", "failure"), 180, "the destroy to end")
        assert app.current == "destroyed", screen_text(app)
        assert "run destroyed" in screen_text(app)
        gone = _ours(sandbox.state(), "wzd")
        assert not any(gone.values()), gone
        assert _journal_status(sandbox, env_id) == "destroyed"
        await pilot.press("q")
    assert app.return_code == 0


async def test_destroy_a_recorded_environment_from_the_welcome_screen(wiz_env):
    sandbox = wiz_env
    sandbox.enable()
    app = WizardApp(full_prefill(sandbox, "wzr"), start="review", offer_resume=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_current(app, pilot, "review", timeout=60)
        await install_to_done(app, pilot)
        assert app.current == "done"
        await pilot.press("q")

    env_id = f"{sandbox.project}--wzr"
    app = WizardApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_current(app, pilot, "welcome")
        await pilot.press("d")
        await wait_for(app, pilot, lambda: isinstance(app.screen, PickModal), 30, "the list of environments")
        assert env_id in screen_text(app)
        await pilot.press("enter")
        await wait_for(app, pilot, lambda: isinstance(app.screen, InputModal), 30, "the destroy confirm")
        assert "wzr-kfp-cluster" in screen_text(app)
        await pilot.press("escape")  # cancelled: nothing goes
        await settle(app, pilot)
        assert app.current == "welcome" and not isinstance(app.screen, InputModal)
        assert all(_ours(sandbox.state(), "wzr").values())
        assert _journal_status(sandbox, env_id) == "done"

        await pilot.press("d")
        await wait_for(app, pilot, lambda: isinstance(app.screen, PickModal), 30, "the list of environments")
        await pilot.press("enter")
        await wait_for(app, pilot, lambda: isinstance(app.screen, InputModal), 30, "the destroy confirm")
        await type_text(pilot, env_id)
        await pilot.press("enter")
        await wait_for(app, pilot, lambda: app.current in ("destroyed", "failure"), 180, "the destroy to end")
        assert app.current == "destroyed", screen_text(app)
        assert not any(_ours(sandbox.state(), "wzr").values())
        assert _journal_status(sandbox, env_id) == "destroyed"
        await pilot.press("q")
    assert app.return_code == 0
