"""
A real browser: headless Chromium loads the demo page from the daemon, and
the page exchanges echo and chat messages by itself (C{?selftest=1}); and
the chat reconnects losing nothing when its daemon restarts.

Chromium is driven over the DevTools protocol (its own WebSocket, spoken
here with the C{websockets} client): C{--dump-dom} prints the page as soon
as it has loaded, before any WebSocket message can arrive, so it cannot
show the exchange.  The page's C{#selftest} element is polled until the
self-test passes or fails, and a screenshot is saved.

Needs Debian's C{chromium}: when it is missing and the tests run as root on
a machine with apt, they install it (L{findChromium}); otherwise they fail,
they never skip.  Set
C{TXCLWS_SCREENSHOTS=DIR} to keep the screenshots.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection

from tests._daemon import WAIT, Daemon, connect
from tests._debian import findOrInstall
from tests._redis import RedisServer, freePort
from tests.test_tls import makeCertificate

LOCAL = "tcp:0:interface=127.0.0.1"

#: The flags the browser runs with: headless, and nothing it would fetch or
#: do on its own.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--hide-scrollbars",
]


#: Debian's packages for the browser test: the browser, and a font so that
#: the screenshot shows text.
CHROMIUM_PACKAGES = ["chromium", "fonts-dejavu-core"]


def findChromium() -> str:
    """
    The Chromium executable, installed first if need be (see
    L{findOrInstall}).
    """
    return findOrInstall(
        ("chromium", "chromium-browser", "/usr/bin/chromium"), CHROMIUM_PACKAGES
    )


class Browser:
    """
    A headless Chromium with one page, driven over the DevTools protocol.
    """

    def __init__(self, *extraFlags: str) -> None:
        self.profile = tempfile.TemporaryDirectory(prefix="clws-chromium-")
        self.process = subprocess.Popen(
            [
                findChromium(),
                *CHROMIUM_FLAGS,
                *extraFlags,
                f"--user-data-dir={self.profile.name}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._ids = itertools.count(1)
        self._stack = ExitStack()
        self.console: list[str] = []
        try:
            url = self._pageDebuggerUrl()
            self.devtools = self._stack.enter_context(connect(url, max_size=None))
            self.call("Runtime.enable")
            self.call("Page.enable")
            self.call(
                "Emulation.setDeviceMetricsOverride",
                width=1100,
                height=700,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.close()
            raise

    def _pageDebuggerUrl(self) -> str:
        portFile = Path(self.profile.name, "DevToolsActivePort")
        deadline = time.monotonic() + WAIT
        while not (portFile.exists() and "\n" in portFile.read_text()):
            if self.process.poll() is not None:
                pytest.fail(f"chromium exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                pytest.fail("chromium did not open its DevTools port")
            time.sleep(0.05)
        port = portFile.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as reply:
            targets = json.load(reply)
        return next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"]

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """
        Run a DevTools command and return its result; note console messages
        and uncaught exceptions that arrive meanwhile.
        """
        devtools: ClientConnection = self.devtools
        callId = next(self._ids)
        devtools.send(json.dumps({"id": callId, "method": method, "params": params}))
        while True:
            message = json.loads(devtools.recv(WAIT))
            if message.get("id") == callId:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        params = message.get("params", {})
        if message.get("method") == "Runtime.consoleAPICalled":
            texts = [str(arg.get("value", "")) for arg in params.get("args", [])]
            self.console.append(f"{params.get('type')}: {' '.join(texts)}")
        elif message.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console.append(f"exception: {details.get('text')}")

    def evaluate(self, expression: str) -> Any:
        """
        The value of a JavaScript expression in the page.
        """
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True
        )
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        """
        The page as a PNG.
        """
        return base64.b64decode(self.call("Page.captureScreenshot")["data"])

    def close(self) -> None:
        """
        Quit the browser and remove its profile.
        """
        self._stack.close()
        self.process.terminate()
        try:
            self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(WAIT)
        # Chromium's helper processes (crash handler, renderers) outlive
        # the main one by a moment and may still write into the profile:
        # removing it can meet a directory that is not empty yet.
        for attempt in range(20):
            try:
                self.profile.cleanup()
                return
            except OSError:
                if attempt == 19:
                    raise
                time.sleep(0.25)


SELFTEST = """
(() => {
  const out = document.getElementById("selftest");
  return out ? [out.dataset.status, out.textContent] : ["missing", ""];
})()
"""


def runSelfTest(browser: Browser, url: str) -> tuple[str, str]:
    """
    Load the demo page with C{?selftest=1} and wait for its verdict.

    @return: C{(status, text)} of the page's C{#selftest} element.
    """
    browser.call("Page.navigate", url=url + "?selftest=1")
    deadline = time.monotonic() + WAIT
    status, text = "idle", ""
    while time.monotonic() < deadline:
        status, text = browser.evaluate(SELFTEST) or ("missing", "")
        if status in ("pass", "fail"):
            break
        time.sleep(0.1)
    return status, text


def keepScreenshot(png: bytes, name: str) -> None:
    """
    Save a screenshot in C{$TXCLWS_SCREENSHOTS}, if set.
    """
    directory = os.environ.get("TXCLWS_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        Path(directory, name).write_bytes(png)


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    """
    The demo daemon.
    """
    with Daemon("--port", "tcp:0:interface=127.0.0.1") as running:
        yield running


def test_demoPageInBrowser(daemon: Daemon) -> None:
    """
    Loaded in Chromium, the demo page echoes a message and chats between
    two members (join, messages both ways, leave), showing it all, with no
    script error.
    """
    browser = Browser()
    try:
        status, text = runSelfTest(browser, daemon.url("/", "http"))
        png = browser.screenshot()
        keepScreenshot(png, "demo-ws.png")
        echoLog = browser.evaluate("document.getElementById('echo-log').innerText")
        chatLog = browser.evaluate("document.getElementById('chat-log').innerText")
        assert (status, text) == ("pass", "self-test passed: echo, chat"), (
            text,
            browser.console,
            daemon.log(),
        )
        assert echoLog.count("echo ") == 2  # sent, and echoed
        for line in (
            "alice joined",
            "bob joined",
            "bob: hi",
            "alice: hello",
            "bob left",
        ):
            assert line in chatLog
        assert not [m for m in browser.console if m.startswith("exception")]
        assert png.startswith(b"\x89PNG") and len(png) > 10000
    finally:
        browser.close()
    daemon.waitForLog(r"open 127\.0\.0\.1:\d+ /echo version=13")
    daemon.waitForLog(r"open 127\.0\.0\.1:\d+ /chat version=13", count=2)


def test_demoPageInBrowserOverTLS(tmp_path: Path) -> None:
    """
    Served over HTTPS, the page uses C{wss://} and its self-test passes.
    """
    cert, key = makeCertificate(tmp_path)
    port = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    with Daemon("--port", port) as tlsDaemon:
        browser = Browser("--ignore-certificate-errors")
        try:
            status, text = runSelfTest(browser, tlsDaemon.url("/", "https"))
            keepScreenshot(browser.screenshot(), "demo-wss.png")
            url = browser.evaluate("document.getElementById('echo-url').textContent")
            assert url == f"wss://localhost:{tlsDaemon.port}/echo"
            assert status == "pass", (text, browser.console, tlsDaemon.log())
        finally:
            browser.close()


CHAT_LOG = "document.getElementById('chat-log').innerText"


def waitInPage(browser: Browser, expression: str, what: str) -> Any:
    """
    Poll a JavaScript expression until it is truthy, for up to L{WAIT}.
    """
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = browser.evaluate(expression)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {browser.evaluate(CHAT_LOG)}")


def test_chatReconnectsLosingNothing() -> None:
    """
    A tab in the chat, on a daemon sharing a Redis hub with another: that
    daemon is restarted on the same port while a member on the other
    keeps writing; the tab's WebSocket drops, the page reconnects with
    C{?since=} and shows every message once, the missed ones included,
    and the members present.
    """
    redis = RedisServer()
    redis.start()
    port = freePort()
    description = f"tcp:{port}:interface=127.0.0.1"
    browser = Browser()
    try:
        with Daemon("--port", LOCAL, "--hub", redis.url()) as other:
            tabDaemon = Daemon("--port", description, "--hub", redis.url())
            try:
                browser.call("Page.navigate", url=tabDaemon.url("/", "http"))
                waitInPage(browser, "typeof joinChat === 'function'", "the page")
                browser.evaluate("joinChat('tab')")
                waitInPage(browser, "room.name === 'tab'", "the welcome")
                with connect(other.url("/chat?name=writer")) as writer:
                    waitInPage(browser, f"{CHAT_LOG}.includes('writer joined')", "join")
                    for number in range(1, 4):
                        writer.send(f"note {number}")
                    waitInPage(browser, f"{CHAT_LOG}.includes('note 3')", "note 3")
                    tabDaemon.stop()
                    for number in range(4, 9):
                        writer.send(f"note {number}")
                    tabDaemon = Daemon("--port", description, "--hub", redis.url())
                    waitInPage(browser, "room.reconnects > 0", "a reconnection")
                    waitInPage(browser, f"{CHAT_LOG}.includes('note 8')", "note 8")
                    writer.send("note 9")
                    waitInPage(browser, f"{CHAT_LOG}.includes('note 9')", "note 9")
                    log = browser.evaluate(CHAT_LOG)
                    members = browser.evaluate(
                        "document.getElementById('chat-members').textContent"
                    )
                keepScreenshot(browser.screenshot(), "demo-reconnect.png")
            finally:
                tabDaemon.stop()
        notes = [line for line in log.splitlines() if line.startswith("writer: ")]
        assert notes == [f"writer: note {n}" for n in range(1, 10)], log
        assert "no longer kept" not in log
        assert sorted(members.split(", ")) == ["tab", "writer"]
        assert not [m for m in browser.console if m.startswith("exception")]
    finally:
        browser.close()
        redis.close()
