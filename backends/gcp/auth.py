"""Credentials: ``google.auth.default()`` with the cloud-platform scope, shared by every thread.

``credentials()`` returns (creds, default project); ``access_token()`` returns a valid bearer token (refreshing
when it is missing or close to expiry), for Kubernetes bearer auth. Refreshes are serialised by a lock so threads
do not stampede the token endpoint. The cache is keyed by the environment (a new sandbox gets new credentials).
"""
from __future__ import annotations

import threading
from typing import Any

from installer.errors import ErrorClass, InstallerError

from .env import env_key

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]

_lock = threading.RLock()
_cache: dict[tuple, tuple[Any, str | None]] = {}


def credentials() -> tuple[Any, str | None]:
    """(credentials, project from ADC or None). Raises InstallerError(AUTH) when there are none."""
    key = env_key()
    with _lock:
        hit = _cache.get(key)
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


def reset() -> None:
    """Forget the cached credentials (tests)."""
    with _lock:
        _cache.clear()
