# shellcheck shell=bash
# Sourced by docker/test-image.sh and docker/test-testcontainers.sh: Debian's podman set up to build and run this
# project's images on a machine with no Docker daemon and no registry access.
#
# * Everything podman keeps (images, layers, volumes, its state) lives under one work folder, WCH_IMAGES_DIR
#   (default /var/tmp/wch-bridge-images), outside any clone: the Debian 12 base built once is reused by later runs.
#   The configuration is written there too and passed through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF, so the
#   machine's own /etc/containers is neither read nor changed.
# * Containers use the host's network (netns = "host"): the default bridge network would change the host's
#   firewall and IP forwarding, and MariaDB listens on 127.0.0.1 only.
# * runc with cgroupfs (crun refuses the hybrid cgroup layout seen here), and fixed ulimits (root cannot raise
#   nofile/nproc here).
# * The base image is `debootstrap --variant=minbase` of Debian 12 from the mirror the machine's apt sources name,
#   with python3, venv and pip, imported under the name the Dockerfile's FROM line asks for; builds use
#   --pull=never, so podman never looks for it anywhere else.
# * podman-docker is never installed (it would put a `docker` command on the PATH): podman is called directly.

WCH_IMAGES_DIR=${WCH_IMAGES_DIR:-/var/tmp/wch-bridge-images}
WCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WCH_DOCKERFILE=$WCH_REPO/docker/Dockerfile
#: The local base image, and the Debian release it is made of.
WCH_BASE_IMAGE=localhost/wch-bridge-base:bookworm
WCH_BASE_SUITE=bookworm
WCH_BASE_PACKAGES=python3,python3-venv,python3-pip,python-is-python3,ca-certificates
#: The Debian packages (installed without recommends; never podman-docker). .ci/run reads the same list.
mapfile -t WCH_PACKAGES <"$WCH_REPO/docker/testing/packages.txt"

die() {
  echo "${WCH_TOOL:-podman}: $*" >&2
  exit 1
}

step() {
  echo "== ${WCH_TOOL:-podman}: $*"
}

#: Install the Debian packages that are missing (apt-get update once first). Never podman-docker.
wch_install_packages() {
  local missing=() p
  for p in "${WCH_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

#: Write the configuration under WCH_IMAGES_DIR and point podman at it; take the folder's lock (one user at a time).
wch_podman_setup() {
  local d=$WCH_IMAGES_DIR
  mkdir -p "$d/storage" "$d/run/libpod" "$d/run/storage" "$d/no-cni-plugins" "$d/no-cni-networks" || die "cannot create $d"
  exec 9>"$d/lock"
  flock -w 1800 9 || die "$d is in use by another run (lock $d/lock)"
  cat >"$d/containers.conf" <<EOF
# Written by wch-bridge's docker/testing/podman.sh on every run.
[containers]
netns = "host"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$d/run/events.log"
tmp_dir = "$d/run/libpod"

[network]
# No CNI plugins: a container asking for podman's bridge network fails instead of changing the host's firewall.
cni_plugin_dirs = ["$d/no-cni-plugins"]
network_config_dir = "$d/no-cni-networks"
EOF
  cat >"$d/storage.conf" <<EOF
# Written by wch-bridge's docker/testing/podman.sh on every run.
[storage]
driver = "overlay"
graphroot = "$d/storage"
runroot = "$d/run/storage"
EOF
  export CONTAINERS_CONF=$d/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf
  podman info >/dev/null 2>"$d/podman-info.err" || die "podman does not start: $(tail -n 1 "$d/podman-info.err")"
}

#: The image the Dockerfile's first FROM names, with its ARG default filled in (python:3.11-slim).
wch_from_image() {
  local from ver
  from=$(awk 'toupper($1) == "FROM" { print $2; exit }' "$WCH_DOCKERFILE")
  ver=$(sed -n 's/^ARG PYTHON_VERSION=//p' "$WCH_DOCKERFILE")
  from=${from//'${PYTHON_VERSION}'/$ver}
  case $from in
    */*) echo "$from" ;;
    *) echo "docker.io/library/$from" ;;
  esac
}

#: The Debian mirror the machine's apt sources name for main (deb822 .sources files or sources.list lines);
#: WCH_DEBIAN_MIRROR overrides it.
wch_debian_mirror() {
  python3 - "$WCH_BASE_SUITE" <<'EOF'
import glob, re, sys
suite = sys.argv[1]
found = []  # (uri, suites, components)
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(path, encoding="utf-8").read()):
        fields = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.split()
        if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"])[0] != "no":
            for uri in fields.get("uris", []):
                found.append((uri, fields.get("suites", []), fields.get("components", [])))
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        continue
    for line in lines:
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 4 and words[0] == "deb":
            found.append((words[1], [words[2]], words[3:]))
plain = [(u, s, c) for u, s, c in found if "main" in c and not any(x.endswith("-security") for x in s)]
best = [u for u, s, c in plain if suite in s] or [u for u, s, c in plain if u.rstrip("/").endswith("/debian")]
if not best:
    sys.exit(1)
print(best[0].rstrip("/"))
EOF
}

#: debootstrap Debian 12 (minbase + Python) into $1; one retry; the log in $2.
_wch_debootstrap() {
  local root=$1 log=$2 mirror attempt
  mirror=${WCH_DEBIAN_MIRROR:-$(wch_debian_mirror)} \
    || die "no Debian mirror for '$WCH_BASE_SUITE main' in the machine's apt sources (set WCH_DEBIAN_MIRROR)"
  for attempt in 1 2; do
    rm -rf "$root"
    if debootstrap --variant=minbase --include="$WCH_BASE_PACKAGES" "$WCH_BASE_SUITE" "$root" "$mirror" \
      >"$log" 2>&1; then
      return 0
    fi
    [ "$attempt" = 1 ] && echo "debootstrap from $mirror failed ($(tail -n 1 "$log")); retrying once" >&2
  done
  rm -rf "$root"
  die "debootstrap of Debian 12 from $mirror failed twice: $(tail -n 1 "$log") (full log: $log)"
}

#: The local Debian 12 base, tagged as the Dockerfile's FROM image. Reused when present (WCH_REBUILD_BASE=1 rebuilds).
wch_base_image() {
  local from root log
  from=$(wch_from_image)
  if [ "${WCH_REBUILD_BASE:-0}" != 1 ] && podman image exists "$WCH_BASE_IMAGE"; then
    podman tag "$WCH_BASE_IMAGE" "$from"
    step "base image $WCH_BASE_IMAGE (reused) as $from"
    return 0
  fi
  local t0=$SECONDS
  step "building the Debian 12 base image with debootstrap"
  root=$WCH_IMAGES_DIR/rootfs.tmp
  log=$WCH_IMAGES_DIR/debootstrap.log
  _wch_debootstrap "$root" "$log"
  # What the real python:*-slim does: root may pip install; the certificates this machine trusts are trusted inside
  # (pip in the build then trusts what the host trusts); no docs, man pages, locales or apt lists.
  rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  fi
  chroot "$root" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the base"
  cat >"$root/etc/dpkg/dpkg.cfg.d/wch-bridge-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/var/log/* "$root"/tmp/* "$root"/root/.cache
  local ver
  ver=$(chroot "$root" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  case $from in
    *:"$ver"-*|*:"$ver") ;;
    *) die "Debian $WCH_BASE_SUITE has Python $ver but the Dockerfile asks for $from" ;;
  esac
  tar -C "$root" --numeric-owner -cf - . \
    | podman import --quiet --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$WCH_BASE_IMAGE" >/dev/null \
    || die "podman import of the base failed"
  rm -rf "$root"
  podman tag "$WCH_BASE_IMAGE" "$from"
  step "base image $WCH_BASE_IMAGE built ($(wch_image_mb "$WCH_BASE_IMAGE") MB) in $((SECONDS - t0)) s, tagged $from"
}

#: Size of an image in MB (what `podman images` shows).
wch_image_mb() {
  podman image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0f", $1 / 1000000 }'
}
