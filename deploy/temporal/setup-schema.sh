#!/bin/sh
# Brings Temporal's two databases to the schema of this admin-tools image. Both steps
# are idempotent (setup-schema stops at an existing version, update-schema applies only
# newer versions), so this runs on every `docker compose up` and after an image upgrade.
# The databases themselves are made by deploy/postgres/init-databases.sh: the SQL tool's
# `create` fails on a database that exists.
#
# SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD (read by temporal-sql-tool) name the
# PostgreSQL server and Temporal's role on it.
set -eu
: "${SQL_HOST:?}" "${SQL_PORT:?}" "${SQL_USER:?}" "${SQL_PASSWORD:?}"
SCHEMA=/etc/temporal/schema/postgresql/v12

setup() {
  database=$1
  schema=$2
  set -- --plugin postgres12 --ep "$SQL_HOST" -p "$SQL_PORT" -u "$SQL_USER" --db "$database"
  temporal-sql-tool "$@" setup-schema -v 0.0
  temporal-sql-tool "$@" update-schema -d "$SCHEMA/$schema/versioned"
}

setup temporal temporal
setup temporal_visibility visibility
