"""Fixtures for the cluster tests: `cluster`, three flockd nodes a, b, c on 127.0.0.1.

FLOCK_BROKER is the flockd binary (default ../../build/bin/flockd). Per-test settings:
@pytest.mark.cluster(workers=2, cluster_ack_timeout_ms=1000, ...) — every key other than
`workers` is a flockd config key given to every node (see cluster_fixture.DEFAULT_OPTIONS
for the short timings used otherwise).
"""

import os
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cluster_fixture  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster(workers=2, **options): flockd settings for every node")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def cluster(request):
    if cluster_fixture.ic.IS_MOSQUITTO:
        pytest.skip("cluster tests need flockd")
    if not os.access(cluster_fixture.BROKER_PATH, os.X_OK):
        pytest.fail("flockd %s not found: build it or set FLOCK_BROKER" % cluster_fixture.BROKER_PATH)
    m = request.node.get_closest_marker("cluster")
    options = dict(m.kwargs) if m else {}
    workers = options.pop("workers", 2)
    with tempfile.TemporaryDirectory(prefix="flock-ctest-") as tmpdir:
        yield from cluster_fixture.running(cluster_fixture.Cluster(tmpdir, workers=workers, options=options),
                                           request)


@pytest.fixture(params=[4, 5], ids=["v311", "v5"])
def version(request):
    """4 = MQTT 3.1.1, 5 = MQTT 5.0."""
    return request.param
