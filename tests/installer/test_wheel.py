"""The wheel (issue 15 item 1): built from the sources offline, installed into a fresh venv outside the checkout,
it carries what a user needs (the example answers, the sandbox, the schema) and its commands run: --version, init,
validate, plan --no-check, schema, demo --manifests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("wheel")  # one worker builds the wheel once for both tests
SOURCES = ("pyproject.toml", "README.md", "examples", "installer", "screens", "backends", "sandbox")


def _build_isolated_needed() -> bool:
    """Without build isolation (offline) the venv needs setuptools>=77 and wheel (the test extra has them)."""
    try:
        import setuptools
        import wheel  # noqa: F401
    except ImportError:
        return True
    return int(setuptools.__version__.split(".")[0]) < 77


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy: the build writes build/ and *.egg-info beside its sources, not in the checkout
    src.mkdir()
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            shutil.copy2(p, src / name)
    dist = tmp / "dist"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)]
    if not _build_isolated_needed():
        cmd.insert(5, "--no-build-isolation")
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert built.returncode == 0, built.stderr
    whl = next(dist.glob("mlops_install-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    py = venv / "bin" / "python"
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                           "--no-index", str(whl)], capture_output=True, text=True, timeout=120)
    assert inst.returncode == 0, inst.stderr
    # the dependencies: this venv's site-packages, after the new venv's own (a plain path line: the checkout's
    # editable install, a .pth in there, is not run)
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp / "work"  # outside the checkout
    work.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp / "home"), "LANG": "C.UTF-8",
           "MLOPS_INSTALL_STATE_DIR": str(tmp / "state"), "CLOUDSDK_CONFIG": str(tmp / "gcloud"),
           "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false", "NO_GCE_CHECK": "True", "GCE_METADATA_HOST": "127.0.0.1:9",
           "GCE_METADATA_IP": "127.0.0.1:9"}
    return {"whl": whl, "venv": venv, "work": work, "env": env, "tmp": tmp}


def run(inst: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    p = subprocess.run([str(inst["venv"] / "bin" / "mlops-install"), *args], capture_output=True, text=True,
                       cwd=inst["work"], env=inst["env"], timeout=timeout)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def test_wheel_carries_the_example_answers_the_sandbox_and_runs_outside_the_checkout(installed):
    names = zipfile.ZipFile(installed["whl"]).namelist()
    assert "installer/examples/answers.yaml" in names
    assert "sandbox/launcher.py" in names and any(n.startswith("sandbox/kube/") for n in names)
    assert "backends/kfp/release-2.14.4.json" in names and "screens/base.tcss" in names
    where = subprocess.run([str(installed["venv"] / "bin" / "python"), "-c",
                            "import installer, screens, sandbox; from installer.demo import EXAMPLE_ANSWERS; "
                            "print(installer.__file__); print(EXAMPLE_ANSWERS.is_file(), EXAMPLE_ANSWERS)"],
                           capture_output=True, text=True, cwd=installed["work"], env=installed["env"])
    assert where.returncode == 0 and where.stdout.startswith(str(installed["venv"])), where
    assert where.stdout.splitlines()[1] == f"True {where.stdout.splitlines()[0].rsplit('/', 1)[0]}/examples/answers.yaml"
    p = run(installed, "--version")
    assert p.returncode == 0 and p.stdout.startswith("mlops-install 0.1.0")
    p = run(installed, "init", "--project", "wheel-proj-1", "--region", "europe-west4", "--prefix", "whl")
    assert p.returncode == 0 and (installed["work"] / "answers.yaml").stat().st_mode & 0o777 == 0o600
    p = run(installed, "validate", "answers.yaml")
    assert p.returncode == 0 and "valid (project wheel-proj-1, prefix whl" in p.stdout
    p = run(installed, "plan", "--answers", "answers.yaml", "--no-check")
    assert p.returncode == 0 and "Plan for project wheel-proj-1, prefix whl" in p.stdout, p.stderr
    p = run(installed, "schema")
    assert p.returncode == 0 and '"title": "mlops-install answers file"' in p.stdout
    # nothing was written to the state dir by these (read-only) commands
    assert not (installed["tmp"] / "state" / "logs").exists()


def test_wheel_demo_with_local_manifests(installed, kfp_fixtures):
    state = installed["tmp"] / "demo"
    p = run(installed, "demo", "--manifests", str(kfp_fixtures), "--speed", "0.01", "--state-dir", str(state),
            timeout=240)
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-2000:])
    assert "Kubeflow Pipelines UI: https://" in p.stdout
    # the next steps name the command that takes the demo down (not `destroy --answers`, which has no sandbox)
    assert f"Destroy: mlops-install demo --destroy --state-dir {state}" in p.stdout, p.stdout[-2000:]
    assert os.path.exists(state / "answers.yaml")  # the example answers, from the package, with the manifests
