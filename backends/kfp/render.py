"""Render the Kubeflow Pipelines manifests: the upstream bases (or a local folder) plus the installer's overlay.

Sources (``answers.kfp.manifests``):
- ``upstream``: the remote kustomize bases at ``answers.kfp.version``
  (``github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=V`` and ``.../env/gcp?ref=V``);
  building them needs network and git.
- a folder holding ``cluster-scoped.yaml`` and ``env-gcp.yaml`` (already rendered; air-gapped use), or
- a folder holding kustomizations: ``cluster-scoped-resources/`` and ``env/gcp/`` (a copy of upstream's
  ``manifests/kustomize``; also found under ``manifests/kustomize/``).

The overlay (two kustomizations written to a work dir, each referencing its base):
- ``namespace``: ``answers.kfp.namespace``; label ``mlops-install-env: P`` on every object;
- ConfigMap ``pipeline-install-config``: ``bucketName``, ``gcsProjectId``, ``gcsCloudSqlInstanceName``
  (the connection name reported by Cloud SQL), ``defaultPipelineRoot`` (``minio://<bucket>/v2/artifacts``);
- what upstream's kustomize vars derive from it, set after the build (``fill_var_targets``): ConfigMap
  ``kfp-launcher`` ``defaultPipelineRoot`` and the Argo artifact repository's bucket in
  ``workflow-controller-configmap``;
- Secret ``mysql-secret`` is deleted from the manifests: the ``mysql-secret`` step owns it (the upstream one has an
  empty password and would overwrite the real one);
- workload-identity mode: annotation ``iam.gke.io/gcp-service-account`` on the KFP service accounts.

Built with ``kustomize build`` when present, else ``kubectl kustomize``. A folder of rendered files that keeps its
namespace gets the same overlay applied in Python (identical output, no subprocess; also with neither tool).

``mlops-install render --answers FILE --out DIR`` (``main``) writes the overlay and the rendered YAML for review.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from installer.answers import LABEL_KEY, WI_KSA_BINDINGS, Answers
from installer.errors import ErrorClass, InstallerError

UPSTREAM = "github.com/kubeflow/pipelines/manifests/kustomize"
WI_ANNOTATION = "iam.gke.io/gcp-service-account"
PARAMS_CONFIGMAP = "pipeline-install-config"
DROPPED = [("Secret", "mysql-secret")]
CLUSTER_SCOPED_KINDS = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
                        "PriorityClass", "StorageClass", "ValidatingWebhookConfiguration",
                        "MutatingWebhookConfiguration", "APIService"}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on KFP's 200 kB of YAML
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _ReadableDumper(yaml.SafeDumper):
    """Multi-line strings (the overlay's patches) as literal blocks, for people reviewing the overlay."""


def _str_rep(dumper: yaml.SafeDumper, data: str):
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_ReadableDumper.add_representer(str, _str_rep)
PLACEHOLDER_CONNECTION = "<connection name of the Cloud SQL instance, read from Cloud SQL at install time>"


@dataclass
class Source:
    kind: str  # "upstream" | "rendered" | "kustomize"
    cluster_scoped: str  # remote URL, file path or directory
    env: str
    description: str


@dataclass
class Rendered:
    part: str  # "cluster-scoped" | "env"
    objects: list[dict]
    overlay: dict  # the kustomization
    tool: str  # what built it
    source: Source
    extra_files: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return digest(self.objects)

    def yaml(self) -> str:
        return yaml.dump_all(self.objects, Dumper=_Dumper, sort_keys=False)


def digest(objs: list[dict]) -> str:
    return hashlib.sha256(json.dumps(objs, sort_keys=True).encode()).hexdigest()[:16]


def find_source(answers: Answers) -> Source:
    m = answers.kfp.manifests
    v = answers.kfp.version
    if m == "upstream":
        return Source("upstream", f"{UPSTREAM}/cluster-scoped-resources?ref={v}", f"{UPSTREAM}/env/gcp?ref={v}",
                      f"upstream Kubeflow Pipelines {v} (remote kustomize bases)")
    root = Path(m).expanduser().resolve()
    if not root.is_dir():
        raise InstallerError(f"kfp.manifests: {m} is not a folder", error_class=ErrorClass.BAD_INPUT,
                             remedy="Set kfp.manifests to 'upstream' or to a folder of KFP manifests.")
    cs, env = root / "cluster-scoped.yaml", root / "env-gcp.yaml"
    if cs.is_file() and env.is_file():
        return Source("rendered", str(cs), str(env), f"rendered manifests in {root}")
    for base in (root, root / "manifests" / "kustomize"):
        csd, envd = base / "cluster-scoped-resources", base / "env" / "gcp"
        if (csd / "kustomization.yaml").is_file() and (envd / "kustomization.yaml").is_file():
            return Source("kustomize", str(csd), str(envd), f"kustomizations in {base}")
    raise InstallerError(
        f"kfp.manifests: {root} holds neither cluster-scoped.yaml + env-gcp.yaml nor the kustomizations "
        "cluster-scoped-resources/ + env/gcp/", error_class=ErrorClass.BAD_INPUT,
        remedy="Point kfp.manifests at the rendered files or at a copy of KFP's manifests/kustomize folder.")


# Where v2 runs write their artifacts. Left empty, the launcher uses "minio://mlpipeline/v2/artifacts"
# (kubeflow/pipelines@2.14.4 backend/src/v2/config/env.go, defaultPipelineRoot), which through the GCS gateway is
# the *global* bucket "mlpipeline", not ours. The launcher reads the kfp-launcher ConfigMap (same file,
# configMapName); upstream fills it from pipeline-install-config's defaultPipelineRoot by a kustomize var
# (manifests/kustomize/base/installs/generic/kustomization.yaml @2.14.4).
PIPELINE_ROOT_PATH = "v2/artifacts"
# Upstream's placeholders that kustomize vars replace at build time (manifests/kustomize/env/gcp/params.env and
# third-party/argo/base/workflow-controller-configmap-patch.yaml @2.14.4): a pre-rendered folder still has them.
UPSTREAM_PLACEHOLDERS = ("yourGcsBucketName", "yourGcsProjectId", "yourCloudSqlInstanceName")


def pipeline_root(bucket: str) -> str:
    return f"minio://{bucket}/{PIPELINE_ROOT_PATH}"


def params(answers: Answers, connection_name: str | None, bucket: str | None = None) -> dict[str, str]:
    b = bucket or answers.names.bucket
    return {"bucketName": b, "gcsProjectId": answers.project,
            "gcsCloudSqlInstanceName": connection_name or PLACEHOLDER_CONNECTION,
            "defaultPipelineRoot": pipeline_root(b)}


def fill_var_targets(objs: list[dict], values: dict[str, str]) -> list[dict]:
    """Set what upstream's kustomize vars derive from pipeline-install-config, whatever built the objects: the
    kfp-launcher ConfigMap's defaultPipelineRoot and the Argo artifact repository's bucket (a YAML text inside
    workflow-controller-configmap). A remote build resolves the vars against the base's values, before the
    overlay's, so both paths need this."""
    for o in objs:
        if o.get("kind") != "ConfigMap":
            continue
        name, data = o.get("metadata", {}).get("name"), o.get("data") or {}
        if name == "kfp-launcher" and values.get("defaultPipelineRoot"):
            data["defaultPipelineRoot"] = values["defaultPipelineRoot"]
        elif name == "workflow-controller-configmap" and isinstance(data.get("artifactRepository"), str):
            repo = yaml.safe_load(data["artifactRepository"]) or {}
            s3 = repo.get("s3") if isinstance(repo, dict) else None
            if isinstance(s3, dict) and s3.get("bucket") != values["bucketName"]:
                s3["bucket"] = values["bucketName"]
                data["artifactRepository"] = yaml.safe_dump(repo, sort_keys=False)
        o["data"] = data
    return objs


def wi_annotations(answers: Answers) -> dict[str, str]:
    n = answers.names
    return {ksa: (n.kfp_sa_email if which == "kfp" else n.gke_sa_email) for ksa, which in WI_KSA_BINDINGS.items()}


def _patch(kind: str, name: str, body: dict) -> dict:
    api = "v1"
    doc = {"apiVersion": api, "kind": kind, "metadata": {"name": name}, **body}
    return {"target": {"kind": kind, "name": name}, "patch": yaml.safe_dump(doc, sort_keys=False, width=1000)}


def overlay(answers: Answers, part: str, base: str, values: dict[str, str] | None) -> dict:
    k: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [base],
        "namespace": answers.kfp.namespace,
        "labels": [{"pairs": {LABEL_KEY: answers.prefix}}],
    }
    patches = []
    if part == "env":
        patches.append(_patch("ConfigMap", PARAMS_CONFIGMAP, {"data": dict(values or {})}))
        for kind, name in DROPPED:
            p = _patch(kind, name, {})
            p["patch"] = "$patch: delete\n" + p["patch"]
            patches.append(p)
        if answers.credentials == "workload-identity":
            for ksa, email in wi_annotations(answers).items():
                patches.append(_patch("ServiceAccount", ksa, {"metadata": {"name": ksa,
                                                                           "annotations": {WI_ANNOTATION: email}}}))
    if patches:
        k["patches"] = patches
    return k


def kustomize_tool() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def _build(tool: list[str], kdir: Path) -> list[dict]:
    env = dict(os.environ, KUBECONFIG=os.devnull)
    try:
        # kustomize's default load restrictor (LoadRestrictionsRootOnly): a kustomization reads files only from
        # its own folder, so a manifests folder cannot pull in a file from elsewhere (e.g. into a ConfigMap);
        # https://kubectl.docs.kubernetes.io/references/kustomize/cmd/build/ (--load-restrictor)
        proc = subprocess.run([*tool, str(kdir)], capture_output=True, text=True, env=env, timeout=600)
    except subprocess.TimeoutExpired as exc:
        raise InstallerError(f"{' '.join(tool)} took too long", error_class=ErrorClass.TIMEOUT,
                             remedy="Check network access to github.com, or use a local kfp.manifests folder.") \
            from exc
    if proc.returncode != 0:
        import logging
        logging.getLogger("mlops_install.kfp").warning("%s failed:\n%s", " ".join(tool), proc.stderr.strip())
        cause = _network_cause(proc.stderr)
        if cause:  # one line with its cause; the whole output is in the debug log
            raise InstallerError(f"cannot fetch the KFP manifests from github.com: {cause}",
                                 error_class=ErrorClass.TRANSIENT,
                                 remedy="Building the upstream manifests needs network access to github.com and "
                                        "git; offline, set kfp.manifests to a folder of rendered KFP manifests.")
        raise InstallerError(f"{' '.join(tool)} failed: {proc.stderr.strip()[-2000:]}",
                             error_class=ErrorClass.TOOL_MISSING if "git" in proc.stderr.lower() else
                             ErrorClass.UNEXPECTED,
                             remedy="Building the upstream manifests needs network access to github.com and git; "
                                    "for air-gapped use set kfp.manifests to a local folder.")
    return _parse_yaml(text=proc.stdout)


_NETWORK = ("could not resolve host", "no such host", "network is unreachable", "connection refused",
            "connection timed out", "temporary failure in name resolution", "dial tcp", "i/o timeout",
            "unable to access", "failed to connect")


def _network_cause(stderr: str) -> str:
    """The line of kustomize's (git's) output that says why github.com could not be reached, shortened; "" if none."""
    for line in stderr.splitlines():
        low = line.lower()
        for needle in _NETWORK:
            i = low.find(needle)
            if i >= 0:
                return line[i:].strip().rstrip(".")[:160]
    return ""


def _load_files(path: str) -> list[dict]:
    from installer.files import read_regular
    read_regular(path, limit=16 << 20, what="manifest file")  # a regular file (no FIFO, device), size-limited
    return _parse_yaml(path=path)


# In a child Python: the parse's CPU (~50 ms for KFP's cluster-scoped.yaml, most of it in Python constructors) then
# runs outside this process, instead of in a worker thread that takes turns with the event loop for the GIL (the
# wizard's loop stalled 40-90 ms on it). Objects come back as JSON, whose parse here is one fast call (~2 ms).
_PARSE_CHILD = ("import json, sys, yaml\n"
                "L = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)\n"
                "src = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin\n"
                "json.dump([d for d in yaml.load_all(src, Loader=L) if d], sys.stdout)\n")


def _parse_yaml(*, path: str | None = None, text: str | None = None) -> list[dict]:
    """The non-empty YAML documents of ``path`` or ``text``, parsed in a child process (see ``_PARSE_CHILD``); in
    this process when that fails (no child, or a document that JSON can't carry), which also gives YAML's own
    error message for a broken file."""
    argv = [sys.executable, "-c", _PARSE_CHILD] + ([path] if path is not None else [])
    try:
        # no terminal for the child (the wizard may own it): stdin is the text, or nothing
        stdin = {"input": text} if text is not None else {"stdin": subprocess.DEVNULL}
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, **stdin)
        if proc.returncode == 0:
            return json.loads(proc.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        pass
    if path is not None:
        with open(path) as f:
            return [d for d in yaml.load_all(f, Loader=_Loader) if d]
    return [d for d in yaml.load_all(text or "", Loader=_Loader) if d]


def apply_overlay_py(objs: list[dict], k: dict) -> list[dict]:
    """The overlay in Python (no kustomize tool): what ``kustomize build`` does with this kustomization."""
    ns = k.get("namespace")
    labels = {}
    for item in k.get("labels", []):
        labels.update(item.get("pairs", {}))
    out = []
    drops = set()
    merges: dict[tuple[str, str], dict] = {}
    for p in k.get("patches", []):
        doc = yaml.safe_load(p["patch"])
        key = (p["target"]["kind"], p["target"]["name"])
        if doc.get("$patch") == "delete":
            drops.add(key)
        else:
            merges[key] = doc
    old_ns = {o["metadata"]["name"] for o in objs if o.get("kind") == "Namespace"} | \
        {o["metadata"]["namespace"] for o in objs if o.get("metadata", {}).get("namespace")}
    for o in objs:
        o = copy.deepcopy(o)
        kind, md = o.get("kind"), o.setdefault("metadata", {})
        if (kind, md.get("name")) in drops:
            continue
        m = merges.get((kind, md.get("name")))
        if m:
            if "data" in m:
                o.setdefault("data", {}).update(m["data"])
            ann = (m.get("metadata") or {}).get("annotations")
            if ann:
                md.setdefault("annotations", {}).update(ann)
        if ns:
            if kind == "Namespace":
                md["name"] = ns
            elif kind not in CLUSTER_SCOPED_KINDS:
                md["namespace"] = ns
            if kind in ("RoleBinding", "ClusterRoleBinding"):
                for s in o.get("subjects") or []:
                    if s.get("kind") == "ServiceAccount" and s.get("namespace") in old_ns:
                        s["namespace"] = ns
        if labels:
            md.setdefault("labels", {}).update(labels)
        out.append(o)
    return out


def _namespaces_in(objs: list[dict]) -> set[str]:
    return {o["metadata"]["name"] for o in objs if o.get("kind") == "Namespace"} | \
        {o["metadata"]["namespace"] for o in objs if o.get("metadata", {}).get("namespace")}


def render_part(answers: Answers, part: str, values: dict[str, str] | None = None,
                workdir: Path | None = None, tool: str = "auto") -> Rendered:
    """Render ``cluster-scoped`` or ``env`` (the namespaced objects). ``workdir`` keeps the overlay (else a temp dir
    that is removed).

    ``tool``: ``kustomize`` (``kustomize build`` or ``kubectl kustomize``), ``python`` (the same overlay applied in
    Python; rendered sources only), or ``auto``: Python for already-rendered files whose namespace stays the same
    (the overlay is then a plain data merge, a deletion, annotations and labels: identical output, measured, and
    ~10x faster than a kubectl process), kustomize otherwise."""
    src = find_source(answers)
    base = src.cluster_scoped if part == "cluster-scoped" else src.env
    preloaded: list[dict] | None = None
    if tool == "auto":
        tool = "kustomize"
        if src.kind == "rendered":
            preloaded = _load_files(base)
            if _namespaces_in(preloaded) <= {answers.kfp.namespace} or kustomize_tool() is None:
                tool = "python"
    kz = kustomize_tool() if tool == "kustomize" else None
    if tool == "kustomize" and kz is None:
        if src.kind == "rendered":
            tool = "python"
        else:
            raise InstallerError("Rendering the KFP manifests needs kustomize or kubectl, and neither is installed",
                                 error_class=ErrorClass.TOOL_MISSING,
                                 remedy="Install kubectl (it includes kustomize), or set kfp.manifests to a folder "
                                        "holding the rendered cluster-scoped.yaml and env-gcp.yaml.")
    if tool == "python" and src.kind != "rendered":
        raise InstallerError("the Python overlay needs rendered manifests", error_class=ErrorClass.BAD_INPUT)
    own_tmp = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="mlops-install-kfp-")) if own_tmp else workdir
    try:
        kdir = (wd / part).resolve()
        kdir.mkdir(parents=True, exist_ok=True)
        # kustomize takes local bases only as paths relative to the kustomization; a rendered file must lie inside
        # the kustomization's folder (the default load restrictor), so its content is copied there (read as a
        # regular file: no FIFO, no device, size-limited)
        if src.kind == "rendered" and tool == "kustomize":
            from installer.files import read_regular, write_file
            write_file(kdir / "base.yaml", read_regular(base, limit=16 << 20, what="manifest file"), durable=False)
            ref = "base.yaml"
        else:
            ref = base if src.kind == "upstream" else os.path.relpath(base, kdir)
        k = overlay(answers, part, ref, values)
        from installer.files import write_file
        write_file(kdir / "kustomization.yaml", yaml.dump(k, Dumper=_ReadableDumper, sort_keys=False, width=120),
                   durable=False)
        if tool == "kustomize":
            objs = _build(kz, kdir)
            used = " ".join(kz)
        else:
            objs = apply_overlay_py(preloaded if preloaded is not None else _load_files(base), k)
            used = "the Python overlay"
    finally:
        if own_tmp:
            shutil.rmtree(wd, ignore_errors=True)
    for kind, name in DROPPED:  # whatever the tool did, the installer's objects are never overwritten
        objs = [o for o in objs if not (o.get("kind") == kind and o.get("metadata", {}).get("name") == name)]
    if part == "env" and values:
        objs = fill_var_targets(objs, values)
    return Rendered(part, objs, k, used, src)


def split_scoped(objs: list[dict]) -> tuple[list[dict], list[dict]]:
    cs = [o for o in objs if o.get("kind") in CLUSTER_SCOPED_KINDS]
    ns = [o for o in objs if o.get("kind") not in CLUSTER_SCOPED_KINDS]
    return cs, ns


# -- command line ---------------------------------------------------------------------------------------------------
def _connection_from_journal(answers: Answers) -> tuple[str | None, str | None]:
    try:
        from backends.infra.bucket import BucketOutputs
        from backends.infra.sql import SqlOutputs
        from installer.journal import Journal
        j = Journal(answers.env_id)
        if not j.exists:
            return None, None
        return (SqlOutputs.of(j.step("sql-instance").get("outputs")).connection_name,
                BucketOutputs.of(j.step("bucket").get("outputs")).bucket)
    except Exception:
        return None, None


def write_review(answers: Answers, out: Path, connection_name: str | None = None) -> list[Path]:
    """Write the overlay (``overlay/<part>/kustomization.yaml``) and the rendered YAML into ``out``."""
    from installer.files import write_file

    out.mkdir(parents=True, exist_ok=True)
    conn, bucket = _connection_from_journal(answers)
    values = params(answers, connection_name or conn, bucket)
    written = []
    for part in ("cluster-scoped", "env"):
        r = render_part(answers, part, values, workdir=out / "overlay")
        written.append(out / "overlay" / part / "kustomization.yaml")
        f = out / f"{part}.yaml"
        # 0600: the rendered objects may hold secrets (a folder's Secrets); written whole, a link at the name is
        # refused, never followed
        write_file(f, f"# {r.source.description}; built with {r.tool}; {len(r.objects)} objects\n" + r.yaml(),
                   mode=0o600)
        written.append(f)
    return written
