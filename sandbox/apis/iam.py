"""IAM v1: service accounts (with the invisibility window), keys holding real key files, SA IAM policy
(§2, §12.5–6)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import time

from .. import keys as K
from ..errors import ApiError
from ..routing import Ctx, Router
from ..store import new_etag, utc
from . import crm

ACCOUNT_ID_RX = re.compile(r"^[a-z]([-a-z0-9]{4,28}[a-z0-9])$")
SA_LIMIT = 100
KEY_LIMIT = 10
FAR_FUTURE = "9999-12-31T23:59:59Z"


def new_sa_record(project: str, account_id: str, display_name: str, description: str, now: float) -> dict:
    email = f"{account_id}@{project}.iam.gserviceaccount.com"
    uid = str(10**20 + secrets.randbelow(10**20))
    return {"name": f"projects/{project}/serviceAccounts/{email}", "projectId": project, "uniqueId": uid,
            "email": email, "displayName": display_name, "description": description, "oauth2ClientId": uid,
            "etag": "MDEwMjE5MjA=", "created": now, "visible_at": now, "visible_iam_at": now}


def sa_view(sa: dict) -> dict:
    out = {k: sa[k] for k in ("name", "projectId", "uniqueId", "email", "etag", "oauth2ClientId")}
    if sa.get("displayName"):
        out["displayName"] = sa["displayName"]
    if sa.get("description"):
        out["description"] = sa["description"]
    if sa.get("disabled"):
        out["disabled"] = True
    return out


def _missing(ident: str) -> ApiError:
    return ApiError("NOT_FOUND", f"Service account projects/-/serviceAccounts/{ident} does not exist.")


def find_sa(ctx: Ctx, project: str, ident: str, *, permission: str) -> dict:
    if project != "-":
        ctx.project(project)
    if ctx.denied(permission):
        raise ApiError("PERMISSION_DENIED", f"Permission '{permission}' denied on resource (or it may not exist).",
                       details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason":
                                 "IAM_PERMISSION_DENIED", "domain": "iam.googleapis.com",
                                 "metadata": {"permission": permission}}])
    now = time.time()
    for sa in ctx.data["service_accounts"].values():
        if ident in (sa["email"], sa["uniqueId"]) and (project == "-" or sa["projectId"] == project or
                                                        ctx.data["projects"].get(sa["projectId"], {}).get(
                                                            "projectNumber") == project):
            if now < sa.get("visible_iam_at", 0):
                break
            return sa
    raise _missing(ident)


async def create_sa(ctx: Ctx, project: str) -> dict:
    p = ctx.project(project)
    pid = p["projectId"]
    ctx.require("iam.serviceAccounts.create", f"projects/{pid}")
    account_id = ctx.body.get("accountId", "")
    if not ACCOUNT_ID_RX.match(account_id):
        raise ApiError("INVALID_ARGUMENT", f"Invalid value for field 'accountId': '{account_id}'. Account ID must "
                       f"be between 6 and 30 characters, start with a lowercase letter, and consist of lowercase "
                       f"alphanumeric characters and dashes.")
    email = f"{account_id}@{pid}.iam.gserviceaccount.com"
    await ctx.sleep("iam.sa_create")  # before the checks: check-and-insert must not be split by an await
    sas = ctx.data["service_accounts"]
    if email in sas:
        raise ApiError("ALREADY_EXISTS", f"Service account {account_id} already exists within project "
                       f"projects/{pid}.", details=[{"@type": "type.googleapis.com/google.rpc.ResourceInfo",
                                                     "resourceName": f"projects/{pid}/serviceAccounts/{email}"}])
    if sum(1 for s in sas.values() if s["projectId"] == pid) >= SA_LIMIT:
        raise ApiError("RESOURCE_EXHAUSTED", f"Maximum number of service accounts on project reached.",
                       reason="rateLimitExceeded")
    now = time.time()
    body = ctx.body.get("serviceAccount") or {}
    sa = new_sa_record(pid, account_id, body.get("displayName", ""), body.get("description", ""), now)
    sa["visible_iam_at"] = now + ctx.dur("iam.sa_visible_iam")
    sa["visible_at"] = now + ctx.dur("iam.sa_visible")
    sas[email] = sa
    ctx.store.touch()
    return sa_view(sa)


async def get_sa(ctx: Ctx, project: str, sa: str) -> dict:
    return sa_view(find_sa(ctx, project, sa, permission="iam.serviceAccounts.get"))


async def list_sa(ctx: Ctx, project: str) -> dict:
    p = ctx.project(project)
    ctx.require("iam.serviceAccounts.list", f"projects/{p['projectId']}")
    now = time.time()
    items = [sa_view(s) for s in sorted(ctx.data["service_accounts"].values(), key=lambda s: s["email"])
             if s["projectId"] == p["projectId"] and now >= s.get("visible_iam_at", 0)]
    size = int(ctx.query.get("pageSize") or 100)
    start = int(ctx.query.get("pageToken") or 0)
    out: dict = {}
    if items[start:start + size]:
        out["accounts"] = items[start:start + size]
    if start + size < len(items):
        out["nextPageToken"] = str(start + size)
    return out


async def patch_sa(ctx: Ctx, project: str, sa: str) -> dict:
    rec = find_sa(ctx, project, sa, permission="iam.serviceAccounts.update")
    body = ctx.body.get("serviceAccount") or {}
    mask = (ctx.body.get("updateMask") or "").split(",")
    for f in ("displayName", "description"):
        if f in mask and f in body:
            rec[f] = body[f]
    ctx.store.touch()
    return sa_view(rec)


async def delete_sa(ctx: Ctx, project: str, sa: str) -> dict:
    rec = find_sa(ctx, project, sa, permission="iam.serviceAccounts.delete")
    del ctx.data["service_accounts"][rec["email"]]
    for k in ctx.data["keys"].values():
        if k["sa"] == rec["email"]:
            k["deleted"] = True
    ctx.store.touch()
    return {}


def _key_name(sa: dict, kid: str) -> str:
    return f"projects/{sa['projectId']}/serviceAccounts/{sa['email']}/keys/{kid}"


def _key_view(sa: dict, kid: str, rec: dict) -> dict:
    out = {"name": _key_name(sa, kid), "validAfterTime": utc(rec["created"]).split(".")[0] + "Z",
           "validBeforeTime": rec.get("valid_before", FAR_FUTURE), "keyAlgorithm": "KEY_ALG_RSA_2048",
           "keyOrigin": "GOOGLE_PROVIDED", "keyType": rec.get("type", "USER_MANAGED")}
    if rec.get("disabled"):
        out["disabled"] = True
    return out


def _system_key(sa: dict) -> tuple[str, dict]:
    kid = hashlib.sha1(("system" + sa["uniqueId"]).encode()).hexdigest()
    created = sa["created"]
    return kid, {"sa": sa["email"], "created": created, "type": "SYSTEM_MANAGED",
                 "valid_before": utc(created + 14 * 86400).split(".")[0] + "Z"}


async def list_keys(ctx: Ctx, project: str, sa: str) -> dict:
    rec = find_sa(ctx, project, sa, permission="iam.serviceAccountKeys.list")
    types = ctx.request.query.getall("keyTypes", [])
    out = []
    if not types or "SYSTEM_MANAGED" in types:
        kid, k = _system_key(rec)
        out.append(_key_view(rec, kid, k))
    if not types or "USER_MANAGED" in types:
        for kid, k in ctx.data["keys"].items():
            if k["sa"] == rec["email"] and not k.get("deleted"):
                out.append(_key_view(rec, kid, k))
    return {"keys": out} if out else {}


async def get_key(ctx: Ctx, project: str, sa: str, key: str) -> dict:
    rec = find_sa(ctx, project, sa, permission="iam.serviceAccountKeys.get")
    k = ctx.data["keys"].get(key)
    if k is None or k["sa"] != rec["email"] or k.get("deleted"):
        kid, sk = _system_key(rec)
        if key == kid:
            return _key_view(rec, kid, sk)
        raise ApiError("NOT_FOUND", f"Service account key {key} does not exist.")
    return _key_view(rec, key, k)


async def delete_key(ctx: Ctx, project: str, sa: str, key: str) -> dict:
    rec = find_sa(ctx, project, sa, permission="iam.serviceAccountKeys.delete")
    k = ctx.data["keys"].get(key)
    if k is None or k["sa"] != rec["email"] or k.get("deleted"):
        raise ApiError("NOT_FOUND", f"Service account key {key} does not exist.")
    k["deleted"] = True
    ctx.store.touch()
    return {}


async def create_key(ctx: Ctx, project: str, sa: str) -> dict:
    find_sa(ctx, project, sa, permission="iam.serviceAccountKeys.create")
    t0 = time.time()
    pk = await ctx.srv.new_rsa_key_async()
    left = ctx.dur("iam.key_create") - (time.time() - t0)
    if left > 0:
        await asyncio.sleep(left)
    # no await below: the limit check and the insert are one step
    rec = find_sa(ctx, project, sa, permission="iam.serviceAccountKeys.create")
    scen = ctx.data["scenario"]
    if scen["org_policy_keys"] or scen.get("org_policy_keys_managed"):
        email = rec["email"]
        raise ApiError("FAILED_PRECONDITION", "Key creation is not allowed on this service account.",
                       details=[{"@type": "type.googleapis.com/google.rpc.PreconditionFailure", "violations": [{
                           "type": "constraints/iam.disableServiceAccountKeyCreation" if scen["org_policy_keys"]
                           else "constraints/iam.managed.disableServiceAccountKeyCreation",
                           "subject": f"projects/{rec['projectId']}/serviceAccounts/{email}?configvalue={email}",
                           "description": "Key creation is not allowed on this service account."}]}])
    n = sum(1 for k in ctx.data["keys"].values() if k["sa"] == rec["email"] and not k.get("deleted")
            and k.get("type", "USER_MANAGED") == "USER_MANAGED")
    if n >= KEY_LIMIT:
        if scen.get("key_limit_legacy"):
            raise ApiError("RESOURCE_EXHAUSTED", "Maximum number of keys on account reached.",
                           details=[{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "86401s"}])
        raise ApiError("FAILED_PRECONDITION", "Precondition check failed.")
    ktype = ctx.body.get("privateKeyType") or "TYPE_GOOGLE_CREDENTIALS_FILE"
    if ktype not in ("TYPE_GOOGLE_CREDENTIALS_FILE", "TYPE_UNSPECIFIED"):
        raise ApiError("INVALID_ARGUMENT", f"Private key type {ktype} is not supported by the sandbox.")
    alg = ctx.body.get("keyAlgorithm") or "KEY_ALG_RSA_2048"
    if alg not in ("KEY_ALG_RSA_2048", "KEY_ALG_UNSPECIFIED"):
        raise ApiError("INVALID_ARGUMENT", f"Key algorithm {alg} is not supported by the sandbox.")
    kid = K.new_key_id()
    now = time.time()
    info = K.service_account_key_file(project_id=rec["projectId"], key_id=kid, private_key_pem=K.private_pem(pk),
                                      client_email=rec["email"], client_id=rec["uniqueId"],
                                      token_uri=f"{ctx.srv.url}/token")
    krec = {"sa": rec["email"], "public_pem": K.public_pem(pk), "created": now, "type": "USER_MANAGED"}
    ctx.data["keys"][kid] = krec
    ctx.store.touch()
    out = _key_view(rec, kid, krec)
    out["privateKeyType"] = "TYPE_GOOGLE_CREDENTIALS_FILE"
    out["privateKeyData"] = base64.b64encode(json.dumps(info, indent=2).encode()).decode()
    return out


def _sa_policy(rec: dict) -> dict:
    return rec.setdefault("policy", {"version": 1, "etag": "ACAB", "bindings": []})


async def sa_get_iam_policy(ctx: Ctx, project: str, sa: str) -> dict:
    rec = find_sa(ctx, project, sa, permission="iam.serviceAccounts.getIamPolicy")
    return crm.policy_view(_sa_policy(rec))


async def sa_set_iam_policy(ctx: Ctx, project: str, sa: str) -> dict:
    rec = find_sa(ctx, project, sa, permission="iam.serviceAccounts.setIamPolicy")
    pol = _sa_policy(rec)
    new = ctx.body.get("policy") or {}
    if new.get("etag") and new["etag"] != pol["etag"]:
        raise ApiError("ABORTED", "There were concurrent policy changes. Please retry the whole read-modify-write "
                       f"with exponential backoff. The request's ETag '{new['etag']}' did not match the current "
                       f"policy's ETag '{pol['etag']}'.")
    bindings = []
    for b in new.get("bindings") or []:
        for m in b.get("members") or []:
            kind, _, ident = m.partition(":")
            wi = re.match(r"^([a-z][-a-z0-9]*)\.svc\.id\.goog\[([^/\]]+)/([^\]]+)\]$", ident)
            if kind == "serviceAccount" and ".svc.id.goog" in ident:
                pool = f"{wi.group(1)}.svc.id.goog" if wi else ident
                if not wi or not any((c.get("workloadIdentityConfig") or {}).get("workloadPool") == pool
                                     for c in ctx.data["clusters"].values()):
                    raise ApiError("INVALID_ARGUMENT", f"Identity Pool does not exist ({pool}). Please check that "
                                   "you specified a valid resource name as returned in the `name` attribute in the "
                                   "configuration API.")
            else:
                crm.check_member(ctx, m)
        if b.get("members"):
            bindings.append({"role": b["role"], "members": sorted(set(b["members"]))})
    pol.update({"bindings": bindings, "etag": new_etag(), "version": int(new.get("version") or 1)})
    ctx.store.touch()
    return crm.policy_view(pol)


def register(r: Router) -> None:
    a = "iam"
    base = "/v1/projects/{project}/serviceAccounts"
    r.add("GET", base, list_sa, a)
    r.add("POST", base, create_sa, a)
    r.add("GET", base + "/{sa}", get_sa, a)
    r.add("PATCH", base + "/{sa}", patch_sa, a)
    r.add("DELETE", base + "/{sa}", delete_sa, a)
    r.add("POST", base + "/{sa}:getIamPolicy", sa_get_iam_policy, a, mutating=False)
    r.add("POST", base + "/{sa}:setIamPolicy", sa_set_iam_policy, a)
    r.add("GET", base + "/{sa}/keys", list_keys, a)
    r.add("POST", base + "/{sa}/keys", create_key, a)
    r.add("GET", base + "/{sa}/keys/{key}", get_key, a)
    r.add("DELETE", base + "/{sa}/keys/{key}", delete_key, a)
