"""Loading and validating answers files.

Every problem is reported at once, each with its field path and line number
(``Problem(path="cluster.node_count", line=12, message=..., hint=...)``). The
field table ``FIELDS`` is the single source for type checks, unknown-key
detection (with a did-you-mean), defaults and the JSON Schema.

Public:
- ``load_answers(path) -> Answers`` (raises ``BadInput(problems=[...])``)
- ``answers_from_dict(d) -> Answers`` (raises ``BadInput``)
- ``validate_dict(d, lines=None) -> (Answers | None, [Problem])``
- ``validate_partial(d) -> Partial`` (for the wizard: what is given, what is wrong, what is missing)
- ``json_schema() -> dict``
- ``dump_answers(answers, path)``
"""
from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .answers import (REQUIRED_APIS, Answers, ApisAnswers, BucketAnswers, ClusterAnswers, KfpAnswers,
                      ServiceAccountsAnswers, SqlAnswers, StateAnswers, sql_tier_problem)
from .errors import BadInput

ANSWERS_VERSION = 1


@dataclass
class Problem:
    path: str  # dotted field path, "" for the whole file
    line: int | None  # 1-based line in the file, None when unknown (e.g. from a dict)
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = self.path or "(file)"
        if self.line:
            where = f"line {self.line}: {where}"
        text = f"{where}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "message": self.message, "hint": self.hint}


# ---------------------------------------------------------------------------------------------------------------
# Naming rules (gcp-api-behaviour.md section 11, target-environment.md)

PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
PREFIX_RE = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
PREFIX_MAX = 23  # the service-account id limit (30) minus "-kfp-sa"
SA_ID_RE = re.compile(r"^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$")
CLUSTER_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$")
GCE_NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
SQL_RE = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
SQL_MAX = 98
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
ZONE_RE = re.compile(r"^([a-z]+-[a-z]+[0-9]+)-[a-z]$")
KFP_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.]+)?$")
NAMESPACE_RE = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$")
API_RE = re.compile(r"^[a-z][a-z0-9-]*(?:\.[a-z][a-z0-9-]*)*\.googleapis\.com$")
ROLE_RE = re.compile(r"^(?:roles/[A-Za-z0-9_.]+|(?:projects|organizations)/[a-z0-9-]+/roles/[A-Za-z0-9_.]+)$")
MACHINE_TYPE_RE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9-]+$")
SQL_TIER_RE = re.compile(r"^db-[A-Za-z0-9-]+$")  # "db-perf-optimized-N-2" has a capital
SQL_VERSION_RE = re.compile(r"^MYSQL_[0-9]+_[0-9]+$")
LOCATION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]$")
RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE", "EXTENDED")
CREDENTIALS_MODES = ("key", "workload-identity")
PROJECT_RESTRICTED = ("google", "null", "undefined", "ssl")


_REPR = None


def _shorten(value: Any, n: int = 60) -> str:
    """A short repr, safe on huge or self-referencing values (YAML aliases can make both)."""
    global _REPR
    if _REPR is None:
        import reprlib
        _REPR = reprlib.Repr()
        _REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple, _REPR.maxset = 2, 4, 4, 4, 4
        _REPR.maxstring, _REPR.maxother, _REPR.maxlong = n, n, n
    s = _REPR.repr(value)
    return s if len(s) <= n else s[: n - 3] + "..."


def check_project(v: str) -> list[tuple[str, str]]:
    out = []
    if not (6 <= len(v) <= 30):
        out.append((f"project id {v!r} has {len(v)} characters; it must have 6 to 30",
                    "use the id shown by `gcloud projects list`, not the display name"))
    elif not PROJECT_RE.fullmatch(v):
        out.append((f"project id {v!r} is not valid",
                    "lowercase letters, digits and hyphens; start with a letter; do not end with a hyphen"))
    for word in PROJECT_RESTRICTED:
        if word in v:
            out.append((f"project id {v!r} contains the restricted word {word!r}", ""))
    return out


def check_prefix(v: str) -> list[tuple[str, str]]:
    out = []
    if len(v) > PREFIX_MAX:
        out.append((f"prefix {v!r} has {len(v)} characters; at most {PREFIX_MAX} are allowed",
                    f"service-account ids ({v}-kfp-sa) are limited to 30 characters"))
    if not PREFIX_RE.fullmatch(v):
        out.append((f"prefix {v!r} is not valid",
                    "lowercase letters, digits and hyphens; start with a letter; end with a letter or digit, e.g. demo"))
    return out


def check_sa_id(v: str) -> list[tuple[str, str]]:
    if not (6 <= len(v) <= 30):
        return [(f"service-account id {v!r} has {len(v)} characters; it must have 6 to 30", "")]
    if not SA_ID_RE.fullmatch(v):
        return [(f"service-account id {v!r} is not valid", "lowercase letters, digits, hyphens; start with a letter")]
    return []


def check_cluster(v: str) -> list[tuple[str, str]]:
    if len(v) > 40:
        return [(f"cluster name {v!r} has {len(v)} characters; at most 40 are allowed", "")]
    if not CLUSTER_RE.fullmatch(v):
        return [(f"cluster name {v!r} is not valid",
                 "lowercase letters, digits and hyphens; start with a letter; end with a letter or digit")]
    return []


def check_network(v: str) -> list[tuple[str, str]]:
    if not (1 <= len(v) <= 63):
        return [(f"network name {v!r} has {len(v)} characters; at most 63 are allowed", "")]
    if not GCE_NAME_RE.fullmatch(v):
        return [(f"network name {v!r} is not valid", "lowercase letters, digits and hyphens; start with a letter")]
    return []


def check_sql_instance(v: str) -> list[tuple[str, str]]:
    if len(v) > SQL_MAX or not v:
        return [(f"Cloud SQL instance name {v!r} has {len(v)} characters; it must have 1 to {SQL_MAX}", "")]
    if not SQL_RE.fullmatch(v):
        return [(f"Cloud SQL instance name {v!r} is not valid",
                 "lowercase letters, digits and hyphens; start with a letter; do not end with a hyphen")]
    return []


def check_bucket(v: str) -> list[tuple[str, str]]:
    out = []
    if not (3 <= len(v) <= 63):
        out.append((f"bucket name {v!r} has {len(v)} characters; it must have 3 to 63", ""))
    elif not BUCKET_RE.fullmatch(v):
        out.append((f"bucket name {v!r} is not valid",
                    "lowercase letters, digits, '-', '_' and '.'; start and end with a letter or digit"))
    if v.startswith("goog"):
        out.append((f"bucket name {v!r} starts with 'goog', which Cloud Storage forbids", "choose another name"))
    elif "google" in v or re.search(r"g00gle|go0gle|g0ogle", v):
        out.append((f"bucket name {v!r} contains 'google' (or a look-alike), which Cloud Storage forbids", ""))
    try:
        ipaddress.ip_address(v)
        out.append((f"bucket name {v!r} is an IP address", ""))
    except ValueError:
        pass
    return out


def check_region(v: str) -> list[tuple[str, str]]:
    if not REGION_RE.fullmatch(v):
        hint = "e.g. us-central1 or europe-west4"
        if ZONE_RE.fullmatch(v):
            hint = f"that looks like a zone; the region would be {ZONE_RE.fullmatch(v).group(1)!r}"
        return [(f"region {v!r} is not a region name", hint)]
    return []


def check_zone(v: str) -> list[tuple[str, str]]:
    if not ZONE_RE.fullmatch(v):
        return [(f"zone {v!r} is not a zone name", "e.g. us-central1-a; leave it out for a regional cluster")]
    return []


def check_kfp_version(v: str) -> list[tuple[str, str]]:
    if not KFP_VERSION_RE.fullmatch(v):
        hint = "e.g. 2.14.4"
        if v.startswith("v") and KFP_VERSION_RE.fullmatch(v[1:]):
            hint = f"write it without the 'v': {v[1:]}"
        return [(f"KFP version {v!r} is not a release number", hint)]
    return []


def check_namespace(v: str) -> list[tuple[str, str]]:
    if not NAMESPACE_RE.fullmatch(v):
        return [(f"namespace {v!r} is not a valid Kubernetes namespace",
                 "lowercase letters, digits and hyphens, at most 63 characters")]
    return []


def check_api(v: str) -> list[tuple[str, str]]:
    if not API_RE.fullmatch(v):
        hint = f"did you mean {v}.googleapis.com?" if re.match(r"^[a-z][a-z0-9-]*$", v) else "e.g. container.googleapis.com"
        return [(f"{v!r} is not an API service name", hint)]
    return []


def check_role(v: str) -> list[tuple[str, str]]:
    if not ROLE_RE.fullmatch(v):
        return [(f"{v!r} is not an IAM role name", "e.g. roles/storage.admin")]
    return []


def _regex_check(regex: re.Pattern, what: str, hint: str) -> Callable[[str], list[tuple[str, str]]]:
    def check(v: str) -> list[tuple[str, str]]:
        return [] if regex.fullmatch(v) else [(f"{what} {v!r} is not valid", hint)]
    return check


def check_sql_tier(v: str) -> list[tuple[str, str]]:
    bad = _regex_check(SQL_TIER_RE, "SQL tier", "e.g. db-n1-standard-2")(v)
    edition = sql_tier_problem(v) if not bad else None
    return bad or ([(edition, "the tier must be of the Enterprise edition")] if edition else [])


def _enum_check(choices: tuple[str, ...], what: str) -> Callable[[Any], list[tuple[str, str]]]:
    def check(v: Any) -> list[tuple[str, str]]:
        if v in choices:
            return []
        hint = f"one of: {', '.join(choices)}"
        near = difflib.get_close_matches(str(v), choices, n=1, cutoff=0.5) or \
            [c for c in choices if c.lower() == str(v).lower()]
        if near:
            hint = f"did you mean {near[0]!r}? ({hint})"
        return [(f"{what} {_shorten(v)} is not allowed", hint)]
    return check


def _min_check(minimum: int, what: str) -> Callable[[int], list[tuple[str, str]]]:
    def check(v: int) -> list[tuple[str, str]]:
        return [] if v >= minimum else [(f"{what} must be at least {minimum}, not {v}", "")]
    return check


def check_manifests(v: str, base_dir: Path | None = None) -> list[tuple[str, str]]:
    if v == "upstream":
        return []
    p = Path(v).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    if not p.is_dir():
        return [(f"manifests must be 'upstream' or an existing folder; {v!r} is neither",
                 "for air-gapped use, point it at a folder holding the rendered KFP manifests")]
    # the folder itself: its layout, objects that parse, kinds of KFP (a folder with no manifests fails here,
    # before anything is made); its differences from the release are shown by plan and agreed to at install
    from backends.kfp.release import check_folder
    problems = check_folder(p)
    return [(f"manifests folder {v!r}: {msg}", "point kfp.manifests at the rendered KFP manifests "
             "(cluster-scoped.yaml + env-gcp.yaml) or a copy of KFP's manifests/kustomize") for msg in problems]


# ---------------------------------------------------------------------------------------------------------------
# The field table

@dataclass(frozen=True)
class FieldSpec:
    path: str
    type: str  # "string" | "integer" | "boolean" | "string-list"
    description: str
    required: bool = False
    nullable: bool = False
    check: Callable[[Any], list[tuple[str, str]]] | None = None
    enum: tuple[Any, ...] | None = None
    minimum: int | None = None
    pattern: str | None = None
    max_length: int | None = None
    example: Any = None


def _default(path: str) -> Any:
    defaults = {
        "version": ANSWERS_VERSION, "zone": None, "credentials": "key",
        "apis": ApisAnswers(), "cluster": ClusterAnswers(), "sql": SqlAnswers(),
        "bucket": BucketAnswers(), "kfp": KfpAnswers(), "service_accounts": ServiceAccountsAnswers(),
        "state": StateAnswers(), "verify": True,
    }
    head, _, rest = path.partition(".")
    obj = defaults.get(head)
    if rest:
        obj = getattr(obj, rest)
    return obj


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("version", "integer", "Format version of this file; always 1.", enum=(1,)),
    FieldSpec("project", "string", "Google Cloud project id (not the display name).", required=True,
              check=check_project, pattern=PROJECT_RE.pattern, example="mlops-demo-project"),
    FieldSpec("region", "string", "Region for the subnet, the SQL instance and (by default) the bucket.",
              required=True, check=check_region, pattern=REGION_RE.pattern, example="us-central1"),
    FieldSpec("zone", "string", "Zone inside the region: a zonal cluster. Leave out (null) for a regional cluster.",
              nullable=True, check=check_zone, pattern=ZONE_RE.pattern, example="us-central1-a"),
    FieldSpec("prefix", "string", "Name prefix P of every resource (P-network, P-kfp-cluster, ...); "
              f"at most {PREFIX_MAX} characters.", required=True, check=check_prefix, pattern=PREFIX_RE.pattern,
              max_length=PREFIX_MAX, example="demo"),
    FieldSpec("credentials", "string", "How KFP workloads get Google credentials: 'key' (a service-account key "
              "in Secret user-gcp-sa) or 'workload-identity' (no keys).", enum=CREDENTIALS_MODES,
              check=_enum_check(CREDENTIALS_MODES, "credentials mode")),
    FieldSpec("verify", "boolean", "End the install with a first pipeline run through KFP's API (step kfp-verify): "
              "one task writes an artifact to the pipeline root, a second reads it. false skips it (as --no-verify)."),
    FieldSpec("apis.enable", "boolean", "Consent to enable the required APIs that are disabled."),
    FieldSpec("apis.required", "string-list", "APIs that must be enabled (*.googleapis.com).", check=check_api,
              pattern=API_RE.pattern),
    FieldSpec("cluster.machine_type", "string", "Machine type of the nodes.",
              check=_regex_check(MACHINE_TYPE_RE, "machine type", "e.g. e2-standard-4"), pattern=MACHINE_TYPE_RE.pattern),
    FieldSpec("cluster.node_count", "integer", "Number of nodes per zone (a regional cluster has 3 zones). "
              "Default: 1 for a regional cluster (3 nodes in all), 3 for a zonal one.", minimum=1,
              check=_min_check(1, "node_count")),
    FieldSpec("cluster.release_channel", "string", "GKE release channel.", enum=RELEASE_CHANNELS,
              check=_enum_check(RELEASE_CHANNELS, "release channel")),
    FieldSpec("cluster.existing", "string", "Name of an existing GKE cluster to use instead of creating "
              "P-kfp-cluster.", nullable=True, check=check_cluster, pattern=CLUSTER_RE.pattern, max_length=40),
    FieldSpec("sql.tier", "string", "Cloud SQL machine tier (of the Enterprise edition).", check=check_sql_tier,
              pattern=SQL_TIER_RE.pattern),
    FieldSpec("sql.database_version", "string", "MySQL version (KFP needs MySQL).",
              check=_regex_check(SQL_VERSION_RE, "database version", "e.g. MYSQL_8_0"), pattern=SQL_VERSION_RE.pattern),
    FieldSpec("sql.disk_size_gb", "integer", "SQL disk size in GB (SSD, grows automatically).", minimum=10,
              check=_min_check(10, "disk_size_gb")),
    FieldSpec("sql.existing", "string", "Name of an existing Cloud SQL instance to use instead of creating "
              "P-ml-metadata.", nullable=True, check=check_sql_instance, pattern=SQL_RE.pattern, max_length=SQL_MAX),
    FieldSpec("bucket.location", "string", "Bucket location; default (null): the region.", nullable=True,
              check=_regex_check(LOCATION_RE, "bucket location", "a region such as us-central1, or US / EU / ASIA"),
              pattern=LOCATION_RE.pattern),
    FieldSpec("bucket.existing", "string", "Name of an existing bucket to use instead of creating "
              "P-artifact-store.", nullable=True, check=check_bucket, pattern=BUCKET_RE.pattern, max_length=63),
    FieldSpec("state.bucket", "string", "A bucket of yours (it must exist) for the remote journal and lock, kept "
              "apart from the artifacts; default (null): P-artifact-store, once the install made it.", nullable=True,
              check=check_bucket, pattern=BUCKET_RE.pattern, max_length=63),
    FieldSpec("kfp.version", "string", "Kubeflow Pipelines release.", check=check_kfp_version,
              pattern=KFP_VERSION_RE.pattern),
    FieldSpec("kfp.namespace", "string", "Kubernetes namespace for KFP.", check=check_namespace,
              pattern=NAMESPACE_RE.pattern, max_length=63),
    FieldSpec("kfp.manifests", "string", "'upstream' (the release's kustomize from GitHub) or a local folder of "
              "manifests (relative paths are relative to this file)."),
    FieldSpec("service_accounts.gke_roles", "string-list", "Roles granted to the node service account P-gke-sa.",
              check=check_role, pattern=ROLE_RE.pattern),
    FieldSpec("service_accounts.kfp_roles", "string-list", "Roles granted to the KFP service account P-kfp-sa.",
              check=check_role, pattern=ROLE_RE.pattern),
)
FIELD_BY_PATH: dict[str, FieldSpec] = {f.path: f for f in FIELDS}
SECTIONS: dict[str, str] = {
    "apis": "Google APIs to enable.",
    "cluster": "The GKE cluster (P-kfp-cluster).",
    "sql": "The Cloud SQL instance for KFP's metadata (P-ml-metadata).",
    "bucket": "The artifact bucket (P-artifact-store).",
    "kfp": "Kubeflow Pipelines.",
    "service_accounts": "Roles of the two service accounts.",
    "state": "Where the journal and the lock are kept in Cloud Storage (for team use).",
}
REQUIRED = tuple(f.path for f in FIELDS if f.required)


def _known_children(prefix: str) -> list[str]:
    """Keys allowed directly under ``prefix`` ("" for the top level)."""
    keys: list[str] = []
    for f in FIELDS:
        if prefix:
            if f.path.startswith(prefix + "."):
                keys.append(f.path[len(prefix) + 1:].split(".")[0])
        else:
            keys.append(f.path.split(".")[0])
    return list(dict.fromkeys(keys))


def _did_you_mean(key: str, parent: str) -> str:
    candidates = _known_children(parent)
    if len(key) > 64:
        return f"known keys here: {', '.join(candidates)}"
    near = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if not near:
        # maybe the key belongs in another section (e.g. node_count at the top)
        everywhere = {f.path.split(".")[-1]: f.path for f in FIELDS}
        near_any = difflib.get_close_matches(key, list(everywhere), n=1, cutoff=0.8)
        if near_any:
            return f"did you mean {everywhere[near_any[0]]!r}?"
        return f"known keys here: {', '.join(candidates)}"
    return f"did you mean {(parent + '.' if parent else '') + near[0]!r}?"


# ---------------------------------------------------------------------------------------------------------------
# YAML with line numbers

def parse_yaml(text: str) -> tuple[Any, dict[str, int], list[Problem]]:
    """Parse YAML with the safe loader; return the data, a map of dotted path -> line, and syntax problems."""
    import yaml

    lines: dict[str, int] = {}
    problems: list[Problem] = []
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, lines, problems
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        msg = " ".join(x for x in (exc.context, exc.problem) if x) or "not valid YAML"
        problems.append(Problem("", mark.line + 1 if mark else None, f"not valid YAML: {msg}",
                                "check the indentation and quoting near that line"))
        return None, lines, problems
    except (yaml.YAMLError, ValueError, TypeError, RecursionError, OverflowError) as exc:
        # e.g. a timestamp out of range, an unhashable key
        problems.append(Problem("", None, f"not valid YAML: {type(exc).__name__}: {exc}".strip(), ""))
        return None, lines, problems

    visited: set[int] = set()

    def walk(n: Any, path: str, depth: int = 0) -> None:
        # only the first three levels carry fields; an alias is walked once (aliases can make the node graph
        # exponential or cyclic: "billion laughs")
        if depth > 3 or id(n) in visited:
            return
        visited.add(id(n))
        if isinstance(n, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else "?"
                sub = f"{path}.{key}" if path else str(key)
                if key in seen and depth < 2:
                    problems.append(Problem(sub, k.start_mark.line + 1,
                                            f"duplicate key {_shorten(key)} (first on line {seen[key]})",
                                            "keep one of them"))
                seen[key] = k.start_mark.line + 1
                lines.setdefault(sub, k.start_mark.line + 1)
                walk(v, sub, depth + 1)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value[:1000]):
                lines.setdefault(f"{path}[{i}]", item.start_mark.line + 1)
                walk(item, f"{path}[{i}]", depth + 1)

    walk(node, "")
    return data, lines, problems


# ---------------------------------------------------------------------------------------------------------------
# Validation

TYPE_WORDS = {"string": "a string", "integer": "a whole number", "boolean": "true or false",
              "string-list": "a list of strings"}


def _type_ok(spec: FieldSpec, value: Any) -> bool:
    if value is None:
        return spec.nullable
    if spec.type == "string":
        return isinstance(value, str)
    if spec.type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if spec.type == "boolean":
        return isinstance(value, bool)
    if spec.type == "string-list":
        return isinstance(value, list)
    return False  # pragma: no cover


def _type_hint(spec: FieldSpec, value: Any) -> str:
    if spec.type == "integer" and isinstance(value, str) and value.strip().isdigit():
        return f"write it without quotes: {value.strip()}"
    if spec.type == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"put it in quotes: \"{value}\""
    if spec.type == "boolean" and isinstance(value, str):
        return "write true or false without quotes"
    if spec.type == "string-list" and isinstance(value, str):
        return f"write a list, e.g. [{value}]"
    if value is None and not spec.nullable:
        return "give a value or remove the line to use the default"
    return ""


@dataclass
class Partial:
    """What ``validate_partial`` found: the values to prefill, the problems in what is given, what is missing."""
    values: dict[str, Any]  # dotted path -> value (only the valid, given ones)
    problems: list[Problem]
    missing: list[str]  # required dotted paths not given
    answers: Answers | None = None  # set when complete and valid

    @property
    def complete(self) -> bool:
        return self.answers is not None


def _check(d: Any, lines: dict[str, int], base_dir: Path | None
           ) -> tuple[dict[str, Any], list[Problem], list[str]]:
    """Check ``d``; return (valid values by dotted path, problems, missing required paths)."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    missing: list[str] = []

    def line(path: str) -> int | None:
        while path:
            if path in lines:
                return lines[path]
            path = path.rpartition(".")[0]
        return None

    if d is None:
        d = {}
    if not isinstance(d, dict):
        problems.append(Problem("", 1 if lines is not None else None,
                                f"the answers file must be a mapping of keys to values, not {type(d).__name__}",
                                "start from the file `mlops-install init` writes"))
        return values, problems, list(REQUIRED)

    # unknown keys (two levels: top and sections)
    for key, val in d.items():
        skey = str(key)
        if skey in SECTIONS:
            if val is None:
                continue
            if not isinstance(val, dict):
                problems.append(Problem(skey, line(skey), f"{skey} must be a section (a mapping), "
                                        f"not {type(val).__name__}", f"e.g.\n  {skey}:\n    "
                                        f"{_known_children(skey)[0]}: ..."))
                continue
            for sub in val:
                if f"{skey}.{sub}" not in FIELD_BY_PATH:
                    problems.append(Problem(f"{skey}.{_shorten(str(sub), 40).strip(chr(39))}",
                                            line(f"{skey}.{sub}"), f"unknown key {_shorten(str(sub))}",
                                            _did_you_mean(str(sub), skey)))
        elif skey not in FIELD_BY_PATH:
            problems.append(Problem(_shorten(skey, 40).strip(chr(39)), line(skey), f"unknown key {_shorten(skey)}",
                                    _did_you_mean(skey, "")))

    for spec in FIELDS:
        head, _, rest = spec.path.partition(".")
        container = d
        if rest:
            container = d.get(head)
            if not isinstance(container, dict):
                continue
            key = rest
        else:
            key = head
        if key not in container:
            if spec.required:
                missing.append(spec.path)
            continue
        value = container[key]
        if value is None and spec.required:
            missing.append(spec.path)
            continue
        if not _type_ok(spec, value):
            problems.append(Problem(spec.path, line(spec.path),
                                    f"must be {TYPE_WORDS[spec.type]}, not {_shorten(value)}",
                                    _type_hint(spec, value)))
            continue
        if value is None:
            values[spec.path] = None
            continue
        errs: list[tuple[str, str]] = []
        if spec.type == "string-list":
            bad_items = False
            seen: set[str] = set()
            for i, item in enumerate(value):
                ipath = f"{spec.path}[{i}]"
                if not isinstance(item, str):
                    problems.append(Problem(ipath, line(ipath) or line(spec.path),
                                            f"must be a string, not {_shorten(item)}", ""))
                    bad_items = True
                    continue
                if item in seen:
                    problems.append(Problem(ipath, line(ipath) or line(spec.path), f"{item!r} is listed twice", ""))
                    bad_items = True
                seen.add(item)
                for msg, hint in (spec.check(item) if spec.check else []):
                    problems.append(Problem(ipath, line(ipath) or line(spec.path), msg, hint))
                    bad_items = True
            if not bad_items:
                values[spec.path] = list(value)
            continue
        if spec.path == "version":
            if value != ANSWERS_VERSION:
                errs.append((f"version {value} is not supported; this installer reads version {ANSWERS_VERSION}",
                             "write version: 1"))
        elif spec.path == "kfp.manifests":
            errs = check_manifests(value, base_dir)
        elif spec.check:
            errs = spec.check(value)
        for msg, hint in errs:
            problems.append(Problem(spec.path, line(spec.path), msg, hint))
        if not errs:
            values[spec.path] = value

    # cross-field rules
    region, zone = values.get("region"), values.get("zone")
    if region and zone and ZONE_RE.fullmatch(zone).group(1) != region:
        problems.append(Problem("zone", line("zone"), f"zone {zone!r} is not in region {region!r}",
                                f"use a zone of {region} (e.g. {region}-a), or set region: "
                                f"{ZONE_RE.fullmatch(zone).group(1)}"))
        values.pop("zone", None)
    prefix = values.get("prefix")
    if prefix:
        derived = [
            ("network", f"{prefix}-network", check_network),
            ("subnet", f"{prefix}-subnet", check_network),
            ("GKE service account id", f"{prefix}-gke-sa", check_sa_id),
            ("KFP service account id", f"{prefix}-kfp-sa", check_sa_id),
        ]
        if "cluster.existing" not in values or values.get("cluster.existing") is None:
            derived.append(("cluster", f"{prefix}-kfp-cluster", check_cluster))
        if values.get("sql.existing") is None:
            derived.append(("Cloud SQL instance", f"{prefix}-ml-metadata", check_sql_instance))
        if values.get("bucket.existing") is None:
            derived.append(("bucket", f"{prefix}-artifact-store", check_bucket))
        bad = False
        for what, name, check in derived:
            for msg, hint in check(name):
                problems.append(Problem("prefix", line("prefix"), f"the derived {what} name is not valid: {msg}",
                                        hint or "choose another prefix"))
                bad = True
        if bad:
            values.pop("prefix", None)
    return values, problems, missing


def _build(values: dict[str, Any]) -> Answers:
    sections: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    top: dict[str, Any] = {}
    for path, v in values.items():
        head, _, rest = path.partition(".")
        if rest:
            sections[head][rest] = v
        else:
            top[path] = v
    return Answers(
        project=top["project"], region=top["region"], prefix=top["prefix"],
        zone=top.get("zone"), credentials=top.get("credentials", "key"),
        version=top.get("version", ANSWERS_VERSION), verify=top.get("verify", True),
        apis=ApisAnswers(**sections["apis"]), cluster=ClusterAnswers(**sections["cluster"]),
        sql=SqlAnswers(**sections["sql"]), bucket=BucketAnswers(**sections["bucket"]),
        kfp=KfpAnswers(**sections["kfp"]), service_accounts=ServiceAccountsAnswers(**sections["service_accounts"]),
        state=StateAnswers(**sections["state"]),
    )


def _missing_problems(missing: list[str], lines: dict[str, int] | None) -> list[Problem]:
    out = []
    for path in missing:
        spec = FIELD_BY_PATH[path]
        example = f"{path.split('.')[-1]}: {spec.example}" if spec.example else ""
        out.append(Problem(path, None, f"{path} is required but missing",
                           f"add a line such as `{example}`" if example else spec.description))
    return out


def validate_dict(d: Any, lines: dict[str, int] | None = None, base_dir: Path | None = None
                  ) -> tuple[Answers | None, list[Problem]]:
    """Validate a parsed answers document; return the Answers (None if any problem) and every problem."""
    values, problems, missing = _check(d, lines or {}, base_dir)
    problems += _missing_problems(missing, lines)
    problems.sort(key=lambda p: (p.line is None, p.line or 0, p.path))
    if problems:
        return None, problems
    answers = _build(values)
    if answers.kfp.manifests != "upstream" and base_dir is not None:
        p = Path(answers.kfp.manifests).expanduser()
        if not p.is_absolute():
            answers.kfp.manifests = str((base_dir / p).resolve())
    return answers, []


def answers_from_dict(d: dict[str, Any], base_dir: Path | None = None) -> Answers:
    answers, problems = validate_dict(d, None, base_dir)
    if problems:
        raise BadInput(f"the answers have {len(problems)} problem(s)", problems=capped(problems),
                       remedy="fix each field listed")
    assert answers is not None
    return answers


def validate_partial(d: Any, base_dir: Path | None = None) -> Partial:
    """For the wizard: a partial answers dict prefills; returns valid values, problems and missing fields."""
    values, problems, missing = _check(d, {}, base_dir)
    answers = None
    if not problems and not missing:
        answers, _ = validate_dict(d, None, base_dir)
    return Partial(values=values, problems=problems, missing=missing, answers=answers)


def validate_text(text: str, base_dir: Path | None = None) -> tuple[Answers | None, list[Problem]]:
    data, lines, problems = parse_yaml(text)
    if problems:
        return None, problems
    return validate_dict(data, lines, base_dir)


MAX_ANSWERS_BYTES = 1 << 20  # an answers file is ~2 kB; more is not an answers file (and must not cost minutes)
MAX_PROBLEMS = 50  # problems listed at most; the rest are counted ("and N more")


def capped(problems: list[Problem], limit: int = MAX_PROBLEMS) -> list[Problem]:
    """At most ``limit`` problems, the last one saying how many more there were."""
    if len(problems) <= limit:
        return problems
    return problems[:limit] + [Problem("", None, f"and {len(problems) - limit} more problem(s)")]


def read_answers_text(path: str | Path) -> str:
    """The answers file's text: a regular file (a FIFO, a device such as /dev/zero or a folder is refused without
    reading it), at most ``MAX_ANSWERS_BYTES``, UTF-8."""
    from .files import UnsafePath, read_regular

    p = Path(path)
    try:
        raw = read_regular(p, limit=MAX_ANSWERS_BYTES, what="answers file")
    except FileNotFoundError:
        raise BadInput(f"answers file {str(p)!r} does not exist",
                       remedy="check the path, or write one with `mlops-install init` and edit it",
                       problems=[Problem("", None, f"{p}: no such file")]) from None
    except UnsafePath as exc:
        raise BadInput(f"answers file {str(p)!r}: {exc.message.split(': ', 1)[-1]}", remedy=exc.remedy,
                       problems=[Problem("", None, exc.message)]) from None
    except OSError as exc:
        raise BadInput(f"cannot read answers file {str(p)!r}: {exc.strerror or exc}",
                       remedy="check the file's permissions",
                       problems=[Problem("", None, f"{p}: {exc.strerror or exc}")]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"answers file {str(p)!r} is not UTF-8 text", remedy="save it as UTF-8",
                       problems=[Problem("", None, f"byte {exc.start} is not UTF-8")]) from None


def load_answers(path: str | Path) -> Answers:
    """Load and validate an answers file; raise ``BadInput`` listing every problem."""
    p = Path(path)
    text = read_answers_text(p)
    answers, problems = validate_text(text, p.parent.resolve())
    if problems:
        raise BadInput(f"{p} has {len(problems)} problem(s)", problems=capped(problems),
                       remedy=f"fix each line listed, then run `mlops-install validate {p}`")
    assert answers is not None
    return answers


def load_partial(path: str | Path) -> tuple[Partial, list[Problem]]:
    """For ``--answers FILE`` with the wizard: syntax problems are fatal, the rest prefill."""
    p = Path(path)
    text = read_answers_text(p)
    data, lines, problems = parse_yaml(text)
    if problems:
        raise BadInput(f"{p} is not valid YAML", problems=capped(problems), remedy="fix the line listed")
    partial = validate_partial(data, p.parent.resolve())
    for prob in partial.problems:
        prob.line = lines.get(prob.path, prob.line)
    return partial, problems


# ---------------------------------------------------------------------------------------------------------------
# JSON Schema

def json_schema() -> dict[str, Any]:
    def prop(spec: FieldSpec) -> dict[str, Any]:
        t: dict[str, Any]
        if spec.type == "string-list":
            item: dict[str, Any] = {"type": "string"}
            if spec.pattern:
                item["pattern"] = spec.pattern
            t = {"type": "array", "items": item, "uniqueItems": True}
        else:
            t = {"type": spec.type}
            if spec.pattern:
                t["pattern"] = spec.pattern
            if spec.max_length:
                t["maxLength"] = spec.max_length
            if spec.minimum is not None:
                t["minimum"] = spec.minimum
            if spec.enum:
                t["enum"] = list(spec.enum)
        if spec.nullable:
            t["type"] = [t["type"], "null"]
            if "enum" in t:
                t["enum"].append(None)
        t["description"] = spec.description
        default = _default(spec.path)
        if default is not None or spec.nullable:
            t["default"] = default
        return t

    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for spec in FIELDS:
        head, _, rest = spec.path.partition(".")
        if rest:
            nested[head][rest] = prop(spec)
        else:
            top[head] = prop(spec)
    for s, props in nested.items():
        top[s] = {"type": "object", "description": SECTIONS[s], "additionalProperties": False, "properties": props}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:mlops-install:answers:v1",
        "title": "mlops-install answers file",
        "description": "Every input of mlops-install. Unknown keys are errors.",
        "type": "object",
        "additionalProperties": False,
        "required": list(REQUIRED),
        "properties": top,
    }


# ---------------------------------------------------------------------------------------------------------------
# Writing answers back

ANSWERS_HEADER = """\
# mlops-install answers file (version 1).
# Written by mlops-install{why}. Replay it with:
#   mlops-install --non-interactive --answers {name}
# Field reference: README.md, "Answers file". It holds no secret.
"""


def dump_answers(answers: Answers, path: str | Path, why: str = "") -> Path:
    """Write the answers as YAML (mode 0600, atomically) with a header comment."""
    import yaml

    from .files import write_file

    p = Path(path)
    d = answers.to_dict()
    order = ["version", "project", "region", "zone", "prefix", "credentials", "verify", *SECTIONS]
    ordered = {k: d[k] for k in order if k in d}
    body = yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False)
    text = ANSWERS_HEADER.format(why=f" ({why})" if why else "", name=p.name) + body
    write_file(p, text.encode(), mode=0o600)  # no link followed; someone else's file is refused
    return p


def default_apis() -> list[str]:
    return list(REQUIRED_APIS)
