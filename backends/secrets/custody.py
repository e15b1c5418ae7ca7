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
    """Tell the log redaction registry (``installer.logs.redact``) about a secret."""
    from installer.logs import redact

    if not value:
        return
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    redact.register(value)


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


def exported_key_state(path: str | os.PathLike, key_id: str | None) -> str:
    """What is at ``--export-key PATH`` (never following a link): ``absent``; ``ours`` (a regular file of ours
    holding the key ``key_id``, the one the journal records); else ``InstallerError`` (BAD_INPUT) saying what is
    there. Registers what it reads for redaction."""
    import json

    from installer.errors import BadInput
    from installer.files import read_regular, regular_file_of_ours

    p = Path(path).expanduser().absolute()
    if not regular_file_of_ours(p):  # absent (or UnsafePath: a link, a FIFO, a folder, someone else's file)
        return "absent"
    raw = read_regular(p, limit=64 << 10, own=True, what="exported key file")
    text = raw.decode("utf-8", "replace")
    register_key(text)
    try:
        held = json.loads(text).get("private_key_id") if text.strip() else None
    except (ValueError, AttributeError):
        held = None
    if key_id and held == key_id:
        return "ours"
    what = (f"holds another key ({held})" if held else "is empty" if not text.strip() else
            "is not a service-account key file")
    raise BadInput(f"--export-key {p}: the file exists and {what}, not key {key_id or '(none yet)'} of this "
                   "install; it is left as it is and no key was written",
                   remedy="remove that file (or give another path) and run the same command again")


def export_key(path: str | os.PathLike, key_json: str, key_id: str | None = None) -> tuple[Path, str]:
    """Write the key file for a user who asked for it (``--export-key``): created exclusively, mode 0600, never
    through a link (``installer.files.create_new``). Returns (path, ``written`` | ``already there``): "already
    there" only when the file holds this very key; anything else at the path raises (``exported_key_state``)."""
    import json

    from installer.files import create_new, private_dir

    p = Path(path).expanduser().absolute()  # not resolve(): a link at the name must not be followed
    if key_id is None:
        try:
            key_id = json.loads(key_json).get("private_key_id")
        except (ValueError, AttributeError):
            key_id = None
    if exported_key_state(p, key_id) == "ours":
        return p, "already there"
    if not p.parent.exists():
        private_dir(p.parent, what="folder of the exported key")
    try:
        create_new(p, key_json, mode=0o600)
    except FileExistsError:  # something appeared meanwhile: say what it is
        if exported_key_state(p, key_id) == "ours":
            return p, "already there"
        raise
    return p, "written"
