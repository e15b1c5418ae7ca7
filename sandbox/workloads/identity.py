"""The Google identity GKE gives a container, as GKE resolves it.

Sources:
- Workload Identity Federation for GKE: https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity
  (a KSA without annotation is the principal
  ``principal://iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/PROJECT.svc.id.goog/subject/ns/NS/sa/KSA``;
  linking to an IAM service account: annotation ``iam.gke.io/gcp-service-account`` + ``roles/iam.workloadIdentityUser``
  for ``serviceAccount:PROJECT.svc.id.goog[NS/KSA]``; IAM Service Account Credentials API required).
- About the GKE metadata server: https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity#metadata_server
  (node pools with ``GKE_METADATA`` run it; ``GCE_METADATA`` exposes the node's Compute Engine metadata, i.e. the node
  service account with its access scopes).
- Use Workload Identity, restrictions: https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity#limitations
  ("Pods that run on the host network ... use the node's service account": hostNetwork pods bypass the GKE metadata server).
- Application Default Credentials: ``GOOGLE_APPLICATION_CREDENTIALS`` names a key file, tried before the metadata
  server (https://cloud.google.com/docs/authentication/application-default-credentials#search_order).
- The metadata server's refusal text for an IAM service account the KSA may not impersonate, as GKE's metadata server
  returns it (seen verbatim in Config Connector's troubleshooting page,
  https://cloud.google.com/config-connector/docs/troubleshooting#403_forbidden, and in kpt-config-sync's e2e
  expectations): ``Unable to generate access token; IAM returned 403 Forbidden: ...``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import podenv, roles

WI_DOC = "https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity"
CONCEPT_DOC = "https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity"
ADC_DOC = "https://cloud.google.com/docs/authentication/application-default-credentials#search_order"
WI_SUFFIX = ("This error could be caused by a missing IAM policy binding on the target IAM service account.\n"
             "For more information, refer to the Workload Identity documentation:\n"
             f"\t{WI_DOC}#authenticating_to\n\n")
ANNOTATION = "iam.gke.io/gcp-service-account"
POOL_LABEL = "cloud.google.com/gke-nodepool"
ZONE_LABEL = "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class Identity:
    """``kind``: node | workload | federated | key | none. ``member``: the IAM member that permissions are
    checked for; ``scopes``: access scopes limiting the token (None: not limited); ``error``: the metadata
    server's / token endpoint's refusal when no token can be had (then ``member`` holds nothing)."""
    kind: str
    member: str
    email: str | None = None
    scopes: tuple[str, ...] | None = None
    error: str = ""
    error_status: int = 0
    source: str = ""
    how: str = ""

    @property
    def usable(self) -> bool:
        return not self.error

    def can(self, data: dict, permission: str, *, project: str, bucket: str | None = None) -> bool:
        if self.error:
            return False
        return roles.has_permission(data, self.member, permission, project=project, bucket=bucket,
                                    scopes=self.scopes)


def service_usable(data: dict, project: str, service: str, now: float) -> bool:
    rec = data["services"].get(project, {}).get(service)
    return bool(rec and rec["state"] == "ENABLED" and (rec.get("usable_at") or 0) <= now)


def disabled_message(data: dict, project: str, service: str) -> str:
    """Google's SERVICE_DISABLED text (the sandbox's own wording for every API, sandbox/errors.py)."""
    from ..errors import service_disabled_error

    p = data["projects"].get(project) or {"projectNumber": project}
    return service_disabled_error(p, service).message


def node_pool(view: Any, cluster: dict, pod: dict) -> dict:
    """The node pool of the pod's node (label ``cloud.google.com/gke-nodepool``), else the cluster's first pool."""
    pools = cluster.get("nodePools") or []
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        node = view.get("Node", "", node_name)
        pname = ((node or {}).get("metadata") or {}).get("labels", {}).get(POOL_LABEL)
        for p in pools:
            if p.get("name") == pname:
                return p
    return pools[0] if pools else {"name": "default-pool", "config": cluster.get("nodeConfig") or {}}


def node_zone(view: Any, cluster: dict, pod: dict) -> str:
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        node = view.get("Node", "", node_name)
        zone = ((node or {}).get("metadata") or {}).get("labels", {}).get(ZONE_LABEL)
        if zone:
            return zone
    locs = cluster.get("locations") or [cluster.get("location") or "us-central1-a"]
    return locs[0]


def node_ip(view: Any, pod: dict) -> str:
    node_name = (pod.get("spec") or {}).get("nodeName")
    node = view.get("Node", "", node_name) if node_name else None
    for a in ((node or {}).get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return a.get("address", "")
    return "10.128.0.10"


def metadata_mode(pool: dict) -> str:
    return ((pool.get("config") or {}).get("workloadMetadataConfig") or {}).get("mode") or "GCE_METADATA"


def _node_identity(data: dict, cluster: dict, pool: dict, how: str) -> Identity:
    cfg = pool.get("config") or {}
    sa = cfg.get("serviceAccount") or "default"
    if sa == "default":
        num = (data["projects"].get(cluster.get("_project", "")) or {}).get("projectNumber", "")
        sa = f"{num}-compute@developer.gserviceaccount.com"
    scopes = tuple(cfg.get("oauthScopes") or ())
    return Identity("node", f"serviceAccount:{sa}", sa, scopes, source=f"{CONCEPT_DOC}#metadata_server",
                    how=how)


def _key_identity(data: dict, view: Any, pod: dict, container: dict, path: str) -> Identity | None:
    secret, text = podenv.mounted_secret_file(view, pod, container, path)
    if secret is None:
        return None  # not in a Secret volume: not modelled (the file may be baked into the image)
    try:
        info = json.loads(text or "")
        email, kid = info["client_email"], info.get("private_key_id", "")
    except (ValueError, KeyError, TypeError):
        return Identity("none", "", error=f"Secret {secret}: {path} is not a service account key file",
                        source=ADC_DOC, how="GOOGLE_APPLICATION_CREDENTIALS")
    key = data["keys"].get(kid)
    sa = data["service_accounts"].get(email)
    if sa is None:
        return Identity("none", "", email, error="invalid_grant: Invalid grant: account not found",
                        error_status=400, source=ADC_DOC, how=f"key file of {email} (account deleted)")
    if key is None or key.get("deleted") or key.get("sa") != email:
        return Identity("none", "", email, error="invalid_grant: Invalid JWT Signature.", error_status=400,
                        source=ADC_DOC, how=f"key file of {email} (key {kid} deleted)")
    return Identity("key", f"serviceAccount:{email}", email, None, source=ADC_DOC,
                    how=f"key file {path} (Secret {secret})")


def resolve(data: dict, cluster: dict, view: Any, pod: dict, container: dict, env: dict[str, str],
            now: float) -> Identity:
    """The identity the container's Google client libraries end up with (ADC order: key file, then metadata)."""
    gac = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if gac:
        ident = _key_identity(data, view, pod, container, gac)
        if ident is not None:
            return ident
    spec = pod.get("spec") or {}
    pool = node_pool(view, cluster, pod)
    if spec.get("hostNetwork"):
        return _node_identity(data, cluster, pool, "hostNetwork pod: the node's service account")
    mode = metadata_mode(pool)
    if mode != "GKE_METADATA":
        return _node_identity(data, cluster, pool, f"node pool {pool.get('name')} ({mode}): the node's service "
                                                   "account")
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    ksa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    wpool = (cluster.get("workloadIdentityConfig") or {}).get("workloadPool") or ""
    project = wpool.removesuffix(".svc.id.goog") or cluster.get("_project", "")
    num = (data["projects"].get(project) or {}).get("projectNumber", "")
    obj = view.get("ServiceAccount", ns, ksa) or {}
    gsa = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    if not gsa:
        principal = (f"principal://iam.googleapis.com/projects/{num}/locations/global/workloadIdentityPools/"
                     f"{wpool}/subject/ns/{ns}/sa/{ksa}")
        return Identity("federated", principal, None, None, source=CONCEPT_DOC,
                        how=f"KSA {ns}/{ksa} without {ANNOTATION}: the federated principal")
    member = f"serviceAccount:{wpool}[{ns}/{ksa}]"
    sa = data["service_accounts"].get(gsa)
    if sa is None:
        return Identity("none", "", gsa, error="Unable to generate access token; IAM returned 404 Not Found: Not "
                        f"found; Gaia id not found for email {gsa}\n", error_status=404,
                        source=f"{WI_DOC}#authenticating_to", how=f"KSA {ns}/{ksa} -> {gsa} (no such account)")
    if not roles.sa_policy_grants(data, gsa, member, "iam.serviceAccounts.getAccessToken"):
        return Identity("none", "", gsa, error="Unable to generate access token; IAM returned 403 Forbidden: "
                        "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).\n"
                        + WI_SUFFIX, error_status=403, source=f"{WI_DOC}#authenticating_to",
                        how=f"KSA {ns}/{ksa} -> {gsa} without roles/iam.workloadIdentityUser for {member}")
    if not service_usable(data, project, "iamcredentials.googleapis.com", now):
        return Identity("none", "", gsa, error="Unable to generate access token; IAM returned 403 Forbidden: "
                        + disabled_message(data, project, "iamcredentials.googleapis.com") + "\n" + WI_SUFFIX,
                        error_status=403, source=f"{WI_DOC}#before_you_begin",
                        how=f"KSA {ns}/{ksa} -> {gsa}; iamcredentials.googleapis.com not enabled in {project}")
    return Identity("workload", f"serviceAccount:{gsa}", gsa, None, source=f"{WI_DOC}#authenticating_to",
                    how=f"KSA {ns}/{ksa} -> {gsa} (Workload Identity)")


def template_pod(deployment: dict) -> dict:
    """A pod as a Deployment would make it (no node yet: the cluster's pool is used)."""
    tpl = (deployment.get("spec") or {}).get("template") or {}
    meta = dict(tpl.get("metadata") or {})
    meta.setdefault("namespace", (deployment.get("metadata") or {}).get("namespace", "default"))
    meta.setdefault("name", (deployment.get("metadata") or {}).get("name", "") + "-template")
    return {"metadata": meta, "spec": tpl.get("spec") or {}}

