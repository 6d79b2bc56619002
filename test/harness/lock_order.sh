#!/usr/bin/env bash
# test/harness/lock_order.sh — lock-order races found by a pgbench mix of
# the API, each run under pgbench with more clients than cores.  Both were
# deadlocks (40P01) in 1.4.0:
#   1. wallet.housekeeping() from cron, against postings that debit a hot
#      account and credit another, and holds that expire: it expired holds
#      (locking their accounts in ascending order) and then folded hot
#      accounts (a second ascending pass, holding the first's locks);
#   2. wallet.refund_recharge(R) against wallet.reverse(R): the refund
#      locked the user and then claimed the reversal link, the reversal
#      claimed the link and then waited for the user.
# And two races of wallet.reverse() of a refund (library 1.6.0, found by a
# review of its first version, which locked the refund's user and read the
# debt before it claimed its key):
#   3. a posting into the user's debt account commits while the reversal
#      waits for that account: the reversal must see the debt it left;
#   4. a reversal whose key another transaction is posting, while that
#      transaction waits for the reversal's user: no deadlock (the key is
#      claimed first, then the rows, as in every posting).
# and three a review of the second version found:
#   5. a refund committing while the reversal waits for the user opens
#      the user's first debt account: 40001, and the retry repays it;
#   6. a hot user: the reversal locks its row all the same, so a recharge
#      waiting for the user sees the debt the reversal repaid;
#   7. (a hot debt account, folded between two reads: set_hot refuses debt
#      accounts since 1.6.0, in test/pgtap/review_1_6.sql.)
# and one a last review found in recharge (1.6.0 install script):
#   8. a repayment posted to the debt account with the generic API commits
#      while a recharge of the user waits: the recharge must see the debt
#      repaid (it locks the debt account's row before it reads the debt).
# Prints TAP lines.  Needs PGHOST/PGPORT of a running cluster (make test's).
#      WALLET_STRESS=1 runs each mix 60 s instead of 8.
set -uo pipefail
SECS=$([ "${WALLET_STRESS:-0}" = 1 ] && echo 60 || echo 8)
DB=wallet_lock_order_$$
work=$(mktemp -d)
trap 'dropdb --if-exists "$DB" >/dev/null 2>&1; rm -rf "$work"' EXIT
ok()  { echo "ok - $*"; }
bad() { echo "not ok - $*"; }
q()   { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }

# run_mix NAME CLIENTS SCRIPT@WEIGHT...: pgbench for $SECS s; checks that
# transactions ran, none failed (a deadlock is a failure), and verify()
run_mix() {
  local name=$1 clients=$2 out n failed deadlocks
  shift 2
  local args=()
  for f in "$@"; do args+=(-f "$work/$f"); done
  out=$(pgbench -n -c "$clients" -j 2 -T "$SECS" --failures-detailed "${args[@]}" "$DB" 2>&1)
  n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
  deadlocks=$(sed -n 's/^number of deadlock failures: \([0-9]*\).*/\1/p' <<<"$out")
  if [ "${n:-0}" -gt 0 ] && [ "${failed:-x}" = 0 ] && ! grep -q "aborted\|ERROR" <<<"$out"; then
    ok "$name: $n transactions in $SECS s, none failed (deadlocks: ${deadlocks:-0})"
  else
    bad "$name: $n transactions, ${failed:-?} failed, ${deadlocks:-?} deadlocks"
    grep "^number of" <<<"$out" | sed 's/^/# /'
  fi
  local v
  v=$(q "SELECT string_agg(check_name, ', ') FROM wallet.verify() WHERE NOT ok")
  [ -z "$v" ] && ok "$name: verify() all ok" || bad "$name: verify() fails: $v"
}

# ---- 1. housekeeping() vs postings on a hot account and expiring holds ----
createdb "$DB" || { bad "createdb"; exit 1; }
q "CREATE EXTENSION wallet" >/dev/null
q "SELECT wallet.open_account('bank', 'USD', 'system', true), wallet.open_account('hot', 'USD'),
          wallet.open_account('a', 'USD')" >/dev/null
q "SELECT wallet.set_hot(2)" >/dev/null
q "SELECT wallet.transfer(1, 2, '100000.00 USD', 'f2'), wallet.transfer(1, 3, '100000.00 USD', 'f3')" >/dev/null
cat >"$work/credit.sql" <<'EOF'
SELECT wallet.transfer(1, 2, '0.01 USD', 'c-' || md5(random()::text));
SELECT wallet.transfer(2, 3, '0.01 USD', 'd-' || md5(random()::text));
EOF
cat >"$work/expiring.sql" <<'EOF'
SELECT wallet.hold(3, 1, '0.01 USD', 'h-' || md5(random()::text), now() - interval '1 second');
EOF
echo "SELECT wallet.housekeeping();" >"$work/housekeeping.sql"
run_mix "housekeeping() vs hot debits and expiring holds" 8 credit.sql@4 expiring.sql@2 housekeeping.sql@1
q "SELECT wallet.housekeeping()" >/dev/null
st=$(q "SELECT count(*) FROM wallet.hold WHERE status = 'pending'")
[ "$st" = 0 ] && ok "a last housekeeping() with no posting running expires every hold" ||
  bad "$st expired holds still pending after a housekeeping() with nothing running"
[ "$(q "SELECT count(*) FROM wallet.hot_pending")" = 0 ] &&
  ok "... and folds every pending credit" ||
  bad "credits still pending after a housekeeping() with nothing running"
[ "$(q "SELECT count(*) FROM wallet.hold WHERE status = 'expired'")" -gt 0 ] &&
  ok "holds expired during the run" || bad "no hold expired"
dropdb "$DB"

# ---- 2. refund_recharge(R) vs reverse(R) -----------------------------------
createdb "$DB" || { bad "createdb"; exit 1; }
q "CREATE EXTENSION wallet" >/dev/null
q "SELECT wallet.live_setup()" >/dev/null
viewer=$(q "SELECT wallet.open_account('viewer', 'COIN')")
echo "SELECT wallet.recharge($viewer, '10 COIN', '0.10 USD', 'app', md5(random()::text));" >"$work/recharge.sql"
# each claws back the newest recharge not clawed back yet; the loser of a
# race is WL010 (already reversed), which is the documented outcome
for f in refund reverse; do
  if [ "$f" = refund ]; then call="wallet.refund_recharge(r, 'chargeback')"; else call="wallet.reverse(r, md5(random()::text))"; fi
  cat >"$work/$f.sql" <<EOF
DO \$\$ DECLARE r bigint; BEGIN
  SELECT max(t.id) INTO r FROM wallet.txn t WHERE t.kind = 'recharge'
     AND NOT EXISTS (SELECT 1 FROM wallet.txn x WHERE x.reverses = t.id);
  IF r IS NOT NULL THEN PERFORM $call; END IF;
EXCEPTION WHEN SQLSTATE 'WL010' THEN NULL; END \$\$;
EOF
done
run_mix "refund_recharge(R) vs reverse(R)" 6 recharge.sql@2 refund.sql@1 reverse.sql@1
v=$(q "SELECT count(*) FROM (SELECT reverses FROM wallet.txn WHERE reverses IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d")
[ "$v" = 0 ] && ok "every recharge clawed back at most once" || bad "$v recharges clawed back twice"
[ "$(q "SELECT count(*) FROM wallet.txn WHERE reverses IS NOT NULL")" -gt 0 ] &&
  ok "claw-backs were posted" || bad "no claw-back was posted"
dropdb "$DB"

# ---- 3. and 4. reverse() of a refund: debt read under the lock, key first ----
createdb "$DB" || { bad "createdb"; exit 1; }
q "CREATE EXTENSION wallet" >/dev/null
q "SELECT wallet.live_setup()" >/dev/null
bank=$(q "SELECT wallet.open_account('coin-bank', 'COIN', 'system', true)")
low=$(q "SELECT wallet.open_account('low', 'COIN')")
cr=$(q "SELECT wallet.open_account('creator', 'DIAMOND')")
# refund $1 of a user $2 who spent everything: debt -$3
indebted() {
  local u r
  u=$(q "SELECT wallet.open_account('$1', 'COIN')")
  r=$(q "SELECT wallet.recharge($u, '$2 COIN', '1.00 USD', 'lo', '$1')")
  q "SELECT wallet.gift($u, $cr, '$2 COIN', 'g-$1')" >/dev/null
  echo "$u $(q "SELECT wallet.refund_recharge($r, 'chargeback')")"
}
read -r u3 rf3 <<<"$(indebted u3 20)"
d3=$(q "SELECT debt_account FROM wallet.account WHERE id = $u3")
psql -X -q -At -d "$DB" -c "BEGIN" -c "SELECT wallet.transfer($bank, $d3, '10 COIN', 'pay-debt-3')" \
     -c "SELECT pg_sleep(2)" -c "COMMIT" >"$work/s3a.out" 2>&1 &
sleep 0.5
out=$(psql -X -q -At -d "$DB" -c "SELECT wallet.reverse($rf3, 'rv3')" 2>&1)
wait
got=$(q "SELECT wallet.units(wallet.balance($u3)) || ' ' || wallet.units(wallet.balance($d3))")
if [ "$got" = "10 0" ]; then
  ok "reverse() of a refund while 10 of its 20 debt are paid in a concurrent transaction: user 10, debt 0"
else bad "reverse() of a refund while 10 of its 20 debt are paid concurrently: user and debt '$got', want '10 0'"; echo "$out" | sed 's/^/# /'; fi

read -r u4 rf4 <<<"$(indebted u4 5)"
[ "$low" -lt "$u4" ] || bad "set-up: the account 'low' must sort before the user"
psql -X -q -At -d "$DB" -c "BEGIN" -c "SELECT wallet.transfer($bank, $low, '1 COIN', 's3-dl')" \
     -c "SELECT pg_sleep(2)" -c "COMMIT" >"$work/s4a.out" 2>&1 &
sleep 0.4
psql -X -q -At -v VERBOSITY=verbose -d "$DB" -c "SELECT wallet.post('kx-dl', ARRAY[ROW($bank, '-2 COIN'), ROW($low, '1 COIN'), ROW($u4, '1 COIN')]::wallet.leg[])" >"$work/s4b.out" 2>&1 &
sleep 0.4
psql -X -q -At -v VERBOSITY=verbose -d "$DB" -c "SELECT wallet.reverse($rf4, 'kx-dl')" >"$work/s4c.out" 2>&1
wait
if ! grep -q '40P01' "$work"/s4?.out && grep -q '^[0-9]*$' "$work/s4b.out" && grep -q 'WL006' "$work/s4c.out"; then
  ok "a reversal of a refund whose key a posting holds while it waits for the user: no deadlock, the reversal gets WL006"
else bad "reversal of a refund vs a posting with the same key: want no 40P01, the post posted, the reversal WL006"
  cat "$work"/s4?.out | sed 's/^/# /'; fi

# 5. user u5: refund f1 of recharge 1 took 100 (no debt), then the user
# spends the other 100; a refund of recharge 2 (debt 100, the first debt
# account) commits while the reversal of f1 waits
u5=$(q "SELECT wallet.open_account('u5', 'COIN')")
r51=$(q "SELECT wallet.recharge($u5, '100 COIN', '1.00 USD', 'lo', 'u5-1')")
r52=$(q "SELECT wallet.recharge($u5, '100 COIN', '1.00 USD', 'lo', 'u5-2')")
f51=$(q "SELECT wallet.refund_recharge($r51, 'x')")
q "SELECT wallet.gift($u5, $cr, '100 COIN', 'g-u5')" >/dev/null
psql -X -q -At -d "$DB" -c "BEGIN" -c "SELECT wallet.refund_recharge($r52, 'y')" \
     -c "SELECT pg_sleep(2)" -c "COMMIT" >"$work/s5a.out" 2>&1 &
sleep 0.5
psql -X -q -At -v VERBOSITY=verbose -d "$DB" -c "SELECT wallet.reverse($f51, 'rv5')" >"$work/s5b.out" 2>&1
wait
psql -X -q -At -v VERBOSITY=verbose -d "$DB" -c "SELECT wallet.reverse($f51, 'rv5')" >"$work/s5c.out" 2>&1
got=$(q "SELECT string_agg(kind || ' ' || wallet.units(balance), ', ' ORDER BY kind DESC) FROM wallet.accounts WHERE owner = 'u5'")
if grep -q '40001' "$work/s5b.out" && grep -q '^[0-9]*$' "$work/s5c.out" && [ "$got" = "user 0, debt 0" ]; then
  ok "a refund opening the user's first debt account while the reversal of another waits: 40001, the retry repays the debt (user 0, debt 0)"
else bad "reversal vs a refund opening the first debt account: want 40001, then the retry posts and user 0, debt 0; got '$got'"
  cat "$work"/s5?.out | sed 's/^/# /'; fi

# 6. a hot user in debt 100: the reversal (100) commits while a recharge of
# 100 waits for the user; the recharge must find no debt
read -r u6 rf6 <<<"$(indebted u6 100)"
q "SELECT wallet.set_hot($u6)" >/dev/null
psql -X -q -At -d "$DB" -c "BEGIN" -c "SELECT wallet.reverse($rf6, 'rv6')" \
     -c "SELECT pg_sleep(2)" -c "COMMIT" >"$work/s6a.out" 2>&1 &
sleep 0.5
psql -X -q -At -d "$DB" -c "SELECT wallet.recharge($u6, '100 COIN', '1.00 USD', 'lo', 'u6-2')" >"$work/s6b.out" 2>&1
wait
q "SELECT wallet.fold_hot($u6)" >/dev/null
got=$(q "SELECT string_agg(kind || ' ' || wallet.units(balance), ', ' ORDER BY kind DESC) FROM wallet.accounts WHERE owner = 'u6'")
if [ "$got" = "user 100, debt 0" ]; then
  ok "a hot user: a recharge waiting for the reversal of a refund finds the debt it repaid (user 100, debt 0)"
else bad "a hot user, recharge vs the reversal of a refund: want user 100, debt 0; got '$got'"
  cat "$work"/s6?.out | sed 's/^/# /'; fi

# 8. user u8 owes 10; a generic posting repays it while a recharge waits
read -r u8 rf8 <<<"$(indebted u8 10)"
d8=$(q "SELECT debt_account FROM wallet.account WHERE id = $u8")
iss=$(q "SELECT coin_issuance FROM wallet.live_config")
psql -X -q -At -d "$DB" -c "BEGIN" -c "SELECT wallet.post('repay-8', ARRAY[ROW($d8, '10 COIN'), ROW($iss, '-10 COIN')]::wallet.leg[])" \
     -c "SELECT pg_sleep(2)" -c "COMMIT" >"$work/s8a.out" 2>&1 &
sleep 0.5
psql -X -q -At -d "$DB" -c "SELECT wallet.recharge($u8, '10 COIN', '0.10 USD', 'lo', 'u8-2')" >"$work/s8b.out" 2>&1
wait
got=$(q "SELECT string_agg(kind || ' ' || wallet.units(balance), ', ' ORDER BY kind DESC) FROM wallet.accounts WHERE owner = 'u8'")
if [ "$got" = "user 10, debt 0" ]; then
  ok "a recharge waiting for a repayment posted to the debt account sees the debt repaid (user 10, debt 0)"
else bad "a recharge vs a repayment posted to the debt account: want user 10, debt 0; got '$got'"
  cat "$work"/s8?.out | sed 's/^/# /'; fi

v=$(q "SELECT string_agg(check_name, ', ') FROM wallet.verify() WHERE NOT ok")
[ -z "$v" ] && ok "reversals of refunds: verify() all ok" || bad "reversals of refunds: verify() fails: $v"
v=$(q "SELECT count(*) FROM wallet.account WHERE kind = 'debt' AND balance > 0")
[ "$v" = 0 ] && ok "reversals of refunds: no debt account holds coins" || bad "$v debt accounts hold coins"
exit 0
