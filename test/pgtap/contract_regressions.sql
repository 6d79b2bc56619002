-- test/pgtap/contract_regressions.sql — deviations from SPEC.md that a
-- contract review found in 1.0.0 (B1..B11), each fixed in 1.1.0; these
-- assertions keep them fixed.  Each block names the contract text and
-- where the cause was; the assertions marked "control" held before too.
-- Runs in one transaction and rolls back.
BEGIN;
SELECT plan(41);

LOCK TABLE wallet.audit_seal IN SHARE ROW EXCLUSIVE MODE;
SET LOCAL client_min_messages = warning;

\ir include/helpers.sql

-- ---------------------------------------------------------------------------
-- B1  "default btree and hash operator classes (index, ORDER BY, GROUP BY,
--     DISTINCT, hash joins work)": once a column that mixes currencies has
--     statistics (ANALYZE / autovacuum), an equality join on it fails at
--     plan time with WL002, and so does a range condition even when an
--     other condition keeps to one currency.  The planner's estimators
--     (mergejoinscansel, scalarineqsel on the histogram) call the < / >
--     operators of the opclass on histogram values of different currencies.
--     Cause: ext/install/20_amount.sql (RESTRICT/JOIN estimators and opclass
--     members) + src/amount_ops.c amount_lt..amount_ge raising WL002.
--     Fix: give the btree opclass total-order operators consistent with
--     amount_cmp (code, then units) — e.g. internal operators for the
--     opclass, keeping the raising < <= > >= outside the opfamily so the
--     planner never evaluates them on statistics — or make < <= > >= total.
CREATE TABLE public.cb_pay (id int, a wallet.amount);
INSERT INTO public.cb_pay SELECT i, wallet.amount((i % 7)::bigint - 3, CASE WHEN i % 3 = 0 THEN 'EUR' ELSE 'USD' END)
  FROM generate_series(1, 300) i;
CREATE TABLE public.cb_ref (a wallet.amount);
INSERT INTO public.cb_ref VALUES ('0.01 USD'), ('-0.03 EUR'), ('9 JPY');
SELECT is(pg_temp.val('SELECT count(*) FROM public.cb_pay JOIN public.cb_ref USING (a)'), '43',
          'B1 control: the equality join before ANALYZE');
ANALYZE public.cb_pay;
ANALYZE public.cb_ref;
SELECT is(pg_temp.val('SELECT count(*) FROM public.cb_pay JOIN public.cb_ref USING (a)'), '43',
          'B1: the same equality join after ANALYZE (default planner settings)');
SELECT is(pg_temp.val($$SELECT count(*) FROM public.cb_pay WHERE wallet.currency(a) = 'USD' AND a > '0.01 USD'$$), '57',
          'B1: a range condition on the USD rows of an analyzed mixed column');
SET LOCAL enable_hashjoin = off;
SET LOCAL enable_nestloop = off;
SELECT is(pg_temp.val('SELECT count(*) FROM public.cb_pay JOIN public.cb_ref USING (a)'), '43',
          'B1: a merge join on a mixed column (README: merge joins work)');
RESET enable_hashjoin;
RESET enable_nestloop;

-- ---------------------------------------------------------------------------
-- B2  "Aggregates sum, min, max over amounts (overflow and currency
--     checked)": with a btree index on a column mixing currencies, min()
--     and max() are answered from the index (SORTOP) and return the
--     smallest / largest currency code's value instead of raising WL002,
--     while the same query without the index raises WL002.
--     Cause: ext/install/20_amount.sql CREATE AGGREGATE min/max ... SORTOP.
--     Fix: drop SORTOP from min/max (or make the index path check the
--     currencies).
SELECT is(pg_temp.state('SELECT min(a) FROM public.cb_pay'), 'WL002', 'B2 control: min over mixed currencies without an index: WL002');
CREATE INDEX cb_pay_a ON public.cb_pay (a);
ANALYZE public.cb_pay;
SELECT is(pg_temp.state('SELECT min(a) FROM public.cb_pay'), 'WL002', 'B2: min over mixed currencies with an index: WL002');
SELECT is(pg_temp.state('SELECT max(a) FROM public.cb_pay'), 'WL002', 'B2: max over mixed currencies with an index: WL002');

-- ---------------------------------------------------------------------------
-- B3  "Idempotency: the same key with the same request returns the first
--     result": wallet.hold fingerprints expires_at with timestamptz_to_str(),
--     i.e. in the session's TimeZone, so a retry of the very same hold from
--     a connection with another TimeZone (JDBC sets it per connection;
--     PgBouncer hands out any server connection) is refused with WL006.
--     Cause: src/holds.c wallet_hold(): psprintf("hold|expires=%s",
--     timestamptz_to_str(...)).  Fix: fingerprint the TimestampTz value
--     itself (INT64_FORMAT of the microseconds), independent of settings.
SELECT wallet.open_account('cb-sys', 'USD', 'system', true) AS sys \gset
SELECT wallet.open_account('cb-a', 'USD') AS a \gset
SELECT wallet.open_account('cb-b', 'USD') AS b \gset
SELECT wallet.transfer(:sys, :a, '10.00 USD', 'cb:fund') IS NULL AS ignored \gset
SET LOCAL TimeZone = 'UTC';
SELECT wallet.hold(:a, :b, '1.00 USD', 'cb:hold-tz', '2099-01-01 00:00:00+00') AS h_tz \gset
SET LOCAL TimeZone = 'Asia/Tokyo';
SELECT is(pg_temp.val(format($$SELECT wallet.hold(%s, %s, '1.00 USD', 'cb:hold-tz', '2099-01-01 00:00:00+00')$$, :a, :b)), :'h_tz',
          'B3: the same hold retried from a session in another TimeZone returns the first hold');
SET LOCAL DateStyle = 'SQL, DMY';
SET LOCAL TimeZone = 'UTC';
SELECT is(pg_temp.val(format($$SELECT wallet.hold(%s, %s, '1.00 USD', 'cb:hold-tz', '2099-01-01 00:00:00+00')$$, :a, :b)), :'h_tz',
          'B3 control: same TimeZone, other DateStyle: the first hold');
RESET TimeZone;
RESET DateStyle;

-- ---------------------------------------------------------------------------
-- B4  A recharge can be clawed back twice: wallet.reverse(recharge) and
--     wallet.refund_recharge(recharge) both post, in either order, so the
--     user is charged (and the store money refunded) twice.  Contract: "a
--     transaction is reversed at most once"; refund_recharge "claws the
--     coins back" (once); "a retried request never posts twice".
--     Cause: ext/install/60_live.sql refund_recharge() neither checks
--     txn.reverses nor sets it; src/ledger.c wallet_reverse() does not know
--     about 'wallet:refund:<id>'.  Fix: post the refund with
--     reverses = tx_id (so the unique index refuses a later reverse, WL010)
--     and refuse a refund of a reversed recharge (WL010).
SELECT wallet.live_setup(creator_share => 0.5) IS NULL AS ignored \gset
SELECT wallet.open_account('cb-viewer', 'COIN') AS v \gset
SELECT wallet.recharge(:v, '100 COIN', '0.99 USD', 'appstore', 'cb-order-1') AS rc1 \gset
SELECT wallet.reverse(:rc1, 'cb:rev-rc1') IS NULL AS ignored \gset
SELECT is(wallet.units(wallet.balance(:v)), 0::bigint, 'B4 control: the reversal took the 100 coins back');
SELECT is(pg_temp.state(format($$SELECT wallet.refund_recharge(%s, 'chargeback')$$, :rc1)), 'WL010',
          'B4: refund_recharge of a reversed recharge is refused');
SELECT is(wallet.units(wallet.available(:v)), 0::bigint, 'B4: the user owes nothing more for that recharge');
SELECT wallet.recharge(:v, '10 COIN', '0.10 USD', 'appstore', 'cb-order-2') AS rc2 \gset
SELECT wallet.refund_recharge(:rc2, 'refund') IS NULL AS ignored \gset
SELECT is(pg_temp.state(format($$SELECT wallet.reverse(%s, 'cb:rev-rc2', NULL, true)$$, :rc2)), 'WL010',
          'B4: reverse of a refunded recharge is refused');

-- ---------------------------------------------------------------------------
-- B5  "checked for overflow": credits to a hot account are not checked.
--     Two credits whose sum exceeds int64 are both accepted; afterwards
--     wallet.balance(), the accounts view, fold_hot() (so the housekeeping
--     of every hot account) and wallet.verify() all fail with 22003.
--     Cause: src/ledger.c ledger_post(): unlocked hot credits go to
--     hot_pending without checking balance + pending + delta (the locked
--     path does check); same in src/batch.c.  Fix: check the overflow of
--     stored balance + committed pending + delta for unlocked credits (or
--     refuse credits that bring the pending sum past the int64 range).
SELECT wallet.open_account('cb-s1', 'USD', 'system', true) AS s1 \gset
SELECT wallet.open_account('cb-s2', 'USD', 'system', true) AS s2 \gset
SELECT wallet.open_account('cb-hot', 'USD') AS hot \gset
SELECT wallet.open_account('cb-cold', 'USD') AS cold \gset
SELECT wallet.set_hot(:hot) IS NULL AS ignored \gset
SELECT wallet.transfer(:s1, :cold, '92233720368547758.07 USD', 'cb:ov-cold-1') IS NULL AS ignored \gset
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '0.01 USD', 'cb:ov-cold-2')$$, :s2, :cold)), '22003',
          'B5 control: a credit past int64 to a normal account: 22003');
SAVEPOINT b5;
SELECT wallet.transfer(:s2, :hot, '92233720368547758.07 USD', 'cb:ov-hot-1') IS NULL AS ignored \gset
SELECT is(pg_temp.state(format($$SELECT wallet.transfer(%s, %s, '0.01 USD', 'cb:ov-hot-2')$$, (SELECT wallet.open_account('cb-s3', 'USD', 'system', true)), :hot)),
          '22003', 'B5: a credit past int64 to a hot account: 22003');
SELECT is(pg_temp.val(format('SELECT wallet.balance(%s)', :hot)), '92233720368547758.07 USD', 'B5: the hot account''s balance still reads');
SELECT is(pg_temp.state('SELECT wallet.fold_hot()'), 'ok', 'B5: fold_hot() still works');
ROLLBACK TO SAVEPOINT b5;

-- ---------------------------------------------------------------------------
-- B6  "audit_verify() finds any sealed record edited, deleted or inserted,
--     even by a superuser with triggers disabled": a forged transaction
--     with an id <= 0 (below every sealed id) and balanced entries, with the
--     two balances adjusted, passes both wallet.verify() and
--     wallet.audit_verify(head).  Cause: ext/install/70_audit.sql
--     audit_verify() compares wallet.journal_hashes(0, j_max), i.e. only
--     ids > 0.  Fix: compare from the lowest possible id
--     (journal_hashes(-9223372036854775808, j_max)) or flag any id <= 0.
SELECT wallet.transfer(:sys, :b, '1.00 USD', 'cb:sealed') IS NULL AS ignored \gset
SELECT wallet.digest() AS head \gset
SET LOCAL session_replication_role = replica;
INSERT INTO wallet.txn (id, idempotency_key, kind, request_hash) VALUES (0, 'cb:forged', 'transfer', '\x00');
INSERT INTO wallet.entry (txn_id, leg, account_id, amount) VALUES (0, 1, :sys, -100000), (0, 2, :b, 100000);
UPDATE wallet.account SET balance = balance - 100000 WHERE id = :sys;
UPDATE wallet.account SET balance = balance + 100000 WHERE id = :b;
SET LOCAL session_replication_role = origin;
SELECT is((SELECT bool_and(ok) FROM wallet.audit_verify(:'head')), false, 'B6: audit_verify(head) finds the forged transaction 0');
SELECT is(pg_temp.val('SELECT bool_and(ok) FROM wallet.verify()'), 'false', 'B6: verify() finds it (1.0.0 does not; 1.1.0 does, through its account_history check)');
SET LOCAL session_replication_role = replica;
DELETE FROM wallet.entry WHERE txn_id = 0;
DELETE FROM wallet.txn WHERE id = 0;
UPDATE wallet.account SET balance = balance + 100000 WHERE id = :sys;
UPDATE wallet.account SET balance = balance - 100000 WHERE id = :b;
SET LOCAL session_replication_role = origin;

-- ---------------------------------------------------------------------------
-- B7  Security: "The application role gets EXECUTE on the API and SELECT on
--     the read views, nothing else: it cannot ... read another schema's
--     data through the API."  grant_app() (and grant_reader()) grant
--     SELECT on wallet.audit_trail, which shows old_row/new_row of every
--     table audited with wallet.audit_table(), whatever the role may read.
--     Cause: ext/install/95_security.sql read_views() includes audit_trail
--     (and 70/95 audit_trail has no row filter).  Fix: do not grant
--     audit_trail to the application role, and/or filter it to relations
--     the current user can SELECT (has_table_privilege) or to the wallet's
--     own tables.
CREATE SCHEMA cb_hr;
CREATE TABLE cb_hr.salaries (emp text, salary int);
SELECT wallet.audit_table('cb_hr.salaries') IS NULL AS ignored \gset
INSERT INTO cb_hr.salaries VALUES ('ceo', 1000000);
CREATE ROLE cb_app;
SELECT wallet.grant_app('cb_app') IS NULL AS ignored \gset
SET LOCAL ROLE cb_app;
SELECT is(pg_temp.state('SELECT * FROM cb_hr.salaries'), '42501', 'B7 control: the app role cannot read cb_hr.salaries');
SELECT is(pg_temp.val($$SELECT count(*) FROM wallet.audit_trail WHERE new_row ->> 'emp' = 'ceo'$$) IN ('0', '42501'), true,
          'B7: ... nor its rows through wallet.audit_trail');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- B8  "Errors carry ... a message, a DETAIL with the values involved" (and
--     README: "Every error has a message, a DETAIL with the values
--     involved").  These errors of the contract's kinds have no DETAIL.
--     Causes: the RAISE without DETAIL in ext/install/40_reading.sql
--     (freeze/unfreeze), 60_live.sql (recharge, gift, request_withdrawal,
--     refund_recharge, live_lock_withdrawal), 10_currency.sql
--     (add_currency), 30_ledger.sql (open_account, set_hot, account_row);
--     the ereport()s without errdetail in src/ledger.c
--     (ledger_check_key_ext, ledger_check_kind,
--     ledger_checked_transfer_legs, check_balanced / ledger_post overflow,
--     arg_amount/arg_int64, post_common), src/holds.c (capture amount),
--     src/amount_ops.c (allocate ratio/null, split parts).
--     Fix: add DETAIL (the values involved) to each.
SELECT wallet.open_account('cb-closed', 'USD') AS closed \gset
SELECT wallet.close_account(:closed) IS NULL AS ignored \gset
SELECT wallet.open_account('cb-frozen-viewer', 'COIN') AS fv \gset
SELECT wallet.freeze_account(:fv) IS NULL AS ignored \gset
SELECT wallet.open_account('cb-creator', 'DIAMOND') AS cr \gset
SELECT wallet.hold(:a, :b, '2.00 USD', 'cb:hold-d') AS hd \gset
SELECT is(pg_temp.err(format('SELECT wallet.freeze_account(%s)', :closed)), 'WL005 +detail', 'B8: freeze of a closed account: WL005 with DETAIL');
SELECT is(pg_temp.err(format('SELECT wallet.unfreeze_account(%s)', :closed)), 'WL005 +detail', 'B8: unfreeze of a closed account: WL005 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.recharge(%s, '10 COIN', '0.10 USD', 'appstore', 'cb-order-9')$$, :fv)), 'WL004 +detail',
          'B8: recharge of a frozen account: WL004 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.recharge(%s, '10 DIAMOND', '0.10 USD', 'appstore', 'cb-order-9')$$, :v)), 'WL002 +detail',
          'B8: recharge in the wrong unit: WL002 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.gift(%s, %s, '1 DIAMOND', 'cb:g1')$$, :v, :cr)), 'WL002 +detail',
          'B8: gift in the wrong unit: WL002 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.request_withdrawal(%s, '1 COIN', 'cb:w1')$$, :cr)), 'WL002 +detail',
          'B8: withdrawal in the wrong unit: WL002 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.post('cb:ovl', ARRAY[(%s, %L), (%s, %L), (%s, '0.01 USD'), (%s, '-0.01 USD')]::wallet.leg[])$$,
                             :b, wallet.amount(9223372036854775807, 'USD'), :sys, wallet.amount(-9223372036854775807, 'USD'), :b, :sys)),
          '22003 +detail', 'B8: legs overflowing an account: 22003 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '0.00 USD', 'cb:zero')$$, :a, :b)), '22023 +detail',
          'B8: transfer of zero: 22023 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', 'cb:self')$$, :a, :a)), '22023 +detail',
          'B8: transfer to itself: 22023 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, '1.00 USD', '')$$, :a, :b)), '22023 +detail',
          'B8: empty idempotency key: 22023 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.transfer(%s, %s, NULL, 'cb:null')$$, :a, :b)), '22004 +detail',
          'B8: null amount: 22004 with DETAIL');
SELECT is(pg_temp.err(format($$SELECT wallet.capture(%s, '5.00 USD')$$, :hd)), '22023 +detail',
          'B8: capture of more than held: 22023 with DETAIL');
SELECT is(pg_temp.err($$SELECT wallet.allocate('1 USD', '{1,-1}')$$), '22023 +detail', 'B8: allocate with a negative ratio: 22023 with DETAIL');
SELECT is(pg_temp.err($$SELECT wallet.split('1 USD', 0)$$), '22023 +detail', 'B8: split into 0 parts: 22023 with DETAIL');
SELECT is(pg_temp.err($$SELECT wallet.add_currency('GEMX', 19, 'x')$$), '22023 +detail', 'B8: add_currency with 19 decimals: 22023 with DETAIL');
SELECT is(pg_temp.err($$SELECT wallet.open_account('', 'USD')$$), '22023 +detail', 'B8: open_account with an empty owner: 22023 with DETAIL');
SELECT is(pg_temp.err('SELECT wallet.refund_recharge(-42, ''x'')'), 'WL009 +detail', 'B8: refund of an unknown transaction: WL009 with DETAIL');

-- ---------------------------------------------------------------------------
-- B9  Bad input has a documented SQLSTATE (README: 22004 "a required
--     argument is null"): wallet.add_currency(NULL, ...) fails with 23502
--     (not-null violation of custom_currencies.code) instead.
--     Cause: ext/install/10_currency.sql add_currency() checks minor_units
--     for NULL but not code.  Fix: IF code IS NULL THEN RAISE ... 22004.
SELECT is(pg_temp.state($$SELECT wallet.add_currency(NULL, 0, 'x')$$), '22004', 'B9: add_currency(NULL, ...): 22004');

-- ---------------------------------------------------------------------------
-- B10 audit_verify names the first bad record, but for a record inserted
--     after sealing the detail reads "... was inserted after sealing
--     (sealed in seal )": format() with a NULL seal id is not NULL, so the
--     coalesce never drops the parenthesis.  Cause: ext/install/70_audit.sql
--     audit_verify(), both "coalesce(format(' (sealed in seal %s)', ...), '')".
--     Fix: CASE WHEN r.seal_id IS NOT NULL THEN format(...) ELSE '' END.
SAVEPOINT b10;
SELECT wallet.transfer(:sys, :b, '1.00 USD', 'cb:gap-burn2') AS burned2 \gset
ROLLBACK TO SAVEPOINT b10;
SELECT wallet.transfer(:sys, :b, '1.00 USD', 'cb:gap-after') IS NULL AS ignored \gset
SELECT wallet.digest() AS head10 \gset
SET LOCAL session_replication_role = replica;
INSERT INTO wallet.txn (id, idempotency_key, kind, request_hash) VALUES (:burned2, 'cb:forged-gap', 'transfer', '\x00');
SET LOCAL session_replication_role = origin;
SELECT is((SELECT bool_and(ok) FROM wallet.audit_verify(:'head10')), false, 'B10 control: the inserted record is found');
SELECT is((SELECT count(*) FROM wallet.audit_verify(:'head10') WHERE detail LIKE '%sealed in seal )%'), 0::bigint,
          'B10: its detail has no empty "(sealed in seal )"');

-- ---------------------------------------------------------------------------
-- B11 (no assertion here: it needs a preloaded server with several
--     databases) "Housekeeping ... runs by itself when the library is
--     preloaded": with max_worker_processes = 8 (the default; the wallet
--     launcher and the logical replication launcher take 2 slots) and 7
--     databases with the extension, the one last in pg_database order never
--     gets a housekeeping pass: its holds never expire, hot credits are never
--     folded, nothing is sealed.  Cause: src/worker.c wallet_launcher_main()
--     scans pg_database in the same order every round and sets
--     dbs[i].last_start even when RegisterDynamicBackgroundWorker() found no
--     free slot, so the starved database is not due again before the
--     earlier ones are.  Repro (as postgres, cluster preloaded with wallet):
--       for d in w1 w2 w3 w4 w5 w6 w7; do createdb $d; psql -d $d -c 'CREATE EXTENSION wallet'; done
--       psql -d w7 -c "SELECT wallet.open_account('x', 'USD')"; sleep 5
--       psql -d w7 -c "SELECT count(*) FROM wallet.audit_seal"   -- 0, forever
--     (a database whose pass always fails, e.g. after B5, takes a slot
--     every second too).  Fix: set last_start only when the worker was
--     registered, serve databases round-robin from where the last round
--     stopped (or oldest pass first), and cap concurrent housekeepers so
--     they do not use up max_worker_processes (parallel query needs them).

SELECT * FROM finish();
ROLLBACK;
