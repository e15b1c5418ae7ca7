"""google-cloud-storage against the sandbox through STORAGE_EMULATOR_HOST (buckets only)."""

import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud import storage

from .helpers import shared

P = "mlops-demo-project"
pytestmark = pytest.mark.xdist_group("sandbox-test_storage")  # its tests share one sandbox


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    yield from shared(tmp_path_factory)


@pytest.fixture(autouse=True)
def _env(sb, monkeypatch):
    sb.apply_env(monkeypatch)


def test_create_get_lookup_list_delete(sb):
    client = storage.Client(project=P)
    b = client.bucket("demo-artifact-store")
    b.iam_configuration.uniform_bucket_level_access_enabled = True
    b.labels = {"mlops-install-env": "demo"}
    created = client.create_bucket(b, location="us-central1")
    assert created.location == "US-CENTRAL1" and created.location_type == "region"
    got = client.get_bucket("demo-artifact-store")
    assert got.iam_configuration.uniform_bucket_level_access_enabled is True
    assert got.labels == {"mlops-install-env": "demo"}
    assert client.lookup_bucket("no-such-bucket-here") is None
    assert [x.name for x in client.list_buckets()] == ["demo-artifact-store"]
    with pytest.raises(gexc.Conflict, match="You already own this bucket"):
        client.create_bucket("demo-artifact-store")
    policy = got.get_iam_policy(requested_policy_version=3)
    assert any(b["role"] == "roles/storage.legacyBucketOwner" for b in policy.bindings)
    got.labels = {"x": "y"}
    got.patch()
    got.delete()
    assert client.lookup_bucket("demo-artifact-store") is None
    log = [(r["method"], r["path"], r["status"]) for r in sb.requests(api="storage")]
    assert ("POST", "/storage/v1/b", 200) in log and ("DELETE", "/storage/v1/b/demo-artifact-store", 204) in log


def test_name_taken_by_someone_else(sb):
    sb.scenario("bucket_taken", bucket="popular-name")
    client = storage.Client(project=P)
    with pytest.raises(gexc.Conflict, match="The requested bucket name is not available"):
        client.create_bucket("popular-name")
    with pytest.raises(gexc.Forbidden, match="does not have storage.buckets.get access"):
        client.get_bucket("popular-name")


@pytest.mark.parametrize("name", ["ab", "UpperCase", "goog-bucket", "my-google-data", "192.168.1.1", "-dash",
                                  "x" * 64])
def test_invalid_names(sb, name):
    # straight HTTP: the client library refuses some of these names before sending
    r = requests.post(f"{sb.url}/storage/v1/b", params={"project": P}, json={"name": name}, timeout=5)
    assert r.status_code == 400
    assert r.json()["error"]["errors"][0]["reason"] == "invalid"
    assert r.json()["error"]["message"] == f"Invalid bucket name: '{name}'"


def test_object_generations_and_preconditions(sb):
    """objects.insert/get/delete with the preconditions google-cloud-storage sends (issue 17): ifGenerationMatch=0
    creates only; a stale generation is 412; ifGenerationNotMatch a 304 on a read; each write a new generation."""
    client = storage.Client(project=P)
    b = client.create_bucket("gen-test-bucket", location="us-central1")
    blob = b.blob("state/lock.json")
    blob.upload_from_string(b"one", if_generation_match=0)
    g1 = blob.generation
    assert g1 and blob.metageneration == 1
    with pytest.raises(gexc.PreconditionFailed, match="pre-conditions you specified did not hold"):
        b.blob("state/lock.json").upload_from_string(b"two", if_generation_match=0)
    b.blob("state/lock.json").upload_from_string(b"two", if_generation_match=g1)
    g2 = b.get_blob("state/lock.json").generation
    assert g2 > g1
    with pytest.raises(gexc.PreconditionFailed):
        b.blob("state/lock.json").upload_from_string(b"three", if_generation_match=g1)  # stale: lost the race
    with pytest.raises(gexc.PreconditionFailed):
        b.blob("state/lock.json").upload_from_string(b"x", if_metageneration_match=2)
    with pytest.raises(gexc.PreconditionFailed):
        b.blob("state/new.json").upload_from_string(b"x", if_generation_not_match=0)  # no live object
    assert b.blob("state/lock.json").download_as_bytes(if_generation_match=g2) == b"two"
    with pytest.raises(gexc.PreconditionFailed):
        b.blob("state/lock.json").download_as_bytes(if_generation_match=g1)
    with pytest.raises(gexc.NotModified):
        b.blob("state/lock.json").download_as_bytes(if_generation_not_match=g2)
    with pytest.raises(gexc.PreconditionFailed):
        b.blob("state/lock.json").delete(if_generation_match=g1)
    b.blob("state/lock.json").delete(if_generation_match=g2)
    with pytest.raises(gexc.NotFound):
        b.blob("state/lock.json").download_as_bytes()
    b.delete()
