-- test/pgtap/review_1_4.sql — what a black-box review of 1.3.0 found in
-- tamper evidence and audit records, fixed in 1.4.0 (each section fails on
-- 1.3.0):
--   1. the rows of the ledger's own tables that are not sealed journal
--      (accounts, holds, custom currencies, the live configuration) could
--      be edited, inserted or deleted by a superuser with triggers off and
--      neither verify() nor audit_verify(head) noticed: audit_verify() now
--      compares each row with its latest audit record (ledger_rows);
--   2. verify() excused any negative account whose forced_negative flag
--      was set, and the flag is not audited: it now needs a forced posting
--      in the journal that debited the account;
--   3. audit records depended on the writing session's output settings
--      (time zone, bytea_output, extra_float_digits, IntervalStyle);
--   4. audit_verify('') reported a rewritten history instead of refusing
--      a malformed head.
--
-- Runs in one transaction and rolls everything back.
BEGIN;
SELECT plan(32);

-- keep the background sealer out of this transaction (see tamper.sql)
LOCK TABLE wallet.audit_seal IN SHARE ROW EXCLUSIVE MODE;
SET LOCAL client_min_messages = warning;

CREATE FUNCTION pg_temp.ledger_rows() RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN ok THEN 'ok' ELSE detail END FROM wallet.audit_verify() WHERE check_name = 'ledger_rows'
$$;

SELECT wallet.add_currency('RVC', 0, 'review coins') AS added \gset
SELECT wallet.live_setup() IS NOT NULL AS set_up \gset
SELECT wallet.open_account('r14-bank', 'USD', 'system', true) AS bank \gset
SELECT wallet.open_account('r14-a', 'USD') AS a \gset
SELECT wallet.open_account('r14-b', 'USD') AS b \gset
SELECT wallet.open_account('r14-mallory', 'USD') AS m \gset
SELECT wallet.open_account('r14-coins', 'RVC') AS rc \gset
SELECT wallet.transfer(:bank, :a, '100 USD', 'r14-fund') AS fund \gset
SELECT wallet.hold(:a, :b, '10 USD', 'r14-h1') AS h1 \gset
SELECT wallet.hold(:a, :b, '5 USD', 'r14-h2') AS h2 \gset
SELECT wallet.void(:h2);
SELECT wallet.hold(:a, :b, '3 USD', 'r14-h3') AS h3 \gset
SELECT wallet.capture(:h3, '2 USD') AS cap3 \gset
SELECT wallet.freeze_account(:m);
SELECT wallet.set_hot(:b);
SELECT wallet.digest() AS head \gset

-- ------------- 1. ledger rows against their latest audit records
SELECT is(pg_temp.ledger_rows(), 'ok', 'clean ledger: every account, hold, currency and the live setup match their records');
SELECT is((SELECT count(*) FROM wallet.audit_verify(:'head') WHERE NOT ok), 0::bigint,
          'clean ledger: audit_verify(head) all ok');

SET LOCAL session_replication_role = replica;
UPDATE wallet.hold SET to_account = :m WHERE id = :h1;
SET LOCAL session_replication_role = origin;
SELECT matches(pg_temp.ledger_rows(), format('^wallet\.hold %s differs from its last audit record in to_account \(audit record \d+, sealed in seal \d+\)$', :h1),
               'a pending hold redirected to another account: ledger_rows names the hold, the column and its sealed record');
SELECT is((SELECT count(*) FROM wallet.verify() WHERE check_name = 'audit: ledger_rows' AND NOT ok), 1::bigint,
          '... and wallet.verify() reports it under audit: ledger_rows');
SET LOCAL session_replication_role = replica;
UPDATE wallet.hold SET to_account = :b WHERE id = :h1;
SET LOCAL session_replication_role = origin;
SELECT is(pg_temp.ledger_rows(), 'ok', 'restored: ok again');

SET LOCAL session_replication_role = replica;
UPDATE wallet.hold SET status = 'voided', captured = NULL, capture_txn = NULL, ended_at = now() WHERE id = :h3;
SET LOCAL session_replication_role = origin;
SELECT matches(pg_temp.ledger_rows(), format('^wallet\.hold %s differs from its last audit record in status, captured, capture_txn', :h3),
               'a captured hold turned into a voided one: detected');
SET LOCAL session_replication_role = replica;
UPDATE wallet.hold h SET status = (l.new_row ->> 'status'), captured = (l.new_row ->> 'captured')::bigint,
                         capture_txn = (l.new_row ->> 'capture_txn')::bigint, ended_at = (l.new_row ->> 'ended_at')::timestamptz
  FROM (SELECT new_row FROM wallet.audit_log WHERE relation = 'wallet.hold' AND (new_row ->> 'id')::bigint = :h3
         ORDER BY id DESC LIMIT 1) l
 WHERE h.id = :h3;
DELETE FROM wallet.hold WHERE id = :h2;
SET LOCAL session_replication_role = origin;
SELECT matches(pg_temp.ledger_rows(), format('^wallet\.hold %s was deleted \(audit record \d+', :h2),
               'an ended hold deleted: detected');
SET LOCAL session_replication_role = replica;
INSERT INTO wallet.hold SELECT (jsonb_populate_record(NULL::wallet.hold, new_row)).*
  FROM wallet.audit_log a WHERE a.relation = 'wallet.hold' AND (a.new_row ->> 'id')::bigint = :h2 ORDER BY a.id DESC LIMIT 1;
INSERT INTO wallet.hold (id, idempotency_key, request_hash, from_account, to_account, amount, currency, kind)
VALUES (-1, 'r14-forged', '\x00', :a, :m, 100, 'USD', 'hold');
SET LOCAL session_replication_role = origin;
SELECT is(pg_temp.ledger_rows(), 'wallet.hold -1 has no audit record', 'a forged hold inserted: detected');
SET LOCAL session_replication_role = replica;
DELETE FROM wallet.hold WHERE id = -1;
SET LOCAL session_replication_role = origin;
SELECT is(pg_temp.ledger_rows(), 'ok', 'restored: ok again');

-- an account forged behind the triggers: allowed to go negative, it could
-- create money and is reported; one that may not is let pass (accounts
-- bulk-loaded outside the API have no record either)
SET LOCAL session_replication_role = replica;
INSERT INTO wallet.account (id, owner, currency, allow_negative) VALUES (-5, 'r14-mint', 'USD', true);
SET LOCAL session_replication_role = origin;
SELECT is(pg_temp.ledger_rows(), 'wallet.account -5 has no audit record', 'a forged account allowed to go negative: detected');
SET LOCAL session_replication_role = replica;
UPDATE wallet.account SET allow_negative = false WHERE id = -5;
SET LOCAL session_replication_role = origin;
SELECT is(pg_temp.ledger_rows(), 'ok', 'an account without a record that may not go negative (a bulk load): let pass');
SET LOCAL session_replication_role = replica;
DELETE FROM wallet.account WHERE id = -5;
UPDATE wallet.account SET status = 'active' WHERE id = :m;
SET LOCAL session_replication_role = origin;
SELECT matches(pg_temp.ledger_rows(), format('^wallet\.account %s differs from its last audit record in status', :m),
               'a frozen account silently unfrozen: detected');
SET LOCAL session_replication_role = replica;
UPDATE wallet.account SET status = 'frozen', allow_negative = true, currency = 'EUR' WHERE id = :m;
SET LOCAL session_replication_role = origin;
SELECT matches(pg_temp.ledger_rows(), 'in currency, allow_negative \(audit record',
               'currency and allow_negative changed: both columns named');
SET LOCAL session_replication_role = replica;
UPDATE wallet.account SET allow_negative = false, currency = 'USD' WHERE id = :m;
UPDATE wallet.account SET balance = balance + 1, version = version + 7 WHERE id = :m;
SET LOCAL session_replication_role = origin;
SELECT is(pg_temp.ledger_rows(), 'ok', 'the balance columns are the journal''s to check, not this one (verify() does)');
SELECT is((SELECT ok FROM wallet.verify() WHERE check_name = 'balances_match_entries'), false,
          '... and verify() does');
SET LOCAL session_replication_role = replica;
UPDATE wallet.account SET balance = balance - 1, version = version - 7 WHERE id = :m;
UPDATE wallet.custom_currencies SET minor_units = 2 WHERE code = 'RVC';
SET LOCAL session_replication_role = origin;
SELECT is(pg_temp.ledger_rows(), 'wallet.custom_currencies RVC differs from its last audit record in minor_units (audit record '
          || (SELECT max(id) FROM wallet.audit_log WHERE relation = 'wallet.custom_currencies' AND new_row ->> 'code' = 'RVC')
          || ', sealed in seal ' || (SELECT min(id) FROM wallet.audit_seal
                                     WHERE audit_through >= (SELECT max(id) FROM wallet.audit_log
                                                             WHERE relation = 'wallet.custom_currencies' AND new_row ->> 'code' = 'RVC'))
          || ')', 'a currency''s minor units changed: detected');
SET LOCAL session_replication_role = replica;
UPDATE wallet.custom_currencies SET minor_units = 0 WHERE code = 'RVC';
UPDATE wallet.live_config SET creator_share = 0.9;
SET LOCAL session_replication_role = origin;
SELECT matches(pg_temp.ledger_rows(), '^wallet\.live_config true differs from its last audit record in creator_share',
               'the creator share changed behind live_setup: detected');
SET LOCAL session_replication_role = replica;
UPDATE wallet.live_config SET creator_share = 0.5;
SET LOCAL session_replication_role = origin;

-- the API's own changes keep every row in step with its records
SELECT wallet.unfreeze_account(:m);
SELECT wallet.set_hot(:b, false);
SELECT wallet.void(:h1);
SELECT (wallet.live_setup(creator_share => 0.4)).creator_share AS share \gset
SELECT wallet.open_account('r14-viewer', 'COIN') AS viewer \gset
SELECT wallet.recharge(:viewer, '100 COIN', '1.00 USD', 'r14', 'o1') AS rch \gset
SELECT wallet.transfer(:viewer, (SELECT coin_revenue FROM wallet.live_config), '90 COIN', 'r14-spend') AS spend \gset
SELECT wallet.refund_recharge(:rch, 'chargeback') AS refund \gset
SELECT wallet.recharge(:viewer, '500 COIN', '5.00 USD', 'r14', 'o2') AS rch2 \gset
-- metadata given as a JSON null (drivers send one for a null object) is
-- stored as jsonb null; its record says null like a SQL NULL would
SELECT wallet.open_account('r14-jnull', 'USD', 'user', false, 'null'::jsonb) AS jnull \gset
SELECT wallet.hold(:a, :jnull, '1 USD', 'r14-h-jnull', NULL, 'hold', 'null'::jsonb) AS hjnull \gset
SELECT is(pg_temp.ledger_rows(), 'ok',
          'after unfreeze, set_hot(false), void, live_setup, recharge, refund into debt and its repayment, JSON null metadata: ok');
SELECT is((SELECT count(*) FROM wallet.audit_verify(:'head') WHERE NOT ok), 0::bigint,
          'and audit_verify(head) all ok');

-- ------------- 2. forced_negative must be backed by a forced posting
SELECT wallet.open_account('r14-c', 'USD') AS c \gset
SELECT wallet.transfer(:bank, :c, '10 USD', 'r14-c-fund') AS cfund \gset
SELECT wallet.transfer(:c, :bank, '10 USD', 'r14-c-spend') AS cspend \gset
SELECT wallet.reverse(:cfund, 'r14-c-rev', 'chargeback', allow_negative => true) AS crev \gset
SELECT is(wallet.balance(:c), '-10.00 USD'::wallet.amount, 'a forced reversal took c below zero');
SELECT is((SELECT ok FROM wallet.verify() WHERE check_name = 'no_forbidden_negative'), true,
          'verify(): accepted, through the forced posting in the journal');
-- a forced reversal that leaves the balance at zero with funds still
-- held: available is negative, as verify() counts it, and the account is
-- flagged for it
SELECT wallet.open_account('r14-e', 'USD') AS e \gset
SELECT wallet.transfer(:bank, :e, '100 USD', 'r14-e-fund') AS efund \gset
SELECT wallet.hold(:e, :b, '80 USD', 'r14-e-hold') AS ehold \gset
SELECT wallet.reverse(:efund, 'r14-e-rev', 'chargeback', allow_negative => true) AS erev \gset
SELECT is((SELECT balance || ' ' || held || ' ' || forced_negative FROM wallet.account WHERE id = :e), '0 8000 true',
          'a forced reversal below the held amount: balance 0, 80.00 held, flagged');
SELECT is((SELECT ok FROM wallet.verify() WHERE check_name = 'no_forbidden_negative'), true,
          'verify(): accepted, like any forced overdraft');
-- a balanced posting forged past the engine overdraws d, and the flag,
-- which no audit record covers, is set to hide it (with the next id: not
-- sealed yet, nor filed per account)
SELECT wallet.open_account('r14-d', 'USD') AS d \gset
SELECT nextval('wallet.txn_id_seq') AS forged \gset
SET LOCAL session_replication_role = replica;
INSERT INTO wallet.txn (id, idempotency_key, kind, request_hash) VALUES (:forged, 'r14-forged-txn', 'transfer', '\x00');
INSERT INTO wallet.entry VALUES (:forged, 1, :d, -500), (:forged, 2, :m, 500);
UPDATE wallet.account SET balance = balance - 500, forced_negative = true WHERE id = :d;
UPDATE wallet.account SET balance = balance + 500 WHERE id = :m;
SET LOCAL session_replication_role = origin;
SELECT is((SELECT count(*) FROM wallet.verify() WHERE NOT ok), 1::bigint,
          'the forged posting balances, matches the stored balances and is not sealed yet: one check fails');
SELECT is((SELECT detail FROM wallet.verify() WHERE check_name = 'no_forbidden_negative'),
          format('account %s may not go negative but has posted -5.00 USD with 0.00 USD held (marked forced_negative, but no forced posting debited it)', :d),
          'no_forbidden_negative: the flag without a forced posting does not excuse the overdraft');
SET LOCAL session_replication_role = replica;
DELETE FROM wallet.entry WHERE txn_id = :forged;
DELETE FROM wallet.txn WHERE id = :forged;
UPDATE wallet.account SET balance = balance + 500, forced_negative = false WHERE id = :d;
UPDATE wallet.account SET balance = balance - 500 WHERE id = :m;
SET LOCAL session_replication_role = origin;

-- ------------- 3. audit records do not depend on the session's settings
CREATE TABLE public.r14_vals (id int PRIMARY KEY, f float8, b bytea, i interval, r tstzrange, t timestamptz);
SELECT wallet.audit_table('public.r14_vals');
INSERT INTO public.r14_vals VALUES (1, 0.1::float8 + 0.2::float8, '\x00ff', '-1 year 2 hours',
                                    tstzrange('2026-01-01 00:00+00', '2026-02-01 00:00+00'), '2026-11-30 12:00+00');
SET LOCAL TimeZone = 'Asia/Kolkata';
SET LOCAL bytea_output = 'escape';
SET LOCAL extra_float_digits = 0;
SET LOCAL IntervalStyle = 'sql_standard';
SET LOCAL DateStyle = 'SQL, DMY';
INSERT INTO public.r14_vals SELECT 2, f, b, i, r, t FROM public.r14_vals WHERE id = 1;
SELECT wallet.open_account('r14-kolkata', 'USD') AS kol \gset
SELECT wallet.hold(:a, :b, '1 USD', 'r14-h-kolkata') AS hk \gset
RESET TimeZone;
RESET bytea_output;
RESET extra_float_digits;
RESET IntervalStyle;
RESET DateStyle;
SELECT is((SELECT new_row - 'id' FROM wallet.audit_log WHERE relation = 'public.r14_vals' AND new_row ->> 'id' = '2'),
          (SELECT new_row - 'id' FROM wallet.audit_log WHERE relation = 'public.r14_vals' AND new_row ->> 'id' = '1'),
          'the same values audited under other TimeZone, bytea_output, extra_float_digits, IntervalStyle and DateStyle: the same record');
SELECT is((SELECT new_row ->> 'f' FROM wallet.audit_log WHERE relation = 'public.r14_vals' AND new_row ->> 'id' = '2'),
          '0.30000000000000004', '... floats in their shortest exact form');
SELECT is((SELECT new_row ->> 't' FROM wallet.audit_log WHERE relation = 'public.r14_vals' AND new_row ->> 'id' = '2'),
          '2026-11-30T12:00:00+00:00', '... times in UTC');
SELECT ok((SELECT new_row ->> 'created_at' FROM wallet.audit_log WHERE relation = 'wallet.account'
            AND (new_row ->> 'id')::bigint = :kol) LIKE '%+00:00'
          AND (SELECT new_row ->> 'request_hash' FROM wallet.audit_log WHERE relation = 'wallet.hold'
                AND (new_row ->> 'id')::bigint = :hk) LIKE '\\x%',
          'the records open_account and hold write themselves: UTC times, hex bytea');

-- ------------- 4. a malformed head is an input error
SELECT throws_ok($$SELECT * FROM wallet.audit_verify('')$$, '22023', NULL, 'audit_verify(''''): 22023, not a verdict');
SELECT throws_ok($$SELECT * FROM wallet.audit_verify('xyz')$$, '22023', NULL, 'audit_verify(''xyz''): 22023');
SELECT is((SELECT ok FROM wallet.audit_verify(upper(:'head')) WHERE check_name = 'known_head'), true,
          'a head in upper-case hex is the same head');

SELECT * FROM finish();
ROLLBACK;
