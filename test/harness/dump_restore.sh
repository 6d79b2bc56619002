#!/usr/bin/env bash
# test/harness/dump_restore.sh — SPEC "Operations": pg_dump / pg_restore of
# a database using wallet restores every account, entry and audit record
# (extension configuration tables are dumped).  Owned by test/harness/.
#
# Builds a ledger with every kind of row in a fresh database (currencies
# incl. added COIN/DIAMOND, transfers, a multi-leg post, a reversal, holds
# pending/captured/voided, a hot account with unfolded credits, the live
# flows, an audited user table with a wallet.amount column, audit rows,
# seals), records a fingerprint of every wallet table and sequence, the
# digest head and wallet.verify(), then `pg_dump -Fc` and a plain
# `pg_restore -d` into a new database (no --disable-triggers: what users
# do) and checks the restored database: same rows, no extra audit records,
# verify() ok, audit_verify(old head) ok, new postings get new ids, a second
# digest works.  A second round adds a user table with a COIN (custom
# currency) amount column in schema public.  Prints TAP lines
# (`ok - ...` / `not ok - ...`) and `# ` comments; exit 1 if any failed.
#
# The housekeeping worker (when wallet is preloaded) may fold hot credits
# and seal in either database at any time: balances are compared as posted
# balance (stored + pending), seals up to the dumped ones.
#
# Env: PGHOST PGPORT PGUSER (scripts/test.sh sets them),
#      WALLET_DR_SETTLE=N (default 0; 30 with WALLET_STRESS=1): when wallet
#        is preloaded, wait up to N s for the housekeeping worker to attach
#        to the source and to the restored database, so that it runs
#        during the test,
#      WALLET_DR_DB (prefix of the databases, default wallet_dr),
#      WALLET_DR_KEEP=1 keeps the databases and the dump.
set -u
unset PGDATABASE PGOPTIONS PGSERVICE

P=${WALLET_DR_DB:-wallet_dr}
SRC=${P}_src
DST=${P}_dst
SRC2=${P}_src2
DST2=${P}_dst2
DST3=${P}_dst3
work=$(mktemp -d)
FAILED=0
BLOCKER_PID=""

cleanup() {
	if [ -n "$BLOCKER_PID" ]; then kill "$BLOCKER_PID" 2>/dev/null; wait "$BLOCKER_PID" 2>/dev/null; fi
	if [ "${WALLET_DR_KEEP:-0}" != 1 ]; then
		for d in "$SRC" "$DST" "$SRC2" "$DST2" "$DST3"; do dropdb --if-exists --force "$d" >/dev/null 2>&1 || true; done
		rm -rf "$work"
	else
		echo "# kept: databases $SRC $DST $SRC2 $DST2 $DST3, files in $work"
	fi
}
trap cleanup EXIT

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; FAILED=$((FAILED + 1)); }
comment() { sed 's/^/# /'; }
check() {  # check DESCRIPTION CONDITION-COMMAND...
	local d=$1; shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
# q DB [psql args]: run the SQL on stdin, print unaligned rows (errors too)
q() { local db=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@" -f - 2>&1; }
# v DB SQL: one value
v() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2" 2>&1; }

SETTLE=${WALLET_DR_SETTLE:-$([ "${WALLET_STRESS:-0}" = 1 ] && echo 30 || echo 0)}
PRELOADED=$(psql -X -At -d postgres -c "SELECT current_setting('shared_preload_libraries') ~ '(^|[ ,])wallet($|[ ,])'" 2>/dev/null)
settle() {  # settle DB: let the housekeeping worker reach DB (see WALLET_DR_SETTLE)
	[ "$SETTLE" -gt 0 ] && [ "$PRELOADED" = t ] || return 0
	local i
	for ((i = 0; i < SETTLE; i++)); do
		[ "$(v "$1" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'wallet housekeeper' AND datname = current_database()")" -gt 0 ] && break
		sleep 1
	done
	sleep 2
	echo "housekeeping worker on $1 after ${i}s: $(v "$1" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'wallet housekeeper' AND datname = current_database()")" | comment
}

fresh_db() {
	dropdb --if-exists --force "$1" >/dev/null 2>&1
	createdb "$1"
}

# ---------------------------------------------------------------- fingerprints

# One line per wallet table: name|rows|md5 of every row (text form, sorted).
# account: without balance (a fold moves pending credits into it), plus
# the posted balance (stored + pending) of each account; hot_pending is
# checked on its own (below); audit_seal: rows up to $2 (the seals that
# existed at dump time); account_history: rows up to the history horizon
# $3 (the housekeeping worker files the journal's tail on either side
# later); history_horizon is checked on its own.
fingerprint() {  # fingerprint DB MAX_SEAL_ID HISTORY_HORIZON
	q "$1" -v max_seal="$2" -v max_hist="$3" <<'SQL'
SELECT format($f$SELECT %L || '|' || count(*) || '|' || md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM %s t%s$f$,
              c.relname,
              CASE c.relname
                  WHEN 'account' THEN '(SELECT a.id, a.owner, a.currency, a.kind, a.allow_negative, a.status, a.hot, a.held, '
                                      'a.version, a.forced_negative, a.debt_account, a.metadata, a.created_at, '
                                      'a.balance + coalesce((SELECT sum(h.amount) FROM wallet.hot_pending h WHERE h.account_id = a.id), 0) AS posted '
                                      'FROM wallet.account a)'
                  ELSE c.oid::regclass::text END,
              CASE c.relname WHEN 'audit_seal' THEN ' WHERE t.id <= ' || :'max_seal'
                             WHEN 'account_history' THEN ' WHERE t.last_txn <= ' || :'max_hist' ELSE '' END)
  FROM pg_class c
 WHERE c.relnamespace = 'wallet'::regnamespace AND c.relkind IN ('r', 'p')
   AND c.relname NOT IN ('hot_pending', 'history_horizon')
 ORDER BY c.relname
\gexec
SQL
}

# name|last_value|is_called for every wallet sequence
seqs() {
	q "$1" <<'SQL'
SELECT format('SELECT %L || ''|'' || last_value || ''|'' || is_called FROM %s', c.relname, c.oid::regclass)
  FROM pg_class c WHERE c.relnamespace = 'wallet'::regnamespace AND c.relkind = 'S' ORDER BY c.relname
\gexec
SQL
}

user_tables() {  # md5 of the user tables' content
	q "$1" <<'SQL'
SELECT 'orders|' || count(*) || '|' || md5(string_agg(t::text, ',' ORDER BY t.id)) FROM public.orders t;
SQL
}

# ---------------------------------------------------------------- 1. the ledger

fresh_db "$SRC" || { not_ok "createdb $SRC"; exit 1; }
out=$(q "$SRC" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION wallet;
SELECT wallet.add_currency('GEM', 2, 'test gems') AS x \gset
SELECT (wallet.live_setup('COIN', 'DIAMOND', 0.5)).coin_currency AS coin \gset
SELECT wallet.open_account('alice', 'USD') AS alice \gset
SELECT wallet.open_account('bob', 'USD', 'user', false, '{"tier": "gold", "q": "it''s"}') AS bob \gset
SELECT wallet.open_account('bank', 'USD', 'system', true) AS bank \gset
SELECT wallet.open_account('eve', 'EUR') AS eve \gset
SELECT wallet.open_account('bank-eur', 'EUR', 'system', true) AS bank_eur \gset
SELECT wallet.open_account('ken', 'JPY') AS ken \gset
SELECT wallet.open_account('bank-jpy', 'JPY', 'system', true) AS bank_jpy \gset
SELECT wallet.open_account('gem-user', 'GEM') AS gem_user \gset
SELECT wallet.open_account('gem-mint', 'GEM', 'system', true) AS gem_mint \gset
SELECT wallet.open_account('viewer', 'COIN') AS viewer \gset
SELECT wallet.open_account('creator', 'DIAMOND') AS creator \gset
SELECT wallet.open_account('star', 'USD') AS star \gset
SELECT wallet.open_account('frozen-one', 'USD') AS frozen_one \gset

SELECT wallet.transfer(:bank, :alice, '500.00 USD', 'dr-fund-alice') AS t1 \gset
SELECT wallet.transfer(:bank, :bob, '200.00 USD', 'dr-fund-bob', 'deposit', '{"src": "card"}') AS t2 \gset
SELECT wallet.transfer(:alice, :bob, '12.34 USD', 'dr-a2b') AS t3 \gset
SELECT wallet.transfer(:bank_eur, :eve, '99.99 EUR', 'dr-fund-eve') AS t4 \gset
SELECT wallet.transfer(:bank_jpy, :ken, '10000 JPY', 'dr-fund-ken') AS t5 \gset
SELECT wallet.transfer(:gem_mint, :gem_user, '3.50 GEM', 'dr-gems') AS t6 \gset
SELECT wallet.post('dr-multi', ARRAY[ROW(:alice, '-10.00 USD')::wallet.leg, ROW(:bob, '7.00 USD')::wallet.leg,
                                     ROW(:bank, '3.00 USD')::wallet.leg, ROW(:eve, '-1.00 EUR')::wallet.leg,
                                     ROW(:bank_eur, '1.00 EUR')::wallet.leg], 'journal', '{"why": "multi-leg"}') AS t7 \gset
SELECT wallet.reverse(:t3, 'dr-reverse-t3', 'customer complaint') AS t8 \gset
SELECT wallet.hold(:alice, :bob, '20.00 USD', 'dr-hold-pending') AS h_pending \gset
SELECT wallet.hold(:alice, :bob, '30.00 USD', 'dr-hold-captured', NULL, 'hold', '{"order": 1}') AS h_captured \gset
SELECT wallet.capture(:h_captured, '25.00 USD') AS t9 \gset
SELECT wallet.hold(:bob, :alice, '5.00 USD', 'dr-hold-voided', now() + interval '1 year') AS h_voided \gset
SELECT wallet.void(:h_voided) AS x \gset
SELECT wallet.recharge(:viewer, '1000 COIN', '9.99 USD', 'appstore', 'dr-order-1') AS t10 \gset
SELECT wallet.gift(:viewer, :creator, '100 COIN', 'dr-gift-1', '{"stream": 7}') AS t11 \gset
SELECT wallet.freeze_account(:frozen_one) AS x \gset
SELECT wallet.set_hot(:star) AS x \gset
SELECT wallet.fold_hot() AS x \gset

CREATE TABLE public.orders (id int PRIMARY KEY, account bigint, total wallet.amount, note text);
SELECT wallet.audit_table('public.orders') AS x \gset
INSERT INTO public.orders VALUES (1, :alice, '10.00 USD', 'first'), (2, :bob, '0.01 USD', NULL);
UPDATE public.orders SET total = total + '1.00 USD' WHERE id = 1;
DELETE FROM public.orders WHERE id = 2;
INSERT INTO public.orders VALUES (3, :alice, '-5.50 USD', 'refund');

SELECT wallet.digest() AS x \gset
-- after the seal: unsealed records must survive too
SELECT wallet.transfer(:alice, :bob, '0.50 USD', 'dr-after-seal') AS t12 \gset
INSERT INTO public.orders VALUES (4, :bob, '2.00 USD', 'after seal');
SELECT :alice || ' ' || :star;
SQL
)
rc=$?
read -r ALICE STAR <<<"$(echo "$out" | tail -n 1)"
if [ "$rc" = 0 ] && [[ ${STAR:-} =~ ^[0-9]+$ ]]; then ok "ledger built in $SRC"; else not_ok "ledger built in $SRC"; echo "$out" | comment; exit 1; fi

# ---------------------------------------------------------------- 2. dump

settle "$SRC"
# Keep the hot credits pending until the dump is taken: a fold (the
# housekeeping worker) waits for this row lock; credits to a hot account
# do not need it.
psql -X -q -d "$SRC" -v ON_ERROR_STOP=1 \
	-c "SET application_name = 'wallet_dr_blocker'" \
	-c "BEGIN" -c "SELECT 1 FROM wallet.account WHERE id = $STAR FOR NO KEY UPDATE" \
	-c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
BLOCKER_PID=$!
for _ in $(seq 1 50); do
	[ "$(v "$SRC" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'wallet_dr_blocker' AND state = 'active' AND query LIKE '%pg_sleep%'")" = 1 ] && break
	sleep 0.1
done

HEAD_BEFORE=$(v "$SRC" "SELECT wallet.digest()")
# the journal so far filed per account (the credits below stay in its tail)
v "$SRC" "SELECT wallet.index_history()" >/dev/null
# credits to the hot account, left unfolded (and unsealed)
out=$(q "$SRC" <<SQL
SELECT wallet.transfer($ALICE, $STAR, '1.00 USD', 'dr-hot-1');
SELECT wallet.transfer($ALICE, $STAR, '2.00 USD', 'dr-hot-2');
SELECT wallet.transfer($ALICE, $STAR, '0.25 USD', 'dr-hot-3');
SQL
)
[ "$(echo $out | wc -w)" = 3 ] || { not_ok "credit the hot account"; echo "$out" | comment; }
kinds=$(q "$SRC" <<'SQL'
SELECT concat_ws(' ',
  (SELECT count(DISTINCT currency) FROM wallet.account) >= 6,
  (SELECT count(*) FROM wallet.custom_currencies) >= 3,
  (SELECT count(*) FROM wallet.live_config) = 1,
  EXISTS (SELECT 1 FROM wallet.txn WHERE reverses IS NOT NULL),
  EXISTS (SELECT 1 FROM wallet.entry GROUP BY txn_id HAVING count(*) >= 5),
  (SELECT array_agg(DISTINCT status ORDER BY status) FROM wallet.hold) = '{captured,pending,voided}',
  (SELECT count(*) FROM wallet.hot_pending) >= 3,
  (SELECT count(*) FROM wallet.audit_log WHERE relation = 'public.orders') >= 4,
  (SELECT count(*) FROM wallet.audit_seal) >= 1,
  (SELECT count(*) FROM wallet.account WHERE status = 'frozen') = 1,
  (SELECT count(*) FROM wallet.account_history) >= 10)
SQL
)
check "source has every kind of row (currencies, live config, reversal, multi-leg, holds, hot pending, audit, seals, filed history)" \
	test "$kinds" = "t t t t t t t t t t t"
[ "$kinds" = "t t t t t t t t t t t" ] || echo "kinds: $kinds" | comment

VERIFY_SRC=$(v "$SRC" "SELECT string_agg(check_name || '=' || ok, ' ' ORDER BY check_name) FROM wallet.verify() WHERE check_name <> 'audit: unsealed'")
check "source: wallet.verify() all ok" bash -c "! grep -q '=false' <<<'$VERIFY_SRC'"


MAXSEAL=$(v "$SRC" "SELECT coalesce(max(id), 0) FROM wallet.audit_seal")
HIST_W=$(v "$SRC" "SELECT coalesce(max(merged_through), 0) FROM wallet.history_horizon")
fingerprint "$SRC" "$MAXSEAL" "$HIST_W" >"$work/src.fp"
# every account's entries as the readers see them (filed history + tail)
account_entries_md5() { v "$1" "SELECT md5(string_agg(concat_ws('|', account_id, txn_id, units), ',' ORDER BY account_id, txn_id, units)) FROM wallet.account_entries"; }
ENTRIES_BY_ACCOUNT_SRC=$(account_entries_md5 "$SRC")
seqs "$SRC" >"$work/src.seq"
user_tables "$SRC" >"$work/src.user"
ACCOUNTS_SRC=$(v "$SRC" "SELECT md5(string_agg(concat_ws('|', id, balance, available, held, debt, status), ',' ORDER BY id)) FROM wallet.accounts")
PENDING_SRC=$(v "$SRC" "SELECT count(*) FROM wallet.hot_pending")
PENDING_MD5_SRC=$(v "$SRC" "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM wallet.hot_pending t")
AUDIT_COUNT_SRC=$(v "$SRC" "SELECT count(*) || '/' || coalesce(max(id), 0) FROM wallet.audit_log")
MAXTXN=$(v "$SRC" "SELECT max(id) FROM wallet.txn")
MAXACC=$(v "$SRC" "SELECT max(id) FROM wallet.account")
MAXHOLD=$(v "$SRC" "SELECT max(id) FROM wallet.hold")
MAXAUDIT=$(v "$SRC" "SELECT max(id) FROM wallet.audit_log")
TRIG_SRC=$(v "$SRC" "SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'public.orders'::regclass")

pg_dump -Fc -d "$SRC" -f "$work/wallet.dump" 2>"$work/dump.err"
rc=$?
PENDING_SRC_AFTER=$(v "$SRC" "SELECT count(*) FROM wallet.hot_pending")
v "$SRC" "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'wallet_dr_blocker'" >/dev/null
wait "$BLOCKER_PID" 2>/dev/null
BLOCKER_PID=""
check "pg_dump -Fc exits 0 with no error" test "$rc" = 0 -a ! -s "$work/dump.err"
[ -s "$work/dump.err" ] && comment <"$work/dump.err"
echo "dump: $(stat -c %s "$work/wallet.dump") bytes; $PENDING_SRC pending hot credits at dump time (after: $PENDING_SRC_AFTER)" | comment

DUMPED_PENDING=$(pg_restore -a -t hot_pending -f - "$work/wallet.dump" 2>/dev/null |
	awk '/^COPY wallet.hot_pending/ {on=1; next} /^\\\.$/ {on=0} on {n++} END {print n+0}')
check "the dump holds the unfolded hot credits ($DUMPED_PENDING rows)" test "$DUMPED_PENDING" = "$PENDING_SRC" -a "$PENDING_SRC" -gt 0

# ---------------------------------------------------------------- 3. restore

fresh_db "$DST" || { not_ok "createdb $DST"; exit 1; }
pg_restore -d "$DST" "$work/wallet.dump" >"$work/restore.out" 2>"$work/restore.err"
rc=$?
check "pg_restore into a new database exits 0" test "$rc" = 0
AUDIT_DST=$(v "$DST" "SELECT count(*) || ' ' || max(id) || ' ' || (SELECT count(*) FROM public.orders) FROM wallet.audit_log")
check "pg_restore reports no errors" bash -c "! grep -qi 'error' '$work/restore.err'"
[ -s "$work/restore.err" ] && head -n 40 "$work/restore.err" | comment
settle "$DST"

fingerprint "$DST" "$MAXSEAL" "$HIST_W" >"$work/dst.fp"
while IFS='|' read -r name rows sum; do
	other=$(grep "^$name|" "$work/dst.fp")
	if [ "$other" = "$name|$rows|$sum" ]; then
		ok "wallet.$name: same rows and content after restore ($rows rows)"
	else
		not_ok "wallet.$name: same rows and content after restore"
		echo "source: $name|$rows|$sum  restored: ${other:-missing}" | comment
	fi
done <"$work/src.fp"
check "no wallet table only in the restored database" test "$(cut -d'|' -f1 "$work/dst.fp")" = "$(cut -d'|' -f1 "$work/src.fp")"

check "posted and available balances identical (wallet.accounts)" \
	test "$(v "$DST" "SELECT md5(string_agg(concat_ws('|', id, balance, available, held, debt, status), ',' ORDER BY id)) FROM wallet.accounts")" = "$ACCOUNTS_SRC"
PENDING_DST=$(v "$DST" "SELECT count(*) FROM wallet.hot_pending")
if [ "$PENDING_DST" = "$PENDING_SRC" ] &&
   [ "$(v "$DST" "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM wallet.hot_pending t")" = "$PENDING_MD5_SRC" ]; then
	ok "wallet.hot_pending: same rows and content after restore ($PENDING_DST rows)"
elif [ "$PENDING_DST" -lt "$PENDING_SRC" ] && [ "$PRELOADED" = t ]; then
	# the posted balances (stored + pending) were compared above
	ok "hot pending credits restored (since folded by the housekeeping worker: $PENDING_DST left; posted balances identical)"
else
	not_ok "hot pending credits restored (source $PENDING_SRC, restored $PENDING_DST)"
fi

check "history horizon restored (at least $HIST_W)" \
	test "$(v "$DST" "SELECT coalesce(max(merged_through), 0) >= $HIST_W FROM wallet.history_horizon")" = t
check "every account's entries identical (wallet.account_entries)" \
	test "$(account_entries_md5 "$DST")" = "$ENTRIES_BY_ACCOUNT_SRC"
check "no extra audit records (count/max id $AUDIT_COUNT_SRC)" \
	test "$(v "$DST" "SELECT count(*) || '/' || coalesce(max(id), 0) FROM wallet.audit_log")" = "$AUDIT_COUNT_SRC"

seqs "$DST" >"$work/dst.seq"
while IFS='|' read -r name last called; do
	other=$(grep "^$name|" "$work/dst.seq" | cut -d'|' -f2)
	if [ "$name" = audit_seal_id_seq ]; then
		# the worker may have sealed since
		check "sequence wallet.$name restored (>= $last)" test "${other:-0}" -ge "$last"
	else
		check "sequence wallet.$name restored ($last)" test "$other" = "$last"
	fi
done <"$work/src.seq"

user_tables "$DST" >"$work/dst.user"
check "user table public.orders (wallet.amount column) restored" cmp -s "$work/src.user" "$work/dst.user"
check "its audit triggers restored ($TRIG_SRC)" \
	test "$(v "$DST" "SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'public.orders'::regclass")" = "$TRIG_SRC"

VERIFY_DST=$(v "$DST" "SELECT string_agg(check_name || '=' || ok, ' ' ORDER BY check_name) FROM wallet.verify()")
check "restored: wallet.verify() all ok" bash -c "! grep -q '=false' <<<'$VERIFY_DST' && grep -q 'audit: seal_chain=true' <<<'$VERIFY_DST'"
grep -q '=false' <<<"$VERIFY_DST" && v "$DST" "SELECT check_name || ': ' || detail FROM wallet.verify() WHERE NOT ok" | comment
AV=$(v "$DST" "SELECT string_agg(check_name || '=' || ok, ' ' ORDER BY check_name) FROM wallet.audit_verify('$HEAD_BEFORE')")
check "restored: audit_verify(head kept before the dump) all ok" test "$AV" = "audit_records=true journal_records=true known_head=true ledger_rows=true seal_chain=true unsealed=true"
[ "$AV" = "audit_records=true journal_records=true known_head=true ledger_rows=true seal_chain=true unsealed=true" ] || echo "$AV" | comment

# ---------------------------------------------------------------- 4. life goes on

out=$(q "$DST" <<SQL
SELECT wallet.transfer($ALICE, $STAR, '0.10 USD', 'dr-after-restore-1');
SELECT wallet.open_account('after-restore', 'EUR');
SELECT wallet.hold($ALICE, $STAR, '1.00 USD', 'dr-after-restore-hold');
SELECT max(id) FROM wallet.audit_log;
SQL
)
read -r NEWTXN NEWACC NEWHOLD NEWAUDIT <<<"$(echo $out)"
if [[ $NEWTXN =~ ^[0-9]+$ ]]; then
	check "a new transfer in the restored database gets a new id ($NEWTXN > $MAXTXN)" test "$NEWTXN" -gt "$MAXTXN"
	check "a new account gets a new id ($NEWACC > $MAXACC)" test "$NEWACC" -gt "$MAXACC"
	check "a new hold gets a new id ($NEWHOLD > $MAXHOLD)" test "$NEWHOLD" -gt "$MAXHOLD"
	check "new audit records get new ids ($NEWAUDIT > $MAXAUDIT)" test "$NEWAUDIT" -gt "$MAXAUDIT"
else
	not_ok "new postings in the restored database"
	echo "$out" | comment
fi
check "idempotency keys survive: a retried pre-dump request returns its first transaction" \
	test "$(v "$DST" "SELECT wallet.transfer((SELECT id FROM wallet.accounts WHERE owner = 'alice'), (SELECT id FROM wallet.accounts WHERE owner = 'bob'), '12.34 USD', 'dr-a2b')")" \
	= "$(v "$SRC" "SELECT id FROM wallet.txn WHERE idempotency_key = 'dr-a2b'")"
v "$DST" "INSERT INTO public.orders VALUES (10, 1, '3.00 USD', 'after restore')" >/dev/null
check "the restored audit trigger records a new change" \
	test "$(v "$DST" "SELECT count(*) FROM wallet.audit_log WHERE relation = 'public.orders' AND id > $MAXAUDIT AND operation = 'INSERT'")" = 1
HEAD2=$(v "$DST" "SELECT wallet.digest()")
check "a second digest in the restored database works and moves the head" \
	test "${#HEAD2}" = 64 -a "$HEAD2" != "$HEAD_BEFORE"
AV2=$(v "$DST" "SELECT string_agg(check_name || '=' || ok, ' ' ORDER BY check_name) FROM wallet.audit_verify('$HEAD_BEFORE')")
check "restored: audit_verify(old head) still ok after new seals" test "$AV2" = "audit_records=true journal_records=true known_head=true ledger_rows=true seal_chain=true unsealed=true"
check "restored: wallet.verify() all ok after new postings" \
	test "$(v "$DST" "SELECT count(*) FROM wallet.verify() WHERE NOT ok")" = 0

# ---------------------------------------------------------------- 4b. a data-only restore

# Schema first, then the data with --disable-triggers (README, Operations):
# the audited user table's rows are not audited again, and the ledger is
# the same as after the whole restore above.
fresh_db "$DST3" || { not_ok "createdb $DST3"; exit 1; }
pg_restore --schema-only -d "$DST3" "$work/wallet.dump" >/dev/null 2>"$work/restore3.err" &&
	pg_restore --data-only --disable-triggers -d "$DST3" "$work/wallet.dump" >/dev/null 2>>"$work/restore3.err"
rc=$?
check "schema-only, then data-only with --disable-triggers: exits 0" test "$rc" = 0
[ -s "$work/restore3.err" ] && comment <"$work/restore3.err"
check "... the same audit log and user rows as the whole restore ($AUDIT_DST), none recording the restore" \
	test "$(v "$DST3" "SELECT count(*) || ' ' || max(id) || ' ' || (SELECT count(*) FROM public.orders) FROM wallet.audit_log")" = "$AUDIT_DST"
AV3=$(v "$DST3" "SELECT string_agg(check_name || '=' || ok, ' ' ORDER BY check_name) FROM wallet.audit_verify('$HEAD_BEFORE')")
check "... audit_verify(head kept before the dump) all ok" test "$AV3" = "audit_records=true journal_records=true known_head=true ledger_rows=true seal_chain=true unsealed=true"
check "... and a new posting gets a new id" \
	test "$(v "$DST3" "SELECT wallet.transfer((SELECT id FROM wallet.account WHERE owner = 'bank'), (SELECT id FROM wallet.account WHERE owner = 'alice'), '1 USD', 'dr-data-only') > (SELECT max(id) FROM wallet.txn WHERE idempotency_key <> 'dr-data-only')")" = t

# ---------------------------------------------------------------- 4c. a parallel restore with the worker on

# pg_restore -j sets the sequences while other connections still load the
# tables.  The preloaded housekeeping worker used to pass its "tables not
# ahead of their sequences" check on rows not committed yet, seal the
# range over ids it could not see and move the history horizon past
# entries never filed: audit_verify() and verify() then failed for good.
# Made deterministic: everything but wallet.txn's data is restored with
# pg_restore -j 4 (sequences included), then wallet.txn's COPY is fed
# slowly, for a few of the worker's passes, by a client that is not
# pg_restore (the worker must see the COPY itself).  The dump holds a
# large unsealed, unfiled tail (an open posting keeps the sealer from
# passing it), so a pass during the load has work to do.
DST4=${P}_dst4
SRC4=${P}_src4
if [ "$PRELOADED" = t ]; then
	fresh_db "$SRC4" || { not_ok "createdb $SRC4"; exit 1; }
	out=$(q "$SRC4" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION wallet;
SELECT wallet.open_account('bank', 'USD', 'system', true) AS bank \gset
SELECT count(wallet.open_account('u' || g, 'USD')) FROM generate_series(1, 1000) g \gset
-- the open posting's accounts: none the batches lock
SELECT wallet.open_account('blk-a', 'USD', 'system', true) AS blk_a \gset
SELECT wallet.open_account('blk-b', 'USD') AS blk_b \gset
SELECT :bank || ' ' || :blk_a || ' ' || :blk_b;
SQL
)
	read -r BANK4 BLKA BLKB <<<"$(echo "$out" | tail -n 1)"
	psql -X -q -d "$SRC4" -v ON_ERROR_STOP=1 -c "SET application_name = 'wallet_dr_blocker4'" \
		-c "BEGIN" -c "SELECT wallet.transfer($BLKA, $BLKB, '1.00 USD', 'dr4-open')" \
		-c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
	BLOCKER4_PID=$!
	for _ in $(seq 1 50); do
		[ "$(v "$SRC4" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'wallet_dr_blocker4' AND query LIKE '%pg_sleep%'")" = 1 ] && break
		sleep 0.1
	done
	for b in $(seq 1 5); do
		v "$SRC4" "SELECT count(*) FROM wallet.transfer_batch(
		             (SELECT array_agg($BANK4::bigint) FROM generate_series(1, 10000)),
		             (SELECT array_agg($BANK4 + 1 + g % 1000) FROM generate_series(1, 10000) g),
		             (SELECT array_agg('0.01 USD'::wallet.amount) FROM generate_series(1, 10000)),
		             (SELECT array_agg('dr4-$b-' || g) FROM generate_series(1, 10000) g))" >/dev/null
	done
	TXN4=$(v "$SRC4" "SELECT count(*) FROM wallet.txn")
	UNSEALED4=$(v "$SRC4" "SELECT count(*) FROM wallet.txn WHERE id > coalesce((SELECT max(journal_through) FROM wallet.audit_seal), 0)")
	rm -rf "$work/par.dir"
	pg_dump -Fd -d "$SRC4" -f "$work/par.dir" 2>"$work/par_dump.err"
	rc=$?
	kill "$BLOCKER4_PID" 2>/dev/null; wait "$BLOCKER4_PID" 2>/dev/null
	echo "source: $TXN4 transactions, $UNSEALED4 of them unsealed at the dump" | comment
	fresh_db "$DST4" || { not_ok "createdb $DST4"; exit 1; }
	pg_restore -l "$work/par.dir" | grep -v 'TABLE DATA wallet txn ' >"$work/par.list"
	pg_restore -j 4 -L "$work/par.list" -d "$DST4" "$work/par.dir" >/dev/null 2>"$work/par_restore.err"
	rc2=$?
	# wallet.txn's data: the COPY runs for about 4 s (half its rows, a pause, the rest)
	pg_restore -a -t txn -f "$work/txn.sql" "$work/par.dir"
	half=$(( $(grep -n '^COPY wallet.txn' "$work/txn.sql" | cut -d: -f1) + TXN4 / 2 ))
	{ head -n "$half" "$work/txn.sql"; sleep 4; tail -n "+$((half + 1))" "$work/txn.sql"; } |
		PGAPPNAME=wallet_dr_loader psql -X -q -v ON_ERROR_STOP=1 -d "$DST4" >/dev/null 2>>"$work/par_restore.err" &
	LOADER4_PID=$!
	# housekeeping() from cron meanwhile: it must leave the database alone too
	sleep 2
	HK4=$(v "$DST4" "SET client_min_messages = warning; SELECT wallet.housekeeping()")
	wait "$LOADER4_PID"
	rc3=$?
	check "... housekeeping() called during the COPY does nothing ($HK4)" test "$HK4" = '{"skipped": "restore in progress"}'
	check "pg_restore -j 4 of all but wallet.txn's data, then a 4 s COPY of it, with the worker on: exit 0 (pg_dump $rc, pg_restore $rc2, psql $rc3)" \
		test "$rc" = 0 -a "$rc2" = 0 -a "$rc3" = 0
	[ -s "$work/par_restore.err" ] && head -n 5 "$work/par_restore.err" | comment
	# let the worker seal the restored tail
	for _ in $(seq 1 40); do
		[ "$(v "$DST4" "SELECT count(*) FROM wallet.txn WHERE id > coalesce((SELECT max(journal_through) FROM wallet.audit_seal), 0)")" = 0 ] && break
		sleep 0.25
	done
	check "... the worker sealed the restored tail afterwards ($(v "$DST4" "SELECT count(*) FROM wallet.txn") of $TXN4 transactions restored)" \
		test "$(v "$DST4" "SELECT count(*) FROM wallet.txn")" = "$TXN4" -a \
		"$(v "$DST4" "SELECT count(*) FROM wallet.txn WHERE id > coalesce((SELECT max(journal_through) FROM wallet.audit_seal), 0)")" = 0
	AV4=$(v "$DST4" "SELECT string_agg(check_name || '=' || ok, ' ' ORDER BY check_name) FROM wallet.audit_verify()")
	check "... audit_verify() all ok ($AV4)" test "$AV4" = "audit_records=true journal_records=true ledger_rows=true seal_chain=true unsealed=true"
	BAD4=$(v "$DST4" "SELECT coalesce(string_agg(check_name || ': ' || detail, '; '), '') FROM wallet.verify() WHERE NOT ok")
	check "... verify() all ok${BAD4:+ ($BAD4)}" test -z "$BAD4"
	# Only a superuser's session named pg_restore counts: any role may name
	# its session so, and would otherwise stop housekeeping at will.
	v postgres "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wallet_dr_spoof') THEN CREATE ROLE wallet_dr_spoof LOGIN; END IF; END \$\$" >/dev/null
	PGAPPNAME=pg_restore psql -X -q -U wallet_dr_spoof -d "$DST4" -c "SELECT pg_sleep(30)" >/dev/null 2>&1 &
	SPOOF_PID=$!
	PGAPPNAME=pg_restore psql -X -q -d "$DST4" -c "SELECT pg_sleep(1)" >/dev/null 2>&1 &
	SUPER_PID=$!
	for _ in $(seq 1 50); do
		[ "$(v "$DST4" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_restore' AND query LIKE '%pg_sleep%'")" = 2 ] && break
		sleep 0.05
	done
	HK_SUPER=$(v "$DST4" "SET client_min_messages = warning; SELECT wallet.housekeeping() ? 'skipped'")
	wait "$SUPER_PID"
	HK_SPOOF=$(v "$DST4" "SET client_min_messages = warning; SELECT wallet.housekeeping() ? 'skipped'")
	kill "$SPOOF_PID" 2>/dev/null; wait "$SPOOF_PID" 2>/dev/null
	v "$DST4" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'wallet_dr_spoof'" >/dev/null
	check "... a superuser's session named pg_restore stops housekeeping() (skipped: $HK_SUPER), another role's does not (skipped: $HK_SPOOF)" \
		test "$HK_SUPER" = t -a "$HK_SPOOF" = f
	dropdb --if-exists --force "$SRC4" >/dev/null 2>&1
	[ "${WALLET_DR_KEEP:-0}" = 1 ] || dropdb --if-exists --force "$DST4" >/dev/null 2>&1
	v postgres "DROP ROLE IF EXISTS wallet_dr_spoof" >/dev/null
else
	echo "# skipped: a parallel restore with the worker on (wallet is not preloaded)"
fi

# ---------------------------------------------------------------- 5. a user table in a custom currency

# pg_dump loads table data schema by schema (public before wallet): a
# public table holding COIN amounts is loaded before wallet.custom_currencies
# knows COIN.
fresh_db "$SRC2" || { not_ok "createdb $SRC2"; exit 1; }
out=$(q "$SRC2" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION wallet;
SELECT wallet.add_currency('COIN', 0, 'coins') AS x \gset
CREATE TABLE public.gift_prices (id int PRIMARY KEY, price wallet.amount NOT NULL);
INSERT INTO public.gift_prices VALUES (1, '5 COIN'), (2, '100 COIN');
SELECT wallet.audit_table('public.gift_prices') AS x \gset
UPDATE public.gift_prices SET price = '6 COIN' WHERE id = 1;
SELECT wallet.digest() IS NOT NULL;
SQL
)
if [ "$out" = t ]; then
	pg_dump -Fc -d "$SRC2" -f "$work/coin.dump" 2>"$work/coin_dump.err"
	rc=$?
	fresh_db "$DST2"
	pg_restore -d "$DST2" "$work/coin.dump" >/dev/null 2>"$work/coin_restore.err"
	rc2=$?
	rows=$(v "$DST2" "SELECT string_agg(id || '=' || price, ',' ORDER BY id) FROM public.gift_prices")
	if [ "$rc" = 0 ] && [ "$rc2" = 0 ] && [ "$rows" = "1=6 COIN,2=100 COIN" ]; then
		ok "a public table with a custom-currency (COIN) amount column dumps and restores"
	else
		# known limitation, documented in the README (Operations): the
		# workaround below is what users run; keep reporting it as TODO
		echo "not ok - a public table with a custom-currency (COIN) amount column restores in one plain pg_restore (pg_dump $rc, pg_restore $rc2) # TODO pg_dump loads schema public before wallet; see README, Operations"
		head -n 20 "$work/coin_restore.err" | comment
	fi
	check "... and the rest of that database restores (COIN registered, verify ok)" \
		test "$(v "$DST2" "SELECT (SELECT count(*) FROM wallet.custom_currencies WHERE code = 'COIN') || '/' || (SELECT count(*) FROM wallet.verify() WHERE NOT ok)")" = "1/0"
	# Workaround: restore the wallet schema's data before everything else's.
	fresh_db "$DST2"
	rc=0
	pg_restore --section=pre-data -d "$DST2" "$work/coin.dump" 2>>"$work/coin_restore2.err" || rc=1
	pg_restore --section=data -n wallet -d "$DST2" "$work/coin.dump" 2>>"$work/coin_restore2.err" || rc=1
	pg_restore --section=data -N wallet -d "$DST2" "$work/coin.dump" 2>>"$work/coin_restore2.err" || rc=1
	pg_restore --section=post-data -d "$DST2" "$work/coin.dump" 2>>"$work/coin_restore2.err" || rc=1
	rows=$(v "$DST2" "SELECT string_agg(id || '=' || price, ',' ORDER BY id) FROM public.gift_prices")
	audits=$(v "$DST2" "SELECT count(*) FROM wallet.audit_log")
	if [ "$rc" = 0 ] && [ "$rows" = "1=6 COIN,2=100 COIN" ] && [ "$audits" = "$(v "$SRC2" "SELECT count(*) FROM wallet.audit_log")" ]; then
		ok "workaround: pre-data, data of schema wallet, the other data, post-data restores the COIN table"
	else
		not_ok "workaround: pre-data, data of schema wallet, the other data, post-data restores the COIN table (rows '$rows', audit $audits)"
		head -n 20 "$work/coin_restore2.err" | comment
	fi
else
	not_ok "custom-currency source database built"
	echo "$out" | comment
fi

echo "# $FAILED failed"
[ "$FAILED" = 0 ]
