-- Live-streaming flows (ext/install/60_live.sql): setup, recharge, gift,
-- withdrawals, refunds with debt, the report.  Account and transaction ids
-- depend on the suites that ran before, so they are \gset and never shown;
-- error messages show them as '#'.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(public.sqlstate_of(q),
                          '(account|transaction|Transaction|hold|Hold|order) "?[0-9]+"?', '\1 #', 'g')
$$;
-- the legs of a transaction, by account owner
CREATE FUNCTION pg_temp.legs(t bigint) RETURNS TABLE (owner text, kind text, amount wallet.amount)
LANGUAGE sql AS $$
    SELECT a.owner, a.kind, e.amount FROM wallet.entries e JOIN wallet.account a ON a.id = e.account_id
     WHERE e.txn_id = t ORDER BY e.leg
$$;

-- ---- before setup: every flow says so (55000) ----
SELECT pg_temp.err('SELECT wallet.gift(1, 2, ''1 COIN'', ''k'')');
SELECT pg_temp.err('SELECT * FROM wallet.live_report()');

-- ---- live_setup: bad arguments ----
SELECT pg_temp.err('SELECT wallet.live_setup(NULL)');
SELECT pg_temp.err('SELECT wallet.live_setup(''COIN'', ''DIAMOND'', NULL)');
SELECT pg_temp.err('SELECT wallet.live_setup(''COIN'', ''DIAMOND'', 1.5)');
SELECT pg_temp.err('SELECT wallet.live_setup(''COIN'', ''DIAMOND'', -0.1)');
SELECT pg_temp.err('SELECT wallet.live_setup(''COIN'', ''coin'')');
SELECT pg_temp.err('SELECT wallet.live_setup(''USD'', ''DIAMOND'')');
SELECT pg_temp.err('SELECT wallet.live_setup(''CO IN'', ''DIAMOND'')');
BEGIN;
SELECT wallet.add_currency('CENTCOIN', 2, 'coin with cents');
SELECT pg_temp.err('SELECT wallet.live_setup(''CENTCOIN'', ''DIAMOND'')');
ROLLBACK;
SELECT count(*) AS live_rows FROM wallet.live_config;

-- ---- live_setup: COIN and DIAMOND exist already (00_setup) with 0 decimals ----
SELECT coin_currency, diamond_currency, creator_share, cash_accounts FROM wallet.live_setup();
SELECT a.owner, a.currency, a.kind, a.allow_negative, a.hot, a.balance
  FROM wallet.accounts a, wallet.live_config c
 WHERE a.id IN (c.coin_issuance, c.coin_revenue, c.diamond_issuance, c.payout_clearing)
 ORDER BY a.id;
-- again: nothing new; a new share replaces the old one; units never change
SELECT count(*) AS accounts_before FROM wallet.account \gset
SELECT creator_share FROM wallet.live_setup();
SELECT creator_share FROM wallet.live_setup('coin', 'diamond', 0.6);
SELECT count(*) - :accounts_before AS new_accounts, (SELECT count(*) FROM wallet.live_config) AS live_rows
  FROM wallet.account;
SELECT pg_temp.err('SELECT wallet.live_setup(''COIN'', ''GEM'')');
SELECT creator_share FROM wallet.live_setup(creator_share => 0.5);

SELECT coin_issuance AS coin_iss, coin_revenue AS coin_rev, diamond_issuance AS dia_iss,
       payout_clearing AS payout
  FROM wallet.live_config \gset

-- ---- the cast ----
SELECT wallet.open_account('viewer1', 'COIN') AS v1,
       wallet.open_account('viewer2', 'COIN') AS v2,
       wallet.open_account('viewer3', 'COIN') AS v3,
       wallet.open_account('creator1', 'DIAMOND') AS c1,
       wallet.open_account('creator2', 'DIAMOND') AS c2,
       wallet.open_account('euros', 'EUR') AS eur \gset
SELECT wallet.set_hot(:c1);

-- ---- recharge ----
SELECT count(*) AS txns_before FROM wallet.txn \gset
SELECT wallet.recharge(:v1, '500 COIN', '4.99 USD', 'apple', 'A-1001') AS r1 \gset
SELECT * FROM pg_temp.legs(:r1);
SELECT kind, idempotency_key, metadata - 'account' AS metadata, (metadata ->> 'account')::bigint = :v1 AS account_ok
  FROM wallet.txn WHERE id = :r1;
-- the cash:USD / sales:USD accounts were opened on first use
SELECT a.owner, a.kind, a.allow_negative, a.hot
  FROM wallet.account a, wallet.live_config c
 WHERE a.id IN ((c.cash_accounts -> 'USD' ->> 'cash')::bigint, (c.cash_accounts -> 'USD' ->> 'sales')::bigint)
 ORDER BY a.id;
-- a replay returns the first transaction and posts nothing
SELECT wallet.recharge(:v1, '500 COIN', '4.99 USD', 'apple', 'A-1001') = :r1 AS same_id;
SELECT count(*) - :txns_before AS txns_posted, wallet.balance(:v1) FROM wallet.txn;
-- the same order id with another request: WL006; another channel is another order
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''600 COIN'', ''4.99 USD'', ''apple'', ''A-1001'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''500 COIN'', ''5.99 USD'', ''apple'', ''A-1001'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''500 COIN'', ''4.99 USD'', ''apple'', ''A-1001'')', :v2));
SELECT wallet.recharge(:v1, '1000 COIN', '9.49 EUR', 'google', 'A-1001') <> :r1 AS new_order;
SELECT wallet.balance(:v1);
-- bad input
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, NULL, ''1 USD'', ''web'', ''x'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''1 COIN'', ''1 USD'', NULL, ''x'')', :v1));
-- a channel past 64 bytes is shown cut to 64, not echoed whole
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''1 COIN'', ''1 USD'', repeat(''c'', 100000), ''x'')', :v1));
SELECT pg_temp.err('SELECT wallet.recharge(NULL, ''1 COIN'', ''1 USD'', ''web'', ''x'')');
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''1 DIAMOND'', ''1 USD'', ''web'', ''x'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''0 COIN'', ''1 USD'', ''web'', ''x'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''-5 COIN'', ''1 USD'', ''web'', ''x'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''5 COIN'', ''5 COIN'', ''web'', ''x'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''5 COIN'', ''0.00 USD'', ''web'', ''x'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''5 COIN'', ''-1.00 USD'', ''web'', ''x'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''5 COIN'', ''1 USD'', '''', ''x'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''5 COIN'', ''1 USD'', ''we:b'', ''x'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''5 COIN'', ''1 USD'', ''web'', '''')', :v1));
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''5 COIN'', ''1 USD'', ''web'', repeat(''x'', 121))', :v1));
SELECT pg_temp.err('SELECT wallet.recharge(-1, ''5 COIN'', ''1 USD'', ''web'', ''x'')');
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''5 COIN'', ''1 USD'', ''web'', ''x'')', :c1));
SELECT wallet.freeze_account(:v3);
SELECT pg_temp.err(format('SELECT wallet.recharge(%s, ''5 COIN'', ''1 USD'', ''web'', ''x'')', :v3));
SELECT wallet.unfreeze_account(:v3);
SELECT count(*) - :txns_before AS txns_posted FROM wallet.txn;

-- ---- gift: floor(coins x share) diamonds, platform keeps the rest ----
SELECT wallet.gift(:v1, :c1, '7 COIN', 'gift-1', '{"stream": "s-42", "gift": "rose"}') AS g1 \gset
SELECT * FROM pg_temp.legs(:g1);
SELECT kind, metadata - 'creator' AS metadata, (metadata ->> 'creator')::bigint = :c1 AS creator_ok
  FROM wallet.txn WHERE id = :g1;
-- the hot creator's balance is exact at once
SELECT wallet.balance(:c1), wallet.available(:c1), wallet.balance(:v1);
-- 1 coin x 0.5 = 0 diamonds: no diamond legs
SELECT wallet.gift(:v1, :c2, '1 COIN', 'gift-2') AS g2 \gset
SELECT * FROM pg_temp.legs(:g2);
-- retries return the first gift, also after the share changed
SELECT wallet.gift(:v1, :c1, '7 COIN', 'gift-1', '{"gift": "rose", "stream": "s-42"}') = :g1 AS same_id;
SELECT creator_share FROM wallet.live_setup(creator_share => 0.6);
SELECT wallet.gift(:v1, :c1, '7 COIN', 'gift-1', '{"gift": "rose", "stream": "s-42"}') = :g1 AS same_id;
SELECT wallet.gift(:v1, :c1, '7 COIN', 'gift-3') AS g3 \gset
SELECT * FROM pg_temp.legs(:g3);
SELECT creator_share FROM wallet.live_setup(creator_share => 0.5);
-- the key reused for another gift: WL006
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''8 COIN'', ''gift-1'', ''{"gift": "rose", "stream": "s-42"}'')', :v1, :c1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''7 COIN'', ''gift-1'', ''{"gift": "rose", "stream": "s-42"}'')', :v1, :c2));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''7 COIN'', ''gift-1'')', :v1, :c1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''7 COIN'', ''gift-1'', ''{"gift": "rose", "stream": "s-42"}'')', :v2, :c1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''7 COIN'', %L)', :v1, :c1, 'wallet:recharge:apple:A-1001'));
-- bad input
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, NULL, ''k'')', :v1, :c1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''1 COIN'', NULL)', :v1, :c1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''1 COIN'', '''')', :v1, :c1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''0 COIN'', ''k'')', :v1, :c1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''-3 COIN'', ''k'')', :v1, :c1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''3 DIAMOND'', ''k'')', :v1, :c1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''3 COIN'', ''k'', ''[1]'')', :v1, :c1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''3 COIN'', ''k'')', :c2, :c1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''3 COIN'', ''k'')', :v1, :v2));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''1 COIN'', ''k'')', :v1, :v2));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''1 COIN'', ''k'')', :v1, :eur));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, -1, ''3 COIN'', ''k'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, -1, ''1 COIN'', ''k'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''3 COIN'', ''k'')', :v3, :c1));
SELECT wallet.freeze_account(:c2);
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''1 COIN'', ''k'')', :v1, :c2));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''3 COIN'', ''k'')', :v1, :c2));
SELECT wallet.unfreeze_account(:c2);
SELECT wallet.balance(:v1), wallet.balance(:c1), wallet.balance(:c2);

-- ---- withdrawals ----
SELECT wallet.gift(:v1, :c2, '40 COIN', 'gift-4') IS NOT NULL AS ok;
SELECT wallet.request_withdrawal(:c1, '5 DIAMOND', 'wd-1') AS w1 \gset
SELECT wallet.request_withdrawal(:c1, '5 DIAMOND', 'wd-1') = :w1 AS same_hold;
SELECT kind, status, amount, to_account = :payout AS to_payout FROM wallet.holds WHERE id = :w1;
SELECT wallet.balance(:c1), wallet.available(:c1);
SELECT wallet.complete_withdrawal(:w1) AS wt1 \gset
SELECT * FROM pg_temp.legs(:wt1);
SELECT (SELECT kind FROM wallet.txn WHERE id = :wt1), wallet.balance(:c1), wallet.available(:c1),
       wallet.balance(:payout);
SELECT wallet.complete_withdrawal(:w1) = :wt1 AS same_txn;
SELECT pg_temp.err(format('SELECT wallet.cancel_withdrawal(%s)', :w1));
SELECT wallet.request_withdrawal(:c2, '20 DIAMOND', 'wd-2') AS w2 \gset
SELECT wallet.balance(:c2), wallet.available(:c2);
SELECT pg_temp.err(format('SELECT wallet.request_withdrawal(%s, ''1 DIAMOND'', ''wd-3'')', :c2));
SELECT wallet.cancel_withdrawal(:w2);
SELECT wallet.cancel_withdrawal(:w2);
SELECT status, wallet.balance(:c2), wallet.available(:c2) FROM wallet.holds WHERE id = :w2;
SELECT pg_temp.err(format('SELECT wallet.complete_withdrawal(%s)', :w2));
-- not a withdrawal, unknown, bad input
SELECT wallet.hold(:v1, :coin_rev, '5 COIN', 'plain-hold') AS ph \gset
SELECT pg_temp.err(format('SELECT wallet.complete_withdrawal(%s)', :ph));
SELECT pg_temp.err(format('SELECT wallet.cancel_withdrawal(%s)', :ph));
SELECT wallet.void(:ph);
SELECT wallet.hold(:c2, :payout, '1 DIAMOND', 'not-a-withdrawal') AS ph2 \gset
SELECT pg_temp.err(format('SELECT wallet.complete_withdrawal(%s)', :ph2));
SELECT wallet.void(:ph2);
SELECT pg_temp.err('SELECT wallet.complete_withdrawal(-1)');
SELECT pg_temp.err('SELECT wallet.cancel_withdrawal(-1)');
SELECT pg_temp.err('SELECT wallet.complete_withdrawal(NULL)');
SELECT pg_temp.err('SELECT wallet.cancel_withdrawal(NULL)');
SELECT pg_temp.err(format('SELECT wallet.request_withdrawal(%s, ''1000 DIAMOND'', ''wd-4'')', :c2));
SELECT pg_temp.err(format('SELECT wallet.request_withdrawal(%s, ''1 COIN'', ''wd-4'')', :c2));
SELECT pg_temp.err(format('SELECT wallet.request_withdrawal(%s, ''0 DIAMOND'', ''wd-4'')', :c2));
SELECT pg_temp.err(format('SELECT wallet.request_withdrawal(%s, ''1 DIAMOND'', ''wd-4'')', :v1));
SELECT pg_temp.err(format('SELECT wallet.request_withdrawal(%s, ''1 DIAMOND'', NULL)', :c2));
SELECT pg_temp.err('SELECT wallet.request_withdrawal(NULL, ''1 DIAMOND'', ''wd-4'')');
SELECT pg_temp.err(format('SELECT wallet.request_withdrawal(%s, ''2 DIAMOND'', ''wd-1'')', :c1));

-- ---- refund of a recharge whose coins were partly spent: debt ----
SELECT wallet.recharge(:v2, '50 COIN', '0.49 USD', 'web', 'W-7') AS r2 \gset
SELECT wallet.gift(:v2, :c1, '30 COIN', 'gift-5') IS NOT NULL AS ok;
SELECT wallet.refund_recharge(:r2, 'chargeback') AS f2 \gset
SELECT * FROM pg_temp.legs(:f2);
SELECT kind, idempotency_key = 'wallet:refund:' || :r2 AS key_ok, metadata - 'refunds' - 'account' AS metadata,
       (metadata ->> 'refunds')::bigint = :r2 AS refunds_ok
  FROM wallet.txn WHERE id = :f2;
SELECT a.kind, a.owner, a.allow_negative, a.hot, a.id = u.debt_account AS linked
  FROM wallet.account a JOIN wallet.account u ON u.id = :v2
 WHERE a.owner = 'viewer2' ORDER BY a.id;
SELECT balance, available, held, debt FROM wallet.accounts WHERE id = :v2;
SELECT wallet.balance(:v2), wallet.available(:v2);
-- a second refund of the same recharge returns the first
SELECT wallet.refund_recharge(:r2, 'again') = :f2 AS same_id;
-- spending is blocked while the debt is outstanding
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''1 COIN'', ''gift-6'')', :v2, :c1));
-- the next recharges repay the debt first: all of it ...
SELECT wallet.recharge(:v2, '20 COIN', '0.19 USD', 'web', 'W-8') AS r3 \gset
SELECT * FROM pg_temp.legs(:r3);
SELECT balance, available, debt FROM wallet.accounts WHERE id = :v2;
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''1 COIN'', ''gift-6'')', :v2, :c1));
-- ... then the rest of the debt, the remainder to the user
SELECT wallet.recharge(:v2, '100 COIN', '0.99 USD', 'web', 'W-9') AS r4 \gset
SELECT * FROM pg_temp.legs(:r4);
SELECT metadata ->> 'debt_repaid' AS debt_repaid FROM wallet.txn WHERE id = :r4;
SELECT balance, available, debt FROM wallet.accounts WHERE id = :v2;
-- the platform's cash and sales accounts and a user's debt account are
-- no gift's viewer or creator: 22023, as for recharge and withdrawals
-- (1.6.0's first build answered WL002, the currency mismatch)
SELECT (cash_accounts -> 'USD' ->> 'cash') AS cash, (cash_accounts -> 'USD' ->> 'sales') AS sales
  FROM wallet.live_config \gset
SELECT debt_account AS debt2 FROM wallet.account WHERE id = :v2 \gset
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''2 COIN'', ''k'')', :cash, :c1));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''2 COIN'', ''k'')', :v1, :sales));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''2 COIN'', ''k'')', :v1, :debt2));
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''2 COIN'', ''k'')', :debt2, :c1));
SELECT wallet.gift(:v2, :c1, '1 COIN', 'gift-6') IS NOT NULL AS gift_ok;
-- a refund the coins on hand cover: no debt leg, no debt account
SELECT wallet.recharge(:v3, '10 COIN', '0.10 EUR', 'google', 'G-1') AS r5 \gset
SELECT wallet.refund_recharge(:r5, NULL) AS f5 \gset
SELECT * FROM pg_temp.legs(:f5);
SELECT debt_account IS NULL AS no_debt_account, wallet.balance(:v3) FROM wallet.account WHERE id = :v3;
-- held coins are not taken; a later refund settles the debt from freed coins
SELECT wallet.recharge(:v3, '10 COIN', '0.10 EUR', 'google', 'G-2') AS r6 \gset
SELECT wallet.recharge(:v3, '10 COIN', '0.10 EUR', 'google', 'G-3') AS r7 \gset
SELECT wallet.hold(:v3, :coin_rev, '15 COIN', 'v3-hold') AS h3 \gset
SELECT wallet.refund_recharge(:r6, 'refund') AS f6 \gset
SELECT * FROM pg_temp.legs(:f6);
SELECT balance, available, held, debt FROM wallet.accounts WHERE id = :v3;
SELECT wallet.void(:h3);
-- coins on hand, but a debt: spending is still blocked
SELECT balance, available, held, debt FROM wallet.accounts WHERE id = :v3;
SELECT pg_temp.err(format('SELECT wallet.gift(%s, %s, ''1 COIN'', ''gift-7'')', :v3, :c1));
SELECT pg_temp.err(format('SELECT wallet.hold(%s, %s, ''1 COIN'', ''v3-hold-2'')', :v3, :coin_rev));
SELECT wallet.refund_recharge(:r7, 'refund') AS f7 \gset
SELECT * FROM pg_temp.legs(:f7);
SELECT balance, available, held, debt FROM wallet.accounts WHERE id = :v3;
-- the platform's cash follows the refunds
SELECT a.owner, a.balance FROM wallet.accounts a
 WHERE a.owner LIKE 'platform:cash:%' OR a.owner LIKE 'platform:sales:%' ORDER BY a.owner;
-- not a recharge, unknown, null, too long a reason
SELECT pg_temp.err(format('SELECT wallet.refund_recharge(%s, ''x'')', :g1));
SELECT pg_temp.err(format('SELECT wallet.refund_recharge(%s, ''x'')', :f2));
SELECT pg_temp.err('SELECT wallet.refund_recharge(-1, ''x'')');
SELECT pg_temp.err('SELECT wallet.refund_recharge(NULL, ''x'')');
SELECT pg_temp.err(format('SELECT wallet.refund_recharge(%s, repeat(''x'', 1001))', :r1));

-- ---- the report and the invariants ----
SELECT section, item, value FROM wallet.live_report()
 WHERE item IN ('conserved') OR (section = 'activity' AND item LIKE 'holds withdrawal%')
 ORDER BY section, item;
SELECT count(*) AS verify_rows_failed FROM wallet.live_report() WHERE section = 'verify' AND value <> 'ok';
SELECT bool_and(ok) AS verify_ok FROM wallet.verify();
