#!/bin/sh
# Creates the namespace image-sync runs in (TEMPORAL_NAMESPACE, default `default`) on the
# server at TEMPORAL_ADDRESS (default temporal:7233) unless it exists, waiting for the server to
# answer first. Retention: NAMESPACE_RETENTION (default 72h).
set -eu

address=${TEMPORAL_ADDRESS:-temporal:7233}
namespace=${TEMPORAL_NAMESPACE:-default}
retention=${NAMESPACE_RETENTION:-72h}
wait_seconds=${CREATE_WAIT_SECONDS:-300}

deadline=$(($(date +%s) + wait_seconds))
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "create-namespace: no server at $address" >&2; exit 1; }
  sleep 2
done
if temporal operator namespace describe -n "$namespace" --address "$address" -o none >/dev/null 2>&1; then
  echo "create-namespace: $namespace exists"
else
  temporal operator namespace create -n "$namespace" --retention "$retention" --address "$address"
  echo "create-namespace: $namespace created"
fi
