"""
Installer for txclws.  Settings for tools live in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    name="txclws",
    version="0.1.0",
    description="A WebSocket server library for Twisted, modelled on CLWS",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    # twisted.plugins has no __init__.py of ours: the plugin module drops
    # into Twisted's own package (see twisted/plugins/txclws_plugin.py).
    # Every txclws package, found rather than listed: a subpackage missing
    # from a hand-written list installs a txclws that cannot import.
    packages=[*find_packages(include=["txclws", "txclws.*"]), "twisted.plugins"],
    package_data={"txclws": ["py.typed", "demo.html"]},
    install_requires=["twisted>=23.10", "zope.interface>=5"],
    extras_require={
        # wss:// through Twisted's ssl: endpoints.
        "tls": ["twisted[tls]>=23.10"],
        # Masking of large payloads at C speed (about 25x the pure-Python
        # way; see txclws/_core/mask.py).
        "speedups": ["numpy>=1.22"],
        # --hub redis:// (txclws.redishub): a Twisted-native Redis client.
        # 1.6 is the first whose connections reconnect through Twisted's
        # ClientService (RedisFactory.startConnecting, which RedisHub uses).
        "redis": ["txredisapi>=1.6"],
        # HTTP/2 on TLS ports (ALPN h2) and h2c: pages, and WebSockets by
        # RFC 8441.  4.1 is the first h2 to accept the :protocol
        # pseudo-header of an extended CONNECT.
        "http2": ["h2>=4.1"],
        # Prometheus metrics (txclws._metrics, twistd clws --metrics).  0.20
        # is the first whose multiprocess mode takes the upper-case
        # PROMETHEUS_MULTIPROC_DIR alone.
        "metrics": ["prometheus-client>=0.20"],
        "test": [
            "twisted[tls]>=23.10",
            # The tests exercise both masking ways, so NumPy is needed.
            "numpy>=1.22",
            "pytest>=8",
            "pytest-twisted>=1.14",
            "hypothesis>=6.100",
            "websockets>=13",
            # tests/test_hub.py and test_scaling.py run RedisHub against a
            # real redis-server.
            "txredisapi>=1.6",
            "h2>=4.1",
            # tests/test_client_interop.py runs the txclws client against
            # Autobahn|Python's Twisted server.
            "autobahn[twisted]>=24",
            "prometheus-client>=0.20",
        ],
        # mypy-zope pins the mypy versions it supports: 1.0.17 is the first
        # for mypy 2.4 (the [tool.mypy] plugin in pyproject.toml).  pydoctor
        # builds the API reference ([tool.pydoctor]; docs/development.md);
        # its warnings fail CI, so the version the docstrings were checked
        # with is the floor.
        "dev": ["ruff", "mypy>=2.4", "mypy-zope>=1.0.17", "pydoctor>=25.10"],
    },
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: WWW/HTTP",
    ],
)
