import json

import google.auth
import pytest
import requests
from google.auth import exceptions
from google.auth.transport.requests import Request
from google.oauth2 import id_token, service_account

from sandbox import keys

from .helpers import api, error, shared

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
pytestmark = pytest.mark.xdist_group("sandbox-test_auth")  # its tests share one sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    yield from shared(tmp_path_factory)


@pytest.fixture(autouse=True)
def _env(sandbox, monkeypatch):
    sandbox.apply_env(monkeypatch)
    sandbox.clear_requests()


def test_default_credentials_real_jwt_flow(sandbox):
    creds, project = google.auth.default(scopes=SCOPES)
    assert project == "mlops-demo-project"
    assert isinstance(creds, service_account.Credentials)
    creds.refresh(Request())
    assert creds.valid and creds.token.startswith("ya29.")
    info = json.loads(sandbox.key_file.read_text())
    assert info["token_uri"] == sandbox.url + "/token"
    # the token works on an API
    resp = api("serviceusage").services().get(name="projects/mlops-demo-project/services/storage.googleapis.com").execute()
    assert resp["state"] == "ENABLED"
    paths = [r["path"] for r in sandbox.requests()]
    assert paths.count("/token") == 2  # our refresh, then the client's own


def test_forged_signature_and_unknown_account_rejected(sandbox):
    info = json.loads(sandbox.key_file.read_text())
    forged = dict(info, private_key=keys.private_pem(keys.new_private_key()))  # same kid, other key
    creds = service_account.Credentials.from_service_account_info(forged, scopes=SCOPES)
    with pytest.raises(exceptions.RefreshError, match="Invalid JWT Signature"):
        creds.refresh(Request())
    stranger = dict(info, client_email="nobody@mlops-demo-project.iam.gserviceaccount.com")
    with pytest.raises(exceptions.RefreshError, match="account not found"):
        service_account.Credentials.from_service_account_info(stranger, scopes=SCOPES).refresh(Request())


def test_id_token_for_target_audience(sandbox):
    creds = service_account.IDTokenCredentials.from_service_account_file(
        str(sandbox.key_file), target_audience="https://example.test")
    creds.refresh(Request())
    claims = id_token.jwt.decode(creds.token, verify=False)
    assert claims["aud"] == "https://example.test" and claims["email"] == sandbox.caller_email


def test_missing_or_bad_bearer_is_401(sandbox):
    url = sandbox.url + "/v1/projects/mlops-demo-project/services"
    r = requests.get(url, timeout=5)
    assert r.status_code == 401
    assert r.json()["error"]["status"] == "UNAUTHENTICATED"
    r = requests.get(url, headers={"Authorization": "Bearer ya29.made-up"}, timeout=5)
    assert r.status_code == 401
    assert error_of(r)["errors"][0]["reason"] == "authError"


def error_of(r):
    return r.json()["error"]


_ = error
