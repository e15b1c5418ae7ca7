# Over ~500 lines, one job: one start-up rule per KFP component, each beside the upstream source it follows.
"""What each Kubeflow Pipelines 2.14.4 component (env/gcp) needs to start, and what it prints when it cannot.

Every rule names the upstream file it follows (kubeflow/pipelines at tag 2.14.4 unless said otherwise). The
log lines are the components' own formats: glog (``F1202 21:54:17.123456       1 file.go:N] msg``, exit 255),
Go's ``log`` (``2025/12/02 21:54:17 msg``), logrus (``time=... level=fatal msg=...``, exit 1).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..kube.runtime import ALLOW, Verdict
from . import identity as ident_mod
from .identity import Identity
from .podenv import argv as make_argv, container_env

KFP = "kubeflow/pipelines@2.14.4:"
PROXY_SRC = "GoogleCloudPlatform/cloud-sql-proxy@v1.25.0:"
SQLADMIN = "https://sqladmin.googleapis.com/sql/v1beta4"
DNS_IP = "10.8.0.10"  # kube-dns in the sandbox cluster's service range (10.8.0.0/20)
NOT_AUTHORIZED = "googleapi: Error 403: The client is not authorized to make this request., notAuthorized"
NO_INSTANCE = "googleapi: Error 404: The Cloud SQL instance does not exist., instanceDoesNotExist"
NOT_RUNNABLE = ("googleapi: Error 409: The instance or operation is not in an appropriate state to handle the "
                "request., invalidState")


@dataclass
class Ctx:
    server: Any
    data: dict
    cluster: dict
    view: Any
    pod: dict
    container: dict
    env: dict[str, str]
    argv: list[str]
    now: float
    ns: str
    notes: list[str] = field(default_factory=list)

    @property
    def project(self) -> str:
        return self.cluster.get("_project", "")

    def identity(self, pod: dict | None = None, container: dict | None = None,
                 env: dict[str, str] | None = None) -> Identity:
        pod = pod or self.pod
        container = container or self.container
        env = env if env is not None else (self.env if container is self.container else
                                           container_env(self.view, pod, container))
        return ident_mod.resolve(self.data, self.cluster, self.view, pod, container, env, self.now)


# ---------------------------------------------------------------- log formats
def _glog(sev: str, now: float, where: str, msg: str) -> str:
    t = time.gmtime(now)
    return f"{sev}{time.strftime('%m%d %H:%M:%S', t)}.{int((now % 1) * 1e6):06d}       1 {where}] {msg}"


def _golog(now: float, msg: str) -> str:
    return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(now)) + " " + msg


def _logrus(now: float, level: str, msg: str) -> str:
    esc = msg.replace("\\", "\\\\").replace('"', '\\"')
    return f'time="{time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}" level={level} msg="{esc}"'


def _fail(rule: str, source: str, logs: list[str], message: str, exit_code: int = 1) -> Verdict:
    return Verdict(False, tuple(logs), exit_code=exit_code, reason="Error", message=message, rule=rule,
                   source=source)


# ---------------------------------------------------------------- identifying a component
COMPONENTS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    # name, image substrings, app/component label values
    ("cloudsqlproxy", ("cloudsql-docker/gce-proxy", "cloud-sql-proxy", "cloudsql-proxy"), ("cloudsqlproxy",)),
    ("minio-gcs-gateway", ("ml-pipeline/minio",), ("minio",)),
    ("ml-pipeline", ("kfp-api-server", "ml-pipeline/api-server"), ("ml-pipeline",)),
    ("metadata-grpc", ("ml_metadata_store_server",), ("metadata-grpc-server",)),
    ("cache-server", ("kfp-cache-server", "ml-pipeline/cache-server"), ("cache-server",)),
    ("persistenceagent", ("kfp-persistence-agent", "ml-pipeline/persistenceagent"),
     ("ml-pipeline-persistenceagent",)),
    ("scheduledworkflow", ("kfp-scheduled-workflow-controller", "ml-pipeline/scheduledworkflow"),
     ("ml-pipeline-scheduledworkflow",)),
    ("proxy-agent", ("kfp-inverse-proxy-agent", "ml-pipeline/inverse-proxy-agent"), ("proxy-agent",)),
    ("workflow-controller", ("argoproj/workflow-controller",), ("workflow-controller",)),
]


def component_of(pod: dict, container: dict) -> str | None:
    """By image first (robust to renamed Deployments), then by the pod's ``app``/``component`` label."""
    if (container.get("command") or [""])[0] == LAUNCHER:
        return "kfp-launcher"  # a run's task: Argo's main container runs the KFP launcher first
    image = container.get("image") or ""
    for name, images, _ in COMPONENTS:
        if any(s in image for s in images):
            return name
    labels = (pod.get("metadata") or {}).get("labels") or {}
    for name, _, apps in COMPONENTS:
        if labels.get("app") in apps or labels.get("component") in apps:
            # a label alone is trusted only for the container that is the component's main one
            if name == "minio-gcs-gateway" and "gcs" not in (container.get("args") or []):
                return None
            return name
    return None


# ---------------------------------------------------------------- Cloud SQL proxy (gce-proxy 1.25.0)
def _proxy_instances(argv: list[str]) -> list[str]:
    out: list[str] = []
    for a in argv:
        for flag in ("-instances=", "--instances="):
            if a.startswith(flag):
                out += [x for x in a[len(flag):].split(",") if x]
    return out


def _split_conn(conn: str) -> tuple[str, str, str, str | None]:
    """ParseInstanceConnectionName (proxy/proxy/client.go) + SplitName (proxy/util/cloudsqlutil.go)."""
    args = conn.split("=")
    if len(args) > 2:
        return "", "", "", ("invalid instance argument: must be either form - `<instance_connection_string>` or "
                            f"`<instance_connection_string>=<options>`; invalid arg was \"{conn}\"")
    spl = args[0].split(":")
    if len(spl) >= 2 and "." in spl[0]:
        spl = [spl[0] + ":" + spl[1]] + spl[2:]
    proj, region, name = (spl + ["", "", ""])[:3] if len(spl) >= 3 else ("", "", args[0])
    if not proj or not region or not name:
        return "", "", "", ("invalid instance connection string: must be in the form `project:region:instance-name`"
                            f"; invalid name was \"{args[0]}\"")
    return proj, region, name, None


def _token_error(ident: Identity, url: str) -> str:
    if ident.kind == "none" and ident.error.startswith("invalid_grant"):
        err, _, desc = ident.error.partition(": ")
        return (f'Get "{url}": oauth2: cannot fetch token: 400 Bad Request\nResponse: {{"error":"{err}",'
                f'"error_description":"{desc}"}}')
    return f'Get "{url}": compute: Received {ident.error_status or 403} `{ident.error}`'


def _sql_instance(data: dict, proj: str, region: str, name: str) -> dict | None:
    inst = data["sql_instances"].get(f"{proj}/{name}")
    if inst is None or inst.get("region") != region or inst.get("state") == "PENDING_DELETE":
        return None
    return inst


def proxy_startup(ctx: Ctx, ident: Identity, instances: list[str]) -> str | None:
    """The error main() prints before exiting 1 (cmd/cloud_sql_proxy/cloud_sql_proxy.go: checkFlags, then
    CreateInstanceConfigs -> parseInstanceConfig's Instances.Get), or None."""
    if ident.kind == "node" and not any(s in (ident.scopes or ()) for s in (
            "https://www.googleapis.com/auth/sqlservice.admin", "https://www.googleapis.com/auth/cloud-platform")):
        return ("the default Compute Engine service account is not configured with sufficient permissions to "
                "access the Cloud SQL API from this VM. Please create a new VM with Cloud SQL access (scope) "
                "enabled under \"Identity and API access\". Alternatively, create a new \"service account key\" and "
                "specify it using the -credential_file parameter")
    for conn in instances:
        proj, region, name, err = _split_conn(conn)
        if err:
            return err
        url = f"{SQLADMIN}/projects/{proj}/instances/{region}~{name}?alt=json&prettyPrint=false"
        if not ident.usable:
            return _token_error(ident, url)
        if proj in ctx.data["projects"] and not ident_mod.service_usable(ctx.data, proj, "sqladmin.googleapis.com",
                                                                         ctx.now):
            return ("googleapi: Error 403: " + ident_mod.disabled_message(ctx.data, proj, "sqladmin.googleapis.com")
                    + ", accessNotConfigured")
        if not ident.can(ctx.data, "cloudsql.instances.get", project=proj):
            return NOT_AUTHORIZED
        if _sql_instance(ctx.data, proj, region, name) is None:
            return NO_INSTANCE
    return None


def proxy_dial(ctx: Ctx, ident: Identity, conn: str) -> str | None:
    """Why a dial to the instance fails (proxy/certs/certs.go: createEphemeral needs cloudsql.instances.connect on
    a running instance), or None. The readiness probe dials every instance
    (cmd/cloud_sql_proxy/internal/healthcheck/healthcheck.go isReady)."""
    proj, region, name, err = _split_conn(conn)
    if err:
        return err
    inst_conn = conn.split("=")[0]
    access = (f"ensure that the account has access to \"{inst_conn}\" (and make sure there's no typo in that name). "
              f"Error during createEphemeral for {inst_conn}: ")
    if not ident.can(ctx.data, "cloudsql.instances.connect", project=proj):
        return access + NOT_AUTHORIZED
    inst = _sql_instance(ctx.data, proj, region, name)
    if inst is None:
        return access + NO_INSTANCE
    if inst.get("state") != "RUNNABLE":
        return NOT_RUNNABLE
    return None


def rule_cloudsqlproxy(ctx: Ctx) -> Verdict:
    src = PROXY_SRC + "cmd/cloud_sql_proxy/cloud_sql_proxy.go"
    instances = _proxy_instances(ctx.argv)
    ident = ctx.identity()
    err = proxy_startup(ctx, ident, instances)
    if err:
        return _fail("cloudsqlproxy-start", src, [_golog(ctx.now, err)],
                     f"Cloud SQL proxy cannot start as {ident.email or ident.member or 'nobody'} ({ident.how})")
    logs = [_golog(ctx.now, f"Listening on {_listen(c)} for {c.split('=')[0]}") for c in instances]
    logs.append(_golog(ctx.now, "Ready for new connections"))
    for conn in instances:
        derr = proxy_dial(ctx, ident, conn)
        if derr:
            logs.append(_golog(ctx.now, "[Health Check] Readiness failed because proxy couldn't connect to "
                                        f"\"{conn.split('=')[0]}\": {derr}"))
            return Verdict(True, tuple(logs), ready=False, rule="cloudsqlproxy-ready",
                           source=PROXY_SRC + "cmd/cloud_sql_proxy/internal/healthcheck/healthcheck.go",
                           message=f"Cloud SQL proxy not ready: {derr}")
    return Verdict(True, tuple(logs), rule="cloudsqlproxy", source=src)


def _listen(conn: str) -> str:
    opts = conn.split("=", 1)[1] if "=" in conn else ""
    return opts.split(":", 1)[1] if opts.startswith("tcp:") else opts or "/cloudsql"


# ---------------------------------------------------------------- MySQL through the proxy Service
def _service_host(host: str) -> str:
    return host.split(".")[0]


def mysql_error(ctx: Ctx, host: str, port: str, user: str, password: str) -> tuple[str | None, str]:
    """The go-sql-driver/mysql error a component gets (or None) and a note for the request log."""
    svc = ctx.view.get("Service", ctx.ns, _service_host(host))
    if svc is None:
        return f"dial tcp: lookup {host} on {DNS_IP}:53: no such host", f"no Service {host}"
    ip = (svc.get("spec") or {}).get("clusterIP") or "10.8.0.1"
    selector = (svc.get("spec") or {}).get("selector") or {}
    dep_name = selector.get("app") or selector.get("component") or ""
    dep = ctx.view.get("Deployment", ctx.ns, dep_name) if dep_name else None
    if dep is None or not ctx.view.deployment_available(ctx.ns, dep_name):
        return (f"dial tcp {ip}:{port or 3306}: connect: connection refused",
                f"Service {host} has no ready endpoints (Deployment {dep_name or '?'} not available)")
    pod = ident_mod.template_pod(dep)
    proxy = next((c for c in (pod["spec"].get("containers") or []) if component_of(pod, c) == "cloudsqlproxy"),
                 None)
    if proxy is None:
        return None, f"Service {host} is not the Cloud SQL proxy: not modelled"
    penv = container_env(ctx.view, pod, proxy)
    conns = _proxy_instances(make_argv(proxy, penv))
    if not conns:
        return None, "the proxy names no instance: not modelled"
    proj, _region, name, err = _split_conn(conns[0])
    if err:
        return f"dial tcp {ip}:{port or 3306}: connect: connection refused", err
    client_host = f"cloudsqlproxy~{ident_mod.node_ip(ctx.view, ctx.pod)}"
    denied = (f"Error 1045 (28000): Access denied for user '{user}'@'{client_host}' "
              f"(using password: {'YES' if password else 'NO'})")
    from ..apis.sqladmin import password_matches

    prefix = f"{proj}/{name}/"
    for k, u in ctx.data["sql_users"].items():
        if (k.startswith(prefix) and u.get("name") == user and u.get("host", "%") in ("%", "")
                and not u.get("_gone") and (u.get("_ready_at") or 0) <= ctx.now):
            if password_matches(u, password):
                return None, f"MySQL user {user} of {proj}:{name} accepted"
            return denied, f"password of {user} on {proj}:{name} does not match mysql-secret"
    return denied, f"no MySQL user {user!r} on {proj}:{name}"


# ---------------------------------------------------------------- ml-pipeline (API server)
APISERVER_SRC = KFP + "backend/src/apiserver/client_manager/client_manager.go"


def _bucket_error(ctx: Ctx, bucket: str) -> tuple[str | None, str, str]:
    """(error of BucketExists/MakeBucket through the MinIO GCS gateway or None, where (exists|create), note).

    minio-go v7.0.94 BucketExists: client-side name check (pkg/s3utils CheckValidBucketName), then HEAD; a body-less
    403 is "Access Denied.", another status its status line (api-error-response.go httpRespToErrorResponse).
    The 2019 gateway (minio cmd/gateway/gcs/gateway-gcs.go) maps a GCS 403 to AccessDenied; a token it cannot get
    is an internal error (500). A 404 makes ml-pipeline call MakeBucket, which the gateway turns into a GCS
    buckets.insert in its project."""
    if not bucket.strip():
        return "Bucket name cannot be empty", "exists", "empty bucketName"
    if len(bucket) < 3:
        return "Bucket name cannot be shorter than 3 characters", "exists", ""
    dep = ctx.view.get("Deployment", ctx.ns, "minio")
    if dep is None or not ctx.view.deployment_available(ctx.ns, "minio"):
        return ("Head \"http://minio-service.kubeflow:9000/" + bucket + "/\": dial tcp 10.8.0.2:9000: connect: "
                "connection refused"), "exists", "the MinIO GCS gateway (Deployment minio) is not available"
    pod = ident_mod.template_pod(dep)
    gw = next((c for c in pod["spec"].get("containers") or [] if component_of(pod, c) == "minio-gcs-gateway"), None)
    if gw is None:
        return None, "exists", "Deployment minio is not the GCS gateway: not modelled"
    gw_ident = ctx.identity(pod, gw)
    if not gw_ident.usable:
        return "500 Internal Server Error", "exists", f"gateway has no token: {gw_ident.error.strip()}"
    gw_project = (make_argv(gw, container_env(ctx.view, pod, gw)) + ["", "", ""])[2]
    b = ctx.data["buckets"].get(bucket)
    if b is None:
        from ..apis.storage import valid_name

        if not valid_name(bucket):
            return "400 Bad Request", "exists", f"{bucket!r} is not a valid GCS bucket name"
        if not gw_ident.can(ctx.data, "storage.buckets.create", project=gw_project):
            return "Access Denied.", "create", f"{gw_ident.email} lacks storage.buckets.create on {gw_project}"
        return None, "create", f"bucket {bucket} created by the gateway in project {gw_project} (location US)"
    if not gw_ident.can(ctx.data, "storage.buckets.get", project=b["_project"], bucket=bucket):
        return "Access Denied.", "exists", (f"{gw_ident.email or gw_ident.member} lacks storage.buckets.get on "
                                            f"gs://{bucket} ({gw_ident.how})")
    return None, "exists", f"{gw_ident.email} can read gs://{bucket}"


def _create_bucket(ctx: Ctx, bucket: str, project: str) -> None:
    from ..apis.storage import new_bucket_record

    p = ctx.data["projects"].get(project)
    if p is None or bucket in ctx.data["buckets"]:
        return
    ctx.data["buckets"][bucket] = new_bucket_record(bucket, project, p["projectNumber"], {"location": "US"},
                                                    ctx.now)
    ctx.server.store.touch()


def _db_fatal(ctx: Ctx, err: str, where: str = "error.go:434") -> str:
    return _glog("F", ctx.now, where, err)


def rule_ml_pipeline(ctx: Ctx) -> Verdict:
    e = ctx.env
    user = e.get("DBCONFIG_MYSQLCONFIG_USER", e.get("DBCONFIG_USER", "root"))
    password = e.get("DBCONFIG_MYSQLCONFIG_PASSWORD", e.get("DBCONFIG_PASSWORD", ""))
    host = e.get("DBCONFIG_MYSQLCONFIG_HOST", e.get("DBCONFIG_HOST", "mysql"))
    port = e.get("DBCONFIG_MYSQLCONFIG_PORT", e.get("DBCONFIG_PORT", "3306"))
    logs = [_glog("I", ctx.now, "client_manager.go:271", "Initializing client manager"),
            _glog("I", ctx.now, "client_manager.go:272", "Initializing DB client...")]
    err, note = mysql_error(ctx, host, port, user, password)
    if err:
        # initDBDriver: CREATE DATABASE retried for initConnectionTimeout, then util.TerminateIfError (glog.Fatalf)
        return _fail("ml-pipeline-mysql", KFP + "backend/src/apiserver/client_manager/client_manager.go "
                     "(initDBDriver) + backend/src/common/util/error.go (TerminateIfError)",
                     logs + [_db_fatal(ctx, err)], f"ml-pipeline cannot use MySQL: {note}", 255)
    logs += [_glog("I", ctx.now, "client_manager.go:275", "DB client initialized successfully"),
             _glog("I", ctx.now, "client_manager.go:287", "Initializing Object store client...")]
    bucket = e.get("OBJECTSTORECONFIG_BUCKETNAME", e.get("BUCKET_NAME", ""))
    berr, where, bnote = _bucket_error(ctx, bucket)
    if berr:
        msg = (f"Failed to check if object store bucket exists. Error: {berr}" if where == "exists" else
               f"Failed to create object store bucket. Error: {berr}")
        return _fail("ml-pipeline-bucket", APISERVER_SRC + " (createMinioBucket)",
                     logs + [_glog("F", ctx.now, "client_manager.go:653" if where == "exists" else
                                   "client_manager.go:662", msg)], f"ml-pipeline: {bnote}", 255)
    if where == "create":
        dep = ctx.view.get("Deployment", ctx.ns, "minio")
        gpod = ident_mod.template_pod(dep)
        gw = next(c for c in gpod["spec"]["containers"] if component_of(gpod, c) == "minio-gcs-gateway")
        _create_bucket(ctx, bucket, (make_argv(gw, container_env(ctx.view, gpod, gw)) + ["", "", ""])[2])
        logs.append(_glog("I", ctx.now, "client_manager.go:664", f"Successfully created bucket {bucket}"))
    else:
        logs.append(_glog("I", ctx.now, "client_manager.go:656", f"We already own {bucket}"))
    logs.append(_glog("I", ctx.now, "client_manager.go:289", "Object store client initialized successfully"))
    return Verdict(True, tuple(logs), rule="ml-pipeline", source=APISERVER_SRC, message=bnote)


# ---------------------------------------------------------------- metadata-grpc, cache server
def rule_metadata_grpc(ctx: Ctx) -> Verdict:
    """google/ml-metadata v1.14.0 ml_metadata/metadata_store/metadata_store_server_main.cc: CHECK_EQ on
    CreateMetadataStore's status (abort: exit 134)."""
    e = ctx.env
    err, note = mysql_error(ctx, e.get("MYSQL_HOST", "mysql"), e.get("MYSQL_PORT", "3306"),
                            e.get("DBCONFIG_USER", "root"), e.get("DBCONFIG_PASSWORD", ""))
    if err:
        detail = err.split(": ", 1)[-1] if err.startswith("Error 1045") else err
        errno = "1045" if err.startswith("Error 1045") else "2003"
        line = _glog("F", ctx.now, "metadata_store_server_main.cc:555",
                     "Check failed: absl::OkStatus() == status (OK vs. INTERNAL: mysql_real_connect failed: "
                     f"errno: {errno}, error: {detail} [mysql-error-info='']) MetadataStore cannot be created with "
                     "the given connection config.")
        return _fail("metadata-grpc-mysql", "google/ml-metadata@v1.14.0:ml_metadata/metadata_store/"
                     "metadata_store_server_main.cc", [line, "*** Check failure stack trace: ***"],
                     f"metadata-grpc cannot use MySQL: {note}", 134)
    return Verdict(True, rule="metadata-grpc", source=KFP + "manifests/kustomize/base/metadata/base/"
                   "metadata-grpc-deployment.yaml", message=note)


def rule_cache_server(ctx: Ctx) -> Verdict:
    """backend/src/cache/client_manager.go initMysql: CREATE DATABASE IF NOT EXISTS / USE, then
    util.TerminateIfError."""
    e = ctx.env
    err, note = mysql_error(ctx, e.get("DBCONFIG_HOST_NAME", "mysql"), e.get("DBCONFIG_PORT", "3306"),
                            e.get("DBCONFIG_USER", "root"), e.get("DBCONFIG_PASSWORD", ""))
    if err:
        return _fail("cache-server-mysql", KFP + "backend/src/cache/client_manager.go (initMysql)",
                     [_golog(ctx.now, "Initing client manager...."), _db_fatal(ctx, err)],
                     f"cache-server cannot use MySQL: {note}", 255)
    return Verdict(True, (_golog(ctx.now, "Initing client manager...."), _golog(ctx.now, "Database created")),
                   rule="cache-server", source=KFP + "backend/src/cache/client_manager.go", message=note)


# ---------------------------------------------------------------- clients of ml-pipeline
def _api_server_available(ctx: Ctx) -> bool:
    return ctx.view.deployment_available(ctx.ns, "ml-pipeline")


def rule_persistenceagent(ctx: Ctx) -> Verdict:
    src = KFP + "backend/src/agent/persistence/main.go + backend/src/common/util/service.go (WaitForAPIAvailable)"
    if _api_server_available(ctx):
        return Verdict(True, rule="persistenceagent", source=src)
    inner = ('Waiting for ml pipeline API server failed after all attempts.: Get '
             '"http://ml-pipeline:8888/apis/v1beta1/healthz": dial tcp 10.8.0.3:8888: connect: connection refused')
    msg = (f"Error creating ML pipeline API Server client: Failed to initialize pipeline client. Error: {inner}: "
           f"{inner}")
    return _fail("persistenceagent-api", src, [_logrus(ctx.now, "fatal", msg)],
                 "persistence agent: ml-pipeline not available (waits initializeTimeout=2m, then exits)")


def rule_scheduledworkflow(ctx: Ctx) -> Verdict:
    src = KFP + "backend/src/crd/controller/scheduledworkflow/main.go (GetRpcConnectionWithTimeout, 1 minute)"
    if _api_server_available(ctx):
        return Verdict(True, rule="scheduledworkflow", source=src)
    return _fail("scheduledworkflow-api", src, [
        _logrus(ctx.now, "info", "Connecting the API server over GRPC at: ml-pipeline:8887"),
        _logrus(ctx.now, "fatal", "Error connecting to the API server after trying for one minute: Failed to create "
                                  "gRPC connection: context deadline exceeded")],
        "scheduled workflow controller: ml-pipeline not available")


# ---------------------------------------------------------------- MinIO GCS gateway
def rule_minio_gateway(ctx: Ctx) -> Verdict:
    """minio RELEASE.2019-08-14 cmd/gateway/gcs/gateway-gcs.go gcsGatewayMain: the project id argument must be a
    valid GCP project id (else the usage text, exit 1); the storage client is made from ADC, which on GKE always
    finds the metadata server, so a missing identity shows up later as failed requests (see ml-pipeline)."""
    src = "minio/minio@RELEASE.2019-08-14T20-37-41Z:cmd/gateway/gcs/gateway-gcs.go"
    args = ctx.argv
    project = args[args.index("gcs") + 1] if "gcs" in args and args.index("gcs") + 1 < len(args) else ""
    if not project and not ctx.env.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return _fail("minio-gateway-project", src, ["API: SYSTEM()", "Error: Unknown project id"],
                     "MinIO GCS gateway: no project id argument")
    if project and not re.match(r"^[a-z][a-z0-9-]{5,29}$", project):
        return _fail("minio-gateway-project", src, [
            "API: SYSTEM()", f"Time: {time.strftime('%H:%M:%S UTC %m/%d/%Y', time.gmtime(ctx.now))}",
            "Error: GCS project id is either empty or invalid", f'       projectID="{project}"'],
            f"MinIO GCS gateway: {project!r} is not a project id")
    ident = ctx.identity()
    return Verdict(True, rule="minio-gateway", source=src,
                   message=f"gateway identity: {ident.email or ident.member or 'none'} ({ident.how})"
                           + (f"; token error: {ident.error.strip()}" if ident.error else ""))


# ---------------------------------------------------------------- inverse proxy agent
def rule_proxy_agent(ctx: Ctx) -> Verdict:
    src = KFP + "proxy/attempt-register-vm-on-proxy.sh + proxy/get_proxy_url.py"
    cm = ctx.view.get("ConfigMap", ctx.ns, "inverse-proxy-config") or {}
    if (cm.get("data") or {}).get("Hostname"):
        return Verdict(True, ("+ echo 'Reuse existing hostname'", "Reuse existing hostname"), rule="proxy-agent",
                       source=src)
    zone = ident_mod.node_zone(ctx.view, ctx.cluster, ctx.pod)
    region = zone.rsplit("-", 1)[0]
    served = (ctx.data.get("scenario", {}).get("inverse_proxy_regions") or {}).get(region, True)
    if not served:
        return _fail("proxy-agent-region", src, [
            "++ python3 /opt/proxy/get_proxy_url.py --config-file-path proxy-agent-config.json --location "
            f"{zone} --version latest",
            "Traceback (most recent call last):",
            "  File \"/opt/proxy/get_proxy_url.py\", line 115, in <module>",
            "    main()",
            "  File \"/opt/proxy/get_proxy_url.py\", line 94, in main",
            "    raise ValueError(\"No valid URLs found for zone: {}\".format(location))",
            f"ValueError: No valid URLs found for zone: {zone}",
            "+ PROXY_URL="], f"no inverse proxy serves {region} (scenario inverse_proxy_region)")
    ident = ctx.identity()
    if not ident.usable:
        return _fail("proxy-agent-identity", src, [
            "ERROR: (gcloud.auth.print-access-token) There was a problem refreshing your current auth tokens: "
            + ident.error.strip()], f"proxy agent has no Google identity: {ident.how}")
    return Verdict(True, rule="proxy-agent", source=src, message=f"inverse proxy for {region}")


# ---------------------------------------------------------------- Argo workflow controller
def rule_workflow_controller(ctx: Ctx) -> Verdict:
    """argoproj/argo-workflows@v3.6.7 workflow/controller/config.go updateConfig only records the artifact
    repository; nothing reaches the bucket before a workflow runs. So the controller starts; a placeholder or
    missing bucket is reported in the request log (the failure is the first run's artifact upload)."""
    src = "argoproj/argo-workflows@v3.6.7:workflow/controller/config.go"
    cm = ctx.view.get("ConfigMap", ctx.ns, "workflow-controller-configmap") or {}
    repo = (cm.get("data") or {}).get("artifactRepository") or ""
    bucket = ""
    for line in repo.splitlines():
        s = line.strip()
        if s.startswith("bucket:"):
            bucket = s.split(":", 1)[1].strip().strip('"').strip("'")
            break
    note = ""
    if bucket and bucket not in ctx.data["buckets"]:
        note = (f"artifact repository bucket {bucket!r} does not exist"
                + (" (a placeholder)" if bucket == "yourGcsBucketName" else "")
                + ": runs will fail to upload artifacts")
    return Verdict(True, rule="workflow-controller", source=src, message=note)


# ---------------------------------------------------------------- a run's task: the KFP launcher (launcher-v2)
LAUNCHER = "/kfp-launcher/launch"
LAUNCHER_SRC = (KFP + "backend/src/v2/cmd/launcher-v2/main.go (glog.Exit), backend/src/v2/component/launcher_v2.go "
                "(uploadOutputArtifacts, downloadArtifacts), backend/src/v2/objectstore/object_store.go (OpenBucket, "
                "UploadBlob, DownloadBlob, getS3BucketCredential), backend/src/v2/config/env.go (kfp-launcher "
                "ConfigMap, mlpipeline-minio-artifact)")
MINIO_SECRET = "mlpipeline-minio-artifact"


def _blob_denied(ctx: Ctx, scheme: str, who: str, perm: str, key: str) -> str:
    """The object store's refusal as gocloud's blob package wraps it (``blob (key …) (code=PermissionDenied)``):
    through the MinIO gateway, the S3 error of aws-sdk-go v1 (the gateway maps a GCS 403 to AccessDenied); on
    gs://, the GCS JSON API's 403 text."""
    if scheme == "minio":
        return (f'blob (key "{key}") (code=PermissionDenied): AccessDenied: Access Denied.\n\tstatus code: 403, '
                f"request id: {int(ctx.now * 1e6):X}, host id: ")
    return (f'blob (key "{key}") (code=PermissionDenied): googleapi: Error 403: {who} does not have {perm} access '
            f"to the Google Cloud Storage object. Permission '{perm}' denied on resource (or it may not exist)., "
            "forbidden")


def _store_access(ctx: Ctx, uri: str, perm: str) -> tuple[str, str]:
    """Can this task reach ``uri`` with ``perm``? ("" or the error text, the judge's note). ``minio://`` goes
    through the GCS gateway (Service minio-service) with the keys of Secret mlpipeline-minio-artifact, so the
    gateway's Google identity is the one that needs the permission; ``gs://`` uses the pod's own identity (the
    pipeline-runner KSA as GKE resolves it)."""
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme == "minio":
        sec = ctx.view.get("Secret", ctx.ns, MINIO_SECRET)
        data = (sec or {}).get("data") or {}
        if sec is None or not data.get("accesskey") or not data.get("secretkey"):
            inner = (f'secrets "{MINIO_SECRET}" not found' if sec is None else "could not find required bucket "
                     "credential values; both access key and secret key must be present")
            return (f'Failed to open bucket "{bucket}": Failed to retrieve credentials for bucket {bucket}: failed '
                    f'to get Bucket credentials from secret name="{MINIO_SECRET}" namespace="{ctx.ns}": {inner}',
                    f"Secret {MINIO_SECRET} missing or incomplete")
        dep = ctx.view.get("Deployment", ctx.ns, "minio")
        if dep is None or not ctx.view.deployment_available(ctx.ns, "minio"):
            return (f'blob (key "{key}") (code=Unknown): RequestError: send request failed\ncaused by: Put '
                    f'"http://minio-service.{ctx.ns}:9000/{bucket}/{key}": dial tcp 10.8.0.2:9000: connect: '
                    "connection refused", "the MinIO GCS gateway is not available")
        pod = ident_mod.template_pod(dep)
        gw = next((c for c in pod["spec"].get("containers") or [] if component_of(pod, c) == "minio-gcs-gateway"),
                  None)
        if gw is None:
            return "", "Deployment minio is not the GCS gateway: not modelled"
        ident = ctx.identity(pod, gw)
        via = "the GCS gateway"
    elif scheme == "gs":
        ident = ctx.identity()
        via = "the task's own identity"
    else:
        return f"Encountered unsupported provider in provider config {scheme}", f"scheme {scheme!r}"
    b = ctx.data["buckets"].get(bucket)
    who = ident.email or ident.member or "the caller"
    if b is None:
        if scheme == "minio":
            return (f'blob (key "{key}") (code=NotFound): NoSuchBucket: The specified bucket does not exist\n\t'
                    "status code: 404", f"bucket {bucket} does not exist")
        return (f'blob (key "{key}") (code=NotFound): storage: bucket doesn\'t exist', f"bucket {bucket} missing")
    if not ident.usable:
        return _blob_denied(ctx, scheme, who, perm, key), f"{via} has no token: {ident.error.strip()}"
    if not ident.can(ctx.data, perm, project=b["_project"], bucket=bucket):
        return _blob_denied(ctx, scheme, who, perm, key), f"{who} ({via}, {ident.how}) lacks {perm} on gs://{bucket}"
    return "", f"{who} ({via}) has {perm} on gs://{bucket}"


def _write_object(ctx: Ctx, uri: str, text: str) -> None:
    import base64
    import hashlib

    bucket, _, key = uri.partition("://")[2].partition("/")
    now = ctx.now
    gen = str(int(now * 1e6))
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".000Z"
    media = text.encode()
    ctx.data.setdefault("objects", {}).setdefault(bucket, {})[key] = {
        "kind": "storage#object", "id": f"{bucket}/{key}/{gen}", "name": key, "bucket": bucket,
        "generation": gen, "metageneration": "1", "contentType": "application/octet-stream",
        "storageClass": ctx.data["buckets"][bucket].get("storageClass", "STANDARD"), "size": str(len(media)),
        "md5Hash": base64.b64encode(hashlib.md5(media).digest()).decode(), "etag": f"C{gen[-8:]}EAE=",
        "timeCreated": ts, "updated": ts, "timeStorageClassUpdated": ts,
        "_data": base64.b64encode(media).decode()}
    ctx.server.store.touch()


def rule_launcher(ctx: Ctx) -> Verdict:
    """A run's task (``/kfp-launcher/launch … -- <component command>``): download the input artifacts (list, then
    get), run the component, upload the output artifacts (create), each through the pipeline root's provider;
    a failure ends the launcher with glog.Exit (``F…`` line, exit 1)."""
    args = ctx.argv

    def flag(name: str) -> str:
        return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else ""

    try:
        ex = json.loads(flag("--executor_input") or "{}")
    except ValueError:
        ex = {}
    task = flag("--task_name")
    logs = [_glog("I", ctx.now, "main.go:76", "input ComponentSpec:…"),
            _glog("I", ctx.now, "cache.go:139", "Cannot detect ml-pipeline in the same namespace, default to "
                                                "ml-pipeline.kubeflow:8887 as KFP endpoint.")]

    def fail(err: str, note: str) -> Verdict:
        return _fail("kfp-launcher", LAUNCHER_SRC, logs + [_glog("F", ctx.now, "main.go:53",
                                                                  f"failed to execute component: {err}")],
                     f"task {task}: {note}", 1)

    for name, lst in ((ex.get("inputs") or {}).get("artifacts") or {}).items():
        for a in lst.get("artifacts") or []:
            uri = a["uri"]
            key = uri.partition("://")[2].partition("/")[2]
            for perm in ("storage.objects.list", "storage.objects.get"):
                err, note = _store_access(ctx, uri, perm)
                if err:
                    return fail(f'failed to download input artifact "{name}" from remote storage URI "{uri}": '
                                f'failed to list objects in remote storage "{key}": {err}', note)
            bucket = uri.partition("://")[2].partition("/")[0]
            if key not in (ctx.data.get("objects") or {}).get(bucket, {}):
                return _fail("kfp-launcher-input", LAUNCHER_SRC, logs + [
                    "Traceback (most recent call last):",
                    f"FileNotFoundError: [Errno 2] No such file or directory: '/minio/{bucket}/{key}'"],
                    f"task {task}: input {uri} was never written", 1)
            logs.append(_glog("I", ctx.now, "object_store.go", f'downloadFile(blobFilePath="{key}", '
                                                               f'localFilePath="/{uri.partition("://")[0]}/{bucket}/{key}")'))
    outs = []
    for name, lst in ((ex.get("outputs") or {}).get("artifacts") or {}).items():
        for a in lst.get("artifacts") or []:
            uri = a["uri"]
            key = uri.partition("://")[2].partition("/")[2]
            local = f"/{uri.partition('://')[0]}/{uri.partition('://')[2]}"
            err, note = _store_access(ctx, uri, "storage.objects.create")
            if err:
                return fail(f'failed to upload output artifact "{name}" to remote storage URI "{uri}": '
                            f'uploadFile(): unable to complete copying "{local}" to remote storage "{key}": '
                            f"failed to close Writer for bucket: {err}", note)
            outs.append(uri)
            logs.append(_glog("I", ctx.now, "object_store.go", f'uploadFile(localFilePath="{local}", '
                                                               f'blobFilePath="{key}")'))
    for uri in outs:
        _write_object(ctx, uri, f"written by task {task}\n")
    return Verdict(True, tuple(logs), rule="kfp-launcher", source=LAUNCHER_SRC, completes=True,
                   message=f"task {task}: artifacts written to {', '.join(outs) or 'nothing'}")


RULES: dict[str, Callable[[Ctx], Verdict]] = {
    "kfp-launcher": rule_launcher,
    "cloudsqlproxy": rule_cloudsqlproxy,
    "minio-gcs-gateway": rule_minio_gateway,
    "ml-pipeline": rule_ml_pipeline,
    "metadata-grpc": rule_metadata_grpc,
    "cache-server": rule_cache_server,
    "persistenceagent": rule_persistenceagent,
    "scheduledworkflow": rule_scheduledworkflow,
    "proxy-agent": rule_proxy_agent,
    "workflow-controller": rule_workflow_controller,
}


def judge(server: Any, data: dict, cluster: dict, view: Any, pod: dict, container: dict,
          now: float | None = None) -> Verdict:
    comp = component_of(pod, container)
    if comp is None:
        return ALLOW
    env = container_env(view, pod, container)
    ctx = Ctx(server, data, cluster, view, pod, container, env, make_argv(container, env), now or time.time(),
              (pod.get("metadata") or {}).get("namespace", "default"))
    return RULES[comp](ctx)
