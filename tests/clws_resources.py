"""
Resources for C{twistd clws --resource}, named from the tests as
C{tests.clws_resources.Shout}.
"""

from __future__ import annotations

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
