"""Timed test steps: stand-ins for the outside world (a fake "cloud" dict), driven by the real engine."""
from __future__ import annotations

import asyncio
import time
from typing import Any

from installer.errors import ErrorClass, InstallerError
from installer.plan import Plan
from installer.steps import BaseStep, Observation, StepContext


class World:
    """What exists "in the cloud", and a log of calls."""

    def __init__(self) -> None:
        self.made: dict[str, float] = {}
        self.calls: list[tuple[str, str, float]] = []  # (step, call, time)
        self.applies: dict[str, int] = {}


class TimedStep(BaseStep):
    def __init__(self, spec, world: World, seconds: float, fail: bool = False) -> None:
        super().__init__(spec)
        self.world, self.seconds, self.fail = world, seconds, fail

    async def look(self, ctx: StepContext) -> Observation:
        self.world.calls.append((self.spec.id, "look", time.monotonic()))
        if self.spec.id in self.world.made:
            return Observation("ready", outputs={"name": self.spec.resource})
        return Observation("absent")

    async def apply(self, ctx: StepContext, observed: Observation) -> dict[str, Any]:
        self.world.calls.append((self.spec.id, "apply", time.monotonic()))
        self.world.applies[self.spec.id] = self.world.applies.get(self.spec.id, 0) + 1
        ctx.remember(operation=f"op-{self.spec.id}")
        if self.seconds > 0.2:
            ctx.waiting(f"{self.spec.title} {self.spec.resource} (operation op-{self.spec.id})",
                        expected_seconds=self.seconds)
        await asyncio.sleep(self.seconds)
        if self.fail:
            raise InstallerError(f"{self.spec.id} broke", error_class=ErrorClass.QUOTA, remedy="raise the quota")
        self.world.made[self.spec.id] = time.monotonic()
        return {"name": self.spec.resource}


def timed_steps(plan: Plan, world: World, seconds: dict[str, float] | None = None, default: float = 0.02,
                fail: set[str] = frozenset()) -> dict[str, TimedStep]:
    seconds = seconds or {}
    return {s.id: TimedStep(s, world, seconds.get(s.id, default), s.id in fail) for s in plan}
