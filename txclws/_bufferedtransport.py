# -*- test-case-name: tests.test_testing -*-
"""
A declared way for a transport to say how many bytes it still holds for
its peer.

Twisted publishes no such count: L{txclws._flow.bufferedBytes} reads the
private buffers of Twisted's own transports.  A transport of ours (the
in-memory transport of L{txclws.testing}, and any other that buffers)
provides L{IBufferedTransport} instead, and is asked first.
"""

from __future__ import annotations

from zope.interface import Interface

__all__ = ["IBufferedTransport"]


class IBufferedTransport(Interface):
    """
    A transport that can tell how much written data it has not yet sent.

    @since: 0.2.0
    """

    def bufferedAmount() -> int:
        """
        @return: the bytes written to this transport and not yet handed on
            to the peer (or to the kernel), C{0} when its buffer is empty.
        """
