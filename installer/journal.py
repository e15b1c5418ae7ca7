"""The journal: one per environment (project + prefix), the install's state on disk.

It holds the answers (non-secret, as a dict) and their digest, each step's status, the ids of what was made and
times. Never a secret: ``save`` refuses data that looks like one (``SecretInJournal``). Writes are atomic (temp
file, fsync, rename) and 0600. A lock (``fcntl.flock`` on ``lock`` beside the journal, holding pid/host/time)
keeps a second installer off the same environment: a lock left by a dead process is taken over with a message;
a live one raises ``JournalLocked`` (exit code 2, see README "Exit codes").
"""
from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .errors import ErrorClass, InstallerError

JOURNAL_VERSION = 1


def state_root() -> Path:
    """The user state directory (``MLOPS_INSTALL_STATE_DIR`` overrides, for tests and the sandbox)."""
    env = os.environ.get("MLOPS_INSTALL_STATE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_state_dir
    return Path(user_state_dir("mlops-install"))


def atomic_write(path: Path, data: bytes, mode: int = 0o600, durable: bool = True) -> None:
    """Write ``data`` to ``path`` as a whole: temp file, (fsync), rename, (fsync of the folder).

    A killed process leaves the old or the new file, with or without ``durable`` (the rename is atomic and the
    page cache outlives the process); ``durable`` adds the fsyncs that make it survive a power cut too.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# ---------------------------------------------------------------------------------------------------------------
# The secret guard

SECRET_KEY_RE = re.compile(r"(password|passwd|private_?key(?!_?id)|privatekeydata|client_secret|access_token|"
                           r"refresh_token|id_token|^token$|bearer|secret_value|key_json|key_data|"
                           r"application_default_credentials)", re.I)


class SecretInJournal(InstallerError):
    def __init__(self, where: str) -> None:
        super().__init__(f"refused to write a secret into the journal (at {where})",
                         error_class=ErrorClass.UNEXPECTED,
                         remedy="this is a bug in the installer: secrets belong in ctx.runtime, never in "
                                "ctx.remember(); please report it")
        self.where = where


def find_secret(obj: Any, path: str = "") -> str | None:
    """Return the path of the first value that looks like a secret, else None."""
    from .logs import redact

    if isinstance(obj, dict):
        for k, v in obj.items():
            sub = f"{path}.{k}" if path else str(k)
            if SECRET_KEY_RE.search(str(k)) and v not in (None, "", [], {}, False, True) \
                    and not isinstance(v, (int, float)):
                return sub
            found = find_secret(v, sub)
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = find_secret(v, f"{path}[{i}]")
            if found:
                return found
    elif isinstance(obj, (str, bytes)):
        text = obj.decode("utf-8", "replace") if isinstance(obj, bytes) else obj
        if redact.looks_secret(text):
            return path or "(value)"
    return None


def _secret_key(obj: Any, path: str = "") -> str | None:
    """Only the key names (cheap): the path of a secret-named key holding a value, else None."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            sub = f"{path}.{k}" if path else str(k)
            if SECRET_KEY_RE.search(str(k)) and v not in (None, "", [], {}, False, True) \
                    and not isinstance(v, (int, float)):
                return sub
            found = _secret_key(v, sub)
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = _secret_key(v, f"{path}[{i}]")
            if found:
                return found
    return None


def check_no_secrets(obj: Any, text: str | None = None) -> None:
    """Raise ``SecretInJournal`` if ``obj`` holds a secret. With ``text`` (its JSON), the values are scanned in
    one pass over the text instead of value by value."""
    from .logs import redact

    if text is None:
        where = find_secret(obj)
    else:
        where = _secret_key(obj) or ((find_secret(obj) or "(journal)") if redact.looks_secret(text) else None)
    if where:
        raise SecretInJournal(where)


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


class Journal:
    def __init__(self, env_id: str, root: Path | None = None) -> None:
        self.env_id = env_id
        self.dir = (root or state_root()) / "envs" / env_id
        self.path = self.dir / "journal.json"
        self.lock_path = self.dir / "lock"
        self._lock_fd: int | None = None
        self.notes: list[str] = []  # messages for the user (e.g. a stale lock taken over)
        self.data: dict[str, Any] = {"version": JOURNAL_VERSION, "env_id": env_id, "steps": {},
                                     "answers_digest": None, "answers": None, "runs": []}
        if self.path.exists():
            try:
                loaded = json.loads(self.path.read_text())
                if not isinstance(loaded, dict) or not isinstance(loaded.get("steps", {}), dict):
                    raise ValueError("not a journal object")
            except (ValueError, OSError) as exc:
                raise InstallerError(f"the journal {self.path} cannot be read: {exc}",
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
    # resumed run looks at every resource again anyway). Each fsync costs 10-100 ms on the event loop.
    DURABLE_STATUSES = frozenset({"done", "failed", "interrupted"})

    def set_status(self, step_id: str, status: str, **extra: Any) -> None:
        rec = self.step(step_id)
        rec["status"] = status
        if "error" in extra and isinstance(extra["error"], dict):
            from .logs import redact  # error texts are for humans: mask, don't refuse
            extra["error"] = {k: redact(v) if isinstance(v, str) else v for k, v in extra["error"].items()}
        rec.update(extra)
        if status != "failed":
            rec.pop("error", None)
        self.save(durable=status in self.DURABLE_STATUSES)

    def finish(self, status: str) -> None:
        self.data["status"] = status
        self.data["finished"] = time.time()
        if self.data["runs"]:
            self.data["runs"][-1].update(finished=self.data["finished"], status=status)
        self.save()

    def start_run(self, **info: Any) -> None:
        self.data["runs"].append({"started": time.time(), "pid": os.getpid(), "host": socket.gethostname(), **info})
        self.data["runs"] = self.data["runs"][-20:]
        self.data["status"] = "running"
        self.save()

    def save(self, durable: bool = True) -> None:
        """Write the journal now (``ctx.remember`` uses this: an id must be on disk before the next mutation)."""
        self.data["updated"] = time.time()
        text = json.dumps(self.data, indent=2, sort_keys=True, default=str)
        check_no_secrets(self.data, text)
        atomic_write(self.path, text.encode(), durable=durable)

    def status_of(self, step_id: str) -> str | None:
        return self.data.get("steps", {}).get(step_id, {}).get("status")

    # -- answers ----------------------------------------------------------------------------------------------
    def record_answers(self, answers) -> None:
        d = answers.to_dict()
        check_no_secrets(d)
        self.data["answers"] = d
        self.data["answers_digest"] = answers.digest()
        self.save()

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
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
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
        fd = os.open(self.lock_path, os.O_RDONLY)
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
            "env_id": self.env_id, "journal": str(self.path), "exists": self.exists,
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
                 f"  journal: {self.path}"]
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
    base = (root or state_root()) / "envs"
    if not base.is_dir():
        return
    for d in sorted(base.iterdir()):
        if (d / "journal.json").exists():
            try:
                yield Journal(d.name, root or state_root())
            except InstallerError:
                continue
