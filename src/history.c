/*
 * history.c — the per-account index of the journal: wallet.index_history()
 * files committed entries into wallet.account_history behind the postings.
 *
 * Why not an index on wallet.entry (account_id, txn_id)?  Every posting
 * would add one entry to it per leg, each at that account's own place in
 * a tree that grows with the whole journal: one random descent, a leaf that
 * is rarely in cache and one WAL record per leg.  Measured on a batch of
 * 1,000 transfers over 10,000 accounts, that index alone cost 5-10 µs per
 * transfer, growing with the journal (1.4 µs an entry while small, 3.7 µs
 * at 2.6 M entries), a third of all the work.  Postings now append entries
 * in transaction order only (primary key on the rightmost page), and this
 * pass files them per account later, in sorted bulk:
 *
 *   - one row of wallet.account_history per account and pass (split every
 *     HISTORY_ROW_MAX entries) holds that account's transaction ids and
 *     amounts in ascending order, so the pass writes one row and one index
 *     entry per account it saw instead of one index entry per leg;
 *   - wallet.history_horizon says how far it got: every entry with
 *     txn_id <= merged_through is in account_history, every later one only
 *     in wallet.entry.  Both change in the pass's transaction, so any
 *     snapshot sees a clean split, and readers (the view
 *     wallet.account_entries) take the history rows up to the horizon plus
 *     the journal's tail after it.
 *
 * Ids commit out of order, so the pass only goes as far as no running
 * transaction can still reach: like the sealer (audit.c), it reads the
 * transaction sequence, waits for every writer that held a writer lock at
 * that moment, and then reads the journal with a fresh snapshot.
 */
#include "ledger.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#define HISTORY_ROW_MAX	1000		/* entries per wallet.account_history row */
#define HISTORY_CHUNK	1000000		/* entries sorted and written at a time */

typedef struct HistEntry
{
	int64		account;
	int64		txn;
	int64		amount;
	int16		leg;
} HistEntry;

static inline int
cmp_hist_entry(const HistEntry *x, const HistEntry *y)
{
	if (x->account != y->account)
		return x->account < y->account ? -1 : 1;
	if (x->txn != y->txn)
		return x->txn < y->txn ? -1 : 1;
	return (x->leg > y->leg) - (x->leg < y->leg);
}

/*
 * sort_hist_entries(): PostgreSQL's sort template with the comparison
 * inlined (a pass sorts hundreds of thousands of entries; through qsort()'s
 * function pointer the sort was a third of the pass).
 */
#define ST_SORT sort_hist_entries
#define ST_ELEMENT_TYPE HistEntry
#define ST_COMPARE(a, b) cmp_hist_entry(a, b)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DECLARE
#define ST_DEFINE
#include "lib/sort_template.h"

static SPIPlanPtr plan_insert_rows = NULL;
static SPIPlanPtr plan_set_horizon = NULL;
static SPIPlanPtr plan_add_horizon = NULL;

static void
prepare_history_plans(void)
{
	if (plan_insert_rows != NULL)
		return;
	{
		Oid			t[7] = {INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT4ARRAYOID,
		INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID};

		/* one row per run: slices [s:e] of the flat id and amount arrays */
		plan_insert_rows = ledger_prepare_kept(
											   "INSERT INTO wallet.account_history (account_id, last_txn, first_txn, txn_ids, amounts) "
											   "SELECT r.a, r.l, r.f, $6[r.s:r.e], $7[r.s:r.e] "
											   "FROM unnest($1, $2, $3, $4, $5) AS r(a, l, f, s, e)", 7, t);
	}
	{
		Oid			t[1] = {INT8OID};

		plan_set_horizon = ledger_prepare_kept(
											   "UPDATE wallet.history_horizon SET merged_through = $1, merged_at = now()",
											   1, t);
		plan_add_horizon = ledger_prepare_kept(
											   "INSERT INTO wallet.history_horizon (merged_through) VALUES ($1)",
											   1, t);
	}
}

/*
 * Read the entries with after < txn_id <= upto, in (txn_id, leg) order
 * through the journal's primary key, into *out (about `limit` of them at
 * most: never splitting a transaction).  Returns how far the entries read
 * cover: upto when the range was exhausted, else the last transaction read.
 */
static int64
read_entries(Snapshot snap, int64 after, int64 upto, int limit, HistEntry **out, int *nout)
{
	const WalletRels *rels = ledger_rels();
	LedgerRangeScan rs;
	TupleTableSlot *slot;
	AttrNumber	c_txn = rels->e_txn,
				c_leg = rels->e_leg,
				c_account = rels->e_account,
				c_amount = rels->e_amount;
	HistEntry  *e;
	int			n = 0,
				cap = 4096;
	int64		reached = upto;

	e = palloc(sizeof(HistEntry) * cap);
	ledger_range_scan_begin(&rs, rels->entry, rels->entry_pkey, after, snap);
	slot = rs.slot;
	while (index_getnext_slot(rs.scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		int64		txn = DatumGetInt64(slot_getattr(slot, c_txn, &isnull));

		if (txn > upto)
			break;
		if (n >= limit && txn != e[n - 1].txn)
		{
			reached = e[n - 1].txn;
			break;
		}
		if ((n & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		if (n == cap)
		{
			cap *= 2;
			e = repalloc_huge(e, sizeof(HistEntry) * cap);
		}
		e[n].txn = txn;
		e[n].leg = DatumGetInt16(slot_getattr(slot, c_leg, &isnull));
		e[n].account = DatumGetInt64(slot_getattr(slot, c_account, &isnull));
		if (isnull)
			elog(ERROR, "wallet: entry of transaction " INT64_FORMAT " has no account", txn);
		e[n].amount = DatumGetInt64(slot_getattr(slot, c_amount, &isnull));
		n++;
	}
	ledger_range_scan_end(&rs);
	*out = e;
	*nout = n;
	return reached;
}

/*
 * Sort entries per account and write one history row per run: through the
 * table and index AMs (rows.c, multi-insert), or with the INSERT below when
 * a DBA's trigger, check or column on wallet.account_history needs the SQL
 * path.  At 10 M accounts nearly every row holds one entry; the direct path
 * files one in 3.8 µs and ~180 B of WAL where the INSERT took 5.5 µs and
 * ~260 B (pg_waldump --stats over one index_history() of ~106,000 entries).
 */
static void
write_history(HistEntry *e, int n)
{
	int64	   *acc,
			   *last,
			   *first,
			   *txns,
			   *amts;
	int32	   *starts,
			   *ends;
	Datum	   *d_starts,
			   *d_ends;
	int			nrows = 0;
	Datum		values[7];

	if (n == 0)
		return;
	sort_hist_entries(e, n);
	acc = palloc(sizeof(int64) * n);
	last = palloc(sizeof(int64) * n);
	first = palloc(sizeof(int64) * n);
	starts = palloc(sizeof(int32) * n);
	ends = palloc(sizeof(int32) * n);
	txns = palloc(sizeof(int64) * n);
	amts = palloc(sizeof(int64) * n);
	for (int i = 0; i < n; i++)
	{
		txns[i] = e[i].txn;
		amts[i] = e[i].amount;
		/*
		 * A new row: another account, or this account's row is full (never
		 * between two legs of one transaction: rows of an account must not
		 * share a last_txn).
		 */
		if (i == 0 || e[i].account != e[i - 1].account ||
			(i + 1 - starts[nrows - 1] >= HISTORY_ROW_MAX && e[i].txn != e[i - 1].txn))
		{
			acc[nrows] = e[i].account;
			first[nrows] = e[i].txn;
			starts[nrows] = i + 1;	/* SQL arrays are 1-based */
			nrows++;
		}
		last[nrows - 1] = e[i].txn;
		ends[nrows - 1] = i + 1;
	}
	/* through the table AM (rows.c); the SQL statement when a DBA's trigger needs it */
	if (ledger_append_history(nrows, acc, last, first, starts, ends, txns, amts))
		return;
	d_starts = palloc(sizeof(Datum) * nrows);
	d_ends = palloc(sizeof(Datum) * nrows);
	for (int r = 0; r < nrows; r++)
	{
		d_starts[r] = Int32GetDatum(starts[r]);
		d_ends[r] = Int32GetDatum(ends[r]);
	}
	values[0] = ledger_int8_array(acc, nrows);
	values[1] = ledger_int8_array(last, nrows);
	values[2] = ledger_int8_array(first, nrows);
	values[3] = PointerGetDatum(construct_array(d_starts, nrows, INT4OID, 4, true, TYPALIGN_INT));
	values[4] = PointerGetDatum(construct_array(d_ends, nrows, INT4OID, 4, true, TYPALIGN_INT));
	values[5] = ledger_int8_array(txns, n);
	values[6] = ledger_int8_array(amts, n);
	if (SPI_execute_plan(plan_insert_rows, values, NULL, false, 0) != SPI_OK_INSERT ||
		SPI_processed != (uint64) nrows)
		elog(ERROR, "wallet: account history insert wrote " UINT64_FORMAT " of %d rows",
			 SPI_processed, nrows);
}

static void
set_horizon(int64 through)
{
	Datum		v = Int64GetDatum(through);

	if (SPI_execute_plan(plan_set_horizon, &v, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "wallet: history horizon update failed");
	if (SPI_processed == 0 &&
		SPI_execute_plan(plan_add_horizon, &v, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "wallet: history horizon insert failed");
}

static int64
query_int8(const char *sql)
{
	bool		isnull;
	Datum		d;

	if (SPI_execute(sql, false, 1) < 0 || SPI_processed != 1)
		elog(ERROR, "wallet: query failed: %s", sql);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/* 25000 outside READ COMMITTED, 55000 with a cached sequence (SPI connected) */
static void
check_can_file(const char *fn)
{
	if (XactIsoLevel != XACT_READ_COMMITTED)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("%s must run in a READ COMMITTED transaction", fn),
				 errdetail("It must see what the writers it waited for have committed.")));
	/*
	 * Ids cached by a session (sequence CACHE > 1) are drawn without the
	 * writer lock: one could land below the horizon after this pass.
	 */
	if (query_int8("SELECT s.seqcache FROM pg_catalog.pg_sequence s "
				   "WHERE s.seqrelid = 'wallet.txn_id_seq'::pg_catalog.regclass") > 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s needs wallet.txn_id_seq without a cache", fn),
				 errdetail("The sequence has CACHE > 1: a session could draw an id below the horizon later."),
				 errhint("ALTER SEQUENCE wallet.txn_id_seq CACHE 1;")));
}

/*
 * File the entries after the horizon up to `upto`, at most about
 * max_entries of them (whole transactions); every writer that could still
 * commit an id at or below `upto` has ended.  Returns how many were filed.
 * SPI connected.
 */
static int64
file_range(int64 upto, int64 max_entries)
{
	int64		merged,
				total = 0;
	MemoryContext chunk_cxt,
				old;

	/* one pass at a time; another may have gone further meanwhile */
	if (SPI_execute("LOCK TABLE wallet.history_horizon IN SHARE ROW EXCLUSIVE MODE", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "wallet: could not lock wallet.history_horizon");

	/*
	 * Only now: planning the statements that write the history takes
	 * RowExclusiveLock on wallet.history_horizon until the end of the
	 * transaction; taken before the lock above, two passes starting at
	 * once would each wait for the other's.
	 */
	prepare_history_plans();
	merged = query_int8("SELECT max(merged_through) FROM wallet.history_horizon");

	chunk_cxt = AllocSetContextCreate(CurrentMemoryContext, "wallet history pass",
									  ALLOCSET_DEFAULT_SIZES);
	while (merged < upto && total < max_entries)
	{
		Snapshot	snap;
		HistEntry  *e;
		int			n;
		int64		reached;

		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(chunk_cxt);
		/* after the wait: sees every id <= upto that will ever exist */
		snap = RegisterSnapshot(GetLatestSnapshot());
		reached = read_entries(snap, merged, upto, (int) Min(max_entries - total, HISTORY_CHUNK), &e, &n);
		UnregisterSnapshot(snap);
		write_history(e, n);
		MemoryContextSwitchTo(old);
		MemoryContextReset(chunk_cxt);
		set_horizon(reached);
		merged = reached;
		total += n;
	}
	MemoryContextDelete(chunk_cxt);
	return total;
}

/*
 * wallet.index_history() → bigint: files every committed entry that no
 * running transaction can still precede into wallet.account_history and
 * advances wallet.history_horizon; returns how many entries it filed.
 * Waits for writers in flight (honours lock_timeout); one pass at a time.
 */
PG_FUNCTION_INFO_V1(wallet_index_history);
Datum
wallet_index_history(PG_FUNCTION_ARGS)
{
	int64		seq_last,
				total;

	SPI_connect();
	check_can_file("wallet.index_history()");
	/* 1. the horizon: ids drawn so far ... */
	seq_last = query_int8("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM wallet.txn_id_seq");
	/*
	 * 2. ... whose writers have all ended.  Nothing of ours is locked yet
	 * (a writer in flight may itself be waiting for the history table).
	 */
	wallet_wait_writers();
	/* 3. file up to there */
	total = file_range(seq_last, PG_INT64_MAX);
	SPI_finish();
	PG_RETURN_INT64(total);
}

/*
 * wallet.index_history_range(upto bigint, max_entries bigint) → bigint:
 * files the entries after the horizon up to `upto`, at most about
 * max_entries (whole transactions).  The caller has waited for every
 * writer that could still commit an id at or below `upto` (the background
 * worker waits once, holding no snapshot, then calls this in short
 * transactions, so that it never holds back the cleanup of other tables'
 * dead rows for long).  Returns how many entries it filed; 0 when done.
 */
PG_FUNCTION_INFO_V1(wallet_index_history_range);
Datum
wallet_index_history_range(PG_FUNCTION_ARGS)
{
	int64		upto,
				max_entries,
				total;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("wallet.index_history_range: arguments must not be null"),
				 errdetail("upto %s, max_entries %s.", PG_ARGISNULL(0) ? "null" : "given",
						   PG_ARGISNULL(1) ? "null" : "given")));
	upto = PG_GETARG_INT64(0);
	max_entries = PG_GETARG_INT64(1);
	if (max_entries < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_entries must be positive, got " INT64_FORMAT, max_entries),
				 errdetail("It bounds how many entries one call files.")));
	SPI_connect();
	check_can_file("wallet.index_history_range()");
	{
		/* a horizon past the ids drawn would file later postings as never made */
		int64		drawn = query_int8("SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "
									   "FROM wallet.txn_id_seq");

		if (upto > drawn)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("upto " INT64_FORMAT " is beyond the last transaction id drawn", upto),
					 errdetail("wallet.txn_id_seq has drawn ids up to " INT64_FORMAT ".", drawn),
					 errhint("Pass a horizon read from the sequence, as wallet.index_history() does.")));
	}
	total = file_range(upto, max_entries);
	SPI_finish();
	PG_RETURN_INT64(total);
}
