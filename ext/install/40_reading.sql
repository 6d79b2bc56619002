-- ============================================================================
-- Account lifecycle: freeze, unfreeze, close.
-- Each takes the account's hot-posting lock exclusively (waiting for
-- in-flight unlocked credits to commit, see src/ledger.c) and then its row
-- lock, so no posting lands on an account after it was frozen or closed.
-- ============================================================================

CREATE FUNCTION wallet.lock_hot_exclusive(account_id bigint) RETURNS void
    AS 'MODULE_PATHNAME', 'wallet_lock_hot_exclusive' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION wallet.lock_hot_exclusive(bigint) FROM PUBLIC;

-- In REPEATABLE READ or SERIALIZABLE, 40001 when a hot credit (or, with
-- holds, a hold) of the account committed after the transaction's
-- snapshot: neither touches the account's row, so its row lock does not
-- catch them, and close_account or set_hot(id, false) would act on a stale
-- view (1.6.0; found by a review).  Call it with the row and hot locks
-- held.  No-op in READ COMMITTED.  Internal.
CREATE FUNCTION wallet.check_account_current(id bigint, holds boolean) RETURNS void
    AS 'MODULE_PATHNAME', 'wallet_check_account_current' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION wallet.check_account_current(bigint, boolean) FROM PUBLIC;

-- Locks and returns an account row for a status change; WL003 if missing.
CREATE FUNCTION wallet.lock_account_for_status(id bigint) RETURNS wallet.account
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'account id must not be null' USING ERRCODE = '22004',
            DETAIL = 'The account argument is null.';
    END IF;
    SELECT * INTO r FROM wallet.account a WHERE a.id = lock_account_for_status.id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown account %', id
            USING ERRCODE = 'WL003', DETAIL = format('No account has id %s.', id);
    END IF;
    PERFORM wallet.lock_hot_exclusive(id);
    RETURN r;
END
$$;
REVOKE ALL ON FUNCTION wallet.lock_account_for_status(bigint) FROM PUBLIC;

-- Stops all postings to and from the account (holds already placed can
-- still be voided or expire, not captured).  Freezing a frozen account is a
-- no-op; a closed one is WL005.
CREATE FUNCTION wallet.freeze_account(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.lock_account_for_status(id);
BEGIN
    IF r.status = 'closed' THEN
        RAISE EXCEPTION 'account % is closed', id USING ERRCODE = 'WL005',
            DETAIL = format('Account %s was closed; a closed account cannot be frozen.', id);
    END IF;
    UPDATE wallet.account a SET status = 'frozen', version = a.version + 1
     WHERE a.id = freeze_account.id AND a.status = 'active';
END
$$;

-- Lifts a freeze.  No-op on an active account; WL005 on a closed one.
CREATE FUNCTION wallet.unfreeze_account(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.lock_account_for_status(id);
BEGIN
    IF r.status = 'closed' THEN
        RAISE EXCEPTION 'account % is closed', id USING ERRCODE = 'WL005',
            DETAIL = format('Account %s was closed; a closed account stays closed.', id);
    END IF;
    UPDATE wallet.account a SET status = 'active', version = a.version + 1
     WHERE a.id = unfreeze_account.id AND a.status = 'frozen';
END
$$;

-- Closes an account for good: only at zero posted balance with nothing
-- held, no pending hold towards it and no outstanding debt (WL012
-- otherwise).  Closing a closed
-- account is a no-op.  The live flows' accounts (wallet.live_system_role)
-- never close (22023): a closed payout_clearing would refuse every
-- withdrawal for good, a closed debt account every later chargeback.
-- In REPEATABLE READ or SERIALIZABLE, 40001 when a hot credit or a hold of
-- the account committed after the snapshot (check_account_current).
CREATE FUNCTION wallet.close_account(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.lock_account_for_status(id);
    bal numeric;        -- numeric: hot pending rows may take it past 64 bits
    shown text;
    role text;
BEGIN
    IF r.status = 'closed' THEN
        RETURN;
    END IF;
    PERFORM wallet.check_account_current(id, true);
    role := wallet.live_system_role(id);
    IF role IS NOT NULL THEN
        RAISE EXCEPTION 'account % is the platform''s % account and cannot be closed', id, role
            USING ERRCODE = '22023',
                  DETAIL = format('Account %s is the %s account of the live flows; they post to it.', id, role),
                  HINT = 'Freeze it to pause the flows that use it; unfreeze it to resume them.';
    END IF;
    -- the posted balance with the hot credits not yet folded, summed as
    -- numeric (wallet.pending_credits() is bigint and failed with bigint's
    -- bare error past 64 bits; 1.6.0)
    bal := r.balance + (SELECT coalesce(sum(h.amount), 0) FROM wallet.hot_pending h
                         WHERE h.account_id = close_account.id);
    IF bal <> 0 THEN
        shown := CASE WHEN bal BETWEEN -9223372036854775808 AND 9223372036854775807
                      THEN wallet.amount(bal::bigint, r.currency)::text
                      ELSE format('%s minor units of %s', bal, r.currency) END;
        RAISE EXCEPTION 'account % cannot be closed: balance is %', id, shown
            USING ERRCODE = 'WL012',
                  DETAIL = format('Account %s holds %s; only an account at zero can close.', id, shown),
                  HINT = 'Transfer the balance out first.';
    END IF;
    -- a closed account takes no recharge, so its debt could never be repaid (1.6.0)
    IF r.debt_account IS NOT NULL AND wallet.units(wallet.balance(r.debt_account)) < 0 THEN
        RAISE EXCEPTION 'account % cannot be closed: it has an outstanding debt of %', id,
                        -wallet.balance(r.debt_account)
            USING ERRCODE = 'WL012',
                  DETAIL = format('Debt account %s is at %s; a closed account takes no recharge to repay it.',
                                  r.debt_account, wallet.balance(r.debt_account)),
                  HINT = 'Let the next recharge repay the debt first, or settle it with a posting to the debt account.';
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

-- ============================================================================
-- Reversals (C): the exact opposite legs, linked to the original, at most
-- once.  A refund of wallet.refund_recharge() is reversed as a recharge of
-- its coins: they repay the user's debt owed at that moment first, the rest
-- goes to the user's account (the debt model, ext/install/60_live.sql).  Refused (WL001) when it would overdraw an account that may not go
-- negative, unless allow_negative => true (then the account is flagged
-- forced_negative and wallet.verify() reports it).  Unknown transaction:
-- WL009; already reversed: WL010.
-- ============================================================================
CREATE FUNCTION wallet.reverse(tx_id bigint, idempotency_key text, reason text DEFAULT NULL,
                               allow_negative boolean DEFAULT false)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_reverse'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- ============================================================================
-- Reading
-- ============================================================================

-- Posted balance at a point in time: the sum of the account's entries of
-- transactions created at or before `at`.  (Transactions are stamped with
-- their start time, now().)  A sum outside 64-bit minor units (the extreme
-- case of README "Overflow", or a late-stamped posting on an account near
-- the bound) is 22003 with the figure, not bigint's bare error (1.6.0).
CREATE FUNCTION wallet.balance_at(account bigint, at timestamptz) RETURNS wallet.amount
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.account_row(account);
    total numeric;
BEGIN
    IF at IS NULL THEN
        RAISE EXCEPTION 'at must not be null' USING ERRCODE = '22004',
            DETAIL = format('Account %s: the point in time is null.', account);
    END IF;
    SELECT coalesce(sum(x.units), 0) INTO total
      FROM wallet.account_entries x
     WHERE x.account_id = r.id AND x.created_at <= balance_at.at;
    IF total NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
        RAISE EXCEPTION 'balance of account % at % is outside 64-bit minor units', account, at
            USING ERRCODE = '22003',
                  DETAIL = format('The entries of account %s up to %s add up to %s minor units of %s.',
                                  account, at, total, r.currency),
                  HINT = 'wallet.statement() lists the entries; its running balance is NULL where it leaves 64 bits.';
    END IF;
    RETURN wallet.amount(total::bigint, r.currency);
END
$$;

-- The account's entries between since (inclusive) and until (exclusive; NULL
-- = open), oldest first, each with the balance after it.  The running
-- balance starts from the balance before `since`.  It is added up in
-- numeric: a running balance outside 64-bit minor units (a late-stamped
-- posting on an account near the bound, or README "Overflow") is NULL in
-- that row, as in wallet.accounts, and the rest of the statement reads
-- (1.6.0).
CREATE FUNCTION wallet.statement(account bigint, since timestamptz DEFAULT '-infinity',
                                 until timestamptz DEFAULT 'infinity')
RETURNS TABLE (txn_id bigint, at timestamptz, kind text, amount wallet.amount,
               balance wallet.amount, metadata jsonb, reverses bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.account_row(account);
    opening numeric;
BEGIN
    since := coalesce(since, '-infinity');
    until := coalesce(until, 'infinity');
    SELECT coalesce(sum(x.units), 0) INTO opening
      FROM wallet.account_entries x
     WHERE x.account_id = r.id AND x.created_at < since;
    RETURN QUERY
    SELECT s.txn_id, s.created_at, s.kind,
           CASE WHEN s.amount BETWEEN -9223372036854775808 AND 9223372036854775807
                THEN wallet.amount(s.amount::bigint, r.currency) END,
           CASE WHEN s.running BETWEEN -9223372036854775808 AND 9223372036854775807
                THEN wallet.amount(s.running::bigint, r.currency) END,
           s.metadata, s.reverses
      FROM (SELECT a.*, opening + sum(a.amount) OVER (ORDER BY a.created_at, a.txn_id) AS running
              FROM (SELECT x.txn_id, t.created_at, t.kind, t.metadata, t.reverses, sum(x.units) AS amount
                      FROM wallet.account_entries x JOIN wallet.txn t ON t.id = x.txn_id
                     WHERE x.account_id = r.id AND x.created_at >= since AND x.created_at < until
                     GROUP BY x.txn_id, t.created_at, t.kind, t.metadata, t.reverses) a) s
     ORDER BY s.created_at, s.txn_id;
END
$$;
