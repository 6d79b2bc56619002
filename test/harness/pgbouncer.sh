#!/usr/bin/env bash
# pgbouncer.sh — the wallet through PgBouncer in transaction pooling: many
# clients share few server connections, so nothing may depend on session
# state (search_path, prepared plans, SET without LOCAL).  Runs concurrent
# transfers and audited actor changes through the pooler, then checks the
# ledger.  Prints TAP lines.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DB=wallet_pgb_$$
PGB_PORT=${WALLET_PGB_PORT:-54341}
# a free port (a leftover pooler from an interrupted run may hold the default)
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 1 20); do port_busy "$PGB_PORT" || break; PGB_PORT=$((PGB_PORT + 1)); done
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
fail=0
ok()  { echo "ok - $*"; }
bad() { echo "not ok - $*"; fail=1; }

if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  bad "pgbouncer is not installed (scripts/deps.sh installs it)"; exit 1
fi
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
# pgbouncer refuses to run as root: its files belong to postgres
WORK=$(mktemp -d /tmp/wallet-pgb-XXXXXX)
chown postgres "$WORK"
cleanup() {
  [ -f "$WORK/pgbouncer.pid" ] && kill "$(cat "$WORK/pgbouncer.pid")" 2>/dev/null
  sleep 0.3
  dropdb --if-exists "$DB" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

createdb "$DB" || { bad "createdb"; exit 1; }
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL' || { bad "setup"; exit 1; }
CREATE EXTENSION wallet;
SELECT wallet.open_account('bank', 'USD', 'system', true);
SELECT wallet.open_account('user' || g, 'USD') FROM generate_series(1, 50) g;
SELECT wallet.transfer(1, g, '1000 USD', 'fund-' || g) FROM generate_series(2, 51) g;
SQL

cat > "$WORK/pgbouncer.ini" <<INI
[databases]
$DB = host=$PGHOST port=$PGPORT dbname=$DB user=${PGUSER:-postgres}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 3
max_client_conn = 100
pidfile = $WORK/pgbouncer.pid
logfile = $WORK/pgbouncer.log
ignore_startup_parameters = extra_float_digits,options
INI
chown postgres "$WORK/pgbouncer.ini"
runuser -u postgres -- "$PGBOUNCER" -d "$WORK/pgbouncer.ini" || { bad "pgbouncer did not start"; exit 1; }
for _ in $(seq 1 50); do psql -X -h 127.0.0.1 -p "$PGB_PORT" -d "$DB" -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
if [ ! -s "$WORK/pgbouncer.pid" ] || ! kill -0 "$(cat "$WORK/pgbouncer.pid")" 2>/dev/null; then
  bad "pgbouncer is not running on port $PGB_PORT"; sed 's/^/# /' "$WORK/pgbouncer.log" 2>/dev/null | tail -5; exit 1
fi
PB() { psql -X -q -t -A -h 127.0.0.1 -p "$PGB_PORT" -d "$DB" -c "$1"; }

[ "$(PB "SHOW search_path")" = '"$user", public' ] && ok "pgbouncer: default search_path on pooled connections" || ok "pgbouncer: search_path is $(PB 'SHOW search_path')"
[ "$(PB "SELECT '1.25 USD'::wallet.amount + '2 USD'")" = "3.25 USD" ] \
  && ok "pgbouncer: amount operators resolve without wallet on the search_path" || bad "pgbouncer: operators"
[ "$(PB "SELECT sum(a) FROM (VALUES ('1 USD'::wallet.amount), ('2 USD')) v(a)")" = "3.00 USD" ] \
  && ok "pgbouncer: sum(amount) resolves without wallet on the search_path" || bad "pgbouncer: sum"

# concurrent transfers through the pooler: 16 clients over 3 server connections
cat > "$WORK/transfer.pgbench" <<'PGB'
\set a random(2, 51)
\set b random(2, 51)
\set amt random(1, 500)
BEGIN;
SET LOCAL wallet.actor = 'pgbench';
SELECT wallet.transfer(:a, CASE WHEN :a = :b THEN 1 ELSE :b END, wallet.amount(:amt::bigint, 'USD'), 'pgb-' || :client_id || '-' || txid_current());
COMMIT;
PGB
out=$("$PGBENCH" -n -h 127.0.0.1 -p "$PGB_PORT" -c 16 -j 2 -T "${WALLET_PGB_SECONDS:-5}" -f "$WORK/transfer.pgbench" "$DB" 2>&1)
errors=$(grep -c "ERROR" <<<"$out" | tr -d ' ')
unexpected=$(grep "ERROR" <<<"$out" | grep -vc "insufficient funds" | tr -d ' ')
tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n1)
[ "${unexpected:-0}" = 0 ] && ok "pgbouncer: 16 clients, 3 server connections, no unexpected error ($errors refusals for funds)" \
  || { bad "pgbouncer: unexpected errors"; grep ERROR <<<"$out" | grep -v "insufficient funds" | head -5 | sed 's/^/# /'; }
echo "# pgbouncer transaction pooling: ${tps:-?} transfers/s"
posted=$(PB "SELECT count(*) FROM wallet.txn WHERE idempotency_key LIKE 'pgb-%'")
[ "${posted:-0}" -gt 0 ] && ok "pgbouncer: $posted transfers posted" || bad "pgbouncer: nothing posted"
[ "$(PB "SELECT sum(wallet.units(balance)) FROM wallet.accounts")" = 0 ] && ok "pgbouncer: money conserved" || bad "pgbouncer: money not conserved"
[ "$(PB "SELECT count(*) FROM wallet.accounts WHERE NOT allow_negative AND wallet.units(balance) < 0")" = 0 ] \
  && ok "pgbouncer: no overdraft" || bad "pgbouncer: overdraft"
[ "$(PB "SELECT bool_and(ok) FROM wallet.verify()")" = t ] && ok "pgbouncer: verify() all ok" || bad "pgbouncer: verify failed"

# SET LOCAL wallet.actor reaches the audit log and does not leak to the next transaction
PB "SELECT wallet.open_account('carol', 'USD')" >/dev/null
id=$(PB "SELECT max(id) FROM wallet.account")
psql -X -q -h 127.0.0.1 -p "$PGB_PORT" -d "$DB" -c "BEGIN; SET LOCAL wallet.actor = 'ops:42'; SELECT wallet.freeze_account($id); COMMIT;" >/dev/null
PB "SELECT wallet.unfreeze_account($id)" >/dev/null
got=$(PB "SELECT string_agg(coalesce(actor, '-'), ',' ORDER BY id) FROM wallet.audit_log WHERE relation = 'wallet.account' AND operation = 'UPDATE' AND (new_row->>'id')::bigint = $id")
[ "$got" = "ops:42,-" ] && ok "pgbouncer: SET LOCAL wallet.actor is audited per transaction and does not leak" || bad "pgbouncer: actor trail is '$got'"
exit $fail
