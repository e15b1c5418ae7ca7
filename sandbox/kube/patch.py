"""Patch semantics: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge (approximated) and
server-side apply (approximated as create-or-merge with list-map merge keys, plus removal of fields the same
field manager applied before and no longer applies)."""
from __future__ import annotations

import json
from typing import Any


def fast_copy(obj: Any) -> Any:
    """A deep copy of JSON data (much faster than copy.deepcopy for large objects such as CRDs)."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return json.loads(json.dumps(obj))


def load_apply_body(raw: bytes) -> Any:
    """Apply bodies are YAML; kubectl and most clients send JSON, which is YAML too and much faster to parse."""
    text = raw.decode() or "{}"
    try:
        return json.loads(text)
    except ValueError:
        pass
    import yaml
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return json.loads(json.dumps(yaml.load(text, Loader=loader), default=str))


class PatchError(ValueError):
    pass


class PatchTestFailed(PatchError):
    pass


# ---------------------------------------------------------------- merge patch (RFC 7386)
def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return fast_copy(patch)
    result = fast_copy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# ---------------------------------------------------------------- JSON patch (RFC 6902)
def _unescape(tok: str) -> str:
    return tok.replace("~1", "/").replace("~0", "~")


def _parse_pointer(ptr: str) -> list[str]:
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise PatchError(f"invalid JSON pointer {ptr!r}")
    return [_unescape(t) for t in ptr[1:].split("/")]


def _resolve_parent(doc: Any, toks: list[str]):
    cur = doc
    for t in toks[:-1]:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError(f"path segment {t!r} not found")
            cur = cur[t]
        elif isinstance(cur, list):
            try:
                cur = cur[int(t)]
            except (ValueError, IndexError) as exc:
                raise PatchError(f"invalid index {t!r}") from exc
        else:
            raise PatchError(f"cannot traverse into {t!r}")
    return cur


def _get(doc: Any, toks: list[str]) -> Any:
    if not toks:
        return doc
    parent = _resolve_parent(doc, toks)
    last = toks[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {last!r} not found")
        return parent[last]
    if isinstance(parent, list):
        try:
            return parent[int(last)]
        except (ValueError, IndexError) as exc:
            raise PatchError(f"invalid index {last!r}") from exc
    raise PatchError("cannot index a scalar")


def _remove(doc: Any, toks: list[str]) -> Any:
    parent = _resolve_parent(doc, toks)
    last = toks[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}")
        return parent.pop(last)
    if isinstance(parent, list):
        try:
            return parent.pop(int(last))
        except (ValueError, IndexError) as exc:
            raise PatchError(f"invalid index {last!r}") from exc
    raise PatchError("cannot remove from a scalar")


def _add(doc: Any, toks: list[str], value: Any) -> Any:
    if not toks:
        return value
    parent = _resolve_parent(doc, toks)
    last = toks[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                idx = int(last)
            except ValueError as exc:
                raise PatchError(f"invalid index {last!r}") from exc
            if idx < 0 or idx > len(parent):
                raise PatchError(f"index {idx} out of range")
            parent.insert(idx, value)
    else:
        raise PatchError("cannot add to a scalar")
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = fast_copy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}")
        kind, toks = op["op"], _parse_pointer(op["path"])
        if kind == "add":
            doc = _add(doc, toks, fast_copy(op.get("value")))
        elif kind == "remove":
            _remove(doc, toks)
        elif kind == "replace":
            _get(doc, toks)
            if not toks:
                doc = fast_copy(op.get("value"))
            else:
                _remove(doc, toks)
                doc = _add(doc, toks, fast_copy(op.get("value")))
        elif kind in ("move", "copy"):
            src = _parse_pointer(op.get("from", ""))
            val = _get(doc, src)
            if kind == "move":
                _remove(doc, src)
            else:
                val = fast_copy(val)
            doc = _add(doc, toks, val)
        elif kind == "test":
            if _get(doc, toks) != op.get("value"):
                raise PatchTestFailed(f"testing value {op['path']} failed")
        else:
            raise PatchError(f"unknown JSON patch operation {kind!r}")
    return doc


# ---------------------------------------------------------------- strategic merge / apply merge
def _merge_key(items: list) -> str | None:
    """The list-map key the real schema gives well-known lists (containers, env, ports, volumes, ...)."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in ("containerPort", "port", "mountPath", "devicePath", "name", "type", "uid", "ip"):
        if all(key in i for i in items):
            # lists of conditions are keyed by type; lists of named things by name
            return key
    return None


def strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return fast_copy(patch)
    if patch.get("$patch") == "replace":
        return {k: fast_copy(v) for k, v in patch.items() if not k.startswith("$")}
    if patch.get("$patch") == "delete":
        return None
    result = fast_copy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            result.pop(k, None)
        elif isinstance(v, list) and isinstance(result.get(k), list):
            result[k] = _merge_list(result[k], v)
        elif isinstance(v, dict):
            merged = strategic_merge(result.get(k), v)
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list):
            result[k] = [strip_directives(i) for i in v if not (isinstance(i, dict) and i.get("$patch") == "delete")]
        else:
            result[k] = fast_copy(v)
    return result


def strip_directives(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: strip_directives(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [strip_directives(x) for x in v]
    return v


def _merge_list(cur: list, patch: list) -> list:
    key = _merge_key([i for i in patch if not (isinstance(i, dict) and set(i) <= {"$patch"})]) or _merge_key(cur)
    if not key or not all(isinstance(i, dict) for i in cur) or not all(isinstance(i, dict) for i in patch):
        return [strip_directives(i) for i in patch]
    if not all(key in i for i in cur) or not all(key in i for i in patch):
        return [strip_directives(i) for i in patch]
    out = [fast_copy(i) for i in cur]
    index = {i[key]: n for n, i in enumerate(out)}
    deleted = set()
    for item in patch:
        k = item[key]
        if item.get("$patch") == "delete":
            deleted.add(k)
            continue
        if k in index:
            out[index[k]] = strategic_merge(out[index[k]], item)
        else:
            index[k] = len(out)
            out.append(strip_directives(item))
    return [i for i in out if i[key] not in deleted]


# ---------------------------------------------------------------- managed fields (FieldsV1, minimal)
def fields_v1(obj: Any) -> dict:
    """The field set of an applied configuration, in FieldsV1 form (list-maps keyed when a key is known)."""
    if not isinstance(obj, dict):
        return {}
    out: dict = {}
    for k, v in obj.items():
        if k in ("apiVersion", "kind") and obj is not None and isinstance(obj, dict) and "metadata" in obj:
            continue
        if isinstance(v, dict):
            out[f"f:{k}"] = fields_v1(v) if v else {}
            if v:
                out[f"f:{k}"]["."] = {}
        elif isinstance(v, list) and _merge_key(v):
            key = _merge_key(v)
            sub: dict = {}
            for item in v:
                entry = fields_v1(item)
                entry["."] = {}
                sub["k:" + json.dumps({key: item[key]}, separators=(",", ":"))] = entry
            out[f"f:{k}"] = sub
        else:
            out[f"f:{k}"] = {}
    return out


def leaf_paths(fs: dict, prefix: tuple = ()) -> set[tuple]:
    paths = set()
    for k, v in fs.items():
        if k == ".":
            continue
        p = prefix + (k,)
        if v and set(v) - {"."}:
            paths |= leaf_paths(v, p)
        else:
            paths.add(p)
    return paths


def _remove_path(obj: Any, path: tuple) -> None:
    """Remove a field given as a FieldsV1 path (("f:spec", "f:x") / ("f:env", 'k:{"name":"A"}'))."""
    cur = obj
    for n, seg in enumerate(path):
        last = n == len(path) - 1
        if seg.startswith("f:") and isinstance(cur, dict):
            name = seg[2:]
            if name not in cur:
                return
            if last:
                del cur[name]
                return
            cur = cur[name]
        elif seg.startswith("k:") and isinstance(cur, list):
            want = json.loads(seg[2:])
            for i, item in enumerate(cur):
                if isinstance(item, dict) and all(item.get(a) == b for a, b in want.items()):
                    if last:
                        del cur[i]
                        return
                    cur = item
                    break
            else:
                return
        else:
            return


def _prune_empty(obj: Any, applied: Any) -> None:
    """Drop maps the removal emptied (only where the apply no longer mentions them)."""
    if not isinstance(obj, dict):
        return
    for k in list(obj):
        v = obj[k]
        a = applied.get(k) if isinstance(applied, dict) else None
        if isinstance(v, dict):
            _prune_empty(v, a)
            if not v and a is None:
                del obj[k]


def apply_merge(live: dict, applied: dict, manager: str, managed: list[dict]) -> dict:
    """Server-side apply approximation: merge `applied` into `live`; fields this manager applied before and
    no longer applies are removed unless another manager also owns them."""
    result = strategic_merge(live, strip_nulls(applied))
    previous = next((m for m in managed if m.get("manager") == manager and m.get("operation") == "Apply"), None)
    if previous:
        old = leaf_paths(previous.get("fieldsV1") or {})
        new = leaf_paths(fields_v1(applied))
        others = set()
        for m in managed:
            if m is not previous and m.get("manager") != manager:
                others |= leaf_paths(m.get("fieldsV1") or {})
        for path in sorted(old - new - others, key=len, reverse=True):
            if path and path[0] in ("f:apiVersion", "f:kind"):
                continue
            if len(path) >= 2 and path[0] == "f:metadata" and path[1] in ("f:name", "f:namespace"):
                continue
            _remove_path(result, path)
        _prune_empty(result, applied)
    return result


def strip_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: strip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [strip_nulls(x) for x in v]
    return v
