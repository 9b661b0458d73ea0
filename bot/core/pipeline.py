"""The scanning half of the one flow: MessageEvent → media → bytes → decode → verdict cache →
detectors (batched across concurrent messages) → fusion, plus the text of the message.

`Pipeline.scan` touches the database only to read; `bot.core.decisions` turns a scan into a
committed Decision. Images from all concurrent messages meet in one bounded queue: a full queue
makes `scan` wait (back-pressure) instead of piling decoded images in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core import extract
from bot.core.failpoints import failpoint
from bot.core.gateway import Gateway, GatewayError
from bot.core.i18n import t
from bot.core.scanner import PreparedImage, Scanner, prepare_image
from bot.core.types import MediaRef, MessageEvent
from bot.core.verdict import Severity, Thresholds, Verdict
from bot.store.repos import Store, media_item
from detectors.base import UNDRESS_REQUEST, BankScope, Detection, TextInput
from detectors.fusion import FusionContext, fuse

log = logging.getLogger(__name__)

Found = list[tuple[str, str, Detection]]


class Fetcher(Protocol):
    """bot.media.fetch.SafeFetcher, as the pipeline uses it."""

    async def fetch_media(self, url: str, max_images: int = 3) -> list[Any]: ...


class ImageBatcher:
    """Collects images from every message in flight into batches of up to `batch_size`, waiting
    at most `wait_s` for a batch to fill, and runs the image detectors once per batch."""

    def __init__(
        self, scanner: Scanner, *, batch_size: int, wait_s: float, queue_size: int
    ) -> None:
        self.scanner = scanner
        self.batch_size = max(1, batch_size)
        self.wait_s = max(0.0, wait_s)
        self._queue: asyncio.Queue[tuple[PreparedImage, asyncio.Future[Found]]] = asyncio.Queue(
            maxsize=max(1, queue_size)
        )
        self._task: asyncio.Task[None] | None = None

    async def detect(self, image: PreparedImage) -> Found:
        """The detections for one image (waits for room in the queue, then for its batch)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="veille-batcher")
        future: asyncio.Future[Found] = asyncio.get_running_loop().create_future()
        await self._queue.put((image, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.wait_s
            while len(batch) < self.batch_size:
                remaining = deadline - loop.time()
                try:
                    if remaining <= 0:
                        batch.append(self._queue.get_nowait())
                        continue
                    # asyncio.timeout, not wait_for: wait_for can swallow a cancellation on 3.11.
                    async with asyncio.timeout(remaining):
                        batch.append(await self._queue.get())
                except (asyncio.QueueEmpty, TimeoutError):
                    break
            try:
                results = await self.scanner.detect_images([image for image, _ in batch])
            except Exception as exc:  # one bad batch fails its own messages, not the batcher
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), found in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(found)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


@dataclass
class ScannedMedia:
    """One image of a message (an HTML page may give several for one ref) or one failure."""

    ref: MediaRef
    url: str
    data: bytes | None = None
    sha256: str | None = None
    prepared: PreparedImage | None = None
    verdict: Verdict | None = None  # under the workspace's thresholds and the message context
    raw: dict[str, Any] | None = None  # context-free verdict JSON for the cache
    signature: str | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    cached: bool = False
    error: str | None = None
    unscanned: str | None = (
        None  # why it could not be scanned (a code); it then gets a REVIEW ticket
    )


@dataclass(frozen=True)
class CachedVerdict:
    """What the verdict cache keeps per SHA-256 (in memory, mirroring the MediaItem row)."""

    key: str
    raw: Mapping[str, Any]
    signature: str | None
    pdq: str | None
    pdq_quality: int | None


class VerdictMemo:
    """The hot end of the SHA-256 verdict cache: recent verdicts in memory, so a viral repeat
    costs no database read. Entries are only valid under the cache key they were made with, and
    one image may be held under several keys (communities whose banks differ)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], CachedVerdict] = OrderedDict()

    def get(self, sha256: str, key: str) -> CachedVerdict | None:
        found = self._items.get((sha256, key))
        if found is None:
            return None
        self._items.move_to_end((sha256, key))
        return found

    def put(self, sha256: str, value: CachedVerdict) -> None:
        self._items[(sha256, value.key)] = value
        self._items.move_to_end((sha256, value.key))
        while len(self._items) > self.size:
            self._items.popitem(last=False)


@dataclass
class Scan:
    """Everything Veille saw in one message."""

    event: MessageEvent
    media: list[ScannedMedia] = field(default_factory=list)
    text: Verdict | None = None
    answers_undress_request: bool = False
    cache_key: str = ""  # detector versions and the revision of the banks the community sees
    scope: BankScope | None = None  # whose hash-bank entries the images were matched against


def unscanned_verdict(code: str, locale: str) -> Verdict:
    """REVIEW, "not scanned: why": media Veille could not scan is never passed silently."""
    limit = {"too_many_attached": extract.MAX_ATTACHED, "too_many_links": extract.MAX_LINKS}.get(
        code, 0
    )
    why = t(f"unscanned.{code}", locale, limit=limit)
    return Verdict(Severity.REVIEW, [], {}, [], [t("unscanned.reason", locale, why=why)], {})


def _from_cache(raw: Mapping[str, Any]) -> Found:
    """A cached verdict back as one detection, so it is fused again under today's thresholds."""
    verdict = Verdict.from_json(raw)
    return [
        ("cache", "", Detection(dict(verdict.scores), list(verdict.reasons), list(verdict.matches)))
    ]


def _signature(found: Found) -> tuple[str | None, str | None, int | None]:
    for _name, _version, detection in found:
        extras = detection.extras
        if "pdq" in extras:
            from detectors.hashes import ImageSignature

            signature = ImageSignature.from_extras(extras)
            return signature.to_str(), signature.pdq, signature.quality
    return None, None, None


class Pipeline:
    """Scans messages with one Scanner, the platform Gateways (attachments) and the safe fetcher."""

    def __init__(
        self,
        scanner: Scanner,
        store: Store,
        gateways: Mapping[str, Gateway],
        *,
        fetcher: Fetcher | None,
        batcher: ImageBatcher,
        max_bytes: int,
        max_pixels: int,
        bank: Any = None,
    ) -> None:
        self.scanner = scanner
        self.bank = bank
        self.memo = VerdictMemo()
        self.store = store
        self.gateways = gateways
        self.fetcher = fetcher
        self.batcher = batcher
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels

    def cache_key(self, scope: BankScope | None = None) -> str:
        """Cached verdicts are valid for these detector versions and the revision of the bank
        entries `scope` sees: a bank change (a confirmed ticket, an import) sends every image
        through the detectors again, so a re-encoded copy seen earlier as clean is matched
        against the new hashes; and a community's verdicts, made with its own entries, are never
        read back in a community that sees other entries."""
        key = self.scanner.versions_key
        return f"{key}|bank={self.bank.revision_for(scope)}" if self.bank is not None else key

    def remember(self, item: ScannedMedia, key: str) -> None:
        """Called once the verdict is committed: later repeats are answered from memory."""
        if item.sha256 and item.raw is not None:
            self.memo.put(
                item.sha256,
                CachedVerdict(key, item.raw, item.signature, item.pdq, item.pdq_quality),
            )

    async def scan(
        self,
        event: MessageEvent,
        thresholds: Thresholds,
        scope: BankScope | None = None,
        locale: str = "en",
    ) -> Scan:
        """Scan every media item and the text of `event` (no writes), matching images against
        the hash-bank entries `scope` sees (bot.core.banks.scope_of)."""
        scan = Scan(event, cache_key=self.cache_key(scope), scope=scope)
        scan.answers_undress_request = await self._answers_undress_request(event, thresholds)
        context = FusionContext(answers_undress_request=scan.answers_undress_request)
        plan = extract.plan_media(event.text, event.media)
        refs = plan.refs
        per_ref = await asyncio.gather(
            *(
                self._scan_ref(event, ref, thresholds, context, scan.cache_key, scope)
                for ref in refs
            )
        )
        scan.media = [item for items in per_ref for item in items]
        scan.media += [
            ScannedMedia(ref, ref.url, error=code, unscanned=code) for ref, code in plan.skipped
        ]
        for item in scan.media:
            if item.unscanned is not None:
                item.verdict = unscanned_verdict(item.unscanned, locale)
        if event.text.strip():
            reply_to = event.reply_to
            text = TextInput(
                event.text,
                replies_to_image=bool(reply_to and reply_to.has_image) or bool(refs),
                addresses_image_ai=event.mentions_ai_app
                or bool(reply_to and reply_to.author.is_ai_app),
                source=event.message_id,
            )
            scan.text = (await self.scanner.scan_texts([text], thresholds))[0]
        failpoint("after-detection")  # the verdicts known, nothing written
        return scan

    async def _answers_undress_request(self, event: MessageEvent, thresholds: Thresholds) -> bool:
        """True when the message replies to a text that reads as an undress request: an image in
        it (typically an AI app's answer) is then high risk whatever its own scores."""
        reply_to = event.reply_to
        if reply_to is None or not reply_to.text.strip() or not self.scanner.text_detectors:
            return False
        request = TextInput(
            reply_to.text,
            replies_to_image=True,
            addresses_image_ai=event.author.is_ai_app,
            source=reply_to.message_id,
        )
        verdict = (await self.scanner.scan_texts([request], thresholds))[0]
        return verdict.scores.get(UNDRESS_REQUEST, 0.0) >= thresholds.review(UNDRESS_REQUEST)

    async def _bytes_of(
        self, event: MessageEvent, ref: MediaRef
    ) -> list[tuple[str, bytes | None, str | None]]:
        """(url, bytes, error) for each image behind `ref`: platform attachments through the
        Gateway (with the bot's credentials), embeds and links through the safe fetcher."""
        if ref.kind == "attachment":
            gateway = self.gateways.get(event.platform)
            if gateway is None:
                return [(ref.url, None, f"no gateway for {event.platform}")]
            if ref.size is not None and ref.size > self.max_bytes:
                return [(ref.url, None, f"too large ({ref.size} bytes)")]
            try:  # any failure below is "not scanned" for an attachment (see _scan_ref)
                return [(ref.url, await gateway.download(ref, self.max_bytes), None)]
            except GatewayError as exc:
                return [(ref.url, None, f"download failed: {exc}")]
            except Exception as exc:  # an adapter bug must cost one item, not the message
                log.exception("download of %s failed", ref.url)
                return [(ref.url, None, f"download failed: {type(exc).__name__}")]
        if self.fetcher is None:
            return [(ref.url, None, "link fetching is not available")]
        try:
            results = await self.fetcher.fetch_media(ref.url, max_images=3)
        except Exception as exc:  # the fetcher reports errors per result; this is a bug
            log.exception("fetching %s failed", ref.url)
            return [(ref.url, None, f"fetch failed: {type(exc).__name__}")]
        return [(r.final_url or r.url, r.data, r.error) for r in results] or [
            (ref.url, None, "no image")
        ]

    async def _scan_ref(
        self,
        event: MessageEvent,
        ref: MediaRef,
        thresholds: Thresholds,
        context: FusionContext,
        cache_key: str,
        scope: BankScope | None = None,
    ) -> list[ScannedMedia]:
        out = []
        for url, data, error in await self._bytes_of(event, ref):
            item = ScannedMedia(ref, url, data=data, error=error)
            if data is not None and error is None:
                await self._scan_bytes(item, data, thresholds, context, cache_key, scope)
            elif ref.kind == "attachment":  # a link to a page without an image is no gap
                item.unscanned = (
                    "too_large" if (error or "").startswith("too large") else "download_failed"
                )
            out.append(item)
        return out

    async def _cached(self, sha256: str, key: str) -> CachedVerdict | None:
        found = self.memo.get(sha256, key)
        if found is not None:
            return found
        async with self.store.read() as session:
            row = await media_item(session, sha256)
        if row is None or not row.verdict or row.verdict_key != key:
            return None
        found = CachedVerdict(key, row.verdict, row.signature, row.pdq, row.pdq_quality)
        self.memo.put(sha256, found)
        return found

    async def _scan_bytes(
        self,
        item: ScannedMedia,
        data: bytes,
        thresholds: Thresholds,
        context: FusionContext,
        cache_key: str,
        scope: BankScope | None = None,
    ) -> None:
        # hashlib releases the GIL: a large file is hashed in a thread, off the event loop.
        item.sha256 = (
            hashlib.sha256(data).hexdigest()
            if len(data) < 1 << 20
            else await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        )
        cached = await self._cached(item.sha256, cache_key)
        if cached is not None:
            item.cached = True
            item.signature, item.pdq, item.pdq_quality = (
                cached.signature,
                cached.pdq,
                cached.pdq_quality,
            )
            item.verdict = fuse(_from_cache(cached.raw), thresholds, context)
            if not item.verdict.flagged:
                return  # a known-clean repeat: no decoding at all (the SHA-256 cache's point)
        try:
            item.prepared = await asyncio.to_thread(
                prepare_image, data, source=item.url, max_pixels=self.max_pixels, scope=scope
            )
        except Exception as exc:  # MediaError and anything Pillow throws on hostile input
            item.error = str(exc) or type(exc).__name__
            if item.cached and item.verdict is not None:
                return  # flagged from the cache already: the verdict stands without a preview
            item.verdict = None
            item.unscanned = getattr(exc, "code", "corrupt")
            return
        if item.cached:
            return  # flagged from the cache: decoded only for the preview and the evidence
        try:
            found = await self.batcher.detect(item.prepared)
        except Exception as exc:  # a detector crash: reported on the item, never cached
            log.exception("detectors failed on %s", item.url)
            item.error = f"detectors failed: {type(exc).__name__}"
            item.unscanned = "detectors_failed"
            return
        item.raw = fuse(found).to_json()
        item.signature, item.pdq, item.pdq_quality = _signature(found)
        item.verdict = fuse(found, thresholds, context)


def flagged_media(media: Sequence[ScannedMedia]) -> list[ScannedMedia]:
    return [m for m in media if m.verdict is not None and m.verdict.flagged]
