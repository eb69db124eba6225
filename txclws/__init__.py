# -*- test-case-name: tests.test_public -*-
"""
txclws: a WebSocket server (and client) for Twisted, modelled on CLWS.

Implement L{IWebSocketResource} (or subclass L{WebSocketResource}), register
it at a path with an origin policy, and serve it with L{runServer} or a
L{WebSocketFactory} on any Twisted endpoint.
"""

from txclws._allocator import AllocatorTuning, tuneAllocatorForMessages
from txclws._broadcast import writeToClientsBinary, writeToClientsText
from txclws._client.connect import connectWebSocket, connectWebSocketEndpoint
from txclws._client.protocol import WebSocketClientProtocol
from txclws._core.clientdeflate import DeflateOffer
from txclws._core.deflate import PerMessageDeflate
from txclws._core.errors import (
    ConnectionClosed,
    HandshakeError,
    HandshakeFailed,
    InvalidFrame,
    InvalidPayload,
    MessageTooBig,
    UnsupportedByProtocol,
    WebSocketError,
    WebSocketProtocolError,
)
from txclws._core.frames import CloseCode, Opcode
from txclws._core.origin import OriginCheck, anyOrigin, originExact, originPrefix
from txclws._factory import DEFAULT_BACKLOG, WebSocketFactory, runServer
from txclws._history import History, HistoryPolicy, KeptMessage, positionKey
from txclws._hubinterface import HubUnavailable, IHub
from txclws._localhub import LocalHub
from txclws._pipe import MessagePipe
from txclws._presence import Member, PresenceChange
from txclws._protocol import WebSocketServerProtocol
from txclws._ratelimit import RateLimit
from txclws._registry import (
    ResourceRegistry,
    findGlobalResource,
    globalResources,
    registerGlobalResource,
)
from txclws._resource import (
    REJECT,
    IStreamingClient,
    IStreamingResource,
    IWebSocketClient,
    IWebSocketResource,
    WebSocketResource,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BACKLOG",
    "REJECT",
    "AllocatorTuning",
    "CloseCode",
    "ConnectionClosed",
    "DeflateOffer",
    "HandshakeError",
    "HandshakeFailed",
    "History",
    "HistoryPolicy",
    "HubUnavailable",
    "IHub",
    "IStreamingClient",
    "IStreamingResource",
    "IWebSocketClient",
    "IWebSocketResource",
    "InvalidFrame",
    "InvalidPayload",
    "KeptMessage",
    "LocalHub",
    "Member",
    "MessagePipe",
    "MessageTooBig",
    "Opcode",
    "OriginCheck",
    "PerMessageDeflate",
    "PresenceChange",
    "RateLimit",
    "ResourceRegistry",
    "UnsupportedByProtocol",
    "WebSocketClientProtocol",
    "WebSocketError",
    "WebSocketFactory",
    "WebSocketProtocolError",
    "WebSocketResource",
    "WebSocketServerProtocol",
    "anyOrigin",
    "connectWebSocket",
    "connectWebSocketEndpoint",
    "findGlobalResource",
    "globalResources",
    "originExact",
    "originPrefix",
    "positionKey",
    "registerGlobalResource",
    "runServer",
    "tuneAllocatorForMessages",
    "writeToClientsBinary",
    "writeToClientsText",
]
