"""The sandbox's state: one JSON document on disk, written atomically, plus a timeline of due events.

Everything time-based is stored as absolute wall-clock timestamps (``time.time()``), so a restarted sandbox picks
up where it left off: an operation whose ``done_at`` passed while the process was down is simply done.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from . import catalog

SCHEMA = 1


def utc(ts: float) -> str:
    """RFC 3339 with milliseconds, as Google prints it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1000):03d}Z"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_etag() -> str:
    import base64

    return base64.b64encode(b"\x07" + secrets.token_bytes(7)).decode()


def numeric_id() -> str:
    return str(secrets.randbelow(9 * 10**18) + 10**18)


def fresh_state(now: float) -> dict[str, Any]:
    p = catalog.PROJECT_ID
    services = {s: {"state": "ENABLED", "enabled_at": now - 86400, "usable_at": now - 86400}
                for s in catalog.DEFAULT_ENABLED}
    return {
        "schema": SCHEMA,
        "created": now,
        "projects": {
            p: {
                "projectId": p,
                "projectNumber": catalog.PROJECT_NUMBER,
                "name": p,
                "displayName": "MLOps demo project",
                "createTime": utc(now - 86400 * 30),
                "parent": {"type": "organization", "id": catalog.ORG_ID},
                "labels": {},
            }
        },
        "services": {p: services},
        "su_operations": {},
        "iam_policies": {
            p: {
                "version": 1,
                "etag": new_etag(),
                "bindings": [
                    {"role": "roles/editor",
                     "members": [f"serviceAccount:{catalog.PROJECT_NUMBER}@cloudservices.gserviceaccount.com"]},
                    {"role": "roles/owner", "members": [f"serviceAccount:{catalog.CALLER_EMAIL}",
                                                        "user:demo-owner@example.com"]},
                ],
                "changed_at": now - 86400,
            }
        },
        "service_accounts": {},  # email -> record
        "keys": {},  # key id -> {sa email, public pem, ...}
        "networks": {},  # "project/name" -> record
        "subnetworks": {},  # "project/region/name" -> record
        "compute_operations": {},  # name -> record
        "clusters": {},  # "project/location/name" -> record
        "container_operations": {},
        "sql_instances": {},  # "project/name" -> record
        "sql_users": {},  # "project/instance/name/host" -> record
        "sql_operations": {},
        "sql_deleted_names": {},  # "project/name" -> deleted ts
        "buckets": {},  # name -> record (global namespace)
        "bucket_iam": {},
        "tokens": {},  # sha256(token) -> {email, exp}
        "scenario": {
            "denied_permissions": [],
            "org_policy_keys": False,
            "cpu_quota": {},  # region -> limit
            "key_limit_legacy": False,
            "sql_name_reuse_seconds": 0,
        },
        "faults": [],
        "events": [],  # sorted by "at"
    }


class Store:
    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "state.json"
        if self.path.exists():
            self.data = json.loads(self.path.read_text())
        else:
            self.data = fresh_state(time.time())
            self.save()
        self.dirty = False

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def save(self) -> None:
        tmp = self.path.with_name(f".state.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)
        self.dirty = False

    def touch(self) -> None:
        self.dirty = True

    # timeline
    def schedule(self, at: float, action: str, **args: Any) -> None:
        ev = {"at": at, "action": action, "args": args, "seq": uuid.uuid4().hex}
        keys = [e["at"] for e in self.data["events"]]
        self.data["events"].insert(bisect.bisect_right(keys, at), ev)
        self.dirty = True

    def next_event_at(self) -> float | None:
        ev = self.data["events"]
        return ev[0]["at"] if ev else None

    def pop_due(self, now: float) -> dict | None:
        ev = self.data["events"]
        if ev and ev[0]["at"] <= now:
            self.dirty = True
            return ev.pop(0)
        return None

    # tokens
    def add_token(self, token: str, email: str, exp: float, scopes: list[str] | None = None) -> None:
        toks = self.data["tokens"]
        now = time.time()
        for h in [h for h, t in toks.items() if t["exp"] < now]:
            del toks[h]
        toks[token_hash(token)] = {"email": email, "exp": exp, **({"scopes": scopes} if scopes is not None else {})}
        self.dirty = True

    def token_record(self, token: str) -> dict | None:
        rec = self.data["tokens"].get(token_hash(token))
        if not rec or rec["exp"] < time.time():
            return None
        return rec

    def token_email(self, token: str) -> str | None:
        rec = self.data["tokens"].get(token_hash(token))
        if not rec or rec["exp"] < time.time():
            return None
        return rec["email"]
