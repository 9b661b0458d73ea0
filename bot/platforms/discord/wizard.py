"""`/veille setup`: an ephemeral, multi-step wizard that collects the choices and hands them to
`Veille.save_setup` (which checks that the person is an admin and stores them).

Steps: channels and moderator roles → sensitivity, actions, language → digest schedule and
timezone → summary with the bot's missing permissions → save. The wizard only gathers input;
what the choices mean is the core's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import discord

from bot.core.errors import VeilleError
from bot.core.i18n import t
from bot.core.types import Platform, SetupInput, WorkspaceView
from bot.platforms.discord.replies import (
    answer,
    interaction_actor,
    refuse,
    veille_of,
    workspace_id,
)
from bot.platforms.discord.setup_checks import missing_permissions

Interaction = discord.Interaction[Any]
SENSITIVITIES = ("relaxed", "standard", "strict")
ACTIONS = ("delete", "notify", "timeout")
SCHEDULES = ("daily@09:00", "daily@18:00", "weekly:mon@09:00", "off")
TIMEZONES = ("UTC", "Europe/Paris", "Europe/Brussels", "Europe/London", "Europe/Berlin",
             "America/Montreal", "America/New_York", "America/Los_Angeles", "Africa/Dakar",
             "Africa/Abidjan", "Asia/Tokyo", "Australia/Sydney")
LANGUAGES = ("en", "fr")


@dataclass
class SetupChoices:
    """What the admin picked so far; defaults are the workspace's current settings."""

    safety_channel_id: str | None = None
    quarantine_channel_id: str | None = None
    moderator_role_ids: list[str] = field(default_factory=list)
    sensitivity: str = "standard"
    actions: dict[str, bool] = field(
        default_factory=lambda: {"delete": True, "notify": True, "timeout": False})
    digest_schedule: str = "daily@09:00"
    timezone: str = "UTC"
    locale: str = "en"


async def start_wizard(interaction: Interaction) -> None:
    """Open step 1. A non-admin is refused by the core before any step is shown."""
    veille = veille_of(interaction)
    actor = interaction_actor(interaction)
    guild_id = workspace_id(interaction)
    try:
        view = await veille.authorise(Platform.DISCORD, guild_id, actor, "setup")
    except VeilleError as exc:
        await refuse(interaction, str(exc))
        return
    choices = _choices_from(view)
    wizard = SetupWizard(choices, actor.locale or choices.locale)
    await interaction.response.send_message(embed=wizard.embed(1), view=ChannelsStep(wizard),
                                            ephemeral=True)


def _choices_from(view: WorkspaceView) -> SetupChoices:
    return SetupChoices(
        safety_channel_id=view.safety_channel_id, quarantine_channel_id=view.quarantine_channel_id,
        moderator_role_ids=list(view.moderator_role_ids or []), sensitivity=view.sensitivity,
        actions=dict(view.actions), digest_schedule=view.digest_schedule,
        timezone=view.timezone, locale=view.locale)


class SetupWizard:
    """The wizard's state across its steps (one ephemeral message, edited step by step)."""

    def __init__(self, choices: SetupChoices, locale: str) -> None:
        self.choices = choices
        self.locale = locale

    def t(self, key: str, **values: object) -> str:
        return t(f"discord.wizard.{key}", self.locale, **values)

    def embed(self, step: int, problems: list[str] | None = None) -> discord.Embed:
        embed = discord.Embed(title=self.t("title", step=step, steps=4),
                              description=self.t(f"step{step}"), colour=discord.Colour.blurple())
        if step == 4:
            c = self.choices
            none = self.t("none")
            embed.add_field(name=self.t("safety_channel"),
                            value=f"<#{c.safety_channel_id}>" if c.safety_channel_id else none)
            embed.add_field(name=self.t("quarantine_channel"),
                            value=f"<#{c.quarantine_channel_id}>" if c.quarantine_channel_id
                            else none)
            embed.add_field(name=self.t("moderator_roles"),
                            value=" ".join(f"<@&{r}>" for r in c.moderator_role_ids) or none)
            embed.add_field(name=self.t("sensitivity"), value=self.t(f"sens_{c.sensitivity}"))
            embed.add_field(name=self.t("actions"), value=", ".join(
                self.t(f"action_{a}") for a in ACTIONS if c.actions.get(a)) or none)
            embed.add_field(name=self.t("digest"), value=f"{c.digest_schedule} ({c.timezone})")
            embed.add_field(name=self.t("language"), value=c.locale)
            embed.add_field(name=self.t("permissions"), inline=False,
                            value="\n".join(problems or []) or self.t("permissions_ok"))
        return embed


class _Step(discord.ui.View):
    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__(timeout=15 * 60)
        self.wizard = wizard

    def button(self, key: str, style: discord.ButtonStyle, callback: Any, row: int) -> None:
        item: discord.ui.Button[Any] = discord.ui.Button(label=self.wizard.t(key), style=style,
                                                         row=row)
        item.callback = callback  # type: ignore[method-assign]
        self.add_item(item)

    async def goto(self, interaction: Interaction, step: int) -> None:
        views = {1: ChannelsStep, 2: OptionsStep, 3: DigestStep, 4: SummaryStep}
        problems = missing_permissions(interaction, self.wizard.choices, self.wizard.locale) \
            if step == 4 else None
        await interaction.response.edit_message(embed=self.wizard.embed(step, problems),
                                                view=views[step](self.wizard))


class ChannelsStep(_Step):
    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__(wizard)
        c = wizard.choices
        self.safety: discord.ui.ChannelSelect[Any] = discord.ui.ChannelSelect(
            placeholder=wizard.t("safety_channel"), channel_types=[discord.ChannelType.text],
            default_values=[discord.Object(int(c.safety_channel_id))] if c.safety_channel_id
            else [], row=0)
        self.quarantine: discord.ui.ChannelSelect[Any] = discord.ui.ChannelSelect(
            placeholder=wizard.t("quarantine_channel"), channel_types=[discord.ChannelType.text],
            default_values=[discord.Object(int(c.quarantine_channel_id))]
            if c.quarantine_channel_id else [], row=1)
        self.roles: discord.ui.RoleSelect[Any] = discord.ui.RoleSelect(
            placeholder=wizard.t("moderator_roles"), min_values=0, max_values=10,
            default_values=[discord.Object(int(r)) for r in c.moderator_role_ids], row=2)
        for select in (self.safety, self.quarantine, self.roles):
            select.callback = self._picked  # type: ignore[method-assign]
            self.add_item(select)
        self.button("next", discord.ButtonStyle.primary, self._next, row=3)

    async def _picked(self, interaction: Interaction) -> None:
        c = self.wizard.choices
        custom_id = dict(interaction.data or {}).get("custom_id")
        if custom_id == self.safety.custom_id and self.safety.values:
            c.safety_channel_id = str(self.safety.values[0].id)
        elif custom_id == self.quarantine.custom_id and self.quarantine.values:
            c.quarantine_channel_id = str(self.quarantine.values[0].id)
        elif custom_id == self.roles.custom_id:  # may be emptied: no moderator role
            c.moderator_role_ids = [str(r.id) for r in self.roles.values]
        await interaction.response.defer()

    async def _next(self, interaction: Interaction) -> None:
        c = self.wizard.choices
        if not (c.safety_channel_id and c.quarantine_channel_id):
            await refuse(interaction, self.wizard.t("channels_required"))
            return
        await self.goto(interaction, 2)


def _options(wizard: SetupWizard, values: tuple[str, ...], key: str,
             chosen: set[str]) -> list[discord.SelectOption]:
    return [discord.SelectOption(label=wizard.t(f"{key}{v}")[:100], value=v, default=v in chosen)
            for v in values]


class OptionsStep(_Step):
    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__(wizard)
        c = wizard.choices
        self.sensitivity: discord.ui.Select[Any] = discord.ui.Select(
            options=_options(wizard, SENSITIVITIES, "sens_", {c.sensitivity}), row=0)
        self.actions: discord.ui.Select[Any] = discord.ui.Select(
            options=_options(wizard, ACTIONS, "action_", {a for a in ACTIONS if c.actions.get(a)}),
            min_values=0, max_values=len(ACTIONS), row=1)
        self.language: discord.ui.Select[Any] = discord.ui.Select(
            options=_options(wizard, LANGUAGES, "lang_", {c.locale}), row=2)
        for select in (self.sensitivity, self.actions, self.language):
            select.callback = self._picked  # type: ignore[method-assign]
            self.add_item(select)
        self.button("back", discord.ButtonStyle.secondary, self._back, row=3)
        self.button("next", discord.ButtonStyle.primary, self._next, row=3)

    async def _picked(self, interaction: Interaction) -> None:
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id, values = data.get("custom_id"), list(data.get("values", []))
        c = self.wizard.choices
        if custom_id == self.sensitivity.custom_id and values:
            c.sensitivity = values[0]
        elif custom_id == self.actions.custom_id:
            c.actions = {a: a in values for a in ACTIONS}
        elif custom_id == self.language.custom_id and values:
            c.locale = values[0]
        await interaction.response.defer()

    async def _back(self, interaction: Interaction) -> None:
        await self.goto(interaction, 1)

    async def _next(self, interaction: Interaction) -> None:
        await self.goto(interaction, 3)


class DigestStep(_Step):
    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__(wizard)
        c = wizard.choices
        schedules = SCHEDULES if c.digest_schedule in SCHEDULES else (c.digest_schedule,
                                                                      *SCHEDULES)
        zones = TIMEZONES if c.timezone in TIMEZONES else (c.timezone, *TIMEZONES)
        self.schedule: discord.ui.Select[Any] = discord.ui.Select(options=[
            discord.SelectOption(label=wizard.t(f"digest_{s.replace(':', '_').replace('@', '_')}",
                                                )[:100] if s in SCHEDULES else s,
                                 value=s, default=s == c.digest_schedule) for s in schedules],
            row=0)
        self.zone: discord.ui.Select[Any] = discord.ui.Select(options=[
            discord.SelectOption(label=z, value=z, default=z == c.timezone) for z in zones[:25]],
            row=1)
        for select in (self.schedule, self.zone):
            select.callback = self._picked  # type: ignore[method-assign]
            self.add_item(select)
        self.button("back", discord.ButtonStyle.secondary, self._back, row=2)
        self.button("next", discord.ButtonStyle.primary, self._next, row=2)

    async def _picked(self, interaction: Interaction) -> None:
        data: dict[str, Any] = dict(interaction.data or {})
        values = list(data.get("values", []))
        if values and data.get("custom_id") == self.schedule.custom_id:
            self.wizard.choices.digest_schedule = values[0]
        elif values:
            self.wizard.choices.timezone = values[0]
        await interaction.response.defer()

    async def _back(self, interaction: Interaction) -> None:
        await self.goto(interaction, 2)

    async def _next(self, interaction: Interaction) -> None:
        await self.goto(interaction, 4)


class SummaryStep(_Step):
    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__(wizard)
        self.button("back", discord.ButtonStyle.secondary, self._back, row=0)
        self.button("save", discord.ButtonStyle.success, self._save, row=0)

    async def _back(self, interaction: Interaction) -> None:
        await self.goto(interaction, 3)

    async def _save(self, interaction: Interaction) -> None:
        c = self.wizard.choices
        setup = SetupInput(
            safety_channel_id=c.safety_channel_id, quarantine_channel_id=c.quarantine_channel_id,
            moderator_role_ids=tuple(c.moderator_role_ids), sensitivity=c.sensitivity,
            delete=c.actions.get("delete", False), notify=c.actions.get("notify", False),
            timeout=c.actions.get("timeout", False), digest_schedule=c.digest_schedule,
            timezone=c.timezone, locale=c.locale)
        reply = await answer(interaction, veille_of(interaction).save_setup(
            Platform.DISCORD, workspace_id(interaction), interaction_actor(interaction), setup))
        if reply is not None and reply.ok:
            self.stop()
