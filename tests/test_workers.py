"""
C{twistd -n clws --workers 2} in a subprocess: the parent opens the ports,
two worker processes serve them (each tells its pid at C{/whoami}), a
killed worker is replaced, and C{SIGTERM} closes every client with 1001.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.python import usage
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, unix_connect

from tests._daemon import WAIT, Daemon, connect, runTwistd
from tests.test_tls import makeCertificate
from txclws._workerprocess import WorkerProcess
from txclws._workers import WorkerPool
from txclws.tap import Options

LOCAL = "tcp:0:interface=127.0.0.1"

#: The most connections opened to find a given worker: they are spread
#: about evenly, so a handful normally does.
TRIES = 200


def startPool(
    *ports: str,
    extra: tuple[str, ...] = (),
    closeTimeout: str = "3",
    pythonPath: tuple[str, ...] = (),
) -> Daemon:
    """
    A daemon with two workers serving C{/whoami} on C{ports} (with the
    options C{extra}, and C{pythonPath} first on its module path), once
    both workers are ready.
    """
    arguments = [a for port in ports for a in ("--port", port)]
    daemon = Daemon(
        *arguments,
        *extra,
        "--workers",
        "2",
        "--resource",
        "/whoami=tests.scaling_resources.WhoAmI",
        "--close-timeout",
        closeTimeout,
        expectPorts=sum(not port.startswith("unix:") for port in ports),
        pythonPath=pythonPath,
    )
    try:
        daemon.waitForLog(r"worker \d+ ready", count=2)
    except BaseException:
        daemon.stop()
        raise
    return daemon


def workerPids(daemon: Daemon) -> dict[int, int]:
    """
    The pid of each worker, by number, as the parent logged their starts
    (the latest start of each).
    """
    found = re.findall(r"started worker (\d+) pid=(\d+)", daemon.log())
    return {int(index): int(pid) for index, pid in found}


def whoami(url: str, **options: object) -> tuple[int, ClientConnection]:
    """
    Connect to C{/whoami}: the pid of the worker that took the connection,
    and the connection.
    """
    client = connect(url, legacy=True, **options)  # the caller closes it
    return int(client.recv(WAIT)), client


def reach(
    daemon: Daemon, pids: set[int], scheme: str = "ws", **options: object
) -> dict[int, ClientConnection]:
    """
    Open connections (to the first port, by C{scheme}, with the client's
    C{options}) until each of C{pids} serves one; keep one per pid.

    @raise AssertionError: a pid was not reached in L{TRIES} connections.
    """
    held: dict[int, ClientConnection] = {}
    for _ in range(TRIES):
        pid, client = whoami(daemon.url("/whoami", scheme), **options)
        if pid in held or pid not in pids:
            client.close()
        else:
            held[pid] = client
        if set(held) == pids:
            return held
    raise AssertionError(f"{TRIES} connections reached {set(held)}, not {pids}")


@pytest.fixture(scope="module")
def pool() -> Iterator[Daemon]:
    """
    One two-worker daemon for the tests that leave it running.
    """
    daemon = startPool(LOCAL)
    yield daemon
    daemon.stop()


def test_spreadOverWorkers(pool: Daemon) -> None:
    """
    Connections to the one port are served by both workers, two processes
    other than the parent.
    """
    pids = workerPids(pool)
    assert sorted(pids) == [1, 2]
    assert pool.process.pid not in pids.values()
    held = reach(pool, set(pids.values()))
    for pid, client in held.items():
        client.send(f"from {pid}")
        assert client.recv(WAIT) == f"from {pid}"
        client.close()


def test_killedWorkerReplaced(pool: Daemon) -> None:
    """
    A worker killed with C{SIGKILL} is logged as dead and replaced by a
    new process that serves the port; its clients are dropped, the other
    worker's are untouched.
    """
    pids = workerPids(pool)
    victim, survivor = pids[1], pids[2]
    held = reach(pool, {victim, survivor})
    os.kill(victim, signal.SIGKILL)
    pool.waitForLog(
        rf"worker 1 pid={victim} died \(killed by signal 9 \(SIGKILL\)\); "
        r"starting another"
    )
    pool.waitForLog(r"started worker 1 pid=\d+", count=2)
    replacement = workerPids(pool)[1]
    assert replacement not in (victim, survivor)
    pool.waitForLog(rf"worker 1 pid={replacement}: .*worker 1 ready")
    with pytest.raises(ConnectionClosed):
        held[victim].recv(WAIT)
    held[survivor].send("still here")
    assert held[survivor].recv(WAIT) == "still here"
    for client in reach(pool, {replacement, survivor}).values():
        client.close()
    held[survivor].close()


def test_sigtermClosesEveryClient() -> None:
    """
    C{SIGTERM} to the parent stops every worker gracefully: each client,
    whichever worker serves it, is closed with 1001, and the workers are
    logged as stopped, not dead.
    """
    daemon = startPool(LOCAL)
    try:
        held = reach(daemon, set(workerPids(daemon).values()))
        os.kill(daemon.process.pid, signal.SIGTERM)
        for client in held.values():
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(WAIT)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                1001,
                "server shutting down",
            )
        daemon.process.wait(WAIT)
        log = daemon.log()
        for index, pid in workerPids(daemon).items():
            assert f"worker {index} pid={pid} stopped (exit code 0)" in log
        assert " died " not in log
    finally:
        daemon.stop()


def running(pid: int) -> bool:
    """
    Whether process C{pid} runs (a zombie does not).
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_workersStopWithParent() -> None:
    """
    When the parent dies without a word (C{SIGKILL}), the workers notice
    and stop, and the port closes: no orphan keeps serving.
    """
    daemon = startPool(LOCAL)
    try:
        pids = workerPids(daemon).values()
        os.kill(daemon.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + WAIT
        while any(running(pid) for pid in pids):
            assert time.monotonic() < deadline, "orphaned workers still run"
            time.sleep(0.05)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", daemon.port), timeout=WAIT)
    finally:
        daemon.stop()


def test_tlsAndUnixPorts(tmp_path: Path) -> None:
    """
    ssl: and unix: ports are shared too; each worker builds the TLS
    context itself.
    """
    cert, key = makeCertificate(tmp_path)
    path = tmp_path / "clws.sock"
    daemon = startPool(
        f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
        f"unix:{path}",
    )
    try:
        workers = set(workerPids(daemon).values())
        context = ssl.create_default_context(cafile=str(cert))
        pid, client = whoami(daemon.url("/whoami", "wss"), ssl=context)
        with client:
            assert pid in workers
            client.send("over TLS")
            assert client.recv(WAIT) == "over TLS"
        with unix_connect(str(path), "ws://localhost/whoami", proxy=None) as client:
            assert int(client.recv(WAIT)) in workers
        assert re.search(rf"clws listening on {re.escape(str(path))} ", daemon.log())
    finally:
        daemon.stop()
    assert not path.exists()


def parse(*arguments: str) -> Options:
    """
    C{clws} options parsed from C{arguments}.
    """
    config = Options()
    config.parseOptions(list(arguments))
    return config


def test_workersOption() -> None:
    """
    C{--workers} is 1 by default, takes a positive number, and refuses
    what the workers cannot share: other endpoint types (haproxy: here;
    systemd: is shared, L{tests.test_systemd}), and the debugger, which
    would have no terminal.
    """
    assert parse()["workers"] == 1
    assert parse("--workers", "4", "--port", "unix:/tmp/x.sock")["workers"] == 4
    with pytest.raises(usage.UsageError):
        parse("--workers", "0")
    parse("--port", "haproxy:tcp:0")  # fine in one process
    with pytest.raises(
        usage.UsageError, match="tcp:, tcp6:, ssl:, stdssl:, unix: and sys"
    ):
        parse("--workers", "2", "--port", "haproxy:tcp:0")
    with pytest.raises(usage.UsageError, match="terminal"):
        parse("--workers", "2", "--debug-resource-errors")


def test_helpDocumentsScaling() -> None:
    """
    C{twistd clws --help} documents C{--workers} (and C{--max-clients} as
    per worker) and C{--hub}.
    """
    result = runTwistd("--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "--workers=" in text and "Worker processes serving the ports" in text
    assert "With --workers, a limit per worker" in text
    assert "--hub=" in text and "redis://host:port/db" in text


class _FakeWorker(WorkerProcess):
    def __init__(self, index: int, age: float) -> None:
        self.index = index
        self.startedAt = time.monotonic() - age


def test_restartBackoff() -> None:
    """
    A worker that dies soon after starting is restarted after a delay that
    doubles, up to 10 s, so that a worker that cannot start does not make
    the parent spin; one that ran a while is restarted at once.
    """
    pool = WorkerPool(2, [], [], 5.0, reactor=object())
    delays = [pool._restartDelay(_FakeWorker(1, 0.1)) for _ in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert pool._restartDelay(_FakeWorker(1, 60.0)) == 0.0
    assert pool._restartDelay(_FakeWorker(1, 0.1)) == 0.5
    assert pool._restartDelay(_FakeWorker(2, 0.1)) == 0.5


def startUnixPool(path: Path, workers: int = 2, options: str = "") -> Daemon:
    """
    A daemon serving C{/whoami} on a TCP port and on the unix socket
    C{path} with C{workers} processes, once it serves both (the TCP port
    tells L{Daemon} it listens).
    """
    if workers > 1:
        daemon = startPool(LOCAL, f"unix:{path}{options}")
    else:
        daemon = Daemon(
            "--port",
            LOCAL,
            "--port",
            f"unix:{path}{options}",
            "--resource",
            "/whoami=tests.scaling_resources.WhoAmI",
            "--close-timeout",
            "3",
        )
    try:
        daemon.waitForLog(rf"clws listening on {re.escape(str(path))} ")
    except BaseException:
        daemon.stop()
        raise
    return daemon


def echoOverUnix(path: Path, text: str) -> int:
    """
    Connect to C{/whoami} over the unix socket C{path}, check that C{text}
    comes back, and close.

    @return: the pid of the worker that served it.
    """
    with unix_connect(
        str(path), "ws://localhost/whoami", proxy=None, open_timeout=WAIT
    ) as client:
        pid = int(client.recv(WAIT))
        client.send(text)
        assert client.recv(WAIT) == text
    return pid


def test_unixWorkerStopKeepsPath(tmp_path: Path) -> None:
    """
    A worker of a unix: port that stops (C{SIGTERM}) leaves the socket's
    path to the others: 50 new connections right after it has gone are
    all served, and its replacement serves on the same path.
    """
    path = tmp_path / "clws.sock"
    daemon = startUnixPool(path)
    try:
        victim = workerPids(daemon)[1]
        os.kill(victim, signal.SIGTERM)
        daemon.waitForLog(rf"worker 1 pid={victim} died \(exit code 0\)")
        served = {echoOverUnix(path, f"after {n}") for n in range(50)}
        assert victim not in served
        daemon.waitForLog(r"started worker 1 pid=\d+", count=2)
        replacement = workerPids(daemon)[1]
        daemon.waitForLog(rf"worker 1 pid={replacement}: .*worker 1 ready")
        for _ in range(TRIES):
            if echoOverUnix(path, "again") == replacement:
                break
        else:
            raise AssertionError(f"the replacement {replacement} served nothing")
        assert "FileNotFoundError" not in daemon.log()
    finally:
        daemon.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_unixSecondDaemonRefused(tmp_path: Path, workers: int) -> None:
    """
    A second daemon (one process or two) on the unix: path a first one
    (with two workers) serves is refused with a message naming the path,
    no traceback; the first keeps serving on it.
    """
    path = tmp_path / "clws.sock"
    first = startUnixPool(path)
    try:
        result = runTwistd(
            "--port", LOCAL, "--port", f"unix:{path}", "--workers", str(workers)
        )
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert f"--port unix:{path}: another process is listening on {path}" in output
        assert "Traceback" not in output
        assert echoOverUnix(path, "still mine") in workerPids(first).values()
    finally:
        first.stop()


def staleSocket(path: Path) -> None:
    """
    Leave a socket file at C{path} with nothing listening, as a daemon
    that was killed does.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_unixStaleSocketReplaced(tmp_path: Path, workers: int) -> None:
    """
    A stale socket file at the path (nothing listening, no lock file) is
    removed and the daemon starts, the same with one process as with two.
    """
    path = tmp_path / "clws.sock"
    staleSocket(path)
    daemon = startUnixPool(path, workers)
    try:
        assert echoOverUnix(path, "fresh") != daemon.process.pid or workers == 1
        daemon.waitForLog(rf"removing the stale socket {re.escape(str(path))} ")
    finally:
        daemon.stop()
    assert not path.exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_unixPathNotASocket(tmp_path: Path, workers: int) -> None:
    """
    A file that is not a socket at the path is left alone and the daemon
    does not start, with a message naming it, the same with one process
    as with two.
    """
    path = tmp_path / "clws.sock"
    path.write_text("not a socket")
    result = runTwistd("--port", f"unix:{path}", "--workers", str(workers))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"--port unix:{path}: {path} exists and is not a socket" in output
    assert "Traceback" not in output
    assert path.read_text() == "not a socket"


@pytest.mark.parametrize("workers", [1, 2])
def test_unixCleanStop(tmp_path: Path, workers: int) -> None:
    """
    A clean stop (C{SIGTERM}) of a daemon serving a unix: port logs no
    error: no unhandled error, no critical or error line, no traceback;
    and the path is removed.
    """
    path = tmp_path / "clws.sock"
    daemon = startUnixPool(path, workers)
    try:
        echoOverUnix(path, "before the stop")
        os.kill(daemon.process.pid, signal.SIGTERM)
        daemon.process.wait(WAIT)
        daemon.waitForLog("Server Shut Down")
        log = daemon.log()
    finally:
        daemon.stop()
    assert "Unhandled error" not in log
    assert "Traceback" not in log
    assert not re.search(r"#(critical|error)\]", log), log
    assert not path.exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_unixMode(tmp_path: Path, workers: int) -> None:
    """
    A unix: socket is created mode 0666 (Twisted's default), or with the
    C{mode=} of its description, the same with one process or two.
    """
    for options, mode in (("", 0o666), (":mode=660", 0o660)):
        path = tmp_path / f"clws{mode:o}.sock"
        daemon = startUnixPool(path, workers, options)
        try:
            assert stat.S_IMODE(path.stat().st_mode) == mode
        finally:
            daemon.stop()


def test_workersWithoutTLSLibraries(tmp_path: Path) -> None:
    """
    On a plain C{pip install .} (no pyOpenSSL, the C{tls} extra), C{--workers}
    serves: the workers imported Twisted's TLS wrapper at start, failed,
    and were restarted for ever.  Checked with C{OpenSSL} made unimportable
    for the daemon and its workers; both workers answer.
    """
    blocked = tmp_path / "OpenSSL"
    blocked.mkdir()
    (blocked / "__init__.py").write_text(
        "raise ImportError('pyOpenSSL is not installed (blocked by the test)')\n"
    )
    daemon = startPool("tcp:0:interface=127.0.0.1", pythonPath=(str(tmp_path),))
    try:
        held = reach(daemon, set(workerPids(daemon).values()))
        for client in held.values():
            client.close()
        assert "ModuleNotFoundError" not in daemon.log()
        assert "died" not in daemon.log()
    finally:
        daemon.stop()
