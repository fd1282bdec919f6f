#!/bin/sh
# Run once by the postgres image, on its first start with an empty data volume: a role
# and databases for Temporal (`temporal`, `temporal_visibility`) and for the app
# (`securemail`), each role owning only its own databases.
set -eu
: "${TEMPORAL_DB_PASSWORD:?}" "${SECUREMAIL_DB_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v temporal_password="$TEMPORAL_DB_PASSWORD" \
  -v securemail_password="$SECUREMAIL_DB_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
CREATE ROLE securemail LOGIN PASSWORD :'securemail_password';
CREATE DATABASE securemail OWNER securemail;
SQL
