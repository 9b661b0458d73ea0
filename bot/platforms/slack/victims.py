"""Victims first (issue 19) on Slack: "Report to Veille" (the `veille_report` message shortcut),
`/veille protect` (a modal with a file input) and a photo sent to Veille in a DM.

The core decides everything (permissions, tickets, the 48-hour clock, hashing); these listeners
only build the forms, read what was submitted and hand it over. A protected photo's bytes live
in memory for the one `Veille.protect` call and are never logged or written; the upload is then
deleted from Slack (best effort), so no copy stays there either.

These listeners are registered before the generic message listeners (Bolt runs the first that
matches), so a photo sent to Veille privately is protected, never scanned as a post.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import VeilleError
from bot.core.gateway import GatewayError, Reply
from bot.core.i18n import normalise_locale, t
from bot.core.reports import REASONS
from bot.core.types import Actor, Platform, ReportForm
from bot.platforms.slack import translate
from bot.platforms.slack.context import SlackContext
from bot.platforms.slack.events import SeenFiles, full_files, to_event
from bot.platforms.slack.gateway import slack_error
from bot.platforms.slack.render import Block, mrkdwn, plain

log = logging.getLogger(__name__)

REPORT_SHORTCUT = "veille_report"
REPORT_CALLBACK = "veille_report_submit"
PROTECT_CALLBACK = "veille_protect_submit"
PROTECT_FILETYPES = ["jpg", "jpeg", "png", "gif", "webp"]
GOOD_FAITH = "good_faith"


# ---------------------------------------------------------------------------- the forms
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


def report_view(locale: str, private_metadata: str) -> Block:
    """The report form: what it is (the five reasons), contact, details, good faith."""
    reasons = [{"text": plain(t(f"victims.reason.{r}", locale), 75), "value": r} for r in REASONS]
    good_faith = {
        "text": plain(t("victims.form.good_faith_option", locale), 150),
        "value": GOOD_FAITH,
    }
    return {
        "type": "modal",
        "callback_id": REPORT_CALLBACK,
        "private_metadata": private_metadata,
        "title": plain(t("victims.form.title", locale), 24),
        "submit": plain(t("victims.form.submit", locale), 24),
        "close": plain(t("slack.modal_close", locale), 24),
        "blocks": [
            _input(
                "reason",
                t("victims.form.reason", locale),
                {"type": "static_select", "action_id": "reason", "options": reasons},
            ),
            _input(
                "contact",
                t("victims.form.contact", locale),
                {"type": "plain_text_input", "action_id": "contact", "max_length": 200},
                optional=True,
                hint=t("victims.form.contact_hint", locale),
            ),
            _input(
                "details",
                t("victims.form.details", locale),
                {
                    "type": "plain_text_input",
                    "action_id": "details",
                    "multiline": True,
                    "max_length": 2000,
                },
                optional=True,
            ),
            _input(
                GOOD_FAITH,
                t("victims.form.good_faith", locale),
                {"type": "checkboxes", "action_id": GOOD_FAITH, "options": [good_faith]},
            ),
        ],
    }


def _value(values: dict[str, Any], block: str) -> dict[str, Any]:
    return dict((values.get(block) or {}).get(block) or {})


def read_report(state: dict[str, Any]) -> ReportForm:
    """The ReportForm from a submitted report view's `state` (reason "" when none chosen)."""
    values = state.get("values") or {}
    option = _value(values, "reason").get("selected_option") or {}
    ticked = _value(values, GOOD_FAITH).get("selected_options") or []
    return ReportForm(
        reason=str(option.get("value") or ""),
        good_faith=any(o.get("value") == GOOD_FAITH for o in ticked),
        contact=str(_value(values, "contact").get("value") or "").strip(),
        details=str(_value(values, "details").get("value") or "").strip(),
    )


def report_errors(form: ReportForm, locale: str) -> dict[str, str]:
    """What keeps the modal open: Slack enforces required inputs, but a payload may not."""
    errors: dict[str, str] = {}
    if form.reason not in REASONS:
        errors["reason"] = t("slack.report_reason_required", locale)
    if not form.good_faith:
        errors[GOOD_FAITH] = t("slack.report_good_faith_required", locale)
    return errors


def protect_view(locale: str, private_metadata: str) -> Block:
    """The /veille protect form: one photo and an optional label."""
    return {
        "type": "modal",
        "callback_id": PROTECT_CALLBACK,
        "private_metadata": private_metadata,
        "title": plain(t("victims.form.protect_title", locale), 24),
        "submit": plain(t("slack.protect_submit", locale), 24),
        "close": plain(t("slack.modal_close", locale), 24),
        "blocks": [
            {"type": "section", "text": mrkdwn(t("slack.protect_intro", locale))},
            _input(
                "file",
                t("victims.form.protect_file", locale),
                {
                    "type": "file_input",
                    "action_id": "file",
                    "filetypes": PROTECT_FILETYPES,
                    "max_files": 1,
                },
            ),
            _input(
                "label",
                t("victims.form.protect_label", locale),
                {"type": "plain_text_input", "action_id": "label", "max_length": 100},
                optional=True,
            ),
        ],
    }


async def person_locale(ctx: SlackContext, team_id: str, actor: Actor) -> str:
    """The language the core answers this person in: theirs when Slack says, else the
    workspace's (the forms and the replies must agree)."""
    return normalise_locale(actor.locale) if actor.locale else await ctx.locale(team_id)


async def open_protect(
    ctx: SlackContext,
    client: AsyncWebClient,
    *,
    team_id: str,
    actor: Actor,
    trigger_id: str,
    channel_id: str,
) -> None:
    """`/veille protect` with no argument: the modal (its trigger expires within 3 s)."""
    view = protect_view(await person_locale(ctx, team_id, actor), private_metadata=channel_id)
    await client.views_open(trigger_id=trigger_id, view=view)


# ---------------------------------------------------------------------------- protecting
def _is_image(file: dict[str, Any]) -> bool:
    name = str(file.get("name") or "").lower()
    return (
        str(file.get("mimetype") or "").startswith(translate.IMAGE_PREFIXES)
        or name.rsplit(".", 1)[-1] in PROTECT_FILETYPES
    )


async def _remove_upload(ctx: SlackContext, file_id: str) -> None:
    """Delete the uploaded photo from Slack. A bot token may only delete the bot's own files,
    so the admin token is used when installed; a failure is logged (id only) and ignored."""
    token = ctx.gateway.admin_token or None
    try:
        await ctx.gateway.client.files_delete(file=file_id, token=token)
    except SlackApiError as exc:
        log.info("slack: could not delete protected upload %s: %s", file_id, slack_error(exc))
    except Exception as exc:  # noqa: BLE001 - best effort; the protection itself is done
        log.info("slack: could not delete protected upload %s: %s", file_id, type(exc).__name__)


async def protect_file(
    ctx: SlackContext,
    client: AsyncWebClient,
    team_id: str,
    actor: Actor,
    file: dict[str, Any],
    label: str = "",
) -> Reply:
    """Download one Slack file into memory, have the core bank its hashes, delete the upload."""
    locale = await person_locale(ctx, team_id, actor)
    files = await full_files(client, [file])
    refs = translate.media_refs(files)
    if not files or not refs or not _is_image(files[0]):
        return Reply(text=t("slack.protect_not_image", locale), ok=False)
    try:
        data = await ctx.gateway.download(refs[0], ctx.veille.settings.fetch_max_bytes)
    except GatewayError as exc:
        return Reply(text=t("slack.protect_download_failed", locale, error=str(exc)), ok=False)
    try:
        reply = await ctx.veille.protect(Platform.SLACK, team_id, actor, data, label)
    except VeilleError as exc:
        reply = Reply(text=str(exc), ok=False)
    finally:
        del data  # the only copy: dropped as soon as the core has the hashes
    await _remove_upload(ctx, refs[0].media_id)
    return reply


# ---------------------------------------------------------------------------- reporting
async def reported_message(
    client: AsyncWebClient, channel: str, ts: str, thread_ts: str
) -> dict[str, Any] | None:
    """The reported message as Slack has it now (a thread reply is only in its thread)."""
    try:
        if thread_ts and thread_ts != ts:
            resp = await client.conversations_replies(
                channel=channel, ts=thread_ts, latest=ts, oldest=ts, inclusive=True, limit=1
            )
        else:
            resp = await client.conversations_history(
                channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1
            )
    except SlackApiError as exc:
        log.info("slack: reported message %s/%s unreadable: %s", channel, ts, slack_error(exc))
        return None
    for message in resp.get("messages") or []:
        if str(message.get("ts")) == ts:
            return {**message, "channel": channel}
    return None


def _ids(body: dict[str, Any]) -> tuple[str, str]:
    return str((body.get("team") or {}).get("id", "")), str(body["user"]["id"])


def register(app: AsyncApp, ctx: SlackContext) -> None:
    # Messages seen in the shortcut, for a submission whose message can no longer be fetched
    # (a missing history scope); bounded, and a restart simply falls back to fetching.
    shortcut_messages: dict[tuple[str, str], dict[str, Any]] = {}
    protected = SeenFiles()

    @app.shortcut(REPORT_SHORTCUT)
    async def on_report_shortcut(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        team_id, user_id = _ids(body)
        channel = str((body.get("channel") or {}).get("id", ""))
        message = dict(body.get("message") or {})
        ts = str(message.get("ts") or body.get("message_ts") or "")
        thread_ts = str(message.get("thread_ts") or "")
        shortcut_messages[(channel, ts)] = {**message, "channel": channel}
        while len(shortcut_messages) > 256:
            shortcut_messages.pop(next(iter(shortcut_messages)))
        locale = await person_locale(ctx, team_id, await ctx.actors.actor(user_id))
        view = report_view(locale, f"{channel}|{ts}|{thread_ts}")
        await client.views_open(trigger_id=str(body["trigger_id"]), view=view)

    @app.view(REPORT_CALLBACK)
    async def on_report(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        team_id, user_id = _ids(body)
        form = read_report(view.get("state") or {})
        actor = await ctx.actors.actor(user_id)  # cached since the shortcut: the ack stays fast
        locale = await person_locale(ctx, team_id, actor)
        errors = report_errors(form, locale)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        channel, _, rest = str(view.get("private_metadata", "")).partition("|")
        ts, _, thread_ts = rest.partition("|")
        message = await reported_message(client, channel, ts, thread_ts) or shortcut_messages.get(
            (channel, ts)
        )
        if message is None:
            reply = Reply(text=t("slack.report_message_gone", locale), ok=False)
        else:
            files = await full_files(client, list(message.get("files") or []))
            event = await to_event(ctx, client, team_id, message, files=files)
            try:
                reply = await ctx.veille.report_message(Platform.SLACK, team_id, actor, event, form)
            except VeilleError as exc:
                reply = Reply(text=str(exc), ok=False)
        # A DM, not an ephemeral: the acknowledgement is worth keeping, and the reported
        # channel may be one the reporter only reads.
        await ctx.deliver(reply, user_id=user_id, channel_id=None)

    @app.view(PROTECT_CALLBACK)
    async def on_protect(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        team_id, user_id = _ids(body)
        values = (view.get("state") or {}).get("values") or {}
        files = list(_value(values, "file").get("files") or [])
        actor = await ctx.actors.actor(user_id)
        if not files:
            text = t("slack.protect_file_required", await person_locale(ctx, team_id, actor))
            await ack(response_action="errors", errors={"file": text})
            return
        await ack()
        label = str(_value(values, "label").get("value") or "").strip()
        protected.fresh([str(files[0].get("id"))])
        reply = await protect_file(ctx, client, team_id, actor, files[0], label)
        channel_id = str(view.get("private_metadata") or "") or None
        await ctx.deliver(reply, user_id=user_id, channel_id=channel_id)

    async def dm_with_image(body: dict[str, Any]) -> bool:
        event = body.get("event") or {}
        return (
            event.get("channel_type") == "im"
            and not translate.is_bot_message(event)
            and event.get("subtype") in (None, "file_share")
            and any(_is_image(f) for f in event.get("files") or [])
        )

    @app.event("message", matchers=[dm_with_image])
    async def on_dm_image(
        body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient
    ) -> None:
        team_id = str(body.get("team_id") or event.get("team") or "")
        user_id = translate.author_id(event)
        files = [f for f in event.get("files") or [] if _is_image(f)]
        fresh = protected.fresh([str(f.get("id")) for f in files])
        actor = await ctx.actors.actor(user_id)
        label = str(event.get("text") or "").strip()[:100]
        for file in files:
            if str(file.get("id")) in fresh:
                reply = await protect_file(ctx, client, team_id, actor, file, label)
                await ctx.deliver(reply, user_id=user_id, channel_id=str(event.get("channel")))

    async def dm_file(body: dict[str, Any]) -> bool:
        return str((body.get("event") or {}).get("channel_id", "")).startswith("D")

    @app.event("file_shared", matchers=[dm_file])
    async def on_dm_file_shared() -> None:
        """A file sent to Veille privately is never scanned as a post: its message event
        (above) protects it, and this second delivery is dropped."""
