"""
L{txclws.tap}: the options of C{twistd clws} and the service they make, and
the plugin that offers them to C{twistd}.
"""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest
import pytest_twisted
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IServiceMaker
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.plugin import getPlugins
from twisted.python.usage import UsageError
from twisted.web.server import Site

from tests.clws_resources import Shout
from txclws import DEFAULT_BACKLOG, anyOrigin
from txclws.demo import ChatResource, DemoPage, EchoResource
from txclws.tap import Options, makeService, originPolicy, portDescription
from txclws.web import WebSocketUpgradeResource


def parse(*args: str) -> Options:
    """
    Parse C{args} as C{twistd clws} would.
    """
    options = Options()
    options.parseOptions(list(args))
    return options


def siteOf(service: Any) -> Site:
    """
    The site a service made by L{makeService} serves.
    """
    (site,) = {child.factory for child in portServices(service)}
    return site


def portServices(service: Any) -> list[StreamServerEndpointService]:
    """
    The listening services among C{service}'s children.
    """
    return [s for s in service if isinstance(s, StreamServerEndpointService)]


def test_defaults() -> None:
    """
    With no options: port 12345 with the default backlog, the demo, any
    origin, the factory's default limits.
    """
    options = parse()
    assert options["ports"] == [f"tcp:12345:backlog={DEFAULT_BACKLOG}"]
    assert options["resources"] == []
    assert options["originCheck"] is anyOrigin
    assert options["max-clients"] is None
    assert options["max-frame-size"] == options["max-message-size"] == 1 << 20
    assert not options["debug-resource-errors"]


@pytest.mark.parametrize(
    ("argument", "description"),
    [
        ("8080", "tcp:8080:backlog=511"),
        ("tcp:8080:interface=127.0.0.1", "tcp:8080:interface=127.0.0.1:backlog=511"),
        ("tcp:8080:backlog=5", "tcp:8080:backlog=5"),
        ("tcp6:8080", "tcp6:8080:backlog=511"),
        ("ssl:8443:privateKey=k.pem", "ssl:8443:privateKey=k.pem:backlog=511"),
        ("unix:/run/clws.sock", "unix:/run/clws.sock"),
    ],
)
def test_portDescription(argument: str, description: str) -> None:
    """
    A bare number is a TCP port; the backlog is added where it applies and
    is not set already.
    """
    assert portDescription(argument, 511) == description


def test_portsRepeated() -> None:
    """
    C{--port} (or C{-p}) repeats, in order; C{--backlog} applies to each.
    """
    options = parse("--backlog", "64", "--port", "1", "-p", "tcp:2")
    assert options["ports"] == ["tcp:1:backlog=64", "tcp:2:backlog=64"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "nonsense:1"], "Unknown endpoint type"),
        (["--port", "tcp:notanumber"], "is not usable"),
        (["--port", "ssl:8443:privateKey=/no/such/key.pem"], "No such file"),
        (["--max-clients", "0"], "positive integer"),
        (["--max-frame-size", "big"], "^--max-frame-size 'big' is not a positive"),
        (["--backlog", "-1"], "positive integer"),
        (["--backlog", str(2**31)], "^--backlog '2147483648' is over 2147483647$"),
        (["--handshake-timeout", "0"], "^--handshake-timeout '0' is not a number of"),
        (["--handshake-timeout", "inf"], "^--handshake-timeout 'inf' is not a"),
        (["--max-head-size", "0"], "^--max-head-size '0' is not a positive integer$"),
        (["--ping-timeout", "nan"], "^--ping-timeout 'nan' is not a number of"),
        (["--close-timeout", "soon"], "^--close-timeout 'soon' is not a number$"),
        (["--port", "70000"], "^--port '70000': port 70000 is not 0 to 65535$"),
        (["--port", "unix:/no/such/dir/x.sock"], "^--port 'unix:/no/such/dir/x.sock'"),
    ],
)
def test_badValues(args: list[str], message: str) -> None:
    """
    Unusable ports and limits are usage errors that say why.
    """
    with pytest.raises(UsageError, match=message):
        parse(*args)


def test_handshakeOptions() -> None:
    """
    C{--handshake-timeout} and C{--max-head-size} default to the factory's
    defaults (10 s, 16 KiB) and reach the factory every resource shares.
    """
    defaults = parse("--port", "tcp:0")
    assert (defaults["handshake-timeout"], defaults["max-head-size"]) == (10.0, 16384)
    factory = siteOf(makeService(defaults)).resource.children[b"echo"].factory
    assert (factory.handshakeTimeout, factory.maxHeadSize) == (10.0, 16384)
    options = parse(
        "--port", "tcp:0", "--handshake-timeout", "2.5", "--max-head-size", "4096"
    )
    assert (options["handshake-timeout"], options["max-head-size"]) == (2.5, 4096)
    root = siteOf(makeService(options)).resource
    for name in (b"echo", b"chat"):
        factory = root.children[name].factory
        assert (factory.handshakeTimeout, factory.maxHeadSize) == (2.5, 4096)


def test_limits() -> None:
    """
    The limits reach the factory shared by every WebSocket resource.
    """
    service = makeService(
        parse(
            "--port",
            "tcp:0",
            "--max-clients",
            "7",
            "--max-frame-size",
            "100",
            "--max-message-size",
            "200",
            "--debug-resource-errors",
        )
    )
    root = siteOf(service).resource
    echo, chat = root.children[b"echo"], root.children[b"chat"]
    assert echo.factory is chat.factory
    factory = echo.factory
    assert (factory.maxClients, factory.maxFrameSize, factory.maxMessageSize) == (
        7,
        100,
        200,
    )
    assert factory.debugResourceErrors is True


def test_demo() -> None:
    """
    Without C{--resource}: the page at C{/}, echo and chat on the same site.
    """
    root = siteOf(makeService(parse("--port", "tcp:0"))).resource
    assert isinstance(root.children[b""], DemoPage)
    for name, kind in ((b"echo", EchoResource), (b"chat", ChatResource)):
        child = root.children[name]
        assert isinstance(child, WebSocketUpgradeResource)
        assert isinstance(child.resource, kind)


def test_resources() -> None:
    """
    C{--resource} mounts instances of the named classes instead of the demo,
    at nested paths too.
    """
    options = parse(
        "--resource",
        "/shout=tests.clws_resources.Shout",
        "-r",
        "/a/b/c=txclws.demo.EchoResource",
    )
    [(path1, shout), (path2, echo)] = options["resources"]
    assert (path1, path2) == ("/shout", "/a/b/c")
    assert isinstance(shout, Shout) and isinstance(echo, EchoResource)
    root = siteOf(makeService(options)).resource
    assert b"" not in root.children and b"echo" not in root.children
    assert root.children[b"shout"].resource is shout
    assert root.children[b"a"].children[b"b"].children[b"c"].resource is echo


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/x", "use /path=module.Class"),
        ("x=txclws.demo.EchoResource", "must start with /"),
        ("/x=no.such.module.Thing", "no.such"),
        ("/x=tests.clws_resources.NotAResource", "does not provide"),
        ("/x=tests.clws_resources.broken", "cannot build"),
        ("/x=txclws.DEFAULT_BACKLOG", "is not a class"),
    ],
)
def test_badResources(spec: str, message: str) -> None:
    """
    A C{--resource} that cannot be served is a usage error saying why.
    """
    with pytest.raises(UsageError, match=message):
        parse("--resource", spec)


def test_resourceTwice() -> None:
    """
    A path named twice is a usage error.
    """
    with pytest.raises(UsageError, match="named twice"):
        parse("-r", "/a=txclws.demo.EchoResource", "-r", "/a=txclws.demo.ChatResource")


def test_origins() -> None:
    """
    C{--origin}: exact origins, and C{*} prefixes matched at a host
    boundary; no origin at all is refused.
    """
    check = parse("--origin", "https://app.example", "--origin", "http://localhost*")[
        "originCheck"
    ]
    assert check("https://app.example")
    assert not check("https://app.example.evil")
    assert check("http://localhost") and check("http://localhost:8080")
    assert not check("http://localhost.evil.example")
    assert not check(None)
    assert parse("--origin", "any")["originCheck"] is anyOrigin


@pytest.mark.parametrize(
    ("origins", "message"),
    [
        (["any", "https://a.example"], "cannot be combined"),
        (["localhost"], "is not an origin"),
    ],
)
def test_badOrigins(origins: list[str], message: str) -> None:
    """
    Mixing C{any} with origins, or something that is not an origin, is a
    usage error.
    """
    with pytest.raises(UsageError, match=message):
        originPolicy(origins)


def test_originReachesResources() -> None:
    """
    The origin policy applies to every WebSocket resource served.
    """
    options = parse("--origin", "https://app.example")
    root = siteOf(makeService(options)).resource
    for name in (b"echo", b"chat"):
        assert root.children[name].originCheck is options["originCheck"]


def test_helpDocumentsEveryOption() -> None:
    """
    C{twistd clws --help} documents each option.
    """
    usage = str(Options())
    for option in (
        "--port",
        "--resource",
        "--origin",
        "--max-clients",
        "--max-frame-size",
        "--max-message-size",
        "--backlog",
        "--handshake-timeout",
        "--max-head-size",
        "--debug-resource-errors",
    ):
        (line,) = [
            line
            for line in usage.splitlines()
            if re.match(rf"\s+(-\w, )?{option}[= ]", line)
        ]
        help = line.split(option, 1)[1].lstrip("=").strip()
        assert len(help) > 20, line


def test_onePortService() -> None:
    """
    One listening service per port, all serving the same site.
    """
    service = makeService(parse("-p", "tcp:0", "-p", "tcp:0"))
    assert len(portServices(service)) == 2
    assert isinstance(siteOf(service), Site)


def test_plugin() -> None:
    """
    C{twistd} finds the C{clws} plugin, which uses these options and this
    service.
    """
    makers = [m for m in getPlugins(IServiceMaker) if m.tapname == "clws"]
    assert len(makers) == 1
    (maker,) = makers
    assert maker.options is Options
    assert maker.makeService is makeService
    assert "WebSocket" in maker.description


@pytest_twisted.inlineCallbacks
def test_listeningLogged() -> Any:
    """
    Starting the service logs each address it listens on, with the
    resources served.
    """
    observer = EventLoggingObserver()
    globalLogPublisher.addObserver(observer)
    service = makeService(parse("--port", "tcp:0:interface=127.0.0.1"))
    try:
        service.startService()  # a TCP endpoint listens at once
    finally:
        yield service.stopService()
        globalLogPublisher.removeObserver(observer)
    (listening,) = [e for e in observer if "listening on" in e["log_format"]]
    assert re.fullmatch(r"127\.0\.0\.1:[1-9]\d*", listening["address"])
    assert listening["endpoint"] == "tcp:0:interface=127.0.0.1:backlog=511"
    assert listening["paths"].startswith("/echo, /chat")


def test_portInUse() -> None:
    """
    A port that cannot be bound (its address is taken) stops the start
    with a message naming the port and why, as L{SystemExit}: what twistd
    prints instead of a traceback.
    """
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        number = taken.getsockname()[1]
        service = makeService(parse("--port", f"tcp:{number}:interface=127.0.0.1"))
        with pytest.raises(SystemExit) as caught:
            service.privilegedStartService()
    finally:
        taken.close()
    message = str(caught.value.code)
    assert message.startswith(
        f"twistd clws: --port tcp:{number}:interface=127.0.0.1:backlog=511: "
        "cannot listen: "
    )
    assert "Address already in use" in message


def test_unixPathTaken(tmp_path: Any) -> None:
    """
    One process or many, a unix: path another process listens on is
    refused at start, naming the path, and the listener keeps it.
    """
    path = tmp_path / "live.sock"
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(path))
    live.listen(1)
    try:
        for workers in ("1", "2"):
            service = makeService(parse("--port", f"unix:{path}", "--workers", workers))
            with pytest.raises(SystemExit, match="another process is listening on"):
                service.privilegedStartService()
            assert path.is_socket()
    finally:
        live.close()
