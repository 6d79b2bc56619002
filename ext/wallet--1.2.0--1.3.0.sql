-- wallet 1.2.0 -> 1.3.0
--
-- Security and exactness fixes found by a black-box review of 1.2.0:
--   * wallet.audit() is no longer SECURITY DEFINER.  As one, it turned the
--     audited row into jsonb with the owner's rights, and a cast to json
--     that any role can define for its own type ran as the owner (a
--     superuser): any role that could create a table could take the
--     owner's rights.  The C function now writes the log as the log's
--     owner for that INSERT only (src/audit.c).
--   * wallet.audit_trail hides the records of a table under row-level
--     security for the caller (it showed rows the policy hides).
--   * wallet.audit_hash gives every value its own text: a time before year
--     1 or an address with a short netmask could be edited undetected.
--     Records as the API writes them hash as before: existing seals hold.
--   * wallet.audit_table refuses an OID that names no table (42P01) and
--     the extension's own tables (22023: auditing wallet.audit_log
--     recursed without end).
--   * sum(wallet.amount) keeps a 128-bit total and checks it once: a sum
--     that fits no longer fails by row order.
--   * wallet.set_hot(id, false) waits for credits in flight before folding.
--   * wallet.open_account limits kind to 64 bytes, like every other kind.
--   * wallet.live_setup audits the first configuration.
--   * wallet.verify() checks that a captured hold's transaction moved what
--     the hold says was captured, from its source to its destination.
--   * TRUNCATE of wallet.hot_pending (posted credits) and of
--     wallet.live_config (changed only by the audited live_setup) fails.
--   * Lock order in the live flows: the first recharge in a new currency
--     takes wallet.live_config's table lock before its row (it deadlocked
--     with live_setup); a gift retried while the first is in flight waits
--     for it on a lock of the extension's own, wallet.lock_key (it could
--     compute diamonds at a new share and get WL006);
--     set_hot(id, false) refuses the live flows' hot system accounts.
-- The rest of 1.3.0 is in the library (holds, batches, post): see README.

\echo Use "ALTER EXTENSION wallet UPDATE TO '1.3.0'" to load this file. \quit

-- ---- sum(wallet.amount): 128-bit total, checked once ----
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
CREATE OR REPLACE AGGREGATE wallet.sum(wallet.amount) (
    SFUNC = wallet.amount_sum_add, STYPE = internal, SSPACE = 32,
    FINALFUNC = wallet.amount_sum_final, COMBINEFUNC = wallet.amount_sum_combine,
    SERIALFUNC = wallet.amount_sum_serialize, DESERIALFUNC = wallet.amount_sum_deserialize,
    PARALLEL = SAFE);
CREATE OR REPLACE AGGREGATE pg_catalog.sum(wallet.amount) (
    SFUNC = wallet.amount_sum_add, STYPE = internal, SSPACE = 32,
    FINALFUNC = wallet.amount_sum_final, COMBINEFUNC = wallet.amount_sum_combine,
    SERIALFUNC = wallet.amount_sum_serialize, DESERIALFUNC = wallet.amount_sum_deserialize,
    PARALLEL = SAFE);
DROP FUNCTION wallet.amount_sum_accum(wallet.amount, wallet.amount);

-- ---- accounts ----
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
    PERFORM wallet.audit_row('wallet.account', 'INSERT', NULL, to_jsonb(a))
       FROM wallet.account a WHERE a.id = new_id;
    RETURN new_id;
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

-- ---- live flows ----
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
    PERFORM wallet.audit_row('wallet.live_config', 'INSERT', NULL, to_jsonb(c));
    RETURN c;
END
$$;

-- ---- live flows: lock order ----
CREATE OR REPLACE FUNCTION wallet.live_cash_accounts(currency text, OUT cash bigint, OUT sales bigint)
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

CREATE FUNCTION wallet.lock_key(key text) RETURNS void
    AS 'MODULE_PATHNAME', 'wallet_lock_key' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION wallet.lock_key(text) FROM PUBLIC;

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

-- ---- no TRUNCATE of pending hot credits or of the live configuration ----
CREATE TRIGGER hot_pending_no_truncate BEFORE TRUNCATE ON wallet.hot_pending
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER live_config_no_truncate BEFORE TRUNCATE ON wallet.live_config
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();

-- ---- verify: a captured hold against its capture ----
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

-- ---- audit ----
ALTER FUNCTION wallet.audit() SECURITY INVOKER;

CREATE OR REPLACE FUNCTION wallet.audit_table(target regclass) RETURNS void
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

CREATE OR REPLACE FUNCTION wallet.audit_hash(a wallet.audit_log) RETURNS bytea
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
                  AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
                  AND NOT pg_catalog.row_security_active(c.oid));
