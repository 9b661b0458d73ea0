"""Who may do what: Veille's roles derived from the platform roles chosen in the setup wizard.

Buttons in a channel can be pressed by anyone who sees them, so every operation asks here on
the server side; the adapters only pass the Actor along.
"""

from __future__ import annotations

from bot.core.actions import ACTIONS
from bot.core.types import Actor, Role
from bot.store.models import Workspace

_RANK = {Role.MEMBER: 0, Role.MODERATOR: 1, Role.ADMIN: 2}

# The least role each operation other than a ticket action needs (those declare theirs in
# bot.core.actions); one not listed needs a moderator.
REQUIRED: dict[str, Role] = {
    "setup": Role.ADMIN,
    "add_hashes": Role.ADMIN,
    "share_banks": Role.ADMIN,  # publish, unpublish, subscribe, unsubscribe
    "list_shared_banks": Role.MODERATOR,
    "status": Role.MODERATOR,
    "list_tickets": Role.MODERATOR,
    "show_ticket": Role.MODERATOR,
    "scan": Role.MODERATOR,
    "digest_now": Role.MODERATOR,
    "report": Role.MEMBER,  # anyone may report a message (bot/core/reports.py)
    "protect": Role.MEMBER,  # anyone may protect a photo of themselves (bot/core/protect.py)
    "handoff": Role.ADMIN,  # summaries for PHAROS, 3018, NCMEC, StopNCII
}


def role_of(workspace: Workspace, actor: Actor) -> Role:
    """Admin: the platform's own admin right or an admin role; moderator: a moderator role or a
    listed moderator user (Slack); everyone else is a member."""
    roles = set(actor.role_ids)
    if actor.is_platform_admin or roles & set(workspace.admin_role_ids or []):
        return Role.ADMIN
    if roles & set(workspace.moderator_role_ids or []) or actor.user_id in (
        workspace.moderator_user_ids or []
    ):
        return Role.MODERATOR
    return Role.MEMBER


def at_least(role: Role, needed: Role) -> bool:
    return _RANK[role] >= _RANK[needed]


def required_role(operation: str) -> Role:
    action = ACTIONS.get(operation)
    return action.role if action is not None else REQUIRED.get(operation, Role.MODERATOR)


def allowed(workspace: Workspace, actor: Actor, operation: str) -> bool:
    """True when the actor may perform `operation` in this workspace."""
    return at_least(role_of(workspace, actor), required_role(operation))
