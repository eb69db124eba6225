# -*- test-case-name: tests.test_systemd,tests.test_workers -*-
"""
Serving a listening socket this process inherited (from the C{--workers}
parent, or from systemd) without taking it over: stopping the port closes
this process's descriptor only, and leaves the socket listening, and a
unix socket's file where it is, with its mode, for whoever else holds it.
"""

from __future__ import annotations

import os
import socket
import stat
from typing import Any

from twisted.internet import tcp, unix
from twisted.internet.interfaces import IListeningPort, IProtocolFactory

__all__ = ["KeptUNIXPort", "adoptListeningSocket"]


class KeptUNIXPort(unix.Port):
    """
    A unix port on a listening socket that others share (the other
    workers, systemd): stopping it closes this process's descriptor and
    leaves the socket listening and its path where it is.
    """

    # tcp.Port does not shut down a socket it adopted, but unix.Port does
    # (it never clears this): shutdown() of a listening socket stops it
    # listening for every process sharing it, not just this one.
    _shouldShutdown = False

    def connectionLost(self, reason: Any) -> None:
        # unix.Port.connectionLost unlinks the socket's path, which others
        # still serve on (and a replacement or the next start adopts).
        tcp.Port.connectionLost(self, reason)


def adoptListeningSocket(
    reactor: Any, fileno: int, factory: IProtocolFactory, mode: int | None = None
) -> IListeningPort:
    """
    Serve C{factory} on the listening socket C{fileno}, and close
    C{fileno} (the port holds its own duplicate).

    @param mode: a unix socket file's mode to keep (C{startListening}
        chmods the path to the port's mode even on an adopted socket);
        C{None}: the file's own.
    """
    sock = socket.socket(fileno=fileno)
    family, name = sock.family, sock.getsockname()
    sock.detach()
    port: IListeningPort
    if family == socket.AF_UNIX:
        # What reactor.adoptStreamPort does for AF_UNIX, with our port.
        kept = KeptUNIXPort._fromListeningDescriptor(  # type: ignore[no-untyped-call]  # mypy#16651
            reactor, fileno, factory
        )
        if mode is not None:
            kept.mode = mode
        elif isinstance(name, str) and name and not name.startswith("\0"):
            kept.mode = stat.S_IMODE(os.stat(name).st_mode)
        kept.startListening()
        port = kept
    else:
        port = reactor.adoptStreamPort(fileno, family, factory)
    os.close(fileno)
    return port
