benchmarks/run compares txclws with Autobahn|Python, twisted.web.websocket and websockets in one run; faster hot paths, optional NumPy masking (the speedups extra), TCP_NODELAY.
