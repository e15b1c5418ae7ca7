"""pytest support: the ``sandbox`` fixture (a real sandbox process per test) and ``sandbox_session``.

    def test_x(sandbox):                      # env vars already set (monkeypatch)
        sandbox.enable("compute", "container")  # instantly enabled (set-up helper)
        ... real clients ...
        assert [r for r in sandbox.requests(mutating=True)] == []
        sandbox.fault(r"/v1/projects/.*/services$", 503, times=2)
        sandbox.scenario("org_policy_keys")
        sandbox.restart()                     # same state dir, same port

Speed: 0.01 unless the test is marked ``@pytest.mark.sandbox_speed(0.05)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from . import catalog
from .client import ControlClient
from .launcher import SandboxHandle, start_background

DEFAULT_TEST_SPEED = 0.01


class Sandbox:
    project = catalog.PROJECT_ID
    project_number = catalog.PROJECT_NUMBER
    caller_email = catalog.CALLER_EMAIL

    def __init__(self, state_dir: Path, speed: float, monkeypatch: pytest.MonkeyPatch | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.speed = speed
        self._mp = monkeypatch
        self.handle: SandboxHandle = start_background(self.state_dir, speed, exit_with_parent=True)
        self._bind()

    def _bind(self) -> None:
        self.url = self.handle.url
        self.port = self.handle.port
        self.env: dict[str, str] = dict(self.handle.env)
        self.control = ControlClient(self.url)
        if self._mp is not None:
            self.apply_env(self._mp)

    @property
    def key_file(self) -> Path:
        return self.state_dir / "caller-key.json"

    @property
    def pid(self) -> int:
        return self.handle.pid

    def apply_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for k, v in self.env.items():
            monkeypatch.setenv(k, v)
        for k in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUDSDK_CORE_ACCOUNT"):
            monkeypatch.delenv(k, raising=False)

    # control API
    def requests(self, api: str | None = None, mutating: bool | None = None, since: float | None = None) -> list:
        """Request log entries: {method, path, query, status, time, mutating, api, duration}."""
        return self.control.requests(api=api, mutating=mutating, since=since)

    def clear_requests(self) -> int:
        return self.control.clear_requests()

    def fault(self, path: str | None = None, status: int | None = None, **kw: Any) -> dict:
        """``fault(r"regex", 503, method="GET", times=1, delay=None, body=None, message=None, reason=None)``;
        ``fault(r".*", 503, rate=0.05, seed=1)``: each matching request fails with probability 0.05 (``times``
        then defaults to every one; the token endpoints are skipped unless the regex names ``token``);
        ``fault(r"/secrets/x$", 500, method="PATCH", target="kube")``: on the clusters' Kubernetes APIs
        (``target=`` a cluster name for one); ``fault(op="container.create", message=..., times=1)`` makes the
        next such operation end in error."""
        return self.control.fault(path, status, **kw)

    def clear_faults(self) -> None:
        self.control.clear_faults()

    def scenario(self, name: str, **params: Any) -> dict:
        """api_disabled(service=), api_enabled(services=[...]|all=True), missing_permission(permission=),
        grant_permission(permission=), org_policy_keys(enforced=True), cpu_quota(region=, limit=),
        bucket_taken(bucket=), key_limit_legacy(enabled=True), sql_name_reuse(seconds=),
        profile(**{"latency.key": seconds_at_speed_1}), reset (scenarios, faults, profile)."""
        return self.control.scenario(name, **params)

    def profile(self, **seconds: float) -> dict:
        """Override latencies (seconds at speed 1, keys of sandbox.catalog.PROFILE), e.g.
        ``sandbox.profile(**{"iam.sa_visible": 120})`` for a window a loaded machine can still observe."""
        return self.control.scenario("profile", **seconds)

    def enable(self, *services: str) -> None:
        """Enable APIs at once (no operation, no propagation delay); no args: every API the sandbox knows."""
        if services:
            self.control.scenario("api_enabled", services=list(services))
        else:
            self.control.scenario("api_enabled", all=True)

    def state(self) -> dict:
        return self.control.state()

    # process
    def stop(self) -> None:
        self.handle.stop()

    def kill(self) -> None:
        self.handle.kill()

    def start(self) -> None:
        self.handle = start_background(self.state_dir, self.speed, port=self.port, exit_with_parent=True)
        self._bind()

    def restart(self, hard: bool = False) -> None:
        """Stop (SIGTERM, or SIGKILL with ``hard=True``) and start again on the same state and port."""
        self.kill() if hard else self.stop()
        self.start()


def _speed(request: pytest.FixtureRequest) -> float:
    m = request.node.get_closest_marker("sandbox_speed")
    return float(m.args[0]) if m else DEFAULT_TEST_SPEED


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    sb = Sandbox(tmp_path / "sandbox-state", _speed(request), monkeypatch)
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture(scope="session")
def sandbox_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One sandbox for the whole session. It does not set env vars: call ``sandbox_session.apply_env(monkeypatch)``.
    Tests sharing it must not depend on a clean state."""
    sb = Sandbox(tmp_path_factory.mktemp("sandbox-session"), DEFAULT_TEST_SPEED, None)
    try:
        yield sb
    finally:
        sb.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sandbox_speed(x): run this test's sandbox at speed x (default 0.01)")
