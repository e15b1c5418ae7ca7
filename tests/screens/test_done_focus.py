"""The Done screen's body has the focus (issue 19 item 5): the arrows scroll it at once; Enter still quits."""
from __future__ import annotations

from textual.app import App

from installer.events import RunFinished
from screens.app import WizardApp
from screens.done import DoneScreen
from screens.services import build_plan


class Host(App):
    CSS_PATH = [*WizardApp.CSS_PATH, *WizardApp.LATER_CSS_PATH]

    def __init__(self, screen) -> None:
        super().__init__()
        self._screen, self.finished_with = screen, None

    def on_mount(self) -> None:
        self.push_screen(self._screen)

    def finish(self, code: int) -> None:
        self.finished_with = code


async def test_done_body_is_focused_and_scrolls_with_the_arrows():
    from installer.answers import Answers

    plan = build_plan(Answers(project="mlops-demo-project", region="us-central1", zone="us-central1-a", prefix="d"))
    fin = RunFinished("done", 0, [], 60.0, {"kfp-ui": {"ui_url": "https://x.example"}})
    screen = DoneScreen(fin, plan=plan, outcomes={s.id: "created" for s in plan}, answers_path="/a.yaml",
                        command="mlops-install --non-interactive --yes --answers /a.yaml", log_path="/x.log",
                        written=[])
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        body = screen.query_one("#done-body")
        assert app.focused is body
        await pilot.press("down", "down")
        await pilot.pause()
        assert body.scroll_y > 0
        await pilot.press("enter")
        await pilot.pause()
        assert app.finished_with == 0
