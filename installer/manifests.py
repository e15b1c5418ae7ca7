"""Where the rendered Kubeflow Pipelines manifests come from when the answers leave ``kfp.manifests`` at its default:
the one lookup that ``demo``, ``--sandbox`` and the wizard (screens/services.py) all use.

The sandbox has no network, and neither do air-gapped machines: a folder of rendered KFP 2.14.4 manifests is used
instead of building upstream's kustomize from github.com when one is found. In this order: ``--manifests DIR``,
``$MLOPS_INSTALL_KFP_MANIFESTS``, ``../shared/fixtures/kfp-2.14.4`` beside this checkout, else beside the checkout it
was cloned from. No third-party imports (the wizard calls it before its first frame).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import BadInput

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_REL = Path("shared") / "fixtures" / "kfp-2.14.4"
ENV_VAR = "MLOPS_INSTALL_KFP_MANIFESTS"
UPSTREAM = "upstream"
BESIDE = "beside the checkout"


def _origin_checkout(repo: Path) -> Path | None:
    """The local folder this checkout was cloned from (``git clone /work/main /tmp/x``), read from .git/config."""
    try:
        text = (repo / ".git" / "config").read_text()
    except OSError:
        return None
    m = re.search(r'\[remote "origin"\][^\[]*?\burl\s*=\s*(\S+)', text)
    if not m:
        return None
    url = m.group(1)
    if url.startswith("file://"):
        url = url[len("file://"):]
    if "://" in url or ":" in url.split("/")[0]:  # a remote (https://, git@host:): nothing local
        return None
    origin = (repo / url).resolve() if not os.path.isabs(url) else Path(url)
    return origin if origin.is_dir() else None


def local_manifests(explicit: str | None = None, repo: Path = REPO_ROOT) -> tuple[Path | None, str]:
    """The local rendered KFP manifests and where they were found (``"--manifests"``, ``"MLOPS_INSTALL_KFP_MANIFESTS"``,
    ``"beside the checkout"``, ``"beside X, this clone's origin"``); ``(None, "")``: none, so upstream (network).

    An explicit folder (the option or the variable) that is not a folder raises BadInput."""
    for value, why in ((explicit, "--manifests"), (os.environ.get(ENV_VAR), ENV_VAR)):
        if value:
            p = Path(value).expanduser()
            if not p.is_dir():
                raise BadInput(f"{why} {value} is not a folder",
                               remedy="give a folder of rendered Kubeflow Pipelines manifests (e.g. "
                                      "../shared/fixtures/kfp-2.14.4)")
            return p.resolve(), why
    beside = repo.parent / FIXTURE_REL
    if beside.is_dir():  # not resolved: ``shared`` beside the checkout may be a link, and is named as it is found
        return beside, BESIDE
    origin = _origin_checkout(repo)
    if origin is not None and (origin.parent / FIXTURE_REL).is_dir():
        return (origin.parent / FIXTURE_REL).resolve(), f"beside {origin}, this clone's origin"
    return None, ""


def shown(manifests: str, repo: Path = REPO_ROOT) -> str:
    """A local folder as the plan, Review and plain mode name it: relative to the checkout when it lies beside it
    (``../shared/fixtures/kfp-2.14.4``, the same wherever the checkout is), else as given."""
    if manifests != UPSTREAM and manifests.startswith(str(repo.parent) + os.sep):
        return os.path.relpath(manifests, repo)
    return manifests


def describe(manifests: str | None, found: str = "") -> str:
    """How Review and plain mode name the source: "upstream (github.com, needs network)" or "DIR (why)"."""
    if not manifests or manifests == UPSTREAM:
        return "upstream: built from github.com (needs network access and git)"
    return f"{shown(manifests)} ({found})" if found else shown(manifests)
