`twistd clws` has `--handshake-timeout SECONDS` (default 10) and `--max-head-size BYTES` (default 16384), the factory's `handshakeTimeout` and `maxHeadSize`.
