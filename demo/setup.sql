-- demo/setup.sql — the cast of the live stream (run by demo/demo.sh with
-- psql -v tag=RUN_TAG -v viewers=N).  Opens N viewers (COIN) in eight
-- regions, each with its store's price list in the account metadata, gives
-- each one to three recharges through apple / google / web, and opens
-- three creators (DIAMOND); the star is marked hot.
\set ON_ERROR_STOP on

-- Store price lists per region: coins per pack and the local price.
-- (Web prices are the store prices less the 15–30 % store fee.)
WITH region(n, country, currency, p70, p350, p1400, p7000) AS (VALUES
        (0, 'US', 'USD', '0.99', '4.99', '19.99', '99.99'),
        (1, 'DE', 'EUR', '0.99', '4.99', '19.99', '99.99'),
        (2, 'GB', 'GBP', '0.89', '4.49', '17.99', '89.99'),
        (3, 'JP', 'JPY', '160', '800', '3200', '16000'),
        (4, 'BR', 'BRL', '5.90', '27.90', '109.90', '549.90'),
        (5, 'IN', 'INR', '89.00', '449.00', '1799.00', '8999.00'),
        (6, 'KR', 'KRW', '1400', '6900', '27000', '135000'),
        (7, 'ID', 'IDR', '16000.00', '79000.00', '319000.00', '1599000.00')),
     channel(n, name) AS (VALUES (0, 'apple'), (1, 'google'), (2, 'web')),
     viewer AS (
        SELECT i, r.country, r.currency, ch.name AS channel,
               jsonb_build_object(
                   '70',   wallet.mul(wallet.amount(r.p70::numeric, r.currency),   CASE WHEN ch.name = 'web' THEN 0.8 ELSE 1 END)::text,
                   '350',  wallet.mul(wallet.amount(r.p350::numeric, r.currency),  CASE WHEN ch.name = 'web' THEN 0.8 ELSE 1 END)::text,
                   '1400', wallet.mul(wallet.amount(r.p1400::numeric, r.currency), CASE WHEN ch.name = 'web' THEN 0.8 ELSE 1 END)::text,
                   '7000', wallet.mul(wallet.amount(r.p7000::numeric, r.currency), CASE WHEN ch.name = 'web' THEN 0.8 ELSE 1 END)::text) AS packs
          FROM generate_series(1, :viewers) i
          JOIN region r ON r.n = i % 8
          JOIN channel ch ON ch.n = (i / 8) % 3)
SELECT count(*) AS "viewers opened"
  FROM (SELECT wallet.open_account(format('viewer:%s:%s', :'tag', v.i), 'COIN', 'user', false,
                                   jsonb_build_object('country', v.country, 'currency', v.currency,
                                                      'channel', v.channel, 'packs', v.packs))
          FROM viewer v ORDER BY v.i) s;

-- Everyone buys one to three packs before the stream starts.
SELECT count(*) AS "recharges", sum(wallet.units(coins)) AS "coins sold",
       string_agg(DISTINCT channel, ', ') AS channels,
       string_agg(DISTINCT wallet.currency(paid), ', ') AS currencies
  FROM (SELECT wallet.recharge(a.id, wallet.amount(p.coins, 'COIN'),
                               (a.metadata -> 'packs' ->> p.coins::text)::wallet.amount,
                               a.metadata ->> 'channel',
                               format('%s-%s-%s-%s', upper(a.metadata ->> 'channel'), :'tag',
                                      split_part(a.owner, ':', 3), k)) AS tx,
               wallet.amount(p.coins, 'COIN') AS coins, a.metadata ->> 'channel' AS channel,
               (a.metadata -> 'packs' ->> p.coins::text)::wallet.amount AS paid
          FROM wallet.account a
          CROSS JOIN LATERAL generate_series(1, 1 + split_part(a.owner, ':', 3)::int % 3) k
          CROSS JOIN LATERAL (SELECT (ARRAY[70, 350, 350, 1400, 1400, 7000])
                                     [1 + (hashtext(a.owner || k) & 1023) % 6]::bigint AS coins) p
         WHERE a.owner LIKE format('viewer:%s:%%', :'tag') AND a.kind = 'user'
         ORDER BY a.id, k) s;

-- Three creators; the star gets most gifts, so her account is hot.
SELECT wallet.open_account(format('creator:%s:luna', :'tag'), 'DIAMOND') AS star,
       wallet.open_account(format('creator:%s:kai', :'tag'), 'DIAMOND') AS kai,
       wallet.open_account(format('creator:%s:mia', :'tag'), 'DIAMOND') AS mia \gset
SELECT wallet.set_hot(:star);
SELECT owner, currency, hot FROM wallet.account WHERE id IN (:star, :kai, :mia) ORDER BY id;
