#!/usr/bin/env bash
# test/harness/demo.sh — runs demo/demo.sh, small, on a fresh database and
# checks what it reports: every wallet.verify() check ok, coins and diamonds
# conserved, the withdrawals, the chargeback's debt.  Prints TAP
# (`ok - ...` / `not ok - ...`); exits 1 on any failure.  Run by
# scripts/test.sh (harness suite) with PGHOST/PGPORT/PGUSER set.
# Env: DEMO_VIEWERS (40), DEMO_SECONDS (3), DEMO_CLIENTS (4).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
DB=wallet_demo_harness
export DEMO_VIEWERS=${DEMO_VIEWERS:-40} DEMO_SECONDS=${DEMO_SECONDS:-3} DEMO_CLIENTS=${DEMO_CLIENTS:-4}
unset PGDATABASE PGOPTIONS PGSERVICE
LOG=$(mktemp)
N=0
FAILED=0

ok() {  # ok CONDITION_STATUS DESCRIPTION [DIAGNOSTIC]
  N=$((N + 1))
  if [ "$1" = 0 ]; then
    echo "ok - $2"
  else
    FAILED=$((FAILED + 1))
    echo "not ok - $2"
    [ -n "${3:-}" ] && printf '#   %s\n' "$3"
  fi
}
q() { psql -X -At -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1; }
check() {  # check DESCRIPTION SQL: the SQL returns t
  local out
  out=$(q "$2")
  [ "$out" = t ]
  ok $? "$1" "got: $out"
}
cleanup() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
  rm -f "$LOG"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'SET client_min_messages = warning' \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null &&
  psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c 'CREATE EXTENSION wallet' >/dev/null
ok $? "fresh database with CREATE EXTENSION wallet"

START=$(date +%s)
PGDATABASE=$DB bash "$REPO/demo/demo.sh" >"$LOG" 2>&1
RC=$?
ELAPSED=$(( $(date +%s) - START ))
sed 's/^/# /' "$LOG"
ok $RC "demo/demo.sh ran (viewers $DEMO_VIEWERS, ${DEMO_SECONDS}s stream, ${ELAPSED}s in all)"
grep -q '^demo: done' "$LOG"
ok $? "demo finished and printed the report"
! grep -E '^(ERROR|FATAL|psql:)' "$LOG" | grep -v 'insufficient funds\|outstanding debt' | grep -q .
ok $? "no error in the demo output but the refused gift"
grep -q 'refused, SQLSTATE WL001' "$LOG"
ok $? "the gift after the chargeback was refused with WL001"

R="wallet.live_report()"
check "report: every wallet.verify() check ok" \
  "SELECT count(*) > 0 AND bool_and(value = 'ok') FROM $R WHERE section = 'verify'"
check "verify() itself: all ok" "SELECT bool_and(ok) FROM wallet.verify()"
check "coins conserved: issued = circulation + revenue - debt, no negative balance outside the flows" \
  "SELECT sum(units) FILTER (WHERE item = 'issued') = sum(units) FILTER (WHERE item = 'circulation')
          + sum(units) FILTER (WHERE item = 'revenue') - sum(units) FILTER (WHERE item = 'debt')
          AND sum(units) FILTER (WHERE item = 'negative balances') = 0
          AND bool_and(value = 'ok') FILTER (WHERE item = 'conserved')
     FROM $R WHERE section = 'coins'"
check "coins conserved, from the balances: every COIN account sums to 0" \
  "SELECT sum(wallet.units(balance)) = 0 FROM wallet.accounts WHERE currency = 'COIN'"
check "diamonds issued = diamonds held by creators + payout clearing" \
  "SELECT sum(units) FILTER (WHERE item = 'issued') = sum(units) FILTER (WHERE item = 'creators')
          + sum(units) FILTER (WHERE item = 'withdrawn')
          AND sum(units) FILTER (WHERE item = 'negative balances') = 0
          AND sum(units) FILTER (WHERE item = 'issued') > 0
          AND bool_and(value = 'ok') FILTER (WHERE item = 'conserved')
     FROM $R WHERE section = 'diamonds'"
check "gifts were posted, and the creators' diamonds are floor(coins x 0.5) of them" \
  "SELECT count(*) > 0 AND sum((t.metadata ->> 'diamonds')::bigint) = -(SELECT sum(e.amount) FROM wallet.entry e
            JOIN wallet.txn g ON g.id = e.txn_id AND g.kind = 'gift'
           WHERE e.account_id = (SELECT diamond_issuance FROM wallet.live_config))
          AND bool_and((t.metadata ->> 'diamonds')::bigint = floor(-e.amount * 0.5))
     FROM wallet.txn t JOIN wallet.entry e ON e.txn_id = t.id AND e.leg = 1 WHERE t.kind = 'gift'"
check "recharges in several channels and currencies" \
  "SELECT count(DISTINCT metadata ->> 'channel') = 3 AND count(DISTINCT split_part(metadata ->> 'paid', ' ', 2)) >= 8
     FROM wallet.txn WHERE kind = 'recharge'"
check "one withdrawal completed (paid to payout clearing), one cancelled" \
  "SELECT count(*) FILTER (WHERE status = 'captured') = 1 AND count(*) FILTER (WHERE status = 'voided') = 1
          AND count(*) FILTER (WHERE status = 'pending') = 0
          AND (SELECT units FROM $R WHERE section = 'diamonds' AND item = 'withdrawn')
              = sum(wallet.units(captured)) FILTER (WHERE status = 'captured')
     FROM wallet.holds WHERE kind = 'withdrawal'"
check "the chargeback clawed coins back into a debt" \
  "SELECT count(*) = 1 AND bool_and((metadata ->> 'debt_change')::bigint < 0) FROM wallet.txn WHERE kind = 'refund'"
check "the debt is recorded on the viewer's debt account and blocks spending" \
  "SELECT (SELECT units FROM $R WHERE section = 'coins' AND item = 'debt') > 0
          AND (SELECT units FROM $R WHERE section = 'coins' AND item = 'users in debt') = 1
          AND bool_and(wallet.units(a.debt) > 0 AND wallet.units(a.available) < 0 AND wallet.units(a.balance) >= 0)
     FROM wallet.accounts a JOIN wallet.account u ON u.id = a.id WHERE u.debt_account IS NOT NULL"
check "the top-up after the chargeback repaid debt first" \
  "SELECT (t.metadata ->> 'debt_repaid')::bigint > 0
          AND ((t.metadata ->> 'debt_repaid')::bigint = wallet.units((t.metadata ->> 'coins')::wallet.amount)
               OR wallet.units(a.debt) = 0)
     FROM wallet.txn t JOIN wallet.accounts a ON a.id = (t.metadata ->> 'account')::bigint
    WHERE t.idempotency_key LIKE 'wallet:recharge:%:after-chargeback-%'"
check "the replayed store order posted nothing (one transaction per order key)" \
  "SELECT count(*) = count(DISTINCT metadata ->> 'external_id') FROM wallet.txn WHERE kind = 'recharge'"
check "no hot credits left unfolded after fold_hot" \
  "SELECT NOT EXISTS (SELECT 1 FROM wallet.hot_pending)"
check "the star creator is hot and received the most diamonds" \
  "SELECT a.hot FROM wallet.account a WHERE a.kind = 'user' AND a.currency = 'DIAMOND'
    ORDER BY a.balance DESC LIMIT 1"

echo "1..$N"
[ "$FAILED" = 0 ]
