-- wallet_shard 1.0.0 -> 1.0.1: fixes from a black-box review of the
-- sharded wallet.
--   * A gift refuses the platform's system accounts of the live flows (and
--     users' debt accounts) as its viewer or creator (22023), as wallet.gift does on a node since
--     wallet 1.5.0: a cross-shard gift from coin_issuance minted coins, and
--     one to payout_clearing issued diamonds to it.  The viewer's shard
--     checks the viewer (send_gift), the creator's shard the creator
--     (check_creator, which the router calls before sending, and receive,
--     which rejects such a message, so that it returns to the viewer).
--   * wallet_shard.outbox_drawn() and wallet_shard.inbox_heads(), for the
--     router's verify (wallet_router 1.0.2) to find a received message its
--     sender never drew; roles the router connects as get them here.
-- Generated with tools/upgrade_diff.py --script; test/harness/shard.sh
-- compares an updated shard's functions with a fresh install's.

\echo Use "ALTER EXTENSION wallet_shard UPDATE TO '1.0.1'" to load this file. \quit

-- Refuses (22023) a system account of this shard's live flows
-- (coin_issuance, coin_revenue, diamond_issuance, payout_clearing) or a
-- user's debt account (kind 'debt') as the viewer or creator (as_what) of
-- a gift, as wallet.gift does on a node (wallet 1.5.0): a gift from
-- coin_issuance or a debt account would mint coins, one to
-- payout_clearing would issue diamonds to nobody's account.  Other
-- accounts, and a shard without live flows, pass.  (1.0.1)
CREATE OR REPLACE FUNCTION wallet_shard.refuse_live_system(account bigint, as_what text) RETURNS void
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
CREATE OR REPLACE FUNCTION wallet_shard.check_creator(account bigint) RETURNS void
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
CREATE OR REPLACE FUNCTION wallet_shard.send_gift(viewer_account bigint, creator_account bigint, coins wallet.amount,
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
CREATE OR REPLACE FUNCTION wallet_shard.receive(origin integer, dest integer, outbox_ids bigint[], kinds text[],
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

-- The last outbox id this shard has drawn (0 before the first), and for
-- each origin shard the highest outbox id its inbox holds, whatever the
-- outcome.  The router's verify reads every inbox first and the senders
-- after: a message a shard received was drawn by its sender before, so a
-- received id above what its sender has drawn is a message the sender
-- never sent (a credit made up on the receiving shard, which the message
-- by message digests, bounded by the senders' horizons, cannot see).
-- (1.0.1)
CREATE OR REPLACE FUNCTION wallet_shard.outbox_drawn() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN q.is_called THEN q.last_value ELSE q.last_value - 1 END FROM wallet_shard.outbox_id_seq q $$;
REVOKE ALL ON FUNCTION wallet_shard.outbox_drawn() FROM PUBLIC;

CREATE OR REPLACE FUNCTION wallet_shard.inbox_heads() RETURNS TABLE (origin integer, last_outbox_id bigint)
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

-- Grants `role` exactly what the router calls on a shard (and revokes the
-- rest of both schemas' functions from it): the wallet functions its
-- routed calls run (open_account, balance, available, live_setup,
-- complete and cancel of withdrawals, statement) and wallet_shard's send,
-- receive, settle, guarded recharge and withdrawal, check and read
-- functions.  Not the
-- rest of the node's API: wallet.post or wallet.reverse in the router's
-- hands could post around the cross-shard protocol.
CREATE OR REPLACE FUNCTION wallet_shard.grant_router(role regrole) RETURNS void
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


-- the router roles (given EXECUTE on verify() by grant_router) get the new
-- functions, as grant_router now gives them
DO $$
DECLARE
    r regrole;
BEGIN
    FOR r IN SELECT a.grantee::regrole
               FROM pg_catalog.pg_proc p, LATERAL pg_catalog.aclexplode(p.proacl) a
              WHERE p.oid = 'wallet_shard.verify()'::regprocedure AND a.privilege_type = 'EXECUTE'
                AND a.grantee <> 0 AND a.grantee <> p.proowner LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION wallet_shard.outbox_drawn(), wallet_shard.inbox_heads() TO %s', r);
    END LOOP;
END
$$;
