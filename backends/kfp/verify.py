"""``kfp-verify``: the install ends with a first pipeline run, through KFP's own REST client.

Deployments being Available does not prove that runs work (a wrong pipeline root, a runner without access to the
bucket, a broken database connection only show when a task runs). This step uploads a small pipeline shipped
with the installer (``pipelines/verify.yaml``, compiled from ``pipelines/verify.py``: one component writes an
output artifact to the pipeline root, a second reads it), starts a run in the experiment ``mlops-install``,
waits for it (bounded, with progress) and reports the run's UI link, or the failing task with its pod's reason and
last log lines.

The KFP API is reached through the cluster's API server, the Kubernetes service proxy to ``ml-pipeline:8888``
(``/api/v1/namespaces/NS/services/ml-pipeline:8888/proxy/apis/v2beta1/...``), with the Google token the other
Kubernetes steps use: it works in every region and before the inverse proxy serves. The client is
``kfp_server_api`` (KFP's generated REST client), imported lazily in a thread (kept off start-up).

Idempotent: ``look`` finds a succeeded run named for this KFP version and this pipeline in the experiment and
starts nothing. ``destroy`` deletes the runs, the experiment and the pipeline the step recorded.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import time
from pathlib import Path
from typing import Any

from installer.errors import ErrorClass, InstallerError
from installer.steps import BaseStep, Observation, StepContext

from backends.k8s.client import KubeClient, time_scale

PIPELINE_FILE = Path(__file__).with_name("pipelines") / "verify.yaml"
EXPERIMENT = "mlops-install"
SERVICE = "ml-pipeline:8888"  # manifests: Service ml-pipeline, port http 8888 (the REST API)
RUN_TIMEOUT = 900.0  # seconds at speed 1: pulls of python:3.11-slim on new nodes dominate
HEALTH_TIMEOUT = 180.0
LOG_LINES = 5


def pipeline_digest() -> str:
    return hashlib.sha256(PIPELINE_FILE.read_bytes()).hexdigest()[:10]


def pipeline_name() -> str:
    return f"mlops-install-verify-{pipeline_digest()}"


def run_name(version: str) -> str:
    return f"verify KFP {version} ({pipeline_digest()})"


def run_link(ui_url: str | None, run_id: str) -> str:
    """The KFP UI's run page (kubeflow/pipelines@2.14.4 frontend/src/components/Router.tsx: RUN_DETAILS
    ``/runs/details/:runid``, hash routing)."""
    return f"{ui_url.rstrip('/')}/#/runs/details/{run_id}" if ui_url else ""


class _Api:
    """KFP's REST client through the service proxy, with the Kubernetes client's CA and token (blocking: use from
    a thread)."""

    def __init__(self, kube: KubeClient, namespace: str) -> None:
        import kfp_server_api as K
        import urllib3

        cfg = K.Configuration(host=f"{kube.configuration.host}/api/v1/namespaces/{namespace}/services/{SERVICE}/proxy")
        cfg.api_key = {"authorization": ""}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        cfg.refresh_api_key_hook = lambda c: c.api_key.__setitem__("authorization", kube.tokens.token())
        self.client = K.ApiClient(cfg)
        # the cluster CA in memory (kfp_server_api only takes a CA file): the same trust as the Kubernetes client
        ca = kube.configuration.ca_cert_data
        if ca:
            context = ssl.create_default_context(cadata=ca)
            self.client.rest_client.pool_manager = urllib3.PoolManager(num_pools=2, maxsize=4, ssl_context=context)
        self.K = K
        # what a call may raise: the API's answer, or no answer at all (connection refused, timeout: status 0)
        self.errors = (K.ApiException, urllib3.exceptions.HTTPError)
        self.health = K.HealthzServiceApi(self.client)
        self.pipelines = K.PipelineServiceApi(self.client)
        self.upload = K.PipelineUploadServiceApi(self.client)
        self.experiments = K.ExperimentServiceApi(self.client)
        self.runs = K.RunServiceApi(self.client)

    @staticmethod
    def eq(key: str, value: str) -> str:
        return json.dumps({"predicates": [{"key": key, "operation": "EQUALS", "string_value": value}]})

    def find_experiment(self) -> Any:
        res = self.experiments.experiment_service_list_experiments(filter=self.eq("display_name", EXPERIMENT),
                                                                   page_size=10)
        return next(iter(res.experiments or []), None)

    def find_pipeline(self, name: str) -> Any:
        res = self.pipelines.pipeline_service_list_pipelines(filter=self.eq("display_name", name), page_size=10)
        return next(iter(res.pipelines or []), None)

    def verification_runs(self, experiment_id: str, name: str) -> list[Any]:
        res = self.runs.run_service_list_runs(experiment_id=experiment_id, filter=self.eq("display_name", name),
                                              page_size=50)
        return list(res.runs or [])


def _status(exc: Exception) -> int:
    """The HTTP status of a failed call; 0 when the API did not answer (urllib3's connection errors)."""
    return getattr(exc, "status", 0) or 0


def _api_error(exc: Exception, what: str) -> InstallerError:
    status = _status(exc)
    body = getattr(exc, "body", "") or ""
    try:
        msg = json.loads(body).get("message") or body
    except (ValueError, AttributeError):
        msg = body or str(exc)
    cls = ErrorClass.TRANSIENT if status in (0, 429) or status >= 500 else ErrorClass.UNEXPECTED
    if status == 403:
        cls = ErrorClass.PERMISSION_DENIED
    return InstallerError(f"KFP API ({what}): {status or ''} {msg}".replace("  ", " ").strip(), error_class=cls,
                          remedy="Run the installer again to resume (the verification starts no second run while "
                                 "one is under way); --no-verify skips it.")


class KfpVerify(BaseStep):
    async def _api(self, ctx: StepContext) -> tuple[_Api, KubeClient]:
        from backends.k8s.cluster import connect

        kube = await connect(ctx)
        return await asyncio.to_thread(_Api, kube, ctx.answers.kfp.namespace), kube

    async def look(self, ctx: StepContext) -> Observation:
        api, _ = await self._api(ctx)
        try:
            found = await asyncio.to_thread(self._existing, api, ctx.answers.kfp.version)
        except api.errors as exc:
            if _status(exc) in (0, 503):  # ml-pipeline has no ready endpoint (yet): apply waits for it
                return Observation("absent")
            raise _api_error(exc, "reading the verification runs") from exc
        if found is None:
            return Observation("absent")
        state, run = found
        if state == "SUCCEEDED":
            return Observation("ready", outputs=self._outputs(ctx, run, ctx.outputs.get("seconds")))
        return Observation("pending", f"verification run {run.run_id} is {state}")

    @staticmethod
    def _existing(api: _Api, version: str) -> tuple[str, Any] | None:
        exp = api.find_experiment()
        if exp is None:
            return None
        runs = api.verification_runs(exp.experiment_id, run_name(version))
        for want in ("SUCCEEDED", "RUNNING", "PENDING"):
            run = next((r for r in runs if r.state == want), None)
            if run is not None:
                return want, run
        return None

    def _outputs(self, ctx: StepContext, run: Any, seconds: float | None) -> dict[str, Any]:
        ui = (ctx.outputs_of("kfp-ui") or {}).get("ui_url")
        out = {"run_id": run.run_id, "experiment_id": run.experiment_id, "state": run.state,
               "run_url": run_link(ui, run.run_id), "version": ctx.answers.kfp.version,
               "pipeline": pipeline_name()}
        ref = run.pipeline_version_reference
        if ref is not None and ref.pipeline_id:
            out["pipeline_id"] = ref.pipeline_id
        if seconds is not None:
            out["seconds"] = round(float(seconds), 1)
        return out

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        api, kube = await self._api(ctx)
        ns = ctx.answers.kfp.namespace
        scale = time_scale()
        await self._healthy(ctx, api)
        t0 = time.monotonic()
        try:
            found = await asyncio.to_thread(self._existing, api, ctx.answers.kfp.version)
            if found is not None and found[0] in ("RUNNING", "PENDING"):
                run = found[1]  # a run an interrupted install started: wait for it instead of starting another
                ctx.log(f"waiting for the verification run {run.run_id} started earlier")
            else:
                run = await asyncio.to_thread(self._start, ctx, api)
                await ctx.remember(run_id=run.run_id, experiment_id=run.experiment_id,
                                   pipeline_id=run.pipeline_version_reference.pipeline_id)
                ctx.log(f"started verification run {run.run_id} ({pipeline_name()})")
        except api.errors as exc:
            raise _api_error(exc, "starting the verification run") from exc
        ctx.waiting(f"verification run {run.run_id} (write an artifact to the pipeline root, read it back)",
                    since=time.time(), expected_seconds=ctx.spec.expected_seconds)
        deadline = time.monotonic() + max(RUN_TIMEOUT * scale, 5.0)
        last = None
        while True:
            try:
                run = await asyncio.to_thread(api.runs.run_service_get_run, run.run_id)
            except api.errors as exc:
                if _status(exc) not in (0, 429) and _status(exc) < 500:
                    raise _api_error(exc, "reading the verification run") from exc
                await asyncio.sleep(max(2.0 * scale, 0.05))
                continue
            tasks = list((run.run_details.task_details if run.run_details else None) or [])
            line = ", ".join(f"{t.display_name} {(t.state or 'PENDING').lower()}" for t in tasks) or "no task yet"
            if (run.state, line) != last:
                last = (run.state, line)
                done = sum(1 for t in tasks if t.state == "SUCCEEDED")
                ctx.progress(f"run {(run.state or 'PENDING').lower()}: {line}", done / 2)
            if run.state == "SUCCEEDED":
                seconds = time.monotonic() - t0
                out = self._outputs(ctx, run, seconds)
                ctx.log(f"verified: pipeline run succeeded in {seconds:.0f}s" +
                        (f" ({out['run_url']})" if out["run_url"] else ""))
                return out
            if run.state in ("FAILED", "CANCELED", "CANCELING") or (run.state == "RUNNING" and any(
                    t.state == "FAILED" for t in tasks)):
                raise await self._failure(ctx, kube, ns, run, tasks)
            if time.monotonic() > deadline:
                raise InstallerError(
                    f"the verification run {run.run_id} did not finish in {RUN_TIMEOUT:.0f}s (state "
                    f"{run.state}: {line})", error_class=ErrorClass.TIMEOUT,
                    remedy=f"See its pods (kubectl -n {ns} get pods -l pipeline/runid={run.run_id}); run the "
                           "installer again to go on waiting for it, or use --no-verify to skip the verification.")
            await asyncio.sleep(max(2.0 * scale, 0.05))

    async def _healthy(self, ctx: StepContext, api: _Api) -> None:
        """ml-pipeline answers healthz through the proxy (503 until an endpoint is ready)."""
        deadline = time.monotonic() + max(HEALTH_TIMEOUT * time_scale(), 3.0)
        while True:
            try:
                await asyncio.to_thread(api.health.healthz_service_get_healthz)
                return
            except api.errors as exc:
                if _status(exc) not in (0, 429, 502, 503, 504) or time.monotonic() > deadline:
                    raise _api_error(exc, "healthz") from exc
                ctx.progress("waiting for the KFP API (ml-pipeline) to answer")
            await asyncio.sleep(max(2.0 * time_scale(), 0.05))

    def _start(self, ctx: StepContext, api: _Api) -> Any:
        K = api.K
        name = pipeline_name()
        pipe = api.find_pipeline(name) or api.upload.upload_pipeline(
            str(PIPELINE_FILE), name=name, display_name=name,
            description="mlops-install: write an artifact to the pipeline root, read it back")
        versions = api.pipelines.pipeline_service_list_pipeline_versions(pipe.pipeline_id, page_size=1)
        version = next(iter(versions.pipeline_versions or []))
        exp = api.find_experiment() or api.experiments.experiment_service_create_experiment(
            K.V2beta1Experiment(display_name=EXPERIMENT, description="runs of mlops-install (the verification)"))
        body = K.V2beta1Run(display_name=run_name(ctx.answers.kfp.version), experiment_id=exp.experiment_id,
                            pipeline_version_reference=K.V2beta1PipelineVersionReference(
                                pipeline_id=pipe.pipeline_id, pipeline_version_id=version.pipeline_version_id),
                            runtime_config=K.V2beta1RuntimeConfig(parameters={}))
        return api.runs.run_service_create_run(body)

    async def _failure(self, ctx: StepContext, kube: KubeClient, ns: str, run: Any, tasks: list) -> InstallerError:
        """The failing task, its pod's reason (the main container's terminated state) and its last log lines."""
        bad = next((t for t in tasks if t.state == "FAILED"), None)
        task = bad.display_name if bad else "?"
        pod = (bad.pod_name or next((c.pod_name for c in bad.child_tasks or [] if c.pod_name), "")) if bad else ""
        reason, logs = "", ""
        if pod:
            obj = await asyncio.to_thread(kube.get, "v1", "Pod", pod, ns)
            st = next((s for s in ((obj or {}).get("status") or {}).get("containerStatuses") or []
                       if s.get("name") == "main"), {})
            term = (st.get("state") or {}).get("terminated") or {}
            if term:
                reason = f"{term.get('reason', 'Error')}, exit code {term.get('exitCode')}"
            try:
                logs = await asyncio.to_thread(kube.logs, ns, pod, "main", tail=LOG_LINES)
            except InstallerError:
                logs = ""
        msg = f"the verification run failed: task {task}" + (f" (pod {pod}: {reason})" if pod else "")
        if bad and bad.error and bad.error.message and not pod:
            msg += f": {bad.error.message}"
        if logs.strip():
            msg += "; last log lines:\n" + "\n".join("  " + line for line in logs.rstrip().splitlines())
        link = run_link((ctx.outputs_of("kfp-ui") or {}).get("ui_url"), run.run_id)
        return InstallerError(
            msg, error_class=ErrorClass.CONFLICT,
            remedy="KFP is installed but a run cannot write or read its artifacts: check the pipeline root "
                   f"(ConfigMap {ns}/kfp-launcher, defaultPipelineRoot) and that the account the tasks use can write "
                   f"to that bucket{' (' + link + ')' if link else ''}; run the installer again to verify again, or "
                   "skip it with --no-verify.",
            details={"run_id": run.run_id, "task": task, "pod": pod, "reason": reason})

    async def destroy(self, ctx: StepContext) -> None:
        """Delete what the step made: its runs, the experiment (if only its runs were in it) and the pipeline."""
        out = ctx.outputs
        if not out.get("experiment_id") and not out.get("pipeline_id"):
            return
        try:
            api, _ = await self._api(ctx)
        except InstallerError:
            return  # the cluster is gone: so is everything the step made
        await asyncio.to_thread(self._delete, api, out)

    @staticmethod
    def _delete(api: _Api, out: dict) -> None:
        def gone(call, *args, **kw) -> None:
            try:
                call(*args, **kw)
            except api.errors as exc:
                if _status(exc) not in (0, 404, 503):
                    raise _api_error(exc, "deleting the verification objects") from exc

        exp_id = out.get("experiment_id")
        if exp_id:
            try:
                runs = api.runs.run_service_list_runs(experiment_id=exp_id, page_size=100).runs or []
            except api.errors as exc:
                if _status(exc) not in (0, 404, 503):
                    raise _api_error(exc, "listing the verification runs") from exc
                runs = []
            mine = [r for r in runs if (r.display_name or "").startswith("verify KFP ")]
            for r in mine:
                gone(api.runs.run_service_delete_run, r.run_id)
            if len(mine) == len(runs):
                gone(api.experiments.experiment_service_delete_experiment, exp_id)
        if out.get("pipeline_id"):
            gone(api.pipelines.pipeline_service_delete_pipeline, out["pipeline_id"], cascade=True)


STEPS = {"kfp-verify": KfpVerify}
