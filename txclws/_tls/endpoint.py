# -*- test-case-name: tests.test_stdlibtls,tests.test_stdsslworkers -*-
"""
The C{stdssl:} server endpoint: TCP with L{StdlibTLSFactory} over it,
described as Twisted's C{ssl:} is (C{stdssl:PORT:privateKey=KEY
[:certKey=CERT][:extraCertChain=CHAIN][:dhParameters=DH][:sslmethod=NAME]
[:interface=ADDRESS][:backlog=N]}), for C{twistd clws --port} (with
C{--workers} too) and C{serverFromString}.

The options mean what they mean on C{ssl:}: C{extraCertChain} names a PEM
file of the intermediate certificates sent after the server's,
C{dhParameters} a PEM file of Diffie-Hellman parameters (without it no
C{DHE} cipher suite is offered), and C{sslmethod} one of pyOpenSSL's method
names (L{METHODS}).
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from zope.interface import implementer

from txclws._tls.factory import StdlibTLSFactory

__all__ = ["METHODS", "StdlibSSLServerEndpoint", "parseStdlibSSL", "serverContext"]

#: The options a C{stdssl:} description may give, besides the port.
_OPTIONS = frozenset(
    {
        "privateKey",
        "certKey",
        "extraCertChain",
        "dhParameters",
        "sslmethod",
        "interface",
        "backlog",
    }
)

#: The C{sslmethod=} names served, as the versions each allows: (minimum,
#: maximum), C{None} for the library's own bound.  As on C{ssl:},
#: C{TLSv1_2_METHOD} is TLS 1.2 only, and C{TLS_METHOD} (its older name
#: C{SSLv23_METHOD}, and C{TLS_SERVER_METHOD}) any version, which here is
#: TLS 1.2 and later (C{ssl.PROTOCOL_TLS_SERVER}'s default).
METHODS: dict[str, tuple[ssl.TLSVersion | None, ssl.TLSVersion | None]] = {
    "TLS_METHOD": (None, None),
    "SSLv23_METHOD": (None, None),
    "TLS_SERVER_METHOD": (None, None),
    "TLSv1_2_METHOD": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2),
}

#: The method names of pyOpenSSL that C{stdssl:} refuses, and why.
_REFUSED = {
    "TLSv1_METHOD": "TLS 1.0 is not served (RFC 8996 deprecates it)",
    "TLSv1_1_METHOD": "TLS 1.1 is not served (RFC 8996 deprecates it)",
}

#: One PEM certificate (RFC 7468 5.1), its labels included.
_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)


def serverContext(
    certKey: str,
    privateKey: str | None = None,
    extraCertChain: str | None = None,
    dhParameters: str | None = None,
    sslmethod: str | None = None,
) -> ssl.SSLContext:
    """
    A server C{ssl.SSLContext} with the standard library's defaults (TLS
    1.2 and later, its cipher list) serving C{certKey}, a PEM certificate
    (and chain), with the PEM key C{privateKey} (default: in C{certKey}).

    @param extraCertChain: a PEM file of certificates sent after those of
        C{certKey} (the intermediates up to a root).
    @param dhParameters: a PEM file of DH parameters, for the C{DHE}
        cipher suites of TLS 1.2.
    @param sslmethod: a name of L{METHODS}.
    @raise ValueError: a chain file with no certificate, DH parameters
        that cannot be loaded, or a method not served.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    minimum, maximum = METHODS[_method(sslmethod)]
    if minimum is not None:
        context.minimum_version = minimum
    if maximum is not None:
        context.maximum_version = maximum
    if extraCertChain is None:
        context.load_cert_chain(certKey, privateKey)
    else:
        _loadWithChain(context, certKey, privateKey, extraCertChain)
    if dhParameters is not None:
        _loadDH(context, dhParameters)
    return context


def _method(sslmethod: str | None) -> str:
    """
    The name of L{METHODS} that C{sslmethod=} gives (C{TLS_METHOD} if
    none).

    @raise ValueError: a name not served.
    """
    if sslmethod is None:
        return "TLS_METHOD"
    if sslmethod in _REFUSED:
        raise ValueError(f"stdssl: sslmethod={sslmethod}: {_REFUSED[sslmethod]}")
    if sslmethod not in METHODS:
        raise ValueError(
            f"stdssl: sslmethod={sslmethod} is not one of {', '.join(METHODS)}"
        )
    return sslmethod


def _certificates(path: str, option: str) -> list[bytes]:
    """
    The PEM certificates in the file C{path}, in order.

    @raise ValueError: it cannot be read, or holds none.
    """
    try:
        with open(path, "rb") as pem:
            found = _CERTIFICATE.findall(pem.read())
    except OSError as error:
        raise ValueError(f"stdssl: {option}={path}: {error.strerror}") from error
    if not found:
        raise ValueError(f"stdssl: {option}={path} holds no PEM certificate")
    return found


def _loadWithChain(
    context: ssl.SSLContext, certKey: str, privateKey: str | None, chain: str
) -> None:
    """
    Serve the certificates of C{certKey}, then those of C{chain}.

    The standard library loads a chain only from a file
    (C{load_cert_chain}, C{SSL_CTX_use_certificate_chain_file}); it has
    neither C{SSL_CTX_add_extra_chain_cert} nor a way to load from memory.
    So the certificates, and only they (public data: never the key, even
    when it shares C{certKey}'s file), are written to a temporary file of
    this user's (C{mkstemp}: mode 0600), loaded, and removed at once.
    """
    certificates = [
        *_certificates(certKey, "certKey"),
        *_certificates(chain, "extraCertChain"),
    ]
    descriptor, combined = tempfile.mkstemp(prefix="stdssl-chain-", suffix=".pem")
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(b"\n".join(certificates) + b"\n")
        context.load_cert_chain(combined, privateKey or certKey)
    finally:
        os.unlink(combined)


def _loadDH(context: ssl.SSLContext, path: str) -> None:
    """
    Load the DH parameters of C{path}.

    @raise ValueError: they cannot be read or used.
    """
    try:
        context.load_dh_params(path)
    except OSError as error:
        # ssl.SSLError is an OSError too; its reason names what OpenSSL
        # refused.
        reason = getattr(error, "reason", None)
        why = _DH_REASONS.get(reason, reason) if reason else error.strerror
        raise ValueError(
            f"stdssl: dhParameters={path}: cannot load DH parameters: {why}"
        ) from error


#: What OpenSSL's reasons for refusing DH parameters mean.
_DH_REASONS = {
    "NO_START_LINE": "no PEM DH PARAMETERS in it (NO_START_LINE)",
    "DH_KEY_TOO_SMALL": "a group under 2048 bits, refused by the security "
    "level (DH_KEY_TOO_SMALL)",
}


@implementer(IStreamServerEndpoint)
class StdlibSSLServerEndpoint:
    """
    Listens on TCP and serves TLS with L{StdlibTLSFactory}.
    """

    def __init__(
        self,
        reactor: Any,
        port: int,
        context: ssl.SSLContext,
        backlog: int = 50,
        interface: str = "",
    ) -> None:
        self._tcp = TCP4ServerEndpoint(reactor, port, backlog, interface)
        self.context = context

    def listen(self, protocolFactory: Any) -> Deferred[IListeningPort]:
        """
        Listen, wrapping C{protocolFactory}'s connections in TLS.
        """
        listening: Deferred[IListeningPort] = self._tcp.listen(
            StdlibTLSFactory(self.context, protocolFactory)
        )
        return listening


def parseStdlibSSL(reactor: Any, port: str, **options: str) -> StdlibSSLServerEndpoint:
    """
    The endpoint of a C{stdssl:} description's fields.

    @raise ValueError: an option it does not know, no C{privateKey}, or an
        option L{serverContext} refuses.
    """
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ValueError(f"stdssl: does not know {', '.join(sorted(unknown))}")
    if "privateKey" not in options:
        raise ValueError("stdssl: needs privateKey=")
    key = options["privateKey"]
    context = serverContext(
        options.get("certKey", key),
        key,
        options.get("extraCertChain"),
        options.get("dhParameters"),
        options.get("sslmethod"),
    )
    return StdlibSSLServerEndpoint(
        reactor,
        int(port),
        context,
        int(options.get("backlog", 50)),
        options.get("interface", ""),
    )
