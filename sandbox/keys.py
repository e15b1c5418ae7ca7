"""Real RSA keys, service-account key files and RS256 JWTs (with ``cryptography`` only)."""

from __future__ import annotations

import base64
import json
import secrets
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_private(pem: str) -> rsa.RSAPrivateKey:
    # our own keys: skip the (slow) RSA consistency check
    return serialization.load_pem_private_key(pem.encode(), password=None,  # type: ignore[return-value]
                                              unsafe_skip_rsa_key_validation=True)


def new_key_id() -> str:
    return secrets.token_hex(20)


def service_account_key_file(
    *, project_id: str, key_id: str, private_key_pem: str, client_email: str, client_id: str, token_uri: str
) -> dict:
    """The JSON Google hands out for TYPE_GOOGLE_CREDENTIALS_FILE (loadable by google-auth and gcloud)."""
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": key_id,
        "private_key": private_key_pem,
        "client_email": client_email,
        "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
        + client_email.replace("@", "%40"),
        "universe_domain": "googleapis.com",
    }


class JwtError(Exception):
    pass


def jwt_parts(token: str) -> tuple[dict, dict, bytes, bytes]:
    try:
        h, p, s = token.split(".")
        header = json.loads(b64url_decode(h))
        payload = json.loads(b64url_decode(p))
        return header, payload, f"{h}.{p}".encode(), b64url_decode(s)
    except Exception as exc:  # noqa: BLE001
        raise JwtError("malformed JWT") from exc


def verify_rs256(signing_input: bytes, signature: bytes, public_key_pem: str) -> bool:
    pub = serialization.load_pem_public_key(public_key_pem.encode())
    try:
        pub.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
        return True
    except InvalidSignature:
        return False


def sign_rs256(payload: dict, key: rsa.RSAPrivateKey, kid: str) -> str:
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(sig)}"


def now() -> float:
    return time.time()


class KeyPool:
    """Pre-generated RSA-2048 keys shared by sandboxes on this machine (generating one costs 0.1–0.8 s here).

    Each sandbox hands out a given pool key at most once (it records the fingerprints it used); when the pool runs
    dry for it, it generates fresh keys and adds them to the pool. Directory: ``$MLOPS_SANDBOX_KEY_CACHE`` or
    ``~/.cache/mlops-install/sandbox-keys`` (files are 0600).
    """

    TARGET = 24

    def __init__(self, directory: str | None = None) -> None:
        import os
        from pathlib import Path

        d = directory or os.environ.get("MLOPS_SANDBOX_KEY_CACHE") or str(
            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlops-install" / "sandbox-keys")
        self.dir = Path(d)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.dir, 0o700)
        except OSError:
            self.dir = None  # type: ignore[assignment]

    def _files(self) -> list:
        if self.dir is None:
            return []
        return sorted(p for p in self.dir.glob("*.pem"))

    def _add(self, key: rsa.RSAPrivateKey) -> str:
        import hashlib
        import os

        pem = private_pem(key)
        fp = hashlib.sha256(public_pem(key).encode()).hexdigest()[:24]
        if self.dir is not None:
            tmp = self.dir / f".{fp}.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pem)
            os.replace(tmp, self.dir / f"{fp}.pem")
        return fp

    def take(self, used: list[str]) -> tuple[rsa.RSAPrivateKey, str]:
        """A key not in ``used`` (fingerprints); ``used`` is extended with it."""
        for p in self._files():
            fp = p.stem
            if fp in used:
                continue
            try:
                key = load_private(p.read_text())
            except (OSError, ValueError):
                continue
            used.append(fp)
            return key, fp
        key = new_private_key()
        fp = self._add(key)
        used.append(fp)
        return key, fp

    def top_up(self) -> None:
        while len(self._files()) < self.TARGET and self.dir is not None:
            self._add(new_private_key())
