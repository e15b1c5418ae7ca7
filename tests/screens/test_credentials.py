"""The credentials screen (issue 19 item 5): Workload Identity is the default when key creation is not known to
be allowed, and the screen says why; the choice is marked ● / ○ (readable without colour); plain words; the
organisation-policy note tells "the Org Policy API is not enabled" from "no permission"."""
from __future__ import annotations

from screens.app import WizardApp

from .conftest import settle, wait_current
from .textshot import screen_text

PREFILL = {"region": "us-central1", "prefix": "wizc"}


def app_for(sandbox) -> WizardApp:
    return WizardApp({**PREFILL, "project": sandbox.project}, log_path=str(sandbox.state_root / "wizard.log"),
                     start="credentials", offer_resume=False)


async def test_unknown_policy_defaults_to_workload_identity_and_says_the_api_is_off(wiz_env):
    from sandbox.catalog import SERVICE_TITLES as SERVICES

    # every API but the Org Policy API (which reads the managed key constraint)
    wiz_env.enable(*[s for s in SERVICES if s != "orgpolicy.googleapis.com"])
    app = app_for(wiz_env)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_current(app, pilot, "credentials")
        text = screen_text(app)
        assert "● Workload Identity (recommended)" in text and "○ Service-account key" in text, text
        flat = " ".join(text.split())
        assert "the Org Policy API is not enabled" in flat and "Workload Identity is the default" in flat, text
        assert "seed" not in text
        await pilot.press("down")  # the marker follows the choice
        await settle(app, pilot)
        text = screen_text(app)
        assert "○ Workload Identity" in text and "● Service-account key" in text, text
        await pilot.press("up", "enter")
        await wait_current(app, pilot, "review")
        assert app.state.data["credentials"] == "workload-identity"


async def test_no_permission_to_read_the_policy_is_said_as_such(wiz_env):
    wiz_env.enable()
    wiz_env.fault(r"(getEffectivePolicy|getEffectiveOrgPolicy)", 403, times=100,
                  message="Permission denied on resource (or it may not exist).")
    app = app_for(wiz_env)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_current(app, pilot, "credentials")
        text = screen_text(app)
        flat = " ".join(text.split())
        assert "no permission to read the organisation policy" in flat, text
        assert "not enabled" not in flat and "● Workload Identity" in text, text
        await pilot.press("ctrl+q")
