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
-- wallet.recharge() and refund_recharge() lock the debt account's row
-- before they read the debt.
--
-- The 1.6.0 library also changes, for every version: transfer_batch draws
-- its transaction ids in batch order (the order it applies the rows in),
-- and wallet.reverse() of a refund gives the refund's coins back as a
-- recharge would (the debt owed at that moment first, the rest to the
-- user's account); any other reversal crediting a debt account credits it
-- at most the debt owed, the rest to its user (55000 when that leaves
-- nothing to post, or when it names the debt accounts of several users).
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
                                             'grantor', x.grantor::regrole::text,
                                             'stmt', format('GRANT %s%s ON %s TO %s%s', x.privilege_type,
                                                            CASE WHEN x.col IS NOT NULL THEN format(' (%I)', x.col) ELSE '' END,
                                                            c.oid::regclass,
                                                            CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END,
                                                            CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)))
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
    progress boolean;
BEGIN
    FOR v IN SELECT pg_catalog.jsonb_object_keys(saved) LOOP
        EXECUTE format('ALTER VIEW %s OWNER TO %s', v, saved -> v ->> 'owner');
        todo := saved -> v -> 'rights';
        LOOP
            progress := false;
            left_over := '[]';
            FOR g IN SELECT * FROM pg_catalog.jsonb_array_elements(todo) LOOP
                BEGIN
                    EXECUTE format('SET LOCAL ROLE %s', g ->> 'grantor');
                    EXECUTE g ->> 'stmt';
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
            RAISE WARNING 'wallet 1.6.0: % could not give this right again; the owner of % gives it: %',
                          g ->> 'grantor', v, g ->> 'stmt';
            EXECUTE format('SET LOCAL ROLE %s', saved -> v ->> 'owner');
            EXECUTE g ->> 'stmt';
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
-- The view wallet.account_entries had no initial privileges before those
-- grants (a fresh install records none): what is left, its owner's
-- default rights, goes too.
DELETE FROM pg_catalog.pg_init_privs i
 WHERE i.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
   AND i.objoid = 'wallet.account_entries'::pg_catalog.regclass
   AND i.objsubid = 0 AND i.privtype = 'e'
   AND i.initprivs OPERATOR(pg_catalog.=) pg_catalog.acldefault('r', (SELECT c.relowner FROM pg_catalog.pg_class c
                                                                 WHERE c.oid = 'wallet.account_entries'::pg_catalog.regclass));

-- ============================================================================
-- Functions changed in 1.6.0 (tools/upgrade_diff.py --script): balance()
-- and available() compute in numeric and give 22003 with the figure when
-- it is outside 64-bit minor units (they failed with bigint's bare error);
-- set_hot() refuses a debt account (22023), close_account() a user with an
-- outstanding debt (WL012), and recharge() and refund_recharge() lock the
-- user's debt account before they read the debt (a repayment posted to it
-- with the generic API takes that row only).  request_withdrawal() refuses
-- every account of the platform (a debt or cash account too) as the
-- creator with 22023, before the currency check.  live_report() adds its
-- totals in numeric (live_total_text/live_total_units, new): a sum of
-- balances past 64 bits no longer fails the whole report.  housekeeping()
-- does nothing while a restore loads the database (restore_in_progress,
-- new; the preloaded worker makes the same test).  A debt account made hot
-- before goes back to normal, its pending credits folded.  open_account()
-- refuses kind 'debt' (22023; refund_recharge() now opens its user's debt
-- account itself); balance_at() gives 22003 with the figure and statement()
-- a NULL running balance where a sum leaves 64 bits (bigint's bare error
-- before).  close_account() sums a hot account's pending rows in numeric
-- (WL012 with the figure past 64 bits), and wallet.pending_credits(), its
-- bigint helper, is dropped (below, by hand).  live_report() names the
-- platform's lines by wallet.live_config, not owner and kind, and shows
-- negative balances outside the flows on their own line.  housekeeping()
-- skips a ledger ahead of its sequences (ledger_settled, new: the worker's
-- test), refuses outside READ COMMITTED up front, and waits at most 2 s
-- for writers in sealing and in filing ("journal_busy"), so that a writer
-- sitting in its transaction no longer holds back expiry and folds.
-- add_currency() that lost a race to another session's with other minor
-- units is 22023, not false.  close_account() and set_hot(id, false) in
-- REPEATABLE READ or SERIALIZABLE give 40001 when a hot credit or a hold
-- of the account committed after the snapshot (check_account_current,
-- new).  gift() refuses the platform's cash and sales accounts and debt
-- accounts with 22023 (WL002 before).  digest() names itself in its 25000.
-- audit_hash() hashes a SQL_ASCII database's text as stored; audit_verify()
-- reports legs under a sealed id no transaction holds; audit_table() also
-- attaches the triggers to the partitions and inheritance children below.
-- live_system_accounts() (new) lists the live flows' own accounts once for
-- live_system_role(), live_report() and set_hot().
-- ============================================================================
-- Registers a virtual unit such as COIN or DIAMOND.  Guarantees: the code
-- is well formed and not an ISO code; re-adding the same code with the same
-- minor units is a no-op (returns false), with different minor units an
-- error (amounts already stored depend on them).  Returns true when added.
CREATE OR REPLACE FUNCTION wallet.add_currency(code text, minor_units int, name text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text := wallet.normalize_currency(code);
    existing int;
BEGIN
    IF code IS NULL OR minor_units IS NULL THEN
        RAISE EXCEPTION 'wallet.add_currency: code and minor_units must not be null'
            USING ERRCODE = '22004',
                  DETAIL = format('code %s, minor_units %s.', coalesce(quote_literal(code), 'NULL'),
                                  coalesce(minor_units::text, 'NULL'));
    END IF;
    IF minor_units < 0 OR minor_units > 18 THEN
        RAISE EXCEPTION 'minor_units must be between 0 and 18, got %', minor_units
            USING ERRCODE = '22023',
                  DETAIL = format('Currency %s was given %s minor units; a currency has 0 to 18.', c, minor_units);
    END IF;
    IF wallet.is_iso_currency(c) THEN
        IF (SELECT i.minor_units FROM wallet.iso_currencies() i WHERE i.code = c) = add_currency.minor_units THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION '% is an ISO 4217 currency and cannot be redefined', c
            USING ERRCODE = '22023',
                  DETAIL = format('%s is built in with %s minor units; %s were requested.', c,
                                  (SELECT i.minor_units FROM wallet.iso_currencies() i WHERE i.code = c),
                                  add_currency.minor_units);
    END IF;
    SELECT cc.minor_units INTO existing FROM wallet.custom_currencies cc WHERE cc.code = c;
    IF FOUND THEN
        IF existing = add_currency.minor_units THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION 'currency % already exists with % minor units', c, existing
            USING ERRCODE = '22023',
                  DETAIL = format('%s has %s minor units; %s were requested.', c, existing, add_currency.minor_units),
                  HINT = 'Minor units of a currency never change.';
    END IF;
    IF length(coalesce(add_currency.name, c)) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'the name of currency % must be 1 to 200 characters', c
            USING ERRCODE = '22023',
                  DETAIL = format('The name has %s characters.', length(add_currency.name));
    END IF;
    INSERT INTO wallet.custom_currencies (code, minor_units, name)
        VALUES (c, add_currency.minor_units, coalesce(add_currency.name, c))
        ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        -- added concurrently by another session (committed: the insert
        -- waited for it): the same definition is a no-op, other minor units
        -- are refused as above (1.6.0; before, the loser of the race
        -- returned false whatever its minor units, and a deploy believed a
        -- unit had 18 decimals that had 0)
        SELECT cc.minor_units INTO existing FROM wallet.custom_currencies cc WHERE cc.code = c;
        IF FOUND AND existing <> add_currency.minor_units THEN
            RAISE EXCEPTION 'currency % already exists with % minor units', c, existing
                USING ERRCODE = '22023',
                      DETAIL = format('%s has %s minor units; %s were requested.', c, existing, add_currency.minor_units),
                      HINT = 'Minor units of a currency never change.';
        END IF;
        RETURN false;
    END IF;
    PERFORM wallet.audit_row('wallet.custom_currencies', 'INSERT', NULL, wallet.audit_jsonb(cc))
       FROM wallet.custom_currencies cc WHERE cc.code = c;
    RETURN true;
END
$$;

-- ============================================================================
-- Accounts API
-- ============================================================================

-- Opens an account in a registered currency.  Returns its id.
-- Errors: unknown currency WL011, malformed currency 22P02, bad owner/kind 22023.
-- Kind 'debt' is reserved (22023, 1.6.0): the engine treats such an account
-- as a user's debt account (never closed, never hot, refused as a user by
-- the live flows), and only wallet.refund_recharge opens one, linked to its
-- user.
CREATE OR REPLACE FUNCTION wallet.open_account(owner text, currency text, kind text DEFAULT 'user',
                                    allow_negative boolean DEFAULT false,
                                    metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cur text;
    new_id bigint;
BEGIN
    IF owner IS NULL OR currency IS NULL OR kind IS NULL OR allow_negative IS NULL THEN
        RAISE EXCEPTION 'wallet.open_account: owner, currency, kind and allow_negative must not be null'
            USING ERRCODE = '22004',
                  DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN owner IS NULL THEN 'owner' END,
                                                         CASE WHEN currency IS NULL THEN 'currency' END,
                                                         CASE WHEN kind IS NULL THEN 'kind' END,
                                                         CASE WHEN allow_negative IS NULL THEN 'allow_negative' END));
    END IF;
    IF length(owner) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'wallet.open_account: owner must be 1 to 200 characters'
            USING ERRCODE = '22023',
                  DETAIL = format('The owner has %s characters.', length(owner));
    END IF;
    IF octet_length(kind) NOT BETWEEN 1 AND 64 THEN
        RAISE EXCEPTION 'wallet.open_account: kind must be 1 to 64 bytes'
            USING ERRCODE = '22023',
                  DETAIL = format('The kind has %s bytes.', octet_length(kind));
    END IF;
    IF kind = 'debt' THEN
        RAISE EXCEPTION 'wallet.open_account: kind ''debt'' is reserved for users'' debt accounts'
            USING ERRCODE = '22023',
                  DETAIL = 'A debt account is opened by wallet.refund_recharge and linked to its user; it can never be closed.',
                  HINT = 'Use another kind for an account of your own.';
    END IF;
    IF metadata IS NOT NULL AND pg_column_size(metadata) > 65536 THEN
        RAISE EXCEPTION 'wallet.open_account: metadata is larger than 64 kB'
            USING ERRCODE = '22023',
                  DETAIL = format('The metadata takes %s bytes.', pg_column_size(metadata));
    END IF;
    -- validates the code and that the currency is registered
    cur := wallet.currency(wallet.amount(0::bigint, currency));
    INSERT INTO wallet.account (owner, currency, kind, allow_negative, metadata)
        VALUES (open_account.owner, cur, open_account.kind, open_account.allow_negative,
                open_account.metadata)
        RETURNING id INTO new_id;
    PERFORM wallet.audit_row('wallet.account', 'INSERT', NULL, wallet.audit_jsonb(a))
       FROM wallet.account a WHERE a.id = new_id;
    RETURN new_id;
END
$$;

-- Posted balance: every committed posting, hot credits included, exact
-- right after each commit.  Unknown account: WL003; a posted balance past
-- 64-bit minor units (hot pending rows past the bounds of "Overflow" in
-- the README) is 22003 with the figure, not bigint's bare error.
CREATE OR REPLACE FUNCTION wallet.balance(account bigint) RETURNS wallet.amount
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.account_row(account);
    -- one probe of hot_pending's index, whether the account is hot or not
    posted numeric := r.balance::numeric
                      + (SELECT coalesce(sum(h.amount), 0) FROM wallet.hot_pending h WHERE h.account_id = r.id);
BEGIN
    IF posted NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
        RAISE EXCEPTION 'posted balance of account % is outside 64-bit minor units', account USING ERRCODE = '22003',
            DETAIL = format('Stored %s plus pending rows: %s minor units of %s.', r.balance, posted, r.currency),
            HINT = 'wallet.verify() reports such an account; a posting the other way brings it back.';
    END IF;
    RETURN wallet.amount(posted::bigint, r.currency);
END
$$;

-- Available balance: posted minus pending holds, minus outstanding debt
-- (a refund clawback that the coins on hand could not cover); 22003 with
-- the figure when it is outside 64-bit minor units.
CREATE OR REPLACE FUNCTION wallet.available(account bigint) RETURNS wallet.amount
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.account_row(account);
    debt numeric := 0;
    avail numeric;
BEGIN
    IF r.debt_account IS NOT NULL THEN
        SELECT least(d.balance, 0) INTO debt FROM wallet.account d WHERE d.id = r.debt_account;
    END IF;
    avail := r.balance::numeric + (SELECT coalesce(sum(h.amount), 0) FROM wallet.hot_pending h WHERE h.account_id = r.id)
             - r.held + coalesce(debt, 0);
    IF avail NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
        RAISE EXCEPTION 'available balance of account % is outside 64-bit minor units', account USING ERRCODE = '22003',
            DETAIL = format('Posted minus held minus debt: %s minor units of %s.', avail, r.currency);
    END IF;
    RETURN wallet.amount(avail::bigint, r.currency);
END
$$;

-- Marks an account hot (credits bypass its row lock) or back to normal.
-- Going back to normal takes the row lock and the hot-posting lock
-- exclusively (as freeze and close do), so it waits for every credit in
-- flight that skipped the row lock, then folds all pending credits: none
-- is left pending on a normal account (in REPEATABLE READ or SERIALIZABLE,
-- 40001 when a credit committed after the snapshot, which the fold would
-- not see: check_account_current).  A debt account (kind 'debt') is
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
        -- (every system account of the live flows but payout_clearing,
        -- which is not hot)
        IF EXISTS (SELECT 1 FROM wallet.live_system_accounts() s
                    WHERE s.id = set_hot.id AND s.role <> 'payout_clearing') THEN
            RAISE EXCEPTION 'account % is a hot system account of the live flows', id USING ERRCODE = '22023',
                DETAIL = 'wallet.live_setup() made it hot; the live flows rely on it staying hot.';
        END IF;
        -- the fold below must see every pending credit (snapshot isolation;
        -- an account that is not hot has none, and holds do not matter)
        IF (wallet.lock_account_for_status(id)).hot THEN
            PERFORM wallet.check_account_current(id, false);
        END IF;
    END IF;
    UPDATE wallet.account a SET hot = set_hot.hot, version = a.version + 1
     WHERE a.id = set_hot.id AND a.hot IS DISTINCT FROM set_hot.hot;
    IF NOT set_hot.hot THEN
        PERFORM wallet.fold_hot(set_hot.id);
    END IF;
END
$$;

-- In REPEATABLE READ or SERIALIZABLE, 40001 when a hot credit (or, with
-- holds, a hold) of the account committed after the transaction's
-- snapshot: neither touches the account's row, so its row lock does not
-- catch them, and close_account or set_hot(id, false) would act on a stale
-- view (1.6.0; found by a review).  Call it with the row and hot locks
-- held.  No-op in READ COMMITTED.  Internal.
CREATE OR REPLACE FUNCTION wallet.check_account_current(id bigint, holds boolean) RETURNS void
    AS 'MODULE_PATHNAME', 'wallet_check_account_current' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION wallet.check_account_current(bigint, boolean) FROM PUBLIC;

-- Closes an account for good: only at zero posted balance with nothing
-- held, no pending hold towards it and no outstanding debt (WL012
-- otherwise).  Closing a closed
-- account is a no-op.  The live flows' accounts (wallet.live_system_role)
-- never close (22023): a closed payout_clearing would refuse every
-- withdrawal for good, a closed debt account every later chargeback.
-- In REPEATABLE READ or SERIALIZABLE, 40001 when a hot credit or a hold of
-- the account committed after the snapshot (check_account_current).
CREATE OR REPLACE FUNCTION wallet.close_account(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.lock_account_for_status(id);
    bal numeric;        -- numeric: hot pending rows may take it past 64 bits
    shown text;
    role text;
BEGIN
    IF r.status = 'closed' THEN
        RETURN;
    END IF;
    PERFORM wallet.check_account_current(id, true);
    role := wallet.live_system_role(id);
    IF role IS NOT NULL THEN
        RAISE EXCEPTION 'account % is the platform''s % account and cannot be closed', id, role
            USING ERRCODE = '22023',
                  DETAIL = format('Account %s is the %s account of the live flows; they post to it.', id, role),
                  HINT = 'Freeze it to pause the flows that use it; unfreeze it to resume them.';
    END IF;
    -- the posted balance with the hot credits not yet folded, summed as
    -- numeric (wallet.pending_credits() is bigint and failed with bigint's
    -- bare error past 64 bits; 1.6.0)
    bal := r.balance + (SELECT coalesce(sum(h.amount), 0) FROM wallet.hot_pending h
                         WHERE h.account_id = close_account.id);
    IF bal <> 0 THEN
        shown := CASE WHEN bal BETWEEN -9223372036854775808 AND 9223372036854775807
                      THEN wallet.amount(bal::bigint, r.currency)::text
                      ELSE format('%s minor units of %s', bal, r.currency) END;
        RAISE EXCEPTION 'account % cannot be closed: balance is %', id, shown
            USING ERRCODE = 'WL012',
                  DETAIL = format('Account %s holds %s; only an account at zero can close.', id, shown),
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

-- ============================================================================
-- Reading
-- ============================================================================

-- Posted balance at a point in time: the sum of the account's entries of
-- transactions created at or before `at`.  (Transactions are stamped with
-- their start time, now().)  A sum outside 64-bit minor units (the extreme
-- case of README "Overflow", or a late-stamped posting on an account near
-- the bound) is 22003 with the figure, not bigint's bare error (1.6.0).
CREATE OR REPLACE FUNCTION wallet.balance_at(account bigint, at timestamptz) RETURNS wallet.amount
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.account_row(account);
    total numeric;
BEGIN
    IF at IS NULL THEN
        RAISE EXCEPTION 'at must not be null' USING ERRCODE = '22004',
            DETAIL = format('Account %s: the point in time is null.', account);
    END IF;
    SELECT coalesce(sum(x.units), 0) INTO total
      FROM wallet.account_entries x
     WHERE x.account_id = r.id AND x.created_at <= balance_at.at;
    IF total NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
        RAISE EXCEPTION 'balance of account % at % is outside 64-bit minor units', account, at
            USING ERRCODE = '22003',
                  DETAIL = format('The entries of account %s up to %s add up to %s minor units of %s.',
                                  account, at, total, r.currency),
                  HINT = 'wallet.statement() lists the entries; its running balance is NULL where it leaves 64 bits.';
    END IF;
    RETURN wallet.amount(total::bigint, r.currency);
END
$$;

-- The account's entries between since (inclusive) and until (exclusive; NULL
-- = open), oldest first, each with the balance after it.  The running
-- balance starts from the balance before `since`.  It is added up in
-- numeric: a running balance outside 64-bit minor units (a late-stamped
-- posting on an account near the bound, or README "Overflow") is NULL in
-- that row, as in wallet.accounts, and the rest of the statement reads
-- (1.6.0).
CREATE OR REPLACE FUNCTION wallet.statement(account bigint, since timestamptz DEFAULT '-infinity',
                                 until timestamptz DEFAULT 'infinity')
RETURNS TABLE (txn_id bigint, at timestamptz, kind text, amount wallet.amount,
               balance wallet.amount, metadata jsonb, reverses bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account := wallet.account_row(account);
    opening numeric;
BEGIN
    since := coalesce(since, '-infinity');
    until := coalesce(until, 'infinity');
    SELECT coalesce(sum(x.units), 0) INTO opening
      FROM wallet.account_entries x
     WHERE x.account_id = r.id AND x.created_at < since;
    RETURN QUERY
    SELECT s.txn_id, s.created_at, s.kind,
           CASE WHEN s.amount BETWEEN -9223372036854775808 AND 9223372036854775807
                THEN wallet.amount(s.amount::bigint, r.currency) END,
           CASE WHEN s.running BETWEEN -9223372036854775808 AND 9223372036854775807
                THEN wallet.amount(s.running::bigint, r.currency) END,
           s.metadata, s.reverses
      FROM (SELECT a.*, opening + sum(a.amount) OVER (ORDER BY a.created_at, a.txn_id) AS running
              FROM (SELECT x.txn_id, t.created_at, t.kind, t.metadata, t.reverses, sum(x.units) AS amount
                      FROM wallet.account_entries x JOIN wallet.txn t ON t.id = x.txn_id
                     WHERE x.account_id = r.id AND x.created_at >= since AND x.created_at < until
                     GROUP BY x.txn_id, t.created_at, t.kind, t.metadata, t.reverses) a) s
     ORDER BY s.created_at, s.txn_id;
END
$$;

-- The live flows' own accounts and the part each plays, from
-- wallet.live_config: 'coin_issuance', 'coin_revenue', 'diamond_issuance',
-- 'payout_clearing', and 'cash:USD', 'sales:USD', ... for every store
-- currency seen.  No rows before wallet.live_setup.  The one list that
-- live_system_role(), live_report() and set_hot() read.  Internal.
CREATE OR REPLACE FUNCTION wallet.live_system_accounts() RETURNS TABLE (id bigint, role text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.id, r.role
      FROM wallet.live_config lc,
           LATERAL (VALUES (lc.coin_issuance, 'coin_issuance'), (lc.coin_revenue, 'coin_revenue'),
                           (lc.diamond_issuance, 'diamond_issuance'), (lc.payout_clearing, 'payout_clearing')
                    UNION ALL
                    SELECT a.value::bigint, a.key || ':' || e.key
                      FROM jsonb_each(lc.cash_accounts) e, jsonb_each_text(e.value) a) AS r(id, role)
     WHERE lc.singleton
$$;
REVOKE ALL ON FUNCTION wallet.live_system_accounts() FROM PUBLIC;

-- The part an account of the platform plays in the live flows (a role of
-- live_system_accounts(), or 'debt' for a user's debt account, which
-- refund_recharge opens with kind 'debt'), or NULL for any other account
-- (and before wallet.live_setup).  Internal.
CREATE OR REPLACE FUNCTION wallet.live_system_role(id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
             (SELECT s.role FROM wallet.live_system_accounts() s WHERE s.id = live_system_role.id LIMIT 1),
             (SELECT 'debt' FROM wallet.account d WHERE d.id = live_system_role.id AND d.kind = 'debt'))
      FROM wallet.live_config lc WHERE lc.singleton
$$;
REVOKE ALL ON FUNCTION wallet.live_system_role(bigint) FROM PUBLIC;

-- 22023 when the account is one of the platform's (see live_system_role),
-- which a flow may not take as its user, viewer or creator (as_what): a
-- recharge of coin_issuance would book the payment and credit nobody, a
-- gift from it, or from a user's debt account (which may go negative),
-- would mint coins.  No-op for any other account.  Internal.
CREATE OR REPLACE FUNCTION wallet.live_refuse_system(id bigint, as_what text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    role text := wallet.live_system_role(id);
BEGIN
    IF role = 'debt' THEN
        RAISE EXCEPTION 'account % is a debt account, not a %', id, as_what
            USING ERRCODE = '22023',
                  DETAIL = format('Account %s records a user''s debt (kind debt); only postings of the live flows and settlements move it.', id),
                  HINT = format('Pass the %s''s own account.', as_what);
    ELSIF role IS NOT NULL THEN
        RAISE EXCEPTION 'account % is the platform''s % account, not a %', id, role, as_what
            USING ERRCODE = '22023',
                  DETAIL = format('Account %s is the %s account of the live flows (wallet.live_config).', id, role),
                  HINT = format('Pass the %s''s own account.', as_what);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION wallet.live_refuse_system(bigint, text) FROM PUBLIC;

-- Coins bought in a store or on the web: posts, as one transaction of kind
-- 'recharge', coin_issuance −coins, user +coins (less the debt repaid),
-- debt account +repaid, cash:<CUR> +paid, sales:<CUR> −paid.  When the user
-- has an outstanding debt (see the debt model above) the coins repay it
-- first.  Returns the transaction id.
-- Idempotent per (channel, external_id), the store's order id: key
-- 'wallet:recharge:<channel>:<external_id>' (reserved prefix: no client can take it first); a repeated call with the same user,
-- coins and paid returns the first transaction and posts nothing.
-- Metadata: {"channel", "external_id", "account", "coins", "paid",
-- "debt_repaid"}.
-- Errors: 22004 null argument; 22023 coins or paid not positive, channel
-- empty/longer than 64 bytes/containing ':', external_id empty or longer
-- than 120 bytes, a system account of the live flows as the user; WL002 coins not in the coin unit, paid not in an ISO 4217
-- currency, or the account not a coin account; WL003 unknown account;
-- WL004/WL005 frozen/closed account; WL006 the order id was already used
-- for a different recharge; 55000 not set up.
CREATE OR REPLACE FUNCTION wallet.recharge(user_account bigint, coins wallet.amount, paid wallet.amount,
                                channel text, external_id text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config;
    u wallet.account;
    key text;
    found_id bigint;
    found_kind text;
    found_md jsonb;
    n bigint;
    debt bigint;
    repay bigint;
    cur text;
    acc record;
    legs wallet.leg[];
BEGIN
    IF user_account IS NULL OR coins IS NULL OR paid IS NULL OR channel IS NULL OR external_id IS NULL THEN
        RAISE EXCEPTION 'wallet.recharge: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN user_account IS NULL THEN 'user_account' END, CASE WHEN coins IS NULL THEN 'coins' END, CASE WHEN paid IS NULL THEN 'paid' END, CASE WHEN channel IS NULL THEN 'channel' END, CASE WHEN external_id IS NULL THEN 'external_id' END));
    END IF;
    IF octet_length(channel) NOT BETWEEN 1 AND 64 OR strpos(channel, ':') > 0 THEN
        RAISE EXCEPTION 'channel must be 1 to 64 bytes without '':'', got "%"', left(channel, 64)
            USING ERRCODE = '22023',
                  DETAIL = format('The channel has %s bytes%s.', octet_length(channel),
                                  CASE WHEN strpos(channel, ':') > 0 THEN ' and a '':''' ELSE '' END);
    END IF;
    IF octet_length(external_id) NOT BETWEEN 1 AND 120 THEN
        RAISE EXCEPTION 'external_id must be 1 to 120 bytes, got %', octet_length(external_id)
            USING ERRCODE = '22023',
                  DETAIL = format('The store''s order id of channel %s has %s bytes.', channel, octet_length(external_id));
    END IF;
    c := wallet.live_cfg();
    PERFORM wallet.live_refuse_system(user_account, 'user');
    n := wallet.units(coins);
    cur := wallet.currency(paid);
    IF wallet.currency(coins) <> c.coin_currency THEN
        RAISE EXCEPTION 'coins must be in %, got %', c.coin_currency, coins
            USING ERRCODE = 'WL002',
                  DETAIL = format('Coins are %s; the recharge was given %s.', c.coin_currency, coins);
    END IF;
    IF n <= 0 THEN
        RAISE EXCEPTION 'coins must be positive, got %', coins USING ERRCODE = '22023',
            DETAIL = format('A recharge adds coins; %s is not positive.', coins);
    END IF;
    IF NOT wallet.is_iso_currency(cur) THEN
        RAISE EXCEPTION 'paid must be in an ISO 4217 currency, got %', paid
            USING ERRCODE = 'WL002',
                  DETAIL = format('%s is not an ISO 4217 currency; coins are paid with real money.', cur);
    END IF;
    IF wallet.units(paid) <= 0 THEN
        RAISE EXCEPTION 'paid must be positive, got %', paid USING ERRCODE = '22023',
            DETAIL = format('The store received %s.', paid);
    END IF;

    -- serialise with refunds of this user, then look the order up
    u := wallet.live_lock_account(user_account);
    key := 'wallet:recharge:' || channel || ':' || external_id;
    SELECT t.id, t.kind, t.metadata INTO found_id, found_kind, found_md
      FROM wallet.txn t WHERE t.idempotency_key = key;
    IF FOUND THEN
        IF found_kind = 'recharge' AND found_md ->> 'account' = user_account::text
           AND found_md ->> 'coins' = coins::text AND found_md ->> 'paid' = paid::text THEN
            RETURN found_id;
        END IF;
        RAISE EXCEPTION 'order "%" of channel "%" was already recharged with a different request', external_id, channel
            USING ERRCODE = 'WL006',
                  DETAIL = format('Transaction %s: account %s, %s for %s.', found_id,
                                  found_md ->> 'account', found_md ->> 'coins', found_md ->> 'paid'),
                  HINT = 'Resend the same request to get the first result.';
    END IF;

    IF u.currency <> c.coin_currency THEN
        RAISE EXCEPTION 'account % holds %, not coins (%)', user_account, u.currency, c.coin_currency
            USING ERRCODE = 'WL002',
                  DETAIL = format('Account %s is in %s; recharges credit %s.', user_account, u.currency, c.coin_currency);
    END IF;
    IF u.status = 'frozen' THEN
        RAISE EXCEPTION 'account % is frozen', user_account USING ERRCODE = 'WL004',
            DETAIL = format('Account %s takes no postings while frozen; the recharge of order %s was not posted.',
                            user_account, external_id);
    ELSIF u.status = 'closed' THEN
        RAISE EXCEPTION 'account % is closed', user_account USING ERRCODE = 'WL005',
            DETAIL = format('Account %s is closed; the recharge of order %s was not posted.', user_account, external_id);
    END IF;

    -- and the debt account's row: a posting to it (a repayment through the
    -- generic API) takes that row, not the user's, so the debt read below
    -- is the debt (1.6.0)
    PERFORM 1 FROM wallet.account d WHERE d.id = u.debt_account FOR NO KEY UPDATE;
    debt := wallet.live_debt(u);
    repay := least(n, debt);
    acc := wallet.live_cash_accounts(cur);
    legs := ARRAY[ROW(c.coin_issuance, wallet.amount(-n, c.coin_currency))::wallet.leg];
    IF n - repay > 0 THEN
        legs := legs || ROW(user_account, wallet.amount(n - repay, c.coin_currency))::wallet.leg;
    END IF;
    IF repay > 0 THEN
        legs := legs || ROW(u.debt_account, wallet.amount(repay, c.coin_currency))::wallet.leg;
    END IF;
    legs := legs || ROW(acc.cash, paid)::wallet.leg || ROW(acc.sales, -paid)::wallet.leg;
    RETURN wallet.post_system(key, legs, 'recharge',
                       jsonb_build_object('channel', channel, 'external_id', external_id,
                                          'account', user_account, 'coins', coins::text,
                                          'paid', paid::text, 'debt_repaid', repay));
END
$$;

CREATE OR REPLACE FUNCTION wallet.gift(viewer_account bigint, creator_account bigint, coins wallet.amount,
                            idempotency_key text, metadata jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config;
    n bigint;
    d bigint;
    md jsonb;
    cr wallet.account;
    found_id bigint;
    found_kind text;
    found_md jsonb;
    legs wallet.leg[];
BEGIN
    IF viewer_account IS NULL OR creator_account IS NULL OR coins IS NULL OR idempotency_key IS NULL THEN
        RAISE EXCEPTION 'wallet.gift: viewer_account, creator_account, coins and idempotency_key must not be null'
            USING ERRCODE = '22004',
                  DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN viewer_account IS NULL THEN 'viewer_account' END, CASE WHEN creator_account IS NULL THEN 'creator_account' END, CASE WHEN coins IS NULL THEN 'coins' END, CASE WHEN idempotency_key IS NULL THEN 'idempotency_key' END));
    END IF;
    IF metadata IS NOT NULL AND jsonb_typeof(metadata) <> 'object' THEN
        RAISE EXCEPTION 'gift metadata must be a JSON object, got %', jsonb_typeof(metadata)
            USING ERRCODE = '22023',
                  DETAIL = format('The metadata is a JSON %s; the gift adds its creator and diamonds to an object.',
                                  jsonb_typeof(metadata));
    END IF;
    c := wallet.live_cfg();
    -- the platform's accounts are refused with 22023 (live_refuse_system);
    -- the full test reads the cash accounts' map, so it runs only when a
    -- cheap one (two index probes) finds a system id, a debt account, or a
    -- viewer not in coins or a creator not in diamonds (every cash account
    -- is in a store currency; 1.6.0 answered those with WL002)
    IF viewer_account IN (c.coin_issuance, c.coin_revenue, c.diamond_issuance, c.payout_clearing)
       OR creator_account IN (c.coin_issuance, c.coin_revenue, c.diamond_issuance, c.payout_clearing)
       OR EXISTS (SELECT 1 FROM wallet.account d
                   WHERE (d.id = viewer_account AND (d.kind = 'debt' OR d.currency <> c.coin_currency))
                      OR (d.id = creator_account AND (d.kind = 'debt' OR d.currency <> c.diamond_currency))) THEN
        PERFORM wallet.live_refuse_system(viewer_account, 'viewer'), wallet.live_refuse_system(creator_account, 'creator');
    END IF;
    n := wallet.units(coins);
    IF wallet.currency(coins) <> c.coin_currency THEN
        RAISE EXCEPTION 'coins must be in %, got %', c.coin_currency, coins
            USING ERRCODE = 'WL002',
                  DETAIL = format('Gifts are paid in %s; the gift was given %s.', c.coin_currency, coins);
    END IF;
    IF n <= 0 THEN
        RAISE EXCEPTION 'gift must be positive, got %', coins USING ERRCODE = '22023',
            DETAIL = format('A gift moves coins from the viewer; %s is not positive.', coins);
    END IF;

    -- a retry returns the first gift even if the share changed since; a
    -- retry racing the first waits for it here (1.3.0: it computed the
    -- diamonds at the new share, and the key then held another request)
    PERFORM wallet.lock_key('gift:' || gift.idempotency_key);
    SELECT t.id, t.kind, t.metadata INTO found_id, found_kind, found_md
      FROM wallet.txn t WHERE t.idempotency_key = gift.idempotency_key;
    IF FOUND THEN
        IF found_kind = 'gift'
           AND found_md ->> 'creator' = creator_account::text
           AND (found_md - 'creator' - 'diamonds' - 'creator_share')
               = (coalesce(metadata, '{}') - 'creator' - 'diamonds' - 'creator_share')
           AND EXISTS (SELECT 1 FROM wallet.entry e
                        WHERE e.txn_id = found_id AND e.account_id = viewer_account AND e.amount = -n) THEN
            RETURN found_id;
        END IF;
        RAISE EXCEPTION 'idempotency key "%" was already used for a different request', idempotency_key
            USING ERRCODE = 'WL006',
                  DETAIL = format('Transaction %s was posted with this key; this request differs from it.', found_id),
                  HINT = 'Use a new key for a new request; resend the same request to get the first result.';
    END IF;

    d := floor(n * c.creator_share)::bigint;
    IF d = 0 THEN
        -- no diamond leg: check the creator here (the engine checks it otherwise)
        cr := wallet.account_row(creator_account);
        IF cr.currency <> c.diamond_currency THEN
            RAISE EXCEPTION 'currency mismatch: account % holds %, gifts pay creators in %',
                creator_account, cr.currency, c.diamond_currency
                USING ERRCODE = 'WL002',
                      DETAIL = format('Account %s is in %s; creators receive %s.', creator_account, cr.currency,
                                      c.diamond_currency);
        END IF;
        IF cr.status = 'frozen' THEN
            RAISE EXCEPTION 'account % is frozen', creator_account USING ERRCODE = 'WL004',
                DETAIL = format('Account %s takes no postings while frozen.', creator_account);
        ELSIF cr.status = 'closed' THEN
            RAISE EXCEPTION 'account % is closed', creator_account USING ERRCODE = 'WL005',
                DETAIL = format('Account %s is closed.', creator_account);
        END IF;
    END IF;
    md := coalesce(metadata, '{}')
          || jsonb_build_object('creator', creator_account, 'diamonds', d, 'creator_share', c.creator_share);
    legs := ARRAY[ROW(viewer_account, -coins)::wallet.leg,
                  ROW(c.coin_revenue, coins)::wallet.leg];
    IF d > 0 THEN
        legs := legs || ROW(c.diamond_issuance, wallet.amount(-d, c.diamond_currency))::wallet.leg
                     || ROW(creator_account, wallet.amount(d, c.diamond_currency))::wallet.leg;
    END IF;
    RETURN wallet.post(idempotency_key, legs, 'gift', md);
END
$$;

-- A creator asks to withdraw diamonds: places a hold of kind 'withdrawal'
-- from the creator to payout_clearing (available drops, the balance does
-- not).  Returns the hold id.  Idempotent by key like wallet.hold (holds
-- have their own key space).
-- Errors: 22004 null argument; 22023 amount not positive, bad key, a
-- system account of the live flows as the creator; WL002 amount not in the
-- diamond unit or not a diamond account; WL001
-- insufficient diamonds; WL003/WL004/WL005; WL006 key conflict; 55000.
CREATE OR REPLACE FUNCTION wallet.request_withdrawal(creator_account bigint, amount wallet.amount,
                                          idempotency_key text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config;
BEGIN
    IF creator_account IS NULL OR amount IS NULL OR idempotency_key IS NULL THEN
        RAISE EXCEPTION 'wallet.request_withdrawal: arguments must not be null' USING ERRCODE = '22004',
            DETAIL = format('Null: %s.', concat_ws(', ', CASE WHEN creator_account IS NULL THEN 'creator_account' END, CASE WHEN amount IS NULL THEN 'amount' END, CASE WHEN idempotency_key IS NULL THEN 'idempotency_key' END));
    END IF;
    c := wallet.live_cfg();
    -- any of the platform's accounts, a debt account or a cash account
    -- too, before the currency check would call it a mismatch (1.6.0)
    PERFORM wallet.live_refuse_system(creator_account, 'creator');
    IF wallet.currency(amount) <> c.diamond_currency THEN
        RAISE EXCEPTION 'withdrawals are in %, got %', c.diamond_currency, amount
            USING ERRCODE = 'WL002',
                  DETAIL = format('Creators withdraw %s; the request was for %s.', c.diamond_currency, amount);
    END IF;
    IF wallet.units(amount) <= 0 THEN
        RAISE EXCEPTION 'withdrawal must be positive, got %', amount USING ERRCODE = '22023',
            DETAIL = format('A withdrawal holds diamonds; %s is not positive.', amount);
    END IF;
    RETURN wallet.hold(creator_account, c.payout_clearing, amount, idempotency_key,
                       NULL, 'withdrawal', NULL);
END
$$;

-- A store refund or chargeback of a recharge: claws the R recharged coins
-- back, even when some were spent (see the debt model above), as one
-- transaction of kind 'refund': user −x, debt account (x − R), coin_issuance
-- +R, cash:<CUR> −paid, sales:<CUR> +paid, where x = min(the user's free
-- coins (balance − held), R + outstanding debt).  The debt account is
-- opened and linked on the first shortfall.  Returns the transaction id.
-- The recharge's claw-back lock is taken first (as wallet.reverse()
-- takes it), then the user's account, so refunds and recharges of a user
-- are serialised.
-- Idempotent: key 'wallet:refund:<tx_id>' (reserved); a second call returns the first
-- refund's id (whatever its reason).
-- Metadata: {"refunds": tx_id, "reason", "account", "coins", "paid",
-- "from_account" (x), "debt_change" (x − R)}.
-- Errors: 22004 null tx_id; 22023 not a recharge, reason longer than 1000
-- bytes; WL009 unknown transaction; WL004 frozen user account (with coins
-- to take back); 55000 not set up.
CREATE OR REPLACE FUNCTION wallet.refund_recharge(tx_id bigint, reason text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config;
    t_kind text;
    t_md jsonb;
    t_key text;
    user_id bigint;
    u wallet.account;
    key text;
    found_id bigint;
    r bigint;
    paid wallet.amount;
    debt bigint;
    free bigint;
    x bigint;
    acc record;
    debt_id bigint;
    unlinked boolean := false;
    legs wallet.leg[];
    result bigint;
BEGIN
    IF tx_id IS NULL THEN
        RAISE EXCEPTION 'tx_id must not be null' USING ERRCODE = '22004',
            DETAIL = 'The tx_id argument is null.';
    END IF;
    IF octet_length(reason) > 1000 THEN
        RAISE EXCEPTION 'reason is longer than 1000 bytes' USING ERRCODE = '22023',
            DETAIL = format('The reason has %s bytes.', octet_length(reason));
    END IF;
    c := wallet.live_cfg();
    SELECT t.kind, t.metadata, t.idempotency_key INTO t_kind, t_md, t_key FROM wallet.txn t WHERE t.id = tx_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown transaction %', tx_id USING ERRCODE = 'WL009',
            DETAIL = format('No transaction has id %s.', tx_id);
    END IF;
    -- only what wallet.recharge posted: its key is in the reserved prefix,
    -- which no client can use, so a client's transfer given the kind
    -- 'recharge' and made-up metadata is not one (1.2.0)
    IF t_kind <> 'recharge' OR NOT (t_md ? 'account') OR NOT starts_with(t_key, 'wallet:recharge:') THEN
        RAISE EXCEPTION 'transaction % is a %, not a recharge', tx_id,
                        CASE WHEN t_kind = 'recharge' THEN 'posting of kind recharge' ELSE t_kind END
            USING ERRCODE = '22023',
                  DETAIL = CASE WHEN t_kind = 'recharge'
                                THEN format('Transaction %s has kind recharge but was not posted by wallet.recharge (key "%s").', tx_id, t_key)
                                ELSE format('Transaction %s has kind %s; only recharges are refunded.', tx_id, t_kind) END,
                  HINT = 'Use wallet.reverse() for other transactions.';
    END IF;
    user_id := (t_md ->> 'account')::bigint;
    r := wallet.units((t_md ->> 'coins')::wallet.amount);
    paid := (t_md ->> 'paid')::wallet.amount;

    -- the claw-back lock of the recharge, as wallet.reverse() takes it
    -- first: a reversal claims the link before it locks the user, so a
    -- refund that locked the user first deadlocked with it (1.4.0)
    PERFORM wallet.lock_key('wallet:reverse:' || tx_id);
    u := wallet.live_lock_account(user_id);
    key := 'wallet:refund:' || tx_id;
    SELECT t.id INTO found_id FROM wallet.txn t WHERE t.idempotency_key = key;
    IF FOUND THEN
        RETURN found_id;
    END IF;
    -- clawed back at most once: not after wallet.reverse() of the recharge
    SELECT t.id INTO found_id FROM wallet.txn t WHERE t.reverses = tx_id;
    IF FOUND THEN
        RAISE EXCEPTION 'transaction % is already reversed', tx_id
            USING ERRCODE = 'WL010',
                  DETAIL = format('Transaction %s reversed it; a recharge is clawed back at most once.', found_id);
    END IF;

    -- and the debt account's row: a posting to it (a repayment through the
    -- generic API) takes that row, not the user's, so the debt read below
    -- is the debt (1.6.0)
    PERFORM 1 FROM wallet.account d WHERE d.id = u.debt_account FOR NO KEY UPDATE;
    debt := wallet.live_debt(u);
    free := greatest(wallet.units(wallet.balance(user_id)) - u.held, 0);
    x := least(free, r + debt);
    debt_id := u.debt_account;
    IF x < r AND debt_id IS NULL THEN
        -- the kind open_account reserves (1.6.0): opened here only, linked below
        INSERT INTO wallet.account (owner, currency, kind, allow_negative, metadata)
            VALUES (u.owner, u.currency, 'debt', true, jsonb_build_object('debt_of', user_id))
            RETURNING id INTO debt_id;
        PERFORM wallet.audit_row('wallet.account', 'INSERT', NULL, wallet.audit_jsonb(a))
           FROM wallet.account a WHERE a.id = debt_id;
        UPDATE wallet.account a SET debt_account = debt_id, version = a.version + 1
         WHERE a.id = user_id;
    END IF;
    IF x > 0 AND debt > 0 THEN
        -- The engine refuses any debit of an indebted account; this one
        -- settles the debt, so unlink the debt account for this posting
        -- (the row stays locked by us; nobody sees the gap).
        UPDATE wallet.account a SET debt_account = NULL WHERE a.id = user_id;
        unlinked := true;
    END IF;

    acc := wallet.live_cash_accounts(wallet.currency(paid));
    legs := ARRAY[]::wallet.leg[];
    IF x > 0 THEN
        legs := legs || ROW(user_id, wallet.amount(-x, c.coin_currency))::wallet.leg;
    END IF;
    IF x <> r THEN
        legs := legs || ROW(debt_id, wallet.amount(x - r, c.coin_currency))::wallet.leg;
    END IF;
    legs := legs || ROW(c.coin_issuance, wallet.amount(r, c.coin_currency))::wallet.leg
                 || ROW(acc.cash, -paid)::wallet.leg
                 || ROW(acc.sales, paid)::wallet.leg;
    -- linked like a reversal, so wallet.reverse() of the recharge is refused
    result := wallet.post_system(key, legs, 'refund',
                          jsonb_build_object('refunds', tx_id, 'reason', reason, 'account', user_id,
                                             'coins', t_md ->> 'coins', 'paid', paid::text,
                                             'from_account', x, 'debt_change', x - r),
                          reverses => tx_id);
    IF unlinked THEN
        UPDATE wallet.account a SET debt_account = debt_id WHERE a.id = user_id;
    END IF;
    RETURN result;
END
$$;

-- A report total in minor units as text: the amount's text when it fits
-- in 64 bits, else the same form computed in numeric (a sum of balances
-- may pass int64 even when every balance fits), so live_report() shows
-- every figure instead of failing.  Internal.
CREATE OR REPLACE FUNCTION wallet.live_total_text(total numeric, currency text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN total BETWEEN -9223372036854775808 AND 9223372036854775807
                THEN wallet.amount(total::bigint, currency)::text
                -- integer division and remainder by 10^m: exact for any m
                -- (a numeric quotient keeps only about 16 fraction digits)
                ELSE (SELECT CASE WHEN total < 0 THEN '-' ELSE '' END || div(abs(total), x.p)::text
                             || CASE WHEN x.m > 0 THEN '.' || lpad(mod(abs(total), x.p)::text, x.m, '0') ELSE '' END
                             || ' ' || currency
                        FROM (SELECT m, (10::numeric ^ m)::numeric(1000, 0) AS p
                                FROM (SELECT wallet.minor_units(wallet.amount(0::bigint, currency)) AS m) y) x) END
$$;
REVOKE ALL ON FUNCTION wallet.live_total_text(numeric, text) FROM PUBLIC;

-- The total as bigint for live_report()'s units column, NULL when it does
-- not fit (the value column still shows it).  Internal.
CREATE OR REPLACE FUNCTION wallet.live_total_units(total numeric) RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN total BETWEEN -9223372036854775808 AND 9223372036854775807 THEN total::bigint END
$$;
REVOKE ALL ON FUNCTION wallet.live_total_units(numeric) FROM PUBLIC;

-- A readable summary of the live flows, one row per figure, for psql and
-- for scripts: section, item, value (text: an amount like '12 COIN', a
-- count, 'ok' or 'FAILED: ...') and units (the figure as a number: minor
-- units or a count; NULL for the verify rows).  Sections and items:
--   accounts  'balance <kind> <CUR>': balance of all accounts of that kind
--             and currency, with the number of accounts in value; the live
--             flows' own accounts (wallet.live_config) one by one, named by
--             their role ('balance platform:cash:USD')
--   coins     'issued' (−coin_issuance), 'circulation' (the positive
--             balances of every coin account but the live flows' own and
--             the debt accounts), 'negative balances' (the negative ones of
--             those accounts: an account allowed to go negative that
--             issued coins, or one a forced reversal took below zero;
--             normally 0), 'held' (in pending holds), 'revenue'
--             (coin_revenue), 'debt' (outstanding, >= 0), 'users in debt',
--             and 'conserved' (issued = circulation + negative balances +
--             revenue − debt: 'ok')
--   diamonds  'issued' (−diamond_issuance), 'creators' (the positive
--             balances of every diamond account but the live flows' own),
--             'negative balances' (the negative ones), 'withdrawn'
--             (payout_clearing), 'pending withdrawals' (pending withdrawal
--             holds), and 'conserved' (issued = creators + negative
--             balances + withdrawn: 'ok')
--   cash      'received <CUR>' (cash:<CUR>) for each real currency
--   activity  'transactions <kind>' and 'holds <kind> <status>' (counts)
--   verify    '<check_name>' of wallet.verify(): 'ok' or 'FAILED: detail'
-- STABLE: every figure comes from the one snapshot of the calling query,
-- so the report is consistent while postings go on.
-- Errors: 55000 not set up.
CREATE OR REPLACE FUNCTION wallet.live_report()
RETURNS TABLE (section text, item text, value text, units bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c wallet.live_config := wallet.live_cfg();
    sys bigint[] := ARRAY[c.coin_issuance, c.coin_revenue, c.diamond_issuance, c.payout_clearing];
    -- totals in numeric: a sum of 64-bit balances need not fit in 64 bits
    issued numeric;
    circulation numeric;
    negative numeric;
    held numeric;
    revenue numeric;
    debt numeric;
    debtors bigint;
    d_issued numeric;
    d_creators numeric;
    d_negative numeric;
    d_withdrawn numeric;
    d_pending numeric;
BEGIN
    -- The live flows' own accounts by their role in wallet.live_config
    -- (not by owner or kind: any role may open an account of kind 'system'
    -- named 'platform:…', and it must not merge into the platform's line);
    -- every other account by kind and currency (1.6.0).
    RETURN QUERY
    WITH roles AS (SELECT s.id, s.role FROM wallet.live_system_accounts() s)
    SELECT 'accounts'::text,
           CASE WHEN a.role IS NOT NULL THEN format('balance platform:%s', a.role)
                ELSE format('balance %s %s', a.kind, a.currency) END,
           CASE WHEN a.role IS NOT NULL THEN wallet.live_total_text(sum(a.bal), a.currency)
                ELSE format('%s (%s accounts)', wallet.live_total_text(sum(a.bal), a.currency), count(*)) END,
           wallet.live_total_units(sum(a.bal))
      FROM (SELECT x.kind, x.currency, r.role,
                   x.balance + coalesce(p.pending, 0) AS bal
              FROM wallet.account x
              LEFT JOIN roles r ON r.id = x.id
              LEFT JOIN (SELECT h.account_id, sum(h.amount) AS pending FROM wallet.hot_pending h
                          GROUP BY h.account_id) p ON p.account_id = x.id) a
     GROUP BY a.role, a.kind, a.currency
     ORDER BY a.role IS NOT NULL, a.currency, a.kind, a.role;

    -- Coins: circulation is what accounts outside the live flows hold; an
    -- account outside them below zero (one allowed to go negative, or
    -- forced there by a reversal) is shown on its own line, 'negative
    -- balances', instead of netting coins it issued out of circulation
    -- (1.6.0).  Users' debt accounts are the 'debt' line.
    SELECT coalesce(sum(b.bal) FILTER (WHERE b.id = c.coin_issuance), 0) * -1,
           coalesce(sum(b.bal) FILTER (WHERE b.id <> ALL (sys) AND b.kind <> 'debt' AND b.bal > 0), 0),
           coalesce(sum(b.bal) FILTER (WHERE b.id <> ALL (sys) AND b.kind <> 'debt' AND b.bal < 0), 0),
           coalesce(sum(b.held) FILTER (WHERE b.id <> ALL (sys) AND b.kind <> 'debt'), 0),
           coalesce(sum(b.bal) FILTER (WHERE b.id = c.coin_revenue), 0),
           coalesce(sum(b.bal) FILTER (WHERE b.kind = 'debt'), 0) * -1,
           count(*) FILTER (WHERE b.kind = 'debt' AND b.bal < 0)
      INTO issued, circulation, negative, held, revenue, debt, debtors
      FROM (SELECT x.id, x.kind, x.held,
                   x.balance + coalesce((SELECT sum(h.amount) FROM wallet.hot_pending h
                                          WHERE h.account_id = x.id), 0) AS bal
              FROM wallet.account x WHERE x.currency = c.coin_currency) b;
    section := 'coins';
    item := 'issued'; units := wallet.live_total_units(issued); value := wallet.live_total_text(issued, c.coin_currency); RETURN NEXT;
    item := 'circulation'; units := wallet.live_total_units(circulation); value := wallet.live_total_text(circulation, c.coin_currency); RETURN NEXT;
    item := 'negative balances'; units := wallet.live_total_units(negative); value := wallet.live_total_text(negative, c.coin_currency); RETURN NEXT;
    item := 'held'; units := wallet.live_total_units(held); value := wallet.live_total_text(held, c.coin_currency); RETURN NEXT;
    item := 'revenue'; units := wallet.live_total_units(revenue); value := wallet.live_total_text(revenue, c.coin_currency); RETURN NEXT;
    item := 'debt'; units := wallet.live_total_units(debt); value := wallet.live_total_text(debt, c.coin_currency); RETURN NEXT;
    item := 'users in debt'; units := debtors; value := debtors::text; RETURN NEXT;
    item := 'conserved'; units := wallet.live_total_units(issued - circulation - negative - revenue + debt);
    value := CASE WHEN issued - circulation - negative - revenue + debt = 0 THEN 'ok'
                  ELSE format('FAILED: issued %s <> circulation + negative balances + revenue - debt by %s',
                              wallet.live_total_text(issued, c.coin_currency),
                              wallet.live_total_text(issued - circulation - negative - revenue + debt, c.coin_currency)) END;
    RETURN NEXT;

    SELECT coalesce(sum(b.bal) FILTER (WHERE b.id = c.diamond_issuance), 0) * -1,
           coalesce(sum(b.bal) FILTER (WHERE b.id <> ALL (sys) AND b.bal > 0), 0),
           coalesce(sum(b.bal) FILTER (WHERE b.id <> ALL (sys) AND b.bal < 0), 0),
           coalesce(sum(b.bal) FILTER (WHERE b.id = c.payout_clearing), 0)
      INTO d_issued, d_creators, d_negative, d_withdrawn
      FROM (SELECT x.id, x.balance + coalesce((SELECT sum(h.amount) FROM wallet.hot_pending h
                                                WHERE h.account_id = x.id), 0) AS bal
              FROM wallet.account x WHERE x.currency = c.diamond_currency) b;
    SELECT coalesce(sum(h.amount), 0) INTO d_pending
      FROM wallet.hold h
     WHERE h.status = 'pending' AND h.kind = 'withdrawal' AND h.to_account = c.payout_clearing;
    section := 'diamonds';
    item := 'issued'; units := wallet.live_total_units(d_issued); value := wallet.live_total_text(d_issued, c.diamond_currency); RETURN NEXT;
    item := 'creators'; units := wallet.live_total_units(d_creators); value := wallet.live_total_text(d_creators, c.diamond_currency); RETURN NEXT;
    item := 'negative balances'; units := wallet.live_total_units(d_negative); value := wallet.live_total_text(d_negative, c.diamond_currency); RETURN NEXT;
    item := 'withdrawn'; units := wallet.live_total_units(d_withdrawn); value := wallet.live_total_text(d_withdrawn, c.diamond_currency); RETURN NEXT;
    item := 'pending withdrawals'; units := wallet.live_total_units(d_pending); value := wallet.live_total_text(d_pending, c.diamond_currency); RETURN NEXT;
    item := 'conserved'; units := wallet.live_total_units(d_issued - d_creators - d_negative - d_withdrawn);
    value := CASE WHEN d_issued - d_creators - d_negative - d_withdrawn = 0 THEN 'ok'
                  ELSE format('FAILED: issued %s <> creators + negative balances + withdrawn by %s',
                              wallet.live_total_text(d_issued, c.diamond_currency),
                              wallet.live_total_text(d_issued - d_creators - d_negative - d_withdrawn, c.diamond_currency)) END;
    RETURN NEXT;

    RETURN QUERY
    SELECT 'cash'::text, 'received ' || k.cur, wallet.balance(k.cash)::text,
           wallet.units(wallet.balance(k.cash))
      FROM (SELECT e.key AS cur, (e.value ->> 'cash')::bigint AS cash
              FROM jsonb_each(c.cash_accounts) e) k
     ORDER BY k.cur;

    RETURN QUERY
    SELECT 'activity'::text, 'transactions ' || t.kind, count(*)::text, count(*)
      FROM wallet.txn t GROUP BY t.kind ORDER BY t.kind;
    RETURN QUERY
    SELECT 'activity'::text, format('holds %s %s', h.kind, h.status), count(*)::text, count(*)
      FROM wallet.hold h GROUP BY h.kind, h.status ORDER BY h.kind, h.status;

    RETURN QUERY
    SELECT 'verify'::text, v.check_name,
           CASE WHEN v.ok THEN 'ok' ELSE 'FAILED: ' || v.detail END, NULL::bigint
      FROM wallet.verify() v;
END
$$;

-- Attaches wallet.audit() to a table and to every partition or inheritance
-- child below it: every INSERT, UPDATE, DELETE (row) and TRUNCATE
-- (statement) lands in wallet.audit_log.  Call it again after adding a
-- partition or child; it adds only what is missing.  Runs with the
-- caller's rights: only who may create triggers on the table can call it.
-- Idempotent.  The table name is a regclass, never spliced as text.
-- Errors: no such table 42P01; a table of schema wallet 22023 (the
-- ledger's tables are audited by the extension itself, and auditing the
-- audit log would record its own records without end).
CREATE OR REPLACE FUNCTION wallet.audit_table(target regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel oid;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'target must not be null' USING ERRCODE = '22004',
            DETAIL = 'wallet.audit_table(NULL): name the table to audit.';
    END IF;
    SELECT n.nspname INTO nsp
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = target;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', target::oid USING ERRCODE = '42P01',
            DETAIL = 'wallet.audit_table() was given an OID that names no table.';
    END IF;
    IF nsp = 'wallet' THEN
        RAISE EXCEPTION 'wallet.audit_table: % belongs to the wallet extension', target USING ERRCODE = '22023',
            DETAIL = 'The ledger''s own tables are audited by the extension; wallet.audit_log cannot audit itself.',
            HINT = 'Audit your application''s tables.';
    END IF;
    -- the table, then every table below it: PostgreSQL clones a row
    -- trigger to partitions but not a TRUNCATE one, and neither to
    -- inheritance children, so a TRUNCATE of a partition or a row changed
    -- in a child through the parent went unrecorded (1.6.0; found by a
    -- review).  Tables added below later get theirs when this is called
    -- again.
    FOR rel IN
        SELECT target::oid
        UNION ALL
        (WITH RECURSIVE below(relid) AS (
             SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = target
             UNION
             SELECT i.inhrelid FROM pg_inherits i JOIN below b ON i.inhparent = b.relid)
         SELECT b.relid FROM below b JOIN pg_class c ON c.oid = b.relid
                JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'wallet' ORDER BY b.relid)
    LOOP
        -- a table below that the caller may not add triggers to is left
        -- out with a WARNING, not an error that leaves the parent unaudited
        -- (a partition's row trigger is cloned by the parent's CREATE
        -- TRIGGER, which PostgreSQL refuses as a whole in that case)
        IF rel <> target AND NOT has_table_privilege(rel, 'TRIGGER') THEN
            RAISE WARNING 'wallet.audit_table: % is not audited', rel::regclass
                USING DETAIL = format('%s is below %s, and role %s may not create triggers on it.',
                                      rel::regclass, target, current_user),
                      HINT = format('Its owner can call wallet.audit_table(%L).', rel::regclass::text);
            CONTINUE;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = 'wallet_audit') THEN
            EXECUTE format('CREATE TRIGGER wallet_audit AFTER INSERT OR UPDATE OR DELETE ON %s '
                           'FOR EACH ROW EXECUTE FUNCTION wallet.audit()', rel::regclass);
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = 'wallet_audit_truncate') THEN
            EXECUTE format('CREATE TRIGGER wallet_audit_truncate AFTER TRUNCATE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION wallet.audit()', rel::regclass);
        END IF;
    END LOOP;
END
$$;

-- SHA-256 of an audit record over a canonical text (every field quoted or
-- NULL, times in UTC microseconds, jsonb's normalised text).  Every value
-- a field can hold has its own text: a time before year 1 ends in " BC",
-- an infinite one is spelled out, an address keeps a netmask shorter
-- than the host's (1.3.0; records as the API writes them, AD times and
-- host addresses, hash as before, so existing seals stay valid).  The text
-- is hashed as UTF-8, or as stored in a SQL_ASCII database (1.6.0).
CREATE OR REPLACE FUNCTION wallet.audit_hash(a wallet.audit_log) RETURNS bytea
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sha256(convert_to(concat_ws('|',
        'audit', quote_nullable(a.id), quote_nullable(a.relation), quote_nullable(a.operation),
        quote_nullable(a.old_row::text), quote_nullable(a.new_row::text),
        quote_nullable(a.changed_columns::text), quote_nullable(a.txid),
        quote_nullable(CASE WHEN NOT isfinite(a.at) THEN a.at::text
                            ELSE to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
                                 || CASE WHEN a.at < '0001-01-01 00:00:00+00' THEN ' BC' ELSE '' END END),
        quote_nullable(a.db_user), quote_nullable(a.application_name),
        quote_nullable(CASE WHEN a.client_addr IS NOT NULL THEN format('%s', a.client_addr) END),
        quote_nullable(a.actor)),
        -- a SQL_ASCII database stores bytes unchecked, and converting one
        -- that is not UTF-8 failed every seal from that record on (found
        -- by a review, 1.6.0): hash its bytes as stored, which is what the
        -- conversion gave for every record it accepted
        CASE WHEN getdatabaseencoding() = 'SQL_ASCII' THEN 'SQL_ASCII' ELSE 'UTF8' END))
$$;

-- Seals everything so far and returns the chain's head (hex).  Keep it
-- outside the database; wallet.audit_verify(head) later proves the sealed
-- history still leads to it.  Errors: 25000 outside READ COMMITTED (as
-- seal(), named digest() since library 1.6.0).
CREATE OR REPLACE FUNCTION wallet.digest() RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- seal()'s own check, named for the function the caller called
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'wallet.digest() must run in a READ COMMITTED transaction'
            USING ERRCODE = '25000',
                  DETAIL = format('This transaction is %s; digest() seals, and the sealer must see what the writers it waited for committed.',
                                  upper(current_setting('transaction_isolation'))),
                  HINT = 'Call it in a transaction of its own at the default isolation level (READ COMMITTED).';
    END IF;
    PERFORM wallet.seal();
    RETURN encode(coalesce((SELECT s.head FROM wallet.audit_seal s ORDER BY s.id DESC LIMIT 1),
                           wallet.genesis_head()), 'hex');
END
$$;

-- Recomputes the chain and every sealed record.  Rows: seal_chain,
-- journal_records, audit_records, ledger_rows (1.4.0), known_head (when a
-- head is given), unsealed.  ok = false names the first bad seal, record or
-- row.  Detects edits, deletions, insertions and reordering of sealed
-- records even when made by a superuser with triggers disabled, and rows of
-- the ledger's own tables (accounts, holds, custom currencies, the live
-- configuration) that no longer match their latest audit record.
-- Errors: 22023 a known_head that is not 64 hex digits.
CREATE OR REPLACE FUNCTION wallet.audit_verify(known_head text DEFAULT NULL)
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    prev bytea := wallet.genesis_head();
    prev_j bigint := 0;
    prev_a bigint := 0;
    bad text;
    n_seals bigint := 0;
    j_max bigint;
    a_max bigint;
    r record;
    orphan_txn bigint;
    orphan_leg int;
    tbl record;
    cols text;
    keytype text;
BEGIN
    IF known_head IS NOT NULL AND known_head !~ '^[0-9a-fA-F]{64}$' THEN
        RAISE EXCEPTION 'known_head must be a head returned by wallet.digest() (64 hex digits)'
            USING ERRCODE = '22023',
                  DETAIL = format('Got %s characters: %s.', length(known_head), left(known_head, 80));
    END IF;
    -- 1. the chain of seals
    FOR s IN SELECT * FROM wallet.audit_seal ORDER BY id LOOP
        IF s.prev_head IS DISTINCT FROM prev THEN
            bad := format('seal %s does not follow the previous seal (prev_head differs)', s.id);
        ELSIF s.head IS DISTINCT FROM wallet.seal_head(s.prev_head, s.journal_through, s.audit_through,
                                                       s.journal_ids, s.journal_hashes, s.audit_ids, s.audit_hashes) THEN
            bad := format('seal %s was altered (its head does not match its content)', s.id);
        ELSIF s.journal_through < prev_j OR s.audit_through < prev_a
              OR length(s.journal_hashes) <> 32 * cardinality(s.journal_ids)
              OR length(s.audit_hashes) <> 32 * cardinality(s.audit_ids) THEN
            bad := format('seal %s is malformed', s.id);
        END IF;
        EXIT WHEN bad IS NOT NULL;
        prev := s.head;
        prev_j := s.journal_through;
        prev_a := s.audit_through;
        n_seals := n_seals + 1;
    END LOOP;
    check_name := 'seal_chain'; ok := bad IS NULL;
    detail := coalesce(bad, format('%s seals chain to head %s', n_seals, encode(prev, 'hex')));
    RETURN NEXT;

    -- records are compared up to the furthest horizon any seal claims (a
    -- broken chain is reported above; it must not make intact records look
    -- deleted)
    SELECT coalesce(max(se.journal_through), 0), coalesce(max(se.audit_through), 0)
      INTO j_max, a_max FROM wallet.audit_seal se;

    -- 2. sealed journal records against the journal
    SELECT x.id, x.what, x.seal_id INTO r FROM (
        SELECT coalesce(sd.id, cur.id) AS id, sd.seal_id,
               CASE WHEN cur.id IS NULL THEN 'deleted'
                    WHEN sd.id IS NULL THEN 'inserted after sealing'
                    ELSE 'edited' END AS what
          FROM (SELECT u.id, se.id AS seal_id,
                       substring(se.journal_hashes FROM ((u.ord - 1) * 32 + 1)::int FOR 32) AS h
                  FROM wallet.audit_seal se, unnest(se.journal_ids) WITH ORDINALITY AS u(id, ord)) sd
          -- every id up to the horizon, those below any sequence value
          -- included (a forged id 0 or -5 is "inserted after sealing")
          FULL JOIN (SELECT jh.id, jh.hash AS h FROM wallet.journal_hashes(-9223372036854775808, j_max) jh
                     UNION ALL
                     SELECT t.id, ''::bytea FROM wallet.txn t WHERE t.id = -9223372036854775808) cur
            ON cur.id = sd.id
         WHERE sd.h IS DISTINCT FROM cur.h) x
     ORDER BY x.id LIMIT 1;
    -- entries under the horizon whose transaction is not there: the hashes
    -- skip them (a deleted transaction is reported above by its own hash),
    -- so legs added under an id no transaction holds, such as a rolled-back
    -- one's, passed (1.6.0; found by a review)
    IF r IS NULL THEN
        SELECT e.txn_id, e.leg INTO orphan_txn, orphan_leg FROM wallet.entry e
         WHERE e.txn_id <= j_max AND NOT EXISTS (SELECT 1 FROM wallet.txn t WHERE t.id = e.txn_id)
         ORDER BY e.txn_id, e.leg LIMIT 1;
    END IF;
    check_name := 'journal_records'; ok := r IS NULL AND orphan_txn IS NULL;
    detail := CASE WHEN ok THEN format('sealed journal intact through transaction %s', j_max)
                   WHEN r IS NULL THEN format('entry %s of transaction %s was inserted after sealing (no transaction %s was posted)',
                                              orphan_leg, orphan_txn, orphan_txn)
                   ELSE format('journal transaction %s was %s%s', r.id, r.what,
                               CASE WHEN r.seal_id IS NULL THEN '' ELSE format(' (sealed in seal %s)', r.seal_id) END) END;
    RETURN NEXT;

    -- 3. sealed audit records against the audit log
    r := NULL;
    SELECT x.id, x.what, x.seal_id INTO r FROM (
        SELECT coalesce(sd.id, cur.id) AS id, sd.seal_id,
               CASE WHEN cur.id IS NULL THEN 'deleted'
                    WHEN sd.id IS NULL THEN 'inserted after sealing'
                    ELSE 'edited' END AS what
          FROM (SELECT u.id, se.id AS seal_id,
                       substring(se.audit_hashes FROM ((u.ord - 1) * 32 + 1)::int FOR 32) AS h
                  FROM wallet.audit_seal se, unnest(se.audit_ids) WITH ORDINALITY AS u(id, ord)) sd
          FULL JOIN (SELECT a.id, wallet.audit_hash(a) AS h FROM wallet.audit_log a WHERE a.id <= a_max) cur
            ON cur.id = sd.id
         WHERE sd.h IS DISTINCT FROM cur.h) x
     ORDER BY x.id LIMIT 1;
    check_name := 'audit_records'; ok := r IS NULL;
    detail := CASE WHEN ok THEN format('sealed audit log intact through record %s', a_max)
                   ELSE format('audit record %s was %s%s', r.id, r.what,
                               CASE WHEN r.seal_id IS NULL THEN '' ELSE format(' (sealed in seal %s)', r.seal_id) END) END;
    RETURN NEXT;

    -- 4. the ledger's own rows against their latest audit records (1.4.0).
    --    Accounts (their audited columns: the balance columns are sums of
    --    the sealed journal, which verify() checks), holds, custom
    --    currencies and the live configuration must be what the last
    --    audit record of each row says; every such row has a record, and a
    --    row whose last record deletes it does not exist.  So an edit,
    --    insert or delete made with triggers disabled shows here, and once
    --    the records are sealed they cannot be made to agree unnoticed.
    --    Records are compared as typed values (jsonb_populate_record), so
    --    the writer's time zone or output settings do not matter; columns
    --    a record lacks (added by a later version) are not compared.  The
    --    live configuration's first INSERT had no record before 1.3.0: a
    --    configuration without any record is let pass.  So is an account
    --    without any that may not go negative (accounts bulk-loaded with
    --    INSERT outside the API have none; money reaches such an account
    --    only through the sealed journal, from accounts that had it); one
    --    allowed to go negative could create money, and is reported, as is
    --    a hold or a currency without a record.
    r := NULL;
    FOR tbl IN SELECT v.rel, v.keycol, v.skip FROM (VALUES
                   (1, 'wallet.account'::regclass, 'id', ARRAY['balance', 'held', 'version', 'forced_negative']),
                   (2, 'wallet.hold'::regclass, 'id', ARRAY[]::text[]),
                   (3, 'wallet.custom_currencies'::regclass, 'code', ARRAY[]::text[]),
                   (4, 'wallet.live_config'::regclass, 'singleton', ARRAY[]::text[])) AS v(ord, rel, keycol, skip)
                ORDER BY v.ord LOOP
        -- jsonb columns as jsonb: a record shows SQL NULL and JSON null alike
        -- (null), and populating would turn a stored JSON null into NULL
        SELECT string_agg(CASE WHEN att.atttypid = 'jsonb'::regtype
                               THEN format('CASE WHEN l.rec ? %L AND (l.rec -> %L) IS DISTINCT FROM coalesce(to_jsonb(c.%I), ''null''::jsonb) THEN %L END',
                                           att.attname, att.attname, att.attname, att.attname)
                               ELSE format('CASE WHEN l.rec ? %L AND (p.r).%I IS DISTINCT FROM c.%I THEN %L END',
                                           att.attname, att.attname, att.attname, att.attname) END,
                          ', ' ORDER BY att.attnum)
          INTO cols
          FROM pg_attribute att
         WHERE att.attrelid = tbl.rel AND att.attnum > 0 AND NOT att.attisdropped
           AND att.attname <> ALL (tbl.skip);
        SELECT format_type(att.atttypid, att.atttypmod) INTO keytype
          FROM pg_attribute att WHERE att.attrelid = tbl.rel AND att.attname = tbl.keycol;
        EXECUTE format($q$
            SELECT coalesce(c.%1$I, l.key)::text AS key, l.audit_id,
                   CASE WHEN c.%1$I IS NULL THEN 'was deleted'
                        WHEN l.audit_id IS NULL THEN 'has no audit record'
                        WHEN l.operation = 'DELETE' THEN 'exists, though its last audit record deletes it'
                        ELSE 'differs from its last audit record in ' || d.cols END AS what
              FROM (SELECT DISTINCT ON (k.key) k.key, a.id AS audit_id, a.operation,
                           coalesce(a.new_row, a.old_row) AS rec
                      FROM wallet.audit_log a
                     CROSS JOIN LATERAL (SELECT (coalesce(a.new_row, a.old_row) ->> %2$L)::%3$s AS key) k
                     WHERE a.relation = %4$L AND a.operation IN ('INSERT', 'UPDATE', 'DELETE')
                     ORDER BY k.key, a.id DESC) l
              FULL JOIN %5$s c ON c.%1$I = l.key
             CROSS JOIN LATERAL (SELECT jsonb_populate_record(NULL::%5$s, l.rec) AS r OFFSET 0) p  -- once per row
             CROSS JOIN LATERAL (SELECT concat_ws(', ', %6$s) AS cols) d
             WHERE (c.%1$I IS NULL AND l.operation <> 'DELETE')
                OR (l.audit_id IS NULL AND %4$L <> 'wallet.live_config'
                    AND (%4$L <> 'wallet.account' OR (to_jsonb(c) ->> 'allow_negative')::boolean))
                OR (c.%1$I IS NOT NULL AND l.operation = 'DELETE')
                OR (c.%1$I IS NOT NULL AND l.operation <> 'DELETE' AND d.cols <> '')
             ORDER BY coalesce(c.%1$I, l.key)
             LIMIT 1 $q$,
            tbl.keycol, tbl.keycol, keytype, tbl.rel::text, tbl.rel::text, cols)
          INTO r;
        IF r.what IS NOT NULL THEN
            detail := format('%s %s %s%s', tbl.rel::text, r.key, r.what,
                             CASE WHEN r.audit_id IS NULL THEN ''
                                  ELSE format(' (audit record %s%s)', r.audit_id,
                                              coalesce((SELECT format(', sealed in seal %s', min(se.id))
                                                          FROM wallet.audit_seal se WHERE se.audit_through >= r.audit_id
                                                        HAVING min(se.id) IS NOT NULL), '')) END);
            EXIT;
        END IF;
    END LOOP;
    check_name := 'ledger_rows'; ok := r.what IS NULL;
    IF ok THEN
        detail := 'accounts, holds, currencies and the live configuration match their latest audit records';
    END IF;
    RETURN NEXT;

    -- 5. the head kept outside, if given
    IF known_head IS NOT NULL THEN
        check_name := 'known_head';
        ok := EXISTS (SELECT 1 FROM wallet.audit_seal se WHERE se.head = decode(known_head, 'hex'))
              OR decode(known_head, 'hex') = wallet.genesis_head();
        detail := CASE WHEN ok THEN 'the given head is in the chain'
                       ELSE 'the given head is not in the chain: sealed history was rewritten' END;
        RETURN NEXT;
    END IF;

    -- 6. what is not sealed yet (information)
    check_name := 'unsealed'; ok := true;
    detail := format('%s journal transactions and %s audit records not sealed yet',
                     (SELECT count(*) FROM wallet.txn t WHERE t.id > j_max),
                     (SELECT count(*) FROM wallet.audit_log a WHERE a.id > a_max));
    RETURN NEXT;
END
$$;

-- ---- housekeeping ----

-- Is a restore loading this database?  True while a superuser's
-- pg_restore session (its application_name, unless PGAPPNAME overrides
-- it) is connected to it, or while anything runs COPY FROM into a table of
-- schema wallet (only a superuser may).  Only a superuser's session
-- counts: restoring the extension takes one, and any role may name its
-- session pg_restore.  pg_restore -j sets the sequences while other
-- connections still load the tables, so a seal or a history pass then
-- would cover ids it cannot see yet (audit_verify() would fail for good).
-- The same test as the background worker's (src/worker.c,
-- restore_running); pg_stat_progress_copy exists from PostgreSQL 14 on.
-- Internal: called by housekeeping(), whose owner sees every session.
CREATE OR REPLACE FUNCTION wallet.restore_in_progress() RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    copying boolean := false;
BEGIN
    IF to_regclass('pg_catalog.pg_stat_progress_copy') IS NOT NULL THEN
        EXECUTE $q$SELECT EXISTS (SELECT 1 FROM pg_stat_progress_copy p JOIN pg_class c ON c.oid = p.relid
                                   WHERE p.datname = current_database() AND p.command = 'COPY FROM'
                                     AND c.relnamespace = 'wallet'::regnamespace)$q$ INTO copying;
    END IF;
    RETURN copying
        OR EXISTS (SELECT 1 FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
                    WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
                      AND a.application_name = 'pg_restore' AND r.rolsuper);
END
$$;
REVOKE ALL ON FUNCTION wallet.restore_in_progress() FROM PUBLIC;

-- Every table of the ledger is at or below its id sequence: false while a
-- restore has loaded rows but not yet set the sequences (a plain-format
-- dump replayed by psql, between its COPY and its setval), or after a
-- sequence was set back by hand.  The housekeeping worker's own test
-- (src/worker.c), for housekeeping() from cron (1.6.0; found by a review:
-- an expiry then drew an audit id the restore was about to load).
CREATE OR REPLACE FUNCTION wallet.ledger_settled() RETURNS boolean
    AS 'MODULE_PATHNAME', 'wallet_ledger_settled' LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION wallet.ledger_settled() FROM PUBLIC;

-- Housekeeping for cron when the library is not preloaded: seals the
-- chain, files the journal per account, expires holds, folds hot accounts.
-- Returns a summary.  Call it in a transaction of its own (autocommit):
-- seal() and index_history() wait for writers in flight.  They come first,
-- while this transaction holds no row lock: after expire_holds() or
-- fold_hot() had locked an account, a posting waiting for that account
-- while seal() waited for the posting was a deadlock (1.3.0).  Then holds
-- expire, their accounts locked in ascending order; the folds come last
-- and never wait long: the hot accounts no posting holds are folded at
-- once, the others with a short wait each, 100 ms in all (at most half of
-- deadlock_timeout), and what is still busy then is left to the next call (folding
-- after expiring, waiting for hot rows in a second ascending pass while
-- holding the first's, was a deadlock with a posting that locked a hot
-- account and then one of those: 1.4.0).  The result's
-- "hot_accounts_busy" counts those left.  Expiries and folds of this call are sealed by the next
-- one.  (The background worker runs the steps in separate transactions.)
-- While a restore is loading the database (restore_in_progress) it does
-- nothing and returns {"skipped": "restore in progress"}, and while a
-- table of the ledger is ahead of its sequence (ledger_settled) {"skipped":
-- "ledger ahead of its sequences"} (1.6.0).  Outside READ COMMITTED it
-- refuses at once (25000, with the setting to change: a database default
-- of SERIALIZABLE).  A writer that sits in its transaction holds sealing
-- and filing back; it does not hold back expiry and folds: each of the two
-- waits at most 2 s (or the caller's shorter lock_timeout, or a quarter of
-- its statement_timeout), and what it could not do (also after a deadlock)
-- is left to the next call ("journal_busy": true) (1.6.0;
-- before, the call waited for that writer, or failed at the caller's
-- timeout, with every hold and fold left undone).
CREATE OR REPLACE FUNCTION wallet.housekeeping() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    expired int;
    folded bigint;
    sealed bigint;
    indexed bigint;
    acc bigint;
    done bigint[] := '{}';   -- folded by the first pass
    skipped int := 0;
    saved_timeout text;
    wait_budget text;
    busy boolean := false;
    budget interval;
    deadline timestamptz;
BEGIN
    IF wallet.restore_in_progress() THEN
        RAISE NOTICE 'wallet.housekeeping: skipped, a restore is loading this database'
            USING DETAIL = 'A superuser''s pg_restore session is connected to it, or a COPY into a table of schema wallet is running.',
                  HINT = 'Call it again once the restore has finished.';
        RETURN jsonb_build_object('skipped', 'restore in progress');
    END IF;
    IF NOT wallet.ledger_settled() THEN
        RAISE NOTICE 'wallet.housekeeping: skipped, a table of the ledger is ahead of its id sequence'
            USING DETAIL = 'A restore that has loaded the data but not yet set the sequences, or a sequence set back by hand.',
                  HINT = 'Call it again once the sequences are at or past the tables'' ids.';
        RETURN jsonb_build_object('skipped', 'ledger ahead of its sequences');
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'wallet.housekeeping() must run in a READ COMMITTED transaction'
            USING ERRCODE = '25000',
                  DETAIL = format('This transaction is %s; sealing and filing must see what the writers they waited for committed.',
                                  upper(current_setting('transaction_isolation'))),
                  HINT = 'Call it in a transaction of its own; where the database or role default is another level, SET default_transaction_isolation = ''read committed'' in the cron job first.';
    END IF;
    -- the wait budget: 2 s, or less under the caller's lock_timeout, or
    -- a quarter of its statement_timeout (two waits, then the rest)
    saved_timeout := current_setting('lock_timeout');
    SELECT min(b) INTO budget
      FROM (VALUES (interval '2 s'),
                   (nullif(saved_timeout::interval, interval '0')),
                   (nullif(current_setting('statement_timeout')::interval, interval '0') / 4)) AS v(b);
    wait_budget := greatest(ceil(extract(epoch FROM budget) * 1000), 1)::bigint || 'ms';
    -- each in a subtransaction: a lock wait given up, or a deadlock (a
    -- writer calling seal() inside its own transaction while the filing
    -- waits for it, holding the seal table's lock that seal() took),
    -- rolls that step back and leaves it to the next call
    BEGIN
        PERFORM set_config('lock_timeout', wait_budget, true);
        sealed := wallet.seal();
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        sealed := 0;
        busy := true;
    END;
    BEGIN
        PERFORM set_config('lock_timeout', wait_budget, true);
        indexed := wallet.index_history();
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        indexed := 0;
        busy := true;
    END;
    PERFORM set_config('lock_timeout', saved_timeout, true);
    expired := wallet.expire_holds();
    folded := 0;
    FOR acc IN SELECT a.id FROM wallet.account a
                WHERE a.id IN (SELECT p.account_id FROM wallet.hot_pending p)
                ORDER BY a.id
                FOR NO KEY UPDATE SKIP LOCKED LOOP
        folded := folded + wallet.fold_hot(acc);
        done := done || acc;
    END LOOP;
    -- A hot account that is also debited is locked most of the time, but
    -- each posting holds it for a moment: the ones skipped get a short wait
    -- each (10 ms), in a subtransaction of their own, for 100 ms in all
    -- (never more than a tenth and half of deadlock_timeout).  If a
    -- posting waits for a row this call holds while this call waits for
    -- it, this call gives up first (lock_not_available) and the posting
    -- goes on: its deadlock check, at deadlock_timeout, finds no cycle.
    -- What is still locked after that is folded next time.
    saved_timeout := current_setting('lock_timeout');
    budget := least(current_setting('deadlock_timeout')::interval / 2, interval '100 ms');
    deadline := clock_timestamp() + budget;
    PERFORM set_config('lock_timeout', greatest(extract(epoch FROM budget) * 100, 1)::int || 'ms', true);
    FOR acc IN SELECT DISTINCT p.account_id FROM wallet.hot_pending p
                WHERE p.account_id <> ALL (done) ORDER BY 1 LOOP
        IF clock_timestamp() >= deadline THEN
            skipped := skipped + 1;
            CONTINUE;
        END IF;
        BEGIN
            folded := folded + wallet.fold_hot(acc);
        EXCEPTION WHEN lock_not_available THEN
            skipped := skipped + 1;
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', saved_timeout, true);
    RETURN jsonb_build_object('expired_holds', expired, 'folded_credits', folded, 'sealed_records', sealed,
                              'indexed_entries', indexed, 'hot_accounts_busy', skipped, 'journal_busy', busy);
END
$$;


-- ============================================================================
-- wallet.accounts: figures outside 64-bit minor units are NULL for that
-- account instead of failing the view for every reader.  CREATE OR REPLACE
-- keeps the view's owner and rights (same columns, same types).
-- ============================================================================
-- A figure outside 64-bit minor units (only at the extreme bounds of
-- "Overflow" in the README) is NULL for that account instead of failing
-- the view for every reader (1.6.0).  The common case (no pending rows, no
-- hold, no debt) reads the stored balance as it is; the others are added
-- in numeric.
CREATE OR REPLACE VIEW wallet.accounts AS
SELECT a.id, a.owner, a.currency, a.kind, a.allow_negative, a.status, a.hot,
       CASE WHEN p.pending IS NULL THEN wallet.amount(a.balance, a.currency)
            WHEN a.balance + p.pending BETWEEN -9223372036854775808 AND 9223372036854775807
            THEN wallet.amount((a.balance + p.pending)::bigint, a.currency) END AS balance,
       CASE WHEN p.pending IS NULL AND a.held = 0 AND coalesce(d.balance, 0) >= 0
            THEN wallet.amount(a.balance, a.currency)
            WHEN f.available BETWEEN -9223372036854775808 AND 9223372036854775807
            THEN wallet.amount(f.available::bigint, a.currency) END AS available,
       wallet.amount(a.held, a.currency) AS held,
       CASE WHEN coalesce(d.balance, 0) >= 0 THEN wallet.amount(0::bigint, a.currency)
            WHEN d.balance > -9223372036854775808 THEN wallet.amount(-d.balance, a.currency) END AS debt,
       a.version, a.metadata, a.created_at
  FROM wallet.account a
  LEFT JOIN LATERAL (SELECT sum(h.amount) AS pending FROM wallet.hot_pending h
                      WHERE h.account_id = a.id) p ON true
  LEFT JOIN wallet.account d ON d.id = a.debt_account
  CROSS JOIN LATERAL (SELECT a.balance::numeric + coalesce(p.pending, 0) - a.held
                             + coalesce(least(d.balance, 0), 0) AS available) f;

SELECT wallet.set_hot(a.id, false) FROM wallet.account a WHERE a.kind = 'debt' AND a.hot ORDER BY a.id;

-- ============================================================================
-- wallet.audit_trail: temporary tables' records never follow their name
-- (PostgreSQL hands a temporary schema's name, pg_temp_N, to the next
-- session in that slot by itself, and a reader creating a table of the
-- same name there read another role's records; found by a review).
-- CREATE OR REPLACE keeps the view's owner, rights and comment.
-- ============================================================================
CREATE OR REPLACE VIEW wallet.audit_trail WITH (security_barrier) AS
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

-- ============================================================================
-- wallet.pending_credits(bigint) is gone: its last caller, close_account(),
-- sums the pending rows in numeric (bigint failed past 64 bits).  Internal,
-- never granted.
-- ============================================================================
DROP FUNCTION wallet.pending_credits(bigint);
