# -*- test-case-name: tests.test_layers -*-
"""
The transport-agnostic per-client session: ordered dispatch with Deferreds,
read pausing, write-side flow and the slow-client policy, keepalive, the
close handshake and its timers, over a declared L{stream.IByteStream}.

Nothing here knows whether the bytes come from TCP, TLS, a UNIX socket or a
C{twisted.web} connection taken over: the transports (L{txclws._protocol},
L{txclws.web}) accept the handshake through L{txclws._core.accept} and open
a L{session.WebSocketSession} over a stream.
"""
