-- wallet 1.1.0 -> 1.2.0
--
-- wallet.refund_recharge refunds only what wallet.recharge posted: the
-- recharge's idempotency key must be in the reserved prefix
-- ('wallet:recharge:...'), which no client can use.  Before, a client's
-- transfer given the kind 'recharge' and made-up metadata (an account,
-- coins, an amount paid) could be "refunded": a store refund booked for
-- money that never came in, or a clawback from another user's account.
-- Recharges posted by 1.0.0 and 1.1.0 carry that key too, so every genuine
-- recharge stays refundable.

\echo Use "ALTER EXTENSION wallet UPDATE TO '1.2.0'" to load this file. \quit

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

