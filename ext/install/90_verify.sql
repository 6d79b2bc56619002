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
    -- Each check that scans the journal or the accounts computes its
    -- offending rows in a MATERIALIZED CTE and only then takes the first:
    -- with the ORDER BY ... LIMIT 1 in the same query the planner prefers
    -- nested loops that expect an early hit, which on a sound ledger of
    -- millions of accounts means a quadratic scan (hours, not seconds).

    -- 1. every transaction balances to zero in each currency
    WITH off AS MATERIALIZED (
        SELECT e.txn_id, a.currency, sum(e.amount) AS total
          FROM wallet.entry e JOIN wallet.account a ON a.id = e.account_id
         GROUP BY e.txn_id, a.currency HAVING sum(e.amount) <> 0)
    SELECT off.txn_id, off.currency, off.total INTO bad FROM off ORDER BY off.txn_id LIMIT 1;
    check_name := 'transactions_balance'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN (SELECT format('%s transactions balance in every currency', count(*)) FROM wallet.txn)
                   ELSE format('transaction %s does not balance in %s: off by %s',
                               bad.txn_id, bad.currency, wallet.amount(bad.total::bigint, bad.currency)) END;
    RETURN NEXT;

    -- 2. references: every entry has its transaction and account, every
    --    transaction has entries, every reversal points at a transaction
    bad := NULL;
    WITH orphan AS MATERIALIZED (
        SELECT e.txn_id, e.leg, e.account_id, t.id IS NULL AS no_txn
          FROM wallet.entry e
          LEFT JOIN wallet.txn t ON t.id = e.txn_id
          LEFT JOIN wallet.account a ON a.id = e.account_id
         WHERE t.id IS NULL OR a.id IS NULL)
    SELECT 'entry of transaction ' || o.txn_id || ' leg ' || o.leg ||
           CASE WHEN o.no_txn THEN ' has no transaction' ELSE ' names unknown account ' || o.account_id END AS what
      INTO bad
      FROM orphan o ORDER BY o.txn_id, o.leg LIMIT 1;
    IF bad IS NULL THEN
        SELECT 'transaction ' || e.txn_id || ' has a zero leg' AS what INTO bad
          FROM wallet.entry e WHERE e.amount = 0 ORDER BY e.txn_id LIMIT 1;
    END IF;
    IF bad IS NULL THEN
        WITH empty AS MATERIALIZED (
            SELECT t.id FROM wallet.txn t
             WHERE NOT EXISTS (SELECT 1 FROM wallet.entry e WHERE e.txn_id = t.id))
        SELECT 'transaction ' || empty.id || ' has no entries' AS what INTO bad
          FROM empty ORDER BY empty.id LIMIT 1;
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
    --    (sums in numeric: a wrong ledger may hold sums past int64, and
    --    verify must report them, not fail)
    bad := NULL;
    WITH mismatch AS MATERIALIZED (
        SELECT a.id, a.currency, a.balance + coalesce(p.total, 0) AS stored, coalesce(s.total, 0) AS summed
          FROM wallet.account a
          LEFT JOIN (SELECT account_id, sum(amount) AS total FROM wallet.entry GROUP BY account_id) s
                 ON s.account_id = a.id
          LEFT JOIN (SELECT account_id, sum(amount) AS total FROM wallet.hot_pending GROUP BY account_id) p
                 ON p.account_id = a.id
         WHERE a.balance + coalesce(p.total, 0) <> coalesce(s.total, 0)
            OR a.balance + coalesce(p.total, 0) NOT BETWEEN -9223372036854775808 AND 9223372036854775807)
    SELECT m.id, m.currency, m.stored, m.summed INTO bad FROM mismatch m ORDER BY m.id LIMIT 1;
    check_name := 'balances_match_entries'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN (SELECT format('%s accounts match their entries', count(*)) FROM wallet.account)
                   WHEN bad.stored NOT BETWEEN -9223372036854775808 AND 9223372036854775807
                        OR bad.summed NOT BETWEEN -9223372036854775808 AND 9223372036854775807
                   THEN format('account %s stores %s minor units of %s (pending credits included), its entries sum to %s: past 64 bits',
                               bad.id, bad.stored, bad.currency, bad.summed)
                   ELSE format('account %s stores %s but its entries sum to %s', bad.id,
                               wallet.amount(bad.stored::bigint, bad.currency),
                               wallet.amount(bad.summed::bigint, bad.currency)) END;
    RETURN NEXT;

    -- 3b. the journal per account (wallet.account_history) holds exactly
    --     the entries up to its horizon, in well-formed rows
    bad := NULL;
    SELECT format('account_history row (%s, %s) is malformed', h.account_id, h.last_txn) AS what INTO bad
      FROM wallet.account_history h
     WHERE cardinality(h.txn_ids) = 0 OR cardinality(h.txn_ids) <> cardinality(h.amounts)
        OR h.txn_ids[1] <> h.first_txn OR h.txn_ids[cardinality(h.txn_ids)] <> h.last_txn
        OR h.last_txn > (SELECT coalesce(max(merged_through), 0) FROM wallet.history_horizon)
     LIMIT 1;
    IF bad IS NULL THEN
        SELECT format('history horizon %s is beyond the last transaction id drawn (%s)', hh.w, s.last) AS what INTO bad
          FROM (SELECT coalesce(max(merged_through), 0) AS w FROM wallet.history_horizon) hh,
               (SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS last FROM wallet.txn_id_seq) s
         WHERE hh.w > s.last;
    END IF;
    -- The same multiset of (account, transaction, amount) on both sides:
    -- first by count, sum and a 64-bit hash sum, one pass over each side
    -- without sorting; only when those differ, the sorting comparison that
    -- names the first entry out of place (EXCEPT ALL over every entry
    -- takes minutes on a journal of tens of millions).
    IF bad IS NULL AND
       (SELECT (count(*), coalesce(sum(u.units), 0),
                coalesce(sum((hashint8extended(u.txn_id, h.account_id) # hashint8extended(u.units, u.txn_id))::numeric), 0))
          FROM wallet.account_history h, unnest(h.txn_ids, h.amounts) AS u(txn_id, units))
       IS DISTINCT FROM
       (SELECT (count(*), coalesce(sum(e.amount), 0),
                coalesce(sum((hashint8extended(e.txn_id, e.account_id) # hashint8extended(e.amount, e.txn_id))::numeric), 0))
          FROM wallet.entry e
         WHERE e.txn_id <= (SELECT coalesce(max(merged_through), 0) FROM wallet.history_horizon)) THEN
        SELECT format('account %s: entry of transaction %s for %s is %s', d.account_id, d.txn_id, d.units,
                      CASE WHEN d.in_history THEN 'filed in account_history but not in the journal'
                           ELSE 'in the journal but not filed in account_history' END) AS what INTO bad
          FROM ((SELECT h.account_id, u.txn_id, u.units, true AS in_history
                   FROM wallet.account_history h, unnest(h.txn_ids, h.amounts) AS u(txn_id, units)
                 EXCEPT ALL
                 SELECT e.account_id, e.txn_id, e.amount, true FROM wallet.entry e
                  WHERE e.txn_id <= (SELECT coalesce(max(merged_through), 0) FROM wallet.history_horizon))
                UNION ALL
                (SELECT e.account_id, e.txn_id, e.amount, false FROM wallet.entry e
                  WHERE e.txn_id <= (SELECT coalesce(max(merged_through), 0) FROM wallet.history_horizon)
                 EXCEPT ALL
                 SELECT h.account_id, u.txn_id, u.units, false
                   FROM wallet.account_history h, unnest(h.txn_ids, h.amounts) AS u(txn_id, units))) d
         ORDER BY d.txn_id, d.account_id LIMIT 1;
        IF bad IS NULL THEN
            SELECT 'the filed history and the journal differ' AS what INTO bad;
        END IF;
    END IF;
    IF bad IS NULL THEN
        SELECT format('account_history rows of account %s overlap or are out of order (last_txn %s)',
                      o.account_id, o.last_txn) AS what INTO bad
          FROM (SELECT h.account_id, h.last_txn, h.first_txn,
                       lag(h.last_txn) OVER (PARTITION BY h.account_id ORDER BY h.last_txn) AS prev_last
                  FROM wallet.account_history h) o
         WHERE o.first_txn < o.prev_last
         LIMIT 1;
    END IF;
    check_name := 'account_history_matches_journal'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN (SELECT format('entries through transaction %s filed per account; %s in the journal''s tail',
                                               coalesce(max(merged_through), 0),
                                               (SELECT count(*) FROM wallet.entry e
                                                 WHERE e.txn_id > coalesce(max(hh.merged_through), 0)))
                                   FROM wallet.history_horizon hh)
                   ELSE bad.what END;
    RETURN NEXT;

    -- 4. no account that may not go negative is negative (posted or
    --    available), except through a recorded forced posting: the
    --    account's forced_negative flag is only believed when a forced
    --    transaction of the (sealed) journal debited it (1.4.0; the flag
    --    is derived state, not audited row by row)
    bad := NULL;
    WITH overdrawn AS MATERIALIZED (
        SELECT a.id, a.currency, a.balance + coalesce(p.total, 0) AS posted, a.held, a.forced_negative
          FROM wallet.account a
          LEFT JOIN (SELECT account_id, sum(amount) AS total FROM wallet.hot_pending GROUP BY account_id) p
                 ON p.account_id = a.id
         WHERE NOT a.allow_negative
           AND (a.balance + coalesce(p.total, 0) < 0 OR a.balance + coalesce(p.total, 0) - a.held < 0))
    -- one row: how many flagged accounts are below zero now (the flag
    -- outlives it), and the first overdraft not excused (id NULL if none)
    SELECT f.flagged, x.id, x.currency, x.posted, x.held, x.forced_negative INTO bad
      FROM (SELECT count(*) AS flagged FROM overdrawn o WHERE o.forced_negative) f
      LEFT JOIN LATERAL (
            SELECT o.* FROM overdrawn o
             WHERE NOT o.forced_negative
                OR NOT EXISTS (SELECT 1 FROM wallet.account_entries ae JOIN wallet.txn t ON t.id = ae.txn_id
                                WHERE ae.account_id = o.id AND ae.units < 0 AND t.forced)
             ORDER BY o.id LIMIT 1) x ON true;
    n := bad.flagged;
    check_name := 'no_forbidden_negative'; ok := bad.id IS NULL;
    detail := CASE WHEN ok THEN format('no overdraft%s', CASE WHEN n > 0 THEN format(' (%s accounts negative through forced reversals)', n) ELSE '' END)
                   ELSE format('account %s may not go negative but has posted %s with %s held%s', bad.id,
                               CASE WHEN bad.posted BETWEEN -9223372036854775808 AND 9223372036854775807
                                    THEN wallet.amount(bad.posted::bigint, bad.currency)::text
                                    ELSE bad.posted || ' minor units of ' || bad.currency END,
                               wallet.amount(bad.held, bad.currency),
                               CASE WHEN bad.forced_negative THEN ' (marked forced_negative, but no forced posting debited it)' ELSE '' END) END;
    RETURN NEXT;

    -- 4b. every account has a known status, a registered currency and a
    --     non-negative held amount
    bad := NULL;
    WITH malformed AS MATERIALIZED (
        SELECT a.id, a.status, a.currency, a.held
          FROM wallet.account a
         WHERE a.status NOT IN ('active', 'frozen', 'closed') OR a.held < 0
            OR NOT (wallet.is_iso_currency(a.currency)
                    OR EXISTS (SELECT 1 FROM wallet.custom_currencies c WHERE c.code = a.currency)))
    SELECT m.id, format('account %s has status %s, currency %s, held %s', m.id, quote_literal(m.status),
                        quote_literal(m.currency), m.held) AS what INTO bad
      FROM malformed m ORDER BY m.id LIMIT 1;
    check_name := 'accounts_well_formed'; ok := bad IS NULL;
    detail := CASE WHEN ok THEN 'every account has a valid status, currency and held amount' ELSE bad.what END;
    RETURN NEXT;

    -- 5. holds: each account's held amount is the sum of its pending holds;
    --    ended holds are consistent with their capture, and a captured
    --    hold's transaction moved exactly what it says was captured, from
    --    its source to its destination (1.3.0)
    bad := NULL;
    WITH unheld AS MATERIALIZED (
        SELECT a.id, a.currency, a.held, coalesce(h.total, 0) AS pending
          FROM wallet.account a
          LEFT JOIN (SELECT from_account, sum(amount)::bigint AS total FROM wallet.hold
                      WHERE status = 'pending' GROUP BY from_account) h ON h.from_account = a.id
         WHERE a.held <> coalesce(h.total, 0))
    SELECT u.id, u.currency, u.held, u.pending INTO bad FROM unheld u ORDER BY u.id LIMIT 1;
    IF bad IS NULL THEN
        WITH inconsistent AS MATERIALIZED (
            SELECT h.id, h.status
              FROM wallet.hold h
              LEFT JOIN wallet.txn t ON t.id = h.capture_txn
             WHERE (h.status = 'captured' AND (t.id IS NULL OR h.captured IS NULL OR h.captured <= 0 OR h.captured > h.amount
                                               OR (SELECT count(*) = 2
                                                          AND count(*) FILTER (WHERE e.account_id = h.from_account AND e.amount = -h.captured) = 1
                                                          AND count(*) FILTER (WHERE e.account_id = h.to_account AND e.amount = h.captured) = 1
                                                     FROM wallet.entry e WHERE e.txn_id = h.capture_txn) IS NOT TRUE))
                OR (h.status <> 'captured' AND h.capture_txn IS NOT NULL)
                OR (h.status <> 'pending' AND h.ended_at IS NULL))
        SELECT i.id, 'hold ' || i.id || ' is ' || i.status || ' but its capture is inconsistent' AS what INTO bad
          FROM inconsistent i ORDER BY i.id LIMIT 1;
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
