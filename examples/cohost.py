"""
A twisted.web application and its WebSockets on one port: the app's pages
and JSON API are ordinary twisted.web resources, and txclws resources are
mounted beside them with WebSocketUpgradeResource, all served by a
WebSocketSite: the txclws front door reads each connection's first request
head with the factory's limits and hands page requests to twisted.web.

    python examples/cohost.py [PORT]

Then open http://localhost:8080/ (the page shows the server's clock ticking
over ws://localhost:8080/ticks), GET http://localhost:8080/api/time, or
connect any WebSocket client to ws://localhost:8080/echo.
"""

import json
import sys
import time

from twisted.internet import reactor, task
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.web.resource import Resource

from txclws import WebSocketResource, originPrefix, writeToClientsText
from txclws.demo import EchoResource
from txclws.web import WebSocketSite, WebSocketUpgradeResource

PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>co-hosted</title>
<h1>Server time: <span id="now">...</span></h1>
<script>
  const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ticks");
  ws.onmessage = (e) => {
    document.getElementById("now").textContent = JSON.parse(e.data).time;
  };
</script>
"""


class Page(Resource):
    """The application's page."""

    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        return PAGE


class TimeAPI(Resource):
    """A JSON endpoint of the application."""

    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"application/json")
        return json.dumps({"time": time.strftime("%H:%M:%S")}).encode()


class TicksResource(WebSocketResource):
    """Send the time to every connected client once a second."""

    def __init__(self):
        self.clients = set()
        self.ticker = task.LoopingCall(self.tick)

    def clientConnected(self, client):
        self.clients.add(client)
        if not self.ticker.running:
            self.ticker.start(1.0)

    def clientDisconnected(self, client):
        self.clients.discard(client)
        if not self.clients:
            self.ticker.stop()

    def tick(self):
        writeToClientsText(
            self.clients, json.dumps({"time": time.strftime("%H:%M:%S")})
        )


def makeSite() -> WebSocketSite:
    """The application's site: pages, API and WebSockets."""
    local = originPrefix("http://localhost", "http://127.0.0.1")
    root = Resource()
    root.putChild(b"", Page())
    api = Resource()
    api.putChild(b"time", TimeAPI())
    root.putChild(b"api", api)
    root.putChild(b"ticks", WebSocketUpgradeResource(TicksResource(), local))
    root.putChild(b"echo", WebSocketUpgradeResource(EchoResource(), local))
    return WebSocketSite(root)


def main(port: int = 8080) -> None:
    """Serve the site until interrupted."""
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    reactor.listenTCP(port, makeSite())
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8080)
