"""The debug log and redaction.

A debug log is written by the commands that may change something (default
``<state dir>/logs/mlops-install-<time>-<pid>.log``, or ``--log-file``; read-only commands only with ``--log-file``),
mode 0600, through a redaction filter; at start, logs older than 30 days beyond the newest 50 are removed. Code that creates a secret registers it: ``redact.register(value)``;
from then on the value (and its base64 form) is masked in every log line, event and subprocess output.

``run_command(argv, ...)`` runs a subprocess and logs its argv and output redacted.
"""
from __future__ import annotations

import base64
import logging
import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

MASK = "<redacted>"

# Patterns of secrets we can spot without being told: (pattern, replacement, trigger words). A pattern runs only
# when one of its (lowercase) trigger words is in the text, which keeps redaction cheap on ordinary lines.
_PW_WORDS = ("password", "passwd", "pwd", "client_secret", "secret_key", "api_key", "access_token", "refresh_token",
             "id_token")


def _src(pattern: str, flags: int = 0) -> tuple[str, int]:
    """A pattern and its flags, compiled where it is used: ``re.compile`` keeps what it compiled (the ``re``
    module's cache), so each pattern is compiled once, the first time a text holds one of its words."""
    return pattern, flags


# Compiled on first use (_src): a pattern runs only on text holding one of its words, and compiling the lot
# when this module is imported cost ~3 ms of the wizard's start, before its first frame.
_PATTERNS: list[tuple[tuple[str, int], str, tuple[str, ...]]] = [
    # PEM blocks (private keys, certificates with keys), possibly with escaped newlines inside JSON
    (_src(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S),
     "(private key " + MASK + ")", ("private key",)),
    # "private_key": "..." / private_key=... / 'private_key_data': ...
    (_src(r"""(["']?(?:private_?key(?:_?data|_?id)?|privateKeyData)["']?\s*[:=]\s*)(["'])(?:\\.|(?!\2).)*\2""",
          re.I | re.S), r"\1\2" + MASK + r"\2", ("private",)),
    (_src(r"""((?:private_?key(?:_?data)?|privateKeyData)\s*[:=]\s*)(?!["'])[^\s,}&]+""", re.I),
     r"\1" + MASK, ("private",)),
    # Google OAuth access tokens and refresh tokens
    (_src(r"ya29\.[0-9A-Za-z_\-.]+"), "ya29." + MASK, ("ya29.",)),
    (_src(r"1//[0-9A-Za-z_\-]{20,}"), MASK, ("1//",)),
    # password=..., "password": "...", PASSWORD: ...
    (_src(r"""(["']?(?:[A-Za-z_]*password|passwd|pwd|client_secret|secret_key|api_key|access_token|"""
          r"""refresh_token|id_token)["']?\s*[:=]\s*)(["'])(?:\\.|(?!\2).)*\2""", re.I),
     r"\1\2" + MASK + r"\2", _PW_WORDS),
    (_src(r"""((?:[A-Za-z_]*password|passwd|client_secret|access_token|refresh_token|id_token)"""
          r"""\s*[:=]\s*)(?!["'<])[^\s,;&}]+""", re.I), r"\1" + MASK, _PW_WORDS),
    # Authorization: Bearer xxx
    (_src(r"(Bearer\s+)[A-Za-z0-9_\-.~+/=]{8,}", re.I), r"\1" + MASK, ("bearer",)),
    # base64 of a JSON key file ({"type": "service_account" ... ) or of any JSON object with a private key
    (_src(r"ew[o0]gICJ0eXBlIjogInNlcnZpY2VfYWNjb3VudCIs[A-Za-z0-9+/=]*"), MASK, ("gicj0exbl",)),
    (_src(r"eyJ0eXBlIjogInNlcnZpY2VfYWNjb3VudCI[A-Za-z0-9+/=]*"), MASK, ("eyj0exbl",)),
    (_src(r"eyJ0eXBlIjoic2VydmljZV9hY2NvdW50I[A-Za-z0-9+/=]*"), MASK, ("eyj0exbl",)),
    # a private key's base64 body without its PEM lines (PKCS#8 RSA "MII..IBADANBgkqhkiG9w0BAQEFAASC", PKCS#1
    # "MII..IBAAKCA": the DER of RFC 5208 / RFC 8017 key structures), possibly with real or escaped newlines
    (_src(r"MII[A-Za-z0-9+/]{3}IBA(?:DANBgkqhkiG9w0BAQEFAASC|AKCA)(?:[A-Za-z0-9+/=]|\\n|\n)*"),
     "(private key " + MASK + ")", ("ibadanbgkqhkig9w0baqefaasc", "ibaakca")),
    # Google API keys: "AIza" + 35 characters (https://cloud.google.com/docs/authentication/api-keys: the key
    # string format; also how secret scanners spot them)
    (_src(r"AIza[0-9A-Za-z_\-]{35}"), MASK, ("aiza",)),
    # JWT-looking assertions (header.payload.signature)
    (_src(r"eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"), MASK, ("eyj",)),
]


class Redactor:
    """Masks known secret shapes and every registered secret value."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._ordered: tuple[str, ...] = ()  # registered forms, longest first

    def register(self, secret: str | bytes | None) -> None:
        """Mask ``secret`` (and its base64 forms) from now on, wherever it appears."""
        if not secret:
            return
        if isinstance(secret, bytes):
            try:
                secret = secret.decode()
            except UnicodeDecodeError:
                secret = base64.b64encode(secret).decode()
        if len(secret) < 4:  # too short to mask without destroying ordinary text
            return
        forms = {secret, base64.b64encode(secret.encode()).decode(),
                 base64.urlsafe_b64encode(secret.encode()).decode()}
        if secret.startswith("ya29.") and len(secret) > 20:  # an access token: also its body without the prefix
            forms.add(secret[5:])
        forms |= {f.rstrip("=") for f in forms if len(f.rstrip("=")) >= 8}
        import json
        forms.add(json.dumps(secret)[1:-1])  # as it appears inside JSON (quotes, backslashes, newlines escaped)
        if "\n" in secret:  # a multi-line secret: also as JSON-escaped text and per long line
            forms.add(secret.replace("\n", "\\n"))
            forms |= {ln for ln in secret.splitlines() if len(ln) >= 16}
        with self._lock:
            self._secrets |= forms
            # Plain substring replacement, longest first: compiling one alternation of ~100 long literals cost
            # over a second per key file (measured), and `in` over a short list is faster to use as well.
            self._ordered = tuple(sorted(self._secrets, key=len, reverse=True))

    def forget_all(self) -> None:  # tests only
        with self._lock:
            self._secrets.clear()
            self._ordered = ()

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def contains_registered(self, text: str) -> bool:
        return any(s in text for s in self._ordered)

    def _mask_registered(self, text: str) -> str:
        for s in self._ordered:
            if s in text:
                text = text.replace(s, MASK)
        return text

    def __call__(self, text: Any) -> str:
        if not isinstance(text, str):
            text = str(text)
        text = self._mask_registered(text)
        low = text.lower()
        for src, repl, words in _PATTERNS:
            if any(w in low for w in words):
                text = re.compile(*src).sub(repl, text)
        return text

    def looks_secret(self, text: str) -> bool:
        """True when ``text`` holds a registered secret or a known secret shape."""
        if self.contains_registered(text):
            return True
        low = text.lower()
        for src, repl, words in _PATTERNS:
            if any(w in low for w in words):
                pattern = re.compile(*src)
                for m in pattern.finditer(text):
                    if pattern.sub(repl, m.group(0)) != m.group(0):
                        return True
        return False


redact = Redactor()

# What of a credentials file is secret (a service-account key file, an authorized-user ADC file)
_CREDENTIAL_FIELDS = ("private_key", "refresh_token", "client_secret", "access_token")


def register_credentials_file(path: str | os.PathLike | None) -> None:
    """Register the secret fields of a Google credentials file (and the whole file) for redaction; a missing or
    odd file is ignored (the client library reports it)."""
    if not path:
        return
    import json

    from .files import read_regular
    try:
        text = read_regular(path, limit=1 << 20, what="credentials file").decode("utf-8", "replace")
        doc = json.loads(text)
    except Exception:  # noqa: BLE001 - not ours to judge: the client library reports a bad credentials file
        return
    if not isinstance(doc, dict):
        return
    redact.register(text)
    for k in _CREDENTIAL_FIELDS:
        v = doc.get(k)
        if isinstance(v, str):
            redact.register(v)


def register_caller_credentials() -> None:
    """At start, before anything can echo it: the caller's key material (``GOOGLE_APPLICATION_CREDENTIALS``, the
    gcloud application-default credentials file: https://cloud.google.com/docs/authentication/application-default-credentials
    "Search order"), registered for redaction."""
    register_credentials_file(os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"))
    cfg = os.environ.get("CLOUDSDK_CONFIG") or os.path.join(os.path.expanduser("~"), ".config", "gcloud")
    register_credentials_file(os.path.join(cfg, "application_default_credentials.json"))


class RedactingFormatter(logging.Formatter):
    """Formats, then masks the whole line (message, arguments and traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactingFilter(logging.Filter):
    """For handlers that do not use RedactingFormatter: masks the record's message in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string: keep the raw message
            msg = str(record.msg)
        record.msg, record.args = redact(msg), ()
        return True


LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s [%(threadName)s] %(message)s"
_installed: list[logging.Handler] = []
_current_path: Path | None = None


def default_log_path(state_dir: Path | None = None) -> Path:
    from .paths import logs_dir
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return logs_dir(Path(state_dir) if state_dir is not None else None) / f"mlops-install-{stamp}-{os.getpid()}.log"


class _PrivateFileHandler(logging.FileHandler):
    """A FileHandler whose file is opened by ``installer.files.open_append``: no link followed, no FIFO waited on,
    a regular file of ours, mode 0600 (``UnsafePath`` otherwise)."""

    def _open(self):  # noqa: D401 - logging.FileHandler's hook
        from .files import open_append
        return open_append(self.baseFilename, encoding=self.encoding or "utf-8")


LOG_KEEP = 50  # logs kept whatever their age
LOG_MAX_AGE_DAYS = 30  # beyond the newest LOG_KEEP, logs older than this are removed at start
_LOG_NAME = re.compile(r"^mlops-install-\d{8}-\d{6}-\d+\.log$")


def prune_logs(folder: Path, keep: int = LOG_KEEP, max_age_days: float = LOG_MAX_AGE_DAYS,
               now: float | None = None) -> list[Path]:
    """Remove the installer's own logs in ``folder`` that are older than ``max_age_days`` and not among the
    newest ``keep``; return what was removed. Only regular files of ours named as ``default_log_path`` names
    them (a link or anyone else's file is left alone); a failure to remove is ignored."""
    import stat as _stat
    now = time.time() if now is None else now
    found: list[tuple[float, Path]] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for e in entries:
        if not _LOG_NAME.match(e.name):
            continue
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if _stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid():
            found.append((st.st_mtime, Path(e.path)))
    found.sort(reverse=True)
    removed = []
    for mtime, path in found[keep:]:
        if now - mtime > max_age_days * 86400:
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def setup_logging(log_file: str | Path | None = None, state_dir: Path | None = None,
                  level: int = logging.DEBUG) -> Path:
    """Send every log record (debug and up) to a 0600 file through the redaction filter; return its path.

    Calling it again replaces the handler installed before (tests run ``main()`` many times in one process).
    """
    global _current_path
    path = Path(log_file) if log_file else default_log_path(state_dir)
    if not log_file or not path.parent.exists():
        from .files import private_dir
        # <state>/logs (or the missing folders of --log-file): 0700 whatever the umask; someone else's is refused
        if not log_file:
            private_dir(path.parent.parent)  # the state dir itself
        private_dir(path.parent)
    if not log_file:
        prune_logs(path.parent)
    handler = _PrivateFileHandler(path, encoding="utf-8", delay=False)
    root = logging.getLogger()
    for h in _installed:
        root.removeHandler(h)
        h.close()
    _installed.clear()
    handler.setFormatter(RedactingFormatter(LOG_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(RedactingFilter())
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)
    _installed.append(handler)
    for noisy in ("urllib3", "googleapiclient.discovery_cache", "asyncio", "kubernetes.client.rest"):
        logging.getLogger(noisy).setLevel(logging.INFO)
    _current_path = path
    register_caller_credentials()
    logging.getLogger("mlops_install").debug("log started: pid %s", os.getpid())
    return path


def current_log_path() -> Path | None:
    return _current_path


def close_logging() -> None:
    global _current_path
    root = logging.getLogger()
    for h in _installed:
        root.removeHandler(h)
        h.close()
    _installed.clear()
    _current_path = None


# ---------------------------------------------------------------------------------------------------------------
# A redacting subprocess runner

log = logging.getLogger("mlops_install.run")


def redact_argv(argv: Sequence[str], sensitive: Iterable[int] = ()) -> list[str]:
    """Mask argv entries: by position, ``--password=...``-style flags, and the value after a sensitive flag."""
    out: list[str] = []
    sens = set(sensitive)
    hide_next = False
    for i, a in enumerate(map(str, argv)):
        if i in sens or hide_next:
            out.append(MASK)
            hide_next = False
            continue
        m = re.match(r"^(--?[A-Za-z0-9-]*(?:password|secret|token|key-file|private-key)[A-Za-z0-9-]*)(=.*)?$", a, re.I)
        if m and m.group(2):
            out.append(m.group(1) + "=" + MASK)
            continue
        if m:
            hide_next = True
        out.append(redact(a))
    return out


def run_command(argv: Sequence[str], *, timeout: float = 60, env: Mapping[str, str] | None = None,
                input: str | None = None, sensitive: Iterable[int] = (), cwd: str | Path | None = None,
                check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a command, log its redacted argv, exit code and output; return the result with redacted output.

    A missing executable or a timeout is returned as a result with returncode 127 / 124 (never raised), unless
    ``check`` is set, in which case a non-zero exit raises ``InstallerError``.
    """
    shown = " ".join(redact_argv(argv, sensitive))
    started = time.monotonic()
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input,
                              env=dict(env) if env is not None else None, cwd=cwd)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, redact(proc.stdout or ""),
                                             redact(proc.stderr or ""))
    except FileNotFoundError:
        result = subprocess.CompletedProcess(list(argv), 127, "", f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        result = subprocess.CompletedProcess(list(argv), 124, "", f"{argv[0]}: timed out after {timeout:g}s")
    except OSError as exc:
        result = subprocess.CompletedProcess(list(argv), 126, "", f"{argv[0]}: {exc}")
    result.args = redact_argv(argv, sensitive)
    log.debug("ran %s -> rc %s in %.2fs", shown, result.returncode, time.monotonic() - started)
    if result.stdout:
        log.debug("stdout of %s:\n%s", argv[0], result.stdout[-4000:])
    if result.stderr:
        log.debug("stderr of %s:\n%s", argv[0], result.stderr[-4000:])
    if check and result.returncode != 0:
        from .errors import ErrorClass, InstallerError
        cls = ErrorClass.TOOL_MISSING if result.returncode == 127 else ErrorClass.UNEXPECTED
        raise InstallerError(f"`{shown}` failed (exit {result.returncode}): {result.stderr.strip()[-500:]}",
                             error_class=cls, remedy="see the debug log for the full output")
    return result
