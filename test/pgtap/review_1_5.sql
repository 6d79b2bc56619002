-- test/pgtap/review_1_5.sql — what a bad-input sweep of every function of
-- 1.4.0 found, fixed in 1.5.0 (the install script) or in its library (each
-- section fails on the build before it):
--   1. the live flows took the platform's system accounts as their user,
--      viewer or creator (a recharge of coin_issuance credited nobody, a
--      gift from it minted coins), and close_account() closed them;
--   2. seal_range() and index_history_range() took horizons past the last
--      id drawn, and broke the chain and the history for good;
--   3. post_system() linked a reversal to no transaction;
--   4. grant_app()/grant_reader() of a number naming no role failed with a
--      syntax error in the SQL they generate;
--   5. a trigger function called directly was an internal error (XX000);
--   6. post() and allocate() flattened multidimensional arrays, and
--      transfer_batch() paired rows of arrays with different subscripts;
--   7. fold_hot(id) of an unknown account returned 0;
--   8. 64-bit overflow DETAILs did not give the total reached.
--
-- Runs in one transaction and rolls everything back.
BEGIN;
SELECT plan(42);

LOCK TABLE wallet.audit_seal IN SHARE ROW EXCLUSIVE MODE;
SET LOCAL client_min_messages = warning;

-- the SQLSTATE and DETAIL an SQL statement fails with ('' when it does not)
CREATE FUNCTION pg_temp.failure(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    d text;
BEGIN
    EXECUTE sql;
    RETURN '';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, d = PG_EXCEPTION_DETAIL;
    RETURN st || ': ' || d;
END
$$;

SELECT (wallet.live_setup()).* \gset cfg_
SELECT wallet.open_account('r15-viewer', :'cfg_coin_currency') AS viewer \gset
SELECT wallet.open_account('r15-creator', :'cfg_diamond_currency') AS creator \gset
SELECT wallet.recharge(:viewer, wallet.amount(100, :'cfg_coin_currency'), '0.99 USD', 'r15', 'order-1') AS recharge \gset
SELECT (lc.cash_accounts -> 'USD' ->> 'cash')::bigint AS cash_usd FROM wallet.live_config lc \gset

-- 1. system accounts of the live flows
SELECT throws_ok(format($$SELECT wallet.recharge(%s, wallet.amount(5, %L), '0.50 USD', 'r15', 'order-x')$$,
                        :cfg_coin_issuance, :'cfg_coin_currency'),
                 '22023', format('account %s is the platform''s coin_issuance account, not a user', :cfg_coin_issuance),
                 'recharge of coin_issuance: 22023');
SELECT throws_ok(format($$SELECT wallet.gift(%s, %s, wallet.amount(2, %L), 'r15-g1')$$,
                        :cfg_coin_issuance, :creator, :'cfg_coin_currency'),
                 '22023', format('account %s is the platform''s coin_issuance account, not a viewer', :cfg_coin_issuance),
                 'gift from coin_issuance: 22023 (it would mint coins)');
SELECT throws_ok(format($$SELECT wallet.gift(%s, %s, wallet.amount(2, %L), 'r15-g2')$$,
                        :cfg_coin_revenue, :creator, :'cfg_coin_currency'),
                 '22023', NULL, 'gift from coin_revenue: 22023');
SELECT throws_ok(format($$SELECT wallet.gift(%s, %s, wallet.amount(2, %L), 'r15-g3')$$,
                        :viewer, :cfg_diamond_issuance, :'cfg_coin_currency'),
                 '22023', format('account %s is the platform''s diamond_issuance account, not a creator', :cfg_diamond_issuance),
                 'gift to diamond_issuance: 22023');
SELECT throws_ok(format($$SELECT wallet.gift(%s, %s, wallet.amount(2, %L), 'r15-g4')$$,
                        :viewer, :cfg_payout_clearing, :'cfg_coin_currency'),
                 '22023', NULL, 'gift to payout_clearing: 22023');
SELECT throws_ok(format($$SELECT wallet.request_withdrawal(%s, wallet.amount(1, %L), 'r15-w1')$$,
                        :cfg_diamond_issuance, :'cfg_diamond_currency'),
                 '22023', format('account %s is the platform''s diamond_issuance account, not a creator', :cfg_diamond_issuance),
                 'withdrawal from diamond_issuance: 22023');
SELECT throws_ok(format('SELECT wallet.close_account(%s)', :cfg_payout_clearing),
                 '22023', format('account %s is the platform''s payout_clearing account and cannot be closed', :cfg_payout_clearing),
                 'close_account(payout_clearing) at zero balance: 22023');
SELECT throws_ok(format('SELECT wallet.close_account(%s)', :cash_usd),
                 '22023', format('account %s is the platform''s cash:USD account and cannot be closed', :cash_usd),
                 'close_account of a cash account: 22023');
SELECT is((SELECT status FROM wallet.account WHERE id = :cfg_payout_clearing), 'active', 'payout_clearing is still active');
SELECT lives_ok(format('SELECT wallet.freeze_account(%s)', :cfg_coin_issuance), 'freezing coin_issuance is allowed (pauses recharges)');
SELECT throws_ok(format($$SELECT wallet.recharge(%s, wallet.amount(5, %L), '0.50 USD', 'r15', 'order-2')$$,
                        :viewer, :'cfg_coin_currency'),
                 'WL004', NULL, '... and a recharge then waits for the unfreeze (WL004)');
SELECT lives_ok(format('SELECT wallet.unfreeze_account(%s)', :cfg_coin_issuance), 'unfreeze coin_issuance');
SELECT ok(wallet.gift(:viewer, :creator, wallet.amount(10, :'cfg_coin_currency'), 'r15-gift') > 0,
          'a gift between a viewer and a creator still posts');
SELECT ok(wallet.recharge(:viewer, wallet.amount(5, :'cfg_coin_currency'), '0.50 USD', 'r15', 'order-2') > 0,
          'a recharge of a user still posts');
SELECT ok(wallet.request_withdrawal(:creator, wallet.amount(1, :'cfg_diamond_currency'), 'r15-w2') > 0,
          'a withdrawal of a creator still holds');
SELECT throws_ok(format($$SELECT wallet.recharge(%s, wallet.amount(5, %L), '0.50 USD', 'r15', 'order-c')$$,
                        :cash_usd, :'cfg_coin_currency'),
                 '22023', format('account %s is the platform''s cash:USD account, not a user', :cash_usd),
                 'recharge of a cash account: 22023');
-- a user's debt account (opened by refund_recharge, kind debt, may go
-- negative) is the platform's too: a gift from it minted coins (the
-- viewer spent 10 of the 100 coins of the first recharge: its refund
-- leaves a debt)
SELECT wallet.refund_recharge(:recharge, 'chargeback') > 0 AS refunded \gset
SELECT debt_account AS debt FROM wallet.account WHERE id = :viewer \gset
SELECT throws_ok(format($$SELECT wallet.gift(%s, %s, wallet.amount(5000, %L), 'r15-debt-gift')$$,
                        :debt, :creator, :'cfg_coin_currency'),
                 '22023', format('account %s is a debt account, not a viewer', :debt),
                 'gift from a debt account: 22023');
SELECT throws_ok(format($$SELECT wallet.recharge(%s, wallet.amount(5, %L), '0.50 USD', 'r15', 'order-d')$$,
                        :debt, :'cfg_coin_currency'),
                 '22023', NULL, 'recharge of a debt account: 22023');
SELECT wallet.recharge(:viewer, wallet.amount(500, :'cfg_coin_currency'), '4.99 USD', 'r15', 'order-repay') > 0 AS repaid \gset
SELECT throws_ok(format('SELECT wallet.close_account(%s)', :debt), '22023',
                 format('account %s is the platform''s debt account and cannot be closed', :debt),
                 'close_account of a repaid debt account: 22023 (later chargebacks post to it)');
-- a withdrawal hold placed with wallet.hold() from diamond_issuance is not paid out
SELECT wallet.hold(:cfg_diamond_issuance, :cfg_payout_clearing, wallet.amount(777, :'cfg_diamond_currency'),
                   'r15-hw', NULL, 'withdrawal') AS hw \gset
SELECT throws_ok(format('SELECT wallet.complete_withdrawal(%s)', :hw), '22023',
                 format('account %s is the platform''s diamond_issuance account, not a creator', :cfg_diamond_issuance),
                 'complete_withdrawal of a hold from diamond_issuance: 22023');
SELECT lives_ok(format('SELECT wallet.cancel_withdrawal(%s)', :hw), '... it can be cancelled');

-- 2. horizons past the ids drawn
SELECT throws_ok('SELECT wallet.seal_range(9223372036854775807, 1)', '22023',
                 'wallet.seal_range: a horizon is beyond the last id drawn', 'seal_range past the last transaction id: 22023');
SELECT throws_ok('SELECT wallet.seal_range(1, 9223372036854775807)', '22023',
                 'wallet.seal_range: a horizon is beyond the last id drawn', 'seal_range past the last audit id: 22023');
SELECT throws_ok('SELECT wallet.index_history_range(9223372036854775807, 1000)', '22023',
                 'upto 9223372036854775807 is beyond the last transaction id drawn',
                 'index_history_range past the last transaction id: 22023');
SELECT is((SELECT count(*) FROM wallet.statement(:viewer, '-infinity', 'infinity')), 5::bigint,
          'the viewer''s statement has its five postings');

-- 3. a reversal of no transaction
SELECT throws_ok(format($$SELECT wallet.post_system('r15-ps', ARRAY[ROW(%s, wallet.amount(-1, %L)), ROW(%s, wallet.amount(1, %L))]::wallet.leg[], 'journal', NULL, -1)$$,
                        :viewer, :'cfg_coin_currency', :cfg_coin_revenue, :'cfg_coin_currency'),
                 'WL009', 'unknown transaction -1', 'post_system reversing no transaction: WL009');

-- 4. grants to a number that names no role
SELECT throws_ok('SELECT wallet.grant_app(0::regrole)', '42704', 'role with OID 0 does not exist', 'grant_app(0): 42704');
SELECT throws_ok('SELECT wallet.grant_reader(424242::regrole)', '42704', 'role with OID 424242 does not exist',
                 'grant_reader(an unused OID): 42704');

-- 5. trigger functions called directly
SELECT throws_ok('SELECT wallet.audit()', '39P01', 'wallet.audit() can only be called as a trigger', 'audit() called directly: 39P01');
SELECT throws_ok('SELECT wallet.forbid_change()', '39P01', 'wallet.forbid_change() can only be called as a trigger',
                 'forbid_change() called directly: 39P01');
SELECT throws_ok('SELECT wallet.currency_registry_changed()', '39P01', NULL, 'currency_registry_changed() called directly: 39P01');

-- 6. array shapes
SELECT throws_ok(format($$SELECT wallet.post('r15-md', ARRAY[ARRAY[ROW(%s, wallet.amount(-1, %L))::wallet.leg], ARRAY[ROW(%s, wallet.amount(1, %L))::wallet.leg]])$$,
                        :viewer, :'cfg_coin_currency', :cfg_coin_revenue, :'cfg_coin_currency'),
                 '22023', 'legs must be a one-dimensional array', 'post with a 2-D legs array: 22023');
SELECT throws_ok($$SELECT wallet.allocate('100 USD', '{{1,2},{3,4}}')$$, '22023',
                 'wallet.allocate: ratios must be a one-dimensional array', 'allocate with 2-D ratios: 22023');
SELECT wallet.open_account('r15-a', 'USD', 'user', true) AS a \gset
SELECT wallet.open_account('r15-b', 'USD') AS b \gset
SELECT throws_ok(format($$SELECT * FROM wallet.transfer_batch('[2:3]={%s,%s}', '{%s,%s}', '{"3 USD","4 USD"}', '{r15-lb1,r15-lb2}')$$,
                        :a, :b, :b, :a),
                 '22023', 'transfer_batch arrays must have the same subscripts', 'transfer_batch with different subscripts: 22023');
SELECT is((SELECT count(*) FROM wallet.txn WHERE idempotency_key LIKE 'r15-lb%'), 0::bigint, '... and posts nothing');
SELECT results_eq(format($$SELECT idx, status FROM wallet.transfer_batch('[5:6]={%s,%s}', '[5:6]={%s,%s}', '[5:6]={"3 USD","1 USD"}', '[5:6]={r15-lb3,r15-lb4}')$$,
                         :a, :b, :b, :a),
                  $$VALUES (1, 'ok'), (2, 'ok')$$,
                  'the same subscripts on every array: rows pair by position, idx counts from 1');
SELECT is(wallet.balance(:b), '2.00 USD'::wallet.amount, '... 3 USD from a to b, then 1 USD back');

-- 7. fold_hot of an unknown account
SELECT throws_ok('SELECT wallet.fold_hot(999999999999)', 'WL003', 'unknown account 999999999999', 'fold_hot(unknown id): WL003');
SELECT is(wallet.fold_hot(:b), 0::bigint, 'fold_hot of an account with nothing pending: 0');

-- 8. overflow DETAILs give the total
SELECT is(pg_temp.failure($$SELECT sum(x) FROM (VALUES ('92233720368547758.07 USD'::wallet.amount), ('0.01 USD')) v(x)$$),
          '22003: The USD amounts add up to 92233720368547758.08 USD, more than 64-bit minor units hold.',
          'sum overflow: the DETAIL gives the total');
SELECT is(pg_temp.failure(format($$SELECT wallet.post('r15-ov', ARRAY[ROW(%1$s, '92233720368547758.07 USD'), ROW(%1$s, '92233720368547758.07 USD'), ROW(%2$s, '-92233720368547758.07 USD'), ROW(%2$s, '-92233720368547758.07 USD')]::wallet.leg[])$$, :a, :b)),
          '22003: The account''s legs in this transaction add up to 184467440737095516.14 USD, more than 64-bit minor units hold.',
          'a post''s legs overflowing an account: the DETAIL gives the total');
SELECT is(pg_temp.failure(format($$SELECT * FROM wallet.transfer_batch(ARRAY[%1$s, %1$s], ARRAY[%2$s, %2$s], '{"92233720368547758.07 USD","0.01 USD"}', '{r15-bo1,r15-bo2}')$$, :a, :b)),
          format('22003: The batch''s rows move 92233720368547758.08 USD into account %s, more than 64-bit minor units hold.', :b),
          'a batch overflowing an account: the DETAIL gives the total');

SELECT * FROM finish();
ROLLBACK;
