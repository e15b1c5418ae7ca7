"""The wizard's consent (issue 19 part B): the backends' questions (``runtime["consent"]``) in a dialog, asked from
the install's worker or from a thread; changed settings of an installed environment (update rows, ``apply_changes``)
and a manifests folder that differs from the release shown on Review and confirmed once before Install."""
from __future__ import annotations

import asyncio
import shutil

import yaml

from backends.infra.harness import run_infra
from installer.answers import Answers
from screens.app import WizardApp
from screens.modals import ConfirmModal

from .conftest import settle, wait_current, wait_for
from .textshot import screen_text

QUESTION = ("Secret kubeflow/mysql-secret already exists and was not made by this install (it would be replaced "
            "with one holding the new SQL user's password). Replace it?")
EXTRA = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "friendly-admin"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "User", "name": "someone@example.com", "apiGroup": "rbac.authorization.k8s.io"}]}


async def test_consent_hook_asks_in_a_dialog_from_the_loop_and_from_a_thread(wiz_env):
    app = WizardApp({"kfp": {"manifests": wiz_env.manifests}}, log_path=str(wiz_env.state_root / "wizard.log"),
                    start="welcome", offer_resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_current(app, pilot, "welcome")
        # from the loop (the install's worker): an awaitable answered by the dialog
        task = asyncio.ensure_future(app.ask_consent(QUESTION))
        await wait_for(app, pilot, lambda: isinstance(app.screen, ConfirmModal), 10, "the consent dialog")
        text = screen_text(app)
        assert "Secret kubeflow/mysql-secret already exists" in text and "Replace it?" in text, text
        assert app.screen._text == QUESTION
        assert "y  Replace  n  Cancel" in text, text  # the keys, shown
        await pilot.press("y")
        assert await asyncio.wait_for(task, 10) is True
        # from a thread (a backend's blocking call): blocks that thread until the answer
        answers: list[bool] = []
        app.run_worker(lambda: answers.append(app.ask_consent(QUESTION)), thread=True, group="t")
        await wait_for(app, pilot, lambda: isinstance(app.screen, ConfirmModal), 10, "the consent dialog")
        await pilot.press("n")
        await wait_for(app, pilot, lambda: answers, 10, "the thread's answer")
        assert answers == [False] and not isinstance(app.screen, ConfirmModal)
        # a question answered on Review is not asked again
        app.consented.add(QUESTION)
        assert await app.ask_consent(QUESTION) is True and not isinstance(app.screen, ConfirmModal)
        await pilot.press("ctrl+q")


async def test_review_shows_updates_and_manifests_then_asks_once(wiz_env, tmp_path):
    """An installed infrastructure, the node count changed and a manifests folder that differs from the release:
    Review shows the update row's change (old → new) and the manifests check, one dialog asks for both; after
    yes the install runs with apply_changes and is not asked the manifests question again, and resizes the pool."""
    sandbox = wiz_env
    sandbox.enable()
    a = Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix="wizup")
    a.kfp.manifests = sandbox.manifests
    fin, _ = await run_infra(a, journal_root=sandbox.state_root, preflight=False)
    assert fin.exit_code == 0
    folder = tmp_path / "kfp"
    shutil.copytree(sandbox.manifests, folder)
    with open(folder / "cluster-scoped.yaml", "a") as f:
        f.write("---\n" + yaml.safe_dump(EXTRA))
    prefill = {"project": sandbox.project, "region": "us-central1", "zone": "us-central1-a", "prefix": "wizup",
               "credentials": "key", "apis": {"enable": True}, "kfp": {"manifests": str(folder)},
               "cluster": {"node_count": 2}}
    app = WizardApp(prefill, log_path=str(sandbox.state_root / "wizard.log"), start="review", offer_resume=False)
    async with app.run_test(size=(120, 60)) as pilot:
        await wait_current(app, pilot, "review")
        await wait_for(app, pilot, lambda: app.screen.report is not None and app.screen.rows is not None, 60,
                       "the plan and the checks")
        await settle(app, pilot)
        text = screen_text(app)
        assert "cluster.node_count" in text and "3 → 2" in text, text
        assert "manifests:" in text and "friendly-admin" in text and "asked on Enter" in text, text
        await pilot.press("enter")
        await wait_for(app, pilot, lambda: isinstance(app.screen, ConfirmModal), 10, "the one confirmation")
        text = screen_text(app)
        assert "Change 1 setting of the installed environment?" in text, text
        assert "update cluster.node_count: 3 → 2" in app.screen._text and "friendly-admin" in app.screen._text, text
        await pilot.press("y")
        asked: list[str] = []
        await wait_for(app, pilot, lambda: app.current in ("done", "failure") or (
            isinstance(app.screen, ConfirmModal) and not asked.append(screen_text(app))), 240, "the install to end")
        assert not asked, asked  # no second question
        await settle(app, pilot)
        assert app.current == "done", screen_text(app)
        assert app.runtime["apply_changes"] is True
        await pilot.press("q")
    cluster = next(x for x in sandbox.state()["clusters"].values() if x["name"] == "wizup-kfp-cluster")
    assert cluster["nodePools"][0]["initialNodeCount"] == 2
