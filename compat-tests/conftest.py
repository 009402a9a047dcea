"""Fixtures for the gregor compatibility suite.

GREGOR_COMPAT_TARGET=gregor (default) runs the gregor binary (GREGOR_BIN, default
<repo>/target/release/gregor); GREGOR_COMPAT_TARGET=kafka runs Apache Kafka 4.1.1 from .jars.
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.broker import Broker, target  # noqa: E402
from harness import clients  # noqa: E402


def pytest_report_header(config):
    t = target()
    extra = os.environ.get("GREGOR_BIN", "target/release/gregor") if t == "gregor" else "4.1.1"
    return f"compat target: {t} ({extra})"


class BrokerFactory:
    def __init__(self, base_dir):
        self.base_dir = Path(base_dir)
        self.brokers = []

    def __call__(self, start=True, limits=None, listeners=None, sasl=None, tls=None, **overrides):
        """broker_factory(**{'message.max.bytes': 100000}) -> started Broker; `limits` maps
        resource.RLIMIT_* to the soft and hard limit the broker process runs under; `listeners`
        maps more PLAINTEXT listener names to (port, advertised host); `sasl`
        ({"mechanisms": [...], "plain_users": {user: password}}) adds a SASL_PLAINTEXT listener
        (Broker.sasl_bootstrap); `tls` ({"SSL": {ssl.* keys}, "SASL_SSL": {...}}) adds TLS listeners
        (Broker.ssl_bootstrap, Broker.sasl_ssl_bootstrap; SASL_SSL needs `sasl`)."""
        b = Broker(self.base_dir / f"broker{len(self.brokers)}", overrides=overrides,
                   limits=limits, listeners=listeners, sasl=sasl, tls=tls)
        self.brokers.append(b)
        if start:
            b.start()
        return b

    def close(self):
        for b in self.brokers:
            b.close()


@pytest.fixture
def broker_factory(tmp_path):
    f = BrokerFactory(tmp_path)
    yield f
    f.close()


@pytest.fixture
def broker(broker_factory):
    """A fresh broker (new data dir, new port) for this test."""
    return broker_factory()


@pytest.fixture(scope="module")
def module_broker(tmp_path_factory):
    """One broker shared by a module's tests (they use distinct topics)."""
    f = BrokerFactory(tmp_path_factory.mktemp("modbroker"))
    b = f()
    yield b
    f.close()


@pytest.fixture
def topic(request):
    """topic(partitions=1, config=None, broker=None) -> name of a new, ready topic.

    Uses the test's `broker` (or `module_broker`) unless one is passed."""

    def make(partitions=1, config=None, broker=None, prefix="t"):
        if broker is None:
            if "module_broker" in request.fixturenames and "broker" not in request.fixturenames:
                broker = request.getfixturevalue("module_broker")
            else:
                broker = request.getfixturevalue("broker")
        name = clients.unique_name(prefix)
        clients.create_topic(broker.bootstrap, name, partitions, config)
        return name

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("setup", "call"):
        seen = set()
        for v in getattr(item, "funcargs", {}).values():
            bs = v.brokers if isinstance(v, BrokerFactory) else [v] if isinstance(v, Broker) else []
            for b in bs:
                if id(b) not in seen:
                    seen.add(id(b))
                    rep.sections.append((f"broker log {b.bootstrap}", b.log_tail()))
