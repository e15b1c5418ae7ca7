"""The rule of each answers field: naming rules of Google's resources and the other per-field checks. Each
``check_*`` returns a list of ``(message, hint)``, empty when the value passes. The field table
(``installer.fields``) names the check of each field; the wizard checks names with the same functions."""
from __future__ import annotations

import difflib
import ipaddress
import re
from pathlib import Path
from typing import Any, Callable

from .answers import sql_tier_problem
from .problems import _shorten


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
