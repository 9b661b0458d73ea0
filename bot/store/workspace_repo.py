"""Workspace settings: applying what a setup wizard collected, and the read-only view adapters get."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.errors import VeilleError
from bot.core.i18n import LOCALES, t
from bot.core.policy import SENSITIVITIES
from bot.core.types import SetupInput, WorkspaceView
from bot.store import repos
from bot.store.models import ChannelOverride, Workspace


def workspace_view(ws: Workspace, overrides: Sequence[ChannelOverride]) -> WorkspaceView:
    assert ws.id is not None
    return WorkspaceView(
        id=ws.id, platform=ws.platform, external_id=ws.external_id, name=ws.name, locale=ws.locale,
        timezone=ws.timezone, safety_channel_id=ws.safety_channel_id,
        quarantine_channel_id=ws.quarantine_channel_id,
        moderator_role_ids=tuple(ws.moderator_role_ids or ()),
        moderator_user_ids=tuple(ws.moderator_user_ids or ()),
        admin_role_ids=tuple(ws.admin_role_ids or ()), allow_role_ids=tuple(ws.allow_role_ids or ()),
        allow_channel_ids=tuple(o.channel_id for o in overrides if o.allow_listed),
        sensitivity=ws.sensitivity,
        actions=tuple(sorted((str(k), bool(v)) for k, v in (ws.actions or {}).items())),
        digest_schedule=ws.digest_schedule, retention_days=ws.retention_days,
        sla_hours=ws.sla_hours, setup_completed=ws.setup_completed,
    )


def _check(setup: SetupInput, locale: str) -> None:
    """Refuse values the rest of Veille could not use (the message names the field)."""
    presets = [setup.sensitivity, *(s for _, s in setup.channel_sensitivity if s)]
    if any(p is not None and p not in SENSITIVITIES for p in presets):
        raise VeilleError(t("core.setup.bad_sensitivity", locale, allowed=", ".join(SENSITIVITIES)),
                          code="invalid_setup")
    if setup.locale is not None and setup.locale not in LOCALES:
        raise VeilleError(t("core.setup.bad_locale", locale, allowed=", ".join(LOCALES)),
                          code="invalid_setup")
    for value in (setup.retention_days, setup.sla_hours):
        if value is not None and not 0 < value <= 3650:
            raise VeilleError(t("core.setup.bad_number", locale), code="invalid_setup")


async def apply_setup(session: AsyncSession, ws: Workspace, setup: SetupInput, now: datetime) -> None:
    """Write the wizard's choices; None leaves a setting unchanged. Marks setup completed."""
    _check(setup, ws.locale)
    assert ws.id is not None
    for name in ("locale", "timezone", "safety_channel_id", "quarantine_channel_id", "sensitivity",
                 "digest_schedule", "retention_days", "sla_hours"):
        value = getattr(setup, name)
        if value is not None:
            setattr(ws, name, value)
    for name in ("moderator_role_ids", "moderator_user_ids", "admin_role_ids", "allow_role_ids"):
        value = getattr(setup, name)
        if value is not None:
            setattr(ws, name, list(value))
    toggles = {k: v for k, v in (("delete", setup.delete), ("notify", setup.notify),
                                 ("timeout", setup.timeout)) if v is not None}
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
