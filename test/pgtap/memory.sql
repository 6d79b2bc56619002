-- wallet.keep_freed_memory (src/worker.c, assign_keep_freed_memory): a
-- process that loaded the library keeps the memory a batch freed mapped, so
-- the next batch call does not fault it back in.  Measured in this backend
-- by its own minor page faults (/proc/self/stat, field 10), with the
-- setting at its default and at 0 (glibc's initial thresholds), each
-- applied by ALTER SYSTEM and a reload.  Runs outside one enclosing
-- transaction (ALTER SYSTEM cannot run in one), so its rows have their own
-- "mem-" names; every posting is an ordinary valid one.
LOAD 'wallet';  -- when not preloaded, the setting exists once the library is loaded
SELECT plan(7);

SELECT is(current_setting('wallet.keep_freed_memory'), '32MB', 'the default keeps 32MB');
SELECT throws_ok($$SET wallet.keep_freed_memory = 0$$, '55P02', NULL,
                 'a session cannot change it (server configuration, reloadable)');

CREATE FUNCTION pg_temp.minor_faults() RETURNS bigint LANGUAGE sql AS $$
    SELECT split_part(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ', 8)::bigint
$$;
-- 1,000 transfers in one call over 200 accounts; returns how many posted
CREATE FUNCTION pg_temp.batch(tag text, lo bigint) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FILTER (WHERE r.status = 'ok')
      FROM (SELECT array_agg(lo + i % 200) AS f, array_agg(lo + (i + 7) % 200) AS t,
                   array_agg('0.01 USD'::wallet.amount) AS a, array_agg(tag || '-' || i) AS k
              FROM generate_series(1, 1000) AS i) x,
           LATERAL wallet.transfer_batch(x.f, x.t, x.a, x.k) AS r
$$;
SELECT 'mem-' || md5(random()::text) AS run \gset
SELECT wallet.open_account('mem-sys', 'USD', 'system', true) AS sys \gset
SELECT min(id) AS lo
  FROM (SELECT wallet.open_account('mem-' || i, 'USD') AS id FROM generate_series(1, 200) AS i) a \gset
SELECT count(wallet.transfer(:sys, :lo + i, '100.00 USD', (:'run' || '-fund-' || i))) AS funded
  FROM generate_series(0, 199) AS i \gset

-- the default: two calls to warm up, then four measured, each its own
-- statement (and transaction), as an application server sends them
SELECT pg_temp.batch(:'run' || '-d-w1', :lo) + pg_temp.batch(:'run' || '-d-w2', :lo) AS warm \gset
SELECT pg_temp.minor_faults() AS f0 \gset
SELECT pg_temp.batch(:'run' || '-d-1', :lo) AS n1 \gset
SELECT pg_temp.batch(:'run' || '-d-2', :lo) AS n2 \gset
SELECT pg_temp.batch(:'run' || '-d-3', :lo) AS n3 \gset
SELECT pg_temp.batch(:'run' || '-d-4', :lo) AS n4 \gset
SELECT (pg_temp.minor_faults() - :f0) / 4 AS kept \gset
SELECT is((:n1 + :n2 + :n3 + :n4)::bigint, 4000::bigint, 'the measured batches posted every row');

-- 0: glibc's initial thresholds (128 kB)
ALTER SYSTEM SET wallet.keep_freed_memory = 0;
-- a backend reads the reloaded file between statements, once the signal came
SELECT pg_reload_conf() AS reloaded \gset
SELECT pg_sleep(1);
SELECT is(current_setting('wallet.keep_freed_memory'), '0', 'a reload applies 0 in this session');
SELECT pg_temp.batch(:'run' || '-z-w1', :lo) + pg_temp.batch(:'run' || '-z-w2', :lo) AS warm \gset
SELECT pg_temp.minor_faults() AS f0 \gset
SELECT pg_temp.batch(:'run' || '-z-1', :lo) AS n1 \gset
SELECT pg_temp.batch(:'run' || '-z-2', :lo) AS n2 \gset
SELECT pg_temp.batch(:'run' || '-z-3', :lo) AS n3 \gset
SELECT pg_temp.batch(:'run' || '-z-4', :lo) AS n4 \gset
SELECT (pg_temp.minor_faults() - :f0) / 4 AS returned \gset

ALTER SYSTEM RESET wallet.keep_freed_memory;
SELECT pg_reload_conf() AS reloaded \gset
SELECT pg_sleep(1);
SELECT is(current_setting('wallet.keep_freed_memory'), '32MB', 'a reload puts the default back');

-- measured on the development VM: 2-3 faults a call kept, 19-37 returned
SELECT cmp_ok((:kept * 4)::bigint, '<', :returned::bigint,
              format('a batch call faults far fewer pages with memory kept (%s) than returned (%s)', :kept, :returned));
SELECT is((SELECT count(*) FROM wallet.verify() WHERE NOT ok AND check_name NOT LIKE 'audit%'), 0::bigint,
          'verify(): every ledger check passes');

SELECT * FROM finish();
