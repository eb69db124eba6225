"""
Tests for L{txclws._session.stream}: L{TransportStream}, the
L{IByteStream} over a Twisted transport, and the peer address it reads.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.testing import StringTransport
from zope.interface.verify import verifyObject

from tests.conftest import RecordingResource
from tests.test_protocol import REQUEST, RecordingTransport, makeFactory
from txclws._session.stream import IByteStream, TransportStream, peerOf


class _Producer:
    """
    A push producer that does nothing.
    """

    def pauseProducing(self) -> None:
        """
        Nothing.
        """

    def resumeProducing(self) -> None:
        """
        Nothing.
        """

    def stopProducing(self) -> None:
        """
        Nothing.
        """


def test_interface() -> None:
    """
    L{TransportStream} provides L{IByteStream}; its sink is the transport
    itself, so that the session writes without a call of ours.
    """
    transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", 5))
    stream = TransportStream(transport)
    assert verifyObject(IByteStream, stream)
    assert stream.sink is transport
    assert (stream.host, stream.port, stream.isTLS) == ("192.0.2.1", 5, False)


def test_ipv6Peer() -> None:
    """
    An IPv6 peer's host is its address.
    """
    transport = StringTransport(peerAddress=IPv6Address("TCP", "::1", 7))
    assert peerOf(transport) == ("::1", 7)


def test_unixPeerIsAPath() -> None:
    """
    A UNIX socket peer's host is its path as a C{str} (never the repr of
    bytes, C{"b'/run/x'"}), or C{""} for an unnamed socket, and its port 0
    (issue 12, defect 6).
    """
    named = StringTransport(peerAddress=UNIXAddress(b"/run/ws.sock"))
    assert peerOf(named) == ("/run/ws.sock", 0)
    unnamed = StringTransport(peerAddress=UNIXAddress(None))
    assert peerOf(unnamed) == ("", 0)


def test_unixClientHost() -> None:
    """
    Through the front door, a client on a UNIX socket sees its C{host} as
    the socket's path and its log lines name it sensibly.
    """
    resource = RecordingResource(echo=False)
    factory, _ = makeFactory(resource)
    protocol = factory.buildProtocol(UNIXAddress(b"/run/ws.sock"))
    protocol.makeConnection(
        RecordingTransport(peerAddress=UNIXAddress(b"/run/ws.sock"))
    )
    protocol.dataReceived(REQUEST)
    assert (protocol.host, protocol.port) == ("/run/ws.sock", 0)
    assert protocol._peer() == "/run/ws.sock"


def test_watchWrites() -> None:
    """
    C{watchWrites} registers the producer as a streaming producer, and
    C{unwatchWrites} unregisters it, once.
    """
    transport = StringTransport()
    stream = TransportStream(transport)
    producer = _Producer()
    stream.watchWrites(producer)
    assert (transport.producer, transport.streaming) == (producer, True)
    stream.unwatchWrites()
    stream.unwatchWrites()
    assert transport.producer is None


def test_halfCloseFallsBackToClose() -> None:
    """
    On a transport that cannot half-close, C{loseWriteConnection} closes it
    whole and says so.
    """

    class Whole(StringTransport):
        loseWriteConnection = None  # type: ignore[assignment]

    whole = Whole()
    assert TransportStream(whole).loseWriteConnection() is False
    assert whole.disconnecting
    half = RecordingTransport()
    assert TransportStream(half).loseWriteConnection() is True
    assert half.writeClosed and not half.disconnecting


def test_abort() -> None:
    """
    C{abort} aborts a transport that can.
    """
    transport = RecordingTransport()
    TransportStream(transport).abort()
    assert transport.aborted
