-- Accounts: wallet.open_account, the wallet.accounts view, balance and
-- available, freeze / unfreeze / close, set_hot and fold_hot.
-- Contract: SPEC.md "Accounts", "Reading"; SQLSTATEs: src/wallet.h.
-- Test helpers (dropped at the end): ids are never printed, because they
-- depend on what ran before in this database.  reg() names an id; a(),
-- t(), h() give back the account, transaction or hold of a name; err(q)
-- runs q and returns 'ok' or 'SQLSTATE: message', errd(q) adds DETAIL and
-- HINT; in both, ids named with reg() are shown by their names.  state(q)
-- returns only the SQLSTATE.
\i sql/include/lt.sql

-- ---- open_account: defaults, kinds, allow_negative, metadata ----
SELECT lt.reg('a', wallet.open_account('la-alice', 'USD'), 'alice') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('la-bank', 'usd', 'system', true), 'bank') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('la-eve', 'EUR', kind => 'merchant',
                                       metadata => '{"tier": "gold", "tags": ["a", "b"]}'), 'eve') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account(owner => 'la-jp', currency => 'jpy', allow_negative => false), 'jp') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('la-bh', 'BHD', 'user', false, NULL), 'bh') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('la-coin', 'Coin'), 'coin') IS NOT NULL AS opened;
-- owner and kind at their maximum length, owner may repeat
SELECT lt.reg('a', wallet.open_account(repeat('o', 200), 'USD', repeat('k', 64)), 'long') IS NOT NULL AS opened;
SELECT lt.reg('a', wallet.open_account('la-alice', 'USD'), 'alice2') IS NOT NULL AS opened;
SELECT count(DISTINCT id) AS distinct_ids FROM lt.names WHERE kind = 'a';
-- every column of the view (ids and created_at aside)
SELECT n.name, left(v.owner, 10) AS owner, length(v.owner) AS owner_len,
       v.currency, left(v.kind, 10) AS kind, length(v.kind) AS kind_len, v.allow_negative, v.status, v.hot, v.balance, v.available, v.held,
       v.debt, v.version, v.metadata, v.created_at IS NOT NULL AS has_created_at
  FROM wallet.accounts v JOIN lt.names n ON n.kind = 'a' AND n.id = v.id
 ORDER BY n.name;
SELECT wallet.balance(lt.a('eve')) AS balance, wallet.available(lt.a('eve')) AS available,
       wallet.balance(lt.a('jp')) AS jpy, wallet.balance(lt.a('bh')) AS bhd,
       wallet.balance(lt.a('coin')) AS coin;
-- the view has (at least) these columns
SELECT c.col, format_type(a.atttypid, a.atttypmod) AS type
  FROM unnest(ARRAY['id', 'owner', 'currency', 'kind', 'allow_negative', 'status', 'hot',
                    'balance', 'available', 'held', 'metadata', 'created_at']) WITH ORDINALITY AS c(col, n)
  LEFT JOIN pg_attribute a ON a.attrelid = 'wallet.accounts'::regclass AND a.attname = c.col AND NOT a.attisdropped
 ORDER BY c.n;

-- ---- open_account: bad input ----
SELECT q, lt.errd(q) AS result FROM (VALUES
  ($$SELECT wallet.open_account(NULL, 'USD')$$),
  ($$SELECT wallet.open_account('x', NULL)$$),
  ($$SELECT wallet.open_account('x', 'USD', NULL)$$),
  ($$SELECT wallet.open_account('x', 'USD', 'user', NULL)$$),
  ($$SELECT wallet.open_account('x', 'US')$$),
  ($$SELECT wallet.open_account('x', '')$$),
  ($$SELECT wallet.open_account('x', 'U$D')$$),
  ($$SELECT wallet.open_account('x', ' USD')$$),
  ($$SELECT wallet.open_account('x', 'XYZ')$$),
  ($$SELECT wallet.open_account('x', 'ZZZZZZ')$$),
  ($$SELECT wallet.open_account('', 'USD')$$),
  ($$SELECT wallet.open_account(repeat('o', 201), 'USD')$$),
  ($$SELECT wallet.open_account('x', 'USD', '')$$),
  ($$SELECT wallet.open_account('x', 'USD', repeat('k', 65))$$),
  ($$SELECT wallet.open_account('x', 'USD', repeat('é', 33))$$),
  ($$SELECT wallet.open_account('x', 'USD', metadata => jsonb_build_object('blob', repeat('x', 70000)))$$)
) AS t(q);
-- none of the refused calls opened an account
SELECT count(*) AS opened_by_refused_calls FROM wallet.account WHERE owner IN ('x', '') OR length(owner) > 200;

-- ---- balance / available: unknown account ----
SELECT q, lt.errd(q) AS result FROM (VALUES
  ($$SELECT wallet.balance(-1)$$),
  ($$SELECT wallet.available(-1)$$),
  ($$SELECT wallet.balance(9223372036854775807)$$)
) AS t(q);
-- a NULL account is bad input (22004), as everywhere else in the API
SELECT q, lt.state(q) AS result FROM (VALUES
  ($$SELECT wallet.balance(NULL)$$),
  ($$SELECT wallet.available(NULL)$$)
) AS t(q);

-- ---- freeze / unfreeze ----
SELECT wallet.transfer(lt.a('bank'), lt.a('alice'), '100.00 USD', 'la:fund-alice') IS NOT NULL AS funded;
SELECT wallet.freeze_account(lt.a('alice'));
SELECT status, version FROM wallet.accounts WHERE id = lt.a('alice');
-- freezing a frozen account is a no-op (no new version)
SELECT wallet.freeze_account(lt.a('alice'));
SELECT status, version FROM wallet.accounts WHERE id = lt.a('alice');
-- a frozen account takes no postings, in either direction
SELECT q, lt.errd(q) AS result FROM (VALUES
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bank'), '1.00 USD', 'la:frozen-out')$$),
  ($$SELECT wallet.transfer(lt.a('bank'), lt.a('alice'), '1.00 USD', 'la:frozen-in')$$),
  ($$SELECT wallet.post('la:frozen-post', ARRAY[(lt.a('bank'), '1.00 USD'), (lt.a('alice'), '-1.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.post('la:frozen-post-in', ARRAY[(lt.a('bank'), '-1.00 USD'), (lt.a('alice'), '1.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.hold(lt.a('alice'), lt.a('bank'), '1.00 USD', 'la:frozen-hold-out')$$),
  ($$SELECT wallet.hold(lt.a('bank'), lt.a('alice'), '1.00 USD', 'la:frozen-hold-in')$$)
) AS t(q);
-- reading still works, and the balance did not move
SELECT wallet.balance(lt.a('alice')) AS balance, wallet.available(lt.a('alice')) AS available;
SELECT count(*) AS txns_with_refused_keys FROM wallet.txn WHERE idempotency_key LIKE 'la:frozen%';
SELECT wallet.unfreeze_account(lt.a('alice'));
SELECT status, version FROM wallet.accounts WHERE id = lt.a('alice');
-- unfreezing an active account is a no-op
SELECT wallet.unfreeze_account(lt.a('alice'));
SELECT status, version FROM wallet.accounts WHERE id = lt.a('alice');
SELECT wallet.transfer(lt.a('alice'), lt.a('bank'), '1.00 USD', 'la:after-unfreeze') IS NOT NULL AS posted;
SELECT wallet.balance(lt.a('alice')) AS balance;

-- ---- close ----
-- only at zero balance ...
SELECT lt.errd(format('SELECT wallet.close_account(%s)', lt.a('alice'))) AS close_with_balance;
SELECT wallet.transfer(lt.a('alice'), lt.a('bank'), '99.00 USD', 'la:empty-alice') IS NOT NULL AS emptied;
-- ... and with nothing held from it or towards it
SELECT lt.reg('h', wallet.hold(lt.a('bank'), lt.a('alice'), '5.00 USD', 'la:hold-to-alice'), 'to_alice') IS NOT NULL AS held;
SELECT lt.errd(format('SELECT wallet.close_account(%s)', lt.a('alice'))) AS close_with_hold_towards;
SELECT wallet.void(lt.h('to_alice'));
-- a hold from an account (one allowed to go negative, so it can hold at zero)
SELECT lt.reg('a', wallet.open_account('la-credit', 'USD', 'credit', true), 'credit') IS NOT NULL AS opened;
SELECT lt.reg('h', wallet.hold(lt.a('credit'), lt.a('bank'), '5.00 USD', 'la:hold-from-credit'), 'from_credit') IS NOT NULL AS held;
SELECT balance, available, held FROM wallet.accounts WHERE id = lt.a('credit');
SELECT lt.errd(format('SELECT wallet.close_account(%s)', lt.a('credit'))) AS close_with_hold_from;
SELECT wallet.void(lt.h('from_credit'));
SELECT wallet.close_account(lt.a('credit'));
SELECT status, balance, available, held FROM wallet.accounts WHERE id = lt.a('credit');
SELECT wallet.balance(lt.a('alice')) AS balance, wallet.available(lt.a('alice')) AS available;
SELECT wallet.close_account(lt.a('alice'));
SELECT status FROM wallet.accounts WHERE id = lt.a('alice');
-- closing a closed account is a no-op
SELECT wallet.close_account(lt.a('alice'));
SELECT status, balance FROM wallet.accounts WHERE id = lt.a('alice');
-- a closed account takes no postings and cannot be frozen or reopened
SELECT q, lt.errd(q) AS result FROM (VALUES
  ($$SELECT wallet.transfer(lt.a('bank'), lt.a('alice'), '1.00 USD', 'la:closed-in')$$),
  ($$SELECT wallet.transfer(lt.a('alice'), lt.a('bank'), '1.00 USD', 'la:closed-out')$$),
  ($$SELECT wallet.post('la:closed-post', ARRAY[(lt.a('bank'), '-1.00 USD'), (lt.a('alice'), '1.00 USD')]::wallet.leg[])$$),
  ($$SELECT wallet.hold(lt.a('bank'), lt.a('alice'), '1.00 USD', 'la:closed-hold')$$),
  ($$SELECT wallet.freeze_account(lt.a('alice'))$$),
  ($$SELECT wallet.unfreeze_account(lt.a('alice'))$$)
) AS t(q);
SELECT status, balance, available FROM wallet.accounts WHERE id = lt.a('alice');
-- a frozen account at zero can be closed
SELECT lt.reg('a', wallet.open_account('la-frozen', 'USD'), 'frozen') IS NOT NULL AS opened;
SELECT wallet.freeze_account(lt.a('frozen'));
SELECT wallet.close_account(lt.a('frozen'));
SELECT status FROM wallet.accounts WHERE id = lt.a('frozen');
-- a negative balance also blocks closing
SELECT lt.reg('a', wallet.open_account('la-neg', 'USD', 'system', true), 'neg') IS NOT NULL AS opened;
SELECT wallet.transfer(lt.a('neg'), lt.a('bank'), '0.01 USD', 'la:neg') IS NOT NULL AS posted;
SELECT lt.errd(format('SELECT wallet.close_account(%s)', lt.a('neg'))) AS close_negative;
-- unknown account, NULL
SELECT q, lt.errd(q) AS result FROM (VALUES
  ($$SELECT wallet.freeze_account(-1)$$),
  ($$SELECT wallet.unfreeze_account(-1)$$),
  ($$SELECT wallet.close_account(-1)$$),
  ($$SELECT wallet.freeze_account(NULL)$$),
  ($$SELECT wallet.unfreeze_account(NULL)$$),
  ($$SELECT wallet.close_account(NULL)$$)
) AS t(q);

-- ---- set_hot and fold_hot ----
SELECT lt.reg('a', wallet.open_account('la-star', 'USD', 'creator'), 'star') IS NOT NULL AS opened;
SELECT wallet.set_hot(lt.a('star'));
SELECT hot, version FROM wallet.accounts WHERE id = lt.a('star');
-- already hot: no-op
SELECT wallet.set_hot(lt.a('star'), true);
SELECT hot, version FROM wallet.accounts WHERE id = lt.a('star');
-- one transaction, so that a background fold cannot run in between
BEGIN;
SELECT wallet.transfer(lt.a('bank'), lt.a('star'), '1.00 USD', 'la:hot-1') IS NOT NULL AS posted;
SELECT wallet.transfer(lt.a('bank'), lt.a('star'), '2.50 USD', 'la:hot-2') IS NOT NULL AS posted;
SELECT wallet.post('la:hot-3', ARRAY[(lt.a('bank'), '-0.25 USD'), (lt.a('star'), '0.25 USD')]::wallet.leg[]) IS NOT NULL AS posted;
-- credits wait in hot_pending; the stored balance has not moved; every read is exact
SELECT count(*) AS pending_rows, sum(amount) AS pending_units FROM wallet.hot_pending WHERE account_id = lt.a('star');
SELECT balance AS stored_units FROM wallet.account WHERE id = lt.a('star');
SELECT wallet.balance(lt.a('star')) AS balance, wallet.available(lt.a('star')) AS available,
       (SELECT balance FROM wallet.accounts WHERE id = lt.a('star')) AS view_balance,
       wallet.balance_at(lt.a('star'), 'infinity') AS balance_at;
-- a debit from the hot account counts the pending credits, and cannot overdraw
SELECT wallet.transfer(lt.a('star'), lt.a('bank'), '3.00 USD', 'la:hot-debit') IS NOT NULL AS posted;
SELECT lt.errd(format($$SELECT wallet.transfer(%s, %s, '0.76 USD', 'la:hot-overdraw')$$, lt.a('star'), lt.a('bank'))) AS overdraw;
SELECT wallet.balance(lt.a('star')) AS balance;
SELECT wallet.fold_hot(lt.a('star')) AS folded;
SELECT count(*) AS pending_rows FROM wallet.hot_pending WHERE account_id = lt.a('star');
SELECT balance AS stored_units FROM wallet.account WHERE id = lt.a('star');
SELECT wallet.balance(lt.a('star')) AS balance, wallet.available(lt.a('star')) AS available,
       (SELECT balance FROM wallet.accounts WHERE id = lt.a('star')) AS view_balance;
-- nothing left to fold
SELECT wallet.fold_hot(lt.a('star')) AS folded;
COMMIT;
-- set_hot(false) folds what is pending and makes the account normal again
BEGIN;
SELECT wallet.transfer(lt.a('bank'), lt.a('star'), '4.00 USD', 'la:hot-4') IS NOT NULL AS posted;
SELECT count(*) AS pending_rows FROM wallet.hot_pending WHERE account_id = lt.a('star');
SELECT wallet.set_hot(lt.a('star'), false);
SELECT count(*) AS pending_rows FROM wallet.hot_pending WHERE account_id = lt.a('star');
SELECT hot, balance, available FROM wallet.accounts WHERE id = lt.a('star');
SELECT balance AS stored_units FROM wallet.account WHERE id = lt.a('star');
COMMIT;
-- credits to a normal account update the balance directly
SELECT wallet.transfer(lt.a('bank'), lt.a('star'), '0.01 USD', 'la:cold-1') IS NOT NULL AS posted;
SELECT count(*) AS pending_rows FROM wallet.hot_pending WHERE account_id = lt.a('star');
SELECT balance AS stored_units FROM wallet.account WHERE id = lt.a('star');
-- a hot account can be frozen like any other
SELECT wallet.set_hot(lt.a('star'));
SELECT wallet.freeze_account(lt.a('star'));
SELECT lt.err(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'la:hot-frozen')$$, lt.a('bank'), lt.a('star'))) AS credit_frozen_hot;
SELECT wallet.unfreeze_account(lt.a('star'));
-- closing counts pending credits: the stored balance alone is not the balance
SELECT lt.reg('a', wallet.open_account('la-star2', 'USD', 'creator'), 'star2') IS NOT NULL AS opened;
SELECT wallet.set_hot(lt.a('star2'));
BEGIN;
SELECT wallet.transfer(lt.a('bank'), lt.a('star2'), '1.00 USD', 'la:hot2-in') IS NOT NULL AS posted;
SELECT balance AS stored_units, (SELECT count(*) FROM wallet.hot_pending WHERE account_id = lt.a('star2')) AS pending_rows
  FROM wallet.account WHERE id = lt.a('star2');
SELECT lt.errd(format('SELECT wallet.close_account(%s)', lt.a('star2'))) AS close_with_pending_credit;
SELECT wallet.transfer(lt.a('star2'), lt.a('bank'), '1.00 USD', 'la:hot2-out') IS NOT NULL AS posted;
SELECT balance AS stored_units, (SELECT count(*) FROM wallet.hot_pending WHERE account_id = lt.a('star2')) AS pending_rows
  FROM wallet.account WHERE id = lt.a('star2');
SELECT wallet.balance(lt.a('star2')) AS balance;
SELECT wallet.close_account(lt.a('star2'));
SELECT status, balance FROM wallet.accounts WHERE id = lt.a('star2');
COMMIT;
SELECT q, lt.errd(q) AS result FROM (VALUES
  ($$SELECT wallet.set_hot(-1)$$),
  ($$SELECT wallet.set_hot(NULL)$$),
  ($$SELECT wallet.set_hot(lt.a('star'), NULL)$$)
) AS t(q);
-- fold_hot() with no argument folds every account
SELECT wallet.fold_hot() >= 0 AS fold_all;

-- ---- the ledger is consistent ----
SELECT check_name, ok FROM wallet.verify() WHERE check_name NOT LIKE 'audit:%' ORDER BY check_name;
SELECT bool_and(ok) AS all_ok FROM wallet.verify();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA lt CASCADE;
RESET client_min_messages;
