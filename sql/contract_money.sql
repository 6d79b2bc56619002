-- contract_money: SPEC.md "Contract v1 / Money type", item by item, from
-- the contract's side (a reviewer's file, independent of the amount_*
-- files): text and binary I/O, the registry as the type sees it,
-- constructors and accessors, every operator with its overflow and
-- mixed-currency behaviour, the btree/hash operator classes, abs/sign,
-- sum/min/max (empty set, NULLs, parallel, window), allocate/split
-- remainder rules, mul/convert in every rounding mode for both signs.
-- Only pure functions: no sequence, table or registry row of the wallet is
-- touched, so later files see the database as 00_setup left it.
-- Errors are shown by SQLSTATE only (messages are not part of the contract).

-- st(q): the first column of q's first row as text, or the SQLSTATE
CREATE FUNCTION pg_temp.st(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE q INTO r;
    RETURN coalesce(r, '<null>');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

-- ---- text form: the contract's examples, exact minor units on output ----
SELECT '12.34 USD'::wallet.amount AS usd, '-0.50 EUR'::wallet.amount AS eur, '100 JPY'::wallet.amount AS jpy,
       '1.250 BHD'::wallet.amount AS bhd, '500 COIN'::wallet.amount AS coin;
-- fewer decimals than the currency has are padded; 0 decimals print none
SELECT '12.3 USD'::wallet.amount AS usd, '12 USD'::wallet.amount AS usd0, '1.2 BHD'::wallet.amount AS bhd,
       '0 JPY'::wallet.amount AS jpy0, '0.0001 CLF'::wallet.amount AS clf4;
-- case and surrounding blanks of the text; the sign; zero has no sign
SELECT '  12.34 usd  '::wallet.amount AS lower_blanks, E'\t-0.5\t Eur\n'::wallet.amount AS tabs,
       '+5 USD'::wallet.amount AS plus, '-0 USD'::wallet.amount AS minus_zero, '-0 JPY'::wallet.amount AS minus_zero_jpy;
SELECT wallet.currency('1 usd'::wallet.amount) AS stored_upper, '1 usd'::wallet.amount = '1.00 USD' AS equal;
-- int64 minor-unit boundaries, in currencies with 2, 0 and 3 decimals
SELECT '92233720368547758.07 USD'::wallet.amount AS usd_max, '-92233720368547758.08 USD'::wallet.amount AS usd_min;
SELECT '9223372036854775807 JPY'::wallet.amount AS jpy_max, '-9223372036854775808 JPY'::wallet.amount AS jpy_min;
SELECT '9223372036854775.807 BHD'::wallet.amount AS bhd_max, '-9223372036854775.808 BHD'::wallet.amount AS bhd_min;
SELECT wallet.units('-92233720368547758.08 USD') AS min_units, wallet.units('92233720368547758.07 USD') AS max_units;
-- one minor unit beyond: overflow (22003), never wrapped or rounded
SELECT pg_temp.st($$SELECT '92233720368547758.08 USD'::wallet.amount$$) AS usd_over,
       pg_temp.st($$SELECT '-92233720368547758.09 USD'::wallet.amount$$) AS usd_under,
       pg_temp.st($$SELECT '9223372036854775808 JPY'::wallet.amount$$) AS jpy_over,
       pg_temp.st($$SELECT '99999999999999999999999 JPY'::wallet.amount$$) AS huge;
-- more decimals than the currency has: an error, even zeros
SELECT pg_temp.st($$SELECT '1.234 USD'::wallet.amount$$) AS usd_3dp,
       pg_temp.st($$SELECT '1.0 JPY'::wallet.amount$$) AS jpy_1dp,
       pg_temp.st($$SELECT '1.2500 BHD'::wallet.amount$$) AS bhd_4dp,
       pg_temp.st($$SELECT '1.1 COIN'::wallet.amount$$) AS coin_1dp;
-- unknown currency (well formed): WL011; malformed text: 22P02
SELECT pg_temp.st($$SELECT '1 XYZ'::wallet.amount$$) AS unknown,
       pg_temp.st($$SELECT '1.00 ABCDEFGH'::wallet.amount$$) AS unknown8;
SELECT t AS input, pg_temp.st(format('SELECT %L::wallet.amount', t)) AS result
  FROM unnest(ARRAY['', ' ', 'USD', '12.34', '12.34USD', 'USD 12.34', '.5 USD', '5. USD', '1e2 USD',
                    '1,000 USD', '1 000 USD', '- 1 USD', '--1 USD', '1- USD', '0x10 USD', 'NaN USD',
                    'Infinity USD', '1 US', '1 U$D', '1 1USD', '1 ABCDEFGHI', '1 USD USD', '1 USD.',
                    '１ USD']) AS t;

-- ---- the built-in registry: ISO 4217 codes with their minor units ----
SELECT code, minor_units, iso FROM wallet.currencies
 WHERE code IN ('USD', 'EUR', 'JPY', 'KRW', 'ISK', 'VND', 'BHD', 'KWD', 'JOD', 'TND', 'CLF', 'UYW', 'HUF', 'XAU', 'XDR', 'COIN', 'DIAMOND')
 ORDER BY code;
SELECT count(*) > 150 AS many_iso, count(*) = count(DISTINCT code) AS codes_unique,
       bool_and(code ~ '^[A-Z]{3}$') AS iso_codes_well_formed, bool_and(minor_units BETWEEN 0 AND 4) AS iso_minor_units_sane
  FROM wallet.currencies WHERE iso;
SELECT count(*) AS withdrawn_present FROM wallet.currencies WHERE code IN ('HRK', 'DEM', 'FRF', 'LTL', 'VEF', 'MRO', 'STD');
-- every ISO currency can be written and read back, with exactly its minor units
SELECT bool_and(wallet.amount(123456::bigint, code)::text::wallet.amount = wallet.amount(123456::bigint, code)
                AND wallet.to_numeric(wallet.amount(123456::bigint, code)) = 123456::numeric / 10 ^ minor_units
                AND scale(wallet.to_numeric(wallet.amount(123456::bigint, code))) = minor_units) AS all_iso_roundtrip
  FROM wallet.currencies WHERE iso;

-- ---- binary send/receive ----
-- send: int8 units (network order), int1 minor units, the code
SELECT wallet.amount_send('12.34 USD') AS usd, wallet.amount_send('-1.250 BHD') AS bhd,
       wallet.amount_send('-9223372036854775808 JPY') AS jpy_min;
-- receive: a binary COPY round trip of every kind of value, NULL included
CREATE TEMP TABLE cm_bin_src (n int, a wallet.amount);
INSERT INTO cm_bin_src VALUES (1, '12.34 USD'), (2, '-0.50 EUR'), (3, '100 JPY'), (4, '1.250 BHD'), (5, '500 COIN'),
    (6, '92233720368547758.07 USD'), (7, '-92233720368547758.08 USD'), (8, '0.0001 CLF'), (9, NULL), (10, '0 DIAMOND');
SELECT current_setting('data_directory') || '/wallet_regress_contract_money.bin' AS cm_binfile \gset
COPY cm_bin_src TO :'cm_binfile' (FORMAT binary);
CREATE TEMP TABLE cm_bin_dst (n int, a wallet.amount);
COPY cm_bin_dst FROM :'cm_binfile' (FORMAT binary);
SELECT s.n, s.a AS sent, d.a AS received, s.a IS NOT DISTINCT FROM d.a AS same
  FROM cm_bin_src s JOIN cm_bin_dst d USING (n) ORDER BY s.n;
-- receive of crafted bytes: the raw bytes of a bytea column written by a
-- binary COPY are read back as one wallet.amount field
CREATE TEMP TABLE cm_raw (b bytea);
CREATE TEMP TABLE cm_one (a wallet.amount);
CREATE FUNCTION pg_temp.recv(x bytea, file text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    TRUNCATE cm_raw; TRUNCATE cm_one;
    INSERT INTO cm_raw VALUES (x);
    EXECUTE format('COPY cm_raw TO %L (FORMAT binary)', file);
    EXECUTE format('COPY cm_one FROM %L (FORMAT binary)', file);
    SELECT a::text INTO r FROM cm_one;
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
SELECT what, pg_temp.recv(b, :'cm_binfile') AS received
  FROM (VALUES ('usd', '\x00000000000004d202555344'::bytea),
               ('lower-case code', '\x00000000000004d202757364'),
               ('bhd negative', '\xfffffffffffffb1e03424844'),
               ('jpy int64 min', '\x8000000000000000004a5059'),
               ('coin (custom)', '\x00000000000001f400434f494e'),
               ('wrong minor units', '\x00000000000004d203555344'),
               ('minor units of XXX', '\x00000000000004d202585858'),
               ('unknown code', '\x00000000000004d2025a5a5a'),
               ('code too short', '\x00000000000004d2025553'),
               ('code with NUL', '\x00000000000004d20255534400'),
               ('truncated units', '\x00000004d2'),
               ('no minor units byte', '\x00000000000004d2')) AS v(what, b);

-- remove the file (COPY ... TO PROGRAM, as the server's user)
\set cm_rmcmd 'rm -f ' :cm_binfile
COPY (SELECT 1 WHERE false) TO PROGRAM :'cm_rmcmd';

-- ---- constructors and accessors ----
SELECT wallet.amount(1234::bigint, 'USD') AS from_bigint, wallet.amount(1234, 'usd') AS from_int,
       wallet.amount(-5::bigint, 'JPY') AS jpy, wallet.amount(1250::bigint, 'BHD') AS bhd,
       wallet.amount(-9223372036854775808, 'USD') AS int64_min, wallet.amount(9223372036854775807, 'JPY') AS int64_max;
SELECT wallet.amount(12.34, 'USD') AS num, wallet.amount(12.3400, 'USD') AS trailing_zeros,
       wallet.amount(-0.5, 'EUR') AS neg, wallet.amount(100::numeric, 'JPY') AS jpy, wallet.amount(1.25, 'BHD') AS bhd,
       wallet.amount(92233720368547758.07, 'USD') AS num_max, wallet.amount(-92233720368547758.08, 'USD') AS num_min;
-- numeric: exact or error, never rounded
SELECT pg_temp.st($$SELECT wallet.amount(12.345, 'USD')$$) AS too_precise,
       pg_temp.st($$SELECT wallet.amount(0.5, 'JPY')$$) AS half_yen,
       pg_temp.st($$SELECT wallet.amount(92233720368547758.08, 'USD')$$) AS num_over,
       pg_temp.st($$SELECT wallet.amount('NaN'::numeric, 'USD')$$) AS nan,
       pg_temp.st($$SELECT wallet.amount('Infinity'::numeric, 'USD')$$) AS inf;
SELECT pg_temp.st($$SELECT wallet.amount(1::bigint, 'XYZ')$$) AS unknown_bigint,
       pg_temp.st($$SELECT wallet.amount(1.5, 'XYZ')$$) AS unknown_numeric,
       pg_temp.st($$SELECT wallet.amount(1::bigint, 'U$D')$$) AS malformed,
       pg_temp.st($$SELECT wallet.amount(1::bigint, '')$$) AS empty_code;
-- NULL in, NULL out
SELECT wallet.amount(NULL::bigint, 'USD') IS NULL AS null_units, wallet.amount(1::bigint, NULL) IS NULL AS null_currency,
       wallet.amount(NULL::numeric, 'USD') IS NULL AS null_value, wallet.units(NULL) IS NULL AS null_units_of,
       wallet.currency(NULL) IS NULL AS null_currency_of, wallet.to_numeric(NULL) IS NULL AS null_numeric_of;
SELECT wallet.units('12.34 USD') AS units, pg_typeof(wallet.units('12.34 USD')) AS units_type,
       wallet.currency('12.34 usd') AS currency, pg_typeof(wallet.currency('12.34 USD')) AS currency_type;
-- to_numeric: exact, with the currency's scale
SELECT wallet.to_numeric('12.30 USD') AS usd, wallet.to_numeric('100 JPY') AS jpy, wallet.to_numeric('-1.250 BHD') AS bhd,
       wallet.to_numeric('-0.05 USD') AS small, wallet.to_numeric('0.0001 CLF') AS clf,
       wallet.to_numeric('-92233720368547758.08 USD') AS min, wallet.to_numeric('9223372036854775807 JPY') AS max;
-- text -> amount -> numeric -> amount is the identity
SELECT bool_and(wallet.amount(wallet.to_numeric(a), wallet.currency(a)) = a) AS numeric_roundtrip,
       bool_and(a::text::wallet.amount = a) AS text_roundtrip
  FROM cm_bin_src WHERE a IS NOT NULL;
-- fixed length, at most 16 bytes
SELECT t.typlen, t.typbyval, pg_column_size('1 USD'::wallet.amount) AS size,
       pg_column_size('92233720368547758.07 USD'::wallet.amount) AS size_max
  FROM pg_type t WHERE t.oid = 'wallet.amount'::regtype;

-- ---- + - unary - * bigint: exact, overflow 22003, mixed currencies WL002 ----
SELECT '1.05 USD'::wallet.amount + '2.50 USD' AS plus, '1.05 USD'::wallet.amount - '2.50 USD' AS minus,
       -'1.05 USD'::wallet.amount AS neg, -'-0.50 EUR'::wallet.amount AS neg_neg,
       '1.25 USD'::wallet.amount * 3::bigint AS times, 3::bigint * '1.25 USD'::wallet.amount AS commuted,
       '1.25 USD'::wallet.amount * -2 AS times_neg, '1.25 USD'::wallet.amount * 0 AS times_zero,
       '1 JPY'::wallet.amount + '2 JPY' AS jpy, '0.001 BHD'::wallet.amount + '1.249 BHD' AS bhd;
-- exactly at the limits is fine
SELECT '92233720368547758.06 USD'::wallet.amount + '0.01 USD' AS to_max,
       '-92233720368547758.07 USD'::wallet.amount - '0.01 USD' AS to_min,
       -'92233720368547758.07 USD'::wallet.amount AS neg_max,
       wallet.amount(-4611686018427387904, 'JPY') * 2 AS mul_to_min;
SELECT pg_temp.st($$SELECT '92233720368547758.07 USD'::wallet.amount + '0.01 USD'$$) AS add_over,
       pg_temp.st($$SELECT '-92233720368547758.08 USD'::wallet.amount + '-0.01 USD'$$) AS add_under,
       pg_temp.st($$SELECT '-92233720368547758.08 USD'::wallet.amount - '0.01 USD'$$) AS sub_under,
       pg_temp.st($$SELECT '92233720368547758.07 USD'::wallet.amount - '-0.01 USD'$$) AS sub_over,
       pg_temp.st($$SELECT -'-92233720368547758.08 USD'::wallet.amount$$) AS neg_min,
       pg_temp.st($$SELECT '92233720368547758.07 USD'::wallet.amount * 2$$) AS mul_over,
       pg_temp.st($$SELECT '-92233720368547758.08 USD'::wallet.amount * -1$$) AS mul_min_neg,
       pg_temp.st($$SELECT -1::bigint * '-92233720368547758.08 USD'::wallet.amount$$) AS mul_min_neg_commuted,
       pg_temp.st($$SELECT '0.02 USD'::wallet.amount * 9223372036854775807$$) AS mul_big;
SELECT pg_temp.st($$SELECT '1 USD'::wallet.amount + '1 EUR'$$) AS add_mixed,
       pg_temp.st($$SELECT '1 USD'::wallet.amount - '1 EUR'$$) AS sub_mixed,
       pg_temp.st($$SELECT '0 USD'::wallet.amount + '0 EUR'$$) AS add_mixed_zero,
       pg_temp.st($$SELECT '1 COIN'::wallet.amount + '1 DIAMOND'$$) AS add_virtual;
-- NULL operands give NULL
SELECT ('1 USD'::wallet.amount + NULL) IS NULL AS add_null, (NULL::wallet.amount * 2) IS NULL AS mul_null,
       (-NULL::wallet.amount) IS NULL AS neg_null;

-- ---- comparisons: = <> total; < <= > >= WL002 across currencies ----
SELECT '1.00 USD'::wallet.amount = '1 usd' AS eq, '1.00 USD'::wallet.amount = '1.00 EUR' AS eq_mixed,
       '1.00 USD'::wallet.amount <> '1.00 EUR' AS ne_mixed, '1.00 USD'::wallet.amount <> '1.01 USD' AS ne,
       '100 JPY'::wallet.amount = '1.00 USD' AS same_digits_other_currency;
SELECT '-0.01 USD'::wallet.amount < '0.00 USD' AS lt, '1 USD'::wallet.amount <= '1.00 USD' AS le,
       '2 USD'::wallet.amount > '1.99 USD' AS gt, '2 USD'::wallet.amount >= '2.01 USD' AS ge_false,
       '-92233720368547758.08 USD'::wallet.amount < '92233720368547758.07 USD' AS extremes;
SELECT pg_temp.st($$SELECT '1 USD'::wallet.amount < '2 EUR'$$) AS lt_mixed,
       pg_temp.st($$SELECT '1 USD'::wallet.amount <= '2 EUR'$$) AS le_mixed,
       pg_temp.st($$SELECT '1 USD'::wallet.amount > '2 EUR'$$) AS gt_mixed,
       pg_temp.st($$SELECT '1 USD'::wallet.amount >= '2 EUR'$$) AS ge_mixed;

-- ---- abs, sign (also without wallet on the search_path) ----
SELECT abs('-1.50 USD'::wallet.amount) AS abs_neg, abs('1.50 USD'::wallet.amount) AS abs_pos, abs('0 JPY'::wallet.amount) AS abs_zero,
       sign('-1.50 USD'::wallet.amount) AS sign_neg, sign('0.00 USD'::wallet.amount) AS sign_zero,
       sign('0.001 BHD'::wallet.amount) AS sign_pos, pg_typeof(sign('1 USD'::wallet.amount)) AS sign_type,
       wallet.abs('-3 JPY') AS wallet_abs, wallet.sign('-3 JPY') AS wallet_sign,
       abs('-92233720368547758.07 USD'::wallet.amount) AS abs_near_min;
SELECT pg_temp.st($$SELECT abs('-92233720368547758.08 USD'::wallet.amount)$$) AS abs_min;

-- ---- btree and hash operator classes ----
SELECT am.amname, opc.opcdefault
  FROM pg_opclass opc JOIN pg_am am ON am.oid = opc.opcmethod
 WHERE opc.opcintype = 'wallet.amount'::regtype ORDER BY 1, 2;
CREATE TEMP TABLE cm_t (id int, a wallet.amount);
INSERT INTO cm_t SELECT i, wallet.amount(((i * 7919) % 201 - 100)::bigint, 'USD') FROM generate_series(1, 400) i;
INSERT INTO cm_t VALUES (401, NULL), (402, '92233720368547758.07 USD'), (403, '-92233720368547758.08 USD');
CREATE INDEX cm_t_a ON cm_t (a);
ANALYZE cm_t;
-- ORDER BY: numeric order of the amounts, NULLs as usual
SELECT a FROM cm_t ORDER BY a LIMIT 3;
SELECT a FROM cm_t ORDER BY a DESC LIMIT 3;
SELECT bool_and(ok) AS sorted_like_units FROM (
    SELECT wallet.units(a) >= lag(wallet.units(a)) OVER (ORDER BY a) OR lag(a) OVER (ORDER BY a) IS NULL AS ok
      FROM cm_t WHERE a IS NOT NULL) s;
-- the index answers = and ranges
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM cm_t WHERE a = '0.05 USD';
SELECT count(*) AS eq_idx FROM cm_t WHERE a = '0.05 USD';
SELECT count(*) AS range_idx FROM cm_t WHERE a > '0.95 USD' AND a <= '1.00 USD';
SELECT count(*) AS eq_other_currency FROM cm_t WHERE a = '0.05 EUR';
RESET enable_seqscan;
RESET enable_bitmapscan;
SET enable_indexscan = off;
SET enable_indexonlyscan = off;
SET enable_bitmapscan = off;
SELECT count(*) AS eq_seq FROM cm_t WHERE a = '0.05 USD';
SELECT count(*) AS range_seq FROM cm_t WHERE a > '0.95 USD' AND a <= '1.00 USD';
RESET enable_indexscan;
RESET enable_indexonlyscan;
RESET enable_bitmapscan;
-- UNIQUE on amounts: '1 usd' and '1.00 USD' are the same value
CREATE TEMP TABLE cm_u (a wallet.amount UNIQUE);
INSERT INTO cm_u VALUES ('1.00 USD'), ('1.00 EUR'), ('100 JPY');
SELECT pg_temp.st($$INSERT INTO cm_u VALUES ('1 usd') RETURNING 'inserted'$$) AS dup,
       pg_temp.st($$INSERT INTO cm_u VALUES ('1 JPY') RETURNING 'inserted'$$) AS other;
-- a hash index
CREATE TEMP TABLE cm_h (a wallet.amount);
CREATE INDEX cm_h_a ON cm_h USING hash (a);
INSERT INTO cm_h SELECT wallet.amount((i % 10)::bigint, CASE WHEN i % 2 = 0 THEN 'USD' ELSE 'EUR' END) FROM generate_series(1, 200) i;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM cm_h WHERE a = '0.04 USD';
SELECT count(*) AS hash_usd FROM cm_h WHERE a = '0.04 USD';
SELECT count(*) AS hash_eur FROM cm_h WHERE a = '0.04 EUR';
RESET enable_seqscan;
RESET enable_bitmapscan;
-- equal values hash equally (however written); the extended hash too
SELECT wallet.amount_hash('1.00 USD') = wallet.amount_hash('1 usd') AS hash_eq,
       wallet.amount_hash_extended('1.00 USD', 42) = wallet.amount_hash_extended(' 1.0 USD ', 42) AS hash_ext_eq;
-- GROUP BY and DISTINCT, by hash and by sort, one currency and mixed
CREATE TEMP TABLE cm_g (a wallet.amount);
INSERT INTO cm_g SELECT wallet.amount((i % 3)::bigint, c)
  FROM generate_series(1, 30) i, unnest(ARRAY['USD', 'EUR', 'JPY']) c;
INSERT INTO cm_g VALUES (NULL), (NULL);
SET enable_sort = off;
SELECT a, count(*) FROM cm_g GROUP BY a ORDER BY wallet.currency(a), wallet.units(a);
SELECT count(*) AS distinct_hash FROM (SELECT DISTINCT a FROM cm_g) d;
RESET enable_sort;
SET enable_hashagg = off;
SELECT a, count(*) FROM cm_g GROUP BY a ORDER BY wallet.currency(a), wallet.units(a);
SELECT count(*) AS distinct_sort FROM (SELECT DISTINCT a FROM cm_g) d;
RESET enable_hashagg;
SELECT count(DISTINCT a) AS count_distinct FROM cm_g;
-- hash join on amounts (one currency, and mixed: equal only within a currency)
CREATE TEMP TABLE cm_l (l int, a wallet.amount);
CREATE TEMP TABLE cm_r (r int, a wallet.amount);
INSERT INTO cm_l VALUES (1, '1.00 USD'), (2, '2.00 USD'), (3, '1.00 EUR'), (4, NULL), (5, '100 JPY');
INSERT INTO cm_r VALUES (10, '1 usd'), (20, '1.00 USD'), (30, '2 EUR'), (40, NULL), (50, '100 JPY'),
                         (60, '1.00 EUR'), (70, '100 COIN'), (80, '1.000 BHD');
SET enable_mergejoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT l, r FROM cm_l JOIN cm_r USING (a);
SELECT l, r, a FROM cm_l JOIN cm_r USING (a) ORDER BY l, r;
RESET enable_mergejoin;
RESET enable_nestloop;

-- ---- sum, min, max ----
SELECT sum(a), min(a), max(a), count(a), sum(a) = wallet.amount(sum(wallet.units(a))::bigint, 'USD') AS sum_is_units_sum
  FROM cm_t WHERE id <= 400;
SELECT sum(a) AS sum_empty, min(a) AS min_empty, max(a) AS max_empty FROM cm_t WHERE false;
SELECT sum(a) AS sum_nulls, min(a) AS min_nulls, max(a) AS max_nulls FROM cm_t WHERE id = 401;
SELECT sum(a), min(a), max(a) FROM (VALUES ('1.10 USD'::wallet.amount), (NULL), ('-0.10 USD'), ('5.00 USD')) v(a);
SELECT wallet.sum(a), wallet.min(a), wallet.max(a) FROM (VALUES ('1.250 BHD'::wallet.amount), ('0.001 BHD')) v(a);
SELECT sum(a) AS sum_to_max FROM (VALUES ('92233720368547758.00 USD'::wallet.amount), ('0.07 USD')) v(a);
SELECT sum(a) AS sum_cancels FROM (VALUES ('92233720368547758.07 USD'::wallet.amount), ('-92233720368547758.08 USD'), ('0.01 USD')) v(a);
SELECT pg_temp.st($$SELECT sum(a) FROM (VALUES ('92233720368547758.07 USD'::wallet.amount), ('0.01 USD')) v(a)$$) AS sum_over,
       pg_temp.st($$SELECT sum(a) FROM (VALUES ('-92233720368547758.08 USD'::wallet.amount), ('-0.01 USD')) v(a)$$) AS sum_under,
       pg_temp.st($$SELECT sum(a) FROM (VALUES ('1 USD'::wallet.amount), ('1 EUR')) v(a)$$) AS sum_mixed,
       pg_temp.st($$SELECT min(a) FROM (VALUES ('1 USD'::wallet.amount), ('1 EUR')) v(a)$$) AS min_mixed,
       pg_temp.st($$SELECT max(a) FROM (VALUES ('1 USD'::wallet.amount), ('1 EUR')) v(a)$$) AS max_mixed;
-- per currency with GROUP BY
SELECT wallet.currency(a) AS cur, sum(a), min(a), max(a), count(*) FROM cm_g GROUP BY 1 ORDER BY 1;
-- as window functions (the running state must not leak between rows)
SELECT n, a, sum(a) OVER (ORDER BY n) AS running,
       sum(a) OVER (ORDER BY n ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS pairs,
       min(a) OVER (ORDER BY n) AS running_min, max(a) OVER () AS overall_max
  FROM (VALUES (1, '1.00 USD'::wallet.amount), (2, '-2.00 USD'), (3, '3.00 USD'), (4, '4.00 USD')) v(n, a);
-- sum with FILTER and DISTINCT
SELECT sum(a) FILTER (WHERE wallet.units(a) > 0) AS positive, sum(DISTINCT a) AS distinct_sum
  FROM (VALUES ('1.00 USD'::wallet.amount), ('1.00 USD'), ('-2.00 USD')) v(a);
-- parallel safe, with a combine function; a parallel plan gives the serial result
SELECT p.proname, p.pronamespace::regnamespace AS schema, p.proparallel, a.aggcombinefn <> 0 AS has_combine
  FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
 WHERE p.proargtypes[0] = 'wallet.amount'::regtype ORDER BY 1, 2;
CREATE TABLE public.cm_par (a wallet.amount);
INSERT INTO public.cm_par SELECT wallet.amount(i::bigint * 3 - 20000, 'USD') FROM generate_series(1, 20000) i;
ANALYZE public.cm_par;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT sum(a), min(a), max(a) FROM public.cm_par;
SELECT sum(a), min(a), max(a), sum(wallet.units(a)) AS units_sum FROM public.cm_par;
INSERT INTO public.cm_par VALUES ('0.01 EUR');
SELECT pg_temp.st($$SELECT sum(a) FROM public.cm_par$$) AS parallel_sum_mixed;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP TABLE public.cm_par;

-- ---- allocate: parts add up to the whole; largest remainder, ties to earlier parts ----
SELECT wallet.allocate('1.00 USD', '{1,1,1}') AS thirds, wallet.allocate('0.05 USD', '{1,1}') AS halves,
       wallet.allocate('0.10 USD', '{3,7}') AS exact;
-- 0.07 by 2:1:1 -> 3.5, 1.75, 1.75: truncated 3,1,1; remainders .5,.75,.75 -> the two .75 win
SELECT wallet.allocate('0.07 USD', '{2,1,1}') AS largest_remainder;
-- 0.04 by 1:2:1:2 -> remainders 4/6,2/6,4/6,2/6: ties go to the earlier parts
SELECT wallet.allocate('0.04 USD', '{1,2,1,2}') AS ties_earlier, wallet.allocate('0.02 USD', '{1,1,1}') AS ties_first;
-- zero ratios get nothing, even of the remainder
SELECT wallet.allocate('0.05 USD', '{0,1,0,1}') AS zero_ratios, wallet.allocate('0.01 USD', '{0,1}') AS zero_first;
-- negative amounts: the same split, negated (no minor unit lost)
SELECT wallet.allocate('-1.00 USD', '{1,1,1}') AS neg_thirds, wallet.allocate('-0.07 USD', '{2,1,1}') AS neg_lr;
SELECT wallet.allocate('0 USD', '{1,2}') AS zero_amount, wallet.allocate('0.05 USD', '{5}') AS one_part,
       wallet.allocate('10 JPY', '{1,1,1}') AS jpy, wallet.allocate('0.010 BHD', '{1,2}') AS bhd;
SELECT wallet.allocate(wallet.amount(9223372036854775807, 'USD'), '{1,1}') AS at_max,
       wallet.allocate(wallet.amount(-9223372036854775808, 'USD'), '{1,1,1}') AS at_min,
       wallet.allocate(wallet.amount(-9223372036854775808, 'JPY'), '{1}') AS min_whole;
SELECT wallet.allocate('1.00 USD', ARRAY[2147483647, 2147483647, 1]) AS huge_ratios;
-- the parts always add up, whatever the ratios
SELECT bool_and((SELECT sum(x) FROM unnest(wallet.allocate(wallet.amount(n::bigint * 7919 - 400000, 'USD'),
                                                            ARRAY[n % 5, n % 3 + 1, n % 7, 1, n % 2])) x)
                = wallet.amount(n::bigint * 7919 - 400000, 'USD')) AS always_adds_up
  FROM generate_series(1, 200) n;
SELECT pg_temp.st($$SELECT wallet.allocate('1 USD', '{0,0}')$$) AS all_zero,
       pg_temp.st($$SELECT wallet.allocate('1 USD', '{}')$$) AS empty,
       pg_temp.st($$SELECT wallet.allocate('1 USD', '{1,-1}')$$) AS negative_ratio,
       pg_temp.st($$SELECT wallet.allocate('1 USD', '{1,NULL}')$$) AS null_ratio;
SELECT wallet.allocate(NULL, '{1}') IS NULL AS null_amount, wallet.allocate('1 USD', NULL) IS NULL AS null_ratios;
SELECT pg_typeof(wallet.allocate('1 USD', '{1}')) AS result_type;
-- split: equal parts, the earlier parts take the leftover units
SELECT wallet.split('1.00 USD', 3) AS three, wallet.split('-1.00 USD', 3) AS neg, wallet.split('0.01 USD', 3) AS tiny,
       wallet.split('5 JPY', 1) AS one_part, wallet.split('0.005 BHD', 2) AS bhd, wallet.split('0 USD', 2) AS zero;
SELECT cardinality(wallet.split('1.00 USD', 1000)) AS parts,
       (SELECT sum(x) FROM unnest(wallet.split('1.00 USD', 1000)) x) AS total;
SELECT pg_temp.st($$SELECT wallet.split('1 USD', 0)$$) AS zero_parts,
       pg_temp.st($$SELECT wallet.split('1 USD', -2)$$) AS negative_parts;

-- ---- mul: every rounding mode, both signs, exact halves and non-halves ----
SELECT m AS mode,
       wallet.mul('0.05 USD', 0.5, m) AS "2.5", wallet.mul('0.07 USD', 0.5, m) AS "3.5",
       wallet.mul('-0.05 USD', 0.5, m) AS "-2.5", wallet.mul('-0.07 USD', 0.5, m) AS "-3.5",
       wallet.mul('0.01 USD', 0.5, m) AS "0.5", wallet.mul('-0.01 USD', 0.5, m) AS "-0.5",
       wallet.mul('0.10 USD', 0.333, m) AS "3.33", wallet.mul('-0.10 USD', 0.333, m) AS "-3.33",
       wallet.mul('0.10 USD', 0.666, m) AS "6.66", wallet.mul('-0.10 USD', 0.666, m) AS "-6.66"
  FROM unnest(ARRAY['half_even', 'half_up', 'down', 'floor', 'ceiling']) m;
-- the default is half_even; exact results need no rounding in any mode
SELECT wallet.mul('0.05 USD', 0.5) AS default_mode, wallet.mul('1.00 USD', 1.5) AS exact,
       wallet.mul('1.00 USD', 0) AS by_zero, wallet.mul('1.00 USD', -2) AS negative_factor,
       wallet.mul('3 JPY', 1.25, 'half_up') AS jpy, wallet.mul('1.250 BHD', 0.5) AS bhd,
       wallet.mul('1 COIN', 0.5, 'ceiling') AS coin;
SELECT bool_and(wallet.mul('1.23 USD', 2, m) = '2.46 USD') AS exact_in_all_modes
  FROM unnest(ARRAY['half_even', 'half_up', 'down', 'floor', 'ceiling']) m;
SELECT pg_temp.st($$SELECT wallet.mul('1 USD', 1.5, 'bogus')$$) AS bad_mode,
       pg_temp.st($$SELECT wallet.mul('1 USD', 'NaN')$$) AS nan_factor,
       pg_temp.st($$SELECT wallet.mul('92233720368547758.07 USD', 2)$$) AS overflow,
       pg_temp.st($$SELECT wallet.mul('92233720368547758.07 USD', 1.0000000001, 'down')$$) AS overflow_small,
       pg_temp.st($$SELECT wallet.mul('-92233720368547758.08 USD', -1)$$) AS overflow_neg;
SELECT wallet.mul('92233720368547758.07 USD', 1) AS max_times_one, wallet.mul('-92233720368547758.08 USD', 1) AS min_times_one,
       wallet.mul('92233720368547758.07 USD', -1) AS max_negated;
SELECT wallet.mul(NULL, 1) IS NULL AS null_amount, wallet.mul('1 USD', NULL) IS NULL AS null_factor;

-- ---- convert: between currencies with different minor units, every mode ----
SELECT m AS mode,
       wallet.convert('1.00 USD', 0.3775, 'BHD', m) AS usd_bhd, wallet.convert('-1.00 USD', 0.3775, 'BHD', m) AS neg_usd_bhd,
       wallet.convert('0.01 USD', 150, 'JPY', m) AS usd_jpy, wallet.convert('-0.01 USD', 150, 'JPY', m) AS neg_usd_jpy,
       wallet.convert('-0.03 USD', 50, 'JPY', m) AS half_jpy, wallet.convert('0.05 USD', 50, 'JPY', m) AS half_odd,
       wallet.convert('1 JPY', 0.0065, 'USD', m) AS jpy_usd, wallet.convert('7 COIN', 0.5, 'JPY', m) AS coin_jpy
  FROM unnest(ARRAY['half_even', 'half_up', 'down', 'floor', 'ceiling']) m;
SELECT wallet.convert('100 JPY', 0.0067, 'usd') AS jpy_usd, wallet.convert('1.00 USD', 149.5, 'JPY') AS tie_to_even,
       wallet.convert('1.00 USD', 150.5, 'JPY') AS tie_to_even2, wallet.convert('1.250 BHD', 2.65, 'USD', 'down') AS bhd_usd,
       wallet.convert('1.00 USD', 1, 'USD') AS same_currency, wallet.convert('12.34 EUR', 1, 'USD') AS at_par;
SELECT pg_temp.st($$SELECT wallet.convert('1 USD', 0, 'EUR')$$) AS zero_rate,
       pg_temp.st($$SELECT wallet.convert('1 USD', -1.1, 'EUR')$$) AS negative_rate,
       pg_temp.st($$SELECT wallet.convert('1 USD', 'NaN', 'EUR')$$) AS nan_rate,
       pg_temp.st($$SELECT wallet.convert('1 USD', 1, 'XYZ')$$) AS unknown_currency,
       pg_temp.st($$SELECT wallet.convert('1 USD', 1, 'U$D')$$) AS malformed_currency,
       pg_temp.st($$SELECT wallet.convert('1 USD', 1, 'EUR', 'nearest')$$) AS bad_mode,
       pg_temp.st($$SELECT wallet.convert('92233720368547758.07 USD', 101, 'JPY')$$) AS overflow;
SELECT wallet.convert('92233720368547758.07 USD', 100, 'JPY') AS exact_at_max;
SELECT wallet.convert(NULL, 1, 'EUR') IS NULL AS null_amount, wallet.convert('1 USD', NULL, 'EUR') IS NULL AS null_rate,
       wallet.convert('1 USD', 1, NULL) IS NULL AS null_currency;
