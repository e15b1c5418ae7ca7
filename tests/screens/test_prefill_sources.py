"""The wizard starts from the same input chain as the command line (issue 15): values from the environment or
gcloud's config are defaults (their screens are still asked), and each screen says where its value came from."""
from __future__ import annotations

from textual.widgets import Select

from screens.app import WizardApp

from .conftest import settle, wait_current
from .textshot import screen_text

GCLOUD_REGION = "gcloud config compute/region, configuration default"


async def test_location_starts_from_gcloud_region_and_says_so(wiz_env):
    wiz_env.enable()
    app = WizardApp({"project": wiz_env.project, "region": "europe-west4", "prefix": "src",
                     "kfp": {"manifests": wiz_env.manifests}}, log_path=str(wiz_env.state_root / "wizard.log"),
                    start="location", offer_resume=False)
    app.state.adopt_sources({"project": "flag --project", "region": GCLOUD_REGION, "prefix": "flag --prefix"})
    assert "region" not in app.state.data and "region" not in app.state.prefilled  # a default, not an answer
    assert app.state.default("region") == "europe-west4" and "prefix" in app.state.prefilled
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_current(app, pilot, "location")
        await settle(app, pilot)
        text = screen_text(app)
        assert f"region from {GCLOUD_REGION}" in text and "prefix from flag --prefix" in text, text
        assert app.screen.query_one("#region", Select).value == "europe-west4"
        await pilot.press("ctrl+q")


async def test_project_screen_says_where_the_project_came_from(wiz_env):
    app = WizardApp({"project": wiz_env.project, "kfp": {"manifests": wiz_env.manifests}},
                    log_path=str(wiz_env.state_root / "wizard.log"), start="project", offer_resume=False)
    app.state.adopt_sources({"project": "environment GOOGLE_CLOUD_PROJECT"})
    assert "project" not in app.state.prefilled and app.state.default_project() == wiz_env.project
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_current(app, pilot, "project")
        assert f"{wiz_env.project}: from environment GOOGLE_CLOUD_PROJECT" in screen_text(app)
        await pilot.press("ctrl+q")
