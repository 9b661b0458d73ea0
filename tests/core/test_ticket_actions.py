"""The table of ticket actions (bot/core/actions.py) says what the cards offer and where each
step may run; the core has a handler and the catalogues the strings for every action in it."""

from __future__ import annotations

from bot.core import tickets
from bot.core.actions import ACTIONS, buttons_for, refusal
from bot.core.gateway import button_id, parse_button_id
from bot.core.i18n import LOCALES, catalogue

KINDS = ("detection", "report", "copy", "help_request")


def test_every_moderator_action_has_its_handler_and_every_form_its_strings() -> None:
    assert set(tickets._HANDLERS) == {name for name, a in ACTIONS.items() if not a.by_author}
    for action in ACTIONS.values():
        keys = [action.label_key] + (
            [action.form.title_key, action.form.label_key] if action.form else []
        )
        keys += [] if action.by_author or action.name == "reveal" else [action.done_key]
        for locale in LOCALES:
            assert [k for k in keys if k not in catalogue(locale)] == [], (action.name, locale)


def test_cards_offer_the_buttons_of_the_ticket_kind_and_status() -> None:
    detection = {
        "open": ("claim", "confirm", "false_positive", "escalate", "note", "reveal"),
        "claimed": ("unclaim", "confirm", "false_positive", "escalate", "note", "reveal"),
        "escalated": ("claim", "confirm", "false_positive", "note", "reveal"),
        "appealed": ("uphold", "reverse", "note", "reveal"),
        "resolved": ("reopen", "note"),
    }
    help_request = {
        "open": ("claim", "resolve", "note"),
        "claimed": ("unclaim", "resolve", "note"),
        "escalated": ("claim", "resolve", "note"),
        "resolved": ("reopen", "note"),
    }
    for kind in KINDS:
        expected = help_request if kind == "help_request" else detection
        for status in ("open", "claimed", "escalated", "appealed", "resolved"):
            names = tuple(a.name for a in buttons_for(kind, status, has_original=True))
            assert names == expected.get(status, ()), (kind, status)
            without = tuple(a.name for a in buttons_for(kind, status, has_original=False))
            assert without == tuple(n for n in names if n != "reveal")  # CRITICAL keeps no bytes


def _rules(action: str, kind: str, status: str) -> str | None:
    """The state rules said plainly: the error code a step gets, or None when it runs."""
    if action == "reveal":
        return None
    if status == "resolved" and action not in ("reopen", "note"):
        return "resolved"
    if kind == "help_request" and action in ("confirm", "false_positive"):
        return "invalid_action"
    if status == "appealed" and action not in ("uphold", "reverse", "note"):
        return "appealed"
    if action == "unclaim" and status != "claimed":
        return "not_claimed"
    if action == "reopen" and status != "resolved":
        return "not_resolved"
    if action in ("uphold", "reverse") and status != "appealed":
        return "not_appealed"
    return None


def test_each_action_runs_only_in_the_states_that_make_sense() -> None:
    for name, action in ACTIONS.items():
        if action.by_author:  # an appeal is checked against its ticket by appeals.file_appeal
            continue
        for kind in KINDS:
            for status in ("open", "claimed", "escalated", "appealed", "resolved"):
                if kind == "help_request" and (
                    status == "appealed" or name in ("uphold", "reverse")
                ):
                    continue  # a help request is never appealed (appeals._appealable)
                refused = refusal(action, kind, status)
                assert (refused[1] if refused else None) == _rules(name, kind, status), (
                    name,
                    kind,
                    status,
                )


def test_button_ids_name_a_declared_action() -> None:
    for name in ACTIONS:
        assert parse_button_id(button_id(name, 7)) == (name, 7)
    assert parse_button_id("veille:dance:7") is None
    assert parse_button_id("veille:claim:x") is None
