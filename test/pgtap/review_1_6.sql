-- test/pgtap/review_1_6.sql — wallet 1.6.0 and its library (each section
-- fails on the build before it):
--   1. idempotency keys compare byte for byte (COLLATE "C") whatever the
--      database's collation; under en_US.UTF-8 the keys' unique indexes
--      called strcoll on every posting.  The upgrade from 1.5.0 (views
--      created again, their rights kept) is proved by
--      test/harness/upgrade.sh;
--   2. transfer_batch drew its transaction ids in key order while it
--      applied the rows in batch order, so a batch funding an account and
--      then spending from it read, in the account's statement, as spending
--      first (a running balance below zero on an account that may not go
--      negative);
--   3. reverse() of a refund whose debt the user had repaid since put the
--      repaid coins into the user's debt account, where they could not be
--      spent and silently absorbed the next refund's shortfall; and (a
--      review of the first fix) reversing two refunds, one of which had
--      settled the other's debt, gave a different result in each order.
--      A reversed refund now gives its coins back as a recharge does: the
--      debt owed at that moment first.  Its races are in
--      test/harness/lock_order.sh;
--   4. set_hot() made a debt account hot: the spending check reads its
--      stored balance, so a user who had repaid stayed blocked until the
--      next fold, and a fold between the reversal's two reads of the debt
--      made it repay too much;
--   5. (a model-based review) any other reversal that credits a debt
--      account, e.g. of a reversed recharge that had repaid debt, put the
--      plain mirror's credit there even when the debt was repaid since: a
--      debt account above zero; and close_account() closed a user with an
--      outstanding debt, which no recharge could then repay;
--   6. (a last review) a capped reversal left with no leg posted an empty
--      transaction; several legs on one debt account were capped one by
--      one; the debt accounts of two users were not capped at all.
--
-- Runs in one transaction and rolls everything back.
BEGIN;
SELECT plan(78);
SET LOCAL client_min_messages = warning;

-- 1. collation
SELECT is((SELECT attcollation::regcollation::text FROM pg_attribute
            WHERE attrelid = v.rel AND attname = 'idempotency_key'), '"C"', v.what)
  FROM (VALUES ('wallet.txn'::regclass, 'wallet.txn.idempotency_key is COLLATE "C"'),
               ('wallet.hold', 'wallet.hold.idempotency_key is COLLATE "C"'),
               ('wallet.transactions', 'the view wallet.transactions shows the key with collation "C"'),
               ('wallet.holds', 'the view wallet.holds shows the key with collation "C"')) v(rel, what);
-- the unique indexes are the keys' byte order: what batch.c sorts by
SELECT is((SELECT array_agg(c.indexrelid::regclass::text || ' ' || l.collname ORDER BY c.indexrelid::regclass::text)
             FROM pg_index c JOIN pg_collation l ON l.oid = c.indcollation[0]
            WHERE c.indrelid IN ('wallet.txn'::regclass, 'wallet.hold'::regclass) AND c.indisunique
              AND c.indnatts = 1 AND c.indkey[0] = (SELECT attnum FROM pg_attribute
                    WHERE attrelid = c.indrelid AND attname = 'idempotency_key')),
          ARRAY['wallet.hold_idempotency_key_key C', 'wallet.txn_idempotency_key_key C'],
          'both keys'' unique indexes use collation "C"');

-- Keys differing only where a linguistic collation would call them near
-- (case, accents, width) stay distinct keys; the same bytes are one key.
SELECT wallet.open_account('r16-bank', 'USD', 'system', true) AS bank \gset
SELECT wallet.open_account('r16-a', 'USD') AS a \gset
SELECT lives_ok(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'r16-Key'),
                                wallet.transfer(%s, %s, '1.00 USD', 'r16-key'),
                                wallet.transfer(%s, %s, '1.00 USD', 'r16-kéy'),
                                wallet.transfer(%s, %s, '1.00 USD', 'r16-ｋey')$$,
                       :bank, :a, :bank, :a, :bank, :a, :bank, :a),
                'four keys that differ in case, accent or width post four transfers');
SELECT is((SELECT count(DISTINCT t.id)::int FROM wallet.transactions t WHERE t.idempotency_key LIKE 'r16-%'), 4,
          'four transactions');
SELECT is(wallet.transfer(:bank, :a, '1.00 USD', 'r16-key'),
          (SELECT t.id FROM wallet.transactions t WHERE t.idempotency_key = 'r16-key'),
          'the same key again is the same transaction');
-- a comparison asking for the database's collation explicitly still finds it
SELECT is((SELECT t.idempotency_key FROM wallet.transactions t
            WHERE t.idempotency_key = 'r16-Key' COLLATE "default"), 'r16-Key',
          'a lookup under the database''s collation finds the key');

-- 2. batch ids follow batch order
SELECT wallet.open_account('r16-b', 'USD') AS b \gset
SELECT wallet.open_account('r16-c', 'USD') AS c \gset
CREATE TEMP TABLE r16_batch AS
SELECT * FROM wallet.transfer_batch(ARRAY[:bank, :b, :bank, :b]::bigint[], ARRAY[:b, :c, :b, :c]::bigint[],
                                    ARRAY['10.00 USD', '10.00 USD', '10.00 USD', '1.00 USD']::wallet.amount[],
                                    ARRAY['r16-z-fund', 'r16-a-spend', 'r16-z-fund', 'r16-m-spend-more']);
SELECT is((SELECT array_agg(status ORDER BY idx) FROM r16_batch),
          ARRAY['ok', 'ok', 'exists', 'insufficient_funds'],
          'batch: fund, spend, the fund repeated, overspend');
SELECT ok((SELECT r1.tx_id < r2.tx_id FROM r16_batch r1, r16_batch r2 WHERE r1.idx = 1 AND r2.idx = 2),
          'the funding row (key "r16-z-…") has a smaller transaction id than the spending row (key "r16-a-…") after it');
SELECT is((SELECT tx_id FROM r16_batch WHERE idx = 3), (SELECT tx_id FROM r16_batch WHERE idx = 1),
          'the repeated row is the first row''s transaction');
SELECT is((SELECT array_agg(wallet.units(s.balance) ORDER BY s.txn_id) FROM wallet.statement(:b) s),
          ARRAY[1000, 0]::bigint[], 'the statement of the funded account never goes below zero');
SELECT ok((SELECT bool_and(x.ok) FROM (SELECT r.tx_id > lag(r.tx_id) OVER (ORDER BY r.idx) AS ok
                                         FROM wallet.transfer_batch(
                                              (SELECT array_agg(:bank::bigint) FROM generate_series(1, 50)),
                                              (SELECT array_agg(:c::bigint) FROM generate_series(1, 50)),
                                              (SELECT array_agg('0.01 USD'::wallet.amount) FROM generate_series(1, 50)),
                                              (SELECT array_agg('r16-k' || (1000 - g)) FROM generate_series(1, 50) g)) r) x
            WHERE x.ok IS NOT NULL),
          'fifty rows with keys in descending order: ids ascend in batch order');

-- 3. reversal of a refund whose debt was repaid
SELECT (wallet.live_setup()).* \gset cfg_
SELECT wallet.open_account('r16-viewer', :'cfg_coin_currency') AS u \gset
SELECT wallet.open_account('r16-creator', :'cfg_diamond_currency') AS cr \gset
CREATE FUNCTION pg_temp.coins(n bigint) RETURNS wallet.amount LANGUAGE sql AS
  $$ SELECT wallet.amount(n, (SELECT coin_currency FROM wallet.live_config)) $$;
CREATE FUNCTION pg_temp.pos(owner_name text) RETURNS text LANGUAGE sql AS
  $$ SELECT string_agg(a.kind || ' ' || wallet.units(a.balance), ', ' ORDER BY a.kind DESC)
       FROM wallet.accounts a WHERE a.owner = owner_name $$;
SELECT wallet.recharge(:u, pg_temp.coins(100), '1.00 USD', 'r16', 'o1') AS r1 \gset
SELECT lives_ok(format($$SELECT wallet.gift(%s, %s, pg_temp.coins(100), 'r16-g1')$$, :u, :cr), 'the viewer spends it all');
SELECT wallet.refund_recharge(:r1, 'chargeback') AS rf \gset
SELECT is(pg_temp.pos('r16-viewer'), 'user 0, debt -100', 'the chargeback: debt 100');
SELECT lives_ok(format($$SELECT wallet.recharge(%s, pg_temp.coins(30), '0.30 USD', 'r16', 'o2')$$, :u),
                'a recharge of 30 repays 30');
SELECT is(pg_temp.pos('r16-viewer'), 'user 0, debt -70', 'debt 70 left');
SELECT wallet.reverse(:rf, 'r16-rv', 'chargeback reversed') AS rv \gset
SELECT is(pg_temp.pos('r16-viewer'), 'user 30, debt 0',
          'the reversal cancels the 70 still owed and gives back the 30 repaid');
SELECT is((SELECT array_agg(wallet.units(e.amount) ORDER BY e.amount) FILTER (WHERE e.account_id IN (:u, (SELECT debt_account FROM wallet.account WHERE id = :u)))
             FROM wallet.entries e WHERE e.txn_id = :rv),
          ARRAY[30, 70]::bigint[], 'its legs: user +30, debt account +70');
SELECT is(wallet.reverse(:rf, 'r16-rv', 'chargeback reversed'), :rv::bigint,
          'the same reversal again returns it (the request is the plain mirror)');
SELECT throws_ok(format($$SELECT wallet.reverse(%s, 'r16-rv2')$$, :rf), 'WL010', NULL,
                 'a second reversal of the refund: WL010');
SELECT is((SELECT count(*)::int FROM wallet.verify() WHERE NOT ok), 0, 'verify() all ok');
-- the debt account is back at zero, so the next chargeback is debt again
SELECT wallet.recharge(:u, pg_temp.coins(50), '0.50 USD', 'r16', 'o3') AS r3 \gset
SELECT lives_ok(format($$SELECT wallet.gift(%s, %s, pg_temp.coins(80), 'r16-g3')$$, :u, :cr), 'the viewer spends 80');
SELECT lives_ok(format($$SELECT wallet.refund_recharge(%s, 'chargeback')$$, :r3), 'a chargeback of 50 with nothing left');
SELECT is(pg_temp.pos('r16-viewer'), 'user 0, debt -50', 'it is recorded as debt');
SELECT throws_ok(format($$SELECT wallet.gift(%s, %s, pg_temp.coins(1), 'r16-g4')$$, :u, :cr), 'WL001', NULL,
                 'spending is refused while in debt');

-- two refunds, the second settling the first's debt, reversed in either
-- order: the same end (only the two recharges stand: 60 coins, no debt)
SELECT wallet.open_account('r16-sink', :'cfg_coin_currency') AS sink \gset
CREATE FUNCTION pg_temp.two_refunds(who text, first_a boolean) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    u bigint := wallet.open_account(who, (SELECT coin_currency FROM wallet.live_config));
    ra bigint; rb bigint; fa bigint; fb bigint; h bigint;
BEGIN
    ra := wallet.recharge(u, pg_temp.coins(50), '0.50 USD', 'r16', who || '-a');
    h := wallet.hold(u, (SELECT id FROM wallet.account WHERE owner = 'r16-sink'), pg_temp.coins(50), who || '-h');
    fa := wallet.refund_recharge(ra, 'chargeback');       -- all held: debt 50
    PERFORM wallet.void(h);
    rb := wallet.recharge(u, pg_temp.coins(10), '0.10 USD', 'r16', who || '-b');   -- repays 10
    fb := wallet.refund_recharge(rb, 'chargeback');       -- takes 50: its 10 and 40 of the debt
    IF pg_temp.pos(who) <> 'user 0, debt 0' THEN
        RETURN 'set-up: ' || pg_temp.pos(who);
    END IF;
    IF first_a THEN
        PERFORM wallet.reverse(fa, who || '-rva');
        PERFORM wallet.reverse(fb, who || '-rvb');
    ELSE
        PERFORM wallet.reverse(fb, who || '-rvb');
        PERFORM wallet.reverse(fa, who || '-rva');
    END IF;
    RETURN pg_temp.pos(who);
END
$$;
SELECT is(pg_temp.two_refunds('r16-v2', true), 'user 60, debt 0',
          'refund A (debt 50), recharge B, refund B (settles 40 of it); reversed A then B: 60 coins, no debt');
SELECT is(pg_temp.two_refunds('r16-v3', false), 'user 60, debt 0',
          '... reversed B then A: the same');
SELECT lives_ok(format($$SELECT wallet.gift(%s, %s, pg_temp.coins(60), 'r16-g5')$$,
                       (SELECT id FROM wallet.account WHERE owner = 'r16-v2' AND kind = 'user'), :cr),
                'and the 60 coins can be spent');
SELECT is((SELECT count(*)::int FROM wallet.verify() WHERE NOT ok), 0, 'verify() all ok after them');

-- 4. a debt account is never hot
SELECT throws_ok(format('SELECT wallet.set_hot(%s)',
                        (SELECT debt_account FROM wallet.account WHERE id = :u)),
                 '22023', NULL, 'set_hot() of a debt account: 22023');
SELECT lives_ok(format('SELECT wallet.set_hot(%s, false)',
                       (SELECT debt_account FROM wallet.account WHERE id = :u)),
                'set_hot(debt account, false) is harmless');

-- 5. reversals crediting a debt account; closing an indebted user
SELECT wallet.open_account('r16-v5', :'cfg_coin_currency') AS u5 \gset
SELECT wallet.recharge(:u5, pg_temp.coins(100), '1.00 USD', 'r16', 'v5-0') AS r50 \gset
SELECT lives_ok(format($$SELECT wallet.gift(%s, %s, pg_temp.coins(100), 'r16-g50')$$, :u5, :cr), 'v5 spends 100');
SELECT wallet.refund_recharge(:r50, 'chargeback') AS f50 \gset
SELECT wallet.recharge(:u5, pg_temp.coins(50), '0.50 USD', 'r16', 'v5-1') AS r51 \gset
SELECT wallet.reverse(:r51, 'r16-k51') AS v51 \gset
SELECT is(pg_temp.pos('r16-v5'), 'user 0, debt -100', 'a recharge that repaid 50, reversed: debt 100 again');
SELECT lives_ok(format($$SELECT wallet.recharge(%s, pg_temp.coins(70), '0.70 USD', 'r16', 'v5-2')$$, :u5),
                'a recharge of 70 repays 70 (debt 30)');
SELECT wallet.reverse(:v51, 'r16-k52') AS v52 \gset
SELECT is(pg_temp.pos('r16-v5'), 'user 20, debt 0',
          'the reversal of that reversal repays the 30 still owed and gives the other 20 to the user');
SELECT is(wallet.reverse(:v51, 'r16-k52'), :v52::bigint, 'its retry returns it');
SELECT is((SELECT count(*)::int FROM wallet.account WHERE kind = 'debt' AND balance > 0), 0,
          'no debt account holds coins');
SELECT wallet.open_account('r16-v6', :'cfg_coin_currency') AS u6 \gset
SELECT wallet.recharge(:u6, pg_temp.coins(10), '0.10 USD', 'r16', 'v6-0') AS r60 \gset
SELECT wallet.gift(:u6, :cr, pg_temp.coins(10), 'r16-g60') AS g60 \gset
SELECT wallet.refund_recharge(:r60, 'chargeback') AS f60 \gset
SELECT throws_ok(format('SELECT wallet.close_account(%s)', :u6), 'WL012', NULL,
                 'close_account() of a user at zero with an outstanding debt: WL012');

-- 6. lending from a debt account, reversed after the debt was repaid; fees
-- on one debt account in two legs; debt accounts of two users
SELECT wallet.open_account('r16-v7', :'cfg_coin_currency') AS u7 \gset
SELECT wallet.recharge(:u7, pg_temp.coins(10), '0.10 USD', 'r16', 'v7-0') AS r70 \gset
SELECT wallet.gift(:u7, :cr, pg_temp.coins(10), 'r16-g70') AS g70 \gset
SELECT wallet.refund_recharge(:r70, 'chargeback') AS f70 \gset
SELECT debt_account AS d7 FROM wallet.account WHERE id = :u7 \gset
SELECT wallet.post('r16-lend', ARRAY[ROW(:d7, pg_temp.coins(-5)), ROW(:u7, pg_temp.coins(5))]::wallet.leg[]) AS lend \gset
SELECT wallet.recharge(:u7, pg_temp.coins(15), '0.15 USD', 'r16', 'v7-1') AS r71 \gset
SELECT throws_ok(format($$SELECT wallet.reverse(%s, 'r16-rv-lend')$$, :lend), '55000', NULL,
                 'reversing a loan from a debt account repaid since would move nothing: 55000, no empty transaction');
SELECT wallet.post('r16-fee', ARRAY[ROW(:d7, pg_temp.coins(-5)), ROW(:d7, pg_temp.coins(-5)),
                                    ROW(:cfg_coin_revenue, pg_temp.coins(10))]::wallet.leg[]) AS fee \gset
SELECT wallet.recharge(:u7, pg_temp.coins(10), '0.10 USD', 'r16', 'v7-2') AS r72 \gset
SELECT lives_ok(format($$SELECT wallet.reverse(%s, 'r16-rv-fee')$$, :fee), 'a fee in two legs on a debt account, reversed');
SELECT is(pg_temp.pos('r16-v7'), 'user 15, debt 0', 'both legs count as one credit of 10, given to the user (the debt was repaid)');
SELECT wallet.post('r16-fee2', ARRAY[ROW(:d7, pg_temp.coins(-4)),
                                     ROW((SELECT debt_account FROM wallet.account WHERE id = :u6), pg_temp.coins(-6)),
                                     ROW(:cfg_coin_revenue, pg_temp.coins(10))]::wallet.leg[]) AS fee2 \gset
SELECT throws_ok(format($$SELECT wallet.reverse(%s, 'r16-rv-fee2')$$, :fee2), '55000', NULL,
                 'a reversal that would credit the debt accounts of two users: 55000');

-- 7. 64-bit limits of held and available; live_report totals; withdrawals
SELECT wallet.add_currency('R16T', 18, 'r16 token, 18 decimals') \gset
SELECT wallet.open_account('r16-issuer', 'R16T', 'system', true) AS ti \gset
SELECT wallet.open_account('r16-issuer2', 'R16T', 'system', true) AS ti2 \gset
SELECT wallet.open_account('r16-holder', 'R16T') AS th \gset
SELECT wallet.transfer(:ti, :th, '9 R16T', 'r16-t1') \gset
SELECT throws_ok(format($$SELECT wallet.hold(%s, %s, '0.5 R16T', 'r16-th1')$$, :ti, :th), '22003',
                 'available balance of account ' || :ti || ' would overflow',
                 'a hold taking the available balance below 64 bits: 22003');
SELECT lives_ok(format($$SELECT wallet.hold(%s, %s, '0.2 R16T', 'r16-th2')$$, :ti, :th), 'a hold that keeps it in range');
SELECT throws_ok(format($$SELECT wallet.transfer(%s, %s, '0.1 R16T', 'r16-t2')$$, :ti, :th), '22003',
                 'available balance of account ' || :ti || ' would overflow',
                 'a debit taking balance − held below 64 bits: 22003');
SELECT lives_ok(format($$SELECT wallet.transfer(%s, %s, '0.01 R16T', 'r16-t3')$$, :ti, :th), 'a debit that keeps it in range');
SELECT is((SELECT available::text FROM wallet.accounts WHERE id = :ti), '-9.210000000000000000 R16T',
          'wallet.accounts reads every row');
SELECT lives_ok(format($$SELECT wallet.capture(h.id) FROM wallet.hold h WHERE h.idempotency_key = 'r16-th2'$$),
                'a capture (it debits what it releases) still passes');
SELECT lives_ok(format($$SELECT wallet.hold(%s, %s, '5 R16T', 'r16-th3')$$, :ti2, :th), 'a hold of 5 on a fresh issuer');
SELECT throws_ok(format($$SELECT wallet.hold(%s, %s, '5 R16T', 'r16-th4')$$, :ti2, :th), '22003',
                 'held amount of account ' || :ti2 || ' would overflow',
                 'a second hold passing 64 bits of held: 22003 with its message');
SELECT is((SELECT count(*)::int FROM wallet.accounts), (SELECT count(*)::int FROM wallet.account), 'the view still reads');

-- two balances whose sum passes 64 bits: the report shows it, units NULL
SELECT wallet.open_account('r16-issuer3', 'R16T', 'system', true) AS ti3 \gset
SELECT wallet.open_account('r16-holder2', 'R16T') AS th2 \gset
SELECT wallet.transfer(:ti3, :th2, '5 R16T', 'r16-t4') \gset
SELECT lives_ok('SELECT count(*) FROM wallet.live_report()', 'live_report() with a total past 64 bits');
SELECT is((SELECT value || ' / ' || coalesce(units::text, 'null') FROM wallet.live_report()
            WHERE section = 'accounts' AND item = 'balance user R16T'),
          '14.210000000000000000 R16T (2 accounts) / null', 'the total shown exactly, its units NULL');

-- a debt account as a withdrawal's creator: the platform's account (22023)
SELECT throws_ok(format($$SELECT wallet.request_withdrawal(%s, '1 DIAMOND', 'r16-w1')$$,
                        (SELECT id FROM wallet.account WHERE kind = 'debt' ORDER BY id LIMIT 1)),
                 '22023', NULL, 'a debt account as the creator of a withdrawal: 22023');


-- 9. hot debits past the bounds; the view never fails; exact report totals
SELECT wallet.open_account('r16-hotneg', :'cfg_coin_currency', 'user', true) AS hn \gset
SELECT wallet.open_account('r16-hs1', :'cfg_coin_currency') AS hs1 \gset
SELECT wallet.open_account('r16-hs2', :'cfg_coin_currency') AS hs2 \gset
SELECT wallet.set_hot(:hn) \gset
SELECT lives_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(9000000000000000000), 'r16-hn1')$$, :hn, :hs1),
                'a large debit of a hot account allowed to go negative');
-- debits take no bound (bounding them let single calls deadlock): the
-- posted balance passes int64's minimum, and is reported, not failed on
SELECT lives_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(9000000000000000000), 'r16-hn2')$$, :hn, :hs2),
                'a second one goes to its pending rows');
SELECT is((SELECT coalesce(balance::text, 'null') || ' / ' || coalesce(available::text, 'null') FROM wallet.accounts WHERE id = :hn),
          'null / null', 'the view shows NULL for its figures past 64 bits');
SELECT is((SELECT count(*)::int FROM wallet.accounts WHERE balance IS NOT NULL), (SELECT count(*)::int FROM wallet.account) - 1,
          'and reads every other account');
SELECT throws_ok(format('SELECT wallet.balance(%s)', :hn), '22003',
                 'posted balance of account ' || :hn || ' is outside 64-bit minor units', 'balance(): 22003 with its message');
-- the readers by time: balance_at is 22003 with the figure, statement's
-- running balance NULL in the row past 64 bits, every other figure read
SELECT throws_ok(format($$SELECT wallet.balance_at(%s, 'infinity')$$, :hn), '22003',
                 'balance of account ' || :hn || ' at infinity is outside 64-bit minor units',
                 'balance_at() past 64 bits: 22003 with its message, not bigint''s bare error');
SELECT is((SELECT string_agg(coalesce(amount::text, 'null') || ' -> ' || coalesce(balance::text, 'null'), '; ' ORDER BY at, txn_id)
             FROM wallet.statement(:hn) WHERE amount < '0 COIN'::wallet.amount),
          '-9000000000000000000 COIN -> -9000000000000000000 COIN; -9000000000000000000 COIN -> null',
          'statement(): the running balance past 64 bits is NULL in its row, the rest reads');
SELECT lives_ok(format($$SELECT wallet.transfer(%s, %s, pg_temp.coins(9000000000000000000), 'r16-hn3')$$, :hs2, :hn),
                'a credit brings it back');
SELECT is(wallet.balance_at(:hn, 'infinity'), wallet.balance(:hn), 'balance_at() reads it again');
SELECT is((SELECT balance::text FROM wallet.accounts WHERE id = :hn), '-9000000000000000000 COIN', 'and the view reads it again');
-- an allow-negative user with a debt: available past 64 bits shows NULL
SELECT wallet.open_account('r16-negdebt', :'cfg_coin_currency', 'user', true) AS nd \gset
SELECT wallet.recharge(:nd, pg_temp.coins(10), '0.10 USD', 'r16', 'nd-1') AS ndr \gset
SELECT wallet.transfer(:nd, :hs1, pg_temp.coins(10), 'r16-nd-spend') \gset
SELECT wallet.refund_recharge(:ndr, 'chargeback') \gset
SELECT wallet.transfer(:nd, :hs2, pg_temp.coins(9223372036854775803), 'r16-nd-big') \gset
SELECT is((SELECT coalesce(available::text, 'null') || ' / ' || debt::text FROM wallet.accounts WHERE id = :nd),
          'null / 10 COIN', 'available past 64 bits is NULL for that account; the view does not fail');
SELECT throws_ok(format('SELECT wallet.available(%s)', :nd), '22003',
                 'available balance of account ' || :nd || ' is outside 64-bit minor units', 'available(): 22003 with its message');
SELECT is((SELECT count(*)::int FROM wallet.accounts), (SELECT count(*)::int FROM wallet.account), 'every account is listed');
-- report totals of an 18-decimal unit are exact past 64 bits
SELECT is(wallet.live_total_text(9500000000000000001, 'R16T'), '9.500000000000000001 R16T', 'a total past 64 bits, to the last minor unit');
SELECT is(wallet.live_total_text(-12345678901234567891, 'R16T'), '-12.345678901234567891 R16T', 'a negative one');
SELECT is(wallet.live_total_text(-12345678901234567891, 'COIN'), '-12345678901234567891 COIN', 'no decimals');

-- 10. kind 'debt' is reserved: only refund_recharge opens debt accounts
SELECT throws_ok($$SELECT wallet.open_account('r16-fakedebt', 'USD', 'debt')$$, '22023',
                 'wallet.open_account: kind ''debt'' is reserved for users'' debt accounts',
                 'open_account refuses kind debt (an account the engine would never let close)');
SELECT is((SELECT count(*)::int FROM wallet.account WHERE kind = 'debt' AND metadata ? 'debt_of'
              AND id IN (SELECT debt_account FROM wallet.account)),
          (SELECT count(*)::int FROM wallet.account WHERE kind = 'debt'),
          'every debt account was opened by refund_recharge and is linked to its user');

-- 8. any table can use wallet.audit(); a DBA can restrict who attaches it
CREATE ROLE r16_nobody;
SELECT count(*) AS audit_before FROM wallet.audit_log \gset
SET LOCAL ROLE r16_nobody;
CREATE TEMP TABLE r16_junk (x text);
CREATE TRIGGER a AFTER INSERT ON r16_junk FOR EACH ROW EXECUTE FUNCTION wallet.audit();
SELECT lives_ok($$INSERT INTO r16_junk VALUES ('x')$$, 'a temporary table can use wallet.audit() (SPEC: any table)');
RESET ROLE;
SELECT is((SELECT count(*) FROM wallet.audit_log), :audit_before::bigint + 1, 'its change is recorded');
REVOKE EXECUTE ON FUNCTION wallet.audit() FROM PUBLIC;
SET LOCAL ROLE r16_nobody;
CREATE TEMP TABLE r16_junk2 (x text);
SELECT throws_ok($$CREATE TRIGGER a AFTER INSERT ON r16_junk2 FOR EACH ROW EXECUTE FUNCTION wallet.audit()$$,
                 '42501', NULL, 'after REVOKE EXECUTE ... FROM PUBLIC a role not granted it cannot attach it');
RESET ROLE;
GRANT EXECUTE ON FUNCTION wallet.audit() TO PUBLIC;

SELECT is((SELECT count(*)::int FROM wallet.verify() WHERE NOT ok), 0, 'verify() all ok');

SELECT * FROM finish();
ROLLBACK;
