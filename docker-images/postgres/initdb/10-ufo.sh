#!/usr/bin/env bash
# One-time initialisation (first start on an empty volume), run by the postgres image's
# entrypoint as POSTGRES_USER, which owns the product database POSTGRES_DB:
#   * LUIGID_DB: luigid's task-history database, owned by POSTGRES_USER;
#   * UFO_READONLY_USER: a login role that can only read the product database's tables,
#     including the ones the pipeline creates later (default privileges), and luigid's task
#     history (for the console).
set -euo pipefail
: "${UFO_READONLY_PASSWORD:?set UFO_READONLY_PASSWORD in .env}"
readonly_user="${UFO_READONLY_USER:-ufo_reader}"
luigid_db="${LUIGID_DB:-luigid}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=ro_user="$readonly_user" --set=ro_password="$UFO_READONLY_PASSWORD" \
  --set=luigid_db="$luigid_db" --set=owner="$POSTGRES_USER" --set=product_db="$POSTGRES_DB" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'luigid_db', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'luigid_db') \gexec
CREATE ROLE :"ro_user" LOGIN PASSWORD :'ro_password';
REVOKE ALL ON DATABASE :"luigid_db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"product_db" TO :"ro_user";
GRANT USAGE ON SCHEMA public TO :"ro_user";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"ro_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"ro_user";
GRANT CONNECT ON DATABASE :"luigid_db" TO :"ro_user";
SQL
# The console shows luigid's task history (each task's runs) as the read-only role too: it may
# read the tables luigid creates there later.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$luigid_db" \
  --set=ro_user="$readonly_user" --set=owner="$POSTGRES_USER" <<'SQL'
GRANT USAGE ON SCHEMA public TO :"ro_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"ro_user";
SQL
echo "10-ufo.sh: created database $luigid_db and read-only role $readonly_user"
