"""What a container on a sandbox GKE cluster needs from Google (and from the other KFP components) before it can
run: the Google identity GKE gives a pod, the permissions that identity holds, and the start-up needs of each
Kubeflow Pipelines 2.14.4 component. ``judge_for(server, cluster_key)`` is the judge the cluster's pod lifecycle
(``sandbox/kube/runtime.py``) asks when a container starts."""
from __future__ import annotations

from typing import Any

from ..kube.runtime import Judge, allow_all


def judge_for(server: Any, cluster_key: str) -> Judge:
    """The judge of the GKE cluster ``cluster_key`` ("project/location/name") of sandbox ``server``."""
    return allow_all
