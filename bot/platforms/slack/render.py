"""Card → Block Kit, and the Slack views (modals, App Home) built from neutral data.

Only rendering lives here: the core already localised every string of a Card. Slack's limits
(header 150 chars, section 3000, 10 fields of 2000, 25 elements per actions block) are applied
by truncation so a long reason never makes chat.postMessage fail with invalid_blocks.
"""

from __future__ import annotations

from typing import Any

from bot.core.gateway import Button, Card
from bot.core.verdict import Severity

Block = dict[str, Any]

# Block Kit has no colour outside legacy attachments; an emoji in the header carries severity.
_SEVERITY_MARK = {
    Severity.NONE: "",
    Severity.REVIEW: ":large_yellow_circle: ",
    Severity.QUARANTINE: ":large_orange_circle: ",
    Severity.CRITICAL: ":red_circle: ",
}
# Slack buttons know only primary, danger and the default look.
_STYLES = {"primary": "primary", "success": "primary", "danger": "danger"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str, limit: int = 3000) -> dict[str, Any]:
    return {"type": "plain_text", "text": _cut(text, limit) or " ", "emoji": True}


def mrkdwn(text: str, limit: int = 3000) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _cut(text, limit) or " "}


def card_text(card: Card) -> str:
    """The notification/screen-reader text that goes with the blocks."""
    return _cut(card.fallback_text or card.title, 3000)


def card_blocks(card: Card) -> list[Block]:
    """Header, body, fields, footer context and one actions block carrying the buttons.

    Each button's action_id and value are the core's custom id `veille:<action>:<ticket>`, so
    a press after a restart still names its ticket.
    """
    mark = _SEVERITY_MARK.get(card.severity, "") if card.severity is not None else ""
    blocks: list[Block] = [{"type": "header", "text": plain(mark + card.title, 150)}]
    if card.body:
        blocks.append({"type": "section", "text": mrkdwn(card.body)})
    fields = [mrkdwn(f"*{name}*\n{value}", 2000) for name, value in card.fields]
    for start in range(0, len(fields), 10):
        blocks.append({"type": "section", "fields": fields[start : start + 10]})
    if card.footer:
        blocks.append({"type": "context", "elements": [mrkdwn(card.footer)]})
    if card.buttons:
        blocks.append(actions_block(card.buttons))
    return blocks


def actions_block(buttons: tuple[Button, ...]) -> Block:
    """One actions block; each action_id and value is the core's custom id."""
    elements: list[Block] = []
    for button in buttons[:25]:
        element: Block = {
            "type": "button",
            "text": plain(button.label, 75),
            "action_id": button.custom_id,
            "value": button.custom_id,
        }
        if button.style in _STYLES:
            element["style"] = _STYLES[button.style]
        elements.append(element)
    return {"type": "actions", "block_id": "veille_actions", "elements": elements}


def notice_blocks(text: str, buttons: tuple[Button, ...]) -> list[Block]:
    """A private notice with its buttons (an author's Appeal): the text, then the buttons."""
    blocks: list[Block] = [{"type": "section", "text": mrkdwn(text)}]
    if buttons:
        blocks.append(actions_block(buttons))
    return blocks


def reply_blocks(text: str, card: Card | None) -> list[Block]:
    """Blocks for a command reply: the card when there is one, else the text as a section."""
    if card is not None:
        blocks = card_blocks(card)
        if text:
            blocks.insert(0, {"type": "section", "text": mrkdwn(text)})
        return blocks
    return [{"type": "section", "text": mrkdwn(text)}]


def note_modal(
    *, callback_id: str, title: str, label: str, submit: str, close: str, private_metadata: str
) -> Block:
    """The form a ticket action asks for (Add note, Resolve, Appeal): one multiline text input."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": private_metadata,
        "title": plain(title, 24),
        "submit": plain(submit, 24),
        "close": plain(close, 24),
        "blocks": [
            {
                "type": "input",
                "block_id": "note",
                "label": plain(label, 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "note",
                    "multiline": True,
                    "max_length": 2000,
                },
            }
        ],
    }


def home_view(title: str, text: str, card: Card | None) -> Block:
    """The App Home tab: a title and the open tickets as the core listed them."""
    blocks: list[Block] = [{"type": "header", "text": plain(title, 150)}]
    blocks.extend(reply_blocks(text, card))
    return {"type": "home", "blocks": blocks[:100]}
