-- wallet.amount functions: constructors, accessors, allocate, split, mul,
-- convert.  Contract: SPEC.md "Money type".

-- ---- wallet.amount(units bigint, currency text) ----
SELECT wallet.amount(1234::bigint, 'USD') AS usd, wallet.amount(-50::bigint, 'eur') AS eur,
       wallet.amount(100::bigint, 'JPY') AS jpy, wallet.amount(1250::bigint, 'BHD') AS bhd,
       wallet.amount(500::bigint, 'COIN') AS coin, wallet.amount(0::bigint, 'Diamond') AS diamond;
SELECT wallet.amount(9223372036854775807, 'USD') AS max_usd,
       wallet.amount((-9223372036854775808)::bigint, 'JPY') AS min_jpy;
SELECT q, sqlstate_of(q) AS result FROM (VALUES
  ($$SELECT wallet.amount(1::bigint, 'XYZ')$$),
  ($$SELECT wallet.amount(1::bigint, 'US')$$),
  ($$SELECT wallet.amount(1::bigint, 'U$D')$$),
  ($$SELECT wallet.amount(1::bigint, ' USD')$$),
  ($$SELECT wallet.amount(1::bigint, '')$$)
) AS t(q);
SELECT wallet.amount(NULL::bigint, 'USD') IS NULL AS null_units,
       wallet.amount(1::bigint, NULL) IS NULL AS null_currency;
-- an untyped integer literal matches both constructors
SELECT sqlstate_of($$SELECT wallet.amount(1234, 'USD')$$) AS int4_literal;

-- ---- wallet.amount(value numeric, currency text): exact or error ----
SELECT wallet.amount(12.3, 'USD') AS "12.3", wallet.amount(12.34, 'USD') AS "12.34",
       wallet.amount(12.340, 'USD') AS "12.340", wallet.amount(12::numeric, 'USD') AS "12",
       wallet.amount(-0.5, 'EUR') AS "-0.5", wallet.amount(100::numeric, 'JPY') AS jpy,
       wallet.amount(1.25, 'BHD') AS bhd, wallet.amount(0.0001, 'CLF') AS clf,
       wallet.amount(500.000, 'coin') AS coin, wallet.amount(-0.00, 'USD') AS neg_zero;
SELECT wallet.amount(92233720368547758.07, 'USD') AS max_usd,
       wallet.amount(-92233720368547758.08, 'USD') AS min_usd,
       wallet.amount(9223372036854775807::numeric, 'JPY') AS max_jpy,
       wallet.amount(-9223372036854775808::numeric, 'JPY') AS min_jpy,
       wallet.amount(1e3, 'USD') AS exponent;
SELECT q, sqlstate_of(q) AS result FROM (VALUES
  ($$SELECT wallet.amount(12.345, 'USD')$$),
  ($$SELECT wallet.amount(-0.001, 'USD')$$),
  ($$SELECT wallet.amount(1.5, 'JPY')$$),
  ($$SELECT wallet.amount(0.5, 'COIN')$$),
  ($$SELECT wallet.amount(1.00001, 'CLF')$$),
  ($$SELECT wallet.amount(0.000000000000000000001, 'USD')$$),
  ($$SELECT wallet.amount('NaN'::numeric, 'USD')$$),
  ($$SELECT wallet.amount('Infinity'::numeric, 'USD')$$),
  ($$SELECT wallet.amount('-Infinity'::numeric, 'USD')$$),
  ($$SELECT wallet.amount(92233720368547758.08, 'USD')$$),
  ($$SELECT wallet.amount(-92233720368547758.09, 'USD')$$),
  ($$SELECT wallet.amount(9223372036854775808::numeric, 'JPY')$$),
  ($$SELECT wallet.amount(-9223372036854775809::numeric, 'JPY')$$),
  ($$SELECT wallet.amount(1e30, 'USD')$$),
  ($$SELECT wallet.amount(-1e30, 'COIN')$$),
  ($$SELECT wallet.amount(1::numeric, 'XYZ')$$),
  ($$SELECT wallet.amount(1::numeric, 'U$D')$$)
) AS t(q);
SELECT wallet.amount(12.345, 'USD');
SELECT wallet.amount('NaN'::numeric, 'USD');
SELECT wallet.amount(92233720368547758.08, 'USD');

-- ---- accessors ----
SELECT a, wallet.units(a) AS units, wallet.currency(a) AS currency,
       wallet.minor_units(a) AS minor_units, wallet.to_numeric(a) AS to_numeric,
       scale(wallet.to_numeric(a)) AS scale,
       wallet.amount(wallet.to_numeric(a), wallet.currency(a)) = a AS numeric_round_trip,
       wallet.amount(wallet.units(a), wallet.currency(a)) = a AS units_round_trip
  FROM (VALUES ('12.34 USD'::wallet.amount), ('12.30 USD'), ('-0.50 EUR'), ('0 USD'),
               ('100 JPY'), ('-7 JPY'), ('1.250 BHD'), ('0.001 BHD'), ('1.5 CLF'),
               ('500 COIN'), ('9 DIAMOND'),
               ('92233720368547758.07 USD'), ('-92233720368547758.08 USD'),
               ('-9223372036854775808 JPY'), ('-922337203685477.5808 CLF')) AS t(a);
SELECT pg_typeof(wallet.units('1 USD')) AS units_type, pg_typeof(wallet.currency('1 USD')) AS currency_type,
       pg_typeof(wallet.minor_units('1 USD')) AS minor_units_type, pg_typeof(wallet.to_numeric('1 USD')) AS to_numeric_type;

-- ---- wallet.allocate(amount, ratios int[]) ----
SELECT wallet.allocate('100 USD', '{1,1,1}') AS thirds;
SELECT wallet.allocate('-100 USD', '{1,1,1}') AS negative_thirds;
SELECT wallet.allocate('1.00 USD', '{1,1,1}') AS one_dollar,
       wallet.allocate('0.02 USD', '{1,1,1}') AS two_cents,
       wallet.allocate('0.05 USD', '{1,1,1,1,1,1}') AS five_over_six;
-- largest remainder first: 0.10 by {3,3,4} -> shares 3, 3, 4 exactly;
-- 0.11 by {1,2} -> exact 3.67/7.33: the 0.67 remainder wins
SELECT wallet.allocate('0.10 USD', '{3,3,4}') AS exact,
       wallet.allocate('0.11 USD', '{1,2}') AS largest_remainder,
       wallet.allocate('0.05 USD', '{1,3}') AS rem_25_75,
       wallet.allocate('0.05 USD', '{3,1}') AS rem_75_25;
-- ties go to the earlier parts
SELECT wallet.allocate('0.01 USD', '{1,1}') AS tie_two,
       wallet.allocate('0.02 USD', '{1,1,1,1}') AS tie_four,
       wallet.allocate('0.07 USD', '{2,1,2,1}') AS tie_mixed;
-- zero ratios get nothing; zero amount; one part
SELECT wallet.allocate('1.00 USD', '{0,1,0,1}') AS zero_ratios,
       wallet.allocate('0.01 USD', '{0,1,1}') AS zero_first,
       wallet.allocate('0 USD', '{1,2,3}') AS zero_amount,
       wallet.allocate('12.34 USD', '{7}') AS one_part,
       wallet.allocate('1 JPY', '{1,1,1}') AS jpy,
       wallet.allocate('10 COIN', '{70,30}') AS coin_70_30;
-- negative amounts mirror positive ones
SELECT wallet.allocate('-0.11 USD', '{1,2}') AS neg_largest_remainder,
       wallet.allocate('-0.01 USD', '{1,1}') AS neg_tie,
       wallet.allocate('-0.07 USD', '{2,1,2,1}') AS neg_tie_mixed;
-- extremes
SELECT wallet.allocate('92233720368547758.07 USD', '{1,1}') AS max_halves;
SELECT wallet.allocate('-92233720368547758.08 USD', '{1,1,1}') AS min_thirds;
SELECT wallet.allocate('-92233720368547758.08 USD', '{1}') AS min_whole,
       wallet.allocate('-92233720368547758.08 USD', '{0,5}') AS min_to_one;
SELECT wallet.allocate('92233720368547758.07 USD', '{2147483647,2147483647,1}') AS huge_ratios;
SELECT cardinality(wallet.allocate('1000.00 USD', array_fill(1, ARRAY[100000]))) AS parts_100000;

-- the parts always add up to the whole, and each part matches a reference
-- largest-remainder allocation (computed here in SQL on the magnitude:
-- truncated shares, leftover units to the largest remainders, ties to the
-- earlier part, sign applied last)
CREATE TEMP TABLE alloc_cases AS
SELECT row_number() OVER () AS case_id, total, ratios
  FROM (SELECT unnest(ARRAY[0, 1, -1, 2, 7, -7, 10, 99, 100, -100, 101, 997, 1000, 12345, -54321,
                            9223372036854775807, -9223372036854775807, -9223372036854775808]::bigint[]) AS total) a,
       (SELECT unnest(ARRAY['{1}', '{1,1}', '{1,1,1}', '{1,2}', '{2,1}', '{1,2,3}', '{3,2,1}',
                            '{0,1}', '{1,0,1}', '{5,5,5,5,5,5,5}', '{7,13,17,19}', '{1,100}',
                            '{100,1,1,1}', '{0,0,3}', '{1,1,1,1,1,1,1,1,1,1,1}',
                            '{2147483647,1}', '{2147483647,2147483647,2147483647}']::text[])::int[] AS ratios) r;
CREATE TEMP TABLE alloc_ref AS
WITH expanded AS (
  SELECT c.case_id, c.total, o.i, o.ratio,
         sum(o.ratio::numeric) OVER (PARTITION BY c.case_id) AS rsum,
         abs(c.total::numeric) AS mag
    FROM alloc_cases c, unnest(c.ratios) WITH ORDINALITY AS o(ratio, i)
), shares AS (
  SELECT *, div(mag * ratio, rsum) AS share, mod(mag * ratio, rsum) AS rem FROM expanded
), ranked AS (
  SELECT *, mag - sum(share) OVER (PARTITION BY case_id) AS leftover,
         row_number() OVER (PARTITION BY case_id ORDER BY rem DESC, i) AS rank
    FROM shares
)
SELECT case_id, i,
       (sign(total::numeric) * (share + CASE WHEN rank <= leftover THEN 1 ELSE 0 END))::bigint AS units
  FROM ranked;
CREATE TEMP TABLE alloc_got AS
SELECT c.case_id, c.total, p.i, wallet.units(p.part) AS units
  FROM alloc_cases c,
       unnest(wallet.allocate(wallet.amount(c.total, 'JPY'), c.ratios)) WITH ORDINALITY AS p(part, i);
SELECT count(*) AS cases,
       count(*) FILTER (WHERE got_sum = total) AS sums_match
  FROM (SELECT c.case_id, c.total, (SELECT sum(g.units::numeric) FROM alloc_got g WHERE g.case_id = c.case_id) AS got_sum
          FROM alloc_cases c) s;
SELECT count(*) AS parts, count(*) FILTER (WHERE g.units = r.units) AS match_reference
  FROM alloc_got g JOIN alloc_ref r USING (case_id, i);
SELECT c.total, c.ratios, g.i, g.units AS got, r.units AS expected
  FROM alloc_got g JOIN alloc_ref r USING (case_id, i) JOIN alloc_cases c USING (case_id)
 WHERE g.units IS DISTINCT FROM r.units ORDER BY c.case_id, g.i LIMIT 10;
-- also via sum(): the parts sum to the whole amount, in the amount's currency
SELECT count(*) AS checked,
       count(*) FILTER (WHERE (SELECT sum(p) FROM unnest(wallet.allocate(a, r)) p) = a) AS sum_is_whole
  FROM (SELECT wallet.amount(n::bigint * 37 - 1500, 'USD') AS a FROM generate_series(0, 80) n) am,
       (SELECT ARRAY[1 + k % 3, k % 5, 1 + k % 7, k] AS r FROM generate_series(0, 20) k) rt;
-- errors
SELECT q, sqlstate_of(q) AS result FROM (VALUES
  ($$SELECT wallet.allocate('1 USD', '{}')$$),
  ($$SELECT wallet.allocate('1 USD', '{0}')$$),
  ($$SELECT wallet.allocate('1 USD', '{0,0,0}')$$),
  ($$SELECT wallet.allocate('1 USD', '{1,-1}')$$),
  ($$SELECT wallet.allocate('1 USD', '{-1,-1}')$$),
  ($$SELECT wallet.allocate('1 USD', '{1,NULL}')$$),
  ($$SELECT wallet.allocate('1 USD', '{NULL}')$$),
  ($$SELECT wallet.allocate('1 USD', array_fill(1, ARRAY[100001]))$$)
) AS t(q);
SELECT wallet.allocate('1 USD', '{1,-1}');
SELECT wallet.allocate('1 USD', '{0,0}');
SELECT wallet.allocate(NULL, '{1,1}') IS NULL AS null_amount,
       wallet.allocate('1 USD', NULL) IS NULL AS null_ratios;

-- ---- wallet.split(amount, parts) ----
SELECT wallet.split('1.00 USD', 3) AS thirds, wallet.split('-1.00 USD', 3) AS neg_thirds,
       wallet.split('0.02 USD', 5) AS two_cents, wallet.split('10 COIN', 1) AS one,
       wallet.split('0 JPY', 2) AS zero, wallet.split('100 USD', 4) AS even;
SELECT wallet.split('-92233720368547758.08 USD', 2) AS min_halves,
       wallet.split('92233720368547758.07 USD', 2) AS max_halves;
SELECT n, (SELECT sum(p) FROM unnest(wallet.split('10.00 USD', n)) p) AS total,
       (SELECT max(p) - min(p) FROM unnest(wallet.split('10.00 USD', n)) p) AS spread
  FROM (VALUES (1), (3), (7), (999), (1001), (100000)) AS t(n);
SELECT q, sqlstate_of(q) AS result FROM (VALUES
  ($$SELECT wallet.split('1 USD', 0)$$),
  ($$SELECT wallet.split('1 USD', -1)$$),
  ($$SELECT wallet.split('1 USD', -2147483648)$$),
  ($$SELECT wallet.split('1 USD', 100001)$$)
) AS t(q);
SELECT wallet.split('1 USD', 0);

-- ---- wallet.mul(amount, factor, rounding default 'half_even') ----
-- 1.00 USD x 0.125 = 0.125 (tie), x 0.135 = 0.135 (tie, odd below),
-- x 0.126 and x 0.124 (no tie); the same negated
SELECT f AS factor, m AS mode,
       wallet.mul('1.00 USD', f, m) AS positive, wallet.mul('-1.00 USD', f, m) AS negative
  FROM (VALUES (0.125), (0.135), (0.126), (0.124), (0.121), (0.129)) AS fs(f),
       unnest(ARRAY['half_even', 'half_up', 'down', 'floor', 'ceiling']) AS m
 ORDER BY f, array_position(ARRAY['half_even', 'half_up', 'down', 'floor', 'ceiling'], m);
SELECT wallet.mul('1.00 USD', 0.125) AS default_mode_tie_even,
       wallet.mul('1.00 USD', 0.135) AS default_mode_tie_odd,
       wallet.mul('-1.00 USD', 0.125) AS default_neg;
SELECT wallet.mul('12.34 USD', 1) AS one, wallet.mul('12.34 USD', 0) AS zero,
       wallet.mul('12.34 USD', -1) AS minus_one, wallet.mul('12.34 USD', 2.5) AS exact,
       wallet.mul('1 JPY', 0.5) AS jpy_tie, wallet.mul('3 JPY', 0.5) AS jpy_tie_odd,
       wallet.mul('1.001 BHD', 0.5, 'half_up') AS bhd, wallet.mul('7 COIN', 1.5, 'floor') AS coin,
       wallet.mul('0.01 USD', 0.0000000000000000000001, 'ceiling') AS tiny_ceiling,
       wallet.mul('-0.01 USD', 0.0000000000000000000001, 'floor') AS tiny_floor,
       wallet.mul('0.01 USD', 0.0000000000000000000001) AS tiny_half_even;
SELECT wallet.mul('92233720368547758.07 USD', 1) AS max_times_one,
       wallet.mul('92233720368547758.07 USD', -1) AS max_neg,
       wallet.mul('92233720368547758.07 USD', 0.5, 'down') AS max_half,
       wallet.mul('-92233720368547758.08 USD', 0.5) AS min_half,
       wallet.mul('-92233720368547758.07 USD', 1.0000000000000000001, 'down') AS min_edge_down;
SELECT q, sqlstate_of(q) AS result FROM (VALUES
  ($$SELECT wallet.mul('1 USD', 1.5, 'HALF_EVEN')$$),
  ($$SELECT wallet.mul('1 USD', 1.5, 'bankers')$$),
  ($$SELECT wallet.mul('1 USD', 1.5, '')$$),
  ($$SELECT wallet.mul('1 USD', 1.5, 'half_down')$$),
  ($$SELECT wallet.mul('1 USD', 'NaN')$$),
  ($$SELECT wallet.mul('1 USD', 'Infinity')$$),
  ($$SELECT wallet.mul('1 USD', '-Infinity')$$),
  ($$SELECT wallet.mul('92233720368547758.07 USD', 2)$$),
  ($$SELECT wallet.mul('92233720368547758.07 USD', 1.0000000000000000001, 'ceiling')$$),
  ($$SELECT wallet.mul('-92233720368547758.08 USD', -1)$$),
  ($$SELECT wallet.mul('-92233720368547758.08 USD', 1.0000000000000000001, 'down')$$),
  ($$SELECT wallet.mul('1 JPY', 1e30)$$)
) AS t(q);
SELECT wallet.mul('1 USD', 1.5, 'bankers');
-- a long unknown name is shown cut to 64 characters, not echoed whole
SELECT public.sqlstate_of($$SELECT wallet.mul('1 USD', 1, repeat('x', 100000))$$) AS long_mode;
SELECT public.sqlstate_of($$SELECT wallet.convert('1 USD', 1, 'EUR', repeat('y', 100000))$$) AS long_mode;
SELECT wallet.mul('92233720368547758.07 USD', 2);
SELECT wallet.mul('1 USD', NULL) IS NULL AS null_factor,
       wallet.mul('1 USD', 1, NULL) IS NULL AS null_rounding;

-- ---- wallet.convert(amount, rate, to_currency, rounding default 'half_even') ----
-- USD (2) -> JPY (0): 1.00 USD at 150.5 = 150.5 JPY (tie)
SELECT m AS mode, wallet.convert('1.00 USD', 150.5, 'JPY', m) AS usd_jpy,
       wallet.convert('-1.00 USD', 150.5, 'JPY', m) AS neg_usd_jpy,
       wallet.convert('1.00 USD', 151.5, 'JPY', m) AS usd_jpy_odd,
       wallet.convert('1.00 USD', 150.7, 'JPY', m) AS usd_jpy_non_tie,
       wallet.convert('-1.00 USD', 150.7, 'JPY', m) AS neg_non_tie
  FROM unnest(ARRAY['half_even', 'half_up', 'down', 'floor', 'ceiling']) AS m;
-- JPY (0) -> BHD (3): 1 JPY at 0.0025 = 0.0025 BHD (tie at 2.5 fils)
SELECT m AS mode, wallet.convert('100 JPY', 0.0025, 'BHD', m) AS exact,
       wallet.convert('1 JPY', 0.0025, 'BHD', m) AS tie,
       wallet.convert('-1 JPY', 0.0025, 'BHD', m) AS neg_tie,
       wallet.convert('1 JPY', 0.00261, 'BHD', m) AS non_tie,
       wallet.convert('-3 JPY', 0.0025, 'BHD', m) AS neg_tie_odd
  FROM unnest(ARRAY['half_even', 'half_up', 'down', 'floor', 'ceiling']) AS m;
-- USD (2) -> COIN (0): 0.15 USD at 7 coins per dollar = 1.05 COIN
SELECT m AS mode, wallet.convert('1.00 USD', 7, 'COIN', m) AS exact,
       wallet.convert('0.15 USD', 7, 'COIN', m) AS non_tie,
       wallet.convert('0.50 USD', 1, 'coin', m) AS tie_zero,
       wallet.convert('1.50 USD', 1, 'COIN', m) AS tie_one
  FROM unnest(ARRAY['half_even', 'half_up', 'down', 'floor', 'ceiling']) AS m;
SELECT wallet.convert('12.34 USD', 1, 'USD') AS same_currency,
       wallet.convert('12.34 USD', 0.92, 'EUR') AS usd_eur,
       wallet.convert('100 COIN', 5, 'DIAMOND') AS coin_diamond,
       wallet.convert('1 JPY', 0.0001, 'CLF') AS jpy_clf,
       wallet.convert('1.250 BHD', 2.65, 'usd') AS bhd_usd,
       wallet.convert('0.01 USD', 0.4, 'EUR') AS rounds_to_zero,
       wallet.convert('1.00 USD', 150.5, 'JPY') AS default_mode;
SELECT wallet.convert('92233720368547758.07 USD', 1, 'EUR') AS max_same_scale,
       wallet.convert('-9223372036854775808 JPY', 0.01, 'USD') AS min_jpy_to_usd,
       wallet.convert('92233720368547758.07 USD', 100, 'COIN') AS max_usd_to_coin;
SELECT q, sqlstate_of(q) AS result FROM (VALUES
  ($$SELECT wallet.convert('1 USD', 0, 'EUR')$$),
  ($$SELECT wallet.convert('1 USD', -1.5, 'EUR')$$),
  ($$SELECT wallet.convert('1 USD', 'NaN', 'EUR')$$),
  ($$SELECT wallet.convert('1 USD', 'Infinity', 'EUR')$$),
  ($$SELECT wallet.convert('1 USD', 1, 'XYZ')$$),
  ($$SELECT wallet.convert('1 USD', 1, 'xyz')$$),
  ($$SELECT wallet.convert('1 USD', 1, 'U$')$$),
  ($$SELECT wallet.convert('1 USD', 1, 'EUR', 'nearest')$$),
  ($$SELECT wallet.convert('92233720368547758.07 USD', 1000, 'JPY')$$),
  ($$SELECT wallet.convert('92233720368547758.07 USD', 2, 'USD')$$),
  ($$SELECT wallet.convert('-92233720368547758.08 USD', 1.5, 'EUR')$$),
  ($$SELECT wallet.convert('92233720368547758.07 USD', 10, 'BHD')$$),
  ($$SELECT wallet.convert('1 JPY', 1e30, 'USD')$$)
) AS t(q);
SELECT wallet.convert('1 USD', 0, 'EUR');
SELECT wallet.convert('1 USD', 1, 'XYZ');
SELECT wallet.convert('92233720368547758.07 USD', 1000, 'JPY');
SELECT wallet.convert('1 USD', NULL, 'EUR') IS NULL AS null_rate,
       wallet.convert('1 USD', 1, NULL) IS NULL AS null_currency;
