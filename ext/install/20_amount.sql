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
