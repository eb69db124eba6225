"""
Benchmark server: websockets' asyncio implementation (with its C
speedups for masking).  See _common.py for what it serves.
"""

from __future__ import annotations

import asyncio
import logging

from _common import (
    BACKLOG,
    MAX_SIZE,
    announce,
    parseArgs,
    parseCommand,
    raiseFileLimit,
    sslContext,
)
from websockets.asyncio.server import broadcast, serve


async def echo(connection):
    async for message in connection:
        await connection.send(message)


async def bcast(connection, subscribers):
    subscribers.add(connection)
    try:
        async for message in connection:
            mode, count, text, perTurn = parseCommand(message)
            for sent in range(1, count + 1):
                if mode == "fanout":
                    broadcast(subscribers, text)
                else:
                    for each in list(subscribers):
                        await each.send(text)
                if sent % perTurn == 0:
                    await asyncio.sleep(0)
    finally:
        subscribers.discard(connection)


async def main():
    args = parseArgs(__doc__.strip().splitlines()[0])
    raiseFileLimit()
    logging.basicConfig(level=logging.WARNING)
    subscribers = set()

    async def route(connection):
        if connection.request.path == "/bcast":
            await bcast(connection, subscribers)
        else:
            await echo(connection)

    async with serve(
        route,
        args.host,
        args.port,
        max_size=MAX_SIZE,
        ping_interval=None,
        compression="deflate" if args.deflate else None,
        backlog=BACKLOG,
        ssl=sslContext(args),
    ) as server:
        announce(server.sockets[0].getsockname()[1])
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
