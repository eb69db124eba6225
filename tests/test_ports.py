"""
L{txclws._ports}: where a C{--port} listens, read without listening, and
the claim on a unix: socket's path that the daemon makes before binding,
with one process or many.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_tls import makeCertificate
from txclws._ports import (
    CannotListen,
    ListenSpec,
    checkPort,
    claimUnixPath,
    listenSpec,
    readPort,
    unixPathOf,
)


@pytest.mark.parametrize(
    ("description", "spec"),
    [
        ("tcp:8080", ListenSpec("tcp", "", 8080, 50)),
        (
            "tcp:0:interface=127.0.0.1:backlog=7",
            ListenSpec("tcp", "127.0.0.1", 0, 7),
        ),
        ("tcp6:8080", ListenSpec("tcp", "::", 8080, 50)),
        ("unix:/run/x.sock", ListenSpec("unix", "/run/x.sock", 0, 50, 0o666)),
        (
            "unix:/run/x.sock:mode=660:backlog=9",
            ListenSpec("unix", "/run/x.sock", 0, 9, 0o660),
        ),
    ],
)
def test_readPort(description: str, spec: ListenSpec) -> None:
    """
    A tcp:, tcp6: or unix: description is read as the reactor call its
    endpoint would make; nothing listens.
    """
    assert readPort(description) == spec
    assert listenSpec(description) == spec


def test_readSSLPort(tmp_path: Path) -> None:
    """
    An ssl: description is read with the TLS context its endpoint built
    from the key and certificate files.
    """
    cert, key = makeCertificate(tmp_path)
    spec = readPort(f"ssl:8443:privateKey={key}:certKey={cert}")
    assert spec is not None
    assert (spec.kind, spec.port, spec.backlog) == ("ssl", 8443, 50)
    assert spec.contextFactory is not None


def test_readOtherPort() -> None:
    """
    An endpoint kind that cannot be read before it listens (haproxy: here;
    systemd: is read from its socket, L{tests.test_systemd}) is L{None}
    for L{readPort}, and refused by L{listenSpec}, which the workers use;
    an unparsable description raises its parser's error.
    """
    assert readPort("haproxy:tcp:0") is None
    with pytest.raises(ValueError, match="--workers serves tcp:"):
        listenSpec("haproxy:tcp:0")
    with pytest.raises(ValueError, match="invalid literal"):
        readPort("tcp:abc")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ListenSpec("tcp", "", 65536, 50), "port 65536 is not 0 to 65535"),
        (ListenSpec("ssl", "", -1, 50), "port -1 is not 0 to 65535"),
        (ListenSpec("tcp", "", 80, 0), "backlog 0 is not 1 to"),
        (ListenSpec("tcp", "", 80, 2**31), "backlog 2147483648 is not 1 to"),
        (ListenSpec("unix", "/no/such/dir/x.sock", 0, 50), "/no/such/dir does not"),
        (ListenSpec("unix", "/tmp/" + "x" * 110, 0, 50), "over 107 bytes"),
        (ListenSpec("unix", "/tmp/x.sock", 0, 50, 0o17777), "not a file mode"),
    ],
)
def test_checkPort(spec: ListenSpec, message: str) -> None:
    """
    What C{bind()} or C{listen()} would refuse is found before either runs.
    """
    with pytest.raises(ValueError, match=message):
        checkPort(spec)


def test_checkPortFine(tmp_path: Path) -> None:
    """
    Usable ports pass.
    """
    checkPort(ListenSpec("tcp", "", 0, 1))
    checkPort(ListenSpec("tcp", "127.0.0.1", 65535, 2**31 - 1))
    checkPort(ListenSpec("unix", str(tmp_path / "x.sock"), 0, 50, 0o600))


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[Path]:
    """
    A unix socket path with a listener on it.
    """
    path = tmp_path / "live.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(5)
    yield path
    server.close()


def test_claimLive(listening: Path) -> None:
    """
    A path a process listens on is refused, with the option and the path
    in the message, and left as it is.
    """
    with pytest.raises(CannotListen) as caught:
        claimUnixPath(str(listening), "--port unix:x")
    assert str(caught.value) == (
        f"--port unix:x: another process is listening on {listening}; stop it, "
        "or choose another path"
    )
    assert listening.is_socket()


def staleSocket(path: Path) -> Path:
    """
    Leave a socket file at C{path} with nothing listening on it, as a
    process that died does.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()
    assert path.is_socket()
    return path


def test_claimStale(tmp_path: Path) -> None:
    """
    A socket file nobody listens on is removed; a missing path is fine.
    """
    path = staleSocket(tmp_path / "stale.sock")
    claimUnixPath(str(path), "--port unix:x")
    assert not path.exists()
    claimUnixPath(str(path), "--port unix:x")


def test_claimNotASocket(tmp_path: Path) -> None:
    """
    A file that is not a socket is never removed: a typo must not delete
    a file.
    """
    path = tmp_path / "data.txt"
    path.write_text("keep me")
    with pytest.raises(CannotListen, match="exists and is not a socket"):
        claimUnixPath(str(path), "--port unix:x")
    assert path.read_text() == "keep me"


def test_noTestingReactorImported() -> None:
    """
    The daemon's modules, parent and worker, do not load
    C{twisted.internet.testing} (test support, not for production), and
    the worker pool does not import the daemon's options (no cycle
    C{tap <-> _workers}).
    """
    code = (
        "import sys\n"
        "import txclws._workers\n"
        "assert 'txclws.tap' not in sys.modules\n"
        "import txclws.tap, txclws._workerchild\n"
        "assert 'twisted.internet.testing' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_unixPathOf() -> None:
    """
    The path to claim is that of a unix: port; other ports have none.
    """
    assert unixPathOf("unix:/run/x.sock:mode=600") == "/run/x.sock"
    assert unixPathOf("tcp:0") is None
