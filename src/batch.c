/*
 * batch.c — wallet.transfer_batch: many independent transfers in one call,
 * each with its own outcome, written with a handful of set-based
 * statements instead of one round of statements per transfer.
 *
 * Order of work, the same as a single posting (keys, then accounts in
 * ascending id order), so batches and single postings cannot deadlock:
 *   1. validate each row; compute its request fingerprint (identical to
 *      wallet.transfer's, so a retried single transfer and a batch row with
 *      the same key are the same request);
 *   2. group the rows by key.  Rows repeating the first row's request
 *      (a merged retry) are replayed each in its own place, as if posted
 *      one by one: the first that can post does (under the key's one
 *      claim), earlier ones keep their own failure, later ones are exists.
 *      A row giving the key another request is idempotency_conflict (or
 *      exists, when that request is the one already in the journal);
 *   3. inside an internal subtransaction: claim the remaining keys in key
 *      order (INSERT ... ON CONFLICT DO NOTHING), lock the accounts once
 *      each in id order, and replay the rows in batch order against the
 *      running balances.  If a key was taken meanwhile or a row fails
 *      (funds, status, currency, unknown account), the subtransaction is
 *      rolled back, those rows get their final status (a key found in the
 *      journal: exists or idempotency_conflict), and the rest is tried
 *      again (each round removes at least one row);
 *   4. write all entries, balance updates and hot pending rows in bulk.
 */
#include "ledger.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"

#define BATCH_MAX_ROWS 10000

typedef enum BatchStatus
{
	BS_PENDING = 0,
	BS_OK,
	BS_EXISTS,
	BS_CONFLICT,
	BS_INSUFFICIENT,
	BS_UNKNOWN_ACCOUNT,
	BS_CURRENCY,
	BS_FROZEN,
	BS_CLOSED,
	BS_INVALID_AMOUNT,
	BS_SAME_ACCOUNT,
	BS_INVALID_KEY,
	BS_NULL
} BatchStatus;

static const char *const status_names[] = {
	"pending", "ok", "exists", "idempotency_conflict", "insufficient_funds",
	"unknown_account", "currency_mismatch", "account_frozen", "account_closed",
	"invalid_amount", "same_account", "invalid_key", "null_argument"
};

typedef struct BatchRow
{
	int64		from;
	int64		to;
	int64		units;
	MoneyCode	currency;
	text	   *key;
	bytea	   *hash;
	BatchStatus status;
	int64		txn_id;
	int			grp;			/* its key's group (step 2), or -1 */
	bool		other_request;	/* repeats its group's key with another request */
	bytea	   *found_hash;		/* the journal's request for the key, when found */
	int64		found_id;		/* and its transaction */
} BatchRow;

/*
 * Rows by key (step 2): group g is the run byk[start[g] .. end[g]) of the
 * rows sorted by key, then position.  Per round: the id its claim drew and
 * whether one of its rows posted in the replay.
 */
typedef struct BatchGroups
{
	int			ngrp;
	int		   *byk;
	int		   *start;
	int		   *end;
	int64	   *txn;
	bool	   *posted;
	/* per call, reused by every round: the rows in play, net changes */
	int		   *play;
	int128	   *net;
} BatchGroups;

static SPIPlanPtr plan_lookup_keys = NULL;
static SPIPlanPtr plan_claim_keys = NULL;
static SPIPlanPtr plan_entries = NULL;
static SPIPlanPtr plan_pending = NULL;

static void
prepare_batch_plans(void)
{
	if (plan_lookup_keys != NULL)
		return;
	{
		Oid			t[1] = {TEXTARRAYOID};

		plan_lookup_keys = ledger_prepare_kept(
											   "SELECT idempotency_key, id, request_hash FROM wallet.txn "
											   "WHERE idempotency_key = ANY($1)", 1, t);
	}
	{
		Oid			t[3] = {TEXTARRAYOID, BYTEAARRAYOID, INT8ARRAYOID};

		/* keys arrive sorted; rows are inserted in that order */
		plan_claim_keys = ledger_prepare_kept(
											  "INSERT INTO wallet.txn (id, idempotency_key, kind, request_hash) "
											  "SELECT k.id, k.key, 'transfer', k.hash "
											  "FROM unnest($1, $2, $3) WITH ORDINALITY AS k(key, hash, id, ord) ORDER BY k.ord "
											  "ON CONFLICT DO NOTHING RETURNING idempotency_key, id", 3, t);
	}
	{
		Oid			t[4] = {INT8ARRAYOID, INT2ARRAYOID, INT8ARRAYOID, INT8ARRAYOID};

		plan_entries = ledger_prepare_kept(
										   "INSERT INTO wallet.entry (txn_id, leg, account_id, amount) "
										   "SELECT * FROM unnest($1, $2, $3, $4)", 4, t);
	}
	{
		Oid			t[3] = {INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID};

		plan_pending = ledger_prepare_kept(
										   "INSERT INTO wallet.hot_pending (account_id, txn_id, amount) "
										   "SELECT * FROM unnest($1, $2, $3)", 3, t);
	}
}

/* rows ia and ib by key (bytes, then length), then by position */
static inline int
cmp_key_idx(const int *a, const int *b, BatchRow *rows)
{
	int			ia = *a;
	int			ib = *b;
	text	   *ka = rows[ia].key;
	text	   *kb = rows[ib].key;
	int			la = VARSIZE_ANY_EXHDR(ka),
				lb = VARSIZE_ANY_EXHDR(kb);
	int			c = memcmp(VARDATA_ANY(ka), VARDATA_ANY(kb), Min(la, lb));

	if (c != 0)
		return c;
	if (la != lb)
		return la < lb ? -1 : 1;
	return (ia > ib) - (ia < ib);
}

/* sort_by_key(idx, n, rows): row indexes in key order */
#define ST_SORT sort_by_key
#define ST_ELEMENT_TYPE int
#define ST_COMPARE_ARG_TYPE BatchRow
#define ST_COMPARE(a, b, arg) cmp_key_idx(a, b, arg)
#define ST_SCOPE static
#define ST_DECLARE
#define ST_DEFINE
#include "lib/sort_template.h"

/* sort_ints(): ascending, comparison inlined (PostgreSQL's sort template) */
#define ST_SORT sort_ints
#define ST_ELEMENT_TYPE int
#define ST_COMPARE(a, b) ((*(a) > *(b)) - (*(a) < *(b)))
#define ST_SCOPE static
#define ST_DECLARE
#define ST_DEFINE
#include "lib/sort_template.h"

/* sort_by_position(idx, n, at): indexes i by at[i] (distinct positions) */
#define ST_SORT sort_by_position
#define ST_ELEMENT_TYPE int
#define ST_COMPARE_ARG_TYPE int
#define ST_COMPARE(a, b, at) ((at[*(a)] > at[*(b)]) - (at[*(a)] < at[*(b)]))
#define ST_SCOPE static
#define ST_DECLARE
#define ST_DEFINE
#include "lib/sort_template.h"

static bool
same_key(text *a, text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

static bool
same_hash(bytea *a, bytea *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/* Look keys up in the journal; rows found get exists / conflict. */
static void
resolve_existing(BatchRow *rows, int *idx, int nidx)
{
	Datum	   *keys;
	Datum		arg;

	if (nidx == 0)
		return;
	keys = palloc(sizeof(Datum) * nidx);
	for (int i = 0; i < nidx; i++)
		keys[i] = PointerGetDatum(rows[idx[i]].key);
	arg = PointerGetDatum(construct_array(keys, nidx, TEXTOID, -1, false, TYPALIGN_INT));
	if (SPI_execute_plan(plan_lookup_keys, &arg, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "wallet: batch key lookup failed");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		HeapTuple	tup = SPI_tuptable->vals[r];
		text	   *k = DatumGetTextPP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		int64		id = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		bytea	   *h = DatumGetByteaPP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull));

		for (int i = 0; i < nidx; i++)
		{
			BatchRow   *row = &rows[idx[i]];

			if (row->status != BS_PENDING || !same_key(row->key, k))
				continue;
			row->txn_id = id;
			row->found_hash = DatumGetByteaPP(SPI_datumTransfer(PointerGetDatum(h), false, -1));
			row->found_id = id;
			row->status = same_hash(row->hash, h) ? BS_EXISTS : BS_CONFLICT;
			if (row->status == BS_CONFLICT)
				row->txn_id = 0;
		}
	}
}

/*
 * One round of step 3.  Returns true when every candidate was posted;
 * false when some rows got a final failure status or lost their key (the
 * caller rolls back and retries the rest).  cand[] is sorted by key.
 */
typedef struct BatchEntry
{
	int64		account;
	int64		txn;
	int64		amount;
	int16		leg;
} BatchEntry;

/* entries appended directly (rows.c), or with the SQL statement */
static void
write_entries(BatchEntry *e, int ne)
{
	int64	   *txn = palloc(sizeof(int64) * ne);
	int16	   *leg = palloc(sizeof(int16) * ne);
	int64	   *acc = palloc(sizeof(int64) * ne);
	int64	   *amt = palloc(sizeof(int64) * ne);

	for (int i = 0; i < ne; i++)
	{
		txn[i] = e[i].txn;
		leg[i] = e[i].leg;
		acc[i] = e[i].account;
		amt[i] = e[i].amount;
	}
	if (!ledger_append_entries(ne, txn, leg, acc, amt))
	{
		Datum		values[4];
		Datum	   *legs = palloc(sizeof(Datum) * ne);

		for (int i = 0; i < ne; i++)
			legs[i] = Int16GetDatum(leg[i]);
		values[0] = ledger_int8_array(txn, ne);
		values[1] = PointerGetDatum(construct_array(legs, ne, INT2OID, 2, true, TYPALIGN_SHORT));
		values[2] = ledger_int8_array(acc, ne);
		values[3] = ledger_int8_array(amt, ne);
		if (SPI_execute_plan(plan_entries, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "wallet: batch entry insert failed");
	}
}

static void
claim_keys_sql(BatchRow *rows, int *cand, int ncand, const int64 *newids, bool *claimed)
{
	Datum		values[3];
	Datum	   *keys = palloc(sizeof(Datum) * ncand);
	Datum	   *hashes = palloc(sizeof(Datum) * ncand);

	for (int i = 0; i < ncand; i++)
	{
		keys[i] = PointerGetDatum(rows[cand[i]].key);
		hashes[i] = PointerGetDatum(rows[cand[i]].hash);
	}
	values[0] = PointerGetDatum(construct_array(keys, ncand, TEXTOID, -1, false, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(hashes, ncand, BYTEAOID, -1, false, TYPALIGN_INT));
	values[2] = ledger_int8_array(newids, ncand);
	if (SPI_execute_plan(plan_claim_keys, values, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "wallet: batch key claim failed");
	{
		/* RETURNING comes in insertion order, i.e. cand order minus losers */
		uint64		r = 0;

		for (int i = 0; i < ncand && r < SPI_processed; i++)
		{
			bool		isnull;
			text	   *k = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));

			if (same_key(k, rows[cand[i]].key))
			{
				rows[cand[i]].txn_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
				claimed[i] = true;
				r++;
			}
		}
	}
}

/* rows in play go back to pending: the round is redone */
static void
replay_later(BatchRow *rows, const int *play, int nplay)
{
	for (int i = 0; i < nplay; i++)
	{
		rows[play[i]].status = BS_PENDING;
		rows[play[i]].txn_id = 0;
	}
}

/*
 * One round of step 3 over the rows in play: every pending row of the
 * groups whose claim holder is in cand[] (one per group, in key order).
 * Returns true when every row in play was posted (or, repeating a row that
 * posted just before, is exists); false when some rows got a final failure
 * status or a claim was lost (the caller rolls back and retries the rest).
 */
static bool
post_round(BatchRow *rows, BatchGroups *gr, int *cand, int ncand, int *lost, int *nlost,
		   bool lock_rows, bool lock_hot, bool *changed, bool *want_hot_lock)
{
	Datum		values[4];
	int64	   *ids;
	int			nids = 0;
	int64	   *debits;
	int			ndebits = 0;
	AccountState *states;
	bool		failed = false;
	bool	   *claimed = palloc0(sizeof(bool) * ncand);
	int		   *play;
	int			nplay = 0;
	int128	   *net;

	*nlost = 0;

	/*
	 * Claim keys, in key order: journal rows appended directly (rows.c); a
	 * key another transaction posted meanwhile raises 23505, which the
	 * caller turns into a lookup and another round.  With a trigger on
	 * wallet.txn, the SQL statement instead (ON CONFLICT DO NOTHING).
	 *
	 * The ids follow batch order, not key order: the rows are applied in
	 * batch order, and an account's statement lists its postings by id, so
	 * a batch that funds an account and then spends from it must not read
	 * as spending first.  Each group's transaction takes effect at its
	 * first pending row (later rows of the group are exists).
	 */
	{
		text	  **k = palloc(sizeof(text *) * ncand);
		bytea	  **h = palloc(sizeof(bytea *) * ncand);
		int64	   *newids = palloc(sizeof(int64) * ncand);
		int64	   *drawn = palloc(sizeof(int64) * ncand);
		int		   *at = palloc(sizeof(int) * ncand);
		int		   *order = palloc(sizeof(int) * ncand);

		for (int i = 0; i < ncand; i++)
		{
			int			g = rows[cand[i]].grp;

			k[i] = rows[cand[i]].key;
			h[i] = rows[cand[i]].hash;
			at[i] = cand[i];
			for (int m = gr->start[g]; m < gr->end[g]; m++)
				if (rows[gr->byk[m]].status == BS_PENDING && gr->byk[m] < at[i])
					at[i] = gr->byk[m];
			order[i] = i;
		}
		sort_by_position(order, ncand, at);
		ledger_draw_txn_ids(ncand, drawn);
		for (int j = 0; j < ncand; j++)
			newids[order[j]] = drawn[j];
		if (ledger_append_transfers(ncand, k, h, newids))
		{
			for (int i = 0; i < ncand; i++)
			{
				rows[cand[i]].txn_id = newids[i];
				claimed[i] = true;
			}
		}
		else
			claim_keys_sql(rows, cand, ncand, newids, claimed);
	}
	for (int i = 0; i < ncand; i++)
		if (!claimed[i])
			lost[(*nlost)++] = cand[i];
	if (*nlost > 0)
		return false;

	/*
	 * The rows in play: each group's pending rows (the claim holder and the
	 * rows repeating its request, which move the same money between the
	 * same accounts), replayed in batch order.
	 */
	play = gr->play;
	for (int i = 0; i < ncand; i++)
	{
		int			g = rows[cand[i]].grp;

		gr->txn[g] = rows[cand[i]].txn_id;
		gr->posted[g] = false;
		for (int m = gr->start[g]; m < gr->end[g]; m++)
			if (rows[gr->byk[m]].status == BS_PENDING)
				play[nplay++] = gr->byk[m];
	}
	sort_ints(play, nplay);

	/* lock every account once, ascending id */
	ids = palloc(sizeof(int64) * ncand * 2);
	debits = palloc(sizeof(int64) * ncand);
	for (int i = 0; i < ncand; i++)
	{
		ids[nids++] = rows[cand[i]].from;
		ids[nids++] = rows[cand[i]].to;
		debits[ndebits++] = rows[cand[i]].from;
	}
	nids = ledger_sort_unique_ids(ids, nids);
	ndebits = ledger_sort_unique_ids(debits, ndebits);
	states = palloc0(sizeof(AccountState) * nids);
	for (int i = 0; i < nids; i++)
	{
		states[i].id = ids[i];
		states[i].force_lock = lock_hot;
	}
	if (lock_rows)
	{
		ledger_load_accounts(states, nids, debits, ndebits, NULL, 0);
		for (int i = 0; i < nids; i++)
			if (states[i].stale_hot)
			{
				/*
				 * set_hot(id, false) while we waited: redo the round with
				 * every hot account's row locked, in id order (a single
				 * posting raises 40001 here instead)
				 */
				*changed = true;
				*want_hot_lock = true;
				replay_later(rows, play, nplay);
				return false;
			}
	}
	else
		ledger_read_accounts_for_update(states, nids, debits, ndebits);

	/*
	 * Replay in batch order.  The first debit of an account folds its hot
	 * pending rows into the working balance and notes outstanding debt.
	 * Running changes per account in 128 bits (net[], by index in states).
	 */
	net = gr->net;
	memset(net, 0, sizeof(int128) * nids);
	for (int i = 0; i < nplay; i++)
	{
		BatchRow   *row = &rows[play[i]];
		AccountState *f = ledger_find_state(states, nids, row->from);
		AccountState *t = ledger_find_state(states, nids, row->to);

		CHECK_FOR_INTERRUPTS();
		if (gr->posted[row->grp])
		{
			/* repeats a request that posted just before it */
			row->status = BS_EXISTS;
			row->txn_id = gr->txn[row->grp];
			continue;
		}
		row->txn_id = 0;
		if (!f->found || !t->found)
			row->status = BS_UNKNOWN_ACCOUNT;
		else if (f->status == 'f' || t->status == 'f')
			row->status = BS_FROZEN;
		else if (f->status == 'c' || t->status == 'c')
			row->status = BS_CLOSED;
		else if (!money_code_eq(&f->currency, &row->currency) ||
				 !money_code_eq(&t->currency, &row->currency))
			row->status = BS_CURRENCY;
		else if (t->is_debt && !t->hot && (int128) t->balance + net[t - states] + row->units > 0)
			/* a debt account never holds coins: 22023 in a single posting */
			row->status = BS_INVALID_AMOUNT;
		else if (!f->allow_negative)
		{
			int128		avail;

			if (!f->funds_loaded)
			{
				/* first debit of this account: fold in its pending rows and debt */
				f->funds_loaded = true;
				if (f->hot)
					f->pending = ledger_pending(f->id);
				if (f->debt_account != 0)
					f->has_debt = ledger_stored_balance(f->debt_account) < 0;
			}
			avail = (int128) f->balance + f->pending - f->held + net[f - states];
			/*
			 * outstanding debt blocks spending, except paying that debt
			 * back: a row from the user to its own debt account, which
			 * stays at or below zero (ledger_repays_own_debt, 1.6.0; the
			 * debt account is never hot, and its balance read here is the
			 * one its write checks).  Conservative: a later row of the
			 * same batch is still refused after the debt is repaid in
			 * full.
			 */
			if (f->has_debt &&
				!(t->id == f->debt_account &&
				  (int128) t->balance + net[t - states] + row->units <= 0))
				row->status = BS_INSUFFICIENT;
			else if (avail < row->units)
				row->status = BS_INSUFFICIENT;
		}
		if (row->status != BS_PENDING)
		{
			failed = true;
			continue;
		}
		net[f - states] -= row->units;
		net[t - states] += row->units;
		row->status = BS_OK;
		row->txn_id = gr->txn[row->grp];
		gr->posted[row->grp] = true;
	}
	/*
	 * Each account's net change, summed in 128 bits over the rows (a
	 * running int64 total could pass its limit half way and make the
	 * batch's fate depend on the order of its rows), must fit in 64 bits.
	 */
	for (int i = 0; i < nids; i++)
	{
		if (net[i] < PG_INT64_MIN || net[i] > PG_INT64_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("batch overflows 64-bit minor units on account " INT64_FORMAT, states[i].id),
					 errdetail("The batch's rows move %s into account " INT64_FORMAT ", %s than 64-bit minor units hold.",
							   units_wide_to_cstring(net[i], &states[i].currency), states[i].id,
							   net[i] > 0 ? "more" : "less")));
		states[i].delta = (int64) net[i];
	}
	if (failed && !lock_rows)
	{
		/*
		 * Decided on rows read without their locks (a fold or a credit may
		 * have been committing meanwhile): not final.  Redo the round with
		 * the rows locked, and decide there.
		 */
		*changed = true;
		replay_later(rows, play, nplay);
		return false;
	}
	if (failed)
	{
		/* losers keep their status; the others go back to pending */
		for (int i = 0; i < nplay; i++)
		{
			if (rows[play[i]].status == BS_OK || rows[play[i]].status == BS_EXISTS)
				rows[play[i]].status = BS_PENDING;
			rows[play[i]].txn_id = 0;
		}
		return false;
	}

	/*
	 * Credits to hot accounts near int64's limit (see HOT_SAFE_BALANCE in
	 * ledger.h): checked exactly when the row is locked; otherwise the round
	 * is redone with hot rows locked too.
	 */
	for (int i = 0; i < nids; i++)
	{
		AccountState *st = &states[i];

		if (!st->found || !st->hot || st->delta <= 0)
			continue;
		if (st->locked)
			ledger_check_hot_credit(st, st->delta);
		else if (HOT_UNSAFE(st->balance, st->delta))
		{
			*changed = true;
			*want_hot_lock = true;
			replay_later(rows, play, nplay);
			return false;
		}
	}

	/*
	 * Write: entries, balances of locked accounts, hot pending rows.
	 * Entries go in transaction order (ids were drawn in key order): the
	 * primary key then takes them on its rightmost page without a descent,
	 * which measured faster than feeding the per-account index in order.
	 */
	{
		BatchEntry *e;
		int			ne = 0;
		int64	   *p_id = palloc(sizeof(int64) * nids);
		int64	   *p_txn = palloc(sizeof(int64) * nids);
		int64	   *p_amt = palloc(sizeof(int64) * nids);
		int			np = 0;

		if (!ledger_write_accounts(states, nids) || !ledger_lock_hot_after_writes(states, nids))
		{
			/* an account read without its lock changed: redo with locks */
			*changed = true;
			replay_later(rows, play, nplay);
			return false;
		}
		e = palloc(sizeof(BatchEntry) * ncand * 2);
		for (int i = 0; i < ncand; i++)
		{
			/* each group posted once, under its holder's claim */
			BatchRow   *row = &rows[cand[i]];

			e[ne].txn = gr->txn[row->grp];
			e[ne].leg = 1;
			e[ne].account = row->from;
			e[ne].amount = -row->units;
			ne++;
			e[ne].txn = gr->txn[row->grp];
			e[ne].leg = 2;
			e[ne].account = row->to;
			e[ne].amount = row->units;
			ne++;
		}
		write_entries(e, ne);

		for (int i = 0; i < nids; i++)
		{
			AccountState *st = &states[i];

			if (st->delta == 0 || st->locked)
				continue;
			{
				/* one pending row per hot account per batch (the last txn) */
				int64		last_txn = 0;

				for (int c = 0; c < ncand; c++)
				{
					BatchRow   *row = &rows[cand[c]];

					if ((row->to == st->id || row->from == st->id) && gr->txn[row->grp] > last_txn)
						last_txn = gr->txn[row->grp];
				}
				p_id[np] = st->id;
				p_txn[np] = last_txn;
				p_amt[np] = st->delta;
				np++;
			}
		}
		if (np > 0)
		{
			values[0] = ledger_int8_array(p_id, np);
			values[1] = ledger_int8_array(p_txn, np);
			values[2] = ledger_int8_array(p_amt, np);
			if (SPI_execute_plan(plan_pending, values, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "wallet: batch pending insert failed");
		}
	}
	return true;
}

static ArrayType *
arg_array(FunctionCallInfo fcinfo, int n, const char *name)
{
	ArrayType  *a;

	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name),
				 errdetail("Argument %d of wallet.transfer_batch is null; pass an array (its elements may be null).", n + 1)));
	a = PG_GETARG_ARRAYTYPE_P(n);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array", name),
				 errdetail("It has %d dimensions.", ARR_NDIM(a))));
	return a;
}

/*
 * wallet.transfer_batch(from_accounts, to_accounts, amounts, keys)
 *   → table(idx int, tx_id bigint, status text)
 */
PG_FUNCTION_INFO_V1(wallet_transfer_batch);
Datum
wallet_transfer_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *a_from = arg_array(fcinfo, 0, "from_accounts");
	ArrayType  *a_to = arg_array(fcinfo, 1, "to_accounts");
	ArrayType  *a_amt = arg_array(fcinfo, 2, "amounts");
	ArrayType  *a_key = arg_array(fcinfo, 3, "idempotency_keys");
	Datum	   *d_from,
			   *d_to,
			   *d_amt,
			   *d_key;
	bool	   *n_from,
			   *n_to,
			   *n_amt,
			   *n_key;
	int			c_from,
				c_to,
				c_amt,
				c_key;
	int16		amt_len;
	bool		amt_byval;
	char		amt_align;
	BatchRow   *rows;
	int			n;
	int		   *cand,
			   *lost,
			   *byk;
	int			ncand,
				nlost;
	BatchGroups gr;
	int		   *nlost_box;
	bool	   *changed_box;
	bool	   *want_hot_lock_box;
	bool		lock_rows = false;	/* first round: read, update if unchanged */
	bool		lock_hot = false;	/* lock hot accounts' rows too */

	InitMaterializedSRF(fcinfo, 0);

	deconstruct_array(a_from, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &d_from, &n_from, &c_from);
	deconstruct_array(a_to, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &d_to, &n_to, &c_to);
	get_typlenbyvalalign(ARR_ELEMTYPE(a_amt), &amt_len, &amt_byval, &amt_align);
	deconstruct_array(a_amt, ARR_ELEMTYPE(a_amt), amt_len, amt_byval, amt_align, &d_amt, &n_amt, &c_amt);
	deconstruct_array(a_key, TEXTOID, -1, false, TYPALIGN_INT, &d_key, &n_key, &c_key);
	if (c_from != c_to || c_from != c_amt || c_from != c_key)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("transfer_batch arrays must have the same length"),
				 errdetail("from_accounts %d, to_accounts %d, amounts %d, idempotency_keys %d.",
						   c_from, c_to, c_amt, c_key)));
	/* rows pair by position: arrays that number them differently would mis-pair */
	if (c_from > 0 &&
		(ARR_LBOUND(a_from)[0] != ARR_LBOUND(a_to)[0] || ARR_LBOUND(a_from)[0] != ARR_LBOUND(a_amt)[0] ||
		 ARR_LBOUND(a_from)[0] != ARR_LBOUND(a_key)[0]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("transfer_batch arrays must have the same subscripts"),
				 errdetail("The first subscripts are from_accounts %d, to_accounts %d, amounts %d, idempotency_keys %d.",
						   ARR_LBOUND(a_from)[0], ARR_LBOUND(a_to)[0], ARR_LBOUND(a_amt)[0], ARR_LBOUND(a_key)[0]),
				 errhint("Rows pair by position; idx in the result is the position, 1 for the first element.")));
	n = c_from;
	if (n > BATCH_MAX_ROWS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("transfer_batch takes at most %d transfers per call, got %d", BATCH_MAX_ROWS, n),
				 errdetail("The arrays have %d elements each.", n),
				 errhint("Split the batch.")));
	if (n == 0)
		return (Datum) 0;

	/* 1. validate rows, fingerprints */
	rows = palloc0(sizeof(BatchRow) * n);
	for (int i = 0; i < n; i++)
	{
		BatchRow   *row = &rows[i];

		if (n_from[i] || n_to[i] || n_amt[i] || n_key[i])
		{
			row->status = BS_NULL;
			continue;
		}
		row->from = DatumGetInt64(d_from[i]);
		row->to = DatumGetInt64(d_to[i]);
		row->units = DatumGetAmountP(d_amt[i])->units;
		row->currency = DatumGetAmountP(d_amt[i])->currency;
		row->key = DatumGetTextPP(d_key[i]);
		if (VARSIZE_ANY_EXHDR(row->key) < 1 || VARSIZE_ANY_EXHDR(row->key) > LEDGER_MAX_KEY_LEN ||
			(VARSIZE_ANY_EXHDR(row->key) >= (int) strlen(LEDGER_RESERVED_PREFIX) &&
			 memcmp(VARDATA_ANY(row->key), LEDGER_RESERVED_PREFIX, strlen(LEDGER_RESERVED_PREFIX)) == 0))
			row->status = BS_INVALID_KEY;
		else if (row->units <= 0)
			row->status = BS_INVALID_AMOUNT;
		else if (row->from == row->to)
			row->status = BS_SAME_ACCOUNT;
		else
		{
			LedgerLeg	legs[2];

			ledger_transfer_legs(legs, row->from, row->to, row->units, &row->currency);
			row->hash = ledger_fingerprint("transfer", 8, legs, 2, NULL, NULL);
		}
	}

	/*
	 * 2. rows by key (sorted by key, then position: each key's rows are one
	 * run, its group).  A row whose request differs from the group's first
	 * row's is set aside as idempotency_conflict (adjusted at the end if
	 * its request is the one the journal holds).
	 */
	byk = palloc(sizeof(int) * (n + 1));
	ncand = 0;
	for (int i = 0; i < n; i++)
	{
		rows[i].grp = -1;
		if (rows[i].status == BS_PENDING)
			byk[ncand++] = i;
	}
	sort_by_key(byk, ncand, rows);
	gr.byk = byk;
	gr.start = palloc(sizeof(int) * (ncand + 1));
	gr.end = palloc(sizeof(int) * (ncand + 1));
	gr.txn = palloc0(sizeof(int64) * (ncand + 1));
	gr.posted = palloc0(sizeof(bool) * (ncand + 1));
	gr.play = palloc(sizeof(int) * (ncand + 1));
	gr.net = palloc(sizeof(int128) * (2 * ncand + 1));	/* two accounts a row at most */
	gr.ngrp = 0;
	for (int i = 0; i < ncand; i++)
	{
		BatchRow   *row = &rows[byk[i]];

		if (i > 0 && same_key(row->key, rows[byk[i - 1]].key))
		{
			gr.end[gr.ngrp - 1] = i + 1;
			row->grp = gr.ngrp - 1;
			if (!same_hash(row->hash, rows[byk[gr.start[gr.ngrp - 1]]].hash))
			{
				row->other_request = true;
				row->status = BS_CONFLICT;
			}
			continue;
		}
		gr.start[gr.ngrp] = i;
		gr.end[gr.ngrp] = i + 1;
		row->grp = gr.ngrp;
		gr.ngrp++;
	}

	SPI_connect();
	prepare_batch_plans();
	/* keys already posted are found by the claim itself (and resolved below) */
	wallet_writer_lock();

	/* 3. rounds until every remaining row is posted or has failed */
	cand = palloc(sizeof(int) * n);
	lost = palloc(sizeof(int) * n);
	nlost_box = palloc0(sizeof(int));	/* set inside PG_TRY: not locals */
	changed_box = palloc0(sizeof(bool));
	want_hot_lock_box = palloc0(sizeof(bool));
	for (;;)
	{
		MemoryContext oldcontext = CurrentMemoryContext;
		ResourceOwner oldowner = CurrentResourceOwner;
		volatile bool done;
		volatile bool key_taken;

		CHECK_FOR_INTERRUPTS();
		/*
		 * Claim holders, in key order: each group's first pending row.  A
		 * group's other pending rows repeat its request and are replayed
		 * in their own places under the same claim.
		 */
		ncand = 0;
		for (int g = 0; g < gr.ngrp; g++)
			for (int m = gr.start[g]; m < gr.end[g]; m++)
				if (rows[byk[m]].status == BS_PENDING)
				{
					cand[ncand++] = byk[m];
					break;
				}
		if (ncand == 0)
			break;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(oldcontext);
		key_taken = false;
		PG_TRY();
		{
			done = post_round(rows, &gr, cand, ncand, lost, nlost_box, lock_rows, lock_hot,
							  changed_box, want_hot_lock_box);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			/*
			 * Always end our subtransaction here, even for an error we pass
			 * on: a caller's exception block (PL/pgSQL, a driver's
			 * savepoint) rolls back only the innermost subtransaction and
			 * must find its own there.
			 */
			MemoryContextSwitchTo(oldcontext);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcontext);
			CurrentResourceOwner = oldowner;
			/* only "a key in this round exists" is ours to handle */
			if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION ||
				edata->schema_name == NULL || strcmp(edata->schema_name, "wallet") != 0 ||
				edata->constraint_name == NULL ||
				strcmp(edata->constraint_name, "txn_idempotency_key_key") != 0)
				ReThrowError(edata);
			FreeErrorData(edata);
			key_taken = true;
			done = false;
		}
		PG_END_TRY();
		if (done)
		{
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcontext);
			CurrentResourceOwner = oldowner;
			break;
		}
		if (!key_taken)
		{
			/* undo this round: claims, row locks, nothing written */
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcontext);
			CurrentResourceOwner = oldowner;
		}
		nlost = *nlost_box;
		if (*changed_box)
		{
			/* an account changed between read and update: lock this time */
			lock_rows = true;
			*changed_box = false;
			nlost = 0;
		}
		if (*want_hot_lock_box)
		{
			lock_hot = true;
			*want_hot_lock_box = false;
		}
		if (key_taken)
		{
			/*
			 * The unique index refused a key that a committed transaction
			 * holds (it waited for it to end); which one is not said, so
			 * every candidate of the round is looked up.
			 */
			memcpy(lost, cand, sizeof(int) * ncand);
			nlost = ncand;
		}
		/* keys taken by a concurrent posting that has committed since */
		{
			int			resolved = 0;
			int			first_pending = -1;

			resolve_existing(rows, lost, nlost);
			for (int j = 0; j < nlost; j++)
			{
				if (rows[lost[j]].status != BS_PENDING)
					resolved++;
				else if (first_pending < 0)
					first_pending = lost[j];
			}
			/* a key taken but not visible to us: our snapshot is too old */
			if (first_pending >= 0 && (!key_taken || resolved == 0))
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access to idempotency key \"%s\"",
								text_to_cstring(rows[first_pending].key)),
						 errdetail("Another transaction posted this key after this transaction's snapshot was taken."),
						 errhint("Retry the batch; postings are meant to run in READ COMMITTED.")));
			/* a key found in the journal decides its group's pending rows */
			for (int j = 0; j < nlost; j++)
			{
				BatchRow   *holder = &rows[lost[j]];

				if (holder->status == BS_PENDING)
					continue;
				for (int m = gr.start[holder->grp]; m < gr.end[holder->grp]; m++)
				{
					BatchRow   *row = &rows[byk[m]];

					if (row->status != BS_PENDING)
						continue;
					row->status = holder->status;
					row->txn_id = holder->txn_id;
				}
			}
		}
	}

	/*
	 * Rows giving a key another request than its group's first row: exists
	 * when theirs is the request the journal holds for the key, else
	 * idempotency_conflict (the key went, or would go, to another request).
	 */
	for (int g = 0; g < gr.ngrp; g++)
	{
		bytea	   *journal = NULL;
		int64		journal_id = 0;

		for (int m = gr.start[g]; m < gr.end[g] && journal == NULL; m++)
			if (rows[byk[m]].found_hash != NULL)
			{
				journal = rows[byk[m]].found_hash;
				journal_id = rows[byk[m]].found_id;
			}
		for (int m = gr.start[g]; m < gr.end[g]; m++)
		{
			BatchRow   *row = &rows[byk[m]];

			if (row->other_request && journal != NULL && same_hash(row->hash, journal))
			{
				row->status = BS_EXISTS;
				row->txn_id = journal_id;
			}
		}
	}
	SPI_finish();

	for (int i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = Int32GetDatum(i + 1);
		values[1] = Int64GetDatum(rows[i].txn_id);
		nulls[1] = rows[i].txn_id == 0;
		values[2] = CStringGetTextDatum(status_names[rows[i].status]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
