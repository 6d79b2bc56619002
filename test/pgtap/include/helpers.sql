-- test/pgtap/include/helpers.sql: helpers the contract and review suites
-- share (\ir from each file; pg_prove runs every file through psql).  They
-- live in pg_temp, so they go with the session.
-- state(q): 'ok', or the SQLSTATE q raised
CREATE FUNCTION pg_temp.state(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
-- val(q): q's single value as text ('<null>' for NULL), or the SQLSTATE it raised
CREATE FUNCTION pg_temp.val(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE q INTO r;
    RETURN coalesce(r, '<null>');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
-- err(q): 'ok', or the SQLSTATE followed by +detail / -detail (whether the error has a DETAIL)
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; det text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, det = PG_EXCEPTION_DETAIL;
    RETURN st || CASE WHEN coalesce(det, '') <> '' THEN ' +detail' ELSE ' -detail' END;
END
$$;
