"""What the remote journal and lock (issue 17, ``installer/remote.py``) cost an install, on a sandbox.

    .venv/bin/python benchmarks/remote_journal.py [--speed 0.02]

Installs the infrastructure part of the plan twice, each on a fresh sandbox, once with the remote state off and
once on (``runtime["remote_state"]``), and prints for each: the wall time and the Cloud Storage object requests (uploads = journal and lease writes, reads, deletes) from
the sandbox's request log. The remote writes are coalesced (the newest snapshot replaces a queued one), so they are
fewer than the saves.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


async def one(answers, tmp: Path, control, remote: bool) -> None:
    from installer.plan import Plan, build_plan
    from installer.run import build_backend_steps, install

    full = build_plan(answers)
    plan = Plan(answers, [s for s in full if s.group == "infrastructure"])
    control.clear_requests()
    events: list = []
    t0 = time.monotonic()
    fin = await install(answers, events.append, preflight=False, plan=plan, steps=build_backend_steps(plan),
                        journal_root=tmp / f"state-{answers.prefix}", runtime={"remote_state": remote})
    wall = time.monotonic() - t0
    from install_wall_time import print_failures
    print_failures(events, "remote on" if remote else "remote off")
    objs = [r for r in control.requests(api="storage") if "/o" in r["path"]]
    ups = sum(1 for r in objs if r["path"].startswith("/upload/"))
    gets = sum(1 for r in objs if r["method"] == "GET")
    dels = sum(1 for r in objs if r["method"] == "DELETE")
    print(f"remote {'on ' if remote else 'off'}: {fin.status}, wall {wall:.2f} s, {len(plan.ids)} steps "
          f"(each saved running, then done), "
          f"object requests: {ups} uploads (journal + lock + lease), {gets} reads, {dels} deletes")


async def main_async(args) -> int:
    from install_wall_time import bench_sandbox

    for remote in (False, True):  # a fresh sandbox each (two clusters exceed its default quotas)
        with bench_sandbox(args.speed, False) as (tmp, control, answers):
            control.scenario("api_enabled", all=True)
            await one(answers, tmp, control, remote)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--speed", type=float, default=0.02)
    return asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
