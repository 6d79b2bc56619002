/*
 * audit.c — history that cannot be rewritten unnoticed:
 *   - wallet.forbid_change(): the append-only guard on the journal;
 *   - wallet.audit(): the generic row-audit trigger any table can use, and
 *     wallet.audit_row() for records the API writes itself;
 *   - the writer lock and wallet.wait_for_writers(), which give the sealer
 *     (wallet.seal() in SQL) a safe horizon.
 *
 * The seal horizon.  Journal and audit ids come from sequences, so they
 * commit out of order: when the sealer sees ids 7 and 9 committed, 8 may
 * still be in flight.  Every writer takes a shared "writer lock" (one of
 * WRITER_LOCK_SHARDS advisory tags) BEFORE it draws an id, and keeps it to
 * the end of its transaction.  The sealer first reads the sequences' last
 * values N, then waits for every transaction holding a writer lock at that
 * moment (WaitForLockersMultiple, as CREATE INDEX CONCURRENTLY does).  Any
 * id <= N was drawn by a transaction that held the lock before N was read,
 * so after the wait it has committed or aborted: a fresh snapshot then
 * shows exactly the rows <= N that will ever exist.  Writers never queue
 * on a row or on each other (shared locks); only the sealer waits.
 */
#include "ledger.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "funcapi.h"
#include "pgtime.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/bytea.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#define WRITER_LOCK_SHARDS	8
#define WALLET_LOCKTAG_WRITER 0x5742

static char *wallet_actor = NULL;

void
wallet_audit_define_gucs(void)
{
	DefineCustomStringVariable("wallet.actor",
							   "The application's user, recorded in wallet.audit_log.actor.",
							   "Set it per transaction: SET LOCAL wallet.actor = 'user:42'.",
							   &wallet_actor,
							   NULL,
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);
}

static void
writer_tag(LOCKTAG *tag, int shard)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0, (uint32) shard, WALLET_LOCKTAG_WRITER);
}

/* Take (once per transaction) this backend's writer-lock shard. */
void
wallet_writer_lock(void)
{
	LOCKTAG		tag;

	writer_tag(&tag, MyProcPid % WRITER_LOCK_SHARDS);
	/* re-acquiring a held lock only bumps a local counter */
	(void) LockAcquire(&tag, ShareLock, false, false);
}

/*
 * wallet.wait_for_writers(): wait until every transaction that held a
 * writer lock when called has ended.  Honours lock_timeout and
 * statement_timeout.
 */
void
wallet_wait_writers(void)
{
	List	   *tags = NIL;

	for (int i = 0; i < WRITER_LOCK_SHARDS; i++)
	{
		LOCKTAG    *tag = palloc(sizeof(LOCKTAG));

		writer_tag(tag, i);
		tags = lappend(tags, tag);
	}
	WaitForLockersMultiple(tags, ExclusiveLock, false);
	list_free_deep(tags);
}

PG_FUNCTION_INFO_V1(wallet_wait_for_writers);
Datum
wallet_wait_for_writers(PG_FUNCTION_ARGS)
{
	wallet_wait_writers();
	PG_RETURN_VOID();
}

/*
 * Trigger functions are callable as plain functions too (SELECT
 * wallet.audit()): refuse that with the SQLSTATE PostgreSQL uses for a
 * trigger protocol violation, not an internal error.
 */
void
wallet_require_trigger(FunctionCallInfo fcinfo, const char *function)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s can only be called as a trigger", function),
				 errdetail("It was called directly, as a function."),
				 strcmp(function, "wallet.audit()") == 0 ?
				 errhint("Attach it to a table with wallet.audit_table(table).") : 0));
}

/*
 * wallet.forbid_change(): BEFORE UPDATE/DELETE (row) and BEFORE TRUNCATE
 * (statement) trigger on posted history.  Fails for every role, the owner
 * and superusers included; corrections are new, reversing transactions.
 */
PG_FUNCTION_INFO_V1(wallet_forbid_change);
Datum
wallet_forbid_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *op;
	const char *rel;
	const char *hint;

	wallet_require_trigger(fcinfo, "wallet.forbid_change()");
	rel = RelationGetRelationName(trigdata->tg_relation);
	/* what to do instead, by table (every table had the journal's hint) */
	if (strcmp(rel, "txn") == 0 || strcmp(rel, "entry") == 0 || strcmp(rel, "account_history") == 0)
		hint = "Correct a transaction by posting its reversal with wallet.reverse().";
	else if (strcmp(rel, "audit_log") == 0 || strcmp(rel, "audit_seal") == 0)
		hint = "Audit records and seals are never changed; wallet.audit_verify() reports any change made behind the triggers.";
	else if (strcmp(rel, "account") == 0)
		hint = "Accounts are never removed; close one with wallet.close_account().";
	else if (strcmp(rel, "hold") == 0)
		hint = "End a hold with wallet.capture(), wallet.void() or wallet.expire_holds().";
	else if (strcmp(rel, "hot_pending") == 0)
		hint = "Posted hot credits are folded into their accounts by wallet.fold_hot().";
	else if (strcmp(rel, "live_config") == 0)
		hint = "Change the live flows' configuration with wallet.live_setup().";
	else
		hint = "Correct posted history with new postings, never by changing it.";
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		op = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		op = "DELETE";
	else if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		op = "TRUNCATE";
	else
		op = "INSERT";
	ereport(ERROR,
			(errcode(ERRCODE_WALLET_APPEND_ONLY),
			 errmsg("%s of %s is not allowed: posted history is append-only", op, rel),
			 errdetail("Table %s.%s refuses %s for every role, its owner included.",
					   get_namespace_name(RelationGetNamespace(trigdata->tg_relation)), rel, op),
			 errhint("%s", hint)));
	PG_RETURN_NULL();
}

/* ------------------------------------------------------------ audit log */

static SPIPlanPtr plan_audit_insert = NULL;

/*
 * The owner of wallet.audit_log (the extension's owner), looked up once
 * per backend and forgotten on a relcache invalidation of the table
 * (ALTER TABLE ... OWNER TO sends one), as rows.c keeps its relation ids.
 */
static Oid	audit_log_relid = InvalidOid;
static Oid	audit_log_owner_oid = InvalidOid;
static bool audit_log_callback = false;

static void
audit_log_reset(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == audit_log_relid)
		audit_log_owner_oid = InvalidOid;
}

static Oid
audit_log_owner(void)
{
	HeapTuple	tup;

	if (OidIsValid(audit_log_owner_oid))
		return audit_log_owner_oid;
	if (!audit_log_callback)
	{
		CacheRegisterRelcacheCallback(audit_log_reset, (Datum) 0);
		audit_log_callback = true;
	}
	audit_log_relid = get_relname_relid("audit_log", get_namespace_oid("wallet", false));
	if (!OidIsValid(audit_log_relid))
		elog(ERROR, "wallet: table wallet.audit_log is missing");
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(audit_log_relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "wallet: cache lookup failed for relation %u", audit_log_relid);
	audit_log_owner_oid = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return audit_log_owner_oid;
}

static void
audit_insert(const char *relation, const char *op, Datum old_row, Datum new_row,
			 Datum changed)
{
	Datum		values[8];
	char		nulls[8];
	Oid			save_userid;
	int			save_sec_context;

	wallet_writer_lock();

	/*
	 * Prepare and write as the owner of wallet.audit_log (roles being
	 * audited cannot write it, and need not even see schema wallet), for
	 * this statement only and restricted, as PostgreSQL's own foreign-key
	 * checks switch to a table's owner.  Everything taken from the audited
	 * row was converted before, as the caller: a row's conversion to jsonb
	 * can run user code (a cast to json), which must never run with the
	 * owner's rights.  An error restores the user with the
	 * (sub)transaction's abort.
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(audit_log_owner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (plan_audit_insert == NULL)
	{
		Oid			t[8] = {TEXTOID, TEXTOID, JSONBOID, JSONBOID, TEXTARRAYOID, INT8OID,
		TEXTOID, TEXTOID};
		SPIPlanPtr	plan;

		plan = SPI_prepare_cursor("INSERT INTO wallet.audit_log (id, relation, operation, old_row, new_row, "
								  "changed_columns, txid, at, db_user, application_name, client_addr, actor) "
								  "VALUES (nextval('wallet.audit_log_id_seq'), $1, $2, $3, $4, $5, $6, now(), $7, "
								  "nullif(pg_catalog.current_setting('application_name', true), ''), "
								  "pg_catalog.inet_client_addr(), $8)",
								  8, t, CURSOR_OPT_GENERIC_PLAN);
		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "wallet: could not prepare the audit insert");
		plan_audit_insert = plan;
	}
	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(relation);
	values[1] = CStringGetTextDatum(op);
	values[2] = old_row;
	if (old_row == (Datum) 0)
		nulls[2] = 'n';
	values[3] = new_row;
	if (new_row == (Datum) 0)
		nulls[3] = 'n';
	values[4] = changed;
	if (changed == (Datum) 0)
		nulls[4] = 'n';
	values[5] = Int64GetDatum((int64) U64FromFullTransactionId(GetTopFullTransactionId()));
	/* the role as of SET ROLE, not a SECURITY DEFINER owner running us */
	values[6] = CStringGetTextDatum(GetUserNameFromId(GetOuterUserId(), false));
	values[7] = (Datum) 0;
	nulls[7] = 'n';
	if (wallet_actor != NULL && wallet_actor[0] != '\0')
	{
		values[7] = CStringGetTextDatum(wallet_actor);
		nulls[7] = ' ';
	}
	if (SPI_execute_plan(plan_audit_insert, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "wallet: audit insert failed");
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * Audit records must not depend on the session that wrote them (behind a
 * pooler, a setting one client left behind would change another client's
 * records): rows are rendered with fixed output settings, set for the
 * conversion only, as postgres_fdw does for the values it sends.  Types
 * rendered through their output functions depend on DateStyle (ranges of
 * timestamps), IntervalStyle, extra_float_digits (float4/8: at least 1 is
 * the shortest exact form) and bytea_output; timestamps in JSON carry the
 * session's time zone offset, so the zone is UTC.  An error in between
 * needs no cleanup: (sub)transaction abort pops the GUC nest level.
 */
int
wallet_canonical_output_begin(void)
{
	long		gmtoff;
	bool		utc = pg_get_timezone_offset(session_timezone, &gmtoff) && gmtoff == 0;
	int			nest;

	/* the usual case: nothing to change, and no GUC nest level to unwind */
	if (DateStyle == USE_ISO_DATES && IntervalStyle == INTSTYLE_POSTGRES &&
		extra_float_digits >= 1 && bytea_output == BYTEA_OUTPUT_HEX && utc)
		return 0;
	nest = NewGUCNestLevel();
	if (DateStyle != USE_ISO_DATES)
		(void) set_config_option("datestyle", "ISO", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (IntervalStyle != INTSTYLE_POSTGRES)
		(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (extra_float_digits < 1)
		(void) set_config_option("extra_float_digits", "1", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (bytea_output != BYTEA_OUTPUT_HEX)
		(void) set_config_option("bytea_output", "hex", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (!utc)
		(void) set_config_option("timezone", "UTC", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

void
wallet_canonical_output_end(int nest)
{
	if (nest > 0)
		AtEOXact_GUC(true, nest);
}

/* a composite datum as an audit record's jsonb, with the fixed settings */
static Datum
row_to_audit_jsonb(Datum row)
{
	int			nest = wallet_canonical_output_begin();
	Datum		json = DirectFunctionCall1(row_to_json, row);
	Datum		result = DirectFunctionCall1(jsonb_in, CStringGetDatum(TextDatumGetCString(json)));

	wallet_canonical_output_end(nest);
	return result;
}

static Datum
tuple_to_jsonb(HeapTuple tuple, TupleDesc desc)
{
	return row_to_audit_jsonb(heap_copy_tuple_as_datum(tuple, desc));
}

/*
 * wallet.audit_jsonb(anyelement) → jsonb: a row as audit records show it
 * (to_jsonb with the fixed output settings above), for the records the
 * API writes itself with wallet.audit_row() (1.4.0).
 */
PG_FUNCTION_INFO_V1(wallet_audit_jsonb);
Datum
wallet_audit_jsonb(PG_FUNCTION_ARGS)
{
	Oid			type = get_fn_expr_argtype(fcinfo->flinfo, 0);

	if (!type_is_rowtype(type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("wallet.audit_jsonb() takes a row, got %s", format_type_be(type))));
	PG_RETURN_DATUM(row_to_audit_jsonb(PG_GETARG_DATUM(0)));
}

/*
 * Names of the columns whose values differ between two versions.  Values
 * are compared as images after detoasting (datum_image_eq): datumIsEqual
 * compared an out-of-line value's TOAST pointers, so a column rewritten
 * with the same long value was named as changed (found by a review).
 */
static Datum
changed_columns(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc)
{
	Datum	   *names = palloc(sizeof(Datum) * Max(desc->natts, 1));
	int			n = 0;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		null1,
					null2;
		Datum		v1,
					v2;

		if (att->attisdropped)
			continue;
		v1 = heap_getattr(oldtup, i + 1, desc, &null1);
		v2 = heap_getattr(newtup, i + 1, desc, &null2);
		if (null1 != null2 ||
			(!null1 && !datum_image_eq(v1, v2, att->attbyval, att->attlen)))
			names[n++] = CStringGetTextDatum(NameStr(att->attname));
	}
	return PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * wallet.audit(): AFTER row trigger (INSERT/UPDATE/DELETE) or AFTER
 * TRUNCATE statement trigger; writes one wallet.audit_log record per
 * change.  It runs as the role making the change (SECURITY INVOKER since
 * 1.3.0: as a definer it converted rows, and with them any cast a user
 * defined for their column types, with the owner's rights) and writes the
 * log as the log's owner (audit_insert).  wallet.audit_table(regclass)
 * attaches it.
 */
PG_FUNCTION_INFO_V1(wallet_audit);
Datum
wallet_audit(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	char	   *relname;
	Datum		old_row = 0,
				new_row = 0,
				changed = 0;
	const char *op;

	wallet_require_trigger(fcinfo, "wallet.audit()");
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wallet.audit() must be an AFTER trigger"),
				 errdetail("Trigger \"%s\" on %s fires before the change.",
						   trigdata->tg_trigger->tgname, RelationGetRelationName(trigdata->tg_relation)),
				 errhint("Attach it with wallet.audit_table(table).")));
	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	relname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										 RelationGetRelationName(rel));

	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		op = "TRUNCATE";
	else if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wallet.audit() must be FOR EACH ROW (or a TRUNCATE statement trigger)"),
				 errdetail("Trigger \"%s\" on %s fires once per statement.",
						   trigdata->tg_trigger->tgname, RelationGetRelationName(trigdata->tg_relation)),
				 errhint("Attach it with wallet.audit_table(table).")));
	else if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		op = "INSERT";
		new_row = tuple_to_jsonb(trigdata->tg_trigtuple, desc);
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		op = "UPDATE";
		old_row = tuple_to_jsonb(trigdata->tg_trigtuple, desc);
		new_row = tuple_to_jsonb(trigdata->tg_newtuple, desc);
		changed = changed_columns(trigdata->tg_trigtuple, trigdata->tg_newtuple, desc);
	}
	else
	{
		op = "DELETE";
		old_row = tuple_to_jsonb(trigdata->tg_trigtuple, desc);
	}

	SPI_connect();
	audit_insert(relname, op, old_row, new_row, changed);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * wallet.audit_row(relation text, operation text, old_row jsonb, new_row
 * jsonb): an audit record written by the API itself (creation of accounts
 * and holds, which a restore replays with COPY and must not record again).
 */
PG_FUNCTION_INFO_V1(wallet_audit_row);
Datum
wallet_audit_row(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relation and operation must not be null"),
				 errdetail("relation is %s, operation is %s.", PG_ARGISNULL(0) ? "null" : "given",
						   PG_ARGISNULL(1) ? "null" : "given")));
	SPI_connect();
	audit_insert(TextDatumGetCString(PG_GETARG_DATUM(0)),
				 TextDatumGetCString(PG_GETARG_DATUM(1)),
				 PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2),
				 PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3),
				 (Datum) 0);
	SPI_finish();
	PG_RETURN_VOID();
}

/* ------------------------------------------------------- journal hashes */

/*
 * Decimal text of v, as "%lld" prints it.  The canonical strings below are
 * built with these helpers instead of appendStringInfo(): the sealer hashes
 * every posting, and printf-style formatting was a tenth of its time.
 */
static inline void
append_int64(StringInfo buf, int64 v)
{
	char		digits[MAXINT8LEN + 1];
	int			len = pg_lltoa(v, digits);

	appendBinaryStringInfo(buf, digits, len);
}

static void
append_counted(StringInfo buf, const char *label, const char *data, int len)
{
	appendStringInfoString(buf, label);
	appendStringInfoChar(buf, '=');
	append_int64(buf, len);
	appendStringInfoChar(buf, ':');
	appendBinaryStringInfo(buf, data, len);
	appendStringInfoChar(buf, '\n');
}

/*
 * The journal reader: every journal transaction with after < id <= upto,
 * in id order, with its SHA-256 over a canonical byte string: a version
 * tag; the id; key, kind and metadata (jsonb's normalised text) as
 * length-counted strings; the request hash in hex; reverses; forced;
 * created_at as integer microseconds; then each entry "leg:account:amount"
 * in leg order.  Independent of every session setting.
 *
 * The transactions and the entries are read through their primary keys
 * (txn (id), entry (txn_id, leg)) with the table and index access methods,
 * two ordered scans merged, so memory stays flat for any range; entries of
 * a transaction that is not there are skipped (audit_verify reports the
 * transaction as deleted).  seal() (through journal_chunk) and
 * audit_verify() (through journal_hashes) both use it, so what is sealed
 * and what is checked are computed the same way.
 */
typedef struct JournalReader
{
	const WalletRels *rels;		/* relations and column numbers (rows.c) */
	LedgerRangeScan txn;		/* wallet.txn by id */
	LedgerRangeScan ent;		/* wallet.entry by (txn_id, leg) */
	bool		ent_ready;		/* ent.slot holds an entry not consumed yet */
	bool		ent_done;
	int64		upto;
	pg_cryptohash_ctx *ctx;
	StringInfoData buf;
	MemoryContext scan_cxt;		/* where the scans live and run */
	MemoryContext per_row;		/* reset per transaction: strings only */
} JournalReader;

static void
journal_begin(JournalReader *r, int64 after, int64 upto, Snapshot snap)
{
	memset(r, 0, sizeof(*r));
	r->upto = upto;
	r->scan_cxt = CurrentMemoryContext;
	r->rels = ledger_rels();
	ledger_range_scan_begin(&r->txn, r->rels->txn, r->rels->txn_pkey, after, snap);
	ledger_range_scan_begin(&r->ent, r->rels->entry, r->rels->entry_pkey, after, snap);

	/* one hash context for the whole range, re-initialised per transaction */
	r->ctx = pg_cryptohash_create(PG_SHA256);
	if (r->ctx == NULL)
		elog(ERROR, "wallet: could not create a SHA-256 context");
	initStringInfo(&r->buf);
	r->per_row = AllocSetContextCreate(CurrentMemoryContext, "wallet journal hash",
									   ALLOCSET_DEFAULT_SIZES);
}

static void
journal_end(JournalReader *r)
{
	ledger_range_scan_end(&r->txn);
	ledger_range_scan_end(&r->ent);
	pg_cryptohash_free(r->ctx);
	MemoryContextDelete(r->per_row);
	pfree(r->buf.data);
}

/*
 * The next entry's transaction id, or PG_INT64_MAX when there is none.
 * The scan runs in the reader's own context: the index AM keeps memory
 * between calls (btree's list of dead items to mark, for one), which must
 * not live in the per-transaction context that is reset.
 */
static int64
journal_peek_entry(JournalReader *r)
{
	bool		isnull;

	if (!r->ent_ready && !r->ent_done)
	{
		MemoryContext old = MemoryContextSwitchTo(r->scan_cxt);

		if (index_getnext_slot(r->ent.scan, ForwardScanDirection, r->ent.slot))
			r->ent_ready = true;
		else
			r->ent_done = true;
		MemoryContextSwitchTo(old);
	}
	if (r->ent_done)
		return PG_INT64_MAX;
	return DatumGetInt64(slot_getattr(r->ent.slot, r->rels->e_txn, &isnull));
}

/* the next transaction: its id and hash; false past upto */
static bool
journal_next(JournalReader *r, int64 *id_out, uint8 digest[PG_SHA256_DIGEST_LENGTH])
{
	static const char hexdigits[] = "0123456789abcdef";
	TupleTableSlot *slot = r->txn.slot;
	StringInfo	buf = &r->buf;
	MemoryContext old;
	bool		isnull;
	int64		id;
	Datum		d;
	text	   *t;
	bytea	   *b;

	CHECK_FOR_INTERRUPTS();
	Assert(CurrentMemoryContext == r->scan_cxt);
	if (!index_getnext_slot(r->txn.scan, ForwardScanDirection, slot))
		return false;
	id = DatumGetInt64(slot_getattr(slot, r->rels->t_id, &isnull));
	if (id > r->upto)
		return false;

	MemoryContextReset(r->per_row);
	old = MemoryContextSwitchTo(r->per_row);
	resetStringInfo(buf);
	appendStringInfoString(buf, "wallet-journal-v1\nid=");
	append_int64(buf, id);
	appendStringInfoChar(buf, '\n');
	t = DatumGetTextPP(slot_getattr(slot, r->rels->t_key, &isnull));
	append_counted(buf, "key", VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	t = DatumGetTextPP(slot_getattr(slot, r->rels->t_kind, &isnull));
	append_counted(buf, "kind", VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	b = DatumGetByteaPP(slot_getattr(slot, r->rels->t_hash, &isnull));
	appendStringInfoString(buf, "request=");
	enlargeStringInfo(buf, 2 * VARSIZE_ANY_EXHDR(b) + 1);
	for (int i = 0; i < VARSIZE_ANY_EXHDR(b); i++)
	{
		unsigned char c = (unsigned char) VARDATA_ANY(b)[i];

		buf->data[buf->len++] = hexdigits[c >> 4];
		buf->data[buf->len++] = hexdigits[c & 15];
	}
	buf->data[buf->len] = '\0';
	appendStringInfoChar(buf, '\n');
	d = slot_getattr(slot, r->rels->t_metadata, &isnull);
	if (isnull)
		appendStringInfoString(buf, "metadata=null\n");
	else
	{
		Jsonb	   *jb = DatumGetJsonbP(d);
		char	   *js = JsonbToCString(NULL, &jb->root, VARSIZE(jb));

		append_counted(buf, "metadata", js, strlen(js));
	}
	d = slot_getattr(slot, r->rels->t_reverses, &isnull);
	if (isnull)
		appendStringInfoString(buf, "reverses=null\n");
	else
	{
		appendStringInfoString(buf, "reverses=");
		append_int64(buf, DatumGetInt64(d));
		appendStringInfoChar(buf, '\n');
	}
	appendStringInfoString(buf,
						   DatumGetBool(slot_getattr(slot, r->rels->t_forced, &isnull)) ? "forced=t\n" : "forced=f\n");
	appendStringInfoString(buf, "created_at=");
	append_int64(buf, (int64) DatumGetTimestampTz(slot_getattr(slot, r->rels->t_created_at, &isnull)));
	appendStringInfoChar(buf, '\n');

	/* its entries: the entry scan is ordered the same way */
	for (;;)
	{
		int64		etxn = journal_peek_entry(r);

		if (etxn < id)
		{
			r->ent_ready = false;	/* entry of a transaction that is not there */
			continue;
		}
		if (etxn > id)
			break;
		appendStringInfoString(buf, "leg=");
		append_int64(buf, DatumGetInt16(slot_getattr(r->ent.slot, r->rels->e_leg, &isnull)));
		appendStringInfoChar(buf, ':');
		append_int64(buf, DatumGetInt64(slot_getattr(r->ent.slot, r->rels->e_account, &isnull)));
		appendStringInfoChar(buf, ':');
		append_int64(buf, DatumGetInt64(slot_getattr(r->ent.slot, r->rels->e_amount, &isnull)));
		appendStringInfoChar(buf, '\n');
		r->ent_ready = false;
	}

	if (pg_cryptohash_init(r->ctx) < 0 ||
		pg_cryptohash_update(r->ctx, (uint8 *) buf->data, buf->len) < 0 ||
		pg_cryptohash_final(r->ctx, digest, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "wallet: could not compute SHA-256");
	MemoryContextSwitchTo(old);
	*id_out = id;
	return true;
}

/*
 * wallet.journal_hashes(after bigint, upto bigint)
 *   → table(id bigint, hash bytea)
 *
 * The hash of every journal transaction with after < id <= upto, in id
 * order (see the journal reader above).  audit_verify() compares them with
 * the sealed ones.
 */
PG_FUNCTION_INFO_V1(wallet_journal_hashes);
Datum
wallet_journal_hashes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		after = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0);
	int64		upto = PG_ARGISNULL(1) ? PG_INT64_MAX : PG_GETARG_INT64(1);
	JournalReader r;
	int64		id;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];

	InitMaterializedSRF(fcinfo, 0);
	journal_begin(&r, after, upto, GetActiveSnapshot());
	while (journal_next(&r, &id, digest))
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = Int64GetDatum(id);
		values[1] = PointerGetDatum(cstring_to_text_with_len((char *) digest, sizeof(digest)));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	journal_end(&r);
	return (Datum) 0;
}

/*
 * wallet.journal_chunk(after bigint, upto bigint, max_records int,
 *                      OUT through bigint, OUT ids bigint[], OUT hashes bytea)
 *
 * What seal() stores for the next chunk of the journal: the ids of at most
 * max_records transactions with after < id <= upto, in id order, their
 * hashes concatenated (32 bytes each), and how far the chunk covers: upto
 * when the range held fewer than max_records, else the last id taken.
 * One pass over the journal, no sort and no tuplestore (seal() used to
 * count the chunk, then aggregate journal_hashes() twice).
 */
PG_FUNCTION_INFO_V1(wallet_journal_chunk);
Datum
wallet_journal_chunk(PG_FUNCTION_ARGS)
{
	int64		after = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0);
	int64		upto = PG_ARGISNULL(1) ? PG_INT64_MAX : PG_GETARG_INT64(1);
	int32		max_records = PG_ARGISNULL(2) ? 10000 : PG_GETARG_INT32(2);
	TupleDesc	tupdesc;
	JournalReader r;
	int64		id;
	int			n = 0;
	int64	   *ids;
	bytea	   *hashes;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	int64		through;

	if (max_records < 1 || max_records > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_records must be between 1 and 1000000, got %d", max_records),
				 errdetail("A seal covers at most that many transactions.")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "wallet: journal_chunk must return a record");
	tupdesc = BlessTupleDesc(tupdesc);

	ids = palloc(sizeof(int64) * max_records);
	hashes = palloc(VARHDRSZ + (Size) PG_SHA256_DIGEST_LENGTH * max_records);
	journal_begin(&r, after, upto, GetActiveSnapshot());
	while (n < max_records &&
		   journal_next(&r, &id, (uint8 *) VARDATA(hashes) + (Size) n * PG_SHA256_DIGEST_LENGTH))
		ids[n++] = id;
	journal_end(&r);
	SET_VARSIZE(hashes, VARHDRSZ + (Size) PG_SHA256_DIGEST_LENGTH * n);
	through = n < max_records ? upto : ids[n - 1];

	values[0] = Int64GetDatum(through);
	values[1] = ledger_int8_array(ids, n);
	values[2] = PointerGetDatum(hashes);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
