-- wallet_router 1.0.1 -> 1.0.2: wallet.verify()'s messages_match also
-- finds a message that a shard received and its sender never drew (a
-- credit made up on the receiving shard: the message-by-message digests
-- stop at the senders' horizons and could not see one above them).  Needs
-- wallet_shard 1.0.1 on the shards (update them first); until then the
-- check reports that part as not checked.
-- Generated with tools/upgrade_diff.py --script; test/harness/shard.sh
-- compares an updated router's functions with a fresh install's.

\echo Use "ALTER EXTENSION wallet_router UPDATE TO '1.0.2'" to load this file. \quit

-- What every shard's inbox holds, per origin (the highest outbox id), and
-- what one shard has drawn from its outbox sequence (wallet_shard 1.0.1).
CREATE OR REPLACE FUNCTION wallet_router.r_inbox_heads()
RETURNS TABLE (shard integer, origin integer, last_outbox_id bigint)
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON ALL;
    SELECT wallet_shard.current_shard() AS shard, h.origin, h.last_outbox_id FROM wallet_shard.inbox_heads() h; $$;

CREATE OR REPLACE FUNCTION wallet_router.r_outbox_drawn(integer) RETURNS bigint
LANGUAGE plproxy AS $$ CLUSTER 'wallet_shards'; RUN ON $1;
    SELECT wallet_shard.outbox_drawn(); $$;

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
CREATE OR REPLACE FUNCTION wallet.verify()
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

REVOKE ALL ON FUNCTION wallet_router.r_inbox_heads(), wallet_router.r_outbox_drawn(integer) FROM PUBLIC;
