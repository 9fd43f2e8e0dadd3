#!/bin/sh
# Registers on a Temporal server every custom search attribute listed in
# search-attributes.json, then checks that each one is there with its type.
#
# The list lives only in the JSON file: this script reads the "Name": "Type" pairs of its
# "searchAttributes" object. Running it again is harmless: an attribute that already exists
# with the same type counts as registered. One that exists with another type is an error,
# as is a type the server does not know or a server that never answers.
#
# Environment:
#   SEARCH_ATTRIBUTES_FILE         the JSON file (default: search-attributes.json beside this script)
#   TEMPORAL_ADDRESS               the frontend, host:port (default: temporal:7233)
#   TEMPORAL_NAMESPACE             the namespace to register in (default: default)
#   REGISTER_WAIT_SECONDS          how long to wait for the server and namespace (default: 300)
#   REGISTER_ATTEMPTS              tries per attribute before giving up (default: 5)
#   REGISTER_RETRY_DELAY_SECONDS   pause between tries (default: 2)
#
# Needs only a POSIX shell, sed, tr, grep, date and the Temporal CLI (`temporal`) on PATH.
set -eu

script_dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
file=${SEARCH_ATTRIBUTES_FILE:-$script_dir/search-attributes.json}
address=${TEMPORAL_ADDRESS:-temporal:7233}
namespace=${TEMPORAL_NAMESPACE:-default}
wait_seconds=${REGISTER_WAIT_SECONDS:-300}
attempts=${REGISTER_ATTEMPTS:-5}
retry_delay=${REGISTER_RETRY_DELAY_SECONDS:-2}

log() {
  printf 'register-search-attributes: %s\n' "$*"
}

die() {
  printf 'register-search-attributes: %s\n' "$*" >&2
  exit 1
}

# Prints one "Name Type" line per entry of the "searchAttributes" object of the file $1.
# The file is read as one line, so the layout of the JSON does not matter; the object holds
# only string values, so it ends at its first closing brace.
read_pairs() {
  body=$(tr '\n\r\t' '   ' <"$1" |
    sed -n 's/.*"searchAttributes"[[:space:]]*:[[:space:]]*{\([^}]*\)}.*/\1/p')
  entries=$(printf '%s\n' "$body" | tr ',' '\n' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | grep -v '^$' || true)
  [ -n "$entries" ] || die "$1 lists no searchAttributes"
  while IFS= read -r entry; do
    pair=$(printf '%s\n' "$entry" |
      sed -n 's/^"\([A-Za-z_][A-Za-z0-9_]*\)"[[:space:]]*:[[:space:]]*"\([A-Za-z]*\)"$/\1 \2/p')
    [ -n "$pair" ] || die "$1: cannot read the search attribute entry: $entry"
    case ${pair#* } in
      Keyword | Text | Int | Double | Bool | Datetime | KeywordList) ;;
      *) die "$1: ${pair%% *} has the unknown type ${pair#* }" ;;
    esac
    printf '%s\n' "$pair"
  done <<ENTRIES
$entries
ENTRIES
}

# The type name as `temporal operator search-attribute list --output json` prints it,
# e.g. KeywordList -> INDEXED_VALUE_TYPE_KEYWORD_LIST.
indexed_type() {
  printf 'INDEXED_VALUE_TYPE_%s' "$(printf '%s' "$1" | sed 's/\([a-z]\)\([A-Z]\)/\1_\2/g' | tr '[:lower:]' '[:upper:]')"
}

wait_for_namespace() {
  deadline=$(($(date +%s) + wait_seconds))
  until temporal operator namespace describe --namespace "$namespace" --address "$address" --output none >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "no namespace $namespace at $address after ${wait_seconds}s"
    log "waiting for namespace $namespace at $address"
    sleep "$retry_delay"
  done
}

# register NAME TYPE
register() {
  try=1
  while :; do
    if out=$(temporal operator search-attribute create --name "$1" --type "$2" \
      --namespace "$namespace" --address "$address" 2>&1); then
      log "$1 ($2) registered"
      return 0
    fi
    case $out in
      *"different type"*) die "$1 already exists with a type other than $2: $out" ;;
      *"already exists"* | *AlreadyExists*)
        log "$1 ($2) already registered"
        return 0
        ;;
    esac
    [ "$try" -lt "$attempts" ] || die "cannot register $1 ($2) after $try tries: $out"
    try=$((try + 1))
    sleep "$retry_delay"
  done
}

[ -r "$file" ] || die "cannot read $file"
pairs=$(read_pairs "$file")

wait_for_namespace
while read -r name type; do
  register "$name" "$type"
done <<PAIRS
$pairs
PAIRS

listing=$(temporal operator search-attribute list --namespace "$namespace" --address "$address" --output json) ||
  die "cannot list the search attributes of $namespace at $address"
listing=$(printf '%s' "$listing" | tr -d '\n\r')
while read -r name type; do
  printf '%s' "$listing" | grep -q "\"$name\"[[:space:]]*:[[:space:]]*\"$(indexed_type "$type")\"" ||
    die "$name is not listed as $type in namespace $namespace"
done <<PAIRS
$pairs
PAIRS
log "all $(printf '%s\n' "$pairs" | wc -l | tr -d ' ') search attributes are registered in namespace $namespace at $address"
