-- wallet 1.0.0 -> 1.1.0
--
-- 1. The journal per account moves from an index on wallet.entry, updated
--    by every posting, to wallet.account_history, filed behind the
--    postings by wallet.index_history() (see src/history.c and
--    ext/install/35_history.sql).  After the update nothing is filed yet:
--    wallet.account_entries, statements and balance_at read the whole
--    journal as its tail until the first housekeeping pass (the background
--    worker, or SELECT wallet.index_history() / wallet.housekeeping()) has
--    filed it, a million entries at a time.
-- 2. The btree operator class of wallet.amount becomes a total order of
--    its own (~<~ ~<=~ ~>=~ ~>~), so the planner never evaluates the
--    currency-checking < <= > >= on statistics of mixed columns; min and
--    max lose their sort operator (an index answered them unchecked).
-- 3. wallet.post_system takes `reverses`; refund_recharge links the refund
--    to the recharge, so a recharge is clawed back at most once.
-- 4. Errors carry a DETAIL; a hold's fingerprint no longer depends on the
--    session's TimeZone (a hold placed with expires_at under 1.0.0 and
--    retried after the update with the same key is refused as a different
--    request, WL006); audit_verify finds forged ids <= 0; audit_trail shows
--    only the wallet's records and those of tables the caller may read.
-- 5. seal() reads each chunk of the journal once, through
--    wallet.journal_chunk(), with the same hashes as before; its work after
--    the wait is wallet.seal_range(), which the background worker calls in
--    short transactions (as index_history_range()) so that housekeeping
--    never holds back the cleanup of dead rows for long.
-- Roles given rights with wallet.grant_app() or wallet.grant_reader() before
-- the update keep them and get the new view and functions (see the end).
\echo Use "ALTER EXTENSION wallet UPDATE TO '1.1.0'" to load this file. \quit

-- ---- 2. the money type: a total order for the btree operator class ----

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
CREATE OR REPLACE FUNCTION wallet.amount_lt(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;
CREATE OR REPLACE FUNCTION wallet.amount_le(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;
CREATE OR REPLACE FUNCTION wallet.amount_gt(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;
CREATE OR REPLACE FUNCTION wallet.amount_ge(wallet.amount, wallet.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;
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
-- The operator class's strategies 1, 2, 4 and 5 become the total-order
-- operators.  ALTER OPERATOR FAMILY cannot replace members of an operator
-- class, and DROP OPERATOR CLASS would drop every index on an amount
-- column, so the members are rebound in place, with their dependencies.
-- The support function (amount_cmp) is unchanged: existing indexes stay
-- valid.
WITH m(strategy, old_op, new_op) AS (VALUES
        (1, 'pg_catalog.<(wallet.amount,wallet.amount)'::regoperator, 'pg_catalog.~<~(wallet.amount,wallet.amount)'::regoperator),
        (2, 'pg_catalog.<=(wallet.amount,wallet.amount)'::regoperator, 'pg_catalog.~<=~(wallet.amount,wallet.amount)'::regoperator),
        (4, 'pg_catalog.>=(wallet.amount,wallet.amount)'::regoperator, 'pg_catalog.~>=~(wallet.amount,wallet.amount)'::regoperator),
        (5, 'pg_catalog.>(wallet.amount,wallet.amount)'::regoperator, 'pg_catalog.~>~(wallet.amount,wallet.amount)'::regoperator)),
     amop AS (
        UPDATE pg_catalog.pg_amop a SET amopopr = m.new_op
          FROM m, pg_catalog.pg_opfamily f, pg_catalog.pg_am am
         WHERE f.oid = a.amopfamily AND f.opfname = 'amount_ops' AND f.opfnamespace = 'wallet'::regnamespace
           AND am.oid = f.opfmethod AND am.amname = 'btree'
           AND a.amopstrategy = m.strategy AND a.amopopr = m.old_op
        RETURNING a.oid, m.old_op, m.new_op)
UPDATE pg_catalog.pg_depend d SET refobjid = amop.new_op
  FROM amop
 WHERE d.classid = 'pg_catalog.pg_amop'::regclass AND d.objid = amop.oid
   AND d.refclassid = 'pg_catalog.pg_operator'::regclass AND d.refobjid = amop.old_op;
-- Every session's type cache remembers the ordering operator of
-- wallet.amount and is invalidated by changes to pg_opclass, not pg_amop:
-- touch the class so that open sessions (pooled connections) see the new
-- members.
UPDATE pg_catalog.pg_opclass SET opcname = opcname
 WHERE opcname = 'amount_ops' AND opcnamespace = 'wallet'::regnamespace
   AND opcmethod = (SELECT oid FROM pg_catalog.pg_am WHERE amname = 'btree');
ALTER OPERATOR pg_catalog.< (wallet.amount, wallet.amount) SET (RESTRICT = wallet.amount_ltsel);
ALTER OPERATOR pg_catalog.<= (wallet.amount, wallet.amount) SET (RESTRICT = wallet.amount_lesel);
ALTER OPERATOR pg_catalog.> (wallet.amount, wallet.amount) SET (RESTRICT = wallet.amount_gtsel);
ALTER OPERATOR pg_catalog.>= (wallet.amount, wallet.amount) SET (RESTRICT = wallet.amount_gesel);
-- min and max without a sort operator.  ALTER AGGREGATE cannot change it,
-- and DROP + CREATE would fail on (or drop) views of the database that use
-- them, so the catalog rows are changed in place (the extension is
-- installed by a superuser).
UPDATE pg_catalog.pg_aggregate SET aggsortop = 0
 WHERE aggfnoid IN ('wallet.min(wallet.amount)'::regprocedure, 'wallet.max(wallet.amount)'::regprocedure,
                    'pg_catalog.min(wallet.amount)'::regprocedure, 'pg_catalog.max(wallet.amount)'::regprocedure);
DELETE FROM pg_catalog.pg_depend
 WHERE classid = 'pg_catalog.pg_proc'::regclass AND refclassid = 'pg_catalog.pg_operator'::regclass
   AND objid IN ('wallet.min(wallet.amount)'::regprocedure, 'wallet.max(wallet.amount)'::regprocedure,
                 'pg_catalog.min(wallet.amount)'::regprocedure, 'pg_catalog.max(wallet.amount)'::regprocedure);

-- The checking operators stay valid sort operators (views made under
-- 1.0.0 sort by them, and pg_dump writes those as ORDER BY a USING <).
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
-- ---- 3. post_system(..., reverses) ----

DROP FUNCTION wallet.post_system(text, wallet.leg[], text, jsonb);
CREATE FUNCTION wallet.post_system(idempotency_key text, legs wallet.leg[], kind text DEFAULT 'journal',
                                   metadata jsonb DEFAULT NULL, reverses bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_post_system'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION wallet.post_system(text, wallet.leg[], text, jsonb, bigint) FROM PUBLIC;

-- ---- 1. the journal per account ----

DROP INDEX wallet.entry_account_idx;
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
-- updates).  Internal.
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

-- ---- 5. the sealer reads the journal in one pass (journal_chunk) ----

CREATE FUNCTION wallet.journal_chunk(after bigint, upto bigint, max_records int,
                                     OUT through bigint, OUT ids bigint[], OUT hashes bytea)
    AS 'MODULE_PATHNAME', 'wallet_journal_chunk'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION wallet.journal_chunk(bigint, bigint, int) FROM PUBLIC;

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
BEGIN
    IF j_to IS NULL OR a_to IS NULL THEN
        RAISE EXCEPTION 'wallet.seal_range: the horizons must not be null' USING ERRCODE = '22004',
            DETAIL = format('j_to %s, a_to %s.', coalesce(j_to::text, 'NULL'), coalesce(a_to::text, 'NULL'));
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

-- ---- every other function or view whose definition changed ----

CREATE OR REPLACE FUNCTION wallet.add_currency(code text, minor_units int, name text)
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
    PERFORM wallet.audit_row('wallet.custom_currencies', 'INSERT', NULL, to_jsonb(cc))
       FROM wallet.custom_currencies cc WHERE cc.code = c;
    RETURN true;
END
$$;
CREATE OR REPLACE FUNCTION wallet.open_account(owner text, currency text, kind text DEFAULT 'user',
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
    IF length(kind) NOT BETWEEN 1 AND 64 THEN
        RAISE EXCEPTION 'wallet.open_account: kind must be 1 to 64 characters'
            USING ERRCODE = '22023',
                  DETAIL = format('The kind has %s characters.', length(kind));
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
    PERFORM wallet.audit_row('wallet.account', 'INSERT', NULL, to_jsonb(a))
       FROM wallet.account a WHERE a.id = new_id;
    RETURN new_id;
END
$$;
CREATE OR REPLACE FUNCTION wallet.account_row(id bigint) RETURNS wallet.account
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
CREATE OR REPLACE FUNCTION wallet.set_hot(id bigint, hot boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF id IS NULL OR hot IS NULL THEN
        RAISE EXCEPTION 'wallet.set_hot: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = format('Account %s, hot %s.', coalesce(id::text, 'NULL'), coalesce(hot::text, 'NULL'));
    END IF;
    PERFORM wallet.account_row(id);
    UPDATE wallet.account a SET hot = set_hot.hot, version = a.version + 1
     WHERE a.id = set_hot.id AND a.hot IS DISTINCT FROM set_hot.hot;
    IF NOT set_hot.hot THEN
        PERFORM wallet.fold_hot(set_hot.id);
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION wallet.lock_account_for_status(id bigint) RETURNS wallet.account
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
CREATE OR REPLACE FUNCTION wallet.freeze_account(id bigint) RETURNS void
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
CREATE OR REPLACE FUNCTION wallet.unfreeze_account(id bigint) RETURNS void
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
CREATE OR REPLACE FUNCTION wallet.balance_at(account bigint, at timestamptz) RETURNS wallet.amount
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
CREATE OR REPLACE FUNCTION wallet.statement(account bigint, since timestamptz DEFAULT '-infinity',
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
CREATE OR REPLACE FUNCTION wallet.live_cfg() RETURNS wallet.live_config
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
CREATE OR REPLACE FUNCTION wallet.live_setup(coin_currency text DEFAULT 'COIN',
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
    RETURN c;
END
$$;
CREATE OR REPLACE FUNCTION wallet.recharge(user_account bigint, coins wallet.amount, paid wallet.amount,
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
CREATE OR REPLACE FUNCTION wallet.gift(viewer_account bigint, creator_account bigint, coins wallet.amount,
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

    -- a retry returns the first gift even if the share changed since
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
CREATE OR REPLACE FUNCTION wallet.request_withdrawal(creator_account bigint, amount wallet.amount,
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
CREATE OR REPLACE FUNCTION wallet.live_lock_withdrawal(hold_id bigint) RETURNS wallet.hold
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
CREATE OR REPLACE FUNCTION wallet.refund_recharge(tx_id bigint, reason text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config;
    t_kind text;
    t_md jsonb;
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
    SELECT t.kind, t.metadata INTO t_kind, t_md FROM wallet.txn t WHERE t.id = tx_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown transaction %', tx_id USING ERRCODE = 'WL009',
            DETAIL = format('No transaction has id %s.', tx_id);
    END IF;
    IF t_kind <> 'recharge' OR NOT (t_md ? 'account') THEN
        RAISE EXCEPTION 'transaction % is a %, not a recharge', tx_id, t_kind
            USING ERRCODE = '22023',
                  DETAIL = format('Transaction %s has kind %s; only recharges are refunded.', tx_id, t_kind),
                  HINT = 'Use wallet.reverse() for other transactions.';
    END IF;
    user_id := (t_md ->> 'account')::bigint;
    r := wallet.units((t_md ->> 'coins')::wallet.amount);
    paid := (t_md ->> 'paid')::wallet.amount;

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
CREATE OR REPLACE FUNCTION wallet.audit_table(target regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'target must not be null' USING ERRCODE = '22004',
            DETAIL = 'wallet.audit_table(NULL): name the table to audit.';
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
CREATE OR REPLACE FUNCTION wallet.seal() RETURNS bigint
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
CREATE OR REPLACE FUNCTION wallet.audit_verify(known_head text DEFAULT NULL)
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
BEGIN
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
                     SELECT t.id, '\x'::bytea FROM wallet.txn t WHERE t.id = -9223372036854775808) cur
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

    -- 4. the head kept outside, if given
    IF known_head IS NOT NULL THEN
        check_name := 'known_head';
        ok := EXISTS (SELECT 1 FROM wallet.audit_seal se WHERE se.head = decode(known_head, 'hex'))
              OR decode(known_head, 'hex') = wallet.genesis_head();
        detail := CASE WHEN ok THEN 'the given head is in the chain'
                       ELSE 'the given head is not in the chain: sealed history was rewritten' END;
        RETURN NEXT;
    END IF;

    -- 5. what is not sealed yet (information)
    check_name := 'unsealed'; ok := true;
    detail := format('%s journal transactions and %s audit records not sealed yet',
                     (SELECT count(*) FROM wallet.txn t WHERE t.id > j_max),
                     (SELECT count(*) FROM wallet.audit_log a WHERE a.id > a_max));
    RETURN NEXT;
END
$$;
CREATE OR REPLACE FUNCTION wallet.housekeeping() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    expired int;
    folded bigint;
    sealed bigint;
    indexed bigint;
BEGIN
    expired := wallet.expire_holds();
    folded := wallet.fold_hot();
    sealed := wallet.seal();
    indexed := wallet.index_history();
    RETURN jsonb_build_object('expired_holds', expired, 'folded_credits', folded, 'sealed_records', sealed,
                              'indexed_entries', indexed);
END
$$;
CREATE OR REPLACE FUNCTION wallet.verify()
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
    --    available), except through a recorded forced posting
    bad := NULL;
    WITH overdrawn AS MATERIALIZED (
        SELECT a.id, a.currency, a.balance + coalesce(p.total, 0) AS posted, a.held
          FROM wallet.account a
          LEFT JOIN (SELECT account_id, sum(amount) AS total FROM wallet.hot_pending GROUP BY account_id) p
                 ON p.account_id = a.id
         WHERE NOT a.allow_negative AND NOT a.forced_negative
           AND (a.balance + coalesce(p.total, 0) < 0 OR a.balance + coalesce(p.total, 0) - a.held < 0))
    SELECT o.id, o.currency, o.posted, o.held INTO bad FROM overdrawn o ORDER BY o.id LIMIT 1;
    SELECT count(*) INTO n FROM wallet.account a WHERE a.forced_negative;
    check_name := 'no_forbidden_negative'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN format('no overdraft%s', CASE WHEN n > 0 THEN format(' (%s accounts negative through forced reversals)', n) ELSE '' END)
                   ELSE format('account %s may not go negative but has posted %s with %s held', bad.id,
                               CASE WHEN bad.posted BETWEEN -9223372036854775808 AND 9223372036854775807
                                    THEN wallet.amount(bad.posted::bigint, bad.currency)::text
                                    ELSE bad.posted || ' minor units of ' || bad.currency END,
                               wallet.amount(bad.held, bad.currency)) END;
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
    --    ended holds are consistent with their capture
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
             WHERE (h.status = 'captured' AND (t.id IS NULL OR h.captured IS NULL OR h.captured <= 0 OR h.captured > h.amount))
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
CREATE OR REPLACE FUNCTION wallet.app_functions() RETURNS SETOF regprocedure
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
CREATE OR REPLACE FUNCTION wallet.reader_functions() RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.oid::regprocedure
      FROM pg_proc p
     WHERE p.pronamespace = 'wallet'::regnamespace
       AND p.proname = ANY (ARRAY['balance', 'available', 'balance_at', 'statement', 'verify',
                                  'audit_verify', 'live_report', 'history_merged_through'])
$$;
CREATE OR REPLACE FUNCTION wallet.grant_rights(role regrole, functions regprocedure[]) RETURNS void
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
    EXECUTE format('GRANT USAGE ON SCHEMA wallet TO %s', role);
    FOREACH f IN ARRAY functions LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f, role);
    END LOOP;
    FOR v IN SELECT * FROM wallet.read_views() LOOP
        EXECUTE format('GRANT SELECT ON %s TO %s', v, role);
    END LOOP;
END
$$;
CREATE OR REPLACE VIEW wallet.audit_trail WITH (security_barrier) AS
SELECT a.id, a.relation, a.operation, a.old_row, a.new_row, a.changed_columns, a.txid, a.at, a.db_user,
       a.application_name, a.client_addr, a.actor
  FROM wallet.audit_log a
 WHERE a.relation LIKE 'wallet.%'
    OR EXISTS (SELECT 1
                 FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid
                WHERE n.nspname = (pg_catalog.parse_ident(a.relation, false))[1]
                  AND c.relname = (pg_catalog.parse_ident(a.relation, false))[2]
                  AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                  AND pg_catalog.has_table_privilege(c.oid, 'SELECT'));
COMMENT ON VIEW wallet.audit_trail IS 'Audit records of the wallet''s tables and of the tables the caller may read.';
-- ---- privileges ----
-- the install revokes every internal function from PUBLIC
REVOKE ALL ON FUNCTION wallet.index_history() FROM PUBLIC;
REVOKE ALL ON FUNCTION wallet.history_merged_through() FROM PUBLIC;

-- roles that had the rights of wallet.grant_app / grant_reader keep them:
-- the new view and horizon function for every role that reads
-- wallet.accounts, index_history for every role that may seal
DO $$
DECLARE
    r regrole;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee::regrole
               FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.oid = 'wallet.accounts'::regclass AND a.privilege_type = 'SELECT'
                AND a.grantee <> 0 AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT SELECT ON wallet.account_entries TO %s', r);
        EXECUTE format('GRANT EXECUTE ON FUNCTION wallet.history_merged_through() TO %s', r);
    END LOOP;
    FOR r IN SELECT DISTINCT a.grantee::regrole
               FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.oid = 'wallet.seal()'::regprocedure AND a.privilege_type = 'EXECUTE'
                AND a.grantee <> 0 AND a.grantee <> p.proowner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION wallet.index_history() TO %s', r);
    END LOOP;
END
$$;
