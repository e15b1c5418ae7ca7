"""How long the sandbox stops answering when a GKE cluster becomes RUNNING (its Kubernetes API starting).

A sandbox process at --speed (default 0.01) gets N zonal clusters created at once (profile: 240 s x speed to
RUNNING). While they provision and come up, two pollers in this process send requests back to back:
  - a Google API read (`GET /v1/projects/P/services/storage.googleapis.com`), which goes through the sandbox's
    timeline (`advance`, the step that starts the Kubernetes APIs), and
  - `GET /_sandbox/health`, which only needs the event loop.
Each request's latency is recorded with its send time. Printed per poller: median and worst latency in a quiet
0.5 s before the creates, the worst latency within 0.5 s of the creates, and the worst inside [due - 0.1 s, last RUNNING + 0.5 s]; and how late
the last cluster was seen RUNNING after its due time (the poll itself adds ~10-20 ms).

Run: .venv/bin/python benchmarks/sandbox_cluster_stall.py [--speed 0.01] [--clusters 2] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from sandbox import catalog  # noqa: E402
from sandbox.launcher import start_background  # noqa: E402

P = catalog.PROJECT_ID
ZONE = "us-central1-a"


def poll(url: str, headers: dict, out: list, stop: threading.Event) -> None:
    s = requests.Session()
    while not stop.is_set():
        t = time.time()
        r = s.get(url, headers=headers, timeout=30)
        out.append((t, time.time() - t, r.status_code))


def one_round(speed: float, n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        h = start_background(Path(tmp) / "sbx", speed)
        try:
            return _measure(h, speed, n, Path(tmp))
        finally:
            h.stop()


def _measure(h, speed: float, n: int, tmp: Path) -> dict:
    from sandbox.client import ControlClient

    ctl = ControlClient(h.url)
    ctl.scenario("api_enabled", all=True)
    ctl.scenario("profile", **{"compute.network_insert": 1, "compute.subnetwork_insert": 1,
                               "compute.subnet_not_ready": 0})
    token = (tmp / "sbx" / "gcloud-access-token").read_text().strip()
    hd = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    base = h.url
    s = requests.Session()
    op = s.post(f"{base}/compute/v1/projects/{P}/global/networks", headers=hd,
                json={"name": "stall-net", "autoCreateSubnetworks": False}).json()
    time.sleep(0.2)
    op = s.post(f"{base}/compute/v1/projects/{P}/regions/us-central1/subnetworks", headers=hd,
                json={"name": "stall-subnet", "network": f"projects/{P}/global/networks/stall-net",
                      "ipCidrRange": "10.128.0.0/20"}).json()
    time.sleep(0.2)
    google: list = []
    health: list = []
    stop = threading.Event()
    threads = [threading.Thread(target=poll, args=(f"{base}/v1/projects/{P}/services/storage.googleapis.com", hd,
                                                   google, stop)),
               threading.Thread(target=poll, args=(f"{base}/_sandbox/health", {}, health, stop))]
    for t in threads:
        t.start()
    time.sleep(0.8)
    created = time.time()
    for i in range(n):
        r = s.post(f"{base}/v1/projects/{P}/locations/{ZONE}/clusters", headers=hd, json={"cluster": {
            "name": f"stall-{i}", "network": "stall-net", "subnetwork": "stall-subnet",
            "nodePools": [{"name": "default-pool", "initialNodeCount": 1,
                           "config": {"machineType": "e2-standard-2"}}]}})
        assert r.status_code == 200, r.text
    due = created + catalog.PROFILE["container.create_zonal"] * speed
    running_at: dict[str, float] = {}
    deadline = due + 30
    while len(running_at) < n and time.time() < deadline:
        for i in range(n):
            if f"stall-{i}" in running_at:
                continue
            c = s.get(f"{base}/v1/projects/{P}/locations/{ZONE}/clusters/stall-{i}", headers=hd).json()
            if c.get("status") == "RUNNING":
                running_at[f"stall-{i}"] = time.time()
        time.sleep(0.01)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    last = max(running_at.values()) if running_at else due
    out = {"late_ms": (last - due) * 1000}
    for name, rows in (("google", google), ("health", health)):
        before = [d for (t, d, _) in rows if created - 0.6 <= t and t + d < created - 0.1]
        at_create = [d for (t, d, _) in rows if created <= t + d and t <= created + 0.5]
        window = [d for (t, d, _) in rows if due - 0.1 <= t + d and t <= last + 0.5]
        out[name] = (statistics.median(before) * 1000 if before else float("nan"),
                     max(before) * 1000 if before else float("nan"),
                     max(at_create) * 1000 if at_create else float("nan"),
                     max(window) * 1000 if window else float("nan"), len(rows))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--speed", type=float, default=0.01)
    ap.add_argument("--clusters", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"speed {args.speed}, {args.clusters} zonal clusters at once, {args.rounds} rounds")
    print(f"{'round':>5} {'poller':>7} {'median (ms)':>12} {'worst, quiet 0.5 s':>19} {'worst at create (ms)':>21} "
          f"{'worst at RUNNING (ms)':>22} {'requests':>9} {'last RUNNING - due (ms)':>24}")
    worst = {"google": [], "health": []}
    for i in range(args.rounds):
        res = one_round(args.speed, args.clusters)
        for name in ("google", "health"):
            med, mq, mc, mx, cnt = res[name]
            worst[name].append(mx)
            print(f"{i + 1:>5} {name:>7} {med:>12.1f} {mq:>19.1f} {mc:>21.1f} {mx:>22.1f} {cnt:>9} {res['late_ms']:>24.0f}")
    for name in ("google", "health"):
        print(f"worst {name} latency at RUNNING: median over rounds {statistics.median(worst[name]):.1f} ms, "
              f"max {max(worst[name]):.1f} ms")


if __name__ == "__main__":
    main()
