"""The wizard's read-only questions (backends.queries) against the sandbox."""
from __future__ import annotations

import asyncio

from backends import queries


async def test_queries(sandbox):
    me = await asyncio.to_thread(queries.whoami)
    assert me["account"] == sandbox.caller_email and me["source"] == "adc-service-account"
    assert me["project"] == sandbox.project

    states = await asyncio.to_thread(queries.api_states, sandbox.project,
                                     ["storage.googleapis.com", "compute.googleapis.com"])
    assert states == {"storage.googleapis.com": True, "compute.googleapis.com": False}

    # the wizard's APIs screen enables what is missing and waits until it is usable
    said: list[str] = []
    out = await asyncio.to_thread(queries.enable_apis, sandbox.project,
                                  ["compute.googleapis.com", "cloudresourcemanager.googleapis.com",
                                   "containerregistry.googleapis.com"], said.append)
    assert "compute.googleapis.com" in out["enabled"] and said
    states = await asyncio.to_thread(queries.api_states, sandbox.project, ["compute.googleapis.com"])
    assert states == {"compute.googleapis.com": True}

    projects = await asyncio.to_thread(queries.list_projects)
    assert sandbox.project in [p["projectId"] for p in projects]
    regions = await asyncio.to_thread(queries.list_regions, sandbox.project)
    assert "us-central1" in regions and "europe-west1" in regions
    zones = await asyncio.to_thread(queries.list_zones, sandbox.project, "us-central1")
    assert "us-central1-a" in zones and not any(z.startswith("europe") for z in zones)

    # the managed key constraint is read through Org Policy v2: unknown while that API is disabled
    assert await asyncio.to_thread(queries.key_creation_allowed, sandbox.project) is None
    sandbox.enable("orgpolicy.googleapis.com")
    assert await asyncio.to_thread(queries.key_creation_allowed, sandbox.project) is True
    sandbox.scenario("org_policy_keys", enforced=True)
    assert await asyncio.to_thread(queries.key_creation_allowed, sandbox.project) is False
    assert sandbox.requests(mutating=True) and all(
        "enable" in r["path"].lower() for r in sandbox.requests(mutating=True))
