"""A local fake of the Slack Web API and of Socket Mode, speaking Slack's real wire protocol.

It serves the Web API methods Veille uses under `<base>/api/`, private file downloads that
check the bearer token (a wrong or missing token gets Slack's HTML sign-in page, as the real
Slack does), the files upload v2 path, and a Socket Mode websocket that pushes envelopes and
collects the acks. Every Web API call is recorded, with the token it carried, so tests can
assert on what the app did and as which workspace.

It is also Slack's side of OAuth distribution: `/oauth/v2/authorize` stands for a person who
approves the install in workspace `team` (302 back to the app's redirect URL with a code), and
`oauth.v2.access` exchanges that code, once, for a bot token of that team. Uninstalling
(`uninstall`) revokes the team's token as Slack does.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

TEAM_ID = "T0VEILLE"
BOT_USER_ID = "UBOTVEILLE"
WAIT_S = 10.0  # a safety net against a hung test, not a timing assertion


@dataclass
class Call:
    method: str
    token: str
    args: dict[str, Any]


@dataclass
class SlackFile:
    id: str
    name: str
    data: bytes
    mimetype: str = "image/png"
    user: str = ""
    channel: str = ""
    ts: str = ""
    team: str = TEAM_ID


@dataclass
class FakeSlack:
    """State of one fake workspace. Mutate the dicts before the test acts."""

    bot_token: str = "xoxb-test-bot-token"
    app_token: str = "xapp-test-app-token"
    admin_token: str = "xoxp-test-admin-token"
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    channels: dict[str, set[str]] = field(default_factory=dict)  # channel id -> member ids
    files: dict[str, SlackFile] = field(default_factory=dict)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    rate_limit_next: dict[str, float] = field(default_factory=dict)  # method -> Retry-After
    # method -> HTTP status answered with a proxy's plain-text page instead of Slack's JSON
    html_errors: dict[str, int] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    downloads: list[tuple[str, bool]] = field(default_factory=list)  # (file id, authorised)
    base_url: str = ""
    # OAuth distribution: the app's credentials, where an approved install is sent back, and
    # the bot token each installed team got from oauth.v2.access.
    client_id: str = "1234.5678"
    client_secret: str = "test-client-secret"
    redirect_url: str = ""
    team_tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._socket_ready = asyncio.Event()
        self._codes: dict[str, str] = {}  # OAuth codes not yet exchanged -> their team

    # ----------------------------------------------------------------- helpers for tests
    def add_user(
        self,
        user_id: str,
        *,
        admin: bool = False,
        locale: str = "en-US",
        is_bot: bool = False,
        name: str = "",
    ) -> None:
        self.users[user_id] = {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": name or user_id.lower(),
            "real_name": name or user_id,
            "is_admin": admin,
            "is_owner": False,
            "is_bot": is_bot,
            "locale": locale,
            "tz": "Europe/Paris",
            "profile": {"display_name": name or user_id},
        }

    def add_file(self, name: str, data: bytes, *, mimetype: str = "image/png") -> SlackFile:
        file = SlackFile(id=f"F{next(self._ids):06d}", name=name, data=data, mimetype=mimetype)
        self.files[file.id] = file
        return file

    def file_json(self, file: SlackFile) -> dict[str, Any]:
        url = f"{self.base_url}files-pri/{file.team}-{file.id}/{file.name}"
        shares = {"public": {file.channel: [{"ts": file.ts}]}} if file.channel else {}
        return {
            "id": file.id,
            "name": file.name,
            "mimetype": file.mimetype,
            "size": len(file.data),
            "url_private": url,
            "url_private_download": url + "?download=1",
            "user": file.user,
            "shares": shares,
        }

    def upload(
        self, user: str, name: str, data: bytes, *, mimetype: str = "image/jpeg"
    ) -> SlackFile:
        """A file a person uploaded through a modal's file_input (owned by them, in no channel)."""
        file = self.add_file(name, data, mimetype=mimetype)
        file.user = user
        return file

    def opened_views(self) -> list[dict[str, Any]]:
        """Every view the app opened with views.open, parsed, oldest first."""
        return [_json(c.args["view"]) for c in self.called("views.open")]

    def message_shortcut(
        self, user: str, channel: str, ts: str, callback_id: str = "veille_report"
    ) -> dict[str, Any]:
        """The `message_action` payload Slack sends when `user` picks a message shortcut on the
        message (channel, ts): it carries the message as the channel history has it."""
        message = {
            k: v
            for k, v in self.messages[(channel, ts)].items()
            if k not in ("channel", "channel_type", "blocks") and v is not None
        }
        return {
            "type": "message_action",
            "callback_id": callback_id,
            "token": "verification",
            "action_ts": self.next_ts(),
            "trigger_id": f"trig-{self.next_ts()}",
            "team": {"id": TEAM_ID, "domain": "veille-test"},
            "api_app_id": "AVEILLE",
            "user": {"id": user, "name": user.lower(), "team_id": TEAM_ID},
            "channel": {"id": channel, "name": channel.lower()},
            "message_ts": ts,
            "message": {"type": "message", **message},
            "response_url": f"{self.base_url}response",
        }

    def file_input_value(self, *files: SlackFile) -> dict[str, Any]:
        """A file_input element's state value in a view_submission: the uploaded files."""
        return {"type": "file_input", "files": [self.file_json(f) for f in files]}

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def token_of(self, team: str) -> str | None:
        """The bot token that `team` is called with: its install's, or the single bot token."""
        return self.team_tokens.get(team) or (self.bot_token if team == TEAM_ID else None)

    def team_of(self, token: str) -> str | None:
        """The team a bot token belongs to (None for an unknown or revoked one)."""
        teams = [team for team, known in self.team_tokens.items() if known == token]
        return teams[0] if teams else (TEAM_ID if token == self.bot_token else None)

    def uninstall(self, team: str) -> dict[str, Any]:
        """The app is removed from `team`: its token stops working. Returns the
        `app_uninstalled` event callback Slack then sends."""
        self.team_tokens.pop(team, None)
        return {
            "type": "event_callback",
            "team_id": team,
            "api_app_id": "AVEILLE",
            "event_id": f"Ev{self.next_ts()}",
            "event_time": 1700000000,
            "event": {"type": "app_uninstalled"},
        }

    def next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    # ----------------------------------------------------------------- server lifecycle
    async def start(self) -> str:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files-pri/{key}/{name}", self._download)
        app.router.add_get("/redirect/{host}/{key}/{name}", self._redirect)
        app.router.add_get("/public/{file_id}", self._public)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/socket", self._socket)
        app.router.add_get("/oauth/v2/authorize", self._authorize)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/"
        return self.base_url + "api/"

    async def stop(self) -> None:
        for ws in self._sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ----------------------------------------------------------------- Socket Mode
    async def push(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send an envelope (events_api, slash_commands, interactive) and return the app's ack."""
        await asyncio.wait_for(self._socket_ready.wait(), WAIT_S)
        envelope_id = f"env-{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
            }
        )
        return await asyncio.wait_for(future, WAIT_S)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "AVEILLE"}}
        )
        self._socket_ready.set()
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            future = self._acks.pop(data.get("envelope_id", ""), None)
            if future is not None and not future.done():
                future.set_result(data)
        return ws

    # ----------------------------------------------------------------- OAuth
    async def _authorize(self, request: web.Request) -> web.Response:
        """The person approves the install in `team` (the default workspace unless named):
        back to the app's redirect URL with a one-time code and the app's state."""
        query = request.query
        if query.get("client_id") != self.client_id:
            return web.Response(status=400, text="invalid client_id")
        team = query.get("team") or TEAM_ID
        code = f"code-{team}-{next(self._ids)}"
        self._codes[code] = team
        target = query.get("redirect_uri") or self.redirect_url
        params = urllib.parse.urlencode({"code": code, "state": query.get("state", "")})
        raise web.HTTPFound(f"{target}?{params}")

    def _oauth_v2_access(self, request: web.Request, args: dict[str, Any]) -> web.Response:
        """A code for a bot token, as oauth.v2.access does: client credentials by HTTP basic
        auth (or in the form), a code used once."""
        basic = request.headers.get("Authorization", "").removeprefix("Basic ")
        client_id, _, secret = (
            base64.b64decode(basic).decode().partition(":")
            if basic
            else (args.get("client_id", ""), "", args.get("client_secret", ""))
        )
        if (client_id, secret) != (self.client_id, self.client_secret):
            return web.json_response({"ok": False, "error": "invalid_client_id"})
        team = self._codes.pop(str(args.get("code", "")), None)
        if team is None:
            return web.json_response({"ok": False, "error": "invalid_code"})
        token = self.team_tokens[team] = f"xoxb-{team}-{next(self._ids)}"
        return web.json_response(
            {
                "ok": True,
                "app_id": "AVEILLE",
                "access_token": token,
                "token_type": "bot",
                "scope": "chat:write,commands,files:read",
                "bot_user_id": BOT_USER_ID,
                "team": {"id": team, "name": f"Team {team}"},
                "enterprise": None,
                "is_enterprise_install": False,
                "authed_user": {"id": "UADMIN"},
            }
        )

    # ----------------------------------------------------------------- files
    async def _download(self, request: web.Request) -> web.Response:
        team, file_id = request.match_info["key"].split("-", 1)
        file = self.files.get(file_id)
        expected = self.token_of(team)
        authorised = (
            expected is not None and request.headers.get("Authorization") == f"Bearer {expected}"
        )
        self.downloads.append((file_id, authorised))
        if not authorised or file is None:
            # Slack answers an unauthenticated download with its sign-in page, status 200.
            return web.Response(text="<html>Sign in to Slack</html>", content_type="text/html")
        return web.Response(body=file.data, content_type=file.mimetype)

    async def _public(self, request: web.Request) -> web.Response:
        """A file on the open web (a link someone pastes), no token needed."""
        file = self.files[request.match_info["file_id"]]
        return web.Response(body=file.data, content_type=file.mimetype)

    async def _redirect(self, request: web.Request) -> web.Response:
        """A file URL that moved: 302 to the download on `host` (127.0.0.1 or localhost)."""
        info = request.match_info
        port = request.url.port
        raise web.HTTPFound(f"http://{info['host']}:{port}/files-pri/{info['key']}/{info['name']}")

    async def _upload(self, request: web.Request) -> web.Response:
        file = self.files[request.match_info["file_id"]]
        file.data = await request.read()
        return web.Response(text="OK - " + str(len(file.data)))

    # ----------------------------------------------------------------- Web API
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        # slack_sdk sends arguments as a query string, a form or JSON depending on the method.
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        elif request.method == "POST":
            args.update(await request.post())
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.calls.append(Call(method, token, args))
        if method == "oauth.v2.access":
            return self._oauth_v2_access(request, args)
        if method in self.html_errors:
            # A proxy in front of Slack answering in plain text: slack_sdk keeps it as a str.
            return web.Response(
                text="502 Bad Gateway", status=self.html_errors[method], content_type="text/plain"
            )
        retry_after = self.rate_limit_next.pop(method, None)
        if retry_after is not None:
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(int(retry_after))},
            )
        valid = {self.bot_token, self.admin_token, *self.team_tokens.values()} | (
            {self.app_token} if method == "apps.connections.open" else set()
        )
        if token not in valid:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        body = handler(args, token)
        return web.json_response({"ok": "error" not in body, **body})

    def _m_apps_connections_open(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        return {"url": self.base_url.replace("http://", "ws://") + "socket"}

    def _m_auth_test(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        user = BOT_USER_ID if self.team_of(token) else "UADMIN"
        return {
            "url": "https://veille-test.slack.com/",
            "team": "Veille Test",
            "user": "veille",
            "team_id": self.team_of(token) or TEAM_ID,
            "user_id": user,
            "bot_id": "BVEILLE" if user == BOT_USER_ID else None,
        }

    def _m_chat_postMessage(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        ts = self.next_ts()
        message = {
            "ts": ts,
            "text": args.get("text", ""),
            "blocks": _json(args.get("blocks")),
            "thread_ts": args.get("thread_ts"),
            "user": BOT_USER_ID,
        }
        if args.get("metadata"):  # Slack returns it to readers that ask include_all_metadata
            message["metadata"] = _json(args["metadata"])
        self.messages[(args["channel"], ts)] = message
        return {"channel": args["channel"], "ts": ts, "message": message}

    def _m_chat_update(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        key = (args["channel"], args["ts"])
        if key not in self.messages:
            return {"error": "message_not_found"}
        self.messages[key].update(text=args.get("text", ""), blocks=_json(args.get("blocks")))
        return {"channel": args["channel"], "ts": args["ts"]}

    def _m_chat_delete(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        key = (args["channel"], args["ts"])
        if key not in self.messages:
            return {"error": "message_not_found"}
        if token != self.admin_token and self.messages[key].get("user") != BOT_USER_ID:
            return {"error": "cant_delete_message"}
        del self.messages[key]
        return {"channel": args["channel"], "ts": args["ts"]}

    def _m_chat_postEphemeral(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        members = self.channels.get(args["channel"])
        if members is not None and BOT_USER_ID not in members:
            return {"error": "not_in_channel"}
        if members is not None and args.get("user") not in members:
            return {"error": "user_not_in_channel"}
        return {"message_ts": self.next_ts()}

    def _m_conversations_open(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        return {"channel": {"id": "D" + str(args.get("users", "")).split(",")[0]}}

    def _m_conversations_info(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        channel = args["channel"]
        if channel not in self.channels:
            return {"error": "channel_not_found"}
        return {
            "channel": {
                "id": channel,
                "name": channel.lower(),
                "is_member": BOT_USER_ID in self.channels[channel],
            }
        }

    def _m_conversations_members(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        channel = args["channel"]
        if channel not in self.channels:
            return {"error": "channel_not_found"}
        return {"members": sorted(self.channels[channel]), "response_metadata": {"next_cursor": ""}}

    def _m_conversations_replies(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        """The thread of `ts`: its root first, then the replies within oldest..latest."""
        channel, root_ts = args["channel"], args["ts"]
        root = self.messages.get((channel, root_ts))
        replies = [
            m
            for (c, ts), m in sorted(self.messages.items())
            if c == channel
            and ts != root_ts
            and m.get("thread_ts") == root_ts
            and _within(ts, args)
        ]
        return {"messages": ([root] if root else []) + replies, "has_more": False}

    def _m_conversations_history(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        """The channel's timeline (no thread replies), newest first, within oldest..latest."""
        channel = args["channel"]
        if channel in self.channels and BOT_USER_ID not in self.channels[channel]:
            return {"error": "not_in_channel"}
        found = [
            m
            for (c, ts), m in sorted(self.messages.items(), reverse=True)
            if c == channel and m.get("thread_ts") in (None, ts) and _within(ts, args)
        ]
        limit = int(args.get("limit") or 100)
        return {"messages": found[:limit], "has_more": len(found) > limit}

    def _m_users_info(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        user = self.users.get(args["user"])
        return {"user": user} if user else {"error": "user_not_found"}

    def _m_usergroups_list(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        return {
            "usergroups": [
                {"id": gid, "handle": gid.lower(), "name": gid, "users": members}
                for gid, members in self.usergroups.items()
            ]
        }

    def _m_usergroups_users_list(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        members = self.usergroups.get(args["usergroup"])
        return {"users": members} if members is not None else {"error": "no_such_subteam"}

    def _m_files_delete(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        file = self.files.get(str(args.get("file")))
        if file is None:
            return {"error": "file_not_found"}
        # As on Slack: a bot token deletes only the bot's own files; a person's needs an admin.
        if self.team_of(token) and file.user not in ("", BOT_USER_ID):
            return {"error": "cant_delete_file"}
        del self.files[file.id]
        return {}

    def _m_files_info(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        file = self.files.get(args["file"])
        return {"file": self.file_json(file)} if file else {"error": "file_not_found"}

    def _m_files_getUploadURLExternal(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        file = self.add_file(str(args["filename"]), b"")
        return {"upload_url": f"{self.base_url}upload/{file.id}", "file_id": file.id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        files = _json(args["files"])
        for item in files:
            file = self.files[item["id"]]
            file.channel = str(args.get("channel_id", ""))
            file.ts = self.next_ts()
        return {"files": [{"id": item["id"], "title": item.get("title")} for item in files]}

    def _m_views_open(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"error": "invalid_trigger_id"}
        return {"view": {"id": f"V{next(self._ids)}", **_json(args["view"])}}

    def _m_views_update(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        return {"view": {"id": args.get("view_id", ""), **_json(args["view"])}}

    def _m_views_publish(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        return {"view": {"id": f"V{next(self._ids)}", **_json(args["view"])}}


def _within(ts: str, args: dict[str, Any]) -> bool:
    """Slack's oldest/latest bounds (exclusive unless `inclusive`)."""
    inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
    value = float(ts)
    for bound, above in (("oldest", True), ("latest", False)):
        if args.get(bound) is None:
            continue
        limit = float(args[bound])
        if value == limit and not inclusive:
            return False
        if (value < limit) if above else (value > limit):
            return False
    return True


def _json(value: Any) -> Any:
    """slack_sdk sends nested arguments as JSON strings in form posts."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
