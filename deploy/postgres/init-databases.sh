#!/bin/sh
# Run once by the postgres image, on its first start with an empty data volume: a role
# and databases for Temporal (`temporal`, `temporal_visibility`), and for the app two
# roles (README, "Security model"):
# - `securemail_owner` owns the `securemail` database and every table in it; only
#   `securemail migrate` connects as it.
# - `securemail`, the web app's and the worker's, owns nothing: after each migration it
#   is granted reads and writes on the practice's tables but only INSERT and SELECT on
#   the audit log (infra/db/migrate.py), so no app process can delete, truncate or
#   switch off the triggers of the audit log.
set -eu
: "${TEMPORAL_DB_PASSWORD:?}" "${SECUREMAIL_DB_PASSWORD:?}" "${SECUREMAIL_OWNER_DB_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v temporal_password="$TEMPORAL_DB_PASSWORD" \
  -v securemail_password="$SECUREMAIL_DB_PASSWORD" \
  -v securemail_owner_password="$SECUREMAIL_OWNER_DB_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
CREATE ROLE securemail_owner LOGIN PASSWORD :'securemail_owner_password';
CREATE ROLE securemail LOGIN PASSWORD :'securemail_password';
CREATE DATABASE securemail OWNER securemail_owner;
REVOKE ALL ON DATABASE securemail FROM PUBLIC;
GRANT CONNECT ON DATABASE securemail TO securemail;
\connect securemail
-- Only the owner creates tables (PostgreSQL 15 and later refuse PUBLIC already).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
