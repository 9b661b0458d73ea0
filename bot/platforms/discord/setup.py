"""`/veille setup`: an ephemeral, multi-step wizard that collects the choices and hands them to
`Veille.save_setup` (which checks that the person is an admin and stores them).

Steps: channels and moderator roles → sensitivity, actions, language → digest schedule, time
and timezone → summary with the bot's missing permissions → save. The wizard only gathers
input: the options it shows, their labels and defaults come from bot/workspace_settings.py (the
Slack modal shows the same ones), and what the choices mean is the core's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import discord

from bot.core.errors import VeilleError
from bot.core.i18n import LOCALES, t
from bot.core.types import Platform, SetupInput, WorkspaceView
from bot.platforms.discord.replies import (
    answer,
    interaction_actor,
    refuse,
    veille_of,
    workspace_id,
)
from bot.platforms.discord.setup_checks import missing_permissions
from bot.workspace_settings import (
    ACTION_DEFAULTS,
    ACTIONS,
    DEFAULT_DIGEST_SCHEDULE,
    DEFAULT_DIGEST_TIME,
    DEFAULT_LOCALE,
    DEFAULT_SENSITIVITY,
    DEFAULT_TIMEZONE,
    DIGEST_AT,
    DIGEST_FREQUENCIES,
    DIGEST_TIMES,
    LABELS,
    LANGUAGE_NAME,
    SENSITIVITIES,
    TIMEZONES,
    action_label,
    compose_schedule,
    digest_options,
    frequency_label,
    parse_digest_schedule,
    sensitivity_label,
    split_digest_schedule,
)

Interaction = discord.Interaction[Any]
MAX_OPTIONS = 25  # Discord's limit for one select


@dataclass
class SetupChoices:
    """What the admin picked so far; the wizard starts from the workspace's current settings."""

    safety_channel_id: str | None = None
    quarantine_channel_id: str | None = None
    moderator_role_ids: list[str] = field(default_factory=list)
    sensitivity: str = DEFAULT_SENSITIVITY
    actions: dict[str, bool] = field(default_factory=lambda: dict(ACTION_DEFAULTS))
    digest_schedule: str = DEFAULT_DIGEST_SCHEDULE
    digest_time: str = DEFAULT_DIGEST_TIME  # the time of day a chosen frequency is posted at
    timezone: str = DEFAULT_TIMEZONE
    locale: str = DEFAULT_LOCALE


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
    await interaction.response.send_message(
        embed=wizard.embed(1), view=ChannelsStep(wizard), ephemeral=True
    )


def setup_input(c: SetupChoices) -> SetupInput:
    """The core's SetupInput (the core checks every value, as it does the Slack modal's)."""
    return SetupInput(
        safety_channel_id=c.safety_channel_id,
        quarantine_channel_id=c.quarantine_channel_id,
        moderator_role_ids=tuple(c.moderator_role_ids),
        sensitivity=c.sensitivity,
        delete=c.actions.get("delete", False),
        notify=c.actions.get("notify", False),
        timeout=c.actions.get("timeout", False),
        digest_schedule=c.digest_schedule,
        timezone=c.timezone,
        locale=c.locale,
    )


def _choices_from(view: WorkspaceView) -> SetupChoices:
    return SetupChoices(
        safety_channel_id=view.safety_channel_id,
        quarantine_channel_id=view.quarantine_channel_id,
        moderator_role_ids=list(view.moderator_role_ids or []),
        sensitivity=view.sensitivity,
        actions=dict(view.actions),
        digest_schedule=view.digest_schedule,
        digest_time=split_digest_schedule(view.digest_schedule)[1],
        timezone=view.timezone,
        locale=view.locale,
    )


class SetupWizard:
    """The wizard's state across its steps (one ephemeral message, edited step by step)."""

    def __init__(self, choices: SetupChoices, locale: str) -> None:
        self.choices = choices
        self.locale = locale

    def t(self, key: str, **values: object) -> str:
        return t(f"discord.wizard.{key}", self.locale, **values)

    def label(self, setting: str) -> str:
        """The name of a workspace setting, as both wizards say it."""
        return t(f"{LABELS}.{setting}", self.locale)

    def schedule_label(self, schedule: str) -> str:
        """ "weekly:mon@09:00" -> "Every Monday at 09:00"; a schedule no wizard offers (a cron
        line set elsewhere) is shown as it is stored."""
        try:
            parsed = parse_digest_schedule(schedule)
        except ValueError:
            return schedule
        if parsed.frequency == "off":
            return t(frequency_label("off"), self.locale)
        if schedule not in digest_options(parsed.time):
            return schedule
        return t(
            DIGEST_AT,
            self.locale,
            time=parsed.time,
            schedule=t(frequency_label(parsed.frequency), self.locale),
        )

    def embed(self, step: int, problems: list[str] | None = None) -> discord.Embed:
        embed = discord.Embed(
            title=self.t("title", step=step, steps=4),
            description=self.t(f"step{step}"),
            colour=discord.Colour.blurple(),
        )
        if step == 4:
            c = self.choices
            none = self.t("none")
            embed.add_field(
                name=self.label("safety_channel_id"),
                value=f"<#{c.safety_channel_id}>" if c.safety_channel_id else none,
            )
            embed.add_field(
                name=self.label("quarantine_channel_id"),
                value=f"<#{c.quarantine_channel_id}>" if c.quarantine_channel_id else none,
            )
            embed.add_field(
                name=self.label("moderator_role_ids"),
                value=" ".join(f"<@&{r}>" for r in c.moderator_role_ids) or none,
            )
            embed.add_field(
                name=self.label("sensitivity"),
                value=t(sensitivity_label(c.sensitivity), self.locale),
            )
            embed.add_field(
                name=self.label("actions"),
                value=", ".join(
                    t(action_label(a), self.locale) for a in ACTIONS if c.actions.get(a)
                )
                or none,
            )
            embed.add_field(
                name=self.label("digest_schedule"),
                value=f"{self.schedule_label(c.digest_schedule)} ({c.timezone})",
            )
            embed.add_field(name=self.label("locale"), value=c.locale)
            embed.add_field(
                name=self.t("permissions"),
                inline=False,
                value="\n".join(problems or []) or self.t("permissions_ok"),
            )
        return embed


class _Step(discord.ui.View):
    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__(timeout=15 * 60)
        self.wizard = wizard

    def button(self, key: str, style: discord.ButtonStyle, callback: Any, row: int) -> None:
        item: discord.ui.Button[Any] = discord.ui.Button(
            label=self.wizard.t(key), style=style, row=row
        )
        item.callback = callback  # type: ignore[method-assign]
        self.add_item(item)

    async def goto(self, interaction: Interaction, step: int) -> None:
        views = {1: ChannelsStep, 2: OptionsStep, 3: DigestStep, 4: SummaryStep}
        c = self.wizard.choices
        problems = (
            missing_permissions(
                interaction,
                (c.safety_channel_id, c.quarantine_channel_id),
                timeout=bool(c.actions.get("timeout")),
                locale=self.wizard.locale,
            )
            if step == 4
            else None
        )
        await interaction.response.edit_message(
            embed=self.wizard.embed(step, problems), view=views[step](self.wizard)
        )


class ChannelsStep(_Step):
    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__(wizard)
        c = wizard.choices
        self.safety: discord.ui.ChannelSelect[Any] = discord.ui.ChannelSelect(
            placeholder=wizard.label("safety_channel_id"),
            channel_types=[discord.ChannelType.text],
            default_values=[discord.Object(int(c.safety_channel_id))]
            if c.safety_channel_id
            else [],
            row=0,
        )
        self.quarantine: discord.ui.ChannelSelect[Any] = discord.ui.ChannelSelect(
            placeholder=wizard.label("quarantine_channel_id"),
            channel_types=[discord.ChannelType.text],
            default_values=[discord.Object(int(c.quarantine_channel_id))]
            if c.quarantine_channel_id
            else [],
            row=1,
        )
        self.roles: discord.ui.RoleSelect[Any] = discord.ui.RoleSelect(
            placeholder=wizard.label("moderator_role_ids"),
            min_values=0,
            max_values=10,
            default_values=[discord.Object(int(r)) for r in c.moderator_role_ids],
            row=2,
        )
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


def _options(values: tuple[str, ...], label: Any, chosen: set[str]) -> list[discord.SelectOption]:
    """Select options for `values`, each labelled `label(value)`, the `chosen` ones selected."""
    return [
        discord.SelectOption(label=str(label(v))[:100], value=v, default=v in chosen)
        for v in values[:MAX_OPTIONS]
    ]


class OptionsStep(_Step):
    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__(wizard)
        c = wizard.choices
        lang = wizard.locale
        self.sensitivity: discord.ui.Select[Any] = discord.ui.Select(
            placeholder=wizard.label("sensitivity"),
            options=_options(
                SENSITIVITIES, lambda v: t(sensitivity_label(v), lang), {c.sensitivity}
            ),
            row=0,
        )
        self.actions: discord.ui.Select[Any] = discord.ui.Select(
            placeholder=wizard.label("actions"),
            options=_options(
                ACTIONS,
                lambda v: t(action_label(v), lang),
                {a for a in ACTIONS if c.actions.get(a)},
            ),
            min_values=0,
            max_values=len(ACTIONS),
            row=1,
        )
        # Each language is named in itself, by its own catalogue.
        self.language: discord.ui.Select[Any] = discord.ui.Select(
            placeholder=wizard.label("locale"),
            options=_options(LOCALES, lambda v: t(LANGUAGE_NAME, v), {c.locale}),
            row=2,
        )
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


def _with_current(values: tuple[str, ...], current: str) -> tuple[str, ...]:
    """The offered values, with the current one first when it is not among them."""
    return values if current in values else (current, *values)


class DigestStep(_Step):
    """The schedules both wizards offer (bot.workspace_settings.DIGEST_FREQUENCIES) at the time
    picked in the third select, and the timezone. A schedule set elsewhere (a cron line) is
    kept as the first option."""

    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__(wizard)
        c = wizard.choices
        schedules = _with_current(digest_options(c.digest_time), c.digest_schedule)
        self.schedule: discord.ui.Select[Any] = discord.ui.Select(
            placeholder=wizard.label("digest_schedule"),
            options=_options(schedules, wizard.schedule_label, {c.digest_schedule}),
            row=0,
        )
        self.zone: discord.ui.Select[Any] = discord.ui.Select(
            placeholder=wizard.label("timezone"),
            options=_options(_with_current(TIMEZONES, c.timezone), str, {c.timezone}),
            row=1,
        )
        self.time: discord.ui.Select[Any] = discord.ui.Select(
            placeholder=wizard.label("digest_time"),
            options=_options(tuple(sorted({*DIGEST_TIMES, c.digest_time})), str, {c.digest_time}),
            row=2,
        )
        for select in (self.schedule, self.zone, self.time):
            select.callback = self._picked  # type: ignore[method-assign]
            self.add_item(select)
        self.button("back", discord.ButtonStyle.secondary, self._back, row=3)
        self.button("next", discord.ButtonStyle.primary, self._next, row=3)

    async def _picked(self, interaction: Interaction) -> None:
        data: dict[str, Any] = dict(interaction.data or {})
        values = list(data.get("values", []))
        custom_id = data.get("custom_id")
        c = self.wizard.choices
        if values and custom_id == self.time.custom_id:
            # The schedules offered change with the time: show them again at the new time.
            frequency, at = split_digest_schedule(c.digest_schedule)
            c.digest_time = values[0]
            if (
                frequency in DIGEST_FREQUENCIES
                and frequency != "off"
                and c.digest_schedule == compose_schedule(frequency, at)
            ):
                c.digest_schedule = compose_schedule(frequency, c.digest_time)
            await interaction.response.edit_message(view=DigestStep(self.wizard))
            return
        if values and custom_id == self.schedule.custom_id:
            c.digest_schedule = values[0]
        elif values:
            c.timezone = values[0]
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
        setup = setup_input(self.wizard.choices)
        reply = await answer(
            interaction,
            veille_of(interaction).save_setup(
                Platform.DISCORD, workspace_id(interaction), interaction_actor(interaction), setup
            ),
        )
        if reply is not None and reply.ok:
            self.stop()
