"""The replication controller across real flockd processes (docs/replication.md, slice 4).

Three nodes with replication_factor set elect one controller leader and agree on their
three data directories (gRPC over mutual TLS, Raft logs in RocksDB). The leader killed with
SIGKILL: the survivors elect another, fence its directory and own its partitions. Its directory wiped and the
node started again: a new store joins, the old one stays fenced. Read from /metrics.
"""

import tempfile

import pytest

from cluster_fixture import Cluster, free_port, ic, running, wait_for
from test_cluster_metrics import scrape


@pytest.fixture
def replicated(request):
    if ic.IS_MOSQUITTO:
        pytest.skip("cluster tests need flockd")
    with tempfile.TemporaryDirectory(prefix="flock-ctest-") as tmpdir:
        c = Cluster(tmpdir, options={"replication_factor": 2, "cluster_expect": 3})
        for n in c:
            n.metrics_port = free_port()
            n.options["metrics_listen"] = "127.0.0.1:%d" % n.metrics_port
        yield from running(c, request)


def controller(node):
    m = scrape(node)
    return {
        "leads": m.get("flock_controller_leader"),
        "lease": m.get("flock_controller_lease"),
        "voters": m.get("flock_controller_voters"),
        "up": m.get('flock_controller_stores{state="up"}'),
        "fenced": m.get('flock_controller_stores{state="fenced"}'),
        "term": m.get("flock_controller_term"),
    }


def owned(nodes):
    """Partitions the controller's map gives each of `nodes` to own, summed."""
    return sum(scrape(n).get('flock_replication_partitions{role="owner"}') or 0 for n in nodes)


def settled(nodes, up, fenced, voters):
    """One leader among `nodes`, every one of them holding the lease and agreeing on the
    stores and voters."""
    views = [controller(n) for n in nodes]
    if any(v["up"] != up or v["fenced"] != fenced or v["voters"] != voters or v["lease"] != 1 for v in views):
        return None
    leaders = [n for n, v in zip(nodes, views) if v["leads"] == 1]
    return leaders[0] if len(leaders) == 1 else None


def test_one_leader_fences_a_killed_node_and_takes_in_its_wiped_successor(replicated):
    nodes = list(replicated)
    leader = wait_for(lambda: settled(nodes, 3, 0, 3), 20, message="one controller leader over 3 stores")
    term = controller(leader)["term"]
    # Every one of the 256 partitions has exactly one owner among them.
    wait_for(lambda: owned(nodes) == 256, 20, message="256 partitions owned across the nodes")

    leader.kill()
    survivors = [n for n in nodes if n is not leader]
    # Two reachable servers: the dead one stops voting (a majority of two is both).
    new_leader = wait_for(lambda: settled(survivors, 2, 1, 2), 20,
                          message="a new leader among the survivors, the killed node's store fenced")
    assert controller(new_leader)["term"] > term
    # What the killed store owned went to a survivor in its ISR.
    wait_for(lambda: owned(survivors) == 256, 20, message="the survivors own every partition")

    # Its data directory is gone for good: the same node name comes back as a new store.
    leader.wipe()
    replicated.start_again(leader)
    wait_for(lambda: settled(nodes, 3, 1, 3), 20, message="the new store taken in, the old one still fenced")
