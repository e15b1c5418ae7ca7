"""Cloud SQL Admin v1beta4 (and the same at v1): instances, users, databases, operations; one operation at a
time per instance (§6, §12.10)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
import secrets
import time
import uuid

from .. import catalog
from ..errors import ApiError
from ..faults import take_op_fault
from ..routing import Ctx, Router
from ..store import utc

NAME_RX = re.compile(r"^[a-z](?:[a-z0-9-]{0,96}[a-z0-9])?$")
VERSIONS = ("MYSQL_5_7", "MYSQL_8_0", "MYSQL_8_4", "POSTGRES_14", "POSTGRES_15", "POSTGRES_16", "POSTGRES_17")
BUSY = ("Operation failed because another operation was already in progress. Try your request after the current "
        "operation is complete.")


def _err(status: str, message: str, reason: str, http: int | None = None) -> ApiError:
    return ApiError(status, message, reason=reason, style="compute", http=http)


def _prefix(ctx: Ctx) -> str:
    return "sql/v1beta4" if ctx.request.path.startswith("/sql/v1beta4/") else "v1"


def _link(ctx: Ctx, path: str) -> str:
    return f"{ctx.srv.url}/{_prefix(ctx)}/{path}"


def _missing_instance() -> ApiError:
    return _err("NOT_FOUND", "The Cloud SQL instance does not exist.", "instanceDoesNotExist")


def _get(ctx: Ctx, pid: str, name: str) -> dict:
    rec = ctx.data["sql_instances"].get(f"{pid}/{name}")
    if rec is None:
        raise _missing_instance()
    return rec


def _busy(ctx: Ctx, inst: dict) -> None:
    now = time.time()
    for op in ctx.data["sql_operations"].values():
        if op["_instance"] == inst["_key"] and now < op["_done_at"]:
            raise _err("ABORTED", BUSY, "operationInProgress", http=409)


def _to_change(ctx: Ctx, project: str, instance: str, permission: str) -> tuple[str, dict]:
    """(project id, instance) for a call that changes the instance or its users: the caller holds ``permission``
    on it, it exists (404), and no operation runs on it (409 operationInProgress)."""
    pid = ctx.project(project)["projectId"]
    ctx.require(permission, f"projects/{pid}/instances/{instance}")
    rec = _get(ctx, pid, instance)
    _busy(ctx, rec)
    return pid, rec


def _runnable(rec: dict) -> None:
    """An instance that is not RUNNABLE refuses patches and calls on its users (409 invalidState)."""
    if rec["state"] != "RUNNABLE":
        raise _err("ABORTED", "The instance or operation is not in an appropriate state to handle the request.",
                   "invalidState", http=409)


def instance_view(ctx: Ctx, rec: dict) -> dict:
    out = copy.deepcopy({k: v for k, v in rec.items() if not k.startswith("_")})
    out["selfLink"] = _link(ctx, f"projects/{rec['project']}/instances/{rec['name']}")
    return out


def new_op(ctx: Ctx, inst: dict, op_type: str, duration: float, fault_kind: str | None) -> dict:
    now = ctx.now
    name = str(uuid.uuid4())
    pid = inst["project"]
    op = {"kind": "sql#operation", "targetLink": _link(ctx, f"projects/{pid}/instances/{inst['name']}"),
          "user": ctx.caller or "anonymous", "insertTime": utc(now), "operationType": op_type, "name": name,
          "targetId": inst["name"], "targetProject": pid, "_instance": inst["_key"], "_project": pid,
          "_start_at": now + min(0.5 * ctx.speed, duration / 10), "_done_at": now + duration, "_error": None}
    fault = take_op_fault(ctx.srv, fault_kind) if fault_kind else None
    if fault:
        op["_error"] = {"kind": "sql#operationErrors", "errors": [{
            "kind": "sql#operationError", "code": fault.get("code") or "INTERNAL_ERROR",
            "message": fault.get("message") or "An internal error has occurred. Please retry the operation."}]}
    ctx.data["sql_operations"][name] = op
    ctx.store.touch()
    return op


def op_view(ctx: Ctx, op: dict) -> dict:
    now = ctx.now  # the request's time: what was due by then has happened (see the server's dispatch)
    out = {k: v for k, v in op.items() if not k.startswith("_")}
    out["selfLink"] = _link(ctx, f"projects/{op['_project']}/operations/{op['name']}")
    if now < op["_start_at"]:
        out["status"] = "PENDING"
    elif now < op["_done_at"]:
        out.update(status="RUNNING", startTime=utc(op["_start_at"]))
    else:
        out.update(status="DONE", startTime=utc(op["_start_at"]), endTime=utc(op["_done_at"]))
        if op["_error"]:
            out["error"] = op["_error"]
    return out


async def insert_instance(ctx: Ctx, project: str) -> dict:
    p = ctx.project(project)
    pid = p["projectId"]
    b = ctx.body
    name = b.get("name") or ""
    ctx.require("cloudsql.instances.create", f"projects/{pid}")
    if not NAME_RX.match(name):
        raise _err("INVALID_ARGUMENT", f"Invalid request: instance name ({name}).", "invalid")
    key = f"{pid}/{name}"
    if key in ctx.data["sql_instances"]:
        raise _err("ALREADY_EXISTS", "The Cloud SQL instance already exists.", "instanceAlreadyExists")
    deleted = ctx.data["sql_deleted_names"].get(key)
    reuse = float(ctx.data["scenario"].get("sql_name_reuse_seconds") or 0)
    if deleted and time.time() - deleted < reuse:
        raise _err("ALREADY_EXISTS", "The Cloud SQL instance already exists. When you delete an instance, you can't "
                   "reuse the name of the deleted instance until one week from the deletion date.",
                   "instanceAlreadyExists")
    region = b.get("region") or "us-central1"
    if region not in catalog.REGIONS:
        raise _err("INVALID_ARGUMENT", f"Invalid request: region ({region}) is not valid.", "invalid")
    version = b.get("databaseVersion") or "MYSQL_8_0"
    if version not in VERSIONS and not re.match(r"^MYSQL_8_0_\d+$", version):
        raise _err("INVALID_ARGUMENT", f"Invalid request: Invalid database version: {version}.", "invalid")
    settings = copy.deepcopy(b.get("settings") or {})
    if not settings.get("tier"):
        raise _err("INVALID_ARGUMENT", "Invalid request: Missing tier in settings.", "invalid")
    # Settings.edition: without it the instance gets the default edition, ENTERPRISE_PLUS for the newest versions
    # (https://cloud.google.com/sql/docs/mysql/editions-intro) and for some projects whatever the version (scenario
    # sql_default_edition); a tier outside the edition's machine series is refused
    # (https://cloud.google.com/sql/docs/mysql/machine-series-overview; the message as seen in public logs).
    edition = settings.get("edition") or ctx.data["scenario"].get("sql_default_edition") or (
        "ENTERPRISE_PLUS" if version in ("MYSQL_8_4", "POSTGRES_16", "POSTGRES_17") else "ENTERPRISE")
    plus_tier = settings["tier"].startswith(("db-perf-optimized-", "db-c4a-"))
    if edition not in ("ENTERPRISE", "ENTERPRISE_PLUS") or plus_tier != (edition == "ENTERPRISE_PLUS"):
        raise _err("INVALID_ARGUMENT", f"Invalid request: Invalid Tier ({settings['tier']}) for ({edition}) Edition."
                   + (" Use a predefined Tier like db-perf-optimized-N-* instead." if edition == "ENTERPRISE_PLUS"
                      else ""), "invalid")
    settings["edition"] = edition
    settings.setdefault("kind", "sql#settings")
    settings.setdefault("availabilityType", "ZONAL")
    settings.setdefault("pricingPlan", "PER_USE")
    settings.setdefault("activationPolicy", "ALWAYS")
    settings.setdefault("dataDiskType", "PD_SSD")
    settings.setdefault("dataDiskSizeGb", "10")
    settings["dataDiskSizeGb"] = str(settings["dataDiskSizeGb"])
    settings.setdefault("storageAutoResize", True)
    settings.setdefault("ipConfiguration", {"ipv4Enabled": True})
    settings["ipConfiguration"].setdefault("ipv4Enabled", True)
    settings.setdefault("backupConfiguration", {"enabled": False, "kind": "sql#backupConfiguration"})
    settings.setdefault("deletionProtectionEnabled", False)
    settings.setdefault("locationPreference", {"zone": f"{region}-{'a' if region == 'europe-west4' else 'b'}"})
    settings["settingsVersion"] = "1"
    zone = settings["locationPreference"].get("zone") or catalog.REGIONS[region][0]
    rec = {
        "kind": "sql#instance", "state": "PENDING_CREATE", "databaseVersion": version, "settings": settings,
        "etag": secrets.token_hex(32), "ipAddresses": [], "instanceType": "CLOUD_SQL_INSTANCE", "project": pid,
        "serviceAccountEmailAddress": f"p{p['projectNumber']}-{secrets.token_hex(3)}"
                                      "@gcp-sa-cloud-sql.iam.gserviceaccount.com",
        "backendType": "SECOND_GEN", "connectionName": f"{pid}:{region}:{name}", "name": name,
        "region": region, "gceZone": zone, "databaseInstalledVersion": version + ("_41" if "MYSQL" in version else ""),
        "createTime": utc(time.time()), "sqlNetworkArchitecture": "NEW_NETWORK_ARCHITECTURE",
        "_key": key,
    }
    ctx.data["sql_instances"][key] = rec
    root_users = {"root": "%"} if version.startswith("MYSQL") else {"postgres": ""}
    for uname, host in root_users.items():
        ctx.data["sql_users"][f"{key}/{uname}/{host}"] = {"name": uname, "host": host, "_ready_at": 0}
    op = new_op(ctx, rec, "CREATE", ctx.dur("sql.create"), "sql.create")
    ctx.srv.schedule(op["_done_at"], "sql.created", key=key, op=op["name"])
    return op_view(ctx, op)


async def get_instance(ctx: Ctx, project: str, instance: str) -> dict:
    pid = ctx.project(project)["projectId"]
    ctx.require("cloudsql.instances.get", f"projects/{pid}/instances/{instance}")
    return instance_view(ctx, _get(ctx, pid, instance))


async def list_instances(ctx: Ctx, project: str) -> dict:
    pid = ctx.project(project)["projectId"]
    ctx.require("cloudsql.instances.list", f"projects/{pid}")
    items = [instance_view(ctx, r) for r in ctx.data["sql_instances"].values() if r["project"] == pid]
    return {"kind": "sql#instancesList", "items": items} if items else {"kind": "sql#instancesList"}


def _merge(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)


async def patch_instance(ctx: Ctx, project: str, instance: str) -> dict:
    pid, rec = _to_change(ctx, project, instance, "cloudsql.instances.update")
    _runnable(rec)
    if "settings" in ctx.body:
        # a running instance's storage only grows through a patch ("Size of a running instance cannot be reduced but
        # can be increased": terraform-provider-google#1612, #9845; the 400's wording is *assumed*)
        want = (ctx.body["settings"] or {}).get("dataDiskSizeGb")
        if want is not None and int(want) < int(rec["settings"].get("dataDiskSizeGb") or 0):
            raise _err("INVALID_ARGUMENT", f"Invalid request: the disk size cannot be decreased (from "
                       f"{rec['settings']['dataDiskSizeGb']} GB to {want} GB).", "invalid")
        _merge(rec["settings"], ctx.body["settings"])
        rec["settings"]["settingsVersion"] = str(int(rec["settings"].get("settingsVersion", "1")) + 1)
    rec["etag"] = secrets.token_hex(32)
    op = new_op(ctx, rec, "UPDATE", ctx.dur("sql.patch"), "sql.update")
    return op_view(ctx, op)


async def delete_instance(ctx: Ctx, project: str, instance: str) -> dict:
    pid, rec = _to_change(ctx, project, instance, "cloudsql.instances.delete")
    if rec["settings"].get("deletionProtectionEnabled"):
        raise _err("INVALID_ARGUMENT", "The instance is protected. Please disable the deletion protection and try "
                   "again. To disable deletion protection, update the instance settings with "
                   "deletionProtectionEnabled set to false.", "invalid")
    rec["state"] = "PENDING_DELETE"
    op = new_op(ctx, rec, "DELETE", ctx.dur("sql.delete"), "sql.delete")
    ctx.srv.schedule(op["_done_at"], "sql.deleted", key=rec["_key"], op=op["name"])
    return op_view(ctx, op)


def _users_of(ctx: Ctx, key: str) -> list[tuple[str, dict]]:
    now = time.time()
    return [(k, u) for k, u in ctx.data["sql_users"].items()
            if k.startswith(key + "/") and now >= u.get("_ready_at", 0) and not u.get("_gone")]


def _user_view(pid: str, inst: str, u: dict) -> dict:
    out = {"kind": "sql#user", "etag": "", "name": u["name"], "host": u["host"], "instance": inst, "project": pid}
    if u.get("type"):
        out["type"] = u["type"]
    return out


async def list_users(ctx: Ctx, project: str, instance: str) -> dict:
    pid = ctx.project(project)["projectId"]
    rec = _get(ctx, pid, instance)
    _runnable(rec)
    return {"kind": "sql#usersList", "items": [_user_view(pid, instance, u) for _, u in _users_of(ctx, rec["_key"])]}


async def get_user(ctx: Ctx, project: str, instance: str, user: str) -> dict:
    pid = ctx.project(project)["projectId"]
    rec = _get(ctx, pid, instance)
    host = ctx.query.get("host", "%")
    for _, u in _users_of(ctx, rec["_key"]):
        if u["name"] == user and u["host"] == host:
            return _user_view(pid, instance, u)
    raise _err("NOT_FOUND", "The Cloud SQL user does not exist.", "userDoesNotExist")


def password_fields(password: str | None) -> dict:
    """What the sandbox keeps of a SQL user's password: whether one is set and a salted SHA-256 of it."""
    salt = secrets.token_hex(8)
    digest = hashlib.sha256((salt + password).encode()).hexdigest() if password else ""
    return {"_password_set": bool(password), "_password_changed": time.time(), "_password_salt": salt,
            "_password_sha256": digest}


def password_matches(user: dict, password: str | None) -> bool:
    """Would MySQL accept ``password`` for this user record (``sql_users`` value)?"""
    if not password or not user.get("_password_sha256"):
        return False
    digest = hashlib.sha256((user.get("_password_salt", "") + password).encode()).hexdigest()
    return hmac.compare_digest(digest, user["_password_sha256"])


async def insert_user(ctx: Ctx, project: str, instance: str) -> dict:
    pid, rec = _to_change(ctx, project, instance, "cloudsql.users.create")
    _runnable(rec)
    name = ctx.body.get("name")
    if not name:
        raise _err("INVALID_ARGUMENT", "Invalid request: User name is required.", "invalid")
    host = ctx.body.get("host", "%") if rec["databaseVersion"].startswith("MYSQL") else ""
    key = f"{rec['_key']}/{name}/{host}"
    op = new_op(ctx, rec, "CREATE_USER", ctx.dur("sql.user_op"), "sql.user")
    existing = ctx.data["sql_users"].get(key)
    if existing and not existing.get("_gone"):
        if not op["_error"]:
            op["_error"] = {"kind": "sql#operationErrors", "errors": [{
                "kind": "sql#operationError", "code": "ERROR_RDBMS",
                "message": f"Operation CREATE USER failed for '{name}'@'{host}'"}]}
        return op_view(ctx, op)
    if not op["_error"]:
        # the password is never stored, only a salted hash (as MySQL keeps it): the workload model checks a
        # mysql-secret's password against it (sandbox/workloads)
        ctx.data["sql_users"][key] = {"name": name, "host": host, "_ready_at": op["_done_at"],
                                      **password_fields(ctx.body.get("password"))}
    return op_view(ctx, op)


async def update_user(ctx: Ctx, project: str, instance: str) -> dict:
    pid, rec = _to_change(ctx, project, instance, "cloudsql.users.update")
    name = ctx.query.get("name") or ctx.body.get("name")
    host = ctx.query.get("host", ctx.body.get("host", "%"))
    if not rec["databaseVersion"].startswith("MYSQL"):
        host = ""
    u = ctx.data["sql_users"].get(f"{rec['_key']}/{name}/{host}")
    if u is None or u.get("_gone") or time.time() < u.get("_ready_at", 0):
        raise _err("NOT_FOUND", "The Cloud SQL user does not exist.", "userDoesNotExist")
    op = new_op(ctx, rec, "UPDATE_USER", ctx.dur("sql.user_op"), "sql.user")
    if not op["_error"]:
        u.update(password_fields(ctx.body.get("password")))
    return op_view(ctx, op)


async def delete_user(ctx: Ctx, project: str, instance: str) -> dict:
    pid = ctx.project(project)["projectId"]
    rec = _get(ctx, pid, instance)
    _busy(ctx, rec)
    name = ctx.query.get("name")
    host = ctx.query.get("host", "%") if rec["databaseVersion"].startswith("MYSQL") else ""
    key = f"{rec['_key']}/{name}/{host}"
    if key not in ctx.data["sql_users"]:
        raise _err("NOT_FOUND", "The Cloud SQL user does not exist.", "userDoesNotExist")
    op = new_op(ctx, rec, "DELETE_USER", ctx.dur("sql.user_op"), "sql.user")
    ctx.data["sql_users"].pop(key, None)
    return op_view(ctx, op)


async def list_databases(ctx: Ctx, project: str, instance: str) -> dict:
    pid = ctx.project(project)["projectId"]
    rec = _get(ctx, pid, instance)
    names = ["information_schema", "mysql", "performance_schema", "sys"] + rec.get("_databases", [])
    return {"kind": "sql#databasesList", "items": [
        {"kind": "sql#database", "charset": "utf8mb4", "collation": "utf8mb4_0900_ai_ci", "etag": "", "name": n,
         "instance": instance, "project": pid, "selfLink": _link(ctx, f"projects/{pid}/instances/{instance}/"
                                                                      f"databases/{n}")} for n in names]}


async def insert_database(ctx: Ctx, project: str, instance: str) -> dict:
    pid = ctx.project(project)["projectId"]
    rec = _get(ctx, pid, instance)
    _busy(ctx, rec)
    name = ctx.body.get("name")
    if not name:
        raise _err("INVALID_ARGUMENT", "Invalid request: Database name is required.", "invalid")
    if name in rec.setdefault("_databases", []):
        raise _err("ALREADY_EXISTS", f"Database \"{name}\" already exists.", "alreadyExists", http=409)
    rec["_databases"].append(name)
    return op_view(ctx, new_op(ctx, rec, "CREATE_DATABASE", ctx.dur("sql.user_op"), "sql.database"))


async def get_operation(ctx: Ctx, project: str, operation: str) -> dict:
    ctx.project(project)
    op = ctx.data["sql_operations"].get(operation)
    if op is None:
        raise _err("NOT_FOUND", "The Cloud SQL instance operation does not exist.", "operationDoesNotExist")
    return op_view(ctx, op)


async def list_operations(ctx: Ctx, project: str) -> dict:
    pid = ctx.project(project)["projectId"]
    inst = ctx.query.get("instance")
    items = [op_view(ctx, o) for o in ctx.data["sql_operations"].values()
             if o["_project"] == pid and (not inst or o["targetId"] == inst)]
    items.reverse()
    return {"kind": "sql#operationsList", "items": items}


async def _created(srv, key: str, op: str) -> None:
    rec = srv.store.data["sql_instances"].get(key)
    o = srv.store.data["sql_operations"].get(op)
    if rec is None:
        return
    if o and o.get("_error"):
        rec["state"] = "FAILED"
    else:
        rec["state"] = "RUNNABLE"
        if rec["settings"]["ipConfiguration"].get("ipv4Enabled", True):
            rec["ipAddresses"] = [{"type": "PRIMARY", "ipAddress": f"34.{secrets.randbelow(200) + 20}."
                                   f"{secrets.randbelow(250)}.{secrets.randbelow(250) + 2}"}]
        rec["serverCaCert"] = {"kind": "sql#sslCert", "certSerialNumber": "0", "commonName":
                               "C=US,O=Google\\, Inc,CN=Google Cloud SQL Server CA", "instance": rec["name"],
                               "sha1Fingerprint": secrets.token_hex(20)}
    srv.store.touch()


async def _deleted(srv, key: str, op: str) -> None:
    data = srv.store.data
    o = data["sql_operations"].get(op)
    if o and o.get("_error"):
        if key in data["sql_instances"]:
            data["sql_instances"][key]["state"] = "RUNNABLE"
        return
    data["sql_instances"].pop(key, None)
    for k in [k for k in data["sql_users"] if k.startswith(key + "/")]:
        del data["sql_users"][k]
    data["sql_deleted_names"][key] = time.time()
    srv.store.touch()


ACTIONS = {"sql.created": _created, "sql.deleted": _deleted}


def register(r: Router) -> None:
    for prefix in ("/sql/v1beta4", "/v1"):
        a = dict(api="sqladmin", style="compute")
        base = prefix + "/projects/{project}"
        r.add("GET", base + "/instances", list_instances, **a)
        r.add("POST", base + "/instances", insert_instance, **a)
        r.add("GET", base + "/instances/{instance}", get_instance, **a)
        r.add("PATCH", base + "/instances/{instance}", patch_instance, **a)
        r.add("DELETE", base + "/instances/{instance}", delete_instance, **a)
        r.add("GET", base + "/instances/{instance}/users", list_users, **a)
        r.add("POST", base + "/instances/{instance}/users", insert_user, **a)
        r.add("PUT", base + "/instances/{instance}/users", update_user, **a)
        r.add("DELETE", base + "/instances/{instance}/users", delete_user, **a)
        r.add("GET", base + "/instances/{instance}/users/{user}", get_user, **a)
        r.add("GET", base + "/instances/{instance}/databases", list_databases, **a)
        r.add("POST", base + "/instances/{instance}/databases", insert_database, **a)
        r.add("GET", base + "/operations", list_operations, **a)
        r.add("GET", base + "/operations/{operation}", get_operation, **a)
