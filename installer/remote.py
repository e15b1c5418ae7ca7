"""The remote state: the journal mirrored to Cloud Storage, and a lock that holds across machines (issue 17).

Where: ``gs://<bucket>/.mlops-install/<env id>/journal.json`` and ``.../lock.json``, the bucket being
``state.bucket`` from the answers (a bucket of the team's that exists already) or else the artifact bucket
(``P-artifact-store``), which exists once the install's ``bucket`` step is done: until then the local journal is
the only one, and the lock is the local one.

The local journal stays the working copy: every ``Journal.save`` also hands its snapshot to the mirror, one thread
writing the newest snapshot (a newer one replaces a queued older one), each write conditional on the generation the
last one made (``ifGenerationMatch``; the first one on the generation read, or 0). A 412 (someone else wrote the
object meanwhile) reads the remote journal, keeps every step it has that ours lacks, and writes again: no step is
lost. Nothing secret goes out: the snapshot is the one ``Journal.save`` already checked (``check_no_secrets``).

The lock object is created with ``ifGenerationMatch=0`` (only if there is none) and holds an id, host, pid, user,
the time it was taken and a lease, renewed (a conditional write again) every third of the lease while the run
lasts. A second installer anywhere is refused (``RemoteLocked``, exit 2) with who holds it and since when; a lease
that expired (its holder died or lost its network) is taken over with a message; ``--force-unlock ID`` takes a lock
whose id is ID whatever its lease. Leases compare the holder's clock with ours: keep the machines' clocks right.

The Cloud Storage calls are ``backends.infra.remote_state``'s, imported when first used and run in threads.
"""
from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from .answers import LABEL_KEY, prefixed
from .errors import BadInput, ErrorClass, InstallerError

log = logging.getLogger("mlops_install.remote")

ROOT = ".mlops-install"
LEASE_DEFAULT = 120.0  # seconds; MLOPS_INSTALL_LOCK_LEASE overrides
BUCKET_STEP = "bucket"


def lease_seconds() -> float:
    try:
        v = float(os.environ.get("MLOPS_INSTALL_LOCK_LEASE", LEASE_DEFAULT))
        return v if v > 0 else LEASE_DEFAULT
    except ValueError:
        return LEASE_DEFAULT


def state_bucket(answers) -> tuple[str, bool]:
    """(the bucket holding the remote state, whether it is the answers' own ``state.bucket``)."""
    own = answers.state.bucket
    return (own, True) if own else (answers.names.bucket, False)


def _when(t: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(float(t)))
    except (TypeError, ValueError):
        return "?"


def describe_holder(h: dict[str, Any]) -> str:
    return (f"lock {h.get('id', '?')} held by {h.get('user', '?')} on {h.get('host', '?')} (pid {h.get('pid', '?')}) "
            f"since {_when(h.get('since'))}, lease until {_when(h.get('expires'))}")


class RemoteLocked(InstallerError):
    def __init__(self, env_id: str, holder: dict[str, Any], where: str) -> None:
        super().__init__(f"another mlops-install is working on environment {env_id}: {describe_holder(holder)}",
                         error_class=ErrorClass.BAD_INPUT,
                         remedy=f"wait for it to finish (the lease is renewed while it runs and expires "
                                f"{lease_seconds():g}s after it stops); if it is not running any more, run again "
                                f"with --force-unlock {holder.get('id', 'ID')} (the lock is {where})")
        self.holder = holder


class RemoteState:
    """The remote journal and lock of one environment (``answers``' project + prefix)."""

    BUCKET_STEP = BUCKET_STEP

    def __init__(self, answers=None, io: Any = None, *, project: str = "", prefix: str = "",
                 bucket: str | None = None) -> None:
        """From ``answers``, or from a ``project``, ``prefix`` and (optionally) the state ``bucket`` (``status``)."""
        if answers is not None:
            self.project, self.env_id = answers.project, answers.env_id
            self.bucket, self.own_bucket = state_bucket(answers)
        else:
            self.project, self.env_id = project, f"{project}--{prefix}"
            self.bucket, self.own_bucket = (bucket, True) if bucket else (prefixed(prefix)["bucket"], False)
        self.journal_name = f"{ROOT}/{self.env_id}/journal.json"
        self.lock_name = f"{ROOT}/{self.env_id}/lock.json"
        self._io = io
        self.notes: list[str] = []  # messages for the user (a lease taken over, a lock lost)
        self.generation: int | None = None  # of the journal object as we last wrote or read it
        self.lock_id: str | None = None
        self.lock_generation: int | None = None
        self.lost_lock = False
        self.lost: InstallerError | None = None  # why, when another installer holds the lock (claim() raises it)
        self._cond = threading.Condition()
        self._taking = threading.Lock()
        self._pending: bytes | None = None
        self._busy = False
        self._closed = False
        self._usable = self.own_bucket  # the bucket exists (state.bucket: given; else once the bucket step is done)
        self._thread: threading.Thread | None = None
        self._force_id: str | None = None
        self.pushes = 0

    @property
    def io(self):
        if self._io is None:
            from backends.infra import remote_state
            self._io = remote_state
        return self._io

    def url(self, name: str) -> str:
        return f"gs://{self.bucket}/{name}"

    # -- reading ---------------------------------------------------------------------------------------------
    def fetch(self) -> dict[str, Any] | None:
        """The remote journal (blocking), None when there is none (or no bucket)."""
        got = self.io.read(self.project, self.bucket, self.journal_name)
        if got is None:
            return None
        data, gen = got
        self.generation = gen
        loaded = json.loads(data)
        if not isinstance(loaded, dict) or not isinstance(loaded.get("steps", {}), dict):
            raise InstallerError(f"the remote journal {self.url(self.journal_name)} is not a journal",
                                 error_class=ErrorClass.BAD_INPUT,
                                 remedy="look at it (gcloud storage cat ...), and move it away if it is damaged")
        return loaded

    def holder(self) -> tuple[dict[str, Any], int] | None:
        got = self.io.read(self.project, self.bucket, self.lock_name)
        if got is None:
            return None
        try:
            h = json.loads(got[0])
        except ValueError:
            h = {}
        return (h if isinstance(h, dict) else {}), got[1]

    # -- the lock ----------------------------------------------------------------------------------------------
    def _me(self) -> dict[str, Any]:
        now = time.time()
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name known (a container without passwd entry)
            user = "?"
        return {"id": self.lock_id, "host": socket.gethostname(), "pid": os.getpid(), "user": user,
                "since": self._since, "expires": now + lease_seconds(), "renewed": now}

    def lock(self, force_id: str | None = None) -> bool:
        """Take the remote lock (blocking): True when held, False when the bucket does not exist (yet); raises
        ``RemoteLocked`` when someone else holds a live lease. The mirror's thread and the engine's checkpoint
        (``claim``) may both come here when the bucket step ends: one takes it, the other finds it held."""
        with self._taking:
            if self.lock_generation is not None:
                return True
            return self._take(force_id)

    def _take(self, force_id: str | None) -> bool:
        self.lock_id = self.lock_id or uuid.uuid4().hex[:12]
        self._since = time.time()
        force_id = force_id or self._force_id
        for _ in range(5):
            try:
                self.lock_generation = self.io.write(self.project, self.bucket, self.lock_name,
                                                     json.dumps(self._me()).encode(), 0)
                break
            except self.io.NoBucket:
                return False
            except self.io.Lost:
                pass
            current = self.holder()
            if current is None:
                continue  # released meanwhile: try to create it again
            h, gen = current
            if h.get("id") == self.lock_id:  # ours: a create that succeeded although its answer was lost
                self.lock_generation = gen
                break
            if force_id and h.get("id") == force_id:
                why = f"force-unlocked {describe_holder(h)} (--force-unlock {force_id})"
            elif float(h.get("expires") or 0) < time.time():
                why = f"took over an expired lock: {describe_holder(h)}"
            else:
                raise RemoteLocked(self.env_id, h, self.url(self.lock_name))
            try:
                self.lock_generation = self.io.write(self.project, self.bucket, self.lock_name,
                                                     json.dumps(self._me()).encode(), gen)
            except self.io.Lost:
                continue  # someone else took it first: look again
            self.notes.append(why)
            log.warning(why)
            break
        else:
            raise InstallerError(f"the lock {self.url(self.lock_name)} kept changing", error_class=ErrorClass.TRANSIENT,
                                 remedy="run again")
        self._start()
        return True

    def renew(self) -> None:
        """Extend the lease (a write conditional on the lock's generation); a 412 means another installer took it
        (after our lease expired, or with --force-unlock): said, and nothing more is written."""
        if self.lock_generation is None or self.lost_lock:
            return
        try:
            self.lock_generation = self.io.write(self.project, self.bucket, self.lock_name,
                                                 json.dumps(self._me()).encode(), self.lock_generation)
        except self.io.Lost:
            current = self.holder()
            self._lose(InstallerError(
                f"the lock on environment {self.env_id} was taken by another installer (our lease expired, or "
                f"--force-unlock)" + (f": {describe_holder(current[0])}" if current else ""),
                error_class=ErrorClass.BAD_INPUT,
                remedy="this run starts no other step; let the other one finish (mlops-install status shows it)"))
        except self.io.NoBucket:
            self.lock_generation = None  # the bucket is gone (a destroy)
            self._usable = False

    def _lose(self, exc: InstallerError) -> None:
        """Another installer holds the lock: nothing more is written, and ``claim`` stops the run."""
        self.lost_lock, self.lost = True, exc
        self.notes.append(exc.message)
        log.warning("%s", exc.message)

    def claim(self) -> None:
        """The engine's checkpoint between steps (blocking): once the bucket exists, the lock is taken before any
        other step starts (two installs that began before the bucket existed: the second learns of the first
        here); raises ``RemoteLocked`` (or why the lock was lost) when another installer holds it."""
        if self.lost is not None:
            raise self.lost
        if self.lock_generation is None and self._usable:
            try:
                self.lock()
            except RemoteLocked as exc:
                self._lose(exc)
                raise

    def unlock(self) -> None:
        gen, self.lock_generation = self.lock_generation, None
        if gen is not None and not self.lost_lock:
            self.io.delete(self.project, self.bucket, self.lock_name, gen)

    # -- the mirror --------------------------------------------------------------------------------------------
    def bucket_state(self, status: str | None) -> None:
        """The journal's status of the bucket step (called on each save): the artifact bucket is usable once it is
        done, and not any more once its destroy starts (writing into a bucket being emptied would keep it from
        being deleted)."""
        if self.own_bucket:
            return
        usable = status == "done"
        with self._cond:
            if usable != self._usable:
                self._usable = usable
                self._cond.notify_all()

    def submit(self, data: bytes) -> None:
        """Queue a journal snapshot for the remote (the newest replaces a queued older one)."""
        with self._cond:
            if self._closed:
                return
            self._pending = data
            self._cond.notify_all()
        self._start()

    def _start(self) -> None:
        with self._cond:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name=f"remote-journal:{self.env_id}", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        interval = lease_seconds() / 3
        next_renew = time.monotonic() + interval
        while True:
            with self._cond:
                while not self._closed and not (self._pending is not None and self._usable) \
                        and time.monotonic() < next_renew:
                    self._cond.wait(max(0.0, next_renew - time.monotonic()))
                data = self._pending if self._usable else None
                if data is not None:
                    self._pending = None
                    self._busy = True
                closed = self._closed
            try:
                if time.monotonic() >= next_renew:
                    next_renew = time.monotonic() + interval
                    if self._usable:
                        self.renew()
                if data is not None:
                    self._push(data)
            except Exception as exc:  # noqa: BLE001 - the remote copy must never break the install: logged
                log.warning("could not write the remote journal %s: %s", self.url(self.journal_name), exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
            if closed:
                with self._cond:
                    if self._pending is None or not self._usable:
                        return

    def _push(self, data: bytes) -> None:
        if self.lost_lock:
            return
        if self.lock_generation is None:
            try:
                if not self.lock():
                    return
            except RemoteLocked as exc:  # the bucket came to exist while another machine holds it: do not write
                self._lose(exc)
                return
        for _ in range(8):
            if self.generation is None:
                got = self.io.read(self.project, self.bucket, self.journal_name)
                self.generation = got[1] if got else 0
            try:
                self.generation = self.io.write(self.project, self.bucket, self.journal_name, data, self.generation)
                self.pushes += 1
                return
            except self.io.NoBucket:
                self._usable = False
                return
            except self.io.Lost:
                got = self.io.read(self.project, self.bucket, self.journal_name)
                self.generation = got[1] if got else 0
                if got:
                    data = merge(data, got[0])
        log.warning("the remote journal %s kept changing; it will be written with the next save",
                    self.url(self.journal_name))
        self.generation = None

    def flush(self, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: (self._pending is None or not self._usable) and not self._busy, timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is queued, stop the thread, release the lock (blocking)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        t = self._thread
        if t is not None:
            t.join(timeout)
        try:
            self.unlock()
        except Exception as exc:  # noqa: BLE001 - an unreleased lock expires with its lease
            log.warning("could not release the lock %s: %s", self.url(self.lock_name), exc)


def merge(ours: bytes, theirs: bytes) -> bytes:
    """Our journal snapshot with every step of ``theirs`` that ours lacks, and their runs that ours lacks."""
    try:
        a, b = json.loads(ours), json.loads(theirs)
    except ValueError:
        return ours
    if not isinstance(b, dict):
        return ours
    steps = a.setdefault("steps", {})
    for sid, rec in (b.get("steps") or {}).items():
        if sid not in steps or not (steps[sid] or {}).get("status"):
            steps[sid] = rec
    runs = a.setdefault("runs", [])
    seen = {(r.get("started"), r.get("pid")) for r in runs if isinstance(r, dict)}
    extra = [r for r in b.get("runs") or [] if isinstance(r, dict) and (r.get("started"), r.get("pid")) not in seen]
    if extra:
        a["runs"] = sorted(runs + extra, key=lambda r: r.get("started") or 0)[-20:]
    return json.dumps(a, indent=2, sort_keys=True, default=str).encode()


def open_remote(answers, runtime: dict[str, Any] | None) -> RemoteState | None:
    """The environment's ``RemoteState`` when remote state is on (``runtime["remote_state"]``), else None."""
    if not (runtime or {}).get("remote_state"):
        return None
    return RemoteState(answers)


def found_remote(remote: RemoteState, data: dict[str, Any]) -> str:
    """What a remote journal found instead of a local one is (for the refusal and the wizard's question)."""
    runs = data.get("runs") or [{}]
    last = runs[-1] if isinstance(runs[-1], dict) else {}
    return (f"no journal of {remote.env_id} here, but one is in {remote.url(remote.journal_name)} (status "
            f"{data.get('status', '?')}, last run from {last.get('host', '?')} at {_when(last.get('started'))})")


def adopt_refusal(remote: RemoteState, data: dict[str, Any], command: str) -> InstallerError:
    return BadInput(found_remote(remote, data),
                    remedy=f"to go on from it on this machine, confirm with --yes ({command} --yes)")


def attach(journal, remote: RemoteState, *, adopt: bool, force_id: str | None, command: str) -> None:
    """Join ``remote`` to ``journal`` for a run (blocking; the local lock is held): without a local journal, the
    remote one is taken (``adopt``: --yes, or the destroy's confirmation; else refused with how to confirm); the
    remote lock is taken when the bucket exists (else once the bucket step is done); from then on every save is
    mirrored. Without a reachable Cloud Storage (no credentials, no network) the run goes on with the local journal
    only, said in ``journal.notes``."""
    remote._force_id = force_id
    try:
        data = None
        if not journal.exists and not any((r or {}).get("status") for r in journal.data.get("steps", {}).values()):
            data = remote.fetch()
        made = ((data or journal.data).get("steps", {}).get(BUCKET_STEP) or {}).get("status") == "done"
        if remote.own_bucket or made:  # the lock first: a second installer is told who holds it
            remote.lock(force_id)
        if data is not None:
            if not adopt:
                raise adopt_refusal(remote, data, command)
            journal.adopt(data, remote.url(remote.journal_name))
    except (RemoteLocked, BadInput):
        remote.close()  # a lock taken here is released again
        raise
    except Exception as exc:  # noqa: BLE001 - the remote state is an addition: the install goes on without it (no
        # credentials: the preflight says so next, with its own exit code)
        msg = f"the remote journal in {remote.url(remote.journal_name)} cannot be used: {getattr(exc, 'message', exc)}"
        log.warning(msg)
        journal.notes.append(msg + "; going on with the local journal only")
        return
    journal.notes.extend(remote.notes)
    remote.notes.clear()
    journal.remote = remote
    journal.remote.bucket_state(journal.status_of(BUCKET_STEP))


def read_journal(journal, remote: RemoteState) -> Any:
    """``journal`` (a local ``Journal``) or, when this machine has none, the remote one in it (read-only: nothing
    written here); an unreachable Cloud Storage leaves the local one as it is (blocking)."""
    if journal.exists:
        return journal
    try:
        data = remote.fetch()
    except Exception as exc:  # noqa: BLE001 - status and plan show what can be read
        log.warning("could not read the remote journal %s: %s", remote.url(remote.journal_name), exc)
        return journal
    if data is not None:
        journal.adopt(data, remote.url(remote.journal_name))
    return journal


def project_environments(project: str, root=None) -> list[Any]:
    """The journals of ``project``'s environments wherever they were installed from (blocking): the local ones, and
    one per bucket labelled ``mlops-install-env=<prefix>`` (our artifact buckets) with its remote journal, or, when
    it has none, an empty journal saying the environment exists."""
    from .journal import Journal, list_envs

    out = {j.env_id: j for j in list_envs(root) if j.env_id.startswith(f"{project}--")}
    from backends.infra import remote_state

    for bucket, prefix in remote_state.labelled_buckets(project, LABEL_KEY):
        env_id = f"{project}--{prefix}"
        if env_id in out:
            continue
        j = read_journal(Journal(env_id, root), RemoteState(project=project, prefix=prefix,
                                                           bucket=bucket if bucket != prefixed(prefix)["bucket"]
                                                           else None))
        if not j.exists and j.source is None:
            j.source = f"gs://{bucket} (labelled {LABEL_KEY}={prefix}; no journal in it)"
        out[env_id] = j
    return [out[k] for k in sorted(out)]
