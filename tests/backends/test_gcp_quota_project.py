"""The credentials' quota project (issue 10, item 10). User ADC carries one (``quota_project_id``, sent as
``x-goog-user-project``); Google checks client-based APIs (Service Usage, Resource Manager) there. The sandbox
honours the header; a SERVICE_DISABLED for that project (ErrorInfo.metadata.consumer) is told apart from one for the
target project, and the installer gives user credentials the target project as quota project. Real HTTP, real
google-auth and googleapiclient, the real engine."""
from __future__ import annotations

import json

import pytest

from backends.gcp import auth
from backends.gcp.calls import call
from installer.errors import ErrorClass, InstallerError
from installer.plan import Plan, build_plan
from installer.run import build_backend_steps, install
from tests.backends.test_infra import answers

QUOTA_PROJECT, QUOTA_NUMBER = "my-quota-project", "555555555555"


@pytest.fixture
def user_adc(sandbox, tmp_path, monkeypatch):
    """gcloud-style user ADC (``authorized_user``) whose quota project is another project, with every API disabled
    there. The access token is one the sandbox issued (so no refresh is needed)."""
    sandbox.enable()
    sandbox.scenario("project", project=QUOTA_PROJECT, number=QUOTA_NUMBER, services=[])
    info = {"type": "authorized_user", "client_id": "sandbox.apps.googleusercontent.com", "client_secret": "x",
            "refresh_token": "1//sandbox-not-used", "token": (sandbox.state_dir / "gcloud-access-token").read_text()
            .strip(), "expiry": "2099-01-01T00:00:00Z", "token_uri": f"{sandbox.url}/token",
            "quota_project_id": QUOTA_PROJECT, "account": "demo-owner@example.com"}
    path = tmp_path / "application_default_credentials.json"
    path.write_text(json.dumps(info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    auth.set_target_project(None)
    auth.reset()
    yield path
    auth.set_target_project(None)
    auth.reset()


async def test_service_disabled_in_the_quota_project_is_told_apart(sandbox, user_adc):
    p = sandbox.project
    with pytest.raises(InstallerError) as ei:
        await call("serviceusage", lambda s: s.services().list(parent=f"projects/{p}", pageSize=5), project=p,
                   what="APIs")
    e = ei.value
    assert e.error_class is ErrorClass.API_DISABLED
    assert QUOTA_PROJECT in e.message and "quota project" in e.message and p in e.message
    assert f"gcloud auth application-default set-quota-project {p}" in e.remedy
    assert e.details["consumer"] == f"projects/{QUOTA_NUMBER}"
    # the target project as quota project: the same request goes through
    auth.set_target_project(p)
    resp = await call("serviceusage", lambda s: s.services().list(parent=f"projects/{p}", pageSize=5), project=p)
    assert resp["services"]


async def test_installer_gives_user_credentials_the_target_project_as_quota_project(sandbox, user_adc, tmp_path):
    a = answers(sandbox)
    full = build_plan(a)
    plan = Plan(a, [full["apis"], full["bucket"]])
    events: list = []
    fin = await install(a, events.append, assume_yes=False, preflight=False, plan=plan,
                        steps=build_backend_steps(plan), journal_root=tmp_path / "state")
    assert fin.exit_code == 0, [(e.step_id, e.message) for e in events if e.type == "StepFailed"]
    assert fin.outputs["bucket"]["bucket"] == a.names.bucket
    creds, _ = auth.credentials()
    assert creds.quota_project_id == a.project


async def test_service_disabled_in_the_target_project_keeps_its_own_remedy(sandbox):
    sandbox.scenario("api_disabled", service="serviceusage.googleapis.com")
    p = sandbox.project
    with pytest.raises(InstallerError) as ei:
        await call("serviceusage", lambda s: s.services().list(parent=f"projects/{p}", pageSize=5), project=p)
    assert ei.value.error_class is ErrorClass.API_DISABLED
    assert "quota project" not in ei.value.message and "set-quota-project" not in ei.value.remedy


def test_a_new_target_project_reuses_the_loaded_credentials(sandbox, user_adc):
    """The ADC file is read (and a service-account key's RSA key parsed: 30-40 ms holding the GIL) once per
    environment: a new target project only gives user credentials another quota project."""
    auth.set_target_project("project-one")
    first, _ = auth.credentials()
    assert first.quota_project_id == "project-one"
    user_adc.unlink()  # read again, it would now fail
    auth.set_target_project("project-two")
    second, _ = auth.credentials()
    assert second.quota_project_id == "project-two" and second.refresh_token == first.refresh_token


def test_service_account_credentials_stay_the_same_object_across_target_projects(sandbox):
    auth.reset()
    try:
        auth.set_target_project("project-one")
        first, _ = auth.credentials()
        auth.set_target_project("project-two")
        assert auth.credentials()[0] is first  # not loaded again: a service account's quota project is its own
    finally:
        auth.set_target_project(None)
        auth.reset()
