"""Each GKE cluster's Kubernetes API server (``sandbox/kube/``) for the sandbox: prepared in a thread when the cluster
is created, listening once it runs (its endpoint and CA go into the cluster record), stopped, and forgotten when the
cluster is deleted. The Container API (``sandbox/apis/container.py``) drives it through ``SandboxServer.clusters``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from . import catalog, faults

log = logging.getLogger("sandbox")


class ClusterApis:
    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox  # the SandboxServer (sandbox/server.py)
        self.servers: dict[str, Any] = {}  # cluster key -> KubeApiServer
        self._prep: dict[str, asyncio.Task] = {}  # cluster key -> KubeApiServer being prepared (thread)

    def _build(self, key: str, name: str, location: str) -> Any:
        """A prepared (not yet listening) KubeApiServer for a cluster: certificates, objects, defaults. Blocking
        (imports, key generation, a few dozen file writes): runs in a thread, see prepare."""
        from .kube.server import KubeApiServer
        from .workloads import judge_for

        kdir = self._dir(key)
        kdir.mkdir(parents=True, exist_ok=True)
        region = location if location in catalog.REGIONS else catalog.zone_region(location)
        # its Nodes model the node pools (sandbox/kube/nodes.py)
        rec = self.sandbox.store.data["clusters"].get(key) or {}
        pools = [dict(p, locations=list(p.get("locations") or rec.get("locations") or [location]))
                 for p in rec.get("nodePools") or []] or None
        srv = KubeApiServer(name=name, state_dir=kdir, token_checker=self.sandbox.kube_user,
                            speed=self.sandbox.speed, log=self._request_log(name), region=region or "us-central1",
                            fault_source=self._fault_source(name), judge=judge_for(self.sandbox, key),
                            node_pools=pools, project=key.split("/", 1)[0],
                            workload_identity=bool(rec.get("workloadIdentityConfig")))
        srv.prepare()
        from .workloads.kfp_api import KfpApi
        srv.service_backends[("ml-pipeline", "8888")] = KfpApi(srv, kdir / "ml-pipeline-db.json").handle
        return srv

    def prepare(self, key: str, cluster: dict) -> "asyncio.Task":
        """Start preparing the cluster's Kubernetes API in a thread (at most once); the task gives the server.
        Called when a cluster is created, so it is ready long before the cluster is due to be RUNNING."""
        task = self._prep.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.ensure_future(asyncio.to_thread(self._build, key, cluster["name"],
                                                           cluster.get("location", "")))
            task.add_done_callback(self._prepared)
            self._prep[key] = task
        return task

    def _prepared(self, task: "asyncio.Task") -> None:
        if not task.cancelled() and task.exception() is not None:  # retrieved here; start re-raises it
            log.debug("preparing a Kubernetes API failed: %r", task.exception())
        self.sandbox.wake()  # a cluster waiting for it becomes RUNNING now

    async def start(self, key: str, cluster: dict, wait: bool = True) -> bool:
        """Make the cluster's Kubernetes API listen and put its endpoint and CA into the cluster record.
        The blocking preparation runs in a thread (prepare), never on the event loop. With ``wait=False``
        it returns False at once while that preparation is still running (the caller tries again later)."""
        if key in self.servers:
            return True
        try:
            task = self.prepare(key, cluster)
        except Exception as exc:  # noqa: BLE001
            log.warning("no Kubernetes API for cluster %s: %s", key, exc)
            return True
        if not task.done() and not wait:
            return False
        try:
            srv = await task
        except ImportError as exc:  # the other half may not exist yet
            self._prep.pop(key, None)
            log.warning("no Kubernetes API for cluster %s: sandbox.kube is not importable (%s)", key, exc)
            cluster["endpoint"] = cluster.get("endpoint") or "127.0.0.1"
            cluster.setdefault("masterAuth", {})["clusterCaCertificate"] = ""
            return True
        except BaseException:
            self._prep.pop(key, None)
            raise
        if key in self.servers:  # someone else started it while we waited
            return True
        self._prep.pop(key, None)
        old = cluster.get("_kube_port") or 0
        try:
            port = await srv.start(port=old)
        except OSError:
            port = await srv.start(port=0)
        self.servers[key] = srv
        import base64

        cluster["_kube_port"] = port
        cluster["endpoint"] = f"127.0.0.1:{port}"
        cluster.setdefault("masterAuth", {})["clusterCaCertificate"] = base64.b64encode(
            srv.ca_pem.encode()).decode()
        self.sandbox.store.touch()
        return True

    def _dir(self, key: str) -> Path:
        return self.sandbox.state_dir / "kube" / key.replace("/", "__")

    async def forget(self, key: str) -> None:
        """Remove a deleted cluster's Kubernetes state (objects, CA), off the loop."""
        import shutil

        self._prep.pop(key, None)
        await asyncio.to_thread(shutil.rmtree, self._dir(key), True)

    def _fault_source(self, cluster: str) -> Callable[[str, str], dict | None]:
        """Faults of the control API with target ``kube`` or this cluster's name, for its Kubernetes API."""
        def source(method: str, path: str) -> dict | None:
            if not self.sandbox.store.data["faults"]:
                return None
            return faults.match_fault(self.sandbox, method, path, cluster=cluster)

        return source

    async def stop(self, key: str) -> None:
        self._prep.pop(key, None)
        srv = self.servers.pop(key, None)
        if srv is not None:
            try:
                await srv.stop()
            except Exception:  # noqa: BLE001
                log.error("kube stop failed: %s", traceback.format_exc())

    def _request_log(self, cluster: str) -> Callable[[dict], None]:
        def _log(entry: dict) -> None:
            e = dict(entry)
            e.setdefault("api", "kubernetes")
            e["cluster"] = cluster
            e.setdefault("time", time.time())
            self.sandbox.append_log(e)

        return _log

    async def restart(self) -> None:
        """After a restart of the sandbox: the API of each cluster that runs (or is about to)."""
        for key, c in list(self.sandbox.store.data["clusters"].items()):
            if c.get("status") in ("RUNNING", "RECONCILING", "STOPPING"):
                await self.start(key, c)
            elif c.get("status") == "PROVISIONING":  # ready by the time it is due
                self.prepare(key, c)

    async def stop_all(self) -> None:
        for key in list(self.servers):
            await self.stop(key)


def import_kube() -> None:
    """Import the Kubernetes half (run in a thread at start-up, rather than when the first cluster is created)."""
    try:
        import sandbox.kube.server  # noqa: F401
    except Exception:  # noqa: BLE001  reported when a cluster needs it
        pass
