"""Secrets steps: ``kfp-namespace``, ``mysql-secret``, ``kfp-sa-key`` (key mode), ``workload-identity``.

What is kept where (docs/credentials.md):
- the DB password: ``ctx.runtime[SQL_PASSWORD]`` (memory; ``backends.infra.sql`` owns it) and Secret ``mysql-secret``
  (cluster). Never a file.
- the KFP service-account key: memory; Secret ``user-gcp-sa`` (cluster); the secure keyring only between its
  creation and the Secret's write; ``--export-key PATH`` (0600) only when asked. The journal holds the key *id*.
"""
from __future__ import annotations

import asyncio
import base64
from typing import Any

from installer.answers import LABEL_KEY, WI_KSA_BINDINGS
from installer.errors import ErrorClass, InstallerError
from installer.steps import BaseStep, Observation, StepContext

from backends.infra.sql import SQL_PASSWORD, run_password, set_sql_password
from backends.k8s.client import KubeClient

from . import custody
from . import google_ops as g

KEY_SECRET = "user-gcp-sa"
KEY_FIELDS = ("user-gcp-sa.json", "application_default_credentials.json")
DB_SECRET = "mysql-secret"


async def _client(ctx: StepContext) -> KubeClient:
    from backends.k8s.cluster import connect
    return await connect(ctx)


def _ns(ctx: StepContext) -> str:
    return ctx.answers.kfp.namespace


def _labels(ctx: StepContext) -> dict[str, str]:
    return {LABEL_KEY: ctx.answers.prefix, "app.kubernetes.io/managed-by": "mlops-install"}


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _unb64(s: str | None) -> str | None:
    if s is None:
        return None
    try:
        return base64.b64decode(s).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def secret_obj(ctx: StepContext, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": _ns(ctx), "labels": _labels(ctx)},
            "data": {k: _b64(v) for k, v in data.items()}}


async def read_secret(client: KubeClient, ns: str, name: str) -> dict[str, str] | None:
    """The Secret's decoded data, or None when it does not exist. Values are registered for redaction."""
    obj = await asyncio.to_thread(client.get, "v1", "Secret", name, ns)
    if obj is None:
        return None
    out = {k: _unb64(v) or "" for k, v in (obj.get("data") or {}).items()}
    for k, v in (obj.get("stringData") or {}).items():
        out[k] = v
    await asyncio.to_thread(lambda: [custody.register_secret(v) for v in out.values()])
    return out


async def maybe_write_kubeconfig(ctx: StepContext) -> None:
    """``--write-kubeconfig`` (runtime flag): add the journal's cluster to the user's kubeconfig."""
    if not ctx.runtime.get("write_kubeconfig"):
        return
    from backends.k8s.cluster import connected_info
    from backends.k8s.kubeconfig import write_kubeconfig

    info = connected_info(ctx)
    if info is None:
        return
    path, name = await asyncio.to_thread(write_kubeconfig, info.project, info.location, info.name, info.endpoint,
                                         info.ca_b64)
    ctx.runtime["kubeconfig_written"] = (str(path), name)
    ctx.log(f"kubeconfig: context {name} added to {path} (kubectl needs gke-gcloud-auth-plugin)")


# ---------------------------------------------------------------------------------------------------------------
class KfpNamespace(BaseStep):
    """Ensure the KFP namespace exists (labelled as ours)."""

    async def look(self, ctx: StepContext) -> Observation:
        client = await _client(ctx)
        await maybe_write_kubeconfig(ctx)
        ns = await asyncio.to_thread(client.get, "v1", "Namespace", _ns(ctx))
        if ns is None:
            return Observation("absent")
        if (ns.get("status") or {}).get("phase") == "Terminating":
            return Observation("conflict", f"Namespace {_ns(ctx)} is being deleted",
                               remedy="Wait until the namespace is gone, then run the installer again.")
        # made by this install only if an earlier run of this step created it (a journal from before "made_here" was
        # recorded: its outcome says so); a namespace that was there first is never deleted by destroy
        created = bool(ctx.outputs.get("made_here", ctx.record.get("outcome") == "created"))
        return Observation("ready", outputs={"namespace": _ns(ctx), "cluster_endpoint": client.endpoint,
                                             "made_here": created,
                                             **({} if created else {"preexisting": [f"Namespace {_ns(ctx)}"]})},
                           adopted=not created)

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        client = await _client(ctx)
        await ctx.remember(made_here=True)  # before the request: an interrupted create is still ours to delete
        # the same fields as the Namespace in the rendered KFP manifests (same field manager: no tug of war)
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": _ns(ctx), "labels": {LABEL_KEY: ctx.answers.prefix}}}
        await asyncio.to_thread(client.apply, body)
        ctx.progress(f"Namespace {_ns(ctx)}", 1.0)
        return {"namespace": _ns(ctx), "cluster_endpoint": client.endpoint, "made_here": True}

    async def destroy(self, ctx: StepContext) -> None:
        if not ctx.outputs.get("made_here", ctx.record.get("outcome") == "created"):
            ctx.log(f"Namespace {_ns(ctx)} existed before the install: kept")
            return
        client = await _client(ctx)
        await asyncio.to_thread(client.delete, "v1", "Namespace", _ns(ctx))

    async def verify(self, ctx: StepContext) -> None:
        client = await _client(ctx)
        if await asyncio.to_thread(client.get, "v1", "Namespace", _ns(ctx)) is None:
            raise InstallerError(f"Namespace {_ns(ctx)} is not there after creating it",
                                 error_class=ErrorClass.UNEXPECTED, remedy="Run the installer again.")


# ---------------------------------------------------------------------------------------------------------------
async def guard_foreign_secret(ctx: StepContext, client: KubeClient, name: str) -> None:
    """Before a Secret is written: one that exists and is not ours (no label ``LABEL_KEY: prefix``, not recorded
    as ours) is named, and replaced only with consent (``--yes``, or the wizard's confirm hook); the journal then
    records it as pre-existing, so destroy keeps it. Without consent: a CONFLICT error, nothing written."""
    if ctx.outputs.get("preexisting") or ctx.outputs.get("made_here"):
        return  # decided by an earlier run of this step
    obj = await asyncio.to_thread(client.get, "v1", "Secret", name, _ns(ctx))
    if obj is None:
        await ctx.remember(made_here=True)
        return
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(LABEL_KEY) == ctx.answers.prefix:
        await ctx.remember(made_here=True)  # ours (labelled by an earlier install of this environment)
        return
    from backends.k8s.apply import ask_consent

    ref = f"Secret {_ns(ctx)}/{name}"
    owner = labels.get("app.kubernetes.io/managed-by") or "not mlops-install"
    question = (f"{ref} already exists and was not made by this install (managed by: {owner}); the install would "
                "replace its content (destroy keeps it). Replace it?")
    if not await ask_consent(ctx.runtime, question):
        raise InstallerError(f"{ref} already exists and was not made by this install; it was left as it is",
                             error_class=ErrorClass.CONFLICT,
                             remedy=f"Move what it holds elsewhere, or run again with --yes to let the install "
                                    f"replace it (destroy will keep {ref}).")
    ctx.log(f"{ref} existed and was not made by this install: replaced, as agreed (destroy keeps it)", "warning")
    await ctx.remember(preexisting=[ref], made_here=False)


def _scaled(seconds: float) -> float:
    from backends.gcp.env import scaled
    return scaled(seconds)


class MysqlSecret(BaseStep):
    """Secret ``mysql-secret`` (``username`` kfp, ``password``) in the KFP namespace."""

    async def look(self, ctx: StepContext) -> Observation:
        client = await _client(ctx)
        data = await read_secret(client, _ns(ctx), DB_SECRET)
        if data is None:
            return Observation("absent")
        if not (ctx.outputs.get("made_here") or ctx.outputs.get("preexisting")):
            obj = await asyncio.to_thread(client.get, "v1", "Secret", DB_SECRET, _ns(ctx))
            if ((obj or {}).get("metadata", {}).get("labels") or {}).get(LABEL_KEY) != ctx.answers.prefix:
                return Observation("drifted", f"{DB_SECRET} exists and was not made by this install")
        pw = ctx.runtime.get(SQL_PASSWORD)
        user_ok = data.get("username") == ctx.names.db_user
        if not user_ok or not data.get("password"):
            return Observation("drifted", "mysql-secret has another user or no password")
        if pw and data.get("password") != pw:
            return Observation("drifted", "the DB password changed in this run")
        if not pw and ctx.status_of("sql-user") != "done":
            # a resume: the password of the earlier run is gone with its memory and the SQL user is still to be
            # set, with this run's password; the Secret gets the same one
            return Observation("drifted", "the SQL user gets a new password in this run")
        return Observation("ready", outputs={"secret": f"{_ns(ctx)}/{DB_SECRET}", "username": ctx.names.db_user})

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        pw = ctx.runtime.get(SQL_PASSWORD)
        if not pw and ctx.status_of("sql-user") == "done":
            # A resume that no longer holds the password (it lived only in memory of the earlier run) and an SQL
            # user an earlier run made (e.g. the Secret was deleted since): reset it, as the sql-user step would.
            ctx.log(f"the DB password is not in memory (a resumed run): setting a new password for "
                    f"{ctx.names.db_user}@{ctx.names.sql_instance}")
            pw = await set_sql_password(ctx.answers, ctx.runtime, ctx)
        else:
            # the run's password (generated at its start, in memory): the sql-user step sets the same one on the
            # user once the SQL instance exists, so this Secret need not wait for it (issue 20)
            pw = run_password(ctx.runtime)
        await asyncio.to_thread(custody.register_secret, pw)
        client = await _client(ctx)
        await guard_foreign_secret(ctx, client, DB_SECRET)
        await asyncio.to_thread(client.apply, secret_obj(ctx, DB_SECRET,
                                                         {"username": ctx.names.db_user, "password": pw}))
        ctx.progress(f"Secret {_ns(ctx)}/{DB_SECRET}", 1.0)
        return {"secret": f"{_ns(ctx)}/{DB_SECRET}", "username": ctx.names.db_user}

    async def destroy(self, ctx: StepContext) -> None:
        if ctx.outputs.get("preexisting"):
            ctx.log(f"Secret {_ns(ctx)}/{DB_SECRET} existed before the install: kept")
            return
        client = await _client(ctx)
        await asyncio.to_thread(client.delete, "v1", "Secret", DB_SECRET, _ns(ctx))

    async def verify(self, ctx: StepContext) -> None:
        client = await _client(ctx)
        data = await read_secret(client, _ns(ctx), DB_SECRET)
        if not data or data.get("password") != ctx.runtime.get(SQL_PASSWORD):
            raise InstallerError("mysql-secret does not hold the DB password after writing it",
                                 error_class=ErrorClass.UNEXPECTED, remedy="Run the installer again.")


# ---------------------------------------------------------------------------------------------------------------
async def _uninterrupted(coro) -> Any:
    """Run ``coro`` to its end even when the step is cancelled meanwhile; then re-raise the cancellation."""
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.gather(task, return_exceptions=True)
        raise


class KfpSaKey(BaseStep):
    """Key mode: one user-managed key of P-kfp-sa made by this installer, the one in Secret ``user-gcp-sa``.

    Only keys whose ids the journal records as made here (``made_key_ids``, ``key_id``, ``pending_key_id``) are ever
    deleted; another user-managed key (someone's, on an adopted account) stays and is named in the step's log and
    outputs (``foreign_keys``)."""

    def _email(self, ctx: StepContext) -> str:
        return ctx.names.kfp_sa_email

    @staticmethod
    def _ours(ctx: StepContext) -> set[str]:
        o = ctx.outputs
        return {k for k in [*(o.get("made_key_ids") or []), o.get("key_id"), o.get("pending_key_id")] if k}

    def _foreign(self, ctx: StepContext, keys: list[str], keep: str | None) -> list[str]:
        return [k for k in keys if k != keep and k not in self._ours(ctx)]

    async def _state(self, ctx: StepContext, client: KubeClient) -> tuple[dict | None, str | None, list[str]]:
        data = await read_secret(client, _ns(ctx), KEY_SECRET)
        kid = None
        if data:
            a, b = (data.get(f) for f in KEY_FIELDS)
            if a and a == b:
                kid = g.key_id_of(a)
        keys = await g.list_user_keys(ctx.answers.project, self._email(ctx))
        return data, kid, keys

    async def look(self, ctx: StepContext) -> Observation:
        client = await _client(ctx)
        # Load the keyring backends now (a slow plugin scan on first use), not between key creation and Secret write
        await asyncio.to_thread(custody.secure_keyring)
        data, kid, keys = await self._state(ctx, client)
        if data is None:
            pending = ctx.outputs.get("pending_key_id")
            if pending:
                return Observation("pending", f"key {pending} was made but the Secret was not written")
            return Observation("absent")
        if kid is None or kid not in keys:
            return Observation("drifted", "Secret user-gcp-sa does not hold a current key of the account")
        ours = [k for k in keys if k != kid and k in self._ours(ctx)]
        if ours:
            return Observation("drifted", f"{self._email(ctx)} holds {len(ours)} other key(s) made by mlops-install")
        if ctx.outputs.get("pending_key_id"):
            return Observation("drifted", "an interrupted run left its bookkeeping unfinished")
        export = ctx.runtime.get("export_key_path")
        if export:  # "already there" only when the file holds this very key; anything else there is refused
            if await asyncio.to_thread(custody.exported_key_state, export, kid) == "absent":
                return Observation("drifted", "the key is to be exported")
        foreign = self._foreign(ctx, keys, kid)
        return Observation("ready", self._foreign_note(ctx, foreign),
                           outputs={"key_id": kid, "secret": f"{_ns(ctx)}/{KEY_SECRET}",
                                    "service_account": self._email(ctx), **({"foreign_keys": foreign} if foreign else {})})

    def _foreign_note(self, ctx: StepContext, foreign: list[str]) -> str:
        if not foreign:
            return ""
        return (f"{self._email(ctx)} also holds user-managed key(s) {', '.join(foreign)} not made by mlops-install; "
                "left in place")

    async def _create_key(self, ctx: StepContext) -> tuple[str, str]:
        """Create the key. Its id reaches the journal (and the key the secure keyring, if any) before anything else
        happens, even when the run is cancelled while the call is under way."""
        async def create_and_record() -> tuple[str, str]:
            key_id, key_json = await asyncio.to_thread(g.create_key_sync, ctx.answers.project, self._email(ctx))
            # the id (never the body), saved before the Secret is written; made_key_ids: what this installer may delete
            await ctx.remember(pending_key_id=key_id, made_key_ids=sorted(self._ours(ctx) | {key_id}))
            await asyncio.to_thread(custody.register_key, key_json)
            if await asyncio.to_thread(custody.park, ctx.answers.env_id, key_id, key_json):
                ctx.log(f"key {key_id} parked in the keyring ({custody.keyring_description()}) until the Secret "
                        "is written")
            return key_id, key_json

        return await _uninterrupted(create_and_record())

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        client = await _client(ctx)
        project, email, env_id = ctx.answers.project, self._email(ctx), ctx.answers.env_id
        data, kid, keys = await self._state(ctx, client)
        key_json: str | None = None
        keep: str | None = None
        if kid and kid in keys:
            keep, key_json = kid, data.get(KEY_FIELDS[0]) if data else None  # the Secret already holds a live key
            pending = ctx.outputs.get("pending_key_id")
            if pending or ctx.outputs.get("key_id") != kid:
                if pending:
                    await asyncio.to_thread(custody.drop, env_id, pending)
                await ctx.remember(key_id=kid, pending_key_id=None)
        else:
            await guard_foreign_secret(ctx, client, KEY_SECRET)  # before any key is made
            pending = ctx.outputs.get("pending_key_id")
            if pending and pending in keys:
                parked = await asyncio.to_thread(custody.fetch, env_id, pending)
                if parked and g.key_id_of(parked) == pending:
                    await asyncio.to_thread(custody.register_key, parked)
                    keep, key_json = pending, parked
                    ctx.log(f"reusing key {pending} kept in the keyring by the interrupted run")
                else:
                    ctx.log(f"deleting orphaned key {pending}: an interrupted run made it and it was kept only in "
                            "memory")
                    await g.delete_key(project, email, pending)
                    await ctx.remember(pending_key_id=None, deleted_orphan=pending)
            elif pending:
                await asyncio.to_thread(custody.drop, env_id, pending)
            if key_json is None:
                current = await g.list_user_keys(project, email)
                if len(current) >= g.KEY_LIMIT:
                    # at IAM's limit no key can be made; ours would be deleted at the end anyway (one key wanted);
                    # the others are not ours to delete (create_key_sync then says the account is at the limit)
                    for old in [k for k in current if k in self._ours(ctx)]:
                        await g.delete_key(project, email, old)
                        ctx.log(f"deleted older key {old} of {email}, made by mlops-install (the account was at the "
                                f"limit of {g.KEY_LIMIT} keys)")
                keep, key_json = await self._create_key(ctx)
            ctx.progress(f"writing Secret {_ns(ctx)}/{KEY_SECRET}", 0.5)
            body = secret_obj(ctx, KEY_SECRET, {f: key_json for f in KEY_FIELDS})

            async def store() -> None:  # once started, finished and recorded even if the run is cancelled
                await asyncio.to_thread(client.apply, body)
                await ctx.remember(key_id=keep, pending_key_id=None)
                await asyncio.to_thread(custody.drop, env_id, keep)

            await _uninterrupted(store())
        # one key of ours: the one in the Secret; keys someone else made stay
        current = await g.list_user_keys(project, email)
        for old in [k for k in current if k != keep and k in self._ours(ctx)]:
            await g.delete_key(project, email, old)
            ctx.log(f"deleted older key {old} of {email}, made by mlops-install")
        foreign = self._foreign(ctx, current, keep)
        if foreign:
            ctx.log(self._foreign_note(ctx, foreign), "warning")
        export = ctx.runtime.get("export_key_path")
        if export and key_json:
            path, how = await asyncio.to_thread(custody.export_key, export, key_json, keep)
            if how == "written":
                ctx.log(f"the key file of {email} was written to {path} (mode 0600), as --export-key asked; "
                        "it is a credential: keep it safe and delete it when done", "warning")
                ctx.runtime["exported_key_path"] = str(path)
            else:
                ctx.log(f"{path} already holds key {keep} (left as it is)")
        ctx.progress(f"Secret {_ns(ctx)}/{KEY_SECRET} holds key {keep}", 1.0)
        return {"key_id": keep, "secret": f"{_ns(ctx)}/{KEY_SECRET}", "service_account": email,
                **({"foreign_keys": foreign} if foreign else {})}

    async def verify(self, ctx: StepContext) -> None:
        client = await _client(ctx)
        for attempt in range(6):  # IAM reads are eventually consistent: a deleted key may show for a moment
            _, kid, keys = await self._state(ctx, client)
            extra = [k for k in keys if k != kid and k in self._ours(ctx)]
            if kid is not None and kid in keys and not extra:
                return
            await asyncio.sleep(_scaled(2 ** attempt))
        raise InstallerError(f"{self._email(ctx)} should hold one key made by mlops-install, the one in Secret "
                             f"{KEY_SECRET}; it holds {len(keys)} user-managed keys", error_class=ErrorClass.UNEXPECTED,
                             remedy="Run the installer again.")

    async def destroy(self, ctx: StepContext) -> None:
        client = await _client(ctx)
        kid = ctx.outputs.get("key_id")
        if ctx.outputs.get("preexisting"):
            ctx.log(f"Secret {_ns(ctx)}/{KEY_SECRET} existed before the install: kept (key {kid} is deleted)")
        else:
            await asyncio.to_thread(client.delete, "v1", "Secret", KEY_SECRET, _ns(ctx))
        if kid:
            await g.delete_key(ctx.answers.project, self._email(ctx), kid)


# ---------------------------------------------------------------------------------------------------------------
def wi_members(ctx: StepContext) -> dict[str, list[str]]:
    """GSA email -> the WI members (``serviceAccount:POOL[NS/KSA]``) it must accept."""
    n = ctx.names
    out: dict[str, list[str]] = {n.kfp_sa_email: [], n.gke_sa_email: []}
    for ksa, which in WI_KSA_BINDINGS.items():
        email = n.kfp_sa_email if which == "kfp" else n.gke_sa_email
        out[email].append(f"serviceAccount:{n.workload_pool}[{_ns(ctx)}/{ksa}]")
    return out


def wi_annotations(answers) -> dict[str, str]:
    """KSA -> the GSA email of its ``iam.gke.io/gcp-service-account`` annotation."""
    n = answers.names
    return {ksa: (n.kfp_sa_email if which == "kfp" else n.gke_sa_email) for ksa, which in WI_KSA_BINDINGS.items()}


class WorkloadIdentity(BaseStep):
    """``roles/iam.workloadIdentityUser`` on P-kfp-sa and P-gke-sa for the KFP KSAs (no key anywhere)."""

    async def _missing(self, ctx: StepContext) -> dict[str, list[str]]:
        out = {}
        for email, members in wi_members(ctx).items():
            pol = await g.get_sa_policy(ctx.answers.project, email)
            miss = g.missing_members(pol, members)
            if miss:
                out[email] = miss
        return out

    def _outputs(self, ctx: StepContext) -> dict[str, Any]:
        return {"pool": ctx.names.workload_pool, "bindings": sum(len(v) for v in wi_members(ctx).values())}

    async def _leftover_key(self, ctx: StepContext) -> str | None:
        """A key made by an earlier run in key mode (its id is in the journal) that still exists."""
        kid = (ctx.outputs_of("kfp-sa-key") or {}).get("key_id")
        if not kid:
            return None
        keys = await g.list_user_keys(ctx.answers.project, ctx.names.kfp_sa_email)
        return kid if kid in keys else None

    async def look(self, ctx: StepContext) -> Observation:
        missing = await self._missing(ctx)
        leftover = await self._leftover_key(ctx)
        if not missing and not leftover:
            return Observation("ready", outputs=self._outputs(ctx))
        if not missing:
            return Observation("drifted", f"key {leftover} from an earlier key-mode install remains")
        return Observation("absent" if len(missing) == 2 else "drifted",
                           f"{sum(len(v) for v in missing.values())} bindings missing")

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        items = list(wi_members(ctx).items())
        for i, (email, members) in enumerate(items, 1):
            await g.add_members(ctx.answers.project, email, members)
            ctx.progress(f"{len(members)} Kubernetes service accounts may act as {email}", i / len(items))
        leftover = await self._leftover_key(ctx)
        if leftover:  # workload identity means no key at all: remove what key mode made
            client = await _client(ctx)
            await asyncio.to_thread(client.delete, "v1", "Secret", KEY_SECRET, _ns(ctx))
            await g.delete_key(ctx.answers.project, ctx.names.kfp_sa_email, leftover)
            ctx.log(f"deleted key {leftover} of {ctx.names.kfp_sa_email} and Secret {_ns(ctx)}/{KEY_SECRET}, "
                    "left by an earlier install in key mode")
        return self._outputs(ctx)

    async def destroy(self, ctx: StepContext) -> None:
        for email, members in wi_members(ctx).items():
            await g.remove_members(ctx.answers.project, email, members)

    async def verify(self, ctx: StepContext) -> None:
        for attempt in range(6):  # IAM reads are eventually consistent
            missing = await self._missing(ctx)
            if not missing:
                return
            await asyncio.sleep(_scaled(2 ** attempt))
        if missing:
            raise InstallerError(f"Workload Identity bindings still missing on {', '.join(missing)}",
                                 error_class=ErrorClass.TRANSIENT, remedy="Run the installer again.")


STEPS = {
    "kfp-namespace": KfpNamespace,
    "mysql-secret": MysqlSecret,
    "kfp-sa-key": KfpSaKey,
    "workload-identity": WorkloadIdentity,
}
