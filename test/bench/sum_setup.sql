-- test/bench/sum_setup.sql: the table the sum row reads.  Unlogged (the
-- load writes no WAL; reads are the same).  psql -v lo=A -v hi=B fills
-- rows A..B; bench.sh runs two of these at once (2 cores), then VACUUM.
-- v is the same value in every column: minor units as bigint, as
-- wallet.amount, and as numeric(20,2) major units + a currency text.
\set ON_ERROR_STOP 1
INSERT INTO bench_sum.t (b, a, n, cur)
SELECT v, wallet.amount(v, 'USD'), (v::numeric / 100)::numeric(20,2), 'USD'
  FROM (SELECT (g * 7919) % 1000000 + 1 AS v FROM generate_series(:lo::bigint, :hi::bigint) g) s;
