# Docker engine for the container test, sourced by docker/local/*.sh: Debian's docker.io with a
# dockerd of its own (own data root, exec root and socket), so it never touches another Docker
# on the machine, and Docker Compose v2 built once from its Go module and cached.
#
#   engine_install     apt-get install docker.io when dockerd is missing
#   engine_start       start dockerd unless it answers already; export DOCKER_HOST
#   engine_stop        stop the dockerd that engine_start started (by its PID)
#   compose_binary     print the path of the cached Compose v2 binary, building it when missing
#
# Environment: IMAGE_SYNC_CACHE (default ~/.cache/image-sync) holds the engine's data root
# (images and build cache survive between runs) and the Compose binary.

IMAGE_SYNC_CACHE=${IMAGE_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-sync}
COMPOSE_VERSION=${COMPOSE_VERSION:-v2.40.3}
ENGINE_DATA_ROOT=${ENGINE_DATA_ROOT:-$IMAGE_SYNC_CACHE/docker-data}
# Socket paths have a short length limit: keep the exec root and socket under /run.
ENGINE_EXEC_ROOT=${ENGINE_EXEC_ROOT:-/run/image-sync-docker}
ENGINE_SOCKET=${ENGINE_SOCKET:-/run/image-sync-docker.sock}
ENGINE_LOG=${ENGINE_LOG:-$IMAGE_SYNC_CACHE/dockerd.log}
ENGINE_STARTED_PID=

# Debian's client builds with BuildKit on its own; another client on PATH may need buildx.
if [ -x /usr/bin/docker ]; then docker() { /usr/bin/docker "$@"; }; fi

say() { printf '[container] %s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
  printf '[container] ERROR: %s\n' "$*" >&2
  exit 1
}

engine_install() {
  if command -v dockerd >/dev/null 2>&1 && [ -x /usr/bin/docker ]; then return 0; fi
  unset -f docker
  command -v apt-get >/dev/null 2>&1 || die "dockerd is missing and there is no apt-get to install docker.io"
  say "installing Debian's docker.io"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 docker.io >/dev/null) ||
    die "apt-get install docker.io failed"
  docker() { /usr/bin/docker "$@"; }
}

engine_answers() {
  DOCKER_HOST="unix://$ENGINE_SOCKET" docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

engine_start() {
  export DOCKER_HOST="unix://$ENGINE_SOCKET"
  export DOCKER_BUILDKIT=1
  if engine_answers; then
    say "dockerd answers at $ENGINE_SOCKET (left running: not started here)"
    return 0
  fi
  mkdir -p "$ENGINE_DATA_ROOT" "$ENGINE_EXEC_ROOT"
  say "starting dockerd (data root $ENGINE_DATA_ROOT, socket $ENGINE_SOCKET, log $ENGINE_LOG)"
  dockerd --data-root "$ENGINE_DATA_ROOT" --exec-root "$ENGINE_EXEC_ROOT" -H "unix://$ENGINE_SOCKET" \
    --pidfile "$ENGINE_EXEC_ROOT/dockerd.pid" >>"$ENGINE_LOG" 2>&1 &
  ENGINE_STARTED_PID=$!
  for _ in $(seq 1 120); do
    engine_answers && {
      say "dockerd $(docker version --format '{{.Server.Version}}') is up (pid $ENGINE_STARTED_PID)"
      return 0
    }
    kill -0 "$ENGINE_STARTED_PID" 2>/dev/null || {
      tail -20 "$ENGINE_LOG" >&2
      die "dockerd exited at start (log above, $ENGINE_LOG)"
    }
    sleep 1
  done
  tail -20 "$ENGINE_LOG" >&2
  die "dockerd did not answer within 120 s"
}

engine_stop() {
  [ -n "$ENGINE_STARTED_PID" ] || return 0
  say "stopping dockerd (pid $ENGINE_STARTED_PID)"
  kill -TERM "$ENGINE_STARTED_PID" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$ENGINE_STARTED_PID" 2>/dev/null || {
      ENGINE_STARTED_PID=
      return 0
    }
    sleep 1
  done
  say "dockerd still running after 60 s; sending SIGKILL"
  kill -KILL "$ENGINE_STARTED_PID" 2>/dev/null || true
  ENGINE_STARTED_PID=
}

# Docker Compose v2: `go install` of its cmd refuses (its go.mod has exclude directives), so it
# is built as the main module from the folder `go mod download` leaves, then cached.
compose_binary() {
  local out="$IMAGE_SYNC_CACHE/docker-compose-$COMPOSE_VERSION/docker-compose"
  if [ -x "$out" ]; then
    printf '%s\n' "$out"
    return 0
  fi
  local go=go
  command -v go >/dev/null 2>&1 || go=/usr/local/go/bin/go
  [ -x "$(command -v "$go")" ] || die "Go is needed to build Docker Compose $COMPOSE_VERSION"
  say "building Docker Compose $COMPOSE_VERSION from its Go module (about 10 minutes the first time)"
  local dir work
  dir=$("$go" mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || die "go mod download of Docker Compose $COMPOSE_VERSION failed"
  work=$(mktemp -d)
  cp -r "$dir/." "$work/" && chmod -R u+w "$work"
  mkdir -p "$(dirname "$out")"
  (cd "$work" && CGO_ENABLED=0 "$go" build -trimpath \
    -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
    -o "$out.tmp" ./cmd) || {
    rm -rf "$work"
    die "building Docker Compose $COMPOSE_VERSION failed"
  }
  rm -rf "$work"
  mv "$out.tmp" "$out"
  printf '%s\n' "$out"
}
