"""An independent checker of QoS 1 delivery through the load balancer (paho-mqtt, no flock code).

Run by test_lifecycle.py inside the client namespace (`ip netns exec`), so the Service's DNS
name resolves through the simulated cluster DNS and every connection goes through HAProxy:

    checker.py CONFIG.json

CONFIG: host, port, username, password, subscribers, publishers, rate (messages per second
per publisher), topic (a prefix unique to the run), result (path of the final JSON).

- Subscribers: persistent sessions, half MQTT 3.1.1 (clean session 0), half MQTT 5 (clean
  start on the first connect only, session expiry 1 h), all subscribed to TOPIC/# at QoS 1.
  paho reconnects them through the balancer whenever they are disconnected. Every connect
  after the first must come back with session present 1 (else it is recorded as a lost
  session and the client subscribes again so that the run goes on). Every message id
  (publisher, sequence number) received is recorded; repeats are counted as duplicates.
- Before publishing starts, probe rounds: fresh connections through the balancer (so round
  robin puts them on every node) each publish one QoS 1 probe; a round counts when every
  subscriber got every probe of it. So every subscription has reached every node before the
  first counted message.
- Publishers: QoS 1, clean sessions, each message numbered; a message counts as acknowledged
  only when its PUBACK arrives. They publish at a fixed rate while connected, at most
  `window` unacknowledged at a time, and reconnect through the balancer when disconnected
  (paho resends unacknowledged messages with DUP).

stdin commands: `dump` (every client's connects, refusals and disconnects so far, as
{"event": "dump", "clients": [...]}), `reconnect` (every client disconnects in turn and connects again: the
balancer spreads them over the nodes that are ready now; waits for each), `stop` (stop
publishing, wait for the outstanding PUBACKs and for the subscribers to receive every
acknowledged message, each within a deadline, write the result, exit 0).
stdout: one JSON object per line: {"event": "ready"}, {"event": "stats", ...} every second,
{"event": "reconnected"}, {"event": "done"}, {"event": "error", "message": ...}.
"""

import faulthandler
import json
import random
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

_out_lock = threading.Lock()


def emit(obj):
    with _out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def wait_until(cond, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


class Client:
    """What every client records: its connects (time, session present, result) and disconnects."""

    def __init__(self, cfg, client_id, protocol, clean_session):
        self.cfg = cfg
        self.client_id = client_id
        self.protocol = protocol
        kw = {"client_id": client_id, "protocol": protocol}
        if protocol != mqtt.MQTTv5:
            kw["clean_session"] = clean_session
        self.c = mqtt.Client(**kw)
        self.c.username_pw_set(cfg["username"], cfg["password"])
        self.c.reconnect_delay_set(0.1, 1)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_connect_fail = self._on_connect_fail
        self.c.on_socket_open = self._on_socket_open
        self.connected = threading.Event()
        self.lock = threading.RLock()
        self.connects = []        # (wall time, session present, result code, local port)
        self.refused = []         # (wall time, result code, local port)
        self.disconnects = []     # (wall time, reason code, voluntary)
        self.connect_failures = 0
        self.sockets = []         # (wall time, local port) of every TCP connection to the balancer
        self.voluntary = False
        self.properties = None

    # paho calls on_connect with a different signature for MQTT 5
    def _on_connect(self, client, userdata, flags, rc, properties=None):
        code = rc.value if hasattr(rc, "value") else int(rc)
        sp = int(flags.get("session present", 0))
        try:  # which connection through the balancer (its log names the pod by this port)
            port = client.socket().getsockname()[1]
        except (OSError, AttributeError):
            port = None
        with self.lock:
            if code != 0:
                self.refused.append((time.time(), code, port))
                return
            self.connects.append((time.time(), sp, code, port))
        self.on_connected(sp, len(self.connects))
        self.connected.set()

    def _on_disconnect(self, client, userdata, rc, properties=None):
        code = rc.value if hasattr(rc, "value") else int(rc)
        with self.lock:
            self.disconnects.append((time.time(), code, self.voluntary))
        self.connected.clear()

    def _on_socket_open(self, client, userdata, sock):
        try:
            port = sock.getsockname()[1]
        except OSError:
            port = None
        with self.lock:
            self.sockets.append((time.time(), port))

    def _on_connect_fail(self, client, userdata):
        with self.lock:
            self.connect_failures += 1

    def on_connected(self, session_present, n):
        pass

    def start(self, clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY):
        kw = {}
        if self.protocol == mqtt.MQTTv5:
            kw["clean_start"] = clean_start
            kw["properties"] = self.properties
        self.c.connect_async(self.cfg["host"], self.cfg["port"], keepalive=10, **kw)
        self.c.loop_start()

    def reconnect_voluntarily(self, timeout):
        """DISCONNECT, then connect again (resuming the session): the balancer may pick another node."""
        self.voluntary = True
        self.c.disconnect()
        self.c.loop_stop()
        self.voluntary = False
        self.connected.clear()
        self.start(clean_start=False)
        return self.connected.wait(timeout)

    def stop(self):
        self.voluntary = True
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()

    def summary(self):
        with self.lock:
            return {"client_id": self.client_id,
                    "protocol": "5" if self.protocol == mqtt.MQTTv5 else "3.1.1",
                    "connects": list(self.connects), "refused": list(self.refused),
                    "disconnects": list(self.disconnects), "connect_failures": self.connect_failures,
                    "sockets": list(self.sockets),
                    "connected": self.connected.is_set()}


class Subscriber(Client):
    def __init__(self, cfg, index):
        v5 = index % 2 == 1
        super().__init__(cfg, "%s-sub%d" % (cfg["run"], index), mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                         clean_session=False)
        if v5:
            p = Properties(PacketTypes.CONNECT)
            p.SessionExpiryInterval = 3600
            self.properties = p
        self.topic = cfg["topic"] + "/#"
        self.subscribed = threading.Event()
        self.received = {}   # publisher name -> set of sequence numbers
        self.probes = set()
        self.duplicates = 0
        self.messages = 0
        self.lost_sessions = []  # wall times of connects without the session
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe

    def on_connected(self, session_present, n):
        if n == 1:
            self.c.subscribe(self.topic, qos=1)
        elif not session_present:
            with self.lock:
                self.lost_sessions.append(time.time())
            self.c.subscribe(self.topic, qos=1)  # keep the run going; the loss is recorded

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        g = granted[0]
        g = g.value if hasattr(g, "value") else g
        if g == 1:
            self.subscribed.set()
        else:
            emit({"event": "error", "message": "%s: SUBACK granted %r" % (self.client_id, g)})

    def _on_message(self, client, userdata, msg):
        try:
            text = msg.payload.decode()
        except UnicodeDecodeError:
            return
        kind, name, seq = text.split(":")
        with self.lock:
            if kind == "probe":
                self.probes.add(name + ":" + seq)
                return
            s = self.received.setdefault(name, set())
            seq = int(seq)
            if seq in s:
                self.duplicates += 1
            else:
                s.add(seq)
            self.messages += 1

    def has(self, name, seq):
        with self.lock:
            return seq in self.received.get(name, ())

    def count(self):
        with self.lock:
            return sum(len(s) for s in self.received.values())


class Publisher(Client):
    def __init__(self, cfg, index):
        super().__init__(cfg, "%s-pub%d" % (cfg["run"], index), mqtt.MQTTv311, clean_session=True)
        self.name = "p%d" % index
        self.topic = "%s/%s" % (cfg["topic"], self.name)
        self.c.max_inflight_messages_set(cfg["window"])
        self.c.max_queued_messages_set(0)
        self.c.on_publish = self._on_publish
        self.seq = 0
        self.mid_to_seq = {}
        self.sent_at = {}     # seq -> wall time of the first PUBLISH
        self.acked_mids = []  # (mid, wall time); resolved to sequence numbers later
        self.acked = {}       # seq -> wall time of its PUBACK
        self.unresolved = []
        self.pending = []
        self.go = threading.Event()
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_publish(self, client, userdata, mid):
        # Called with paho's message lock held: no lock of ours here (list.append is atomic).
        self.acked_mids.append((mid, time.time()))

    def resolve(self):
        with self.lock:
            n = len(self.acked_mids)
            batch, self.acked_mids[:n] = self.acked_mids[:n], []
            for mid, t in self.unresolved + batch:
                seq = self.mid_to_seq.get(mid)
                if seq is None:  # PUBACK came before publish() returned its mid to us
                    self.pending.append((mid, t))
                else:
                    self.acked.setdefault(seq, t)
            self.unresolved, self.pending = self.pending, []
            return len(self.acked)

    def outstanding(self):
        self.resolve()
        return self.seq - len(self.acked)

    def _run(self):
        period = 1.0 / self.cfg["rate"]
        self.go.wait()
        next_t = time.monotonic()
        while not self.halt.is_set():
            now = time.monotonic()
            if now < next_t:
                self.halt.wait(next_t - now)
                continue
            next_t += period
            if next_t < now - 1:  # fell behind (disconnected): do not burst to catch up
                next_t = now
            if not self.c.is_connected() or self.outstanding() >= self.cfg["window"]:
                continue
            if self.seq >= 60000:  # message ids must stay unique for mid_to_seq
                continue
            seq = self.seq + 1
            info = self.c.publish(self.topic, "msg:%s:%d" % (self.name, seq), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
                continue
            with self.lock:
                self.seq = seq
                self.mid_to_seq[info.mid] = seq
                self.sent_at[seq] = time.time()


def probe_round(cfg, subs, round_no, size):
    names = []
    for i in range(size):
        c = mqtt.Client(client_id="%s-probe%d-%d" % (cfg["run"], round_no, i), protocol=mqtt.MQTTv311)
        c.username_pw_set(cfg["username"], cfg["password"])
        try:
            c.connect(cfg["host"], cfg["port"], keepalive=10)
        except OSError:
            continue
        c.loop_start()
        name = "r%d" % round_no
        seq = str(i)
        info = c.publish(cfg["topic"] + "/probe", "probe:%s:%s" % (name, seq), qos=1)
        try:
            info.wait_for_publish(timeout=5)
        except (ValueError, RuntimeError):
            pass
        c.disconnect()
        c.loop_stop()
        if info.is_published():
            names.append(name + ":" + seq)
    if len(names) < size:
        return False
    return wait_until(lambda: all(set(names) <= s.probes for s in subs), 3)


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    cfg.setdefault("window", 10)
    subs = [Subscriber(cfg, i) for i in range(cfg["subscribers"])]
    pubs = [Publisher(cfg, i) for i in range(cfg["publishers"])]
    clients = subs + pubs

    for s in subs:
        s.start()
    if not wait_until(lambda: all(s.subscribed.is_set() for s in subs), 30):
        emit({"event": "error", "message": "subscribers not all subscribed within 30 s: %s" % [
            s.client_id for s in subs if not s.subscribed.is_set()]})
        return 1
    rounds, ok = 0, False
    deadline = time.monotonic() + 40
    while not ok and time.monotonic() < deadline:
        rounds += 1
        ok = probe_round(cfg, subs, rounds, cfg["probe_size"])
    if not ok:
        emit({"event": "error", "message": "probes did not reach every subscriber within 40 s"})
        return 1
    for p in pubs:
        p.start()
    if not wait_until(lambda: all(p.connected.is_set() for p in pubs), 30):
        emit({"event": "error", "message": "publishers not all connected within 30 s"})
        return 1
    started = time.time()
    for p in pubs:
        p.thread.start()
        p.go.set()
    emit({"event": "ready", "probe_rounds": rounds})

    stop = threading.Event()
    commands = []
    cmd_lock = threading.Lock()

    def read_commands():
        for line in sys.stdin:
            with cmd_lock:
                commands.append(line.strip())
        with cmd_lock:
            commands.append("stop")

    threading.Thread(target=read_commands, daemon=True).start()

    def stats():
        acked = sum(p.resolve() for p in pubs)
        counts = [s.count() for s in subs]
        return {"event": "stats", "t": time.time(), "published": sum(p.seq for p in pubs),
                "acked": acked, "received_min": min(counts), "received_max": max(counts),
                "subs_connected": sum(s.connected.is_set() for s in subs),
                "pubs_connected": sum(p.connected.is_set() for p in pubs),
                "clients": len(clients),
                "disconnects": sum(len(c.disconnects) for c in clients),
                "refused": sum(len(c.refused) for c in clients),
                "connect_failures": sum(c.connect_failures for c in clients),
                "lost_sessions": sum(len(s.lost_sessions) for s in subs)}

    next_stats = time.monotonic()
    while not stop.is_set():
        # Should this loop ever stall for 10 s, every thread's stack goes to stderr.
        faulthandler.dump_traceback_later(10)
        with cmd_lock:
            cmd = commands.pop(0) if commands else None
        if cmd == "stop":
            break
        if cmd == "dump":
            emit({"event": "dump", "clients": [c.summary() for c in clients]})
            continue
        if cmd == "reconnect":
            failed = [c.client_id for c in clients if not c.reconnect_voluntarily(20)]
            emit({"event": "reconnected", "failed": failed})
            continue
        if time.monotonic() >= next_stats:
            emit(stats())
            next_stats += 1.0
        time.sleep(0.05)

    faulthandler.cancel_dump_traceback_later()
    # Stop: no new messages; outstanding ones must be acked (or not: they are then not counted).
    stopped = time.time()
    for p in pubs:
        p.halt.set()
        p.thread.join(5)
    wait_until(lambda: all(p.outstanding() == 0 for p in pubs), 20)
    acked = {p.name: dict(p.acked) for p in pubs}

    def missing_for(s):
        return [(n, q) for n, seqs in acked.items() for q in seqs if not s.has(n, q)]

    wait_until(lambda: all(not missing_for(s) for s in subs), 30, step=0.2)
    all_connected = all(c.connected.is_set() for c in clients)
    result = {
        "started": started, "stopped": stopped,
        "publishers": [{"name": p.name, "published": p.seq, "acked": len(p.acked),
                        "unacked": sorted(set(range(1, p.seq + 1)) - set(p.acked)),
                        **p.summary()} for p in pubs],
        "subscribers": [],
        "all_connected_at_stop": all_connected,
    }
    by_name = {p.name: p for p in pubs}
    for s in subs:
        miss = sorted(missing_for(s))
        with s.lock:
            result["subscribers"].append({
                "received": sum(len(v) for v in s.received.values()), "messages": s.messages,
                "duplicates": s.duplicates,
                # (publisher, seq, wall time sent, wall time of its PUBACK)
                "missing": [(n, q, by_name[n].sent_at.get(q), acked[n][q]) for n, q in miss],
                "lost_sessions": list(s.lost_sessions), **s.summary()})
    with open(cfg["result"], "w") as f:
        json.dump(result, f)
    for c in clients:
        c.stop()
    emit({"event": "done"})
    return 0


if __name__ == "__main__":
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # stack dumps for diagnosis
    random.seed()
    sys.exit(main())
