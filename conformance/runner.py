"""Run the Autobahn Testsuite (wstest fuzzingclient) against an echo server.

Stdlib only; started by ``conformance/run``.  See conformance/README.md.

What it does, each step cached under conformance/.cache/:

1. CPython 2.7 (the suite is Python-2 code): Debian 11 "bullseye" packages
   fetched with ``apt-get download`` under a private apt configuration (the
   machine's apt state is not touched; the mirror is the one the machine's
   own apt sources use) and unpacked with ``dpkg -x``.
2. A small Python-3 venv with virtualenv 20.21.1 (the last release that can
   create 2.7 environments), then a 2.7 virtualenv with autobahntestsuite
   and the pins of wstest-constraints.txt.
3. For the reference servers, a Python-3 venv with servers/requirements.txt.

Then it starts the server under test on a free 127.0.0.1 port, runs
``wstest -m fuzzingclient`` with a generated spec, and prints a per-group
summary of reports/<server>/index.json.  Exit status: 0 if every case is
OK or INFORMATIONAL, 1 if any is not, 2 if the run itself could not be done.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SERVERS_DIR = HERE / "servers"
WSTEST_CONSTRAINTS = HERE / "wstest-constraints.txt"
REF_REQUIREMENTS = SERVERS_DIR / "requirements.txt"

AUTOBAHNTESTSUITE = "autobahntestsuite==25.10.1"
VIRTUALENV = "virtualenv==20.21.1"
PY27_RELEASE = "bullseye"
PY27_PACKAGES = (
    "python2.7",
    "python2.7-minimal",
    "libpython2.7-minimal",
    "libpython2.7-stdlib",
    "libpython2.7",
    "libpython2.7-dev",
    "python2.7-dev",
    "libssl1.1",
    "libffi7",
)
MULTIARCH = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}
DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")

GROUP_NAMES = {
    1: "Framing",
    2: "Pings/Pongs",
    3: "Reserved bits",
    4: "Opcodes",
    5: "Fragmentation",
    6: "UTF-8 handling",
    7: "Close handling",
    9: "Limits/performance",
    10: "Miscellaneous",
    12: "Compression (payloads)",
    13: "Compression (parameters)",
}
COLUMNS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
PASSING = {"OK", "INFORMATIONAL"}


class RunnerError(Exception):
    """The run could not be done (install, server start, wstest crash)."""


def say(msg: str) -> None:
    print(f"[conformance] {msg}", flush=True)


def fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:04.1f}s"


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def run_logged(cmd, log: Path, env=None, cwd=None) -> None:
    """Run cmd with its output appended to log; raise RunnerError on failure."""
    cmd = [str(c) for c in cmd]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"\n$ {shlex.join(cmd)}\n")
        out.flush()
        rc = subprocess.call(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
        )
    if rc != 0:
        raise RunnerError(
            f"command failed (exit {rc}): {shlex.join(cmd)}\n"
            f"--- last lines of {log} ---\n{tail(log)}"
        )


def healthy(cmd, env=None) -> bool:
    try:
        return (
            subprocess.call(
                [str(c) for c in cmd],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            == 0
        )
    except OSError:
        return False


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


STAMP = ".conformance-stamp"


def stamp_ok(path: Path, key: str) -> bool:
    try:
        return (path / STAMP).read_text().strip() == key
    except OSError:
        return False


def write_stamp(path: Path, key: str) -> None:
    (path / STAMP).write_text(key + "\n")


def venv_bin(venv: Path, name: str) -> Path:
    return venv / "bin" / name


# --------------------------------------------------------------------------
# Debian packages under a private apt configuration


@dataclass
class AptSource:
    types: list[str]
    uris: list[str]
    suites: list[str]
    components: list[str]
    signed_by: str | None = None


def _parse_one_line_sources(text: str) -> list[AptSource]:
    entries = []
    pattern = re.compile(r"^(deb(?:-src)?)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$")
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        m = pattern.match(line)
        if not m:
            continue
        kind, options, uri, suite, comps = m.groups()
        signed_by = None
        for opt in (options or "").split():
            key, _, value = opt.partition("=")
            if key.lower() == "signed-by":
                signed_by = value
        entries.append(AptSource([kind], [uri], [suite], comps.split(), signed_by))
    return entries


def _parse_deb822_sources(text: str) -> list[AptSource]:
    entries = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line.startswith("#"):
                continue
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
                continue
            key, sep, value = line.partition(":")
            if not sep:
                key = None
                continue
            key = key.strip().lower()
            fields[key] = value.strip()
        if not fields or fields.get("enabled", "yes").lower() == "no":
            continue
        signed_by = fields.get("signed-by")
        if signed_by and "\n" in signed_by:  # an inline key block
            signed_by = None
        entries.append(
            AptSource(
                fields.get("types", "").split(),
                fields.get("uris", "").split(),
                fields.get("suites", "").split(),
                fields.get("components", "").split(),
                signed_by,
            )
        )
    return entries


def machine_apt_sources() -> list[AptSource]:
    etc = Path("/etc/apt")
    entries = []
    if (etc / "sources.list").is_file():
        entries += _parse_one_line_sources((etc / "sources.list").read_text())
    parts = etc / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                entries += _parse_one_line_sources(path.read_text())
            elif path.suffix == ".sources":
                entries += _parse_deb822_sources(path.read_text())
    return entries


def os_codename() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return ""
    m = re.search(r"^VERSION_CODENAME=\"?([^\"\n]*)\"?$", text, re.M)
    return m.group(1) if m else ""


@dataclass
class Mirror:
    uri: str
    signed_by: str | None


def machine_debian_mirrors() -> tuple[Mirror | None, Mirror | None]:
    """The (archive, security) mirrors the machine's own apt sources use.

    CONFORMANCE_DEBIAN_MIRROR / CONFORMANCE_DEBIAN_SECURITY_MIRROR override
    them (an empty security value means: no security archive).
    """
    codename = os_codename()
    main = security = None
    for entry in machine_apt_sources():
        if "deb" not in entry.types:
            continue
        uris = [u for u in entry.uris if u.startswith(("http://", "https://"))]
        if not uris:
            continue
        keyring = entry.signed_by
        if keyring and not Path(keyring).is_file():
            keyring = None
        if main is None and codename in entry.suites and "main" in entry.components:
            main = Mirror(uris[0], keyring)
        if security is None and f"{codename}-security" in entry.suites:
            security = Mirror(uris[0], keyring)
    env_main = os.environ.get("CONFORMANCE_DEBIAN_MIRROR")
    if env_main:
        main = Mirror(env_main, None)
    env_security = os.environ.get("CONFORMANCE_DEBIAN_SECURITY_MIRROR")
    if env_security is not None:
        security = Mirror(env_security, None) if env_security else None
    return main, security


def dpkg_architecture() -> str:
    try:
        return subprocess.check_output(
            ["dpkg", "--print-architecture"], text=True
        ).strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RunnerError(f"dpkg is needed (a Debian machine): {exc}") from exc


class PrivateApt:
    """apt-get with its own sources, lists, cache and dpkg status.

    Reads the machine's apt.conf.d (proxies, Check-Valid-Until ...) but
    neither reads nor writes the machine's package lists or caches, and
    runs none of the machine's update/dpkg hooks.
    """

    def __init__(self, root: Path, sources: list[str], arch: str) -> None:
        self.root = root
        self.arch = arch
        self.log = root / "apt.log"
        for sub in (
            "lists/partial",
            "cache/archives/partial",
            "sources.list.d",
            "preferences.d",
            "log",
        ):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "status").touch()
        (root / "sources.list").write_text("\n".join(sources) + "\n")
        user = "root" if os.getuid() == 0 else os.environ.get("USER", "")
        conf = [
            f'Dir::Etc::SourceList "{root}/sources.list";',
            f'Dir::Etc::SourceParts "{root}/sources.list.d";',
            f'Dir::Etc::Preferences "{root}/preferences";',
            f'Dir::Etc::PreferencesParts "{root}/preferences.d";',
            f'Dir::State "{root}";',
            f'Dir::State::Lists "{root}/lists";',
            f'Dir::State::status "{root}/status";',
            f'Dir::Cache "{root}/cache";',
            f'Dir::Log "{root}/log";',
            f'APT::Architecture "{arch}";',
            "#clear APT::Architectures;",
            f'APT::Architectures:: "{arch}";',
            'Acquire::Languages "none";',
            "#clear APT::Update::Pre-Invoke;",
            "#clear APT::Update::Post-Invoke;",
            "#clear APT::Update::Post-Invoke-Success;",
            "#clear DPkg::Pre-Invoke;",
            "#clear DPkg::Post-Invoke;",
        ]
        if user:
            conf.append(f'APT::Sandbox::User "{user}";')
        (root / "apt.conf").write_text("\n".join(conf) + "\n")

    def _apt_get(self, *args, cwd=None) -> None:
        run_logged(
            ["apt-get", "-q", "-c", self.root / "apt.conf", *args], self.log, cwd=cwd
        )

    def download(self, packages, dest: Path) -> list[Path]:
        if shutil.which("apt-get") is None:
            raise RunnerError("apt-get is needed (a Debian machine)")
        self._apt_get("update")
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        self._apt_get("download", *packages, cwd=dest)
        return sorted(dest.glob("*.deb"))


def source_line(mirror: Mirror, suite: str) -> str:
    keyring = mirror.signed_by
    if keyring is None and DEFAULT_KEYRING.is_file():
        keyring = str(DEFAULT_KEYRING)
    opts = f"[signed-by={keyring}] " if keyring else ""
    return f"deb {opts}{mirror.uri} {suite} main"


def unpack_debs(debs: list[Path], dest: Path, log: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for deb in debs:
        run_logged(["dpkg", "-x", deb, tmp], log)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


# --------------------------------------------------------------------------
# Installation


@dataclass
class Toolchain:
    cache: Path
    base_python: str
    installed: list[str] = field(default_factory=list)
    _arch_value: str | None = None
    _ref_checked: bool = False

    @property
    def py27_root(self) -> Path:
        return self.cache / "python2.7"

    @property
    def py27(self) -> Path:
        return self.py27_root / "usr" / "bin" / "python2.7"

    @property
    def py27_libdir(self) -> Path:
        return (
            self.py27_root
            / "usr"
            / "lib"
            / MULTIARCH.get(self._arch(), "x86_64-linux-gnu")
        )

    @property
    def tools_venv(self) -> Path:
        return self.cache / "tools-venv"

    @property
    def wstest_venv(self) -> Path:
        return self.cache / "wstest-venv"

    @property
    def ref_venv(self) -> Path:
        return self.cache / "ref-venv"

    @property
    def logs(self) -> Path:
        return self.cache / "logs"

    def _arch(self) -> str:
        if self._arch_value is None:
            self._arch_value = dpkg_architecture()
        return self._arch_value

    def py27_env(self) -> dict[str, str]:
        env = dict(os.environ)
        libdir = str(self.py27_libdir)
        old = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = f"{libdir}:{old}" if old else libdir
        include = self.py27_root / "usr" / "include"
        # Debian's distutils points at /usr/include/python2.7; let gcc find
        # the unpacked headers (pyconfig.h lives under the multiarch dir).
        cpath = f"{include / 'python2.7'}:{include}"
        env["CPATH"] = f"{cpath}:{env['CPATH']}" if env.get("CPATH") else cpath
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        env["PIP_NO_PYTHON_VERSION_WARNING"] = "1"
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONHOME", None)
        env.pop("VIRTUAL_ENV", None)
        bundle = Path("/etc/ssl/certs/ca-certificates.crt")
        if "PIP_CERT" not in env and bundle.is_file():
            env["PIP_CERT"] = str(bundle)
        return env

    @contextlib.contextmanager
    def locked(self):
        self.cache.mkdir(parents=True, exist_ok=True)
        with open(self.cache / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # -- CPython 2.7 -------------------------------------------------------

    def ensure_py27(self) -> None:
        arch = self._arch()
        key = digest("py27-v1", PY27_RELEASE, arch, *PY27_PACKAGES)
        env = self.py27_env()
        check = [self.py27, "-c", "import ssl, zlib, hashlib, ctypes, pyexpat"]
        if stamp_ok(self.py27_root, key) and healthy(check, env):
            return
        start = time.monotonic()
        say(
            f"installing CPython 2.7 from Debian {PY27_RELEASE} packages "
            f"into {self.py27_root}"
        )
        main, security = machine_debian_mirrors()
        if main is None:
            raise RunnerError(
                "could not find the machine's Debian mirror in /etc/apt/"
                "sources.list*; set CONFORMANCE_DEBIAN_MIRROR to a Debian "
                "archive URL"
            )
        sources = [source_line(main, PY27_RELEASE)]
        if security is not None:
            sources.append(source_line(security, f"{PY27_RELEASE}-security"))
        apt = PrivateApt(self.cache / "apt-bullseye", sources, arch)
        debs = apt.download(PY27_PACKAGES, self.cache / "apt-bullseye" / "debs")
        unpack_debs(debs, self.py27_root, self.logs / "python2.7.log")
        if not healthy(check, env):
            raise RunnerError(
                f"the unpacked interpreter {self.py27} does not work; try:\n"
                f"  LD_LIBRARY_PATH={self.py27_libdir} {self.py27} "
                "-c 'import ssl, zlib, hashlib, ctypes, pyexpat'"
            )
        write_stamp(self.py27_root, key)
        self.installed.append(f"CPython 2.7 ({fmt_seconds(time.monotonic() - start)})")

    # -- Python-3 venvs ----------------------------------------------------

    def _debian_pip_wheel(self) -> Path:
        """pip's wheel from Debian's python3-pip-whl (for a Python 3 whose
        ensurepip Debian has split off into python3-venv)."""
        root = self.cache / "pip-whl"
        wheels = sorted(root.glob("usr/share/python-wheels/pip-*.whl"))
        if wheels:
            return wheels[-1]
        codename = os_codename()
        main, _ = machine_debian_mirrors()
        if main is None or not codename:
            raise RunnerError("this Python 3 has no ensurepip; install python3-venv")
        apt = PrivateApt(
            self.cache / "apt-native", [source_line(main, codename)], self._arch()
        )
        debs = apt.download(["python3-pip-whl"], self.cache / "apt-native" / "debs")
        unpack_debs(debs, root, self.logs / "pip-whl.log")
        wheels = sorted(root.glob("usr/share/python-wheels/pip-*.whl"))
        if not wheels:
            raise RunnerError("python3-pip-whl holds no pip wheel")
        return wheels[-1]

    def create_py3_venv(self, python: str, dest: Path, log: Path) -> None:
        if dest.exists():
            shutil.rmtree(dest)
        if not os.environ.get("CONFORMANCE_VENV_WITHOUT_ENSUREPIP"):
            try:
                run_logged([python, "-m", "venv", dest], log)
                return
            except RunnerError:
                say(
                    "'python -m venv' failed (no ensurepip?); bootstrapping "
                    "pip from Debian's python3-pip-whl instead"
                )
                shutil.rmtree(dest, ignore_errors=True)
        run_logged([python, "-m", "venv", "--without-pip", dest], log)
        wheel = self._debian_pip_wheel()
        run_logged(
            [
                venv_bin(dest, "python"),
                wheel / "pip",
                "install",
                "--no-index",
                "--no-cache-dir",
                wheel,
            ],
            log,
        )

    def ensure_tools_venv(self) -> None:
        key = digest("tools-v1", VIRTUALENV)
        py = venv_bin(self.tools_venv, "python")
        check = [py, "-m", "virtualenv", "--version"]
        if stamp_ok(self.tools_venv, key) and healthy(check):
            return
        start = time.monotonic()
        say(f"installing {VIRTUALENV} into {self.tools_venv}")
        log = self.logs / "tools-venv.log"
        self.create_py3_venv(self.base_python, self.tools_venv, log)
        run_logged(
            [py, "-m", "pip", "install", "--disable-pip-version-check", VIRTUALENV], log
        )
        write_stamp(self.tools_venv, key)
        self.installed.append(f"virtualenv ({fmt_seconds(time.monotonic() - start)})")

    # -- wstest (Python 2.7) -----------------------------------------------

    def wstest(self) -> Path:
        return venv_bin(self.wstest_venv, "wstest")

    def ensure_wstest(self) -> None:
        self.ensure_py27()
        constraints = WSTEST_CONSTRAINTS.read_bytes()
        key = digest(
            "wstest-v1",
            AUTOBAHNTESTSUITE,
            constraints,
            (self.py27_root / STAMP).read_text(),
        )
        env = self.py27_env()
        check = [
            venv_bin(self.wstest_venv, "python"),
            "-c",
            "import autobahntestsuite.wstest, wsaccel",
        ]
        if stamp_ok(self.wstest_venv, key) and healthy(check, env):
            return
        self.ensure_tools_venv()
        start = time.monotonic()
        say(f"installing {AUTOBAHNTESTSUITE} (Python 2.7) into {self.wstest_venv}")
        if not (shutil.which("x86_64-linux-gnu-gcc") or shutil.which("gcc")):
            raise RunnerError(
                "a C compiler is needed to build wsaccel: apt-get install gcc"
            )
        if not shutil.which("x86_64-linux-gnu-gcc"):
            env.setdefault("CC", "gcc -pthread")
            env.setdefault("LDSHARED", "gcc -pthread -shared")
        log = self.logs / "wstest-venv.log"
        if self.wstest_venv.exists():
            shutil.rmtree(self.wstest_venv)
        run_logged(
            [
                venv_bin(self.tools_venv, "python"),
                "-m",
                "virtualenv",
                "--no-periodic-update",
                "--app-data",
                self.cache / "virtualenv-app-data",
                "--python",
                self.py27,
                self.wstest_venv,
            ],
            log,
            env=env,
        )
        run_logged(
            [
                venv_bin(self.wstest_venv, "python"),
                "-m",
                "pip",
                "install",
                "--constraint",
                WSTEST_CONSTRAINTS,
                AUTOBAHNTESTSUITE,
            ],
            log,
            env=env,
        )
        if not healthy(check, env):
            raise RunnerError(f"wstest does not import; see {log}")
        write_stamp(self.wstest_venv, key)
        self.installed.append(f"wstest ({fmt_seconds(time.monotonic() - start)})")

    # -- reference servers (Python 3) ----------------------------------------

    def ensure_ref_venv(self) -> Path:
        key = digest("ref-v1", REF_REQUIREMENTS.read_bytes())
        py = venv_bin(self.ref_venv, "python")
        if self._ref_checked:
            return py
        check = [py, "-c", "import autobahn.twisted.websocket, twisted.web.websocket"]
        if stamp_ok(self.ref_venv, key) and healthy(check):
            self._ref_checked = True
            return py
        start = time.monotonic()
        say(f"installing the reference servers' venv into {self.ref_venv}")
        log = self.logs / "ref-venv.log"
        self.create_py3_venv(self.base_python, self.ref_venv, log)
        run_logged(
            [
                py,
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-r",
                REF_REQUIREMENTS,
            ],
            log,
        )
        if not healthy(check):
            raise RunnerError(f"the reference venv does not import; see {log}")
        write_stamp(self.ref_venv, key)
        took = fmt_seconds(time.monotonic() - start)
        self.installed.append(f"reference venv ({took})")
        self._ref_checked = True
        return py


# --------------------------------------------------------------------------
# Servers under test


@dataclass
class ServerSpec:
    name: str
    script: Path | None  # run as: PYTHON script PORT
    reference: bool  # run from the reference venv (else the project python)
    command: str | None = None  # --server-cmd template with {port}


KNOWN_SERVERS = {
    "txclws": ServerSpec("txclws", SERVERS_DIR / "txclws_echo.py", False),
    "autobahn": ServerSpec("autobahn", SERVERS_DIR / "autobahn_echo.py", True),
    "twisted-web": ServerSpec("twisted-web", SERVERS_DIR / "twisted_web_echo.py", True),
}
ALIASES = {
    "twisted_web": "twisted-web",
    "twisted.web": "twisted-web",
    "twisted": "twisted-web",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_listening(
    proc: subprocess.Popen, host: str, port: int, timeout: float, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RunnerError(
                f"the server exited with code {proc.returncode} before "
                f"accepting connections\n--- {log} ---\n{tail(log)}"
            )
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RunnerError(
                f"the server did not accept connections on {host}:{port} "
                f"within {timeout:.0f}s\n--- {log} ---\n{tail(log)}"
            )
        time.sleep(0.1)


def stop_process_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def project_python(option: str | None) -> str:
    if option:
        return option
    if os.environ.get("PYTHON"):
        return os.environ["PYTHON"]
    if sys.version_info[0] == 3 and sys.executable:
        return sys.executable
    return shutil.which("python3") or "python3"


# --------------------------------------------------------------------------
# Results


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in case_id.split("."))


@dataclass
class Results:
    agent: str
    cases: dict[str, dict]
    missing: list[str] = field(default_factory=list)
    wall_time: float = 0.0
    wstest_time: float = 0.0

    def failures(self) -> list[str]:
        bad = [c for c, r in self.cases.items() if r.get("behavior") not in PASSING]
        return sorted(bad, key=case_key)

    def exit_code(self) -> int:
        return 1 if self.failures() or self.missing else 0


def load_results(report_dir: Path, agent: str) -> Results:
    index = report_dir / "index.json"
    try:
        data = json.loads(index.read_text())
    except (OSError, ValueError) as exc:
        raise RunnerError(f"no usable report at {index}: {exc}") from exc
    if agent not in data:
        if len(data) == 1:
            agent = next(iter(data))
        else:
            raise RunnerError(f"{index} has no results for agent {agent!r}")
    return Results(agent, data[agent])


def summary_rows(results: Results):
    groups: dict[int, dict] = {}
    extra: list[str] = []
    for case_id, result in results.cases.items():
        group = case_key(case_id)[0]
        row = groups.setdefault(group, {"counts": {}, "ms": 0})
        behavior = result.get("behavior", "?")
        if behavior not in COLUMNS and behavior not in extra:
            extra.append(behavior)
        row["counts"][behavior] = row["counts"].get(behavior, 0) + 1
        duration = result.get("duration") or 0
        if 0 < duration < 86_400_000:  # garbage when the handshake failed
            row["ms"] += duration
    if results.missing:
        extra.append("MISSING")
        for case_id in results.missing:
            row = groups.setdefault(case_key(case_id)[0], {"counts": {}, "ms": 0})
            row["counts"]["MISSING"] = row["counts"].get("MISSING", 0) + 1
    columns = list(COLUMNS) + extra
    header = ["Group", "Name", *columns, "Total", "Time (s)"]
    rows = []
    totals = {c: 0 for c in columns}
    total_ms = 0
    for group in sorted(groups):
        counts = groups[group]["counts"]
        for c in columns:
            totals[c] += counts.get(c, 0)
        total_ms += groups[group]["ms"]
        rows.append(
            [
                str(group),
                GROUP_NAMES.get(group, "?"),
                *(str(counts.get(c, 0)) for c in columns),
                str(sum(counts.values())),
                f"{groups[group]['ms'] / 1000:.1f}",
            ]
        )
    rows.append(
        [
            "Total",
            "",
            *(str(totals[c]) for c in columns),
            str(sum(totals.values())),
            f"{total_ms / 1000:.1f}",
        ]
    )
    return header, rows


def format_table(header, rows, markdown: bool) -> str:
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|"
            + "|".join("---" if i < 2 else "---:" for i in range(len(header)))
            + "|",
        ]
        for row in rows:
            cells = [f"**{c}**" if row[0] == "Total" and c else c for c in row]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(row):
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    sep = "  ".join("-" * w for w in widths)
    return "\n".join(
        [fmt(header), sep, *(fmt(r) for r in rows[:-1]), sep, fmt(rows[-1])]
    )


def format_report(results: Results, markdown: bool) -> str:
    header, rows = summary_rows(results)
    out = [format_table(header, rows, markdown)]
    not_ok = sorted(
        (c for c, r in results.cases.items() if r.get("behavior") != "OK"), key=case_key
    )
    if not_ok or results.missing:
        out.append("")
        out.append("Cases not OK (INFORMATIONAL ones do not count as failures):")
        for case_id in not_ok:
            r = results.cases[case_id]
            close_code = r.get("remoteCloseCode")
            text = (
                f"{case_id}: {r.get('behavior')} "
                f"(close: {r.get('behaviorClose')}, "
                f"remote close code: {close_code})"
            )
            out.append(f"- {text}" if markdown else f"  {text}")
        for case_id in results.missing:
            text = f"{case_id}: MISSING (not run: the server went away?)"
            out.append(f"- {text}" if markdown else f"  {text}")
    return "\n".join(out)


# --------------------------------------------------------------------------
# One run


def clean_report_dir(report_dir: Path) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    for path in report_dir.iterdir():
        if path.is_file() and path.suffix in (".json", ".html", ".log"):
            path.unlink()


def run_wstest(
    toolchain: Toolchain, spec_path: Path, log: Path, timeout: float, verbose: bool
) -> tuple[int, list[str], list[str]]:
    """Run wstest; return (exit code, cases it will run, cases started)."""
    env = toolchain.py27_env()
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [str(toolchain.wstest()), "-m", "fuzzingclient", "-s", str(spec_path)]
    started: list[str] = []
    planned: list[str] = []
    expected = 0
    interactive = sys.stdout.isatty() and not verbose
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=spec_path.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            stop_process_group(proc, grace=2)

        timer = threading.Timer(timeout, on_timeout) if timeout > 0 else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if verbose:
                    sys.stdout.write(line)
                m = re.search(r"will run (\d+) test cases", line)
                if m:
                    expected = int(m.group(1))
                if line.startswith("Cases = [") and not planned:
                    planned = re.findall(r"'([0-9.]+)'", line)
                m = re.search(r"Running test case ID (\S+) for agent", line)
                if m:
                    started.append(m.group(1))
                    count = len(started)
                    if interactive:
                        sys.stdout.write(
                            f"\r[conformance] case {count}/{expected}: {m.group(1):<12}"
                        )
                        sys.stdout.flush()
                    elif not verbose and (count % 50 == 0 or count == expected):
                        say(f"{count}/{expected} cases run")
            rc = proc.wait()
        finally:
            if timer:
                timer.cancel()
            stop_process_group(proc)
        if interactive and started:
            sys.stdout.write("\n")
    if timed_out.is_set():
        raise RunnerError(
            f"wstest did not finish within {timeout:.0f}s "
            f"(last case started: {started[-1] if started else '-'})"
        )
    return rc, planned, started


def server_command(spec: ServerSpec, port: int, args, toolchain: Toolchain):
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if spec.command:
        return shlex.split(spec.command.format(port=port)), env
    assert spec.script is not None
    if not spec.script.is_file():
        raise RunnerError(f"{spec.script.relative_to(REPO)} does not exist")
    if spec.reference:
        python = args.ref_python or os.environ.get("CONFORMANCE_REF_PYTHON")
        if not python:
            python = str(toolchain.ensure_ref_venv())
    else:
        python = project_python(args.python)
        old = env.get("PYTHONPATH")
        env["PYTHONPATH"] = f"{REPO}:{old}" if old else str(REPO)
    return [python, str(spec.script), str(port)], env


def explain_handshake_failures(results: Results, report_dir: Path) -> None:
    """Say so when cases failed because the opening handshake did."""
    failed = []
    first_response = ""
    for case_id in sorted(results.cases, key=case_key):
        result = results.cases[case_id]
        if result.get("behaviorClose") != "FAILED" or not result.get("reportfile"):
            continue
        report = (report_dir / result["reportfile"]).with_suffix(".json")
        try:
            detail = json.loads(report.read_text())
        except (OSError, ValueError):
            continue
        if "opening handshake" in detail.get("resultClose", ""):
            if not failed:
                response = detail.get("httpResponse") or ""
                first_response = response.split("\r\n", 1)[0] or "nothing"
            failed.append(case_id)
    if failed:
        say(
            f"the opening handshake failed in {len(failed)} cases (first: "
            f"{failed[0]}, server answered {first_response!r}); see "
            f"{report_dir / 'server.log'}; --path and --origin set the "
            "URL path and Origin header wstest uses"
        )


def run_one(spec: ServerSpec, args, toolchain: Toolchain) -> Results:
    report_dir = args.report_dir / spec.name
    clean_report_dir(report_dir)
    host = "127.0.0.1"
    port = free_port(host)
    cmd, env = server_command(spec, port, args, toolchain)
    cases = args.cases or ["*"]
    server_entry = {"agent": spec.name, "url": f"ws://{host}:{port}{args.path}"}
    if args.origin:
        server_entry["origin"] = args.origin
    fuzz_spec = {
        "outdir": str(report_dir),
        "servers": [server_entry],
        "cases": cases,
        "exclude-cases": args.exclude_cases,
        "exclude-agent-cases": {},
    }
    spec_path = report_dir / "spec.json"
    spec_path.write_text(json.dumps(fuzz_spec, indent=2) + "\n")

    server_log = report_dir / "server.log"
    say(f"server {spec.name}: {shlex.join(cmd)}")
    wall_start = time.monotonic()
    with server_log.open("w") as slog:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=slog,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_listening(proc, host, port, args.startup_timeout, server_log)
        say(
            f"server listening on {host}:{port} after "
            f"{fmt_seconds(time.monotonic() - wall_start)}; cases: "
            f"{','.join(cases)}"
            + (f" minus {','.join(args.exclude_cases)}" if args.exclude_cases else "")
        )
        wstest_start = time.monotonic()
        rc, planned, _started = run_wstest(
            toolchain, spec_path, report_dir / "wstest.log", args.timeout, args.verbose
        )
        wstest_time = time.monotonic() - wstest_start
        if "failed (Connection" in tail(report_dir / "wstest.log", 3):
            # wstest could not connect any more: give a dying server a moment
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(2)
        server_died = proc.poll()
    finally:
        stop_process_group(proc)
    wall = time.monotonic() - wall_start
    if rc != 0:
        raise RunnerError(
            f"wstest exited with code {rc}\n--- "
            f"{report_dir / 'wstest.log'} ---\n"
            f"{tail(report_dir / 'wstest.log')}"
        )
    if not planned:
        raise RunnerError(f"no test case matches {cases} (minus {args.exclude_cases})")
    results = load_results(report_dir, spec.name)
    results.missing = sorted(set(planned) - set(results.cases), key=case_key)
    if results.missing:
        say(f"{len(results.missing)} of {len(planned)} cases have no result")
        for line in tail(report_dir / "wstest.log", 5).splitlines():
            say(f"  wstest: {line[:200]}")
    explain_handshake_failures(results, report_dir)
    if server_died is not None:
        say(
            f"the server exited with code {server_died} during the run; "
            f"see {server_log}"
        )
    results.wall_time = wall
    results.wstest_time = wstest_time
    return results


# --------------------------------------------------------------------------
# Client mode: wstest -m fuzzingserver against a client agent

CLIENTS_DIR = HERE / "clients"
KNOWN_CLIENTS = {"txclws": CLIENTS_DIR / "txclws_client.py"}


def run_client(name: str, args, toolchain: Toolchain) -> Results:
    """Run the fuzzing server, and the client agent NAME against it."""
    report_dir = args.report_dir / f"client-{name}"
    clean_report_dir(report_dir)
    host = "127.0.0.1"
    port = free_port(host)
    cases = args.cases or ["*"]
    spec_path = report_dir / "spec.json"
    spec_path.write_text(
        json.dumps(
            {
                "url": f"ws://{host}:{port}",
                "outdir": str(report_dir),
                "cases": cases,
                "exclude-cases": args.exclude_cases,
                "exclude-agent-cases": {},
            },
            indent=2,
        )
        + "\n"
    )
    env = toolchain.py27_env()
    env["PYTHONUNBUFFERED"] = "1"
    wall_start = time.monotonic()
    wstest_log = report_dir / "wstest.log"
    with wstest_log.open("w") as out:
        fuzzer = subprocess.Popen(
            [str(toolchain.wstest()), "-m", "fuzzingserver", "-s", str(spec_path)],
            cwd=report_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_listening(fuzzer, host, port, args.startup_timeout, wstest_log)
        count = _run_agent(name, f"ws://{host}:{port}", args, report_dir)
    finally:
        stop_process_group(fuzzer)
    results = load_results(report_dir, name)
    if count is None or count > len(results.cases):
        results.missing = [f"?.{i}" for i in range(len(results.cases), count or 1)]
    results.wall_time = results.wstest_time = time.monotonic() - wall_start
    return results


def _run_agent(name: str, base: str, args, report_dir: Path) -> int | None:
    """Run the client agent; the number of cases it was told of."""
    python = project_python(args.python)
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{REPO}:{old}" if old else str(REPO)
    cmd = [python, str(KNOWN_CLIENTS[name]), base, name]
    say(f"client {name}: {shlex.join(cmd)}")
    count = None
    log = report_dir / "client.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        timer = threading.Timer(args.timeout, stop_process_group, (proc, 2))
        timer.daemon = True
        if args.timeout > 0:
            timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if args.verbose:
                    sys.stdout.write(line)
                m = re.match(r"cases: (\d+)", line)
                if m:
                    count = int(m.group(1))
                m = re.match(r"case (\d+)/(\d+)", line)
                if m and not args.verbose and int(m.group(1)) % 50 == 0:
                    say(f"{m.group(1)}/{m.group(2)} cases run")
            rc = proc.wait()
        finally:
            timer.cancel()
            stop_process_group(proc)
    if rc != 0:
        raise RunnerError(
            f"the client exited with code {rc}\n--- {log} ---\n{tail(log)}"
        )
    return count


# --------------------------------------------------------------------------
# Command line


def split_list(values: list[str] | None) -> list[str]:
    out = []
    for value in values or []:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return out


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="conformance/run",
        description="Run the Autobahn Testsuite (fuzzingclient) against an "
        "echo server and summarize the report.",
    )
    parser.add_argument(
        "--server",
        "-s",
        action="append",
        help="server(s) under test: txclws (default), autobahn, twisted-web; "
        "comma-separated or repeated; any other name needs --server-cmd",
    )
    parser.add_argument(
        "--client",
        choices=sorted(KNOWN_CLIENTS),
        help="client mode: run wstest's fuzzingserver against this client "
        "(reports in REPORT_DIR/client-<name>/) instead of testing servers",
    )
    parser.add_argument(
        "--server-cmd",
        help="command line for a custom server, with {port} where the port "
        "goes (e.g. 'node echo.js {port}'); run with cwd = repo root",
    )
    parser.add_argument(
        "--cases",
        "-c",
        action="append",
        help="case patterns, e.g. '1.*,2.*' or '9.1.*' (default: all)",
    )
    parser.add_argument(
        "--exclude-cases",
        "-x",
        action="append",
        help="case patterns to leave out, e.g. '9.*,12.*,13.*'",
    )
    parser.add_argument(
        "--path",
        default="/",
        help="URL path of the WebSocket endpoint (default: /)",
    )
    parser.add_argument(
        "--origin",
        help="Origin header for wstest to send (default: none)",
    )
    parser.add_argument(
        "--python",
        help="Python for the txclws server (default: $PYTHON, else the "
        "Python running this script)",
    )
    parser.add_argument(
        "--ref-python",
        help="Python for the reference servers, with autobahn and "
        "Twisted[websocket] installed (default: $CONFORMANCE_REF_PYTHON, "
        "else a venv the runner builds under conformance/.cache)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("CONFORMANCE_CACHE", HERE / ".cache")),
        help="where the toolchains are installed (default: conformance/.cache)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=HERE / "reports",
        help="reports go to REPORT_DIR/<server>/ (default: conformance/reports)",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the summary as Markdown"
    )
    parser.add_argument(
        "--summarize",
        action="store_true",
        help="do not run anything; summarize the existing report(s)",
    )
    parser.add_argument(
        "--install-only",
        action="store_true",
        help="install (or check) the toolchains and exit",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=30,
        help="seconds to wait for the server to accept connections (30)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600,
        help="seconds after which wstest is stopped (3600; 0: none)",
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="show wstest's own output"
    )
    args = parser.parse_args(argv)
    if not args.path.startswith("/"):
        args.path = "/" + args.path
    args.cases = split_list(args.cases)
    args.exclude_cases = split_list(args.exclude_cases)

    names = split_list(args.server) or ["txclws"]
    specs = []
    for name in names:
        name = ALIASES.get(name, name)
        if args.server_cmd:
            if len(names) != 1:
                parser.error("--server-cmd goes with a single --server NAME")
            if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
                parser.error(f"bad server name {name!r}")
            specs.append(ServerSpec(name, None, False, args.server_cmd))
        elif name in KNOWN_SERVERS:
            specs.append(KNOWN_SERVERS[name])
        else:
            parser.error(
                f"unknown server {name!r} (known: "
                f"{', '.join(KNOWN_SERVERS)}; or give --server-cmd)"
            )
    args.specs = specs
    args.report_dir = args.report_dir.resolve()
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.summarize:
        code = 0
        for spec in args.specs:
            try:
                results = load_results(args.report_dir / spec.name, spec.name)
            except RunnerError as exc:
                say(str(exc))
                code = max(code, 2)
                continue
            print(
                f"\n{'## ' if args.markdown else ''}Autobahn Testsuite: {spec.name}\n"
            )
            print(format_report(results, args.markdown))
            code = max(code, results.exit_code())
        return code

    toolchain = Toolchain(args.cache_dir.resolve(), sys.executable or "python3")
    install_start = time.monotonic()
    try:
        with toolchain.locked():
            toolchain.ensure_wstest()
            needs_ref = any(s.reference for s in args.specs) or args.install_only
            if needs_ref and not (
                args.ref_python or os.environ.get("CONFORMANCE_REF_PYTHON")
            ):
                toolchain.ensure_ref_venv()
    except RunnerError as exc:
        say(f"installation failed: {exc}")
        return 2
    install_time = time.monotonic() - install_start
    if toolchain.installed:
        say(
            f"installed {', '.join(toolchain.installed)}; total "
            f"{fmt_seconds(install_time)}"
        )
    else:
        say(
            f"toolchains cached in {toolchain.cache} "
            f"(checked in {fmt_seconds(install_time)})"
        )
    if args.install_only:
        return 0
    if args.client:
        return _client_main(args, toolchain)

    code = 0
    for spec in args.specs:
        try:
            results = run_one(spec, args, toolchain)
        except RunnerError as exc:
            say(f"{spec.name}: {exc}")
            code = max(code, 2)
            continue
        rel = args.report_dir / spec.name / "index.html"
        print(f"\n{'## ' if args.markdown else ''}Autobahn Testsuite: {spec.name}\n")
        print(format_report(results, args.markdown))
        print(
            f"\nWall time: {fmt_seconds(results.wall_time)} "
            f"(wstest {fmt_seconds(results.wstest_time)}); "
            f"report: {rel}"
        )
        failures = len(results.failures()) + len(results.missing)
        verdict = "PASS" if not failures else f"FAIL ({failures} cases)"
        print(f"Result: {verdict}")
        code = max(code, results.exit_code())
    return code


def _client_main(args, toolchain: Toolchain) -> int:
    try:
        results = run_client(args.client, args, toolchain)
    except RunnerError as exc:
        say(f"client {args.client}: {exc}")
        return 2
    name = f"client-{args.client}"
    print(f"\n{'## ' if args.markdown else ''}Autobahn Testsuite: {name}\n")
    print(format_report(results, args.markdown))
    print(
        f"\nWall time: {fmt_seconds(results.wall_time)}; "
        f"report: {args.report_dir / name / 'index.html'}"
    )
    failures = len(results.failures()) + len(results.missing)
    print(f"Result: {'PASS' if not failures else f'FAIL ({failures} cases)'}")
    return results.exit_code()


if __name__ == "__main__":
    sys.exit(main())
