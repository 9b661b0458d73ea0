"""HTTPS through the pinned address: the name is still used for SNI and certificate checks."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bot.media.fetch import SafeFetcher
from tests.media.conftest import FakeResolver, SocketGuard, image_bytes


@dataclass
class TlsSite:
    port: int
    client_context: ssl.SSLContext
    server_names: list[str | None]


def self_signed(name: str, folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for `name` (and only that name), as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest_asyncio.fixture(loop_scope="function")
async def tls_site(tmp_path: Path) -> AsyncIterator[TlsSite]:
    cert, key = self_signed("images.test", tmp_path)
    server_names: list[str | None] = []
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    def record_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        server_names.append(name)

    server_context.sni_callback = record_sni
    png = image_bytes("PNG")

    async def image(_: web.Request) -> web.Response:
        return web.Response(body=png, content_type="image/png")

    app = web.Application()
    app.router.add_get("/red.png", image)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    client_context = ssl.create_default_context(cafile=str(cert))
    yield TlsSite(runner.addresses[0][1], client_context, server_names)
    await runner.cleanup()


async def test_https_uses_the_name_for_sni_and_the_pinned_address_for_the_socket(
    tls_site: TlsSite, socket_guard: SocketGuard
) -> None:
    resolver = FakeResolver(table={"images.test": ["127.0.0.1"]})
    async with SafeFetcher(
        allow_loopback=True, resolver=resolver, ssl_context=tls_site.client_context
    ) as fetcher:
        result = await fetcher.fetch(f"https://images.test:{tls_site.port}/red.png")
    assert result.error is None and result.content_type == "image/png"
    assert tls_site.server_names == ["images.test"]
    assert socket_guard.attempts == [("127.0.0.1", tls_site.port)]


async def test_the_certificate_must_match_the_name(tls_site: TlsSite) -> None:
    # Same server, same pinned address, another name: verification fails, nothing is read.
    resolver = FakeResolver(table={"other.test": ["127.0.0.1"]})
    async with SafeFetcher(
        allow_loopback=True, resolver=resolver, ssl_context=tls_site.client_context
    ) as fetcher:
        result = await fetcher.fetch(f"https://other.test:{tls_site.port}/red.png")
    assert result.data is None
    assert result.error is not None and result.error.startswith("connection failed")
    assert "certificate" in result.error.lower() or "hostname" in result.error.lower()
