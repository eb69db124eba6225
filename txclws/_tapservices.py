# -*- test-case-name: tests.test_tap,tests.test_daemon -*-
"""
The services L{txclws.tap.makeService} puts together: the daemon's root
service, its ports' endpoints, and the shutdown of its clients and hub.

@since: 0.2.0
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txclws._core.frames import CloseCode
from txclws._factory import WebSocketFactory
from txclws._ports import CannotListen, claimUnixPath

__all__ = ["DaemonService", "GoingAway", "PortEndpoint", "StopAfterClients"]

#: The daemon's own lines keep the namespace they have always had.
_log = Logger(namespace="txclws.tap")


class DaemonService(MultiService):
    """
    The root service of C{twistd clws}: a port that cannot listen stops
    the start with a message naming it (C{SystemExit}, as C{twistd} itself
    exits when it cannot set the user), not a traceback.
    """

    def __init__(self) -> None:
        MultiService.__init__(self)

    def privilegedStartService(self) -> None:
        """
        Start the children that listen before privileges are dropped.

        @raise SystemExit: a port cannot listen.
        """
        try:
            MultiService.privilegedStartService(self)
        except CannotListen as error:
            raise SystemExit(f"twistd clws: {error}") from None

    def startService(self) -> None:
        """
        Start the children.

        @raise SystemExit: a port cannot listen.
        """
        try:
            MultiService.startService(self)
        except CannotListen as error:
            raise SystemExit(f"twistd clws: {error}") from None


@implementer(IStreamServerEndpoint)
class PortEndpoint:
    """
    The endpoint of one C{--port}: claims a unix: path first (as the
    worker pool does, L{claimUnixPath}), logs the address it listens on
    once it does, and turns a failure to listen into L{CannotListen}.
    """

    def __init__(
        self,
        endpoint: IStreamServerEndpoint,
        description: str,
        paths: str,
        unixPath: str | None = None,
    ) -> None:
        """
        @param paths: the WebSocket paths served, for the log.
        @param unixPath: the path to claim before listening, or C{None}.
        """
        self._endpoint = endpoint
        self._description = description
        self._paths = paths
        self._unixPath = unixPath

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen, and log where once listening.
        """
        listening = maybeDeferred(self._listen, factory)
        return listening.addCallbacks(self._listening, self._failed)

    def _listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        if self._unixPath is not None:
            claimUnixPath(self._unixPath, f"--port {self._description}")
        return self._endpoint.listen(factory)

    def _listening(self, port: IListeningPort) -> IListeningPort:
        address = port.getHost()
        host, number = getattr(address, "host", None), getattr(address, "port", None)
        where = f"{host}:{number}" if number is not None else _unixName(address)
        _log.info(
            "clws listening on {address} ({endpoint}); WebSocket resources: {paths}",
            address=where,
            endpoint=self._description,
            paths=self._paths,
        )
        return port

    def _failed(self, reason: Failure) -> Failure:
        # bind() and listen() errors: the address is taken, not ours, or
        # not on this host.  Anything else is a bug, and keeps its traceback.
        if reason.check(CannotListenError, OSError, OverflowError):
            error = CannotListen(
                f"--port {self._description}: cannot listen: {reason.value}"
            )
            return Failure(error)
        return reason


def _unixName(address: object) -> str:
    """
    A unix socket's path as the worker pool logs it, or C{address}.
    """
    name = getattr(address, "name", None)
    if isinstance(name, bytes):
        return name.decode("utf-8", "replace")
    return str(name if name is not None else address)


class GoingAway(Service):
    """
    On shutdown, close every client with 1001 (going away), and wait for
    them to go, up to the factory's C{closeTimeout}.
    """

    def __init__(self, factory: WebSocketFactory, site: Any = None) -> None:
        """
        @param site: a L{txclws.web.WebSocketSite} whose HTTP/2 connections
            are sent C{GOAWAY} once the clients are gone, or C{None}.
        """
        self.factory = factory
        self.site = site

    def stopService(self) -> Deferred[None] | None:
        """
        Say goodbye to every client; fire once they are gone (then
        C{GOAWAY} on every HTTP/2 connection).
        """
        Service.stopService(self)
        count = len(self.factory.clients)
        if not count:
            self._goAway(None)
            return None
        _log.info("closing {count} clients: shutting down", count=count)
        gone = self.factory.closeAllClients(
            CloseCode.GOING_AWAY, "server shutting down"
        )
        return gone.addBoth(self._goAway)

    def _goAway(self, result: Any) -> Any:
        if self.site is not None:
            self.site.goAway()
        return result


class StopAfterClients(Service):
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
        Service.startService(self)
        self.service.startService()

    def stopService(self) -> Deferred[None]:
        """
        Close every client (at once if L{GoingAway} did not already), then
        stop the hub.
        """
        Service.stopService(self)
        gone = self.factory.closeAllClients(
            CloseCode.GOING_AWAY, "server shutting down"
        )
        return gone.addBoth(lambda _: self.service.stopService())
