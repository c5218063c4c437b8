"""The cluster port on a shared network: mutual TLS, the cluster secret, certificate rotation.

Real flockd nodes over gRPC with TLS on 127.0.0.1. Intruders are real processes too: a flockd
with a certificate from another CA, with the right certificate but the wrong secret, or in
plaintext; and raw TLS clients presenting no certificate or an expired one. Each must be
refused before it joins (and counted in flock_cluster_peers_refused_total by reason) while the
cluster keeps routing. Certificates swapped on disk the way Kubernetes updates a mounted
Secret (a symlink flip) are picked up without a restart and without dropping MQTT clients.
"""

import datetime
import os
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from cluster_fixture import Cluster, Node, cluster_certs, free_port, ic, running, unique, wait_for  # noqa: F401
from test_cluster_metrics import scrape


def refused(node, reason):
    return scrape(node).get('flock_cluster_peers_refused_total{reason="%s"}' % reason, 0)


def metered_cluster(tmpdir, names=("a", "b"), **options):
    c = Cluster(tmpdir, names=names, options=options)
    for n in c:
        n.metrics_port = free_port()
        n.options["metrics_listen"] = "127.0.0.1:%d" % n.metrics_port
    return c


@pytest.fixture
def pair(request):
    if ic.IS_MOSQUITTO:
        pytest.skip("cluster tests need flockd")
    m = request.node.get_closest_marker("cluster")
    options = dict(m.kwargs) if m else {}
    with tempfile.TemporaryDirectory(prefix="flock-ctest-") as tmpdir:
        yield from running(metered_cluster(tmpdir, **options), request)


def intruder(cluster, request, name, **options):
    """A flockd seeded with every node of `cluster`, with its own settings; not one of the
    cluster's nodes, stopped when the test ends (its log printed if the test failed)."""
    n = Node(name, cluster.tmpdir, 1, dict(options, cluster_join_timeout_ms=500))
    n.seeds = [o.cluster_port for o in cluster]

    def stop():
        crashed = n.stop()
        rep = getattr(request.node, "rep_call", None)
        if crashed or (rep is not None and rep.failed):
            print(n.log_text())
        assert not crashed, crashed
    request.addfinalizer(stop)
    n.start(new_ports=True)
    return n


def assert_kept_out(cluster, rogue):
    """Nobody took the rogue as a peer, and the real nodes still route to each other."""
    for n in cluster:
        assert b"peer %s up" % rogue.name.encode() not in n.current_log()
    assert b"cluster: peer " not in rogue.current_log(), "the rogue took a node as its peer"
    cluster.converge_all()


def tls_hello(port, certfile=None, keyfile=None):
    """A TLS handshake with the cluster port as a gRPC client makes it (ALPN h2)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as s:
            der = s.getpeercert(binary_form=True)
            if certfile and "expired" not in certfile:
                return der  # a valid node certificate: nothing to wait for
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            try:
                while s.recv(4096):  # the server ends the connection once it judged the certificate
                    pass
            except (ssl.SSLError, OSError):
                pass
            return der


def test_a_node_with_a_certificate_from_another_ca_is_refused(pair, request):
    a = pair.a
    other = cluster_certs.ClusterCerts(os.path.join(pair.tmpdir, "other-ca"), ca_name="another CA")
    rogue = intruder(pair, request, "rogue", cluster_certfile=other.node["certfile"],
                     cluster_keyfile=other.node["keyfile"], cluster_cafile=other.node["cafile"])
    wait_for(lambda: refused(a, "certificate") >= 1, 10, message="a to refuse the rogue's certificate")
    a.wait_log(r"cluster: refused .*\(certificate\): .*", 5)
    assert_kept_out(pair, rogue)
    assert scrape(a)['flock_cluster_peers{state="known"}'] == 1


def test_a_client_with_no_certificate_or_an_expired_one_is_refused_with_the_reason(pair):
    a = pair.a
    tls_hello(a.cluster_port)
    wait_for(lambda: refused(a, "certificate") == 1, 10, message="a to refuse a peer without a certificate")
    a.wait_log(r"\(certificate\): no certificate", 5)

    expired = pair.certs.issue("expired", not_before=-30, days=-1)
    tls_hello(a.cluster_port, expired["certfile"], expired["keyfile"])
    wait_for(lambda: refused(a, "certificate") == 2, 10, message="a to refuse an expired certificate")
    # The log says why, at most once per interval per reason: the line may be held back,
    # the counter never is.
    assert refused(a, "secret") == 0 and refused(a, "malformed") == 0
    pair.converge_all()


def test_a_plaintext_node_cannot_join_a_tls_cluster(pair, request):
    rogue = intruder(pair, request, "rogue", cluster_tls=False)
    # It dials, fails the handshake, dials again: give it several rounds.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert_kept_out(pair, rogue)
        time.sleep(0.2)


def test_a_node_with_the_right_certificate_but_the_wrong_secret_is_refused(tmp_path, request):
    if ic.IS_MOSQUITTO:
        pytest.skip("cluster tests need flockd")
    secret = tmp_path / "secret"
    secret.write_text("correct-horse-battery-staple\n")
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-cluster-secret-at-all\n")
    with tempfile.TemporaryDirectory(prefix="flock-ctest-") as tmpdir:
        for c in running(metered_cluster(tmpdir, cluster_secret_file=str(secret)), request):
            a = c.a
            assert refused(a, "secret") == 0, "nodes that share the secret join without a refusal"
            rogue = intruder(c, request, "rogue", cluster_secret_file=str(wrong),
                             **{"cluster_" + k: c.certs.node[k] for k in ("certfile", "keyfile", "cafile")})
            wait_for(lambda: refused(a, "secret") >= 1, 10, message="a to refuse the rogue's hello")
            a.wait_log(r"refused rogue \(secret\)", 5)
            assert_kept_out(c, rogue)
            assert refused(a, "certificate") == 0, "its certificate was fine"


def expiry(node):
    return scrape(node).get('flock_tls_certificate_expiry_timestamp_seconds{listener="cluster"}')


def reloads(node, result):
    return scrape(node).get('flock_tls_certificate_reloads_total{listener="cluster",result="%s"}' % result)


def served_not_after(port, client):
    der = tls_hello(port, client["certfile"], client["keyfile"])
    from cryptography import x509
    return int(x509.load_der_x509_certificate(der).not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp())


def test_a_rotated_certificate_is_used_without_a_restart_or_a_dropped_client(tmp_path, request):
    if ic.IS_MOSQUITTO:
        pytest.skip("cluster tests need flockd")
    with tempfile.TemporaryDirectory(prefix="flock-ctest-") as tmpdir:
        certs = cluster_certs.ClusterCerts(os.path.join(tmpdir, "certs"))
        first = certs.issue("a-first", days=20)
        mount = os.path.join(tmpdir, "a-tls")
        update = cluster_certs.kube_secret_mount(mount, {"tls.crt": first["certfile"], "tls.key": first["keyfile"],
                                         "ca.crt": certs.cafile})
        c = metered_cluster(tmpdir, certificate_reload_interval_ms=200,
                            cluster_certfile=certs.node["certfile"], cluster_keyfile=certs.node["keyfile"],
                            cluster_cafile=certs.cafile)
        c.a.options.update(cluster_certfile=os.path.join(mount, "tls.crt"),
                           cluster_keyfile=os.path.join(mount, "tls.key"),
                           cluster_cafile=os.path.join(mount, "ca.crt"))
        for _ in running(c, request):
            a, b = c.a, c.b
            assert expiry(a) == first["not_after"]
            assert served_not_after(a.cluster_port, certs.node) == first["not_after"]
            sub = a.connect(unique("sub"))
            sub.subscribe([("rot/#", 1)])
            c.converge(a, [b])

            second = certs.issue("a-second", days=40)
            update({"tls.crt": second["certfile"], "tls.key": second["keyfile"], "ca.crt": certs.cafile})
            wait_for(lambda: expiry(a) == second["not_after"], 10, message="a to report the new certificate")
            assert reloads(a, "ok") == 1 and reloads(a, "error") == 0
            # New handshakes present it (gRPC re-reads the files within a second).
            wait_for(lambda: served_not_after(a.cluster_port, certs.node) == second["not_after"], 10,
                     message="a's cluster port to present the new certificate")
            # A node that joins now is accepted with it; the MQTT client never noticed.
            c.add_node("c")
            pub = b.connect(unique("pub"))
            pub.publish_flow("rot/1", b"after rotation", qos=1)
            assert sub.recv_publish(timeout=10).payload == b"after rotation"

            # A broken update (a key that is not the certificate's) is refused: the node keeps
            # the certificate it has, counts the error, and its peers stay up.
            stray = certs.issue("stray")
            update({"tls.crt": second["certfile"], "tls.key": stray["keyfile"], "ca.crt": certs.cafile})
            wait_for(lambda: reloads(a, "error") == 1, 10, message="a to refuse a key that does not match")
            a.wait_log(r"certificate files changed but cannot be used", 5)
            assert expiry(a) == second["not_after"]
            c.converge_all()


def test_unusable_certificate_files_stop_start_up_with_one_line(tmp_path):
    if ic.IS_MOSQUITTO:
        pytest.skip("cluster tests need flockd")
    ours = cluster_certs.ClusterCerts(str(tmp_path / "ours"))
    theirs = cluster_certs.ClusterCerts(str(tmp_path / "theirs"))
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")

    def start(certfile, keyfile, cafile):
        return subprocess.run([ic.BROKER_PATH, "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"),
                               "--cluster-listen", "127.0.0.1:0", "--cluster-certfile", certfile,
                               "--cluster-keyfile", keyfile, "--cluster-cafile", cafile],
                              capture_output=True, text=True, timeout=30)
    cases = [
        ((theirs.node["certfile"], theirs.node["keyfile"], ours.cafile), "is not signed by cluster_cafile"),
        ((ours.node["certfile"], theirs.node["keyfile"], ours.cafile), "does not match certfile"),
        ((str(not_pem), ours.node["keyfile"], ours.cafile), "no PEM certificate in it"),
        ((ours.node["certfile"], ours.node["keyfile"], str(not_pem)), "cafile '%s': no PEM certificate" % not_pem),
    ]
    for files, message in cases:
        r = start(*files)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, (files, r.stderr)
    expired = ours.issue("expired", not_before=-30, days=-1)
    r = start(expired["certfile"], expired["keyfile"], ours.cafile)
    assert r.returncode == 2 and "certificate has expired" in r.stderr, r.stderr
