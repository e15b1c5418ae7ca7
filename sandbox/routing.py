"""The route table of the sandbox's Google APIs and the context a handler gets.

Each module of ``sandbox/apis/`` registers its handlers (``register(router)``); ``SandboxServer.dispatch``
(``sandbox/server.py``) matches a request against the table and calls the handler with a ``Ctx``. This module
imports no API module and not the server.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web

from .errors import ApiError, permission_error
from .store import Store

API_SERVICE = {
    "serviceusage": "serviceusage.googleapis.com",
    "crm": "cloudresourcemanager.googleapis.com",
    "iam": "iam.googleapis.com",
    "compute": "compute.googleapis.com",
    "container": "container.googleapis.com",
    "sqladmin": "sqladmin.googleapis.com",
    "storage": "storage.googleapis.com",
    "orgpolicy": "orgpolicy.googleapis.com",
    "billing": "cloudbilling.googleapis.com",
}

Handler = Callable[..., Awaitable[Any]]


@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: Handler
    api: str
    style: str = "rpc"
    auth: bool = True
    mutating: bool | None = None
    check_service: bool = True

    @property
    def is_mutating(self) -> bool:
        return self.mutating if self.mutating is not None else self.method != "GET"


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler, api: str, **kw: Any) -> None:
        # {name} -> a path segment without ':' ; {name+} -> anything up to the next literal
        rx = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+?)", path)
        rx = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/:]+)", rx)
        self.routes.append(Route(method, re.compile("^" + rx + "$"), handler, api, **kw))

    def match(self, method: str, path: str) -> tuple[Route | None, dict, bool]:
        path_known = False
        for r in self.routes:
            m = r.pattern.match(path)
            if m:
                path_known = True
                if r.method == method:
                    return r, m.groupdict(), True
        return None, {}, path_known



@dataclass
class Ctx:
    srv: Any  # the SandboxServer (sandbox/server.py)
    request: web.Request
    route: Route
    body: Any
    query: dict[str, str]
    now: float
    caller: str | None
    extra_headers: dict = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.srv.store

    @property
    def data(self) -> dict:
        return self.srv.store.data

    @property
    def speed(self) -> float:
        return self.srv.speed

    def dur(self, key: str) -> float:
        return self.srv.profile(key) * self.srv.speed

    async def sleep(self, key: str) -> None:
        d = self.dur(key)
        if d > 0:
            await asyncio.sleep(d)

    @property
    def url(self) -> str:
        """The sandbox's root URL, as ``SandboxServer.url``: links are made from either."""
        return self.srv.url

    def denied(self, permission: str) -> bool:
        return permission in self.data["scenario"]["denied_permissions"]

    def require(self, permission: str, resource: str) -> None:
        if self.denied(permission):
            raise permission_error(self.route.api, permission, resource, self.caller)

    def project(self, project: str) -> dict:
        """The project record by id or number, or the error the route's API gives for a project you can't see."""
        for p in self.data["projects"].values():
            if project in (p["projectId"], p["projectNumber"]):
                return p
        api = self.route.api
        if api == "compute":
            raise ApiError("NOT_FOUND", f"The resource 'projects/{project}' was not found", style="compute",
                           reason="notFound")
        if api == "sqladmin":
            raise ApiError("PERMISSION_DENIED", "The client is not authorized to make this request.",
                           reason="notAuthorized", style="compute")
        if api == "container":
            raise ApiError("PERMISSION_DENIED", f"Required \"container.clusters.list\" permission(s) for "
                           f"\"projects/{project}\".")
        raise ApiError("PERMISSION_DENIED", "The caller does not have permission")


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json",
                        headers=headers or None)
