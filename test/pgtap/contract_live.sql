-- test/pgtap/contract_live.sql — SPEC.md "Live-streaming flows", item by
-- item: live_setup (units, system accounts, safe to call again), recharge
-- (idempotent per store order), gift (floor(coins x creator_share)
-- diamonds, one balanced transaction), withdrawals (request / complete /
-- cancel), refund_recharge (claws back even spent coins, the debt is
-- recorded), and conservation of coins and diamonds throughout.  Runs in
-- one transaction and rolls back.
BEGIN;
SELECT plan(74);

SET LOCAL client_min_messages = warning;

\ir include/helpers.sql
CREATE FUNCTION pg_temp.units(id bigint) RETURNS bigint LANGUAGE sql AS $$ SELECT wallet.units(wallet.balance(id)) $$;
CREATE FUNCTION pg_temp.avail(id bigint) RETURNS bigint LANGUAGE sql AS $$ SELECT wallet.units(wallet.available(id)) $$;
-- sum of every balance in a currency (hot pending credits included): 0 when conserved
CREATE FUNCTION pg_temp.total(cur text) RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce(sum(wallet.units(balance)), 0)::bigint FROM wallet.accounts WHERE currency = cur
$$;
CREATE FUNCTION pg_temp.ntx() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM wallet.transactions $$;

-- ============================================================ live_setup

SELECT count(*) AS accounts0 FROM wallet.account \gset
SELECT c.coin_currency AS coin_cur, c.diamond_currency AS dia_cur, c.coin_issuance AS issuance, c.coin_revenue AS revenue,
       c.diamond_issuance AS d_issuance, c.payout_clearing AS payout
  FROM wallet.live_setup('COIN', 'DIAMOND', 0.5) c \gset
SELECT count(*) AS accounts1 FROM wallet.account \gset
SELECT is((:'coin_cur', :'dia_cur')::text, ('COIN', 'DIAMOND')::text, 'live_setup: COIN and DIAMOND');
SELECT is((SELECT array_agg(minor_units ORDER BY code) FROM wallet.currencies WHERE code IN ('COIN', 'DIAMOND')), ARRAY[0, 0],
          'live_setup: both units exist with 0 decimals');
SELECT is((SELECT array_agg(DISTINCT currency ORDER BY currency) FROM wallet.accounts WHERE id IN (:issuance, :revenue, :d_issuance, :payout)),
          ARRAY['COIN', 'DIAMOND'], 'live_setup: the system accounts are in the two units');
SELECT is((SELECT count(DISTINCT x) FROM unnest(ARRAY[:issuance, :revenue, :d_issuance, :payout]::bigint[]) x), 4::bigint,
          'live_setup: four distinct system accounts');
SELECT lives_ok($$SELECT wallet.live_setup()$$, 'live_setup is safe to call again');
SELECT lives_ok($$SELECT wallet.live_setup('coin', 'diamond', 0.5)$$, '... also with the same units spelled in lower case');
SELECT is((SELECT count(*) FROM wallet.account), :accounts1::bigint, 'calling it again opens no account');
SELECT is((SELECT coin_revenue FROM wallet.live_setup()), :revenue::bigint, 'and returns the same system accounts');
SELECT is(pg_temp.state($$SELECT wallet.live_setup(creator_share => 1.5)$$), '22023', 'creator_share above 1: 22023');

SELECT wallet.open_account('cl-viewer', 'COIN') AS viewer \gset
SELECT wallet.open_account('cl-viewer2', 'COIN') AS viewer2 \gset
SELECT wallet.open_account('cl-creator', 'DIAMOND') AS creator \gset

-- ============================================================ recharge

SELECT wallet.recharge(:viewer, '100 COIN', '0.99 USD', 'appstore', 'cl-order-1') AS rc1 \gset
SELECT is(pg_temp.units(:viewer), 100::bigint, 'recharge: the user gets the coins');
SELECT is(pg_temp.total('COIN'), 0::bigint, 'recharge: coins are issued from the platform (COIN sums to zero)');
SELECT is(pg_temp.total('USD'), 0::bigint, 'recharge: the money paid balances too');
SELECT pg_temp.ntx() AS ntx1 \gset
SELECT is(wallet.recharge(:viewer, '100 COIN', '0.99 USD', 'appstore', 'cl-order-1'), :rc1::bigint,
          'recharge repeated (same order): the first transaction');
SELECT is((pg_temp.ntx(), pg_temp.units(:viewer))::text, (:ntx1::bigint, 100::bigint)::text, '... and nothing posted');
SELECT is(pg_temp.state(format($$SELECT wallet.recharge(%s, '200 COIN', '0.99 USD', 'appstore', 'cl-order-1')$$, :viewer)), 'WL006',
          'the same order with other coins: WL006');
SELECT is(pg_temp.state(format($$SELECT wallet.recharge(%s, '100 COIN', '1.99 USD', 'appstore', 'cl-order-1')$$, :viewer)), 'WL006',
          'the same order with another price: WL006');
SELECT is(pg_temp.state(format($$SELECT wallet.recharge(%s, '100 COIN', '0.99 USD', 'appstore', 'cl-order-1')$$, :viewer2)), 'WL006',
          'the same order for another user: WL006');
SELECT is(pg_temp.state(format($$SELECT wallet.recharge(%s, '0 COIN', '0.99 USD', 'appstore', 'cl-order-2')$$, :viewer)), '22023',
          'recharge of zero coins: 22023');
SELECT is(pg_temp.state(format($$SELECT wallet.recharge(%s, '10 DIAMOND', '0.99 USD', 'appstore', 'cl-order-2')$$, :viewer)), 'WL002',
          'recharge in another unit than coins: WL002');
SELECT is(pg_temp.state(format($$SELECT wallet.recharge(%s, '10 COIN', '0.99 USD', 'appstore', 'cl-order-2')$$, :creator)), 'WL002',
          'recharge of a diamond account: WL002');
SELECT is(pg_temp.state($$SELECT wallet.recharge(-42, '10 COIN', '0.99 USD', 'appstore', 'cl-order-2')$$), 'WL003',
          'recharge of an unknown account: WL003');
SELECT is(pg_temp.state(format($$SELECT wallet.recharge(%s, '10 COIN', '0.99 USD', 'appstore', NULL)$$, :viewer)), '22004',
          'recharge without an order id: 22004');
SELECT wallet.recharge(:viewer2, '50 COIN', '45 JPY', 'web', 'cl-order-3') AS rc3 \gset
SELECT is(pg_temp.units(:viewer2), 50::bigint, 'a recharge paid in another currency');
SELECT is(pg_temp.total('JPY'), 0::bigint, '... balances in that currency too');

-- ============================================================ gift

SELECT wallet.gift(:viewer, :creator, '7 COIN', 'cl-gift-1') AS g1 \gset
SELECT is(pg_temp.units(:viewer), 93::bigint, 'gift: the coins leave the viewer');
SELECT is(pg_temp.units(:creator), 3::bigint, 'gift: the creator receives floor(7 x 0.5) = 3 diamonds');
SELECT is((SELECT sum(wallet.units(amount)) FROM wallet.entries WHERE txn_id = :g1 AND account_id = :revenue), 7::numeric,
          'gift: the platform''s revenue takes the coins');
SELECT is((SELECT sum(wallet.units(amount)) FROM wallet.entries WHERE txn_id = :g1 AND account_id = :d_issuance), -3::numeric,
          'gift: the diamonds come from the diamond issuance account');
SELECT is((SELECT array_agg(s ORDER BY c) FROM (SELECT wallet.currency(amount) AS c, sum(wallet.units(amount)) AS s
                                                    FROM wallet.entries WHERE txn_id = :g1 GROUP BY 1) x), ARRAY[0, 0]::numeric[],
          'gift: one transaction, balanced in coins and in diamonds');
SELECT is((pg_temp.total('COIN'), pg_temp.total('DIAMOND'))::text, (0::bigint, 0::bigint)::text, 'coins and diamonds are conserved');
SELECT pg_temp.ntx() AS ntx2 \gset
SELECT is(wallet.gift(:viewer, :creator, '7 COIN', 'cl-gift-1'), :g1::bigint, 'gift: a retry returns the first transaction');
SELECT is((pg_temp.ntx(), pg_temp.units(:viewer), pg_temp.units(:creator))::text, (:ntx2::bigint, 93::bigint, 3::bigint)::text,
          '... and posts nothing');
SELECT is(pg_temp.state(format($$SELECT wallet.gift(%s, %s, '8 COIN', 'cl-gift-1')$$, :viewer, :creator)), 'WL006',
          'gift: the same key for another gift: WL006');
SELECT wallet.gift(:viewer, :creator, '1 COIN', 'cl-gift-2') AS g2 \gset
SELECT is((pg_temp.units(:viewer), pg_temp.units(:creator))::text, (92::bigint, 3::bigint)::text,
          'gift of 1 coin at 0.5: floor(0.5) = 0 diamonds, the platform keeps the coin');
SELECT wallet.gift(:viewer, :creator, '9 COIN', 'cl-gift-3') AS g3 \gset
SELECT is(pg_temp.units(:creator), 7::bigint, 'gift of 9 coins: floor(4.5) = 4 diamonds');
SELECT is(pg_temp.state(format($$SELECT wallet.gift(%s, %s, '84 COIN', 'cl-gift-4')$$, :viewer, :creator)), 'WL001',
          'a gift beyond the viewer''s coins: WL001');
SELECT is(pg_temp.state(format($$SELECT wallet.gift(%s, %s, '0 COIN', 'cl-gift-4')$$, :viewer, :creator)), '22023', 'a gift of zero: 22023');
SELECT is(pg_temp.state(format($$SELECT wallet.gift(%s, %s, '1 DIAMOND', 'cl-gift-4')$$, :viewer, :creator)), 'WL002',
          'a gift in diamonds: WL002');
SELECT wallet.live_setup(creator_share => 0.7) IS NULL AS ignored \gset
SELECT wallet.gift(:viewer, :creator, '9 COIN', 'cl-gift-5') AS g5 \gset
SELECT is(pg_temp.units(:creator), 13::bigint, 'after live_setup(creator_share => 0.7): 9 coins give floor(6.3) = 6 diamonds');
SELECT is(wallet.gift(:viewer, :creator, '9 COIN', 'cl-gift-3'), :g3::bigint, 'a retry of an older gift still returns it');
SELECT wallet.live_setup(creator_share => 1) IS NULL AS ignored \gset
SELECT wallet.gift(:viewer, :creator, '3 COIN', 'cl-gift-6') AS g6 \gset
SELECT is(pg_temp.units(:creator), 16::bigint, 'creator_share 1: every coin becomes a diamond');
SELECT wallet.live_setup(creator_share => 0.5) IS NULL AS ignored \gset
SELECT is((pg_temp.total('COIN'), pg_temp.total('DIAMOND'))::text, (0::bigint, 0::bigint)::text, 'still conserved');

-- ============================================================ withdrawals

SELECT wallet.request_withdrawal(:creator, '10 DIAMOND', 'cl-wd-1') AS w1 \gset
SELECT is((pg_temp.units(:creator), pg_temp.avail(:creator))::text, (16::bigint, 6::bigint)::text,
          'request_withdrawal holds the diamonds: available drops, balance does not');
SELECT is(wallet.request_withdrawal(:creator, '10 DIAMOND', 'cl-wd-1'), :w1::bigint, 'request_withdrawal: a retry returns the same hold');
SELECT is(pg_temp.state(format($$SELECT wallet.request_withdrawal(%s, '7 DIAMOND', 'cl-wd-2')$$, :creator)), 'WL001',
          'withdrawing more than available: WL001');
SELECT wallet.complete_withdrawal(:w1) AS cw1 \gset
SELECT is((pg_temp.units(:creator), pg_temp.avail(:creator), pg_temp.units(:payout))::text, (6::bigint, 6::bigint, 10::bigint)::text,
          'complete_withdrawal pays the diamonds to the payout clearing account');
SELECT is(pg_typeof(:cw1::bigint)::text, 'bigint', 'complete_withdrawal returns the transaction id');
SELECT is(pg_temp.state(format('SELECT wallet.cancel_withdrawal(%s)', :w1)), 'WL008', 'a completed withdrawal cannot be cancelled');
SELECT wallet.request_withdrawal(:creator, '4 DIAMOND', 'cl-wd-3') AS w3 \gset
SELECT wallet.cancel_withdrawal(:w3) IS NULL AS ignored \gset
SELECT is((pg_temp.units(:creator), pg_temp.avail(:creator))::text, (6::bigint, 6::bigint)::text, 'cancel_withdrawal releases the diamonds');
SELECT is(pg_temp.state(format('SELECT wallet.complete_withdrawal(%s)', :w3)), 'WL008', 'a cancelled withdrawal cannot be completed');
SELECT is(pg_temp.total('DIAMOND'), 0::bigint, 'diamonds conserved through withdrawals');

-- ============================================================ refund_recharge

-- coins still on the account: taken back
SELECT wallet.recharge(:viewer2, '30 COIN', '0.30 USD', 'appstore', 'cl-order-4') AS rc4 \gset
SELECT is(pg_temp.units(:viewer2), 80::bigint, 'viewer2 has 50 + 30 coins');
SELECT wallet.refund_recharge(:rc4, 'refund') AS rf4 \gset
SELECT is(pg_temp.units(:viewer2), 50::bigint, 'refund_recharge takes the recharged coins back');
SELECT is(wallet.refund_recharge(:rc4, 'refund'), :rf4::bigint, 'refund_recharge again: the first refund, nothing more');
SELECT is(pg_temp.units(:viewer2), 50::bigint, '... the coins are taken once');
SELECT is(pg_temp.total('USD'), 0::bigint, 'the money side balances after the refund');
-- coins already spent: the shortfall is a recorded debt
SELECT wallet.recharge(:viewer2, '40 COIN', '0.40 USD', 'appstore', 'cl-order-5') AS rc5 \gset
SELECT wallet.gift(:viewer2, :creator, '80 COIN', 'cl-gift-7') IS NULL AS ignored \gset
SELECT is(pg_temp.units(:viewer2), 10::bigint, 'viewer2 spent most of the coins');
SELECT wallet.refund_recharge(:rc5, 'chargeback') AS rf5 \gset
SELECT is(pg_temp.units(:viewer2), 0::bigint, 'refund of spent coins: what the user has is taken, never below zero');
SELECT is(pg_temp.avail(:viewer2), -30::bigint, 'the 30 coins not recovered show as debt in available');
SELECT is((SELECT sum(wallet.units(balance)) FROM wallet.accounts WHERE owner = 'cl-viewer2' AND kind <> 'user'), -30::numeric,
          'the debt is recorded on an account of the user');
SELECT is((SELECT debt FROM wallet.accounts WHERE id = :viewer2), '30 COIN'::wallet.amount, 'the accounts view shows the debt');
SELECT is(pg_temp.total('COIN'), 0::bigint, 'coins conserved with the debt');
SELECT is(pg_temp.state(format($$SELECT wallet.gift(%s, %s, '1 COIN', 'cl-gift-8')$$, :viewer2, :creator)), 'WL001',
          'a user in debt cannot spend');
SELECT wallet.recharge(:viewer2, '50 COIN', '0.50 USD', 'appstore', 'cl-order-6') AS rc6 \gset
SELECT is((pg_temp.units(:viewer2), pg_temp.avail(:viewer2))::text, (20::bigint, 20::bigint)::text,
          'the next recharge repays the debt first (50 - 30)');
SELECT is((SELECT debt FROM wallet.accounts WHERE id = :viewer2), '0 COIN'::wallet.amount, 'no debt left');
SELECT is(pg_temp.state(format($$SELECT wallet.gift(%s, %s, '20 COIN', 'cl-gift-9')$$, :viewer2, :creator)), 'ok',
          'debt repaid: the user can spend again');
SELECT is(pg_temp.state(format($$SELECT wallet.refund_recharge(%s, 'x')$$, :g1)), '22023', 'refund_recharge of a gift: 22023');
SELECT is(pg_temp.state('SELECT wallet.refund_recharge(-42, ''x'')'), 'WL009', 'refund_recharge of an unknown transaction: WL009');

SELECT is((pg_temp.total('COIN'), pg_temp.total('DIAMOND'), pg_temp.total('USD'), pg_temp.total('JPY'))::text,
          (0::bigint, 0::bigint, 0::bigint, 0::bigint)::text, 'every unit sums to zero at the end');
-- ============================================================ refund of a fake recharge (1.2.0)
-- A client's transfer given the kind 'recharge' and metadata naming an
-- account, coins and an amount paid is not a recharge: refund_recharge
-- refuses it (it used to book a store refund for money never paid, or
-- claw coins back from the account the metadata named).
SELECT wallet.open_account('fake-victim', 'COIN') AS victim \gset
SELECT wallet.recharge(:victim, '60 COIN', '0.60 USD', 'appstore', 'fake-victim-order') AS victim_rc \gset
SELECT wallet.open_account('fake-payer', 'COIN') AS payer \gset
SELECT wallet.recharge(:payer, '5 COIN', '0.05 USD', 'appstore', 'fake-payer-order') AS payer_rc \gset
SELECT wallet.transfer(:payer, :victim, '1 COIN', 'fake-recharge-1', 'recharge',
                       jsonb_build_object('account', :victim, 'coins', '1000 COIN', 'paid', '100 USD')) AS fake \gset
SELECT throws_ok(format('SELECT wallet.refund_recharge(%s, %L)', :fake, 'chargeback'), '22023', NULL,
                 'refund_recharge: a client transfer of kind recharge is refused (22023)');
SELECT is(pg_temp.units(:victim), 61::bigint, 'refund_recharge: the account the fake metadata named keeps its coins');
SELECT lives_ok(format('SELECT wallet.refund_recharge(%s, %L)', :victim_rc, 'chargeback'),
                'refund_recharge: a recharge wallet.recharge posted is still refunded');
SELECT is(pg_temp.units(:victim), 1::bigint, 'refund_recharge: the real refund took the 60 coins');

SELECT is((SELECT array_agg(check_name::text ORDER BY check_name) FROM wallet.verify() WHERE NOT ok), NULL::text[],
          'verify() passes after the live flows');

SELECT * FROM finish();
ROLLBACK;
