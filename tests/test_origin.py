"""
Tests for L{txclws._core.origin}: origin policies (RFC 6455 section 10.2, CLWS's
any-origin, origin-prefix and origin-exact).
"""

from __future__ import annotations

import pytest

from txclws._core.origin import anyOrigin, originExact, originPrefix


class TestAnyOrigin:
    """
    L{anyOrigin} accepts everybody.
    """

    @pytest.mark.parametrize(
        "origin", ["http://example.com", "null", "", "http://evil.example", None]
    )
    def test_acceptsAll(self, origin: str | None) -> None:
        """
        Every origin, and a client that declares none, is accepted.
        """
        assert anyOrigin(origin) is True


class TestOriginExact:
    """
    L{originExact} accepts exactly the listed origins.
    """

    def test_listed(self) -> None:
        """
        Each listed origin is accepted.
        """
        check = originExact("http://a.example", "https://b.example:8443")
        assert check("http://a.example")
        assert check("https://b.example:8443")

    @pytest.mark.parametrize(
        "origin",
        [
            "http://a.example:80",
            "https://a.example",
            "http://a.example.evil",
            "http://a.exampl",
            "http://a.example/",
            "",
            None,
        ],
    )
    def test_others(self, origin: str | None) -> None:
        """
        Anything else, near misses and no origin included, is refused.
        """
        assert originExact("http://a.example")(origin) is False

    def test_noneListed(self) -> None:
        """
        With no origins listed, nothing is accepted.
        """
        assert originExact()("http://a.example") is False


class TestOriginPrefix:
    """
    L{originPrefix} accepts origins that begin with a prefix, the match
    ending at a boundary of the host.
    """

    @pytest.mark.parametrize(
        "origin",
        ["http://localhost", "http://localhost:8080", "http://localhost/"],
    )
    def test_boundaryAccepted(self, origin: str) -> None:
        """
        The prefix itself, or followed by a port or path, is accepted.
        """
        assert originPrefix("http://localhost")(origin) is True

    @pytest.mark.parametrize(
        "origin",
        [
            "http://localhost.evil.example",
            "http://localhostevil.example",
            "http://localhos",
            "https://localhost",
            "",
            None,
        ],
    )
    def test_notAtBoundary(self, origin: str | None) -> None:
        """
        A longer host name that merely starts with the prefix, another
        scheme, a shorter string, and no origin are all refused.
        """
        assert originPrefix("http://localhost")(origin) is False

    def test_portBoundary(self) -> None:
        """
        A prefix with a port does not accept a longer port.
        """
        check = originPrefix("http://localhost:80")
        assert check("http://localhost:80")
        assert not check("http://localhost:8080")

    def test_prefixEndingInSeparator(self) -> None:
        """
        A prefix that ends in ":" or "/" is itself a boundary: what follows
        it may be anything.
        """
        assert originPrefix("https://")("https://anything.example")
        assert originPrefix("http://localhost:")("http://localhost:9000")
        assert not originPrefix("https://")("http://anything.example")

    def test_severalPrefixes(self) -> None:
        """
        Any one of several prefixes suffices.
        """
        check = originPrefix("http://localhost", "https://app.example")
        assert check("http://localhost:3000")
        assert check("https://app.example")
        assert not check("https://other.example")

    def test_docstringNamesPrefixes(self) -> None:
        """
        The policy describes itself, for logs and debugging.
        """
        assert "http://localhost" in (originPrefix("http://localhost").__doc__ or "")
        assert "http://a" in (originExact("http://a").__doc__ or "")
