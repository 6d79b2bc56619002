-- test/pgtap/contract_concurrency.sql — SPEC.md "Posting" and "Holds"
-- under a second session (dblink): a retried request that races the first
-- one returns its id (same request) or WL006 (different request) and
-- never posts twice; a key whose first use rolled back is free; two
-- debits racing for the same funds never overdraw; two reversals of one
-- transaction: one wins, the other gets WL010; capture racing void on one
-- hold: it ends exactly once, the loser gets WL008.  Runs outside an
-- enclosing transaction (the other session must see our commits); every
-- row it makes has a "cc-" name, in USD against its own system account, so
-- balances per currency stay at zero for the other files.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;

SELECT plan(19);

\ir include/helpers.sql
-- waits for the other session's asynchronous query to finish
CREATE FUNCTION pg_temp.drain() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint := 0; k bigint;
BEGIN
    LOOP
        SELECT count(*) INTO k FROM dblink_get_result('cc_other') AS r(x text);
        EXIT WHEN k = 0;
        n := n + k;
    END LOOP;
    RETURN n;
END $$;

SELECT wallet.open_account('cc-bank', 'USD', 'system', true) AS bank \gset
SELECT wallet.open_account('cc-a', 'USD') AS a \gset
SELECT wallet.open_account('cc-b', 'USD') AS b \gset
SELECT wallet.open_account('cc-c', 'USD') AS c \gset
SELECT wallet.transfer(:bank, :a, '10.00 USD', 'cc-fund-a-' || :a) IS NULL AS ignored \gset
SELECT dblink_connect('cc_other', format('host=''%s'' port=%s dbname=''%s'' user=''%s''',
           split_part(current_setting('unix_socket_directories'), ',', 1),
           current_setting('port'), current_database(), current_user)) AS connected \gset

-- ---- 1. the same key and request while the first call is still open
SELECT dblink_exec('cc_other', 'BEGIN') AS o \gset
SELECT id AS first_id FROM dblink('cc_other', format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'cc-k1-%s')$$, :bank, :b, :b)) AS t(id bigint) \gset
SELECT dblink_send_query('cc_other', 'SELECT pg_sleep(0.3); COMMIT') AS sent \gset
SELECT is(pg_temp.val(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'cc-k1-%s')$$, :bank, :b, :b)), :'first_id',
          'a retry racing the first call waits for it and returns its id');
SELECT ok(pg_temp.drain() >= 0, 'the other session committed');
SELECT is((SELECT count(*) FROM wallet.transactions WHERE idempotency_key = 'cc-k1-' || :b), 1::bigint, 'one transaction for the key');
SELECT is(wallet.units(wallet.balance(:b)), 100::bigint, 'posted once');

-- ---- 2. the same key, another request, while the first is open
SELECT dblink_exec('cc_other', 'BEGIN') AS o \gset
SELECT id AS k2_id FROM dblink('cc_other', format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'cc-k2-%s')$$, :bank, :b, :b)) AS t(id bigint) \gset
SELECT dblink_send_query('cc_other', 'SELECT pg_sleep(0.3); COMMIT') AS sent \gset
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '2.00 USD', 'cc-k2-%s')$$, :bank, :b, :b)), 'WL006',
          'a different request racing the first: WL006 once it commits');
SELECT ok(pg_temp.drain() >= 0, 'the other session committed');
SELECT is(wallet.units(wallet.balance(:b)), 200::bigint, 'only the first request posted');

-- ---- 3. the first call rolls back: the key is free
SELECT dblink_exec('cc_other', 'BEGIN') AS o \gset
SELECT id AS k3_lost FROM dblink('cc_other', format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'cc-k3-%s')$$, :bank, :b, :b)) AS t(id bigint) \gset
SELECT dblink_send_query('cc_other', 'SELECT pg_sleep(0.3); ROLLBACK') AS sent \gset
SELECT isnt(pg_temp.val(format($$SELECT wallet.transfer(%s, %s, '5.00 USD', 'cc-k3-%s')$$, :bank, :b, :b)), :'k3_lost',
            'a key whose first use rolled back posts anew (another request is fine)');
SELECT ok(pg_temp.drain() >= 0, 'the other session rolled back');
SELECT is(wallet.units(wallet.balance(:b)), 700::bigint, 'only our request posted');

-- ---- 4. two debits racing for the same funds (a has 10.00)
SELECT dblink_exec('cc_other', 'BEGIN') AS o \gset
SELECT id AS spend1 FROM dblink('cc_other', format($$SELECT wallet.transfer(%s, %s, '8.00 USD', 'cc-s1-%s')$$, :a, :b, :a)) AS t(id bigint) \gset
SELECT dblink_send_query('cc_other', 'SELECT pg_sleep(0.3); COMMIT') AS sent \gset
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '8.00 USD', 'cc-s2-%s')$$, :a, :c, :a)), 'WL001',
          'the second debit sees the committed first one: WL001, no overdraft');
SELECT ok(pg_temp.drain() >= 0, 'the other session committed');
SELECT is(wallet.units(wallet.balance(:a)), 200::bigint, 'a: 10.00 - 8.00, never negative');

-- ---- 5. two reversals of one transaction
SELECT wallet.transfer(:bank, :c, '3.00 USD', 'cc-rv-' || :c) AS rv_t \gset
SELECT dblink_exec('cc_other', 'BEGIN') AS o \gset
SELECT id AS rv1 FROM dblink('cc_other', format($$SELECT wallet.reverse(%s, 'cc-rv1-%s')$$, :rv_t, :c)) AS t(id bigint) \gset
SELECT dblink_send_query('cc_other', 'SELECT pg_sleep(0.3); COMMIT') AS sent \gset
SELECT is(pg_temp.state(format($$SELECT wallet.reverse(%s, 'cc-rv2-%s')$$, :rv_t, :c)), 'WL010',
          'a second reversal racing the first: WL010');
SELECT ok(pg_temp.drain() >= 0, 'the other session committed');
SELECT is(wallet.units(wallet.balance(:c)), 0::bigint, 'reversed exactly once');

-- ---- 6. capture racing void on one hold
SELECT wallet.transfer(:bank, :c, '5.00 USD', 'cc-h-fund-' || :c) IS NULL AS ignored \gset
SELECT wallet.hold(:c, :b, '4.00 USD', 'cc-h-' || :c) AS h \gset
SELECT dblink_exec('cc_other', 'BEGIN') AS o \gset
SELECT x AS voided FROM dblink('cc_other', format('SELECT wallet.void(%s)::text', :h)) AS t(x text) \gset
SELECT dblink_send_query('cc_other', 'SELECT pg_sleep(0.3); COMMIT') AS sent \gset
SELECT is(pg_temp.state(format('SELECT wallet.capture(%s)', :h)), 'WL008', 'capture racing a void: the hold ends once, capture gets WL008');
SELECT ok(pg_temp.drain() >= 0, 'the other session committed');
SELECT is((SELECT row(status, wallet.units(wallet.balance(:c)), wallet.units(wallet.available(:c)))::text FROM wallet.holds WHERE id = :h),
          row('voided', 500::bigint, 500::bigint)::text, 'voided, nothing captured, funds released');

SELECT dblink_disconnect('cc_other') AS disconnected \gset
SELECT * FROM finish();
