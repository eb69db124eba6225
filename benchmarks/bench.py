"""
Driver of benchmarks/run: txclws against reference WebSocket servers.

    benchmarks/run [--quick] [--only W1,W4] [--servers txclws,autobahn]
                   [--markdown] [--profile]

It needs only the standard library: it makes its own venv under
benchmarks/.cache/venv with the reference servers (benchmarks/requirements.txt),
installs txclws there from the work tree (non-editable, again whenever its
sources change), and builds the load generator (benchmarks/loadgen.c) with the
system C compiler.

Each server runs as its own process, a fresh one per workload, pinned to CPU
0; the load generator is pinned to CPU 1.  Server CPU time comes from
/proc/PID/stat (utime + stime) and memory from /proc/PID/status (VmRSS),
read before and after each phase of the load generator.  See
benchmarks/README.md for the workloads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / ".cache"
VENV = CACHE / "venv"
LOGS = CACHE / "logs"
RESULTS = HERE / "results"
LOADGEN_SRC = HERE / "loadgen.c"
LOADGEN = CACHE / "loadgen"
NODE = CACHE / "node"
#: The self-signed certificate and key of the TLS workloads (W1tls, W2tls).
TLS_CERT = CACHE / "tls" / "cert.pem"
TLS_KEY = CACHE / "tls" / "key.pem"
#: Node's ws, installed from npm into NODE (changing it reinstalls).
NODE_WS = "ws@8.23.0"
MiB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CPU = "0"
LOADGEN_CPU = "1"


@dataclass(frozen=True)
class Server:
    """
    A server under test: its name in the table and its script.
    """

    name: str
    script: str
    aliases: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    default: bool = True
    #: C{"python"} (the reference venv) or C{"node"}.
    runtime: str = "python"
    #: Whether it speaks permessage-deflate (the Deflate workload).
    deflate: bool = True
    #: Whether it has a broadcast API (else both broadcast modes loop).
    broadcastApi: bool = True


SERVERS = [
    Server("txclws", "txclws_server.py"),
    Server(
        "txclws-pure",
        "txclws_server.py",
        ("txclws-nonumpy",),
        ("--pure",),
        default=False,
    ),
    Server(
        "txclws-notune",
        "txclws_server.py",
        ("txclws-no-tune-allocator",),
        ("--no-tune-allocator",),
        default=False,
    ),
    Server(
        "txclws-stdssl",
        "txclws_server.py",
        ("stdssl",),
        ("--stdssl",),
        default=False,
    ),
    Server("picows", "picows_server.py", deflate=False, broadcastApi=False),
    Server(
        "node-ws",
        "ws_server.js",
        ("nodews", "node"),
        runtime="node",
        broadcastApi=False,
    ),
    Server("websockets", "websockets_server.py", ("websockets-asyncio", "ws")),
    Server("autobahn", "autobahn_server.py", ("autobahn-twisted",)),
    Server(
        "twisted.web",
        "twisted_web_server.py",
        ("twisted-web", "twistedweb", "tw"),
        deflate=False,
        broadcastApi=False,
    ),
]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class HarnessError(Exception):
    """
    The harness itself failed (not a server being slow).
    """


# -- set-up ------------------------------------------------------------------


def run(command: list[Any], log: Path, **kwargs: Any) -> None:
    """
    Run C{command}, appending its output to C{log}; raise if it fails.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(map(str, command))}\n")
        out.flush()
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, **kwargs)
    if result.returncode:
        raise HarnessError(f"{command[0]} failed ({result.returncode}); see {log}")


def digest(paths: list[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for path in paths:
        h.update(str(path.relative_to(REPO)).encode())
        h.update(path.read_bytes() if path.is_file() else b"<dir>")
    return h.hexdigest()


def venvPython() -> Path:
    return VENV / "bin" / "python"


def ensureVenv() -> None:
    """
    Make the reference venv unless it is there for these requirements.
    """
    requirements = HERE / "requirements.txt"
    key = digest([requirements], sys.version)
    stamp = VENV / ".bench-stamp"
    if stamp.exists() and stamp.read_text() == key and venvPython().exists():
        return
    say(f"creating {VENV} (log: {LOGS / 'venv.log'})")
    shutil.rmtree(VENV, ignore_errors=True)
    log = LOGS / "venv.log"
    try:
        run([sys.executable, "-m", "venv", VENV], log)
    except HarnessError as exc:
        raise HarnessError(f"{exc}; on Debian, apt-get install python3-venv") from exc
    pip = [venvPython(), "-m", "pip", "install", "--disable-pip-version-check"]
    run([*pip, "-r", requirements], log)
    stamp.write_text(key)


def txclwsSources() -> list[Path]:
    files = [REPO / name for name in ("setup.py", "pyproject.toml", "README.md")]
    for top in ("txclws", "twisted"):
        for path in sorted((REPO / top).rglob("*")):
            if "__pycache__" not in path.parts:
                files.append(path)
    return [path for path in files if path.exists()]


def ensureTxclws() -> None:
    """
    Install txclws from the work tree, non-editable, if its sources changed
    since the last install.  It is built from a copy in the cache so that
    the build leaves nothing in the work tree.
    """
    sources = txclwsSources()
    key = digest(sources)
    stamp = VENV / ".txclws-stamp"
    if stamp.exists() and stamp.read_text() == key:
        return
    say("installing txclws[speedups] from the work tree")
    copy = CACHE / "txclws-src"
    shutil.rmtree(copy, ignore_errors=True)
    for path in sources:
        target = copy / path.relative_to(REPO)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    pip = [venvPython(), "-m", "pip", "install", "--disable-pip-version-check"]
    pip += ["--no-build-isolation"]
    log = LOGS / "txclws-install.log"
    # The dependencies of its 'speedups' extra (NumPy masking) and 'tls'
    # (pyOpenSSL: 'import txclws' imports twisted.internet.ssl since the
    # client role), then txclws itself, rebuilt from this copy whatever
    # version it claims.
    run([*pip, f"{copy}[speedups,tls]"], log)
    run([*pip, "--no-deps", "--force-reinstall", copy], log)
    stamp.write_text(key)


def ensureNode() -> None:
    """
    Install Node's C{ws} into C{.cache/node} with npm, unless it is there
    in this version.
    """
    stamp = NODE / ".bench-stamp"
    if stamp.exists() and stamp.read_text() == NODE_WS:
        return
    if not (shutil.which("node") and shutil.which("npm")):
        raise HarnessError("the node-ws server needs node and npm: apt-get install npm")
    say(f"installing {NODE_WS} into {NODE} (log: {LOGS / 'npm.log'})")
    NODE.mkdir(parents=True, exist_ok=True)
    run(
        ["npm", "install", "--prefix", NODE, "--no-audit", "--no-fund", NODE_WS],
        LOGS / "npm.log",
    )
    stamp.write_text(NODE_WS)


def ensureLoadgen() -> None:
    """
    Build the load generator if it is missing or older than its source.
    """
    fresh = LOADGEN.exists() and LOADGEN.stat().st_mtime >= LOADGEN_SRC.stat().st_mtime
    if fresh and (LOADGEN.parent / ".loadgen-ssl").exists():
        return
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not compiler:
        raise HarnessError("no C compiler (gcc or cc): apt-get install gcc")
    say(f"building {LOADGEN} with {compiler}")
    try:
        run(
            [
                *(compiler, "-O2", "-Wall", "-o", LOADGEN, LOADGEN_SRC),
                *("-lz", "-lssl", "-lcrypto"),
            ],
            LOGS / "loadgen-build.log",
        )
    except HarnessError as exc:
        raise HarnessError(
            f"{exc} (it needs zlib's and OpenSSL's headers: "
            "apt-get install zlib1g-dev libssl-dev)"
        ) from None
    (LOADGEN.parent / ".loadgen-ssl").touch()


def ensureCertificate() -> None:
    """
    Make the TLS workloads' self-signed certificate (EC P-256, for
    C{localhost} and 127.0.0.1) unless it is there: with the C{openssl}
    command, else with C{cryptography} from the reference venv (pyOpenSSL
    needs it).
    """
    if TLS_CERT.exists() and TLS_KEY.exists():
        return
    TLS_CERT.parent.mkdir(parents=True, exist_ok=True)
    say(f"making a self-signed certificate in {TLS_CERT.parent}")
    log = LOGS / "certificate.log"
    if shutil.which("openssl"):
        run(
            [
                *("openssl", "req", "-x509", "-newkey", "ec"),
                *("-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
                *("-keyout", TLS_KEY, "-out", TLS_CERT, "-days", "3650"),
                *("-subj", "/CN=localhost"),
                *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
            ],
            log,
        )
        return
    run([venvPython(), "-c", CERTIFICATE_SCRIPT, TLS_CERT, TLS_KEY], log)


#: Makes the certificate with C{cryptography} (argv: cert path, key path).
CERTIFICATE_SCRIPT = """
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
now = datetime.datetime.now(datetime.timezone.utc)
alt = x509.SubjectAlternativeName(
    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
)
cert = (
    x509.CertificateBuilder().subject_name(name).issuer_name(name)
    .public_key(key.public_key()).serial_number(x509.random_serial_number())
    .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
    .add_extension(alt, critical=False).sign(key, hashes.SHA256())
)
open(sys.argv[1], "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(sys.argv[2], "wb").write(key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption()))
"""


def raiseFileLimit() -> int:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# -- processes -----------------------------------------------------------------

HAVE_TASKSET = shutil.which("taskset") is not None


def pinned(command: list[Any], cpu: str) -> list[str]:
    prefix = ["taskset", "-c", cpu] if HAVE_TASKSET else []
    return [*prefix, *map(str, command)]


def readLine(stream: Any, timeout: float, what: str) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}")
    line = stream.readline()
    if not line:
        raise HarnessError(f"{what}: the process ended")
    return line.decode() if isinstance(line, bytes) else line


def procStat(pid: int) -> float:
    """
    CPU seconds (user + system) used so far by process C{pid}.
    """
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def schedSeconds(pid: int) -> float:
    """
    CPU seconds used so far by all threads of process C{pid}, from
    /proc/PID/task/*/schedstat: nanosecond precision, where /proc/PID/stat
    counts 10 ms ticks (used where a workload takes little CPU).
    """
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def rssKiB(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise HarnessError(f"no VmRSS for {pid}")


class RunningServer:
    """
    One server process, started for one workload.
    """

    def __init__(
        self, server: Server, label: str, deflate: bool = False, tls: bool = False
    ) -> None:
        self.server = server
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log = LOGS / f"server-{server.name}.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env["PYTHONUNBUFFERED"] = "1"
        env["NODE_PATH"] = str(NODE / "node_modules")
        runtime = [venvPython()] if server.runtime == "python" else ["node"]
        options = [*server.options, *(["--deflate"] if deflate else [])]
        if tls:
            options += ["--tls-cert", TLS_CERT, "--tls-key", TLS_KEY]
        with self.log.open("a") as log:
            log.write(f"\n==== {label} ====\n")
            log.flush()
            self.process = subprocess.Popen(
                pinned(
                    [*runtime, HERE / "servers" / server.script, "0", *options],
                    SERVER_CPU,
                ),
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=HERE / "servers",
                env=env,
            )
        try:
            line = readLine(self.process.stdout, 30, f"{server.name} to listen")
        except HarnessError:
            self.stop()
            raise HarnessError(f"{server.name} did not start; see {self.log}") from None
        if not line.startswith("LISTENING "):
            self.stop()
            raise HarnessError(f"{server.name} said {line!r}; see {self.log}")
        self.port = int(line.split()[1])
        self.pid = self.process.pid
        time.sleep(0.2)

    def cpu(self) -> float:
        return procStat(self.pid)

    def cpuPrecise(self) -> float:
        return schedSeconds(self.pid)

    def rss(self) -> int:
        return rssKiB(self.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


@dataclass
class Part:
    """
    One workload run on open connections: the load generator's "done"
    report and the server's CPU seconds meanwhile.
    """

    done: dict[str, Any]
    cpu: float
    profile: Path | None = None
    cpuPrecise: float = 0.0
    #: The server's RSS (KiB) at the end of the part.
    rss: int = 0


@dataclass
class Phases:
    """
    What one load generator run reported, with the server's CPU and memory
    around each of its phases.
    """

    connected: dict[str, Any]
    parts: list[Part]
    connectCpu: float
    rssBefore: int
    rssConnected: int

    @property
    def done(self) -> dict[str, Any]:
        return self.parts[0].done

    @property
    def workCpu(self) -> float:
        return self.parts[0].cpu

    @property
    def profile(self) -> Path | None:
        return self.parts[0].profile


class Profiler:
    """
    py-spy sampling the server while the workload runs (--profile).
    """

    def __init__(self, pid: int, output: Path) -> None:
        self.output = output
        output.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                VENV / "bin" / "py-spy",
                "record",
                "--pid",
                str(pid),
                "--rate",
                "500",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(LOGS / "py-spy.log").open("a"),
        )
        time.sleep(0.5)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def loadgen(
    server: RunningServer,
    args: list[Any],
    timeout: float,
    profiles: list[Path | None] | None = None,
    commands: tuple[str, ...] = ("go",),
    profileConnect: Path | None = None,
) -> Phases:
    """
    Run the load generator against C{server}: connect, then run the
    workload once per line of C{commands} (one "go", or broadcast commands),
    sampling the server's CPU around each.

    @param profiles: where to record a py-spy profile of each command's run.
    @param profileConnect: where to record one of the connection phase.
    """
    profiler = Profiler(server.pid, profileConnect) if profileConnect else None
    rssBefore = server.rss()
    cpu0 = server.cpu()
    command = pinned(
        [LOADGEN, "--port", server.port, *args, "--timeout", timeout], LOADGEN_CPU
    )
    with (LOGS / "loadgen.log").open("a") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
        )
    parts = []
    try:
        connected = json.loads(readLine(process.stdout, timeout * 4, "connections"))
        if connected.get("phase") != "connected":
            raise HarnessError(f"load generator: {connected}")
        if connected["open"] != connected["conns"] or connected["errors"]:
            raise HarnessError(
                f"only {connected['open']} of {connected['conns']} connections "
                f"opened; see {LOGS / 'loadgen.log'}"
            )
        time.sleep(0.3)  # let the server settle before reading its memory
        connectCpu = server.cpu() - cpu0
        rssConnected = server.rss()
        if profiler is not None:
            profiler.stop()
            profiler = None
        for n, line in enumerate(commands):
            profile = profiles[n] if profiles else None
            if profile is not None:
                profiler = Profiler(server.pid, profile)
            cpu1 = server.cpu()
            precise1 = server.cpuPrecise()
            assert process.stdin is not None
            process.stdin.write(line.encode() + b"\n")
            process.stdin.flush()
            done = json.loads(readLine(process.stdout, timeout * 3 + 60, line))
            cpu2 = server.cpu()
            precise2 = server.cpuPrecise()
            if profiler is not None:
                profiler.stop()
                profiler = None
            if done.get("phase") != "done":
                raise HarnessError(f"load generator: {done}")
            if done["errors"] or done["timed_out"]:
                raise HarnessError(
                    f"load generator saw {done['errors']} errors, timed out: "
                    f"{bool(done['timed_out'])}; see {LOGS / 'loadgen.log'}"
                )
            rss = server.rss()
            parts.append(Part(done, cpu2 - cpu1, profile, precise2 - precise1, rss))
    finally:
        if profiler is not None:
            profiler.stop()
        if process.poll() is None:
            process.kill()
        process.wait()
    return Phases(connected, parts, connectCpu, rssBefore, rssConnected)


# -- workloads -------------------------------------------------------------


@dataclass
class Settings:
    quick: bool
    profileDir: Path | None

    @property
    def duration(self) -> float:
        return 2.0 if self.quick else 10.0

    @property
    def idleConnections(self) -> int:
        return 1000 if self.quick else 5000

    @property
    def broadcastCount(self) -> int:
        return 200 if self.quick else 1000


@dataclass
class Outcome:
    """
    The figures of one workload on one server, and the load on both sides.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    load: list[dict[str, float]] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)


def noteLoad(outcome: Outcome, part: Part, label: str) -> None:
    wall = part.done["wall_s"] or 1e-9
    outcome.load.append(
        {
            "part": label,
            "wall_s": wall,
            "server_cpu_s": part.cpu,
            "server_util": part.cpu / wall,
            "loadgen_cpu_s": part.done["cpu_s"],
            "loadgen_util": part.done["cpu_s"] / wall,
        }
    )
    if part.profile is not None:
        outcome.profiles.append(str(part.profile))


def profilePath(settings: Settings, server: Server, label: str) -> Path | None:
    if settings.profileDir is None:
        return None
    return settings.profileDir / f"{label}.txt"


def workloadEcho(
    conns: int, outstanding: int, size: int, binary: bool, tls: bool = False
) -> Callable[[Server, Settings, str], Outcome]:
    """
    Echo: C{conns} connections each keeping C{outstanding} messages of
    C{size} bytes in flight (over C{wss://} with C{tls}).
    """

    def measure(server: Server, settings: Settings, label: str) -> Outcome:
        running = RunningServer(server, label, tls=tls)
        try:
            args = ["--mode", "echo", "--path", "/echo", "--conns", conns]
            args += ["--tls"] if tls else []
            args += ["--outstanding", outstanding, "--size", size]
            args += ["--duration", settings.duration] + (["--binary"] if binary else [])
            phases = loadgen(running, args, 60, [profilePath(settings, server, label)])
        finally:
            running.stop()
        done = phases.done
        messages = done["messages"]
        outcome = Outcome()
        outcome.metrics = {
            "msg_per_s": done["msg_per_s"],
            "mb_per_s": done["mb_per_s"],
            "cpu_us_per_msg": phases.workCpu / messages * 1e6,
            "cpu_ms_per_mib": phases.workCpu / (done["bytes"] / MiB) * 1e3,
            "p50_us": done["lat_p50_us"],
            "p99_us": done["lat_p99_us"],
            "messages": messages,
            "rss_after_kib": phases.parts[0].rss,
        }
        noteLoad(outcome, phases.parts[0], label)
        return outcome

    return measure


def workloadIdle(server: Server, settings: Settings, label: str) -> Outcome:
    count = settings.idleConnections
    running = RunningServer(server, label)
    try:
        args = ["--mode", "idle", "--path", "/echo"]
        args += ["--conns", count, "--concurrency", 100]
        profile = profilePath(settings, server, f"{label}-connect")
        phases = loadgen(running, args, 60, profileConnect=profile)
    finally:
        running.stop()
    outcome = Outcome()
    outcome.metrics = {
        "kib_per_conn": (phases.rssConnected - phases.rssBefore) / count,
        "cpu_us_per_handshake": phases.connectCpu / count * 1e6,
        "handshakes_per_s": count / phases.connected["seconds"],
        "rss_before_kib": phases.rssBefore,
        "rss_after_kib": phases.rssConnected,
    }
    outcome.load.append(
        {
            "part": f"{label} connect",
            "wall_s": phases.connected["seconds"],
            "server_cpu_s": phases.connectCpu,
            "server_util": phases.connectCpu / phases.connected["seconds"],
            "loadgen_cpu_s": phases.connected["cpu_s"],
            "loadgen_util": phases.connected["cpu_s"] / phases.connected["seconds"],
        }
    )
    return outcome


def workloadFragmented(server: Server, settings: Settings, label: str) -> Outcome:
    """
    One binary message in 1 KiB fragments, 1 MiB then 4 MiB, each on a new
    connection to the same server.
    """
    outcome = Outcome()
    seconds = {}
    running = RunningServer(server, label)
    try:
        for size in (MiB, 4 * MiB):
            part = f"{label}-{size // MiB}MiB"
            args = ["--mode", "frag", "--path", "/echo", "--size", size]
            args += ["--frag-size", 1024, "--binary", "--count", 1]
            profiles = [profilePath(settings, server, part)]
            phases = loadgen(running, args, 300, profiles)
            seconds[size] = phases.done["seconds"]
            outcome.metrics[f"s_{size // MiB}mib"] = phases.done["seconds"]
            outcome.metrics[f"cpu_s_{size // MiB}mib"] = phases.parts[0].cpuPrecise
            noteLoad(outcome, phases.parts[0], part)
    finally:
        running.stop()
    outcome.metrics["ratio"] = seconds[4 * MiB] / seconds[MiB]
    cpu = outcome.metrics
    if cpu["cpu_s_1mib"] > 0:
        cpu["cpu_ratio"] = cpu["cpu_s_4mib"] / cpu["cpu_s_1mib"]
    return outcome


def workloadBroadcast(server: Server, settings: Settings, label: str) -> Outcome:
    """
    1,000 clients on /bcast; one of them asks the server to send N
    messages of 32 bytes to all.  C{fanout} and C{loop} send all N in one
    event-loop turn (the library's broadcast API, then a loop of per-client
    sends); C{paced} sends one message per turn through the broadcast API,
    so every delivery costs its own write to the socket.  The three run in
    turn on the same connections.
    """
    outcome = Outcome()
    clients = 1000
    burst = settings.broadcastCount
    paced = burst // 4
    parts = (
        ("fanout", f"fanout {burst} 32 {burst}"),
        ("loop", f"loop {burst} 32 {burst}"),
        ("paced", f"fanout {paced} 32 1"),
    )
    running = RunningServer(server, label)
    try:
        args = ["--mode", "bcast", "--path", "/bcast", "--conns", clients]
        args += ["--size", 32]
        profiles = [profilePath(settings, server, f"{label}-{p}") for p, _ in parts]
        commands = tuple(command for _, command in parts)
        phases = loadgen(running, args, 120, profiles, commands)
    finally:
        running.stop()
    for (name, _), part in zip(parts, phases.parts, strict=True):
        outcome.metrics[f"{name}_us"] = part.cpu / part.done["messages"] * 1e6
        outcome.metrics[f"{name}_per_s"] = part.done["msg_per_s"]
        noteLoad(outcome, part, f"{label}-{name}")
    return outcome


def workloadFanout(subscribers: int) -> Callable[[Server, Settings, str], Outcome]:
    """
    C{subscribers} clients on /bcast, 64-byte messages sent to all of them
    with each server's fastest idiom (its broadcast API, else a loop).
    First a burst (C{burst} messages, 10 per event-loop turn: deliveries
    per second and server CPU per delivery), then C{rounds} single messages
    one after the other, each sent once the previous one has reached every
    subscriber (p50 and p99 of the time from the command to the last
    delivery).
    """

    def measure(server: Server, settings: Settings, label: str) -> Outcome:
        small = subscribers <= 2000
        burst = (200 if small else 50) // (4 if settings.quick else 1)
        rounds = (200 if small else 100) // (4 if settings.quick else 1)
        mode = "fanout" if server.broadcastApi else "loop"
        commands = (f"{mode} {burst} 64 10", f"{mode} 1 64 x{rounds}")
        running = RunningServer(server, label)
        try:
            args = ["--mode", "bcast", "--path", "/bcast", "--conns", subscribers]
            args += ["--size", 64, "--concurrency", 100]
            profiles = [
                profilePath(settings, server, f"{label}-{p}")
                for p in ("burst", "reach")
            ]
            phases = loadgen(running, args, 300, profiles, commands)
        finally:
            running.stop()
        burstPart, reachPart = phases.parts
        outcome = Outcome()
        outcome.metrics = {
            "deliveries_per_s": burstPart.done["msg_per_s"],
            "cpu_us_per_delivery": burstPart.cpu / burstPart.done["messages"] * 1e6,
            "reach_p50_ms": reachPart.done["lat_p50_us"] / 1e3,
            "reach_p99_ms": reachPart.done["lat_p99_us"] / 1e3,
            "kib_per_subscriber": (phases.rssConnected - phases.rssBefore)
            / subscribers,
        }
        noteLoad(outcome, burstPart, f"{label}-burst")
        noteLoad(outcome, reachPart, f"{label}-reach")
        return outcome

    return measure


def workloadDeflate(server: Server, settings: Settings, label: str) -> Outcome:
    """
    permessage-deflate echo of 512-byte JSON-like text with context
    takeover, at each server's default compression settings: 50
    connections x 10 in flight (msg/s, CPU per message); then, on a fresh
    server, 500 connections that each exchange messages for a second (RSS
    per connection after traffic: the compressor and decompressor states).
    """
    outcome = Outcome()
    if not server.deflate:
        return outcome
    runs = (("speed", 50, 10, settings.duration), ("memory", 500, 1, 1.0))
    for part, conns, outstanding, duration in runs:
        running = RunningServer(server, f"{label}-{part}", deflate=True)
        try:
            args = ["--mode", "echo", "--path", "/echo", "--conns", conns]
            args += ["--outstanding", outstanding, "--size", 512, "--deflate"]
            args += ["--duration", duration, "--concurrency", 100]
            profile = profilePath(settings, server, f"{label}-{part}")
            phases = loadgen(running, args, 120, [profile])
        finally:
            running.stop()
        work = phases.parts[0]
        noteLoad(outcome, work, f"{label}-{part}")
        if part == "speed":
            outcome.metrics["msg_per_s"] = work.done["msg_per_s"]
            outcome.metrics["cpu_us_per_msg"] = work.cpu / work.done["messages"] * 1e6
        else:
            outcome.metrics["kib_per_conn"] = (work.rss - phases.rssBefore) / conns
            outcome.metrics["kib_per_conn_idle"] = (
                phases.rssConnected - phases.rssBefore
            ) / conns
    return outcome


@dataclass(frozen=True)
class Workload:
    name: str
    measure: Callable[[Server, Settings, str], Outcome]


WORKLOADS = [
    Workload("W1", workloadEcho(50, 10, 32, False)),
    Workload("W2", workloadEcho(4, 2, MiB, True)),
    Workload("W1tls", workloadEcho(50, 10, 32, False, tls=True)),
    Workload("W2tls", workloadEcho(4, 2, MiB, True, tls=True)),
    Workload("W3", workloadIdle),
    Workload("W4", workloadEcho(1, 1, 32, False)),
    Workload("W5f", workloadFragmented),
    Workload("Bcast", workloadBroadcast),
    Workload("B2k", workloadFanout(2000)),
    Workload("B10k", workloadFanout(10000)),
    Workload("Deflate", workloadDeflate),
]


@dataclass(frozen=True)
class Row:
    workload: str
    key: str
    label: str
    unit: str
    better: str  # "higher" or "lower"
    digits: int = 1


ROWS = [
    Row("W1", "msg_per_s", "W1 echo 50 conns x 10 x 32 B", "msg/s", "higher", 0),
    Row("W1", "cpu_us_per_msg", "W1 server CPU", "us/msg", "lower", 1),
    Row("W2", "mb_per_s", "W2 echo 4 conns x 2 x 1 MiB", "MB/s", "higher", 0),
    Row("W2", "cpu_ms_per_mib", "W2 server CPU", "ms/MiB", "lower", 2),
    Row("W2", "rss_after_kib", "W2 server RSS after the run", "KiB", "lower", 0),
    Row("W1tls", "msg_per_s", "W1tls wss echo 50 x 10 x 32 B", "msg/s", "higher", 0),
    Row("W1tls", "cpu_us_per_msg", "W1tls server CPU", "us/msg", "lower", 1),
    Row("W2tls", "mb_per_s", "W2tls wss echo 4 x 2 x 1 MiB", "MB/s", "higher", 0),
    Row("W2tls", "cpu_ms_per_mib", "W2tls server CPU", "ms/MiB", "lower", 2),
    Row("W3", "kib_per_conn", "W3 idle conns: memory", "KiB/conn", "lower", 1),
    Row("W3", "cpu_us_per_handshake", "W3 server CPU", "us/handshake", "lower", 0),
    Row("W4", "p50_us", "W4 ping-pong 32 B: p50", "us", "lower", 0),
    Row("W4", "p99_us", "W4 ping-pong 32 B: p99", "us", "lower", 0),
    Row("W4", "cpu_us_per_msg", "W4 server CPU", "us/msg", "lower", 1),
    Row("W5f", "s_1mib", "W5f 1 MiB in 1 KiB fragments", "s", "lower", 3),
    Row("W5f", "s_4mib", "W5f 4 MiB in 1 KiB fragments", "s", "lower", 3),
    Row("W5f", "ratio", "W5f time 4 MiB / 1 MiB", "x", "lower", 2),
    Row("W5f", "cpu_ratio", "W5f server CPU 4 MiB / 1 MiB", "x", "lower", 2),
    Row(
        "Bcast",
        "fanout_us",
        "Bcast 1000 clients: broadcast API",
        "us CPU/msg",
        "lower",
        2,
    ),
    Row("Bcast", "loop_us", "Bcast 1000 clients: send loop", "us CPU/msg", "lower", 2),
    Row(
        "Bcast", "paced_us", "Bcast API, 1 msg per loop turn", "us CPU/msg", "lower", 2
    ),
    *(
        row
        for n in ("2k", "10k")
        for row in (
            Row(
                f"B{n}",
                "deliveries_per_s",
                f"B{n} 64 B to {n}",
                "deliveries/s",
                "higher",
                0,
            ),
            Row(
                f"B{n}",
                "cpu_us_per_delivery",
                f"B{n} server CPU",
                "us/delivery",
                "lower",
                2,
            ),
            Row(f"B{n}", "reach_p50_ms", f"B{n} reach all: p50", "ms", "lower", 2),
            Row(f"B{n}", "reach_p99_ms", f"B{n} reach all: p99", "ms", "lower", 2),
        )
    ),
    Row("Deflate", "msg_per_s", "Deflate echo 50 x 10 x 512 B", "msg/s", "higher", 0),
    Row("Deflate", "cpu_us_per_msg", "Deflate server CPU", "us/msg", "lower", 1),
    Row(
        "Deflate",
        "kib_per_conn",
        "Deflate memory after traffic",
        "KiB/conn",
        "lower",
        1,
    ),
]


def best(outcomes: list[Outcome], workload: str) -> Outcome:
    """
    Merge repeated runs: each figure of the table is the best of the runs
    (the least disturbed by other work on the machine); the rest come from
    the first run, and the load figures of every run are kept.
    """
    merged = Outcome(dict(outcomes[0].metrics))
    for row in ROWS:
        if row.workload != workload:
            continue
        values = [o.metrics[row.key] for o in outcomes if row.key in o.metrics]
        if values:
            merged.metrics[row.key] = (
                max(values) if row.better == "higher" else min(values)
            )
    for outcome in outcomes:
        merged.load += outcome.load
        merged.profiles += outcome.profiles
    merged.metrics["runs"] = len(outcomes)
    return merged


# -- report ----------------------------------------------------------------


def formatNumber(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or isinstance(a, str) or isinstance(b, str) or not b:
        return "-"
    return f"{a / b:.2f}"


def table(
    results: dict[str, dict[str, Outcome]], servers: list[Server], markdown: bool
) -> str:
    names = [server.name for server in servers]
    header = ["workload", "unit", "better", *names]
    ratios = []
    if "txclws" in names:
        ratios = [name for name in names if name != "txclws"]
        header += [f"/{name}" for name in ratios]
    lines = []
    for row in ROWS:
        if row.workload not in results:
            continue
        values = {}
        for name in names:
            outcome = results[row.workload].get(name)
            values[name] = outcome.metrics.get(row.key) if outcome else None
        cells = [row.label, row.unit, row.better]
        cells += [formatNumber(values[name], row.digits) for name in names]
        cells += [ratio(values["txclws"], values[name]) for name in ratios]
        lines.append(cells)
    return render(header, lines, markdown)


def loadTable(
    results: dict[str, dict[str, Outcome]], servers: list[Server], markdown: bool
) -> str:
    header = ["part", *(f"{s.name} srv/gen %" for s in servers)]
    parts: dict[str, dict[str, str]] = {}
    order: list[str] = []
    for byServer in results.values():
        for name, outcome in byServer.items():
            for load in outcome.load:
                part = load["part"]
                if part not in parts:
                    parts[part] = {}
                    order.append(part)
                parts[part][name] = (
                    f"{load['server_util'] * 100:.0f}/{load['loadgen_util'] * 100:.0f}"
                )
    lines = [[part, *(parts[part].get(s.name, "-") for s in servers)] for part in order]
    return render(header, lines, markdown)


def render(header: list[str], lines: list[list[str]], markdown: bool) -> str:
    if markdown:
        out = ["| " + " | ".join(header) + " |"]
        out.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
        return "\n".join(out)
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    out = []
    for n, cells in enumerate([header, *lines]):
        text = [cells[0].ljust(widths[0])]
        pairs = zip(cells[1:], widths[1:], strict=True)
        text += [cell.rjust(width) for cell, width in pairs]
        out.append("  ".join(text))
        if n == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def packageVersions() -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json\n"
        "names = ['twisted', 'autobahn', 'websockets', 'wsproto', 'picows', "
        "'txclws']\n"
        "print(json.dumps({n: m.version(n) for n in names}))"
    )
    out = subprocess.run([venvPython(), "-c", code], capture_output=True, text=True)
    versions = json.loads(out.stdout) if out.returncode == 0 else {}
    package = NODE / "node_modules" / "ws" / "package.json"
    if package.exists():
        versions["node-ws"] = json.loads(package.read_text())["version"]
        node = subprocess.run(["node", "--version"], capture_output=True, text=True)
        versions["node"] = node.stdout.strip()
    return versions


def gitRevision() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain", "--", "txclws"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return rev + ("+dirty txclws/" if dirty else "")


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "taskset": HAVE_TASKSET,
        "loadavg": os.getloadavg(),
    }


def summariseProfile(path: Path, top: int = 15) -> str:
    """
    The hottest functions of a py-spy raw (collapsed) profile, by samples
    where they are on top of the stack (self) and anywhere in it (total).
    """
    selfCounts: dict[str, int] = {}
    totalCounts: dict[str, int] = {}
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        selfCounts[frames[-1]] = selfCounts.get(frames[-1], 0) + n
        for frame in set(frames):
            totalCounts[frame] = totalCounts.get(frame, 0) + n
    if not samples:
        return f"{path}: no samples"
    out = [f"{path.name}: {samples} samples", "  self%  total%  function (file:line)"]
    for frame, n in sorted(selfCounts.items(), key=lambda kv: -kv[1])[:top]:
        total = totalCounts[frame] / samples * 100
        out.append(f"  {n / samples * 100:5.1f}  {total:6.1f}  {frame}")
    return "\n".join(out)


# -- main --------------------------------------------------------------------


def selectServers(spec: str | None) -> list[Server]:
    if not spec:
        return [server for server in SERVERS if server.default]
    chosen = []
    for name in spec.split(","):
        name = name.strip().lower()
        for server in SERVERS:
            if name == server.name or name in server.aliases:
                chosen.append(server)
                break
        else:
            raise SystemExit(
                f"unknown server {name!r}; known: {[s.name for s in SERVERS]}"
            )
    return chosen


def selectWorkloads(spec: str | None) -> list[Workload]:
    if not spec:
        return list(WORKLOADS)
    wanted = {name.strip().lower() for name in spec.split(",")}
    chosen = [w for w in WORKLOADS if w.name.lower() in wanted]
    unknown = wanted - {w.name.lower() for w in WORKLOADS}
    if unknown:
        raise SystemExit(
            f"unknown workloads {sorted(unknown)}; known: {[w.name for w in WORKLOADS]}"
        )
    return chosen


def parseArgs(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run", description="txclws against reference WebSocket servers"
    )
    parser.add_argument(
        "--quick", action="store_true", help="about 2-3 minutes instead of 6-7"
    )
    parser.add_argument("--only", help="workloads, e.g. W1,W4 (default: all)")
    parser.add_argument(
        "--servers",
        help="e.g. txclws,autobahn (default: txclws,picows,node-ws,websockets,"
        "autobahn,twisted.web; txclws-pure is txclws without NumPy masking)",
    )
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each server with py-spy during each workload "
        "(perturbs the figures)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each workload N times and keep the best figures (noisy machines)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="JSON",
        help="print the tables of a saved results file instead of running",
    )
    parser.add_argument(
        "--setup-only", action="store_true", help="build and install, then stop"
    )
    return parser.parse_args(argv)


def printReport(
    results: dict[str, dict[str, Outcome]],
    servers: list[Server],
    info: dict[str, Any],
    output: Path,
    markdown: bool,
) -> None:
    print(table(results, servers, markdown))
    print()
    print("Server / load generator CPU use during each part, % of one core:")
    print(loadTable(results, servers, markdown))
    print()
    load = info["machine"]
    print(
        f"{load['cpu']}, {load['cores']} cores, Linux {load['kernel']}, "
        f"Python {load['python']}; server on CPU {SERVER_CPU}, load generator on "
        f"CPU {LOADGEN_CPU}{'' if load['taskset'] else ' (no taskset: unpinned)'}; "
        f"load average {load['loadavg'][0]:.2f} at start, "
        f"{load['loadavg_end'][0]:.2f} at end; {info['elapsed_s']:.0f} s; "
        f"quick: {info['quick']}, best of {info.get('repeat', 1)}; "
        f"txclws {info['txclws_revision']}; results in {output}"
    )


def reprint(path: Path, markdown: bool) -> int:
    """
    Print the tables of a saved results file.
    """
    saved = json.loads(path.read_text())
    results = {
        workload: {name: Outcome(**outcome) for name, outcome in byServer.items()}
        for workload, byServer in saved["results"].items()
    }
    names = {name for byServer in results.values() for name in byServer}
    servers = [server for server in SERVERS if server.name in names]
    printReport(results, servers, saved["info"], path, markdown)
    for failure in saved["failures"]:
        print(f"FAILED {failure}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parseArgs(argv)
    if args.report:
        return reprint(args.report, args.markdown)
    servers = selectServers(args.servers)
    workloads = selectWorkloads(args.only)
    raiseFileLimit()
    try:
        ensureVenv()
        ensureTxclws()
        ensureLoadgen()
        if any(workload.name.endswith("tls") for workload in workloads):
            ensureCertificate()
        if any(server.runtime == "node" for server in servers):
            ensureNode()
    except HarnessError as exc:
        say(f"benchmarks/run: {exc}")
        return 2
    if args.setup_only:
        return 0
    stamp = time.strftime("%Y%m%d-%H%M%S")
    profileDir = RESULTS / f"profile-{stamp}" if args.profile else None
    settings = Settings(args.quick, profileDir)
    info = {
        "machine": machine(),
        "packages": packageVersions(),
        "txclws_revision": gitRevision(),
        "quick": args.quick,
        "repeat": args.repeat,
    }
    say(f"machine: {info['machine']}")
    say(f"packages: {info['packages']}  txclws {info['txclws_revision']}")
    results: dict[str, dict[str, Outcome]] = {}
    failures = []
    started = time.monotonic()
    for workload in workloads:
        results[workload.name] = {}
        for server in servers:
            label = f"{workload.name}-{server.name}"
            try:
                runs = []
                for n in range(max(1, args.repeat)):
                    say(f"[{time.monotonic() - started:6.1f}s] {label} (run {n + 1})")
                    runs.append(workload.measure(server, settings, label))
                results[workload.name][server.name] = best(runs, workload.name)
            except (HarnessError, OSError, ValueError, KeyError) as exc:
                say(f"  FAILED: {exc!r}")
                failures.append(f"{label}: {exc}")
    info["machine"]["loadavg_end"] = os.getloadavg()
    info["elapsed_s"] = time.monotonic() - started
    RESULTS.mkdir(exist_ok=True)
    output = RESULTS / f"results-{stamp}.json"
    output.write_text(
        json.dumps(
            {
                "info": info,
                "results": {
                    w: {s: o.__dict__ for s, o in byServer.items()}
                    for w, byServer in results.items()
                },
                "failures": failures,
            },
            indent=2,
        )
    )
    printReport(results, servers, info, output.relative_to(REPO), args.markdown)
    if profileDir is not None and profileDir.exists():
        print()
        for path in sorted(profileDir.glob("*.txt")):
            print(summariseProfile(path))
            print()
    for failure in failures:
        print(f"FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
