-- Idempotency: the same key with the same request returns the first
-- result and changes nothing; the same key with any other request is
-- WL006.  Keys are shared by transfer, post and reverse; holds have their
-- own.  A refused request does not use up its key.
BEGIN;
SELECT plan(47);

SELECT wallet.open_account('idem-sys', 'USD', 'system', true) AS sys \gset
SELECT wallet.open_account('idem-a', 'USD') AS a \gset
SELECT wallet.open_account('idem-b', 'USD') AS b \gset
SELECT wallet.open_account('idem-c', 'USD') AS c \gset
SELECT wallet.open_account('idem-esys', 'EUR', 'system', true) AS esys \gset
SELECT wallet.open_account('idem-e', 'EUR') AS e \gset
SELECT wallet.transfer(:sys, :a, '100.00 USD', 'idem:fund-a') AS fund_a \gset

-- what a replay must not change
CREATE TEMP VIEW snapshot AS
    SELECT (SELECT count(*) FROM wallet.txn) AS txns, (SELECT count(*) FROM wallet.entry) AS entries,
           (SELECT count(*) FROM wallet.hold) AS holds,
           (SELECT string_agg(wallet.balance(id)::text || ' / ' || wallet.available(id)::text, ', ' ORDER BY id)
              FROM wallet.account WHERE id IN (:sys, :a, :b, :c)) AS money;
CREATE TEMP TABLE snap AS SELECT * FROM snapshot WHERE false;

-- ---- transfer ----
SELECT wallet.transfer(:a, :b, '10.00 USD', 'idem:t1', 'transfer', '{"order": 7, "note": "x"}') AS t1 \gset
INSERT INTO snap SELECT * FROM snapshot;
SELECT is(wallet.transfer(:a, :b, '10.00 USD', 'idem:t1', 'transfer', '{"order": 7, "note": "x"}'), :t1::bigint,
          'transfer: a replay returns the first id');
SELECT is(wallet.transfer(:a, :b, '10.00 USD', 'idem:t1', metadata => '{"note":"x","order":7}'), :t1::bigint,
          'transfer: same metadata in another key order and spacing, default kind: the same request');
SELECT is((SELECT row(s.*)::text FROM snapshot s), (SELECT row(s.*)::text FROM snap s),
          'transfer: the replays posted nothing and moved no money');
SELECT throws_ok(format($q$SELECT wallet.transfer(%s, %s, '10.01 USD', 'idem:t1', 'transfer', '{"order": 7, "note": "x"}')$q$, :a, :b),
                 'WL006', NULL, 'transfer: same key, other amount');
SELECT throws_ok(format($q$SELECT wallet.transfer(%s, %s, '10.00 USD', 'idem:t1', 'transfer', '{"order": 7, "note": "x"}')$q$, :a, :c),
                 'WL006', NULL, 'transfer: same key, other to_account');
SELECT throws_ok(format($q$SELECT wallet.transfer(%s, %s, '10.00 USD', 'idem:t1', 'transfer', '{"order": 7, "note": "x"}')$q$, :sys, :b),
                 'WL006', NULL, 'transfer: same key, other from_account');
SELECT throws_ok(format($q$SELECT wallet.transfer(%s, %s, '10.00 USD', 'idem:t1', 'gift', '{"order": 7, "note": "x"}')$q$, :a, :b),
                 'WL006', NULL, 'transfer: same key, other kind');
SELECT throws_ok(format($q$SELECT wallet.transfer(%s, %s, '10.00 USD', 'idem:t1', 'transfer', '{"order": 8, "note": "x"}')$q$, :a, :b),
                 'WL006', NULL, 'transfer: same key, other metadata');
SELECT throws_ok(format($q$SELECT wallet.transfer(%s, %s, '10.00 USD', 'idem:t1')$q$, :a, :b),
                 'WL006', NULL, 'transfer: same key, metadata left out');
SELECT throws_ok(format($q$SELECT wallet.transfer(%s, %s, '10.00 EUR', 'idem:t1', 'transfer', '{"order": 7, "note": "x"}')$q$, :esys, :e),
                 'WL006', NULL, 'transfer: same key, other currency and accounts');
SELECT is((SELECT row(s.*)::text FROM snapshot s), (SELECT row(s.*)::text FROM snap s),
          'transfer: the conflicts posted nothing');
-- the first result comes back even when the request could not be posted now
SELECT wallet.transfer(:a, :c, wallet.available(:a), 'idem:drain-a') IS NOT NULL AS drained \gset
SELECT is(wallet.available(:a), '0.00 USD'::wallet.amount, 'a is drained');
SELECT is(wallet.transfer(:a, :b, '10.00 USD', 'idem:t1', 'transfer', '{"order": 7, "note": "x"}'), :t1::bigint,
          'transfer: a replay returns the first id even when the funds are gone now');
SELECT wallet.freeze_account(:b) IS NOT NULL AS frozen \gset
SELECT is(wallet.transfer(:a, :b, '10.00 USD', 'idem:t1', 'transfer', '{"order": 7, "note": "x"}'), :t1::bigint,
          'transfer: a replay returns the first id even when an account is frozen now');
SELECT wallet.unfreeze_account(:b) IS NOT NULL AS unfrozen \gset
SELECT is((SELECT count(*) FROM wallet.txn WHERE idempotency_key = 'idem:t1'), 1::bigint, 'transfer: one transaction with the key');

-- a refused request does not use up its key
SELECT throws_ok(format($q$SELECT wallet.transfer(%s, %s, '5.00 USD', 'idem:later')$q$, :a, :b),
                 'WL001', NULL, 'a refused transfer ...');
SELECT is((SELECT count(*) FROM wallet.txn WHERE idempotency_key = 'idem:later'), 0::bigint, '... leaves no transaction ...');
SELECT wallet.transfer(:sys, :a, '5.00 USD', 'idem:refill-a') IS NOT NULL AS refilled \gset
SELECT lives_ok(format($q$SELECT wallet.transfer(%s, %s, '5.00 USD', 'idem:later')$q$, :a, :b),
                '... and its key works once the request can succeed');

-- ---- post ----
SELECT wallet.transfer(:sys, :a, '50.00 USD', 'idem:refill-a2') IS NOT NULL AS refilled \gset
SELECT wallet.post('idem:p1', ARRAY[(:a, '-30.00 USD'), (:b, '20.00 USD'), (:c, '10.00 USD')]::wallet.leg[],
                   'split', '{"why": "test"}') AS p1 \gset
DELETE FROM snap;
INSERT INTO snap SELECT * FROM snapshot;
SELECT is(wallet.post('idem:p1', ARRAY[(:a, '-30.00 USD'), (:b, '20.00 USD'), (:c, '10.00 USD')]::wallet.leg[],
                      'split', '{"why": "test"}'), :p1::bigint, 'post: a replay returns the first id');
SELECT is((SELECT row(s.*)::text FROM snapshot s), (SELECT row(s.*)::text FROM snap s), 'post: the replay posted nothing');
SELECT throws_ok(format($q$SELECT wallet.post('idem:p1', ARRAY[(%s, '-30.00 USD'), (%s, '30.00 USD')]::wallet.leg[], 'split', '{"why": "test"}')$q$, :a, :b),
                 'WL006', NULL, 'post: same key, other legs');
SELECT throws_ok(format($q$SELECT wallet.post('idem:p1', ARRAY[(%s, '-30.00 USD'), (%s, '20.00 USD'), (%s, '10.00 USD')]::wallet.leg[], 'other', '{"why": "test"}')$q$, :a, :b, :c),
                 'WL006', NULL, 'post: same key, other kind');
SELECT throws_ok(format($q$SELECT wallet.post('idem:p1', ARRAY[(%s, '-30.00 USD'), (%s, '20.00 USD'), (%s, '10.00 USD')]::wallet.leg[], 'split')$q$, :a, :b, :c),
                 'WL006', NULL, 'post: same key, no metadata');

-- ---- keys are shared by transfer, post and reverse ----
SELECT throws_ok(format($q$SELECT wallet.post('idem:t1', ARRAY[(%s, '-1.00 USD'), (%s, '1.00 USD')]::wallet.leg[])$q$, :a, :c),
                 'WL006', NULL, 'a transfer''s key used by post');
SELECT throws_ok(format($q$SELECT wallet.transfer(%s, %s, '1.00 USD', 'idem:p1')$q$, :a, :c),
                 'WL006', NULL, 'a post''s key used by transfer');
SELECT throws_ok(format($q$SELECT wallet.reverse(%s, 'idem:p1')$q$, :fund_a),
                 'WL006', NULL, 'a post''s key used by reverse');
SELECT is((SELECT row(s.*)::text FROM snapshot s), (SELECT row(s.*)::text FROM snap s), 'the conflicts posted nothing');

-- ---- reverse ----
SELECT wallet.reverse(:p1, 'idem:r1', 'typo') AS r1 \gset
DELETE FROM snap;
INSERT INTO snap SELECT * FROM snapshot;
SELECT is(wallet.reverse(:p1, 'idem:r1', 'typo'), :r1::bigint, 'reverse: a replay returns the first id');
SELECT is((SELECT row(s.*)::text FROM snapshot s), (SELECT row(s.*)::text FROM snap s), 'reverse: the replay posted nothing');
SELECT throws_ok(format($q$SELECT wallet.reverse(%s, 'idem:r1', 'another reason')$q$, :p1),
                 'WL006', NULL, 'reverse: same key, other reason');
SELECT throws_ok(format($q$SELECT wallet.reverse(%s, 'idem:r1', 'typo')$q$, :t1),
                 'WL006', NULL, 'reverse: same key, other transaction');
SELECT throws_ok(format($q$SELECT wallet.reverse(%s, 'idem:r1-again', 'typo')$q$, :p1),
                 'WL010', NULL, 'reverse: another key for the same transaction is WL010, not a second reversal');
SELECT is((SELECT count(*) FROM wallet.transactions WHERE reverses = :p1), 1::bigint, 'reverse: one reversal');

-- ---- holds ----
SELECT wallet.hold(:a, :b, '5.00 USD', 'idem:h1', '2999-01-01 00:00:00+00', 'preauth', '{"cart": 1}') AS h1 \gset
DELETE FROM snap;
INSERT INTO snap SELECT * FROM snapshot;
SELECT is(wallet.hold(:a, :b, '5.00 USD', 'idem:h1', '2999-01-01 00:00:00+00', 'preauth', '{"cart": 1}'), :h1::bigint,
          'hold: a replay returns the first hold');
SELECT is((SELECT row(s.*)::text FROM snapshot s), (SELECT row(s.*)::text FROM snap s),
          'hold: the replay reserved nothing more');
SELECT throws_ok(format($q$SELECT wallet.hold(%s, %s, '5.01 USD', 'idem:h1', '2999-01-01 00:00:00+00', 'preauth', '{"cart": 1}')$q$, :a, :b),
                 'WL006', NULL, 'hold: same key, other amount');
SELECT throws_ok(format($q$SELECT wallet.hold(%s, %s, '5.00 USD', 'idem:h1', '2999-01-01 00:00:00+00', 'preauth', '{"cart": 1}')$q$, :a, :c),
                 'WL006', NULL, 'hold: same key, other to_account');
SELECT throws_ok(format($q$SELECT wallet.hold(%s, %s, '5.00 USD', 'idem:h1', '2998-01-01 00:00:00+00', 'preauth', '{"cart": 1}')$q$, :a, :b),
                 'WL006', NULL, 'hold: same key, other expiry');
SELECT throws_ok(format($q$SELECT wallet.hold(%s, %s, '5.00 USD', 'idem:h1', NULL, 'preauth', '{"cart": 1}')$q$, :a, :b),
                 'WL006', NULL, 'hold: same key, no expiry');
SELECT throws_ok(format($q$SELECT wallet.hold(%s, %s, '5.00 USD', 'idem:h1', '2999-01-01 00:00:00+00', 'hold', '{"cart": 1}')$q$, :a, :b),
                 'WL006', NULL, 'hold: same key, other kind');
SELECT throws_ok(format($q$SELECT wallet.hold(%s, %s, '5.00 USD', 'idem:h1', '2999-01-01 00:00:00+00', 'preauth', '{"cart": 2}')$q$, :a, :b),
                 'WL006', NULL, 'hold: same key, other metadata');
SELECT is((SELECT row(s.*)::text FROM snapshot s), (SELECT row(s.*)::text FROM snap s), 'hold: the conflicts reserved nothing');
-- after the hold ended, its key still returns it and reserves nothing
SELECT wallet.capture(:h1, '2.00 USD') IS NOT NULL AS captured \gset
DELETE FROM snap;
INSERT INTO snap SELECT * FROM snapshot;
SELECT is(wallet.hold(:a, :b, '5.00 USD', 'idem:h1', '2999-01-01 00:00:00+00', 'preauth', '{"cart": 1}'), :h1::bigint,
          'hold: a replay after the capture returns the same hold ...');
SELECT is((SELECT row(s.*)::text FROM snapshot s), (SELECT row(s.*)::text FROM snap s), '... and reserves nothing');
SELECT is((SELECT status FROM wallet.holds WHERE id = :h1), 'captured', '... which stays captured');

-- a client's key cannot take the key a capture posts under
SELECT wallet.hold(:sys, :b, '1.00 USD', 'idem:h2') AS h2 \gset
SELECT set_config('idem.sys', :'sys', true) AS s1, set_config('idem.c', :'c', true) AS s2,
       set_config('idem.h2', :'h2', true) AS s3 \gset
DO $$
BEGIN
    PERFORM wallet.transfer(current_setting('idem.sys')::bigint, current_setting('idem.c')::bigint, '1.00 USD',
                            'wallet:hold:' || current_setting('idem.h2') || ':capture');
EXCEPTION WHEN OTHERS THEN
    NULL;   -- refusing such a key is fine too
END
$$;
SELECT lives_ok(format('SELECT wallet.capture(%s)', :h2), 'a client transfer cannot block a hold''s capture through its key');

SELECT is((SELECT array_agg(check_name ORDER BY check_name) FROM wallet.verify() WHERE NOT ok), NULL,
          'wallet.verify(): every check ok');

SELECT * FROM finish();
ROLLBACK;
