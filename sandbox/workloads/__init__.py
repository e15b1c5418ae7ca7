"""What a container on a sandbox GKE cluster needs from Google (and from the other KFP components) before it can
run: the Google identity GKE gives a pod (``identity.py``), the permissions that identity holds (``roles.py``), and
the start-up needs of each Kubeflow Pipelines 2.14.4 component (``kfp.py``). ``judge_for(server, cluster_key)`` is
the judge the cluster's pod lifecycle (``sandbox/kube/runtime.py``) asks when a container starts. See the section
"Workloads" of ``sandbox/README.md``."""
from __future__ import annotations

import logging
import time
from typing import Any

from ..kube.runtime import ALLOW, ClusterView, Judge, Verdict

log = logging.getLogger("sandbox.workloads")


def judge_for(server: Any, cluster_key: str) -> Judge:
    """The judge of the GKE cluster ``cluster_key`` ("project/location/name") of sandbox ``server``: reads the
    sandbox's Google state at each call (cheap, no I/O). Containers no rule knows start (``ALLOW``)."""
    def judge(view: ClusterView, pod: dict, container: dict) -> Verdict:
        from . import kfp

        data = server.store.data
        cluster = data["clusters"].get(cluster_key)
        if cluster is None:
            return ALLOW
        try:
            return kfp.judge(server, data, cluster, view, pod, container, time.time())
        except Exception as exc:  # noqa: BLE001  a bug in a rule must not stop the cluster: start, and say so
            log.exception("workload judge failed for %s/%s", (pod.get("metadata") or {}).get("name"),
                          container.get("name"))
            return Verdict(True, message=f"workload judge error (container allowed): {exc!r}", rule="judge-error")
    return judge
