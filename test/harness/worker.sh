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
# hold_status DATABASE KEY; wait_expired DATABASE KEY SECONDS: polls once a
# second until the hold with that key is expired; leaves its status in $st
hold_status() { psql -X -t -A -d "$1" -c "SELECT status FROM wallet.hold WHERE idempotency_key = '$2'"; }
# wait_sealed SECONDS: polls once a second until no transaction of $DB is
# unsealed; leaves the count of unsealed ones in $unsealed
wait_sealed() {
  local deadline=$((SECONDS + $1))
  while (( SECONDS < deadline )); do
    unsealed=$(q "SELECT count(*) FROM wallet.txn t WHERE t.id > coalesce((SELECT max(journal_through) FROM wallet.audit_seal), 0)")
    [ "$unsealed" = 0 ] && return 0
    sleep 1
  done
  return 1
}
wait_expired() {
  local deadline=$((SECONDS + $3))
  while (( SECONDS < deadline )); do
    st=$(hold_status "$1" "$2")
    [ "$st" = expired ] && return 0
    sleep 1
  done
  return 1
}

preload=$(psql -X -t -A -d postgres -c "SHOW shared_preload_libraries")
if [[ "$preload" != *wallet* ]]; then
  echo "ok - worker: skipped (wallet not in shared_preload_libraries) # SKIP"
  exit 0
fi
# the server's log (scripts/cluster.sh keeps it next to the data directory)
SERVER_LOG=$(dirname "$(psql -X -t -A -d postgres -c "SHOW data_directory")")/log
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
# A step that fails on every pass must not stop the others (1.6.0
# library; before, its error ended the pass): a trigger makes every fold
# fail here, and the journal is still sealed after it.
q "CREATE FUNCTION public.fold_refused() RETURNS trigger LANGUAGE plpgsql AS
   \$\$BEGIN RAISE EXCEPTION 'fold refused by worker.sh'; END\$\$" >/dev/null
q "CREATE TRIGGER fold_refused BEFORE DELETE ON wallet.hot_pending FOR EACH ROW EXECUTE FUNCTION public.fold_refused()" >/dev/null
q "SELECT wallet.transfer(1, 2, '1 USD', 'hot-credit-2')" >/dev/null
log_before=$(wc -c <"$SERVER_LOG")
wait_sealed 30
[ "$(q "SELECT count(*) FROM wallet.hot_pending")" = 1 ] && ok "worker: a fold that fails every pass leaves its credit pending" ||
  bad "worker: the failing fold's credit is not pending"
[ "$unsealed" = 0 ] && ok "worker: ... and the journal is sealed all the same (the pass goes on after a failed step)" ||
  bad "worker: $unsealed transactions unsealed while the fold fails"
tail -c +"$((log_before + 1))" "$SERVER_LOG" | grep -q "housekeeping step failed in database \"$DB\", the pass goes on: SELECT wallet.fold_hot()" &&
  ok "worker: the failed step is in the server log" || bad "worker: no log line for the failed step"
q "DROP TRIGGER fold_refused ON wallet.hot_pending; DROP FUNCTION public.fold_refused()" >/dev/null
deadline=$((SECONDS + 20))
while (( SECONDS < deadline )); do
  [ "$(q "SELECT count(*) FROM wallet.hot_pending")" = 0 ] && break
  sleep 1
done
[ "$(q "SELECT count(*) FROM wallet.hot_pending")" = 0 ] && [ "$(q "SELECT wallet.balance(2)")" = "6.00 USD" ] &&
  ok "worker: once the fold can run again it folds (balance exact)" || bad "worker: pending credits not folded after the trigger went"

# A database default of SERIALIZABLE: the passes run READ COMMITTED all
# the same (1.6.0 library; before, sealing failed on every pass there).
q "ALTER DATABASE $DB SET default_transaction_isolation = serializable" >/dev/null
q "SELECT wallet.transfer(1, 3, '1 USD', 'under-serializable')" >/dev/null
wait_sealed 30
[ "$unsealed" = 0 ] && ok "worker: seals a database whose default isolation is SERIALIZABLE" ||
  bad "worker: $unsealed transactions unsealed under a SERIALIZABLE default"
q "ALTER DATABASE $DB RESET default_transaction_isolation" >/dev/null

n=$(psql -X -t -A -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'wallet launcher'")
[ "$n" = 1 ] && ok "worker: one launcher running" || bad "worker: $n launchers"

# More databases with the extension than worker slots (max_worker_processes
# is 8 and the launcher takes one): every one of them still gets its
# passes (the launcher starts at most a quarter of the slots at a time,
# longest-waiting database first), and the filing pass runs there too.
mw=$(psql -X -t -A -d postgres -c "SHOW max_worker_processes")
nd=$((mw + 2))
MANY=()
for i in $(seq 1 "$nd"); do MANY+=("${DB}_m$i"); done
trap 'dropdb --if-exists "$DB" >/dev/null 2>&1; for d in "${MANY[@]}"; do dropdb --if-exists "$d" >/dev/null 2>&1; done' EXIT
for d in "${MANY[@]}"; do
  createdb "$d" && psql -X -q -d "$d" -c "CREATE EXTENSION wallet" \
    -c "SELECT wallet.transfer(wallet.open_account('bank', 'USD', 'system', true), wallet.open_account('u', 'USD'), '1 USD', 'k')" >/dev/null ||
    bad "worker: set up $d"
done
deadline=$((SECONDS + 45))
while (( SECONDS < deadline )); do
  waiting=0
  for d in "${MANY[@]}"; do
    done_d=$(psql -X -t -A -d "$d" -c "SELECT (SELECT count(*) FROM wallet.audit_seal) > 0 AND wallet.history_merged_through() >= 1" 2>/dev/null)
    [ "$done_d" = t ] || waiting=$((waiting + 1))
  done
  [ "$waiting" = 0 ] && break
  sleep 1
done
[ "$waiting" = 0 ] && ok "worker: all $nd databases sealed and filed by the worker (max_worker_processes $mw)" ||
  bad "worker: $waiting of $nd databases never got a housekeeping pass in 45 s"
busy=$(psql -X -t -A -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'wallet housekeeper'")
[ "$busy" -le $(( mw / 4 > 1 ? mw / 4 : 1 )) ] && ok "worker: at most a quarter of the worker slots in use ($busy)" ||
  bad "worker: $busy housekeepers at once (max_worker_processes $mw)"

# A restore between its TABLE DATA and its SEQUENCE SET: the tables hold
# ids the sequences have not reached.  Simulated with setval: a hold due to
# expire, a gap in the audit ids (as a rolled-back write leaves), a newer
# record, then the sequence set back into the gap.  The worker must leave
# the database alone (it would write the expiry's audit record into the
# gap, inside the range a restored seal covers), and resume once the
# sequence is set again.
q "SELECT wallet.hold(1, 2, '1 USD', 'h-restoring', now() + interval '3 seconds')" >/dev/null
low=$(q "SELECT max(id) FROM wallet.audit_log")
q "SELECT count(nextval('wallet.audit_log_id_seq')) FROM generate_series(1, 5)" >/dev/null
q "SELECT wallet.freeze_account(3)" >/dev/null
q "SELECT wallet.unfreeze_account(3)" >/dev/null
high=$(q "SELECT max(id) FROM wallet.audit_log")
q "SELECT setval('wallet.audit_log_id_seq', $low)" >/dev/null
sleep 7
st=$(hold_status "$DB" h-restoring)
[ "$st" = pending ] && ok "worker: skips a database whose audit log is ahead of its sequence (hold still pending)" ||
  bad "worker: the hold is $st: the worker wrote into the audit ids of a database being restored"
q "SELECT setval('wallet.audit_log_id_seq', $high)" >/dev/null
wait_expired "$DB" h-restoring 20
[ "$st" = expired ] && ok "worker: resumes once the sequence is set (hold expired)" ||
  bad "worker: the hold is $st 20 s after the sequence was set"
[ "$(q "SELECT count(*) FROM wallet.audit_log WHERE id > $low AND id <= $low + 5")" = 0 ] &&
  ok "worker: nothing was written into the gap" || bad "worker: audit records in the gap"
# RESTART WITH max + 1 (is_called false) is a sequence set right, not one behind
q "SELECT wallet.hold(1, 2, '1 USD', 'h-restarted', now() + interval '2 seconds')" >/dev/null
q "SELECT setval('wallet.audit_log_id_seq', (SELECT max(id) + 1 FROM wallet.audit_log), false)" >/dev/null
wait_expired "$DB" h-restarted 20
[ "$st" = expired ] && ok "worker: a sequence restarted at max + 1 does not stop it (hold expired)" ||
  bad "worker: the hold is $st 20 s after the sequence was restarted at max + 1"

# A schema wallet owned by a non-superuser (possible up to 1.3.0, which
# installed into an existing schema): its owner could plant wallet.* for
# the worker, which calls the steps by name as a superuser.  The worker
# leaves such a database alone until the schema belongs to a superuser.
OWNED=${DB}_owned
trap 'dropdb --if-exists "$DB" >/dev/null 2>&1; dropdb --if-exists "$OWNED" >/dev/null 2>&1; for d in "${MANY[@]}"; do dropdb --if-exists "$d" >/dev/null 2>&1; done; psql -X -q -d postgres -c "DROP ROLE IF EXISTS wallet_worker_owner" >/dev/null 2>&1' EXIT
if [ -n "$(psql -X -t -A -d postgres -c "SELECT 1 FROM pg_available_extension_versions WHERE name = 'wallet' AND version = '1.3.0'")" ]; then
  createdb "$OWNED"
  psql -X -q -d "$OWNED" -c "DROP ROLE IF EXISTS wallet_worker_owner" -c "CREATE ROLE wallet_worker_owner" \
    -c "CREATE SCHEMA wallet AUTHORIZATION wallet_worker_owner" -c "CREATE EXTENSION wallet VERSION '1.3.0'" \
    -c "SELECT wallet.transfer(wallet.open_account('bank', 'USD', 'system', true), wallet.open_account('u', 'USD'), '5 USD', 'k')" \
    -c "SELECT wallet.hold(2, 1, '1 USD', 'h-owned', now() + interval '1 second')" >/dev/null 2>&1
  # the launcher looks at new databases every 10 naptimes: wait for its
  # first visit (the warning), then a few passes more
  deadline=$((SECONDS + 40))
  while (( SECONDS < deadline )); do
    [ -r "$SERVER_LOG" ] && grep -q "housekeeping skips database \"$OWNED\": the extension's schema" "$SERVER_LOG" && break
    sleep 1
  done
  sleep 4
  st=$(hold_status "$OWNED" h-owned)
  [ "$st" = pending ] && ok "worker: skips a database whose schema wallet a non-superuser owns (hold still pending)" ||
    bad "worker: the hold is '$st' in a database whose schema wallet a non-superuser owns"
  # it says so in the log once, not at every pass (one a second here)
  if [ -r "$SERVER_LOG" ]; then
    nwarn=$(grep -c "housekeeping skips database \"$OWNED\": the extension's schema" "$SERVER_LOG")
    [ "$nwarn" = 1 ] && ok "worker: warns once about that database, not at every pass" ||
      bad "worker: $nwarn warnings about that database in its first passes (expected 1)"
  fi
  psql -X -q -d "$OWNED" -c "ALTER SCHEMA wallet OWNER TO CURRENT_USER" >/dev/null
  wait_expired "$OWNED" h-owned 20
  [ "$st" = expired ] && ok "worker: works there once the schema belongs to a superuser" ||
    bad "worker: the hold is '$st' 20 s after the schema was given to a superuser"
fi

# The worker's queries run as the bootstrap superuser, never with the
# database's search_path: a database owner who puts public before
# pg_catalog there and plants operators the worker's queries use (<= on
# bigint, = on name) must not get them run as a superuser.
EVIL=${DB}_evil
trap 'dropdb --if-exists "$DB" >/dev/null 2>&1; dropdb --if-exists "$OWNED" >/dev/null 2>&1; dropdb --if-exists "$EVIL" >/dev/null 2>&1; for d in "${MANY[@]}"; do dropdb --if-exists "$d" >/dev/null 2>&1; done; psql -X -q -d postgres -c "DROP ROLE IF EXISTS wallet_worker_owner" -c "DROP ROLE IF EXISTS wallet_worker_downer" >/dev/null 2>&1' EXIT
psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS wallet_worker_downer" -c "CREATE ROLE wallet_worker_downer" >/dev/null
createdb -O wallet_worker_downer "$EVIL"
psql -X -q -d "$EVIL" -c "CREATE EXTENSION wallet" -c "GRANT CREATE ON SCHEMA public TO wallet_worker_downer" \
  -c "SELECT wallet.transfer(wallet.open_account('bank', 'USD', 'system', true), wallet.open_account('u', 'USD'), '1 USD', 'k')" >/dev/null
psql -X -q -d "$EVIL" >/dev/null 2>&1 <<'SQL'
SET ROLE wallet_worker_downer;
CREATE TABLE public.evil_calls (who text);
CREATE FUNCTION public.evil_le(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('is_superuser') = 'on' THEN
        INSERT INTO public.evil_calls VALUES (current_user);
    END IF;
    RETURN pg_catalog.int8le($1, $2);
END $$;
CREATE FUNCTION public.evil_eq(name, name) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('is_superuser') = 'on' THEN
        INSERT INTO public.evil_calls VALUES (current_user);
    END IF;
    RETURN pg_catalog.nameeq($1, $2);
END $$;
GRANT INSERT ON public.evil_calls TO PUBLIC;
CREATE OPERATOR public.<= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.evil_le);
CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.evil_eq);
SQL
psql -X -q -d postgres -c "ALTER DATABASE $EVIL SET search_path = public, pg_catalog" >/dev/null
sleep 14   # the launcher looks at new databases every 10 naptimes
calls=$(psql -X -t -A -d "$EVIL" -c "SELECT count(*) FROM public.evil_calls")
sealed=$(psql -X -t -A -d "$EVIL" -c "SELECT count(*) FROM wallet.audit_seal")
[ "$calls" = 0 ] && ok "worker: the database's search_path does not reach its queries (no planted operator ran as superuser)" ||
  bad "worker: a planted operator ran $calls times as a superuser"
[ "$sealed" -gt 0 ] && ok "worker: ... and it did its work there (sealed)" || bad "worker: nothing sealed in $EVIL after 14 s"
exit $fail
