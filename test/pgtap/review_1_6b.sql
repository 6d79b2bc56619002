-- test/pgtap/review_1_6b.sql — wallet 1.6.0, from two black-box reviews
-- (each section fails on the build before it):
--   1. a user who has coins and a debt at once (coins held when the
--      refund came, the hold voided since) could not pay the debt back
--      from those coins: a posting from the user to its own debt account
--      was refused as spending (WL001 "outstanding debt"), in
--      transfer/post and in transfer_batch alike.  It is now allowed when
--      everything the user gives goes to that debt account and the debt
--      account ends at or below zero; spending elsewhere is still refused;
--   2. live_report() named the platform's accounts by owner and kind, so
--      an account any role opened with kind 'system' and owner
--      'platform:coin_revenue' merged into the platform's line, and an
--      account allowed to go negative that paid coins out netted them
--      away in 'circulation' ('conserved ok' with the minted coins out of
--      sight).  The platform's lines now follow wallet.live_config, and
--      negative balances outside the flows have their own line;
--   3. close_account() of a hot account whose pending rows take the
--      balance past 64 bits failed with bigint's bare error (it added
--      wallet.pending_credits(), bigint); now WL012 with the figure;
--   4. a second reverse() of a transaction named no reversal in its
--      DETAIL (the refund path did): now the reversal's id.
--   5. (a review of 1-4) the repayment rule compared totals only, so a
--      posting with a third account could pay the debt with that
--      account's money while the user's coins went elsewhere; and a debt
--      account at zero took any credit (the generic API, or a repayment
--      that waited while a recharge repaid the debt), then held coins that
--      absorbed the next refund's shortfall.  A repayment now moves money
--      between the user and its debt account only, and no credit takes a
--      debt account above zero (22023; 'invalid_amount' in a batch);
--   6. (same review) fold_hot() summed a hot account's pending rows as
--      bigint: when their sum alone passed 64 bits (stored + pending
--      within them) every fold failed, and the housekeeping pass with it
--      (test/harness/worker.sh: a failing step no longer ends the pass);
--   7. (a review of 5-6) the debt rule took every account of kind 'debt'
--      for a user's debt account, also one opened by hand under 1.5.0; a
--      hold to a debt account could never be captured; housekeeping()
--      from cron lacked the worker's test for a ledger ahead of its
--      sequences;
--   8. (a review of the reading API) audit_trail matched a temporary
--      table's records by name, which PostgreSQL hands to the next
--      session in that temporary schema slot;
--   9. (a review of the audit) partitions' TRUNCATEs, inheritance
--      children and out-of-line values in changed_columns.
--
-- Runs in one transaction and rolls everything back.
BEGIN;
SELECT plan(53);
SET LOCAL client_min_messages = warning;

SELECT (wallet.live_setup()).* \gset cfg_
CREATE FUNCTION pg_temp.coins(n bigint) RETURNS wallet.amount LANGUAGE sql AS
  $$ SELECT wallet.amount(n, (SELECT coin_currency FROM wallet.live_config)) $$;
CREATE FUNCTION pg_temp.pos(owner_name text) RETURNS text LANGUAGE sql AS
  $$ SELECT string_agg(a.kind || ' ' || wallet.units(a.balance), ', ' ORDER BY a.kind DESC)
       FROM wallet.accounts a WHERE a.owner = owner_name $$;

-- 1. paying one's own debt back
SELECT wallet.open_account('rb-viewer', :'cfg_coin_currency') AS u \gset
SELECT wallet.open_account('rb-other', :'cfg_coin_currency') AS x \gset
SELECT wallet.recharge(:u, pg_temp.coins(100), '1.00 USD', 'rb', 'o1') AS r1 \gset
SELECT wallet.hold(:u, :x, pg_temp.coins(60), 'rb-h1') AS h1 \gset
SELECT lives_ok(format($$SELECT wallet.refund_recharge(%s, 'chargeback')$$, :r1),
                'a chargeback while 60 of the 100 coins are held');
SELECT lives_ok(format('SELECT wallet.void(%s)', :h1), 'the hold is voided');
SELECT is(pg_temp.pos('rb-viewer'), 'user 60, debt -60', 'the user has 60 coins and owes 60');
SELECT a.debt_account AS d FROM wallet.account a WHERE a.id = :u \gset
SELECT throws_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(1), 'rb-t1')$$, :u, :x), 'WL001',
                 format('account %s has an outstanding debt of 60 COIN', :u),
                 'spending elsewhere is refused while in debt');
SELECT throws_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(61), 'rb-t2')$$, :u, :d), '22023',
                 format('debt account %s would hold coins', :d),
                 'paying back more than the debt is refused (a debt account never holds coins)');
SELECT throws_ok(format($$SELECT wallet.post('rb-p1', ARRAY[(%s, pg_temp.coins(-10)), (%s, pg_temp.coins(5)), (%s, pg_temp.coins(5))]::wallet.leg[])$$,
                        :u, :d, :x), 'WL001', NULL,
                 'a posting that pays only part of what the user gives to the debt is refused');
SELECT wallet.open_account('rb-third', :'cfg_coin_currency') AS z \gset
SELECT wallet.recharge(:z, pg_temp.coins(50), '0.50 USD', 'rb', 'oz') \gset
SELECT throws_ok(format($$SELECT wallet.post('rb-p2', ARRAY[(%s, pg_temp.coins(-10)), (%s, pg_temp.coins(10)), (%s, pg_temp.coins(-10)), (%s, pg_temp.coins(10))]::wallet.leg[])$$,
                        :u, :x, :z, :d), 'WL001', NULL,
                 'a posting where a third account pays the debt while the user''s coins go elsewhere is refused');
SELECT lives_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(20), 'rb-t3')$$, :u, :d),
                'a transfer from the user to its own debt account pays 20 back');
SELECT is(pg_temp.pos('rb-viewer'), 'user 40, debt -40', 'user 40, debt 40');
SELECT is((SELECT string_agg(r.status, ', ' ORDER BY r.idx)
             FROM wallet.transfer_batch(ARRAY[:u, :u]::bigint[], ARRAY[:d, :x]::bigint[],
                                        ARRAY[pg_temp.coins(30), pg_temp.coins(1)], ARRAY['rb-b1', 'rb-b2']) r),
          'ok, insufficient_funds',
          'in a batch: the repayment posts, spending elsewhere is still refused');
SELECT is(pg_temp.pos('rb-viewer'), 'user 10, debt -10', 'user 10, debt 10');
SELECT is((SELECT string_agg(r.status, ', ' ORDER BY r.idx)
             FROM wallet.transfer_batch(ARRAY[:u]::bigint[], ARRAY[:d]::bigint[],
                                        ARRAY[pg_temp.coins(11)], ARRAY['rb-b3']) r),
          'invalid_amount', 'in a batch: paying back more than the debt is refused (invalid_amount, as 22023)');
SELECT lives_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(10), 'rb-t4')$$, :u, :d),
                'the last 10 are paid back');
SELECT is(pg_temp.pos('rb-viewer'), 'user 0, debt 0', 'debt repaid');
SELECT throws_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(1), 'rb-t7')$$, :z, :d), '22023',
                 format('debt account %s would hold coins', :d),
                 'a debt account at zero takes no credit: it never holds coins');
SELECT is((SELECT string_agg(r.status, ', ' ORDER BY r.idx)
             FROM wallet.transfer_batch(ARRAY[:z]::bigint[], ARRAY[:d]::bigint[],
                                        ARRAY[pg_temp.coins(1)], ARRAY['rb-b4']) r),
          'invalid_amount', 'in a batch: invalid_amount');
SELECT lives_ok(format($$SELECT wallet.recharge(%s, pg_temp.coins(5), '0.05 USD', 'rb', 'o2')$$, :u),
                'a new recharge');
SELECT lives_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(5), 'rb-t6')$$, :u, :x),
                'and the user spends again');

-- 2. the report follows the configuration; negative balances are shown
SELECT wallet.open_account('platform:coin_revenue', :'cfg_coin_currency', 'system', true) AS fake \gset
SELECT wallet.open_account('rb-holder', :'cfg_coin_currency') AS hd \gset
SELECT lives_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(1000000), 'rb-mint')$$, :fake, :hd),
                'an account allowed to go negative pays out a million coins');
SELECT is((SELECT value FROM wallet.live_report() WHERE section = 'accounts' AND item = 'balance platform:coin_revenue'),
          wallet.balance(:cfg_coin_revenue)::text,
          'the platform''s coin_revenue line is the configured account''s balance, not merged with a look-alike');
SELECT is((SELECT value FROM wallet.live_report() WHERE section = 'accounts'
              AND item = 'balance system ' || :'cfg_coin_currency'),
          '-1000000 COIN (1 accounts)', 'the look-alike is counted with the other accounts of its kind');
SELECT is((SELECT units FROM wallet.live_report() WHERE section = 'coins' AND item = 'negative balances'),
          -1000000::bigint, 'coins: the negative balance outside the flows has its own line');
SELECT is((SELECT units FROM wallet.live_report() WHERE section = 'coins' AND item = 'circulation'),
          (SELECT sum(wallet.units(a.balance))::bigint FROM wallet.accounts a
            WHERE a.currency = :'cfg_coin_currency' AND a.kind NOT IN ('debt') AND wallet.units(a.balance) > 0
              AND a.id NOT IN (:cfg_coin_issuance, :cfg_coin_revenue)),
          'circulation is what accounts outside the flows hold, the million included');
SELECT is((SELECT value FROM wallet.live_report() WHERE section = 'coins' AND item = 'conserved'), 'ok',
          'and the coins are conserved: issued = circulation + negative balances + revenue - debt');

-- 3. close_account past 64 bits
SELECT wallet.open_account('rb-hotneg', :'cfg_coin_currency', 'user', true) AS hn \gset
SELECT wallet.open_account('rb-hs', :'cfg_coin_currency') AS hs \gset
SELECT wallet.open_account('rb-hs2', :'cfg_coin_currency') AS hs2 \gset
SELECT wallet.set_hot(:hn) \gset
SELECT wallet.transfer(:hn, :hs, pg_temp.coins(9000000000000000000), 'rb-hn1') \gset
SELECT wallet.transfer(:hn, :hs2, pg_temp.coins(9000000000000000000), 'rb-hn2') \gset
SELECT throws_ok(format('SELECT wallet.close_account(%s)', :hn), 'WL012',
                 format('account %s cannot be closed: balance is -18000000000000000000 minor units of COIN', :hn),
                 'close_account past 64 bits: WL012 with the figure, not bigint''s bare error');
-- back within 64 bits (verify() reports a balance past them)
SELECT wallet.transfer(:hs2, :hn, pg_temp.coins(9000000000000000000), 'rb-hn3') \gset

-- 6. a fold whose pending rows alone pass 64 bits
SELECT wallet.add_currency('RBT', 18, 'review token') \gset
SELECT wallet.open_account('rb-issuer', 'RBT', 'system', true) AS ti \gset
SELECT wallet.open_account('rb-tk1', 'RBT') AS tk1 \gset
SELECT wallet.open_account('rb-tk2', 'RBT') AS tk2 \gset
SELECT wallet.set_hot(:ti) \gset
SELECT wallet.transfer(:ti, :tk1, '5 RBT', 'rb-tk1') \gset
SELECT wallet.transfer(:ti, :tk2, '5 RBT', 'rb-tk2') \gset
-- a credit this large takes the row lock and goes to the stored balance
SELECT wallet.transfer(:tk1, :ti, '1 RBT', 'rb-tk3') \gset
SELECT is((SELECT sum(amount)::text FROM wallet.hot_pending WHERE account_id = :ti), '-10000000000000000000',
          'the pending rows alone pass 64 bits');
SELECT lives_ok('SELECT wallet.fold_hot()', 'fold_hot() folds them: stored + pending fits');
SELECT is(wallet.balance(:ti)::text, '-9.000000000000000000 RBT', 'the posted balance is exact after the fold');
SELECT is((SELECT count(*)::int FROM wallet.hot_pending WHERE account_id = :ti), 0, 'nothing left pending');

-- 7. (a review of 8fde132) a user's debt account is kind 'debt' with its
-- user in metadata (debt_of): an account of kind 'debt' opened by hand
-- under an older version takes credits as before; a debt account is
-- never a hold's destination (its capture would be refused, the funds
-- reserved until a void); housekeeping() skips a ledger ahead of its
-- sequences, as the worker does
SELECT wallet.open_account('rb-legacy', :'cfg_coin_currency') AS lg \gset
UPDATE wallet.account SET kind = 'debt' WHERE id = :lg;
SELECT lives_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(1), 'rb-lg1')$$, :z, :lg),
                'an account of kind debt with no debt_of (opened by hand before 1.6.0) takes a credit above zero');
-- one definition (LEDGER_DEBT_USER_SQL): debt_of must name a user, as a
-- JSON number or a string of digits; the posting rules (C) and the hold
-- rule (SQL) agree on both forms
UPDATE wallet.account SET metadata = '{"debt_of": "nobody"}' WHERE id = :lg;
SELECT lives_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(1), 'rb-lg2')$$, :z, :lg),
                'a debt_of that names no user: an ordinary account, it takes a credit above zero');
SELECT lives_ok(format($$SELECT wallet.hold(%s, %s, pg_temp.coins(1), 'rb-lg3')$$, :z, :lg),
                'and it may be a hold''s destination');
UPDATE wallet.account SET metadata = jsonb_build_object('debt_of', :z::text) WHERE id = :lg;
SELECT throws_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(1), 'rb-lg4')$$, :z, :lg), '22023', NULL,
                 'a debt_of of digits in a JSON string: a debt account, no credit above zero (C rule)');
SELECT throws_ok(format($$SELECT wallet.hold(%s, %s, pg_temp.coins(1), 'rb-lg5')$$, :z, :lg), '22023', NULL,
                 'and no hold''s destination (SQL rule)');
-- a user id of 19 digits (a shard's ids pass 10^18 from shard 3553 on) is
-- one, past int64's maximum it names no user (a review of the first rule,
-- which took 1 to 18 digits)
UPDATE wallet.account SET metadata = '{"debt_of": 1125899906842624005}' WHERE id = :lg;
SELECT throws_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(1), 'rb-lg6')$$, :z, :lg), '22023', NULL,
                 'a debt_of of 19 digits: a debt account (C rule)');
SELECT throws_ok(format($$SELECT wallet.hold(%s, %s, pg_temp.coins(1), 'rb-lg7')$$, :z, :lg), '22023', NULL,
                 'and no hold''s destination (SQL rule)');
UPDATE wallet.account SET metadata = '{"debt_of": "9223372036854775808"}' WHERE id = :lg;
SELECT lives_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(1), 'rb-lg8')$$, :z, :lg),
                'a debt_of past int64''s maximum names no user: an ordinary account (C rule)');
SELECT lives_ok(format($$SELECT wallet.hold(%s, %s, pg_temp.coins(1), 'rb-lg9')$$, :z, :lg),
                'and a hold''s destination (SQL rule)');
SELECT throws_ok(format($$SELECT wallet.hold(%s, %s, pg_temp.coins(1), 'rb-hd1')$$, :z, :d), '22023',
                 format('account %s is a debt account, not a hold''s destination', :d),
                 'a hold to a user''s debt account is refused');
SELECT last_value AS seq_last, is_called AS seq_called FROM wallet.audit_log_id_seq \gset
SELECT setval('wallet.audit_log_id_seq', 1, false) \gset
SELECT is(wallet.housekeeping(), '{"skipped": "ledger ahead of its sequences"}'::jsonb,
          'housekeeping() does nothing while a table is ahead of its sequence (a restore between COPY and setval)');
SELECT setval('wallet.audit_log_id_seq', :seq_last, :'seq_called'::boolean) \gset
SELECT ok(wallet.ledger_settled(), 'and the ledger is settled again once the sequence is back');

-- 8. (a review of the reading API) a temporary table's audit records do
-- not follow its name: the next table of that name in the same temporary
-- schema (pg_temp_N, handed to the next session in the slot) is another
-- role's
CREATE TEMP TABLE rb_card (pan text);
SELECT wallet.audit_table('rb_card'::regclass) \gset
INSERT INTO rb_card VALUES ('4111-1111-1111-1111');
SELECT is((SELECT count(*)::int FROM wallet.audit_log WHERE relation = pg_my_temp_schema()::regnamespace::text || '.rb_card'), 1,
          'a temporary table''s change is recorded');
DROP TABLE rb_card;
CREATE ROLE rb_reader;
SELECT wallet.grant_reader('rb_reader') \gset
SET LOCAL ROLE rb_reader;
CREATE TEMP TABLE rb_card (x int);
SELECT is((SELECT count(*)::int FROM wallet.audit_trail WHERE new_row ? 'pan'), 0,
          'a reader who creates a table of the same name in that temporary schema does not see the record');
RESET ROLE;

-- 4. the second reversal names the first
SELECT wallet.transfer(:hs, :x, pg_temp.coins(3), 'rb-rv-t') AS rt \gset
SELECT wallet.reverse(:rt, 'rb-rv-1') AS rv \gset
SELECT throws_ok(format($$SELECT wallet.reverse(%s, 'rb-rv-2')$$, :rt), 'WL010', NULL, 'a second reversal: WL010');
CREATE FUNCTION pg_temp.detail(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN d;
END $$;
SELECT is(pg_temp.detail(format($$SELECT wallet.reverse(%s, 'rb-rv-2')$$, :rt)),
          format('Transaction %s reversed it; a transaction is reversed at most once.', :rv),
          'its DETAIL names the reversal');

-- 9. (a review of the audit) audit_table() on a parent: a TRUNCATE of one
-- partition (PostgreSQL clones the row trigger only) and a change to an
-- inheritance child's rows went unrecorded; changed_columns named a column
-- rewritten with the same out-of-line value (TOAST pointers compared)
CREATE TABLE rb_part (k int, v text) PARTITION BY RANGE (k);
CREATE TABLE rb_part1 PARTITION OF rb_part FOR VALUES FROM (0) TO (10);
CREATE TABLE rb_par (k int, v text);
CREATE TABLE rb_chi (extra int) INHERITS (rb_par);
SELECT wallet.audit_table('rb_part') \gset
SELECT wallet.audit_table('rb_par') \gset
INSERT INTO rb_part VALUES (1, 'a');
TRUNCATE rb_part1;
SELECT is((SELECT array_agg(operation ORDER BY id) FROM wallet.audit_log WHERE relation = 'public.rb_part1'),
          ARRAY['INSERT', 'TRUNCATE'], 'a TRUNCATE of one partition of an audited parent is recorded');
INSERT INTO rb_chi VALUES (1, 'x', 9);
UPDATE rb_par SET v = 'y';
DELETE FROM rb_par;
SELECT is((SELECT array_agg(operation ORDER BY id) FROM wallet.audit_log WHERE relation = 'public.rb_chi'),
          ARRAY['INSERT', 'UPDATE', 'DELETE'], 'an inheritance child''s rows changed through the audited parent are recorded');
CREATE TABLE rb_part2 PARTITION OF rb_part FOR VALUES FROM (10) TO (20);
SELECT wallet.audit_table('rb_part') \gset
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'rb_part2'::regclass AND tgname LIKE 'wallet_audit%'), 2,
          'audit_table() again adds the TRUNCATE trigger to a partition added since, and no second row trigger');
CREATE TABLE rb_big (id int PRIMARY KEY, t text, n int);
ALTER TABLE rb_big ALTER COLUMN t SET STORAGE EXTERNAL;
SELECT wallet.audit_table('rb_big') \gset
INSERT INTO rb_big VALUES (1, repeat('x', 3000), 0);
UPDATE rb_big SET t = t || '', n = 1;
SELECT is((SELECT changed_columns FROM wallet.audit_log WHERE relation = 'public.rb_big' AND operation = 'UPDATE'),
          ARRAY['n'], 'a long value rewritten unchanged is not a changed column');
-- a child the caller may not add triggers to is left out with a WARNING;
-- the parent is still audited (a review of the first version, which failed
-- as a whole)
CREATE ROLE rb_alice;
CREATE ROLE rb_bob;
CREATE SCHEMA rb_s AUTHORIZATION rb_alice;
GRANT EXECUTE ON FUNCTION wallet.audit_table(regclass) TO rb_alice;
SET LOCAL ROLE rb_alice;
CREATE TABLE rb_s.ip (id int, t text);
CREATE TABLE rb_s.ic () INHERITS (rb_s.ip);
RESET ROLE;
ALTER TABLE rb_s.ic OWNER TO rb_bob;
SET LOCAL ROLE rb_alice;
SELECT lives_ok($$SELECT wallet.audit_table('rb_s.ip')$$, 'audit_table() of a parent with a child of another owner succeeds');
RESET ROLE;
SELECT is((SELECT array_agg(tgrelid::regclass::text ORDER BY tgrelid::regclass::text) FROM pg_trigger
            WHERE tgname = 'wallet_audit' AND tgrelid IN ('rb_s.ip'::regclass, 'rb_s.ic'::regclass)),
          ARRAY['rb_s.ip'], 'the parent is audited, the child it may not touch is left out');
-- messages cut long input at 64 characters (not bytes)
CREATE FUNCTION pg_temp.msg(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN NULL; EXCEPTION WHEN OTHERS THEN RETURN SQLERRM; END $$;
SELECT is(length(substring(pg_temp.msg($$SELECT wallet.add_currency(repeat(U&'\00E9', 100), 0, 'x')$$) FROM '"(.*)"')), 64,
          'a long currency code of two-byte characters is shown as 64 characters');

SELECT is((SELECT string_agg(check_name || ': ' || detail, '; ') FROM wallet.verify() WHERE NOT ok), NULL, 'verify() all ok');

SELECT * FROM finish();
ROLLBACK;
