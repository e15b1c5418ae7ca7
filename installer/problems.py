"""A problem found in the answers (a field path, a line, a message and a hint), and the helpers that shape
problem lists and values for messages. Used by the answers file's parser (``installer.answers_yaml``), the field
checks (``installer.field_checks``), ``installer.validation`` and ``installer.inputs``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_PROBLEMS = 50  # problems listed at most; the rest are counted ("and N more")


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


def capped(problems: list[Problem], limit: int = MAX_PROBLEMS) -> list[Problem]:
    """At most ``limit`` problems, the last one saying how many more there were."""
    if len(problems) <= limit:
        return problems
    return problems[:limit] + [Problem("", None, f"and {len(problems) - limit} more problem(s)")]
