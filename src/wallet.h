/*
 * wallet.h — what the extension's C files share: the on-disk amount value,
 * the SQLSTATEs, and the small services one file provides to the others
 * (currency registry, API-call guard, cached SPI plans).
 */
#ifndef WALLET_H
#define WALLET_H

#include "postgres.h"
#include "fmgr.h"
#include "executor/spi.h"

#include "money.h"

/*
 * wallet.amount: 16 bytes, fixed length, pass by reference, double
 * aligned.  units are the currency's minor units; the code is the
 * NUL-padded upper-case currency code.  No padding bytes, so the value can
 * be hashed and compared as raw bytes.
 */
typedef struct Amount
{
	int64		units;
	MoneyCode	currency;
} Amount;

StaticAssertDecl(sizeof(Amount) == 16, "wallet.amount must be 16 bytes");

#define DatumGetAmountP(X)		((Amount *) DatumGetPointer(X))
#define AmountPGetDatum(X)		PointerGetDatum(X)
#define PG_GETARG_AMOUNT_P(n)	DatumGetAmountP(PG_GETARG_DATUM(n))
#define PG_RETURN_AMOUNT_P(x)	return AmountPGetDatum(x)

/*
 * SQLSTATEs.  Class "WL" is the wallet's own; generic conditions use
 * PostgreSQL's standard codes so drivers map them as usual.  The README's
 * SQLSTATE table lists them all; keep the two in step.
 */
#define ERRCODE_WALLET_INSUFFICIENT_FUNDS	MAKE_SQLSTATE('W','L','0','0','1')
#define ERRCODE_WALLET_CURRENCY_MISMATCH	MAKE_SQLSTATE('W','L','0','0','2')
#define ERRCODE_WALLET_UNKNOWN_ACCOUNT		MAKE_SQLSTATE('W','L','0','0','3')
#define ERRCODE_WALLET_ACCOUNT_FROZEN		MAKE_SQLSTATE('W','L','0','0','4')
#define ERRCODE_WALLET_ACCOUNT_CLOSED		MAKE_SQLSTATE('W','L','0','0','5')
#define ERRCODE_WALLET_IDEMPOTENCY_CONFLICT	MAKE_SQLSTATE('W','L','0','0','6')
#define ERRCODE_WALLET_UNBALANCED			MAKE_SQLSTATE('W','L','0','0','7')
#define ERRCODE_WALLET_HOLD_NOT_PENDING		MAKE_SQLSTATE('W','L','0','0','8')
#define ERRCODE_WALLET_UNKNOWN_TRANSACTION	MAKE_SQLSTATE('W','L','0','0','9')
#define ERRCODE_WALLET_ALREADY_REVERSED		MAKE_SQLSTATE('W','L','0','1','0')
#define ERRCODE_WALLET_UNKNOWN_CURRENCY		MAKE_SQLSTATE('W','L','0','1','1')
#define ERRCODE_WALLET_ACCOUNT_NOT_EMPTY	MAKE_SQLSTATE('W','L','0','1','2')
#define ERRCODE_WALLET_APPEND_ONLY			MAKE_SQLSTATE('W','L','0','1','3')
#define ERRCODE_WALLET_UNKNOWN_HOLD			MAKE_SQLSTATE('W','L','0','1','4')
/* overflow: 22003 numeric_value_out_of_range; malformed text: 22P02;
 * bad argument: 22023 invalid_parameter_value; NULL argument: 22004. */

/* ---- currency.c: the registry (ISO table + wallet.custom_currencies) ---- */

/* minor units of a registered currency, or -1 */
extern int	wallet_currency_minor_units(const MoneyCode *code);
/* MoneyLookupFn adapter */
extern int	wallet_currency_lookup(const MoneyCode *code, void *arg);
/* minor units of a registered currency, or ERROR (unknown / malformed) */
extern int	wallet_currency_require(const char *text, int len, MoneyCode *code);

/* ---- amount.c ---- */
extern Amount *amount_make(int64 units, const MoneyCode *code);
extern void amount_report(MoneyStatus st, const char *what, const char *input);
extern char *amount_to_cstring(const Amount *a);
extern char *units_to_cstring(int64 units, const MoneyCode *code);
extern char *units_wide_to_cstring(int128 units, const MoneyCode *code);
/* numeric * 10^n exactly; integral numeric → int64 or overflow ERROR */
extern struct NumericData *amount_numeric_scale(struct NumericData *value, int n);
extern int64 amount_numeric_to_units(struct NumericData *value, const char *what);

/* ---- audit.c ---- */
/* shared writer lock, taken before drawing a journal or audit id */
extern void wallet_writer_lock(void);
/* wait until every transaction holding a writer lock now has ended */
extern void wallet_wait_writers(void);
extern void wallet_audit_define_gucs(void);
/* fixed output settings for rendering rows into audit records */
extern int	wallet_canonical_output_begin(void);
extern void wallet_canonical_output_end(int nest);
/* ERROR (39P01) unless the function was called by the trigger manager */
extern void wallet_require_trigger(FunctionCallInfo fcinfo, const char *function);

/* ---- amount_ops.c ---- */
extern void amount_check_same_currency(const Amount *a, const Amount *b,
									   const char *op);

#endif							/* WALLET_H */
