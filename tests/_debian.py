"""
Programs the tests need from Debian's packages (a browser, a Redis server),
found on the machine or installed on the spot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

import pytest


def _installed(executables: Sequence[str]) -> str | None:
    for candidate in executables:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def findOrInstall(executables: Sequence[str], packages: Sequence[str]) -> str:
    """
    The first of C{executables} found, after installing C{packages} from
    Debian's packages when none is and this runs as root on a machine with
    apt (as on CI and on a fresh machine): the README's test command then
    needs nothing else.

    @raise pytest.fail.Exception: none is there and none could be
        installed; the test fails, it does not skip.
    """
    found = _installed(executables)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], env=environment, check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", *packages],
            env=environment,
            check=False,
        )
        found = _installed(executables)
    if found is None:
        pytest.fail(
            f"{executables[0]} is not installed and could not be: as root, "
            f"apt-get install {' '.join(packages)}"
        )
    return found
