"""Byte-compile the project's packages before a timing benchmark, as `make` does (see the Makefile's PYC).

An editable install is read from the tree; where PYTHONDONTWRITEBYTECODE is set (as on these machines) nothing
writes the .pyc files, so each process would compile every project module it imports: slower start-up, and a
module imported in a thread holds the GIL while it compiles. An installed package (pip) is byte-compiled at install;
this makes the tree match it. Only changed files are compiled again.
"""
from __future__ import annotations

import compileall
import io
import contextlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("installer", "backends", "screens", "sandbox")


def ensure_compiled() -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        for p in PACKAGES:
            compileall.compile_dir(str(REPO / p), quiet=1, workers=0)
