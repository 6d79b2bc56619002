-- Errors: each kind of failure has its own SQLSTATE (src/wallet.h, the
-- README's table) and, as the contract says ("Errors carry ... a message,
-- a DETAIL with the values involved"), a DETAIL.  One check per kind:
-- the SQLSTATE, and a DETAIL that is not empty.
BEGIN;
SELECT plan(16);

-- runs q; returns 'SQLSTATE detail:yes|no' (or 'ok')
CREATE FUNCTION pg_temp.failure(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; det text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, det = PG_EXCEPTION_DETAIL;
    RETURN st || CASE WHEN coalesce(det, '') <> '' THEN ' with DETAIL' ELSE ' without DETAIL' END;
END
$$;

SELECT wallet.open_account('err-sys', 'USD', 'system', true) AS sys \gset
SELECT wallet.open_account('err-a', 'USD') AS a \gset
SELECT wallet.open_account('err-b', 'USD') AS b \gset
SELECT wallet.open_account('err-e', 'EUR') AS e \gset
SELECT wallet.open_account('err-frozen', 'USD') AS fr \gset
SELECT wallet.open_account('err-closed', 'USD') AS cl \gset
SELECT wallet.transfer(:sys, :a, '10.00 USD', 'err:fund') AS t1 \gset
SELECT wallet.freeze_account(:fr) IS NOT NULL AS x \gset
SELECT wallet.close_account(:cl) IS NOT NULL AS x \gset
SELECT wallet.hold(:sys, :b, '1.00 USD', 'err:h') AS h \gset
SELECT wallet.void(:h) IS NOT NULL AS x \gset
SELECT wallet.reverse(:t1, 'err:rev', allow_negative => true) IS NOT NULL AS x \gset
SELECT wallet.transfer(:sys, :b, '1.00 USD', 'err:fund-b') IS NOT NULL AS x \gset

SELECT is(pg_temp.failure(format($q$SELECT wallet.transfer(%s, %s, '11.00 USD', 'err:1')$q$, :b, :a)),
          'WL001 with DETAIL', 'insufficient funds: WL001');
SELECT is(pg_temp.failure(format($q$SELECT wallet.transfer(%s, %s, '1.00 USD', 'err:2')$q$, :sys, :e)),
          'WL002 with DETAIL', 'currency mismatch (transfer): WL002');
SELECT is(pg_temp.failure(format($q$SELECT wallet.hold(%s, %s, '1.00 USD', 'err:2h')$q$, :sys, :e)),
          'WL002 with DETAIL', 'currency mismatch (hold): WL002');
SELECT is(pg_temp.failure(format($q$SELECT wallet.transfer(%s, -1, '1.00 USD', 'err:3')$q$, :sys)),
          'WL003 with DETAIL', 'unknown account: WL003');
SELECT is(pg_temp.failure(format($q$SELECT wallet.transfer(%s, %s, '1.00 USD', 'err:4')$q$, :sys, :fr)),
          'WL004 with DETAIL', 'frozen account: WL004');
SELECT is(pg_temp.failure(format($q$SELECT wallet.transfer(%s, %s, '1.00 USD', 'err:5')$q$, :sys, :cl)),
          'WL005 with DETAIL', 'closed account: WL005');
SELECT is(pg_temp.failure(format($q$SELECT wallet.transfer(%s, %s, '1.00 USD', 'err:fund')$q$, :sys, :b)),
          'WL006 with DETAIL', 'idempotency conflict: WL006');
SELECT is(pg_temp.failure(format($q$SELECT wallet.post('err:7', ARRAY[(%s, '-1.00 USD'), (%s, '0.99 USD')]::wallet.leg[])$q$, :sys, :b)),
          'WL007 with DETAIL', 'unbalanced: WL007');
SELECT is(pg_temp.failure(format('SELECT wallet.capture(%s)', :h)),
          'WL008 with DETAIL', 'hold not pending: WL008');
SELECT is(pg_temp.failure($q$SELECT wallet.reverse(-1, 'err:9')$q$),
          'WL009 with DETAIL', 'unknown transaction: WL009');
SELECT is(pg_temp.failure(format($q$SELECT wallet.reverse(%s, 'err:10')$q$, :t1)),
          'WL010 with DETAIL', 'already reversed: WL010');
SELECT is(pg_temp.failure($q$SELECT wallet.open_account('x', 'XYZ')$q$),
          'WL011 with DETAIL', 'unknown currency: WL011');
SELECT is(pg_temp.failure(format('SELECT wallet.close_account(%s)', :b)),
          'WL012 with DETAIL', 'closing a non-empty account: WL012');
SELECT is(pg_temp.failure(format('DELETE FROM wallet.entry WHERE txn_id = %s', :t1)),
          'WL013 with DETAIL', 'changing posted history: WL013');
SELECT is(pg_temp.failure('SELECT wallet.void(-1)'),
          'WL014 with DETAIL', 'unknown hold: WL014');
SELECT is(pg_temp.failure($q$SELECT '92233720368547758.07 USD'::wallet.amount + '0.01 USD'::wallet.amount$q$),
          '22003 with DETAIL', 'overflow: 22003');

SELECT * FROM finish();
ROLLBACK;
