"""Credentials: ``google.auth.default()`` with the cloud-platform scope, shared by every thread.

``credentials()`` returns (creds, default project); ``access_token()`` returns a valid bearer token (refreshing
when it is missing or close to expiry), for Kubernetes bearer auth. Refreshes are serialised by a lock so threads
do not stampede the token endpoint. The cache is keyed by the environment (a new sandbox gets new credentials).
"""
from __future__ import annotations

import threading
from typing import Any

from installer.errors import ErrorClass, InstallerError

from .env import TARGET, creds_key, env_key

# userinfo.email too: without it a service account's token reaches GKE as the account's numeric id, which RBAC and IAM
# then deny (client-go's and kubernetes-client/python's gcp auth provider ask for both for that reason:
# kubernetes/base/config/kube_config.py _refresh_credentials; gcp-api-behaviour.md §10).
SCOPES = ["https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email"]

_lock = threading.RLock()
_cache: dict[tuple, tuple[Any, str | None]] = {}  # by creds_key(): the target project's
_base: dict[tuple, tuple[Any, str | None]] = {}  # by env_key(): what google.auth.default() gave


def set_target_project(project: str | None) -> None:
    """The project the installer works on. User credentials then carry it as their quota project: their own
    (``quota_project_id`` of the ADC file, sent as ``x-goog-user-project``) may be another project, where
    client-based APIs (Service Usage, Resource Manager) would be checked and billed instead
    (https://cloud.google.com/docs/quotas/quota-project; google-auth ``Credentials.with_quota_project``)."""
    with _lock:
        TARGET["project"] = project  # part of creds_key(): credentials and the clients built on them are rebuilt


def _is_user_credentials(creds: Any) -> bool:
    """gcloud's user ADC (``authorized_user``) and workforce users; not service accounts, impersonated or
    metadata-server credentials (their quota project is their own project: set-quota-project doc)."""
    mod = type(creds).__module__
    return (mod == "google.oauth2.credentials" and type(creds).__name__ == "Credentials") or \
        type(creds).__name__ == "Credentials" and mod.endswith("external_account_authorized_user")


def _default() -> tuple[Any, str | None]:
    """``google.auth.default()`` once per environment (``env_key``): a service-account key file is parsed there,
    and cryptography's RSA key load holds the GIL for 30-40 ms in one C call (measured: the worst event-loop stall
    of an install's first second, ``benchmarks/event_loop_stall.py``), so it must not run again when only the
    target project changes. Call with ``_lock`` held."""
    key = env_key()
    hit = _base.get(key)
    if hit is not None:
        return hit
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError
    try:
        creds, project = google.auth.default(scopes=SCOPES)
    except DefaultCredentialsError as exc:
        raise InstallerError(
            f"No Google credentials found: {exc}", error_class=ErrorClass.AUTH,
            remedy="Run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS "
                   "to a service-account key file), then run the installer again.") from exc
    if project == "no-project-id":
        project = None
    _base.clear()
    _base[key] = (creds, project)
    return creds, project


def credentials() -> tuple[Any, str | None]:
    """(credentials, project from ADC or None). Raises InstallerError(AUTH) when there are none."""
    key = creds_key()
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
        creds, project = _default()
        target = TARGET["project"]
        if target and _is_user_credentials(creds) and getattr(creds, "quota_project_id", None) != target:
            creds = creds.with_quota_project(target)  # a copy: no file read, no key parsed
        _cache.clear()
        _cache[key] = (creds, project)
        return creds, project


def ensure_valid() -> Any:
    """The shared credentials, refreshed if needed (call before a request; thread-safe)."""
    creds, _ = credentials()
    if creds.valid:
        return creds
    with _lock:
        if not creds.valid:
            import google.auth.transport.requests
            from google.auth.exceptions import RefreshError, TransportError
            try:
                creds.refresh(google.auth.transport.requests.Request())
                from installer.logs import redact
                redact.register(creds.token)  # masked from now on, with or without its "ya29." prefix
            except RefreshError as exc:
                raise InstallerError(
                    f"Google credentials could not be refreshed: {exc}", error_class=ErrorClass.AUTH,
                    remedy="Sign in again (`gcloud auth application-default login`) or check the key file.") from exc
            except TransportError as exc:
                raise InstallerError(f"Could not reach the token endpoint: {exc}",
                                     error_class=ErrorClass.TRANSIENT,
                                     remedy="Check the network connection and run again.") from exc
    return creds


def access_token() -> str:
    """A valid OAuth access token for the default credentials (blocking; refreshes as needed)."""
    return ensure_valid().token


def account() -> tuple[str | None, str | None]:
    """(email of the caller if known without a request, source kind)."""
    creds, _ = credentials()
    email = getattr(creds, "service_account_email", None)
    if email and "@" in str(email):
        return email, "adc-service-account"
    acct = getattr(creds, "account", None) or None
    return acct, "adc-user"


def loaded_identity() -> tuple[str | None, str | None]:
    """(the caller as an IAM member, the credentials' quota project) from credentials already loaded, else
    (None, None): never loads or refreshes anything (error messages use it)."""
    with _lock:
        hit = _cache.get(creds_key())
    if hit is None:
        return None, None
    creds = hit[0]
    email = getattr(creds, "service_account_email", None)
    if email and "@" in str(email):
        member = f"serviceAccount:{email}"
    else:
        acct = getattr(creds, "account", None)
        member = f"user:{acct}" if acct and "@" in str(acct) else None
    return member, getattr(creds, "quota_project_id", None)


def reset() -> None:
    """Forget the cached credentials (tests)."""
    with _lock:
        _cache.clear()
        _base.clear()
