"""Links in message text: the URLs the safe fetcher should look at (images or pages with og:image)."""

from __future__ import annotations

import re

from bot.core.types import MediaRef

# Chat platforms wrap links: Slack as <https://x|label>, Discord as <https://x> to hide the embed.
_URL = re.compile(r"https?://[^\s<>|\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}»"


def links_in(text: str, *, limit: int = 5) -> list[str]:
    """Distinct http(s) URLs in `text`, in order, trailing punctuation removed, at most `limit`."""
    found: list[str] = []
    for match in _URL.finditer(text or ""):
        url = match.group(0).rstrip(_TRAILING)
        if url not in found:
            found.append(url)
        if len(found) >= limit:
            break
    return found


def media_of(text: str, media: tuple[MediaRef, ...], *, limit: int = 4) -> list[MediaRef]:
    """The media to scan: the event's own refs first, then links in the text not already there."""
    refs = list(media)
    known = {ref.url for ref in refs}
    for url in links_in(text):
        if url not in known:
            refs.append(MediaRef(kind="link", url=url))
            known.add(url)
    return refs[:limit]
