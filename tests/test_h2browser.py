"""
A real browser over HTTP/2: headless Chromium loads the demo page from the
daemon on an C{ssl:} port, and its echo and chat WebSockets run as RFC
8441 streams on the page's HTTP/2 connection.

Proved from both ends: the daemon logs the connection's ALPN protocol and,
when it closes, how many streams and WebSockets it carried, and each
WebSocket's open line names the same peer (the same TCP connection); and
Chromium's own net log (C{--log-net-log}) shows the extended CONNECT
(C{:protocol: websocket}) sent on its HTTP/2 session.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests._daemon import Daemon
from tests.test_browser import Browser, runSelfTest
from tests.test_tls import makeCertificate


def test_demoPageOverHTTP2(tmp_path: Path) -> None:
    """
    The demo page's self-test (echo, chat) passes with the page and its
    three WebSockets on one HTTP/2 connection.
    """
    cert, key = makeCertificate(tmp_path)
    netLog = tmp_path / "netlog.json"
    port = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    with Daemon("--port", port) as daemon:
        browser = Browser("--ignore-certificate-errors", f"--log-net-log={netLog}")
        try:
            status, text = runSelfTest(browser, daemon.url("/", "https"))
            assert status == "pass", (text, browser.console, daemon.log())
        finally:
            browser.close()
        (line,) = daemon.waitForLog(r"http2 127\.0\.0\.1:\d+ h2$")
        peer = re.search(r"http2 (127\.0\.0\.1:\d+) h2", line).group(1)  # type: ignore[union-attr]
        closed = daemon.waitForLog(rf"http2 {peer} closed: ")[0]
        streams, websockets = map(
            int, re.findall(r"(\d+) (?:streams|websockets)", closed)
        )
        # The page, and the echo and the chat's two members.
        assert websockets == 3 and streams > websockets, closed
        for resource, count in (("/echo", 1), ("/chat", 2)):
            daemon.waitForLog(rf"open {peer} {resource} version=13", count=count)
    log = netLog.read_text(encoding="utf-8", errors="replace")
    assert "HTTP2_SESSION" in log
    assert log.count(":protocol: websocket") >= 3
