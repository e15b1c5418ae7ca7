"""The real gcloud CLI (nobody here wrote it) against the sandbox, with the sandbox's env only."""

import json
import os
import shutil
import subprocess

import pytest

from .helpers import shared

P = "mlops-demo-project"
pytestmark = [pytest.mark.tools, pytest.mark.xdist_group("sandbox-test_gcloud")]


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    if shutil.which("gcloud") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("gcloud is not installed")
        pytest.skip("gcloud is not installed")
    yield from shared(tmp_path_factory)


def _env(sb, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSDK_", "GOOGLE_"))}
    env.update(sb.env)
    env.update(extra)
    return env


def gcloud(sb, *args, env=None):
    return subprocess.Popen(["gcloud", *args], env=env or _env(sb), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def result(proc):
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out


def test_services_list_and_enable(sb):
    names = [s["config"]["name"] for s in json.loads(result(gcloud(sb, "services", "list", "--format=json")))]
    assert "storage.googleapis.com" in names and "container.googleapis.com" not in names
    out = gcloud(sb, "services", "enable", "container.googleapis.com", "sqladmin.googleapis.com")
    out.communicate(timeout=60)
    assert out.returncode == 0
    mut = [(r["method"], r["path"]) for r in sb.requests(mutating=True)]
    assert ("POST", f"/v1/projects/{P}/services:batchEnable") in mut
    services = sb.state()["services"][P]
    for name in ("container.googleapis.com", "compute.googleapis.com", "sqladmin.googleapis.com"):
        assert services[name]["state"] == "ENABLED"


def test_iam_compute_container_sql(sb):
    sb.enable("iam", "compute", "container", "sqladmin")
    created = gcloud(sb, "iam", "service-accounts", "create", "gcloud-made", "--display-name", "made by gcloud")
    nets = gcloud(sb, "compute", "networks", "list", "--format=json")
    clusters = gcloud(sb, "container", "clusters", "list", "--format=json")
    sql = gcloud(sb, "sql", "instances", "list", "--format=json")
    result(created)
    listed = gcloud(sb, "iam", "service-accounts", "list", "--format=json")
    assert [n["name"] for n in json.loads(result(nets))] == ["default"]
    assert json.loads(result(clusters)) == []
    assert json.loads(result(sql)) == []
    emails = [a["email"] for a in json.loads(result(listed))]
    assert f"gcloud-made@{P}.iam.gserviceaccount.com" in emails


def test_activate_the_key_file_like_a_user(sb, tmp_path):
    # no access-token file: gcloud signs JWTs with the key (one id-token and one access-token grant)
    env = _env(sb, CLOUDSDK_CONFIG=str(tmp_path / "gcloud"))
    env.pop("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE")
    sb.clear_requests()
    result(gcloud(sb, "auth", "activate-service-account", "--key-file", str(sb.key_file), env=env))
    assert [r["path"] for r in sb.requests()].count("/token") >= 1
    names = [s["config"]["name"] for s in json.loads(result(gcloud(sb, "services", "list", "--format=json",
                                                                   env=env)))]
    assert "serviceusage.googleapis.com" in names
