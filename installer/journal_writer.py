"""How the journal reaches the disk: ``atomic_write`` (a whole file, 0600, in a folder of ours) and, during an
install, one ``Writer`` thread writing the saved snapshots in order; ``Saved`` is a save's completion (see
``installer.journal``'s docstring)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from pathlib import Path

from .files import private_dir, write_file


def atomic_write(path: Path, data: bytes, mode: int = 0o600, durable: bool = True) -> None:
    """Write a file of the state dir as a whole (``installer.files.write_file``: temp file beside it, no link
    followed, fsync, rename), creating its folder 0700 (``installer.files.private_dir``).

    A killed process leaves the old or the new file, with or without ``durable`` (the rename is atomic and the
    page cache outlives the process); ``durable`` adds the fsyncs that make it survive a power cut too.
    """
    path = Path(path)
    private_dir(path.parent)
    write_file(path, data, mode=mode, durable=durable)


class Saved:
    """A save's completion: ``await`` it (in a coroutine) or ``wait()`` (in a thread) until the snapshot is on
    disk; either re-raises the write's error. Ignoring it is fine: the write happens anyway."""

    __slots__ = ("future",)

    def __init__(self, future: concurrent.futures.Future | None = None) -> None:
        self.future = future

    def done(self) -> bool:
        return self.future is None or self.future.done()

    def wait(self, timeout: float | None = None) -> None:
        if self.future is not None:
            self.future.result(timeout)

    def __await__(self):
        if self.future is None:
            return None
        return (yield from asyncio.wrap_future(self.future).__await__())


class Writer:
    """One thread writing the journal's snapshots in order (see the module's docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cond = threading.Condition()
        self._pending: tuple[bytes, bool, list[concurrent.futures.Future]] | None = None
        self._busy = False
        self._closed = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"journal-writer:{path.parent.name}", daemon=True)
        self._thread.start()

    def submit(self, data: bytes, durable: bool) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        fut.set_running_or_notify_cancel()  # a cancelled waiter must not cancel the write (it happens anyway)
        with self._cond:
            if self._closed:
                raise RuntimeError("the journal's writer is stopped")
            if self._pending is not None:  # a newer snapshot replaces the queued one (and inherits its durability)
                _, was_durable, futs = self._pending
                self._pending = (data, durable or was_durable, futs + [fut])
            else:
                self._pending = (data, durable, [fut])
            self._cond.notify_all()
        return fut

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._pending is None:
                    return
                data, durable, futs = self._pending
                self._pending = None
                self._busy = True
            try:
                atomic_write(self.path, data, durable=durable)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits, and to the next save
                self.error = exc
                for f in futs:
                    f.set_exception(exc)
            else:
                for f in futs:
                    f.set_result(None)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or being written; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
