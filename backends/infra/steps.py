"""The infrastructure steps by id: APIs, network, subnet, service accounts and their roles, GKE, Cloud SQL, bucket.

``STEPS = {step_id: StepClass}``; each class takes its ``StepSpec`` and lives in the module of its resource
(``apis``, ``network``, ``iam``, ``gke``, ``sql``, ``bucket``). Every step can ``inspect`` (read-only, no context:
preflight uses it too), ``look`` (inspect plus what the journal remembers, e.g. a running operation), ``apply``
(idempotent; remembers operation names before waiting so a resumed run waits on the same operation, ``common.
create_and_wait``), ``verify`` and ``destroy`` (only what carries our label/marker).

Ownership: resources with labels carry ``mlops-install-env=<prefix>``; networks, subnets and service accounts,
which take no labels, carry the marker in their description. A resource that exists and fits is ``ready``
(``adopted`` when not ours); one that is not ours and does not fit is a ``conflict`` with a remedy.
Secrets: the ``kfp`` database password goes only into ``ctx.runtime[backends.infra.sql.SQL_PASSWORD]``.
"""
from __future__ import annotations

import asyncio

from installer.answers import Answers

from .apis import ApisStep
from .bucket import BucketRolesStep, BucketStep
from .changes import Change
from .common import is_ours
from .gke import ClusterStep, cluster_changes, cluster_elsewhere, get_cluster
from .iam import GkeRolesStep, GkeSaStep, KfpRolesStep, KfpSaStep
from .network import NetworkStep, SubnetStep
from .sql import SqlInstanceStep, SqlUserStep, get_sql_instance, sql_changes


async def planned_changes(a: Answers) -> list[Change]:
    """Every setting of our existing cluster and SQL instance that differs from the answers (read-only: the
    preflight's "changes" check; the steps' ``look`` says the same per step)."""
    async def cluster() -> list[Change]:
        c = await get_cluster(a)
        if c is None:
            moved = await cluster_elsewhere(a)
            return [moved] if moved else []
        ours = is_ours(a, c.get("resourceLabels"))
        return cluster_changes(a, c) if ours and c.get("status") not in ("ERROR", "STOPPING") else []

    async def sql() -> list[Change]:
        i = await get_sql_instance(a)
        ours = i is not None and is_ours(a, (i.get("settings") or {}).get("userLabels"))
        return sql_changes(a, i) if ours and i.get("state") == "RUNNABLE" else []
    found = await asyncio.gather(cluster(), sql())
    return [ch for group in found for ch in group]


STEPS = {
    "apis": ApisStep,
    "network": NetworkStep,
    "subnet": SubnetStep,
    "gke-sa": GkeSaStep,
    "kfp-sa": KfpSaStep,
    "gke-sa-roles": GkeRolesStep,
    "kfp-sa-roles": KfpRolesStep,
    "cluster": ClusterStep,
    "sql-instance": SqlInstanceStep,
    "sql-user": SqlUserStep,
    "bucket": BucketStep,
    "bucket-roles": BucketRolesStep,
}
