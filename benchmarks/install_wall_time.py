"""Wall time of the infrastructure install on a sandbox vs the plan's critical path, and requests by kind.

    .venv/bin/python benchmarks/install_wall_time.py [--speed 0.02] [--regional] [--runs 1]

Starts a fresh sandbox (its latency profile, ``sandbox.catalog.PROFILE``, scaled by ``--speed``), runs the
infrastructure part of the plan from nothing with the real engine and steps, and prints:
- the wall time, the critical path of the plan with each step's duration taken from the same latency profile
  (and with the plan's own ``expected_seconds``), and the ratio (target: within 10 %);
- the number of requests by kind (API, method, path template) from the sandbox's request log, and the
  number of mutating requests of a second run (should be 0).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def profile_durations(plan, zonal: bool) -> dict[str, float]:
    """Each infrastructure step's duration (speed 1) under the sandbox's latency profile."""
    from sandbox.catalog import PROFILE as P
    d = {
        "apis": P["serviceusage.enable"] + P["serviceusage.usable"],
        "network": P["compute.network_insert"],
        # the subnet is usable by GKE only once it has settled ("not ready" window)
        "subnet": P["compute.subnetwork_insert"] + P.get("compute.subnet_not_ready", 0.0),
        "gke-sa": P["iam.sa_create"] + P.get("iam.sa_visible_iam", 0.0),
        "kfp-sa": P["iam.sa_create"] + P.get("iam.sa_visible_iam", 0.0),
        # a binding naming a just-created account waits for the account to be visible to CRM
        "gke-sa-roles": max(0.0, P["iam.sa_visible"] - P.get("iam.sa_visible_iam", 0.0)) + 2 * P["crm.iam_policy"],
        "kfp-sa-roles": max(0.0, P["iam.sa_visible"] - P.get("iam.sa_visible_iam", 0.0)) + 2 * P["crm.iam_policy"],
        "cluster": P["container.create_zonal"] if zonal else P["container.create_regional"],
        "sql-instance": P["sql.create"],
        "sql-user": P["sql.user_op"],
        "bucket": P["storage.bucket_insert"],
    }
    return {s.id: d.get(s.id, 0.0) for s in plan}


_COLLECTIONS = ("projects", "networks", "subnetworks", "regions", "zones", "operations", "clusters", "locations",
                "instances", "users", "serviceAccounts", "b", "services", "machineTypes", "keys")


def template(path: str) -> str:
    parts = path.strip("/").split("/")
    out = []
    for i, seg in enumerate(parts):
        prev = parts[i - 1] if i else ""
        if prev in _COLLECTIONS and seg not in _COLLECTIONS:
            m = re.match(r"^[^:]+(:\w+)$", seg)
            out.append("*" + (m.group(1) if m else ""))
        else:
            out.append(seg)
    return "/" + "/".join(out)


@contextlib.contextmanager
def bench_sandbox(speed: float, regional: bool):
    """A fresh sandbox at ``speed`` with its environment exported (the installer's time scale too); yields
    (temporary folder, control client, the benchmark's answers); stopped at the end."""
    from sandbox.client import ControlClient
    from sandbox.launcher import start_background

    from installer.answers import Answers

    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-"))
    handle = start_background(tmp / "sandbox", speed)
    try:
        os.environ.update(handle.env)
        for k in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
            os.environ.pop(k, None)
        os.environ["MLOPS_INSTALL_TIME_SCALE"] = str(speed)
        control = ControlClient(handle.url)
        if regional:  # 3 zones x 3 x e2-standard-4 = 36 vCPUs: more than the sandbox's default 24
            control.scenario("cpu_quota", region="us-central1", limit=64)
        yield tmp, control, Answers(project=os.environ.get("CLOUDSDK_CORE_PROJECT", "mlops-demo-project"),
                                    region="us-central1", zone=None if regional else "us-central1-a", prefix="bench")
    finally:
        handle.stop()


def print_failures(events, what: str = "") -> None:
    for e in events:
        if e.type == "StepFailed":
            print(f"{what + ' ' if what else ''}FAILED {e.step_id}: {e.message}", file=sys.stderr)


def print_requests(reqs: list[dict]) -> None:
    """The number of requests by kind (API, method, path template) of a sandbox request log."""
    kinds = collections.Counter((r.get("api") or "?", r["method"], template(r["path"])) for r in reqs)
    print(f"\nrequests: {len(reqs)} total, {sum(1 for r in reqs if r.get('mutating'))} mutating, "
          f"{sum(1 for r in reqs if r['status'] >= 400)} answered with an error")
    for (api, method, path), n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:5d}  {api:13s} {method:6s} {path}")


async def main_async(args) -> int:
    with bench_sandbox(args.speed, args.regional) as (tmp, control, answers):
        return await _measure(args, tmp, control, answers)


async def _measure(args, tmp: Path, control, answers) -> int:
    from backends.infra.harness import infra_plan, run_infra

    plan = infra_plan(answers)
    # one-off start-up costs that do not scale with the sandbox speed: importing the client libraries and the
    # installer's modules, getting the first token (~0.7-1.5 s); excluded from the wall time, printed apart
    # (--cold includes them)
    tw = time.perf_counter()
    if not args.cold:
        import google.cloud.storage  # noqa: F401
        import googleapiclient.discovery  # noqa: F401

        import backends.infra.steps  # noqa: F401
        import installer.run  # noqa: F401

        from backends.gcp.auth import access_token
        await asyncio.to_thread(access_token)
    warm = time.perf_counter() - tw
    # instrument (not replace) the journal's save: its fsyncs run on the event loop and delay every step
    from installer import journal as journal_mod
    saves = {"n": 0, "s": 0.0}
    real_save = journal_mod.Journal.save

    def timed_save(self, *a, **kw):
        ts = time.perf_counter()
        try:
            return real_save(self, *a, **kw)
        finally:
            saves["n"] += 1
            saves["s"] += time.perf_counter() - ts
    journal_mod.Journal.save = timed_save
    control.clear_requests()
    t0 = time.perf_counter()
    t_start0 = time.time()
    fin, events = await run_infra(answers, journal_root=tmp / "state", runtime={})
    wall = time.perf_counter() - t0
    if fin.status != "done":
        print_failures(events)
        return 1
    reqs = control.requests()
    if args.trace:
        for r in reqs:
            if r.get("api") in args.trace.split(","):
                print(f"{r['time'] - t_start0:8.3f} {r['method']:6s} {r['path'][:100]} {r['status']}")
    durations = profile_durations(plan, zonal=not args.regional)
    cp, chain = plan.critical_path({k: v * args.speed for k, v in durations.items()})
    cp_plan, chain_plan = plan.critical_path({s.id: s.expected_seconds * args.speed for s in plan})
    starts = {e.step_id: e.ts for e in events if e.type == "StepStarted"}
    dones = {e.step_id: e.ts for e in events if e.type == "StepDone"}

    print(f"sandbox speed {args.speed}  ({'regional' if args.regional else 'zonal'} cluster)")
    print(f"wall time (infrastructure, from nothing): {wall:7.2f} s"
          + ("" if args.cold else f"   (+{warm:.2f} s warm-up: imports and first token, before timing)"))
    print(f"critical path, sandbox latency profile:   {cp:7.2f} s   {' -> '.join(chain)}")
    print(f"critical path, plan expected_seconds:     {cp_plan:7.2f} s   {' -> '.join(chain_plan)}")
    print(f"wall / critical path (profile):           {wall / cp:7.3f}   "
          f"({'within' if wall <= cp * 1.10 else 'NOT within'} 10 %)")
    print(f"journal saves (fsync, on the event loop):  {saves['n']} taking {saves['s']:.2f} s in all")
    print("\nsteps (start -> done, seconds from the run's start):")
    base = min(starts.values())
    t_start = next(e.ts for e in events if e.type == "RunStarted")
    print(f"  (run set-up before the first step: {base - t_start0:.2f} s, RunStarted after {t_start - t_start0:.2f} s)")
    for s in plan:
        if s.id in dones:
            print(f"  {s.id:14s} {starts[s.id] - base:7.2f} -> {dones[s.id] - base:7.2f}   "
                  f"(profile {durations[s.id] * args.speed:6.2f})")
    print_requests(reqs)
    control.clear_requests()
    t1 = time.perf_counter()
    fin2, _ = await run_infra(answers, journal_root=tmp / "state", runtime={})
    again = time.perf_counter() - t1
    reqs2 = control.requests()
    print(f"\nsecond run: {fin2.status} in {again:.2f} s, {len(reqs2)} requests, "
          f"{sum(1 for r in reqs2 if r.get('mutating'))} mutating")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", type=float, default=0.02)
    ap.add_argument("--regional", action="store_true")
    ap.add_argument("--trace", default="", help="print the requests of these APIs (e.g. sqladmin,serviceusage)")
    ap.add_argument("--cold", action="store_true", help="time the imports and the first token too")
    args = ap.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
