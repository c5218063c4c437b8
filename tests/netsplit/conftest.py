"""Fixture: a private network of namespaces (netns.py) with a flockd node in each.

Skips (does not fail) where namespaces cannot be created: not root, no CAP_SYS_ADMIN, no
iproute2. Teardown stops the nodes (a crash or an unclean exit fails the test), prints their
logs when the test failed, and deletes the namespaces this run created.
"""

import os
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import flock_nodes  # noqa: E402
import netns  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


class Cluster:
    def __init__(self, net, nodes):
        self.net = net
        self.nodes = nodes

    def __getitem__(self, k):
        return self.nodes[k]

    def marks(self):
        return {k: n.log_mark() for k, n in self.nodes.items()}


@pytest.fixture
def cluster3(request):
    if not os.access(flock_nodes.BROKER_PATH, os.X_OK):
        pytest.fail("flockd not found at %s: build it or set FLOCK_BROKER"
                    % flock_nodes.BROKER_PATH)
    net = netns.Network([1, 2, 3])
    try:
        net.open()
    except netns.Unavailable as e:
        pytest.skip("cannot create network namespaces: %s" % e)
    nodes = {}
    problems = []
    try:
        with tempfile.TemporaryDirectory(prefix="flock-netsplit-") as tmpdir:
            nodes = flock_nodes.start_cluster(net, tmpdir, [1, 2, 3])
            try:
                for n in nodes.values():
                    n.wait_log(r"flockd \S+ started: ", 20)
                yield Cluster(net, nodes)
            finally:
                # Heal first so a node cut off at a failure still shuts down as usual.
                for k in nodes:
                    net.heal(k)
                problems = [p for p in (n.stop() for n in nodes.values()) if p]
                rep = getattr(request.node, "rep_call", None)
                if problems or (rep is not None and rep.failed):
                    for n in nodes.values():
                        sys.stderr.write(n.log_text() + "\n")
    finally:
        net.close()
    if problems:
        pytest.fail("; ".join(problems))
