"""
Issue 17's production features on HTTP/2 through a real C{twistd clws
--h2c} daemon on loopback: the PROXY protocol (C{haproxy:}) in front of
prior-knowledge HTTP/2, trusted proxies behind it, and the metrics and
JSON log events of WebSocket streams.  The client is the C{h2} library
(L{tests._h2client}).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._daemon import WAIT, Daemon
from tests._h2client import H2Client, maskedFrame
from tests._h2server import accept, closeCode
from tests.test_jsonlog import events, named
from tests.test_metrics import scrape, value
from tests.test_proxyaddress import v2Header

TEXT, CLOSE = 0x1, 0x8

WHO = "/who=tests.clws_resources.Whoami"
ECHO = "/echo=txclws.demo.EchoResource"


@pytest.fixture(scope="module")
def proxied() -> Iterator[Daemon]:
    """
    One C{--h2c} daemon listening with the PROXY protocol, trusting
    10.0.0.0/8 as proxies, for the module.
    """
    with Daemon(
        "--port",
        "haproxy:tcp:0:interface=127.0.0.1",
        "--h2c",
        "--trust-proxy",
        "10.0.0.0/8",
        "--handshake-timeout",
        "2",
        "--resource",
        WHO,
    ) as daemon:
        yield daemon


def whoami(port: int, preamble: bytes, extra: tuple[tuple[str, str], ...] = ()) -> str:
    """
    After C{preamble}, open C{/who} as an h2c stream, and return the address
    the server names.
    """
    with H2Client(port, tls=False, preamble=preamble) as client:
        streamID = accept(client, "/who", extra=extra)
        client.send(streamID, maskedFrame(TEXT, b"who"))
        [(_fin, opcode, payload)] = client.frames(streamID)
        assert opcode == TEXT
        return payload.decode()


def test_proxyV1BeforeH2c(proxied: Daemon) -> None:
    """
    A PROXY v1 line before the HTTP/2 preface: a WebSocket stream's
    C{client.host} and C{client.port} are the source it names, and the
    stream's open is logged with them.
    """
    line = b"PROXY TCP4 203.0.113.7 127.0.0.1 4711 80\r\n"
    assert whoami(proxied.port, line) == "203.0.113.7 4711"
    proxied.waitForLog(r"open 203\.0\.113\.7:4711 /who")


def test_proxyV2BeforeH2c(proxied: Daemon) -> None:
    """
    A binary PROXY v2 header before the preface: its source address is the
    stream's client's.
    """
    header = v2Header("198.51.100.9", 5150, "127.0.0.1", 80)
    assert whoami(proxied.port, header) == "198.51.100.9 5150"


def test_forwardedBehindProxyProtocol(proxied: Daemon) -> None:
    """
    The PROXY protocol's source is the peer trusted-proxy resolution
    starts from: a trusted one (10.1.2.3) has the CONNECT's
    C{x-forwarded-for} believed; an untrusted one (203.0.113.8) not.
    """
    extra = (("x-forwarded-for", "198.51.100.77"),)
    trusted = b"PROXY TCP4 10.1.2.3 127.0.0.1 4000 80\r\n"
    untrusted = b"PROXY TCP4 203.0.113.8 127.0.0.1 4001 80\r\n"
    assert whoami(proxied.port, trusted, extra) == "198.51.100.77 0"
    assert whoami(proxied.port, untrusted, extra) == "203.0.113.8 4001"


def test_h2cMetricsAndJsonLog() -> None:
    """
    With C{--metrics} and C{--json-log}, an h2c WebSocket stream that
    echoes once and closes 4001, and a refused one (404), are counted
    exactly in C{/metrics}, and are in the JSON log as open, closed and
    refused events with their fields.
    """
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, "clws.json")
        daemon = Daemon(
            "--port",
            "tcp:0:interface=127.0.0.1",
            "--h2c",
            "--metrics",
            "--json-log",
            str(path),
            "--resource",
            ECHO,
        )
        try:
            with H2Client(daemon.port, tls=False) as client:
                streamID = accept(client)
                client.send(streamID, maskedFrame(TEXT, b"hi"))
                assert client.frames(streamID)[0] == (True, TEXT, b"hi")
                client.send(streamID, maskedFrame(CLOSE, b"\x0f\xa1bye"))
                close = client.frames(streamID)[0]
                refused = client.response(client.websocket("/nowhere")).status
                ourPort = client.sock.getsockname()[1]
            daemon.waitForLog(r"closed .* code=4001")
            samples = scrape(f"http://127.0.0.1:{daemon.port}/metrics")
        finally:
            daemon.stop()
        found = events(path)
    assert closeCode(close[2]) == 4001 and refused == 404
    assert value(samples, "txclws_handshakes_total", status="101") == 1
    assert value(samples, "txclws_handshakes_total", status="404") == 1
    assert value(samples, "txclws_messages_received_total") == 1
    assert value(samples, "txclws_messages_sent_total") == 1
    assert value(samples, "txclws_closes_total", code="4001") == 1
    assert value(samples, "txclws_connections", resource="/echo", version="13") == 0
    peer = f"127.0.0.1:{ourPort}"
    [opened] = named(found, "open ")
    assert (opened["peer"], opened["resource"], opened["version"]) == (
        peer,
        "/echo",
        13,
    )
    [closed] = named(found, "closed ")
    assert (closed["peer"], closed["code"], closed["reason"]) == (peer, 4001, "bye")
    assert 0 <= closed["duration"] < WAIT
    [refusal] = named(found, "refused ")
    assert (refusal["peer"], refusal["status"], refusal["stream"]) == (peer, 404, 3)


def test_h2cDaemonLimits() -> None:
    """
    The daemon's C{--max-handshakes-per-second} and C{--rate-limit-*}
    options hold on h2c streams: of two CONNECTs at once at a cap of 1 a
    second the second is refused 503, and the first, flooding 20 messages
    at 5 a second, is closed 1008 "rate limit" on its stream alone.
    """
    with Daemon(
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--h2c",
        "--max-handshakes-per-second",
        "1",
        "--rate-limit-messages",
        "5",
        "--resource",
        ECHO,
    ) as daemon:
        with H2Client(daemon.port, tls=False) as client:
            first, second = client.websocket(), client.websocket()
            assert client.response(first).status == 200
            refused = client.response(second)
            client.send(first, b"".join(maskedFrame(TEXT, b"x") for _ in range(20)))
            client.whole(first)
            *echoes, close = client.frames(first, 100)
            assert client.goaway is None
        daemon.waitForLog(r"over its rate limit")
    assert (refused.status, refused.headers["retry-after"]) == (503, "1")
    assert 5 <= len(echoes) <= 7, len(echoes)
    assert (close[1], closeCode(close[2]), close[2][2:]) == (CLOSE, 1008, b"rate limit")
