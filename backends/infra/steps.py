"""The infrastructure steps: APIs, network, subnet, service accounts and their roles, GKE, Cloud SQL, bucket.

``STEPS = {step_id: StepClass}``; each class takes its ``StepSpec``. Every step can ``inspect`` (read-only, no
context: preflight uses it too), ``look`` (inspect plus what the journal remembers, e.g. a running operation),
``apply`` (idempotent; remembers operation names before waiting so a resumed run waits on the same operation),
``verify`` and ``destroy`` (only what carries our label/marker).

Ownership: resources with labels carry ``mlops-install-env=<prefix>``; networks, subnets and service accounts,
which take no labels, carry the marker in their description. A resource that exists and fits is ``ready``
(``adopted`` when not ours); one that is not ours and does not fit is a ``conflict`` with a remedy.
Secrets: the ``kfp`` database password goes only into ``ctx.runtime["sql_password"]``.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import string
from dataclasses import asdict, dataclass
from typing import Any

from installer.answers import LEGACY_APIS, SQL_EDITION, Answers
from installer.errors import ErrorClass, InstallerError
from installer.sizing import BOOT_DISK_GB, BOOT_DISK_TYPE, size_of_cluster
from installer.steps import Observation, StepContext

from backends.gcp import operations
from backends.gcp.calls import call, note_enabled
from backends.gcp.env import scaled
from backends.gcp.errors import ApiError, classify, is_service_disabled, sa_not_visible
from backends.gcp.policy import add_member, missing_roles, read_modify_write, remove_member

from .bucket import BucketRolesStep, BucketStep
from .common import (InfraStep, conflict, has_marker, is_ours, labels, marker, poll_until, tail,
                     unless_op_running, wait_recorded_create)

log = logging.getLogger("mlops_install.infra")

SUBNET_CIDR = "10.128.0.0/14"
BATCH = 20


# ---------------------------------------------------------------------------------------------------- APIs

async def enabled_services(project: str) -> set[str]:
    out: set[str] = set()
    token = None
    while True:
        resp = await call("serviceusage", lambda s, t=token: s.services().list(
            parent=f"projects/{project}", filter="state:ENABLED", pageSize=200, pageToken=t), project=project)
        for svc in resp.get("services") or []:
            out.add(svc.get("config", {}).get("name") or tail(svc.get("name")))
        token = resp.get("nextPageToken")
        if not token:
            return out


def batches(missing: list[str]) -> list[list[str]]:
    """At most 20 per batch; each legacy API alone (batchEnable is all-or-nothing)."""
    normal = [a for a in missing if a not in LEGACY_APIS]
    out = [normal[i:i + BATCH] for i in range(0, len(normal), BATCH)]
    return out + [[a] for a in missing if a in LEGACY_APIS]


# A cheap read per API, to know it is usable (enabling propagates after the operation is done).
def _probe(api: str, answers: Answers):
    p = answers.project
    return {
        "compute.googleapis.com": ("compute", lambda s: s.regions().get(project=p, region=answers.region)),
        "container.googleapis.com": ("container", lambda s: s.projects().locations().clusters().list(
            parent=f"projects/{p}/locations/-")),
        "sqladmin.googleapis.com": ("sqladmin", lambda s: s.instances().list(project=p, maxResults=1)),
        "iam.googleapis.com": ("iam", lambda s: s.projects().serviceAccounts().list(
            name=f"projects/{p}", pageSize=1)),
        "cloudresourcemanager.googleapis.com": ("cloudresourcemanager", lambda s: s.projects().get(projectId=p)),
        "storage.googleapis.com": ("storage", lambda s: s.buckets().list(project=p, maxResults=1)),
    }.get(api)


def consent_to_enable(answers: Answers, runtime: dict | None = None) -> bool:
    """Consent to enable the missing APIs: ``apis.enable: true`` in the answers, or ``--yes`` (the core puts
    ``runtime["enable_apis"]`` / ``runtime["assume_yes"]``; the wizard's confirm does the same)."""
    rt = runtime or {}
    return bool(answers.apis.enable or rt.get("enable_apis") or rt.get("assume_yes"))


def consent_remedy(answers: Answers, hard: list[str]) -> str:
    return (f"Nothing was enabled: apis.enable is false and --yes was not given. To let the installer enable "
            f"them, run the same command with --yes (or set apis.enable: true in the answers file); or enable "
            f"them yourself: `gcloud services enable {' '.join(hard)} --project {answers.project}`.")


class ApisStep(InfraStep):
    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        enabled = await enabled_services(answers.project)
        needed = answers.apis_needed
        missing = [a for a in needed if a not in enabled]
        if not missing:
            return Observation("ready", "all required APIs are enabled", {"apis": len(needed)})
        hard = [a for a in missing if a not in LEGACY_APIS]
        consent = consent_to_enable(answers, runtime)
        if not consent and hard:
            return conflict(f"{len(hard)} required API(s) not enabled: {', '.join(hard)}",
                            consent_remedy(answers, hard))
        if not hard and not consent:
            return Observation("ready", f"legacy APIs not enabled: {', '.join(missing)}",
                               {"apis": len(needed) - len(missing), "legacy_missing": missing})
        return Observation("absent", f"{len(missing)} APIs to enable: {', '.join(missing)}",
                           {"missing": missing})

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        p = ctx.answers.project
        missing = list(observed.outputs.get("missing") or [])
        warnings: list[str] = []

        async def enable(batch: list[str]) -> None:
            legacy = len(batch) == 1 and batch[0] in LEGACY_APIS
            ctx.log(f"enabling {', '.join(batch)}")
            try:
                for attempt in range(4):
                    if len(batch) == 1:
                        op = await call("serviceusage", lambda s: s.services().enable(
                            name=f"projects/{p}/services/{batch[0]}", body={}), project=p, what=batch[0])
                    else:
                        op = await call("serviceusage", lambda s: s.services().batchEnable(
                            parent=f"projects/{p}", body={"serviceIds": batch}), project=p, what="APIs")
                    ref = operations.op_ref("serviceusage", op, p)
                    try:
                        await operations.wait(ref, ctx=ctx, what=f"enabling {', '.join(batch)}", initial=op,
                                              expected_seconds=30)
                        break
                    except InstallerError as exc:
                        # "[160009] ... with failed services": an internal error terraform retries too
                        if "160009" not in exc.message or attempt == 3:
                            raise
                        ctx.log(f"enabling {', '.join(batch)} failed ({exc.message}); trying again", "warning")
                        await asyncio.sleep(scaled(5) * (attempt + 1))
            except InstallerError as exc:
                if legacy:
                    warnings.append(batch[0])
                    ctx.log(f"could not enable legacy API {batch[0]} (not needed): {exc.message}", "warning")
                    return
                raise

        plan = batches(missing)
        normal = [b for b in plan if not (len(b) == 1 and b[0] in LEGACY_APIS)]
        legacy = [b for b in plan if b not in normal]
        for b in normal:  # one activation at a time (concurrent ones get "another activation in progress")
            await enable(b)
        legacy_task = asyncio.gather(*(enable(b) for b in legacy)) if legacy else None
        want = {a for a in missing if a not in LEGACY_APIS}
        note_enabled(sorted(want))

        async def listed() -> bool:
            return want <= await enabled_services(p)

        # (at most 3 s apart: the notice lag of operations.NOTICE_FLOOR, issue 20)
        await poll_until(listed, what="waiting for the enabled APIs to show as enabled", timeout=20 * 60, ctx=ctx,
                         max_interval=3.0)
        await self._usable(ctx, sorted(want))
        if legacy_task is not None:
            await legacy_task
        return {"apis": len(ctx.answers.apis_needed) - len(warnings), "enabled": sorted(missing),
                **({"legacy_missing": warnings} if warnings else {})}

    async def _usable(self, ctx: StepContext, services: list[str]) -> None:
        """Wait until each newly enabled API answers (enabling propagates after the operation is done)."""
        pending = [s for s in services if _probe(s, ctx.answers)]

        async def usable(svc: str) -> bool:
            api, fac = _probe(svc, ctx.answers)
            try:
                await call(api, fac, raw=True, project=ctx.answers.project, budget=30, propagation=False)
            except ApiError as err:
                return not is_service_disabled(err)  # any other answer means the API is reachable
            return True

        async def all_usable() -> bool:
            nonlocal pending
            ok = await asyncio.gather(*(usable(s) for s in pending))
            pending = [s for s, good in zip(pending, ok) if not good]
            return not pending

        await poll_until(all_usable, what="waiting for the enabled APIs to become usable", timeout=20 * 60,
                         ctx=ctx, max_interval=3.0)

    async def destroy(self, ctx: StepContext) -> None:
        return None  # APIs are left enabled: other things in the project may use them


# ---------------------------------------------------------------------------------------------------- network

class NetworkStep(InfraStep):
    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        n = answers.names.network
        try:
            net = await call("compute", lambda s: s.networks().get(project=answers.project, network=n), raw=True)
        except ApiError as err:
            if err.not_found:
                return Observation("absent", f"network {n} does not exist")
            raise classify(err, what=f"network {n}", project=answers.project) from err
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
            try:
                op = await call("compute", lambda s: s.networks().insert(project=a.project, body=body), raw=True)
            except ApiError as err:
                if not err.already_exists:
                    raise classify(err, what=f"network {n}", project=a.project) from err
                op = None
            if op is not None:
                ref = operations.op_ref("compute", op, a.project)
                await ctx.remember(operation=ref)
                await operations.wait(ref, ctx=ctx, what=f"network {n}", initial=op, expected_seconds=22)
        obs = await self.inspect(a)
        if obs.status != "ready":
            raise InstallerError(obs.detail or f"network {n} was not created", error_class=ErrorClass.UNEXPECTED,
                                 remedy=obs.remedy or "Run the installer again.")
        return obs.outputs

    async def destroy(self, ctx: StepContext) -> None:
        a, n = ctx.answers, ctx.names.network
        obs = await self.inspect(a)
        if obs.status != "ready" or obs.adopted:
            return
        await _delete_compute(ctx, lambda s: s.networks().delete(project=a.project, network=n), f"network {n}")


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


# ---------------------------------------------------------------------------------------------------- subnet

class SubnetStep(InfraStep):
    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        n, r = answers.names.subnet, answers.region
        try:
            sub = await call("compute", lambda s: s.subnetworks().get(project=answers.project, region=r,
                                                                       subnetwork=n), raw=True)
        except ApiError as err:
            if err.not_found:
                return Observation("absent", f"subnet {n} does not exist")
            raise classify(err, what=f"subnet {n}", project=answers.project) from err
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
            try:
                op = await call("compute", lambda s: s.subnetworks().insert(project=a.project, region=r, body=body),
                                raw=True)
            except ApiError as err:
                if not err.already_exists:
                    raise classify(err, what=what, project=a.project, region=r) from err
                op = None
            if op is not None:
                ref = operations.op_ref("compute", op, a.project)
                await ctx.remember(operation=ref)
                await operations.wait(ref, ctx=ctx, what=what, initial=op, expected_seconds=20)
        obs = await self.inspect(a)
        if obs.status != "ready":
            raise InstallerError(obs.detail or f"{what} was not created", error_class=ErrorClass.UNEXPECTED,
                                 remedy=obs.remedy or "Run the installer again.")
        return obs.outputs

    async def destroy(self, ctx: StepContext) -> None:
        a, n = ctx.answers, ctx.names.subnet
        obs = await self.inspect(a)
        if obs.status not in ("ready", "drifted") or obs.adopted:
            return
        await _delete_compute(ctx, lambda s: s.subnetworks().delete(project=a.project, region=a.region,
                                                                     subnetwork=n), f"subnet {n}")


# ---------------------------------------------------------------------------------------------------- service accounts

class ServiceAccountStep(InfraStep):
    which = "gke"

    def ids(self, answers: Answers) -> tuple[str, str, str]:
        n = answers.names
        if self.which == "gke":
            return n.gke_sa, n.gke_sa_email, "GKE node service account"
        return n.kfp_sa, n.kfp_sa_email, "Kubeflow Pipelines service account"

    async def _get(self, answers: Answers, email: str, **kw) -> dict:
        return await call("iam", lambda s: s.projects().serviceAccounts().get(
            name=f"projects/{answers.project}/serviceAccounts/{email}"), raw=True, **kw)

    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        account_id, email, _ = self.ids(answers)
        try:
            sa = await self._get(answers, email)
        except ApiError as err:
            if err.not_found:
                return Observation("absent", f"service account {email} does not exist")
            raise classify(err, what=f"service account {email}", project=answers.project) from err
        out = {"email": sa.get("email", email), "unique_id": sa.get("uniqueId", "")}
        if sa.get("disabled"):
            return conflict(f"service account {email} exists but is disabled",
                            f"Enable it (`gcloud iam service-accounts enable {email}`) and run again.")
        return Observation("ready", f"service account {email} exists", out,
                           adopted=not has_marker(answers, sa.get("description")))

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        a = ctx.answers
        account_id, email, title = self.ids(a)
        body = {"accountId": account_id,
                "serviceAccount": {"displayName": f"{title} ({a.prefix})", "description": marker(a)}}
        try:
            sa = await call("iam", lambda s: s.projects().serviceAccounts().create(
                name=f"projects/{a.project}", body=body), raw=True)
        except ApiError as err:
            if not err.already_exists:
                raise classify(err, what=f"service account {email}", project=a.project) from err
            sa = None
        await ctx.remember(email=email)
        if sa is None:  # made by an earlier, interrupted run (or just now by someone else): read it back
            sa = await self._get(a, email, retry_if=sa_not_visible)
        return {"email": sa.get("email", email), "unique_id": sa.get("uniqueId", "")}

    async def verify(self, ctx: StepContext) -> None:
        # IAM's own reads are eventually consistent: wait until the account reads back (later users such as
        # setIamPolicy and GKE retry "does not exist" for their own, longer, window).
        _, email, _ = self.ids(ctx.answers)
        await self._get(ctx.answers, email, retry_if=sa_not_visible)

    async def destroy(self, ctx: StepContext) -> None:
        a = ctx.answers
        obs = await self.inspect(a)
        if obs.status != "ready" or obs.adopted:
            return
        _, email, _ = self.ids(a)
        try:
            await call("iam", lambda s: s.projects().serviceAccounts().delete(
                name=f"projects/{a.project}/serviceAccounts/{email}"), raw=True)
        except ApiError as err:
            if not err.not_found:
                raise classify(err, what=f"service account {email}", project=a.project) from err


class GkeSaStep(ServiceAccountStep):
    which = "gke"


class KfpSaStep(ServiceAccountStep):
    which = "kfp"


# ---------------------------------------------------------------------------------------------------- roles

def _iam_lock(ctx: StepContext) -> asyncio.Lock:
    # One read-modify-write at a time per project within a run (like terraform's mutex); a lock per run, so it
    # never serialises anything but IAM policy writes. Concurrent writers elsewhere are handled by the etag.
    key = f"_iam_lock:{ctx.answers.project}"
    lock = ctx.runtime.get(key)
    if lock is None:
        lock = ctx.runtime[key] = asyncio.Lock()
    return lock


async def get_policy(project: str) -> dict:
    return await call("cloudresourcemanager", lambda s: s.projects().getIamPolicy(
        resource=project, body={"options": {"requestedPolicyVersion": 3}}), project=project,
        what=f"IAM policy of {project}")


async def modify_policy(ctx: StepContext, edit, what: str) -> None:
    """Read-modify-write of the project IAM policy with its etag (``backends.gcp.policy.read_modify_write``: retried
    on 409 ABORTED and while a just-created account is not yet visible), one at a time per project in a run."""
    p = ctx.answers.project

    async def write(policy: dict) -> None:
        policy.setdefault("version", 1)
        if any(b.get("condition") for b in policy.get("bindings", [])):
            policy["version"] = 3
        await call("cloudresourcemanager", lambda s: s.projects().setIamPolicy(
            resource=p, body={"policy": policy, "updateMask": "bindings,etag"}), raw=True)

    async with _iam_lock(ctx):
        await read_modify_write(lambda: get_policy(p), write, edit, what=what, project=p, on_wait=ctx.progress)


class RolesStep(InfraStep):
    which = "gke"

    def member_roles(self, answers: Answers) -> tuple[str, list[str]]:
        n, sa = answers.names, answers.service_accounts
        if self.which == "gke":
            return f"serviceAccount:{n.gke_sa_email}", list(sa.gke_roles)
        return f"serviceAccount:{n.kfp_sa_email}", list(sa.kfp_roles)

    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        member, roles = self.member_roles(answers)
        policy = await get_policy(answers.project)
        missing = missing_roles(policy, member, roles)
        out = {"member": member, "roles": roles}
        if not missing:
            return Observation("ready", f"{member} holds its {len(roles)} roles", out)
        return Observation("absent", f"{member} lacks {', '.join(missing)}", out)

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        member, roles = self.member_roles(ctx.answers)
        await modify_policy(ctx, lambda pol: add_member(pol, member, roles), f"roles for {member}")
        return {"member": member, "roles": roles}

    async def verify(self, ctx: StepContext) -> None:
        member, roles = self.member_roles(ctx.answers)

        async def shows() -> bool:
            return not missing_roles(await get_policy(ctx.answers.project), member, roles)
        await poll_until(shows, what=f"checking the roles of {member}", timeout=120)

    async def destroy(self, ctx: StepContext) -> None:
        member, roles = self.member_roles(ctx.answers)
        await modify_policy(ctx, lambda pol: remove_member(pol, member, roles), f"roles for {member}")


class GkeRolesStep(RolesStep):
    which = "gke"


class KfpRolesStep(RolesStep):
    which = "kfp"


# ---------------------------------------------------------------------------------------------------- changed settings

@dataclass
class Change:
    """A setting of an existing resource of ours that differs from the answers. ``in_place``: the step updates it
    (``how``); else it is refused before anything is made, with the way out."""
    resource: str  # e.g. "cluster demo-kfp-cluster"
    field: str  # the answers' field, e.g. "cluster.node_count"
    old: Any
    new: Any
    in_place: bool
    how: str = ""

    def __str__(self) -> str:
        return f"{self.resource}: {self.field} {self.old} -> {self.new}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def way_out(a: Answers) -> str:
    return (f"It cannot change in place: put back the old value, or take the environment down first "
            f"(`mlops-install destroy --answers <file>`: project {a.project}, prefix {a.prefix}) and install again, "
            f"or install beside it with a new prefix.")


def consent_to_change(runtime: dict | None) -> bool:
    """Consent to update settings of existing resources: ``runtime["apply_changes"]`` (``--yes``; the wizard's
    confirm sets it too)."""
    return bool((runtime or {}).get("apply_changes"))


def changes_remedy(changes: list[Change]) -> str:
    return ("Run the same command with --yes to apply " + ("it" if len(changes) == 1 else "them")
            + " (the wizard asks), or put back the old value(s) in the answers.")


def require_consent(ctx: StepContext, changes: list[Change]) -> None:
    if changes and not consent_to_change(ctx.runtime):
        raise InstallerError("settings of an existing resource differ from the answers: "
                             + "; ".join(str(c) for c in changes), error_class=ErrorClass.CONFLICT,
                             remedy=changes_remedy(changes))


# ---------------------------------------------------------------------------------------------------- GKE

def node_metadata_mode(a: Answers) -> str:
    """The node pools' workload metadata mode for the credentials mode.

    Workload Identity: ``GKE_METADATA`` (pods get the Google SA their KSA is bound to). Key mode: ``GCE_METADATA``
    and no workload pool. In env/gcp of KFP 2.14.4 only the pipeline pods mount ``user-gcp-sa``; the Cloud SQL proxy,
    the MinIO GCS gateway and the UI use the node's identity, which the GKE metadata server hides ("Workload
    Identity Federation for GKE ... Pods can't use the node's service account",
    https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity#metadata_server). See
    docs/credentials.md for why key mode keeps the node identity rather than binding those KSAs."""
    return "GKE_METADATA" if a.credentials == "workload-identity" else "GCE_METADATA"


def _metadata_mode(pool: dict) -> str:
    # A pool without workloadMetadataConfig on a cluster without a workload pool exposes the node's metadata
    # (GCE_METADATA); a cluster with Workload Identity defaults new pools to GKE_METADATA (GKE docs above).
    return ((pool.get("config") or {}).get("workloadMetadataConfig") or {}).get("mode") or "GCE_METADATA"


def placement(a: Answers) -> dict:
    """Where and how big a cluster create was: what a retry after a capacity or quota failure must change."""
    return {"location": a.location, "machine_type": a.cluster.machine_type, "node_count": a.cluster.node_count}


def metadata_fix(a: Answers, c: dict) -> dict | None:
    """What a live cluster lacks for the credentials mode: ``{"workload_pool": bool, "pools": {pool: mode},
    "why": text, "remedy": gcloud commands}``, or None when it fits. Enabling Workload Identity on an existing
    cluster and changing a pool's metadata mode are in-place updates
    (https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity#enable_on_clusters_and_node_pools:
    `gcloud container clusters update --workload-pool`, `gcloud container node-pools update --workload-metadata`)."""
    name, want = a.names.cluster, node_metadata_mode(a)
    need_pool = a.credentials == "workload-identity" and not (c.get("workloadIdentityConfig") or {}).get(
        "workloadPool")
    wrong = {p.get("name"): _metadata_mode(p) for p in c.get("nodePools") or [] if _metadata_mode(p) != want}
    if not need_pool and not wrong:
        return None
    bits, cmds = [], []
    if need_pool:
        bits.append("has no Workload Identity pool")
        cmds.append(f"`gcloud container clusters update {name} --location {a.location} "
                    f"--workload-pool={a.names.workload_pool}`")
    if wrong:
        why = ("in key mode the Cloud SQL proxy and the MinIO GCS gateway run as the node's service account, which "
               "the GKE metadata server hides from pods" if want == "GCE_METADATA" else
               "Workload Identity needs the GKE metadata server on every node")
        bits.append("node pool(s) " + ", ".join(f"{p} ({m})" for p, m in wrong.items())
                    + f" must use workload metadata {want} ({why})")
        cmds += [f"`gcloud container node-pools update {p} --cluster {name} --location {a.location} "
                 f"--workload-metadata={want}`" for p in wrong]
    other = "workload-identity" if want == "GCE_METADATA" else "key"
    return {"workload_pool": need_pool, "pools": {p: want for p in wrong}, "why": "; ".join(bits),
            "remedy": "; then ".join(cmds) + f"; or use credentials: {other}."}


def cluster_body(a: Answers) -> dict:
    n = a.names
    cluster: dict[str, Any] = {
        "name": n.cluster,
        "network": n.network,
        "subnetwork": n.subnet,
        "ipAllocationPolicy": {"useIpAliases": True},  # VPC-native; GKE makes the secondary ranges
        "releaseChannel": {"channel": a.cluster.release_channel},
        "resourceLabels": labels(a),
        "nodePools": [{
            "name": "default-pool",
            "initialNodeCount": a.cluster.node_count,
            "config": {
                "machineType": a.cluster.machine_type,
                # explicit, so the quota they take is known (installer.sizing: SSD_TOTAL_GB for pd-balanced)
                "diskSizeGb": BOOT_DISK_GB,
                "diskType": BOOT_DISK_TYPE,
                "serviceAccount": n.gke_sa_email,
                "oauthScopes": ["https://www.googleapis.com/auth/cloud-platform"],
                # container.v1 NodeConfig.workloadMetadataConfig (discovery: mode GCE_METADATA | GKE_METADATA)
                "workloadMetadataConfig": {"mode": node_metadata_mode(a)},
                "labels": labels(a),
            },
        }],
    }
    if a.credentials == "workload-identity":
        cluster["workloadIdentityConfig"] = {"workloadPool": n.workload_pool}
    return {"cluster": cluster}


def cluster_outputs(c: dict, location: str) -> dict:
    return {"cluster": c.get("name"), "location": location, "endpoint": c.get("endpoint", ""),
            "ca_certificate": (c.get("masterAuth") or {}).get("clusterCaCertificate", ""),
            "self_link": c.get("selfLink", "")}


def cluster_changes(a: Answers, c: dict) -> list[Change]:
    """What differs between the answers and our live cluster: the node count per zone (container.v1
    nodePools.setSize: "The new size will be used for all replicas"), in place; the machine type, not (a node
    pool's machine type is fixed at its creation: changing it means a new node pool,
    https://cloud.google.com/kubernetes-engine/docs/how-to/node-pools#upgrading_to_a_new_machine_type)."""
    what = f"cluster {a.names.cluster}"
    size = size_of_cluster(c)
    out = []
    if size.machine_type and size.machine_type != a.cluster.machine_type:
        out.append(Change(what, "cluster.machine_type", size.machine_type, a.cluster.machine_type, False))
    pools = c.get("nodePools") or []
    if len(pools) == 1 and size.nodes_per_zone != a.cluster.node_count:
        out.append(Change(what, "cluster.node_count", size.nodes_per_zone, a.cluster.node_count, True,
                          f"node pool {pools[0].get('name')} resized to {a.cluster.node_count} per zone"))
    return out


async def cluster_elsewhere(a: Answers) -> Change | None:
    """Our cluster of this name in another location (the region or zone changed): it cannot move."""
    resp = await call("container", lambda s: s.projects().locations().clusters().list(
        parent=f"projects/{a.project}/locations/-"), project=a.project, what="clusters")
    for c in resp.get("clusters") or []:
        if c.get("name") == a.names.cluster and c.get("location") != a.location and \
                is_ours(a, c.get("resourceLabels")):
            zonal = a.zone or c["location"].count("-") == 2  # us-central1-a
            return Change(f"cluster {a.names.cluster}", "zone" if zonal else "region", c["location"], a.location,
                          False)
    return None


def cluster_path(a: Answers) -> str:
    return f"projects/{a.project}/locations/{a.location}/clusters/{a.names.cluster}"


async def get_cluster(a: Answers) -> dict | None:
    try:
        return await call("container", lambda s: s.projects().locations().clusters().get(name=cluster_path(a)),
                          raw=True)
    except ApiError as err:
        if err.not_found:
            return None
        raise classify(err, what=f"cluster {a.names.cluster}", project=a.project) from err


class ClusterStep(InfraStep):
    def _name(self, a: Answers) -> str:
        return cluster_path(a)

    async def get(self, a: Answers) -> dict | None:
        return await get_cluster(a)

    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        a, name = answers, answers.names.cluster
        c = await self.get(a)
        if c is None:
            if a.cluster.existing:
                return conflict(f"cluster {name} (cluster.existing) was not found in {a.location}",
                                "Check cluster.existing and the zone/region, or remove it to create a new cluster.")
            return Observation("absent", f"cluster {name} does not exist")
        ours = is_ours(a, c.get("resourceLabels"))
        adopt = a.cluster.existing == name
        status = c.get("status")
        out = cluster_outputs(c, a.location)
        if not ours and not adopt:
            if tail(c.get("network")) != a.names.network or tail(c.get("subnetwork")) != a.names.subnet:
                return conflict(f"cluster {name} exists in {a.location}, was not made by mlops-install and is on "
                                f"network {tail(c.get('network'))}",
                                f"Set cluster.existing: {name} to adopt it, or choose another name prefix.")
        changes = cluster_changes(a, c) if ours and status not in ("ERROR", "STOPPING") else []
        refused = [ch for ch in changes if not ch.in_place]
        if refused:
            return Observation("conflict", "; ".join(f"{ch} cannot change in place" for ch in refused),
                               {"changes": [ch.to_dict() for ch in changes]}, remedy=way_out(a))
        fix = metadata_fix(a, c)
        if (fix or changes) and status != "PROVISIONING":
            if ours and status in ("RUNNING", "RECONCILING", "DEGRADED"):
                # ours, made for the other credentials mode: switched in place (GKE supports both changes); a new
                # node count: the node pool is resized
                why = "; ".join(([fix["why"]] if fix else []) + [str(ch) for ch in changes])
                return Observation("drifted", f"cluster {name}: {why}; it will be updated in place",
                                   {**out, "changes": [ch.to_dict() for ch in changes]})
            if fix and not ours:
                return conflict(f"cluster {name}: {fix['why']}", fix["remedy"])
        if status in ("PROVISIONING",):
            return Observation("pending", f"cluster {name} is being created", out, adopted=not ours)
        if status == "STOPPING":
            return conflict(f"cluster {name} is being deleted", "Wait until it is gone, then run again.")
        if status == "ERROR":
            if ours:
                return Observation("drifted", f"cluster {name} is in ERROR state ({c.get('statusMessage', '')}); "
                                   "it will be recreated", out)
            return conflict(f"cluster {name} is in ERROR state", "Repair or delete it, then run again.")
        return Observation("ready", f"cluster {name} is {status}", out, adopted=not ours)

    async def look(self, ctx: StepContext) -> Observation:
        obs = await unless_op_running(ctx, await self.inspect(ctx.answers), "cluster",
                                      statuses=("absent", "drifted"))
        if obs.status == "drifted" and "ERROR state" in obs.detail:
            failed = await operations.recorded_failure(ctx.outputs.get("operation"), what=f"cluster {ctx.names.cluster}")
            if failed is not None and failed.error_class == ErrorClass.QUOTA:
                # code 8 (quota, stockout): never recreated without saying where, and what to change if it fails
                # again (a stockout can clear within minutes; a quota may have been raised meanwhile)
                p = placement(ctx.answers)
                same = ctx.outputs.get("placed") in (None, p)
                ctx.log(f"the earlier create of cluster {ctx.names.cluster} failed: {failed.message}. "
                        + (f"Recreating it in the same place ({p['location']}, {p['node_count']} x "
                           f"{p['machine_type']}); if it fails again: {failed.remedy}" if same else
                           f"Recreating it as {p['node_count']} x {p['machine_type']} in {p['location']}"), "warning")
                obs.detail += f"; the earlier create failed ({failed.message})" + (
                    " and is retried in the same place" if same else "")
        return obs

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        a, name = ctx.answers, ctx.names.cluster
        what = f"cluster {name}"
        expected = ctx.spec.expected_seconds
        live = await self.get(a) if observed.status == "drifted" else None
        fix = metadata_fix(a, live) if live is not None and live.get("status") != "ERROR" else None
        changes = cluster_changes(a, live) if live is not None and live.get("status") != "ERROR" else []
        if fix or changes:
            require_consent(ctx, changes)
            if fix:
                await self._switch_mode(ctx, fix)
            if changes:
                await self._resize(ctx, live)
            c = await self.get(a)
            return cluster_outputs(c or {}, a.location)
        if observed.status == "drifted":
            ctx.log(f"{what} is in ERROR state from an earlier attempt; deleting it to create it again", "warning")
            op = await call("container", lambda s: s.projects().locations().clusters().delete(name=self._name(a)),
                            what=what, project=a.project)
            ref = operations.op_ref("container", op, a.project)
            await ctx.remember(delete_operation=ref)
            await operations.wait(ref, ctx=ctx, what=f"deleting {what}", initial=op, expected_seconds=180)
            observed = Observation("absent")
        if observed.status == "pending":
            await wait_recorded_create(ctx, what, self._wait_status)
        else:
            op = await self._create(ctx)
            if op is not None:
                ref = operations.op_ref("container", op, a.project)
                if not ref["scope"]:
                    ref["scope"] = a.location
                # before waiting: a resumed run waits on the same operation, and knows where it tried
                await ctx.remember(operation=ref, placed=placement(a))
                await operations.wait(ref, ctx=ctx, what=what, initial=op, expected_seconds=expected)
            else:
                await self._wait_status(ctx)
        c = await self.get(a)
        if c is None or c.get("status") not in ("RUNNING", "RECONCILING"):
            raise InstallerError(f"{what} is {c.get('status') if c else 'missing'} after its creation: "
                                 f"{(c or {}).get('statusMessage', '')}", error_class=ErrorClass.UNEXPECTED,
                                 remedy="Run the installer again: it recreates a cluster that failed.")
        return cluster_outputs(c, a.location)

    async def _switch_mode(self, ctx: StepContext, fix: dict) -> None:
        """Update our cluster in place for the credentials mode: the workload pool, then each pool's metadata mode
        (the nodes are recreated: minutes)."""
        a, name = ctx.answers, ctx.names.cluster
        ctx.log(f"cluster {name}: {fix['why']}; updating it for credentials: {a.credentials}", "warning")
        await self._settled(ctx)
        if fix["workload_pool"]:
            op = await call("container", lambda s: s.projects().locations().clusters().update(
                name=self._name(a), body={"update": {"desiredWorkloadIdentityConfig": {
                    "workloadPool": a.names.workload_pool}}}), what=f"cluster {name}", project=a.project)
            await operations.wait(operations.op_ref("container", op, a.project), ctx=ctx,
                                  what=f"enabling Workload Identity on {name}", initial=op, expected_seconds=120)
            await self._settled(ctx)
        for pool, mode in fix["pools"].items():
            op = await call("container", lambda s, p=pool, m=mode: s.projects().locations().clusters().nodePools()
                            .update(name=f"{self._name(a)}/nodePools/{p}", body={"workloadMetadataConfig": {"mode": m}}),
                            what=f"node pool {pool}", project=a.project)
            await operations.wait(operations.op_ref("container", op, a.project), ctx=ctx,
                                  what=f"node pool {pool} to {mode} (its nodes are recreated)", initial=op,
                                  expected_seconds=300)

    async def _resize(self, ctx: StepContext, live: dict) -> None:
        """Set our node pool's size to the answers' node count per zone (container.v1 nodePools.setSize)."""
        a, name = ctx.answers, ctx.names.cluster
        pool = (live.get("nodePools") or [{}])[0].get("name", "default-pool")
        await self._settled(ctx)
        ctx.log(f"cluster {name}: resizing node pool {pool} to {a.cluster.node_count} node(s) per zone")
        op = await call("container", lambda s: s.projects().locations().clusters().nodePools().setSize(
            name=f"{self._name(a)}/nodePools/{pool}", body={"nodeCount": a.cluster.node_count}),
            what=f"node pool {pool}", project=a.project, region=a.region)
        await operations.wait(operations.op_ref("container", op, a.project), ctx=ctx,
                              what=f"resizing node pool {pool} of {name}", initial=op, expected_seconds=300)
        await self._settled(ctx)

    async def _settled(self, ctx: StepContext) -> None:
        a = ctx.answers

        async def settled() -> bool:  # one operation at a time on a cluster (else 400 "incompatible operation")
            c = await self.get(a)
            return c is not None and c.get("status") not in ("RECONCILING", "PROVISIONING")
        await poll_until(settled, what=f"waiting for cluster {a.names.cluster} to settle", timeout=60 * 60, ctx=ctx)

    async def _create(self, ctx: StepContext) -> dict | None:
        a = ctx.answers

        def retry(err: ApiError) -> bool:  # the node service account inside its invisibility window
            return sa_not_visible(err) or (err.http == 400 and "failed to check status" in err.message.lower())
        try:
            return await call("container", lambda s: s.projects().locations().clusters().create(
                parent=f"projects/{a.project}/locations/{a.location}", body=cluster_body(a)), raw=True,
                retry_if=retry)
        except ApiError as err:
            if err.already_exists:
                return None
            raise classify(err, what=f"cluster {a.names.cluster}", project=a.project, region=a.region) from err

    async def _wait_status(self, ctx: StepContext) -> None:
        a = ctx.answers

        async def settled() -> bool:
            c = await self.get(a)
            return c is not None and c.get("status") not in ("PROVISIONING",)
        await poll_until(settled, what=f"waiting for cluster {a.names.cluster}", timeout=90 * 60, ctx=ctx)

    async def verify(self, ctx: StepContext) -> None:
        c = await self.get(ctx.answers)
        if not c or c.get("status") not in ("RUNNING", "RECONCILING"):
            raise InstallerError(f"cluster {ctx.names.cluster} is not running", error_class=ErrorClass.UNEXPECTED,
                                 remedy="Run the installer again.")

    async def destroy(self, ctx: StepContext) -> None:
        a = ctx.answers
        c = await self.get(a)
        if c is None or not is_ours(a, c.get("resourceLabels")):
            return
        # One operation at a time on a cluster ("Cluster is running incompatible operation", gcp-api-behaviour.md
        # §5; terraform waits for a resting state before deleting): a deletion already under way (an interrupted
        # destroy) is waited for, not sent again; a create, update or repair is let finish first.
        if c.get("status") in ("STOPPING", "PROVISIONING", "RECONCILING"):
            stopping = c.get("status") == "STOPPING"

            async def settled() -> bool:
                cur = await self.get(a)
                return cur is None or (not stopping and cur.get("status") not in ("PROVISIONING", "RECONCILING"))
            await poll_until(settled, what=f"waiting for cluster {a.names.cluster} "
                             + ("to be deleted (a deletion already under way)" if stopping else "to settle"),
                             timeout=60 * 60, ctx=ctx)
            if stopping or await self.get(a) is None:
                return
        op = await call("container", lambda s: s.projects().locations().clusters().delete(name=self._name(a)),
                        what=f"cluster {a.names.cluster}", project=a.project)
        await operations.wait(operations.op_ref("container", op, a.project), ctx=ctx,
                              what=f"deleting cluster {a.names.cluster}", initial=op, expected_seconds=180)


# ---------------------------------------------------------------------------------------------------- Cloud SQL

def sql_body(a: Answers) -> dict:
    return {
        "name": a.names.sql_instance,
        "databaseVersion": a.sql.database_version,
        "region": a.region,
        "settings": {
            # sqladmin v1beta4 Settings.edition: sent explicitly (installer.answers.SQL_EDITION says why)
            "edition": SQL_EDITION,
            "tier": a.sql.tier,
            "dataDiskSizeGb": str(a.sql.disk_size_gb),
            "dataDiskType": "PD_SSD",
            "storageAutoResize": True,
            "ipConfiguration": {"ipv4Enabled": True, "authorizedNetworks": []},  # reached through the proxy only
            "deletionProtectionEnabled": True,
            "userLabels": labels(a),
        },
    }


def sql_outputs(i: dict) -> dict:
    ips = [x.get("ipAddress") for x in i.get("ipAddresses") or [] if x.get("type") in ("PRIMARY", None)]
    return {"instance": i.get("name"), "connection_name": i.get("connectionName", ""),
            "public_ip": ips[0] if ips else "", "region": i.get("region", "")}


def sql_changes(a: Answers, i: dict) -> list[Change]:
    """What differs between the answers and our live instance. In place through ``instances.patch``
    (sqladmin.v1beta4: a partial update of ``settings``): the tier (the instance restarts,
    https://cloud.google.com/sql/docs/mysql/edit-instance) and a larger disk (storage only grows: "you can increase
    storage size, but you cannot decrease it", https://cloud.google.com/sql/docs/mysql/instance-settings; a smaller
    answer is no change, the disk may have grown by itself with storageAutoResize). Not in place: the region and the
    database version."""
    what, st = f"Cloud SQL instance {a.names.sql_instance}", i.get("settings") or {}
    out = []
    if i.get("region") and i.get("region") != a.region:
        out.append(Change(what, "region", i.get("region"), a.region, False))
    if i.get("databaseVersion") and i.get("databaseVersion") != a.sql.database_version:
        out.append(Change(what, "sql.database_version", i.get("databaseVersion"), a.sql.database_version, False))
    if st.get("tier") and st.get("tier") != a.sql.tier:
        out.append(Change(what, "sql.tier", st.get("tier"), a.sql.tier, True, "patched (the instance restarts)"))
    disk = int(st.get("dataDiskSizeGb") or 0)
    if disk and a.sql.disk_size_gb > disk:
        out.append(Change(what, "sql.disk_size_gb", disk, a.sql.disk_size_gb, True, "patched (storage grows)"))
    return out


async def get_sql_instance(a: Answers) -> dict | None:
    n = a.names.sql_instance
    try:
        return await call("sqladmin", lambda s: s.instances().get(project=a.project, instance=n), raw=True)
    except ApiError as err:
        if err.not_found or (err.http == 403 and "does not exist" in err.message):
            return None
        raise classify(err, what=f"Cloud SQL instance {n}", project=a.project) from err


class SqlInstanceStep(InfraStep):
    async def get(self, a: Answers) -> dict | None:
        return await get_sql_instance(a)

    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        a, n = answers, answers.names.sql_instance
        i = await self.get(a)
        if i is None:
            if a.sql.existing:
                return conflict(f"Cloud SQL instance {n} (sql.existing) was not found",
                                "Check sql.existing, or remove it to create a new instance.")
            return Observation("absent", f"Cloud SQL instance {n} does not exist")
        ours = is_ours(a, (i.get("settings") or {}).get("userLabels"))
        adopt = a.sql.existing == n
        out = sql_outputs(i)
        if not i.get("databaseVersion", "").startswith("MYSQL"):
            return conflict(f"Cloud SQL instance {n} runs {i.get('databaseVersion')}, not MySQL",
                            "Kubeflow Pipelines needs MySQL; choose another prefix or sql.existing.")
        if not ours and not adopt and (i.get("region") != a.region or i.get("databaseVersion") !=
                                       a.sql.database_version):
            return conflict(f"Cloud SQL instance {n} exists ({i.get('databaseVersion')} in {i.get('region')}) and "
                            "was not made by mlops-install",
                            f"Set sql.existing: {n} to adopt it, or choose another name prefix.")
        state = i.get("state")
        changes = sql_changes(a, i) if ours and state == "RUNNABLE" else []
        if any(not ch.in_place for ch in changes):
            return Observation("conflict", "; ".join(f"{ch} cannot change in place" for ch in changes
                                                     if not ch.in_place),
                               {"changes": [ch.to_dict() for ch in changes]}, remedy=way_out(a))
        if changes:
            return Observation("drifted", f"Cloud SQL instance {n}: " + "; ".join(str(ch) for ch in changes)
                               + "; it will be updated in place", {**out, "changes": [ch.to_dict() for ch in changes]})
        if state == "PENDING_CREATE":
            return Observation("pending", f"Cloud SQL instance {n} is being created", out, adopted=not ours)
        if state == "FAILED":
            if ours:
                return Observation("drifted", f"Cloud SQL instance {n} FAILED; it will be recreated", out)
            return conflict(f"Cloud SQL instance {n} is in FAILED state", "Repair or delete it, then run again.")
        if state in ("PENDING_DELETE",):
            return conflict(f"Cloud SQL instance {n} is being deleted", "Wait, then run again.")
        return Observation("ready", f"Cloud SQL instance {n} is {state}", out, adopted=not ours)

    async def look(self, ctx: StepContext) -> Observation:
        return await unless_op_running(ctx, await self.inspect(ctx.answers), "Cloud SQL instance")

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        a, n = ctx.answers, ctx.names.sql_instance
        what = f"Cloud SQL instance {n}"
        expected = ctx.spec.expected_seconds
        if observed.status == "drifted" and observed.outputs.get("changes"):
            return await self._patch(ctx)
        if observed.status == "drifted":
            await self._delete(ctx, force=True)
            observed = Observation("absent")
        if observed.status == "pending":
            await wait_recorded_create(ctx, what, self._wait_state)
        else:
            try:
                op = await call("sqladmin", lambda s: s.instances().insert(project=a.project, body=sql_body(a)),
                                raw=True)
            except ApiError as err:
                if not err.already_exists:
                    raise classify(err, what=what, project=a.project, region=a.region) from err
                if await self.get(a) is None:  # name reserved after a recent delete
                    raise InstallerError(f"{what}: {err.message}", error_class=ErrorClass.NAME_TAKEN,
                                         remedy="A deleted instance's name cannot be reused for a while. Choose "
                                                "another name prefix, or wait.") from err
                op = None
            if op is not None:
                ref = operations.op_ref("sqladmin", op, a.project)
                await ctx.remember(operation=ref)
                await operations.wait(ref, ctx=ctx, what=what, initial=op, expected_seconds=expected)
            else:
                await self._wait_state(ctx)
        i = await self.get(a)
        if i is None or i.get("state") != "RUNNABLE":
            raise InstallerError(f"{what} is {i.get('state') if i else 'missing'} after its creation",
                                 error_class=ErrorClass.UNEXPECTED, remedy="Run the installer again.")
        return sql_outputs(i)

    async def _patch(self, ctx: StepContext) -> dict[str, Any]:
        """Apply the in-place changes (tier, a larger disk) with one ``instances.patch``."""
        a, n = ctx.answers, ctx.names.sql_instance
        i = await self.get(a) or {}
        changes = [ch for ch in sql_changes(a, i) if ch.in_place]
        require_consent(ctx, changes)
        settings: dict[str, Any] = {}
        for ch in changes:
            if ch.field == "sql.tier":
                settings["tier"] = a.sql.tier
            elif ch.field == "sql.disk_size_gb":
                settings["dataDiskSizeGb"] = str(a.sql.disk_size_gb)
        ctx.log(f"Cloud SQL instance {n}: " + "; ".join(str(ch) for ch in changes))
        op = await call("sqladmin", lambda s: s.instances().patch(project=a.project, instance=n,
                                                                  body={"settings": settings}),
                        what=f"Cloud SQL instance {n}", project=a.project)
        await operations.wait(operations.op_ref("sqladmin", op, a.project), ctx=ctx, what=f"updating {n}",
                              initial=op, expected_seconds=60)
        return sql_outputs(await self.get(a) or i)

    async def _wait_state(self, ctx: StepContext) -> None:
        a = ctx.answers

        async def settled() -> bool:
            i = await self.get(a)
            return i is not None and i.get("state") != "PENDING_CREATE"
        await poll_until(settled, what=f"waiting for Cloud SQL instance {a.names.sql_instance}", timeout=90 * 60,
                         ctx=ctx)

    async def verify(self, ctx: StepContext) -> None:
        i = await self.get(ctx.answers)
        if not i or i.get("state") != "RUNNABLE" or not i.get("connectionName"):
            raise InstallerError(f"Cloud SQL instance {ctx.names.sql_instance} is not RUNNABLE",
                                 error_class=ErrorClass.UNEXPECTED, remedy="Run the installer again.")

    async def _delete(self, ctx: StepContext, force: bool = False) -> None:
        a, n = ctx.answers, ctx.names.sql_instance
        i = await self.get(a)
        if i is None or not (force or is_ours(a, (i.get("settings") or {}).get("userLabels"))):
            return
        if i.get("state") == "PENDING_DELETE":  # a deletion already under way (an interrupted destroy): wait for it
            async def gone() -> bool:
                return await self.get(a) is None
            await poll_until(gone, what=f"waiting for Cloud SQL instance {n} to be deleted", timeout=60 * 60, ctx=ctx)
            return
        if (i.get("settings") or {}).get("deletionProtectionEnabled"):
            op = await call("sqladmin", lambda s: s.instances().patch(
                project=a.project, instance=n, body={"settings": {"deletionProtectionEnabled": False}}),
                what=f"Cloud SQL instance {n}", project=a.project)
            await operations.wait(operations.op_ref("sqladmin", op, a.project), ctx=ctx,
                                  what=f"turning off deletion protection of {n}", initial=op)
        op = await call("sqladmin", lambda s: s.instances().delete(project=a.project, instance=n),
                        what=f"Cloud SQL instance {n}", project=a.project)
        await operations.wait(operations.op_ref("sqladmin", op, a.project), ctx=ctx, what=f"deleting {n}",
                              initial=op, expected_seconds=100)

    async def destroy(self, ctx: StepContext) -> None:
        await self._delete(ctx)


# ---------------------------------------------------------------------------------------------------- DB user

def new_password(length: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits + "-_.~"
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.islower() for c in pw) and any(c.isupper() for c in pw) and any(c.isdigit() for c in pw):
            from installer.logs import redact
            redact.register(pw)  # masked everywhere before any request can echo it (issue 14)
            return pw


def run_password(runtime: dict) -> str:
    """The run's DB password: generated once per run, kept only in ``runtime["sql_password"]`` (memory). Both the
    ``sql-user`` step (which sets it on the user) and ``mysql-secret`` (which writes it into the Secret) take it from
    here, so neither waits for the other (issue 20)."""
    pw = runtime.get("sql_password")
    if not pw:
        pw = runtime["sql_password"] = new_password()
    return pw


def user_has_password(runtime: dict) -> bool:
    """Has this run set its password on the SQL user (``sql-user`` or ``set_sql_password``)?"""
    pw = runtime.get("sql_password")
    return bool(pw) and runtime.get("_sql_password_on_user") == pw


def _password_needed(ctx: StepContext) -> bool:
    """Does another step of this run need the password (the mysql-secret step, not yet done)?"""
    return "mysql-secret" in ctx.plan.ids and ctx.status_of("mysql-secret") != "done"


async def _set_password(answers: Answers, runtime: dict, pw: str, ctx: StepContext | None) -> None:
    a, inst, user = answers, answers.names.sql_instance, answers.names.db_user
    op = await call("sqladmin", lambda s: s.users().update(project=a.project, instance=inst, name=user, host="%",
                                                           body={"name": user, "host": "%", "password": pw}),
                    what=f"database user {user}", project=a.project)
    await operations.wait(operations.op_ref("sqladmin", op, a.project), ctx=ctx,
                          what=f"setting the password of {user}", initial=op, expected_seconds=8)
    runtime["_sql_password_on_user"] = pw


async def set_sql_password(answers: Answers, runtime: dict, ctx: StepContext | None = None) -> str:
    """Give user ``kfp`` a new generated password and put it in ``runtime["sql_password"]`` (never elsewhere).

    For the secrets backend: call it when ``mysql-secret`` must be (re)written, the runtime has no password and the
    user was made by an earlier run (a resume: its password lived only in that run's memory).
    """
    runtime.pop("sql_password", None)
    pw = run_password(runtime)
    await _set_password(answers, runtime, pw, ctx)
    return pw


class SqlUserStep(InfraStep):
    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        a, inst, user = answers, answers.names.sql_instance, answers.names.db_user
        try:
            resp = await call("sqladmin", lambda s: s.users().list(project=a.project, instance=inst), raw=True)
        except ApiError as err:
            if err.not_found:
                return Observation("absent", f"instance {inst} does not exist yet")
            raise classify(err, what=f"users of {inst}", project=a.project) from err
        out = {"user": user, "instance": inst}
        if any(u.get("name") == user for u in resp.get("items") or []):
            return Observation("ready", f"database user {user} exists", out)
        return Observation("absent", f"database user {user} does not exist", out)

    async def look(self, ctx: StepContext) -> Observation:
        obs = await self.inspect(ctx.answers)
        if obs.status != "ready" or user_has_password(ctx.runtime):
            return obs
        if ctx.runtime.get("sql_password"):
            # mysql-secret wrote this run's password (generated at the start of the run): the user must get it
            return Observation("drifted", "database user exists; it gets this run's password (the one in "
                               "mysql-secret)", obs.outputs)
        if _password_needed(ctx):
            return Observation("drifted", "database user exists; its password is not known to this run and will "
                               "be reset", obs.outputs)
        return obs

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        a, inst, user = ctx.answers, ctx.names.sql_instance, ctx.names.db_user
        pw = run_password(ctx.runtime)  # the run's password: mysql-secret writes the same one
        if observed.status == "drifted":
            await _set_password(a, ctx.runtime, pw, ctx)
        else:
            try:
                op = await call("sqladmin", lambda s: s.users().insert(
                    project=a.project, instance=inst, body={"name": user, "host": "%", "password": pw}), raw=True)
                await operations.wait(operations.op_ref("sqladmin", op, a.project), ctx=ctx,
                                      what=f"creating database user {user}", initial=op, expected_seconds=8)
                ctx.runtime["_sql_password_on_user"] = pw
            except ApiError as err:
                if not err.already_exists:
                    raise classify(err, what=f"database user {user}", project=a.project) from err
                await _set_password(a, ctx.runtime, pw, ctx)
            except InstallerError as exc:
                if "already exists" not in exc.message.lower():
                    raise
                await _set_password(a, ctx.runtime, pw, ctx)
        return {"user": user, "instance": inst}

    async def destroy(self, ctx: StepContext) -> None:
        a, inst, user = ctx.answers, ctx.names.sql_instance, ctx.names.db_user
        try:
            op = await call("sqladmin", lambda s: s.users().delete(project=a.project, instance=inst, name=user,
                                                                   host="%"), raw=True)
        except ApiError as err:
            if err.not_found:
                return
            raise classify(err, what=f"database user {user}", project=a.project) from err
        await operations.wait(operations.op_ref("sqladmin", op, a.project), ctx=ctx, what=f"deleting {user}",
                              initial=op)


async def planned_changes(a: Answers) -> list[Change]:
    """Every setting of our existing cluster and SQL instance that differs from the answers (read-only: the
    preflight's "changes" check; the steps' ``look`` says the same per step)."""
    async def cluster() -> list[Change]:
        c = await get_cluster(a)
        if c is None:
            moved = await cluster_elsewhere(a)
            return [moved] if moved else []
        ours = is_ours(a, c.get("resourceLabels"))
        return cluster_changes(a, c) if ours and c.get("status") not in ("ERROR", "STOPPING") else []

    async def sql() -> list[Change]:
        i = await get_sql_instance(a)
        ours = i is not None and is_ours(a, (i.get("settings") or {}).get("userLabels"))
        return sql_changes(a, i) if ours and i.get("state") == "RUNNABLE" else []
    found = await asyncio.gather(cluster(), sql())
    return [ch for group in found for ch in group]


STEPS = {
    "apis": ApisStep,
    "network": NetworkStep,
    "subnet": SubnetStep,
    "gke-sa": GkeSaStep,
    "kfp-sa": KfpSaStep,
    "gke-sa-roles": GkeRolesStep,
    "kfp-sa-roles": KfpRolesStep,
    "cluster": ClusterStep,
    "sql-instance": SqlInstanceStep,
    "sql-user": SqlUserStep,
    "bucket": BucketStep,
    "bucket-roles": BucketRolesStep,
}
