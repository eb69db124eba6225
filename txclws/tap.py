# -*- test-case-name: tests.test_tap,tests.test_daemon -*-
"""
C{twistd clws}: the command-line options and the service they make.

    twistd -n clws --port 12345
    twistd -n clws --port tcp:8080:interface=127.0.0.1 --resource /chat=myapp.Chat
    twistd -n clws --port ssl:8443:privateKey=key.pem:certKey=cert.pem
    twistd -n clws --port 8080 --workers 4 --hub redis://127.0.0.1:6379/0

One C{twisted.web} site serves every port: the WebSocket resources, each
through a L{txclws.web.WebSocketUpgradeResource}, and, when no
C{--resource} is named, the demo (L{txclws.demo}) with its page at C{/}.
With C{--workers N}, N worker processes serve it (L{txclws._workers});
C{--hub} picks the L{IHub} the demo chat (and resources that take a
C{hub} argument) publish through.

@since: 0.1.0
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from twisted.application import strports
from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.internet.testing import MemoryReactor
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.reflect import namedAny
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

from txclws._core.deflate import PerMessageDeflate
from txclws._core.frames import CloseCode
from txclws._core.origin import OriginCheck, anyOrigin, originExact, originPrefix
from txclws._factory import DEFAULT_BACKLOG, ResourceRegistry, WebSocketFactory
from txclws._hub import IHub, LocalHub
from txclws._resource import IWebSocketResource

__all__ = ["DEFAULT_PORT", "Options", "makeService"]

_log = Logger()

#: The port served when no C{--port} is given (CLWS's example uses it).
DEFAULT_PORT = 12345

_F = TypeVar("_F", bound=Callable[..., Any])

_DEFAULTS = inspect.signature(WebSocketFactory.__init__).parameters


def _seconds(value: str) -> float:
    number = float(value)
    if not number >= 0:  # also refuses NaN
        raise ValueError(f"{value} is not a number of seconds")
    return number


def _positiveInt(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"{value} is not a positive integer")
    return number


# usage.Options reads a coerce function's coerceDoc for --help.
_positiveInt.coerceDoc = "A positive integer."  # type: ignore[attr-defined]


def _helpText(method: _F) -> _F:
    """
    Make C{method}'s docstring one paragraph, as C{--help} shows it.
    """
    method.__doc__ = " ".join((method.__doc__ or "").split())
    return method


class Options(usage.Options):
    """
    The options of C{twistd clws}.

    After L{parseOptions}, besides the parameters and flags by name:
    C{config["ports"]} holds the endpoint descriptions to listen on,
    C{config["resources"]} the C{(path, resource)} pairs to serve (empty:
    the demo), C{config["originCheck"]} the origin policy, and
    C{config["hub"]} the L{IHub} (not yet started).
    """

    synopsis = "[clws options]"

    longdesc = """\
Serve WebSocket resources, and a twisted.web site, on one or more ports.
With no --resource, serve the demo: an echo resource at /echo, a chat room at
/chat, and a page at / that talks to both.  A plain HTTP request to a
WebSocket path is answered 426 Upgrade Required."""

    optParameters = [
        [
            "max-clients",
            None,
            None,
            "Most WebSocket clients connected at once, over every port and "
            "resource; beyond it the handshake is refused with 503 "
            "(default: no limit).  With --workers, a limit per worker",
            _positiveInt,
        ],
        [
            "max-frame-size",
            None,
            _DEFAULTS["maxFrameSize"].default,
            "Largest frame payload a client may send, in bytes; over it the "
            "connection is closed with 1009",
            _positiveInt,
        ],
        [
            "max-message-size",
            None,
            _DEFAULTS["maxMessageSize"].default,
            "Largest message a client may send, in bytes (the server may "
            "buffer this much per client); over it the connection is closed "
            "with 1009",
            _positiveInt,
        ],
        [
            "workers",
            None,
            1,
            "Worker processes serving the ports (use about one per core): the "
            "parent opens the ports and restarts a worker that dies; 1 (the "
            "default) serves in this process.  Ports must be tcp:, tcp6:, "
            "ssl: or unix:",
            _positiveInt,
        ],
        [
            "backlog",
            None,
            DEFAULT_BACKLOG,
            "Listen backlog of a port given as a number, and of tcp:, tcp6: "
            "and ssl: ports that do not set backlog= themselves",
            _positiveInt,
        ],
        [
            "ping-interval",
            None,
            _DEFAULTS["pingInterval"].default,
            "Ping a client from which nothing has arrived for this many "
            "seconds (keepalive); 0 turns keepalive off",
            _seconds,
        ],
        [
            "ping-timeout",
            None,
            _DEFAULTS["pingTimeout"].default,
            "Drop a pinged client from which nothing arrives within this many seconds",
            _seconds,
        ],
        [
            "close-timeout",
            None,
            _DEFAULTS["closeTimeout"].default,
            "Drop a client that has not answered our close frame (or closed "
            "TCP after a protocol error) within this many seconds; also the "
            "most a shutdown waits for clients to close",
            _seconds,
        ],
        [
            "idle-timeout",
            None,
            0,
            "Close (1001) a client from which nothing has arrived for this "
            "many seconds, pings answered or not; 0 (the default): never",
            _seconds,
        ],
        [
            "max-buffer",
            None,
            _DEFAULTS["maxBuffer"].default,
            "Per-client write high-water mark, in bytes: a client more than "
            "this behind on broadcasts for --slow-client-timeout seconds (or "
            "twice this behind at once) is closed with 1008",
            _positiveInt,
        ],
        [
            "slow-client-timeout",
            None,
            _DEFAULTS["slowClientTimeout"].default,
            "Grace period, in seconds, for a client over --max-buffer",
            _seconds,
        ],
    ]

    optFlags = [
        [
            "deflate",
            None,
            "Offer permessage-deflate (RFC 7692) to clients that ask for it: "
            "smaller messages for more CPU and up to ~300 KiB per compressing "
            "connection (off by default)",
        ],
        [
            "hixie76",
            None,
            "Also serve draft-hixie-76 / hybi-00 clients (text only; "
            "browsers of 2010-2011); off by default",
        ],
        [
            "debug-resource-errors",
            None,
            "When a resource callback fails, keep the client connected and "
            "enter the pdb debugger on the traceback (blocks the server: "
            "for development, with twistd -n).",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # mypy#16653
        self["ports"] = []
        self["resources"] = []
        self["origins"] = []
        self["originCheck"] = anyOrigin
        self["hub"] = None
        self._portArguments: list[str] = []
        self._resourceArguments: list[str] = []
        self._hubArgument = "local"
        #: The arguments parsed, as given: what each worker is started with.
        self.arguments: list[str] = []

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """
        Parse C{options} (the command line by default), and keep them.
        """
        self.arguments = list(sys.argv[1:] if options is None else options)
        super().parseOptions(options)  # type: ignore[no-untyped-call]  # mypy#16653

    @_helpText
    def opt_port(self, port: str) -> None:
        """
        A port number, or a Twisted server endpoint description such as
        tcp:12345:interface=127.0.0.1,
        ssl:8443:privateKey=key.pem:certKey=cert.pem or unix:/run/clws.sock;
        repeat to listen on several [default: 12345].
        """
        self._portArguments.append(port)

    opt_p = opt_port

    @_helpText
    def opt_resource(self, spec: str) -> None:
        """
        /path=package.module.Class: serve an instance of that class (made
        with no arguments; it must provide IWebSocketResource) at /path;
        repeat for more.  With none, the demo is served.
        """
        self._resourceArguments.append(spec)

    opt_r = opt_resource

    @_helpText
    def opt_hub(self, hub: str) -> None:
        """
        Where the demo chat, and resources whose class takes a hub
        argument, publish: 'local' (this process only) [the default], or
        redis://host:port/db to share channels with every txclws process
        using that Redis (needs pip install 'txclws[redis]').
        """
        self._hubArgument = hub

    @_helpText
    def opt_origin(self, origin: str) -> None:
        """
        Accept WebSocket clients from this origin only: 'any' [the default],
        an exact origin such as https://example.com, or a prefix ending in
        '*' such as http://localhost* (matching at a host boundary, any
        port); repeat to accept several.
        """
        self["origins"].append(origin)

    def postOptions(self) -> None:
        """
        Check the ports, resources and origins, and resolve them.

        @raise usage.UsageError: one of them is not usable.
        """
        arguments = self._portArguments or [str(DEFAULT_PORT)]
        self["ports"] = [portDescription(a, self["backlog"]) for a in arguments]
        for description in self["ports"]:
            _checkEndpoint(description)
        if self["workers"] > 1:
            _checkWorkers(self)
        self["hub"] = hubFor(self._hubArgument)
        self["resources"] = _loadResources(self._resourceArguments, self["hub"])
        self["originCheck"] = originPolicy(self["origins"])


def portDescription(argument: str, backlog: int) -> str:
    """
    The endpoint description for a C{--port} argument: C{tcp:N} for a bare
    port number; C{backlog} added to a tcp, tcp6 or ssl description that
    sets none.
    """
    if argument.isdigit():
        return f"tcp:{int(argument)}:backlog={backlog}"
    kind, _, rest = argument.partition(":")
    options = rest.split(":")
    if kind in ("tcp", "tcp6", "ssl") and not any(
        o.startswith("backlog=") for o in options
    ):
        return f"{argument}:backlog={backlog}"
    return argument


def _checkEndpoint(description: str) -> None:
    """
    Parse C{description} as C{twistd} will, on a reactor that listens on
    nothing, so that a mistake is a usage error and not a traceback.
    """
    try:
        serverFromString(MemoryReactor(), description)
    except Exception as error:
        hint = ""
        if description.startswith("ssl:") and isinstance(
            error, (ImportError, NotImplementedError)
        ):
            hint = " (install TLS support: pip install 'txclws[tls]')"
        raise usage.UsageError(
            f"--port {description!r} is not usable: {error}{hint}"
        ) from error


def _checkWorkers(config: Options) -> None:
    """
    Check that C{--workers} can serve the ports and options given.

    @raise usage.UsageError: a port kind the workers cannot share, or a
        debugger that would have no terminal.
    """
    from txclws._workers import listenSpec

    for description in config["ports"]:
        try:
            listenSpec(description)
        except ValueError as error:
            raise usage.UsageError(str(error)) from error
    if config["debug-resource-errors"]:
        raise usage.UsageError(
            "--debug-resource-errors needs a terminal: not with --workers"
        )


def hubFor(argument: str) -> IHub:
    """
    The hub of a C{--hub} argument: a L{LocalHub} for C{local}, a
    L{txclws.redishub.RedisHub} for a C{redis://} URL (not yet connected).

    @raise usage.UsageError: anything else, or txredisapi is missing.
    """
    if argument == "local":
        return LocalHub()
    if not argument.startswith("redis://"):
        raise usage.UsageError(
            f"--hub {argument!r}: use 'local' or redis://host:port/db"
        )
    try:
        from txclws.redishub import RedisHub

        return RedisHub.fromURL(argument)
    except (ImportError, ValueError) as error:
        raise usage.UsageError(f"--hub: {error}") from error


def _loadResources(
    specs: Sequence[str], hub: IHub | None = None
) -> list[tuple[str, IWebSocketResource]]:
    """
    Resolve C{--resource} arguments to C{(path, resource)} pairs; a class
    whose constructor takes a C{hub} argument is given C{hub}.

    @raise usage.UsageError: a malformed argument, a duplicate path, a name
        that cannot be imported, or something that is not a resource.
    """
    loaded: dict[str, IWebSocketResource] = {}
    for spec in specs:
        path, sep, name = spec.partition("=")
        if not sep or not name:
            raise usage.UsageError(f"--resource {spec!r}: use /path=module.Class")
        if not path.startswith("/") or "?" in path or "#" in path:
            raise usage.UsageError(f"--resource {spec!r}: the path must start with /")
        if path in loaded:
            raise usage.UsageError(f"--resource: {path} is named twice")
        try:
            resource = _instantiate(namedAny(name), hub)
        except Exception as error:
            raise usage.UsageError(f"--resource {spec!r}: {error}") from error
        if not IWebSocketResource.providedBy(resource):
            raise usage.UsageError(
                f"--resource {spec!r}: {name} does not provide IWebSocketResource"
            )
        loaded[path] = resource
    return list(loaded.items())


def _instantiate(thing: Callable[..., Any], hub: IHub | None = None) -> Any:
    if not callable(thing):
        raise TypeError(f"{thing!r} is not a class")
    if hub is not None and _takesHub(thing):
        return thing(hub=hub)
    return thing()


def _takesHub(thing: Callable[..., Any]) -> bool:
    try:
        return "hub" in inspect.signature(thing).parameters
    except (TypeError, ValueError):  # no signature to read
        return False


def originPolicy(origins: Sequence[str]) -> OriginCheck:
    """
    The origin policy of C{--origin} arguments: L{anyOrigin} for none or
    C{any}; otherwise an origin passes if it equals one of the exact
    origins or starts with one of the prefixes (those ending in C{*}).

    @raise usage.UsageError: C{any} mixed with others, or an argument that
        is not an origin.
    """
    if not origins or list(origins) == ["any"]:
        return anyOrigin
    if "any" in origins:
        raise usage.UsageError("--origin any cannot be combined with other origins")
    prefixes = [o[:-1] for o in origins if o.endswith("*")]
    exact = [o for o in origins if not o.endswith("*")]
    for origin in prefixes + exact:
        if "://" not in origin and origin != "null":
            raise usage.UsageError(
                f"--origin {origin!r} is not an origin such as https://example.com"
            )
    byPrefix, byExact = originPrefix(*prefixes), originExact(*exact)

    def check(origin: str | None) -> bool:
        return byExact(origin) or byPrefix(origin)

    check.__doc__ = f"Accept the origins {exact!r} and those under {prefixes!r}."
    return check


@implementer(IStreamServerEndpoint)
class _LoggingEndpoint:
    """
    An endpoint that logs the address it listens on, once it does.
    """

    def __init__(
        self, endpoint: IStreamServerEndpoint, description: str, paths: str
    ) -> None:
        self._endpoint = endpoint
        self._description = description
        self._paths = paths

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen, and log where once listening.
        """
        return self._endpoint.listen(factory).addCallback(self._listening)

    def _listening(self, port: IListeningPort) -> IListeningPort:
        address = port.getHost()
        host, number = getattr(address, "host", None), getattr(address, "port", None)
        where = f"{host}:{number}" if number is not None else str(address)
        _log.info(
            "clws listening on {address} ({endpoint}); WebSocket resources: {paths}",
            address=where,
            endpoint=self._description,
            paths=self._paths,
        )
        return port


def makeService(
    config: Options, endpoints: Sequence[IStreamServerEndpoint] | None = None
) -> MultiService:
    """
    The service of C{twistd clws}: one site, served on every C{--port};
    with C{--workers N}, the parent that runs N processes serving it.

    @param endpoints: the endpoint of each port, instead of those its
        description makes: what a worker serves (its inherited sockets).
    """
    if config["workers"] > 1 and endpoints is None:
        from txclws._workers import STOP_GRACE, WorkerPool

        parent = MultiService()
        pool = WorkerPool(
            config["workers"],
            config["ports"],
            config.arguments,
            config["close-timeout"] + STOP_GRACE,
        )
        pool.setServiceParent(parent)  # type: ignore[no-untyped-call]  # mypy#16651
        return parent
    factory = WebSocketFactory(
        ResourceRegistry(),
        maxClients=config["max-clients"],
        maxFrameSize=config["max-frame-size"],
        maxMessageSize=config["max-message-size"],
        debugResourceErrors=bool(config["debug-resource-errors"]),
        deflate=PerMessageDeflate() if config["deflate"] else None,
        protocol76Support=bool(config["hixie76"]),
        pingInterval=config["ping-interval"] or None,
        pingTimeout=config["ping-timeout"],
        closeTimeout=config["close-timeout"],
        idleTimeout=config["idle-timeout"] or None,
        maxBuffer=config["max-buffer"],
        slowClientTimeout=config["slow-client-timeout"],
    )
    hub = config["hub"] if config["hub"] is not None else LocalHub()
    root, paths = _makeRoot(config["resources"], config["originCheck"], factory, hub)
    site = Site(root)
    service = MultiService()
    if IService.providedBy(hub):
        _StopAfterClients(hub, factory).setServiceParent(service)  # type: ignore[no-untyped-call]  # mypy#16651
    _GoingAway(factory).setServiceParent(service)  # type: ignore[no-untyped-call]  # mypy#16651
    for index, description in enumerate(config["ports"]):
        child = strports.service(description, site)
        if endpoints is not None:
            child.endpoint = endpoints[index]
        child.endpoint = _LoggingEndpoint(child.endpoint, description, paths)
        child.setServiceParent(service)
    return service


class _GoingAway(Service):
    """
    On shutdown, close every client with 1001 (going away), and wait for
    them to go, up to the factory's C{closeTimeout}.
    """

    def __init__(self, factory: WebSocketFactory) -> None:
        self.factory = factory

    def stopService(self) -> Deferred[None] | None:
        """
        Say goodbye to every client; fire once they are gone.
        """
        super().stopService()  # type: ignore[no-untyped-call]  # mypy#16653
        count = len(self.factory.clients)
        if not count:
            return None
        _log.info("closing {count} clients: shutting down", count=count)
        return self.factory.closeAllClients(
            CloseCode.GOING_AWAY, "server shutting down"
        )


class _StopAfterClients(Service):
    """
    Run C{service} (a hub that connects somewhere), and stop it only once
    every client is gone: what resources publish as their clients leave
    (the chat's leave notices) still goes out.
    """

    def __init__(self, service: IService, factory: WebSocketFactory) -> None:
        self.service = service
        self.factory = factory

    def startService(self) -> None:
        """
        Start the hub.
        """
        super().startService()  # type: ignore[no-untyped-call]  # mypy#16653
        self.service.startService()

    def stopService(self) -> Deferred[None]:
        """
        Close every client (at once if L{_GoingAway} did not already), then
        stop the hub.
        """
        super().stopService()  # type: ignore[no-untyped-call]  # mypy#16653
        gone = self.factory.closeAllClients(
            CloseCode.GOING_AWAY, "server shutting down"
        )
        return gone.addBoth(lambda _: self.service.stopService())


def _makeRoot(
    resources: Sequence[tuple[str, IWebSocketResource]],
    originCheck: OriginCheck,
    factory: WebSocketFactory,
    hub: IHub | None = None,
) -> tuple[Resource, str]:
    """
    The site's root: the named resources, or the demo when none is.

    @return: the root, and the WebSocket paths served, for the log.
    """
    from txclws.demo import makeDemoRoot
    from txclws.web import mountWebSocket

    if not resources:
        return (
            makeDemoRoot(factory, originCheck, hub),
            "/echo, /chat (demo page at /)",
        )
    root = Resource()
    for path, resource in resources:
        mountWebSocket(root, path, resource, originCheck, factory)
    return root, ", ".join(path for path, _ in resources)
