"""Cloud Storage JSON API v1: buckets (one namespace across all projects, §7, §12.11), their IAM policy, and
objects (upload, get, list, delete; paths and fields from the discovery document storage.v1.json).

Requests may come without credentials: google-cloud-storage uses anonymous credentials whenever
``STORAGE_EMULATOR_HOST`` is set. An anonymous caller acts as the sandbox's caller.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import time

from aiohttp import web

from .. import catalog
from ..errors import ApiError
from ..routing import Ctx, Router
from ..store import numeric_id, utc

MULTI = {"US", "EU", "ASIA"}
DUAL = {"NAM4", "EUR4", "ASIA1", "EUR5", "EUR7", "EUR8", "NAM7"}
COMPONENT_RX = re.compile(r"^[a-z0-9][a-z0-9_-]*[a-z0-9]$|^[a-z0-9]$")


def _err(status: str, message: str, reason: str, http: int | None = None) -> ApiError:
    return ApiError(status, message, reason=reason, style="compute", http=http)


def valid_name(name: str) -> bool:
    if not isinstance(name, str) or not re.match(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$", name):
        return False
    if "." in name:
        if len(name) > 222 or any(len(part) > 63 or not part for part in name.split(".")):
            return False
    elif not 3 <= len(name) <= 63:
        return False
    if len(name) < 3:
        return False
    try:
        ipaddress.ip_address(name)
        return False
    except ValueError:
        pass
    if name.startswith("goog") or re.search(r"g[o0]{2}g[l1]e", name):
        return False
    return True


def new_bucket_record(name: str, project: str, number: str, body: dict, now: float, base: str = "") -> dict:
    loc = (body.get("location") or "US").upper()
    ubla = bool(((body.get("iamConfiguration") or {}).get("uniformBucketLevelAccess") or {}).get("enabled")
                or ((body.get("iamConfiguration") or {}).get("bucketPolicyOnly") or {}).get("enabled"))
    iam_cfg = {"bucketPolicyOnly": {"enabled": ubla}, "uniformBucketLevelAccess": {"enabled": ubla},
               "publicAccessPrevention": (body.get("iamConfiguration") or {}).get("publicAccessPrevention",
                                                                                  "inherited")}
    if ubla:
        locked = utc(now + 90 * 86400)
        iam_cfg["bucketPolicyOnly"]["lockedTime"] = locked
        iam_cfg["uniformBucketLevelAccess"]["lockedTime"] = locked
    rec = {
        "kind": "storage#bucket", "id": name, "name": name, "projectNumber": number,
        "generation": str(int(now * 1e6)), "metageneration": "1", "location": loc,
        "storageClass": body.get("storageClass") or "STANDARD", "etag": "CAE=", "timeCreated": utc(now),
        "updated": utc(now), "iamConfiguration": iam_cfg,
        "locationType": "multi-region" if loc in MULTI else "dual-region" if loc in DUAL else "region",
        "softDeletePolicy": {"retentionDurationSeconds": "604800", "effectiveTime": utc(now)}, "rpo": "DEFAULT",
        "_project": project,
    }
    if body.get("labels"):
        rec["labels"] = dict(body["labels"])
    if body.get("versioning"):
        rec["versioning"] = body["versioning"]
    return rec


def bucket_view(ctx: Ctx, b: dict) -> dict:
    out = copy.deepcopy({k: v for k, v in b.items() if not k.startswith("_")})
    out["selfLink"] = f"{ctx.srv.url}/storage/v1/b/{b['name']}"
    return out


def _caller(ctx: Ctx) -> str:
    return ctx.caller or catalog.CALLER_EMAIL


def _who(ctx: Ctx) -> str:
    return ctx.caller or "Anonymous caller"


def _denied(ctx: Ctx, perm: str, what: str = "the Google Cloud Storage bucket") -> ApiError:
    return _err("PERMISSION_DENIED", f"{_who(ctx)} does not have {perm} access to {what}. Permission '{perm}' "
                f"denied on resource (or it may not exist).", "forbidden")


def _own(ctx: Ctx, bucket: str, perm: str) -> dict:
    b = ctx.data["buckets"].get(bucket)
    if b is None:
        raise _err("NOT_FOUND", "The specified bucket does not exist.", "notFound")
    if b["_project"] not in ctx.data["projects"] or ctx.denied(perm):
        raise _denied(ctx, perm)
    return b


def _project(ctx: Ctx) -> dict:
    pid = ctx.query.get("project")
    if not pid:
        raise _err("INVALID_ARGUMENT", "Required parameter: project", "required")
    for p in ctx.data["projects"].values():
        if pid in (p["projectId"], p["projectNumber"]):
            return p
    raise _err("INVALID_ARGUMENT", f"Unknown project id: {pid}", "invalid")


async def insert_bucket(ctx: Ctx) -> dict:
    p = _project(ctx)
    name = ctx.body.get("name", "")
    if ctx.denied("storage.buckets.create"):
        raise _denied(ctx, "storage.buckets.create", "the Google Cloud project")
    if not valid_name(name):
        raise _err("INVALID_ARGUMENT", f"Invalid bucket name: '{name}'", "invalid")
    loc = (ctx.body.get("location") or "US").upper()
    if loc not in MULTI | DUAL and loc.lower() not in catalog.REGIONS:
        raise _err("INVALID_ARGUMENT", "The specified location constraint is not valid.", "invalid")
    await ctx.sleep("storage.bucket_insert")  # first: the conflict check and the insert are one step
    existing = ctx.data["buckets"].get(name)
    if existing is not None:
        if existing["_project"] == p["projectId"]:
            raise _err("ALREADY_EXISTS", "You already own this bucket. Please select another name.", "conflict",
                       http=409)
        raise _err("ALREADY_EXISTS", "The requested bucket name is not available. The bucket namespace is shared by "
                   "all users of the system. Please select a different name and try again.", "conflict", http=409)
    rec = new_bucket_record(name, p["projectId"], p["projectNumber"], ctx.body, time.time())
    ctx.data["buckets"][name] = rec
    ctx.store.touch()
    return bucket_view(ctx, rec)


async def list_buckets(ctx: Ctx) -> dict:
    p = _project(ctx)
    if ctx.denied("storage.buckets.list"):
        raise _denied(ctx, "storage.buckets.list", "the Google Cloud project")
    prefix = ctx.query.get("prefix", "")
    items = [bucket_view(ctx, b) for n, b in sorted(ctx.data["buckets"].items())
             if b["_project"] == p["projectId"] and n.startswith(prefix)]
    size = int(ctx.query.get("maxResults") or 1000)
    start = int(ctx.query.get("pageToken") or 0)
    out: dict = {"kind": "storage#buckets"}
    if items[start:start + size]:
        out["items"] = items[start:start + size]
    if start + size < len(items):
        out["nextPageToken"] = str(start + size)
    return out


async def get_bucket(ctx: Ctx, bucket: str) -> dict:
    return bucket_view(ctx, _own(ctx, bucket, "storage.buckets.get"))


async def patch_bucket(ctx: Ctx, bucket: str) -> dict:
    b = _own(ctx, bucket, "storage.buckets.update")
    body = ctx.body
    if "labels" in body:
        labels = b.setdefault("labels", {})
        for k, v in (body["labels"] or {}).items():
            if v is None:
                labels.pop(k, None)
            else:
                labels[k] = v
    for f in ("storageClass", "versioning", "lifecycle", "retentionPolicy", "cors", "website", "logging"):
        if f in body:
            b[f] = body[f]
    if "iamConfiguration" in body:
        ub = ((body["iamConfiguration"] or {}).get("uniformBucketLevelAccess") or {}).get("enabled")
        if ub is not None:
            b["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"] = bool(ub)
            b["iamConfiguration"]["bucketPolicyOnly"]["enabled"] = bool(ub)
    b["metageneration"] = str(int(b["metageneration"]) + 1)
    b["updated"] = utc(time.time())
    ctx.store.touch()
    return bucket_view(ctx, b)


async def delete_bucket(ctx: Ctx, bucket: str) -> web.Response:
    _own(ctx, bucket, "storage.buckets.delete")
    # buckets.delete "Deletes an empty bucket" [disc: storage.v1 buckets.delete]; a bucket with objects answers
    # 409 "The bucket you tried to delete was not empty.", reason conflict (genevieve/leftovers#38, googleapi log)
    if _objects(ctx, bucket):
        raise _err("ALREADY_EXISTS", "The bucket you tried to delete was not empty.", "conflict", http=409)
    await ctx.sleep("storage.bucket_delete")
    ctx.data["buckets"].pop(bucket, None)
    ctx.data["bucket_iam"].pop(bucket, None)
    ctx.data.get("objects", {}).pop(bucket, None)
    ctx.store.touch()
    return web.Response(status=204)


# ---- objects: {bucket: {name: record}}; the content kept base64 in the record (the sandbox holds small objects)

def _objects(ctx: Ctx, bucket: str) -> dict:
    return ctx.data.setdefault("objects", {}).get(bucket) or {}


def _no_object(bucket: str, name: str) -> ApiError:
    return _err("NOT_FOUND", f"No such object: {bucket}/{name}", "notFound")


PRECONDITIONS = ("ifGenerationMatch", "ifGenerationNotMatch", "ifMetagenerationMatch", "ifMetagenerationNotMatch")


def check_preconditions(ctx: Ctx, o: dict | None) -> None:
    """The object preconditions of objects.insert/get/delete, as query parameters (google-cloud-storage sends its
    ``if_generation_match`` etc. so) [disc: storage.v1 objects.insert/get/delete parameters]:
    ``ifGenerationMatch`` "Setting to 0 makes the operation succeed only if there are no live versions of the
    object"; ``ifGenerationNotMatch`` "If no live object exists, the precondition fails". A failed *Match* is
    412 Precondition Failed, a failed *NotMatch* 304 Not Modified
    (https://cloud.google.com/storage/docs/request-preconditions, the JSON API table). With no live object, a
    metageneration precondition fails too (there is no metageneration to match). The 412 body is Google's
    ``conditionNotMet``."""
    q = ctx.query
    gen = int(o["generation"]) if o else 0
    meta = int(o["metageneration"]) if o else None
    failed_match = failed_not = False
    for key in PRECONDITIONS:
        raw = q.get(key)
        if raw is None:
            continue
        try:
            want = int(raw)
        except ValueError:
            raise _err("INVALID_ARGUMENT", f"Invalid value for {key}: {raw}", "invalid") from None
        if key == "ifGenerationMatch":
            failed_match |= gen != want
        elif key == "ifGenerationNotMatch":
            if o is None:
                failed_match = True
            else:
                failed_not |= gen == want
        elif key == "ifMetagenerationMatch":
            failed_match |= meta is None or meta != want
        else:
            if o is None:
                failed_match = True
            else:
                failed_not |= meta == want
    if failed_match:
        raise _err("FAILED_PRECONDITION", "At least one of the pre-conditions you specified did not hold.",
                   "conditionNotMet", http=412)
    if failed_not:
        raise NotModified()


class NotModified(Exception):
    """304 Not Modified (no body): a failed ifGenerationNotMatch / ifMetagenerationNotMatch."""


def object_view(ctx: Ctx, o: dict) -> dict:
    from urllib.parse import quote

    out = {k: v for k, v in o.items() if not k.startswith("_")}
    out["selfLink"] = f"{ctx.srv.url}/storage/v1/b/{o['bucket']}/o/{quote(o['name'], safe='')}"
    out["mediaLink"] = out["selfLink"].replace("/storage/v1/", "/download/storage/v1/") + \
        f"?generation={o['generation']}&alt=media"
    return out


def _multipart(raw: bytes, ctype: str) -> tuple[dict, bytes, str]:
    """(metadata, media, media content type) of an uploadType=multipart body (multipart/related: the JSON
    metadata part, then the media part), as google-cloud-storage sends it."""
    m = re.search(r'boundary="?([^";]+)"?', ctype)
    if not m:
        raise _err("INVALID_ARGUMENT", "Missing boundary in multipart body.", "invalid")
    sep = b"--" + m.group(1).encode()
    parts = []
    for chunk in raw.split(sep)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, body = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        parts.append((head.decode("latin-1"), body[:-2] if body.endswith(b"\r\n") else body))
    if len(parts) != 2:
        raise _err("INVALID_ARGUMENT", "Multipart upload must have a metadata part and a media part.", "invalid")
    import json

    meta = json.loads(parts[0][1] or b"{}")
    ct = re.search(r"(?im)^content-type:\s*(\S+)", parts[1][0])
    return meta, parts[1][1], ct.group(1) if ct else "application/octet-stream"


async def insert_object(ctx: Ctx, bucket: str) -> dict:
    import base64
    import hashlib

    import google_crc32c

    b = _own(ctx, bucket, "storage.objects.create")
    raw = await ctx.request.read()
    kind = ctx.query.get("uploadType", "media")
    if kind == "multipart":
        meta, media, ctype = _multipart(raw, ctx.request.headers.get("Content-Type", ""))
        ctype = meta.get("contentType") or ctype
    elif kind == "media":
        meta, media, ctype = {}, raw, ctx.request.headers.get("Content-Type") or "application/octet-stream"
    else:
        raise _err("INVALID_ARGUMENT", f"Upload type {kind} is not supported by the sandbox.", "invalid")
    name = meta.get("name") or ctx.query.get("name")
    if not name:
        raise _err("INVALID_ARGUMENT", "Required", "required")
    objs = ctx.data.setdefault("objects", {}).setdefault(b["name"], {})
    old = objs.get(name)
    try:
        check_preconditions(ctx, old)
    except NotModified:
        return web.Response(status=304)
    now = time.time()
    gen = str(max(int(now * 1e6), int(old["generation"]) + 1 if old else 0))  # a new generation on each write
    crc = base64.b64encode(google_crc32c.Checksum(media).digest()).decode()
    rec = {"kind": "storage#object", "id": f"{b['name']}/{name}/{gen}", "name": name, "bucket": b["name"],
           "generation": gen, "metageneration": "1", "contentType": ctype, "storageClass": b["storageClass"],
           "size": str(len(media)), "md5Hash": base64.b64encode(hashlib.md5(media).digest()).decode(),
           "crc32c": crc, "etag": f"C{gen[-8:]}EAE=", "timeCreated": utc(now), "updated": utc(now),
           "timeStorageClassUpdated": utc(now), "_data": base64.b64encode(media).decode()}
    if meta.get("metadata"):
        rec["metadata"] = dict(meta["metadata"])
    objs[name] = rec
    ctx.store.touch()
    return object_view(ctx, rec)


async def get_object(ctx: Ctx, bucket: str, object: str) -> dict | web.Response:
    import base64

    _own(ctx, bucket, "storage.objects.get")
    o = _objects(ctx, bucket).get(object)
    if o is None or (ctx.query.get("generation") and ctx.query["generation"] != o["generation"]):
        raise _no_object(bucket, object)  # no live object: 404 whatever the preconditions
    try:
        check_preconditions(ctx, o)
    except NotModified:
        return web.Response(status=304)
    if ctx.query.get("alt") == "media":
        return web.Response(body=base64.b64decode(o["_data"]), content_type=o["contentType"])
    return object_view(ctx, o)


async def list_objects(ctx: Ctx, bucket: str) -> dict:
    """Sorted by name; ``prefix``, ``maxResults`` (at most 1000) and ``pageToken`` [disc: objects.list]."""
    _own(ctx, bucket, "storage.objects.list")
    prefix = ctx.query.get("prefix", "")
    names = sorted(n for n in _objects(ctx, bucket) if n.startswith(prefix))
    size = max(1, min(int(ctx.query.get("maxResults") or 1000), 1000))
    token = ctx.query.get("pageToken")
    if token:
        import base64

        after = base64.urlsafe_b64decode(token.encode()).decode()
        names = [n for n in names if n > after]
    page = names[:size]
    out: dict = {"kind": "storage#objects"}
    if page:
        out["items"] = [object_view(ctx, _objects(ctx, bucket)[n]) for n in page]
    if len(names) > size:
        import base64

        out["nextPageToken"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
    return out


async def delete_object(ctx: Ctx, bucket: str, object: str) -> web.Response:
    _own(ctx, bucket, "storage.objects.delete")
    objs = _objects(ctx, bucket)
    o = objs.get(object)
    gen = ctx.query.get("generation")
    if o is None or (gen and gen != o["generation"]):
        raise _no_object(bucket, object)
    try:
        check_preconditions(ctx, o)
    except NotModified:
        return web.Response(status=304)
    del objs[object]
    ctx.store.touch()
    return web.Response(status=204)


def _bucket_policy(ctx: Ctx, b: dict) -> dict:
    pnum = ctx.data["projects"][b["_project"]]["projectNumber"]
    return ctx.data["bucket_iam"].setdefault(b["name"], {
        "version": 1, "etag": "CAE=",
        "bindings": [
            {"role": "roles/storage.legacyBucketOwner", "members": [f"projectEditor:{b['_project']}",
                                                                    f"projectOwner:{b['_project']}"]},
            {"role": "roles/storage.legacyBucketReader", "members": [f"projectViewer:{b['_project']}"]},
        ], "_pnum": pnum})


async def get_bucket_iam(ctx: Ctx, bucket: str) -> dict:
    b = _own(ctx, bucket, "storage.buckets.getIamPolicy")
    pol = _bucket_policy(ctx, b)
    return {"kind": "storage#policy", "resourceId": f"projects/_/buckets/{bucket}", "version": pol["version"],
            "etag": pol["etag"], "bindings": copy.deepcopy(pol["bindings"])}


async def set_bucket_iam(ctx: Ctx, bucket: str) -> dict:
    b = _own(ctx, bucket, "storage.buckets.setIamPolicy")
    pol = _bucket_policy(ctx, b)
    if ctx.body.get("etag") and ctx.body["etag"] != pol["etag"]:
        raise _err("FAILED_PRECONDITION", "Precondition Failed", "conditionNotMet", http=412)
    # A member that is a service account of this world must exist and be visible, like the project policy's
    # (crm.py): 400 "Service account <email> does not exist." inside a new account's invisibility window. The text
    # is the Resource Manager's (gcp-api-behaviour.md §3); Storage's own wording for it is not verified.
    for binding in ctx.body.get("bindings") or []:
        for member in binding.get("members") or []:
            kind, _, ident = str(member).partition(":")
            if kind == "serviceAccount" and ident.endswith(".iam.gserviceaccount.com"):
                sa = ctx.data["service_accounts"].get(ident)
                if sa is None or sa.get("deleted") or time.time() < sa.get("visible_at", 0):
                    raise _err("INVALID_ARGUMENT", f"Service account {ident} does not exist.", "invalid")
    pol["bindings"] = copy.deepcopy(ctx.body.get("bindings") or [])
    pol["version"] = int(ctx.body.get("version") or 1)
    import base64
    import secrets

    pol["etag"] = base64.b64encode(b"\x08" + secrets.token_bytes(2)).decode()
    ctx.store.touch()
    return await get_bucket_iam(ctx, bucket)


async def test_bucket_permissions(ctx: Ctx, bucket: str) -> dict:
    _own(ctx, bucket, "storage.buckets.get")
    perms = [p for p in ctx.request.query.getall("permissions", []) if not ctx.denied(p)]
    out: dict = {"kind": "storage#testIamPermissionsResponse"}
    if perms:
        out["permissions"] = perms
    return out


def register(r: Router) -> None:
    a = dict(api="storage", style="compute", auth=False)
    r.add("POST", "/storage/v1/b", insert_bucket, **a)
    r.add("GET", "/storage/v1/b", list_buckets, **a)
    r.add("GET", "/storage/v1/b/{bucket}", get_bucket, **a)
    r.add("PATCH", "/storage/v1/b/{bucket}", patch_bucket, **a)
    r.add("DELETE", "/storage/v1/b/{bucket}", delete_bucket, **a)
    r.add("GET", "/storage/v1/b/{bucket}/o", list_objects, **a)
    r.add("POST", "/upload/storage/v1/b/{bucket}/o", insert_object, **a)
    r.add("GET", "/storage/v1/b/{bucket}/o/{object+}", get_object, **a)
    r.add("DELETE", "/storage/v1/b/{bucket}/o/{object+}", delete_object, **a)
    r.add("GET", "/download/storage/v1/b/{bucket}/o/{object+}", get_object, **a)
    r.add("GET", "/storage/v1/b/{bucket}/iam", get_bucket_iam, **a)
    r.add("PUT", "/storage/v1/b/{bucket}/iam", set_bucket_iam, **a)
    r.add("GET", "/storage/v1/b/{bucket}/iam/testPermissions", test_bucket_permissions, **a)


_ = numeric_id
