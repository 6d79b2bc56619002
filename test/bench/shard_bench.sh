#!/usr/bin/env bash
# test/bench/shard_bench.sh — body of `make bench-shard`: what the PL/Proxy
# router costs (doc/sharding.md).  Not part of SPEC's table: a reference.
#
# Starts a throwaway `shardbench` cluster (wallet preloaded), creates
# WALLET_SHARDS shard databases (wallet + wallet_shard) and a router
# (wallet_router) on it, opens WALLET_SHARD_BENCH_ACCOUNTS funded accounts
# per shard, then runs with pgbench (8 clients, WALLET_BENCH_SECONDS each):
#   node          wallet.transfer on shard 0 directly (the reference)
#   same shard    wallet.transfer through the router, both accounts on shard 0
#   cross shard   wallet.transfer through the router, shard 0 to shard 1
#   gift          wallet.gift through the router, viewers on shard 0, one hot
#                 creator on shard 1
# then runs wallet.relay() until nothing is left and the router's
# wallet.verify().  Prints one table (also .cluster/shardbench/last.md).
# All shards share one server and its 2 cores here: the figures show the
# router's overhead per call, not what N machines would do.
#
# Env: WALLET_BENCH_SECONDS (10), WALLET_SHARDS (2, a power of two),
#      WALLET_SHARD_BENCH_ACCOUNTS (1000), WALLET_SHARD_BENCH_PORT (54332),
#      WALLET_BENCH_KEEP=1 leaves the cluster running.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$REPO" || exit 1
CLUSTER="$REPO/scripts/cluster.sh"
SECS=${WALLET_BENCH_SECONDS:-10}
N=${WALLET_SHARDS:-2}
NACC=${WALLET_SHARD_BENCH_ACCOUNTS:-1000}
PORT=${WALLET_SHARD_BENCH_PORT:-54332}
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
for v in SECS N NACC PORT; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || { echo "bench-shard: $v must be a positive integer" >&2; exit 2; }
done
[ "$N" -ge 2 ] && [ $((N & (N - 1))) = 0 ] || { echo "bench-shard: WALLET_SHARDS must be a power of two >= 2" >&2; exit 2; }

bash scripts/deps.sh >/dev/null || exit 1
make -s >/dev/null && make -s install >/dev/null || { echo "bench-shard: build failed" >&2; exit 1; }
bash "$CLUSTER" destroy shardbench >/dev/null 2>&1
WALLET_PRELOAD=wallet bash "$CLUSTER" start shardbench "$PORT" >/dev/null || { echo "bench-shard: cluster did not start" >&2; exit 1; }
[ "${WALLET_BENCH_KEEP:-0}" = 1 ] || trap 'bash "$CLUSTER" stop shardbench >/dev/null 2>&1' EXIT
eval "$(bash "$CLUSTER" env shardbench)"
export PGHOST PGPORT PGUSER
unset PGDATABASE PGSERVICE
export PGOPTIONS='-c client_min_messages=warning'
WORK=$(bash "$CLUSTER" dir shardbench)
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

opts=""
for ((k = 0; k < N; k++)); do
  createdb "s$k"
  q "s$k" "CREATE EXTENSION wallet_shard CASCADE" && q "s$k" "SELECT wallet_shard.configure($k, $N)" >/dev/null
  opts+="${opts:+, }p$k 'dbname=s$k host=$PGHOST port=$PGPORT connect_timeout=10'"
done
createdb router
q router "CREATE EXTENSION wallet_router CASCADE" >/dev/null
q router "CREATE SERVER wallet_shards FOREIGN DATA WRAPPER plproxy OPTIONS (query_timeout '30', $opts)" >/dev/null
q router "CREATE USER MAPPING FOR PUBLIC SERVER wallet_shards OPTIONS (user '$PGUSER')" >/dev/null
q router "SELECT wallet.live_setup()" >/dev/null
for ((k = 0; k < N; k++)); do
  # a bank, NACC USD users and NACC COIN viewers per shard, funded on the shard itself
  q "s$k" "SELECT wallet.open_account('bank', 'USD', 'system', true);
           SELECT wallet.open_account('u' || g, 'USD') FROM generate_series(1, $NACC) g;
           SELECT wallet.open_account('v' || g, 'COIN') FROM generate_series(1, $NACC) g;" >/dev/null
  q "s$k" "SELECT count(wallet.transfer((SELECT id FROM wallet.account WHERE owner = 'bank'), a.id, '1000000 USD', 'fund-' || a.id))
             FROM wallet.account a WHERE a.owner LIKE 'u%';
           SELECT count(wallet.recharge(a.id, '1000000 COIN', '1 USD', 'bench', 'r-' || a.id))
             FROM wallet.account a WHERE a.owner LIKE 'v%'" >/dev/null
done
creator=$(q router "SELECT wallet.open_account_on(1, 'creator', 'DIAMOND')")
q router "SELECT wallet.set_hot($creator)" >/dev/null
range() { q "s$1" "SELECT min(id) || ' ' || max(id) FROM wallet.account WHERE owner LIKE '$2%'"; }
read -r u0lo u0hi < <(range 0 u)
read -r u1lo u1hi < <(range 1 u)
read -r v0lo v0hi < <(range 0 v)
bank0=$(q s0 "SELECT id FROM wallet.account WHERE owner = 'bank'")

cat >"$WORK/node.pgb" <<EOF
\set a random($u0lo, $u0hi)
\set b random($u0lo, $u0hi)
SELECT wallet.transfer(:a, CASE WHEN :a = :b THEN $bank0 ELSE :b END, '0.01 USD', 'n-' || :client_id || '-' || txid_current());
EOF
cat >"$WORK/same.pgb" <<EOF
\set a random($u0lo, $u0hi)
\set b random($u0lo, $u0hi)
SELECT wallet.transfer(:a, CASE WHEN :a = :b THEN $bank0 ELSE :b END, '0.01 USD', 's-' || :client_id || '-' || txid_current());
EOF
cat >"$WORK/cross.pgb" <<EOF
\set a random($u0lo, $u0hi)
\set b random($u1lo, $u1hi)
SELECT wallet.transfer(:a, :b, '0.01 USD', 'x-' || :client_id || '-' || txid_current());
EOF
cat >"$WORK/gift.pgb" <<EOF
\set v random($v0lo, $v0hi)
SELECT wallet.gift(:v, $creator, '2 COIN', 'g-' || :client_id || '-' || txid_current());
EOF
run() {  # run NAME DB FILE
  local out tps
  out=$("$PGBENCH" -n -c 8 -j 2 -T "$SECS" -f "$WORK/$3.pgb" "$2" 2>&1)
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n 1)
  fails=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
  printf '%s %s %s\n' "$1" "${tps:-0}" "${fails:-?}"
}
results=()
results+=("$(run node s0 node)")
results+=("$(run same router same)")
results+=("$(run cross router cross)")
results+=("$(run gift router gift)")
# drain: relay until no pair has anything open (relay() returns one row per
# pair with pending or returning messages, errors included)
for _ in $(seq 1 60); do
  open=$(q router "SELECT count(*) FROM wallet.relay()")
  [ "$open" = 0 ] && break
done
bad=$(q router "SELECT string_agg(check_name || coalesce(' (' || detail || ')', ''), ', ') FROM wallet.verify() WHERE ok IS NOT TRUE")
[ "$open" = 0 ] || bad="${bad:+$bad; }$open pair(s) still had messages open"
node_tps=$(cut -d' ' -f2 <<<"${results[0]}")
{
  echo "| workload ($N shards on one 2-core server, 8 clients, ${SECS} s) | calls/s | vs node | failed |"
  echo "| --- | --- | --- | --- |"
  for r in "${results[@]}"; do
    read -r name tps fails <<<"$r"
    case $name in
      node) label="wallet.transfer on a shard directly" ;;
      same) label="through the router, one shard" ;;
      cross) label="through the router, across shards" ;;
      gift) label="gift through the router, viewer and hot creator on two shards" ;;
    esac
    printf '| %s | %.0f | %s | %s |\n' "$label" "$tps" "$(awk -v a="$tps" -v b="$node_tps" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')" "$fails"
  done
  echo
  echo "router verify() after the relay drained: ${bad:-every check true}"
} | tee "$WORK/last.md"
