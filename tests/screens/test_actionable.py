"""Every failure's fix actionable where the user is (issue 19, item 2): the failure screen names the wizard key that
changes the answer, the real values instead of placeholders, a console link with the project, and only advice that
applies."""
from __future__ import annotations

import pytest

from installer.events import RunFinished, StepFailed
from screens.failure import FailureScreen

from .test_snapshots import T0, Host, _plan
from .textshot import screen_text

ACCOUNT = "ada@example.com"


async def _failure_text(f: StepFailed, zone: str | None = "us-central1-a") -> str:
    plan = _plan()
    make = lambda: FailureScreen([f], RunFinished("failed", 4, [f.step_id], ts=T0), log_path="/tmp/x.log",
                                 titles={s.id: s.title for s in plan}, env_id="mlops-demo-project--snap",
                                 account=ACCOUNT, zone=zone)
    app = Host(make)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause(0.2)
        return screen_text(app)


@pytest.mark.parametrize("cls,message,remedy,expect", [
    ("permission-denied", "The caller does not have permission storage.buckets.create",
     "gcloud projects add-iam-policy-binding mlops-demo-project --member=user:<your-email> --role=roles/storage.admin",
     ["--member=user:ada@example.com --role=roles/storage.admin",
      "https://console.cloud.google.com/iam-admin/iam?project=mlops-demo-project"]),
    ("quota", "Insufficient regional quota to satisfy request: resource CPUS",
     "Ask for more CPUS quota in us-central1. Or use a zone.",
     ["b → l: fewer nodes or a smaller machine, or another region or zone", "https://console.cloud.google.com/iam-admin/quotas?project=mlops-demo-project"]),
    ("name-taken", "bucket snap-artifact-store is taken", "Choose another prefix.", ["b → l: another name prefix"]),
    ("org-policy", "key creation is disabled by iam.disableServiceAccountKeyCreation", "Use Workload Identity.",
     ["b → c: Workload Identity (no key)",
      "https://console.cloud.google.com/iam-admin/orgpolicies?project=mlops-demo-project"]),
    ("api-disabled", "container.googleapis.com is disabled", "Enable it.",
     ["b → a: enable the APIs", "https://console.cloud.google.com/apis/dashboard?project=mlops-demo-project"]),
    ("transient", "cannot fetch the KFP manifests from github.com: Could not resolve host: github.com",
     "offline, set kfp.manifests to a folder of rendered KFP manifests.",
     ["b → m: a local folder of rendered KFP manifests"]),
])
async def test_the_failure_screen_names_the_key_and_the_real_values(cls, message, remedy, expect):
    text = await _failure_text(StepFailed("bucket", cls, message, remedy, ts=T0))
    for e in expect:
        assert e in text, text
    assert "<your-email>" not in text and "<project>" not in text


async def test_a_zonal_cluster_is_not_told_to_use_a_zone():
    f = StepFailed("cluster", "quota", "Insufficient regional quota: CPUS", "Ask for more CPUS quota. Or use a zone.",
                   ts=T0)
    assert "use a zone" not in (await _failure_text(f, zone="us-central1-a"))
    assert "use a zone" in (await _failure_text(f, zone=None))
