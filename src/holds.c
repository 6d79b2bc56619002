/*
 * holds.c — two-phase postings: wallet.hold reserves funds, wallet.capture
 * posts all or part of them through the posting engine (releasing the
 * reservation in the same transaction), wallet.void releases them.
 *
 * Lock order: a hold end (capture, void) locks the hold row first and then
 * accounts in ascending id order (ledger_post); placing a hold locks only
 * the debited account, then takes the destination's hot-posting lock
 * shared (after every row lock, like an unlocked credit, so that close and
 * freeze wait for it); wallet.expire_holds (SQL) skips locked holds.  A
 * transaction therefore waits for at most one hold row, and only before it
 * holds any account lock, so holds cannot close a deadlock cycle.
 */
#include "ledger.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

static SPIPlanPtr plan_insert_hold = NULL;
static SPIPlanPtr plan_find_hold_key = NULL;
static SPIPlanPtr plan_read_account = NULL;
static SPIPlanPtr plan_lock_account = NULL;
static SPIPlanPtr plan_add_held = NULL;
static SPIPlanPtr plan_lock_hold = NULL;
static SPIPlanPtr plan_end_hold = NULL;
static SPIPlanPtr plan_audit_hold = NULL;

static void
prepare_hold_plans(void)
{
	if (plan_insert_hold != NULL)
		return;
	{
		Oid			t[9] = {TEXTOID, BYTEAOID, INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID};

		plan_insert_hold = ledger_prepare_kept(
											   "INSERT INTO wallet.hold (id, idempotency_key, request_hash, from_account, to_account, amount, "
											   "currency, kind, metadata, expires_at) "
											   "VALUES (nextval('wallet.hold_id_seq'), $1, $2, $3, $4, $5, $6, $7, $8, $9) "
											   "ON CONFLICT DO NOTHING RETURNING id", 9, t);
	}
	{
		Oid			t[1] = {TEXTOID};

		plan_find_hold_key = ledger_prepare_kept(
												 "SELECT id, request_hash FROM wallet.hold WHERE idempotency_key = $1", 1, t);
	}
	{
		Oid			t[1] = {INT8OID};

		plan_read_account = ledger_prepare_kept(
												"SELECT currency, status, allow_negative, hot, balance, held, coalesce(debt_account, 0), "
												LEDGER_DEBT_USER_SQL("") " IS NOT NULL "
												"FROM wallet.account WHERE id = $1", 1, t);
		plan_lock_account = ledger_prepare_kept(
												"SELECT currency, status, allow_negative, hot, balance, held, coalesce(debt_account, 0), "
												LEDGER_DEBT_USER_SQL("") " IS NOT NULL "
												"FROM wallet.account WHERE id = $1 FOR NO KEY UPDATE", 1, t);
		plan_audit_hold = ledger_prepare_kept(
											  "SELECT wallet.audit_row('wallet.hold', 'INSERT', NULL, to_jsonb(h)) "
											  "FROM wallet.hold h WHERE h.id = $1", 1, t);
		plan_lock_hold = ledger_prepare_kept(
											 "SELECT from_account, to_account, amount, currency, status, expires_at, "
											 "coalesce(expires_at <= now(), false), kind, metadata "
											 "FROM wallet.hold WHERE id = $1 FOR UPDATE", 1, t);
	}
	{
		Oid			t[2] = {INT8OID, INT8OID};

		plan_add_held = ledger_prepare_kept(
											"UPDATE wallet.account SET held = held + $2, version = version + 1 WHERE id = $1", 2, t);
	}
	{
		Oid			t[4] = {INT8OID, TEXTOID, INT8OID, INT8OID};

		plan_end_hold = ledger_prepare_kept(
											"UPDATE wallet.hold SET status = $2, captured = $3, capture_txn = $4, ended_at = now() "
											"WHERE id = $1", 4, t);
	}
}

typedef struct AccountRow
{
	MoneyCode	currency;
	char		status;
	bool		allow_negative;
	bool		hot;
	int64		balance;
	int64		held;
	int64		debt_account;
	bool		is_debt;		/* a user's debt account (see rows.c) */
} AccountRow;

/* read (or lock) one account; WL003 if it does not exist */
static void
fetch_account(int64 id, bool lock, AccountRow *row)
{
	Datum		arg = Int64GetDatum(id);
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	text	   *t;

	if (SPI_execute_plan(lock ? plan_lock_account : plan_read_account, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "wallet: account read failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_UNKNOWN_ACCOUNT),
				 errmsg("unknown account " INT64_FORMAT, id),
				 errdetail("No account has id " INT64_FORMAT ".", id)));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	t = DatumGetTextPP(SPI_getbinval(tup, desc, 1, &isnull));
	(void) money_code_from_text(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &row->currency);
	t = DatumGetTextPP(SPI_getbinval(tup, desc, 2, &isnull));
	row->status = *VARDATA_ANY(t);
	row->allow_negative = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
	row->hot = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
	row->balance = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
	row->held = DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull));
	row->debt_account = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));
	row->is_debt = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
}

static void
check_currency(int64 id, const AccountRow *row, const Amount *amount)
{
	if (!money_code_eq(&row->currency, &amount->currency))
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_CURRENCY_MISMATCH),
				 errmsg("currency mismatch: account " INT64_FORMAT " holds %s, the amount is %s",
						id, ledger_code_str(&row->currency), amount_to_cstring(amount)),
				 errdetail("Account " INT64_FORMAT " is in %s; the amount is %s.",
						   id, ledger_code_str(&row->currency), amount_to_cstring(amount))));
}

/* wallet.hold(from, to, amount, key, expires_at, kind, metadata) → hold id */
PG_FUNCTION_INFO_V1(wallet_hold);
Datum
wallet_hold(PG_FUNCTION_ARGS)
{
	int64		from,
				to;
	Amount	   *amount;
	text	   *key,
			   *kind;
	Jsonb	   *metadata;
	LedgerLeg	legs[2];
	bytea	   *fingerprint;
	char	   *extra;
	Datum		values[9];
	char		nulls[9];
	int64		hold_id;
	bool		isnull;
	AccountRow to_row,
				from_row;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("from_account, to_account and amount must not be null"),
				 errdetail("from_account %s, to_account %s, amount %s.",
						   PG_ARGISNULL(0) ? "null" : "given", PG_ARGISNULL(1) ? "null" : "given",
						   PG_ARGISNULL(2) ? "null" : "given")));
	from = PG_GETARG_INT64(0);
	to = PG_GETARG_INT64(1);
	amount = PG_GETARG_AMOUNT_P(2);
	key = ledger_check_key(PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3));
	kind = ledger_check_kind(PG_ARGISNULL(5) ? NULL : PG_GETARG_TEXT_PP(5));
	metadata = ledger_check_metadata(PG_ARGISNULL(6) ? NULL : PG_GETARG_JSONB_P(6));
	ledger_checked_transfer_legs(legs, from, to, amount, "hold", NULL);
	/*
	 * The expiry as microseconds since 2000-01-01 UTC: the same request
	 * gives the same fingerprint whatever the session's TimeZone or
	 * DateStyle (drivers set them per connection; poolers hand out any).
	 */
	extra = PG_ARGISNULL(4) ? pstrdup("hold|expires=none")
		: psprintf("hold|expires_us=" INT64_FORMAT, (int64) PG_GETARG_TIMESTAMPTZ(4));
	fingerprint = ledger_fingerprint(VARDATA_ANY(kind), VARSIZE_ANY_EXHDR(kind), legs, 2,
									 metadata, extra);

	SPI_connect();
	prepare_hold_plans();
	values[0] = PointerGetDatum(key);
	values[1] = PointerGetDatum(fingerprint);
	values[2] = Int64GetDatum(from);
	values[3] = Int64GetDatum(to);
	values[4] = Int64GetDatum(amount->units);
	values[5] = CStringGetTextDatum(ledger_code_str(&amount->currency));
	values[6] = PointerGetDatum(kind);
	values[7] = PointerGetDatum(metadata);
	values[8] = PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4);
	memset(nulls, ' ', sizeof(nulls));
	if (metadata == NULL)
		nulls[7] = 'n';
	if (PG_ARGISNULL(4))
		nulls[8] = 'n';
	if (SPI_execute_plan(plan_insert_hold, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "wallet: hold insert failed");
	if (SPI_processed == 0)
	{
		bytea	   *stored;

		if (SPI_execute_plan(plan_find_hold_key, values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "wallet: hold key lookup failed");
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access to idempotency key \"%s\"", text_to_cstring(key)),
					 errdetail("Another transaction placed a hold with this key after this transaction's snapshot was taken."),
					 errhint("Retry the transaction.")));
		hold_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		stored = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		if (VARSIZE_ANY_EXHDR(stored) != VARSIZE_ANY_EXHDR(fingerprint) ||
			memcmp(VARDATA_ANY(stored), VARDATA_ANY(fingerprint), VARSIZE_ANY_EXHDR(fingerprint)) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_WALLET_IDEMPOTENCY_CONFLICT),
					 errmsg("idempotency key \"%s\" was already used for a different hold",
							text_to_cstring(key)),
					 errdetail("Hold " INT64_FORMAT " was placed with this key; this request differs from it.", hold_id)));
		SPI_finish();
		PG_RETURN_INT64(hold_id);
	}
	hold_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	/* the destination must exist, be open and in the same currency */
	fetch_account(to, false, &to_row);
	ledger_raise_status(to, to_row.status);
	check_currency(to, &to_row, amount);
	/*
	 * and not be a user's debt account: one never holds coins, so a
	 * capture to it is refused unless a debt arose meanwhile, and the
	 * funds would stay reserved until a void or the expiry (1.6.0
	 * library; found by a review)
	 */
	if (to_row.is_debt)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("account " INT64_FORMAT " is a debt account, not a hold's destination", to),
				 errdetail("Debt account " INT64_FORMAT " records a user's debt; it never holds coins.", to),
				 errhint("A user repays a debt with a transfer to the debt account, or with the next recharge.")));

	/* the source is locked: reservations change its available balance */
	fetch_account(from, true, &from_row);
	ledger_raise_status(from, from_row.status);
	check_currency(from, &from_row, amount);
	if (!from_row.allow_negative)
	{
		int128		pending = from_row.hot ? ledger_pending(from) : 0;
		int128		avail = (int128) from_row.balance + pending - from_row.held;

		if (avail < amount->units)
			ereport(ERROR,
					(errcode(ERRCODE_WALLET_INSUFFICIENT_FUNDS),
					 errmsg("insufficient funds in account " INT64_FORMAT, from),
					 errdetail("Available %s, requested %s.",
							   units_wide_to_cstring(avail, &from_row.currency),
							   amount_to_cstring(amount))));
		if (from_row.debt_account != 0)
		{
			AccountRow debt;

			fetch_account(from_row.debt_account, false, &debt);
			if (debt.balance < 0)
				ereport(ERROR,
						(errcode(ERRCODE_WALLET_INSUFFICIENT_FUNDS),
						 errmsg("account " INT64_FORMAT " has an outstanding debt of %s", from,
								units_wide_to_cstring(-(int128) debt.balance, &debt.currency)),
						 errdetail("Spending is blocked until the debt from a refund is repaid.")));
		}
	}
	/*
	 * The held amount and the available balance (balance + pending − held,
	 * as wallet.accounts shows it) must stay 64-bit amounts; only an
	 * account allowed to go negative, which skips the funds check, can
	 * reach either limit.
	 */
	{
		int64		newheld;
		int128		pending = from_row.hot ? ledger_pending(from) : 0;

		if (__builtin_add_overflow(from_row.held, amount->units, &newheld))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("held amount of account " INT64_FORMAT " would overflow", from),
					 errdetail("Held %s, this hold %s: more than 64-bit minor units hold.",
							   units_to_cstring(from_row.held, &from_row.currency), amount_to_cstring(amount)),
					 errhint("Capture or void holds on the account first.")));
		if ((int128) from_row.balance + pending - newheld < PG_INT64_MIN)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("available balance of account " INT64_FORMAT " would overflow", from),
					 errdetail("Balance %s, held %s with this hold: the available balance, %s, is less than 64-bit minor units hold.",
							   units_wide_to_cstring((int128) from_row.balance + pending, &from_row.currency),
							   units_to_cstring(newheld, &from_row.currency),
							   units_wide_to_cstring((int128) from_row.balance + pending - newheld, &from_row.currency)),
					 errhint("Capture or void holds on the account first.")));
	}
	values[0] = Int64GetDatum(from);
	values[1] = Int64GetDatum(amount->units);
	if (SPI_execute_plan(plan_add_held, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "wallet: hold reservation failed");

	/*
	 * The destination is not locked (a hold to a busy creator must not
	 * queue behind its credits), but it must not close or freeze under
	 * the hold: take its hot-posting lock shared, as an unlocked credit
	 * does, after every row lock.  close/freeze take it exclusively after
	 * the account's row lock, so either they wait for this hold to commit
	 * and then see it pending (close refuses, WL012), or this waits for
	 * them and the read below, with a fresh snapshot, sees the new status.
	 */
	ledger_lock_hot_shared(to);
	/*
	 * REPEATABLE READ: the transaction's snapshot may predate the close:
	 * 40001 when the destination's row changed since (a check, not a
	 * lock, so the lock order above stands).
	 */
	ledger_check_account_unchanged(to);
	fetch_account(to, false, &to_row);
	ledger_raise_status(to, to_row.status);
	/* the hold's creation is audited here, not by trigger (restores replay it) */
	values[0] = Int64GetDatum(hold_id);
	{
		/* rendered with the audit trigger's fixed output settings (audit.c) */
		int			nest = wallet_canonical_output_begin();

		if (SPI_execute_plan(plan_audit_hold, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "wallet: hold audit failed");
		wallet_canonical_output_end(nest);
	}
	SPI_finish();
	PG_RETURN_INT64(hold_id);
}

typedef struct HoldRow
{
	int64		id;
	int64		from_account;
	int64		to_account;
	int64		amount;
	MoneyCode	currency;
	char	   *status;
	bool		expired;
	text	   *kind;
	Jsonb	   *metadata;
} HoldRow;

/* Lock a hold row; WL014 unknown, WL008 not pending or past expiry. */
static void
lock_pending_hold(int64 id, HoldRow *h, bool allow_expired)
{
	Datum		arg = Int64GetDatum(id);
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	text	   *t;
	Datum		d;

	if (SPI_execute_plan(plan_lock_hold, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "wallet: hold lock failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_UNKNOWN_HOLD),
				 errmsg("unknown hold " INT64_FORMAT, id),
				 errdetail("No hold has id " INT64_FORMAT ".", id)));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	h->id = id;
	h->from_account = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	h->to_account = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	h->amount = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	t = DatumGetTextPP(SPI_getbinval(tup, desc, 4, &isnull));
	(void) money_code_from_text(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &h->currency);
	h->status = TextDatumGetCString(SPI_getbinval(tup, desc, 5, &isnull));
	h->expired = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
	h->kind = DatumGetTextPCopy(SPI_getbinval(tup, desc, 8, &isnull));
	d = SPI_getbinval(tup, desc, 9, &isnull);
	h->metadata = isnull ? NULL : DatumGetJsonbPCopy(d);
	if (strcmp(h->status, "pending") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_HOLD_NOT_PENDING),
				 errmsg("hold " INT64_FORMAT " is not pending", id),
				 errdetail("Its status is %s; a hold ends exactly once.", h->status)));
	if (h->expired && !allow_expired)
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_HOLD_NOT_PENDING),
				 errmsg("hold " INT64_FORMAT " has expired", id),
				 errdetail("It expired at %s; wallet.expire_holds() releases it.",
						   DatumGetCString(DirectFunctionCall1(timestamptz_out,
																   SPI_getbinval(tup, desc, 6, &isnull))))));
}

static void
end_hold(int64 id, const char *status, int64 captured, int64 txn)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(status);
	values[2] = Int64GetDatum(captured);
	values[3] = Int64GetDatum(txn);
	if (txn == 0)
	{
		nulls[2] = 'n';
		nulls[3] = 'n';
	}
	if (SPI_execute_plan(plan_end_hold, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "wallet: hold update failed");
}

/* wallet.capture(hold_id, amount default null) → txn id */
PG_FUNCTION_INFO_V1(wallet_capture);
Datum
wallet_capture(PG_FUNCTION_ARGS)
{
	int64		hold_id;
	HoldRow		h;
	int64		units;
	PostRequest req;
	LedgerLeg	legs[2];
	PostResult	res;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("hold_id must not be null"),
				 errdetail("The hold_id argument is null.")));
	hold_id = PG_GETARG_INT64(0);

	SPI_connect();
	prepare_hold_plans();
	lock_pending_hold(hold_id, &h, false);
	units = h.amount;
	if (!PG_ARGISNULL(1))
	{
		Amount	   *a = PG_GETARG_AMOUNT_P(1);

		if (!money_code_eq(&a->currency, &h.currency))
			ereport(ERROR,
					(errcode(ERRCODE_WALLET_CURRENCY_MISMATCH),
					 errmsg("currency mismatch: hold " INT64_FORMAT " is in %s, the amount is %s",
							hold_id, ledger_code_str(&h.currency), amount_to_cstring(a)),
					 errdetail("Hold " INT64_FORMAT " holds %s.", hold_id,
							   units_to_cstring(h.amount, &h.currency))));
		if (a->units <= 0 || a->units > h.amount)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("capture amount must be positive and at most the held %s, got %s",
							units_to_cstring(h.amount, &h.currency), amount_to_cstring(a)),
					 errdetail("Hold " INT64_FORMAT " holds %s; the capture asked for %s.", hold_id,
							   units_to_cstring(h.amount, &h.currency), amount_to_cstring(a)),
					 errhint("Capture at most the held amount; the rest is released.")));
		units = a->units;
	}
	memset(&req, 0, sizeof(req));
	req.key = cstring_to_text(psprintf("wallet:hold:" INT64_FORMAT ":capture", hold_id));
	req.kind = h.kind;
	req.metadata = h.metadata;
	ledger_transfer_legs(legs, h.from_account, h.to_account, units, &h.currency);
	req.legs = legs;
	req.nlegs = 2;
	req.release_account = h.from_account;
	req.release_units = h.amount;
	req.fingerprint_extra = psprintf("capture of hold " INT64_FORMAT, hold_id);
	res = ledger_post(&req);
	if (res.existed)
		elog(ERROR, "wallet: hold " INT64_FORMAT " was captured twice", hold_id);
	end_hold(hold_id, "captured", units, res.txn_id);
	SPI_finish();
	PG_RETURN_INT64(res.txn_id);
}

/* wallet.void(hold_id): release a pending hold */
PG_FUNCTION_INFO_V1(wallet_void);
Datum
wallet_void(PG_FUNCTION_ARGS)
{
	int64		hold_id;
	HoldRow		h;
	AccountRow	from_row;
	Datum		values[2];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("hold_id must not be null"),
				 errdetail("The hold_id argument is null.")));
	hold_id = PG_GETARG_INT64(0);

	SPI_connect();
	prepare_hold_plans();
	lock_pending_hold(hold_id, &h, true);
	fetch_account(h.from_account, true, &from_row);
	values[0] = Int64GetDatum(h.from_account);
	values[1] = Int64GetDatum(-h.amount);
	if (SPI_execute_plan(plan_add_held, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "wallet: hold release failed");
	end_hold(hold_id, "voided", 0, 0);
	SPI_finish();
	PG_RETURN_VOID();
}
