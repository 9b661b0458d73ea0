"""Which media of a message are scanned: its own refs (attachments, embed images) and the links
in its text, each kind up to a documented cap. Nothing beyond a cap is dropped silently: it is
returned as skipped, and the pipeline opens a REVIEW ticket "not scanned: …" for it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.core.types import MediaRef

# Chat platforms wrap links: Slack as <https://x|label>, Discord as <https://x> to hide the embed.
_URL = re.compile(r"https?://[^\s<>|\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}»"

# Discord allows 10 attachments a message and 10 embeds (an image and a thumbnail each); Slack
# 10 files. Links are fetched from the open web, so fewer: each may unfurl to 3 images.
MAX_ATTACHED = 20  # attachments and embed images together
MAX_LINKS = 5
_MAX_FOUND = 200  # links read from one text at most (the rest are counted as skipped too)


@dataclass
class MediaPlan:
    """The refs to scan, in order, and those over a cap with the code of why (for the ticket)."""

    refs: list[MediaRef] = field(default_factory=list)
    skipped: list[tuple[MediaRef, str]] = field(default_factory=list)


def links_in(text: str, *, limit: int = _MAX_FOUND) -> list[str]:
    """Distinct http(s) URLs in `text`, in order, trailing punctuation removed, at most `limit`."""
    found: list[str] = []
    for match in _URL.finditer(text or ""):
        url = match.group(0).rstrip(_TRAILING)
        if url not in found:
            found.append(url)
        if len(found) >= limit:
            break
    return found


def plan_media(text: str, media: tuple[MediaRef, ...]) -> MediaPlan:
    """The event's own refs first (up to MAX_ATTACHED), then the links in the text that are not
    already among them (up to MAX_LINKS); everything else is skipped, with its cap's code."""
    plan = MediaPlan()
    attached = [ref for ref in media if ref.kind != "link"]
    links = [ref for ref in media if ref.kind == "link"]
    known = {ref.url for ref in media}
    for url in links_in(text):
        if url not in known:
            links.append(MediaRef(kind="link", url=url))
            known.add(url)
    plan.refs = attached[:MAX_ATTACHED] + links[:MAX_LINKS]
    plan.skipped = [(ref, "too_many_attached") for ref in attached[MAX_ATTACHED:]] + [
        (ref, "too_many_links") for ref in links[MAX_LINKS:]
    ]
    return plan


def media_of(text: str, media: tuple[MediaRef, ...]) -> list[MediaRef]:
    """The media to scan (`plan_media(...).refs`)."""
    return plan_media(text, media).refs
