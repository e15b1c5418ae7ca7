"""Helpers for the sandbox/kube tests: a KubeApiServer on its own event loop in a background thread, real
`kubernetes` clients pointed at it over TLS, and a kubeconfig for real kubectl."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
from kubernetes import client

from sandbox.kube.server import KubeApiServer

TOKEN = "ya29.kube-test-token"
FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "kfp-2.14.4"


def require_fixtures() -> Path:
    """The KFP fixtures; missing ones fail under CI=true and skip elsewhere."""
    if not (FIXTURES / "cluster-scoped.yaml").exists() or not (FIXTURES / "env-gcp.yaml").exists():
        msg = f"test fixtures missing: {FIXTURES}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return FIXTURES


def require_kubectl() -> str:
    path = shutil.which("kubectl")
    if not path:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("kubectl not found on PATH")
        pytest.skip("kubectl not found on PATH")
    return path


class KubeThread:
    """Runs one KubeApiServer in a thread with its own asyncio loop."""

    def __init__(self, state_dir: Path, speed: float = 0.01, name: str = "demo-kfp-cluster",
                 tokens: tuple[str, ...] = (TOKEN,), judge=None, node_pools: list[dict] | None = None):
        """``judge``, ``node_pools``: passed to the KubeApiServer (the pod runtime's judge, the GKE node pools)."""
        self.judge = judge
        self.node_pools = node_pools
        self.state_dir = Path(state_dir)
        self.speed = speed
        self.name = name
        self.tokens = set(tokens)
        self.log: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.srv: KubeApiServer | None = None
        self.port: int = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro, timeout: float = 20):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run_sync(self, fn: Callable, timeout: float = 20):
        async def wrapper():
            return fn()
        return self.call(wrapper(), timeout)

    def start(self, port: int = 0) -> int:
        self.srv = KubeApiServer(name=self.name, state_dir=self.state_dir, token_checker=lambda t: t in self.tokens,
                                 speed=self.speed, log=self.log.append, judge=self.judge,
                                 node_pools=self.node_pools)
        self.port = self.call(self.srv.start(port=port))
        return self.port

    def stop(self) -> None:
        if self.srv is not None:
            self.call(self.srv.stop())
            self.srv = None

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    # ---------------------------------------------------------------- clients
    @property
    def host(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def ca_file(self) -> Path:
        path = self.state_dir.parent / f"{self.state_dir.name}-ca.pem"
        path.write_text(self.srv.ca_pem)
        return path

    def api_client(self, token: str = TOKEN) -> client.ApiClient:
        cfg = client.Configuration()
        cfg.host = self.host
        cfg.ssl_ca_cert = str(self.ca_file())
        cfg.api_key = {"authorization": f"Bearer {token}"}
        return client.ApiClient(cfg)

    def kubeconfig(self, path: Path, token: str = TOKEN) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": self.name, "cluster": {
                "server": self.host,
                "certificate-authority-data": base64.b64encode(self.srv.ca_pem.encode()).decode()}}],
            "users": [{"name": "sandbox", "user": {"token": token}}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": "sandbox"}}],
            "current-context": self.name,
        }))
        return path

    def mutating(self) -> list[dict]:
        return [e for e in self.log if e["mutating"]]


def wait_until(pred: Callable[[], object], timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture
def kube(tmp_path):
    kt = KubeThread(tmp_path / "kube", speed=0.005)  # Deployments Available within 0.15-0.9 s
    kt.start()
    try:
        yield kt
    finally:
        kt.close()
