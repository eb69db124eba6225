# -*- test-case-name: tests.test_layers -*-
"""
The sans-I/O WebSocket core: bytes in, events and bytes out.

Nothing in this package imports Twisted or zope.interface, keeps a clock or
does I/O: frames, masking, UTF-8, close rules, permessage-deflate, the
opening handshake and its acceptance policy, and the per-connection state
machine.  The session (L{txclws._session}) and the transports above it move
the bytes and decide when.
"""
