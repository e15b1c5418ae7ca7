"""A small client of the control API (``/_sandbox/``), used by the CLI and the test fixture."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


_UNSET: Any = object()


class ControlClient:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/_sandbox/" + path.lstrip("/"), data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"sandbox control {method} {path}: {e.code} {e.read().decode(errors='replace')}")

    def health(self) -> dict:
        return self._call("GET", "health")

    def requests(self, api: str | None = None, mutating: bool | None = None, since: float | None = None) -> list:
        q = []
        if api:
            q.append(f"api={api}")
        if mutating is not None:
            q.append(f"mutating={int(mutating)}")
        if since is not None:
            q.append(f"since={since}")
        return self._call("GET", "requests" + ("?" + "&".join(q) if q else ""))["requests"]

    def clear_requests(self) -> int:
        return self._call("DELETE", "requests")["cleared"]

    def fault(self, path: str | None = None, status: int | None = None, *, method: str = "*",
              times: Any = _UNSET, delay: float | None = None, body: Any = None, message: str | None = None,
              op: str | None = None, code: int | None = None, reason: str | None = None,
              rate: float | None = None, seed: int | None = None, target: str | None = None) -> dict:
        """A path fault (``path`` regex, ``status``…) or an operation fault (``op``). ``times``: how many requests
        it hits (None: every one; default 1, or every one when ``rate`` is given). ``rate`` (0..1): the chance
        that a matching request is hit, from an RNG seeded with ``seed``. ``target``: ``"google"`` (default),
        ``"kube"`` (every cluster's Kubernetes API) or a cluster name."""
        spec: dict = {}
        if times is not _UNSET:
            spec["times"] = times
        elif rate is None:
            spec["times"] = 1
        if op:
            spec.update({"op": op, "message": message, "code": code})
        else:
            spec.update({"method": method, "path": path, "status": status, "delay": delay, "body": body,
                         "message": message, "reason": reason})
            if rate is not None:
                spec["rate"] = rate
            if seed is not None:
                spec["seed"] = seed
            if target is not None:
                spec["target"] = target
        return self._call("POST", "faults", spec)

    def faults(self) -> list:
        return self._call("GET", "faults")["faults"]

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def remove_fault(self, fault_id: str) -> None:
        self._call("DELETE", f"faults/{fault_id}")

    def scenario(self, name: str, **params: Any) -> dict:
        return self._call("POST", "scenario", {"name": name, **params})

    def scenarios(self) -> dict:
        return self._call("GET", "scenario")

    def state(self) -> dict:
        return self._call("GET", "state")
