"""The resource paths of the API: get, list (selectors, limit/continue, Tables), watch, create, update, patch,
delete and deletecollection, the status/scale/finalize subresources and a pod's log, over ``Cluster``'s verbs; and
how bodies are read and written (JSON, YAML, protobuf in; JSON out).
"""
from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

from aiohttp import web

from . import errors as E
from . import protobuf
from .cluster import Cluster, scale_of
from .objects import Watcher
from .resources import Resource
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .tables import table


async def resource_request(srv: Any, request: web.Request, group: str, version: str,
                           rest: list[str]) -> web.StreamResponse:
    """A request on a resource path (``[namespaces/NS/]PLURAL[/NAME[/SUB]]``, ``watch/...``) of ``srv`` (the
    ``KubeApiServer``): the verbs on ``srv.cluster``, a pod's log from its simulator."""
    c = srv.cluster
    watch_path = False
    if rest[0] == "watch":
        watch_path, rest = True, rest[1:]
        if not rest:
            raise E.resource_not_found()
    ns = ""
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        ns, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3:
        raise E.resource_not_found()
    res = c.lookup(group, version, plural)
    if res is None:
        raise E.resource_not_found()
    if ns and not res.namespaced:
        raise E.resource_not_found()
    if sub == "log" and request.method != "GET":
        raise E.method_not_allowed(res, name)
    if sub == "log" and res.kind == "Pod":
        q = request.query
        try:
            tail = int(q["tailLines"]) if q.get("tailLines") else None
        except ValueError as exc:
            raise E.bad_request(f"invalid tailLines: {q['tailLines']}") from exc
        text = srv.sim.pods.logs(c.get(res, ns, name), q.get("container", ""),
                                  q.get("previous") in ("true", "1", "True"), tail)
        return web.Response(text=text, content_type="text/plain")
    if sub and sub not in res.subresources and not (res.kind == "Namespace" and sub == "finalize"):
        raise E.resource_not_found()
    q = request.query
    method = request.method
    dry_run = "All" in q.getall("dryRun", [])
    manager = q.get("fieldManager", "") or _manager_from_ua(request.headers.get("User-Agent", ""))
    wants_table = "as=Table" in request.headers.get("Accept", "")
    if method == "GET" and (watch_path or q.get("watch") in ("1", "true", "True")):
        if name:  # watch of one object: a field selector on its name
            return await _watch(srv, request, res, ns, f"metadata.name={name}")
        return await _watch(srv, request, res, ns, q.get("fieldSelector", ""))
    if not name:
        if method == "GET":
            return _list(c, request, res, ns, wants_table)
        if method == "POST":
            if res.namespaced and not ns and res.kind not in ("SelfSubjectAccessReview",):
                raise E.method_not_allowed(res)
            if "create" not in res.verbs:
                raise E.method_not_allowed(res)
            body = await _read_body(request)
            obj = c.create(res, ns, body, manager=manager, dry_run=dry_run)
            return json_response(obj, 201)
        if method == "DELETE":
            if "deletecollection" not in res.verbs:
                raise E.method_not_allowed(res)
            return _delete_collection(c, request, res, ns, await _read_body(request, allow_empty=True),
                                           dry_run)
        raise E.method_not_allowed(res)
    if "get" not in res.verbs:
        raise E.method_not_allowed(res, name)
    if method == "GET":
        obj = c.get(res, ns, name)
        if sub == "scale":
            return json_response(scale_of(res, obj))
        if wants_table and not sub:
            return json_response(table(res, [obj], str(c.rv), include_object=q.get("includeObject", "Metadata"),
                               printer_columns=_printer_columns(c, res)))
        return json_response(obj)
    if method == "PUT":
        body = await _read_body(request)
        if sub == "finalize":
            sub = ""
        obj = c.update(res, ns, name, body, subresource=sub, manager=manager, dry_run=dry_run)
        return json_response(scale_of(res, obj) if sub == "scale" else obj)
    if method == "PATCH":
        raw = await request.read()
        ct = request.headers.get("Content-Type", "")
        force = q.get("force") in ("true", "1", "True")
        if ct.startswith("application/apply-patch") and not q.get("fieldManager"):
            manager = ""
        obj, created = c.patch(res, ns, name, ct, raw, subresource=sub, manager=manager, force=force,
                               dry_run=dry_run)
        if sub == "scale":
            obj = scale_of(res, obj)
        return json_response(obj, 201 if created else 200)
    if method == "DELETE":
        body = await _read_body(request, allow_empty=True) or {}
        opts = dict(body) if isinstance(body, dict) else {}
        if q.get("propagationPolicy"):
            opts["propagationPolicy"] = q["propagationPolicy"]
        return json_response(c.delete(res, ns, name, opts, dry_run=dry_run))
    raise E.method_not_allowed(res, name)


def _printer_columns(c: Cluster, res: Resource) -> list[dict] | None:
    if res.builtin or not res.crd_name:
        return None
    rec = c.data.get("apiextensions.k8s.io~customresourcedefinitions", {}).get(("", res.crd_name))
    if rec is None:
        return None
    for v in (rec["obj"].get("spec") or {}).get("versions") or []:
        if v.get("name") == res.version:
            cols = v.get("additionalPrinterColumns")
            if cols:
                return cols
    return [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]


def _selectors(request: web.Request, res: Resource, field_sel: str | None = None):
    q = request.query
    try:
        lp = parse_label_selector(q.get("labelSelector", ""))
        fp = parse_field_selector(q.get("fieldSelector", "") if field_sel is None else field_sel, res.kind)
    except SelectorError as exc:
        raise E.bad_request(f"unable to parse requirement: {exc}") from exc
    return lp, fp


def _list(c: Cluster, request: web.Request, res: Resource, ns: str, wants_table: bool) -> web.Response:
    q = request.query
    # the real server lists an empty collection for a missing namespace
    lp, fp = _selectors(request, res)
    items = c.list(res, ns or None, lp, fp)
    start = 0
    cont_in = q.get("continue", "")
    if cont_in:
        try:
            token = json.loads(base64.urlsafe_b64decode(cont_in.encode() + b"==").decode())
            start = int(token["start"])
        except Exception as exc:  # noqa: BLE001
            raise E.bad_request(f"continue key is not valid: {exc}") from exc
    limit = int(q.get("limit", "0") or 0)
    page = items[start:]
    cont, remaining = "", None
    if limit > 0 and len(page) > limit:
        page = page[:limit]
        cont = base64.urlsafe_b64encode(json.dumps({"rv": c.rv, "start": start + limit}).encode()).decode()
        cont = cont.rstrip("=")
        remaining = len(items) - start - limit
    if wants_table:
        return json_response(table(res, page, str(c.rv), cont, q.get("includeObject", "Metadata"),
                           printer_columns=_printer_columns(c, res)))
    if res.builtin:
        for it in page:
            it.pop("apiVersion", None)
            it.pop("kind", None)
    md: dict = {"resourceVersion": str(c.rv)}
    if cont:
        md["continue"] = cont
        md["remainingItemCount"] = remaining
    return json_response({"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": md, "items": page})


def _delete_collection(c: Cluster, request: web.Request, res: Resource, ns: str, body: Any,
                       dry_run: bool) -> web.Response:
    lp, fp = _selectors(request, res)
    items = c.list(res, ns or None, lp, fp)
    opts = body if isinstance(body, dict) else {}
    for it in items:
        try:
            c.delete(res, it["metadata"].get("namespace", ""), it["metadata"]["name"], opts, dry_run=dry_run)
        except E.ApiError:
            pass
    for it in items:
        it.pop("apiVersion", None) if res.builtin else None
        it.pop("kind", None) if res.builtin else None
    return json_response({"kind": f"{res.kind}List", "apiVersion": res.api_version,
                  "metadata": {"resourceVersion": str(c.rv)}, "items": items})


async def _watch(srv: Any, request: web.Request, res: Resource, ns: str, field_sel: str) -> web.StreamResponse:
    c = srv.cluster
    q = request.query
    lp, fp = _selectors(request, res, field_sel)
    rv_s = q.get("resourceVersion", "")
    try:
        since = int(rv_s) if rv_s else None
    except ValueError as exc:
        raise E.bad_request(f"invalid resource version: {rv_s}") from exc
    send_initial = q.get("sendInitialEvents") in ("true", "1")
    timeout = float(q.get("timeoutSeconds", "0") or 0) or 1800.0
    w = Watcher(res.store_key, ns or None, lp, fp, res)
    gone = c.add_watcher(w, since, send_initial)
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                   "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
    wants_table = "as=Table" in request.headers.get("Accept", "")
    printer = _printer_columns(c, res) if wants_table else None
    try:
        if gone:
            await resp.write(json_line({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": gone,
                "reason": "Expired", "code": 410}}))
            return resp
        deadline = time.monotonic() + timeout
        last_bm = time.monotonic()
        while not srv.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                ev = await asyncio.wait_for(w.queue.get(), timeout=min(left, 5.0))
            except asyncio.TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    break  # the client went away
                if bookmarks and time.monotonic() < deadline and time.monotonic() - last_bm >= 30:
                    last_bm = time.monotonic()
                    await resp.write(json_line({"type": "BOOKMARK", "object": {
                        "kind": res.kind, "apiVersion": res.api_version,
                        "metadata": {"resourceVersion": str(c.rv)}}}))
                continue
            if ev is None:
                break
            etype, obj = ev
            if etype == "BOOKMARK":
                if not (bookmarks or send_initial):
                    continue
                obj = {"kind": res.kind, "apiVersion": res.api_version, **obj}
            else:
                obj = dict(obj)
                obj["apiVersion"], obj["kind"] = res.api_version, res.kind
                if wants_table:  # kubectl get -w: every event carries a one-row Table
                    obj = table(res, [obj], obj["metadata"].get("resourceVersion", ""),
                                include_object=q.get("includeObject", "Metadata"), printer_columns=printer)
            await resp.write(json_line({"type": etype, "object": obj}))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        c.remove_watcher(w)
    try:
        await resp.write_eof()
    except Exception:  # noqa: BLE001
        pass
    return resp


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(obj, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


def json_line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _manager_from_ua(ua: str) -> str:
    """The real server derives a default field manager from the User-Agent's first segment."""
    return (ua.split("/")[0] or "unknown")[:128] if ua else "unknown"


async def _read_body(request: web.Request, allow_empty: bool = False) -> Any:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return None
        raise E.bad_request("the body of the request was empty")
    ct = request.headers.get("Content-Type", "application/json")
    if ct.startswith(protobuf.PROTOBUF):
        try:
            return protobuf.decode(raw)
        except (protobuf.ProtobufError, UnicodeDecodeError, IndexError) as exc:
            raise E.ApiError(415, "UnsupportedMediaType", str(exc)) from exc
    try:
        if "yaml" in ct:
            import yaml
            return yaml.safe_load(raw.decode())
        return json.loads(raw.decode())
    except Exception as exc:  # noqa: BLE001
        raise E.bad_request(f"the body of the request could not be decoded: {exc}") from exc
