"""
Resources for C{twistd clws --resource}, named from the tests as
C{tests.clws_resources.Shout}.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from txclws import IWebSocketClient, WebSocketResource


class Shout(WebSocketResource):
    """
    Answer each text message in capitals, with the path it was sent to.
    """

    def receivedText(self, client: IWebSocketClient, message: str) -> None:
        """
        Shout the message back.
        """
        client.writeText(f"{client.resourceName}: {message.upper()}")


class NotAResource:
    """
    A class that does not provide C{IWebSocketResource}.
    """


def broken() -> None:
    """
    A factory that fails.
    """
    raise RuntimeError("cannot build")


class Rooms(WebSocketResource):
    """
    Answer each text message with C{rooms: MESSAGE}: which resource served
    a path is visible to the client (the routing cases of the hostile suite).
    """

    tag = "rooms"

    def receivedText(self, client: IWebSocketClient, message: str) -> None:
        """
        Echo the message, tagged with this resource's name.
        """
        client.writeText(f"{self.tag}: {message}")


class MainRoom(Rooms):
    """
    As L{Rooms}, tagged C{main}: mounted at C{/rooms/main} beside L{Rooms}.
    """

    tag = "main"


class Stall(WebSocketResource):
    """
    A callback that never finishes: each text message's Deferred is kept
    and never fired, so the server pauses reading from that client for
    good (ordered dispatch).
    """

    def __init__(self) -> None:
        self.pending: list[Deferred[None]] = []

    def receivedText(self, client: IWebSocketClient, message: str) -> Deferred[None]:
        """
        Never finish handling C{message}.
        """
        self.pending.append(Deferred())
        return self.pending[-1]


class Flood(WebSocketResource):
    """
    Answer a text message C{N} with C{N} binary messages of 1 MiB each (16
    for anything that is not a number): a large reply the client may never
    read.
    """

    def receivedText(self, client: IWebSocketClient, message: str) -> None:
        """
        Write the reply.
        """
        count = int(message) if message.isdigit() else 16
        chunk = b"\x00" * (1 << 20)
        for _ in range(min(count, 64)):
            client.writeBinary(chunk)


class Whoami(WebSocketResource):
    """
    Answer each text message with C{HOST PORT}: the client's address as the
    server sees it (behind a PROXY header or a trusted proxy's headers).
    """

    def receivedText(self, client: IWebSocketClient, message: str) -> None:
        """
        Tell the client its address.
        """
        client.writeText(f"{client.host} {client.port}")
