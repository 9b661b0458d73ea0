"""Platform-neutral types: what adapters translate platform payloads into."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from bot.core.verdict import Severity, Verdict


class Platform(StrEnum):
    DISCORD = "discord"
    SLACK = "slack"
    CLI = "cli"


class Role(StrEnum):
    """Veille's own roles, derived from platform roles or user groups chosen in the wizard."""

    MEMBER = "member"
    MODERATOR = "moderator"
    ADMIN = "admin"


@dataclass(frozen=True)
class Actor:
    """Someone acting in a workspace. `role_ids` are platform role or user-group ids;
    `is_platform_admin` is the platform's own admin right (Discord Manage Server, Slack admin)."""

    user_id: str
    display_name: str = ""
    role_ids: frozenset[str] = frozenset()
    is_platform_admin: bool = False
    is_bot: bool = False
    is_ai_app: bool = False  # an image-generating AI app (Grok-like bots)
    locale: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The actor as stored (the inbox, a pending sweep): role ids as a sorted list."""
        return {**asdict(self), "role_ids": sorted(self.role_ids)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Actor:
        return cls(**{**raw, "role_ids": frozenset(raw.get("role_ids") or ())})


MediaKind = Literal["attachment", "embed", "link"]


@dataclass(frozen=True)
class MediaRef:
    """A piece of media in a message. Attachments are platform-hosted (the Gateway downloads
    them with its credentials); embeds and links go through the safe fetcher."""

    kind: MediaKind
    url: str
    media_id: str = ""  # platform attachment/file id; "" for links
    filename: str = ""
    content_type: str = ""
    size: int | None = None

    @property
    def key(self) -> str:
        """Stable key of this media within its message (part of the ticket's unique key)."""
        return self.media_id or self.url


@dataclass(frozen=True)
class RepliedMessage:
    message_id: str
    author: Actor
    text: str = ""
    has_image: bool = False


@dataclass(frozen=True)
class MessageEvent:
    platform: Platform
    workspace_id: str  # platform workspace id (guild id, team id)
    channel_id: str
    message_id: str
    author: Actor
    text: str = ""
    media: tuple[MediaRef, ...] = ()
    reply_to: RepliedMessage | None = None
    thread_id: str | None = None
    mentions_ai_app: bool = False  # the text addresses an image-AI app (@grok ...)
    edited: bool = False
    created_at: datetime | None = None
    workspace_name: str = ""


@dataclass(frozen=True)
class MediaResult:
    """The outcome for one media item of a message: a verdict or an error, never both missing."""

    ref: MediaRef
    sha256: str | None = None
    verdict: Verdict | None = None
    error: str | None = None


@dataclass
class Decision:
    """What the policy decided for one message."""

    severity: Severity
    delete: bool = False
    notify_author: bool = False
    timeout_author: bool = False
    alert_admins: bool = False
    help_request: bool = False
    minor_suspected: bool = False  # QUARANTINE with a minor possibly present: no preview anywhere
    queued: bool = False  # recorded for a worker to decide (a gateway process): nothing decided
    ticket_ids: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReportForm:
    """What a person filled in when reporting a message ("Report to Veille"). `reason` is one
    of `bot.core.reports.REASONS`; contact details and details are optional."""

    reason: str
    good_faith: bool = False
    contact: str = ""
    details: str = ""


@dataclass(frozen=True)
class SetupInput:
    """What a setup wizard collected; None leaves a setting as it is. Each field is a setting
    declared in bot/workspace_settings.py (its allowed values, default and label), which the
    core checks before storing (bot/core/workspace_setup.py). `channel_sensitivity` maps
    channel ids to a preset ("" removes the override); `allow_channel_ids` replaces the
    allow-listed channels."""

    locale: str | None = None
    timezone: str | None = None
    safety_channel_id: str | None = None
    quarantine_channel_id: str | None = None
    moderator_role_ids: tuple[str, ...] | None = None
    moderator_user_ids: tuple[str, ...] | None = None
    admin_role_ids: tuple[str, ...] | None = None
    allow_role_ids: tuple[str, ...] | None = None
    allow_channel_ids: tuple[str, ...] | None = None
    sensitivity: str | None = None
    channel_sensitivity: tuple[tuple[str, str], ...] = ()
    delete: bool | None = None
    notify: bool | None = None
    timeout: bool | None = None
    digest_schedule: str | None = None
    retention_days: int | None = None
    sla_hours: int | None = None


@dataclass(frozen=True)
class WorkspaceView:
    """A read-only copy of a workspace's settings for adapters (they never touch the store):
    its identity, every setting of bot/workspace_settings.py (the action toggles as `actions`,
    sorted (name, on) pairs) and whether setup was completed."""

    id: int
    platform: str
    external_id: str
    name: str
    locale: str
    timezone: str
    safety_channel_id: str | None
    quarantine_channel_id: str | None
    moderator_role_ids: tuple[str, ...]
    moderator_user_ids: tuple[str, ...]
    admin_role_ids: tuple[str, ...]
    allow_role_ids: tuple[str, ...]
    allow_channel_ids: tuple[str, ...]
    sensitivity: str
    actions: tuple[tuple[str, bool], ...]
    digest_schedule: str
    retention_days: int
    sla_hours: int
    setup_completed: bool
