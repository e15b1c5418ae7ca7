"""The install's runtime flags, owned once for both front-ends (issue 18): ``--export-key PATH``,
``--write-kubeconfig``, ``--force-unlock ID`` and ``--no-verify``.

The command line (``installer.commands``) and the wizard (``screens.app.run_wizard``) parse them with
``RunFlags.from_args``, refuse the same combinations with the same words (``RunFlags.check``), hand the core the same
runtime mapping (``RunFlags.runtime``: never persisted, see HACKING.md "Runtime flags") and, after the run, say what
was written with the same lines (``written_files``: the steps put ``exported_key_path`` and
``kubeconfig_written = (path, context)`` into the runtime).

The one difference is when the credentials are known: the command line has its answers before anything starts and
refuses ``--export-key`` without ``credentials: key``; the wizard asks the credentials later, so it checks the flags
without answers and says after the run that Workload Identity made no key.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadInput

if TYPE_CHECKING:  # installer.events stays out of the wizard's start-up (~5 ms before its first frame)
    from .events import RunFinished


@dataclass(frozen=True)
class RunFlags:
    export_key: str | None = None  # --export-key PATH, as given
    write_kubeconfig: bool = False
    force_unlock: str | None = None  # --force-unlock ID
    no_verify: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunFlags:
        """The flags of a parsed command line (a command without one of them: its default)."""
        return cls(export_key=getattr(args, "export_key", None) or None,
                   write_kubeconfig=bool(getattr(args, "write_kubeconfig", False)),
                   force_unlock=getattr(args, "force_unlock", None) or None,
                   no_verify=bool(getattr(args, "no_verify", False)))

    def apply_to(self, answers: Any) -> None:
        """What the flags say about the answers: ``--no-verify`` is ``verify: false`` (the plan then has no
        kfp-verify step). The wizard, which starts from a prefill, gets it as ``--set verify=false``."""
        if self.no_verify:
            answers.verify = False

    def problems(self, answers: Any = None) -> list[BadInput]:
        """What refuses these flags before anything starts, in the words both front-ends print. ``answers``: the
        answers when they are known (then ``--export-key`` needs ``credentials: key``)."""
        out: list[BadInput] = []
        export = self.export_key
        if not export:
            return out
        if answers is not None and answers.credentials != "key":
            out.append(BadInput(f"--export-key needs credentials: key; these answers use {answers.credentials}, "
                                f"which makes no key", remedy="drop --export-key, or set credentials: key"))
        path = Path(export).expanduser()
        if path.is_dir():
            out.append(BadInput(f"--export-key {export} is a folder", remedy="give the path of the key file to "
                                f"write, e.g. {path / 'kfp-sa-key.json'}"))
        elif path.parent.exists() and not path.parent.is_dir():
            out.append(BadInput(f"--export-key {export}: {path.parent} is not a folder",
                                remedy="give a path inside an existing folder"))
        return out

    def check(self, answers: Any = None) -> None:
        """Raise the first of ``problems(answers)`` (a ``BadInput``: exit 2)."""
        found = self.problems(answers)
        if found:
            raise found[0]

    def runtime(self) -> dict[str, Any]:
        """The mapping the core reads (``ctx.runtime``): only the flags that were given."""
        runtime: dict[str, Any] = {}
        if self.export_key:  # absolute, not resolve(): a link at the name is never followed
            runtime["export_key_path"] = str(Path(self.export_key).expanduser().absolute())
        if self.write_kubeconfig:
            runtime["write_kubeconfig"] = True
        if self.force_unlock:
            runtime["force_unlock"] = self.force_unlock  # installer.remote: the lock whose id it is is taken
        return runtime


def repeat_flags(runtime: dict | None, credentials: str | None = None) -> str:
    """The runtime flags to repeat on the non-interactive command line (it refuses --export-key without keys)."""
    rt = runtime or {}
    flags = ""
    if rt.get("export_key_path") and credentials != "workload-identity":
        flags += f" --export-key {rt['export_key_path']}"
    if rt.get("write_kubeconfig"):
        flags += " --write-kubeconfig"
    return flags


@dataclass
class Written:
    what: str  # "key file written", "key file", "kubeconfig written", "kubeconfig"
    text: str
    ok: bool  # False: asked for and not written

    def line(self) -> str:
        return f"{self.what}: {self.text}"


def written_files(runtime: dict | None, finished: RunFinished | None = None,
                  credentials: str | None = None) -> list[Written]:
    """What the run wrote for the user because of ``--export-key PATH`` / ``--write-kubeconfig`` (the steps put
    ``exported_key_path`` and ``kubeconfig_written = (path, context)`` into the runtime): the command line prints
    each ``line()`` after the run, the wizard shows them on the done screen and prints them after it."""
    rt = runtime or {}
    out: list[Written] = []
    asked = rt.get("export_key_path")
    done = finished is not None and finished.exit_code == 0
    if rt.get("exported_key_path"):
        out.append(Written("key file written", f"{rt['exported_key_path']} (mode 0600; a credential for the KFP "
                                               f"service account: keep it safe, delete it when done)", True))
    elif asked and credentials == "workload-identity":
        out.append(Written("key file", f"not written: Workload Identity makes no key (--export-key {asked} applies "
                                       f"to the service-account key mode)", False))
    elif asked and done and Path(asked).exists():
        out.append(Written("key file", f"{asked} is already there (left as it is)", True))
    elif asked:
        out.append(Written("key file", "not written (the key step did not finish); run the same command again",
                           False))
    kube = rt.get("kubeconfig_written")
    if kube:
        path, context = kube
        out.append(Written("kubeconfig written", f"{path}, context {context} (made current; kubectl needs "
                                                 f"gke-gcloud-auth-plugin)", True))
    elif rt.get("write_kubeconfig"):
        out.append(Written("kubeconfig", "not written (the cluster is not ready yet); run the same command again",
                           False))
    return out
