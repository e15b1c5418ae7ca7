"""The REST API of the sandbox's ``ml-pipeline`` (KFP 2.14.4 API server, v2beta1), reached through the cluster's
Kubernetes service proxy (``/api/v1/namespaces/NS/services/ml-pipeline:8888/proxy/apis/v2beta1/...``).

What it answers (the paths and JSON field names of kubeflow/pipelines@2.14.4 ``backend/api/v2beta1/*.proto``, as
the published REST client ``kfp-server-api`` sends and reads them): healthz; pipelines upload / list / get / delete
(``cascade``) and their versions; experiments create / list / get / delete; runs create / list / get / delete.
Errors are ``google.rpc.Status`` JSON (``code``, ``message``, ``details``), with the API server's texts
(``backend/src/apiserver/storage/{pipeline,experiment}_store.go``, ``resource/resource_manager.go``).

A run executes as KFP's does, in the model's terms: its tasks (the compiled spec's ``root.dag.tasks`` in
dependency order) become Pods of the cluster's pod lifecycle, as Argo creates them for the compiled workflow
(``backend/src/v2/compiler/argocompiler/{argo,container}.go``: service account ``pipeline-runner``
(``DefaultPipelineRunnerServiceAccount``), ``restartPolicy: Never``, main container running
``/kfp-launcher/launch`` before the component's command). Each task's output artifacts are URIs under the run's
pipeline root, resolved as the root driver does (``backend/src/v2/driver/root_dag.go``: the run's
``runtime_config.pipeline_root``, else the ``kfp-launcher`` ConfigMap's ``defaultPipelineRoot``, else
``minio://mlpipeline/v2/artifacts``, ``backend/src/v2/config/env.go``). Whether the launcher can write and read
them is the workload judge's business (``kfp.rule_launcher``). The run's state is synchronised from the pods when
it is read, as the persistence agent does, and only while the persistence agent and the Argo workflow controller
are available (without the controller no pod is made; without the agent the run stays as last recorded).

Output URIs are ``ROOT/PIPELINE/RUN_ID/TASK/OUTPUT`` (upstream's ``GenerateOutputURI`` in
``backend/src/v2/metadata/client.go`` also puts a random salt before the output's name).

Not modelled: the Argo ``Workflow`` object itself (pods are made directly), driver pods, ML Metadata, caching
(every task runs), recurring runs, the v1beta1 API, archive, multi-user namespaces, pagination tokens beyond one
page. The database is a JSON file beside the cluster's objects (the real one lives in Cloud SQL).
"""
from __future__ import annotations

import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

KFP = "kubeflow/pipelines@2.14.4:"
DEFAULT_ROOT = "minio://mlpipeline/v2/artifacts"  # backend/src/v2/config/env.go defaultPipelineRoot
LAUNCHER = "/kfp-launcher/launch"  # backend/src/v2/component/launcher_v2.go KFPLauncherPath (copied by init)
RUNNER_SA = "pipeline-runner"
# google.rpc.Code -> HTTP, as grpc-gateway maps them (runtime.HTTPStatusFromCode)
_HTTP = {3: 400, 5: 404, 6: 409, 9: 400, 13: 500}


class ApiError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        return web.json_response({"code": self.code, "message": self.message, "details": []},
                                 status=_HTTP.get(self.code, 500))


def _ts(t: float | None) -> str | None:
    if not t:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + "Z"


def _match_filter(obj: dict, raw: str) -> bool:
    """``filter``: a JSON-encoded ``v2beta1.Filter`` (``predicates`` of key / operation / string_value); EQUALS
    and IS_SUBSTRING on string fields are what is modelled."""
    if not raw:
        return True
    try:
        preds = json.loads(raw).get("predicates") or []
    except (ValueError, AttributeError) as exc:
        raise ApiError(3, f"Invalid argument: Failed to parse valid filter from {raw!r}") from exc
    for p in preds:
        val = str(obj.get(p.get("key", ""), ""))
        want = str(p.get("string_value", p.get("stringValue", "")))
        op = p.get("operation", p.get("op", "EQUALS"))
        if op == "EQUALS" and val != want:
            return False
        if op == "IS_SUBSTRING" and want not in val:
            return False
    return True


class KfpApi:
    """One cluster's ml-pipeline API. ``server``: the sandbox (for its Google state); ``kube``: the cluster's
    ``KubeApiServer`` (its objects and pod lifecycle)."""

    def __init__(self, kube: Any, db_path: Path):
        self.kube = kube
        self.db_path = Path(db_path)
        self._lock = threading.Lock()
        self.db: dict = {"pipelines": {}, "versions": {}, "experiments": {}, "runs": {}}
        if self.db_path.exists():
            try:
                self.db.update(json.loads(self.db_path.read_text()))
            except ValueError:
                pass

    def _save(self) -> None:
        tmp = self.db_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.db))
        tmp.replace(self.db_path)

    # ------------------------------------------------------------------ dispatch
    async def handle(self, request: web.Request, ns: str, tail: list[str]) -> web.Response:
        try:
            if tail[:2] != ["apis", "v2beta1"]:
                raise ApiError(5, "Not Found")
            rest, m, q = tail[2:], request.method, request.query
            if rest == ["healthz"] and m == "GET":
                return web.json_response({"multi_user": False})
            if rest == ["pipelines", "upload"] and m == "POST":
                return web.json_response(await self._upload(request))
            if rest and rest[0] == "pipelines":
                return web.json_response(self._pipelines(m, rest[1:], q))
            if rest and rest[0] == "experiments":
                return web.json_response(await self._experiments(request, rest[1:]))
            if rest and rest[0] == "runs":
                return web.json_response(await self._runs(request, ns, rest[1:]))
            raise ApiError(5, "Not Found")
        except ApiError as exc:
            return exc.response()

    # ------------------------------------------------------------------ pipelines
    async def _upload(self, request: web.Request) -> dict:
        reader = await request.multipart()
        content = b""
        while True:
            part = await reader.next()
            if part is None:
                break
            if part.name == "uploadfile":
                content = await part.read()
        q = request.query
        try:
            import yaml

            spec = yaml.safe_load(content.decode()) if content else None
        except Exception as exc:  # noqa: BLE001
            raise ApiError(3, f"Failed to create a pipeline and a pipeline version: invalid YAML: {exc}") from exc
        if not isinstance(spec, dict) or not {"pipelineInfo", "root", "deploymentSpec"} <= set(spec):
            raise ApiError(3, "Failed to create a pipeline and a pipeline version: the file is not a compiled "
                              "KFP v2 pipeline spec (pipelineInfo, root, deploymentSpec)")
        name = q.get("display_name") or q.get("name") or spec["pipelineInfo"].get("name", "")
        with self._lock:
            if any(p["display_name"] == name for p in self.db["pipelines"].values()):
                # backend/src/apiserver/storage/pipeline_store.go CreatePipelineAndPipelineVersion
                raise ApiError(6, f"Failed to create a new pipeline. The name {name} already exist. Please specify "
                                  "a new name")
            now = time.time()
            pid, vid = str(uuid.uuid4()), str(uuid.uuid4())
            self.db["pipelines"][pid] = {"pipeline_id": pid, "display_name": name, "name": name,
                                         "description": q.get("description", ""), "created_at": _ts(now)}
            self.db["versions"][vid] = {"pipeline_id": pid, "pipeline_version_id": vid, "display_name": name,
                                        "name": name, "created_at": _ts(now), "pipeline_spec": spec}
            self._save()
            return self.db["pipelines"][pid]

    def _pipelines(self, m: str, rest: list[str], q: Any) -> dict:
        with self._lock:
            if not rest and m == "GET":
                items = [p for p in self.db["pipelines"].values() if _match_filter(p, q.get("filter", ""))]
                return {"pipelines": items, "total_size": len(items)} if items else {}
            pid = rest[0]
            p = self.db["pipelines"].get(pid)
            if p is None:
                raise ApiError(5, f"Failed to get pipeline {pid}: ResourceNotFoundError: Pipeline {pid} not found")
            versions = [v for v in self.db["versions"].values() if v["pipeline_id"] == pid]
            if len(rest) == 1 and m == "GET":
                return p
            if len(rest) == 1 and m == "DELETE":
                # resource_manager.go DeletePipeline: without cascade, a pipeline with versions is kept
                if versions and q.get("cascade") not in ("true", "1", "True"):
                    raise ApiError(9, f"Failed to delete pipeline with id {pid} as it has existing pipeline "
                                      "versions (try deleting the pipeline versions first)")
                for v in versions:
                    del self.db["versions"][v["pipeline_version_id"]]
                del self.db["pipelines"][pid]
                self._save()
                return {}
            if rest[1:2] == ["versions"] and len(rest) == 2 and m == "GET":
                out = [{k: v[k] for k in v if k != "pipeline_spec"} for v in versions]
                return {"pipeline_versions": out, "total_size": len(out)} if out else {}
            if rest[1:2] == ["versions"] and len(rest) == 3:
                v = self.db["versions"].get(rest[2])
                if v is None or v["pipeline_id"] != pid:
                    raise ApiError(5, f"Pipeline version {rest[2]} not found")
                if m == "DELETE":
                    del self.db["versions"][rest[2]]
                    self._save()
                    return {}
                return v
        raise ApiError(5, "Not Found")

    # ------------------------------------------------------------------ experiments
    async def _experiments(self, request: web.Request, rest: list[str]) -> dict:
        m = request.method
        if not rest and m == "POST":
            body = await request.json()
            name = body.get("display_name") or ""
            if not name:
                raise ApiError(3, "Invalid input error: Experiment name is empty. Please specify a valid experiment "
                                  "name")
            with self._lock:
                if any(e["display_name"] == name for e in self.db["experiments"].values()):
                    # backend/src/apiserver/storage/experiment_store.go CreateExperiment
                    raise ApiError(6, f"Failed to create a new experiment. The name {name} already exists. Please "
                                      "specify a new name")
                eid = str(uuid.uuid4())
                e = {"experiment_id": eid, "display_name": name, "description": body.get("description", ""),
                     "created_at": _ts(time.time()), "storage_state": "AVAILABLE", "namespace": ""}
                self.db["experiments"][eid] = e
                self._save()
                return e
        with self._lock:
            if not rest and m == "GET":
                items = [e for e in self.db["experiments"].values()
                         if _match_filter(e, request.query.get("filter", ""))]
                return {"experiments": items, "total_size": len(items)} if items else {}
            e = self.db["experiments"].get(rest[0])
            if e is None:
                raise ApiError(5, f"Failed to get experiment {rest[0]}: ResourceNotFoundError: Experiment "
                                  f"{rest[0]} not found")
            if m == "DELETE":
                del self.db["experiments"][rest[0]]
                self._save()
                return {}
            return e

    # ------------------------------------------------------------------ runs
    async def _runs(self, request: web.Request, ns: str, rest: list[str]) -> dict:
        m = request.method
        if not rest and m == "POST":
            return self._create_run(await request.json(), ns)
        with self._lock:
            if not rest and m == "GET":
                exp = request.query.get("experiment_id", "")
                items = [self._sync(r, ns) for r in list(self.db["runs"].values())
                         if (not exp or r["experiment_id"] == exp) and _match_filter(r, request.query.get("filter",
                                                                                                          ""))]
                self._save()
                return {"runs": [self._view(r) for r in items], "total_size": len(items)} if items else {}
            r = self.db["runs"].get(rest[0])
            if r is None:
                raise ApiError(5, f"Failed to get a run: ResourceNotFoundError: Run {rest[0]} not found")
            if m == "DELETE":
                self._delete_pods(r, ns)
                del self.db["runs"][rest[0]]
                self._save()
                return {}
            r = self._sync(r, ns)
            self._save()
            return self._view(r)

    def _create_run(self, body: dict, ns: str) -> dict:
        ref = body.get("pipeline_version_reference") or {}
        with self._lock:
            exp = body.get("experiment_id") or ""
            if exp and exp not in self.db["experiments"]:
                raise ApiError(5, f"Failed to create a run: ResourceNotFoundError: Experiment {exp} not found")
            v = self.db["versions"].get(ref.get("pipeline_version_id", ""))
            spec = v["pipeline_spec"] if v else body.get("pipeline_spec")
            if not spec:
                raise ApiError(3, "Failed to create a run: Invalid input error: pipeline spec or pipeline version "
                                  "reference is required")
            rid = str(uuid.uuid4())
            now = time.time()
            name = re.sub(r"[^a-z0-9-]", "-", (spec.get("pipelineInfo") or {}).get("name", "run").lower())[:40]
            r = {"run_id": rid, "display_name": body.get("display_name") or rid, "experiment_id": exp,
                 "pipeline_version_reference": ref, "runtime_config": body.get("runtime_config") or {},
                 "created_at": _ts(now), "scheduled_at": _ts(now), "state": "PENDING", "storage_state": "AVAILABLE",
                 "workflow": f"{name}-{uuid.uuid4().hex[:5]}", "spec": spec, "tasks": {}, "root": "",
                 "state_history": [{"update_time": _ts(now), "state": "PENDING"}]}
            self.db["runs"][rid] = r
            self._sync(r, ns)
            self._save()
            return self._view(r)

    def _view(self, r: dict) -> dict:
        tasks = []
        for t in r["tasks"].values():
            d = {"run_id": r["run_id"], "task_id": t["task_id"], "display_name": t["name"], "state": t["state"],
                 "create_time": t.get("created"), "start_time": t.get("created"), "end_time": t.get("ended"),
                 "pod_name": t["pod"], "child_tasks": [{"pod_name": t["pod"]}]}
            if t.get("error"):
                d["error"] = {"code": 2, "message": t["error"], "details": []}
            tasks.append({k: val for k, val in d.items() if val is not None})
        out = {k: r[k] for k in ("run_id", "display_name", "experiment_id", "pipeline_version_reference",
                                 "runtime_config", "created_at", "scheduled_at", "state", "storage_state",
                                 "state_history")}
        if r.get("finished_at"):
            out["finished_at"] = r["finished_at"]
        out["run_details"] = {"task_details": tasks}
        return out

    # ------------------------------------------------------------------ execution
    def _available(self, ns: str, name: str) -> bool:
        from ..kube.pods import View

        return View(self.kube.cluster).deployment_available(ns, name)

    def _pipeline_root(self, r: dict, ns: str) -> str:
        """backend/src/v2/driver/root_dag.go (RootDAG): runtime_config pipeline_root, else the launcher config's."""
        root = (r["runtime_config"] or {}).get("pipeline_root") or ""
        if root:
            return root
        from ..kube.pods import View

        cm = View(self.kube.cluster).get("ConfigMap", ns, "kfp-launcher") or {}
        return (cm.get("data") or {}).get("defaultPipelineRoot") or DEFAULT_ROOT

    def _sync(self, r: dict, ns: str) -> dict:
        """What the Argo controller and the persistence agent do between two reads: start the tasks whose
        dependencies succeeded, record each task's pod outcome, end the run."""
        if r["state"] in ("SUCCEEDED", "FAILED", "CANCELED"):
            return r
        if not self._available(ns, "ml-pipeline-persistenceagent"):
            return r  # nobody reports the workflow's progress back to the API server
        if not self._available(ns, "workflow-controller"):
            return r  # nobody turns the workflow into pods
        c = self.kube.cluster
        pod_res = c.lookup("", "v1", "pods")
        if not r["root"]:
            r["root"] = self._pipeline_root(r, ns).rstrip("/")
        dag = ((r["spec"].get("root") or {}).get("dag") or {}).get("tasks") or {}
        now = time.time()
        for tname, task in dag.items():
            t = r["tasks"].get(tname)
            if t is None:
                deps = task.get("dependentTasks") or []
                if not all((r["tasks"].get(d) or {}).get("state") == "SUCCEEDED" for d in deps):
                    continue
                t = self._start_task(r, ns, tname, task, pod_res, now)
            if t["state"] in ("SUCCEEDED", "FAILED"):
                continue
            rec = c.get_record(pod_res, ns, t["pod"])
            phase = ((rec or {}).get("obj", {}).get("status") or {}).get("phase", "Pending")
            if rec is None:
                t.update(state="FAILED", ended=_ts(now), error="pod deleted")
            elif phase == "Succeeded":
                t.update(state="SUCCEEDED", ended=_ts(now))
            elif phase == "Failed":
                st = next(iter(rec["obj"]["status"].get("containerStatuses") or []), {})
                term = (st.get("state") or {}).get("terminated") or {}
                t.update(state="FAILED", ended=_ts(now),
                         error=f"{tname} failed: {term.get('reason', 'Error')} (exit code {term.get('exitCode')})")
            elif phase == "Running":
                t["state"] = "RUNNING"
        states = [t["state"] for t in r["tasks"].values()]
        new = r["state"]
        if "FAILED" in states:
            new = "FAILED"
        elif len(states) == len(dag) and all(s == "SUCCEEDED" for s in states):
            new = "SUCCEEDED"
        elif states:
            new = "RUNNING"
        if new != r["state"]:
            r["state"] = new
            r["state_history"].append({"update_time": _ts(now), "state": new})
            if new in ("SUCCEEDED", "FAILED"):
                r["finished_at"] = _ts(now)
        return r

    def _start_task(self, r: dict, ns: str, tname: str, task: dict, pod_res: Any, now: float) -> dict:
        spec = r["spec"]
        comp = (spec.get("components") or {}).get((task.get("componentRef") or {}).get("name", "")) or {}
        exe = ((spec.get("deploymentSpec") or {}).get("executors") or {}).get(comp.get("executorLabel", "")) or {}
        container = exe.get("container") or {}
        pipeline = (spec.get("pipelineInfo") or {}).get("name", "pipeline")
        outputs = {}
        for out in ((comp.get("outputDefinitions") or {}).get("artifacts") or {}):
            outputs[out] = [{"uri": f"{r['root']}/{pipeline}/{r['run_id']}/{tname}/{out}"}]
        inputs = {}
        for iname, inp in (((task.get("inputs") or {}).get("artifacts")) or {}).items():
            up = inp.get("taskOutputArtifact") or {}
            src = up.get("producerTask", "")
            inputs[iname] = [{"uri": f"{r['root']}/{pipeline}/{r['run_id']}/{src}/{up.get('outputArtifactKey')}"}]
        executor_input = {"inputs": {"artifacts": {k: {"artifacts": v} for k, v in inputs.items()}},
                          "outputs": {"artifacts": {k: {"artifacts": v} for k, v in outputs.items()}}}
        n = len(r["tasks"])
        pod_name = f"{r['workflow']}-system-container-impl-{abs(hash((r['run_id'], tname))) % 10**10}"
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": pod_name, "namespace": ns,
                            "labels": {"workflows.argoproj.io/workflow": r["workflow"], "pipeline/runid": r["run_id"],
                                       "pipelines.kubeflow.org/v2_component": "true"},
                            "annotations": {"workflows.argoproj.io/node-name": f"{r['workflow']}.root.{tname}",
                                            "pipelines.kubeflow.org/task_name": tname}},
               "spec": {"serviceAccountName": RUNNER_SA, "restartPolicy": "Never",
                        "containers": [{"name": "main", "image": container.get("image", "python:3.11"),
                                        "command": [LAUNCHER],
                                        "args": ["--pipeline_name", pipeline, "--run_id", r["run_id"],
                                                 "--task_name", tname, "--executor_input",
                                                 json.dumps(executor_input), "--"]
                                        + list(container.get("command") or []) + list(container.get("args") or []),
                                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}
        refused = self.kube.sim.pods.admission_error(ns, pod["spec"], pod_name)
        try:
            if refused:
                raise ValueError(refused)
            self.kube.cluster.create(pod_res, ns, pod, manager="workflow-controller")
            state, err = "PENDING", ""
        except Exception as exc:  # noqa: BLE001 - e.g. the ServiceAccount is missing: the task fails to start
            state, err = "FAILED", f"{tname}: the pod could not be created: {getattr(exc, 'message', exc)}"
        t = {"task_id": f"{r['run_id'][:8]}-{n}", "name": tname, "pod": pod_name, "state": state,
             "created": _ts(now)}
        if err:
            t.update(error=err, ended=_ts(now))
        r["tasks"][tname] = t
        return t

    def _delete_pods(self, r: dict, ns: str) -> None:
        c = self.kube.cluster
        pod_res = c.lookup("", "v1", "pods")
        for t in r["tasks"].values():
            try:
                c.delete(pod_res, ns, t["pod"], {})
            except Exception:  # noqa: BLE001 - already gone
                pass
