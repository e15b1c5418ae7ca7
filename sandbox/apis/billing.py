"""Cloud Billing v1: ``projects.getBillingInfo`` (cloudbilling.v1 discovery document: GET
``v1/{+name}/billingInfo`` -> ProjectBillingInfo {name, projectId, billingAccountName, billingEnabled}; the caller
needs ``resourcemanager.projects.get`` on the project). The sandbox's projects are linked to one open billing
account; scenario ``billing_disabled`` unlinks one (``billingEnabled: false``, no ``billingAccountName``:
"False if the project is associated with a closed billing account, or no billing account at all")."""

from __future__ import annotations

from ..routing import Ctx, Router

BILLING_ACCOUNT = "billingAccounts/012345-6789AB-CDEF01"


async def get_billing_info(ctx: Ctx, project: str) -> dict:
    p = ctx.project(project)
    pid = p["projectId"]
    ctx.require("resourcemanager.projects.get", f"projects/{pid}")
    off = pid in (ctx.data["scenario"].get("billing_disabled") or [])
    out = {"name": f"projects/{pid}/billingInfo", "projectId": pid, "billingEnabled": not off}
    if not off:
        out["billingAccountName"] = BILLING_ACCOUNT
    return out


def register(r: Router) -> None:
    r.add("GET", "/v1/projects/{project}/billingInfo", get_billing_info, "billing", mutating=False)
