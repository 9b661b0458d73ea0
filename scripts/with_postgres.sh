#!/usr/bin/env bash
# Run a command with VEILLE_TEST_POSTGRES_URL pointing at a throwaway PostgreSQL cluster:
# initdb in a temporary folder, a free loopback port, trust auth, no fsync; stopped and removed
# afterwards. The server refuses to run as root, so as root it runs as the `postgres` user.
# Without a PostgreSQL server on the machine it says so and exits 0 (the SQLite pass stands).
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "PostgreSQL server not found under /usr/lib/postgresql: the PostgreSQL pass is skipped (SQLite only)."
  exit 0
fi
as_server() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
dir=$(mktemp -d /tmp/veille-pg.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
  as_server "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
as_server "$bin/initdb" -D "$dir/data" -A trust -U veille >/dev/null
as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
  "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200" \
  start >/dev/null
echo "PostgreSQL pass: a throwaway server on 127.0.0.1:$port"
VEILLE_TEST_POSTGRES_URL="postgresql+asyncpg://veille@127.0.0.1:$port" "$@"
