-- Holds (two-phase): wallet.hold, capture, void, expire_holds, the
-- wallet.holds view.  Contract: SPEC.md "Holds"; SQLSTATEs: src/wallet.h.
-- Test helpers (dropped at the end): ids are never printed, because they
-- depend on what ran before in this database.  reg() names an id; a(),
-- t(), h() give back the account, transaction or hold of a name; err(q)
-- runs q and returns 'ok' or 'SQLSTATE: message', errd(q) adds DETAIL and
-- HINT; in both, ids named with reg() are shown by their names.  state(q)
-- returns only the SQLSTATE.
\i sql/include/lt.sql
-- accounts named so far: posted, available and held
CREATE VIEW lt.balances AS
    SELECT n.name, v.balance, v.available, v.held FROM wallet.accounts v
      JOIN lt.names n ON n.kind = 'a' AND n.id = v.id;
-- holds named so far, without ids and times
CREATE VIEW lt.holds AS
    SELECT n.name, f.name AS from_name, t.name AS to_name, h.amount, h.kind, h.metadata, h.status,
           h.expires_at IS NOT NULL AS expires, h.ended_at IS NOT NULL AS ended, h.captured,
           h.capture_txn IS NOT NULL AS has_capture_txn
      FROM wallet.holds h
      JOIN lt.names n ON n.kind = 'h' AND n.id = h.id
      LEFT JOIN lt.names f ON f.kind = 'a' AND f.id = h.from_account
      LEFT JOIN lt.names t ON t.kind = 'a' AND t.id = h.to_account;

SELECT lt.reg('a', wallet.open_account('lh-bank', 'USD', 'system', true), 'bank') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('lh-payer', 'USD'), 'payer') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('lh-shop', 'USD', 'merchant'), 'shop') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('lh-eve', 'EUR'), 'eve') IS NOT NULL AS opened;
SELECT wallet.transfer(lt.a('bank'), lt.a('payer'), '100.00 USD', 'lh:fund-payer') IS NOT NULL AS funded;

-- ---- hold: available drops, posted balance does not ----
SELECT lt.reg('h', wallet.hold(lt.a('payer'), lt.a('shop'), '30.00 USD', 'lh:h1'), 'h1') IS NOT NULL AS held;
SELECT * FROM lt.balances WHERE name IN ('payer', 'shop') ORDER BY name;
SELECT wallet.balance(lt.a('payer')) AS balance, wallet.available(lt.a('payer')) AS available;
SELECT * FROM lt.holds WHERE name = 'h1';
SELECT idempotency_key, created_at IS NOT NULL AS stamped FROM wallet.holds WHERE id = lt.h('h1');
-- a hold posts nothing: the payer's only entry is its funding
SELECT count(*) AS entries_of_payer FROM wallet.entry WHERE account_id = lt.a('payer');
-- idempotent by key: the same request returns the same hold and reserves nothing more
SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '30.00 USD', 'lh:h1') = lt.h('h1') AS same_id;
SELECT * FROM lt.balances WHERE name = 'payer';
SELECT count(*) AS holds_with_key FROM wallet.holds WHERE idempotency_key = 'lh:h1';
-- the same key with another request: WL006
SELECT lt.errd($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '31.00 USD', 'lh:h1')$$) AS conflict;
SELECT q, lt.err(q) AS result FROM (VALUES
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('bank'), '30.00 USD', 'lh:h1')$$),
  ($$SELECT wallet.hold(lt.a('bank'), lt.a('shop'), '30.00 USD', 'lh:h1')$$),
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '30.00 USD', 'lh:h1', '2999-01-01 00:00:00+00')$$),
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '30.00 USD', 'lh:h1', kind => 'preauth')$$),
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '30.00 USD', 'lh:h1', metadata => '{"order": 1}')$$)
) AS t(q);
SELECT * FROM lt.balances WHERE name = 'payer';

-- ---- hold: refused ----
-- funds: available counts the holds already placed
SELECT lt.errd($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '70.01 USD', 'lh:too-much')$$) AS hold_insufficient;
SELECT lt.errd($$SELECT wallet.transfer(lt.a('payer'), lt.a('shop'), '70.01 USD', 'lh:too-much-transfer')$$) AS transfer_insufficient;
SELECT lt.errd($$SELECT wallet.hold(lt.a('payer'), lt.a('eve'), '1.00 USD', 'lh:bad')$$) AS currency_mismatch;
SELECT q, lt.err(q) AS result FROM (VALUES
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '1.00 EUR', 'lh:bad')$$),
  ($$SELECT wallet.hold(lt.a('payer'), -1, '1.00 USD', 'lh:bad')$$),
  ($$SELECT wallet.hold(-1, lt.a('shop'), '1.00 USD', 'lh:bad')$$),
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('payer'), '1.00 USD', 'lh:bad')$$),
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '0.00 USD', 'lh:bad')$$),
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '-1.00 USD', 'lh:bad')$$),
  ($$SELECT wallet.hold(NULL, lt.a('shop'), '1.00 USD', 'lh:bad')$$),
  ($$SELECT wallet.hold(lt.a('payer'), NULL, '1.00 USD', 'lh:bad')$$),
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), NULL, 'lh:bad')$$),
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '1.00 USD', NULL)$$),
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '1.00 USD', '')$$),
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '1.00 USD', repeat('k', 201))$$),
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '1.00 USD', 'lh:bad', kind => NULL)$$),
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '1.00 USD', 'lh:bad', kind => repeat('k', 65))$$),
  ($$SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '1.00 USD', 'lh:bad', metadata => jsonb_build_object('blob', repeat('x', 65536)))$$)
) AS t(q);
SELECT count(*) AS holds_with_refused_keys FROM wallet.holds WHERE idempotency_key LIKE 'lh:bad%' OR idempotency_key LIKE 'lh:too-much%';
SELECT * FROM lt.balances WHERE name = 'payer';

-- ---- capture: all ----
SELECT lt.reg('t', wallet.capture(lt.h('h1')), 'cap_h1') IS NOT NULL AS captured;
SELECT * FROM lt.balances WHERE name IN ('payer', 'shop') ORDER BY name;
SELECT * FROM lt.holds WHERE name = 'h1';
SELECT capture_txn = lt.t('cap_h1') AS links_txn FROM wallet.holds WHERE id = lt.h('h1');
SELECT kind FROM wallet.transactions WHERE id = lt.t('cap_h1');
SELECT e.amount, e.account_id = lt.a('payer') AS from_payer, e.account_id = lt.a('shop') AS to_shop
  FROM wallet.entries e WHERE e.txn_id = lt.t('cap_h1') ORDER BY e.leg;

-- ---- capture: part; the rest is released ----
SELECT lt.reg('h', wallet.hold(lt.a('payer'), lt.a('shop'), '20.00 USD', 'lh:h2', kind => 'preauth',
                               metadata => '{"order": "A-2"}'), 'h2') IS NOT NULL AS held;
SELECT * FROM lt.balances WHERE name = 'payer';
-- refused captures leave the hold pending
SELECT q, lt.err(q) AS result FROM (VALUES
  ($$SELECT wallet.capture(lt.h('h2'), '20.01 USD')$$),
  ($$SELECT wallet.capture(lt.h('h2'), '0.00 USD')$$),
  ($$SELECT wallet.capture(lt.h('h2'), '-1.00 USD')$$),
  ($$SELECT wallet.capture(lt.h('h2'), '5.00 EUR')$$),
  ($$SELECT wallet.capture(NULL)$$)
) AS t(q);
SELECT * FROM lt.holds WHERE name = 'h2';
SELECT lt.reg('t', wallet.capture(lt.h('h2'), '7.50 USD'), 'cap_h2') IS NOT NULL AS captured;
SELECT * FROM lt.balances WHERE name IN ('payer', 'shop') ORDER BY name;
SELECT * FROM lt.holds WHERE name = 'h2';
-- the capture carries the hold's kind and metadata
SELECT kind, metadata FROM wallet.transactions WHERE id = lt.t('cap_h2');
SELECT e.amount FROM wallet.entries e WHERE e.txn_id = lt.t('cap_h2') ORDER BY e.leg;
-- capturing exactly the held amount, given explicitly
SELECT lt.reg('h', wallet.hold(lt.a('payer'), lt.a('shop'), '2.00 USD', 'lh:h2b'), 'h2b') IS NOT NULL AS held;
SELECT wallet.capture(lt.h('h2b'), '2.00 USD') IS NOT NULL AS captured;
SELECT * FROM lt.holds WHERE name = 'h2b';

-- ---- void ----
SELECT lt.reg('h', wallet.hold(lt.a('payer'), lt.a('shop'), '10.00 USD', 'lh:h3'), 'h3') IS NOT NULL AS held;
SELECT * FROM lt.balances WHERE name = 'payer';
SELECT wallet.void(lt.h('h3'));
SELECT * FROM lt.balances WHERE name IN ('payer', 'shop') ORDER BY name;
SELECT * FROM lt.holds WHERE name = 'h3';

-- ---- each hold ends exactly once ----
SELECT q, lt.errd(q) AS result FROM (VALUES
  ($$SELECT wallet.capture(lt.h('h3'))$$),
  ($$SELECT wallet.capture(lt.h('h3'), '1.00 USD')$$),
  ($$SELECT wallet.void(lt.h('h3'))$$),
  ($$SELECT wallet.capture(lt.h('h1'))$$),
  ($$SELECT wallet.void(lt.h('h1'))$$),
  ($$SELECT wallet.capture(lt.h('h2'), '1.00 USD')$$),
  ($$SELECT wallet.void(lt.h('h2'))$$)
) AS t(q);
-- the hold's key still returns it, ended
SELECT wallet.hold(lt.a('payer'), lt.a('shop'), '10.00 USD', 'lh:h3') = lt.h('h3') AS same_id;
SELECT status FROM wallet.holds WHERE id = lt.h('h3');
SELECT * FROM lt.balances WHERE name IN ('payer', 'shop') ORDER BY name;
-- unknown hold, NULL
SELECT q, lt.errd(q) AS result FROM (VALUES
  ($$SELECT wallet.capture(-1)$$),
  ($$SELECT wallet.capture(-1, '1.00 USD')$$),
  ($$SELECT wallet.void(-1)$$),
  ($$SELECT wallet.void(NULL)$$)
) AS t(q);

-- ---- expiry ----
-- one transaction: now() is fixed and no background job can expire the
-- holds in between
BEGIN;
SELECT wallet.expire_holds() >= 0 AS expired_leftovers;
SELECT lt.reg('h', wallet.hold(lt.a('payer'), lt.a('shop'), '4.00 USD', 'lh:h4', now() - interval '1 hour'), 'h4_expired') IS NOT NULL AS held;
SELECT lt.reg('h', wallet.hold(lt.a('payer'), lt.a('shop'), '5.00 USD', 'lh:h5', now() - interval '1 second'), 'h5_expired') IS NOT NULL AS held;
SELECT lt.reg('h', wallet.hold(lt.a('payer'), lt.a('shop'), '6.00 USD', 'lh:h6', now() + interval '1 hour'), 'h6_later') IS NOT NULL AS held;
SELECT lt.reg('h', wallet.hold(lt.a('payer'), lt.a('shop'), '7.00 USD', 'lh:h7'), 'h7_never') IS NOT NULL AS held;
SELECT * FROM lt.balances WHERE name = 'payer';
-- past its expiry a hold cannot be captured
SELECT lt.err(format('SELECT wallet.capture(%s)', lt.h('h4_expired'))) AS capture_expired;
SELECT lt.err(format($$SELECT wallet.capture(%s, '1.00 USD')$$, lt.h('h5_expired'))) AS capture_expired;
SELECT wallet.expire_holds() AS expired;
SELECT * FROM lt.holds WHERE name LIKE 'h_\_%' ORDER BY name;
SELECT * FROM lt.balances WHERE name IN ('payer', 'shop') ORDER BY name;
SELECT wallet.expire_holds() AS expired_again;
SELECT q, lt.err(q) AS result FROM (VALUES
  ($$SELECT wallet.capture(lt.h('h4_expired'))$$),
  ($$SELECT wallet.void(lt.h('h4_expired'))$$)
) AS t(q);
COMMIT;
-- the others still end normally
SELECT wallet.capture(lt.h('h6_later'), '1.00 USD') IS NOT NULL AS captured;
SELECT wallet.void(lt.h('h7_never'));
SELECT name, status, captured FROM lt.holds WHERE name IN ('h6_later', 'h7_never') ORDER BY name;
SELECT * FROM lt.balances WHERE name IN ('payer', 'shop') ORDER BY name;

-- ---- holds and account status ----
SELECT lt.reg('h', wallet.hold(lt.a('payer'), lt.a('shop'), '3.00 USD', 'lh:h8'), 'h8') IS NOT NULL AS held;
SELECT lt.reg('h', wallet.hold(lt.a('payer'), lt.a('shop'), '2.00 USD', 'lh:h9'), 'h9') IS NOT NULL AS held;
SELECT wallet.freeze_account(lt.a('payer'));
-- a frozen account's hold cannot be captured, but can be voided
SELECT lt.err(format('SELECT wallet.capture(%s)', lt.h('h8'))) AS capture_frozen;
SELECT wallet.void(lt.h('h8'));
SELECT wallet.unfreeze_account(lt.a('payer'));
SELECT wallet.freeze_account(lt.a('shop'));
SELECT lt.err(format('SELECT wallet.capture(%s)', lt.h('h9'))) AS capture_to_frozen;
SELECT wallet.unfreeze_account(lt.a('shop'));
SELECT wallet.capture(lt.h('h9')) IS NOT NULL AS captured;
SELECT name, status, captured FROM lt.holds WHERE name IN ('h8', 'h9') ORDER BY name;
-- an account allowed to go negative may hold more than it has
SELECT lt.reg('h', wallet.hold(lt.a('bank'), lt.a('shop'), '1000.00 USD', 'lh:h10'), 'h10') IS NOT NULL AS held;
SELECT * FROM lt.balances WHERE name = 'bank';
SELECT wallet.void(lt.h('h10'));

-- ---- hold history is append-only ----
SELECT q, lt.err(q) AS result FROM (VALUES
  ($$UPDATE wallet.hold SET amount = 1 WHERE id = lt.h('h8')$$),
  ($$UPDATE wallet.hold SET status = 'pending' WHERE id = lt.h('h8')$$),
  ($$UPDATE wallet.hold SET status = 'captured', captured = amount WHERE id = lt.h('h3')$$),
  ($$DELETE FROM wallet.hold WHERE id = lt.h('h8')$$),
  ($$TRUNCATE wallet.hold$$)
) AS t(q);
SELECT * FROM lt.holds WHERE name IN ('h3', 'h8') ORDER BY name;

-- ---- every hold of this file, and the ledger is consistent ----
SELECT name, from_name, to_name, amount, status, captured FROM lt.holds ORDER BY name;
SELECT * FROM lt.balances ORDER BY name;
SELECT sum(held) AS held_total FROM lt.balances WHERE name IN ('payer', 'shop', 'bank');
SELECT check_name, ok FROM wallet.verify() WHERE check_name NOT LIKE 'audit:%' ORDER BY check_name;
SELECT bool_and(ok) AS all_ok FROM wallet.verify();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA lt CASCADE;
RESET client_min_messages;
