/*
 * money.h — the money core: exact amounts as int64 minor units plus a
 * currency code, with text parsing/formatting, checked arithmetic,
 * allocation and rounding.
 *
 * Plain C99 with no PostgreSQL dependency, so that the unit tests
 * (test/unit) and the libFuzzer target (test/fuzz) can link it alone.
 * Every function reports failure through a MoneyStatus; none aborts,
 * allocates or reads beyond the lengths it is given.
 */
#ifndef WALLET_MONEY_H
#define WALLET_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A currency code is 3..8 characters, [A-Z][A-Z0-9]*, stored NUL-padded. */
#define MONEY_CODE_MIN 3
#define MONEY_CODE_MAX 8
/* Most decimals any currency may have (units stay within int64). */
#define MONEY_MAX_MINOR_UNITS 18
/* Longest text form money_format can produce, including the NUL. */
#define MONEY_FORMAT_BUFLEN 48

typedef struct MoneyCode
{
	char		c[MONEY_CODE_MAX];	/* NUL-padded, not NUL-terminated when 8 */
} MoneyCode;

typedef enum MoneyStatus
{
	MONEY_OK = 0,
	MONEY_ERR_SYNTAX,			/* text is not "<number> <code>" */
	MONEY_ERR_CODE,				/* currency code malformed */
	MONEY_ERR_UNKNOWN,			/* currency code well formed but not registered */
	MONEY_ERR_PRECISION,		/* more decimals than the currency has */
	MONEY_ERR_OVERFLOW,			/* result outside int64 minor units */
	MONEY_ERR_MISMATCH,			/* two different currencies */
	MONEY_ERR_ARGUMENT			/* bad argument (ratios, parts, ...) */
} MoneyStatus;

typedef enum MoneyRounding
{
	MONEY_ROUND_HALF_EVEN = 0,	/* ties to the even neighbour (banker's) */
	MONEY_ROUND_HALF_UP,		/* ties away from zero */
	MONEY_ROUND_DOWN,			/* toward zero (truncate) */
	MONEY_ROUND_FLOOR,			/* toward -infinity */
	MONEY_ROUND_CEILING			/* toward +infinity */
} MoneyRounding;

/*
 * Looks up a (valid, upper-case) code; returns its minor units (0..18) or
 * -1 when the currency is not registered.
 */
typedef int (*MoneyLookupFn) (const MoneyCode *code, void *arg);

/* ---- currency codes ---- */

/*
 * Normalise len bytes of text into a code: ASCII letters are upper-cased;
 * must match [A-Z][A-Z0-9]{2,7}.  Returns MONEY_OK or MONEY_ERR_CODE.
 */
extern MoneyStatus money_code_from_text(const char *s, size_t len, MoneyCode *out);
/* Writes the code as a NUL-terminated string into buf (>= 9 bytes). */
extern void money_code_to_cstring(const MoneyCode *code, char *buf);
extern int	money_code_cmp(const MoneyCode *a, const MoneyCode *b);
extern bool money_code_eq(const MoneyCode *a, const MoneyCode *b);

/* Built-in ISO 4217 registry (generated table, see tools/gen_currencies). */
typedef struct MoneyIsoCurrency
{
	const char *code;
	int			minor_units;
	const char *name;
} MoneyIsoCurrency;

extern const MoneyIsoCurrency *money_iso_find(const MoneyCode *code);
extern size_t money_iso_count(void);
extern const MoneyIsoCurrency *money_iso_at(size_t i);
/* A MoneyLookupFn over the ISO table only (arg unused). */
extern int	money_iso_lookup(const MoneyCode *code, void *arg);

/* ---- text ---- */

/*
 * Parse "<number> <code>" where number is [+-]?[0-9]+(\.[0-9]+)? ;
 * leading/trailing ASCII whitespace is allowed, at least one blank must
 * separate number and code.  len bytes of s are read (no NUL needed).
 * On success *units, *code and *minor_units are set.  No rounding ever:
 * more decimals than the currency has is MONEY_ERR_PRECISION, a value
 * outside int64 minor units MONEY_ERR_OVERFLOW.
 */
extern MoneyStatus money_parse(const char *s, size_t len,
							   MoneyLookupFn lookup, void *lookup_arg,
							   int64_t *units, MoneyCode *code, int *minor_units);

/*
 * Format units with exactly minor_units decimals followed by a blank and
 * the code.  buf must hold MONEY_FORMAT_BUFLEN bytes.  Returns the length.
 */
extern size_t money_format(int64_t units, int minor_units, const MoneyCode *code,
						   char *buf);
/* the same for a 128-bit count; buf must hold MONEY_FORMAT_WIDE_BUFLEN bytes */
#define MONEY_FORMAT_WIDE_BUFLEN 72
extern size_t money_format_wide(__int128 units, int minor_units, const MoneyCode *code,
								char *buf);

/* ---- arithmetic on units (currency checks are the caller's) ---- */

extern MoneyStatus money_add(int64_t a, int64_t b, int64_t *out);
extern MoneyStatus money_sub(int64_t a, int64_t b, int64_t *out);
extern MoneyStatus money_mul(int64_t a, int64_t b, int64_t *out);
extern MoneyStatus money_neg(int64_t a, int64_t *out);
extern MoneyStatus money_abs(int64_t a, int64_t *out);

/* 10^n for 0 <= n <= 18 */
extern int64_t money_pow10(int n);

/*
 * Divide num by den (den != 0) and round to an integer with the given
 * mode, using 128-bit intermediates.  MONEY_ERR_OVERFLOW when the result
 * does not fit int64, MONEY_ERR_ARGUMENT when den == 0.
 */
extern MoneyStatus money_div_round(__int128 num, __int128 den, MoneyRounding mode,
								   int64_t *out);

/* Parses "half_even", "half_up", "down", "floor", "ceiling". */
extern bool money_rounding_from_name(const char *name, MoneyRounding *out);

/*
 * Split total into n parts proportional to ratios (each >= 0, sum > 0):
 * each part is truncated toward zero, then the units left over go one by
 * one to the parts with the largest remainders, ties to the earlier part.
 * The parts always add up to total exactly.  MONEY_ERR_ARGUMENT for n < 1,
 * a negative ratio or an all-zero ratio list.
 */
extern MoneyStatus money_allocate(int64_t total, const int32_t *ratios, int n,
								  int64_t *parts);

#endif							/* WALLET_MONEY_H */
