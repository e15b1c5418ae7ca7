"""What the wizard finds out (split from ``screens/services.py``, the wizard's facade, which re-exports it): where it
runs and which tools are there (``installer.environment``), who is signed in, and the read-only questions to Google
(``backends.queries``: projects, regions, zones, API states, the key policy), plus enabling the APIs.

Blocking functions run in thread workers; the backends are imported lazily so the first frame comes up fast.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger("mlops_install.wizard")

# ---------------------------------------------------------------------------------------------- environment


def sandboxed() -> bool:
    """The wizard runs against the local sandbox (no network beyond it)."""
    return bool(os.environ.get("MLOPS_SANDBOX_URL"))


@dataclass
class EnvInfo:
    runtime: str  # "cloud-shell" | "tfx-dev" | "other"
    tools: dict[str, str | None]  # tool -> path or None
    sandbox: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def cloud_shell(self) -> bool:
        return self.runtime == "cloud-shell"


TOOLS = ("gcloud", "kubectl", "gke-gcloud-auth-plugin")
RUNTIME_WORDS = {"cloud-shell": "in Google Cloud Shell", "tfx-dev": "in the tfx-dev image",
                 "other": "on a workstation or container (not Cloud Shell, not tfx-dev)"}


def runtime_words(kind: str) -> str:
    """Where the installer runs, in words ("in Google Cloud Shell"), never the bare detector value ("other")."""
    return RUNTIME_WORDS.get(kind, f"in {kind}")


def detect_environment() -> EnvInfo:
    """Blocking (runs each tool's --version): call in a thread worker."""
    from installer import environment as E

    rt = E.detect_runtime()
    tools: dict[str, str | None] = {}
    try:
        for t in E.check_tools(TOOLS, timeout=5.0):
            tools[t.name] = (t.version or "found") if t.found else None
    except Exception:
        log.exception("tool check failed")
        tools = {t: ("found" if shutil.which(t) else None) for t in TOOLS}
    return EnvInfo(rt.kind, tools, sandboxed(), list(rt.notes))


# ---------------------------------------------------------------------------------------------- queries


@dataclass
class AuthInfo:
    account: str | None
    source: str | None  # adc-service-account | adc-user | gcloud | cloud-shell | None
    project: str | None = None
    adc: bool = False
    error: str = ""
    gcloud_account: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.account) and self.adc


def whoami() -> AuthInfo:
    """Blocking."""
    from backends import queries
    from installer.environment import gcloud_account

    gaccount = gcloud_account(timeout=8.0)
    try:
        d = queries.whoami()
    except Exception as exc:
        return AuthInfo(None, None, error=_short(exc), gcloud_account=gaccount)
    d = d or {}
    src = d.get("source")
    adc = bool(src and str(src).startswith("adc")) or bool(d.get("adc"))
    if not adc and d.get("account"):
        adc = _adc_present()
    if d.get("error"):
        return AuthInfo(None, None, d.get("project"), False, error=str(d["error"]), gcloud_account=gaccount)
    return AuthInfo(d.get("account"), src, d.get("project"), adc, gcloud_account=gaccount)


def _adc_present() -> bool:
    try:
        import google.auth
        google.auth.default()
        return True
    except Exception:
        return False


def _short(exc: BaseException) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return msg.splitlines()[0][:300]


def list_projects() -> list[dict]:
    from backends import queries
    return list(queries.list_projects())


def list_regions(project: str) -> list[str]:
    from backends import queries
    return sorted(queries.list_regions(project))


def list_zones(project: str, region: str) -> list[str]:
    from backends import queries
    return sorted(queries.list_zones(project, region))


def api_states(project: str, apis: list[str]) -> dict[str, bool]:
    from backends import queries
    return dict(queries.api_states(project, apis))


def project_problem(project: str) -> tuple[str | None, dict[str, bool] | None]:
    """Blocking (a thread): whether the project can be used, before anything is recorded for it: (why not, or
    None; the required APIs' states when read). It cannot when Google says it does not exist or the account has no
    permission on it; any other error (e.g. a network failure) does not stop the wizard here."""
    from installer.answers import REQUIRED_APIS
    try:
        return None, api_states(project, list(REQUIRED_APIS))
    except Exception as exc:  # noqa: BLE001 - classified below
        msg = _short(exc)
        cls = getattr(getattr(exc, "error_class", None), "value", "")
        if cls in ("permission-denied", "not-found") or "permission" in msg.lower() or "not found" in msg.lower():
            return msg, None
        return None, None


def key_creation_allowed(project: str) -> bool | None:
    from backends import queries
    return queries.key_creation_allowed(project)


def enable_apis(project: str, apis: list[str], on_progress: Callable[[str], None] | None = None) -> dict:
    """Blocking: enable the missing ones of ``apis`` now (the backend's own APIs step), for plain mode."""
    from backends import queries
    return queries.enable_apis(project, apis, on_progress)


async def enable_apis_async(project: str, apis: list[str],
                            on_progress: Callable[[str], None] | None = None) -> dict:
    """The same, awaited (the wizard's APIs screen)."""
    from backends import queries
    return await queries.enable_apis_async(project, apis, on_progress)


@dataclass
class KeyPolicyInfo:
    allowed: bool | None  # None: not known
    note: str = ""  # why not known, per constraint: "... (orgpolicy.googleapis.com is not enabled)", "(no permission...)"


def key_policy(project: str) -> KeyPolicyInfo:
    """Blocking (a thread): whether organisation policy lets the project create service-account keys, and when it
    is not known, why (``backends.org_policy.key_policy``: the API not enabled, or no permission to read it)."""
    import asyncio

    from backends.org_policy import key_policy as kp
    pol = asyncio.run(kp(project))
    return KeyPolicyInfo(None if pol.enforced is None else not pol.enforced, pol.note)


def login_command(env: EnvInfo | None = None) -> list[str]:
    cmd = ["gcloud", "auth", "login", "--update-adc"]
    if not os.environ.get("DISPLAY") and sys.platform != "darwin":
        cmd.append("--no-launch-browser")
    return cmd
