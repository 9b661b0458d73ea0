"""latency and cache_hit_ms: image messages through the whole pipeline (fetch from the platform,
decode, SHA-256 cache, CLIP ViT-B-32 + hash bank + text detectors batched across messages,
fusion, policy, the decision committed to SQLite, the outbox acting on a timing Gateway).

The stream sends messages at a fixed rate, each as its own task, the way platform events
arrive; a fifth of the images are re-encoded copies of banked images, so the stream also produces
quarantines (evidence, preview, ticket and outbox work for each).

Random CLIP weights put clean images anywhere on the score scale: under the default thresholds
they flag ~90 % of the stream, which no deployment sees. So `latency` first does what a deployer
does with `veille calibrate` (thresholds fitted to the model), with benign images only: review at
the 99th percentile of the CLIP scores of CALIBRATION_IMAGES other generated images, block out of
reach (a random model's guess alone never quarantines). `latency_uncalibrated` keeps the default
thresholds — nearly every message quarantined — as the worst case.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.images import jpeg_bytes, photo_like

CALIBRATION_IMAGES = 200
CLEAN_REVIEW_QUANTILE = 0.99
WORKSPACE = "bench-guild"
ADMIN_ID = "bench-admin"


@dataclass
class TimingGateway:
    """A Gateway that serves attachments from memory and notes when each message is acted on."""

    files: dict[str, bytes]
    acted_at: dict[str, float] = field(default_factory=dict)
    cards: int = 0
    platform: Any = None
    can_delete_messages: bool = True

    def __post_init__(self) -> None:
        from bot.core.types import Platform

        self.platform = Platform.DISCORD

    async def download(self, ref: Any, max_bytes: int) -> bytes:
        return self.files[ref.url]

    async def delete_message(self, workspace_id: str, channel_id: str, message_id: str) -> None:
        self.acted_at.setdefault(message_id, time.perf_counter())

    async def post_card(
        self,
        workspace_id: str,
        channel_id: str,
        card: Any,
        *,
        thread_id: str | None = None,
        dedupe_key: str | None = None,
        repeat: bool = False,
    ) -> str:
        self.cards += 1
        return "card"

    async def update_card(
        self, workspace_id: str, channel_id: str, message_id: str, card: Any
    ) -> None:
        return None

    async def post_text(
        self, workspace_id: str, channel_id: str, text: str, *, thread_id: str | None = None
    ) -> str:
        return "text"

    async def send_private(
        self,
        workspace_id: str,
        user_id: str,
        text: str,
        *,
        channel_id: str | None = None,
        buttons: tuple[Any, ...] = (),
    ) -> None:
        return None

    async def timeout_member(
        self, workspace_id: str, user_id: str, seconds: int, reason: str
    ) -> None:
        return None


class ErrorLog(logging.Handler):
    """Errors the bot logs during a run (an outbox action that failed, a detector that threw):
    a figure measured while actions fail and retry is not the pipeline's figure."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = f": {record.exc_info[1]!r}" if record.exc_info else ""
        self.messages.append(f"{record.name}: {record.getMessage()}{error}")

    def __enter__(self) -> ErrorLog:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _settings(folder: Path) -> Any:
    """The bot's settings for this run: one random checkpoint, database and cache per folder."""
    from bench.clip import MODEL, save_random_checkpoint
    from bot.settings import Settings

    checkpoint = folder / "vit-b-32-random.pt"
    if not checkpoint.exists():
        checkpoint = save_random_checkpoint(folder)
    return Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{folder / 'bench.db'}",  # type: ignore[call-arg]
        data_dir=folder / "data",
        secret_key="bench-secret-key-0123456789",
        detectors="clip,hashes,text",
        clip_model=MODEL,
        clip_pretrained=str(checkpoint),
        device="cpu",
    )


async def calibrate(folder: Path) -> dict[str, float]:
    """Fit review thresholds for the random model on benign images and store them where the bot
    reads them (the file `veille calibrate` writes). Returns {category: review threshold}."""
    import numpy as np

    from bot.core.scanner import prepare_image
    from bot.core.suite import clip_config
    from detectors.calibration import storage_key, write_thresholds
    from detectors.clip import ClipDetector

    settings = await asyncio.to_thread(_settings, folder)
    detector = ClipDetector(clip_config(settings))
    await detector.load()  # also exports the ONNX tower into the cache the bot will reuse
    frames = [
        prepare_image(jpeg_bytes(photo_like(90_000 + i, (640, 480)))).frames[0]
        for i in range(CALIBRATION_IMAGES)
    ]
    scores: dict[str, list[float]] = {}
    for detection in await detector.detect(frames):
        for category, value in detection.scores.items():
            scores.setdefault(category, []).append(value)
    review = {c: float(np.quantile(v, CLEAN_REVIEW_QUANTILE)) for c, v in scores.items()}
    write_thresholds(
        settings.thresholds_file,
        storage_key("clip", settings.clip_model, settings.clip_pretrained),
        {c: {"review": r, "block": 0.999} for c, r in review.items()},
    )
    return {c: round(r, 3) for c, r in review.items()}


async def _veille(
    folder: Path, files: dict[str, bytes], banked: list[bytes]
) -> tuple[Any, TimingGateway]:
    from bot.app import build_veille
    from bot.core.types import Actor, SetupInput
    from bot.store import engine as store

    settings = await asyncio.to_thread(_settings, folder)
    await asyncio.to_thread(store.upgrade, settings.database_url)
    gateway = TimingGateway(files)
    veille = await build_veille(settings, gateways=[gateway])
    admin = Actor(ADMIN_ID, "Bench", is_platform_admin=True)
    await veille.save_setup(
        "discord",
        WORKSPACE,
        admin,
        SetupInput(
            safety_channel_id="safety", quarantine_channel_id="quarantine", sensitivity="standard"
        ),
    )
    await veille.add_hashes("discord", WORKSPACE, admin, banked, "bench")
    veille.start()
    return veille, gateway


def _event(message_id: str, url: str) -> Any:
    from bot.core.types import Actor, MediaRef, MessageEvent, Platform

    return MessageEvent(
        Platform.DISCORD,
        WORKSPACE,
        "general",
        message_id,
        Actor("poster", "Poster"),
        text="",
        media=(
            MediaRef(
                "attachment",
                url,
                media_id=message_id,
                filename="photo.jpg",
                content_type="image/jpeg",
            ),
        ),
    )


async def _stream(rate: float, seconds: float, calibrated: bool) -> dict[str, Any]:
    count = int(rate * seconds)
    originals = [photo_like(10_000 + i, (640, 480)) for i in range(max(1, count // 5))]
    banked = [jpeg_bytes(image, 90) for image in originals]
    files: dict[str, bytes] = {}
    for i in range(count):
        if i % 5 == 0:  # a re-shared banked image: resized and re-encoded, so a new SHA-256
            image = originals[(i // 5) % len(originals)].resize((600, 450))
            files[f"att://{i}"] = jpeg_bytes(image, 70)
        else:
            files[f"att://{i}"] = jpeg_bytes(photo_like(i, (640, 480)))
    with tempfile.TemporaryDirectory() as scratch, ErrorLog() as logged:
        thresholds = await calibrate(Path(scratch)) if calibrated else "defaults"
        veille, gateway = await _veille(Path(scratch), files, banked)
        threads = veille.settings.inference_threads
        sent: dict[str, float] = {}
        decided: dict[str, float] = {}
        flagged: set[str] = set()
        errors: list[str] = []

        async def one(i: int) -> None:
            message_id = f"msg-{i}"
            sent[message_id] = time.perf_counter()
            try:
                decision = await veille.handle_message(_event(message_id, f"att://{i}"))
            except Exception as exc:  # counted as dropped, and shown
                errors.append(f"{message_id}: {type(exc).__name__}: {exc}")
                return
            decided[message_id] = time.perf_counter()
            if decision.delete:
                flagged.add(message_id)

        cpu_start, start = time.process_time(), time.perf_counter()
        tasks = []
        for i in range(count):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        # CPU of the whole process (every thread) while the stream ran: how close to saturation.
        cpu_s, wall_s = time.process_time() - cpu_start, time.perf_counter() - start
        deadline = time.perf_counter() + 30
        while any(m not in gateway.acted_at for m in flagged) and time.perf_counter() < deadline:  # noqa: ASYNC110 - polling a deadline
            await asyncio.sleep(0.05)
        await veille.aclose()
    to_decision = [(decided[m] - sent[m]) * 1000 for m in decided]
    to_action = [(gateway.acted_at[m] - sent[m]) * 1000 for m in flagged if m in gateway.acted_at]
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "events": count,
        "decided": len(decided),
        "dropped": count - len(decided),
        "p50_decision_ms": round(percentile(to_decision, 0.5), 1),
        "p95_decision_ms": round(percentile(to_decision, 0.95), 1),
        "p99_decision_ms": round(percentile(to_decision, 0.99), 1),
        "cpu_ms_per_event": round(cpu_s / count * 1000, 1),
        "cores_busy": round(cpu_s / wall_s, 2),
        "actions": len(to_action),
        "flagged": len(flagged),
        "p50_action_ms": round(percentile(to_action, 0.5), 1),
        "p95_action_ms": round(percentile(to_action, 0.95), 1),
        "clip_threads": threads,
        "review_thresholds": thresholds,
        "cards_posted": gateway.cards,
        "errors": errors[:3] + logged.messages[:3],
        "logged_errors": len(logged.messages),
    }


def run(rate: float = 20, seconds: float = 30, calibrated: bool = True) -> dict[str, Any]:
    return asyncio.run(_stream(rate, seconds, calibrated))


async def _cache_hit(repeats: int) -> dict[str, Any]:
    """A clean image posted again and again: the SHA-256 cache answers, nothing is decoded.
    (Random CLIP weights flag some images: the first clean one of a few is used.)"""
    from bot.core.verdict import Severity

    images = {f"att://{seed}": jpeg_bytes(photo_like(seed, (640, 480))) for seed in range(7, 17)}
    with tempfile.TemporaryDirectory() as scratch, ErrorLog() as logged:
        veille, _gateway = await _veille(Path(scratch), images, [])
        clean = None
        for url in images:
            decision = await veille.handle_message(_event(f"first-{url}", url))  # fills the cache
            if decision.severity == Severity.NONE:
                clean = url
                break
        assert clean is not None, "every sample image was flagged by the random weights"
        timings = []
        for i in range(repeats):
            start = time.perf_counter()
            await veille.handle_message(_event(f"again-{i}", clean))
            timings.append((time.perf_counter() - start) * 1000)
        await veille.aclose()
    return {
        "repeats": repeats,
        "median_ms": round(statistics.median(timings), 2),
        "p95_ms": round(percentile(timings, 0.95), 2),
        "errors": logged.messages[:3],
    }


def cache_hit(repeats: int = 50) -> dict[str, Any]:
    return asyncio.run(_cache_hit(repeats))
