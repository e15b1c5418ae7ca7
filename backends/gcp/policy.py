"""Read-modify-write of an IAM policy (a project's, a bucket's, a service account's), with its etag.

``await read_modify_write(read, write, edit, what=..., project=...)``: ``read()`` returns the policy dict,
``edit(policy) -> bool`` changes it in place (False: nothing to do, no write), ``write(policy)`` sends it back (the
policy carries the etag it was read with). Retried as a whole, with capped exponential backoff and jitter:

- on 409 (ABORTED, "There were concurrent policy changes. Please retry the whole read-modify-write with exponential
  backoff.", gcp-api-behaviour.md §3) and 412 (a bucket policy with a stale etag: Storage "will reject etags that do
  not match", https://cloud.google.com/sdk/gcloud/reference/storage/buckets/set-iam-policy; its status, 412
  Precondition Failed, is assumed, and terraform's IsConflictError counts 409 and 412 alike, tpgresource/utils.go),
  for 60 s (x time scale), as terraform does for 30 s (tpgiamresource/iam.go.tmpl);
- on a member that is a service account not yet visible (400 "Service account ... does not exist.",
  ``errors.sa_not_visible``), for 300 s: "After you create a service account, you might need to wait for 60 seconds
  or more before you use the service account" (IAM service-accounts-create doc, gcp-api-behaviour.md §2).

Any other error is classified (``errors.classify``) and raised.
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Awaitable, Callable

from .env import scaled
from .errors import ApiError, classify, sa_not_visible

CONFLICT_BUDGET = 60.0
VISIBLE_BUDGET = 300.0


async def read_modify_write(read: Callable[[], Awaitable[dict]], write: Callable[[dict], Awaitable[Any]],
                            edit: Callable[[dict], bool], *, what: str, project: str,
                            on_wait: Callable[[str], None] | None = None) -> bool:
    """True when a write was made, False when ``edit`` found nothing to change."""
    started = time.monotonic()
    attempt = 0
    while True:
        policy = await read()
        if not edit(policy):
            return False
        try:
            await write(policy)
            return True
        except ApiError as err:
            elapsed = time.monotonic() - started
            if err.http in (409, 412) and elapsed < scaled(CONFLICT_BUDGET, 10.0):
                reason = f"{what}: the policy changed meanwhile; reading it again"
            elif sa_not_visible(err) and elapsed < scaled(VISIBLE_BUDGET, 20.0):
                reason = f"{what}: waiting for the service account to become visible"
            else:
                raise classify(err, what=what, project=project) from err
        if on_wait is not None:
            on_wait(reason)
        attempt += 1
        await asyncio.sleep(min(scaled(10), scaled(0.5) * 2 ** min(attempt, 5)) * (0.5 + 0.5 * random.random()))


def has_member(policy: dict, role: str, member: str) -> bool:
    return any(b.get("role") == role and not b.get("condition") and member in (b.get("members") or [])
               for b in policy.get("bindings") or [])


def missing_roles(policy: dict, member: str, roles: list[str]) -> list[str]:
    have = {b["role"] for b in policy.get("bindings") or [] if not b.get("condition") and member in b.get("members", [])}
    return [r for r in roles if r not in have]


def add_member(policy: dict, member: str, roles: list[str]) -> bool:
    changed = False
    bindings = policy.setdefault("bindings", [])
    for role in roles:
        b = next((b for b in bindings if b.get("role") == role and not b.get("condition")), None)
        if b is None:
            bindings.append({"role": role, "members": [member]})
            changed = True
        elif member not in b.setdefault("members", []):
            b["members"].append(member)
            changed = True
    return changed


def remove_member(policy: dict, member: str, roles: list[str]) -> bool:
    changed = False
    keep = []
    for b in policy.get("bindings") or []:
        if b.get("role") in roles and not b.get("condition") and member in b.get("members", []):
            b["members"] = [m for m in b["members"] if m != member]
            changed = True
        if b.get("members"):
            keep.append(b)
    policy["bindings"] = keep
    return changed
