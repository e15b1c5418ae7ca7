"""Reading the answers file: its text (a regular file, bounded, UTF-8) and its YAML with the line of each field."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import BadInput
from .problems import Problem, _shorten

MAX_ANSWERS_BYTES = 1 << 20  # an answers file is ~2 kB; more is not an answers file (and must not cost minutes)


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
