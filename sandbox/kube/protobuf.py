"""Decoding of the Kubernetes protobuf wire format for the few kinds kubectl's typed clients send as protobuf
(`kubectl create namespace|configmap|secret|serviceaccount`, `kubectl auth can-i|whoami`).

kubectl uses `Content-Type: application/vnd.kubernetes.protobuf` for built-in kinds it creates with its typed
clientset. The body is the magic `k8s\\0` followed by a `runtime.Unknown` (typeMeta, raw). Responses can stay JSON:
kubectl accepts `application/json` as well.
"""
from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    pass


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) for each field of a message."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ProtobufError(f"unsupported wire type {wt}")
        out.append((num, wt, v))
    return out


def _str(v: bytes) -> str:
    return v.decode("utf-8")


def _map(entries: list[bytes], value_bytes: bool = False) -> dict:
    out = {}
    for e in entries:
        k, val = "", b""
        for num, _, v in fields(e):
            if num == 1:
                k = _str(v)
            elif num == 2:
                val = v
        out[k] = base64.b64encode(val).decode() if value_bytes else _str(val)
    return out


def _object_meta(buf: bytes) -> dict:
    md: dict = {}
    labels, annotations, finalizers = [], [], []
    for num, _, v in fields(buf):
        if num == 1:
            md["name"] = _str(v)
        elif num == 2:
            md["generateName"] = _str(v)
        elif num == 3:
            md["namespace"] = _str(v)
        elif num == 6:
            md["resourceVersion"] = _str(v)
        elif num == 11:
            labels.append(v)
        elif num == 12:
            annotations.append(v)
        elif num == 14:
            finalizers.append(_str(v))
    if labels:
        md["labels"] = _map(labels)
    if annotations:
        md["annotations"] = _map(annotations)
    if finalizers:
        md["finalizers"] = finalizers
    return {k: v for k, v in md.items() if v != ""}


def _local_object_reference(buf: bytes) -> dict:
    return {"name": _str(v) for num, _, v in fields(buf) if num == 1}


def _policy_rule(buf: bytes) -> dict:
    names = {1: "verbs", 2: "apiGroups", 3: "resources", 4: "resourceNames", 5: "nonResourceURLs"}
    out: dict = {}
    for num, _, v in fields(buf):
        if num in names:
            out.setdefault(names[num], []).append(_str(v))
    return out


def _strings(buf: bytes, names: dict[int, str]) -> dict:
    out = {}
    for num, _, v in fields(buf):
        if num in names and v:
            out[names[num]] = _str(v)
    return out


def _decode_kind(kind: str, api_version: str, raw: bytes) -> dict:
    obj: dict = {"apiVersion": api_version, "kind": kind}
    fs = fields(raw)
    get = lambda n: [v for num, _, v in fs if num == n]  # noqa: E731
    if get(1):
        obj["metadata"] = _object_meta(get(1)[0])
    if kind == "Namespace":
        spec = get(2)
        if spec:
            fin = [_str(v) for num, _, v in fields(spec[0]) if num == 1]
            if fin:
                obj["spec"] = {"finalizers": fin}
    elif kind == "ConfigMap":
        if get(2):
            obj["data"] = _map(get(2))
        if get(3):
            obj["binaryData"] = _map(get(3), value_bytes=True)
        if get(4):
            obj["immutable"] = bool(get(4)[0])
    elif kind == "Secret":
        if get(2):
            obj["data"] = _map(get(2), value_bytes=True)
        if get(3):
            obj["type"] = _str(get(3)[0])
        if get(4):
            obj["stringData"] = _map(get(4))
        if get(5):
            obj["immutable"] = bool(get(5)[0])
    elif kind == "ServiceAccount":
        if get(3):
            obj["imagePullSecrets"] = [_local_object_reference(v) for v in get(3)]
        if get(4):
            obj["automountServiceAccountToken"] = bool(get(4)[0])
    elif kind in ("Role", "ClusterRole"):
        obj["rules"] = [_policy_rule(v) for v in get(2)]
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        obj["subjects"] = [_strings(v, {1: "kind", 2: "apiGroup", 3: "name", 4: "namespace"}) for v in get(2)]
        if get(3):
            obj["roleRef"] = _strings(get(3)[0], {1: "apiGroup", 2: "kind", 3: "name"})
    elif kind in ("SelfSubjectAccessReview", "SelfSubjectRulesReview", "SelfSubjectReview"):
        obj.setdefault("metadata", {})
        obj["spec"] = {}
    else:
        raise ProtobufError(f"protobuf bodies for {kind} are not supported by the sandbox; use JSON")
    return obj


def decode(body: bytes) -> dict:
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    api_version = kind = ""
    raw = b""
    for num, _, v in fields(body[len(MAGIC):]):
        if num == 1:
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    api_version = _str(v2)
                elif n2 == 2:
                    kind = _str(v2)
        elif num == 2:
            raw = v
    return _decode_kind(kind, api_version, raw)
