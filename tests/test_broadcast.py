"""
Tests for L{txclws._broadcast}: the declared seams a broadcast reaches its
clients through.
"""

from __future__ import annotations

from typing import Any

import pytest
from zope.interface import implementer

from tests.conftest import RecordingResource
from tests.test_protocol import makeFactory, openClient, serverText
from txclws import (
    ConnectionClosed,
    IWebSocketClient,
    UnsupportedByProtocol,
    writeToClientsBinary,
    writeToClientsText,
)
from txclws._session.session import IFramedWriter, WebSocketSession


@implementer(IWebSocketClient)
class Double:
    """
    An L{IWebSocketClient} that is not an L{IFramedWriter}: it records what
    it is sent, or raises C{refuse}.
    """

    def __init__(self, refuse: Exception | None = None) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.refuse = refuse

    def writeText(self, message: Any, frameSize: int | None = None) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.sent.append(("text", message))

    def writeBinary(self, data: bytes, frameSize: int | None = None) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.sent.append(("binary", data))


def test_sessionIsAFramedWriter() -> None:
    """
    The session declares the fast path broadcasts use.
    """
    assert IFramedWriter.implementedBy(WebSocketSession)


def test_otherClientsGetWrites() -> None:
    """
    Any other L{IWebSocketClient} is sent the message through its own
    C{writeText}/C{writeBinary}, beside sessions framed once; one that is
    closed or cannot carry the message is skipped, not counted.
    """
    factory, _ = makeFactory(RecordingResource(echo=False))
    protocol, transport = openClient(factory)
    double = Double()
    closed = Double(ConnectionClosed("gone"))
    textOnly = Double(UnsupportedByProtocol("no binary"))
    assert writeToClientsText([protocol, double, closed], "hi") == 2
    assert transport.value() == serverText("hi")
    assert double.sent == [("text", b"hi")]
    assert writeToClientsBinary([double, textOnly], b"\x01") == 1
    assert double.sent[-1] == ("binary", b"\x01")


def test_notAClient() -> None:
    """
    Anything that is not an L{IWebSocketClient} is a clear C{TypeError}.
    """
    with pytest.raises(TypeError, match="does not provide IWebSocketClient"):
        writeToClientsText([object()], "hi")
