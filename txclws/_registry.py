# -*- test-case-name: tests.test_protocol -*-
"""
Resources by path: L{ResourceRegistry}, and the global registry that CLWS's
C{register-global-resource} fills.
"""

from __future__ import annotations

from txclws._core.accept import checkResourcePath
from txclws._core.origin import OriginCheck
from txclws._resource import IWebSocketResource

__all__ = [
    "ResourceRegistry",
    "findGlobalResource",
    "globalResources",
    "registerGlobalResource",
]


class ResourceRegistry:
    """
    Resources by path, each with its origin policy.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[IWebSocketResource, OriginCheck]] = {}

    def register(
        self, path: str, resource: IWebSocketResource, originCheck: OriginCheck
    ) -> None:
        """
        Serve C{resource} at C{path}, to clients whose origin passes
        C{originCheck}; replaces whatever was there.

        @param path: the absolute path part of the URI, like C{"/chat"}.
        @param originCheck: L{anyOrigin}, L{originPrefix}, L{originExact} or
            any callable from origin (or C{None}) to bool.
        @raise ValueError: C{path} does not start with C{/} or has a C{?}.
        @raise TypeError: C{resource} does not provide L{IWebSocketResource}.
        """
        checkResourcePath(path)
        if not IWebSocketResource.providedBy(resource):
            raise TypeError(f"{resource!r} does not provide IWebSocketResource")
        self._entries[path] = (resource, originCheck)

    def unregister(self, path: str) -> None:
        """
        Stop serving the resource at C{path}; new clients get 404.

        @raise KeyError: nothing is registered there.
        """
        del self._entries[path]

    def find(self, path: str) -> IWebSocketResource | None:
        """
        The resource at C{path}, or C{None}.
        """
        entry = self._entries.get(path)
        return entry[0] if entry is not None else None

    def lookup(self, path: str) -> tuple[IWebSocketResource, OriginCheck] | None:
        """
        The resource at C{path} with its origin policy, or C{None}.
        """
        return self._entries.get(path)

    def paths(self) -> list[str]:
        """
        Every registered path, sorted.
        """
        return sorted(self._entries)


#: The registry of L{registerGlobalResource}, served by every factory made
#: without a registry of its own.
globalResources = ResourceRegistry()


def registerGlobalResource(
    path: str, resource: IWebSocketResource, originCheck: OriginCheck
) -> None:
    """
    Register C{resource} at C{path} in the global registry (CLWS's
    C{register-global-resource}).  See L{ResourceRegistry.register}.
    """
    globalResources.register(path, resource, originCheck)


def findGlobalResource(path: str) -> IWebSocketResource | None:
    """
    The resource registered globally at C{path}, or C{None} (CLWS's
    C{find-global-resource}).
    """
    return globalResources.find(path)
