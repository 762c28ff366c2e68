#!/usr/bin/env bash
# Run tests whose MySQL fixture starts a MariaDB container through testcontainers, with no Docker daemon and no
# registry: podman's Docker-compatible API (`podman system service`) stands in for the engine, and the MariaDB image
# is built here from Debian's mariadb-server on the local Debian 12 base (docker/testing/mariadb/).
#
#   docker/test-testcontainers.sh [COMMAND...]
#
# COMMAND (default: the store tests on MySQL, `.venv/bin/python -m pytest -n 0 -q -k mysql
# tests/integration/test_store.py tests/integration/test_testcontainers.py`, from the repository root) runs with:
#   DOCKER_HOST                        the service's socket;
#   TESTCONTAINERS_RYUK_DISABLED=true  the reaper's image cannot be pulled (the fixture stops its container itself);
#   WCH_TEST_MYSQL_IMAGE               the local MariaDB image: tests/conftest.py then requires the container (no
#                                      fall-back to the local server); WCH_TEST_DSN is unset;
#   WCH_TEST_CONTAINER_NETWORK         slirp4netns, podman's user-mode network, whose published ports a process
#                                      forwards. Podman's API would otherwise pick its bridge network, which changes
#                                      the host's firewall (docker/testing/podman.sh disables it: such a request fails).
# Afterwards no container is left and the service is stopped. WCH_IMAGES_DIR as in docker/test-image.sh.
set -euo pipefail
WCH_TOOL=test-testcontainers  # read by testing/podman.sh
# shellcheck source=docker/testing/podman.sh disable=SC2034
source "$(dirname "$0")/testing/podman.sh"

MARIADB_IMAGE=localhost/wch-bridge-test-mariadb:bookworm
MARIADB_DIR=$WCH_REPO/docker/testing/mariadb
SOCKET=$WCH_IMAGES_DIR/run/podman.sock
SERVICE_PID=""

#: The MariaDB image, rebuilt only when its files change (their hash is a label on the image).
mariadb_image() {
  local want have t0=$SECONDS
  want=$(cat "$MARIADB_DIR"/* | sha256sum | cut -c1-16)
  have=$(podman image inspect --format '{{index .Config.Labels "wch-bridge.files"}}' "$MARIADB_IMAGE" 2>/dev/null || true)
  if [ "$want" = "$have" ]; then
    step "MariaDB image $MARIADB_IMAGE (reused)"
    return 0
  fi
  step "building the MariaDB image $MARIADB_IMAGE from Debian's mariadb-server"
  if ! podman build --format docker --pull=never --network=host --layers=false --label "wch-bridge.files=$want" \
    -t "$MARIADB_IMAGE" "$MARIADB_DIR" >"$WCH_IMAGES_DIR/mariadb-build.log" 2>&1; then
    tail -n 20 "$WCH_IMAGES_DIR/mariadb-build.log" >&2
    die "building $MARIADB_IMAGE failed (log: $WCH_IMAGES_DIR/mariadb-build.log)"
  fi
  podman image prune -f >/dev/null
  step "MariaDB image built: $(wch_image_mb "$MARIADB_IMAGE") MB in $((SECONDS - t0)) s"
}

stop_service() {
  if [ -n "$SERVICE_PID" ]; then
    kill "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
    SERVICE_PID=""
  fi
  rm -f "$SOCKET"
}

#: Remove what testcontainers may have left (a failed run); then check nothing is left.
cleanup() {
  local left
  stop_service
  left=$(podman ps -aq --filter label=org.testcontainers=true)
  if [ -n "$left" ]; then
    # shellcheck disable=SC2086
    podman rm -f -v $left >/dev/null 2>&1 || true
  fi
}

start_service() {
  rm -f "$SOCKET"
  podman system service --time=0 "unix://$SOCKET" \
    >"$WCH_IMAGES_DIR/service.log" 2>&1 &
  SERVICE_PID=$!
  for _ in $(seq 1 60); do
    if curl -fsS --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; then
      step "podman system service on $SOCKET (pid $SERVICE_PID)"
      return 0
    fi
    kill -0 "$SERVICE_PID" 2>/dev/null || break
    sleep 0.5
  done
  die "podman system service did not answer on $SOCKET: $(tail -n 1 "$WCH_IMAGES_DIR/service.log")"
}

t0=$SECONDS
wch_install_packages
wch_podman_setup
wch_base_image
mariadb_image
trap cleanup EXIT
before=$(podman ps -aq --filter label=org.testcontainers=true | wc -l)
[ "$before" = 0 ] || die "$before testcontainers container(s) already exist: remove them first"
start_service

if [ $# -eq 0 ]; then
  # The MySQL half of the store tests (their SQLite half ran in the main step) and the check that the DSN is the
  # container's.
  set -- "$WCH_REPO/.venv/bin/python" -m pytest -n 0 -q -k mysql \
    tests/integration/test_store.py tests/integration/test_testcontainers.py
fi
step "running with DOCKER_HOST=unix://$SOCKET: $*"
rc=0
(
  cd "$WCH_REPO"
  unset WCH_TEST_DSN
  # docker_host: connect to published ports on localhost (testcontainers takes this machine's /.dockerenv as a
  # sign that it runs inside a container and would look for a gateway instead).
  export DOCKER_HOST=unix://$SOCKET TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_CONNECTION_MODE=docker_host \
    WCH_TEST_MYSQL_IMAGE=$MARIADB_IMAGE WCH_TEST_CONTAINER_NETWORK=slirp4netns
  "$@"
) || rc=$?

stop_service
left=$(podman ps -aq --filter label=org.testcontainers=true | wc -l)
cleanup
trap - EXIT
[ "$left" = 0 ] || die "the tests left $left container(s) behind (removed now)"
[ "$rc" = 0 ] || die "the tests failed (exit $rc)"
step "done in $((SECONDS - t0)) s; no container left, service stopped"
