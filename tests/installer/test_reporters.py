"""Plain and JSON reporters consuming the engine's events."""
from __future__ import annotations

import io
import json

from installer.events import (Notice, PreflightDone, RunFinished, RunStarted, StepDone, StepFailed, StepLog,
                              StepSkipped, StepStarted, StepWaiting)
from installer.logs import redact
from installer.reporters import JsonReporter, PlainReporter, fmt_duration, fmt_expected


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_plain_lines_and_periodic_waits():
    clock = Clock()
    out = io.StringIO()
    r = PlainReporter(out, wait_interval=30, clock=clock)
    r(RunStarted("p--demo", ["cluster"]))
    r(StepStarted("cluster", "GKE cluster"))
    r(StepWaiting("cluster", "cluster demo-kfp-cluster (operation operation-123)", since=1000.0,
                  expected_seconds=240))
    clock.t = 1010.0
    r.tick()  # too soon: nothing
    clock.t = 1130.0
    r.tick()
    clock.t = 1140.0
    r(StepDone("cluster", "created", {}, 140.0))
    clock.t = 1200.0
    r.tick()  # the wait is over: nothing
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[    0s] starting install of p--demo")
    waits = [l for l in lines if "waiting for" in l]
    assert waits == ["[    0s] waiting for cluster demo-kfp-cluster (operation operation-123): 0s of ~4m",
                     "[ 2m10s] waiting for cluster demo-kfp-cluster (operation operation-123): 2m10s of ~4m"]
    assert lines[-1] == "[ 2m20s] done   cluster: created in 2m20s"


def test_plain_failure_remedy_and_finish():
    out = io.StringIO()
    r = PlainReporter(out)
    r(StepFailed("network", "quota", "Quota exceeded", "ask for more"))
    r(StepSkipped("subnet", "waiting on network, which did not finish"))
    r(Notice("preflight skipped", "warning"))
    r(PreflightDone(False, [{"name": "apis", "ok": False, "message": "disabled", "remedy": "--yes"}]))
    r(StepLog("x", "password=hunter22"))
    r(RunFinished("failed", 4, ["network"], 3.0))
    text = out.getvalue()
    assert "FAILED network [quota]: Quota exceeded" in text and "fix: ask for more" in text
    assert "skip   subnet" in text and "warn" in text and "FAIL apis" in text and "preflight failed" in text
    assert "hunter22" not in text and "run the same command again to resume" in text


def test_json_lines_one_event_each_redacted():
    redact.register("s3cr3t-value-xyz")
    out = io.StringIO()
    r = JsonReporter(out)
    r(StepStarted("apis", "Required APIs"))
    r(StepLog("apis", "got s3cr3t-value-xyz"))
    r(RunFinished("done", 0, [], 1.0, {"kfp-ui": {"ui_url": "https://x"}}))
    docs = [json.loads(l) for l in out.getvalue().splitlines()]
    assert [d["event"] for d in docs] == ["StepStarted", "StepLog", "RunFinished"]
    assert "s3cr3t-value-xyz" not in out.getvalue()
    assert docs[2]["outputs"]["kfp-ui"]["ui_url"] == "https://x" and r.finished.exit_code == 0


def test_formats():
    assert fmt_duration(5) == "5s" and fmt_duration(130) == "2m10s" and fmt_duration(4000) == "1h06m"
    # one rounding for the command line and the wizard (issue 18): a tenth under 10 s unless whole, then seconds
    assert fmt_duration(4.3) == "4.3s" and fmt_duration(9.97) == "10s" and fmt_duration(59.6) == "1m00s"
    assert fmt_duration(None) == "?" and fmt_duration(-1) == "0s"
    assert fmt_expected(240) == "~4m" and fmt_expected(45) == "~45s" and fmt_expected(90) == "~1.5m"


def test_progress_lines_are_throttled_per_step():
    from installer.events import StepProgress
    clock = Clock()
    out = io.StringIO()
    r = PlainReporter(out, wait_interval=30, clock=clock)
    for i in range(10):
        clock.t += 1
        r(StepProgress("sql-instance", i / 10, f"{i}"))
    r(StepProgress("sql-instance", 1.0, "done"))
    r(StepProgress("cluster", 0.5, "half"))
    lines = [l for l in out.getvalue().splitlines()]
    assert len([l for l in lines if "sql-instance" in l]) == 3  # the first, one 5 s later, the final one
    assert any("cluster: 50% half" in l for l in lines)
