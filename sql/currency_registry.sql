-- Currency registry: the built-in ISO 4217 table, wallet.currencies,
-- wallet.add_currency, and the per-backend lookup cache.  Every currency
-- this file adds is rolled back again, so later test files see only the
-- registry 00_setup made (ISO + COIN + DIAMOND).

-- ---- wallet.currencies ----
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'wallet' AND table_name = 'currencies' ORDER BY ordinal_position;
SELECT count(*) > 150 AS many_iso, count(*) = count(DISTINCT code) AS codes_unique
  FROM wallet.currencies WHERE iso;
SELECT code, minor_units, iso FROM wallet.currencies
 WHERE code IN ('USD', 'EUR', 'JPY', 'KRW', 'BHD', 'KWD', 'CLF', 'UYW', 'GBP', 'XAU', 'XXX')
 ORDER BY code;
SELECT code, minor_units, name, iso FROM wallet.currencies WHERE code IN ('COIN', 'DIAMOND') ORDER BY code;
SELECT count(*) AS bad_iso_rows FROM wallet.currencies
 WHERE iso AND (code !~ '^[A-Z]{3}$' OR minor_units NOT BETWEEN 0 AND 4 OR name IS NULL OR name = '');
SELECT count(*) AS codes_listed_twice
  FROM (SELECT code FROM wallet.currencies GROUP BY code HAVING count(*) > 1) d;
-- every listed currency is usable in amounts, with its minor units
SELECT count(*) = (SELECT count(*) FROM wallet.currencies) AS all_usable
  FROM wallet.currencies c
 WHERE wallet.minor_units(('1 ' || c.code)::wallet.amount) = c.minor_units
   AND wallet.to_numeric(('1 ' || c.code)::wallet.amount)::text
       = '1' || CASE WHEN c.minor_units > 0 THEN '.' || repeat('0', c.minor_units) ELSE '' END;

-- ---- add_currency errors (the messages, once each) ----
SELECT wallet.add_currency('COIN', 2, 'Coin');
SELECT wallet.add_currency('USD', 3, 'US Dollar');
SELECT wallet.add_currency('A$', 0, 'x');
-- a long malformed code is shown cut to 64 characters, not echoed whole
SELECT public.sqlstate_of($$SELECT wallet.add_currency(repeat('C', 100000), 0, 'x')$$) AS long_code;
SELECT wallet.add_currency('NEWA', 19, 'x');
SELECT count(*) AS newa_rows FROM wallet.currencies WHERE code = 'NEWA';

-- ---- wallet.add_currency, inside a transaction that is rolled back ----
BEGIN;
SELECT wallet.add_currency('GEM', 2, 'Gem') AS new;
SELECT wallet.add_currency('GEM', 2, 'Gem') AS again;
SELECT wallet.add_currency('gem', 2, 'Another name') AS again_lower_case;
SELECT wallet.add_currency('COIN', 0, 'Coin') AS coin_again;
SELECT wallet.add_currency('pts9', 1, NULL) AS lower_case_with_digit;
SELECT wallet.add_currency('ATTOCOIN', 18, 'Eighteen decimals') AS eight_chars_18_units;
SELECT wallet.add_currency('ZERO', 0, 'Zero decimals') AS zero_units;
SELECT code, minor_units, name, iso FROM wallet.currencies
 WHERE code IN ('GEM', 'PTS9', 'ATTOCOIN', 'ZERO', 'COIN') ORDER BY code;
-- ISO codes: the same minor units is a no-op (false), different is 22023
SELECT wallet.add_currency('USD', 2, 'US Dollar') AS iso_same_units;
SELECT q, sqlstate_of(q) AS result FROM (VALUES
  ($$SELECT wallet.add_currency('GEM', 3, 'Gem')$$),
  ($$SELECT wallet.add_currency('COIN', 2, 'Coin')$$),
  ($$SELECT wallet.add_currency('USD', 3, 'US Dollar')$$),
  ($$SELECT wallet.add_currency('jpy', 2, 'Yen')$$),
  ($$SELECT wallet.add_currency('AB', 0, 'x')$$),
  ($$SELECT wallet.add_currency('ABCDEFGHI', 0, 'x')$$),
  ($$SELECT wallet.add_currency('1ABC', 0, 'x')$$),
  ($$SELECT wallet.add_currency('AB-C', 0, 'x')$$),
  ($$SELECT wallet.add_currency(' ABC', 0, 'x')$$),
  ($$SELECT wallet.add_currency('', 0, 'x')$$),
  ($$SELECT wallet.add_currency('NEWA', -1, 'x')$$),
  ($$SELECT wallet.add_currency('NEWA', 19, 'x')$$),
  ($$SELECT wallet.add_currency('NEWA', NULL, 'x')$$),
  ($$SELECT wallet.add_currency('NEWA', 2147483647, 'x')$$),
  ($$SELECT wallet.add_currency('NEWA', 0, '')$$),
  ($$SELECT wallet.add_currency('NEWA', 0, repeat('n', 201))$$)
) AS t(q);
-- a failed add_currency changed nothing
SELECT code, minor_units FROM wallet.currencies WHERE code IN ('GEM', 'COIN', 'NEWA') ORDER BY code;

-- added currencies are usable at once
SELECT '12.34 GEM'::wallet.amount AS gem, '1.5 PTS9'::wallet.amount AS pts9,
       wallet.amount(1::bigint, 'zero') AS zero_units, wallet.amount(12.3, 'gem') AS gem_numeric;
SELECT '9.223372036854775807 ATTOCOIN'::wallet.amount AS atto_max,
       '-9.223372036854775808 ATTOCOIN'::wallet.amount AS atto_min,
       '0.000000000000000001 attocoin'::wallet.amount AS atto_one,
       wallet.to_numeric('1 ATTOCOIN') AS atto_numeric,
       wallet.amount_send('1 ATTOCOIN') AS atto_bytes;
SELECT input, sqlstate_of(format('SELECT %L::wallet.amount', input)) AS result
  FROM (VALUES ('9.223372036854775808 ATTOCOIN'), ('10 ATTOCOIN'),
               ('0.0000000000000000001 ATTOCOIN'), ('1.234 GEM'), ('1.5 ZERO')) AS t(input);
SELECT '1.00 GEM'::wallet.amount + '2.50 GEM'::wallet.amount AS gem_sum,
       wallet.convert('1.00 USD', 10, 'GEM') AS usd_to_gem,
       wallet.convert('10.00 GEM', 0.1, 'USD') AS gem_to_usd,
       wallet.split('1.00 GEM', 3) AS gem_split;
SELECT sqlstate_of($$SELECT '1 GEM'::wallet.amount + '1 USD'::wallet.amount$$) AS gem_plus_usd;
ROLLBACK;

-- ---- after the rollback the codes are unknown again (cache flushed) ----
SELECT code, sqlstate_of(format('SELECT %L::wallet.amount', '1 ' || code)) AS as_text,
       sqlstate_of(format('SELECT wallet.amount(1::bigint, %L)', code)) AS from_units
  FROM (VALUES ('GEM'), ('PTS9'), ('ATTOCOIN'), ('ZERO')) AS t(code);
SELECT count(*) AS listed FROM wallet.currencies WHERE code IN ('GEM', 'PTS9', 'ATTOCOIN', 'ZERO');

-- ---- the same, step by step: unknown, added, used, rolled back ----
SELECT sqlstate_of($$SELECT '1 TMPX'::wallet.amount$$) AS before;
BEGIN;
SELECT wallet.add_currency('TMPX', 2, 'Temporary') AS added;
SELECT '1.50 TMPX'::wallet.amount AS inside, wallet.amount(150::bigint, 'TMPX') AS from_units;
SELECT code, minor_units FROM wallet.currencies WHERE code = 'TMPX';
ROLLBACK;
SELECT sqlstate_of($$SELECT '1.50 TMPX'::wallet.amount$$) AS after_rollback,
       sqlstate_of($$SELECT wallet.amount(150::bigint, 'TMPX')$$) AS from_units_after,
       sqlstate_of($$SELECT wallet.convert('1 USD', 1, 'TMPX')$$) AS convert_after;
SELECT '1.50 TMPX'::wallet.amount;
SELECT count(*) AS listed FROM wallet.currencies WHERE code = 'TMPX';
-- the code can then be added again, with other minor units
BEGIN;
SELECT wallet.add_currency('TMPX', 3, 'Temporary again') AS readded;
SELECT '1.500 TMPX'::wallet.amount AS readded_amount;
SELECT sqlstate_of($$SELECT '1.5000 TMPX'::wallet.amount$$) AS four_decimals;
ROLLBACK;

-- ---- through a subtransaction: ROLLBACK TO SAVEPOINT forgets the code ----
BEGIN;
SAVEPOINT s1;
SELECT wallet.add_currency('TMPY', 0, 'Temporary Y') AS added;
SELECT '7 TMPY'::wallet.amount AS inside;
ROLLBACK TO SAVEPOINT s1;
SELECT sqlstate_of($$SELECT '7 TMPY'::wallet.amount$$) AS after_rollback_to_savepoint;
SELECT wallet.add_currency('TMPY', 1, 'Temporary Y') AS readded_in_same_xact;
SELECT '7.5 TMPY'::wallet.amount AS inside_again;
SAVEPOINT s2;
SELECT sqlstate_of($$SELECT '7.5 TMPY'::wallet.amount$$) AS in_nested_savepoint;
RELEASE SAVEPOINT s2;
ROLLBACK;
SELECT sqlstate_of($$SELECT '7.5 TMPY'::wallet.amount$$) AS after_rollback;

-- nothing this file added is left
SELECT code FROM wallet.currencies WHERE NOT iso AND code NOT IN ('COIN', 'DIAMOND')
   AND code IN ('GEM', 'PTS9', 'ATTOCOIN', 'ZERO', 'TMPX', 'TMPY', 'NEWA');
