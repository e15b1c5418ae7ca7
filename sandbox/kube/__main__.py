"""Run one fake cluster by hand: `python -m sandbox.kube --state DIR [--speed X] [--token T] [--name N]`.

Writes DIR/kubeconfig (server, CA, token) and serves until interrupted; then
`KUBECONFIG=DIR/kubeconfig kubectl get ns`. The sandbox (`mlops-install sandbox serve`) starts one of these per
GKE cluster by itself; this entry point is for poking at the Kubernetes half alone.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
from pathlib import Path

from .server import KubeApiServer


async def _main(args: argparse.Namespace) -> None:
    state = Path(args.state)
    srv = KubeApiServer(name=args.name, state_dir=state, token_checker=lambda t: t == args.token, speed=args.speed,
                        log=(lambda e: print(f"{e['method']} {e['path']} {e['status']}", flush=True))
                        if args.verbose else None)
    port = await srv.start(port=args.port)
    kubeconfig = state / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": args.name, "cluster": {
            "server": f"https://127.0.0.1:{port}",
            "certificate-authority-data": base64.b64encode(srv.ca_pem.encode()).decode()}}],
        "users": [{"name": "sandbox", "user": {"token": args.token}}],
        "contexts": [{"name": args.name, "context": {"cluster": args.name, "user": "sandbox"}}],
        "current-context": args.name}, indent=1))
    print(f"Kubernetes API for {args.name} on https://127.0.0.1:{port}\nexport KUBECONFIG={kubeconfig}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await srv.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m sandbox.kube", description=__doc__.splitlines()[0])
    p.add_argument("--state", required=True, help="state directory (objects, CA, kubeconfig)")
    p.add_argument("--speed", type=float, default=0.05, help="multiplier for simulated delays (1 = real time)")
    p.add_argument("--token", default="sandbox-token", help="the bearer token to accept")
    p.add_argument("--name", default="demo-kfp-cluster")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("-v", "--verbose", action="store_true", help="print each request")
    try:
        asyncio.run(_main(p.parse_args()))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
