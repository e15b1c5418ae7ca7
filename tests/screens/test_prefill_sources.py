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


async def test_review_says_which_answers_came_from_flags_and_gcloud(wiz_env):
    """Every answer given outside the wizard is named on Review with where it came from; one changed in the wizard
    is no longer said to come from there."""
    wiz_env.enable()
    app = WizardApp({"project": wiz_env.project, "region": "us-central1", "zone": "us-central1-a", "prefix": "rev",
                     "credentials": "key", "cluster": {"node_count": 2}, "apis": {"enable": True},
                     "kfp": {"manifests": wiz_env.manifests}}, log_path=str(wiz_env.state_root / "wizard.log"),
                    start="review", offer_resume=False)
    app.state.adopt_sources({"project": "flag --project", "credentials": "flag --credentials",
                             "cluster.node_count": "flag --set cluster.node_count", "prefix": "answers file"})
    app.state.set("project", wiz_env.project)  # the same value: still the flag's
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_current(app, pilot, "review")
        text = screen_text(app)
        assert "cluster.node_count from flag --set cluster.node_count" in text, text
        assert "credentials from flag --credentials" in text and "project from flag --project" in text, text
        assert "prefix from" not in text  # the answers file is named on its own
        app.state.set("credentials", "workload-identity")  # answered in the wizard: not the flag's any more
        assert "credentials from" not in "; ".join(app.state.given_elsewhere())
        await pilot.press("ctrl+q")
