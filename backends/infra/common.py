"""Shared bits of the infrastructure steps: labels, markers, recorded operations, small waits."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from installer.answers import LABEL_KEY, Answers
from installer.errors import ErrorClass, InstallerError
from installer.steps import BaseStep, Observation, StepContext

from backends.gcp import operations
from backends.gcp.calls import call
from backends.gcp.env import scaled
from backends.gcp.errors import ApiError


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
