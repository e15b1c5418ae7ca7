"""What a Kubeflow Pipelines release holds, and how a local ``kfp.manifests`` folder compares with it.

The release's object list is data in the repository: ``release-<version>.json`` beside this module, the (kind, name) of every object
of the rendered release per part (``cluster-scoped``, ``env``) and a digest of each cluster-scoped RBAC object's
grants (a ClusterRole's rules, a ClusterRoleBinding's roleRef and subjects, namespaces left out since the overlay
changes them). It is generated once per supported release, with

    .venv/bin/python -m backends.kfp.release DIR > backends/kfp/release-2.14.4.json

where DIR holds ``cluster-scoped.yaml`` and ``env-gcp.yaml`` as ``kustomize build`` (v5.5.0) renders upstream's
``manifests/kustomize/cluster-scoped-resources`` and ``env/gcp`` at the release tag (kubeflow/pipelines@2.14.4); the
installer never reads DIR itself.

- ``check_folder(root)``: for ``validate``: the folder's layout, that its files parse into Kubernetes objects, and
  that their kinds are kinds the release has (problems as text; empty when fine).
- ``compare(answers, objects, part)``: objects added or missing against the release, and cluster-scoped RBAC that
  is not the release's (new, or granting something else). ``review(answers)`` does it for both parts of a local
  folder; ``plan``/the review screen show it and the install asks for consent (``--yes``) before applying it.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RELEASES = Path(__file__).resolve().parent  # release-<version>.json beside this module (package data)
PARTS = {"cluster-scoped": "cluster-scoped.yaml", "env": "env-gcp.yaml"}
CLUSTER_RBAC = ("ClusterRole", "ClusterRoleBinding")
UPSTREAM_NAMESPACE = "kubeflow"
MAX_MANIFEST_BYTES = 16 << 20  # KFP's rendered files are ~250 kB
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def rbac_digest(obj: dict[str, Any]) -> str:
    """What a cluster-scoped RBAC object grants, as a short digest (labels, annotations and subject namespaces,
    which the installer's overlay sets, are left out)."""
    if obj.get("kind") == "ClusterRole":
        body: Any = {"rules": obj.get("rules") or [], "aggregationRule": obj.get("aggregationRule")}
    else:
        body = {"roleRef": obj.get("roleRef"),
                "subjects": sorted(({k: v for k, v in (s or {}).items() if k != "namespace"}
                                    for s in obj.get("subjects") or []), key=lambda s: json.dumps(s, sort_keys=True))}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _ref(kind: str, name: str) -> str:
    return f"{kind}/{name}"


def generate(folder: str | os.PathLike, version: str) -> dict[str, Any]:
    """The release file's content from a folder of the release's rendered files (see the module's docstring)."""
    out: dict[str, Any] = {"version": version, "objects": {}, "rbac": {},
                           "generated_by": f"python -m backends.kfp.release DIR (kustomize build of "
                                           f"kubeflow/pipelines@{version} manifests/kustomize)"}
    for part, fname in PARTS.items():
        docs = [d for d in yaml.load_all(Path(folder, fname).read_text(), Loader=_Loader) if d]
        out["objects"][part] = sorted({_ref(d["kind"], d["metadata"]["name"]) for d in docs})
        for d in docs:
            if d["kind"] in CLUSTER_RBAC:
                out["rbac"][_ref(d["kind"], d["metadata"]["name"])] = rbac_digest(d)
    return out


@functools.lru_cache(maxsize=8)
def release(version: str) -> dict[str, Any] | None:
    """The shipped object list of ``version``, or None when the installer has none."""
    f = RELEASES / f"release-{version}.json"
    if not f.is_file():
        return None
    return json.loads(f.read_text())


def expected_kinds(version: str) -> set[str]:
    rel = release(version) or release("2.14.4") or {"objects": {}}
    return {r.split("/", 1)[0] for refs in rel["objects"].values() for r in refs}


# ---------------------------------------------------------------------------------------------------------------
# validate: the folder itself

def _outside_links(root: Path, limit: int = 5000, shown: int = 5) -> list[str]:
    """Links under ``root`` that lead outside it (kustomize or the installer would read a file from elsewhere);
    at most ``shown`` are named."""
    out: list[str] = []
    seen = 0
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            seen += 1
            if seen > limit:
                return out + [f"more than {limit} entries: not a manifests folder"]
            p = os.path.join(dirpath, n)
            if os.path.islink(p):
                target = os.path.realpath(p)
                if os.path.commonpath([real_root, target]) != real_root:
                    out.append(f"{os.path.relpath(p, root)} is a link to {target}, outside the folder")
                    if len(out) >= shown:
                        return out
    return out


def _load(path: Path) -> tuple[list[Any], str | None]:
    from installer.files import UnsafePath, read_regular
    try:
        raw = read_regular(path, limit=MAX_MANIFEST_BYTES, what="manifest file")
        return [d for d in yaml.load_all(raw, Loader=_Loader) if d is not None], None
    except UnsafePath as exc:
        return [], exc.message
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        return [], f"{path.name} does not parse as YAML: {str(exc).splitlines()[0][:200]}"


def check_objects(docs: list[Any], where: str, version: str) -> list[str]:
    kinds = expected_kinds(version)
    problems = []
    for i, d in enumerate(docs, 1):
        if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind") or \
                not isinstance(d.get("metadata"), dict) or not d["metadata"].get("name"):
            problems.append(f"{where}: document {i} is not a Kubernetes object (apiVersion, kind, metadata.name)")
        elif d["kind"] not in kinds:
            problems.append(f"{where}: {d['kind']} {d['metadata']['name']}: kind {d['kind']} is not part of Kubeflow "
                            f"Pipelines {version}")
        if len(problems) >= 20:
            break
    if not docs:
        problems.append(f"{where} holds no objects")
    return problems


@functools.lru_cache(maxsize=16)
def _check_cached(root: str, version: str, stamp: tuple) -> tuple[str, ...]:
    p = Path(root)
    problems: list[str] = []
    cs, env = p / PARTS["cluster-scoped"], p / PARTS["env"]
    if cs.exists() or env.exists():
        problems += _outside_links(p)
        for part, f in (("cluster-scoped", cs), ("env", env)):
            if not f.exists():
                problems.append(f"{f.name} is missing (a rendered folder holds {' and '.join(PARTS.values())})")
                continue
            docs, err = _load(f)
            problems += [err] if err else check_objects(docs, f.name, version)
        return tuple(problems)
    for base in (p, p / "manifests" / "kustomize"):
        kz = [base / "cluster-scoped-resources" / "kustomization.yaml", base / "env" / "gcp" / "kustomization.yaml"]
        if all(k.is_file() for k in kz):
            problems += _outside_links(p)
            for k in kz:
                docs, err = _load(k)
                if err or len(docs) != 1 or not isinstance(docs[0], dict):
                    problems.append(err or f"{k.relative_to(p)} is not a kustomization")
            return tuple(problems)
    problems.append(f"{root} holds no Kubeflow Pipelines manifests: neither {' + '.join(PARTS.values())} nor the "
                    "kustomizations cluster-scoped-resources/ + env/gcp/ (optionally under manifests/kustomize/)")
    return tuple(problems)


def check_folder(root: str | os.PathLike, version: str = "2.14.4") -> list[str]:
    """Problems of a local manifests folder (empty when it is fine); cached per folder and file times."""
    p = Path(root)
    stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in
                  (p / n for n in PARTS.values()) if f.is_file() and not f.is_symlink())
    return list(_check_cached(str(p), version, stamp))


# ---------------------------------------------------------------------------------------------------------------
# plan, review and install: the rendered objects against the release

@dataclass
class Review:
    version: str
    known: bool = True  # the installer has the release's list
    added: list[str] = field(default_factory=list)  # "Kind/name" not in the release
    missing: list[str] = field(default_factory=list)  # in the release, not in the folder
    rbac: list[str] = field(default_factory=list)  # cluster-scoped RBAC not in the release, or granting otherwise

    @property
    def differs(self) -> bool:
        return bool(self.added or self.missing or self.rbac or not self.known)

    def lines(self) -> list[str]:
        if not self.known:
            return [f"the installer has no object list of Kubeflow Pipelines {self.version}: not compared"]
        out = []
        if self.rbac:
            out.append("cluster-wide permissions not in the release: " + ", ".join(self.rbac))
        if self.added:
            out.append(f"{len(self.added)} object(s) not in the release: " + ", ".join(self.added[:12])
                       + (" ..." if len(self.added) > 12 else ""))
        if self.missing:
            out.append(f"{len(self.missing)} object(s) of the release missing: " + ", ".join(self.missing[:12])
                       + (" ..." if len(self.missing) > 12 else ""))
        return out

    def merge(self, other: "Review") -> "Review":
        return Review(self.version, self.known and other.known, self.added + other.added,
                      self.missing + other.missing, self.rbac + other.rbac)


def compare(objects: list[dict], part: str, version: str, namespace: str = UPSTREAM_NAMESPACE) -> Review:
    """Compare the objects of ``part`` (raw or rendered: the overlay's namespace is mapped back) with the release."""
    rel = release(version)
    if rel is None:
        return Review(version, known=False)
    from .render import DROPPED
    dropped = {_ref(k, n) for k, n in DROPPED}

    def ref(o: dict) -> str:
        name = o.get("metadata", {}).get("name")
        if o.get("kind") == "Namespace" and name == namespace:
            name = UPSTREAM_NAMESPACE
        return _ref(str(o.get("kind")), str(name))

    have = {ref(o) for o in objects}
    want = set(rel["objects"].get(part, [])) - dropped
    rbac = []
    for o in objects:
        if o.get("kind") in CLUSTER_RBAC:
            r = ref(o)
            if rel["rbac"].get(r) != rbac_digest(o):
                rbac.append(r + (" (grants differ from the release)" if r in rel["rbac"] else ""))
    return Review(version, True, sorted(have - want - dropped), sorted(want - have), rbac)


def review(answers) -> Review | None:
    """The differences of a local ``kfp.manifests`` folder from its release (None for ``upstream``). Renders it
    (``render.render_part``) without the install's values: names and grants do not depend on them."""
    if answers.kfp.manifests == "upstream":
        return None
    from .render import render_part
    out = None
    for part in PARTS:
        r = render_part(answers, part, None)
        rv = compare(r.objects, part, answers.kfp.version, answers.kfp.namespace)
        out = rv if out is None else out.merge(rv)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2):
        print("usage: python -m backends.kfp.release DIR [VERSION]  (prints the release file's JSON)",
              file=sys.stderr)
        return 2
    print(json.dumps(generate(argv[0], argv[1] if len(argv) > 1 else "2.14.4"), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
