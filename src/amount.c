/*
 * amount.c — the wallet.amount type itself: text and binary I/O,
 * constructors and accessors, and the mapping of core MoneyStatus codes to
 * PostgreSQL errors.  Operators, comparisons, aggregates and allocation are
 * in amount_ops.c.
 */
#include "wallet.h"

#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

PG_MODULE_MAGIC;

Amount *
amount_make(int64 units, const MoneyCode *code)
{
	Amount	   *a = (Amount *) palloc(sizeof(Amount));

	a->units = units;
	a->currency = *code;
	return a;
}

/* minor units of a code already stored in a value, or WL011 */
static int
stored_minor_units(const MoneyCode *code)
{
	int			mu = wallet_currency_minor_units(code);

	if (mu < 0)
	{
		char		c[MONEY_CODE_MAX + 1];

		money_code_to_cstring(code, c);
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_UNKNOWN_CURRENCY),
				 errmsg("unknown currency \"%s\"", c),
				 errdetail("%s is neither an ISO 4217 currency nor added with wallet.add_currency.", c)));
	}
	return mu;
}

char *
units_to_cstring(int64 units, const MoneyCode *code)
{
	char		buf[MONEY_FORMAT_BUFLEN];

	money_format(units, stored_minor_units(code), code, buf);
	return pstrdup(buf);
}

/* a 128-bit total as amount text (an overflow's DETAIL) */
char *
units_wide_to_cstring(int128 units, const MoneyCode *code)
{
	char		buf[MONEY_FORMAT_WIDE_BUFLEN];

	money_format_wide(units, stored_minor_units(code), code, buf);
	return pstrdup(buf);
}

char *
amount_to_cstring(const Amount *a)
{
	return units_to_cstring(a->units, &a->currency);
}

/*
 * Raise the error for a failed core call.  `what` names the operation,
 * `input` (may be NULL) is the offending text.
 */
void
amount_report(MoneyStatus st, const char *what, const char *input)
{
	switch (st)
	{
		case MONEY_OK:
			return;
		case MONEY_ERR_SYNTAX:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type wallet.amount: \"%s\"", input ? input : ""),
					 errdetail("An amount is a decimal number, a blank and a currency code."),
					 errhint("For example '12.34 USD', '-0.50 EUR' or '100 JPY'.")));
			break;
		case MONEY_ERR_CODE:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid currency code in wallet.amount: \"%s\"", input ? input : ""),
					 errdetail("A currency code is 3 to 8 letters or digits and starts with a letter.")));
			break;
		case MONEY_ERR_UNKNOWN:
			ereport(ERROR,
					(errcode(ERRCODE_WALLET_UNKNOWN_CURRENCY),
					 errmsg("unknown currency in wallet.amount: \"%s\"", input ? input : ""),
					 errdetail("Neither ISO 4217 nor added with wallet.add_currency()."),
					 errhint("Add it first with wallet.add_currency(code, minor_units, name).")));
			break;
		case MONEY_ERR_PRECISION:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("too many decimal places for the currency: \"%s\"", input ? input : ""),
					 errdetail("Amounts are never rounded on input."),
					 errhint("Round the value first, e.g. with wallet.mul() or round().")));
			break;
		case MONEY_ERR_OVERFLOW:
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("wallet.amount out of range in %s", what),
					 input ? errdetail("Value: %s", input) : 0,
					 errhint("An amount holds -9223372036854775808 to 9223372036854775807 minor units.")));
			break;
		case MONEY_ERR_MISMATCH:
			ereport(ERROR,
					(errcode(ERRCODE_WALLET_CURRENCY_MISMATCH),
					 errmsg("currency mismatch in %s", what),
					 input ? errdetail("%s", input) : 0));
			break;
		case MONEY_ERR_ARGUMENT:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid argument to %s", what),
					 input ? errdetail("%s", input) : 0));
			break;
	}
}

/* ---------------------------------------------------------------- I/O */

PG_FUNCTION_INFO_V1(amount_in);
Datum
amount_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	int64_t		units;
	MoneyCode	code;
	int			mu;
	MoneyStatus st;

	st = money_parse(str, strlen(str), wallet_currency_lookup, NULL,
					 &units, &code, &mu);
	if (st != MONEY_OK)
		amount_report(st, "input", str);
	PG_RETURN_AMOUNT_P(amount_make(units, &code));
}

PG_FUNCTION_INFO_V1(amount_out);
Datum
amount_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(amount_to_cstring(PG_GETARG_AMOUNT_P(0)));
}

/*
 * Binary form: int64 units (network order), one byte with the currency's
 * minor units (so a driver can place the decimal point without a lookup),
 * then the ASCII currency code (3 to 8 bytes, the rest of the value).
 */
PG_FUNCTION_INFO_V1(amount_send);
Datum
amount_send(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	StringInfoData buf;
	char		c[MONEY_CODE_MAX + 1];
	int			mu = wallet_currency_minor_units(&a->currency);

	money_code_to_cstring(&a->currency, c);
	pq_begintypsend(&buf);
	pq_sendint64(&buf, a->units);
	pq_sendint8(&buf, (uint8) (mu < 0 ? 0 : mu));
	pq_sendbytes(&buf, c, strlen(c));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(amount_recv);
Datum
amount_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int64		units;
	int			sent_mu;
	int			len;
	const char *code_bytes;
	MoneyCode	code;
	int			mu;

	units = pq_getmsgint64(buf);
	sent_mu = pq_getmsgbyte(buf);
	len = buf->len - buf->cursor;
	code_bytes = pq_getmsgbytes(buf, len);
	if (money_code_from_text(code_bytes, len, &code) != MONEY_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid currency code in binary wallet.amount"),
				 errdetail("The value carries %d bytes of currency code; a code is %d to %d characters, a letter A-Z and then letters A-Z or digits.",
						   len, MONEY_CODE_MIN, MONEY_CODE_MAX)));
	mu = wallet_currency_minor_units(&code);
	if (mu < 0)
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_UNKNOWN_CURRENCY),
				 errmsg("unknown currency \"%.*s\" in binary wallet.amount", len, code_bytes),
				 errdetail("%.*s is neither an ISO 4217 currency nor added with wallet.add_currency.",
						   len, code_bytes)));
	if (mu != sent_mu)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("binary wallet.amount says %d minor units for %.*s, the registry says %d",
						sent_mu, len, code_bytes, mu),
				 errdetail("Units " INT64_FORMAT " would mean another amount here than where they were sent.",
						   units)));
	PG_RETURN_AMOUNT_P(amount_make(units, &code));
}

/* ------------------------------------------------------ constructors */

/* wallet.amount(units bigint, currency text) */
PG_FUNCTION_INFO_V1(amount_from_units);
Datum
amount_from_units(PG_FUNCTION_ARGS)
{
	int64		units = PG_GETARG_INT64(0);
	text	   *cur = PG_GETARG_TEXT_PP(1);
	MoneyCode	code;

	wallet_currency_require(VARDATA_ANY(cur), VARSIZE_ANY_EXHDR(cur), &code);
	PG_RETURN_AMOUNT_P(amount_make(units, &code));
}

/* 10^n (n may be negative) as an exact numeric */
static Numeric
numeric_pow10(int n)
{
	char		buf[64];

	if (n >= 0)
		snprintf(buf, sizeof(buf), "1%.*d", n, 0);
	else
		snprintf(buf, sizeof(buf), "0.%0*d1", -n - 1, 0);
	if (n == 0)
		strcpy(buf, "1");
	else if (n == -1)
		strcpy(buf, "0.1");
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

/* numeric * 10^n, exactly */
Numeric
amount_numeric_scale(Numeric value, int n)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_mul,
											   NumericGetDatum(value),
											   NumericGetDatum(numeric_pow10(n))));
}

/*
 * An integral numeric to int64, or ERROR out of range.  `what` and `input`
 * feed the error message.
 */
int64
amount_numeric_to_units(Numeric value, const char *what)
{
	static const char *const int64_min = "-9223372036854775808";
	static const char *const int64_max = "9223372036854775807";
	Numeric		lo = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(int64_min),
														 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	Numeric		hi = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(int64_max),
														 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));

	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(value), NumericGetDatum(lo))) < 0 ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(value), NumericGetDatum(hi))) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("wallet.amount out of range in %s", what),
				 errdetail("%s minor units do not fit in 64 bits.",
						   DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value)))),
				 errhint("An amount holds -9223372036854775808 to 9223372036854775807 minor units.")));
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(value)));
}

/* wallet.amount(value numeric, currency text): exact or error */
PG_FUNCTION_INFO_V1(amount_from_numeric);
Datum
amount_from_numeric(PG_FUNCTION_ARGS)
{
	Numeric		value = PG_GETARG_NUMERIC(0);
	text	   *cur = PG_GETARG_TEXT_PP(1);
	MoneyCode	code;
	int			mu;
	Numeric		scaled,
				truncated;

	mu = wallet_currency_require(VARDATA_ANY(cur), VARSIZE_ANY_EXHDR(cur), &code);
	if (numeric_is_nan(value) || numeric_is_inf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot make a wallet.amount from %s",
						DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value)))),
				 errdetail("An amount is a finite number of minor units."),
				 errhint("Pass a finite numeric value.")));
	scaled = amount_numeric_scale(value, mu);
	truncated = DatumGetNumeric(DirectFunctionCall2(numeric_trunc,
													NumericGetDatum(scaled),
													Int32GetDatum(0)));
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(scaled),
										  NumericGetDatum(truncated))) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("too many decimal places for the currency: %s %s",
						DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value))),
						text_to_cstring(cur)),
				 errdetail("%s has %d decimal places; amounts are never rounded silently.",
						   text_to_cstring(cur), mu),
				 errhint("Use wallet.mul(wallet.amount(...), factor, rounding) to round explicitly.")));
	PG_RETURN_AMOUNT_P(amount_make(amount_numeric_to_units(truncated, "wallet.amount(numeric, text)"),
								   &code));
}

/* ---------------------------------------------------------- accessors */

PG_FUNCTION_INFO_V1(amount_units);
Datum
amount_units(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(PG_GETARG_AMOUNT_P(0)->units);
}

PG_FUNCTION_INFO_V1(amount_currency);
Datum
amount_currency(PG_FUNCTION_ARGS)
{
	char		buf[MONEY_CODE_MAX + 1];

	money_code_to_cstring(&PG_GETARG_AMOUNT_P(0)->currency, buf);
	PG_RETURN_TEXT_P(cstring_to_text(buf));
}

PG_FUNCTION_INFO_V1(amount_minor_units);
Datum
amount_minor_units(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(wallet_currency_minor_units(&PG_GETARG_AMOUNT_P(0)->currency));
}

/* wallet.to_numeric(amount): units / 10^minor_units, with that scale */
PG_FUNCTION_INFO_V1(amount_to_numeric);
Datum
amount_to_numeric(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	int			mu = wallet_currency_minor_units(&a->currency);

	PG_RETURN_NUMERIC(amount_numeric_scale(int64_to_numeric(a->units), -(mu < 0 ? 0 : mu)));
}

/* wallet.amount(units integer, currency text) */
PG_FUNCTION_INFO_V1(amount_from_int4);
Datum
amount_from_int4(PG_FUNCTION_ARGS)
{
	int32		units = PG_GETARG_INT32(0);
	text	   *cur = PG_GETARG_TEXT_PP(1);
	MoneyCode	code;

	wallet_currency_require(VARDATA_ANY(cur), VARSIZE_ANY_EXHDR(cur), &code);
	PG_RETURN_AMOUNT_P(amount_make(units, &code));
}
