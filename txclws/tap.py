# -*- test-case-name: tests.test_tap,tests.test_daemon -*-
"""
C{twistd clws}: the command-line options and the service they make::

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

Every option value is checked in L{Options.postOptions} (by
L{txclws._tapvalues}): a bad one is a usage error naming the option.  What
only fails when a port binds stops the start with a message naming the
port (L{txclws._tapservices.DaemonService}).  A unix: path is claimed
before binding (L{txclws._ports.claimUnixPath}), with one process or many.

@since: 0.1.0
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService, Service
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python import usage

from txclws._core.origin import anyOrigin
from txclws._factory import DEFAULT_BACKLOG, WebSocketFactory
from txclws._hub import LocalHub
from txclws._ports import unixPathOf
from txclws._rolling import IgnoreHangup, retireTimeout
from txclws._systemd import serverEndpoint
from txclws._tapbuild import makeFactory, makeRoot
from txclws._tapops import OpsOptions, tuneAllocator
from txclws._tapservices import DaemonService, GoingAway, PortEndpoint, StopAfterClients
from txclws._tapvalues import (
    HTTP2_FLAGS,
    backlog,
    checkPorts,
    hubFor,
    loadResources,
    originPolicy,
    parameter,
    portDescription,
    positiveInt,
    positiveSeconds,
    seconds,
)
from txclws._workers import STOP_GRACE, WorkerPool
from txclws.web import WebSocketSite

__all__ = [
    "DEFAULT_PORT",
    "Options",
    "hubFor",
    "makeService",
    "originPolicy",
    "portDescription",
]

_log = Logger()

#: The port served when no C{--port} is given (CLWS's example uses it).
DEFAULT_PORT = 12345

_DEFAULTS = inspect.signature(WebSocketFactory.__init__).parameters

_F = TypeVar("_F", bound=Callable[..., Any])


def _helpText(method: _F) -> _F:
    """
    Make C{method}'s docstring one paragraph, as C{--help} shows it.
    """
    method.__doc__ = " ".join((method.__doc__ or "").split())
    return method


class Options(OpsOptions):
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
        parameter(
            "max-clients",
            None,
            "Most WebSocket clients connected at once, over every port and "
            "resource; beyond it the handshake is refused with 503 "
            "(default: no limit).  With --workers, a limit per worker",
            positiveInt,
        ),
        parameter(
            "max-frame-size",
            _DEFAULTS["maxFrameSize"].default,
            "Largest frame payload a client may send, in bytes; over it the "
            "connection is closed with 1009",
            positiveInt,
        ),
        parameter(
            "max-message-size",
            _DEFAULTS["maxMessageSize"].default,
            "Largest message a client may send, in bytes (the server may "
            "buffer this much per client); over it the connection is closed "
            "with 1009",
            positiveInt,
        ),
        parameter(
            "max-head-size",
            _DEFAULTS["maxHeadSize"].default,
            "Largest opening handshake request head (request line and "
            "headers) a client may send, in bytes; over it the request is "
            "refused with 431",
            positiveInt,
        ),
        parameter(
            "handshake-timeout",
            _DEFAULTS["handshakeTimeout"].default,
            "Seconds a client has, from connecting, to send its whole "
            "opening handshake request; then it is refused with 408 and "
            "dropped",
            positiveSeconds,
        ),
        parameter(
            "workers",
            1,
            "Worker processes serving the ports (use about one per core): the "
            "parent opens the ports and restarts a worker that dies; 1 (the "
            "default) serves in this process.  Ports must be tcp:, tcp6:, "
            "ssl:, stdssl:, unix: or systemd:",
            positiveInt,
        ),
        parameter(
            "backlog",
            DEFAULT_BACKLOG,
            "Listen backlog of a port given as a number, and of tcp:, tcp6:, "
            "ssl: and stdssl: ports that do not set backlog= themselves",
            backlog,
        ),
        parameter(
            "ping-interval",
            _DEFAULTS["pingInterval"].default,
            "Ping a client from which nothing has arrived for this many "
            "seconds (keepalive); 0 turns keepalive off",
            seconds,
        ),
        parameter(
            "ping-timeout",
            _DEFAULTS["pingTimeout"].default,
            "Drop a pinged client from which nothing arrives within this many seconds",
            seconds,
        ),
        parameter(
            "close-timeout",
            _DEFAULTS["closeTimeout"].default,
            "Drop a client that has not answered our close frame (or closed "
            "TCP after a protocol error) within this many seconds; also the "
            "most a shutdown waits for clients to close",
            seconds,
        ),
        parameter(
            "idle-timeout",
            0,
            "Close (1001) a client from which nothing has arrived for this "
            "many seconds, pings answered or not; 0 (the default): never",
            seconds,
        ),
        parameter(
            "max-buffer",
            _DEFAULTS["maxBuffer"].default,
            "Per-client write high-water mark, in bytes: a client more than "
            "this behind on broadcasts for --slow-client-timeout seconds (or "
            "twice this behind at once) is closed with 1008",
            positiveInt,
        ),
        [
            "metrics",
            None,
            None,
            "Serve Prometheus metrics (needs pip install 'txclws[metrics]'): "
            "--metrics alone at /metrics on every --port; --metrics ENDPOINT "
            "(tcp:9100:interface=127.0.0.1) on a port of its own",
        ],
        parameter(
            "slow-client-timeout",
            _DEFAULTS["slowClientTimeout"].default,
            "Grace period, in seconds, for a client over --max-buffer",
            seconds,
        ),
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
        *HTTP2_FLAGS,
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # mypy#16653
        self["ports"] = []
        self["resources"] = []
        self["origins"] = []
        self["originCheck"] = anyOrigin
        self["hub"] = None
        self["json-log"] = None
        self._portArguments: list[str] = []
        self._resourceArguments: list[str] = []
        self._hubArgument = "local"
        #: The arguments parsed, as given: what each worker is started with.
        self.arguments: list[str] = []
        #: Whether the ports' sockets are inherited from a parent (a
        #: worker's): a systemd: port is then not looked up here.
        self.inheritedPorts = False

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """
        Parse C{options} (the command line by default), and keep them.
        """
        self.arguments = list(sys.argv[1:] if options is None else options)
        if "--metrics" in self.arguments:
            from txclws._metricsdaemon import metricsArgument

            self.arguments = metricsArgument(self.arguments)
            options = self.arguments
        super().parseOptions(options)  # type: ignore[no-untyped-call]  # mypy#16653

    @_helpText
    def opt_port(self, port: str) -> None:
        """
        A port number, or a Twisted server endpoint description such as
        tcp:12345:interface=127.0.0.1,
        ssl:8443:privateKey=key.pem:certKey=cert.pem (or stdssl:, the
        same on the standard library's ssl), unix:/run/clws.sock or
        systemd:domain=INET:index=0 (a socket systemd passed); repeat to
        listen on several [default: 12345].
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

    @_helpText
    def opt_json_log(self, path: str) -> None:
        """
        Also write every log event to this file, one JSON object per
        record (twisted.logger's JSON format), for a log shipper.
        """
        self["json-log"] = path

    def postOptions(self) -> None:
        """
        Check the ports, resources and origins, and resolve them.

        @raise usage.UsageError: one of them is not usable.
        """
        arguments = self._portArguments or [str(DEFAULT_PORT)]
        self["ports"] = checkPorts(
            arguments, self["backlog"], self["workers"], self.inheritedPorts
        )
        if self["workers"] > 1 and self["debug-resource-errors"]:
            raise usage.UsageError(
                "--debug-resource-errors needs a terminal: not with --workers"
            )
        self.checkDrain()
        self["hub"] = hubFor(self._hubArgument)
        self["resources"] = loadResources(self._resourceArguments, self["hub"])
        self["originCheck"] = originPolicy(self["origins"])


def makeService(
    config: Options, endpoints: Sequence[IStreamServerEndpoint] | None = None
) -> MultiService:
    """
    The service of C{twistd clws}: one site, served on every C{--port};
    with C{--workers N}, the parent that runs N processes serving it.

    @param endpoints: the endpoint of each port, instead of those its
        description makes: what a worker serves (its inherited sockets).
    """
    service = DaemonService()
    if config["json-log"] is not None:
        from txclws._jsonlog import JsonLog

        Service.setServiceParent(JsonLog(config["json-log"]), service)
    if config["workers"] > 1 and endpoints is None:
        pool = WorkerPool(
            config["workers"],
            config["ports"],
            config.arguments,
            config["close-timeout"] + STOP_GRACE,
        )
        if config["metrics"]:
            from txclws._metricsdaemon import addParentMetrics

            addParentMetrics(service, config["metrics"], pool)
        pool.rolling.retireTimeout = retireTimeout(config, STOP_GRACE)
        Service.setServiceParent(pool, service)
        return service
    if endpoints is None:  # one process: no rolling restart (txclws._rolling)
        Service.setServiceParent(IgnoreHangup(), service)
    tuneAllocator(config)  # each serving process: one, or every worker
    factory = makeFactory(config)
    hub = config["hub"] if config["hub"] is not None else LocalHub()
    root, paths = makeRoot(config["resources"], config["originCheck"], factory, hub)
    if config["metrics"]:
        from txclws._metricsdaemon import addMetrics

        addMetrics(service, config["metrics"], factory, root, endpoints is not None)
    site = WebSocketSite(root, factory, http2=not config["no-http2"], h2c=config["h2c"])
    if IService.providedBy(hub):
        Service.setServiceParent(StopAfterClients(hub, factory), service)
    Service.setServiceParent(GoingAway(factory, site), service)
    for index, description in enumerate(config["ports"]):
        unixPath = None
        if endpoints is not None:
            endpoint = endpoints[index]  # the parent claimed any path
        else:
            from twisted.internet import reactor

            endpoint = serverEndpoint(reactor, description)
            unixPath = unixPathOf(description)
        endpoint = PortEndpoint(endpoint, description, paths, unixPath)
        child = StreamServerEndpointService(endpoint, site)
        child._raiseSynchronously = True  # as strports.service makes it
        child.setServiceParent(service)
    return service
