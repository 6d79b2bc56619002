-- Reading: wallet.balance_at, wallet.statement, wallet.verify.
-- Contract: SPEC.md "Reading".  Transactions are stamped with now(), which
-- a test cannot choose: times are read back from wallet.transactions.
-- Test helpers (dropped at the end): ids are never printed, because they
-- depend on what ran before in this database.  reg() names an id; a(),
-- t(), h() give back the account, transaction or hold of a name; err(q)
-- runs q and returns 'ok' or 'SQLSTATE: message', errd(q) adds DETAIL and
-- HINT; in both, ids named with reg() are shown by their names.  state(q)
-- returns only the SQLSTATE.
\i sql/include/lt.sql
-- the statement of an account, without ids and times: which transaction
-- (by name), whether `at` is the transaction's time, and the rest (a
-- reversal's metadata names the original by id: that key is left out)
CREATE FUNCTION lt.statement(acct text, since timestamptz DEFAULT '-infinity', until timestamptz DEFAULT 'infinity')
RETURNS TABLE (n int, txn text, at_ok boolean, kind text, amount wallet.amount, balance wallet.amount,
               metadata jsonb, reverses text)
LANGUAGE sql AS $$
    SELECT row_number() OVER ()::int, coalesce(tn.name, '?'), s.at = t.created_at, s.kind, s.amount, s.balance,
           s.metadata - 'reverses', rn.name
      FROM wallet.statement(lt.a(acct), since, until) WITH ORDINALITY AS s
      JOIN wallet.transactions t ON t.id = s.txn_id
      LEFT JOIN lt.names tn ON tn.kind = 't' AND tn.id = s.txn_id
      LEFT JOIN lt.names rn ON rn.kind = 't' AND rn.id = s.reverses
     ORDER BY s.ordinality
$$;
CREATE FUNCTION lt.at(txn text) RETURNS timestamptz LANGUAGE sql STABLE
    AS $$ SELECT created_at FROM wallet.transactions WHERE id = lt.t(txn) $$;

SELECT lt.reg('a', wallet.open_account('lr-bank', 'USD', 'system', true), 'bank') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('lr-reader', 'USD'), 'reader') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('lr-other', 'USD'), 'other') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('lr-empty', 'JPY'), 'empty') IS NOT NULL AS opened;

-- five transactions, each in its own transaction (so each has its own time)
SELECT lt.reg('t', wallet.transfer(lt.a('bank'), lt.a('reader'), '100.00 USD', 'lr:1', 'deposit', '{"ref": "d-1"}'), 'r1') IS NOT NULL AS posted;
SELECT pg_sleep(0.01);
SELECT lt.reg('t', wallet.transfer(lt.a('reader'), lt.a('other'), '30.00 USD', 'lr:2', 'gift'), 'r2') IS NOT NULL AS posted;
SELECT pg_sleep(0.01);
SELECT lt.reg('t', wallet.post('lr:3', ARRAY[(lt.a('reader'), '-5.00 USD'), (lt.a('reader'), '2.00 USD'),
                                             (lt.a('other'), '3.00 USD')]::wallet.leg[], 'fee'), 'r3') IS NOT NULL AS posted;
SELECT pg_sleep(0.01);
SELECT lt.reg('t', wallet.reverse(lt.t('r2'), 'lr:4', 'mistake'), 'r4') IS NOT NULL AS posted;
SELECT pg_sleep(0.01);
SELECT lt.reg('t', wallet.transfer(lt.a('other'), lt.a('reader'), '0.01 USD', 'lr:5'), 'r5') IS NOT NULL AS posted;
-- the times are increasing
SELECT lt.at('r1') < lt.at('r2') AND lt.at('r2') < lt.at('r3') AND lt.at('r3') < lt.at('r4')
       AND lt.at('r4') < lt.at('r5') AS increasing;
-- one more that does not touch reader
SELECT lt.reg('t', wallet.transfer(lt.a('bank'), lt.a('other'), '1.00 USD', 'lr:6'), 'r6') IS NOT NULL AS posted;
SELECT wallet.balance(lt.a('reader')) AS reader, wallet.balance(lt.a('other')) AS other;

-- ---- balance_at ----
SELECT wallet.balance_at(lt.a('reader'), 'infinity') = wallet.balance(lt.a('reader')) AS infinity_is_balance,
       wallet.balance_at(lt.a('other'), 'infinity') = wallet.balance(lt.a('other')) AS infinity_is_balance_other,
       wallet.balance_at(lt.a('reader'), '-infinity') AS minus_infinity,
       wallet.balance_at(lt.a('empty'), 'infinity') AS empty_account;
-- at each transaction's time (inclusive) and just before it
SELECT txn, wallet.balance_at(lt.a('reader'), lt.at(txn) - interval '1 microsecond') AS just_before,
       wallet.balance_at(lt.a('reader'), lt.at(txn)) AS at_time
  FROM unnest(ARRAY['r1', 'r2', 'r3', 'r4', 'r5']) AS txn ORDER BY txn;
-- between two transactions
SELECT wallet.balance_at(lt.a('reader'), lt.at('r2') + (lt.at('r3') - lt.at('r2')) / 2) AS between_r2_r3;
SELECT q, lt.errd(q) AS result FROM (VALUES
  ($$SELECT wallet.balance_at(-1, now())$$),
  ($$SELECT wallet.balance_at(lt.a('reader'), NULL)$$)
) AS t(q);
SELECT lt.state($$SELECT wallet.balance_at(NULL, now())$$) AS null_account;

-- ---- statement ----
-- everything: one row per transaction (two legs on one account are one row),
-- oldest first, with the running balance
SELECT * FROM lt.statement('reader');
SELECT * FROM lt.statement('other');
-- the last running balance is the balance
SELECT (SELECT balance FROM wallet.statement(lt.a('reader')) ORDER BY at DESC, txn_id DESC LIMIT 1)
       = wallet.balance(lt.a('reader')) AS last_is_balance;
-- the running balance is the opening balance plus the amounts so far
SELECT bool_and(s.balance = wallet.balance_at(lt.a('reader'), s.at)) AS running_is_balance_at
  FROM wallet.statement(lt.a('reader')) s;
-- since is inclusive, the running balance starts from the balance before it
SELECT * FROM lt.statement('reader', lt.at('r3'));
-- until is exclusive
SELECT * FROM lt.statement('reader', '-infinity', lt.at('r3'));
SELECT * FROM lt.statement('reader', lt.at('r2'), lt.at('r4'));
-- NULL bounds are open
SELECT count(*) AS rows_null_bounds FROM wallet.statement(lt.a('reader'), NULL, NULL);
SELECT count(*) AS rows_defaults FROM wallet.statement(lt.a('reader'));
-- empty windows and an empty account
SELECT count(*) AS rows_empty_window FROM wallet.statement(lt.a('reader'), lt.at('r3'), lt.at('r3'));
SELECT count(*) AS rows_reversed_window FROM wallet.statement(lt.a('reader'), lt.at('r4'), lt.at('r2'));
SELECT count(*) AS rows_empty_account FROM wallet.statement(lt.a('empty'));
-- the columns
SELECT pg_get_function_arguments('wallet.statement(bigint, timestamptz, timestamptz)'::regprocedure) AS arguments,
       pg_get_function_result('wallet.statement(bigint, timestamptz, timestamptz)'::regprocedure) AS result;
SELECT q, lt.errd(q) AS result FROM (VALUES
  ($$SELECT * FROM wallet.statement(-1, '-infinity', 'infinity')$$)
) AS t(q);
SELECT lt.state($$SELECT * FROM wallet.statement(NULL, '-infinity', 'infinity')$$) AS null_account;

-- ---- wallet.accounts agrees with balance and available ----
SELECT n.name, v.balance = wallet.balance(v.id) AS balance_ok, v.available = wallet.available(v.id) AS available_ok
  FROM wallet.accounts v JOIN lt.names n ON n.kind = 'a' AND n.id = v.id ORDER BY n.name;
SELECT count(*) AS disagreeing_accounts FROM wallet.accounts v
 WHERE v.balance <> wallet.balance(v.id) OR v.available <> wallet.available(v.id);

-- ---- verify: every check, all ok after everything before ----
SELECT check_name, ok FROM wallet.verify() WHERE check_name NOT LIKE 'audit:%' ORDER BY check_name;
SELECT bool_and(ok) AS all_ok, count(*) FILTER (WHERE NOT ok) AS failing FROM wallet.verify();
-- in one consistent snapshot, as auditors run it
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT bool_and(ok) AS all_ok FROM wallet.verify();
COMMIT;
-- the details that do not depend on what else is in the database
SELECT check_name, detail FROM wallet.verify()
 WHERE check_name IN ('journal_references') ORDER BY check_name;
SELECT check_name, detail ~ '^[0-9]+ transactions balance in every currency$' AS detail_ok FROM wallet.verify()
 WHERE check_name = 'transactions_balance';
SELECT check_name, detail ~ '^[0-9]+ accounts match their entries$' AS detail_ok FROM wallet.verify()
 WHERE check_name = 'balances_match_entries';

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA lt CASCADE;
RESET client_min_messages;
