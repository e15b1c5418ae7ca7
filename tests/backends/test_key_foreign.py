"""kfp-sa-key deletes only keys this installer made (issue 10, item 11): a user-managed key that someone made on the
adopted KFP service account before the install stays, and the step says so. Real HTTP, real clients, the real
engine, a real Kubernetes API on the sandbox cluster."""
from __future__ import annotations

import asyncio

from secrets_kfp_support import Isolated, answers, failures, step_events, user_keys
from test_key_custody import key_plan, run_plan

from backends.gcp.calls import call
from backends.secrets.google_ops import create_key_sync


async def test_foreign_key_of_an_adopted_account_stays_and_is_named(sandbox, tmp_path, monkeypatch):
    sandbox.enable()
    a = answers(sandbox.project, manifests="upstream")
    # the account exists before the install (not made by mlops-install: adopted), with its owner's key
    await call("iam", lambda s: s.projects().serviceAccounts().create(
        name=f"projects/{a.project}", body={"accountId": a.names.kfp_sa,
                                            "serviceAccount": {"displayName": "team account"}}))
    foreign, _ = await asyncio.to_thread(create_key_sync, a.project, a.names.kfp_sa_email)
    iso = Isolated(tmp_path, monkeypatch)

    fin = await run_plan(a, iso, key_plan(a))
    assert fin.status == "done", failures(iso)
    out = fin.outputs["kfp-sa-key"]
    ours = out["key_id"]
    assert ours != foreign and out["foreign_keys"] == [foreign]
    assert sorted(user_keys(a)) == sorted([foreign, ours])  # the foreign key was not deleted
    logs = [e.message for e in step_events(iso, "StepLog", "kfp-sa-key")]
    assert any(foreign in m and "not made by mlops-install" in m for m in logs), logs
    assert not [r for r in sandbox.requests(mutating=True) if r["method"] == "DELETE" and "/keys/" in r["path"]]

    # a re-run: ready as it is (the foreign key does not make it drift), nothing deleted, no new key
    sandbox.clear_requests()
    iso.events.clear()
    fin = await run_plan(a, iso, key_plan(a))
    assert fin.status == "done", failures(iso)
    assert fin.outputs["kfp-sa-key"]["key_id"] == ours
    assert not [r for r in sandbox.requests(mutating=True) if "/keys" in r["path"]]
    assert sorted(user_keys(a)) == sorted([foreign, ours])
