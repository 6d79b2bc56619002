-- The journal per account (src/history.c, ext/install/35_history.sql):
-- wallet.index_history() files committed entries into
-- wallet.account_history behind the postings; wallet.account_entries,
-- statements and balance_at read the filed history plus the journal's
-- tail.  The housekeeping worker may file at any moment while this runs,
-- so every check here holds whether an entry is filed or still in the
-- tail, and the checks that depend on one pass filing a known set of
-- entries run inside one transaction that files them itself.
-- Ids are captured with \gset and never printed.
SELECT wallet.open_account('hi-bank', 'USD', 'system', true) AS bank \gset
SELECT wallet.open_account('hi-a', 'USD') AS a \gset
SELECT wallet.open_account('hi-b', 'USD') AS b \gset
SELECT wallet.open_account('hi-c', 'EUR') AS c \gset
SELECT wallet.open_account('hi-bank-eur', 'EUR', 'system', true) AS bank_eur \gset

-- ground truth straight from the journal, for comparisons
CREATE FUNCTION public.hi_truth(acc bigint) RETURNS TABLE (txn_id bigint, units bigint)
LANGUAGE sql STABLE AS $$
    SELECT e.txn_id, e.amount FROM wallet.entry e WHERE e.account_id = acc
$$;
-- rows of account_entries that the journal does not have, and the reverse
CREATE FUNCTION public.hi_diff(acc bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM (
        (SELECT x.txn_id, x.units FROM wallet.account_entries x WHERE x.account_id = acc
         EXCEPT ALL SELECT * FROM public.hi_truth(acc))
        UNION ALL
        (SELECT * FROM public.hi_truth(acc)
         EXCEPT ALL SELECT x.txn_id, x.units FROM wallet.account_entries x WHERE x.account_id = acc)) d
$$;
-- statement rows recomputed from the journal (amount per transaction and
-- running balance), compared with wallet.statement
CREATE FUNCTION public.hi_statement_ok(acc bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT array_agg(ROW(s.txn_id, wallet.units(s.amount), wallet.units(s.balance)) ORDER BY s.at, s.txn_id)
                       FROM wallet.statement(acc) s), '{}')
           IS NOT DISTINCT FROM
           coalesce((SELECT array_agg(ROW(j.txn_id, j.units, j.running) ORDER BY j.created_at, j.txn_id)
                       FROM (SELECT p.txn_id, p.units, p.created_at,
                                    sum(p.units) OVER (ORDER BY p.created_at, p.txn_id)::bigint AS running
                               FROM (SELECT e.txn_id, sum(e.amount)::bigint AS units, t.created_at
                                       FROM wallet.entry e JOIN wallet.txn t ON t.id = e.txn_id
                                      WHERE e.account_id = acc GROUP BY e.txn_id, t.created_at) p) j), '{}')
$$;

-- 1. Postings, then reads: identical to the journal before and after
-- filing, in both currencies, for sums, statements and balance_at.
SELECT wallet.transfer(:bank, :a, '100 USD', 'hi-1') IS NOT NULL AS t1,
       wallet.transfer(:a, :b, '30 USD', 'hi-2') IS NOT NULL AS t2,
       wallet.transfer(:bank_eur, :c, '7.50 EUR', 'hi-3') IS NOT NULL AS t3;
SELECT status FROM wallet.transfer_batch(ARRAY[:a, :b, :a]::bigint[], ARRAY[:b, :a, :b]::bigint[],
                                         ARRAY['1 USD', '2 USD', '3 USD']::wallet.amount[],
                                         ARRAY['hi-4', 'hi-5', 'hi-6']);
SELECT public.hi_diff(:a) AS a_diff, public.hi_diff(:b) AS b_diff, public.hi_diff(:c) AS c_diff;
SELECT sum(amount) AS a_sum, sum(units) AS a_units FROM wallet.account_entries WHERE account_id = :a;
SELECT sum(amount) AS c_sum FROM wallet.account_entries WHERE account_id = :c;
SELECT public.hi_statement_ok(:a) AS a_statement_ok, public.hi_statement_ok(:b) AS b_statement_ok;
SELECT wallet.balance_at(:a, now()) = wallet.balance(:a) AS a_balance_at_now;
SELECT wallet.index_history() >= 0 AS filed;
SELECT wallet.history_merged_through() >= (SELECT max(id) FROM wallet.txn) AS horizon_covers_the_journal;
SELECT public.hi_diff(:a) AS a_diff, public.hi_diff(:b) AS b_diff, public.hi_diff(:c) AS c_diff;
SELECT public.hi_statement_ok(:a) AS a_statement_ok, public.hi_statement_ok(:b) AS b_statement_ok;
SELECT wallet.balance_at(:a, now()) AS a_balance_at_now, wallet.balance_at(:a, '-infinity') AS a_balance_at_start;
-- a second pass right after finds nothing new
SELECT wallet.index_history() AS filed_again;

-- 2. A mixed state, held still in one transaction: filed history plus
-- entries in the tail (this transaction's own, which no pass can file
-- before it commits).
BEGIN;
SELECT wallet.transfer(:a, :b, '5 USD', 'hi-7') IS NOT NULL AS t7,
       wallet.transfer(:b, :a, '1 USD', 'hi-8') IS NOT NULL AS t8;
SELECT count(*) AS a_in_tail FROM wallet.entry e
 WHERE e.account_id = :a AND e.txn_id > wallet.history_merged_through();
SELECT count(*) > 0 AS a_has_filed_rows FROM wallet.account_history WHERE account_id = :a;
SELECT public.hi_diff(:a) AS a_diff, public.hi_diff(:b) AS b_diff;
SELECT public.hi_statement_ok(:a) AS a_statement_ok, public.hi_statement_ok(:b) AS b_statement_ok;
SELECT wallet.balance(:a) AS a_balance, wallet.balance_at(:a, now()) AS a_balance_at_now;
COMMIT;

-- 3. Rows hold at most 1,000 entries, split only between transactions:
-- an account with 999 entries, then one transaction with two legs on it,
-- then 10 more, filed in one pass, gives a row of 1,001 and a row of 10.
-- (One transaction: the worker cannot file part of it meanwhile.)
SELECT wallet.open_account('hi-d', 'USD') AS d \gset
BEGIN;
SELECT count(*) FILTER (WHERE status = 'ok') AS ok999
  FROM wallet.transfer_batch(array_fill(:bank::bigint, ARRAY[999]), array_fill(:d::bigint, ARRAY[999]),
                             array_fill('0.01 USD'::wallet.amount, ARRAY[999]),
                             ARRAY(SELECT 'hi-d-' || g FROM generate_series(1, 999) g));
SELECT wallet.post('hi-d-two-legs', ARRAY[ROW(:bank, '-0.02 USD'), ROW(:d, '0.01 USD'), ROW(:d, '0.01 USD')]::wallet.leg[]) IS NOT NULL AS two_legs;
SELECT count(*) FILTER (WHERE status = 'ok') AS ok10
  FROM wallet.transfer_batch(array_fill(:bank::bigint, ARRAY[10]), array_fill(:d::bigint, ARRAY[10]),
                             array_fill('0.01 USD'::wallet.amount, ARRAY[10]),
                             ARRAY(SELECT 'hi-d-more-' || g FROM generate_series(1, 10) g));
SELECT wallet.index_history() >= 1011 AS filed;
SELECT cardinality(txn_ids) AS entries, cardinality(amounts) = cardinality(txn_ids) AS aligned,
       txn_ids[1] = first_txn AS first_ok, txn_ids[cardinality(txn_ids)] = last_txn AS last_ok,
       (SELECT bool_and(x <= y) FROM unnest(txn_ids[1:cardinality(txn_ids) - 1], txn_ids[2:]) AS p(x, y)) AS ascending
  FROM wallet.account_history WHERE account_id = :d ORDER BY last_txn;
SELECT (SELECT max(last_txn) FROM wallet.account_history WHERE account_id = :d AND cardinality(txn_ids) > 1000)
     = (SELECT id FROM wallet.txn WHERE idempotency_key = 'hi-d-two-legs') AS first_row_ends_with_the_two_legs;
COMMIT;
SELECT public.hi_diff(:d) AS d_diff, wallet.balance(:d) AS d_balance,
       (SELECT sum(amount) FROM wallet.account_entries WHERE account_id = :d) AS d_entries_sum;

-- 4. index_history() needs READ COMMITTED (it must see what the writers it
-- waited for committed).
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT public.sqlstate_of('SELECT wallet.index_history()') AS in_repeatable_read;
ROLLBACK;

-- 5. Filed history is append-only, like the journal; the horizon is never
-- deleted.
SELECT public.sqlstate_of(format('UPDATE wallet.account_history SET amounts = amounts WHERE account_id = %s', :a)) AS update_history;
SELECT public.sqlstate_of(format('DELETE FROM wallet.account_history WHERE account_id = %s', :a)) AS delete_history;
SELECT public.sqlstate_of('TRUNCATE wallet.account_history') AS truncate_history;
SELECT public.sqlstate_of('DELETE FROM wallet.history_horizon') AS delete_horizon;
SELECT public.sqlstate_of('TRUNCATE wallet.history_horizon') AS truncate_horizon;

-- 6. wallet.verify() finds history that does not match the journal: an
-- amount changed, a filed entry dropped, one invented, the horizon moved
-- back (entries then read twice) or beyond the ids drawn (later postings
-- would then be missed), and a malformed row.  Each change bypasses the triggers (as a superuser can)
-- inside a transaction that is rolled back.
SELECT check_name, ok FROM wallet.verify() WHERE check_name = 'account_history_matches_journal';
CREATE FUNCTION public.hi_verify_after(change text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    found_ok boolean;
BEGIN
    BEGIN
        SET LOCAL session_replication_role = replica;
        EXECUTE change;
        SET LOCAL session_replication_role = origin;
        SELECT v.ok INTO found_ok FROM wallet.verify() v WHERE v.check_name = 'account_history_matches_journal';
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
    RETURN CASE WHEN found_ok THEN 'not detected' ELSE 'detected' END;
END
$$;
SELECT public.hi_verify_after(format(
    'UPDATE wallet.account_history SET amounts[1] = amounts[1] + 1 WHERE account_id = %s AND last_txn = (SELECT min(last_txn) FROM wallet.account_history WHERE account_id = %s)', :a, :a)) AS amount_changed;
SELECT public.hi_verify_after(format(
    'UPDATE wallet.account_history SET txn_ids = txn_ids || last_txn, amounts = amounts || amounts[cardinality(amounts)] WHERE account_id = %s AND last_txn = (SELECT max(last_txn) FROM wallet.account_history WHERE account_id = %s)', :d, :d)) AS entry_duplicated;
SELECT public.hi_verify_after(format(
    'UPDATE wallet.account_history SET txn_ids = txn_ids[2:], amounts = amounts[2:], first_txn = txn_ids[2] WHERE account_id = %s AND last_txn = (SELECT max(last_txn) FROM wallet.account_history WHERE account_id = %s)', :d, :d)) AS entry_dropped;
SELECT public.hi_verify_after(format(
    'INSERT INTO wallet.account_history VALUES (%s, 1, 1, ''{1}'', ''{5}'')', :b)) AS entry_invented;
SELECT public.hi_verify_after(
    'UPDATE wallet.history_horizon SET merged_through = merged_through - 1') AS horizon_moved_back;
SELECT public.hi_verify_after(
    'UPDATE wallet.history_horizon SET merged_through = merged_through + 1000000') AS horizon_beyond_the_sequence;
SELECT public.hi_verify_after(format(
    'UPDATE wallet.account_history SET amounts = amounts || 0::bigint WHERE account_id = %s', :c)) AS row_malformed;
SELECT check_name, ok FROM wallet.verify() WHERE check_name = 'account_history_matches_journal';

-- 7. The view reads through the keys when filtered by account: the tail
-- through the journal's primary key (never a scan of the whole journal),
-- the history through its own.  (Sequential scans off: this small journal
-- would otherwise be read whole, which is right for it.)
CREATE FUNCTION public.hi_plan(q text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        RETURN NEXT line;
    END LOOP;
END
$$;
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE line ~ 'Seq Scan on entry') AS journal_seq_scans,
       count(*) FILTER (WHERE line ~ 'entry_pkey') AS journal_key_reads,
       count(*) FILTER (WHERE line ~ 'account_history_pkey') AS history_key_reads
  FROM (SELECT public.hi_plan(format('SELECT * FROM wallet.account_entries WHERE account_id = %s', :a)) AS line) p;

RESET enable_seqscan;

-- 8. The steps the background worker runs in short transactions (after
-- its own wait for writers): index_history_range files at most about
-- max_entries per call, whole transactions, and 0 means nothing is left
-- below its horizon; seal_range seals up to given horizons.
BEGIN;
SELECT wallet.index_history() >= 0 AS all_filed_before;
SELECT wallet.open_account('hi-e', 'USD') AS e \gset
SELECT count(wallet.transfer(:bank, :e, '0.01 USD', 'hi-e-' || g)) AS posted FROM generate_series(1, 3) g;
SELECT max(id) AS top FROM wallet.txn \gset
SELECT wallet.index_history_range(:top, 1) AS one_transaction_two_legs;
SELECT wallet.index_history_range(:top, 3) AS two_more_transactions;
SELECT wallet.index_history_range(:top, 1000000) >= 0 AS filed_the_rest;
SELECT wallet.index_history_range(:top, 1) AS nothing_left;
SELECT wallet.history_merged_through() >= :top AS horizon_at_top;
SELECT public.hi_diff(:e) AS e_diff;
COMMIT;
SELECT public.sqlstate_of('SELECT wallet.index_history_range(NULL, 1)') AS null_upto;
SELECT public.sqlstate_of('SELECT wallet.index_history_range(1, 0)') AS zero_max;
SELECT public.sqlstate_of('SELECT wallet.seal_range(NULL, 0)') AS null_horizon;
SELECT wallet.seal_range(0, 0) AS nothing_below_zero;

-- 9. A DBA's trigger on wallet.account_history: filing then goes through
-- the SQL statement (the table AM path would skip the trigger), the
-- trigger sees every entry filed, and the history still matches the journal.
CREATE TABLE public.hi_seen (account_id bigint, n int);
CREATE FUNCTION public.hi_seen_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.hi_seen VALUES (NEW.account_id, cardinality(NEW.txn_ids));
    RETURN NEW;
END
$$;
CREATE TRIGGER hi_seen AFTER INSERT ON wallet.account_history
    FOR EACH ROW EXECUTE FUNCTION public.hi_seen_row();
SELECT wallet.open_account('hi-f', 'USD') AS f \gset
SELECT count(wallet.transfer(:bank, :f, '0.01 USD', 'hi-f-' || g)) AS posted FROM generate_series(1, 4) g;
SELECT wallet.index_history() >= 0 AS filed;
SELECT sum(n) AS f_entries_seen_by_trigger FROM public.hi_seen WHERE account_id = :f;
SELECT public.hi_diff(:f) AS f_diff;
DROP TRIGGER hi_seen ON wallet.account_history;
DROP FUNCTION public.hi_seen_row();
DROP TABLE public.hi_seen;

DROP FUNCTION public.hi_plan(text);
DROP FUNCTION public.hi_verify_after(text);
DROP FUNCTION public.hi_statement_ok(bigint);
DROP FUNCTION public.hi_diff(bigint);
DROP FUNCTION public.hi_truth(bigint);
SELECT bool_and(ok) AS all_ok FROM wallet.verify();
