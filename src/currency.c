/*
 * currency.c — the currency registry.
 *
 * ISO 4217 currencies are compiled in (currency_iso.c, generated); units an
 * operator adds with wallet.add_currency() (COIN, DIAMOND, ...) live in the
 * table wallet.custom_currencies, read by index scan without SPI (so without
 * the caller's table privileges).  Lookups of custom codes are cached per
 * backend; the cache is flushed by a relcache invalidation that the table's
 * statement trigger (wallet.currency_registry_changed) sends on every
 * change, so every backend sees a new or rolled-back currency at once.
 */
#include "wallet.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"

typedef struct CurrencyCacheEntry
{
	MoneyCode	code;			/* hash key */
	int			minor_units;
} CurrencyCacheEntry;

static HTAB *currency_cache = NULL;
static bool callback_registered = false;
static Oid	custom_currencies_relid = InvalidOid;

static void
currency_cache_reset(Datum arg, Oid relid)
{
	/* a change to the registry table (or a full reset) empties the cache */
	if (relid != InvalidOid && relid != custom_currencies_relid)
		return;
	custom_currencies_relid = InvalidOid;
	if (currency_cache != NULL)
	{
		hash_destroy(currency_cache);
		currency_cache = NULL;
	}
}

static void
currency_cache_init(void)
{
	HASHCTL		ctl;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(currency_cache_reset, (Datum) 0);
		callback_registered = true;
	}
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(MoneyCode);
	ctl.entrysize = sizeof(CurrencyCacheEntry);
	ctl.hcxt = CacheMemoryContext;
	currency_cache = hash_create("wallet currency cache", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * Reads wallet.custom_currencies through its primary key, as catalog
 * lookups do (systable scan, no SPI): the type's input and output work for
 * every role, whatever its privileges on the table.  -1 if the code is not
 * there (or the table is not: during CREATE EXTENSION).
 */
static int
currency_fetch_custom(const MoneyCode *code)
{
	Oid			nsp;
	Oid			indexid;
	char		buf[MONEY_CODE_MAX + 1];
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	int			result = -1;

	nsp = get_namespace_oid("wallet", true);
	if (!OidIsValid(nsp))
		return -1;
	custom_currencies_relid = get_relname_relid("custom_currencies", nsp);
	indexid = get_relname_relid("custom_currencies_pkey", nsp);
	if (!OidIsValid(custom_currencies_relid) || !OidIsValid(indexid))
		return -1;

	money_code_to_cstring(code, buf);
	rel = table_open(custom_currencies_relid, AccessShareLock);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(buf));
	key.sk_collation = DEFAULT_COLLATION_OID;
	scan = systable_beginscan(rel, indexid, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, 2, RelationGetDescr(rel), &isnull);

		if (!isnull)
			result = DatumGetInt32(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

int
wallet_currency_minor_units(const MoneyCode *code)
{
	const MoneyIsoCurrency *iso = money_iso_find(code);
	CurrencyCacheEntry *entry;
	bool		found;
	int			mu;

	if (iso != NULL)
		return iso->minor_units;

	if (currency_cache == NULL)
		currency_cache_init();
	entry = hash_search(currency_cache, code, HASH_FIND, NULL);
	if (entry != NULL)
		return entry->minor_units;

	mu = currency_fetch_custom(code);
	if (mu < 0)
		return -1;				/* unknown codes are not cached */
	/* the SPI call may have processed an invalidation: re-check the cache */
	if (currency_cache == NULL)
		currency_cache_init();
	entry = hash_search(currency_cache, code, HASH_ENTER, &found);
	entry->minor_units = mu;
	return mu;
}

int
wallet_currency_lookup(const MoneyCode *code, void *arg)
{
	return wallet_currency_minor_units(code);
}

int
wallet_currency_require(const char *text, int len, MoneyCode *code)
{
	int			mu;

	if (money_code_from_text(text, len, code) != MONEY_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid currency code \"%.*s\"", pg_mbcharcliplen(text, len, 64), text),
				 errdetail("A currency code is 3 to 8 letters or digits and starts with a letter."),
				 errhint("Use an ISO 4217 code such as USD, or one added with wallet.add_currency().")));
	mu = wallet_currency_minor_units(code);
	if (mu < 0)
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_UNKNOWN_CURRENCY),
				 errmsg("unknown currency \"%.*s\"", pg_mbcharcliplen(text, len, 64), text),
				 errdetail("Neither ISO 4217 nor added with wallet.add_currency()."),
				 errhint("Add it first with wallet.add_currency(code, minor_units, name).")));
	return mu;
}

/*
 * wallet.normalize_currency(text) → text: the canonical (upper-case) code of
 * a well-formed code, or an error; used by add_currency and open_account.
 */
PG_FUNCTION_INFO_V1(wallet_normalize_currency);
Datum
wallet_normalize_currency(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	MoneyCode	code;
	char		buf[MONEY_CODE_MAX + 1];

	if (money_code_from_text(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &code) != MONEY_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid currency code \"%.*s\"",
						pg_mbcharcliplen(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), 64), VARDATA_ANY(t)),
				 errdetail("A currency code is 3 to 8 letters or digits and starts with a letter."),
				 errhint("Use an ISO 4217 code such as USD, or one added with wallet.add_currency().")));
	money_code_to_cstring(&code, buf);
	PG_RETURN_TEXT_P(cstring_to_text(buf));
}

/* wallet.is_iso_currency(text) → boolean */
PG_FUNCTION_INFO_V1(wallet_is_iso_currency);
Datum
wallet_is_iso_currency(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	MoneyCode	code;

	if (money_code_from_text(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &code) != MONEY_OK)
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(money_iso_find(&code) != NULL);
}

/*
 * wallet.iso_currencies() → setof (code text, minor_units int, name text):
 * the compiled-in ISO 4217 table, for the wallet.currencies view.
 */
PG_FUNCTION_INFO_V1(wallet_iso_currencies);
Datum
wallet_iso_currencies(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	size_t		i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < money_iso_count(); i++)
	{
		const MoneyIsoCurrency *c = money_iso_at(i);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum(c->code);
		values[1] = Int32GetDatum(c->minor_units);
		values[2] = CStringGetTextDatum(c->name);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Statement trigger on wallet.custom_currencies: tell every backend (and
 * this one, also on rollback) to drop its cached lookups.
 */
PG_FUNCTION_INFO_V1(wallet_currency_registry_changed);
Datum
wallet_currency_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	wallet_require_trigger(fcinfo, "wallet.currency_registry_changed()");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}
