"""Kubeflow Pipelines steps: ``kfp-cluster-scoped``, ``kfp-deploy``, ``kfp-ready``, ``kfp-ui`` (``kfp-db-components`` is
``backends.kfp.db_stages``'s; what the steps share, ``backends.kfp.common``'s).

Order (target-environment.md): cluster-scoped objects -> every CRD Established -> namespaced objects by server-side
apply (field manager ``mlops-install``, one progress event per object) -> every Deployment Available (naming the
laggards and their conditions) -> ConfigMap ``inverse-proxy-config`` key ``Hostname`` -> ``https://<Hostname>``.

Only the journal's cluster is used (``backends.k8s.cluster.connect`` refuses any other). A re-run changes nothing:
``look`` compares the digest of what would be applied now with the digest recorded when it was applied, and checks
that every object still exists (read-only list calls).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from installer.errors import ErrorClass, InstallerError
from installer.steps import BaseStep, Observation, StepContext

from backends.infra.changes import Change, require_consent

from backends.k8s.apply import (WaitTimeout, apply_all, ask_consent, deployment_available, missing_objects,
                                object_record, sort_for_apply, wait_configmap_key, wait_crds_established)
from backends.k8s.client import KubeClient, KubeError, obj_ref, time_scale
from backends.k8s.diagnose import explain, selector

from . import render as R
from .common import READY_TIMEOUT, kube_client, kube_error, not_available, rendered
from .db_stages import DB_STEP, KfpDbComponents, is_held, with_replicas

UI_TIMEOUT = 900.0
UI_CONFIGMAP = "inverse-proxy-config"
PROXY_AGENT = "proxy-agent"  # the inverse-proxy agent of env/gcp (registers the UI, writes Hostname)


class _ApplyStep(BaseStep):
    part = "env"

    async def look(self, ctx: StepContext) -> Observation:
        client = await kube_client(ctx)
        r = await rendered(ctx, self.part)
        try:
            missing = await missing_objects(client, r.objects)
        except KubeError as exc:
            raise kube_error(exc, "reading the cluster") from exc
        rec = ctx.outputs
        change = self._version_change(ctx)
        if change is not None:
            return Observation("drifted", str(change), outputs={"changes": [change.to_dict()]})
        same = rec.get("digest") == r.digest and rec.get("cluster_endpoint") == client.endpoint
        if not missing and same and await self._settled(ctx, client, r):
            return Observation("ready", outputs=self._outputs(ctx, client, r))
        if len(missing) == len(r.objects) or (missing and not rec.get("digest")):
            return Observation("absent")  # never applied by this installer (the namespace step's Namespace aside)
        why = (f"{len(missing)} objects missing (e.g. {missing[0]})" if missing else
               "the manifests differ from what was applied" if not same else "not settled")
        return Observation("drifted", why)

    async def _settled(self, ctx: StepContext, client: KubeClient, r: R.Rendered) -> bool:
        return True

    def _outputs(self, ctx: StepContext, client: KubeClient, r: R.Rendered) -> dict[str, Any]:
        return {"digest": r.digest, "objects": len(r.objects), "cluster_endpoint": client.endpoint,
                "source": r.source.description, "tool": r.tool, "version": ctx.answers.kfp.version}

    def _version_change(self, ctx: StepContext) -> Change | None:
        """``kfp.version`` differs from the version this step applied: an upgrade (or downgrade) in place."""
        old, new = ctx.outputs.get("version"), ctx.answers.kfp.version
        if not old or old == new:
            return None
        return Change(f"KFP {self.part} objects in {ctx.answers.kfp.namespace}", "kfp.version", old, new, True,
                      f"apply Kubeflow Pipelines {new} and remove the objects of {old} that {new} lacks")

    async def _consent_to_manifests(self, ctx: StepContext, r: R.Rendered) -> None:
        """A local manifests folder that differs from its release (objects added or missing, cluster-wide RBAC not
        in the release) is applied only with consent (``--yes`` or the wizard's confirm); it is always said."""
        if r.source.kind == "upstream":
            return
        from .release import compare
        rev = compare(r.objects, self.part, ctx.answers.kfp.version, ctx.answers.kfp.namespace)
        if not rev.differs:
            return
        text = "; ".join(rev.lines())
        question = (f"The KFP {self.part} objects of {r.source.description} differ from Kubeflow Pipelines "
                    f"{ctx.answers.kfp.version}: {text}. Apply them?")
        if not await ask_consent(ctx.runtime, question):
            raise InstallerError(f"the KFP {self.part} manifests differ from Kubeflow Pipelines "
                                 f"{ctx.answers.kfp.version}: {text}", error_class=ErrorClass.CONFLICT,
                                 remedy="Check the folder (`mlops-install plan` lists the differences); to apply it as "
                                        "it is, run again with --yes.")
        ctx.log(f"applying manifests that differ from the release, as agreed: {text}", "warning")

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        client = await kube_client(ctx)
        r = await rendered(ctx, self.part)
        change = self._version_change(ctx)
        if change is not None:
            require_consent(ctx, [change])  # --yes (runtime apply_changes), or the wizard's confirm
            ctx.log(f"{change}: {change.how}", "warning")
        await self._consent_to_manifests(ctx, r)
        objs = r.objects
        rec = ctx.outputs
        missing = set(await missing_objects(client, r.objects))
        if rec.get("digest") == r.digest and rec.get("cluster_endpoint") == client.endpoint:
            # the same manifests were applied to this cluster before: only what has gone missing is applied again
            objs = [o for o in r.objects if obj_ref(o) in missing] or r.objects
        # What existed before the install stays when it is destroyed: recorded before anything is applied. An object
        # is ours when it was missing when we first applied it (now, or in an earlier run of this step).
        ours = {_key(o) for o in rec.get("created") or []} | {_key(object_record(o)) for o in r.objects
                                                               if obj_ref(o) in missing}
        # objects this installer created for an earlier version that this one no longer has: removed once the new
        # objects are applied (only ours: what existed before the install is never deleted)
        wanted = {_key(object_record(o)) for o in r.objects}
        stale = [o for o in rec.get("created") or [] if _key(o) not in wanted] if change is not None else []
        before = set(rec.get("preexisting") or [])
        created = [object_record(o) for o in r.objects if _key(object_record(o)) in ours]
        preexisting = sorted(before | {obj_ref(o) for o in r.objects if _key(object_record(o)) not in ours})
        # the stale objects stay recorded until they are gone (an interrupted upgrade removes them on resume)
        await ctx.remember(created=created + stale, preexisting=preexisting)
        if preexisting:
            ctx.log(f"{len(preexisting)} object(s) existed before this step applied them and are not deleted by its destroy: "
                    + ", ".join(preexisting[:8]) + (" ..." if len(preexisting) > 8 else ""))
        ctx.log(f"applying {len(objs)} of {len(r.objects)} objects from {r.source.description} (built with "
                f"{r.tool}) to cluster {client.cluster} at {client.endpoint}")

        def progress(i: int, n: int, ref: str) -> None:
            ctx.progress(f"applied {ref} ({i}/{n})", i / n)

        forced: list[str] = list(rec.get("forced") or [])

        async def on_conflict(obj: dict, why: str) -> bool:
            ref = obj_ref(obj)
            first = why.splitlines()[0] if why else "fields owned by another field manager"
            if not await ask_consent(ctx.runtime, f"{ref}: {first}. Take these fields over?"):
                return False
            ctx.log(f"{ref}: another field manager owns fields the KFP manifests set ({why.replace(chr(10), '; ')}); "
                    "taken over by mlops-install (forced server-side apply), as agreed", "warning")
            forced.append(ref)
            await ctx.remember(forced=sorted(set(forced)))
            return True

        try:
            await apply_all(client, self._prepare(ctx, objs), progress, on_conflict)
            await self._after_apply(ctx, client, r)
            if stale:
                await self._prune(ctx, client, stale)
                await ctx.remember(created=created)
        except KubeError as exc:
            if exc.status == 409:
                raise InstallerError(f"applying the KFP {self.part} objects: {exc.message}",
                                     error_class=ErrorClass.CONFLICT,
                                     remedy="Another field manager owns fields of an object that existed before; "
                                            "run again with --yes to let mlops-install take them over.") from exc
            raise kube_error(exc, f"applying the KFP {self.part} objects") from exc
        return self._outputs(ctx, client, r)

    def _prepare(self, ctx: StepContext, objs: list[dict]) -> list[dict]:
        """The objects as they are applied (``KfpDeploy`` holds some Deployments back)."""
        return objs

    async def _after_apply(self, ctx: StepContext, client: KubeClient, r: R.Rendered) -> None:
        return None

    async def _prune(self, ctx: StepContext, client: KubeClient, stale: list[dict]) -> None:
        """Delete what an earlier version had and this one lacks (the journal's records of what we created)."""
        await _delete_all(ctx, client, list(reversed(sort_for_apply(destroy_targets({"created": stale})))),
                          f"which Kubeflow Pipelines {ctx.answers.kfp.version} no longer has", verb="removed")

    async def destroy(self, ctx: StepContext) -> None:
        """Delete what this step created (in reverse apply order): the objects the journal records as missing
        before the install applied them (``created``, what ``mlops-install destroy`` lists); what existed before
        (a Namespace, a CRD, anything: ``preexisting``) stays."""
        client = await kube_client(ctx)
        objs = list(reversed(sort_for_apply(destroy_targets(ctx.outputs) or [])))
        if not objs and "created" not in ctx.outputs:  # a journal from before the record existed: what we applied
            r = await rendered(ctx, self.part)
            keep = set(ctx.outputs.get("preexisting") or [])
            objs = [o for o in reversed(sort_for_apply(r.objects)) if obj_ref(o) not in keep]
        await _delete_all(ctx, client, objs)

    async def verify(self, ctx: StepContext) -> None:
        client = await kube_client(ctx)
        r = await rendered(ctx, self.part)
        missing = await missing_objects(client, r.objects)
        if missing:
            raise InstallerError(f"{len(missing)} objects missing after applying them: {', '.join(missing[:5])}",
                                 error_class=ErrorClass.UNEXPECTED, remedy="Run the installer again.")


async def _delete_all(ctx: StepContext, client: KubeClient, objs: list[dict], why: str = "",
                      verb: str = "deleted") -> None:
    """Delete ``objs`` in order (a 404 is already gone), one progress event each."""
    for i, o in enumerate(objs, 1):
        md = o["metadata"]
        try:
            await asyncio.to_thread(client.delete, o["apiVersion"], o["kind"], md["name"], md.get("namespace"))
        except KubeError as exc:
            if exc.status != 404:
                raise
        ctx.progress(f"{verb} {obj_ref(o)}" + (f", {why}" if why else "") + f" ({i}/{len(objs)})", i / len(objs))


def _key(rec: dict) -> tuple:
    return (rec.get("kind"), rec.get("namespace"), rec.get("name"))


def destroy_targets(outputs: dict[str, Any]) -> list[dict]:
    """The objects a destroy deletes, from the step's journal record (as objects: apiVersion, kind, metadata)."""
    out = []
    for rec in outputs.get("created") or []:
        md = {"name": rec["name"], **({"namespace": rec["namespace"]} if rec.get("namespace") else {})}
        out.append({"apiVersion": rec["apiVersion"], "kind": rec["kind"], "metadata": md})
    return out


def _crds(r: R.Rendered) -> list[str]:
    return [o["metadata"]["name"] for o in r.objects if o.get("kind") == "CustomResourceDefinition"]


class KfpClusterScoped(_ApplyStep):
    part = "cluster-scoped"

    async def _settled(self, ctx: StepContext, client: KubeClient, r: R.Rendered) -> bool:
        for name in _crds(r):
            crd = await asyncio.to_thread(client.get, "apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
            conds = {c.get("type"): c.get("status") for c in ((crd or {}).get("status") or {}).get("conditions") or []}
            if conds.get("Established") != "True":
                return False
        return True

    async def _after_apply(self, ctx: StepContext, client: KubeClient, r: R.Rendered) -> None:
        crds = _crds(r)
        since = time.time()
        ctx.waiting(f"{len(crds)} CRDs to be Established", since=since, expected_seconds=5)
        try:
            await wait_crds_established(client, crds, on_wait=lambda pending: ctx.progress(
                f"waiting for CRDs to be Established: {', '.join(pending[:3])}"
                + (f" and {len(pending) - 3} more" if len(pending) > 3 else "")))
        except WaitTimeout as exc:
            raise InstallerError(str(exc), error_class=ErrorClass.TIMEOUT,
                                 remedy="Run the installer again; check the cluster's API server health.") from exc
        ctx.progress(f"{len(crds)} CRDs Established", 1.0)

    def _outputs(self, ctx: StepContext, client: KubeClient, r: R.Rendered) -> dict[str, Any]:
        return {**super()._outputs(ctx, client, r), "crds": len(_crds(r))}


class KfpDeploy(_ApplyStep):
    part = "env"

    def _prepare(self, ctx: StepContext, objs: list[dict]) -> list[dict]:
        """Until the database components have been released once (``kfp-db-components`` done), the Deployments of
        ``HELD`` are applied with 0 replicas: their objects exist, no pod starts (none crash-loops)."""
        if ctx.status_of(DB_STEP) == "done":
            return objs
        held = [o["metadata"]["name"] for o in objs if is_held(o)]
        if held:
            ctx.log(f"{len(held)} components wait for the database (applied with 0 replicas, started by "
                    f"{DB_STEP} once the SQL user exists): {', '.join(held)}")
        return [with_replicas(o, 0) if is_held(o) else o for o in objs]


def _deployments(r: R.Rendered) -> list[str]:
    return [o["metadata"]["name"] for o in r.objects if o.get("kind") == "Deployment"]


class KfpReady(BaseStep):
    """Every KFP Deployment Available (read-only)."""

    async def look(self, ctx: StepContext) -> Observation:
        client = await kube_client(ctx)
        names = _deployments(await rendered(ctx, "env"))
        items = await asyncio.to_thread(client.list, "apps/v1", "Deployment", ctx.answers.kfp.namespace)
        by = {d["metadata"]["name"]: d for d in items}
        if names and all(n in by and deployment_available(by[n]) for n in names):
            return Observation("ready", outputs={"deployments": len(names)})
        return Observation("pending", "Deployments not all Available yet")

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        client = await kube_client(ctx)
        names = _deployments(await rendered(ctx, "env"))
        ns = ctx.answers.kfp.namespace
        ctx.waiting(f"{len(names)} KFP Deployments in {ns} to become Available", since=time.time(),
                    expected_seconds=ctx.spec.expected_seconds)
        deadline = time.monotonic() + max(READY_TIMEOUT * time_scale(), 2.0)
        last = None
        while True:
            items = await asyncio.to_thread(client.list, "apps/v1", "Deployment", ns)
            by = {d["metadata"]["name"]: d for d in items}
            lag = [n for n in names if n not in by or not deployment_available(by[n])]
            if (len(names) - len(lag), len(names)) != last:
                last = (len(names) - len(lag), len(names))
                tail = (f"; waiting for {', '.join(lag[:4])}" + (f" and {len(lag) - 4} more" if len(lag) > 4
                                                                 else "")) if lag else ""
                ctx.progress(f"{last[0]}/{len(names)} Deployments Available{tail}",
                             last[0] / len(names) if names else None)
            if names and not lag:
                return {"deployments": len(names)}
            if lag == [PROXY_AGENT] and PROXY_AGENT in by:
                await self._proxy_not_serving(ctx, client, by[PROXY_AGENT])
            if time.monotonic() > deadline:
                raise await not_available(client, ns, lag, by, len(names))
            await asyncio.sleep(max(2.0 * time_scale(), 0.02))  # a list call: cheap, so a short notice lag

    async def _proxy_not_serving(self, ctx: StepContext, client: KubeClient, dep: dict) -> None:
        """Everything but the inverse-proxy agent is up and the agent keeps exiting: KFP runs, but the UI address
        will not come. Say so (with the agent's own words) and how to reach the UI without it; don't wait it out.
        A restart or two is normal while the agent registers, so only a container that exited twice counts."""
        ns = ctx.answers.kfp.namespace
        pods = await asyncio.to_thread(client.list, "v1", "Pod", ns, selector(dep))
        restarts = max((cs.get("restartCount") or 0 for p in pods
                        for cs in (p.get("status") or {}).get("containerStatuses") or []), default=0)
        if restarts < 2:
            return
        why = (await asyncio.to_thread(explain, client, ns, [dep])).get(PROXY_AGENT, "")
        raise InstallerError(
            f"Kubeflow Pipelines is running, but the inverse proxy is not serving: {PROXY_AGENT} keeps exiting "
            f"({why})", error_class=ErrorClass.CONFLICT,
            remedy=f"Reach the UI without it: `kubectl -n {ns} port-forward svc/ml-pipeline-ui 8080:80`, then open "
                   "http://localhost:8080 (--write-kubeconfig adds the cluster to your kubeconfig). The inverse proxy "
                   "serves only some regions; see the proxy-agent log "
                   f"(`kubectl -n {ns} logs deploy/{PROXY_AGENT} --previous`). Run the installer again to retry.",
            details={"laggards": {PROXY_AGENT: why}})


class KfpUi(BaseStep):
    """Poll ConfigMap inverse-proxy-config until ``Hostname`` is set; output ``ui_url`` (read-only)."""

    async def look(self, ctx: StepContext) -> Observation:
        client = await kube_client(ctx)
        cm = await asyncio.to_thread(client.get, "v1", "ConfigMap", UI_CONFIGMAP, ctx.answers.kfp.namespace)
        host = ((cm or {}).get("data") or {}).get("Hostname")
        if host:
            return Observation("ready", outputs={"ui_url": f"https://{host}", "hostname": host})
        return Observation("pending", "the inverse proxy has not registered yet")

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        client = await kube_client(ctx)
        ns = ctx.answers.kfp.namespace
        since = time.time()
        ctx.waiting(f"ConfigMap {ns}/{UI_CONFIGMAP} to get its Hostname (the inverse proxy registering)",
                    since=since, expected_seconds=ctx.spec.expected_seconds)
        try:
            host = await wait_configmap_key(client, ns, UI_CONFIGMAP, "Hostname", timeout=UI_TIMEOUT,
                                            on_wait=lambda: ctx.progress(
                                                f"waiting for the inverse proxy ({time.time() - since:.0f}s)"))
        except WaitTimeout as exc:
            raise InstallerError(str(exc), error_class=ErrorClass.TIMEOUT,
                                 remedy=f"KFP itself is running. Check the proxy-agent pod (kubectl -n {ns} logs "
                                        "deploy/proxy-agent): its zone must be served by the inverse proxy. "
                                        f"Meanwhile reach the UI with `kubectl -n {ns} port-forward "
                                        "svc/ml-pipeline-ui 8080:80` (see --write-kubeconfig). Run the installer "
                                        "again to resume waiting.") from exc
        url = f"https://{host}"
        ctx.log(f"Kubeflow Pipelines UI: {url}")
        return {"ui_url": url, "hostname": host}


STEPS = {
    "kfp-cluster-scoped": KfpClusterScoped,
    "kfp-deploy": KfpDeploy,
    DB_STEP: KfpDbComponents,
    "kfp-ready": KfpReady,
    "kfp-ui": KfpUi,
}
