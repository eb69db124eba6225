"""
Clients that open TCP to a TLS port and never finish the TLS handshake:
they send nothing, or the start of a ClientHello, then wait to be dropped.

Used in a thread by L{tests.test_tls_hostile} and, where the server's own
descriptors and memory are measured, run as a process of its own::

    python tests/_silent_tls_clients.py PORT COUNT PREFIX_BYTES WAIT

which connects C{COUNT} clients that each send the first C{PREFIX_BYTES}
bytes of a ClientHello (0: nothing), once it reads a line on stdin;
prints C{CONNECTED <time.monotonic()>} once they are all connected, then,
after every one was dropped or C{WAIT} seconds passed, one JSON line: the
L{Outcome} of each, as C{[seconds, how]}.

Everything here blocks, bounded by C{WAIT}: never call it from the reactor
thread.
"""

from __future__ import annotations

import json
import selectors
import socket
import ssl
import sys
import time
from collections.abc import Callable

#: How a client saw the server drop it: C{"eof"}, C{"reset"}, or
#: C{"open"} if it was still connected when the wait ended.
Outcome = tuple[float | None, str]


def clientHello() -> bytes:
    """
    The bytes of a real ClientHello, as Python's C{ssl} sends it first.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass  # it waits for the ServerHello, having written its hello
    return outgoing.read()


def connectAll(
    port: int, count: int, prefixSize: int
) -> list[tuple[socket.socket, float]]:
    """
    Open C{count} connections to C{127.0.0.1:port}, each sending the first
    C{prefixSize} bytes of a ClientHello.

    @return: each socket, with when it connected (C{time.monotonic}).
    """
    prefix = clientHello()[:prefixSize]
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        connected = time.monotonic()
        if prefix:
            sock.sendall(prefix)
        sock.setblocking(False)
        sockets.append((sock, connected))
    return sockets


def _readOnce(sock: socket.socket) -> str | None:
    """
    Read what is there: C{"eof"}, C{"reset"}, or L{None} (still open).
    """
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return "reset"
    except BlockingIOError:
        return None
    return "eof" if not data else None


def awaitDrops(
    sockets: list[tuple[socket.socket, float]],
    start: float,
    wait: float,
    clock: Callable[[], float] = time.monotonic,
) -> list[Outcome]:
    """
    Wait until the server has dropped every socket, or C{start + wait}.

    @param sockets: each socket, with when it connected.
    @return: for each socket, the seconds after it connected at which it
        saw EOF or a reset, and which; C{(None, "open")} if it did not.
        Every socket is closed on return.
    """
    outcomes: list[Outcome] = [(None, "open")] * len(sockets)
    selector = selectors.DefaultSelector()
    for index, (sock, connected) in enumerate(sockets):
        selector.register(sock, selectors.EVENT_READ, (index, connected))
    try:
        while selector.get_map():
            remaining = start + wait - clock()
            if remaining <= 0:
                break
            for key, _ in selector.select(remaining):
                how = _readOnce(key.fileobj)  # type: ignore[arg-type]
                if how is not None:
                    index, connected = key.data
                    outcomes[index] = (clock() - connected, how)
                    selector.unregister(key.fileobj)
    finally:
        selector.close()
        for sock, _ in sockets:
            sock.close()
    return outcomes


def silentClients(port: int, count: int, prefixSize: int, wait: float) -> list[Outcome]:
    """
    Connect C{count} clients that never finish the TLS handshake, and wait
    (at most C{wait} seconds from the first connection) for the server to
    drop them.  See L{awaitDrops}.
    """
    start = time.monotonic()
    return awaitDrops(connectAll(port, count, prefixSize), start, wait)


def main(port: int, count: int, prefixSize: int, wait: float) -> None:
    """
    The process described in this module's docstring.
    """
    sys.stdin.readline()
    start = time.monotonic()
    sockets = connectAll(port, count, prefixSize)
    print(f"CONNECTED {start!r}", flush=True)
    print(json.dumps(awaitDrops(sockets, start, wait)), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
