"""Full non-interactive installs on the sandbox, from nothing to the KFP UI address, in both credential modes;
a re-run changes nothing; no file the run wrote holds key material or the DB password. The workload-identity case
starts in an organisation whose policy blocks keys: key mode stops with a clear message, then workload identity
completes."""
from __future__ import annotations

import json

import pytest

from backends.gcp.calls import call_storage
from installer.errors import ErrorClass

from secrets_kfp_support import (Isolated, answers, failures, install, kube, scan, secret_data, secret_needles,
                                 step_events, user_keys)

async def _kfp(client, ns):
    """KFP's own REST client (kfp_server_api) through the cluster's service proxy, as the installer reaches it."""
    import asyncio

    from backends.kfp.verify import _Api
    return await asyncio.to_thread(_Api, client, ns)


async def _delete_verification_runs(client, ns, experiment_id, name):
    api = await _kfp(client, ns)
    for r in api.verification_runs(experiment_id, name):
        api.runs.run_service_delete_run(r.run_id)


async def _verification_objects(client, ns):
    from backends.kfp.verify import EXPERIMENT
    api = await _kfp(client, ns)
    exps = api.experiments.experiment_service_list_experiments().experiments or []
    pipes = api.pipelines.pipeline_service_list_pipelines().pipelines or []
    runs = api.runs.run_service_list_runs().runs or []
    return [e for e in exps if e.display_name == EXPERIMENT], [p.display_name for p in pipes], runs


def _mutations(sandbox) -> list[str]:
    """The mutating requests, but for the remote journal's and lock's writes (issue 17: each run writes them)."""
    from tests.installer.test_remote_state import state_request

    return [f"{r['method']} {r['path']}" for r in sandbox.requests(mutating=True) if not state_request(r)]


@pytest.mark.parametrize("mode", ["key", "workload-identity"])
async def test_full_install_rerun_and_scan(sandbox, tmp_path, monkeypatch, mode):
    iso = Isolated(tmp_path / "run", monkeypatch)
    a = answers(sandbox.project, mode)

    if mode == "workload-identity":
        sandbox.scenario("org_policy_keys", enforced=True)
        fin = await install(answers(sandbox.project, "key"), iso)
        assert fin.status == "failed" and fin.failed == ["kfp-sa-key"], failures(iso)
        err = step_events(iso, "StepFailed", "kfp-sa-key")[0]
        assert err.error_class == ErrorClass.ORG_POLICY.value
        assert "iam.disableServiceAccountKeyCreation" in err.message and "workload-identity" in err.remedy
        assert user_keys(a) == []
        first_password = iso.runtime.get("sql_password")
        iso.runtime = {}  # a new process: nothing in memory

    fin = await install(a, iso)
    assert fin.status == "done", failures(iso)
    if mode == "workload-identity":
        # the cluster made by the key-mode attempt (nodes on GCE_METADATA, no pool) was switched in place
        c = next(c for c in sandbox.state()["clusters"].values() if c["name"] == a.names.cluster)
        assert c["workloadIdentityConfig"]["workloadPool"] == a.names.workload_pool
        assert {p["config"]["workloadMetadataConfig"]["mode"] for p in c["nodePools"]} == {"GKE_METADATA"}
        ups = [r for r in sandbox.requests(mutating=True) if r["method"] == "PUT" and "/clusters/" in r["path"]]
        assert len(ups) == 2, ups  # clusters.update (the pool), nodePools.update (the metadata server)
    ui = fin.outputs["kfp-ui"]["ui_url"]
    assert ui.startswith("https://") and ui.endswith(".pipelines.googleusercontent.com")
    # the install ended with a pipeline run through KFP's API (kfp_server_api over the service proxy): its first
    # task wrote an artifact under the pipeline root (the bucket, through the GCS gateway), the second read it
    ver = fin.outputs["kfp-verify"]
    assert ver["state"] == "SUCCEEDED" and ver["run_url"] == f"{ui}/#/runs/details/{ver['run_id']}"
    assert ver["seconds"] >= 0
    from installer.next_steps import verified_line
    assert verified_line(ver).startswith("verified: pipeline run succeeded in ")
    from google.cloud import storage
    blobs = [b.name for b in storage.Client(project=a.project).list_blobs(a.names.bucket, prefix="v2/artifacts/")]
    assert [b for b in blobs if b.endswith(f"{ver['run_id']}/write-artifact/out")], blobs
    runner = {p["metadata"]["name"]: p for p in (await kube(a)).list("v1", "Pod", a.kfp.namespace,
                                                                      f"pipeline/runid={ver['run_id']}")}
    assert len(runner) == 2 and {p["spec"]["serviceAccountName"] for p in runner.values()} == {"pipeline-runner"}
    assert {p["status"]["phase"] for p in runner.values()} == {"Succeeded"}

    client = await kube(a)
    ns = a.kfp.namespace
    # pipeline-install-config holds the installer's values; the connection name is the one Cloud SQL reported
    cm = client.get("v1", "ConfigMap", "pipeline-install-config", ns)
    conn = fin.outputs["sql-instance"]["connection_name"]
    assert conn and cm["data"]["gcsCloudSqlInstanceName"] == conn
    assert cm["data"]["bucketName"] == a.names.bucket and cm["data"]["gcsProjectId"] == a.project
    # mysql-secret: the real password (not the upstream empty one), user kfp
    password = iso.runtime.get("sql_password") or (first_password if mode == "workload-identity" else None)
    db = secret_data(client, ns, "mysql-secret")
    assert db["username"] == "kfp" and db["password"] and db["password"] == password
    # every Deployment Available, applied by our field manager
    deps = client.list("apps/v1", "Deployment", ns)
    assert len(deps) == 16
    managers = {m.get("manager") for d in deps for m in d["metadata"].get("managedFields", [])}
    assert "mlops-install" in managers
    # per-object progress was reported while applying
    applied = [e for e in step_events(iso, "StepProgress", "kfp-deploy") if e.message.startswith("applied ")]
    assert len(applied) == fin.outputs["kfp-deploy"]["objects"] == 75

    key_json = None
    if mode == "key":
        sec = secret_data(client, ns, "user-gcp-sa")
        assert sec["user-gcp-sa.json"] == sec["application_default_credentials.json"]
        key_json = sec["user-gcp-sa.json"]
        kid = json.loads(key_json)["private_key_id"]
        assert user_keys(a) == [kid] == [fin.outputs["kfp-sa-key"]["key_id"]]
    else:
        assert client.get("v1", "Secret", "user-gcp-sa", ns) is None
        assert user_keys(a) == []
        ann = {d["metadata"]["name"]: (d["metadata"].get("annotations") or {}).get("iam.gke.io/gcp-service-account")
               for d in client.list("v1", "ServiceAccount", ns)}
        assert ann["pipeline-runner"] == a.names.kfp_sa_email
        assert ann["kubeflow-pipelines-cloudsql-proxy"] == a.names.gke_sa_email
        from backends.gcp.calls import call_sync
        pol = call_sync("iam", lambda s: s.projects().serviceAccounts().getIamPolicy(
            resource=f"projects/{a.project}/serviceAccounts/{a.names.kfp_sa_email}"))
        members = {m for b in pol.get("bindings", []) if b["role"] == "roles/iam.workloadIdentityUser"
                   for m in b["members"]}
        assert f"serviceAccount:{a.project}.svc.id.goog[{ns}/pipeline-runner]" in members

    # a re-run (new process state: no password in memory) changes nothing: no mutating request anywhere
    sandbox.clear_requests()
    iso.runtime = {}
    fin2 = await install(a, iso)
    assert fin2.status == "done", failures(iso)
    assert _mutations(sandbox) == []
    assert fin2.outputs["kfp-ui"]["ui_url"] == ui
    outcomes = {e.step_id: e.outcome for e in iso.events[-200:] if e.type == "StepDone"}
    assert all(outcomes[s] in ("unchanged", "adopted") for s in ("kfp-namespace", "mysql-secret", "kfp-deploy",
                                                                  "kfp-cluster-scoped", "kfp-ready", "kfp-ui",
                                                                  "kfp-verify"))
    assert fin2.outputs["kfp-verify"]["run_id"] == ver["run_id"]  # the earlier verification stands: no new run

    # no file written by the runs (state dir, journal, logs, events, temp dirs, home) holds a secret
    files = iso.written_files()
    assert any(f.name == "journal.json" for f in files)
    assert any(f.suffix == ".log" for f in files)
    # and the remote journal in the artifact bucket (issue 17), the same scan
    remote = await call_storage(a.project, lambda c: c.bucket(a.names.bucket).blob(
        f".mlops-install/{a.env_id}/journal.json").download_as_bytes())
    (tmp_path / "remote-journal.json").write_bytes(remote)
    assert json.loads(remote)["steps"]["kfp-ui"]["status"] == "done"
    files.append(tmp_path / "remote-journal.json")
    hits = scan(files, secret_needles(key_json, password))
    assert hits == []
    journal = next(f for f in files if f.name == "journal.json").read_text()
    if mode == "workload-identity":
        # objects deleted behind the installer's back: a re-run applies those again, and only those
        client.delete("v1", "ConfigMap", "kfp-launcher", ns)
        client.delete("apps/v1", "Deployment", "ml-pipeline-ui", ns)
        sandbox.clear_requests()
        iso.runtime = {}
        fin3 = await install(a, iso)
        assert fin3.status == "done", failures(iso)
        kube_writes = sorted(r["path"].rsplit("/", 1)[-1] for r in sandbox.requests(mutating=True)
                             if r.get("api") == "kubernetes")
        assert kube_writes == ["kfp-launcher", "ml-pipeline-ui"]
        assert client.get("apps/v1", "Deployment", "ml-pipeline-ui", ns)["status"]["availableReplicas"] == 1

        # a pipeline root the tasks cannot write (a bucket of another project: the gateway's account has no role
        # there) makes the verification fail with the task, its pod's reason and the launcher's own words
        sandbox.scenario("project", project="other-team-project", number="987654321098")
        sandbox.scenario("api_enabled", services=["storage.googleapis.com"], project="other-team-project")
        storage.Client(project="other-team-project").create_bucket("other-team-artifacts")
        client.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kfp-launcher", "namespace": ns},
                      "data": {"defaultPipelineRoot": "minio://other-team-artifacts/v2/artifacts"}},
                     field_manager="test")
        from backends.kfp.verify import run_name
        verify_ids = dict(fin3.outputs["kfp-verify"])
        await _delete_verification_runs(client, ns, verify_ids["experiment_id"], run_name(a.kfp.version))
        iso.runtime = {}
        fin4 = await install(a, iso)
        assert fin4.status == "failed" and fin4.failed == ["kfp-verify"], failures(iso)
        err = step_events(iso, "StepFailed", "kfp-verify")[-1]
        assert "the verification run failed: task write-artifact" in err.message
        assert "Error, exit code 1" in err.message
        assert ('failed to upload output artifact "out" to remote storage URI "minio://other-team-artifacts/v2/'
                in err.message and "AccessDenied: Access Denied." in err.message)
        assert "kfp-launcher" in err.remedy and "--no-verify" in err.remedy

        # destroy: the verification's pipeline, experiment and runs, the namespaced KFP objects and the Workload
        # Identity bindings go away
        from backends.registry import build_steps
        from installer.journal import Journal
        from installer.plan import build_plan
        from installer.steps import StepContext
        plan, j = build_plan(a), Journal(a.env_id)
        steps = build_steps(plan)
        rt: dict = {}
        for sid in ("kfp-verify", "kfp-deploy", "workload-identity"):
            ctx = StepContext(answers=a, plan=plan, spec=plan[sid], record=j.step(sid), runtime=rt,
                              emit=lambda e: None, save=lambda: None,
                              outputs_of=lambda x: j.step(x).get("outputs", {}))
            await steps[sid].destroy(ctx)
            if sid == "kfp-verify":
                assert await _verification_objects(client, ns) == ([], [], [])
        assert client.list("apps/v1", "Deployment", ns) == []
        assert client.get("v1", "ConfigMap", "pipeline-install-config", ns) is None
        from backends.secrets.google_ops import get_sa_policy
        pol = await get_sa_policy(a.project, a.names.kfp_sa_email)
        assert not [b for b in pol.get("bindings", []) if b["role"] == "roles/iam.workloadIdentityUser"]
    if mode == "key":
        assert json.loads(key_json)["private_key_id"] in journal  # the id is kept, never the body

        # switching this environment to workload identity removes the key and its Secret (no keys at all)
        wi = answers(sandbox.project, "workload-identity")
        iso.runtime = {}
        fin3 = await install(wi, iso)
        assert fin3.status == "done", failures(iso)
        assert user_keys(wi) == []
        assert client.get("v1", "Secret", "user-gcp-sa", ns) is None
        runner = client.get("v1", "ServiceAccount", "pipeline-runner", ns)
        assert runner["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == wi.names.kfp_sa_email
