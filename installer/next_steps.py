"""What to do after an install (issue 16 item 1): one list of rows that the Done screen, the wizard's exit, plain
mode and the command line's end all show, so each says the same with the same real values.

Sources:
- ``gcloud container clusters get-credentials NAME (--zone Z | --region R) --project P`` writes a kubeconfig entry
  for the cluster (https://cloud.google.com/sdk/gcloud/reference/container/clusters/get-credentials).
- The KFP SDK at 2.14 (kubeflow/pipelines tag 2.14.4, ``sdk/python/kfp/client/client.py`` ``_load_config``, lines
  283-284, and ``_is_inverse_proxy_host``, lines 325-326, ``r'\\S+.googleusercontent.com/{0,1}$'``) sends, for an
  inverse-proxy host, the Application Default Credentials' access token (``sdk/python/kfp/client/auth.py``
  ``get_gcp_access_token``, lines 40-58: ``google.auth.default`` with the cloud-platform scope), so
  ``kfp.Client(host=UI address)`` needs nothing else once ``gcloud auth application-default login`` was done.
No third-party imports: the command line imports this at its end.
"""
from __future__ import annotations

import shlex
from typing import Any

from . import PROG


def ui_url_of(outputs: dict[str, Any] | None) -> str | None:
    """The KFP UI address the ``kfp-ui`` step reported (the run's outputs, by step id or flat)."""
    ui = (outputs or {}).get("kfp-ui") or {}
    return ui.get("ui_url") or (outputs or {}).get("ui_url")


def verified_line(out: dict[str, Any]) -> str:
    """The kfp-verify step's outcome in one line (the non-interactive end and the Done screen)."""
    if out.get("state") != "SUCCEEDED":
        return ""
    took = f" in {out['seconds']:.0f}s" if out.get("seconds") is not None else ""
    return f"verified: pipeline run succeeded{took}" + (f": {out['run_url']}" if out.get("run_url") else "")


def get_credentials_command(answers) -> str:
    where = f"--zone {answers.zone}" if answers.zone else f"--region {answers.region}"
    return (f"gcloud container clusters get-credentials {answers.names.cluster} {where} "
            f"--project {answers.project}")


def next_steps(answers, outputs: dict[str, Any] | None, *, answers_path: str | None = None,
               log_path: str | None = None, kubeconfig: tuple[str, str] | None = None,
               destroy: str | None = None) -> list[tuple[str, str]]:
    """(what, text) rows: the UI address, kubectl access, a KFP client line, the destroy command, answers and log.

    ``kubeconfig``: ``(path, context)`` when ``--write-kubeconfig`` wrote it (then no get-credentials is needed).
    ``destroy``: the command that takes this environment down when it is not ``destroy --answers FILE`` (the demo's
    ``demo --destroy``, an install into the sandbox's ``--sandbox``)."""
    url = ui_url_of(outputs)
    rows = [("KFP UI", url or "(the address was not reported; see the log)")]
    if kubeconfig:
        rows.append(("kubectl", f"kubectl --context {kubeconfig[1]} -n kubeflow get pods  (kubeconfig {kubeconfig[0]})"))
    else:
        rows.append(("kubectl", f"{get_credentials_command(answers)} && kubectl -n kubeflow get pods"))
    if url:
        rows.append(("Python", f'import kfp; client = kfp.Client(host="{url}")  '
                               f"# KFP SDK 2.14: your application-default credentials"))
    if destroy or answers_path:
        rows.append(("Destroy", destroy or f"{PROG} destroy --answers {shlex.quote(str(answers_path))}"))
    if answers_path:
        rows.append(("Answers", str(answers_path)))
    if log_path:
        rows.append(("Log", str(log_path)))
    return rows


def next_steps_text(rows: list[tuple[str, str]]) -> str:
    """The rows as plain lines, for a terminal (after the wizard, plain mode, the command line)."""
    w = max((len(what) for what, _ in rows), default=0)
    return "Next steps:\n" + "\n".join(f"  {what + ':':<{w + 1}} {text}" for what, text in rows)


def interrupted_text(answers_path: str | None, log_path: str | None) -> str:
    """What Ctrl+Q / Ctrl+C during an install leaves on the terminal: Google keeps going, how to resume."""
    resume = (f"{PROG} --answers {shlex.quote(str(answers_path))}  (it offers to resume)" if answers_path
              else f"{PROG}  (it offers to resume)")
    lines = ["The install was stopped. What Google had started (a cluster, a database) goes on",
             "running there; the next run picks it up, and nothing is made twice.",
             f"  Resume: {resume}"]
    if log_path:
        lines.append(f"  Log:    {log_path}")
    return "\n".join(lines)
