"""A preflight that fails leaves no environment behind: no journal, no folder (issue 14), through the real run."""
from __future__ import annotations

import pytest

from installer.answers import Answers
from installer.errors import PreflightFailed
from installer.run import install


async def test_failed_preflight_leaves_no_environment(sandbox, tmp_path):
    sandbox.enable()
    sandbox.scenario("cpu_quota", region="us-central1", limit=4)
    a = Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix="demo")
    root = tmp_path / "state"
    with pytest.raises(PreflightFailed) as ei:
        await install(a, lambda e: None, assume_yes=True, preflight=True, journal_root=root)
    assert ei.value.report.get("quota").status == "fail"
    assert not (root / "envs" / a.env_id).exists()
    assert sandbox.requests(mutating=True) == []
