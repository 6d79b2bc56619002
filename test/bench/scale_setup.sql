-- test/bench/scale_setup.sql (long mode): n funded USD accounts in the
-- current database, for the scale row.  Opening and funding 10 M accounts
-- through the API would take far longer than the run itself, so this writes
-- the tables directly, as the superuser, once, before measuring:
--   wallet.account: n rows with balance 10^9 (10^12 would overflow the
--   bank's bigint balance at 10 M accounts);
--   wallet.txn/wallet.entry: the journal that explains those balances, one
--   balanced funding transaction per 30,000 accounts (leg 1 debits the
--   bank), so wallet.verify() still holds.
-- Nothing here is measured.  psql -v n=N.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET maintenance_work_mem = '1GB';
-- one transaction, with the housekeeping worker paused by bench.sh: the
-- sealer must never see a funding transaction without its entries
BEGIN;
SELECT wallet.open_account('bench-bank', 'USD', 'system', true) AS bank \gset
SELECT nextval('wallet.account_id_seq') AS lo \gset
INSERT INTO wallet.account (id, owner, currency, balance)
SELECT :lo + k, 'u' || (k + 1), 'USD', 1000000000 FROM generate_series(0, :n - 1) k;
SELECT setval('wallet.account_id_seq', :lo + :n - 1) AS hi \gset
CREATE TEMP TABLE chunk AS
SELECT c, nextval('wallet.txn_id_seq') AS txn_id, least(30000, :n - c * 30000) AS accounts
  FROM generate_series(0, (:n - 1) / 30000) c;
INSERT INTO wallet.txn (id, idempotency_key, kind, request_hash)
SELECT txn_id, 'fund-chunk-' || c, 'bench_load', sha256(convert_to('fund-chunk-' || c, 'UTF8')) FROM chunk;
INSERT INTO wallet.entry (txn_id, leg, account_id, amount)
SELECT txn_id, 1, :bank, -1000000000::bigint * accounts FROM chunk;
INSERT INTO wallet.entry (txn_id, leg, account_id, amount)
SELECT ch.txn_id, (k % 30000 + 2)::smallint, :lo + k, 1000000000
  FROM generate_series(0, :n - 1) k JOIN chunk ch ON ch.c = k / 30000;
UPDATE wallet.account SET balance = -1000000000 * :n::bigint WHERE id = :bank;
CREATE SCHEMA bench_raw;
CREATE TABLE bench_raw.ids AS SELECT :bank::bigint AS bank, :lo::bigint AS lo, :hi::bigint AS hi, 0::bigint AS hot;
COMMIT;
-- file the funding journal per account now, not during the measured runs
SELECT wallet.index_history();
VACUUM ANALYZE;
