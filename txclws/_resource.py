# -*- test-case-name: tests.test_protocol,tests.test_testing -*-
"""
The resource API: what a WebSocket application implements, and what it is
given for each client.

A resource implements L{IWebSocketResource} (usually by subclassing
L{WebSocketResource}); each callback may return a plain value or a
C{Deferred}.  Each connected client is an L{IWebSocketClient}.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

from zope.interface import Attribute, Interface, implementer

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

__all__ = [
    "REJECT",
    "IStreamingClient",
    "IStreamingResource",
    "IWebSocketClient",
    "IWebSocketResource",
    "WebSocketResource",
]


class _Reject(Enum):
    REJECT = "REJECT"


#: Returned by L{IWebSocketResource.clientConnected} (or fired by the
#: Deferred it returns) to refuse a client: the counterpart of CLWS's
#: C{:reject}.
REJECT = _Reject.REJECT


class IWebSocketClient(Interface):
    """
    One connected WebSocket client, as a resource sees it.
    """

    resourceName = Attribute("The path of the resource requested, e.g. '/chat'.")
    queryString = Attribute("The request target after '?', or None when it had no '?'.")
    websocketVersion = Attribute(
        "The protocol version spoken: 13, 8 or 7, or 0 for draft-hixie-76 / "
        "hybi-00 (only with WebSocketFactory(protocol76Support=True))."
    )
    host = Attribute("The client's IP address, as a string.")
    port = Attribute("The client's TCP port (0 for non-TCP transports).")
    connectionHeaders = Attribute(
        "Every request header: a read-only, case-insensitive mapping of "
        "name to value (repeated headers joined with ', ')."
    )
    subprotocol = Attribute("The subprotocol agreed on, or None.")
    closeCode = Attribute(
        "The close code received from the client (or failed with), else None."
    )
    closeReason = Attribute("The close reason matching closeCode, else ''.")
    bufferedAmount = Attribute(
        "Bytes written to this client (messages, pings, close) that the "
        "server still holds: not yet handed to the kernel, whose socket "
        "buffer holds some more.  Over the "
        "factory's maxBuffer, broadcasts are subject to the slow-client "
        "policy (see WebSocketFactory); direct writes never are."
    )

    def drained() -> Deferred[None]:
        """
        Wait for the write buffer to empty: the way to pace direct writes
        to a client that may read slowly.

        @return: a Deferred that fires with C{None} once the transport has
            handed everything written to the kernel, at once if its buffer
            is not full; it fails with L{ConnectionClosed} if the
            connection is lost first (or already was).
        @since: 0.1.0
        """

    def writeText(message: str | bytes, frameSize: int | None = None) -> None:
        """
        Send a text message.

        Every method below checks its arguments first, the same way on
        every client kind (RFC 6455, hybi-07/08, hixie-76; and
        L{txclws.testing.InMemoryClient}'s C{send*}), open or closed; only
        then is the protocol asked (L{UnsupportedByProtocol}), then the
        connection (L{ConnectionClosed}).

        @param message: a C{str}, or bytes holding UTF-8.
        @param frameSize: split the message into frames of at most this
            many payload bytes; C{None} sends a single frame (and hixie-76,
            which has no fragments, always does).
        @raise TypeError: C{message} is neither C{str} nor bytes-like, or
            C{frameSize} is neither an C{int} nor C{None} (C{True} and
            C{1.0} included).
        @raise ValueError: C{message} is bytes that are not UTF-8 (or a
            C{str} with a lone surrogate), or C{frameSize} is not positive.
        @raise ConnectionClosed: the connection is closing or closed.
        """

    def writeBinary(data: bytes, frameSize: int | None = None) -> None:
        """
        Send a binary message; C{frameSize} as for L{writeText}.

        @param data: C{bytes}, C{bytearray} (copied) or C{memoryview}.
        @raise TypeError: C{data} is not bytes-like (a C{str} included:
            text goes through L{writeText}), or C{frameSize} is not an
            C{int}.
        @raise ValueError: C{frameSize} is not positive.
        @raise UnsupportedByProtocol: the client speaks hixie-76
            (C{websocketVersion} 0), which has no binary messages.
        @raise ConnectionClosed: the connection is closing or closed.
        """

    def close(code: int | None = 1000, reason: str = "") -> None:
        """
        Start the close handshake; the transport closes when the client
        answers, or after the factory's C{closeTimeout}.  Nothing happens
        (once the arguments are checked) if the close handshake has started
        already or the client is gone.

        @param code: the status code (RFC 6455 section 7.4): 1000-1003,
            1007-1011 or 3000-4999 (and 1004 to hybi-07/08 peers, whose
            drafts define it); C{None} sends a close frame without a code.
            A hybi-07/08 peer is sent the nearest code its draft defines.
            hixie-76 has no codes: its closing frame is sent, after the
            same checks.
        @param reason: a reason that encodes to at most 122 bytes of UTF-8.
        @raise TypeError: C{code} is neither an C{int} nor C{None}
            (C{1000.0}, C{"1000"} and C{True} included), or C{reason} is
            not a C{str}.
        @raise ValueError: C{code} may not be sent (1005, 1006 and 1015
            never are, RFC 6455 7.4.1), the reason is too long, or a
            reason comes without a code.
        """

    def ping(payload: bytes = b"") -> None:
        """
        Send a ping; the client's pong reaches
        L{IWebSocketResource.receivedPong}.

        @raise TypeError: the payload is not bytes-like.
        @raise ValueError: the payload is over 125 bytes.
        @raise UnsupportedByProtocol: the client speaks hixie-76
            (C{websocketVersion} 0), which has no pings.
        @raise ConnectionClosed: the connection is closing or closed.
        """

    def whenDisconnected() -> Deferred[None]:
        """
        Wait for this client to be gone for good: what a hub uses to end
        the client's subscriptions without its resource's help.

        @return: a Deferred that fires with C{None} once the connection is
            lost and, for an accepted client, after
            L{IWebSocketResource.clientDisconnected} has been called; for a
            client that was never accepted (L{REJECT}), once its connection
            is lost and its last callback has finished.  At once if that
            has happened already.  It never fails.  Each call gives a new
            Deferred.
        @since: 0.2.0
        """


class IStreamingClient(IWebSocketClient):
    """
    A client that can be sent a message as its data comes: every client of
    a txclws server or of C{connectWebSocket} provides it.

    @since: 0.2.0
    """

    def writeFrom(
        source: object, binary: bool = True, frameSize: int | None = 65536
    ) -> Deferred[None]:
        """
        Send one message from C{source}, fragmented as its data comes (RFC
        6455 5.4: the first frame TEXT or BINARY without FIN, CONTINUATION
        frames, the last with FIN; with permessage-deflate the message is
        compressed as one, RSV1 on its first frame).

        C{source} is a producer with C{startProducing(consumer)} returning
        a Deferred that fires at the end of its data (Twisted's
        C{IBodyProducer} shape: C{twisted.web.client.FileBodyProducer},
        L{txclws.MessagePipe}), given an C{IConsumer} to write to and
        paused (C{pauseProducing}) while the connection's write buffer is
        full; or a file-like object, read C{frameSize} bytes at a time
        while the buffer has room.  So a message of any size goes out in
        flat memory.

        Other messages written to this client meanwhile (C{writeText},
        C{writeBinary}, broadcasts, further C{writeFrom}s) wait, in order,
        for its end; pings, pongs and the close frame go out between its
        fragments.  A source that fails (its Deferred fails, C{read}
        raises, or a text message's bytes are not UTF-8) closes the
        connection with 1011.

        @param binary: a binary message, else text (the source writes
            UTF-8 bytes or C{str}).
        @param frameSize: the largest fragment, in payload bytes (a file's
            read size); C{None} for 65536.
        @return: a Deferred that fires with C{None} once the last frame is
            written, or fails: with the source's failure, or with
            L{ConnectionClosed} if the connection closed first.
        @raise TypeError: C{frameSize} is not an C{int}.
        @raise ValueError: C{frameSize} is not positive.
        @raise UnsupportedByProtocol: a binary message to a hixie-76 client.
        @raise ConnectionClosed: the connection is closing or closed.
        """


class IWebSocketResource(Interface):
    """
    A WebSocket application mounted at a path.

    Every callback may return a value or a C{Deferred}.  A client's events
    reach its resource one at a time, in order: while a returned Deferred
    has not fired, that client's next event waits and the server stops
    reading from it.  A callback that raises, or whose Deferred fails, is
    logged and that client alone is closed with 1011.
    """

    def clientConnected(client: IWebSocketClient) -> object:
        """
        A client completed the opening handshake.

        @return: L{REJECT} (or a Deferred firing it) to close the client
            with 1008 and drop whatever it already sent; anything else
            accepts it.  A rejected client gets no L{clientDisconnected}.
        """

    def clientDisconnected(client: IWebSocketClient) -> object:
        """
        An accepted client's connection is gone, whatever the reason; called
        exactly once, after its last event's callback has finished.
        """

    def receivedText(client: IWebSocketClient, message: str) -> object:
        """
        A whole text message arrived.
        """

    def receivedBinary(client: IWebSocketClient, message: bytes) -> object:
        """
        A whole binary message arrived.
        """

    def receivedPong(client: IWebSocketClient, payload: bytes) -> object:
        """
        A pong arrived, usually the answer to L{IWebSocketClient.ping}.
        """

    def selectSubprotocol(
        client: IWebSocketClient, offered: Sequence[str]
    ) -> str | None:
        """
        Choose one of the subprotocols the client offered, before the
        handshake is answered; C{None} agrees on none.  Called only when the
        client offered some.  Must return synchronously.
        """


class IStreamingResource(IWebSocketResource):
    """
    A resource that takes each data message as it arrives, piece by piece,
    instead of whole: for messages too large to hold (uploads, media,
    dumps).  Optional: a resource that provides it (as well as
    L{IWebSocketResource}) gets L{messageStarted}, L{messageData} and
    L{messageEnded} in place of C{receivedText} and C{receivedBinary}.

    The rules are a whole message's: one callback at a time, in order
    (pongs and the close come between messages' pieces as they arrived);
    while a callback's Deferred has not fired, the next piece waits and,
    once the waiting pieces carry more than the factory's
    C{maxQueuedBytes}, the server stops reading from the client (pings are
    still answered).  A callback that raises, or whose Deferred fails,
    closes that client with 1011.

    Each piece is already unmasked, inflated (permessage-deflate) and, for
    a text message, checked as UTF-8 and decoded: a C{str} that ends at a
    code point.  A message that turns out invalid (bad UTF-8: 1007; over
    the size limit: 1009) fails the connection after the pieces before the
    fault: no L{messageEnded} comes for it.  The factory's
    C{maxMessageSize} does not apply to streamed messages;
    L{maxStreamedMessageSize} does.  C{maxFrameSize} still applies to each
    frame.  hixie-76 clients (version 0) read messages whole: each comes
    as one start, one piece and its end.

    @since: 0.2.0
    """

    maxStreamedMessageSize = Attribute(
        "The largest streamed message accepted, in bytes (after "
        "decompression): over it the client is closed with 1009.  None "
        "(the default when the attribute is absent): no limit."
    )

    def messageStarted(client: IWebSocketClient, opcode: int) -> object:
        """
        A data message began.

        @param opcode: L{Opcode.TEXT} (1) or L{Opcode.BINARY} (2).
        """

    def messageData(client: IWebSocketClient, data: str | bytes) -> object:
        """
        The next piece of the message: C{str} for text, C{bytes} for
        binary; never empty.  Return a Deferred to hold the next pieces
        until it fires (the way to apply backpressure to the sender).
        """

    def messageEnded(client: IWebSocketClient) -> object:
        """
        The message is complete and was valid to its end.
        """


@implementer(IWebSocketResource)
class WebSocketResource:
    """
    A base for resources: every callback does nothing, and no subprotocol
    is chosen.  Override what you need.
    """

    def clientConnected(self, client: IWebSocketClient) -> Any:
        """
        Accept every client.
        """
        return None

    def clientDisconnected(self, client: IWebSocketClient) -> Any:
        """
        Do nothing.
        """
        return None

    def receivedText(self, client: IWebSocketClient, message: str) -> Any:
        """
        Ignore the message.
        """
        return None

    def receivedBinary(self, client: IWebSocketClient, message: bytes) -> Any:
        """
        Ignore the message.
        """
        return None

    def receivedPong(self, client: IWebSocketClient, payload: bytes) -> Any:
        """
        Ignore the pong.
        """
        return None

    def selectSubprotocol(
        self, client: IWebSocketClient, offered: Sequence[str]
    ) -> str | None:
        """
        Agree on no subprotocol.
        """
        return None
