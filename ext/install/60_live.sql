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
--   * wallet.reverse() of a refund (library, src/ledger.c) gives the
--     refund's coins back as a recharge would: they repay the debt owed at
--     that moment first, the rest goes to the user.  So a debt account
--     never holds coins of its own, and reversals commute.
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

-- The live flows' own accounts and the part each plays, from
-- wallet.live_config: 'coin_issuance', 'coin_revenue', 'diamond_issuance',
-- 'payout_clearing', and 'cash:USD', 'sales:USD', ... for every store
-- currency seen.  No rows before wallet.live_setup.  The one list that
-- live_system_role(), live_report() and set_hot() read.  Internal.
CREATE FUNCTION wallet.live_system_accounts() RETURNS TABLE (id bigint, role text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.id, r.role
      FROM wallet.live_config lc,
           LATERAL (VALUES (lc.coin_issuance, 'coin_issuance'), (lc.coin_revenue, 'coin_revenue'),
                           (lc.diamond_issuance, 'diamond_issuance'), (lc.payout_clearing, 'payout_clearing')
                    UNION ALL
                    SELECT a.value::bigint, a.key || ':' || e.key
                      FROM jsonb_each(lc.cash_accounts) e, jsonb_each_text(e.value) a) AS r(id, role)
     WHERE lc.singleton
$$;
REVOKE ALL ON FUNCTION wallet.live_system_accounts() FROM PUBLIC;

-- The part an account of the platform plays in the live flows (a role of
-- live_system_accounts(), or 'debt' for a user's debt account, which
-- refund_recharge opens with kind 'debt'), or NULL for any other account
-- (and before wallet.live_setup).  Internal.
CREATE FUNCTION wallet.live_system_role(id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
             (SELECT s.role FROM wallet.live_system_accounts() s WHERE s.id = live_system_role.id LIMIT 1),
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
    IF role = 'debt' THEN
        RAISE EXCEPTION 'account % is a debt account, not a %', id, as_what
            USING ERRCODE = '22023',
                  DETAIL = format('Account %s records a user''s debt (kind debt); only postings of the live flows and settlements move it.', id),
                  HINT = format('Pass the %s''s own account.', as_what);
    ELSIF role IS NOT NULL THEN
        RAISE EXCEPTION 'account % is the platform''s % account, not a %', id, role, as_what
            USING ERRCODE = '22023',
                  DETAIL = format('Account %s is the %s account of the live flows (wallet.live_config).', id, role),
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
        RAISE EXCEPTION 'channel must be 1 to 64 bytes without '':'', got "%"', left(channel, 64)
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

    -- and the debt account's row: a posting to it (a repayment through the
    -- generic API) takes that row, not the user's, so the debt read below
    -- is the debt (1.6.0)
    PERFORM 1 FROM wallet.account d WHERE d.id = u.debt_account FOR NO KEY UPDATE;
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
    -- the platform's accounts are refused with 22023 (live_refuse_system);
    -- the full test reads the cash accounts' map, so it runs only when a
    -- cheap one (two index probes) finds a system id, a debt account, or a
    -- viewer not in coins or a creator not in diamonds (every cash account
    -- is in a store currency; 1.6.0 answered those with WL002)
    IF viewer_account IN (c.coin_issuance, c.coin_revenue, c.diamond_issuance, c.payout_clearing)
       OR creator_account IN (c.coin_issuance, c.coin_revenue, c.diamond_issuance, c.payout_clearing)
       OR EXISTS (SELECT 1 FROM wallet.account d
                   WHERE (d.id = viewer_account AND (d.kind = 'debt' OR d.currency <> c.coin_currency))
                      OR (d.id = creator_account AND (d.kind = 'debt' OR d.currency <> c.diamond_currency))) THEN
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
    -- any of the platform's accounts, a debt account or a cash account
    -- too, before the currency check would call it a mismatch (1.6.0)
    PERFORM wallet.live_refuse_system(creator_account, 'creator');
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

    -- and the debt account's row: a posting to it (a repayment through the
    -- generic API) takes that row, not the user's, so the debt read below
    -- is the debt (1.6.0)
    PERFORM 1 FROM wallet.account d WHERE d.id = u.debt_account FOR NO KEY UPDATE;
    debt := wallet.live_debt(u);
    free := greatest(wallet.units(wallet.balance(user_id)) - u.held, 0);
    x := least(free, r + debt);
    debt_id := u.debt_account;
    IF x < r AND debt_id IS NULL THEN
        -- the kind open_account reserves (1.6.0): opened here only, linked below
        INSERT INTO wallet.account (owner, currency, kind, allow_negative, metadata)
            VALUES (u.owner, u.currency, 'debt', true, jsonb_build_object('debt_of', user_id))
            RETURNING id INTO debt_id;
        PERFORM wallet.audit_row('wallet.account', 'INSERT', NULL, wallet.audit_jsonb(a))
           FROM wallet.account a WHERE a.id = debt_id;
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

-- A report total in minor units as text: the amount's text when it fits
-- in 64 bits, else the same form computed in numeric (a sum of balances
-- may pass int64 even when every balance fits), so live_report() shows
-- every figure instead of failing.  Internal.
CREATE FUNCTION wallet.live_total_text(total numeric, currency text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN total BETWEEN -9223372036854775808 AND 9223372036854775807
                THEN wallet.amount(total::bigint, currency)::text
                -- integer division and remainder by 10^m: exact for any m
                -- (a numeric quotient keeps only about 16 fraction digits)
                ELSE (SELECT CASE WHEN total < 0 THEN '-' ELSE '' END || div(abs(total), x.p)::text
                             || CASE WHEN x.m > 0 THEN '.' || lpad(mod(abs(total), x.p)::text, x.m, '0') ELSE '' END
                             || ' ' || currency
                        FROM (SELECT m, (10::numeric ^ m)::numeric(1000, 0) AS p
                                FROM (SELECT wallet.minor_units(wallet.amount(0::bigint, currency)) AS m) y) x) END
$$;
REVOKE ALL ON FUNCTION wallet.live_total_text(numeric, text) FROM PUBLIC;

-- The total as bigint for live_report()'s units column, NULL when it does
-- not fit (the value column still shows it).  Internal.
CREATE FUNCTION wallet.live_total_units(total numeric) RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN total BETWEEN -9223372036854775808 AND 9223372036854775807 THEN total::bigint END
$$;
REVOKE ALL ON FUNCTION wallet.live_total_units(numeric) FROM PUBLIC;

-- A readable summary of the live flows, one row per figure, for psql and
-- for scripts: section, item, value (text: an amount like '12 COIN', a
-- count, 'ok' or 'FAILED: ...') and units (the figure as a number: minor
-- units or a count; NULL for the verify rows).  Sections and items:
--   accounts  'balance <kind> <CUR>': balance of all accounts of that kind
--             and currency, with the number of accounts in value; the live
--             flows' own accounts (wallet.live_config) one by one, named by
--             their role ('balance platform:cash:USD')
--   coins     'issued' (−coin_issuance), 'circulation' (the positive
--             balances of every coin account but the live flows' own and
--             the debt accounts), 'negative balances' (the negative ones of
--             those accounts: an account allowed to go negative that
--             issued coins, or one a forced reversal took below zero;
--             normally 0), 'held' (in pending holds), 'revenue'
--             (coin_revenue), 'debt' (outstanding, >= 0), 'users in debt',
--             and 'conserved' (issued = circulation + negative balances +
--             revenue − debt: 'ok')
--   diamonds  'issued' (−diamond_issuance), 'creators' (the positive
--             balances of every diamond account but the live flows' own),
--             'negative balances' (the negative ones), 'withdrawn'
--             (payout_clearing), 'pending withdrawals' (pending withdrawal
--             holds), and 'conserved' (issued = creators + negative
--             balances + withdrawn: 'ok')
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
    -- totals in numeric: a sum of 64-bit balances need not fit in 64 bits
    issued numeric;
    circulation numeric;
    negative numeric;
    held numeric;
    revenue numeric;
    debt numeric;
    debtors bigint;
    d_issued numeric;
    d_creators numeric;
    d_negative numeric;
    d_withdrawn numeric;
    d_pending numeric;
BEGIN
    -- The live flows' own accounts by their role in wallet.live_config
    -- (not by owner or kind: any role may open an account of kind 'system'
    -- named 'platform:…', and it must not merge into the platform's line);
    -- every other account by kind and currency (1.6.0).
    RETURN QUERY
    WITH roles AS (SELECT s.id, s.role FROM wallet.live_system_accounts() s)
    SELECT 'accounts'::text,
           CASE WHEN a.role IS NOT NULL THEN format('balance platform:%s', a.role)
                ELSE format('balance %s %s', a.kind, a.currency) END,
           CASE WHEN a.role IS NOT NULL THEN wallet.live_total_text(sum(a.bal), a.currency)
                ELSE format('%s (%s accounts)', wallet.live_total_text(sum(a.bal), a.currency), count(*)) END,
           wallet.live_total_units(sum(a.bal))
      FROM (SELECT x.kind, x.currency, r.role,
                   x.balance + coalesce(p.pending, 0) AS bal
              FROM wallet.account x
              LEFT JOIN roles r ON r.id = x.id
              LEFT JOIN (SELECT h.account_id, sum(h.amount) AS pending FROM wallet.hot_pending h
                          GROUP BY h.account_id) p ON p.account_id = x.id) a
     GROUP BY a.role, a.kind, a.currency
     ORDER BY a.role IS NOT NULL, a.currency, a.kind, a.role;

    -- Coins: circulation is what accounts outside the live flows hold; an
    -- account outside them below zero (one allowed to go negative, or
    -- forced there by a reversal) is shown on its own line, 'negative
    -- balances', instead of netting coins it issued out of circulation
    -- (1.6.0).  Users' debt accounts are the 'debt' line.
    SELECT coalesce(sum(b.bal) FILTER (WHERE b.id = c.coin_issuance), 0) * -1,
           coalesce(sum(b.bal) FILTER (WHERE b.id <> ALL (sys) AND b.kind <> 'debt' AND b.bal > 0), 0),
           coalesce(sum(b.bal) FILTER (WHERE b.id <> ALL (sys) AND b.kind <> 'debt' AND b.bal < 0), 0),
           coalesce(sum(b.held) FILTER (WHERE b.id <> ALL (sys) AND b.kind <> 'debt'), 0),
           coalesce(sum(b.bal) FILTER (WHERE b.id = c.coin_revenue), 0),
           coalesce(sum(b.bal) FILTER (WHERE b.kind = 'debt'), 0) * -1,
           count(*) FILTER (WHERE b.kind = 'debt' AND b.bal < 0)
      INTO issued, circulation, negative, held, revenue, debt, debtors
      FROM (SELECT x.id, x.kind, x.held,
                   x.balance + coalesce((SELECT sum(h.amount) FROM wallet.hot_pending h
                                          WHERE h.account_id = x.id), 0) AS bal
              FROM wallet.account x WHERE x.currency = c.coin_currency) b;
    section := 'coins';
    item := 'issued'; units := wallet.live_total_units(issued); value := wallet.live_total_text(issued, c.coin_currency); RETURN NEXT;
    item := 'circulation'; units := wallet.live_total_units(circulation); value := wallet.live_total_text(circulation, c.coin_currency); RETURN NEXT;
    item := 'negative balances'; units := wallet.live_total_units(negative); value := wallet.live_total_text(negative, c.coin_currency); RETURN NEXT;
    item := 'held'; units := wallet.live_total_units(held); value := wallet.live_total_text(held, c.coin_currency); RETURN NEXT;
    item := 'revenue'; units := wallet.live_total_units(revenue); value := wallet.live_total_text(revenue, c.coin_currency); RETURN NEXT;
    item := 'debt'; units := wallet.live_total_units(debt); value := wallet.live_total_text(debt, c.coin_currency); RETURN NEXT;
    item := 'users in debt'; units := debtors; value := debtors::text; RETURN NEXT;
    item := 'conserved'; units := wallet.live_total_units(issued - circulation - negative - revenue + debt);
    value := CASE WHEN issued - circulation - negative - revenue + debt = 0 THEN 'ok'
                  ELSE format('FAILED: issued %s <> circulation + negative balances + revenue - debt by %s',
                              wallet.live_total_text(issued, c.coin_currency),
                              wallet.live_total_text(issued - circulation - negative - revenue + debt, c.coin_currency)) END;
    RETURN NEXT;

    SELECT coalesce(sum(b.bal) FILTER (WHERE b.id = c.diamond_issuance), 0) * -1,
           coalesce(sum(b.bal) FILTER (WHERE b.id <> ALL (sys) AND b.bal > 0), 0),
           coalesce(sum(b.bal) FILTER (WHERE b.id <> ALL (sys) AND b.bal < 0), 0),
           coalesce(sum(b.bal) FILTER (WHERE b.id = c.payout_clearing), 0)
      INTO d_issued, d_creators, d_negative, d_withdrawn
      FROM (SELECT x.id, x.balance + coalesce((SELECT sum(h.amount) FROM wallet.hot_pending h
                                                WHERE h.account_id = x.id), 0) AS bal
              FROM wallet.account x WHERE x.currency = c.diamond_currency) b;
    SELECT coalesce(sum(h.amount), 0) INTO d_pending
      FROM wallet.hold h
     WHERE h.status = 'pending' AND h.kind = 'withdrawal' AND h.to_account = c.payout_clearing;
    section := 'diamonds';
    item := 'issued'; units := wallet.live_total_units(d_issued); value := wallet.live_total_text(d_issued, c.diamond_currency); RETURN NEXT;
    item := 'creators'; units := wallet.live_total_units(d_creators); value := wallet.live_total_text(d_creators, c.diamond_currency); RETURN NEXT;
    item := 'negative balances'; units := wallet.live_total_units(d_negative); value := wallet.live_total_text(d_negative, c.diamond_currency); RETURN NEXT;
    item := 'withdrawn'; units := wallet.live_total_units(d_withdrawn); value := wallet.live_total_text(d_withdrawn, c.diamond_currency); RETURN NEXT;
    item := 'pending withdrawals'; units := wallet.live_total_units(d_pending); value := wallet.live_total_text(d_pending, c.diamond_currency); RETURN NEXT;
    item := 'conserved'; units := wallet.live_total_units(d_issued - d_creators - d_negative - d_withdrawn);
    value := CASE WHEN d_issued - d_creators - d_negative - d_withdrawn = 0 THEN 'ok'
                  ELSE format('FAILED: issued %s <> creators + negative balances + withdrawn by %s',
                              wallet.live_total_text(d_issued, c.diamond_currency),
                              wallet.live_total_text(d_issued - d_creators - d_negative - d_withdrawn, c.diamond_currency)) END;
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
