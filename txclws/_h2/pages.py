# -*- test-case-name: tests.test_h2 -*-
"""
Plain C{twisted.web} pages over HTTP/2: L{PageStream} is the channel of
one request, as C{HTTPChannel} is over HTTP/1.1, so that the site's own
C{requestFactory} and resources serve it unchanged.

The request is run once its stream ends (its body is whole), as
C{twisted.web} runs an HTTP/1.1 request; its body is acknowledged as it
arrives (C{twisted.web} keeps it, in memory or a temporary file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IAddress, IPushProducer
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from zope.interface import implementer

from txclws._h2.stream import OutboundStream, StreamConnection, StreamEnd

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

__all__ = ["PageSite", "PageStream"]


class PageSite(Protocol):
    """
    What a page needs from its site (a C{twisted.web.server.Site}).
    """

    def requestFactory(self, channel: Any, queued: bool) -> Any: ...

    def log(self, request: Any) -> None: ...


class PageConnection(StreamConnection, Protocol):
    """
    What a page needs from its connection beyond what any stream does.
    """

    reactor: IReactorTime

    def sendHeaders(
        self, streamID: int, headers: list[tuple[bytes, bytes]], end: bool
    ) -> None: ...

    def getPeer(self) -> IAddress: ...

    def getHost(self) -> IAddress: ...


@implementer(IPushProducer)
class PageStream(OutboundStream):
    """
    One request's stream: the C{channel} its C{twisted.web} request writes
    to.

    @ivar site: the site (C{twisted.web} requests read C{channel.site}).
    @ivar factory: the site, which logs each finished request.
    @ivar transport: C{None}: the request has no transport of its own.
    """

    transport = None

    def __init__(
        self,
        connection: PageConnection,
        streamID: int,
        site: PageSite,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        super().__init__(connection, streamID)
        self._pageConnection = connection
        self.site = self.factory = site
        self._request = site.requestFactory(self, queued=False)
        self._method = self._path = b""
        self._pull: Any = None
        self._pullScheduled = False
        self._readHeaders(headers)

    def _readHeaders(self, headers: list[tuple[bytes, bytes]]) -> None:
        request = self._request
        length: int | None = None
        for name, value in headers:
            if name == b":method":
                self._method = value
            elif name == b":path":
                self._path = value
            elif name == b":authority":
                request.requestHeaders.addRawHeader(b"host", value)
            elif not name.startswith(b":"):
                request.requestHeaders.addRawHeader(name, value)
                if name == b"content-length" and value.isdigit():
                    length = int(value)
        if length is None and self._method in (b"GET", b"HEAD"):
            length = 0
        request.gotLength(length)
        request.parseCookies()

    # -- from the connection -----------------------------------------------

    def dataReceived(self, data: bytes, flowControlled: int) -> None:
        """
        The request's body, handed on as it comes.
        """
        if data:
            self._request.handleContentChunk(data)
        super().dataReceived(data, flowControlled)

    def peerEnded(self) -> None:
        """
        The body is whole: run the request.
        """
        self._request.requestReceived(self._method, self._path, b"HTTP/2")

    def streamClosed(self) -> None:
        """
        Reset, or the connection is gone: the request is told.
        """
        wasOpen = self.end is not StreamEnd.ENDED
        super().streamClosed()
        if wasOpen:
            self._request.connectionLost(Failure(ConnectionLost("stream reset")))

    def flush(self) -> None:
        """
        See L{OutboundStream.flush}; a pull producer is asked for more once
        the buffer has emptied.
        """
        super().flush()
        if self._pull is not None and not self._size:
            self._schedulePull()

    # -- the channel a twisted.web request writes to -----------------------

    def writeHeaders(
        self, version: bytes, code: bytes | int, reason: bytes, headers: Headers
    ) -> None:
        """
        The response's head, as HTTP/2 header fields (RFC 9113 8.2.2: no
        connection-specific fields).
        """
        fields = [(b":status", str(int(code)).encode("ascii"))]
        for name, values in headers.getAllRawHeaders():
            lower = name.lower()
            if lower in _CONNECTION_SPECIFIC:
                continue
            fields.extend((lower, value) for value in values)
        self._pageConnection.sendHeaders(self.streamID, fields, False)

    def writeSequence(self, chunks: list[bytes]) -> None:
        """
        Write each chunk.
        """
        for chunk in chunks:
            self.write(chunk)

    def requestDone(self, request: object) -> None:
        """
        The response is complete: end the stream once it has gone.
        """
        self.endStream()

    def loseConnection(self) -> None:
        """
        End the stream (a request asked to close its connection).
        """
        self.endStream()

    def abortConnection(self) -> None:
        """
        Reset the stream.
        """
        self.reset()

    def getPeer(self) -> IAddress:
        """
        The connection's peer.
        """
        return self._pageConnection.getPeer()

    def getHost(self) -> IAddress:
        """
        The connection's local address.
        """
        return self._pageConnection.getHost()

    def isSecure(self) -> bool:
        """
        Whether the connection is TLS.
        """
        return self._pageConnection.isTLS

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        A push producer is paused and resumed with the buffer, as a
        transport would; a pull producer is asked for more each time it
        has emptied.
        """
        if streaming:
            self._producer = producer
        else:
            self._pull = producer
            self._schedulePull()

    def unregisterProducer(self) -> None:
        """
        The producer is done.
        """
        self._producer = self._pull = None
        self._producerPaused = False

    def _schedulePull(self) -> None:
        if not self._pullScheduled:
            self._pullScheduled = True
            self._pageConnection.reactor.callLater(0, self._pullOnce)

    def _pullOnce(self) -> None:
        self._pullScheduled = False
        pull = self._pull
        if pull is None or self.end is not StreamEnd.OPEN:
            return
        pull.resumeProducing()
        if self._pull is not None and not self._size:
            self._schedulePull()

    def _respondToBadRequestAndDisconnect(self) -> None:
        """
        What C{twisted.web} calls for a malformed request: 400, and the
        stream ends.
        """
        self._pageConnection.sendHeaders(self.streamID, [(b":status", b"400")], True)
        self._discard()

    # -- IPushProducer: the request's, for its body --------------------------

    def pauseProducing(self) -> None:
        """
        Nothing to pause: the body is acknowledged as it comes.
        """

    def resumeProducing(self) -> None:
        """
        See L{pauseProducing}.
        """

    def stopProducing(self) -> None:
        """
        Reset the stream.
        """
        self.reset()


#: RFC 9113 8.2.2: header fields that an HTTP/2 message must not carry.
_CONNECTION_SPECIFIC = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
    }
)
