-- test/pgtap/review_1_3.sql — what a black-box review of 1.2.0 found in
-- the audit trail, fixed in 1.3.0 (the tests of 1-7 fail on 1.2.0; those
-- of 0 failed with the first 1.3.0 library, which prepared the audit
-- INSERT as the invoker):
--   1. wallet.audit() converted the audited row with the owner's rights: a
--      cast to json defined by any role ran as the owner (a superuser);
--   2. wallet.audit_trail showed the records of a table under row-level
--      security to roles the policy hides those rows from;
--   3. wallet.audit_table() spliced an OID naming no table into SQL (42601)
--      and accepted wallet.audit_log itself (endless recursion);
--   4. wallet.audit_hash() gave a BC time and its AD twin, or an address
--      and the same address with a short netmask, the same text, so such
--      an edit of a sealed record went undetected;
--   5. the first wallet.live_setup() wrote no audit record;
--   6. wallet.verify() did not check a captured hold's amount against the
--      transaction that captured it;
--   7. the owner could TRUNCATE pending hot credits or the live setup.
--
-- Runs in one transaction (roles included) and rolls everything back.
BEGIN;
SELECT plan(25);

-- keep the background sealer out of this transaction (see tamper.sql)
LOCK TABLE wallet.audit_seal IN SHARE ROW EXCLUSIVE MODE;
SET LOCAL client_min_messages = warning;

CREATE ROLE wl_r13_mallory;
SELECT wallet.grant_reader('wl_r13_mallory');

-- ------------- 0. the audit trigger needs no rights on schema wallet
-- (its INSERT is prepared and run as the log's owner; it was prepared as
-- the invoker, so the first audited change in a backend by a role without
-- USAGE on the schema failed).  First in this file: no audit record has
-- been written by this backend yet.
CREATE ROLE wl_r13_plain;
CREATE TABLE public.r13_plain (x int);
SELECT wallet.audit_table('public.r13_plain');
GRANT INSERT ON public.r13_plain TO wl_r13_plain;
REVOKE USAGE ON SCHEMA wallet FROM PUBLIC;
SET LOCAL ROLE wl_r13_plain;
SELECT lives_ok($$INSERT INTO public.r13_plain VALUES (1)$$,
                'a role without USAGE on schema wallet writes an audited table');
RESET ROLE;
GRANT USAGE ON SCHEMA wallet TO PUBLIC;
SELECT is((SELECT count(*) FROM wallet.audit_log WHERE relation = 'public.r13_plain'), 1::bigint,
          'and its change is recorded');

-- ------------------------------------------- 1. audit() runs as the invoker

-- (in a schema of its own: wallet.audit() refuses temporary tables since
-- the 1.6.0 library, see review_1_6)
CREATE SCHEMA r13_s AUTHORIZATION wl_r13_mallory;
SET LOCAL ROLE wl_r13_mallory;
CREATE TYPE r13_s.r13_evil AS ENUM ('x');
-- the cast tries to make its caller a superuser and reports who it ran as
CREATE FUNCTION r13_s.r13_to_json(r13_s.r13_evil) RETURNS json
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE 'ALTER ROLE wl_r13_mallory SUPERUSER';
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    RETURN to_json(current_user::text);
END
$$;
CREATE CAST (r13_s.r13_evil AS json) WITH FUNCTION r13_s.r13_to_json(r13_s.r13_evil);
CREATE TABLE r13_s.r13_t (e r13_s.r13_evil);
CREATE TRIGGER r13_audit AFTER INSERT ON r13_s.r13_t FOR EACH ROW EXECUTE FUNCTION wallet.audit();
SELECT lives_ok($$INSERT INTO r13_s.r13_t VALUES ('x')$$,
                'a role audits its own table through wallet.audit()');
RESET ROLE;

SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'wl_r13_mallory'), false,
          'a cast to json run by the audit trigger cannot make its author a superuser');
SELECT is((SELECT a.new_row->>'e' FROM wallet.audit_log a
            WHERE a.relation = 'r13_s.r13_t' ORDER BY a.id DESC LIMIT 1),
          'wl_r13_mallory',
          'the row is converted with the rights of the role making the change');
SELECT is((SELECT a.db_user FROM wallet.audit_log a
            WHERE a.relation = 'r13_s.r13_t' ORDER BY a.id DESC LIMIT 1),
          'wl_r13_mallory', 'and the record names that role');
SELECT is((SELECT p.prosecdef FROM pg_proc p WHERE p.oid = 'wallet.audit()'::regprocedure), false,
          'wallet.audit() is not SECURITY DEFINER');
SELECT is((SELECT count(*) FROM wallet.audit_log a WHERE a.relation = 'r13_s.r13_t'), 1::bigint,
          'the role could write the log only through the trigger: one record');

-- --------------------------------------- 2. audit_trail and row-level security

CREATE TABLE public.r13_notes (owner text, body text);
ALTER TABLE public.r13_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY r13_own ON public.r13_notes USING (owner = current_user);
GRANT SELECT ON public.r13_notes TO wl_r13_mallory;
SELECT wallet.audit_table('public.r13_notes');
INSERT INTO public.r13_notes VALUES ('wl_r13_mallory', 'mine'), ('postgres', 'TOP SECRET');

SET LOCAL ROLE wl_r13_mallory;
SELECT is((SELECT count(*) FROM public.r13_notes), 1::bigint, 'the policy shows the role one row');
SELECT is((SELECT count(*) FROM wallet.audit_trail WHERE relation = 'public.r13_notes'), 0::bigint,
          'audit_trail shows no record of a table under row-level security for the caller');
SELECT is((SELECT count(*) FROM wallet.audit_trail WHERE new_row::text LIKE '%TOP SECRET%'), 0::bigint,
          'in particular not the row the policy hides');
RESET ROLE;
SELECT is((SELECT count(*) FROM wallet.audit_trail WHERE relation = 'public.r13_notes'), 2::bigint,
          'the table''s owner (not subject to the policy) sees both records');
ALTER TABLE public.r13_notes DISABLE ROW LEVEL SECURITY;
SET LOCAL ROLE wl_r13_mallory;
SELECT is((SELECT count(*) FROM wallet.audit_trail WHERE relation = 'public.r13_notes'), 2::bigint,
          'without row-level security a role that may read the table sees its records');
RESET ROLE;

-- ---------------------------------------------------- 3. audit_table() input

SELECT throws_ok($$SELECT wallet.audit_table(99999999::regclass)$$, '42P01', NULL,
                 'audit_table: an OID that names no table is 42P01, not a syntax error');
SELECT throws_ok($$SELECT wallet.audit_table('wallet.audit_log')$$, '22023', NULL,
                 'audit_table refuses wallet.audit_log (it would audit its own records without end)');
SELECT throws_ok($$SELECT wallet.audit_table('wallet.account')$$, '22023', NULL,
                 'audit_table refuses the ledger''s own tables');

-- ------------------------------------------------ 4. audit_hash canonical text

-- a record as the API writes it from a TCP client (a host address)
INSERT INTO wallet.audit_log (relation, operation, new_row, txid, at, db_user, client_addr)
VALUES ('public.r13_notes', 'INSERT', '{"n": 1}', txid_current(), now(), 'postgres', '10.1.2.3');
SELECT is(wallet.audit_hash(a),
          sha256(convert_to(concat_ws('|',
              'audit', quote_nullable(a.id), quote_nullable(a.relation), quote_nullable(a.operation),
              quote_nullable(a.old_row::text), quote_nullable(a.new_row::text),
              quote_nullable(a.changed_columns::text), quote_nullable(a.txid),
              quote_nullable(to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')),
              quote_nullable(a.db_user), quote_nullable(a.application_name),
              quote_nullable(host(a.client_addr)), quote_nullable(a.actor)), 'UTF8')),
          'a record as the API writes it hashes as in 1.2.0 (seals made before the update hold)')
  FROM wallet.audit_log a WHERE a.client_addr = '10.1.2.3';
SELECT wallet.digest() AS head \gset

SAVEPOINT clean;
SET LOCAL session_replication_role = replica;
UPDATE wallet.audit_log SET client_addr = '10.1.2.3/1' WHERE client_addr = '10.1.2.3';
SET LOCAL session_replication_role = origin;
SELECT ok(EXISTS (SELECT 1 FROM wallet.audit_verify(:'head') WHERE NOT ok),
          'audit_verify finds a sealed address given a netmask');
ROLLBACK TO SAVEPOINT clean;

SET LOCAL session_replication_role = replica;
UPDATE wallet.audit_log SET at = (at::timestamp::text || ' BC')::timestamp AT TIME ZONE 'UTC'
 WHERE client_addr = '10.1.2.3';
SET LOCAL session_replication_role = origin;
SELECT ok(EXISTS (SELECT 1 FROM wallet.audit_verify(:'head') WHERE NOT ok),
          'audit_verify finds a sealed time moved to BC');
ROLLBACK TO SAVEPOINT clean;
SELECT ok(NOT EXISTS (SELECT 1 FROM wallet.audit_verify(:'head') WHERE NOT ok),
          'and the untouched chain verifies');

-- -------------------------------------------------- 5. live_setup is audited

-- (another test file may have set the live flows up already, committed:
-- then its record is the one to find)
SELECT wallet.live_setup(creator_share => 0.4);
SELECT is((SELECT count(*) FROM wallet.audit_log a
            WHERE a.relation = 'wallet.live_config' AND a.operation = 'INSERT'
              AND a.new_row->>'coin_issuance' = (SELECT coin_issuance::text FROM wallet.live_config)),
          1::bigint, 'the first live_setup writes one INSERT record with the configuration');

-- ----------------------- 6. verify(): a captured hold against its capture

SELECT wallet.open_account('r13-bank', 'USD', 'system', true) AS bank \gset
SELECT wallet.open_account('r13-payer', 'USD') AS payer \gset
SELECT wallet.open_account('r13-shop', 'USD') AS shop \gset
SELECT wallet.transfer(:bank, :payer, '10.00 USD', 'r13-fund') AS fund \gset
SELECT wallet.hold(:payer, :shop, '5.00 USD', 'r13-h') AS h \gset
SELECT wallet.capture(:h, '3.00 USD') AS cap \gset
SELECT is((SELECT ok FROM wallet.verify() WHERE check_name = 'holds_consistent'), true,
          'a partly captured hold is consistent');
SAVEPOINT before_edit;
SET LOCAL session_replication_role = replica;
UPDATE wallet.hold SET captured = 200 WHERE id = :h;
SET LOCAL session_replication_role = origin;
SELECT is((SELECT ok FROM wallet.verify() WHERE check_name = 'holds_consistent'), false,
          'verify() finds a captured amount that differs from what its transaction moved');
ROLLBACK TO SAVEPOINT before_edit;

-- ------------------- 7. no TRUNCATE of pending credits or the live setup

SELECT throws_ok($$TRUNCATE wallet.hot_pending$$, 'WL013', NULL,
                 'TRUNCATE of wallet.hot_pending (posted hot credits) fails, for the owner too');
SELECT throws_ok($$TRUNCATE wallet.live_config$$, 'WL013', NULL,
                 'TRUNCATE of wallet.live_config (changed only by the audited live_setup) fails');

SELECT * FROM finish();
ROLLBACK;
