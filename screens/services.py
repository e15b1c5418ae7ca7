"""What the wizard needs from the core and the backends, behind one small facade.

The screens never call a backend on their own: they call ``services.X`` (blocking ones in thread workers,
``asyncio.to_thread``), and the install goes through ``installer.run.install``. The functions live by job in the
modules imported below, and every one of them imports its dependencies lazily so the first frame comes up fast:
- ``screens.answer_rules``: the answers (prefill, validation, dump), the KFP manifests' source, the cluster's size
  and the naming rules;
- ``screens.lookups``: the environment, sign-in, and the read-only questions (``backends.queries``), enabling APIs;
- ``screens.core_runs``: the plan, the journal's environments, install, destroy and preflight;
- ``screens.fixes``: a failure's fix where the user is (wizard keys, console links).

Naming rules, validation and the answers dump are the core's (``installer.validation``); environment detection
is ``installer.environment``; read-only questions are ``backends.queries``.
"""
from __future__ import annotations

from .answer_rules import (
    NameCheck, answers_from_dict, answers_path_for, cluster_field_problem, cluster_size_text, deep_merge,
    default_nodes_per_zone, derived_name_checks, fill_manifests, full_problems, load_answers_file,
    looks_like_project_id, manifests_problem, manifests_text, nest, prefill_from, prefix_problem, project_id_problem,
    why_invalid, write_answers)
from .core_runs import (
    RecordedEnv, UnfinishedRun, build_plan, default_log_path, destroy, destroy_preview, find_unfinished, install,
    preflight, recorded_environments, repeat_command, time_scale, warm_up)
from .fixes import Fix, actionable
from .lookups import (
    AuthInfo, EnvInfo, KeyPolicyInfo, _short, api_states, detect_environment, enable_apis, enable_apis_async,
    key_creation_allowed, key_policy, list_projects, list_regions, list_zones, log, login_command, project_problem,
    runtime_words, sandboxed, whoami)

__all__ = [
    "NameCheck", "answers_from_dict", "answers_path_for", "cluster_field_problem", "cluster_size_text", "deep_merge",
    "default_nodes_per_zone", "derived_name_checks", "fill_manifests", "full_problems", "load_answers_file",
    "looks_like_project_id", "manifests_problem", "manifests_text", "nest", "prefill_from", "prefix_problem",
    "project_id_problem", "why_invalid", "write_answers",
    "RecordedEnv", "UnfinishedRun", "build_plan", "default_log_path", "destroy", "destroy_preview",
    "find_unfinished", "install", "preflight", "recorded_environments", "repeat_command", "time_scale", "warm_up",
    "Fix", "actionable",
    "AuthInfo", "EnvInfo", "KeyPolicyInfo", "_short", "api_states", "detect_environment", "enable_apis",
    "enable_apis_async", "key_creation_allowed", "key_policy", "list_projects", "list_regions", "list_zones", "log",
    "login_command", "project_problem", "runtime_words", "sandboxed", "whoami",
]
