"""Label and field selectors, as the API server parses them."""
from __future__ import annotations

import re
from typing import Callable

_KEY_RE = re.compile(r"^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


class SelectorError(ValueError):
    pass


def _split_top(s: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unexpected ')' in {s!r}")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise SelectorError(f"unbalanced '(' in {s!r}")
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<vals>[^)]*)\)$")
_CMP_RE = re.compile(r"^(?P<key>[^!=<>\s]+)\s*(?P<op>==|=|!=|>|<)\s*(?P<val>\S*)$")


def parse_label_selector(s: str | None) -> Callable[[dict], bool]:
    """Return a predicate over a labels dict. Supports =, ==, !=, in, notin, exists, !exists, >, <."""
    if not s:
        return lambda labels: True
    reqs: list[Callable[[dict], bool]] = []
    for part in _split_top(s):
        m = _SET_RE.match(part)
        if m:
            key, op = m.group("key"), m.group("op")
            vals = {v.strip() for v in m.group("vals").split(",") if v.strip()}
            _check_key(key)
            if op == "in":
                reqs.append(lambda l, k=key, vs=vals: k in l and l[k] in vs)
            else:
                reqs.append(lambda l, k=key, vs=vals: k not in l or l[k] not in vs)
            continue
        m = _CMP_RE.match(part)
        if m:
            key, op, val = m.group("key"), m.group("op"), m.group("val")
            _check_key(key)
            if op in ("=", "=="):
                reqs.append(lambda l, k=key, v=val: l.get(k) == v)
            elif op == "!=":
                reqs.append(lambda l, k=key, v=val: l.get(k) != v)
            else:
                try:
                    num = int(val)
                except ValueError as exc:
                    raise SelectorError(f"for 'Gt', 'Lt' operators, the value must be an integer: {part}") from exc
                if op == ">":
                    reqs.append(lambda l, k=key, n=num: k in l and l[k].lstrip("-").isdigit() and int(l[k]) > n)
                else:
                    reqs.append(lambda l, k=key, n=num: k in l and l[k].lstrip("-").isdigit() and int(l[k]) < n)
            continue
        if part.startswith("!"):
            key = part[1:].strip()
            _check_key(key)
            reqs.append(lambda l, k=key: k not in l)
            continue
        _check_key(part)
        reqs.append(lambda l, k=part: k in l)
    return lambda labels: all(r(labels or {}) for r in reqs)


def _check_key(key: str) -> None:
    if not _KEY_RE.match(key):
        raise SelectorError(f"unable to parse requirement: invalid label key {key!r}")


def _get_path(obj: dict, path: str):
    cur = obj
    for p in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


# Field labels each kind supports besides metadata.name / metadata.namespace.
FIELD_LABELS: dict[str, set[str]] = {
    "Pod": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"},
    "Event": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "source", "type"},
    "Secret": {"type"},
    "Namespace": {"status.phase"},
    "Node": {"spec.unschedulable"},
    "ReplicaSet": {"status.replicas"},
    "Job": {"status.successful"},
}


def parse_field_selector(s: str | None, kind: str) -> Callable[[dict], bool]:
    if not s:
        return lambda obj: True
    allowed = {"metadata.name", "metadata.namespace"} | FIELD_LABELS.get(kind, set())
    reqs = []
    for part in [p for p in re.split(r"(?<!\\),", s) if p.strip()]:
        m = re.match(r"^\s*([^!=\s]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise SelectorError(f"invalid selector: '{s}'; can't understand '{part}'")
        key, op, val = m.groups()
        val = val.replace("\\,", ",").replace("\\=", "=").replace("\\\\", "\\")
        if key not in allowed:
            raise SelectorError(f'field label not supported: {key}')

        def get(obj, k=key):
            v = _get_path(obj, k)
            if v is None:
                return ""
            if isinstance(v, bool):
                return "true" if v else "false"
            return str(v)

        if op == "!=":
            reqs.append(lambda o, g=get, v=val: g(o) != v)
        else:
            reqs.append(lambda o, g=get, v=val: g(o) == v)
    return lambda obj: all(r(obj) for r in reqs)
