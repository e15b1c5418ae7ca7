import google.auth
from google.auth.transport.requests import Request
from googleapiclient.discovery import build


def test_token_and_services(sandbox):
    creds, project = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    assert project == sandbox.project
    su = build("serviceusage", "v1", credentials=creds, static_discovery=True,
               client_options={"api_endpoint": sandbox.env["CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE"]})
    resp = su.services().list(parent=f"projects/{project}", filter="state:ENABLED", pageSize=200).execute()
    names = [s["config"]["name"] for s in resp["services"]]
    assert "storage.googleapis.com" in names
    assert "compute.googleapis.com" not in names
    reqs = sandbox.requests()
    assert [r["path"] for r in reqs] == ["/token", f"/v1/projects/{project}/services"]
