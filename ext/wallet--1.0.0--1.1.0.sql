-- wallet 1.0.0 -> 1.1.0
--
-- The journal per account moves from an index on wallet.entry, updated by
-- every posting, to wallet.account_history, filed behind the postings by
-- wallet.index_history() (see src/history.c and ext/install/35_history.sql).
--
-- After the update nothing is filed yet: wallet.account_entries, statements
-- and balance_at read the whole journal as its tail until the first
-- housekeeping pass (the background worker, or SELECT wallet.index_history()
-- / wallet.housekeeping()) has filed it, in chunks of a million entries.
-- Roles given rights with wallet.grant_app() or wallet.grant_reader() before
-- the update keep them and get the new view and functions below.
\echo Use "ALTER EXTENSION wallet UPDATE TO '1.1.0'" to load this file. \quit

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

-- ---- readers of the journal per account ----
CREATE OR REPLACE FUNCTION wallet.balance_at(account bigint, at timestamptz) RETURNS wallet.amount
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.account_row(account);
BEGIN
    IF at IS NULL THEN
        RAISE EXCEPTION 'at must not be null' USING ERRCODE = '22004';
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
    -- 1. every transaction balances to zero in each currency
    SELECT e.txn_id, a.currency, sum(e.amount) AS total INTO bad
      FROM wallet.entry e JOIN wallet.account a ON a.id = e.account_id
     GROUP BY e.txn_id, a.currency HAVING sum(e.amount) <> 0
     ORDER BY e.txn_id LIMIT 1;
    check_name := 'transactions_balance'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN (SELECT format('%s transactions balance in every currency', count(*)) FROM wallet.txn)
                   ELSE format('transaction %s does not balance in %s: off by %s',
                               bad.txn_id, bad.currency, wallet.amount(bad.total::bigint, bad.currency)) END;
    RETURN NEXT;

    -- 2. references: every entry has its transaction and account, every
    --    transaction has entries, every reversal points at a transaction
    bad := NULL;
    SELECT 'entry of transaction ' || e.txn_id || ' leg ' || e.leg ||
           CASE WHEN t.id IS NULL THEN ' has no transaction' ELSE ' names unknown account ' || e.account_id END AS what
      INTO bad
      FROM wallet.entry e
      LEFT JOIN wallet.txn t ON t.id = e.txn_id
      LEFT JOIN wallet.account a ON a.id = e.account_id
     WHERE t.id IS NULL OR a.id IS NULL
     LIMIT 1;
    IF bad IS NULL THEN
        SELECT 'transaction ' || e.txn_id || ' has a zero leg' AS what INTO bad
          FROM wallet.entry e WHERE e.amount = 0 ORDER BY e.txn_id LIMIT 1;
    END IF;
    IF bad IS NULL THEN
        SELECT 'transaction ' || t.id || ' has no entries' AS what INTO bad
          FROM wallet.txn t WHERE NOT EXISTS (SELECT 1 FROM wallet.entry e WHERE e.txn_id = t.id)
         ORDER BY t.id LIMIT 1;
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
    bad := NULL;
    SELECT a.id, a.currency, a.balance + coalesce(p.total, 0) AS stored, coalesce(s.total, 0) AS summed INTO bad
      FROM wallet.account a
      LEFT JOIN (SELECT account_id, sum(amount)::bigint AS total FROM wallet.entry GROUP BY account_id) s
             ON s.account_id = a.id
      LEFT JOIN (SELECT account_id, sum(amount)::bigint AS total FROM wallet.hot_pending GROUP BY account_id) p
             ON p.account_id = a.id
     WHERE a.balance + coalesce(p.total, 0) <> coalesce(s.total, 0)
     ORDER BY a.id LIMIT 1;
    check_name := 'balances_match_entries'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN (SELECT format('%s accounts match their entries', count(*)) FROM wallet.account)
                   ELSE format('account %s stores %s but its entries sum to %s', bad.id,
                               wallet.amount(bad.stored, bad.currency), wallet.amount(bad.summed, bad.currency)) END;
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
    IF bad IS NULL THEN
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
    SELECT a.id, a.currency, a.balance + coalesce(p.total, 0) AS posted, a.held INTO bad
      FROM wallet.account a
      LEFT JOIN (SELECT account_id, sum(amount)::bigint AS total FROM wallet.hot_pending GROUP BY account_id) p
             ON p.account_id = a.id
     WHERE NOT a.allow_negative AND NOT a.forced_negative
       AND (a.balance + coalesce(p.total, 0) < 0 OR a.balance + coalesce(p.total, 0) - a.held < 0)
     ORDER BY a.id LIMIT 1;
    SELECT count(*) INTO n FROM wallet.account a WHERE a.forced_negative;
    check_name := 'no_forbidden_negative'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN format('no overdraft%s', CASE WHEN n > 0 THEN format(' (%s accounts negative through forced reversals)', n) ELSE '' END)
                   ELSE format('account %s may not go negative but has posted %s with %s held', bad.id,
                               wallet.amount(bad.posted, bad.currency), wallet.amount(bad.held, bad.currency)) END;
    RETURN NEXT;

    -- 4b. every account has a known status, a registered currency and a
    --     non-negative held amount
    bad := NULL;
    SELECT a.id, format('account %s has status %s, currency %s, held %s', a.id, quote_literal(a.status),
                        quote_literal(a.currency), a.held) AS what INTO bad
      FROM wallet.account a
     WHERE a.status NOT IN ('active', 'frozen', 'closed') OR a.held < 0
        OR NOT (wallet.is_iso_currency(a.currency)
                OR EXISTS (SELECT 1 FROM wallet.custom_currencies c WHERE c.code = a.currency))
     ORDER BY a.id LIMIT 1;
    check_name := 'accounts_well_formed'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN 'every account has a valid status, currency and held amount' ELSE bad.what END;
    RETURN NEXT;

    -- 5. holds: each account's held amount is the sum of its pending holds;
    --    ended holds are consistent with their capture
    bad := NULL;
    SELECT a.id, a.currency, a.held, coalesce(h.total, 0) AS pending INTO bad
      FROM wallet.account a
      LEFT JOIN (SELECT from_account, sum(amount)::bigint AS total FROM wallet.hold
                  WHERE status = 'pending' GROUP BY from_account) h ON h.from_account = a.id
     WHERE a.held <> coalesce(h.total, 0)
     ORDER BY a.id LIMIT 1;
    IF bad IS NULL THEN
        SELECT h.id, 'hold ' || h.id || ' is ' || h.status || ' but its capture is inconsistent' AS what INTO bad
          FROM wallet.hold h
          LEFT JOIN wallet.txn t ON t.id = h.capture_txn
         WHERE (h.status = 'captured' AND (t.id IS NULL OR h.captured IS NULL OR h.captured <= 0 OR h.captured > h.amount))
            OR (h.status <> 'captured' AND h.capture_txn IS NOT NULL)
            OR (h.status <> 'pending' AND h.ended_at IS NULL)
         LIMIT 1;
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

-- ---- privileges ----
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
