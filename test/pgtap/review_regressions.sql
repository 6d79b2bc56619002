-- test/pgtap/review_regressions.sql — defects a review of 1.1.0 found
-- before it was released (R1-R5), each fixed; these assertions keep them
-- fixed.  Each scenario runs in a scratch database of
-- its own (created and dropped here through dblink), so the ledger of the
-- shared test database is never touched.
--   R1  ALTER EXTENSION wallet UPDATE to 1.1.0 breaks the database's own
--       views (ORDER BY / GROUP BY / window / ordered aggregate on an
--       amount column), and pg_dump then writes them as "USING <", which
--       does not restore.
--   R2  a session open across that update cannot ORDER BY an amount any
--       more (its type cache keeps the old ordering operator).
--   R3  a hot account's posted balance can leave int64: the exact check of
--       a large credit that locks the row ignores credits still in flight;
--       the account is then wedged and wallet.verify() errors.
--   R4  audit_verify() misses a forged journal transaction with id
--       -9223372036854775808.
--   R5  with CACHE > 1 on wallet.txn_id_seq, index_history() files past
--       ids still cached by other sessions: later postings with those ids
--       vanish from account_entries, statements and balance_at.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;

SELECT plan(14);

-- run q (one statement) on connection conn: 'ok' or the SQLSTATE
CREATE FUNCTION pg_temp.state(conn text, q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF q ~* '^\s*select' THEN
        PERFORM * FROM dblink(conn, format('SELECT ''x'' FROM (%s) s', q)) AS t(x text);
    ELSE
        PERFORM dblink_exec(conn, q);
    END IF;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
-- run a one-column query q on conn for its effect
CREATE FUNCTION pg_temp.run(conn text, q text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM dblink(conn, q) AS t(x text)
$$;
-- first column of the first row of q on conn, as text, or the SQLSTATE
CREATE FUNCTION pg_temp.val(conn text, q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    SELECT x INTO r FROM dblink(conn, q) AS t(x text);
    RETURN coalesce(r, '<null>');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
CREATE FUNCTION pg_temp.conninfo(db text) RETURNS text LANGUAGE sql AS $$
    SELECT format('host=''%s'' port=%s dbname=''%s'' user=''%s''',
                  split_part(current_setting('unix_socket_directories'), ',', 1),
                  current_setting('port'), db, current_user)
$$;

SELECT dblink_connect('rvb_admin', pg_temp.conninfo(current_database())) AS connected \gset
SELECT dblink_exec('rvb_admin', 'DROP DATABASE IF EXISTS rvb_upgrade WITH (FORCE)') AS d \gset
SELECT dblink_exec('rvb_admin', 'DROP DATABASE IF EXISTS rvb_ledger WITH (FORCE)') AS d \gset
SELECT dblink_exec('rvb_admin', 'CREATE DATABASE rvb_upgrade') AS d \gset
SELECT dblink_exec('rvb_admin', 'CREATE DATABASE rvb_ledger') AS d \gset

-- ---- R1, R2: the 1.0.0 -> 1.1.0 update and amount orderings
SELECT dblink_connect('rvb_up', pg_temp.conninfo('rvb_upgrade')) AS connected \gset
SELECT dblink_exec('rvb_up', $$
    CREATE EXTENSION wallet VERSION '1.0.0';
    CREATE TABLE public.prices (id int, price wallet.amount);
    INSERT INTO public.prices VALUES (1, '5.00 USD'), (2, '3.00 USD'), (3, '1.00 EUR');
    CREATE VIEW public.prices_sorted AS SELECT id, price FROM public.prices ORDER BY price;
    CREATE VIEW public.prices_ranked AS SELECT id, rank() OVER (ORDER BY price) AS r FROM public.prices;
    CREATE VIEW public.prices_ids AS SELECT array_agg(id ORDER BY price) AS ids FROM public.prices$$) AS d \gset
-- this session sorts amounts before the update (fills its type cache)
SELECT is(pg_temp.val('rvb_up', 'SELECT string_agg(id::text, '','' ORDER BY price) FROM public.prices'), '3,2,1',
          'R2 control: ORDER BY an amount under 1.0.0');
SELECT is(pg_temp.state('rvb_up', $$ALTER EXTENSION wallet UPDATE TO '1.1.0'$$), 'ok', 'R1: the update itself succeeds');
SELECT is(pg_temp.val('rvb_up', 'SELECT string_agg(id::text, '','' ORDER BY price) FROM public.prices'), '3,2,1',
          'R2: the session that ran the update can still ORDER BY an amount');
SELECT dblink_disconnect('rvb_up') AS d \gset
SELECT dblink_connect('rvb_up', pg_temp.conninfo('rvb_upgrade')) AS connected \gset
SELECT is(pg_temp.val('rvb_up', 'SELECT string_agg(id::text, '','') FROM public.prices_sorted'), '3,2,1',
          'R1: a view with ORDER BY on an amount column still works after the update');
SELECT is(pg_temp.val('rvb_up', 'SELECT string_agg(id::text, '','' ORDER BY r) FROM public.prices_ranked'), '3,2,1',
          'R1: a view with a window ORDER BY on an amount column still works after the update');
SELECT is(pg_temp.val('rvb_up', 'SELECT ids::text FROM public.prices_ids'), '{3,2,1}',
          'R1: a view with an ordered aggregate on an amount column still works after the update');
-- what pg_dump writes for such a view must restore into a fresh 1.1.0
SELECT is(pg_temp.state('rvb_up', 'CREATE VIEW public.restored AS ' || pg_temp.val('rvb_up', $$SELECT pg_get_viewdef('public.prices_sorted'::regclass)$$)),
          'ok', 'R1: the view as pg_dump writes it (ORDER BY ... USING <) can be created again');
SELECT dblink_disconnect('rvb_up') AS d \gset

-- ---- R3, R4, R5: a 1.1.0 ledger
SELECT dblink_connect('rvb_l', pg_temp.conninfo('rvb_ledger')) AS connected \gset
SELECT dblink_connect('rvb_l2', pg_temp.conninfo('rvb_ledger')) AS connected \gset
SELECT dblink_exec('rvb_l', 'CREATE EXTENSION wallet') AS d \gset
SELECT pg_temp.run('rvb_l', $$SELECT wallet.add_currency('PTS', 0, 'points')::text$$) AS d \gset
SELECT x::bigint AS src1 FROM dblink('rvb_l', $$SELECT wallet.open_account('src1', 'PTS', 'system', true)::text$$) AS t(x text) \gset
SELECT x::bigint AS src2 FROM dblink('rvb_l', $$SELECT wallet.open_account('src2', 'PTS', 'system', true)::text$$) AS t(x text) \gset
SELECT x::bigint AS acc FROM dblink('rvb_l', $$SELECT wallet.open_account('acc', 'PTS')::text$$) AS t(x text) \gset
SELECT x::bigint AS star FROM dblink('rvb_l', $$SELECT wallet.open_account('star', 'PTS', 'creator')::text$$) AS t(x text) \gset
SELECT pg_temp.run('rvb_l', format('SELECT wallet.set_hot(%s)::text', :star)) AS d \gset

-- R4: a forged journal transaction at the lowest id, after a seal
SELECT pg_temp.run('rvb_l', format($$SELECT wallet.transfer(%s, %s, wallet.amount(5::bigint, 'PTS'), 'r4-real')::text$$, :src1, :acc)) AS d \gset
SELECT x AS head FROM dblink('rvb_l', $$SELECT wallet.digest()$$) AS t(x text) \gset
SELECT dblink_exec('rvb_l', $$
    BEGIN;
    SET LOCAL session_replication_role = replica;
    INSERT INTO wallet.txn (id, idempotency_key, kind, request_hash) VALUES (-9223372036854775808, 'r4-forged', 'transfer', '\x00');
    COMMIT$$) AS d \gset
SELECT is(pg_temp.val('rvb_l', format($$SELECT ok::text FROM wallet.audit_verify(%L) WHERE check_name = 'journal_records'$$, :'head')),
          'false', 'R4: audit_verify() finds a journal transaction forged with id -9223372036854775808');
SELECT dblink_exec('rvb_l', $$
    BEGIN;
    SET LOCAL session_replication_role = replica;
    DELETE FROM wallet.txn WHERE id = -9223372036854775808;
    COMMIT$$) AS d \gset

-- R5: CACHE on the transaction sequence (a DBA's tuning)
SELECT dblink_exec('rvb_l', 'ALTER SEQUENCE wallet.txn_id_seq CACHE 10') AS d \gset
SELECT pg_temp.run('rvb_l2', format($$SELECT wallet.transfer(%s, %s, wallet.amount(1::bigint, 'PTS'), 'r5-1')::text$$, :src2, :acc)) AS d \gset
SELECT pg_temp.run('rvb_l', format($$SELECT wallet.transfer(%s, %s, wallet.amount(2::bigint, 'PTS'), 'r5-2')::text$$, :src1, :acc)) AS d \gset
SELECT pg_temp.state('rvb_l', 'SELECT wallet.index_history()') AS r5_pass \gset
-- rvb_l2 posts again with an id from its cache, below the horizon
SELECT pg_temp.run('rvb_l2', format($$SELECT wallet.transfer(%s, %s, wallet.amount(4::bigint, 'PTS'), 'r5-3')::text$$, :src2, :acc)) AS d \gset
SELECT ok(:'r5_pass' <> 'ok'
          OR pg_temp.val('rvb_l', format('SELECT (SELECT sum(units) FROM wallet.account_entries WHERE account_id = %s) = wallet.units(wallet.balance(%s))', :acc, :acc)) = 'true',
          'R5: with CACHE > 1 on wallet.txn_id_seq, either index_history() refuses or account_entries keeps every posting');
SELECT dblink_exec('rvb_l', 'ALTER SEQUENCE wallet.txn_id_seq CACHE 1') AS d \gset

-- R3: a credit left open on a hot account (skips the row lock), then a
-- credit past the safe bound (locks the row and the account's hot lock
-- exclusively, so it waits for the credit in flight, then checks stored +
-- pending + credit exactly): the second fails with 22003
SELECT dblink_exec('rvb_l2', 'BEGIN') AS d \gset
SELECT pg_temp.run('rvb_l2', format($$SELECT wallet.transfer(%s, %s, wallet.amount(1000::bigint, 'PTS'), 'r3-small')::text$$, :src2, :star)) AS d \gset
SELECT dblink_send_query('rvb_l', format($$SELECT wallet.transfer(%s, %s, wallet.amount(9223372036854775797::bigint, 'PTS'), 'r3-big')::text$$, :src1, :star)) AS sent \gset
SELECT pg_sleep(0.3) AS slept \gset
SELECT is(dblink_is_busy('rvb_l'), 1, 'R3: the credit past the safe bound waits for the credit in flight');
SELECT pg_temp.state('rvb_l2', 'COMMIT') AS r3_small \gset
SELECT count(*) AS rows FROM dblink_get_result('rvb_l', false) AS t(x text) \gset
SELECT ok(dblink_error_message('rvb_l') LIKE '%would overflow%',
          'R3: ... and then fails with 22003, counting it');
SELECT count(*) AS rows FROM dblink_get_result('rvb_l', false) AS t(x text) \gset
SELECT isnt(pg_temp.val('rvb_l', format('SELECT wallet.balance(%s)::text', :star)), '22003',
            'R3: the hot account''s posted balance stays within int64 raises 22003)');
SELECT isnt(pg_temp.val('rvb_l', 'SELECT bool_and(ok)::text FROM wallet.verify()'), '22003',
            'R3: wallet.verify() still runs');
SELECT isnt(pg_temp.state('rvb_l', format($$SELECT wallet.transfer(%s, %s, wallet.amount(100000::bigint, 'PTS'), 'r3-out')$$, :star, :acc)),
            '22003', 'R3: funds can still be moved out of the account');

SELECT dblink_disconnect('rvb_l') AS d \gset
SELECT dblink_disconnect('rvb_l2') AS d \gset
SELECT dblink_exec('rvb_admin', 'DROP DATABASE rvb_upgrade WITH (FORCE)') AS d \gset
SELECT dblink_exec('rvb_admin', 'DROP DATABASE rvb_ledger WITH (FORCE)') AS d \gset
SELECT dblink_disconnect('rvb_admin') AS d \gset
SELECT * FROM finish();
