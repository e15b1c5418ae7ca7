"""Cloud SQL: the edition is sent explicitly, and the tier must belong to it (a project or version whose default
edition is ENTERPRISE_PLUS refuses every Enterprise tier)."""
from __future__ import annotations

import pytest

from backends.gcp.calls import call
from backends.gcp.errors import ApiError
from backends.infra.harness import run_infra
from installer.answers import Answers
from installer.plan import Plan, build_plan
from installer.validation import validate_text
from secrets_kfp_support import kfp_fixture


def answers(sandbox) -> Answers:
    a = Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix="demo")
    a.kfp.manifests = str(kfp_fixture())  # a local folder: no kustomize, no network
    return a


@pytest.mark.sandbox_speed(0.005)
async def test_enterprise_is_sent_where_the_default_edition_is_enterprise_plus(sandbox, tmp_path):
    sandbox.enable()
    sandbox.scenario("sql_default_edition", edition="ENTERPRISE_PLUS")
    p = sandbox.project
    # what a request without the edition gets (the old installer's request)
    with pytest.raises(ApiError) as ei:
        await call("sqladmin", lambda s: s.instances().insert(project=p, body={
            "name": "no-edition", "databaseVersion": "MYSQL_8_0", "region": "us-central1",
            "settings": {"tier": "db-n1-standard-2"}}), raw=True)
    assert ei.value.http == 400 and "Invalid Tier (db-n1-standard-2) for (ENTERPRISE_PLUS) Edition" in ei.value.message
    a = answers(sandbox)
    full = build_plan(a)
    fin, events = await run_infra(a, journal_root=tmp_path / "state", plan=Plan(a, [full["apis"],
                                                                                   full["sql-instance"]]))
    assert fin.status == "done", [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    inst = next(i for i in sandbox.state()["sql_instances"].values() if i["name"] == "demo-ml-metadata")
    assert inst["settings"]["edition"] == "ENTERPRISE" and inst["settings"]["tier"] == "db-n1-standard-2"


def test_an_enterprise_plus_tier_is_refused_by_validation():
    text = "version: 1\nproject: mlops-demo-project\nregion: us-central1\nprefix: demo\nsql:\n  tier: db-perf-optimized-N-2\n"
    answers_, problems = validate_text(text)
    assert answers_ is None
    assert [p for p in problems if "sql.tier" in str(p) and "Enterprise Plus" in str(p)], problems
