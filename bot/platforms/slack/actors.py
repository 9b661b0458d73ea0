"""Who a Slack user is to Veille: display name, locale, admin right and user groups.

The core decides permissions from `Actor.role_ids` (for Slack: the user-group ids the wizard
chose as moderators) and `is_platform_admin` (workspace admin or owner). Slack has no
"groups of a user" method, so the group list is read once with usergroups.list and cached.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.types import Actor
from bot.platforms.slack.gateway import slack_error

log = logging.getLogger(__name__)

_TTL_S = 300.0  # a moderator added to a group is recognised within five minutes


class ActorDirectory:
    """Builds `Actor`s from users.info and usergroups.list, with a short cache of both."""

    def __init__(self, client: AsyncWebClient, ttl_s: float = _TTL_S) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._users: dict[str, tuple[float, Actor]] = {}
        self._groups: tuple[float, dict[str, frozenset[str]]] | None = None

    def forget(self) -> None:
        """Drop the caches (after the setup wizard changed who moderates)."""
        self._users.clear()
        self._groups = None

    async def actor(self, user_id: str, *, is_bot: bool = False) -> Actor:
        """The Actor for `user_id`; a lookup failure yields a plain member, never an admin."""
        cached = self._users.get(user_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        groups = await self._user_groups()
        info: dict[str, Any] = {}
        try:
            resp = await self.client.users_info(user=user_id, include_locale=True)
            info = dict(resp.get("user") or {})
        except SlackApiError as exc:
            log.warning("users.info failed for %s: %s", user_id, slack_error(exc))
        profile: dict[str, Any] = info.get("profile") or {}
        name = str(profile.get("display_name") or info.get("real_name") or info.get("name") or "")
        actor = Actor(
            user_id=user_id,
            display_name=name,
            role_ids=frozenset(gid for gid, members in groups.items() if user_id in members),
            is_platform_admin=bool(info.get("is_admin") or info.get("is_owner")),
            is_bot=is_bot or bool(info.get("is_bot")),
            locale=str(info["locale"]) if info.get("locale") else None,
        )
        self._users[user_id] = (now, actor)
        return actor

    async def _user_groups(self) -> dict[str, frozenset[str]]:
        now = time.monotonic()
        if self._groups is not None and now - self._groups[0] < self.ttl_s:
            return self._groups[1]
        groups: dict[str, frozenset[str]] = {}
        try:
            resp = await self.client.usergroups_list(include_users=True)
            for group in resp.get("usergroups") or []:
                groups[str(group["id"])] = frozenset(group.get("users") or ())
        except SlackApiError as exc:
            # Free workspaces have no user groups (paid_teams_only): moderators are then users.
            log.info("usergroups.list unavailable: %s", slack_error(exc))
        self._groups = (now, groups)
        return groups

    async def group_options(self) -> list[tuple[str, str]]:
        """(id, label) of the workspace's user groups, for the setup modal."""
        try:
            resp = await self.client.usergroups_list()
        except SlackApiError:
            return []
        return [
            (str(g["id"]), f"@{g.get('handle') or g.get('name')}")
            for g in resp.get("usergroups") or []
        ]
