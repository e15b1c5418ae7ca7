"""Where the KFP manifests come from: the wizard finds them as `demo` does (one lookup, installer.manifests), Review
shows the source and **m** changes it."""
from __future__ import annotations

from pathlib import Path

from installer.manifests import local_manifests
from screens import services
from screens.app import WizardApp
from screens.modals import InputModal

from .conftest import kfp_manifests, settle, type_text, wait_current, wait_for
from .textshot import screen_text

PREFILL = {"project": "mlops-demo-project", "region": "us-central1", "zone": "us-central1-a", "prefix": "man",
           "credentials": "key"}


def test_the_wizard_finds_the_manifests_beside_the_checkout(monkeypatch):
    fixtures = kfp_manifests()
    monkeypatch.delenv("MLOPS_INSTALL_KFP_MANIFESTS", raising=False)
    data: dict = {}
    assert services.fill_manifests(data) == "beside the checkout"
    assert data["kfp"]["manifests"] == str(Path(fixtures).resolve()) == str(local_manifests()[0])
    # the answers file's choice stays, --manifests wins over it, the variable over the checkout
    data = {"kfp": {"manifests": "upstream"}}
    assert services.fill_manifests(data) == "" and data["kfp"]["manifests"] == "upstream"
    assert services.fill_manifests(data, fixtures) == "--manifests"
    monkeypatch.setenv("MLOPS_INSTALL_KFP_MANIFESTS", fixtures)
    data = {}
    assert services.fill_manifests(data) == "MLOPS_INSTALL_KFP_MANIFESTS"
    assert services.manifests_text("upstream").startswith("upstream: built from github.com")
    assert services.manifests_text(fixtures, "beside the checkout") == \
        "../shared/fixtures/kfp-2.14.4 (beside the checkout)"


async def test_review_shows_the_source_and_m_changes_it(wiz_env, monkeypatch):
    monkeypatch.delenv("MLOPS_INSTALL_KFP_MANIFESTS", raising=False)
    wiz_env.enable()
    app = WizardApp(dict(PREFILL), log_path=str(wiz_env.state_root / "wizard.log"), start="review",
                    offer_resume=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_current(app, pilot, "review")
        text = screen_text(app)
        assert "../shared/fixtures/kfp-2.14.4 (beside the checkout)" in text, text
        await pilot.press("m")
        await wait_for(app, pilot, lambda: isinstance(app.screen, InputModal), what="the manifests dialog")
        await pilot.press("ctrl+u")
        await type_text(pilot, "/no/such/folder")
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, InputModal) and "neither" in screen_text(app), screen_text(app)
        await pilot.press("ctrl+u")
        await type_text(pilot, "upstream")
        await pilot.press("enter")
        await wait_for(app, pilot, lambda: not isinstance(app.screen, InputModal), what="the dialog closed")
        await settle(app, pilot)
        text = screen_text(app)
        assert app.state.data["kfp"]["manifests"] == "upstream"
        assert "upstream: built from github.com" in text and "the sandbox has no network" in text, text


def test_a_folder_beside_any_checkout_is_named_relative_to_it(tmp_path):
    """CI's checkout sits elsewhere (e.g. /check/work/main beside /check/work/shared): the plan's KFP rows, Review and
    plain mode name the folder the same there as here, and a folder elsewhere by its own path."""
    from installer.answers import Answers, KfpAnswers
    from installer.manifests import describe, shown
    from installer.plan import build_plan

    repo = tmp_path / "elsewhere" / "main"
    folder = tmp_path / "elsewhere" / "shared" / "fixtures" / "kfp-2.14.4"
    folder.mkdir(parents=True)
    repo.mkdir()
    found, why = local_manifests(repo=repo)
    assert (found, why) == (folder, "beside the checkout")  # as found (a link named ``shared`` stays one)
    assert shown(str(found), repo) == "../shared/fixtures/kfp-2.14.4"
    assert shown("/opt/kfp", repo) == "/opt/kfp" and shown("upstream", repo) == "upstream"
    # this checkout's own rule, as the plan and Review use it
    here = kfp_manifests()
    assert describe(here, "beside the checkout") == "../shared/fixtures/kfp-2.14.4 (beside the checkout)"
    answers = Answers(**PREFILL, kfp=KfpAnswers(manifests=here))
    rows = {s.id: s.resource for s in build_plan(answers).steps}
    assert rows["kfp-cluster-scoped"].endswith("from ../shared/fixtures/kfp-2.14.4"), rows["kfp-cluster-scoped"]
