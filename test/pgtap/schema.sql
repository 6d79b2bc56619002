-- Schema: every object of contract v1 (SPEC.md) exists with its argument
-- types and result; the money type's physical contract; the extension's
-- tables and sequences are configuration (pg_dump keeps their rows).
-- "Adding is free": a function may take extra trailing arguments if they
-- have defaults, a view may have extra columns.
BEGIN;
SELECT plan(81);

-- wallet.<name>(<args>) exists, can be called with the contract's leading
-- argument types (any further argument has a default), needs at most
-- `required` arguments, and returns `result` (a type, or the text of
-- pg_get_function_result for TABLE results)
CREATE FUNCTION pg_temp.contract(name text, args regtype[], required int, result text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    label text := format('wallet.%s(%s)', name, array_to_string(args::text[], ', '));
    p record;
BEGIN
    FOR p IN SELECT * FROM pg_proc
              WHERE pronamespace = 'wallet'::regnamespace AND proname = name
                AND pronargs >= cardinality(args)
                AND (proargtypes::oid[])[0:cardinality(args) - 1] = args::oid[]
                AND pronargs - pronargdefaults <= required LOOP
        IF result IS NULL OR format_type(p.prorettype, NULL) = result
           OR pg_get_function_result(p.oid) = result THEN
            RETURN ok(true, label);
        END IF;
        RETURN ok(false, label) || E'\n' || diag(format('returns %s, the contract says %s',
                                                        pg_get_function_result(p.oid), result));
    END LOOP;
    RETURN ok(false, label) || E'\n' || diag('no such function; have: ' || coalesce((SELECT string_agg(oid::regprocedure::text, '; ')
                                  FROM pg_proc WHERE pronamespace = 'wallet'::regnamespace AND proname = name), 'none'));
END
$$;

-- ---- schema and the money type ----
SELECT has_schema('wallet');
SELECT has_type('wallet', 'amount', 'type wallet.amount');
SELECT ok((SELECT typlen BETWEEN 1 AND 16 FROM pg_type WHERE oid = 'wallet.amount'::regtype), 'wallet.amount is fixed length, at most 16 bytes');
SELECT ok((SELECT typsend <> 0 AND typreceive <> 0 FROM pg_type WHERE oid = 'wallet.amount'::regtype), 'wallet.amount has binary send/receive');
SELECT ok(EXISTS (SELECT 1 FROM pg_opclass c JOIN pg_am m ON m.oid = c.opcmethod
                   WHERE c.opcintype = 'wallet.amount'::regtype AND c.opcdefault AND m.amname = 'btree'), 'default btree operator class');
SELECT ok(EXISTS (SELECT 1 FROM pg_opclass c JOIN pg_am m ON m.oid = c.opcmethod
                   WHERE c.opcintype = 'wallet.amount'::regtype AND c.opcdefault AND m.amname = 'hash'), 'default hash operator class');
SELECT is((SELECT array_agg(o.op ORDER BY o.op) FROM unnest(ARRAY['+', '-', '=', '<>', '<', '<=', '>', '>=']) AS o(op)
            WHERE NOT EXISTS (SELECT 1 FROM pg_operator WHERE oprname = o.op
                               AND oprleft = 'wallet.amount'::regtype AND oprright = 'wallet.amount'::regtype)),
          NULL, 'binary operators + - = <> < <= > >= on two amounts');
SELECT ok(EXISTS (SELECT 1 FROM pg_operator WHERE oprname = '-' AND oprleft = 0 AND oprright = 'wallet.amount'::regtype), 'unary -');
SELECT ok(EXISTS (SELECT 1 FROM pg_operator WHERE oprname = '*' AND oprleft = 'wallet.amount'::regtype AND oprright = 'bigint'::regtype), 'amount * bigint');
SELECT ok(EXISTS (SELECT 1 FROM pg_operator WHERE oprname = '*' AND oprleft = 'bigint'::regtype AND oprright = 'wallet.amount'::regtype), 'bigint * amount');
SELECT ok(EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = 'wallet'::regnamespace AND proname = a.n AND prokind = 'a'
                   AND pronargs = 1 AND proargtypes[0] = 'wallet.amount'::regtype), format('aggregate wallet.%s(wallet.amount)', a.n))
  FROM unnest(ARRAY['max', 'min', 'sum']) AS a(n);
SELECT pg_temp.contract('amount', '{bigint,text}', 2, 'wallet.amount');
SELECT pg_temp.contract('amount', '{numeric,text}', 2, 'wallet.amount');
SELECT pg_temp.contract('units', '{wallet.amount}', 1, 'bigint');
SELECT pg_temp.contract('currency', '{wallet.amount}', 1, 'text');
SELECT pg_temp.contract('to_numeric', '{wallet.amount}', 1, 'numeric');
SELECT pg_temp.contract('abs', '{wallet.amount}', 1, 'wallet.amount');
SELECT pg_temp.contract('sign', '{wallet.amount}', 1, NULL);
SELECT pg_temp.contract('add_currency', '{text,integer,text}', 3, NULL);
SELECT has_relation('wallet', 'currencies', 'wallet.currencies');
SELECT pg_temp.contract('allocate', '{wallet.amount,integer[]}', 2, 'wallet.amount[]');
SELECT pg_temp.contract('split', '{wallet.amount,integer}', 2, 'wallet.amount[]');
SELECT pg_temp.contract('mul', '{wallet.amount,numeric,text}', 2, 'wallet.amount');
SELECT pg_temp.contract('convert', '{wallet.amount,numeric,text,text}', 3, 'wallet.amount');

-- ---- accounts ----
SELECT pg_temp.contract('open_account', '{text,text,text,boolean,jsonb}', 2, 'bigint');
SELECT pg_temp.contract('freeze_account', '{bigint}', 1, NULL);
SELECT pg_temp.contract('unfreeze_account', '{bigint}', 1, NULL);
SELECT pg_temp.contract('close_account', '{bigint}', 1, NULL);
SELECT pg_temp.contract('set_hot', '{bigint,boolean}', 1, NULL);
SELECT has_relation('wallet', 'accounts', 'wallet.accounts');
SELECT col_type_is('wallet', 'accounts', 'id', 'bigint', 'wallet.accounts.id');
SELECT col_type_is('wallet', 'accounts', 'balance', 'wallet', 'amount', 'wallet.accounts.balance (posted)');
SELECT col_type_is('wallet', 'accounts', 'available', 'wallet', 'amount', 'wallet.accounts.available');

-- ---- posting ----
SELECT pg_temp.contract('transfer', '{bigint,bigint,wallet.amount,text,text,jsonb}', 4, 'bigint');
SELECT has_type('wallet', 'leg', 'type wallet.leg');
SELECT col_type_is('wallet', 'leg', 'account', 'bigint', 'wallet.leg.account');
SELECT col_type_is('wallet', 'leg', 'amount', 'wallet', 'amount', 'wallet.leg.amount');
SELECT pg_temp.contract('post', '{text,wallet.leg[],text,jsonb}', 2, 'bigint');
SELECT pg_temp.contract('transfer_batch', '{bigint[],bigint[],wallet.amount[],text[]}', 4,
                        'TABLE(idx integer, tx_id bigint, status text)');
SELECT pg_temp.contract('reverse', '{bigint,text,text,boolean}', 2, 'bigint');

-- ---- holds ----
SELECT pg_temp.contract('hold', '{bigint,bigint,wallet.amount,text,timestamptz,text,jsonb}', 4, 'bigint');
SELECT pg_temp.contract('capture', '{bigint,wallet.amount}', 1, 'bigint');
SELECT pg_temp.contract('void', '{bigint}', 1, NULL);
SELECT pg_temp.contract('expire_holds', '{}', 0, 'integer');

-- ---- reading ----
SELECT pg_temp.contract('balance', '{bigint}', 1, 'wallet.amount');
SELECT pg_temp.contract('available', '{bigint}', 1, 'wallet.amount');
SELECT pg_temp.contract('balance_at', '{bigint,timestamptz}', 2, 'wallet.amount');
SELECT pg_temp.contract('statement', '{bigint,timestamptz,timestamptz}', 3, NULL);
SELECT ok((SELECT pg_get_function_result('wallet.statement(bigint,timestamptz,timestamptz)'::regprocedure)
             ~ '^TABLE\(.*\mamount wallet\.amount, balance wallet\.amount\M.*metadata jsonb'),
          'wallet.statement rows carry the signed amount, the running balance and metadata');
SELECT pg_temp.contract('verify', '{}', 0, 'TABLE(check_name text, ok boolean, detail text)');

-- ---- audit ----
SELECT pg_temp.contract('audit', '{}', 0, 'trigger');
SELECT pg_temp.contract('audit_table', '{regclass}', 1, NULL);
SELECT has_relation('wallet', 'audit_log', 'wallet.audit_log');
SELECT is((SELECT array_agg(c.col ORDER BY c.col) FROM unnest(ARRAY['relation', 'operation', 'old_row', 'new_row', 'changed_columns',
                    'txid', 'at', 'db_user', 'application_name', 'client_addr', 'actor']) AS c(col)
            WHERE NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('wallet.audit_log')
                               AND attname = c.col AND NOT attisdropped)),
          NULL, 'wallet.audit_log has every column of the contract');
SELECT col_type_is('wallet', 'audit_log', 'old_row', 'jsonb', 'audit_log.old_row is jsonb');
SELECT col_type_is('wallet', 'audit_log', 'new_row', 'jsonb', 'audit_log.new_row is jsonb');
SELECT pg_temp.contract('digest', '{}', 0, NULL);
SELECT pg_temp.contract('audit_verify', '{}', 0, 'TABLE(check_name text, ok boolean, detail text)');

-- ---- live-streaming flows ----
SELECT pg_temp.contract('live_setup', '{text,text,numeric}', 0, NULL);
SELECT pg_temp.contract('recharge', '{bigint,wallet.amount,wallet.amount,text,text}', 5, NULL);
SELECT pg_temp.contract('gift', '{bigint,bigint,wallet.amount,text,jsonb}', 4, NULL);
SELECT pg_temp.contract('request_withdrawal', '{bigint,wallet.amount,text}', 3, 'bigint');
SELECT pg_temp.contract('complete_withdrawal', '{bigint}', 1, 'bigint');
SELECT pg_temp.contract('cancel_withdrawal', '{bigint}', 1, NULL);
SELECT pg_temp.contract('refund_recharge', '{bigint,text}', 2, NULL);

-- ---- security ----
SELECT ok(EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = 'wallet'::regnamespace AND proname = f.n AND pronargs >= 1
                   AND pronargs - pronargdefaults <= 1), format('wallet.%s(role)', f.n))
  FROM unnest(ARRAY['grant_app', 'grant_reader']) AS f(n);
SELECT is((SELECT array_agg(oid::regprocedure::text ORDER BY oid::regprocedure::text) FROM pg_proc
            WHERE pronamespace = 'wallet'::regnamespace AND prosecdef
              AND NOT EXISTS (SELECT 1 FROM unnest(proconfig) c WHERE c LIKE 'search_path=%')),
          NULL, 'every SECURITY DEFINER function pins search_path');

-- ---- extension configuration: pg_dump keeps the rows ----
SELECT ok(to_regclass('wallet.' || r.n) = ANY ((SELECT extconfig FROM pg_extension WHERE extname = 'wallet')::regclass[]),
          format('wallet.%s is extension configuration', r.n))
  FROM unnest(ARRAY['account', 'txn', 'entry', 'hot_pending', 'hold', 'custom_currencies', 'audit_log',
                    'account_id_seq', 'txn_id_seq', 'hold_id_seq']) WITH ORDINALITY AS r(n, i)
 ORDER BY r.i;
SELECT is((SELECT array_agg(c.oid::regclass::text ORDER BY c.oid::regclass::text)
             FROM pg_class c JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
            WHERE c.relnamespace = 'wallet'::regnamespace AND c.relkind IN ('r', 'p', 'S')
              AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'wallet')
              AND NOT c.oid = ANY ((SELECT extconfig FROM pg_extension WHERE extname = 'wallet')::oid[])),
          NULL, 'every table and sequence of the extension is configuration');

SELECT * FROM finish();
ROLLBACK;
