"""The setup wizard as one Slack modal: building it, reading its submitted state, and checking
that the bot is a member of the channels chosen (Slack only delivers messages, and only lets
the bot post, where it is a member)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.i18n import t
from bot.core.types import SetupInput, WorkspaceView
from bot.platforms.slack.blocks import Block, mrkdwn, plain
from bot.platforms.slack.gateway import slack_error

SETUP_CALLBACK = "veille:setup"
SENSITIVITIES = ("relaxed", "standard", "strict")
DIGESTS = ("off", "daily", "weekly:mon")
LANGUAGES = (("en", "English"), ("fr", "Français"))


@dataclass
class SetupValues:
    """What the modal collected, in the names of the Workspace settings."""

    safety_channel_id: str | None = None
    quarantine_channel_id: str | None = None
    moderator_role_ids: list[str] | None = field(default_factory=list)  # None: no groups block
    moderator_user_ids: list[str] = field(default_factory=list)
    sensitivity: str = "standard"
    digest_schedule: str = "daily@09:00"
    timezone: str = "UTC"
    locale: str = "en"


def _option(value: str, text: str) -> Block:
    return {"text": plain(text, 75), "value": value}


def _select(action: str, options: list[Block], initial: str | None) -> Block:
    element: Block = {"type": "static_select", "action_id": action, "options": options}
    chosen = [o for o in options if o["value"] == initial]
    if chosen:
        element["initial_option"] = chosen[0]
    return element


def _input(block_id: str, label: str, element: Block, *, optional: bool = False,
           hint: str = "") -> Block:
    block: Block = {"type": "input", "block_id": block_id, "label": plain(label, 2000),
                    "element": element, "optional": optional}
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def setup_view(locale: str, current: SetupValues, groups: list[tuple[str, str]], *,
               can_delete: bool, private_metadata: str = "") -> Block:
    """The modal, pre-filled with the workspace's current settings."""
    frequency, _, at = current.digest_schedule.partition("@")
    channel_filter = {"include": ["public", "private"], "exclude_bot_users": True}
    safety: Block = {"type": "conversations_select", "action_id": "value", "filter": channel_filter}
    if current.safety_channel_id:
        safety["initial_conversation"] = current.safety_channel_id
    quarantine: Block = {"type": "conversations_select", "action_id": "value", "filter": channel_filter}
    if current.quarantine_channel_id:
        quarantine["initial_conversation"] = current.quarantine_channel_id
    users: Block = {"type": "multi_users_select", "action_id": "value"}
    if current.moderator_user_ids:
        users["initial_users"] = current.moderator_user_ids
    blocks: list[Block] = [
        {"type": "section", "text": mrkdwn(t("slack.setup_intro", locale))},
        _input("safety", t("slack.setup_safety", locale), safety),
        _input("quarantine", t("slack.setup_quarantine", locale), quarantine, optional=True,
               hint=t("slack.setup_quarantine_hint", locale)),
    ]
    if groups:
        group_options = [_option(gid, label) for gid, label in groups[:100]]
        element: Block = {"type": "multi_static_select", "action_id": "value", "options": group_options}
        initial = [o for o in group_options if o["value"] in (current.moderator_role_ids or [])]
        if initial:
            element["initial_options"] = initial
        blocks.append(_input("groups", t("slack.setup_groups", locale), element, optional=True))
    blocks += [
        _input("users", t("slack.setup_users", locale), users, optional=True),
        _input("sensitivity", t("slack.setup_sensitivity", locale), _select(
            "value", [_option(s, t(f"slack.sensitivity_{s}", locale)) for s in SENSITIVITIES],
            current.sensitivity)),
        _input("digest", t("slack.setup_digest", locale), _select(
            "value", [_option(d, t(f"slack.digest_{d.split(':')[0]}", locale)) for d in DIGESTS],
            frequency if frequency in DIGESTS else "daily")),
        _input("digest_time", t("slack.setup_digest_time", locale),
               {"type": "timepicker", "action_id": "value", "initial_time": at or "09:00"}),
        _input("timezone", t("slack.setup_timezone", locale),
               {"type": "plain_text_input", "action_id": "value", "initial_value": current.timezone},
               hint=t("slack.setup_timezone_hint", locale)),
        _input("language", t("slack.setup_language", locale), _select(
            "value", [_option(code, name) for code, name in LANGUAGES], current.locale)),
        {"type": "context", "elements": [mrkdwn(t(
            "slack.setup_delete_yes" if can_delete else "slack.setup_delete_no", locale))]},
    ]
    return {
        "type": "modal", "callback_id": SETUP_CALLBACK, "private_metadata": private_metadata,
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

    frequency = chosen("digest", "daily")
    at = str(get("digest_time").get("selected_time") or "09:00")
    return SetupValues(
        safety_channel_id=get("safety").get("selected_conversation"),
        quarantine_channel_id=get("quarantine").get("selected_conversation"),
        moderator_role_ids=[str(o["value"]) for o in get("groups").get("selected_options") or []]
        if "groups" in values else None,
        moderator_user_ids=[str(u) for u in get("users").get("selected_users") or []],
        sensitivity=chosen("sensitivity", "standard"),
        digest_schedule="off" if frequency == "off" else f"{frequency}@{at}",
        timezone=str(get("timezone").get("value") or "UTC").strip(),
        locale=chosen("language", "en"),
    )


def setup_input(values: SetupValues) -> SetupInput:
    """The core's SetupInput; a missing groups block leaves the moderator groups unchanged."""
    roles = values.moderator_role_ids
    return SetupInput(
        locale=values.locale, timezone=values.timezone,
        safety_channel_id=values.safety_channel_id,
        quarantine_channel_id=values.quarantine_channel_id,
        moderator_role_ids=tuple(roles) if roles is not None else None,
        moderator_user_ids=tuple(values.moderator_user_ids),
        sensitivity=values.sensitivity, digest_schedule=values.digest_schedule,
    )


def current_setup(view: WorkspaceView) -> SetupValues:
    """The workspace's settings as the modal's initial values."""
    return SetupValues(
        safety_channel_id=view.safety_channel_id, quarantine_channel_id=view.quarantine_channel_id,
        moderator_role_ids=list(view.moderator_role_ids),
        moderator_user_ids=list(view.moderator_user_ids),
        sensitivity=view.sensitivity, digest_schedule=view.digest_schedule,
        timezone=view.timezone, locale=view.locale,
    )


def known_timezone(name: str) -> bool:
    """The modal's free-text timezone must be an IANA name the digest scheduler can use."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


async def modal_errors(client: AsyncWebClient, values: SetupValues,
                       locale: str) -> dict[str, str]:
    """Modal errors (block id → text): an unknown timezone, and each chosen channel the bot is
    not a member of."""
    errors: dict[str, str] = {}
    if not known_timezone(values.timezone):
        errors["timezone"] = t("slack.setup_bad_timezone", locale, timezone=values.timezone)
    for block, channel in (("safety", values.safety_channel_id),
                           ("quarantine", values.quarantine_channel_id)):
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
