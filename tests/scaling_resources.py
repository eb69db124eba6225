"""
Resources for the worker and scaling tests, served with C{twistd clws
--resource} (as C{tests.scaling_resources.WhoAmI}, ...): each tells its
client which process it is connected to.
"""

from __future__ import annotations

import json
import os

from txclws import IHub, IWebSocketClient, WebSocketResource
from txclws.demo import ChatResource


class WhoAmI(WebSocketResource):
    """
    Send the serving process's pid on connection, then echo text.
    """

    def clientConnected(self, client: IWebSocketClient) -> None:
        """
        Tell the client the pid.
        """
        client.writeText(str(os.getpid()))

    def receivedText(self, client: IWebSocketClient, message: str) -> None:
        """
        Echo.
        """
        client.writeText(message)


class WorkerChat(ChatResource):
    """
    The demo chat, which first tells each member the pid of the process it
    is connected to: C{{"type": "worker", "pid": N}}.
    """

    def __init__(self, hub: IHub | None = None) -> None:
        super().__init__(hub)

    def clientConnected(self, client: IWebSocketClient) -> None:
        """
        Tell the pid, then join the room.
        """
        client.writeText(json.dumps({"type": "worker", "pid": os.getpid()}))
        super().clientConnected(client)


class ShortChat(ChatResource):
    """
    The demo chat keeping only its last 3 messages: what the history
    tests outrun.
    """

    def __init__(self, hub: IHub | None = None) -> None:
        super().__init__(hub, historySize=3)
