-- ============================================================================
-- Audit trail and tamper evidence.
--
-- wallet.audit_log: one row per audited change (append-only).  The ledger's
-- own changes are recorded too: account and hold updates by trigger,
-- account/hold/currency creation by the API itself (a restore replays rows
-- with COPY and must not record them twice); transactions and entries are
-- their own record (the journal, append-only).
--
-- Sealing: wallet.seal() hashes every journal transaction (with its
-- entries) and every audit record up to a safe horizon (see src/audit.c)
-- with SHA-256 and appends a seal row whose head chains to the previous
-- one.  wallet.digest() seals and returns the head to keep outside the
-- database; wallet.audit_verify() recomputes everything and names the
-- first sealed record edited, deleted or inserted.
-- ============================================================================

CREATE SEQUENCE wallet.audit_log_id_seq;
SELECT pg_catalog.pg_extension_config_dump('wallet.audit_log_id_seq', '');

CREATE TABLE wallet.audit_log (
    id               bigint PRIMARY KEY DEFAULT nextval('wallet.audit_log_id_seq'),
    relation         text NOT NULL,
    operation        text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    old_row          jsonb,
    new_row          jsonb,
    changed_columns  text[],
    txid             bigint NOT NULL,
    at               timestamptz NOT NULL,
    db_user          text NOT NULL,
    application_name text,
    client_addr      inet,
    actor            text
);
ALTER SEQUENCE wallet.audit_log_id_seq OWNED BY wallet.audit_log.id;
CREATE INDEX audit_log_relation_idx ON wallet.audit_log (relation, id);
SELECT pg_catalog.pg_extension_config_dump('wallet.audit_log', '');

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON wallet.audit_log
    FOR EACH ROW EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON wallet.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();

-- The generic audit trigger (C).  It runs as the role making the change
-- (turning the row into jsonb can run that role's own casts) and writes
-- the log, which that role cannot, as the log's owner for that one INSERT
-- (src/audit.c).  Until 1.3.0 it was SECURITY DEFINER, and a cast to json
-- that a role defined for its own column type then ran as the owner.
-- Rows are rendered with fixed output settings (DateStyle ISO,
-- IntervalStyle postgres, extra_float_digits >= 1, bytea_output hex,
-- TimeZone UTC), whatever the session's: a record does not depend on the
-- session that wrote it (library 1.4.0; earlier records carry the
-- writer's settings).
CREATE FUNCTION wallet.audit() RETURNS trigger
    AS 'MODULE_PATHNAME', 'wallet_audit'
    LANGUAGE C SET search_path = pg_catalog, pg_temp;

-- An audit record written by the API (internal).
CREATE FUNCTION wallet.audit_row(relation text, operation text, old_row jsonb, new_row jsonb)
RETURNS void
    AS 'MODULE_PATHNAME', 'wallet_audit_row'
    LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION wallet.audit_row(text, text, jsonb, jsonb) FROM PUBLIC;

-- A row as the audit trigger records it: to_jsonb with the trigger's fixed
-- output settings, for the records the API writes itself (internal, 1.4.0).
CREATE FUNCTION wallet.audit_jsonb(anyelement) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'wallet_audit_jsonb'
    LANGUAGE C STABLE STRICT;
REVOKE ALL ON FUNCTION wallet.audit_jsonb(anyelement) FROM PUBLIC;

-- Attaches wallet.audit() to a table and to every partition or inheritance
-- child below it: every INSERT, UPDATE, DELETE (row) and TRUNCATE
-- (statement) lands in wallet.audit_log.  Call it again after adding a
-- partition or child; it adds only what is missing.  Runs with the
-- caller's rights: only who may create triggers on the table can call it.
-- Idempotent.  The table name is a regclass, never spliced as text.
-- Errors: no such table 42P01; a table of schema wallet 22023 (the
-- ledger's tables are audited by the extension itself, and auditing the
-- audit log would record its own records without end).
CREATE FUNCTION wallet.audit_table(target regclass) RETURNS void
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

-- The ledger's own tables.  Balance columns are not audited row by row:
-- every balance change is exactly one entry in the sealed journal.
CREATE TRIGGER account_audit
    AFTER UPDATE OF owner, currency, kind, allow_negative, status, hot, metadata, debt_account
    ON wallet.account FOR EACH ROW EXECUTE FUNCTION wallet.audit();
CREATE TRIGGER hold_audit AFTER UPDATE ON wallet.hold
    FOR EACH ROW EXECUTE FUNCTION wallet.audit();
CREATE TRIGGER custom_currencies_audit AFTER UPDATE OR DELETE ON wallet.custom_currencies
    FOR EACH ROW EXECUTE FUNCTION wallet.audit();
CREATE TRIGGER live_config_audit AFTER UPDATE OR DELETE ON wallet.live_config
    FOR EACH ROW EXECUTE FUNCTION wallet.audit();
-- wallet.live_setup() changes the live configuration, audited; a TRUNCATE
-- would go unrecorded (1.3.0).
CREATE TRIGGER live_config_no_truncate BEFORE TRUNCATE ON wallet.live_config
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();

-- ---- sealing ----

CREATE SEQUENCE wallet.audit_seal_id_seq;
SELECT pg_catalog.pg_extension_config_dump('wallet.audit_seal_id_seq', '');

-- One row per seal: the ids and SHA-256 hashes of the records it covers
-- (32 bytes per record, in id order), the horizons (every id at or below
-- them existed or never will), and the chained head.
CREATE TABLE wallet.audit_seal (
    id              bigint PRIMARY KEY DEFAULT nextval('wallet.audit_seal_id_seq'),
    journal_through bigint NOT NULL,
    audit_through   bigint NOT NULL,
    journal_ids     bigint[] NOT NULL,
    journal_hashes  bytea NOT NULL,
    audit_ids       bigint[] NOT NULL,
    audit_hashes    bytea NOT NULL,
    prev_head       bytea NOT NULL,
    head            bytea NOT NULL,
    sealed_at       timestamptz NOT NULL DEFAULT now()
);
-- The id lists and hash strings are stored uncompressed: hashes do not
-- compress, and trying (pglz) was 15 % of the sealer's time.
ALTER TABLE wallet.audit_seal
    ALTER COLUMN journal_ids SET STORAGE EXTERNAL,
    ALTER COLUMN journal_hashes SET STORAGE EXTERNAL,
    ALTER COLUMN audit_ids SET STORAGE EXTERNAL,
    ALTER COLUMN audit_hashes SET STORAGE EXTERNAL;
ALTER SEQUENCE wallet.audit_seal_id_seq OWNED BY wallet.audit_seal.id;
SELECT pg_catalog.pg_extension_config_dump('wallet.audit_seal', '');
CREATE TRIGGER audit_seal_append_only BEFORE UPDATE OR DELETE ON wallet.audit_seal
    FOR EACH ROW EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER audit_seal_no_truncate BEFORE TRUNCATE ON wallet.audit_seal
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();

CREATE FUNCTION wallet.wait_for_writers() RETURNS void
    AS 'MODULE_PATHNAME', 'wallet_wait_for_writers' LANGUAGE C;
REVOKE ALL ON FUNCTION wallet.wait_for_writers() FROM PUBLIC;

-- SHA-256 of every journal transaction (with its entries) in an id range,
-- computed in C over a canonical byte string independent of session
-- settings (see src/audit.c).  Used by seal() and audit_verify() alike.
CREATE FUNCTION wallet.journal_hashes(after bigint, upto bigint)
RETURNS TABLE (id bigint, hash bytea)
    AS 'MODULE_PATHNAME', 'wallet_journal_hashes'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION wallet.journal_hashes(bigint, bigint) FROM PUBLIC;

-- What seal() stores for the next chunk: the ids of at most max_records
-- transactions after `after` and up to `upto`, their hashes (as
-- journal_hashes computes them, 32 bytes each, concatenated) and how far
-- the chunk covers (upto when the range held fewer, else the last id).
CREATE FUNCTION wallet.journal_chunk(after bigint, upto bigint, max_records int,
                                     OUT through bigint, OUT ids bigint[], OUT hashes bytea)
    AS 'MODULE_PATHNAME', 'wallet_journal_chunk'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION wallet.journal_chunk(bigint, bigint, int) FROM PUBLIC;

-- SHA-256 of an audit record over a canonical text (every field quoted or
-- NULL, times in UTC microseconds, jsonb's normalised text).  Every value
-- a field can hold has its own text: a time before year 1 ends in " BC",
-- an infinite one is spelled out, an address keeps a netmask shorter
-- than the host's (1.3.0; records as the API writes them, AD times and
-- host addresses, hash as before, so existing seals stay valid).  The text
-- is hashed as UTF-8, or as stored in a SQL_ASCII database (1.6.0).
CREATE FUNCTION wallet.audit_hash(a wallet.audit_log) RETURNS bytea
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

-- Head of a seal from its content and the previous head.
CREATE FUNCTION wallet.seal_head(prev_head bytea, journal_through bigint, audit_through bigint,
                                 journal_ids bigint[], journal_hashes bytea,
                                 audit_ids bigint[], audit_hashes bytea)
RETURNS bytea
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sha256(prev_head
                  || convert_to(format('seal|%s|%s|%s|%s', journal_through, audit_through,
                                       array_to_string(journal_ids, ','), array_to_string(audit_ids, ',')), 'UTF8')
                  || journal_hashes || audit_hashes)
$$;

CREATE FUNCTION wallet.genesis_head() RETURNS bytea
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sha256(convert_to('wallet genesis', 'UTF8')) $$;

-- Seals every journal transaction and audit record up to the given
-- horizons that is not sealed yet, in seals of at most 10,000 of each; at
-- most max_seals seals (NULL: as many as needed).  The caller has waited
-- for every writer that could still commit an id at or below the horizons
-- (seal() does; the background worker does it once, holding no snapshot,
-- then calls this in short transactions so that it never holds back the
-- cleanup of other tables' dead rows for long).  Concurrent sealers queue
-- on the seal table.  Returns how many records it sealed.  Errors: 22004
-- null horizon; 22023 a horizon past the last id its sequence has drawn.
CREATE FUNCTION wallet.seal_range(j_to bigint, a_to bigint, max_seals int DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last wallet.audit_seal;
    prev bytea;
    j_from bigint;
    a_from bigint;
    j_ids bigint[];
    j_hashes bytea;
    a_ids bigint[];
    a_hashes bytea;
    j_through bigint;
    a_through bigint;
    total bigint := 0;
    seals int := 0;
    chunk constant int := 10000;
    j_upto bigint;
    j_drawn bigint;
    a_drawn bigint;
BEGIN
    IF j_to IS NULL OR a_to IS NULL THEN
        RAISE EXCEPTION 'wallet.seal_range: the horizons must not be null' USING ERRCODE = '22004',
            DETAIL = format('j_to %s, a_to %s.', coalesce(j_to::text, 'NULL'), coalesce(a_to::text, 'NULL'));
    END IF;
    -- a horizon past the ids drawn would seal ids not drawn yet: the
    -- postings that later take them would read as inserted after sealing
    SELECT CASE WHEN q.is_called THEN q.last_value ELSE q.last_value - 1 END INTO j_drawn FROM wallet.txn_id_seq q;
    SELECT CASE WHEN q.is_called THEN q.last_value ELSE q.last_value - 1 END INTO a_drawn FROM wallet.audit_log_id_seq q;
    IF j_to > j_drawn OR a_to > a_drawn THEN
        RAISE EXCEPTION 'wallet.seal_range: a horizon is beyond the last id drawn' USING ERRCODE = '22023',
            DETAIL = format('j_to %s (transaction ids drawn up to %s), a_to %s (audit ids drawn up to %s).',
                            j_to, j_drawn, a_to, a_drawn),
            HINT = 'Read the horizons from the sequences, as wallet.seal() does.';
    END IF;
    -- ids cached by a session (sequence CACHE > 1) are drawn without the
    -- writer lock and could land below a sealed horizon
    IF EXISTS (SELECT 1 FROM pg_sequence s
                WHERE s.seqrelid IN ('wallet.txn_id_seq'::regclass, 'wallet.audit_log_id_seq'::regclass)
                  AND s.seqcache > 1) THEN
        RAISE EXCEPTION 'wallet.seal() needs the journal''s sequences without a cache'
            USING ERRCODE = '55000',
                  DETAIL = 'wallet.txn_id_seq or wallet.audit_log_id_seq has CACHE > 1: a session could draw an id below the horizon later.',
                  HINT = 'ALTER SEQUENCE wallet.txn_id_seq CACHE 1; ALTER SEQUENCE wallet.audit_log_id_seq CACHE 1;';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'wallet.seal() must run in a READ COMMITTED transaction'
            USING ERRCODE = '25000',
                  DETAIL = format('This transaction is %s; the sealer must see what the writers it waited for committed.',
                                  upper(current_setting('transaction_isolation')));
    END IF;
    -- one sealer at a time; another may have sealed meanwhile
    LOCK TABLE wallet.audit_seal IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO last FROM wallet.audit_seal ORDER BY id DESC LIMIT 1;
    prev := coalesce(last.head, wallet.genesis_head());
    j_from := coalesce(last.journal_through, 0);
    a_from := coalesce(last.audit_through, 0);
    IF j_to <= j_from AND a_to <= a_from THEN
        RETURN 0;
    END IF;
    j_to := greatest(j_to, j_from);
    a_to := greatest(a_to, a_from);
    -- seal what exists up to the horizons, in chunks
    LOOP
        -- the next chunk of the journal: at most `chunk` transactions, with
        -- their hashes, and how far that covers (one pass, in C)
        SELECT c.through, c.ids, c.hashes INTO j_upto, j_ids, j_hashes
          FROM wallet.journal_chunk(j_from, j_to, chunk) c;
        SELECT coalesce(array_agg(s.id ORDER BY s.id), '{}'), coalesce(string_agg(s.h, ''::bytea ORDER BY s.id), '')
          INTO a_ids, a_hashes
          FROM (SELECT a.id, wallet.audit_hash(a) AS h FROM wallet.audit_log a
                 WHERE a.id > a_from AND a.id <= a_to ORDER BY a.id LIMIT chunk) s;
        j_through := greatest(j_upto, j_from);
        a_through := CASE WHEN cardinality(a_ids) = chunk THEN a_ids[chunk] ELSE greatest(a_to, a_from) END;
        INSERT INTO wallet.audit_seal (journal_through, audit_through, journal_ids, journal_hashes,
                                       audit_ids, audit_hashes, prev_head, head)
        VALUES (j_through, a_through, j_ids, j_hashes, a_ids, a_hashes, prev,
                wallet.seal_head(prev, j_through, a_through, j_ids, j_hashes, a_ids, a_hashes))
        RETURNING head INTO prev;
        total := total + cardinality(j_ids) + cardinality(a_ids);
        seals := seals + 1;
        j_from := j_through;
        a_from := a_through;
        EXIT WHEN (j_from >= j_to AND a_from >= a_to) OR seals = max_seals;
    END LOOP;
    RETURN total;
END
$$;
REVOKE ALL ON FUNCTION wallet.seal_range(bigint, bigint, int) FROM PUBLIC;

-- Seals every journal transaction and audit record that can no longer be
-- preceded by a running transaction; returns how many it sealed.  Waits
-- for writers in flight (honours lock_timeout).  Concurrent sealers queue
-- on the seal table; postings never wait for a sealer.  Must run in READ
-- COMMITTED (it needs to see what the writers it waited for committed).
CREATE FUNCTION wallet.seal() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j_to bigint;
    a_to bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'wallet.seal() must run in a READ COMMITTED transaction'
            USING ERRCODE = '25000',
                  DETAIL = format('This transaction is %s; the sealer must see what the writers it waited for committed.',
                                  upper(current_setting('transaction_isolation')));
    END IF;
    -- 1. the horizon: ids drawn so far ...
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO j_to FROM wallet.txn_id_seq;
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO a_to FROM wallet.audit_log_id_seq;
    -- 2. ... whose writers have all ended.  Wait before touching the seal
    --    table at all: a sealer waiting for writers while holding even a
    --    read lock on it would deadlock with a writer's transaction that
    --    seals, or that tries to change the seal table (which then fails
    --    with WL013 as it should, not with 40P01).  So "nothing new" is only
    --    decided after the wait; with no writer in flight it costs nothing.
    PERFORM wallet.wait_for_writers();
    -- 3. seal up to there
    RETURN wallet.seal_range(j_to, a_to);
END
$$;

-- Seals everything so far and returns the chain's head (hex).  Keep it
-- outside the database; wallet.audit_verify(head) later proves the sealed
-- history still leads to it.  Errors: 25000 outside READ COMMITTED (as
-- seal(), named digest() since library 1.6.0).
CREATE FUNCTION wallet.digest() RETURNS text
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
CREATE FUNCTION wallet.audit_verify(known_head text DEFAULT NULL)
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
CREATE FUNCTION wallet.restore_in_progress() RETURNS boolean
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
CREATE FUNCTION wallet.ledger_settled() RETURNS boolean
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
CREATE FUNCTION wallet.housekeeping() RETURNS jsonb
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
