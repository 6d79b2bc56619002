-- Shared helpers of the ledger_* regress files (included with \i from the
-- repository root, where pg_regress runs): see the comment at the top of
-- each file.  Each file drops schema lt at its end.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS lt CASCADE;
RESET client_min_messages;
CREATE SCHEMA lt;
SET search_path = lt, public;
CREATE TABLE lt.names (kind text, id bigint, name text, PRIMARY KEY (kind, id), UNIQUE (kind, name));
CREATE FUNCTION lt.reg(kind text, id bigint, name text) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO lt.names VALUES (kind, id, name) ON CONFLICT DO NOTHING;
    SELECT id;
$$;
CREATE FUNCTION lt.a(name text) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT n.id FROM lt.names n WHERE n.kind = 'a' AND n.name = a.name $$;
CREATE FUNCTION lt.t(name text) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT n.id FROM lt.names n WHERE n.kind = 't' AND n.name = t.name $$;
CREATE FUNCTION lt.h(name text) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT n.id FROM lt.names n WHERE n.kind = 'h' AND n.name = h.name $$;
-- replaces "account 12", "hold 3", "Transaction 7", "has id 12", "(12)" after
-- unfreeze_account by the registered names
CREATE FUNCTION lt.norm(s text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    m text[];
    k text;
    nm text;
BEGIN
    FOR m IN SELECT DISTINCT regexp_matches(s, '(account|Account|has id|unfreeze_account\(|hold|Hold|transaction|Transaction)( ?)(-?[0-9]+)', 'g') LOOP
        k := CASE WHEN m[1] IN ('hold', 'Hold') THEN 'h'
                  WHEN m[1] IN ('transaction', 'Transaction') THEN 't' ELSE 'a' END;
        SELECT n.name INTO nm FROM lt.names n WHERE n.kind = k AND n.id = m[3]::bigint;
        IF nm IS NOT NULL THEN
            s := regexp_replace(s, regexp_replace(m[1], '([()])', '\\\1', 'g') || m[2] || m[3] || '(?![0-9])',
                                m[1] || m[2] || '<' || nm || '>', 'g');
        END IF;
    END LOOP;
    RETURN s;
END
$$;
CREATE FUNCTION lt.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || lt.norm(SQLERRM);
END
$$;
CREATE FUNCTION lt.errd(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hint text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN st || ': ' || lt.norm(msg) || coalesce(E'\nDETAIL: ' || lt.norm(nullif(det, '')), '')
           || coalesce(E'\nHINT: ' || lt.norm(nullif(hint, '')), '');
END
$$;
-- state(q): only the SQLSTATE, or 'ok'
CREATE FUNCTION lt.state(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
