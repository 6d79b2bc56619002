/*
 * worker.c — the library's entry point (_PG_init: GUCs, background
 * workers) and housekeeping that runs by itself when wallet is in
 * shared_preload_libraries.
 *
 * A launcher worker (connected to no database) lists the databases every
 * wallet.housekeeping_naptime seconds and starts one housekeeping worker
 * per database that allows connections and has none running.  A
 * housekeeping worker calls wallet.housekeeping() (expire holds, fold hot
 * accounts, seal the audit chain) every naptime while the extension is
 * installed there, and exits when it is not, to be tried again later.
 * Without preloading, call SELECT wallet.housekeeping() from cron.
 */
#include "wallet.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "tcop/utility.h"

PGDLLEXPORT void wallet_launcher_main(Datum main_arg);
PGDLLEXPORT void wallet_housekeeper_main(Datum main_arg);

static int	housekeeping_naptime = 1;	/* seconds */
static bool housekeeping_enabled = true;

#define MAX_TRACKED_DBS 256

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
} TrackedDb;

static void
start_housekeeper(TrackedDb *db)
{
	BackgroundWorker worker;

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
	if (!RegisterDynamicBackgroundWorker(&worker, &db->handle))
		db->handle = NULL;		/* no slot now; try again next round */
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
				for (i = 0; i < ndbs; i++)
					if (dbs[i].dboid == db->oid)
						break;
				if (i == ndbs)
				{
					if (ndbs == MAX_TRACKED_DBS)
						continue;
					dbs[ndbs].dboid = db->oid;
					dbs[ndbs].handle = NULL;
					ndbs++;
				}
				{
					pid_t		pid;

					if (dbs[i].handle == NULL ||
						GetBackgroundWorkerPid(dbs[i].handle, &pid) == BGWH_STOPPED)
						start_housekeeper(&dbs[i]);
				}
			}
			table_endscan(scan);
			table_close(rel, AccessShareLock);
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(housekeeping_naptime, 1) * 10000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* one housekeeping pass; returns false when wallet is not installed here */
static bool
housekeeping_pass(void)
{
	bool		installed = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "wallet housekeeping");
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'wallet'", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		installed = true;
		PopActiveSnapshot();
		/* housekeeping needs fresh snapshots per statement (READ COMMITTED) */
		if (SPI_execute("SELECT wallet.housekeeping()", false, 0) != SPI_OK_SELECT)
			elog(WARNING, "wallet: housekeeping failed");
	}
	else
		PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return installed;
}

void
wallet_housekeeper_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	for (;;)
	{
		volatile bool installed = true;
		MemoryContext oldcxt = CurrentMemoryContext;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!housekeeping_enabled)
			proc_exit(0);

		PG_TRY();
		{
			installed = housekeeping_pass();
		}
		PG_CATCH();
		{
			/* report, clean up, and try again next round */
			MemoryContextSwitchTo(oldcxt);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
		}
		PG_END_TRY();

		/* not installed here: leave; the launcher looks again later */
		if (!installed)
			proc_exit(0);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 housekeeping_naptime * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
