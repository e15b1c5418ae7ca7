"""Preflight: read-only checks, all at once, before anything is created.

``await run_preflight(answers) -> PreflightReport``; ``report.checks`` is a list of ``Check(name, status, detail,
fix)`` with status "ok" | "warn" | "fail"; ``report.ok`` is True when nothing failed; ``report.to_table()`` is text.
Each ``Check`` also carries ``ok`` (status == "ok"), ``level`` ("info"/"warning"/"error"), ``message`` and
``remedy`` (the shape the core's reporters read); only "fail" fails the preflight.
A check that needs an API that is not enabled yet reports "will check after enabling" as a warning.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from installer.answers import LEGACY_APIS, Answers
from installer.sizing import cluster_size
from installer.errors import ErrorClass, InstallerError

log = logging.getLogger("mlops_install.preflight")

# The two constraints that forbid service-account keys. Resource Manager v1 getEffectiveOrgPolicy reads only the
# legacy one: for a managed constraint Google answers 400 "… is in a Managed constraint format. Managed constraints
# are only supported with Org Policy V2 API …" (terraform-google-modules/terraform-google-org-policy#183). The
# managed one is read through Org Policy v2 projects.policies.getEffectivePolicy (orgpolicy.v2 discovery document,
# GET v2/{+name}:getEffectivePolicy; PolicySpec.rules[].enforce), which needs orgpolicy.googleapis.com enabled and
# orgpolicy.policy.get. Organizations created since 3 May 2024 enforce the managed one by default
# (https://cloud.google.com/resource-manager/docs/secure-by-default-organizations).
LEGACY_KEY_CONSTRAINT = "constraints/iam.disableServiceAccountKeyCreation"
MANAGED_KEY_CONSTRAINT = "iam.managed.disableServiceAccountKeyCreation"


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str = ""
    fix: str = ""
    ok: bool = field(init=False)
    level: str = field(init=False)
    message: str = field(init=False)
    remedy: str = field(init=False)

    def __post_init__(self) -> None:
        self.ok = self.status == "ok"  # the core's reporters: ok=False + level "warning" prints "warn"
        self.level = {"ok": "info", "warn": "warning", "fail": "error"}[self.status]
        self.message = self.detail
        self.remedy = self.fix


@dataclass
class PreflightReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def get(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checks": [{"name": c.name, "status": c.status, "detail": c.detail, "fix": c.fix}
                                          for c in self.checks]}

    def to_table(self) -> str:
        w = max([len(c.name) for c in self.checks] + [5])
        lines = [f"{'check'.ljust(w)}  status  detail"]
        for c in self.checks:
            lines.append(f"{c.name.ljust(w)}  {c.status.ljust(6)}  {c.detail}")
            if c.fix and c.status != "ok":
                lines.append(f"{''.ljust(w)}  {''.ljust(6)}  fix: {c.fix}")
        lines.append("preflight " + ("passed" if self.ok else "failed"))
        return "\n".join(lines)


def _later(name: str, exc: InstallerError) -> Check:
    svc = exc.details.get("service", "")
    return Check(name, "warn", f"will check after enabling {svc or 'the API'}",
                 "The APIs step enables it; this is checked again by the step itself.")


def _from_error(name: str, exc: BaseException) -> Check:
    if isinstance(exc, InstallerError):
        if exc.error_class == ErrorClass.API_DISABLED:
            return _later(name, exc)
        return Check(name, "fail", exc.message, exc.remedy)
    log.debug("preflight check %s crashed", name, exc_info=exc)
    return Check(name, "fail", f"could not check: {type(exc).__name__}: {exc}",
                 "Run again; if it persists, report it with the debug log.")


def required_permissions(a: Answers) -> list[str]:
    perms = [
        "resourcemanager.projects.get", "resourcemanager.projects.getIamPolicy",
        "resourcemanager.projects.setIamPolicy",
        "serviceusage.services.list", "serviceusage.services.enable",
        "compute.networks.create", "compute.networks.get", "compute.subnetworks.create", "compute.subnetworks.get",
        "compute.regions.get",
        "iam.serviceAccounts.create", "iam.serviceAccounts.get", "iam.serviceAccounts.actAs",
        "container.clusters.create", "container.clusters.get", "container.operations.get",
        "cloudsql.instances.create", "cloudsql.instances.get", "cloudsql.users.create", "cloudsql.users.list",
        "cloudsql.users.update",
        "storage.buckets.create", "storage.buckets.get",
    ]
    if a.credentials == "key":
        perms += ["iam.serviceAccountKeys.create", "iam.serviceAccountKeys.list", "iam.serviceAccountKeys.delete"]
    else:
        perms += ["iam.serviceAccounts.setIamPolicy", "iam.serviceAccounts.getIamPolicy"]
    return perms


async def _credentials(a: Answers) -> Check:
    from backends.gcp import auth
    _, project = await asyncio.to_thread(auth.credentials)
    await asyncio.to_thread(auth.ensure_valid)
    email, source = await asyncio.to_thread(auth.account)
    who = email or "signed-in user"
    return Check("credentials", "ok", f"valid: {who} ({source})")


async def _project(a: Answers) -> Check:
    from backends.gcp.calls import call
    try:
        p = await call("cloudresourcemanager", lambda s: s.projects().get(projectId=a.project), project=a.project,
                       what=f"project {a.project}")
    except InstallerError as exc:
        if exc.error_class == ErrorClass.API_DISABLED:
            # Service Usage answers for the project even when Resource Manager is off
            await call("serviceusage", lambda s: s.services().list(parent=f"projects/{a.project}", pageSize=1),
                       project=a.project, what=f"project {a.project}")
            return Check("project", "ok", f"{a.project} is reachable (Resource Manager API not enabled yet)")
        if exc.error_class == ErrorClass.PERMISSION_DENIED or exc.details.get("http") == 404:
            return Check("project", "fail", f"project {a.project} does not exist or you cannot see it",
                         "Check the project id (gcloud projects list) and that you have a role on it.")
        raise
    state = p.get("lifecycleState", "ACTIVE")
    if state != "ACTIVE":
        return Check("project", "fail", f"project {a.project} is {state}", "Use an active project.")
    return Check("project", "ok", f"{a.project} (number {p.get('projectNumber')})")


async def _permissions(a: Answers) -> Check:
    from backends.gcp.calls import call
    from backends.gcp.auth import loaded_identity
    from backends.gcp.errors import grant_command, role_for
    perms = required_permissions(a)
    resp = await call("cloudresourcemanager", lambda s: s.projects().testIamPermissions(
        resource=a.project, body={"permissions": perms}), project=a.project, what="permissions")
    have = set(resp.get("permissions") or [])
    missing = [p for p in perms if p not in have]
    if not missing:
        return Check("permissions", "ok", f"the caller holds all {len(perms)} permissions needed")
    roles = sorted({role_for(p) for p in missing})
    member = loaded_identity()[0]
    return Check("permissions", "fail", f"missing {len(missing)} permission(s): {', '.join(missing)}",
                 f"Grant the caller {', '.join(roles)} on {a.project}: "
                 + "; ".join(f"`{grant_command(a.project, r, member)}`" for r in roles) + ".")


async def _apis(a: Answers, runtime: dict | None = None) -> Check:
    from backends.infra.steps import consent_remedy, consent_to_enable, enabled_services
    enabled = await enabled_services(a.project)
    missing = [x for x in a.apis_needed if x not in enabled]
    if not missing:
        return Check("apis", "ok", f"all {len(a.apis_needed)} required APIs are enabled")
    hard = [x for x in missing if x not in LEGACY_APIS]
    if not hard:
        return Check("apis", "warn", f"legacy APIs not enabled (not needed): {', '.join(missing)}", "")
    if consent_to_enable(a, runtime):
        return Check("apis", "warn", f"{len(missing)} API(s) not enabled yet; the installer will enable them: "
                     f"{', '.join(missing)}", "")
    return Check("apis", "fail", f"{len(hard)} required API(s) not enabled: {', '.join(hard)}",
                 consent_remedy(a, hard))


@dataclass
class KeyPolicy:
    """Whether organization policy lets this project create service-account keys."""
    enforced: bool | None  # True: a constraint forbids keys; False: neither does; None: not known
    unread: list[str]  # "constraint (why)" for each constraint that could not be read

    @property
    def note(self) -> str:
        return "; ".join(self.unread)


def _why(err: Exception) -> str:
    from backends.gcp.errors import ApiError, is_service_disabled
    if isinstance(err, ApiError):
        if is_service_disabled(err):
            svc = (err.error_info.get("metadata") or {}).get("service") or "its API"
            return f"{svc} is not enabled"
        if err.http == 403:
            return "no permission to read it"
        return f"HTTP {err.http}: {err.message[:120]}"
    return str(getattr(err, "message", err))[:120]


async def key_policy(project: str) -> KeyPolicy:
    """Both key constraints, each through the API that can read it; anything unreadable is unknown, never a
    failure."""
    from backends.gcp.calls import call
    from backends.gcp.errors import ApiError

    async def legacy() -> bool:
        pol = await call("cloudresourcemanager", lambda s: s.projects().getEffectiveOrgPolicy(
            resource=f"projects/{project}", body={"constraint": LEGACY_KEY_CONSTRAINT}), project=project,
            what="organization policy", raw=True, budget=20)
        return bool((pol.get("booleanPolicy") or {}).get("enforced"))

    async def managed() -> bool:
        pol = await call("orgpolicy", lambda s: s.projects().policies().getEffectivePolicy(
            name=f"projects/{project}/policies/{MANAGED_KEY_CONSTRAINT}"), project=project,
            what="organization policy", raw=True, budget=20, propagation=False)
        return any(r.get("enforce") and not r.get("condition") for r in (pol.get("spec") or {}).get("rules") or [])

    results = await asyncio.gather(legacy(), managed(), return_exceptions=True)
    unread, enforced = [], False
    for name, res in zip((LEGACY_KEY_CONSTRAINT.split("/", 1)[1], MANAGED_KEY_CONSTRAINT), results):
        if isinstance(res, BaseException):
            if not isinstance(res, (ApiError, InstallerError)):
                raise res
            unread.append(f"{name} ({_why(res)})")
        elif res:
            enforced = True
    return KeyPolicy(True if enforced else (None if unread else False), unread)


async def _org_policy(a: Answers) -> Check:
    pol = await key_policy(a.project)
    if pol.enforced:
        if a.credentials == "key":
            return Check("org-policy", "fail", "organization policy forbids service-account keys "
                         "(iam.disableServiceAccountKeyCreation)",
                         "Use credentials: workload-identity (no keys), or ask for a policy exception on this "
                         "project.")
        return Check("org-policy", "ok", "key creation is blocked by organization policy; workload-identity mode "
                     "needs no keys")
    if pol.enforced is None:
        if a.credentials == "key":
            return Check("org-policy", "warn", f"could not read {pol.note}: service-account keys may be forbidden "
                         "(organizations created since May 2024 forbid them by default)",
                         "If the key step fails with 'Key creation is not allowed', use credentials: "
                         "workload-identity; or enable orgpolicy.googleapis.com to let the preflight check.")
        return Check("org-policy", "ok", "workload-identity mode needs no keys")
    return Check("org-policy", "ok", "service-account key creation is allowed")


async def _quota(a: Answers) -> Check:
    from backends.gcp.calls import call
    from backends.gcp.errors import ApiError
    region = await call("compute", lambda s: s.regions().get(project=a.project, region=a.region),
                        project=a.project, what=f"region {a.region}")
    zone = a.zone or next((z.rsplit("/", 1)[-1] for z in region.get("zones") or []), None)
    cpus = None
    if zone:
        try:
            mt = await call("compute", lambda s: s.machineTypes().get(project=a.project, zone=zone,
                                                                       machineType=a.cluster.machine_type),
                            raw=True)
            cpus = float(mt.get("guestCpus") or 0) or None
        except ApiError as err:
            if err.not_found and a.cluster.machine_type in err.message and "requested URL" not in err.message:
                return Check("quota", "fail", f"machine type {a.cluster.machine_type} does not exist in {zone}",
                             "Choose another cluster.machine_type (gcloud compute machine-types list).")
    size = cluster_size(a, cpus)
    nodes, need_cpu = size.nodes, size.vcpus
    quotas = {q.get("metric"): q for q in region.get("quotas") or []}
    problems, notes = [], []
    for metric, need in (("CPUS", need_cpu), ("IN_USE_ADDRESSES", float(nodes))):
        q = quotas.get(metric)
        if not q:
            continue
        free = float(q.get("limit", 0)) - float(q.get("usage", 0))
        notes.append(f"{metric} {need:g} needed, {free:g} free")
        if free < need:
            problems.append(f"{metric} in {a.region}: need {need:g}, {free:g} free of {float(q.get('limit', 0)):g}")
    if problems:
        return Check("quota", "fail", "; ".join(problems),
                     f"Request more quota for {a.region} (IAM & Admin > Quotas), or use fewer nodes "
                     f"(cluster.node_count), a smaller cluster.machine_type, or a zone (zonal clusters use 1/3).")
    return Check("quota", "ok", "; ".join(notes) or f"no quota data for {a.region}")


async def _bucket(a: Answers) -> Check:
    from backends.infra.steps import STEPS
    from installer.plan import build_plan
    spec = build_plan(a)["bucket"]
    obs = await STEPS["bucket"](spec).inspect(a, {})
    if obs.status == "conflict":
        return Check("bucket", "fail", obs.detail, obs.remedy)
    if obs.status == "absent":
        return Check("bucket", "ok", f"gs://{a.names.bucket} is free")
    return Check("bucket", "ok", f"gs://{a.names.bucket} exists and is "
                 f"{'adoptable' if obs.adopted else 'ours'}")


NAME_STEPS = ("network", "subnet", "gke-sa", "kfp-sa", "cluster", "sql-instance")


async def _names(a: Answers) -> Check:
    from backends.infra.steps import STEPS
    from installer.plan import build_plan
    plan = build_plan(a)

    async def one(sid: str):
        try:
            return sid, await STEPS[sid](plan[sid]).inspect(a, {}), None
        except InstallerError as exc:
            return sid, None, exc
    results = await asyncio.gather(*(one(s) for s in NAME_STEPS))
    conflicts = [(s, o) for s, o, e in results if o is not None and o.status == "conflict"]
    later = [e.details.get("service", "") for s, o, e in results if e is not None
             and e.error_class == ErrorClass.API_DISABLED]
    errors = [(s, e) for s, o, e in results if e is not None and e.error_class != ErrorClass.API_DISABLED]
    existing = [f"{plan[s].resource}" for s, o, e in results if o is not None and o.status in ("ready", "pending",
                                                                                               "drifted")]
    if conflicts:
        return Check("names", "fail", "; ".join(o.detail for _, o in conflicts),
                     " ".join(dict.fromkeys(o.remedy for _, o in conflicts if o.remedy)))
    if errors:
        return Check("names", "fail", "; ".join(f"{s}: {e.message}" for s, e in errors),
                     errors[0][1].remedy)
    detail = "no derived name is taken by a foreign resource"
    if existing:
        detail += f"; existing, will be reused: {', '.join(existing)}"
    if later:
        return Check("names", "warn", detail + f"; will check after enabling {', '.join(sorted(set(later)))}",
                     "The APIs step enables them.")
    return Check("names", "ok", detail)


async def _tools(a: Answers) -> Check:
    needs_kustomize = a.kfp.manifests == "upstream"
    names = ["kubectl", "kubectl-kustomize"] if needs_kustomize else ["kubectl"]
    try:
        from installer.environment import check_tools
        statuses = await asyncio.to_thread(check_tools, names)
        missing = [(t.name, t.hint) for t in statuses if not t.found]
        found = [f"{t.name} {t.version or ''}".strip() for t in statuses if t.found]
    except ImportError:
        missing = [(n, "install kubectl") for n in ("kubectl",) if not shutil.which(n)]
        found = [n for n in ("kubectl",) if shutil.which(n)]
    if not missing:
        return Check("tools", "ok", ", ".join(found))
    status = "fail" if needs_kustomize else "warn"
    return Check("tools", status, f"missing: {', '.join(n for n, _ in missing)}", "; ".join(h for _, h in missing))


CHECKS: list[tuple[str, Callable[[Answers], Awaitable[Check]]]] = [
    ("credentials", _credentials), ("project", _project), ("permissions", _permissions), ("apis", _apis),
    ("org-policy", _org_policy), ("quota", _quota), ("bucket", _bucket), ("names", _names), ("tools", _tools),
]


async def run_preflight(answers: Answers, runtime: dict | None = None, emit: Any = None) -> PreflightReport:
    """Run every check at once (read-only). Never raises for a failed check: look at ``report.ok``."""
    from backends.gcp.auth import set_target_project
    set_target_project(answers.project)  # user credentials: the target project is the quota project
    try:
        cred = await _credentials(answers)
    except BaseException as exc:  # noqa: BLE001 - no credentials: nothing else can be checked
        if isinstance(exc, asyncio.CancelledError):
            raise
        c = _from_error("credentials", exc)
        return PreflightReport([c] + [Check(n, "warn", "not checked: no valid credentials", "")
                                      for n, _ in CHECKS[1:]])

    async def guarded(name: str, fn) -> Check:
        try:
            if fn is _apis:  # consent (--yes) is in the runtime, not in the answers
                return await fn(answers, runtime)
            return await fn(answers)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a row of the table
            return _from_error(name, exc)
    rest = await asyncio.gather(*(guarded(n, fn) for n, fn in CHECKS[1:]))
    report = PreflightReport([cred, *rest])
    if runtime is not None:
        runtime["preflight_report"] = report
    return report
