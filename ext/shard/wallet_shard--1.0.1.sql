-- wallet_shard 1.0.1: one node of a sharded wallet (see doc/sharding.md).
--
-- A sharded wallet is N databases, each with the wallet extension and this
-- one, behind a router database (extension wallet_router, PL/Proxy) that
-- sends every API call to the shard of its account.  This file owns what a
-- shard adds to a plain wallet:
--
--   * its place: wallet_shard.configure(shard, shard_count) makes the ids
--     this database draws (accounts, transactions, holds) start at
--     shard << 48, so every id names its shard (wallet_shard.shard_of);
--   * clearing accounts, one per peer shard, currency and direction;
--   * a transactional outbox: a transfer (or a gift's diamonds) to an
--     account on another shard is posted here, from the sender to the
--     "out" clearing account of that shard, and in the same transaction a
--     row of wallet_shard.outbox records what the other shard owes the
--     receiver;
--   * an inbox on the receiving side: wallet_shard.receive posts each
--     message once (inbox primary key plus a reserved idempotency key,
--     both in the posting's transaction) from the "in" clearing account to
--     the receiver, or records once and for all that it was rejected;
--   * the sender's side of the settlement: wallet_shard.ack marks messages
--     delivered, and returns rejected ones to their sender (a reversal).
--
-- A crash at any point loses nothing and posts nothing twice: the outbox
-- row commits with the debit, the inbox row with the credit, a message is
-- redelivered until it is acknowledged, and redelivery of a message already
-- in the inbox returns the recorded outcome.  wallet_shard.verify checks a
-- shard's side (clearing balances against outbox and inbox); the router's
-- wallet.verify() adds the cross-shard checks.
--
-- Every function is SECURITY DEFINER with a pinned search_path and only
-- schema-qualified names; none is granted to PUBLIC.  The router connects
-- as a role given wallet_shard.grant_router(role).

\echo Use "CREATE EXTENSION wallet_shard" to load this file. \quit

-- ============================================================================
-- Configuration
-- ============================================================================

-- This database's shard number and the number of shards (a power of two,
-- as PL/Proxy requires).  One row; dumped with the extension.
CREATE TABLE wallet_shard.config (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    shard        integer NOT NULL CHECK (shard >= 0),
    shard_count  integer NOT NULL CHECK (shard_count BETWEEN 1 AND 32768
                                         AND shard_count & (shard_count - 1) = 0),
    -- the shards that hold idempotency-key claims: the first claim_shards
    -- (see wallet_shard.claim_key); set on every shard by a router before
    -- the cluster's first claim, never changed, so adding shards does not
    -- move a key's home (shards added later keep NULL: they hold no claims)
    claim_shards integer CHECK (claim_shards BETWEEN 1 AND shard_count AND claim_shards & (claim_shards - 1) = 0),
    configured_at timestamptz NOT NULL DEFAULT now(),
    CHECK (shard < shard_count)
);
SELECT pg_catalog.pg_extension_config_dump('wallet_shard.config', '');

-- The shard an id (account, transaction or hold) belongs to: its bits
-- above the 48th.  Each shard draws up to 2^48 ids of each kind.
CREATE FUNCTION wallet_shard.shard_of(id bigint) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT (id >> 48)::integer $$;

-- The configuration row.  Errors: 55000 when configure() was never run.
CREATE FUNCTION wallet_shard.cfg() RETURNS wallet_shard.config
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet_shard.config;
BEGIN
    SELECT * INTO c FROM wallet_shard.config k WHERE k.singleton;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'this database is not configured as a shard'
            USING ERRCODE = '55000', DETAIL = 'wallet_shard.config has no row.',
                  HINT = 'Run SELECT wallet_shard.configure(shard, shard_count) once, before any account is opened.';
    END IF;
    RETURN c;
END
$$;

-- Makes this database shard `shard` of `shard_count`.  The first call moves
-- the wallet's account, transaction and hold sequences to shard << 48, so
-- ids drawn from then on belong to this shard; it refuses (55000) when the
-- database already holds ids of another shard (shard > 0 with accounts
-- opened before).  Calling it again with the same shard may raise the
-- shard count (to add shards; ids keep their shard); another shard number
-- is refused (55000).  Returns the configuration row.
-- Errors: 22004 null argument; 22023 count not a power of two in
-- [1, 32768] or shard outside [0, count); 55000 as above.
CREATE FUNCTION wallet_shard.configure(shard integer, shard_count integer)
RETURNS wallet_shard.config
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet_shard.config;
    base bigint;
    seq regclass;
    last bigint;
    called boolean;
    stray bigint;
BEGIN
    IF shard IS NULL OR shard_count IS NULL THEN
        RAISE EXCEPTION 'wallet_shard.configure: shard and shard_count must not be null'
            USING ERRCODE = '22004',
                  DETAIL = format('shard %s, shard_count %s.', coalesce(shard::text, 'NULL'), coalesce(shard_count::text, 'NULL'));
    END IF;
    IF shard_count NOT BETWEEN 1 AND 32768 OR shard_count & (shard_count - 1) <> 0 THEN
        RAISE EXCEPTION 'shard_count must be a power of two from 1 to 32768, got %', shard_count
            USING ERRCODE = '22023',
                  DETAIL = 'PL/Proxy maps a hash to a partition with a bit mask, so clusters have 2^k partitions.';
    END IF;
    IF shard < 0 OR shard >= shard_count THEN
        RAISE EXCEPTION 'shard must be in [0, %), got %', shard_count, shard
            USING ERRCODE = '22023', DETAIL = format('Shards are numbered 0 to %s.', shard_count - 1);
    END IF;
    LOCK TABLE wallet_shard.config IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO c FROM wallet_shard.config k WHERE k.singleton;
    IF FOUND THEN
        IF c.shard <> configure.shard THEN
            RAISE EXCEPTION 'this database is shard % already', c.shard
                USING ERRCODE = '55000',
                      DETAIL = format('Its ids belong to shard %s; it cannot become shard %s.', c.shard, configure.shard);
        END IF;
        IF shard_count < c.shard_count THEN
            RAISE EXCEPTION 'the shard count cannot shrink from % to %', c.shard_count, shard_count
                USING ERRCODE = '55000',
                      DETAIL = 'Ids of the shards above the new count would have no shard to route to.';
        END IF;
        UPDATE wallet_shard.config k SET shard_count = configure.shard_count WHERE k.singleton
            RETURNING * INTO c;
        RETURN c;
    END IF;
    base := configure.shard::bigint << 48;
    -- ids drawn before must all be this shard's
    SELECT a.id INTO stray FROM wallet.account a WHERE wallet_shard.shard_of(a.id) <> configure.shard LIMIT 1;
    IF stray IS NULL THEN
        SELECT t.id INTO stray FROM wallet.txn t WHERE wallet_shard.shard_of(t.id) <> configure.shard LIMIT 1;
    END IF;
    IF stray IS NULL THEN
        SELECT h.id INTO stray FROM wallet.hold h WHERE wallet_shard.shard_of(h.id) <> configure.shard LIMIT 1;
    END IF;
    IF stray IS NOT NULL THEN
        RAISE EXCEPTION 'this database already holds ids of shard %', wallet_shard.shard_of(stray)
            USING ERRCODE = '55000',
                  DETAIL = format('Id %s was drawn before the database was configured as shard %s.', stray, configure.shard),
                  HINT = 'Configure a shard right after CREATE EXTENSION, before opening accounts.';
    END IF;
    FOREACH seq IN ARRAY ARRAY['wallet.account_id_seq'::regclass, 'wallet.txn_id_seq'::regclass,
                               'wallet.hold_id_seq'::regclass] LOOP
        EXECUTE format('SELECT last_value, is_called FROM %s', seq) INTO last, called;
        IF base > 0 AND (NOT called OR last < base) THEN
            PERFORM pg_catalog.setval(seq, base, true);   -- the next id is base + 1
        END IF;
    END LOOP;
    INSERT INTO wallet_shard.config (shard, shard_count) VALUES (configure.shard, configure.shard_count)
        RETURNING * INTO c;
    RETURN c;
END
$$;

-- This shard's number (55000 when not configured).
CREATE FUNCTION wallet_shard.current_shard() RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT (wallet_shard.cfg()).shard $$;

-- ============================================================================
-- Clearing accounts
-- ============================================================================

-- One account per peer shard, direction and currency, opened on first use:
-- 'out' (owner "wallet_shard:out:<peer>") is credited by every transfer
-- sent to that shard and debited when one is returned; 'in' (owner
-- "wallet_shard:in:<peer>") is debited by every transfer received from it.
-- Both are kind 'clearing', may go negative and are hot, so sends and
-- receives never wait on their row lock.  Summed over all shards, clearing
-- balances are the money in flight between shards.
CREATE TABLE wallet_shard.clearing (
    peer        integer NOT NULL,
    direction   text NOT NULL CHECK (direction IN ('out', 'in')),
    currency    text NOT NULL,
    account_id  bigint NOT NULL UNIQUE,
    PRIMARY KEY (peer, direction, currency)
);
SELECT pg_catalog.pg_extension_config_dump('wallet_shard.clearing', '');

-- The clearing account of (peer, direction, currency), opened if missing
-- (serialised on the clearing table, so never twice).
CREATE FUNCTION wallet_shard.clearing_account(peer integer, direction text, currency text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    SELECT c.account_id INTO id FROM wallet_shard.clearing c
     WHERE c.peer = clearing_account.peer AND c.direction = clearing_account.direction
       AND c.currency = clearing_account.currency;
    IF FOUND THEN
        RETURN id;
    END IF;
    LOCK TABLE wallet_shard.clearing IN SHARE ROW EXCLUSIVE MODE;
    SELECT c.account_id INTO id FROM wallet_shard.clearing c
     WHERE c.peer = clearing_account.peer AND c.direction = clearing_account.direction
       AND c.currency = clearing_account.currency;
    IF FOUND THEN
        RETURN id;
    END IF;
    id := wallet.open_account(format('wallet_shard:%s:%s', direction, peer), currency, 'clearing', true,
                              jsonb_build_object('peer_shard', peer, 'direction', direction));
    PERFORM wallet.set_hot(id, true);
    INSERT INTO wallet_shard.clearing (peer, direction, currency, account_id)
        VALUES (clearing_account.peer, clearing_account.direction, clearing_account.currency, id);
    RETURN id;
END
$$;

-- ============================================================================
-- Outbox (the sending shard) and inbox (the receiving shard)
-- ============================================================================

CREATE SEQUENCE wallet_shard.outbox_id_seq;
SELECT pg_catalog.pg_extension_config_dump('wallet_shard.outbox_id_seq', '');

-- What this shard owes accounts on other shards.  A row commits with the
-- posting that debited the sender (txn_id); status:
--   pending    not yet acknowledged by the receiving shard;
--   delivered  posted there (remote_txn);
--   returning  rejected there (reason), not yet returned to the sender
--              (the return failed, e.g. the sender's account is closed;
--              retried by every wallet.relay(): acks with retry_returns);
--   bounced    rejected there and returned here (return_txn reverses txn_id).
-- kind 'transfer': amount left the sender for the "out" clearing account;
-- kind 'gift': the viewer's coins stayed on this shard (platform revenue)
-- and amount is the diamonds the creator's shard issues to the creator.
CREATE TABLE wallet_shard.outbox (
    id           bigint PRIMARY KEY DEFAULT nextval('wallet_shard.outbox_id_seq'),
    txn_id       bigint NOT NULL UNIQUE,
    kind         text NOT NULL CHECK (kind IN ('transfer', 'gift')),
    dest_shard   integer NOT NULL,
    from_account bigint NOT NULL,
    to_account   bigint NOT NULL,
    amount       wallet.amount NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'delivered', 'returning', 'bounced')),
    remote_txn   bigint,
    return_txn   bigint,
    reason       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    settled_at   timestamptz
);
ALTER SEQUENCE wallet_shard.outbox_id_seq OWNED BY wallet_shard.outbox.id;
CREATE INDEX outbox_open_idx ON wallet_shard.outbox (dest_shard, id) WHERE status IN ('pending', 'returning');
SELECT pg_catalog.pg_extension_config_dump('wallet_shard.outbox', '');

-- What this shard received from other shards: one row per message, written
-- in the transaction that posted it (status 'received', txn_id) or that
-- decided it cannot be posted (status 'rejected', reason).  The primary key
-- makes every message's outcome unique and final.
CREATE TABLE wallet_shard.inbox (
    origin_shard integer NOT NULL,
    outbox_id    bigint NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('transfer', 'gift')),
    to_account   bigint NOT NULL,
    amount_sent  text NOT NULL,              -- the amount as the sender wrote it
    amount       wallet.amount,              -- as read here; NULL when it could not be (rejected)
    currency     text NOT NULL,              -- the amount's currency code, as sent
    status       text NOT NULL CHECK (status IN ('received', 'rejected')),
    txn_id       bigint,
    reason       text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin_shard, outbox_id),
    CHECK ((status = 'received') = (txn_id IS NOT NULL)),
    CHECK (status = 'rejected' OR amount IS NOT NULL)
);
SELECT pg_catalog.pg_extension_config_dump('wallet_shard.inbox', '');

-- ============================================================================
-- Sending
-- ============================================================================

-- Refuses an account of another shard (WL003: it does not exist here).
CREATE FUNCTION wallet_shard.check_local(account bigint, c wallet_shard.config) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF wallet_shard.shard_of(account) <> c.shard THEN
        RAISE EXCEPTION 'unknown account %', account
            USING ERRCODE = 'WL003',
                  DETAIL = format('Account %s belongs to shard %s; this is shard %s.', account,
                                  wallet_shard.shard_of(account), c.shard);
    END IF;
END
$$;

-- Refuses an account whose shard does not exist (WL003).
CREATE FUNCTION wallet_shard.check_routable(account bigint, c wallet_shard.config) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF account <= 0 OR wallet_shard.shard_of(account) >= c.shard_count THEN
        RAISE EXCEPTION 'unknown account %', account
            USING ERRCODE = 'WL003',
                  DETAIL = format('Id %s names shard %s; the cluster has %s shards.', account,
                                  wallet_shard.shard_of(account), c.shard_count);
    END IF;
END
$$;

-- Whether account (of this shard) can take a credit of `amount`: raises the
-- error the posting would (WL003 unknown, 22023 a clearing account, WL002
-- other currency, WL004 frozen, WL005 closed).  The router asks before it sends, so a transfer
-- to a closed account fails at once instead of being returned later.
CREATE FUNCTION wallet_shard.check_receiver(account bigint, amount wallet.amount) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet_shard.config := wallet_shard.cfg();
    r wallet.account;
BEGIN
    PERFORM wallet_shard.check_local(account, c);
    r := wallet.account_row(account);
    PERFORM wallet_shard.guard(account);
    IF r.currency <> wallet.currency(amount) THEN
        RAISE EXCEPTION 'currency mismatch: account % holds %, the amount is %', account, r.currency, amount
            USING ERRCODE = 'WL002', DETAIL = format('Account %s is in %s.', account, r.currency);
    ELSIF r.status = 'frozen' THEN
        RAISE EXCEPTION 'account % is frozen', account USING ERRCODE = 'WL004',
            DETAIL = format('Account %s takes no postings while frozen.', account);
    ELSIF r.status = 'closed' THEN
        RAISE EXCEPTION 'account % is closed', account USING ERRCODE = 'WL005',
            DETAIL = format('Account %s is closed.', account);
    END IF;
END
$$;

-- Refuses (22023) a clearing account as an endpoint of an API call: only
-- the cross-shard protocol posts to them (a payment into one would vanish
-- from the checks, a debit of one would create money).  Returns true, so
-- that a routed call can put it first in a CASE.  Unknown ids pass (the
-- call itself raises WL003).
CREATE FUNCTION wallet_shard.guard(account bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM wallet_shard.clearing k WHERE k.account_id = guard.account) THEN
        RAISE EXCEPTION 'account % is a clearing account of the shard cluster', account
            USING ERRCODE = '22023',
                  DETAIL = 'Clearing accounts carry money between shards; only wallet_shard''s own postings touch them.';
    END IF;
    RETURN true;
END
$$;

-- Refuses (22023) a system account of this shard's live flows
-- (coin_issuance, coin_revenue, diamond_issuance, payout_clearing) or a
-- user's debt account (kind 'debt') as the viewer or creator (as_what) of
-- a gift, as wallet.gift does on a node (wallet 1.5.0): a gift from
-- coin_issuance or a debt account would mint coins, one to
-- payout_clearing would issue diamonds to nobody's account.  Other
-- accounts, and a shard without live flows, pass.  (1.0.1)
CREATE FUNCTION wallet_shard.refuse_live_system(account bigint, as_what text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    role text;
BEGIN
    SELECT coalesce(CASE account WHEN lc.coin_issuance THEN 'coin_issuance' WHEN lc.coin_revenue THEN 'coin_revenue'
                                 WHEN lc.diamond_issuance THEN 'diamond_issuance' WHEN lc.payout_clearing THEN 'payout_clearing' END,
                    (SELECT 'debt' FROM wallet.account d WHERE d.id = account AND d.kind = 'debt'))
      INTO role
      FROM wallet.live_config lc WHERE lc.singleton;
    IF role IS NOT NULL THEN
        RAISE EXCEPTION 'account % is the platform''s % account, not a %', account, role, as_what
            USING ERRCODE = '22023',
                  DETAIL = format('wallet.live_setup() opened account %s as %s for the live flows.', account, role),
                  HINT = format('Pass the %s''s own account.', as_what);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION wallet_shard.refuse_live_system(bigint, text) FROM PUBLIC;

-- Whether account (of this shard) can receive a gift's diamonds: raises
-- what wallet.gift would for a creator on its own shard (WL003 unknown,
-- WL002 not a diamond account, WL004 frozen, WL005 closed, 22023 a system
-- account of the live flows, 55000 live flows not set up).
CREATE FUNCTION wallet_shard.check_creator(account bigint) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lc wallet.live_config := wallet.live_cfg();
BEGIN
    PERFORM wallet_shard.check_receiver(account, wallet.amount(0::bigint, lc.diamond_currency));
    PERFORM wallet_shard.refuse_live_system(account, 'creator');
END
$$;

-- A transfer from an account of this shard to an account of any shard.
-- Same shard: exactly wallet.transfer.  Other shard: one posting here,
-- from_account -amount, "out" clearing account of the receiver's shard
-- +amount, and the outbox row, in one transaction; the receiver is
-- credited when the message is delivered (wallet_shard.receive), or the
-- money comes back (wallet_shard.ack) if the receiving shard rejects it.
-- Returns this shard's transaction id.
-- Idempotent by idempotency_key like wallet.transfer: the same request
-- returns the first transaction (and queues nothing more); the key with a
-- different request, including another receiver, is WL006.
-- Errors: those of wallet.transfer; WL003 from_account not on this shard
-- or to_account on no shard; 55000 not configured.
CREATE FUNCTION wallet_shard.send(from_account bigint, to_account bigint, amount wallet.amount,
                                  idempotency_key text, kind text DEFAULT 'transfer',
                                  metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet_shard.config := wallet_shard.cfg();
    dest integer;
    clearing bigint;
    tx bigint;
    o wallet_shard.outbox;
BEGIN
    IF from_account IS NULL OR to_account IS NULL OR amount IS NULL OR idempotency_key IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'wallet_shard.send: from_account, to_account, amount, idempotency_key and kind must not be null'
            USING ERRCODE = '22004',
                  DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN from_account IS NULL THEN 'from_account' END,
                                  CASE WHEN to_account IS NULL THEN 'to_account' END, CASE WHEN amount IS NULL THEN 'amount' END,
                                  CASE WHEN idempotency_key IS NULL THEN 'idempotency_key' END, CASE WHEN kind IS NULL THEN 'kind' END));
    END IF;
    PERFORM wallet_shard.check_local(from_account, c);
    PERFORM wallet_shard.check_routable(to_account, c);
    PERFORM wallet_shard.guard(from_account);
    dest := wallet_shard.shard_of(to_account);
    IF dest = c.shard THEN
        PERFORM wallet_shard.guard(to_account);
        RETURN wallet.transfer(from_account, to_account, amount, idempotency_key, kind, metadata);
    END IF;
    IF wallet.units(amount) <= 0 THEN
        RAISE EXCEPTION 'transfer amount must be positive, got %', amount USING ERRCODE = '22023',
            DETAIL = format('A transfer moves a positive amount from one account to another; %s is not positive.', amount);
    END IF;
    clearing := wallet_shard.clearing_account(dest, 'out', wallet.currency(amount));
    tx := wallet.post(idempotency_key,
                      ARRAY[ROW(from_account, -amount)::wallet.leg, ROW(clearing, amount)::wallet.leg],
                      kind, metadata);
    INSERT INTO wallet_shard.outbox (txn_id, kind, dest_shard, from_account, to_account, amount)
        VALUES (tx, 'transfer', dest, from_account, to_account, amount)
        ON CONFLICT (txn_id) DO NOTHING;
    IF NOT FOUND THEN
        -- a retry: the posting was the same (the engine compared kind, legs
        -- and metadata); the receiver must be too
        SELECT * INTO o FROM wallet_shard.outbox ob WHERE ob.txn_id = tx;
        IF o.kind <> 'transfer' OR o.to_account <> to_account THEN
            RAISE EXCEPTION 'idempotency key "%" was already used for a different request', idempotency_key
                USING ERRCODE = 'WL006',
                      DETAIL = format('Transaction %s sent %s to account %s with this key.', tx, o.amount, o.to_account),
                      HINT = 'Use a new key for a new request; resend the same request to get the first result.';
        END IF;
    END IF;
    RETURN tx;
END
$$;

-- A gift from a viewer of this shard to a creator of any shard.  Same
-- shard: exactly wallet.gift.  Other shard: the coin legs of the gift are
-- posted here (viewer -coins, platform coin revenue +coins), with the
-- gift's metadata ("creator", "diamonds", "creator_share" as wallet.gift
-- sets them), and the diamonds d = floor(coins x creator_share) of this
-- shard's share go to the outbox; the creator's shard issues them
-- (diamond_issuance -d, creator +d) when the message is delivered.  A gift
-- worth 0 diamonds queues nothing.  Returns this shard's transaction id.
-- Idempotent like wallet.gift (a retry returns the first gift, even if the
-- share changed since); another request with the key is WL006.
-- Errors: those of wallet.gift; WL003 viewer not on this shard or creator
-- on no shard; 22023 a system account of the live flows as the viewer (or
-- as the creator, on this shard; the creator's shard refuses its own when
-- the router checks the creator, and rejects the message otherwise);
-- 55000 not configured or live flows not set up.
CREATE FUNCTION wallet_shard.send_gift(viewer_account bigint, creator_account bigint, coins wallet.amount,
                                       idempotency_key text, metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet_shard.config := wallet_shard.cfg();
    lc wallet.live_config;
    dest integer;
    n bigint;
    d bigint;
    md jsonb;
    tx bigint;
    found_id bigint;
    found_kind text;
    found_md jsonb;
BEGIN
    IF viewer_account IS NULL OR creator_account IS NULL OR coins IS NULL OR idempotency_key IS NULL THEN
        RAISE EXCEPTION 'wallet_shard.send_gift: viewer_account, creator_account, coins and idempotency_key must not be null'
            USING ERRCODE = '22004',
                  DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN viewer_account IS NULL THEN 'viewer_account' END,
                                  CASE WHEN creator_account IS NULL THEN 'creator_account' END, CASE WHEN coins IS NULL THEN 'coins' END,
                                  CASE WHEN idempotency_key IS NULL THEN 'idempotency_key' END));
    END IF;
    PERFORM wallet_shard.check_local(viewer_account, c);
    PERFORM wallet_shard.check_routable(creator_account, c);
    PERFORM wallet_shard.guard(viewer_account);
    PERFORM wallet_shard.refuse_live_system(viewer_account, 'viewer');
    dest := wallet_shard.shard_of(creator_account);
    IF dest = c.shard THEN
        PERFORM wallet_shard.guard(creator_account);
        PERFORM wallet_shard.refuse_live_system(creator_account, 'creator');
        RETURN wallet.gift(viewer_account, creator_account, coins, idempotency_key, metadata);
    END IF;
    IF metadata IS NOT NULL AND jsonb_typeof(metadata) <> 'object' THEN
        RAISE EXCEPTION 'gift metadata must be a JSON object, got %', jsonb_typeof(metadata)
            USING ERRCODE = '22023',
                  DETAIL = format('The metadata is a JSON %s; the gift adds its creator and diamonds to an object.',
                                  jsonb_typeof(metadata));
    END IF;
    lc := wallet.live_cfg();
    n := wallet.units(coins);
    IF wallet.currency(coins) <> lc.coin_currency THEN
        RAISE EXCEPTION 'coins must be in %, got %', lc.coin_currency, coins
            USING ERRCODE = 'WL002',
                  DETAIL = format('Gifts are paid in %s; the gift was given %s.', lc.coin_currency, coins);
    END IF;
    IF n <= 0 THEN
        RAISE EXCEPTION 'gift must be positive, got %', coins USING ERRCODE = '22023',
            DETAIL = format('A gift moves coins from the viewer; %s is not positive.', coins);
    END IF;
    -- a retry returns the first gift even if the share changed since
    SELECT t.id, t.kind, t.metadata INTO found_id, found_kind, found_md
      FROM wallet.txn t WHERE t.idempotency_key = send_gift.idempotency_key;
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
    d := floor(n * lc.creator_share)::bigint;
    md := coalesce(metadata, '{}')
          || jsonb_build_object('creator', creator_account, 'diamonds', d, 'creator_share', lc.creator_share);
    tx := wallet.post(idempotency_key,
                      ARRAY[ROW(viewer_account, -coins)::wallet.leg, ROW(lc.coin_revenue, coins)::wallet.leg],
                      'gift', md);
    IF d > 0 THEN
        INSERT INTO wallet_shard.outbox (txn_id, kind, dest_shard, from_account, to_account, amount)
            VALUES (tx, 'gift', dest, viewer_account, creator_account, wallet.amount(d, lc.diamond_currency))
            ON CONFLICT (txn_id) DO NOTHING;
    END IF;
    RETURN tx;
END
$$;

-- wallet_shard.send (call 'transfer') or send_gift (call 'gift', without
-- kind), for the router: also returns the message the call queued, while
-- it is pending (outbox id, kind, receiver, amount in canonical text), so
-- that the router delivers it at once without asking for it; NULLs when
-- there is none (same shard, a gift of 0 diamonds, a retry of a message
-- already settled).
CREATE FUNCTION wallet_shard.send_routed(call text, from_account bigint, to_account bigint, amount wallet.amount,
                                         idempotency_key text, kind text DEFAULT 'transfer',
                                         metadata jsonb DEFAULT NULL)
RETURNS TABLE (txn_id bigint, outbox_id bigint, message_kind text, message_to bigint, message_amount text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tx bigint;
BEGIN
    IF call = 'transfer' THEN
        tx := wallet_shard.send(from_account, to_account, amount, idempotency_key, kind, metadata);
    ELSIF call = 'gift' THEN
        tx := wallet_shard.send_gift(from_account, to_account, amount, idempotency_key, metadata);
    ELSE
        RAISE EXCEPTION 'wallet_shard.send_routed: unknown call "%"', call USING ERRCODE = '22023',
            DETAIL = 'Calls are transfer and gift.';
    END IF;
    RETURN QUERY
    SELECT tx, o.id, o.kind, o.to_account, o.amount::text
      FROM (SELECT 1) one
      LEFT JOIN wallet_shard.outbox o ON o.txn_id = tx AND o.status = 'pending';
END
$$;

-- The messages to `dest` still to be delivered, oldest first (at most
-- max_messages; only the one of transaction only_txn when given), each
-- with this shard's number (the relay checks it is the shard it meant to
-- ask: a partition list with two shards swapped must not attribute
-- messages to the wrong origin).  Rows of
-- transactions still running are not seen and come in a later call: the
-- relay never depends on ids committing in order.
CREATE FUNCTION wallet_shard.pending(dest integer, max_messages integer DEFAULT 1000, only_txn bigint DEFAULT NULL)
RETURNS TABLE (outbox_id bigint, kind text, to_account bigint, amount wallet.amount, origin integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT o.id, o.kind, o.to_account, o.amount, (wallet_shard.cfg()).shard
      FROM wallet_shard.outbox o
     WHERE o.dest_shard = pending.dest AND o.status = 'pending'
       AND (pending.only_txn IS NULL OR o.txn_id = pending.only_txn)
     ORDER BY o.id
     LIMIT greatest(coalesce(pending.max_messages, 1000), 0)
$$;

-- The shards this one has open messages for: pending ones (to deliver)
-- and returning ones (rejected, to return to their sender).
CREATE FUNCTION wallet_shard.open_links()
RETURNS TABLE (dest integer, pending bigint, to_return bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT o.dest_shard, count(*) FILTER (WHERE o.status = 'pending'), count(*) FILTER (WHERE o.status = 'returning')
      FROM wallet_shard.outbox o
     WHERE o.status IN ('pending', 'returning')
     GROUP BY o.dest_shard
$$;

-- ============================================================================
-- Receiving
-- ============================================================================

-- A message delivered again must be the one recorded (WL006 otherwise):
-- the same kind and receiver, and the same amount, read the same here or,
-- if it could not be read then, sent as the same text.
CREATE FUNCTION wallet_shard.check_redelivery(ib wallet_shard.inbox, kind text, to_account bigint, amount_sent text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    amt wallet.amount;
BEGIN
    IF ib.amount IS NOT NULL THEN
        BEGIN
            amt := amount_sent::wallet.amount;
        EXCEPTION WHEN SQLSTATE 'WL000' OR SQLSTATE '22000' THEN
            amt := NULL;
        END;
    END IF;
    IF ib.kind <> kind OR ib.to_account <> to_account
       OR (ib.amount IS NOT NULL AND ib.amount IS DISTINCT FROM amt)
       OR (ib.amount IS NULL AND ib.amount_sent <> amount_sent) THEN
        RAISE EXCEPTION 'message % of shard % was received with other contents', ib.outbox_id, ib.origin_shard
            USING ERRCODE = 'WL006',
                  DETAIL = format('Recorded: %s of %s to %s; now: %s of %s to %s.', ib.kind, ib.amount_sent,
                                  ib.to_account, kind, amount_sent, to_account);
    END IF;
END
$$;

-- Posts the messages of shard `origin` to this shard, `dest` (the router
-- names the shard it means to reach: 22023 if that is not this one).  The
-- messages are parallel arrays, one element per outbox row there, amounts
-- as text (the sender's canonical form), parsed here.  Returns each one's
-- outcome: 'received' with this shard's transaction, or 'rejected' with
-- the reason, when the message can never be posted here: any wallet error
-- (WL0xx: the receiver unknown here, in another currency, frozen or
-- closed, an unknown currency...), a data error (class 22: a malformed or
-- non-positive amount, an overflowing credit, a clearing account as the
-- receiver) or 55000 (a gift while the live flows are not set up).  A
-- message already in the inbox returns its recorded outcome and posts
-- nothing, so redelivery is harmless; the same message id with other
-- contents (kind, receiver, amount as sent) is WL006.
-- Everything is one transaction: the postings and their inbox rows commit
-- together or not at all.  Any other error (a lock timeout, a
-- serialisation failure, a cancel) aborts the call, and the sender
-- redelivers later.  Calls run in parallel; the "in"
-- clearing accounts are looked up (or opened) before any posting, and
-- messages are posted in ascending receiver order, so row locks are taken
-- in ascending id order (clearing and issuance accounts are hot and take
-- none) and receiving cannot deadlock with local postings.
-- Transfers post "in" clearing account of origin -amount, receiver +amount
-- (kind 'shard_transfer'); gifts post diamond_issuance -d, creator +d (kind
-- 'gift'); both keyed 'wallet:shard:<origin>:<outbox_id>'.  recorded_now
-- tells the outcomes this call recorded from the ones found recorded.  A
-- lock held elsewhere for more than 5 s (a receiver's row) ends the call
-- with 55P03, which the relay reports and retries: never a cancelled
-- statement, which PL/Proxy 2.10 may wait on for ever.
CREATE FUNCTION wallet_shard.receive(origin integer, dest integer, outbox_ids bigint[], kinds text[],
                                     to_accounts bigint[], amounts text[])
RETURNS TABLE (outbox_id bigint, status text, txn_id bigint, reason text, recorded_now boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $$
DECLARE
    c wallet_shard.config := wallet_shard.cfg();
    m record;
    ib wallet_shard.inbox;
    lc wallet.live_config;
    amt wallet.amount;
    cur text;
    tx bigint;
    st text;
    why text;
    key text;
    md jsonb;
BEGIN
    IF origin IS NULL OR dest IS NULL OR outbox_ids IS NULL OR kinds IS NULL OR to_accounts IS NULL OR amounts IS NULL THEN
        RAISE EXCEPTION 'wallet_shard.receive: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = 'origin, dest and the four arrays are required.';
    END IF;
    IF dest <> c.shard THEN
        RAISE EXCEPTION 'messages for shard % reached shard %', dest, c.shard USING ERRCODE = '22023',
            DETAIL = 'The router''s partition list and the shards'' configuration disagree.',
            HINT = 'Check the partitions of the PL/Proxy cluster wallet_shards against wallet_shard.configure() on each shard.';
    END IF;
    IF origin < 0 OR origin >= c.shard_count OR origin = c.shard THEN
        RAISE EXCEPTION 'origin must be another shard of the cluster, got %', origin USING ERRCODE = '22023',
            DETAIL = format('This is shard %s of %s.', c.shard, c.shard_count);
    END IF;
    IF cardinality(outbox_ids) <> cardinality(kinds) OR cardinality(outbox_ids) <> cardinality(to_accounts)
       OR cardinality(outbox_ids) <> cardinality(amounts) THEN
        RAISE EXCEPTION 'wallet_shard.receive: the arrays must have the same length' USING ERRCODE = '22023',
            DETAIL = format('outbox_ids %s, kinds %s, to_accounts %s, amounts %s elements.', cardinality(outbox_ids),
                            cardinality(kinds), cardinality(to_accounts), cardinality(amounts));
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(outbox_ids, kinds, to_accounts, amounts) AS u(oid, kind, acct, amt)
                WHERE u.oid IS NULL OR u.kind IS NULL OR u.acct IS NULL OR u.amt IS NULL) THEN
        RAISE EXCEPTION 'wallet_shard.receive: message fields must not be null' USING ERRCODE = '22004',
            DETAIL = format('A message of shard %s has a null id, kind, receiver or amount.', origin);
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(kinds) k WHERE k NOT IN ('transfer', 'gift')) THEN
        RAISE EXCEPTION 'wallet_shard.receive: unknown message kind' USING ERRCODE = '22023',
            DETAIL = 'Message kinds are transfer and gift.';
    END IF;
    -- Receives run in parallel (a famous creator's gifts from another
    -- shard must not queue behind each other).  Two deliveries of one
    -- message at once: the second waits on the first's idempotency key or
    -- inbox key, its own posting (if any) rolls back, and it returns the
    -- outcome the first recorded (the unique_violation handler below).  No cycle of
    -- waits: each delivery takes keys and row locks in message order
    -- (receiver, then outbox id), and waits on another only at a message
    -- the other has already passed.
    -- the clearing accounts first: opening one takes a table lock, which
    -- must not come after row locks of this transaction
    FOR cur IN SELECT DISTINCT split_part(btrim(u.amt), ' ', 2)
                 FROM unnest(kinds, amounts) AS u(kind, amt) WHERE u.kind = 'transfer' LOOP
        BEGIN
            PERFORM wallet.currency(('0 ' || cur)::wallet.amount);   -- a registered code
            PERFORM wallet_shard.clearing_account(origin, 'in', cur);
        EXCEPTION WHEN SQLSTATE 'WL000' OR SQLSTATE '22000' THEN
            NULL;   -- the messages in it are rejected below
        END;
    END LOOP;
    FOR m IN SELECT u.oid, u.kind, u.acct, u.amt
               FROM unnest(outbox_ids, kinds, to_accounts, amounts) AS u(oid, kind, acct, amt)
              ORDER BY u.acct, u.oid LOOP
        -- a message seen before: its recorded outcome, whatever changed here since
        SELECT * INTO ib FROM wallet_shard.inbox i WHERE i.origin_shard = origin AND i.outbox_id = m.oid;
        IF FOUND THEN
            PERFORM wallet_shard.check_redelivery(ib, m.kind, m.acct, m.amt);
            outbox_id := ib.outbox_id; status := ib.status; txn_id := ib.txn_id; reason := ib.reason;
            recorded_now := false;
            RETURN NEXT;
            CONTINUE;
        END IF;
        key := format('wallet:shard:%s:%s', origin, m.oid);
        md := jsonb_build_object('origin_shard', origin, 'outbox_id', m.oid);
        recorded_now := true;
        amt := NULL;
        tx := NULL;
        why := NULL;
        BEGIN
            BEGIN
                amt := m.amt::wallet.amount;
                IF wallet.units(amt) <= 0 THEN
                    RAISE EXCEPTION 'message amount must be positive, got %', amt USING ERRCODE = '22023';
                END IF;
                PERFORM wallet_shard.check_local(m.acct, c);
                PERFORM wallet_shard.guard(m.acct);
                IF m.kind = 'transfer' THEN
                    tx := wallet.post_system(key,
                            ARRAY[ROW(wallet_shard.clearing_account(origin, 'in', wallet.currency(amt)), -amt)::wallet.leg,
                                  ROW(m.acct, amt)::wallet.leg],
                            'shard_transfer', md);
                ELSE
                    lc := wallet.live_cfg();
                    PERFORM wallet_shard.refuse_live_system(m.acct, 'creator');
                    tx := wallet.post_system(key,
                            ARRAY[ROW(lc.diamond_issuance, -amt)::wallet.leg, ROW(m.acct, amt)::wallet.leg],
                            'gift', md || jsonb_build_object('creator', m.acct, 'diamonds', wallet.units(amt)));
                END IF;
            EXCEPTION WHEN SQLSTATE 'WL000' OR SQLSTATE '22000' OR SQLSTATE '55000' THEN
                -- a category catches its whole class: of class 55 only
                -- 55000 itself is final (55P03, a lock timeout, is not)
                IF SQLSTATE LIKE '55%' AND SQLSTATE <> '55000' THEN
                    RAISE;
                END IF;
                why := format('%s: %s', SQLSTATE, SQLERRM);
                tx := NULL;   -- the block's work is undone
            END;
            st := CASE WHEN tx IS NULL THEN 'rejected' ELSE 'received' END;
            INSERT INTO wallet_shard.inbox (origin_shard, outbox_id, kind, to_account, amount_sent, amount, currency,
                                            status, txn_id, reason)
                VALUES (origin, m.oid, m.kind, m.acct, m.amt, amt,
                        coalesce(wallet.currency(amt), split_part(btrim(m.amt), ' ', 2)), st, tx, why);
        EXCEPTION WHEN unique_violation THEN
            -- a delivery of this message running at the same time recorded
            -- its outcome first (this one waited for it on the inbox key);
            -- what this one posted, if anything, is undone with the block
            SELECT * INTO ib FROM wallet_shard.inbox i WHERE i.origin_shard = origin AND i.outbox_id = m.oid;
            IF NOT FOUND THEN
                RAISE;
            END IF;
            PERFORM wallet_shard.check_redelivery(ib, m.kind, m.acct, m.amt);
            st := ib.status; tx := ib.txn_id; why := ib.reason;
            recorded_now := false;
        END;
        outbox_id := m.oid; status := st; txn_id := tx; reason := why;
        RETURN NEXT;
    END LOOP;
END
$$;

-- ============================================================================
-- Settling (the sending shard)
-- ============================================================================

-- Returns the money of message o: a posting of the original's legs
-- reversed, with `to_account` in place of the sender (the sender itself
-- for a return, another account when an operator settles one; then the
-- metadata says "settled_to"), keyed 'wallet:shard:return:<outbox_id>' and
-- linked through transactions.reverses; marks the message bounced.
-- Returns the posting's id.  The caller holds the outbox row.
CREATE FUNCTION wallet_shard.post_return(o wallet_shard.outbox, to_account bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    legs wallet.leg[];
    md jsonb := jsonb_build_object('outbox_id', o.id, 'dest_shard', o.dest_shard, 'reason', o.reason);
    rtx bigint;
BEGIN
    SELECT array_agg(ROW(CASE WHEN e.account_id = o.from_account THEN post_return.to_account ELSE e.account_id END,
                         -wallet.amount(e.amount, a.currency))::wallet.leg ORDER BY e.leg)
      INTO legs
      FROM wallet.entry e JOIN wallet.account a ON a.id = e.account_id
     WHERE e.txn_id = o.txn_id;
    IF to_account <> o.from_account THEN
        md := md || jsonb_build_object('settled_to', to_account);
    END IF;
    rtx := wallet.post_system(format('wallet:shard:return:%s', o.id), legs, 'shard_return', md, o.txn_id);
    UPDATE wallet_shard.outbox ob SET status = 'bounced', return_txn = rtx, settled_at = now()
     WHERE ob.id = o.id;
    RETURN rtx;
END
$$;

-- Records the outcomes wallet_shard.receive returned on shard `dest`:
-- 'received' marks the message delivered (remote_txn); 'rejected' marks it
-- 'returning'.  Messages already settled are left alone, so acks can be
-- repeated.  Then, when retry_returns, it returns the money of every
-- 'returning' message to `dest` to its sender: a posting with the
-- original's legs reversed, keyed 'wallet:shard:return:<outbox_id>' and
-- linked through transactions.reverses, and marks the message bounced.  A
-- return that fails with a wallet or data error (the sender's account
-- frozen or closed, platform revenue short of a gift's coins) leaves the
-- message 'returning' for the next ack (logged at LOG); wallet_shard.
-- settle_return() lets an operator send it elsewhere.  Returns lock the
-- accounts they change first, in ascending id order, and skip messages
-- another ack is returning.  Returns the number of messages settled
-- (delivered, rejected or returned) by this call.
CREATE FUNCTION wallet_shard.ack(dest integer, outbox_ids bigint[], statuses text[],
                                 remote_txns bigint[], reasons text[], retry_returns boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $$
DECLARE
    c wallet_shard.config := wallet_shard.cfg();
    m record;
    o wallet_shard.outbox;
    settled integer := 0;
    todo bigint[];
BEGIN
    IF dest IS NULL OR outbox_ids IS NULL OR statuses IS NULL OR remote_txns IS NULL OR reasons IS NULL
       OR retry_returns IS NULL THEN
        RAISE EXCEPTION 'wallet_shard.ack: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = 'dest, the four arrays and retry_returns are required.';
    END IF;
    IF cardinality(outbox_ids) <> cardinality(statuses) OR cardinality(outbox_ids) <> cardinality(remote_txns)
       OR cardinality(outbox_ids) <> cardinality(reasons) THEN
        RAISE EXCEPTION 'wallet_shard.ack: the arrays must have the same length' USING ERRCODE = '22023',
            DETAIL = format('outbox_ids %s, statuses %s, remote_txns %s, reasons %s elements.', cardinality(outbox_ids),
                            cardinality(statuses), cardinality(remote_txns), cardinality(reasons));
    END IF;
    -- outcomes, in id order (outbox rows only)
    FOR m IN SELECT u.oid, u.st, u.rtx, u.why FROM unnest(outbox_ids, statuses, remote_txns, reasons) AS u(oid, st, rtx, why)
              ORDER BY u.oid LOOP
        IF m.st IS NULL OR m.st NOT IN ('received', 'rejected') OR (m.st = 'received' AND m.rtx IS NULL) THEN
            RAISE EXCEPTION 'wallet_shard.ack: bad outcome "%" for message %', m.st, m.oid USING ERRCODE = '22023',
                DETAIL = 'An outcome is received (with the remote transaction) or rejected.';
        END IF;
        SELECT * INTO o FROM wallet_shard.outbox ob WHERE ob.id = m.oid FOR UPDATE;
        IF NOT FOUND OR o.dest_shard <> dest THEN
            RAISE EXCEPTION 'wallet_shard.ack: shard % acknowledged message % it was not sent', dest, m.oid
                USING ERRCODE = '22023', DETAIL = 'No outbox row of this shard has that id and destination.';
        END IF;
        CONTINUE WHEN o.status <> 'pending';
        IF m.st = 'received' THEN
            UPDATE wallet_shard.outbox ob SET status = 'delivered', remote_txn = m.rtx, settled_at = now()
             WHERE ob.id = m.oid;
        ELSE
            UPDATE wallet_shard.outbox ob SET status = 'returning', reason = m.why WHERE ob.id = m.oid;
        END IF;
        settled := settled + 1;
    END LOOP;
    IF NOT retry_returns THEN
        RETURN settled;
    END IF;
    -- returns: the messages no other ack is returning, then the accounts
    -- their postings lock (all but the hot ones allowed to go negative,
    -- which take no row lock), in ascending id order, then the postings
    SELECT coalesce(array_agg(x.id ORDER BY x.id), '{}') INTO todo
      FROM (SELECT ob.id FROM wallet_shard.outbox ob
             WHERE ob.dest_shard = dest AND ob.status = 'returning'
             ORDER BY ob.id FOR UPDATE SKIP LOCKED) x;
    IF cardinality(todo) = 0 THEN
        RETURN settled;
    END IF;
    BEGIN
        PERFORM 1 FROM wallet.account a
         WHERE a.id IN (SELECT e.account_id FROM wallet.entry e JOIN wallet_shard.outbox ob ON ob.txn_id = e.txn_id
                         WHERE ob.id = ANY (todo))
           AND NOT (a.hot AND a.allow_negative)
         ORDER BY a.id
           FOR NO KEY UPDATE OF a;
    EXCEPTION WHEN lock_not_available THEN
        -- an account held elsewhere past lock_timeout: the returns wait for
        -- the next ack, the outcomes recorded above stand
        RAISE LOG 'wallet_shard: returns to shard % put off: an account is busy', dest;
        RETURN settled;
    END;
    FOR o IN SELECT * FROM wallet_shard.outbox ob WHERE ob.id = ANY (todo) ORDER BY ob.id LOOP
        BEGIN
            PERFORM wallet_shard.post_return(o, o.from_account);
            settled := settled + 1;
        EXCEPTION WHEN SQLSTATE 'WL000' OR SQLSTATE '22000' THEN
            -- any wallet or data error: the message stays 'returning', the
            -- others are settled
            RAISE LOG 'wallet_shard: message % to shard % could not be returned yet: %', o.id, dest, SQLERRM;
        END;
    END LOOP;
    RETURN settled;
END
$$;

-- For an operator: returns the money of a 'returning' message (one whose
-- sender can no longer take it back, e.g. a closed account) to another
-- account of this shard, in the message's currency: the original's legs
-- reversed with `to_account` in place of the sender, linked through
-- transactions.reverses like any return.  Marks the message bounced;
-- returns the posting's id.  Not granted to the router.
-- Errors: 22023 not a returning message of this shard, or a clearing
-- account; those of the posting (WL002-WL005).
CREATE FUNCTION wallet_shard.settle_return(outbox_id bigint, to_account bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o wallet_shard.outbox;
BEGIN
    IF outbox_id IS NULL OR to_account IS NULL THEN
        RAISE EXCEPTION 'wallet_shard.settle_return: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = 'Name the message and the account that takes its money.';
    END IF;
    PERFORM wallet_shard.guard(to_account);
    SELECT * INTO o FROM wallet_shard.outbox ob WHERE ob.id = settle_return.outbox_id FOR UPDATE;
    IF NOT FOUND OR o.status <> 'returning' THEN
        RAISE EXCEPTION 'message % is not waiting to be returned', outbox_id USING ERRCODE = '22023',
            DETAIL = format('Its status is %s.', coalesce(o.status, 'unknown: no such message'));
    END IF;
    RETURN wallet_shard.post_return(o, to_account);
END
$$;

-- ============================================================================
-- Reversal, reading and checking
-- ============================================================================

-- wallet.reverse for a shard: refuses (22023) a transaction that sent or
-- received money across shards, returned such money (a gift's return
-- touches no clearing account), or touched a clearing account (its
-- reversal would leave the clearing accounts out of step with the other
-- shard; send the money back with a new transfer instead), and is
-- wallet.reverse otherwise.
CREATE FUNCTION wallet_shard.reverse(tx_id bigint, idempotency_key text, reason text DEFAULT NULL,
                                     allow_negative boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM wallet_shard.outbox o WHERE o.txn_id = reverse.tx_id OR o.return_txn = reverse.tx_id)
       OR EXISTS (SELECT 1 FROM wallet_shard.inbox i WHERE i.txn_id = reverse.tx_id)
       OR EXISTS (SELECT 1 FROM wallet.entry e JOIN wallet_shard.clearing k ON k.account_id = e.account_id
                   WHERE e.txn_id = reverse.tx_id) THEN
        RAISE EXCEPTION 'transaction % moved money between shards and cannot be reversed', tx_id
            USING ERRCODE = '22023',
                  DETAIL = 'Its other half is posted on another shard; reversing one half would unbalance the clearing accounts.',
                  HINT = 'Send the money back with a new transfer.';
    END IF;
    RETURN wallet.reverse(tx_id, idempotency_key, reason, allow_negative);
END
$$;

-- Freeze, unfreeze, close or set_hot of an account, for the router:
-- refuses clearing accounts (22023), and closing an account whose money is
-- still in flight to another shard (WL012: a rejected message could not
-- come back to it).  action: 'freeze', 'unfreeze', 'close' or 'hot'.
CREATE FUNCTION wallet_shard.account_action(action text, id bigint, hot boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF action IS NULL OR id IS NULL THEN
        RAISE EXCEPTION 'wallet_shard.account_action: action and id must not be null' USING ERRCODE = '22004',
            DETAIL = format('action %s, id %s.', coalesce(action, 'NULL'), coalesce(id::text, 'NULL'));
    END IF;
    PERFORM wallet_shard.guard(id);
    CASE action
        WHEN 'freeze' THEN PERFORM wallet.freeze_account(id);
        WHEN 'unfreeze' THEN PERFORM wallet.unfreeze_account(id);
        WHEN 'hot' THEN PERFORM wallet.set_hot(id, hot);
        WHEN 'close' THEN
            -- the account's status lock first (its row lock, and for a hot
            -- account its hot lock exclusively): a send in flight holds one
            -- of them until it commits, and the outbox is read after that
            -- (a new snapshot), so its message is seen; a send after this
            -- waits for the close and then finds the account closed
            PERFORM wallet.lock_account_for_status(account_action.id);
            IF EXISTS (SELECT 1 FROM wallet_shard.outbox o
                        WHERE o.from_account = account_action.id AND o.status IN ('pending', 'returning')) THEN
                RAISE EXCEPTION 'account % has money in flight to another shard', id USING ERRCODE = 'WL012',
                    DETAIL = 'A message it sent is not settled yet; if the other shard rejects it, the money comes back here.',
                    HINT = 'Run wallet.relay() on the router, then close.';
            END IF;
            PERFORM wallet.close_account(id);
        ELSE
            RAISE EXCEPTION 'unknown account action "%"', action USING ERRCODE = '22023',
                DETAIL = 'Actions are freeze, unfreeze, close and hot.';
    END CASE;
END
$$;

-- wallet.recharge and wallet.request_withdrawal for the router: the same,
-- with a clearing account refused (22023) first.
CREATE FUNCTION wallet_shard.recharge(user_account bigint, coins wallet.amount, paid wallet.amount,
                                      channel text, external_id text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM wallet_shard.guard(user_account);
    RETURN wallet.recharge(user_account, coins, paid, channel, external_id);
END
$$;

CREATE FUNCTION wallet_shard.request_withdrawal(creator_account bigint, amount wallet.amount, idempotency_key text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM wallet_shard.guard(creator_account);
    RETURN wallet.request_withdrawal(creator_account, amount, idempotency_key);
END
$$;

-- ============================================================================
-- Idempotency keys across the cluster
-- ============================================================================

-- On a node a key identifies its request for ever, whatever the accounts.
-- In a cluster the key of a call is claimed first on its home shard,
-- hashtext(key) & (claim_shards - 1), where claim_shards is the shard
-- count when the cluster first claimed a key and never changes (adding
-- shards must not move a key's home, or a key claimed before could be
-- claimed again elsewhere).  So the same key used for accounts of two
-- shards is still one request: the first to claim it owns it, any other
-- request with it is WL006.
CREATE TABLE wallet_shard.key_claim (
    idempotency_key text PRIMARY KEY,
    request         jsonb NOT NULL,
    claimed_at      timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('wallet_shard.key_claim', '');

-- Claims `idempotency_key` (the router's namespaced key: 'txn:<key>' for
-- postings, 'hold:<key>' for holds) for `request` (the call's name and
-- arguments as jsonb, amounts already in the router's canonical text).
-- `claim_shards` is the router's count of claim shards: this shard must
-- have it recorded (wallet_shard.set_claim_shards, which a router runs on
-- every shard before the first claim), the same (55000 otherwise: two
-- routers that disagree would home keys apart), and a key whose home is
-- another shard is 22023.  Returns true for a new claim, false when the same request
-- claimed it before (a retry).  Claims are permanent: a request that then
-- fails (insufficient funds, say) keeps its key, and a different request
-- with it is WL006 (a node would take it).
CREATE FUNCTION wallet_shard.claim_key(idempotency_key text, request jsonb, claim_shards integer) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet_shard.config := wallet_shard.cfg();
    held jsonb;
BEGIN
    IF idempotency_key IS NULL OR request IS NULL OR jsonb_typeof(request) <> 'object' OR claim_shards IS NULL THEN
        RAISE EXCEPTION 'wallet_shard.claim_key: a key, a request object and the claim shard count are required'
            USING ERRCODE = '22004', DETAIL = 'The router claims every idempotency key before posting.';
    END IF;
    IF c.claim_shards IS NULL THEN
        RAISE EXCEPTION 'this shard does not know where keys are claimed' USING ERRCODE = '55000',
            DETAIL = 'wallet_shard.config.claim_shards is not set (this shard was down at the cluster''s first claim, or restored from an older dump).',
            HINT = 'The router records it here at its next claim on this shard.';
    END IF;
    IF c.claim_shards <> claim_key.claim_shards THEN
        RAISE EXCEPTION 'keys are claimed over % shards, the router says %', c.claim_shards, claim_key.claim_shards
            USING ERRCODE = '55000',
                  DETAIL = 'Every router must home keys on the same shards, for ever.',
                  HINT = 'Empty wallet_router.settings on that router: it then reads the count from the shards.';
    END IF;
    IF hashtext(idempotency_key) & (claim_shards - 1) <> c.shard THEN
        RAISE EXCEPTION 'key "%" is not claimed on shard %', idempotency_key, c.shard USING ERRCODE = '22023',
            DETAIL = format('Its home is shard %s.', hashtext(idempotency_key) & (claim_shards - 1));
    END IF;
    INSERT INTO wallet_shard.key_claim (idempotency_key, request) VALUES (claim_key.idempotency_key, claim_key.request)
        ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN true;
    END IF;
    SELECT k.request INTO held FROM wallet_shard.key_claim k WHERE k.idempotency_key = claim_key.idempotency_key;
    IF held = request THEN
        RETURN false;
    END IF;
    RAISE EXCEPTION 'idempotency key "%" was already used for a different request',
                    regexp_replace(idempotency_key, '^(txn|hold):', '')
        USING ERRCODE = 'WL006',
              DETAIL = format('Another %s request claimed it at %s.', held ->> 'call',
                              (SELECT k.claimed_at FROM wallet_shard.key_claim k
                                WHERE k.idempotency_key = claim_key.idempotency_key)),
              HINT = 'Use a new key for a new request; resend the same request to get the first result.';
END
$$;

-- Records the cluster's claim-shard count on this shard, once: returns it;
-- 55000 if another count is recorded already.  Routers call it on every
-- shard when no shard knows the count yet (wallet_router.claim_shards),
-- and on one claim shard that lost it (wallet_router.claim).
CREATE FUNCTION wallet_shard.set_claim_shards(claim_shards integer) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet_shard.config := wallet_shard.cfg();
BEGIN
    IF claim_shards IS NULL OR claim_shards < 1 OR claim_shards > c.shard_count
       OR claim_shards & (claim_shards - 1) <> 0 THEN
        RAISE EXCEPTION 'claim_shards must be a power of two from 1 to the shard count (%), got %', c.shard_count,
                        coalesce(claim_shards::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'Keys are claimed on shards 0 .. claim_shards - 1.';
    END IF;
    UPDATE wallet_shard.config k SET claim_shards = set_claim_shards.claim_shards
     WHERE k.singleton AND k.claim_shards IS NULL;
    c := wallet_shard.cfg();
    IF c.claim_shards <> set_claim_shards.claim_shards THEN
        RAISE EXCEPTION 'keys are claimed over % shards already', c.claim_shards USING ERRCODE = '55000',
            DETAIL = 'Changing the count would move keys away from their claims.';
    END IF;
    RETURN c.claim_shards;
END
$$;

-- The claim-shard count this shard has recorded, or NULL.
CREATE FUNCTION wallet_shard.known_claim_shards() RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT k.claim_shards FROM wallet_shard.config k WHERE k.singleton $$;

-- The transaction this shard posted under `idempotency_key`, or NULL: the
-- router asks before checking a retry's receiver, so that a retry of a
-- posted request returns it whatever became of the receiver, and a retry
-- of a refused one is checked again.
CREATE FUNCTION wallet_shard.posted(idempotency_key text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT t.id FROM wallet.txn t WHERE t.idempotency_key = posted.idempotency_key $$;

-- What this shard sent and received, per peer, direction, kind, currency
-- and status: count and minor units (a rejected message whose amount could
-- not be read here counts 0 units).  The router compares both ends of
-- every link.
CREATE FUNCTION wallet_shard.links()
RETURNS TABLE (peer integer, direction text, kind text, currency text, status text, messages bigint, units numeric)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT o.dest_shard, 'out', o.kind, wallet.currency(o.amount), o.status, count(*), sum(wallet.units(o.amount))
      FROM wallet_shard.outbox o GROUP BY 1, 2, 3, 4, 5
    UNION ALL
    SELECT i.origin_shard, 'in', i.kind, i.currency, i.status, count(*), coalesce(sum(wallet.units(i.amount)), 0)
      FROM wallet_shard.inbox i GROUP BY 1, 2, 3, 4, 5
$$;

-- The fingerprint of one settled message, the same on both shards: its
-- outbox id, kind and receiver, and for a delivered message its units and
-- the receiving shard's transaction.
CREATE FUNCTION wallet_shard.message_hash(outbox_id bigint, kind text, to_account bigint, units bigint, txn_id bigint)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT hashtextextended(concat_ws(':', outbox_id, kind, to_account, units, txn_id), 0)::numeric $$;

-- What this shard sent, per destination shard, up to a horizon: `upto`,
-- the last outbox id drawn when called, after waiting for every posting
-- in flight (wallet.wait_for_writers: each send holds the writer lock
-- from before it draws its outbox id until it ends), so no message with a
-- lower id can still appear.  Returns the ids still pending, and the count
-- and the sum of message_hash of the delivered messages and of the
-- returned ones (returning or bounced).  The router compares them with
-- wallet_shard.received_digest on the receiving shard, message by message
-- in effect.  Waits like the sealer, at most 10 s (lock_timeout): past
-- that, every pair's upto is NULL (not checked this time).  READ COMMITTED
-- only (25000).
CREATE FUNCTION wallet_shard.sent_digest()
RETURNS TABLE (dest integer, upto bigint, pending_ids bigint[], delivered bigint, delivered_hash numeric,
               returned bigint, returned_hash numeric)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '10s'
AS $$
DECLARE
    h bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'wallet_shard.sent_digest() must run in a READ COMMITTED transaction' USING ERRCODE = '25000',
            DETAIL = format('This transaction is %s; the digest must see what the writers it waited for committed.',
                            upper(current_setting('transaction_isolation')));
    END IF;
    SELECT CASE WHEN q.is_called THEN q.last_value ELSE 0 END INTO h FROM wallet_shard.outbox_id_seq q;
    BEGIN
        PERFORM wallet.wait_for_writers();
    EXCEPTION WHEN lock_not_available THEN
        -- a writer held on longer than lock_timeout: no digest this time
        -- (upto NULL; the router reports the pairs as not checked)
        RETURN QUERY SELECT DISTINCT o.dest_shard, NULL::bigint, NULL::bigint[], NULL::bigint, NULL::numeric,
                                     NULL::bigint, NULL::numeric
                       FROM wallet_shard.outbox o;
        RETURN;
    END;
    RETURN QUERY
    SELECT o.dest_shard, h,
           coalesce(array_agg(o.id ORDER BY o.id) FILTER (WHERE o.status = 'pending'), '{}'),
           count(*) FILTER (WHERE o.status = 'delivered'),
           coalesce(sum(wallet_shard.message_hash(o.id, o.kind, o.to_account, wallet.units(o.amount), o.remote_txn))
                    FILTER (WHERE o.status = 'delivered'), 0),
           count(*) FILTER (WHERE o.status IN ('returning', 'bounced')),
           coalesce(sum(wallet_shard.message_hash(o.id, o.kind, o.to_account, NULL, NULL))
                    FILTER (WHERE o.status IN ('returning', 'bounced')), 0)
      FROM wallet_shard.outbox o
     WHERE o.id <= h
     GROUP BY o.dest_shard;
END
$$;

-- What this shard received from shard `origin` among its messages up to
-- id `upto`, leaving out `excluded` (the ones the sender still had
-- pending): the count and hash sum of the received ones and of the
-- rejected ones, to compare with wallet_shard.sent_digest.
CREATE FUNCTION wallet_shard.received_digest(origin integer, upto bigint, excluded bigint[])
RETURNS TABLE (received bigint, received_hash numeric, rejected bigint, rejected_hash numeric)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*) FILTER (WHERE i.status = 'received'),
           coalesce(sum(wallet_shard.message_hash(i.outbox_id, i.kind, i.to_account, wallet.units(i.amount), i.txn_id))
                    FILTER (WHERE i.status = 'received'), 0),
           count(*) FILTER (WHERE i.status = 'rejected'),
           coalesce(sum(wallet_shard.message_hash(i.outbox_id, i.kind, i.to_account, NULL, NULL)) FILTER (WHERE i.status = 'rejected'), 0)
      FROM wallet_shard.inbox i
     WHERE i.origin_shard = received_digest.origin AND i.outbox_id <= received_digest.upto
       AND NOT (i.outbox_id = ANY (coalesce(received_digest.excluded, '{}')))
$$;

-- Per currency: the sum of every account's posted balance (zero on a
-- healthy shard: every posting balances) and the sum over clearing
-- accounts (this shard's part of the money in flight between shards).
CREATE FUNCTION wallet_shard.totals()
RETURNS TABLE (currency text, all_accounts numeric, clearing numeric)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.currency,
           sum(a.balance::numeric) + coalesce((SELECT sum(h.amount::numeric) FROM wallet.hot_pending h
                                                 JOIN wallet.account b ON b.id = h.account_id
                                                WHERE b.currency = a.currency), 0),
           sum(a.balance::numeric) FILTER (WHERE a.kind = 'clearing')
             + coalesce((SELECT sum(h.amount::numeric) FROM wallet.hot_pending h
                           JOIN wallet.account b ON b.id = h.account_id
                          WHERE b.currency = a.currency AND b.kind = 'clearing'), 0)
      FROM wallet.account a
     GROUP BY a.currency
$$;

-- The last outbox id this shard has drawn (0 before the first), and for
-- each origin shard the highest outbox id its inbox holds, whatever the
-- outcome.  The router's verify reads every inbox first and the senders
-- after: a message a shard received was drawn by its sender before, so a
-- received id above what its sender has drawn is a message the sender
-- never sent (a credit made up on the receiving shard, which the message
-- by message digests, bounded by the senders' horizons, cannot see).
-- (1.0.1)
CREATE FUNCTION wallet_shard.outbox_drawn() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN q.is_called THEN q.last_value ELSE q.last_value - 1 END FROM wallet_shard.outbox_id_seq q $$;
REVOKE ALL ON FUNCTION wallet_shard.outbox_drawn() FROM PUBLIC;

CREATE FUNCTION wallet_shard.inbox_heads() RETURNS TABLE (origin integer, last_outbox_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- one probe of the inbox's key per shard of the cluster (origins are
    -- shards, and the count only grows)
    SELECT g.origin, h.last_outbox_id
      FROM wallet_shard.config c
     CROSS JOIN LATERAL generate_series(0, c.shard_count - 1) g(origin)
     CROSS JOIN LATERAL (SELECT max(i.outbox_id) AS last_outbox_id FROM wallet_shard.inbox i
                          WHERE i.origin_shard = g.origin) h
     WHERE h.last_outbox_id IS NOT NULL
$$;
REVOKE ALL ON FUNCTION wallet_shard.inbox_heads() FROM PUBLIC;

-- The shard's checks: wallet.verify() and
--   shard_configured;
--   clearing_out_matches_outbox: each "out" account holds what was sent to
--     its shard in its currency and not returned;
--   clearing_in_matches_inbox: each "in" account is minus what was
--     received from its shard;
--   outbox_postings: every outbox row has its posting (the sender's leg),
--     every delivered row its remote transaction, every bounced row its
--     return reversing the original, and nothing reverses a return;
--   inbox_postings: every received message is posted once, under its key,
--     to its receiver.
-- Each check reads its own snapshot (READ COMMITTED): each is consistent in
-- itself; run it in REPEATABLE READ for one snapshot across them.
CREATE FUNCTION wallet_shard.verify()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet_shard.config;
    bad text;
BEGIN
    RETURN QUERY SELECT v.check_name, v.ok, v.detail FROM wallet.verify() v;
    SELECT * INTO c FROM wallet_shard.config k WHERE k.singleton;
    check_name := 'shard_configured'; ok := FOUND;
    detail := CASE WHEN FOUND THEN format('shard %s of %s', c.shard, c.shard_count) ELSE 'wallet_shard.configure() was never run' END;
    RETURN NEXT;

    SELECT string_agg(format('out %s %s: account %s holds %s, outbox says %s', k.peer, k.currency, k.account_id,
                             x.held, x.owed), '; ')
      INTO bad
      FROM wallet_shard.clearing k
      CROSS JOIN LATERAL (
          SELECT wallet.units(wallet.balance(k.account_id)) AS held,
                 coalesce((SELECT sum(wallet.units(o.amount)) FROM wallet_shard.outbox o
                            WHERE o.kind = 'transfer' AND o.dest_shard = k.peer AND o.status <> 'bounced'
                              AND wallet.currency(o.amount) = k.currency), 0) AS owed) x
     WHERE k.direction = 'out' AND x.held <> x.owed;
    check_name := 'clearing_out_matches_outbox'; ok := bad IS NULL; detail := coalesce(bad, ''); RETURN NEXT;

    SELECT string_agg(format('in %s %s: account %s holds %s, inbox says %s', k.peer, k.currency, k.account_id,
                             x.held, -x.got), '; ')
      INTO bad
      FROM wallet_shard.clearing k
      CROSS JOIN LATERAL (
          SELECT wallet.units(wallet.balance(k.account_id)) AS held,
                 coalesce((SELECT sum(wallet.units(i.amount)) FROM wallet_shard.inbox i
                            WHERE i.kind = 'transfer' AND i.origin_shard = k.peer AND i.status = 'received'
                              AND wallet.currency(i.amount) = k.currency), 0) AS got) x
     WHERE k.direction = 'in' AND x.held <> -x.got;
    check_name := 'clearing_in_matches_inbox'; ok := bad IS NULL; detail := coalesce(bad, ''); RETURN NEXT;

    SELECT string_agg(format('outbox %s: %s', o.id, w.what), '; ')
      INTO bad
      FROM wallet_shard.outbox o
      CROSS JOIN LATERAL (
          SELECT CASE
                   WHEN NOT EXISTS (SELECT 1 FROM wallet.entry e
                                     WHERE e.txn_id = o.txn_id AND e.account_id = o.from_account AND e.amount < 0)
                     THEN format('transaction %s has no debit of account %s', o.txn_id, o.from_account)
                   WHEN o.status = 'delivered' AND o.remote_txn IS NULL THEN 'delivered without a remote transaction'
                   WHEN o.status = 'bounced' AND NOT EXISTS (SELECT 1 FROM wallet.txn t
                                                              WHERE t.id = o.return_txn AND t.reverses = o.txn_id)
                     THEN format('bounced, but transaction %s is not its return', o.return_txn)
                   WHEN o.status <> 'bounced' AND EXISTS (SELECT 1 FROM wallet.txn t WHERE t.reverses = o.txn_id)
                     THEN 'reversed on this shard, but not bounced'
                   WHEN o.return_txn IS NOT NULL AND EXISTS (SELECT 1 FROM wallet.txn t WHERE t.reverses = o.return_txn)
                     THEN format('its return %s was reversed', o.return_txn)
                 END AS what) w
     WHERE w.what IS NOT NULL;
    check_name := 'outbox_postings'; ok := bad IS NULL; detail := coalesce(bad, ''); RETURN NEXT;

    SELECT string_agg(format('inbox %s/%s: %s', i.origin_shard, i.outbox_id, w.what), '; ')
      INTO bad
      FROM wallet_shard.inbox i
      CROSS JOIN LATERAL (
          SELECT CASE
                   WHEN NOT EXISTS (SELECT 1 FROM wallet.txn t
                                     WHERE t.id = i.txn_id
                                       AND t.idempotency_key = format('wallet:shard:%s:%s', i.origin_shard, i.outbox_id))
                     THEN format('transaction %s is not the posting of this message', i.txn_id)
                   WHEN NOT EXISTS (SELECT 1 FROM wallet.entry e
                                     WHERE e.txn_id = i.txn_id AND e.account_id = i.to_account
                                       AND e.amount = wallet.units(i.amount))
                     THEN format('transaction %s does not credit %s to account %s', i.txn_id, i.amount, i.to_account)
                   WHEN EXISTS (SELECT 1 FROM wallet.txn t WHERE t.reverses = i.txn_id)
                     THEN format('transaction %s was reversed', i.txn_id)
                 END AS what) w
     WHERE i.status = 'received' AND w.what IS NOT NULL;
    check_name := 'inbox_postings'; ok := bad IS NULL; detail := coalesce(bad, ''); RETURN NEXT;
END
$$;

-- ============================================================================
-- Privileges
-- ============================================================================

-- Nothing here is PUBLIC; the role the router connects as gets what it
-- calls.  (The tables are the owner's only.)
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA wallet_shard FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA wallet_shard FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA wallet_shard FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wallet_shard.shard_of(bigint) TO PUBLIC;

-- Grants `role` exactly what the router calls on a shard (and revokes the
-- rest of both schemas' functions from it): the wallet functions its
-- routed calls run (open_account, balance, available, live_setup,
-- complete and cancel of withdrawals, statement) and wallet_shard's send,
-- receive, settle, guarded recharge and withdrawal, check and read
-- functions.  Not the
-- rest of the node's API: wallet.post or wallet.reverse in the router's
-- hands could post around the cross-shard protocol.
CREATE FUNCTION wallet_shard.grant_router(role regrole) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'wallet_shard.grant_router: role must not be null' USING ERRCODE = '22004',
            DETAIL = 'Name the role the router connects as.';
    END IF;
    -- what an earlier grant (grant_app, say) gave beyond that goes first
    EXECUTE format('REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA wallet, wallet_shard FROM %s', role);
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA wallet, wallet_shard FROM %s', role);
    EXECUTE format('GRANT USAGE ON SCHEMA wallet, wallet_shard TO %s', role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION '
                   'wallet.open_account(text, text, text, boolean, jsonb), wallet.balance(bigint), '
                   'wallet.available(bigint), wallet.live_setup(text, text, numeric), '
                   'wallet.complete_withdrawal(bigint), wallet.cancel_withdrawal(bigint), '
                   'wallet.statement(bigint, timestamptz, timestamptz), wallet.history_merged_through(), '
                   'wallet.refund_recharge(bigint, text), wallet.balance_at(bigint, timestamptz), '
                   'wallet.add_currency(text, integer, text), '
                   'wallet_shard.current_shard(), wallet_shard.guard(bigint), '
                   'wallet_shard.check_receiver(bigint, wallet.amount), wallet_shard.check_creator(bigint), '
                   'wallet_shard.send(bigint, bigint, wallet.amount, text, text, jsonb), '
                   'wallet_shard.send_gift(bigint, bigint, wallet.amount, text, jsonb), '
                   'wallet_shard.send_routed(text, bigint, bigint, wallet.amount, text, text, jsonb), '
                   'wallet_shard.recharge(bigint, wallet.amount, wallet.amount, text, text), '
                   'wallet_shard.request_withdrawal(bigint, wallet.amount, text), '
                   'wallet_shard.pending(integer, integer, bigint), wallet_shard.open_links(), '
                   'wallet_shard.receive(integer, integer, bigint[], text[], bigint[], text[]), '
                   'wallet_shard.ack(integer, bigint[], text[], bigint[], text[], boolean), '
                   'wallet_shard.reverse(bigint, text, text, boolean), '
                   'wallet_shard.account_action(text, bigint, boolean), '
                   'wallet_shard.claim_key(text, jsonb, integer), wallet_shard.posted(text), '
                   'wallet_shard.set_claim_shards(integer), wallet_shard.known_claim_shards(), '
                   'wallet_shard.links(), wallet_shard.totals(), '
                   'wallet_shard.sent_digest(), wallet_shard.received_digest(integer, bigint, bigint[]), '
                   'wallet_shard.outbox_drawn(), wallet_shard.inbox_heads(), '
                   'wallet_shard.verify() TO %s', role);
END
$$;
REVOKE ALL ON FUNCTION wallet_shard.grant_router(regrole) FROM PUBLIC;
