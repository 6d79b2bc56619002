#!/usr/bin/env bash
# test/harness/crash.sh — the crash harness: crash recovery loses no
# acknowledged posting, doubles none, and leaves a ledger that verifies.
# Owned by test/harness/.
#
# Builds test/harness/wallet_crash (gitignored) when stale, creates a fresh
# database (WALLET_CRASH_DB, default wallet_crash) with CREATE EXTENSION
# wallet, opens and funds accounts (USD: a bank, contended and many
# accounts, a hot one; the live flows: viewers with coins, creators, the
# first one hot), then runs wallet_crash: 12 clients sending transfers,
# 3-leg posts, gifts, recharges, transfer_batch calls, holds and their
# captures and voids, each with its own idempotency key, plus a thread
# calling wallet.housekeeping(), while the server is crashed three times,
# each after WALLET_CRASH_LOAD (3) seconds of load:
#   1. SIGKILL of the postmaster and every server process at once, then
#      pg_ctl start (crash recovery replays the WAL);
#   2. SIGKILL of one backend: the postmaster kills all the others and
#      reinitialises (what the OOM killer causes);
#   3. pg_ctl stop -m immediate, then pg_ctl start.
# The clients log every request before sending it and its outcome after
# (acknowledged, refused with the session alive, or unknown: connection
# lost), and reconnect.  After the load, requests of unknown outcome are
# sent again with the same keys (wallet_crash --retry).  Then the checks:
# every acknowledged posting is in the ledger once with the entries the
# client sent, nothing refused is, an unknown one is there at most once and
# its retry returned the first id or posted it once, no posting nobody
# sent, ids after each crash greater than every id before it, each
# account's balance = its funding + the legs of the postings found,
# conservation per currency, no overdraft, held amounts = pending holds,
# btree indexes and heaps intact (amcheck), the launcher back after each
# crash and sealing again, verify(), audit_verify(heads taken before each
# crash), and again after wallet.housekeeping(); new postings work; the
# server log shows no crash but ours (SIGSEGV, abort, PANIC).
# Prints TAP lines (`ok - ...` / `not ok - ...`) and `# ` comments; exit 1
# if any check failed.
#
# The server must be a cluster of scripts/cluster.sh (the test cluster that
# scripts/test.sh starts) with wallet preloaded, and this script must be
# able to run pg_ctl as the data directory's owner (root: runuser);
# otherwise it prints one `ok - ... # SKIP` line.  It restarts the server
# the way cluster.sh does (pg_ctl start -D DATA -l LOG, settings from
# postgresql.conf) and leaves it running.
#
# Env: PGHOST PGPORT PGUSER (the cluster; scripts/test.sh sets them, and
#      WALLET_CLUSTER_DIR, where the server log is),
#      WALLET_STRESS=1 (15 s of load before each crash instead of 3),
#      WALLET_CRASH_LOAD (seconds of load before each crash),
#      WALLET_CRASH_CLIENTS (12), WALLET_CRASH_SEED (default: from the clock),
#      WALLET_CRASH_DB, WALLET_CRASH_KEEP=1 (keep the database and files).
set -u
# The whole script is one block, read before it runs: editing the file while
# a test run executes it cannot derail that run.
{
unset PGDATABASE PGSERVICE PGAPPNAME
# no statement of ours may hang the run (wallet_crash sets its own)
export PGOPTIONS='-c statement_timeout=180s'

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
DB=${WALLET_CRASH_DB:-wallet_crash}
SEED=${WALLET_CRASH_SEED:-$(($(date +%s) % 1000000))}
TAG="k$SEED"
CLIENTS=${WALLET_CRASH_CLIENTS:-12}
if [ "${WALLET_STRESS:-0}" = 1 ]; then LOAD=${WALLET_CRASH_LOAD:-15}; else LOAD=${WALLET_CRASH_LOAD:-3}; fi
BIN="$here/wallet_crash"
SRC="$here/wallet_crash.c"
PGBIN=${WALLET_PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
MARK='# ---- managed by cluster.sh, rewritten on every start ----'
T0=$SECONDS

work=$(mktemp -d)
FAILED=0
CLIENT_PID=""
VICTIM_PID=""
CRASHED=0
DB_CREATED=0

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; FAILED=$((FAILED + 1)); }
comment() { sed 's/^/# /'; }
skip() { echo "ok - crash: skipped ($*) # SKIP"; exit 0; }

# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
	if [ -n "$CLIENT_PID" ]; then touch "$work/stop"; kill "$CLIENT_PID" 2>/dev/null; wait "$CLIENT_PID" 2>/dev/null; fi
	if [ -n "$VICTIM_PID" ]; then kill "$VICTIM_PID" 2>/dev/null; wait "$VICTIM_PID" 2>/dev/null; fi
	# leave the cluster running, as we found it
	if [ "$CRASHED" = 1 ] && ! server_ready; then
		echo "# the server is down: starting it again"
		start_server || { echo "# pg_ctl start failed:"; comment <"$work/pg_ctl.log"; }
	fi
	if [ "$DB_CREATED" = 1 ] && [ "${WALLET_CRASH_KEEP:-0}" != 1 ]; then
		dropdb --if-exists --force "$DB" >/dev/null 2>&1 || true
	fi
	if [ "${WALLET_CRASH_KEEP:-0}" = 1 ]; then echo "# kept: database $DB, files in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# q: run the SQL on stdin, print unaligned rows (errors too)
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@" -f - 2>&1; }
v() { psql -X -q -At -v ON_ERROR_STOP=1 -d "${2:-$DB}" -c "$1" 2>&1; }

# expect_zero TEXT SQL [DETAIL_SQL]: ok when SQL returns 0, else show the
# value and up to 10 rows of DETAIL_SQL
expect_zero() {
	local text=$1 r
	r=$(q <<<"$2")
	if [ "$r" = 0 ]; then
		ok "$text"
	else
		not_ok "$text (got: ${r//$'\n'/ })"
		if [ -n "${3:-}" ]; then q <<<"$3 LIMIT 10" | comment; fi
	fi
}

# ---- can we crash and restart this server? ----------------------------------
# (a suite before us may have left it restarting: give it 30 s)
for ((i = 0; i < 150; i++)); do
	psql -X -At -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break
	sleep 0.2
done
preload=$(v "SELECT current_setting('shared_preload_libraries') ~ '(^|[ ,])wallet($|[ ,])'" postgres)
case $preload in
	t) ;;
	f) skip "wallet is not in shared_preload_libraries" ;;
	*) echo "$preload" | comment; not_ok "crash: connect to the server"; exit 1 ;;
esac
data=$(v "SHOW data_directory" postgres)
[ -d "$data" ] || skip "data directory '$data' is not reachable from here"
data_real=$(readlink -f -- "$data")
[ "${PGPORT:-5432}" != 5432 ] || skip "port 5432 is the system cluster's"
[ -x "$PGBIN/pg_ctl" ] || skip "no pg_ctl in $PGBIN"
owner=$(stat -c %U -- "$data")
if [ "$(id -u)" = 0 ]; then
	command -v runuser >/dev/null || skip "runuser is missing"
	as_pg() { (cd / && runuser -u "$owner" -- "$@"); }
elif [ "$(id -un)" = "$owner" ]; then
	as_pg() { "$@"; }
else
	skip "cannot run pg_ctl as $owner"
fi
grep -qxF -- "$MARK" "$data/postgresql.conf" 2>/dev/null || skip "not a cluster of scripts/cluster.sh"
if [ -n "${WALLET_CLUSTER_DIR:-}" ] && [ "$(readlink -f -- "$WALLET_CLUSTER_DIR/data")" = "$data_real" ]; then
	srvlog="$WALLET_CLUSTER_DIR/log"
else
	srvlog="$(dirname -- "$data_real")/log"   # cluster.sh's layout: DIR/data, DIR/log
fi
postmaster_pid() { head -n 1 "$data/postmaster.pid" 2>/dev/null; }
# the postmaster runs in its data directory
is_postmaster() { [ -n "$1" ] && [ "$(readlink -f "/proc/$1/cwd" 2>/dev/null)" = "$data_real" ]; }
is_postmaster "$(postmaster_pid)" || skip "cannot find the postmaster of $data"

server_ready() { "$PGBIN/pg_isready" -q -t 2 >/dev/null 2>&1 && psql -X -At -d postgres -c 'SELECT 1' >/dev/null 2>&1; }
wait_ready() {  # wait_ready SECONDS
	local deadline=$((SECONDS + $1))
	while ((SECONDS < deadline)); do
		server_ready && return 0
		sleep 0.2
	done
	server_ready
}
# The server we start outlives this script: it must not inherit our file
# descriptors (scripts/test.sh reads our output through a pipe to its end of
# file, which would never come while a postmaster holds the pipe open).
close_fds() {
	local f n
	for f in /proc/$BASHPID/fd/*; do
		n=${f##*/}
		if [[ $n =~ ^[0-9]+$ ]] && [ "$n" -gt 2 ]; then eval "exec $n>&-"; fi
	done
}
start_server() {
	if ! (close_fds; as_pg "$PGBIN/pg_ctl" start -D "$data" -l "$srvlog" -w -t 120) </dev/null >"$work/pg_ctl.log" 2>&1; then
		tail -n 20 "$srvlog" >>"$work/pg_ctl.log" 2>/dev/null
		return 1
	fi
	wait_ready 60
}
wait_gone() {  # wait_gone PID...: up to 15 s
	local i p alive
	for ((i = 0; i < 150; i++)); do
		alive=0
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}
launcher_pid() { v "SELECT pid FROM pg_stat_activity WHERE backend_type = 'wallet launcher'" postgres 2>/dev/null | head -n 1; }
wait_launcher() {  # wait_launcher OLD_PID: a launcher other than OLD_PID, up to 30 s
	local i p
	for ((i = 0; i < 150; i++)); do
		p=$(launcher_pid)
		if [[ $p =~ ^[0-9]+$ ]] && [ "$p" != "$1" ]; then echo "$p"; return 0; fi
		sleep 0.2
	done
	return 1
}


# ---- build ------------------------------------------------------------------
if [ ! -x "$BIN" ] || [ "$SRC" -nt "$BIN" ] || [ "$here/harness_util.h" -nt "$BIN" ]; then
	if ! cc -O2 -g -std=gnu11 -Wall -Wextra -Werror -I"$(pg_config --includedir)" \
		-o "$BIN" "$SRC" -lpq -lpthread >"$work/build.log" 2>&1; then
		comment <"$work/build.log"
		not_ok "build wallet_crash"
		exit 1
	fi
fi
echo "# seed $SEED (WALLET_CRASH_SEED=$SEED reproduces the clients' choices), $CLIENTS clients, ${LOAD}s of load before each crash"

# ---- database and accounts --------------------------------------------------
dropdb --if-exists --force "$DB" >/dev/null 2>&1
DB_CREATED=1
if ! createdb "$DB" >"$work/setup.log" 2>&1 ||
	! q >>"$work/setup.log" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION wallet;
SELECT wallet.live_setup();
-- the bank is the counter-party of the USD funding: it may go negative
SELECT wallet.open_account('crash bank', 'USD', 'crash_bank', true);
SELECT count(wallet.open_account('crash ' || k || ' ' || i, c, k))
  FROM (VALUES ('crash_few', 'USD', 8), ('crash_many', 'USD', 300), ('crash_hot', 'USD', 1),
               ('crash_viewer', 'COIN', 60), ('crash_creator', 'DIAMOND', 4)) v(k, c, n),
       generate_series(1, v.n) i;
SELECT count(wallet.transfer(b.id, a.id, wallet.amount(f.units, 'USD'), 'setup/' || a.id))
  FROM wallet.account a
  JOIN (VALUES ('crash_few', 100000::bigint), ('crash_many', 5000)) f(kind, units) ON f.kind = a.kind
 CROSS JOIN (SELECT id FROM wallet.account WHERE kind = 'crash_bank') b;
-- viewers buy their coins (this also opens the platform's USD cash accounts)
SELECT count(wallet.recharge(a.id, wallet.amount(100000::bigint, 'COIN'), wallet.amount(100000::bigint, 'USD'),
                             'setup', 'viewer-' || a.id))
  FROM wallet.account a WHERE a.kind = 'crash_viewer';
SELECT wallet.set_hot(id) FROM wallet.account
 WHERE kind = 'crash_hot' OR id = (SELECT min(id) FROM wallet.account WHERE kind = 'crash_creator');

CREATE SCHEMA crash;
-- what the clients sent and got (wallet_crash's log)
CREATE TABLE crash.sent (key text PRIMARY KEY, op text NOT NULL, epoch int NOT NULL, client int NOT NULL,
                         ref bigint NOT NULL, legs text NOT NULL, seq serial);
CREATE TABLE crash.outcome (phase text, kind text NOT NULL, key text NOT NULL, val text NOT NULL);
CREATE TABLE crash.retry_sent (key text, op text, epoch int, client int, ref bigint, legs text);
CREATE VIEW crash.leg AS
SELECT s.key, split_part(l, ':', 1)::bigint AS account_id, split_part(l, ':', 2)::bigint AS units
  FROM crash.sent s, unnest(string_to_array(nullif(s.legs, '-'), ',')) l;
-- where each request is in the ledger now: its transactions, its holds, the
-- status of the hold it ends (joins, not lookups by key: the heaps are
-- read, so a row that an index lost would still be counted)
CREATE VIEW crash.found_now AS
SELECT s.key, s.op, s.epoch, s.ref,
       count(DISTINCT t.id) AS n_txn, min(t.id) AS txn_id,
       count(DISTINCT h.id) AS n_hold, min(h.id) AS hold_id,
       min(rh.status) AS ref_status
  FROM crash.sent s
  LEFT JOIN wallet.txn t ON t.idempotency_key = s.key AND s.op NOT IN ('hold', 'void')
  LEFT JOIN wallet.hold h ON h.idempotency_key = s.key AND s.op = 'hold'
  LEFT JOIN wallet.hold rh ON rh.id = s.ref AND s.op IN ('capture', 'void')
 GROUP BY s.key, s.op, s.epoch, s.ref;
CREATE TABLE crash.initial AS SELECT id AS account_id, currency, wallet.units(balance) AS units FROM wallet.accounts;
CREATE TABLE crash.mark AS
SELECT (SELECT coalesce(max(id), 0) FROM wallet.txn) AS setup_txn,
       (SELECT coalesce(max(id), 0) FROM wallet.hold) AS setup_hold;
CREATE TABLE crash.pre_retry (key text, txn_id bigint, hold_id bigint, ref_status text);
CHECKPOINT;
SQL
then
	comment <"$work/setup.log"
	not_ok "create database $DB with the wallet extension, accounts and funding"
	exit 1
fi
ok "create database $DB with the wallet extension, accounts and funding"

# ---- load and crashes -------------------------------------------------------
log_from=$(($(stat -c %s -- "$srvlog" 2>/dev/null || echo 0) + 1))
echo 0 >"$work/epoch"
timeout -k 5 $((LOAD * 4 + 240)) "$BIN" -d "dbname=$DB" -c "$CLIENTS" -s $((LOAD * 4 + 200)) --seed "$SEED" \
	-t "$TAG" -o "$work/load.log" --epoch-file "$work/epoch" --stop-file "$work/stop" \
	>"$work/client.out" 2>"$work/client.err" &
CLIENT_PID=$!
HEADS=()

# crash N HOW: bump the epoch (connections made from now on are after the
# crash), crash the server the given way, bring it back; TAP lines.
crash() {
	local n=$1 how=$2 pm kids old_launcher new_launcher t0 ms pm2 victim i head what
	sleep "$LOAD"
	# the head of everything sealed so far, kept outside (retried: the
	# server may be restarting on its own if a backend crashed)
	for ((i = 0; i < 5; i++)); do
		head=$(v "SELECT wallet.digest()")
		[[ $head =~ ^[0-9a-f]{64}$ ]] && break
		echo "digest before crash $n: $head" | comment
		wait_ready 30
	done
	[[ $head =~ ^[0-9a-f]{64}$ ]] && HEADS+=("$head")
	old_launcher=$(launcher_pid)
	pm=$(postmaster_pid)
	echo "$n" >"$work/epoch"
	CRASHED=1
	t0=$(date +%s%N)
	case $how in
		kill-all)
			what="SIGKILL of the postmaster and every server process"
			is_postmaster "$pm" || { not_ok "crash $n: find the postmaster"; return 1; }
			kill -STOP "$pm"   # no more forks while we list its children
			kids=$(ps -o pid= --ppid "$pm")
			# shellcheck disable=SC2086
			kill -KILL $kids "$pm" 2>/dev/null
			# shellcheck disable=SC2086
			wait_gone "$pm" $kids || { not_ok "crash $n: server processes still alive 15 s after SIGKILL"; return 1; }
			start_server || { comment <"$work/pg_ctl.log"; not_ok "crash $n: restart after $what"; return 1; }
			;;
		kill-backend)
			what="SIGKILL of one backend, the postmaster reinitialises"
			PGAPPNAME=crash_victim psql -X -q -d "$DB" -c "SELECT pg_sleep(600)" >"$work/victim.log" 2>&1 &
			VICTIM_PID=$!
			victim=""
			for ((i = 0; i < 50; i++)); do
				victim=$(v "SELECT pid FROM pg_stat_activity WHERE application_name = 'crash_victim' AND datname = current_database()")
				[[ $victim =~ ^[0-9]+$ ]] && break
				victim=""
				sleep 0.1
			done
			if [ -z "$victim" ] || [ "$(ps -o ppid= -p "$victim" | tr -d ' ')" != "$pm" ]; then
				comment <"$work/victim.log"
				not_ok "crash $n: find a backend to kill (got '$victim')"
				return 1
			fi
			t0=$(date +%s%N)
			kill -KILL "$victim"
			wait "$VICTIM_PID" 2>/dev/null
			VICTIM_PID=""
			# the postmaster kills every other process, then starts over
			[ -z "$old_launcher" ] || wait_gone "$old_launcher" ||
				{ not_ok "crash $n: the postmaster did not reinitialise"; return 1; }
			wait_ready 60 || { not_ok "crash $n: server back after $what"; return 1; }
			pm2=$(postmaster_pid)
			if [ "$pm2" = "$pm" ]; then
				ok "crash $n: the postmaster survived and reinitialised (pid $pm)"
			else
				not_ok "crash $n: the postmaster survived (pid $pm, now $pm2)"
			fi
			;;
		immediate)
			what="pg_ctl stop -m immediate, then start"
			if ! as_pg "$PGBIN/pg_ctl" stop -D "$data" -m immediate -w -t 30 >"$work/pg_ctl.log" 2>&1; then
				comment <"$work/pg_ctl.log"
				not_ok "crash $n: pg_ctl stop -m immediate"
				return 1
			fi
			start_server || { comment <"$work/pg_ctl.log"; not_ok "crash $n: restart after $what"; return 1; }
			;;
	esac
	ms=$((($(date +%s%N) - t0) / 1000000))
	ok "crash $n ($what, after ${LOAD}s of load): server accepting connections again after $((ms / 1000)).$((ms % 1000 / 100))s"
	if new_launcher=$(wait_launcher "$old_launcher"); then
		ok "crash $n: the wallet launcher is running again (pid ${old_launcher:-none} -> $new_launcher)"
	else
		not_ok "crash $n: the wallet launcher is running again (old pid ${old_launcher:-none}, now: $(launcher_pid))"
	fi
	return 0
}

CRASH_OK=1
crash 1 kill-all && crash 2 kill-backend && crash 3 immediate || CRASH_OK=0
if [ "$CRASH_OK" = 1 ]; then sleep "$LOAD"; fi
touch "$work/stop"
wait "$CLIENT_PID"
rc=$?
CLIENT_PID=""
if ! server_ready; then
	start_server || { comment <"$work/pg_ctl.log"; not_ok "server running after the crashes"; exit 1; }
fi
[ "$CRASH_OK" = 1 ] || { not_ok "crash harness: all three crashes done"; exit 1; }

comment <"$work/client.err"
line=$(grep '^clients=' "$work/client.out" | tail -n 1)
if [ -z "$line" ]; then
	not_ok "wallet_crash finished (exit $rc${rc/#124/: timeout, a hang?})"
	exit 1
fi
echo "# $line"
field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<" $1"; }
if [ "$(field "$line" unexpected)" = 0 ] && [ "$(field "$line" deadlocks)" = 0 ] && [ "$rc" = 0 ]; then
	ok "clients: no error other than insufficient funds and lost connections ($(field "$line" acked) acknowledged, $(field "$line" wl001) WL001, $(field "$line" unknown) unknown outcome)"
else
	not_ok "clients: no error other than insufficient funds and lost connections (exit $rc, $(field "$line" unexpected) unexpected, $(field "$line" deadlocks) deadlocks)"
fi
if [ "$(field "$line" hk_errors)" = 0 ]; then
	ok "wallet.housekeeping() during the load and the crashes: no error other than 40P01 ($(field "$line" hk_calls) calls)"
else
	not_ok "wallet.housekeeping() during the load and the crashes: no error other than 40P01 ($(field "$line" hk_errors) of $(field "$line" hk_calls) calls failed)"
fi
# two housekeeping passes at once (ours, the worker's: both new sessions
# after a crash) must queue, not deadlock
if [ "$(field "$line" hk_deadlocks)" = 0 ]; then
	ok "wallet.housekeeping() next to the background worker: no deadlock"
else
	not_ok "wallet.housekeeping() next to the background worker: no deadlock ($(field "$line" hk_deadlocks) 40P01)"
fi

# ---- what the clients saw ---------------------------------------------------
grep '^S' "$work/load.log" | cut -f2- >"$work/sent.tsv"
grep -v '^S' "$work/load.log" >"$work/outcome.tsv"
if ! q >"$work/copy.log" <<SQL
\\copy crash.sent (key, op, epoch, client, ref, legs) FROM '$work/sent.tsv'
\\copy crash.outcome (kind, key, val) FROM '$work/outcome.tsv'
UPDATE crash.outcome SET phase = 'load' WHERE phase IS NULL;
CREATE INDEX ON crash.outcome (key);
ANALYZE crash.sent;
ANALYZE crash.outcome;
CREATE TABLE crash.found AS SELECT * FROM crash.found_now;
CREATE UNIQUE INDEX ON crash.found (key);
ANALYZE crash.found;
SQL
then
	comment <"$work/copy.log"
	not_ok "load the clients' logs"
	exit 1
fi
q <<'SQL' | comment
SELECT format('epoch %s (after %s crashes): %s requests, %s acknowledged, %s refused, %s unknown outcome', s.epoch, s.epoch,
              count(*), count(*) FILTER (WHERE o.kind = 'A'), count(*) FILTER (WHERE o.kind = 'E'),
              count(*) FILTER (WHERE o.kind = 'U'))
  FROM crash.sent s LEFT JOIN crash.outcome o ON o.key = s.key AND o.phase = 'load'
 GROUP BY s.epoch ORDER BY s.epoch;
SQL
expect_zero "every request the clients sent has exactly one outcome" \
	"SELECT count(*) FROM crash.sent s FULL JOIN (SELECT key, count(*) AS n FROM crash.outcome WHERE phase = 'load' GROUP BY 1) o USING (key)
	  WHERE o.n IS DISTINCT FROM 1 OR s.key IS NULL"
r=$(v "SELECT count(DISTINCT s.epoch) FROM crash.sent s JOIN crash.outcome o ON o.key = s.key AND o.kind = 'U' WHERE s.epoch < 3")
if [ "$r" = 3 ]; then
	ok "every crash cut clients off mid-request (unknown outcomes in all 3 crashes)"
else
	not_ok "every crash cut clients off mid-request (unknown outcomes in ${r} of 3 crashes)"
fi
r=$(v "SELECT count(DISTINCT epoch) FROM crash.sent s JOIN crash.outcome o USING (key) WHERE o.kind = 'A'")
if [ "$r" = 4 ]; then
	ok "clients reconnected and posted after every crash (acknowledged postings in all 4 epochs)"
else
	not_ok "clients reconnected and posted after every crash (acknowledged postings in $r of 4 epochs)"
fi

# ---- after recovery, before the retries --------------------------------------
expect_zero "every acknowledged posting is in wallet.txn exactly once, with the id the client got" \
	"SELECT count(*) FROM crash.found f JOIN crash.outcome o ON o.key = f.key AND o.phase = 'load' AND o.kind = 'A'
	  WHERE f.op NOT IN ('hold', 'void') AND (f.n_txn <> 1 OR f.txn_id::text <> o.val)" \
	"SELECT f.key, f.op, f.epoch, o.val AS client_id, f.n_txn, f.txn_id FROM crash.found f
	   JOIN crash.outcome o ON o.key = f.key AND o.phase = 'load' AND o.kind = 'A'
	  WHERE f.op NOT IN ('hold', 'void') AND (f.n_txn <> 1 OR f.txn_id::text <> o.val)"
expect_zero "every acknowledged hold is in wallet.hold exactly once, with its id, accounts and amount" \
	"SELECT count(*) FROM crash.found f JOIN crash.outcome o ON o.key = f.key AND o.phase = 'load' AND o.kind = 'A'
	  WHERE f.op = 'hold' AND (f.n_hold <> 1 OR f.hold_id::text <> o.val OR NOT EXISTS (
	        SELECT 1 FROM wallet.hold h JOIN crash.sent s ON s.key = h.idempotency_key
	         WHERE h.id = f.hold_id AND s.legs = h.from_account || ':' || -h.amount || ',' || h.to_account || ':' || h.amount))" \
	"SELECT f.key, o.val, f.n_hold, f.hold_id FROM crash.found f JOIN crash.outcome o ON o.key = f.key AND o.phase = 'load' AND o.kind = 'A'
	  WHERE f.op = 'hold' AND (f.n_hold <> 1 OR f.hold_id::text <> o.val)"
expect_zero "every acknowledged void left its hold voided, every acknowledged capture its hold captured by that transaction" \
	"SELECT count(*) FROM crash.found f JOIN crash.outcome o ON o.key = f.key AND o.phase = 'load' AND o.kind = 'A'
	   LEFT JOIN wallet.hold h ON h.id = f.ref
	  WHERE (f.op = 'void' AND h.status IS DISTINCT FROM 'voided')
	     OR (f.op = 'capture' AND (h.status IS DISTINCT FROM 'captured' OR h.capture_txn::text IS DISTINCT FROM o.val))" \
	"SELECT f.key, f.op, o.val, h.status, h.capture_txn FROM crash.found f
	   JOIN crash.outcome o ON o.key = f.key AND o.phase = 'load' AND o.kind = 'A'
	   LEFT JOIN wallet.hold h ON h.id = f.ref
	  WHERE (f.op = 'void' AND h.status IS DISTINCT FROM 'voided')
	     OR (f.op = 'capture' AND (h.status IS DISTINCT FROM 'captured' OR h.capture_txn::text IS DISTINCT FROM o.val))"
expect_zero "no refused request left anything in the ledger" \
	"SELECT count(*) FROM crash.found f JOIN crash.outcome o ON o.key = f.key AND o.phase = 'load' AND o.kind = 'E'
	  WHERE f.n_txn > 0 OR f.n_hold > 0 OR (f.op = 'void' AND f.ref_status = 'voided')" \
	"SELECT f.*, o.val FROM crash.found f JOIN crash.outcome o ON o.key = f.key AND o.phase = 'load' AND o.kind = 'E'
	  WHERE f.n_txn > 0 OR f.n_hold > 0 OR (f.op = 'void' AND f.ref_status = 'voided')"
expect_zero "every request of unknown outcome is in the ledger at most once" \
	"SELECT count(*) FROM crash.found f JOIN crash.outcome o ON o.key = f.key AND o.phase = 'load' AND o.kind = 'U'
	  WHERE f.n_txn > 1 OR f.n_hold > 1"
expect_zero "no posting or hold in the ledger that no client sent" \
	"SELECT count(*) FROM (
	   SELECT t.idempotency_key FROM wallet.txn t WHERE t.id > (SELECT setup_txn FROM crash.mark)
	      AND NOT EXISTS (SELECT 1 FROM crash.sent s WHERE s.key = t.idempotency_key)
	   UNION ALL
	   SELECT h.idempotency_key FROM wallet.hold h WHERE h.id > (SELECT setup_hold FROM crash.mark)
	      AND NOT EXISTS (SELECT 1 FROM crash.sent s WHERE s.key = h.idempotency_key)) x" \
	"SELECT t.id, t.idempotency_key FROM wallet.txn t WHERE t.id > (SELECT setup_txn FROM crash.mark)
	    AND NOT EXISTS (SELECT 1 FROM crash.sent s WHERE s.key = t.idempotency_key)"
# an epoch's postings (and holds) all have greater ids than every earlier epoch's
expect_zero "after each crash, new transactions and holds get ids greater than every id before it" \
	"WITH ids AS (SELECT epoch, txn_id AS id, 'txn' AS what FROM crash.found WHERE txn_id IS NOT NULL
	              UNION ALL SELECT epoch, hold_id, 'hold' FROM crash.found WHERE hold_id IS NOT NULL),
	      e AS (SELECT what, epoch, min(id) AS lo, max(id) AS hi FROM ids GROUP BY 1, 2)
	 SELECT count(*) FROM e a JOIN e b ON a.what = b.what AND a.epoch < b.epoch AND a.hi >= b.lo" \
	"WITH ids AS (SELECT epoch, txn_id AS id, 'txn' AS what FROM crash.found WHERE txn_id IS NOT NULL
	              UNION ALL SELECT epoch, hold_id, 'hold' FROM crash.found WHERE hold_id IS NOT NULL)
	 SELECT what, epoch, min(id), max(id), count(*) FROM ids GROUP BY 1, 2 ORDER BY 1, 2"

# ---- retries of the requests of unknown outcome -----------------------------
q >/dev/null <<'SQL'
INSERT INTO crash.pre_retry
SELECT f.key, f.txn_id, f.hold_id, f.ref_status FROM crash.found f
  JOIN crash.outcome o ON o.key = f.key AND o.phase = 'load' AND o.kind = 'U';
SQL
awk -F'\t' 'NR == FNR { if ($1 == "U") u[$2] = 1; next } $1 == "S" && ($2 in u)' \
	"$work/load.log" "$work/load.log" >"$work/retry.in"
nretry=$(wc -l <"$work/retry.in")
timeout -k 5 120 "$BIN" -d "dbname=$DB" -o "$work/retry.log" --retry "$work/retry.in" \
	>"$work/retry.out" 2>"$work/retry.err"
rc=$?
comment <"$work/retry.err"
grep -v '^S' "$work/retry.log" >"$work/retry_outcome.tsv"
q >"$work/copy.log" <<SQL
\\copy crash.outcome (kind, key, val) FROM '$work/retry_outcome.tsv'
UPDATE crash.outcome SET phase = 'retry' WHERE phase IS NULL;
ANALYZE crash.outcome;
DROP TABLE crash.found;
CREATE TABLE crash.found AS SELECT * FROM crash.found_now;
CREATE UNIQUE INDEX ON crash.found (key);
ANALYZE crash.found;
SQL
echo "# retry: $(cat "$work/retry.out") (exit $rc)"
expect_zero "each of the $nretry requests of unknown outcome, sent again with its key, got an answer" \
	"SELECT count(*) FROM crash.pre_retry p
	  LEFT JOIN (SELECT key, count(*) AS n FROM crash.outcome WHERE phase = 'retry' AND kind IN ('A', 'E') GROUP BY 1) o USING (key)
	 WHERE o.n IS DISTINCT FROM 1"
expect_zero "a retry of a request that had been posted returned its first id and posted nothing new" \
	"SELECT count(*) FROM crash.pre_retry p JOIN crash.sent s USING (key)
	   JOIN crash.outcome o ON o.key = p.key AND o.phase = 'retry'
	  WHERE (s.op NOT IN ('hold', 'void', 'capture') AND p.txn_id IS NOT NULL
	         AND (o.kind <> 'A' OR o.val <> p.txn_id::text))
	     OR (s.op = 'hold' AND p.hold_id IS NOT NULL AND (o.kind <> 'A' OR o.val <> p.hold_id::text))
	     OR (s.op = 'capture' AND p.txn_id IS NOT NULL
	         AND NOT ((o.kind = 'E' AND o.val = 'WL008') OR (o.kind = 'A' AND o.val = p.txn_id::text)))
	     OR (s.op = 'void' AND p.ref_status = 'voided' AND NOT (o.kind = 'E' AND o.val = 'WL008'))" \
	"SELECT p.*, s.op, o.kind, o.val FROM crash.pre_retry p JOIN crash.sent s USING (key)
	   JOIN crash.outcome o ON o.key = p.key AND o.phase = 'retry'
	  WHERE p.txn_id IS NOT NULL OR p.hold_id IS NOT NULL OR p.ref_status = 'voided'"
expect_zero "a retry of a request that had not been posted posted it exactly once (or was refused and posted nothing)" \
	"SELECT count(*) FROM crash.pre_retry p JOIN crash.found f USING (key)
	   JOIN crash.outcome o ON o.key = p.key AND o.phase = 'retry'
	  WHERE p.txn_id IS NULL AND p.hold_id IS NULL AND (f.op <> 'void' OR p.ref_status = 'pending')
	    AND CASE WHEN o.kind = 'A' THEN
	               CASE f.op WHEN 'hold' THEN f.n_hold <> 1 OR f.hold_id::text <> o.val
	                         WHEN 'void' THEN f.ref_status <> 'voided'
	                         ELSE f.n_txn <> 1 OR f.txn_id::text <> o.val END
	             ELSE f.n_txn + f.n_hold > 0 OR (f.op = 'void' AND f.ref_status = 'voided') END" \
	"SELECT p.*, f.op, f.n_txn, f.txn_id, f.n_hold, f.hold_id, f.ref_status, o.kind, o.val
	   FROM crash.pre_retry p JOIN crash.found f USING (key)
	   JOIN crash.outcome o ON o.key = p.key AND o.phase = 'retry'
	  WHERE p.txn_id IS NULL AND p.hold_id IS NULL"
echo "# unknown outcomes: $(v "SELECT count(*) FILTER (WHERE txn_id IS NOT NULL OR hold_id IS NOT NULL OR ref_status = 'voided') || ' had been posted, ' || count(*) FILTER (WHERE txn_id IS NULL AND hold_id IS NULL AND ref_status IS DISTINCT FROM 'voided') || ' had not' FROM crash.pre_retry")"

# ---- the whole ledger -------------------------------------------------------
expect_zero "the entries of every posted request (acknowledged, found or retried) equal the legs the client sent" \
	"WITH p AS (SELECT key, txn_id FROM crash.found WHERE txn_id IS NOT NULL),
	      e AS (SELECT p.key, e.account_id, sum(e.amount) AS units FROM p JOIN wallet.entry e ON e.txn_id = p.txn_id GROUP BY 1, 2),
	      l AS (SELECT l.key, l.account_id, sum(l.units) AS units FROM crash.leg l JOIN p USING (key) GROUP BY 1, 2)
	 SELECT count(*) FROM e FULL JOIN l USING (key, account_id) WHERE e.units IS DISTINCT FROM l.units" \
	"WITH p AS (SELECT key, txn_id FROM crash.found WHERE txn_id IS NOT NULL),
	      e AS (SELECT p.key, e.account_id, sum(e.amount) AS units FROM p JOIN wallet.entry e ON e.txn_id = p.txn_id GROUP BY 1, 2),
	      l AS (SELECT l.key, l.account_id, sum(l.units) AS units FROM crash.leg l JOIN p USING (key) GROUP BY 1, 2)
	 SELECT key, account_id, e.units AS entries, l.units AS client FROM e FULL JOIN l USING (key, account_id)
	  WHERE e.units IS DISTINCT FROM l.units"
expect_zero "every account's balance = its funding + the legs of every posted request (nothing lost, nothing doubled)" \
	"WITH p AS (SELECT l.account_id, sum(l.units) AS units FROM crash.leg l
	              JOIN crash.found f ON f.key = l.key AND f.txn_id IS NOT NULL GROUP BY 1)
	 SELECT count(*) FROM crash.initial i LEFT JOIN p USING (account_id)
	  WHERE wallet.units(wallet.balance(i.account_id)) <> i.units + coalesce(p.units, 0)" \
	"WITH p AS (SELECT l.account_id, sum(l.units) AS units FROM crash.leg l
	              JOIN crash.found f ON f.key = l.key AND f.txn_id IS NOT NULL GROUP BY 1)
	 SELECT i.account_id, i.units AS funding, p.units AS posted, wallet.balance(i.account_id)
	   FROM crash.initial i LEFT JOIN p USING (account_id)
	  WHERE wallet.units(wallet.balance(i.account_id)) <> i.units + coalesce(p.units, 0)"
expect_zero "conservation: the balances of each currency sum to what they summed to after the funding" \
	"SELECT count(*) FROM (SELECT currency, sum(wallet.units(balance)) AS s FROM wallet.accounts GROUP BY 1) a
	   FULL JOIN (SELECT currency, sum(units) AS s FROM crash.initial GROUP BY 1) i USING (currency)
	  WHERE a.s IS DISTINCT FROM i.s" \
	"SELECT currency, sum(wallet.units(balance)) FROM wallet.accounts GROUP BY currency"
expect_zero "every balance (wallet.accounts) equals the sum of its entries" \
	"SELECT count(*) FROM wallet.accounts a
	   LEFT JOIN (SELECT account_id, sum(amount) AS s FROM wallet.entry GROUP BY 1) e ON e.account_id = a.id
	  WHERE wallet.units(a.balance) <> coalesce(e.s, 0)" \
	"SELECT a.id, a.kind, a.balance, e.s AS entries FROM wallet.accounts a
	   LEFT JOIN (SELECT account_id, sum(amount) AS s FROM wallet.entry GROUP BY 1) e ON e.account_id = a.id
	  WHERE wallet.units(a.balance) <> coalesce(e.s, 0)"
expect_zero "no account that may not go negative is negative (posted or available)" \
	"SELECT count(*) FROM wallet.accounts WHERE NOT allow_negative
	  AND (wallet.units(balance) < 0 OR wallet.units(available) < 0)" \
	"SELECT id, kind, balance, available FROM wallet.accounts WHERE NOT allow_negative
	  AND (wallet.units(balance) < 0 OR wallet.units(available) < 0)"
expect_zero "held amounts equal the pending holds, per account; every captured hold's transaction is its capture" \
	"SELECT (SELECT count(*) FROM wallet.account a
	           LEFT JOIN (SELECT from_account, sum(amount) AS s FROM wallet.hold WHERE status = 'pending' GROUP BY 1) h
	                  ON h.from_account = a.id
	          WHERE a.held <> coalesce(h.s, 0))
	      + (SELECT count(*) FROM wallet.hold h LEFT JOIN wallet.txn t ON t.id = h.capture_txn
	          WHERE (h.status = 'captured') <> coalesce(t.idempotency_key = 'wallet:hold:' || h.id || ':capture', false))"
if [ "$(v "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS amcheck; SELECT 1")" = 1 ]; then
	r=$(v "SELECT count(*) FROM (SELECT bt_index_check(c.oid, true) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	         JOIN pg_am am ON am.oid = c.relam WHERE am.amname = 'btree' AND c.relnamespace = 'wallet'::regnamespace) x")
	r2=$(v "SELECT count(*) FROM pg_class c, LATERAL verify_heapam(c.oid) v
	         WHERE c.relnamespace = 'wallet'::regnamespace AND c.relkind = 'r'")
	if [[ $r =~ ^[0-9]+$ ]] && [ "$r2" = 0 ]; then
		ok "amcheck: the $r btree indexes of wallet are well-formed and hold every heap row; no heap corruption"
	else
		not_ok "amcheck: wallet's btree indexes and heaps intact after crash recovery (indexes: $r; heap: $r2)"
	fi
else
	echo "# amcheck is not available: indexes and heaps not checked"
fi

verify_ok() {  # verify_ok TEXT
	local r
	r=$(v "SELECT coalesce(bool_and(ok), false) FROM wallet.verify()")
	if [ "$r" = t ]; then
		ok "$1"
	else
		not_ok "$1 (got: $r)"
		v "SELECT check_name, ok, detail FROM wallet.verify() WHERE ok IS NOT TRUE" | comment
	fi
}
audit_ok() {  # audit_ok TEXT
	local r h bad=""
	for h in "${HEADS[@]}" ""; do
		r=$(v "SELECT coalesce(bool_and(ok), false) FROM wallet.audit_verify(nullif('$h', ''))")
		if [ "$r" != t ]; then
			bad="$bad head '$h': $r;"
			v "SELECT check_name, ok, detail FROM wallet.audit_verify(nullif('$h', '')) WHERE ok IS NOT TRUE" | comment
		fi
	done
	if [ -z "$bad" ] && [ "${#HEADS[@]}" = 3 ]; then
		ok "$1"
	else
		not_ok "$1 (${#HEADS[@]} heads;$bad)"
	fi
}
verify_ok "wallet.verify() reports every check ok after the crashes"
audit_ok "wallet.audit_verify() ok, also against each digest head taken before a crash"

# ---- new postings after recovery, the worker, housekeeping -------------------
r=$(q <<'SQL'
SELECT wallet.transfer(b.id, a.id, '1.00 USD', 'after/transfer')
     > (SELECT max(id) FROM wallet.txn WHERE idempotency_key <> 'after/transfer')
  FROM (SELECT min(id) AS id FROM wallet.account WHERE kind = 'crash_bank') b,
       (SELECT min(id) AS id FROM wallet.account WHERE kind = 'crash_few') a;
SELECT wallet.gift(v.id, c.id, '10 COIN', 'after/gift')
     > (SELECT max(id) FROM wallet.txn WHERE idempotency_key <> 'after/gift')
  FROM (SELECT min(id) AS id FROM wallet.account WHERE kind = 'crash_viewer') v,
       (SELECT min(id) AS id FROM wallet.account WHERE kind = 'crash_creator') c;
SQL
)
if [ "$r" = $'t\nt' ]; then
	ok "new postings after recovery work and get new ids (a transfer, a gift to the hot creator)"
else
	not_ok "new postings after recovery work and get new ids (got: ${r//$'\n'/ })"
fi
# the worker, restarted by the last crash, seals what came after it by itself
last=$(v "SELECT max(id) FROM wallet.txn")
for ((i = 0; i < 100; i++)); do
	sealed=$(v "SELECT coalesce(max(journal_through), 0) >= $last FROM wallet.audit_seal")
	[ "$sealed" = t ] && break
	sleep 0.2
done
if [ "$sealed" = t ]; then
	ok "the housekeeping worker seals new postings by itself after the crashes (in $((i / 5)).$((i % 5 * 2))s)"
else
	not_ok "the housekeeping worker seals new postings by itself after the crashes (nothing sealed through $last after 20 s)"
fi
r=$(v "SELECT wallet.housekeeping()")
echo "# wallet.housekeeping(): $r"
verify_ok "wallet.verify() still reports every check ok after wallet.housekeeping()"
audit_ok "wallet.audit_verify() still ok after wallet.housekeeping()"

# our crashes are SIGKILLs and an immediate shutdown: anything else in the
# server log is a crash of the server's own making
if [ -r "$srvlog" ]; then
	tail -c +"$log_from" -- "$srvlog" |
		grep -E 'terminated by (signal [0-8]|signal [1-9][0-9]|exception)|PANIC|TRAP:|invalid size|corrupted' >"$work/srv_crashes"
	if [ -s "$work/srv_crashes" ]; then
		head -n 10 "$work/srv_crashes" | comment
		not_ok "the server log shows no crash but ours (no backend killed by SIGSEGV/SIGABRT, no PANIC)"
	else
		ok "the server log shows no crash but ours (no backend killed by SIGSEGV/SIGABRT, no PANIC)"
	fi
else
	echo "# server log $srvlog not readable: not checked for crashes"
fi

# ---- drop -------------------------------------------------------------------
if [ "${WALLET_CRASH_KEEP:-0}" != 1 ]; then
	if dropdb --if-exists --force "$DB" >"$work/drop.log" 2>&1 &&
		[ "$(v "SELECT count(*) FROM pg_database WHERE datname = '$DB'" postgres)" = 0 ]; then
		ok "drop database $DB"
		DB_CREATED=0
	else
		comment <"$work/drop.log"
		not_ok "drop database $DB"
	fi
fi
echo "# crash harness took $((SECONDS - T0))s"

if [ "$FAILED" -gt 0 ]; then
	echo "# $FAILED check(s) failed (database $DB, seed $SEED)"
	exit 1
fi
exit 0
}
