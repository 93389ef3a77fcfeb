#!/usr/bin/env bash
# A throw-away local PostgreSQL 15 for development and tests (the HA store, issue 22): one
# cluster per directory, reachable only through a unix socket in that directory (no TCP),
# trust authentication, superuser role `nvlsched`, fsync on (the store's durability tests
# depend on it).
#
#   tools/pg_dev.sh start DIR   initdb DIR/data if needed (DIR is created if missing), start the
#                               server, wait until it accepts connections, print its URI;
#                               on a running DIR just prints the URI
#   tools/pg_dev.sh uri DIR     print the URI of the server running in DIR
#   tools/pg_dev.sh stop DIR    stop it (fast shutdown: open sessions are disconnected)
#
# stdout carries only the URI, e.g. postgresql:///postgres?host=/tmp/pg&port=5432&user=nvlsched;
# everything else goes to stderr. DIR holds data/ (the cluster), the socket and postgres.log.
# PostgreSQL refuses to run as root: as root the server runs as `nobody`, which then owns DIR.
set -euo pipefail
export LC_ALL=C  # byte-wise URI encoding below; initdb gets the C locale either way

PG_BIN=/usr/lib/postgresql/15/bin
PORT=5432
SOCKET_NAME=".s.PGSQL.$PORT"

die() { echo "pg_dev.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] && [[ "$1" =~ ^(start|stop|uri)$ ]] || { sed -n '/^#   tools\/pg_dev.sh start/,/^#$/p' "$0" >&2; exit 2; }
cmd=$1
[ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] && [ -x "$PG_BIN/psql" ] ||
  die "PostgreSQL 15 server binaries not found in $PG_BIN: install the Debian package postgresql-15 (apt-get install postgresql-15, or run tools/install_deps.sh)"

if [ "$cmd" = start ]; then mkdir -p -- "$2"; fi
dir="$(realpath -e -- "$2")" || die "no such directory: $2"
data="$dir/data"
# The server needs the socket's full path in a sockaddr_un (107 bytes and a NUL).
[ $((${#dir} + 1 + ${#SOCKET_NAME})) -le 107 ] || die "path too long for a unix socket (keep it under 93 bytes): $dir"
[[ "$dir" != *[\'\\]* ]] || die "DIR must not contain quotes or backslashes: $dir"

# The server's own user: as root, nobody (start) or whoever owns the cluster (stop, uri).
if [ "$(id -u)" -eq 0 ]; then
  if [ -d "$data" ]; then server_user="$(stat -c %U "$data")"; else server_user=nobody; fi
  [ "$server_user" != root ] || die "$data is owned by root; PostgreSQL cannot run as root"
  as_server() { runuser -u "$server_user" -- "$@"; }
else
  as_server() { "$@"; }
fi
cd "$dir"  # a working directory the server user may enter

# Percent-encodes everything but unreserved characters and '/', byte by byte.
uri_encode() {
  local s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9/._~-]) out+=$c ;;
      *) printf -v c '%%%02X' "'$c"; out+=$c ;;
    esac
  done
  printf '%s' "$out"
}
uri() { printf 'postgresql:///postgres?host=%s&port=%s&user=nvlsched\n' "$(uri_encode "$dir")" "$PORT"; }
running() { [ -f "$data/PG_VERSION" ] && as_server "$PG_BIN/pg_ctl" status -D "$data" >/dev/null 2>&1; }
show_log() { [ -f "$dir/postgres.log" ] && tail -n 30 "$dir/postgres.log" >&2 || true; }

case $cmd in
  uri)
    running || die "no server running in $dir (start one with: tools/pg_dev.sh start $dir)"
    uri
    ;;
  stop)
    [ -f "$data/PG_VERSION" ] || die "no cluster in $dir"
    if ! running; then echo "pg_dev.sh: not running: $dir" >&2; exit 0; fi
    out="$(as_server "$PG_BIN/pg_ctl" stop -D "$data" -m fast -w 2>&1)" || { echo "$out" >&2; die "stop failed: $dir"; }
    ;;
  start)
    if [ "$(id -u)" -eq 0 ]; then
      chown "$server_user": "$dir"
      if ! runuser -u "$server_user" -- test -x "$dir/.."; then
        echo "pg_dev.sh: making $(dirname "$dir") traversable (o+x) for $server_user" >&2
        chmod o+x "$(dirname "$dir")"
      fi
      runuser -u "$server_user" -- test -w "$dir" ||
        die "$server_user cannot reach $dir: make every directory above it traversable (o+x)"
    fi
    chmod 0700 "$dir"
    if running; then uri; exit 0; fi
    if [ ! -f "$data/PG_VERSION" ]; then
      as_server "$PG_BIN/initdb" -D "$data" -U nvlsched --auth-local=trust --auth-host=reject \
        --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; die "initdb failed in $data"; }
      cat >>"$data/postgresql.conf" <<CONF

# tools/pg_dev.sh: a throw-away test server, reachable only through its unix socket.
listen_addresses = ''
unix_socket_directories = '$dir'
port = $PORT
max_connections = 200
shared_buffers = 128MB
fsync = on
CONF
    fi
    out="$(as_server "$PG_BIN/pg_ctl" start -D "$data" -l "$dir/postgres.log" -w -t 60 2>&1)" ||
      { echo "$out" >&2; show_log; die "server did not start in $dir"; }
    # Prove the URI we print works before anyone relies on it.
    "$PG_BIN/psql" "$(uri)" -Atqc 'SELECT 1' >/dev/null || { show_log; die "started, but $(uri) does not connect"; }
    uri
    ;;
esac
