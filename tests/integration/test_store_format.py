"""A data directory written by an older build opens in this one: tests/fixtures/store-format-*
were written by the build that introduced each record format (tests/fixtures/make_store_fixture.py)
and are never regenerated."""

import os
import shutil
import tempfile

import pytest

from conftest import IS_MOSQUITTO, Broker, marker_sync, running
from mqtt_raw import *  # noqa: F401,F403

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="flock's store")

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
NEVER = 0xFFFFFFFF


# Format 1: protobuf records throughout. Format 2: messages, retained messages and
# wills in the one message encoding (broker/core/message_codec.hpp).
@pytest.fixture(params=["store-format-1", "store-format-2"])
def stored(request):
    with tempfile.TemporaryDirectory(prefix="flock-format-") as tmpdir:
        b = Broker(2, {}, tmpdir)
        shutil.rmtree(b.data_dir)
        shutil.copytree(os.path.join(FIXTURES, request.param), b.data_dir)
        yield from running(b, request)


def test_sessions_queues_inflight_incoming_and_retained_of_every_format(stored):
    broker = stored
    assert "restored 3 sessions" in broker.log_text()

    v3 = broker.client(4)
    assert v3.connect("fixture-v3", clean=False).session_present
    got = [v3.recv_publish() for _ in range(2)]
    assert [(p.topic, p.payload, p.qos) for p in got] == [("fixture/a/x", b"in flight", 1),
                                                          ("fixture/q", b"queued qos2", 2)]

    v5 = broker.client(5)
    assert v5.connect("fixture-v5", clean=False, props={SESSION_EXPIRY: NEVER}).session_present
    again = v5.expect(PUBLISH)
    assert (again.payload, again.dup, again.qos) == (b"in flight", True, 1)
    assert again.props.all(SUBSCRIPTION_ID) == [9]
    assert again.props.get(CONTENT_TYPE) == "text/plain"
    assert again.props.all(USER_PROPERTY) == [("k", "v")]
    v5.ack(again)

    pub = broker.client(5)
    assert pub.connect("fixture-pub", clean=False, props={SESSION_EXPIRY: NEVER}).session_present
    pub.send(build_ack(5, PUBREL, 77))
    comp = pub.expect(PUBCOMP)
    assert (comp.pid, comp.reason) == (77, 0), "the incoming QoS 2 id was not restored"
    # The subscription came back with its options: a message reaches v5 with identifier 9.
    other = broker.connect("fixture-other")
    other.publish_flow("fixture/b/x", b"new", qos=1)
    p = v5.recv_publish()
    assert (p.payload, p.props.all(SUBSCRIPTION_ID)) == (b"new", [9])
    # No Local: what fixture-v5 publishes itself does not come back to it.
    v5.publish_flow("fixture/c/x", b"own", qos=1)
    marker_sync(v5, other, "fixture/d/x")

    r = broker.connect("fixture-r")
    r.subscribe([("fixture/retained", 1)])
    p = r.recv_publish()
    assert (p.payload, p.retain, p.props.get(CONTENT_TYPE)) == (b"retained", True, "text/plain")
