-- wallet_router 1.0.2: the router of a sharded wallet (see doc/sharding.md).
--
-- Installed in a database of its own (never beside the wallet extension):
-- it creates schema `wallet` with the application API of a wallet node,
-- each function sending the call through PL/Proxy to the shard that holds
-- its account, so an application's calls read the same against one node or
-- a cluster.  Two differences: amounts travel as text ('12.50 USD'; each
-- shard parses them), and each call commits on its shard by itself
-- (PL/Proxy runs remote calls in autocommit), so it is not part of the
-- caller's transaction.
--
-- The shards are the partitions p0 .. p(N-1) of the PL/Proxy cluster
-- 'wallet_shards' (SQL/MED: CREATE SERVER wallet_shards FOREIGN DATA
-- WRAPPER plproxy OPTIONS (p0 '...', p1 '...') and a user mapping); shard k
-- is a database with the wallet and wallet_shard extensions configured by
-- wallet_shard.configure(k, N).  An id names its shard (its bits above the
-- 48th), so routing needs no directory.
--
-- Cross-shard transfers and gifts: the sender's shard posts the debit and
-- an outbox row in one transaction (wallet_shard.send / send_gift); the
-- router then delivers the message at once (best effort) and
-- wallet.relay() delivers whatever is left (call it from cron or a loop).
-- Delivery is idempotent at the receiving shard and acknowledged at the
-- sender, so a crash anywhere neither loses nor duplicates money.
--
-- Everything in schema wallet is SECURITY DEFINER with a pinned
-- search_path; the internal PL/Proxy functions live in wallet_router and
-- are not PUBLIC.  wallet.grant_app(role) / wallet.grant_reader(role) hand
-- the API out, as on a node.

\echo Use "CREATE EXTENSION wallet_router CASCADE" to load this file. \quit

CREATE SCHEMA wallet;
GRANT USAGE ON SCHEMA wallet TO PUBLIC;

-- ============================================================================
-- Routing
-- ============================================================================

-- The number of shards: the partitions of the PL/Proxy cluster
-- 'wallet_shards' (0 when it is not defined).
CREATE FUNCTION wallet_router.shard_count() RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer
      FROM pg_catalog.pg_foreign_server s
      JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'plproxy'
      CROSS JOIN LATERAL unnest(s.srvoptions) AS o(opt)
     WHERE s.srvname = 'wallet_shards' AND o.opt ~ '^p[0-9]+='
$$;

-- The shard of an id (account, transaction or hold): its bits above the
-- 48th.  Errors: 22004 null; WL003 an id of no shard of the cluster;
-- 55000 the cluster 'wallet_shards' is not defined.
CREATE FUNCTION wallet.shard_of(id bigint) RETURNS integer
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := wallet_router.shard_count();
    s integer;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'id must not be null' USING ERRCODE = '22004', DETAIL = 'The id to route is null.';
    END IF;
    IF n = 0 THEN
        RAISE EXCEPTION 'the PL/Proxy cluster wallet_shards is not defined' USING ERRCODE = '55000',
            DETAIL = 'No foreign server wallet_shards of wrapper plproxy with partitions p0, p1, ...',
            HINT = 'CREATE SERVER wallet_shards FOREIGN DATA WRAPPER plproxy OPTIONS (p0 ''dbname=... host=...'', ...) and a user mapping.';
    END IF;
    s := (id >> 48)::integer;
    IF id <= 0 OR s >= n THEN
        RAISE EXCEPTION 'unknown account %', id USING ERRCODE = 'WL003',
            DETAIL = format('Id %s names shard %s; the cluster has %s shards.', id, s, n);
    END IF;
    RETURN s;
END
$$;

-- ============================================================================
-- PL/Proxy calls (internal): the first argument is the shard to run on.
-- Arguments are positional ($n) so that no name can clash with SQL text.
-- ============================================================================

CREATE FUNCTION wallet_router.r_open_account(integer, text, text, text, boolean, jsonb) RETURNS bigint
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet.open_account($2, $3, $4, $5, $6); $$;

CREATE FUNCTION wallet_router.r_balance(integer, bigint) RETURNS text
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet.balance($2)::text; $$;

CREATE FUNCTION wallet_router.r_available(integer, bigint) RETURNS text
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet.available($2)::text; $$;

CREATE FUNCTION wallet_router.r_check_receiver(integer, bigint, text) RETURNS void
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet_shard.check_receiver($2, $3::wallet.amount); $$;

CREATE FUNCTION wallet_router.r_send(integer, text, bigint, bigint, text, text, text, jsonb)
RETURNS TABLE (txn_id bigint, outbox_id bigint, message_kind text, message_to bigint, message_amount text)
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT r.txn_id, r.outbox_id, r.message_kind, r.message_to, r.message_amount
      FROM wallet_shard.send_routed($2, $3, $4, $5::wallet.amount, $6, $7, $8) r; $$;

CREATE FUNCTION wallet_router.r_check_creator(integer, bigint) RETURNS void
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet_shard.check_creator($2); $$;

CREATE FUNCTION wallet_router.r_claim_key(integer, text, jsonb, integer) RETURNS boolean
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet_shard.claim_key($2, $3, $4); $$;

CREATE FUNCTION wallet_router.r_known_claim_shards()
RETURNS TABLE (shard integer, claim_shards integer)
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON ALL;
    SELECT wallet_shard.current_shard() AS shard, wallet_shard.known_claim_shards() AS claim_shards; $$;

CREATE FUNCTION wallet_router.r_known_claim_shards_on(integer) RETURNS integer
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet_shard.known_claim_shards(); $$;

CREATE FUNCTION wallet_router.r_set_claim_shards_on(integer, integer) RETURNS integer
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet_shard.set_claim_shards($2); $$;

CREATE FUNCTION wallet_router.r_set_claim_shards(integer) RETURNS SETOF integer
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON ALL;
    SELECT wallet_shard.set_claim_shards($1); $$;

CREATE FUNCTION wallet_router.r_posted(integer, text) RETURNS bigint
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet_shard.posted($2); $$;

CREATE FUNCTION wallet_router.r_recharge(integer, bigint, text, text, text, text) RETURNS bigint
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet_shard.recharge($2, $3::wallet.amount, $4::wallet.amount, $5, $6); $$;

CREATE FUNCTION wallet_router.r_refund_recharge(integer, bigint, text) RETURNS bigint
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet.refund_recharge($2, $3); $$;

CREATE FUNCTION wallet_router.r_balance_at(integer, bigint, timestamptz) RETURNS text
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet.balance_at($2, $3)::text; $$;

CREATE FUNCTION wallet_router.r_add_currency(text, integer, text) RETURNS SETOF boolean
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON ALL;
    SELECT wallet.add_currency($1, $2, $3); $$;

CREATE FUNCTION wallet_router.r_live_setup(text, text, numeric) RETURNS SETOF integer
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON ALL;
    SELECT (wallet.live_setup($1, $2, $3)).singleton::integer; $$;

CREATE FUNCTION wallet_router.r_reverse(integer, bigint, text, text, boolean) RETURNS bigint
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet_shard.reverse($2, $3, $4, $5); $$;

CREATE FUNCTION wallet_router.r_account_status(integer, text, bigint, boolean) RETURNS void
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet_shard.account_action($2, $3, coalesce($4, true)); $$;

CREATE FUNCTION wallet_router.r_request_withdrawal(integer, bigint, text, text) RETURNS bigint
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet_shard.request_withdrawal($2, $3::wallet.amount, $4); $$;

CREATE FUNCTION wallet_router.r_complete_withdrawal(integer, bigint) RETURNS bigint
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet.complete_withdrawal($2); $$;

CREATE FUNCTION wallet_router.r_cancel_withdrawal(integer, bigint) RETURNS void
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet.cancel_withdrawal($2); $$;

CREATE FUNCTION wallet_router.r_statement(integer, bigint, timestamptz, timestamptz)
RETURNS TABLE (txn_id bigint, at timestamptz, kind text, amount text, balance text, metadata jsonb, reverses bigint)
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT s.txn_id, s.at, s.kind, s.amount::text AS amount, s.balance::text AS balance, s.metadata, s.reverses
      FROM wallet.statement($2, $3, $4) s; $$;

CREATE FUNCTION wallet_router.r_open_links(integer)
RETURNS TABLE (dest integer, pending bigint, to_return bigint)
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT l.dest, l.pending, l.to_return FROM wallet_shard.open_links() l; $$;

CREATE FUNCTION wallet_router.r_pending(integer, integer, integer, bigint)
RETURNS TABLE (outbox_id bigint, kind text, to_account bigint, amount text, origin integer)
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT p.outbox_id, p.kind, p.to_account, p.amount::text AS amount, p.origin
      FROM wallet_shard.pending($2, $3, $4) p; $$;

-- (the shard is told which shard the router means: PL/Proxy masks a
-- partition number past the cluster's size into another partition)
CREATE FUNCTION wallet_router.r_receive(integer, integer, bigint[], text[], bigint[], text[])
RETURNS TABLE (outbox_id bigint, status text, txn_id bigint, reason text, recorded_now boolean)
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT r.outbox_id, r.status, r.txn_id, r.reason, r.recorded_now
      FROM wallet_shard.receive($2, $1, $3, $4, $5, $6) r; $$;

CREATE FUNCTION wallet_router.r_ack(integer, integer, bigint[], text[], bigint[], text[], boolean) RETURNS integer
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet_shard.ack($2, $3, $4, $5, $6, $7); $$;

CREATE FUNCTION wallet_router.r_sent_digest()
RETURNS TABLE (shard integer, dest integer, upto bigint, pending_ids bigint[], delivered bigint,
               delivered_hash numeric, returned bigint, returned_hash numeric)
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON ALL;
    SELECT wallet_shard.current_shard() AS shard, d.dest, d.upto, d.pending_ids, d.delivered, d.delivered_hash,
           d.returned, d.returned_hash
      FROM wallet_shard.sent_digest() d; $$;

CREATE FUNCTION wallet_router.r_received_digest(integer, integer, bigint, bigint[])
RETURNS TABLE (received bigint, received_hash numeric, rejected bigint, rejected_hash numeric)
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT d.received, d.received_hash, d.rejected, d.rejected_hash
      FROM wallet_shard.received_digest($2, $3, $4) d; $$;

-- What every shard's inbox holds, per origin (the highest outbox id), and
-- what one shard has drawn from its outbox sequence (wallet_shard 1.0.1).
CREATE FUNCTION wallet_router.r_inbox_heads()
RETURNS TABLE (shard integer, origin integer, last_outbox_id bigint)
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON ALL;
    SELECT wallet_shard.current_shard() AS shard, h.origin, h.last_outbox_id FROM wallet_shard.inbox_heads() h; $$;

CREATE FUNCTION wallet_router.r_outbox_drawn(integer) RETURNS bigint
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet_shard.outbox_drawn(); $$;

CREATE FUNCTION wallet_router.r_verify()
RETURNS TABLE (shard integer, check_name text, ok boolean, detail text)
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON ALL;
    SELECT wallet_shard.current_shard() AS shard, v.check_name, v.ok, v.detail FROM wallet_shard.verify() v; $$;

-- One row of wallet_shard.links() of one shard.
CREATE TYPE wallet_router.link AS (shard integer, peer integer, direction text, kind text, currency text,
                                   status text, messages bigint, units numeric);

CREATE FUNCTION wallet_router.r_links()
RETURNS TABLE (shard integer, peer integer, direction text, kind text, currency text, status text,
               messages bigint, units numeric)
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON ALL;
    SELECT wallet_shard.current_shard() AS shard, l.peer, l.direction, l.kind, l.currency, l.status, l.messages, l.units
      FROM wallet_shard.links() l; $$;

CREATE FUNCTION wallet_router.r_totals()
RETURNS TABLE (shard integer, currency text, all_accounts numeric, clearing numeric)
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON ALL;
    SELECT wallet_shard.current_shard() AS shard, t.currency, t.all_accounts, t.clearing
      FROM wallet_shard.totals() t; $$;

-- Whether an error caught in a handler is a cancel of this session (its
-- statement_timeout, pg_cancel_backend) rather than a statement cancelled
-- on a shard, which PL/Proxy re-raises with the same SQLSTATE 57014 and a
-- "REMOTE ERROR" message.  Handlers that catch query_canceled re-raise the
-- first kind: the caller asked for the call to end.
CREATE FUNCTION wallet_router.local_cancel(sqlstate text, message text) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sqlstate = '57014' AND message NOT LIKE '%REMOTE ERROR%' $$;

-- ============================================================================
-- Delivery
-- ============================================================================

-- Delivers the pending messages of shard src to shard dst (at most
-- max_messages; only those of transaction only_txn when given): fetches
-- them from src (which must answer as shard src: a partition list with
-- shards swapped must not attribute messages to the wrong origin, 55000),
-- posts them on dst (wallet_shard.receive), acknowledges the outcomes on
-- src (wallet_shard.ack).  Each step commits on its shard; a failure
-- between steps leaves the messages pending, and the next delivery finds
-- them already received.  If dst refuses the batch because of one message
-- (a wallet, data or integrity error: its contents differ from what dst
-- recorded, say), each message is tried alone, the others go through, and
-- left_pending names what stayed behind; if dst cannot take the batch at
-- all (unreachable, read-only, a lock timeout, a cancelled statement), the
-- error is raised and the next call retries.  The outcomes are
-- acknowledged on src in one call, the returns of rejected messages (unless
-- only_txn is given) in another, which runs even when dst could not be
-- reached (returns need only src); a failed return retry is reported in
-- left_pending.  delivered and rejected count the outcomes this call recorded
-- (not the ones another delivery recorded first).
CREATE FUNCTION wallet_router.relay_link(src integer, dst integer, max_messages integer,
                                         only_txn bigint DEFAULT NULL,
                                         OUT delivered integer, OUT rejected integer, OUT left_pending text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := wallet_router.shard_count();
    ids bigint[];
    kinds text[];
    accts bigint[];
    amts text[];
    origins integer[];
    r_ids bigint[] := '{}';
    r_sts text[] := '{}';
    r_txns bigint[] := '{}';
    r_whys text[] := '{}';
    r_now boolean[] := '{}';
    rec record;
    err_state text;
    err_msg text;
    stuck integer := 0;
    first_stuck text;
BEGIN
    IF src < 0 OR src >= n OR dst < 0 OR dst >= n THEN
        RAISE EXCEPTION 'shard % is not in the cluster of % shards', CASE WHEN src < 0 OR src >= n THEN src ELSE dst END, n
            USING ERRCODE = '22023',
                  DETAIL = 'A message names a shard past the partitions of the PL/Proxy cluster wallet_shards.',
                  HINT = 'Add the partitions to wallet_shards before configuring shards with a larger count.';
    END IF;
    SELECT coalesce(array_agg(p.outbox_id ORDER BY p.outbox_id), '{}'), array_agg(p.kind ORDER BY p.outbox_id),
           array_agg(p.to_account ORDER BY p.outbox_id), array_agg(p.amount ORDER BY p.outbox_id),
           array_agg(DISTINCT p.origin)
      INTO ids, kinds, accts, amts, origins
      FROM wallet_router.r_pending(src, dst, max_messages, only_txn) p;
    IF cardinality(ids) > 0 AND origins <> ARRAY[src] THEN
        RAISE EXCEPTION 'partition % of wallet_shards is shard %', src, origins[1] USING ERRCODE = '55000',
            DETAIL = 'The partition list of the PL/Proxy cluster does not match the shards'' configuration.',
            HINT = 'List the shards in wallet_shards in the order of their numbers (p<k> is shard k).';
    END IF;
    IF cardinality(ids) > 0 THEN
        BEGIN
            SELECT array_agg(r.outbox_id ORDER BY r.outbox_id), array_agg(r.status ORDER BY r.outbox_id),
                   array_agg(r.txn_id ORDER BY r.outbox_id), array_agg(r.reason ORDER BY r.outbox_id),
                   array_agg(r.recorded_now ORDER BY r.outbox_id)
              INTO r_ids, r_sts, r_txns, r_whys, r_now
              FROM wallet_router.r_receive(dst, src, ids, kinds, accts, amts) r;
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            err_state := SQLSTATE;
            err_msg := SQLERRM;
            IF wallet_router.local_cancel(err_state, err_msg) THEN
                RAISE;   -- this session was cancelled, not the shard's statement
            END IF;
            IF left(err_state, 2) NOT IN ('WL', '22', '23') OR cardinality(ids) = 1 THEN
                -- the batch could not be taken at all: still retry the
                -- returns on src, then report the error
                IF only_txn IS NULL THEN
                    BEGIN
                        PERFORM wallet_router.r_ack(src, dst, '{}', '{}', '{}', '{}', true);
                    EXCEPTION WHEN OTHERS OR query_canceled THEN
                        IF wallet_router.local_cancel(SQLSTATE, SQLERRM) THEN
                            RAISE;
                        END IF;
                        -- the pair reports the delivery's error below
                    END;
                END IF;
                RAISE EXCEPTION '%', err_msg USING ERRCODE = err_state;
            END IF;
            r_ids := '{}'; r_sts := '{}'; r_txns := '{}'; r_whys := '{}'; r_now := '{}';
            FOR i IN 1 .. cardinality(ids) LOOP
                BEGIN
                    SELECT r.outbox_id, r.status, r.txn_id, r.reason, r.recorded_now INTO STRICT rec
                      FROM wallet_router.r_receive(dst, src, ARRAY[ids[i]], ARRAY[kinds[i]], ARRAY[accts[i]],
                                                   ARRAY[amts[i]]) r;
                    r_ids := r_ids || rec.outbox_id;
                    r_sts := r_sts || rec.status;
                    r_txns := r_txns || rec.txn_id;
                    r_whys := r_whys || rec.reason;
                    r_now := r_now || rec.recorded_now;
                EXCEPTION WHEN OTHERS OR query_canceled THEN
                    IF wallet_router.local_cancel(SQLSTATE, SQLERRM) THEN
                        RAISE;
                    END IF;
                    stuck := stuck + 1;
                    IF first_stuck IS NULL THEN
                        first_stuck := format('message %s: %s: %s', ids[i], SQLSTATE, SQLERRM);
                    END IF;
                END;
            END LOOP;
        END;
    END IF;
    SELECT count(*) FILTER (WHERE u.st = 'received' AND u.now), count(*) FILTER (WHERE u.st = 'rejected' AND u.now)
      INTO delivered, rejected
      FROM unnest(r_sts, r_now) AS u(st, now);
    IF stuck > 0 THEN
        left_pending := format('%s message(s) left pending, first %s', stuck, first_stuck);
    END IF;
    -- the outcomes first, on their own: a sender's account busy during a
    -- return must not hold back the others' acknowledgements
    IF cardinality(r_ids) > 0 THEN
        PERFORM wallet_router.r_ack(src, dst, r_ids, r_sts, r_txns, r_whys, false);
    END IF;
    IF only_txn IS NULL THEN
        BEGIN
            PERFORM wallet_router.r_ack(src, dst, '{}', '{}', '{}', '{}', true);
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            IF wallet_router.local_cancel(SQLSTATE, SQLERRM) THEN
                RAISE;
            END IF;
            left_pending := concat_ws('; ', left_pending, format('returns not retried: %s: %s', SQLSTATE, SQLERRM));
        END;
    END IF;
END
$$;

-- Delivers every pending message between every two shards (at most
-- max_messages per pair and call) and retries returns; one row per pair
-- that had anything to do, with the error that stopped it or the messages
-- it left pending, if any (a shard down: its pairs report the error, with
-- to_shard NULL when the sending shard itself cannot be reached, and the
-- other pairs are served; the next call retries).
-- Safe to run from several sessions at once (a message is posted once
-- whoever delivers it; the second of two deliveries of one message at once
-- waits for the first and returns the outcome it recorded).  Call it from cron or a loop; each transfer
-- and gift also delivers its own message.
CREATE FUNCTION wallet.relay(max_messages integer DEFAULT 1000)
RETURNS TABLE (from_shard integer, to_shard integer, delivered integer, rejected integer, error text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := wallet_router.shard_count();
    l record;
    r record;
BEGIN
    IF max_messages IS NULL THEN
        RAISE EXCEPTION 'max_messages must not be null' USING ERRCODE = '22004',
            DETAIL = 'It bounds the messages delivered per pair of shards and call.';
    END IF;
    IF max_messages < 1 THEN
        RAISE EXCEPTION 'max_messages must be positive, got %', max_messages
            USING ERRCODE = '22023', DETAIL = 'It bounds the messages delivered per pair of shards and call.';
    END IF;
    FOR src IN 0 .. n - 1 LOOP
        BEGIN
            FOR l IN SELECT o.dest FROM wallet_router.r_open_links(src) o ORDER BY o.dest LOOP
                from_shard := src; to_shard := l.dest; delivered := 0; rejected := 0; error := NULL;
                BEGIN
                    r := wallet_router.relay_link(src, l.dest, max_messages);
                    delivered := r.delivered; rejected := r.rejected; error := r.left_pending;
                EXCEPTION WHEN OTHERS OR query_canceled THEN
                    -- a statement cancelled on a shard is that pair's error;
                    -- this session being cancelled ends the call
                    IF wallet_router.local_cancel(SQLSTATE, SQLERRM) THEN
                        RAISE;
                    END IF;
                    error := format('%s: %s', SQLSTATE, SQLERRM);
                END;
                RETURN NEXT;
            END LOOP;
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            IF wallet_router.local_cancel(SQLSTATE, SQLERRM) THEN
                RAISE;
            END IF;
            -- the sending shard cannot be asked: its pairs wait for the next call
            from_shard := src; to_shard := NULL; delivered := 0; rejected := 0;
            error := format('%s: %s', SQLSTATE, SQLERRM);
            RETURN NEXT;
        END;
    END LOOP;
END
$$;

-- Best-effort delivery of a message right after it was sent (its fields
-- as wallet_shard.send_routed returned them): posted on dst, acknowledged
-- on src.  Any error leaves it to wallet.relay() (the sending transaction
-- has committed on its shard whatever happens here).
CREATE FUNCTION wallet_router.deliver_now(src integer, dst integer, outbox_id bigint, message_kind text,
                                          message_to bigint, message_amount text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    IF outbox_id IS NULL THEN
        RETURN;
    END IF;
    SELECT x.outbox_id, x.status, x.txn_id, x.reason INTO STRICT r
      FROM wallet_router.r_receive(dst, src, ARRAY[outbox_id], ARRAY[message_kind], ARRAY[message_to],
                                   ARRAY[message_amount]) x;
    PERFORM wallet_router.r_ack(src, dst, ARRAY[r.outbox_id], ARRAY[r.status], ARRAY[r.txn_id], ARRAY[r.reason], false);
EXCEPTION WHEN OTHERS OR query_canceled THEN
    -- whatever the shards answered, a statement cancelled there included:
    -- the send has committed, and the caller gets its transaction id.  A
    -- cancel of this session itself (the caller's statement_timeout or
    -- pg_cancel_backend) still ends the call; a retry with the same key
    -- returns the id.
    IF wallet_router.local_cancel(SQLSTATE, SQLERRM) THEN
        RAISE;
    END IF;
    RAISE DEBUG 'wallet: delivery of message % from shard % to % left to wallet.relay(): %', outbox_id, src, dst, SQLERRM;
END
$$;

-- ============================================================================
-- Idempotency keys across the cluster
-- ============================================================================

-- A client's key, checked as a node checks it (22004 null; 22023 not 1 to
-- 200 bytes, or in the reserved "wallet:" prefix) before the router claims
-- it: a client must not claim the engine's own keys.
CREATE FUNCTION wallet_router.check_client_key(idempotency_key text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF idempotency_key IS NULL THEN
        RAISE EXCEPTION 'idempotency_key must not be null' USING ERRCODE = '22004',
            DETAIL = 'Every posting needs a key, so that a retry never posts twice.';
    END IF;
    IF octet_length(idempotency_key) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'idempotency_key must be 1 to 200 bytes, got %', octet_length(idempotency_key)
            USING ERRCODE = '22023', DETAIL = format('The key has %s bytes.', octet_length(idempotency_key));
    END IF;
    IF starts_with(idempotency_key, 'wallet:') THEN
        RAISE EXCEPTION 'idempotency keys starting with "wallet:" are reserved' USING ERRCODE = '22023',
            DETAIL = format('Key: "%s".', idempotency_key),
            HINT = 'The wallet uses them for its own postings (hold captures, store orders, refunds).';
    END IF;
END
$$;

-- The router's settings: one row.  claim_shards: keys are claimed on
-- shards 0 .. claim_shards - 1 (hashtext(key) & (claim_shards - 1)).  The
-- cluster's value lives on the shards (wallet_shard.config.claim_shards);
-- this row caches it.
CREATE TABLE wallet_router.settings (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    claim_shards  integer NOT NULL CHECK (claim_shards BETWEEN 1 AND 32768 AND claim_shards & (claim_shards - 1) = 0)
);
SELECT pg_catalog.pg_extension_config_dump('wallet_router.settings', '');

-- The number of claim shards.  Cached on the router; otherwise read from
-- the first shard that knows it (unreachable shards are skipped); when no
-- shard knows it (the cluster's first claim), the shard count now, recorded
-- on every shard first (wallet_shard.set_claim_shards, each in its own
-- commit) and then here.  A claim shard that missed it (down then, or
-- restored from an older dump) gets it at its next claim
-- (wallet_router.claim).  Adding shards never changes it: keys stay where
-- they were claimed, and a router set up after the growth finds the count
-- on the old shards.  Call it once before adding shards for the first time.
CREATE FUNCTION wallet_router.claim_shards() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c integer;
    k integer;
    n integer;
    unreachable text;
BEGIN
    SELECT s.claim_shards INTO c FROM wallet_router.settings s;
    IF FOUND THEN
        RETURN c;
    END IF;
    n := wallet_router.shard_count();
    IF n = 0 THEN
        PERFORM wallet.shard_of(1);   -- raises the "no cluster" error
    END IF;
    -- the first shard that knows the count (shards that know it agree:
    -- each claim shard checks it at every claim), or none
    FOR i IN 0 .. n - 1 LOOP
        BEGIN
            k := wallet_router.r_known_claim_shards_on(i);
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            IF wallet_router.local_cancel(SQLSTATE, SQLERRM) THEN
                RAISE;
            END IF;
            unreachable := concat_ws(', ', unreachable, i::text);
            k := NULL;
        END;
        IF k IS NOT NULL THEN
            c := k;
            EXIT;
        END IF;
    END LOOP;
    IF c IS NULL THEN
        IF unreachable IS NOT NULL THEN
            RAISE EXCEPTION 'cannot tell where keys are claimed: shards % do not answer', unreachable
                USING ERRCODE = '55000',
                      DETAIL = 'No shard that answered knows the claim-shard count, and one that does not answer might.';
        END IF;
        -- the cluster's first claim: the shard count now, on every shard
        c := n;
        PERFORM wallet_router.r_set_claim_shards(c);
    END IF;
    INSERT INTO wallet_router.settings (claim_shards) VALUES (c) ON CONFLICT DO NOTHING;
    RETURN c;
END
$$;

-- An amount's text in a form that does not depend on any shard's currency
-- registry, so that '5 USD', '5.00 usd' and ' 5.0 USD' claim as one
-- request: trimmed number and upper-case code when the text is
-- "<number> <code>", the trimmed text otherwise (the shard then parses it
-- and raises what a node would).
CREATE FUNCTION wallet_router.canonical_amount(amount text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m text[] := regexp_match(amount, '^\s*([-+]?[0-9]+(\.[0-9]*)?)\s+([A-Za-z][A-Za-z0-9]{2,7})\s*$');
BEGIN
    IF m IS NULL THEN
        RETURN btrim(amount);
    END IF;
    RETURN trim_scale(m[1]::numeric)::text || ' ' || upper(m[3]);
END
$$;

-- Claims a key for a request on its home shard (wallet_shard.claim_key):
-- true for a new claim, false for a retry of the same request; WL006
-- when another request holds it.  Namespaces: 'txn:' for postings,
-- 'hold:' for holds (a node keeps them apart too).  The request's
-- "amount", "coins" and "paid" are put in canonical text first.
CREATE FUNCTION wallet_router.claim(idempotency_key text, request jsonb) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c integer := wallet_router.claim_shards();
    req jsonb := request;
    f text;
    home integer;
BEGIN
    FOREACH f IN ARRAY ARRAY['amount', 'coins', 'paid'] LOOP
        IF req ? f AND jsonb_typeof(req -> f) = 'string' THEN
            req := jsonb_set(req, ARRAY[f], to_jsonb(wallet_router.canonical_amount(req ->> f)));
        END IF;
    END LOOP;
    home := hashtext(idempotency_key) & (c - 1);
    BEGIN
        RETURN wallet_router.r_claim_key(home, idempotency_key, req, c);
    EXCEPTION WHEN SQLSTATE '55000' THEN
        -- a claim shard that missed the count (down at the first claim, or
        -- restored from a dump taken before it): record it there, once
        IF SQLERRM NOT LIKE '%does not know where keys are claimed%' THEN
            RAISE;
        END IF;
        PERFORM wallet_router.r_set_claim_shards_on(home, c);
        RETURN wallet_router.r_claim_key(home, idempotency_key, req, c);
    END;
END
$$;

-- Whether a receiver or creator check is due before sending: for a new
-- request, and for a retry whose first attempt posted nothing on the
-- sender's shard (it was refused, or never got there); not for a retry
-- of a posted request, which returns that posting whatever became of the
-- receiver.
CREATE FUNCTION wallet_router.check_due(fresh boolean, src integer, idempotency_key text) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN fresh THEN true ELSE wallet_router.r_posted(src, idempotency_key) IS NULL END $$;

-- ============================================================================
-- The routed API (schema wallet)
-- ============================================================================

-- Opens an account on the shard chosen by hashtext(owner) (an owner's
-- accounts live together), or on `shard` with open_account_on.  Returns
-- its id, which names that shard.  Errors: those of wallet.open_account.
CREATE FUNCTION wallet.open_account(owner text, currency text, kind text DEFAULT 'user',
                                    allow_negative boolean DEFAULT false, metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := wallet_router.shard_count();
BEGIN
    IF owner IS NULL THEN
        RAISE EXCEPTION 'wallet.open_account: owner must not be null'
            USING ERRCODE = '22004', DETAIL = 'The owner places the account (hashtext(owner) picks its shard).';
    END IF;
    IF n = 0 THEN
        PERFORM wallet.shard_of(1);   -- raises the "no cluster" error
    END IF;
    RETURN wallet_router.r_open_account(hashtext(owner) & (n - 1), owner, currency, kind, allow_negative, metadata);
END
$$;

CREATE FUNCTION wallet.open_account_on(shard integer, owner text, currency text, kind text DEFAULT 'user',
                                       allow_negative boolean DEFAULT false, metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := wallet_router.shard_count();
BEGIN
    IF shard IS NULL THEN
        RAISE EXCEPTION 'shard must not be null' USING ERRCODE = '22004',
            DETAIL = format('Name one of the %s shards (0 to %s).', n, n - 1);
    END IF;
    IF shard < 0 OR shard >= n THEN
        RAISE EXCEPTION 'shard must be in [0, %), got %', n, shard USING ERRCODE = '22023',
            DETAIL = format('The cluster wallet_shards has %s shards.', n);
    END IF;
    RETURN wallet_router.r_open_account(shard, owner, currency, kind, allow_negative, metadata);
END
$$;

-- Posted and available balance of an account, as text ('12.50 USD').
CREATE FUNCTION wallet.balance(account bigint) RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT wallet_router.r_balance(wallet.shard_of(account), account) $$;

CREATE FUNCTION wallet.available(account bigint) RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT wallet_router.r_available(wallet.shard_of(account), account) $$;

-- A transfer.  Its key is claimed for the cluster first (see
-- wallet_router.claim: the same key with another request is WL006 whatever
-- the shards).  Both accounts on one shard: wallet.transfer there.  On two
-- shards: a new request checks the receiver first (WL002-WL005 at once; a
-- retry skips this, so it returns the first transaction even if the
-- receiver changed since or its shard is down), then the sender's shard
-- posts the debit and queues the credit (wallet_shard.send), and the
-- credit is delivered before returning when the receiving shard answers
-- (else by wallet.relay()).  Returns the transaction id on the sender's
-- shard.
CREATE FUNCTION wallet.transfer(from_account bigint, to_account bigint, amount text, idempotency_key text,
                                kind text DEFAULT 'transfer', metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src integer;
    dst integer;
    fresh boolean;
    sent record;
BEGIN
    IF from_account IS NULL OR to_account IS NULL OR amount IS NULL OR idempotency_key IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'wallet.transfer: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN from_account IS NULL THEN 'from_account' END,
                            CASE WHEN to_account IS NULL THEN 'to_account' END, CASE WHEN amount IS NULL THEN 'amount' END,
                            CASE WHEN idempotency_key IS NULL THEN 'idempotency_key' END, CASE WHEN kind IS NULL THEN 'kind' END));
    END IF;
    src := wallet.shard_of(from_account);
    dst := wallet.shard_of(to_account);
    PERFORM wallet_router.check_client_key(idempotency_key);
    fresh := wallet_router.claim('txn:' || idempotency_key,
                                 jsonb_build_object('call', 'transfer', 'from', from_account, 'to', to_account,
                                                    'amount', amount, 'kind', kind, 'metadata', metadata));
    IF src <> dst AND wallet_router.check_due(fresh, src, idempotency_key) THEN
        PERFORM wallet_router.r_check_receiver(dst, to_account, amount);
    END IF;
    SELECT * INTO sent FROM wallet_router.r_send(src, 'transfer', from_account, to_account, amount, idempotency_key,
                                                 kind, metadata);
    IF src <> dst THEN
        PERFORM wallet_router.deliver_now(src, dst, sent.outbox_id, sent.message_kind, sent.message_to,
                                          sent.message_amount);
    END IF;
    RETURN sent.txn_id;
END
$$;

-- A gift (see wallet.gift on a node), its key claimed like a transfer's.
-- Viewer and creator on one shard: wallet.gift there.  On two: a new
-- request checks the creator on its shard first (as wallet.gift does:
-- WL002-WL005), the coins move on the viewer's shard and the creator's
-- shard issues the diamonds (wallet_shard.send_gift), delivered as for
-- transfers.  Returns the transaction id on the viewer's shard.
CREATE FUNCTION wallet.gift(viewer_account bigint, creator_account bigint, coins text,
                            idempotency_key text, metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src integer;
    dst integer;
    fresh boolean;
    sent record;
BEGIN
    IF viewer_account IS NULL OR creator_account IS NULL OR coins IS NULL OR idempotency_key IS NULL THEN
        RAISE EXCEPTION 'wallet.gift: viewer_account, creator_account, coins and idempotency_key must not be null'
            USING ERRCODE = '22004',
                  DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN viewer_account IS NULL THEN 'viewer_account' END,
                                  CASE WHEN creator_account IS NULL THEN 'creator_account' END, CASE WHEN coins IS NULL THEN 'coins' END,
                                  CASE WHEN idempotency_key IS NULL THEN 'idempotency_key' END));
    END IF;
    src := wallet.shard_of(viewer_account);
    dst := wallet.shard_of(creator_account);
    PERFORM wallet_router.check_client_key(idempotency_key);
    fresh := wallet_router.claim('txn:' || idempotency_key,
                                 jsonb_build_object('call', 'gift', 'viewer', viewer_account, 'creator', creator_account,
                                                    'coins', coins, 'metadata', metadata));
    IF src <> dst AND wallet_router.check_due(fresh, src, idempotency_key) THEN
        PERFORM wallet_router.r_check_creator(dst, creator_account);
    END IF;
    SELECT * INTO sent FROM wallet_router.r_send(src, 'gift', viewer_account, creator_account, coins, idempotency_key,
                                                 NULL, metadata);
    IF src <> dst THEN
        PERFORM wallet_router.deliver_now(src, dst, sent.outbox_id, sent.message_kind, sent.message_to,
                                          sent.message_amount);
    END IF;
    RETURN sent.txn_id;
END
$$;

-- Coins bought in a store, on the user's shard (wallet.recharge there).
-- The store order ('wallet:recharge:<channel>:<external_id>') is claimed
-- for the cluster first, so one receipt is redeemed once whatever shard
-- the account lives on (another account or amount with it: WL006).
CREATE FUNCTION wallet.recharge(user_account bigint, coins text, paid text, channel text, external_id text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s integer;
BEGIN
    IF user_account IS NULL OR coins IS NULL OR paid IS NULL OR channel IS NULL OR external_id IS NULL THEN
        RAISE EXCEPTION 'wallet.recharge: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN user_account IS NULL THEN 'user_account' END,
                            CASE WHEN coins IS NULL THEN 'coins' END, CASE WHEN paid IS NULL THEN 'paid' END,
                            CASE WHEN channel IS NULL THEN 'channel' END, CASE WHEN external_id IS NULL THEN 'external_id' END));
    END IF;
    -- the node's own checks, before the claim (1.0.1): ('web:x', 'o9') and
    -- ('web', 'x:o9') would otherwise claim the same key
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
    s := wallet.shard_of(user_account);
    PERFORM wallet_router.claim(format('txn:wallet:recharge:%s:%s', channel, external_id),
                                jsonb_build_object('call', 'recharge', 'user', user_account, 'coins', coins, 'paid', paid));
    RETURN wallet_router.r_recharge(s, user_account, coins, paid, channel, external_id);
END
$$;

-- A store refund or chargeback of a recharge (wallet.refund_recharge on
-- the recharge's shard: its id names it).  Idempotent per recharge there
-- (key 'wallet:refund:<tx_id>'), so no claim is needed.
CREATE FUNCTION wallet.refund_recharge(tx_id bigint, reason text) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT wallet_router.r_refund_recharge(wallet.shard_of(tx_id), tx_id, reason) $$;

-- An account's balance at a moment (wallet.balance_at on its shard), as text.
CREATE FUNCTION wallet.balance_at(account bigint, at timestamptz) RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT wallet_router.r_balance_at(wallet.shard_of(account), account, at) $$;

-- wallet.add_currency on every shard (a currency a shard lacks turns every
-- message in it into a rejection there); returns the number of shards that
-- added it (false where it existed already with the same minor units).
CREATE FUNCTION wallet.add_currency(code text, minor_units integer, name text) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT count(*) FILTER (WHERE a)::integer FROM wallet_router.r_add_currency(code, minor_units, name) a $$;

-- wallet.live_setup on every shard (each has its own system accounts);
-- returns the number of shards set up.
CREATE FUNCTION wallet.live_setup(coin_currency text DEFAULT 'COIN', diamond_currency text DEFAULT 'DIAMOND',
                                  creator_share numeric DEFAULT 0.5)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT count(*)::integer FROM wallet_router.r_live_setup(coin_currency, diamond_currency, creator_share) $$;

-- wallet.reverse on the transaction's shard; a transaction that moved
-- money between shards is refused (22023, see wallet_shard.reverse).
CREATE FUNCTION wallet.reverse(tx_id bigint, idempotency_key text, reason text DEFAULT NULL,
                               allow_negative boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s integer := wallet.shard_of(tx_id);
BEGIN
    IF allow_negative IS NULL THEN
        RAISE EXCEPTION 'allow_negative must not be null' USING ERRCODE = '22004',
            DETAIL = 'Leave it out for the default (false).';
    END IF;
    PERFORM wallet_router.check_client_key(idempotency_key);
    PERFORM wallet_router.claim('txn:' || idempotency_key,
                                jsonb_build_object('call', 'reverse', 'tx_id', tx_id, 'reason', reason,
                                                   'allow_negative', allow_negative));
    RETURN wallet_router.r_reverse(s, tx_id, idempotency_key, reason, allow_negative);
END
$$;

CREATE FUNCTION wallet.freeze_account(id bigint) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT wallet_router.r_account_status(wallet.shard_of(id), 'freeze', id, NULL) $$;

CREATE FUNCTION wallet.unfreeze_account(id bigint) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT wallet_router.r_account_status(wallet.shard_of(id), 'unfreeze', id, NULL) $$;

CREATE FUNCTION wallet.close_account(id bigint) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT wallet_router.r_account_status(wallet.shard_of(id), 'close', id, NULL) $$;

-- (1.0.1: a null flag is 22004, as on a node; 1.0.0 read it as true)
CREATE FUNCTION wallet.set_hot(id bigint, hot boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF id IS NULL OR hot IS NULL THEN
        RAISE EXCEPTION 'wallet.set_hot: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = format('Account %s, hot %s.', coalesce(id::text, 'NULL'), coalesce(hot::text, 'NULL'));
    END IF;
    PERFORM wallet_router.r_account_status(wallet.shard_of(id), 'hot', id, hot);
END
$$;

-- Withdrawals: the hold lives on the creator's shard, so its id names it.
-- (holds keep their own key space, claimed as 'hold:<key>')
CREATE FUNCTION wallet.request_withdrawal(creator_account bigint, amount text, idempotency_key text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s integer := wallet.shard_of(creator_account);
BEGIN
    IF amount IS NULL THEN
        RAISE EXCEPTION 'amount must not be null' USING ERRCODE = '22004', DETAIL = 'The amount to withdraw is null.';
    END IF;
    PERFORM wallet_router.check_client_key(idempotency_key);
    PERFORM wallet_router.claim('hold:' || idempotency_key,
                                jsonb_build_object('call', 'request_withdrawal', 'creator', creator_account,
                                                   'amount', amount));
    RETURN wallet_router.r_request_withdrawal(s, creator_account, amount, idempotency_key);
END
$$;

CREATE FUNCTION wallet.complete_withdrawal(hold_id bigint) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT wallet_router.r_complete_withdrawal(wallet.shard_of(hold_id), hold_id) $$;

CREATE FUNCTION wallet.cancel_withdrawal(hold_id bigint) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT wallet_router.r_cancel_withdrawal(wallet.shard_of(hold_id), hold_id) $$;

-- An account's statement, from its shard (amounts as text).
CREATE FUNCTION wallet.statement(account bigint, since timestamptz DEFAULT '-infinity',
                                 until timestamptz DEFAULT 'infinity')
RETURNS TABLE (txn_id bigint, at timestamptz, kind text, amount text, balance text, metadata jsonb, reverses bigint)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM wallet_router.r_statement(wallet.shard_of(account), account, since, until) $$;

-- The global verify: every shard's checks (wallet.verify() and the
-- wallet_shard checks, named 'shard <k>: <check>'), then across shards:
--   links_consistent: for every ordered pair of shards, kind and currency,
--     the counts agree: what the receiver recorded is bounded by what the
--     sender sent, delivered and returned (the shards are read at different
--     moments: see below); the detail names the money still in flight;
--   messages_match: message by message, every message the sender settled
--     is settled the same way on the receiver: each delivered one was
--     received there with the same amount and the transaction the sender
--     recorded, each returned one was rejected there, and the receiver has
--     no other settled message of that sender's up to the sender's horizon
--     (wallet_shard.sent_digest waits for the sends in flight, so no lower
--     outbox id can still appear; messages still pending at the sender are
--     left out on both sides), and no receiver holds a message its sender
--     never drew: every inbox is read first, then each sender's outbox
--     sequence (a message is drawn before it is received), so a received
--     id above it was made up on the receiving shard (1.0.2; the digests
--     stop at the senders' horizons and could not see it);
--   global_conservation: per currency, the balances of every account on
--     every shard sum to zero (each posting balances on its shard; a
--     cross-shard transfer is two such postings), with the money in the
--     clearing accounts (in flight) in the detail.
CREATE FUNCTION wallet.verify()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad text;
    flight text;
    skipped text;
    rd_before wallet_router.link[];
    rd_sent wallet_router.link[];
    rd_after wallet_router.link[];
BEGIN
    RETURN QUERY SELECT format('shard %s: %s', v.shard, v.check_name), v.ok, v.detail
                   FROM wallet_router.r_verify() v ORDER BY v.shard;
    -- The shards are read at different moments, and a message goes pending
    -- (sender) -> received (receiver) -> delivered (sender).  So the
    -- receivers' side is read twice, before and after the senders' side:
    -- what was received by the first read was sent by the second (upper
    -- bound), and what was delivered by the second read was received by the
    -- third (lower bound).  Exact when nothing moves.
    rd_before := ARRAY(SELECT ROW(l.*)::wallet_router.link FROM wallet_router.r_links() l WHERE l.direction = 'in');
    rd_sent := ARRAY(SELECT ROW(l.*)::wallet_router.link FROM wallet_router.r_links() l WHERE l.direction = 'out');
    rd_after := ARRAY(SELECT ROW(l.*)::wallet_router.link FROM wallet_router.r_links() l WHERE l.direction = 'in');
    WITH outs AS (
        SELECT l.shard AS src, l.peer AS dst, l.kind, l.currency,
               coalesce(sum(l.messages) FILTER (WHERE l.status = 'delivered'), 0) AS d_n,
               coalesce(sum(l.units) FILTER (WHERE l.status = 'delivered'), 0) AS d_u,
               coalesce(sum(l.messages) FILTER (WHERE l.status = 'pending'), 0) AS p_n,
               coalesce(sum(l.units) FILTER (WHERE l.status = 'pending'), 0) AS p_u,
               coalesce(sum(l.messages) FILTER (WHERE l.status IN ('returning', 'bounced')), 0) AS b_n,
               coalesce(sum(l.units) FILTER (WHERE l.status IN ('returning', 'bounced')), 0) AS b_u,
               coalesce(sum(l.units) FILTER (WHERE l.status = 'returning'), 0) AS r_u
          FROM unnest(rd_sent) l GROUP BY 1, 2, 3, 4),
    ins AS (
        SELECT x.src, x.dst, x.kind, x.currency,
               -- first read: upper bound
               coalesce(sum(x.messages) FILTER (WHERE x.status = 'received' AND x.rd = 1), 0) AS g_n,
               coalesce(sum(x.units) FILTER (WHERE x.status = 'received' AND x.rd = 1), 0) AS g_u,
               coalesce(sum(x.messages) FILTER (WHERE x.status = 'rejected' AND x.rd = 1), 0) AS j_n,
               coalesce(sum(x.units) FILTER (WHERE x.status = 'rejected' AND x.rd = 1), 0) AS j_u,
               -- second read: lower bound
               coalesce(sum(x.messages) FILTER (WHERE x.status = 'received' AND x.rd = 2), 0) AS g2_n,
               coalesce(sum(x.units) FILTER (WHERE x.status = 'received' AND x.rd = 2), 0) AS g2_u,
               coalesce(sum(x.messages) FILTER (WHERE x.status = 'rejected' AND x.rd = 2), 0) AS j2_n,
               coalesce(sum(x.units) FILTER (WHERE x.status = 'rejected' AND x.rd = 2), 0) AS j2_u
          FROM (SELECT b.peer AS src, b.shard AS dst, b.kind, b.currency, b.status, b.messages, b.units, 1 AS rd FROM unnest(rd_before) b
                UNION ALL
                SELECT a.peer, a.shard, a.kind, a.currency, a.status, a.messages, a.units, 2 FROM unnest(rd_after) a) x
         GROUP BY 1, 2, 3, 4),
    pairs AS (
        SELECT coalesce(o.src, i.src) AS src, coalesce(o.dst, i.dst) AS dst, coalesce(o.kind, i.kind) AS kind,
               coalesce(o.currency, i.currency) AS currency,
               coalesce(o.d_n, 0) AS d_n, coalesce(o.d_u, 0) AS d_u, coalesce(o.p_n, 0) AS p_n,
               coalesce(o.p_u, 0) AS p_u, coalesce(o.b_n, 0) AS b_n, coalesce(o.b_u, 0) AS b_u,
               coalesce(o.r_u, 0) AS r_u,
               coalesce(i.g_n, 0) AS g_n, coalesce(i.g_u, 0) AS g_u, coalesce(i.j_n, 0) AS j_n, coalesce(i.j_u, 0) AS j_u,
               coalesce(i.g2_n, 0) AS g2_n, coalesce(i.g2_u, 0) AS g2_u, coalesce(i.j2_n, 0) AS j2_n,
               coalesce(i.j2_u, 0) AS j2_u
          FROM outs o FULL JOIN ins i ON i.src = o.src AND i.dst = o.dst AND i.kind = o.kind AND i.currency = o.currency)
    -- messages by count; money (units) by the received ones only: a
    -- rejected message moved nothing on the receiving shard
    SELECT string_agg(CASE WHEN NOT (p.g_n + p.j_n <= p.d_n + p.b_n + p.p_n AND p.g_u <= p.d_u + p.p_u
                                     AND p.d_n <= p.g2_n AND p.d_u <= p.g2_u AND p.b_n <= p.j2_n)
                           THEN format('%s -> %s %s %s: sent delivered %s (%s), pending %s (%s), returned %s (%s); received %s (%s), rejected %s (%s)',
                                       p.src, p.dst, p.kind, p.currency, p.d_n, p.d_u, p.p_n, p.p_u, p.b_n, p.b_u,
                                       p.g_n, p.g_u, p.j_n, p.j_u) END, '; ' ORDER BY p.src, p.dst, p.kind, p.currency),
           string_agg(CASE WHEN p.p_u + p.r_u > 0
                           THEN format('%s -> %s %s %s: %s pending', p.src, p.dst, p.kind, p.currency, p.p_u + p.r_u) END,
                      '; ' ORDER BY p.src, p.dst, p.kind, p.currency)
      INTO bad, flight
      FROM pairs p;
    check_name := 'links_consistent'; ok := bad IS NULL;
    detail := coalesce(bad, 'in flight: ' || coalesce(flight, 'nothing'));
    RETURN NEXT;

    -- message by message, through hash sums (see the comment above); a
    -- sender that could not wait for its writers (upto NULL) is skipped
    SELECT string_agg(format('%s -> %s: sender settled %s delivered and %s returned up to message %s; receiver has %s received and %s rejected, %s',
                             d.shard, d.dest, d.delivered, d.returned, d.upto, r.received, r.rejected,
                             CASE WHEN d.delivered = r.received AND d.returned = r.rejected
                                  THEN 'the same counts but other messages (receiver, amount or transaction)'
                                  ELSE 'other counts' END), '; ' ORDER BY d.shard, d.dest)
             FILTER (WHERE d.upto IS NOT NULL
                       AND (d.delivered, d.delivered_hash, d.returned, d.returned_hash)
                           IS DISTINCT FROM (r.received, r.received_hash, r.rejected, r.rejected_hash)),
           string_agg(format('%s -> %s', d.shard, d.dest), ', ' ORDER BY d.shard, d.dest) FILTER (WHERE d.upto IS NULL)
      INTO bad, skipped
      FROM (SELECT x.shard, x.dest, x.delivered, x.delivered_hash, x.returned, x.returned_hash, x.pending_ids,
                   CASE WHEN x.dest < wallet_router.shard_count() THEN x.upto END AS upto
              FROM wallet_router.r_sent_digest() x) d
      LEFT JOIN LATERAL (SELECT * FROM wallet_router.r_received_digest(d.dest, d.shard, d.upto, d.pending_ids) x
                          WHERE d.upto IS NOT NULL) r ON true;
    -- messages no sender drew (see above): inboxes first, senders after
    DECLARE
        heads record;
        drawn bigint;
        forged text;
    BEGIN
        FOR heads IN SELECT h.shard, h.origin, h.last_outbox_id
                       FROM (SELECT ARRAY(SELECT ROW(x.shard, x.origin, x.last_outbox_id)
                                            FROM wallet_router.r_inbox_heads() x) AS a) m,
                            unnest(m.a) AS h(shard integer, origin integer, last_outbox_id bigint)
                      ORDER BY h.origin, h.shard LOOP
            IF heads.origin >= wallet_router.shard_count() THEN
                CONTINUE;   -- a shard this router has no partition for
            END IF;
            drawn := wallet_router.r_outbox_drawn(heads.origin);
            IF heads.last_outbox_id > drawn THEN
                forged := concat_ws('; ', forged,
                                    format('%s -> %s: shard %s holds message %s of shard %s, which has drawn outbox ids up to %s only',
                                           heads.origin, heads.shard, heads.shard, heads.last_outbox_id, heads.origin, drawn));
            END IF;
        END LOOP;
        bad := concat_ws('; ', bad, forged);
        bad := nullif(bad, '');
    EXCEPTION WHEN undefined_function THEN
        -- a shard still on wallet_shard 1.0.0
        skipped := concat_ws(', ', skipped, 'messages never drawn (a shard before wallet_shard 1.0.1)');
    END;
    check_name := 'messages_match';
    ok := CASE WHEN bad IS NOT NULL THEN false WHEN skipped IS NOT NULL THEN NULL ELSE true END;
    detail := coalesce(bad, CASE WHEN skipped IS NOT NULL
                                 THEN 'not checked (a sender''s writers held on past 10 s, or a shard this router has no partition for): ' || skipped
                                 ELSE 'every settled message is settled the same way on both shards' END);
    RETURN NEXT;

    SELECT string_agg(format('%s sums to %s', t.currency, t.total), '; ' ORDER BY t.currency)
      INTO bad
      FROM (SELECT x.currency, sum(x.all_accounts) AS total FROM wallet_router.r_totals() x GROUP BY 1) t
     WHERE t.total <> 0;
    SELECT string_agg(format('%s %s', t.clearing, t.currency), ', ' ORDER BY t.currency) INTO flight
      FROM (SELECT x.currency, sum(x.clearing) AS clearing FROM wallet_router.r_totals() x
             GROUP BY 1 HAVING sum(x.clearing) <> 0) t;
    check_name := 'global_conservation'; ok := bad IS NULL;
    detail := coalesce(bad, 'every currency sums to zero over all shards; in clearing accounts (minor units): '
                            || coalesce(flight, 'nothing'));
    RETURN NEXT;
END
$$;

-- ============================================================================
-- Privileges
-- ============================================================================

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA wallet_router FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA wallet FROM PUBLIC;

-- What an application calls: every function of schema wallet.
CREATE FUNCTION wallet.grant_app(role regrole) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f regprocedure;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'wallet.grant_app: role must not be null' USING ERRCODE = '22004', DETAIL = 'Name a role.';
    END IF;
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = 'wallet'::regnamespace AND p.proname NOT IN ('grant_app', 'grant_reader') LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f, role);
    END LOOP;
END
$$;

-- What a reader (finance, auditor) calls: balances, statements, verify.
CREATE FUNCTION wallet.grant_reader(role regrole) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f regprocedure;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'wallet.grant_reader: role must not be null' USING ERRCODE = '22004', DETAIL = 'Name a role.';
    END IF;
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = 'wallet'::regnamespace
                AND p.proname IN ('shard_of', 'balance', 'available', 'balance_at', 'statement', 'verify') LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f, role);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION wallet.grant_app(regrole), wallet.grant_reader(regrole) FROM PUBLIC;
