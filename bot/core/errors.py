"""Errors the core raises to adapters. `str()` is already localised: adapters show it as is."""

from __future__ import annotations


class VeilleError(Exception):
    """A refusal or failure a person should read. `code` is stable for tests and logs."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


class PermissionDenied(VeilleError):
    """The actor's role does not allow the operation (the refusal is already audited)."""

    code = "permission_denied"


class NotFound(VeilleError):
    """The ticket (or other object) does not exist in this workspace."""

    code = "not_found"


class EvidenceKeyMissing(VeilleError):
    """VEILLE_SECRET_KEY is not set: evidence cannot be encrypted or revealed."""

    code = "no_secret_key"
