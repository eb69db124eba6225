# -*- test-case-name: tests.test_client -*-
"""
The client role's transport: a Twisted protocol that opens a WebSocket
connection and then serves it as the same session the server uses
(L{txclws._session}), and the functions that connect it.
"""
