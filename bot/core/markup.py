"""Quoted user text made inert on the platform it is shown on.

Veille quotes what people wrote (a matched request, a display name, a moderator's note, a link)
on cards and alerts. Rendered as is, `<!channel>` would ping a whole Slack channel and
`[bank login](https://evil)` would be a masked link on Discord. Only text Veille did not write
goes through `inert`; Veille's own markup (a digest's `<#channel>`) is kept.
"""

from __future__ import annotations

import re

_ZWSP = "\u200b"
# Discord: mentions (@everyone, @here, <@id>, <@&role>, <#channel>, </cmd:id>), masked links
# and the markdown that could build one.
_DISCORD_MENTION = re.compile(r"@(everyone|here)", re.IGNORECASE)
_DISCORD_ANGLE = re.compile(r"<([@#/:!&]|a:|t:)")
_DISCORD_MARKDOWN = re.compile(r"([\\\[\]()*_~`|>])")
_SLACK_BARE = re.compile(r"@(channel|here|everyone)", re.IGNORECASE)


def inert_slack(text: str) -> str:
    """Slack's three control characters escaped: no `<!channel>`, `<@U…>` or `<url|text>` left
    (and a bare @here split, for a client that would link names)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SLACK_BARE.sub(lambda m: f"@{_ZWSP}{m.group(1)}", text)


def inert_discord(text: str) -> str:
    """No mention, masked link or formatting: each marker is escaped or split by a zero-width
    space, so the text reads the same but renders as plain text."""
    text = _DISCORD_MARKDOWN.sub(r"\\\1", text)
    text = _DISCORD_ANGLE.sub(lambda m: f"<{_ZWSP}{m.group(1)}", text)
    return _DISCORD_MENTION.sub(lambda m: f"@{_ZWSP}{m.group(1)}", text)


def inert(text: str, platform: str) -> str:
    """`text` made inert for `platform` ("slack" or "discord"; anything else: both)."""
    if platform == "slack":
        return inert_slack(text)
    if platform == "discord":
        return inert_discord(text)
    return inert_slack(inert_discord(text))
