#!/usr/bin/env bash
# scripts/test.sh — body of `make test` (and `make stress` with --stress).
# Owns: build + install, a fresh `test` cluster, running every suite with its
# output tee'd to .cluster/test/logs/<suite>.log, counting checks, and the
# summary. A failing suite never stops the run. The last line of output is
# always `N passed, N failed`; exit status is 1 when anything failed.
#
#   scripts/test.sh [--stress] [regress] [pgtap] [unit] [fuzz] [harness]
#
# Env: WALLET_TEST_PORT (54330), WALLET_TEST_CLUSTER (test: the cluster
#      under .cluster/; another name and port run a second suite beside it), WALLET_FUZZ_SECONDS (30),
#      WALLET_SUITE_TIMEOUT (seconds per suite command, 0 = none; default
#      1800, 7200 with --stress), WALLET_KEEP_CLUSTER=1 leaves it running.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO" || exit 1
CLUSTER="$REPO/scripts/cluster.sh"
PORT=${WALLET_TEST_PORT:-54330}
CNAME=${WALLET_TEST_CLUSTER:-test}   # the cluster's name under .cluster/
ALL_SUITES=(regress pgtap unit fuzz harness)

STRESS=0
SELECTED=()
for arg in "$@"; do
  case $arg in
    --stress) STRESS=1 ;;
    regress | pgtap | unit | fuzz | harness) SELECTED+=("$arg") ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument '$arg' (suites: ${ALL_SUITES[*]}, --stress)" >&2; exit 2 ;;
  esac
done
[ "${#SELECTED[@]}" -gt 0 ] || SELECTED=("${ALL_SUITES[@]}")
if [ "$STRESS" = 1 ]; then SUITE_TIMEOUT=${WALLET_SUITE_TIMEOUT:-7200}; else SUITE_TIMEOUT=${WALLET_SUITE_TIMEOUT:-1800}; fi
[[ $SUITE_TIMEOUT =~ ^[0-9]+$ ]] || { echo "test.sh: WALLET_SUITE_TIMEOUT must be a number of seconds" >&2; exit 2; }

selected() { local s; for s in "${SELECTED[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

PASS=0
FAIL=0
ROWS=()
MARK=$SECONDS   # start of what the next record() reports; its seconds are since then
record() {  # record NAME PASSED FAILED [NOTE]
  PASS=$((PASS + $2))
  FAIL=$((FAIL + $3))
  ROWS+=("$(printf '%-28s %7s %7s %6s  %s' "$1" "$2" "$3" "$((SECONDS - MARK))" "${4:-}")")
  MARK=$SECONDS
}

banner() { printf '\n==== %s ====\n' "$*"; }

# run_cmd LOG CMD... : run with stdin closed, output shown and appended to LOG,
# under the per-suite timeout; returns the command's status. The command runs
# in the background (its own process group, via timeout) so that Ctrl-C or
# TERM reach our trap at once, which then stops it by pid.
CHILD=""
run_cmd() {
  local log=$1 rc fd tpid
  shift
  exec {fd}> >(tee -a "$log")
  tpid=$!
  timeout -k 15 "$SUITE_TIMEOUT" "$@" </dev/null >&"$fd" 2>&1 &
  CHILD=$!
  exec {fd}>&-
  wait "$CHILD"
  rc=$?
  CHILD=""
  wait "$tpid" 2>/dev/null
  if [ "$SUITE_TIMEOUT" != 0 ] && [ "$rc" = 124 ]; then
    echo "!! timed out after ${SUITE_TIMEOUT}s: $*" | tee -a "$log"
  fi
  return "$rc"
}

# tap_count LOG MODE -> prints "PASSED FAILED". MODE=numbered only counts
# `ok N` / `not ok N` (pg_prove also prints a bare `ok` per file); MODE=any
# also counts `ok - text`. `not ok ... # TODO` counts as passed.
tap_count() {
  awk -v mode="$2" '
    { line = $0; sub(/\r$/, "", line) }
    mode == "numbered" && line !~ /^(not )?ok [0-9]+( |$)/ { next }
    line ~ /^not ok( |$)/ { if (tolower(line) ~ /#[ \t]*todo/) p++; else f++; next }
    line ~ /^ok( |$)/ { p++ }
    END { printf "%d %d\n", p, f }
  ' "$1"
}

# count_tap NAME LOG RC MODE [EXTRA_FAILED WHAT]: record a TAP-printing
# command's result; a non-zero exit with no failure seen counts as 1 failure.
count_tap() {
  local name=$1 log=$2 rc=$3 extra=${5:-0} p f note=""
  read -r p f < <(tap_count "$log" "$4")
  if [ "$extra" -gt 0 ]; then
    f=$((f + extra))
    note="$extra ${6:-}; "
  fi
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    f=1
    note="${note}exit $rc and no failing test: died, bad plan or timeout"
  elif [ "$rc" != 0 ]; then
    note="${note}exit $rc"
  elif [ "$p" = 0 ] && [ "$f" = 0 ]; then
    note="no TAP output"
  fi
  record "$name" "$p" "$f" "$note"
}

# ---- cluster lifecycle -------------------------------------------------------
STARTED=0
stop_cluster() {
  if [ "$STARTED" = 1 ] && [ "${WALLET_KEEP_CLUSTER:-0}" != 1 ]; then
    bash "$CLUSTER" stop "$CNAME"
  fi
  STARTED=0
}
trap 'stop_cluster >/dev/null 2>&1' EXIT
on_signal() {
  if [ -n "$CHILD" ]; then kill -TERM "$CHILD" 2>/dev/null; fi
  exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# ---- build -------------------------------------------------------------------
banner "deps"
DEPS_OK=1
bash scripts/deps.sh || DEPS_OK=0

NEED_SERVER=0
for s in regress pgtap harness; do selected "$s" && NEED_SERVER=1; done

# A fresh cluster every run: no state left over from earlier runs.
if [ "$NEED_SERVER" = 1 ]; then bash "$CLUSTER" destroy "$CNAME" >/dev/null 2>&1 || true; fi
CDIR=$(bash "$CLUSTER" dir "$CNAME") || { echo "test.sh: cannot create the cluster dir" >&2; exit 1; }
LOGDIR="$CDIR/logs"
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"

banner "build"
BUILD_OK=0
: >"$LOGDIR/build.log"
if [ "$DEPS_OK" = 1 ] && run_cmd "$LOGDIR/build.log" make -s &&
   run_cmd "$LOGDIR/build.log" make -s install; then
  BUILD_OK=1
  echo "build: ok"
else
  [ "$DEPS_OK" = 1 ] || echo "deps.sh failed" >>"$LOGDIR/build.log"
  record build 0 1 "see $LOGDIR/build.log"
  echo "build: FAILED (suites needing the server are skipped)"
fi

SERVER_OK=0
if [ "$NEED_SERVER" = 1 ] && [ "$BUILD_OK" = 1 ]; then
  banner "cluster"
  STARTED=1  # also stop a half-started cluster at exit
  if WALLET_PRELOAD=wallet bash "$CLUSTER" start "$CNAME" "$PORT"; then
    SERVER_OK=1
    eval "$(bash "$CLUSTER" env "$CNAME")"
    export PGHOST PGPORT PGUSER
    unset PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS
  else
    record cluster 0 1 "see $CDIR/log"
  fi
fi
export WALLET_REPO="$REPO" WALLET_CLUSTER="$CNAME" WALLET_CLUSTER_DIR="$CDIR"

skip() { record "$1" 0 0 "skipped: $2"; echo "$1: skipped ($2)"; }
NO_SERVER="no server"
[ "$BUILD_OK" = 1 ] || NO_SERVER="build failed"

sorted_glob() {  # sorted_glob PATTERN: existing matches, C-locale order
  compgen -G "$1" | LC_ALL=C sort
}

# ---- suites ------------------------------------------------------------------
suite_regress() {
  local log="$LOGDIR/regress.log" rc p f note=""
  if [ -z "$(sorted_glob 'sql/*.sql')" ]; then skip regress "no sql/*.sql"; return; fi
  [ "$SERVER_OK" = 1 ] || { skip regress "$NO_SERVER"; return; }
  rm -f regression.diffs regression.out
  run_cmd "$log" make -s installcheck
  rc=$?
  # PG15: `test NAME ... ok|FAILED|failed (ignored)`; parallel groups indent;
  # PG16+ prints TAP (`ok 1 - NAME`, `not ok 2 - NAME`).
  read -r p f < <(awk '
    /^(test +|     +)[^ ]+ +\.\.\. +ok( |$)/ { p++; next }
    /^(test +|     +)[^ ]+ +\.\.\. +failed \(ignored\)/ { p++; next }
    /^(test +|     +)[^ ]+ +\.\.\. +FAILED/ { f++; next }
    /^ok [0-9]+ / { p++; next }
    /^not ok [0-9]+ / { f++; next }
    END { printf "%d %d\n", p, f }' "$log")
  if [ "$rc" != 0 ]; then
    if [ "$f" = 0 ]; then f=1; note="make installcheck exit $rc"; fi
    if [ -s regression.diffs ]; then
      echo "---- regression.diffs (first 200 lines) ----"
      head -n 200 regression.diffs
      cp regression.diffs "$LOGDIR/regression.diffs"
    fi
  fi
  record regress "$p" "$f" "$note"
}

suite_pgtap() {
  local log="$LOGDIR/pgtap.log" rc files
  mapfile -t files < <(sorted_glob 'test/pgtap/*.sql')
  if [ "${#files[@]}" = 0 ]; then skip pgtap "no test/pgtap/*.sql"; return; fi
  [ "$SERVER_OK" = 1 ] || { skip pgtap "$NO_SERVER"; return; }
  if ! run_cmd "$log" psql -X -q -v ON_ERROR_STOP=1 -d postgres \
        -c 'SET client_min_messages = warning' -c 'DROP DATABASE IF EXISTS wallet_tap WITH (FORCE)' -c 'CREATE DATABASE wallet_tap' ||
     ! run_cmd "$log" psql -X -q -v ON_ERROR_STOP=1 -d wallet_tap \
        -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION wallet'; then
    record pgtap 0 1 "setup of wallet_tap failed"
    return
  fi
  run_cmd "$log" pg_prove --verbose -h "$PGHOST" -p "$PGPORT" -U postgres -d wallet_tap "${files[@]}"
  rc=$?
  # A file that died or missed its plan shows in pg_prove's summary report as
  # `FILE (Wstat: W Tests: T Failed: 0)`: one failure for each of those.
  local broken
  broken=$(grep -cE '^[^ ].* \(Wstat: .* Tests: [0-9]+ Failed: 0\)$' "$log")
  count_tap pgtap "$log" "$rc" numbered "$broken" "file(s) that died or missed the plan"
}

suite_unit() {
  local log="$LOGDIR/unit.log" rc
  [ -f test/unit/test_money.c ] || { skip unit "no test/unit/test_money.c"; return; }
  run_cmd "$log" make -s unit
  rc=$?
  count_tap unit "$log" "$rc" numbered
}

suite_fuzz() {
  local log="$LOGDIR/fuzz.log" rc
  [ -f test/fuzz/fuzz.sh ] || { skip fuzz "no test/fuzz/fuzz.sh"; return; }
  run_cmd "$log" bash test/fuzz/fuzz.sh "${WALLET_FUZZ_SECONDS:-30}"
  rc=$?
  count_tap fuzz "$log" "$rc" any
}

suite_harness() {
  local log="$LOGDIR/harness.log" one rc h files
  mapfile -t files < <(sorted_glob 'test/harness/*.sh')
  if [ "${#files[@]}" = 0 ]; then skip harness "no test/harness/*.sh"; return; fi
  [ "$SERVER_OK" = 1 ] || { skip harness "$NO_SERVER"; return; }
  if [ "$STRESS" = 1 ]; then export WALLET_STRESS=1; else unset WALLET_STRESS; fi
  for h in "${files[@]}"; do
    one="$LOGDIR/harness-$(basename "$h" .sh).log"
    : >"$one"
    echo "# ---- $h ----" | tee -a "$log"
    MARK=$SECONDS
    run_cmd "$one" bash "$h"
    rc=$?
    cat "$one" >>"$log"
    count_tap "harness/$(basename "$h" .sh)" "$one" "$rc" any
  done
}

for s in "${ALL_SUITES[@]}"; do
  selected "$s" || continue
  banner "$s"
  : >"$LOGDIR/$s.log"
  MARK=$SECONDS
  "suite_$s"
done

# ---- summary (the cluster is stopped first so nothing prints after it) -------
banner "summary"
stop_cluster
trap - EXIT
printf '%-28s %7s %7s %6s  %s\n' suite passed failed secs note
for r in "${ROWS[@]}"; do echo "$r"; done
echo "logs: $LOGDIR; took ${SECONDS} s in all"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
