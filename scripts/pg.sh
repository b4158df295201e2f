#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests, from Debian's packages (/usr/lib/postgresql/*/bin).
#
#   eval "$(scripts/pg.sh start DIR)"   # initdb in DIR, a free port on 127.0.0.1, trust auth;
#                                       # prints: export TB_TEST_POSTGRES_DSN='host=... port=...'
#                                       # plus three password roles for the client's auth tests
#   scripts/pg.sh stop DIR              # stops it and removes DIR
#
# DIR must not exist or be empty; keep its path short (the unix socket lives in it too).
# Works as a normal user and as root: initdb refuses root, so then the server runs as the
# `postgres` user that Debian's package creates, and DIR is handed to it.
# Only the export line goes to stdout; progress and errors go to stderr, the server's log to
# DIR/server.log.
set -euo pipefail

DB_USER=tinybase
DB_NAME=tinybase_test
MARKER=.tinybase-test-postgres

die() { echo "pg.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start DIR | stop DIR"; }

# The newest installed server's bin directory.
find_bin() {
  local best="" d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] || continue
    best=$d # the glob sorts 13 < 15 < 16 ...; versions of equal width are all Debian ships
  done
  [ -n "$best" ] || die "PostgreSQL server not found (no /usr/lib/postgresql/*/bin/initdb).
Install it with: apt-get install postgresql   (Debian/Ubuntu; as root, after apt-get update)"
  echo "$best"
}

# Roles that must log in with a password over TCP, one per authentication method the library's
# client speaks (tests/persist_postgres.rs `password_authentication`), each owning a database of
# the same name. An md5 login needs an md5-stored password (password_encryption decides).
AUTH_ROLES="tb_scram:scram-sha-256:scram-secret tb_md5:md5:md5-secret tb_clear:password:clear-secret"

# Runs a server program as the user that owns the cluster (postgres when we are root).
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  local dir=$1 bin port attempt
  bin=$(find_bin)
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    die "$dir exists and is not empty"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  touch "$dir/$MARKER"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user (apt-get install postgresql creates it)"
    chown -R postgres: "$dir"
    runuser -u postgres -- test -w "$dir" ||
      die "the postgres user cannot reach $dir: choose a folder whose parents it may enter (e.g. under /tmp)"
  fi
  # cd: the server programs run as another user may not enter the caller's working directory.
  cd "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U "$DB_USER" --auth=trust --encoding=UTF8 --locale=C \
    --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  # The password roles' rules come first: pg_hba.conf's first matching line decides. Written into
  # the existing file so it keeps its owner.
  local hba rules="" role method password
  hba=$(cat "$dir/data/pg_hba.conf")
  for role in $AUTH_ROLES; do
    IFS=: read -r role method password <<<"$role"
    rules+="host all $role 127.0.0.1/32 $method"$'\n'
  done
  printf '%s%s\n' "$rules" "$hba" >"$dir/data/pg_hba.conf"
  # Another process may take the port between the check and the bind: then try another one.
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    port_in_use "$port" && continue
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$dir'" \
      start >/dev/null 2>&1; then
      break
    fi
    port=""
  done
  [ -n "$port" ] || { tail -n 20 "$dir/server.log" >&2 || true; die "the server did not start (log: $dir/server.log)"; }
  for attempt in $(seq 1 100); do
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$DB_USER" && break
    sleep 0.1
  done
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$DB_USER" "$DB_NAME" ||
    die "could not create database $DB_NAME (log: $dir/server.log)"
  for role in $AUTH_ROLES; do
    IFS=: read -r role method password <<<"$role"
    # md5 logins need an md5-stored password; the others are stored as SCRAM verifiers.
    local encryption=scram-sha-256
    [ "$method" = md5 ] && encryption=md5
    "$bin/psql" -q -X -h 127.0.0.1 -p "$port" -U "$DB_USER" -d "$DB_NAME" -v ON_ERROR_STOP=1 \
      -c "SET password_encryption = '$encryption'" -c "CREATE ROLE $role LOGIN PASSWORD '$password'" \
      -c "CREATE DATABASE $role OWNER $role" >/dev/null 2>>"$dir/server.log" ||
      die "could not create the role $role (log: $dir/server.log)"
  done
  echo "pg.sh: PostgreSQL $(basename "$(dirname "$bin")") on 127.0.0.1:$port, data in $dir" >&2
  echo "export TB_TEST_POSTGRES_DSN='host=127.0.0.1 port=$port user=$DB_USER dbname=$DB_NAME'"
}

stop() {
  local dir=$1 bin
  [ -e "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  # Never remove a folder this script did not make.
  [ -e "$dir/$MARKER" ] || die "$dir was not made by pg.sh start; not removing it"
  if [ -f "$dir/data/postmaster.pid" ]; then
    bin=$(find_bin)
    (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1) ||
      (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1) || true
  fi
  rm -rf "$dir"
}

[ $# = 2 ] || usage
case $1 in
  start) start "$2" ;;
  stop) stop "$2" ;;
  *) usage ;;
esac
