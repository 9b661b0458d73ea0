"""Evidence encryption at rest: a Fernet key derived from VEILLE_SECRET_KEY with HKDF-SHA256.

The derivation is fixed (salt and info below) so the same secret always opens old evidence;
changing VEILLE_SECRET_KEY makes previously stored evidence unreadable, by design.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SALT = b"veille-evidence-v1"
_INFO = b"veille quarantine evidence"


class EvidenceUnreadable(ValueError):
    """The evidence was encrypted with another key (VEILLE_SECRET_KEY changed) or altered."""


class EvidenceCipher:
    """Encrypts and decrypts evidence bytes (authenticated: tampering raises ValueError)."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("an empty secret cannot protect evidence")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(
            secret.encode("utf-8")
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise EvidenceUnreadable(
                "evidence cannot be decrypted with the configured key"
            ) from exc
