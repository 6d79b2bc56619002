-- wallet.transfer_batch: every per-row outcome, the call-level errors, and
-- the ledger afterwards.  Ids are captured with \gset and never printed.
SELECT wallet.open_account('bt-bank', 'USD', 'system', true) AS bank \gset
SELECT wallet.open_account('bt-a', 'USD') AS a \gset
SELECT wallet.open_account('bt-b', 'USD') AS b \gset
SELECT wallet.open_account('bt-eur', 'EUR') AS eur \gset
SELECT wallet.open_account('bt-frozen', 'USD') AS frozen \gset
SELECT wallet.open_account('bt-closed', 'USD') AS closed \gset
SELECT wallet.open_account('bt-star', 'USD') AS star \gset
SELECT wallet.set_hot(:star);
SELECT wallet.freeze_account(:frozen);
SELECT wallet.close_account(:closed);
SELECT wallet.transfer(:bank, :a, '100 USD', 'bt-fund-a') IS NOT NULL AS funded;
SELECT wallet.transfer(:a, :b, '1 USD', 'bt-single') AS single \gset

-- one call, one row per transfer, in array order
SELECT r.idx, r.status, r.tx_id IS NOT NULL AS has_tx
  FROM wallet.transfer_batch(
         ARRAY[:a, :a, :a, :a, :a, :eur, :a, :frozen, :a, :a, :a, :a, :a, :a, NULL, :a, :a, :a]::bigint[],
         ARRAY[:b, :b, :star, :b, -1, :b, :closed, :b, :b, :a, :b, :b, :b, :b, :b, :b, :b, :b]::bigint[],
         ARRAY['10 USD', '1 USD', '5 USD', '1000 USD', '1 USD', '1 EUR', '1 USD', '1 USD', '0 USD',
               '1 USD', '1 USD', '1 USD', '1 USD', '1 EUR', '1 USD', '10 USD', '11 USD', '1 USD']::wallet.amount[],
         ARRAY['bt-1', 'bt-single', 'bt-2', 'bt-3', 'bt-4', 'bt-5', 'bt-6', 'bt-7', 'bt-8',
               'bt-9', '', repeat('k', 201), 'wallet:bt', 'bt-10', 'bt-11', 'bt-1', 'bt-1', 'bt-12']) r
 ORDER BY r.idx;

-- the repeated key of a batch row and of a single transfer give the same id
SELECT (SELECT tx_id FROM wallet.transfer_batch(ARRAY[:a]::bigint[], ARRAY[:b]::bigint[],
                                                ARRAY['1 USD']::wallet.amount[], ARRAY['bt-single'])) = :single
       AS same_id_as_single;
-- and a batch row is the same request as wallet.transfer with that key
SELECT wallet.transfer(:a, :b, '10 USD', 'bt-1') = (SELECT id FROM wallet.transactions WHERE idempotency_key = 'bt-1')
       AS transfer_replays_batch_row;

-- balances: a paid 10 + 1 (single) + 5 (hot) + 1 (bt-12) and received nothing
SELECT wallet.balance(:a) AS a, wallet.balance(:b) AS b, wallet.balance(:star) AS star;
SELECT count(*) AS pending_rows FROM wallet.hot_pending WHERE account_id = :star;
SELECT wallet.fold_hot(:star) > 0 AS folded, wallet.balance(:star) AS star_after_fold;

-- repeats of a key in one batch.  Rows repeating the first row's request
-- (a merged retry) are replayed each in its own place, as if posted one by
-- one: the first that can post does, earlier ones keep their own failure,
-- later ones are exists.  A row giving the key another request is
-- idempotency_conflict, or exists when its request is the journal's.
SELECT wallet.open_account('bt-empty', 'USD') AS empty \gset
SELECT wallet.open_account('bt-empty2', 'USD') AS empty2 \gset
SELECT r.idx, r.status, r.tx_id IS NOT NULL AS has_tx
  FROM wallet.transfer_batch(
         ARRAY[:empty, :a, :empty2, :a, :empty2, :a, :a, :a, :a, :a, :empty, :empty, :empty, :empty]::bigint[],
         ARRAY[:b, :b, :b, :empty2, :b, :b, :b, :b, :b, :b, :b, :b, :b, :b]::bigint[],
         ARRAY['5 USD', '5 USD', '5 USD', '5 USD', '5 USD', '2 USD', '1 USD',
               '1 USD', '1 USD', '2 USD', '50 USD', '60 USD', '50 USD', '50 USD']::wallet.amount[],
         ARRAY['bt-dupQ', 'bt-dupQ', 'bt-dupK', 'bt-dupL', 'bt-dupK', 'bt-single', 'bt-single',
               'bt-dupR', 'bt-dupR', 'bt-dupR', 'bt-dupS', 'bt-dupS', 'bt-dupS', 'bt-dupS']) r
 ORDER BY r.idx;
-- bt-dupK (rows 3 and 5, one request) posted once, in row 5, from what
-- row 4 had just paid in; the second bt-single row is the journal's
-- transfer, the first another request
SELECT count(*) AS dupk_posted FROM wallet.transactions WHERE idempotency_key = 'bt-dupK';
SELECT (SELECT tx_id FROM wallet.transfer_batch(ARRAY[:a]::bigint[], ARRAY[:b]::bigint[],
                                                ARRAY['1 USD']::wallet.amount[], ARRAY['bt-single'])) = :single
       AS still_the_single;
SELECT count(*) AS unused_keys_posted FROM wallet.transactions WHERE idempotency_key IN ('bt-dupQ', 'bt-dupS');
SELECT wallet.balance(:empty) AS empty, wallet.balance(:empty2) AS empty2;
-- many rows repeating one request that cannot post: one round decides them
SELECT r.status, count(*)
  FROM wallet.transfer_batch(array_fill(:empty::bigint, ARRAY[3000]), array_fill(:b::bigint, ARRAY[3000]),
                             array_fill('1 USD'::wallet.amount, ARRAY[3000]), array_fill('bt-many'::text, ARRAY[3000])) r
 GROUP BY r.status;

-- near the int64 limit: each account's net change decides, not the order
-- of the rows (summed in 128 bits since 1.3.0; a running int64 total
-- passed its limit at row 2 here)
SELECT wallet.open_account('bt-ox', 'JPY', 'system', true) AS ox \gset
SELECT wallet.open_account('bt-oy', 'JPY', 'system', true) AS oy \gset
SELECT r.idx, r.status
  FROM wallet.transfer_batch(ARRAY[:ox, :ox, :oy]::bigint[], ARRAY[:oy, :oy, :ox]::bigint[],
                             ARRAY[wallet.amount(9223372036854775807, 'JPY'), wallet.amount(1, 'JPY'),
                                   wallet.amount(1, 'JPY')],
                             ARRAY['bt-big-1', 'bt-big-2', 'bt-big-3']) r ORDER BY r.idx;
SELECT wallet.balance(:ox) AS ox, wallet.balance(:oy) AS oy;
-- a net change that does not fit is still refused, for the whole call
SELECT split_part(public.sqlstate_of(format($$SELECT * FROM wallet.transfer_batch(ARRAY[%s, %s]::bigint[], ARRAY[%s, %s]::bigint[],
           ARRAY[wallet.amount(9223372036854775807, 'JPY'), wallet.amount(9223372036854775807, 'JPY')],
           ARRAY['bt-big-4', 'bt-big-5'])$$, :ox, :ox, :oy, :oy)), ':', 1) AS net_too_big;
SELECT r.status FROM wallet.transfer_batch(ARRAY[:oy]::bigint[], ARRAY[:ox]::bigint[],
                                          ARRAY[wallet.amount(9223372036854775807, 'JPY')], ARRAY['bt-big-back']) r;

-- call-level errors
SELECT public.sqlstate_of($$SELECT * FROM wallet.transfer_batch(ARRAY[1,2]::bigint[], ARRAY[3]::bigint[], ARRAY['1 USD']::wallet.amount[], ARRAY['x'])$$) AS lengths_differ;
SELECT public.sqlstate_of($$SELECT * FROM wallet.transfer_batch(NULL, ARRAY[3]::bigint[], ARRAY['1 USD']::wallet.amount[], ARRAY['x'])$$) AS null_array;
SELECT public.sqlstate_of($$SELECT * FROM wallet.transfer_batch(ARRAY[[1,2]]::bigint[], ARRAY[[3,4]]::bigint[], ARRAY[['1 USD','1 USD']]::wallet.amount[], ARRAY[['x','y']])$$) AS two_dimensional;
SELECT public.sqlstate_of($$SELECT * FROM wallet.transfer_batch((SELECT array_agg(1::bigint) FROM generate_series(1, 10001)), (SELECT array_agg(2::bigint) FROM generate_series(1, 10001)), (SELECT array_agg('1 USD'::wallet.amount) FROM generate_series(1, 10001)), (SELECT array_agg('k' || g) FROM generate_series(1, 10001) g))$$) AS too_many;
SELECT count(*) AS empty_batch_rows FROM wallet.transfer_batch('{}'::bigint[], '{}'::bigint[], '{}'::wallet.amount[], '{}'::text[]);

-- dense runs of ids with no account, at both ends of bigint (read with one
-- range scan of the primary key: rows.c, AccountFinder): unknown_account
SELECT r.status, count(*)
  FROM wallet.transfer_batch(ARRAY(SELECT 9223372036854775807 - g FROM generate_series(1, 20) g),
                             ARRAY(SELECT 9223372036854775807 - g + 1 FROM generate_series(1, 20) g),
                             array_fill('1 USD'::wallet.amount, ARRAY[20]),
                             ARRAY(SELECT 'bt-top-' || g FROM generate_series(1, 20) g)) r
 GROUP BY r.status;
SELECT r.status, count(*)
  FROM wallet.transfer_batch(ARRAY(SELECT -9223372036854775808 + g FROM generate_series(0, 19) g),
                             ARRAY(SELECT -9223372036854775808 + g + 1 FROM generate_series(0, 19) g),
                             array_fill('1 USD'::wallet.amount, ARRAY[20]),
                             ARRAY(SELECT 'bt-bottom-' || g FROM generate_series(0, 19) g)) r
 GROUP BY r.status;

SELECT check_name, ok FROM wallet.verify() ORDER BY check_name;
