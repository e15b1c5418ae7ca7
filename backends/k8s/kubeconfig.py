"""``--write-kubeconfig``: add the cluster to the user's kubeconfig as ``gcloud container clusters get-credentials``
does: cluster/user/context named ``gke_PROJECT_LOCATION_NAME``, the user authenticating through the exec plugin
``gke-gcloud-auth-plugin``, and the new context made current. ``KUBECONFIG`` is honoured (its first entry, as
kubectl writes); other entries of the file are kept. Written atomically, mode 0600. No token is written.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def kubeconfig_path() -> Path:
    env = os.environ.get("KUBECONFIG")
    if env:
        first = [p for p in env.split(os.pathsep) if p]
        if first:
            return Path(first[0]).expanduser()
    return Path.home() / ".kube" / "config"


def context_name(project: str, location: str, cluster: str) -> str:
    return f"gke_{project}_{location}_{cluster}"


def _upsert(items: list[dict], name: str, key: str, value: dict) -> list[dict]:
    items = [i for i in items or [] if i.get("name") != name]
    items.append({"name": name, key: value})
    return items


def write_kubeconfig(project: str, location: str, cluster: str, endpoint: str, ca_b64: str,
                     path: Path | None = None, make_current: bool = True) -> tuple[Path, str]:
    """Add (or update) the context; returns (file, context name)."""
    from installer.files import private_dir, read_regular, write_file

    path = path or kubeconfig_path()
    name = context_name(project, location, cluster)
    doc: dict[str, Any] = {}
    if path.exists():  # a symlinked kubeconfig is read through its link, and its target is written (as kubectl)
        doc = yaml.safe_load(read_regular(path, limit=16 << 20, own=True, what="kubeconfig")) or {}
    doc.setdefault("apiVersion", "v1")
    doc.setdefault("kind", "Config")
    doc.setdefault("preferences", {})
    server = endpoint if endpoint.startswith("https://") else f"https://{endpoint}"
    doc["clusters"] = _upsert(doc.get("clusters"), name, "cluster",
                              {"certificate-authority-data": ca_b64, "server": server})
    doc["users"] = _upsert(doc.get("users"), name, "user", {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "gke-gcloud-auth-plugin",
        "installHint": "Install gke-gcloud-auth-plugin for use with kubectl by following "
                       "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin",
        "provideClusterInfo": True,
        "interactiveMode": "IfAvailable",
    }})
    doc["contexts"] = _upsert(doc.get("contexts"), name, "context", {"cluster": name, "user": name})
    if make_current or not doc.get("current-context"):
        doc["current-context"] = name
    if not path.parent.exists():
        private_dir(path.parent, what="kubeconfig folder")  # ~/.kube made 0700 whatever the umask
    # Written as a whole without following a link at the name, except the kubeconfig's own link (kubectl writes a
    # symlinked kubeconfig's target: client-go tools/clientcmd/loader.go WriteToFile uses os.WriteFile, which
    # follows it); mode 0600, an existing file keeps its own owner bits.
    write_file(path, yaml.safe_dump(doc, sort_keys=False).encode(), mode=0o600, follow_link=True, keep_mode=True)
    return path, name
