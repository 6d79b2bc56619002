#!/usr/bin/env bash
# scripts/cluster.sh — owns the throwaway PostgreSQL 15 clusters of this repo.
# Each lives in .cluster/NAME/ (gitignored): data/, sock/ (unix socket dir), log.
# If the postgres user cannot reach the repo (e.g. it is under /root) or the
# socket path would be too long, .cluster/NAME is a symlink to a /tmp dir.
# Never touches the system cluster (port 5432, /var/run/postgresql).
#
#   cluster.sh start NAME PORT   init if needed, (re)start, wait for pg_isready
#   cluster.sh stop NAME         stop if running (no error otherwise)
#   cluster.sh env NAME          print `export PGHOST=... PGPORT=... PGUSER=...`
#   cluster.sh status NAME       exit 0 if running, 3 if not
#   cluster.sh dir NAME          create/resolve the cluster dir, print its path
#   cluster.sh destroy NAME      stop and remove the cluster entirely
#
# shared_buffers is WALLET_SHARED_BUFFERS if set (make bench's long mode), else 512MB.
# shared_preload_libraries comes from WALLET_PRELOAD when it is set (even to
# empty); when unset, an existing cluster keeps its setting (new: empty).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# WALLET_PGBIN: another installation's server binaries (a private copy for
# development while other clusters use the system's; with PG_CONFIG for make)
PGBIN=${WALLET_PGBIN:-/usr/lib/postgresql/15/bin}
ROOT="$REPO/.cluster"
MARK='# ---- managed by cluster.sh, rewritten on every start ----'

say() { echo "cluster: $*"; }
die() { echo "cluster: $*" >&2; exit 1; }

# Run a server-side command as the postgres user (initdb refuses root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_own() {  # make a dir owned by whoever runs the server
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$@"; fi
}

check_name() {
  [[ ${1:-} =~ ^[A-Za-z0-9_-]+$ ]] || die "bad cluster name '${1:-}' (letters, digits, _ and - only)"
}

# Sets DIR (real path) if the cluster dir exists; returns 1 otherwise.
resolve_dir() {
  local link="$ROOT/$1"
  if [ -L "$link" ]; then
    DIR=$(readlink -f -- "$link")
    [ -d "$DIR" ] || return 1
  elif [ -d "$link" ]; then
    DIR=$(cd "$link" && pwd -P)
  else
    return 1
  fi
}

# Sets DIR, creating the cluster dir (or its /tmp fallback) when needed.
ensure_dir() {
  local name=$1 link="$ROOT/$1" d base hash
  mkdir -p "$ROOT"
  if [ -L "$link" ]; then
    d=$(readlink -m -- "$link")
    if [ ! -d "$d" ]; then  # /tmp was cleaned: recreate the target
      mkdir -p "$d"
      chmod 0755 "$(dirname "$d")" "$d"
      pg_own "$d"
    fi
    DIR=$d
    return 0
  fi
  if [ ! -d "$link" ]; then
    mkdir -m 0755 "$link"
    pg_own "$link"
  fi
  d=$(cd "$link" && pwd -P)
  # 103 = sizeof(sun_path) - room for "/sock/.s.PGSQL.NNNNN" and the NUL
  if as_pg test -w "$d" -a -x "$d" && [ $((${#d} + 21)) -le 103 ]; then
    DIR=$d
    return 0
  fi
  # Fallback: a private dir under /tmp, with .cluster/NAME pointing at it.
  if [ -n "$(ls -A "$link" 2>/dev/null)" ]; then
    die "$link exists and is not usable by the postgres user; remove it"
  fi
  rmdir "$link"
  hash=$(printf '%s' "$REPO" | md5sum | cut -c1-8)
  base="/tmp/wallet-cluster-$(id -u)-$hash"
  mkdir -p "$base"
  if [ -L "$base" ] || [ "$(stat -c %u "$base")" != "$(id -u)" ]; then
    die "$base is not a directory owned by $(id -un)"
  fi
  d="$base/$name"
  chmod 0755 "$base"
  mkdir -p "$d"
  chmod 0755 "$d"
  pg_own "$d"
  ln -sfn "$d" "$link"
  say "$name: using $d ($ROOT is unreachable by postgres or too long for a socket path)"
  DIR=$d
}

is_running() { as_pg "$PGBIN/pg_ctl" status -D "$DIR/data" >/dev/null 2>&1; }

conf_value() {  # conf_value KEY -> value from our managed block, quotes stripped
  local conf="$DIR/data/postgresql.conf"
  [ -f "$conf" ] || return 0
  sed -n "/^$MARK\$/,\$ s/^$1 = '\\{0,1\\}\\([^']*\\)'\\{0,1\\}\$/\\1/p" "$conf" | tail -n 1
}

preload_sums() {  # checksums of the preloaded libraries: a rebuild forces a restart
  local libdir lib
  libdir=$("$PGBIN/pg_config" --pkglibdir)
  IFS=',' read -ra libs <<<"$1"
  for lib in "${libs[@]}"; do
    lib=${lib// /}
    [ -n "$lib" ] || continue
    if [ -f "$libdir/$lib.so" ]; then
      echo "$lib $(md5sum <"$libdir/$lib.so" | cut -c1-32)"
    else
      echo "$lib missing"
      echo "cluster: warning: $libdir/$lib.so not installed (shared_preload_libraries='$1')" >&2
    fi
  done
}

stop_cluster() {
  if as_pg "$PGBIN/pg_ctl" stop -D "$DIR/data" -m fast -w -t 60 >/dev/null 2>&1; then
    return 0
  fi
  as_pg "$PGBIN/pg_ctl" stop -D "$DIR/data" -m immediate -w -t 30 >/dev/null 2>&1 || true
}

cmd_start() {
  local name=$1 port=$2 data conf sock preload block state running_port i
  if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1024 ] || [ "$port" -gt 65535 ]; then
    die "bad port '$port'"
  fi
  [ "$port" -ne 5432 ] || die "port 5432 is the system cluster's; pick another"
  ensure_dir "$name"
  data="$DIR/data" sock="$DIR/sock" conf="$DIR/data/postgresql.conf"
  if [ ! -d "$sock" ]; then mkdir -m 0755 "$sock"; pg_own "$sock"; fi

  if [ ! -s "$data/PG_VERSION" ]; then
    rm -rf "$data"
    mkdir -m 0700 "$data"
    pg_own "$data"
    if ! as_pg "$PGBIN/initdb" -D "$data" --auth=trust -U postgres --encoding=UTF8 \
        --locale=C >"$DIR/initdb.log" 2>&1; then
      tail -n 20 "$DIR/initdb.log" >&2
      die "$name: initdb failed (see $DIR/initdb.log)"
    fi
    say "$name: initialised $data"
  fi

  if [ -n "${WALLET_PRELOAD+set}" ]; then preload=$WALLET_PRELOAD; else preload=$(conf_value shared_preload_libraries); fi
  block=$(cat <<CONF
$MARK
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '${sock//\'/\'\'}'
max_connections = 200
shared_buffers = ${WALLET_SHARED_BUFFERS:-512MB}
fsync = on
max_prepared_transactions = 10
log_min_messages = warning
shared_preload_libraries = '${preload//\'/\'\'}'
CONF
)
  state=$(printf '%s\n' "$block"; preload_sums "$preload")

  if is_running; then
    running_port=$(sed -n 4p "$data/postmaster.pid" 2>/dev/null || true)
    if [ "$running_port" = "$port" ] && [ -f "$DIR/state" ] && [ "$(cat "$DIR/state")" = "$state" ] &&
       "$PGBIN/pg_isready" -q -U postgres -h "$sock" -p "$port"; then
      say "$name: already running on port $port"
      return 0
    fi
    say "$name: settings or preloaded library changed, restarting"
    stop_cluster
  fi

  # Rewrite our block at the end of postgresql.conf (in place: keeps owner/mode).
  local base
  base=$(sed "/^$MARK\$/,\$d" "$conf")
  printf '%s\n%s\n' "$base" "$block" >"$conf"

  if ! as_pg "$PGBIN/pg_ctl" start -D "$data" -l "$DIR/log" -w -t 60 >/dev/null 2>&1; then
    tail -n 20 "$DIR/log" >&2 || true
    die "$name: failed to start on port $port (see $DIR/log)"
  fi
  for ((i = 0; i < 120; i++)); do
    "$PGBIN/pg_isready" -q -U postgres -h "$sock" -p "$port" && break
    sleep 0.5
  done
  "$PGBIN/pg_isready" -q -U postgres -h "$sock" -p "$port" || die "$name: not ready after 60s (see $DIR/log)"
  printf '%s\n' "$state" >"$DIR/state"
  say "$name: running on port $port (socket dir $sock${preload:+, preload $preload})"
}

cmd_stop() {
  local name=$1
  if ! resolve_dir "$name" || [ ! -s "$DIR/data/PG_VERSION" ]; then
    say "$name: no cluster"
    return 0
  fi
  if is_running; then
    stop_cluster
    say "$name: stopped"
  else
    say "$name: not running"
  fi
}

cmd_env() {
  local name=$1 port
  if ! resolve_dir "$name" || [ ! -s "$DIR/data/PG_VERSION" ]; then
    die "$name: no cluster (run: $0 start $name PORT)"
  fi
  port=$(conf_value port)
  [ -n "$port" ] || die "$name: cluster was never started"
  printf 'export PGHOST=%q\n' "$DIR/sock"
  printf 'export PGPORT=%q\n' "$port"
  printf 'export PGUSER=postgres\n'
}

cmd_status() {
  local name=$1
  if resolve_dir "$name" && [ -s "$DIR/data/PG_VERSION" ] && is_running; then
    say "$name: running on port $(conf_value port)"
    return 0
  fi
  say "$name: not running"
  return 3
}

cmd_destroy() {
  local name=$1 link="$ROOT/$1"
  if resolve_dir "$name"; then
    if [ -s "$DIR/data/PG_VERSION" ] && is_running; then stop_cluster; fi
    rm -rf -- "$DIR"
    case $DIR in /tmp/wallet-cluster-*) rmdir -- "$(dirname "$DIR")" 2>/dev/null || true ;; esac
  fi
  rm -rf -- "$link"
  say "$name: removed"
}

usage() {
  echo "usage: $0 start NAME PORT | stop NAME | env NAME | status NAME | dir NAME | destroy NAME" >&2
  exit 2
}

cmd=${1:-}
[ $# -ge 2 ] || usage
check_name "$2"
case $cmd in
  start) [ $# -eq 3 ] || usage; cmd_start "$2" "$3" ;;
  stop) cmd_stop "$2" ;;
  env) cmd_env "$2" ;;
  status) cmd_status "$2" ;;
  dir) ensure_dir "$2"; echo "$DIR" ;;
  destroy) cmd_destroy "$2" ;;
  *) usage ;;
esac
