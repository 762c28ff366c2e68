#!/usr/bin/env bash
# Build docker/Dockerfile, unmodified, with podman (no Docker daemon, no registry) and smoke-test the image the way
# docker/compose.yaml runs it. Run as root from anywhere; it installs the Debian packages it needs.
#
#   docker/test-image.sh            build, then smoke test
#   docker/test-image.sh build      only build (the Debian 12 base is reused when present)
#   docker/test-image.sh smoke      only the smoke test of an image built before
#
# Settings (environment):
#   WCH_IMAGES_DIR      podman's storage and configuration (default /var/tmp/wch-bridge-images)
#   WCH_IMAGE           the image's name (default localhost/wch-bridge:local, what compose.yaml calls it)
#   WCH_REBUILD_BASE=1  debootstrap the base again
#   WCH_DEBIAN_MIRROR   the Debian mirror (default: the one the machine's apt sources name)
#   WCH_SMOKE_DB_HOST, WCH_SMOKE_DB_PORT, WCH_SMOKE_DB_USER  a MariaDB/MySQL this user reaches without a password
#                       (default 127.0.0.1, 3306, root, as the test suite); the smoke test creates its own database
#                       there and drops it
#
# The smoke test leaves no container, volume or database behind, and uses the host's network only (never podman's
# default bridge network, which would change the host's firewall).
set -euo pipefail
WCH_TOOL=test-image  # read by testing/podman.sh
# shellcheck source=docker/testing/podman.sh disable=SC2034
source "$(dirname "$0")/testing/podman.sh"

IMAGE=${WCH_IMAGE:-localhost/wch-bridge:local}
WORK=$(mktemp -d /tmp/wch-test-image.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

build() {
  local t0=$SECONDS from
  wch_base_image
  from=$(wch_from_image)
  step "podman build -f docker/Dockerfile -t $IMAGE (from $from, --pull=never)"
  # --format docker keeps HEALTHCHECK and STOPSIGNAL (the OCI format has neither); --pull=never: the base is local.
  if ! (cd "$WCH_REPO" && podman build --format docker --pull=never --network=host --layers=false \
    -f docker/Dockerfile -t "$IMAGE" .) >"$WORK/build.log" 2>&1; then
    tail -n 30 "$WORK/build.log" >&2
    die "podman build of docker/Dockerfile failed: $(grep -m1 -i 'error' "$WORK/build.log" || tail -n 1 "$WORK/build.log")"
  fi
  podman image prune -f >/dev/null  # the build stage and anything an earlier build left untagged
  local size base
  size=$(wch_image_mb "$IMAGE")
  base=$(wch_image_mb "$from")
  step "built $IMAGE: $size MB ($base MB base + $((size - base)) MB project layer) in $((SECONDS - t0)) s"
}

# ------------------------------------------------------------------------------------------------------ smoke

SMOKE_ID=wch-smoke-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
SMOKE_DB=${SMOKE_ID//-/_}
DB_HOST=${WCH_SMOKE_DB_HOST:-127.0.0.1}
DB_PORT=${WCH_SMOKE_DB_PORT:-3306}
DB_USER=${WCH_SMOKE_DB_USER:-root}
DSN="mysql+pymysql://$DB_USER@$DB_HOST:$DB_PORT/$SMOKE_DB"
CONTAINER=$SMOKE_ID
VOLUME=$SMOKE_ID-reports
PASSED=0
# What compose.yaml sets for the sidecar: read-only root, a tmpfs on /tmp, no capabilities, no-new-privileges, the
# image's own non-root USER; plus the host's network.
COMPOSE_LIKE=(--read-only --read-only-tmpfs=false --tmpfs /tmp --cap-drop ALL
  --security-opt no-new-privileges --network host)

sql() {
  mariadb -u"$DB_USER" -h"$DB_HOST" -P"$DB_PORT" -e "$1"
}

ok() {
  PASSED=$((PASSED + 1))
  echo "ok $PASSED - $*"
}

fail() {
  if podman container exists "$CONTAINER"; then
    echo "--- the container's log:" >&2
    podman logs "$CONTAINER" 2>&1 | tail -n 20 >&2
  fi
  die "smoke test failed: $*"
}

smoke_cleanup() {
  podman rm -f -v "$CONTAINER" >/dev/null 2>&1 || true
  podman volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  sql "DROP DATABASE IF EXISTS \`$SMOKE_DB\`" 2>/dev/null || true
  rm -rf "$WORK"
}

#: A one-off command in a throw-away container (no healthcheck: nothing would run it).
oneoff() {
  podman run --rm --no-healthcheck "${COMPOSE_LIKE[@]}" -e WCH_BRIDGE_DSN="$DSN" "$IMAGE" "$@"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

smoke() {
  local t0=$SECONDS out rc version token port
  podman image exists "$IMAGE" || die "no image $IMAGE: run docker/test-image.sh build first"
  step "smoke test of $IMAGE (database $SMOKE_DB, container $CONTAINER)"
  trap smoke_cleanup EXIT
  sql "CREATE DATABASE \`$SMOKE_DB\`" || die "cannot create database $SMOKE_DB on $DB_HOST:$DB_PORT as $DB_USER"

  # The image itself: non-root, the bridge's HEALTHCHECK kept, no build leftovers.
  [ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" = "10001:10001" ] || fail "USER is not 10001:10001"
  podman image inspect --format '{{json .Config.Healthcheck.Test}}' "$IMAGE" | grep -q '"wch-bridge","health"' \
    || fail "the image has no HEALTHCHECK running wch-bridge health (built without --format docker?)"
  [ "$(podman image inspect --format '{{.Config.StopSignal}}' "$IMAGE")" = "SIGTERM" ] || fail "STOPSIGNAL is not SIGTERM"
  out=$(podman run --rm --no-healthcheck --network host --entrypoint /bin/sh "$IMAGE" -c \
    'id -u; ls -A /tmp; ls -d /tmp/dist /dist /src /root/.cache /var/lib/wch-bridge/* 2>/dev/null; true')
  [ "$out" = "10001" ] || fail "build leftovers or wrong user in the image: $(echo "$out" | tr '\n' ' ')"
  ok "image: user 10001, HEALTHCHECK wch-bridge health, STOPSIGNAL SIGTERM, no build leftovers ($(wch_image_mb "$IMAGE") MB)"

  version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$WCH_REPO/pyproject.toml")
  out=$(oneoff --version) || fail "--version exited $?"
  [ "$out" = "wch-bridge, version $version" ] || fail "--version printed '$out', not version $version"
  ok "--version: $out"

  rc=0; out=$(oneoff health 2>&1) || rc=$?
  { [ "$rc" = 2 ] && echo "$out" | grep -q "actionscheduler_actions"; } \
    || fail "health before schema install: exit $rc, '$out' (expected exit 2 naming the missing table)"
  ok "health before schema install: exit 2 ($out)"

  out=$(oneoff schema install --with-wordpress 2>&1) || fail "schema install: $out"
  ok "schema install: $(echo "$out" | head -n 1)"

  rc=0; out=$(oneoff health 2>&1) || rc=$?
  { [ "$rc" = 2 ] && echo "$out" | grep -q "^unhealthy: no \(worker\|live worker\)"; } \
    || fail "health after schema install, no worker yet: exit $rc, '$out' (expected exit 2, no worker)"
  ok "health after schema install, before any worker: exit 2 ($out)"

  # The worker, detached, as compose starts it: token from a mounted secret file, reports on a named volume.
  token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf %s "$token" >"$WORK/whatsapp_token"
  chmod 0644 "$WORK/whatsapp_token"
  port=$(free_port)
  podman volume create "$VOLUME" >/dev/null
  podman run -d --name "$CONTAINER" --hostname "$CONTAINER" "${COMPOSE_LIKE[@]}" \
    -e WCH_BRIDGE_DSN="$DSN" -e WCH_BRIDGE_PREFIX=wp_ -e WCH_BRIDGE_GROUPS=wch \
    -e WCH_BRIDGE_WHATSAPP_TOKEN_FILE=/run/secrets/whatsapp_token -e WCH_BRIDGE_WHATSAPP_PHONE_NUMBER_ID=100200300 \
    -e WCH_BRIDGE_METRICS_PORT="$port" -e WCH_BRIDGE_METRICS_HOST=127.0.0.1 \
    -v "$WORK/whatsapp_token:/run/secrets/whatsapp_token:ro" -v "$VOLUME:/var/lib/wch-bridge" \
    "$IMAGE" >/dev/null 2>"$WORK/run.err" || fail "podman run -d: $(grep -v systemd "$WORK/run.err" | tail -n 1)"
  ok "run detached (token from a secret file, reports volume, metrics on 127.0.0.1:$port)"

  # The image's own HEALTHCHECK (podman runs it on demand: there is no systemd timer here).
  local i healthy=""
  for i in $(seq 1 60); do
    [ "$(podman inspect --format '{{.State.Status}}' "$CONTAINER")" = running ] || fail "the worker exited"
    if podman healthcheck run "$CONTAINER" >/dev/null 2>&1; then healthy=1; break; fi
    sleep 1
  done
  [ -n "$healthy" ] || fail "the image's HEALTHCHECK did not pass within 60 s"
  [ "$(podman inspect --format '{{.State.Health.Status}}' "$CONTAINER")" = healthy ] || fail "health status not healthy"
  ok "HEALTHCHECK (wch-bridge health in the container) passes with the live worker after ${i} s"

  out=$(curl -fsS "http://127.0.0.1:$port/readyz") || fail "/readyz from the host failed"
  [ "$out" = "ok: ready" ] || fail "/readyz said '$out'"
  ok "/readyz from the host: $out"
  out=$(curl -fsS "http://127.0.0.1:$port/metrics") || fail "/metrics from the host failed"
  echo "$out" | grep -q '^wch_bridge_worker_loop_age_seconds' || fail "/metrics has no wch_bridge_worker_loop_age_seconds"
  ok "/metrics from the host: $(echo "$out" | grep -c '^wch_bridge_') wch_bridge_* samples"

  local report
  report="$(podman volume inspect --format '{{.Mountpoint}}' "$VOLUME")/report.html"
  for i in $(seq 1 30); do [ -s "$report" ] && break; sleep 1; done
  [ -s "$report" ] || fail "no report.html in the reports volume"
  grep -qi "<html" "$report" || fail "report.html is not HTML"
  [ "$(stat -c %u "$report")" = 10001 ] || fail "report.html is not owned by uid 10001"
  ok "report.html written to the volume ($(stat -c %s "$report") bytes, uid 10001)"

  podman logs "$CONTAINER" >"$WORK/worker.log" 2>&1
  grep -q "worker started: hooks=.*wch_send_broadcast_batch" "$WORK/worker.log" \
    || fail "the worker does not serve the WhatsApp hooks: was the token file read?"
  if grep -qF "$token" "$WORK/worker.log" "$report"; then fail "the token appears in the log or the report"; fi
  ok "the token was read from the secret file (WhatsApp hooks served) and appears in neither log nor report"

  # SIGTERM (the image's STOPSIGNAL), as `docker compose stop` sends it: a clean exit 0 well within the grace period.
  podman stop -t 45 "$CONTAINER" >/dev/null 2>&1 || fail "podman stop failed"
  rc=$(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER")
  [ "$rc" = 0 ] || fail "the worker exited $rc on SIGTERM (137: it had to be killed)"
  podman logs "$CONTAINER" 2>&1 | grep -q "worker stopped:" || fail "no 'worker stopped' line after SIGTERM"
  ok "SIGTERM: the worker stopped cleanly, exit 0"

  smoke_cleanup
  trap - EXIT
  podman container exists "$CONTAINER" && die "container $CONTAINER left behind"
  podman volume exists "$VOLUME" && die "volume $VOLUME left behind"
  [ -z "$(sql "SHOW DATABASES LIKE '$SMOKE_DB'")" ] || die "database $SMOKE_DB left behind"
  ok "container, volume and database $SMOKE_DB removed"
  step "smoke test passed in $((SECONDS - t0)) s"
  echo "$PASSED passed, 0 failed"
}

wch_install_packages
wch_podman_setup
case ${1:-all} in
  build) build ;;
  smoke) smoke ;;
  all) build; smoke ;;
  *) die "usage: $0 [build|smoke|all]" ;;
esac
