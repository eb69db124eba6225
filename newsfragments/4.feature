permessage-deflate (RFC 7692), off by default, with bounded inflate; conformance/run runs the Autobahn Testsuite (every case strict OK or INFORMATIONAL).
