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
