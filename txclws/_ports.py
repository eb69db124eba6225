# -*- test-case-name: tests.test_ports,tests.test_stdsslworkers -*-
"""
What a C{twistd clws --port} listens on, read before anything listens, and
who owns a C{unix:} socket's path.

Both the daemon's options (to refuse a bad port as a usage error) and the
worker pool (to open the sockets its workers share) need to know where an
endpoint description listens; they read it here, by letting the endpoint
call a reactor that only records its C{listen*} call.

A C{unix:} path is claimed the same way whatever the number of workers
(L{claimUnixPath}): a socket file that a process answers on is refused, a
socket file that nobody answers on (left by a process that died) is
removed, and anything else there is refused.

@since: 0.2.0
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import stat
from dataclasses import dataclass
from typing import Any

from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXServerEndpoint,
    serverFromString,
)
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from txclws._systemd import inheritedDescriptor, isSystemd
from txclws._tls.endpoint import StdlibSSLServerEndpoint
from txclws._tls.factory import StdlibTLSFactory

__all__ = [
    "WORKER_KINDS",
    "CannotListen",
    "ListenSpec",
    "checkPort",
    "claimUnixPath",
    "listenSpec",
    "readPort",
    "unixPathOf",
]

_log = Logger()

#: The largest listen backlog C{listen(2)} takes (a C int); the kernel caps
#: it further (C{net.core.somaxconn}).
MAX_BACKLOG = 2**31 - 1

#: The longest path a C{unix:} socket can bind (C{sun_path} is 108 bytes on
#: Linux, NUL included).
MAX_UNIX_PATH = 107

#: The endpoint kinds C{--workers} serves, for messages.
WORKER_KINDS = "tcp:, tcp6:, ssl:, stdssl:, unix: and systemd:"

#: Seconds the probe of L{claimUnixPath} waits for a listener to answer.
PROBE_TIMEOUT = 2.0


class CannotListen(Exception):
    """
    A port cannot be listened on; the message names the option and why,
    for the person starting the daemon.
    """


@dataclass(frozen=True)
class ListenSpec:
    """
    Where a C{--port} listens, as its endpoint would.

    @ivar kind: C{"tcp"} (also tcp6:), C{"ssl"}, C{"stdssl"}, C{"unix"},
        or C{"systemd"} (a socket systemd passed, already listening).
    @ivar address: the interface (C{""}: all) for tcp, ssl and stdssl, the
        path for unix; for systemd, the socket's address or path.
    @ivar port: the TCP port number (0 for any); 0 for unix.
    @ivar backlog: the listen backlog (0 for systemd: systemd's).
    @ivar mode: the file mode of a unix socket.
    @ivar contextFactory: the TLS context factory of an ssl: port.
    @ivar sslContext: the C{ssl.SSLContext} of a stdssl: port.
    @ivar descriptor: the file descriptor of a systemd socket.
    """

    kind: str
    address: str
    port: int
    backlog: int
    mode: int = 0o666
    contextFactory: Any = None
    descriptor: int | None = None
    sslContext: ssl.SSLContext | None = None


class _ListenRecorder:
    """
    A stand-in reactor with only the C{listen*} methods of
    C{IReactorTCP}, C{IReactorSSL} and C{IReactorUNIX}: each records where
    it was asked to listen, as a L{ListenSpec}, and listens nowhere.  A
    TCP port whose factory is a L{StdlibTLSFactory} is a stdssl: one.

    @ivar spec: the last call recorded, or C{None}.
    """

    def __init__(self) -> None:
        self.spec: ListenSpec | None = None

    def listenTCP(
        self, port: int, factory: object, backlog: int = 50, interface: str = ""
    ) -> None:
        if isinstance(factory, StdlibTLSFactory):
            self.spec = ListenSpec(
                "stdssl", interface, port, backlog, sslContext=factory.context
            )
        else:
            self.spec = ListenSpec("tcp", interface, port, backlog)

    def listenSSL(
        self,
        port: int,
        factory: object,
        contextFactory: object,
        backlog: int = 50,
        interface: str = "",
    ) -> None:
        self.spec = ListenSpec(
            "ssl", interface, port, backlog, contextFactory=contextFactory
        )

    def listenUNIX(
        self,
        address: str,
        factory: object,
        backlog: int = 50,
        mode: int = 0o666,
        wantPID: int = 0,
    ) -> None:
        self.spec = ListenSpec("unix", address, 0, backlog, mode)


#: The endpoints known to do nothing but call their reactor's C{listen*}
#: when they listen (systemd:, for one, closes its inherited descriptor).
_READABLE = (
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    SSL4ServerEndpoint,
    UNIXServerEndpoint,
    StdlibSSLServerEndpoint,
)


def readPort(description: str) -> ListenSpec | None:
    """
    Parse C{description} as C{twistd} will (an ssl: or stdssl: one loads
    its key and certificates), and read where it listens.

    @return: where it listens, or C{None} for an endpoint kind other than
        tcp:, tcp6:, ssl:, stdssl:, unix: and systemd:, which cannot be
        read before it listens.
    @raise Exception: whatever the endpoint's parser raises for a
        description it cannot use (L{NoInheritedSocket} for a systemd: one
        that names no socket this process was passed).
    """
    if isSystemd(description):
        return _inheritedSpec(inheritedDescriptor(description))
    recorder = _ListenRecorder()
    endpoint = serverFromString(recorder, description)
    if isinstance(endpoint, _READABLE):
        endpoint.listen(Factory())
    return recorder.spec


def _inheritedSpec(fileno: int) -> ListenSpec:
    sock = socket.socket(fileno=fileno)
    try:
        name = sock.getsockname()
    finally:
        sock.detach()
    if isinstance(name, tuple):
        return ListenSpec("systemd", name[0], name[1], 0, descriptor=fileno)
    address = name if isinstance(name, str) else name.decode("utf-8", "replace")
    return ListenSpec("systemd", address, 0, 0, descriptor=fileno)


def listenSpec(description: str) -> ListenSpec:
    """
    Where C{description}, a tcp:, tcp6:, ssl:, stdssl:, unix: or systemd:
    endpoint, listens.

    @raise ValueError: another kind of endpoint.
    """
    spec = readPort(description)
    if spec is None:
        raise ValueError(f"{description!r}: --workers serves {WORKER_KINDS} ports only")
    return spec


def unixPathOf(description: str) -> str | None:
    """
    The path of a unix: port, which must be claimed before it listens, or
    C{None} for another kind of port.
    """
    spec = readPort(description)
    return spec.address if spec is not None and spec.kind == "unix" else None


def checkPort(spec: ListenSpec) -> None:
    """
    Check what can be checked before binding: the port number, the
    backlog, and a unix socket's path and mode.

    @raise ValueError: a value C{bind()} or C{listen()} would refuse.
    """
    if spec.kind == "systemd":
        return  # systemd bound it, and it listens
    if not 1 <= spec.backlog <= MAX_BACKLOG:
        raise ValueError(f"backlog {spec.backlog} is not 1 to {MAX_BACKLOG}")
    if spec.kind != "unix":
        if not 0 <= spec.port <= 65535:
            raise ValueError(f"port {spec.port} is not 0 to 65535")
        return
    if not 0 <= spec.mode <= 0o7777:
        raise ValueError(f"mode {spec.mode:o} is not a file mode")
    if len(os.fsencode(spec.address)) > MAX_UNIX_PATH:
        raise ValueError(f"the path is over {MAX_UNIX_PATH} bytes")
    directory = os.path.dirname(spec.address) or os.curdir
    if not os.path.isdir(directory):
        raise ValueError(f"the directory {directory} does not exist")


def claimUnixPath(path: str, option: str) -> None:
    """
    Make C{path} free for a unix socket to bind: nothing there, or a stale
    socket file (nobody answers a connection to it), which is removed.

    @param option: the option that names the path, for the message.
    @raise CannotListen: a process answers on C{path} (it is not ours to
        take over), or something other than a socket is there.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise CannotListen(f"{option}: {path} exists and is not a socket")
    if _answers(path, option):
        raise CannotListen(
            f"{option}: another process is listening on {path}; stop it, or "
            "choose another path"
        )
    _log.info("removing the stale socket {path} (nothing listens on it)", path=path)
    os.unlink(path)


def _answers(path: str, option: str) -> bool:
    """
    Whether a process accepts connections on the unix socket C{path}.

    @raise CannotListen: the probe failed for another reason (no
        permission, say): whether the socket is stale is unknown.
    """
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(PROBE_TIMEOUT)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        return False  # a socket file with no listener: stale
    except (TimeoutError, BlockingIOError):
        return True  # a listener whose queue is full
    except OSError as error:
        if error.errno == errno.ENOENT:  # gone meanwhile
            return False
        raise CannotListen(f"{option}: cannot check {path}: {error}") from error
    finally:
        probe.close()
    return True
