"""Node count and machine type on the location screen (issue 19 item 2), with the nodes, vCPU and boot disk they
need, live, from the core's rule (installer.sizing): a regional cluster defaults to 1 node per zone, a zonal one 3."""
from __future__ import annotations

from textual.widgets import Input, Select

from screens.app import WizardApp

from .conftest import clear_input, settle, type_text, wait_current
from .textshot import screen_text


async def test_nodes_and_machine_show_the_size_live_and_are_answers(wiz_env):
    wiz_env.enable()
    app = WizardApp({"project": wiz_env.project, "region": "us-central1", "zone": "us-central1-a",
                     "kfp": {"manifests": wiz_env.manifests}}, log_path=str(wiz_env.state_root / "wizard.log"),
                    start="location", offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_current(app, pilot, "location")
        text = screen_text(app)
        assert "Cluster: 3 nodes (1 zone), 12 vCPU, 300 GB boot disk" in text, text
        assert "3 (default)" in text
        app.screen.query_one("#zone", Select).clear()  # none: a regional cluster, 1 node per zone by default
        await settle(app, pilot)
        text = screen_text(app)
        assert "Cluster: 3 nodes (1 per zone in 3 zones), 12 vCPU, 300 GB boot disk" in text, text
        assert "1 (default)" in text
        app.screen.query_one("#zone", Select).value = "us-central1-a"
        await settle(app, pilot)
        app.screen.query_one("#nodes", Input).focus()
        await type_text(pilot, "0")
        await settle(app, pilot)
        assert "✘ cluster.node_count: node_count must be at least 1" in screen_text(app)
        await clear_input(pilot)
        await type_text(pilot, "2")
        await pilot.press("tab")
        await clear_input(pilot)
        await type_text(pilot, "e2-standard-2")
        await settle(app, pilot)
        text = screen_text(app)
        assert "Cluster: 2 nodes (1 zone), 4 vCPU, 200 GB boot disk" in text, text
        await pilot.press("enter")
        await wait_current(app, pilot, "credentials")
        assert app.state.data["cluster"]["node_count"] == 2
        assert app.state.data["cluster"]["machine_type"] == "e2-standard-2"
        await pilot.press("ctrl+q")
