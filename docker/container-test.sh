#!/usr/bin/env bash
# The container test (npm run test:container): the product image built from docker/Dockerfile
# and the stack of docker-compose.yml (used as it is) brought up on a Docker engine of its own,
# then checked end to end:
#
#   1. every service healthy (`compose up -d --wait`, two workers);
#   2. a batch started through a worker container ends COMPLETED, its ledger on the stack's
#      PostgreSQL says every file RECORDED, and `reconcile` finds no drift (the invariant);
#   3. a second batch: one worker container stopped with SIGTERM while the batch runs; it exits 0
#      (graceful stop), the other worker finishes the batch COMPLETED, and the ledger shows no
#      resend (no RESEND_QUEUED or VERIFY_FAILED event, every `resends` 0) and reconcile no drift;
#
# then the stack is taken down (volumes too) and the engine stopped. Images no registry here
# serves are built locally first (docker/local/build-images.sh); everything built is cached
# under ~/.cache/image-sync, so a second run builds nothing that did not change.
#
# Prints one progress line per step and one PASS/FAIL line per check, ends with
# `container test: N passed, N failed`, writes the same counts to
# test-results/container.json, and exits non-zero when a check failed or a step could not run.
#
# `--prepare` only builds (engine, Compose, local images, the product image), stops the engine and
# exits: .ci/run runs it in the background, at low priority, while the other tests run.
#
# Environment: CONTAINER_TEST_KEEP=1 leaves the stack and the engine running at the end (for a
# look with DOCKER_HOST=unix:///run/image-sync-docker.sock); CONTAINER_TEST_FILES (default 600)
# is the size of the batch stopped mid-way.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=local/engine.sh
. "$ROOT/docker/local/engine.sh"

T0=$(date +%s)
PREPARE=0
case ${1:-} in
  --prepare) PREPARE=1 ;;
  '') ;;
  *) die "usage: docker/container-test.sh [--prepare]" ;;
esac
RUN_ID=$(date -u +%Y%m%d%H%M%S)
INBOX="$ROOT/data/inbox"
SIGTERM_FILES=${CONTAINER_TEST_FILES:-600}
RESULTS="$ROOT/test-results/container.json"
PASSED=0
FAILED=0
STACK_UP=0
TIMINGS=()

step() { say "== $* ($(($(date +%s) - T0)) s)"; }
pass() {
  PASSED=$((PASSED + 1))
  say "PASS $*"
}
fail() {
  FAILED=$((FAILED + 1))
  say "FAIL $*"
}
# check NAME COMMAND...: one check, PASS when the command succeeds.
check() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}
timed() { TIMINGS+=("$1=$(($(date +%s) - $2))s"); }

write_results() {
  mkdir -p "$(dirname "$RESULTS")"
  printf '{"passed":%d,"failed":%d,"seconds":%d}\n' "$PASSED" "$FAILED" "$(($(date +%s) - T0))" >"$RESULTS"
}

finish() {
  local status=$?
  trap - EXIT
  if [ "$status" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
    # A step could not run: that is a failed check too.
    FAILED=$((FAILED + 1))
  fi
  if [ "$STACK_UP" = 1 ]; then
    if [ "$FAILED" -gt 0 ]; then
      say "stack state at the failure:"
      compose ps -a >&2 || true
      compose logs --no-color --tail 40 >&2 || true
    fi
    if [ "${CONTAINER_TEST_KEEP:-}" = 1 ]; then
      say "CONTAINER_TEST_KEEP=1: the stack and dockerd stay up"
      ENGINE_STARTED_PID=
    else
      step "taking the stack down"
      compose down -v --remove-orphans --timeout 60 >/dev/null 2>&1 || say "compose down failed"
    fi
  fi
  rm -rf "$INBOX/ctest-"*
  engine_stop
  if [ "$PREPARE" = 1 ]; then
    say "prepared in $(($(date +%s) - T0)) s (${TIMINGS[*]:-}), exit $status"
    exit "$status"
  fi
  write_results
  say "timings: ${TIMINGS[*]:-none}"
  echo "container test: $PASSED passed, $FAILED failed ($(($(date +%s) - T0)) s)"
  [ "$FAILED" -eq 0 ] || exit 1
  exit 0
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

compose() { "$COMPOSE_BIN" -f "$ROOT/docker-compose.yml" --project-directory "$ROOT" "$@"; }
# image-sync inside a one-off worker container: the worker's environment, secrets and volumes.
image_sync() { compose run --rm --no-deps -T worker node bin/image-sync.js "$@"; }
psql_ledger() { compose exec -T postgresql psql -U temporal -d image_sync -tAq -v ON_ERROR_STOP=1 -c "$1"; }

# make_batch NAME ORDERS FILES_PER_ORDER SEED: sample PNGs under data/inbox/NAME/<orderId>/,
# order ids prefixed with the batch name so no two batches share a destination file.
make_batch() {
  local name=$1 orders=$2 per=$3 seed=$4
  rm -rf "${INBOX:?}/$name"
  mkdir -p "$INBOX/$name"
  npx --no-install tsx -e "
    import { generateSampleBatch } from './src/devtools/samples/sample-images';
    generateSampleBatch(process.argv[1], { orders: $orders, filesPerOrder: $per, seed: $seed })
      .catch((e) => { console.error(e); process.exit(1); });
  " "$INBOX/$name/raw" || die "cannot write the sample files of $name"
  for d in "$INBOX/$name/raw"/*; do mv "$d" "$INBOX/$name/$name-$(basename "$d")"; done
  rmdir "$INBOX/$name/raw"
  # The workers read the files as the image's `node` user.
  chmod -R a+rX "$INBOX"
}

batch_field() { psql_ledger "SELECT $2 FROM sync_batches WHERE batch_id = '$1'"; }
count_where() { psql_ledger "SELECT count(*) FROM interactions WHERE batch_id = '$1' AND $2"; }
# wait_batch_state BATCH STATE SECONDS
wait_batch_state() {
  local deadline=$(($(date +%s) + $3)) state
  while :; do
    state=$(batch_field "$1" state 2>/dev/null || true)
    [ "$state" = "$2" ] && return 0
    case $state in FAILED | CANCELLED | TERMINATED) say "batch $1 ended $state"; return 1 ;; esac
    [ "$(date +%s)" -lt "$deadline" ] || {
      say "batch $1 is ${state:-unknown} after $3 s"
      return 1
    }
    sleep 2
  done
}

reconcile_clean() {
  local out
  out=$(image_sync reconcile "$1" --json) || {
    say "reconcile $1 exited non-zero: $(printf '%s' "$out" | head -c 2000)"
    return 1
  }
  printf '%s' "$out" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const r = JSON.parse(s);
      if (!Array.isArray(r.drifts)) { console.error("reconcile printed no drifts list"); process.exit(1); }
      if (r.drifts.length) { console.error(JSON.stringify(r.drifts.slice(0, 5))); process.exit(1); }
    });'
}

no_resends() {
  local resends events
  resends=$(psql_ledger "SELECT coalesce(sum(resends), 0) FROM interactions WHERE batch_id = '$1'")
  events=$(psql_ledger "SELECT count(*) FROM interaction_events e JOIN interactions i USING (interaction_id)
    WHERE i.batch_id = '$1' AND e.kind IN ('RESEND_QUEUED', 'VERIFY_FAILED')")
  say "batch $1: resends $resends, RESEND_QUEUED/VERIFY_FAILED events $events"
  [ "$resends" = 0 ] && [ "$events" = 0 ]
}

all_recorded() {
  local total recorded
  total=$(psql_ledger "SELECT count(*) FROM interactions WHERE batch_id = '$1'")
  recorded=$(count_where "$1" "status = 'RECORDED'")
  say "batch $1: $recorded of $total interactions RECORDED (expected $2)"
  [ "$total" = "$2" ] && [ "$recorded" = "$2" ]
}

# ------------------------------------------------------------------------------------------------
step "Docker engine"
engine_install
engine_start

step "Docker Compose"
t=$(date +%s)
COMPOSE_BIN=$(compose_binary)
timed compose "$t"
say "$("$COMPOSE_BIN" version)"

step "local base images"
t=$(date +%s)
bash "$ROOT/docker/local/build-images.sh" || die "the local images could not be built"
timed base-images "$t"

step "product image (docker/Dockerfile)"
t=$(date +%s)
docker build -q -f docker/Dockerfile -t image-sync:local "$ROOT" >/dev/null || die "docker build of docker/Dockerfile failed"
timed product-image "$t"
size=$(docker image inspect --format '{{.Size}}' image-sync:local)
say "image-sync:local built: $((size / 1000000)) MB"
# Keep the engine's data root from growing run after run: dangling images and old build cache.
docker image prune -f >/dev/null 2>&1 || true
docker builder prune -f --keep-storage 4gb >/dev/null 2>&1 || true
[ "$PREPARE" = 0 ] || exit 0

step "stack up (docker-compose.yml, two workers)"
t=$(date +%s)
mkdir -p "$INBOX"
# A stack a stopped run left behind goes first.
compose down -v --remove-orphans >/dev/null 2>&1 || true
for port in 7233 8233; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is taken on this machine; docker-compose.yml publishes it (stop what listens there)"
  fi
done
STACK_UP=1
check "every service up and healthy (compose up --wait)" \
  compose up -d --wait --wait-timeout 600 --scale worker=2 --quiet-pull
timed stack-up "$t"
compose ps -a --format '{{.Service}} {{.State}} {{.Status}}' >&2 || true
[ "$FAILED" -eq 0 ] || die "the stack did not come up"

step "batch through a worker container"
t=$(date +%s)
b1="ctest-$RUN_ID-a"
make_batch "$b1" 4 10 11
check "start --wait ends COMPLETED (exit 0)" image_sync start --dir "/data/inbox/$b1" --batch-id "$b1" --wait --progress-interval 10
check "ledger on the stack's PostgreSQL: batch COMPLETED" test "$(batch_field "$b1" state)" = COMPLETED
check "ledger: all 40 files RECORDED" all_recorded "$b1" 40
check "reconcile: the invariant holds (no drift)" reconcile_clean "$b1"
timed batch "$t"

step "SIGTERM to a worker container mid-batch"
t=$(date +%s)
b2="ctest-$RUN_ID-b"
per=20
orders=$(((SIGTERM_FILES + per - 1) / per))
total=$((orders * per))
make_batch "$b2" "$orders" "$per" 22
image_sync start --dir "/data/inbox/$b2" --batch-id "$b2" --max-concurrency 4 >/dev/null ||
  die "could not start batch $b2"
# Stop once the batch is well under way: some files recorded, most still to come.
deadline=$(($(date +%s) + 300))
recorded=0
while :; do
  recorded=$(count_where "$b2" "status = 'RECORDED'" 2>/dev/null || echo 0)
  [ "${recorded:-0}" -ge 5 ] && break
  [ "$(date +%s)" -lt "$deadline" ] || die "batch $b2 recorded nothing within 300 s"
  sleep 1
done
# sed reads to the end: with head, compose could meet a closed pipe and, under pipefail, end the script.
victim=$(compose ps -q worker | sed -n 1p)
[ -n "$victim" ] || die "no worker container to stop"
say "batch $b2: $recorded of $total recorded; docker stop (SIGTERM) of worker $(docker inspect --format '{{.Name}}' "$victim")"
stop_t=$(date +%s)
docker stop "$victim" >/dev/null
say "worker stopped after $(($(date +%s) - stop_t)) s"
after=$(count_where "$b2" "status = 'RECORDED'")
check "the worker was stopped mid-batch ($recorded..$after of $total recorded)" test "$after" -lt "$total"
code=$(docker inspect --format '{{.State.ExitCode}}' "$victim")
check "the stopped worker exited 0 (graceful stop, exit code $code)" test "$code" = 0
check "the stopped worker logged its graceful stop" \
  bash -c "docker logs '$victim' 2>&1 | grep -q 'SIGTERM, stopping'"
check "the other worker finishes the batch: COMPLETED" wait_batch_state "$b2" COMPLETED 900
check "ledger: all $total files RECORDED" all_recorded "$b2" "$total"
check "ledger: no resend caused by the stop" no_resends "$b2"
check "reconcile: the invariant holds after the stop (no drift)" reconcile_clean "$b2"
timed sigterm "$t"
