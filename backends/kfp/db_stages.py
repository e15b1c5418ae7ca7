"""``kfp-db-components``: the KFP components that wait for the database, held back by ``kfp-deploy`` (0 replicas)
and released stage by stage (``DB_STAGES``) once the SQL user exists."""
from __future__ import annotations

import asyncio
import time
from typing import Any

from installer.steps import BaseStep, Observation, StepContext

from backends.k8s.apply import deployment_available
from backends.k8s.client import KubeClient, KubeError, time_scale

from .common import READY_TIMEOUT, kube_client, kube_error, not_available, rendered


# The KFP 2.14.4 components (env/gcp Deployments) that cannot run before the database serves them, and those that
# cannot run before these. Each waits only a bounded time for what it needs and then exits (so it crash-loops while
# the SQL instance, ~10 min, is being made); checked at kubeflow/pipelines@2.14.4 (docs/google-fidelity.md, "KFP
# held back until the database"):
# - cloudsqlproxy: gce-proxy 1.25 exits when the instance does not exist and is not ready until it is RUNNABLE
#   (GoogleCloudPlatform/cloud-sql-proxy@v1.25.0 cmd/cloud_sql_proxy/cloud_sql_proxy.go, CreateInstanceConfigs);
# - ml-pipeline: backend/src/apiserver/client_manager/client_manager.go InitDBClient retries for
#   InitConnectionTimeout (6m, backend/src/apiserver/config/config.json), then terminates; it also checks the
#   object store through the MinIO gateway (initMinioClient);
# - cache-server: backend/src/cache/client_manager.go initMysql (exponential back-off, then util.TerminateIfError);
# - metadata-grpc-deployment: google/ml-metadata metadata_store_server_main.cc CHECKs CreateMetadataStore (MySQL);
# - ml-pipeline-persistenceagent: backend/src/agent/persistence/main.go (initializeTimeout 2m for the API server,
#   then log.Fatalf);
# - ml-pipeline-scheduledworkflow: backend/src/crd/controller/scheduledworkflow/main.go (GetRpcConnectionWithTimeout,
#   one minute, then log.Fatalf);
# - metadata-writer: backend/metadata_writer/src/metadata_helpers.py connect_to_mlmd (100 tries 1 s apart, then
#   RuntimeError).
# kfp-deploy applies them with 0 replicas; kfp-db-components, once the SQL user exists, releases them stage by
# stage: wait until the first Deployments are Available, then start the second (their rendered replicas).
DB_STAGES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    ((), ("cloudsqlproxy",)),
    (("cloudsqlproxy", "minio"), ("ml-pipeline", "metadata-grpc-deployment", "cache-server")),
    (("ml-pipeline", "metadata-grpc-deployment"),
     ("ml-pipeline-persistenceagent", "ml-pipeline-scheduledworkflow", "metadata-writer")),
)
HELD = tuple(n for _, release in DB_STAGES for n in release)
DB_STEP = "kfp-db-components"


def is_held(obj: dict) -> bool:
    return obj.get("kind") == "Deployment" and obj["metadata"]["name"] in HELD


def with_replicas(obj: dict, replicas: int) -> dict:
    out = {**obj, "spec": {**(obj.get("spec") or {}), "replicas": replicas}}
    return out


def wanted_replicas(obj: dict) -> int:
    # spec.replicas defaults to 1 (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#replicas)
    return int((obj.get("spec") or {}).get("replicas", 1))


class KfpDbComponents(BaseStep):
    """Release the components ``kfp-deploy`` held back, stage by stage (``DB_STAGES``), once the SQL user exists."""

    async def _state(self, ctx: StepContext, client: KubeClient) -> tuple[dict[str, dict], dict[str, dict]]:
        r = await rendered(ctx, "env")
        want = {o["metadata"]["name"]: o for o in r.objects if is_held(o)}
        items = await asyncio.to_thread(client.list, "apps/v1", "Deployment", ctx.answers.kfp.namespace)
        return want, {d["metadata"]["name"]: d for d in items}

    @staticmethod
    def _waiting(want: dict[str, dict], live: dict[str, dict]) -> list[str]:
        return [n for n, o in want.items() if n not in live
                or int((live[n].get("spec") or {}).get("replicas", 1)) < wanted_replicas(o)]

    async def look(self, ctx: StepContext) -> Observation:
        client = await kube_client(ctx)
        want, live = await self._state(ctx, client)
        waiting = self._waiting(want, live)
        if not waiting:
            return Observation("ready", outputs={"released": sorted(want)})
        return Observation("absent", f"{len(waiting)} components wait for the database: {', '.join(waiting)}")

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        client = await kube_client(ctx)
        want, live = await self._state(ctx, client)
        for i, (needs, release) in enumerate(DB_STAGES, 1):
            needs = [n for n in needs if n in want or n in live]
            todo = [n for n in release if n in self._waiting(want, live)]
            if not todo:
                continue
            if needs:
                ctx.waiting(f"{', '.join(needs)} to become Available before starting {', '.join(todo)}",
                            since=time.time(), expected_seconds=20)
                await self._wait(ctx, client, needs, f"stage {i}/{len(DB_STAGES)}")
            try:
                for name in todo:
                    await asyncio.to_thread(client.apply, with_replicas(want[name], wanted_replicas(want[name])))
            except KubeError as exc:
                raise kube_error(exc, f"starting {', '.join(todo)}") from exc
            ctx.progress(f"stage {i}/{len(DB_STAGES)}: started {', '.join(todo)}", i / len(DB_STAGES))
            want, live = await self._state(ctx, client)
        return {"released": sorted(want)}

    async def _wait(self, ctx: StepContext, client: KubeClient, names: list[str], stage: str) -> None:
        ns = ctx.answers.kfp.namespace
        deadline = time.monotonic() + max(READY_TIMEOUT * time_scale(), 2.0)
        last = None
        while True:
            by = {d["metadata"]["name"]: d
                  for d in await asyncio.to_thread(client.list, "apps/v1", "Deployment", ns)}
            lag = [n for n in names if n not in by or not deployment_available(by[n])]
            if lag != last:
                last = lag
                ctx.progress(f"{stage}: {len(names) - len(lag)}/{len(names)} Available"
                             + (f"; waiting for {', '.join(lag)}" if lag else ""))
            if not lag:
                return
            if time.monotonic() > deadline:
                raise await not_available(client, ns, lag, by, len(names))
            await asyncio.sleep(max(1.0 * time_scale(), 0.01))  # Kubernetes reads are cheap: a short notice lag

