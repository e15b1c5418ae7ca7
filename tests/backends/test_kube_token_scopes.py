"""GKE knows a service account's token by the account's email only when the token carries the userinfo.email
scope; with cloud-platform alone it reaches the API server as the numeric id, which no binding names, so everything
but discovery is forbidden. The installer's own tokens ask for both."""
from __future__ import annotations

import pytest

from backends.k8s.auth import TokenSource
from backends.k8s.client import KubeClient, KubeError
from installer.plan import Plan, build_plan
from secrets_kfp_support import Isolated, answers, failures

CLOUD = "https://www.googleapis.com/auth/cloud-platform"
EMAIL = "https://www.googleapis.com/auth/userinfo.email"


def _client(sandbox, endpoint: str, ca: bytes, scopes: list[str]) -> KubeClient:
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    creds = service_account.Credentials.from_service_account_file(str(sandbox.key_file), scopes=scopes)

    def fetch():
        creds.refresh(Request())
        return creds.token, None
    return KubeClient(endpoint, ca, TokenSource(fetch), cluster="demo-kfp-cluster")


@pytest.mark.sandbox_speed(0.005)
async def test_a_token_without_userinfo_email_is_forbidden(sandbox, tmp_path, monkeypatch):
    from backends.gcp.auth import SCOPES
    from backends.gcp.gke import cluster_access
    from installer.logs import setup_logging
    from installer.run import install

    assert EMAIL in SCOPES and CLOUD in SCOPES
    iso = Isolated(tmp_path / "run", monkeypatch)
    setup_logging(state_dir=iso.state)
    a = answers(sandbox.project, "key", manifests="upstream")
    full = build_plan(a)
    plan = Plan(a, [full[s] for s in ("apis", "network", "subnet", "gke-sa", "gke-sa-roles", "cluster",
                                      "kfp-namespace")])
    fin = await install(a, iso.events.append, assume_yes=True, preflight=False, plan=plan, runtime={})
    assert fin.status == "done", failures(iso)  # the installer's token (both scopes) is let in

    acc = await cluster_access(a.project, a.location, a.names.cluster)
    narrow = _client(sandbox, acc["endpoint"], acc["ca_pem"], [CLOUD])
    assert narrow.request("GET", "/api/v1")["kind"] == "APIResourceList"  # discovery stays open
    with pytest.raises(KubeError) as ei:
        narrow.list("v1", "Namespace")
    sa_id = sandbox.state()["service_accounts"][sandbox.caller_email]["uniqueId"]
    assert ei.value.status == 403
    assert f'User "{sa_id}" cannot list resource "namespaces"' in ei.value.message
    wide = _client(sandbox, acc["endpoint"], acc["ca_pem"], [CLOUD, EMAIL])
    assert "kubeflow" in {n["metadata"]["name"] for n in wide.list("v1", "Namespace")}
