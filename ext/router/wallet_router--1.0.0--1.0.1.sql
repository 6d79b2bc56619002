-- wallet_router 1.0.0 -> 1.0.1: fixes from a black-box review.
--   * wallet.set_hot(id, NULL) is 22004, as on a node (1.0.0 read it as
--     true and made the account hot);
--   * wallet.grant_reader() gives balance_at too, like a node's;
--   * wallet.recharge() checks the channel and order id before claiming the
--     key: ('web:x', 'o9') and ('web', 'x:o9') claimed the same key, so a
--     refused order blocked a valid one;
--   * a null max_messages (relay) or shard (open_account_on) is 22004.

\echo Use "ALTER EXTENSION wallet_router UPDATE TO '1.0.1'" to load this file. \quit

CREATE OR REPLACE FUNCTION wallet.relay(max_messages integer DEFAULT 1000)
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

CREATE OR REPLACE FUNCTION wallet.open_account_on(shard integer, owner text, currency text, kind text DEFAULT 'user',
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

CREATE OR REPLACE FUNCTION wallet.recharge(user_account bigint, coins text, paid text, channel text, external_id text)
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

CREATE OR REPLACE FUNCTION wallet.grant_reader(role regrole) RETURNS void
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

CREATE OR REPLACE FUNCTION wallet.set_hot(id bigint, hot boolean DEFAULT true) RETURNS void
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
