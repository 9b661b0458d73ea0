"""Issue 18's Slack Done-when: installed in two workspaces through OAuth, each workspace's events
are answered with its own token; uninstalling removes the tokens.

The real flow end to end: /slack/install (Bolt) → the fake Slack's authorize page, approved in
a team → /slack/oauth_redirect with a code → oauth.v2.access → the installation stored on the
migrated database, encrypted. Events then arrive as signed HTTP requests, as from Slack.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import build_veille
from bot.core.crypto import EvidenceCipher
from bot.core.scanner import Scanner
from bot.core.suite import load_thresholds
from bot.core.types import Platform, SetupInput
from bot.platforms.slack.runner import SlackRunner
from bot.settings import Settings
from bot.store.repos import Store
from bot.store.slack_installations import (
    SlackInstallation,
    SlackInstallationStore,
    SlackOAuthStateStore,
)
from detectors.hashes import HashBank
from detectors.registry import DetectorDeps, build_detectors
from tests.fakes.slack_server import BOT_USER_ID, FakeSlack
from tests.platforms.slack.conftest import SIGNING_SECRET
from tests.platforms.slack.world import ADMIN, SlackWorld, eventually
from tests.tiny_clip import flagged_image, png_bytes

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Two partner organisations, each with its own channels (the fake shares one namespace).
TEAMS = {"TALPHA": "A", "TBRAVO": "B"}


def channel(name: str, team: str) -> str:
    return f"C{name}{TEAMS[team]}"


@pytest.fixture
async def world(
    settings: Settings, engine: AsyncEngine, fake_slack: FakeSlack, tiny_clip: Any
) -> AsyncIterator[SlackWorld]:
    """Veille on Slack in OAuth mode: client id and secret, no bot token of its own."""
    app_settings = settings.model_copy(
        update={
            "slack_bot_token": None,
            "slack_app_token": None,
            "slack_admin_token": None,
            "slack_client_id": fake_slack.client_id,
            "slack_client_secret": SecretStr(fake_slack.client_secret),
            "slack_signing_secret": SecretStr(SIGNING_SECRET),
            "slack_api_url": fake_slack.base_url + "api/",
            "slack_mode": "http",
            "fetch_allow_loopback": True,
        }
    )
    for team in TEAMS:
        for name in ("SAFE", "QUAR"):
            fake_slack.channels[channel(name, team)] = {BOT_USER_ID, "UMOD"}
        fake_slack.channels[channel("GEN", team)] = {BOT_USER_ID, "UMEMBER", "UMOD"}
    others = build_detectors(["hashes", "text"], DetectorDeps(bank=HashBank()))
    for detector in others:
        await detector.load()
    scanner = Scanner([tiny_clip, *others], load_thresholds(app_settings))
    veille = await build_veille(app_settings, engine, scanner=scanner)
    runner = SlackRunner(app_settings, veille, host="127.0.0.1", port=0)
    await runner.start()
    fake_slack.redirect_url = f"http://127.0.0.1:{runner.port}/slack/oauth_redirect"
    veille.start()
    try:
        yield SlackWorld(fake_slack, veille, runner, engine, "http")
    finally:
        await runner.stop()
        await veille.aclose()


async def install(world: SlackWorld, team: str) -> None:
    """A workspace admin of `team` clicks "Add to Slack" and approves."""
    app = f"http://127.0.0.1:{world.runner.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{app}/slack/install", params={"team": team}, allow_redirects=False
        ) as resp:
            assert resp.status == 302
            to_slack = resp.headers["Location"]
            cookie = SimpleCookie(resp.headers["Set-Cookie"])  # the state, bound to this browser
        assert to_slack.startswith(world.slack.base_url + "oauth/v2/authorize")
        async with http.get(to_slack, allow_redirects=False) as resp:
            assert resp.status == 302
            back = resp.headers["Location"]
        assert back.startswith(app + "/slack/oauth_redirect?code=")
        state = {name: morsel.value for name, morsel in cookie.items()}
        async with http.get(
            back,
            allow_redirects=False,
            headers={"Cookie": "; ".join(f"{k}={v}" for k, v in state.items())},
        ) as resp:
            assert resp.status == 200, await resp.text()


async def set_up(world: SlackWorld, team: str) -> None:
    await world.veille.save_setup(
        Platform.SLACK,
        team,
        ADMIN,
        SetupInput(
            safety_channel_id=channel("SAFE", team),
            quarantine_channel_id=channel("QUAR", team),
            moderator_role_ids=("SMODS",),
            locale="en",
        ),
    )


async def post_flagged(world: SlackWorld, team: str, seed: int) -> tuple[int, str]:
    """A member of `team` shares a flagged image; returns Veille's HTTP status and the ts."""
    slack = world.slack
    file = slack.add_file(f"photo{seed}.png", png_bytes(flagged_image(seed)))
    ts = slack.next_ts()
    gen = channel("GEN", team)
    file.channel, file.ts, file.user, file.team = gen, ts, "UMEMBER", team
    event = {
        "type": "message",
        "subtype": "file_share",
        "channel": gen,
        "user": "UMEMBER",
        "text": "look",
        "ts": ts,
        "channel_type": "channel",
        "team": team,
        "files": [slack.file_json(file)],
    }
    slack.messages[(gen, ts)] = {**event, "blocks": None}
    status, _ = await world.post(
        "events_api",
        {
            "type": "event_callback",
            "team_id": team,
            "api_app_id": "AVEILLE",
            "event_id": f"Ev{ts}",
            "event_time": 1700000000,
            "event": event,
        },
    )
    return status, ts


def cards(world: SlackWorld, team: str) -> list[str]:
    """The tokens that ticket cards in `team`'s safety channel were posted with."""
    return [
        c.token
        for c in world.slack.called("chat.postMessage")
        if c.args.get("channel") == channel("SAFE", team)
        and "veille:" in json.dumps(c.args.get("blocks"))
    ]


def private_answers(world: SlackWorld, team: str) -> list[str]:
    """Tokens of the ephemeral answers to UMEMBER in `team`'s #general."""
    return [
        c.token
        for c in world.slack.called("chat.postEphemeral")
        if c.args.get("channel") == channel("GEN", team)
        and c.args.get("user") == "UMEMBER"
        and c.token == world.slack.team_tokens[team]
    ]


async def installations(world: SlackWorld) -> list[SlackInstallation]:
    return await installations_in(world.engine)


async def test_two_workspaces_each_answered_with_its_own_token_until_uninstalled(
    world: SlackWorld,
) -> None:
    slack = world.slack
    for team in TEAMS:
        await install(world, team)
        await set_up(world, team)
    assert set(slack.team_tokens) == set(TEAMS)
    alpha, bravo = slack.team_tokens["TALPHA"], slack.team_tokens["TBRAVO"]
    assert alpha != bravo
    stored = await installations(world)
    assert {row.team_id for row in stored} == set(TEAMS)
    for row in stored:  # encrypted at rest: the token is not in the row's bytes
        assert slack.team_tokens[row.team_id].encode() not in row.bot_token

    # A flagged image in each workspace: downloaded, ticketed and its card posted, each with
    # that workspace's token and no other.
    for seed, team in enumerate(TEAMS, start=1):
        status, _ = await post_flagged(world, team, seed)
        assert status == 200
    for team in TEAMS:
        assert set(await eventually(partial(cards, world, team))) == {slack.team_tokens[team]}
    assert slack.downloads and all(authorised for _, authorised in slack.downloads)
    for call in slack.calls:
        if call.method != "oauth.v2.access":
            assert call.token in (alpha, bravo), (call.method, call.token)
    # Who is who (user groups, admins) is each workspace's own, read with its token.
    assert {c.token for c in slack.called("usergroups.list")} == {alpha, bravo}
    for team in TEAMS:  # the tombstone in the thread of the flagged message
        gen_posts = [
            c
            for c in slack.called("chat.postMessage")
            if c.args.get("channel") == channel("GEN", team)
        ]
        assert gen_posts and {c.token for c in gen_posts} == {slack.team_tokens[team]}

    # A /veille command is answered in the asker's workspace, with its token.
    for team in TEAMS:
        status, _ = await world.post(
            "slash_commands",
            {
                "command": "/veille",
                "text": "help",
                "team_id": team,
                "user_id": "UMEMBER",
                "channel_id": channel("GEN", team),
                "trigger_id": f"trig-{slack.next_ts()}",
                "response_url": f"{slack.base_url}response",
                "api_app_id": "AVEILLE",
            },
        )
        assert status == 200
        await eventually(partial(private_answers, world, team))

    # Alpha uninstalls the app: Slack revokes its token and tells Veille.
    status, _ = await world.post("events_api", slack.uninstall("TALPHA"))
    assert status == 200
    await eventually(lambda: installations_left(world, {"TBRAVO"}))
    before = len(slack.calls)
    tickets_before = len(await world.tickets())
    status, _ = await post_flagged(
        world, "TALPHA", 7
    )  # refused at authorisation, before any listener
    assert status == 200
    # Bravo is still served; Alpha's event made no call, with any token.
    await post_flagged(world, "TBRAVO", 8)
    await eventually(lambda: len(cards(world, "TBRAVO")) >= 2)
    after = slack.calls[before:]
    assert all(c.token == bravo for c in after), [(c.method, c.token) for c in after]
    assert not [c for c in after if channel("GEN", "TALPHA") in json.dumps(c.args)]
    assert len(await world.tickets()) == tickets_before + 1

    # Bravo's admin revokes the bot token: its installation goes too.
    revoked = {
        **slack.uninstall("TBRAVO"),
        "event": {"type": "tokens_revoked", "tokens": {"bot": [BOT_USER_ID]}},
    }
    status, _ = await world.post("events_api", revoked)
    assert status == 200
    await eventually(lambda: installations_left(world, set()))


async def test_the_store_keeps_one_sealed_row_per_team_and_states_once(engine: AsyncEngine) -> None:
    store = Store(engine)
    installations = SlackInstallationStore(store, EvidenceCipher("test-key"))
    for token in ("xoxb-first", "xoxb-again"):  # a reinstall replaces the token
        await installations.async_save(
            Installation(
                team_id="TALPHA",
                bot_token=token,
                bot_id="B1",
                bot_user_id=BOT_USER_ID,
                bot_scopes="chat:write",
                user_id="UADMIN",
                app_id="AVEILLE",
            )
        )
    bot = await installations.async_find_bot(enterprise_id=None, team_id="TALPHA")
    assert bot is not None and bot.bot_token == "xoxb-again" and bot.bot_scopes == ["chat:write"]
    assert await installations.async_find_bot(enterprise_id=None, team_id="TBRAVO") is None
    rows = await installations_in(engine)
    assert len(rows) == 1 and b"xoxb-again" not in rows[0].bot_token
    assert rows[0].installer_user_id == "UADMIN"
    await installations.async_delete_all(enterprise_id=None, team_id="TALPHA")
    assert await installations_in(engine) == []

    states = SlackOAuthStateStore(store)
    state = await states.async_issue()
    assert await states.async_consume(state) is True
    assert await states.async_consume(state) is False  # once
    assert await states.async_consume("forged") is False
    expired = SlackOAuthStateStore(store, expiration_s=-1)
    assert await expired.async_consume(await expired.async_issue()) is False


async def installations_in(engine: AsyncEngine) -> list[SlackInstallation]:
    async with AsyncSession(engine) as session:
        return list((await session.exec(select(SlackInstallation))).all())


async def installations_left(world: SlackWorld, teams: set[str]) -> bool:
    return {row.team_id for row in await installations(world)} == teams
