-- The engine's direct row access (src/rows.c): balance updates that are
-- not HOT still get their index entries; a DBA's trigger or CHECK on a
-- ledger table makes the engine use the SQL statement, so it fires.
-- Ids are captured with \gset and never printed.
SELECT wallet.open_account('rw-bank', 'USD', 'system', true) AS bank \gset
SELECT wallet.open_account('rw-a', 'USD') AS a \gset
SELECT wallet.open_account('rw-b', 'USD') AS b \gset
SELECT wallet.transfer(:bank, :a, '1000 USD', 'rw-fund') IS NOT NULL AS funded;

-- 1. Many updates of the same rows in one transaction: the old versions
-- cannot be pruned, the page fills up, and updates stop being HOT.  Every
-- version must still be found through the indexes.
SELECT (ctid::text::point)[0] AS page_before FROM wallet.account WHERE id = :a \gset
BEGIN;
SELECT count(wallet.transfer(:a, :b, '1 USD', 'rw-many-' || g)) FROM generate_series(1, 400) g;
SELECT (ctid::text::point)[0] <> :page_before AS a_moved_to_another_page
  FROM wallet.account WHERE id = :a;
COMMIT;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT wallet.units(wallet.balance(:a)) AS a_units, wallet.units(wallet.balance(:b)) AS b_units;
SELECT id = :a AS is_a, balance FROM wallet.account WHERE id = :a;
SELECT count(*) AS found_by_owner FROM wallet.account WHERE owner IN ('rw-a', 'rw-b');
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT balance AS a_by_seqscan FROM wallet.account WHERE id = :a;

-- 2. A trigger on the balance columns fires for every posting path.
CREATE TABLE public.rw_seen (rel text, op text, n int);
CREATE FUNCTION public.rw_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.rw_seen VALUES (TG_TABLE_NAME, TG_OP, 1);
    RETURN NULL;
END $$;
CREATE TRIGGER rw_balance AFTER UPDATE OF balance ON wallet.account
    FOR EACH ROW EXECUTE FUNCTION public.rw_count();
SELECT wallet.transfer(:a, :b, '2 USD', 'rw-trig-1') IS NOT NULL AS posted;
SELECT status FROM wallet.transfer_batch(ARRAY[:a, :b]::bigint[], ARRAY[:b, :a]::bigint[],
                                         ARRAY['1 USD', '3 USD']::wallet.amount[],
                                         ARRAY['rw-trig-2', 'rw-trig-3']);
SELECT rel, op, sum(n) AS fired FROM public.rw_seen GROUP BY rel, op ORDER BY rel, op;
DROP TRIGGER rw_balance ON wallet.account;
-- a trigger on other columns only (like the wallet's own audit trigger) does not
CREATE TRIGGER rw_status AFTER UPDATE OF status ON wallet.account
    FOR EACH ROW EXECUTE FUNCTION public.rw_count();
TRUNCATE public.rw_seen;
SELECT wallet.transfer(:a, :b, '2 USD', 'rw-trig-4') IS NOT NULL AS posted;
SELECT count(*) AS fired_for_status_trigger FROM public.rw_seen;
DROP TRIGGER rw_status ON wallet.account;

-- 3. Triggers on the journal: the batch inserts its rows with SQL then.
CREATE TRIGGER rw_txn AFTER INSERT ON wallet.txn
    FOR EACH ROW EXECUTE FUNCTION public.rw_count();
CREATE TRIGGER rw_entry AFTER INSERT ON wallet.entry
    FOR EACH ROW EXECUTE FUNCTION public.rw_count();
TRUNCATE public.rw_seen;
SELECT status FROM wallet.transfer_batch(ARRAY[:a, :a, :a]::bigint[], ARRAY[:b, :b, :b]::bigint[],
                                         ARRAY['1 USD', '1 USD', '1 USD']::wallet.amount[],
                                         ARRAY['rw-j-1', 'rw-j-2', 'rw-j-3']);
-- a repeated key is still found (ON CONFLICT in the SQL path)
SELECT status FROM wallet.transfer_batch(ARRAY[:a, :a]::bigint[], ARRAY[:b, :b]::bigint[],
                                         ARRAY['1 USD', '1 USD']::wallet.amount[],
                                         ARRAY['rw-j-1', 'rw-j-4']);
SELECT rel, op, sum(n) AS fired FROM public.rw_seen GROUP BY rel, op ORDER BY rel, op;
DROP TRIGGER rw_txn ON wallet.txn;
DROP TRIGGER rw_entry ON wallet.entry;

-- 4. A column a DBA added to the journal gets its default (SQL path).
ALTER TABLE wallet.entry ADD COLUMN rw_note text NOT NULL DEFAULT 'added';
SELECT status FROM wallet.transfer_batch(ARRAY[:a]::bigint[], ARRAY[:b]::bigint[],
                                         ARRAY['1 USD']::wallet.amount[], ARRAY['rw-col-1']);
SELECT count(*) AS entries_with_default FROM wallet.entry e JOIN wallet.txn t ON t.id = e.txn_id
 WHERE t.idempotency_key = 'rw-col-1' AND e.rw_note = 'added';
ALTER TABLE wallet.entry DROP COLUMN rw_note;
-- and after the column is dropped, the direct path again
SELECT status FROM wallet.transfer_batch(ARRAY[:a]::bigint[], ARRAY[:b]::bigint[],
                                         ARRAY['1 USD']::wallet.amount[], ARRAY['rw-col-2']);

-- 5. A CHECK a DBA adds is enforced on balance updates.
ALTER TABLE wallet.account ADD CONSTRAINT rw_cap CHECK (balance < 100000 OR allow_negative);
\set VERBOSITY terse
SELECT wallet.transfer(:bank, :a, '2000 USD', 'rw-cap') IS NOT NULL AS over_cap;
\set VERBOSITY default
ALTER TABLE wallet.account DROP CONSTRAINT rw_cap;

-- 6. An error inside a batch round (here 22003: two credits overflow an
-- account) ends the batch's own subtransaction before it reaches the
-- caller, so a PL/pgSQL exception block catches it and goes on.
SELECT set_config('rw.bank', :'bank', false) IS NOT NULL AS set1,
       set_config('rw.a', :'a', false) IS NOT NULL AS set2;
DO $$
DECLARE
    bank bigint := current_setting('rw.bank')::bigint;
    a bigint := current_setting('rw.a')::bigint;
BEGIN
    BEGIN
        PERFORM * FROM wallet.transfer_batch(ARRAY[bank, bank], ARRAY[a, a],
                        ARRAY['50000000000000000 USD', '50000000000000000 USD']::wallet.amount[],
                        ARRAY['rw-ovf-1', 'rw-ovf-2']);
        RAISE NOTICE 'no error';
    EXCEPTION WHEN numeric_value_out_of_range THEN
        RAISE NOTICE 'caught %', SQLSTATE;
    END;
    -- the caller's settings, not the ones pinned inside wallet's functions
    RAISE NOTICE 'search_path after the caught error: %', current_setting('search_path');
    -- the block's own state is intact: another posting in the same block
    PERFORM wallet.transfer(bank, a, '1 USD', 'rw-after-ovf');
    RAISE NOTICE 'posted after the caught error';
END $$;
SELECT count(*) AS ovf_rows FROM wallet.txn WHERE idempotency_key LIKE 'rw-ovf-%';
SHOW search_path;
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_left_open;
SELECT wallet.transfer(:a, :bank, '1 USD', 'rw-after-ovf-back') IS NOT NULL AS posted;

-- 7. A batch debiting a hot account counts its pending credits as funds,
-- and writes only its own delta to the stored balance: the credits stay
-- pending until folded, and are never counted twice.
SELECT wallet.open_account('rw-hot', 'USD') AS hot \gset
SELECT wallet.set_hot(:hot);
SELECT wallet.transfer(:bank, :hot, '100 USD', 'rw-hot-fund') IS NOT NULL AS funded;
SELECT status FROM wallet.transfer_batch(ARRAY[:hot, :hot]::bigint[], ARRAY[:b, :b]::bigint[],
                                         ARRAY['10 USD', '95 USD']::wallet.amount[],
                                         ARRAY['rw-hot-1', 'rw-hot-2']);
SELECT wallet.balance(:hot) AS hot_balance, wallet.available(:hot) AS hot_available;
SELECT balance AS hot_stored, (SELECT sum(amount) FROM wallet.hot_pending WHERE account_id = :hot) AS hot_pending
  FROM wallet.account WHERE id = :hot;
SELECT wallet.fold_hot() >= 1 AS folded;
SELECT wallet.balance(:hot) AS hot_after_fold;
SELECT check_name, ok FROM wallet.verify() WHERE check_name IN ('balances_match_entries', 'no_forbidden_negative');

DROP FUNCTION public.rw_count() CASCADE;
DROP TABLE public.rw_seen;
SELECT wallet.units(wallet.balance(:a)) + wallet.units(wallet.balance(:b)) AS a_plus_b_units;
SELECT check_name, ok FROM wallet.verify() WHERE check_name NOT LIKE 'audit%';
