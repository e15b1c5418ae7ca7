"""``mlops-install sandbox …`` / ``python -m sandbox …``: serve, env, fault, scenario, requests."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

DEFAULT_STATE = (Path(os.environ["MLOPS_INSTALL_STATE_DIR"]) if os.environ.get("MLOPS_INSTALL_STATE_DIR") else
                 Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "mlops-install") / "sandbox"


def speed_factor(text: str) -> float:
    """A sandbox speed factor: a number > 0 (1 = Google's latencies, 0.05 = the demo's); ``serve --speed`` and the
    installer's ``--speed`` alike."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a factor such as 0.05") from None
    if not (v > 0 and v == v and v != float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number above 0, such as 0.05 (1 = Google's "
                                         f"latencies)")
    return v


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlops-install sandbox",
                                description="A local stand-in for Google Cloud (and GKE's Kubernetes API).")
    sub = p.add_subparsers(dest="cmd", required=True)

    def state_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--state", type=Path, default=DEFAULT_STATE, help=f"state directory (default {DEFAULT_STATE})")

    s = sub.add_parser("serve", help="run the sandbox in the foreground")
    state_arg(s)
    s.add_argument("--speed", type=speed_factor, default=1.0, help="latency factor: 1 = Google's, 0.01 = tests")
    s.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: the last one, else any)")
    s.add_argument("--log-level", default="WARNING")
    s.add_argument("--exit-with", type=int, metavar="PID", help="stop when process PID is gone (used by tests)")

    e = sub.add_parser("env", help="print the shell exports that point clients at a running sandbox")
    state_arg(e)
    e.add_argument("--json", action="store_true")

    def target(sp: argparse.ArgumentParser) -> None:
        state_arg(sp)
        sp.add_argument("--url", help="control URL (default: from --state, else $MLOPS_SANDBOX_URL)")

    f = sub.add_parser("fault", help="inject a fault: METHOD + path regex -> status/body, N times, delay")
    target(f)
    f.add_argument("--method", default="*")
    f.add_argument("--path", help="regex searched in the request path")
    f.add_argument("--status", type=int)
    f.add_argument("--body", help="JSON body (default: Google's canonical error for the status)")
    f.add_argument("--message")
    f.add_argument("--reason", help="errors[0].reason of the default body (e.g. rateLimitExceeded)")
    f.add_argument("--times", type=int, help="how many requests it hits (0 = every one; default 1, or every one "
                   "with --rate)")
    f.add_argument("--delay", type=float, help="seconds to wait before answering")
    f.add_argument("--rate", type=float, help="probability (0..1) that a matching request is hit")
    f.add_argument("--seed", type=int, help="seed of the --rate RNG (default: random, shown in the output)")
    f.add_argument("--target", help="google (default), kube (every cluster's Kubernetes API) or a cluster name")
    f.add_argument("--op", help="operation kind that ends in error instead, e.g. container.create, sql.create")
    f.add_argument("--list", action="store_true", help="list the faults")
    f.add_argument("--clear", action="store_true", help="remove every fault")

    sc = sub.add_parser("scenario", help="switch a scenario: api_disabled service=…, missing_permission "
                        "permission=…, org_policy_keys, cpu_quota region=… limit=…, bucket_taken bucket=…, reset")
    target(sc)
    sc.add_argument("name", nargs="?")
    sc.add_argument("params", nargs="*", help="key=value (value parsed as JSON when it can be)")

    r = sub.add_parser("requests", help="print the request log")
    target(r)
    r.add_argument("--clear", action="store_true")
    r.add_argument("--json", action="store_true")
    r.add_argument("--mutating", action="store_true", help="only mutating requests")
    r.add_argument("--runtime", action="store_true", help="only the clusters' pod runtime decisions (scheduling, "
                   "config references, the judge's verdict on each container start)")
    return p


def _url(args: argparse.Namespace) -> str:
    if getattr(args, "url", None):
        return args.url
    info = Path(args.state) / "sandbox.json"
    if info.exists():
        return json.loads(info.read_text())["url"]
    if os.environ.get("MLOPS_SANDBOX_URL"):
        return os.environ["MLOPS_SANDBOX_URL"]
    raise SystemExit(f"no sandbox found: {info} is missing and MLOPS_SANDBOX_URL is unset")


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # e.g. `… | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "serve":
        import asyncio
        import fcntl
        import logging

        # The "cloud" keeps secrets (the clusters' Secrets, issued keys) in its state: owner-only files
        os.umask(0o077)
        # one sandbox per state dir: take the lock before the (slow) imports, hold it for the process's life
        from .env import state_folder
        state_folder(args.state)
        lock = open(args.state / ".sandbox.lock", "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another sandbox is already serving {args.state} (see {args.state / 'sandbox.json'})",
                  file=sys.stderr)
            return 3

        from .server import serve

        logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.WARNING),
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        try:
            asyncio.run(serve(args.state, args.speed, args.port, args.exit_with, locked=True))
        except KeyboardInterrupt:
            pass
        return 0
    if args.cmd == "env":
        from .env import env_vars, read_info, shell_exports

        try:
            info = read_info(args.state)
        except OSError:
            print(f"no sandbox state in {args.state} (start one with: mlops-install sandbox serve "
                  f"--state {args.state})", file=sys.stderr)
            return 1
        try:
            os.kill(int(info.get("pid", 0)), 0)
        except (ProcessLookupError, ValueError):
            print(f"warning: the sandbox of {args.state} (pid {info.get('pid')}) is not running; start it with: "
                  f"mlops-install sandbox serve --state {args.state}", file=sys.stderr)
        except PermissionError:
            pass
        env = env_vars(args.state, info)
        sys.stdout.write(json.dumps(env, indent=2) + "\n" if args.json else shell_exports(env))
        return 0
    from .client import ControlClient

    c = ControlClient(_url(args))
    if args.cmd == "fault":
        if args.list:
            print(json.dumps(c.faults(), indent=2))
            return 0
        if args.clear:
            c.clear_faults()
            return 0
        body = json.loads(args.body) if args.body else None
        kw = {} if args.times is None else {"times": None if args.times == 0 else args.times}
        if args.op:
            out = c.fault(op=args.op, message=args.message, **kw)
        else:
            if not args.path:
                print("--path (or --op) is required", file=sys.stderr)
                return 2
            try:
                out = c.fault(args.path, args.status, method=args.method, delay=args.delay, body=body,
                              message=args.message, reason=args.reason, rate=args.rate, seed=args.seed,
                              target=args.target, **kw)
            except RuntimeError as e:
                print(e, file=sys.stderr)
                return 1
        print(json.dumps(out, indent=2))
        return 0
    if args.cmd == "scenario":
        if not args.name:
            print(json.dumps(c.scenarios(), indent=2))
            return 0
        params = {}
        for kv in args.params:
            k, _, v = kv.partition("=")
            try:
                params[k] = json.loads(v)
            except ValueError:
                params[k] = v
        try:
            print(json.dumps(c.scenario(args.name, **params), indent=2))
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 1
        return 0
    if args.cmd == "requests":
        if args.clear:
            print(f"cleared {c.clear_requests()} entries")
            return 0
        reqs = c.requests(api="runtime" if args.runtime else None, mutating=True if args.mutating else None)
        if args.json:
            print(json.dumps(reqs, indent=2))
        else:
            import time

            for r in reqs:
                t = time.strftime("%H:%M:%S", time.localtime(r["time"])) + f".{int(r['time'] % 1 * 1000):03d}"
                if r.get("api") == "runtime":
                    where = f"{r['cluster']} {r['namespace']}/{r['pod']}" + (f" {r['container']}" if r.get(
                        "container") else "")
                    print(f"{t}   {'ok ' if r.get('ok') else 'NO '} {where}: {r.get('rule') or '-'}"
                          + (f": {r['message']}" if r.get("message") else ""))
                    continue
                mark = "*" if r.get("mutating") else " "
                print(f"{t} {mark} {r['status']} {r['method']:6} {r['path']}")
        return 0
    return 2
