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
    the rule comes from."""
    ok: bool
    logs: tuple[str, ...] = ()
    exit_code: int = 1
    reason: str = "Error"
    ready: bool = True
    message: str = ""
    rule: str = ""
    source: str = ""


ALLOW = Verdict(True)


class ClusterView(Protocol):
    """Read-only view of one sandbox cluster's objects, for a judge."""
    name: str  # the GKE cluster's name

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        """The object of ``kind`` (``ConfigMap``, ``Secret``, ``ServiceAccount``, ``Service``, ``Deployment``,
        ``Pod``, ...) or None."""

    def deployment_available(self, namespace: str, name: str) -> bool:
        """Is that Deployment's Available condition True (its pods serve)?"""


Judge = Callable[[ClusterView, dict, dict], Verdict]


def allow_all(view: ClusterView, pod: dict, container: dict) -> Verdict:
    return ALLOW


@dataclass
class RuntimeLog:
    """Decisions the runtime made, for the request log (``sandbox requests --runtime``)."""
    entries: list[dict] = field(default_factory=list)
