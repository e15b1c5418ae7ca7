"""The answers as the wizard builds them (split from ``screens/services.py``, the wizard's facade, which re-exports
them): a prefill from an answers file or the input chain, the core's validation and dump, where the KFP manifests come
from, the cluster's size, and the naming rules in the few words a field shows.

The rules are the core's (``installer.validation``, ``installer.manifests``, ``installer.sizing``); everything here
imports them lazily so the first frame comes up fast.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    from installer import validation
    if obj is None:
        return {}, []
    if isinstance(obj, validation.Partial):
        return nest(dict(obj.values)), [str(p) for p in obj.problems]
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


def manifests_problem(value: str) -> str | None:
    """The core's rule for ``kfp.manifests`` ('upstream' or an existing folder): None when it fits."""
    from installer.field_checks import check_manifests
    return _first(check_manifests(value.strip()))


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
    probs = [p for p in part.problems if p.path == f"cluster.{field}"] or list(part.problems)
    return str(probs[0]) if probs else None


# ---------------------------------------------------------------------------------------------- naming rules

def _first(problems: list[tuple[str, str]]) -> str | None:
    if not problems:
        return None
    msg, hint = problems[0]
    return f"{msg} ({hint})" if hint else msg


def project_id_problem(value: str) -> str | None:
    from installer.field_checks import check_project
    if not value:
        return "required"
    return _first(check_project(value))


def looks_like_project_id(value: str) -> bool:
    from installer.field_checks import PROJECT_RE
    return bool(PROJECT_RE.match(value or ""))


def prefix_problem(value: str) -> str | None:
    from installer.field_checks import check_prefix
    if not value:
        return "required"
    return _first(check_prefix(value))


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

    The rules are the core's (``installer.field_checks``), the same the answers file is checked with."""
    from installer import field_checks as V
    from installer.answers import prefixed

    p = prefix or ""
    d = prefixed(p)
    rows = [NameCheck("prefix", p, "a-z 0-9 -, ≤23", _short_problem(V.check_prefix(p), p) if p else "required")]
    for what, name, rule, check, allowed in (
            ("network", d["network"], "≤63, a-z 0-9 -", V.check_network, "-"),
            ("subnet", d["subnet"], "≤63, a-z 0-9 -", V.check_network, "-"),
            ("GKE service acct", d["gke_sa"], "SA id 6–30", V.check_sa_id, "-"),
            ("KFP service acct", d["kfp_sa"], "SA id 6–30", V.check_sa_id, "-"),
            ("GKE cluster", d["cluster"], "≤40", V.check_cluster, "-"),
            ("Cloud SQL", d["sql_instance"], "SQL id ≤98", V.check_sql_instance, "-"),
            ("bucket", d["bucket"], "3–63, no goog", V.check_bucket, "-_.")):
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
