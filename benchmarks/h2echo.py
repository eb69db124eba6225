"""
Messages per second over HTTP/2 (RFC 8441) and HTTP/1.1, in one run:
the daemon (C{twistd clws}, the demo's /echo) on an C{ssl:} port with a
throw-away certificate; one client at a time, each sending a message and
waiting for its echo (round trips, not pipelined), small and 1 MiB.

Besides messages per second (which, on a loaded machine, depend on the
load and on the pure-Python client), it reports the server's own CPU per
message (us) and per MiB echoed (ms), from the daemon's
C{/proc/PID/task/*/schedstat} (nanoseconds, all threads): what the server
spends, whatever the client and the machine's load; and the client's
CPU per message (this process), to show which side sets the pace.

HTTP/2 is the blocking C{h2} client of C{tests/_h2client.py}; HTTP/1.1 is
the C{websockets} sync client.  Run from the source tree::

    .venv/bin/python benchmarks/h2echo.py [--small N] [--large N]
"""

from __future__ import annotations

import argparse
import ssl
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.sync.client import connect

from benchmarks.bench import schedSeconds
from tests._daemon import Daemon
from tests._h2client import H2Client, maskedFrame
from tests.test_tls import makeCertificate

BINARY = 0x2


def overHTTP2(port: int, payload: bytes, count: int) -> float:
    """
    Round trips per second of C{payload} over one RFC 8441 stream.
    """
    # Windows as large as a browser's (Chromium: 6 MiB per stream), so
    # that the client's 64 KiB default does not set the pace.
    with H2Client(port, settings={0x4: 8 << 20}) as client:
        client.conn.increment_flow_control_window(16 << 20)
        client.flush()
        streamID = client.websocket("/echo")
        assert client.response(streamID).status == 200
        frame = maskedFrame(BINARY, payload)
        start = time.perf_counter()
        for _ in range(count):
            client.send(streamID, frame)
            (echo,) = client.frames(streamID)
            assert len(echo[2]) == len(payload)
        return count / (time.perf_counter() - start)


def overHTTP1(port: int, payload: bytes, count: int) -> float:
    """
    Round trips per second of C{payload} over one wss:// connection.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    url = f"wss://localhost:{port}/echo"
    with connect(url, ssl=context, max_size=None, compression=None) as ws:
        start = time.perf_counter()
        for _ in range(count):
            ws.send(payload)
            assert len(ws.recv(30)) == len(payload)
        return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--small", type=int, default=5000)
    parser.add_argument("--large", type=int, default=50)
    parser.add_argument(
        "--only", choices=("h2", "h1"), help="run one protocol (for profiling)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        cert, key = makeCertificate(Path(directory))
        port = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
        with Daemon("--port", port, "--max-message-size", str(2 << 20)) as daemon:
            pid = daemon.process.pid
            for name, payload, count in (
                ("16 B", b"x" * 16, args.small),
                ("1 MiB", b"x" * (1 << 20), args.large),
            ):
                if count <= 0:
                    continue
                results = {}
                for proto, run in (("h2", overHTTP2), ("h1", overHTTP1)):
                    if args.only not in (None, proto):
                        continue
                    before, clientBefore = schedSeconds(pid), time.process_time()
                    rate = run(daemon.port, payload, count)
                    cpu = schedSeconds(pid) - before
                    client = time.process_time() - clientBefore
                    results[proto] = (rate, cpu / count)
                    mib = len(payload) * count / (1 << 20)
                    print(
                        f"{name:>6} {'HTTP/2' if proto == 'h2' else 'HTTP/1.1':>8}:"
                        f" {rate:8.0f} msg/s  server CPU {cpu / count * 1e6:9.1f}"
                        f" us/msg {cpu / mib * 1e3:8.2f} ms/MiB"
                        f"  (client CPU {client / count * 1e6:9.1f} us/msg)"
                    )
                if len(results) == 2:
                    (h2, h2cpu), (h1, h1cpu) = results["h2"], results["h1"]
                    print(
                        f"{name:>6}    ratio: msg/s {h2 / h1:.2f}"
                        f"  server CPU per message {h2cpu / h1cpu:.2f}"
                    )


if __name__ == "__main__":
    main()
