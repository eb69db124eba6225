# -*- test-case-name: tests.test_testing -*-
"""
Helpers for testing WebSocket resources without sockets.

What C{twisted.internet.testing} gives for protocols, for resources: an
L{InMemoryServer} serves resources over L{InMemoryTransport}s with a
C{MemoryReactorClock} for its timeouts, and each L{InMemoryClient} connected
to it speaks the client side of RFC 6455 in memory.  A test sends text,
binary, ping, pong and close frames, reads back the messages the resource
wrote, already decoded, and advances the clock.  Everything runs
synchronously, so the same test works under trial and under pytest::

    from txclws.testing import connect

    def test_echo():
        client = connect(EchoResource(), "/echo")
        client.sendText("hello")
        assert client.readMessages() == ["hello"]
        client.sendClose()
        assert client.closeCode == 1000 and client.disconnected

Several clients of one resource share a server::

    server = InMemoryServer()
    server.register("/chat", ChatResource())
    alice, bob = server.connect("/chat"), server.connect("/chat")

A resource whose callbacks return Deferreds works too: a Deferred that
fires later (on L{InMemoryServer.clock}, or fired by the test) is waited
for as a real server would, and whatever it writes is read by the next
L{InMemoryClient.readMessages}.

Slow, silent and vanishing peers
================================

Each connection's L{InMemoryTransport} behaves as a TCP socket does for
the server: what the server writes waits in a buffer until the client
reads it; past 64 KiB (Twisted's C{FileDescriptor.bufferSize}) the server
is told to pause, and once the client has read everything it is told to
resume, so C{client.bufferedAmount}, C{client.drained()} and the factory's
slow-client policy behave as they do on a real socket.  The kernel's own
socket buffers are not modelled: the client reads straight from the
server's buffer.

By default a client reads everything at once (C{reading=True}).  Made with
C{reading=False} it reads nothing until told to (L{InMemoryClient.readBytes},
L{InMemoryClient.resumeReading}); made with C{reading=N} it reads N bytes
at each L{InMemoryClient.step} and each C{advance()}.  The other way, when
the server stops reading a client (it does while a callback is pending
with the client's next events queued past the factory's C{maxQueuedBytes},
and while its own writes wait),
L{InMemoryClient.serverReading} is False and whatever the client sends
meanwhile waits, to be delivered when the server reads again.

A resource that paces its writes with C{drained()}, and a client that
reads 16 KiB at a time::

    class Download(WebSocketResource):
        def receivedText(self, client, message):
            return ensureDeferred(self.send(client))

        async def send(self, client):
            for _ in range(64):
                client.writeBinary(b"x" * 16384)
                await client.drained()

    def test_paced():
        client = connect(Download(), "/", reading=16384)
        client.sendText("go")
        received = []
        for _ in range(200):
            # the high-water mark, and the write that passed it
            assert client.bufferedAtServer <= 65536 + 16388
            client.step()
            received += client.readMessages()
        assert len(received) == 64

The slow-client policy: broadcasts to a client that does not read, over
C{maxBuffer} for C{slowClientTimeout} seconds, close it with 1008; the
close frame waits behind the messages until the client reads again::

    def test_slowClient():
        server = InMemoryServer(maxBuffer=100_000, slowClientTimeout=10)
        server.register("/feed", WebSocketResource())
        client = server.connect("/feed", reading=False)
        for _ in range(3):
            writeToClientsText([client.protocol], "x" * 60_000)
        server.advance(9.5)
        assert client.bufferedAtServer == 3 * 60_004  # no close frame yet
        server.advance(0.5)
        client.resumeReading()
        assert client.readMessages() == ["x" * 60_000] * 3
        assert client.closeCode == 1008 and client.disconnected

A client can also go away at any moment, even while the server is not
reading it: L{InMemoryClient.vanish} drops the connection as a reset does
(the server's protocol gets C{connectionLost} with C{ConnectionLost} at
once), L{InMemoryClient.shutdownWrite} half-closes it (the server reads
the end of the stream after whatever came before it).

@since: 0.1.0
"""

from __future__ import annotations

from txclws.testing._client import InMemoryClient, InMemoryServer
from txclws.testing._connect import connect
from txclws.testing._transport import InMemoryTransport
from txclws.testing._wire import KEY as KEY
from txclws.testing._wire import MASK as MASK
from txclws.testing._wire import HandshakeRefused, ServerProtocolError
from txclws.testing._wire import Reading as Reading

__all__ = [
    "HandshakeRefused",
    "InMemoryClient",
    "InMemoryServer",
    "InMemoryTransport",
    "ServerProtocolError",
    "connect",
]
