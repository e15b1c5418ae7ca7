"""Duration of the install's last step, ``kfp-verify`` (a first pipeline run through KFP's REST client), on a sandbox
(issue 12).

    .venv/bin/python benchmarks/verify_duration.py [--speed 0.02] [--rounds 3]

Starts a fresh sandbox, installs everything but ``kfp-verify`` (not timed), then runs ``kfp-verify`` alone
``--rounds`` times with the real engine and step; between two rounds the step's own ``destroy`` deletes the run,
the experiment and the pipeline, so each round uploads, creates and waits again. Prints per round the step's wall
time, how long it waited for the run (from its creation to SUCCEEDED, the figure the end line shows), the number of
requests to the KFP API through the service proxy, and the median; "speed-1" figures are seconds / speed (the step polls every
2 s x speed; the sandbox's task pods start as soon as they are scheduled, so image pulls and Python start-up of a
real cluster are not in the figure: on GKE expect tens of seconds per task).
The KFP manifests come from ../shared/fixtures/kfp-2.14.4 (rendered 2.14.4).
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

FIXTURES = ROOT.parent / "shared" / "fixtures" / "kfp-2.14.4"


async def _measure(args, tmp: Path, control, answers) -> int:
    from install_wall_time import print_failures

    from installer.journal import Journal
    from installer.plan import Plan, build_plan
    from installer.run import build_backend_steps, install
    from installer.steps import StepContext

    answers.kfp.manifests = str(FIXTURES)
    full = build_plan(answers)
    setup = Plan(answers, [s for s in full if s.id != "kfp-verify"])
    events: list = []
    fin = await install(answers, events.append, assume_yes=True, preflight=False, plan=setup,
                        steps=build_backend_steps(setup), journal_root=tmp / "state", runtime={})
    if fin.status != "done":
        print_failures(events, "the install before the verification")
        return 1
    import dataclasses
    only = Plan(answers, [dataclasses.replace(full["kfp-verify"], deps=())], gate=())  # kfp-ui is done already
    rows = []
    for i in range(args.rounds):
        events = []
        control.clear_requests()
        t0 = time.time()
        fin = await install(answers, events.append, assume_yes=True, preflight=False, plan=only,
                            steps=build_backend_steps(only), journal_root=tmp / "state", runtime={})
        wall = time.time() - t0
        if fin.status != "done":
            print_failures(events, "kfp-verify")
            return 1
        out = fin.outputs["kfp-verify"]
        proxied = [r for r in control.requests() if "/services/ml-pipeline:8888/proxy/" in r["path"]]
        rows.append((wall, out.get("seconds") or 0.0, len(proxied)))
        print(f"round {i + 1}: kfp-verify {wall:.2f} s wall (speed-1 ~{wall / args.speed:.0f} s), run waited "
              f"{out.get('seconds', 0):.2f} s, {len(proxied)} KFP API requests through the service proxy; "
              f"{out['run_url']}")
        # the step's own destroy: the next round starts from nothing again
        from backends.registry import build_steps
        j = Journal(answers.env_id, root=tmp / "state")
        step = build_steps(only)["kfp-verify"]
        ctx = StepContext(answers=answers, plan=only, spec=only["kfp-verify"], record=j.step("kfp-verify"),
                          runtime={}, emit=lambda e: None, save=lambda: None,
                          outputs_of=lambda x: j.step(x).get("outputs", {}))
        await step.destroy(ctx)
    walls = [r[0] for r in rows]
    med = statistics.median(walls)
    print(f"kfp-verify on the sandbox at speed {args.speed}: median {med:.2f} s wall over {len(rows)} rounds "
          f"(min {min(walls):.2f}, max {max(walls):.2f}); speed-1 equivalent ~{med / args.speed:.0f} s")
    return 0


async def main_async(args) -> int:
    from install_wall_time import bench_sandbox

    with bench_sandbox(args.speed, False) as (tmp, control, answers):
        return await _measure(args, tmp, control, answers)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", type=float, default=0.02)
    ap.add_argument("--rounds", type=int, default=3)
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
