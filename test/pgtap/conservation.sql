-- Conservation: a seeded random mix of transfers and multi-leg posts
-- (some refused with WL001) among 20 accounts in two currencies never
-- creates or destroys money: the sum of all balances per currency is the
-- same after every step, every transaction balances, each balance is the
-- sum of what the model says was posted, and wallet.verify() is all ok.
BEGIN;
SELECT plan(14);

SELECT setseed(0.20240601);

-- the accounts: per currency one issuer (may go negative) and users; two
-- users are hot (credits bypass their row lock)
CREATE TEMP TABLE acc (n int PRIMARY KEY, id bigint NOT NULL, cur text NOT NULL, model bigint NOT NULL DEFAULT 0);
CREATE TEMP TABLE step (n int PRIMARY KEY, what text, outcome text, usd_sum bigint, eur_sum bigint);

DO $$
DECLARE
    i int;
BEGIN
    INSERT INTO acc VALUES (0, wallet.open_account('cons-issuer-usd', 'USD', 'system', true), 'USD');
    INSERT INTO acc VALUES (1, wallet.open_account('cons-issuer-eur', 'EUR', 'system', true), 'EUR');
    FOR i IN 2..19 LOOP
        INSERT INTO acc VALUES (i, wallet.open_account('cons-user-' || i, CASE WHEN i < 14 THEN 'USD' ELSE 'EUR' END),
                                CASE WHEN i < 14 THEN 'USD' ELSE 'EUR' END);
    END LOOP;
    PERFORM wallet.set_hot(id) FROM acc WHERE n IN (5, 15);
    -- initial funding: 10 to 500 units of money each
    FOR i IN 2..19 LOOP
        PERFORM wallet.transfer(CASE WHEN i < 14 THEN (SELECT id FROM acc WHERE n = 0) ELSE (SELECT id FROM acc WHERE n = 1) END,
                                (SELECT id FROM acc WHERE n = i),
                                wallet.amount((1000 + (random() * 49000)::int)::bigint, (SELECT cur FROM acc WHERE n = i)),
                                'cons:fund:' || i);
    END LOOP;
    UPDATE acc SET model = wallet.units(wallet.balance(id));
END
$$;

-- sums per currency before the random steps
CREATE TEMP TABLE before AS
    SELECT cur, sum(wallet.units(wallet.balance(id)))::bigint AS total FROM acc GROUP BY cur;

DO $$
DECLARE
    s int;
    kind int;
    a int; b int; c int; d int;
    amt bigint; amt2 bigint;
    c_cur text;
    legs wallet.leg[];
    what text;
    outcome text;
    user_usd int[] := ARRAY[2,3,4,5,6,7,8,9,10,11,12,13];
    user_eur int[] := ARRAY[14,15,16,17,18,19];
    pool int[];
BEGIN
    FOR s IN 1..400 LOOP
        kind := (random() * 9)::int;          -- 0..9
        IF random() < 0.7 THEN pool := user_usd; c_cur := 'USD'; ELSE pool := user_eur; c_cur := 'EUR'; END IF;
        a := pool[1 + (random() * (cardinality(pool) - 1))::int];
        LOOP
            b := pool[1 + (random() * (cardinality(pool) - 1))::int];
            EXIT WHEN b <> a;
        END LOOP;
        LOOP
            c := pool[1 + (random() * (cardinality(pool) - 1))::int];
            EXIT WHEN c <> a AND c <> b;
        END LOOP;
        -- amounts up to about twice a typical balance, so that some are refused
        amt := 1 + (random() * 40000)::bigint;
        BEGIN
            IF kind <= 4 THEN
                what := 'transfer';
                PERFORM wallet.transfer((SELECT id FROM acc WHERE n = a), (SELECT id FROM acc WHERE n = b),
                                        wallet.amount(amt, c_cur), 'cons:' || s);
                UPDATE acc SET model = model - amt WHERE n = a;
                UPDATE acc SET model = model + amt WHERE n = b;
            ELSIF kind <= 7 THEN
                what := 'post3';
                amt := greatest(amt, 2);
                amt2 := 1 + ((amt - 2) * random())::bigint;   -- 1 .. amt - 1
                legs := ARRAY[((SELECT id FROM acc WHERE n = a), wallet.amount(-amt, c_cur))::wallet.leg,
                              ((SELECT id FROM acc WHERE n = b), wallet.amount(amt - amt2, c_cur))::wallet.leg,
                              ((SELECT id FROM acc WHERE n = c), wallet.amount(amt2, c_cur))::wallet.leg];
                PERFORM wallet.post('cons:' || s, legs, 'split');
                UPDATE acc SET model = model - amt WHERE n = a;
                UPDATE acc SET model = model + (amt - amt2) WHERE n = b;
                UPDATE acc SET model = model + amt2 WHERE n = c;
            ELSE
                -- both currencies in one transaction: a USD pair and an EUR pair
                what := 'post-fx';
                d := user_eur[1 + (random() * 5)::int];
                amt2 := 1 + (random() * 20000)::bigint;
                a := user_usd[1 + (random() * 11)::int];
                LOOP
                    b := user_usd[1 + (random() * 11)::int];
                    EXIT WHEN b <> a;
                END LOOP;
                PERFORM wallet.post('cons:' || s, ARRAY[
                    ((SELECT id FROM acc WHERE n = a), wallet.amount(-amt, 'USD'))::wallet.leg,
                    ((SELECT id FROM acc WHERE n = b), wallet.amount(amt, 'USD'))::wallet.leg,
                    ((SELECT id FROM acc WHERE n = 1), wallet.amount(-amt2, 'EUR'))::wallet.leg,
                    ((SELECT id FROM acc WHERE n = d), wallet.amount(amt2, 'EUR'))::wallet.leg], 'fx');
                UPDATE acc SET model = model - amt WHERE n = a;
                UPDATE acc SET model = model + amt WHERE n = b;
                UPDATE acc SET model = model - amt2 WHERE n = 1;
                UPDATE acc SET model = model + amt2 WHERE n = d;
            END IF;
            outcome := 'ok';
        EXCEPTION WHEN SQLSTATE 'WL001' THEN
            outcome := 'WL001';
        END;
        IF s % 50 = 0 THEN
            PERFORM wallet.fold_hot();
        END IF;
        INSERT INTO step VALUES (s, what, outcome,
            (SELECT sum(wallet.units(wallet.balance(id))) FROM acc WHERE cur = 'USD'),
            (SELECT sum(wallet.units(wallet.balance(id))) FROM acc WHERE cur = 'EUR'));
    END LOOP;
END
$$;

SELECT is((SELECT count(*) FROM step), 400::bigint, 'all 400 steps ran');
SELECT cmp_ok((SELECT count(*) FROM step WHERE outcome = 'ok'), '>', 100::bigint, 'many steps posted');
SELECT cmp_ok((SELECT count(*) FROM step WHERE outcome = 'WL001'), '>', 10::bigint, 'some steps were refused with WL001');
SELECT is((SELECT count(*) FROM step WHERE usd_sum <> (SELECT total FROM before WHERE cur = 'USD')), 0::bigint,
          'the USD total never changed');
SELECT is((SELECT count(*) FROM step WHERE eur_sum <> (SELECT total FROM before WHERE cur = 'EUR')), 0::bigint,
          'the EUR total never changed');
SELECT is((SELECT total FROM before WHERE cur = 'USD'), 0::bigint, 'USD: the issuer''s debit equals what the users hold');
SELECT is((SELECT count(*) FROM wallet.txn WHERE idempotency_key LIKE 'cons:%' AND idempotency_key NOT LIKE 'cons:fund:%'),
          (SELECT count(*) FROM step WHERE outcome = 'ok'),
          'one transaction per posted step, none for a refused one');
SELECT is((SELECT count(*) FROM (
              SELECT e.txn_id, a.currency FROM wallet.entry e JOIN wallet.account a ON a.id = e.account_id
               WHERE e.account_id IN (SELECT id FROM acc)
               GROUP BY e.txn_id, a.currency HAVING sum(e.amount) <> 0) x), 0::bigint,
          'every transaction balances in each currency');
SELECT is((SELECT count(*) FROM acc WHERE wallet.units(wallet.balance(id)) <> model), 0::bigint,
          'every balance is what the model posted');
SELECT is((SELECT count(*) FROM acc
            WHERE wallet.units(wallet.balance(id)) <> (SELECT coalesce(sum(e.amount), 0) FROM wallet.entry e WHERE e.account_id = acc.id)),
          0::bigint, 'every balance is the sum of its entries');
SELECT is((SELECT count(*) FROM acc WHERE n >= 2 AND wallet.units(wallet.balance(id)) < 0), 0::bigint,
          'no user account is negative');
SELECT is((SELECT count(*) FROM wallet.accounts v JOIN acc ON acc.id = v.id WHERE v.balance <> wallet.balance(v.id)), 0::bigint,
          'wallet.accounts shows the same balances');
DO $$ BEGIN PERFORM wallet.fold_hot(); END $$;
SELECT is((SELECT count(*) FROM acc WHERE wallet.units(wallet.balance(id)) <> model),
          0::bigint, 'after folding the hot accounts every balance is still what the model posted');
SELECT is((SELECT array_agg(check_name ORDER BY check_name) FROM wallet.verify() WHERE NOT ok), NULL,
          'wallet.verify(): every check ok');

SELECT * FROM finish();
ROLLBACK;
