"""Proxies and TLS for upstream calls, through real proxy processes (tests/proxy_server.py) and a
loopback HTTPS upstream whose CA the test makes: the proxy's own record shows the call went through it."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlmodel import Session

from app.models import Channel
from services.errors import UpstreamUnavailable
from services.security import KeyCipher
from services.upstream import UpstreamClient, UpstreamTimeouts
from tests.helpers import free_port
from tests.proxy_server import ProxyProcess
from tests.services.test_chat import ANSWER, MODES, Harness
from tests.upstream_server import UpstreamServer

CIPHER = KeyCipher("test-encryption-key")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca_and_server(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate it signed for localhost / 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("pyaichat test CA"))
        .issuer_name(_name("pyaichat test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@pytest.fixture(scope="module")
def tls_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpstreamServer, Path]]:
    ca, cert, key = make_ca_and_server(tmp_path_factory.mktemp("tls"))
    server = UpstreamServer().start(certfile=str(cert), keyfile=str(key))
    yield server, ca
    server.stop()


@pytest.fixture(scope="module")
def connect_proxy() -> Iterator[ProxyProcess]:
    proxy = ProxyProcess("connect")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def socks_proxy() -> Iterator[ProxyProcess]:
    proxy = ProxyProcess("socks5", user="alice", password="s3cret")
    yield proxy
    proxy.stop()


@pytest.fixture
async def harness(tmp_path: Path, upstream: UpstreamServer) -> AsyncIterator[Harness]:
    made = Harness(tmp_path, upstream)
    yield made
    await made.close()


async def use_client(harness: Harness, **options: object) -> None:
    """Give the harness's service a client made with ``options`` (CA bundle, environment)."""
    await harness.client.aclose()
    timeouts = UpstreamTimeouts(connect=2, first_byte=5, idle=5)
    harness.client = harness.service.client = UpstreamClient(timeouts, **options)  # type: ignore[arg-type]
    harness.service.timeouts = timeouts


def set_channel(harness: Harness, channel_id: int, *, base_url: str | None = None, proxy: str | None = None):
    with Session(harness.engine) as session:
        channel = session.get(Channel, channel_id)
        assert channel is not None
        if base_url is not None:
            channel.base_url = base_url
        if proxy is not None:
            channel.proxy = CIPHER.encrypt(proxy)
        session.add(channel)
        session.commit()
    harness.directory.refresher.changed()


@pytest.mark.parametrize("mode", MODES)
async def test_an_untrusted_certificate_is_tls_and_a_trusted_ca_adds_to_the_public_roots(
    harness: Harness, tls_upstream: tuple[UpstreamServer, Path], mode: str
) -> None:
    server, ca = tls_upstream
    channel = harness.add("ok", "m")
    set_channel(harness, channel, base_url=server.https_base_url("ok"))
    await use_client(harness)
    with pytest.raises(UpstreamUnavailable) as raised:
        await harness.call(mode, "m")
    assert raised.value.reason == "tls"
    await use_client(harness, ca_bundle=str(ca))
    assert await harness.call(mode, "m") == ANSWER
    assert [(row.status, row.error) for row in harness.rows("m")] == [("upstream_error", "tls"), ("ok", None)]
    assert harness.client.proxy_for("https://api.openai.com/v1", None) is None  # nothing else changed


@pytest.mark.parametrize("auth", ["", "bob:pa%40ss"])
async def test_a_channel_proxy_tunnels_an_https_upstream(
    harness: Harness, tls_upstream: tuple[UpstreamServer, Path], auth: str
) -> None:
    server, ca = tls_upstream
    proxy = ProxyProcess("connect", user="bob", password="pa@ss") if auth else ProxyProcess("connect")
    try:
        channel = harness.add("ok", "m")
        set_channel(harness, channel, base_url=server.https_base_url("ok"), proxy=proxy.url(auth=auth))
        await use_client(harness, ca_bundle=str(ca))
        assert await harness.call("stream", "m") == ANSWER
        assert await harness.call("complete", "m") == ANSWER
        assert proxy.carried(1)[0].startswith(f"localhost:{server.port} ")
        assert proxy.tunnels[0].endswith("bob:pa@ss" if auth else "-")
    finally:
        proxy.stop()


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_a_socks5_proxy_carries_the_call(
    harness: Harness, upstream: UpstreamServer, socks_proxy: ProxyProcess, scheme: str
) -> None:
    channel = harness.add("ok", "m")
    set_channel(harness, channel, proxy=socks_proxy.url(scheme, auth="alice:s3cret"))
    before = len(socks_proxy.tunnels)
    await use_client(harness)
    assert await harness.call("stream", "m") == ANSWER
    assert socks_proxy.carried(before + 1)[before].endswith(f":{upstream.port} alice:s3cret")


async def test_the_environment_proxy_applies_unless_no_proxy_or_a_direct_channel(
    harness: Harness, upstream: UpstreamServer, connect_proxy: ProxyProcess
) -> None:
    channel = harness.add("ok", "m")
    await use_client(harness, environ={"http_proxy": connect_proxy.url(), "NO_PROXY": "example.org"})
    before = len(connect_proxy.tunnels)
    assert await harness.call("complete", "m") == ANSWER
    assert len(connect_proxy.carried(before + 1)) == before + 1  # through the environment's proxy
    await use_client(harness, environ={"HTTP_PROXY": connect_proxy.url(), "no_proxy": "127.0.0.1"})
    assert await harness.call("complete", "m") == ANSWER
    set_channel(harness, channel, proxy="")  # the channel says: direct
    await use_client(harness, environ={"ALL_PROXY": connect_proxy.url()})
    assert await harness.call("complete", "m") == ANSWER
    assert len(connect_proxy.tunnels) == before + 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_dead_proxy_is_a_channel_failure_named_proxy(harness: Harness, mode: str) -> None:
    dead = harness.add("ok", "m")
    set_channel(harness, dead, proxy=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(UpstreamUnavailable) as raised:
        await harness.call(mode, "m")
    assert raised.value.reason == "proxy"
    harness.add("ok", "m")  # a second channel: the call fails over to it
    for _ in range(2):  # whichever the rotation starts with
        assert await harness.call(mode, "m") == ANSWER
    rows = harness.rows("m")
    assert rows[0].error == "proxy" and [row.status for row in rows[1:]] == ["ok", "ok"]
