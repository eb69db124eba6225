"""
Client addresses behind proxies (issue 17): the PROXY protocol through
Twisted's C{haproxy:} endpoint wrapper, and C{X-Forwarded-For} / RFC 7239
C{Forwarded} honoured only from trusted proxies.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest

from tests._daemon import Daemon
from tests._rawsocket import RawClient, upgradeRequest
from txclws._core.request import RequestHeaders
from txclws._proxyaddress import TrustedProxies, parseForwardedFor

#: The daemon's arguments: a PROXY-protocol port and the address echo.
_HAPROXY = (
    "--port",
    "haproxy:tcp:0:interface=127.0.0.1",
    "--resource",
    "/who=tests.clws_resources.Whoami",
)

#: The PROXY protocol v2 signature (haproxy's proxy-protocol.txt 2.2).
_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2Header(source: str, sourcePort: int, dest: str, destPort: int) -> bytes:
    """
    A PROXY protocol v2 header: version 2, PROXY command, TCP over IPv4.
    """
    addresses = (
        socket.inet_aton(source)
        + socket.inet_aton(dest)
        + struct.pack("!HH", sourcePort, destPort)
    )
    return _V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", len(addresses)) + addresses


@pytest.fixture(scope="module")
def proxied() -> object:
    """
    One daemon listening with the PROXY protocol, for the module.
    """
    with Daemon(*_HAPROXY, "--handshake-timeout", "1") as daemon:
        yield daemon


def whoami(port: int, preamble: bytes, extra: tuple[tuple[str, str], ...] = ()) -> str:
    """
    Open C{/who} after C{preamble} and return the address the server names.
    """
    with RawClient(port) as client:
        client.send(preamble + upgradeRequest("/who", extra=extra))
        status, _ = client.readHead()
        assert status == "HTTP/1.1 101 Switching Protocols"
        return client.echo("who").payload.decode()


def test_proxyV1(proxied: Daemon) -> None:
    """
    A PROXY v1 line before the handshake: C{client.host} and C{client.port}
    are the source address it names, and the open is logged with it.
    """
    line = b"PROXY TCP4 203.0.113.7 127.0.0.1 4711 80\r\n"
    assert whoami(proxied.port, line) == "203.0.113.7 4711"
    proxied.waitForLog(r"open 203\.0\.113\.7:4711 /who")


def test_proxyV2(proxied: Daemon) -> None:
    """
    A binary PROXY v2 header before the handshake: the source address in it
    is the client's.
    """
    header = v2Header("198.51.100.9", 5150, "127.0.0.1", 80)
    assert whoami(proxied.port, header) == "198.51.100.9 5150"


def test_proxyHeaderTimeout(proxied: Daemon) -> None:
    """
    A PROXY header that never completes is dropped by the handshake
    timeout (1 second here), as a slow request head is.
    """
    with socket.create_connection(("127.0.0.1", proxied.port), timeout=5) as sock:
        sock.sendall(b"PROXY TCP4 203.0.113.7 ")
        started = time.monotonic()
        while sock.recv(4096):
            pass  # whatever refusal is written, then the end
        elapsed = time.monotonic() - started
    assert 0.5 < elapsed < 4


#: A spoofed chain: the client claims an address, a proxy appended its own.
_SPOOFED = (("X-Forwarded-For", "192.0.2.66, 198.51.100.20"),)


def test_forwardedIgnoredFromUntrustedPeer() -> None:
    """
    With no trusted proxy (127.0.0.1 not trusted), a client's spoofed
    C{X-Forwarded-For} is ignored: the server sees the peer itself, and logs
    that address.
    """
    with Daemon("--port", "tcp:0:interface=127.0.0.1", *_HAPROXY[2:]) as daemon:
        host, _ = whoami(daemon.port, b"", _SPOOFED).split()
        assert host == "127.0.0.1"
        daemon.waitForLog(r"open 127\.0\.0\.1:\d+ /who")
        assert "192.0.2.66" not in daemon.log()
        assert "198.51.100.20" not in daemon.log()


@pytest.fixture(scope="module")
def behindProxy() -> object:
    """
    One daemon trusting 127.0.0.1 and 10.0.0.0/8 as proxies, for the module.
    """
    with Daemon(
        "--port",
        "tcp:0:interface=127.0.0.1",
        *_HAPROXY[2:],
        "--trust-proxy",
        "127.0.0.1",
        "--trust-proxy",
        "10.0.0.0/8",
    ) as daemon:
        yield daemon


def test_forwardedForFromTrustedPeer(behindProxy: Daemon) -> None:
    """
    From a trusted proxy, the rightmost untrusted address of
    C{X-Forwarded-For} is the client's, past trusted hops (10.1.2.3), not
    the leftmost one the client may have made up; the log uses it.
    """
    extra = (("X-Forwarded-For", "192.0.2.66, 198.51.100.20, 10.1.2.3"),)
    assert whoami(behindProxy.port, b"", extra) == "198.51.100.20 0"
    behindProxy.waitForLog(r"open 198\.51\.100\.20 /who")


def test_forwardedHeaderFromTrustedPeer(behindProxy: Daemon) -> None:
    """
    RFC 7239 C{Forwarded} with a quoted IPv6 address and port (section 6)
    is parsed, and takes precedence over C{X-Forwarded-For}.
    """
    extra = (
        ("Forwarded", 'for="[2001:db8::1]:4711";proto=https'),
        ("X-Forwarded-For", "192.0.2.99"),
    )
    assert whoami(behindProxy.port, b"", extra) == "2001:db8::1 4711"


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("192.0.2.43", ("192.0.2.43", 0)),
        ('"192.0.2.43:47011"', ("192.0.2.43", 47011)),
        ('"[2001:db8:cafe::17]:4711"', ("2001:db8:cafe::17", 4711)),
        ('"[2001:db8:cafe::17]"', ("2001:db8:cafe::17", 0)),
        ("2001:db8::1", ("2001:db8::1", 0)),
        ("unknown", None),
        ("_hidden", None),
        ('"192.0.2.43:99999"', ("192.0.2.43", 0)),
    ],
)
def test_parseForwardedFor(value: str, address: tuple[str, int] | None) -> None:
    """
    The node forms of RFC 7239 section 6 parse; obfuscated or unknown
    nodes are not addresses.
    """
    assert parseForwardedFor(value) == address


@pytest.mark.parametrize(
    ("headers", "client"),
    [
        ((), ("10.0.0.5", 1)),
        ((("X-Forwarded-For", "10.9.9.9"),), ("10.9.9.9", 0)),
        ((("X-Forwarded-For", "unknown, 10.9.9.9"),), ("10.9.9.9", 0)),
        (
            (("X-Forwarded-For", "203.0.113.1"), ("X-Forwarded-For", "10.2.2.2")),
            ("203.0.113.1", 0),
        ),
        ((("Forwarded", "for=_hidden, for=10.3.3.3"),), ("10.3.3.3", 0)),
        ((("Forwarded", "by=10.0.0.1;for=203.0.113.8"),), ("203.0.113.8", 0)),
    ],
)
def test_clientAddress(
    headers: tuple[tuple[str, str], ...], client: tuple[str, int]
) -> None:
    """
    The walk from the right stops at the first untrusted address, or at a
    node that is not an address (the trusted hop that reported it is the
    client then); every field line counts, in order.
    """
    trusted = TrustedProxies(["10.0.0.0/8"])
    assert trusted.clientAddress(("10.0.0.5", 1), RequestHeaders(headers)) == client


def test_untrustedPeerHeadersIgnored() -> None:
    """
    From a peer outside the trusted networks nothing in the headers counts.
    """
    trusted = TrustedProxies(["10.0.0.0/8", "::1"])
    headers = RequestHeaders((("X-Forwarded-For", "10.1.1.1"),))
    assert trusted.clientAddress(("192.0.2.1", 9), headers) == ("192.0.2.1", 9)
    assert not trusted.trusts("/tmp/socket")


def test_proxyRefusalLogged(proxied: Daemon) -> None:
    """
    A refused handshake behind a PROXY header is logged with the proxied
    address, not the proxy's (the peer is read again once the head is in).
    """
    with RawClient(proxied.port) as client:
        client.send(b"PROXY TCP4 192.0.2.77 127.0.0.1 6000 80\r\n")
        client.send(upgradeRequest("/nowhere"))
        status, _, _ = client.readRefusal()
    assert status.startswith("HTTP/1.1 404")
    proxied.waitForLog(r"refused 192\.0\.2\.77:6000: 404")
