"""
The real daemon: C{twistd -n clws} in a subprocess, used over TCP with the
C{websockets} client and plain HTTP.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection

from tests._daemon import WAIT, Daemon, connect, runTwistd

LOCAL = "tcp:0:interface=127.0.0.1"


@pytest.fixture(scope="module")
def demo() -> Iterator[Daemon]:
    """
    One demo daemon (no C{--resource}) for the tests that only use it.
    """
    with Daemon("--port", LOCAL) as daemon:
        yield daemon


def chatEvents(client: ClientConnection, count: int) -> list[dict[str, Any]]:
    """
    The next C{count} chat events C{client} receives.
    """
    return [json.loads(client.recv(WAIT)) for _ in range(count)]


def httpGet(url: str) -> tuple[int, dict[str, str], bytes]:
    """
    GET C{url}: its status, headers and body, errors included.
    """
    try:
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_echo(demo: Daemon) -> None:
    """
    The demo's C{/echo} sends text and binary messages back unchanged.
    """
    with connect(demo.url("/echo")) as client:
        client.send("héllo")
        assert client.recv(WAIT) == "héllo"
        client.send(b"\x00\xff")
        assert client.recv(WAIT) == b"\x00\xff"


def test_chatThreeClients(demo: Daemon) -> None:
    """
    In the demo's C{/chat} with three members, each sees the others' join
    notices and messages, and the remaining ones see the leave notices.
    """
    with connect(demo.url("/chat?name=ann")) as ann:
        assert chatEvents(ann, 2) == [
            {"type": "welcome", "name": "ann", "members": []},
            {"type": "join", "name": "ann", "count": 1},
        ]
        with connect(demo.url("/chat?name=bob")) as bob:
            assert chatEvents(bob, 2)[0]["members"] == ["ann"]
            assert chatEvents(ann, 1) == [{"type": "join", "name": "bob", "count": 2}]
            with connect(demo.url("/chat?name=cy")) as cy:
                assert chatEvents(cy, 2)[0]["members"] == ["ann", "bob"]
                join = {"type": "join", "name": "cy", "count": 3}
                assert chatEvents(ann, 1) == chatEvents(bob, 1) == [join]
                for sender in (ann, bob, cy):
                    sender.send(f"hi from {id(sender)}")
                    for member in (ann, bob, cy):
                        (event,) = chatEvents(member, 1)
                        assert event["type"] == "message"
                        assert event["text"] == f"hi from {id(sender)}"
            leave = {"type": "leave", "name": "cy", "count": 2}
            assert chatEvents(ann, 1) == chatEvents(bob, 1) == [leave]
        assert chatEvents(ann, 1) == [{"type": "leave", "name": "bob", "count": 1}]


def test_demoPageSamePort(demo: Daemon) -> None:
    """
    C{GET /} on the WebSocket port serves the demo page, which connects to
    C{/echo} and C{/chat} relative to where it was loaded from.
    """
    status, headers, body = httpGet(demo.url("/", "http"))
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    page = body.decode("utf-8")
    assert "<title>txclws demo</title>" in page
    assert 'base + "/echo"' in page and 'base + "/chat"' in page
    assert "http://" not in page and "https://" not in page  # nothing fetched


def test_plainRequestToWebSocketPath(demo: Daemon) -> None:
    """
    A plain HTTP request to a WebSocket path is answered 426 at once, with
    the upgrade to ask for, and the refusal is logged with its reason.
    """
    status, headers, body = httpGet(demo.url("/echo", "http"))
    assert status == 426
    assert headers["Upgrade"] == "websocket"
    assert b"WebSocket" in body
    demo.waitForLog(r"refused 127\.0\.0\.1:\d+: 426 ")


def test_unknownPath(demo: Daemon) -> None:
    """
    Neither a page nor a WebSocket resource: 404, for either kind of request.
    """
    assert httpGet(demo.url("/nothing", "http"))[0] == 404
    with pytest.raises(InvalidStatus) as caught:
        connect(demo.url("/nothing"))
    assert caught.value.response.status_code == 404


def test_connectionsLogged(demo: Daemon) -> None:
    """
    Each connection's open and close are logged with the peer, resource,
    version, close code, reason and duration; an ordinary disconnect logs
    no traceback.
    """
    with connect(demo.url("/echo?tag=logged")) as client:
        client.send("x")
        client.recv(WAIT)
        port = client.local_address[1]
        client.close(4001, "done here")
    demo.waitForLog(rf"open 127\.0\.0\.1:{port} /echo version=13")
    (closed,) = demo.waitForLog(rf"closed 127\.0\.0\.1:{port} /echo")
    assert "version=13 code=4001 reason='done here' duration=" in closed
    assert "Traceback" not in demo.log()


def test_mountedResource() -> None:
    """
    C{--resource /path=module.Class} serves an instance of a class from the
    test tree, at a nested path too, instead of the demo.
    """
    with Daemon(
        "--port",
        LOCAL,
        "--resource",
        "/shout=tests.clws_resources.Shout",
        "--resource",
        "/a/b=tests.clws_resources.Shout",
    ) as daemon:
        for path in ("/shout", "/a/b"):
            with connect(daemon.url(path)) as client:
                client.send("hey")
                assert client.recv(WAIT) == f"{path}: HEY"
        with pytest.raises(InvalidStatus):
            connect(daemon.url("/echo"))
        assert httpGet(daemon.url("/", "http"))[0] == 404
        assert "WebSocket resources: /shout, /a/b" in daemon.log()


def test_maxClients() -> None:
    """
    C{--max-clients 2}: a third simultaneous client is refused with 503,
    over both demo resources together, and is let in once one leaves.
    """
    with Daemon("--port", LOCAL, "--max-clients", "2") as daemon:
        with connect(daemon.url("/echo")) as first, connect(daemon.url("/chat")):
            with pytest.raises(InvalidStatus) as caught:
                connect(daemon.url("/echo"))
            assert caught.value.response.status_code == 503
            daemon.waitForLog(r"refused .*: 503 too many clients")
            first.close()
            daemon.waitForLog(r"closed .* /echo")
            with connect(daemon.url("/echo")) as third:
                third.send("in")
                assert third.recv(WAIT) == "in"


def test_origin() -> None:
    """
    C{--origin}: exact origins and C{*} prefixes are let in; any other
    origin, and a client declaring none, get 403, logged.
    """
    with Daemon(
        "--port",
        LOCAL,
        "--origin",
        "https://app.example",
        "--origin",
        "http://localhost*",
    ) as daemon:
        for origin in ("https://app.example", "http://localhost:8080"):
            with connect(daemon.url("/echo"), origin=origin) as client:
                client.send(origin)
                assert client.recv(WAIT) == origin
        for origin in ("https://evil.example", "http://localhost.evil.example", None):
            with pytest.raises(InvalidStatus) as caught:
                connect(daemon.url("/echo"), origin=origin)
            assert caught.value.response.status_code == 403
        daemon.waitForLog(r"refused .*: 403 origin not allowed", count=3)


def test_severalPorts(tmp_path: Any) -> None:
    """
    C{--port} repeated: the daemon serves the same site on each, and logs
    each address it listens on.
    """
    with Daemon("--port", LOCAL, "--port", LOCAL, expectPorts=2) as daemon:
        assert len(set(daemon.ports)) == 2
        for port in daemon.ports:
            with connect(f"ws://127.0.0.1:{port}/echo") as client:
                client.send(str(port))
                assert client.recv(WAIT) == str(port)


def test_unixPort(tmp_path: Any) -> None:
    """
    C{--port unix:PATH} serves over a UNIX socket, next to a TCP port.
    """
    from websockets.sync.client import unix_connect

    path = tmp_path / "clws.sock"
    with Daemon("--port", LOCAL, "--port", f"unix:{path}") as daemon:
        daemon.waitForLog(rf"clws listening on .*{path.name}")
        with unix_connect(str(path), "ws://localhost/echo", proxy=None) as client:
            client.send("over unix")
            assert client.recv(WAIT) == "over unix"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "bogus:1"], "Unknown endpoint type"),
        (["--resource", "/x=tests.clws_resources.NotAResource"], "IWebSocketResource"),
        (["--origin", "localhost"], "is not an origin"),
        (["--max-clients", "0"], "positive integer"),
    ],
)
def test_usageErrors(args: list[str], message: str) -> None:
    """
    A bad option stops twistd with a usage message naming the problem, not
    a traceback.
    """
    result = runTwistd(*args)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert message in output
    assert "Traceback" not in output


#: Bad option values, each with the option its message must name.
BAD_VALUES = [
    (["--port", "99999999"], "--port"),
    (["--port", "tcp:-1"], "--port"),
    (["--port", "tcp:abc"], "--port"),
    (["--port", "tcp6:70000"], "--port"),
    (["--port", "ssl:0"], "--port"),  # no server.pem here
    (["--port", "ssl:0:privateKey=/no/such/key.pem:certKey=/no/cert.pem"], "--port"),
    (["--port", "tcp:0:backlog=99999999999"], "--port"),
    (["--port", "unix:/no/such/directory/clws.sock"], "--port"),
    (["--port", "unix:/tmp/" + "x" * 120], "--port"),
    (["--port", "unix:/tmp/x.sock:mode=abc"], "--port"),
    (["--port", "tcp:0:interface=192.0.2.1"], "--port"),  # bind(): not this host
    (["--port", "tcp:0:interface=192.0.2.1", "--workers", "2"], "--port"),
    (["--workers", "0"], "--workers"),
    (["--workers", "-1"], "--workers"),
    (["--workers", "x"], "--workers"),
    (["--backlog", "99999999999"], "--backlog"),
    (["--ping-interval", "-1"], "--ping-interval"),
    (["--ping-timeout", "x"], "--ping-timeout"),
    (["--close-timeout", "nan"], "--close-timeout"),
    (["--idle-timeout", "-0.5"], "--idle-timeout"),
    (["--slow-client-timeout", "inf"], "--slow-client-timeout"),
    (["--handshake-timeout", "0"], "--handshake-timeout"),
    (["--handshake-timeout", "never"], "--handshake-timeout"),
    (["--max-head-size", "-1"], "--max-head-size"),
    (["--max-head-size", "16k"], "--max-head-size"),
    (["--max-frame-size", "-1"], "--max-frame-size"),
    (["--max-message-size", "1e6"], "--max-message-size"),
    (["--max-buffer", "0"], "--max-buffer"),
    (["--max-clients", "0"], "--max-clients"),
    (["--resource", "/x=no.such.module.Thing"], "--resource"),
    (["--resource", "x"], "--resource"),
    (["--hub", "memcached://x"], "--hub"),
]


@pytest.mark.parametrize(
    ("args", "option"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES]
)
def test_badValueNamesOption(args: list[str], option: str) -> None:
    """
    Every bad option value, whether found while parsing or only when the
    port binds, stops C{twistd -n clws} (a real process, within L{WAIT}
    seconds) with a non-zero status and a message naming the option, never
    a traceback.
    """
    if option != "--port":
        args = ["--port", LOCAL, *args]
    result = runTwistd(*args)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    assert re.search(rf"twistd( -n| clws): {option} ", lastLine(output)), output


def lastLine(output: str) -> str:
    """
    The last line of twistd's output: its message.  (The usage text above
    it names every option.)  Either C{twistd -n: --workers 'x' is not a
    positive integer}, or C{[stderr#error] twistd clws: --port ...: cannot
    listen: ...}.
    """
    return [line for line in output.splitlines() if line.strip()][-1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_portInUse(workers: str) -> None:
    """
    A TCP port another socket holds: the daemon, one process or many,
    stops with a message naming the port and why, no traceback.
    """
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        number = taken.getsockname()[1]
        result = runTwistd(
            "--port", f"tcp:{number}:interface=127.0.0.1", "--workers", workers
        )
    finally:
        taken.close()
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    message = lastLine(output)
    assert (
        f"twistd clws: --port tcp:{number}:interface=127.0.0.1:backlog=511: "
        "cannot listen: "
    ) in message, output
    assert "Address already in use" in message
    assert "Traceback" not in output, output


def test_stopsCleanly() -> None:
    """
    On SIGTERM the daemon closes each open client with 1001 (going away)
    and shuts down promptly, logging no traceback.
    """
    with Daemon("--port", LOCAL) as daemon:
        with connect(daemon.url("/echo")) as client:
            daemon.waitForLog("open ")
            daemon.process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                client.recv(WAIT)
            assert client.close_code == 1001
            assert client.close_reason == "server shutting down"
        daemon.process.wait(WAIT)
        daemon.waitForLog("Server Shut Down")
        assert "Traceback" not in daemon.log()


def test_allocatorTunedByDefault() -> None:
    """
    By default the daemon tunes glibc's malloc for its
    C{--max-message-size} (mmap threshold 2 x size + 64 KiB, trim threshold
    twice that, here over its 16 MiB floor) and logs what it set; it still
    echoes a message of that size.
    """
    size = 6 << 20
    sizes = ("--max-message-size", str(size), "--max-frame-size", str(size))
    with Daemon("--port", LOCAL, *sizes) as daemon:
        (line,) = daemon.waitForLog(r"malloc tuned for ")
        mmap = 2 * size + 65536
        assert f"mmap threshold {mmap}, trim threshold {2 * mmap} (glibc " in line
        with connect(daemon.url("/echo"), max_size=None) as client:
            client.send(b"x" * size)
            assert client.recv(WAIT) == b"x" * size


def test_noTuneAllocator() -> None:
    """
    C{--no-tune-allocator}: the daemon leaves malloc as it is, and says
    nothing about it.
    """
    with Daemon("--port", LOCAL, "--no-tune-allocator") as daemon:
        with connect(daemon.url("/echo")) as client:
            client.send("still echoes")
            assert client.recv(WAIT) == "still echoes"
        assert "malloc tuned" not in daemon.log()


def test_workersTuneAllocator() -> None:
    """
    With C{--workers 2} each worker (which serves the clients) tunes its
    own malloc, and C{--no-tune-allocator} reaches the workers too.
    """
    pool = ("--port", LOCAL, "--workers", "2", "--close-timeout", "3")
    with Daemon(*pool) as daemon:
        daemon.waitForLog(r"worker \d+ ready", count=2)
        lines = daemon.waitForLog(r"worker \d+ pid=\d+: .*malloc tuned for ", count=2)
        assert len({line.split(" pid=")[0] for line in lines}) == 2
    with Daemon(*pool, "--no-tune-allocator") as daemon:
        daemon.waitForLog(r"worker \d+ ready", count=2)
        assert "malloc tuned" not in daemon.log()
