"""A container's environment and command line as the container sees them: ``env`` (value, configMapKeyRef,
secretKeyRef, fieldRef), ``envFrom`` (configMapRef, secretRef, prefix), ``$(VAR)`` expansion in command/args, and
the files of a mounted Secret (https://kubernetes.io/docs/tasks/inject-data-application/define-environment-variable-container/,
https://kubernetes.io/docs/tasks/inject-data-application/define-interdependent-environment-variables/)."""
from __future__ import annotations

import base64
import re
from typing import Any

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def _decode(v: str) -> str:
    try:
        return base64.b64decode(v).decode()
    except Exception:  # noqa: BLE001  not base64: keep the text
        return v


def config_value(view: Any, ns: str, kind: str, name: str, key: str) -> str | None:
    obj = view.get(kind, ns, name)
    if obj is None:
        return None
    if kind == "Secret":
        if key in (obj.get("data") or {}):
            return _decode(obj["data"][key])
        return (obj.get("stringData") or {}).get(key)
    return (obj.get("data") or {}).get(key)


def _field(pod: dict, path: str) -> str:
    meta = pod.get("metadata") or {}
    if path == "metadata.namespace":
        return meta.get("namespace", "")
    if path == "metadata.name":
        return meta.get("name", "")
    if path == "spec.nodeName":
        return (pod.get("spec") or {}).get("nodeName", "")
    if path == "spec.serviceAccountName":
        return (pod.get("spec") or {}).get("serviceAccountName", "default")
    if path == "status.podIP":
        return (pod.get("status") or {}).get("podIP", "")
    return ""


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: a defined variable is replaced, an undefined one stays, ``$$`` is ``$``."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR.sub(sub, text)


def container_env(view: Any, pod: dict, container: dict) -> dict[str, str]:
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for kind, ref in (("ConfigMap", src.get("configMapRef")), ("Secret", src.get("secretRef"))):
            if not ref:
                continue
            obj = view.get(kind, ns, ref.get("name", ""))
            for k, v in ((obj or {}).get("data") or {}).items():
                env[prefix + k] = _decode(v) if kind == "Secret" else v
    for e in container.get("env") or []:
        name = e.get("name")
        if not name:
            continue
        if "value" in e:
            env[name] = expand(str(e["value"]), env)
            continue
        vf = e.get("valueFrom") or {}
        val: str | None = None
        if vf.get("configMapKeyRef"):
            r = vf["configMapKeyRef"]
            val = config_value(view, ns, "ConfigMap", r.get("name", ""), r.get("key", ""))
        elif vf.get("secretKeyRef"):
            r = vf["secretKeyRef"]
            val = config_value(view, ns, "Secret", r.get("name", ""), r.get("key", ""))
        elif vf.get("fieldRef"):
            val = _field(pod, vf["fieldRef"].get("fieldPath", ""))
        if val is not None:
            env[name] = val
        elif "valueFrom" not in e:
            env[name] = ""
    return env


def argv(container: dict, env: dict[str, str]) -> list[str]:
    """command + args, each ``$(VAR)``-expanded (the image's entrypoint is not known: only what the spec says)."""
    return [expand(str(a), env) for a in (container.get("command") or []) + (container.get("args") or [])]


def mounted_secret_file(view: Any, pod: dict, container: dict, path: str) -> tuple[str | None, str | None]:
    """The content of ``path`` if it lies in a Secret volume mounted into the container: (secret name, text).
    (None, None) when no Secret volume holds it."""
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    vols = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    for m in container.get("volumeMounts") or []:
        mp = (m.get("mountPath") or "").rstrip("/")
        if not mp or not path.startswith(mp + "/"):
            continue
        vol = vols.get(m.get("name")) or {}
        sec = vol.get("secret")
        if not sec:
            continue
        rel = path[len(mp) + 1:]
        if m.get("subPath"):
            continue
        key = rel
        for item in sec.get("items") or []:
            if item.get("path") == rel:
                key = item.get("key", rel)
        return sec.get("secretName"), config_value(view, ns, "Secret", sec.get("secretName", ""), key)
    return None, None
