"""What the wizard needs from the core and the backends, behind one small adapter.

The screens never call a backend on their own: they call these functions (blocking ones in thread workers,
``asyncio.to_thread``), and the install goes through ``installer.run.install``. Everything here imports its
dependencies lazily so the first frame comes up fast.

Naming rules, validation and the answers dump are the core's (``installer.validation``); environment detection
is ``installer.environment``; read-only questions are ``backends.queries``.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("mlops_install.wizard")

# ---------------------------------------------------------------------------------------------- answers


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load_answers_file(path: str) -> tuple[dict, list[str]]:
    """A (possibly partial) answers file as a prefill: (nested values, problems). Unreadable/invalid YAML raises
    installer.errors.BadInput."""
    from installer import validation
    partial, _ = validation.load_partial(path)
    return prefill_from(partial)


def nest(values: dict[str, Any]) -> dict[str, Any]:
    """Dotted paths ({"cluster.node_count": 3}) to the nested mapping of an answers file."""
    d: dict[str, Any] = {}
    for path, v in values.items():
        cur = d
        *heads, last = path.split(".")
        for h in heads:
            cur = cur.setdefault(h, {})
        cur[last] = v
    return d


def prefill_from(obj) -> tuple[dict, list[str]]:
    """A prefill as the nested mapping plus the problems of what it gives (invalid fields are left out: asked).

    Takes a dict (an answers mapping) or the core's ``validation.Partial``."""
    if obj is None:
        return {}, []
    if hasattr(obj, "values") and hasattr(obj, "problems") and not isinstance(obj, dict):
        return nest(dict(obj.values)), [str(p) for p in obj.problems]
    from installer import validation
    part = validation.validate_partial(dict(obj))
    return nest(dict(part.values)), [str(p) for p in part.problems]


def answers_from_dict(data: dict):
    """The core's validated ``Answers`` from a complete mapping (raises BadInput listing every problem)."""
    from installer import validation
    return validation.answers_from_dict(data)


def full_problems(answers) -> list[str]:
    from installer import validation
    _, problems = validation.validate_dict(answers.to_dict())
    return [str(p) for p in problems]


def answers_path_for(env_id: str) -> Path:
    from installer.paths import env_answers
    return env_answers(env_id)


def write_answers(answers, path: Path) -> Path:
    """Write the answers used (0600, no secrets: the model holds none) with the core's dump_answers."""
    from installer import validation
    return validation.dump_answers(answers, Path(path), why="written by the wizard")


# ---------------------------------------------------------------------------------------------- KFP manifests


def fill_manifests(data: dict, explicit: str | None = None) -> str:
    """Put the KFP manifests' source into ``data["kfp"]["manifests"]`` when nothing gave one (the core's lookup,
    ``installer.manifests.local_manifests``, the same as ``demo``'s) and return where it comes from, for Review:
    "--manifests", "answers file", "MLOPS_INSTALL_KFP_MANIFESTS", "beside the checkout", ... or "" (upstream).

    ``explicit`` (``--manifests DIR``) wins over the answers file. Raises BadInput for a given folder that is not one."""
    from installer.manifests import UPSTREAM, local_manifests

    kfp = dict(data.get("kfp") or {})
    given = kfp.get("manifests")
    if given and not explicit:
        data["kfp"] = kfp
        return "answers file" if given != UPSTREAM else ""
    found, why = local_manifests(explicit)
    kfp["manifests"] = str(found) if found is not None else UPSTREAM
    data["kfp"] = kfp
    return why


def manifests_text(manifests: str | None, source: str = "") -> str:
    """The manifests' source in a few words (``installer.manifests.describe``: a folder beside the checkout relative
    to it, ``../shared/...``, the same wherever the checkout is)."""
    from installer.manifests import describe

    return describe(manifests, source)


def sandboxed() -> bool:
    """The wizard runs against the local sandbox (no network beyond it)."""
    return bool(os.environ.get("MLOPS_SANDBOX_URL"))


def manifests_problem(value: str) -> str | None:
    """The core's rule for ``kfp.manifests`` ('upstream' or an existing folder): None when it fits."""
    from installer import validation
    return _first(validation.check_manifests(value.strip()))


# ---------------------------------------------------------------------------------------------- cluster size


def default_nodes_per_zone(zone: str | None) -> int:
    """The core's default node count per zone (``installer.sizing``): a regional cluster 1, a zonal one 3."""
    from installer.sizing import default_nodes_per_zone as d
    return d(zone)


def cluster_size_text(region: str, zone: str | None, node_count: int | None, machine_type: str) -> str:
    """What the nodes take in all zones, in the core's words (``installer.sizing.cluster_size(...).describe()``)."""
    from installer.answers import Answers
    from installer.sizing import cluster_size
    a = Answers(project="p-size", region=region or "us-central1", zone=zone or None, prefix="size")
    a.cluster.machine_type = machine_type
    a.cluster.node_count = node_count or default_nodes_per_zone(zone)
    return cluster_size(a).describe()


def cluster_field_problem(field: str, value) -> str | None:
    """The core's rule for ``cluster.node_count`` / ``cluster.machine_type`` (``installer.validation``)."""
    from installer import validation
    part = validation.validate_partial({"cluster": {field: value}})
    probs = [p for p in part.problems if getattr(p, "path", "") == f"cluster.{field}"] or list(part.problems)
    return str(probs[0]) if probs else None


# ---------------------------------------------------------------------------------------------- naming rules

def _first(problems: list[tuple[str, str]]) -> str | None:
    if not problems:
        return None
    msg, hint = problems[0]
    return f"{msg} ({hint})" if hint else msg


def project_id_problem(value: str) -> str | None:
    from installer import validation
    if not value:
        return "required"
    return _first(validation.check_project(value))


def looks_like_project_id(value: str) -> bool:
    from installer import validation
    return bool(validation.PROJECT_RE.match(value or ""))


def prefix_problem(value: str) -> str | None:
    from installer import validation
    if not value:
        return "required"
    return _first(validation.check_prefix(value))


@dataclass
class NameCheck:
    what: str
    name: str
    rule: str
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def derived_name_checks(prefix: str, project: str = "") -> list[NameCheck]:
    """Every derived name of ``prefix`` with its rule and whether it passes (live under the prefix field).

    The rules are the core's (``installer.validation.check_*``), the same the answers file is checked with."""
    from installer import validation as V

    p = prefix or ""
    rows = [NameCheck("prefix", p, "a-z 0-9 -, ≤23", _short_problem(V.check_prefix(p), p) if p else "required")]
    for what, name, rule, check, allowed in (
            ("network", f"{p}-network", "≤63, a-z 0-9 -", V.check_network, "-"),
            ("subnet", f"{p}-subnet", "≤63, a-z 0-9 -", V.check_network, "-"),
            ("GKE service acct", f"{p}-gke-sa", "SA id 6–30", V.check_sa_id, "-"),
            ("KFP service acct", f"{p}-kfp-sa", "SA id 6–30", V.check_sa_id, "-"),
            ("GKE cluster", f"{p}-kfp-cluster", "≤40", V.check_cluster, "-"),
            ("Cloud SQL", f"{p}-ml-metadata", "SQL id ≤98", V.check_sql_instance, "-"),
            ("bucket", f"{p}-artifact-store", "3–63, no goog", V.check_bucket, "-_.")):
        rows.append(NameCheck(what, name, rule, _short_problem(check(name), name, allowed) if p else "prefix missing"))
    return rows


def _short_problem(problems: list[tuple[str, str]], name: str = "", allowed: str = "-") -> str | None:
    """The core's messages without the repeated name: "has 31 characters; ..." rather than "... 'x-y' has ...";
    a bare "is not valid" says what in the name is not valid (uppercase, '_', the first or last character)."""
    if not problems:
        return None
    out = []
    for msg, _hint in problems:
        m = re.search(r"'[^']*' (.*)$", msg)
        msg = m.group(1) if m else msg
        if msg.strip() == "is not valid" and name:
            msg = "not valid: " + (why_invalid(name, allowed) or f"only a-z, 0-9 and {' '.join(allowed)}")
        if msg not in out:
            out.append(msg)
    return "; ".join(out)


def why_invalid(name: str, allowed: str = "-") -> str:
    """What in a name breaks "lowercase letters, digits and hyphens; start with a letter; end with a letter or
    digit", in a few words."""
    why = []
    if any(c.isupper() for c in name):
        why.append("uppercase letters")
    bad = sorted({c for c in name if not (c.isalnum() and c.isascii()) and c not in allowed})
    if bad:
        why.append(" ".join(repr(c) for c in bad[:4]) + " not allowed")
    if name and not (name[0].isalpha() and name[0].isascii()):
        why.append("must start with a letter")
    if name.endswith("-") and "_" not in allowed:
        why.append("must not end with '-'")
    return ", ".join(why)


# ---------------------------------------------------------------------------------------------- environment


@dataclass
class EnvInfo:
    runtime: str  # "cloud-shell" | "tfx-dev" | "other"
    tools: dict[str, str | None]  # tool -> path or None
    sandbox: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def cloud_shell(self) -> bool:
        return self.runtime == "cloud-shell"


TOOLS = ("gcloud", "kubectl", "gke-gcloud-auth-plugin")
RUNTIME_WORDS = {"cloud-shell": "in Google Cloud Shell", "tfx-dev": "in the tfx-dev image",
                 "other": "on a workstation or container (not Cloud Shell, not tfx-dev)"}


def runtime_words(kind: str) -> str:
    """Where the installer runs, in words ("in Google Cloud Shell"), never the bare detector value ("other")."""
    return RUNTIME_WORDS.get(kind, f"in {kind}")


def detect_environment() -> EnvInfo:
    """Blocking (runs each tool's --version): call in a thread worker."""
    from installer import environment as E

    rt = E.detect_runtime()
    tools: dict[str, str | None] = {}
    try:
        for t in E.check_tools(TOOLS, timeout=5.0):
            tools[t.name] = (t.version or "found") if t.found else None
    except Exception:
        log.exception("tool check failed")
        tools = {t: ("found" if shutil.which(t) else None) for t in TOOLS}
    return EnvInfo(rt.kind, tools, sandboxed(), list(rt.notes))


# ---------------------------------------------------------------------------------------------- queries


@dataclass
class AuthInfo:
    account: str | None
    source: str | None  # adc-service-account | adc-user | gcloud | cloud-shell | None
    project: str | None = None
    adc: bool = False
    error: str = ""
    gcloud_account: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.account) and self.adc


def whoami() -> AuthInfo:
    """Blocking."""
    from backends import queries
    from installer.environment import gcloud_account

    gaccount = gcloud_account(timeout=8.0)
    try:
        d = queries.whoami()
    except Exception as exc:
        return AuthInfo(None, None, error=_short(exc), gcloud_account=gaccount)
    d = d or {}
    src = d.get("source")
    adc = bool(src and str(src).startswith("adc")) or bool(d.get("adc"))
    if not adc and d.get("account"):
        adc = _adc_present()
    if d.get("error"):
        return AuthInfo(None, None, d.get("project"), False, error=str(d["error"]), gcloud_account=gaccount)
    return AuthInfo(d.get("account"), src, d.get("project"), adc, gcloud_account=gaccount)


def _adc_present() -> bool:
    try:
        import google.auth
        google.auth.default()
        return True
    except Exception:
        return False


def _short(exc: BaseException) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return msg.splitlines()[0][:300]


def list_projects() -> list[dict]:
    from backends import queries
    return list(queries.list_projects())


def list_regions(project: str) -> list[str]:
    from backends import queries
    return sorted(queries.list_regions(project))


def list_zones(project: str, region: str) -> list[str]:
    from backends import queries
    return sorted(queries.list_zones(project, region))


def api_states(project: str, apis: list[str]) -> dict[str, bool]:
    from backends import queries
    return dict(queries.api_states(project, apis))


def project_problem(project: str) -> tuple[str | None, dict[str, bool] | None]:
    """Blocking (a thread): whether the project can be used, before anything is recorded for it: (why not, or
    None; the required APIs' states when read). It cannot when Google says it does not exist or the account has no
    permission on it; any other error (e.g. a network failure) does not stop the wizard here."""
    from installer.answers import REQUIRED_APIS
    try:
        return None, api_states(project, list(REQUIRED_APIS))
    except Exception as exc:  # noqa: BLE001 - classified below
        msg = _short(exc)
        cls = getattr(getattr(exc, "error_class", None), "value", "")
        if cls in ("permission-denied", "not-found") or "permission" in msg.lower() or "not found" in msg.lower():
            return msg, None
        return None, None


def key_creation_allowed(project: str) -> bool | None:
    from backends import queries
    return queries.key_creation_allowed(project)


def enable_apis(project: str, apis: list[str], on_progress: Callable[[str], None] | None = None) -> dict:
    """Blocking: enable the missing ones of ``apis`` now (the backend's own APIs step), for plain mode."""
    from backends import queries
    return queries.enable_apis(project, apis, on_progress)


async def enable_apis_async(project: str, apis: list[str],
                            on_progress: Callable[[str], None] | None = None) -> dict:
    """The same, awaited (the wizard's APIs screen)."""
    from backends import queries
    return await queries.enable_apis_async(project, apis, on_progress)


@dataclass
class KeyPolicyInfo:
    allowed: bool | None  # None: not known
    note: str = ""  # why not known, per constraint: "... (orgpolicy.googleapis.com is not enabled)", "(no permission...)"


def key_policy(project: str) -> KeyPolicyInfo:
    """Blocking (a thread): whether organisation policy lets the project create service-account keys, and when it
    is not known, why (``backends.preflight.key_policy``: the API not enabled, or no permission to read it)."""
    import asyncio

    from backends.preflight import key_policy as kp
    pol = asyncio.run(kp(project))
    return KeyPolicyInfo(None if pol.enforced is None else not pol.enforced, pol.note)


def login_command(env: EnvInfo | None = None) -> list[str]:
    cmd = ["gcloud", "auth", "login", "--update-adc"]
    if not os.environ.get("DISPLAY") and sys.platform != "darwin":
        cmd.append("--no-launch-browser")
    return cmd


# ---------------------------------------------------------------------------------------------- plan, journal


def build_plan(answers):
    from installer.plan import build_plan as bp
    return bp(answers)


def time_scale() -> float:
    from installer.run import time_scale as ts
    return ts()


@dataclass
class UnfinishedRun:
    env_id: str
    done: int
    total: int
    failed: list[str]
    answers: dict | None  # the answers written for that environment, when found
    updated: float


def find_unfinished(env_id: str | None = None) -> UnfinishedRun | None:
    """An environment whose journal exists and did not finish ``done`` (the given one, else the newest)."""
    from installer.journal import list_envs

    journals = sorted((j for j in list_envs() if env_id is None or j.env_id == env_id),
                      key=lambda j: j.path.stat().st_mtime, reverse=True)
    for j in journals:
        if j.data.get("status") in ("done", "destroyed"):  # finished, or taken down: nothing to resume
            continue
        steps = j.data.get("steps", {})
        if not steps:
            continue
        done = sum(1 for r in steps.values() if r.get("status") == "done")
        failed = [s for s, r in steps.items() if r.get("status") == "failed"]
        return UnfinishedRun(j.env_id, done, len(steps), failed, _recorded_answers(j),
                             float(j.data.get("updated") or 0))
    return None


def _recorded_answers(journal) -> dict | None:
    """The answers of an environment's last run: the journal records them (no secret in them), else the
    answers.yaml the wizard wrote beside it."""
    folder = journal.path.parent
    ans = journal.data.get("answers")
    if not ans and (folder / "answers.yaml").exists():
        try:
            ans, _ = load_answers_file(str(folder / "answers.yaml"))
        except Exception:
            ans = None
    return ans


@dataclass
class RecordedEnv:
    env_id: str
    status: str  # the journal's: "done", "failed", "interrupted", ...
    answers: dict | None
    updated: float


def recorded_environments() -> list[RecordedEnv]:
    """The environments whose journal is under this machine's state dir and not taken down, newest first (what the
    welcome screen offers to destroy; ``mlops-install status`` lists the same journals)."""
    from installer.journal import list_envs

    found = []
    for j in list_envs():
        if j.data.get("status") == "destroyed" or not j.data.get("steps"):
            continue
        found.append(RecordedEnv(j.env_id, str(j.data.get("status") or "unknown"), _recorded_answers(j),
                                 float(j.data.get("updated") or 0)))
    return sorted(found, key=lambda e: e.updated, reverse=True)


def destroy_preview(answers):
    """Blocking (a thread): what destroying ``answers``' environment does, last step first, as ``mlops-install
    destroy`` lists it (``installer.destroy.destroy_plan``), and the plan of the steps it runs (``teardown_plan``,
    the same the core's destroy builds: the progress panes show exactly those). BadInput when nothing is recorded."""
    from installer.destroy import destroy_plan, recorded_journal, teardown_plan

    journal = recorded_journal(answers)
    plan = build_plan(answers)
    rows = destroy_plan(journal, plan)
    return rows, teardown_plan(plan, [sid for sid, *_ in rows])


async def destroy(answers, emit: Callable[[Any], None], *, runtime: dict | None = None):
    """Run (or go on with) a destroy through the core's ``installer.destroy.destroy``; return its RunFinished
    (what it raises before the engine starts comes back as events, as for ``install``)."""
    from installer.destroy import destroy as core_destroy

    return await _reported(core_destroy(answers, emit, runtime=runtime), emit, "destroy")


# ---------------------------------------------------------------------------------------------- install


def warm_up() -> None:
    """Blocking (a thread): the backends' imports and the Google services' discovery documents, before the install
    needs them (``installer.run.warm_up_backends``)."""
    from installer.run import warm_up_backends
    warm_up_backends()


async def install(answers, emit: Callable[[Any], None], *, assume_yes: bool = True, runtime: dict | None = None):
    """Run (or resume) the install through the core's ``installer.run.install``; return its RunFinished."""
    from installer.run import install as core_install

    return await _reported(core_install(answers, emit, assume_yes=assume_yes, runtime=runtime), emit, "install")


async def _reported(run, emit: Callable[[Any], None], what: str):
    """Await the core's install or destroy. What it raises before the engine starts (preflight failed, nothing
    recorded, the journal locked by another installer) or when the engine's checkpoint stops it (another installer
    took the environment's remote lock once the bucket existed) comes back as a StepFailed event (step ``what``, or
    "preflight") plus a RunFinished carrying the matching exit code."""
    from installer.errors import InstallerError, PreflightFailed, exit_code
    from installer.events import RunFinished, StepFailed

    try:
        return await run
    except InstallerError as exc:
        step = "preflight" if isinstance(exc, PreflightFailed) else what
        emit(StepFailed(step, exc.error_class.value, exc.message, exc.remedy))
        fin = RunFinished("failed", exit_code(exc), [step])
    emit(fin)
    return fin


async def preflight(answers, runtime: dict | None = None):
    """The core's read-only preflight (``backends.preflight.run_preflight``), for Review before Install: its report
    (``.ok``, ``.checks`` with ``status`` ok | warn | fail, ``detail``, ``fix``)."""
    from backends.preflight import run_preflight
    return await run_preflight(answers, runtime)


CONSOLE = "https://console.cloud.google.com"
# what the wizard can change about a failure of each class: (the keys, from the failure screen, what they change)
WIZARD_FIX = {
    "quota": ("b → l", "fewer nodes or a smaller machine, or another region or zone"),
    "name-taken": ("b → l", "another name prefix"),
    "conflict": ("b → l", "another name prefix (the resource that is there is not ours)"),
    "org-policy": ("b → c", "Workload Identity (no key)"),
    "api-disabled": ("b → a", "enable the APIs"),
    "auth": ("q", "quit, sign in (gcloud auth login --update-adc), run mlops-install again"),
}
CONSOLE_PAGE = {
    "permission-denied": ("IAM", "/iam-admin/iam"),
    "quota": ("quotas", "/iam-admin/quotas"),
    "api-disabled": ("APIs", "/apis/dashboard"),
    "org-policy": ("organisation policies", "/iam-admin/orgpolicies"),
}


@dataclass
class Fix:
    remedy: str  # the backend's fix, its placeholders filled in with the real values
    keys: str = ""  # the wizard keys that change the answer ("b → l")
    change: str = ""  # what they change
    link: str = ""  # a console page with the project filled in


def actionable(error_class: str, message: str, remedy: str, *, project: str = "", account: str | None = None,
               zone: str | None = None) -> Fix:
    """A failure's fix where the user is: real values for the placeholders, the wizard key, a console link; advice
    that does not apply to the answers is left out (a zonal cluster is not told to use a zone)."""
    text = remedy or ""
    if project:
        text = text.replace("<project>", project).replace("PROJECT_ID", project)
    if account:
        member = f"serviceAccount:{account}" if account.endswith(".gserviceaccount.com") else f"user:{account}"
        text = text.replace("user:<your-email>", member).replace("<member>", member).replace("<you>", member)
    if zone:  # already zonal: drop the sentence that advises a zone
        text = " ".join(s for s in re.split(r"(?<=[.;])\s+", text) if not re.search(r"\b(use|pick|choose) a zone\b",
                                                                                 s, re.I)).strip()
    keys, change = WIZARD_FIX.get(error_class, ("", ""))
    if error_class == "bad-input" and "kfp.manifests" in f"{message} {remedy}":
        keys, change = "b → m", "another folder of KFP manifests"
    if "github.com" in message and "manifests" in message:
        keys, change = "b → m", "a local folder of rendered KFP manifests"
    link = ""
    if project and error_class in CONSOLE_PAGE:
        link = f"{CONSOLE}{CONSOLE_PAGE[error_class][1]}?project={project}"
    return Fix(text, keys, change, link)


def default_log_path() -> Path:
    from installer.logs import default_log_path as dlp
    return dlp()


def repeat_command(answers_path: Path | str, runtime: dict | None = None, credentials: str | None = None) -> str:
    from installer import PROG
    from installer.flags import repeat_flags
    return f"{PROG} --non-interactive --yes --answers {answers_path}{repeat_flags(runtime, credentials)}"
