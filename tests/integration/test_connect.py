"""CONNECT / CONNACK: return and reason codes, session present, client ids, takeover, limits."""

import os
import signal

import pytest

from conftest import marker_sync
from mqtt_raw import *  # noqa: F401,F403


def test_v311_connect_accepted_with_return_code_0(broker):
    c = broker.client(4)
    ack = c.connect("c311")
    assert ack.reason == 0
    assert ack.session_present is False
    assert ack.body == b"\x00\x00", "v3.1.1 CONNACK is exactly 2 bytes: %r" % ack.body
    assert c.ping().type == PINGRESP


def test_v31_mqisdp_connect_and_round_trip(broker):
    c = broker.client(3)
    ack = c.connect("c31")
    assert ack.reason == 0
    c.subscribe([("v31/t", 1)])
    c.publish_flow("v31/t", b"hello", qos=1)
    p = c.recv_publish()
    assert (p.topic, p.payload, p.qos) == ("v31/t", b"hello", 1)


def test_v5_connect_success_reason_0(broker):
    c = broker.client(5)
    ack = c.connect("c5")
    assert ack.reason == RC_SUCCESS
    assert ack.session_present is False


def test_v311_session_present(broker):
    c = broker.connect("sp4", version=4, clean=False)
    assert c.connack.session_present is False
    c.subscribe([("sp4/t", 1)])
    c.disconnect()
    c = broker.client(4)
    ack = c.connect("sp4", clean=False)
    assert ack.session_present is True
    c.disconnect()
    c = broker.client(4)
    ack = c.connect("sp4", clean=True)
    assert ack.session_present is False, "clean session 1 must never report a session"


def test_v5_session_present_with_session_expiry(broker):
    c = broker.connect("sp5", props={SESSION_EXPIRY: 300})
    c.subscribe([("sp5/t", 1)])
    c.disconnect()
    c = broker.client(5)
    ack = c.connect("sp5", clean=False, props={SESSION_EXPIRY: 300})
    assert ack.session_present is True
    c.disconnect()
    c = broker.client(5)
    ack = c.connect("sp5", clean=True)
    assert ack.session_present is False


def test_v5_session_expiry_0_keeps_no_session(broker):
    c = broker.connect("sp50", props={SESSION_EXPIRY: 0}, clean=True)
    c.subscribe([("sp50/t", 1)])
    c.disconnect()
    c = broker.client(5)
    assert c.connect("sp50", clean=False).session_present is False


def test_v311_zero_length_client_id_clean_session_accepted(broker):
    c = broker.client(4)
    ack = c.connect("", clean=True)
    assert ack.reason == 0
    c.subscribe([("zl/t", 0)])
    c.publish_flow("zl/t", b"x")
    assert c.recv_publish().payload == b"x"


def test_v311_zero_length_client_id_persistent_rejected_with_2(broker):
    c = broker.client(4)
    ack = c.connect("", clean=False)
    assert ack.reason == 2, "identifier rejected expected, got %r" % ack
    c.wait_closed()
    broker.check_serving()


def test_v5_zero_length_client_id_gets_assigned_identifier(broker):
    c = broker.client(5)
    ack = c.connect("", clean=True)
    assert ack.reason == 0
    assigned = ack.props.get(ASSIGNED_CLIENT_ID)
    assert assigned, "CONNACK must carry Assigned Client Identifier: %r" % ack.props
    c2 = broker.client(5)
    ack2 = c2.connect("", clean=True)
    assert ack2.props.get(ASSIGNED_CLIENT_ID) not in (None, assigned), "assigned ids must be unique"


def test_v5_no_assigned_identifier_when_client_gives_one(broker):
    c = broker.client(5)
    ack = c.connect("given-id")
    assert ASSIGNED_CLIENT_ID not in ack.props


def test_v311_second_connection_with_same_id_kicks_first(broker):
    old = broker.connect("dupe4", version=4)
    new = broker.connect("dupe4", version=4)
    got = old.wait_closed()
    assert got == [], "v3.1.1 has no DISCONNECT from the server, got %r" % got
    assert new.ping().type == PINGRESP


@pytest.mark.mosquitto_wrong("closes the old connection without DISCONNECT 0x8E")
def test_v5_second_connection_with_same_id_sends_0x8E_to_first(broker):
    old = broker.connect("dupe5")
    new = broker.connect("dupe5")
    got = old.wait_closed()
    assert len(got) == 1 and got[0].type == DISCONNECT, "expected one DISCONNECT, got %r" % got
    assert got[0].reason == RC_SESSION_TAKEN_OVER
    assert new.ping().type == PINGRESP


def test_takeover_keeps_persistent_session_subscriptions(broker):
    old = broker.connect("tk", props={SESSION_EXPIRY: 300})
    old.subscribe([("tk/t", 1)])
    new = broker.client(5)
    ack = new.connect("tk", clean=False, props={SESSION_EXPIRY: 300})
    assert ack.session_present is True
    old.wait_closed()
    pub = broker.connect("tk-pub")
    pub.publish_flow("tk/t", b"after", qos=1)
    assert new.recv_publish().payload == b"after"


@pytest.mark.broker(receive_maximum=10, max_packet_size=5000, topic_alias_maximum=5)
def test_v5_connack_advertises_limits(broker):
    c = broker.client(5)
    ack = c.connect("limits")
    assert ack.reason == 0
    assert ack.props.get(RECEIVE_MAXIMUM) == 10
    assert ack.props.get(MAXIMUM_PACKET_SIZE) == 5000
    assert ack.props.get(TOPIC_ALIAS_MAXIMUM) == 5
    # the broker supports these: absent (= available) or 1
    for prop in (RETAIN_AVAILABLE, WILDCARD_SUB_AVAILABLE, SUB_ID_AVAILABLE, SHARED_SUB_AVAILABLE):
        assert ack.props.get(prop, 1) == 1, "property 0x%02X says unavailable" % prop
    assert ack.props.get(MAXIMUM_QOS, 2) == 2


def test_v5_authentication_method_without_auth_support_is_0x8C(broker):
    c = broker.client(5)
    c.send_connect("auth1", props={AUTH_METHOD: "SCRAM-SHA-1", AUTH_DATA: b"client-first"})
    got = c.wait_closed()
    assert len(got) == 1 and got[0].type == CONNACK, "expected a CONNACK then close, got %r" % got
    assert got[0].reason == RC_BAD_AUTH_METHOD
    broker.check_serving(version=5)


def test_v5_auth_packet_without_authentication_method_closes(broker):
    c = broker.connect("auth2")
    c.send(build_auth(0x19, {AUTH_METHOD: "SCRAM-SHA-1"}))
    got = c.wait_closed()
    for p in got:
        assert p.type == DISCONNECT and p.reason in (RC_PROTOCOL_ERROR, RC_BAD_AUTH_METHOD), got
    broker.check_serving(version=5)


@pytest.mark.parametrize("level", [2, 6, 7])
def test_unsupported_protocol_level_refused(broker, level):
    c = broker.client(5)
    c.send_connect("lvl", level=level)
    got = c.wait_closed()
    assert len(got) == 1 and got[0].type == CONNACK, "expected a refusing CONNACK, got %r" % got
    # 0x01 is the v3.1.1 code, 0x84 the v5 one; which format a broker picks for an unknown
    # level is its choice, but it must be one of these two.
    assert got[0].reason in (1, RC_UNSUPPORTED_PROTOCOL_VERSION), got
    broker.check_serving()


def test_mqisdp_name_with_level_4_refused(broker):
    # "MQIsdp" is only valid with level 3
    c = broker.client(4)
    c.send_connect("mm", proto_name="MQIsdp", level=4)
    got = c.wait_closed()
    assert all(p.type == CONNACK and p.reason != 0 for p in got), got
    broker.check_serving()


def test_username_password_accepted_with_anonymous_allowed(broker, version):
    c = broker.client(version)
    ack = c.connect("up", username="user", password=b"secret")
    assert ack.reason == 0


def test_clean_false_without_session_reports_no_session(broker, version):
    c = broker.client(version)
    props = {SESSION_EXPIRY: 60} if version == 5 else None
    ack = c.connect("fresh-persistent", clean=False, props=props)
    assert ack.reason == 0 and ack.session_present is False


def test_disconnect_then_reconnect_serves_again(broker, version):
    c = broker.connect("rc", version=version)
    c.subscribe([("rc/t", 1)])
    c.disconnect()
    c = broker.connect("rc", version=version)
    other = broker.connect("rc-pub", version=version)
    c.subscribe([("rc/t", 1)])
    marker_sync(c, other, "rc/t")


@pytest.mark.mosquitto_wrong("Mosquitto closes without DISCONNECT 0x8B on shutdown")
def test_v5_clients_hear_server_shutting_down_on_sigterm(broker):
    c = broker.connect("bye5")
    broker.stopped_by_test = True
    os.kill(broker.pid, signal.SIGTERM)
    p = c.recv(timeout=10)
    assert p.type == DISCONNECT
    assert p.reason == 0x8B
    broker.proc.wait(timeout=10)
    assert broker.proc.returncode == 0
