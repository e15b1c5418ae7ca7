"""Read-only questions the wizard and preflight ask of Google Cloud.

All functions are blocking (they use googleapiclient); callers on an event loop
run them with ``asyncio.to_thread``. Owned by the infrastructure backend.
``enable_apis`` is the one that changes something (the wizard's APIs screen, after the user's consent).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable


def whoami() -> dict:
    """{"account": email or None, "source": "adc-service-account" | "adc-user" | "gcloud" | None, "project": default project or None}"""
    from backends.gcp import auth
    from installer.errors import InstallerError
    try:
        _, project = auth.credentials()
        auth.ensure_valid()
    except InstallerError as exc:
        return {"account": None, "source": None, "project": None, "error": exc.message}
    email, source = auth.account()
    if not email:
        email = _token_email()
    return {"account": email, "source": source, "project": project, "adc": True}


def _token_email() -> str | None:
    """The user's email from Google's tokeninfo (only against Google itself)."""
    from backends.gcp.env import is_overridden
    if is_overridden():
        return None
    try:
        import json
        import urllib.request

        from backends.gcp.auth import access_token
        with urllib.request.urlopen(f"https://oauth2.googleapis.com/tokeninfo?access_token={access_token()}",
                                    timeout=10) as r:
            return json.loads(r.read()).get("email")
    except Exception:
        return None


def list_projects() -> list[dict]:
    """[{"projectId", "name", "projectNumber"}] the caller can see (Resource Manager projects.search/list)."""
    from backends.gcp.calls import call_sync
    out: list[dict] = []
    token = None
    while True:
        resp = call_sync("cloudresourcemanager", lambda s, t=token: s.projects().list(
            filter="lifecycleState:ACTIVE", pageToken=t), what="projects")
        for p in resp.get("projects") or []:
            out.append({"projectId": p.get("projectId"), "name": p.get("name") or p.get("projectId"),
                        "projectNumber": str(p.get("projectNumber", ""))})
        token = resp.get("nextPageToken")
        if not token:
            return sorted(out, key=lambda p: p["projectId"] or "")


def _for_project(project: str) -> None:
    """Questions about ``project`` bill and check its quota, not the credentials' own quota project."""
    from backends.gcp.auth import set_target_project
    set_target_project(project)


def _pages(api: str, make: Callable[[Any, str | None], Any], key: str, **kw: Any) -> list[dict]:
    from backends.gcp.calls import call_sync
    if kw.get("project"):
        _for_project(kw["project"])
    out: list[dict] = []
    token = None
    while True:
        resp = call_sync(api, lambda s, t=token: make(s, t), **kw)
        out += resp.get(key) or []
        token = resp.get("nextPageToken")
        if not token:
            return out


def list_regions(project: str) -> list[str]:
    items = _pages("compute", lambda s, t: s.regions().list(project=project, pageToken=t), "items",
                   project=project, what="regions")
    return sorted(r["name"] for r in items if r.get("status", "UP") == "UP")


def list_zones(project: str, region: str) -> list[str]:
    items = _pages("compute", lambda s, t: s.zones().list(project=project, pageToken=t), "items",
                   project=project, what="zones")
    return sorted(z["name"] for z in items if z.get("region", "").rstrip("/").rsplit("/", 1)[-1] == region
                  and z.get("status", "UP") == "UP")


def api_states(project: str, apis: list[str]) -> dict[str, bool]:
    """{api: enabled?} for each of ``apis``."""
    items = _pages("serviceusage", lambda s, t: s.services().list(
        parent=f"projects/{project}", filter="state:ENABLED", pageSize=200, pageToken=t), "services",
        project=project, what="APIs")
    enabled = {(x.get("config") or {}).get("name") or x.get("name", "").rsplit("/", 1)[-1] for x in items}
    return {a: a in enabled for a in apis}


def key_creation_allowed(project: str) -> bool | None:
    """False when organization policy forbids service-account keys; None when that could not be read."""
    from backends.org_policy import key_policy
    from installer.errors import InstallerError
    _for_project(project)
    try:
        pol = asyncio.run(key_policy(project))
    except InstallerError:
        return None
    return None if pol.enforced is None else not pol.enforced


def _say(on_progress: Callable[[str], None] | None) -> Callable[[Any], None]:
    """The APIs step's events, as the wizard's progress lines (``on_progress``)."""
    from installer.events import StepLog, StepProgress, StepWaiting

    def emit(event: Any) -> None:
        if on_progress is None:
            return
        if isinstance(event, (StepLog, StepProgress)):
            on_progress(event.message)
        elif isinstance(event, StepWaiting):
            on_progress(event.on)
    return emit


def enable_apis(project: str, apis: list[str], on_progress: Callable[[str], None] | None = None) -> dict:
    """Enable the missing ones of ``apis`` (batches of 20, legacy ones alone and optional), wait until they are
    listed and usable. Blocking; returns the APIs step's outputs ({"enabled": [...], "legacy_missing"?: [...]})."""
    return asyncio.run(enable_apis_async(project, apis, on_progress))


async def enable_apis_async(project: str, apis: list[str], on_progress: Callable[[str], None] | None = None) -> dict:
    from backends.infra.apis import ApisStep
    from installer.answers import Answers, ApisAnswers
    from installer.plan import build_plan
    from installer.steps import StepContext
    _for_project(project)
    answers = Answers(project=project, region="us-central1", prefix="wizard",
                      apis=ApisAnswers(enable=True, required=list(apis)))
    plan = build_plan(answers)
    step = ApisStep(plan["apis"])
    obs = await step.inspect(answers)
    if obs.status == "ready":
        return obs.outputs
    ctx = StepContext.detached(plan, "apis", _say(on_progress))
    started = time.time()
    out = await step.apply(ctx, obs)
    out["seconds"] = round(time.time() - started, 2)
    return out
