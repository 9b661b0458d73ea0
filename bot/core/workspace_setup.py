"""Workspace settings in the core: checking and applying what a setup wizard collected, and the
read-only view adapters get.

What each setting may be is declared once, in `bot/workspace_settings.py`; this module asks it
about every value a wizard sent and says a refusal in the workspace's language (a
`VeilleError` with code "invalid_setup"), so both platforms refuse a bad value the same way.
The store only holds the rows: it knows nothing of wizards or languages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.errors import VeilleError
from bot.core.i18n import LOCALES, t
from bot.core.types import SetupInput, WorkspaceView
from bot.store import repos
from bot.store.models import ChannelOverride, Workspace
from bot.workspace_settings import ACTIONS, SettingError, check_sensitivity, check_setting

# SetupInput fields stored as they are on the Workspace row (lists as JSON lists); the action
# toggles go into its `actions` object, channels into channel overrides.
_PLAIN = (
    "locale",
    "timezone",
    "safety_channel_id",
    "quarantine_channel_id",
    "sensitivity",
    "digest_schedule",
    "retention_days",
    "sla_hours",
)
_LISTS = ("moderator_role_ids", "moderator_user_ids", "admin_role_ids", "allow_role_ids")


def workspace_view(ws: Workspace, overrides: Sequence[ChannelOverride]) -> WorkspaceView:
    assert ws.id is not None
    return WorkspaceView(
        id=ws.id,
        platform=ws.platform,
        external_id=ws.external_id,
        name=ws.name,
        locale=ws.locale,
        timezone=ws.timezone,
        safety_channel_id=ws.safety_channel_id,
        quarantine_channel_id=ws.quarantine_channel_id,
        moderator_role_ids=tuple(ws.moderator_role_ids or ()),
        moderator_user_ids=tuple(ws.moderator_user_ids or ()),
        admin_role_ids=tuple(ws.admin_role_ids or ()),
        allow_role_ids=tuple(ws.allow_role_ids or ()),
        allow_channel_ids=tuple(o.channel_id for o in overrides if o.allow_listed),
        sensitivity=ws.sensitivity,
        actions=tuple(sorted((str(k), bool(v)) for k, v in (ws.actions or {}).items())),
        digest_schedule=ws.digest_schedule,
        retention_days=ws.retention_days,
        sla_hours=ws.sla_hours,
        setup_completed=ws.setup_completed,
    )


def check_setup(setup: SetupInput, locale: str) -> None:
    """Refuse values the rest of Veille could not use, in `locale` (the message names the
    setting and what it may be). Every wizard's input passes here before anything is stored."""
    try:
        for item in fields(setup):
            if item.name != "channel_sensitivity":
                check_setting(item.name, getattr(setup, item.name), locales=LOCALES)
        for _, preset in setup.channel_sensitivity:
            if preset:  # "" removes the channel's override
                check_sensitivity(preset)
    except SettingError as exc:
        raise VeilleError(t(exc.key, locale, **exc.values), code="invalid_setup") from exc


async def apply_setup(
    session: AsyncSession, ws: Workspace, setup: SetupInput, now: datetime
) -> None:
    """Write the wizard's choices; None leaves a setting unchanged. Marks setup completed."""
    check_setup(setup, ws.locale)
    assert ws.id is not None
    for name in _PLAIN:
        value = getattr(setup, name)
        if value is not None:
            setattr(ws, name, value)
    for name in _LISTS:
        value = getattr(setup, name)
        if value is not None:
            setattr(ws, name, list(value))
    toggles = {name: getattr(setup, name) for name in ACTIONS if getattr(setup, name) is not None}
    if toggles:
        ws.actions = {**(ws.actions or {}), **toggles}  # a new dict: JSON columns track assignment
    if setup.allow_channel_ids is not None:
        wanted = set(setup.allow_channel_ids)
        for override in await repos.channel_overrides(session, ws.id):
            if override.allow_listed and override.channel_id not in wanted:
                override.allow_listed = False
        for channel_id in wanted:
            await repos.set_channel_override(session, ws.id, channel_id, allow_listed=True)
    for channel_id, preset in setup.channel_sensitivity:
        await repos.set_channel_override(session, ws.id, channel_id, sensitivity=preset)
    ws.setup_completed = True
    ws.updated_at = now
