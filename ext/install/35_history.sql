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
