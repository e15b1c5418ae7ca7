"""IAM roles -> permissions (the roles that matter to a KFP install), OAuth access scopes, and the effective
permissions of a Google identity on the project or on a bucket.

Only the permissions the workload rules ask about are listed per role; a role's full list is on its page. Basic
roles (owner/editor/viewer) are written as patterns. Effective permissions on a bucket are the union of the project
policy and the bucket policy (IAM inheritance: https://cloud.google.com/iam/docs/resource-hierarchy-access-control),
then limited by the access scopes of a node token (Compute Engine: "access scopes ... the IAM roles and the scopes
both must allow", https://cloud.google.com/compute/docs/access/service-accounts#accesscopesiam).
"""
from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Iterable

IAM_PAGE = "https://cloud.google.com/iam/docs/roles-permissions/"

# role -> (permission patterns, page). Storage rows: the Cloud Storage roles page (storage.objectAdmin is
# storage.objects.* and has no storage.buckets.get; storage.admin is storage.buckets.* + storage.objects.*).
_STORAGE = IAM_PAGE + "storage"
_SQL = IAM_PAGE + "cloudsql"
ROLES: dict[str, tuple[tuple[str, ...], str]] = {
    "roles/storage.admin": (("storage.buckets.*", "storage.objects.*", "storage.multipartUploads.*",
                             "storage.managedFolders.*", "storage.folders.*"), _STORAGE),
    "roles/storage.objectAdmin": (("storage.objects.*", "storage.multipartUploads.*", "storage.managedFolders.*",
                                   "storage.folders.*"), _STORAGE),
    "roles/storage.objectUser": (("storage.objects.*", "storage.multipartUploads.*", "storage.managedFolders.get",
                                  "storage.managedFolders.list", "storage.folders.*"), _STORAGE),
    "roles/storage.objectViewer": (("storage.objects.get", "storage.objects.list", "storage.folders.get",
                                    "storage.folders.list", "storage.managedFolders.get",
                                    "storage.managedFolders.list"), _STORAGE),
    "roles/storage.objectCreator": (("storage.objects.create", "storage.multipartUploads.create",
                                     "storage.multipartUploads.abort", "storage.multipartUploads.listParts",
                                     "storage.folders.create", "storage.managedFolders.create"), _STORAGE),
    "roles/storage.legacyBucketReader": (("storage.buckets.get", "storage.objects.list"), _STORAGE),
    "roles/storage.legacyBucketWriter": (("storage.buckets.get", "storage.objects.list", "storage.objects.create",
                                          "storage.objects.delete"), _STORAGE),
    "roles/storage.legacyBucketOwner": (("storage.buckets.get", "storage.buckets.update",
                                         "storage.buckets.getIamPolicy", "storage.buckets.setIamPolicy",
                                         "storage.objects.list", "storage.objects.create",
                                         "storage.objects.delete"), _STORAGE),
    "roles/storage.legacyObjectReader": (("storage.objects.get",), _STORAGE),
    "roles/cloudsql.client": (("cloudsql.instances.connect", "cloudsql.instances.get"), _SQL),
    "roles/cloudsql.instanceUser": (("cloudsql.instances.login", "cloudsql.instances.get"), _SQL),
    "roles/cloudsql.viewer": (("cloudsql.instances.get", "cloudsql.instances.list", "cloudsql.databases.get",
                               "cloudsql.databases.list", "cloudsql.users.list"), _SQL),
    "roles/cloudsql.editor": (("cloudsql.instances.connect", "cloudsql.instances.get", "cloudsql.instances.list",
                               "cloudsql.instances.update", "cloudsql.instances.restart", "cloudsql.databases.*",
                               "cloudsql.users.list", "cloudsql.backupRuns.*"), _SQL),
    "roles/cloudsql.admin": (("cloudsql.*",), _SQL),
    "roles/logging.logWriter": (("logging.logEntries.create", "logging.logEntries.route"), IAM_PAGE + "logging"),
    "roles/monitoring.metricWriter": (("monitoring.metricDescriptors.create", "monitoring.metricDescriptors.get",
                                       "monitoring.metricDescriptors.list", "monitoring.monitoredResourceDescriptors.*",
                                       "monitoring.timeSeries.create"), IAM_PAGE + "monitoring"),
    "roles/monitoring.viewer": (("monitoring.*.get", "monitoring.*.list", "monitoring.timeSeries.list"),
                                IAM_PAGE + "monitoring"),
    "roles/stackdriver.resourceMetadata.writer": (("stackdriver.resourceMetadata.write",),
                                                  IAM_PAGE + "stackdriver"),
    "roles/iam.workloadIdentityUser": (("iam.serviceAccounts.getAccessToken", "iam.serviceAccounts.getOpenIdToken",
                                        "iam.serviceAccounts.get", "iam.serviceAccounts.list"), IAM_PAGE + "iam"),
    "roles/iam.serviceAccountTokenCreator": (("iam.serviceAccounts.getAccessToken", "iam.serviceAccounts.getOpenIdToken",
                                              "iam.serviceAccounts.signBlob", "iam.serviceAccounts.signJwt",
                                              "iam.serviceAccounts.implicitDelegation"), IAM_PAGE + "iam"),
    "roles/iam.serviceAccountUser": (("iam.serviceAccounts.actAs", "iam.serviceAccounts.get",
                                      "iam.serviceAccounts.list"), IAM_PAGE + "iam"),
    # Basic roles (https://cloud.google.com/iam/docs/roles-overview#basic): all but IAM-policy changes for Editor;
    # neither holds iam.serviceAccounts.getAccessToken (that is Service Account Token Creator's).
    "roles/owner": (("*",), "https://cloud.google.com/iam/docs/roles-overview#basic"),
    "roles/editor": (("*",), "https://cloud.google.com/iam/docs/roles-overview#basic"),
    "roles/viewer": (("*.get", "*.list"), "https://cloud.google.com/iam/docs/roles-overview#basic"),
}
_NOT_IN_BASIC = ("iam.serviceAccounts.getAccessToken", "iam.serviceAccounts.getOpenIdToken",
                 "iam.serviceAccounts.signBlob", "iam.serviceAccounts.signJwt",
                 "iam.serviceAccounts.implicitDelegation")
_NOT_IN_EDITOR = ("*.setIamPolicy",)

# The convenience members Cloud Storage puts on a new bucket's policy (projectOwner:P, ...) match whoever holds
# that basic role on the bucket's project (https://cloud.google.com/storage/docs/access-control/iam#convenience-values).
_CONVENIENCE = {"roles/owner": "projectOwner", "roles/editor": "projectEditor", "roles/viewer": "projectViewer"}

# OAuth scope -> permission patterns it lets through
# (https://cloud.google.com/compute/docs/access/service-accounts#accesscopesiam; scope list:
# https://developers.google.com/identity/protocols/oauth2/scopes). cloud-platform lets everything through.
SCOPES: dict[str, tuple[str, ...]] = {
    "https://www.googleapis.com/auth/cloud-platform": ("*",),
    "https://www.googleapis.com/auth/devstorage.read_only": ("storage.buckets.get", "storage.buckets.list",
                                                             "storage.objects.get", "storage.objects.list"),
    "https://www.googleapis.com/auth/devstorage.read_write": ("storage.buckets.get", "storage.buckets.list",
                                                              "storage.buckets.create", "storage.objects.*",
                                                              "storage.multipartUploads.*"),
    "https://www.googleapis.com/auth/devstorage.full_control": ("storage.*",),
    "https://www.googleapis.com/auth/sqlservice.admin": ("cloudsql.*",),
    "https://www.googleapis.com/auth/cloudsql": ("cloudsql.*",),
    "https://www.googleapis.com/auth/logging.write": ("logging.logEntries.create",),
    "https://www.googleapis.com/auth/monitoring": ("monitoring.*",),
    "https://www.googleapis.com/auth/monitoring.write": ("monitoring.timeSeries.create",
                                                         "monitoring.metricDescriptors.*"),
}


def role_grants(role: str, permission: str) -> bool:
    """Does ``role`` include ``permission``? Unknown roles grant nothing (custom roles are not modelled)."""
    row = ROLES.get(role)
    if row is None:
        return False
    if role in ("roles/owner", "roles/editor", "roles/viewer") and permission in _NOT_IN_BASIC:
        return False
    if role == "roles/editor" and any(fnmatchcase(permission, p) for p in _NOT_IN_EDITOR):
        return False
    return any(fnmatchcase(permission, p) for p in row[0])


def scope_allows(scopes: Iterable[str] | None, permission: str) -> bool:
    """Do the token's access scopes let ``permission`` through? ``None``: no scope limit (key files, Workload
    Identity tokens carry cloud-platform)."""
    if scopes is None:
        return True
    for s in scopes:
        if any(fnmatchcase(permission, p) for p in SCOPES.get(s, ())):
            return True
    return False


def _roles_of(policy: dict | None, members: set[str]) -> set[str]:
    out: set[str] = set()
    for b in (policy or {}).get("bindings") or []:
        if b.get("condition"):  # IAM conditions are not evaluated; a conditional grant is not counted
            continue
        if members & set(b.get("members") or []):
            out.add(b["role"])
    return out


def project_roles(data: dict, project: str, member: str) -> set[str]:
    return _roles_of(data["iam_policies"].get(project), {member})


def has_permission(data: dict, member: str, permission: str, *, project: str,
                   bucket: str | None = None, scopes: Iterable[str] | None = None) -> bool:
    """Effective permission of IAM ``member`` (``serviceAccount:...`` or a ``principal://`` federated subject):
    the project policy of ``project`` (for a bucket: the bucket's own project) united with the bucket's policy,
    then limited by ``scopes``."""
    if not scope_allows(scopes, permission):
        return False
    roles = set()
    if bucket is not None:
        b = data["buckets"].get(bucket)
        if b is None:
            return False
        bproject = b["_project"]
        proles = project_roles(data, bproject, member)
        members = {member} | {f"{_CONVENIENCE[r]}:{bproject}" for r in proles if r in _CONVENIENCE}
        roles |= proles | _roles_of(bucket_policy(data, bucket), members)
    else:
        roles |= project_roles(data, project, member)
    return any(role_grants(r, permission) for r in roles)


def bucket_policy(data: dict, bucket: str) -> dict:
    """The bucket's IAM policy as the Storage API shows it (the default one until set; see apis/storage.py)."""
    pol = data["bucket_iam"].get(bucket)
    if pol is not None:
        return pol
    b = data["buckets"][bucket]
    p = b["_project"]
    return {"bindings": [
        {"role": "roles/storage.legacyBucketOwner", "members": [f"projectEditor:{p}", f"projectOwner:{p}"]},
        {"role": "roles/storage.legacyBucketReader", "members": [f"projectViewer:{p}"]}]}


def sa_policy_grants(data: dict, sa_email: str, member: str, permission: str) -> bool:
    """Does ``member`` hold ``permission`` on service account ``sa_email`` (its own policy, kept in
    ``service_accounts[email]["policy"]`` by apis/iam.py, or the SA's project policy)?"""
    sa = data["service_accounts"].get(sa_email)
    if sa is None:
        return False
    roles = _roles_of(sa.get("policy"), {member}) | project_roles(data, sa["projectId"], member)
    return any(role_grants(r, permission) for r in roles)
