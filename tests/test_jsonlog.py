"""
Tests for C{twistd clws --json-log FILE} (L{txclws._jsonlog}, issue 17):
a real daemon's JSON log, read back with C{twisted.logger}'s own reader,
has the text log's events with their fields.
"""

from __future__ import annotations

import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from twisted.logger import eventsFromJSONLogFile

from tests._daemon import WAIT, Daemon, connect

ECHO = "/echo=txclws.demo.EchoResource"


def events(path: Path) -> list[dict[str, Any]]:
    """
    Every event of the JSON log at C{path}.
    """
    with open(path, encoding="utf-8") as file:
        return list(eventsFromJSONLogFile(file))


def named(found: list[dict[str, Any]], start: str) -> list[dict[str, Any]]:
    """
    The events whose format starts with C{start}.
    """
    return [e for e in found if str(e.get("log_format", "")).startswith(start)]


def test_jsonLogEvents() -> None:
    """
    An open, a close with its code, reason and duration, and a refusal
    with its status are in the JSON log as fields; after the daemon stops
    every record parses.
    """
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, "clws.json")
        daemon = Daemon(
            "--port",
            "tcp:0:interface=127.0.0.1",
            "--json-log",
            str(path),
            "--resource",
            ECHO,
        )
        try:
            try:
                urllib.request.urlopen(daemon.url("/echo", "http"), timeout=WAIT)
            except urllib.error.HTTPError as error:
                assert error.code == 426
            with connect(daemon.url("/echo"), ping_interval=None) as client:
                client.send("hi")
                assert client.recv(WAIT) == "hi"
                client.close(4001, "bye")
            daemon.waitForLog(r"closed .* code=4001")
        finally:
            daemon.stop()
        found = events(path)
    [opened] = named(found, "open ")
    assert opened["resource"] == "/echo" and opened["version"] == 13
    assert opened["peer"].startswith("127.0.0.1:")
    [closed] = named(found, "closed ")
    assert (closed["code"], closed["reason"]) == (4001, "bye")
    assert 0 <= closed["duration"] < WAIT
    assert closed["peer"] == opened["peer"]
    [refused] = named(found, "refused ")
    assert refused["status"] == 426
    assert named(found, "clws listening on ")
