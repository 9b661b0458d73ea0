"""`veille hashes publish|unpublish|subscribe|unsubscribe|shared`: shared banks from a shell.

The operator acts for a community named PLATFORM:ID (a workspace Veille has seen); each step is
audited in that community's trail with the actor `cli`, exactly as the chat commands are.
"""

from __future__ import annotations

import json

import click
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli.common import EXIT_FLAGGED, EXIT_OK, EXIT_USAGE, console, fail, get_settings, stdout
from bot.core.audit import audit
from bot.core.clock import Clock
from bot.core.i18n import t
from bot.core.types import Actor
from bot.store import bank_sharing, repos
from bot.store.models import Workspace

CLI_ACTOR = Actor("cli", "operator (veille CLI)")


async def _workspace(session: AsyncSession, spec: str, locale: str) -> Workspace:
    platform, _, external_id = spec.partition(":")
    ws = await repos.get_workspace(session, platform, external_id) if external_id else None
    if ws is None or ws.id is None:
        fail(t("hashes.shared.unknown_workspace", locale, workspace=spec), EXIT_USAGE)
    return ws


def register(hashes: click.Group) -> None:
    """Adds the shared-bank sub-commands to the `hashes` group."""
    from bot.cli.hashes import _run  # one session helper for every hashes sub-command

    def step_command(step: str, help_text: str, with_bank: bool = False) -> None:
        @hashes.command(name=step, help=help_text)
        @click.option(
            "--workspace", required=True, help="The community, as PLATFORM:ID (e.g. discord:1234)."
        )
        @click.option("--name", required=True, help="The shared bank's name.")
        @click.option(
            "--bank",
            default="confirmed",
            show_default=True,
            hidden=not with_bank,
            help="The community's bank to publish.",
        )
        def command(workspace: str, name: str, bank: str) -> None:
            settings = get_settings()
            locale = settings.default_locale
            now = Clock().now()

            async def work(session: AsyncSession) -> str:
                ws = await _workspace(session, workspace, locale)
                assert ws.id is not None
                try:
                    if step == "publish":
                        row = await bank_sharing.publish(
                            session, ws.id, name, bank=bank, by="cli", now=now
                        )
                    elif step == "unpublish":
                        row = await bank_sharing.unpublish(session, ws.id, name, now=now)
                    elif step == "subscribe":
                        row = await bank_sharing.subscribe(session, ws.id, name, by="cli", now=now)
                    else:
                        row = await bank_sharing.unsubscribe(session, ws.id, name, now=now)
                except bank_sharing.SharingError as exc:
                    return t(f"hashes.shared.error.{exc.code}", locale, name=exc.name)
                audit(
                    session,
                    workspace_id=ws.id,
                    ticket_id=None,
                    actor=CLI_ACTOR,
                    action=f"bank_{step}",
                    at=now,
                    data={"name": row.name, "bank": row.bank},
                )
                views = await bank_sharing.list_shared(session, ws.id)
                entries = next((v.entries for v in views if v.name == row.name), 0)
                done = {
                    "publish": "published",
                    "unpublish": "unpublished",
                    "subscribe": "subscribed",
                    "unsubscribe": "unsubscribed",
                }[step]
                return "ok:" + t(
                    f"hashes.shared.{done}", locale, name=row.name, bank=row.bank, entries=entries
                )

            said = _run(settings, work)
            if said.startswith("ok:"):
                stdout.print(said[3:])
                raise SystemExit(EXIT_OK)
            console.print(f"[red]✗[/] {said}")
            raise SystemExit(EXIT_FLAGGED)

    step_command("publish", "Share a community's bank under a name others may subscribe to.", True)
    step_command("unpublish", "Stop sharing a bank (its subscribers stop matching it).")
    step_command("subscribe", "Make a community match another community's shared bank.")
    step_command("unsubscribe", "Stop a community matching a shared bank.")

    @hashes.command()
    @click.option(
        "--workspace", default=None, help="Show what this PLATFORM:ID publishes and subscribes to."
    )
    @click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
    def shared(workspace: str | None, as_json: bool) -> None:
        """The live shared banks and their entry counts."""
        settings = get_settings()
        locale = settings.default_locale

        async def work(session: AsyncSession) -> list[bank_sharing.SharedBankView]:
            ws_id = (await _workspace(session, workspace, locale)).id if workspace else None
            return await bank_sharing.list_shared(session, ws_id)

        views = _run(settings, work)
        if as_json:
            click.echo(json.dumps([vars(v) for v in views]))
            return
        if not views:
            stdout.print(t("hashes.shared.none", locale))
        for v in views:
            flags = (t("hashes.shared.own", locale) if v.own else "") + (
                t("hashes.shared.is_subscribed", locale) if v.subscribed else ""
            )
            stdout.print(
                t("hashes.shared.line", locale, name=v.name, entries=v.entries, flags=flags)
            )
