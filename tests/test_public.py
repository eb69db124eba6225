"""
Tests for the public names of L{txclws}: C{__all__} is exactly what the
package re-exports, and each name is the object of its private module.
"""

from __future__ import annotations

import subprocess
import sys
import types

import txclws


def test_allMatchesExports() -> None:
    """
    Every public attribute of the package (modules and C{__version__}
    aside) is in C{__all__}, and every name in C{__all__} exists.
    """
    public = {
        name
        for name, value in vars(txclws).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(txclws.__all__) == public
    assert len(txclws.__all__) == len(set(txclws.__all__))


def test_exportsComeFromPrivateModules() -> None:
    """
    Each exported class and function is defined in a private module of the
    package (C{txclws._x}), as the layout promises.
    """
    for name in txclws.__all__:
        module = getattr(getattr(txclws, name), "__module__", None)
        if module is not None and module.startswith("txclws"):
            assert module.split(".")[1].startswith("_"), (name, module)


def test_hubUnavailableIsAWebSocketError() -> None:
    """
    L{txclws.HubUnavailable} derives from the library's base error.
    """
    assert issubclass(txclws.HubUnavailable, txclws.WebSocketError)


def test_importsWithoutTLSLibraries() -> None:
    """
    C{import txclws}, its web integration, the daemon's plugins (C{clws},
    C{stdssl:}) and its worker processes work on a plain C{pip install .},
    with no pyOpenSSL (the C{tls} extra): the README's first command runs
    the daemon on such an install.  Checked
    in a fresh interpreter where C{OpenSSL} cannot be imported.
    """
    script = (
        "import sys; sys.modules['OpenSSL'] = None\n"
        "import txclws, txclws.web, txclws.tap, txclws._workerchild\n"
        "from twisted.plugins import txclws_plugin, txclws_stdssl\n"
        "txclws.tap.makeService(txclws.tap.Options())\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr
