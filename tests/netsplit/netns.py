"""A private network for a netsplit test: Linux network namespaces joined by a bridge.

    flk-hub-<tag>   bridge br0, one port hK per node (no address: it only switches)
    flk-nK-<tag>    eth0 = 10.213.0.K/24, the other end of hK

Cutting node K sets hK down in the hub: eth0 in nK loses its carrier, frames to and from K
are dropped (no RST, no ICMP), exactly what a pulled cable looks like to TCP. Inside nK the
node's own address still works, so clients in nK keep talking to their node during a split.

Nothing is added to the root namespace. Only namespaces this object created are deleted.
"""

import contextlib
import ctypes
import os
import subprocess

SUBNET = "10.213.0"  # private, unlikely to clash; lives only inside our namespaces
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class Unavailable(Exception):
    """Network namespaces cannot be made here (not root, no CAP_SYS_ADMIN, no iproute2)."""


def _ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def existing_namespaces():
    r = _ip("netns", "list", check=False)
    return {line.split()[0] for line in r.stdout.splitlines() if line.strip()}


class Network:
    def __init__(self, nodes):
        self.nodes = list(nodes)  # e.g. [1, 2, 3]
        self.created = []        # namespaces we made, deleted in close()
        self.tag = self._free_tag()
        self.hub = "flk-hub-%s" % self.tag

    @staticmethod
    def _free_tag():
        # flk-*-<pid>; should a dead run with our pid have left namespaces behind, they are not
        # ours to delete: take another suffix.
        taken = existing_namespaces()
        pid, n = os.getpid(), 0
        while True:
            tag = str(pid) if n == 0 else "%d-%d" % (pid, n)
            if not any(name.endswith("-" + tag) and name.startswith("flk-") for name in taken):
                return tag
            n += 1

    def ns(self, k):
        return "flk-n%d-%s" % (k, self.tag)

    @staticmethod
    def address(k):
        return "%s.%d" % (SUBNET, k)

    def _add_namespace(self, name):
        r = _ip("netns", "add", name, check=False)
        if r.returncode != 0:
            raise Unavailable("ip netns add %s failed: %s" % (name, r.stderr.strip()))
        self.created.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def open(self):
        if os.geteuid() != 0:
            raise Unavailable("network namespaces need root (CAP_SYS_ADMIN); euid is %d"
                              % os.geteuid())
        try:
            self._add_namespace(self.hub)
        except FileNotFoundError:
            raise Unavailable("iproute2 (ip) is not installed")
        try:
            _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.hub, "link", "set", "br0", "up")
            for k in self.nodes:
                ns = self.ns(k)
                self._add_namespace(ns)
                hub_end = "h%d" % k
                _ip("-n", self.hub, "link", "add", hub_end, "type", "veth",
                    "peer", "name", "eth0", "netns", ns)
                _ip("-n", self.hub, "link", "set", hub_end, "master", "br0")
                _ip("-n", self.hub, "link", "set", hub_end, "up")
                _ip("-n", ns, "addr", "add", self.address(k) + "/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
        except Exception:
            self.close()
            raise
        return self

    def cut(self, k):
        """Pull node k's cable: it can reach no other node, nor they it."""
        _ip("-n", self.hub, "link", "set", "h%d" % k, "down")

    def heal(self, k):
        _ip("-n", self.hub, "link", "set", "h%d" % k, "up")

    def close(self):
        """Delete the namespaces this run created (veths and the bridge go with them).
        Processes still inside must be stopped first, or the namespace outlives its name."""
        errors = []
        for name in reversed(self.created):
            r = _ip("netns", "del", name, check=False)
            if r.returncode != 0:
                errors.append("ip netns del %s: %s" % (name, r.stderr.strip()))
        self.created = []
        if errors:
            raise RuntimeError("; ".join(errors))


@contextlib.contextmanager
def entered(ns):
    """Run the block with this thread in namespace `ns`: sockets created inside belong to it
    (and stay there after the block). The thread returns to its own namespace after."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open("/run/netns/" + ns, os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, "setns into %s: %s" % (ns, os.strerror(e)))
        finally:
            os.close(target)
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, "setns back to our own namespace: %s" % os.strerror(e))
    finally:
        os.close(own)
