"""What the KFP steps share (``backends.kfp.steps``, ``backends.kfp.db_stages``): the cluster's client, the
rendered objects of this run, a Kubernetes error as the installer's, and the error of a wait for Deployments."""
from __future__ import annotations

import asyncio

from installer.errors import ErrorClass, InstallerError
from installer.steps import StepContext

from backends.infra.bucket import BucketOutputs
from backends.infra.sql import SqlOutputs

from backends.k8s.client import KubeClient, KubeError
from backends.k8s.diagnose import explain

from . import render as R

READY_TIMEOUT = 900.0  # seconds at speed 1 (KFP takes ~3-9 min)


async def kube_client(ctx: StepContext) -> KubeClient:
    from backends.k8s.cluster import connect
    return await connect(ctx)


def _values(ctx: StepContext) -> dict[str, str]:
    sql = SqlOutputs.of(ctx.outputs_of("sql-instance"))
    # KFP is applied while the SQL instance is still being made (issue 20): until the sql-instance step records the
    # name Cloud SQL reports, it is derived. Google: the instance connection name is PROJECT_ID:REGION:INSTANCE_ID
    # (https://cloud.google.com/sql/docs/mysql/connect-auth-proxy, "INSTANCE_CONNECTION_NAME"); only the Cloud SQL
    # proxy uses it, and it is held back until the instance and its user exist (DB_STAGES)
    conn = sql.connection_name or f"{ctx.answers.project}:{ctx.answers.region}:{ctx.names.sql_instance}"
    return R.params(ctx.answers, conn, BucketOutputs.of(ctx.outputs_of("bucket")).bucket)


async def rendered(ctx: StepContext, part: str) -> R.Rendered:
    """The rendered objects of ``part`` for this run (rendered once per run, kept in memory)."""
    values = _values(ctx) if part == "env" else None
    key = (part, ctx.answers.digest(), tuple(sorted((values or {}).items())))
    cache = ctx.runtime.setdefault("_kfp_rendered", {})
    if key not in cache:
        cache[key] = await asyncio.to_thread(R.render_part, ctx.answers, part, values)
    return cache[key]


def kube_error(exc: KubeError, what: str) -> InstallerError:
    return InstallerError(f"{what}: {exc.message}", error_class=exc.error_class, remedy=exc.remedy)


async def not_available(client: KubeClient, ns: str, lag: list[str], by: dict[str, dict],
                        total: int) -> InstallerError:
    """The error of a wait for Deployments that timed out: each laggard with what its pods say."""
    why = await asyncio.to_thread(explain, client, ns, [by[n] for n in lag if n in by])
    text = "; ".join(f"{n}: {why.get(n) or 'not found'}" for n in lag)
    return InstallerError(f"{len(lag)} of {total} Deployments in {ns} not Available after {READY_TIMEOUT:.0f}s: "
                          f"{text}", error_class=ErrorClass.TIMEOUT,
                          remedy=f"Fix what the pods above say (kubectl -n {ns} describe pod, kubectl -n {ns} logs "
                                 "--previous); the install resumes here when run again.", details={"laggards": why})
