"""The object store of one fake cluster: records by kind, resourceVersions, persistence (one JSON file per object
under ``STATE/objects/``), the registry of resources (built-in and from established CRDs), the dependents of an
object, and watches. ``Cluster`` (``cluster.py``) adds the API's verbs on top; the controllers (``controllers.py``,
``pods.py``) write through ``commit`` and ``persist``.

Everything here runs on the sandbox's asyncio loop thread; methods are synchronous.
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import os
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import errors as E
from .patch import fast_copy
from .resources import BUILTIN, Resource, resources_from_crd, version_priority

HISTORY = 5000


def now_ts(t: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if t is None else t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(s: str) -> float:
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp()


def condition_true(obj: dict, ctype: str) -> bool:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype and c.get("status") == "True":
            return True
    return False


@dataclass
class Watcher:
    store_key: str
    namespace: str | None
    label_pred: Callable[[dict], bool]
    field_pred: Callable[[dict], bool]
    resource: Resource
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)

    def matches(self, obj: dict | None) -> bool:
        if obj is None:
            return False
        if self.namespace and obj.get("metadata", {}).get("namespace") != self.namespace:
            return False
        return self.label_pred(obj.get("metadata", {}).get("labels") or {}) and self.field_pred(obj)


class ObjectStore:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.obj_dir = self.state_dir / "objects"
        self.obj_dir.mkdir(parents=True, exist_ok=True)
        self.rv = 0
        self.data: dict[str, dict[tuple[str, str], dict]] = collections.defaultdict(dict)
        self.history: collections.deque = collections.deque(maxlen=HISTORY)
        self.watchers: list[Watcher] = []
        self.resources: dict[tuple[str, str, str], Resource] = {}
        self.on_commit: list[Callable[[Resource, str, dict, dict | None], None]] = []
        self.ip_counter = 10
        self.kind_rv: dict[str, int] = {}  # store key -> resourceVersion of its last change
        self._store_key_res: dict[str, Resource] = {}
        self._load()
        self.rebuild_registry()

    # ------------------------------------------------------------------ persistence
    def _file_for(self, store_key: str, ns: str, name: str) -> Path:
        q = urllib.parse.quote
        return self.obj_dir / f"{q(store_key, safe='')}~{q(ns or '_', safe='')}~{q(name, safe='')}.json"

    def _load(self) -> None:
        meta = self.state_dir / "meta.json"
        if meta.exists():
            m = json.loads(meta.read_text())
            self.rv = int(m.get("rv", 0))
            self.ip_counter = int(m.get("ip_counter", 10))
        for f in sorted(self.obj_dir.glob("*.json")):
            try:
                rec = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            obj = rec["obj"]
            md = obj["metadata"]
            self.data[rec["store_key"]][(md.get("namespace", ""), md["name"])] = rec
            self.rv = max(self.rv, int(md.get("resourceVersion", "0") or 0))

    @staticmethod
    def _write_atomic(path: Path, text: str) -> None:
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)

    def persist(self, store_key: str, rec: dict | None, ns: str, name: str) -> None:
        path = self._file_for(store_key, ns, name)
        if rec is None:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        else:
            self._write_atomic(path, json.dumps({"store_key": store_key, **rec}, separators=(",", ":")))
        self._write_atomic(self.state_dir / "meta.json", json.dumps({"rv": self.rv, "ip_counter": self.ip_counter}))

    # ------------------------------------------------------------------ registry
    def rebuild_registry(self) -> None:
        res: dict[tuple[str, str, str], Resource] = {}
        for r in BUILTIN:
            res[(r.group, r.version, r.plural)] = r
        for rec in self.data.get("apiextensions.k8s.io~customresourcedefinitions", {}).values():
            crd = rec["obj"]
            if not condition_true(crd, "Established") or crd["metadata"].get("deletionTimestamp"):
                continue
            for r in resources_from_crd(crd):
                res.setdefault((r.group, r.version, r.plural), r)
        self.resources = res

    def lookup(self, group: str, version: str, plural: str) -> Resource | None:
        return self.resources.get((group, version, plural))

    def resource_for_kind(self, api_version: str, kind: str) -> Resource | None:
        group, _, version = api_version.rpartition("/")
        for r in self.resources.values():
            if r.group == group and r.version == version and r.kind == kind:
                return r
        return None

    def groups(self) -> list[dict]:
        """APIGroup entries (excluding the core group), in a stable order: built-in first, then CRD groups."""
        order: list[str] = []
        versions: dict[str, set[str]] = collections.defaultdict(set)
        for r in self.resources.values():
            if r.group and r.group not in order:
                order.append(r.group)
            if r.group:
                versions[r.group].add(r.version)
        out = []
        for g in order:
            vs = sorted(versions[g], key=version_priority)
            out.append({
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
            })
        return out

    def resources_in(self, group: str, version: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.group == group and r.version == version]

    # ------------------------------------------------------------------ records
    def _records(self, res: Resource) -> dict[tuple[str, str], dict]:
        return self.data[res.store_key]

    def get_record(self, res: Resource, ns: str, name: str) -> dict | None:
        return self._records(res).get((ns if res.namespaced else "", name))

    def _present(self, res: Resource, obj: dict) -> dict:
        out = fast_copy(obj)
        out["apiVersion"] = res.api_version
        out["kind"] = res.kind
        return out

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def commit(self, res: Resource, obj: dict, etype: str, old: dict | None, sim: dict | None = None,
               dry_run: bool = False) -> dict:
        """Store obj (new resourceVersion), persist it, notify watchers and controllers."""
        md = obj["metadata"]
        key = (md.get("namespace", "") if res.namespaced else "", md["name"])
        if dry_run:
            return obj
        md["resourceVersion"] = self._next_rv()
        self.kind_rv[res.store_key] = self.rv
        recs = self._records(res)
        if etype == "DELETED":
            rec = recs.pop(key, None)
            self.persist(res.store_key, None, *key)
        else:
            rec = recs.get(key)
            if rec is None:
                rec = {"obj": obj, "sim": sim or {}}
                recs[key] = rec
            else:
                rec["obj"] = obj
                if sim is not None:
                    rec["sim"] = sim
            self.persist(res.store_key, rec, *key)
        self._emit(res, etype, obj, old)
        for hook in list(self.on_commit):
            hook(res, etype, obj, old)
        return obj

    def _emit(self, res: Resource, etype: str, obj: dict, old: dict | None) -> None:
        snap = fast_copy(obj)
        self.history.append((self.rv, res.store_key, etype, snap, fast_copy(old) if old else None))
        for w in list(self.watchers):
            if w.store_key != res.store_key:
                continue
            ev = watch_event_for(w, etype, snap, old)
            if ev:
                w.queue.put_nowait(ev)

    # ------------------------------------------------------------------ read
    def get(self, res: Resource, ns: str, name: str) -> dict:
        rec = self.get_record(res, ns, name)
        if rec is None:
            raise E.not_found(res, name)
        return self._present(res, rec["obj"])

    def list(self, res: Resource, ns: str | None, label_pred, field_pred) -> list[dict]:
        out = []
        for (ons, _), rec in sorted(self._records(res).items()):
            if res.namespaced and ns and ons != ns:
                continue
            obj = rec["obj"]
            if label_pred(obj["metadata"].get("labels") or {}) and field_pred(obj):
                out.append(self._present(res, obj))
        return out

    # ------------------------------------------------------------------ dependents, namespaces
    def dependents(self, uid: str) -> list[tuple[Resource, dict]]:
        out = []
        for store_key, recs in self.data.items():
            res = self.resource_for_store_key(store_key)
            if res is None:
                continue
            for rec in list(recs.values()):
                if any(o.get("uid") == uid for o in rec["obj"]["metadata"].get("ownerReferences") or []):
                    out.append((res, rec["obj"]))
        return out

    def resource_for_store_key(self, store_key: str) -> Resource | None:
        r = self._store_key_res.get(store_key)
        if r is not None and self.resources.get((r.group, r.version, r.plural)) is r:
            return r
        for r in self.resources.values():
            if r.store_key == store_key:
                self._store_key_res[store_key] = r
                return r
        return None

    def rv_of_kind(self, store_key: str) -> int:
        return self.kind_rv.get(store_key, 0)

    def namespace_contents(self, ns: str) -> list[tuple[Resource, dict]]:
        out = []
        for store_key, recs in self.data.items():
            res = self.resource_for_store_key(store_key)
            if res is None or not res.namespaced:
                continue
            for (ons, _), rec in list(recs.items()):
                if ons == ns:
                    out.append((res, rec["obj"]))
        return out

    # ------------------------------------------------------------------ watch
    def add_watcher(self, w: Watcher, since_rv: int | None, send_initial: bool) -> str | None:
        """Register w, queue its initial events. Returns an error string for 410 Gone, else None."""
        if since_rv is not None and since_rv > 0 and not send_initial:
            oldest = self.history[0][0] if self.history else self.rv + 1
            if since_rv < oldest - 1 and since_rv < self.rv:
                return f"too old resource version: {since_rv} ({self.rv})"
            for rv, store_key, etype, obj, old in self.history:
                if rv <= since_rv or store_key != w.store_key:
                    continue
                ev = watch_event_for(w, etype, obj, old)
                if ev:
                    w.queue.put_nowait(ev)
        else:
            for rec in sorted(self._records(w.resource).values(), key=lambda r: int(r["obj"]["metadata"]
                                                                                    ["resourceVersion"])):
                if w.matches(rec["obj"]):
                    w.queue.put_nowait(("ADDED", fast_copy(rec["obj"])))
            if send_initial:
                w.queue.put_nowait(("BOOKMARK", {"metadata": {"resourceVersion": str(self.rv), "annotations": {
                    "k8s.io/initial-events-end": "true"}}}))
        self.watchers.append(w)
        return None

    def remove_watcher(self, w: Watcher) -> None:
        if w in self.watchers:
            self.watchers.remove(w)


def watch_event_for(w: Watcher, etype: str, obj: dict, old: dict | None):
    if etype == "MODIFIED":
        now_m, old_m = w.matches(obj), w.matches(old) if old is not None else True
        if now_m and old_m:
            return ("MODIFIED", obj)
        if now_m:
            return ("ADDED", obj)
        if old_m and old is not None:
            return ("DELETED", obj)
        return None
    if w.matches(obj):
        return (etype, obj)
    return None
