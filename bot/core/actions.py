"""Ticket actions, declared once: the table every layer reads.

An action's name is its button's custom id part, its audit event and the key of its strings.
The core (`tickets.perform`, `permissions`, `Veille.ticket_action`) reads here who may run it and
in which ticket states; the cards read on which cards and in which order its button appears;
both adapters read whether it asks for a note first and which form to show. Adding an action is
a row here, its handler in `bot/core/tickets.py` and its catalogue strings — no adapter changes.

Catalogue keys by convention: `core.button.<name>` (the button label) and
`core.ticket.done.<name>` (what the actor is told after it ran); a form names its own keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.core.types import Role

ButtonStyle = Literal["primary", "secondary", "success", "danger"]

# A ticket's statuses. "appealed": the author contests a decision, which must be decided first.
STATUSES = ("open", "claimed", "escalated", "appealed", "resolved")
UNDECIDED = frozenset({"open", "claimed", "escalated"})
EVERY_STATUS = frozenset(STATUSES)
HELP_REQUEST = "help_request"  # the ticket kind a person's call for help opens (no detection)

# What a ticket in these statuses says to an action that does not run in them:
# (catalogue key, which formats `id`; error code).
STATUS_REFUSALS: dict[str, tuple[str, str]] = {
    "resolved": ("core.ticket.resolved_already", "resolved"),
    "appealed": ("victims.appeal.decide_first", "appealed"),
}


@dataclass(frozen=True)
class Form:
    """The one-field modal an action asks for before it runs; catalogue keys (the title
    formats `ticket`)."""

    title_key: str
    label_key: str


@dataclass(frozen=True)
class TicketAction:
    """One ticket action. `runs_in` is where the core lets it run; `shown_in` (detection, report
    and copy cards) and `help_shown_in` (help-request cards) where its button is offered, which
    may be fewer: a command can still ask for it."""

    name: str
    runs_in: frozenset[str]
    # Said when the ticket's status is none of runs_in nor in STATUS_REFUSALS: (key, code).
    refusal: tuple[str, str] | None = None
    detections_only: bool = False  # refused on help requests (nothing to bank or allow-list)
    shown_in: frozenset[str] = frozenset()
    help_shown_in: frozenset[str] = frozenset()
    needs_original: bool = False  # offered only when the original bytes were kept
    role: Role = Role.MODERATOR
    critical_role: Role | None = None  # the role it needs on a CRITICAL ticket, when higher
    form: Form | None = None  # without a note, the core asks the adapter to open this form
    style: ButtonStyle = "secondary"
    by_author: bool = (
        False  # the author's (from a DM, checked against the ticket), not a moderator's
    )
    tells_reporters: bool = False  # a report's reporters are told the outcome

    @property
    def label_key(self) -> str:
        return f"core.button.{self.name}"

    @property
    def done_key(self) -> str:
        return f"core.ticket.done.{self.name}"


_NOTE_FORM = Form("tickets.form.note_title", "tickets.form.note_label")

# In card order: a card shows its buttons in the order of this table.
_TABLE = (
    TicketAction(
        "claim",
        UNDECIDED,
        shown_in=frozenset({"open", "escalated"}),
        help_shown_in=frozenset({"open", "escalated"}),
        style="primary",
    ),
    TicketAction(
        "unclaim",
        frozenset({"claimed"}),
        ("core.ticket.not_claimed", "not_claimed"),
        shown_in=frozenset({"claimed"}),
        help_shown_in=frozenset({"claimed"}),
    ),
    # An appeal is decided by a moderator other than the one who decided the ticket (appeals.py).
    TicketAction(
        "uphold",
        frozenset({"appealed"}),
        ("victims.appeal.none_pending", "not_appealed"),
        shown_in=frozenset({"appealed"}),
        style="danger",
    ),
    TicketAction(
        "reverse",
        frozenset({"appealed"}),
        ("victims.appeal.none_pending", "not_appealed"),
        shown_in=frozenset({"appealed"}),
        style="success",
    ),
    TicketAction(
        "confirm",
        UNDECIDED,
        detections_only=True,
        shown_in=UNDECIDED,
        critical_role=Role.ADMIN,
        style="danger",
        tells_reporters=True,
    ),
    TicketAction(
        "false_positive",
        UNDECIDED,
        detections_only=True,
        shown_in=UNDECIDED,
        critical_role=Role.ADMIN,
        style="success",
        tells_reporters=True,
    ),
    TicketAction(
        "resolve",
        UNDECIDED,
        help_shown_in=UNDECIDED,
        style="success",
        form=Form("tickets.form.resolve_title", "tickets.form.resolve_label"),
        tells_reporters=True,
    ),
    TicketAction("escalate", UNDECIDED, shown_in=frozenset({"open", "claimed"})),
    TicketAction(
        "reopen",
        frozenset({"resolved"}),
        ("core.ticket.not_resolved", "not_resolved"),
        shown_in=frozenset({"resolved"}),
        help_shown_in=frozenset({"resolved"}),
    ),
    TicketAction(
        "note",
        EVERY_STATUS,
        shown_in=EVERY_STATUS,
        form=_NOTE_FORM,
        help_shown_in=frozenset({"open", "claimed", "escalated", "resolved"}),
    ),
    TicketAction("reveal", EVERY_STATUS, shown_in=UNDECIDED | {"appealed"}, needs_original=True),
    # The author's, on the private removal notice (appeals.enqueue_notice), never on a card.
    TicketAction(
        "appeal",
        EVERY_STATUS,
        role=Role.MEMBER,
        by_author=True,
        style="primary",
        form=Form("victims.form.appeal_title", "victims.form.appeal_label"),
    ),
)
ACTIONS: dict[str, TicketAction] = {action.name: action for action in _TABLE}
FORM_ACTIONS = tuple(action.name for action in _TABLE if action.form is not None)


def action_named(name: str) -> TicketAction | None:
    """The action called `name`, or None for a name no button or command may carry."""
    return ACTIONS.get(name)


def buttons_for(kind: str, status: str, has_original: bool) -> tuple[TicketAction, ...]:
    """The actions a card offers for a ticket of this kind in this status, in card order."""
    help_request = kind == HELP_REQUEST
    return tuple(
        action
        for action in _TABLE
        if status in (action.help_shown_in if help_request else action.shown_in)
        and (has_original or not action.needs_original)
    )


def refusal(action: TicketAction, kind: str, status: str) -> tuple[str, str] | None:
    """Why `action` cannot run on a ticket of this kind and status — (catalogue key, code) —
    or None when it can. A status's own refusal comes before the action's."""
    if status not in action.runs_in:
        return (
            STATUS_REFUSALS.get(status)
            or action.refusal
            or ("core.ticket.unknown_action", "invalid_action")
        )
    if action.detections_only and kind == HELP_REQUEST:
        return ("core.ticket.not_for_help", "invalid_action")
    return None
