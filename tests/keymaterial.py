"""Key material for tests, generated at test time (never stored in the repository)."""
from __future__ import annotations

import functools

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@functools.lru_cache(maxsize=None)
def pem(traditional: bool = False) -> str:
    """A fresh RSA private key as PEM (PKCS#8, or the traditional "RSA PRIVATE KEY" form)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if traditional else serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def body_line(pem_text: str) -> str:
    """One line from the middle of the key's base64 body: what must never survive redaction."""
    lines = pem_text.strip().splitlines()
    return lines[len(lines) // 2]
