"""What a Kubernetes client needs to reach a GKE cluster: endpoint, CA (PEM) and a Google bearer token."""
from __future__ import annotations

import asyncio
import base64

from .auth import access_token
from .calls import call


async def cluster_access(project: str, location: str, name: str) -> dict:
    """{"endpoint": "https://<ip>", "ca_pem": str, "token": str} for cluster ``name`` in ``location``."""
    c = await call("container", lambda s: s.projects().locations().clusters().get(
        name=f"projects/{project}/locations/{location}/clusters/{name}"), what=f"cluster {name}", project=project)
    ca = (c.get("masterAuth") or {}).get("clusterCaCertificate", "")
    endpoint = c.get("endpoint", "")
    return {"endpoint": endpoint if endpoint.startswith("http") else f"https://{endpoint}",
            "ca_pem": base64.b64decode(ca).decode() if ca else "",
            "token": await asyncio.to_thread(access_token)}
