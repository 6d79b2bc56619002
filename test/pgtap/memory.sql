-- wallet.keep_freed_memory (src/worker.c, assign_keep_freed_memory): a
-- process that loaded the library keeps the memory a statement freed
-- mapped, so the next one (a batch call, say) does not fault it back in.
-- Measured in this backend by its private data mappings (VmData in
-- /proc/self/status: heap and anonymous mappings, not shared memory) after
-- a statement that sorts about 20 MB in memory and frees it, with the
-- setting at its default and at 0 (glibc's initial thresholds), each
-- applied by ALTER SYSTEM and a reload.  (Page faults per batch call, the
-- figure the setting is for, also count this backend's first touch of each
-- shared buffer, which depends on the cluster's huge pages: 2-3 against
-- 19-37 with huge pages, 263-320 against 285-352 without.)  Runs outside
-- one enclosing transaction, since ALTER SYSTEM cannot run in one.
LOAD 'wallet';  -- when not preloaded, the setting exists once the library is loaded
SELECT plan(7);

SELECT is(current_setting('wallet.keep_freed_memory'), '32MB', 'the default keeps 32MB');
SELECT throws_ok($$SET wallet.keep_freed_memory = 0$$, '55P02', NULL,
                 'a session cannot change it (server configuration, reloadable)');

CREATE FUNCTION pg_temp.vmdata_kb() RETURNS bigint LANGUAGE sql AS $$
    SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmData:\s+(\d+) kB'))[1]::bigint
$$;
SET work_mem = '64MB';

-- the default: the sort's memory stays mapped after the statement
SELECT pg_temp.vmdata_kb() AS v0 \gset
SELECT count(*) AS sorted FROM (SELECT g FROM generate_series(1, 400000) AS g ORDER BY g DESC) s \gset
SELECT pg_temp.vmdata_kb() AS v1 \gset
SELECT cmp_ok((:v1 - :v0)::bigint, '>', 10000::bigint,
              format('with the default, the memory a sort freed stays mapped (%s kB)', :v1 - :v0));

-- 0: glibc's initial thresholds (128 kB); a backend reads the reloaded file
-- between statements, once the signal came
ALTER SYSTEM SET wallet.keep_freed_memory = 0;
SELECT pg_reload_conf() AS reloaded \gset
SELECT pg_sleep(1);
SELECT is(current_setting('wallet.keep_freed_memory'), '0', 'a reload applies 0 in this session');
SELECT count(*) AS sorted FROM (SELECT g FROM generate_series(1, 1000) AS g ORDER BY g DESC) s \gset
SELECT pg_temp.vmdata_kb() AS v0 \gset
SELECT count(*) AS sorted FROM (SELECT g FROM generate_series(1, 400000) AS g ORDER BY g DESC) s \gset
SELECT pg_temp.vmdata_kb() AS v1 \gset
SELECT cmp_ok((:v1 - :v0)::bigint, '<', 4000::bigint,
              format('with 0, it goes back to the kernel (%s kB left)', :v1 - :v0));

ALTER SYSTEM RESET wallet.keep_freed_memory;
SELECT pg_reload_conf() AS reloaded \gset
SELECT pg_sleep(1);
SELECT is(current_setting('wallet.keep_freed_memory'), '32MB', 'a reload puts the default back');
SELECT pg_temp.vmdata_kb() AS v0 \gset
SELECT count(*) AS sorted FROM (SELECT g FROM generate_series(1, 400000) AS g ORDER BY g DESC) s \gset
SELECT pg_temp.vmdata_kb() AS v1 \gset
SELECT cmp_ok((:v1 - :v0)::bigint, '>', 10000::bigint,
              format('... and the memory stays mapped again (%s kB)', :v1 - :v0));

SELECT * FROM finish();
