#!/usr/bin/env bash
# worker.sh — the housekeeping background worker (library preloaded by the
# test cluster) expires holds, folds hot accounts and seals the audit chain
# by itself, in a database it has never seen before.  Prints TAP lines.
set -uo pipefail
DB=wallet_worker_$$
fail=0
ok()  { echo "ok - $*"; }
bad() { echo "not ok - $*"; fail=1; }
q()   { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }

preload=$(psql -X -t -A -d postgres -c "SHOW shared_preload_libraries")
if [[ "$preload" != *wallet* ]]; then
  echo "ok - worker: skipped (wallet not in shared_preload_libraries) # SKIP"
  exit 0
fi
createdb "$DB" || { bad "createdb"; exit 1; }
trap 'dropdb --if-exists "$DB" >/dev/null 2>&1' EXIT
q "CREATE EXTENSION wallet" >/dev/null
q "SELECT wallet.open_account('a','USD'), wallet.open_account('b','USD'), wallet.open_account('bank','USD','system',true)" >/dev/null
q "SELECT wallet.transfer(3, 1, '50 USD', 'fund')" >/dev/null
q "SELECT wallet.set_hot(2)" >/dev/null
q "SELECT wallet.transfer(1, 2, '5 USD', 'hot-credit')" >/dev/null
q "SELECT wallet.hold(1, 2, '10 USD', 'h-expiring', now() + interval '1 second')" >/dev/null
[ "$(q "SELECT wallet.available(1)")" = "35.00 USD" ] && ok "worker: hold reserves funds" || bad "worker: hold reserves funds"

# the launcher scans databases every 10 naptimes; wait up to 30 s
deadline=$((SECONDS + 30))
while (( SECONDS < deadline )); do
  st=$(q "SELECT status FROM wallet.hold WHERE idempotency_key = 'h-expiring'")
  pend=$(q "SELECT count(*) FROM wallet.hot_pending")
  unsealed=$(q "SELECT count(*) FROM wallet.txn t WHERE t.id > coalesce((SELECT max(journal_through) FROM wallet.audit_seal), 0)")
  [ "$st" = expired ] && [ "$pend" = 0 ] && [ "$unsealed" = 0 ] && break
  sleep 1
done
[ "$st" = expired ] && ok "worker: expired the hold by itself" || bad "worker: hold status is $st after 30 s"
[ "$pend" = 0 ] && ok "worker: folded the hot account's pending credits" || bad "worker: $pend pending credits left"
[ "$unsealed" = 0 ] && ok "worker: sealed the journal" || bad "worker: $unsealed transactions unsealed"
[ "$(q "SELECT wallet.available(1)")" = "45.00 USD" ] && ok "worker: expiry released the funds" || bad "worker: available is $(q "SELECT wallet.available(1)")"
[ "$(q "SELECT wallet.balance(2)")" = "5.00 USD" ] && ok "worker: hot balance exact after fold" || bad "worker: hot balance wrong"
[ "$(q "SELECT bool_and(ok) FROM wallet.verify()")" = t ] && ok "worker: verify() all ok" || bad "worker: verify() failed"
n=$(psql -X -t -A -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'wallet launcher'")
[ "$n" = 1 ] && ok "worker: one launcher running" || bad "worker: $n launchers"
exit $fail
