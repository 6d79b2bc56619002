-- Posting: wallet.transfer, wallet.post, idempotency, the append-only
-- journal, wallet.reverse.  Contract: SPEC.md "Posting", "Audit"
-- (append-only); SQLSTATEs: src/wallet.h.
-- Test helpers (dropped at the end): ids are never printed, because they
-- depend on what ran before in this database.  reg() names an id; a(),
-- t(), h() give back the account, transaction or hold of a name; err(q)
-- runs q and returns 'ok' or 'SQLSTATE: message', errd(q) adds DETAIL and
-- HINT; in both, ids named with reg() are shown by their names.  state(q)
-- returns only the SQLSTATE.
\i sql/include/lt.sql
-- rows in the journal (to show that a call posted nothing)
CREATE FUNCTION lt.journal_rows() RETURNS text LANGUAGE sql AS $$
    SELECT format('%s txn, %s entry', (SELECT count(*) FROM wallet.txn), (SELECT count(*) FROM wallet.entry))
$$;
-- the legs of a transaction, by account name
CREATE FUNCTION lt.legs(txn bigint) RETURNS TABLE (leg smallint, account text, amount wallet.amount)
LANGUAGE sql AS $$
    SELECT e.leg, coalesce(n.name, '?'), e.amount FROM wallet.entries e
      LEFT JOIN lt.names n ON n.kind = 'a' AND n.id = e.account_id
     WHERE e.txn_id = txn ORDER BY e.leg
$$;
-- balances of the accounts named so far
CREATE VIEW lt.balances AS
    SELECT n.name, v.balance, v.available FROM wallet.accounts v
      JOIN lt.names n ON n.kind = 'a' AND n.id = v.id;

SELECT lt.reg('a', wallet.open_account('lp-bank', 'USD', 'system', true), 'bank') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('lp-alice', 'USD'), 'alice') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('lp-bob', 'USD'), 'bob') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('lp-carol', 'USD'), 'carol') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('lp-ebank', 'EUR', 'system', true), 'ebank') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('lp-eve', 'EUR'), 'eve') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('lp-jp', 'JPY'), 'jp') IS NOT NULL AS opened;

-- ---- transfer: happy path ----
SELECT lt.reg('t', wallet.transfer(lt.a('bank'), lt.a('alice'), '100.00 USD', 'lp:fund-alice'), 'fund') IS NOT NULL AS posted;
SELECT lt.reg('t', wallet.transfer(lt.a('alice'), lt.a('bob'), '12.34 USD', 'lp:t1',
                                   metadata => '{"note": "lunch", "n": 1}'), 't1') IS NOT NULL AS posted;
SELECT * FROM lt.legs(lt.t('t1'));
SELECT idempotency_key, kind, metadata, reverses, forced, created_at IS NOT NULL AS stamped
  FROM wallet.transactions WHERE id = lt.t('t1');
SELECT kind FROM wallet.transactions WHERE id = lt.t('fund');
SELECT * FROM lt.balances WHERE name IN ('bank', 'alice', 'bob') ORDER BY name;
-- an explicit kind; the whole balance can be spent
SELECT lt.reg('t', wallet.transfer(lt.a('bob'), lt.a('carol'), '12.34 USD', 'lp:t2', 'gift'), 't2') IS NOT NULL AS posted;
SELECT kind, metadata FROM wallet.transactions WHERE id = lt.t('t2');
SELECT * FROM lt.balances WHERE name IN ('bob', 'carol') ORDER BY name;
-- ids grow
SELECT lt.t('fund') < lt.t('t1') AND lt.t('t1') < lt.t('t2') AS ids_increase;

-- ---- transfer: idempotent replay ----
SELECT lt.journal_rows() AS journal_rows \gset
SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '12.34 USD', 'lp:t1', metadata => '{"note": "lunch", "n": 1}') = lt.t('t1') AS same_id;
-- same metadata, other key order and spacing: the same request
SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '12.34 USD', 'lp:t1', 'transfer', '{"n":1,"note":"lunch"}') = lt.t('t1') AS same_id;
SELECT wallet.transfer(lt.a('bob'), lt.a('carol'), '12.34 USD', 'lp:t2', 'gift') = lt.t('t2') AS same_id;
SELECT lt.journal_rows() = :'journal_rows' AS nothing_posted;
SELECT * FROM lt.balances WHERE name IN ('bank', 'alice', 'bob', 'carol') ORDER BY name;
-- the same key with any other request is a conflict
SELECT q, lt.err(q) AS result FROM (VALUES
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '12.35 USD', 'lp:t1', metadata => '{"note": "lunch", "n": 1}')$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('carol'), '12.34 USD', 'lp:t1', metadata => '{"note": "lunch", "n": 1}')$$),
  ($$SELECT wallet.transfer(lt.a('bank'), lt.a('bob'), '12.34 USD', 'lp:t1', metadata => '{"note": "lunch", "n": 1}')$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '12.34 USD', 'lp:t1', 'gift', '{"note": "lunch", "n": 1}')$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '12.34 USD', 'lp:t1', metadata => '{"note": "dinner", "n": 1}')$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '12.34 USD', 'lp:t1')$$),
  ($$SELECT wallet.transfer(lt.a('bob'), lt.a('alice'), '12.34 USD', 'lp:t1', metadata => '{"note": "lunch", "n": 1}')$$),
  ($$SELECT wallet.transfer(lt.a('ebank'), lt.a('eve'), '12.34 EUR', 'lp:t1', metadata => '{"note": "lunch", "n": 1}')$$)
) AS t(q);
SELECT lt.errd($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '99.99 USD', 'lp:t1')$$) AS conflict;
SELECT lt.journal_rows() = :'journal_rows' AS nothing_posted;
-- keys are case and byte exact
SELECT lt.reg('t', wallet.transfer(lt.a('alice'), lt.a('bob'), '0.01 USD', 'LP:T1'), 't1_upper') <> lt.t('t1') AS other_key;

-- ---- transfer: refused ----
SELECT lt.journal_rows() AS journal_rows \gset
SELECT lt.errd($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '1000.00 USD', 'lp:too-much')$$) AS insufficient;
SELECT lt.errd($$SELECT wallet.transfer(lt.a('carol'), lt.a('bob'), '12.35 USD', 'lp:too-much-2')$$) AS insufficient;
SELECT lt.errd($$SELECT wallet.transfer(lt.a('alice'), lt.a('eve'), '1.00 USD', 'lp:usd-to-eur')$$) AS currency_mismatch;
-- a debit of int64's minimum: the DETAIL shows what was asked, positive
-- (negating it in 64 bits gave a negative "requested"; 1.6.0)
SELECT lt.errd($$SELECT wallet.post('lp:min', ARRAY[(lt.a('alice'), '-92233720368547758.08 USD'),
                                                   (lt.a('bank'), '92233720368547758.07 USD'),
                                                   (lt.a('bob'), '0.01 USD')]::wallet.leg[])$$) AS insufficient_min;
SELECT q, lt.err(q) AS result FROM (VALUES
  -- unknown accounts
  ($$SELECT wallet.transfer(-1, lt.a('bob'), '1.00 USD', 'lp:bad')$$),
  ($$SELECT wallet.transfer(lt.a('alice'), -1, '1.00 USD', 'lp:bad')$$),
  -- currency mismatch: amount vs both accounts, amount vs one
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '1.00 EUR', 'lp:bad')$$),
  ($$SELECT wallet.transfer(lt.a('eve'), lt.a('alice'), '1.00 EUR', 'lp:bad')$$),
  ($$SELECT wallet.transfer(lt.a('bank'), lt.a('jp'), '100 JPY', 'lp:bad')$$),
  -- non-positive amounts, same account
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '0.00 USD', 'lp:bad')$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '-1.00 USD', 'lp:bad')$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('alice'), '1.00 USD', 'lp:bad')$$),
  -- NULLs
  ($$SELECT wallet.transfer(NULL, lt.a('bob'), '1.00 USD', 'lp:bad')$$),
  ($$SELECT wallet.transfer(lt.a('alice'), NULL, '1.00 USD', 'lp:bad')$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), NULL, 'lp:bad')$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '1.00 USD', NULL)$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '1.00 USD', 'lp:bad', NULL)$$),
  -- keys: empty, 201 bytes, 101 two-byte characters (202 bytes)
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '1.00 USD', '')$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '1.00 USD', repeat('k', 201))$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '1.00 USD', repeat('é', 101))$$),
  -- kind: empty, 65 bytes
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '1.00 USD', 'lp:bad', '')$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '1.00 USD', 'lp:bad', repeat('k', 65))$$),
  -- metadata over 64 kB
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '1.00 USD', 'lp:bad', metadata => jsonb_build_object('blob', repeat('x', 65536)))$$)
) AS t(q);
SELECT lt.journal_rows() = :'journal_rows' AS nothing_posted;
SELECT count(*) AS txns_with_refused_keys FROM wallet.txn WHERE idempotency_key LIKE 'lp:bad%' OR idempotency_key LIKE 'lp:too-much%';
-- limits are inclusive: a 200-byte key, a 64-byte kind, a large metadata below 64 kB
SELECT lt.reg('t', wallet.transfer(lt.a('alice'), lt.a('bob'), '0.01 USD', repeat('k', 200), repeat('k', 64),
                                   jsonb_build_object('blob', repeat('x', 60000))), 'limits') IS NOT NULL AS posted;
SELECT length(kind) AS kind_len, length(metadata->>'blob') AS blob_len FROM wallet.transactions WHERE id = lt.t('limits');
-- a failed key can be used again once the request can succeed
SELECT lt.err($$SELECT wallet.transfer(lt.a('carol'), lt.a('bob'), '20.00 USD', 'lp:retry')$$) AS first_try;
SELECT wallet.transfer(lt.a('bank'), lt.a('carol'), '10.00 USD', 'lp:top-up-carol') IS NOT NULL AS topped_up;
SELECT lt.reg('t', wallet.transfer(lt.a('carol'), lt.a('bob'), '20.00 USD', 'lp:retry'), 'retry') IS NOT NULL AS second_try;
SELECT * FROM lt.balances WHERE name IN ('alice', 'bob', 'carol') ORDER BY name;

-- ---- post: multi-leg ----
SELECT lt.journal_rows() AS journal_rows \gset
SELECT lt.reg('t', wallet.post('lp:p3', ARRAY[(lt.a('alice'), '-30.00 USD'), (lt.a('bob'), '20.00 USD'),
                                              (lt.a('carol'), '10.00 USD')]::wallet.leg[]), 'p3') IS NOT NULL AS posted;
SELECT * FROM lt.legs(lt.t('p3'));
SELECT kind, metadata FROM wallet.transactions WHERE id = lt.t('p3');
-- two currencies, each balanced; kind and metadata
SELECT wallet.transfer(lt.a('ebank'), lt.a('eve'), '50.00 EUR', 'lp:fund-eve') IS NOT NULL AS posted;
SELECT lt.reg('t', wallet.post('lp:fx', ARRAY[(lt.a('alice'), '-11.00 USD'), (lt.a('bank'), '11.00 USD'),
                                              (lt.a('ebank'), '-10.00 EUR'), (lt.a('eve'), '10.00 EUR')]::wallet.leg[],
                               'fx', '{"rate": "0.9091"}'), 'fx') IS NOT NULL AS posted;
SELECT * FROM lt.legs(lt.t('fx'));
SELECT kind, metadata FROM wallet.transactions WHERE id = lt.t('fx');
-- the same account twice: its legs are netted for the funds check, each is kept
SELECT wallet.balance(lt.a('carol')) AS carol_before;
SELECT lt.reg('t', wallet.post('lp:netted', ARRAY[(lt.a('carol'), '-10.00 USD'), (lt.a('carol'), '7.00 USD'),
                                                  (lt.a('bob'), '3.00 USD')]::wallet.leg[]), 'netted') IS NOT NULL AS posted;
SELECT * FROM lt.legs(lt.t('netted'));
SELECT wallet.balance(lt.a('carol')) AS carol_after;
-- netting allows a debit larger than the balance when the net is covered
SELECT lt.reg('t', wallet.post('lp:netted-big', ARRAY[(lt.a('carol'), '-500.00 USD'), (lt.a('carol'), '499.00 USD'),
                                                      (lt.a('bob'), '1.00 USD')]::wallet.leg[]), 'netted_big') IS NOT NULL AS posted;
SELECT wallet.balance(lt.a('carol')) AS carol_after;
-- but not when the net overdraws
SELECT lt.errd($$SELECT wallet.post('lp:netted-over', ARRAY[(lt.a('carol'), '-500.00 USD'), (lt.a('carol'), '400.00 USD'), (lt.a('bob'), '100.00 USD')]::wallet.leg[])$$) AS netted_over;
-- replay and conflict
SELECT lt.journal_rows() AS journal_rows \gset
SELECT wallet.post('lp:p3', ARRAY[(lt.a('alice'), '-30.00 USD'), (lt.a('bob'), '20.00 USD'),
                                  (lt.a('carol'), '10.00 USD')]::wallet.leg[]) = lt.t('p3') AS same_id;
SELECT q, lt.err(q) AS result FROM (VALUES
  ($$SELECT wallet.post('lp:p3', ARRAY[(lt.a('alice'), '-30.00 USD'), (lt.a('carol'), '10.00 USD'), (lt.a('bob'), '20.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.post('lp:p3', ARRAY[(lt.a('alice'), '-30.00 USD'), (lt.a('bob'), '30.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.post('lp:p3', ARRAY[(lt.a('alice'), '-30.00 USD'), (lt.a('bob'), '20.00 USD'), (lt.a('carol'), '10.00 USD')]::wallet.leg[], 'other')$$),
  ($$SELECT wallet.post('lp:p3', ARRAY[(lt.a('alice'), '-30.00 USD'), (lt.a('bob'), '20.00 USD'), (lt.a('carol'), '10.00 USD')]::wallet.leg[], metadata => '{}')$$),
  -- keys are shared by transfer and post
  ($$SELECT wallet.post('lp:t1', ARRAY[(lt.a('alice'), '-12.34 USD'), (lt.a('bob'), '12.34 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bob'), '30.00 USD', 'lp:p3')$$)
) AS t(q);
SELECT lt.journal_rows() = :'journal_rows' AS nothing_posted;

-- ---- post: refused ----
SELECT lt.errd($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('alice'), '-1.00 USD'), (lt.a('bob'), '0.99 USD')]::wallet.leg[])$$) AS unbalanced;
SELECT lt.errd($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('bank'), '-1.00 USD'), (lt.a('bob'), '1.00 USD'), (lt.a('eve'), '1.00 EUR')]::wallet.leg[])$$) AS unbalanced;
SELECT lt.errd($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('bank'), '-1.00 USD'), (lt.a('eve'), '1.00 EUR')]::wallet.leg[])$$) AS unbalanced;
SELECT lt.errd($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('alice'), '-1.00 USD'), (lt.a('eve'), '1.00 USD')]::wallet.leg[])$$) AS leg_currency;
SELECT q, lt.err(q) AS result FROM (VALUES
  ($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('alice'), '1.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.post('lp:bad', ARRAY[]::wallet.leg[])$$),
  ($$SELECT wallet.post('lp:bad', NULL)$$),
  ($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('alice'), '-1.00 USD'), NULL, (lt.a('bob'), '1.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('alice'), '-1.00 USD'), (NULL, '1.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('alice'), '-1.00 USD'), (lt.a('bob'), NULL)]::wallet.leg[])$$),
  ($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('alice'), '-1.00 USD'), (lt.a('bob'), '1.00 USD'), (lt.a('carol'), '0.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('alice'), '-1.00 USD'), (-1, '1.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('alice'), '-1000.00 USD'), (lt.a('bob'), '1000.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('jp'), '-1 JPY'), (lt.a('bank'), '1 JPY')]::wallet.leg[])$$),
  ($$SELECT wallet.post(NULL, ARRAY[(lt.a('alice'), '-1.00 USD'), (lt.a('bob'), '1.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.post('', ARRAY[(lt.a('alice'), '-1.00 USD'), (lt.a('bob'), '1.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.post(repeat('k', 201), ARRAY[(lt.a('alice'), '-1.00 USD'), (lt.a('bob'), '1.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('alice'), '-1.00 USD'), (lt.a('bob'), '1.00 USD')]::wallet.leg[], NULL)$$),
  ($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('alice'), '-1.00 USD'), (lt.a('bob'), '1.00 USD')]::wallet.leg[], repeat('k', 65))$$),
  ($$SELECT wallet.post('lp:bad', ARRAY[(lt.a('alice'), '-1.00 USD'), (lt.a('bob'), '1.00 USD')]::wallet.leg[], metadata => jsonb_build_object('blob', repeat('x', 65536)))$$)
) AS t(q);
SELECT lt.journal_rows() = :'journal_rows' AS nothing_posted;
SELECT * FROM lt.balances ORDER BY name;

-- ---- the journal is append-only, for its owner too ----
SELECT current_user = (SELECT relowner::regrole::text FROM pg_class WHERE oid = 'wallet.txn'::regclass) AS we_own_txn,
       current_user = (SELECT relowner::regrole::text FROM pg_class WHERE oid = 'wallet.entry'::regclass) AS we_own_entry,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser;
SELECT q, lt.err(q) AS result FROM (VALUES
  ($$UPDATE wallet.txn SET kind = 'edited' WHERE id = lt.t('t1')$$),
  ($$UPDATE wallet.txn SET metadata = NULL$$),
  ($$DELETE FROM wallet.txn WHERE id = lt.t('t1')$$),
  ($$DELETE FROM wallet.txn$$),
  ($$TRUNCATE wallet.txn$$),
  ($$TRUNCATE wallet.txn CASCADE$$),
  ($$UPDATE wallet.entry SET amount = amount * 2 WHERE txn_id = lt.t('t1')$$),
  ($$DELETE FROM wallet.entry WHERE txn_id = lt.t('t1')$$),
  ($$TRUNCATE wallet.entry$$),
  ($$DELETE FROM wallet.account WHERE id = lt.a('alice')$$),
  ($$TRUNCATE wallet.account$$)
) AS t(q);
SELECT lt.journal_rows() = :'journal_rows' AS nothing_changed;
SELECT kind FROM wallet.transactions WHERE id = lt.t('t1');
SELECT * FROM lt.legs(lt.t('t1'));

-- ---- reverse ----
SELECT * FROM lt.balances WHERE name IN ('alice', 'bob') ORDER BY name;
SELECT lt.reg('t', wallet.reverse(lt.t('t1'), 'lp:rev-t1', 'customer complaint'), 'rev_t1') IS NOT NULL AS reversed;
SELECT * FROM lt.legs(lt.t('rev_t1'));
-- exactly the opposite legs
SELECT bool_and(r.account_id = o.account_id AND r.amount = -o.amount) AND count(*) = 2 AS exact_opposite
  FROM wallet.entries o JOIN wallet.entries r ON r.txn_id = lt.t('rev_t1') AND r.leg = o.leg
 WHERE o.txn_id = lt.t('t1');
SELECT kind, reverses = lt.t('t1') AS links_original, metadata->>'reason' AS reason,
       (metadata->>'reverses')::bigint = lt.t('t1') AS metadata_links, forced
  FROM wallet.transactions WHERE id = lt.t('rev_t1');
SELECT * FROM lt.balances WHERE name IN ('alice', 'bob') ORDER BY name;
-- at most once: same key and request → the same id; any other key → WL010
SELECT lt.journal_rows() AS journal_rows \gset
SELECT wallet.reverse(lt.t('t1'), 'lp:rev-t1', 'customer complaint') = lt.t('rev_t1') AS same_id;
SELECT lt.errd($$SELECT wallet.reverse(lt.t('t1'), 'lp:rev-t1-again', 'customer complaint')$$) AS second_reversal;
SELECT q, lt.err(q) AS result FROM (VALUES
  ($$SELECT wallet.reverse(lt.t('t1'), 'lp:rev-t1', 'another reason')$$),
  ($$SELECT wallet.reverse(lt.t('t2'), 'lp:rev-t1', 'customer complaint')$$),
  ($$SELECT wallet.reverse(lt.t('t1'), 'lp:t2')$$),
  ($$SELECT wallet.reverse(-1, 'lp:rev-bad')$$),
  ($$SELECT wallet.reverse(NULL, 'lp:rev-bad')$$),
  ($$SELECT wallet.reverse(lt.t('t2'), NULL)$$),
  ($$SELECT wallet.reverse(lt.t('t2'), 'lp:rev-bad', allow_negative => NULL)$$),
  ($$SELECT wallet.reverse(lt.t('t2'), '')$$),
  ($$SELECT wallet.reverse(lt.t('t2'), repeat('k', 201))$$)
) AS t(q);
SELECT lt.journal_rows() = :'journal_rows' AS nothing_posted;
-- a multi-leg, multi-currency transaction reverses leg by leg
SELECT lt.reg('t', wallet.reverse(lt.t('fx'), 'lp:rev-fx'), 'rev_fx') IS NOT NULL AS reversed;
SELECT * FROM lt.legs(lt.t('rev_fx'));
SELECT metadata FROM wallet.transactions WHERE id = lt.t('rev_fx') \gset rev_fx_
SELECT :'rev_fx_metadata'::jsonb->'reason' AS reason_null;
-- a reversal that would overdraw: refused, unless forced
SELECT lt.reg('a', wallet.open_account('lp-dave', 'USD'), 'dave') IS NOT NULL AS opened;
SELECT lt.reg('t', wallet.transfer(lt.a('bank'), lt.a('dave'), '50.00 USD', 'lp:fund-dave'), 'fund_dave') IS NOT NULL AS posted;
SELECT wallet.transfer(lt.a('dave'), lt.a('bob'), '45.00 USD', 'lp:dave-spends') IS NOT NULL AS spent;
SELECT lt.errd($$SELECT wallet.reverse(lt.t('fund_dave'), 'lp:rev-fund-dave', 'chargeback')$$) AS overdraw;
SELECT * FROM lt.balances WHERE name = 'dave';
SELECT lt.reg('t', wallet.reverse(lt.t('fund_dave'), 'lp:rev-fund-dave', 'chargeback', allow_negative => true), 'rev_fund_dave') IS NOT NULL AS reversed;
SELECT * FROM lt.balances WHERE name = 'dave';
SELECT forced, reverses = lt.t('fund_dave') AS links_original FROM wallet.transactions WHERE id = lt.t('rev_fund_dave');
-- the forced negative is reported, not hidden; the account still cannot spend
SELECT check_name, ok, detail LIKE '%negative through forced reversals%' AS mentions_forced
  FROM wallet.verify() WHERE check_name = 'no_forbidden_negative';
SELECT lt.err($$SELECT wallet.transfer(lt.a('dave'), lt.a('bob'), '0.01 USD', 'lp:dave-spends-more')$$) AS spend_while_negative;
-- a forced reversal of a transaction whose accounts can pay is just a reversal
SELECT lt.reg('t', wallet.transfer(lt.a('bank'), lt.a('bob'), '1.00 USD', 'lp:small'), 'small') IS NOT NULL AS posted;
SELECT lt.reg('t', wallet.reverse(lt.t('small'), 'lp:rev-small', allow_negative => true), 'rev_small') IS NOT NULL AS reversed;
SELECT * FROM lt.legs(lt.t('rev_small'));
-- a reversal posts to the accounts again: not to a frozen one
SELECT wallet.freeze_account(lt.a('bob'));
SELECT lt.err($$SELECT wallet.reverse(lt.t('t2'), 'lp:rev-t2')$$) AS reverse_frozen;
SELECT wallet.unfreeze_account(lt.a('bob'));

-- ---- legs near the int64 limit: the totals decide, not the leg order ----
-- (per currency and per account, summed in 128 bits: 1.3.0)
SELECT lt.reg('a', wallet.open_account('lp-ox', 'JPY', 'system', true), 'ox') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('lp-oy', 'JPY', 'system', true), 'oy') IS NOT NULL AS opened;
SELECT wallet.post('lp:big-1', ARRAY[(lt.a('ox'), wallet.amount(9223372036854775807, 'JPY')),
                                     (lt.a('oy'), wallet.amount(1, 'JPY')),
                                     (lt.a('oy'), wallet.amount(-9223372036854775807, 'JPY')),
                                     (lt.a('ox'), wallet.amount(-1, 'JPY'))]::wallet.leg[]) IS NOT NULL AS posted_in_any_order;
SELECT wallet.post('lp:big-2', ARRAY[(lt.a('ox'), wallet.amount(1, 'JPY')),
                                     (lt.a('ox'), wallet.amount(-9223372036854775807, 'JPY')),
                                     (lt.a('oy'), wallet.amount(9223372036854775807, 'JPY')),
                                     (lt.a('oy'), wallet.amount(-1, 'JPY'))]::wallet.leg[]) IS NOT NULL AS and_back;
SELECT wallet.balance(lt.a('ox')) AS ox, wallet.balance(lt.a('oy')) AS oy;
-- a total that does not fit is still refused, whatever the order
SELECT lt.err($$SELECT wallet.post('lp:big-3', ARRAY[(lt.a('ox'), wallet.amount(9223372036854775807, 'JPY')),
                                                   (lt.a('ox'), wallet.amount(1, 'JPY')),
                                                   (lt.a('oy'), wallet.amount(-9223372036854775807, 'JPY')),
                                                   (lt.a('oy'), wallet.amount(-1, 'JPY'))]::wallet.leg[])$$) AS account_total_too_big;
SELECT lt.err($$SELECT wallet.post('lp:big-4', ARRAY[(lt.a('ox'), wallet.amount(9223372036854775807, 'JPY')),
                                                   (lt.a('oy'), wallet.amount(9223372036854775807, 'JPY')),
                                                   (lt.a('jp'), wallet.amount(-1, 'JPY'))]::wallet.leg[])$$) AS unbalanced_past_int64;

-- ---- the ledger is consistent ----
SELECT check_name, ok FROM wallet.verify() WHERE check_name NOT LIKE 'audit:%' ORDER BY check_name;
SELECT bool_and(ok) AS all_ok FROM wallet.verify();
SELECT * FROM lt.balances ORDER BY name;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA lt CASCADE;
RESET client_min_messages;
