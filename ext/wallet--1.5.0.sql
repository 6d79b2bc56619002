-- wallet 1.5.0: generated from ext/install/*.sql by the Makefile; edit the parts.
\echo Use "CREATE EXTENSION wallet" to load this file. \quit

-- ==== ext/install/00_schema.sql ====
-- ============================================================================
-- Schema wallet
-- The control file names it; CREATE EXTENSION creates it, owned by the
-- installing superuser, unless it already exists.  Its owner can rename it
-- and create another schema wallet in its place, and the extension's
-- SECURITY DEFINER functions and its background worker call wallet.* by
-- name with superuser rights: a schema owned by any other role would hand
-- that role those rights.  So it must belong to a superuser (1.4.0).
-- ============================================================================
DO $$
DECLARE
    owner_name text;
    owner_super boolean;
BEGIN
    SELECT r.rolname, r.rolsuper INTO owner_name, owner_super
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
     WHERE n.nspname = 'wallet';
    IF NOT owner_super THEN
        RAISE EXCEPTION 'schema wallet is owned by role %, which is not a superuser', owner_name
            USING ERRCODE = '42501',
                  DETAIL = 'Its owner could put its own objects where the extension''s SECURITY DEFINER functions and background worker, which run with superuser rights, look for wallet.*.',
                  HINT = 'ALTER SCHEMA wallet OWNER TO a superuser, or drop the schema, then retry.';
    END IF;
END
$$;

-- ==== ext/install/10_currency.sql ====
-- ============================================================================
-- Currency registry
-- ISO 4217 currencies are compiled into the library (src/currency_iso.c);
-- virtual units (COIN, DIAMOND, ...) are rows of wallet.custom_currencies.
-- ============================================================================

-- Canonical (upper-case) form of a well-formed code, or error 22P02.
CREATE FUNCTION wallet.normalize_currency(code text) RETURNS text
    AS 'MODULE_PATHNAME', 'wallet_normalize_currency'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- True for the compiled-in ISO 4217 codes.
CREATE FUNCTION wallet.is_iso_currency(code text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'wallet_is_iso_currency'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- The compiled-in ISO 4217 table.
CREATE FUNCTION wallet.iso_currencies(OUT code text, OUT minor_units int, OUT name text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'wallet_iso_currencies'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 200;

-- Currencies added with wallet.add_currency.  Rows are never updated or
-- deleted (amounts already stored depend on their minor units).
CREATE TABLE wallet.custom_currencies (
    code        text PRIMARY KEY
                CHECK (code = wallet.normalize_currency(code) AND NOT wallet.is_iso_currency(code)),
    minor_units int  NOT NULL CHECK (minor_units BETWEEN 0 AND 18),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('wallet.custom_currencies', '');

-- Every change sends a relcache invalidation so each backend drops its
-- cached lookups (also on rollback).
CREATE FUNCTION wallet.currency_registry_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'wallet_currency_registry_changed'
    LANGUAGE C;
CREATE TRIGGER custom_currencies_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON wallet.custom_currencies
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.currency_registry_changed();

-- All currencies: ISO 4217 (built in) and added ones.
CREATE VIEW wallet.currencies AS
    SELECT code, minor_units, name, true AS iso FROM wallet.iso_currencies()
    UNION ALL
    SELECT code, minor_units, name, false AS iso FROM wallet.custom_currencies;
COMMENT ON VIEW wallet.currencies IS
    'Every currency the wallet knows: ISO 4217 (iso = true) and the units added with wallet.add_currency.';

-- Registers a virtual unit such as COIN or DIAMOND.  Guarantees: the code
-- is well formed and not an ISO code; re-adding the same code with the same
-- minor units is a no-op (returns false), with different minor units an
-- error (amounts already stored depend on them).  Returns true when added.
CREATE FUNCTION wallet.add_currency(code text, minor_units int, name text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text := wallet.normalize_currency(code);
    existing int;
BEGIN
    IF code IS NULL OR minor_units IS NULL THEN
        RAISE EXCEPTION 'wallet.add_currency: code and minor_units must not be null'
            USING ERRCODE = '22004',
                  DETAIL = format('code %s, minor_units %s.', coalesce(quote_literal(code), 'NULL'),
                                  coalesce(minor_units::text, 'NULL'));
    END IF;
    IF minor_units < 0 OR minor_units > 18 THEN
        RAISE EXCEPTION 'minor_units must be between 0 and 18, got %', minor_units
            USING ERRCODE = '22023',
                  DETAIL = format('Currency %s was given %s minor units; a currency has 0 to 18.', c, minor_units);
    END IF;
    IF wallet.is_iso_currency(c) THEN
        IF (SELECT i.minor_units FROM wallet.iso_currencies() i WHERE i.code = c) = add_currency.minor_units THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION '% is an ISO 4217 currency and cannot be redefined', c
            USING ERRCODE = '22023',
                  DETAIL = format('%s is built in with %s minor units; %s were requested.', c,
                                  (SELECT i.minor_units FROM wallet.iso_currencies() i WHERE i.code = c),
                                  add_currency.minor_units);
    END IF;
    SELECT cc.minor_units INTO existing FROM wallet.custom_currencies cc WHERE cc.code = c;
    IF FOUND THEN
        IF existing = add_currency.minor_units THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION 'currency % already exists with % minor units', c, existing
            USING ERRCODE = '22023',
                  DETAIL = format('%s has %s minor units; %s were requested.', c, existing, add_currency.minor_units),
                  HINT = 'Minor units of a currency never change.';
    END IF;
    IF length(coalesce(add_currency.name, c)) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'the name of currency % must be 1 to 200 characters', c
            USING ERRCODE = '22023',
                  DETAIL = format('The name has %s characters.', length(add_currency.name));
    END IF;
    INSERT INTO wallet.custom_currencies (code, minor_units, name)
        VALUES (c, add_currency.minor_units, coalesce(add_currency.name, c))
        ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;           -- added concurrently by another session
    END IF;
    PERFORM wallet.audit_row('wallet.custom_currencies', 'INSERT', NULL, wallet.audit_jsonb(cc))
       FROM wallet.custom_currencies cc WHERE cc.code = c;
    RETURN true;
END
$$;

-- ==== ext/install/20_amount.sql ====
-- ============================================================================
-- wallet.amount: an exact amount of one currency.
-- 16 bytes: int64 minor units + the currency code.  Text form '12.34 USD';
-- output always shows exactly the currency's minor units; input never
-- rounds.  Binary form: int8 units, int1 minor units, ASCII code.
-- ============================================================================

CREATE TYPE wallet.amount;

CREATE FUNCTION wallet.amount_in(cstring) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_out(wallet.amount) RETURNS cstring
    AS 'MODULE_PATHNAME', 'amount_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_recv(internal) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_send(wallet.amount) RETURNS bytea
    AS 'MODULE_PATHNAME', 'amount_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE wallet.amount (
    INTERNALLENGTH = 16,
    INPUT = wallet.amount_in,
    OUTPUT = wallet.amount_out,
    RECEIVE = wallet.amount_recv,
    SEND = wallet.amount_send,
    ALIGNMENT = double,
    STORAGE = plain
);
COMMENT ON TYPE wallet.amount IS 'Exact amount of one currency: int64 minor units + currency code';

-- ---- constructors and accessors ----

-- Amount from minor units: wallet.amount(1234, 'USD') = '12.34 USD'.
CREATE FUNCTION wallet.amount(units bigint, currency text) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_from_units' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- Integer literals resolve here (as units, like the bigint form) rather
-- than being ambiguous between the bigint and numeric forms.
CREATE FUNCTION wallet.amount(units integer, currency text) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_from_int4' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- Amount from a decimal value: exact or error (22P02), never rounded.
CREATE FUNCTION wallet.amount(value numeric, currency text) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_from_numeric' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- Minor units as bigint.
CREATE FUNCTION wallet.units(wallet.amount) RETURNS bigint
    AS 'MODULE_PATHNAME', 'amount_units' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- Currency code.
CREATE FUNCTION wallet.currency(wallet.amount) RETURNS text
    AS 'MODULE_PATHNAME', 'amount_currency' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- Decimal places of the amount's currency.
CREATE FUNCTION wallet.minor_units(wallet.amount) RETURNS int
    AS 'MODULE_PATHNAME', 'amount_minor_units' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- Exact decimal value with the currency's scale: '12.30 USD' → 12.30.
CREATE FUNCTION wallet.to_numeric(wallet.amount) RETURNS numeric
    AS 'MODULE_PATHNAME', 'amount_to_numeric' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- ---- arithmetic: overflow (22003) and currency (WL002) checked ----
-- The operators, abs, sign and the sum/min/max aggregates are created in
-- pg_catalog (as well as wallet for the functions), so that they resolve
-- without wallet on the search_path: applications behind transaction
-- poolers cannot rely on session settings.

CREATE FUNCTION wallet.amount_add(wallet.amount, wallet.amount) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_add' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_sub(wallet.amount, wallet.amount) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_sub' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_neg(wallet.amount) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_neg' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_mul(wallet.amount, bigint) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_mul_int8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_mul(bigint, wallet.amount) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'int8_mul_amount' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.abs(wallet.amount) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_abs' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.sign(wallet.amount) RETURNS int
    AS 'MODULE_PATHNAME', 'amount_sign' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION pg_catalog.abs(wallet.amount) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_abs' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION pg_catalog.sign(wallet.amount) RETURNS int
    AS 'MODULE_PATHNAME', 'amount_sign' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR pg_catalog.+ (LEFTARG = wallet.amount, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_add, COMMUTATOR = OPERATOR(pg_catalog.+));
CREATE OPERATOR pg_catalog.- (LEFTARG = wallet.amount, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_sub);
CREATE OPERATOR pg_catalog.- (RIGHTARG = wallet.amount, FUNCTION = wallet.amount_neg);
CREATE OPERATOR pg_catalog.* (LEFTARG = wallet.amount, RIGHTARG = bigint,
    FUNCTION = wallet.amount_mul, COMMUTATOR = OPERATOR(pg_catalog.*));
CREATE OPERATOR pg_catalog.* (LEFTARG = bigint, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_mul, COMMUTATOR = OPERATOR(pg_catalog.*));

-- ---- comparison ----
-- = and <> are total (different currencies are simply unequal); < <= > >=
-- raise WL002 for different currencies.  The default btree operator class
-- is a total order, by currency code and then units: amount_cmp and the
-- operators ~<~ ~<=~ ~>=~ ~>~, which never raise, so indexes, ORDER BY,
-- GROUP BY, DISTINCT, merge joins and the planner's statistics work on
-- columns that mix currencies (see src/amount_ops.c).  The checking
-- operators estimate their selectivity through the total ones, and cost
-- more than a plain function call, so that the planner evaluates them
-- after cheaper conditions of the same WHERE (such as
-- wallet.currency(a) = 'USD'), not on rows those conditions exclude.

CREATE FUNCTION wallet.amount_eq(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION wallet.amount_ne(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION wallet.amount_lt(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;
CREATE FUNCTION wallet.amount_le(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;
CREATE FUNCTION wallet.amount_gt(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;
CREATE FUNCTION wallet.amount_ge(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;
CREATE FUNCTION wallet.amount_order_lt(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_order_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION wallet.amount_order_le(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_order_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION wallet.amount_order_ge(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_order_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION wallet.amount_order_gt(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_order_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION wallet.amount_ltsel(internal, oid, internal, integer) RETURNS float8
    AS 'MODULE_PATHNAME', 'amount_ltsel' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_lesel(internal, oid, internal, integer) RETURNS float8
    AS 'MODULE_PATHNAME', 'amount_lesel' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_gtsel(internal, oid, internal, integer) RETURNS float8
    AS 'MODULE_PATHNAME', 'amount_gtsel' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_gesel(internal, oid, internal, integer) RETURNS float8
    AS 'MODULE_PATHNAME', 'amount_gesel' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_cmp(wallet.amount, wallet.amount) RETURNS int
    AS 'MODULE_PATHNAME', 'amount_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_hash(wallet.amount) RETURNS int
    AS 'MODULE_PATHNAME', 'amount_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_hash_extended(wallet.amount, bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'amount_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR pg_catalog.= (LEFTARG = wallet.amount, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_eq, COMMUTATOR = OPERATOR(pg_catalog.=),
    NEGATOR = OPERATOR(pg_catalog.<>), RESTRICT = eqsel, JOIN = eqjoinsel,
    HASHES, MERGES);
CREATE OPERATOR pg_catalog.<> (LEFTARG = wallet.amount, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_ne, COMMUTATOR = OPERATOR(pg_catalog.<>),
    NEGATOR = OPERATOR(pg_catalog.=), RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR pg_catalog.< (LEFTARG = wallet.amount, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_lt, COMMUTATOR = OPERATOR(pg_catalog.>),
    NEGATOR = OPERATOR(pg_catalog.>=), RESTRICT = wallet.amount_ltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR pg_catalog.<= (LEFTARG = wallet.amount, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_le, COMMUTATOR = OPERATOR(pg_catalog.>=),
    NEGATOR = OPERATOR(pg_catalog.>), RESTRICT = wallet.amount_lesel, JOIN = scalarlejoinsel);
CREATE OPERATOR pg_catalog.> (LEFTARG = wallet.amount, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_gt, COMMUTATOR = OPERATOR(pg_catalog.<),
    NEGATOR = OPERATOR(pg_catalog.<=), RESTRICT = wallet.amount_gtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR pg_catalog.>= (LEFTARG = wallet.amount, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_ge, COMMUTATOR = OPERATOR(pg_catalog.<=),
    NEGATOR = OPERATOR(pg_catalog.<), RESTRICT = wallet.amount_gesel, JOIN = scalargejoinsel);

-- the total order (currency code, then units) of the operator class
CREATE OPERATOR pg_catalog.~<~ (LEFTARG = wallet.amount, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_order_lt, COMMUTATOR = OPERATOR(pg_catalog.~>~),
    NEGATOR = OPERATOR(pg_catalog.~>=~), RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR pg_catalog.~<=~ (LEFTARG = wallet.amount, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_order_le, COMMUTATOR = OPERATOR(pg_catalog.~>=~),
    NEGATOR = OPERATOR(pg_catalog.~>~), RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR pg_catalog.~>=~ (LEFTARG = wallet.amount, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_order_ge, COMMUTATOR = OPERATOR(pg_catalog.~<=~),
    NEGATOR = OPERATOR(pg_catalog.~<~), RESTRICT = scalargesel, JOIN = scalargejoinsel);
CREATE OPERATOR pg_catalog.~>~ (LEFTARG = wallet.amount, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_order_gt, COMMUTATOR = OPERATOR(pg_catalog.~<~),
    NEGATOR = OPERATOR(pg_catalog.~<=~), RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

CREATE OPERATOR CLASS wallet.amount_ops
    DEFAULT FOR TYPE wallet.amount USING btree AS
        OPERATOR 1 pg_catalog.~<~,
        OPERATOR 2 pg_catalog.~<=~,
        OPERATOR 3 pg_catalog.=,
        OPERATOR 4 pg_catalog.~>=~,
        OPERATOR 5 pg_catalog.~>~,
        FUNCTION 1 wallet.amount_cmp(wallet.amount, wallet.amount);

-- The checking operators as a btree ordering too (non-default): they stay
-- valid sort operators, so ORDER BY a USING < (how pg_dump writes a view
-- that sorted amounts before 1.1.0) keeps working, and an index built with
-- this class serves range conditions with the check.  Its equality is a
-- twin of = (~=~, not mergeable), so that = belongs to one btree family
-- only and the planner never estimates a merge join through < on
-- statistics that mix currencies.
CREATE OPERATOR pg_catalog.~=~ (LEFTARG = wallet.amount, RIGHTARG = wallet.amount,
    FUNCTION = wallet.amount_eq, COMMUTATOR = OPERATOR(pg_catalog.~=~),
    RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR CLASS wallet.amount_checked_ops
    FOR TYPE wallet.amount USING btree AS
        OPERATOR 1 pg_catalog.<,
        OPERATOR 2 pg_catalog.<=,
        OPERATOR 3 pg_catalog.~=~,
        OPERATOR 4 pg_catalog.>=,
        OPERATOR 5 pg_catalog.>,
        FUNCTION 1 wallet.amount_cmp(wallet.amount, wallet.amount);

CREATE OPERATOR CLASS wallet.amount_hash_ops
    DEFAULT FOR TYPE wallet.amount USING hash AS
        OPERATOR 1 pg_catalog.=,
        FUNCTION 1 wallet.amount_hash(wallet.amount),
        FUNCTION 2 wallet.amount_hash_extended(wallet.amount, bigint);

-- ---- aggregates: currency and overflow checked, parallel safe ----
-- min and max have no sort operator: an index (ordered across currencies)
-- would answer them without the currency check.

-- sum keeps its running total in 128 bits and checks the range once, at
-- the end: a total that fits is never refused for the order of the rows
-- (1.3.0; before, each step was checked, so a running total that passed
-- the limit on the way failed or not by scan order).
CREATE FUNCTION wallet.amount_sum_add(internal, wallet.amount) RETURNS internal
    AS 'MODULE_PATHNAME', 'amount_sum_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION wallet.amount_sum_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'amount_sum_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION wallet.amount_sum_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'amount_sum_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_sum_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'amount_sum_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_sum_final(internal) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_sum_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION wallet.amount_smaller(wallet.amount, wallet.amount) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_smaller' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION wallet.amount_larger(wallet.amount, wallet.amount) RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_larger' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE wallet.sum(wallet.amount) (
    SFUNC = wallet.amount_sum_add, STYPE = internal, SSPACE = 32,
    FINALFUNC = wallet.amount_sum_final, COMBINEFUNC = wallet.amount_sum_combine,
    SERIALFUNC = wallet.amount_sum_serialize, DESERIALFUNC = wallet.amount_sum_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE wallet.min(wallet.amount) (
    SFUNC = wallet.amount_smaller, STYPE = wallet.amount,
    COMBINEFUNC = wallet.amount_smaller, PARALLEL = SAFE);
CREATE AGGREGATE wallet.max(wallet.amount) (
    SFUNC = wallet.amount_larger, STYPE = wallet.amount,
    COMBINEFUNC = wallet.amount_larger, PARALLEL = SAFE);

CREATE AGGREGATE pg_catalog.sum(wallet.amount) (
    SFUNC = wallet.amount_sum_add, STYPE = internal, SSPACE = 32,
    FINALFUNC = wallet.amount_sum_final, COMBINEFUNC = wallet.amount_sum_combine,
    SERIALFUNC = wallet.amount_sum_serialize, DESERIALFUNC = wallet.amount_sum_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE pg_catalog.min(wallet.amount) (
    SFUNC = wallet.amount_smaller, STYPE = wallet.amount,
    COMBINEFUNC = wallet.amount_smaller, PARALLEL = SAFE);
CREATE AGGREGATE pg_catalog.max(wallet.amount) (
    SFUNC = wallet.amount_larger, STYPE = wallet.amount,
    COMBINEFUNC = wallet.amount_larger, PARALLEL = SAFE);

-- ---- allocation and rounding ----

-- Splits an amount by integer weights; the parts always add up to the
-- whole: truncated shares, leftover minor units by largest remainder, ties
-- to earlier parts.  Errors: empty, negative, null or all-zero ratios (22023).
CREATE FUNCTION wallet.allocate(amount wallet.amount, ratios int[]) RETURNS wallet.amount[]
    AS 'MODULE_PATHNAME', 'amount_allocate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- Splits into `parts` equal shares (earlier parts take the leftover units).
CREATE FUNCTION wallet.split(amount wallet.amount, parts int) RETURNS wallet.amount[]
    AS 'MODULE_PATHNAME', 'amount_split' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- amount × factor, rounded to the currency's minor unit with `rounding`:
-- half_even (default), half_up (ties away from zero), down (toward zero),
-- floor, ceiling.  Overflow is 22003.
CREATE FUNCTION wallet.mul(amount wallet.amount, factor numeric, rounding text DEFAULT 'half_even')
    RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_mul_numeric' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- amount × rate expressed in to_currency, rounded to its minor unit.
-- rate must be positive.
CREATE FUNCTION wallet.convert(amount wallet.amount, rate numeric, to_currency text,
                               rounding text DEFAULT 'half_even')
    RETURNS wallet.amount
    AS 'MODULE_PATHNAME', 'amount_convert' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- ==== ext/install/30_ledger.sql ====
-- ============================================================================
-- Ledger storage: accounts, the journal (transactions + entries), pending
-- credits of hot accounts.  Amounts are stored as bigint minor units; the
-- account's currency gives them meaning.  The read views further down show
-- them as wallet.amount.
--
-- Only the extension owner can write these tables; applications go through
-- the SECURITY DEFINER API functions (see wallet.grant_app).
-- ============================================================================

CREATE SEQUENCE wallet.account_id_seq;
CREATE SEQUENCE wallet.txn_id_seq;
SELECT pg_catalog.pg_extension_config_dump('wallet.account_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('wallet.txn_id_seq', '');

-- One row per account.  balance is the posted balance except, for hot
-- accounts, the credits still waiting in wallet.hot_pending; held is the sum
-- of pending holds debiting the account.
--
-- No CHECK constraints on the tables every posting writes: PostgreSQL
-- re-reads each constraint's expression for every statement (3-5 % of a
-- transfer), the API is the only writer and validates owner, kind, status
-- and amounts, and wallet.verify() checks status and held amounts.
CREATE TABLE wallet.account (
    id              bigint PRIMARY KEY DEFAULT nextval('wallet.account_id_seq'),
    owner           text NOT NULL,
    currency        text NOT NULL,
    kind            text NOT NULL DEFAULT 'user',
    allow_negative  boolean NOT NULL DEFAULT false,
    status          text NOT NULL DEFAULT 'active',
    hot             boolean NOT NULL DEFAULT false,
    balance         bigint NOT NULL DEFAULT 0,
    held            bigint NOT NULL DEFAULT 0,
    version         bigint NOT NULL DEFAULT 0,
    -- set when a forced posting (reversal or refund with allow_negative)
    -- took a non-negative account below zero; wallet.verify() accepts such a
    -- balance and reports it
    forced_negative boolean NOT NULL DEFAULT false,
    -- the account that records this account's debts (refund clawbacks)
    debt_account    bigint,
    metadata        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);   -- room on each page keeps balance updates HOT
ALTER SEQUENCE wallet.account_id_seq OWNED BY wallet.account.id;
CREATE INDEX account_owner_idx ON wallet.account (owner);
CREATE INDEX account_kind_idx ON wallet.account (kind) WHERE kind <> 'user';
SELECT pg_catalog.pg_extension_config_dump('wallet.account', '');

-- The journal: one row per posted transaction.  idempotency_key is unique
-- for ever; request_hash is the SHA-256 of the canonical request, so a
-- retry with the same key is recognised as the same request or refused.
-- reverses links a reversal to its original (unique: reversed at most once).
CREATE TABLE wallet.txn (
    id              bigint PRIMARY KEY DEFAULT nextval('wallet.txn_id_seq'),
    idempotency_key text NOT NULL CONSTRAINT txn_idempotency_key_key UNIQUE,  -- name used by batch.c
    kind            text NOT NULL,
    request_hash    bytea NOT NULL,
    metadata        jsonb,
    reverses        bigint,
    forced          boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE wallet.txn_id_seq OWNED BY wallet.txn.id;
-- created_at follows id closely: a BRIN index serves time ranges at almost
-- no cost per insert.
CREATE INDEX txn_created_at_idx ON wallet.txn USING brin (created_at);
-- A transaction is reversed at most once.  Partial: the few reversals get
-- an index entry, ordinary postings none.
CREATE UNIQUE INDEX txn_reverses_key ON wallet.txn (reverses) WHERE reverses IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('wallet.txn', '');

-- The legs of each transaction: signed minor units per account.  Sum per
-- transaction and currency is zero.
--
-- No foreign keys on purpose: an FK check takes a KEY SHARE lock on the
-- referenced row, which on a hot account (thousands of credits a second)
-- turns into multixact churn on one tuple and queues writers behind any
-- debit.  The engine only writes existing ids (accounts are never deleted,
-- the journal never changes) and wallet.verify() checks the references.
CREATE TABLE wallet.entry (
    txn_id      bigint NOT NULL,
    leg         smallint NOT NULL,
    account_id  bigint NOT NULL,
    amount      bigint NOT NULL,        -- never 0 (the engine refuses zero legs)
    -- appended in transaction order: inserts hit the rightmost leaf page
    PRIMARY KEY (txn_id, leg)
);
-- No index by account here: wallet.index_history() files entries per
-- account behind the postings (wallet.account_history, see
-- 35_history.sql), and wallet.account_entries reads them by account.
SELECT pg_catalog.pg_extension_config_dump('wallet.entry', '');

-- Postings to hot accounts that cannot overdraw them (credits, and debits of
-- accounts allowed to go negative) are posted (their entries exist) but
-- their amounts wait here instead of updating wallet.account.balance, so
-- they take no lock on the account row.  wallet.fold_hot() moves committed
-- rows into the balance; every balance read adds the rows still here.
CREATE TABLE wallet.hot_pending (
    account_id  bigint NOT NULL,
    txn_id      bigint NOT NULL,
    amount      bigint NOT NULL
);
CREATE INDEX hot_pending_account_idx ON wallet.hot_pending (account_id);
SELECT pg_catalog.pg_extension_config_dump('wallet.hot_pending', '');

-- ---- append-only history ----
-- UPDATE, DELETE and TRUNCATE of the journal fail for everyone, the owner
-- included.  (A superuser can still bypass triggers; wallet.audit_verify()
-- detects what that changed.)
CREATE FUNCTION wallet.forbid_change() RETURNS trigger
    AS 'MODULE_PATHNAME', 'wallet_forbid_change' LANGUAGE C;
CREATE TRIGGER txn_append_only BEFORE UPDATE OR DELETE ON wallet.txn
    FOR EACH ROW EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER txn_no_truncate BEFORE TRUNCATE ON wallet.txn
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER entry_append_only BEFORE UPDATE OR DELETE ON wallet.entry
    FOR EACH ROW EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER entry_no_truncate BEFORE TRUNCATE ON wallet.entry
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();
-- Accounts are never deleted (they close); their history is in the journal.
CREATE TRIGGER account_no_delete BEFORE DELETE ON wallet.account
    FOR EACH ROW EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER account_no_truncate BEFORE TRUNCATE ON wallet.account
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();
-- Pending hot credits are posted money: they leave only by folding
-- (wallet.fold_hot deletes committed rows as it adds them to the balance);
-- a TRUNCATE would lose them (1.3.0).
CREATE TRIGGER hot_pending_no_truncate BEFORE TRUNCATE ON wallet.hot_pending
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();

-- ============================================================================
-- Accounts API
-- ============================================================================

-- Opens an account in a registered currency.  Returns its id.
-- Errors: unknown currency WL011, malformed currency 22P02, bad owner/kind 22023.
CREATE FUNCTION wallet.open_account(owner text, currency text, kind text DEFAULT 'user',
                                    allow_negative boolean DEFAULT false,
                                    metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cur text;
    new_id bigint;
BEGIN
    IF owner IS NULL OR currency IS NULL OR kind IS NULL OR allow_negative IS NULL THEN
        RAISE EXCEPTION 'wallet.open_account: owner, currency, kind and allow_negative must not be null'
            USING ERRCODE = '22004',
                  DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN owner IS NULL THEN 'owner' END,
                                                         CASE WHEN currency IS NULL THEN 'currency' END,
                                                         CASE WHEN kind IS NULL THEN 'kind' END,
                                                         CASE WHEN allow_negative IS NULL THEN 'allow_negative' END));
    END IF;
    IF length(owner) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'wallet.open_account: owner must be 1 to 200 characters'
            USING ERRCODE = '22023',
                  DETAIL = format('The owner has %s characters.', length(owner));
    END IF;
    IF octet_length(kind) NOT BETWEEN 1 AND 64 THEN
        RAISE EXCEPTION 'wallet.open_account: kind must be 1 to 64 bytes'
            USING ERRCODE = '22023',
                  DETAIL = format('The kind has %s bytes.', octet_length(kind));
    END IF;
    IF metadata IS NOT NULL AND pg_column_size(metadata) > 65536 THEN
        RAISE EXCEPTION 'wallet.open_account: metadata is larger than 64 kB'
            USING ERRCODE = '22023',
                  DETAIL = format('The metadata takes %s bytes.', pg_column_size(metadata));
    END IF;
    -- validates the code and that the currency is registered
    cur := wallet.currency(wallet.amount(0::bigint, currency));
    INSERT INTO wallet.account (owner, currency, kind, allow_negative, metadata)
        VALUES (open_account.owner, cur, open_account.kind, open_account.allow_negative,
                open_account.metadata)
        RETURNING id INTO new_id;
    PERFORM wallet.audit_row('wallet.account', 'INSERT', NULL, wallet.audit_jsonb(a))
       FROM wallet.account a WHERE a.id = new_id;
    RETURN new_id;
END
$$;

-- Raises the error for a missing account; returns the row otherwise.
CREATE FUNCTION wallet.account_row(id bigint) RETURNS wallet.account
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'account id must not be null' USING ERRCODE = '22004',
            DETAIL = 'The account argument is null.';
    END IF;
    SELECT * INTO r FROM wallet.account a WHERE a.id = account_row.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown account %', id
            USING ERRCODE = 'WL003', DETAIL = format('No account has id %s.', id);
    END IF;
    RETURN r;
END
$$;
REVOKE ALL ON FUNCTION wallet.account_row(bigint) FROM PUBLIC;

-- Pending (not yet folded) credits of a hot account.
CREATE FUNCTION wallet.pending_credits(account_id bigint) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(sum(h.amount), 0)::bigint FROM wallet.hot_pending h
     WHERE h.account_id = pending_credits.account_id
$$;

-- Posted balance: every committed posting, hot credits included, exact
-- right after each commit.  Unknown account: WL003.
CREATE FUNCTION wallet.balance(account bigint) RETURNS wallet.amount
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.account_row(account);
BEGIN
    RETURN wallet.amount(r.balance + CASE WHEN r.hot OR EXISTS (SELECT 1 FROM wallet.hot_pending h WHERE h.account_id = r.id)
                                          THEN wallet.pending_credits(r.id) ELSE 0 END,
                         r.currency);
END
$$;

-- Available balance: posted minus pending holds, minus outstanding debt
-- (a refund clawback that the coins on hand could not cover).
CREATE FUNCTION wallet.available(account bigint) RETURNS wallet.amount
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.account_row(account);
    debt bigint := 0;
BEGIN
    IF r.debt_account IS NOT NULL THEN
        SELECT least(d.balance, 0) INTO debt FROM wallet.account d WHERE d.id = r.debt_account;
    END IF;
    RETURN wallet.amount(r.balance + wallet.pending_credits(r.id) - r.held + debt, r.currency);
END
$$;

-- Marks an account hot (credits bypass its row lock) or back to normal.
-- Going back to normal takes the row lock and the hot-posting lock
-- exclusively (as freeze and close do), so it waits for every credit in
-- flight that skipped the row lock, then folds all pending credits: none
-- is left pending on a normal account.
CREATE FUNCTION wallet.set_hot(id bigint, hot boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF id IS NULL OR hot IS NULL THEN
        RAISE EXCEPTION 'wallet.set_hot: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = format('Account %s, hot %s.', coalesce(id::text, 'NULL'), coalesce(hot::text, 'NULL'));
    END IF;
    IF set_hot.hot THEN
        PERFORM wallet.account_row(id);
    ELSE
        -- the live flows lock a user's row before the platform's accounts,
        -- which is deadlock-free only while those take credits unlocked
        IF EXISTS (SELECT 1 FROM wallet.live_config lc
                    WHERE set_hot.id IN (lc.coin_issuance, lc.coin_revenue, lc.diamond_issuance)
                       OR EXISTS (SELECT 1 FROM jsonb_each(lc.cash_accounts) e
                                   WHERE set_hot.id IN ((e.value ->> 'cash')::bigint, (e.value ->> 'sales')::bigint))) THEN
            RAISE EXCEPTION 'account % is a hot system account of the live flows', id USING ERRCODE = '22023',
                DETAIL = 'wallet.live_setup() made it hot; the live flows rely on it staying hot.';
        END IF;
        PERFORM wallet.lock_account_for_status(id);
    END IF;
    UPDATE wallet.account a SET hot = set_hot.hot, version = a.version + 1
     WHERE a.id = set_hot.id AND a.hot IS DISTINCT FROM set_hot.hot;
    IF NOT set_hot.hot THEN
        PERFORM wallet.fold_hot(set_hot.id);
    END IF;
END
$$;

-- ============================================================================
-- Posting API (C): validation, lock order, balances, journal, idempotency.
-- ============================================================================

CREATE TYPE wallet.leg AS (account bigint, amount wallet.amount);

-- Moves `amount` from one account to another as one transaction; returns
-- the transaction id.  Same key + same request → the first id, nothing
-- posted; same key + different request → WL006.  Errors: WL001 insufficient
-- funds, WL002 currency mismatch, WL003 unknown account, WL004 frozen,
-- WL005 closed, 22023 non-positive amount / same account / bad key, 22004 null.
CREATE FUNCTION wallet.transfer(from_account bigint, to_account bigint, amount wallet.amount,
                                idempotency_key text, kind text DEFAULT 'transfer',
                                metadata jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_transfer'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- One atomic multi-leg transaction.  Legs must be non-zero, balance to zero
-- per currency and match their accounts' currencies (WL007, WL002).
CREATE FUNCTION wallet.post(idempotency_key text, legs wallet.leg[], kind text DEFAULT 'journal',
                            metadata jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_post'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- wallet.post for the extension's own flows (live layer): accepts keys in
-- the reserved "wallet:" prefix, and `reverses`, the transaction this one
-- claws back (a refund of a recharge): like a reversal, at most one such
-- posting per transaction (WL010).  Not granted to anyone.
CREATE FUNCTION wallet.post_system(idempotency_key text, legs wallet.leg[], kind text DEFAULT 'journal',
                                   metadata jsonb DEFAULT NULL, reverses bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_post_system'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Folds committed pending credits of one hot account (or all, when NULL)
-- into the stored balance.  Returns the number of credits folded.
CREATE FUNCTION wallet.fold_hot(account_id bigint DEFAULT NULL) RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_fold_hot'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- ============================================================================
-- Read views (granted to readers and applications)
-- ============================================================================

CREATE VIEW wallet.accounts AS
SELECT a.id, a.owner, a.currency, a.kind, a.allow_negative, a.status, a.hot,
       wallet.amount(a.balance + coalesce(p.pending, 0), a.currency) AS balance,
       wallet.amount(a.balance + coalesce(p.pending, 0) - a.held
                     + coalesce(least(d.balance, 0), 0), a.currency) AS available,
       wallet.amount(a.held, a.currency) AS held,
       wallet.amount(coalesce(-least(d.balance, 0), 0), a.currency) AS debt,
       a.version, a.metadata, a.created_at
  FROM wallet.account a
  LEFT JOIN LATERAL (SELECT sum(h.amount)::bigint AS pending FROM wallet.hot_pending h
                      WHERE h.account_id = a.id) p ON true
  LEFT JOIN wallet.account d ON d.id = a.debt_account;
COMMENT ON VIEW wallet.accounts IS 'Accounts with posted balance, available balance (minus holds and debt), held amount and debt.';

CREATE VIEW wallet.transactions AS
SELECT t.id, t.idempotency_key, t.kind, t.metadata, t.reverses, t.forced, t.created_at
  FROM wallet.txn t;

CREATE VIEW wallet.entries AS
SELECT e.txn_id, e.leg, e.account_id, wallet.amount(e.amount, a.currency) AS amount, t.created_at
  FROM wallet.entry e
  JOIN wallet.account a ON a.id = e.account_id
  JOIN wallet.txn t ON t.id = e.txn_id;

-- Many independent transfers in one call (at most 10,000).  Each row
-- reports its own outcome instead of aborting the call: status 'ok' (tx_id
-- of the new transaction), 'exists' (same key and request already posted:
-- its tx_id), 'idempotency_conflict', 'insufficient_funds',
-- 'unknown_account', 'currency_mismatch', 'account_frozen',
-- 'account_closed', 'invalid_amount', 'same_account', 'invalid_key',
-- 'null_argument'.  Rows are applied in array order; a row repeating an
-- earlier row's key takes that row's outcome ('exists') or, if the request
-- differs, 'idempotency_conflict'.  A batch row and wallet.transfer with
-- the same key and request (kind 'transfer', no metadata) are the same
-- request.  Arrays of different lengths: 22023.
CREATE FUNCTION wallet.transfer_batch(from_accounts bigint[], to_accounts bigint[],
                                      amounts wallet.amount[], idempotency_keys text[])
RETURNS TABLE (idx int, tx_id bigint, status text)
AS 'MODULE_PATHNAME', 'wallet_transfer_batch'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 1000;

-- ==== ext/install/35_history.sql ====
-- ============================================================================
-- The journal per account (src/history.c).
--
-- Postings append their entries in transaction order only; the
-- housekeeping pass wallet.index_history() files committed entries per
-- account into wallet.account_history, in sorted bulk, and moves
-- wallet.history_horizon forward.  Every entry with txn_id <= the horizon
-- is in account_history, every later one only in wallet.entry (the
-- journal's tail); both change in the pass's transaction, so every
-- snapshot sees one clean split.  wallet.account_entries reads the two
-- together: per-account reads are exact at any time, and cheap when
-- housekeeping keeps the tail short (it runs every
-- wallet.housekeeping_naptime, or from cron: see wallet.housekeeping()).
-- ============================================================================

-- One row per account and pass (at most 1,000 entries a row): the
-- account's transaction ids in ascending order and its signed amounts in
-- minor units, aligned.  An account with two legs in one transaction has
-- that id twice.
CREATE TABLE wallet.account_history (
    account_id  bigint NOT NULL,
    last_txn    bigint NOT NULL,        -- the highest id in the row
    first_txn   bigint NOT NULL,        -- the lowest
    txn_ids     bigint[] NOT NULL,
    amounts     bigint[] NOT NULL,
    PRIMARY KEY (account_id, last_txn)
);
SELECT pg_catalog.pg_extension_config_dump('wallet.account_history', '');
-- Filed history is append-only like the journal it mirrors;
-- wallet.verify() checks that it matches the journal.
CREATE TRIGGER account_history_append_only BEFORE UPDATE OR DELETE ON wallet.account_history
    FOR EACH ROW EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER account_history_no_truncate BEFORE TRUNCATE ON wallet.account_history
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();

-- How far the filing got: one row once anything was filed (none before;
-- readers take coalesce(max(merged_through), 0), which also reads a
-- restored dump right).
CREATE TABLE wallet.history_horizon (
    merged_through  bigint NOT NULL,
    merged_at       timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('wallet.history_horizon', '');
CREATE TRIGGER history_horizon_no_delete BEFORE DELETE ON wallet.history_horizon
    FOR EACH ROW EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER history_horizon_no_truncate BEFORE TRUNCATE ON wallet.history_horizon
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();

-- Files every committed entry that no running transaction can still
-- precede into account_history and advances the horizon; returns how many
-- entries it filed.  Waits for writers in flight (honours lock_timeout);
-- one pass at a time; must run in READ COMMITTED (25000 otherwise).
CREATE FUNCTION wallet.index_history() RETURNS bigint
    AS 'MODULE_PATHNAME', 'wallet_index_history'
    LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- The horizon: every entry with txn_id <= it is filed in account_history.
-- A function (STABLE, not inlined) rather than a subquery so that the
-- planner evaluates it when estimating the tail, sees that few entries lie
-- beyond it and reads them through the journal's key.
CREATE FUNCTION wallet.history_merged_through() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(max(h.merged_through), 0)::bigint FROM wallet.history_horizon h $$;

-- The filing step without the wait: files the entries after the horizon up
-- to `upto`, at most about max_entries (whole transactions), and returns
-- how many; 0 when there is nothing left below `upto`.  The caller has
-- waited for every writer that could still commit an id at or below
-- `upto`; the background worker waits once, holding no snapshot, and then
-- calls this in short transactions (a long one would hold back the
-- cleanup of every table's dead rows, and with it the account rows' HOT
-- updates).  Internal.  Errors: 22004 null; 22023 max_entries not
-- positive, upto past the last transaction id drawn.
CREATE FUNCTION wallet.index_history_range(upto bigint, max_entries bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'wallet_index_history_range'
    LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION wallet.index_history_range(bigint, bigint) FROM PUBLIC;

-- Every entry of every account, by account: the filed history up to the
-- horizon plus the journal's tail after it, read in one snapshot.  Filter
-- it by account_id (both parts are then read through their keys):
--   SELECT * FROM wallet.account_entries WHERE account_id = 42 ORDER BY txn_id;
CREATE VIEW wallet.account_entries AS
SELECT x.account_id, x.txn_id, wallet.amount(x.units, a.currency) AS amount, x.units, t.created_at
  FROM (SELECT h.account_id, u.txn_id, u.units
          FROM wallet.account_history h
         CROSS JOIN LATERAL unnest(h.txn_ids, h.amounts) AS u(txn_id, units)
        UNION ALL
        SELECT e.account_id, e.txn_id, e.amount
          FROM wallet.entry e
         WHERE e.txn_id > wallet.history_merged_through()) x
  JOIN wallet.account a ON a.id = x.account_id
  JOIN wallet.txn t ON t.id = x.txn_id;
COMMENT ON VIEW wallet.account_entries IS 'Entries per account (filed history plus the journal''s tail): filter by account_id.';

-- ==== ext/install/40_reading.sql ====
-- ============================================================================
-- Account lifecycle: freeze, unfreeze, close.
-- Each takes the account's hot-posting lock exclusively (waiting for
-- in-flight unlocked credits to commit, see src/ledger.c) and then its row
-- lock, so no posting lands on an account after it was frozen or closed.
-- ============================================================================

CREATE FUNCTION wallet.lock_hot_exclusive(account_id bigint) RETURNS void
    AS 'MODULE_PATHNAME', 'wallet_lock_hot_exclusive' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION wallet.lock_hot_exclusive(bigint) FROM PUBLIC;

-- Locks and returns an account row for a status change; WL003 if missing.
CREATE FUNCTION wallet.lock_account_for_status(id bigint) RETURNS wallet.account
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'account id must not be null' USING ERRCODE = '22004',
            DETAIL = 'The account argument is null.';
    END IF;
    SELECT * INTO r FROM wallet.account a WHERE a.id = lock_account_for_status.id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown account %', id
            USING ERRCODE = 'WL003', DETAIL = format('No account has id %s.', id);
    END IF;
    PERFORM wallet.lock_hot_exclusive(id);
    RETURN r;
END
$$;
REVOKE ALL ON FUNCTION wallet.lock_account_for_status(bigint) FROM PUBLIC;

-- Stops all postings to and from the account (holds already placed can
-- still be voided or expire, not captured).  Freezing a frozen account is a
-- no-op; a closed one is WL005.
CREATE FUNCTION wallet.freeze_account(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.lock_account_for_status(id);
BEGIN
    IF r.status = 'closed' THEN
        RAISE EXCEPTION 'account % is closed', id USING ERRCODE = 'WL005',
            DETAIL = format('Account %s was closed; a closed account cannot be frozen.', id);
    END IF;
    UPDATE wallet.account a SET status = 'frozen', version = a.version + 1
     WHERE a.id = freeze_account.id AND a.status = 'active';
END
$$;

-- Lifts a freeze.  No-op on an active account; WL005 on a closed one.
CREATE FUNCTION wallet.unfreeze_account(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.lock_account_for_status(id);
BEGIN
    IF r.status = 'closed' THEN
        RAISE EXCEPTION 'account % is closed', id USING ERRCODE = 'WL005',
            DETAIL = format('Account %s was closed; a closed account stays closed.', id);
    END IF;
    UPDATE wallet.account a SET status = 'active', version = a.version + 1
     WHERE a.id = unfreeze_account.id AND a.status = 'frozen';
END
$$;

-- Closes an account for good: only at zero posted balance with nothing
-- held and no pending hold towards it (WL012 otherwise).  Closing a closed
-- account is a no-op.  The live flows' accounts (wallet.live_system_role)
-- never close (22023): a closed payout_clearing would refuse every
-- withdrawal for good, a closed debt account every later chargeback.
CREATE FUNCTION wallet.close_account(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.lock_account_for_status(id);
    bal bigint;
    role text;
BEGIN
    IF r.status = 'closed' THEN
        RETURN;
    END IF;
    role := wallet.live_system_role(id);
    IF role IS NOT NULL THEN
        RAISE EXCEPTION 'account % is the platform''s % account and cannot be closed', id, role
            USING ERRCODE = '22023',
                  DETAIL = format('Account %s is the %s account of the live flows; they post to it.', id, role),
                  HINT = 'Freeze it to pause the flows that use it; unfreeze it to resume them.';
    END IF;
    bal := r.balance + wallet.pending_credits(id);
    IF bal <> 0 THEN
        RAISE EXCEPTION 'account % cannot be closed: balance is %', id, wallet.amount(bal, r.currency)
            USING ERRCODE = 'WL012',
                  DETAIL = format('Account %s holds %s; only an account at zero can close.', id, wallet.amount(bal, r.currency)),
                  HINT = 'Transfer the balance out first.';
    END IF;
    IF r.held <> 0 OR EXISTS (SELECT 1 FROM wallet.hold h
                               WHERE h.status = 'pending'
                                 AND (h.from_account = close_account.id OR h.to_account = close_account.id)) THEN
        RAISE EXCEPTION 'account % cannot be closed: it has pending holds', id
            USING ERRCODE = 'WL012',
                  DETAIL = format('Held %s; %s pending holds from or to it.', wallet.amount(r.held, r.currency),
                                  (SELECT count(*) FROM wallet.hold h WHERE h.status = 'pending'
                                      AND (h.from_account = close_account.id OR h.to_account = close_account.id))),
                  HINT = 'Capture or void the holds first.';
    END IF;
    UPDATE wallet.account a SET status = 'closed', version = a.version + 1
     WHERE a.id = close_account.id;
END
$$;

-- ============================================================================
-- Reversals (C): the exact opposite legs, linked to the original, at most
-- once.  Refused (WL001) when it would overdraw an account that may not go
-- negative, unless allow_negative => true (then the account is flagged
-- forced_negative and wallet.verify() reports it).  Unknown transaction:
-- WL009; already reversed: WL010.
-- ============================================================================
CREATE FUNCTION wallet.reverse(tx_id bigint, idempotency_key text, reason text DEFAULT NULL,
                               allow_negative boolean DEFAULT false)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_reverse'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- ============================================================================
-- Reading
-- ============================================================================

-- Posted balance at a point in time: the sum of the account's entries of
-- transactions created at or before `at`.  (Transactions are stamped with
-- their start time, now().)
CREATE FUNCTION wallet.balance_at(account bigint, at timestamptz) RETURNS wallet.amount
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.account_row(account);
BEGIN
    IF at IS NULL THEN
        RAISE EXCEPTION 'at must not be null' USING ERRCODE = '22004',
            DETAIL = format('Account %s: the point in time is null.', account);
    END IF;
    RETURN wallet.amount(coalesce((SELECT sum(x.units) FROM wallet.account_entries x
                                    WHERE x.account_id = r.id AND x.created_at <= balance_at.at), 0)::bigint,
                         r.currency);
END
$$;

-- The account's entries between since (inclusive) and until (exclusive; NULL
-- = open), oldest first, each with the balance after it.  The running
-- balance starts from the balance before `since`.
CREATE FUNCTION wallet.statement(account bigint, since timestamptz DEFAULT '-infinity',
                                 until timestamptz DEFAULT 'infinity')
RETURNS TABLE (txn_id bigint, at timestamptz, kind text, amount wallet.amount,
               balance wallet.amount, metadata jsonb, reverses bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.account_row(account);
    opening bigint;
BEGIN
    since := coalesce(since, '-infinity');
    until := coalesce(until, 'infinity');
    SELECT coalesce(sum(x.units), 0) INTO opening
      FROM wallet.account_entries x
     WHERE x.account_id = r.id AND x.created_at < since;
    RETURN QUERY
    SELECT s.txn_id, s.created_at, s.kind, wallet.amount(s.amount, r.currency),
           wallet.amount((opening + sum(s.amount) OVER (ORDER BY s.created_at, s.txn_id))::bigint, r.currency),
           s.metadata, s.reverses
      FROM (SELECT x.txn_id, t.created_at, t.kind, t.metadata, t.reverses, sum(x.units)::bigint AS amount
              FROM wallet.account_entries x JOIN wallet.txn t ON t.id = x.txn_id
             WHERE x.account_id = r.id AND x.created_at >= since AND x.created_at < until
             GROUP BY x.txn_id, t.created_at, t.kind, t.metadata, t.reverses) s
     ORDER BY s.created_at, s.txn_id;
END
$$;

-- ==== ext/install/50_holds.sql ====
-- ============================================================================
-- Holds (two-phase postings).  A hold reserves funds on from_account
-- (available drops, posted balance does not); it ends exactly once:
-- captured (all or part posted to to_account, the rest released), voided,
-- or expired.  Each of those locks the hold row first, so racing ends are
-- serialised and all but one get WL008.
-- ============================================================================

CREATE SEQUENCE wallet.hold_id_seq;
SELECT pg_catalog.pg_extension_config_dump('wallet.hold_id_seq', '');

CREATE TABLE wallet.hold (
    id              bigint PRIMARY KEY DEFAULT nextval('wallet.hold_id_seq'),
    idempotency_key text NOT NULL UNIQUE,
    request_hash    bytea NOT NULL,
    from_account    bigint NOT NULL,
    to_account      bigint NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        text NOT NULL,
    kind            text NOT NULL,
    metadata        jsonb,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'captured', 'voided', 'expired')),
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    captured        bigint,
    capture_txn     bigint
);
ALTER SEQUENCE wallet.hold_id_seq OWNED BY wallet.hold.id;
CREATE INDEX hold_pending_expiry_idx ON wallet.hold (expires_at) WHERE status = 'pending';
CREATE INDEX hold_from_idx ON wallet.hold (from_account) WHERE status = 'pending';
CREATE INDEX hold_to_idx ON wallet.hold (to_account) WHERE status = 'pending';
SELECT pg_catalog.pg_extension_config_dump('wallet.hold', '');

-- A hold row changes once, from pending to its end state, and only its
-- status, ended_at, captured and capture_txn; it is never deleted.
CREATE FUNCTION wallet.hold_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = 'pending' AND NEW.status <> 'pending'
       AND (NEW.id, NEW.idempotency_key, NEW.request_hash, NEW.from_account, NEW.to_account,
            NEW.amount, NEW.currency, NEW.kind, NEW.metadata, NEW.expires_at, NEW.created_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.idempotency_key, OLD.request_hash, OLD.from_account, OLD.to_account,
            OLD.amount, OLD.currency, OLD.kind, OLD.metadata, OLD.expires_at, OLD.created_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% of wallet.hold is not allowed: a hold only ends once, from pending', TG_OP
        USING ERRCODE = 'WL013',
              DETAIL = format('Hold %s is %s.', OLD.id, OLD.status),
              HINT = 'Use wallet.capture(), wallet.void() or wallet.expire_holds().';
END
$$;
CREATE TRIGGER hold_append_only BEFORE UPDATE OR DELETE ON wallet.hold
    FOR EACH ROW EXECUTE FUNCTION wallet.hold_guard();
CREATE TRIGGER hold_no_truncate BEFORE TRUNCATE ON wallet.hold
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();

-- Reserves `amount` on from_account for a later capture to to_account.
-- Returns the hold id; idempotent by key like wallet.transfer (holds have
-- their own key space).  Errors as wallet.transfer.
CREATE FUNCTION wallet.hold(from_account bigint, to_account bigint, amount wallet.amount,
                            idempotency_key text, expires_at timestamptz DEFAULT NULL,
                            kind text DEFAULT 'hold', metadata jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_hold'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Posts all (amount NULL) or part of a pending hold to its to_account and
-- releases the rest.  Returns the transaction id.  WL008 if the hold is not
-- pending (captured, voided, expired, or past expires_at); WL014 unknown
-- hold; 22023 amount not in (0, held amount]; WL002 other currency.
CREATE FUNCTION wallet.capture(hold_id bigint, amount wallet.amount DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_capture'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Releases a pending hold.  WL008 if it is not pending; WL014 unknown hold.
CREATE FUNCTION wallet.void(hold_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'wallet_void'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Releases every pending hold whose expires_at has passed; returns how
-- many.  Holds being captured or voided right now are skipped (SKIP
-- LOCKED) and left to their own end; accounts are locked in ascending id
-- order before any is changed.
CREATE FUNCTION wallet.expire_holds()
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ids bigint[];
BEGIN
    SELECT array_agg(id ORDER BY id) INTO ids
      FROM (SELECT h.id FROM wallet.hold h
             WHERE h.status = 'pending' AND h.expires_at <= now()
             ORDER BY h.id
             FOR UPDATE SKIP LOCKED
             LIMIT 100000) s;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM wallet.account a
     WHERE a.id IN (SELECT h.from_account FROM wallet.hold h WHERE h.id = ANY (ids))
     ORDER BY a.id
     FOR NO KEY UPDATE;
    UPDATE wallet.account a SET held = a.held - s.total, version = a.version + 1
      FROM (SELECT h.from_account, sum(h.amount)::bigint AS total
              FROM wallet.hold h WHERE h.id = ANY (ids) GROUP BY h.from_account) s
     WHERE a.id = s.from_account;
    UPDATE wallet.hold h SET status = 'expired', ended_at = now() WHERE h.id = ANY (ids);
    RETURN cardinality(ids);
END
$$;

CREATE VIEW wallet.holds AS
SELECT h.id, h.idempotency_key, h.from_account, h.to_account,
       wallet.amount(h.amount, h.currency) AS amount, h.kind, h.metadata, h.status,
       h.expires_at, h.created_at, h.ended_at,
       CASE WHEN h.captured IS NOT NULL THEN wallet.amount(h.captured, h.currency) END AS captured,
       h.capture_txn
  FROM wallet.hold h;

-- ==== ext/install/60_live.sql ====
-- ============================================================================
-- Live-streaming flows: coins bought with real money, gifts that turn coins
-- into creators' diamonds, withdrawals of diamonds, store refunds.
--
-- Built only on the posting API: every amount moves through wallet.post,
-- wallet.hold, wallet.capture and wallet.void, so the engine's guarantees
-- (balanced per currency, no overdraft, idempotency, lock order, audit)
-- hold for these flows too.  The only direct writes are to
-- wallet.live_config and to wallet.account.debt_account.
--
-- System accounts (kind 'system', owner 'platform:<role>'), opened by
-- wallet.live_setup, their ids kept in wallet.live_config:
--   coin_issuance      COIN, may go negative, hot: −(coins ever sold, net
--                      of refunds); debited by recharges, credited by refunds
--   coin_revenue       COIN, hot: receives the coins of every gift
--   diamond_issuance   DIAMOND, may go negative, hot: −(diamonds ever given
--                      to creators); debited by gifts
--   payout_clearing    DIAMOND: receives completed withdrawals (paid out in
--                      cash outside the ledger)
-- and per real currency paid with, opened by the first recharge in it:
--   cash:<CUR>         may go negative, hot: money received from stores
--                      (+paid per recharge, −paid per refund)
--   sales:<CUR>        may go negative, hot: the other side (−paid per
--                      recharge, +paid per refund), i.e. −(net sales)
--
-- Debt model (refunds and chargebacks of coins already spent):
--   * A user's coin account never goes negative.  When a store takes back a
--     recharge, the coins still on the account are taken back; the
--     shortfall is posted to the user's debt account (kind 'debt', same
--     owner, COIN, may go negative), opened on the first shortfall and
--     linked through wallet.account.debt_account.  Its balance is −debt.
--   * While that balance is negative the engine refuses to spend from the
--     user's account (WL001 "outstanding debt": transfers, gifts, holds).
--   * wallet.available(user) and wallet.accounts show available =
--     balance − held + (debt account's balance, when negative); the
--     accounts view also shows the debt.
--   * The next recharges repay the debt first: their coins go to the debt
--     account until it is back at zero, the rest to the user.
--   * A refund also settles an earlier debt from coins the user has (e.g.
--     after a hold was released), so after a refund either the debt is
--     zero or the user has no free coins.
--   * Coins stay conserved: coin_issuance + users + coin_revenue + debt
--     accounts = 0 in COIN (every posting balances).
-- ============================================================================

-- Configuration of the live flows: one row, written by wallet.live_setup
-- (and by wallet.recharge when it opens the cash/sales accounts of a new
-- currency).  Dumped by pg_dump as extension configuration; the install
-- script inserts no row, so a restore does not duplicate it.
CREATE TABLE wallet.live_config (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    coin_currency    text NOT NULL,
    diamond_currency text NOT NULL CHECK (diamond_currency <> coin_currency),
    creator_share    numeric NOT NULL CHECK (creator_share >= 0 AND creator_share <= 1),
    coin_issuance    bigint NOT NULL,
    coin_revenue     bigint NOT NULL,
    diamond_issuance bigint NOT NULL,
    payout_clearing  bigint NOT NULL,
    -- {"USD": {"cash": id, "sales": id}, ...}
    cash_accounts    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(cash_accounts) = 'object'),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('wallet.live_config', '');
COMMENT ON TABLE wallet.live_config IS
    'Live-streaming flows: coin and diamond units, the creator share of gifts and the platform''s system accounts (one row, see wallet.live_setup).';

-- The configuration row.  Guarantees: returns the committed row (or this
-- transaction's own).  Errors: 55000 when wallet.live_setup was never run.
CREATE FUNCTION wallet.live_cfg() RETURNS wallet.live_config
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config;
BEGIN
    SELECT * INTO c FROM wallet.live_config lc WHERE lc.singleton;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'live-streaming flows are not set up'
            USING ERRCODE = '55000', DETAIL = 'wallet.live_config has no row.',
                  HINT = 'Run SELECT wallet.live_setup() once.';
    END IF;
    RETURN c;
END
$$;
REVOKE ALL ON FUNCTION wallet.live_cfg() FROM PUBLIC;

-- The part an account of the platform plays in the live flows
-- ('coin_issuance', 'coin_revenue', 'diamond_issuance', 'payout_clearing',
-- 'cash:USD', 'sales:USD', ..., or 'debt' for a user's debt account, which
-- refund_recharge opens with kind 'debt'), or NULL for any other account
-- (and before wallet.live_setup).  Internal.
CREATE FUNCTION wallet.live_system_role(id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
             CASE live_system_role.id
                  WHEN lc.coin_issuance THEN 'coin_issuance' WHEN lc.coin_revenue THEN 'coin_revenue'
                  WHEN lc.diamond_issuance THEN 'diamond_issuance' WHEN lc.payout_clearing THEN 'payout_clearing' END,
             (SELECT a.key || ':' || e.key FROM jsonb_each(lc.cash_accounts) e, jsonb_each_text(e.value) a
               WHERE a.value = live_system_role.id::text LIMIT 1),
             (SELECT 'debt' FROM wallet.account d WHERE d.id = live_system_role.id AND d.kind = 'debt'))
      FROM wallet.live_config lc WHERE lc.singleton
$$;
REVOKE ALL ON FUNCTION wallet.live_system_role(bigint) FROM PUBLIC;

-- 22023 when the account is one of the platform's (see live_system_role),
-- which a flow may not take as its user, viewer or creator (as_what): a
-- recharge of coin_issuance would book the payment and credit nobody, a
-- gift from it, or from a user's debt account (which may go negative),
-- would mint coins.  No-op for any other account.  Internal.
CREATE FUNCTION wallet.live_refuse_system(id bigint, as_what text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    role text := wallet.live_system_role(id);
BEGIN
    IF role IS NOT NULL THEN
        RAISE EXCEPTION 'account % is the platform''s % account, not a %', id, role, as_what
            USING ERRCODE = '22023',
                  DETAIL = format('Account %s is the %s account of the live flows (wallet.live_config, or a debt account wallet.refund_recharge opened).', id, role),
                  HINT = format('Pass the %s''s own account.', as_what);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION wallet.live_refuse_system(bigint, text) FROM PUBLIC;

-- Sets the live flows up: registers the coin and diamond units (0 minor
-- units, through wallet.add_currency; existing units with 0 minor units are
-- accepted), opens the four system accounts (see the top of this file) and
-- stores the configuration.  Returns the configuration row.
-- Safe to call again: nothing is duplicated; a different creator_share
-- replaces the old one (it applies to gifts posted from then on).
-- Serialised against itself (table lock on wallet.live_config).
-- Errors: 22004 null argument; 22023 share outside [0, 1], the same code
-- for both units, an ISO 4217 code, a unit that exists with minor units,
-- or other units than the ones already set up (units never change);
-- 22P02 malformed code.
CREATE FUNCTION wallet.live_setup(coin_currency text DEFAULT 'COIN',
                                  diamond_currency text DEFAULT 'DIAMOND',
                                  creator_share numeric DEFAULT 0.5)
RETURNS wallet.live_config
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    coin text;
    diamond text;
    c wallet.live_config;
BEGIN
    IF live_setup.coin_currency IS NULL OR live_setup.diamond_currency IS NULL
       OR live_setup.creator_share IS NULL THEN
        RAISE EXCEPTION 'wallet.live_setup: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN live_setup.coin_currency IS NULL THEN 'coin_currency' END, CASE WHEN live_setup.diamond_currency IS NULL THEN 'diamond_currency' END, CASE WHEN live_setup.creator_share IS NULL THEN 'creator_share' END));
    END IF;
    IF live_setup.creator_share < 0 OR live_setup.creator_share > 1 THEN
        RAISE EXCEPTION 'creator_share must be between 0 and 1, got %', live_setup.creator_share
            USING ERRCODE = '22023',
                  DETAIL = format('creator_share %s: the creator''s part of a gift''s coins, from 0 to 1.', live_setup.creator_share);
    END IF;
    coin := wallet.normalize_currency(live_setup.coin_currency);
    diamond := wallet.normalize_currency(live_setup.diamond_currency);
    IF coin = diamond THEN
        RAISE EXCEPTION 'coin and diamond units must differ, both are %', coin
            USING ERRCODE = '22023',
                  DETAIL = format('coin_currency %s, diamond_currency %s.', coin, diamond);
    END IF;
    IF wallet.is_iso_currency(coin) OR wallet.is_iso_currency(diamond) THEN
        RAISE EXCEPTION 'coins and diamonds are virtual units, not ISO 4217 currencies (got % and %)', coin, diamond
            USING ERRCODE = '22023',
                  DETAIL = format('%s is an ISO 4217 currency.',
                                  CASE WHEN wallet.is_iso_currency(coin) THEN coin ELSE diamond END);
    END IF;

    LOCK TABLE wallet.live_config IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO c FROM wallet.live_config lc WHERE lc.singleton;
    IF FOUND THEN
        IF c.coin_currency <> coin OR c.diamond_currency <> diamond THEN
            RAISE EXCEPTION 'live flows are already set up with % and %', c.coin_currency, c.diamond_currency
                USING ERRCODE = '22023',
                      DETAIL = format('Requested %s and %s.', coin, diamond),
                      HINT = 'The units never change; call wallet.live_setup with the same units.';
        END IF;
        IF c.creator_share <> live_setup.creator_share THEN
            UPDATE wallet.live_config lc
               SET creator_share = live_setup.creator_share, updated_at = now()
             WHERE lc.singleton
            RETURNING * INTO c;
        END IF;
        RETURN c;
    END IF;

    -- 22023 when a unit exists with other minor units
    PERFORM wallet.add_currency(coin, 0, 'Live-stream coin');
    PERFORM wallet.add_currency(diamond, 0, 'Live-stream diamond');

    c.singleton := true;
    c.coin_currency := coin;
    c.diamond_currency := diamond;
    c.creator_share := live_setup.creator_share;
    c.coin_issuance := wallet.open_account('platform:coin_issuance', coin, 'system', true,
                                           '{"live": "coin_issuance"}');
    c.coin_revenue := wallet.open_account('platform:coin_revenue', coin, 'system', false,
                                          '{"live": "coin_revenue"}');
    c.diamond_issuance := wallet.open_account('platform:diamond_issuance', diamond, 'system', true,
                                              '{"live": "diamond_issuance"}');
    c.payout_clearing := wallet.open_account('platform:payout_clearing', diamond, 'system', false,
                                             '{"live": "payout_clearing"}');
    PERFORM wallet.set_hot(c.coin_issuance);
    PERFORM wallet.set_hot(c.coin_revenue);
    PERFORM wallet.set_hot(c.diamond_issuance);
    c.cash_accounts := '{}';
    c.updated_at := now();
    INSERT INTO wallet.live_config VALUES (c.*);
    -- the first configuration is audited like every later change (by the
    -- API, not by an INSERT trigger: a restore replays the row)
    PERFORM wallet.audit_row('wallet.live_config', 'INSERT', NULL, wallet.audit_jsonb(c));
    RETURN c;
END
$$;

-- The cash:<CUR> and sales:<CUR> system accounts of a real currency,
-- opened (both may go negative, hot) and recorded in wallet.live_config on
-- first use.  Concurrent first uses open them once (row lock on the
-- configuration).  Internal.  Errors: 55000 not set up.
CREATE FUNCTION wallet.live_cash_accounts(currency text, OUT cash bigint, OUT sales bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config := wallet.live_cfg();
BEGIN
    IF NOT c.cash_accounts ? live_cash_accounts.currency THEN
        -- the table lock the UPDATE below needs, before the row lock: taken
        -- after it, it would wait for a live_setup() that waits for the
        -- row (1.3.0)
        LOCK TABLE wallet.live_config IN ROW EXCLUSIVE MODE;
        SELECT * INTO c FROM wallet.live_config lc WHERE lc.singleton FOR NO KEY UPDATE;
        IF NOT c.cash_accounts ? live_cash_accounts.currency THEN
            cash := wallet.open_account('platform:cash:' || live_cash_accounts.currency,
                                        live_cash_accounts.currency, 'system', true,
                                        jsonb_build_object('live', 'cash:' || live_cash_accounts.currency));
            sales := wallet.open_account('platform:sales:' || live_cash_accounts.currency,
                                         live_cash_accounts.currency, 'system', true,
                                         jsonb_build_object('live', 'sales:' || live_cash_accounts.currency));
            PERFORM wallet.set_hot(cash);
            PERFORM wallet.set_hot(sales);
            UPDATE wallet.live_config lc
               SET cash_accounts = lc.cash_accounts
                       || jsonb_build_object(live_cash_accounts.currency,
                                             jsonb_build_object('cash', cash, 'sales', sales)),
                   updated_at = now()
             WHERE lc.singleton;
            RETURN;
        END IF;
    END IF;
    cash := (c.cash_accounts -> live_cash_accounts.currency ->> 'cash')::bigint;
    sales := (c.cash_accounts -> live_cash_accounts.currency ->> 'sales')::bigint;
END
$$;
REVOKE ALL ON FUNCTION wallet.live_cash_accounts(text) FROM PUBLIC;

-- Locks a user's account row (FOR NO KEY UPDATE) and returns it: recharges
-- and refunds of one user are serialised, so the debt they read stays put
-- until they post.  Internal.  Errors: WL003 unknown account.
CREATE FUNCTION wallet.live_lock_account(id bigint) RETURNS wallet.account
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account;
BEGIN
    SELECT * INTO r FROM wallet.account a WHERE a.id = live_lock_account.id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown account %', id
            USING ERRCODE = 'WL003', DETAIL = format('No account has id %s.', id);
    END IF;
    RETURN r;
END
$$;
REVOKE ALL ON FUNCTION wallet.live_lock_account(bigint) FROM PUBLIC;

-- Outstanding debt of an account in minor units (>= 0): minus the balance
-- of its debt account when negative, else 0.  Internal.
CREATE FUNCTION wallet.live_debt(r wallet.account) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN r.debt_account IS NULL THEN 0::bigint
                ELSE greatest(-wallet.units(wallet.balance(r.debt_account)), 0) END
$$;
REVOKE ALL ON FUNCTION wallet.live_debt(wallet.account) FROM PUBLIC;

-- Coins bought in a store or on the web: posts, as one transaction of kind
-- 'recharge', coin_issuance −coins, user +coins (less the debt repaid),
-- debt account +repaid, cash:<CUR> +paid, sales:<CUR> −paid.  When the user
-- has an outstanding debt (see the debt model above) the coins repay it
-- first.  Returns the transaction id.
-- Idempotent per (channel, external_id), the store's order id: key
-- 'wallet:recharge:<channel>:<external_id>' (reserved prefix: no client can take it first); a repeated call with the same user,
-- coins and paid returns the first transaction and posts nothing.
-- Metadata: {"channel", "external_id", "account", "coins", "paid",
-- "debt_repaid"}.
-- Errors: 22004 null argument; 22023 coins or paid not positive, channel
-- empty/longer than 64 bytes/containing ':', external_id empty or longer
-- than 120 bytes, a system account of the live flows as the user; WL002 coins not in the coin unit, paid not in an ISO 4217
-- currency, or the account not a coin account; WL003 unknown account;
-- WL004/WL005 frozen/closed account; WL006 the order id was already used
-- for a different recharge; 55000 not set up.
CREATE FUNCTION wallet.recharge(user_account bigint, coins wallet.amount, paid wallet.amount,
                                channel text, external_id text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config;
    u wallet.account;
    key text;
    found_id bigint;
    found_kind text;
    found_md jsonb;
    n bigint;
    debt bigint;
    repay bigint;
    cur text;
    acc record;
    legs wallet.leg[];
BEGIN
    IF user_account IS NULL OR coins IS NULL OR paid IS NULL OR channel IS NULL OR external_id IS NULL THEN
        RAISE EXCEPTION 'wallet.recharge: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN user_account IS NULL THEN 'user_account' END, CASE WHEN coins IS NULL THEN 'coins' END, CASE WHEN paid IS NULL THEN 'paid' END, CASE WHEN channel IS NULL THEN 'channel' END, CASE WHEN external_id IS NULL THEN 'external_id' END));
    END IF;
    IF octet_length(channel) NOT BETWEEN 1 AND 64 OR strpos(channel, ':') > 0 THEN
        RAISE EXCEPTION 'channel must be 1 to 64 bytes without '':'', got "%"', channel
            USING ERRCODE = '22023',
                  DETAIL = format('The channel has %s bytes%s.', octet_length(channel),
                                  CASE WHEN strpos(channel, ':') > 0 THEN ' and a '':''' ELSE '' END);
    END IF;
    IF octet_length(external_id) NOT BETWEEN 1 AND 120 THEN
        RAISE EXCEPTION 'external_id must be 1 to 120 bytes, got %', octet_length(external_id)
            USING ERRCODE = '22023',
                  DETAIL = format('The store''s order id of channel %s has %s bytes.', channel, octet_length(external_id));
    END IF;
    c := wallet.live_cfg();
    PERFORM wallet.live_refuse_system(user_account, 'user');
    n := wallet.units(coins);
    cur := wallet.currency(paid);
    IF wallet.currency(coins) <> c.coin_currency THEN
        RAISE EXCEPTION 'coins must be in %, got %', c.coin_currency, coins
            USING ERRCODE = 'WL002',
                  DETAIL = format('Coins are %s; the recharge was given %s.', c.coin_currency, coins);
    END IF;
    IF n <= 0 THEN
        RAISE EXCEPTION 'coins must be positive, got %', coins USING ERRCODE = '22023',
            DETAIL = format('A recharge adds coins; %s is not positive.', coins);
    END IF;
    IF NOT wallet.is_iso_currency(cur) THEN
        RAISE EXCEPTION 'paid must be in an ISO 4217 currency, got %', paid
            USING ERRCODE = 'WL002',
                  DETAIL = format('%s is not an ISO 4217 currency; coins are paid with real money.', cur);
    END IF;
    IF wallet.units(paid) <= 0 THEN
        RAISE EXCEPTION 'paid must be positive, got %', paid USING ERRCODE = '22023',
            DETAIL = format('The store received %s.', paid);
    END IF;

    -- serialise with refunds of this user, then look the order up
    u := wallet.live_lock_account(user_account);
    key := 'wallet:recharge:' || channel || ':' || external_id;
    SELECT t.id, t.kind, t.metadata INTO found_id, found_kind, found_md
      FROM wallet.txn t WHERE t.idempotency_key = key;
    IF FOUND THEN
        IF found_kind = 'recharge' AND found_md ->> 'account' = user_account::text
           AND found_md ->> 'coins' = coins::text AND found_md ->> 'paid' = paid::text THEN
            RETURN found_id;
        END IF;
        RAISE EXCEPTION 'order "%" of channel "%" was already recharged with a different request', external_id, channel
            USING ERRCODE = 'WL006',
                  DETAIL = format('Transaction %s: account %s, %s for %s.', found_id,
                                  found_md ->> 'account', found_md ->> 'coins', found_md ->> 'paid'),
                  HINT = 'Resend the same request to get the first result.';
    END IF;

    IF u.currency <> c.coin_currency THEN
        RAISE EXCEPTION 'account % holds %, not coins (%)', user_account, u.currency, c.coin_currency
            USING ERRCODE = 'WL002',
                  DETAIL = format('Account %s is in %s; recharges credit %s.', user_account, u.currency, c.coin_currency);
    END IF;
    IF u.status = 'frozen' THEN
        RAISE EXCEPTION 'account % is frozen', user_account USING ERRCODE = 'WL004',
            DETAIL = format('Account %s takes no postings while frozen; the recharge of order %s was not posted.',
                            user_account, external_id);
    ELSIF u.status = 'closed' THEN
        RAISE EXCEPTION 'account % is closed', user_account USING ERRCODE = 'WL005',
            DETAIL = format('Account %s is closed; the recharge of order %s was not posted.', user_account, external_id);
    END IF;

    debt := wallet.live_debt(u);
    repay := least(n, debt);
    acc := wallet.live_cash_accounts(cur);
    legs := ARRAY[ROW(c.coin_issuance, wallet.amount(-n, c.coin_currency))::wallet.leg];
    IF n - repay > 0 THEN
        legs := legs || ROW(user_account, wallet.amount(n - repay, c.coin_currency))::wallet.leg;
    END IF;
    IF repay > 0 THEN
        legs := legs || ROW(u.debt_account, wallet.amount(repay, c.coin_currency))::wallet.leg;
    END IF;
    legs := legs || ROW(acc.cash, paid)::wallet.leg || ROW(acc.sales, -paid)::wallet.leg;
    RETURN wallet.post_system(key, legs, 'recharge',
                       jsonb_build_object('channel', channel, 'external_id', external_id,
                                          'account', user_account, 'coins', coins::text,
                                          'paid', paid::text, 'debt_repaid', repay));
END
$$;

-- A gift during a live stream, one balanced transaction of kind 'gift':
-- viewer −coins, coin_revenue +coins, diamond_issuance −d, creator +d,
-- where d = floor(coins × creator_share) diamonds (the diamond legs are
-- left out when d = 0).  Returns the transaction id.
-- Metadata: the caller's object with "creator" (account id), "diamonds"
-- (d) and "creator_share" set (they override the caller's keys of the
-- same name).
-- Idempotent by idempotency_key: a retry with the same viewer, creator,
-- coins and metadata returns the first transaction (with its diamonds,
-- even if the share changed since); any other reuse of the key is WL006.
-- Errors: 22004 null argument; 22023 coins not positive, metadata not an
-- object, bad key, a system account of the live flows as the viewer or the
-- creator; WL002 coins not in the coin unit, the viewer not a coin
-- account or the creator not a diamond account; WL001 insufficient coins
-- or outstanding debt; WL003/WL004/WL005 unknown/frozen/closed account;
-- WL006 key conflict; 55000 not set up.
-- An exclusive lock, to the end of the transaction, on a request key, in a
-- lock space of the extension's own (src/ledger.c).  Internal.
CREATE FUNCTION wallet.lock_key(key text) RETURNS void
    AS 'MODULE_PATHNAME', 'wallet_lock_key' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION wallet.lock_key(text) FROM PUBLIC;

CREATE FUNCTION wallet.gift(viewer_account bigint, creator_account bigint, coins wallet.amount,
                            idempotency_key text, metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config;
    n bigint;
    d bigint;
    md jsonb;
    cr wallet.account;
    found_id bigint;
    found_kind text;
    found_md jsonb;
    legs wallet.leg[];
BEGIN
    IF viewer_account IS NULL OR creator_account IS NULL OR coins IS NULL OR idempotency_key IS NULL THEN
        RAISE EXCEPTION 'wallet.gift: viewer_account, creator_account, coins and idempotency_key must not be null'
            USING ERRCODE = '22004',
                  DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN viewer_account IS NULL THEN 'viewer_account' END, CASE WHEN creator_account IS NULL THEN 'creator_account' END, CASE WHEN coins IS NULL THEN 'coins' END, CASE WHEN idempotency_key IS NULL THEN 'idempotency_key' END));
    END IF;
    IF metadata IS NOT NULL AND jsonb_typeof(metadata) <> 'object' THEN
        RAISE EXCEPTION 'gift metadata must be a JSON object, got %', jsonb_typeof(metadata)
            USING ERRCODE = '22023',
                  DETAIL = format('The metadata is a JSON %s; the gift adds its creator and diamonds to an object.',
                                  jsonb_typeof(metadata));
    END IF;
    c := wallet.live_cfg();
    IF viewer_account IN (c.coin_issuance, c.coin_revenue, c.diamond_issuance, c.payout_clearing)
       OR creator_account IN (c.coin_issuance, c.coin_revenue, c.diamond_issuance, c.payout_clearing)
       OR EXISTS (SELECT 1 FROM wallet.account d WHERE d.id = viewer_account AND d.kind = 'debt') THEN
        PERFORM wallet.live_refuse_system(viewer_account, 'viewer'), wallet.live_refuse_system(creator_account, 'creator');
    END IF;
    n := wallet.units(coins);
    IF wallet.currency(coins) <> c.coin_currency THEN
        RAISE EXCEPTION 'coins must be in %, got %', c.coin_currency, coins
            USING ERRCODE = 'WL002',
                  DETAIL = format('Gifts are paid in %s; the gift was given %s.', c.coin_currency, coins);
    END IF;
    IF n <= 0 THEN
        RAISE EXCEPTION 'gift must be positive, got %', coins USING ERRCODE = '22023',
            DETAIL = format('A gift moves coins from the viewer; %s is not positive.', coins);
    END IF;

    -- a retry returns the first gift even if the share changed since; a
    -- retry racing the first waits for it here (1.3.0: it computed the
    -- diamonds at the new share, and the key then held another request)
    PERFORM wallet.lock_key('gift:' || gift.idempotency_key);
    SELECT t.id, t.kind, t.metadata INTO found_id, found_kind, found_md
      FROM wallet.txn t WHERE t.idempotency_key = gift.idempotency_key;
    IF FOUND THEN
        IF found_kind = 'gift'
           AND found_md ->> 'creator' = creator_account::text
           AND (found_md - 'creator' - 'diamonds' - 'creator_share')
               = (coalesce(metadata, '{}') - 'creator' - 'diamonds' - 'creator_share')
           AND EXISTS (SELECT 1 FROM wallet.entry e
                        WHERE e.txn_id = found_id AND e.account_id = viewer_account AND e.amount = -n) THEN
            RETURN found_id;
        END IF;
        RAISE EXCEPTION 'idempotency key "%" was already used for a different request', idempotency_key
            USING ERRCODE = 'WL006',
                  DETAIL = format('Transaction %s was posted with this key; this request differs from it.', found_id),
                  HINT = 'Use a new key for a new request; resend the same request to get the first result.';
    END IF;

    d := floor(n * c.creator_share)::bigint;
    IF d = 0 THEN
        -- no diamond leg: check the creator here (the engine checks it otherwise)
        cr := wallet.account_row(creator_account);
        IF cr.currency <> c.diamond_currency THEN
            RAISE EXCEPTION 'currency mismatch: account % holds %, gifts pay creators in %',
                creator_account, cr.currency, c.diamond_currency
                USING ERRCODE = 'WL002',
                      DETAIL = format('Account %s is in %s; creators receive %s.', creator_account, cr.currency,
                                      c.diamond_currency);
        END IF;
        IF cr.status = 'frozen' THEN
            RAISE EXCEPTION 'account % is frozen', creator_account USING ERRCODE = 'WL004',
                DETAIL = format('Account %s takes no postings while frozen.', creator_account);
        ELSIF cr.status = 'closed' THEN
            RAISE EXCEPTION 'account % is closed', creator_account USING ERRCODE = 'WL005',
                DETAIL = format('Account %s is closed.', creator_account);
        END IF;
    END IF;
    md := coalesce(metadata, '{}')
          || jsonb_build_object('creator', creator_account, 'diamonds', d, 'creator_share', c.creator_share);
    legs := ARRAY[ROW(viewer_account, -coins)::wallet.leg,
                  ROW(c.coin_revenue, coins)::wallet.leg];
    IF d > 0 THEN
        legs := legs || ROW(c.diamond_issuance, wallet.amount(-d, c.diamond_currency))::wallet.leg
                     || ROW(creator_account, wallet.amount(d, c.diamond_currency))::wallet.leg;
    END IF;
    RETURN wallet.post(idempotency_key, legs, 'gift', md);
END
$$;

-- A creator asks to withdraw diamonds: places a hold of kind 'withdrawal'
-- from the creator to payout_clearing (available drops, the balance does
-- not).  Returns the hold id.  Idempotent by key like wallet.hold (holds
-- have their own key space).
-- Errors: 22004 null argument; 22023 amount not positive, bad key, a
-- system account of the live flows as the creator; WL002 amount not in the
-- diamond unit or not a diamond account; WL001
-- insufficient diamonds; WL003/WL004/WL005; WL006 key conflict; 55000.
CREATE FUNCTION wallet.request_withdrawal(creator_account bigint, amount wallet.amount,
                                          idempotency_key text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config;
BEGIN
    IF creator_account IS NULL OR amount IS NULL OR idempotency_key IS NULL THEN
        RAISE EXCEPTION 'wallet.request_withdrawal: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN creator_account IS NULL THEN 'creator_account' END, CASE WHEN amount IS NULL THEN 'amount' END, CASE WHEN idempotency_key IS NULL THEN 'idempotency_key' END));
    END IF;
    c := wallet.live_cfg();
    IF creator_account IN (c.coin_issuance, c.coin_revenue, c.diamond_issuance, c.payout_clearing) THEN
        PERFORM wallet.live_refuse_system(creator_account, 'creator');
    END IF;
    IF wallet.currency(amount) <> c.diamond_currency THEN
        RAISE EXCEPTION 'withdrawals are in %, got %', c.diamond_currency, amount
            USING ERRCODE = 'WL002',
                  DETAIL = format('Creators withdraw %s; the request was for %s.', c.diamond_currency, amount);
    END IF;
    IF wallet.units(amount) <= 0 THEN
        RAISE EXCEPTION 'withdrawal must be positive, got %', amount USING ERRCODE = '22023',
            DETAIL = format('A withdrawal holds diamonds; %s is not positive.', amount);
    END IF;
    RETURN wallet.hold(creator_account, c.payout_clearing, amount, idempotency_key,
                       NULL, 'withdrawal', NULL);
END
$$;

-- Locks a withdrawal hold (FOR UPDATE, the order holds.c uses: hold row
-- before accounts) and returns it.  Internal.  Errors: 22004 null; WL014
-- unknown hold; 22023 the hold is not a withdrawal.
CREATE FUNCTION wallet.live_lock_withdrawal(hold_id bigint) RETURNS wallet.hold
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config := wallet.live_cfg();
    h wallet.hold;
BEGIN
    IF hold_id IS NULL THEN
        RAISE EXCEPTION 'hold_id must not be null' USING ERRCODE = '22004',
            DETAIL = 'The hold_id argument is null.';
    END IF;
    SELECT * INTO h FROM wallet.hold x WHERE x.id = live_lock_withdrawal.hold_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown hold %', hold_id USING ERRCODE = 'WL014',
            DETAIL = format('No hold has id %s.', hold_id);
    END IF;
    IF h.kind <> 'withdrawal' OR h.to_account <> c.payout_clearing THEN
        RAISE EXCEPTION 'hold % is not a withdrawal', hold_id
            USING ERRCODE = '22023',
                  DETAIL = format('Its kind is %s, to account %s.', h.kind, h.to_account);
    END IF;
    RETURN h;
END
$$;
REVOKE ALL ON FUNCTION wallet.live_lock_withdrawal(bigint) FROM PUBLIC;

-- Pays a withdrawal out: captures the whole hold to payout_clearing (kind
-- 'withdrawal').  Returns the transaction id; calling it again for a
-- completed withdrawal returns the same id (retry-safe).
-- Errors: 22004 null; WL014 unknown hold; 22023 not a withdrawal hold, or
-- one from an account of the platform's; WL008 the withdrawal was
-- cancelled or expired; 55000 not set up.
CREATE FUNCTION wallet.complete_withdrawal(hold_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h wallet.hold := wallet.live_lock_withdrawal(hold_id);
BEGIN
    -- a withdrawal hold placed with wallet.hold() from one of the
    -- platform's accounts (request_withdrawal refuses them) is not paid out
    IF h.status = 'pending' THEN
        PERFORM wallet.live_refuse_system(h.from_account, 'creator');
    END IF;
    IF h.status = 'captured' THEN
        RETURN h.capture_txn;
    END IF;
    RETURN wallet.capture(hold_id);
END
$$;

-- Cancels a withdrawal: releases the hold (the diamonds are available
-- again).  Cancelling a cancelled or expired withdrawal is a no-op.
-- Errors: 22004 null; WL014 unknown hold; 22023 not a withdrawal hold;
-- WL008 already completed; 55000 not set up.
CREATE FUNCTION wallet.cancel_withdrawal(hold_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h wallet.hold := wallet.live_lock_withdrawal(hold_id);
BEGIN
    IF h.status IN ('voided', 'expired') THEN
        RETURN;
    END IF;
    PERFORM wallet.void(hold_id);
END
$$;

-- A store refund or chargeback of a recharge: claws the R recharged coins
-- back, even when some were spent (see the debt model above), as one
-- transaction of kind 'refund': user −x, debt account (x − R), coin_issuance
-- +R, cash:<CUR> −paid, sales:<CUR> +paid, where x = min(the user's free
-- coins (balance − held), R + outstanding debt).  The debt account is
-- opened and linked on the first shortfall.  Returns the transaction id.
-- The recharge's claw-back lock is taken first (as wallet.reverse()
-- takes it), then the user's account, so refunds and recharges of a user
-- are serialised.
-- Idempotent: key 'wallet:refund:<tx_id>' (reserved); a second call returns the first
-- refund's id (whatever its reason).
-- Metadata: {"refunds": tx_id, "reason", "account", "coins", "paid",
-- "from_account" (x), "debt_change" (x − R)}.
-- Errors: 22004 null tx_id; 22023 not a recharge, reason longer than 1000
-- bytes; WL009 unknown transaction; WL004 frozen user account (with coins
-- to take back); 55000 not set up.
CREATE FUNCTION wallet.refund_recharge(tx_id bigint, reason text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config;
    t_kind text;
    t_md jsonb;
    t_key text;
    user_id bigint;
    u wallet.account;
    key text;
    found_id bigint;
    r bigint;
    paid wallet.amount;
    debt bigint;
    free bigint;
    x bigint;
    acc record;
    debt_id bigint;
    unlinked boolean := false;
    legs wallet.leg[];
    result bigint;
BEGIN
    IF tx_id IS NULL THEN
        RAISE EXCEPTION 'tx_id must not be null' USING ERRCODE = '22004',
            DETAIL = 'The tx_id argument is null.';
    END IF;
    IF octet_length(reason) > 1000 THEN
        RAISE EXCEPTION 'reason is longer than 1000 bytes' USING ERRCODE = '22023',
            DETAIL = format('The reason has %s bytes.', octet_length(reason));
    END IF;
    c := wallet.live_cfg();
    SELECT t.kind, t.metadata, t.idempotency_key INTO t_kind, t_md, t_key FROM wallet.txn t WHERE t.id = tx_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown transaction %', tx_id USING ERRCODE = 'WL009',
            DETAIL = format('No transaction has id %s.', tx_id);
    END IF;
    -- only what wallet.recharge posted: its key is in the reserved prefix,
    -- which no client can use, so a client's transfer given the kind
    -- 'recharge' and made-up metadata is not one (1.2.0)
    IF t_kind <> 'recharge' OR NOT (t_md ? 'account') OR NOT starts_with(t_key, 'wallet:recharge:') THEN
        RAISE EXCEPTION 'transaction % is a %, not a recharge', tx_id,
                        CASE WHEN t_kind = 'recharge' THEN 'posting of kind recharge' ELSE t_kind END
            USING ERRCODE = '22023',
                  DETAIL = CASE WHEN t_kind = 'recharge'
                                THEN format('Transaction %s has kind recharge but was not posted by wallet.recharge (key "%s").', tx_id, t_key)
                                ELSE format('Transaction %s has kind %s; only recharges are refunded.', tx_id, t_kind) END,
                  HINT = 'Use wallet.reverse() for other transactions.';
    END IF;
    user_id := (t_md ->> 'account')::bigint;
    r := wallet.units((t_md ->> 'coins')::wallet.amount);
    paid := (t_md ->> 'paid')::wallet.amount;

    -- the claw-back lock of the recharge, as wallet.reverse() takes it
    -- first: a reversal claims the link before it locks the user, so a
    -- refund that locked the user first deadlocked with it (1.4.0)
    PERFORM wallet.lock_key('wallet:reverse:' || tx_id);
    u := wallet.live_lock_account(user_id);
    key := 'wallet:refund:' || tx_id;
    SELECT t.id INTO found_id FROM wallet.txn t WHERE t.idempotency_key = key;
    IF FOUND THEN
        RETURN found_id;
    END IF;
    -- clawed back at most once: not after wallet.reverse() of the recharge
    SELECT t.id INTO found_id FROM wallet.txn t WHERE t.reverses = tx_id;
    IF FOUND THEN
        RAISE EXCEPTION 'transaction % is already reversed', tx_id
            USING ERRCODE = 'WL010',
                  DETAIL = format('Transaction %s reversed it; a recharge is clawed back at most once.', found_id);
    END IF;

    debt := wallet.live_debt(u);
    free := greatest(wallet.units(wallet.balance(user_id)) - u.held, 0);
    x := least(free, r + debt);
    debt_id := u.debt_account;
    IF x < r AND debt_id IS NULL THEN
        debt_id := wallet.open_account(u.owner, u.currency, 'debt', true,
                                       jsonb_build_object('debt_of', user_id));
        UPDATE wallet.account a SET debt_account = debt_id, version = a.version + 1
         WHERE a.id = user_id;
    END IF;
    IF x > 0 AND debt > 0 THEN
        -- The engine refuses any debit of an indebted account; this one
        -- settles the debt, so unlink the debt account for this posting
        -- (the row stays locked by us; nobody sees the gap).
        UPDATE wallet.account a SET debt_account = NULL WHERE a.id = user_id;
        unlinked := true;
    END IF;

    acc := wallet.live_cash_accounts(wallet.currency(paid));
    legs := ARRAY[]::wallet.leg[];
    IF x > 0 THEN
        legs := legs || ROW(user_id, wallet.amount(-x, c.coin_currency))::wallet.leg;
    END IF;
    IF x <> r THEN
        legs := legs || ROW(debt_id, wallet.amount(x - r, c.coin_currency))::wallet.leg;
    END IF;
    legs := legs || ROW(c.coin_issuance, wallet.amount(r, c.coin_currency))::wallet.leg
                 || ROW(acc.cash, -paid)::wallet.leg
                 || ROW(acc.sales, paid)::wallet.leg;
    -- linked like a reversal, so wallet.reverse() of the recharge is refused
    result := wallet.post_system(key, legs, 'refund',
                          jsonb_build_object('refunds', tx_id, 'reason', reason, 'account', user_id,
                                             'coins', t_md ->> 'coins', 'paid', paid::text,
                                             'from_account', x, 'debt_change', x - r),
                          reverses => tx_id);
    IF unlinked THEN
        UPDATE wallet.account a SET debt_account = debt_id WHERE a.id = user_id;
    END IF;
    RETURN result;
END
$$;

-- A readable summary of the live flows, one row per figure, for psql and
-- for scripts: section, item, value (text: an amount like '12 COIN', a
-- count, 'ok' or 'FAILED: ...') and units (the figure as a number: minor
-- units or a count; NULL for the verify rows).  Sections and items:
--   accounts  'balance <kind> <CUR>': balance of all accounts of that kind
--             and currency, with the number of accounts in value; system
--             accounts one by one ('balance platform:cash:USD')
--   coins     'issued' (−coin_issuance), 'circulation' (every coin account
--             but the live system and debt accounts), 'held' (part of the
--             circulation in pending holds), 'revenue' (coin_revenue),
--             'debt' (outstanding, >= 0), 'users in debt', and
--             'conserved' (issued = circulation + revenue − debt: 'ok')
--   diamonds  'issued' (−diamond_issuance), 'creators' (every diamond
--             account but the system ones), 'withdrawn' (payout_clearing),
--             'pending withdrawals' (pending withdrawal holds), and
--             'conserved' (issued = creators + withdrawn: 'ok')
--   cash      'received <CUR>' (cash:<CUR>) for each real currency
--   activity  'transactions <kind>' and 'holds <kind> <status>' (counts)
--   verify    '<check_name>' of wallet.verify(): 'ok' or 'FAILED: detail'
-- STABLE: every figure comes from the one snapshot of the calling query,
-- so the report is consistent while postings go on.
-- Errors: 55000 not set up.
CREATE FUNCTION wallet.live_report()
RETURNS TABLE (section text, item text, value text, units bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config := wallet.live_cfg();
    sys bigint[] := ARRAY[c.coin_issuance, c.coin_revenue, c.diamond_issuance, c.payout_clearing];
    issued bigint;
    circulation bigint;
    held bigint;
    revenue bigint;
    debt bigint;
    debtors bigint;
    d_issued bigint;
    d_creators bigint;
    d_withdrawn bigint;
    d_pending bigint;
BEGIN
    RETURN QUERY
    SELECT 'accounts'::text,
           CASE WHEN a.kind = 'system' THEN format('balance %s', a.owner)
                ELSE format('balance %s %s', a.kind, a.currency) END,
           CASE WHEN a.kind = 'system' THEN wallet.amount(sum(a.bal)::bigint, a.currency)::text
                ELSE format('%s (%s accounts)', wallet.amount(sum(a.bal)::bigint, a.currency), count(*)) END,
           sum(a.bal)::bigint
      FROM (SELECT x.kind, x.currency, CASE WHEN x.kind = 'system' THEN x.owner END AS owner,
                   x.balance + coalesce(p.pending, 0) AS bal
              FROM wallet.account x
              LEFT JOIN (SELECT h.account_id, sum(h.amount) AS pending FROM wallet.hot_pending h
                          GROUP BY h.account_id) p ON p.account_id = x.id) a
     GROUP BY a.kind, a.currency, a.owner
     ORDER BY a.kind = 'system', a.currency, a.kind, a.owner;

    SELECT coalesce(sum(b.bal) FILTER (WHERE b.id = c.coin_issuance), 0) * -1,
           coalesce(sum(b.bal) FILTER (WHERE b.id <> ALL (sys) AND b.kind <> 'debt'), 0),
           coalesce(sum(b.held) FILTER (WHERE b.id <> ALL (sys) AND b.kind <> 'debt'), 0),
           coalesce(sum(b.bal) FILTER (WHERE b.id = c.coin_revenue), 0),
           coalesce(sum(b.bal) FILTER (WHERE b.kind = 'debt'), 0) * -1,
           count(*) FILTER (WHERE b.kind = 'debt' AND b.bal < 0)
      INTO issued, circulation, held, revenue, debt, debtors
      FROM (SELECT x.id, x.kind, x.held,
                   x.balance + coalesce((SELECT sum(h.amount) FROM wallet.hot_pending h
                                          WHERE h.account_id = x.id), 0) AS bal
              FROM wallet.account x WHERE x.currency = c.coin_currency) b;
    section := 'coins';
    item := 'issued'; units := issued; value := wallet.amount(issued, c.coin_currency)::text; RETURN NEXT;
    item := 'circulation'; units := circulation; value := wallet.amount(circulation, c.coin_currency)::text; RETURN NEXT;
    item := 'held'; units := held; value := wallet.amount(held, c.coin_currency)::text; RETURN NEXT;
    item := 'revenue'; units := revenue; value := wallet.amount(revenue, c.coin_currency)::text; RETURN NEXT;
    item := 'debt'; units := debt; value := wallet.amount(debt, c.coin_currency)::text; RETURN NEXT;
    item := 'users in debt'; units := debtors; value := debtors::text; RETURN NEXT;
    item := 'conserved'; units := issued - circulation - revenue + debt;
    value := CASE WHEN units = 0 THEN 'ok'
                  ELSE format('FAILED: issued %s <> circulation + revenue - debt by %s',
                              wallet.amount(issued, c.coin_currency),
                              wallet.amount(units, c.coin_currency)) END;
    RETURN NEXT;

    SELECT coalesce(sum(b.bal) FILTER (WHERE b.id = c.diamond_issuance), 0) * -1,
           coalesce(sum(b.bal) FILTER (WHERE b.id <> ALL (sys)), 0),
           coalesce(sum(b.bal) FILTER (WHERE b.id = c.payout_clearing), 0)
      INTO d_issued, d_creators, d_withdrawn
      FROM (SELECT x.id, x.balance + coalesce((SELECT sum(h.amount) FROM wallet.hot_pending h
                                                WHERE h.account_id = x.id), 0) AS bal
              FROM wallet.account x WHERE x.currency = c.diamond_currency) b;
    SELECT coalesce(sum(h.amount), 0) INTO d_pending
      FROM wallet.hold h
     WHERE h.status = 'pending' AND h.kind = 'withdrawal' AND h.to_account = c.payout_clearing;
    section := 'diamonds';
    item := 'issued'; units := d_issued; value := wallet.amount(d_issued, c.diamond_currency)::text; RETURN NEXT;
    item := 'creators'; units := d_creators; value := wallet.amount(d_creators, c.diamond_currency)::text; RETURN NEXT;
    item := 'withdrawn'; units := d_withdrawn; value := wallet.amount(d_withdrawn, c.diamond_currency)::text; RETURN NEXT;
    item := 'pending withdrawals'; units := d_pending; value := wallet.amount(d_pending, c.diamond_currency)::text; RETURN NEXT;
    item := 'conserved'; units := d_issued - d_creators - d_withdrawn;
    value := CASE WHEN units = 0 THEN 'ok'
                  ELSE format('FAILED: issued %s <> creators + withdrawn by %s',
                              wallet.amount(d_issued, c.diamond_currency),
                              wallet.amount(units, c.diamond_currency)) END;
    RETURN NEXT;

    RETURN QUERY
    SELECT 'cash'::text, 'received ' || k.cur, wallet.balance(k.cash)::text,
           wallet.units(wallet.balance(k.cash))
      FROM (SELECT e.key AS cur, (e.value ->> 'cash')::bigint AS cash
              FROM jsonb_each(c.cash_accounts) e) k
     ORDER BY k.cur;

    RETURN QUERY
    SELECT 'activity'::text, 'transactions ' || t.kind, count(*)::text, count(*)
      FROM wallet.txn t GROUP BY t.kind ORDER BY t.kind;
    RETURN QUERY
    SELECT 'activity'::text, format('holds %s %s', h.kind, h.status), count(*)::text, count(*)
      FROM wallet.hold h GROUP BY h.kind, h.status ORDER BY h.kind, h.status;

    RETURN QUERY
    SELECT 'verify'::text, v.check_name,
           CASE WHEN v.ok THEN 'ok' ELSE 'FAILED: ' || v.detail END, NULL::bigint
      FROM wallet.verify() v;
END
$$;

-- ==== ext/install/70_audit.sql ====
-- ============================================================================
-- Audit trail and tamper evidence.
--
-- wallet.audit_log: one row per audited change (append-only).  The ledger's
-- own changes are recorded too: account and hold updates by trigger,
-- account/hold/currency creation by the API itself (a restore replays rows
-- with COPY and must not record them twice); transactions and entries are
-- their own record (the journal, append-only).
--
-- Sealing: wallet.seal() hashes every journal transaction (with its
-- entries) and every audit record up to a safe horizon (see src/audit.c)
-- with SHA-256 and appends a seal row whose head chains to the previous
-- one.  wallet.digest() seals and returns the head to keep outside the
-- database; wallet.audit_verify() recomputes everything and names the
-- first sealed record edited, deleted or inserted.
-- ============================================================================

CREATE SEQUENCE wallet.audit_log_id_seq;
SELECT pg_catalog.pg_extension_config_dump('wallet.audit_log_id_seq', '');

CREATE TABLE wallet.audit_log (
    id               bigint PRIMARY KEY DEFAULT nextval('wallet.audit_log_id_seq'),
    relation         text NOT NULL,
    operation        text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    old_row          jsonb,
    new_row          jsonb,
    changed_columns  text[],
    txid             bigint NOT NULL,
    at               timestamptz NOT NULL,
    db_user          text NOT NULL,
    application_name text,
    client_addr      inet,
    actor            text
);
ALTER SEQUENCE wallet.audit_log_id_seq OWNED BY wallet.audit_log.id;
CREATE INDEX audit_log_relation_idx ON wallet.audit_log (relation, id);
SELECT pg_catalog.pg_extension_config_dump('wallet.audit_log', '');

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON wallet.audit_log
    FOR EACH ROW EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON wallet.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();

-- The generic audit trigger (C).  It runs as the role making the change
-- (turning the row into jsonb can run that role's own casts) and writes
-- the log, which that role cannot, as the log's owner for that one INSERT
-- (src/audit.c).  Until 1.3.0 it was SECURITY DEFINER, and a cast to json
-- that a role defined for its own column type then ran as the owner.
-- Rows are rendered with fixed output settings (DateStyle ISO,
-- IntervalStyle postgres, extra_float_digits >= 1, bytea_output hex,
-- TimeZone UTC), whatever the session's: a record does not depend on the
-- session that wrote it (library 1.4.0; earlier records carry the
-- writer's settings).
CREATE FUNCTION wallet.audit() RETURNS trigger
    AS 'MODULE_PATHNAME', 'wallet_audit'
    LANGUAGE C SET search_path = pg_catalog, pg_temp;

-- An audit record written by the API (internal).
CREATE FUNCTION wallet.audit_row(relation text, operation text, old_row jsonb, new_row jsonb)
RETURNS void
    AS 'MODULE_PATHNAME', 'wallet_audit_row'
    LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION wallet.audit_row(text, text, jsonb, jsonb) FROM PUBLIC;

-- A row as the audit trigger records it: to_jsonb with the trigger's fixed
-- output settings, for the records the API writes itself (internal, 1.4.0).
CREATE FUNCTION wallet.audit_jsonb(anyelement) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'wallet_audit_jsonb'
    LANGUAGE C STABLE STRICT;
REVOKE ALL ON FUNCTION wallet.audit_jsonb(anyelement) FROM PUBLIC;

-- Attaches wallet.audit() to a table: every INSERT, UPDATE, DELETE (row)
-- and TRUNCATE (statement) lands in wallet.audit_log.  Runs with the
-- caller's rights: only who may create triggers on the table can call it.
-- Idempotent.  The table name is a regclass, never spliced as text.
-- Errors: no such table 42P01; a table of schema wallet 22023 (the
-- ledger's tables are audited by the extension itself, and auditing the
-- audit log would record its own records without end).
CREATE FUNCTION wallet.audit_table(target regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'target must not be null' USING ERRCODE = '22004',
            DETAIL = 'wallet.audit_table(NULL): name the table to audit.';
    END IF;
    SELECT n.nspname INTO nsp
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = target;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', target::oid USING ERRCODE = '42P01',
            DETAIL = 'wallet.audit_table() was given an OID that names no table.';
    END IF;
    IF nsp = 'wallet' THEN
        RAISE EXCEPTION 'wallet.audit_table: % belongs to the wallet extension', target USING ERRCODE = '22023',
            DETAIL = 'The ledger''s own tables are audited by the extension; wallet.audit_log cannot audit itself.',
            HINT = 'Audit your application''s tables.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = target AND tgname = 'wallet_audit') THEN
        EXECUTE format('CREATE TRIGGER wallet_audit AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION wallet.audit()', target);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = target AND tgname = 'wallet_audit_truncate') THEN
        EXECUTE format('CREATE TRIGGER wallet_audit_truncate AFTER TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION wallet.audit()', target);
    END IF;
END
$$;

-- The ledger's own tables.  Balance columns are not audited row by row:
-- every balance change is exactly one entry in the sealed journal.
CREATE TRIGGER account_audit
    AFTER UPDATE OF owner, currency, kind, allow_negative, status, hot, metadata, debt_account
    ON wallet.account FOR EACH ROW EXECUTE FUNCTION wallet.audit();
CREATE TRIGGER hold_audit AFTER UPDATE ON wallet.hold
    FOR EACH ROW EXECUTE FUNCTION wallet.audit();
CREATE TRIGGER custom_currencies_audit AFTER UPDATE OR DELETE ON wallet.custom_currencies
    FOR EACH ROW EXECUTE FUNCTION wallet.audit();
CREATE TRIGGER live_config_audit AFTER UPDATE OR DELETE ON wallet.live_config
    FOR EACH ROW EXECUTE FUNCTION wallet.audit();
-- wallet.live_setup() changes the live configuration, audited; a TRUNCATE
-- would go unrecorded (1.3.0).
CREATE TRIGGER live_config_no_truncate BEFORE TRUNCATE ON wallet.live_config
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();

-- ---- sealing ----

CREATE SEQUENCE wallet.audit_seal_id_seq;
SELECT pg_catalog.pg_extension_config_dump('wallet.audit_seal_id_seq', '');

-- One row per seal: the ids and SHA-256 hashes of the records it covers
-- (32 bytes per record, in id order), the horizons (every id at or below
-- them existed or never will), and the chained head.
CREATE TABLE wallet.audit_seal (
    id              bigint PRIMARY KEY DEFAULT nextval('wallet.audit_seal_id_seq'),
    journal_through bigint NOT NULL,
    audit_through   bigint NOT NULL,
    journal_ids     bigint[] NOT NULL,
    journal_hashes  bytea NOT NULL,
    audit_ids       bigint[] NOT NULL,
    audit_hashes    bytea NOT NULL,
    prev_head       bytea NOT NULL,
    head            bytea NOT NULL,
    sealed_at       timestamptz NOT NULL DEFAULT now()
);
-- The id lists and hash strings are stored uncompressed: hashes do not
-- compress, and trying (pglz) was 15 % of the sealer's time.
ALTER TABLE wallet.audit_seal
    ALTER COLUMN journal_ids SET STORAGE EXTERNAL,
    ALTER COLUMN journal_hashes SET STORAGE EXTERNAL,
    ALTER COLUMN audit_ids SET STORAGE EXTERNAL,
    ALTER COLUMN audit_hashes SET STORAGE EXTERNAL;
ALTER SEQUENCE wallet.audit_seal_id_seq OWNED BY wallet.audit_seal.id;
SELECT pg_catalog.pg_extension_config_dump('wallet.audit_seal', '');
CREATE TRIGGER audit_seal_append_only BEFORE UPDATE OR DELETE ON wallet.audit_seal
    FOR EACH ROW EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER audit_seal_no_truncate BEFORE TRUNCATE ON wallet.audit_seal
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();

CREATE FUNCTION wallet.wait_for_writers() RETURNS void
    AS 'MODULE_PATHNAME', 'wallet_wait_for_writers' LANGUAGE C;
REVOKE ALL ON FUNCTION wallet.wait_for_writers() FROM PUBLIC;

-- SHA-256 of every journal transaction (with its entries) in an id range,
-- computed in C over a canonical byte string independent of session
-- settings (see src/audit.c).  Used by seal() and audit_verify() alike.
CREATE FUNCTION wallet.journal_hashes(after bigint, upto bigint)
RETURNS TABLE (id bigint, hash bytea)
    AS 'MODULE_PATHNAME', 'wallet_journal_hashes'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION wallet.journal_hashes(bigint, bigint) FROM PUBLIC;

-- What seal() stores for the next chunk: the ids of at most max_records
-- transactions after `after` and up to `upto`, their hashes (as
-- journal_hashes computes them, 32 bytes each, concatenated) and how far
-- the chunk covers (upto when the range held fewer, else the last id).
CREATE FUNCTION wallet.journal_chunk(after bigint, upto bigint, max_records int,
                                     OUT through bigint, OUT ids bigint[], OUT hashes bytea)
    AS 'MODULE_PATHNAME', 'wallet_journal_chunk'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION wallet.journal_chunk(bigint, bigint, int) FROM PUBLIC;

-- SHA-256 of an audit record over a canonical text (every field quoted or
-- NULL, times in UTC microseconds, jsonb's normalised text).  Every value
-- a field can hold has its own text: a time before year 1 ends in " BC",
-- an infinite one is spelled out, an address keeps a netmask shorter
-- than the host's (1.3.0; records as the API writes them, AD times and
-- host addresses, hash as before, so existing seals stay valid).
CREATE FUNCTION wallet.audit_hash(a wallet.audit_log) RETURNS bytea
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sha256(convert_to(concat_ws('|',
        'audit', quote_nullable(a.id), quote_nullable(a.relation), quote_nullable(a.operation),
        quote_nullable(a.old_row::text), quote_nullable(a.new_row::text),
        quote_nullable(a.changed_columns::text), quote_nullable(a.txid),
        quote_nullable(CASE WHEN NOT isfinite(a.at) THEN a.at::text
                            ELSE to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
                                 || CASE WHEN a.at < '0001-01-01 00:00:00+00' THEN ' BC' ELSE '' END END),
        quote_nullable(a.db_user), quote_nullable(a.application_name),
        quote_nullable(CASE WHEN a.client_addr IS NOT NULL THEN format('%s', a.client_addr) END),
        quote_nullable(a.actor)), 'UTF8'))
$$;

-- Head of a seal from its content and the previous head.
CREATE FUNCTION wallet.seal_head(prev_head bytea, journal_through bigint, audit_through bigint,
                                 journal_ids bigint[], journal_hashes bytea,
                                 audit_ids bigint[], audit_hashes bytea)
RETURNS bytea
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sha256(prev_head
                  || convert_to(format('seal|%s|%s|%s|%s', journal_through, audit_through,
                                       array_to_string(journal_ids, ','), array_to_string(audit_ids, ',')), 'UTF8')
                  || journal_hashes || audit_hashes)
$$;

CREATE FUNCTION wallet.genesis_head() RETURNS bytea
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sha256(convert_to('wallet genesis', 'UTF8')) $$;

-- Seals every journal transaction and audit record up to the given
-- horizons that is not sealed yet, in seals of at most 10,000 of each; at
-- most max_seals seals (NULL: as many as needed).  The caller has waited
-- for every writer that could still commit an id at or below the horizons
-- (seal() does; the background worker does it once, holding no snapshot,
-- then calls this in short transactions so that it never holds back the
-- cleanup of other tables' dead rows for long).  Concurrent sealers queue
-- on the seal table.  Returns how many records it sealed.  Errors: 22004
-- null horizon; 22023 a horizon past the last id its sequence has drawn.
CREATE FUNCTION wallet.seal_range(j_to bigint, a_to bigint, max_seals int DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last wallet.audit_seal;
    prev bytea;
    j_from bigint;
    a_from bigint;
    j_ids bigint[];
    j_hashes bytea;
    a_ids bigint[];
    a_hashes bytea;
    j_through bigint;
    a_through bigint;
    total bigint := 0;
    seals int := 0;
    chunk constant int := 10000;
    j_upto bigint;
    j_drawn bigint;
    a_drawn bigint;
BEGIN
    IF j_to IS NULL OR a_to IS NULL THEN
        RAISE EXCEPTION 'wallet.seal_range: the horizons must not be null' USING ERRCODE = '22004',
            DETAIL = format('j_to %s, a_to %s.', coalesce(j_to::text, 'NULL'), coalesce(a_to::text, 'NULL'));
    END IF;
    -- a horizon past the ids drawn would seal ids not drawn yet: the
    -- postings that later take them would read as inserted after sealing
    SELECT CASE WHEN q.is_called THEN q.last_value ELSE q.last_value - 1 END INTO j_drawn FROM wallet.txn_id_seq q;
    SELECT CASE WHEN q.is_called THEN q.last_value ELSE q.last_value - 1 END INTO a_drawn FROM wallet.audit_log_id_seq q;
    IF j_to > j_drawn OR a_to > a_drawn THEN
        RAISE EXCEPTION 'wallet.seal_range: a horizon is beyond the last id drawn' USING ERRCODE = '22023',
            DETAIL = format('j_to %s (transaction ids drawn up to %s), a_to %s (audit ids drawn up to %s).',
                            j_to, j_drawn, a_to, a_drawn),
            HINT = 'Read the horizons from the sequences, as wallet.seal() does.';
    END IF;
    -- ids cached by a session (sequence CACHE > 1) are drawn without the
    -- writer lock and could land below a sealed horizon
    IF EXISTS (SELECT 1 FROM pg_sequence s
                WHERE s.seqrelid IN ('wallet.txn_id_seq'::regclass, 'wallet.audit_log_id_seq'::regclass)
                  AND s.seqcache > 1) THEN
        RAISE EXCEPTION 'wallet.seal() needs the journal''s sequences without a cache'
            USING ERRCODE = '55000',
                  DETAIL = 'wallet.txn_id_seq or wallet.audit_log_id_seq has CACHE > 1: a session could draw an id below the horizon later.',
                  HINT = 'ALTER SEQUENCE wallet.txn_id_seq CACHE 1; ALTER SEQUENCE wallet.audit_log_id_seq CACHE 1;';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'wallet.seal() must run in a READ COMMITTED transaction'
            USING ERRCODE = '25000',
                  DETAIL = format('This transaction is %s; the sealer must see what the writers it waited for committed.',
                                  upper(current_setting('transaction_isolation')));
    END IF;
    -- one sealer at a time; another may have sealed meanwhile
    LOCK TABLE wallet.audit_seal IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO last FROM wallet.audit_seal ORDER BY id DESC LIMIT 1;
    prev := coalesce(last.head, wallet.genesis_head());
    j_from := coalesce(last.journal_through, 0);
    a_from := coalesce(last.audit_through, 0);
    IF j_to <= j_from AND a_to <= a_from THEN
        RETURN 0;
    END IF;
    j_to := greatest(j_to, j_from);
    a_to := greatest(a_to, a_from);
    -- seal what exists up to the horizons, in chunks
    LOOP
        -- the next chunk of the journal: at most `chunk` transactions, with
        -- their hashes, and how far that covers (one pass, in C)
        SELECT c.through, c.ids, c.hashes INTO j_upto, j_ids, j_hashes
          FROM wallet.journal_chunk(j_from, j_to, chunk) c;
        SELECT coalesce(array_agg(s.id ORDER BY s.id), '{}'), coalesce(string_agg(s.h, ''::bytea ORDER BY s.id), '')
          INTO a_ids, a_hashes
          FROM (SELECT a.id, wallet.audit_hash(a) AS h FROM wallet.audit_log a
                 WHERE a.id > a_from AND a.id <= a_to ORDER BY a.id LIMIT chunk) s;
        j_through := greatest(j_upto, j_from);
        a_through := CASE WHEN cardinality(a_ids) = chunk THEN a_ids[chunk] ELSE greatest(a_to, a_from) END;
        INSERT INTO wallet.audit_seal (journal_through, audit_through, journal_ids, journal_hashes,
                                       audit_ids, audit_hashes, prev_head, head)
        VALUES (j_through, a_through, j_ids, j_hashes, a_ids, a_hashes, prev,
                wallet.seal_head(prev, j_through, a_through, j_ids, j_hashes, a_ids, a_hashes))
        RETURNING head INTO prev;
        total := total + cardinality(j_ids) + cardinality(a_ids);
        seals := seals + 1;
        j_from := j_through;
        a_from := a_through;
        EXIT WHEN (j_from >= j_to AND a_from >= a_to) OR seals = max_seals;
    END LOOP;
    RETURN total;
END
$$;
REVOKE ALL ON FUNCTION wallet.seal_range(bigint, bigint, int) FROM PUBLIC;

-- Seals every journal transaction and audit record that can no longer be
-- preceded by a running transaction; returns how many it sealed.  Waits
-- for writers in flight (honours lock_timeout).  Concurrent sealers queue
-- on the seal table; postings never wait for a sealer.  Must run in READ
-- COMMITTED (it needs to see what the writers it waited for committed).
CREATE FUNCTION wallet.seal() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j_to bigint;
    a_to bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'wallet.seal() must run in a READ COMMITTED transaction'
            USING ERRCODE = '25000',
                  DETAIL = format('This transaction is %s; the sealer must see what the writers it waited for committed.',
                                  upper(current_setting('transaction_isolation')));
    END IF;
    -- 1. the horizon: ids drawn so far ...
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO j_to FROM wallet.txn_id_seq;
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO a_to FROM wallet.audit_log_id_seq;
    -- 2. ... whose writers have all ended.  Wait before touching the seal
    --    table at all: a sealer waiting for writers while holding even a
    --    read lock on it would deadlock with a writer's transaction that
    --    seals, or that tries to change the seal table (which then fails
    --    with WL013 as it should, not with 40P01).  So "nothing new" is only
    --    decided after the wait; with no writer in flight it costs nothing.
    PERFORM wallet.wait_for_writers();
    -- 3. seal up to there
    RETURN wallet.seal_range(j_to, a_to);
END
$$;

-- Seals everything so far and returns the chain's head (hex).  Keep it
-- outside the database; wallet.audit_verify(head) later proves the sealed
-- history still leads to it.
CREATE FUNCTION wallet.digest() RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM wallet.seal();
    RETURN encode(coalesce((SELECT s.head FROM wallet.audit_seal s ORDER BY s.id DESC LIMIT 1),
                           wallet.genesis_head()), 'hex');
END
$$;

-- Recomputes the chain and every sealed record.  Rows: seal_chain,
-- journal_records, audit_records, ledger_rows (1.4.0), known_head (when a
-- head is given), unsealed.  ok = false names the first bad seal, record or
-- row.  Detects edits, deletions, insertions and reordering of sealed
-- records even when made by a superuser with triggers disabled, and rows of
-- the ledger's own tables (accounts, holds, custom currencies, the live
-- configuration) that no longer match their latest audit record.
-- Errors: 22023 a known_head that is not 64 hex digits.
CREATE FUNCTION wallet.audit_verify(known_head text DEFAULT NULL)
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    prev bytea := wallet.genesis_head();
    prev_j bigint := 0;
    prev_a bigint := 0;
    bad text;
    n_seals bigint := 0;
    j_max bigint;
    a_max bigint;
    r record;
    tbl record;
    cols text;
    keytype text;
BEGIN
    IF known_head IS NOT NULL AND known_head !~ '^[0-9a-fA-F]{64}$' THEN
        RAISE EXCEPTION 'known_head must be a head returned by wallet.digest() (64 hex digits)'
            USING ERRCODE = '22023',
                  DETAIL = format('Got %s characters: %s.', length(known_head), left(known_head, 80));
    END IF;
    -- 1. the chain of seals
    FOR s IN SELECT * FROM wallet.audit_seal ORDER BY id LOOP
        IF s.prev_head IS DISTINCT FROM prev THEN
            bad := format('seal %s does not follow the previous seal (prev_head differs)', s.id);
        ELSIF s.head IS DISTINCT FROM wallet.seal_head(s.prev_head, s.journal_through, s.audit_through,
                                                       s.journal_ids, s.journal_hashes, s.audit_ids, s.audit_hashes) THEN
            bad := format('seal %s was altered (its head does not match its content)', s.id);
        ELSIF s.journal_through < prev_j OR s.audit_through < prev_a
              OR length(s.journal_hashes) <> 32 * cardinality(s.journal_ids)
              OR length(s.audit_hashes) <> 32 * cardinality(s.audit_ids) THEN
            bad := format('seal %s is malformed', s.id);
        END IF;
        EXIT WHEN bad IS NOT NULL;
        prev := s.head;
        prev_j := s.journal_through;
        prev_a := s.audit_through;
        n_seals := n_seals + 1;
    END LOOP;
    check_name := 'seal_chain'; ok := bad IS NULL;
    detail := coalesce(bad, format('%s seals chain to head %s', n_seals, encode(prev, 'hex')));
    RETURN NEXT;

    -- records are compared up to the furthest horizon any seal claims (a
    -- broken chain is reported above; it must not make intact records look
    -- deleted)
    SELECT coalesce(max(se.journal_through), 0), coalesce(max(se.audit_through), 0)
      INTO j_max, a_max FROM wallet.audit_seal se;

    -- 2. sealed journal records against the journal
    SELECT x.id, x.what, x.seal_id INTO r FROM (
        SELECT coalesce(sd.id, cur.id) AS id, sd.seal_id,
               CASE WHEN cur.id IS NULL THEN 'deleted'
                    WHEN sd.id IS NULL THEN 'inserted after sealing'
                    ELSE 'edited' END AS what
          FROM (SELECT u.id, se.id AS seal_id,
                       substring(se.journal_hashes FROM ((u.ord - 1) * 32 + 1)::int FOR 32) AS h
                  FROM wallet.audit_seal se, unnest(se.journal_ids) WITH ORDINALITY AS u(id, ord)) sd
          -- every id up to the horizon, those below any sequence value
          -- included (a forged id 0 or -5 is "inserted after sealing")
          FULL JOIN (SELECT jh.id, jh.hash AS h FROM wallet.journal_hashes(-9223372036854775808, j_max) jh
                     UNION ALL
                     SELECT t.id, ''::bytea FROM wallet.txn t WHERE t.id = -9223372036854775808) cur
            ON cur.id = sd.id
         WHERE sd.h IS DISTINCT FROM cur.h) x
     ORDER BY x.id LIMIT 1;
    check_name := 'journal_records'; ok := r IS NULL;
    detail := CASE WHEN ok THEN format('sealed journal intact through transaction %s', j_max)
                   ELSE format('journal transaction %s was %s%s', r.id, r.what,
                               CASE WHEN r.seal_id IS NULL THEN '' ELSE format(' (sealed in seal %s)', r.seal_id) END) END;
    RETURN NEXT;

    -- 3. sealed audit records against the audit log
    r := NULL;
    SELECT x.id, x.what, x.seal_id INTO r FROM (
        SELECT coalesce(sd.id, cur.id) AS id, sd.seal_id,
               CASE WHEN cur.id IS NULL THEN 'deleted'
                    WHEN sd.id IS NULL THEN 'inserted after sealing'
                    ELSE 'edited' END AS what
          FROM (SELECT u.id, se.id AS seal_id,
                       substring(se.audit_hashes FROM ((u.ord - 1) * 32 + 1)::int FOR 32) AS h
                  FROM wallet.audit_seal se, unnest(se.audit_ids) WITH ORDINALITY AS u(id, ord)) sd
          FULL JOIN (SELECT a.id, wallet.audit_hash(a) AS h FROM wallet.audit_log a WHERE a.id <= a_max) cur
            ON cur.id = sd.id
         WHERE sd.h IS DISTINCT FROM cur.h) x
     ORDER BY x.id LIMIT 1;
    check_name := 'audit_records'; ok := r IS NULL;
    detail := CASE WHEN ok THEN format('sealed audit log intact through record %s', a_max)
                   ELSE format('audit record %s was %s%s', r.id, r.what,
                               CASE WHEN r.seal_id IS NULL THEN '' ELSE format(' (sealed in seal %s)', r.seal_id) END) END;
    RETURN NEXT;

    -- 4. the ledger's own rows against their latest audit records (1.4.0).
    --    Accounts (their audited columns: the balance columns are sums of
    --    the sealed journal, which verify() checks), holds, custom
    --    currencies and the live configuration must be what the last
    --    audit record of each row says; every such row has a record, and a
    --    row whose last record deletes it does not exist.  So an edit,
    --    insert or delete made with triggers disabled shows here, and once
    --    the records are sealed they cannot be made to agree unnoticed.
    --    Records are compared as typed values (jsonb_populate_record), so
    --    the writer's time zone or output settings do not matter; columns
    --    a record lacks (added by a later version) are not compared.  The
    --    live configuration's first INSERT had no record before 1.3.0: a
    --    configuration without any record is let pass.  So is an account
    --    without any that may not go negative (accounts bulk-loaded with
    --    INSERT outside the API have none; money reaches such an account
    --    only through the sealed journal, from accounts that had it); one
    --    allowed to go negative could create money, and is reported, as is
    --    a hold or a currency without a record.
    r := NULL;
    FOR tbl IN SELECT v.rel, v.keycol, v.skip FROM (VALUES
                   (1, 'wallet.account'::regclass, 'id', ARRAY['balance', 'held', 'version', 'forced_negative']),
                   (2, 'wallet.hold'::regclass, 'id', ARRAY[]::text[]),
                   (3, 'wallet.custom_currencies'::regclass, 'code', ARRAY[]::text[]),
                   (4, 'wallet.live_config'::regclass, 'singleton', ARRAY[]::text[])) AS v(ord, rel, keycol, skip)
                ORDER BY v.ord LOOP
        -- jsonb columns as jsonb: a record shows SQL NULL and JSON null alike
        -- (null), and populating would turn a stored JSON null into NULL
        SELECT string_agg(CASE WHEN att.atttypid = 'jsonb'::regtype
                               THEN format('CASE WHEN l.rec ? %L AND (l.rec -> %L) IS DISTINCT FROM coalesce(to_jsonb(c.%I), ''null''::jsonb) THEN %L END',
                                           att.attname, att.attname, att.attname, att.attname)
                               ELSE format('CASE WHEN l.rec ? %L AND (p.r).%I IS DISTINCT FROM c.%I THEN %L END',
                                           att.attname, att.attname, att.attname, att.attname) END,
                          ', ' ORDER BY att.attnum)
          INTO cols
          FROM pg_attribute att
         WHERE att.attrelid = tbl.rel AND att.attnum > 0 AND NOT att.attisdropped
           AND att.attname <> ALL (tbl.skip);
        SELECT format_type(att.atttypid, att.atttypmod) INTO keytype
          FROM pg_attribute att WHERE att.attrelid = tbl.rel AND att.attname = tbl.keycol;
        EXECUTE format($q$
            SELECT coalesce(c.%1$I, l.key)::text AS key, l.audit_id,
                   CASE WHEN c.%1$I IS NULL THEN 'was deleted'
                        WHEN l.audit_id IS NULL THEN 'has no audit record'
                        WHEN l.operation = 'DELETE' THEN 'exists, though its last audit record deletes it'
                        ELSE 'differs from its last audit record in ' || d.cols END AS what
              FROM (SELECT DISTINCT ON (k.key) k.key, a.id AS audit_id, a.operation,
                           coalesce(a.new_row, a.old_row) AS rec
                      FROM wallet.audit_log a
                     CROSS JOIN LATERAL (SELECT (coalesce(a.new_row, a.old_row) ->> %2$L)::%3$s AS key) k
                     WHERE a.relation = %4$L AND a.operation IN ('INSERT', 'UPDATE', 'DELETE')
                     ORDER BY k.key, a.id DESC) l
              FULL JOIN %5$s c ON c.%1$I = l.key
             CROSS JOIN LATERAL (SELECT jsonb_populate_record(NULL::%5$s, l.rec) AS r OFFSET 0) p  -- once per row
             CROSS JOIN LATERAL (SELECT concat_ws(', ', %6$s) AS cols) d
             WHERE (c.%1$I IS NULL AND l.operation <> 'DELETE')
                OR (l.audit_id IS NULL AND %4$L <> 'wallet.live_config'
                    AND (%4$L <> 'wallet.account' OR (to_jsonb(c) ->> 'allow_negative')::boolean))
                OR (c.%1$I IS NOT NULL AND l.operation = 'DELETE')
                OR (c.%1$I IS NOT NULL AND l.operation <> 'DELETE' AND d.cols <> '')
             ORDER BY coalesce(c.%1$I, l.key)
             LIMIT 1 $q$,
            tbl.keycol, tbl.keycol, keytype, tbl.rel::text, tbl.rel::text, cols)
          INTO r;
        IF r.what IS NOT NULL THEN
            detail := format('%s %s %s%s', tbl.rel::text, r.key, r.what,
                             CASE WHEN r.audit_id IS NULL THEN ''
                                  ELSE format(' (audit record %s%s)', r.audit_id,
                                              coalesce((SELECT format(', sealed in seal %s', min(se.id))
                                                          FROM wallet.audit_seal se WHERE se.audit_through >= r.audit_id
                                                        HAVING min(se.id) IS NOT NULL), '')) END);
            EXIT;
        END IF;
    END LOOP;
    check_name := 'ledger_rows'; ok := r.what IS NULL;
    IF ok THEN
        detail := 'accounts, holds, currencies and the live configuration match their latest audit records';
    END IF;
    RETURN NEXT;

    -- 5. the head kept outside, if given
    IF known_head IS NOT NULL THEN
        check_name := 'known_head';
        ok := EXISTS (SELECT 1 FROM wallet.audit_seal se WHERE se.head = decode(known_head, 'hex'))
              OR decode(known_head, 'hex') = wallet.genesis_head();
        detail := CASE WHEN ok THEN 'the given head is in the chain'
                       ELSE 'the given head is not in the chain: sealed history was rewritten' END;
        RETURN NEXT;
    END IF;

    -- 6. what is not sealed yet (information)
    check_name := 'unsealed'; ok := true;
    detail := format('%s journal transactions and %s audit records not sealed yet',
                     (SELECT count(*) FROM wallet.txn t WHERE t.id > j_max),
                     (SELECT count(*) FROM wallet.audit_log a WHERE a.id > a_max));
    RETURN NEXT;
END
$$;

-- ---- housekeeping ----

-- Housekeeping for cron when the library is not preloaded: seals the
-- chain, files the journal per account, expires holds, folds hot accounts.
-- Returns a summary.  Call it in a transaction of its own (autocommit):
-- seal() and index_history() wait for writers in flight.  They come first,
-- while this transaction holds no row lock: after expire_holds() or
-- fold_hot() had locked an account, a posting waiting for that account
-- while seal() waited for the posting was a deadlock (1.3.0).  Then holds
-- expire, their accounts locked in ascending order; the folds come last
-- and never wait long: the hot accounts no posting holds are folded at
-- once, the others with a short wait each, 100 ms in all (at most half of
-- deadlock_timeout), and what is still busy then is left to the next call (folding
-- after expiring, waiting for hot rows in a second ascending pass while
-- holding the first's, was a deadlock with a posting that locked a hot
-- account and then one of those: 1.4.0).  The result's
-- "hot_accounts_busy" counts those left.  Expiries and folds of this call are sealed by the next
-- one.  (The background worker runs the steps in separate transactions.)
CREATE FUNCTION wallet.housekeeping() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    expired int;
    folded bigint;
    sealed bigint;
    indexed bigint;
    acc bigint;
    done bigint[] := '{}';   -- folded by the first pass
    skipped int := 0;
    saved_timeout text;
    budget interval;
    deadline timestamptz;
BEGIN
    sealed := wallet.seal();
    indexed := wallet.index_history();
    expired := wallet.expire_holds();
    folded := 0;
    FOR acc IN SELECT a.id FROM wallet.account a
                WHERE a.id IN (SELECT p.account_id FROM wallet.hot_pending p)
                ORDER BY a.id
                FOR NO KEY UPDATE SKIP LOCKED LOOP
        folded := folded + wallet.fold_hot(acc);
        done := done || acc;
    END LOOP;
    -- A hot account that is also debited is locked most of the time, but
    -- each posting holds it for a moment: the ones skipped get a short wait
    -- each (10 ms), in a subtransaction of their own, for 100 ms in all
    -- (never more than a tenth and half of deadlock_timeout).  If a
    -- posting waits for a row this call holds while this call waits for
    -- it, this call gives up first (lock_not_available) and the posting
    -- goes on: its deadlock check, at deadlock_timeout, finds no cycle.
    -- What is still locked after that is folded next time.
    saved_timeout := current_setting('lock_timeout');
    budget := least(current_setting('deadlock_timeout')::interval / 2, interval '100 ms');
    deadline := clock_timestamp() + budget;
    PERFORM set_config('lock_timeout', greatest(extract(epoch FROM budget) * 100, 1)::int || 'ms', true);
    FOR acc IN SELECT DISTINCT p.account_id FROM wallet.hot_pending p
                WHERE p.account_id <> ALL (done) ORDER BY 1 LOOP
        IF clock_timestamp() >= deadline THEN
            skipped := skipped + 1;
            CONTINUE;
        END IF;
        BEGIN
            folded := folded + wallet.fold_hot(acc);
        EXCEPTION WHEN lock_not_available THEN
            skipped := skipped + 1;
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', saved_timeout, true);
    RETURN jsonb_build_object('expired_holds', expired, 'folded_credits', folded, 'sealed_records', sealed,
                              'indexed_entries', indexed, 'hot_accounts_busy', skipped);
END
$$;

-- ==== ext/install/90_verify.sql ====
-- ============================================================================
-- wallet.verify(): the ledger's invariants, one row per check.
-- Read-only; safe to run at any time (it reads one consistent snapshot
-- when called in a REPEATABLE READ transaction, as auditors should).
-- ============================================================================
CREATE FUNCTION wallet.verify()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
    n bigint;
BEGIN
    -- Each check that scans the journal or the accounts computes its
    -- offending rows in a MATERIALIZED CTE and only then takes the first:
    -- with the ORDER BY ... LIMIT 1 in the same query the planner prefers
    -- nested loops that expect an early hit, which on a sound ledger of
    -- millions of accounts means a quadratic scan (hours, not seconds).

    -- 1. every transaction balances to zero in each currency
    WITH off AS MATERIALIZED (
        SELECT e.txn_id, a.currency, sum(e.amount) AS total
          FROM wallet.entry e JOIN wallet.account a ON a.id = e.account_id
         GROUP BY e.txn_id, a.currency HAVING sum(e.amount) <> 0)
    SELECT off.txn_id, off.currency, off.total INTO bad FROM off ORDER BY off.txn_id LIMIT 1;
    check_name := 'transactions_balance'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN (SELECT format('%s transactions balance in every currency', count(*)) FROM wallet.txn)
                   ELSE format('transaction %s does not balance in %s: off by %s',
                               bad.txn_id, bad.currency, wallet.amount(bad.total::bigint, bad.currency)) END;
    RETURN NEXT;

    -- 2. references: every entry has its transaction and account, every
    --    transaction has entries, every reversal points at a transaction
    bad := NULL;
    WITH orphan AS MATERIALIZED (
        SELECT e.txn_id, e.leg, e.account_id, t.id IS NULL AS no_txn
          FROM wallet.entry e
          LEFT JOIN wallet.txn t ON t.id = e.txn_id
          LEFT JOIN wallet.account a ON a.id = e.account_id
         WHERE t.id IS NULL OR a.id IS NULL)
    SELECT 'entry of transaction ' || o.txn_id || ' leg ' || o.leg ||
           CASE WHEN o.no_txn THEN ' has no transaction' ELSE ' names unknown account ' || o.account_id END AS what
      INTO bad
      FROM orphan o ORDER BY o.txn_id, o.leg LIMIT 1;
    IF bad IS NULL THEN
        SELECT 'transaction ' || e.txn_id || ' has a zero leg' AS what INTO bad
          FROM wallet.entry e WHERE e.amount = 0 ORDER BY e.txn_id LIMIT 1;
    END IF;
    IF bad IS NULL THEN
        WITH empty AS MATERIALIZED (
            SELECT t.id FROM wallet.txn t
             WHERE NOT EXISTS (SELECT 1 FROM wallet.entry e WHERE e.txn_id = t.id))
        SELECT 'transaction ' || empty.id || ' has no entries' AS what INTO bad
          FROM empty ORDER BY empty.id LIMIT 1;
    END IF;
    IF bad IS NULL THEN
        SELECT 'reversal ' || t.id || ' points at unknown transaction ' || t.reverses AS what INTO bad
          FROM wallet.txn t WHERE t.reverses IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM wallet.txn o WHERE o.id = t.reverses)
         LIMIT 1;
    END IF;
    check_name := 'journal_references'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN 'every entry has its transaction and account' ELSE bad.what END;
    RETURN NEXT;

    -- 3. stored balance (+ pending hot rows) equals the sum of entries
    --    (sums in numeric: a wrong ledger may hold sums past int64, and
    --    verify must report them, not fail)
    bad := NULL;
    WITH mismatch AS MATERIALIZED (
        SELECT a.id, a.currency, a.balance + coalesce(p.total, 0) AS stored, coalesce(s.total, 0) AS summed
          FROM wallet.account a
          LEFT JOIN (SELECT account_id, sum(amount) AS total FROM wallet.entry GROUP BY account_id) s
                 ON s.account_id = a.id
          LEFT JOIN (SELECT account_id, sum(amount) AS total FROM wallet.hot_pending GROUP BY account_id) p
                 ON p.account_id = a.id
         WHERE a.balance + coalesce(p.total, 0) <> coalesce(s.total, 0)
            OR a.balance + coalesce(p.total, 0) NOT BETWEEN -9223372036854775808 AND 9223372036854775807)
    SELECT m.id, m.currency, m.stored, m.summed INTO bad FROM mismatch m ORDER BY m.id LIMIT 1;
    check_name := 'balances_match_entries'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN (SELECT format('%s accounts match their entries', count(*)) FROM wallet.account)
                   WHEN bad.stored NOT BETWEEN -9223372036854775808 AND 9223372036854775807
                        OR bad.summed NOT BETWEEN -9223372036854775808 AND 9223372036854775807
                   THEN format('account %s stores %s minor units of %s (pending credits included), its entries sum to %s: past 64 bits',
                               bad.id, bad.stored, bad.currency, bad.summed)
                   ELSE format('account %s stores %s but its entries sum to %s', bad.id,
                               wallet.amount(bad.stored::bigint, bad.currency),
                               wallet.amount(bad.summed::bigint, bad.currency)) END;
    RETURN NEXT;

    -- 3b. the journal per account (wallet.account_history) holds exactly
    --     the entries up to its horizon, in well-formed rows
    bad := NULL;
    SELECT format('account_history row (%s, %s) is malformed', h.account_id, h.last_txn) AS what INTO bad
      FROM wallet.account_history h
     WHERE cardinality(h.txn_ids) = 0 OR cardinality(h.txn_ids) <> cardinality(h.amounts)
        OR h.txn_ids[1] <> h.first_txn OR h.txn_ids[cardinality(h.txn_ids)] <> h.last_txn
        OR h.last_txn > (SELECT coalesce(max(merged_through), 0) FROM wallet.history_horizon)
     LIMIT 1;
    IF bad IS NULL THEN
        SELECT format('history horizon %s is beyond the last transaction id drawn (%s)', hh.w, s.last) AS what INTO bad
          FROM (SELECT coalesce(max(merged_through), 0) AS w FROM wallet.history_horizon) hh,
               (SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS last FROM wallet.txn_id_seq) s
         WHERE hh.w > s.last;
    END IF;
    -- The same multiset of (account, transaction, amount) on both sides:
    -- first by count, sum and a 64-bit hash sum, one pass over each side
    -- without sorting; only when those differ, the sorting comparison that
    -- names the first entry out of place (EXCEPT ALL over every entry
    -- takes minutes on a journal of tens of millions).
    IF bad IS NULL AND
       (SELECT (count(*), coalesce(sum(u.units), 0),
                coalesce(sum((hashint8extended(u.txn_id, h.account_id) # hashint8extended(u.units, u.txn_id))::numeric), 0))
          FROM wallet.account_history h, unnest(h.txn_ids, h.amounts) AS u(txn_id, units))
       IS DISTINCT FROM
       (SELECT (count(*), coalesce(sum(e.amount), 0),
                coalesce(sum((hashint8extended(e.txn_id, e.account_id) # hashint8extended(e.amount, e.txn_id))::numeric), 0))
          FROM wallet.entry e
         WHERE e.txn_id <= (SELECT coalesce(max(merged_through), 0) FROM wallet.history_horizon)) THEN
        SELECT format('account %s: entry of transaction %s for %s is %s', d.account_id, d.txn_id, d.units,
                      CASE WHEN d.in_history THEN 'filed in account_history but not in the journal'
                           ELSE 'in the journal but not filed in account_history' END) AS what INTO bad
          FROM ((SELECT h.account_id, u.txn_id, u.units, true AS in_history
                   FROM wallet.account_history h, unnest(h.txn_ids, h.amounts) AS u(txn_id, units)
                 EXCEPT ALL
                 SELECT e.account_id, e.txn_id, e.amount, true FROM wallet.entry e
                  WHERE e.txn_id <= (SELECT coalesce(max(merged_through), 0) FROM wallet.history_horizon))
                UNION ALL
                (SELECT e.account_id, e.txn_id, e.amount, false FROM wallet.entry e
                  WHERE e.txn_id <= (SELECT coalesce(max(merged_through), 0) FROM wallet.history_horizon)
                 EXCEPT ALL
                 SELECT h.account_id, u.txn_id, u.units, false
                   FROM wallet.account_history h, unnest(h.txn_ids, h.amounts) AS u(txn_id, units))) d
         ORDER BY d.txn_id, d.account_id LIMIT 1;
        IF bad IS NULL THEN
            SELECT 'the filed history and the journal differ' AS what INTO bad;
        END IF;
    END IF;
    IF bad IS NULL THEN
        SELECT format('account_history rows of account %s overlap or are out of order (last_txn %s)',
                      o.account_id, o.last_txn) AS what INTO bad
          FROM (SELECT h.account_id, h.last_txn, h.first_txn,
                       lag(h.last_txn) OVER (PARTITION BY h.account_id ORDER BY h.last_txn) AS prev_last
                  FROM wallet.account_history h) o
         WHERE o.first_txn < o.prev_last
         LIMIT 1;
    END IF;
    check_name := 'account_history_matches_journal'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN (SELECT format('entries through transaction %s filed per account; %s in the journal''s tail',
                                               coalesce(max(merged_through), 0),
                                               (SELECT count(*) FROM wallet.entry e
                                                 WHERE e.txn_id > coalesce(max(hh.merged_through), 0)))
                                   FROM wallet.history_horizon hh)
                   ELSE bad.what END;
    RETURN NEXT;

    -- 4. no account that may not go negative is negative (posted or
    --    available), except through a recorded forced posting: the
    --    account's forced_negative flag is only believed when a forced
    --    transaction of the (sealed) journal debited it (1.4.0; the flag
    --    is derived state, not audited row by row)
    bad := NULL;
    WITH overdrawn AS MATERIALIZED (
        SELECT a.id, a.currency, a.balance + coalesce(p.total, 0) AS posted, a.held, a.forced_negative
          FROM wallet.account a
          LEFT JOIN (SELECT account_id, sum(amount) AS total FROM wallet.hot_pending GROUP BY account_id) p
                 ON p.account_id = a.id
         WHERE NOT a.allow_negative
           AND (a.balance + coalesce(p.total, 0) < 0 OR a.balance + coalesce(p.total, 0) - a.held < 0))
    -- one row: how many flagged accounts are below zero now (the flag
    -- outlives it), and the first overdraft not excused (id NULL if none)
    SELECT f.flagged, x.id, x.currency, x.posted, x.held, x.forced_negative INTO bad
      FROM (SELECT count(*) AS flagged FROM overdrawn o WHERE o.forced_negative) f
      LEFT JOIN LATERAL (
            SELECT o.* FROM overdrawn o
             WHERE NOT o.forced_negative
                OR NOT EXISTS (SELECT 1 FROM wallet.account_entries ae JOIN wallet.txn t ON t.id = ae.txn_id
                                WHERE ae.account_id = o.id AND ae.units < 0 AND t.forced)
             ORDER BY o.id LIMIT 1) x ON true;
    n := bad.flagged;
    check_name := 'no_forbidden_negative'; ok := bad.id IS NULL;
    detail := CASE WHEN ok THEN format('no overdraft%s', CASE WHEN n > 0 THEN format(' (%s accounts negative through forced reversals)', n) ELSE '' END)
                   ELSE format('account %s may not go negative but has posted %s with %s held%s', bad.id,
                               CASE WHEN bad.posted BETWEEN -9223372036854775808 AND 9223372036854775807
                                    THEN wallet.amount(bad.posted::bigint, bad.currency)::text
                                    ELSE bad.posted || ' minor units of ' || bad.currency END,
                               wallet.amount(bad.held, bad.currency),
                               CASE WHEN bad.forced_negative THEN ' (marked forced_negative, but no forced posting debited it)' ELSE '' END) END;
    RETURN NEXT;

    -- 4b. every account has a known status, a registered currency and a
    --     non-negative held amount
    bad := NULL;
    WITH malformed AS MATERIALIZED (
        SELECT a.id, a.status, a.currency, a.held
          FROM wallet.account a
         WHERE a.status NOT IN ('active', 'frozen', 'closed') OR a.held < 0
            OR NOT (wallet.is_iso_currency(a.currency)
                    OR EXISTS (SELECT 1 FROM wallet.custom_currencies c WHERE c.code = a.currency)))
    SELECT m.id, format('account %s has status %s, currency %s, held %s', m.id, quote_literal(m.status),
                        quote_literal(m.currency), m.held) AS what INTO bad
      FROM malformed m ORDER BY m.id LIMIT 1;
    check_name := 'accounts_well_formed'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN 'every account has a valid status, currency and held amount' ELSE bad.what END;
    RETURN NEXT;

    -- 5. holds: each account's held amount is the sum of its pending holds;
    --    ended holds are consistent with their capture, and a captured
    --    hold's transaction moved exactly what it says was captured, from
    --    its source to its destination (1.3.0)
    bad := NULL;
    WITH unheld AS MATERIALIZED (
        SELECT a.id, a.currency, a.held, coalesce(h.total, 0) AS pending
          FROM wallet.account a
          LEFT JOIN (SELECT from_account, sum(amount)::bigint AS total FROM wallet.hold
                      WHERE status = 'pending' GROUP BY from_account) h ON h.from_account = a.id
         WHERE a.held <> coalesce(h.total, 0))
    SELECT u.id, u.currency, u.held, u.pending INTO bad FROM unheld u ORDER BY u.id LIMIT 1;
    IF bad IS NULL THEN
        WITH inconsistent AS MATERIALIZED (
            SELECT h.id, h.status
              FROM wallet.hold h
              LEFT JOIN wallet.txn t ON t.id = h.capture_txn
             WHERE (h.status = 'captured' AND (t.id IS NULL OR h.captured IS NULL OR h.captured <= 0 OR h.captured > h.amount
                                               OR (SELECT count(*) = 2
                                                          AND count(*) FILTER (WHERE e.account_id = h.from_account AND e.amount = -h.captured) = 1
                                                          AND count(*) FILTER (WHERE e.account_id = h.to_account AND e.amount = h.captured) = 1
                                                     FROM wallet.entry e WHERE e.txn_id = h.capture_txn) IS NOT TRUE))
                OR (h.status <> 'captured' AND h.capture_txn IS NOT NULL)
                OR (h.status <> 'pending' AND h.ended_at IS NULL))
        SELECT i.id, 'hold ' || i.id || ' is ' || i.status || ' but its capture is inconsistent' AS what INTO bad
          FROM inconsistent i ORDER BY i.id LIMIT 1;
        check_name := 'holds_consistent'; ok := bad IS NULL;
        detail := CASE WHEN ok THEN (SELECT format('%s holds, %s pending', count(*), count(*) FILTER (WHERE status = 'pending')) FROM wallet.hold)
                       ELSE bad.what END;
    ELSE
        check_name := 'holds_consistent'; ok := false;
        detail := format('account %s has %s held but its pending holds sum to %s', bad.id,
                         wallet.amount(bad.held, bad.currency), wallet.amount(bad.pending, bad.currency));
    END IF;
    RETURN NEXT;

    -- 6. the audit and journal hash chains (wallet.audit_verify)
    RETURN QUERY SELECT 'audit: ' || v.check_name, v.ok, v.detail FROM wallet.audit_verify() v;
END
$$;

-- ==== ext/install/95_security.sql ====
-- ============================================================================
-- Privileges.
--
-- Every table is written only through the API: SECURITY DEFINER functions
-- owned by the extension owner, each with a pinned search_path
-- (pg_catalog, pg_temp) and only schema-qualified references, so objects
-- a caller creates in public or pg_temp cannot hijack them.  Applications
-- get EXECUTE on the API and SELECT on the read views; readers (finance,
-- auditors) get the read functions and views.  Nobody but the owner has any
-- privilege on the tables, so no application role can UPDATE a balance,
-- DELETE an entry, TRUNCATE or disable a trigger.
--
-- The money type and its pure functions stay usable by every role.
-- ============================================================================

GRANT USAGE ON SCHEMA wallet TO PUBLIC;

-- The API an application calls.
CREATE FUNCTION wallet.app_functions() RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.oid::regprocedure
      FROM pg_proc p
     WHERE p.pronamespace = 'wallet'::regnamespace
       AND p.proname = ANY (ARRAY[
           'add_currency', 'open_account', 'freeze_account', 'unfreeze_account', 'close_account',
           'set_hot', 'fold_hot', 'transfer', 'post', 'transfer_batch', 'reverse',
           'hold', 'capture', 'void', 'expire_holds',
           'balance', 'available', 'balance_at', 'statement', 'verify', 'audit_verify',
           'seal', 'digest', 'housekeeping', 'index_history',
           'live_setup', 'recharge', 'gift', 'request_withdrawal', 'complete_withdrawal',
           'cancel_withdrawal', 'refund_recharge', 'live_report',
           -- called by the view wallet.account_entries as its reader
           'history_merged_through'])
$$;

-- What a reader (finance, auditor) calls.
CREATE FUNCTION wallet.reader_functions() RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.oid::regprocedure
      FROM pg_proc p
     WHERE p.pronamespace = 'wallet'::regnamespace
       AND p.proname = ANY (ARRAY['balance', 'available', 'balance_at', 'statement', 'verify',
                                  'audit_verify', 'live_report', 'history_merged_through'])
$$;

-- Read views.
CREATE FUNCTION wallet.read_views() RETURNS SETOF regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid::regclass FROM pg_class c
     WHERE c.relnamespace = 'wallet'::regnamespace AND c.relkind = 'v'
$$;

-- At install: the API and every internal function are not PUBLIC.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
         WHERE p.pronamespace = 'wallet'::regnamespace
           AND p.prokind = 'f'
           AND NOT (p.proname LIKE 'amount%'
                    OR p.proname = ANY (ARRAY['units', 'currency', 'minor_units', 'to_numeric', 'abs', 'sign',
                                              'allocate', 'split', 'mul', 'convert', 'normalize_currency',
                                              'is_iso_currency', 'iso_currencies', 'audit']))
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;

-- Grants USAGE on the schema, EXECUTE on `functions` and SELECT on the read
-- views to `role` (internal; behind grant_app and grant_reader).
CREATE FUNCTION wallet.grant_rights(role regrole, functions regprocedure[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f regprocedure;
    v regclass;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = '22004',
            DETAIL = 'Name the role to grant the rights to.';
    END IF;
    -- a regrole given as a number need not name a role (its text is then
    -- the number, or '-' for 0, and would not parse as a grantee)
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = role) THEN
        RAISE EXCEPTION 'role with OID % does not exist', role::oid USING ERRCODE = '42704',
            DETAIL = format('No role has OID %s.', role::oid),
            HINT = 'Pass the role by name, e.g. ''app_role''.';
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA wallet TO %s', role);
    FOREACH f IN ARRAY functions LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f, role);
    END LOOP;
    FOR v IN SELECT * FROM wallet.read_views() LOOP
        EXECUTE format('GRANT SELECT ON %s TO %s', v, role);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION wallet.grant_rights(regrole, regprocedure[]) FROM PUBLIC;

-- Gives `role` what an application needs: EXECUTE on the API, SELECT on the
-- read views.  Nothing on the tables.  Idempotent.
CREATE FUNCTION wallet.grant_app(role regrole) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT wallet.grant_rights(role, ARRAY(SELECT wallet.app_functions())) $$;

-- Gives `role` read access: the read functions and the read views.
CREATE FUNCTION wallet.grant_reader(role regrole) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT wallet.grant_rights(role, ARRAY(SELECT wallet.reader_functions())) $$;
REVOKE ALL ON FUNCTION wallet.grant_app(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION wallet.grant_reader(regrole) FROM PUBLIC;

-- The audit records a role may see: the wallet's own tables, and the
-- tables it may SELECT itself in full (wallet.audit_table() records whole
-- rows of any table; a reader of the ledger must not read another
-- schema's data through them).  A table under row-level security for the
-- caller shows none of its records (1.3.0): a policy cannot be applied to
-- past rows, and the trail showed rows the policy hides.  Records follow
-- the table's name: after a table is renamed or dropped, its records go
-- with the name, to whoever may read a table of that name.
-- security_barrier: a caller's own conditions run after this filter.  The
-- extension owner reads wallet.audit_log directly.
CREATE VIEW wallet.audit_trail WITH (security_barrier) AS
SELECT a.id, a.relation, a.operation, a.old_row, a.new_row, a.changed_columns, a.txid, a.at, a.db_user,
       a.application_name, a.client_addr, a.actor
  FROM wallet.audit_log a
 WHERE a.relation LIKE 'wallet.%'
    OR EXISTS (SELECT 1
                 FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid
                WHERE n.nspname = (pg_catalog.parse_ident(a.relation, false))[1]
                  AND c.relname = (pg_catalog.parse_ident(a.relation, false))[2]
                  AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                  AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
                  AND NOT pg_catalog.row_security_active(c.oid));
COMMENT ON VIEW wallet.audit_trail IS 'Audit records of the wallet''s tables and of the tables the caller may read.';

-- Tell the background launcher (when preloaded) that this database now has
-- the extension, so housekeeping starts at once.
CREATE FUNCTION wallet.housekeeping_wake() RETURNS void
    AS 'MODULE_PATHNAME', 'wallet_housekeeping_wake' LANGUAGE C;
REVOKE ALL ON FUNCTION wallet.housekeeping_wake() FROM PUBLIC;
SELECT wallet.housekeeping_wake();
