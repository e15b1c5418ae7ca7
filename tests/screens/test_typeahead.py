"""Keys typed during a screen change reach the screen they were meant for (issue 19 item 5).

A terminal hands the program a fast typist's keys at once; ``burst`` posts them to the driver in one go, with no
frame and no turn of the loop in between, which is what a person typing ahead (or tmux send-keys) produces."""
from __future__ import annotations

from textual import events
from textual.widgets import Input

from screens.app import WizardApp

from .conftest import settle, wait_current, wait_for
from .textshot import screen_text


def burst(app, keys: list[str]) -> None:
    for key in keys:
        char = key if len(key) == 1 else {"enter": "\r", "tab": "\t"}.get(key)
        ev = events.Key(key, char)
        ev.set_sender(app)
        app._driver.send_message(ev)


async def test_typeahead_into_the_next_field(wiz_env):
    """Enter on the sign-in step, then the project id at once: the letters land in the project's field."""
    sandbox = wiz_env
    sandbox.enable("cloudresourcemanager.googleapis.com")
    app = WizardApp(prefill={"kfp": {"manifests": sandbox.manifests}})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_current(app, pilot, "welcome")
        burst(app, ["enter", "enter", "ctrl+u"] + list("mlops-demo"))
        await wait_current(app, pilot, "project")
        await wait_for(app, pilot, lambda: not app._held_keys, 30, "the held keys to be handed on")
        await settle(app, pilot)
        assert app.screen.query_one("#project-input", Input).value == "mlops-demo", screen_text(app)


async def test_typeahead_through_a_check_a_dialog_and_a_worker(wiz_env):
    """From the welcome screen, in one burst: Enter, Enter (sign-in), the project id and Enter (checked in a worker
    before the step moves on), Enter on the APIs (a dialog), y (the APIs are enabled in a worker, then the wizard
    moves on), then a new prefix for the location step. Every key lands where it was meant to."""
    sandbox = wiz_env
    sandbox.enable("cloudresourcemanager.googleapis.com")
    app = WizardApp(prefill={"kfp": {"manifests": sandbox.manifests}})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_current(app, pilot, "welcome")
        burst(app, ["enter", "enter", "ctrl+u"] + list(sandbox.project) + ["enter", "enter", "y", "ctrl+u"]
              + list("fast"))
        await wait_current(app, pilot, "location", timeout=90)
        await wait_for(app, pilot, lambda: not app._held_keys, 30, "the held keys to be handed on")
        await settle(app, pilot)
        assert app.state.data["project"] == sandbox.project
        assert app.state.apis_confirmed and not any(
            v is False for v in (app.state.api_states or {}).values()), app.state.api_states
        assert app.screen.query_one("#prefix", Input).value == "fast", screen_text(app)
        assert "fast-kfp-cluster" in screen_text(app)
