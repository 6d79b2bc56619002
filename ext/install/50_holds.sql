-- ============================================================================
-- Holds (two-phase postings).  A hold reserves funds on from_account
-- (available drops, posted balance does not); it ends exactly once:
-- captured (all or part posted to to_account, the rest released), voided,
-- or expired.  Each of those locks the hold row first, so racing ends are
-- serialised and all but one get WL008.
-- ============================================================================

CREATE SEQUENCE wallet.hold_id_seq;
SELECT pg_catalog.pg_extension_config_dump('wallet.hold_id_seq', '');

CREATE TABLE wallet.hold (
    id              bigint PRIMARY KEY DEFAULT nextval('wallet.hold_id_seq'),
    idempotency_key text COLLATE "C" NOT NULL UNIQUE,  -- byte for byte, like wallet.txn's
    request_hash    bytea NOT NULL,
    from_account    bigint NOT NULL,
    to_account      bigint NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        text NOT NULL,
    kind            text NOT NULL,
    metadata        jsonb,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'captured', 'voided', 'expired')),
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    captured        bigint,
    capture_txn     bigint
);
ALTER SEQUENCE wallet.hold_id_seq OWNED BY wallet.hold.id;
CREATE INDEX hold_pending_expiry_idx ON wallet.hold (expires_at) WHERE status = 'pending';
CREATE INDEX hold_from_idx ON wallet.hold (from_account) WHERE status = 'pending';
CREATE INDEX hold_to_idx ON wallet.hold (to_account) WHERE status = 'pending';
SELECT pg_catalog.pg_extension_config_dump('wallet.hold', '');

-- A hold row changes once, from pending to its end state, and only its
-- status, ended_at, captured and capture_txn; it is never deleted.
CREATE FUNCTION wallet.hold_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = 'pending' AND NEW.status <> 'pending'
       AND (NEW.id, NEW.idempotency_key, NEW.request_hash, NEW.from_account, NEW.to_account,
            NEW.amount, NEW.currency, NEW.kind, NEW.metadata, NEW.expires_at, NEW.created_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.idempotency_key, OLD.request_hash, OLD.from_account, OLD.to_account,
            OLD.amount, OLD.currency, OLD.kind, OLD.metadata, OLD.expires_at, OLD.created_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% of wallet.hold is not allowed: a hold only ends once, from pending', TG_OP
        USING ERRCODE = 'WL013',
              DETAIL = format('Hold %s is %s.', OLD.id, OLD.status),
              HINT = 'Use wallet.capture(), wallet.void() or wallet.expire_holds().';
END
$$;
CREATE TRIGGER hold_append_only BEFORE UPDATE OR DELETE ON wallet.hold
    FOR EACH ROW EXECUTE FUNCTION wallet.hold_guard();
CREATE TRIGGER hold_no_truncate BEFORE TRUNCATE ON wallet.hold
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();

-- Reserves `amount` on from_account for a later capture to to_account.
-- Returns the hold id; idempotent by key like wallet.transfer (holds have
-- their own key space).  Errors as wallet.transfer; a user's debt account
-- as to_account is 22023 (library 1.6.0: it never holds coins, so the
-- capture could only be refused).
CREATE FUNCTION wallet.hold(from_account bigint, to_account bigint, amount wallet.amount,
                            idempotency_key text, expires_at timestamptz DEFAULT NULL,
                            kind text DEFAULT 'hold', metadata jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_hold'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Posts all (amount NULL) or part of a pending hold to its to_account and
-- releases the rest.  Returns the transaction id.  WL008 if the hold is not
-- pending (captured, voided, expired, or past expires_at); WL014 unknown
-- hold; 22023 amount not in (0, held amount]; WL002 other currency.
CREATE FUNCTION wallet.capture(hold_id bigint, amount wallet.amount DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_capture'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Releases a pending hold.  WL008 if it is not pending; WL014 unknown hold.
CREATE FUNCTION wallet.void(hold_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'wallet_void'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Releases every pending hold whose expires_at has passed; returns how
-- many.  Holds being captured or voided right now are skipped (SKIP
-- LOCKED) and left to their own end; accounts are locked in ascending id
-- order before any is changed.
CREATE FUNCTION wallet.expire_holds()
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ids bigint[];
BEGIN
    SELECT array_agg(id ORDER BY id) INTO ids
      FROM (SELECT h.id FROM wallet.hold h
             WHERE h.status = 'pending' AND h.expires_at <= now()
             ORDER BY h.id
             FOR UPDATE SKIP LOCKED
             LIMIT 100000) s;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM wallet.account a
     WHERE a.id IN (SELECT h.from_account FROM wallet.hold h WHERE h.id = ANY (ids))
     ORDER BY a.id
     FOR NO KEY UPDATE;
    UPDATE wallet.account a SET held = a.held - s.total, version = a.version + 1
      FROM (SELECT h.from_account, sum(h.amount)::bigint AS total
              FROM wallet.hold h WHERE h.id = ANY (ids) GROUP BY h.from_account) s
     WHERE a.id = s.from_account;
    UPDATE wallet.hold h SET status = 'expired', ended_at = now() WHERE h.id = ANY (ids);
    RETURN cardinality(ids);
END
$$;

CREATE VIEW wallet.holds AS
SELECT h.id, h.idempotency_key, h.from_account, h.to_account,
       wallet.amount(h.amount, h.currency) AS amount, h.kind, h.metadata, h.status,
       h.expires_at, h.created_at, h.ended_at,
       CASE WHEN h.captured IS NOT NULL THEN wallet.amount(h.captured, h.currency) END AS captured,
       h.capture_txn
  FROM wallet.hold h;
