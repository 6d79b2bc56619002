-- wallet 1.5.0 -> 1.6.0
--
-- Idempotency keys compare byte for byte: wallet.txn.idempotency_key and
-- wallet.hold.idempotency_key take COLLATE "C" whatever the database's
-- collation.  Under a linguistic collation (en_US.UTF-8) every posting's
-- key check and key insert called strcoll: 10 % of the CPU samples of a
-- transfer_batch run.  Measured in one sitting, three 8 s pgbench runs
-- each (4 clients, 1,000 transfers a call, test/bench/batch.pgbench):
-- 74-88 calls/s on 1.5.0 in an en_US.UTF-8 database, 98-119 on 1.6.0 in
-- the same, 94-116 in a database with collation C.  Which keys are equal
-- does not change.
--
-- wallet.set_hot() refuses a debt account (22023): whether its user may
-- spend is read from its stored balance on every debit, which a hot
-- account's pending credits are not in; debt accounts made hot before go
-- back to normal.  wallet.close_account() refuses a user with an
-- outstanding debt (WL012): a closed account takes no recharge to repay it.
--
-- The 1.6.0 library also changes, for every version: transfer_batch draws
-- its transaction ids in batch order (the order it applies the rows in),
-- and wallet.reverse() of a refund gives the refund's coins back as a
-- recharge would (the debt owed at that moment first, the rest to the
-- user's account); any other reversal crediting a debt account credits it
-- at most the debt owed, the rest to its user.
--
-- Written by hand (tools/upgrade_diff.py --script ext/wallet--1.5.0.sql
-- wallet--1.6.0.sql names only the two tables), after the schema check of
-- ext/install/00_schema.sql; test/harness/upgrade.sh proves it (same
-- catalog as a fresh install, the rights of roles kept and not recorded
-- as initial privileges).
\echo Use "ALTER EXTENSION wallet UPDATE TO '1.6.0'" to load this file. \quit

-- ============================================================================
-- Schema wallet
-- The control file names it; CREATE EXTENSION creates it, owned by the
-- installing superuser, unless it already exists.  Its owner can rename it
-- and create another schema wallet in its place, and the extension's
-- SECURITY DEFINER functions and its background worker call wallet.* by
-- name with superuser rights: a schema owned by any other role would hand
-- that role those rights.  So it must belong to a superuser (1.4.0).
-- ============================================================================
DO $$
DECLARE
    owner_name text;
    owner_super boolean;
BEGIN
    SELECT r.rolname, r.rolsuper INTO owner_name, owner_super
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
     WHERE n.nspname = 'wallet';
    IF NOT owner_super THEN
        RAISE EXCEPTION 'schema wallet is owned by role %, which is not a superuser', owner_name
            USING ERRCODE = '42501',
                  DETAIL = 'Its owner could put its own objects where the extension''s SECURITY DEFINER functions and background worker, which run with superuser rights, look for wallet.*.',
                  HINT = 'ALTER SCHEMA wallet OWNER TO a superuser, or drop the schema, then retry.';
    END IF;
END
$$;

-- ============================================================================
-- Idempotency keys compare byte for byte
-- wallet.txn.idempotency_key and wallet.hold.idempotency_key take COLLATE
-- "C".  Equality is unchanged (PostgreSQL's deterministic collations treat
-- two strings as equal only when their bytes are), so every key stays
-- unique; only the order of the keys' unique indexes changes, and both are
-- rebuilt by the ALTER (the tables are not rewritten).  The views showing
-- the keys depend on the columns and are created again, with their owner
-- and every right on them or on their columns as it was, each given again
-- by the role that had given it (so its REVOKE still works); the
-- extension's initial privileges on them stay those of a fresh install
-- (none), so pg_dump still dumps those grants.  Any object of your own that
-- depends on wallet.transactions or wallet.holds (a view, a function
-- returning their row type, a column of that type) makes this update fail
-- (DROP VIEW without CASCADE): drop it first and create it again after.
-- ============================================================================
SELECT pg_catalog.set_config('wallet_upgrade.views', (
    SELECT pg_catalog.jsonb_object_agg(c.oid::regclass::text, pg_catalog.jsonb_build_object(
               'owner', c.relowner::regrole::text,
               'rights', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                             'col', x.col, 'grantor', x.grantor::regrole::text,
                                             'grantee', CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END,
                                             'priv', x.privilege_type, 'grantable', x.is_grantable))
                                     FROM (SELECT NULL::name AS col, a.* FROM pg_catalog.aclexplode(c.relacl) a
                                           UNION ALL
                                           SELECT t.attname, a.* FROM pg_catalog.pg_attribute t,
                                                  pg_catalog.aclexplode(t.attacl) a
                                            WHERE t.attrelid = c.oid AND t.attnum > 0 AND t.attacl IS NOT NULL) x
                                    WHERE x.grantee <> c.relowner), '[]')))
      FROM pg_catalog.pg_class c
     WHERE c.oid IN ('wallet.transactions'::regclass, 'wallet.holds'::regclass))::text, true);

DROP VIEW wallet.transactions;
DROP VIEW wallet.holds;

ALTER TABLE wallet.txn ALTER COLUMN idempotency_key TYPE text COLLATE "C";
ALTER TABLE wallet.hold ALTER COLUMN idempotency_key TYPE text COLLATE "C";

CREATE VIEW wallet.transactions AS
SELECT t.id, t.idempotency_key, t.kind, t.metadata, t.reverses, t.forced, t.created_at
  FROM wallet.txn t;

CREATE VIEW wallet.holds AS
SELECT h.id, h.idempotency_key, h.from_account, h.to_account,
       wallet.amount(h.amount, h.currency) AS amount, h.kind, h.metadata, h.status,
       h.expires_at, h.created_at, h.ended_at,
       CASE WHEN h.captured IS NOT NULL THEN wallet.amount(h.captured, h.currency) END AS captured,
       h.capture_txn
  FROM wallet.hold h;

-- The owners and rights of the two views as they were before the update.
-- A right is given again by its grantor; one given by a role that had it
-- with grant option waits until that role has it back (a few passes).  A
-- right its grantor can no longer give (it lost the grant option or the
-- schema's USAGE) is given by the owner, with a WARNING.
DO $$
DECLARE
    saved jsonb := pg_catalog.current_setting('wallet_upgrade.views')::jsonb;
    v text;
    todo jsonb;
    left_over jsonb;
    g jsonb;
    stmt text;
    progress boolean;
BEGIN
    FOR v IN SELECT pg_catalog.jsonb_object_keys(saved) LOOP
        EXECUTE format('ALTER VIEW %s OWNER TO %s', v, saved -> v ->> 'owner');
        todo := saved -> v -> 'rights';
        LOOP
            progress := false;
            left_over := '[]';
            FOR g IN SELECT * FROM pg_catalog.jsonb_array_elements(todo) LOOP
                stmt := format('GRANT %s%s ON %s TO %s%s', g ->> 'priv',
                               CASE WHEN g ->> 'col' IS NOT NULL THEN format(' (%I)', g ->> 'col') ELSE '' END,
                               v, g ->> 'grantee',
                               CASE WHEN (g ->> 'grantable')::boolean THEN ' WITH GRANT OPTION' ELSE '' END);
                BEGIN
                    EXECUTE format('SET LOCAL ROLE %s', g ->> 'grantor');
                    EXECUTE stmt;
                    RESET ROLE;
                    progress := true;
                EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
                    left_over := left_over || pg_catalog.jsonb_build_array(g);
                END;
            END LOOP;
            todo := left_over;
            EXIT WHEN pg_catalog.jsonb_array_length(todo) = 0 OR NOT progress;
        END LOOP;
        FOR g IN SELECT * FROM pg_catalog.jsonb_array_elements(todo) LOOP
            stmt := format('GRANT %s%s ON %s TO %s%s', g ->> 'priv',
                           CASE WHEN g ->> 'col' IS NOT NULL THEN format(' (%I)', g ->> 'col') ELSE '' END,
                           v, g ->> 'grantee',
                           CASE WHEN (g ->> 'grantable')::boolean THEN ' WITH GRANT OPTION' ELSE '' END);
            RAISE WARNING 'wallet 1.6.0: % could not give this right again; the owner of % gives it: %',
                          g ->> 'grantor', v, stmt;
            EXECUTE format('SET LOCAL ROLE %s', saved -> v ->> 'owner');
            EXECUTE stmt;
            RESET ROLE;
        END LOOP;
        -- GRANT in an extension script records an initial privilege; a
        -- fresh install has none on these views.
        DELETE FROM pg_catalog.pg_init_privs i
         WHERE i.classoid = 'pg_catalog.pg_class'::regclass AND i.objoid = v::regclass;
    END LOOP;
END
$$;

-- ============================================================================
-- Initial privileges name no role of the installation
-- pg_dump leaves out the privileges an extension's objects had when its
-- scripts ran (pg_init_privs).  The 1.0.0 -> 1.1.0 update gave the roles of
-- wallet.grant_app / grant_reader their rights on the objects it added
-- (wallet.account_entries, history_merged_through(), index_history()) from
-- the script, which recorded those grants as initial privileges: a dump of
-- a database updated that way left them out, and its restore lost them.
-- A fresh install's initial privileges name only superusers (the roles
-- that ran its scripts and own its objects), PUBLIC and PostgreSQL's
-- built-in roles, so every other role is taken out of the extension's
-- initial privileges; the rights themselves stay.
-- ============================================================================
UPDATE pg_catalog.pg_init_privs i
   SET initprivs = ARRAY(SELECT item FROM pg_catalog.unnest(i.initprivs) AS item
                          WHERE NOT EXISTS (
                                SELECT FROM pg_catalog.aclexplode(ARRAY[item]) e
                                  JOIN pg_catalog.pg_roles r ON r.oid = e.grantee
                                 WHERE e.grantee >= 16384 AND NOT r.rolsuper))
 WHERE i.privtype = 'e'
   AND EXISTS (SELECT FROM pg_catalog.pg_depend d
                WHERE d.classid = i.classoid AND d.objid = i.objoid AND d.deptype = 'e'
                  AND d.refclassid = 'pg_catalog.pg_extension'::regclass
                  AND d.refobjid = (SELECT x.oid FROM pg_catalog.pg_extension x WHERE x.extname = 'wallet'))
   AND EXISTS (SELECT FROM pg_catalog.unnest(i.initprivs) AS item, pg_catalog.aclexplode(ARRAY[item]) e
                 JOIN pg_catalog.pg_roles r ON r.oid = e.grantee
                WHERE e.grantee >= 16384 AND NOT r.rolsuper);

-- ============================================================================
-- Functions changed in 1.6.0 (tools/upgrade_diff.py --script): set_hot()
-- refuses a debt account (22023), close_account() a user with an
-- outstanding debt (WL012).  A debt account made hot before goes back to
-- normal, its pending credits folded.
-- ============================================================================
-- Marks an account hot (credits bypass its row lock) or back to normal.
-- Going back to normal takes the row lock and the hot-posting lock
-- exclusively (as freeze and close do), so it waits for every credit in
-- flight that skipped the row lock, then folds all pending credits: none
-- is left pending on a normal account.  A debt account (kind 'debt') is
-- never hot (22023, 1.6.0): whether its user may spend is read from its
-- stored balance on every debit, which pending credits would not be in.
CREATE OR REPLACE FUNCTION wallet.set_hot(id bigint, hot boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF id IS NULL OR hot IS NULL THEN
        RAISE EXCEPTION 'wallet.set_hot: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = format('Account %s, hot %s.', coalesce(id::text, 'NULL'), coalesce(hot::text, 'NULL'));
    END IF;
    IF set_hot.hot THEN
        IF (wallet.account_row(id)).kind = 'debt' THEN
            RAISE EXCEPTION 'account % is a debt account', id USING ERRCODE = '22023',
                DETAIL = 'Whether its user may spend is read from its balance on every debit; a debt account is never hot.';
        END IF;
    ELSE
        -- the live flows lock a user's row before the platform's accounts,
        -- which is deadlock-free only while those take credits unlocked
        IF EXISTS (SELECT 1 FROM wallet.live_config lc
                    WHERE set_hot.id IN (lc.coin_issuance, lc.coin_revenue, lc.diamond_issuance)
                       OR EXISTS (SELECT 1 FROM jsonb_each(lc.cash_accounts) e
                                   WHERE set_hot.id IN ((e.value ->> 'cash')::bigint, (e.value ->> 'sales')::bigint))) THEN
            RAISE EXCEPTION 'account % is a hot system account of the live flows', id USING ERRCODE = '22023',
                DETAIL = 'wallet.live_setup() made it hot; the live flows rely on it staying hot.';
        END IF;
        PERFORM wallet.lock_account_for_status(id);
    END IF;
    UPDATE wallet.account a SET hot = set_hot.hot, version = a.version + 1
     WHERE a.id = set_hot.id AND a.hot IS DISTINCT FROM set_hot.hot;
    IF NOT set_hot.hot THEN
        PERFORM wallet.fold_hot(set_hot.id);
    END IF;
END
$$;

-- Closes an account for good: only at zero posted balance with nothing
-- held, no pending hold towards it and no outstanding debt (WL012
-- otherwise).  Closing a closed
-- account is a no-op.  The live flows' accounts (wallet.live_system_role)
-- never close (22023): a closed payout_clearing would refuse every
-- withdrawal for good, a closed debt account every later chargeback.
CREATE OR REPLACE FUNCTION wallet.close_account(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.lock_account_for_status(id);
    bal bigint;
    role text;
BEGIN
    IF r.status = 'closed' THEN
        RETURN;
    END IF;
    role := wallet.live_system_role(id);
    IF role IS NOT NULL THEN
        RAISE EXCEPTION 'account % is the platform''s % account and cannot be closed', id, role
            USING ERRCODE = '22023',
                  DETAIL = format('Account %s is the %s account of the live flows; they post to it.', id, role),
                  HINT = 'Freeze it to pause the flows that use it; unfreeze it to resume them.';
    END IF;
    bal := r.balance + wallet.pending_credits(id);
    IF bal <> 0 THEN
        RAISE EXCEPTION 'account % cannot be closed: balance is %', id, wallet.amount(bal, r.currency)
            USING ERRCODE = 'WL012',
                  DETAIL = format('Account %s holds %s; only an account at zero can close.', id, wallet.amount(bal, r.currency)),
                  HINT = 'Transfer the balance out first.';
    END IF;
    -- a closed account takes no recharge, so its debt could never be repaid (1.6.0)
    IF r.debt_account IS NOT NULL AND wallet.units(wallet.balance(r.debt_account)) < 0 THEN
        RAISE EXCEPTION 'account % cannot be closed: it has an outstanding debt of %', id,
                        -wallet.balance(r.debt_account)
            USING ERRCODE = 'WL012',
                  DETAIL = format('Debt account %s is at %s; a closed account takes no recharge to repay it.',
                                  r.debt_account, wallet.balance(r.debt_account)),
                  HINT = 'Let the next recharge repay the debt first, or settle it with a posting to the debt account.';
    END IF;
    IF r.held <> 0 OR EXISTS (SELECT 1 FROM wallet.hold h
                               WHERE h.status = 'pending'
                                 AND (h.from_account = close_account.id OR h.to_account = close_account.id)) THEN
        RAISE EXCEPTION 'account % cannot be closed: it has pending holds', id
            USING ERRCODE = 'WL012',
                  DETAIL = format('Held %s; %s pending holds from or to it.', wallet.amount(r.held, r.currency),
                                  (SELECT count(*) FROM wallet.hold h WHERE h.status = 'pending'
                                      AND (h.from_account = close_account.id OR h.to_account = close_account.id))),
                  HINT = 'Capture or void the holds first.';
    END IF;
    UPDATE wallet.account a SET status = 'closed', version = a.version + 1
     WHERE a.id = close_account.id;
END
$$;

SELECT wallet.set_hot(a.id, false) FROM wallet.account a WHERE a.kind = 'debt' AND a.hot ORDER BY a.id;
