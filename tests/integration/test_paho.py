"""Interop with python paho-mqtt (Debian's python3-paho-mqtt, 1.6 API)."""

import queue
import threading

import pytest

paho = pytest.importorskip("paho.mqtt.client")
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

PROTOCOLS = {"v311": paho.MQTTv311, "v5": paho.MQTTv5}


class PahoClient:
    def __init__(self, broker, client_id, proto, clean=True, session_expiry=None):
        self.proto = proto
        self.c = paho.Client(client_id=client_id, protocol=proto,
                             **({} if proto == paho.MQTTv5 else {"clean_session": clean}))
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.connack = None
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        kw = {}
        if proto == paho.MQTTv5:
            kw["clean_start"] = clean
            if session_expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = session_expiry
                kw["properties"] = props
        self.c.connect(broker.host, broker.port, keepalive=30, **kw)
        self.c.loop_start()
        assert self.connected.wait(10), "paho did not connect"

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connack = (flags, rc)
        self.connected.set()

    def subscribe(self, topic, qos):
        self.subscribed.clear()
        result, _ = self.c.subscribe(topic, qos)
        assert result == paho.MQTT_ERR_SUCCESS
        assert self.subscribed.wait(10), "no SUBACK"

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(10)
        assert info.is_published()

    def message(self, timeout=10):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("paho received nothing within %ss" % timeout)

    def stop(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def clients():
    made = []
    yield made
    for c in made:
        c.stop()


@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("proto", ["v311", "v5"])
def test_paho_round_trip(broker, clients, proto, qos):
    sub = PahoClient(broker, "paho-sub", PROTOCOLS[proto])
    pub = PahoClient(broker, "paho-pub", PROTOCOLS[proto])
    clients.extend([sub, pub])
    sub.subscribe("paho/t", qos)
    for i in range(5):
        pub.publish("paho/t", b"msg %d" % i, qos=qos)
    got = [sub.message() for _ in range(5)]
    assert [m.payload for m in got] == [b"msg %d" % i for i in range(5)]
    assert {m.qos for m in got} == {qos}
    assert {m.topic for m in got} == {"paho/t"}


def test_paho_v311_to_v5_interop(broker, clients):
    sub = PahoClient(broker, "paho-s5", paho.MQTTv5)
    pub = PahoClient(broker, "paho-p4", paho.MQTTv311)
    clients.extend([sub, pub])
    sub.subscribe("paho/mix/#", 1)
    pub.publish("paho/mix/a", b"from 3.1.1", qos=1)
    m = sub.message()
    assert (m.topic, m.payload, m.qos) == ("paho/mix/a", b"from 3.1.1", 1)


def test_paho_v5_properties_forwarded(broker, clients):
    sub = PahoClient(broker, "paho-ps", paho.MQTTv5)
    pub = PahoClient(broker, "paho-pp", paho.MQTTv5)
    clients.extend([sub, pub])
    sub.subscribe("paho/props", 1)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("trace", "abc"), ("hop", "1")]
    props.ContentType = "application/json"
    props.ResponseTopic = "paho/reply"
    props.CorrelationData = b"\x01\x02"
    pub.publish("paho/props", b"{}", qos=1, properties=props)
    m = sub.message()
    assert m.properties.UserProperty == [("trace", "abc"), ("hop", "1")]
    assert m.properties.ContentType == "application/json"
    assert m.properties.ResponseTopic == "paho/reply"
    assert m.properties.CorrelationData == b"\x01\x02"


@pytest.mark.parametrize("proto", ["v311", "v5"])
def test_paho_retained(broker, clients, proto):
    pub = PahoClient(broker, "paho-rp", PROTOCOLS[proto])
    clients.append(pub)
    pub.publish("paho/ret", b"stay", qos=1, retain=True)
    sub = PahoClient(broker, "paho-rs", PROTOCOLS[proto])
    clients.append(sub)
    sub.subscribe("paho/ret", 1)
    m = sub.message()
    assert m.payload == b"stay" and m.retain


@pytest.mark.parametrize("proto", ["v311", "v5"])
def test_paho_persistent_session_receives_offline_messages(broker, clients, proto):
    sub = PahoClient(broker, "paho-persist", PROTOCOLS[proto], clean=False, session_expiry=300)
    sub.subscribe("paho/off", 1)
    sub.stop()
    pub = PahoClient(broker, "paho-offp", PROTOCOLS[proto])
    clients.append(pub)
    for i in range(3):
        pub.publish("paho/off", b"%d" % i, qos=1)
    sub = PahoClient(broker, "paho-persist", PROTOCOLS[proto], clean=False, session_expiry=300)
    clients.append(sub)
    flags, rc = sub.connack
    assert flags.get("session present") == 1
    assert [sub.message().payload for _ in range(3)] == [b"0", b"1", b"2"]
