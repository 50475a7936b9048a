#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the test suite and print its URI.
# Uses Debian's packages (installed when missing). The server runs as the postgres user
# (PostgreSQL refuses root) with its data in a fresh temporary folder.
set -euo pipefail
# A free loopback port unless one is given.
PORT="${OPSLOOP_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
DATA="$(mktemp -d /tmp/opsloop-pg.XXXXXX)"
chown postgres:postgres "$DATA"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust --no-sync >/dev/null
as_pg "$BIN/pg_ctl" -D "$DATA" -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off" \
  -l "$DATA/server.log" -w start >/dev/null
as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres opsloop_test
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/opsloop_test"
