-- ============================================================================
-- Ledger storage: accounts, the journal (transactions + entries), pending
-- credits of hot accounts.  Amounts are stored as bigint minor units; the
-- account's currency gives them meaning.  The read views further down show
-- them as wallet.amount.
--
-- Only the extension owner can write these tables; applications go through
-- the SECURITY DEFINER API functions (see wallet.grant_app).
-- ============================================================================

CREATE SEQUENCE wallet.account_id_seq;
CREATE SEQUENCE wallet.txn_id_seq;
SELECT pg_catalog.pg_extension_config_dump('wallet.account_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('wallet.txn_id_seq', '');

-- One row per account.  balance is the posted balance except, for hot
-- accounts, the credits still waiting in wallet.hot_pending; held is the sum
-- of pending holds debiting the account.
--
-- No CHECK constraints on the tables every posting writes: PostgreSQL
-- re-reads each constraint's expression for every statement (3-5 % of a
-- transfer), the API is the only writer and validates owner, kind, status
-- and amounts, and wallet.verify() checks status and held amounts.
CREATE TABLE wallet.account (
    id              bigint PRIMARY KEY DEFAULT nextval('wallet.account_id_seq'),
    owner           text NOT NULL,
    currency        text NOT NULL,
    kind            text NOT NULL DEFAULT 'user',
    allow_negative  boolean NOT NULL DEFAULT false,
    status          text NOT NULL DEFAULT 'active',
    hot             boolean NOT NULL DEFAULT false,
    balance         bigint NOT NULL DEFAULT 0,
    held            bigint NOT NULL DEFAULT 0,
    version         bigint NOT NULL DEFAULT 0,
    -- set when a forced posting (reversal or refund with allow_negative)
    -- took a non-negative account below zero; wallet.verify() accepts such a
    -- balance and reports it
    forced_negative boolean NOT NULL DEFAULT false,
    -- the account that records this account's debts (refund clawbacks)
    debt_account    bigint,
    metadata        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);   -- room on each page keeps balance updates HOT
ALTER SEQUENCE wallet.account_id_seq OWNED BY wallet.account.id;
CREATE INDEX account_owner_idx ON wallet.account (owner);
CREATE INDEX account_kind_idx ON wallet.account (kind) WHERE kind <> 'user';
SELECT pg_catalog.pg_extension_config_dump('wallet.account', '');

-- The journal: one row per posted transaction.  idempotency_key is unique
-- for ever and compared byte for byte (COLLATE "C", whatever the database's
-- collation: a key is an identifier, and its unique index is the hot path
-- of every posting; under en_US.UTF-8 strcoll took 10 % of a batch's CPU);
-- request_hash is the SHA-256 of the canonical request, so a
-- retry with the same key is recognised as the same request or refused.
-- reverses links a reversal to its original (unique: reversed at most once).
CREATE TABLE wallet.txn (
    id              bigint PRIMARY KEY DEFAULT nextval('wallet.txn_id_seq'),
    idempotency_key text COLLATE "C" NOT NULL CONSTRAINT txn_idempotency_key_key UNIQUE,  -- name used by batch.c
    kind            text NOT NULL,
    request_hash    bytea NOT NULL,
    metadata        jsonb,
    reverses        bigint,
    forced          boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE wallet.txn_id_seq OWNED BY wallet.txn.id;
-- created_at follows id closely: a BRIN index serves time ranges at almost
-- no cost per insert.
CREATE INDEX txn_created_at_idx ON wallet.txn USING brin (created_at);
-- A transaction is reversed at most once.  Partial: the few reversals get
-- an index entry, ordinary postings none.
CREATE UNIQUE INDEX txn_reverses_key ON wallet.txn (reverses) WHERE reverses IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('wallet.txn', '');

-- The legs of each transaction: signed minor units per account.  Sum per
-- transaction and currency is zero.
--
-- No foreign keys on purpose: an FK check takes a KEY SHARE lock on the
-- referenced row, which on a hot account (thousands of credits a second)
-- turns into multixact churn on one tuple and queues writers behind any
-- debit.  The engine only writes existing ids (accounts are never deleted,
-- the journal never changes) and wallet.verify() checks the references.
CREATE TABLE wallet.entry (
    txn_id      bigint NOT NULL,
    leg         smallint NOT NULL,
    account_id  bigint NOT NULL,
    amount      bigint NOT NULL,        -- never 0 (the engine refuses zero legs)
    -- appended in transaction order: inserts hit the rightmost leaf page
    PRIMARY KEY (txn_id, leg)
);
-- No index by account here: wallet.index_history() files entries per
-- account behind the postings (wallet.account_history, see
-- 35_history.sql), and wallet.account_entries reads them by account.
SELECT pg_catalog.pg_extension_config_dump('wallet.entry', '');

-- Postings to hot accounts that cannot overdraw them (credits, and debits of
-- accounts allowed to go negative) are posted (their entries exist) but
-- their amounts wait here instead of updating wallet.account.balance, so
-- they take no lock on the account row.  wallet.fold_hot() moves committed
-- rows into the balance; every balance read adds the rows still here.
CREATE TABLE wallet.hot_pending (
    account_id  bigint NOT NULL,
    txn_id      bigint NOT NULL,
    amount      bigint NOT NULL
);
CREATE INDEX hot_pending_account_idx ON wallet.hot_pending (account_id);
SELECT pg_catalog.pg_extension_config_dump('wallet.hot_pending', '');

-- ---- append-only history ----
-- UPDATE, DELETE and TRUNCATE of the journal fail for everyone, the owner
-- included.  (A superuser can still bypass triggers; wallet.audit_verify()
-- detects what that changed.)
CREATE FUNCTION wallet.forbid_change() RETURNS trigger
    AS 'MODULE_PATHNAME', 'wallet_forbid_change' LANGUAGE C;
CREATE TRIGGER txn_append_only BEFORE UPDATE OR DELETE ON wallet.txn
    FOR EACH ROW EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER txn_no_truncate BEFORE TRUNCATE ON wallet.txn
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER entry_append_only BEFORE UPDATE OR DELETE ON wallet.entry
    FOR EACH ROW EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER entry_no_truncate BEFORE TRUNCATE ON wallet.entry
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();
-- Accounts are never deleted (they close); their history is in the journal.
CREATE TRIGGER account_no_delete BEFORE DELETE ON wallet.account
    FOR EACH ROW EXECUTE FUNCTION wallet.forbid_change();
CREATE TRIGGER account_no_truncate BEFORE TRUNCATE ON wallet.account
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();
-- Pending hot credits are posted money: they leave only by folding
-- (wallet.fold_hot deletes committed rows as it adds them to the balance);
-- a TRUNCATE would lose them (1.3.0).
CREATE TRIGGER hot_pending_no_truncate BEFORE TRUNCATE ON wallet.hot_pending
    FOR EACH STATEMENT EXECUTE FUNCTION wallet.forbid_change();

-- ============================================================================
-- Accounts API
-- ============================================================================

-- Opens an account in a registered currency.  Returns its id.
-- Errors: unknown currency WL011, malformed currency 22P02, bad owner/kind 22023.
-- Kind 'debt' is reserved (22023, 1.6.0): the engine treats such an account
-- as a user's debt account (never closed, never hot, refused as a user by
-- the live flows), and only wallet.refund_recharge opens one, linked to its
-- user.
CREATE FUNCTION wallet.open_account(owner text, currency text, kind text DEFAULT 'user',
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

-- Raises the error for a missing account; returns the row otherwise.
CREATE FUNCTION wallet.account_row(id bigint) RETURNS wallet.account
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r wallet.account;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'account id must not be null' USING ERRCODE = '22004',
            DETAIL = 'The account argument is null.';
    END IF;
    SELECT * INTO r FROM wallet.account a WHERE a.id = account_row.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown account %', id
            USING ERRCODE = 'WL003', DETAIL = format('No account has id %s.', id);
    END IF;
    RETURN r;
END
$$;
REVOKE ALL ON FUNCTION wallet.account_row(bigint) FROM PUBLIC;

-- Posted balance: every committed posting, hot credits included, exact
-- right after each commit.  Unknown account: WL003; a posted balance past
-- 64-bit minor units (hot pending rows past the bounds of "Overflow" in
-- the README) is 22003 with the figure, not bigint's bare error.
CREATE FUNCTION wallet.balance(account bigint) RETURNS wallet.amount
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
CREATE FUNCTION wallet.available(account bigint) RETURNS wallet.amount
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
CREATE FUNCTION wallet.set_hot(id bigint, hot boolean DEFAULT true) RETURNS void
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

-- ============================================================================
-- Posting API (C): validation, lock order, balances, journal, idempotency.
-- ============================================================================

CREATE TYPE wallet.leg AS (account bigint, amount wallet.amount);

-- Moves `amount` from one account to another as one transaction; returns
-- the transaction id.  Same key + same request → the first id, nothing
-- posted; same key + different request → WL006.  Errors: WL001 insufficient
-- funds, WL002 currency mismatch, WL003 unknown account, WL004 frozen,
-- WL005 closed, 22023 non-positive amount / same account / bad key, 22004 null.
CREATE FUNCTION wallet.transfer(from_account bigint, to_account bigint, amount wallet.amount,
                                idempotency_key text, kind text DEFAULT 'transfer',
                                metadata jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_transfer'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- One atomic multi-leg transaction.  Legs must be non-zero, balance to zero
-- per currency and match their accounts' currencies (WL007, WL002).
CREATE FUNCTION wallet.post(idempotency_key text, legs wallet.leg[], kind text DEFAULT 'journal',
                            metadata jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_post'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- wallet.post for the extension's own flows (live layer): accepts keys in
-- the reserved "wallet:" prefix, and `reverses`, the transaction this one
-- claws back (a refund of a recharge): like a reversal, at most one such
-- posting per transaction (WL010).  Not granted to anyone.
CREATE FUNCTION wallet.post_system(idempotency_key text, legs wallet.leg[], kind text DEFAULT 'journal',
                                   metadata jsonb DEFAULT NULL, reverses bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_post_system'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Folds committed pending credits of one hot account (or all, when NULL)
-- into the stored balance.  Returns the number of credits folded.
CREATE FUNCTION wallet.fold_hot(account_id bigint DEFAULT NULL) RETURNS bigint
AS 'MODULE_PATHNAME', 'wallet_fold_hot'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- ============================================================================
-- Read views (granted to readers and applications)
-- ============================================================================

-- A figure outside 64-bit minor units (only at the extreme bounds of
-- "Overflow" in the README) is NULL for that account instead of failing
-- the view for every reader (1.6.0).  The common case (no pending rows, no
-- hold, no debt) reads the stored balance as it is; the others are added
-- in numeric.
CREATE VIEW wallet.accounts AS
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
COMMENT ON VIEW wallet.accounts IS 'Accounts with posted balance, available balance (minus holds and debt), held amount and debt.';

CREATE VIEW wallet.transactions AS
SELECT t.id, t.idempotency_key, t.kind, t.metadata, t.reverses, t.forced, t.created_at
  FROM wallet.txn t;

CREATE VIEW wallet.entries AS
SELECT e.txn_id, e.leg, e.account_id, wallet.amount(e.amount, a.currency) AS amount, t.created_at
  FROM wallet.entry e
  JOIN wallet.account a ON a.id = e.account_id
  JOIN wallet.txn t ON t.id = e.txn_id;

-- Many independent transfers in one call (at most 10,000).  Each row
-- reports its own outcome instead of aborting the call: status 'ok' (tx_id
-- of the new transaction), 'exists' (same key and request already posted:
-- its tx_id), 'idempotency_conflict', 'insufficient_funds',
-- 'unknown_account', 'currency_mismatch', 'account_frozen',
-- 'account_closed', 'invalid_amount', 'same_account', 'invalid_key',
-- 'null_argument'.  Rows are applied in array order; a row repeating an
-- earlier row's key takes that row's outcome ('exists') or, if the request
-- differs, 'idempotency_conflict'.  A batch row and wallet.transfer with
-- the same key and request (kind 'transfer', no metadata) are the same
-- request.  Arrays of different lengths: 22023.
CREATE FUNCTION wallet.transfer_batch(from_accounts bigint[], to_accounts bigint[],
                                      amounts wallet.amount[], idempotency_keys text[])
RETURNS TABLE (idx int, tx_id bigint, status text)
AS 'MODULE_PATHNAME', 'wallet_transfer_batch'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 1000;
