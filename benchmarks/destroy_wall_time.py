"""Wall time of a destroy on a sandbox vs the critical path of its deletions, and requests by kind.

    .venv/bin/python benchmarks/destroy_wall_time.py [--speed 0.02] [--regional]

Starts a fresh sandbox (its latency profile, ``sandbox.catalog.PROFILE``, scaled by ``--speed``), installs the
infrastructure part of the plan (as ``benchmarks/install_wall_time.py`` does), then takes it down with
``installer.destroy.destroy`` (the real engine in destroy mode, the real steps and journal) and prints:
- the destroy's wall time, the critical path of the deletions with each step's destroy taking what the same latency
  profile gives its deletion (the graph run backwards: a cluster before its subnet, the subnet before its network),
  and the ratio (target: within 5 %); and, for comparison, the sum of the deletions (one step at a time);
- each step's start -> done in the destroy, with its profile duration;
- the number of requests by kind (API, method, path template) from the sandbox's request log.
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


def deletion_durations(plan) -> dict[str, float]:
    """Each infrastructure step's destroy (speed 1) under the sandbox's latency profile: what its deletion's
    requests and operations take there (a step whose requests have no latency in the profile takes 0)."""
    from sandbox.catalog import PROFILE as P
    d = {
        "apis": 0.0,  # kept: the APIs stay enabled
        "network": P["compute.delete"],
        "subnet": P["compute.delete"],
        "cluster": P["container.delete"],
        # the install turns deletion protection on (``sql_body``): a patch turning it off, then the delete
        "sql-instance": P["sql.patch"] + P["sql.delete"],
        "sql-user": P["sql.user_op"],
        "bucket": P["storage.bucket_delete"],
        # the project IAM policy read and written once (getIamPolicy, setIamPolicy)
        "gke-sa-roles": 2 * P["crm.iam_policy"],
        "kfp-sa-roles": 2 * P["crm.iam_policy"],
        "gke-sa": 0.0, "kfp-sa": 0.0, "bucket-roles": 0.0,  # no latency in the profile
    }
    return {s.id: d.get(s.id, 0.0) for s in plan}


async def main_async(args) -> int:
    from install_wall_time import bench_sandbox

    with bench_sandbox(args.speed, args.regional) as (tmp, control, answers):
        return await _measure(args, tmp, control, answers)


async def _measure(args, tmp: Path, control, answers) -> int:
    from backends.infra.harness import infra_plan, infra_steps, run_infra
    from install_wall_time import print_failures, print_requests
    from installer.destroy import destroy, teardown_plan

    plan = infra_plan(answers)
    state = tmp / "state"
    t0 = time.perf_counter()
    fin, events = await run_infra(answers, journal_root=state, runtime={})
    installed = time.perf_counter() - t0
    if fin.status != "done":
        print_failures(events, "install")
        return 1

    control.clear_requests()
    events = []
    t0 = time.perf_counter()
    fin = await destroy(answers, events.append, journal_root=state, plan=plan, steps=infra_steps(plan), runtime={})
    wall = time.perf_counter() - t0
    if fin.status != "destroyed":
        print_failures(events, "destroy")
        return 1
    reqs = control.requests()

    durations = {k: v * args.speed for k, v in deletion_durations(plan).items()}
    down = teardown_plan(plan, [s.id for s in plan])
    cp, chain = down.critical_path(durations)  # a longest chain is as long backwards as forwards
    one_by_one = sum(durations.values())
    starts = {e.step_id: e.ts for e in events if e.type == "StepStarted"}
    dones = {e.step_id: e.ts for e in events if e.type == "StepDone"}
    t_start = next(e.ts for e in events if e.type == "RunStarted")

    print(f"sandbox speed {args.speed}  ({'regional' if args.regional else 'zonal'} cluster); "
          f"install first: {installed:.2f} s")
    print(f"wall time (destroy of the infrastructure):  {wall:7.2f} s")
    print(f"critical path of the deletions (profile):   {cp:7.2f} s   {' -> '.join(reversed(chain))}")
    print(f"sum of the deletions (one step at a time):  {one_by_one:7.2f} s")
    print(f"wall / critical path:                       {wall / cp:7.3f}   "
          f"({'within' if wall <= cp * 1.05 else 'NOT within'} 5 %)")
    print("\nsteps (start -> done, seconds from RunStarted):")
    for sid in down.ids:
        if sid in starts:
            print(f"  {sid:14s} {starts[sid] - t_start:7.2f} -> {dones[sid] - t_start:7.2f}   "
                  f"(profile {durations[sid]:6.2f})")
        elif sid in dones:
            print(f"  {sid:14s} {'':7s}    {dones[sid] - t_start:7.2f}   (kept)")
    print_requests(reqs)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", type=float, default=0.02)
    ap.add_argument("--regional", action="store_true")
    args = ap.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
