-- wallet.amount: operators, comparison, btree/hash operator classes,
-- aggregates.  Everything here must work WITHOUT wallet on the search_path
-- (operators, abs, sign, sum, min, max live in pg_catalog).
SET search_path = public;

-- ---- + and - ----
SELECT '12.34 USD'::wallet.amount + '0.66 USD'::wallet.amount AS plus,
       '12.34 USD'::wallet.amount - '12.35 USD'::wallet.amount AS minus,
       '-0.50 EUR'::wallet.amount + '0.50 EUR'::wallet.amount AS to_zero,
       '100 JPY'::wallet.amount - '250 JPY'::wallet.amount AS jpy,
       '1.250 BHD'::wallet.amount + '0.001 BHD'::wallet.amount AS bhd,
       '500 COIN'::wallet.amount + '1 COIN'::wallet.amount AS coin;
-- edges that still fit
SELECT '92233720368547758.06 USD'::wallet.amount + '0.01 USD'::wallet.amount AS to_max,
       '-92233720368547758.07 USD'::wallet.amount - '0.01 USD'::wallet.amount AS to_min,
       '92233720368547758.07 USD'::wallet.amount + '-92233720368547758.08 USD'::wallet.amount AS max_plus_min,
       '-1 JPY'::wallet.amount - '9223372036854775807 JPY'::wallet.amount AS jpy_min,
       '0 JPY'::wallet.amount - '9223372036854775807 JPY'::wallet.amount AS jpy_neg_max;
-- overflow at both ends: 22003
SELECT q, sqlstate_of(q) AS result FROM (VALUES
  ($$SELECT '92233720368547758.07 USD'::wallet.amount + '0.01 USD'::wallet.amount$$),
  ($$SELECT '0.01 USD'::wallet.amount + '92233720368547758.07 USD'::wallet.amount$$),
  ($$SELECT '-92233720368547758.08 USD'::wallet.amount + '-0.01 USD'::wallet.amount$$),
  ($$SELECT '-92233720368547758.08 USD'::wallet.amount - '0.01 USD'::wallet.amount$$),
  ($$SELECT '92233720368547758.07 USD'::wallet.amount - '-0.01 USD'::wallet.amount$$),
  ($$SELECT '0 USD'::wallet.amount - '-92233720368547758.08 USD'::wallet.amount$$),
  ($$SELECT '-1 JPY'::wallet.amount - '9223372036854775808 JPY'::wallet.amount$$),
  ($$SELECT '9223372036854775807 JPY'::wallet.amount + '9223372036854775807 JPY'::wallet.amount$$)
) AS t(q);
SELECT '92233720368547758.07 USD'::wallet.amount + '0.01 USD'::wallet.amount;

-- ---- unary - ----
SELECT -'12.34 USD'::wallet.amount AS neg, -'-0.50 EUR'::wallet.amount AS neg_neg,
       -'0 JPY'::wallet.amount AS neg_zero, -'92233720368547758.07 USD'::wallet.amount AS neg_max,
       - -'1.250 BHD'::wallet.amount AS twice;
SELECT sqlstate_of($$SELECT -'-92233720368547758.08 USD'::wallet.amount$$) AS neg_min_usd,
       sqlstate_of($$SELECT -'-9223372036854775808 COIN'::wallet.amount$$) AS neg_min_coin;
SELECT -'-92233720368547758.08 USD'::wallet.amount;

-- ---- amount * bigint, bigint * amount ----
SELECT '1.25 USD'::wallet.amount * 3 AS a_times_3,
       3 * '1.25 USD'::wallet.amount AS three_times_a,
       '1.25 USD'::wallet.amount * 0 AS times_zero,
       '1.25 USD'::wallet.amount * -1 AS times_minus_one,
       -2::bigint * '-1.25 USD'::wallet.amount AS neg_neg,
       '7 COIN'::wallet.amount * 1000000::bigint AS coin;
SELECT '-0.01 USD'::wallet.amount * 9223372036854775807 AS min_plus_one,
       '0.01 USD'::wallet.amount * (-9223372036854775808)::bigint AS int8_min_factor,
       (-9223372036854775808)::bigint * '0 JPY'::wallet.amount AS zero_times_min,
       '-92233720368547758.08 USD'::wallet.amount * 1 AS min_times_one,
       '46116860184273879.03 USD'::wallet.amount * 2 AS just_fits;
SELECT q, sqlstate_of(q) AS result FROM (VALUES
  ($$SELECT '92233720368547758.07 USD'::wallet.amount * 2$$),
  ($$SELECT 2 * '92233720368547758.07 USD'::wallet.amount$$),
  ($$SELECT '46116860184273879.04 USD'::wallet.amount * 2$$),
  ($$SELECT '-92233720368547758.08 USD'::wallet.amount * 2$$),
  ($$SELECT '-92233720368547758.08 USD'::wallet.amount * -1$$),
  ($$SELECT -1 * '-92233720368547758.08 USD'::wallet.amount$$),
  ($$SELECT '-0.01 USD'::wallet.amount * (-9223372036854775808)::bigint$$),
  ($$SELECT (-9223372036854775808)::bigint * '-1 JPY'::wallet.amount$$),
  ($$SELECT '0.02 USD'::wallet.amount * 9223372036854775807$$),
  ($$SELECT 9223372036854775807 * '-0.02 USD'::wallet.amount$$)
) AS t(q);
SELECT '92233720368547758.07 USD'::wallet.amount * 2;
-- no float or numeric multiplication and no amount * amount, amount / x
SELECT q, sqlstate_of(q) AS result FROM (VALUES
  ($$SELECT '1 USD'::wallet.amount * 1.5$$),
  ($$SELECT '1 USD'::wallet.amount * 1.5::float8$$),
  ($$SELECT '1 USD'::wallet.amount * '2 USD'::wallet.amount$$),
  ($$SELECT '1 USD'::wallet.amount / 2$$),
  ($$SELECT '1 USD'::wallet.amount + 1$$)
) AS t(q);

-- ---- mixed currencies: WL002 in + - and ordering, never an answer ----
SELECT q, sqlstate_of(q) AS result FROM (VALUES
  ($$SELECT '1 USD'::wallet.amount + '1 EUR'::wallet.amount$$),
  ($$SELECT '1 USD'::wallet.amount - '1 EUR'::wallet.amount$$),
  ($$SELECT '1 COIN'::wallet.amount + '1 DIAMOND'::wallet.amount$$),
  ($$SELECT '0 JPY'::wallet.amount + '0 COIN'::wallet.amount$$),
  ($$SELECT '1 USD'::wallet.amount < '1 EUR'::wallet.amount$$),
  ($$SELECT '1 USD'::wallet.amount <= '1 EUR'::wallet.amount$$),
  ($$SELECT '1 USD'::wallet.amount > '1 EUR'::wallet.amount$$),
  ($$SELECT '1 USD'::wallet.amount >= '1 EUR'::wallet.amount$$),
  ($$SELECT '1 USD'::wallet.amount >= '100 JPY'::wallet.amount$$),
  ($$SELECT wallet.amount_cmp('1 USD', '1 EUR')$$),
  ($$SELECT wallet.amount_cmp('1 EUR', '1 USD')$$)
) AS t(q);
SELECT '1.00 USD'::wallet.amount + '1.00 EUR'::wallet.amount;
SELECT '1 COIN'::wallet.amount < '2 DIAMOND'::wallet.amount;

-- ---- = and <> are total: different currencies are simply unequal ----
SELECT '1 USD'::wallet.amount = '1 EUR'::wallet.amount AS eq_mixed,
       '1 USD'::wallet.amount <> '1 EUR'::wallet.amount AS ne_mixed,
       '100 JPY'::wallet.amount = '100 COIN'::wallet.amount AS eq_same_units,
       '1.00 USD'::wallet.amount = '1 usd'::wallet.amount AS eq_same,
       '1.00 USD'::wallet.amount <> '1 usd'::wallet.amount AS ne_same,
       '1.00 USD'::wallet.amount = '1.01 USD'::wallet.amount AS eq_diff,
       '1.00 USD'::wallet.amount <> '1.01 USD'::wallet.amount AS ne_diff,
       '0 USD'::wallet.amount = '-0 USD'::wallet.amount AS zero_eq_neg_zero;

-- ---- ordering within one currency ----
SELECT a, b, a < b AS lt, a <= b AS le, a = b AS eq, a <> b AS ne,
       a >= b AS ge, a > b AS gt, wallet.amount_cmp(a, b) AS cmp
  FROM (VALUES ('1.00 USD'::wallet.amount, '2.00 USD'::wallet.amount),
               ('2.00 USD', '1.00 USD'), ('1.50 USD', '1.50 USD'),
               ('-0.01 USD', '0.00 USD'),
               ('-92233720368547758.08 USD', '92233720368547758.07 USD'),
               ('92233720368547758.07 USD', '-92233720368547758.08 USD'),
               ('-9223372036854775808 COIN', '-9223372036854775808 COIN')) AS t(a, b);

-- ---- abs and sign (pg_catalog.abs / pg_catalog.sign, and wallet.*) ----
SELECT a, abs(a) AS abs, sign(a) AS sign, wallet.abs(a) AS wallet_abs, wallet.sign(a) AS wallet_sign
  FROM (VALUES ('-12.34 USD'::wallet.amount), ('12.34 USD'), ('0 USD'), ('-0.001 BHD'),
               ('92233720368547758.07 USD'), ('-92233720368547758.07 USD'),
               ('-9223372036854775807 COIN')) AS t(a);
SELECT sqlstate_of($$SELECT abs('-92233720368547758.08 USD'::wallet.amount)$$) AS abs_min,
       sqlstate_of($$SELECT wallet.abs('-9223372036854775808 JPY'::wallet.amount)$$) AS wallet_abs_min,
       sign('-92233720368547758.08 USD'::wallet.amount) AS sign_min;
SELECT abs('-92233720368547758.08 USD'::wallet.amount);
SELECT pg_typeof(abs('1 USD'::wallet.amount)) AS abs_type, pg_typeof(sign('1 USD'::wallet.amount)) AS sign_type;

-- ---- the objects live where the contract says ----
SELECT o.oprname, o.oprnamespace::regnamespace AS schema,
       format_type(o.oprleft, NULL) AS leftarg, format_type(o.oprright, NULL) AS rightarg,
       format_type(o.oprresult, NULL) AS result
  FROM pg_operator o
 WHERE 'wallet.amount'::regtype IN (o.oprleft, o.oprright)
 ORDER BY 1, 3, 4;
SELECT p.proname, p.pronamespace::regnamespace AS schema, p.prokind, p.proparallel
  FROM pg_proc p
 WHERE p.proname IN ('abs', 'sign', 'sum', 'min', 'max')
   AND p.proargtypes[0] = 'wallet.amount'::regtype
 ORDER BY 1, 2;
SELECT opc.opcname, am.amname, opc.opcdefault
  FROM pg_opclass opc JOIN pg_am am ON am.oid = opc.opcmethod
 WHERE opc.opcintype = 'wallet.amount'::regtype ORDER BY 2, 1;

-- ---- btree: index, ORDER BY, index scans, UNIQUE ----
CREATE TABLE ops_t (id int, a wallet.amount);
INSERT INTO ops_t SELECT i, wallet.amount(((i * 37) % 1000 - 500)::bigint, 'USD')
  FROM generate_series(1, 1000) i;
INSERT INTO ops_t VALUES (1001, NULL), (1002, '92233720368547758.07 USD'),
                         (1003, '-92233720368547758.08 USD');
CREATE INDEX ops_t_a ON ops_t (a);
ANALYZE ops_t;
SELECT a FROM ops_t ORDER BY a LIMIT 5;
SELECT a FROM ops_t ORDER BY a DESC NULLS LAST LIMIT 5;
SELECT a FROM ops_t ORDER BY a DESC LIMIT 2;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id, a FROM ops_t WHERE a = '1.23 USD';
SELECT id, a FROM ops_t WHERE a = '1.23 USD';
EXPLAIN (COSTS OFF) SELECT a FROM ops_t WHERE a BETWEEN '-0.02 USD' AND '0.02 USD' ORDER BY a;
SELECT a FROM ops_t WHERE a BETWEEN '-0.02 USD' AND '0.02 USD' ORDER BY a;
EXPLAIN (COSTS OFF) SELECT min(a), max(a) FROM ops_t;
SELECT min(a), max(a) FROM ops_t;
-- a different currency in an index search condition: WL002
SELECT sqlstate_of($$SELECT count(*) FROM ops_t WHERE a < '1 EUR'$$) AS index_mixed;
-- = with another currency is simply false, whatever the plan: no rows and
-- no error through the btree index (as with the sequential scan below)
SELECT count(*) AS eur_matches FROM ops_t WHERE a = '1.23 EUR';
SELECT count(*) AS eur_matches_in FROM ops_t WHERE a IN ('1.23 EUR', '1.23 USD');
RESET enable_seqscan;
RESET enable_bitmapscan;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SET enable_indexonlyscan = off;
SELECT count(*) AS eur_matches_seqscan FROM ops_t WHERE a = '1.23 EUR';
SELECT count(*) AS eur_matches_in_seqscan FROM ops_t WHERE a IN ('1.23 EUR', '1.23 USD');
RESET enable_indexscan;
RESET enable_bitmapscan;
RESET enable_indexonlyscan;
SELECT count(*) AS below_zero FROM ops_t WHERE a < '0 USD';
SELECT count(*) AS at_or_above_zero FROM ops_t WHERE a >= '0 USD';
-- a btree index orders within one currency: inserting another currency
-- into an indexed single-currency column is a currency mismatch (WL002)
SELECT sqlstate_of($$INSERT INTO ops_t VALUES (2000, '1 EUR')$$) AS insert_other_currency;

CREATE TABLE uniq_t (a wallet.amount UNIQUE);
INSERT INTO uniq_t VALUES ('1.00 USD'), ('2.00 USD'), (NULL), (NULL);
INSERT INTO uniq_t VALUES ('1 usd');
SELECT sqlstate_of($$INSERT INTO uniq_t VALUES ('1.00 USD')$$) AS duplicate,
       sqlstate_of($$INSERT INTO uniq_t VALUES ('1.01 USD')$$) AS new_value;
SELECT a FROM uniq_t ORDER BY a NULLS FIRST;

-- ---- hash operator class: hash index works across currencies ----
CREATE TABLE hash_t (a wallet.amount);
CREATE INDEX hash_t_a ON hash_t USING hash (a);
INSERT INTO hash_t VALUES ('1.00 USD'), ('1.00 EUR'), ('100 JPY'), ('100 COIN'), ('1.00 USD');
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM hash_t WHERE a = '1.00 USD';
SELECT count(*) AS usd, (SELECT count(*) FROM hash_t WHERE a = '100 COIN') AS coin,
       (SELECT count(*) FROM hash_t WHERE a = '1 COIN') AS none
  FROM hash_t WHERE a = '1.00 USD';
RESET enable_seqscan;
RESET enable_bitmapscan;
-- equal values hash equally, different currencies differently
SELECT wallet.amount_hash('1.00 USD') = wallet.amount_hash('1 usd') AS same_hash,
       wallet.amount_hash('1.00 USD') = wallet.amount_hash('100 JPY') AS usd_jpy,
       wallet.amount_hash_extended('1.00 USD', 7) = wallet.amount_hash_extended('1 usd', 7) AS same_ext,
       wallet.amount_hash_extended('1.00 USD', 0) = wallet.amount_hash_extended('1.00 USD', 1) AS seed_matters;

-- ---- GROUP BY and DISTINCT (single currency: by hash and by sort) ----
CREATE TABLE grp_t (id int, a wallet.amount);
INSERT INTO grp_t SELECT i, wallet.amount((i % 4)::bigint * 25, 'USD') FROM generate_series(1, 20) i;
INSERT INTO grp_t VALUES (21, NULL);
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT a, count(*) FROM grp_t GROUP BY a;
SELECT a, count(*) FROM grp_t GROUP BY a ORDER BY count(*), a;
RESET enable_sort;
SET enable_hashagg = off;
EXPLAIN (COSTS OFF) SELECT a, count(*) FROM grp_t GROUP BY a;
SELECT a, count(*) FROM grp_t GROUP BY a;
SELECT DISTINCT a FROM grp_t ORDER BY a;
RESET enable_hashagg;
SELECT count(DISTINCT a) AS distinct_amounts FROM grp_t;

-- mixed currencies: hashing (=) is total, ordering is not.  GROUP BY and
-- DISTINCT by hash work; by sort they raise WL002.
CREATE TABLE mixed_t (a wallet.amount);
INSERT INTO mixed_t VALUES ('1.00 USD'), ('1.00 EUR'), ('100 JPY'), ('1.00 USD'), ('100 COIN'), ('100 JPY');
SET enable_sort = off;
SELECT a, count(*) FROM mixed_t GROUP BY a ORDER BY wallet.currency(a);
SELECT count(*) AS distinct_values FROM (SELECT DISTINCT a FROM mixed_t) d;
RESET enable_sort;
SET enable_hashagg = off;
SELECT sqlstate_of($$SELECT a, count(*) FROM mixed_t GROUP BY a$$) AS group_by_sort;
RESET enable_hashagg;
SELECT sqlstate_of($$SELECT a FROM mixed_t ORDER BY a$$) AS order_by_mixed;
SELECT a FROM mixed_t ORDER BY wallet.currency(a), a;
SELECT wallet.currency(a) AS currency, sum(a), min(a), max(a), count(*)
  FROM mixed_t GROUP BY 1 ORDER BY 1;

-- ---- hash join (and merge join) ----
CREATE TABLE join_l (l int, a wallet.amount);
CREATE TABLE join_r (r int, a wallet.amount);
INSERT INTO join_l VALUES (1, '1.00 USD'), (2, '2.00 USD'), (3, '3.00 USD'), (4, NULL);
INSERT INTO join_r VALUES (10, '2.00 USD'), (20, '3.00 USD'), (30, '3.00 USD'), (40, '4.00 USD'), (50, NULL);
SET enable_mergejoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT l, r, join_l.a FROM join_l JOIN join_r ON join_l.a = join_r.a;
SELECT l, r, join_l.a FROM join_l JOIN join_r ON join_l.a = join_r.a ORDER BY l, r;
-- hash join across currencies: equal only with the same currency
INSERT INTO join_r VALUES (60, '1.00 EUR'), (70, '100 JPY');
INSERT INTO join_l VALUES (5, '100 JPY');
SELECT l, r, join_l.a FROM join_l JOIN join_r ON join_l.a = join_r.a ORDER BY l, r;
RESET enable_mergejoin;
DELETE FROM join_r WHERE r IN (60, 70);
DELETE FROM join_l WHERE l = 5;
SET enable_hashjoin = off;
EXPLAIN (COSTS OFF) SELECT l, r, join_l.a FROM join_l JOIN join_r ON join_l.a = join_r.a;
SELECT l, r, join_l.a FROM join_l JOIN join_r ON join_l.a = join_r.a ORDER BY l, r;
RESET enable_hashjoin;
RESET enable_nestloop;

-- ---- aggregates sum, min, max ----
SELECT sum(a), min(a), max(a), count(a) FROM ops_t WHERE id <= 1000;
SELECT sum(a), min(a), max(a) FROM ops_t WHERE id BETWEEN 1001 AND 1001;  -- only NULL
SELECT sum(a), min(a), max(a) FROM ops_t WHERE false;                     -- empty
SELECT sum(a), min(a), max(a)
  FROM (VALUES ('1.10 USD'::wallet.amount), (NULL), ('-0.10 USD'), (NULL), ('5.00 USD')) AS t(a);
SELECT sum(a), min(a), max(a) FROM (VALUES ('1 COIN'::wallet.amount)) AS t(a);
SELECT wallet.sum(a), wallet.min(a), wallet.max(a)
  FROM (VALUES ('1.250 BHD'::wallet.amount), ('0.001 BHD')) AS t(a);
SELECT sum(a) AS sum_to_max, min(a), max(a)
  FROM (VALUES ('92233720368547758.00 USD'::wallet.amount), ('0.07 USD')) AS t(a);
SELECT sum(a) AS sum_to_min
  FROM (VALUES ('-92233720368547758.00 USD'::wallet.amount), ('-0.08 USD')) AS t(a);
SELECT sum(a) AS extremes FROM (VALUES ('92233720368547758.07 USD'::wallet.amount),
                                       ('-92233720368547758.08 USD')) AS t(a);
SELECT sum(a) FILTER (WHERE a > '0 USD') AS positive, sum(DISTINCT a) AS distinct_sum
  FROM (VALUES ('1.00 USD'::wallet.amount), ('1.00 USD'), ('-2.00 USD')) AS t(a);
-- running total (window aggregate) and per-group sums
SELECT id, a, sum(a) OVER (ORDER BY id) AS running, sum(a) OVER w AS win_sum,
       min(a) OVER w AS win_min, max(a) OVER w AS win_max
  FROM grp_t WHERE id <= 6 WINDOW w AS (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)
 ORDER BY id;
-- errors: mixed currency WL002, overflow 22003 (either end)
SELECT q, sqlstate_of(q) AS result FROM (VALUES
  ($$SELECT sum(a) FROM (VALUES ('1 USD'::wallet.amount), ('1 EUR')) t(a)$$),
  ($$SELECT min(a) FROM (VALUES ('1 USD'::wallet.amount), ('1 EUR')) t(a)$$),
  ($$SELECT max(a) FROM (VALUES ('1 USD'::wallet.amount), ('1 EUR')) t(a)$$),
  ($$SELECT sum(a) FROM (VALUES ('1 COIN'::wallet.amount), (NULL), ('1 DIAMOND')) t(a)$$),
  ($$SELECT sum(a) FROM mixed_t$$),
  ($$SELECT sum(a) FROM (VALUES ('92233720368547758.07 USD'::wallet.amount), ('0.01 USD')) t(a)$$),
  ($$SELECT sum(a) FROM (VALUES ('-92233720368547758.08 USD'::wallet.amount), ('-0.01 USD')) t(a)$$),
  ($$SELECT sum(a) FROM (SELECT '92233720368547758.07 USD'::wallet.amount FROM generate_series(1, 3)) t(a)$$),
  ($$SELECT sum(a) OVER () FROM (VALUES ('1 USD'::wallet.amount), ('1 EUR')) t(a)$$)
) AS t(q);
SELECT sum(a) FROM (VALUES ('1 USD'::wallet.amount), ('1 EUR')) t(a);
SELECT sum(a) FROM (VALUES ('92233720368547758.07 USD'::wallet.amount), ('0.01 USD')) t(a);
-- the total decides, not the running sum: a sum that fits is the same in
-- every row order, however far the partial sums stray (1.3.0)
SELECT sum(a ORDER BY i) AS up, sum(a ORDER BY i DESC) AS down
  FROM (VALUES (1, '9223372036854775807 JPY'::wallet.amount), (2, '1 JPY'), (3, '-1 JPY')) t(i, a);
SELECT sum(a ORDER BY i) AS up, sum(a ORDER BY i DESC) AS down
  FROM (VALUES (1, '-9223372036854775808 JPY'::wallet.amount), (2, '-1 JPY'), (3, '9223372036854775807 JPY'),
               (4, '1 JPY'), (5, '9223372036854775807 JPY')) t(i, a);
SELECT g, sum(a) FROM (VALUES (1, '92233720368547758.07 USD'::wallet.amount), (1, '92233720368547758.07 USD'),
                              (1, '-92233720368547758.08 USD'), (2, '1.00 USD'), (2, NULL)) t(g, a)
 GROUP BY g ORDER BY g;
SELECT sum(a) FROM (VALUES (NULL::wallet.amount), (NULL)) t(a);
SELECT sum(a) FROM (SELECT '92233720368547758.07 USD'::wallet.amount FROM generate_series(1, 3)) t(a);
SELECT sum(a) FROM (VALUES ('1 USD'::wallet.amount), (NULL), ('1 EUR')) t(a);

-- ---- parallel aggregation: the plan and the same result ----
CREATE TABLE par_t (a wallet.amount);
INSERT INTO par_t SELECT wallet.amount(i::bigint, 'EUR') FROM generate_series(1, 20000) i;
ANALYZE par_t;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT sum(a), min(a), max(a) FROM par_t;
SELECT sum(a), min(a), max(a) FROM par_t;
-- partial sums past 64 bits in the workers, a total that fits
CREATE TABLE par_big (a wallet.amount);
INSERT INTO par_big SELECT CASE WHEN i <= 10000 THEN '92233720368547758.07 EUR'::wallet.amount
                                ELSE '-92233720368547758.07 EUR' END
  FROM generate_series(1, 20000) i;
ANALYZE par_big;
EXPLAIN (COSTS OFF) SELECT sum(a) FROM par_big;
SELECT sum(a) FROM par_big;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

DROP TABLE ops_t, uniq_t, hash_t, grp_t, mixed_t, join_l, join_r, par_t, par_big;
RESET search_path;
