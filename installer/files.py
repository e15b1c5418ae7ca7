"""Writing files safely: the one module every writer of the installer uses (journal, lock, debug log, exported key,
kubeconfig, render output, answers write-back).

Rules (README "Security"):
- Nothing is opened through a symbolic link: files are opened with ``O_NOFOLLOW`` (and ``O_NONBLOCK``, so a FIFO
  planted where a file should be never blocks), then checked with ``fstat`` on the open descriptor: a regular file,
  owned by the user running the installer. Anything else is refused with a message (``UnsafePath``, exit 2).
- A whole file is written to a new temp file in the *same* directory (``O_CREAT|O_EXCL|O_NOFOLLOW``, its mode set
  with ``fchmod``), fsynced, then renamed over the name. ``rename(2)`` replaces the directory entry itself, so a link
  at that name is replaced, never followed (POSIX rename(2): "If newpath already exists, it will be atomically
  replaced"; a symlink at newpath is the entry replaced, https://man7.org/linux/man-pages/man2/rename.2.html).
- ``create_new``: exclusive creation of a complete file (temp file, then ``link(2)``, which fails with EEXIST when
  the name exists, whatever it is: a file, a link, a FIFO).
- ``private_dir``: folders the installer owns are created 0700 whatever the umask (``chmod`` after ``mkdir``:
  mkdir(2) applies the umask to its mode); an existing one owned by another user is refused.

``follow_link=True`` (kubeconfig only): a symlinked file stays a symlink: its target is written, in the target's
directory, as kubectl does (client-go ``clientcmd.WriteToFile`` writes with ``os.WriteFile``, which follows the
link: https://github.com/kubernetes/client-go/blob/v0.32.0/tools/clientcmd/loader.go).
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from .errors import BadInput

# Size limits for what the installer reads from files it did not write
MAX_READ = 1 << 20


class UnsafePath(BadInput):
    """A path the installer refuses to write or read (a link, a FIFO, a folder, someone else's file)."""

    def __init__(self, path: str | os.PathLike, why: str, remedy: str = "") -> None:
        super().__init__(f"{path}: {why}", remedy=remedy or "give the path of a regular file of yours, or remove "
                                                             "what is there")
        self.path = str(path)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _owner_ok(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid()


def check_regular(path: str | os.PathLike, st: os.stat_result, *, own: bool = True) -> None:
    """Raise ``UnsafePath`` unless ``st`` is a regular file (owned by us, with ``own``)."""
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePath(path, f"is {_kind(st.st_mode)}, not a regular file")
    if own and not _owner_ok(st):
        raise UnsafePath(path, f"belongs to another user (uid {st.st_uid}); the installer only writes its own "
                               "files", remedy="give a path of your own, or remove that file")


def lstat_or_none(path: str | os.PathLike) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def private_dir(path: str | os.PathLike, *, what: str = "state folder") -> Path:
    """Create ``path`` and its missing parents 0700 (whatever the umask); refuse an existing one that is not a
    folder or belongs to another user. A folder of ours that others may write is tightened to 0700."""
    p = Path(path)
    missing = []
    q = p
    while lstat_or_none(q) is None and q != q.parent:
        missing.append(q)
        q = q.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        else:
            os.chmod(d, 0o700, follow_symlinks=False)
    st = os.stat(p)  # a link to a folder (e.g. a state dir kept elsewhere) is followed: its owner is checked
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePath(p, f"should be a {what} but is {_kind(os.lstat(p).st_mode)}",
                         remedy=f"move it away, or set MLOPS_INSTALL_STATE_DIR to another folder")
    if not _owner_ok(st):
        raise UnsafePath(p, f"the {what} belongs to another user (uid {st.st_uid}); the installer keeps its state "
                            "only in folders of its own", remedy="set MLOPS_INSTALL_STATE_DIR to a folder of yours")
    if st.st_mode & 0o077:
        os.chmod(p, 0o700)
    return p


def _resolve_link(path: Path) -> Path:
    """The final target of a symlinked file (kubeconfig): written in place of the link, as kubectl does."""
    target = Path(os.path.realpath(path))
    st = lstat_or_none(target)
    if st is not None:
        check_regular(path, st)
    return target


def write_file(path: str | os.PathLike, data: bytes | str, *, mode: int = 0o600, durable: bool = True,
               follow_link: bool = False, keep_mode: bool = False) -> Path:
    """Write ``data`` as the whole of ``path``: temp file beside it (exclusive, no link followed), fsync, rename.

    An existing ``path`` must be a regular file of ours (``UnsafePath`` otherwise); a link at ``path`` is replaced
    by the file, unless ``follow_link`` (kubeconfig), where its target is written. ``keep_mode``: an existing file
    keeps its mode, with group/other bits dropped. Returns the path written."""
    if isinstance(data, str):
        data = data.encode()
    p = Path(path)
    st = lstat_or_none(p)
    if st is not None and stat.S_ISLNK(st.st_mode):
        if follow_link:
            p = _resolve_link(p)
            st = lstat_or_none(p)
        else:
            raise UnsafePath(path, "is a symbolic link; the installer does not write through links",
                             remedy="remove the link, or give another path")
    if st is not None:
        check_regular(p, st)
        if keep_mode:
            mode = (st.st_mode & 0o700) or 0o600
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)  # O_CREAT|O_EXCL, 0600
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, p)
        if durable:
            _fsync_dir(p.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return p


def _fsync_dir(d: Path) -> None:
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def create_new(path: str | os.PathLike, data: bytes | str, *, mode: int = 0o600) -> Path:
    """Create ``path`` holding ``data``, only if nothing (not even a dangling link) is at that name:
    ``FileExistsError`` otherwise. The file appears whole (written to a temp file, then hard-linked)."""
    if isinstance(data, str):
        data = data.encode()
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, p, follow_symlinks=False)
        except OSError as exc:
            if exc.errno != errno.EPERM:  # EPERM: a file system without hard links
                raise
            fd2 = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            with os.fdopen(fd2, "wb") as f:
                f.write(data)
                os.fsync(f.fileno())
        _fsync_dir(p.parent)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return p


def open_private(path: str | os.PathLike, flags: int = os.O_RDWR, *, mode: int = 0o600, create: bool = True) -> int:
    """Open (or create) a file of ours without following a link or blocking on a FIFO; return the descriptor.
    The open descriptor is checked (a regular file owned by us) and set to ``mode``."""
    fl = flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, fl, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(path, "is a symbolic link; the installer does not write through links",
                             remedy="remove the link, or give another path") from None
        if exc.errno in (errno.EISDIR, errno.ENXIO):
            st = lstat_or_none(path)
            raise UnsafePath(path, f"is {_kind(st.st_mode) if st else 'not a regular file'}, not a regular file") \
                from None
        raise
    try:
        st = os.fstat(fd)
        check_regular(path, st)
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_append(path: str | os.PathLike, *, mode: int = 0o600, encoding: str = "utf-8"):
    """A text stream appending to a file of ours (the debug log): ``open_private`` with ``O_APPEND``."""
    fd = open_private(path, os.O_WRONLY | os.O_APPEND, mode=mode)
    return os.fdopen(fd, "a", encoding=encoding)


def read_regular(path: str | os.PathLike, *, limit: int = MAX_READ, own: bool = False, what: str = "file") -> bytes:
    """Read a regular file of at most ``limit`` bytes (no FIFO, device or folder: ``UnsafePath``; a larger file:
    ``UnsafePath`` naming the limit). Links are followed here (reading a user's own file through a link is fine),
    but what is read must be a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except IsADirectoryError:
        raise UnsafePath(path, f"the {what} is a folder, not a regular file",
                         remedy="give the path of a regular file") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(path, f"the {what} is {_kind(st.st_mode)}, not a regular file",
                             remedy="give the path of a regular file")
        if own and not _owner_ok(st):
            raise UnsafePath(path, f"the {what} belongs to another user (uid {st.st_uid})")
        if st.st_size > limit:
            raise UnsafePath(path, f"the {what} is {st.st_size} bytes; at most {limit} are read",
                             remedy="give a smaller file")
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            total += len(b)
            if total > limit:
                raise UnsafePath(path, f"the {what} is larger than {limit} bytes", remedy="give a smaller file")
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def regular_file_of_ours(path: str | os.PathLike) -> bool:
    """True when ``path`` (not followed) is a regular file owned by us; False when absent; ``UnsafePath`` for
    anything else at that name."""
    st = lstat_or_none(path)
    if st is None:
        return False
    check_regular(path, st)
    return True
