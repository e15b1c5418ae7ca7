"""The Google calls the secrets steps make, through the client layer (``backends.gcp``: retries, error classes).

IAM: user-managed keys of a service account (list / create / delete) and a service account's own IAM policy
(Workload Identity bindings). SQL Admin: reset the DB user's password (``users.update``) on a resume that no longer
has it in memory is done by ``backends.infra.sql.set_sql_password``.
"""
from __future__ import annotations

import base64
import json
from typing import Any

from installer.errors import ErrorClass, InstallerError

from backends.gcp.calls import call
from backends.gcp.errors import ApiError, classify, sa_not_visible

KEY_POLICY = "constraints/iam.disableServiceAccountKeyCreation"
WI_ROLE = "roles/iam.workloadIdentityUser"
KEY_LIMIT = 10  # user-managed keys per service account


def sa_resource(project: str, email: str) -> str:
    return f"projects/{project}/serviceAccounts/{email}"


# -- keys ---------------------------------------------------------------------------------------------------------
async def list_user_keys(project: str, email: str) -> list[str]:
    """Ids of the account's user-managed keys."""
    resp = await call("iam", lambda s: s.projects().serviceAccounts().keys().list(
        name=sa_resource(project, email), keyTypes="USER_MANAGED"),
        what=f"keys of {email}", project=project, retry_if=sa_not_visible)
    return sorted(k["name"].rsplit("/", 1)[-1] for k in resp.get("keys", []) or []
                  if k.get("keyType", "USER_MANAGED") == "USER_MANAGED")


def org_policy_blocks_keys(err: ApiError) -> bool:
    pf = err.detail("google.rpc.PreconditionFailure") or {}
    types = [str(v.get("type", "")) for v in pf.get("violations") or []]
    return any("disableServiceAccountKeyCreation" in t for t in types) or "Key creation is not allowed" in err.message


def create_key_sync(project: str, email: str) -> tuple[str, str]:
    """Create one user-managed key (blocking); returns (key id, key file JSON). The JSON exists only in memory."""
    from backends.gcp.calls import call_sync

    try:
        resp = call_sync("iam", lambda s: s.projects().serviceAccounts().keys().create(
            name=sa_resource(project, email),
            body={"privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE", "keyAlgorithm": "KEY_ALG_RSA_2048"}),
            raw=True, project=project, retry_if=sa_not_visible)
    except ApiError as err:
        if org_policy_blocks_keys(err):
            raise InstallerError(
                f"Organization policy {KEY_POLICY} blocks creating a key for {email}: the 'key' credentials mode "
                "cannot be used in this project.", error_class=ErrorClass.ORG_POLICY,
                remedy="Set 'credentials: workload-identity' in the answers file (no key is needed: the KFP "
                       "Kubernetes service accounts act as the Google ones), then run the installer again.",
                details={"constraint": KEY_POLICY}) from err
        if err.http in (400, 429) and ("Maximum number of keys" in err.message
                                       or "Precondition check failed" in err.message):
            raise InstallerError(
                f"{email} already holds the maximum number of user-managed keys (10).", error_class=ErrorClass.QUOTA,
                remedy=f"Delete unused keys of {email} (IAM > Service accounts > Keys), then run again.") from err
        raise classify(err, what=f"creating a key for {email}", project=project) from err
    key_id = resp["name"].rsplit("/", 1)[-1]
    key_json = base64.b64decode(resp["privateKeyData"]).decode()
    return key_id, key_json


async def delete_key(project: str, email: str, key_id: str) -> bool:
    """Delete a key; False when it was already gone."""
    try:
        await call("iam", lambda s: s.projects().serviceAccounts().keys().delete(
            name=f"{sa_resource(project, email)}/keys/{key_id}"), raw=True, project=project)
        return True
    except ApiError as err:
        if err.not_found:
            return False
        raise classify(err, what=f"deleting key {key_id} of {email}", project=project) from err


def key_id_of(key_json: str | None) -> str | None:
    try:
        return json.loads(key_json or "").get("private_key_id")
    except (ValueError, AttributeError):
        return None


# -- workload identity ---------------------------------------------------------------------------------------------
async def get_sa_policy(project: str, email: str) -> dict:
    return await call("iam", lambda s: s.projects().serviceAccounts().getIamPolicy(
        resource=sa_resource(project, email)), what=f"IAM policy of {email}", project=project,
        retry_if=sa_not_visible)


def missing_members(policy: dict, members: list[str], role: str = WI_ROLE) -> list[str]:
    have: set[str] = set()
    for b in policy.get("bindings", []) or []:
        if b.get("role") == role and not b.get("condition"):
            have.update(b.get("members", []))
    return [m for m in members if m not in have]


async def add_members(project: str, email: str, members: list[str], role: str = WI_ROLE, attempts: int = 10) -> dict:
    """Read-modify-write of the account's own policy (with its etag), again on an etag conflict (409)."""
    import asyncio

    from backends.gcp.env import scaled

    for attempt in range(1, attempts + 1):
        policy = await get_sa_policy(project, email)
        missing = missing_members(policy, members, role)
        if not missing:
            return policy
        bindings = policy.setdefault("bindings", [])
        for b in bindings:
            if b.get("role") == role and not b.get("condition"):
                b["members"] = sorted(set(b.get("members", [])) | set(missing))
                break
        else:
            bindings.append({"role": role, "members": sorted(missing)})
        body: dict[str, Any] = {"policy": policy}
        try:
            return await call("iam", lambda s: s.projects().serviceAccounts().setIamPolicy(
                resource=sa_resource(project, email), body=body), raw=True, project=project,
                retry_if=sa_not_visible)
        except ApiError as err:
            if err.http == 409 and attempt < attempts:
                await asyncio.sleep(scaled(min(2 ** attempt, 30)))
                continue
            raise classify(err, what=f"granting {role} on {email}", project=project) from err
    raise InstallerError(f"could not update the IAM policy of {email} (concurrent changes)",
                         error_class=ErrorClass.TRANSIENT, remedy="Run the installer again.")


async def remove_members(project: str, email: str, members: list[str], role: str = WI_ROLE) -> None:
    """Take ``members`` out of ``role`` on the account's policy (read-modify-write with its etag)."""
    policy = await get_sa_policy(project, email)
    changed = False
    for b in policy.get("bindings", []) or []:
        if b.get("role") == role and not b.get("condition"):
            keep = [m for m in b.get("members", []) if m not in members]
            changed |= keep != b.get("members", [])
            b["members"] = keep
    if not changed:
        return
    policy["bindings"] = [b for b in policy.get("bindings", []) if b.get("members")]
    body: dict[str, Any] = {"policy": policy}
    await call("iam", lambda s: s.projects().serviceAccounts().setIamPolicy(
        resource=sa_resource(project, email), body=body), what=f"IAM policy of {email}", project=project)
