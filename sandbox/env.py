"""The environment variables that point clients (python, gcloud) at a running sandbox."""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import catalog

OVERRIDE_APIS = ("SERVICEUSAGE", "CLOUDRESOURCEMANAGER", "IAM", "CONTAINER", "SQL", "ORGPOLICY", "CLOUDBILLING")


def state_folder(state_dir: Path) -> Path:
    """The sandbox's state folder, made 0700 when the sandbox makes it: it holds the caller's key, the token
    signer, and the clusters' objects (Secrets with the DB password and the KFP key). A folder that was already
    there is left as it is (it is not ours to change)."""
    state_dir = Path(state_dir)
    if not state_dir.exists():
        state_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(state_dir, 0o700)  # whatever the umask
    return state_dir


def read_info(state_dir: Path) -> dict:
    return json.loads((Path(state_dir) / "sandbox.json").read_text())


def env_vars(state_dir: Path, info: dict | None = None) -> dict[str, str]:
    state_dir = Path(state_dir).resolve()
    info = info or read_info(state_dir)
    url = info["url"]
    env = {f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api}": url + "/" for api in OVERRIDE_APIS}
    env["CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE"] = url + "/compute/v1/"
    env["CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE"] = url + "/storage/v1/"
    env.update({
        "STORAGE_EMULATOR_HOST": url,
        "CLOUDSDK_AUTH_TOKEN_HOST": url + "/token",
        "GOOGLE_APPLICATION_CREDENTIALS": str(state_dir / "caller-key.json"),
        "CLOUDSDK_CORE_PROJECT": catalog.PROJECT_ID,
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CONFIG": str(state_dir / "gcloud"),
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(state_dir / "gcloud-access-token"),
        "MLOPS_INSTALL_TIME_SCALE": repr(float(info["speed"])),
        "MLOPS_SANDBOX_URL": url,
    })
    return env


def shell_exports(env: dict[str, str]) -> str:
    import shlex

    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
