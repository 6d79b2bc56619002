-- wallet 1.3.0 -> 1.4.0
--
-- Fixes found by a black-box review of 1.3.0 (auditors' and drivers' view):
--   * wallet.audit_verify() has a new row, ledger_rows: the rows of the
--     ledger's own tables that are not sealed journal (accounts' audited
--     columns, holds, custom currencies, the live configuration) must be
--     what their latest audit record says.  A superuser's edit of a hold's
--     destination, an account's status or a currency's minor units with
--     triggers disabled went unnoticed by both checks.
--   * wallet.audit_verify(known_head) refuses a head that is not 64 hex
--     digits (22023) instead of reporting a rewritten history, and no
--     longer warns under standard_conforming_strings = off.
--   * wallet.verify() believes an account's forced_negative flag only when
--     a forced posting of the journal debited the account (the flag is
--     derived state, not audited: the owner could set it to hide an
--     overdraft).
--   * Schema wallet must belong to a superuser (42501 otherwise): its owner
--     could replace what the SECURITY DEFINER functions and the background
--     worker call by name with superuser rights.
--   * wallet.housekeeping() seals and files before it expires and folds:
--     its expiries' row locks, held while seal() waited for writers, could
--     deadlock with a posting.
--   * A forced posting that leaves the balance below the held amount
--     flags the account (the library; 1.3.0's flagged only a balance below
--     zero, and verify() counts held funds): accounts left so are flagged
--     below, if a forced posting debited them.
--   * Audit records are rendered with fixed output settings whatever the
--     session's (the trigger in the library; wallet.audit_jsonb() for the
--     records add_currency, open_account and live_setup write).
\echo Use "ALTER EXTENSION wallet UPDATE TO '1.4.0'" to load this file. \quit

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

-- A row as the audit trigger records it: to_jsonb with the trigger's fixed
-- output settings, for the records the API writes itself (internal, 1.4.0).
CREATE FUNCTION wallet.audit_jsonb(anyelement) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'wallet_audit_jsonb'
    LANGUAGE C STABLE STRICT;
REVOKE ALL ON FUNCTION wallet.audit_jsonb(anyelement) FROM PUBLIC;

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
    PERFORM wallet.audit_row('wallet.custom_currencies', 'INSERT', NULL, wallet.audit_jsonb(cc))
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
    -- the first configuration is audited like every later change (by the
    -- API, not by an INSERT trigger: a restore replays the row)
    PERFORM wallet.audit_row('wallet.live_config', 'INSERT', NULL, wallet.audit_jsonb(c));
    RETURN c;
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
    sealed := wallet.seal();
    indexed := wallet.index_history();
    expired := wallet.expire_holds();
    folded := wallet.fold_hot();
    RETURN jsonb_build_object('expired_holds', expired, 'folded_credits', folded, 'sealed_records', sealed,
                              'indexed_entries', indexed);
END
$$;

-- Accounts that a forced posting left below their held amount under the
-- 1.3.0 library (which flagged only a balance below zero) and that are
-- still there: flag them, as the 1.4.0 library would have.  (No audit
-- record: forced_negative is derived from the journal, like the balance.)
UPDATE wallet.account a SET forced_negative = true
 WHERE NOT a.allow_negative AND NOT a.forced_negative
   AND a.balance + coalesce((SELECT sum(p.amount) FROM wallet.hot_pending p WHERE p.account_id = a.id), 0) - a.held < 0
   AND EXISTS (SELECT 1 FROM wallet.account_entries ae JOIN wallet.txn t ON t.id = ae.txn_id
                WHERE ae.account_id = a.id AND ae.units < 0 AND t.forced);
