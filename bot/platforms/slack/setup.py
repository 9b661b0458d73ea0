"""The setup wizard as one Slack modal: building it, reading its submitted state, and checking
that the bot is a member of the channels chosen (Slack only delivers messages, and only lets
the bot post, where it is a member). The options it shows, their labels and defaults come from
bot/workspace_settings.py, as the Discord wizard's do; Slack's time picker gives the digest's
time of day."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.i18n import LOCALES, t
from bot.core.types import SetupInput, WorkspaceView
from bot.platforms.slack.gateway import slack_error
from bot.platforms.slack.render import Block, mrkdwn, plain
from bot.workspace_settings import (
    DEFAULT_DIGEST_FREQUENCY,
    DEFAULT_DIGEST_SCHEDULE,
    DEFAULT_DIGEST_TIME,
    DEFAULT_LOCALE,
    DEFAULT_SENSITIVITY,
    DEFAULT_TIMEZONE,
    DIGEST_FREQUENCIES,
    LABELS,
    LANGUAGE_NAME,
    SENSITIVITIES,
    SettingError,
    check_timezone,
    compose_schedule,
    frequency_label,
    sensitivity_label,
    split_digest_schedule,
)

SETUP_CALLBACK = "veille:setup"


@dataclass
class SetupValues:
    """What the modal collected, in the names of the Workspace settings."""

    safety_channel_id: str | None = None
    quarantine_channel_id: str | None = None
    moderator_role_ids: list[str] | None = field(default_factory=list)  # None: no groups block
    moderator_user_ids: list[str] = field(default_factory=list)
    sensitivity: str = DEFAULT_SENSITIVITY
    digest_schedule: str = DEFAULT_DIGEST_SCHEDULE
    timezone: str = DEFAULT_TIMEZONE
    locale: str = DEFAULT_LOCALE


def _option(value: str, text: str) -> Block:
    return {"text": plain(text, 75), "value": value}


def _select(action: str, options: list[Block], initial: str | None) -> Block:
    element: Block = {"type": "static_select", "action_id": action, "options": options}
    chosen = [o for o in options if o["value"] == initial]
    if chosen:
        element["initial_option"] = chosen[0]
    return element


def _input(
    block_id: str, label: str, element: Block, *, optional: bool = False, hint: str = ""
) -> Block:
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label, 2000),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def setup_view(
    locale: str,
    current: SetupValues,
    groups: list[tuple[str, str]],
    *,
    can_delete: bool,
    private_metadata: str = "",
) -> Block:
    """The modal, pre-filled with the workspace's current settings."""

    def label(setting: str) -> str:
        return t(f"{LABELS}.{setting}", locale)

    frequency, at = split_digest_schedule(current.digest_schedule)
    channel_filter = {"include": ["public", "private"], "exclude_bot_users": True}
    safety: Block = {"type": "conversations_select", "action_id": "value", "filter": channel_filter}
    if current.safety_channel_id:
        safety["initial_conversation"] = current.safety_channel_id
    quarantine: Block = {
        "type": "conversations_select",
        "action_id": "value",
        "filter": channel_filter,
    }
    if current.quarantine_channel_id:
        quarantine["initial_conversation"] = current.quarantine_channel_id
    users: Block = {"type": "multi_users_select", "action_id": "value"}
    if current.moderator_user_ids:
        users["initial_users"] = current.moderator_user_ids
    blocks: list[Block] = [
        {"type": "section", "text": mrkdwn(t("slack.setup_intro", locale))},
        _input("safety", t("slack.setup_safety", locale), safety),
        _input(
            "quarantine",
            t("slack.setup_quarantine", locale),
            quarantine,
            optional=True,
            hint=t("slack.setup_quarantine_hint", locale),
        ),
    ]
    if groups:
        group_options = [_option(gid, label) for gid, label in groups[:100]]
        element: Block = {
            "type": "multi_static_select",
            "action_id": "value",
            "options": group_options,
        }
        initial = [o for o in group_options if o["value"] in (current.moderator_role_ids or [])]
        if initial:
            element["initial_options"] = initial
        blocks.append(_input("groups", t("slack.setup_groups", locale), element, optional=True))
    blocks += [
        _input("users", t("slack.setup_users", locale), users, optional=True),
        _input(
            "sensitivity",
            label("sensitivity"),
            _select(
                "value",
                [_option(s, t(sensitivity_label(s), locale)) for s in SENSITIVITIES],
                current.sensitivity,
            ),
        ),
        _input(
            "digest",
            label("digest_schedule"),
            _select(
                "value",
                [_option(f, t(frequency_label(f), locale)) for f in DIGEST_FREQUENCIES],
                frequency if frequency in DIGEST_FREQUENCIES else DEFAULT_DIGEST_FREQUENCY,
            ),
        ),
        _input(
            "digest_time",
            label("digest_time"),
            {"type": "timepicker", "action_id": "value", "initial_time": at},
        ),
        _input(
            "timezone",
            label("timezone"),
            {"type": "plain_text_input", "action_id": "value", "initial_value": current.timezone},
            hint=t("slack.setup_timezone_hint", locale),
        ),
        # Each language is named in itself, by its own catalogue.
        _input(
            "language",
            label("locale"),
            _select(
                "value", [_option(code, t(LANGUAGE_NAME, code)) for code in LOCALES], current.locale
            ),
        ),
        {
            "type": "context",
            "elements": [
                mrkdwn(
                    t("slack.setup_delete_yes" if can_delete else "slack.setup_delete_no", locale)
                )
            ],
        },
    ]
    return {
        "type": "modal",
        "callback_id": SETUP_CALLBACK,
        "private_metadata": private_metadata,
        "title": plain(t("slack.setup_title", locale), 24),
        "submit": plain(t("slack.modal_save", locale), 24),
        "close": plain(t("slack.modal_close", locale), 24),
        "blocks": blocks,
    }


def read_values(state: dict[str, Any]) -> SetupValues:
    """SetupValues from a view_submission's `view.state.values`."""
    values = state.get("values") or {}

    def get(block: str) -> dict[str, Any]:
        return dict((values.get(block) or {}).get("value") or {})

    def chosen(block: str, default: str) -> str:
        option = get(block).get("selected_option") or {}
        return str(option.get("value") or default)

    frequency = chosen("digest", DEFAULT_DIGEST_FREQUENCY)
    at = str(get("digest_time").get("selected_time") or DEFAULT_DIGEST_TIME)
    return SetupValues(
        safety_channel_id=get("safety").get("selected_conversation"),
        quarantine_channel_id=get("quarantine").get("selected_conversation"),
        moderator_role_ids=[str(o["value"]) for o in get("groups").get("selected_options") or []]
        if "groups" in values
        else None,
        moderator_user_ids=[str(u) for u in get("users").get("selected_users") or []],
        sensitivity=chosen("sensitivity", DEFAULT_SENSITIVITY),
        digest_schedule=compose_schedule(frequency, at),
        timezone=str(get("timezone").get("value") or DEFAULT_TIMEZONE).strip(),
        locale=chosen("language", DEFAULT_LOCALE),
    )


def setup_input(values: SetupValues) -> SetupInput:
    """The core's SetupInput; a missing groups block leaves the moderator groups unchanged."""
    roles = values.moderator_role_ids
    return SetupInput(
        locale=values.locale,
        timezone=values.timezone,
        safety_channel_id=values.safety_channel_id,
        quarantine_channel_id=values.quarantine_channel_id,
        moderator_role_ids=tuple(roles) if roles is not None else None,
        moderator_user_ids=tuple(values.moderator_user_ids),
        sensitivity=values.sensitivity,
        digest_schedule=values.digest_schedule,
    )


def current_setup(view: WorkspaceView) -> SetupValues:
    """The workspace's settings as the modal's initial values."""
    return SetupValues(
        safety_channel_id=view.safety_channel_id,
        quarantine_channel_id=view.quarantine_channel_id,
        moderator_role_ids=list(view.moderator_role_ids),
        moderator_user_ids=list(view.moderator_user_ids),
        sensitivity=view.sensitivity,
        digest_schedule=view.digest_schedule,
        timezone=view.timezone,
        locale=view.locale,
    )


async def modal_errors(client: AsyncWebClient, values: SetupValues, locale: str) -> dict[str, str]:
    """Modal errors (block id → text): an unknown timezone, and each chosen channel the bot is
    not a member of."""
    errors: dict[str, str] = {}
    try:  # the modal's free text: said beside the field rather than after saving
        check_timezone(values.timezone)
    except SettingError as exc:
        errors["timezone"] = t(exc.key, locale, **exc.values)
    for block, channel in (
        ("safety", values.safety_channel_id),
        ("quarantine", values.quarantine_channel_id),
    ):
        if not channel:
            continue
        try:
            info = await client.conversations_info(channel=channel)
            member = bool(info["channel"].get("is_member"))
        except SlackApiError as exc:
            # A private channel the bot is not in looks like channel_not_found to the bot.
            member = slack_error(exc) not in ("channel_not_found", "not_in_channel")
        if not member:
            errors[block] = t("slack.setup_not_member", locale, channel=f"<#{channel}>")
    return errors
