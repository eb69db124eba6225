"""
Benchmark server: picows (Cython WebSocket frames on asyncio).  See
_common.py for what it serves.  picows hands over frames, not messages:
the echo sends a one-frame message straight back and joins a fragmented
one first.  It has no permessage-deflate, so it sits out the deflate
workload.
"""

from __future__ import annotations

import asyncio

from _common import (
    MAX_SIZE,
    announce,
    parseArgs,
    parseCommand,
    raiseFileLimit,
    sslContext,
)
from picows import WSListener, WSMsgType, ws_create_server


class Echo(WSListener):
    """
    Send every message back, joining the frames of a fragmented one.
    """

    def __init__(self):
        self.pending = None
        self.kind = None

    def on_ws_frame(self, transport, frame):
        kind = frame.msg_type
        if kind == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
            return
        if kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if kind in (WSMsgType.TEXT, WSMsgType.BINARY) and frame.fin:
            transport.send(kind, frame.get_payload_as_memoryview())
            return
        if kind != WSMsgType.CONTINUATION:
            self.kind, self.pending = kind, bytearray()
        self.pending += frame.get_payload_as_memoryview()
        if frame.fin:
            transport.send(self.kind, self.pending)
            self.pending = None


class Broadcast(WSListener):
    """
    Keep the clients; a text command sends to all of them in a loop
    (picows has no broadcast API).
    """

    def __init__(self, subscribers):
        self.subscribers = subscribers

    def on_ws_connected(self, transport):
        self.subscribers.add(transport)

    def on_ws_disconnected(self, transport):
        self.subscribers.discard(transport)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type != WSMsgType.TEXT:
            return
        _mode, count, text, perTurn = parseCommand(frame.get_payload_as_ascii_text())
        data = text.encode()
        loop = asyncio.get_running_loop()

        def turn(left):
            for _ in range(min(left, perTurn)):
                for each in self.subscribers:
                    each.send(WSMsgType.TEXT, data)
            if left > perTurn:
                loop.call_soon(turn, left - perTurn)

        turn(count)


async def main():
    args = parseArgs(__doc__.strip().splitlines()[0])
    raiseFileLimit()
    subscribers = set()

    def route(request):
        if request.path == b"/bcast":
            return Broadcast(subscribers)
        return Echo()

    server = await ws_create_server(
        route,
        args.host,
        args.port,
        max_frame_size=MAX_SIZE,
        backlog=1024,
        ssl=sslContext(args),
    )
    announce(server.sockets[0].getsockname()[1])
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
