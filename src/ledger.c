/*
 * ledger.c — the posting engine: wallet.transfer, wallet.post,
 * wallet.fold_hot and the shared ledger_post() every other posting path
 * (holds, reversals, batches, the live flows) goes through.
 *
 * One posting, in this order:
 *   1. validate the arguments (no database access);
 *   2. take the shared writer lock before drawing the journal id (see
 *      audit.c: the sealer's horizon relies on it);
 *   3. claim the idempotency key: INSERT ... ON CONFLICT DO NOTHING, with
 *      the entries in the same statement.  A
 *      concurrent insert of the same key makes us wait for its outcome; if
 *      it committed we return its id (same request) or raise WL006;
 *   4. lock the accounts whose row must change, in ascending id order, in
 *      one statement (ORDER BY id FOR NO KEY UPDATE): this global order is
 *      what makes concurrent postings deadlock-free;
 *   5. hot accounts that cannot be overdrawn by this posting (credits, and
 *      debits of accounts allowed to go negative) are not row-locked: after
 *      the row locks, a shared advisory lock per hot account is taken in
 *      ascending order (freeze/close take it exclusively), and the amount
 *      goes to wallet.hot_pending instead of the balance;
 *   6. check status, currency, and funds (balance + pending - held);
 *   7. update balances and insert the pending rows (the entries were
 *      written with the key claim, step 3).
 *
 * All statements are prepared once per backend and kept (SPI_keepplan).
 */
#include "ledger.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "common/sha2.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

/* field4 of our advisory lock tags: distinct from pg_advisory_lock's 1 and 2 */
#define WALLET_LOCKTAG_HOT	0x5741
#define WALLET_LOCKTAG_KEY	0x5743



/* ------------------------------------------------------------ plans */

static SPIPlanPtr plan_insert_txn = NULL;
static SPIPlanPtr plan_claim_txn = NULL;
static SPIPlanPtr plan_insert_entries = NULL;
static SPIPlanPtr plan_find_key = NULL;
static SPIPlanPtr plan_insert_pending = NULL;
static SPIPlanPtr plan_pending_sum = NULL;
static SPIPlanPtr plan_debt_balance = NULL;

SPIPlanPtr
ledger_prepare_kept(const char *sql, int nargs, Oid *argtypes)
{
	/*
	 * Generic plans: these statements take arrays and run thousands of
	 * times a second; replanning each call (what the plan cache does when a
	 * custom plan looks cheaper) would cost more than the statement.
	 */
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "wallet: SPI_prepare failed (%s): %s",
			 SPI_result_code_string(SPI_result), sql);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "wallet: SPI_keepplan failed");
	return plan;
}

static void
prepare_plans(void)
{
	if (plan_insert_txn != NULL)
		return;
	{
		Oid			t[8] = {TEXTOID, TEXTOID, BYTEAOID, JSONBOID, INT8OID, BOOLOID,
		INT8ARRAYOID, INT8ARRAYOID};

		/*
		 * Claim the key and write the legs in one statement: if the key
		 * exists, no transaction row comes back and no entry is written.
		 * Entries written before the checks below are harmless: any failure
		 * aborts the whole transaction.
		 */
		plan_insert_txn = ledger_prepare_kept(
									   "WITH t AS (INSERT INTO wallet.txn (id, idempotency_key, kind, request_hash, metadata, reverses, forced) "
									   "VALUES (nextval('wallet.txn_id_seq'), $1, $2, $3, $4, $5, $6) "
									   "ON CONFLICT DO NOTHING RETURNING id) "
									   "INSERT INTO wallet.entry (txn_id, leg, account_id, amount) "
									   "SELECT t.id, e.leg, e.account_id, e.amount "
									   "FROM t, unnest($7, $8) WITH ORDINALITY AS e(account_id, amount, leg) "
									   "RETURNING txn_id", 8, t);
	}
	{
		Oid			t[6] = {TEXTOID, TEXTOID, BYTEAOID, JSONBOID, INT8OID, BOOLOID};

		/*
		 * The key alone, for a request whose amounts are settled once its
		 * accounts are locked (after_lock): its entries follow, below.
		 */
		plan_claim_txn = ledger_prepare_kept(
									  "INSERT INTO wallet.txn (id, idempotency_key, kind, request_hash, metadata, reverses, forced) "
									  "VALUES (nextval('wallet.txn_id_seq'), $1, $2, $3, $4, $5, $6) "
									  "ON CONFLICT DO NOTHING RETURNING id", 6, t);
	}
	{
		Oid			t[3] = {INT8OID, INT8ARRAYOID, INT8ARRAYOID};

		plan_insert_entries = ledger_prepare_kept(
										   "INSERT INTO wallet.entry (txn_id, leg, account_id, amount) "
										   "SELECT $1, e.leg, e.account_id, e.amount "
										   "FROM unnest($2, $3) WITH ORDINALITY AS e(account_id, amount, leg)", 3, t);
	}
	{
		Oid			t[1] = {TEXTOID};

		plan_find_key = ledger_prepare_kept(
									 "SELECT id, request_hash FROM wallet.txn WHERE idempotency_key = $1", 1, t);
	}
	{
		Oid			t[3] = {INT8OID, INT8ARRAYOID, INT8ARRAYOID};

		plan_insert_pending = ledger_prepare_kept(
										   "INSERT INTO wallet.hot_pending (account_id, txn_id, amount) "
										   "SELECT p.account_id, $1, p.amount FROM unnest($2, $3) AS p(account_id, amount)", 3, t);
	}
	{
		Oid			t[1] = {INT8OID};

		plan_pending_sum = ledger_prepare_kept(
										"SELECT coalesce(sum(amount), 0)::text FROM wallet.hot_pending WHERE account_id = $1", 1, t);
		plan_debt_balance = ledger_prepare_kept(
										 "SELECT balance FROM wallet.account WHERE id = $1", 1, t);
	}
}

/* ------------------------------------------------------------ helpers */

Datum
ledger_int8_array(const int64 *values, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(values[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* sort_int64s(): ascending, comparison inlined (PostgreSQL's sort template) */
#define ST_SORT sort_int64s
#define ST_ELEMENT_TYPE int64
#define ST_COMPARE(a, b) ((*(a) > *(b)) - (*(a) < *(b)))
#define ST_SCOPE static
#define ST_DECLARE
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * Sorts account ids ascending (the global lock order) and drops repeats;
 * returns how many are left.
 */
int
ledger_sort_unique_ids(int64 *ids, int n)
{
	int			u = 0;

	sort_int64s(ids, n);
	for (int i = 0; i < n; i++)
		if (u == 0 || ids[u - 1] != ids[i])
			ids[u++] = ids[i];
	return u;
}

char *
ledger_code_str(const MoneyCode *c)
{
	char	   *buf = palloc(MONEY_CODE_MAX + 1);

	money_code_to_cstring(c, buf);
	return buf;
}

/*
 * Keys starting with LEDGER_RESERVED_PREFIX are the engine's own (hold
 * captures, the live layer's store orders and refunds): a client cannot
 * take one first and block the operation that needs it.
 */
text *
ledger_check_key(text *key)
{
	return ledger_check_key_ext(key, false);
}

text *
ledger_check_key_ext(text *key, bool allow_reserved)
{
	int			len;

	if (key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("idempotency_key must not be null"),
				 errdetail("Every posting needs a key, so that a retry never posts twice."),
				 errhint("Pass a key that identifies this request, e.g. the client's request id.")));
	len = VARSIZE_ANY_EXHDR(key);
	if (len < 1 || len > LEDGER_MAX_KEY_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idempotency_key must be 1 to %d bytes, got %d", LEDGER_MAX_KEY_LEN, len),
				 errdetail("The key has %d bytes.", len)));
	if (!allow_reserved && len >= (int) strlen(LEDGER_RESERVED_PREFIX) &&
		memcmp(VARDATA_ANY(key), LEDGER_RESERVED_PREFIX, strlen(LEDGER_RESERVED_PREFIX)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idempotency keys starting with \"%s\" are reserved", LEDGER_RESERVED_PREFIX),
				 errdetail("Key: \"%s\".", text_to_cstring(key)),
				 errhint("The wallet uses them for its own postings (hold captures, store orders, refunds).")));
	return key;
}

text *
ledger_check_kind(text *kind)
{
	int			len;

	if (kind == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("kind must not be null"),
				 errdetail("The kind argument is null; leave it out for the default.")));
	len = VARSIZE_ANY_EXHDR(kind);
	if (len < 1 || len > LEDGER_MAX_KIND_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kind must be 1 to %d bytes, got %d", LEDGER_MAX_KIND_LEN, len),
				 errdetail("The kind has %d bytes.", len)));
	return kind;
}

Jsonb *
ledger_check_metadata(Jsonb *metadata)
{
	if (metadata != NULL && VARSIZE(metadata) > LEDGER_MAX_METADATA)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("metadata is larger than %d bytes", LEDGER_MAX_METADATA),
				 errdetail("Size: %d bytes.", (int) VARSIZE(metadata))));
	return metadata;
}

void
ledger_transfer_legs(LedgerLeg legs[2], int64 from, int64 to, int64 units,
					 const MoneyCode *currency)
{
	legs[0].account = from;
	legs[0].units = -units;
	legs[0].currency = *currency;
	legs[1].account = to;
	legs[1].units = units;
	legs[1].currency = *currency;
}

void
ledger_checked_transfer_legs(LedgerLeg legs[2], int64 from, int64 to,
							 const Amount *amount, const char *what, const char *hint)
{
	if (amount->units <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s amount must be positive, got %s", what, amount_to_cstring(amount)),
				 errdetail("From account " INT64_FORMAT " to account " INT64_FORMAT ": %s.",
						   from, to, amount_to_cstring(amount)),
				 hint ? errhint("%s", hint) : 0));
	if (from == to)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot %s from account " INT64_FORMAT " to itself", what, from),
				 errdetail("from_account and to_account are both " INT64_FORMAT ".", from)));
	ledger_transfer_legs(legs, from, to, amount->units, &amount->currency);
}

/*
 * SHA-256 of the canonical request: kind, legs in order, metadata's jsonb
 * text (jsonb normalises key order and spacing), and any extra text.
 */
bytea *
ledger_fingerprint(const char *kind, int kindlen, LedgerLeg *legs, int nlegs,
				   Jsonb *metadata, const char *extra)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	bytea	   *result = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "wallet-request-v1|");
	appendBinaryStringInfo(&buf, kind, kindlen);
	appendStringInfoChar(&buf, '|');
	for (int i = 0; i < nlegs; i++)
	{
		/* "account:units:CODE;" (no printf: a batch fingerprints every row) */
		char		num[MAXINT8LEN + 1];
		char		c[MONEY_CODE_MAX + 1];

		appendBinaryStringInfo(&buf, num, pg_lltoa(legs[i].account, num));
		appendStringInfoChar(&buf, ':');
		appendBinaryStringInfo(&buf, num, pg_lltoa(legs[i].units, num));
		appendStringInfoChar(&buf, ':');
		money_code_to_cstring(&legs[i].currency, c);
		appendStringInfoString(&buf, c);
		appendStringInfoChar(&buf, ';');
	}
	appendStringInfoChar(&buf, '|');
	if (metadata != NULL)
		appendStringInfoString(&buf, JsonbToCString(NULL, &metadata->root, VARSIZE(metadata)));
	appendStringInfoChar(&buf, '|');
	if (extra)
		appendStringInfoString(&buf, extra);

	if (ctx == NULL ||
		pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (uint8 *) buf.data, buf.len) < 0 ||
		pg_cryptohash_final(ctx, (uint8 *) VARDATA(result), PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "wallet: could not compute SHA-256");
	pg_cryptohash_free(ctx);
	SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	pfree(buf.data);
	return result;
}

/* an advisory lock on a 64-bit key in one of the extension's lock spaces,
 * held to the end of the transaction */
static void
wallet_xact_lock(uint64 key, uint16 space, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (key >> 32), (uint32) key, space);
	(void) LockAcquire(&tag, mode, false, false);
}

/*
 * Shared advisory lock that keeps a hot account's status stable while we
 * post to it without its row lock; freeze/close take it exclusively.
 */
void
ledger_lock_hot_shared(int64 account_id)
{
	wallet_xact_lock((uint64) account_id, WALLET_LOCKTAG_HOT, ShareLock);
}

void
ledger_lock_hot_exclusive(int64 account_id)
{
	wallet_xact_lock((uint64) account_id, WALLET_LOCKTAG_HOT, ExclusiveLock);
}

/*
 * wallet.check_account_current(id, holds): for close_account (holds true)
 * and set_hot(id, false) of a hot account (holds false) in REPEATABLE READ
 * or SERIALIZABLE, after the account's row lock and its exclusive hot lock.
 * A hot credit (a hot_pending row) and a hold to the account do not touch
 * its row, so the row lock raises no 40001 for them; a transaction whose
 * snapshot predates one would close the account with money on it, or a
 * hold towards it, or turn it normal with credits left pending (found by a
 * review).  With the locks held nothing of the kind is in flight, so a
 * snapshot taken now sees them all: if it sees other pending rows (and,
 * with holds, other pending holds) than the transaction's snapshot, 40001.
 * A no-op in READ COMMITTED, where each statement's snapshot is newer than
 * the locks.  Internal.
 */
PG_FUNCTION_INFO_V1(wallet_check_account_current);
Datum
wallet_check_account_current(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	int64		id = PG_GETARG_INT64(0);
	Datum		args[2] = {Int64GetDatum(id), PG_GETARG_DATUM(1)};
	char	   *seen[2];

	if (!IsolationUsesXactSnapshot())
		PG_RETURN_VOID();
	SPI_connect();
	if (plan == NULL)
	{
		Oid			t[2] = {INT8OID, BOOLOID};

		/* count and sums: a row added, or one replaced by another, shows */
		plan = ledger_prepare_kept("SELECT concat_ws(' ', "
								   "(SELECT count(*) || ' ' || coalesce(sum(p.amount::numeric), 0) || ' ' || coalesce(sum(p.txn_id), 0) "
								   "   FROM wallet.hot_pending p WHERE p.account_id = $1), "
								   "CASE WHEN $2 THEN (SELECT count(*) || ' ' || coalesce(sum(h.id), 0) FROM wallet.hold h "
								   "  WHERE h.status = 'pending' AND (h.from_account = $1 OR h.to_account = $1)) END)",
								   2, t);
	}
	for (int i = 0; i < 2; i++)
	{
		int			rc;
		bool		isnull;

		if (i == 0)
			rc = SPI_execute_plan(plan, args, NULL, true, 1);
		else
			rc = SPI_execute_snapshot(plan, args, NULL, GetLatestSnapshot(), InvalidSnapshot,
									  true, false, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "wallet: account snapshot check failed");
		seen[i] = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	if (strcmp(seen[0], seen[1]) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access: account " INT64_FORMAT " changed after this transaction's snapshot", id),
				 errdetail(PG_GETARG_BOOL(1)
						   ? "A hot credit or a hold of the account committed after the snapshot; closing it must see them."
						   : "A hot credit to the account committed after the snapshot; turning it normal must fold it."),
				 errhint("Retry the transaction.")));
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * An exclusive lock, to the end of the transaction, on a request key (a
 * 64-bit hash of it), in a lock space of the extension's own
 * (applications' pg_advisory_lock calls cannot take it).
 */
static void
ledger_lock_key(const char *key, int len)
{
	uint64		h = DatumGetUInt64(hash_any_extended((const unsigned char *) key, len, 0));

	wallet_xact_lock(h, WALLET_LOCKTAG_KEY, ExclusiveLock);
}

/*
 * wallet.lock_key(key): ledger_lock_key for SQL.  wallet.gift takes it
 * before looking its key up, so a retry waits for a first call still in
 * flight instead of computing its own request; wallet.refund_recharge
 * takes 'wallet:reverse:<tx_id>' as wallet.reverse does.  Internal.
 */
PG_FUNCTION_INFO_V1(wallet_lock_key);
Datum
wallet_lock_key(PG_FUNCTION_ARGS)
{
	text	   *key = PG_GETARG_TEXT_PP(0);

	ledger_lock_key(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key));
	PG_RETURN_VOID();
}

/* wallet.lock_hot_exclusive(id): used by freeze/close (SQL, internal) */
PG_FUNCTION_INFO_V1(wallet_lock_hot_exclusive);
Datum
wallet_lock_hot_exclusive(PG_FUNCTION_ARGS)
{
	ledger_lock_hot_exclusive(PG_GETARG_INT64(0));
	PG_RETURN_VOID();
}

/*
 * The sum of a hot account's committed pending rows, in 128 bits: it can
 * leave int64 only in the case HOT_SAFE_BALANCE describes, and a debit must
 * still be able to bring the account back.  The sum comes as numeric text.
 */
int128
ledger_pending(int64 account_id)
{
	Datum		arg = Int64GetDatum(account_id);
	bool		isnull;
	Datum		d;
	char	   *s;
	int128		v = 0;
	bool		neg = false;

	prepare_plans();
	if (SPI_execute_plan(plan_pending_sum, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "wallet: pending sum failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return 0;
	s = TextDatumGetCString(d);
	if (*s == '-')
	{
		neg = true;
		s++;
	}
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (*s - '0');
	return neg ? -v : v;
}

/* Stored balance column of an account (0 if it does not exist). */
int64
ledger_stored_balance(int64 account_id)
{
	Datum		arg = Int64GetDatum(account_id);
	bool		isnull;

	prepare_plans();
	if (SPI_execute_plan(plan_debt_balance, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "wallet: balance lookup failed");
	if (SPI_processed != 1)
		return 0;
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

AccountState *
ledger_find_state(AccountState *states, int n, int64 id)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (states[mid].id == id)
			return &states[mid];
		if (states[mid].id < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/*
 * A posting that takes money out of a user's account while its debt
 * account is negative is spending, refused, unless it pays that debt back:
 * the posting moves money between those two accounts only, from the user
 * to the debt account, and the debt account ends at or below zero (a
 * debt account never holds coins).  The debt account is then one of the
 * posting's accounts, locked (it is never hot).  Since 1.6.0 (library): a
 * user who had coins and a debt at once (coins held when the refund came,
 * the hold voided after) could repay only through a new recharge.
 */
bool
ledger_repays_own_debt(const AccountState *user, AccountState *states, int n)
{
	AccountState *d = ledger_find_state(states, n, user->debt_account);

	if (d == NULL || !d->found || !d->locked || d->delta <= 0 ||
		(int128) d->delta != -(int128) user->delta ||
		(int128) d->balance + d->delta > 0)
		return false;
	/*
	 * and nothing else moves: with a third account in the posting, its
	 * money could pay the debt while the user's coins went elsewhere
	 * (found by a review of the first version, which compared totals only)
	 */
	for (int i = 0; i < n; i++)
		if (states[i].delta != 0 && &states[i] != d && states[i].id != user->id)
			return false;
	return true;
}

static void
check_balanced(LedgerLeg *legs, int nlegs)
{
	/*
	 * Per currency sums in 128 bits: legs are at most int64 each and few,
	 * so the sum cannot overflow, and a balanced transaction is never
	 * refused for the order of its legs (a running int64 sum could pass
	 * its limit half way).
	 */
	for (int i = 0; i < nlegs; i++)
	{
		bool		seen = false;
		int128		sum = 0;

		for (int j = 0; j < i; j++)
			if (money_code_eq(&legs[j].currency, &legs[i].currency))
				seen = true;
		if (seen)
			continue;
		for (int j = i; j < nlegs; j++)
			if (money_code_eq(&legs[j].currency, &legs[i].currency))
				sum += legs[j].units;
		if (sum != 0)
			ereport(ERROR,
					(errcode(ERRCODE_WALLET_UNBALANCED),
					 errmsg("unbalanced transaction: legs in %s add up to %s",
							ledger_code_str(&legs[i].currency),
							units_wide_to_cstring(sum, &legs[i].currency)),
					 errdetail("Every transaction must sum to zero in each currency."),
					 errhint("Add a leg that takes the difference, e.g. to a fee or suspense account.")));
	}
}

static void
raise_status(AccountState *st)
{
	if (st->status == 'f')
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_ACCOUNT_FROZEN),
				 errmsg("account " INT64_FORMAT " is frozen", st->id),
				 errdetail("A frozen account takes no postings."),
				 errhint("wallet.unfreeze_account(" INT64_FORMAT ") lifts the freeze.", st->id)));
	if (st->status == 'c')
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_ACCOUNT_CLOSED),
				 errmsg("account " INT64_FORMAT " is closed", st->id),
				 errdetail("A closed account takes no postings.")));
}

void
ledger_raise_status(int64 id, char status)
{
	AccountState tmp;

	tmp.id = id;
	tmp.status = status;
	raise_status(&tmp);
}

/* ------------------------------------------------------------ posting */

PostResult
ledger_post(PostRequest *req)
{
	PostResult	result = {0, false};
	AccountState *states;
	int			nstates = 0;
	int64	   *ids;
	int64	   *debit_ids;
	int			ndebit = 0;
	int64	   *held_ids;
	int			nheld = 0;
	bytea	   *fingerprint;
	Datum		values[8];
	char		nulls[8];
	int			ret;

	prepare_plans();
	if (req->nlegs < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transaction needs at least one leg"),
				 errdetail("The request has no legs.")));
	if (req->nlegs > LEDGER_MAX_LEGS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transaction has at most %d legs, got %d", LEDGER_MAX_LEGS, req->nlegs),
				 errdetail("The request has %d legs.", req->nlegs)));
	for (int i = 0; i < req->nlegs; i++)
		if (req->legs[i].units == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("leg %d has a zero amount", i + 1),
					 errdetail("Account " INT64_FORMAT ".", req->legs[i].account)));
	check_balanced(req->legs, req->nlegs);

	/* 1. the accounts touched, sorted: the global lock order */
	ids = palloc(sizeof(int64) * (req->nlegs + 2));
	for (int i = 0; i < req->nlegs; i++)
		ids[i] = req->legs[i].account;
	nstates = req->nlegs;
	if (req->release_units > 0)
		ids[nstates++] = req->release_account;
	if (req->extra_account != 0)
		ids[nstates++] = req->extra_account;
	nstates = ledger_sort_unique_ids(ids, nstates);
	states = palloc0(sizeof(AccountState) * nstates);
	debit_ids = palloc(sizeof(int64) * nstates);
	for (int i = 0; i < nstates; i++)
		states[i].id = ids[i];
	for (int i = 0; i < lengthof(req->lock_ids); i++)
		if (req->lock_ids[i] != 0)
		{
			AccountState *st = ledger_find_state(states, nstates, req->lock_ids[i]);

			if (st != NULL)
				st->force_lock = true;
		}
	{
		/* each account's net change, summed in 128 bits (order-free) */
		int128	   *net = palloc0(sizeof(int128) * nstates);

		for (int i = 0; i < req->nlegs; i++)
		{
			AccountState *st = ledger_find_state(states, nstates, req->legs[i].account);

			net[st - states] += req->legs[i].units;
			if (req->legs[i].units < 0)
				st->debited = true;
			st->leg_currency = req->legs[i].currency;
		}
		for (int i = 0; i < nstates; i++)
		{
			if (net[i] < PG_INT64_MIN || net[i] > PG_INT64_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("legs for account " INT64_FORMAT " overflow 64-bit minor units",
								states[i].id),
						 errdetail("The account's legs in this transaction add up to %s, %s than 64-bit minor units hold.",
								   units_wide_to_cstring(net[i], &states[i].leg_currency),
								   net[i] > 0 ? "more" : "less")));
			states[i].delta = (int64) net[i];
		}
		pfree(net);
	}
	if (req->release_units > 0)
	{
		AccountState *st = ledger_find_state(states, nstates, req->release_account);

		st->held_delta = -req->release_units;
	}
	held_ids = palloc(sizeof(int64) * nstates);
	for (int i = 0; i < nstates; i++)
	{
		if (states[i].debited)
			debit_ids[ndebit++] = states[i].id;
		if (states[i].held_delta != 0)
			held_ids[nheld++] = states[i].id;
	}

	/* 2. writer lock before drawing the journal id (see audit.c: the seal horizon) */
	wallet_writer_lock();

	/* 3. claim the idempotency key */
	fingerprint = ledger_fingerprint(VARDATA_ANY(req->kind), VARSIZE_ANY_EXHDR(req->kind),
									 req->fingerprint_legs ? req->fingerprint_legs : req->legs,
									 req->fingerprint_legs ? req->fingerprint_nlegs : req->nlegs,
									 req->metadata, req->fingerprint_extra);
	values[0] = PointerGetDatum(req->key);
	values[1] = PointerGetDatum(req->kind);
	values[2] = PointerGetDatum(fingerprint);
	values[3] = PointerGetDatum(req->metadata);
	values[4] = Int64GetDatum(req->reverses);
	values[5] = BoolGetDatum(req->force);
	{
		int64	   *e_acc = palloc(sizeof(int64) * req->nlegs);
		int64	   *e_amt = palloc(sizeof(int64) * req->nlegs);

		for (int i = 0; i < req->nlegs; i++)
		{
			e_acc[i] = req->legs[i].account;
			e_amt[i] = req->legs[i].units;
		}
		values[6] = ledger_int8_array(e_acc, req->nlegs);
		values[7] = ledger_int8_array(e_amt, req->nlegs);
	}
	memset(nulls, ' ', sizeof(nulls));
	if (req->metadata == NULL)
		nulls[3] = 'n';
	if (req->reverses == 0)
		nulls[4] = 'n';
	ret = SPI_execute_plan(req->after_lock != NULL ? plan_claim_txn : plan_insert_txn,
						   values, nulls, false, 0);
	if (ret != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "wallet: journal insert failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
	{
		/* the key (or the reversal link) exists: same request or conflict */
		bool		isnull;
		bytea	   *stored;

		ret = SPI_execute_plan(plan_find_key, values, NULL, false, 1);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "wallet: key lookup failed");
		if (SPI_processed == 0)
		{
			if (req->reverses != 0)
			{
				/* the reversal that won, named in the DETAIL (1.6.0) */
				static SPIPlanPtr plan_reversal = NULL;
				Oid			t[1] = {INT8OID};
				Datum		arg = Int64GetDatum(req->reverses);
				int64		by = 0;

				if (plan_reversal == NULL)
					plan_reversal = ledger_prepare_kept("SELECT id FROM wallet.txn WHERE reverses = $1", 1, t);
				if (SPI_execute_plan(plan_reversal, &arg, NULL, false, 1) == SPI_OK_SELECT &&
					SPI_processed > 0)
					by = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
				ereport(ERROR,
						(errcode(ERRCODE_WALLET_ALREADY_REVERSED),
						 errmsg("transaction " INT64_FORMAT " is already reversed", req->reverses),
						 by != 0 ?
						 errdetail("Transaction " INT64_FORMAT " reversed it; a transaction is reversed at most once.", by) :
						 errdetail("A transaction is reversed at most once.")));
			}
			/* not visible: our snapshot predates the other commit */
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access to idempotency key \"%s\"",
							text_to_cstring(req->key)),
					 errdetail("Another transaction posted this key after this transaction's snapshot was taken."),
					 errhint("Retry the transaction; postings are meant to run in READ COMMITTED.")));
		}
		result.txn_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		stored = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		if (VARSIZE_ANY_EXHDR(stored) != PG_SHA256_DIGEST_LENGTH ||
			memcmp(VARDATA_ANY(stored), VARDATA(fingerprint), PG_SHA256_DIGEST_LENGTH) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_WALLET_IDEMPOTENCY_CONFLICT),
					 errmsg("idempotency key \"%s\" was already used for a different request",
							text_to_cstring(req->key)),
					 errdetail("Transaction " INT64_FORMAT " was posted with this key; this request differs from it.",
							   result.txn_id),
					 errhint("Use a new key for a new request; resend the same request to get the first result.")));
		result.existed = true;
		return result;
	}
	{
		bool		isnull;

		result.txn_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}

	/* 4.-5. row locks in ascending id order; hot accounts unlocked */
	ledger_load_accounts(states, nstates, debit_ids, ndebit, held_ids, nheld);
	ledger_raise_stale_hot(states, nstates);

	/*
	 * 5b. the caller's last word on the amounts, now that the accounts are
	 * locked (the reversal of a refund, below); extra_account drops out
	 * unless a leg now names it
	 */
	if (req->after_lock != NULL)
	{
		Datum		ev[3];
		int64	   *e_acc;
		int64	   *e_amt;

		req->after_lock(req, states, nstates);
		e_acc = palloc(sizeof(int64) * req->nlegs);
		e_amt = palloc(sizeof(int64) * req->nlegs);
		for (int i = 0; i < req->nlegs; i++)
		{
			e_acc[i] = req->legs[i].account;
			e_amt[i] = req->legs[i].units;
		}
		ev[0] = Int64GetDatum(result.txn_id);
		ev[1] = ledger_int8_array(e_acc, req->nlegs);
		ev[2] = ledger_int8_array(e_amt, req->nlegs);
		if (SPI_execute_plan(plan_insert_entries, ev, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "wallet: entry insert failed");
	}
	if (req->extra_account != 0)
	{
		bool		named = req->release_units > 0 && req->release_account == req->extra_account;

		for (int l = 0; l < req->nlegs && !named; l++)
			named = req->legs[l].account == req->extra_account;
		if (!named)
		{
			AccountState *st = ledger_find_state(states, nstates, req->extra_account);
			int			at = st - states;

			memmove(&states[at], &states[at + 1], sizeof(AccountState) * (nstates - at - 1));
			nstates--;
		}
	}

	/* 6. validate */
	for (int i = 0; i < nstates; i++)
	{
		AccountState *st = &states[i];

		if (!st->found)
			ereport(ERROR,
					(errcode(ERRCODE_WALLET_UNKNOWN_ACCOUNT),
					 errmsg("unknown account " INT64_FORMAT, st->id),
					 errdetail("No account has id " INT64_FORMAT ".", st->id)));
		/* an unlocked hot account must not need a lock after all */
		if (!st->locked && ((st->debited && !st->allow_negative) || st->held_delta != 0))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("account " INT64_FORMAT " changed while posting", st->id),
					 errdetail("Account " INT64_FORMAT " stopped being a hot account this posting may credit without its row lock.",
							   st->id),
					 errhint("Retry the transaction.")));
		raise_status(st);
		if (st->debited || st->delta != 0)
		{
			/* every leg's currency is the account's */
			for (int l = 0; l < req->nlegs; l++)
			{
				int64		units = req->legs[l].units;

				if (req->legs[l].account != st->id ||
					money_code_eq(&req->legs[l].currency, &st->currency))
					continue;
				/*
				 * Worded for every caller: transfer and gift have no legs
				 * of their own, so the DETAIL says which way the amount
				 * moves (leg N for wallet.post()).
				 */
				ereport(ERROR,
						(errcode(ERRCODE_WALLET_CURRENCY_MISMATCH),
						 errmsg("currency mismatch: account " INT64_FORMAT " holds %s, not %s",
								st->id, ledger_code_str(&st->currency),
								ledger_code_str(&req->legs[l].currency)),
						 errdetail("Account " INT64_FORMAT " is in %s; the posting %s %s %s it (leg %d).",
								   st->id, ledger_code_str(&st->currency),
								   units < 0 ? "takes" : "puts",
								   units_wide_to_cstring(units < 0 ? -(int128) units : (int128) units,
														 &req->legs[l].currency),
								   units < 0 ? "from" : "into", l + 1),
						 errhint("Convert the amount first with wallet.convert().")));
			}
		}
	}
	/*
	 * A user's debt account never holds coins: a credit may repay the
	 * debt, not more (1.6.0 library; the engine's own postings cap their
	 * credits to it, and a posting of the generic API, or one that waited
	 * while a recharge repaid the debt, left it above zero, where the coins
	 * absorbed the next refund's shortfall).  Checked before the funds of
	 * the other accounts, so that an overpayment says so whatever the
	 * accounts' ids.  Never hot since 1.6.0, so its row is locked and its
	 * balance exact (one made hot under an older version is left to its
	 * pending rows: the update script makes it normal again).
	 */
	for (int i = 0; i < nstates; i++)
	{
		AccountState *st = &states[i];

		if (st->is_debt && st->locked && st->delta > 0 && (int128) st->balance + st->delta > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("debt account " INT64_FORMAT " would hold coins", st->id),
					 errdetail("Debt account " INT64_FORMAT " is at %s and this posting credits it %s; a debt account takes at most the debt it records.",
							   st->id, units_to_cstring(st->balance, &st->currency),
							   units_to_cstring(st->delta, &st->currency)),
					 errhint("Post at most the debt owed to it; a recharge repays a debt by itself.")));
	}
	for (int i = 0; i < nstates; i++)
	{
		AccountState *st = &states[i];
		int128		pending = 0;
		int128		after;

		if (st->hot)
			ledger_check_hot_credit(st, st->delta);
		if (!st->locked || (st->delta >= 0 && st->held_delta >= 0))
			continue;
		if (st->allow_negative)
			continue;
		if (st->hot)
			pending = ledger_pending(st->id);
		/*
		 * available after = balance + pending - (held + held_delta) + delta,
		 * in 128 bits (the stored balance's own range is checked when it is
		 * written)
		 */
		after = (int128) st->balance + pending - st->held - st->held_delta + st->delta;
		if (after < 0 && !req->force && st->delta < 0)
		{
			int128		avail = (int128) st->balance + pending - st->held -
				(req->release_account == st->id ? st->held_delta : 0);

			ereport(ERROR,
					(errcode(ERRCODE_WALLET_INSUFFICIENT_FUNDS),
					 errmsg("insufficient funds in account " INT64_FORMAT, st->id),
					 errdetail("Available %s, requested %s.",
							   units_wide_to_cstring(avail, &st->currency),
							   units_wide_to_cstring(-(int128) st->delta, &st->currency))));
		}
		if (st->delta < 0 && !req->force && st->debt_account != 0)
		{
			int64		debt = ledger_stored_balance(st->debt_account);

			if (debt < 0 && !ledger_repays_own_debt(st, states, nstates))
				ereport(ERROR,
						(errcode(ERRCODE_WALLET_INSUFFICIENT_FUNDS),
						 errmsg("account " INT64_FORMAT " has an outstanding debt of %s", st->id,
								units_wide_to_cstring(-(int128) debt, &st->currency)),
						 errdetail("Spending is blocked until the debt from a refund is repaid."),
						 errhint("The next recharge repays it first; a posting from this account to its debt account " INT64_FORMAT ", of at most the debt, repays it now.",
								 st->debt_account)));
		}
		if (after < 0)
			st->forced_negative = true;
	}

	/* 7. write: balances of locked accounts (rows.c), hot pending rows */
	{
		int64	   *p_ids = palloc(sizeof(int64) * nstates);
		int64	   *p_amt = palloc(sizeof(int64) * nstates);
		int			np = 0;

		for (int i = 0; i < nstates; i++)
		{
			AccountState *st = &states[i];

			if (st->delta == 0 && st->held_delta == 0)
				continue;
			if (st->locked)
			{
				int64		newbal;

				if (__builtin_add_overflow(st->balance, st->delta, &newbal))
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("balance of account " INT64_FORMAT " would overflow", st->id),
							 errdetail("Balance %s, this posting %s: more than 64-bit minor units hold.",
									   units_to_cstring(st->balance, &st->currency),
									   units_to_cstring(st->delta, &st->currency))));
				/*
				 * Flagged while the forced posting leaves it below zero once
				 * its holds are counted, as verify() counts them (posted or
				 * available below zero); pending hot credits, not read
				 * here, could only lift it (the flag is then merely kept).
				 */
				st->forced_after = !st->allow_negative && (st->forced_negative || req->force) &&
					(int128) newbal - st->held - st->held_delta < 0;
			}
			else if (st->delta != 0)
			{
				p_ids[np] = st->id;
				p_amt[np] = st->delta;
				np++;
			}
		}
		if (!ledger_write_accounts(states, nstates))
			elog(ERROR, "wallet: a locked account changed");	/* cannot happen */
		if (np > 0 && !ledger_append_pending(np, p_ids, result.txn_id, p_amt))
		{
			values[0] = Int64GetDatum(result.txn_id);
			values[1] = ledger_int8_array(p_ids, np);
			values[2] = ledger_int8_array(p_amt, np);
			ret = SPI_execute_plan(plan_insert_pending, values, NULL, false, 0);
			if (ret != SPI_OK_INSERT)
				elog(ERROR, "wallet: pending insert failed");
		}
	}
	return result;
}

/*
 * A credit of `delta` to hot account st: 22003 if its stored balance plus
 * pending rows plus delta leaves int64.  The pending rows are summed only
 * when the stored balance or the credit is past the safe bounds (HOT_UNSAFE
 * in ledger.h); within them the sum cannot overflow.  Debits take no
 * bound (see HOT_UNSAFE).
 */
void
ledger_check_hot_credit(AccountState *st, int64 delta)
{
	int128		pending;
	int128		total;

	if (delta <= 0 || !HOT_UNSAFE(st->balance, delta))
		return;
	/*
	 * The account was read within the bounds and is changed without its
	 * row lock, under the shared hot lock; the read again under that lock
	 * found it past them (a fold or a large change committed in between).
	 * Taking the hot lock exclusively now would be a lock upgrade, and two
	 * postings doing it at once would deadlock: ask for a retry instead,
	 * which reads the new balance first and takes the row lock.
	 */
	if (!st->locked)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("account " INT64_FORMAT " changed while posting", st->id),
				 errdetail("Hot account " INT64_FORMAT " went past the balance under which postings skip its row lock while this posting waited for it.",
						   st->id),
				 errhint("Retry the transaction.")));
	/*
	 * Postings in flight that skipped the row lock hold the hot lock
	 * shared: wait for them (and keep new ones out until we commit) so that
	 * the pending sum below counts every row that can commit before ours.
	 */
	ledger_lock_hot_exclusive(st->id);
	pending = ledger_pending(st->id);
	total = (int128) st->balance + pending + delta;
	if (total > PG_INT64_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("balance of account " INT64_FORMAT " would overflow", st->id),
				 errdetail("Stored %s, pending %s, this posting %s: the posted balance, %s, is outside 64-bit minor units.",
						   units_to_cstring(st->balance, &st->currency),
						   units_wide_to_cstring(pending, &st->currency),
						   units_to_cstring(delta, &st->currency),
						   units_wide_to_cstring(total, &st->currency))));
}

/* ------------------------------------------------------------ SQL API */

static Amount *
arg_amount(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name),
				 errdetail("Argument %d (%s) is null.", n + 1, name)));
	return PG_GETARG_AMOUNT_P(n);
}

static int64
arg_int64(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name),
				 errdetail("Argument %d (%s) is null.", n + 1, name)));
	return PG_GETARG_INT64(n);
}

/* wallet.transfer(from, to, amount, key, kind, metadata) → txn id */
PG_FUNCTION_INFO_V1(wallet_transfer);
Datum
wallet_transfer(PG_FUNCTION_ARGS)
{
	int64		from = arg_int64(fcinfo, 0, "from_account");
	int64		to = arg_int64(fcinfo, 1, "to_account");
	Amount	   *amount = arg_amount(fcinfo, 2, "amount");
	PostRequest req;
	LedgerLeg	legs[2];
	PostResult	res;

	memset(&req, 0, sizeof(req));
	req.key = ledger_check_key(PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3));
	req.kind = ledger_check_kind(PG_ARGISNULL(4) ? NULL : PG_GETARG_TEXT_PP(4));
	req.metadata = ledger_check_metadata(PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5));
	ledger_checked_transfer_legs(legs, from, to, amount, "transfer",
								 "To move money the other way, swap from_account and to_account.");
	req.legs = legs;
	req.nlegs = 2;

	SPI_connect();
	res = ledger_post(&req);
	SPI_finish();
	PG_RETURN_INT64(res.txn_id);
}

static Datum post_common(FunctionCallInfo fcinfo, bool allow_reserved);

/* wallet.post(key, legs wallet.leg[], kind, metadata) → txn id */
PG_FUNCTION_INFO_V1(wallet_post);
Datum
wallet_post(PG_FUNCTION_ARGS)
{
	return post_common(fcinfo, false);
}

/* wallet.post_system: the same, for the extension's own reserved keys */
PG_FUNCTION_INFO_V1(wallet_post_system);
Datum
wallet_post_system(PG_FUNCTION_ARGS)
{
	return post_common(fcinfo, true);
}

/* WL009 unless a transaction has this id (post_system's reverses) */
static void
ledger_require_txn(int64 id)
{
	static SPIPlanPtr plan = NULL;
	Datum		arg = Int64GetDatum(id);

	SPI_connect();
	if (plan == NULL)
		plan = ledger_prepare_kept("SELECT 1 FROM wallet.txn WHERE id = $1", 1, (Oid[]) {INT8OID});
	if (SPI_execute_plan(plan, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "wallet: transaction lookup failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_UNKNOWN_TRANSACTION),
				 errmsg("unknown transaction " INT64_FORMAT, id),
				 errdetail("reverses names no transaction: no transaction has id " INT64_FORMAT ".", id)));
	SPI_finish();
}

static Datum
post_common(FunctionCallInfo fcinfo, bool allow_reserved)
{
	PostRequest req;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			n;
	Oid			elemtype;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	PostResult	res;

	memset(&req, 0, sizeof(req));
	req.key = ledger_check_key_ext(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), allow_reserved);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("legs must not be null"),
				 errdetail("The legs argument is null.")));
	req.kind = ledger_check_kind(PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2));
	req.metadata = ledger_check_metadata(PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3));
	/* post_system(..., reverses): the transaction this posting claws back */
	if (allow_reserved && PG_NARGS() > 4 && !PG_ARGISNULL(4))
	{
		req.reverses = PG_GETARG_INT64(4);
		ledger_require_txn(req.reverses);
	}

	arr = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("legs must be a one-dimensional array"),
				 errdetail("It has %d dimensions.", ARR_NDIM(arr))));
	elemtype = ARR_ELEMTYPE(arr);
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, &elems, &elem_nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("legs must not be empty"),
				 errdetail("The legs array has no elements."),
				 errhint("A transaction has at least two legs that sum to zero.")));
	if (n > LEDGER_MAX_LEGS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transaction has at most %d legs, got %d", LEDGER_MAX_LEGS, n),
				 errdetail("The legs array has %d elements.", n)));
	req.legs = palloc(sizeof(LedgerLeg) * n);
	req.nlegs = n;
	for (int i = 0; i < n; i++)
	{
		HeapTupleHeader rec;
		bool		isnull_acc,
					isnull_amt;
		Datum		acc,
					amt;

		if (elem_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("leg %d is null", i + 1),
					 errdetail("The legs array has %d elements; element %d is null.", n, i + 1)));
		rec = DatumGetHeapTupleHeader(elems[i]);
		acc = GetAttributeByNum(rec, 1, &isnull_acc);
		amt = GetAttributeByNum(rec, 2, &isnull_amt);
		if (isnull_acc || isnull_amt)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("leg %d has a null account or amount", i + 1),
					 errdetail("Leg %d: account %s, amount %s.", i + 1,
							   isnull_acc ? "null" : "given", isnull_amt ? "null" : "given")));
		req.legs[i].account = DatumGetInt64(acc);
		req.legs[i].units = DatumGetAmountP(amt)->units;
		req.legs[i].currency = DatumGetAmountP(amt)->currency;
	}

	SPI_connect();
	res = ledger_post(&req);
	SPI_finish();
	PG_RETURN_INT64(res.txn_id);
}

/*
 * wallet.fold_hot(account_id default null) → number of pending rows folded.
 *
 * For each account with pending rows (ascending id, so folds never
 * deadlock with postings), lock its row, delete the committed pending rows
 * visible now and add their sum to the balance, in one transaction: readers
 * see either the rows or the new balance, never both or neither.  Rows of
 * transactions still running are invisible and stay for the next fold,
 * whatever their ids.
 */
PG_FUNCTION_INFO_V1(wallet_fold_hot);
Datum
wallet_fold_hot(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_accounts = NULL;
	static SPIPlanPtr plan_fold = NULL;
	static SPIPlanPtr plan_unfoldable = NULL;
	static SPIPlanPtr plan_exists = NULL;
	int64		folded = 0;
	bool		isnull_dummy;
	int64	   *ids;
	uint64		nids;

	SPI_connect();
	if (plan_accounts == NULL)
	{
		Oid			t[1] = {INT8OID};

		plan_accounts = ledger_prepare_kept("SELECT DISTINCT account_id FROM wallet.hot_pending "
									 "WHERE $1 IS NULL OR account_id = $1 ORDER BY 1", 1, t);
		/*
		 * Folds only when stored + pending fits in int64 (see
		 * HOT_SAFE_BALANCE); otherwise the rows stay and plan_unfoldable
		 * says why.  One statement: the check and the delete read the same
		 * rows.  The pending rows are summed in numeric: their sum alone
		 * may pass 64 bits while stored + pending fits (pending debits of
		 * an account allowed to go negative, and a stored balance credited
		 * with its row locked), and a bigint sum then failed the fold of
		 * every hot account, and the housekeeping pass with it (1.6.0
		 * library; found by a review).
		 */
		plan_fold = ledger_prepare_kept("WITH locked AS (SELECT id, balance FROM wallet.account WHERE id = $1 FOR NO KEY UPDATE), "
								 "fits AS (SELECT l.id FROM locked l "
								 "         WHERE l.balance::numeric + (SELECT coalesce(sum(p.amount), 0) FROM wallet.hot_pending p "
								 "                                     WHERE p.account_id = l.id) "
								 "               BETWEEN -9223372036854775808 AND 9223372036854775807), "
								 "gone AS (DELETE FROM wallet.hot_pending p USING fits "
								 "         WHERE p.account_id = fits.id RETURNING p.amount) "
								 "UPDATE wallet.account a SET balance = (a.balance::numeric + s.total)::bigint "
								 "FROM (SELECT coalesce(sum(amount), 0) AS total, count(*) AS n FROM gone) s "
								 "WHERE a.id = $1 AND s.n > 0 RETURNING s.n", 1, t);
		plan_unfoldable = ledger_prepare_kept("SELECT x.balance::text, x.posted::text, x.posted < 0 "
									   "FROM (SELECT a.balance, a.balance::numeric + (SELECT coalesce(sum(p.amount), 0) "
									   "        FROM wallet.hot_pending p WHERE p.account_id = a.id) AS posted "
									   "        FROM wallet.account a WHERE a.id = $1) x "
									   "WHERE x.posted NOT BETWEEN -9223372036854775808 AND 9223372036854775807", 1, t);
		plan_exists = ledger_prepare_kept("SELECT 1 FROM wallet.account WHERE id = $1", 1, t);
	}
	{
		Datum		arg = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
		char		null = PG_ARGISNULL(0) ? 'n' : ' ';

		if (SPI_execute_plan(plan_accounts, &arg, &null, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "wallet: fold scan failed");
	}
	nids = SPI_processed;
	/* an id that names no account is an error, as everywhere else */
	if (nids == 0 && !PG_ARGISNULL(0))
	{
		Datum		arg = PG_GETARG_DATUM(0);

		if (SPI_execute_plan(plan_exists, &arg, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "wallet: account lookup failed");
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_WALLET_UNKNOWN_ACCOUNT),
					 errmsg("unknown account " INT64_FORMAT, PG_GETARG_INT64(0)),
					 errdetail("No account has id " INT64_FORMAT ".", PG_GETARG_INT64(0))));
	}
	ids = palloc(sizeof(int64) * Max(nids, 1));
	for (uint64 i = 0; i < nids; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	for (uint64 i = 0; i < nids; i++)
	{
		Datum		arg = Int64GetDatum(ids[i]);

		CHECK_FOR_INTERRUPTS();
		if (SPI_execute_plan(plan_fold, &arg, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "wallet: fold failed");
		if (SPI_processed == 1)
		{
			bool		isnull;

			folded += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		}
		else if (SPI_execute_plan(plan_unfoldable, &arg, NULL, false, 1) == SPI_OK_SELECT &&
				 SPI_processed == 1)
		{
			/* pending debits (an account allowed to go negative) can pass the minimum */
			bool		below = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull_dummy));

			ereport(WARNING,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("pending rows of hot account " INT64_FORMAT " not folded", ids[i]),
					 errdetail("Its posted balance, stored %s plus pending rows, is %s minor units: outside 64 bits.",
							   TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull_dummy)),
							   TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull_dummy))),
					 below ? errhint("Credit the account back into range; its pending rows stay until then.")
					 : errhint("Debit the account back into range; its pending rows stay until then.")));
		}
	}
	SPI_finish();
	PG_RETURN_INT64(folded);
}

/*
 * The reversal of a refund by wallet.refund_recharge().  The refund took r
 * coins back from the user's position: from the user's account, and what
 * was missing as debt (a debit of the user's debt account), or, when the
 * user had free coins and an older debt, more from the account to settle
 * that debt.  Its reversal gives the r coins back the way a recharge gives
 * coins: they repay the debt the user owes at that moment first, the rest
 * goes to the user's account.  A plain mirror of the legs would put coins
 * the user has repaid since into the debt account, where they could not be
 * spent and would silently absorb the next refund's shortfall, and would
 * give back twice a settlement that another reversal already gave back.
 *
 * So the reversal's legs name the user's account for all r coins, the debt
 * account is locked with the others (extra_account), the rows of both even
 * when hot, and once every account is locked this hook moves min(owed, r)
 * of them to the debt account: the debt is read under the lock, after the
 * idempotency key is claimed, as in every posting (a debt account opened
 * after it was looked up is 40001).  The fingerprint stays that of the plain
 * mirror, so a retry with the same key returns the first reversal whatever
 * the debt is by then.
 */
typedef struct DebtReversal
{
	int64		user_id;
	int64		debt_id;
	/*
	 * false: a refund's reversal (the user's leg holds all r coins, which
	 * repay the debt first); true: another reversal crediting the debt
	 * account, whose credit is cut to the debt owed, the rest to the user
	 * (reverse_debt_credit)
	 */
	bool		cap_only;
} DebtReversal;

/*
 * Any other reversal that credits a user's debt account: the reversal of a
 * recharge's reversal (the recharge repaid debt), of a refund's reversal,
 * and so on.  A debt account holds no coins of its own: the credit repays
 * the debt owed now, and what it would have put above zero goes to the
 * user's account instead (ul: the user's leg, or -1; legs has room for
 * one more).  Several legs on the debt account count as one; a reversal
 * left with no leg at all (it only moved coins back from the user to a
 * debt since repaid) is refused (55000).  Only a reversal that names one
 * debt account is capped (wallet_reverse).
 */
static void
reverse_cap_debt_credit(PostRequest *req, DebtReversal *rr, AccountState *u,
						AccountState *d, int ul, int128 balance)
{
	int			dl = -1;
	int64		c;
	int64		k;
	int64		e;
	int			n = 0;

	/*
	 * its legs on the debt account, taken as one: c, their sum (the
	 * account's net change, already checked to fit 64 bits), a credit
	 */
	c = d->delta;
	for (int l = 0; l < req->nlegs && dl < 0; l++)
		if (req->legs[l].account == rr->debt_id)
			dl = l;
	if (dl < 0 || c <= 0)
		return;
	for (int l = dl + 1; l < req->nlegs; l++)
		if (req->legs[l].account == rr->debt_id)
			req->legs[l].units = 0;
	k = balance < 0 ? (int64) Min(-balance, (int128) c) : 0;
	e = c - k;
	req->legs[dl].units = k;
	if (ul < 0)
	{
		ul = req->nlegs++;
		req->legs[ul].account = rr->user_id;
		req->legs[ul].units = 0;
		req->legs[ul].currency = req->legs[dl].currency;
	}
	/* |user leg| and e are both within the original's 64-bit legs' sum */
	req->legs[ul].units += e;
	d->delta -= e;
	u->delta += e;
	/* legs left at zero go */
	for (int l = 0; l < req->nlegs; l++)
		if (req->legs[l].units != 0)
			req->legs[n++] = req->legs[l];
	req->nlegs = n;
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("reversing this transaction would move nothing"),
				 errdetail("It moved money from account " INT64_FORMAT "'s debt account " INT64_FORMAT
						   " to the account; that debt has been repaid since, and a debt account holds no coins.",
						   rr->user_id, rr->debt_id)));
}

static void
debt_reversal_after_lock(PostRequest *req, AccountState *states, int nstates)
{
	DebtReversal *rr = (DebtReversal *) req->after_lock_arg;
	AccountState *u = ledger_find_state(states, nstates, rr->user_id);
	AccountState *d = rr->debt_id != 0 ? ledger_find_state(states, nstates, rr->debt_id) : NULL;
	int			ul = -1;
	int128		balance;
	int64		r;
	int64		k;

	for (int l = 0; l < req->nlegs; l++)
		if (req->legs[l].account == rr->user_id)
			ul = l;
	if (u == NULL || !u->found || (ul < 0 && !rr->cap_only))
		return;
	/*
	 * The debt account was looked up before the key and the locks; a
	 * refund committed meanwhile may have opened the user's first one.
	 */
	if (u->debt_account != rr->debt_id && rr->cap_only)
		return;					/* not that user's debt account after all */
	if (u->debt_account != rr->debt_id)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("account " INT64_FORMAT " changed while its refund was being reversed", rr->user_id),
				 errdetail("A refund committed meanwhile opened the account's debt account."),
				 errhint("Retry the transaction.")));
	if (d == NULL || !d->found)
		return;
	balance = d->locked ? d->balance : ledger_stored_balance(d->id);
	if (d->hot)
		balance += ledger_pending(d->id);
	if (rr->cap_only)
	{
		reverse_cap_debt_credit(req, rr, u, d, ul, balance);
		return;
	}
	r = req->legs[ul].units;
	k = balance < 0 ? (int64) Min(-balance, (int128) r) : 0;
	if (k == 0)
		return;
	if (k == r)
		req->legs[ul].account = rr->debt_id;
	else
	{
		req->legs[ul].units = r - k;
		req->legs[req->nlegs].account = rr->debt_id;
		req->legs[req->nlegs].units = k;
		req->legs[req->nlegs].currency = req->legs[ul].currency;
		req->nlegs++;
	}
	u->delta -= k;
	d->delta += k;
}

/*
 * The hook above for req, on user_id and its debt account debt_id (0:
 * none), with the rows of both locked even when hot: the live flows change
 * the debt with the user's row locked (recharge, refund_recharge), and
 * fold_hot folds a hot account under its row lock, so the debt read in the
 * hook is the debt.  extra_account: the one of the two no leg names yet.
 */
static void
set_debt_hook(PostRequest *req, int64 user_id, int64 debt_id, bool cap_only, int64 extra_account)
{
	DebtReversal *rr = palloc(sizeof(DebtReversal));

	rr->user_id = user_id;
	rr->debt_id = debt_id;
	rr->cap_only = cap_only;
	req->extra_account = extra_account;
	req->lock_ids[0] = user_id;
	req->lock_ids[1] = debt_id;
	req->after_lock = debt_reversal_after_lock;
	req->after_lock_arg = rr;
}

/*
 * Turns req (the refund's legs negated) into the legs described above, for
 * the refund's user; returns false (req unchanged: the plain mirror) when
 * the refund's legs do not give the user's position back.
 */
static bool
reverse_refund_legs(PostRequest *req, int64 user_id)
{
	static SPIPlanPtr plan_debt_account = NULL;
	Datum		arg;
	bool		isnull;
	int64		debt_id = 0;
	int128		r = 0;
	int			n = 0;
	LedgerLeg  *legs;
	MoneyCode	coin;

	if (plan_debt_account == NULL)
	{
		Oid			t[1] = {INT8OID};

		plan_debt_account = ledger_prepare_kept("SELECT a.debt_account FROM wallet.account a WHERE a.id = $1", 1, t);
	}
	arg = Int64GetDatum(user_id);
	if (SPI_execute_plan(plan_debt_account, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "wallet: refund user lookup failed");
	if (SPI_processed > 0)
	{
		Datum		v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			debt_id = DatumGetInt64(v);
	}
	legs = palloc(sizeof(LedgerLeg) * (req->nlegs + 2));
	for (int i = 0; i < req->nlegs; i++)
	{
		if (req->legs[i].account == user_id || (debt_id != 0 && req->legs[i].account == debt_id))
		{
			r += req->legs[i].units;
			coin = req->legs[i].currency;
			continue;
		}
		legs[n++] = req->legs[i];
	}
	if (r <= 0 || r > PG_INT64_MAX || n == req->nlegs)
		return false;
	legs[n].account = user_id;
	legs[n].units = (int64) r;
	legs[n].currency = coin;
	n++;

	req->fingerprint_legs = req->legs;
	req->fingerprint_nlegs = req->nlegs;
	req->legs = legs;
	req->nlegs = n;
	set_debt_hook(req, user_id, debt_id, false, debt_id);
	return true;
}

/*
 * Sets up reverse_cap_debt_credit for a reversal (not of a refund) whose
 * legs credit a user's debt account (LEDGER_DEBT_USER_SQL).
 */
static void
reverse_debt_credit(PostRequest *req, int64 debt_id, int64 user_id)
{
	LedgerLeg  *legs = palloc(sizeof(LedgerLeg) * (req->nlegs + 1));
	bool		has_user = false;

	memcpy(legs, req->legs, sizeof(LedgerLeg) * req->nlegs);
	for (int i = 0; i < req->nlegs; i++)
		has_user |= legs[i].account == user_id;
	req->legs = legs;
	set_debt_hook(req, user_id, debt_id, true, has_user ? 0 : user_id);
}

/*
 * wallet.reverse(tx_id, key, reason, allow_negative) → reversal txn id.
 *
 * Posts the original's legs negated, kind 'reversal', linked through
 * txn.reverses (unique: at most one reversal).  Locking the original row
 * first serialises racing reversals of the same transaction; the loser
 * sees the winner's link and gets WL010 (or the winner's id when it sent
 * the same key and request).
 */
PG_FUNCTION_INFO_V1(wallet_reverse);
Datum
wallet_reverse(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_lock_txn = NULL;
	static SPIPlanPtr plan_legs = NULL;
	static SPIPlanPtr plan_refund = NULL;
	static SPIPlanPtr plan_refund_user = NULL;
	int64		tx_id;
	int64		debt_credited = 0;	/* a debt account among the legs */
	int64		debt_user = 0;	/* and its user */
	bool		debt_accounts_many = false;
	bool	   *is_debt;
	PostRequest req;
	PostResult	res;
	Datum		arg;
	JsonbParseState *state = NULL;
	JsonbValue	k,
				v;
	JsonbValue *jv;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tx_id must not be null"),
				 errdetail("The tx_id argument is null.")));
	tx_id = PG_GETARG_INT64(0);
	/*
	 * The claw-back lock of the original, before anything else: a refund
	 * of a recharge takes it before its user's row, and without it a
	 * refund holding the row and waiting for this reversal's claim on the
	 * link, while this reversal waited for the row, was a deadlock.
	 */
	{
		char		claw[64];

		ledger_lock_key(claw, snprintf(claw, sizeof(claw), "wallet:reverse:" INT64_FORMAT, tx_id));
	}
	memset(&req, 0, sizeof(req));
	req.key = ledger_check_key(PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1));
	req.kind = cstring_to_text("reversal");
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("allow_negative must not be null"),
				 errdetail("The allow_negative argument is null; it defaults to false when left out.")));
	req.force = PG_GETARG_BOOL(3);
	req.reverses = tx_id;

	/* metadata: {"reverses": id, "reason": reason} */
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	k.val.string.val = "reason";
	k.val.string.len = 6;
	pushJsonbValue(&state, WJB_KEY, &k);
	if (PG_ARGISNULL(2))
		v.type = jbvNull;
	else
	{
		text	   *reason = PG_GETARG_TEXT_PP(2);

		if (VARSIZE_ANY_EXHDR(reason) > 1000)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("reason is longer than 1000 bytes"),
					 errdetail("The reason has %d bytes.", (int) VARSIZE_ANY_EXHDR(reason))));
		v.type = jbvString;
		v.val.string.val = VARDATA_ANY(reason);
		v.val.string.len = VARSIZE_ANY_EXHDR(reason);
	}
	pushJsonbValue(&state, WJB_VALUE, &v);
	k.val.string.val = "reverses";
	k.val.string.len = 8;
	pushJsonbValue(&state, WJB_KEY, &k);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(tx_id);
	pushJsonbValue(&state, WJB_VALUE, &v);
	jv = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	req.metadata = JsonbValueToJsonb(jv);

	SPI_connect();
	if (plan_lock_txn == NULL)
	{
		Oid			t[1] = {INT8OID};

		plan_lock_txn = ledger_prepare_kept("SELECT id FROM wallet.txn WHERE id = $1 FOR KEY SHARE", 1, t);
		plan_refund = ledger_prepare_kept("SELECT id FROM wallet.txn "
										  "WHERE idempotency_key = 'wallet:refund:' || $1::text", 1, t);
		plan_refund_user = ledger_prepare_kept("SELECT (t.metadata ->> 'account')::bigint FROM wallet.txn t "
											   "WHERE t.id = $1 AND t.kind = 'refund' "
											   "AND starts_with(t.idempotency_key, 'wallet:refund:') "
											   "AND jsonb_typeof(t.metadata -> 'account') = 'number'", 1, t);
		plan_legs = ledger_prepare_kept("SELECT e.account_id, e.amount, a.currency, "
										LEDGER_DEBT_USER_SQL("a.") " "
										"FROM wallet.entry e "
										"JOIN wallet.account a ON a.id = e.account_id "
										"WHERE e.txn_id = $1 ORDER BY e.leg", 1, t);
	}
	arg = Int64GetDatum(tx_id);
	if (SPI_execute_plan(plan_lock_txn, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "wallet: transaction lookup failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_UNKNOWN_TRANSACTION),
				 errmsg("unknown transaction " INT64_FORMAT, tx_id),
				 errdetail("No transaction has id " INT64_FORMAT ".", tx_id)));
	/*
	 * A recharge clawed back by wallet.refund_recharge() counts as reversed
	 * (refunds of 1.0.0 carry no reverses link, only their reserved key).
	 */
	if (SPI_execute_plan(plan_refund, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "wallet: refund lookup failed");
	if (SPI_processed > 0)
	{
		bool		isnull;
		int64		refund = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		ereport(ERROR,
				(errcode(ERRCODE_WALLET_ALREADY_REVERSED),
				 errmsg("transaction " INT64_FORMAT " is already reversed", tx_id),
				 errdetail("Refund " INT64_FORMAT " clawed it back; a transaction is reversed at most once.", refund)));
	}
	if (SPI_execute_plan(plan_legs, &arg, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "wallet: transaction legs lookup failed");
	req.nlegs = (int) SPI_processed;
	req.legs = palloc(sizeof(LedgerLeg) * Max(req.nlegs, 1));
	is_debt = palloc0(sizeof(bool) * Max(req.nlegs, 1));
	for (int i = 0; i < req.nlegs; i++)
	{
		bool		isnull;
		HeapTuple	tup = SPI_tuptable->vals[i];
		text	   *cur;
		Datum		debt_of;

		req.legs[i].account = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		req.legs[i].units = -DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		cur = DatumGetTextPP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull));
		(void) money_code_from_text(VARDATA_ANY(cur), VARSIZE_ANY_EXHDR(cur), &req.legs[i].currency);
		/* a user's debt account among the legs */
		debt_of = SPI_getbinval(tup, SPI_tuptable->tupdesc, 4, &isnull);
		is_debt[i] = !isnull;
		if (!isnull && debt_credited == 0)
		{
			debt_credited = req.legs[i].account;
			debt_user = DatumGetInt64(debt_of);
		}
		else if (!isnull && debt_credited != req.legs[i].account)
			debt_accounts_many = true;
	}
	if (SPI_execute_plan(plan_refund_user, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "wallet: refund lookup failed");
	if (SPI_processed > 0)
	{
		bool		isnull;
		int64		user_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		if (!isnull && reverse_refund_legs(&req, user_id))
			debt_credited = 0;
	}
	if (debt_credited != 0 && !debt_accounts_many)
		reverse_debt_credit(&req, debt_credited, debt_user);
	else if (debt_accounts_many)
	{
		/*
		 * The debt accounts of several users (only the generic API posts
		 * such a transaction): one the reversal would credit could not be
		 * capped here, so that reversal is refused.
		 */
		for (int i = 0; i < req.nlegs; i++)
		{
			int128		net = 0;

			if (!is_debt[i])
				continue;
			for (int j = 0; j < req.nlegs; j++)
				if (req.legs[j].account == req.legs[i].account)
					net += req.legs[j].units;
			if (net > 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("transaction " INT64_FORMAT " cannot be reversed: it names the debt accounts of several users", tx_id),
						 errdetail("Its reversal would credit debt account " INT64_FORMAT "; a reversal credits at most the debt owed, for one user's debt account at a time.",
								   req.legs[i].account),
						 errhint("Post the reversal as separate postings, one per user.")));
		}
	}
	res = ledger_post(&req);
	SPI_finish();
	PG_RETURN_INT64(res.txn_id);
}
