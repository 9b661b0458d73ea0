"""Slash commands and the "Scan with Veille" context menu: each one is a single core call
(the victims' commands — "Report to Veille", /protect, /ticket handoff — are in victims.py).

Names and descriptions are `locale_str`s translated by `VeilleTranslator` (EN default, FR from
discord.toml). Permission checks are the core's: these commands are visible to everyone and a
member using a moderator command gets the core's refusal, ephemerally.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.core.types import MediaRef, MessageEvent, Platform
from bot.platforms.discord.actions import NoteModal, run_ticket_action
from bot.platforms.discord.events import to_event
from bot.platforms.discord.replies import (
    answer,
    defer,
    interaction_actor,
    open_modal,
    refuse,
    send_reply,
    veille_of,
    workspace_id,
)
from bot.platforms.discord.translator import loc
from bot.platforms.discord.victims import register_victims

Interaction = discord.Interaction[Any]
DISCORD = Platform.DISCORD
_MAX_HASH_IMAGE = 20 * 1024 * 1024
DEFAULT_BANK = "imported"  # the bank of hand-added images (confirmed tickets go to "confirmed")


def _group(name: str, description: str) -> app_commands.Group:
    return app_commands.Group(
        name=loc(name, f"cmd.{name}.name"),
        description=loc(description, f"cmd.{name}.description"),
        guild_only=True,
    )


def _cmd(group: app_commands.Group | None, name: str, description: str, key: str) -> Any:
    """Decorator for a command named `name` in `group` (or top level), strings from `key`."""
    maker = group.command if group is not None else app_commands.command
    return maker(
        name=loc(name, f"cmd.{key}.name"), description=loc(description, f"cmd.{key}.description")
    )


def _describe(**keys: tuple[str, str]) -> Any:
    """Parameter descriptions: name -> (English text, catalogue key)."""
    return app_commands.describe(
        **{name: loc(text, f"cmd.{key}") for name, (text, key) in keys.items()}
    )


def register_commands(tree: app_commands.CommandTree[Any]) -> None:
    """Add every Veille command to `tree` (synced by the client's setup_hook)."""
    veille_group = _group("veille", "Veille moderation")
    ticket = _group("ticket", "Moderation tickets")
    hashes = _group("hashes", "Hash banks of known images")
    digest = _group("digest", "Safety digest")

    @_cmd(veille_group, "setup", "Configure Veille for this server", "veille.setup")
    async def setup(interaction: Interaction) -> None:
        from bot.platforms.discord.setup import start_wizard

        await start_wizard(interaction)

    @_cmd(veille_group, "status", "Veille's state on this server", "veille.status")
    async def status(interaction: Interaction) -> None:
        await answer(
            interaction,
            veille_of(interaction).status(
                DISCORD, workspace_id(interaction), interaction_actor(interaction)
            ),
        )

    @_cmd(ticket, "list", "Open tickets", "ticket.list")
    @_describe(status=("open, claimed, escalated, resolved or all", "ticket.list.status"))
    async def ticket_list(interaction: Interaction, status: str = "open") -> None:
        await answer(
            interaction,
            veille_of(interaction).list_tickets(
                DISCORD, workspace_id(interaction), interaction_actor(interaction), status=status
            ),
        )

    @_cmd(ticket, "show", "Show a ticket", "ticket.show")
    @_describe(ticket_id=("Ticket number", "ticket.id"))
    async def ticket_show(interaction: Interaction, ticket_id: int) -> None:
        await answer(
            interaction,
            veille_of(interaction).show_ticket(
                DISCORD, workspace_id(interaction), interaction_actor(interaction), ticket_id
            ),
        )

    @_cmd(ticket, "claim", "Take a ticket", "ticket.claim")
    @_describe(ticket_id=("Ticket number", "ticket.id"))
    async def ticket_claim(interaction: Interaction, ticket_id: int) -> None:
        await run_ticket_action(interaction, "claim", ticket_id)

    @_cmd(ticket, "resolve", "Resolve a ticket", "ticket.resolve")
    @_describe(
        ticket_id=("Ticket number", "ticket.id"),
        note=("What was done (a form opens when empty)", "ticket.resolve.note"),
    )
    async def ticket_resolve(
        interaction: Interaction, ticket_id: int, note: str | None = None
    ) -> None:
        await run_ticket_action(interaction, "resolve", ticket_id, note=note)

    @_cmd(ticket, "note", "Add a note to a ticket", "ticket.note")
    @_describe(ticket_id=("Ticket number", "ticket.id"), text=("The note", "ticket.note.text"))
    async def ticket_note(
        interaction: Interaction, ticket_id: int, text: str | None = None
    ) -> None:
        if text:
            await run_ticket_action(interaction, "note", ticket_id, note=text)
        else:
            await open_modal(interaction, NoteModal("note", ticket_id, interaction.locale.value))

    @_cmd(None, "scan", "Scan an image or a link (scores only, nothing is removed)", "scan")
    @app_commands.guild_only()
    @_describe(image=("An image to scan", "scan.image"), link=("A link to scan", "scan.link"))
    async def scan(
        interaction: Interaction, image: discord.Attachment | None = None, link: str | None = None
    ) -> None:
        media = (
            ()
            if image is None
            else (
                MediaRef(
                    kind="attachment",
                    url=image.url,
                    media_id=str(image.id),
                    filename=image.filename,
                    content_type=image.content_type or "",
                    size=image.size,
                ),
            )
        )
        actor = interaction_actor(interaction)
        event = MessageEvent(
            platform=DISCORD,
            workspace_id=workspace_id(interaction),
            channel_id=str(interaction.channel_id or ""),
            message_id=f"scan-{interaction.id}",
            author=actor,
            text=link or "",
            media=media,
        )
        await defer(interaction)
        await answer(interaction, veille_of(interaction).scan_event(event, actor))

    @app_commands.context_menu(name=loc("Scan with Veille", "cmd.scan_message.name"))
    @app_commands.guild_only()
    async def scan_message(interaction: Interaction, message: discord.Message) -> None:
        client = interaction.client
        event = to_event(message, client.options.ai_apps)  # type: ignore[attr-defined]
        await defer(interaction)
        await answer(
            interaction, veille_of(interaction).scan_event(event, interaction_actor(interaction))
        )

    @_cmd(hashes, "add", "Add an image to a hash bank", "hashes.add")
    @_describe(
        image=("The image to bank", "hashes.add.image"),
        bank=("Bank name (default: the server's block list)", "hashes.add.bank"),
    )
    async def hashes_add(
        interaction: Interaction, image: discord.Attachment, bank: str = DEFAULT_BANK
    ) -> None:
        if image.size > _MAX_HASH_IMAGE:
            await refuse(interaction, f"{image.filename}: {image.size} bytes")
            return
        await defer(interaction)
        data = await image.read()
        veille = veille_of(interaction)
        await answer(
            interaction,
            veille.add_hashes(
                DISCORD, workspace_id(interaction), interaction_actor(interaction), [data], bank
            ),
        )

    @_cmd(digest, "now", "Post the digest now", "digest.now")
    async def digest_now(interaction: Interaction) -> None:
        await defer(interaction)
        await answer(
            interaction,
            veille_of(interaction).digest_now(
                DISCORD, workspace_id(interaction), interaction_actor(interaction)
            ),
        )

    @_cmd(None, "help", "What Veille does and where to find help", "help")
    async def help_command(interaction: Interaction) -> None:
        await send_reply(interaction, veille_of(interaction).help(interaction.locale.value))

    register_victims(tree, ticket)  # Report to Veille, /protect, /ticket handoff (issue 19)
    for command in (veille_group, ticket, hashes, digest, scan, scan_message, help_command):
        tree.add_command(command)
