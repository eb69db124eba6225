# -*- test-case-name: tests.test_streaming -*-
"""
Streaming in: a session whose resource provides L{IStreamingResource} is
given each data message as it arrives (C{messageStarted}, C{messageData}
pieces, C{messageEnded}) rather than whole.

The choice is made once, when the session opens (L{_startStreaming}): the
connection's reader is swapped for its streaming one
(L{WebSocketConnection.streamMessages}) and the session's C{_dispatch} for
L{StreamingSession._dispatchStreamed}, so a session that does not stream
pays nothing per message.  The pieces are events like any other, with the
same rules (L{txclws._session.dispatch}): one callback at a time, in order;
a callback's unfired Deferred holds the next pieces (queued, counted
against C{maxQueuedBytes}, reading paused past it) while pings are still
answered at once.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from txclws._core.events import (
    BinaryMessage,
    Event,
    MessageData,
    MessageEnded,
    MessageStarted,
    TextMessage,
)
from txclws._core.frames import Opcode
from txclws._resource import IStreamingResource
from txclws._session.dispatch import DispatchingSession, queuedSize

if TYPE_CHECKING:
    from txclws._resource import IWebSocketResource

__all__ = ["StreamingSession"]


class StreamingSession(DispatchingSession):
    """
    The dispatch of streamed messages to an L{IStreamingResource}.
    """

    def _startStreaming(self, resource: IWebSocketResource) -> None:
        """
        Stream this session's messages if its resource asks for it: before
        the first byte of the peer's is read.
        """
        if not IStreamingResource.providedBy(resource):
            return
        connection = self._connection
        assert connection is not None
        limit = getattr(resource, "maxStreamedMessageSize", None)
        if connection.streamMessages(limit):
            # Chosen once: the whole-message dispatch stays as it is for
            # every other session.
            self._dispatch = self._dispatchStreamed  # type: ignore[method-assign]
        else:
            self._dispatch = self._dispatchWhole  # type: ignore[method-assign]

    def _dispatchStreamed(self, event: Event) -> None:
        """
        Hand one event to a streaming resource, or act on it.
        """
        kind = type(event)  # not narrowed by mypy: see DispatchingSession
        if kind is MessageData:
            if self._dispatching:
                self._call(self._streaming().messageData, None, self, event.data)  # type: ignore[union-attr]
        elif kind is MessageStarted:
            if self._dispatching:
                self._call(
                    self._streaming().messageStarted,
                    None,
                    self,
                    event.opcode,  # type: ignore[union-attr]
                )
        elif kind is MessageEnded:
            if self._dispatching:
                self._call(self._streaming().messageEnded, None, self)
        else:
            DispatchingSession._dispatch(self, event)

    def _dispatchWhole(self, event: Event) -> None:
        """
        A protocol that reads whole messages (hixie-76) streams each as
        one piece: start, data, end, each one event of the queue.
        """
        kind = type(event)
        if kind is TextMessage or kind is BinaryMessage:
            opcode = Opcode.TEXT if kind is TextMessage else Opcode.BINARY
            pieces: list[Event] = [MessageStarted(int(opcode))]
            if event.data:  # type: ignore[union-attr]
                pieces.append(MessageData(event.data))  # type: ignore[union-attr]
            pieces.append(MessageEnded())
            self._dispatchPieces(pieces)
        else:
            self._dispatchStreamed(event)

    def _dispatchPieces(self, pieces: list[Event]) -> None:
        """
        Dispatch C{pieces} in order until a callback pends; the rest go to
        the front of the queue, ahead of what was queued after them.
        """
        for index, piece in enumerate(pieces):
            if self._busy:
                queue = self._queue
                if queue is None:
                    queue = self._queue = deque()
                rest = pieces[index:]
                queue.extendleft(reversed(rest))
                self._queuedBytes += sum(queuedSize(event) for event in rest)
                return
            self._dispatchStreamed(piece)

    def _streaming(self) -> IStreamingResource:
        resource = self._resource
        assert resource is not None
        return resource  # type: ignore[return-value]
