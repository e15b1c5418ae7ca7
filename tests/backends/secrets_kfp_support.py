"""Helpers for the secrets / KFP / key-custody tests (imported by those test modules; not a test itself).

Everything runs for real against the ``sandbox`` fixture: real HTTP, real google clients, real Kubernetes client,
the real engine through ``installer.run.install``.
"""
from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import pytest

from installer.answers import Answers, KfpAnswers

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "kfp-2.14.4"


def kfp_fixture() -> Path:
    """The rendered KFP 2.14.4 manifests; under CI=true a missing fixture fails the test instead of skipping it."""
    if (FIXTURES / "cluster-scoped.yaml").is_file() and (FIXTURES / "env-gcp.yaml").is_file():
        return FIXTURES
    msg = f"test fixture missing: {FIXTURES} (../shared/fixtures/kfp-2.14.4)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def answers(project: str, mode: str = "key", prefix: str = "demo", namespace: str = "kubeflow",
            manifests: str | None = None) -> Answers:
    """Answers for the sandbox; KFP manifests from the fixture unless ``manifests`` is given (tests whose plans stop
    before rendering pass "upstream" and so do not need the fixture)."""
    return Answers(project=project, region="us-central1", zone="us-central1-a", prefix=prefix, credentials=mode,
                   kfp=KfpAnswers(manifests=manifests or str(kfp_fixture()), namespace=namespace))


class Isolated:
    """Points every place a run could write to (state dir, TMPDIR, HOME, KUBECONFIG) into one test folder."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.state = root / "state"
        self.tmp = root / "tmp"
        self.home = root / "home"
        for p in (self.state, self.tmp, self.home):
            p.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv("MLOPS_INSTALL_STATE_DIR", str(self.state))
        monkeypatch.setenv("TMPDIR", str(self.tmp))
        monkeypatch.setenv("HOME", str(self.home))
        monkeypatch.setenv("KUBECONFIG", str(self.home / ".kube" / "config"))
        monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
        self.events: list = []
        self.runtime: dict[str, Any] = {}

    def written_files(self) -> list[Path]:
        return [p for p in self.root.rglob("*") if p.is_file()]


async def install(a: Answers, iso: Isolated, runtime: dict | None = None, on_event=None):
    """One non-interactive run through ``installer.run.install`` (the engine and every backend step)."""
    from installer.logs import setup_logging
    from installer.run import install as run_install

    setup_logging(state_dir=iso.state)
    runtime = iso.runtime if runtime is None else runtime
    events_file = iso.state / "events.jsonl"

    def emit(e) -> None:
        iso.events.append(e)
        with open(events_file, "a") as f:  # what a reporter would write: scanned for secrets too
            f.write(json.dumps(e.to_dict(), default=str) + "\n")
        if on_event is not None:
            on_event(e)

    return await run_install(a, emit, assume_yes=True, preflight=False, runtime=runtime)


def step_events(iso: Isolated, kind: str, step_id: str | None = None) -> list:
    return [e for e in iso.events if e.type == kind and (step_id is None or getattr(e, "step_id", None) == step_id)]


def failures(iso: Isolated) -> list[str]:
    return [f"{e.step_id}: {e.error_class}: {e.message}" for e in step_events(iso, "StepFailed")]


async def kube(a: Answers):
    """A Kubernetes client on the sandbox cluster (the same way the installer connects)."""
    from backends.gcp.gke import cluster_access
    from backends.k8s.client import KubeClient

    acc = await cluster_access(a.project, a.location, a.names.cluster)
    return KubeClient(acc["endpoint"], acc["ca_pem"], cluster=a.names.cluster)


def secret_data(client, ns: str, name: str) -> dict[str, str] | None:
    obj = client.get("v1", "Secret", name, ns)
    if obj is None:
        return None
    return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}


def user_keys(a: Answers) -> list[str]:
    from backends.gcp.calls import call_sync

    resp = call_sync("iam", lambda s: s.projects().serviceAccounts().keys().list(
        name=f"projects/{a.project}/serviceAccounts/{a.names.kfp_sa_email}", keyTypes="USER_MANAGED"))
    return sorted(k["name"].rsplit("/", 1)[-1] for k in resp.get("keys", []) or [])


def secret_needles(key_json: str | None = None, password: str | None = None) -> dict[str, str]:
    """Strings that must not appear in any file the run wrote: the private key (whole, per line, base64 of the key
    file) and the DB password (and its base64)."""
    out: dict[str, str] = {}
    if key_json:
        doc = json.loads(key_json)
        pk = doc["private_key"]
        body = [ln for ln in pk.splitlines() if ln and not ln.startswith("-----")]
        for i, ln in enumerate(body):
            if len(ln) >= 40:
                out[f"private key line {i}"] = ln
        out["private key (JSON-escaped)"] = json.dumps(pk)[1:60]
        out["key file base64"] = base64.b64encode(key_json.encode()).decode()[:60]
    if password:
        out["db password"] = password
        out["db password base64"] = base64.b64encode(password.encode()).decode().rstrip("=")
    return out


def scan(files: list[Path], needles: dict[str, str]) -> list[str]:
    hits = []
    for f in files:
        try:
            data = f.read_bytes()
        except OSError:
            continue
        text = data.decode("utf-8", "replace")
        for what, n in needles.items():
            if n and n in text:
                hits.append(f"{what} in {f}")
    return hits


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A secure-looking keyring that keeps everything in memory (stands in for the Secret Service in tests)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}
        self.sets = 0

    def set_password(self, service: str, username: str, password: str) -> None:
        self.sets += 1
        self.store[(service, username)] = password

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)
