"""
Running the real C{twistd clws} in a subprocess, for the daemon, TLS and
browser tests.

Each daemon listens on C{127.0.0.1} on a port the kernel picks
(C{tcp:0:...}); the port is read from the daemon's own log line
C{clws listening on HOST:PORT (...)}, so nothing races for a free port.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as wsConnect

#: The source tree: the daemon runs this txclws and its plugin.
ROOT = Path(__file__).resolve().parent.parent

#: Seconds to wait for a daemon to start, a message to come, a daemon to stop.
WAIT = 30.0

#: twistd, run by this very interpreter (so the venv's Twisted is used).
TWISTD = [
    sys.executable,
    "-c",
    "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()",
]

_LISTENING = re.compile(r"clws listening on (\S+):(\d+) ")


class Daemon:
    """
    One C{twistd -n clws} process.

    @ivar ports: the TCP port of each C{--port}, in the order they listened.
    @ivar logPath: the file its log goes to.
    """

    def __init__(
        self,
        *clwsArgs: str,
        expectPorts: int = 1,
        launcher: Sequence[str] = (),
        passFds: Sequence[int] = (),
        twistd: bool = True,
        pythonPath: Sequence[str] = (),
    ) -> None:
        """
        Start C{twistd -n clws CLWSARGS} and wait until it listens.

        @param expectPorts: how many ports to wait for.
        @param launcher: a command that runs twistd's command line, given
            as its arguments (as systemd would, in C{tests.test_systemd}).
        @param passFds: file descriptors the process inherits.
        @param twistd: add twistd's command line after C{launcher} (else
            the launcher's arguments include it).
        @param pythonPath: directories put first on the daemon's path.
        @raise AssertionError: it exited or did not listen in time.
        """
        self.directory = tempfile.TemporaryDirectory(prefix="clws-daemon-")
        self.logPath = Path(self.directory.name, "twistd.log")
        env = _environment(pythonPath)
        command = [*TWISTD, "-n", "--pidfile=", "clws", *clwsArgs]
        self.command = [*launcher, *(command if twistd else ())]
        with open(self.logPath, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.directory.name,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=passFds,
            )
        self.ports: list[int] = []
        try:
            self._waitListening(expectPorts)
        except BaseException:
            self.stop()
            raise

    @property
    def port(self) -> int:
        """
        The first port listened on.
        """
        return self.ports[0]

    def log(self) -> str:
        """
        The daemon's log so far.
        """
        return self.logPath.read_text(encoding="utf-8", errors="replace")

    def waitForLog(self, pattern: str, count: int = 1) -> list[str]:
        """
        Wait until C{pattern} (a regular expression) matches C{count} lines
        of the log.

        @return: the matching lines.
        """
        deadline = time.monotonic() + WAIT
        while True:
            log = self.log().splitlines()
            lines = [line for line in log if re.search(pattern, line)]
            if len(lines) >= count:
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not logged {count}x:\n{self.log()}")
            time.sleep(0.05)

    def url(self, path: str = "/", scheme: str = "ws") -> str:
        """
        The URL of C{path} on the first port.
        """
        host = "localhost" if scheme in ("wss", "https") else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}{path}"

    def stop(self) -> int:
        """
        Stop the daemon (SIGTERM, then SIGKILL after L{WAIT} seconds).

        @return: its exit status.
        """
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(WAIT)
        self.directory.cleanup()
        return self.process.returncode

    def _waitListening(self, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while True:
            found = _LISTENING.findall(self.log())
            if len(found) >= count:
                self.ports = [int(port) for _, port in found]
                return
            if self.process.poll() is not None:
                raise AssertionError(
                    f"twistd exited with {self.process.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"twistd did not listen in time:\n{self.log()}")
            time.sleep(0.05)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def runTwistd(*clwsArgs: str) -> subprocess.CompletedProcess[str]:
    """
    Run C{twistd -n clws CLWSARGS} to completion (for option errors).
    """
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run(
            [*TWISTD, "-n", "--pidfile=", "clws", *clwsArgs],
            cwd=cwd,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=WAIT,
        )


def connect(uri: str, **options: Any) -> ClientConnection:
    """
    A C{websockets} client (use it in a C{with}), with no proxy, no
    compression and bounded waits.
    """
    options = {
        "proxy": None,
        "compression": None,
        "open_timeout": WAIT,
        "close_timeout": WAIT,
        **options,
    }
    return wsConnect(uri, **options)


def _environment(first: Sequence[str] = ()) -> dict[str, str]:
    """
    This environment, with C{first} and then the source tree first on the
    daemon's path.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [*first, str(ROOT), env.get("PYTHONPATH")])
    )
    return env
