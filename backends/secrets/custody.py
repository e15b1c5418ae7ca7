"""Custody of a service-account key between its creation and its arrival in the Kubernetes Secret.

The key lives in memory. Where a *secure* keyring backend exists (``secure_keyring()``: not the fail, null,
plaintext-file or encrypted-file backends; see dependencies-notes §4), it is also parked there, only until the
Secret is written, so a resume after an interruption can reuse it instead of making another key. Where none does,
nothing is persisted: a resume deletes the orphaned key (its id is in the journal) and makes a new one.

Also: ``register_secret`` hands key material and passwords to the log redaction registry (``installer.logs``)
when it exists, and ``export_key`` writes ``--export-key PATH`` (0600).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("mlops_install.secrets")

KEYRING_SERVICE = "mlops-install"

_INSECURE_PREFIXES = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt.file.PlaintextKeyring",
                      "keyring.backends.chainer")
_INSECURE_NAMES = {"keyrings.alt.file.EncryptedKeyring"}


def _name(b) -> str:
    return f"{type(b).__module__}.{type(b).__name__}"


def secure_keyring():
    """The keyring backend to park a key in, or None when only insecure/fake backends exist (never raises)."""
    try:
        import keyring
        import keyring.backends.chainer as chainer

        kr = keyring.get_keyring()
        leaves = list(kr.backends) if isinstance(kr, chainer.ChainerBackend) else [kr]
    except Exception:  # pragma: no cover - a broken keyring install must not stop the installer
        return None
    for b in leaves:
        n = _name(b)
        if n.startswith(_INSECURE_PREFIXES) or n in _INSECURE_NAMES:
            continue
        if "plaintext" in n.lower() or ".file." in n:
            continue
        return b
    return None


def keyring_description() -> str:
    b = secure_keyring()
    return _name(b) if b is not None else "none (memory only)"


def _user(env_id: str, key_id: str) -> str:
    return f"{env_id}/kfp-sa-key/{key_id}"


def park(env_id: str, key_id: str, key_json: str) -> bool:
    """Keep the key in the secure keyring until the Secret is written; False when there is none (or it failed)."""
    b = secure_keyring()
    if b is None:
        return False
    try:
        b.set_password(KEYRING_SERVICE, _user(env_id, key_id), key_json)
        return True
    except Exception as exc:  # locked collection, D-Bus gone, ...
        log.warning("could not park the key in the keyring (%s); keeping it in memory only", type(exc).__name__)
        return False


def fetch(env_id: str, key_id: str) -> str | None:
    b = secure_keyring()
    if b is None:
        return None
    try:
        return b.get_password(KEYRING_SERVICE, _user(env_id, key_id))
    except Exception:
        return None


def drop(env_id: str, key_id: str) -> None:
    b = secure_keyring()
    if b is None:
        return
    try:
        b.delete_password(KEYRING_SERVICE, _user(env_id, key_id))
    except Exception:
        pass


def register_secret(value: str | bytes | None) -> None:
    """Tell the log redaction registry about a secret (no-op when ``installer.logs`` has none)."""
    if not value:
        return
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    try:
        from installer import logs
    except ImportError:
        return
    for holder in (getattr(logs, "redact", None), logs):
        fn = getattr(holder, "register", None) or getattr(holder, "register_secret", None)
        if callable(fn):
            try:
                fn(value)
            except Exception:  # pragma: no cover
                pass
            return


def register_key(key_json: str) -> None:
    """Register the key file and its private key (the redactor adds the base64, JSON-escaped and per-line forms).
    Blocking and CPU-bound (the redactor recompiles its pattern): async callers use ``asyncio.to_thread``."""
    import json

    register_secret(key_json)
    try:
        pk = json.loads(key_json).get("private_key")
    except (ValueError, AttributeError):
        return
    register_secret(pk)


def export_key(path: str | os.PathLike, key_json: str) -> Path:
    """Write the key file for a user who asked for it (``--export-key``): 0600, created exclusively or replaced."""
    p = Path(path).expanduser().resolve()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key_json)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return p
