"""A calm install log (issue 19, item 4): each wait said once per change of state, without operation ids, a "still
waiting" line at most every 30 s, the failure's reason and fix in the pane, whole entries only in the tail, the full
log behind **l**, one pane at a time with tabs at 80×24."""
from __future__ import annotations

import asyncio
import re
import time

from installer import events as E
from screens.install import InstallScreen
from screens.modals import LogModal
from screens.widgets import GroupPane

from .test_snapshots import T0, Host, _plan
from .textshot import screen_text

STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d) ")


def _secs(line: str) -> int:
    h, m, s = map(int, STAMP.match(line).groups())
    return h * 3600 + m * 60 + s


async def test_a_wait_is_said_once_per_change_and_still_waiting_at_most_every_30s():
    now = [T0]
    scr = InstallScreen(_plan(), scale=1.0, clock=lambda: now[0])
    app = Host(lambda: scr)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        scr.apply(E.RunStarted("mlops-demo-project--snap", _plan().ids, ts=T0))
        scr.apply(E.StepStarted("apis", ts=T0))
        for i in range(5):  # one operation after another, each with its own id: one state for the reader
            scr.apply(E.StepWaiting("apis", f"waiting for enabling 9 APIs (operation acat.p2-{i}-uuid)", since=T0,
                                    ts=T0 + i))
            scr.apply(E.StepProgress("apis", None, f"waiting for enabling 9 APIs (operation acat.p2-{i}-uuid)",
                                     ts=T0 + i))
        for t in range(0, 100):  # the screen's clock runs on, a tick a second
            now[0] = T0 + t
            scr._tick()
        scr.apply(E.StepWaiting("apis", "waiting for the enabled APIs to show as enabled", since=T0 + 100,
                                ts=T0 + 100))
        scr._flush()
        lines = [t for t, _ in scr.all_lines]
        assert not [t for t in lines if "operation" in t], lines
        assert len([t for t in lines if "enabling 9 APIs" in t]) == 1, lines
        still = [t for t in lines if "still waiting" in t]
        assert len(still) == 3 and still[0].endswith("still waiting, 30s"), still  # at 30, 60 and 90 s
        assert all(b - a >= 30 for a, b in zip(map(_secs, still), map(_secs, still[1:]))), still
        assert len([t for t in lines if "to show as enabled" in t]) == 1, lines
        text = screen_text(app)
        assert "(operation" not in text and "⧗ the enabled APIs to show as enabled" in text, text


async def test_over_a_slow_sandbox_step(sandbox, tmp_path, monkeypatch):
    """The network's insert slowed down in the sandbox; the screen's clock runs 25× faster than the wall's, so the
    step's ~4 s are 100 s on screen: its wait is said once, and "still waiting" at most every 30 s."""
    from installer.answers import Answers
    from installer.plan import Plan, build_plan
    from installer.run import build_backend_steps, install

    monkeypatch.setenv("MLOPS_INSTALL_STATE_DIR", str(tmp_path / "state"))
    sandbox.enable()
    sandbox.profile(**{"compute.network_insert": 400.0})  # 4 s at the fixture's speed 0.01
    answers = Answers(project="mlops-demo-project", region="us-central1", zone="us-central1-a", prefix="slow")
    full = build_plan(answers)
    plan = Plan(answers, [full["apis"], full["network"]])
    t0 = time.time()
    scr = InstallScreen(plan, scale=1.0, clock=lambda: t0 + 25 * (time.time() - t0))
    app = Host(lambda: scr)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        fin = await install(answers, scr.apply, assume_yes=True, preflight=False, plan=plan,
                            steps=build_backend_steps(plan))
        assert fin.exit_code == 0
        scr._flush()
        await pilot.pause(0.2)
        lines = [t for t, _ in scr.all_lines]
        waits = [t for t in lines if "waiting for" in t and "still" not in t]
        assert waits and len(waits) == len(set(w[9:] for w in waits)), lines  # each wait once
        assert not [t for t in lines if "operation" in t], lines
        still = [t for t in lines if "still waiting" in t]
        assert still, lines  # 100 s on screen: said at least once...
        assert all(b - a >= 30 for a, b in zip(map(_secs, still), map(_secs, still[1:]))), still  # ...calmly


async def test_failure_reason_in_the_pane_whole_entries_and_the_full_log():
    scr = InstallScreen(_plan(), scale=1.0, clock=lambda: T0 + 30)
    app = Host(lambda: scr)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        scr.apply(E.RunStarted("mlops-demo-project--snap", _plan().ids, ts=T0))
        scr.apply(E.StepStarted("kfp-namespace", ts=T0))
        for i in range(12):
            scr.apply(E.StepLog("kfp-namespace", f"entry {i} " + "word " * 30 + f"END{i}", ts=T0 + i))
        scr.apply(E.StepFailed("kfp-namespace", "permission-denied", "namespaces is forbidden\nmore detail",
                               "Grant roles/container.developer to you@example.com", ts=T0 + 20))
        scr._flush()
        await pilot.pause(0.3)
        text = screen_text(app)
        assert scr.tab == "secrets"  # the failing step's pane is shown (one at a time at 80 columns)
        assert "failed (permission-denied): namespaces is forbidden" in text, text
        assert "fix: Grant roles/container.developer to you@example.com" in text, text
        pane = scr.query_one("#pane-secrets", GroupPane)
        body = [ln.strip("│ ") for ln in text.splitlines()]
        first_log = next(i for i, ln in enumerate(body) if STAMP.match(ln) or ln.startswith("entry"))
        assert STAMP.match(body[first_log]), "the tail starts mid-entry:\n" + text
        assert pane.display and not scr.query_one("#pane-infrastructure", GroupPane).display
        await pilot.press("l")
        await pilot.pause(0.3)
        assert isinstance(app.screen, LogModal)
        full = screen_text(app)
        assert "END11" in full and "more detail" not in full, full
        await pilot.press("escape")
        await pilot.press("tab")
        await pilot.pause(0.2)
        assert scr.tab == "kfp" or scr.tab != "secrets"
