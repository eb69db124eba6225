"""
Tests for L{txclws._session.flow} and L{txclws._session.stream}: the buffered
amount read from Twisted's transports, and L{DrainWaiters}.

L{bufferedBytes} reads attributes private to Twisted, so these tests use
Twisted's own classes (a C{FileDescriptor} on a L{MemoryReactor}, a real
C{TLSMemoryBIOProtocol}) rather than look-alikes: if Twisted renames what
it reads, they fail.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.abstract import FileDescriptor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import CertificateOptions
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from txclws import ConnectionClosed
from txclws._session.flow import DrainWaiters
from txclws._session.stream import bufferedBytes


class KernelSocket(FileDescriptor):
    """
    Twisted's buffering C{FileDescriptor} with a kernel that accepts at
    most C{accept} bytes per C{doWrite}.
    """

    def __init__(self) -> None:
        super().__init__(MemoryReactor())
        self.connected = True
        self.accept = 0
        self.sent = b""

    def writeSomeData(self, data: bytes) -> int:
        taken = bytes(data[: self.accept])
        self.sent += taken
        return len(taken)


def test_fileDescriptorBuffer() -> None:
    """
    On Twisted's C{FileDescriptor} (what TCP and UNIX transports are),
    L{bufferedBytes} counts every byte written and not yet accepted by the
    kernel, in both of its buffers: the list of recent writes and the
    bytes partly written.
    """
    transport = KernelSocket()
    assert bufferedBytes(transport) == 0
    transport.write(b"a" * 1000)
    transport.write(b"b" * 500)
    assert bufferedBytes(transport) == 1500
    transport.accept = 300
    transport.doWrite()  # joins the list into the bytes buffer, sends 300
    assert transport.sent == b"a" * 300
    assert bufferedBytes(transport) == 1200
    transport.write(b"c" * 50)  # lands in the list again
    assert bufferedBytes(transport) == 1250
    transport.accept = 10**6
    transport.doWrite()
    assert bufferedBytes(transport) == 0
    assert len(transport.sent) == 1550


def test_stringTransport() -> None:
    """
    A transport without Twisted's buffers (L{StringTransport} keeps what is
    written, but never "unsent") counts as empty, whatever it holds.
    """
    transport = StringTransport()
    transport.write(b"x" * 100000)
    assert bufferedBytes(transport) == 0
    assert bufferedBytes(None) == 0


def test_throughTLS() -> None:
    """
    Through a real C{TLSMemoryBIOProtocol}: cleartext written before the
    TLS handshake is done waits in its C{_appSendBuffer} and is counted,
    and so is the ciphertext waiting in the TCP transport below, once: the
    wrapper forwards C{dataBuffer} to that transport, and reading it there
    too counted the TCP buffer twice.
    """
    tlsFactory = TLSMemoryBIOFactory(
        CertificateOptions(),
        isClient=True,
        wrappedFactory=Factory.forProtocol(Protocol),
        clock=Clock(),
    )
    tls = tlsFactory.buildProtocol(None)
    below = KernelSocket()
    tls.makeConnection(below)
    hello = bufferedBytes(below)
    assert hello > 0  # the ClientHello, waiting in the TCP buffer
    assert bufferedBytes(tls) == hello
    tls.write(b"q" * 70000)  # past the small-write aggregator: no handshake yet
    assert bufferedBytes(tls) == hello + 70000


def test_drainWaitersFireInOrder() -> None:
    """
    L{DrainWaiters.fire} fires every waiter so far, in the order they
    began waiting, with L{None}; a waiter added meanwhile waits for the
    next L{DrainWaiters.fire}.
    """
    waiters = DrainWaiters()
    order: list[Any] = []
    late: list[Deferred[None]] = []
    first, second = waiters.wait(), waiters.wait()
    first.addCallback(lambda result: order.append(("first", result)))
    first.addCallback(lambda _: late.append(waiters.wait()))
    second.addCallback(lambda result: order.append(("second", result)))
    waiters.fire()
    assert order == [("first", None), ("second", None)]
    assert not late[0].called
    waiters.fire()
    assert late[0].called
    waiters.fire()  # nobody waits: nothing happens


def test_drainWaitersFail() -> None:
    """
    L{DrainWaiters.fail} fails every waiter with the failure given, and
    forgets them: a later L{DrainWaiters.fire} does not fire them twice.
    """
    waiters = DrainWaiters()
    results: list[Any] = []
    for _ in range(2):
        waiters.wait().addErrback(results.append)
    waiters.fail(Failure(ConnectionClosed("gone")))
    assert [failure.type for failure in results] == [ConnectionClosed] * 2
    waiters.fire()
    assert len(results) == 2


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_wrappersWalked(depth: int) -> None:
    """
    Protocol wrappers (C{twisted.protocols.policies.ProtocolWrapper}, which
    forwards unknown attributes to its transport) are walked down to the
    buffering transport, and its buffer counted once.
    """
    bottom = KernelSocket()
    top: Any = bottom
    for _ in range(depth):
        wrapper = ProtocolWrapper(WrappingFactory(Factory()), Protocol())
        wrapper.makeConnection(top)
        top = wrapper
    top.write(b"z" * 42)
    assert bufferedBytes(bottom) == 42
    assert bufferedBytes(top) == 42
