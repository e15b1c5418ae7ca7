"""Organization policy on service-account keys, read the way Google serves it: the legacy constraint through
Resource Manager v1, the managed one through Org Policy v2 (v1 answers 400 for it); unreadable is a warning."""
from __future__ import annotations

import pytest

from backends.gcp.calls import call
from backends.gcp.errors import ApiError
from backends.org_policy import MANAGED_KEY_CONSTRAINT, key_policy
from backends.preflight import run_preflight
from backends.queries import key_creation_allowed
from installer.answers import Answers
from secrets_kfp_support import kfp_fixture


def answers(sandbox, credentials: str = "key") -> Answers:
    a = Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix="demo",
                credentials=credentials)
    a.kfp.manifests = str(kfp_fixture())  # a local folder: no kustomize, no network
    return a


async def test_v1_refuses_a_managed_constraint_as_google_does(sandbox):
    sandbox.enable()
    with pytest.raises(ApiError) as ei:
        await call("cloudresourcemanager", lambda s: s.projects().getEffectiveOrgPolicy(
            resource=f"projects/{sandbox.project}",
            body={"constraint": f"constraints/{MANAGED_KEY_CONSTRAINT}"}), raw=True)
    assert ei.value.http == 400 and "only supported with Org Policy V2 API" in ei.value.message


async def test_unreadable_managed_constraint_is_a_warning_not_a_failure(sandbox):
    """Org Policy API disabled (the default in a new project): key mode warns, naming what it could not read."""
    sandbox.enable()
    sandbox.scenario("api_disabled", service="orgpolicy.googleapis.com")
    pol = await key_policy(sandbox.project)
    assert pol.enforced is None and "orgpolicy.googleapis.com is not enabled" in pol.note
    report = await run_preflight(answers(sandbox))
    c = report.get("org-policy")
    assert report.ok and c.status == "warn", report.to_table()
    assert MANAGED_KEY_CONSTRAINT in c.detail and "workload-identity" in c.fix
    assert (await run_preflight(answers(sandbox, "workload-identity"))).get("org-policy").status == "ok"


async def test_managed_constraint_read_through_v2(sandbox):
    sandbox.enable()
    report = await run_preflight(answers(sandbox))
    assert report.get("org-policy").status == "ok", report.to_table()
    sandbox.scenario("org_policy_keys", enforced=True, managed=True)
    pol = await key_policy(sandbox.project)
    assert pol.enforced is True and not pol.unread
    c = (await run_preflight(answers(sandbox))).get("org-policy")
    assert c.status == "fail" and "workload-identity" in c.fix
    assert (await run_preflight(answers(sandbox, "workload-identity"))).get("org-policy").status == "ok"


async def test_legacy_constraint_and_the_wizards_query(sandbox):
    sandbox.enable()
    sandbox.scenario("org_policy_keys", enforced=True)
    assert (await key_policy(sandbox.project)).enforced is True
    sandbox.scenario("org_policy_keys", enforced=False)
    sandbox.scenario("missing_permission", permission="orgpolicy.policy.get")
    pol = await key_policy(sandbox.project)
    assert pol.enforced is None and "no permission" in pol.note
    import asyncio
    assert await asyncio.to_thread(key_creation_allowed, sandbox.project) is None
