-- Hot accounts: credits go to wallet.hot_pending instead of the balance
-- row; every read is exact before and after wallet.fold_hot; a debit from
-- a hot account counts its pending credits and can never overdraw it
-- (WL001); verify passes throughout.
BEGIN;
SELECT plan(31);

SELECT setseed(0.5);

SELECT wallet.open_account('hot-sys', 'USD', 'system', true) AS sys \gset
SELECT wallet.open_account('hot-fan', 'USD') AS fan \gset
SELECT wallet.open_account('hot-star', 'USD', 'creator') AS star \gset
SELECT wallet.open_account('hot-out', 'USD') AS out \gset
SELECT wallet.transfer(:sys, :fan, '1000.00 USD', 'hot:fund-fan') IS NOT NULL AS funded \gset

SELECT lives_ok(format('SELECT wallet.set_hot(%s)', :star), 'set_hot');
SELECT is((SELECT hot FROM wallet.accounts WHERE id = :star), true, 'the account is hot');

-- credits: transfer and post
SELECT wallet.transfer(:fan, :star, '1.00 USD', 'hot:c1') IS NOT NULL AS c1 \gset
SELECT wallet.transfer(:fan, :star, '2.00 USD', 'hot:c2') IS NOT NULL AS c2 \gset
SELECT wallet.post('hot:c3', ARRAY[(:fan, '-3.50 USD'), (:star, '3.00 USD'), (:out, '0.50 USD')]::wallet.leg[]) IS NOT NULL AS c3 \gset
SELECT is((SELECT count(*) FROM wallet.hot_pending WHERE account_id = :star), 3::bigint, 'three credits wait in hot_pending');
SELECT is((SELECT sum(amount) FROM wallet.hot_pending WHERE account_id = :star), 600::numeric, '... worth 6.00');
SELECT is((SELECT balance FROM wallet.account WHERE id = :star), 0::bigint, 'the stored balance did not move');
SELECT is(wallet.balance(:star), '6.00 USD'::wallet.amount, 'balance is exact before the fold');
SELECT is(wallet.available(:star), '6.00 USD'::wallet.amount, 'available is exact before the fold');
SELECT is((SELECT balance FROM wallet.accounts WHERE id = :star), '6.00 USD'::wallet.amount, 'wallet.accounts is exact before the fold');
SELECT is(wallet.balance_at(:star, 'infinity'), '6.00 USD'::wallet.amount, 'balance_at is exact before the fold');
SELECT is((SELECT ok FROM wallet.verify() WHERE check_name = 'balances_match_entries'), true, 'verify before the fold');
SELECT is((SELECT count(*) FROM wallet.hot_pending WHERE account_id = :out), 0::bigint, 'a normal account takes its credit directly');

-- debits count the pending credits and cannot overdraw
SELECT throws_ok(format($q$SELECT wallet.transfer(%s, %s, '6.01 USD', 'hot:d-over')$q$, :star, :out), 'WL001', NULL,
                 'a debit of more than balance + pending is refused');
SELECT throws_ok(format($q$SELECT wallet.post('hot:d-over2', ARRAY[(%s, '-6.01 USD'), (%s, '6.01 USD')]::wallet.leg[])$q$, :star, :out), 'WL001', NULL,
                 '... also through post');
SELECT throws_ok(format($q$SELECT wallet.hold(%s, %s, '6.01 USD', 'hot:h-over')$q$, :star, :out), 'WL001', NULL,
                 '... and through a hold');
SELECT lives_ok(format($q$SELECT wallet.transfer(%s, %s, '4.00 USD', 'hot:d1')$q$, :star, :out), 'a covered debit goes through');
SELECT is(wallet.balance(:star), '2.00 USD'::wallet.amount, 'balance after the debit');
SELECT throws_ok(format($q$SELECT wallet.transfer(%s, %s, '2.01 USD', 'hot:d-over3')$q$, :star, :out), 'WL001', NULL,
                 'the next overdraft is refused too');

-- fold
SELECT is(wallet.fold_hot(:star), 3::bigint, 'fold_hot folds the three credits');
SELECT is((SELECT count(*) FROM wallet.hot_pending WHERE account_id = :star), 0::bigint, 'nothing is pending after the fold');
SELECT is((SELECT balance FROM wallet.account WHERE id = :star), 200::bigint, 'the stored balance is the balance');
SELECT is(wallet.balance(:star), '2.00 USD'::wallet.amount, 'balance is exact after the fold');
SELECT is(wallet.fold_hot(:star), 0::bigint, 'a second fold finds nothing');

SELECT set_config('hot.star', :'star', true) AS s1, set_config('hot.fan', :'fan', true) AS s2,
       set_config('hot.out', :'out', true) AS s3 \gset
-- a random run: credits from many payers, debits, folds at random; the
-- balance must match a model at every step and never go below zero
CREATE TEMP TABLE bad (s int, what text);
DO $$
DECLARE
    s int;
    model bigint := wallet.units(wallet.balance(current_setting('hot.star')::bigint));
    star bigint := current_setting('hot.star')::bigint;
    fan bigint := current_setting('hot.fan')::bigint;
    outa bigint := current_setting('hot.out')::bigint;
    amt bigint;
    refused boolean;
BEGIN
    FOR s IN 1..300 LOOP
        amt := 1 + (random() * 500)::bigint;
        IF random() < 0.6 THEN
            PERFORM wallet.transfer(fan, star, wallet.amount(amt, 'USD'), 'hot:r' || s);
            model := model + amt;
        ELSIF random() < 0.85 THEN
            refused := false;
            BEGIN
                PERFORM wallet.transfer(star, outa, wallet.amount(amt, 'USD'), 'hot:r' || s);
            EXCEPTION WHEN SQLSTATE 'WL001' THEN refused := true;
            END;
            IF refused <> (amt > model) THEN
                INSERT INTO bad VALUES (s, format('debit of %s with %s: refused = %s', amt, model, refused));
            END IF;
            IF NOT refused THEN model := model - amt; END IF;
        ELSE
            PERFORM wallet.fold_hot(CASE WHEN random() < 0.5 THEN star END);
        END IF;
        IF wallet.units(wallet.balance(star)) <> model THEN
            INSERT INTO bad VALUES (s, 'balance <> model');
        END IF;
        IF wallet.units(wallet.available(star)) < 0 THEN
            INSERT INTO bad VALUES (s, 'negative');
        END IF;
    END LOOP;
END
$$;
SELECT is((SELECT array_agg(DISTINCT what) FROM bad), NULL,
          'random credits, debits and folds: balance exact at every step, WL001 exactly when short, never negative');

-- a hold may reserve exactly balance + pending credits
SELECT wallet.transfer(:fan, :star, '0.25 USD', 'hot:before-hold') IS NOT NULL AS credited \gset
SELECT wallet.hold(:star, :out, wallet.balance(:star), 'hot:hold-all') AS hold_all \gset
SELECT is(wallet.available(:star), '0.00 USD'::wallet.amount, 'a hold can reserve all of balance + pending credits');
SELECT wallet.void(:hold_all) IS NOT NULL AS voided \gset

-- an account allowed to go negative may be debited while hot: exact too
SELECT wallet.set_hot(:sys) IS NOT NULL AS sys_hot \gset
SELECT wallet.units(wallet.balance(:sys)) AS sys_before \gset
SELECT lives_ok(format($q$SELECT wallet.transfer(%s, %s, '7.00 USD', 'hot:sys-debit')$q$, :sys, :out),
                'a hot account that may go negative can be debited');
SELECT is(wallet.units(wallet.balance(:sys)), (:sys_before - 700)::bigint, '... and its balance is exact');

-- lifecycle
SELECT wallet.freeze_account(:star) IS NOT NULL AS frozen \gset
SELECT throws_ok(format($q$SELECT wallet.transfer(%s, %s, '1.00 USD', 'hot:frozen')$q$, :fan, :star), 'WL004', NULL,
                 'a frozen hot account takes no credit');
SELECT wallet.unfreeze_account(:star) IS NOT NULL AS unfrozen \gset
SELECT wallet.transfer(:fan, :star, '1.00 USD', 'hot:last') IS NOT NULL AS last \gset
SELECT throws_ok(format('SELECT wallet.close_account(%s)', :star), 'WL012', NULL,
                 'a hot account with a pending credit is not empty');
SELECT lives_ok(format('SELECT wallet.set_hot(%s, false)', :star), 'set_hot(false) ...');
SELECT is((SELECT count(*) FROM wallet.hot_pending WHERE account_id = :star), 0::bigint, '... folds what was pending');

SELECT is((SELECT array_agg(check_name ORDER BY check_name) FROM wallet.verify() WHERE NOT ok), NULL,
          'wallet.verify(): every check ok');

SELECT * FROM finish();
ROLLBACK;
