"""The full-screen wizard takes the command line's inputs as read (installer.inputs.read_given) and checks them
against the answers' rules right after its first frame (WizardApp._take_given): the rules' modules are not
imported before it. The prefill it makes is the one plain mode makes from the same chain."""
from __future__ import annotations

import argparse

from installer.inputs import read_given

from screens.app import WizardApp

from .conftest import wait_for
from .textshot import screen_text


def _args(**kw) -> argparse.Namespace:
    base = dict(in_project=None, in_region=None, in_zone=None, in_prefix=None, in_credentials=None, set=None,
                enable_apis=False)
    return argparse.Namespace(**{**base, **kw})


async def test_the_inputs_become_the_prefill_after_the_first_frame(wiz_env):
    given = read_given(None, _args(in_project=wiz_env.project, in_region="us-central1", in_prefix="Bad_Prefix",
                                   set=["verify=false"]))
    app = WizardApp(log_path=str(wiz_env.state_root / "wizard.log"), offer_resume=False, given=given,
                    manifests=wiz_env.manifests)
    assert app.state.data == {} and app.prefill_problems == []  # nothing checked before the first frame
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(app, pilot, lambda: app.first_frame_at is not None, 30, "the first frame")
        data = app.state.data
        assert data["project"] == wiz_env.project and data["region"] == "us-central1" and data["verify"] is False
        assert app.state.source_note("project") == "from flag --project"
        assert "prefix" not in data  # it breaks its rule: asked, and said
        assert any("prefix" in p for p in app.prefill_problems), app.prefill_problems
        assert data["kfp"]["manifests"] == str(wiz_env.manifests) and app.state.manifests_from == "--manifests"
        await pilot.press("ctrl+q")


async def test_the_resume_offer_is_for_the_environment_the_inputs_name(wiz_env):
    """Two unfinished installs; the command line names the older one (project and prefix): the offer is for it, not
    for the newest, so the search starts only once the inputs are the prefill."""
    import os

    from installer.journal import Journal

    for n, env_id in enumerate(("mlops-demo-project--older", "mlops-demo-project--newer")):
        j = Journal(env_id, None)
        j.start_run()
        j.step("apis")["status"] = "done"
        j.step("bucket")["status"] = "failed"
        j.save()
        os.utime(j.path, (1_000_000 + n, 1_000_000 + n))
    given = read_given(None, _args(in_project="mlops-demo-project", in_prefix="older"))
    app = WizardApp(log_path=str(wiz_env.state_root / "wizard.log"), given=given, manifests=wiz_env.manifests)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(app, pilot, lambda: "Resume the unfinished install" in screen_text(app), 30, "the offer")
        assert "mlops-demo-project--older" in screen_text(app), screen_text(app)
        await pilot.press("ctrl+q")
