/*
 * worker.c — the library's entry point (_PG_init: GUCs, background
 * workers) and housekeeping that runs by itself when wallet is in
 * shared_preload_libraries.
 *
 * A launcher worker (connected to no database) lists the databases every
 * wallet.housekeeping_naptime seconds and starts a housekeeping worker for
 * each database that allows connections: if the extension is installed
 * there, it runs wallet.housekeeping()'s steps (expire holds, fold hot
 * accounts, seal the audit chain, file the journal per account) every
 * naptime for at most HOUSEKEEPER_LIFETIME_SECS, records in shared memory
 * whether the extension is there, and exits.  Databases without the
 * extension are looked at again only every WALLET_RECHECK_SECS.  Without
 * preloading, call SELECT wallet.housekeeping() from cron.
 *
 * A housekeeper stays for several passes because a process per pass
 * planned every query of the pass with cold caches: a fifth of all CPU of
 * a 2-core machine under 8 clients of transfers went to those workers, a
 * third of that parsing and planning (perf record -a -g, 2026-12-01; 5.8 %
 * with housekeepers that stay).  It
 * still never holds up DROP DATABASE, ALTER DATABASE or CREATE DATABASE
 * ... TEMPLATE (which refuse while another session is connected): between
 * passes it tries the lock those take on the database and leaves when it
 * cannot have it; a running pass is waited for, as before.  It also
 * leaves as soon as the launcher has a database waiting for a slot, so
 * databases still take turns when there are more than slots.
 */
#include "wallet.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "tcop/utility.h"

PGDLLEXPORT void wallet_launcher_main(Datum main_arg);
PGDLLEXPORT void wallet_housekeeper_main(Datum main_arg);

static int	housekeeping_naptime = 1;	/* seconds */
static bool housekeeping_enabled = true;

#define MAX_TRACKED_DBS 256
#define WALLET_RECHECK_SECS 30
/* a housekeeper runs passes for at most this long, then the launcher starts the next */
#define HOUSEKEEPER_LIFETIME_SECS 10
/* a database skipped for its schema's owner is named in the log this often */
#define WALLET_REWARN_SECS 600

/* what housekeeping workers learnt about each database */
typedef struct WalletDbState
{
	Oid			dboid;
	bool		installed;
	TimestampTz checked;
	TimestampTz warned;			/* last "skips database" warning, 0 if none */
	TimestampTz wanted;			/* its housekeeper left for a DROP/ALTER DATABASE */
} WalletDbState;

typedef struct WalletShared
{
	slock_t		mutex;
	int			ndbs;
	int			starved;		/* databases due that found no free slot */
	WalletDbState dbs[MAX_TRACKED_DBS];
} WalletShared;

static WalletShared *wallet_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
wallet_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WalletShared)));
}

static void
wallet_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	wallet_shared = ShmemInitStruct("wallet", sizeof(WalletShared), &found);
	if (!found)
	{
		SpinLockInit(&wallet_shared->mutex);
		wallet_shared->ndbs = 0;
		wallet_shared->starved = 0;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* a database's entry, added if missing; NULL when the table is full (mutex held) */
static WalletDbState *
db_state(Oid dboid)
{
	int			i;

	for (i = 0; i < wallet_shared->ndbs; i++)
		if (wallet_shared->dbs[i].dboid == dboid)
			return &wallet_shared->dbs[i];
	if (i == MAX_TRACKED_DBS)
		return NULL;
	wallet_shared->ndbs++;
	memset(&wallet_shared->dbs[i], 0, sizeof(WalletDbState));
	wallet_shared->dbs[i].dboid = dboid;
	return &wallet_shared->dbs[i];
}

/* record whether the extension is installed in a database */
static void
note_db(Oid dboid, bool installed)
{
	WalletDbState *st;

	if (wallet_shared == NULL)
		return;
	SpinLockAcquire(&wallet_shared->mutex);
	st = db_state(dboid);
	if (st != NULL)
	{
		st->installed = installed;
		st->checked = GetCurrentTimestamp();
	}
	SpinLockRelease(&wallet_shared->mutex);
}

/* record that a database's housekeeper left for a command wanting it (db_due) */
static void
note_wanted(Oid dboid)
{
	WalletDbState *st;

	if (wallet_shared == NULL)
		return;
	SpinLockAcquire(&wallet_shared->mutex);
	st = db_state(dboid);
	if (st != NULL)
		st->wanted = GetCurrentTimestamp();
	SpinLockRelease(&wallet_shared->mutex);
}

/*
 * Should this pass warn that it skips the database?  Passes run every
 * naptime; the warning is repeated every WALLET_REWARN_SECS, not each time.
 */
static bool
skip_warning_due(Oid dboid)
{
	WalletDbState *st;
	bool		due = true;
	TimestampTz now = GetCurrentTimestamp();

	if (wallet_shared == NULL)
		return true;
	SpinLockAcquire(&wallet_shared->mutex);
	st = db_state(dboid);
	if (st != NULL)
	{
		due = st->warned == 0 ||
			TimestampDifferenceExceeds(st->warned, now, WALLET_REWARN_SECS * 1000);
		if (due)
			st->warned = now;
	}
	SpinLockRelease(&wallet_shared->mutex);
	return due;
}

/* should the launcher start a pass for this database now? */
static bool
db_due(Oid dboid)
{
	bool		due = true;

	if (wallet_shared == NULL)
		return true;
	SpinLockAcquire(&wallet_shared->mutex);
	for (int i = 0; i < wallet_shared->ndbs; i++)
		if (wallet_shared->dbs[i].dboid == dboid)
		{
			TimestampTz now = GetCurrentTimestamp();

			due = wallet_shared->dbs[i].installed ||
				TimestampDifferenceExceeds(wallet_shared->dbs[i].checked, now,
										   WALLET_RECHECK_SECS * 1000);
			/*
			 * Not while a command that wants the database to itself runs:
			 * a housekeeper started then waited for it in its connection
			 * and died with "database ... does not exist" when it was a
			 * DROP (found by a review).  Two seconds, then again.
			 */
			if (wallet_shared->dbs[i].wanted != 0 &&
				!TimestampDifferenceExceeds(wallet_shared->dbs[i].wanted, now, 2000))
				due = false;
			break;
		}
	SpinLockRelease(&wallet_shared->mutex);
	return due;
}

void		_PG_init(void);

void
_PG_init(void)
{
	BackgroundWorker worker;

	wallet_audit_define_gucs();
	DefineCustomIntVariable("wallet.housekeeping_naptime",
							"Seconds between housekeeping runs of the background worker.",
							NULL, &housekeeping_naptime, 1, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomBoolVariable("wallet.housekeeping",
							 "Run housekeeping (expire holds, fold hot accounts, seal) in the background.",
							 NULL, &housekeeping_enabled, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = wallet_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = wallet_shmem_startup;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "wallet");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "wallet_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "wallet launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "wallet launcher");
	RegisterBackgroundWorker(&worker);
}

typedef struct TrackedDb
{
	Oid			dboid;
	BackgroundWorkerHandle *handle;
	TimestampTz last_start;		/* passes start at most once per naptime */
} TrackedDb;

/* true when the worker was registered (a free slot was found) */
static bool
start_housekeeper(TrackedDb *db)
{
	bool		started;

	BackgroundWorker worker;
	MemoryContext oldcxt;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "wallet");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "wallet_housekeeper_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "wallet housekeeper %u", db->dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "wallet housekeeper");
	worker.bgw_main_arg = ObjectIdGetDatum(db->dboid);
	worker.bgw_notify_pid = MyProcPid;
	/* the handle outlives the launcher's transaction */
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	if (db->handle != NULL)
		pfree(db->handle);
	started = RegisterDynamicBackgroundWorker(&worker, &db->handle);
	if (!started)
		db->handle = NULL;		/* no slot now; first in line next round */
	MemoryContextSwitchTo(oldcxt);
	return started;
}

/* the database whose last pass started longest ago first (arg: the dbs) */
static int
cmp_waiting(const void *a, const void *b, void *arg)
{
	const TrackedDb *dbs = arg;
	TimestampTz x = dbs[*(const int *) a].last_start;
	TimestampTz y = dbs[*(const int *) b].last_start;

	return (x > y) - (x < y);
}

void
wallet_launcher_main(Datum main_arg)
{
	TrackedDb	dbs[MAX_TRACKED_DBS];
	int			ndbs = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (housekeeping_enabled)
		{
			Relation	rel;
			TableScanDesc scan;
			HeapTuple	tup;
			int			waiting[MAX_TRACKED_DBS];
			int			nwaiting = 0;
			int			running = 0;

			/*
			 * At most a quarter of max_worker_processes passes at a time
			 * (parallel query and replication need the rest); the databases
			 * that waited longest go first, so none is starved when there
			 * are more databases than slots.
			 */
			int			max_running = Max(1, max_worker_processes / 4);

			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			rel = table_open(DatabaseRelationId, AccessShareLock);
			scan = table_beginscan_catalog(rel, 0, NULL);
			while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
			{
				Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
				int			i;

				if (!db->datallowconn || db->datistemplate)
					continue;
#ifdef DATCONNLIMIT_INVALID_DB
				/* a DROP DATABASE interrupted half-way leaves it invalid */
				if (database_is_invalid_form(db))
					continue;
#endif
				for (i = 0; i < ndbs; i++)
					if (dbs[i].dboid == db->oid)
						break;
				if (i == ndbs)
				{
					if (ndbs == MAX_TRACKED_DBS)
						continue;
					dbs[ndbs].dboid = db->oid;
					dbs[ndbs].handle = NULL;
					dbs[ndbs].last_start = 0;
					ndbs++;
				}
				{
					pid_t		pid;

					/*
					 * A worker's exit wakes us (bgw_notify_pid): start the
					 * next pass only once a naptime has passed since the last.
					 */
					if (dbs[i].handle != NULL &&
						GetBackgroundWorkerPid(dbs[i].handle, &pid) != BGWH_STOPPED)
						running++;
					else if (TimestampDifferenceExceeds(dbs[i].last_start, GetCurrentTimestamp(),
														Max(housekeeping_naptime, 1) * 1000 - 50) &&
							 db_due(db->oid))
						waiting[nwaiting++] = i;
				}
			}
			table_endscan(scan);
			table_close(rel, AccessShareLock);
			qsort_arg(waiting, nwaiting, sizeof(int), cmp_waiting, dbs);
			{
				int			w;

				for (w = 0; w < nwaiting && running < max_running; w++)
				{
					if (!start_housekeeper(&dbs[waiting[w]]))
						break;	/* no free slot: the rest keep their turn */
					dbs[waiting[w]].last_start = GetCurrentTimestamp();
					running++;
				}
				/* housekeepers give their slot up while others wait */
				if (wallet_shared != NULL)
				{
					SpinLockAcquire(&wallet_shared->mutex);
					wallet_shared->starved = nwaiting - w;
					SpinLockRelease(&wallet_shared->mutex);
				}
			}
			/* forget databases that are gone (their workers have exited) */
			{
				int			kept = 0;

				for (int i = 0; i < ndbs; i++)
				{
					if (!OidIsValid(dbs[i].dboid))
						continue;
					if (!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dbs[i].dboid)))
					{
						if (dbs[i].handle != NULL)
							pfree(dbs[i].handle);
						continue;
					}
					dbs[kept++] = dbs[i];
				}
				ndbs = kept;
			}
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(housekeeping_naptime, 1) * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* does the function (a regprocedure text) exist? (SPI connected) */
static bool
function_exists(const char *signature)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;

	args[0] = CStringGetTextDatum(signature);
	if (SPI_execute_with_args("SELECT pg_catalog.to_regprocedure($1) IS NOT NULL",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		return false;
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Is the ledger settled: is no table of the extension's schema ahead of
 * the sequence its ids come from?  A pg_restore loads the tables' data
 * before it sets the sequences (SEQUENCE SET comes after all TABLE DATA;
 * a sequence not called yet hands out last_value next, so its ids so far
 * end at last_value - 1: RESTART WITH max + 1 is settled):
 * in between, a pass that expired a hold would draw an audit id from the
 * fresh sequence, inside the restored, sealed range (audit_verify() then
 * fails for ever), or collide with a restored id.  Such a database is
 * skipped until its sequences are set.  Only columns with an index
 * leading on them are compared (max() is then one descent).  (SPI
 * connected.)
 */
static bool
ledger_settled(void)
{
	bool		isnull;
	Datum		expr;
	char	   *sql;

	if (SPI_execute("SELECT pg_catalog.string_agg(pg_catalog.format("
					"'coalesce((SELECT pg_catalog.max(%I) FROM %s), 0) OPERATOR(pg_catalog.<=) "
					"(SELECT CASE WHEN is_called THEN last_value ELSE last_value OPERATOR(pg_catalog.-) 1 END FROM %s)', "
					"a.attname, pg_catalog.format('%I.%I', n.nspname, c.relname), "
					"pg_catalog.format('%I.%I', sn.nspname, s.relname)), ' AND ') "
					"FROM pg_catalog.pg_attrdef ad "
					"JOIN pg_catalog.pg_class c ON c.oid = ad.adrelid "
					"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
					"JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum "
					"JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass "
					" AND d.objid = ad.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
					"JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S' "
					"JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace "
					"WHERE c.relnamespace = (SELECT e.extnamespace FROM pg_catalog.pg_extension e "
					"                         WHERE e.extname = 'wallet') "
					"  AND a.atttypid IN ('pg_catalog.int8'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype) "
					"  AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i "
					"               WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum)",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "wallet: could not list the ledger's sequences");
	expr = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return true;
	sql = psprintf("SELECT %s", TextDatumGetCString(expr));
	if (SPI_execute(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "wallet: could not compare the ledger's sequences with its tables");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Is a restore loading this database?  pg_restore -j sets the sequences
 * while other connections still load the tables (SEQUENCE SET and TABLE
 * DATA are both data items, run side by side), so ledger_settled() can
 * pass on tables whose rows are not committed yet: a seal then covered
 * ids it could not see (audit_verify() failed for good), and the history
 * horizon moved past entries never filed.  So the pass also stops while a
 * superuser's pg_restore session (its application_name, unless PGAPPNAME
 * overrides it) is connected to this database, or while anything runs
 * COPY FROM into a table of the extension's schema (pg_stat_progress_copy;
 * a plain psql restore, or a loader under another name; only a superuser
 * may write those tables).  The worker runs as a superuser and sees every
 * session.  wallet.restore_in_progress() is the same test for
 * housekeeping() from cron.  (SPI connected.)
 */
static bool
restore_running(void)
{
	bool		isnull;

	/*
	 * Only a superuser's session counts: restoring the extension and its
	 * tables takes one, and any role may name its session pg_restore
	 * (which would otherwise stop housekeeping for as long as it likes).
	 * pg_stat_progress_copy exists from PostgreSQL 14 on.
	 */
	if (SPI_execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a "
					"                 JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.usesysid "
					"               WHERE a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database() "
					"                 AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid() "
					"                 AND a.application_name OPERATOR(pg_catalog.=) 'pg_restore' AND r.rolsuper) "
#if PG_VERSION_NUM >= 140000
					"    OR EXISTS (SELECT 1 FROM pg_catalog.pg_stat_progress_copy p "
					"                 JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid "
					"               WHERE p.datname OPERATOR(pg_catalog.=) pg_catalog.current_database() "
					"                 AND p.command OPERATOR(pg_catalog.=) 'COPY FROM' "
					"                 AND c.relnamespace OPERATOR(pg_catalog.=) (SELECT e.extnamespace FROM pg_catalog.pg_extension e "
					"                                         WHERE e.extname OPERATOR(pg_catalog.=) 'wallet'))"
#endif
					, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "wallet: could not look for a restore in progress");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * The steps are called by name, with superuser rights: only in a schema
 * wallet that is the extension's and belongs to a superuser (its owner
 * could otherwise rename it and plant its own wallet.*).  1.4.0 refuses to
 * install or update into such a schema; this covers databases still on an
 * older version.  (SPI connected.)
 */
static bool
schema_trusted(void)
{
	bool		isnull;

	if (SPI_execute("SELECT n.nspname = 'wallet' AND r.rolsuper "
					"FROM pg_catalog.pg_extension e "
					"JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
					"JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner "
					"WHERE e.extname = 'wallet'", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		return false;
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) && !isnull;
}

/* this pass's database, for messages written outside a transaction */
static char pass_dbname[NAMEDATALEN] = "?";

/*
 * Run one SQL statement that returns one bigint (or nothing) in a
 * transaction of its own, with the given int8 parameters; returns the
 * value (0 when none, and when the step failed).
 *
 * A step that fails is logged and rolled back, and the pass goes on with
 * the next step: one step that fails on every pass (a fold that could not
 * be done, say) must not stop the others, sealing above all (1.6.0
 * library; before, its error ended the pass, and the pass after it failed
 * the same way).  Errors that end the process (FATAL: a terminate
 * request) do not come back here.
 */
static int64
run_step(const char *sql, int nargs, int64 *args)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2];
	volatile int64 result = 0;
	MemoryContext caller = CurrentMemoryContext;

	Assert(nargs <= 2);
	for (int i = 0; i < nargs; i++)
		values[i] = Int64GetDatum(args[i]);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, sql);
		/* not read-only: each statement inside takes a fresh snapshot */
		if (SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(WARNING, "wallet: housekeeping step failed: %s", sql);
		else if (SPI_processed == 1 && SPI_tuptable->tupdesc->natts >= 1 &&
				 TupleDescAttr(SPI_tuptable->tupdesc, 0)->atttypid == INT8OID)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			result = isnull ? 0 : DatumGetInt64(d);
		}
		PopActiveSnapshot();
		SPI_finish();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		/*
		 * What PostgreSQL does with an error it goes on after (postgres.c,
		 * and the logical replication worker that disables its
		 * subscription): report it, roll back out of any (sub)transaction
		 * (which also unwinds SPI, the snapshot and any lock wait), then
		 * forget it, with interrupts held meanwhile.
		 */
		HOLD_INTERRUPTS();
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		MemoryContextSwitchTo(caller);
		FlushErrorState();
		/* a cancel that came with the error is spent, not the next step's */
		QueryCancelPending = false;
		RESUME_INTERRUPTS();
		ereport(LOG,
				(errmsg("wallet: housekeeping step failed in database \"%s\", the pass goes on: %s",
						pass_dbname, sql)));
		result = 0;
	}
	PG_END_TRY();
	return result;
}

/*
 * Seal and file the journal (1.1.0 and later): read the horizons, wait for
 * the writers that could still commit below them in a transaction that
 * holds no snapshot, then seal and file in short transactions, a chunk
 * each.  A snapshot held through the wait and the whole pass (what
 * SELECT wallet.seal() does) holds back the cleanup of dead rows in every
 * table for as long: busy account rows then fill their pages, updates stop
 * being HOT and the table bloats.
 */
static void
journal_passes(void)
{
	int64		horizons[2];

	/* the horizons: ids drawn so far */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "wallet: journal horizons");
	if (SPI_execute("SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM wallet.txn_id_seq), "
					"(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM wallet.audit_log_id_seq)",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "wallet: could not read the journal's sequences");
	for (int i = 0; i < 2; i++)
	{
		bool		isnull;

		horizons[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull));
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();

	/* wait for the writers in flight, holding no snapshot */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, "wallet: waiting for writers");
	wallet_wait_writers();
	CommitTransactionCommand();

	/* seal, one seal (10,000 records at most) per transaction */
	while (run_step("SELECT wallet.seal_range($1, $2, 1)", 2, horizons) > 0)
		CHECK_FOR_INTERRUPTS();
	/* file, 100,000 entries at most per transaction */
	{
		int64		args[2] = {horizons[0], 100000};

		while (run_step("SELECT wallet.index_history_range($1, $2)", 2, args) > 0)
			CHECK_FOR_INTERRUPTS();
	}
}

/* one housekeeping pass; returns false when wallet is not installed here */
static bool
housekeeping_pass(void)
{
	bool		installed = false;
	bool		has_steps[6] = {false};

	/* a step runs when its function exists (older versions lack some) */
	static const char *const functions[6] = {
		"wallet.expire_holds()", "wallet.fold_hot(bigint)", "wallet.seal()", "wallet.index_history()",
		"wallet.seal_range(bigint,bigint,integer)", "wallet.index_history_range(bigint,bigint)"
	};

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "SELECT wallet.housekeeping()");
	{
		char	   *name = get_database_name(MyDatabaseId);

		if (name != NULL)
			strlcpy(pass_dbname, name, sizeof(pass_dbname));
	}
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'wallet'", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		installed = true;
	/* no step runs in an untrusted schema or a ledger being restored */
	if (installed && !schema_trusted())
		ereport(skip_warning_due(MyDatabaseId) ? WARNING : DEBUG1,
				(errmsg("wallet: housekeeping skips database \"%s\": the extension's schema is not a schema wallet owned by a superuser",
						get_database_name(MyDatabaseId)),
				 errhint("ALTER SCHEMA wallet OWNER TO a superuser.")));
	else if (installed && restore_running())
		ereport(LOG,
				(errmsg("wallet: housekeeping skips database \"%s\": a restore is loading it",
						get_database_name(MyDatabaseId)),
				 errdetail("A superuser's pg_restore session is connected to it, or a COPY into a table of the extension's schema is running."),
				 errhint("The pass resumes once the restore has finished.")));
	else if (installed && !ledger_settled())
		ereport(LOG,
				(errmsg("wallet: housekeeping skips database \"%s\": a table of the ledger is ahead of its id sequence",
						get_database_name(MyDatabaseId)),
				 errdetail("A restore that has loaded the data but not yet set the sequences, or a sequence set back by hand."),
				 errhint("The pass resumes once the sequences are at or past the tables' ids.")));
	else if (installed)
		for (int i = 0; i < lengthof(functions); i++)
			has_steps[i] = function_exists(functions[i]);
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();

	/*
	 * Each step in a transaction of its own: fold_hot's row locks must be
	 * released before the sealer waits for writers, who may be waiting for
	 * them.
	 */
	if (installed)
	{
		if (has_steps[0])
			(void) run_step("SELECT wallet.expire_holds()::bigint", 0, NULL);
		if (has_steps[1])
			(void) run_step("SELECT wallet.fold_hot()", 0, NULL);
		if (has_steps[4] && has_steps[5])
			journal_passes();
		else
		{
			/* never wait long on a writer that sits in an open transaction */
			if (has_steps[2])
				(void) run_step("SELECT wallet.seal()", 0, NULL);
			if (has_steps[3])
				(void) run_step("SELECT wallet.index_history()", 0, NULL);
		}
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	return installed;
}

/*
 * Does another session want this database to itself?  DROP DATABASE,
 * ALTER DATABASE (rename, tablespace) and CREATE DATABASE ... TEMPLATE take
 * a lock on the database that conflicts with the one a connection takes
 * while it starts, then refuse if another session stays connected: try
 * that lock without waiting.  (Outside a transaction: a session lock,
 * released at once.)
 */
static bool
database_wanted(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, MyDatabaseId, 0);
	if (LockAcquire(&tag, RowExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, RowExclusiveLock, true);
	return false;
}

/*
 * Between two passes: wait a naptime, then true for the next pass; false
 * (the process exits) when housekeeping was turned off, the database is
 * wanted (database_wanted), another database waits for a slot, or the
 * process has run HOUSEKEEPER_LIFETIME_SECS.  Polls every 100 ms.
 */
static bool
housekeeper_stays(TimestampTz started)
{
	TimestampTz next = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												   Max(housekeeping_naptime, 1) * 1000L);

	for (;;)
	{
		TimestampTz now;
		int			starved = 0;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (wallet_shared != NULL)
		{
			SpinLockAcquire(&wallet_shared->mutex);
			starved = wallet_shared->starved;
			SpinLockRelease(&wallet_shared->mutex);
		}
		if (!housekeeping_enabled || starved > 0)
			return false;
		if (database_wanted())
		{
			note_wanted(MyDatabaseId);
			return false;
		}
		now = GetCurrentTimestamp();
		if (TimestampDifferenceExceeds(started, now, HOUSEKEEPER_LIFETIME_SECS * 1000))
			return false;
		if (now >= next)
			return true;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(100, TimestampDifferenceMilliseconds(now, next) + 1), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

void
wallet_housekeeper_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	bool		installed;
	TimestampTz started;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	if (!housekeeping_enabled)
		proc_exit(0);
	/*
	 * Never wait long on a writer that sits in an open transaction (the
	 * sealer's wait for writers, a locked row): the pass ends with an
	 * error and the next one tries again.
	 */
	SetConfigOption("lock_timeout", "5s", PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * Sealing and filing must run in READ COMMITTED (they must see what
	 * the writers they waited for committed): a database or role default
	 * of SERIALIZABLE, a sound choice for a money database, made every
	 * pass fail there, and sealing stopped with no check turning false
	 * (1.6.0 library; found by a review).
	 */
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * Queries run as the bootstrap superuser: never with the database's
	 * search_path (ALTER DATABASE ... SET search_path = public, pg_catalog
	 * by the database's owner would put the owner's operators and
	 * functions in front of pg_catalog's).
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	/* an error ends the process (and is logged); the launcher starts the next */
	started = GetCurrentTimestamp();
	for (;;)
	{
		installed = housekeeping_pass();
		note_db(dboid, installed);
		if (!installed || !housekeeper_stays(started))
			break;
	}
	proc_exit(0);
}

/*
 * wallet.ledger_settled() → boolean: ledger_settled() above, for
 * housekeeping() from cron (1.6.0).
 */
PG_FUNCTION_INFO_V1(wallet_ledger_settled);
Datum
wallet_ledger_settled(PG_FUNCTION_ARGS)
{
	bool		settled;

	SPI_connect();
	settled = ledger_settled();
	SPI_finish();
	PG_RETURN_BOOL(settled);
}

/*
 * wallet.housekeeping_wake(): called at the end of the install script, so
 * a database that just got the extension is housekept from the next round
 * instead of after WALLET_RECHECK_SECS.  No-op without preloading.
 */
PG_FUNCTION_INFO_V1(wallet_housekeeping_wake);
Datum
wallet_housekeeping_wake(PG_FUNCTION_ARGS)
{
	note_db(MyDatabaseId, true);
	PG_RETURN_VOID();
}
