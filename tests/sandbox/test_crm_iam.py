import base64
import json
import time

import pytest
from google.auth.transport.requests import Request
from google.oauth2 import service_account
from googleapiclient.errors import HttpError

from .helpers import api, error, shared, wait_until

P = "mlops-demo-project"
pytestmark = pytest.mark.xdist_group("sandbox-test_crm_iam")  # its tests share one sandbox


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    yield from shared(tmp_path_factory, enable=("cloudresourcemanager", "iam", "container"))


@pytest.fixture(autouse=True)
def _env(sb, monkeypatch):
    sb.apply_env(monkeypatch)
    sb.control.scenario("reset")


def test_projects_v1_v3(sb):
    crm1 = api("cloudresourcemanager", "v1")
    p = crm1.projects().get(projectId=P).execute()
    assert p["projectNumber"] == "123456789012" and p["lifecycleState"] == "ACTIVE"
    assert [x["projectId"] for x in crm1.projects().list(filter=f"id:{P}").execute()["projects"]] == [P]
    crm3 = api("cloudresourcemanager", "v3")
    assert crm3.projects().get(name=f"projects/{P}").execute()["name"] == "projects/123456789012"
    found = crm3.projects().search(query=f"projectId:{P}").execute()
    assert found["projects"][0]["state"] == "ACTIVE"
    with pytest.raises(HttpError) as ei:
        crm1.projects().get(projectId="not-my-project").execute()
    assert ei.value.status_code == 403


def test_iam_policy_etag_and_sa_visibility_window(sb):
    crm = api("cloudresourcemanager", "v1")
    iam = api("iam")
    sb.scenario("profile", **{"iam.sa_visible": 100})  # 1 s: observable on a loaded machine
    sa = iam.projects().serviceAccounts().create(name=f"projects/{P}", body={
        "accountId": "visible-later", "serviceAccount": {"displayName": "Later"}}).execute()
    assert sa["email"] == f"visible-later@{P}.iam.gserviceaccount.com"
    pol = crm.projects().getIamPolicy(resource=P, body={"options": {"requestedPolicyVersion": 3}}).execute()
    pol["bindings"].append({"role": "roles/storage.admin", "members": [f"serviceAccount:{sa['email']}"]})
    with pytest.raises(HttpError) as ei:  # inside the invisibility window
        crm.projects().setIamPolicy(resource=P, body={"policy": pol}).execute()
    assert ei.value.status_code == 400 and error(ei.value)["status"] == "INVALID_ARGUMENT"
    assert error(ei.value)["message"] == f"Service account {sa['email']} does not exist."
    time.sleep(100 * sb.speed + 0.05)
    new = crm.projects().setIamPolicy(resource=P, body={"policy": pol, "updateMask": "bindings,etag"}).execute()
    assert new["etag"] != pol["etag"]
    with pytest.raises(HttpError) as ei:  # stale etag
        crm.projects().setIamPolicy(resource=P, body={"policy": pol}).execute()
    err = error(ei.value)
    assert ei.value.status_code == 409 and err["status"] == "ABORTED"
    assert err["message"].startswith("There were concurrent policy changes. Please retry the whole read-modify-write")
    roles = {b["role"] for b in crm.projects().getIamPolicy(resource=P, body={}).execute()["bindings"]}
    assert "roles/storage.admin" in roles


def test_test_permissions_and_missing_permission_scenario(sb):
    crm = api("cloudresourcemanager", "v1")
    perms = ["resourcemanager.projects.setIamPolicy", "iam.serviceAccounts.create"]
    assert crm.projects().testIamPermissions(resource=P, body={"permissions": perms}).execute()["permissions"] == perms
    sb.scenario("missing_permission", permission="iam.serviceAccounts.create")
    got = crm.projects().testIamPermissions(resource=P, body={"permissions": perms}).execute()
    assert got["permissions"] == ["resourcemanager.projects.setIamPolicy"]
    with pytest.raises(HttpError) as ei:
        api("iam").projects().serviceAccounts().create(name=f"projects/{P}", body={"accountId": "denied-sa"}).execute()
    assert ei.value.status_code == 403
    assert "iam.serviceAccounts.create" in error(ei.value)["message"]


def test_service_accounts_crud(sb):
    sas = api("iam").projects().serviceAccounts()
    sb.scenario("profile", **{"iam.sa_visible_iam": 100})  # 1 s: observable on a loaded machine
    sa = sas.create(name=f"projects/{P}", body={"accountId": "crud-sa-one"}).execute()
    with pytest.raises(HttpError) as ei:  # IAM's own reads are eventually consistent
        sas.get(name=f"projects/-/serviceAccounts/{sa['email']}").execute()
    assert ei.value.status_code == 404
    assert error(ei.value)["message"] == f"Service account projects/-/serviceAccounts/{sa['email']} does not exist."
    with pytest.raises(HttpError) as ei:
        sas.create(name=f"projects/{P}", body={"accountId": "crud-sa-one"}).execute()
    assert ei.value.status_code == 409 and error(ei.value)["status"] == "ALREADY_EXISTS"
    with pytest.raises(HttpError) as ei:
        sas.create(name=f"projects/{P}", body={"accountId": "Bad_Id"}).execute()
    assert ei.value.status_code == 400

    def visible():
        try:
            return sas.get(name=f"projects/-/serviceAccounts/{sa['email']}").execute()
        except HttpError:
            return None

    assert wait_until(visible, timeout=10)["uniqueId"] == sa["uniqueId"]
    emails = [a["email"] for a in sas.list(name=f"projects/{P}").execute()["accounts"]]
    assert sa["email"] in emails and sb.caller_email in emails
    assert sas.delete(name=sa["name"]).execute() == {}
    with pytest.raises(HttpError) as ei:
        sas.get(name=sa["name"]).execute()
    assert ei.value.status_code == 404


def test_keys_are_real_and_limited(sb):
    sas = api("iam").projects().serviceAccounts()
    sa = sas.create(name=f"projects/{P}", body={"accountId": "key-holder"}).execute()
    time.sleep(3 * sb.speed + 0.02)
    key = sas.keys().create(name=sa["name"], body={"privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE",
                                                    "keyAlgorithm": "KEY_ALG_RSA_2048"}).execute()
    info = json.loads(base64.b64decode(key["privateKeyData"]))
    assert info["type"] == "service_account" and info["client_email"] == sa["email"]
    assert info["token_uri"] == sb.url + "/token" and key["name"].endswith("/keys/" + info["private_key_id"])
    creds = service_account.Credentials.from_service_account_info(
        info, scopes=["https://www.googleapis.com/auth/cloud-platform"])
    creds.refresh(Request())
    assert creds.valid
    user = sas.keys().list(name=sa["name"], keyTypes="USER_MANAGED").execute()["keys"]
    assert len(user) == 1 and "privateKeyData" not in user[0]
    every = sas.keys().list(name=sa["name"]).execute()["keys"]
    assert {k["keyType"] for k in every} == {"USER_MANAGED", "SYSTEM_MANAGED"}
    for _ in range(9):
        sas.keys().create(name=sa["name"], body={}).execute()
    with pytest.raises(HttpError) as ei:
        sas.keys().create(name=sa["name"], body={}).execute()
    assert ei.value.status_code == 400 and error(ei.value)["message"] == "Precondition check failed."
    # a deleted key no longer signs in
    sas.keys().delete(name=key["name"]).execute()
    creds = service_account.Credentials.from_service_account_info(
        info, scopes=["https://www.googleapis.com/auth/cloud-platform"])
    with pytest.raises(Exception, match="Invalid JWT Signature"):
        creds.refresh(Request())


def test_org_policy_blocks_key_creation(sb):
    crm = api("cloudresourcemanager", "v1")
    c = "constraints/iam.disableServiceAccountKeyCreation"
    assert crm.projects().getEffectiveOrgPolicy(resource=f"projects/{P}", body={"constraint": c}).execute()[
        "booleanPolicy"] == {}
    sb.scenario("org_policy_keys")
    pol = crm.projects().getEffectiveOrgPolicy(resource=f"projects/{P}", body={"constraint": c}).execute()
    assert pol["booleanPolicy"] == {"enforced": True}
    sas = api("iam").projects().serviceAccounts()
    with pytest.raises(HttpError) as ei:
        sas.keys().create(name=f"projects/{P}/serviceAccounts/{sb.caller_email}", body={}).execute()
    err = error(ei.value)
    assert err["status"] == "FAILED_PRECONDITION"
    assert err["details"][0]["violations"][0]["type"] == c


def test_workload_identity_binding_needs_the_pool(sb):
    sas = api("iam").projects().serviceAccounts()
    name = f"projects/{P}/serviceAccounts/{sb.caller_email}"
    member = f"serviceAccount:{P}.svc.id.goog[kubeflow/pipeline-runner]"
    body = {"policy": {"bindings": [{"role": "roles/iam.workloadIdentityUser", "members": [member]}]}}
    with pytest.raises(HttpError) as ei:
        sas.setIamPolicy(resource=name, body=body).execute()
    assert "Identity Pool does not exist" in error(ei.value)["message"]


def test_concurrent_read_modify_write_one_wins(sb):
    from concurrent.futures import ThreadPoolExecutor

    pol = api("cloudresourcemanager", "v1").projects().getIamPolicy(resource=P, body={}).execute()

    def write(i):
        crm = api("cloudresourcemanager", "v1")  # one client per thread
        body = dict(pol, bindings=pol["bindings"] + [{"role": f"roles/viewer", "members": [f"user:u{i}@example.com"]}])
        try:
            crm.projects().setIamPolicy(resource=P, body={"policy": body}).execute()
            return 200
        except HttpError as e:
            return e.status_code

    with ThreadPoolExecutor(4) as ex:
        codes = sorted(ex.map(write, range(4)))
    assert codes == [200, 409, 409, 409]
