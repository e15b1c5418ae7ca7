"""What held the event loop: a heartbeat on the loop and a watchdog thread that samples stacks when it is late.

``StallWatch`` runs a heartbeat task on the loop (it records the time every ``tick``) and a watchdog thread. When
the heartbeat is older than ``threshold`` the watchdog samples the stacks (``sys._current_frames()``) of the loop's
thread and of every other busy thread, every ``sample`` seconds, until the heartbeat comes back. The watchdog's
own lateness is kept too: a watchdog that could not run for a long time means some thread held the GIL in C code
(json.loads of a big document, a regex...), which stalls the loop just as much as work on the loop itself; the
other threads' stacks then show who it was.

Each stall becomes a ``Stall`` (when, how long, the samples). ``offenders(stalls)`` groups them by the innermost
frame of the project's code in the loop thread's stack (falling back to the innermost frame), and
``format_offenders`` prints the top ones with a short stack.
"""
from __future__ import annotations

import asyncio
import collections
import gc
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[1])
PROJECT_DIRS = tuple(f"{REPO}/{d}/" for d in ("installer", "backends", "screens", "sandbox"))

# frames a thread sits in when it is waiting, not working (so not holding the GIL)
IDLE_LEAVES = {("threading.py", "wait"), ("selectors.py", "select"), ("queue.py", "get"),
               ("socket.py", "readinto"), ("ssl.py", "read"), ("thread.py", "_worker"),
               ("threading.py", "_wait_for_tstate_lock"), ("socketserver.py", "serve_forever"),
               ("selectors.py", "poll"), ("stallwatch.py", "_watch"), ("socket.py", "accept"),
               ("client.py", "_read_status")}


def _short(filename: str) -> str:
    if filename.startswith(REPO + "/"):
        rel = filename[len(REPO) + 1:]
        return rel.split("site-packages/", 1)[-1] if "site-packages/" in rel else rel
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    return filename.rsplit("/", 2)[-1] if "/lib/python" in filename else filename


def _in_project(filename: str) -> bool:
    return filename.startswith(PROJECT_DIRS)


@dataclass
class Sample:
    stack: tuple[tuple[str, int, str], ...]  # (file, line, function), outermost first
    others: tuple[tuple[str, tuple[tuple[str, int, str], ...]], ...] = ()  # busy threads: (name, stack)
    watchdog_late: float = 0.0  # how long the watchdog itself could not run before this sample (s)
    widget: str = ""  # the innermost Textual widget/screen method on the loop's stack (what it was drawing)


@dataclass
class Stall:
    t: float  # loop time (perf_counter) when the heartbeat was last seen
    ms: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    loop_cpu0: float = 0.0  # the loop thread's CPU clock when the stall was seen (s)
    proc_cpu0: float = 0.0
    runq0: float = 0.0
    seen_at: float = 0.0  # when the watchdog last ran before it saw the stall (the figures below start there)
    seen_ms: float = 0.0  # wall time from then to the stall's end
    loop_cpu_ms: float = 0.0  # CPU the loop thread used in that time
    proc_cpu_ms: float = 0.0  # CPU the whole process used (all threads)
    runq_ms: float = 0.0  # time the loop thread was runnable but waited for a CPU (the machine's load)
    gc_ms: float = 0.0  # time the cyclic garbage collector ran during the stall (in any thread; it holds the GIL)


def _stack(frame) -> tuple[tuple[str, int, str], ...]:
    """(file, line, function) outermost first; cheap (no source lines read: the watchdog holds the GIL meanwhile)."""
    out = []
    f = frame
    while f is not None:
        out.append((f.f_code.co_filename, f.f_lineno or 0, f.f_code.co_name))
        f = f.f_back
    out.reverse()
    return tuple(out)


def _widget(frame) -> str:
    """``Class.method`` of the innermost frame whose ``self`` is a Textual DOM node (the app excluded)."""
    f = frame
    try:
        from textual.app import App
        from textual.dom import DOMNode
    except ImportError:  # pragma: no cover
        return ""
    while f is not None:
        try:
            obj = f.f_locals.get("self")
        except Exception:  # noqa: BLE001
            obj = None
        if isinstance(obj, DOMNode) and not isinstance(obj, App):
            ident = f"#{obj.id}" if getattr(obj, "id", None) else ""
            return f"{type(obj).__name__}{ident}.{f.f_code.co_name}"
        f = f.f_back
    return ""


def _idle(stack) -> bool:
    if not stack:
        return True
    f, _, fn = stack[-1]
    return (f.rsplit("/", 1)[-1], fn) in IDLE_LEAVES


class StallWatch:
    def __init__(self, threshold: float = 0.03, tick: float = 0.005, sample: float = 0.005) -> None:
        self.threshold = threshold
        self.tick = tick
        self.sample = sample
        self.stalls: list[Stall] = []
        self._beat = time.perf_counter()
        self._stop = threading.Event()
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None
        self._loop_ident = 0
        self.gcs: list[tuple[float, float, int, str]] = []  # (start, seconds, generation, thread name)
        self._gc_start = 0.0

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gcs.append((self._gc_start, time.perf_counter() - self._gc_start, info.get("generation", -1),
                             threading.current_thread().name))

    async def _heartbeat(self) -> None:
        while True:
            self._beat = time.perf_counter()
            await asyncio.sleep(self.tick)

    def start(self) -> None:
        self._loop_ident = threading.get_ident()
        self._schedstat = f"/proc/self/task/{threading.get_native_id()}/schedstat"
        try:
            self._loop_clock = time.pthread_getcpuclockid(self._loop_ident)
        except (AttributeError, OSError):
            self._loop_clock = None
        self._beat = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._heartbeat())
        self._thread = threading.Thread(target=self._watch, name="stallwatch", daemon=True)
        self._thread.start()
        gc.callbacks.append(self._gc)

    async def stop(self) -> None:
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
        self._stop.set()
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._thread:
            self._thread.join(2)

    def _watch(self) -> None:
        current: Stall | None = None
        last_wake = time.perf_counter()
        prev = (last_wake, self._loop_cpu(), time.process_time(), self._runq())
        names = {}
        while not self._stop.is_set():
            time.sleep(self.sample)
            now = time.perf_counter()
            wd_late = now - last_wake - self.sample
            last_wake = now
            before, prev = prev, (now, self._loop_cpu(), time.process_time(), self._runq())
            beat = self._beat
            late = now - beat
            if late > self.threshold:
                if current is None or current.t != beat:
                    if current is not None:
                        self._close(current)
                    current = Stall(beat, seen_at=before[0], loop_cpu0=before[1], proc_cpu0=before[2],
                                    runq0=before[3])
                frames = sys._current_frames()
                main = frames.get(self._loop_ident)
                others = []
                if len(names) != threading.active_count():
                    names = {t.ident: t.name for t in threading.enumerate()}
                for ident, fr in frames.items():
                    if ident in (self._loop_ident, threading.get_ident()):
                        continue
                    st = _stack(fr)
                    if not _idle(st):
                        others.append((names.get(ident, str(ident)), st))
                current.samples.append(Sample(_stack(main) if main is not None else (), tuple(others),
                                              max(wd_late, 0.0), _widget(main) if main is not None else ""))
                current.ms = late * 1000
            elif current is not None:
                current.ms = max(current.ms, (self._beat - current.t - self.tick) * 1000)
                self._close(current)
                current = None
        if current is not None:
            self._close(current)

    def _runq(self) -> float:
        try:
            with open(self._schedstat) as f:
                return int(f.read().split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0

    def _loop_cpu(self) -> float:
        if self._loop_clock is None:
            return 0.0
        try:
            return time.clock_gettime(self._loop_clock)
        except OSError:
            return 0.0

    def _close(self, stall: Stall) -> None:
        stall.loop_cpu_ms = (self._loop_cpu() - stall.loop_cpu0) * 1000
        stall.proc_cpu_ms = (time.process_time() - stall.proc_cpu0) * 1000
        stall.seen_ms = (time.perf_counter() - stall.seen_at) * 1000
        stall.runq_ms = (self._runq() - stall.runq0) * 1000
        end = stall.t + self.tick + stall.ms / 1000
        stall.gc_ms = sum(max(0.0, min(t0 + d, end) - max(t0, stall.t)) for t0, d, _, _ in self.gcs) * 1000
        self.stalls.append(stall)


def key_frame(stack) -> tuple[str, int, str] | None:
    """The innermost frame of the project's code, else the innermost frame."""
    for f in reversed(stack):
        if _in_project(f[0]) and not f[0].endswith("stallwatch.py"):
            return f
    return stack[-1] if stack else None


def _leaf(stack) -> tuple[str, int, str] | None:
    return stack[-1] if stack else None


def _fmt(f) -> str:
    return f"{_short(f[0])}:{f[1]} {f[2]}" if f else "?"


def offenders(stalls: list[Stall], over_ms: float = 30.0):
    """[(key, total ms, count, worst ms, example sample, watched ms, loop CPU ms, process CPU ms, run-queue ms, gc ms)] sorted by total ms: each stall is charged to the key
    frame seen in most of its samples (ties: the first)."""
    agg: dict[str, list] = {}
    for st in stalls:
        if st.ms < over_ms or not st.samples:
            continue
        keys = collections.Counter()
        example = {}
        for s in st.samples:
            busy_others = [o for o in s.others]
            if s.watchdog_late > 0.02 and busy_others:
                # the watchdog itself was held: the GIL was taken by C code in some thread
                k = "GIL held by a thread: " + "; ".join(
                    f"{n} @ {_fmt(key_frame(o))} -> {_fmt(_leaf(o))}" for n, o in busy_others[:2])
            else:
                kf = key_frame(s.stack)
                where = _fmt(kf) if kf is not None and _in_project(kf[0]) else ""
                if s.widget and not where:
                    where = f"drawing {s.widget}"
                k = f"loop @ {where or _fmt(kf)} -> {_fmt(_leaf(s.stack))}"
            keys[k] += 1
            example.setdefault(k, s)
        k = keys.most_common(1)[0][0]
        a = agg.setdefault(k, [k, 0.0, 0, 0.0, example[k], 0.0, 0.0, 0.0, 0.0, 0.0])
        a[1] += st.ms
        a[2] += 1
        a[3] = max(a[3], st.ms)
        a[5] += st.seen_ms
        a[6] += st.loop_cpu_ms
        a[7] += st.proc_cpu_ms
        a[8] += st.runq_ms
        a[9] += st.gc_ms
    return sorted(agg.values(), key=lambda a: -a[1])


def format_stack(stack, depth: int = 10) -> list[str]:
    """The stack's project frames and its last few frames, innermost last."""
    keep = [f for f in stack if _in_project(f[0])]
    tail = list(stack[-4:])
    seen = set()
    out = []
    for f in list(stack):
        if (f in keep[-depth:] or f in tail) and f not in seen:
            seen.add(f)
            out.append(_fmt(f))
    return out


def format_offenders(stalls: list[Stall], top: int = 6, over_ms: float = 30.0, indent: str = "    ") -> str:
    lines = []
    for k, total, n, worst, ex, seen, loop_cpu, proc_cpu, runq, gcms in offenders(stalls, over_ms)[:top]:
        lines.append(f"{indent}{total:6.0f} ms in {n} stall(s), worst {worst:.0f} ms: {k}")
        lines.append(f"{indent}      (in {seen:.0f} ms: loop thread on CPU {loop_cpu:.0f} ms, waiting for a CPU "
                     f"{runq:.0f} ms; whole process on CPU {proc_cpu:.0f} ms; garbage collector {gcms:.0f} ms)")
        stack = ex.stack
        if k.startswith("GIL") and ex.others:
            stack = ex.others[0][1]
        for ln in format_stack(stack):
            lines.append(f"{indent}      {ln}")
    return "\n".join(lines)


def format_gc(gcs, indent: str = "    ") -> str:
    by = collections.defaultdict(list)
    for _, d, g, _ in gcs:
        by[g].append(d * 1000)
    parts = [f"gen{g}: {len(v)} runs, {sum(v):.0f} ms, worst {max(v):.0f} ms" for g, v in sorted(by.items())]
    return f"{indent}garbage collector: " + ("; ".join(parts) or "did not run")
