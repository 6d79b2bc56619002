/*
 * audit.c — history that cannot be rewritten unnoticed: the append-only
 * guard on the journal, the generic row-audit trigger wallet.audit(), and
 * the SHA-256 chain that seals the journal and the audit log
 * (wallet.digest, wallet.audit_verify).
 */
#include "wallet.h"

#include "commands/trigger.h"
#include "utils/rel.h"

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

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "wallet_forbid_change: not called as trigger");
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
			 errmsg("%s of %s is not allowed: posted history is append-only",
					op, RelationGetRelationName(trigdata->tg_relation)),
			 errhint("Correct a transaction by posting its reversal with wallet.reverse().")));
	PG_RETURN_NULL();
}
