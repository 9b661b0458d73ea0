"""Fixtures for the `veille scan` tests: an isolated environment, the real CLI in a subprocess,
generated images and a socket guard.

Every test runs in its own temporary directory with the platform and Veille variables removed,
a SQLite file of its own (VEILLE_DATABASE_URL) and a data dir of its own (VEILLE_DATA_DIR), so no
developer `.env`, database or model cache leaks in.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.detectors.hash_images import photo_like

REPO = Path(__file__).resolve().parents[2]
CLEARED_VARS = (
    "DISCORD_TOKEN",
    "DISCORD_API_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_ADMIN_TOKEN",
    "SLACK_API_URL",
    "VEILLE_SECRET_KEY",
    "VEILLE_DATABASE_URL",
    "VEILLE_DATA_DIR",
    "VEILLE_DETECTORS",
    "VEILLE_LOCALE",
    "VEILLE_FETCH_ALLOW_LOOPBACK",
    "VEILLE_CLIP_MODEL",
    "VEILLE_CLIP_PRETRAINED",
    "VEILLE_CLIP_PROMPTS",
    "VEILLE_CLIP_BACKEND",
    "VEILLE_DEVICE",
    "VEILLE_BATCH_SIZE",
    "VEILLE_MAX_IMAGE_PIXELS",
    "VEILLE_FETCH_MAX_BYTES",
    "VEILLE_LOG_LEVEL",
    "VEILLE_LOG_FORMAT",
)
CONTRACT_KEYS = {
    "source",
    "kind",
    "severity",
    "categories",
    "scores",
    "detectors",
    "matches",
    "reasons",
    "error",
}
SEVERITIES = ("NONE", "REVIEW", "QUARANTINE", "CRITICAL")


@dataclass
class Veille:
    """Runs the real `veille` command (`python -m bot.cli`) in the isolated directory."""

    cwd: Path
    env: dict[str, str]

    def __call__(
        self, *args: str, stdin: str | None = None, **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            cwd=self.cwd,
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **extra_env},
            timeout=300,
        )


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a clean machine, for subprocesses and CliRunner alike."""
    monkeypatch.chdir(tmp_path)
    for name in CLEARED_VARS:
        monkeypatch.delenv(name, raising=False)
    env = {
        "VEILLE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'veille.db'}",
        "VEILLE_DATA_DIR": str(tmp_path / "data"),
        "VEILLE_DETECTORS": "hashes,text",
        "VEILLE_LOCALE": "en",
        "COLUMNS": "200",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def veille(isolated: dict[str, str], tmp_path: Path) -> Veille:
    base = {k: v for k, v in os.environ.items() if k not in CLEARED_VARS}
    # The subprocess runs from tmp_path, so the repository must be importable explicitly.
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), base.get("PYTHONPATH")]))
    return Veille(tmp_path, {**base, **isolated})


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """Parse `--json` output and check every line against the contract of the Foundation issue."""
    results = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    for result in results:
        assert set(result) == CONTRACT_KEYS, result
        assert result["kind"] in ("image", "url", "text")
        assert result["severity"] in SEVERITIES
        assert isinstance(result["categories"], list) and isinstance(result["reasons"], list)
        assert all(isinstance(v, float | int) for v in result["scores"].values())
        for match in result["matches"]:
            assert set(match) == {"bank", "kind", "distance"}
            assert isinstance(match["distance"], float | int)
        assert result["error"] is None or isinstance(result["error"], str)
        if result["error"] is not None:  # an unscanned input never gets an invented verdict
            assert result["severity"] == "NONE" and not result["scores"], result
    return results


def by_source(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {Path(r["source"]).name if r["kind"] == "image" else r["source"]: r for r in results}


def encode(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def save_photo(path: Path, seed: int, fmt: str = "PNG") -> Path:
    """A generated, photo-like picture (gradients, shapes, noise): never a person."""
    path.write_bytes(encode(photo_like(seed), fmt))
    return path


@dataclass
class SocketGuard:
    """Every TCP connect attempt of this process; non-loopback ones are stopped before the call."""

    attempts: list[tuple[str, int]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)


@pytest.fixture
def socket_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[SocketGuard]:
    guard = SocketGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def vet(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host, port = str(address[0]), int(address[1])
            guard.attempts.append((host, port))
            if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
                raise ConnectionRefusedError(f"socket guard: no connection to {host} in tests")

    def connect(sock: socket.socket, address: Any) -> None:
        vet(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        vet(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        guard.lookups.append(str(host))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield guard
