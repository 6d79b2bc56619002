-- No overdraft: random transfers, multi-leg posts (some with two debits or
-- netted legs), holds, captures and voids against 12 accounts that may not
-- go negative (two of them hot).  A model computes, before each attempt,
-- whether funds are short; WL001 must come exactly then, and no account
-- may ever be negative, posted or available.
BEGIN;
SELECT plan(12);

SELECT setseed(0.31415);

CREATE TEMP TABLE acc (n int PRIMARY KEY, id bigint NOT NULL, bal bigint NOT NULL DEFAULT 0, held bigint NOT NULL DEFAULT 0);
CREATE TEMP TABLE hld (id bigint PRIMARY KEY, n int NOT NULL, amount bigint NOT NULL);
-- expected: 'ok' or 'WL001'; got: 'ok' or the SQLSTATE
CREATE TEMP TABLE attempt (s int PRIMARY KEY, what text, expected text, got text);
CREATE TEMP TABLE negative_seen (s int, n int);

DO $$
DECLARE
    i int;
BEGIN
    INSERT INTO acc (n, id) VALUES (0, wallet.open_account('nod-issuer', 'USD', 'system', true));
    FOR i IN 1..12 LOOP
        INSERT INTO acc (n, id) VALUES (i, wallet.open_account('nod-' || i, 'USD'));
        PERFORM wallet.transfer((SELECT id FROM acc WHERE n = 0), (SELECT id FROM acc WHERE n = i),
                                wallet.amount((500 + (random() * 5000)::int)::bigint, 'USD'), 'nod:fund:' || i);
    END LOOP;
    PERFORM wallet.set_hot(id) FROM acc WHERE n IN (3, 7);
    UPDATE acc SET bal = wallet.units(wallet.balance(id));
END
$$;

DO $$
DECLARE
    s int;
    k int;
    a int; b int; c int;
    amt bigint; amt2 bigint;
    avail_a bigint; avail_b bigint;
    expected text;
    got text;
    what text;
    h record;
    hid bigint;
    USD CONSTANT text := 'USD';
BEGIN
    FOR s IN 1..500 LOOP
        k := (random() * 9)::int;
        a := 1 + (random() * 11)::int;
        LOOP b := 1 + (random() * 11)::int; EXIT WHEN b <> a; END LOOP;
        LOOP c := 1 + (random() * 11)::int; EXIT WHEN c <> a AND c <> b; END LOOP;
        amt := 1 + (random() * 3000)::bigint;
        SELECT bal - held INTO avail_a FROM acc WHERE n = a;
        SELECT bal - held INTO avail_b FROM acc WHERE n = b;
        got := 'ok';
        IF k <= 2 THEN
            what := 'transfer';
            expected := CASE WHEN amt > avail_a THEN 'WL001' ELSE 'ok' END;
            BEGIN
                PERFORM wallet.transfer((SELECT id FROM acc WHERE n = a), (SELECT id FROM acc WHERE n = b),
                                        wallet.amount(amt, USD), 'nod:' || s);
            EXCEPTION WHEN OTHERS THEN got := SQLSTATE;
            END;
            IF got = 'ok' THEN
                UPDATE acc SET bal = bal - amt WHERE n = a;
                UPDATE acc SET bal = bal + amt WHERE n = b;
            END IF;
        ELSIF k <= 4 THEN
            -- two debits (a and b) into c: refused if either is short
            what := 'post-two-debits';
            amt2 := 1 + (random() * 3000)::bigint;
            expected := CASE WHEN amt > avail_a OR amt2 > avail_b THEN 'WL001' ELSE 'ok' END;
            BEGIN
                PERFORM wallet.post('nod:' || s, ARRAY[
                    ((SELECT id FROM acc WHERE n = a), wallet.amount(-amt, USD))::wallet.leg,
                    ((SELECT id FROM acc WHERE n = b), wallet.amount(-amt2, USD))::wallet.leg,
                    ((SELECT id FROM acc WHERE n = c), wallet.amount(amt + amt2, USD))::wallet.leg]);
            EXCEPTION WHEN OTHERS THEN got := SQLSTATE;
            END;
            IF got = 'ok' THEN
                UPDATE acc SET bal = bal - amt WHERE n = a;
                UPDATE acc SET bal = bal - amt2 WHERE n = b;
                UPDATE acc SET bal = bal + amt + amt2 WHERE n = c;
            END IF;
        ELSIF k = 5 THEN
            -- netted legs: a pays out a large gross amount but gets most of it back
            what := 'post-netted';
            amt2 := amt + 1 + (random() * 100000)::bigint;       -- gross debit, larger than any balance
            expected := CASE WHEN amt > avail_a THEN 'WL001' ELSE 'ok' END;
            BEGIN
                PERFORM wallet.post('nod:' || s, ARRAY[
                    ((SELECT id FROM acc WHERE n = a), wallet.amount(-amt2, USD))::wallet.leg,
                    ((SELECT id FROM acc WHERE n = a), wallet.amount(amt2 - amt, USD))::wallet.leg,
                    ((SELECT id FROM acc WHERE n = b), wallet.amount(amt, USD))::wallet.leg]);
            EXCEPTION WHEN OTHERS THEN got := SQLSTATE;
            END;
            IF got = 'ok' THEN
                UPDATE acc SET bal = bal - amt WHERE n = a;
                UPDATE acc SET bal = bal + amt WHERE n = b;
            END IF;
        ELSIF k <= 7 THEN
            what := 'hold';
            expected := CASE WHEN amt > avail_a THEN 'WL001' ELSE 'ok' END;
            BEGIN
                hid := wallet.hold((SELECT id FROM acc WHERE n = a), (SELECT id FROM acc WHERE n = b),
                                   wallet.amount(amt, USD), 'nod:' || s);
            EXCEPTION WHEN OTHERS THEN got := SQLSTATE;
            END;
            IF got = 'ok' THEN
                INSERT INTO hld VALUES (hid, a, amt);
                UPDATE acc SET held = held + amt WHERE n = a;
            END IF;
        ELSE
            -- end a pending hold: capture part or all (always covered), or void
            SELECT * INTO h FROM hld ORDER BY random() LIMIT 1;
            IF h IS NULL THEN
                what := 'none'; expected := 'ok';
            ELSIF random() < 0.7 THEN
                what := 'capture';
                expected := 'ok';
                amt2 := 1 + ((h.amount - 1) * random())::bigint;
                BEGIN
                    PERFORM wallet.capture(h.id, wallet.amount(amt2, USD));
                EXCEPTION WHEN OTHERS THEN got := SQLSTATE;
                END;
                IF got = 'ok' THEN
                    DELETE FROM hld WHERE id = h.id;
                    UPDATE acc SET held = held - h.amount, bal = bal - amt2 WHERE n = h.n;
                    UPDATE acc SET bal = bal + amt2
                     WHERE id = (SELECT to_account FROM wallet.holds WHERE id = h.id);
                END IF;
            ELSE
                what := 'void';
                expected := 'ok';
                BEGIN
                    PERFORM wallet.void(h.id);
                EXCEPTION WHEN OTHERS THEN got := SQLSTATE;
                END;
                IF got = 'ok' THEN
                    DELETE FROM hld WHERE id = h.id;
                    UPDATE acc SET held = held - h.amount WHERE n = h.n;
                END IF;
            END IF;
        END IF;
        INSERT INTO attempt VALUES (s, what, expected, got);
        INSERT INTO negative_seen
            SELECT s, acc.n FROM acc
             WHERE acc.n > 0 AND (wallet.units(wallet.balance(acc.id)) < 0 OR wallet.units(wallet.available(acc.id)) < 0);
        IF s % 100 = 0 THEN
            PERFORM wallet.fold_hot();
        END IF;
    END LOOP;
END
$$;

SELECT is((SELECT count(*) FROM attempt), 500::bigint, 'all 500 attempts ran');
SELECT cmp_ok((SELECT count(*) FROM attempt WHERE got = 'WL001'), '>', 20::bigint, 'some attempts were refused');
SELECT cmp_ok((SELECT count(*) FROM attempt WHERE got = 'ok' AND what <> 'none'), '>', 100::bigint, 'many attempts succeeded');
SELECT is((SELECT count(*) FROM attempt WHERE got NOT IN ('ok', 'WL001')), 0::bigint, 'no other error than WL001');
SELECT is((SELECT array_agg(s ORDER BY s) FROM attempt WHERE expected = 'WL001' AND got <> 'WL001'), NULL,
          'every attempt with funds short was refused with WL001');
SELECT is((SELECT array_agg(s ORDER BY s) FROM attempt WHERE expected = 'ok' AND got <> 'ok'), NULL,
          'every attempt with enough funds went through');
SELECT is((SELECT count(*) FROM negative_seen), 0::bigint, 'no account ever went negative, posted or available');
SELECT is((SELECT count(*) FROM acc WHERE n > 0 AND wallet.units(wallet.balance(id)) <> bal), 0::bigint,
          'posted balances are what the model says');
SELECT is((SELECT count(*) FROM acc WHERE n > 0 AND wallet.units(wallet.available(id)) <> bal - held), 0::bigint,
          'available balances are posted minus held');
SELECT is((SELECT count(*) FROM wallet.accounts v JOIN acc ON acc.id = v.id
            WHERE acc.n > 0 AND (wallet.units(v.balance) < 0 OR wallet.units(v.available) < 0)), 0::bigint,
          'wallet.accounts shows no negative account');
SELECT is((SELECT ok FROM wallet.verify() WHERE check_name = 'no_forbidden_negative'), true, 'verify: no_forbidden_negative');
SELECT is((SELECT array_agg(check_name ORDER BY check_name) FROM wallet.verify() WHERE NOT ok), NULL,
          'wallet.verify(): every check ok');

SELECT * FROM finish();
ROLLBACK;
