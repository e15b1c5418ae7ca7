"""The journal: one per environment (project + prefix), the install's state on disk.

It holds the answers (non-secret, as a dict) and their digest, each step's status, the ids of what was made and
times. Never a secret: ``save`` refuses data that looks like one (``SecretInJournal``). Writes are atomic (temp
file, fsync, rename) and 0600. A lock (``fcntl.flock`` on ``lock`` beside the journal, holding pid/host/time)
keeps a second installer off the same environment: a lock left by a dead process is taken over with a message;
a live one raises ``JournalLocked`` (exit code 2, see README "Exit codes").

During an install (``start_writer()``, ``installer.run.install``) the writes leave the event loop: ``save``
serialises the journal and checks it for secrets at once (a ``SecretInJournal`` still raises at the call site and
writes nothing), then hands the snapshot to one writer thread, which writes the snapshots in the order they were
saved (a newer snapshot replaces a queued older one; it is written durably if any of those it replaces had to be).
``save`` returns a ``Saved`` handle: ``await`` it to wait until that snapshot is on disk (``ctx.remember`` does,
so an id is on disk before the next mutation); ``flush()``/``aflush()`` wait for every queued write. Without a
writer, ``save`` writes before it returns, as before.

The file writes, the writer thread and ``Saved`` are ``installer.journal_writer``'s; the secret guard
(``find_secret``, ``check_no_secrets``, ``SecretInJournal``) is ``installer.secret_guard``'s.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .errors import ErrorClass, InstallerError
from .files import UnsafePath, open_private, private_dir, read_regular
from .journal_writer import Saved, Writer, atomic_write
from .paths import JOURNAL_FILE, env_dir, envs_dir
from .secret_guard import check_no_secrets

JOURNAL_VERSION = 1
JOURNAL_MAX = 64 << 20  # a journal is a few hundred kB at most


# ---------------------------------------------------------------------------------------------------------------
# The lock

class JournalLocked(InstallerError):
    def __init__(self, env_id: str, holder: dict[str, Any], lock_path: Path) -> None:
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
        since = holder.get("started")
        if since:
            who += f", since {time.strftime('%H:%M:%S', time.localtime(since))}"
        super().__init__(f"another mlops-install ({who}) is working on environment {env_id}",
                         error_class=ErrorClass.BAD_INPUT,
                         remedy=f"wait for it to finish, or stop it (kill {holder.get('pid', '<pid>')}); "
                                f"the lock is {lock_path}")
        self.holder = holder


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError, TypeError):
        return False
    return True


@dataclass
class AnswerChange:
    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.path}: {self.old!r} -> {self.new!r}"


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    else:
        out[prefix] = d
    return out


ERROR_TEXT_MAX = 600  # characters of an error's message or remedy kept in the journal


def _short(text: str, limit: int = ERROR_TEXT_MAX) -> str:
    return text if len(text) <= limit else text[:limit - 30] + f" ... ({len(text) - limit + 30} more characters)"


class Journal:
    def __init__(self, env_id: str, root: Path | None = None, *, read_only: bool = False) -> None:
        """The journal of ``env_id`` under ``root`` (the state dir). ``read_only`` (``plan``): read without the lock,
        never written (``save`` does nothing), and one that cannot be read reads as empty."""
        self.env_id = env_id
        self.read_only = read_only
        self.dir = env_dir(env_id, root)
        self.path = self.dir / JOURNAL_FILE
        self.lock_path = self.dir / "lock"
        self._lock_fd: int | None = None
        self._fresh_dir = False  # lock() made the environment's folder: unlock() removes it if no run started
        self._writer: Writer | None = None
        self.notes: list[str] = []  # messages for the user (e.g. a stale lock taken over)
        self.remote = None  # an installer.remote.RemoteState mirroring each save (issue 17), set by attach()
        self.source: str | None = None  # where the data came from when not from this machine (the remote's gs://)
        self.data: dict[str, Any] = {"version": JOURNAL_VERSION, "env_id": env_id, "steps": {},
                                     "answers_digest": None, "answers": None, "runs": []}
        if self.path.exists():
            try:
                loaded = json.loads(read_regular(self.path, limit=JOURNAL_MAX, own=True, what="journal"))
                if not isinstance(loaded, dict) or not isinstance(loaded.get("steps", {}), dict):
                    raise ValueError("not a journal object")
            except (ValueError, OSError, UnsafePath) as exc:
                if read_only:
                    return
                raise InstallerError(f"the journal {self.path} cannot be read: {getattr(exc, 'message', exc)}",
                                     error_class=ErrorClass.BAD_INPUT,
                                     remedy=f"move it away (mv {self.path} {self.path}.bad) and run again; every "
                                            "step looks at the real resources first, so nothing is made twice") from None
            loaded.setdefault("steps", {})
            loaded.setdefault("runs", [])
            loaded.setdefault("answers", None)
            loaded.setdefault("answers_digest", None)
            self.data = loaded

    @classmethod
    def for_answers(cls, answers, root: Path | None = None) -> "Journal":
        return cls(answers.env_id, root)

    @property
    def exists(self) -> bool:
        return self.path.exists()

    # -- steps ------------------------------------------------------------------------------------------------
    def step(self, step_id: str) -> dict[str, Any]:
        return self.data["steps"].setdefault(step_id, {})

    # statuses whose record must reach the disk at once (they carry outputs or end a step); "running" and
    # "blocked" are written without fsync (old-or-new still holds for a killed process; after a power cut a
    # resumed run looks at every resource again anyway). Each fsync costs 10-100 ms (in the writer thread during
    # an install: see start_writer).
    DURABLE_STATUSES = frozenset({"done", "failed", "interrupted", "destroyed"})

    def set_status(self, step_id: str, status: str, **extra: Any) -> Saved:
        rec = self.step(step_id)
        rec["status"] = status
        if "error" in extra and isinstance(extra["error"], dict):
            from .logs import redact  # error texts are for humans: mask, don't refuse; and short (the log has all)
            extra["error"] = {k: _short(redact(v)) if isinstance(v, str) else v for k, v in extra["error"].items()}
        rec.update(extra)
        if status != "failed":
            rec.pop("error", None)
        return self.save(durable=status in self.DURABLE_STATUSES)

    def finish(self, status: str) -> Saved:
        self.data["status"] = status
        self.data["finished"] = time.time()
        if self.data["runs"]:
            self.data["runs"][-1].update(finished=self.data["finished"], status=status)
        return self.save()

    def start_run(self, **info: Any) -> Saved:
        self.data["runs"].append({"started": time.time(), "pid": os.getpid(), "host": socket.gethostname(), **info})
        self.data["runs"] = self.data["runs"][-20:]
        self.data["status"] = "running"
        return self.save()

    def save(self, durable: bool = True) -> Saved:
        """Save the journal: written now, or, with a writer (``start_writer``), queued to it; the returned
        ``Saved`` is awaited where the snapshot must be on disk before going on (``ctx.remember``: an id must be
        on disk before the next mutation). A secret raises ``SecretInJournal`` here and nothing is written."""
        if self.read_only:
            return Saved()
        writer = self._writer
        if writer is not None and writer.error is not None:
            err, writer.error = writer.error, None
            raise err
        self.data["updated"] = time.time()
        text = json.dumps(self.data, indent=2, sort_keys=True, default=str)
        check_no_secrets(self.data, text)
        remote = self.remote
        if remote is not None:  # the same checked snapshot goes to the remote journal (its own thread)
            remote.bucket_state(self.status_of(remote.BUCKET_STEP))
            remote.submit(text.encode())
        if writer is None:
            atomic_write(self.path, text.encode(), durable=durable)
            return Saved()
        return Saved(writer.submit(text.encode(), durable))

    # -- the writer thread (an install's saves leave the event loop) --------------------------------------------
    def start_writer(self) -> None:
        """From now on ``save`` queues its snapshot to a writer thread (in order) instead of writing it."""
        if self._writer is None:
            self._writer = Writer(self.path)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every save so far is on disk (re-raises a write's error)."""
        w = self._writer
        if w is not None:
            w.flush(timeout)
            if w.error is not None:
                err, w.error = w.error, None
                raise err

    async def aflush(self) -> None:
        """``flush`` without blocking the event loop."""
        if self._writer is not None:
            await asyncio.to_thread(self.flush)

    def stop_writer(self) -> None:
        """Write what is queued, stop the thread; ``save`` writes directly again."""
        w, self._writer = self._writer, None
        if w is not None:
            w.close()
            if w.error is not None:
                err, w.error = w.error, None
                raise err

    def adopt(self, data: dict[str, Any], where: str) -> None:
        """Take ``data`` (a journal read from ``where``, the remote copy) as this journal's; written at the next
        save."""
        check_no_secrets(data)
        data = dict(data, env_id=self.env_id)
        data.setdefault("steps", {})
        data.setdefault("runs", [])
        data.setdefault("answers", None)
        data.setdefault("answers_digest", None)
        self.data = data
        self.source = where
        self.notes.append(f"no journal of {self.env_id} on this machine: took the one in {where}")

    def status_of(self, step_id: str) -> str | None:
        return self.data.get("steps", {}).get(step_id, {}).get("status")

    # -- answers ----------------------------------------------------------------------------------------------
    def record_answers(self, answers) -> Saved:
        d = answers.to_dict()
        check_no_secrets(d)
        self.data["answers"] = d
        self.data["answers_digest"] = answers.digest()
        return self.save()

    def answer_changes(self, answers) -> list[AnswerChange]:
        """Fields that differ from the answers recorded by the last run (empty if none were recorded)."""
        old = self.data.get("answers")
        if not old:
            return []
        if self.data.get("answers_digest") == answers.digest():
            return []
        a, b = _flatten(old), _flatten(answers.to_dict())
        return [AnswerChange(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]

    # -- lock -------------------------------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the environment's lock, or raise ``JournalLocked``; a stale lock is taken over (see ``notes``)."""
        import fcntl

        if self._lock_fd is not None:
            return
        fresh = not self.dir.exists()
        for d in (self.dir.parent.parent, self.dir.parent):  # the state dir and envs/: ours, 0700
            private_dir(d)
        private_dir(self.dir, what="environment's state folder")
        # no link followed, no FIFO waited on, a regular file of ours (UnsafePath: a message, exit 2)
        fd = open_private(self.lock_path, os.O_RDWR)
        self._fresh_dir = fresh and not self.path.exists()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder(fd)
            os.close(fd)
            raise JournalLocked(self.env_id, holder, self.lock_path) from None
        previous = self._read_holder(fd)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        if previous.get("pid"):
            same_host = previous.get("host") == me["host"]
            if same_host and previous.get("pid") != me["pid"] and _pid_alive(previous["pid"]) \
                    and previous.get("flock") is False:  # pragma: no cover - a holder that does not use flock
                os.close(fd)
                raise JournalLocked(self.env_id, previous, self.lock_path)
            if previous.get("pid") != me["pid"] or not same_host:
                gone = "no longer running" if same_host and not _pid_alive(previous["pid"]) else \
                    "its lock was free"
                self.notes.append(
                    f"took over a stale lock on {self.env_id} left by pid {previous.get('pid')} on "
                    f"{previous.get('host')} ({gone})")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({**me, "flock": True}).encode(), 0)
        os.fsync(fd)
        self._lock_fd = fd
        # temp files of a writer killed before its rename: the journal itself is whole (old or new)
        for tmp in self.dir.glob(f".{self.path.name}.*.tmp"):
            try:
                tmp.unlink()
            except OSError:
                pass

    def _read_holder(self, fd: int) -> dict[str, Any]:
        try:
            raw = os.pread(fd, 4096, 0)
            holder = json.loads(raw.decode() or "{}")
            return holder if isinstance(holder, dict) else {}
        except (ValueError, OSError):
            return {}

    def unlock(self) -> None:
        try:
            self.stop_writer()  # what was saved is on disk before another installer may take the journal
        finally:
            remote, self.remote = self.remote, None
            if remote is not None:  # its last snapshot written, its lock released (blocking: see close_remote)
                remote.close()
            self._release()
            self._discard_if_unused()

    def _discard_if_unused(self) -> None:
        """A run that stopped before its first step (a failed preflight, a refused input) leaves no environment
        behind: the folder this lock made goes again, with the journal that only held the answers."""
        if not self._fresh_dir or self.data.get("runs") or any(
                (rec or {}).get("status") for rec in self.data.get("steps", {}).values()):
            return
        self._fresh_dir = False
        for f in (self.path, self.lock_path):
            try:
                f.unlink()
            except FileNotFoundError:
                pass
        try:
            self.dir.rmdir()
        except OSError:  # something else is in it: keep it
            pass

    def _release(self) -> None:
        import fcntl

        if self._lock_fd is None:
            return
        try:
            os.ftruncate(self._lock_fd, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def locked(self) -> bool:
        return self._lock_fd is not None

    def lock_holder(self) -> dict[str, Any] | None:
        """Who holds the lock now (None if nobody), without taking it."""
        import fcntl

        if not self.lock_path.exists():
            return None
        try:
            fd = open_private(self.lock_path, os.O_RDONLY, create=False)
        except (UnsafePath, OSError):
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._read_holder(fd) or {"pid": "?"}
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def __enter__(self) -> "Journal":
        self.lock()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unlock()

    # -- status -----------------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        steps = self.data.get("steps", {})
        counts: dict[str, int] = {}
        for rec in steps.values():
            st = rec.get("status", "pending")
            counts[st] = counts.get(st, 0) + 1
        return {
            "env_id": self.env_id, "journal": self.source if self.source and not self.exists else str(self.path),
            "exists": self.exists or self.source is not None,
            "status": self.data.get("status", "not started"), "answers_digest": self.data.get("answers_digest"),
            "updated": self.data.get("updated"), "counts": counts, "steps": steps,
            "runs": len(self.data.get("runs", [])), "locked_by": self.lock_holder(),
        }

    def format_status(self, step_order: list[str] | None = None) -> str:
        s = self.summary()
        if not s["exists"]:
            return f"environment {self.env_id}: no journal yet ({self.path})"
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s["updated"])) if s["updated"] else "?"
        lines = [f"environment {self.env_id}: {s['status']} (last written {when})",
                 f"  journal: {s['journal']}" + (" (not on this machine)" if s["journal"] != str(self.path) else "")]
        if s["locked_by"]:
            lines.append(f"  in use by pid {s['locked_by'].get('pid')} on {s['locked_by'].get('host', '?')}")
        runs = self.data.get("runs") or [{}]
        order = list(step_order or runs[-1].get("plan") or s["steps"])
        order += [k for k in s["steps"] if k not in order]
        for sid in order:
            rec = s["steps"].get(sid, {})
            st = rec.get("status", "pending")
            extra = ""
            if rec.get("outcome"):
                extra = f" ({rec['outcome']})"
            if rec.get("started") and rec.get("finished"):
                extra += f" in {rec['finished'] - rec['started']:.1f}s"
            if st == "failed" and rec.get("error"):
                msg = next((ln.strip() for ln in str(rec["error"].get("message", "")).splitlines() if ln.strip()), "")
                extra += f": {msg[:117] + '...' if len(msg) > 120 else msg}"
            lines.append(f"  {sid:<20} {st}{extra}")
        done = s["counts"].get("done", 0)
        lines.append(f"  {done} of {len(order)} steps done")
        ui = ((s["steps"].get("kfp-ui") or {}).get("outputs") or {}).get("ui_url")
        if ui:
            lines.append(f"  Kubeflow Pipelines UI: {ui}")
        if s["status"] in ("failed", "interrupted", "running") and not s["locked_by"]:
            lines.append("  run the same command again to resume")
        return "\n".join(lines)


def list_envs(root: Path | None = None) -> Iterator[Journal]:
    base = envs_dir(root)
    if not base.is_dir():
        return
    for d in sorted(base.iterdir()):
        if (d / JOURNAL_FILE).exists():
            try:
                yield Journal(d.name, root)
            except InstallerError:
                continue
