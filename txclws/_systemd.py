# -*- test-case-name: tests.test_systemd -*-
"""
systemd socket activation: C{twistd clws --port systemd:domain=INET:index=0}
serves the listening socket systemd passed this process, in one process or
in every worker of C{--workers N}.

The socket is found through Twisted's own C{systemd:} endpoint parser
(C{twisted.python.systemd.ListenFDs}), which reads C{LISTEN_FDS},
C{LISTEN_PID} and C{LISTEN_FDNAMES} once, when
C{twisted.internet.endpoints} is first imported, takes them only if
C{LISTEN_PID} is this process's pid, and removes C{LISTEN_FDS} and
C{LISTEN_PID} from the environment.  Twisted (26.10) also needs
C{LISTEN_FDNAMES}, one name per socket, which systemd sets since version
227; C{name=} picks a socket by that name (C{FileDescriptorName=} of the
.socket unit, by default the unit's name), C{index=} by position.

The socket is systemd's: it made it, bound it and will hand it to the next
start of the service.  So, unlike Twisted's C{AdoptedStreamServerEndpoint}
on a unix socket, L{InheritedEndpoint} never changes the socket file's
mode (C{SocketMode=} is systemd's to set), never unlinks its path, and
never shuts the socket down when it stops (a C{shutdown()} of a listening
socket stops it listening in every process holding it, systemd included).

With C{--workers}, the parent takes the socket (L{inheritedSocket}) and
hands that one socket to every worker; the workers' environment has no
C{LISTEN_*} variable (L{withoutListenVariables}), as C{sd_listen_fds(1)}
leaves it.

@since: 0.3.0
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from twisted.internet import fdesc
from twisted.internet.defer import Deferred, execute
from twisted.internet.endpoints import _SystemdParser, serverFromString
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from zope.interface import implementer

from txclws._adopt import adoptListeningSocket

__all__ = [
    "LISTEN_VARIABLES",
    "InheritedEndpoint",
    "InheritedSocket",
    "NoInheritedSocket",
    "inheritedDescriptor",
    "inheritedSocket",
    "isSystemd",
    "serverEndpoint",
    "withoutListenVariables",
]

#: The variables of systemd's socket passing (C{sd_listen_fds(3)}).
LISTEN_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")

#: The first descriptor systemd passes (C{SD_LISTEN_FDS_START}).
SD_LISTEN_FDS_START = 3


class NoInheritedSocket(ValueError):
    """
    A C{systemd:} port names a socket this process was not passed; the
    message says what was passed, for the person starting the daemon.
    """


def isSystemd(description: str) -> bool:
    """
    Whether C{description} is a C{systemd:} endpoint.
    """
    return description.startswith("systemd:")


def inheritedDescriptor(description: str) -> int:
    """
    The file descriptor of the listening socket that the C{systemd:}
    endpoint C{description} names, as Twisted's parser finds it, checked to
    be a listening stream socket of the family its C{domain=} says.

    @raise NoInheritedSocket: there is no such socket, or it is not one.
    """
    try:
        endpoint = serverFromString(_NoReactor(), description)
    except (IndexError, KeyError):
        raise NoInheritedSocket(_notPassed()) from None
    except AttributeError:
        raise NoInheritedSocket(
            "domain= is not an address family (INET, INET6 or UNIX)"
        ) from None
    fileno: int = endpoint.fileno
    _checkListening(fileno, endpoint.addressFamily)
    return fileno


class _NoReactor:
    """
    What the parser is given as the reactor: it only keeps it.
    """


def _notPassed() -> str:
    """
    Why the socket is missing: what this process was passed, and what the
    environment still says.
    """
    passed = _SystemdParser._sddaemon.inheritedNamedDescriptors()
    if passed:
        names = ", ".join(f"{index}: {name}" for index, name in enumerate(passed))
        count = len(passed)
        return f"systemd passed this process {count} socket(s) ({names}), not this one"
    pid = os.environ.get("LISTEN_PID")
    if "LISTEN_FDS" in os.environ and pid != str(os.getpid()):
        return (
            f"LISTEN_FDS is for pid {pid}, not this process (pid {os.getpid()}); "
            "start twistd as the service's main process (ExecStart=twistd -n ...)"
        )
    fdNames = os.environ.get("LISTEN_FDNAMES")
    if fdNames is not None:
        # Twisted took LISTEN_FDS and LISTEN_PID, and dropped the sockets
        # for want of one name each.
        return (
            f"LISTEN_FDNAMES={fdNames} does not name as many sockets as "
            "LISTEN_FDS passed (one name each, separated by ':')"
        )
    if _isListening(SD_LISTEN_FDS_START):
        return (
            f"file descriptor {SD_LISTEN_FDS_START} is a listening socket, but "
            "LISTEN_FDNAMES is not set: Twisted's systemd: endpoint takes "
            "inherited sockets only with their names, which systemd 227 and "
            "later set (FileDescriptorName=, by default the .socket unit's "
            "name); a launcher must set it too (LISTEN_FDNAMES=clws.socket)"
        )
    return (
        "systemd passed this process no socket: LISTEN_FDS is not set (with "
        "LISTEN_PID this process's pid, and LISTEN_FDNAMES, which Twisted needs "
        "and systemd 227 and later set); start it from its .socket unit, or "
        "use a tcp: or unix: port"
    )


def _socketState(fileno: int) -> tuple[int, int, bool] | None:
    """
    The family and type of the socket C{fileno}, and whether it listens;
    C{None} if C{fileno} is not an open socket.
    """
    try:
        sock = socket.socket(fileno=fileno)
    except OSError:
        return None
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        return int(sock.family), int(sock.type), bool(listening)
    except OSError:
        return None
    finally:
        sock.detach()


def _isListening(fileno: int) -> bool:
    state = _socketState(fileno)
    return state is not None and state[2]


def _checkListening(fileno: int, family: int) -> None:
    if _socketState(fileno) != (family, socket.SOCK_STREAM, True):
        raise NoInheritedSocket(
            f"file descriptor {fileno} is not a listening "
            f"{socket.AddressFamily(family).name} stream socket "
            "(ListenStream= of the .socket unit, and Accept=no)"
        )


class InheritedSocket(socket.socket):
    """
    The socket systemd passed, as the parent of C{--workers} holds it:
    closing it closes this process's descriptor only; its path, if it has
    one, is systemd's and stays.
    """


def inheritedSocket(fileno: int) -> InheritedSocket:
    """
    Hold the inherited listening socket C{fileno}, non-blocking (as the
    workers' C{adoptStreamPort} wants it).
    """
    sock = InheritedSocket(fileno=fileno)
    sock.setblocking(False)
    return sock


def withoutListenVariables(environment: Mapping[str, str]) -> dict[str, str]:
    """
    C{environment} without systemd's socket-passing variables: what a
    worker is started with, as C{sd_listen_fds(1)} leaves the environment.
    """
    return {k: v for k, v in environment.items() if k not in LISTEN_VARIABLES}


@implementer(IStreamServerEndpoint)
class InheritedEndpoint:
    """
    An endpoint that "listens" by adopting an inherited listening socket
    (systemd's), as a tcp or unix port that leaves the socket to systemd
    when it stops.
    """

    def __init__(self, reactor: Any, fileno: int) -> None:
        self.reactor = reactor
        self.fileno = fileno

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Serve C{factory} on the inherited socket, and close the descriptor
        (the port holds a duplicate).
        """
        return execute(self._adopt, factory)

    def _adopt(self, factory: IProtocolFactory) -> IListeningPort:
        fdesc.setNonBlocking(self.fileno)
        return adoptListeningSocket(self.reactor, self.fileno, factory)


def serverEndpoint(reactor: Any, description: str) -> IStreamServerEndpoint:
    """
    The endpoint of a C{--port} description: an L{InheritedEndpoint} for
    a C{systemd:} one, else what Twisted's C{serverFromString} makes.

    @raise NoInheritedSocket: a systemd: port names no inherited socket.
    """
    if isSystemd(description):
        return InheritedEndpoint(reactor, inheritedDescriptor(description))
    endpoint: IStreamServerEndpoint = serverFromString(reactor, description)
    return endpoint
