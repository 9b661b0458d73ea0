"""Answering interactions with the core's `Reply`s, and turning core refusals into ephemeral text."""

from __future__ import annotations

import io
import logging
import mimetypes
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import discord

from bot.core.errors import VeilleError
from bot.core.gateway import Reply
from bot.core.i18n import t
from bot.core.types import Actor
from bot.platforms.discord.events import actor_of
from bot.platforms.discord.render import render_card

if TYPE_CHECKING:
    from bot.core.service import Veille

log = logging.getLogger(__name__)


def veille_of(interaction: discord.Interaction[Any]) -> Veille:
    return interaction.client.veille  # type: ignore[no-any-return]


def interaction_actor(interaction: discord.Interaction[Any]) -> Actor:
    """The person behind an interaction; its `locale` is their Discord client language."""
    return actor_of(interaction.user, locale=interaction.locale.value)


def workspace_id(interaction: discord.Interaction[Any]) -> str:
    return str(interaction.guild_id or "")


async def send_reply(interaction: discord.Interaction[Any], reply: Reply) -> None:
    """Send `reply` as the interaction's answer (or a follow-up when already answered).
    Revealed images are only ever sent ephemerally, whatever the reply says."""
    kwargs: dict[str, Any] = {"ephemeral": reply.ephemeral or reply.image_png is not None}
    files: list[discord.File] = []
    if reply.card is not None:
        rendered = render_card(reply.card)
        kwargs["embed"] = rendered.embed
        if rendered.view is not None:
            kwargs["view"] = rendered.view
        if rendered.file is not None:
            files.append(rendered.file)
    if reply.image_png is not None:
        mime = str(reply.extras.get("mime") or "image/png")
        extension = mimetypes.guess_extension(mime) or ".png"
        files.append(
            discord.File(
                io.BytesIO(reply.image_png), filename=f"SPOILER_original{extension}", spoiler=True
            )
        )
    if files:
        kwargs["files"] = files
    if reply.text or not (reply.card or files):
        kwargs["content"] = (reply.text or "\u2705")[:2000]
    if interaction.response.is_done():
        await interaction.followup.send(**kwargs)
    else:
        await interaction.response.send_message(**kwargs)


async def refuse(interaction: discord.Interaction[Any], text: str) -> None:
    """An ephemeral refusal (the core already localised and audited it)."""
    await send_reply(interaction, Reply(text=text, ephemeral=True, ok=False))


async def answer(interaction: discord.Interaction[Any], call: Awaitable[Reply]) -> Reply | None:
    """Await a core call and send its Reply; a VeilleError becomes an ephemeral refusal.
    Returns the Reply so callers can open a modal it asks for."""
    try:
        reply = await call
    except VeilleError as exc:
        await refuse(interaction, str(exc))
        return None
    except Exception:  # a bug or an outage: say so rather than leave Discord's "did not respond"
        log.exception("core call failed for interaction %s", interaction.id)
        await refuse(interaction, t("discord.error", interaction.locale.value))
        return None
    if reply.open_modal is None:
        await send_reply(interaction, reply)
    return reply


async def defer(interaction: discord.Interaction[Any]) -> None:
    """Acknowledge within Discord's 3 seconds when the core may take longer (scans, digests)."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)


async def open_modal(interaction: discord.Interaction[Any], modal: discord.ui.Modal) -> None:
    """Open `modal`, noting that this process holds it: a submission of a modal opened before a
    restart reaches no live modal, and the client resumes it from its custom id instead
    (VeilleClient.on_interaction)."""
    opened = getattr(interaction.client, "open_modals", None)
    if opened is not None:
        opened.add(modal.custom_id)
    await interaction.response.send_modal(modal)


def modal_values(components: list[Any]) -> dict[str, Any]:
    """What a MODAL_SUBMIT's components carry, by custom id: a text input's or a checkbox's
    `value`, a select's `values`; action rows (type 1) and labels (type 18) are looked into."""
    found: dict[str, Any] = {}
    for component in components:
        if not isinstance(component, dict):
            continue
        if component.get("custom_id") and component.get("type") not in (1, 18):
            found[str(component["custom_id"])] = component.get("values", component.get("value"))
        found.update(modal_values(list(component.get("components") or [])))
        if isinstance(component.get("component"), dict):
            found.update(modal_values([component["component"]]))
    return found
