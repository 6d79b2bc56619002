/*
 * rows.c — the posting engine's direct row access: account rows locked,
 * read and updated, and journal rows appended in bulk, through the table
 * and index access methods instead of SQL statements.
 *
 * Why: a posting's own work per account is one row lock and one balance
 * update, and per journal row one heap insert and its index entries.
 * Through SPI each of those statements also pays executor start-up, plan
 * checks and per-row projection, which measured more than the work itself
 * (wallet.transfer spent ~10 % in executor set-up; a 1,000-row batch ~5 ms
 * of its locks and updates).  Here:
 *   - rows are found through the primary key, ids ascending (the global
 *     lock order): one rescan per id, or one range scan over a dense set
 *     of ids (AccountFinder);
 *   - locks are table_tuple_lock(LockTupleNoKeyExclusive), following the
 *     update chain in READ COMMITTED as SELECT ... FOR NO KEY UPDATE does,
 *     and raising 40001 in REPEATABLE READ / SERIALIZABLE as it does;
 *   - updates are simple_table_tuple_update() on the locked version, with
 *     index entries added when the update is not HOT; the batch may instead
 *     read without locks and update exactly the version read
 *     (table_tuple_update reports a change, and the batch redoes its round
 *     with locks);
 *   - journal rows go in with table_multi_insert() and
 *     ExecInsertIndexTuples(), as COPY FROM does, so every index (a DBA's
 *     too), partial index predicate and unique check is honoured.
 *
 * What the SQL path does and this one would not (user triggers, CHECK
 * constraints a DBA adds) is detected from the relcache: then the same
 * change is made with the SQL statement instead (see change_needs_sql()).
 * The extension's own triggers on these tables do not fire for these
 * changes (the account audit trigger is for status, owner and the like;
 * the journal's triggers are BEFORE UPDATE/DELETE/TRUNCATE).
 */
#include "ledger.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/itup.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* ------------------------------------------------------------ catalog cache */


static WalletRels wrels;
static bool wrels_callback = false;

static void
wrels_reset(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == wrels.account || relid == wrels.txn ||
		relid == wrels.entry || relid == wrels.account_pkey ||
		relid == wrels.txn_pkey || relid == wrels.entry_pkey || relid == wrels.history ||
		relid == wrels.hot_pending)
		wrels.valid = false;
}

static Oid
wallet_rel_oid(Oid nsp, const char *name)
{
	Oid			oid = get_relname_relid(name, nsp);

	if (!OidIsValid(oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("wallet: relation wallet.%s is missing", name),
				 errdetail("The posting engine writes wallet.%s directly.", name),
				 errhint("Reinstall the extension.")));
	return oid;
}

/* the column's number, after checking it has the type this file writes */
static AttrNumber
column_number(TupleDesc desc, const char *name, Oid type)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), name) != 0)
			continue;
		if (att->atttypid != type)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("wallet: column \"%s\" has type %s, expected %s",
							name, format_type_be(att->atttypid), format_type_be(type)),
					 errdetail("The posting engine reads and writes column \"%s\" as %s.", name, format_type_be(type)),
					 errhint("Reinstall the extension.")));
		return att->attnum;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("wallet: column \"%s\" is missing", name),
			 errdetail("The posting engine reads and writes column \"%s\".", name),
			 errhint("Reinstall the extension.")));
	return InvalidAttrNumber;	/* not reached */
}

/* the columns this file reads or writes, with the types it expects */
static const struct
{
	Oid		   *rel;
	const char *name;
	Oid			type;
	AttrNumber *attnum;
}			columns[] = {
	{&wrels.account, "id", INT8OID, &wrels.a_id},
	{&wrels.account, "currency", TEXTOID, &wrels.a_currency},
	{&wrels.account, "status", TEXTOID, &wrels.a_status},
	{&wrels.account, "allow_negative", BOOLOID, &wrels.a_allow_negative},
	{&wrels.account, "hot", BOOLOID, &wrels.a_hot},
	{&wrels.account, "balance", INT8OID, &wrels.a_balance},
	{&wrels.account, "held", INT8OID, &wrels.a_held},
	{&wrels.account, "version", INT8OID, &wrels.a_version},
	{&wrels.account, "forced_negative", BOOLOID, &wrels.a_forced_negative},
	{&wrels.account, "debt_account", INT8OID, &wrels.a_debt_account},
	{&wrels.account, "kind", TEXTOID, &wrels.a_kind},
	{&wrels.account, "metadata", JSONBOID, &wrels.a_metadata},
	{&wrels.txn, "id", INT8OID, &wrels.t_id},
	{&wrels.txn, "idempotency_key", TEXTOID, &wrels.t_key},
	{&wrels.txn, "kind", TEXTOID, &wrels.t_kind},
	{&wrels.txn, "request_hash", BYTEAOID, &wrels.t_hash},
	{&wrels.txn, "metadata", JSONBOID, &wrels.t_metadata},
	{&wrels.txn, "reverses", INT8OID, &wrels.t_reverses},
	{&wrels.txn, "forced", BOOLOID, &wrels.t_forced},
	{&wrels.txn, "created_at", TIMESTAMPTZOID, &wrels.t_created_at},
	{&wrels.entry, "txn_id", INT8OID, &wrels.e_txn},
	{&wrels.entry, "leg", INT2OID, &wrels.e_leg},
	{&wrels.entry, "account_id", INT8OID, &wrels.e_account},
	{&wrels.entry, "amount", INT8OID, &wrels.e_amount},
	{&wrels.history, "account_id", INT8OID, &wrels.h_account},
	{&wrels.history, "last_txn", INT8OID, &wrels.h_last},
	{&wrels.history, "first_txn", INT8OID, &wrels.h_first},
	{&wrels.history, "txn_ids", INT8ARRAYOID, &wrels.h_txn_ids},
	{&wrels.history, "amounts", INT8ARRAYOID, &wrels.h_amounts},
	{&wrels.hot_pending, "account_id", INT8OID, &wrels.p_account},
	{&wrels.hot_pending, "txn_id", INT8OID, &wrels.p_txn},
	{&wrels.hot_pending, "amount", INT8OID, &wrels.p_amount},
};

/* the primary key of a journal table, which must start with `first` */
static Oid
journal_pkey(Oid relid, AttrNumber first)
{
	Relation	rel = table_open(relid, AccessShareLock);
	Oid			pkey = RelationGetPrimaryKeyIndex(rel);
	Relation	idx;

	if (!OidIsValid(pkey))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("wallet: %s has no primary key", RelationGetRelationName(rel)),
				 errdetail("The sealer and the filing pass read the journal in key order."),
				 errhint("Reinstall the extension.")));
	idx = index_open(pkey, AccessShareLock);
	if (idx->rd_index->indkey.values[0] != first)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("wallet: the primary key of %s does not start with the transaction id",
						RelationGetRelationName(rel)),
				 errdetail("The sealer and the filing pass read the journal in that order."),
				 errhint("Reinstall the extension.")));
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return pkey;
}

static void
wrels_load(void)
{
	Oid			nsp;
	Relation	rel = NULL;

	if (wrels.valid)
		return;
	if (!wrels_callback)
	{
		CacheRegisterRelcacheCallback(wrels_reset, (Datum) 0);
		wrels_callback = true;
	}
	nsp = get_namespace_oid("wallet", false);
	wrels.account = wallet_rel_oid(nsp, "account");
	wrels.account_pkey = wallet_rel_oid(nsp, "account_pkey");
	wrels.txn = wallet_rel_oid(nsp, "txn");
	wrels.txn_seq = wallet_rel_oid(nsp, "txn_id_seq");
	wrels.entry = wallet_rel_oid(nsp, "entry");
	/* since 1.1.0: a 1.0.0 database not yet updated keeps posting without it */
	wrels.history = get_relname_relid("account_history", nsp);
	wrels.hot_pending = wallet_rel_oid(nsp, "hot_pending");

	for (int i = 0; i < lengthof(columns); i++)
	{
		if (!OidIsValid(*columns[i].rel))
			continue;			/* an optional table that is not there */
		if (i == 0 || *columns[i].rel != *columns[i - 1].rel)
		{
			if (rel != NULL)
				table_close(rel, AccessShareLock);
			rel = table_open(*columns[i].rel, AccessShareLock);
		}
		*columns[i].attnum = column_number(RelationGetDescr(rel), columns[i].name, columns[i].type);
	}
	table_close(rel, AccessShareLock);

	/* the journal's primary keys, which the sealer and the filing pass read in order */
	wrels.txn_pkey = journal_pkey(wrels.txn, wrels.t_id);
	wrels.entry_pkey = journal_pkey(wrels.entry, wrels.e_txn);

	wrels.valid = true;
}

/* the catalog cache, loaded (for the journal readers in audit.c, history.c) */
const WalletRels *
ledger_rels(void)
{
	wrels_load();
	return &wrels;
}

void
ledger_range_scan_begin(LedgerRangeScan *s, Oid rel, Oid pkey, int64 after, Snapshot snap)
{
	ScanKeyData key;

	s->rel = table_open(rel, AccessShareLock);
	s->idx = index_open(pkey, AccessShareLock);
	s->slot = table_slot_create(s->rel, NULL);
	/* btrescan copies the key: it need not outlive this call */
	ScanKeyInit(&key, 1, BTGreaterStrategyNumber, F_INT8GT, Int64GetDatum(after));
	s->scan = index_beginscan(s->rel, s->idx, snap, 1, 0);
	index_rescan(s->scan, &key, 1, NULL, 0);
}

void
ledger_range_scan_end(LedgerRangeScan *s)
{
	index_endscan(s->scan);
	ExecDropSingleTupleTableSlot(s->slot);
	index_close(s->idx, NoLock);
	table_close(s->rel, NoLock);
}

/* ------------------------------------------------------------ fallbacks */

/* a CHECK constraint or a generated column the SQL path would evaluate */
static bool
has_constraints_to_evaluate(Relation rel)
{
	TupleConstr *c = RelationGetDescr(rel)->constr;

	return c != NULL && (c->num_check > 0 || c->has_generated_stored);
}

/*
 * Must this change go through SQL so that what the SQL path would run
 * does run?  Not a plain table; a CHECK or generated column; or an
 * enabled trigger for the event: for an INSERT any, for an UPDATE one
 * without a column list or naming one of the columns written (a DBA's
 * audit or replication trigger, or wallet.audit_table() on a ledger table;
 * the wallet's own account trigger names other columns).
 */
static bool
change_needs_sql(Relation rel, bool update, const AttrNumber *cols, int ncols)
{
	TriggerDesc *td = rel->trigdesc;

	if (rel->rd_rel->relkind != RELKIND_RELATION || has_constraints_to_evaluate(rel))
		return true;
	if (td == NULL)
		return false;
	for (int i = 0; i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (t->tgenabled == TRIGGER_DISABLED)
			continue;
		if (!update)
		{
			if (TRIGGER_FOR_INSERT(t->tgtype))
				return true;
			continue;
		}
		if (!TRIGGER_FOR_UPDATE(t->tgtype))
			continue;
		if (t->tgnattr == 0)
			return true;
		for (int a = 0; a < t->tgnattr; a++)
			for (int c = 0; c < ncols; c++)
				if (t->tgattr[a] == cols[c])
					return true;
	}
	return false;
}

/* ------------------------------------------------------------ accounts */

/*
 * Whether a JSON value names a user as LEDGER_DEBT_USER_SQL's debt_of does:
 * its text (->>) is 1 to 19 digits, at most int64's maximum.
 */
static bool
jsonb_names_user_id(JsonbValue *v)
{
	const char *s;
	size_t		len;

	if (v->type == jbvString)
	{
		s = v->val.string.val;
		len = v->val.string.len;
	}
	else if (v->type == jbvNumeric)
	{
		s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		len = strlen(s);
	}
	else
		return false;
	if (len < 1 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	/* 19 digits: compared as text with the maximum, of the same length */
	return len < 19 || memcmp(s, "9223372036854775807", 19) <= 0;
}

static void
read_account(AccountState *st, TupleTableSlot *slot, bool locked)
{
	bool		isnull;
	text	   *cur;
	text	   *status;
	Datum		d;

	d = slot_getattr(slot, wrels.a_currency, &isnull);
	if (isnull)
		elog(ERROR, "wallet: account " INT64_FORMAT " has no currency", st->id);
	cur = DatumGetTextPP(d);
	if (money_code_from_text(VARDATA_ANY(cur), VARSIZE_ANY_EXHDR(cur), &st->currency) != MONEY_OK)
		elog(ERROR, "wallet: account " INT64_FORMAT " has a malformed currency", st->id);
	d = slot_getattr(slot, wrels.a_status, &isnull);
	status = isnull ? NULL : DatumGetTextPP(d);
	st->status = status == NULL || VARSIZE_ANY_EXHDR(status) == 0 ? '?' : *VARDATA_ANY(status);
	d = slot_getattr(slot, wrels.a_allow_negative, &isnull);
	st->allow_negative = !isnull && DatumGetBool(d);
	d = slot_getattr(slot, wrels.a_hot, &isnull);
	st->hot = !isnull && DatumGetBool(d);
	d = slot_getattr(slot, wrels.a_balance, &isnull);
	st->balance = isnull ? 0 : DatumGetInt64(d);
	d = slot_getattr(slot, wrels.a_held, &isnull);
	st->held = isnull ? 0 : DatumGetInt64(d);
	d = slot_getattr(slot, wrels.a_debt_account, &isnull);
	st->debt_account = isnull ? 0 : DatumGetInt64(d);
	/* a user's debt account: the rule of LEDGER_DEBT_USER_SQL (ledger.h) */
	st->is_debt = false;
	d = slot_getattr(slot, wrels.a_kind, &isnull);
	if (!isnull)
	{
		text	   *kind = DatumGetTextPP(d);

		if (VARSIZE_ANY_EXHDR(kind) == 4 && memcmp(VARDATA_ANY(kind), "debt", 4) == 0)
		{
			d = slot_getattr(slot, wrels.a_metadata, &isnull);
			if (!isnull)
			{
				Jsonb	   *meta = DatumGetJsonbP(d);
				JsonbValue	v;

				st->is_debt = JB_ROOT_IS_OBJECT(meta) &&
					getKeyJsonValueFromContainer(&meta->root, "debt_of", 7, &v) != NULL &&
					jsonb_names_user_id(&v);
			}
		}
	}
	d = slot_getattr(slot, wrels.a_forced_negative, &isnull);
	st->forced_negative = !isnull && DatumGetBool(d);
	st->forced_after = st->forced_negative;
	st->found = true;
	st->locked = locked;
	st->tid = slot->tts_tid;
}

/* an account row this posting changes without the row lock */
static bool
may_skip_row_lock(AccountState *st, int64 *debit_ids, int ndebit,
				  int64 *held_ids, int nheld)
{
	if (!st->hot || st->force_lock)
		return false;
	/* far from int64's limit: see HOT_SAFE_BALANCE in ledger.h */
	if (HOT_UNSAFE(st->balance, st->delta))
		return false;
	for (int i = 0; i < nheld; i++)
		if (held_ids[i] == st->id)
			return false;
	if (st->allow_negative)
		return true;
	for (int i = 0; i < ndebit; i++)
		if (debit_ids[i] == st->id)
			return false;
	return true;
}

/*
 * Finding account rows by id through the primary key, ids asked for in
 * ascending order, each once.  Usually one descent per id.  When the ids
 * are dense (a batch working on a slice of the accounts: at most
 * FINDER_MAX_SPREAD ids of range per id asked for), one forward scan of
 * the range [first, last] instead: it steps over the index entries of ids
 * not asked for without touching the heap (the key is read from the index
 * tuple, as an index-only scan does) and fetches only the rows wanted,
 * which saves the descent per id (a third of a batch's account reads).
 *
 * Only for reads without row locks (the batch's first pass): with
 * xs_want_itup the btree keeps its pin on the current leaf page between
 * calls (for index-only scans' VACUUM interlock), and a row lock wait while
 * holding it would make VACUUM's cleanup lock on that leaf wait for us,
 * a wait the deadlock detector cannot see (a holder of one of our rows
 * waiting for VACUUM would hang all three).  Locking passes take one
 * descent per id, which drops the leaf pin after each.
 */
#define FINDER_MIN_IDS		16
#define FINDER_MAX_SPREAD	16

typedef struct AccountFinder
{
	IndexScanDesc scan;
	ScanKeyData keys[2];
	bool		ranged;
	bool		have_entry;		/* ranged: an index entry read, not yet used */
	bool		exhausted;		/* ranged: no entries left */
	int64		entry_id;
} AccountFinder;

static void
finder_begin(AccountFinder *f, Relation rel, Relation idx, Snapshot snap,
			 const AccountState *states, int nstates, bool may_wait)
{
	f->have_entry = false;
	f->exhausted = false;
	f->ranged = !may_wait && nstates >= FINDER_MIN_IDS &&
		(int128) states[nstates - 1].id - states[0].id <= (int128) nstates * FINDER_MAX_SPREAD;
	if (!f->ranged)
	{
		ScanKeyInit(&f->keys[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(0));
		f->scan = index_beginscan(rel, idx, snap, 1, 0);
		return;
	}
	ScanKeyInit(&f->keys[0], 1, BTGreaterEqualStrategyNumber, F_INT8GE,
				Int64GetDatum(states[0].id));
	ScanKeyInit(&f->keys[1], 1, BTLessEqualStrategyNumber, F_INT8LE,
				Int64GetDatum(states[nstates - 1].id));
	f->scan = index_beginscan(rel, idx, snap, 2, 0);
	f->scan->xs_want_itup = true;	/* before the rescan: btree keeps the tuples */
	index_rescan(f->scan, f->keys, 2, NULL, 0);
}

/* the row of `id` visible to the finder's snapshot into slot; false if none */
static bool
finder_fetch(AccountFinder *f, int64 id, TupleTableSlot *slot)
{
	if (!f->ranged)
	{
		f->keys[0].sk_argument = Int64GetDatum(id);
		index_rescan(f->scan, f->keys, 1, NULL, 0);
		return index_getnext_slot(f->scan, ForwardScanDirection, slot);
	}
	while (!f->exhausted)
	{
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		if (!f->have_entry)
		{
			if (index_getnext_tid(f->scan, ForwardScanDirection) == NULL)
			{
				f->exhausted = true;
				break;
			}
			f->entry_id = DatumGetInt64(index_getattr(f->scan->xs_itup, 1,
													  f->scan->xs_itupdesc, &isnull));
			if (isnull)
				elog(ERROR, "wallet: null key in the account primary key");
			f->have_entry = true;
		}
		if (f->entry_id > id)
			return false;		/* no such account; the entry is for a later id */
		f->have_entry = false;
		/*
		 * Entries of ids not asked for are passed over; an entry of this id
		 * whose row version this snapshot does not see (an older version,
		 * after an update that was not HOT) gives way to the next one.
		 */
		if (f->entry_id == id && index_fetch_heap(f->scan, slot))
			return true;
	}
	return false;
}

static void
finder_end(AccountFinder *f)
{
	index_endscan(f->scan);
}

/*
 * Under REPEATABLE READ (or SERIALIZABLE), an account written without its
 * row lock (a hot account, read under its shared hot lock) is read as of
 * the transaction's snapshot, which may predate a freeze or close.  Raise
 * 40001 when the row visible to that snapshot (at seen_tid) is not its
 * latest version, as the row lock would for any other account.  A check,
 * not a lock: it adds no wait.  Nothing to do in READ COMMITTED, where the
 * read under the hot lock already took a fresh snapshot.
 */
static void
check_unchanged_since_snapshot(Relation rel, Relation idx, int64 id, ItemPointer seen_tid)
{
	Snapshot	latest;
	AccountFinder finder;
	TupleTableSlot *slot;
	bool		found;

	if (!IsolationUsesXactSnapshot())
		return;
	latest = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);
	finder_begin(&finder, rel, idx, latest, NULL, 0, false);
	found = finder_fetch(&finder, id, slot);
	finder_end(&finder);
	UnregisterSnapshot(latest);
	if (!found || !ItemPointerEquals(&slot->tts_tid, seen_tid))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent update"),
				 errdetail("Account " INT64_FORMAT " changed after this transaction's snapshot.", id),
				 errhint("Retry the transaction; postings are meant to run in READ COMMITTED.")));
	ExecDropSingleTupleTableSlot(slot);
}

/* the same for one account by id (a hold's destination, src/holds.c) */
void
ledger_check_account_unchanged(int64 id)
{
	Relation	rel;
	Relation	idx;
	Snapshot	snap;
	AccountFinder finder;
	TupleTableSlot *slot;

	if (!IsolationUsesXactSnapshot())
		return;
	wrels_load();
	rel = table_open(wrels.account, AccessShareLock);
	idx = index_open(wrels.account_pkey, AccessShareLock);
	snap = RegisterSnapshot(GetTransactionSnapshot());
	slot = table_slot_create(rel, NULL);
	finder_begin(&finder, rel, idx, snap, NULL, 0, false);
	if (finder_fetch(&finder, id, slot))
		check_unchanged_since_snapshot(rel, idx, id, &slot->tts_tid);
	finder_end(&finder);
	UnregisterSnapshot(snap);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
}

/*
 * Steps 4 and 5 of a posting: lock the rows of the accounts that need it
 * (all but hot accounts this posting cannot overdraw) in ascending id
 * order, then take the shared hot lock of the others in ascending order and
 * read them.  states[] is sorted by id; debit_ids are the accounts debited,
 * held_ids those whose reservations change.  Unknown ids stay !found.
 */
static void
load_accounts(AccountState *states, int nstates, int64 *debit_ids, int ndebit,
			  int64 *held_ids, int nheld, bool lock_rows)
{
	Relation	rel;
	Relation	idx;
	Snapshot	snap;
	AccountFinder finder;
	TupleTableSlot *slot;
	CommandId	cid;
	bool	   *deferred = palloc0(sizeof(bool) * Max(nstates, 1));
	bool		any_deferred = false;

	wrels_load();
	/* see the changes of earlier statements of this transaction */
	CommandCounterIncrement();
	cid = GetCurrentCommandId(true);
	rel = table_open(wrels.account, RowExclusiveLock);
	idx = index_open(wrels.account_pkey, RowExclusiveLock);
	wrels_load();				/* again: taking the locks may have seen an ALTER */
	snap = RegisterSnapshot(GetTransactionSnapshot());
	slot = table_slot_create(rel, NULL);
	finder_begin(&finder, rel, idx, snap, states, nstates, lock_rows);

	for (int i = 0; i < nstates; i++)
	{
		AccountState *st = &states[i];
		TM_FailureData tmfd;
		TM_Result	res;
		ItemPointerData tid;

		CHECK_FOR_INTERRUPTS();
		if (!finder_fetch(&finder, st->id, slot))
			continue;			/* unknown: stays !found */
		read_account(st, slot, false);
		if (may_skip_row_lock(st, debit_ids, ndebit, held_ids, nheld))
		{
			st->found = false;	/* read again under the hot lock below */
			deferred[i] = any_deferred = true;
			continue;
		}
		if (!lock_rows)
		{
			/* written later only if still this version (ledger_write_accounts) */
			st->locked = true;
			st->unlocked_write = true;
			st->tuple = ExecCopySlotHeapTuple(slot);
			continue;
		}
		tid = slot->tts_tid;
		res = table_tuple_lock(rel, &tid, snap, slot, cid, LockTupleNoKeyExclusive,
							   LockWaitBlock,
							   IsolationUsesXactSnapshot() ? 0 : TUPLE_LOCK_FLAG_FIND_LAST_VERSION,
							   &tmfd);
		switch (res)
		{
			case TM_Ok:
				break;
			case TM_Updated:
			case TM_Deleted:
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent update"),
						 errdetail("Account " INT64_FORMAT " changed after this transaction's snapshot.", st->id),
						 errhint("Retry the transaction; postings are meant to run in READ COMMITTED.")));
				break;
			default:
				elog(ERROR, "wallet: unexpected result %d locking account " INT64_FORMAT,
					 (int) res, st->id);
		}
		/* the latest version, now locked (the chain may have been followed) */
		read_account(st, slot, true);
		st->tuple = ExecCopySlotHeapTuple(slot);
	}
	finder_end(&finder);
	UnregisterSnapshot(snap);

	if (any_deferred)
	{
		/*
		 * Hot accounts posted to without the row lock: the shared hot lock
		 * keeps their status stable (freeze/close take it exclusively);
		 * then read them with a snapshot taken after it.  Without row
		 * locks (a batch's first pass), the hot locks come after the
		 * batch's writes, which may wait for a row: waiting for a row
		 * while holding a hot lock could close a cycle with a freeze
		 * (row lock, then the hot lock exclusively) and a posting waiting
		 * for the freezer.  ledger_lock_hot_after_writes() then takes
		 * them and checks that the rows did not change.
		 */
		for (int i = 0; i < nstates; i++)
			if (deferred[i])
			{
				if (lock_rows)
					ledger_lock_hot_shared(states[i].id);
				else
					states[i].hot_lock_due = true;
			}
		snap = RegisterSnapshot(GetTransactionSnapshot());
		/* usually one or two hot accounts: one descent each */
		finder_begin(&finder, rel, idx, snap, states, 0, false);
		for (int i = 0; i < nstates; i++)
		{
			AccountState *st = &states[i];

			if (!deferred[i])
				continue;
			if (!finder_fetch(&finder, st->id, slot))
				continue;
			read_account(st, slot, false);
			/*
			 * Read as hot before its lock, no longer hot now: set_hot(id,
			 * false) committed in between.  Its row lock cannot be taken
			 * out of id order, and a normal account must get no pending
			 * row: the caller retries (ledger_raise_stale_hot; a batch
			 * redoes its round with every hot row locked).  Without row
			 * locks the check after the writes sends the batch to its
			 * locking round.
			 */
			if (lock_rows)
			{
				check_unchanged_since_snapshot(rel, idx, st->id, &slot->tts_tid);
				st->stale_hot = !st->hot;
			}
		}
		finder_end(&finder);
		UnregisterSnapshot(snap);
	}
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
}

void
ledger_load_accounts(AccountState *states, int nstates, int64 *debit_ids, int ndebit,
					 int64 *held_ids, int nheld)
{
	load_accounts(states, nstates, debit_ids, ndebit, held_ids, nheld, true);
}

/* 40001 for an account that stopped being hot while a posting waited */
void
ledger_raise_stale_hot(AccountState *states, int nstates)
{
	for (int i = 0; i < nstates; i++)
		if (states[i].stale_hot)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("account " INT64_FORMAT " stopped being hot while this posting waited", states[i].id),
					 errdetail("wallet.set_hot(" INT64_FORMAT ", false) committed after the posting read the account.",
							   states[i].id),
					 errhint("Retry the transaction.")));
}

/*
 * The same without row locks, for the batch: each account that would be
 * locked is read as of a fresh snapshot and marked unlocked_write;
 * ledger_write_accounts() then updates exactly that version or reports
 * that it changed (the batch then redoes its round with
 * ledger_load_accounts).  One heap operation per account instead of two
 * (lock, then update) when nothing changed in between, which is the rule.
 */
void
ledger_read_accounts_for_update(AccountState *states, int nstates, int64 *debit_ids, int ndebit)
{
	load_accounts(states, nstates, debit_ids, ndebit, NULL, 0, false);
}

/*
 * After a batch's writes (which may have waited for rows): take the shared
 * hot lock of each hot account it read without it, in ascending id order,
 * then read those rows again with a fresh snapshot.  False when one
 * changed in what the replay relied on (status, currency, flags): the
 * batch then redoes its round with row locks first.
 */
bool
ledger_lock_hot_after_writes(AccountState *states, int nstates)
{
	Relation	rel;
	Relation	idx;
	Snapshot	snap;
	AccountFinder finder;
	TupleTableSlot *slot;
	bool		unchanged = true;
	bool		any = false;

	for (int i = 0; i < nstates; i++)
		if (states[i].hot_lock_due)
		{
			ledger_lock_hot_shared(states[i].id);
			any = true;
		}
	if (!any)
		return true;
	wrels_load();
	rel = table_open(wrels.account, RowExclusiveLock);
	idx = index_open(wrels.account_pkey, RowExclusiveLock);
	snap = RegisterSnapshot(GetTransactionSnapshot());
	slot = table_slot_create(rel, NULL);
	finder_begin(&finder, rel, idx, snap, states, 0, false);
	for (int i = 0; i < nstates; i++)
	{
		AccountState *st = &states[i];
		AccountState now;

		if (!st->hot_lock_due)
			continue;
		memset(&now, 0, sizeof(now));
		now.id = st->id;
		if (!finder_fetch(&finder, st->id, slot))
		{
			unchanged = false;
			break;
		}
		read_account(&now, slot, false);
		/*
		 * Also near int64's limit (HOT_SAFE_BALANCE): a large credit may
		 * have taken the hot lock exclusively while the batch waited in
		 * its writes; the locking round checks it exactly.
		 */
		if (!now.hot || now.status != st->status || now.allow_negative != st->allow_negative ||
			!money_code_eq(&now.currency, &st->currency) || HOT_UNSAFE(now.balance, 0))
		{
			unchanged = false;
			break;
		}
		check_unchanged_since_snapshot(rel, idx, st->id, &slot->tts_tid);
	}
	finder_end(&finder);
	UnregisterSnapshot(snap);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	return unchanged;
}

/*
 * Step 7 for the locked accounts: balance += delta, held += held_delta,
 * version + 1 and forced_negative = forced_after, on the version this
 * transaction locked in ledger_load_accounts() (or read in
 * ledger_read_accounts_for_update(): false if one of those changed since,
 * and the caller must roll back what this call wrote).  Accounts not
 * locked, or with nothing to change, are skipped.
 */
/*
 * An account's balance and held amount after this posting, or 22003: each
 * must fit in 64 bits, and so must the available balance (balance − held),
 * which wallet.accounts and available() compute in 64 bits.  Only an
 * account allowed to go negative can get there, and only a posting that
 * lowers its available balance is refused (a capture, which debits what it
 * releases, does not).
 */
static void
check_new_balance(AccountState *st, int64 oldbal, int64 oldheld, int64 *newbal, int64 *newheld)
{
	if (__builtin_add_overflow(oldbal, st->delta, newbal) ||
		__builtin_add_overflow(oldheld, st->held_delta, newheld))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("balance of account " INT64_FORMAT " would overflow", st->id),
				 errdetail("Balance %s, held %s; this posting adds %s and %s held.",
						   units_to_cstring(oldbal, &st->currency), units_to_cstring(oldheld, &st->currency),
						   units_to_cstring(st->delta, &st->currency),
						   units_to_cstring(st->held_delta, &st->currency))));
	if ((int128) *newbal - *newheld < PG_INT64_MIN && (int128) st->delta - st->held_delta < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("available balance of account " INT64_FORMAT " would overflow", st->id),
				 errdetail("Balance %s, held %s after this posting: the available balance, %s, is less than 64-bit minor units hold.",
						   units_to_cstring(*newbal, &st->currency), units_to_cstring(*newheld, &st->currency),
						   units_wide_to_cstring((int128) *newbal - *newheld, &st->currency)),
				 errhint("Release holds on the account first.")));
}

static SPIPlanPtr plan_update_balances = NULL;

static void
write_accounts_sql(AccountState *states, int nstates)
{
	int64	   *ids = palloc(sizeof(int64) * Max(nstates, 1));
	int64	   *delta = palloc(sizeof(int64) * Max(nstates, 1));
	int64	   *held = palloc(sizeof(int64) * Max(nstates, 1));
	Datum	   *forced = palloc(sizeof(Datum) * Max(nstates, 1));
	Datum		values[4];
	int			n = 0;

	if (plan_update_balances == NULL)
	{
		Oid			t[4] = {INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, BOOLARRAYOID};

		plan_update_balances = ledger_prepare_kept(
												   "UPDATE wallet.account a SET balance = a.balance + d.delta, "
												   "held = a.held + d.held_delta, version = a.version + 1, "
												   "forced_negative = d.forced_negative "
												   "FROM unnest($1, $2, $3, $4) AS d(id, delta, held_delta, forced_negative) "
												   "WHERE a.id = d.id", 4, t);
	}
	for (int i = 0; i < nstates; i++)
	{
		AccountState *st = &states[i];

		int64		newbal,
					newheld;

		if (!st->locked || (st->delta == 0 && st->held_delta == 0))
			continue;
		/* the row is locked: balance and held are the stored ones */
		check_new_balance(st, st->balance, st->held, &newbal, &newheld);
		ids[n] = st->id;
		delta[n] = st->delta;
		held[n] = st->held_delta;
		forced[n] = BoolGetDatum(st->forced_after);
		n++;
	}
	if (n == 0)
		return;
	values[0] = ledger_int8_array(ids, n);
	values[1] = ledger_int8_array(delta, n);
	values[2] = ledger_int8_array(held, n);
	values[3] = PointerGetDatum(construct_array(forced, n, BOOLOID, 1, true, TYPALIGN_CHAR));
	if (SPI_execute_plan(plan_update_balances, values, NULL, false, 0) != SPI_OK_UPDATE ||
		SPI_processed != (uint64) n)
		elog(ERROR, "wallet: balance update touched " UINT64_FORMAT " of %d accounts",
			 SPI_processed, n);
}

bool
ledger_write_accounts(AccountState *states, int nstates)
{
	Relation	rel;
	TupleDesc	desc;
	TupleTableSlot *slot = NULL;
	EState	   *estate = NULL;
	ResultRelInfo *rri = NULL;
	bool		changed = false;
	AttrNumber	cols[4];

	wrels_load();
	rel = table_open(wrels.account, RowExclusiveLock);
	wrels_load();				/* again: taking the lock may have seen an ALTER */
	cols[0] = wrels.a_balance;
	cols[1] = wrels.a_held;
	cols[2] = wrels.a_version;
	cols[3] = wrels.a_forced_negative;
	if (change_needs_sql(rel, true, cols, 4))
	{
		table_close(rel, NoLock);
		for (int i = 0; i < nstates; i++)
			if (states[i].unlocked_write)
				return false;	/* the SQL path needs the rows locked first */
		write_accounts_sql(states, nstates);
		return true;
	}
	desc = RelationGetDescr(rel);
	for (int i = 0; i < nstates; i++)
	{
		AccountState *st = &states[i];
		int			cols[4];
		Datum		vals[4];
		bool		nulls[4] = {false, false, false, false};
		int64		oldbal,
					oldheld,
					newbal,
					newheld,
					version;
		bool		isnull;
		HeapTuple	newtup;
		bool		update_indexes;

		CHECK_FOR_INTERRUPTS();
		if (!st->locked)
			continue;
		if (st->delta == 0 && st->held_delta == 0)
		{
			/*
			 * Nothing to write, but a batch replayed its rows against this
			 * version (a debit and a credit may net out): lock it without
			 * following the chain, which fails if it changed since.
			 */
			if (st->unlocked_write)
			{
				TM_FailureData tmfd;
				TM_Result	res;
				TupleTableSlot *lockslot = table_slot_create(rel, NULL);

				res = table_tuple_lock(rel, &st->tid, GetLatestSnapshot(), lockslot,
									   GetCurrentCommandId(true), LockTupleNoKeyExclusive,
									   LockWaitBlock, 0, &tmfd);
				ExecDropSingleTupleTableSlot(lockslot);
				if (res == TM_Updated || res == TM_Deleted)
				{
					changed = true;
					break;
				}
				if (res != TM_Ok)
					elog(ERROR, "wallet: unexpected result %d locking account " INT64_FORMAT,
						 (int) res, st->id);
				st->unlocked_write = false;
			}
			continue;
		}
		Assert(st->tuple != NULL);
		/*
		 * From the stored row itself, not from st->balance: callers keep
		 * working figures there (a batch's running balance).
		 */
		oldbal = DatumGetInt64(heap_getattr(st->tuple, wrels.a_balance, desc, &isnull));
		if (isnull)
			oldbal = 0;
		oldheld = DatumGetInt64(heap_getattr(st->tuple, wrels.a_held, desc, &isnull));
		if (isnull)
			oldheld = 0;
		check_new_balance(st, oldbal, oldheld, &newbal, &newheld);
		version = DatumGetInt64(heap_getattr(st->tuple, wrels.a_version, desc, &isnull));
		cols[0] = wrels.a_balance;
		vals[0] = Int64GetDatum(newbal);
		cols[1] = wrels.a_held;
		vals[1] = Int64GetDatum(newheld);
		cols[2] = wrels.a_version;
		vals[2] = Int64GetDatum(isnull ? 1 : version + 1);
		cols[3] = wrels.a_forced_negative;
		vals[3] = BoolGetDatum(st->forced_after);
		newtup = heap_modify_tuple_by_cols(st->tuple, desc, 4, cols, vals, nulls);
		if (slot == NULL)
			slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
		ExecStoreHeapTuple(newtup, slot, true);
		if (!st->unlocked_write)
		{
			/* we hold the row lock: nobody else can have changed it */
			simple_table_tuple_update(rel, &st->tid, slot, InvalidSnapshot, &update_indexes);
		}
		else
		{
			TM_FailureData tmfd;
			LockTupleMode lockmode;
			TM_Result	res;

			/*
			 * Waits for a concurrent writer of the row, then tells.  (No
			 * hot lock is held yet on this path: a batch takes them after
			 * its writes, ledger_lock_hot_after_writes.)
			 */
			res = table_tuple_update(rel, &st->tid, slot, GetCurrentCommandId(true),
									 InvalidSnapshot, InvalidSnapshot, true,
									 &tmfd, &lockmode, &update_indexes);
			if (res == TM_Updated || res == TM_Deleted)
			{
				changed = true;
				break;
			}
			if (res != TM_Ok)
				elog(ERROR, "wallet: unexpected result %d updating account " INT64_FORMAT,
					 (int) res, st->id);
			st->unlocked_write = false;
		}
		if (update_indexes)
		{
			/* not HOT (no room on the page): new index entries */
			if (estate == NULL)
			{
				estate = CreateExecutorState();
				rri = makeNode(ResultRelInfo);
				InitResultRelInfo(rri, rel, 1, NULL, 0);
				ExecOpenIndices(rri, false);
			}
			/*
			 * update = false: the flag only feeds the "index unchanged"
			 * hint, which needs a range table we do not have.
			 */
			(void) ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
			ResetPerTupleExprContext(estate);
		}
		st->tid = slot->tts_tid;
		st->balance = newbal;
		st->held = newheld;
		st->forced_negative = st->forced_after;
		st->delta = 0;
		st->held_delta = 0;
		ExecClearTuple(slot);
	}
	if (estate != NULL)
	{
		ExecCloseIndices(rri);
		FreeExecutorState(estate);
	}
	if (slot != NULL)
		ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
	return !changed;
}

/* ------------------------------------------------------------ journal */

#define APPEND_CHUNK 128		/* slots filled, inserted and reused at a time */

typedef struct Appender
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	CommandId	cid;
	TupleTableSlot *slots[APPEND_CHUNK];
	int			nslots;			/* created */
	int			used;			/* filled, not yet inserted */
} Appender;

static int
live_columns(Relation rel)
{
	TupleDesc	d = RelationGetDescr(rel);
	int			n = 0;

	for (int i = 0; i < d->natts; i++)
		if (!TupleDescAttr(d, i)->attisdropped)
			n++;
	return n;
}

/*
 * NULL when the SQL path must be used: a trigger or check, or columns
 * beyond the ones we fill (a column a DBA added gets its default there).
 */
static Appender *
appender_open(Oid relid, int ncolumns)
{
	Appender   *ap = palloc0(sizeof(Appender));

	ap->rel = table_open(relid, RowExclusiveLock);
	wrels_load();				/* again: taking the lock may have seen an ALTER */
	if (change_needs_sql(ap->rel, false, NULL, 0) || live_columns(ap->rel) != ncolumns)
	{
		table_close(ap->rel, NoLock);
		pfree(ap);
		return NULL;
	}
	ap->estate = CreateExecutorState();
	ap->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(ap->rri, ap->rel, 1, NULL, 0);
	ExecOpenIndices(ap->rri, false);
	ap->cid = GetCurrentCommandId(true);
	return ap;
}

/* the next empty slot to fill (values/isnull, then appender_store) */
static TupleTableSlot *
appender_slot(Appender *ap)
{
	TupleTableSlot *slot;

	if (ap->used == ap->nslots)
		ap->slots[ap->nslots++] = table_slot_create(ap->rel, NULL);
	slot = ap->slots[ap->used];
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
	return slot;
}

static void
appender_flush(Appender *ap)
{
	if (ap->used == 0)
		return;
	/*
	 * No BulkInsertState: its ring buffer suits one big COPY, but a ledger
	 * appends a batch after another in the same backend, and recycling ring
	 * slots would force synchronous writes and WAL flushes.
	 */
	table_multi_insert(ap->rel, ap->slots, ap->used, ap->cid, 0, NULL);
	for (int i = 0; i < ap->used; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(GetPerTupleMemoryContext(ap->estate));

		(void) ExecInsertIndexTuples(ap->rri, ap->slots[i], ap->estate, false, false, NULL, NIL);
		MemoryContextSwitchTo(old);
		ResetPerTupleExprContext(ap->estate);
	}
	for (int i = 0; i < ap->used; i++)
		ExecClearTuple(ap->slots[i]);
	ap->used = 0;
}

static void
appender_store(Appender *ap, TupleTableSlot *slot)
{
	ExecStoreVirtualTuple(slot);
	if (++ap->used == APPEND_CHUNK)
	{
		CHECK_FOR_INTERRUPTS();
		appender_flush(ap);
	}
}

static void
appender_close(Appender *ap)
{
	appender_flush(ap);
	for (int i = 0; i < ap->nslots; i++)
		ExecDropSingleTupleTableSlot(ap->slots[i]);
	ExecCloseIndices(ap->rri);
	FreeExecutorState(ap->estate);
	table_close(ap->rel, NoLock);
	pfree(ap);
}

/*
 * n ids from wallet.txn_id_seq into ids[], ascending (one backend's draws
 * from a sequence only go up).
 */
void
ledger_draw_txn_ids(int n, int64 *ids)
{
	wrels_load();
	for (int i = 0; i < n; i++)
		ids[i] = nextval_internal(wrels.txn_seq, false);
}

/*
 * Journal rows of n transfers (kind 'transfer', no metadata) with the ids
 * given (ledger_draw_txn_ids), in the order given.
 * The idempotency key's unique index makes a key another transaction is
 * posting wait for it, and refuses one that exists (23505; the batch
 * catches it and looks the keys up).  Returns false, writing nothing, when
 * wallet.txn has a trigger or check that needs the SQL path.
 */
bool
ledger_append_transfers(int n, text **keys, bytea **hashes, const int64 *ids)
{
	Appender   *ap;
	Datum		kind;
	Datum		now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	wrels_load();
	ap = appender_open(wrels.txn, 8);
	if (ap == NULL)
		return false;
	kind = CStringGetTextDatum("transfer");
	for (int i = 0; i < n; i++)
	{
		TupleTableSlot *slot = appender_slot(ap);

		slot->tts_values[wrels.t_id - 1] = Int64GetDatum(ids[i]);
		slot->tts_isnull[wrels.t_id - 1] = false;
		slot->tts_values[wrels.t_key - 1] = PointerGetDatum(keys[i]);
		slot->tts_isnull[wrels.t_key - 1] = false;
		slot->tts_values[wrels.t_kind - 1] = kind;
		slot->tts_isnull[wrels.t_kind - 1] = false;
		slot->tts_values[wrels.t_hash - 1] = PointerGetDatum(hashes[i]);
		slot->tts_isnull[wrels.t_hash - 1] = false;
		slot->tts_values[wrels.t_forced - 1] = BoolGetDatum(false);
		slot->tts_isnull[wrels.t_forced - 1] = false;
		slot->tts_values[wrels.t_created_at - 1] = now;
		slot->tts_isnull[wrels.t_created_at - 1] = false;
		/* metadata, reverses: NULL */
		appender_store(ap, slot);
	}
	appender_close(ap);
	return true;
}

/*
 * n entry rows.  Returns false, writing nothing, when wallet.entry has a
 * trigger or check that needs the SQL path.
 */
bool
ledger_append_entries(int n, const int64 *txn, const int16 *leg, const int64 *account,
					  const int64 *amount)
{
	Appender   *ap;

	wrels_load();
	ap = appender_open(wrels.entry, 4);
	if (ap == NULL)
		return false;
	for (int i = 0; i < n; i++)
	{
		TupleTableSlot *slot = appender_slot(ap);

		slot->tts_values[wrels.e_txn - 1] = Int64GetDatum(txn[i]);
		slot->tts_isnull[wrels.e_txn - 1] = false;
		slot->tts_values[wrels.e_leg - 1] = Int16GetDatum(leg[i]);
		slot->tts_isnull[wrels.e_leg - 1] = false;
		slot->tts_values[wrels.e_account - 1] = Int64GetDatum(account[i]);
		slot->tts_isnull[wrels.e_account - 1] = false;
		slot->tts_values[wrels.e_amount - 1] = Int64GetDatum(amount[i]);
		slot->tts_isnull[wrels.e_amount - 1] = false;
		appender_store(ap, slot);
	}
	appender_close(ap);
	return true;
}

/*
 * The pending rows of one posting's hot legs (n accounts and their
 * amounts, transaction txn), through the table and index access methods:
 * a hot credit's one statement less (the SQL path's INSERT ... unnest cost
 * an executor start per gift to the famous creator).  Returns false,
 * writing nothing, when wallet.hot_pending has a trigger or check that
 * needs the SQL path.
 */
bool
ledger_append_pending(int n, const int64 *account, int64 txn, const int64 *amount)
{
	Appender   *ap;

	wrels_load();
	ap = appender_open(wrels.hot_pending, 3);
	if (ap == NULL)
		return false;
	for (int i = 0; i < n; i++)
	{
		TupleTableSlot *slot = appender_slot(ap);

		slot->tts_values[wrels.p_account - 1] = Int64GetDatum(account[i]);
		slot->tts_isnull[wrels.p_account - 1] = false;
		slot->tts_values[wrels.p_txn - 1] = Int64GetDatum(txn);
		slot->tts_isnull[wrels.p_txn - 1] = false;
		slot->tts_values[wrels.p_amount - 1] = Int64GetDatum(amount[i]);
		slot->tts_isnull[wrels.p_amount - 1] = false;
		appender_store(ap, slot);
	}
	appender_close(ap);
	return true;
}

bool
ledger_append_history(int nrows, const int64 *acc, const int64 *last, const int64 *first,
					  const int32 *starts, const int32 *ends, const int64 *txns, const int64 *amts)
{
	Appender   *ap;

	wrels_load();
	if (!OidIsValid(wrels.history))
		return false;
	ap = appender_open(wrels.history, 5);
	if (ap == NULL)
		return false;
	for (int r = 0; r < nrows; r++)
	{
		TupleTableSlot *slot = appender_slot(ap);
		int			from = starts[r] - 1,
					count = ends[r] - starts[r] + 1;

		slot->tts_values[wrels.h_account - 1] = Int64GetDatum(acc[r]);
		slot->tts_isnull[wrels.h_account - 1] = false;
		slot->tts_values[wrels.h_last - 1] = Int64GetDatum(last[r]);
		slot->tts_isnull[wrels.h_last - 1] = false;
		slot->tts_values[wrels.h_first - 1] = Int64GetDatum(first[r]);
		slot->tts_isnull[wrels.h_first - 1] = false;
		slot->tts_values[wrels.h_txn_ids - 1] = ledger_int8_array(txns + from, count);
		slot->tts_isnull[wrels.h_txn_ids - 1] = false;
		slot->tts_values[wrels.h_amounts - 1] = ledger_int8_array(amts + from, count);
		slot->tts_isnull[wrels.h_amounts - 1] = false;
		appender_store(ap, slot);
	}
	appender_close(ap);
	return true;
}
