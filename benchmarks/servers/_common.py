"""
What every benchmark server shares: its command line, the file limit and
the broadcast command.

Each server serves two paths on 127.0.0.1:

  /echo   echoes every text and binary message back, unchanged;
  /bcast  holds its clients; a text message C{"MODE COUNT SIZE [PERTURN]"}
          from any of them makes the server send COUNT text messages of SIZE
          bytes to every /bcast client, PERTURN messages (default: all of
          them) per event-loop turn.  MODE C{fanout} uses the library's
          broadcast API, C{loop} a plain loop of per-client sends.

A server listens on the port given (0: any free one), prints
C{LISTENING <port>} on standard output once it accepts connections, and
runs until killed.  Servers never ping; they compress only with
C{--deflate} (permessage-deflate with the library's default settings).
With C{--tls-cert CERT --tls-key KEY} a server serves C{wss://} instead
(TLS with that PEM certificate and key, the library's usual TLS path).
"""

from __future__ import annotations

import argparse
import resource
import ssl
import sys

#: Frame and message size limit: W5f sends 4 MiB, W2 1 MiB.
MAX_SIZE = 16 * 1024 * 1024

#: Listen backlog; the default of some servers (50) drops SYNs when
#: the load generator opens thousands of connections.
BACKLOG = 1024


def parseArgs(description: str) -> argparse.Namespace:
    """
    The common command line: C{PORT [--host HOST]}.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("port", type=int, nargs="?", default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pure", action="store_true", help="(txclws) no NumPy")
    parser.add_argument(
        "--no-tune-allocator",
        action="store_true",
        help="(txclws) leave glibc's malloc thresholds as they are",
    )
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="negotiate permessage-deflate with the library's defaults",
    )
    parser.add_argument("--tls-cert", help="serve wss:// with this PEM certificate")
    parser.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    parser.add_argument(
        "--stdssl",
        action="store_true",
        help="(txclws) TLS by the stdssl: endpoint (the standard library's ssl)",
    )
    return parser.parse_args()


def sslContext(args: argparse.Namespace) -> ssl.SSLContext | None:
    """
    The standard library's server TLS context for C{--tls-cert}, or C{None}
    (no TLS).
    """
    if not args.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    return context


def raiseFileLimit() -> int:
    """
    Raise the soft limit on open files to the hard one (W3 holds 5,000
    connections).

    @return: the new soft limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def announce(port: int) -> None:
    """
    Tell the driver the server is listening, and on which port.
    """
    sys.stdout.write(f"LISTENING {port}\n")
    sys.stdout.flush()


def parseCommand(text: str) -> tuple[str, int, str, int]:
    """
    Parse a broadcast command.

    @return: the mode (C{"fanout"} or C{"loop"}), how many messages, the
        message text, and how many messages to send per event-loop turn.
    @raise ValueError: not a command.
    """
    words = text.split()
    mode, count, size = words[:3]
    if mode not in ("fanout", "loop"):
        raise ValueError(f"unknown broadcast mode {mode!r}")
    perTurn = int(words[3]) if len(words) > 3 else int(count)
    return mode, int(count), "b" * int(size), max(1, perTurn)
