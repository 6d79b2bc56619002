-- test/bench/setup.sql: the accounts every workload uses.  psql -v n=N.
--   bench_raw: the plain-SQL reference ledger (no extension involved):
--     accounts 1..n funded with 10^12 minor units, account 0 the hot one.
--   wallet: a 'bench-bank' account allowed to go negative funds n USD user
--     accounts (owner u1..un, contiguous ids) with 10^12 minor units each,
--     through wallet.transfer; 'bench-creator' is marked hot.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE SCHEMA bench_raw;
CREATE TABLE bench_raw.accounts (
    id      bigint PRIMARY KEY,
    balance bigint NOT NULL CHECK (balance >= 0)
);
CREATE TABLE bench_raw.entries (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txn     bigint NOT NULL,
    account bigint NOT NULL,
    amount  bigint NOT NULL
);
INSERT INTO bench_raw.accounts (id, balance) SELECT 0, 0;
INSERT INTO bench_raw.accounts (id, balance) SELECT g, 1000000000000 FROM generate_series(1, :n) g;
INSERT INTO bench_raw.entries (txn, account, amount) SELECT 0, g, 1000000000000 FROM generate_series(1, :n) g;

SELECT wallet.open_account('bench-bank', 'USD', 'system', true) AS bank \gset
SELECT count(wallet.open_account('u' || g, 'USD')) FROM generate_series(1, :n) g;
SELECT min(id) AS lo, max(id) AS hi FROM wallet.account WHERE owner ~ '^u[0-9]+$' \gset
SELECT count(wallet.transfer(:bank, id, wallet.amount(1000000000000::bigint, 'USD'), 'fund-' || id))
  FROM wallet.account WHERE id BETWEEN :lo AND :hi;
SELECT wallet.open_account('bench-creator', 'USD') AS hot \gset
SELECT wallet.set_hot(:hot);
CREATE TABLE bench_raw.ids AS SELECT :bank::bigint AS bank, :lo::bigint AS lo, :hi::bigint AS hi, :hot::bigint AS hot;
-- the funding journal filed per account before anything is measured
SELECT wallet.index_history() >= 0 AS filed;
VACUUM ANALYZE;
