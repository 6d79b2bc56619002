#!/usr/bin/env bash
# demo/demo.sh — a live stream on the wallet extension, run by `make run`
# (scripts/run.sh exports PGHOST/PGPORT/PGUSER/PGDATABASE after a fresh
# CREATE EXTENSION wallet).  Uses only the installed extension and pgbench.
#
#   1. wallet.live_setup()
#   2. viewers open coin accounts and buy coin packs through apple /
#      google / web in eight currencies (demo/setup.sql); three creators,
#      the star's account hot
#   3. the stream: gifts (demo/gift.pgbench) and top-ups
#      (demo/recharge.pgbench) from several connections at once (pgbench)
#   4. a store replays an order (idempotent), a creator withdraws, another
#      cancels, a chargeback arrives after the viewer spent the coins (debt)
#   5. fold_hot, then the report: a leaderboard and wallet.live_report()
#
# Each run adds its own cast (owners tagged with the run), so it can run
# again on the same database.  Env: DEMO_VIEWERS (300), DEMO_SECONDS (15),
# DEMO_CLIENTS (8).
set -euo pipefail

DEMO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
VIEWERS=${DEMO_VIEWERS:-300}
SECS=${DEMO_SECONDS:-15}
CLIENTS=${DEMO_CLIENTS:-8}
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
[ -x "$PGBENCH" ] || PGBENCH=pgbench
for v in VIEWERS SECS CLIENTS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "demo: $v must be a positive number" >&2; exit 2; }
done
TAG=$(date +%s)$$
START=$(date +%s)

psql_() { psql -X -q -v ON_ERROR_STOP=1 -v tag="$TAG" -v viewers="$VIEWERS" "$@"; }
step() { printf '\n== %s ==\n' "$*"; }

step "1. the platform: coins, diamonds, system accounts"
psql_ -c "SELECT coin_currency AS coins, diamond_currency AS diamonds, creator_share AS \"creator share\"
            FROM wallet.live_setup('COIN', 'DIAMOND', 0.5)"

step "2. $VIEWERS viewers buy coins before the stream"
psql_ -f "$DEMO/setup.sql" -o /dev/null
psql_ <<SQL
SELECT a.metadata ->> 'channel' AS channel, a.metadata ->> 'currency' AS currency,
       count(DISTINCT a.id) AS viewers, count(*) AS orders,
       sum(wallet.units((t.metadata ->> 'coins')::wallet.amount)) AS coins,
       wallet.sum((t.metadata ->> 'paid')::wallet.amount) AS paid
  FROM wallet.account a
  JOIN wallet.txn t ON t.kind = 'recharge' AND (t.metadata ->> 'account')::bigint = a.id
 WHERE a.owner LIKE 'viewer:$TAG:%'
 GROUP BY 1, 2 ORDER BY 1, 2;
SQL
read -r STAR KAI MIA < <(psql_ -At -F ' ' -c "SELECT
    (SELECT id FROM wallet.account WHERE owner = 'creator:$TAG:luna'),
    (SELECT id FROM wallet.account WHERE owner = 'creator:$TAG:kai'),
    (SELECT id FROM wallet.account WHERE owner = 'creator:$TAG:mia')")
echo "creators: luna (the star, hot account) #$STAR, kai #$KAI, mia #$MIA"

step "3. live: $CLIENTS connections send gifts (and top up) for ${SECS}s"
GIFTS_BEFORE=$(psql_ -At -c "SELECT count(*) FROM wallet.txn WHERE kind = 'gift'")
BENCH_OUT=$(mktemp)
trap 'rm -f "$BENCH_OUT"' EXIT
set +e
"$PGBENCH" -n -c "$CLIENTS" -j 2 -T "$SECS" -P 2 --max-tries=10 \
  -D tag="$TAG" -D viewers="$VIEWERS" -D star="$STAR" -D kai="$KAI" -D mia="$MIA" \
  -f "$DEMO/gift.pgbench@95" -f "$DEMO/recharge.pgbench@5" >"$BENCH_OUT" 2>&1
RC=$?
set -e
grep -E '^progress:' "$BENCH_OUT" || true
if [ "$RC" != 0 ]; then
  cat "$BENCH_OUT"
  echo "demo: pgbench failed (exit $RC)" >&2
  exit 1
fi
ATTEMPTS=$(awk '/^SQL script 1:/ { s = 1; next } s && /^ - [0-9]+ transactions/ { print $2; exit }' "$BENCH_OUT")
grep -E '^(number of transactions actually processed|number of failed|number of transactions retried|latency average|tps)' "$BENCH_OUT" || true
psql_ -At <<SQL
SELECT format('gifts: %s sent, %s posted, %s declined (viewer out of coins); mid-stream top-ups: %s',
              ${ATTEMPTS:-0}, n, ${ATTEMPTS:-0} - n,
              (SELECT count(*) FROM wallet.txn WHERE kind = 'recharge' AND metadata ->> 'external_id' LIKE 'order-%'))
  FROM (SELECT count(*) - $GIFTS_BEFORE AS n FROM wallet.txn WHERE kind = 'gift') s;
SQL

step "4. after the stream"
psql_ 2>&1 <<SQL
\set QUIET on
-- a store retries an order: the same transaction comes back, nothing is posted
SELECT t.metadata ->> 'channel' AS channel, t.metadata ->> 'external_id' AS "store order",
       wallet.recharge((t.metadata ->> 'account')::bigint, (t.metadata ->> 'coins')::wallet.amount,
                       (t.metadata ->> 'paid')::wallet.amount, t.metadata ->> 'channel',
                       t.metadata ->> 'external_id') = t.id AS "replay returns the first transaction",
       (SELECT count(*) FROM wallet.txn WHERE idempotency_key = t.idempotency_key) AS "times posted"
  FROM wallet.txn t
 WHERE t.kind = 'recharge' AND t.metadata ->> 'external_id' LIKE '%-$TAG-%'
 ORDER BY t.id LIMIT 1;

-- kai withdraws half of his diamonds and is paid; mia asks, then cancels
SELECT wallet.request_withdrawal($KAI, wallet.amount(greatest(wallet.units(wallet.available($KAI)) / 2, 1), 'DIAMOND'),
                                 'withdraw:kai:$TAG') AS kai_hold \gset
SELECT 'kai' AS creator, amount AS "withdrawal requested", wallet.balance($KAI) AS balance,
       wallet.available($KAI) AS available FROM wallet.holds WHERE id = :kai_hold;
SELECT wallet.complete_withdrawal(:kai_hold) AS kai_payout \gset
SELECT 'kai' AS creator, (SELECT kind FROM wallet.txn WHERE id = :kai_payout) AS "paid out by",
       wallet.balance($KAI) AS balance, wallet.available($KAI) AS available,
       wallet.balance((SELECT payout_clearing FROM wallet.live_config)) AS "payout clearing";
SELECT wallet.request_withdrawal($MIA, wallet.amount(greatest(wallet.units(wallet.available($MIA)) / 3, 1), 'DIAMOND'),
                                 'withdraw:mia:$TAG') AS mia_hold \gset
SELECT wallet.cancel_withdrawal(:mia_hold) \gset
SELECT 'mia' AS creator, amount AS "withdrawal cancelled", status, wallet.balance($MIA) AS balance,
       wallet.available($MIA) AS available FROM wallet.holds WHERE id = :mia_hold;

-- a chargeback arrives for the recharge whose coins are most spent
SELECT t.id AS cb_tx, (t.metadata ->> 'account')::bigint AS cb_viewer, a.owner AS cb_owner
  FROM wallet.txn t JOIN wallet.account a ON a.id = (t.metadata ->> 'account')::bigint
 WHERE t.kind = 'recharge' AND a.owner LIKE 'viewer:$TAG:%'
   AND NOT EXISTS (SELECT 1 FROM wallet.txn r WHERE r.idempotency_key = 'wallet:refund:' || t.id)
 ORDER BY wallet.units((t.metadata ->> 'coins')::wallet.amount) - wallet.units(wallet.balance(a.id)) DESC, t.id
 LIMIT 1 \gset
SELECT :'cb_owner' AS viewer, t.metadata ->> 'coins' AS recharged, t.metadata ->> 'paid' AS paid,
       t.metadata ->> 'channel' AS channel, wallet.balance(:cb_viewer) AS "coins left"
  FROM wallet.txn t WHERE t.id = :cb_tx;
SELECT wallet.refund_recharge(:cb_tx, 'chargeback: card reported stolen') AS refund_tx \gset
SELECT metadata ->> 'coins' AS "clawed back", metadata ->> 'from_account' AS "from the account",
       -(metadata ->> 'debt_change')::bigint AS "into debt"
  FROM wallet.txn WHERE id = :refund_tx;
SELECT balance, held, debt, available FROM wallet.accounts WHERE id = :cb_viewer;
SELECT wallet.refund_recharge(:cb_tx, 'store retried the notification') = :refund_tx AS "refund retry returns the first";
\set ON_ERROR_STOP off
\set SHOW_CONTEXT never
\echo 'the viewer tries to send a rose:'
SELECT wallet.gift(:cb_viewer, $STAR, '1 COIN', 'gift:after-chargeback:$TAG');
\echo 'refused, SQLSTATE' :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP on
-- a small top-up repays part of the debt first
SELECT wallet.recharge(:cb_viewer, '70 COIN', (metadata -> 'packs' ->> '70')::wallet.amount,
                       metadata ->> 'channel', 'after-chargeback-$TAG') AS topup
  FROM wallet.account WHERE id = :cb_viewer \gset
SELECT metadata ->> 'coins' AS "top-up", metadata ->> 'debt_repaid' AS "debt repaid",
       (SELECT balance FROM wallet.accounts WHERE id = :cb_viewer) AS balance,
       (SELECT debt FROM wallet.accounts WHERE id = :cb_viewer) AS "debt left"
  FROM wallet.txn WHERE id = :topup;
SQL

step "5. fold hot accounts, then the report"
psql_ -At -c "SELECT format('wallet.fold_hot(): %s pending credits folded into balances', wallet.fold_hot())"
psql_ <<SQL
\pset footer off
SELECT c.owner AS creator, c.hot, c.balance AS diamonds, count(*) AS gifts,
       sum(wallet.units(e.amount)) AS "diamonds from gifts"
  FROM wallet.accounts c
  JOIN wallet.entries e ON e.account_id = c.id
  JOIN wallet.txn t ON t.id = e.txn_id AND t.kind = 'gift'
 WHERE c.id IN ($STAR, $KAI, $MIA)
 GROUP BY c.id, c.owner, c.hot, c.balance ORDER BY 5 DESC;
SELECT a.owner AS "top gifters", a.metadata ->> 'country' AS country, -sum(wallet.units(e.amount)) AS "coins sent",
       count(*) AS gifts
  FROM wallet.entries e JOIN wallet.txn t ON t.id = e.txn_id AND t.kind = 'gift'
  JOIN wallet.account a ON a.id = e.account_id AND a.owner LIKE 'viewer:$TAG:%'
 GROUP BY a.id, a.owner, a.metadata ORDER BY 3 DESC, a.id LIMIT 5;
SELECT section, item, value FROM wallet.live_report();
SQL
echo
echo "demo: done in $(( $(date +%s) - START ))s"
