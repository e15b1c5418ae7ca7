"""The field table ``FIELDS``: the single source for type checks, unknown-key detection (with a did-you-mean),
defaults and the JSON Schema (``json_schema()``) of the answers file."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

from .answers import (ApisAnswers, BucketAnswers, ClusterAnswers, KfpAnswers, ServiceAccountsAnswers, SqlAnswers,
                      StateAnswers)
from .field_checks import (API_RE, BUCKET_RE, CLUSTER_RE, CREDENTIALS_MODES, KFP_VERSION_RE, LOCATION_RE,
                           MACHINE_TYPE_RE, NAMESPACE_RE, PREFIX_MAX, PREFIX_RE, PROJECT_RE, REGION_RE,
                           RELEASE_CHANNELS, ROLE_RE, SQL_MAX, SQL_RE, SQL_TIER_RE, SQL_VERSION_RE, ZONE_RE,
                           _enum_check, _min_check, _regex_check, check_api, check_bucket, check_cluster,
                           check_kfp_version, check_namespace, check_prefix, check_project, check_region,
                           check_role, check_sql_instance, check_sql_tier, check_zone)

ANSWERS_VERSION = 1
TYPE_WORDS = {"string": "a string", "integer": "a whole number", "boolean": "true or false",
              "string-list": "a list of strings"}


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
