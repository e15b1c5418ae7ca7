"""The plan: the steps of an install and their dependencies, as data.

The graph follows ``target-environment.md``: network -> subnet -> cluster;
service accounts -> role bindings -> cluster and secrets; SQL instance -> DB user;
cluster -> namespace -> mysql-secret; cluster, bucket, credentials and mysql-secret
-> KFP. The cluster and the SQL instance are the long poles and run at the same
time, and KFP rolls out while the SQL instance is being made (issue 20): the DB
password is generated in memory at the start of the run (``backends.infra.sql.
run_password``), so the Secret need not wait for the SQL user; ``kfp-deploy`` holds
the components that use MySQL (and their clients) at 0 replicas, and
``kfp-db-components`` releases them once the SQL user exists
(``backends.kfp.db_stages.DB_STAGES``). The longest chain is then apis -> sql-instance
-> sql-user -> kfp-db-components -> kfp-ready -> kfp-ui.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .answers import Answers, Names
from .manifests import UPSTREAM, shown

GROUPS = ("infrastructure", "secrets", "kfp")
# The steps that run before the preflight's deferred checks: the APIs step enables what those checks need.
GATE_STEPS = ("apis",)
GROUP_TITLES = {"infrastructure": "Infrastructure", "secrets": "Secrets", "kfp": "Kubeflow Pipelines"}


@dataclass(frozen=True)
class StepSpec:
    id: str
    group: str  # one of GROUPS
    title: str  # human text, e.g. "GKE cluster"
    kind: str  # resource kind, e.g. "container.cluster"
    resource: str  # the derived name (or a description)
    deps: tuple[str, ...] = ()
    expected_seconds: float = 1.0  # typical duration at speed 1 (gcp-api-behaviour.md §13)
    mutating: bool = True


@dataclass
class Plan:
    answers: Answers
    steps: list[StepSpec] = field(default_factory=list)
    # the steps that may run before the preflight's deferred checks (those that needed an API these steps enable);
    # every other step waits for those checks (``installer.engine.Engine(gate=...)``). Default: those of
    # ``GATE_STEPS`` in the plan (a sub-plan keeps the rule)
    gate: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self._by_id = {s.id: s for s in self.steps}
        if self.gate is None:
            self.gate = tuple(s for s in GATE_STEPS if s in self._by_id)

    def __getitem__(self, step_id: str) -> StepSpec:
        return self._by_id[step_id]

    def __iter__(self):
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.steps]

    def dependents(self, step_id: str) -> set[str]:
        """Every step that (transitively) depends on ``step_id``."""
        out: set[str] = set()
        frontier = [step_id]
        while frontier:
            cur = frontier.pop()
            for s in self.steps:
                if cur in s.deps and s.id not in out:
                    out.add(s.id)
                    frontier.append(s.id)
        return out

    def critical_path(self, durations: dict[str, float] | None = None) -> tuple[float, list[str]]:
        """Length of the longest dependency chain (seconds) and the chain itself."""
        durations = durations or {s.id: s.expected_seconds for s in self.steps}
        best: dict[str, tuple[float, list[str]]] = {}
        for s in self.topological():
            pre = max((best[d] for d in s.deps), default=(0.0, []), key=lambda t: t[0])
            best[s.id] = (pre[0] + durations.get(s.id, 0.0), pre[1] + [s.id])
        return max(best.values(), default=(0.0, []), key=lambda t: t[0])

    def topological(self) -> list[StepSpec]:
        seen: set[str] = set()
        order: list[StepSpec] = []

        def visit(s: StepSpec, stack: tuple[str, ...] = ()) -> None:
            if s.id in seen:
                return
            if s.id in stack:
                raise ValueError(f"dependency cycle: {' -> '.join(stack + (s.id,))}")
            for d in s.deps:
                visit(self._by_id[d], stack + (s.id,))
            seen.add(s.id)
            order.append(s)

        for s in self.steps:
            visit(s)
        return order


def build_plan(answers: Answers) -> Plan:
    n: Names = answers.names
    zonal = answers.zone is not None
    key_mode = answers.credentials == "key"
    # a local folder is named (the preflight's "manifests" check says how it differs from the release)
    source = "" if answers.kfp.manifests == UPSTREAM else f" from {shown(answers.kfp.manifests)}"
    added = answers.mode_apis_added
    apis = f"{len(answers.apis_needed)} APIs" + (f" (with {', '.join(added)} for {answers.credentials})"
                                                  if added else "")
    steps = [
        StepSpec("apis", "infrastructure", "Required APIs", "serviceusage.services", apis, (), 30 + 60),
        StepSpec("network", "infrastructure", "VPC network", "compute.network", n.network, ("apis",), 22),
        StepSpec("subnet", "infrastructure", "Subnet", "compute.subnetwork", n.subnet, ("network",), 20),
        StepSpec("gke-sa", "infrastructure", "GKE node service account", "iam.serviceAccount", n.gke_sa_email,
                 ("apis",), 30),
        StepSpec("kfp-sa", "infrastructure", "KFP service account", "iam.serviceAccount", n.kfp_sa_email,
                 ("apis",), 30),
        StepSpec("gke-sa-roles", "infrastructure", "GKE account roles", "crm.iamBindings",
                 f"{len(answers.service_accounts.gke_roles)} roles for {n.gke_sa}", ("gke-sa",), 2),
        StepSpec("kfp-sa-roles", "infrastructure", "KFP account roles", "crm.iamBindings",
                 f"{len(answers.service_accounts.kfp_roles)} roles for {n.kfp_sa}", ("kfp-sa",), 2),
        StepSpec("cluster", "infrastructure", "GKE cluster", "container.cluster", n.cluster,
                 ("subnet", "gke-sa-roles"), 240 if zonal else 540),
        StepSpec("sql-instance", "infrastructure", "Cloud SQL instance", "sql.instance", n.sql_instance,
                 ("apis",), 600),
        StepSpec("sql-user", "infrastructure", "Database user", "sql.user", f"{n.db_user}@{n.sql_instance}",
                 ("sql-instance",), 5),
        StepSpec("bucket", "infrastructure", "Artifact bucket", "storage.bucket", f"gs://{n.bucket}", ("apis",), 2),
        # KFP's API server checks the bucket exists (storage.buckets.get) through the GCS gateway, which runs as
        # the node account in key mode and as P-gke-sa through Workload Identity: a bucket-level role for it
        StepSpec("bucket-roles", "infrastructure", "Bucket role for the node account", "storage.bucketIam",
                 f"gs://{n.bucket} for {n.gke_sa}", ("bucket", "gke-sa"), 2),
        StepSpec("kfp-namespace", "secrets", "KFP namespace", "k8s.namespace", answers.kfp.namespace,
                 ("cluster",), 1),
        # the password is the run's (in memory from the start), set on the SQL user by sql-user: no wait for it
        StepSpec("mysql-secret", "secrets", "Database secret", "k8s.secret",
                 f"{answers.kfp.namespace}/mysql-secret", ("kfp-namespace",), 1),
    ]
    if key_mode:
        steps.append(StepSpec("kfp-sa-key", "secrets", "KFP service-account key", "k8s.secret",
                              f"{answers.kfp.namespace}/user-gcp-sa", ("kfp-namespace", "kfp-sa-roles"), 2))
        cred_step = "kfp-sa-key"
    else:
        steps.append(StepSpec("workload-identity", "secrets", "Workload Identity bindings", "iam.saBindings",
                              "7 Kubernetes service accounts", ("kfp-sa-roles", "gke-sa-roles", "cluster"), 3))
        cred_step = "workload-identity"
    steps += [
        StepSpec("kfp-cluster-scoped", "kfp", "KFP cluster-scoped objects", "k8s.manifests",
                 f"Kubeflow Pipelines {answers.kfp.version} CRDs{source}", ("cluster",), 10),
        StepSpec("kfp-deploy", "kfp", "KFP namespaced objects", "k8s.manifests",
                 f"Kubeflow Pipelines {answers.kfp.version} in {answers.kfp.namespace}{source}",
                 ("kfp-cluster-scoped", "bucket", "bucket-roles", "mysql-secret", cred_step), 20),
        # the components held back by kfp-deploy (0 replicas) until the database can serve them, in stages
        StepSpec("kfp-db-components", "kfp", "KFP database components", "k8s.scale",
                 "held back until the database is ready (Cloud SQL proxy, API server, metadata, cache)",
                 ("kfp-deploy", "sql-user"), 60),
        # the other components rolled out while the SQL instance was made: what is left is the last stage's start
        StepSpec("kfp-ready", "kfp", "KFP deployments available", "k8s.wait", "all Deployments Available",
                 ("kfp-db-components",), 30, mutating=False),
        # the inverse proxy agent is not held back: it has registered by then
        StepSpec("kfp-ui", "kfp", "KFP UI address", "k8s.wait", "inverse-proxy-config Hostname",
                 ("kfp-ready",), 5, mutating=False),
    ]
    if answers.verify:  # a first pipeline run through KFP's API proves the install (backends/kfp/verify.py)
        steps.append(StepSpec("kfp-verify", "kfp", "First pipeline run", "kfp.run",
                              "upload a 2-task pipeline, run it, wait for success", ("kfp-ui",), 60))
    return Plan(answers=answers, steps=steps)
