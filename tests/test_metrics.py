"""
Tests for the Prometheus metrics (L{txclws._metrics}, issue 17): real
C{twistd clws --metrics} daemons, one process and two workers, driven by
scripted traffic and scraped with C{prometheus-client}'s own parser, with
the counts checked exactly.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import ClientConnection

from tests._daemon import WAIT, Daemon, connect
from tests.test_workers import TRIES, reach, startPool, whoami, workerPids
from txclws import WebSocketFactory
from txclws._metricsdaemon import ON_SITE, metricsArgument

#: Every daemon here listens on a loopback port the kernel picks.
LOOPBACK = ("--port", "tcp:0:interface=127.0.0.1")

ECHO = "/echo=txclws.demo.EchoResource"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """
    GET C{url} and parse it as Prometheus text: every sample, by name and
    labels.
    """
    with urllib.request.urlopen(url, timeout=WAIT) as response:
        assert response.status == 200
        text = response.read().decode("utf-8")
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """
    One sample's value; 0 if it was never counted.
    """
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def refuseOnce(port: int) -> None:
    """
    A plain HTTP GET of the WebSocket path: refused 426.
    """
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/echo", timeout=WAIT)
    except urllib.error.HTTPError as error:
        assert error.code == 426
    else:
        raise AssertionError("not refused")


def echoThree(url: str) -> None:
    """
    Three text messages of 1, 2 and 3 bytes echoed, then a 1000 close: 32
    bytes in (each client frame 6 bytes of header and mask, the close 8)
    and 16 out (2 bytes of header each, the close 4).
    """
    with connect(url, ping_interval=None) as client:
        for text in ("a", "bb", "ccc"):
            client.send(text)
            assert client.recv(WAIT) == text


def test_metricsOnSite() -> None:
    """
    C{--metrics} alone serves C{/metrics} on the daemon's port; after one
    refused handshake and one client that echoes three messages and
    closes, every count is exact.
    """
    with Daemon(*LOOPBACK, "--metrics", "--resource", ECHO) as daemon:
        refuseOnce(daemon.port)
        echoThree(daemon.url("/echo"))
        daemon.waitForLog(r"closed .* code=1000")
        samples = scrape(f"http://127.0.0.1:{daemon.port}/metrics")
    assert value(samples, "txclws_handshakes_total", status="101") == 1
    assert value(samples, "txclws_handshakes_total", status="426") == 1
    assert value(samples, "txclws_messages_received_total") == 3
    assert value(samples, "txclws_messages_sent_total") == 3
    assert value(samples, "txclws_received_bytes_total") == 32
    assert value(samples, "txclws_sent_bytes_total") == 16
    assert value(samples, "txclws_closes_sent_total", code="1000") == 1
    assert value(samples, "txclws_closes_total", code="1000") == 1
    assert value(samples, "txclws_connections", resource="/echo", version="13") == 0
    assert value(samples, "txclws_callback_seconds_count") == 3
    assert value(samples, "txclws_write_buffer_bytes") == 0


def test_metricsOwnPort() -> None:
    """
    C{--metrics tcp:0:interface=127.0.0.1} serves the metrics on a port of
    their own (logged), with an open client counted in its gauge.
    """
    with Daemon(
        *LOOPBACK, "--metrics", "tcp:0:interface=127.0.0.1", "--resource", ECHO
    ) as daemon:
        line = daemon.waitForLog(r"clws metrics at ")[0]
        match = re.search(r"http://[\d.]+:(\d+)/metrics", line)
        assert match is not None
        url = f"http://127.0.0.1:{match.group(1)}/metrics"
        with connect(daemon.url("/echo"), ping_interval=None) as client:
            client.send("x")
            assert client.recv(WAIT) == "x"
            samples = scrape(url)
            gauge = value(samples, "txclws_connections", resource="/echo", version="13")
            assert gauge == 1
        assert value(samples, "txclws_messages_received_total") == 1


def test_metricsWorkersAggregated() -> None:
    """
    With C{--workers 2}, a scrape through either worker sums both: one
    client held on each worker, each sent its worker's pid, counts as two
    open connections and as many handshakes and messages as were made.
    """
    with startPool(LOOPBACK[1], extra=("--metrics",)) as daemon:
        pids = set(workerPids(daemon).values())
        held: dict[int, ClientConnection] = {}
        opened = 0
        try:
            while set(held) != pids and opened < TRIES:
                pid, client = whoami(daemon.url("/whoami"))
                opened += 1
                if pid in held:
                    client.close()
                else:
                    held[pid] = client
            assert set(held) == pids
            daemon.waitForLog(r"open 127\.0\.0\.1:\d+ /whoami", count=opened)
            daemon.waitForLog(r"closed .*/whoami", count=opened - 2)
            samples = scrape(f"http://127.0.0.1:{daemon.port}/metrics")
        finally:
            for client in held.values():
                client.close()
    assert value(samples, "txclws_handshakes_total", status="101") == opened
    assert value(samples, "txclws_messages_sent_total") == opened
    gauge = value(samples, "txclws_connections", resource="/whoami", version="13")
    assert gauge == 2
    assert value(samples, "txclws_closes_total", code="1000") == opened - 2


def test_optionalValue() -> None:
    """
    C{--metrics} with no value (last, or before another option) means the
    daemon's own site; with a value, that endpoint.
    """
    assert metricsArgument(["--metrics"]) == ["--metrics", ON_SITE]
    assert metricsArgument(["--metrics", "--port", "1"]) == [
        "--metrics",
        ON_SITE,
        "--port",
        "1",
    ]
    assert metricsArgument(["--metrics", "tcp:9100"]) == ["--metrics", "tcp:9100"]


def test_offByDefault() -> None:
    """
    A factory counts nothing unless given metrics: its C{metrics} is None.
    """
    assert WebSocketFactory(reactor=object()).metrics is None  # type: ignore[arg-type]


def test_metricsWhileOpen() -> None:
    """
    A scrape taken while a client is still open sees every message it has
    exchanged so far, with exact byte counts and one callback latency per
    message (the session's counts are folded before the scrape).
    """
    with Daemon(*LOOPBACK, "--metrics", "--resource", ECHO) as daemon:
        with connect(daemon.url("/echo"), ping_interval=None) as client:
            for text in ("a", "bb", "ccc", "dddd"):
                client.send(text)
                assert client.recv(WAIT) == text
            samples = scrape(f"http://127.0.0.1:{daemon.port}/metrics")
            client.send("e")
            assert client.recv(WAIT) == "e"
            again = scrape(f"http://127.0.0.1:{daemon.port}/metrics")
    assert value(samples, "txclws_messages_received_total") == 4
    assert value(samples, "txclws_messages_sent_total") == 4
    assert value(samples, "txclws_received_bytes_total") == 4 * 6 + 10
    assert value(samples, "txclws_sent_bytes_total") == 4 * 2 + 10
    assert value(samples, "txclws_callback_seconds_count") == 4
    assert value(again, "txclws_messages_received_total") == 5
    assert value(again, "txclws_sent_bytes_total") == 5 * 2 + 11
    assert value(again, "txclws_callback_seconds_count") == 5


def test_metricsWhileOpenWorkers() -> None:
    """
    With C{--workers 2}, one client held open on each worker, a scrape
    through either worker sees every message both have exchanged so far:
    each worker folds its counts into its multiprocess files at the end
    of the reactor turn that counted them.  Several scrapes (each may
    reach either worker) all see the same exact totals.
    """
    with startPool(LOOPBACK[1], extra=("--metrics",)) as daemon:
        pids = set(workerPids(daemon).values())
        held = reach(daemon, pids)
        try:
            first, second = held.values()
            for client, count in ((first, 3), (second, 4)):
                for index in range(count):
                    client.send(str(index))
                    assert client.recv(WAIT) == str(index)
            scrapes = [
                scrape(f"http://127.0.0.1:{daemon.port}/metrics") for _ in range(4)
            ]
        finally:
            for client in held.values():
                client.close()
    for samples in scrapes:
        opened = value(samples, "txclws_handshakes_total", status="101")
        assert opened >= 2
        assert value(samples, "txclws_messages_received_total") == 7
        assert value(samples, "txclws_messages_sent_total") == opened + 7
        assert value(samples, "txclws_callback_seconds_count") == 7
