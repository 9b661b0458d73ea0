"""English error texts of the fetcher, as templates in one place so they can be localised later.

They go into logs and `--json` output, so they stay stable and say what happened and why.
"""

from __future__ import annotations

INVALID_URL = "invalid URL: {detail}"
REFUSED_SCHEME = "refused: scheme '{scheme}' is not allowed"
REFUSED_CREDENTIALS = "refused: URLs with credentials are not allowed"
REFUSED_ADDRESS = "refused: {address} is {kind} address"
REFUSED_RESOLVED = "refused: {host} resolves to {address}, {kind} address"
REFUSED_NOT_AN_ADDRESS = "refused: {detail}"
RESOLVE_FAILED = "could not resolve {host}: {detail}"
RESOLVE_EMPTY = "could not resolve {host}: no address"
CONNECTION_FAILED = "connection failed: {detail}"
TOO_LARGE = "too large: more than {limit}"
TIMED_OUT = "timed out after {seconds:g} s"
TOO_MANY_REDIRECTS = "too many redirects (max {max})"
REDIRECT_WITHOUT_LOCATION = "redirect {status} without a Location header"
HTTP_STATUS = "HTTP {status}"
UNSUPPORTED_ENCODING = "unsupported content encoding '{encoding}'"
BAD_ENCODING = "corrupt {encoding} content"
NO_IMAGE_ON_PAGE = "no image found on this page"
NOT_AN_IMAGE = "not an image or web page ({content_type})"
UNKNOWN_CONTENT = "unknown content type"


def size_text(n_bytes: int) -> str:
    """A byte count as people write it: "20 MB", "512 KB", "900 bytes" (binary units)."""
    if n_bytes >= 1024 * 1024:
        return f"{n_bytes / (1024 * 1024):g} MB"
    if n_bytes >= 1024:
        return f"{n_bytes / 1024:g} KB"
    return f"{n_bytes} bytes"
