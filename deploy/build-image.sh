#!/usr/bin/env bash
# Builds flock's container image (deploy/Containerfile) with podman, rootful,
# without a Docker daemon and without a registry. See deploy/README.md.
#
#   deploy/build-image.sh [--prebuilt DIR] [--tag NAME] [--storage DIR] [--save FILE]
#                         [--pull-base] [--layers|--no-layers] [--jobs N] [--reset]
#
#   --prebuilt DIR  take DIR/flockd and DIR/flockctl (e.g. build/bin after
#                   `make build` on Debian 12; stripped copies go in the image)
#                   instead of compiling them in the image's build stage
#   --tag NAME      image name (default localhost/flock:VERSION, VERSION from CMakeLists.txt)
#   --storage DIR   podman's storage, configuration and temporary files
#                   (default /var/tmp/flock-podman; vfs storage takes a few GB);
#                   its run-time state is in /run/flock-podman-HASH
#   --save FILE     also write the image to FILE as an OCI archive
#                   (`podman load -i FILE` or `skopeo copy oci-archive:FILE ...`)
#   --pull-base     pull docker.io/library/debian:bookworm-slim if it is not in
#                   the storage (default: never contact a registry; build the
#                   base with debootstrap instead)
#   --layers, --no-layers
#                   keep intermediate layers as a cache for the next run, or commit
#                   each stage once (default: layers when compiling, none with
#                   --prebuilt: with vfs storage every layer is a full copy of the
#                   root file system, so a prebuilt build takes 12 s instead of 60 s;
#                   --no-layers also removes the storage's dangling images)
#   --jobs N        compile jobs in the build stage (default 2)
#   --reset         remove everything in --storage (`podman system reset`) and exit
#
# Environment: FLOCK_IMAGE_CACHE (default /var/tmp/flock-image-cache) keeps the
# debootstrapped base between runs (rebuilt after FLOCK_BASE_MAX_AGE_DAYS, default 7);
# FLOCK_DEBIAN_MIRROR (default http://deb.debian.org/debian) and
# FLOCK_DEBIAN_SECURITY_MIRROR (default the same host's /debian-security).
#
# Afterwards `source STORAGE/podman.env` points podman at the same storage:
#   source /var/tmp/flock-podman/podman.env
#   podman run --rm --network host localhost/flock:0.1.0 --listen 127.0.0.1:1883
set -euo pipefail

BASE_IMAGE=docker.io/library/debian:bookworm-slim
SUITE=bookworm
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)

prebuilt="" tag="" storage=/var/tmp/flock-podman save="" pull_base=0 layers="" jobs=2 reset=0
cache=${FLOCK_IMAGE_CACHE:-/var/tmp/flock-image-cache}
mirror=${FLOCK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${FLOCK_DEBIAN_SECURITY_MIRROR:-${mirror%/debian}/debian-security}
max_age_days=${FLOCK_BASE_MAX_AGE_DAYS:-7}

say() { echo "build-image: $*" >&2; }
die() { echo "build-image: error: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prebuilt) [ $# -ge 2 ] || die "--prebuilt needs a directory"; prebuilt=$2; shift 2 ;;
    --tag) [ $# -ge 2 ] || die "--tag needs a name"; tag=$2; shift 2 ;;
    --storage) [ $# -ge 2 ] || die "--storage needs a directory"; storage=$2; shift 2 ;;
    --save) [ $# -ge 2 ] || die "--save needs a file"; save=$2; shift 2 ;;
    --jobs) [ $# -ge 2 ] || die "--jobs needs a number"; jobs=$2; shift 2 ;;
    --pull-base) pull_base=1; shift ;;
    --layers) layers=true; shift ;;
    --no-layers) layers=false; shift ;;
    --reset) reset=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "build-image: unknown argument '$1'" >&2; usage 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root (rootful podman with vfs storage; see deploy/README.md)"
for tool in podman runc; do
  command -v "$tool" >/dev/null || die "'$tool' not found: apt-get install podman runc debootstrap"
done
mkdir -p "$storage"
storage=$(cd "$storage" && pwd)

# ---------------------------------------------------------------- podman set-up
# Settings that work on a machine without systemd, without CAP_SYS_RESOURCE and
# without a Docker daemon (../shared/DEPLOY-TESTING.md): vfs storage, runc,
# cgroupfs, events in a file, both ulimits explicit (a missing one makes
# `podman run` fail with "error setting rlimit type 6/7").
# podman's run-time state goes to a short path on /run (a tmpfs, as podman
# expects): the exit command conmon runs when a container ends refuses a
# runroot longer than 50 characters, and `podman wait` then takes 20 s.
rundir=/run/flock-podman-$(printf '%s' "$storage" | sha256sum | cut -c1-12)
mkdir -p "$storage/tmp" "$storage/networks" "$rundir/libpod"
cat > "$storage/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$storage/graph"
runroot = "$rundir/storage"
EOF
cat > "$storage/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1024:1024"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$storage/events.log"
tmp_dir = "$rundir/libpod"

[network]
network_config_dir = "$storage/networks"
EOF
cat > "$storage/podman.env" <<EOF
# source this file to use the storage of deploy/build-image.sh with podman
export CONTAINERS_CONF="$storage/containers.conf"
export CONTAINERS_STORAGE_CONF="$storage/storage.conf"
export TMPDIR="$storage/tmp"
EOF
# shellcheck source=/dev/null
. "$storage/podman.env"

if [ "$reset" = 1 ]; then
  say "removing every image and container in $storage"
  # (it prints advice about storage.conf, which is ours: shown only on failure)
  out=$(podman system reset -f 2>&1) || die "podman system reset failed: $out"
  rm -rf --one-file-system "$storage" "$rundir"
  exit 0
fi

# ---------------------------------------------------------------- base image
# debootstrap --variant=minbase, trimmed the way the official -slim image is
# (no docs, man pages, locales; no apt lists or caches), Debian's sources for
# bookworm, bookworm-updates and bookworm-security. Cached as a tarball.
debootstrap_base() {
  command -v debootstrap >/dev/null || die "'debootstrap' not found: apt-get install debootstrap"
  command -v unshare >/dev/null || die "'unshare' not found: apt-get install util-linux"
  local key tarball root
  key=$(printf '%s\n' "$SUITE" minbase "$mirror" "$security_mirror" slim-v3 | sha256sum | cut -c1-12)
  tarball="$cache/debian-$SUITE-slim-$key.tar"
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [ -f "$tarball" ] && [ -z "$(find "$tarball" -mtime +"$max_age_days")" ]; then
    say "base: using cached $tarball"
  else
    root=$(mktemp -d "$cache/rootfs.XXXXXX")
    say "base: debootstrap --variant=minbase $SUITE from $mirror (30 s on an idle machine, minutes on a busy one)"
    # In a mount namespace of its own: the /proc, /sys and /dev mounts
    # debootstrap makes inside the root vanish with it, even when it fails.
    if ! unshare --mount --propagation private \
         debootstrap --variant=minbase --components=main "$SUITE" "$root" "$mirror" \
         > "$cache/debootstrap.log" 2>&1; then
      tail -20 "$cache/debootstrap.log" >&2
      remove_rootfs "$root"
      die "debootstrap failed (log: $cache/debootstrap.log)"
    fi
    say "base: applying $SUITE-updates and $SUITE-security"
    slim_rootfs "$root"
    # shellcheck disable=SC2016 # $1 is expanded by the inner sh
    if ! unshare --mount --propagation private sh -c '
           mount -t proc proc "$1/proc" &&
           cp /etc/resolv.conf "$1/etc/resolv.conf" &&
           chroot "$1" apt-get update &&
           chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get -y upgrade &&
           chroot "$1" apt-get clean' sh "$root" >> "$cache/debootstrap.log" 2>&1; then
      tail -20 "$cache/debootstrap.log" >&2
      remove_rootfs "$root"
      die "apt-get upgrade in the new base failed (log: $cache/debootstrap.log)"
    fi
    clean_rootfs "$root"
    tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
    mv -f "$tarball.tmp" "$tarball"
    remove_rootfs "$root"
    find "$cache" -maxdepth 1 -name "debian-$SUITE-slim-*.tar" ! -path "$tarball" -delete
    say "base: cached $(du -h "$tarball" | cut -f1) in $tarball"
  fi
  say "base: importing as $BASE_IMAGE"
  podman import --quiet --change 'CMD ["bash"]' "$tarball" "$BASE_IMAGE" >/dev/null
  flock -u 9
}

remove_rootfs() {
  local root=$1
  # Refuse to delete anything still mounted below the root.
  if awk -v r="$root/" 'index($2 "/", r) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    die "$root still has mounts below it; not removing it"
  fi
  rm -rf --one-file-system "$root"
}

slim_rootfs() {
  local root=$1
  cat > "$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# as in the official debian:*-slim images
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat > "$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' > "$root/etc/apt/apt.conf.d/docker-no-languages"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    > "$root/etc/apt/apt.conf.d/docker-no-recommends"
  rm -f "$root/etc/apt/sources.list"
  cat > "$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

clean_rootfs() {
  local root=$1
  find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/groff/"* \
         "$root/usr/share/lintian/"* "$root/usr/share/linda/"*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
         "$root/var/log/"*.log "$root/var/log/apt/"* "$root/debootstrap" "$root/tmp/"* "$root/var/tmp/"*
  chmod 0755 "$root"   # mktemp -d made it 0700: the image's / would be root-only
  : > "$root/etc/resolv.conf"
  echo localhost > "$root/etc/hostname"
}

if podman image exists "$BASE_IMAGE"; then
  say "base: $BASE_IMAGE is in $storage"
elif [ "$pull_base" = 1 ] && podman pull "$BASE_IMAGE"; then
  say "base: pulled $BASE_IMAGE"
else
  [ "$pull_base" = 1 ] && say "base: cannot pull $BASE_IMAGE; building it with debootstrap"
  debootstrap_base
fi

# ---------------------------------------------------------------- the image
version=$(sed -n 's/^project(flock VERSION \([0-9][0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
[ -n "$version" ] || die "cannot read the version from $repo/CMakeLists.txt"
tag=${tag:-localhost/flock:$version}
revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
source_url=$(git -C "$repo" remote get-url origin 2>/dev/null || echo unknown)

workdir=$(mktemp -d "$storage/tmp/context.XXXXXX")
trap 'rm -rf --one-file-system "$workdir"' EXIT
build_args=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision"
            --build-arg "SOURCE_URL=$source_url" --build-arg "JOBS=$jobs")
if [ -n "$prebuilt" ]; then
  for bin in flockd flockctl; do
    [ -x "$prebuilt/$bin" ] || die "--prebuilt $prebuilt: no executable $prebuilt/$bin (run make build)"
  done
  # A context of its own: the Containerfile, the default config and stripped
  # copies of the two binaries, nothing else of the checkout.
  context="$workdir/context"
  mkdir -p "$context/deploy" "$context/build/bin"
  cp "$script_dir/Containerfile" "$script_dir/flock.yaml" "$context/deploy/"
  for bin in flockd flockctl; do
    if command -v strip >/dev/null; then
      strip -o "$context/build/bin/$bin" "$prebuilt/$bin"
    else
      say "strip not found (binutils): $bin goes into the image unstripped"
      cp "$prebuilt/$bin" "$context/build/bin/$bin"
    fi
  done
  build_args+=(--target prebuilt --build-arg PREBUILT_DIR=build/bin)
  say "image: $tag from the binaries in $prebuilt"
else
  context=$repo
  say "image: $tag, compiling flockd and flockctl in the build stage (-j$jobs; 5+ minutes on 2 cores)"
fi

if [ -z "$layers" ]; then
  if [ -n "$prebuilt" ]; then layers=false; else layers=true; fi
fi
# With --no-layers, a failed build can leave buildah working containers and
# stage images behind: removed here (only containers that appeared meanwhile).
containers_before=$(podman ps -aq --external --no-trunc | sort)
start=$(date +%s)
rc=0
podman build --pull=never --network host --layers="$layers" \
  --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 \
  --ignorefile "$script_dir/Containerfile.dockerignore" \
  -f "$context/deploy/Containerfile" "${build_args[@]}" -t "$tag" "$context" || rc=$?
if [ "$layers" = false ]; then
  left=$(comm -13 <(echo "$containers_before") <(podman ps -aq --external --no-trunc | sort))
  # shellcheck disable=SC2086 # one ID per word
  [ -z "$left" ] || podman rm -f $left >/dev/null
  podman image prune -f >/dev/null
fi
[ "$rc" = 0 ] || die "podman build failed (exit $rc)"
say "image: built $tag in $(( $(date +%s) - start )) s, $(podman image inspect --format '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }')"

if [ -n "$save" ]; then
  rm -f "$save"
  podman save --format oci-archive -o "$save" "$tag"
  say "image: saved to $save ($(du -h "$save" | cut -f1))"
fi
say "done. To use it: source $storage/podman.env; podman run --rm --network host $tag --listen 127.0.0.1:1883"
