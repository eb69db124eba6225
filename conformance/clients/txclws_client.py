"""The txclws client as an Autobahn Testsuite agent (wstest -m fuzzingserver).

Usage: txclws_client.py BASE_URL AGENT
(e.g. ws://127.0.0.1:9001 txclws).  Runs every case the fuzzing server
offers: connects to /runCase?case=N&agent=AGENT, echoes every message,
until the server closes; then asks the server to write its reports
(/updateReports).  Prints one line per case and "cases: N" first.  For
the compression groups it offers permessage-deflate, with
client_no_context_takeover for the cases whose server asks for it
(13.2, 13.5-13.7).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from twisted.internet import defer, task
from twisted.internet.defer import Deferred

from txclws import DeflateOffer, HandshakeFailed, WebSocketResource, connectWebSocket

#: The longest a case may take (group 9 moves 16 MiB messages).
CASE_TIMEOUT = 120.0
LIMIT = 64 << 20


class Echo(WebSocketResource):
    """Echo every message; fire C{done} when the connection is gone."""

    def __init__(self) -> None:
        self.done: Deferred[None] = Deferred()
        self.texts: list[str] = []

    def receivedText(self, client: Any, message: str) -> None:
        self.texts.append(message)
        client.writeText(message)

    def receivedBinary(self, client: Any, message: bytes) -> None:
        client.writeBinary(message)

    def clientDisconnected(self, client: Any) -> None:
        self.done.callback(None)


class Reader(Echo):
    """Keep the server's text messages, echo nothing."""

    def receivedText(self, client: Any, message: str) -> None:
        self.texts.append(message)


def offerFor(caseId: str) -> DeflateOffer | None:
    group = caseId.split(".")[:2]
    if group[0] == "12" or (group[0] == "13" and group[1] in ("1", "3", "4")):
        return DeflateOffer()
    if group[0] == "13":
        return DeflateOffer(clientNoContextTakeover=True)
    return None


async def session(reactor: Any, url: str, resource: Echo, **options: Any) -> None:
    try:
        client = await connectWebSocket(
            reactor,
            url,
            resource,
            maxMessageSize=LIMIT,
            maxFrameSize=LIMIT,
            closeTimeout=2,
            **options,
        )
    except HandshakeFailed as failure:
        print(f"  handshake failed: {failure}", flush=True)
        return
    try:
        await resource.done.addTimeout(CASE_TIMEOUT, reactor)
    except defer.TimeoutError:
        print("  timed out: dropping the connection", flush=True)
        client.abort()


async def text(reactor: Any, url: str) -> str:
    reader = Reader()
    await session(reactor, url, reader)
    return reader.texts[0]


async def main(reactor: Any, base: str, agent: str) -> None:
    count = int(await text(reactor, f"{base}/getCaseCount"))
    print(f"cases: {count}", flush=True)
    for number in range(1, count + 1):
        info = json.loads(await text(reactor, f"{base}/getCaseInfo?case={number}"))
        caseId = info["id"]
        print(f"case {number}/{count}: {caseId}", flush=True)
        offer = offerFor(caseId)
        await session(
            reactor,
            f"{base}/runCase?case={number}&agent={agent}",
            Echo(),
            deflate=offer,
        )
    await session(reactor, f"{base}/updateReports?agent={agent}", Reader())
    print("reports updated", flush=True)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, *sys.argv[1:3])))
