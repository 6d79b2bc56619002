-- ============================================================================
-- wallet.verify(): the ledger's invariants, one row per check.
-- Read-only; safe to run at any time (it reads one consistent snapshot
-- when called in a REPEATABLE READ transaction, as auditors should).
-- ============================================================================
CREATE FUNCTION wallet.verify()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
    n bigint;
BEGIN
    -- 1. every transaction balances to zero in each currency
    SELECT e.txn_id, a.currency, sum(e.amount) AS total INTO bad
      FROM wallet.entry e JOIN wallet.account a ON a.id = e.account_id
     GROUP BY e.txn_id, a.currency HAVING sum(e.amount) <> 0
     ORDER BY e.txn_id LIMIT 1;
    check_name := 'transactions_balance'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN (SELECT format('%s transactions balance in every currency', count(*)) FROM wallet.txn)
                   ELSE format('transaction %s does not balance in %s: off by %s',
                               bad.txn_id, bad.currency, wallet.amount(bad.total::bigint, bad.currency)) END;
    RETURN NEXT;

    -- 2. references: every entry has its transaction and account, every
    --    transaction has entries, every reversal points at a transaction
    bad := NULL;
    SELECT 'entry of transaction ' || e.txn_id || ' leg ' || e.leg ||
           CASE WHEN t.id IS NULL THEN ' has no transaction' ELSE ' names unknown account ' || e.account_id END AS what
      INTO bad
      FROM wallet.entry e
      LEFT JOIN wallet.txn t ON t.id = e.txn_id
      LEFT JOIN wallet.account a ON a.id = e.account_id
     WHERE t.id IS NULL OR a.id IS NULL
     LIMIT 1;
    IF bad IS NULL THEN
        SELECT 'transaction ' || e.txn_id || ' has a zero leg' AS what INTO bad
          FROM wallet.entry e WHERE e.amount = 0 ORDER BY e.txn_id LIMIT 1;
    END IF;
    IF bad IS NULL THEN
        SELECT 'transaction ' || t.id || ' has no entries' AS what INTO bad
          FROM wallet.txn t WHERE NOT EXISTS (SELECT 1 FROM wallet.entry e WHERE e.txn_id = t.id)
         ORDER BY t.id LIMIT 1;
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
    bad := NULL;
    SELECT a.id, a.currency, a.balance + coalesce(p.total, 0) AS stored, coalesce(s.total, 0) AS summed INTO bad
      FROM wallet.account a
      LEFT JOIN (SELECT account_id, sum(amount)::bigint AS total FROM wallet.entry GROUP BY account_id) s
             ON s.account_id = a.id
      LEFT JOIN (SELECT account_id, sum(amount)::bigint AS total FROM wallet.hot_pending GROUP BY account_id) p
             ON p.account_id = a.id
     WHERE a.balance + coalesce(p.total, 0) <> coalesce(s.total, 0)
     ORDER BY a.id LIMIT 1;
    check_name := 'balances_match_entries'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN (SELECT format('%s accounts match their entries', count(*)) FROM wallet.account)
                   ELSE format('account %s stores %s but its entries sum to %s', bad.id,
                               wallet.amount(bad.stored, bad.currency), wallet.amount(bad.summed, bad.currency)) END;
    RETURN NEXT;

    -- 4. no account that may not go negative is negative (posted or
    --    available), except through a recorded forced posting
    bad := NULL;
    SELECT a.id, a.currency, a.balance + coalesce(p.total, 0) AS posted, a.held INTO bad
      FROM wallet.account a
      LEFT JOIN (SELECT account_id, sum(amount)::bigint AS total FROM wallet.hot_pending GROUP BY account_id) p
             ON p.account_id = a.id
     WHERE NOT a.allow_negative AND NOT a.forced_negative
       AND (a.balance + coalesce(p.total, 0) < 0 OR a.balance + coalesce(p.total, 0) - a.held < 0)
     ORDER BY a.id LIMIT 1;
    SELECT count(*) INTO n FROM wallet.account a WHERE a.forced_negative;
    check_name := 'no_forbidden_negative'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN format('no overdraft%s', CASE WHEN n > 0 THEN format(' (%s accounts negative through forced reversals)', n) ELSE '' END)
                   ELSE format('account %s may not go negative but has posted %s with %s held', bad.id,
                               wallet.amount(bad.posted, bad.currency), wallet.amount(bad.held, bad.currency)) END;
    RETURN NEXT;

    -- 4b. every account has a known status, a registered currency and a
    --     non-negative held amount
    bad := NULL;
    SELECT a.id, format('account %s has status %s, currency %s, held %s', a.id, quote_literal(a.status),
                        quote_literal(a.currency), a.held) AS what INTO bad
      FROM wallet.account a
     WHERE a.status NOT IN ('active', 'frozen', 'closed') OR a.held < 0
        OR NOT (wallet.is_iso_currency(a.currency)
                OR EXISTS (SELECT 1 FROM wallet.custom_currencies c WHERE c.code = a.currency))
     ORDER BY a.id LIMIT 1;
    check_name := 'accounts_well_formed'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN 'every account has a valid status, currency and held amount' ELSE bad.what END;
    RETURN NEXT;

    -- 5. holds: each account's held amount is the sum of its pending holds;
    --    ended holds are consistent with their capture
    bad := NULL;
    SELECT a.id, a.currency, a.held, coalesce(h.total, 0) AS pending INTO bad
      FROM wallet.account a
      LEFT JOIN (SELECT from_account, sum(amount)::bigint AS total FROM wallet.hold
                  WHERE status = 'pending' GROUP BY from_account) h ON h.from_account = a.id
     WHERE a.held <> coalesce(h.total, 0)
     ORDER BY a.id LIMIT 1;
    IF bad IS NULL THEN
        SELECT h.id, 'hold ' || h.id || ' is ' || h.status || ' but its capture is inconsistent' AS what INTO bad
          FROM wallet.hold h
          LEFT JOIN wallet.txn t ON t.id = h.capture_txn
         WHERE (h.status = 'captured' AND (t.id IS NULL OR h.captured IS NULL OR h.captured <= 0 OR h.captured > h.amount))
            OR (h.status <> 'captured' AND h.capture_txn IS NOT NULL)
            OR (h.status <> 'pending' AND h.ended_at IS NULL)
         LIMIT 1;
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
