#!/usr/bin/env bash
# test/harness/concurrency.sh — the concurrency harness: no deadlock, no
# overdraft, no lost or doubled posting.  Owned by test/harness/.
#
# Builds test/harness/wallet_storm (gitignored) when stale, creates a fresh
# database (WALLET_STORM_DB, default wallet_storm) with CREATE EXTENSION
# wallet, opens and funds the accounts, runs each wallet_storm mode (mixed,
# retry, hot, holds; batch once wallet.transfer_batch exists), then checks the
# database and prints one TAP line per check (`ok - ...` / `not ok - ...`)
# and `# ` comment lines (throughput per mode, failure details).  Exit 1 if
# any check failed.  The database is dropped at the end, as a check: with
# the wallet housekeeper connected (library preloaded) a plain DROP is
# refused, so WITH (FORCE) follows, and a witness session must survive it
# (no crash-restart).  WALLET_STORM_KEEP=1 keeps the database.
#
# Env: PGHOST PGPORT PGUSER (the cluster; scripts/test.sh sets them),
#      WALLET_STRESS=1 (long run, ~5 min of load instead of ~26 s),
#      WALLET_STORM_SEED (default: from the clock, printed),
#      WALLET_STORM_DB, WALLET_STORM_KEEP.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
DB=${WALLET_STORM_DB:-wallet_storm}
SEED=${WALLET_STORM_SEED:-$(($(date +%s) % 1000000))}
TAG="s$SEED"
BIN="$here/wallet_storm"
SRC="$here/wallet_storm.c"
unset PGDATABASE PGOPTIONS

if [ "${WALLET_STRESS:-0}" = 1 ]; then
	# mode clients seconds: about 5 minutes of load
	RUNS=("mixed 16 90" "retry 16 40" "hot 32 90" "holds 16 40")
	BATCH_RUN="batch 8 40"
else
	RUNS=("mixed 16 8" "retry 16 4" "hot 32 6" "holds 16 4")
	BATCH_RUN="batch 8 4"
fi

work=$(mktemp -d)
FAILED=0
DROPPED=0
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {  # early exits; the normal end drops the database as a check
	if [ "${WALLET_STORM_KEEP:-0}" != 1 ] && [ "$DROPPED" = 0 ]; then
		dropdb --if-exists "$DB" >/dev/null 2>&1 || dropdb --if-exists --force "$DB" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; FAILED=$((FAILED + 1)); }
comment() { sed 's/^/# /'; }

# q: run the SQL on stdin (psql variables allowed), print unaligned rows
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@" -f - 2>&1; }

# expect_zero TEXT SQL [DETAIL_SQL]: ok when SQL returns 0; otherwise show
# the value and up to 10 rows of DETAIL_SQL
expect_zero() {
	local text=$1 v
	v=$(q <<<"$2")
	if [ "$v" = 0 ]; then
		ok "$text"
	else
		not_ok "$text (got: ${v//$'\n'/ })"
		if [ -n "${3:-}" ]; then q <<<"$3 LIMIT 10" | comment; fi
	fi
}

# ---- build ------------------------------------------------------------------
if [ ! -x "$BIN" ] || [ "$SRC" -nt "$BIN" ] || [ "$here/harness_util.h" -nt "$BIN" ] || [ "${BASH_SOURCE[0]}" -nt "$BIN" ]; then
	if ! cc -O2 -g -std=gnu11 -Wall -Wextra -Werror -I"$(pg_config --includedir)" \
		-o "$BIN" "$SRC" -lpq -lpthread >"$work/build.log" 2>&1; then
		comment <"$work/build.log"
		not_ok "build wallet_storm"
		exit 1
	fi
fi
echo "# seed $SEED (WALLET_STORM_SEED=$SEED reproduces the choices)"

# ---- database and accounts --------------------------------------------------
dropdb --if-exists "$DB" >/dev/null 2>&1
if ! createdb "$DB" >"$work/setup.log" 2>&1 ||
	! q >>"$work/setup.log" <<'SQL'
CREATE EXTENSION wallet;
CREATE SCHEMA storm;
CREATE TABLE storm.keys (mode text, key text NOT NULL, txn_id bigint NOT NULL);
CREATE TABLE storm.deltas (mode text, account_id bigint NOT NULL, units bigint NOT NULL);
-- the bank is the counter-party of all funding: it may go negative
SELECT wallet.open_account('storm bank', 'USD', 'storm_bank', true);
SELECT count(wallet.open_account('storm ' || k || ' ' || i, 'USD', k))
  FROM (VALUES ('storm_few', 6), ('storm_many', 2000), ('storm_retry', 50),
               ('storm_hot', 1), ('storm_fee', 1), ('storm_viewer', 200)) v(k, n),
       generate_series(1, v.n) i;
-- minor units: few 100.00, many 5.00 (WL001 happens), retry and viewers
-- plenty (WL001 must not happen there), hot and fee start at zero
SELECT count(wallet.transfer(b.id, a.id, wallet.amount(f.units, 'USD'), 'setup/' || a.id))
  FROM wallet.account a
  JOIN (VALUES ('storm_few', 10000::bigint), ('storm_many', 500),
               ('storm_retry', 100000000), ('storm_viewer', 10000000)) f(kind, units)
    ON f.kind = a.kind
 CROSS JOIN (SELECT id FROM wallet.account WHERE kind = 'storm_bank') b;
SELECT wallet.set_hot(id) FROM wallet.account WHERE kind IN ('storm_hot', 'storm_fee');
SQL
then
	comment <"$work/setup.log"
	not_ok "create database $DB with the wallet extension and the storm accounts"
	exit 1
fi
ok "create database $DB with the wallet extension and the storm accounts"

has_function() {
	[ "$(q <<<"SELECT count(*) FROM pg_proc WHERE oid::regproc::text = 'wallet.$1'")" != 0 ]
}
# modes whose API is still being written run once it exists
if has_function transfer_batch; then
	RUNS+=("$BATCH_RUN")
else
	echo "# skip batch mode: wallet.transfer_batch does not exist yet"
fi

# ---- load -------------------------------------------------------------------
summary_field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"$1"; }
business() {  # "N WL001, N WL008" from a summary line, nonzero ones only
	local c v out=""
	for c in wl001 wl006 wl008 wl010; do
		v=$(summary_field "$1" "$c")
		[ "${v:-0}" = 0 ] || out="$out${out:+, }$v ${c^^}"
	done
	echo "${out:-none}"
}

run_mode() {
	local mode=$1 clients=$2 secs=$3 rc out line v
	timeout -k 10 $((secs + 180)) "$BIN" -d "dbname=$DB" -m "$mode" -c "$clients" -s "$secs" \
		--seed "$SEED" -t "$TAG" -k "$work/$mode.keys" -D "$work/$mode.deltas" \
		>"$work/$mode.out" 2>"$work/$mode.err"
	rc=$?
	comment <"$work/$mode.err"
	out=$(cat "$work/$mode.out")
	line=$(grep '^mode=' <<<"$out" | tail -n 1)
	grep '^# ' <<<"$out"
	if [ -z "$line" ]; then
		not_ok "$mode: wallet_storm finished (exit $rc${rc/#124/: timeout, a hang?})"
		return
	fi
	echo "# $line"
	v=$(summary_field "$line" deadlocks)
	if [ "$v" = 0 ]; then ok "$mode: no deadlock"; else not_ok "$mode: no deadlock ($v deadlocks)"; fi
	v=$(summary_field "$line" unexpected)
	if [ "$v" = 0 ]; then
		ok "$mode: no unexpected error (business errors as intended: $(business "$line"))"
	else
		not_ok "$mode: no unexpected error ($v unexpected)"
	fi
	v=$(summary_field "$line" check_failures)
	case $mode in
		retry) what="one id per key across clients, exactly one winner per conflicting key" ;;
		hot) what="hot balance exact after each commit, never negative, exact after the run" ;;
		holds) what="each hold ended at most once, available balances never negative" ;;
		*) what="client-side checks" ;;
	esac
	if [ "$v" = 0 ]; then ok "$mode: $what"; else not_ok "$mode: $what ($v failures)"; fi
	[ "$rc" = 0 ] || [ "$rc" = 1 ] || not_ok "$mode: wallet_storm exit status $rc"
	echo "# $mode: $(summary_field "$line" postings_per_s) postings/s ($clients clients, ${secs}s, $(nproc) cores)"

	if ! q -v mode="$mode" -v keys="$work/$mode.keys" -v deltas="$work/$mode.deltas" \
		>"$work/load.log" <<'SQL'
\set copy_keys '\\copy storm.keys (key, txn_id) FROM ' :'keys' ' WITH (DELIMITER '' '')'
\set copy_deltas '\\copy storm.deltas (account_id, units) FROM ' :'deltas' ' WITH (DELIMITER '' '')'
:copy_keys
:copy_deltas
UPDATE storm.keys SET mode = :'mode' WHERE mode IS NULL;
UPDATE storm.deltas SET mode = :'mode' WHERE mode IS NULL;
SQL
	then
		comment <"$work/load.log"
		not_ok "$mode: load the returned keys"
		return
	fi
	expect_zero "$mode: every returned key is in wallet.txn with the returned id" \
		"SELECT count(*) FROM (SELECT DISTINCT key, txn_id FROM storm.keys WHERE mode = '$mode') k
		  WHERE NOT EXISTS (SELECT 1 FROM wallet.txn t WHERE t.idempotency_key = k.key AND t.id = k.txn_id)" \
		"SELECT k.key, k.txn_id, t.id AS txn_with_key FROM storm.keys k
		   LEFT JOIN wallet.txn t ON t.idempotency_key = k.key
		  WHERE k.mode = '$mode' AND t.id IS DISTINCT FROM k.txn_id"
	expect_zero "$mode: no key got two different ids" \
		"SELECT count(*) FROM (SELECT key FROM storm.keys WHERE mode = '$mode'
		  GROUP BY key HAVING count(DISTINCT txn_id) > 1) d"
	expect_zero "$mode: no posting of this run that a client did not get an id for" \
		"SELECT count(*) FROM wallet.txn t WHERE t.idempotency_key LIKE '$TAG/$mode/%'
		  AND NOT EXISTS (SELECT 1 FROM storm.keys k WHERE k.key = t.idempotency_key)" \
		"SELECT t.id, t.idempotency_key FROM wallet.txn t WHERE t.idempotency_key LIKE '$TAG/$mode/%'
		  AND NOT EXISTS (SELECT 1 FROM storm.keys k WHERE k.key = t.idempotency_key)"
	expect_zero "$mode: entries of the postings equal the legs the clients sent, per account" \
		"WITH t AS (SELECT DISTINCT txn_id FROM storm.keys WHERE mode = '$mode'),
		      e AS (SELECT e.account_id, sum(e.amount) AS units FROM wallet.entry e
		              JOIN t ON t.txn_id = e.txn_id GROUP BY 1),
		      d AS (SELECT account_id, units FROM storm.deltas WHERE mode = '$mode')
		 SELECT count(*) FROM e FULL JOIN d USING (account_id)
		  WHERE coalesce(e.units, 0) <> coalesce(d.units, 0)" \
		"WITH t AS (SELECT DISTINCT txn_id FROM storm.keys WHERE mode = '$mode'),
		      e AS (SELECT e.account_id, sum(e.amount) AS units FROM wallet.entry e
		              JOIN t ON t.txn_id = e.txn_id GROUP BY 1),
		      d AS (SELECT account_id, units FROM storm.deltas WHERE mode = '$mode')
		 SELECT account_id, e.units AS entries, d.units AS client FROM e FULL JOIN d USING (account_id)
		  WHERE coalesce(e.units, 0) <> coalesce(d.units, 0)"
	if [ "$mode" = holds ]; then
		expect_zero "holds: every capture a client got is its hold's capture_txn, and no other" \
			"SELECT count(*) FROM wallet.hold h
			   FULL JOIN (SELECT DISTINCT txn_id FROM storm.keys WHERE mode = 'holds'
			               AND key LIKE 'wallet:hold:%') k ON k.txn_id = h.capture_txn
			  WHERE (h.idempotency_key LIKE '$TAG/holds/%' OR h.id IS NULL)
			    AND (h.status = 'captured') IS DISTINCT FROM (k.txn_id IS NOT NULL)" \
			"SELECT h.id, h.status, h.capture_txn, k.txn_id AS client_txn FROM wallet.hold h
			   FULL JOIN (SELECT DISTINCT txn_id FROM storm.keys WHERE mode = 'holds'
			               AND key LIKE 'wallet:hold:%') k ON k.txn_id = h.capture_txn
			  WHERE (h.idempotency_key LIKE '$TAG/holds/%' OR h.id IS NULL)
			    AND (h.status = 'captured') IS DISTINCT FROM (k.txn_id IS NOT NULL)"
		expect_zero "holds: held amounts equal the pending holds, per account" \
			"SELECT count(*) FROM wallet.account a
			   LEFT JOIN (SELECT from_account, sum(amount) AS s FROM wallet.hold
			               WHERE status = 'pending' GROUP BY 1) h ON h.from_account = a.id
			  WHERE a.held <> coalesce(h.s, 0)"
	fi
}

for r in "${RUNS[@]}"; do
	# shellcheck disable=SC2086
	run_mode $r
done

# ---- the whole ledger -------------------------------------------------------
expect_zero "every idempotency key is in wallet.txn at most once" \
	"SELECT count(*) FROM (SELECT idempotency_key FROM wallet.txn GROUP BY 1 HAVING count(*) > 1) d"
expect_zero "no transaction without its entries" \
	"SELECT count(*) FROM wallet.txn t WHERE NOT EXISTS (SELECT 1 FROM wallet.entry e WHERE e.txn_id = t.id)"
expect_zero "no entry without its transaction" \
	"SELECT count(*) FROM wallet.entry e WHERE NOT EXISTS (SELECT 1 FROM wallet.txn t WHERE t.id = e.txn_id)"
expect_zero "every transaction balances per currency" \
	"SELECT count(*) FROM (SELECT e.txn_id FROM wallet.entry e JOIN wallet.account a ON a.id = e.account_id
	  GROUP BY e.txn_id, a.currency HAVING sum(e.amount) <> 0) d"
expect_zero "every balance (wallet.accounts) equals the sum of its entries" \
	"SELECT count(*) FROM wallet.accounts a
	   LEFT JOIN (SELECT account_id, sum(amount) AS s FROM wallet.entry GROUP BY 1) e ON e.account_id = a.id
	  WHERE wallet.units(a.balance) <> coalesce(e.s, 0)" \
	"SELECT a.id, a.kind, a.balance, e.s AS entries FROM wallet.accounts a
	   LEFT JOIN (SELECT account_id, sum(amount) AS s FROM wallet.entry GROUP BY 1) e ON e.account_id = a.id
	  WHERE wallet.units(a.balance) <> coalesce(e.s, 0)"
expect_zero "wallet.balance() agrees with wallet.accounts" \
	"SELECT count(*) FROM wallet.accounts a WHERE wallet.balance(a.id) <> a.balance"
expect_zero "conservation: the balances of each currency sum to zero" \
	"SELECT count(*) FROM (SELECT currency FROM wallet.accounts GROUP BY currency
	  HAVING sum(wallet.units(balance)) <> 0) d" \
	"SELECT currency, sum(wallet.units(balance)) FROM wallet.accounts GROUP BY currency"
expect_zero "no account that may not go negative is negative (posted or available)" \
	"SELECT count(*) FROM wallet.accounts WHERE NOT allow_negative
	  AND (wallet.units(balance) < 0 OR wallet.units(available) < 0)" \
	"SELECT id, kind, balance, available FROM wallet.accounts WHERE NOT allow_negative
	  AND (wallet.units(balance) < 0 OR wallet.units(available) < 0)"
if has_function verify; then
	v=$(q <<<"SELECT coalesce(bool_and(ok), false) FROM wallet.verify()")
	if [ "$v" = t ]; then
		ok "wallet.verify() reports every check ok"
	else
		not_ok "wallet.verify() reports every check ok (got: $v)"
		q <<<"SELECT check_name, ok, detail FROM wallet.verify() WHERE ok IS NOT TRUE" | comment
	fi
else
	not_ok "wallet.verify() reports every check ok (wallet.verify does not exist yet)"
fi

# ---- drop -------------------------------------------------------------------
if [ "${WALLET_STORM_KEEP:-0}" != 1 ]; then
	# a session in another database: a crash-restart of the server kills it
	psql -X -q -d postgres -c 'SELECT pg_sleep(2)' >"$work/witness.log" 2>&1 &
	witness=$!
	sleep 0.3
	how=""
	if ! dropdb --if-exists "$DB" 2>"$work/drop.log"; then
		comment <"$work/drop.log"
		how=" WITH (FORCE)"
		dropdb --if-exists --force "$DB" >>"$work/drop.log" 2>&1
	fi
	DROPPED=1
	if ! wait "$witness"; then
		comment <"$work/witness.log"
		not_ok "drop database $DB$how without a server crash (a concurrent session was killed)"
	elif [ "$(psql -X -At -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'" 2>&1)" != 0 ]; then
		comment <"$work/drop.log"
		not_ok "drop database $DB$how"
	else
		ok "drop database $DB$how without a server crash"
	fi
fi

if [ "$FAILED" -gt 0 ]; then
	echo "# $FAILED check(s) failed (database $DB, seed $SEED)"
	exit 1
fi
exit 0
