"""The Slack Gateway against the local fake Slack Web API: real AsyncWebClient, real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.core.gateway import Button, Card, GatewayError
from bot.core.types import MediaRef
from bot.core.verdict import Severity
from bot.platforms.slack.app import create_gateway
from bot.platforms.slack.gateway import SlackGateway
from bot.settings import Settings
from tests.fakes.slack_server import FakeSlack
from tests.platforms.slack.conftest import shape_png, slack_settings

# The fake Slack is an async fixture, which this project runs in the session loop: the tests
# must run in that loop too, or the server would not be serving while they await it.
pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def gateway(settings: Settings, fake_slack: FakeSlack) -> AsyncIterator[SlackGateway]:
    gw = create_gateway(slack_settings(settings, fake_slack))
    yield gw
    await gw.close()


def _ref(slack: FakeSlack, file_id: str) -> MediaRef:
    info = slack.file_json(slack.files[file_id])
    return MediaRef(kind="attachment", url=info["url_private"], media_id=file_id, size=info["size"])


async def test_download_sends_the_bot_token(gateway: SlackGateway, fake_slack: FakeSlack) -> None:
    image = shape_png(1)
    file = fake_slack.add_file("cat.png", image)
    assert await gateway.download(_ref(fake_slack, file.id), max_bytes=1_000_000) == image


async def test_download_with_a_wrong_token_is_refused_not_scanned(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    file = fake_slack.add_file("cat.png", shape_png(1))
    wrong = slack_settings(settings, fake_slack).model_copy()
    gw = create_gateway(wrong)
    gw.client.token = "xoxb-someone-else"
    with pytest.raises(GatewayError) as caught:
        await gw.download(_ref(fake_slack, file.id), max_bytes=1_000_000)
    await gw.close()
    assert caught.value.retryable is False
    assert "sign-in" in str(caught.value)


async def test_download_stops_at_the_size_cap(gateway: SlackGateway, fake_slack: FakeSlack) -> None:
    file = fake_slack.add_file("big.png", b"\x89PNG" + b"\0" * 300_000)
    ref = MediaRef(
        kind="attachment", url=_ref(fake_slack, file.id).url, media_id=file.id
    )  # no size
    with pytest.raises(GatewayError) as caught:
        await gateway.download(ref, max_bytes=100_000)
    assert caught.value.retryable is False


async def test_delete_uses_the_admin_token(gateway: SlackGateway, fake_slack: FakeSlack) -> None:
    fake_slack.messages[("CGEN", "1.000001")] = {"ts": "1.000001", "user": "UMEMBER"}
    assert gateway.can_delete_messages
    await gateway.delete_message("T", "CGEN", "1.000001")
    assert ("CGEN", "1.000001") not in fake_slack.messages
    assert fake_slack.called("chat.delete")[0].token == fake_slack.admin_token
    await gateway.delete_message("T", "CGEN", "1.000001")  # already gone: done, not an error


async def test_without_admin_token_the_core_is_told_it_cannot_delete(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    gw = create_gateway(slack_settings(settings, fake_slack, admin=False))
    assert gw.can_delete_messages is False
    with pytest.raises(GatewayError) as caught:
        await gw.delete_message("T", "CGEN", "1.000001")
    assert caught.value.retryable is False
    assert fake_slack.called("chat.delete") == []


async def test_rate_limit_becomes_a_retryable_error_with_retry_after(
    gateway: SlackGateway, fake_slack: FakeSlack
) -> None:
    fake_slack.rate_limit_next["chat.postMessage"] = 7
    with pytest.raises(GatewayError) as caught:
        await gateway.post_text("T", "CSAFE", "hello")
    assert caught.value.retryable is True
    assert caught.value.retry_after == 7
    assert await gateway.post_text("T", "CSAFE", "hello")  # the next try goes through


async def test_permanent_errors_are_not_retried(gateway: SlackGateway) -> None:
    with pytest.raises(GatewayError) as caught:
        await gateway.update_card("T", "CSAFE", "9.999", Card(title="x"))
    assert caught.value.retryable is False  # message_not_found: someone deleted the card
    gateway.client.token = "xoxb-revoked"
    with pytest.raises(GatewayError) as caught:
        await gateway.post_text("T", "CSAFE", "x")
    assert caught.value.retryable is False  # invalid_auth


async def test_card_becomes_block_kit_with_button_ids_and_preview(
    gateway: SlackGateway, fake_slack: FakeSlack
) -> None:
    card = Card(
        title="Ticket #12",
        body="Sexual content score 0.93",
        fields=(("Channel", "<#CGEN>"),),
        severity=Severity.QUARANTINE,
        footer="Veille",
        image_png=shape_png(2),
        buttons=(Button("claim", "Claim", 12), Button("confirm", "Confirm", 12, "danger")),
        fallback_text="New ticket #12",
    )
    ts = await gateway.post_card("T", "CSAFE", card)
    post = fake_slack.called("chat.postMessage")[0]
    blocks = fake_slack.messages[("CSAFE", ts)]["blocks"]
    assert post.args["text"] == "New ticket #12"
    assert blocks[0]["type"] == "header" and "Ticket #12" in blocks[0]["text"]["text"]
    actions = [b for b in blocks if b["type"] == "actions"][0]["elements"]
    assert [a["action_id"] for a in actions] == ["veille:claim:12", "veille:confirm:12"]
    assert actions[1]["style"] == "danger"
    complete = fake_slack.called("files.completeUploadExternal")[0]
    assert complete.args["channel_id"] == "CSAFE" and complete.args["thread_ts"] == ts
    uploaded = [f for f in fake_slack.files.values() if f.channel == "CSAFE"]
    assert uploaded and uploaded[0].data == card.image_png

    await gateway.update_card("T", "CSAFE", ts, Card(title="Ticket #12 (claimed)"))
    assert "claimed" in fake_slack.messages[("CSAFE", ts)]["blocks"][0]["text"]["text"]


async def test_private_messages_are_ephemeral_in_a_channel_else_a_dm(
    gateway: SlackGateway, fake_slack: FakeSlack
) -> None:
    await gateway.send_private("T", "UMEMBER", "only you", channel_id="CGEN")
    ephemeral = fake_slack.called("chat.postEphemeral")[0].args
    assert (ephemeral["channel"], ephemeral["user"], ephemeral["text"]) == (
        "CGEN",
        "UMEMBER",
        "only you",
    )
    await gateway.send_private("T", "UMEMBER", "by dm")
    dm = fake_slack.called("chat.postMessage")[-1].args
    assert dm["channel"] == "DUMEMBER" and dm["text"] == "by dm"


async def test_redirects_keep_the_token_on_the_same_host_only(
    gateway: SlackGateway, fake_slack: FakeSlack
) -> None:
    image = shape_png(4)
    file = fake_slack.add_file("moved.png", image)
    key = f"T0VEILLE-{file.id}"
    same = MediaRef(
        kind="attachment",
        media_id=file.id,
        url=f"{fake_slack.base_url}redirect/127.0.0.1/{key}/moved.png",
    )
    assert await gateway.download(same, max_bytes=1_000_000) == image
    other = MediaRef(
        kind="attachment",
        media_id=file.id,
        url=f"{fake_slack.base_url}redirect/localhost/{key}/moved.png",
    )
    with pytest.raises(GatewayError):
        await gateway.download(other, max_bytes=1_000_000)
    assert fake_slack.downloads[-1] == (file.id, False)  # the other host never saw the token


async def test_an_ephemeral_slack_refuses_becomes_a_dm(
    gateway: SlackGateway, fake_slack: FakeSlack
) -> None:
    await gateway.send_private(
        "T", "UMEMBER", "please delete it", channel_id="COUT"
    )  # bot not there
    assert fake_slack.called("chat.postEphemeral")  # tried first
    dm = fake_slack.called("chat.postMessage")[-1].args
    assert (dm["channel"], dm["text"]) == ("DUMEMBER", "please delete it")


async def test_a_repeated_card_post_finds_the_card_instead_of_posting_twice(
    gateway: SlackGateway, fake_slack: FakeSlack
) -> None:
    """Slack has no idempotent post: a card carries its outbox key in its metadata, and a
    repeat (the process died after the post, before recording it) looks for it first."""
    card = Card(title="Ticket #7", fallback_text="New ticket #7")
    first = await gateway.post_card("T", "CSAFE", card, dedupe_key="7:card")
    other = await gateway.post_card("T", "CSAFE", Card(title="#8"), dedupe_key="8:card")
    again = await gateway.post_card("T", "CSAFE", card, dedupe_key="7:card", repeat=True)
    assert again == first and other != first
    assert len(fake_slack.called("chat.postMessage")) == 2  # the repeat posted nothing
    # In a thread the replies are searched; a key never posted is posted on a repeat too.
    root = await gateway.post_card("T", "CSAFE", Card(title="root"))
    reply = await gateway.post_card("T", "CSAFE", card, thread_id=root, dedupe_key="7:preview")
    assert (
        await gateway.post_card(
            "T", "CSAFE", card, thread_id=root, dedupe_key="7:preview", repeat=True
        )
        == reply
    )
    fresh = await gateway.post_card("T", "CSAFE", card, dedupe_key="9:card", repeat=True)
    assert fresh not in (first, other, root, reply)
    assert len(fake_slack.called("chat.postMessage")) == 5
