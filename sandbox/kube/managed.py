"""Managed fields (which field manager owns which field) and the conflicts of server-side apply.
"""
from __future__ import annotations

import json
from typing import Any

from .objects import now_ts
from .patch import fast_copy, fields_v1, leaf_paths
from .resources import Resource


def managed_update(res: Resource, old: dict | None, new: dict, manager: str, operation: str,
                    applied: dict | None = None, subresource: str = "") -> None:
    """Record in ``new``'s managedFields the fields ``manager`` set by this operation (Update: what changed;
    Apply: what it applied)."""
    if not manager:
        return
    md = new["metadata"]
    managed = [m for m in (md.get("managedFields") or []) if isinstance(m, dict)]
    if operation == "Apply":
        fs = fields_v1(_without_meta_noise(applied or {}))
    else:
        changed = _diff(_without_meta_noise(old or {}), _without_meta_noise(new))
        if not changed:
            md["managedFields"] = managed
            return
        fs = fields_v1(changed)
        prev = next((m for m in managed if m.get("manager") == manager and m.get("operation") == operation
                     and m.get("subresource", "") == subresource), None)
        if prev:
            fs = _merge_fields(prev.get("fieldsV1") or {}, fs)
    entry = {"manager": manager, "operation": operation, "apiVersion": res.api_version, "time": now_ts(),
             "fieldsType": "FieldsV1", "fieldsV1": fs}
    if subresource:
        entry["subresource"] = subresource
    managed = [m for m in managed if not (m.get("manager") == manager and m.get("operation") == operation
                                          and m.get("subresource", "") == subresource)]
    managed.append(entry)
    md["managedFields"] = managed


def _without_meta_noise(obj: dict) -> dict:
    out = fast_copy(obj)
    md = out.get("metadata")
    if isinstance(md, dict):
        for k in ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink",
                  "deletionTimestamp", "deletionGracePeriodSeconds"):
            md.pop(k, None)
    out.pop("apiVersion", None)
    out.pop("kind", None)
    return out


def _diff(old: Any, new: Any) -> Any:
    """The part of `new` that differs from `old` (maps recursively; other values whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = {}
        for k, v in new.items():
            if k not in old:
                out[k] = v
            elif old[k] != v:
                d = _diff(old[k], v)
                out[k] = d if d not in (None, {}) or not isinstance(v, dict) else v
        return out
    return new


def _merge_fields(a: dict, b: dict) -> dict:
    out = fast_copy(a)
    for k, v in b.items():
        out[k] = _merge_fields(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def _value_at(obj: Any, path: tuple) -> tuple[bool, Any]:
    cur = obj
    for seg in path:
        if seg.startswith("f:") and isinstance(cur, dict):
            if seg[2:] not in cur:
                return False, None
            cur = cur[seg[2:]]
        elif seg.startswith("k:") and isinstance(cur, list):
            want = json.loads(seg[2:])
            for item in cur:
                if isinstance(item, dict) and all(item.get(a) == b for a, b in want.items()):
                    cur = item
                    break
            else:
                return False, None
        else:
            return False, None
    return True, cur


def apply_conflicts(live: dict, applied: dict, manager: str,
                    managed: list[dict]) -> list[tuple[str, str, str]]:
    """The fields ``applied`` would change that another manager owns: (manager, its apiVersion, dotted path)."""
    mine = leaf_paths(fields_v1(_without_meta_noise(applied)))
    out = []
    for m in managed:
        if m.get("manager") == manager or m.get("subresource"):
            continue
        theirs = leaf_paths(m.get("fieldsV1") or {})
        for p in sorted(mine & theirs):
            ok_a, va = _value_at(applied, p)
            ok_l, vl = _value_at(live, p)
            if ok_a and (not ok_l or va != vl):
                out.append((m.get("manager", ""), m.get("apiVersion", ""), _dotted(p)))
    return out


def last_applied_paths(live: dict) -> set[str]:
    ann = (live.get("metadata") or {}).get("annotations") or {}
    text = ann.get("kubectl.kubernetes.io/last-applied-configuration")
    if not text:
        return set()
    try:
        last = json.loads(text)
    except ValueError:
        return set()
    return {_dotted(p) for p in leaf_paths(fields_v1(_without_meta_noise(last)))}


def take_ownership(managed: list[dict], applied: dict, manager: str) -> None:
    mine = leaf_paths(fields_v1(_without_meta_noise(applied)))
    for m in managed:
        if m.get("manager") == manager:
            continue
        fs = m.get("fieldsV1") or {}
        for p in mine & leaf_paths(fs):
            _drop_path(fs, p)


def _drop_path(fs: dict, path: tuple) -> None:
    cur = fs
    for seg in path[:-1]:
        cur = cur.get(seg)
        if not isinstance(cur, dict):
            return
    cur.pop(path[-1], None)


def _dotted(path: tuple) -> str:
    out = ""
    for seg in path:
        if seg.startswith("f:"):
            out += "." + seg[2:]
        else:
            out += "[" + seg[2:].strip("{}").replace('"', "").replace(":", "=") + "]"
    return out

