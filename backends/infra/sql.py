"""The ``sql-instance`` step (the Cloud SQL for MySQL instance KFP's database lives in) and the ``sql-user`` step
(user ``kfp``).

Secrets: the ``kfp`` database password goes only into ``runtime[SQL_PASSWORD]`` (memory); the ``mysql-secret`` step
writes the same one into the cluster.
"""
from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

from installer.answers import SQL_EDITION, Answers
from installer.errors import ErrorClass, InstallerError
from installer.steps import Observation, StepContext

from backends.gcp import operations
from backends.gcp.calls import call
from backends.gcp.errors import ApiError, classify

from .changes import Change, require_consent, way_out
from .common import (InfraStep, Outputs, conflict, create_and_wait, is_ours, labels, not_found, poll_until, read_or_none,
                     unless_op_running, wait_recorded_create)


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


@dataclass(frozen=True)
class SqlOutputs(Outputs):
    """What the ``sql-instance`` step records: the KFP steps read ``SqlOutputs.of(ctx.outputs_of("sql-instance"))``."""
    instance: str = ""
    connection_name: str = ""  # PROJECT:REGION:INSTANCE, what the Cloud SQL proxy connects to
    public_ip: str = ""
    region: str = ""


def sql_outputs(i: dict) -> dict:
    ips = [x.get("ipAddress") for x in i.get("ipAddresses") or [] if x.get("type") in ("PRIMARY", None)]
    return SqlOutputs(instance=i.get("name"), connection_name=i.get("connectionName", ""),
                      public_ip=ips[0] if ips else "", region=i.get("region", "")).to_dict()


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
    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        a, n = answers, answers.names.sql_instance
        i = await get_sql_instance(a)
        if i is None:
            return not_found(f"Cloud SQL instance {n}", bool(a.sql.existing), "sql.existing",
                             "Check sql.existing, or remove it to create a new instance.")
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
            async def reserved(err: ApiError) -> None:
                if await get_sql_instance(a) is None:  # name reserved after a recent delete
                    raise InstallerError(f"{what}: {err.message}", error_class=ErrorClass.NAME_TAKEN,
                                         remedy="A deleted instance's name cannot be reused for a while. Choose "
                                                "another name prefix, or wait.") from err
            if not await create_and_wait(ctx, "sqladmin", lambda s: s.instances().insert(project=a.project,
                                                                                          body=sql_body(a)),
                                         what=what, region=a.region, on_exists=reserved, expected_seconds=expected):
                await self._wait_state(ctx)
        i = await get_sql_instance(a)
        if i is None or i.get("state") != "RUNNABLE":
            raise InstallerError(f"{what} is {i.get('state') if i else 'missing'} after its creation",
                                 error_class=ErrorClass.UNEXPECTED, remedy="Run the installer again.")
        return sql_outputs(i)

    async def _patch(self, ctx: StepContext) -> dict[str, Any]:
        """Apply the in-place changes (tier, a larger disk) with one ``instances.patch``."""
        a, n = ctx.answers, ctx.names.sql_instance
        i = await get_sql_instance(a) or {}
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
        return sql_outputs(await get_sql_instance(a) or i)

    async def _wait_state(self, ctx: StepContext) -> None:
        a = ctx.answers

        async def settled() -> bool:
            i = await get_sql_instance(a)
            return i is not None and i.get("state") != "PENDING_CREATE"
        await poll_until(settled, what=f"waiting for Cloud SQL instance {a.names.sql_instance}", timeout=90 * 60,
                         ctx=ctx)

    async def verify(self, ctx: StepContext) -> None:
        i = await get_sql_instance(ctx.answers)
        if not i or i.get("state") != "RUNNABLE" or not i.get("connectionName"):
            raise InstallerError(f"Cloud SQL instance {ctx.names.sql_instance} is not RUNNABLE",
                                 error_class=ErrorClass.UNEXPECTED, remedy="Run the installer again.")

    async def _delete(self, ctx: StepContext, force: bool = False) -> None:
        a, n = ctx.answers, ctx.names.sql_instance
        i = await get_sql_instance(a)
        if i is None or not (force or is_ours(a, (i.get("settings") or {}).get("userLabels"))):
            return
        if i.get("state") == "PENDING_DELETE":  # a deletion already under way (an interrupted destroy): wait for it
            async def gone() -> bool:
                return await get_sql_instance(a) is None
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


# The run's DB password lives only in ``runtime[SQL_PASSWORD]`` (memory; the secrets backend's mysql-secret step reads
# it there too); ``runtime[_ON_USER]`` is the one this run set on the SQL user.
SQL_PASSWORD = "sql_password"
_ON_USER = "_sql_password_on_user"


def run_password(runtime: dict) -> str:
    """The run's DB password: generated once per run, kept only in ``runtime[SQL_PASSWORD]`` (memory). Both the
    ``sql-user`` step (which sets it on the user) and ``mysql-secret`` (which writes it into the Secret) take it from
    here, so neither waits for the other (issue 20)."""
    pw = runtime.get(SQL_PASSWORD)
    if not pw:
        pw = runtime[SQL_PASSWORD] = new_password()
    return pw


def user_has_password(runtime: dict) -> bool:
    """Has this run set its password on the SQL user (``sql-user`` or ``set_sql_password``)?"""
    pw = runtime.get(SQL_PASSWORD)
    return bool(pw) and runtime.get(_ON_USER) == pw


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
    runtime[_ON_USER] = pw


async def set_sql_password(answers: Answers, runtime: dict, ctx: StepContext | None = None) -> str:
    """Give user ``kfp`` a new generated password and put it in ``runtime[SQL_PASSWORD]`` (never elsewhere).

    For the secrets backend: call it when ``mysql-secret`` must be (re)written, the runtime has no password and the
    user was made by an earlier run (a resume: its password lived only in that run's memory).
    """
    runtime.pop(SQL_PASSWORD, None)
    pw = run_password(runtime)
    await _set_password(answers, runtime, pw, ctx)
    return pw


class SqlUserStep(InfraStep):
    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:
        a, inst, user = answers, answers.names.sql_instance, answers.names.db_user
        resp = await read_or_none("sqladmin", lambda s: s.users().list(project=a.project, instance=inst),
                                  what=f"users of {inst}", project=a.project)
        if resp is None:
            return Observation("absent", f"instance {inst} does not exist yet")
        out = {"user": user, "instance": inst}
        if any(u.get("name") == user for u in resp.get("items") or []):
            return Observation("ready", f"database user {user} exists", out)
        return Observation("absent", f"database user {user} does not exist", out)

    async def look(self, ctx: StepContext) -> Observation:
        obs = await self.inspect(ctx.answers)
        if obs.status != "ready" or user_has_password(ctx.runtime):
            return obs
        if ctx.runtime.get(SQL_PASSWORD):
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
                ctx.runtime[_ON_USER] = pw
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
