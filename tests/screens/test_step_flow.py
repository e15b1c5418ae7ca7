"""The steps hand their result back (``screens.base.Move``) to the app's one step coroutine (``WizardApp._walk``),
which shows what comes next (issue 18): a change asked from the review comes back to it, Back goes one step back,
and a result from a screen already left is dropped. Real sandbox, keys as a person presses them."""
from __future__ import annotations

from screens.app import WizardApp
from screens.base import Move

from .conftest import settle, wait_current
from .test_walk import full_prefill


async def test_the_step_coroutine_follows_what_each_step_hands_back(wiz_env):
    sandbox = wiz_env
    sandbox.enable()
    app = WizardApp(full_prefill(sandbox, "flow"), log_path=str(sandbox.state_root / "wizard.log"),
                    start="review", offer_resume=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_current(app, pilot, "review")
        review = app.screen
        app.moves.put_nowait(Move("welcome", "next"))  # from a screen already left: dropped
        await settle(app, pilot)
        assert app.current == "review" and app.screen is review

        await pilot.press("l")  # the review's change key: the location step, then back to the review
        await wait_current(app, pilot, "location")
        await pilot.press("enter")
        await wait_current(app, pilot, "review")
        assert app.screen is not review

        await pilot.press("escape")  # Back: the step before the review
        await wait_current(app, pilot, "credentials")
        await pilot.press("escape")
        await wait_current(app, pilot, "location")
        await pilot.press("enter")  # after going back, Next walks every step again, answered or not
        await wait_current(app, pilot, "credentials")
        await pilot.press("enter")
        await wait_current(app, pilot, "review")
        await pilot.press("ctrl+q")
    assert app.return_code == 130
