"""Cloud Resource Manager v1 and v3: projects, project IAM policy (etags, 409 ABORTED), testIamPermissions,
effective org policy (§3, §12.7)."""

from __future__ import annotations

import copy
import re
import time

from .. import catalog
from ..errors import ApiError
from ..routing import Ctx, Router
from ..store import new_etag, utc

KEY_CONSTRAINTS = ("constraints/iam.disableServiceAccountKeyCreation",
                   "constraints/iam.managed.disableServiceAccountKeyCreation")


def v1_view(p: dict) -> dict:
    out = {"projectNumber": p["projectNumber"], "projectId": p["projectId"], "lifecycleState": "ACTIVE",
           "name": p["name"], "createTime": p["createTime"], "parent": dict(p["parent"])}
    if p.get("labels"):
        out["labels"] = dict(p["labels"])
    return out


def v3_view(p: dict) -> dict:
    return {"name": f"projects/{p['projectNumber']}", "parent": f"{p['parent']['type']}s/{p['parent']['id']}",
            "projectId": p["projectId"], "state": "ACTIVE", "displayName": p.get("displayName", p["name"]),
            "createTime": p["createTime"], "updateTime": p["createTime"], "etag": f'W/"{p["projectNumber"][-8:]}"',
            "labels": dict(p.get("labels") or {})}


def _visible_projects(ctx: Ctx) -> list[dict]:
    if ctx.denied("resourcemanager.projects.get"):
        return []
    return list(ctx.data["projects"].values())


def _match_filter(p: dict, flt: str) -> bool:
    for term in flt.split():
        m = re.match(r"^([\w.]+)\s*[:=]\s*\"?([^\"]*)\"?$", term)
        if not m:
            continue
        key, val = m.group(1), m.group(2)
        field = {"id": p["projectId"], "projectid": p["projectId"], "name": p["name"],
                 "lifecyclestate": "ACTIVE", "state": "ACTIVE", "parent.id": p["parent"]["id"],
                 "parent.type": p["parent"]["type"], "projectnumber": p["projectNumber"],
                 "parent": f"{p['parent']['type']}s/{p['parent']['id']}"}.get(key.lower())
        if field is None:
            continue
        if val.endswith("*"):
            if not field.startswith(val[:-1]):
                return False
        elif field != val:
            return False
    return True


async def v1_get(ctx: Ctx, project: str) -> dict:
    p = ctx.project(project)
    ctx.require("resourcemanager.projects.get", f"projects/{project}")
    return v1_view(p)


async def v1_list(ctx: Ctx) -> dict:
    flt = ctx.query.get("filter", "")
    ps = [v1_view(p) for p in _visible_projects(ctx) if _match_filter(p, flt)]
    return {"projects": ps} if ps else {}


async def v3_get(ctx: Ctx, project: str) -> dict:
    p = ctx.project(project)
    ctx.require("resourcemanager.projects.get", f"projects/{project}")
    return v3_view(p)


async def v3_list(ctx: Ctx) -> dict:
    parent = ctx.query.get("parent")
    if not parent:
        raise ApiError("INVALID_ARGUMENT", "Request contains an invalid argument.")
    ps = [v3_view(p) for p in _visible_projects(ctx)
          if f"{p['parent']['type']}s/{p['parent']['id']}" == parent]
    return {"projects": ps} if ps else {}


async def v3_search(ctx: Ctx) -> dict:
    q = ctx.query.get("query", "")
    ps = [v3_view(p) for p in _visible_projects(ctx) if _match_filter(p, q)]
    return {"projects": ps} if ps else {}


def _policy(ctx: Ctx, project: str) -> tuple[dict, dict]:
    p = ctx.project(project)
    pol = ctx.data["iam_policies"].setdefault(p["projectId"], {"version": 1, "etag": new_etag(), "bindings": []})
    return p, pol


def policy_view(pol: dict) -> dict:
    out = {"version": pol.get("version", 1), "etag": pol["etag"],
           "bindings": copy.deepcopy([b for b in pol["bindings"] if b.get("members")])}
    if pol.get("auditConfigs"):
        out["auditConfigs"] = copy.deepcopy(pol["auditConfigs"])
    return out


async def get_iam_policy(ctx: Ctx, project: str) -> dict:
    _, pol = _policy(ctx, project)
    ctx.require("resourcemanager.projects.getIamPolicy", f"projects/{project}")
    await ctx.sleep("crm.iam_policy")
    return policy_view(pol)


def check_member(ctx: Ctx, member: str) -> None:
    kind, _, ident = member.partition(":")
    if kind in ("allUsers", "allAuthenticatedUsers") and not ident:
        return
    if kind not in ("user", "serviceAccount", "group", "domain", "principal", "principalSet", "deleted"):
        raise ApiError("INVALID_ARGUMENT", f"Invalid principal: {member}")
    if kind == "serviceAccount":
        if "@" not in ident:
            raise ApiError("INVALID_ARGUMENT", f"Invalid service account ({ident}).")
        if ident.endswith(".iam.gserviceaccount.com"):
            sa = ctx.data["service_accounts"].get(ident)
            if sa is None or sa.get("deleted") or time.time() < sa.get("visible_at", 0):
                raise ApiError("INVALID_ARGUMENT", f"Service account {ident} does not exist.")
        if ident.endswith(".svc.id.goog"):
            raise ApiError("INVALID_ARGUMENT", f"Invalid service account ({ident}).")
    elif kind in ("user", "group") and "@" not in ident:
        raise ApiError("INVALID_ARGUMENT", f"Invalid principal: {member}")


async def set_iam_policy(ctx: Ctx, project: str) -> dict:
    _policy(ctx, project)
    ctx.require("resourcemanager.projects.setIamPolicy", f"projects/{project}")
    new = ctx.body.get("policy")
    if not isinstance(new, dict):
        raise ApiError("INVALID_ARGUMENT", "Request contains an invalid argument.")
    # the latency first: from here on nothing awaits, so the etag check and the write are one atomic step
    await ctx.sleep("crm.iam_policy")
    p, pol = _policy(ctx, project)
    mask = [m.strip() for m in (ctx.body.get("updateMask") or "bindings,etag").split(",") if m.strip()]
    if new.get("etag") and new["etag"] != pol["etag"]:
        raise ApiError("ABORTED", "There were concurrent policy changes. Please retry the whole read-modify-write "
                       f"with exponential backoff. The request's ETag '{new['etag']}' did not match the current "
                       f"policy's ETag '{pol['etag']}'.")
    bindings = pol["bindings"]
    if "bindings" in mask:
        bindings = []
        for b in new.get("bindings") or []:
            role = b.get("role", "")
            if not re.match(r"^(roles/[\w.]+|projects/[\w-]+/roles/[\w.]+|organizations/\d+/roles/[\w.]+)$", role):
                raise ApiError("INVALID_ARGUMENT", f"Role ({role}) does not exist in the resource's hierarchy.")
            for m in b.get("members") or []:
                check_member(ctx, m)
            nb = {"role": role, "members": sorted(set(b.get("members") or []))}
            if b.get("condition"):
                nb["condition"] = b["condition"]
            if nb["members"]:
                bindings.append(nb)
    version = int(new.get("version") or 1)
    if any("condition" in b for b in bindings):
        if version < 3:
            raise ApiError("INVALID_ARGUMENT", "Policy version 1 or 2 cannot contain conditional bindings; set the "
                           "policy version to 3.")
    elif version == 3 and "bindings" in mask:
        version = 1
    now = time.time()
    old_members = {(b["role"], m) for b in pol["bindings"] for m in b["members"]}
    pol["bindings"] = bindings
    pol["version"] = version
    if "auditConfigs" in mask:
        pol["auditConfigs"] = new.get("auditConfigs") or []
    pol["etag"] = new_etag()
    pol["changed_at"] = now
    added = pol.setdefault("added_at", {})
    for b in bindings:
        for m in b["members"]:
            if (b["role"], m) not in old_members:
                added[f"{b['role']}|{m}"] = now
    ctx.store.touch()
    return policy_view(pol)


async def test_iam_permissions(ctx: Ctx, project: str) -> dict:
    ctx.project(project)
    perms = ctx.body.get("permissions") or []
    ok = [p for p in perms if not ctx.denied(p)]
    return {"permissions": ok} if ok else {}


async def effective_org_policy(ctx: Ctx, project: str) -> dict:
    ctx.project(project)
    constraint = ctx.body.get("constraint", "")
    if not constraint.startswith("constraints/"):
        raise ApiError("INVALID_ARGUMENT", f"Invalid constraint name: '{constraint}'.")
    if ".managed." in constraint:
        # v1 reads only legacy constraints (terraform-google-modules/terraform-google-org-policy#183)
        raise ApiError("INVALID_ARGUMENT", f"{constraint} is in a Managed constraint format. Managed constraints "
                       "are only supported with Org Policy V2 API. Please use Org Policy V2 API or `gcloud "
                       "org-policies` command instead.", reason="badRequest")
    out: dict = {"constraint": constraint, "etag": "BwYSandbox0=", "version": 1,
                 "updateTime": utc(ctx.data["created"])}
    if constraint in KEY_CONSTRAINTS:
        out["booleanPolicy"] = {"enforced": True} if key_constraint_enforced(ctx.data, constraint) else {}
    elif "allowed" in constraint or "Locations" in constraint.split("/")[-1]:
        out["listPolicy"] = {"allValues": "ALLOW"}
    else:
        out["booleanPolicy"] = {}
    return out


def key_constraint_enforced(data: dict, constraint: str) -> bool:
    """Scenario ``org_policy_keys``: the legacy constraint (``managed=false``, the default) or the managed one."""
    sc = data["scenario"]
    if ".managed." in constraint:
        return bool(sc.get("org_policy_keys_managed"))
    return bool(sc.get("org_policy_keys"))


async def v2_effective_policy(ctx: Ctx, project: str, constraint: str) -> dict:
    """Org Policy v2 projects.policies.getEffectivePolicy (orgpolicy.v2 discovery: GET
    v2/{+name}:getEffectivePolicy -> GoogleCloudOrgpolicyV2Policy {name, spec: {rules: [{enforce}]}}); reads legacy
    and managed constraints alike. The evaluated policy has no etag (discovery description)."""
    p = ctx.project(project)
    ctx.require("orgpolicy.policy.get", f"projects/{p['projectId']}")
    full = f"constraints/{constraint}"
    name = f"projects/{p['projectNumber']}/policies/{constraint}"
    if full in KEY_CONSTRAINTS:
        return {"name": name, "spec": {"rules": [{"enforce": key_constraint_enforced(ctx.data, full)}]}}
    return {"name": name, "spec": {"rules": [{"allowAll": True} if "allowed" in constraint else {"enforce": False}]}}


def register(r: Router) -> None:
    r.add("GET", "/v2/projects/{project}/policies/{constraint}:getEffectivePolicy", v2_effective_policy,
          "orgpolicy", mutating=False)
    a = "crm"
    r.add("GET", "/v1/projects", v1_list, a)
    r.add("GET", "/v1/projects/{project}", v1_get, a)
    r.add("POST", "/v1/projects/{project}:getIamPolicy", get_iam_policy, a, mutating=False)
    r.add("POST", "/v1/projects/{project}:setIamPolicy", set_iam_policy, a)
    r.add("POST", "/v1/projects/{project}:testIamPermissions", test_iam_permissions, a, mutating=False)
    r.add("POST", "/v1/projects/{project}:getEffectiveOrgPolicy", effective_org_policy, a, mutating=False)
    r.add("POST", "/v1/projects/{project}:getOrgPolicy", effective_org_policy, a, mutating=False)
    r.add("GET", "/v3/projects", v3_list, a)
    r.add("GET", "/v3/projects:search", v3_search, a)
    r.add("GET", "/v3/projects/{project}", v3_get, a)
    r.add("POST", "/v3/projects/{project}:getIamPolicy", get_iam_policy, a, mutating=False)
    r.add("POST", "/v3/projects/{project}:setIamPolicy", set_iam_policy, a)
    r.add("POST", "/v3/projects/{project}:testIamPermissions", test_iam_permissions, a, mutating=False)


_ = catalog
