"""The seam between a sandbox cluster's pod lifecycle (this package) and the rules that decide whether a
container can run (``sandbox/workloads``: Google identity, permissions, what each KFP component needs).

The kube side owns Pods: scheduling, Secret/ConfigMap references, volumes, restarts with back-off, logs. When a
container is due to start it asks the cluster's ``judge(view, pod, container)`` for a ``Verdict``. A standalone
``KubeApiServer`` (no Google behind it) uses ``allow_all``: every container starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol


@dataclass(frozen=True)
class Verdict:
    """What happens when a container starts.

    ``ok``: it runs (``ready`` False: runs but its readiness probe fails, e.g. waiting for a dependency).
    Not ``ok``: the process exits with ``exit_code`` after printing ``logs`` (the last lines ``kubectl logs``
    shows); kubelet restarts it with back-off (CrashLoopBackOff). ``reason`` is the terminated state's reason
    (``Error``, ``OOMKilled``, ``Completed``); ``message`` a one-line explanation for the request log (the
    sandbox's own words, never shown as the container's output); ``source`` the upstream file or Google page
    the rule comes from. ``completes``: an ``ok`` process that ends by itself with exit code 0 after printing
    ``logs`` (a run's task, in a pod with ``restartPolicy: Never``); kubelet does not restart it."""
    ok: bool
    logs: tuple[str, ...] = ()
    exit_code: int = 1
    reason: str = "Error"
    ready: bool = True
    message: str = ""
    rule: str = ""
    source: str = ""
    completes: bool = False


ALLOW = Verdict(True)


class ClusterView(Protocol):
    """Read-only view of one sandbox cluster's objects, for a judge (``pods.View`` implements it). The objects
    returned are the stored ones, not copies: read them, never modify them."""
    name: str  # the GKE cluster's name

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        """The object of ``kind`` (``ConfigMap``, ``Secret``, ``ServiceAccount``, ``Service``, ``Deployment``,
        ``Pod``, ...) or None."""

    def deployment_available(self, namespace: str, name: str) -> bool:
        """Is that Deployment's Available condition True (its pods serve)?"""

    # added with the pod lifecycle (sandbox/kube/pods.py); earlier names unchanged
    def list(self, kind: str, namespace: str | None = None) -> list[dict]:
        """Every object of ``kind`` (in ``namespace``, or in all namespaces / cluster-scoped when None), sorted by
        namespace and name."""

    def node(self, name: str) -> dict | None:
        """The Node ``name`` (a pod's ``spec.nodeName``): its labels carry the GKE node pool
        (``cloud.google.com/gke-nodepool``), zone, machine type and, on a GKE_METADATA pool,
        ``iam.gke.io/gke-metadata-server-enabled: "true"``."""

    def revision(self, kind: str) -> int:
        """The resourceVersion of the last change to any object of ``kind`` in this server's life (0: none yet):
        a cheap cache key, e.g. a judge may keep a verdict while the revisions of the kinds it read are the same."""


# The judge is called when a container is due to start (after the pod is scheduled, its volumes mount and its env
# references resolve), again at each restart after a crash (once the back-off has ended) and, for a running
# container it judged not ready, once per readiness probe period. ``pod`` and ``container`` are the stored objects.
Judge = Callable[[ClusterView, dict, dict], Verdict]


def allow_all(view: ClusterView, pod: dict, container: dict) -> Verdict:
    return ALLOW


@dataclass
class RuntimeLog:
    """Decisions the runtime made, for the request log (``sandbox requests --runtime``)."""
    entries: list[dict] = field(default_factory=list)
