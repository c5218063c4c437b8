"""The container runtime's part of starting a pod's container, run inside the pod's namespaces.

kubesim.py starts it as

    ip netns exec POD-NETNS unshare --mount --uts --propagation private -- \
        /usr/bin/python3 pod_init.py SPEC.json

so it runs as root in the pod's network namespace (its own address, its resolv.conf and hosts
bind-mounted from /etc/netns/POD-NETNS by `ip netns exec`), in a private mount namespace and
in a UTS namespace of its own. What it does, in the order a runtime does it:

1. sets the host name to the pod's (a StatefulSet pod's hostname is its name);
2. mounts a tmpfs on each directory kubesim had to create on the host as a mount point
   (e.g. /etc/flock, /data): mount points below them are made in that tmpfs, never in the
   host's file system;
3. bind-mounts each volume at its mountPath (parents first; a subPath volume as one file),
   read-only where the volumeMount says readOnly;
4. remounts / read-only if the securityContext says readOnlyRootFilesystem (this is a
   per-mount flag of this namespace's copy of /: the host's / stays read-write);
5. changes to the working directory, takes the runAsUser/runAsGroup with fsGroup and the
   supplementalGroups as its groups, sets no_new_privs (allowPrivilegeEscalation: false),
   re-arms the parent-death signal (credentials changes clear it) and execs the
   entrypoint with the args and environment kubesim resolved (kubelet's $(VAR) expansion).

The volume sources are opened (O_PATH) before anything is mounted and bind-mounted through
/proc/self/fd, and the entrypoint is opened then and run with fexecve, so a mount over /tmp
cannot hide a source or a binary that lives under /tmp.
"""

import ctypes
import json
import os
import signal
import socket
import sys

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source, target, fstype, flags, data=None):
    if _libc.mount(source.encode() if source else None, target.encode(),
                   fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                   data.encode() if data else None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount %s on %s (%s, flags %#x): %s" % (source, target, fstype, flags, os.strerror(e)))


def _prctl(option, arg):
    if _libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "prctl(%d): %s" % (option, os.strerror(e)))


def _under(path, roots):
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)

    # Sources first: after the mounts below some host paths may be hidden (also the binary's).
    exe_fd = os.open(spec["exe"], os.O_RDONLY | os.O_CLOEXEC)
    fds = []
    for m in spec["mounts"]:
        fd = os.open(m["source"], os.O_PATH | os.O_CLOEXEC)
        fds.append(fd)

    socket.sethostname(spec["hostname"])

    for root in spec["tmpfs_roots"]:
        _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")

    made = list(spec["tmpfs_roots"])
    order = sorted(range(len(spec["mounts"])), key=lambda i: spec["mounts"][i]["path"].rstrip("/").count("/"))
    for i in order:
        m = spec["mounts"][i]
        path = m["path"]
        if not os.path.lexists(path):
            # Only inside a tmpfs of ours (or a volume mounted above): never on the host's disk.
            if not _under(os.path.dirname(path), made):
                raise SystemExit("pod_init: mount point %s does not exist and is not below a tmpfs "
                                 "of this pod (%s)" % (path, made))
            if m["kind"] == "file":
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w"):
                    pass
            else:
                os.makedirs(path, exist_ok=True)
        _mount("/proc/self/fd/%d" % fds[i], path, None, MS_BIND)
        if m.get("readOnly"):
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        made.append(path)
    for fd in fds:
        os.close(fd)

    if spec.get("readOnlyRootFilesystem"):
        _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)

    os.chdir(spec["workingDir"])
    os.setgroups(spec["groups"])
    os.setresgid(spec["gid"], spec["gid"], spec["gid"])
    os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    if spec.get("noNewPrivs"):
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
    # Should the test die without cleaning up, its pods die with it.
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != spec["parent_pid"]:  # the parent is already gone
        raise SystemExit("pod_init: parent process gone")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(exe_fd, spec["argv"], spec["env"])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: pod_init.py SPEC.json")
    main(sys.argv[1])
