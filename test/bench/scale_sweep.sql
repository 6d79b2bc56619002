-- test/bench/scale_sweep.sql (long mode): the scale database in steady state
-- before its measured runs.  The first change to a page after a checkpoint
-- writes the whole page into WAL (full_page_writes).  With 10 k accounts
-- that is a few hundred pages, paid in the first milliseconds of a run; with
-- 10 M accounts (~290,000 account pages, fillfactor 50, plus the filed
-- history's index) a random transfer keeps hitting fresh pages for minutes
-- after each checkpoint, and a 5-second run right after one measures little
-- but that burst.  A server with checkpoint_timeout = 1h pays it in the
-- first minutes of each hour; the table reports it on its own row ("right
-- after a checkpoint") and measures the scale row after this sweep.
--
-- The sweep: wallet.transfer_batch calls of 10,000 transfers of 0.01 USD
-- from every 16th account to its neighbour, in id order (the accounts were
-- loaded in id order, ~35 to a page), one call per transaction, so every
-- account page is changed once; then the history they made is filed.
-- Nothing here is measured.  psql -v lo=LO -v hi=HI.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT format('SELECT %L || count(*) FILTER (WHERE status <> %L) FROM wallet.transfer_batch('
              'ARRAY(SELECT generate_series(%s, %s, 16)::bigint), '
              'ARRAY(SELECT generate_series(%s, %s, 16)::bigint), '
              'array_fill(wallet.amount(1, %L), ARRAY[cardinality(ARRAY(SELECT generate_series(%s, %s, 16)))]), '
              'ARRAY(SELECT %L || g FROM generate_series(%s, %s, 16) g))',
              'not ok: ', 'ok', s, e, s + 1, e + 1, 'USD', s, e, 'sweep-', s, e)
  FROM (SELECT s, least(s + 16 * 9999, :hi - 1) AS e
          FROM generate_series(:lo, :hi - 1, 16 * 10000) s) c
\gexec
SELECT 'filed: ' || wallet.index_history();
