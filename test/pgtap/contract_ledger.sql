-- test/pgtap/contract_ledger.sql — SPEC.md "Contract v1": Accounts,
-- Posting, Holds, Reading, checked item by item from the contract's side:
-- every function's result, its effect on balances, and the SQLSTATE (with
-- a DETAIL where the contract lists the error kind) of each way it can
-- fail.  Ids are never compared with constants.  Runs in one transaction
-- and rolls back.
BEGIN;
SELECT plan(195);

SET LOCAL client_min_messages = warning;

\ir include/helpers.sql
-- units of an account's posted and available balance
CREATE FUNCTION pg_temp.bal(id bigint) RETURNS bigint LANGUAGE sql AS $$ SELECT wallet.units(wallet.balance(id)) $$;
CREATE FUNCTION pg_temp.avail(id bigint) RETURNS bigint LANGUAGE sql AS $$ SELECT wallet.units(wallet.available(id)) $$;
-- a fingerprint of everything posted: transactions, entries, balances, holds
CREATE FUNCTION pg_temp.ledger_state() RETURNS text LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM wallet.transactions)::text || '/' || (SELECT count(*) FROM wallet.entries)::text || '/'
        || (SELECT coalesce(string_agg(id || ':' || balance::text || ':' || held::text, ',' ORDER BY id), '') FROM wallet.accounts)
        || '/' || (SELECT coalesce(string_agg(id || ':' || status, ',' ORDER BY id), '') FROM wallet.holds)
$$;

-- ============================================================ accounts

SELECT wallet.open_account('cl-bank', 'usd', 'system', true) AS bank \gset
SELECT wallet.open_account('cl-alice', 'USD') AS alice \gset
SELECT wallet.open_account('cl-bob', 'USD', 'user', false, '{"tier": "gold"}') AS bob \gset
SELECT wallet.open_account('cl-carol', 'USD') AS carol \gset
SELECT wallet.open_account('cl-eur', 'EUR') AS eur \gset
SELECT wallet.open_account('cl-eurbank', 'EUR', 'system', true) AS eurbank \gset
SELECT wallet.open_account('cl-jpy', 'JPY') AS jpy \gset
SELECT wallet.open_account('cl-bhd', 'bhd') AS bhd \gset

SELECT is(pg_typeof(wallet.open_account('cl-type', 'USD'))::text, 'bigint', 'open_account returns bigint');
SELECT is((SELECT count(DISTINCT x) FROM unnest(ARRAY[:bank, :alice, :bob, :carol, :eur, :jpy, :bhd]::bigint[]) x), 7::bigint,
          'every open_account returns a new id');
SELECT is((SELECT row(owner, currency, kind, allow_negative, status, hot, balance, available, metadata)::text
             FROM wallet.accounts WHERE id = :alice),
          row('cl-alice', 'USD', 'user', false, 'active', false, '0.00 USD'::wallet.amount, '0.00 USD'::wallet.amount, NULL::jsonb)::text,
          'open_account defaults: kind user, allow_negative false, active, zero balances, no metadata');
SELECT is((SELECT row(currency, kind, allow_negative)::text FROM wallet.accounts WHERE id = :bank),
          row('USD', 'system', true)::text, 'open_account: currency normalised, kind and allow_negative kept');
SELECT is((SELECT metadata FROM wallet.accounts WHERE id = :bob), '{"tier": "gold"}'::jsonb, 'open_account keeps metadata');
SELECT is((SELECT balance FROM wallet.accounts WHERE id = :bhd), '0.000 BHD'::wallet.amount, 'a BHD account shows 3 decimals');
SELECT is(pg_temp.err($$SELECT wallet.open_account('x', 'XYZ')$$), 'WL011 +detail', 'open_account: unknown currency WL011');
SELECT is(pg_temp.state($$SELECT wallet.open_account('x', 'U$D')$$), '22P02', 'open_account: malformed currency 22P02');
SELECT is(pg_temp.state($$SELECT wallet.open_account(NULL, 'USD')$$), '22004', 'open_account: null owner 22004');
SELECT is(pg_temp.state($$SELECT wallet.open_account('x', NULL)$$), '22004', 'open_account: null currency 22004');

-- wallet.accounts: the columns the contract names, balances as amounts
SELECT is((SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'wallet.accounts'::regclass AND attname = 'balance'),
          'wallet.amount', 'wallet.accounts.balance is an amount');
SELECT is((SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'wallet.accounts'::regclass AND attname = 'available'),
          'wallet.amount', 'wallet.accounts.available is an amount');
SELECT is((SELECT count(*) FROM pg_attribute WHERE attrelid = 'wallet.accounts'::regclass AND NOT attisdropped
              AND attname IN ('id', 'owner', 'currency', 'kind', 'allow_negative', 'status', 'balance', 'available')), 8::bigint,
          'wallet.accounts has id, owner, currency, kind, allow_negative, status, balance, available');

-- ============================================================ currency registry

SELECT is(wallet.add_currency('CLGEM', 3, 'Gem'), true, 'add_currency: a new unit returns true');
SELECT is(wallet.add_currency('clgem', 3, 'Gem again'), false, 'add_currency: the same unit again is a no-op (false)');
SELECT is(pg_temp.state($$SELECT wallet.add_currency('CLGEM', 2, 'Gem')$$), '22023', 'add_currency: other minor units for it: 22023');
SELECT is(pg_temp.state($$SELECT wallet.add_currency('USD', 3, 'Dollar')$$), '22023', 'add_currency: an ISO code cannot be redefined');
SELECT is(pg_temp.state($$SELECT wallet.add_currency('G', 0, 'x')$$), '22P02', 'add_currency: a malformed code: 22P02');
SELECT is(pg_temp.state($$SELECT wallet.add_currency('CLBIG', 19, 'x')$$), '22023', 'add_currency: more than 18 decimals: 22023');
SELECT is((SELECT row(code, minor_units, iso)::text FROM wallet.currencies WHERE code = 'CLGEM'), row('CLGEM', 3, false)::text,
          'wallet.currencies lists the added unit (iso = false)');
SELECT is('1.5 clgem'::wallet.amount::text, '1.500 CLGEM', 'amounts in the added unit show its 3 decimals');
SELECT is(pg_temp.state($$SELECT '1.2345 CLGEM'::wallet.amount$$), '22P02', '... and refuse a 4th');
SELECT is(wallet.add_currency('CLNANO', 18, 'Nano'), true, 'add_currency: 18 decimals');
SELECT is('9.223372036854775807 CLNANO'::wallet.amount::text, '9.223372036854775807 CLNANO', '18 decimals: the largest amount');
SELECT is(pg_temp.state($$SELECT '10 CLNANO'::wallet.amount$$), '22003', '18 decimals: 10 units overflow');
SELECT wallet.open_account('cl-gem', 'CLGEM') AS gem \gset
SELECT is((SELECT balance FROM wallet.accounts WHERE id = :gem), '0.000 CLGEM'::wallet.amount, 'an account in the added unit');

-- ============================================================ transfer

SELECT wallet.transfer(:bank, :alice, '100.00 USD', 'cl:fund-alice') AS t_fund \gset
SELECT is(pg_typeof(wallet.transfer(:bank, :carol, '50.00 USD', 'cl:fund-carol'))::text, 'bigint', 'transfer returns bigint');
SELECT is(pg_temp.bal(:alice), 10000::bigint, 'transfer credits the destination');
SELECT is(pg_temp.bal(:bank), -15000::bigint, 'transfer debits the source (allowed to go negative)');
SELECT is((SELECT array_agg(wallet.units(amount) ORDER BY leg) FROM wallet.entries WHERE txn_id = :t_fund), ARRAY[-10000, 10000]::bigint[],
          'transfer: two legs that sum to zero');
SELECT is((SELECT array_agg(account_id ORDER BY leg) FROM wallet.entries WHERE txn_id = :t_fund), ARRAY[:bank, :alice]::bigint[],
          'transfer: from then to');
SELECT is((SELECT kind FROM wallet.transactions WHERE id = :t_fund), 'transfer', 'transfer: kind defaults to transfer');
SELECT wallet.transfer(:alice, :bob, '10.00 USD', 'cl:ab-1', 'tip', '{"note": "thanks"}') AS t_ab \gset
SELECT is((SELECT row(kind, metadata)::text FROM wallet.transactions WHERE id = :t_ab), row('tip', '{"note": "thanks"}'::jsonb)::text,
          'transfer keeps kind and metadata');
SELECT is((pg_temp.bal(:alice), pg_temp.bal(:bob))::text, (9000::bigint, 1000::bigint)::text, 'transfer moves exactly the amount');

SELECT pg_temp.ledger_state() AS s0 \gset
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '90.01 USD', 'cl:over')$$, :alice, :bob)), 'WL001 +detail',
          'transfer beyond the balance: WL001 with DETAIL');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '90.00 USD', 'cl:all')$$, :alice, :carol)), 'ok',
          'transfer of exactly the balance works');
SELECT is(pg_temp.bal(:alice), 0::bigint, 'the account is at zero, not below');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '0.01 USD', 'cl:over2')$$, :alice, :bob)), 'WL001 +detail',
          'transfer from an empty account: WL001');
SELECT is((SELECT count(*) FROM wallet.transactions WHERE idempotency_key IN ('cl:over', 'cl:over2')), 0::bigint,
          'a refused transfer leaves no transaction');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '0.01 USD', 'cl:over')$$, :carol, :bob)), 'ok',
          'a refused request leaves its key unused');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '0.00 USD', 'cl:zero')$$, :carol, :bob)), '22023', 'transfer of zero: 22023');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '-1.00 USD', 'cl:neg')$$, :carol, :bob)), '22023', 'negative transfer: 22023');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'cl:self')$$, :carol, :carol)), '22023', 'transfer to itself: 22023');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '1.00 EUR', 'cl:cur1')$$, :carol, :bob)), 'WL002 +detail',
          'amount in another currency than the accounts: WL002 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'cl:cur2')$$, :carol, :eur)), 'WL002 +detail',
          'accounts in different currencies: WL002');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, -42, '1.00 USD', 'cl:unk1')$$, :carol)), 'WL003 +detail',
          'unknown destination: WL003 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(-42, %s, '1.00 USD', 'cl:unk2')$$, :carol)), 'WL003 +detail',
          'unknown source: WL003');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(NULL, %s, '1.00 USD', 'cl:n1')$$, :carol)), '22004', 'null from_account: 22004');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, NULL, '1.00 USD', 'cl:n2')$$, :carol)), '22004', 'null to_account: 22004');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, NULL, 'cl:n3')$$, :carol, :bob)), '22004', 'null amount: 22004');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', NULL)$$, :carol, :bob)), '22004', 'null key: 22004');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', '')$$, :carol, :bob)), '22023', 'empty key: 22023');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', %L)$$, :carol, :bob, repeat('k', 201))), '22023',
          'a 201-byte key: 22023');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', %L)$$, :carol, :bob, repeat('k', 200))), 'ok',
          'a 200-byte key works');
SELECT is(pg_temp.bal(:carol), 14000::bigint - 1 - 100, 'carol: 50 + 90 - 0.01 - 1.00 after all that');

-- ============================================================ idempotency

SELECT pg_temp.ledger_state() AS s1 \gset
SELECT is(wallet.transfer(:alice, :bob, '10.00 USD', 'cl:ab-1', 'tip', '{"note": "thanks"}'), :t_ab::bigint,
          'same key, same request: the first transaction id');
SELECT is(wallet.transfer(:alice, :bob, '10.00 USD', 'cl:ab-1', 'tip', '{ "note" :"thanks"}'::jsonb), :t_ab::bigint,
          'same key, same request (metadata spelled differently): the first id');
SELECT is(pg_temp.ledger_state(), :'s1', 'the replays posted nothing (even though alice is empty now)');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '10.01 USD', 'cl:ab-1', 'tip', '{"note": "thanks"}')$$, :alice, :bob)),
          'WL006 +detail', 'same key, other amount: WL006 with DETAIL');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '10.00 USD', 'cl:ab-1', 'tip', '{"note": "thanks"}')$$, :alice, :carol)),
          'WL006', 'same key, other destination: WL006');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '10.00 USD', 'cl:ab-1', 'gift', '{"note": "thanks"}')$$, :alice, :bob)),
          'WL006', 'same key, other kind: WL006');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '10.00 USD', 'cl:ab-1', 'tip', '{"note": "other"}')$$, :alice, :bob)),
          'WL006', 'same key, other metadata: WL006');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '10.00 USD', 'cl:ab-1')$$, :alice, :bob)),
          'WL006', 'same key, default kind and no metadata: WL006');
SELECT is(pg_temp.state(format($$SELECT wallet.post('cl:ab-1', ARRAY[(%s, '-10.00 USD'), (%s, '10.00 USD')]::wallet.leg[], 'journal')$$, :alice, :bob)),
          'WL006', 'same key through wallet.post with another kind: WL006');
SELECT is(pg_temp.ledger_state(), :'s1', 'the conflicts posted nothing');

-- ============================================================ post

SELECT wallet.post('cl:p1', ARRAY[(:bank, '-30.00 USD'), (:alice, '20.00 USD'), (:bob, '10.00 USD')]::wallet.leg[]) AS p1 \gset
SELECT is((pg_temp.bal(:bank), pg_temp.bal(:alice), pg_temp.bal(:bob))::text, (-18000::bigint, 2000::bigint, 2101::bigint)::text,
          'post: every leg applied');
SELECT is((SELECT kind FROM wallet.transactions WHERE id = :p1), 'journal', 'post: kind defaults to journal');
SELECT is((SELECT count(*) FROM wallet.entries WHERE txn_id = :p1), 3::bigint, 'post: one entry per leg');
SELECT is(wallet.post('cl:p1', ARRAY[(:bank, '-30.00 USD'), (:alice, '20.00 USD'), (:bob, '10.00 USD')]::wallet.leg[]), :p1::bigint,
          'post: same key, same legs: the first id');
SELECT is(pg_temp.state(format($$SELECT wallet.post('cl:p1', ARRAY[(%s, '-30.00 USD'), (%s, '10.00 USD'), (%s, '20.00 USD')]::wallet.leg[])$$, :bank, :bob, :alice)),
          'WL006', 'post: same key, legs in another order: WL006');
-- one transaction in two currencies, balanced in each
SELECT wallet.post('cl:fx', ARRAY[(:alice, '-10.00 USD'), (:bank, '10.00 USD'), (:eurbank, '-9.00 EUR'), (:eur, '9.00 EUR')]::wallet.leg[]) AS fx \gset
SELECT is((pg_temp.bal(:alice), pg_temp.bal(:eur))::text, (1000::bigint, 900::bigint)::text, 'post: a balanced two-currency transaction');
SELECT is(pg_temp.err(format($$SELECT wallet.post('cl:unb', ARRAY[(%s, '-1.00 USD'), (%s, '0.99 USD')]::wallet.leg[])$$, :bank, :bob)),
          'WL007 +detail', 'post: legs that do not sum to zero: WL007 with DETAIL');
SELECT is(pg_temp.state(format($$SELECT wallet.post('cl:unb2', ARRAY[(%s, '-1.00 USD'), (%s, '1.00 EUR')]::wallet.leg[])$$, :bank, :eur)),
          'WL007', 'post: balanced in total but not per currency: WL007');
SELECT is(pg_temp.state(format($$SELECT wallet.post('cl:unb3', ARRAY[(%s, '1.00 USD')]::wallet.leg[])$$, :bob)),
          'WL007', 'post: one leg: WL007');
SELECT is(pg_temp.err(format($$SELECT wallet.post('cl:cur', ARRAY[(%s, '-1.00 EUR'), (%s, '1.00 EUR')]::wallet.leg[])$$, :eurbank, :bob)),
          'WL002 +detail', 'post: a leg in another currency than its account: WL002 with DETAIL');
SELECT is(pg_temp.state($$SELECT wallet.post('cl:empty', ARRAY[]::wallet.leg[])$$), '22023', 'post: no legs: 22023');
SELECT is(pg_temp.state($$SELECT wallet.post('cl:null', NULL)$$), '22004', 'post: null legs: 22004');
SELECT is(pg_temp.state(format($$SELECT wallet.post('cl:nleg', ARRAY[(%s, '-1.00 USD'), NULL]::wallet.leg[])$$, :bank)), '22004',
          'post: a null leg: 22004');
SELECT is(pg_temp.state(format($$SELECT wallet.post('cl:zleg', ARRAY[(%s, '0.00 USD'), (%s, '0.00 USD')]::wallet.leg[])$$, :bank, :bob)), '22023',
          'post: zero legs: 22023');
SELECT pg_temp.ledger_state() AS s2 \gset
SELECT is(pg_temp.err(format($$SELECT wallet.post('cl:atomic', ARRAY[(%s, '-5.00 USD'), (%s, '5.00 USD'), (%s, '-5000.00 USD'), (%s, '5000.00 USD')]::wallet.leg[])$$,
                             :bank, :alice, :carol, :bob)),
          'WL001 +detail', 'post: one leg overdraws: WL001');
SELECT is(pg_temp.state(format($$SELECT wallet.post('cl:atomic2', ARRAY[(%s, '-5.00 USD'), (%s, '5.00 USD'), (-42, '-1.00 USD'), (%s, '1.00 USD')]::wallet.leg[])$$,
                               :bank, :alice, :bob)),
          'WL003', 'post: one unknown account: WL003');
SELECT is(pg_temp.ledger_state(), :'s2', 'post is atomic: a failing leg posts none of the others');

-- ============================================================ freeze, unfreeze, close

SELECT wallet.freeze_account(:bob) IS NULL AS ignored \gset
SELECT is((SELECT status FROM wallet.accounts WHERE id = :bob), 'frozen', 'freeze_account: status frozen');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'cl:fz1')$$, :bank, :bob)), 'WL004 +detail',
          'a frozen account takes no credit: WL004 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'cl:fz2')$$, :bob, :carol)), 'WL004 +detail',
          'a frozen account takes no debit: WL004');
SELECT is(pg_temp.state(format($$SELECT wallet.post('cl:fz3', ARRAY[(%s, '-1.00 USD'), (%s, '1.00 USD')]::wallet.leg[])$$, :bank, :bob)), 'WL004',
          'post to a frozen account: WL004');
SELECT is(pg_temp.state(format($$SELECT wallet.hold(%s, %s, '1.00 USD', 'cl:fz4')$$, :bob, :carol)), 'WL004',
          'hold from a frozen account: WL004');
SELECT is(pg_temp.state(format($$SELECT wallet.freeze_account(%s)$$, :bob)), 'ok', 'freezing a frozen account is allowed');
SELECT wallet.unfreeze_account(:bob) IS NULL AS ignored \gset
SELECT is((SELECT status FROM wallet.accounts WHERE id = :bob), 'active', 'unfreeze_account: active again');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'cl:fz1')$$, :bank, :bob)), 'ok', 'after unfreeze it takes postings');
SELECT is(pg_temp.err($$SELECT wallet.freeze_account(-42)$$), 'WL003 +detail', 'freeze_account of an unknown account: WL003');

SELECT wallet.open_account('cl-closing', 'USD') AS cls \gset
SELECT wallet.transfer(:bank, :cls, '2.00 USD', 'cl:cls-fund') AS t_cls \gset
SELECT is(pg_temp.err(format($$SELECT wallet.close_account(%s)$$, :cls)), 'WL012 +detail', 'close_account with a balance: WL012');
SELECT wallet.transfer(:cls, :bank, '2.00 USD', 'cl:cls-empty') IS NULL AS ignored \gset
SELECT wallet.hold(:carol, :cls, '1.00 USD', 'cl:cls-hold-in') AS h_in \gset
SELECT is(pg_temp.state(format($$SELECT wallet.close_account(%s)$$, :cls)), 'WL012', 'close_account with a pending hold towards it: WL012');
SELECT wallet.void(:h_in) IS NULL AS ignored \gset
SELECT wallet.transfer(:bank, :cls, '1.00 USD', 'cl:cls-fund2') IS NULL AS ignored \gset
SELECT wallet.hold(:cls, :carol, '1.00 USD', 'cl:cls-hold-out') AS h_out \gset
SELECT wallet.capture(:h_out, '0.40 USD') IS NULL AS ignored \gset
SELECT wallet.transfer(:cls, :bank, '0.60 USD', 'cl:cls-empty2') IS NULL AS ignored \gset
SELECT is(pg_temp.bal(:cls), 0::bigint, 'the account is back at zero');
SELECT is(pg_temp.state(format($$SELECT wallet.close_account(%s)$$, :cls)), 'ok', 'close_account at zero with nothing pending');
SELECT is((SELECT status FROM wallet.accounts WHERE id = :cls), 'closed', 'status closed');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'cl:cl1')$$, :bank, :cls)), 'WL005 +detail',
          'a closed account takes no credit: WL005 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'cl:cl2')$$, :cls, :bank)), 'WL005 +detail',
          'a closed account takes no debit: WL005');
SELECT is(pg_temp.state(format($$SELECT wallet.hold(%s, %s, '1.00 USD', 'cl:cl3')$$, :carol, :cls)), 'WL005',
          'no hold towards a closed account: WL005');
SELECT is(pg_temp.state(format($$SELECT wallet.freeze_account(%s)$$, :cls)), 'WL005', 'freeze of a closed account: WL005');
SELECT is(pg_temp.state(format($$SELECT wallet.unfreeze_account(%s)$$, :cls)), 'WL005', 'unfreeze of a closed account: WL005');
SELECT is(pg_temp.state(format($$SELECT wallet.reverse(%s, 'cl:cl-rev')$$, :t_cls)), 'WL005', 'a reversal that touches a closed account: WL005');

-- ============================================================ set_hot

SELECT wallet.open_account('cl-creator', 'USD') AS hot \gset
SELECT wallet.set_hot(:hot) IS NULL AS ignored \gset
SELECT is((SELECT hot FROM wallet.accounts WHERE id = :hot), true, 'set_hot marks the account');
SELECT wallet.transfer(:bank, :hot, '3.00 USD', 'cl:hot1') IS NULL AS ignored \gset
SELECT wallet.transfer(:carol, :hot, '2.00 USD', 'cl:hot2') IS NULL AS ignored \gset
SELECT is(pg_temp.bal(:hot), 500::bigint, 'a hot account''s balance is exact right after its credits');
SELECT is((SELECT balance FROM wallet.accounts WHERE id = :hot), '5.00 USD'::wallet.amount, 'and so is the accounts view');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '5.01 USD', 'cl:hot3')$$, :hot, :carol)), 'WL001 +detail',
          'a hot account cannot be overdrawn: WL001');
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '5.00 USD', 'cl:hot4')$$, :hot, :carol)), 'ok',
          'a hot account can spend its pending credits');
SELECT is(pg_temp.bal(:hot), 0::bigint, 'hot account back at zero');
SELECT wallet.transfer(:bank, :hot, '1.00 USD', 'cl:hot5') IS NULL AS ignored \gset
SELECT wallet.set_hot(:hot, false) IS NULL AS ignored \gset
SELECT is((SELECT row(hot, balance)::text FROM wallet.accounts WHERE id = :hot), row(false, '1.00 USD'::wallet.amount)::text,
          'set_hot(id, false): back to normal, balance kept');
SELECT is(pg_temp.state('SELECT wallet.set_hot(-42)'), 'WL003', 'set_hot of an unknown account: WL003');
SELECT is(pg_temp.state('SELECT wallet.set_hot(NULL)'), '22004', 'set_hot(NULL): 22004');

-- ============================================================ transfer_batch

SELECT wallet.open_account('cl-b1', 'USD') AS b1 \gset
SELECT wallet.open_account('cl-b2', 'USD') AS b2 \gset
SELECT wallet.transfer(:bank, :b1, '5.00 USD', 'cl:b-fund') AS t_bfund \gset
CREATE TEMP TABLE batch_out AS
SELECT * FROM wallet.transfer_batch(
    ARRAY[:bank, :b1, :b1, :b1, :b1, :b1, :bank, :bank, :b1]::bigint[],
    ARRAY[:b1, :b2, :b2, :b2, -42, :eur, :b1, :b1, :b2]::bigint[],
    ARRAY['1.00 USD', '4.00 USD', '3.00 USD', '1.00 USD', '1.00 USD', '1.00 USD', '5.00 USD', '6.00 USD', '2.00 USD']::wallet.amount[],
    ARRAY['cl:bt1', 'cl:bt2', 'cl:bt3', 'cl:bt4', 'cl:bt5', 'cl:bt6', 'cl:b-fund', 'cl:b-fund', 'cl:bt2']);
SELECT is((SELECT array_agg(idx ORDER BY idx) FROM batch_out), ARRAY[1, 2, 3, 4, 5, 6, 7, 8, 9], 'transfer_batch: one row per transfer');
SELECT is((SELECT array_agg(status ORDER BY idx) FROM batch_out),
          ARRAY['ok', 'ok', 'insufficient_funds', 'ok', 'unknown_account', 'currency_mismatch', 'exists', 'idempotency_conflict', 'idempotency_conflict'],
          'transfer_batch: each row its own outcome, applied in order');
SELECT is((SELECT tx_id FROM batch_out WHERE idx = 7), :t_bfund::bigint, 'transfer_batch: exists returns the first transaction');
SELECT is((SELECT count(*) FROM batch_out WHERE status = 'ok' AND tx_id IS NOT NULL), 3::bigint, 'transfer_batch: ok rows have their transaction');
SELECT is((SELECT count(*) FROM batch_out WHERE status NOT IN ('ok', 'exists') AND tx_id IS NOT NULL), 0::bigint,
          'transfer_batch: failed rows have no transaction');
SELECT is((pg_temp.bal(:b1), pg_temp.bal(:b2))::text, (100::bigint, 500::bigint)::text,
          'transfer_batch: only the ok rows moved money (5 + 1 - 4 - 1, 4 + 1)');
SELECT is(pg_temp.state(format($$SELECT * FROM wallet.transfer_batch(ARRAY[%s]::bigint[], ARRAY[%s, %s]::bigint[], ARRAY['1 USD']::wallet.amount[], ARRAY['x'])$$,
                               :bank, :b1, :b2)), '22023', 'transfer_batch: arrays of different lengths: 22023');

-- A batch over a dense run of account ids reads them with one range scan
-- of the primary key (rows.c, AccountFinder) instead of one descent per id:
-- it must still find every account, report an id inside the range that
-- has no account, and take the visible version of an account whose row
-- was updated out of place (two index entries for the same id).
CREATE TEMP TABLE dense AS
SELECT g AS n, wallet.open_account('cl-dense-' || g, 'USD') AS id FROM generate_series(1, 40) g;
SAVEPOINT gap;
SELECT wallet.open_account('cl-dense-gap', 'USD') AS dense_gap \gset
ROLLBACK TO SAVEPOINT gap;
INSERT INTO dense SELECT 40 + g, wallet.open_account('cl-dense-' || (40 + g), 'USD') FROM generate_series(1, 20) g;
SELECT pg_stat_get_xact_numscans('wallet.account_pkey'::regclass) AS pkey_scans \gset
SELECT is((SELECT count(*) FROM wallet.transfer_batch(ARRAY(SELECT :bank::bigint FROM dense ORDER BY n),
                                                      ARRAY(SELECT id FROM dense ORDER BY n),
                                                      ARRAY(SELECT wallet.amount(100 * n, 'USD') FROM dense ORDER BY n),
                                                      ARRAY(SELECT 'cl:dense-fund-' || n FROM dense ORDER BY n))
            WHERE status = 'ok'), 60::bigint, 'transfer_batch over 61 dense ids: every account found');
SELECT cmp_ok(pg_stat_get_xact_numscans('wallet.account_pkey'::regclass) - :pkey_scans, '<', 10::bigint,
              '... read with one range scan of the primary key, not one descent per id');
-- owner is indexed: this update is not HOT, the primary key gets a second entry per id
UPDATE wallet.account SET owner = owner || '-renamed' WHERE id IN (SELECT id FROM dense WHERE n % 3 = 0);
SELECT is((SELECT count(*) FROM wallet.account WHERE id IN (SELECT id FROM dense) AND owner LIKE '%-renamed'), 20::bigint,
          '20 of the accounts moved out of place');
-- each account n sends n units to account n + 1 (the last to the first),
-- plus three rows to and from the id nobody has
CREATE TEMP TABLE dense_out AS
SELECT * FROM wallet.transfer_batch(
    ARRAY(SELECT id FROM dense ORDER BY n) || ARRAY[:dense_gap, (SELECT id FROM dense WHERE n = 7), :dense_gap]::bigint[],
    ARRAY(SELECT coalesce(lead(id) OVER (ORDER BY n), (SELECT id FROM dense WHERE n = 1)) FROM dense ORDER BY n)
        || ARRAY[(SELECT id FROM dense WHERE n = 5), :dense_gap, (SELECT id FROM dense WHERE n = 9)]::bigint[],
    ARRAY(SELECT wallet.amount(n, 'USD') FROM dense ORDER BY n) || ARRAY['0.01 USD', '0.01 USD', '0.01 USD']::wallet.amount[],
    ARRAY(SELECT 'cl:dense-ring-' || n FROM dense ORDER BY n) || ARRAY['cl:dense-g1', 'cl:dense-g2', 'cl:dense-g3']);
SELECT is((SELECT array_agg(DISTINCT status) FROM dense_out WHERE idx <= 60), ARRAY['ok'],
          'transfer_batch over dense ids, some updated out of place: every row ok');
SELECT is((SELECT array_agg(status ORDER BY idx) FROM dense_out WHERE idx > 60),
          ARRAY['unknown_account', 'unknown_account', 'unknown_account'], 'an id inside the range without an account: unknown_account');
SELECT is((SELECT array_agg(pg_temp.bal(id) ORDER BY n) FROM dense),
          (SELECT array_agg(v ORDER BY n) FROM (SELECT n, (100 * n - n + coalesce(lag(n) OVER (ORDER BY n), 60))::bigint AS v FROM dense) x),
          'every balance in the range moved exactly once (100 n - n + (n - 1))');
SELECT is((SELECT count(*) FROM wallet.account WHERE id = :dense_gap), 0::bigint, 'and no account appeared for the unknown id');

-- ============================================================ reverse

SELECT wallet.transfer(:bank, :b2, '2.50 USD', 'cl:rv-orig') AS rv_orig \gset
SELECT wallet.reverse(:rv_orig, 'cl:rv-1', 'typo') AS rv \gset
SELECT is((SELECT array_agg(row(account_id, amount)::text ORDER BY account_id) FROM wallet.entries WHERE txn_id = :rv),
          (SELECT array_agg(row(account_id, -amount)::text ORDER BY account_id) FROM wallet.entries WHERE txn_id = :rv_orig),
          'reverse posts the exact opposite legs');
SELECT is((SELECT reverses FROM wallet.transactions WHERE id = :rv), :rv_orig::bigint, 'the reversal is linked to the original');
SELECT is(pg_temp.bal(:b2), 500::bigint, 'reverse restores the balance');
SELECT is(wallet.reverse(:rv_orig, 'cl:rv-1', 'typo'), :rv::bigint, 'reverse: same key and request returns the first reversal');
SELECT is(pg_temp.err(format($$SELECT wallet.reverse(%s, 'cl:rv-2')$$, :rv_orig)), 'WL010 +detail',
          'a transaction is reversed at most once: WL010');
SELECT is(pg_temp.state(format($$SELECT wallet.reverse(%s, 'cl:rv-1', 'other reason')$$, :rv_orig)), 'WL006',
          'reverse: same key, other reason: WL006');
SELECT is(pg_temp.err('SELECT wallet.reverse(-42, ''cl:rv-3'')'), 'WL009 +detail', 'reverse of an unknown transaction: WL009');
SELECT is(pg_temp.state(format($$SELECT wallet.reverse(%s, 'cl:rv-4')$$, :rv)), 'ok', 'a reversal can itself be reversed (once)');
SELECT is(pg_temp.bal(:b2), 750::bigint, '... which posts the original legs again');
SELECT is(pg_temp.state(format($$SELECT wallet.reverse(%s, 'cl:rv-5')$$, :rv)), 'WL010', '... and only once');
-- a reversal that would overdraw
SELECT wallet.transfer(:b2, :carol, '7.50 USD', 'cl:rv-spend') IS NULL AS ignored \gset
SELECT is(pg_temp.err(format($$SELECT wallet.reverse(%s, 'cl:rv-6')$$, :rv_orig)), 'WL010 +detail', 'still reversed only once');
SELECT wallet.transfer(:bank, :b2, '1.00 USD', 'cl:rv-orig2') AS rv_orig2 \gset
SELECT wallet.transfer(:b2, :carol, '1.00 USD', 'cl:rv-spend2') IS NULL AS ignored \gset
SELECT is(pg_temp.err(format($$SELECT wallet.reverse(%s, 'cl:rv-7')$$, :rv_orig2)), 'WL001 +detail',
          'a reversal that would overdraw a non-negative account: WL001');
SELECT is(pg_temp.state(format($$SELECT wallet.reverse(%s, 'cl:rv-7', 'forced', true)$$, :rv_orig2)), 'ok',
          'reverse(..., allow_negative => true) posts it anyway');
SELECT is(pg_temp.bal(:b2), -100::bigint, 'the account is negative by the forced reversal');

-- ============================================================ holds

SELECT wallet.open_account('cl-h1', 'USD') AS h1acc \gset
SELECT wallet.open_account('cl-h2', 'USD') AS h2acc \gset
SELECT wallet.transfer(:bank, :h1acc, '10.00 USD', 'cl:h-fund') IS NULL AS ignored \gset
SELECT wallet.hold(:h1acc, :h2acc, '4.00 USD', 'cl:h1') AS h1 \gset
SELECT is(pg_typeof(wallet.hold(:h1acc, :h2acc, '4.00 USD', 'cl:h1'))::text, 'bigint', 'hold returns bigint');
SELECT is((pg_temp.bal(:h1acc), pg_temp.avail(:h1acc))::text, (1000::bigint, 600::bigint)::text,
          'hold: available drops, posted balance does not');
SELECT is((SELECT row(balance, available)::text FROM wallet.accounts WHERE id = :h1acc),
          row('10.00 USD'::wallet.amount, '6.00 USD'::wallet.amount)::text, 'the accounts view shows both');
SELECT is(pg_temp.bal(:h2acc), 0::bigint, 'hold: nothing reaches the destination yet');
SELECT is(wallet.hold(:h1acc, :h2acc, '4.00 USD', 'cl:h1'), :h1::bigint, 'hold: same key, same request: the same hold');
SELECT is(pg_temp.err(format($$SELECT wallet.hold(%s, %s, '4.01 USD', 'cl:h1')$$, :h1acc, :h2acc)), 'WL006 +detail',
          'hold: same key, other amount: WL006');
SELECT is(pg_temp.err(format($$SELECT wallet.hold(%s, %s, '6.01 USD', 'cl:h-big')$$, :h1acc, :h2acc)), 'WL001 +detail',
          'hold beyond the available balance: WL001');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '6.01 USD', 'cl:h-spend')$$, :h1acc, :h2acc)), 'WL001 +detail',
          'held funds cannot be spent');
SELECT is(pg_temp.state(format($$SELECT wallet.hold(%s, %s, '1.00 EUR', 'cl:h-cur')$$, :h1acc, :h2acc)), 'WL002', 'hold in another currency: WL002');
SELECT is(pg_temp.state(format($$SELECT wallet.hold(%s, %s, '0.00 USD', 'cl:h-zero')$$, :h1acc, :h2acc)), '22023', 'hold of zero: 22023');
SELECT is(pg_temp.state(format($$SELECT wallet.hold(%s, -42, '1.00 USD', 'cl:h-unk')$$, :h1acc)), 'WL003', 'hold to an unknown account: WL003');
SELECT is((SELECT status FROM wallet.holds WHERE id = :h1), 'pending', 'the holds view: pending');
-- partial capture: the rest is released
SELECT wallet.capture(:h1, '1.50 USD') AS c1 \gset
SELECT is((pg_temp.bal(:h1acc), pg_temp.avail(:h1acc), pg_temp.bal(:h2acc))::text, (850::bigint, 850::bigint, 150::bigint)::text,
          'partial capture posts the part and releases the rest');
SELECT is((SELECT array_agg(row(account_id, wallet.units(amount))::text ORDER BY leg) FROM wallet.entries WHERE txn_id = :c1),
          ARRAY[row(:h1acc, -150)::text, row(:h2acc, 150)::text], 'capture returns the posted transaction');
SELECT is((SELECT status FROM wallet.holds WHERE id = :h1), 'captured', 'the hold is captured');
SELECT is(pg_temp.err(format('SELECT wallet.capture(%s)', :h1)), 'WL008 +detail', 'a captured hold cannot be captured again: WL008');
SELECT is(pg_temp.err(format('SELECT wallet.void(%s)', :h1)), 'WL008 +detail', 'a captured hold cannot be voided: WL008');
-- full capture
SELECT wallet.hold(:h1acc, :h2acc, '2.00 USD', 'cl:h2') AS h2 \gset
SELECT is(pg_temp.state(format($$SELECT wallet.capture(%s, '2.01 USD')$$, :h2)), '22023', 'capture of more than held: 22023');
SELECT is(pg_temp.state(format($$SELECT wallet.capture(%s, '1.00 EUR')$$, :h2)), 'WL002', 'capture in another currency: WL002');
SELECT wallet.capture(:h2) IS NULL AS ignored \gset
SELECT is((pg_temp.bal(:h1acc), pg_temp.avail(:h1acc), pg_temp.bal(:h2acc))::text, (650::bigint, 650::bigint, 350::bigint)::text,
          'capture without an amount posts the whole hold');
-- void
SELECT wallet.hold(:h1acc, :h2acc, '3.00 USD', 'cl:h3') AS h3 \gset
SELECT wallet.void(:h3) IS NULL AS ignored \gset
SELECT is((pg_temp.bal(:h1acc), pg_temp.avail(:h1acc), pg_temp.bal(:h2acc))::text, (650::bigint, 650::bigint, 350::bigint)::text,
          'void releases the hold, posts nothing');
SELECT is((SELECT status FROM wallet.holds WHERE id = :h3), 'voided', 'the hold is voided');
SELECT is(pg_temp.state(format('SELECT wallet.void(%s)', :h3)), 'WL008', 'a voided hold cannot be voided again');
SELECT is(pg_temp.state(format('SELECT wallet.capture(%s)', :h3)), 'WL008', 'a voided hold cannot be captured');
-- expiry
SELECT wallet.hold(:h1acc, :h2acc, '1.00 USD', 'cl:h4', now() - interval '1 second') AS h4 \gset
SELECT wallet.hold(:h1acc, :h2acc, '1.00 USD', 'cl:h5', now() + interval '1 hour') AS h5 \gset
SELECT is(pg_temp.avail(:h1acc), 450::bigint, 'two holds with expiry reserve funds');
SELECT is(pg_temp.err(format('SELECT wallet.capture(%s)', :h4)), 'WL008 +detail',
          'capture past expires_at, before expire_holds ran: WL008');
SELECT is(pg_typeof(wallet.expire_holds())::text, 'integer', 'expire_holds returns int');
SELECT is((SELECT status FROM wallet.holds WHERE id = :h4), 'expired', 'expire_holds ends the expired hold');
SELECT is((SELECT status FROM wallet.holds WHERE id = :h5), 'pending', '... and leaves the others');
SELECT is(wallet.expire_holds(), 0, 'expire_holds again: nothing left to expire');
SELECT is(pg_temp.avail(:h1acc), 550::bigint, 'the expired hold is released');
SELECT is(pg_temp.state(format('SELECT wallet.capture(%s)', :h4)), 'WL008', 'an expired hold cannot be captured');
SELECT is(pg_temp.state(format('SELECT wallet.void(%s)', :h4)), 'WL008', 'an expired hold cannot be voided');
SELECT is(pg_temp.state(format('SELECT wallet.capture(%s)', :h5)), 'ok', 'a hold before its expiry can be captured');
SELECT is(pg_temp.state('SELECT wallet.capture(-42)'), 'WL014', 'capture of an unknown hold: WL014');
SELECT is(pg_temp.state('SELECT wallet.void(NULL)'), '22004', 'void(NULL): 22004');
SELECT is((SELECT held FROM wallet.accounts WHERE id = :h1acc), '0.00 USD'::wallet.amount, 'nothing held any more');

-- ============================================================ reading

SELECT wallet.open_account('cl-r', 'USD') AS r \gset
SELECT wallet.transfer(:bank, :r, '10.00 USD', 'cl:r1', metadata => '{"n": 1}') AS r1 \gset
SELECT wallet.transfer(:r, :bank, '2.50 USD', 'cl:r2') AS r2 \gset
SELECT wallet.post('cl:r3', ARRAY[(:r, '-1.00 USD'), (:r, '0.25 USD'), (:bank, '0.75 USD')]::wallet.leg[]) AS r3 \gset
SELECT wallet.reverse(:r2, 'cl:r4') AS r4 \gset
SELECT is(wallet.balance(:r), '9.25 USD'::wallet.amount, 'balance: posted balance as an amount');
SELECT is(wallet.available(:r), '9.25 USD'::wallet.amount, 'available without holds = balance');
SELECT is(pg_temp.err('SELECT wallet.balance(-42)'), 'WL003 +detail', 'balance of an unknown account: WL003');
SELECT is((SELECT array_agg(row(txn_id, kind, amount, balance, metadata)::text ORDER BY txn_id) FROM wallet.statement(:r, '-infinity', 'infinity')),
          ARRAY[row(:r1, 'transfer', '10.00 USD'::wallet.amount, '10.00 USD'::wallet.amount, '{"n": 1}'::jsonb)::text,
                row(:r2, 'transfer', '-2.50 USD'::wallet.amount, '7.50 USD'::wallet.amount, NULL::jsonb)::text,
                row(:r3, 'journal', '-0.75 USD'::wallet.amount, '6.75 USD'::wallet.amount, NULL::jsonb)::text,
                row(:r4, 'reversal', '2.50 USD'::wallet.amount, '9.25 USD'::wallet.amount,
                    (SELECT metadata FROM wallet.transactions WHERE id = :r4))::text],
          'statement: transaction, kind, signed amount (net per transaction), running balance, metadata, oldest first');
SELECT is((SELECT count(*) FROM wallet.statement(:r, '-infinity', 'infinity') WHERE at IS NULL), 0::bigint, 'statement: every row has its time');
SELECT is((SELECT count(*) FROM wallet.statement(:r, now() + interval '1 minute', 'infinity')), 0::bigint,
          'statement: nothing after the last posting');
SELECT is((SELECT count(*) FROM wallet.statement(:r, '-infinity', now() - interval '1 minute')), 0::bigint,
          'statement: nothing before the first posting');
SELECT is(wallet.balance_at(:r, now()), '9.25 USD'::wallet.amount, 'balance_at now: the balance');
SELECT is(wallet.balance_at(:r, now() - interval '1 minute'), '0.00 USD'::wallet.amount, 'balance_at before any posting: zero');
SELECT is(wallet.balance_at(:r, 'infinity'), wallet.balance(:r), 'balance_at infinity: the balance');
SELECT is(pg_temp.state('SELECT wallet.balance_at(-42, now())'), 'WL003', 'balance_at of an unknown account: WL003');

-- ============================================================ verify

SELECT is((SELECT bool_and(ok) FROM wallet.verify()), true, 'verify: every check passes on this ledger');
SELECT is((SELECT count(*) FROM wallet.verify()
             WHERE check_name IN ('transactions_balance', 'balances_match_entries', 'no_forbidden_negative', 'holds_consistent')), 4::bigint,
          'verify reports the checks the contract lists (README names)');
SELECT ok((SELECT count(*) FROM wallet.verify() WHERE check_name LIKE 'audit%') >= 1, 'verify includes the audit chain checks');
SELECT wallet.open_account('cl-forged', 'USD') AS forged \gset
SAVEPOINT tamper;
UPDATE wallet.account SET balance = balance + 1 WHERE id = :alice;
SELECT is((SELECT array_agg(check_name::text ORDER BY check_name) FROM wallet.verify() WHERE NOT ok),
          ARRAY['balances_match_entries'], 'verify: a stored balance that differs from its entries is found');
ROLLBACK TO SAVEPOINT tamper;
SET LOCAL session_replication_role = replica;
INSERT INTO wallet.entry (txn_id, leg, account_id, amount) VALUES (:t_fund, 3, :alice, 1);
UPDATE wallet.account SET balance = balance + 1 WHERE id = :alice;
SET LOCAL session_replication_role = origin;
SELECT is((SELECT array_agg(check_name::text ORDER BY check_name) FROM wallet.verify() WHERE NOT ok AND check_name NOT LIKE 'audit%'),
          ARRAY['transactions_balance'], 'verify: a transaction that does not balance is found');
ROLLBACK TO SAVEPOINT tamper;
SET LOCAL session_replication_role = replica;
INSERT INTO wallet.txn (id, idempotency_key, kind, request_hash) VALUES (nextval('wallet.txn_id_seq'), 'cl:forged', 'forged', '\x00');
INSERT INTO wallet.entry (txn_id, leg, account_id, amount) VALUES (currval('wallet.txn_id_seq'), 1, :forged, -1),
                                                                 (currval('wallet.txn_id_seq'), 2, :bank, 1);
UPDATE wallet.account SET balance = balance - 1 WHERE id = :forged;
UPDATE wallet.account SET balance = balance + 1 WHERE id = :bank;
SET LOCAL session_replication_role = origin;
SELECT is((SELECT array_agg(check_name::text ORDER BY check_name) FROM wallet.verify() WHERE NOT ok AND check_name NOT LIKE 'audit%'),
          ARRAY['no_forbidden_negative'], 'verify: a negative account that may not go negative is found');
ROLLBACK TO SAVEPOINT tamper;
UPDATE wallet.account SET held = held + 100 WHERE id = :alice;
SELECT is((SELECT array_agg(check_name::text ORDER BY check_name) FROM wallet.verify() WHERE NOT ok AND check_name NOT LIKE 'audit%'),
          ARRAY['holds_consistent'], 'verify: a held amount without its holds is found');
ROLLBACK TO SAVEPOINT tamper;
SELECT is((SELECT bool_and(ok) FROM wallet.verify()), true, 'verify: all good again after the rollback');

SELECT * FROM finish();
ROLLBACK;
