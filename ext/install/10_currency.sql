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
        -- added concurrently by another session (committed: the insert
        -- waited for it): the same definition is a no-op, other minor units
        -- are refused as above (1.6.0; before, the loser of the race
        -- returned false whatever its minor units, and a deploy believed a
        -- unit had 18 decimals that had 0)
        SELECT cc.minor_units INTO existing FROM wallet.custom_currencies cc WHERE cc.code = c;
        IF FOUND AND existing <> add_currency.minor_units THEN
            RAISE EXCEPTION 'currency % already exists with % minor units', c, existing
                USING ERRCODE = '22023',
                      DETAIL = format('%s has %s minor units; %s were requested.', c, existing, add_currency.minor_units),
                      HINT = 'Minor units of a currency never change.';
        END IF;
        RETURN false;
    END IF;
    PERFORM wallet.audit_row('wallet.custom_currencies', 'INSERT', NULL, wallet.audit_jsonb(cc))
       FROM wallet.custom_currencies cc WHERE cc.code = c;
    RETURN true;
END
$$;
