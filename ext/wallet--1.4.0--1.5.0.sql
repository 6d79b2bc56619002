-- wallet 1.4.0 -> 1.5.0
--
-- Fixes found by a bad-input sweep of every function of 1.4.0 and a
-- pgbench mix of the whole API:
--   * The live flows refuse the platform's accounts (the system accounts
--     and users' debt accounts) as the user of a recharge, the viewer or
--     creator of a gift and the creator of a withdrawal, and do not pay out
--     a withdrawal hold placed from one with wallet.hold() (22023): a
--     recharge of coin_issuance booked the payment and credited nobody, a
--     gift from it or from a debt account minted coins.
--   * wallet.close_account() refuses those accounts (22023): a closed
--     payout_clearing refused every withdrawal for good, a closed debt
--     account every later chargeback of its user.
--     Freezing one stays possible: it pauses the flows that post to it.
--   * wallet.seal_range() refuses a horizon past the last id drawn (22023):
--     sealing ids not drawn yet made every later posting read as inserted
--     after sealing.
--   * wallet.grant_app() / grant_reader() given a number that names no
--     role say so (42704) instead of a syntax error in generated SQL.
--   * wallet.housekeeping() folds after it expires, first the hot accounts
--     no posting holds, then the others with a short wait each (100 ms in
--     all, giving up first): folding in a second ascending
--     pass that waited deadlocked with postings.  "hot_accounts_busy" in
--     its result counts the accounts left for the next call.
--   * wallet.refund_recharge() takes the recharge's claw-back lock before
--     the user's row, as wallet.reverse() (library 1.5.0) takes it before
--     claiming the reversal link: the two deadlocked on the same recharge.
-- The library of 1.5.0 adds, for every version: 39P01 for a trigger
-- function called directly, 22023 for multidimensional legs or ratios and
-- for transfer_batch arrays with different subscripts, WL003 from
-- fold_hot(id) for an unknown account, WL009 for a post_system() reversal
-- of no transaction, 22023 from index_history_range() past the last id,
-- the totals in the DETAIL of 64-bit overflows, and wallet.reverse() takes
-- the claw-back lock of the transaction it reverses first.
--
-- Generated with tools/upgrade_diff.py --script ext/wallet--1.4.0.sql
-- wallet--1.5.0.sql, after the schema check of ext/install/00_schema.sql;
-- test/harness/upgrade.sh proves it (same catalog as a fresh install).
\echo Use "ALTER EXTENSION wallet UPDATE TO '1.5.0'" to load this file. \quit

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

-- Closes an account for good: only at zero posted balance with nothing
-- held and no pending hold towards it (WL012 otherwise).  Closing a closed
-- account is a no-op.  The live flows' accounts (wallet.live_system_role)
-- never close (22023): a closed payout_clearing would refuse every
-- withdrawal for good, a closed debt account every later chargeback.
CREATE OR REPLACE FUNCTION wallet.close_account(id bigint) RETURNS void
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

-- The part an account of the platform plays in the live flows
-- ('coin_issuance', 'coin_revenue', 'diamond_issuance', 'payout_clearing',
-- 'cash:USD', 'sales:USD', ..., or 'debt' for a user's debt account, which
-- refund_recharge opens with kind 'debt'), or NULL for any other account
-- (and before wallet.live_setup).  Internal.
CREATE OR REPLACE FUNCTION wallet.live_system_role(id bigint) RETURNS text
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
CREATE OR REPLACE FUNCTION wallet.live_refuse_system(id bigint, as_what text) RETURNS void
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

-- Pays a withdrawal out: captures the whole hold to payout_clearing (kind
-- 'withdrawal').  Returns the transaction id; calling it again for a
-- completed withdrawal returns the same id (retry-safe).
-- Errors: 22004 null; WL014 unknown hold; 22023 not a withdrawal hold, or
-- one from an account of the platform's; WL008 the withdrawal was
-- cancelled or expired; 55000 not set up.
CREATE OR REPLACE FUNCTION wallet.complete_withdrawal(hold_id bigint) RETURNS bigint
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
CREATE OR REPLACE FUNCTION wallet.refund_recharge(tx_id bigint, reason text) RETURNS bigint
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

-- Seals every journal transaction and audit record up to the given
-- horizons that is not sealed yet, in seals of at most 10,000 of each; at
-- most max_seals seals (NULL: as many as needed).  The caller has waited
-- for every writer that could still commit an id at or below the horizons
-- (seal() does; the background worker does it once, holding no snapshot,
-- then calls this in short transactions so that it never holds back the
-- cleanup of other tables' dead rows for long).  Concurrent sealers queue
-- on the seal table.  Returns how many records it sealed.  Errors: 22004
-- null horizon; 22023 a horizon past the last id its sequence has drawn.
CREATE OR REPLACE FUNCTION wallet.seal_range(j_to bigint, a_to bigint, max_seals int DEFAULT NULL) RETURNS bigint
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
CREATE OR REPLACE FUNCTION wallet.housekeeping() RETURNS jsonb
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

-- Grants USAGE on the schema, EXECUTE on `functions` and SELECT on the read
-- views to `role` (internal; behind grant_app and grant_reader).
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

