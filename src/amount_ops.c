/*
 * amount_ops.c — what you can do with wallet.amount values: arithmetic
 * (+, -, unary -, * bigint, abs, sign), comparison and hashing for the
 * default btree and hash operator classes, the sum/min/max aggregates, and
 * allocation, splitting, multiplication and conversion with explicit
 * rounding.
 *
 * Mixed currencies: arithmetic, the ordering operators (< <= > >=), min,
 * max and sum raise currency_mismatch (WL002): "5 EUR < 3 USD" has no
 * answer.  Equality is total: amounts in different currencies are simply
 * not equal.
 *
 * Sorting needs a total order, so the default btree operator class is
 * built on one: by currency code, then units (amount_cmp and the operators
 * ~<~ ~<=~ ~>=~ ~>~).  Indexes, UNIQUE, ORDER BY, sort-based GROUP BY /
 * DISTINCT, merge joins and the planner's statistics then work on columns
 * that mix currencies, and the planner never evaluates the checking < <=
 * > >= on its own: their selectivity estimators (amount_ltsel ...) read
 * the statistics through the total-order operators.  The price: the
 * checking operators are not in the operator class, so a btree index
 * serves = and ORDER BY but not a range condition a < x (use
 * a ~<~ x, or an index on wallet.units(a), for that).
 */
#include "wallet.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/nodeAgg.h"
#include "nodes/value.h"
#include "utils/array.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/selfuncs.h"

void
amount_check_same_currency(const Amount *a, const Amount *b, const char *op)
{
	if (!money_code_eq(&a->currency, &b->currency))
	{
		char		ca[MONEY_CODE_MAX + 1],
					cb[MONEY_CODE_MAX + 1];

		money_code_to_cstring(&a->currency, ca);
		money_code_to_cstring(&b->currency, cb);
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_CURRENCY_MISMATCH),
				 errmsg("currency mismatch in %s: %s and %s", op, ca, cb),
				 errdetail("Left operand %s, right operand %s.",
						   amount_to_cstring(a), amount_to_cstring(b)),
				 errhint("Convert one side first with wallet.convert(amount, rate, currency).")));
	}
}

static void
overflow_error(const char *op, const Amount *a, const char *rhs)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("wallet.amount out of range in %s", op),
			 errdetail("Operands: %s and %s.", amount_to_cstring(a), rhs),
			 errhint("An amount holds -9223372036854775808 to 9223372036854775807 minor units.")));
}

/* ---------------------------------------------------------- arithmetic */

PG_FUNCTION_INFO_V1(amount_add);
Datum
amount_add(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Amount	   *b = PG_GETARG_AMOUNT_P(1);
	int64_t		r;

	amount_check_same_currency(a, b, "+");
	if (money_add(a->units, b->units, &r) != MONEY_OK)
		overflow_error("+", a, amount_to_cstring(b));
	PG_RETURN_AMOUNT_P(amount_make(r, &a->currency));
}

PG_FUNCTION_INFO_V1(amount_sub);
Datum
amount_sub(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Amount	   *b = PG_GETARG_AMOUNT_P(1);
	int64_t		r;

	amount_check_same_currency(a, b, "-");
	if (money_sub(a->units, b->units, &r) != MONEY_OK)
		overflow_error("-", a, amount_to_cstring(b));
	PG_RETURN_AMOUNT_P(amount_make(r, &a->currency));
}

PG_FUNCTION_INFO_V1(amount_neg);
Datum
amount_neg(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	int64_t		r;

	if (money_neg(a->units, &r) != MONEY_OK)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("wallet.amount out of range in unary -"),
				 errdetail("%s has no negation in 64 bits.", amount_to_cstring(a))));
	PG_RETURN_AMOUNT_P(amount_make(r, &a->currency));
}

PG_FUNCTION_INFO_V1(amount_abs);
Datum
amount_abs(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	int64_t		r;

	if (money_abs(a->units, &r) != MONEY_OK)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("wallet.amount out of range in abs"),
				 errdetail("%s has no absolute value in 64 bits.", amount_to_cstring(a))));
	PG_RETURN_AMOUNT_P(amount_make(r, &a->currency));
}

PG_FUNCTION_INFO_V1(amount_sign);
Datum
amount_sign(PG_FUNCTION_ARGS)
{
	int64		u = PG_GETARG_AMOUNT_P(0)->units;

	PG_RETURN_INT32(u > 0 ? 1 : (u < 0 ? -1 : 0));
}

static Datum
amount_times(Amount *a, int64 factor)
{
	int64_t		r;

	if (money_mul(a->units, factor, &r) != MONEY_OK)
	{
		char		buf[32];

		snprintf(buf, sizeof(buf), INT64_FORMAT, factor);
		overflow_error("*", a, buf);
	}
	PG_RETURN_AMOUNT_P(amount_make(r, &a->currency));
}

PG_FUNCTION_INFO_V1(amount_mul_int8);
Datum
amount_mul_int8(PG_FUNCTION_ARGS)
{
	return amount_times(PG_GETARG_AMOUNT_P(0), PG_GETARG_INT64(1));
}

PG_FUNCTION_INFO_V1(int8_mul_amount);
Datum
int8_mul_amount(PG_FUNCTION_ARGS)
{
	return amount_times(PG_GETARG_AMOUNT_P(1), PG_GETARG_INT64(0));
}

/* ---------------------------------------------------------- comparison */

static inline int
amount_cmp_internal(const Amount *a, const Amount *b, const char *op)
{
	amount_check_same_currency(a, b, op);
	return (a->units > b->units) - (a->units < b->units);
}

#define AMOUNT_CMP_FN(name, op, expr) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	int			c = amount_cmp_internal(PG_GETARG_AMOUNT_P(0), PG_GETARG_AMOUNT_P(1), op); \
	PG_RETURN_BOOL(expr); \
}

AMOUNT_CMP_FN(amount_lt, "<", c < 0)
AMOUNT_CMP_FN(amount_le, "<=", c <= 0)
AMOUNT_CMP_FN(amount_gt, ">", c > 0)
AMOUNT_CMP_FN(amount_ge, ">=", c >= 0)

/* the total order: currency code, then units */
static int
amount_order(const Amount *a, const Amount *b)
{
	int			c = money_code_cmp(&a->currency, &b->currency);

	if (c != 0)
		return c < 0 ? -1 : 1;
	return (a->units > b->units) - (a->units < b->units);
}

PG_FUNCTION_INFO_V1(amount_cmp);
Datum
amount_cmp(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(amount_order(PG_GETARG_AMOUNT_P(0), PG_GETARG_AMOUNT_P(1)));
}

/* the btree operator class's ~<~ ~<=~ ~>=~ ~>~ (total, never raise) */
#define AMOUNT_ORDER_FN(name, expr) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	int			c = amount_order(PG_GETARG_AMOUNT_P(0), PG_GETARG_AMOUNT_P(1)); \
	PG_RETURN_BOOL(expr); \
}

AMOUNT_ORDER_FN(amount_order_lt, c < 0)
AMOUNT_ORDER_FN(amount_order_le, c <= 0)
AMOUNT_ORDER_FN(amount_order_ge, c >= 0)
AMOUNT_ORDER_FN(amount_order_gt, c > 0)

/*
 * Selectivity of the checking < <= > >=: the standard estimators, given
 * the total-order operator of the same direction, which compares the
 * constant with statistics of every currency without raising.  (The
 * standard estimators would call the operator itself on the histogram and
 * raise WL002 at plan time on a column that mixes currencies.)
 */
static Datum
amount_sel(FunctionCallInfo fcinfo, const char *total_name, PGFunction estimator)
{
	Oid			operator = PG_GETARG_OID(1);
	Oid			ltype,
				rtype;
	Oid			total;

	op_input_types(operator, &ltype, &rtype);
	total = OpernameGetOprid(list_make2(makeString("pg_catalog"), makeString((char *) total_name)),
							 ltype, rtype);
	if (!OidIsValid(total))
		PG_RETURN_FLOAT8(DEFAULT_INEQ_SEL);
	return DirectFunctionCall4(estimator, PG_GETARG_DATUM(0), ObjectIdGetDatum(total),
							   PG_GETARG_DATUM(2), PG_GETARG_DATUM(3));
}

PG_FUNCTION_INFO_V1(amount_ltsel);
Datum
amount_ltsel(PG_FUNCTION_ARGS)
{
	return amount_sel(fcinfo, "~<~", scalarltsel);
}

PG_FUNCTION_INFO_V1(amount_lesel);
Datum
amount_lesel(PG_FUNCTION_ARGS)
{
	return amount_sel(fcinfo, "~<=~", scalarlesel);
}

PG_FUNCTION_INFO_V1(amount_gtsel);
Datum
amount_gtsel(PG_FUNCTION_ARGS)
{
	return amount_sel(fcinfo, "~>~", scalargtsel);
}

PG_FUNCTION_INFO_V1(amount_gesel);
Datum
amount_gesel(PG_FUNCTION_ARGS)
{
	return amount_sel(fcinfo, "~>=~", scalargesel);
}

PG_FUNCTION_INFO_V1(amount_eq);
Datum
amount_eq(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Amount	   *b = PG_GETARG_AMOUNT_P(1);

	PG_RETURN_BOOL(a->units == b->units && money_code_eq(&a->currency, &b->currency));
}

PG_FUNCTION_INFO_V1(amount_ne);
Datum
amount_ne(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Amount	   *b = PG_GETARG_AMOUNT_P(1);

	PG_RETURN_BOOL(!(a->units == b->units && money_code_eq(&a->currency, &b->currency)));
}

PG_FUNCTION_INFO_V1(amount_hash);
Datum
amount_hash(PG_FUNCTION_ARGS)
{
	return hash_any((unsigned char *) PG_GETARG_AMOUNT_P(0), sizeof(Amount));
}

PG_FUNCTION_INFO_V1(amount_hash_extended);
Datum
amount_hash_extended(PG_FUNCTION_ARGS)
{
	return hash_any_extended((unsigned char *) PG_GETARG_AMOUNT_P(0),
							 sizeof(Amount), PG_GETARG_INT64(1));
}

/* smaller/larger: min/max transition and combine functions */
PG_FUNCTION_INFO_V1(amount_smaller);
Datum
amount_smaller(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Amount	   *b = PG_GETARG_AMOUNT_P(1);

	PG_RETURN_AMOUNT_P(amount_cmp_internal(a, b, "min") <= 0 ? a : b);
}

PG_FUNCTION_INFO_V1(amount_larger);
Datum
amount_larger(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Amount	   *b = PG_GETARG_AMOUNT_P(1);

	PG_RETURN_AMOUNT_P(amount_cmp_internal(a, b, "max") >= 0 ? a : b);
}

/*
 * sum(amount) since 1.3.0: the running total is kept in 128 bits and
 * checked once, at the end, so the answer never depends on the order the
 * rows arrive in (a parallel plan's or an index's): only a total outside
 * 64-bit minor units is 22003, however far the partial sums stray.  The
 * state (internal) is allocated once in the aggregate's context; partial
 * states of a parallel plan travel as 25 bytes (total, code).
 */
typedef struct AmountSumState
{
	int128		total;
	MoneyCode	currency;
} AmountSumState;

static AmountSumState *
sum_state_new(FunctionCallInfo fcinfo, const MoneyCode *currency)
{
	MemoryContext aggcontext;
	AmountSumState *st;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "wallet.amount_sum_*: called outside an aggregate");
	st = MemoryContextAllocZero(aggcontext, sizeof(AmountSumState));
	st->currency = *currency;
	return st;
}

/* value: the row's amount, or NULL when combining two partial sums */
static void
sum_check_currency(const AmountSumState *st, const MoneyCode *currency, const Amount *value)
{
	if (unlikely(!money_code_eq(&st->currency, currency)))
	{
		char		ca[MONEY_CODE_MAX + 1],
					cb[MONEY_CODE_MAX + 1];

		money_code_to_cstring(&st->currency, ca);
		money_code_to_cstring(currency, cb);
		ereport(ERROR,
				(errcode(ERRCODE_WALLET_CURRENCY_MISMATCH),
				 errmsg("currency mismatch in sum: %s and %s", ca, cb),
				 value != NULL ?
				 errdetail("The sum so far is in %s; the next value is %s.", ca, amount_to_cstring(value)) :
				 errdetail("Partial sums in %s and %s.", ca, cb),
				 errhint("Sum each currency on its own (GROUP BY wallet.currency(amount)), or convert first with wallet.convert(amount, rate, currency).")));
	}
}

/* (state internal, value amount) → internal; NULL values are skipped */
PG_FUNCTION_INFO_V1(amount_sum_add);
Datum
amount_sum_add(PG_FUNCTION_ARGS)
{
	AmountSumState *st = PG_ARGISNULL(0) ? NULL : (AmountSumState *) PG_GETARG_POINTER(0);
	Amount	   *value;

	if (PG_ARGISNULL(1))
	{
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	value = PG_GETARG_AMOUNT_P(1);
	if (st == NULL)
		st = sum_state_new(fcinfo, &value->currency);
	else
		sum_check_currency(st, &value->currency, value);
	st->total += value->units;
	PG_RETURN_POINTER(st);
}

/* combine two partial states (parallel aggregation) */
PG_FUNCTION_INFO_V1(amount_sum_combine);
Datum
amount_sum_combine(PG_FUNCTION_ARGS)
{
	AmountSumState *a = PG_ARGISNULL(0) ? NULL : (AmountSumState *) PG_GETARG_POINTER(0);
	AmountSumState *b = PG_ARGISNULL(1) ? NULL : (AmountSumState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		a = sum_state_new(fcinfo, &b->currency);
		a->total = b->total;
		PG_RETURN_POINTER(a);
	}
	sum_check_currency(a, &b->currency, NULL);
	a->total += b->total;
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(amount_sum_serialize);
Datum
amount_sum_serialize(PG_FUNCTION_ARGS)
{
	AmountSumState *st = (AmountSumState *) PG_GETARG_POINTER(0);
	bytea	   *out = palloc(VARHDRSZ + sizeof(int128) + sizeof(MoneyCode));

	SET_VARSIZE(out, VARHDRSZ + sizeof(int128) + sizeof(MoneyCode));
	memcpy(VARDATA(out), &st->total, sizeof(int128));
	memcpy(VARDATA(out) + sizeof(int128), &st->currency, sizeof(MoneyCode));
	PG_RETURN_BYTEA_P(out);
}

PG_FUNCTION_INFO_V1(amount_sum_deserialize);
Datum
amount_sum_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	AmountSumState st;
	AmountSumState *out;

	if (VARSIZE_ANY_EXHDR(in) != sizeof(int128) + sizeof(MoneyCode))
		elog(ERROR, "wallet.amount_sum_deserialize: %d bytes, expected %d",
			 (int) VARSIZE_ANY_EXHDR(in), (int) (sizeof(int128) + sizeof(MoneyCode)));
	memcpy(&st.total, VARDATA_ANY(in), sizeof(int128));
	memcpy(&st.currency, VARDATA_ANY(in) + sizeof(int128), sizeof(MoneyCode));
	out = sum_state_new(fcinfo, &st.currency);
	out->total = st.total;
	PG_RETURN_POINTER(out);
}

/* the total as an amount; 22003 only when it leaves 64-bit minor units */
PG_FUNCTION_INFO_V1(amount_sum_final);
Datum
amount_sum_final(PG_FUNCTION_ARGS)
{
	AmountSumState *st = PG_ARGISNULL(0) ? NULL : (AmountSumState *) PG_GETARG_POINTER(0);

	if (st == NULL)
		PG_RETURN_NULL();
	if (st->total > PG_INT64_MAX || st->total < PG_INT64_MIN)
	{
		char		code[MONEY_CODE_MAX + 1];

		money_code_to_cstring(&st->currency, code);
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("wallet.amount out of range in sum"),
				 errdetail("The %s amounts add up to %s, %s than 64-bit minor units hold.",
						   code, units_wide_to_cstring(st->total, &st->currency),
						   st->total > 0 ? "more" : "less"),
				 errhint("An amount holds -9223372036854775808 to 9223372036854775807 minor units.")));
	}
	PG_RETURN_AMOUNT_P(amount_make((int64) st->total, &st->currency));
}

/*
 * sum(amount) of wallet 1.0.0 to 1.2.0 (kept for databases not yet
 * updated): the state is itself an amount.  Inside an aggregate the
 * state lives in the aggregate's memory context and belongs to us, so it
 * is updated in place (no palloc per row); called directly it returns a
 * fresh value.  Also the combine function, so the aggregate is parallel.
 */
PG_FUNCTION_INFO_V1(amount_sum_accum);
Datum
amount_sum_accum(PG_FUNCTION_ARGS)
{
	Amount	   *state = PG_GETARG_AMOUNT_P(0);
	Amount	   *value = PG_GETARG_AMOUNT_P(1);
	int64_t		r;

	if (unlikely(!money_code_eq(&state->currency, &value->currency)))
		amount_check_same_currency(state, value, "sum");
	if (unlikely(__builtin_add_overflow(state->units, value->units, &r)))
		overflow_error("sum", state, amount_to_cstring(value));
	if (AggCheckCallContext(fcinfo, NULL))
	{
		state->units = r;
		PG_RETURN_AMOUNT_P(state);
	}
	PG_RETURN_AMOUNT_P(amount_make(r, &state->currency));
}

/* ----------------------------------------------------- allocate / split */

static Datum
amount_array_result(FunctionCallInfo fcinfo, const Amount *whole,
					const int64 *parts, int n)
{
	Oid			amount_type = get_fn_expr_argtype(fcinfo->flinfo, 0);
	Datum	   *elems = palloc(sizeof(Datum) * n);
	Amount	   *values = palloc(sizeof(Amount) * n);

	if (!OidIsValid(amount_type))
		elog(ERROR, "wallet: could not determine the amount type");
	for (int i = 0; i < n; i++)
	{
		values[i].units = parts[i];
		values[i].currency = whole->currency;
		elems[i] = AmountPGetDatum(&values[i]);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, amount_type, sizeof(Amount),
										  false, TYPALIGN_DOUBLE));
}

/* Most parts allocate/split produce; guards memory, documented. */
#define AMOUNT_MAX_PARTS 100000

PG_FUNCTION_INFO_V1(amount_allocate);
Datum
amount_allocate(PG_FUNCTION_ARGS)
{
	Amount	   *whole = PG_GETARG_AMOUNT_P(0);
	ArrayType  *ratios_arr = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *ratio_datums;
	bool	   *ratio_nulls;
	int			n;
	int32	   *ratios;
	int64	   *parts;
	MoneyStatus st;

	if (ARR_ELEMTYPE(ratios_arr) != INT4OID)
		elog(ERROR, "wallet.allocate: ratios must be int[]");
	if (ARR_NDIM(ratios_arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("wallet.allocate: ratios must be a one-dimensional array"),
				 errdetail("Amount %s, ratios with %d dimensions.", amount_to_cstring(whole), ARR_NDIM(ratios_arr))));
	deconstruct_array(ratios_arr, INT4OID, 4, true, TYPALIGN_INT,
					  &ratio_datums, &ratio_nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("wallet.allocate needs at least one ratio"),
				 errdetail("Amount %s, an empty ratios array.", amount_to_cstring(whole))));
	if (n > AMOUNT_MAX_PARTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("wallet.allocate accepts at most %d ratios, got %d",
						AMOUNT_MAX_PARTS, n),
				 errdetail("Amount %s, %d ratios.", amount_to_cstring(whole), n)));
	ratios = palloc(sizeof(int32) * n);
	for (int i = 0; i < n; i++)
	{
		if (ratio_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("wallet.allocate: ratio %d is null", i + 1),
					 errdetail("Amount %s, %d ratios.", amount_to_cstring(whole), n)));
		ratios[i] = DatumGetInt32(ratio_datums[i]);
		if (ratios[i] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("wallet.allocate: ratio %d is negative (%d)", i + 1, ratios[i]),
					 errdetail("Amount %s, %d ratios.", amount_to_cstring(whole), n),
					 errhint("Ratios are weights: zero or positive, at least one positive.")));
	}
	parts = palloc(sizeof(int64) * n);
	st = money_allocate(whole->units, ratios, n, (int64_t *) parts);
	if (st == MONEY_ERR_ARGUMENT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("wallet.allocate: all ratios are zero"),
				 errdetail("Amount %s, %d ratios.", amount_to_cstring(whole), n),
				 errhint("At least one ratio must be positive.")));
	amount_report(st, "wallet.allocate", NULL);
	return amount_array_result(fcinfo, whole, parts, n);
}

PG_FUNCTION_INFO_V1(amount_split);
Datum
amount_split(PG_FUNCTION_ARGS)
{
	Amount	   *whole = PG_GETARG_AMOUNT_P(0);
	int32		n = PG_GETARG_INT32(1);
	int32	   *ratios;
	int64	   *parts;

	if (n < 1 || n > AMOUNT_MAX_PARTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("wallet.split: parts must be between 1 and %d, got %d",
						AMOUNT_MAX_PARTS, n),
				 errdetail("Amount %s into %d parts.", amount_to_cstring(whole), n)));
	ratios = palloc(sizeof(int32) * n);
	for (int i = 0; i < n; i++)
		ratios[i] = 1;
	parts = palloc(sizeof(int64) * n);
	amount_report(money_allocate(whole->units, ratios, n, (int64_t *) parts),
				  "wallet.split", NULL);
	return amount_array_result(fcinfo, whole, parts, n);
}

/* ---------------------------------------------------- mul and convert */

static MoneyRounding
rounding_arg(text *t)
{
	char	   *name = text_to_cstring(t);
	MoneyRounding mode;

	if (!money_rounding_from_name(name, &mode))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown rounding mode \"%.*s\"", pg_mbcharcliplen(name, strlen(name), 64), name),
				 errdetail("Rounding modes: half_even, half_up, down, floor, ceiling."),
				 errhint("Use half_even, half_up, down, floor or ceiling.")));
	return mode;
}

static Numeric
num_const(const char *s)
{
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(s),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

static int
num_cmp(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a),
											 NumericGetDatum(b)));
}

/* Round an exact numeric to an integer with one of the five modes. */
static Numeric
numeric_round_mode(Numeric x, MoneyRounding mode)
{
	Numeric		t = DatumGetNumeric(DirectFunctionCall2(numeric_trunc,
														NumericGetDatum(x),
														Int32GetDatum(0)));
	Numeric		frac,
				half;
	int			sign_x,
				c;

	if (num_cmp(x, t) == 0)
		return t;
	sign_x = num_cmp(x, num_const("0"));
	switch (mode)
	{
		case MONEY_ROUND_DOWN:
			return t;
		case MONEY_ROUND_FLOOR:
			return DatumGetNumeric(DirectFunctionCall1(numeric_floor, NumericGetDatum(x)));
		case MONEY_ROUND_CEILING:
			return DatumGetNumeric(DirectFunctionCall1(numeric_ceil, NumericGetDatum(x)));
		case MONEY_ROUND_HALF_UP:
		case MONEY_ROUND_HALF_EVEN:
			frac = DatumGetNumeric(DirectFunctionCall1(numeric_abs,
													   DirectFunctionCall2(numeric_sub,
																		   NumericGetDatum(x),
																		   NumericGetDatum(t))));
			half = num_const("0.5");
			c = num_cmp(frac, half);
			if (c > 0 || (c == 0 && mode == MONEY_ROUND_HALF_UP) ||
				(c == 0 && DatumGetBool(DirectFunctionCall2(numeric_ne,
															DirectFunctionCall2(numeric_mod, NumericGetDatum(t), NumericGetDatum(num_const("2"))),
															NumericGetDatum(num_const("0"))))))
				return DatumGetNumeric(DirectFunctionCall2(sign_x > 0 ? numeric_add : numeric_sub,
														   NumericGetDatum(t),
														   NumericGetDatum(num_const("1"))));
			return t;
	}
	return t;
}

static void
check_finite(Numeric n, const char *what)
{
	if (numeric_is_nan(n) || numeric_is_inf(n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number", what),
				 errdetail("Got %s.", DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n))))));
}

/* wallet.mul(amount, factor numeric, rounding text) */
PG_FUNCTION_INFO_V1(amount_mul_numeric);
Datum
amount_mul_numeric(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Numeric		factor = PG_GETARG_NUMERIC(1);
	MoneyRounding mode = rounding_arg(PG_GETARG_TEXT_PP(2));
	Numeric		exact;

	check_finite(factor, "wallet.mul: factor");
	exact = DatumGetNumeric(DirectFunctionCall2(numeric_mul,
												NumericGetDatum(int64_to_numeric(a->units)),
												NumericGetDatum(factor)));
	PG_RETURN_AMOUNT_P(amount_make(amount_numeric_to_units(numeric_round_mode(exact, mode),
														   "wallet.mul"),
								   &a->currency));
}

/* wallet.convert(amount, rate numeric, to_currency text, rounding text) */
PG_FUNCTION_INFO_V1(amount_convert);
Datum
amount_convert(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Numeric		rate = PG_GETARG_NUMERIC(1);
	text	   *to = PG_GETARG_TEXT_PP(2);
	MoneyRounding mode = rounding_arg(PG_GETARG_TEXT_PP(3));
	MoneyCode	to_code;
	int			to_mu,
				from_mu;
	Numeric		exact;

	check_finite(rate, "wallet.convert: rate");
	if (num_cmp(rate, num_const("0")) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("wallet.convert: rate must be positive"),
				 errdetail("Rate: %s.", DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(rate))))));
	to_mu = wallet_currency_require(VARDATA_ANY(to), VARSIZE_ANY_EXHDR(to), &to_code);
	from_mu = wallet_currency_minor_units(&a->currency);
	/* units * rate * 10^(to_mu - from_mu), all exact */
	exact = DatumGetNumeric(DirectFunctionCall2(numeric_mul,
												NumericGetDatum(int64_to_numeric(a->units)),
												NumericGetDatum(rate)));
	exact = amount_numeric_scale(exact, to_mu - from_mu);
	PG_RETURN_AMOUNT_P(amount_make(amount_numeric_to_units(numeric_round_mode(exact, mode),
														   "wallet.convert"),
								   &to_code));
}
