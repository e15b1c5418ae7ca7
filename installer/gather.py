"""``mlops-install gather``: a diagnostics bundle for a report (issue 16 item 2), as ``openshift-install gather``.

A ``.tar.gz`` of what tells what happened to one environment: its journal, the answers, the plan, the preflight
(read-only checks, run now), the newest debug logs, and when the cluster answers, the ``kubeflow`` namespace's pods,
events and Deployment conditions, plus for every pod that is not Ready its object (as ``kubectl describe`` reads it)
and the last 200 lines of each of its containers' logs. Secrets are never read (no Secret objects, no key files).
Every file goes through the log redaction (``installer.logs.redact``: the registered secrets and the known secret
shapes) and is then scanned again; a file that still looks secret is left out and named in ``MANIFEST.txt``. The
bundle is written 0600, never through a link (``installer.files.create_new``).

Reads only; what cannot be read (no cluster yet, no permission) is said in ``MANIFEST.txt`` rather than failing.
"""
from __future__ import annotations

import asyncio
import io
import json
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .answers import Answers
from .journal import Journal
from .paths import logs_dir
from .logs import redact

NAMESPACE = "kubeflow"
LOG_FILES = 5  # the newest debug logs
POD_LOG_LINES = 200


@dataclass
class Bundle:
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what could not be read, what was left out

    def add(self, name: str, text: str) -> None:
        clean = redact(text)
        if redact.looks_secret(clean):  # a shape the masks did not cover: the file stays out of the bundle
            self.notes.append(f"{name}: left out (it still looked like it held a secret after redaction)")
            return
        self.files[name] = clean


def _plan_text(answers: Answers) -> str:
    from .plan import build_plan

    plan = build_plan(answers)
    lines = [f"{s.id}\t{s.title}\t{s.resource}\tafter: {', '.join(s.deps) or '-'}" for s in plan.topological()]
    return "\n".join(lines) + "\n"


def _preflight_text(answers: Answers, timeout: float) -> str:
    from backends.preflight import run_preflight

    report = asyncio.run(asyncio.wait_for(run_preflight(answers), timeout))
    return json.dumps([c.to_event() for c in report.checks], indent=2, default=str) + "\n"


def _cluster_files(answers: Answers, bundle: Bundle, journal: Journal) -> None:
    """The kubeflow namespace as the cluster reports it (through the same client the install uses)."""
    from backends.infra.gke import ClusterOutputs
    from backends.k8s.client import KubeClient
    from backends.k8s.cluster import cluster_info
    from backends.k8s.diagnose import pod_state

    out = ClusterOutputs.of((journal.step("cluster") or {}).get("outputs"))
    name = out.cluster or answers.names.cluster
    location = out.location or answers.location
    info = asyncio.run(cluster_info(answers.project, location, name))
    client = KubeClient(info.endpoint, info.ca_pem, cluster=info.name, retries=1)
    try:
        pods = client.list("v1", "Pod", NAMESPACE)
        rows = []
        for pod in pods:
            reason, message, _ = pod_state(pod)
            rows.append(f"{pod['metadata']['name']}\t{(pod.get('status') or {}).get('phase', '')}\t"
                        f"{'Ready' if not reason else reason}\t{message}")
        bundle.add("cluster/pods.txt", "\n".join(rows) + "\n")
        events = client.list("v1", "Event", NAMESPACE)
        bundle.add("cluster/events.txt", "\n".join(
            f"{e.get('lastTimestamp') or e.get('eventTime') or ''}\t{e.get('type', '')}\t{e.get('reason', '')}\t"
            f"{(e.get('involvedObject') or {}).get('kind', '')}/{(e.get('involvedObject') or {}).get('name', '')}\t"
            f"{e.get('message', '')}" for e in events) + "\n")
        deps = client.list("apps/v1", "Deployment", NAMESPACE)
        bundle.add("cluster/deployments.txt", "\n".join(
            f"{d['metadata']['name']}\t" + "; ".join(
                f"{c.get('type')}={c.get('status')} ({c.get('reason', '')}: {c.get('message', '')})"
                for c in (d.get("status") or {}).get("conditions") or []) for d in deps) + "\n")
        for pod in pods:
            reason, _, _ = pod_state(pod)
            if not reason:
                continue
            pname = pod["metadata"]["name"]
            bundle.add(f"cluster/describe/{pname}.json", json.dumps(pod, indent=2, default=str) + "\n")
            for c in (pod.get("spec") or {}).get("containers") or []:
                try:
                    text = client.logs(NAMESPACE, pname, c["name"], tail=POD_LOG_LINES)
                except Exception as exc:  # noqa: BLE001 - a container that never started has no log
                    bundle.notes.append(f"cluster/logs/{pname}/{c['name']}.log: not read ({exc})")
                    continue
                bundle.add(f"cluster/logs/{pname}/{c['name']}.log", text or "")
    finally:
        client.close()


def gather(answers: Answers, out: Path | None = None, *, preflight_timeout: float = 60.0) -> tuple[Path, Bundle]:
    """Collect, redact, scan and write the bundle; returns its path and what it holds (files, notes)."""
    from .files import create_new

    bundle = Bundle()
    journal = Journal(answers.env_id)
    if journal.exists:
        bundle.add("journal.json", journal.path.read_text())
    else:
        bundle.notes.append(f"journal.json: no install of {answers.env_id} is recorded here ({journal.path})")
    import yaml
    bundle.add("answers.yaml", yaml.safe_dump(answers.to_dict(), sort_keys=False))
    bundle.add("plan.txt", _plan_text(answers))
    for name, part in (("preflight.json", lambda: _preflight_text(answers, preflight_timeout)),
                       ("cluster", lambda: _cluster_files(answers, bundle, journal))):
        try:
            text = part()
        except Exception as exc:  # noqa: BLE001 - a bundle says what it could not read
            bundle.notes.append(f"{name}: not read ({type(exc).__name__}: {getattr(exc, 'message', None) or exc})")
            continue
        if isinstance(text, str):
            bundle.add(name, text)
    logs = sorted(logs_dir().glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in logs[:LOG_FILES]:
        try:
            bundle.add(f"logs/{p.name}", p.read_text(errors="replace"))
        except OSError as exc:
            bundle.notes.append(f"logs/{p.name}: not read ({exc})")
    manifest = [f"mlops-install gather of {answers.env_id}, {time.strftime('%Y-%m-%d %H:%M:%S %z')}", "",
                "files:", *(f"  {n}" for n in sorted(bundle.files)), "", "notes:",
                *(f"  {n}" for n in bundle.notes or ["(none)"])]
    bundle.files["MANIFEST.txt"] = redact("\n".join(manifest) + "\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in sorted(bundle.files.items()):
            data = text.encode()
            ti = tarfile.TarInfo(f"gather/{name}")
            ti.size, ti.mtime, ti.mode = len(data), int(time.time()), 0o600
            tar.addfile(ti, io.BytesIO(data))
    out = out or Path(f"mlops-install-gather-{answers.env_id}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz")
    return create_new(out, buf.getvalue()), bundle
