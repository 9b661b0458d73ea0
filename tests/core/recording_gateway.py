"""An in-process Gateway that records every call: our own port, so the core's tests may use it.

Attachments are served from `files` (url → bytes). `failures[method]` is a list of exceptions
raised by the next calls of that method, one each, so tests script platform outages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.core.gateway import Button, Card, GatewayError
from bot.core.types import MediaRef, Platform


@dataclass
class Call:
    method: str
    args: dict[str, Any]


@dataclass
class RecordingGateway:
    platform: Platform = Platform.DISCORD
    deletes: bool = True
    files: dict[str, bytes] = field(default_factory=dict)
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    _next_id: int = 1000

    @property
    def can_delete_messages(self) -> bool:
        return self.deletes

    def _record(self, method: str, **args: Any) -> None:
        scripted = self.failures.get(method)
        if scripted:
            raise scripted.pop(0)
        self.calls.append(Call(method, args))

    def _message_id(self) -> str:
        self._next_id += 1
        return f"m{self._next_id}"

    def named(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def download(self, ref: MediaRef, max_bytes: int) -> bytes:
        self._record("download", url=ref.url)
        if ref.url not in self.files:
            raise GatewayError("404 not found", retryable=False)
        data = self.files[ref.url]
        if len(data) > max_bytes:
            raise GatewayError("too large", retryable=False)
        return data

    async def delete_message(self, workspace_id: str, channel_id: str, message_id: str) -> None:
        self._record(
            "delete_message",
            workspace_id=workspace_id,
            channel_id=channel_id,
            message_id=message_id,
        )

    async def post_card(
        self,
        workspace_id: str,
        channel_id: str,
        card: Card,
        *,
        thread_id: str | None = None,
        dedupe_key: str | None = None,
        repeat: bool = False,
    ) -> str:
        self._record(
            "post_card",
            workspace_id=workspace_id,
            channel_id=channel_id,
            card=card,
            thread_id=thread_id,
            repeat=repeat,
        )
        return self._message_id()

    async def update_card(
        self, workspace_id: str, channel_id: str, message_id: str, card: Card
    ) -> None:
        self._record(
            "update_card",
            workspace_id=workspace_id,
            channel_id=channel_id,
            message_id=message_id,
            card=card,
        )

    async def post_text(
        self, workspace_id: str, channel_id: str, text: str, *, thread_id: str | None = None
    ) -> str:
        self._record(
            "post_text",
            workspace_id=workspace_id,
            channel_id=channel_id,
            text=text,
            thread_id=thread_id,
        )
        return self._message_id()

    async def send_private(
        self,
        workspace_id: str,
        user_id: str,
        text: str,
        *,
        channel_id: str | None = None,
        buttons: tuple[Button, ...] = (),
    ) -> None:
        self._record(
            "send_private",
            workspace_id=workspace_id,
            user_id=user_id,
            text=text,
            channel_id=channel_id,
            buttons=buttons,
        )

    async def timeout_member(
        self, workspace_id: str, user_id: str, seconds: int, reason: str
    ) -> None:
        self._record(
            "timeout_member",
            workspace_id=workspace_id,
            user_id=user_id,
            seconds=seconds,
            reason=reason,
        )
