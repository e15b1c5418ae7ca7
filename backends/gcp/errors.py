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

# A role that grants a permission, by permission prefix (longest prefix wins).
ROLE_FOR_PERMISSION = {
    "serviceusage.services.": "roles/serviceusage.serviceUsageAdmin",
    "resourcemanager.projects.getIamPolicy": "roles/resourcemanager.projectIamAdmin",
    "resourcemanager.projects.setIamPolicy": "roles/resourcemanager.projectIamAdmin",
    "resourcemanager.projects.get": "roles/browser",
    "resourcemanager.": "roles/resourcemanager.projectIamAdmin",
    "iam.serviceAccounts.actAs": "roles/iam.serviceAccountUser",
    "iam.serviceAccounts.": "roles/iam.serviceAccountAdmin",
    "iam.serviceAccountKeys.": "roles/iam.serviceAccountKeyAdmin",
    "compute.networks.": "roles/compute.networkAdmin",
    "compute.subnetworks.": "roles/compute.networkAdmin",
    "compute.firewalls.": "roles/compute.securityAdmin",
    "compute.regions.": "roles/compute.viewer",
    "compute.zones.": "roles/compute.viewer",
    "compute.": "roles/compute.admin",
    "container.": "roles/container.admin",
    "cloudsql.": "roles/cloudsql.admin",
    "storage.": "roles/storage.admin",
    "orgpolicy.": "roles/orgpolicy.policyViewer",
}


def role_for(permission: str) -> str:
    best = ""
    for prefix in ROLE_FOR_PERMISSION:
        if permission.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return ROLE_FOR_PERMISSION.get(best, "roles/owner")


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
    try:
        from googleapiclient.errors import HttpError
    except ImportError:  # pragma: no cover
        HttpError = ()  # type: ignore
    if HttpError and isinstance(exc, HttpError):
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
    try:
        import http.client
        if isinstance(exc, http.client.HTTPException):
            return ApiError(0, f"{type(exc).__name__}: {exc}", api=api, raw=exc)
    except ImportError:  # pragma: no cover
        pass
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


def is_rate_limited(err: ApiError) -> bool:
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

def _permission(err: ApiError) -> str | None:
    md = err.error_info.get("metadata") or {}
    if md.get("permission"):
        return md["permission"]
    m = re.search(r"[Pp]ermission[s]? ['\"]?([a-z]+\.[a-zA-Z]+\.[a-zA-Z.]+)['\"]?", err.message) or \
        re.search(r"requires? (?:the )?['\"]?([a-z]+\.[a-zA-Z]+\.[a-zA-Z]+)['\"]? permission", err.message) or \
        re.search(r"\b([a-z]+\.[a-zA-Z]+\.[a-zA-Z]+)\b permission", err.message)
    return m.group(1) if m else None


def _quota(err: ApiError) -> tuple[str | None, str | None]:
    """(quota metric, region) named in a quota error."""
    m = re.search(r'resource "?([A-Z_]+)"?', err.message) or re.search(r"[Qq]uota '?([A-Z_]+)'? exceeded", err.message) \
        or re.search(r"quota metric '([^']+)'", err.message)
    r = re.search(r"region[: ]+'?([a-z]+-[a-z]+\d+)", err.message)
    md = err.error_info.get("metadata") or {}
    return (md.get("quota_metric") or md.get("quotaMetric") or (m.group(1) if m else None),
            md.get("region") or (r.group(1) if r else None))


def classify(err: ApiError, *, what: str = "", project: str = "", region: str = "") -> InstallerError:
    """An InstallerError (class, message, remedy) for an API error. ``what`` names the resource acted on."""
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
        return InstallerError(f"{prefix}the {title} is not enabled in project "
                              f"{project or md.get('consumer', '').replace('projects/', '')}".rstrip(),
                              error_class=ErrorClass.API_DISABLED,
                              remedy=f"Enable it at {url} (or `gcloud services enable {svc}`), or set "
                                     f"apis.enable: true so the installer enables it.", details=details)
    if err.http == 401:
        return InstallerError(f"{prefix}{msg}", error_class=ErrorClass.AUTH,
                              remedy="Sign in again (`gcloud auth application-default login`).", details=details)
    if is_rate_limited(err):
        return InstallerError(f"{prefix}{msg}", error_class=ErrorClass.TRANSIENT,
                              remedy="Google is rate-limiting requests; wait a minute and run the installer "
                                     "again (it resumes).", details=details)
    if (err.http == 403 and ("quota" in msg.lower() and "insufficient" in msg.lower())) or \
            "QUOTA_EXCEEDED" in err.reasons or "quotaExceeded" in err.reasons or \
            re.search(r"[Qq]uota '?[A-Z_]+'? exceeded", msg):
        metric, reg = _quota(err)
        reg = reg or region
        details.update(quota=metric, region=reg)
        return InstallerError(f"{prefix}{msg}", error_class=ErrorClass.QUOTA,
                              remedy=f"Request more {metric or 'quota'} quota"
                                     f"{' in ' + reg if reg else ''} (IAM & Admin > Quotas), or use fewer/smaller "
                                     f"nodes (cluster.node_count, cluster.machine_type) or a zone.",
                              details=details)
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
        perm = _permission(err)
        role = role_for(perm) if perm else "roles/owner"
        details.update(permission=perm, role=role)
        return InstallerError(f"{prefix}{msg}", error_class=ErrorClass.PERMISSION_DENIED,
                              remedy=f"Grant the caller {'permission ' + perm + ' (e.g. ' if perm else ''}"
                                     f"role {role}{')' if perm else ''} on project {project}: "
                                     f"`gcloud projects add-iam-policy-binding {project} --member=<you> "
                                     f"--role={role}`.", details=details)
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
