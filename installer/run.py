"""The orchestration used by both front-ends (the wizard and ``--non-interactive``).

``install(answers, emit, assume_yes=...)``: open and lock the journal, explain changed answers, run the
preflight, build the plan and its steps, run the engine, and turn Ctrl-C into a saved journal and exit 130.

``steps=`` takes a ready ``{step_id: Step}`` dict (tests use timed test steps standing in for the outside
world), ``plan=`` a ready plan; ``preflight=False`` skips the preflight.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .answers import Answers
from .engine import Engine
from .errors import EXIT_INTERRUPTED, PreflightFailed
from .events import Event, Notice, PreflightDone, RunFinished
from .journal import Journal
from .plan import Plan, build_plan
from .steps import Observation, Step, StepContext

if TYPE_CHECKING:  # the backends are imported when a run needs them (cloud clients are heavy)
    from backends.preflight import PreflightReport

log = logging.getLogger("mlops_install.run")


def time_scale() -> float:
    try:
        v = float(os.environ.get("MLOPS_INSTALL_TIME_SCALE", "1"))
        return v if v > 0 else 1.0
    except ValueError:
        return 1.0


async def run_preflight(answers: Answers, emit: Callable[[Event], None], runtime: dict[str, Any]) -> None:
    """Run ``backends.preflight.run_preflight``; raise ``PreflightFailed`` when it fails."""
    backend_preflight = await asyncio.to_thread(_preflight_function)  # importing it (and its clients) blocks
    _judge(await backend_preflight(answers, runtime=runtime, emit=emit), emit, runtime)


def _preflight_function():
    from backends.preflight import run_preflight
    return run_preflight


def _judge(report: PreflightReport, emit: Callable[[Event], None], runtime: dict[str, Any]) -> None:
    """Emit a preflight report and keep it in ``runtime["preflight"]``; raise ``PreflightFailed`` when it failed."""
    emit(PreflightDone(report.ok, [c.to_event() for c in report.checks]))
    runtime["preflight"] = report
    if not report.ok:
        failed = [c.name for c in report.failed]
        raise PreflightFailed(f"preflight failed: {', '.join(failed) or 'see the checks above'}", report)


def deferred_checks(answers: Answers, emit: Callable[[Event], None], runtime: dict[str, Any]):
    """The engine's gate for the preflight's checks that could not run yet (an API they need was disabled), or None.

    The report says which (``report.deferred``: the checks waiting for an API) and runs them again
    (``await report.recheck(answers, runtime)`` -> a new report); the engine runs the gate right after the plan's
    ``gate`` steps (the APIs step) and before any other, so a failure there (exit 3) comes before anything but the
    enabled APIs was made."""
    report: PreflightReport | None = runtime.get("preflight")
    if report is None or not report.deferred:
        return None

    async def gate() -> None:
        _judge(await report.recheck(answers, runtime), emit, runtime)
    return gate


_heap_frozen = False
_warm_lock = threading.Lock()  # one warm-up at a time (the wizard's early one and an install's)


SWITCH_INTERVAL = 0.001  # s; CPython's default is 0.005


async def start_worker_threads(timeout: float = 1.0) -> None:
    """Start all of the event loop's default executor threads now, while little else runs, and make a busy thread
    hand the GIL over after 1 ms instead of CPython's 5 (``sys.setswitchinterval``, for this process).

    Why the switch interval: during the preflight a dozen checks run at once in these threads, each building
    requests and parsing responses in Python; the event loop thread, back from each system call, waits for the GIL
    behind them, one interval at a time. Measured with ``benchmarks/event_loop_stall.py --only noui --modes key
    --runs 2``: the worst stall of the first run 17-26 ms at 5 ms, 13-15 ms at 1 ms.

    The executor starts a thread on a submit that finds none idle, and ``Thread.start`` waits, on the event loop,
    until the new thread has run: with other threads busy (the preflight's checks, a YAML parse) that wait for the
    GIL stalled the loop 40-60 ms at an install's start. Each of asyncio's default number of workers waits on a
    barrier, which makes the executor start them all; a smaller custom executor just times the barrier out."""
    n = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor size (ThreadPoolExecutor's default)
    barrier = threading.Barrier(n, timeout=timeout)

    def wait() -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass

    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(None, wait) for _ in range(n)))


def warm_up_backends() -> None:
    """Blocking (run it in a thread): import the backends and their client libraries (``backends.registry.warm_up``)
    with the garbage collector paused (the first time), then move everything alive into its permanent generation
    (``gc.freeze``: at each install, so what a front-end built before it, e.g. the wizard's screens, is frozen too).

    Why: the modules imported during a run are most of the process's heap (~70 000 objects); imported mid-run,
    each full collection (every ~25 % of heap growth) walks all of them while holding the GIL, 100-300 ms of a
    stalled event loop here. Imported first with the collector off and then frozen, nothing is walked twice and a
    full collection walks only what the run made since."""
    global _heap_frozen
    import gc

    from backends.registry import warm_up

    with _warm_lock:
        first = not _heap_frozen
        was_enabled = gc.isenabled()
        if first:
            gc.disable()
        try:
            warm_up()
        except Exception:  # noqa: BLE001 - only an optimisation: the steps import what they need anyway
            log.exception("warming up the backends failed")
        finally:
            gc.freeze()
            _heap_frozen = True
            if first and was_enabled:
                gc.enable()


def build_backend_steps(plan: Plan) -> dict[str, Step]:
    from backends.registry import build_steps
    return build_steps(plan)


async def install(answers: Answers, emit: Callable[[Event], None], *, assume_yes: bool = False,
                  runtime: dict[str, Any] | None = None, steps: dict[str, Step] | None = None,
                  preflight: bool = True, journal_root: Path | None = None, plan: Plan | None = None,
                  tick: Callable[[], None] | None = None, tick_interval: float = 1.0) -> RunFinished:
    """Run (or resume) an install; return the ``RunFinished`` event (its ``exit_code`` is the process's).

    Raises ``JournalLocked`` (another installer holds the environment) and ``PreflightFailed``; every other
    failure is a ``RunFinished`` with status ``failed`` (exit 4) or ``interrupted`` (exit 130).
    """
    import gc
    gc.freeze()  # O(1): what the front-end built so far (e.g. the wizard) is not walked by the run's collections
    runtime = runtime if runtime is not None else {}
    runtime.setdefault("assume_yes", assume_yes)
    runtime.setdefault("enable_apis", bool(answers.apis.enable or assume_yes))
    # consent to change settings of resources that exist (node count, SQL tier/disk): --yes, or the wizard's confirm
    runtime.setdefault("apply_changes", assume_yes)
    runtime.setdefault("time_scale", time_scale())
    # reading the journal and taking its lock (an fsync of the lock file) are file I/O: not on the event loop
    journal = await asyncio.to_thread(Journal, answers.env_id, journal_root)
    await asyncio.to_thread(journal.lock)
    # the remote journal and lock in Cloud Storage (issue 17; installer.remote): on for the backends' install
    runtime.setdefault("remote_state", steps is None)
    await join_remote(journal, answers, runtime, "mlops-install --non-interactive --answers FILE")
    journal.start_writer()  # the journal's writes (and fsyncs) leave the event loop; unlock() stops it
    ticker: asyncio.Task | None = None
    engine: Engine | None = None
    start = time.time()
    try:
        for note in journal.notes:
            log.warning(note)
            emit(Notice(note, "warning"))
        changes = journal.answer_changes(answers)
        started = [s for s, rec in journal.data.get("steps", {}).items() if rec.get("status")]
        if changes and not started:
            log.info("answers changed since the last run, which made nothing: %s", [str(c) for c in changes])
        elif changes:
            text = "; ".join(str(c) for c in changes[:12]) + (" ..." if len(changes) > 12 else "")
            msg = (f"the answers changed since the last run ({len(changes)} field(s): {text}). "
                   f"{len(started)} step(s) already ran; each step looks at the real resources again: what is "
                   f"missing is made; a changed setting of a resource that exists is updated in place where Google "
                   f"can (node count, SQL tier, a larger SQL disk: with --yes or the wizard's confirm), and refused "
                   f"before anything is made where it cannot (machine type, region, zone)")
            log.warning(msg)
            emit(Notice(msg, "warning"))
        journal.record_answers(answers)
        if tick is not None:
            ticker = asyncio.create_task(_tick(tick, tick_interval))
        # the backends' imports happen first, in one thread: not on the event loop, not mid-step, and not in
        # several threads at once (importing threads take turns with the loop for the GIL)
        await start_worker_threads()
        if steps is None or preflight:
            await asyncio.to_thread(warm_up_backends)
        if preflight:
            await run_preflight(answers, emit, runtime)
        if plan is None:
            plan = build_plan(answers)
        if steps is None:
            steps = build_backend_steps(plan)
        journal.start_run(plan=plan.ids)
        engine = Engine(plan, steps, journal, emit, runtime,
                        gate=deferred_checks(answers, emit, runtime) if preflight else None,
                        checkpoint=remote_checkpoint(journal))
        return await engine.run()
    except asyncio.CancelledError:
        # Ctrl-C: the engine has cancelled its steps, saved the journal and emitted RunFinished("interrupted")
        cur = asyncio.current_task()
        if cur is not None and hasattr(cur, "uncancel"):
            cur.uncancel()
        journal.data["status"] = "interrupted"
        try:
            journal.finish("interrupted")
        except Exception:  # pragma: no cover - best effort
            log.exception("could not save the journal after an interruption")
        fin = RunFinished("interrupted", EXIT_INTERRUPTED, [], time.time() - start)
        if engine is None:  # interrupted before the engine started: nobody emitted it yet
            emit(fin)
        log.warning("interrupted; journal saved at %s", journal.path)
        return fin
    finally:
        if ticker is not None:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        try:
            await journal.aflush()  # what was saved is on disk (off the loop); unlock() would wait for it anyway
        except BaseException:  # noqa: BLE001 - cancelled again, or a write failed: unlock() writes or raises
            pass
        await leave_remote(journal)
        journal.unlock()


async def join_remote(journal: Journal, answers: Answers, runtime: dict[str, Any], command: str) -> None:
    """Attach the remote journal and lock (``installer.remote.attach``, in a thread) when ``runtime["remote_state"]``;
    a refusal (another installer holds the lock, an unconfirmed remote journal) releases the local lock and raises."""
    from .remote import attach, open_remote

    remote = open_remote(answers, runtime)
    if remote is None:
        return
    try:
        adopt = bool(runtime.get("adopt_remote", runtime.get("assume_yes")))
        if not adopt and runtime.get("consent") is not None and not journal.exists:
            adopt = await _ask_adopt(remote, runtime)
        await asyncio.to_thread(attach, journal, remote, adopt=adopt, force_id=runtime.get("force_unlock"),
                                command=command)
    except BaseException:
        journal.unlock()
        raise


async def _ask_adopt(remote, runtime: dict[str, Any]) -> bool:
    """The front-end's question (``runtime["consent"]``, the wizard's dialog) before a remote journal is trusted
    as this machine's; False when there is none to take (or it cannot be read: ``attach`` says why)."""
    from backends.k8s.apply import ask_consent

    from .remote import found_remote
    try:
        data = await asyncio.to_thread(remote.fetch)
    except Exception:  # noqa: BLE001 - attach reads it again and says what went wrong
        return False
    if data is None:
        return False
    return await ask_consent(runtime, f"{found_remote(remote, data)}. Go on from it on this machine?")


def remote_checkpoint(journal: Journal) -> Callable[[], Awaitable[None]] | None:
    """The engine's checkpoint for the remote lock (``RemoteState.claim``, in a thread), or None without remote
    state: a run that learns another installer holds the environment starts no other step (exit 2)."""
    remote = journal.remote
    if remote is None:
        return None

    async def checkpoint() -> None:
        await asyncio.to_thread(remote.claim)
    return checkpoint


async def leave_remote(journal: Journal) -> None:
    """The remote's last snapshot written and its lock released, off the event loop (before ``unlock``)."""
    remote = journal.remote
    if remote is not None:
        journal.remote = None
        try:
            await asyncio.to_thread(remote.close)
        except BaseException:  # noqa: BLE001 - an unreleased lock expires with its lease
            log.exception("could not close the remote journal")


async def _tick(tick: Callable[[], None], interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            tick()
        except Exception:  # pragma: no cover
            log.exception("reporter tick failed")


def run_install_sync(answers: Answers, emit: Callable[[Event], None], **kwargs: Any) -> RunFinished:
    """Run ``install`` in a fresh event loop with SIGINT/SIGTERM cancelling it (exit 130 on interruption)."""
    return run_cancellable(lambda: install(answers, emit, **kwargs))


def run_cancellable(make: Callable[[], Any]) -> Any:
    """Run the coroutine ``make()`` (an install or a destroy) in a fresh event loop with SIGINT/SIGTERM cancelling
    it (the coroutine records its state and returns its interrupted result).

    The backends are warmed up first (``warm_up_backends``), before the loop exists: their imports, a key file's RSA
    key and compute's 5 MB discovery document hold the GIL for tens of ms at a time, which in a thread beside the
    loop stalled it up to 40 ms in the run's first second (``benchmarks/event_loop_stall.py``). The coroutine's own
    warm-up then finds everything done; the wizard does the same once its first frame is up."""
    import signal

    warm_up_backends()

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, task.cancel)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                pass
        try:
            return await make()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    return asyncio.run(main())


# ---------------------------------------------------------------------------------------------------------------
# plan: what will happen to each resource (read-only)

def credentials_present() -> bool:
    """Whether Google credentials are at hand (without importing google.auth or calling anything)."""
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return True
    if os.environ.get("CLOUD_SHELL") == "true" or os.environ.get("DEVSHELL_GCLOUD_CONFIG"):
        return True
    cfg = os.environ.get("CLOUDSDK_CONFIG") or str(Path.home() / ".config" / "gcloud")
    return (Path(cfg) / "application_default_credentials.json").exists()


@dataclasses.dataclass
class PlanRow:
    step_id: str
    group: str
    title: str
    resource: str
    deps: tuple[str, ...]
    action: str  # create | exists: adopt | exists: unchanged | update | in progress | conflict | not checked | unknown
    detail: str = ""
    journal_status: str = ""
    # settings of an existing resource that differ from the answers: {"field", "old", "new", "in_place", "how"}
    # (in place: the action is "update"; otherwise "conflict", with the way out in detail)
    changes: list[dict[str, Any]] = dataclasses.field(default_factory=list)


_LOOK_ACTION = {"absent": "create", "ready": "exists: adopt", "pending": "in progress: wait",
                "drifted": "exists: update", "conflict": "conflict"}


async def describe_plan(answers: Answers, *, check: bool | None = None, journal_root: Path | None = None,
                        look_timeout: float = 20.0, steps: dict[str, Step] | None = None) -> list[PlanRow]:
    """Every step with its derived name and what will happen; calls only the steps' read-only ``look``. A local
    ``kfp.manifests`` folder that differs from its release is said on the KFP rows (objects added or missing,
    cluster-wide permissions not in the release), with or without credentials."""
    rows = await _describe_plan(answers, check=check, journal_root=journal_root, look_timeout=look_timeout,
                                steps=steps)
    if answers.kfp.manifests != "upstream":
        from backends.kfp.release import review
        try:
            rv = await asyncio.to_thread(review, answers)
        except Exception as exc:  # noqa: BLE001 - the plan must print anyway (validate/preflight say why)
            lines = [f"cannot read {answers.kfp.manifests}: {getattr(exc, 'message', exc)}"]
        else:
            lines = rv.lines() if rv is not None and rv.differs else []
        for r in rows:
            if lines and r.step_id in ("kfp-cluster-scoped", "kfp-deploy"):
                note = "differs from the release (needs --yes): " + "; ".join(lines)
                r.detail = f"{r.detail}; {note}" if r.detail else note
    return rows


async def _describe_plan(answers: Answers, *, check: bool | None, journal_root: Path | None,
                         look_timeout: float, steps: dict[str, Step] | None) -> list[PlanRow]:
    plan = build_plan(answers)
    journal = Journal(answers.env_id, journal_root, read_only=True)
    rows = [PlanRow(s.id, s.group, s.title, s.resource, s.deps, "not checked",
                    "no credentials" if not steps else "", journal.data.get("steps", {}).get(s.id, {})
                    .get("status", "")) for s in plan]
    if check is None:
        check = credentials_present() or steps is not None
    if not check:
        for r in rows:
            r.detail = "no Google credentials found; the plan shows what would be made"
        return rows
    if steps is None and not journal.data.get("steps"):  # no journal here: the remote one, if any (issue 17)
        from .remote import RemoteState, read_journal
        await asyncio.to_thread(read_journal, journal, RemoteState(answers))
        if journal.source:
            for r in rows:
                r.journal_status = journal.data.get("steps", {}).get(r.step_id, {}).get("status", "")
    if steps is None:
        try:
            steps = build_backend_steps(plan)
        except Exception as exc:  # noqa: BLE001 - the plan must print anyway
            log.exception("could not build the steps for plan")
            for r in rows:
                r.detail = f"cannot check: {type(exc).__name__}: {exc}"
            return rows
    runtime: dict[str, Any] = {"read_only": True, "time_scale": time_scale()}
    events: list[Event] = []
    for r in rows:
        spec = plan[r.step_id]
        impl = steps.get(r.step_id)
        if impl is None:
            r.detail = "no implementation"
            continue
        dep_missing = [d for d in spec.deps if next(x for x in rows if x.step_id == d).action == "create"]
        if dep_missing:
            r.action = "create"
            r.detail = f"after {', '.join(dep_missing)}"
            continue
        ctx = StepContext.of(plan, r.step_id, journal, runtime, events.append)
        try:
            obs: Observation = await asyncio.wait_for(impl.look(ctx), look_timeout)
            r.action = _LOOK_ACTION.get(obs.status, obs.status)
            if obs.status == "ready" and not obs.adopted:
                r.action = "exists: unchanged"
            r.detail = obs.detail
            r.changes = list(obs.outputs.get("changes") or [])
            if obs.status == "drifted" and r.changes:
                r.action = "update"
        except asyncio.TimeoutError:
            r.action, r.detail = "unknown", f"no answer within {look_timeout:g}s"
        except Exception as exc:  # noqa: BLE001
            msg = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            if getattr(getattr(exc, "error_class", None), "value", None) == "auth":
                # no (valid) credentials: no look can answer; say it once instead of on every row
                for other in rows:
                    other.action, other.detail = "not checked", msg
                return rows
            r.action, r.detail = "unknown", msg
    return rows
