"""
systemd socket activation (L{txclws._systemd}): C{twistd clws --port
systemd:domain=INET:index=0}, in one process and with C{--workers 2},
started as systemd starts a service.

Each daemon test binds a listening socket itself (on C{127.0.0.1:0}, or a
unix socket in a temporary directory), as a .socket unit makes systemd
do, and starts twistd through L{LAUNCHER}, a small process that puts the
socket on file descriptor 3, sets C{LISTEN_FDS=1}, C{LISTEN_PID} to its
own pid and C{LISTEN_FDNAMES} (systemd 227 and later set all three), and
execs twistd, which keeps the pid.  The test keeps its own copy of the
socket, as systemd does: once the daemon has stopped, the socket must
still be listening, with its path and mode, for the next start.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from twisted.internet.endpoints import _SystemdParser
from twisted.python import usage
from twisted.python.systemd import ListenFDs
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import unix_connect

from tests._daemon import ROOT, TWISTD, WAIT, Daemon, _environment, connect
from tests._debian import findOrInstall
from tests.test_workers import reach, whoami, workerPids
from txclws._ports import listenSpec, readPort
from txclws._systemd import (
    LISTEN_VARIABLES,
    NoInheritedSocket,
    inheritedDescriptor,
    isSystemd,
    withoutListenVariables,
)
from txclws._workers import _workerEnvironment, bindSockets
from txclws.tap import Options

INET = "systemd:domain=INET:index=0"

#: How twistd exits on SIGTERM once stopped: by the same signal, re-raised.
STOPPED = -signal.SIGTERM
UNIX = "systemd:domain=UNIX:index=0"

#: What systemd does between forking and running ExecStart=:
#: C{python -c LAUNCH FD,FD... NAMES COMMAND...} puts the sockets on file
#: descriptors 3, 4, ... and sets the variables of C{sd_listen_fds(3)}.
_LAUNCH = """
import fcntl, os, sys
fds, names = [int(fd) for fd in sys.argv[1].split(",")], sys.argv[2]
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
for fd in fds:
    os.close(fd)
for offset, fd in enumerate(high):
    os.dup2(fd, 3 + offset)
    os.close(fd)
os.environ["LISTEN_FDS"] = str(len(fds))
if names:
    os.environ["LISTEN_FDNAMES"] = names
os.environ["LISTEN_PID"] = str(os.getpid())  # exec keeps the pid
os.execv(sys.argv[3], sys.argv[3:])
"""


def launcher(sockets: Sequence[socket.socket], names: str) -> list[str]:
    """
    The command that starts twistd with C{sockets} passed as systemd
    passes them (C{names} empty: no C{LISTEN_FDNAMES}, as before systemd
    227).
    """
    fds = ",".join(str(sock.fileno()) for sock in sockets)
    return [sys.executable, "-c", _LAUNCH, fds, names]


def tcpListener() -> socket.socket:
    """
    A listening socket on 127.0.0.1, as C{ListenStream=127.0.0.1:PORT}.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def unixListener(path: Path, mode: int = 0o660) -> socket.socket:
    """
    A listening unix socket at C{path}, as C{ListenStream=PATH} with
    C{SocketMode=} C{mode}.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, mode)
    sock.listen(128)
    return sock


@pytest.fixture
def tcpSocket() -> Iterator[socket.socket]:
    """
    systemd's TCP socket, closed after the test.
    """
    sock = tcpListener()
    yield sock
    sock.close()


@pytest.fixture
def unixPath() -> Iterator[Path]:
    """
    A short path for a unix socket (C{tmp_path} can exceed 107 bytes).
    """
    with tempfile.TemporaryDirectory(prefix="clws-sd-") as directory:
        yield Path(directory, "clws.sock")


def activated(
    sockets: socket.socket | Sequence[socket.socket],
    *clwsArgs: str,
    names: str = "clws.socket",
) -> Daemon:
    """
    C{twistd -n clws CLWSARGS}, started with C{sockets} as systemd would,
    once it listens (and, with workers, once they are ready).
    """
    if isinstance(sockets, socket.socket):
        sockets = [sockets]
    daemon = Daemon(
        *clwsArgs,
        "--close-timeout",
        "3",
        expectPorts=0,
        launcher=launcher(sockets, names),
        passFds=[sock.fileno() for sock in sockets],
    )
    try:
        daemon.waitForLog(r"clws listening on ")
        if "--workers" in clwsArgs:
            daemon.waitForLog(r"worker \d+ ready", count=2)
    except BaseException:
        daemon.stop()
        raise
    return daemon


def stop(daemon: Daemon) -> str:
    """
    Stop C{daemon} with C{SIGTERM}, as C{systemctl stop} does, and check
    it stopped cleanly (no traceback logged).

    @return: its log.
    """
    if daemon.process.poll() is None:
        os.kill(daemon.process.pid, signal.SIGTERM)
        try:
            daemon.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            pass  # Daemon.stop kills it
    log = daemon.log()
    assert daemon.stop() == STOPPED, log
    assert "Traceback" not in log
    return log


def fetch(sock: socket.socket, path: str = "/") -> bytes:
    """
    GET C{path} over the connected C{sock} (closed after): the response.
    """
    sock.settimeout(WAIT)
    with sock:
        head = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        sock.sendall(head.encode() + b"\r\n")
        response = b""
        while len(response) < 1_000_000:
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    return response


def tcpConnection(port: int) -> socket.socket:
    """
    A TCP connection to C{127.0.0.1:port}.
    """
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT)


def unixConnection(path: Path) -> socket.socket:
    """
    A connection to the unix socket C{path}.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(WAIT)
    sock.connect(str(path))
    return sock


def assertStillListening(sock: socket.socket, connect: socket.socket) -> None:
    """
    C{sock}, systemd's copy, still listens after the daemon stopped: a new
    connection (C{connect}, made by the caller) is queued on it, to be
    served by the next start.
    """
    with connect:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        sock.settimeout(WAIT)
        accepted, _ = sock.accept()
        accepted.close()


def test_inetOneProcess(tcpSocket: socket.socket) -> None:
    """
    One process serves the inherited TCP socket: the front door answers a
    WebSocket echo and the twisted.web page, the log names the address,
    and once the daemon stops the socket still listens (systemd's copy).
    """
    port = tcpSocket.getsockname()[1]
    daemon = activated(tcpSocket, "--port", INET)
    try:
        assert f"clws listening on 127.0.0.1:{port} ({INET})" in daemon.log()
        with connect(f"ws://127.0.0.1:{port}/echo") as client:
            client.send("hello")
            assert client.recv(WAIT) == "hello"
        page = fetch(tcpConnection(port))
        assert page.startswith(b"HTTP/1.1 200 ")
        assert b"<html" in page.lower()
    finally:
        stop(daemon)
    assertStillListening(tcpSocket, tcpConnection(port))


def test_restartOnTheSameSocket(tcpSocket: socket.socket) -> None:
    """
    As across C{systemctl restart}: a connection made while no daemon runs
    waits in the socket's queue (systemd's socket still listens) and is
    served by the next daemon started on the same socket.
    """
    port = tcpSocket.getsockname()[1]
    stop(activated(tcpSocket, "--port", INET))
    waiting = tcpConnection(port)  # queued: nobody accepts it yet
    with waiting:
        waiting.sendall(
            b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        daemon = activated(tcpSocket, "--port", INET)
        try:
            response = b""
            while b"\r\n\r\n" not in response and len(response) < 65536:
                chunk = waiting.recv(4096)
                if not chunk:
                    break
                response += chunk
            assert response.startswith(b"HTTP/1.1 101 ")
            # RFC 6455 1.3: the accept value of the sample nonce.
            assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in response
        finally:
            stop(daemon)


def test_inetByName(tcpSocket: socket.socket) -> None:
    """
    C{name=} picks the socket by its C{LISTEN_FDNAMES} name (the .socket
    unit's C{FileDescriptorName=}).
    """
    port = tcpSocket.getsockname()[1]
    description = "systemd:domain=INET:name=web"
    with activated(tcpSocket, "--port", description, names="web"):
        with connect(f"ws://127.0.0.1:{port}/echo") as client:
            client.send("by name")
            assert client.recv(WAIT) == "by name"


def test_unixOneProcess(unixPath: Path) -> None:
    """
    One process serves an inherited unix socket (C{domain=UNIX}); it
    leaves the socket file's mode as systemd set it (C{SocketMode=0660},
    not Twisted's 0666), and when it stops it neither removes the file nor
    stops the socket listening.
    """
    sock = unixListener(unixPath, 0o660)
    try:
        daemon = activated(sock, "--port", UNIX)
        try:
            assert f"clws listening on {unixPath} ({UNIX})" in daemon.log()
            assert stat.S_IMODE(os.stat(unixPath).st_mode) == 0o660
            uri = "ws://localhost/echo"
            with unix_connect(str(unixPath), uri, proxy=None) as client:
                client.send("over unix")
                assert client.recv(WAIT) == "over unix"
            assert fetch(unixConnection(unixPath)).startswith(b"HTTP/1.1 200 ")
        finally:
            stop(daemon)
        assert stat.S_IMODE(os.stat(unixPath).st_mode) == 0o660
        assertStillListening(sock, unixConnection(unixPath))
    finally:
        sock.close()


def _workerArguments(port: str) -> list[str]:
    return [
        "--port",
        port,
        "--workers",
        "2",
        "--resource",
        "/whoami=tests.scaling_resources.WhoAmI",
    ]


def _environ(pid: int) -> dict[str, str]:
    """
    The environment process C{pid} was started with.
    """
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (entry.partition(b"=") for entry in raw.split(b"\0") if entry)
    return {k.decode(): v.decode("utf-8", "replace") for k, _, v in pairs}


def test_inetWorkers(tcpSocket: socket.socket) -> None:
    """
    With C{--workers 2}, the parent takes the socket systemd passed it and
    both workers serve it (one shared socket); the workers are started
    without systemd's C{LISTEN_*} variables, which were the parent's; the
    page is served; the socket outlives the daemon.
    """
    port = tcpSocket.getsockname()[1]
    daemon = activated(tcpSocket, *_workerArguments(INET))
    try:
        assert "for 2 workers, sharing one socket" in daemon.log()
        pids = workerPids(daemon)
        assert sorted(pids) == [1, 2]
        daemon.ports = [port]
        held = reach(daemon, set(pids.values()))
        for pid, client in held.items():
            client.send(f"from {pid}")
            assert client.recv(WAIT) == f"from {pid}"
            client.close()
        assert _environ(daemon.process.pid)["LISTEN_FDS"] == "1"  # the parent's
        for pid in pids.values():
            assert not set(LISTEN_VARIABLES) & set(_environ(pid))
        response = fetch(tcpConnection(port), "/whoami")
        assert response.startswith(b"HTTP/1.1 426 ")  # the site, not a worker's 404
    finally:
        stop(daemon)
    assertStillListening(tcpSocket, tcpConnection(port))


def test_rollingRestartWorkers(tcpSocket: socket.socket) -> None:
    """
    C{SIGHUP} (C{ExecReload=/bin/kill -HUP $MAINPID}) rolls the workers
    of an activated daemon over on the one inherited socket: a client held
    on an old worker is closed with 1012, connections made meanwhile are
    all served, and the new workers, started without C{LISTEN_*} too,
    serve it afterwards.
    """
    port = tcpSocket.getsockname()[1]
    arguments = [*_workerArguments(INET), "--drain-spread", "0.5"]
    daemon = activated(tcpSocket, *arguments)
    try:
        daemon.ports = [port]
        old = workerPids(daemon)
        held = reach(daemon, set(old.values()))
        os.kill(daemon.process.pid, signal.SIGHUP)
        served = 0
        deadline = time.monotonic() + 3 * WAIT
        while "rolling restart done" not in daemon.log():
            assert time.monotonic() < deadline, daemon.log()
            pid, client = whoami(daemon.url("/whoami"))
            client.close()
            served += 1
        assert served > 0
        for client in held.values():
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(WAIT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        # The replacements, as the parent logs each swap.
        found = re.findall(r"worker (\d+) pid=(\d+) ready: draining", daemon.log())
        new = {int(index): int(pid) for index, pid in found}
        assert sorted(new) == [1, 2] and not set(new.values()) & set(old.values())
        for pid in new.values():
            assert not set(LISTEN_VARIABLES) & set(_environ(pid))
        for client in reach(daemon, set(new.values())).values():
            client.close()
    finally:
        stop(daemon)
    assertStillListening(tcpSocket, tcpConnection(port))


def test_unixWorkers(unixPath: Path) -> None:
    """
    An inherited unix socket is served by both workers; neither they nor
    the parent remove its path, or change its mode, when they stop.
    """
    sock = unixListener(unixPath, 0o600)
    try:
        daemon = activated(sock, *_workerArguments(UNIX))
        try:
            pids = set(workerPids(daemon).values())
            seen: set[int] = set()
            uri = "ws://localhost/whoami"
            for _ in range(200):
                with unix_connect(str(unixPath), uri, proxy=None) as client:
                    seen.add(int(client.recv(WAIT)))
                if seen == pids:
                    break
            assert seen == pids
        finally:
            stop(daemon)
        assert stat.S_IMODE(os.stat(unixPath).st_mode) == 0o600
        assertStillListening(sock, unixConnection(unixPath))
    finally:
        sock.close()


def test_twoSocketsByNameWorkers(tcpSocket: socket.socket, unixPath: Path) -> None:
    """
    Two sockets (a .socket unit with two C{ListenStream=} and
    C{FileDescriptorName=}s, or two units), picked by name in another
    order than systemd passed them, are each shared by both workers.
    """
    sock = unixListener(unixPath)
    try:
        arguments = _workerArguments("systemd:domain=INET:name=web")
        arguments += ["--port", "systemd:domain=UNIX:name=local"]
        daemon = activated([sock, tcpSocket], *arguments, names="local:web")
        try:
            daemon.waitForLog(r"clws listening on ", count=2)
            daemon.ports = [tcpSocket.getsockname()[1]]
            pids = set(workerPids(daemon).values())
            for client in reach(daemon, pids).values():
                client.close()
            uri = "ws://localhost/whoami"
            with unix_connect(str(unixPath), uri, proxy=None) as client:
                assert int(client.recv(WAIT)) in pids
        finally:
            stop(daemon)
        assertStillListening(sock, unixConnection(unixPath))
    finally:
        sock.close()


SERVICE = "clws.service"
WORKERS = "clws.service.d/workers.conf"

#: The units of docs/deployment.md, by the path each block starts with.
_UNITS = re.compile(r"```ini\n# /etc/systemd/system/(\S+)\n(.*?)```", re.DOTALL)


def documentedUnits() -> dict[str, str]:
    """
    The unit files that docs/deployment.md shows for socket activation,
    by their path under C{/etc/systemd/system}, with the venv path
    C{/srv/clws/.venv} replaced by this one's.
    """
    text = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    units = {name: body for name, body in _UNITS.findall(text)}
    assert sorted(units) == [
        "clws.service",
        "clws.service.d/workers.conf",
        "clws.socket",
    ]
    return {
        name: body.replace("/srv/clws/.venv", sys.prefix)
        for name, body in units.items()
    }


def _verify(directory: Path, units: dict[str, str]) -> None:
    """
    C{systemd-analyze verify} the C{units} written in C{directory}: no
    error, no warning about them.
    """
    for name, body in units.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(body, encoding="utf-8")
    analyze = findOrInstall(["systemd-analyze"], ["systemd"])
    result = subprocess.run(
        [analyze, "verify", "--man=no", "clws.socket", "clws.service"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "clws." not in output, output


def _execStart(unit: str) -> list[str]:
    """
    The command of the last non-empty C{ExecStart=} of C{unit}.
    """
    lines = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(lines[-1].removeprefix("ExecStart="))


def test_documentedUnits(tmp_path: Path) -> None:
    """
    The .socket and .service units of docs/deployment.md (and its workers
    drop-in) pass C{systemd-analyze verify}, and the two C{ExecStart=}
    commands, run as written through systemd's own
    C{systemd-socket-activate} (which waits for the first connection,
    then sets C{LISTEN_*} and execs the command), serve a WebSocket echo
    on the socket the .socket unit describes (on port 0 here, not 8080).
    """
    units = documentedUnits()
    assert "ListenStream=127.0.0.1:8080" in units["clws.socket"].splitlines()
    _verify(tmp_path / "base", {k: v for k, v in units.items() if k != WORKERS})
    _verify(tmp_path / "workers", units)
    activate = findOrInstall(["systemd-socket-activate"], ["systemd"])
    command = _execStart(units[SERVICE])
    assert command[-2:] == ["--port", INET]
    _activateAndEcho(activate, command)
    command = _execStart(units[WORKERS])
    assert command[-4:] == ["--port", INET, "--workers", "2"]
    _activateAndEcho(activate, command)


def _activateAndEcho(activate: str, command: list[str]) -> None:
    """
    Run C{command} through C{systemd-socket-activate} on a socket passed
    to it as systemd passes one, and check a WebSocket echo on it.
    """
    sock = tcpListener()
    with sock:
        activation = [activate, "--fdname=clws.socket", "-E", "PYTHONPATH"]
        daemon = Daemon(
            expectPorts=0,
            launcher=[*launcher([sock], ""), *activation, *command],
            passFds=[sock.fileno()],
            twistd=False,
        )
        try:
            port = sock.getsockname()[1]
            # The first connection makes systemd-socket-activate start it.
            with connect(f"ws://127.0.0.1:{port}/echo") as client:
                client.send("activated")
                assert client.recv(WAIT) == "activated"
            # The launcher set no LISTEN_FDNAMES, which Twisted needs:
            # systemd-socket-activate did, as systemd does.
            if "--workers" in command:
                daemon.waitForLog(r"worker \d+ ready", count=2)
        finally:
            stop(daemon)


def test_socketActivateUnix(unixPath: Path) -> None:
    """
    A unix socket that systemd's own C{systemd-socket-activate -l PATH}
    binds and passes (after the first connection) is served with
    C{domain=UNIX}, and its file is still there after the daemon stops.
    """
    activate = findOrInstall(["systemd-socket-activate"], ["systemd"])
    activation = [activate, "-l", str(unixPath), "--fdname=clws.socket"]
    command = [*TWISTD, "-n", "--pidfile=", "clws", "--port", UNIX]
    daemon = Daemon(
        expectPorts=0,
        launcher=[*activation, "-E", "PYTHONPATH", *command],
        twistd=False,
    )
    try:
        deadline = time.monotonic() + WAIT
        while not unixPath.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        uri = "ws://localhost/echo"
        with unix_connect(str(unixPath), uri, proxy=None, open_timeout=WAIT) as client:
            client.send("activated")
            assert client.recv(WAIT) == "activated"
    finally:
        stop(daemon)
    assert stat.S_ISSOCK(os.lstat(unixPath).st_mode)


def _twistd(
    *clwsArgs: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run(
            [*TWISTD, "-n", "--pidfile=", "clws", *clwsArgs],
            cwd=cwd,
            env={**_environment(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=WAIT,
        )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_noListenFds(workers: str) -> None:
    """
    A systemd: port in a process systemd passed no socket stops twistd
    with a message naming the missing C{LISTEN_FDS}, not a traceback.
    """
    result = _twistd("--port", INET, "--workers", workers)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (
        f"--port {INET!r} is not usable: systemd passed this process no socket"
        in output
    )
    assert "LISTEN_FDS is not set" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("workers", ["1", "2"])
def test_listenPidOfAnotherProcess(workers: str) -> None:
    """
    C{LISTEN_FDS} meant for another process (C{LISTEN_PID} not twistd's,
    as after a fork) is not taken: the message says whose it is.
    """
    env = {"LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "clws.socket"}
    result = _twistd("--port", INET, "--workers", workers, env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "LISTEN_FDS is for pid 1, not this process" in output
    assert "Traceback" not in output


def _launchedToEnd(
    sock: socket.socket, *clwsArgs: str, names: str = "clws.socket"
) -> str:
    """
    Run twistd, passed C{sock} as systemd would, until it exits (it must
    fail, with no traceback).

    @return: its output.
    """
    command = [*launcher([sock], names), *TWISTD, "-n", "--pidfile=", "clws"]
    with tempfile.TemporaryDirectory() as cwd:
        result = subprocess.run(
            [*command, *clwsArgs],
            cwd=cwd,
            env=_environment(),
            pass_fds=[sock.fileno()],
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    return output


def test_notASocketListening() -> None:
    """
    A descriptor that is a socket but not listening (as with C{Accept=yes},
    which passes a connection) is refused with a message saying so.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as unbound:
        output = _launchedToEnd(unbound, "--port", INET)
    assert "file descriptor 3 is not a listening AF_INET stream socket" in output


def test_noListenFdNames(tcpSocket: socket.socket) -> None:
    """
    Twisted's systemd: endpoint drops inherited sockets that come without
    C{LISTEN_FDNAMES} (set by systemd since 227; a hand-made launcher may
    leave it out), or with a different number of names: the message says
    which, not that nothing was passed.
    """
    output = _launchedToEnd(tcpSocket, "--port", INET, names="")
    assert (
        "file descriptor 3 is a listening socket, but LISTEN_FDNAMES is not set"
        in output
    )
    output = _launchedToEnd(tcpSocket, "--port", INET, names="a:b")
    assert "LISTEN_FDNAMES=a:b does not name as many sockets as LISTEN_FDS" in output


# -- in this process -------------------------------------------------------


def passed(
    monkeypatch: pytest.MonkeyPatch, *sockets: socket.socket, names: str = "clws"
) -> None:
    """
    Make Twisted's systemd: parser find C{sockets}, as if systemd had
    passed them to this process.
    """
    fds = [sock.fileno() for sock in sockets]
    listenFDs = ListenFDs(fds, names.split(":")[: len(fds)])
    monkeypatch.setattr(_SystemdParser, "_sddaemon", listenFDs)


def test_readPort(monkeypatch: pytest.MonkeyPatch, tcpSocket: socket.socket) -> None:
    """
    L{readPort} reads a systemd: port from the socket Twisted's parser
    finds: already listening (nothing to check), at its address.
    """
    passed(monkeypatch, tcpSocket)
    spec = readPort(INET)
    assert spec is not None
    host, port = tcpSocket.getsockname()
    assert (spec.kind, spec.address, spec.port) == ("systemd", host, port)
    assert spec.descriptor == tcpSocket.fileno()
    assert listenSpec(INET) == spec
    assert isSystemd(INET) and not isSystemd("tcp:0")


def test_wrongFamily(monkeypatch: pytest.MonkeyPatch, tcpSocket: socket.socket) -> None:
    """
    A socket of another family than C{domain=} says is refused.
    """
    passed(monkeypatch, tcpSocket)
    with pytest.raises(NoInheritedSocket, match="not a listening AF_UNIX stream"):
        inheritedDescriptor(UNIX)
    with pytest.raises(NoInheritedSocket, match="domain= is not an address family"):
        inheritedDescriptor("systemd:domain=NOPE:index=0")


def test_missingIndexOrName(
    monkeypatch: pytest.MonkeyPatch, tcpSocket: socket.socket
) -> None:
    """
    An index or name that systemd did not pass is a usage error listing
    what it did pass.
    """
    passed(monkeypatch, tcpSocket, names="web")
    config = Options()
    message = r"passed this process 1 socket\(s\) \(0: web\), not this one"
    with pytest.raises(usage.UsageError, match=message):
        config.parseOptions(["--port", "systemd:domain=INET:index=1"])
    with pytest.raises(usage.UsageError, match=message):
        Options().parseOptions(["--port", "systemd:domain=INET:name=api"])


def test_workersAccepted(
    monkeypatch: pytest.MonkeyPatch, tcpSocket: socket.socket
) -> None:
    """
    C{--workers} takes a systemd: port; a worker (whose ports are
    inherited) does not look it up in its own environment, which has
    none; the parent shares the one socket.
    """
    passed(monkeypatch, tcpSocket)
    config = Options()
    config.parseOptions(["--workers", "2", "--port", INET])
    assert config["ports"] == [INET]
    monkeypatch.setattr(_SystemdParser, "_sddaemon", ListenFDs([], ()))
    worker = Options()
    worker.inheritedPorts = True
    worker.parseOptions(["--workers", "2", "--port", INET])
    assert worker["ports"] == [INET]
    with pytest.raises(usage.UsageError, match="LISTEN_FDS is not set"):
        Options().parseOptions(["--workers", "2", "--port", INET])
    passed(monkeypatch, tcpSocket)
    [shared] = bindSockets(listenSpec(INET), 2)
    try:
        assert shared.fileno() == tcpSocket.fileno()
    finally:
        shared.detach()  # the fixture's to close


def test_workerEnvironment(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Workers are started without C{LISTEN_PID}, C{LISTEN_FDS} and
    C{LISTEN_FDNAMES}, as C{sd_listen_fds(1)} leaves the environment.
    """
    for name in LISTEN_VARIABLES:
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("OTHER", "kept")
    environment = _workerEnvironment()
    assert not set(LISTEN_VARIABLES) & set(environment)
    assert environment["OTHER"] == "kept"
    assert withoutListenVariables({"LISTEN_FDS": "1", "A": "b"}) == {"A": "b"}
