"""Google error bodies parsed into ``ApiError`` and turned into ``InstallerError`` classes with remedies.

``parse(exc)`` understands googleapiclient's ``HttpError``, google-api-core exceptions (the storage client) and
plain connection errors. ``classify(err, ...)`` maps an ``ApiError`` to an ``InstallerError`` whose class says who
can fix it (``installer.errors.ErrorClass``) and whose remedy says how: the activation URL of a disabled API, the
missing permission and a role that grants it, the quota and region, the name that is taken.
``is_transient(err, api)`` is the retry predicate used by every request.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from installer.errors import ErrorClass, InstallerError

from .env import SERVICE_OF_API

# A predefined role that grants a permission, by permission prefix (longest prefix wins). Each row is checked against
# Google's role reference for that service (the "roles and permissions" page lists every permission of each role):
ROLE_FOR_PERMISSION = {
    # https://cloud.google.com/iam/docs/roles-permissions/serviceusage (Service Usage Admin: serviceusage.services.*)
    "serviceusage.services.": "roles/serviceusage.serviceUsageAdmin",
    # https://cloud.google.com/iam/docs/roles-permissions/resourcemanager (Project IAM Admin: get/setIamPolicy;
    # Browser: resourcemanager.projects.get)
    "resourcemanager.projects.getIamPolicy": "roles/resourcemanager.projectIamAdmin",
    "resourcemanager.projects.setIamPolicy": "roles/resourcemanager.projectIamAdmin",
    "resourcemanager.projects.get": "roles/browser",
    "resourcemanager.": "roles/resourcemanager.projectIamAdmin",
    # https://cloud.google.com/iam/docs/roles-permissions/iam (Service Account User: iam.serviceAccounts.actAs;
    # Service Account Admin: iam.serviceAccounts.*; Service Account Key Admin: iam.serviceAccountKeys.*)
    "iam.serviceAccounts.actAs": "roles/iam.serviceAccountUser",
    "iam.serviceAccounts.": "roles/iam.serviceAccountAdmin",
    "iam.serviceAccountKeys.": "roles/iam.serviceAccountKeyAdmin",
    # https://cloud.google.com/iam/docs/roles-permissions/compute (Compute Network Admin: compute.networks.*,
    # compute.subnetworks.*; Compute Security Admin: compute.firewalls.*; Compute Viewer: regions/zones get, list)
    "compute.networks.": "roles/compute.networkAdmin",
    "compute.subnetworks.": "roles/compute.networkAdmin",
    "compute.firewalls.": "roles/compute.securityAdmin",
    "compute.regions.": "roles/compute.viewer",
    "compute.zones.": "roles/compute.viewer",
    "compute.": "roles/compute.admin",
    # https://cloud.google.com/iam/docs/roles-permissions/container (Kubernetes Engine Admin: container.*)
    "container.": "roles/container.admin",
    # https://cloud.google.com/iam/docs/roles-permissions/cloudsql (Cloud SQL Admin: cloudsql.*)
    "cloudsql.": "roles/cloudsql.admin",
    # https://cloud.google.com/storage/docs/access-control/iam-roles (Storage Admin: storage.buckets.*, objects.*)
    "storage.": "roles/storage.admin",
    # https://cloud.google.com/iam/docs/roles-permissions/orgpolicy (Organization Policy Viewer: orgpolicy.policy.get)
    "orgpolicy.": "roles/orgpolicy.policyViewer",
}

# What an API that does not name the permission it wanted (SQL Admin's 403 notAuthorized, "The client is not
# authorized to make this request.") most likely needed, and the role above that grants it.
PERMISSION_OF_API = {"sqladmin": "cloudsql.instances.*", "container": "container.clusters.*",
                     "compute": "compute.networks.*", "iam": "iam.serviceAccounts.*",
                     "serviceusage": "serviceusage.services.*", "storage": "storage.buckets.*",
                     "gcs": "storage.buckets.*", "cloudresourcemanager": "resourcemanager.projects.setIamPolicy",
                     "cloudresourcemanager.v3": "resourcemanager.projects.setIamPolicy"}


def role_for(permission: str) -> str:
    best = ""
    for prefix in ROLE_FOR_PERMISSION:
        if permission.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return ROLE_FOR_PERMISSION.get(best, "roles/owner")  # only for a service the installer never calls


def grant_command(project: str, role: str, member: str | None = None) -> str:
    """The command that grants ``role`` on ``project`` to ``member`` (the caller, when known)."""
    return (f"gcloud projects add-iam-policy-binding {project or '<project>'} "
            f"--member={member or 'user:<your-email>'} --role={role}")


# Project numbers the installer has learnt (id -> number), so an error naming a project by number can be told apart
# from the target project (SERVICE_DISABLED for the credentials' quota project names it by number).
_project_numbers: dict[str, str] = {}


def note_project_number(project: str, number: str | None) -> None:
    if project and number:
        _project_numbers[project] = str(number)


@dataclass
class ApiError(Exception):
    """One error answer from a Google API (or a connection failure: ``http`` 0)."""
    http: int
    message: str
    status: str = ""  # canonical, e.g. PERMISSION_DENIED (newer APIs only)
    reasons: list[str] = field(default_factory=list)  # errors[].reason
    details: list[dict] = field(default_factory=list)
    api: str = ""
    raw: Any = None
    operation: bool = False  # the error of a finished long-running operation, not of a request

    def __str__(self) -> str:
        return f"{self.http} {self.message}"

    @property
    def reason(self) -> str:
        return self.reasons[0] if self.reasons else ""

    def detail(self, type_suffix: str) -> dict | None:
        for d in self.details:
            if str(d.get("@type", "")).endswith(type_suffix):
                return d
        return None

    @property
    def error_info(self) -> dict:
        return self.detail("google.rpc.ErrorInfo") or {}

    @property
    def retry_delay(self) -> float | None:
        d = self.detail("google.rpc.RetryInfo")
        if not d:
            return None
        v = d.get("retryDelay")
        if isinstance(v, str) and v.endswith("s"):
            try:
                return float(v[:-1])
            except ValueError:
                return None
        if isinstance(v, dict):
            return float(v.get("seconds", 0)) + float(v.get("nanos", 0)) / 1e9
        return None

    @property
    def not_found(self) -> bool:
        return self.http == 404

    @property
    def already_exists(self) -> bool:
        return self.http == 409 and (self.status == "ALREADY_EXISTS" or self.reason in (
            "alreadyExists", "instanceAlreadyExists", "conflict") or "already exist" in self.message.lower()
            or "already own" in self.message.lower())

    def has(self, text: str) -> bool:
        return text.lower() in self.message.lower()


def _from_body(http: int, body: Any, api: str, raw: Any) -> ApiError:
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        msg = body if isinstance(body, str) else json.dumps(body)[:500] if body else ""
        return ApiError(http, (msg or f"HTTP {http}").strip(), api=api, raw=raw)
    errors = err.get("errors") or []
    reasons = [e.get("reason", "") for e in errors if isinstance(e, dict)]
    return ApiError(http, str(err.get("message") or (errors[0].get("message") if errors else "") or f"HTTP {http}"),
                    status=str(err.get("status") or ""), reasons=reasons,
                    details=[d for d in err.get("details") or [] if isinstance(d, dict)], api=api, raw=raw)


def parse(exc: BaseException, api: str = "") -> ApiError | None:
    """An ApiError for a client exception, or None when ``exc`` is not an API/transport error."""
    if isinstance(exc, ApiError):
        return exc
    from googleapiclient.errors import HttpError

    if isinstance(exc, HttpError):
        content = exc.content.decode("utf-8", "replace") if isinstance(exc.content, bytes) else str(exc.content)
        try:
            body = json.loads(content)
        except ValueError:
            body = content
        return _from_body(int(exc.resp.status), body, api, exc)
    mod = type(exc).__module__
    if mod.startswith("google.api_core") or mod.startswith("google.cloud"):
        code = getattr(exc, "code", None)
        resp = getattr(exc, "response", None)
        body: Any = None
        if resp is not None:
            try:
                body = resp.json()
            except Exception:
                body = getattr(resp, "text", None)
        if body:
            e = _from_body(int(code or getattr(resp, "status_code", 0) or 0), body, api, exc)
        else:
            errs = getattr(exc, "errors", None) or []
            e = ApiError(int(code or 0), getattr(exc, "message", str(exc)),
                         reasons=[x.get("reason", "") for x in errs if isinstance(x, dict)], api=api, raw=exc)
        return e
    import socket
    import ssl
    name = type(exc).__name__
    if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout, socket.gaierror, ssl.SSLError)) or \
            name in ("ServerNotFoundError", "RedirectMissingLocation", "HttpLib2Error", "RemoteDisconnected",
                     "IncompleteRead", "BadStatusLine", "ReadTimeout", "ConnectTimeout", "Timeout",
                     "ChunkedEncodingError", "ProtocolError", "TransportError") or \
            (mod.startswith("requests") and name == "ConnectionError"):
        return ApiError(0, f"{name}: {exc}", api=api, raw=exc)
    import http.client

    if isinstance(exc, http.client.HTTPException):
        return ApiError(0, f"{type(exc).__name__}: {exc}", api=api, raw=exc)
    return None


# ---- predicates --------------------------------------------------------------------------------------------

def is_service_disabled(err: ApiError) -> bool:
    return err.http == 403 and (err.error_info.get("reason") == "SERVICE_DISABLED"
                                or "accessNotConfigured" in err.reasons
                                or "has not been used in project" in err.message
                                or "is not enabled for this project" in err.message)


def disabled_service(err: ApiError) -> str:
    md = err.error_info.get("metadata") or {}
    if md.get("service"):
        return md["service"]
    m = re.search(r"apis/api/([a-z0-9.-]+)/", err.message)
    return m.group(1) if m else SERVICE_OF_API.get(err.api, "")


# A rate (requests per unit of time) as Google names its limits: "Quota exceeded for quota metric 'Requests' and limit
# 'Requests per minute' of service ..." (gcp-api-behaviour.md §0; ErrorInfo reason RATE_LIMIT_EXCEEDED).
_RATE = re.compile(r"per (?:minute|second|100 seconds|user per|project per)|rate limit|RATE_LIMIT", re.I)
# A resource quota named in an answer: "Quota 'IN_USE_ADDRESSES' exceeded.  Limit: 8.0 in region europe-central2."
# (a GKE create operation's error, code 8: kubernetes-sigs/sig-storage-local-static-provisioner#526), "Insufficient
# regional quota to satisfy request: resource "CPUS"" (GKE's synchronous 403, gcp-api-behaviour.md §0).
_RESOURCE_QUOTA = re.compile(r"[Qq]uota '?[A-Z][A-Z0-9_]+'? exceeded|[Ii]nsufficient (?:regional |zonal )?quota|"
                             r"QUOTA_EXCEEDED|GCE_QUOTA_EXCEEDED")
# No capacity in a zone (not the project's quota): Compute's ZONE_RESOURCE_POOL_EXHAUSTED "The zone '...' does not have
# enough resources available to fulfill the request. Try a different zone, or try again later." and GKE's
# GCE_STOCKOUT "Try a different location, or try again later: Google Compute Engine does not have enough resources
# available to fulfill request" (https://cloud.google.com/compute/docs/troubleshooting/troubleshooting-resource-
# availability: "unrelated to your quota"; gcp-api-behaviour.md §5).
_STOCKOUT = re.compile(r"GCE_STOCKOUT|ZONE_RESOURCE_POOL_EXHAUSTED|STOCKOUT|does not have enough resources", re.I)


def is_stockout(err: ApiError) -> bool:
    return bool(_STOCKOUT.search(err.message)) or (err.error_info.get("reason") or "") in (
        "ZONE_RESOURCE_POOL_EXHAUSTED", "GCE_STOCKOUT")


def is_quota_exceeded(err: ApiError) -> bool:
    """A resource quota or capacity failure (user-fixable: another zone, fewer/smaller nodes, a quota request),
    never a rate limit. An operation that ends with code 8 (RESOURCE_EXHAUSTED) is one: retrying the same request
    does not help (gcp-api-behaviour.md §5; google.rpc.Code RESOURCE_EXHAUSTED "Some resource has been exhausted,
    perhaps a per-user quota", https://cloud.google.com/service-control/reference/rpc/google.rpc#google.rpc.Code)."""
    if is_stockout(err):
        return True
    if err.operation and (err.status == "RESOURCE_EXHAUSTED" or err.http == 429):
        return True
    if "QUOTA_EXCEEDED" in err.reasons or "quotaExceeded" in err.reasons:
        return True
    if err.http in (403, 429) and _RESOURCE_QUOTA.search(err.message) and not _RATE.search(err.message):
        return True
    if err.http == 429 and not _RATE.search(err.message):
        md = err.error_info.get("metadata") or {}
        limit = str(md.get("quota_limit") or md.get("quotaLimit") or md.get("quota_metric") or "")
        return bool(limit) and not _RATE.search(limit) and err.error_info.get("reason") != "RATE_LIMIT_EXCEEDED"
    return False


def is_rate_limited(err: ApiError) -> bool:
    if is_quota_exceeded(err):
        return False
    if err.http == 429:
        return True
    if err.http == 403 and (set(err.reasons) & {"rateLimitExceeded", "userRateLimitExceeded"}
                            or re.search(r"quota exceeded.*per minute", err.message, re.I | re.S)):
        return True
    return False


def is_transient(err: ApiError, api: str = "") -> bool:
    """Retry at the transport level (terraform's default predicates, gcp-api-behaviour.md §8)."""
    api = api or err.api
    if err.http == 0 or err.http in (500, 502, 503, 504) or is_rate_limited(err):
        return True
    if err.http == 409 and ("operationInProgress" in err.reasons or err.has("another operation")
                            or err.has("operation is already in progress")):
        return True
    if err.http == 400 and ("resourceNotReady" in err.reasons or err.has("is not ready")):
        return True
    if api == "serviceusage":
        if err.has("Another activation or deactivation is in progress"):
            return True
        if err.http in (400, 412) and err.has("Precondition check failed"):
            return True
    if api == "container" and err.http in (400, 409) and (err.has("incompatible operation")
                                                          or err.has("currently being created, deleted")):
        return True
    return False


def sa_not_visible(err: ApiError) -> bool:
    """A just-created service account that another API (or IAM itself) cannot see yet."""
    return (err.http in (400, 404) and "does not exist" in err.message) or \
        (err.http == 403 and "iam.serviceAccounts" in err.message and "may not exist" in err.message)


# ---- classification ----------------------------------------------------------------------------------------

_PERM = r"([a-z][a-zA-Z0-9]*\.[a-zA-Z0-9]+\.[a-zA-Z0-9.]*[a-zA-Z0-9])"


def _permission(err: ApiError) -> str | None:
    """The permission a 403 names. The shapes (gcp-api-behaviour.md §0-§7, and the sandbox reproduces each):
    Compute "Required 'compute.networks.create' permission for 'projects/p/global/networks/n'"; GKE "Required
    \"container.clusters.create\" permission(s) for \"projects/p/locations/l\"."; IAM "Permission
    'iam.serviceAccounts.create' denied on resource (or it may not exist)."; Storage "x does not have
    storage.buckets.get access to ..."; CRM and Service Usage: ErrorInfo.metadata.permission."""
    md = err.error_info.get("metadata") or {}
    if md.get("permission"):
        return md["permission"]
    msg = err.message
    m = re.search(r"[Pp]ermissions?\s+['\"]?" + _PERM, msg) or \
        re.search(_PERM + r"['\"]?\s+permission", msg) or \
        re.search(r"does not have " + _PERM + r" access", msg)
    return m.group(1) if m else None


def _quota(err: ApiError) -> tuple[str | None, str | None]:
    """(quota metric, region) named in a quota error."""
    m = re.search(r'resource "?([A-Z_]+)"?', err.message) or re.search(r"[Qq]uota '?([A-Z_]+)'? exceeded", err.message) \
        or re.search(r"quota metric '([^']+)'", err.message)
    r = re.search(r"region[: ]+'?([a-z]+-[a-z]+\d+)", err.message)
    md = err.error_info.get("metadata") or {}
    return (md.get("quota_metric") or md.get("quotaMetric") or (m.group(1) if m else None),
            md.get("region") or (r.group(1) if r else None))


def _quota_error(err: ApiError, prefix: str, project: str, region: str, details: dict) -> InstallerError:
    """A quota or capacity failure, with what to change: another zone, fewer or smaller nodes, or a quota request."""
    if is_stockout(err):
        z = re.search(r"\b([a-z]+-[a-z]+\d+-[a-z])\b", err.message)
        where = z.group(1) if z else (region or "this location")
        details.update(kind="stockout", zone=where)
        return InstallerError(
            f"{prefix}{err.message}", error_class=ErrorClass.QUOTA,
            remedy=f"Google Cloud has no capacity for these nodes in {where} right now (a stockout: not your "
                   f"quota, and the same request fails again there). Choose another zone (zone:) or region, or "
                   f"another machine type (cluster.machine_type), then run the installer again; or try later.",
            details=details)
    metric, reg = _quota(err)
    reg = reg or region
    link = re.search(r"https://console\.cloud\.google\.com/iam-admin/quotas\S*[^\s.,]", err.message)
    # The Quotas page of the console (https://cloud.google.com/docs/quotas/view-manage#requesting_higher_quota)
    url = link.group(0) if link else f"https://console.cloud.google.com/iam-admin/quotas?project={project}"
    details.update(kind="quota", quota=metric, region=reg, quota_url=url)
    return InstallerError(
        f"{prefix}{err.message}", error_class=ErrorClass.QUOTA,
        remedy=f"The project's {metric or 'resource'} quota{' in ' + reg if reg else ''} is used up (waiting does "
               f"not help). Use fewer or smaller nodes (cluster.node_count, cluster.machine_type; a regional "
               f"cluster has node_count nodes in each of its zones), or another region, or request more "
               f"{metric or 'quota'} at {url}; then run the installer again.",
        details=details)


def _caller() -> tuple[str | None, str | None]:
    """(the caller's IAM member, the credentials' quota project), from credentials already loaded (no I/O)."""
    from .auth import loaded_identity

    return loaded_identity()


def _disabled_elsewhere(err: ApiError, project: str) -> str | None:
    """The project SERVICE_DISABLED names when it is not ``project``: the credentials' quota project. User ADC
    carries one (``quota_project_id``, sent as ``x-goog-user-project``); for client-based APIs Google checks the API
    there, not in the target project (https://cloud.google.com/docs/quotas/quota-project). ErrorInfo.metadata.consumer
    names it as ``projects/<number>`` (gcp-api-behaviour.md §0)."""
    md = err.error_info.get("metadata") or {}
    consumer = str(md.get("consumer") or "").replace("projects/", "")
    if not project or not consumer or consumer == project:
        return None
    number = _project_numbers.get(project)
    if number:
        return consumer if consumer != number else None
    _, quota_project = _caller()
    if quota_project and quota_project != project:  # the number is unknown: trust what the credentials say
        return consumer
    return None


def classify(err: ApiError, *, what: str = "", project: str = "", region: str = "",
             permission: str | None = None) -> InstallerError:
    """An InstallerError (class, message, remedy) for an API error. ``what`` names the resource acted on;
    ``permission`` the permission the call needs, for APIs whose 403 does not name it (SQL Admin)."""
    prefix = f"{what}: " if what else ""
    msg = err.message
    details = {"http": err.http, "status": err.status, "reasons": err.reasons, "api": err.api}
    if is_service_disabled(err):
        svc = disabled_service(err)
        md = err.error_info.get("metadata") or {}
        url = md.get("activationUrl") or (
            f"https://console.developers.google.com/apis/api/{svc}/overview?project={project}" if svc else "")
        details.update(service=svc, activation_url=url)
        title = md.get("serviceTitle") or svc or "required"
        title = title if title.endswith("API") else f"{title} API"
        other = _disabled_elsewhere(err, project)
        if other:
            _, quota_project = _caller()
            qp = quota_project if quota_project and quota_project != project else None
            details.update(quota_project=qp or other, consumer=md.get("consumer"))
            # gcloud auth application-default set-quota-project: "update or add a quota project in application
            # default credentials" (https://cloud.google.com/sdk/gcloud/reference/auth/application-default/set-quota-project)
            return InstallerError(
                f"{prefix}the {title} is not enabled in project {qp or other}, the quota project of your "
                f"credentials (not the target project {project}): Google checks client-based APIs against the "
                f"quota project", error_class=ErrorClass.API_DISABLED,
                remedy=f"Make the target project your credentials' quota project: `gcloud auth application-default "
                       f"set-quota-project {project}`; or enable the API in project {qp or other} ({url}).",
                details=details)
        return InstallerError(f"{prefix}the {title} is not enabled in project "
                              f"{project or md.get('consumer', '').replace('projects/', '')}".rstrip(),
                              error_class=ErrorClass.API_DISABLED,
                              remedy=f"Enable it at {url} (or `gcloud services enable {svc}`), or set "
                                     f"apis.enable: true so the installer enables it.", details=details)
    if err.http == 401:
        return InstallerError(f"{prefix}{msg}", error_class=ErrorClass.AUTH,
                              remedy="Sign in again (`gcloud auth application-default login`).", details=details)
    if is_quota_exceeded(err):
        return _quota_error(err, prefix, project, region, details)
    if is_rate_limited(err):
        return InstallerError(f"{prefix}{msg}", error_class=ErrorClass.TRANSIENT,
                              remedy="Google is rate-limiting requests; wait a minute and run the installer "
                                     "again (it resumes).", details=details)
    pf = err.detail("google.rpc.PreconditionFailure")
    violations = (pf or {}).get("violations") or []
    constraint = next((v.get("type") for v in violations if str(v.get("type", "")).startswith("constraints/")), None)
    if constraint or "org policy" in msg.lower() or "organization policy" in msg.lower() or \
            "Key creation is not allowed" in msg:
        constraint = constraint or ("constraints/iam.disableServiceAccountKeyCreation"
                                    if "Key creation" in msg else "an organization policy constraint")
        details.update(constraint=constraint)
        remedy = (f"The organization policy {constraint} forbids this. Use credentials: workload-identity "
                  f"(no keys), or ask an organization policy administrator for an exception on this project."
                  if "ServiceAccountKey" in constraint else
                  f"The organization policy {constraint} forbids this; ask an organization policy "
                  f"administrator for an exception on this project.")
        return InstallerError(f"{prefix}{msg}", error_class=ErrorClass.ORG_POLICY, remedy=remedy, details=details)
    if err.http == 400 and "does not have access to service account" in msg:
        details.update(permission="iam.serviceAccounts.actAs", role="roles/iam.serviceAccountUser")
        return InstallerError(f"{prefix}{msg}", error_class=ErrorClass.PERMISSION_DENIED,
                              remedy=f"Grant the caller roles/iam.serviceAccountUser (permission "
                                     f"iam.serviceAccounts.actAs) on project {project}.", details=details)
    if err.http == 403 or err.status == "PERMISSION_DENIED":
        perm = _permission(err) or permission or PERMISSION_OF_API.get(err.api)
        named = _permission(err) is not None
        role = role_for(perm) if perm else "roles/editor"
        member, _ = _caller()
        details.update(permission=perm, role=role, member=member)
        need = (f"permission {perm}" if named else f"a {perm} permission (the answer does not name it)") \
            if perm else "a permission"
        return InstallerError(f"{prefix}{msg}", error_class=ErrorClass.PERMISSION_DENIED,
                              remedy=f"The caller{' ' + member.split(':', 1)[-1] if member else ''} lacks {need}. "
                                     f"Grant it the role {role}, which holds it, on project {project}: "
                                     f"`{grant_command(project, role, member)}` (role changes take a few "
                                     f"minutes to apply), then run the installer again.", details=details)
    if err.already_exists:
        name = what or "the name"
        return InstallerError(f"{prefix}{msg}", error_class=ErrorClass.NAME_TAKEN,
                              remedy=f"{name} is taken by another resource. Choose another prefix, or name the "
                                     f"existing resource in the answers (…existing) to adopt it.",
                              details=details)
    if is_transient(err):
        return InstallerError(f"{prefix}{msg}", error_class=ErrorClass.TRANSIENT,
                              remedy="A temporary Google error; run the installer again (it resumes).",
                              details=details)
    return InstallerError(f"{prefix}{msg}" if msg else f"{prefix}HTTP {err.http}", error_class=ErrorClass.UNEXPECTED,
                          remedy="Run the installer again to resume; if it fails again, report it with the "
                                 "debug log.", details=details)
