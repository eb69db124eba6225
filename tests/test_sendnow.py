"""
Tests for L{txclws._sendnow}: over a TCP transport, the front door sends
the replies to a turn's reads at that turn's end, in a delayed call of no
delay that the reactor runs before it polls again (issue 16), not once the
poll reports the socket writable; the replies of several reads of a turn
go out in one send; a read that wrote nothing sends nothing, and a
transport that is disconnecting is left to the reactor.

The transport is Twisted's own C{tcp.Connection} over a real loopback TCP
socket; the reactor is a L{MemoryReactorClock}, which never polls, so
whatever reaches the peer's socket was sent by the delayed call
(C{advance(0)} runs it, as the reactor's next turn would first).
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet import tcp
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from tests._rawsocket import SAMPLE_ACCEPT, clientFrame, closePayload, upgradeRequest
from txclws import ResourceRegistry, WebSocketFactory, WebSocketResource, anyOrigin
from txclws._session.base import NotingSink

PEER = IPv4Address("TCP", "127.0.0.1", 40000)


class Echo(WebSocketResource):
    """
    Send every text message back; stay silent on binary ones.
    """

    def receivedText(self, client: Any, message: str) -> None:
        client.writeText(message)


class PairedTransport(tcp.Connection):
    """
    Twisted's TCP transport over one end of a connected socket pair.
    """

    def __init__(self, sock: socket.socket, reactor: MemoryReactorClock) -> None:
        super().__init__(sock, None, reactor)
        self.connected = 1

    def getPeer(self) -> IPv4Address:
        return PEER

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 80)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """
    A connected loopback TCP socket pair: (server end, client end).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    server, _ = listener.accept()
    listener.close()
    yield server, client
    server.close()
    client.close()


def readable(sock: socket.socket) -> bytes:
    """
    What C{sock} can read now, without waiting beyond a short bound.
    """
    ready, _, _ = select.select([sock], [], [], 0.2)
    return sock.recv(65536) if ready else b""


def openServer(server: socket.socket) -> tuple[Any, PairedTransport]:
    """
    A front door on C{server}'s transport, past its handshake; the 101 is
    sent as the reactor would send it (its C{doWrite}).
    """
    clock = MemoryReactorClock()
    registry = ResourceRegistry()
    registry.register("/r", Echo(), anyOrigin)
    factory = WebSocketFactory(registry, reactor=clock, pingInterval=None)
    protocol = factory.buildProtocol(PEER)
    transport = PairedTransport(server, clock)
    transport.protocol = protocol
    protocol.makeConnection(transport)
    protocol.dataReceived(upgradeRequest("/r"))
    transport.doWrite()
    return protocol, transport


def test_replySentAtTheTurnsEnd(pair: tuple[socket.socket, socket.socket]) -> None:
    """
    The echo of a message is on the peer's socket once the delayed call of
    no delay the read scheduled has run, before any poll: no reactor turn
    waiting for writability was needed to send it.
    """
    server, client = pair
    protocol, transport = openServer(server)
    assert SAMPLE_ACCEPT.encode() in readable(client)
    protocol.dataReceived(clientFrame(0x1, b"ping-pong"))
    [call] = transport.reactor.getDelayedCalls()
    assert call.getTime() == transport.reactor.seconds()
    transport.reactor.advance(0)
    # 0x81: FIN + text; 0x09: length 9, unmasked (RFC 6455 5.2).
    assert readable(client) == b"\x81\x09ping-pong"


def test_pipelinedRepliesSentOnce(pair: tuple[socket.socket, socket.socket]) -> None:
    """
    Reads of several messages in one turn send all their replies, in
    order, in one C{send}, at the turn's end (replying in each read would
    leave a pipelining peer less to batch: W1 lost 27% that way).
    """
    server, client = pair
    protocol, transport = openServer(server)
    readable(client)
    sends: list[bytes] = []
    writeSomeData = transport.writeSomeData

    def recording(data: bytes) -> int:
        sends.append(bytes(data))
        return writeSomeData(data)

    transport.writeSomeData = recording  # type: ignore[method-assign]
    protocol.dataReceived(clientFrame(0x1, b"a") + clientFrame(0x1, b"bc"))
    protocol.dataReceived(clientFrame(0x1, b"d"))
    assert sends == []
    transport.reactor.advance(0)
    assert sends == [b"\x81\x01a\x81\x02bc\x81\x01d"]
    assert readable(client) == b"\x81\x01a\x81\x02bc\x81\x01d"


def test_silentReadSendsNothing(pair: tuple[socket.socket, socket.socket]) -> None:
    """
    A read that made the session write nothing does not send (no empty
    C{send} per read for a client that only talks).
    """
    server, client = pair
    protocol, transport = openServer(server)
    readable(client)
    calls: list[bytes] = []
    transport.writeSomeData = calls.append  # type: ignore[assignment,method-assign]
    protocol.dataReceived(clientFrame(0x2, b"\x00\x01"))
    assert transport.reactor.getDelayedCalls() == []
    assert calls == []


def test_disconnectingLeftToTheReactor(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """
    A read that ends the connection (the client's close frame: the server
    answers it and closes) leaves the answer to the reactor, whose
    C{doWrite} sends it and then closes: sending it from the read would
    close the transport behind the reactor's back.
    """
    server, client = pair
    protocol, transport = openServer(server)
    readable(client)
    protocol.dataReceived(clientFrame(0x8, closePayload(1000)))
    assert transport.disconnecting
    transport.reactor.advance(0)
    assert readable(client) == b""
    assert transport.connected
    transport.doWrite()  # the reactor's turn
    # 0x88: FIN + close; 0x02: length 2; code 1000.
    assert readable(client) == b"\x88\x02\x03\xe8"


def test_notingSink() -> None:
    """
    L{NotingSink} passes each write on at once, in order, and notes that
    there were some.
    """

    class Below:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.written.append(data)

    below = Below()
    sink = NotingSink(below)
    assert not sink.wrote
    sink.write(b"a")
    assert below.written == [b"a"]
    sink.write(b"b")
    assert below.written == [b"a", b"b"]
    assert sink.wrote


def test_closedLeftAlone(pair: tuple[socket.socket, socket.socket]) -> None:
    """
    A transport that closed during the read (a half-closed one closes at
    once when told to) is not written to: its socket is gone.
    """
    server, client = pair
    protocol, transport = openServer(server)
    readable(client)

    def closeNow(data: bytes) -> None:
        protocol._sink.write(data)
        transport.connectionLost(Failure(ConnectionDone()))

    errors: list[Failure] = []
    protocol._receive = closeNow
    protocol._serverError = errors.append
    protocol.dataReceived(clientFrame(0x1, b"x"))
    transport.reactor.advance(0)
    assert not transport.connected
    assert errors == []
