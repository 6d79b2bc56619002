-- test/pgtap/contract_audit.sql — SPEC.md "Audit" and "Security", item by
-- item: wallet.audit() / audit_table() and every wallet.audit_log column
-- the contract names (actor from SET LOCAL wallet.actor, db_user under
-- SET ROLE, application_name, client_addr, changed_columns); the ledger's
-- own changes audited; append-only history for the owner (a superuser
-- here) too; digest() / audit_verify() against edits, deletions and
-- insertions made with triggers off, and a rewritten chain; grant_app /
-- grant_reader.  Runs in one transaction (roles included) and rolls back.
BEGIN;
SELECT plan(71);

-- Keep the background sealer (preloaded housekeeping) out of this
-- transaction, as tamper.sql does: we seal ourselves below.
LOCK TABLE wallet.audit_seal IN SHARE ROW EXCLUSIVE MODE;
SET LOCAL client_min_messages = warning;

\ir include/helpers.sql
-- names of the failing audit_verify checks
CREATE FUNCTION pg_temp.av_failed(known text DEFAULT NULL) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(check_name::text ORDER BY check_name), '{}') FROM wallet.audit_verify(known) WHERE NOT ok
$$;
CREATE FUNCTION pg_temp.av_detail(known text DEFAULT NULL) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(detail, '; ' ORDER BY check_name) FROM wallet.audit_verify(known) WHERE NOT ok
$$;

-- ============================================================ audit_log columns

SELECT is((SELECT array_agg(c ORDER BY c) FROM unnest(ARRAY['relation', 'operation', 'old_row', 'new_row', 'changed_columns', 'txid', 'at',
                                                           'db_user', 'application_name', 'client_addr', 'actor']) c
            WHERE EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = 'wallet.audit_log'::regclass AND a.attname = c AND NOT a.attisdropped)),
          ARRAY['actor', 'application_name', 'at', 'changed_columns', 'client_addr', 'db_user', 'new_row', 'old_row', 'operation', 'relation', 'txid'],
          'wallet.audit_log has every column the contract names');
SELECT is((SELECT array_agg(format_type(atttypid, atttypmod) ORDER BY attname) FROM pg_attribute
            WHERE attrelid = 'wallet.audit_log'::regclass AND attname IN ('old_row', 'new_row')), ARRAY['jsonb', 'jsonb'],
          'old_row and new_row are jsonb');

-- ============================================================ audit_table on a user table

CREATE TABLE public.cl_orders (id int PRIMARY KEY, item text, price wallet.amount, note text);
SELECT lives_ok($$SELECT wallet.audit_table('public.cl_orders')$$, 'audit_table(regclass) attaches the trigger');
SELECT lives_ok($$SELECT wallet.audit_table('public.cl_orders'::regclass)$$, 'audit_table again is harmless');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.cl_orders'::regclass AND tgfoid = 'wallet.audit()'::regprocedure),
          2::bigint, 'one row trigger and one TRUNCATE trigger, not duplicated');
SELECT coalesce(max(id), 0) AS a0 FROM wallet.audit_log \gset
SET LOCAL application_name = 'cl-app';
SET LOCAL wallet.actor = 'user:42';
INSERT INTO public.cl_orders VALUES (1, 'rose', '5.00 USD', 'first');
UPDATE public.cl_orders SET price = '6.00 USD', note = 'second' WHERE id = 1;
DELETE FROM public.cl_orders WHERE id = 1;
INSERT INTO public.cl_orders VALUES (2, 'lion', '9.00 USD', NULL);
TRUNCATE public.cl_orders;
CREATE TEMP TABLE cl_log AS
SELECT row_number() OVER (ORDER BY id) AS n, * FROM wallet.audit_log WHERE id > :a0 AND relation LIKE '%cl_orders%';
SELECT is((SELECT array_agg(operation ORDER BY n) FROM cl_log), ARRAY['INSERT', 'UPDATE', 'DELETE', 'INSERT', 'TRUNCATE'],
          'every INSERT, UPDATE, DELETE and the TRUNCATE landed in audit_log, in order');
SELECT is((SELECT count(DISTINCT relation) FROM cl_log), 1::bigint, 'relation names the table');
SELECT ok((SELECT relation FROM cl_log WHERE n = 1) ~ 'cl_orders', 'relation names the table');
SELECT is((SELECT row(old_row, new_row)::text FROM cl_log WHERE n = 1),
          row(NULL::jsonb, '{"id": 1, "item": "rose", "price": "5.00 USD", "note": "first"}'::jsonb)::text, 'INSERT: new_row only');
SELECT is((SELECT row(old_row, new_row)::text FROM cl_log WHERE n = 2),
          row('{"id": 1, "item": "rose", "price": "5.00 USD", "note": "first"}'::jsonb,
              '{"id": 1, "item": "rose", "price": "6.00 USD", "note": "second"}'::jsonb)::text, 'UPDATE: old_row and new_row');
SELECT is((SELECT array_agg(c ORDER BY c) FROM cl_log, unnest(changed_columns) c WHERE n = 2), ARRAY['note', 'price'],
          'UPDATE: changed_columns names exactly the changed columns');
SELECT is((SELECT row(old_row, new_row)::text FROM cl_log WHERE n = 3),
          row('{"id": 1, "item": "rose", "price": "6.00 USD", "note": "second"}'::jsonb, NULL::jsonb)::text, 'DELETE: old_row only');
SELECT is((SELECT count(*) FROM cl_log WHERE actor = 'user:42'), 5::bigint, 'actor comes from SET LOCAL wallet.actor');
SELECT is((SELECT count(*) FROM cl_log WHERE application_name = 'cl-app'), 5::bigint, 'application_name is recorded');
SELECT is((SELECT count(*) FROM cl_log WHERE db_user = current_user), 5::bigint, 'db_user is the session''s role');
SELECT is((SELECT count(*) FROM cl_log WHERE txid = txid_current()), 5::bigint, 'txid is the writing transaction''s id');
SELECT is((SELECT count(*) FROM cl_log WHERE at = now()), 5::bigint, 'at is the transaction''s time');
SELECT is((SELECT count(*) FROM cl_log WHERE client_addr IS NOT DISTINCT FROM inet_client_addr()), 5::bigint,
          'client_addr is the client''s address (NULL over a Unix socket)');
-- actor unset: NULL; db_user follows SET ROLE, not the trigger's owner
SET LOCAL wallet.actor = '';
CREATE ROLE cl_writer;
GRANT INSERT ON public.cl_orders TO cl_writer;
GRANT USAGE ON SCHEMA public TO cl_writer;
SET LOCAL ROLE cl_writer;
INSERT INTO public.cl_orders VALUES (3, 'car', '1.00 USD', NULL);
RESET ROLE;
SELECT is((SELECT row(db_user, actor)::text FROM wallet.audit_log WHERE relation LIKE '%cl_orders%' ORDER BY id DESC LIMIT 1),
          row('cl_writer', NULL::text)::text, 'db_user is the role as of SET ROLE; no actor when none is set');
SELECT is(pg_temp.state('SELECT wallet.audit_table(NULL)'), '22004', 'audit_table(NULL): 22004');

-- ============================================================ the ledger's own changes

SET LOCAL wallet.actor = 'ops:7';
SELECT coalesce(max(id), 0) AS a1 FROM wallet.audit_log \gset
SELECT wallet.open_account('ca-sys', 'USD', 'system', true) AS sys \gset
SELECT wallet.open_account('ca-a', 'USD') AS a \gset
SELECT wallet.open_account('ca-b', 'USD') AS b \gset
SELECT wallet.transfer(:sys, :a, '10.00 USD', 'ca:fund') AS t1 \gset
SELECT wallet.freeze_account(:b) IS NULL AS ignored \gset
SELECT wallet.hold(:a, :sys, '1.00 USD', 'ca:hold') AS h1 \gset
SELECT wallet.void(:h1) IS NULL AS ignored \gset
SELECT ok(EXISTS (SELECT 1 FROM wallet.audit_log WHERE id > :a1 AND relation LIKE '%account%' AND operation = 'INSERT'
                     AND (new_row ->> 'id')::bigint = :a),
          'opening an account is audited');
SELECT ok(EXISTS (SELECT 1 FROM wallet.audit_log WHERE id > :a1 AND relation LIKE '%account%' AND operation = 'UPDATE'
                     AND (new_row ->> 'id')::bigint = :b AND new_row ->> 'status' = 'frozen' AND 'status' = ANY (changed_columns)
                     AND actor = 'ops:7'),
          'freezing an account is audited, with the actor');
SELECT ok(EXISTS (SELECT 1 FROM wallet.audit_log WHERE id > :a1 AND relation LIKE '%hold%' AND (new_row ->> 'id')::bigint = :h1
                     AND new_row ->> 'status' = 'voided'),
          'a hold''s end is audited');

-- ============================================================ append-only, owner included

SELECT is(current_setting('is_superuser'), 'on', 'this session is a superuser (and owns the tables)');
SELECT is(pg_temp.state(format('UPDATE wallet.txn SET kind = ''x'' WHERE id = %s', :t1)), 'WL013', 'UPDATE of a transaction: WL013');
SELECT is(pg_temp.state(format('DELETE FROM wallet.txn WHERE id = %s', :t1)), 'WL013', 'DELETE of a transaction: WL013');
SELECT is(pg_temp.state('TRUNCATE wallet.txn CASCADE'), 'WL013', 'TRUNCATE of the transactions: WL013');
SELECT is(pg_temp.state(format('UPDATE wallet.entry SET amount = amount WHERE txn_id = %s', :t1)), 'WL013', 'UPDATE of an entry: WL013');
SELECT is(pg_temp.state(format('DELETE FROM wallet.entry WHERE txn_id = %s', :t1)), 'WL013', 'DELETE of an entry: WL013');
SELECT is(pg_temp.state('TRUNCATE wallet.entry'), 'WL013', 'TRUNCATE of the entries: WL013');
SELECT is(pg_temp.state(format('UPDATE wallet.audit_log SET actor = ''x'' WHERE id > %s', :a1)), 'WL013', 'UPDATE of the audit log: WL013');
SELECT is(pg_temp.state(format('DELETE FROM wallet.audit_log WHERE id > %s', :a1)), 'WL013', 'DELETE from the audit log: WL013');
SELECT is(pg_temp.state('TRUNCATE wallet.audit_log'), 'WL013', 'TRUNCATE of the audit log: WL013');
SELECT is(pg_temp.state(format('UPDATE wallet.hold SET amount = 1 WHERE id = %s', :h1)), 'WL013', 'UPDATE of an ended hold: WL013');
SELECT is(pg_temp.state(format('DELETE FROM wallet.hold WHERE id = %s', :h1)), 'WL013', 'DELETE of a hold: WL013');
SELECT is(pg_temp.state('TRUNCATE wallet.hold CASCADE'), 'WL013', 'TRUNCATE of the holds: WL013');
SELECT is(pg_temp.state(format('DELETE FROM wallet.account WHERE id = %s', :b)), 'WL013', 'DELETE of an account: WL013');
SELECT is(pg_temp.state('TRUNCATE wallet.account CASCADE'), 'WL013', 'TRUNCATE of the accounts: WL013');

-- ============================================================ digest and audit_verify

SELECT wallet.digest() AS head \gset
SELECT is(pg_temp.state('UPDATE wallet.audit_seal SET head = head'), 'WL013', 'UPDATE of a seal: WL013 (there is one now)');
SELECT ok(:'head' ~ '^[0-9a-f]{64}$', 'digest() returns a SHA-256 head in hex');
SELECT is(wallet.digest(), :'head', 'digest() with nothing new returns the same head');
SELECT is(pg_temp.av_failed(:'head'), '{}'::text[], 'audit_verify(head): everything intact');
SELECT ok((SELECT count(*) FROM wallet.audit_verify(:'head')) >= 3, 'audit_verify returns (check_name, ok, detail) rows');
SELECT max(id) AS last_audit FROM wallet.audit_log \gset
SAVEPOINT clean;
-- an edited sealed transaction, by a superuser with triggers off
SET LOCAL session_replication_role = replica;
UPDATE wallet.txn SET metadata = '{"x": 1}' WHERE id = :t1;
SET LOCAL session_replication_role = origin;
SELECT ok(array_length(pg_temp.av_failed(:'head'), 1) >= 1, 'an edited sealed transaction is found');
SELECT ok(pg_temp.av_detail(:'head') ~ ('\m' || :t1 || '\M'), '... and named');
ROLLBACK TO SAVEPOINT clean;
-- an edited sealed entry
SET LOCAL session_replication_role = replica;
UPDATE wallet.entry SET amount = -amount WHERE txn_id = :t1;
SET LOCAL session_replication_role = origin;
SELECT ok(array_length(pg_temp.av_failed(:'head'), 1) >= 1, 'an edited sealed entry is found');
ROLLBACK TO SAVEPOINT clean;
-- a deleted sealed transaction with its entries
ALTER TABLE wallet.entry DISABLE TRIGGER USER;
ALTER TABLE wallet.txn DISABLE TRIGGER USER;
DELETE FROM wallet.entry WHERE txn_id = :t1;
DELETE FROM wallet.txn WHERE id = :t1;
SELECT ok(array_length(pg_temp.av_failed(:'head'), 1) >= 1, 'a deleted sealed transaction is found (triggers disabled)');
SELECT ok(pg_temp.av_detail(:'head') ~ ('\m' || :t1 || '\M'), '... and named');
ROLLBACK TO SAVEPOINT clean;
-- an edited and a deleted sealed audit record
SET LOCAL session_replication_role = replica;
UPDATE wallet.audit_log SET actor = 'nobody' WHERE id = :last_audit;
SET LOCAL session_replication_role = origin;
SELECT ok(array_length(pg_temp.av_failed(:'head'), 1) >= 1, 'an edited sealed audit record is found');
SELECT ok(pg_temp.av_detail(:'head') ~ ('\m' || :last_audit || '\M'), '... and named');
ROLLBACK TO SAVEPOINT clean;
SET LOCAL session_replication_role = replica;
DELETE FROM wallet.audit_log WHERE id = :last_audit;
SET LOCAL session_replication_role = origin;
SELECT ok(array_length(pg_temp.av_failed(:'head'), 1) >= 1, 'a deleted sealed audit record is found');
ROLLBACK TO SAVEPOINT clean;
-- a transaction inserted into the sealed range (an id the sequence skipped)
SELECT wallet.transfer(:sys, :a, '1.00 USD', 'ca:burn') AS burned \gset
SELECT wallet.digest() AS head2 \gset
ROLLBACK TO SAVEPOINT clean;
SELECT wallet.transfer(:sys, :a, '1.00 USD', 'ca:after') AS t_after \gset
SELECT wallet.digest() AS head3 \gset
SAVEPOINT clean2;
SET LOCAL session_replication_role = replica;
INSERT INTO wallet.txn (id, idempotency_key, kind, request_hash) VALUES (:burned, 'ca:forged', 'forged', '\x00');
INSERT INTO wallet.entry (txn_id, leg, account_id, amount) VALUES (:burned, 1, :sys, -100), (:burned, 2, :a, 100);
SET LOCAL session_replication_role = origin;
SELECT ok(:burned < :t_after, 'the forged id lies inside the sealed range');
SELECT ok(array_length(pg_temp.av_failed(:'head3'), 1) >= 1, 'a transaction inserted among sealed ones is found');
ROLLBACK TO SAVEPOINT clean2;
-- the whole chain rewritten consistently: only the head kept outside tells
ALTER TABLE wallet.audit_seal DISABLE TRIGGER USER;
DELETE FROM wallet.audit_seal;
ALTER TABLE wallet.audit_seal ENABLE TRIGGER USER;
SELECT wallet.digest() AS head4 \gset
SELECT is(pg_temp.av_failed(), '{}'::text[], 'a rewritten chain is self-consistent ...');
SELECT ok(array_length(pg_temp.av_failed(:'head3'), 1) >= 1, '... but audit_verify(head kept outside) finds it');
ROLLBACK TO SAVEPOINT clean2;
SELECT is(pg_temp.av_failed(:'head3'), '{}'::text[], 'intact again after the rollback');
SELECT is((SELECT bool_and(ok) FROM wallet.verify() WHERE check_name LIKE 'audit%'), true, 'verify() includes the audit checks, all ok');

-- ============================================================ grant_app, grant_reader

CREATE ROLE cl_app;
CREATE ROLE cl_reader;
CREATE ROLE cl_nobody;
SELECT lives_ok($$SELECT wallet.grant_app('cl_app')$$, 'grant_app(role)');
SELECT lives_ok($$SELECT wallet.grant_reader('cl_reader')$$, 'grant_reader(role)');
SET LOCAL ROLE cl_app;
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'ca:app')$$, :sys, :a)), 'ok', 'the app role calls the API');
SELECT is(pg_temp.state(format($$SELECT wallet.balance(%s)$$, :a)), 'ok', 'the app role reads balances');
SELECT is(pg_temp.state('SELECT count(*) FROM wallet.accounts'), 'ok', 'the app role reads the views');
SELECT is(pg_temp.state(format('UPDATE wallet.account SET balance = 0 WHERE id = %s', :a)), '42501', 'the app role cannot UPDATE a balance');
SELECT is(pg_temp.state('DELETE FROM wallet.entry'), '42501', 'the app role cannot DELETE an entry');
SELECT is(pg_temp.state('TRUNCATE wallet.txn'), '42501', 'the app role cannot TRUNCATE');
SELECT is(pg_temp.state('ALTER TABLE wallet.entry DISABLE TRIGGER ALL'), '42501', 'the app role cannot disable a trigger');
SELECT is(pg_temp.state('SELECT count(*) FROM wallet.account'), '42501', 'the app role cannot read the tables directly');
RESET ROLE;
SET LOCAL ROLE cl_reader;
SELECT is(pg_temp.state(format($$SELECT wallet.balance(%s)$$, :a)), 'ok', 'a reader reads balances');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'ca:reader')$$, :sys, :a)), '42501', 'a reader cannot post');
RESET ROLE;
SET LOCAL ROLE cl_nobody;
SELECT is(pg_temp.state(format($$SELECT wallet.balance(%s)$$, :a)), '42501', 'a role without grants cannot read balances');
RESET ROLE;
SELECT is((SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'wallet'::regnamespace AND p.prosecdef
              AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')), 0::bigint,
          'every SECURITY DEFINER function pins search_path');

SELECT * FROM finish();
ROLLBACK;
