"""Slack installations on the project's database: one row per workspace that installed the app
through OAuth, its bot token encrypted, and the one-time `state` values of installs under way.

slack_sdk ships SQLAlchemy stores, but they are synchronous (a blocking call on the event loop
at every request), keep tokens in clear and bring their own schema outside our migrations; this
store is slack_sdk's `AsyncInstallationStore` contract over tables that Alembic migrates (0007).
It holds bot installations only: Veille asks for no user scopes.

The cipher is passed in (anything with `encrypt(bytes) -> bytes` and `decrypt(bytes) -> bytes`,
the core's EvidenceCipher in practice): the store never imports the core.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import Column, DateTime, LargeBinary, UniqueConstraint, delete
from sqlmodel import Field, SQLModel, col, select

from bot.store.repos import Store

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TokenCipher(Protocol):
    def encrypt(self, data: bytes) -> bytes: ...
    def decrypt(self, token: bytes) -> bytes: ...


class SlackInstallation(SQLModel, table=True):
    """A workspace (or an Enterprise Grid org, `team_id` then "") that installed the app.
    Ids that Slack leaves out are stored as "" so the unique key holds (NULLs never collide)."""

    __tablename__ = "slack_installations"
    __table_args__ = (UniqueConstraint("enterprise_id", "team_id", name="uq_slack_installation"),)

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: str = Field(default="", max_length=32)
    team_id: str = Field(default="", max_length=32, index=True)
    team_name: str = Field(default="", max_length=200)
    is_enterprise_install: bool = False
    app_id: str = Field(default="", max_length=32)
    bot_id: str = Field(default="", max_length=32)
    bot_user_id: str = Field(default="", max_length=32)
    bot_scopes: str = Field(default="", max_length=2000)
    bot_token: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # encrypted
    bot_refresh_token: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )
    bot_token_expires_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    installer_user_id: str = Field(default="", max_length=32)
    installed_at: datetime = Field(
        default_factory=_utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class SlackOAuthState(SQLModel, table=True):
    """The `state` of an install under way: issued by /slack/install, consumed once by the
    redirect. In the database, so any process behind the load balancer can finish the flow."""

    __tablename__ = "slack_oauth_states"

    state: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for timezone-aware columns: they were stored as UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class SlackInstallationStore(AsyncInstallationStore):
    """Bot installations by (enterprise, team), tokens encrypted with `cipher`."""

    def __init__(self, store: Store, cipher: TokenCipher) -> None:
        self.store = store
        self.cipher = cipher

    @property
    def logger(self) -> logging.Logger:
        return log

    def _seal(self, token: str | None) -> bytes | None:
        return self.cipher.encrypt(token.encode()) if token else None

    def _open(self, sealed: bytes | None) -> str | None:
        return self.cipher.decrypt(sealed).decode() if sealed else None

    async def async_save(self, installation: Installation) -> None:
        await self._save(installation.to_bot(), installer=installation.user_id or "")

    async def async_save_bot(self, bot: Bot) -> None:
        await self._save(bot, installer="")

    async def _save(self, bot: Bot, *, installer: str) -> None:
        """Insert or replace the workspace's row: a reinstall brings a new token and scopes."""
        key = (bot.enterprise_id or "", "" if bot.is_enterprise_install else bot.team_id or "")
        expires = (
            datetime.fromtimestamp(bot.bot_token_expires_at, UTC)
            if bot.bot_token_expires_at
            else None
        )
        values: dict[str, Any] = dict(
            team_name=bot.team_name or "",
            is_enterprise_install=bool(bot.is_enterprise_install),
            app_id=bot.app_id or "",
            bot_id=bot.bot_id or "",
            bot_user_id=bot.bot_user_id or "",
            bot_scopes=",".join(bot.bot_scopes or ()),
            bot_token=self._seal(bot.bot_token),
            bot_refresh_token=self._seal(bot.bot_refresh_token),
            bot_token_expires_at=expires,
            installed_at=datetime.fromtimestamp(bot.installed_at, UTC),
        )
        if installer:
            values["installer_user_id"] = installer
        async with self.store.write() as session:
            row = (
                (
                    await session.execute(
                        select(SlackInstallation).where(
                            col(SlackInstallation.enterprise_id) == key[0],
                            col(SlackInstallation.team_id) == key[1],
                        )
                    )
                )
                .scalars()
                .first()
            )
            if row is None:
                row = SlackInstallation(enterprise_id=key[0], team_id=key[1], **values)
            else:
                for name, value in values.items():
                    setattr(row, name, value)
            session.add(row)

    async def _row(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> SlackInstallation | None:
        team = "" if is_enterprise_install else team_id or ""
        async with self.store.read() as session:
            query = select(SlackInstallation).where(col(SlackInstallation.team_id) == team)
            if enterprise_id or is_enterprise_install:
                query = query.where(col(SlackInstallation.enterprise_id) == (enterprise_id or ""))
            return (await session.execute(query)).scalars().first()

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        row = await self._row(enterprise_id, team_id, is_enterprise_install)
        if row is None:
            return None
        bot_token = self._open(row.bot_token)
        assert bot_token is not None  # the column is never empty
        expires = _aware(row.bot_token_expires_at)
        return Bot(
            app_id=row.app_id or None,
            enterprise_id=row.enterprise_id or None,
            team_id=row.team_id or None,
            team_name=row.team_name or None,
            is_enterprise_install=row.is_enterprise_install,
            bot_token=bot_token,
            bot_id=row.bot_id,
            bot_user_id=row.bot_user_id,
            bot_scopes=row.bot_scopes,
            bot_refresh_token=self._open(row.bot_refresh_token),
            bot_token_expires_at=int(expires.timestamp()) if expires else None,
            installed_at=(_aware(row.installed_at) or _utcnow()).timestamp(),
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        bot = await self.async_find_bot(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )
        if bot is None:
            return None
        return Installation(
            app_id=bot.app_id,
            enterprise_id=bot.enterprise_id,
            team_id=bot.team_id,
            team_name=bot.team_name,
            is_enterprise_install=bot.is_enterprise_install,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=bot.bot_scopes,
            bot_refresh_token=bot.bot_refresh_token,
            bot_token_expires_at=bot.bot_token_expires_at,
            user_id=user_id or "",
            installed_at=bot.installed_at,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        async with self.store.write() as session:
            await session.execute(
                delete(SlackInstallation).where(
                    col(SlackInstallation.enterprise_id) == (enterprise_id or ""),
                    col(SlackInstallation.team_id) == (team_id or ""),
                )
            )

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        # Only bot installations are kept: a person's own token is never stored.
        if user_id is None:
            await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)


class SlackOAuthStateStore(AsyncOAuthStateStore):
    """One-time OAuth `state` values that expire after `expiration_s`."""

    def __init__(self, store: Store, expiration_s: float = 600.0) -> None:
        self.store = store
        self.expiration_s = expiration_s

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        now = _utcnow()
        async with self.store.write() as session:
            # Expired states of abandoned installs go as new ones come.
            await session.execute(
                delete(SlackOAuthState).where(col(SlackOAuthState.expires_at) < now)
            )
            session.add(
                SlackOAuthState(state=state, expires_at=now + timedelta(seconds=self.expiration_s))
            )
        return state

    async def async_consume(self, state: str) -> bool:
        """True once for a state that was issued and has not expired; never again."""
        async with self.store.write() as session:
            row = await session.get(SlackOAuthState, state)
            if row is None:
                return False
            await session.delete(row)
            return (_aware(row.expires_at) or _utcnow()) > _utcnow()
