-- Holds: available = posted - held at every step of a seeded random run of
-- holds, partial and full captures, voids and expiries; each hold ends
-- exactly once (every second ending is WL008); a partial capture releases
-- the rest; expire_holds releases exactly the expired ones; verify's
-- holds_consistent agrees.
BEGIN;
SELECT plan(28);

SELECT setseed(0.777);

CREATE TEMP TABLE acc (n int PRIMARY KEY, id bigint NOT NULL);
-- the model of every hold: its amount, how it ended, what was captured
CREATE TEMP TABLE hm (id bigint PRIMARY KEY, n_from int, n_to int, amount bigint, status text, captured bigint);
CREATE TEMP TABLE bad_step (s int, what text);

DO $$
DECLARE
    i int;
BEGIN
    INSERT INTO acc VALUES (0, wallet.open_account('holds-sys', 'USD', 'system', true));
    FOR i IN 1..6 LOOP
        INSERT INTO acc VALUES (i, wallet.open_account('holds-' || i, 'USD'));
        PERFORM wallet.transfer((SELECT id FROM acc WHERE n = 0), (SELECT id FROM acc WHERE n = i),
                                wallet.amount(100000::bigint, 'USD'), 'holds:fund:' || i);
    END LOOP;
END
$$;

-- true when every account's available is its posted balance minus its pending holds
CREATE FUNCTION pg_temp.available_ok() RETURNS boolean LANGUAGE sql AS $$
    SELECT bool_and(wallet.units(wallet.available(acc.id)) =
                    wallet.units(wallet.balance(acc.id))
                    - coalesce((SELECT sum(amount) FROM hm WHERE hm.n_from = acc.n AND hm.status = 'pending'), 0))
      FROM acc
$$;
-- and the view shows the same
CREATE FUNCTION pg_temp.view_ok() RETURNS boolean LANGUAGE sql AS $$
    SELECT bool_and(v.held = wallet.amount(coalesce((SELECT sum(amount) FROM hm WHERE hm.n_from = acc.n AND hm.status = 'pending'), 0)::bigint, 'USD')
                    AND v.available = wallet.available(acc.id) AND v.balance = wallet.balance(acc.id))
      FROM acc JOIN wallet.accounts v ON v.id = acc.id
$$;

DO $$
DECLARE
    s int;
    a int; b int;
    amt bigint; part bigint;
    h record;
    hid bigint;
    bal_before bigint;
BEGIN
    FOR s IN 1..300 LOOP
        SELECT * INTO h FROM hm WHERE status = 'pending' ORDER BY random() LIMIT 1;
        IF h IS NULL OR random() < 0.45 THEN
            a := 1 + (random() * 5)::int;
            LOOP b := (random() * 6)::int; EXIT WHEN b <> a; END LOOP;
            amt := 1 + (random() * 20000)::bigint;
            BEGIN
                hid := wallet.hold((SELECT id FROM acc WHERE n = a), (SELECT id FROM acc WHERE n = b),
                                   wallet.amount(amt, 'USD'), 'holds:' || s);
                INSERT INTO hm VALUES (hid, a, b, amt, 'pending', NULL);
            EXCEPTION WHEN SQLSTATE 'WL001' THEN
                NULL;
            END;
        ELSIF random() < 0.5 THEN
            -- capture, half of them partial
            part := CASE WHEN random() < 0.5 THEN h.amount ELSE 1 + ((h.amount - 1) * random())::bigint END;
            bal_before := wallet.units(wallet.balance((SELECT id FROM acc WHERE n = h.n_from)));
            IF random() < 0.3 AND part = h.amount THEN
                PERFORM wallet.capture(h.id);
            ELSE
                PERFORM wallet.capture(h.id, wallet.amount(part, 'USD'));
            END IF;
            UPDATE hm SET status = 'captured', captured = part WHERE id = h.id;
            IF wallet.units(wallet.balance((SELECT id FROM acc WHERE n = h.n_from))) <> bal_before - part THEN
                INSERT INTO bad_step VALUES (s, 'capture moved other than the captured amount');
            END IF;
        ELSE
            PERFORM wallet.void(h.id);
            UPDATE hm SET status = 'voided' WHERE id = h.id;
        END IF;
        IF NOT pg_temp.available_ok() THEN
            INSERT INTO bad_step VALUES (s, 'available <> posted - held');
        END IF;
        IF s % 10 = 0 AND NOT pg_temp.view_ok() THEN
            INSERT INTO bad_step VALUES (s, 'wallet.accounts disagrees');
        END IF;
    END LOOP;
END
$$;

SELECT cmp_ok((SELECT count(*) FROM hm), '>', 50::bigint, 'many holds were placed');
SELECT cmp_ok((SELECT count(*) FROM hm WHERE status = 'captured' AND captured < amount), '>', 5::bigint, 'some partial captures');
SELECT cmp_ok((SELECT count(*) FROM hm WHERE status = 'captured' AND captured = amount), '>', 5::bigint, 'some full captures');
SELECT cmp_ok((SELECT count(*) FROM hm WHERE status = 'voided'), '>', 5::bigint, 'some voids');
SELECT is((SELECT array_agg(DISTINCT what) FROM bad_step), NULL, 'at every step available = posted - held (also in wallet.accounts), and a capture moved exactly its amount');
SELECT is((SELECT count(*) FROM hm JOIN wallet.holds h ON h.id = hm.id
            WHERE h.status <> hm.status OR h.captured IS DISTINCT FROM
                  CASE WHEN hm.captured IS NOT NULL THEN wallet.amount(hm.captured, 'USD') END), 0::bigint,
          'wallet.holds shows each hold''s end and captured amount');
SELECT is((SELECT count(*) FROM hm JOIN wallet.holds h ON h.id = hm.id
            WHERE (hm.status = 'pending') = (h.ended_at IS NOT NULL)), 0::bigint, 'ended holds, and only those, have ended_at');
SELECT is((SELECT count(*) FROM hm JOIN wallet.holds h ON h.id = hm.id
            WHERE hm.status = 'captured' AND NOT EXISTS (
                SELECT 1 FROM wallet.entries e WHERE e.txn_id = h.capture_txn AND e.account_id = h.from_account
                   AND e.amount = -h.captured)), 0::bigint, 'each capture posted the captured amount from the payer');
-- each hold ends exactly once: a second capture or void of every ended hold is WL008
CREATE TEMP TABLE second_end AS
    SELECT hm.id, hm.status,
           NULL::text AS capture_state, NULL::text AS void_state
      FROM hm WHERE status <> 'pending';
DO $$
DECLARE
    r record;
    st text;
BEGIN
    FOR r IN SELECT id FROM second_end LOOP
        BEGIN
            PERFORM wallet.capture(r.id);
            st := 'ok';
        EXCEPTION WHEN OTHERS THEN st := SQLSTATE;
        END;
        UPDATE second_end SET capture_state = st WHERE id = r.id;
        BEGIN
            PERFORM wallet.void(r.id);
            st := 'ok';
        EXCEPTION WHEN OTHERS THEN st := SQLSTATE;
        END;
        UPDATE second_end SET void_state = st WHERE id = r.id;
    END LOOP;
END
$$;
SELECT is((SELECT array_agg(DISTINCT capture_state) FROM second_end), ARRAY['WL008'], 'capturing an ended hold again: always WL008');
SELECT is((SELECT array_agg(DISTINCT void_state) FROM second_end), ARRAY['WL008'], 'voiding an ended hold: always WL008');
SELECT ok(pg_temp.available_ok() AND pg_temp.view_ok(), 'and nothing moved');

-- explicit cases
SELECT id AS cap FROM hm WHERE status = 'captured' ORDER BY id LIMIT 1 \gset
SELECT id AS voi FROM hm WHERE status = 'voided' ORDER BY id LIMIT 1 \gset
SELECT throws_ok(format('SELECT wallet.capture(%s)', :cap), 'WL008', NULL, 'double capture');
SELECT throws_ok(format('SELECT wallet.void(%s)', :cap), 'WL008', NULL, 'void after capture');
SELECT throws_ok(format('SELECT wallet.capture(%s)', :voi), 'WL008', NULL, 'capture after void');
SELECT throws_ok(format('SELECT wallet.void(%s)', :voi), 'WL008', NULL, 'double void');
SELECT throws_ok('SELECT wallet.void(-42)', 'WL014', NULL, 'unknown hold');

-- a partial capture releases the rest
SELECT id AS payer FROM acc WHERE n = 1 \gset
SELECT id AS payee FROM acc WHERE n = 2 \gset
DO $$ BEGIN PERFORM wallet.void(id) FROM hm WHERE status = 'pending'; UPDATE hm SET status = 'voided' WHERE status = 'pending'; END $$;
SELECT wallet.units(wallet.balance(:payer)) AS payer_bal, wallet.units(wallet.balance(:payee)) AS payee_bal \gset
SELECT wallet.hold(:payer, :payee, '50.00 USD', 'holds:partial') AS hp \gset
SELECT is(wallet.units(wallet.available(:payer)), (:payer_bal - 5000)::bigint, 'the hold reserves 50.00');
SELECT wallet.capture(:hp, '12.34 USD') IS NOT NULL AS captured \gset
SELECT is(wallet.units(wallet.balance(:payer)), (:payer_bal - 1234)::bigint, 'capture of 12.34: the payer pays 12.34');
SELECT is(wallet.units(wallet.available(:payer)), (:payer_bal - 1234)::bigint, '... and the other 37.66 are available again');
SELECT is(wallet.units(wallet.balance(:payee)), (:payee_bal + 1234)::bigint, '... and the payee gets 12.34');

-- expiry: in this transaction now() is fixed, so these are expired for good
SELECT wallet.expire_holds() >= 0 AS cleared \gset
SELECT wallet.hold(:payer, :payee, '1.00 USD', 'holds:exp1', now() - interval '1 minute') AS e1 \gset
SELECT wallet.hold(:payer, :payee, '2.00 USD', 'holds:exp2', now()) AS e2 \gset
SELECT wallet.hold(:payer, :payee, '4.00 USD', 'holds:exp3', now() + interval '1 day') AS e3 \gset
SELECT is(wallet.units(wallet.available(:payer)), (:payer_bal - 1234 - 700)::bigint, 'three holds reserve 7.00');
SELECT is(wallet.expire_holds(), 2, 'expire_holds releases the two expired holds');
SELECT is(wallet.units(wallet.available(:payer)), (:payer_bal - 1234 - 400)::bigint, '... and their amounts');
SELECT results_eq(format('SELECT status FROM wallet.holds WHERE id IN (%s, %s, %s) ORDER BY id', :e1, :e2, :e3),
                  ARRAY['expired', 'expired', 'pending'], 'statuses after expiry');
SELECT throws_ok(format('SELECT wallet.capture(%s)', :e1), 'WL008', NULL, 'an expired hold cannot be captured');
SELECT is(wallet.expire_holds(), 0, 'a second expire_holds finds nothing');

SELECT is((SELECT ok FROM wallet.verify() WHERE check_name = 'holds_consistent'), true, 'verify: holds_consistent');
SELECT is((SELECT array_agg(check_name ORDER BY check_name) FROM wallet.verify() WHERE NOT ok), NULL,
          'wallet.verify(): every check ok');

SELECT * FROM finish();
ROLLBACK;
