-- test/pgtap/audit.sql — SPEC "Audit": wallet.audit_table(regclass) attaches
-- wallet.audit(); each row change lands in wallet.audit_log with relation,
-- operation, old_row/new_row (jsonb), changed_columns, txid, at, db_user,
-- application_name, client_addr and actor (SET LOCAL wallet.actor).  The
-- ledger's own changes (accounts, holds, currencies) are audited; postings
-- are not (each balance change is a journal entry, sealed instead).
-- seal()/digest() work inside the writing transaction and cover its rows.
--
-- One transaction, rolled back: txid_current() and now() are the same for
-- every statement in it.
BEGIN;
SELECT plan(66);

-- Keep the background sealer (wallet.housekeeping when the library is
-- preloaded) out of this transaction: a sealer waiting for this writing
-- transaction while holding the seal lock deadlocks with our own digest()
-- (reported as a bug; see the test report).  We take the lock first.
LOCK TABLE wallet.audit_seal IN SHARE ROW EXCLUSIVE MODE;

SET LOCAL client_min_messages = warning;
CREATE ROLE wl_aud_app;
SELECT wallet.grant_app('wl_aud_app') AS granted \gset

CREATE TABLE public.wl_audit_t (
    id    int PRIMARY KEY,
    name  text,
    qty   int,
    price wallet.amount,
    note  text
);
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON public.wl_audit_t TO wl_aud_app;

SELECT lives_ok($$SELECT wallet.audit_table('public.wl_audit_t')$$, 'audit_table attaches the audit trigger');
SELECT lives_ok($$SELECT wallet.audit_table('wl_audit_t'::regclass)$$, 'audit_table again (idempotent)');
SELECT is((SELECT count(*)::int FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
            WHERE t.tgrelid = 'public.wl_audit_t'::regclass AND p.oid = 'wallet.audit()'::regprocedure),
          2, 'calling audit_table twice leaves one row trigger and one TRUNCATE trigger');
SELECT is((SELECT count(*)::int FROM pg_trigger t
            WHERE t.tgrelid = 'public.wl_audit_t'::regclass AND (t.tgtype & 1) = 1 AND (t.tgtype & 28) = 28),
          1, 'the row trigger fires FOR EACH ROW on INSERT, UPDATE and DELETE');
SELECT throws_ok($$SELECT wallet.audit_table(NULL)$$, '22004', NULL, 'audit_table(NULL) is refused');

SELECT coalesce(max(id), 0) AS a0 FROM wallet.audit_log \gset

-- ---------------------------------------------------------------- a user table

SET LOCAL application_name = 'wl-audit-test';
SET LOCAL wallet.actor = 'user:42';
SET LOCAL ROLE wl_aud_app;
INSERT INTO public.wl_audit_t VALUES (1, 'apple', 2, '3.50 USD', 'n1');
UPDATE public.wl_audit_t SET qty = 5, note = 'n2' WHERE id = 1;
UPDATE public.wl_audit_t SET price = '4.00 USD' WHERE id = 1;
DELETE FROM public.wl_audit_t WHERE id = 1;
INSERT INTO public.wl_audit_t VALUES (2, 'pear', 1, NULL, NULL);
TRUNCATE public.wl_audit_t;
RESET wallet.actor;
INSERT INTO public.wl_audit_t VALUES (3, 'plum', 7, '0.01 USD', NULL);
RESET ROLE;

CREATE TEMP TABLE wl_aud AS
SELECT row_number() OVER (ORDER BY id) AS n, *
  FROM wallet.audit_log WHERE id > :a0 AND relation = 'public.wl_audit_t';

SELECT is((SELECT array_agg(operation ORDER BY n) FROM wl_aud),
          '{INSERT,UPDATE,UPDATE,DELETE,INSERT,TRUNCATE,INSERT}'::text[],
          'one audit record per change, in order');
SELECT is((SELECT count(*)::int FROM wallet.audit_log WHERE id > :a0), 7,
          'no other audit records were written');
-- INSERT
SELECT is((SELECT old_row FROM wl_aud WHERE n = 1), NULL, 'INSERT: old_row is NULL');
SELECT is((SELECT new_row FROM wl_aud WHERE n = 1),
          '{"id": 1, "name": "apple", "qty": 2, "price": "3.50 USD", "note": "n1"}'::jsonb,
          'INSERT: new_row is the inserted row (amount in its text form)');
SELECT is((SELECT changed_columns FROM wl_aud WHERE n = 1), NULL, 'INSERT: changed_columns is NULL');
-- UPDATE two columns
SELECT is((SELECT old_row FROM wl_aud WHERE n = 2),
          '{"id": 1, "name": "apple", "qty": 2, "price": "3.50 USD", "note": "n1"}'::jsonb, 'UPDATE: old_row');
SELECT is((SELECT new_row FROM wl_aud WHERE n = 2),
          '{"id": 1, "name": "apple", "qty": 5, "price": "3.50 USD", "note": "n2"}'::jsonb, 'UPDATE: new_row');
SELECT is((SELECT array(SELECT unnest(changed_columns) ORDER BY 1) FROM wl_aud WHERE n = 2),
          '{note,qty}'::text[], 'UPDATE: changed_columns is exactly the changed columns');
-- UPDATE of the amount column
SELECT is((SELECT changed_columns FROM wl_aud WHERE n = 3), '{price}'::text[],
          'UPDATE of the amount column: changed_columns = {price}');
SELECT is((SELECT (old_row ->> 'price') || ' -> ' || (new_row ->> 'price') FROM wl_aud WHERE n = 3),
          '3.50 USD -> 4.00 USD', 'UPDATE of the amount column: old and new amounts');
-- DELETE
SELECT is((SELECT old_row FROM wl_aud WHERE n = 4),
          '{"id": 1, "name": "apple", "qty": 5, "price": "4.00 USD", "note": "n2"}'::jsonb, 'DELETE: old_row is the deleted row');
SELECT is((SELECT new_row FROM wl_aud WHERE n = 4), NULL, 'DELETE: new_row is NULL');
SELECT is((SELECT changed_columns FROM wl_aud WHERE n = 4), NULL, 'DELETE: changed_columns is NULL');
-- INSERT with NULLs
SELECT is((SELECT new_row FROM wl_aud WHERE n = 5),
          '{"id": 2, "name": "pear", "qty": 1, "price": null, "note": null}'::jsonb, 'INSERT: NULL columns kept as JSON null');
-- TRUNCATE
SELECT is((SELECT row(old_row, new_row, changed_columns)::text FROM wl_aud WHERE n = 6), '(,,)',
          'TRUNCATE: one record, no rows');
-- common fields
SELECT is((SELECT count(*)::int FROM wl_aud WHERE txid = txid_current()), 7, 'txid is the writing transaction''s txid_current()');
SELECT is((SELECT count(*)::int FROM wl_aud WHERE at = now()), 7, 'at is the writing transaction''s now()');
SELECT is((SELECT array_agg(DISTINCT db_user) FROM wl_aud), '{wl_aud_app}'::text[],
          'db_user is the session''s role (SET ROLE), not the extension owner');
SELECT is((SELECT array_agg(DISTINCT application_name) FROM wl_aud), '{wl-audit-test}'::text[],
          'application_name is recorded');
SELECT is((SELECT count(*)::int FROM wl_aud WHERE client_addr IS NOT DISTINCT FROM inet_client_addr()), 7,
          'client_addr is the session''s inet_client_addr()');
SELECT is((SELECT array_agg(actor ORDER BY n) FROM wl_aud WHERE n <= 6),
          '{user:42,user:42,user:42,user:42,user:42,user:42}'::text[], 'actor comes from SET LOCAL wallet.actor');
SELECT is((SELECT actor FROM wl_aud WHERE n = 7), NULL, 'actor is NULL when wallet.actor is not set');
SELECT is((SELECT relation FROM wl_aud WHERE n = 1), 'public.wl_audit_t', 'relation is the schema-qualified table name');

-- A table whose name needs quoting, in another schema.
CREATE SCHEMA "wl aud ""s""";
CREATE TABLE "wl aud ""s"""."Odd ""Name""" ("Col A" int);
SELECT wallet.audit_table('"wl aud ""s"""."Odd ""Name"""') AS attached \gset
INSERT INTO "wl aud ""s"""."Odd ""Name""" VALUES (1);
SELECT is((SELECT relation || ' ' || new_row::text FROM wallet.audit_log ORDER BY id DESC LIMIT 1),
          '"wl aud ""s"""."Odd ""Name""" {"Col A": 1}', 'relation of an oddly named table is its quoted qualified name');
SELECT is((SELECT relation::regclass FROM wallet.audit_log ORDER BY id DESC LIMIT 1),
          '"wl aud ""s"""."Odd ""Name"""'::regclass, 'the recorded relation resolves back to the table');

-- Rolled-back changes leave no record.
SELECT count(*) AS before_sp FROM wallet.audit_log \gset
SAVEPOINT sp;
INSERT INTO public.wl_audit_t VALUES (9, 'gone', 0, NULL, NULL);
ROLLBACK TO SAVEPOINT sp;
SELECT is((SELECT count(*) FROM wallet.audit_log), :before_sp::bigint, 'a rolled-back change leaves no audit record');

-- ---------------------------------------------------------------- the ledger's own changes

SET LOCAL wallet.actor = 'ops:7';
SET LOCAL ROLE wl_aud_app;
SELECT coalesce(max(id), 0) AS l0 FROM wallet.audit_trail \gset
SELECT wallet.open_account('aud-alice', 'USD', 'user', false, '{"tier": "gold"}') AS alice \gset
SELECT wallet.open_account('aud-bob', 'USD') AS bob \gset
SELECT wallet.open_account('aud-house', 'USD', 'system', true) AS house \gset
RESET ROLE;
-- (superuser from here; the app role's records were checked above)
SELECT is((SELECT count(*)::int FROM wallet.audit_log WHERE id > :l0 AND relation = 'wallet.account' AND operation = 'INSERT'), 3,
          'open_account: one INSERT record per account');
SELECT is((SELECT new_row ->> 'owner' || '/' || (new_row ->> 'currency') || '/' || (new_row -> 'metadata' ->> 'tier')
             FROM wallet.audit_log WHERE id > :l0 AND relation = 'wallet.account' AND (new_row ->> 'id')::bigint = :alice),
          'aud-alice/USD/gold', 'open_account: new_row is the new account');
SELECT is((SELECT old_row FROM wallet.audit_log WHERE id > :l0 AND relation = 'wallet.account' AND (new_row ->> 'id')::bigint = :alice),
          NULL, 'open_account: old_row is NULL');
SELECT is((SELECT db_user || ' ' || actor FROM wallet.audit_log WHERE id > :l0 AND (new_row ->> 'id')::bigint = :alice AND relation = 'wallet.account'),
          'wl_aud_app ops:7', 'open_account: db_user is the calling role (not the definer) and actor is recorded');
SELECT is((SELECT count(*)::int FROM wallet.audit_log WHERE id > :l0 AND (txid <> txid_current() OR at <> now())), 0,
          'ledger records carry the transaction''s txid and now()');

SELECT max(id) AS l1 FROM wallet.audit_log \gset
SELECT wallet.transfer(:house, :alice, '100.00 USD', 'aud-t1') AS t1 \gset
SELECT wallet.transfer(:alice, :bob, '10.00 USD', 'aud-t2', 'transfer', '{"x": 1}') AS t2 \gset
SELECT wallet.post('aud-p1', ARRAY[ROW(:alice, '-1.00 USD')::wallet.leg, ROW(:bob, '0.25 USD')::wallet.leg,
                                   ROW(:house, '0.75 USD')::wallet.leg]) AS p1 \gset
SELECT wallet.reverse(:t2, 'aud-r1', 'test') AS r1 \gset
SELECT is((SELECT count(*)::int FROM wallet.audit_log WHERE id > :l1), 0,
          'transfer, post and reverse add no audit records (the journal is their record)');
SELECT is((SELECT count(*)::int FROM wallet.txn WHERE id IN (:t1, :t2, :p1, :r1)), 4, '... but they are in the journal');

SELECT max(id) AS l2 FROM wallet.audit_log \gset
SELECT wallet.freeze_account(:bob) AS f \gset
SELECT is((SELECT operation FROM wallet.audit_log WHERE id > :l2 AND relation = 'wallet.account'), 'UPDATE',
          'freeze_account: an UPDATE record for wallet.account');
SELECT ok((SELECT 'status' = ANY (changed_columns) FROM wallet.audit_log WHERE id > :l2 AND relation = 'wallet.account'),
          'freeze_account: changed_columns contains status');
SELECT is((SELECT array(SELECT unnest(changed_columns) EXCEPT SELECT unnest('{status,version}'::text[]))
             FROM wallet.audit_log WHERE id > :l2 AND relation = 'wallet.account'),
          '{}'::text[], 'freeze_account: nothing but status (and version) changed');
SELECT is((SELECT (old_row ->> 'status') || ' -> ' || (new_row ->> 'status') FROM wallet.audit_log
            WHERE id > :l2 AND relation = 'wallet.account'), 'active -> frozen', 'freeze_account: old and new status');
SELECT is((SELECT (new_row ->> 'id')::bigint FROM wallet.audit_log WHERE id > :l2 AND relation = 'wallet.account'), :bob::bigint,
          'freeze_account: the record names the account');
SELECT wallet.unfreeze_account(:bob) AS u \gset
SELECT is((SELECT (old_row ->> 'status') || ' -> ' || (new_row ->> 'status') FROM wallet.audit_log
            WHERE id > :l2 AND relation = 'wallet.account' ORDER BY id DESC LIMIT 1), 'frozen -> active',
          'unfreeze_account: audited');

SELECT max(id) AS l3 FROM wallet.audit_log \gset
SELECT wallet.hold(:alice, :bob, '20.00 USD', 'aud-h1', NULL, 'hold', '{"order": 5}') AS h1 \gset
SELECT is((SELECT operation || ' ' || (new_row ->> 'id') || ' ' || (new_row ->> 'status') || ' ' || (new_row ->> 'amount')
             FROM wallet.audit_log WHERE id > :l3 AND relation = 'wallet.hold'),
          'INSERT ' || :h1 || ' pending 2000', 'hold: an INSERT record for wallet.hold');
SELECT is((SELECT count(*)::int FROM wallet.audit_log WHERE id > :l3), 1, 'hold: exactly one record (held balance not audited row by row)');
SELECT max(id) AS l4 FROM wallet.audit_log \gset
SELECT wallet.capture(:h1, '15.00 USD') AS c1 \gset
SELECT is((SELECT operation || ' ' || (old_row ->> 'status') || ' -> ' || (new_row ->> 'status') || ' captured ' || (new_row ->> 'captured')
             FROM wallet.audit_log WHERE id > :l4 AND relation = 'wallet.hold'),
          'UPDATE pending -> captured captured 1500', 'capture: an UPDATE record for wallet.hold');
SELECT ok((SELECT changed_columns @> '{status,captured,capture_txn}' FROM wallet.audit_log WHERE id > :l4 AND relation = 'wallet.hold'),
          'capture: changed_columns lists status, captured and capture_txn');
SELECT is((SELECT (new_row ->> 'capture_txn')::bigint FROM wallet.audit_log WHERE id > :l4 AND relation = 'wallet.hold'), :c1::bigint,
          'capture: the record links the capture transaction');
SELECT wallet.hold(:alice, :bob, '1.00 USD', 'aud-h2') AS h2 \gset
SELECT max(id) AS l5 FROM wallet.audit_log \gset
SELECT wallet.void(:h2) AS v \gset
SELECT is((SELECT operation || ' ' || (old_row ->> 'status') || ' -> ' || (new_row ->> 'status')
             FROM wallet.audit_log WHERE id > :l5 AND relation = 'wallet.hold'),
          'UPDATE pending -> voided', 'void: an UPDATE record for wallet.hold');

SELECT max(id) AS l6 FROM wallet.audit_log \gset
SELECT wallet.add_currency('WLAUDC', 2, 'audit test unit') AS added \gset
SELECT is((SELECT operation || ' ' || (new_row ->> 'code') || ' ' || (new_row ->> 'minor_units')
             FROM wallet.audit_log WHERE id > :l6 AND relation = 'wallet.custom_currencies'),
          'INSERT WLAUDC 2', 'add_currency: an INSERT record for wallet.custom_currencies');
SELECT max(id) AS l7 FROM wallet.audit_log \gset
SELECT wallet.set_hot(:bob) AS sh \gset
SELECT is((SELECT changed_columns @> '{hot}' FROM wallet.audit_log WHERE id > :l7 AND relation = 'wallet.account'), true,
          'set_hot: an UPDATE record with hot in changed_columns');

-- ---------------------------------------------------------------- sealing inside the writing transaction

SELECT max(id) AS a_last FROM wallet.audit_log \gset
SELECT max(id) AS j_last FROM wallet.txn \gset
SELECT wallet.digest() AS head1 \gset
SELECT is(length(:'head1'), 64, 'digest() in the writing transaction returns a SHA-256 head (hex)');
SELECT is((SELECT encode(head, 'hex') FROM wallet.audit_seal ORDER BY id DESC LIMIT 1), :'head1',
          'digest() returns the head of the last seal');
SELECT ok((SELECT :a_last::bigint = ANY (array_agg(u)) FROM wallet.audit_seal s, unnest(s.audit_ids) u),
          'the seal covers this transaction''s own audit records');
SELECT ok((SELECT :j_last::bigint = ANY (array_agg(u)) FROM wallet.audit_seal s, unnest(s.journal_ids) u),
          'the seal covers this transaction''s own journal transactions');
SELECT is((SELECT count(*)::int FROM wl_aud a
            WHERE NOT EXISTS (SELECT 1 FROM wallet.audit_seal s WHERE a.id = ANY (s.audit_ids))), 0,
          'every audit record of the user table is sealed');
SELECT is((SELECT array_agg(check_name || '=' || ok ORDER BY check_name) FROM wallet.audit_verify()),
          '{audit_records=true,journal_records=true,ledger_rows=true,seal_chain=true,unsealed=true}'::text[],
          'audit_verify() all ok after sealing');
SELECT is((SELECT detail FROM wallet.audit_verify() WHERE check_name = 'unsealed'),
          '0 journal transactions and 0 audit records not sealed yet', 'nothing left unsealed');
SELECT is(wallet.digest(), :'head1', 'digest() again without changes returns the same head');
SELECT is(wallet.seal(), 0::bigint, 'seal() without changes seals nothing');
SELECT count(*) AS seals_before FROM wallet.audit_seal \gset
INSERT INTO public.wl_audit_t VALUES (4, 'fig', 1, NULL, NULL);
SELECT isnt(wallet.digest(), :'head1', 'a new audit record moves the head');
SELECT is((SELECT count(*) FROM wallet.audit_seal), :seals_before::bigint + 1, '... with one new seal');
SELECT is((SELECT array_agg(ok) FROM wallet.audit_verify(:'head1')), '{t,t,t,t,t,t}'::boolean[],
          'audit_verify(old head) ok: the old head is still in the chain');
SELECT is((SELECT array_agg(ok ORDER BY check_name) FROM wallet.verify() WHERE check_name LIKE 'audit: %'),
          '{t,t,t,t,t}'::boolean[], 'wallet.verify() includes the audit checks, all ok');

-- The app role may seal too (digest is part of the API).
INSERT INTO public.wl_audit_t VALUES (5, 'kiwi', 1, NULL, NULL);
SET LOCAL ROLE wl_aud_app;
SELECT wallet.digest() AS head_app \gset
RESET ROLE;
SELECT is(:'head_app', (SELECT encode(head, 'hex') FROM wallet.audit_seal ORDER BY id DESC LIMIT 1),
          'the app role can call digest() (it seals)');

SELECT * FROM finish();
ROLLBACK;
