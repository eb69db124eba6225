# -*- test-case-name: tests.test_tap -*-
"""
The values of C{twistd clws}'s options, checked and turned into what the
service needs: numbers, endpoint descriptions, the hub, the resources and
the origin policy.

Every bad value is a C{usage.UsageError} whose message names the option
and says why, so that C{twistd} prints it instead of a traceback.

@since: 0.2.0
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

from twisted.python import usage
from twisted.python.reflect import namedAny

from txclws._core.origin import OriginCheck, anyOrigin, originExact, originPrefix
from txclws._hub import IHub, LocalHub
from txclws._ports import MAX_BACKLOG, WORKER_KINDS, ListenSpec, checkPort, readPort
from txclws._resource import IWebSocketResource
from txclws._systemd import isSystemd

__all__ = [
    "HTTP2_FLAGS",
    "backlog",
    "checkPorts",
    "hubFor",
    "loadResources",
    "originPolicy",
    "parameter",
    "portDescription",
    "positiveInt",
    "positiveSeconds",
    "seconds",
]


#: The HTTP/2 flags of C{twistd clws} (see L{txclws.web.WebSocketSite}).
HTTP2_FLAGS = [
    [
        "no-http2",
        None,
        "Do not offer HTTP/2 (ALPN h2) on ssl: and stdssl: ports; by default "
        "it is offered when the h2 library is installed (txclws[http2]), and "
        "browsers then open WebSockets on the page's connection (RFC 8441)",
    ],
    [
        "h2c",
        None,
        "Also serve cleartext HTTP/2 with prior knowledge on tcp: and unix: "
        "ports (RFC 9113 3.3), for proxies that speak it; off by default",
    ],
]


def seconds(value: str) -> float:
    """
    A number of seconds, 0 or more.

    @raise ValueError: anything else (NaN and infinity included).
    """
    number = _float(value)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError("is not a number of seconds (0 or more)")
    return number


def positiveSeconds(value: str) -> float:
    """
    A number of seconds over 0.

    @raise ValueError: anything else.
    """
    number = _float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError("is not a number of seconds over 0")
    return number


def positiveInt(value: str) -> int:
    """
    A whole number, 1 or more.

    @raise ValueError: anything else.
    """
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError("is not a positive integer")
    return number


def backlog(value: str) -> int:
    """
    A listen backlog: 1 to the most C{listen()} takes.

    @raise ValueError: anything else.
    """
    number = positiveInt(value)
    if number > MAX_BACKLOG:
        raise ValueError(f"is over {MAX_BACKLOG}")
    return number


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError("is not a number") from None


#: What C{--help} says of each kind of value (as a coerce function's
#: C{coerceDoc}).
_COERCE_DOCS: dict[Callable[[str], object], str] = {
    seconds: "A number of seconds.",
    positiveSeconds: "A number of seconds over 0.",
    positiveInt: "A positive integer.",
    backlog: "A positive integer.",
}


class _Checked:
    """
    The coerce function of one option: its bad value is a usage error
    naming the option (Twisted's own message does not name it).

    @ivar coerceDoc: what C{--help} says of the value, read by
        C{usage.Options}.
    """

    def __init__(self, name: str, coerce: Callable[[str], object]) -> None:
        self.name = name
        self.coerce = coerce
        self.coerceDoc = _COERCE_DOCS.get(coerce, "")

    def __call__(self, value: str) -> object:
        try:
            return self.coerce(value)
        except ValueError as error:
            raise usage.UsageError(f"--{self.name} {value!r} {error}") from None


def parameter(
    name: str, default: object, help: str, coerce: Callable[[str], object]
) -> list[object]:
    """
    An entry of C{usage.Options.optParameters} whose bad value is a usage
    error naming the option.

    @param coerce: turns the argument into the value, or raises
        C{ValueError} with what is wrong (C{"is not a positive integer"}).
    """
    return [name, None, default, help, _Checked(name, coerce)]


def portDescription(argument: str, backlog: int) -> str:
    """
    The endpoint description for a C{--port} argument: C{tcp:N} for a bare
    port number; C{backlog} added to a tcp, tcp6, ssl or stdssl
    description that sets none.
    """
    if argument.isdigit():
        return f"tcp:{int(argument)}:backlog={backlog}"
    kind, _, rest = argument.partition(":")
    options = rest.split(":")
    if kind in ("tcp", "tcp6", "ssl", "stdssl") and not any(
        o.startswith("backlog=") for o in options
    ):
        return f"{argument}:backlog={backlog}"
    return argument


def checkPorts(
    arguments: Sequence[str], backlog: int, workers: int, inherited: bool = False
) -> list[str]:
    """
    The endpoint descriptions of C{--port} arguments, each checked as far
    as it can be without listening.

    @param inherited: the ports' sockets are inherited from a parent (in a
        worker): a systemd: port is not looked up in this environment.
    @raise usage.UsageError: a port that cannot be parsed, would fail to
        bind, names no socket systemd passed, or cannot be shared by
        C{workers} processes.
    """
    descriptions = []
    for argument in arguments:
        description = portDescription(argument, backlog)
        descriptions.append(description)
        if inherited and isSystemd(description):
            continue  # the parent took it from systemd
        spec = _readPort(argument, description)
        if spec is None and workers > 1:
            raise usage.UsageError(
                f"--port {argument!r}: --workers serves {WORKER_KINDS} ports only"
            )
        if spec is not None:
            try:
                checkPort(spec)
            except ValueError as error:
                raise usage.UsageError(f"--port {argument!r}: {error}") from None
    return descriptions


def _readPort(argument: str, description: str) -> ListenSpec | None:
    """
    Parse C{description} as C{twistd} will, without listening.

    @raise usage.UsageError: it cannot be parsed.
    """
    try:
        return readPort(description)
    except Exception as error:
        hint = ""
        if description.startswith("ssl:") and isinstance(
            error, (ImportError, NotImplementedError)
        ):
            hint = " (install TLS support: pip install 'txclws[tls]')"
        raise usage.UsageError(
            f"--port {argument!r} is not usable: {error}{hint}"
        ) from error


def hubFor(argument: str) -> IHub:
    """
    The hub of a C{--hub} argument: a L{LocalHub} for C{local}, a
    L{txclws.redishub.RedisHub} for a C{redis://} URL (not yet connected).

    @raise usage.UsageError: anything else, or txredisapi is missing.
    """
    if argument == "local":
        return LocalHub()
    if not argument.startswith("redis://"):
        raise usage.UsageError(
            f"--hub {argument!r}: use 'local' or redis://host:port/db"
        )
    try:
        from txclws.redishub import RedisHub

        return RedisHub.fromURL(argument)
    except (ImportError, ValueError) as error:
        raise usage.UsageError(f"--hub: {error}") from error


def loadResources(
    specs: Sequence[str], hub: IHub | None = None
) -> list[tuple[str, IWebSocketResource]]:
    """
    Resolve C{--resource} arguments to C{(path, resource)} pairs; a class
    whose constructor takes a C{hub} argument is given C{hub}.

    @raise usage.UsageError: a malformed argument, a duplicate path, a name
        that cannot be imported, or something that is not a resource.
    """
    loaded: dict[str, IWebSocketResource] = {}
    for spec in specs:
        path, sep, name = spec.partition("=")
        if not sep or not name:
            raise usage.UsageError(f"--resource {spec!r}: use /path=module.Class")
        if not path.startswith("/") or "?" in path or "#" in path:
            raise usage.UsageError(f"--resource {spec!r}: the path must start with /")
        if path in loaded:
            raise usage.UsageError(f"--resource: {path} is named twice")
        try:
            resource = _instantiate(namedAny(name), hub)
        except Exception as error:
            raise usage.UsageError(f"--resource {spec!r}: {error}") from error
        if not IWebSocketResource.providedBy(resource):
            raise usage.UsageError(
                f"--resource {spec!r}: {name} does not provide IWebSocketResource"
            )
        loaded[path] = resource
    return list(loaded.items())


def _instantiate(thing: Callable[..., Any], hub: IHub | None = None) -> Any:
    if not callable(thing):
        raise TypeError(f"{thing!r} is not a class")
    if hub is not None and _takesHub(thing):
        return thing(hub=hub)
    return thing()


def _takesHub(thing: Callable[..., Any]) -> bool:
    try:
        return "hub" in inspect.signature(thing).parameters
    except (TypeError, ValueError):  # no signature to read
        return False


def originPolicy(origins: Sequence[str]) -> OriginCheck:
    """
    The origin policy of C{--origin} arguments: L{anyOrigin} for none or
    C{any}; otherwise an origin passes if it equals one of the exact
    origins or starts with one of the prefixes (those ending in C{*}).

    @raise usage.UsageError: C{any} mixed with others, or an argument that
        is not an origin.
    """
    if not origins or list(origins) == ["any"]:
        return anyOrigin
    if "any" in origins:
        raise usage.UsageError("--origin any cannot be combined with other origins")
    prefixes = [o[:-1] for o in origins if o.endswith("*")]
    exact = [o for o in origins if not o.endswith("*")]
    for origin in prefixes + exact:
        if "://" not in origin and origin != "null":
            raise usage.UsageError(
                f"--origin {origin!r} is not an origin such as https://example.com"
            )
    byPrefix, byExact = originPrefix(*prefixes), originExact(*exact)

    def check(origin: str | None) -> bool:
        return byExact(origin) or byPrefix(origin)

    check.__doc__ = f"Accept the origins {exact!r} and those under {prefixes!r}."
    return check
