-- test/pgtap/review_history.sql — wallet.index_history() against other
-- sessions (dblink): ids committing out of order, a writer whose first
-- posting was rolled back to a savepoint, a prepared transaction, a
-- REPEATABLE READ reader across a pass, and two passes at once.  In every
-- case the horizon never passes an id that may still commit, nothing is
-- filed twice, and wallet.account_entries equals the journal.
-- Runs outside an enclosing transaction (the other sessions must see our
-- commits).  The housekeeping worker may run its own passes meanwhile: every
-- check holds whoever files.  Rows made here are named "rvh-", in USD
-- against their own system account.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;

SELECT plan(25);

\ir include/helpers.sql
-- the entries of account acc that account_entries and the journal disagree on
CREATE FUNCTION pg_temp.diff(acc bigint) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM (
        (SELECT x.txn_id, x.units FROM wallet.account_entries x WHERE x.account_id = acc
         EXCEPT ALL SELECT e.txn_id, e.amount FROM wallet.entry e WHERE e.account_id = acc)
        UNION ALL
        (SELECT e.txn_id, e.amount FROM wallet.entry e WHERE e.account_id = acc
         EXCEPT ALL SELECT x.txn_id, x.units FROM wallet.account_entries x WHERE x.account_id = acc)) d
$$;
-- how many times transaction t of account acc is filed in account_history
CREATE FUNCTION pg_temp.filed(acc bigint, t bigint) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM wallet.account_history h, unnest(h.txn_ids) AS u(x)
     WHERE h.account_id = acc AND u.x = t
$$;
CREATE FUNCTION pg_temp.drain(conn text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint := 0; k bigint;
BEGIN
    LOOP
        SELECT count(*) INTO k FROM dblink_get_result(conn) AS r(x text);
        EXIT WHEN k = 0;
        n := n + k;
    END LOOP;
    RETURN n;
END $$;

SELECT wallet.open_account('rvh-bank', 'USD', 'system', true) AS bank \gset
SELECT wallet.open_account('rvh-bank2', 'USD', 'system', true) AS bank2 \gset
SELECT wallet.open_account('rvh-a', 'USD') AS a \gset
SELECT wallet.open_account('rvh-b', 'USD') AS b \gset
SELECT format('host=''%s'' port=%s dbname=''%s'' user=''%s''',
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port'), current_database(), current_user) AS conninfo \gset
SELECT dblink_connect('rvh_o', :'conninfo') AS connected \gset
SELECT dblink_connect('rvh_p', :'conninfo') AS connected \gset

-- (history_merged_through() is STABLE: read it in a statement after the
-- pass, not in the pass's own statement)

-- ---- 1. ids commit out of order: the earlier id is still open
SELECT dblink_exec('rvh_o', 'BEGIN') AS o \gset
SELECT id AS early FROM dblink('rvh_o', format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'rvh-early')$$, :bank, :a)) AS t(id bigint) \gset
SELECT wallet.transfer(:bank2, :b, '2.00 USD', 'rvh-late') AS late \gset
SELECT ok(:late > :early, '1: the posting that commits first has the higher id');
SET lock_timeout = '300ms';
SELECT is(pg_temp.state('SELECT wallet.index_history()'), '55P03',
          '1: index_history() waits for the writer still open (lock_timeout)');
RESET lock_timeout;
SELECT ok(wallet.history_merged_through() < :early, '1: the horizon stays below the open writer''s id');
SELECT is(pg_temp.diff(:b), 0::bigint, '1: the committed later posting reads from the tail');
SELECT dblink_exec('rvh_o', 'COMMIT') AS o \gset
SELECT ok(wallet.index_history() >= 0, '1: a pass after the commit');
SELECT ok(wallet.history_merged_through() >= :late, '1: the horizon now covers both ids');
SELECT is(pg_temp.filed(:a, :early), 1::bigint, '1: the early id, committed last, is filed once');
SELECT is(pg_temp.filed(:b, :late), 1::bigint, '1: the late id is filed once');
SELECT is(pg_temp.diff(:a) + pg_temp.diff(:b), 0::bigint, '1: account_entries equals the journal');

-- ---- 2. the writer's first posting is rolled back to a savepoint (its
-- writer lock goes with it), then it posts again: still waited for
SELECT dblink_exec('rvh_o', 'BEGIN') AS o \gset
SELECT dblink_exec('rvh_o', 'SAVEPOINT s') AS o \gset
SELECT id AS lost FROM dblink('rvh_o', format($$SELECT wallet.transfer(%s, %s, '4.00 USD', 'rvh-lost')$$, :bank, :a)) AS t(id bigint) \gset
SELECT dblink_exec('rvh_o', 'ROLLBACK TO SAVEPOINT s') AS o \gset
SELECT id AS kept FROM dblink('rvh_o', format($$SELECT wallet.transfer(%s, %s, '8.00 USD', 'rvh-kept')$$, :bank, :a)) AS t(id bigint) \gset
SELECT wallet.transfer(:bank2, :b, '16.00 USD', 'rvh-after-kept') AS after_kept \gset
SET lock_timeout = '300ms';
SELECT is(pg_temp.state('SELECT wallet.index_history()'), '55P03',
          '2: the writer that re-posted after ROLLBACK TO is waited for');
RESET lock_timeout;
SELECT ok(wallet.history_merged_through() < :kept, '2: the horizon stays below its id');
SELECT dblink_exec('rvh_o', 'COMMIT') AS o \gset
SELECT wallet.index_history() >= 0 AS filed \gset
SELECT ok(wallet.history_merged_through() >= :after_kept, '2: filed after its commit');
SELECT is(pg_temp.filed(:a, :kept) + pg_temp.filed(:a, :lost), 1::bigint, '2: the kept posting is filed, the rolled-back one is not');
SELECT is(pg_temp.diff(:a) + pg_temp.diff(:b), 0::bigint, '2: account_entries equals the journal');

-- ---- 3. a prepared transaction holds its writer lock until COMMIT PREPARED
SELECT current_setting('max_prepared_transactions')::int > 0 AS can_prepare \gset
\if :can_prepare
SELECT dblink_exec('rvh_o', 'BEGIN') AS o \gset
SELECT id AS prepared FROM dblink('rvh_o', format($$SELECT wallet.transfer(%s, %s, '32.00 USD', 'rvh-prepared')$$, :bank, :a)) AS t(id bigint) \gset
SELECT dblink_exec('rvh_o', $$PREPARE TRANSACTION 'rvh-prepared'$$) AS o \gset
SELECT wallet.transfer(:bank2, :b, '64.00 USD', 'rvh-after-prepared') AS after_prepared \gset
SET lock_timeout = '300ms';
SELECT is(pg_temp.state('SELECT wallet.index_history()'), '55P03',
          '3: a prepared transaction that posted is waited for');
RESET lock_timeout;
SELECT ok(wallet.history_merged_through() < :prepared, '3: the horizon stays below its id');
SELECT dblink_exec('rvh_o', $$COMMIT PREPARED 'rvh-prepared'$$) AS o \gset
SELECT wallet.index_history() >= 0 AS filed \gset
SELECT ok(wallet.history_merged_through() >= :after_prepared, '3: filed after COMMIT PREPARED');
SELECT is(pg_temp.filed(:a, :prepared), 1::bigint, '3: the prepared posting is filed once');
\else
SELECT skip('max_prepared_transactions is 0', 4);
\endif

-- ---- 4. a REPEATABLE READ reader sees one split for its whole transaction
SELECT dblink_exec('rvh_o', 'BEGIN ISOLATION LEVEL REPEATABLE READ') AS o \gset
SELECT s AS rr_before FROM dblink('rvh_o', format('SELECT coalesce(sum(units), 0)::bigint FROM wallet.account_entries WHERE account_id = %s', :a)) AS t(s bigint) \gset
SELECT wallet.transfer(:bank, :a, '0.10 USD', 'rvh-rr') IS NOT NULL AS posted \gset
SELECT wallet.index_history() >= 0 AS filed \gset
SELECT ok(wallet.history_merged_through() >= (SELECT id FROM wallet.txn WHERE idempotency_key = 'rvh-rr'),
          '4: a pass files the new posting while the reader is open');
SELECT is((SELECT s FROM dblink('rvh_o', format('SELECT coalesce(sum(units), 0)::bigint FROM wallet.account_entries WHERE account_id = %s', :a)) AS t(s bigint)),
          :rr_before::bigint, '4: the reader''s sum is unchanged inside its snapshot');
SELECT is((SELECT s FROM dblink('rvh_o', format('SELECT count(*) - count(DISTINCT (txn_id, units)) FROM wallet.account_entries WHERE account_id = %s', :a)) AS t(s bigint)),
          0::bigint, '4: ... and reads no entry twice');
SELECT dblink_exec('rvh_o', 'COMMIT') AS o \gset
SELECT is((SELECT coalesce(sum(units), 0)::bigint FROM wallet.account_entries WHERE account_id = :a), :rr_before::bigint + 10,
          '4: after it, the new posting counts');

-- ---- 5. two passes at once: the second waits for the first and files nothing twice
SELECT wallet.transfer(:bank, :a, '0.20 USD', 'rvh-two-passes') IS NOT NULL AS posted \gset
SELECT dblink_exec('rvh_o', 'BEGIN') AS o \gset
SELECT n AS first_pass FROM dblink('rvh_o', 'SELECT wallet.index_history()') AS t(n bigint) \gset
SELECT dblink_send_query('rvh_p', 'SELECT wallet.index_history()') AS sent \gset
SELECT pg_sleep(0.3) IS NOT NULL AS slept \gset
SELECT dblink_exec('rvh_o', 'COMMIT') AS o \gset
SELECT n AS second_pass FROM dblink_get_result('rvh_p') AS t(n bigint) \gset
SELECT ok(pg_temp.drain('rvh_p') >= 0, '5: the second pass ended');
SELECT is(pg_temp.filed(:a, (SELECT id FROM wallet.txn WHERE idempotency_key = 'rvh-two-passes')), 1::bigint,
          '5: the posting is filed exactly once');
SELECT is((SELECT ok FROM wallet.verify() WHERE check_name = 'account_history_matches_journal'), true,
          '5: verify(): account_history matches the journal');

SELECT dblink_disconnect('rvh_o') AS disconnected \gset
SELECT dblink_disconnect('rvh_p') AS disconnected \gset
SELECT * FROM finish();
