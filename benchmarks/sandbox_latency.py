"""Sandbox latencies: measured against the profile (gcp-api-behaviour.md §13) times --speed.

Short synchronous calls run at --speed 1; operations that take tens of seconds at Google run on a second sandbox at
--speed 0.1 (so the figure printed is still comparable: profile × speed). Real clients, real HTTP.
Run: .venv/bin/python benchmarks/sandbox_latency.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox import catalog  # noqa: E402
from sandbox.launcher import start_background  # noqa: E402

P = catalog.PROJECT_ID
ROWS: list[tuple[str, float, float, float]] = []


def clients(env: dict):
    os.environ.update(env)
    import google.auth
    from googleapiclient.discovery import build

    creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])

    def api(name, ver, var):
        return build(name, ver, credentials=creds, static_discovery=True,
                     client_options={"api_endpoint": env[var]})

    return api


def timed(fn, n: int = 3) -> float:
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def record(name: str, key: str, speed: float, measured: float) -> None:
    ROWS.append((name, speed, catalog.PROFILE[key] * speed, measured))


def main() -> int:
    from google.cloud import storage

    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        t = time.perf_counter()
        h1 = start_background(Path(d1) / "s", 1.0)
        startup = time.perf_counter() - t
        try:
            api = clients(h1.env)
            from sandbox.client import ControlClient

            ControlClient(h1.url).scenario("api_enabled", all=True)
            iam = api("iam", "v1", "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM")
            crm = api("cloudresourcemanager", "v1", "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER")
            iam.projects().serviceAccounts().list(name=f"projects/{P}").execute()  # warm the token
            gcs = storage.Client(project=P)
            record("storage bucket insert", "storage.bucket_insert", 1.0,
                   timed(lambda i: gcs.create_bucket(f"bench-bucket-{i}")))
            record("iam SA create", "iam.sa_create", 1.0, timed(lambda i: iam.projects().serviceAccounts().create(
                name=f"projects/{P}", body={"accountId": f"bench-sa-{i}"}).execute()))
            sa = f"projects/{P}/serviceAccounts/{catalog.CALLER_EMAIL}"
            record("iam key create", "iam.key_create", 1.0,
                   timed(lambda i: iam.projects().serviceAccounts().keys().create(name=sa, body={}).execute()))
            record("crm getIamPolicy", "crm.iam_policy", 1.0,
                   timed(lambda i: crm.projects().getIamPolicy(resource=P, body={}).execute()))
        finally:
            h1.stop()
        speed = 0.1
        h2 = start_background(Path(d2) / "s", speed)
        try:
            api = clients(h2.env)
            from sandbox.client import ControlClient

            ControlClient(h2.url).scenario("api_enabled", services=["compute.googleapis.com"])
            su = api("serviceusage", "v1", "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE")
            comp = api("compute", "v1", "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE")

            def until_done(get, op):
                while True:
                    op = get(op)
                    if op.get("done") or op.get("status") == "DONE":
                        return op
                    time.sleep(0.05)

            t = time.perf_counter()
            op = su.services().enable(name=f"projects/{P}/services/iam.googleapis.com", body={}).execute()
            until_done(lambda o: su.operations().get(name=o["name"]).execute(), op)
            record("serviceusage enable -> op done", "serviceusage.enable", speed, time.perf_counter() - t)
            t0 = time.perf_counter()
            iam = api("iam", "v1", "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM")
            while True:
                try:
                    iam.projects().serviceAccounts().list(name=f"projects/{P}").execute()
                    break
                except Exception:  # noqa: BLE001  SERVICE_DISABLED until propagated
                    time.sleep(0.05)
            record("… then usable (SERVICE_DISABLED until)", "serviceusage.usable", speed, time.perf_counter() - t0)
            t = time.perf_counter()
            op = comp.networks().insert(project=P, body={"name": "bench-net", "autoCreateSubnetworks": False}).execute()
            until_done(lambda o: comp.globalOperations().get(project=P, operation=o["name"]).execute(), op)
            record("compute network insert op (polled)", "compute.network_insert", speed, time.perf_counter() - t)
            t = time.perf_counter()
            op = comp.subnetworks().insert(project=P, region="us-central1", body={
                "name": "bench-subnet", "network": f"projects/{P}/global/networks/bench-net",
                "ipCidrRange": "10.0.0.0/20"}).execute()
            comp.regionOperations().wait(project=P, region="us-central1", operation=op["name"]).execute()
            record("compute subnetwork insert op (wait)", "compute.subnetwork_insert", speed, time.perf_counter() - t)
        finally:
            h2.stop()
    print(f"sandbox start-up (process up and answering): {startup:.2f} s")
    print(f"{'operation':44} {'speed':>6} {'profile×speed':>14} {'measured':>9} {'overhead':>9}")
    for name, sp, want, got in ROWS:
        print(f"{name:44} {sp:>6} {want:>13.2f}s {got:>8.2f}s {got - want:>+8.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
