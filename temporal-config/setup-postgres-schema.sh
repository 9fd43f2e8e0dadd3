#!/bin/sh
# Creates Temporal's two PostgreSQL databases (persistence and visibility) when they are
# missing and brings their schemas to the version the admin-tools image ships, with Temporal's
# own SQL tool. Safe to run on every `docker compose up`: an existing database is kept and an
# up-to-date schema is left as it is.
#
# Environment:
#   POSTGRES_SEEDS   host of PostgreSQL (default: postgresql)
#   DB_PORT          its port (default: 5432)
#   POSTGRES_USER    user (default: temporal); the password is SQL_PASSWORD, read by the tool
#   DBNAME           persistence database (default: temporal)
#   VISIBILITY_DBNAME  visibility database (default: temporal_visibility)
#   SCHEMA_DIR       the schemas in the image (default: /etc/temporal/schema/postgresql/v12)
set -eu

host=${POSTGRES_SEEDS:-postgresql}
port=${DB_PORT:-5432}
user=${POSTGRES_USER:-temporal}
schema_dir=${SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}

sql() {
  temporal-sql-tool --plugin postgres12 --ep "$host" -p "$port" -u "$user" "$@"
}

for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
  db=${pair%%:*}
  kind=${pair#*:}
  echo "setup-postgres-schema: $db ($kind)"
  # `create` fails when the database exists already, which is the state we want.
  sql --db "$db" create 2>/dev/null || echo "setup-postgres-schema: $db exists"
  # Version 0.0 only creates the schema_version table when it is missing.
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "$schema_dir/$kind/versioned"
done
echo 'setup-postgres-schema: done'
