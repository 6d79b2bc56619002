#!/usr/bin/env bash
# test/bench/bench.sh — body of `make bench`: the Performance table of
# SPEC.md, measured side by side in one run on a throwaway cluster.
#
# Builds and installs like scripts/test.sh, starts a fresh `bench` cluster
# (wallet preloaded), creates database `bench`, loads the accounts
# (setup.sql), runs every workload with pgbench, then the sum measurement,
# and prints one table (also written to .cluster/bench/last.md).  Logs of
# every step: .cluster/bench/logs/.  The bench reports, it never fails the
# build: exit 0 unless setup itself breaks.
#
# Workloads (pgbench -M prepared, WALLET_BENCH_SECONDS each in total, split
# over WALLET_BENCH_ROUNDS interleaved rounds so drift spreads evenly; each
# run starts after a CHECKPOINT, once the housekeeping worker has sealed
# and filed the journal so far: settle_housekeeping below):
#   raw          plain SQL reference (raw.pgbench, BEGIN..COMMIT, 8 clients)
#   raw 1-stmt   the same work in one statement (raw1.pgbench), for reference
#   transfer     wallet.transfer, same accounts, 8 clients
#   hot, plain   32 clients crediting one plain-SQL row (hot_raw.pgbench)
#   hot          32 clients crediting one wallet.set_hot account, with
#                wallet.fold_hot() every second and a snapshot check that
#                balance(hot) = sum of its entries; verify() afterwards
#   batch        wallet.transfer_batch, 1,000 transfers a call (if installed)
#   audit off/on transfer with the audit triggers and the sealer (the
#                housekeeping worker, or a wallet.seal() loop) off / on
#   scale        (WALLET_BENCH_LONG=1) transfer over 10 M accounts vs 10 k;
#                the 10 M accounts are written directly (scale_setup.sql);
#                measured between checkpoints (scale_sweep.sql explains),
#                plus one run each right after a checkpoint, for reference
#   sum          sum(amount) vs sum(bigint) vs sum(numeric), serial and
#                parallel, median of WALLET_BENCH_SUM_REPS; bytes per value
#
# Env: WALLET_BENCH_SECONDS (10) per workload; WALLET_BENCH_ROUNDS (2);
#      WALLET_BENCH_ACCOUNTS (10000); WALLET_BENCH_ROWS (10000000) rows of
#      the sum table; WALLET_BENCH_SUM_REPS (5); WALLET_BENCH_BATCH_CLIENTS
#      (4: two per core keeps a core busy while the other batch commits);
#      WALLET_BENCH_LONG=1 adds the scale row
#      (WALLET_BENCH_SCALE_ACCOUNTS, 10000000; loading takes minutes);
#      WALLET_BENCH_PORT (54331); WALLET_PRELOAD (wallet) as for cluster.sh;
#      WALLET_BENCH_HUGE_PAGES=0 leaves vm.nr_hugepages alone (see
#      "Huge pages" below); WALLET_BENCH_NO_BUILD=1 benches what is installed (no deps/build/
#      install); WALLET_BENCH_KEEP=1 leaves the cluster running afterwards.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$REPO" || exit 1
BENCH="$REPO/test/bench"
CLUSTER="$REPO/scripts/cluster.sh"
PORT=${WALLET_BENCH_PORT:-54331}
SECS=${WALLET_BENCH_SECONDS:-10}
NACC=${WALLET_BENCH_ACCOUNTS:-10000}
ROWS=${WALLET_BENCH_ROWS:-10000000}
REPS=${WALLET_BENCH_SUM_REPS:-5}
BATCH_CLIENTS=${WALLET_BENCH_BATCH_CLIENTS:-4}
BATCH_SIZE=1000
LONG=${WALLET_BENCH_LONG:-0}
SCALE_N=${WALLET_BENCH_SCALE_ACCOUNTS:-10000000}
for v in SECS NACC ROWS REPS BATCH_CLIENTS SCALE_N PORT; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || { echo "bench: $v must be a positive integer" >&2; exit 2; }
done
[ "$NACC" -ge 2 ] || { echo "bench: WALLET_BENCH_ACCOUNTS must be at least 2" >&2; exit 2; }
THREADS=$(nproc 2>/dev/null || echo 2)
START_TS=$(date +%s)
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

say() { printf '\n==== %s ====\n' "$*"; }
die() {
  echo "bench: $*" >&2
  if [ -n "${CDIR:-}" ] && [ -f "$CDIR/log" ] && grep -q 'terminated by signal\|PANIC' "$CDIR/log"; then
    echo "bench: the server crashed:" >&2
    grep 'terminated by signal\|PANIC' "$CDIR/log" | head -n 5 >&2
  fi
  exit 1
}

# ---- cleanup: background loops, then the cluster ------------------------------
declare -A BG_PID=()
STARTED=0
cleanup() {
  local n
  for n in "${!BG_PID[@]}"; do rm -f "$LOGDIR/$n.running"; done
  for n in "${!BG_PID[@]}"; do wait "${BG_PID[$n]}" 2>/dev/null; done
  BG_PID=()
  if [ "$STARTED" = 1 ] && [ "${WALLET_BENCH_KEEP:-0}" != 1 ]; then
    bash "$CLUSTER" stop bench >/dev/null 2>&1
  fi
  # the huge pages back to what they were (pages a kept cluster still maps
  # are released when it stops)
  [ -z "${HUGE_OLD:-}" ] || echo "$HUGE_OLD" >/proc/sys/vm/nr_hugepages 2>/dev/null
  HUGE_OLD=""
  STARTED=0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- deps, build, install (as scripts/test.sh) -----------------------------------
if [ "${WALLET_BENCH_NO_BUILD:-0}" != 1 ]; then
  say "deps + build"
  bash scripts/deps.sh || die "deps.sh failed"
  make -s || die "build failed"
  make -s install || die "make install failed"
fi

# ---- a fresh cluster ------------------------------------------------------------
say "cluster"
bash "$CLUSTER" destroy bench >/dev/null 2>&1 || true
CDIR=$(bash "$CLUSTER" dir bench) || die "cannot create the cluster dir"
LOGDIR="$CDIR/logs"
mkdir -p "$LOGDIR"
STARTED=1
# Long mode: shared_buffers a quarter of RAM (at most 8 GB), as for a
# server sized for its data, so the 10 M-account database can be held in
# it (prewarmed before its runs, see scale below).
if [ "$LONG" = 1 ] && [ -z "${WALLET_SHARED_BUFFERS:-}" ]; then
  mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
  sb=$(( mem_mb / 4 )); [ "$sb" -le 8192 ] || sb=8192; [ "$sb" -ge 512 ] || sb=512
  export WALLET_SHARED_BUFFERS="${sb}MB"
fi
# Huge pages for shared memory, as a server with a large shared_buffers is
# run in production (PostgreSQL docs, "Linux Huge Pages").  Without them each
# backend takes a minor page fault for every 4 kB of shared memory it first
# touches and a TLB miss on most buffer accesses; pgbench opens fresh
# connections for every run, and at 10 M accounts the buffers a transfer
# touches are spread over gigabytes.  Measured here (transfer, 8 clients,
# synchronous_commit off to take the disk out): 10 k accounts 10-11 k -> 17 k
# tx/s, 10 M accounts 5-6 k -> 12-13 k tx/s.  Reserved only when we may write
# vm.nr_hugepages (root; WALLET_BENCH_HUGE_PAGES=0 skips it), put back at
# exit; PostgreSQL's default huge_pages = try falls back to normal pages when
# the reservation is short.  The report says which it was.
HUGE_OLD="" HUGE_NOTE="no (not reserved)"
sb=${WALLET_SHARED_BUFFERS:-512MB}
sb_mb=$(numfmt --from=iec "${sb%B}" 2>/dev/null | awk '{ printf "%d", $1 / 1048576 }')
if [ "${WALLET_BENCH_HUGE_PAGES:-1}" = 1 ] && [ -w /proc/sys/vm/nr_hugepages ] && [ "${sb_mb:-0}" -gt 0 ] &&
   [ "$(awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo)" = 2048 ]; then
  HUGE_OLD=$(cat /proc/sys/vm/nr_hugepages)
  huge_want=$(( sb_mb / 2 + 128 ))  # shared_buffers + ~256 MB of other shared memory, in 2 MB pages
  if [ "$HUGE_OLD" -lt "$huge_want" ]; then
    echo "$huge_want" >/proc/sys/vm/nr_hugepages 2>/dev/null
    if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt "$huge_want" ]; then  # fragmented: compact, retry
      echo 1 >/proc/sys/vm/compact_memory 2>/dev/null
      echo "$huge_want" >/proc/sys/vm/nr_hugepages 2>/dev/null
    fi
  fi
  huge_got=$(cat /proc/sys/vm/nr_hugepages)
  echo "huge pages: $huge_got of $huge_want reserved (vm.nr_hugepages was $HUGE_OLD)"
fi
WALLET_PRELOAD=${WALLET_PRELOAD-wallet} bash "$CLUSTER" start bench "$PORT" || die "cluster did not start (see $CDIR/log)"
if [ -n "$HUGE_OLD" ]; then
  # taken (faulted in) or reserved (committed, faulted in on first touch)
  # now means PostgreSQL mapped its shared memory on them
  huge_used=$(awk '/^HugePages_Total:/ { t = $2 } /^HugePages_Free:/ { f = $2 } /^HugePages_Rsvd:/ { r = $2 } END { print t - f + r }' /proc/meminfo)
  if [ "$huge_used" -gt 0 ]; then HUGE_NOTE="yes, $huge_used x 2 MB"; else HUGE_NOTE="no (reservation too small: $huge_got of $huge_want)"; fi
fi
eval "$(bash "$CLUSTER" env bench)"
export PGHOST PGPORT PGUSER
unset PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS
# No checkpoint in the middle of a measurement: each workload starts with
# an explicit CHECKPOINT instead.  min_wal_size keeps the WAL segments a
# checkpoint frees for reuse (the usual setting for a write-heavy server):
# otherwise every workload after a checkpoint pays for creating and
# zero-filling new 16 MB segments, in proportion to the WAL it writes.
psql -X -q -d postgres -v ON_ERROR_STOP=1 \
  -c "ALTER SYSTEM SET max_wal_size = '16GB'" -c "ALTER SYSTEM SET checkpoint_timeout = '1h'" \
  -c "ALTER SYSTEM SET min_wal_size = '4GB'" \
  -c "SELECT pg_reload_conf()" >/dev/null || die "cannot configure the cluster"

q() { psql -X -At -v ON_ERROR_STOP=1 -d "${DB:-bench}" "$@"; }  # q -c SQL
DB=bench

say "setup: $NACC accounts"
psql -X -q -d postgres -c 'CREATE DATABASE bench' >/dev/null || die "createdb bench failed"
q -q -c 'CREATE EXTENSION wallet' >"$LOGDIR/setup.log" 2>&1 || { cat "$LOGDIR/setup.log"; die "CREATE EXTENSION wallet failed"; }
t0=$(date +%s)
q -q -v n="$NACC" -f "$BENCH/setup.sql" >>"$LOGDIR/setup.log" 2>&1 || { tail -n 20 "$LOGDIR/setup.log"; die "setup.sql failed"; }
IFS='|' read -r BANK LO HI HOT < <(q -c 'SELECT bank, lo, hi, hot FROM bench_raw.ids')
[ $((HI - LO + 1)) = "$NACC" ] || die "user account ids are not contiguous ($LO..$HI)"
echo "bank $BANK, users $LO..$HI, hot $HOT ($(( $(date +%s) - t0 ))s)"
# the hot account's posted balance equals the sum of all its entries (one
# statement, one snapshot): before each hot run and after all runs
HOT_EXACT_SQL="wallet.units(wallet.balance($HOT)) = (SELECT coalesce(sum(units), 0) FROM wallet.account_entries WHERE account_id = $HOT)"
# what a background loop's log shows when a statement failed or its
# session was lost
LOOP_FAILED='LOOP-ERROR\|ERROR:\|FATAL:\|connection'

# WAL segments as a server in steady state has them: written once (2 GB of
# throwaway rows), then recycled by a checkpoint (min_wal_size above keeps
# them).  A new cluster would otherwise create and zero-fill a 16 MB
# segment for every 16 MB of WAL during the first workloads, a cost in
# proportion to each workload's WAL that a running server does not pay.
t0=$(date +%s)
q -q -c "CREATE TABLE public.bench_wal_warmup AS SELECT g, repeat('w', 200) AS pad FROM generate_series(1, 8000000) g" \
  -c "DROP TABLE public.bench_wal_warmup" -c "CHECKPOINT" >>"$LOGDIR/setup.log" 2>&1 ||
  die "WAL warm-up failed (see $LOGDIR/setup.log)"
echo "WAL segments written and recycled ($(( $(date +%s) - t0 ))s): $(q -c "SELECT count(*) FROM pg_ls_waldir()") in pg_wal"

has_fn() { [ "$(q -c "SELECT to_regprocedure('$1') IS NOT NULL")" = t ]; }

# ---- helpers ----------------------------------------------------------------------
# bg_start NAME SQL: run SQL every second, in one psql session fed a
# statement a second (output to NAME.log), until bg_stop NAME.  One session,
# not a psql process per run: on a VM where starting a process costs 70-100
# ms of CPU, a new psql and backend every second were a load that only the
# workload running beside them (hot) carried.  Loops stop by their flag
# file, never by kill: the feeder stops, psql finishes the statement it
# runs and exits at end of input.  A failed statement shows as an ERROR
# line in the log.
bg_start() {
  local name=$1 sql=$2
  : >"$LOGDIR/$name.running"
  (
    while [ -e "$LOGDIR/$name.running" ]; do
      printf '%s;\n' "$sql"
      sleep 1
    done | psql -X -At -d "${DB:-bench}" >>"$LOGDIR/$name.log" 2>&1
  ) &
  BG_PID[$name]=$!
}
bg_stop() {
  rm -f "$LOGDIR/$1.running"
  wait "${BG_PID[$1]}" 2>/dev/null
  unset "BG_PID[$1]"
}

# settle_housekeeping: before each measured run, let the housekeeping
# worker catch up with the journal so far (sealed and filed up to the last
# id drawn, no hot credit pending; at most 60 s), so that each workload
# pays for its own housekeeping, not for the backlog of the one before it
# (the worker is off during `audit off`, whose backlog `audit on` or
# `batch` would otherwise seal and file while measured).  Skipped while
# the worker is off.
settle_housekeeping() {
  [ "$WORKER" = on ] && [ "$(q -c 'SHOW wallet.housekeeping' 2>/dev/null)" = on ] || return 0
  local i
  for ((i = 0; i < 120; i++)); do
    [ "$(q -c "SELECT coalesce((SELECT max(journal_through) FROM wallet.audit_seal), 0) >= s.last_value
                  AND wallet.history_merged_through() >= s.last_value
                  AND NOT EXISTS (SELECT FROM wallet.hot_pending)
                 FROM wallet.txn_id_seq s" 2>/dev/null)" = t ] && return 0
    sleep 0.5
  done
  echo "   (housekeeping had not caught up after 60 s)"
}

declare -A TPS=() LAT=() CLIENTS=() NOTE=() CALLS=() RUNS=()
# run_pgbench NAME SCRIPT CLIENTS [-D var=value ...]: one measured run of
# SLICE seconds.  Repeated runs of NAME (one per round) accumulate: TPS and
# LAT are the means, CALLS the total, RUNS the list of per-run tps.
run_pgbench() {
  local name=$1 script=$2 c=$3 j log rc aborted failed tps lat calls n
  shift 3
  n=$(( $(wc -w <<<"${RUNS[$name]:-}") + 1 ))
  log="$LOGDIR/pgbench-$name-$n.log"
  j=$((c < THREADS ? c : THREADS))
  settle_housekeeping
  [ "${NO_CHECKPOINT:-0}" = 1 ] || q -q -c CHECKPOINT >/dev/null 2>&1
  pgbench -n -M prepared -c "$c" -j "$j" -T "$SLICE" -f "$BENCH/$script" "$@" "${DB:-bench}" >"$log" 2>&1
  rc=$?
  CLIENTS[$name]=$c
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log" | head -n 1)
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$log" | head -n 1)
  calls=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log" | head -n 1)
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log" | head -n 1)
  aborted=$(grep -c 'aborted in command' "$log")
  if [ "$rc" != 0 ] || [ "$aborted" != 0 ] || [ "${failed:-0}" != 0 ] || [ -z "$tps" ]; then
    [ -n "${NOTE[$name]:-}" ] ||
      NOTE[$name]="ERRORS: exit $rc, $aborted client(s) aborted, ${failed:-?} failed; $(grep -m1 -o 'ERROR: .*' "$log" | cut -c1-120)"
    grep -m3 -i 'error' "$log" | sed 's/^/   /'
  fi
  RUNS[$name]="${RUNS[$name]:-} ${tps:-0}"
  CALLS[$name]=$(( ${CALLS[$name]:-0} + ${calls:-0} ))
  TPS[$name]=$(awk -v l="${RUNS[$name]}" 'BEGIN { n = split(l, v, " "); for (i = 1; i <= n; i++) s += v[i]; printf "%.1f", s / n }')
  LAT[$name]=$(awk -v m="${LAT[$name]:-0}" -v x="${lat:-0}" -v n="$n" 'BEGIN { printf "%.3f", (m * (n - 1) + x) / n }')
  printf -- '-- %-10s %3s clients %3ss: %9s tps, latency %s ms%s\n' "$name" "$c" "$SLICE" "${tps:-?}" "${lat:-?}" "${NOTE[$name]:+ (${NOTE[$name]})}"
}

# ---- workloads -------------------------------------------------------------------------
# Every workload runs once per round, WALLET_BENCH_SECONDS / ROUNDS seconds
# each time, so slow drift (other work on the machine, table growth) spreads
# over all of them instead of biasing the ratios.
ROUNDS=${WALLET_BENCH_ROUNDS:-2}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "WALLET_BENCH_ROUNDS must be a positive integer"
SLICE=$(( (SECS + ROUNDS - 1) / ROUNDS ))
WD=(-D lo="$LO" -D hi="$HI" -D n="$NACC")

# Audit switch.  "off": the wallet's row-audit triggers that fire on INSERT
# or UPDATE of a wallet table (function or trigger name mentions
# audit/chain/seal; the append-only guards stay) disabled, and no sealing:
# the housekeeping worker (which seals every wallet.housekeeping_naptime)
# switched off with wallet.housekeeping = off.  "on": as installed; when the
# worker is not running (not preloaded), wallet.seal() every second instead.
mapfile -t AUDIT_TRIGGERS < <(q -F ' ' -c "
  SELECT t.tgrelid::regclass, quote_ident(t.tgname)
    FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
    JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace ns ON ns.oid = c.relnamespace
   WHERE NOT t.tgisinternal AND ns.nspname = 'wallet' AND t.tgenabled <> 'D'
     AND (t.tgtype & (4 | 16)) <> 0
     AND (p.proname ~* 'audit|chain|seal' OR t.tgname ~* 'audit|chain|seal')
     AND p.proname !~* 'forbid|append|guard'")
WORKER=$(q -c "SELECT setting FROM pg_settings WHERE name = 'wallet.housekeeping'")
SEALER=""
for f in 'wallet.seal()' 'wallet.digest()'; do
  if has_fn "$f"; then SEALER=${f%()}; break; fi
done
if [ "$WORKER" = on ]; then
  AUDIT_OFF_WHAT="${#AUDIT_TRIGGERS[@]} audit trigger(s) + wallet.housekeeping (sealer) off"
  AUDIT_ON_WHAT="on = as installed (housekeeping worker seals every $(q -c "SHOW wallet.housekeeping_naptime"))"
elif [ -n "$SEALER" ]; then
  AUDIT_OFF_WHAT="${#AUDIT_TRIGGERS[@]} audit trigger(s) off, no sealer"
  AUDIT_ON_WHAT="on = as installed + $SEALER() every 1 s (no worker)"
else
  AUDIT_OFF_WHAT="${#AUDIT_TRIGGERS[@]} audit trigger(s) off"
  AUDIT_ON_WHAT="on = as installed (no sealer installed)"
fi
[ "${#AUDIT_TRIGGERS[@]}" = 0 ] && [ -z "$SEALER" ] && AUDIT_ON_WHAT="$AUDIT_ON_WHAT; nothing to switch off: the ratio is run-to-run noise"
echo "audit off = disable: ${AUDIT_TRIGGERS[*]:-(no audit triggers)}${WORKER:+; wallet.housekeeping=off}${SEALER:+; no $SEALER() loop}"
set_worker() {  # set_worker on|off: the housekeeping worker, cluster-wide
  psql -X -q -d postgres -c "ALTER SYSTEM SET wallet.housekeeping = $1" -c "SELECT pg_reload_conf()" >/dev/null &&
    sleep 2  # let a running housekeeping round finish
}
audit_switch() {  # audit_switch on|off
  local tg what=ENABLE
  [ "$1" = on ] || what=DISABLE
  for tg in "${AUDIT_TRIGGERS[@]}"; do q -q -c "ALTER TABLE ${tg% *} $what TRIGGER ${tg#* }" || die "cannot $what $tg"; done
  [ "$WORKER" != on ] || set_worker "$1" || die "cannot switch the housekeeping worker $1"
}

HAS_BATCH=0
has_fn 'wallet.transfer_batch(bigint[],bigint[],wallet.amount[],text[])' && HAS_BATCH=1
SNAP_OK=0 SNAP_BAD=0 FOLD_ERR=0 SEAL_ERR=0 BATCH_POSTED=0
count_key() { q -c "SELECT count(*) FROM wallet.txn WHERE idempotency_key LIKE '$1-%'"; }

# One function per measured workload; rounds run them in ABBA order (odd
# rounds forwards, even rounds backwards) so linear drift cancels out.
wl_raw() { run_pgbench raw raw.pgbench 8 "${WD[@]}"; }
wl_raw1() { run_pgbench raw1 raw1.pgbench 8 "${WD[@]}"; }
wl_transfer() { run_pgbench transfer transfer.pgbench 8 "${WD[@]}" -D tag=tr; }
wl_hot_raw() { run_pgbench hot_raw hot_raw.pgbench 32 "${WD[@]}"; }
wl_hot() {
  local base
  # Snapshot check while credits land: the posted balance of the hot account
  # equals the sum of its entries, in one statement (STABLE functions see the
  # statement's snapshot).  Once in full before the run, while nothing
  # writes (its balance then, and the last transaction id), then every
  # second against that base plus the account's entries of the transactions
  # after it (wallet.account_entries, as the worker files them under load;
  # about 12 ms a check for the transactions of a run): the full sum over all of the
  # account's entries took 260 ms and more of CPU per check, a load the
  # `transfer` row it is compared with does not carry.
  q -c "SELECT CASE WHEN $HOT_EXACT_SQL THEN 'SNAPSHOT-OK' ELSE 'SNAPSHOT-BAD' END" >>"$LOGDIR/hotcheck.log" 2>&1 ||
    echo "LOOP-ERROR" >>"$LOGDIR/hotcheck.log"
  base=$(q -c "SELECT wallet.units(wallet.balance($HOT)) || ', ' || (SELECT coalesce(max(id), 0) FROM wallet.txn)")
  bg_start fold "SELECT wallet.fold_hot()"
  bg_start hotcheck "SELECT CASE WHEN wallet.units(wallet.balance($HOT)) =
                  b.units + (SELECT coalesce(sum(x.units), 0) FROM wallet.account_entries x WHERE x.account_id = $HOT AND x.txn_id > b.txn)
                THEN 'SNAPSHOT-OK' ELSE 'SNAPSHOT-BAD' END FROM (VALUES ($base)) AS b(units, txn)"
  run_pgbench hot hot.pgbench 32 "${WD[@]}" -D hot="$HOT" -D tag=hot
  bg_stop fold
  bg_stop hotcheck
}
wl_batch() {
  local before
  before=$(count_key bt)
  run_pgbench batch batch.pgbench "$BATCH_CLIENTS" "${WD[@]}" -D size="$BATCH_SIZE" -D tag=bt -D parts="$BATCH_CLIENTS"
  BATCH_POSTED=$(( BATCH_POSTED + $(count_key bt) - before ))
}
wl_audit_off() {
  audit_switch off
  run_pgbench audit_off transfer.pgbench 8 "${WD[@]}" -D tag=aoff
  audit_switch on
}
SEALS=0
count_seals() { q -c "SELECT CASE WHEN to_regclass('wallet.audit_seal') IS NULL THEN 0 ELSE (SELECT count(*) FROM wallet.audit_seal) END"; }
wl_audit_on() {
  local before
  before=$(count_seals)
  [ "$WORKER" = on ] || [ -z "$SEALER" ] || bg_start sealer "SELECT $SEALER()"
  run_pgbench audit_on transfer.pgbench 8 "${WD[@]}" -D tag=aon
  [ -z "${BG_PID[sealer]:-}" ] || bg_stop sealer
  SEALS=$(( SEALS + $(count_seals) - before ))
}
WORKLOADS=(raw raw1 transfer hot_raw hot)
[ "$HAS_BATCH" = 0 ] || WORKLOADS+=(batch)
WORKLOADS+=(audit_off audit_on)

for ((round = 1; round <= ROUNDS; round++)); do
  say "round $round of $ROUNDS"
  if ((round % 2)); then order=("${WORKLOADS[@]}"); else order=(); for w in "${WORKLOADS[@]}"; do order=("$w" "${order[@]}"); done; fi
  for w in "${order[@]}"; do "wl_$w"; done
done

say "checks"
HOT_RAW_OK=$(q -c "SELECT (SELECT balance FROM bench_raw.accounts WHERE id = 0) = (SELECT coalesce(sum(amount), 0) FROM bench_raw.entries WHERE account = 0)")
SNAP_OK=$(grep -c SNAPSHOT-OK "$LOGDIR/hotcheck.log")
# a loop's psql that lost its connection stops checking: FATAL or a lost
# connection counts as a failure, and the snapshot checks must have run
# during each hot run (one full check before it, at least one while it ran)
SNAP_BAD=$(grep -c "SNAPSHOT-BAD\\|$LOOP_FAILED" "$LOGDIR/hotcheck.log")
[ "$SNAP_OK" -ge $((2 * ROUNDS)) ] || SNAP_BAD=$((SNAP_BAD + 1))
FOLD_ERR=$(grep -c "$LOOP_FAILED" "$LOGDIR/fold.log")
[ ! -f "$LOGDIR/sealer.log" ] || SEAL_ERR=$(grep -c "$LOOP_FAILED" "$LOGDIR/sealer.log")
[ "$SEAL_ERR" = 0 ] || NOTE[audit_on]="${NOTE[audit_on]:+${NOTE[audit_on]:-}; }$SEAL_ERR sealer call(s) failed"
HOT_EXACT=$(q -c "SELECT $HOT_EXACT_SQL" 2>>"$LOGDIR/setup.log")
HOT_PENDING=$(q -c "SELECT count(*) FROM wallet.hot_pending" 2>/dev/null)
VERIFY_BAD=$(q -c "SELECT coalesce(string_agg(check_name || ': ' || detail, '; '), '') FROM wallet.verify() WHERE NOT ok" 2>&1) ||
  VERIFY_BAD="verify() failed: $VERIFY_BAD"
q -c "SELECT check_name, ok, detail FROM wallet.verify()" >"$LOGDIR/verify.log" 2>&1
echo "hot balance exact: $HOT_EXACT; snapshot checks ok/bad: $SNAP_OK/$SNAP_BAD; fold errors: $FOLD_ERR; pending rows left: $HOT_PENDING"
echo "verify(): ${VERIFY_BAD:-all ok}; plain-SQL hot row = sum of entries: $HOT_RAW_OK"
if [ "$HAS_BATCH" = 1 ]; then
  expect=$(( ${CALLS[batch]:-0} * BATCH_SIZE ))
  echo "batch: posted $BATCH_POSTED of $expect transfers"
  [ "$BATCH_POSTED" -ge "$expect" ] || NOTE[batch]="${NOTE[batch]:+${NOTE[batch]:-}; }only $BATCH_POSTED of $expect transfers posted"
  TPS[batch_calls]=${TPS[batch]}
  TPS[batch]=$(awk -v t="${TPS[batch]:-0}" -v s="$BATCH_SIZE" 'BEGIN { printf "%.1f", t * s }')
else
  NOTE[batch]="n/a (transfer_batch not installed)"
fi

# ---- scale (long mode) -------------------------------------------------------------
if [ "$LONG" = 1 ]; then
  say "scale: $SCALE_N accounts (database bench_scale)"
  t0=$(date +%s)
  psql -X -q -d postgres -c 'CREATE DATABASE bench_scale' >/dev/null || die "createdb bench_scale failed"
  DB=bench_scale q -q -c 'CREATE EXTENSION wallet' >>"$LOGDIR/setup.log" 2>&1 || die "CREATE EXTENSION in bench_scale failed"
  [ "$WORKER" != on ] || set_worker off || die "cannot pause the housekeeping worker"
  DB=bench_scale q -q -v n="$SCALE_N" -f "$BENCH/scale_setup.sql" >>"$LOGDIR/setup.log" 2>&1 ||
    { tail -n 20 "$LOGDIR/setup.log"; die "scale_setup.sql failed"; }
  [ "$WORKER" != on ] || set_worker on || die "cannot restart the housekeeping worker"
  IFS='|' read -r _ SLO SHI _ < <(DB=bench_scale q -c 'SELECT bank, lo, hi, hot FROM bench_raw.ids')
  echo "   loaded in $(( $(date +%s) - t0 ))s"
  # Steady state, not a cold cache: 80,000 transfers over 10 M accounts touch
  # each row about once, so without this every access would be a first read
  # of that page and the row would measure the page cache, not the engine.
  # Both sides then run from shared buffers (the 10 k side is warm by use).
  SCALE_PREWARM=$(DB=bench_scale q -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" -c "
    SELECT pg_size_pretty(sum(pg_prewarm(c.oid) * current_setting('block_size')::bigint))
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'wallet' AND c.relkind IN ('r', 'i') AND c.relpersistence = 'p'" 2>&1 | tail -n 1) ||
    SCALE_PREWARM="prewarm failed: $SCALE_PREWARM"
  echo "   prewarmed: $SCALE_PREWARM (shared_buffers $(DB=bench_scale q -c 'SHOW shared_buffers'))"
  # Right after a checkpoint (reported on its own row): every run starts
  # with one, as all other workloads do.
  run_pgbench transfer_ckpt transfer.pgbench 8 "${WD[@]}" -D tag=trc
  DB=bench_scale run_pgbench scale_ckpt transfer.pgbench 8 -D lo="$SLO" -D hi="$SHI" -D tag=scc
  # Between checkpoints (the scale row): one checkpoint, the sweep of
  # scale_sweep.sql (every account page changed once since it), then the
  # runs with no checkpoint before them (checkpoint_timeout is 1h and
  # max_wal_size 16GB, so none falls inside the rest of the run).
  q -q -c CHECKPOINT >/dev/null 2>&1
  t0=$(date +%s)
  DB=bench_scale q -v lo="$SLO" -v hi="$SHI" -f "$BENCH/scale_sweep.sql" >"$LOGDIR/scale-sweep.log" 2>&1 ||
    { tail -n 20 "$LOGDIR/scale-sweep.log"; die "scale_sweep.sql failed"; }
  SWEEP_FAILED=$(awk '/^not ok: / { s += $3 } END { print s + 0 }' "$LOGDIR/scale-sweep.log")
  echo "   sweep: $(grep -c '^not ok: ' "$LOGDIR/scale-sweep.log") batch call(s), $SWEEP_FAILED transfer(s) not ok, $(grep -m1 '^filed: ' "$LOGDIR/scale-sweep.log"), $(( $(date +%s) - t0 ))s"
  # the 10 k side again, in turn (ABBA), so the ratio compares neighbours
  for ((round = 1; round <= ROUNDS; round++)); do
    ((round % 2)) || NO_CHECKPOINT=1 run_pgbench transfer_again transfer.pgbench 8 "${WD[@]}" -D tag=tr2
    NO_CHECKPOINT=1 DB=bench_scale run_pgbench scale transfer.pgbench 8 -D lo="$SLO" -D hi="$SHI" -D tag=sc
    ((round % 2 == 0)) || NO_CHECKPOINT=1 run_pgbench transfer_again transfer.pgbench 8 "${WD[@]}" -D tag=tr2
  done
  SCALE_VERIFY=$(DB=bench_scale q -c "SELECT coalesce(string_agg(check_name, ', '), '') FROM wallet.verify() WHERE NOT ok" 2>&1) ||
    SCALE_VERIFY="verify() failed"
  echo "   verify() on bench_scale: ${SCALE_VERIFY:-all ok}"
fi

# ---- sum -----------------------------------------------------------------------------
say "sum: $ROWS rows"
t0=$(date +%s)
q -q -c "SET client_min_messages = warning" -c "CREATE SCHEMA bench_sum" \
  -c "CREATE UNLOGGED TABLE bench_sum.t (b bigint NOT NULL, a wallet.amount NOT NULL, n numeric(20,2) NOT NULL, cur text NOT NULL)" ||
  die "cannot create bench_sum.t"
half=$((ROWS / 2))
q -q -v lo=1 -v hi="$half" -f "$BENCH/sum_setup.sql" >"$LOGDIR/sum-load-1.log" 2>&1 &
p1=$!
q -q -v lo=$((half + 1)) -v hi="$ROWS" -f "$BENCH/sum_setup.sql" >"$LOGDIR/sum-load-2.log" 2>&1
r2=$?
wait "$p1"
r1=$?
[ "$r1" = 0 ] && [ "$r2" = 0 ] || { cat "$LOGDIR"/sum-load-*.log; die "loading bench_sum.t failed"; }
SAMPLE=$((ROWS < 1000000 ? ROWS : 1000000))
q -q -c "VACUUM (FREEZE, ANALYZE) bench_sum.t" \
  -c "CREATE UNLOGGED TABLE bench_sum.only_bigint AS SELECT b FROM bench_sum.t LIMIT $SAMPLE" \
  -c "CREATE UNLOGGED TABLE bench_sum.only_amount AS SELECT a FROM bench_sum.t LIMIT $SAMPLE" \
  -c "CREATE UNLOGGED TABLE bench_sum.only_numeric_text AS SELECT n, cur FROM bench_sum.t LIMIT $SAMPLE" \
  -c "VACUUM (FREEZE, ANALYZE) bench_sum.only_bigint, bench_sum.only_amount, bench_sum.only_numeric_text" ||
  die "VACUUM of bench_sum failed"
echo "   loaded in $(( $(date +%s) - t0 ))s; table $(q -c "SELECT pg_size_pretty(pg_table_size('bench_sum.t'))")"
IFS='|' read -r COL_A COL_B COL_N COL_C REL_B REL_A REL_NC < <(q -c "
  SELECT round(avg(pg_column_size(a)), 1), round(avg(pg_column_size(b)), 1), round(avg(pg_column_size(n)), 1),
         round(avg(pg_column_size(cur)), 1),
         round(pg_relation_size('bench_sum.only_bigint')::numeric / $SAMPLE, 1),
         round(pg_relation_size('bench_sum.only_amount')::numeric / $SAMPLE, 1),
         round(pg_relation_size('bench_sum.only_numeric_text')::numeric / $SAMPLE, 1)
    FROM (SELECT a, b, n, cur FROM bench_sum.t LIMIT $SAMPLE) s")

# Each query REPS times, interleaved, after one warm-up round; psql \timing.
declare -A SUMQ=([bigint]="SELECT sum(b) FROM bench_sum.t" [amount]="SELECT sum(a) FROM bench_sum.t"
                 [numeric]="SELECT sum(n) FROM bench_sum.t")
DEFAULT_WORKERS=$(q -c "SHOW max_parallel_workers_per_gather")
JIT=$(q -c "SHOW jit")
{
  echo '\o /dev/null'
  for mode in serial parallel; do
    if [ "$mode" = serial ]; then echo 'SET max_parallel_workers_per_gather = 0;'; else echo "SET max_parallel_workers_per_gather = $DEFAULT_WORKERS;"; fi
    for k in bigint amount numeric; do echo "${SUMQ[$k]};"; done
    echo '\timing on'
    for ((i = 0; i < REPS; i++)); do
      for k in bigint amount numeric; do echo "\\echo MARK $mode $k"; echo "${SUMQ[$k]};"; done
    done
    echo '\timing off'
  done
} >"$LOGDIR/sum.sql"
q -f "$LOGDIR/sum.sql" >"$LOGDIR/sum.log" 2>&1 || { cat "$LOGDIR/sum.log"; die "sum queries failed"; }
declare -A SUMMS=()
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) printf "%.1f", v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for mode in serial parallel; do
  for k in bigint amount numeric; do
    SUMMS[$mode.$k]=$(awk -v m="MARK $mode $k" '$0 == m { want = 1; next } want && /^Time: / { print $2; want = 0 }' "$LOGDIR/sum.log" | median)
    echo "   $mode sum($k): ${SUMMS[$mode.$k]} ms"
  done
done

# ---- the table ------------------------------------------------------------------------------
say "result"
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.2f", a / b }'; }
ge() { awk -v a="${1:-}" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 >= b + 0) }'; }
le() { awk -v a="${1:-}" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 <= b + 0) }'; }
num() { awk -v a="${1:-}" 'BEGIN { if (a == "") print "—"; else printf "%.0f", a }'; }
verdict() {  # verdict OK(0/1) NOTE
  local v
  if [ "$1" = 1 ]; then v=PASS; else v="below bar"; fi
  echo "$v${2:+; $2}"
}
ROWS_MD=()
row() { ROWS_MD+=("| $1 | $2 | $3 | $4 | $5 | $6 |"); }
runs() {  # runs NAME: "runs: a / b" (per-round tx/s), empty with one round
  [ "$(wc -w <<<"${RUNS[$1]:-}")" -gt 1 ] || return 0
  awk -v l="${RUNS[$1]}" 'BEGIN { n = split(l, v, " "); printf "runs:"; for (i = 1; i <= n; i++) printf "%s %.0f", (i > 1 ? " /" : ""), v[i] }'
}

R_RAW=${TPS[raw]:-}
row raw 8 "$(num "$R_RAW")" "1.00" "reference" "${NOTE[raw]:-UPDATE 2 balances (CHECK >= 0) + INSERT 2 entries, BEGIN..COMMIT}; $(runs raw)"
row "raw, 1 statement" 8 "$(num "${TPS[raw1]:-}")" "$(ratio "${TPS[raw1]:-}" "$R_RAW") × raw" "—" "${NOTE[raw1]:-info: same work, one statement}; $(runs raw1)"

r=$(ratio "${TPS[transfer]:-}" "$R_RAW")
ok=0; ge "$r" 0.9 && [ -z "${NOTE[transfer]:-}" ] && ok=1
row transfer 8 "$(num "${TPS[transfer]:-}")" "$r × raw ($(ratio "${TPS[transfer]:-}" "${TPS[raw1]:-}") × 1-stmt)" "≥ 0.90" "$(verdict $ok "$(runs transfer)${NOTE[transfer]:+; ${NOTE[transfer]:-}}")"

r=$(ratio "${TPS[hot_raw]:-}" "$R_RAW")
row "hot, plain SQL" 32 "$(num "${TPS[hot_raw]:-}")" "$r × raw ($(ratio "${TPS[hot_raw]:-}" "${TPS[transfer]:-}") × transfer)" "(0.3–0.5 expected)" "info; row = sum of entries: $HOT_RAW_OK; $(runs hot_raw)${NOTE[hot_raw]:+; ${NOTE[hot_raw]:-}}"

r=$(ratio "${TPS[hot]:-}" "${TPS[transfer]:-}")
hot_checks="$(runs hot); exact after run: $HOT_EXACT, snapshots ok $SNAP_OK/$((SNAP_OK + SNAP_BAD)), verify: ${VERIFY_BAD:-all ok}"
ok=0; ge "$r" 1.0 && [ -z "${NOTE[hot]:-}" ] && [ "$HOT_EXACT" = t ] && [ "$SNAP_BAD" = 0 ] && [ -z "$VERIFY_BAD" ] && ok=1
row hot 32 "$(num "${TPS[hot]:-}")" "$r × transfer" "≥ 1.00, exact" "$(verdict $ok "$hot_checks${NOTE[hot]:+; ${NOTE[hot]:-}}")"

if [ -n "${TPS[batch_calls]:-}" ]; then
  r=$(ratio "${TPS[batch]}" "$R_RAW")
  ok=0; ge "${TPS[batch]}" 100000 && ge "$r" 20 && [ -z "${NOTE[batch]:-}" ] && ok=1
  row "batch (×$BATCH_SIZE)" "$BATCH_CLIENTS" "$(num "${TPS[batch]}")" "$r × raw" "≥ 100000/s, ≥ 20" \
    "$(verdict $ok "$(printf '%.1f' "${TPS[batch_calls]}") calls/s${NOTE[batch]:+; ${NOTE[batch]:-}}")"
else
  row "batch (×$BATCH_SIZE)" "$BATCH_CLIENTS" "—" "—" "≥ 100000/s, ≥ 20" "${NOTE[batch]:-}"
fi

row "audit off" 8 "$(num "${TPS[audit_off]:-}")" "$(ratio "${TPS[audit_off]:-}" "$R_RAW") × raw" "—" "off = $AUDIT_OFF_WHAT; $(runs audit_off)${NOTE[audit_off]:+; ${NOTE[audit_off]:-}}"
r=$(ratio "${TPS[audit_on]:-}" "${TPS[audit_off]:-}")
ok=0; ge "$r" 0.9 && [ -z "${NOTE[audit_on]:-}" ] && ok=1
AUDIT_ON_WHAT="$AUDIT_ON_WHAT; $(awk -v n="$SEALS" -v t="$((SLICE * ROUNDS))" 'BEGIN { printf "%.1f seals/s measured", n / t }')"
row "audit on" 8 "$(num "${TPS[audit_on]:-}")" "$r × off" "≥ 0.90" "$(verdict $ok "$AUDIT_ON_WHAT; $(runs audit_on)${NOTE[audit_on]:+; ${NOTE[audit_on]:-}}")"

if [ "$LONG" = 1 ]; then
  r=$(ratio "${TPS[scale]:-}" "${TPS[transfer_again]:-}")
  ok=0; ge "$r" 0.8 && [ -z "${NOTE[scale]:-}" ] && ok=1
  row "scale ($SCALE_N accounts)" 8 "$(num "${TPS[scale]:-}")" "$r × transfer(10 k)" "≥ 0.80" \
    "$(verdict $ok "10 k side: $(num "${TPS[transfer_again]:-}") tx/s, run in turn with it, between checkpoints (every page changed once since the last: scale_sweep.sql); 10 M side prewarmed (${SCALE_PREWARM:-?}); verify: ${SCALE_VERIFY:-all ok}${NOTE[scale]:+; ${NOTE[scale]:-}}")"
  r=$(ratio "${TPS[scale_ckpt]:-}" "${TPS[transfer_ckpt]:-}")
  row "scale, right after a checkpoint" 8 "$(num "${TPS[scale_ckpt]:-}")" "$r × transfer(10 k)" "—" \
    "for reference: one run each just after CHECKPOINT (10 k side $(num "${TPS[transfer_ckpt]:-}") tx/s): the first change to each of the 10 M side's pages writes a full page to WAL${NOTE[scale_ckpt]:+; ${NOTE[scale_ckpt]:-}}"
else
  row "scale (10 M accounts)" 8 "—" "—" "≥ 0.80" "skipped (long mode: WALLET_BENCH_LONG=1)"
fi

for mode in serial parallel; do
  if [ "$mode" = serial ]; then w=0; else w=$DEFAULT_WORKERS; fi
  row "sum(bigint), $mode" "$w workers" "${SUMMS[$mode.bigint]} ms" "1.00" "reference" "median of $REPS, $ROWS rows"
  r=$(ratio "${SUMMS[$mode.amount]}" "${SUMMS[$mode.bigint]}")
  ok=0; le "$r" 1.3 && ok=1
  row "sum(amount), $mode" "$w workers" "${SUMMS[$mode.amount]} ms" "$r × bigint" "≤ 1.30" "$(verdict $ok)"
  row "sum(numeric), $mode" "$w workers" "${SUMMS[$mode.numeric]} ms" "$(ratio "${SUMMS[$mode.numeric]}" "${SUMMS[$mode.bigint]}") × bigint" "—" "info"
done

ELAPSED=$(( $(date +%s) - START_TS ))
PGVER=$(q -c "SHOW server_version")
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
GITREV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
DIRTY=$(git -C "$REPO" status --porcelain 2>/dev/null | wc -l)
{
  echo "## wallet benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  echo "Machine: $THREADS cores ($CPU), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM; PostgreSQL $PGVER;" \
       "commit $GITREV$([ "$DIRTY" = 0 ] || echo " + $DIRTY uncommitted change(s)"); pgbench -M prepared, ${SECS} s per workload," \
       "$NACC accounts, $ROUNDS rounds; shared_buffers $(q -c "SHOW shared_buffers") (huge pages: $HUGE_NOTE), fsync on, synchronous_commit on, jit $JIT; run took ${ELAPSED} s;" \
       "load average before/after: $LOAD_START / $(cut -d' ' -f1 /proc/loadavg)$(awk -v l="$LOAD_START" 'BEGIN { if (l + 0 > 0.5) printf " (other work was running: expect noise)" }')."
  echo
  echo "| workload | clients | tx/s (sum: ms) | ratio | bar | result |"
  echo "| --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${ROWS_MD[@]}"
  echo
  echo "On-disk bytes per value: amount $COL_A (column), bigint $COL_B, numeric(20,2) $COL_N + currency text $COL_C = $(awk -v a="$COL_N" -v b="$COL_C" 'BEGIN { print a + b }')." \
       "Single-column tables, heap bytes per row incl. tuple header: bigint $REL_B, amount $REL_A, numeric + text $REL_NC ($SAMPLE rows)."
} >"$LOGDIR/result.md"
cp "$LOGDIR/result.md" "$CDIR/last.md"
cat "$CDIR/last.md"
echo
echo "written to .cluster/bench/last.md; logs in $LOGDIR"
exit 0
