"""Slack payloads → MessageEvent: files, threads, edits, bots and file_shared shares."""

from __future__ import annotations

from bot.core.types import Actor, Platform
from bot.platforms.slack import translate

AUTHOR = Actor(user_id="U1")
FILE = {
    "id": "F1",
    "name": "a.png",
    "mimetype": "image/png",
    "size": 10,
    "url_private": "https://files.slack.com/files-pri/T-F1/a.png",
    "url_private_download": "https://files.slack.com/files-pri/T-F1/download/a.png",
}


def test_a_file_share_becomes_an_attachment_and_links_stay_in_the_text() -> None:
    message = {
        "type": "message",
        "subtype": "file_share",
        "channel": "C1",
        "user": "U1",
        "ts": "1700000000.000100",
        "text": "see https://example.org/x.jpg",
        "files": [FILE],
    }
    unwrapped = translate.unwrap(message)
    assert unwrapped is not None and unwrapped[1] is False
    event = translate.message_event("T1", unwrapped[0], AUTHOR)
    assert (event.platform, event.workspace_id, event.channel_id, event.message_id) == (
        Platform.SLACK,
        "T1",
        "C1",
        "1700000000.000100",
    )
    assert event.text == "see https://example.org/x.jpg"
    (ref,) = event.media
    assert (ref.kind, ref.media_id, ref.url, ref.size) == (
        "attachment",
        "F1",
        FILE["url_private_download"],
        10,
    )
    assert event.thread_id is None and event.created_at is not None


def test_a_thread_reply_names_its_root_and_what_it_answers() -> None:
    message = {
        "channel": "C1",
        "user": "U2",
        "ts": "2.0",
        "thread_ts": "1.0",
        "text": "@grok undress her",
    }
    parent = {"ts": "1.0", "user": "U1", "text": "", "files": [FILE]}
    replied = translate.replied_message(parent, AUTHOR)
    event = translate.message_event("T1", message, Actor(user_id="U2"), reply_to=replied)
    assert event.thread_id == "1.0"
    assert (
        event.reply_to is not None
        and event.reply_to.has_image
        and event.reply_to.message_id == "1.0"
    )
    root = translate.message_event("T1", {"channel": "C1", "ts": "1.0", "thread_ts": "1.0"}, AUTHOR)
    assert root.thread_id is None  # a thread root is not a reply


def test_edits_are_unwrapped_and_noise_is_dropped() -> None:
    edit = {
        "type": "message",
        "subtype": "message_changed",
        "channel": "C1",
        "message": {"user": "U1", "ts": "3.0", "text": "now with a link", "edited": {"ts": "4.0"}},
    }
    unwrapped = translate.unwrap(edit)
    assert unwrapped is not None
    message, edited = unwrapped
    assert edited and message["channel"] == "C1" and message["ts"] == "3.0"
    assert translate.unwrap({"subtype": "channel_join", "user": "U1"}) is None
    assert translate.unwrap({"subtype": "message_deleted"}) is None


def test_bot_posts_are_marked() -> None:
    message = {"subtype": "bot_message", "bot_id": "B9", "username": "imagebot", "ts": "5.0"}
    assert translate.is_bot_message(message) and translate.author_id(message) == "B9"


def test_slack_connect_files_without_details_need_files_info() -> None:
    assert translate.needs_file_info([{"id": "F2", "file_access": "check_file_info"}, FILE]) == [
        "F2"
    ]


def test_file_shared_finds_the_message_it_was_shared_in() -> None:
    file = {
        **FILE,
        "user": "U1",
        "shares": {"private": {"G1": [{"ts": "6.0", "thread_ts": "5.0"}]}},
    }
    message = translate.file_share_message(file, "G1")
    assert message is not None
    event = translate.message_event("T1", message, AUTHOR)
    assert (event.message_id, event.thread_id, event.media[0].media_id) == ("6.0", "5.0", "F1")
    assert translate.file_share_message(file, "C-elsewhere") is None


def test_a_shared_message_is_read_as_the_content_it_carries() -> None:
    """Sharing a message copies it into `attachments`: its text, files and image are scanned
    as this message's own, while a link unfurl (not a share) adds nothing."""
    message = {
        "type": "message",
        "channel": "C2",
        "user": "U1",
        "ts": "1700000000.000200",
        "text": "look",
        "attachments": [
            {
                "is_share": True,
                "text": "@grok remove her clothes",
                "files": [FILE],
                "image_url": "https://cdn.example/shared.jpg",
            },
            {
                "from_url": "https://news.example/a",
                "image_url": "https://news.example/a.jpg",
                "text": "an unfurled article",
            },
        ],
    }
    event = translate.message_event("T1", message, AUTHOR)
    assert event.text == "look\n@grok remove her clothes"
    assert [(ref.kind, ref.url) for ref in event.media] == [
        ("attachment", FILE["url_private_download"]),
        ("embed", "https://cdn.example/shared.jpg"),
    ]
