-- test/pgtap/journal_reader.sql — the sealer's journal reader (src/audit.c)
-- walks the journal's primary keys past dead rows of rolled-back
-- postings.  The index AM then keeps memory between calls (the dead items
-- to mark); a reader that advanced its scans in a per-transaction context
-- reset after each hash corrupted memory (SIGSEGV, "could not find block
-- containing chunk", a seal stored with a wrong head).  Every other posting
-- here is rolled back, so the scans meet many dead rows.
BEGIN;
SELECT plan(5);
SELECT wallet.open_account('jr-bank', 'USD', 'system', true) AS bank \gset
SELECT wallet.open_account('jr-a', 'USD') AS a \gset
SELECT set_config('jr.bank', :'bank', true) IS NOT NULL AS s1, set_config('jr.a', :'a', true) IS NOT NULL AS s2 \gset
DO $$
DECLARE
    bank bigint := current_setting('jr.bank')::bigint;
    a bigint := current_setting('jr.a')::bigint;
BEGIN
    FOR i IN 1..2000 LOOP
        PERFORM wallet.transfer(bank, a, '0.01 USD', 'jr-ok-' || i);
        BEGIN
            PERFORM wallet.transfer(bank, a, '0.01 USD', 'jr-rb-' || i);
            RAISE EXCEPTION 'roll back';
        EXCEPTION WHEN raise_exception THEN NULL;
        END;
    END LOOP;
END
$$;
SELECT min(id) - 1 AS before_first FROM wallet.txn WHERE idempotency_key LIKE 'jr-ok-%' \gset
-- twice over, through both readers: the SRF and the seal's chunk function
SELECT is((SELECT count(*) FROM wallet.journal_hashes(:before_first, 9223372036854775807)), 2000::bigint,
          'journal_hashes reads the 2000 kept postings past 2000 rolled-back ones');
SELECT is((SELECT count(*) FROM wallet.journal_hashes(:before_first, 9223372036854775807)), 2000::bigint,
          '... and again');
SELECT is((SELECT cardinality(c.ids) FROM wallet.journal_chunk(:before_first, 9223372036854775807, 100000) c), 2000,
          'journal_chunk takes the same 2000');
SELECT is((SELECT c.hashes FROM wallet.journal_chunk(:before_first, 9223372036854775807, 100000) c),
          (SELECT string_agg(h.hash, ''::bytea ORDER BY h.id) FROM wallet.journal_hashes(:before_first, 9223372036854775807) h),
          'journal_chunk hashes what journal_hashes hashes, in the same order');
SELECT is((SELECT c.through FROM wallet.journal_chunk(:before_first, 9223372036854775807, 1000) c),
          (SELECT id FROM wallet.txn WHERE idempotency_key = 'jr-ok-1000'),
          'a chunk of 1000 ends at the 1000th transaction');
SELECT * FROM finish();
ROLLBACK;
