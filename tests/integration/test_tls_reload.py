"""An MQTT TLS listener's certificate rotated on disk, as cert-manager and the kubelet do it.

The mqtts listener reads tls.crt/tls.key from a directory laid out like a mounted Kubernetes
Secret (symlinks into ..data, swapped in one rename). After an update, new TLS connections are
served the new certificate, a client connected before keeps its session without noticing, and
/metrics says when the served certificate expires and how many reloads worked or failed. A
broken update (a key that is not the certificate's) is refused and the old certificate stays.
"""

import datetime
import os
import socket
import ssl
import sys
import tempfile

import pytest

import mqtt_raw
from conftest import IS_MOSQUITTO, free_port, running, wait_for
from test_metrics import MetricsBroker, samples

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
import cluster_certs  # noqa: E402

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="flockd listener flags")


class ReloadingBroker(MetricsBroker):
    """A plain listener (the fixture's readiness check) plus an mqtts one on `mount`."""

    def __init__(self, tmpdir, mount):
        super().__init__(2, tmpdir, certificate_reload_interval_ms=200)
        self.mount = mount

    def _command(self):
        self.tls_port = free_port()
        return super()._command() + [
            "--listen", "mqtts://127.0.0.1:%d,certfile=%s,keyfile=%s"
            % (self.tls_port, os.path.join(self.mount, "tls.crt"), os.path.join(self.mount, "tls.key"))]

    def metric(self, name):
        return samples(self.scrape()).get(name)


def tls_socket(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5))


def served(port):
    """notAfter of the certificate the listener presents to a new connection."""
    from cryptography import x509
    with tls_socket(port) as s:
        cert = x509.load_der_x509_certificate(s.getpeercert(binary_form=True))
    return int(cert.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp())


def tls_client(port):
    return mqtt_raw.RawClient(port, sock=tls_socket(port))


def test_a_rotated_listener_certificate_serves_new_connections_and_keeps_old_ones(request):
    with tempfile.TemporaryDirectory(prefix="flock-itest-") as tmpdir:
        certs = cluster_certs.ClusterCerts(os.path.join(tmpdir, "pki"))
        first = certs.issue("first", days=20)
        mount = os.path.join(tmpdir, "tls")
        update = cluster_certs.kube_secret_mount(mount, {"tls.crt": first["certfile"],
                                                         "tls.key": first["keyfile"]})
        for b in running(ReloadingBroker(tmpdir, mount), request):
            label = 'listener="mqtts://127.0.0.1:%d"' % b.tls_port
            expiry = "flock_tls_certificate_expiry_timestamp_seconds{%s}" % label
            ok = 'flock_tls_certificate_reloads_total{%s,result="ok"}' % label
            failed = 'flock_tls_certificate_reloads_total{%s,result="error"}' % label
            assert b.metric(expiry) == first["not_after"]
            assert served(b.tls_port) == first["not_after"]

            before = tls_client(b.tls_port)
            before.connect("before-rotation", clean=False, props={mqtt_raw.SESSION_EXPIRY: 300})
            before.subscribe([("rot/#", 1)])

            second = certs.issue("second", days=40)
            update({"tls.crt": second["certfile"], "tls.key": second["keyfile"]})
            wait_for(lambda: b.metric(expiry) == second["not_after"], 10,
                     message="the new certificate in /metrics")
            assert b.metric(ok) == 1 and b.metric(failed) == 0
            assert served(b.tls_port) == second["not_after"], "a new connection gets the new certificate"

            after = tls_client(b.tls_port)
            after.connect("after-rotation")
            after.publish_flow("rot/1", b"hello", qos=1)
            p = before.recv_publish(timeout=10)
            assert p.payload == b"hello", "the client connected before the rotation still receives"

            stray = certs.issue("stray")
            update({"tls.crt": second["certfile"], "tls.key": stray["keyfile"]})
            wait_for(lambda: b.metric(failed) == 1, 10, message="a refused reload")
            assert b.metric(expiry) == second["not_after"] and b.metric(ok) == 1
            assert served(b.tls_port) == second["not_after"], "the previous certificate stays in use"
            after.publish_flow("rot/2", b"still", qos=1)
            assert before.recv_publish(timeout=10).payload == b"still"
            before.close()
            after.close()
