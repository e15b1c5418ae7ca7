"""Where the installer runs and which tools it has.

- ``detect_runtime()``: "cloud-shell" (``CLOUD_SHELL=true`` or ``DEVSHELL_GCLOUD_CONFIG`` set), "tfx-dev" (the
  image sets ``MLOPS_INSTALL_RUNTIME=tfx-dev`` and writes ``/etc/mlops-install/tfx-dev``), else "other".
- ``check_tools([...]) -> [ToolStatus]``: found, version, path and a hint to install what is missing;
  ``kubectl-kustomize`` checks kubectl's built-in kustomize.
- ``gcloud_account()``: the active gcloud account (short timeout, never raises).
- ``terminal_size()``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

TFX_DEV_ENV = "MLOPS_INSTALL_RUNTIME"
TFX_DEV_MARKER = Path("/etc/mlops-install/tfx-dev")


@dataclass
class Runtime:
    kind: str  # cloud-shell | tfx-dev | other
    in_tmux: bool
    project_hint: str | None  # GOOGLE_CLOUD_PROJECT / DEVSHELL_PROJECT_ID (never CLOUD_SHELL_PROJECT)
    notes: list[str] = field(default_factory=list)


def detect_runtime(env: dict[str, str] | None = None, marker: Path = TFX_DEV_MARKER) -> Runtime:
    env = dict(os.environ) if env is None else env
    if env.get("CLOUD_SHELL") == "true" or env.get("DEVSHELL_GCLOUD_CONFIG"):
        kind = "cloud-shell"
    elif env.get(TFX_DEV_ENV) == "tfx-dev" or marker.exists():
        kind = "tfx-dev"
    else:
        kind = "other"
    project = env.get("GOOGLE_CLOUD_PROJECT") or env.get("DEVSHELL_PROJECT_ID") or None
    if project == "no-project-id":
        project = None
    rt = Runtime(kind, bool(env.get("TMUX")), project)
    if kind == "cloud-shell":
        rt.notes.append("Cloud Shell: an install takes 15-20 minutes; keep the tab active "
                        "(sessions idle for 20 minutes are reset)")
        if not rt.in_tmux:
            rt.notes.append("run inside tmux (tmux new -A -s mlops-install) so a lost tab does not stop the install")
    return rt


@dataclass
class ToolStatus:
    name: str
    found: bool
    version: str | None = None
    path: str | None = None
    hint: str = ""


_HINTS = {
    "gcloud": "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install (Cloud Shell and the "
              "tfx-dev image have it)",
    "kubectl": "gcloud components install kubectl (or apt-get install kubectl from Google's repository)",
    "gke-gcloud-auth-plugin": "gcloud components install gke-gcloud-auth-plugin (or apt-get install "
                              "google-cloud-cli-gke-gcloud-auth-plugin)",
    "terraform": "only needed for the Terraform workflow: https://developer.hashicorp.com/terraform/install",
    "kustomize": "optional: kubectl kustomize is used when present",
    "kubectl-kustomize": "kubectl >= 1.27 embeds kustomize 5; update kubectl",
    "git": "apt-get install git (needed for upstream KFP manifests)",
}

_VERSION_ARGS = {
    "gcloud": ["version", "--format=json"],
    "kubectl": ["version", "--client", "--output=json"],
    "gke-gcloud-auth-plugin": ["--version"],
    "terraform": ["version", "-json"],
    "kustomize": ["version"],
    "git": ["--version"],
}


def _version_of(name: str, path: str, timeout: float) -> tuple[str | None, str | None]:
    """(version, kustomize version for kubectl)."""
    args = _VERSION_ARGS.get(name, ["--version"])
    try:
        p = subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "CHECKPOINT_DISABLE": "1"})
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    out = (p.stdout or "") + (p.stderr or "")
    try:
        if name == "gcloud":
            return json.loads(p.stdout).get("Google Cloud SDK"), None
        if name == "kubectl":
            d = json.loads(p.stdout)
            return d.get("clientVersion", {}).get("gitVersion"), d.get("kustomizeVersion")
        if name == "terraform":
            return json.loads(p.stdout).get("terraform_version"), None
    except (ValueError, AttributeError):
        pass
    m = re.search(r"v?\d+\.\d+(?:\.\d+)?(?:[-+][\w.]+)?", out)
    return (m.group(0) if m else (out.strip().splitlines() or [None])[0]), None


def check_tools(names: list[str] | tuple[str, ...] = ("gcloud", "kubectl", "gke-gcloud-auth-plugin", "terraform"),
                timeout: float = 10.0) -> list[ToolStatus]:
    out: list[ToolStatus] = []
    kubectl_kustomize: str | None = None
    for name in names:
        if name == "kubectl-kustomize":
            path = shutil.which("kubectl")
            if not path:
                out.append(ToolStatus(name, False, hint=_HINTS["kubectl"]))
                continue
            if kubectl_kustomize is None:
                _, kubectl_kustomize = _version_of("kubectl", path, timeout)
            out.append(ToolStatus(name, bool(kubectl_kustomize), kubectl_kustomize, path,
                                  "" if kubectl_kustomize else _HINTS[name]))
            continue
        path = shutil.which(name)
        if not path:
            out.append(ToolStatus(name, False, hint=_HINTS.get(name, f"install {name}")))
            continue
        version, kz = _version_of(name, path, timeout)
        if name == "kubectl":
            kubectl_kustomize = kz or ""
        out.append(ToolStatus(name, True, version, path))
    return out


def gcloud_account(timeout: float = 8.0) -> str | None:
    """The active gcloud account, or None (no gcloud, no login, timeout, anything else). Never raises."""
    path = shutil.which("gcloud")
    if not path:
        return None
    try:
        p = subprocess.run([path, "auth", "list", "--format=json", "--quiet"], capture_output=True, text=True,
                           timeout=timeout, env={**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"})
        if p.returncode != 0:
            return None
        for acct in json.loads(p.stdout or "[]"):
            if isinstance(acct, dict) and acct.get("status") == "ACTIVE":
                return acct.get("account")
    except Exception:  # noqa: BLE001 - by contract
        return None
    return None


def terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size(fallback=(80, 24))
    return size.columns, size.lines


def is_interactive() -> bool:
    import sys
    try:
        return sys.stdin.isatty() and sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False
