"""Google access tokens for the Kubernetes API (GKE accepts the caller's OAuth access token as a bearer token).

``TokenSource.token()`` returns a token that is valid for at least ``min_ttl`` more seconds, refreshing it when
needed, so a KFP wait of many minutes never runs on an expired token. The kube client calls it through
``Configuration.refresh_api_key_hook`` before every request.
"""
from __future__ import annotations

import datetime as _dt
import threading
import time
from typing import Callable

# (token, expiry as epoch seconds or None when unknown)
Fetch = Callable[[], tuple[str, float | None]]


def _fetch_google() -> tuple[str, float | None]:
    """A token from the client layer (``backends.gcp.auth``: shared ADC credentials, refreshed near expiry)."""
    from backends.gcp.auth import ensure_valid

    creds = ensure_valid()
    exp = getattr(creds, "expiry", None)
    if exp is not None:
        if exp.tzinfo is None:
            exp = exp.replace(tzinfo=_dt.timezone.utc)
        return creds.token, exp.timestamp()
    return creds.token, None


class TokenSource:
    """Caches one token; refreshes it ``min_ttl`` seconds before expiry (or every ``max_age`` s when unknown)."""

    def __init__(self, fetch: Fetch | None = None, min_ttl: float = 120.0, max_age: float = 600.0) -> None:
        self._fetch = fetch or _fetch_google
        self._min_ttl = min_ttl
        self._max_age = max_age
        self._token: str | None = None
        self._expiry: float | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0

    def _fresh_enough(self) -> bool:
        if not self._token:
            return False
        now = time.time()
        if self._expiry is not None:
            return self._expiry - now > self._min_ttl
        return now - self._fetched_at < self._max_age

    def token(self) -> str:
        with self._lock:
            if not self._fresh_enough():
                self._token, self._expiry = self._fetch()
                self._fetched_at = time.time()
                self.refreshes += 1
            return self._token  # type: ignore[return-value]

    def invalidate(self) -> None:
        """Forget the token (e.g. after a 401) so the next call fetches a new one."""
        with self._lock:
            self._token = None
