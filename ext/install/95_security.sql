-- ============================================================================
-- Privileges.
--
-- Every table is written only through the API: SECURITY DEFINER functions
-- owned by the extension owner, each with a pinned search_path
-- (pg_catalog, pg_temp) and only schema-qualified references, so objects
-- a caller creates in public or pg_temp cannot hijack them.  Applications
-- get EXECUTE on the API and SELECT on the read views; readers (finance,
-- auditors) get the read functions and views.  Nobody but the owner has any
-- privilege on the tables, so no application role can UPDATE a balance,
-- DELETE an entry, TRUNCATE or disable a trigger.
--
-- The money type and its pure functions stay usable by every role.
-- ============================================================================

GRANT USAGE ON SCHEMA wallet TO PUBLIC;

-- The API an application calls.
CREATE FUNCTION wallet.app_functions() RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.oid::regprocedure
      FROM pg_proc p
     WHERE p.pronamespace = 'wallet'::regnamespace
       AND p.proname = ANY (ARRAY[
           'add_currency', 'open_account', 'freeze_account', 'unfreeze_account', 'close_account',
           'set_hot', 'fold_hot', 'transfer', 'post', 'transfer_batch', 'reverse',
           'hold', 'capture', 'void', 'expire_holds',
           'balance', 'available', 'balance_at', 'statement', 'verify', 'audit_verify',
           'seal', 'digest', 'housekeeping', 'index_history',
           'live_setup', 'recharge', 'gift', 'request_withdrawal', 'complete_withdrawal',
           'cancel_withdrawal', 'refund_recharge', 'live_report',
           -- called by the view wallet.account_entries as its reader
           'history_merged_through'])
$$;

-- What a reader (finance, auditor) calls.
CREATE FUNCTION wallet.reader_functions() RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.oid::regprocedure
      FROM pg_proc p
     WHERE p.pronamespace = 'wallet'::regnamespace
       AND p.proname = ANY (ARRAY['balance', 'available', 'balance_at', 'statement', 'verify',
                                  'audit_verify', 'live_report', 'history_merged_through'])
$$;

-- Read views.
CREATE FUNCTION wallet.read_views() RETURNS SETOF regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid::regclass FROM pg_class c
     WHERE c.relnamespace = 'wallet'::regnamespace AND c.relkind = 'v'
$$;

-- At install: the API and every internal function are not PUBLIC.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
         WHERE p.pronamespace = 'wallet'::regnamespace
           AND p.prokind = 'f'
           AND NOT (p.proname LIKE 'amount%'
                    OR p.proname = ANY (ARRAY['units', 'currency', 'minor_units', 'to_numeric', 'abs', 'sign',
                                              'allocate', 'split', 'mul', 'convert', 'normalize_currency',
                                              'is_iso_currency', 'iso_currencies', 'audit']))
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;

-- Grants USAGE on the schema, EXECUTE on `functions` and SELECT on the read
-- views to `role` (internal; behind grant_app and grant_reader).
CREATE FUNCTION wallet.grant_rights(role regrole, functions regprocedure[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f regprocedure;
    v regclass;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = '22004',
            DETAIL = 'Name the role to grant the rights to.';
    END IF;
    -- a regrole given as a number need not name a role (its text is then
    -- the number, or '-' for 0, and would not parse as a grantee)
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = role) THEN
        RAISE EXCEPTION 'role with OID % does not exist', role::oid USING ERRCODE = '42704',
            DETAIL = format('No role has OID %s.', role::oid),
            HINT = 'Pass the role by name, e.g. ''app_role''.';
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA wallet TO %s', role);
    FOREACH f IN ARRAY functions LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f, role);
    END LOOP;
    FOR v IN SELECT * FROM wallet.read_views() LOOP
        EXECUTE format('GRANT SELECT ON %s TO %s', v, role);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION wallet.grant_rights(regrole, regprocedure[]) FROM PUBLIC;

-- Gives `role` what an application needs: EXECUTE on the API, SELECT on the
-- read views.  Nothing on the tables.  Idempotent.
CREATE FUNCTION wallet.grant_app(role regrole) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT wallet.grant_rights(role, ARRAY(SELECT wallet.app_functions())) $$;

-- Gives `role` read access: the read functions and the read views.
CREATE FUNCTION wallet.grant_reader(role regrole) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT wallet.grant_rights(role, ARRAY(SELECT wallet.reader_functions())) $$;
REVOKE ALL ON FUNCTION wallet.grant_app(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION wallet.grant_reader(regrole) FROM PUBLIC;

-- The audit records a role may see: the wallet's own tables, and the
-- tables it may SELECT itself in full (wallet.audit_table() records whole
-- rows of any table; a reader of the ledger must not read another
-- schema's data through them).  A table under row-level security for the
-- caller shows none of its records (1.3.0): a policy cannot be applied to
-- past rows, and the trail showed rows the policy hides.  Records follow
-- the table's name: after a table is renamed or dropped, its records go
-- with the name, to whoever may read a table of that name.  Temporary
-- tables' records never do (1.6.0; found by a review): PostgreSQL hands a
-- temporary schema's name (pg_temp_N) to the next session in that slot by
-- itself, and a reader creating a table of the same name there read
-- another role's records; only the extension owner sees them.
-- security_barrier: a caller's own conditions run after this filter.  The
-- extension owner reads wallet.audit_log directly.
CREATE VIEW wallet.audit_trail WITH (security_barrier) AS
SELECT a.id, a.relation, a.operation, a.old_row, a.new_row, a.changed_columns, a.txid, a.at, a.db_user,
       a.application_name, a.client_addr, a.actor
  FROM wallet.audit_log a
 WHERE a.relation LIKE 'wallet.%'
    OR EXISTS (SELECT 1
                 FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid
                WHERE n.nspname = (pg_catalog.parse_ident(a.relation, false))[1]
                  AND c.relname = (pg_catalog.parse_ident(a.relation, false))[2]
                  AND n.nspname OPERATOR(pg_catalog.!~) '^pg_(toast_)?temp_[0-9]+$'
                  AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                  AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
                  AND NOT pg_catalog.row_security_active(c.oid));
COMMENT ON VIEW wallet.audit_trail IS 'Audit records of the wallet''s tables and of the tables the caller may read.';

-- Tell the background launcher (when preloaded) that this database now has
-- the extension, so housekeeping starts at once.
CREATE FUNCTION wallet.housekeeping_wake() RETURNS void
    AS 'MODULE_PATHNAME', 'wallet_housekeeping_wake' LANGUAGE C;
REVOKE ALL ON FUNCTION wallet.housekeeping_wake() FROM PUBLIC;
SELECT wallet.housekeeping_wake();
