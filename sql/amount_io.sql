-- wallet.amount: text input/output, binary send/receive, storage.
-- Contract: SPEC.md "Money type".

-- ---- storage: fixed length, at most 16 bytes ----
SELECT typlen, typbyval, typalign, typstorage
  FROM pg_type WHERE oid = 'wallet.amount'::regtype;
SELECT pg_column_size('12.34 USD'::wallet.amount) AS size_usd,
       pg_column_size('1 DIAMOND'::wallet.amount) AS size_diamond;

-- ---- text form: the examples of the contract ----
SELECT '12.34 USD'::wallet.amount, '-0.50 EUR'::wallet.amount,
       '100 JPY'::wallet.amount, '1.250 BHD'::wallet.amount,
       '500 COIN'::wallet.amount, '7 DIAMOND'::wallet.amount;

-- ---- accepted spellings; output always has exactly the minor units ----
-- (input shown with tab, newline, CR, FF and VT as #)
SELECT translate(input, E'\t\n\r\f' || chr(11), '#####') AS input,
       input::wallet.amount AS amount, wallet.units(input::wallet.amount) AS units
  FROM (VALUES
    ('12.34 USD'), ('12.3 USD'), ('12 USD'), ('0 USD'), ('0.00 USD'),
    ('-0 USD'), ('-0.00 USD'), ('+0 USD'),
    ('0.01 USD'), ('-0.01 USD'), ('0.1 USD'),
    ('+5 USD'), ('-5 USD'), ('007 USD'), ('0000012.34 USD'), ('00.01 USD'),
    ('12.34 usd'), ('12.34 Usd'), ('500 coin'), ('3 Diamond'),
    ('   12.34 USD'), ('12.34 USD   '), ('12.34     USD'), (E'12.34\tUSD'),
    (E'\t12.34\tUSD\n'), (E'\r\n 12.34 \f USD ' || chr(11)),
    ('100 JPY'), ('-100 JPY'), ('0 JPY'),
    ('1.250 BHD'), ('1.25 BHD'), ('1 BHD'), ('0.001 BHD'), ('-0.001 BHD'),
    ('5 CLF'), ('0.0001 CLF'), ('1.5 CLF'),
    ('1 XAU'), ('2 MGA'), ('3 KWD'), ('4 UYW')
  ) AS t(input);

-- the canonical text reads back to the same value
SELECT a, a::text::wallet.amount = a AS round_trips
  FROM (VALUES ('12.3 usd'::wallet.amount), ('-0.5 EUR'), ('1.25 BHD'),
               ('92233720368547758.07 USD'), ('-92233720368547758.08 USD')) AS t(a);

SELECT NULL::wallet.amount IS NULL AS null_stays_null;

-- ---- int64 edges: exactly at the limits is fine ----
SELECT input, input::wallet.amount AS amount, wallet.units(input::wallet.amount) AS units
  FROM (VALUES
    ('92233720368547758.07 USD'), ('-92233720368547758.08 USD'),
    ('92233720368547758 USD'), ('-92233720368547758 USD'),
    ('000000000000000000092233720368547758.07 USD'),
    ('9223372036854775807 JPY'), ('-9223372036854775808 JPY'),
    ('+9223372036854775807 COIN'), ('-0009223372036854775808 COIN'),
    ('9223372036854775.807 BHD'), ('-9223372036854775.808 BHD'),
    ('922337203685477.5807 CLF'), ('-922337203685477.5808 CLF')
  ) AS t(input);

-- ---- beyond the limits: 22003, never wrapped or rounded ----
SELECT input, sqlstate_of(format('SELECT %L::wallet.amount', input)) AS result
  FROM (VALUES
    ('92233720368547758.08 USD'), ('-92233720368547758.09 USD'),
    ('92233720368547759 USD'), ('-92233720368547759 USD'),
    ('92233720368547758.10 USD'), ('100000000000000000 USD'),
    ('9223372036854775808 JPY'), ('-9223372036854775809 JPY'),
    ('18446744073709551616 JPY'), ('18446744073709551615 JPY'),
    ('9223372036854775.808 BHD'), ('-9223372036854775.809 BHD'),
    ('922337203685477.5808 CLF'), ('-922337203685477.5809 CLF'),
    ('99999999999999999999999999999999999999999999999999 USD'),
    ('-99999999999999999999999999999999999999999999999999.99 USD'),
    ('99999999999999999999999999999999999999999999999999 COIN')
  ) AS t(input);
SELECT sqlstate_of(format('SELECT %L::wallet.amount', repeat('9', 5000) || ' JPY')) AS five_thousand_digits;
SELECT (repeat('0', 5000) || '1.23 USD')::wallet.amount AS leading_zeros_5000;

-- ---- more decimals than the currency has: 22P02, never rounded ----
SELECT input, sqlstate_of(format('SELECT %L::wallet.amount', input)) AS result
  FROM (VALUES
    ('1.234 USD'), ('1.230 USD'), ('1.000 USD'), ('-0.001 USD'),
    ('1.5 JPY'), ('1.50 JPY'), ('1.0 JPY'), ('0.0 JPY'),
    ('1.2500 BHD'), ('0.00001 CLF'),
    ('0.5 COIN'), ('1.0 DIAMOND'),
    ('92233720368547758.071 USD')
  ) AS t(input);

-- ---- unknown currency: WL011 (also wins over a precision problem) ----
SELECT input, sqlstate_of(format('SELECT %L::wallet.amount', input)) AS result
  FROM (VALUES ('1 XYZ'), ('1 xyz'), ('1.234 XYZ'), ('1 GOLD'), ('1 COINS'),
               ('1 ABCDEFGH'), ('1 USD1'), ('99999999999999999999999 XYZ')) AS t(input);

-- ---- malformed currency code: 22P02 ----
SELECT input, sqlstate_of(format('SELECT %L::wallet.amount', input)) AS result
  FROM (VALUES ('1 US'), ('1 U'), ('1 U$D'), ('1 USDOLLARSX'), ('1 ABCDEFGHI'),
               ('1 1USD'), ('1 US-D'), ('1 USD;'), ('1 _USD'), ('1 $'),
               ('1 U.S')) AS t(input);

-- ---- garbage and bad numbers: 22P02 ----
SELECT translate(input, E'\t\n', '##') AS input,
       translate(sqlstate_of(format('SELECT %L::wallet.amount', input)), E'\t\n', '##') AS result
  FROM (VALUES
    (''), (' '), ('   '), (E'\t\n'), ('abc'), ('USD'), ('12.34'), ('12.34 '),
    ('USD 12.34'), ('12.34USD'), ('12.34 USD EUR'), ('12.34 USD 5'),
    ('1e3 USD'), ('1E3 USD'), ('1.5e2 USD'),
    ('--1 USD'), ('++1 USD'), ('1- USD'), ('- 1 USD'), ('+ 1 USD'),
    ('+-1 USD'), ('-+1 USD'), ('-USD'), ('- USD'),
    ('.5 USD'), ('-.5 USD'), ('5. USD'), ('5.-1 USD'), ('1..5 USD'), ('1.2.3 USD'),
    ('1,000 USD'), ('1,50 EUR'), ('1 000 USD'), ('1_000 USD'), ('1''000 USD'),
    ('$12.34'), ('12.34 $'), ('$12.34 USD'), ('12.34$ USD'),
    ('NaN USD'), ('Infinity USD'), ('-Infinity USD'), ('0x10 USD'),
    ('(12.34) USD'), ('12.34- USD'), ('12.34 -USD')
  ) AS t(input);

-- the messages, once per kind
SELECT '1.234 USD'::wallet.amount;
SELECT '1 XYZ'::wallet.amount;
SELECT '1 U$D'::wallet.amount;
SELECT '1,000 USD'::wallet.amount;
SELECT '92233720368547758.08 USD'::wallet.amount;

-- ---- in a table: input errors abort the statement, nothing is stored ----
CREATE TEMP TABLE io_t (a wallet.amount);
INSERT INTO io_t VALUES ('1 USD'), ('2 USD'), ('3.333 USD');
INSERT INTO io_t VALUES ('1 USD'), ('2.5 JPY');
SELECT count(*) AS stored FROM io_t;

-- ---- binary send: int8 units (network order), int1 minor units, ASCII code ----
SELECT a, wallet.amount_send(a) AS bytes
  FROM (VALUES ('12.34 USD'::wallet.amount), ('-0.50 EUR'), ('100 JPY'),
               ('1.250 BHD'), ('500 COIN'), ('7 DIAMOND'), ('0 CLF'),
               ('92233720368547758.07 USD'), ('-92233720368547758.08 USD')) AS t(a);

-- ---- binary receive: a COPY ... (FORMAT binary) round trip through a file
-- in the server's data directory (only the server reads and writes it).
SELECT current_setting('data_directory') || '/wallet_regress_amount_io.bin' AS binfile \gset
CREATE TEMP TABLE bin_src (id int, a wallet.amount);
INSERT INTO bin_src VALUES (1, '12.34 USD'), (2, '-0.50 EUR'), (3, '100 JPY'),
    (4, '1.250 BHD'), (5, '500 COIN'), (6, '0 DIAMOND'), (7, '1.0001 CLF'),
    (8, '92233720368547758.07 USD'), (9, '-92233720368547758.08 USD'), (10, NULL);
COPY bin_src TO :'binfile' (FORMAT binary);
CREATE TEMP TABLE bin_dst (id int, a wallet.amount);
COPY bin_dst FROM :'binfile' (FORMAT binary);
SELECT s.id, s.a AS sent, d.a AS received,
       d.a = s.a OR (d.a IS NULL AND s.a IS NULL) AS same
  FROM bin_src s JOIN bin_dst d USING (id) ORDER BY id;

-- crafted binary values: the raw bytes of a bytea column written with
-- COPY binary are read back as one wallet.amount field.
CREATE TEMP TABLE bin_raw (b bytea);
CREATE TEMP TABLE bin_one (a wallet.amount);
CREATE FUNCTION pg_temp.recv(bytes bytea, file text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    TRUNCATE bin_raw;
    TRUNCATE bin_one;
    INSERT INTO bin_raw VALUES (bytes);
    EXECUTE format('COPY bin_raw TO %L (FORMAT binary)', file);
    r := public.sqlstate_of(format('COPY bin_one FROM %L (FORMAT binary)', file));
    IF r = 'ok' THEN
        SELECT a::text INTO r FROM bin_one;
    END IF;
    RETURN r;
END
$$;
SELECT what, pg_temp.recv(bytes, :'binfile') AS result
  FROM (VALUES
    ('USD 12.34',               '\x00000000000004d202555344'::bytea),
    ('lower-case code',         '\x00000000000004d202757364'),
    ('COIN',                    '\x00000000000001f400434f494e'),
    ('8-char code unknown',     '\x0000000000000001004142434445464748'),
    ('int64 min USD',           '\x800000000000000002555344'),
    ('non-ASCII byte in code',  '\x0000000000000001025859a5'),
    ('unknown currency XYZ',    '\x00000000000000010258595a'),
    ('minor units say 0 (USD)', '\x00000000000004d200555344'),
    ('minor units say 3 (JPY)', '\x0000000000000064034a5059'),
    ('code too short',          '\x00000000000004d2025553'),
    ('code too long',           '\x00000000000004d2024142434445464748494a'),
    ('code with NUL',           '\x00000000000004d20255534400'),
    ('code starts with digit',  '\x00000000000004d20231555344'),
    ('no code',                 '\x00000000000004d202'),
    ('no minor-units byte',     '\x00000000000004d2'),
    ('truncated units',         '\x000004d2'),
    ('empty',                   '\x')
  ) AS t(what, bytes);

-- remove the file (COPY ... TO PROGRAM, as the server's user)
\set rmcmd 'rm -f ' :binfile
COPY (SELECT 1 WHERE false) TO PROGRAM :'rmcmd';
