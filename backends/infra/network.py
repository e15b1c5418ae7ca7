"""The ``network`` and ``subnet`` steps: a custom-mode VPC network and its regional subnet (Private Google Access
on). Neither takes labels: ours carry the marker in their description.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from installer.answers import Answers
from installer.errors import ErrorClass, InstallerError
from installer.steps import Observation, StepContext

from backends.gcp import operations
from backends.gcp.calls import call
from backends.gcp.errors import ApiError, classify

from .common import InfraStep, conflict, create_and_wait, has_marker, marker, read_or_none, tail, unless_op_running

SUBNET_CIDR = "10.128.0.0/14"


class NetworkStep(InfraStep):
    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        n = answers.names.network
        net = await read_or_none("compute", lambda s: s.networks().get(project=answers.project, network=n),
                                 what=f"network {n}", project=answers.project)
        if net is None:
            return Observation("absent", f"network {n} does not exist")
        ours = has_marker(answers, net.get("description"))
        out = {"network": n, "self_link": net.get("selfLink", "")}
        if net.get("IPv4Range"):
            return conflict(f"network {n} exists and is a legacy network (no subnets)",
                            "Delete it or choose another name prefix.")
        if net.get("autoCreateSubnetworks"):
            return conflict(f"network {n} exists in auto subnet mode; its ranges overlap {SUBNET_CIDR}",
                            "Choose another name prefix, or convert it to custom mode "
                            f"(`gcloud compute networks update {n} --switch-to-custom-subnet-mode`).")
        return Observation("ready", f"network {n} exists", out, adopted=not ours)

    async def look(self, ctx: StepContext) -> Observation:
        return await unless_op_running(ctx, await self.inspect(ctx.answers), "network")

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        a, n = ctx.answers, ctx.names.network
        if observed.status == "pending":
            await operations.wait(ctx.outputs["operation"], ctx=ctx, what=f"network {n}", expected_seconds=22)
        else:
            body = {"name": n, "autoCreateSubnetworks": False, "routingConfig": {"routingMode": "REGIONAL"},
                    "description": marker(a)}
            await create_and_wait(ctx, "compute", lambda s: s.networks().insert(project=a.project, body=body),
                                  what=f"network {n}", expected_seconds=22)
        return await _made(self, a, f"network {n}")

    async def destroy(self, ctx: StepContext) -> None:
        a, n = ctx.answers, ctx.names.network
        obs = await self.inspect(a)
        if obs.status != "ready" or obs.adopted:
            return
        await _delete_compute(ctx, lambda s: s.networks().delete(project=a.project, network=n), f"network {n}")


async def _made(step: InfraStep, a: Answers, what: str) -> dict[str, Any]:
    """The outputs of what ``apply`` just made, read back: it must be ready now."""
    obs = await step.inspect(a)
    if obs.status != "ready":
        raise InstallerError(obs.detail or f"{what} was not created", error_class=ErrorClass.UNEXPECTED,
                             remedy=obs.remedy or "Run the installer again.")
    return obs.outputs


async def _delete_compute(ctx: StepContext, factory, what: str) -> None:
    p = ctx.answers.project

    def in_use(err: ApiError) -> bool:
        return err.http == 400 and ("resourceInUseByAnotherResource" in err.reasons or err.has("being used by"))
    try:
        op = await call("compute", factory, raw=True, retry_if=in_use)
    except ApiError as err:
        if err.not_found:
            return
        raise classify(err, what=what, project=p) from err
    await operations.wait(operations.op_ref("compute", op, p), ctx=ctx, what=f"deleting {what}", initial=op,
                          expected_seconds=25)


class SubnetStep(InfraStep):
    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        n, r = answers.names.subnet, answers.region
        sub = await read_or_none("compute", lambda s: s.subnetworks().get(project=answers.project, region=r,
                                                                           subnetwork=n),
                                 what=f"subnet {n}", project=answers.project)
        if sub is None:
            return Observation("absent", f"subnet {n} does not exist")
        ours = has_marker(answers, sub.get("description"))
        out = {"subnet": n, "region": r, "self_link": sub.get("selfLink", ""), "cidr": sub.get("ipCidrRange")}
        net_ok = tail(sub.get("network")) == answers.names.network
        cidr_ok = sub.get("ipCidrRange") == SUBNET_CIDR
        try:
            cidr_ok = cidr_ok or ipaddress.ip_network(sub.get("ipCidrRange", "")).prefixlen <= 20
        except ValueError:
            pass
        if not net_ok:
            return conflict(f"subnet {n} exists in network {tail(sub.get('network'))}, not {answers.names.network}",
                            "Choose another name prefix or delete that subnet.")
        if not cidr_ok:
            return conflict(f"subnet {n} exists with range {sub.get('ipCidrRange')} (too small for GKE; want "
                            f"{SUBNET_CIDR})", "Choose another name prefix or delete that subnet.")
        if not sub.get("privateIpGoogleAccess"):
            if ours:
                return Observation("drifted", f"subnet {n}: Private Google Access is off", out)
            return conflict(f"subnet {n} exists without Private Google Access",
                            f"Turn it on (`gcloud compute networks subnets update {n} --region {r} "
                            f"--enable-private-ip-google-access`) or choose another prefix.")
        return Observation("ready", f"subnet {n} exists", out, adopted=not ours)

    async def look(self, ctx: StepContext) -> Observation:
        return await unless_op_running(ctx, await self.inspect(ctx.answers), "subnet")

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        a, n, r = ctx.answers, ctx.names.subnet, ctx.answers.region
        what = f"subnet {n}"
        if observed.status == "pending":
            await operations.wait(ctx.outputs["operation"], ctx=ctx, what=what, expected_seconds=20)
        elif observed.status == "drifted":
            op = await call("compute", lambda s: s.subnetworks().setPrivateIpGoogleAccess(
                project=a.project, region=r, subnetwork=n, body={"privateIpGoogleAccess": True}),
                what=what, project=a.project)
            await operations.wait(operations.op_ref("compute", op, a.project), ctx=ctx, what=what, initial=op)
        else:
            body = {"name": n, "network": f"projects/{a.project}/global/networks/{ctx.names.network}",
                    "ipCidrRange": SUBNET_CIDR, "privateIpGoogleAccess": True, "region": r,
                    "description": marker(a)}
            await create_and_wait(ctx, "compute", lambda s: s.subnetworks().insert(project=a.project, region=r,
                                                                                   body=body),
                                  what=what, region=r, expected_seconds=20)
        return await _made(self, a, what)

    async def destroy(self, ctx: StepContext) -> None:
        a, n = ctx.answers, ctx.names.subnet
        obs = await self.inspect(a)
        if obs.status not in ("ready", "drifted") or obs.adopted:
            return
        await _delete_compute(ctx, lambda s: s.subnetworks().delete(project=a.project, region=a.region,
                                                                     subnetwork=n), f"subnet {n}")
