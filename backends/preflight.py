"""Preflight: read-only checks, all at once, before anything is created.

``await run_preflight(answers) -> PreflightReport``; ``report.checks`` is a list of ``Check(name, status, detail,
fix)`` with status "ok" | "warn" | "fail"; ``report.ok`` is True when nothing failed; ``report.to_table()`` is text.
Each ``Check`` also carries ``ok`` (status == "ok"), ``level`` ("info"/"warning"/"error"), ``message`` and
``remedy`` (the shape the core's reporters read); only "fail" fails the preflight.
A check that needs an API that is not enabled yet reports "will check after enabling" as a warning and is
*deferred* (``Check.deferred``; ``report.deferred``): the core runs it again (``await report.recheck(answers,
runtime)``) right after the APIs step and before any other step (``installer.run.deferred_checks``).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Awaitable, Callable

from installer.answers import LEGACY_APIS, Answers
from installer.sizing import cluster_size, fitting_choices, size_of_cluster
from installer.errors import ErrorClass, InstallerError

from backends.org_policy import key_policy, why_unread

log = logging.getLogger("mlops_install.preflight")


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str = ""
    fix: str = ""
    deferred: bool = False  # could not run yet (an API it needs is disabled): run again after the APIs step
    ok: bool = field(init=False)
    level: str = field(init=False)
    message: str = field(init=False)
    remedy: str = field(init=False)

    def __post_init__(self) -> None:
        self.ok = self.status == "ok"  # the core's reporters: ok=False + level "warning" prints "warn"
        self.level = {"ok": "info", "warn": "warning", "fail": "error"}[self.status]
        self.message = self.detail
        self.remedy = self.fix

    def to_event(self) -> dict:
        """The check as the core's ``PreflightDone`` event carries it (also the plain reporter's and gather's)."""
        return asdict(self)


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

    @property
    def deferred(self) -> list[Check]:
        """The checks that waited for an API the APIs step enables."""
        return [c for c in self.checks if c.deferred]

    async def recheck(self, answers: Answers, runtime: dict | None = None) -> "PreflightReport":
        """Run the deferred checks again (the APIs are enabled now): a new report with their new results."""
        names = {c.name for c in self.deferred}
        fresh = await asyncio.gather(*(_guarded(answers, n, fn, runtime) for n, fn in CHECKS if n in names))
        by_name = {c.name: c for c in fresh}
        report = PreflightReport([by_name.get(c.name, c) for c in self.checks])
        if runtime is not None:
            runtime["preflight_report"] = report
        return report

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
                 "The APIs step enables it; this is checked right after, before anything else is made.",
                 deferred=True)


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
    from backends.infra.apis import consent_remedy, consent_to_enable, enabled_services
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
    """The Compute quota the nodes this run makes take, against what is free: regional CPUS (or the machine family's
    metric), IN_USE_ADDRESSES and SSD_TOTAL_GB (Compute regions.get quotas[]), project-wide CPUS_ALL_REGIONS
    (projects.get quotas[]) (https://cloud.google.com/compute/resource-usage). Nothing for a cluster that exists
    (ours or adopted) beyond what a larger node count adds; the region, the zone and the machine type must exist."""
    from backends.gcp.calls import call
    from backends.gcp.errors import ApiError
    from backends.infra.common import is_ours
    from backends.infra.gke import get_cluster
    region, project, live = await asyncio.gather(
        call("compute", lambda s: s.regions().get(project=a.project, region=a.region), project=a.project,
             what=f"region {a.region}"),
        call("compute", lambda s: s.projects().get(project=a.project), project=a.project, what="Compute quotas"),
        get_cluster(a))
    zones = [z.rsplit("/", 1)[-1] for z in region.get("zones") or []]
    if a.zone and zones and a.zone not in zones:
        return Check("quota", "fail", f"zone {a.zone} does not exist in {a.region} (its zones: {', '.join(zones)})",
                     "Set zone to one of them, or leave it out for a regional cluster.")
    zone = a.zone or next(iter(zones), None)
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
    existing = None
    if live is not None and live.get("status") not in ("ERROR",):
        if not is_ours(a, live.get("resourceLabels")):
            return Check("quota", "ok", f"cluster {a.names.cluster} exists (adopted, used as it is): this run makes "
                         "no nodes")
        existing = size_of_cluster(live)
        if existing.machine_type != size.machine_type:
            return Check("quota", "ok", f"cluster {a.names.cluster} exists; its machine type cannot change (see "
                         "the changes check): this run makes no nodes")
    need = size.quota_to_grow_from(existing)
    if not need:
        return Check("quota", "ok", f"cluster {a.names.cluster} exists ({existing.describe()}): this run makes no "
                     "nodes" if existing else "nothing to make")
    quotas = {(a.region, q.get("metric")): q for q in region.get("quotas") or []}
    quotas.update({("project", q.get("metric")): q for q in project.get("quotas") or []})
    free: dict[str, float] = {}
    problems, notes = [], []
    for metric, amount in need.items():
        where = "project" if metric == "CPUS_ALL_REGIONS" else a.region
        q = quotas.get((where, metric))
        if not q:
            continue
        limit = float(q.get("limit", 0))
        free[metric] = limit - float(q.get("usage", 0))
        notes.append(f"{metric} {amount:g} needed, {free[metric]:g} free")
        if free[metric] < amount:
            problems.append(f"{metric} {'in all regions' if where == 'project' else 'in ' + where}: need "
                            f"{amount:g}, {free[metric]:g} free of {limit:g}")
    what = (f"growing cluster {a.names.cluster} to {size.describe()}" if existing else
            f"the cluster ({size.describe()})")
    if problems:
        have = existing.quota() if existing else {}
        choices = fitting_choices(a, {m: f + have.get(m, 0.0) for m, f in free.items()}, cpus)
        return Check("quota", "fail", f"not enough quota for {what}: " + "; ".join(problems),
                     ("Choices that fit: " + "; ".join(choices) + ". Or r" if choices else "R")
                     + f"equest more quota: https://console.cloud.google.com/iam-admin/quotas?project={a.project}.")
    return Check("quota", "ok", f"{what}: " + ("; ".join(notes) or f"no quota data for {a.region}"))


BILLING_LINK = "https://console.cloud.google.com/billing/linkedaccount?project={project}"


async def _billing(a: Answers) -> Check:
    """Cloud Billing projects.getBillingInfo (cloudbilling.v1 discovery document: ``billingEnabled`` "False if the
    project is associated with a closed billing account, or no billing account at all, and therefore cannot use
    paid services"; needs resourcemanager.projects.get). Unreadable (e.g. the Cloud Billing API is not enabled,
    which the installer does not need otherwise): unknown, a warning."""
    from backends.gcp.calls import call
    from backends.gcp.errors import ApiError
    link = BILLING_LINK.format(project=a.project)
    try:
        info = await call("cloudbilling", lambda s: s.projects().getBillingInfo(name=f"projects/{a.project}"),
                          project=a.project, what="billing", raw=True, budget=20, propagation=False)
    except (ApiError, InstallerError) as err:
        return Check("billing", "warn", f"billing unknown: could not read it ({why_unread(err)})",
                     f"If enabling an API fails with 'Billing must be enabled', link {a.project} to a billing "
                     f"account: {link}")
    if info.get("billingEnabled"):
        return Check("billing", "ok", f"billing enabled ({info.get('billingAccountName', 'an open account')})")
    return Check("billing", "fail", f"project {a.project} has no open billing account: Compute Engine, GKE and "
                 "Cloud SQL cannot be enabled or used without one",
                 f"Link it to a billing account: {link} (or `gcloud billing projects link {a.project} "
                 "--billing-account=ACCOUNT_ID`), then run again.")


async def _changes(a: Answers, runtime: dict | None = None) -> Check:
    """Settings of our existing cluster and SQL instance that differ from the answers: refused before anything is
    made when they cannot change in place; else applied by their steps with consent (--yes, the wizard's confirm)."""
    from backends.infra.changes import changes_remedy, consent_to_change, way_out
    from backends.infra.steps import planned_changes
    changes = await planned_changes(a)
    refused = [c for c in changes if not c.in_place]
    updates = [c for c in changes if c.in_place]
    if refused:
        return Check("changes", "fail", "; ".join(f"{c} cannot change in place" for c in refused), way_out(a))
    if updates and not consent_to_change(runtime):
        return Check("changes", "fail", f"{len(updates)} setting(s) of existing resources differ from the answers: "
                     + "; ".join(str(c) for c in updates), changes_remedy(updates))
    if updates:
        return Check("changes", "warn", "updated in place: " + "; ".join(f"{c} ({c.how})" for c in updates))
    return Check("changes", "ok", "no setting of an existing resource changes")


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


async def _manifests(a: Answers, runtime: dict | None = None) -> Check:
    """A local ``kfp.manifests`` folder compared with the release's object list (``backends.kfp.release``): objects
    added or missing and cluster-wide permissions not in the release are shown and need consent (--yes, or the
    wizard's question) before anything is made."""
    if a.kfp.manifests == "upstream":
        return Check("manifests", "ok", f"Kubeflow Pipelines {a.kfp.version} from upstream")
    from backends.k8s.apply import ask_consent
    from backends.kfp.release import review
    rv = await asyncio.to_thread(review, a)
    if rv is None or not rv.differs:
        return Check("manifests", "ok", f"{a.kfp.manifests}: the objects of Kubeflow Pipelines {a.kfp.version}")
    lines = "; ".join(rv.lines())
    question = (f"The manifests in {a.kfp.manifests} differ from Kubeflow Pipelines {a.kfp.version}: {lines}. "
                "Apply them anyway?")
    if await ask_consent(dict(runtime or {}), question):
        return Check("manifests", "warn", f"{a.kfp.manifests} differs from the release (accepted): {lines}")
    return Check("manifests", "fail", f"{a.kfp.manifests} differs from Kubeflow Pipelines {a.kfp.version}: {lines}",
                 "Look at what differs (mlops-install render shows the objects); to apply it anyway run the same "
                 "command with --yes, or set kfp.manifests: upstream.")


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
    # settings that cannot change in place are the "changes" check's
    conflicts = [(s, o) for s, o, e in results if o is not None and o.status == "conflict"
                 and not o.outputs.get("changes")]
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
                     "The APIs step enables them; checked right after, before anything else is made.",
                     deferred=True)
    return Check("names", "ok", detail)


async def _tools(a: Answers) -> Check:
    needs_kustomize = a.kfp.manifests == "upstream"
    names = ["kubectl", "kubectl-kustomize"] if needs_kustomize else ["kubectl"]
    from installer.environment import check_tools
    statuses = await asyncio.to_thread(check_tools, names)
    missing = [(t.name, t.hint) for t in statuses if not t.found]
    found = [f"{t.name} {t.version or ''}".strip() for t in statuses if t.found]
    if not missing:
        return Check("tools", "ok", ", ".join(found))
    status = "fail" if needs_kustomize else "warn"
    return Check("tools", status, f"missing: {', '.join(n for n, _ in missing)}", "; ".join(h for _, h in missing))


CHECKS: list[tuple[str, Callable[[Answers], Awaitable[Check]]]] = [
    ("credentials", _credentials), ("project", _project), ("permissions", _permissions), ("apis", _apis),
    ("billing", _billing), ("org-policy", _org_policy), ("quota", _quota), ("bucket", _bucket), ("names", _names),
    ("changes", _changes), ("manifests", _manifests), ("tools", _tools),
]
WITH_RUNTIME = (_apis, _changes, _manifests)  # consent (--yes) is in the runtime, not in the answers


async def _guarded(answers: Answers, name: str, fn, runtime: dict | None) -> Check:
    try:
        if fn in WITH_RUNTIME:
            return await fn(answers, runtime)
        return await fn(answers)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a row of the table
        return _from_error(name, exc)


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

    rest = await asyncio.gather(*(_guarded(answers, n, fn, runtime) for n, fn in CHECKS[1:]))
    report = PreflightReport([cred, *rest])
    if runtime is not None:
        runtime["preflight_report"] = report
    return report
