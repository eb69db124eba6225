"""
Tests for L{txclws._factory.WebSocketFactory}: its C{protocol} attribute,
its client registration contract, and the debugger it enters only on
request.
"""

from __future__ import annotations

import subprocess
import sys

from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from tests.conftest import RecordingResource
from tests.test_protocol import PEER, REQUEST, RecordingTransport, makeFactory
from txclws import WebSocketFactory, WebSocketServerProtocol


class Custom(WebSocketServerProtocol):
    """
    A subclass of the front door, as an application may set.
    """


class CustomFactory(WebSocketFactory):
    """
    A factory whose C{protocol} is L{Custom}.
    """

    protocol = Custom


def test_protocolIsAClassAttribute() -> None:
    """
    C{WebSocketFactory.protocol} is a class attribute: a subclass's
    C{protocol = MyProtocol} is what it builds, and it serves.
    """
    assert WebSocketFactory.protocol is WebSocketServerProtocol
    registry = makeFactory(RecordingResource())[0].registry
    factory = CustomFactory(registry, reactor=MemoryReactorClock())
    protocol = factory.buildProtocol(PEER)
    assert type(protocol) is Custom
    transport = RecordingTransport(peerAddress=PEER)
    protocol.makeConnection(transport)
    protocol.dataReceived(REQUEST)
    assert transport.value().startswith(b"HTTP/1.1 101 ")
    assert factory.clients == {protocol}


def test_clientRegistration() -> None:
    """
    A client is in C{clients} from its handshake (C{clientOpened}) until
    its connection is lost (C{clientClosed}).
    """
    factory, _ = makeFactory(RecordingResource(echo=False))
    protocol = factory.buildProtocol(PEER)
    protocol.makeConnection(RecordingTransport(peerAddress=PEER))
    assert factory.clients == set()
    protocol.dataReceived(REQUEST)
    assert factory.clients == {protocol}
    protocol.connectionLost(Failure(ConnectionError("gone")))
    assert factory.clients == set()


def test_pdbNotImported() -> None:
    """
    Importing txclws does not import C{pdb}: only L{debugFailure} does.
    """
    code = "import sys, txclws; print('pdb' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr
