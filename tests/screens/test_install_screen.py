"""The install screen's panes as a person reads them: each line once, long lines whole, the run's start said once,
and updates that repaint lines without re-laying the screen out."""
from __future__ import annotations

from installer import events as E
from screens.install import InstallScreen
from screens.widgets import GroupPane

from .test_snapshots import T0, Host, _plan
from .textshot import screen_text


def _screen() -> InstallScreen:
    return InstallScreen(_plan(), scale=1.0, clock=lambda: T0 + 30)


async def _mounted(size=(120, 40)):
    scr = _screen()
    app = Host(lambda: scr)
    return app, scr


async def test_waits_logged_once_long_lines_wrapped_run_start_in_the_title():
    app, scr = await _mounted()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        long = ("instance is PENDING_CREATE and this message goes on long enough that it cannot fit the pane's "
                "width in one line: the end of it is THE-END")
        scr.apply(E.RunStarted("mlops-demo-project--snap", _plan().ids, ts=T0))
        scr.apply(E.StepStarted("sql-instance", ts=T0 + 1))
        for i in range(5):  # a step re-reports its wait at each poll
            scr.apply(E.StepWaiting("sql-instance", "Cloud SQL instance snap-ml-metadata", since=T0 + 1,
                                    ts=T0 + 2 + i))
        scr.apply(E.StepLog("sql-instance", long, ts=T0 + 8))
        scr._flush()
        await pilot.pause(0.2)
        pane = scr.query_one("#pane-infrastructure", GroupPane)
        waits = [t for t, _ in pane.lines if "waiting on Cloud SQL instance" in t]
        assert len(waits) == 1, pane.log_text
        text = screen_text(app)
        assert "THE-END" in text, text  # wrapped, not cut at the pane's width
        assert "run started" not in text and "started " in text.splitlines()[0], text
        assert "⧗ Cloud SQL instance snap-ml-metadata" in text, text


async def test_a_clock_tick_repaints_lines_not_the_screen_layout():
    app, scr = await _mounted()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        scr.apply(E.RunStarted("mlops-demo-project--snap", _plan().ids, ts=T0))
        scr.apply(E.StepStarted("cluster", ts=T0 + 1))
        scr._flush()
        await pilot.pause(0.2)
        layouts = []
        orig = scr._refresh_layout

        def counting(*a, **k):
            layouts.append(1)
            return orig(*a, **k)
        scr._refresh_layout = counting
        before = screen_text(app)
        scr.clock = lambda: T0 + 95  # the running step's clock moves on
        scr._tick()
        for i in range(20):
            scr.apply(E.StepLog("cluster", f"progress line {i}", ts=T0 + 95))
        scr._flush()
        await pilot.pause(0.3)
        after = screen_text(app)
        assert before != after and "progress line 19" in after, after
        assert layouts == [], "an update re-laid the install screen out"


async def test_the_kfp_database_components_say_they_wait_for_the_database_user():
    """Issue 20: KFP's objects are applied while Cloud SQL is made; the components that need MySQL are held back,
    and the KFP pane says for what (a pending step held only by another pane's step)."""
    app, scr = await _mounted()
    plan = _plan()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        scr.apply(E.RunStarted("mlops-demo-project--snap", plan.ids, ts=T0))
        for spec in plan.topological():  # everything but the database user and what needs it
            if spec.id in ("sql-user", "kfp-db-components", "kfp-ready", "kfp-ui", "kfp-verify"):
                continue
            scr.apply(E.StepStarted(spec.id, ts=T0 + 1))
            scr.apply(E.StepDone(spec.id, "created", 1.0, ts=T0 + 2))
        scr.apply(E.StepStarted("sql-user", ts=T0 + 3))
        scr._flush()
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "⧗ after Database user: KFP da" in text, text
        scr.apply(E.StepDone("sql-user", "created", 1.0, ts=T0 + 4))
        scr._flush()
        await pilot.pause(0.2)
        assert "after Database user" not in screen_text(app)
