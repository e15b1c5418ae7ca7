"""Shared bits of the infrastructure steps: labels, markers, recorded operations, create-and-wait, small waits,
typed step outputs."""
from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, fields
from typing import Any, Awaitable, Callable

from installer.answers import LABEL_KEY, Answers
from installer.errors import ErrorClass, InstallerError
from installer.steps import BaseStep, Observation, StepContext

from backends.gcp import operations
from backends.gcp.calls import call
from backends.gcp.env import scaled
from backends.gcp.errors import ApiError, classify


def labels(answers: Answers) -> dict[str, str]:
    return {LABEL_KEY: answers.prefix}


def marker(answers: Answers) -> str:
    """For resources without labels (networks, subnets, service accounts): put in their description."""
    return f"Created by mlops-install ({LABEL_KEY}={answers.prefix})"


def has_marker(answers: Answers, description: str | None) -> bool:
    return f"{LABEL_KEY}={answers.prefix})" in (description or "")


def is_ours(answers: Answers, lbls: dict | None) -> bool:
    return (lbls or {}).get(LABEL_KEY) == answers.prefix


def tail(path: str | None) -> str:
    return (path or "").rstrip("/").rsplit("/", 1)[-1]


async def recorded_op_state(ctx: StepContext, key: str = "operation") -> tuple[str | None, dict | None]:
    """State of the operation a previous run remembered: (None|"running"|"done"|"failed", op ref)."""
    ref = ctx.outputs.get(key)
    if not isinstance(ref, dict) or not ref.get("name"):
        return None, None
    try:
        op = await call(ref["api"], operations._getter(ref), raw=True, project=ref["project"])
    except ApiError as err:
        if err.http in (404, 400):
            return None, None
        raise
    if not operations._is_done(ref["api"], op):
        return "running", ref
    return ("failed" if operations._op_error(ref["api"], op) else "done"), ref


async def unless_op_running(ctx: StepContext, obs: Observation, what: str,
                            statuses: tuple[str, ...] = ("absent",)) -> Observation:
    """``obs``, unless an operation an earlier run recorded is still creating the resource: then "pending"."""
    if obs.status in statuses:
        state, _ = await recorded_op_state(ctx)
        if state == "running":
            return Observation("pending", f"{what} being created by an earlier run")
    return obs


async def wait_recorded_create(ctx: StepContext, what: str, otherwise: Callable[[StepContext], Awaitable[Any]]) -> None:
    """A resumed create: wait on the operation an earlier run recorded while it still runs, else ``otherwise(ctx)``
    (the resource's own status poll)."""
    ref = ctx.outputs.get("operation")
    state, _ = await recorded_op_state(ctx) if ref else (None, None)
    if state == "running":
        await operations.wait(ref, ctx=ctx, what=what, expected_seconds=ctx.spec.expected_seconds)
    else:
        await otherwise(ctx)


async def read_or_none(api: str, factory: Callable[[Any], Any], *, what: str, project: str) -> Any:
    """A read (``call(api, factory)``); None when what it reads is not found (404), any other error classified."""
    try:
        return await call(api, factory, raw=True)
    except ApiError as err:
        if err.not_found:
            return None
        raise classify(err, what=what, project=project) from err


async def create_and_wait(ctx: StepContext, api: str, factory: Callable[[Any], Any], *, what: str,
                          expected_seconds: float, region: str = "", scope: str = "",
                          retry_if: Callable[[ApiError], bool] | None = None,
                          on_exists: Callable[[ApiError], Awaitable[None]] | None = None, **remember: Any) -> bool:
    """Send a create (``call(api, factory)``), remember its operation (and ``remember``) before waiting on it, so a
    resumed run waits on the same operation (``unless_op_running``, ``wait_recorded_create``), then wait.

    False when the resource already exists (made by an earlier, interrupted run, or just now by someone else):
    ``on_exists(err)`` may refuse that by raising. ``scope``: the operation's location when its answer names none."""
    p = ctx.answers.project
    try:
        op = await call(api, factory, raw=True, retry_if=retry_if)
    except ApiError as err:
        if not err.already_exists:
            raise classify(err, what=what, project=p, region=region) from err
        if on_exists is not None:
            await on_exists(err)
        return False
    ref = operations.op_ref(api, op, p)
    if not ref["scope"]:
        ref["scope"] = scope
    await ctx.remember(operation=ref, **remember)
    await operations.wait(ref, ctx=ctx, what=what, initial=op, expected_seconds=expected_seconds)
    return True


async def poll_until(check: Callable[[], Awaitable[Any]], *, what: str, timeout: float, ctx: StepContext | None = None,
                     min_interval: float = 2.0, max_interval: float = 10.0) -> Any:
    """Call ``check`` (scaled 2 s -> 10 s apart) until it returns a truthy value; TIMEOUT after ``timeout`` s (scaled)."""
    deadline = time.monotonic() + scaled(timeout, 10.0)
    interval = scaled(min_interval)
    if ctx is not None:
        ctx.waiting(what)
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise InstallerError(f"timed out {what}", error_class=ErrorClass.TIMEOUT,
                                 remedy="Run the installer again to resume.")
        await asyncio.sleep(interval)
        interval = min(scaled(max_interval), interval * 1.5)


class InfraStep(BaseStep):
    """A step whose ``look`` is ``inspect`` (read-only, usable without a context: preflight uses it)."""

    async def inspect(self, answers: Answers, runtime: dict | None = None) -> Observation:  # pragma: no cover
        raise NotImplementedError

    async def look(self, ctx: StepContext) -> Observation:
        return await self.inspect(ctx.answers, ctx.runtime)


def conflict(message: str, remedy: str) -> Observation:
    return Observation("conflict", message, remedy=remedy)


def not_found(what: str, existing: bool, field: str, remedy: str, where: str = "") -> Observation:
    """A resource that is not there: absent (the step makes it), or a conflict when the answers say it exists
    (``field``: ``cluster.existing``, ``sql.existing``)."""
    if existing:
        return conflict(f"{what} ({field}) was not found{where}", remedy)
    return Observation("absent", f"{what} does not exist")


class Outputs:
    """Base of a step's typed outputs: a frozen dataclass whose fields are the keys the step records. The producing
    step writes ``to_dict()``; another step reads them with ``of(ctx.outputs_of(step_id))`` (missing keys, e.g.
    before the step is done, take the field's default)."""

    @classmethod
    def of(cls, outputs: dict | None) -> Any:
        got = outputs or {}
        return cls(**{f.name: got[f.name] for f in fields(cls) if f.name in got})  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]
