"""The journal's secret guard: what looks like a secret (a secret-named key holding a value, or a value of a
secret's shape, ``installer.logs.redact.looks_secret``) and the refusal to write it (``SecretInJournal``). The
journal checks each snapshot with ``check_no_secrets`` before writing it (``installer.journal``)."""
from __future__ import annotations

import re
from typing import Any

from .errors import ErrorClass, InstallerError

SECRET_KEY_RE = re.compile(r"(password|passwd|private_?key(?!_?id)|privatekeydata|client_secret|access_token|"
                           r"refresh_token|id_token|^token$|bearer|secret_value|key_json|key_data|"
                           r"application_default_credentials)", re.I)


class SecretInJournal(InstallerError):
    def __init__(self, where: str) -> None:
        super().__init__(f"refused to write a secret into the journal (at {where})",
                         error_class=ErrorClass.UNEXPECTED,
                         remedy="this is a bug in the installer: secrets belong in ctx.runtime, never in "
                                "ctx.remember(); please report it")
        self.where = where


def find_secret(obj: Any, path: str = "", *, values: bool = True) -> str | None:
    """Return the path of the first value that looks like a secret, else None.

    A secret-named key holding a value counts; with ``values`` every string is also checked for secret shapes
    (PEM, tokens, registered secrets), which costs more.
    """
    if isinstance(obj, dict):
        for k, v in obj.items():
            sub = f"{path}.{k}" if path else str(k)
            if SECRET_KEY_RE.search(str(k)) and v not in (None, "", [], {}, False, True) \
                    and not isinstance(v, (int, float)):
                return sub
            found = find_secret(v, sub, values=values)
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = find_secret(v, f"{path}[{i}]", values=values)
            if found:
                return found
    elif values and isinstance(obj, (str, bytes)):
        from .logs import redact

        text = obj.decode("utf-8", "replace") if isinstance(obj, bytes) else obj
        if redact.looks_secret(text):
            return path or "(value)"
    return None


def _secret_key(obj: Any, path: str = "") -> str | None:
    """Only the key names (cheap): the path of a secret-named key holding a value, else None."""
    return find_secret(obj, path, values=False)


def check_no_secrets(obj: Any, text: str | None = None) -> None:
    """Raise ``SecretInJournal`` if ``obj`` holds a secret. With ``text`` (its JSON), the values are scanned in
    one pass over the text instead of value by value."""
    from .logs import redact

    if text is None:
        where = find_secret(obj)
    else:
        where = _secret_key(obj) or ((find_secret(obj) or "(journal)") if redact.looks_secret(text) else None)
    if where:
        raise SecretInJournal(where)
