/*
 * money.c — the money core: parsing, formatting, checked arithmetic,
 * rounding and allocation on int64 minor units.
 *
 * No PostgreSQL dependency (see money.h).  All arithmetic that could leave
 * int64 is done with compiler overflow builtins or 128-bit intermediates.
 */
#include "money.h"

#include <string.h>

static const int64_t pow10_table[19] = {
	1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL,
	100000000LL, 1000000000LL, 10000000000LL, 100000000000LL,
	1000000000000LL, 10000000000000LL, 100000000000000LL,
	1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
	1000000000000000000LL
};

int64_t
money_pow10(int n)
{
	if (n < 0 || n > 18)
		return 0;
	return pow10_table[n];
}

static inline bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* ---------------------------------------------------------------- codes */

MoneyStatus
money_code_from_text(const char *s, size_t len, MoneyCode *out)
{
	size_t		i;

	memset(out->c, 0, MONEY_CODE_MAX);
	if (len < MONEY_CODE_MIN || len > MONEY_CODE_MAX)
		return MONEY_ERR_CODE;
	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (c >= 'a' && c <= 'z')
			c = (char) (c - 'a' + 'A');
		if (c >= 'A' && c <= 'Z')
			out->c[i] = c;
		else if (i > 0 && is_digit(c))
			out->c[i] = c;
		else
		{
			memset(out->c, 0, MONEY_CODE_MAX);
			return MONEY_ERR_CODE;
		}
	}
	return MONEY_OK;
}

void
money_code_to_cstring(const MoneyCode *code, char *buf)
{
	memcpy(buf, code->c, MONEY_CODE_MAX);
	buf[MONEY_CODE_MAX] = '\0';
}

int
money_code_cmp(const MoneyCode *a, const MoneyCode *b)
{
	return memcmp(a->c, b->c, MONEY_CODE_MAX);
}

bool
money_code_eq(const MoneyCode *a, const MoneyCode *b)
{
	return memcmp(a->c, b->c, MONEY_CODE_MAX) == 0;
}

/* ----------------------------------------------------------------- text */

MoneyStatus
money_parse(const char *s, size_t len, MoneyLookupFn lookup, void *lookup_arg,
			int64_t *units, MoneyCode *code, int *minor_units)
{
	size_t		i = 0;
	bool		negative = false;
	size_t		int_start,
				int_len,
				frac_start = 0,
				frac_len = 0,
				code_start,
				code_len;
	MoneyStatus st;
	int			mu;
	uint64_t	magnitude = 0;
	/* |INT64_MIN| as unsigned: the largest magnitude a value may have */
	const uint64_t limit_neg = (uint64_t) INT64_MAX + 1;
	uint64_t	lim;

	while (i < len && is_blank(s[i]))
		i++;
	if (i < len && (s[i] == '-' || s[i] == '+'))
	{
		negative = (s[i] == '-');
		i++;
	}
	int_start = i;
	while (i < len && is_digit(s[i]))
		i++;
	int_len = i - int_start;
	if (int_len == 0)
		return MONEY_ERR_SYNTAX;
	if (i < len && s[i] == '.')
	{
		i++;
		frac_start = i;
		while (i < len && is_digit(s[i]))
			i++;
		frac_len = i - frac_start;
		if (frac_len == 0)
			return MONEY_ERR_SYNTAX;
	}
	/* at least one blank between number and code */
	if (i >= len || !is_blank(s[i]))
		return MONEY_ERR_SYNTAX;
	while (i < len && is_blank(s[i]))
		i++;
	code_start = i;
	while (i < len && !is_blank(s[i]))
		i++;
	code_len = i - code_start;
	if (code_len == 0)
		return MONEY_ERR_SYNTAX;
	while (i < len && is_blank(s[i]))
		i++;
	if (i != len)
		return MONEY_ERR_SYNTAX;

	st = money_code_from_text(s + code_start, code_len, code);
	if (st != MONEY_OK)
		return st;
	mu = lookup ? lookup(code, lookup_arg) : -1;
	if (mu < 0 || mu > MONEY_MAX_MINOR_UNITS)
		return MONEY_ERR_UNKNOWN;
	if (frac_len > (size_t) mu)
		return MONEY_ERR_PRECISION;

	lim = negative ? limit_neg : (uint64_t) INT64_MAX;
	/* accumulate integer digits then fraction digits, then pad with zeros */
	for (size_t k = 0; k < int_len + (size_t) mu; k++)
	{
		int			d;

		if (k < int_len)
			d = s[int_start + k] - '0';
		else if (k - int_len < frac_len)
			d = s[frac_start + (k - int_len)] - '0';
		else
			d = 0;
		if (magnitude > (lim - (uint64_t) d) / 10)
			return MONEY_ERR_OVERFLOW;
		magnitude = magnitude * 10 + (uint64_t) d;
	}
	if (negative)
		*units = (magnitude == limit_neg) ? INT64_MIN : -(int64_t) magnitude;
	else
		*units = (int64_t) magnitude;
	*minor_units = mu;
	return MONEY_OK;
}

/*
 * The text form from the magnitude's decimal digits (least significant
 * first, nd of them, room for MONEY_MAX_MINOR_UNITS + 1): at least one
 * integer digit, exactly minor_units decimals, a blank and the code.
 */
static size_t
format_digits(char *digits, int nd, bool negative, int minor_units, const MoneyCode *code, char *buf)
{
	size_t		pos = 0;
	int			k;

	if (minor_units < 0)
		minor_units = 0;
	if (minor_units > MONEY_MAX_MINOR_UNITS)
		minor_units = MONEY_MAX_MINOR_UNITS;
	while (nd < minor_units + 1)
		digits[nd++] = '0';
	if (negative)
		buf[pos++] = '-';
	for (k = nd - 1; k >= 0; k--)
	{
		buf[pos++] = digits[k];
		if (k == minor_units && minor_units > 0)
			buf[pos++] = '.';
	}
	buf[pos++] = ' ';
	for (k = 0; k < MONEY_CODE_MAX && code->c[k]; k++)
		buf[pos++] = code->c[k];
	buf[pos] = '\0';
	return pos;
}

size_t
money_format(int64_t units, int minor_units, const MoneyCode *code, char *buf)
{
	char		digits[24];
	int			nd = 0;
	uint64_t	mag = units < 0 ? (uint64_t) 0 - (uint64_t) units : (uint64_t) units;

	do
	{
		digits[nd++] = (char) ('0' + mag % 10);
		mag /= 10;
	} while (mag > 0);
	return format_digits(digits, nd, units < 0, minor_units, code, buf);
}

/*
 * money_format for a 128-bit count of minor units: sums that left int64
 * (an overflow's DETAIL shows the total it reached).  Kept apart from
 * money_format, whose 64-bit digits loop is on every output path.
 */
size_t
money_format_wide(__int128 units, int minor_units, const MoneyCode *code, char *buf)
{
	char		digits[48];
	int			nd = 0;
	unsigned __int128 mag;

	if (units >= INT64_MIN && units <= INT64_MAX)
		return money_format((int64_t) units, minor_units, code, buf);
	mag = units < 0 ? (unsigned __int128) 0 - (unsigned __int128) units : (unsigned __int128) units;
	while (mag > 0)
	{
		digits[nd++] = (char) ('0' + (int) (mag % 10));
		mag /= 10;
	}
	return format_digits(digits, nd, units < 0, minor_units, code, buf);
}

/* ----------------------------------------------------------- arithmetic */

MoneyStatus
money_add(int64_t a, int64_t b, int64_t *out)
{
	return __builtin_add_overflow(a, b, out) ? MONEY_ERR_OVERFLOW : MONEY_OK;
}

MoneyStatus
money_sub(int64_t a, int64_t b, int64_t *out)
{
	return __builtin_sub_overflow(a, b, out) ? MONEY_ERR_OVERFLOW : MONEY_OK;
}

MoneyStatus
money_mul(int64_t a, int64_t b, int64_t *out)
{
	return __builtin_mul_overflow(a, b, out) ? MONEY_ERR_OVERFLOW : MONEY_OK;
}

MoneyStatus
money_neg(int64_t a, int64_t *out)
{
	if (a == INT64_MIN)
		return MONEY_ERR_OVERFLOW;
	*out = -a;
	return MONEY_OK;
}

MoneyStatus
money_abs(int64_t a, int64_t *out)
{
	if (a == INT64_MIN)
		return MONEY_ERR_OVERFLOW;
	*out = a < 0 ? -a : a;
	return MONEY_OK;
}

bool
money_rounding_from_name(const char *name, MoneyRounding *out)
{
	static const struct
	{
		const char *name;
		MoneyRounding mode;
	}			modes[] = {
		{"half_even", MONEY_ROUND_HALF_EVEN},
		{"half_up", MONEY_ROUND_HALF_UP},
		{"down", MONEY_ROUND_DOWN},
		{"floor", MONEY_ROUND_FLOOR},
		{"ceiling", MONEY_ROUND_CEILING},
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
	{
		if (strcmp(name, modes[i].name) == 0)
		{
			*out = modes[i].mode;
			return true;
		}
	}
	return false;
}

MoneyStatus
money_div_round(__int128 num, __int128 den, MoneyRounding mode, int64_t *out)
{
	typedef unsigned __int128 u128;
	bool		negative;
	u128		un,
				ud,
				q,
				r;

	if (den == 0)
		return MONEY_ERR_ARGUMENT;
	/* magnitudes in unsigned 128 bits: no overflow even for INT128_MIN */
	negative = (num < 0) != (den < 0);
	un = num < 0 ? (u128) 0 - (u128) num : (u128) num;
	ud = den < 0 ? (u128) 0 - (u128) den : (u128) den;
	q = un / ud;
	r = un % ud;
	if (r != 0)
	{
		bool		away = false;	/* move the magnitude up by one */

		switch (mode)
		{
			case MONEY_ROUND_DOWN:
				away = false;
				break;
			case MONEY_ROUND_FLOOR:
				away = negative;
				break;
			case MONEY_ROUND_CEILING:
				away = !negative;
				break;
			case MONEY_ROUND_HALF_UP:
			case MONEY_ROUND_HALF_EVEN:
				/* compare r with den - r rather than doubling r */
				if (r > ud - r)
					away = true;
				else if (r == ud - r)
					away = (mode == MONEY_ROUND_HALF_UP) || (q & 1) != 0;
				break;
		}
		if (away)
			q += 1;				/* q <= 2^127, cannot wrap */
	}
	if (negative)
	{
		if (q > (u128) INT64_MAX + 1)
			return MONEY_ERR_OVERFLOW;
		*out = (q == (u128) INT64_MAX + 1) ? INT64_MIN : -(int64_t) q;
	}
	else
	{
		if (q > (u128) INT64_MAX)
			return MONEY_ERR_OVERFLOW;
		*out = (int64_t) q;
	}
	return MONEY_OK;
}

/* number of parts whose remainder (mag * ratio mod sum) is >= t */
static int64_t
count_remainders_at_least(__int128 mag, const int32_t *ratios, int n,
						  __int128 sum, __int128 t)
{
	int64_t		count = 0;

	for (int i = 0; i < n; i++)
		if (ratios[i] > 0 && mag * ratios[i] % sum >= t)
			count++;
	return count;
}

MoneyStatus
money_allocate(int64_t total, const int32_t *ratios, int n, int64_t *parts)
{
	__int128	sum = 0;
	__int128	mag;
	__int128	given = 0;
	int64_t		left;
	bool		negative = total < 0;

	if (n < 1 || ratios == NULL || parts == NULL)
		return MONEY_ERR_ARGUMENT;
	for (int i = 0; i < n; i++)
	{
		if (ratios[i] < 0)
			return MONEY_ERR_ARGUMENT;
		sum += ratios[i];
	}
	if (sum == 0)
		return MONEY_ERR_ARGUMENT;

	/*
	 * Work on the magnitude (up to 2^63, so kept in uint64 bit patterns in
	 * parts[] until the sign is applied at the end).
	 */
	mag = negative ? -(__int128) total : (__int128) total;
	for (int i = 0; i < n; i++)
	{
		__int128	share = mag * ratios[i] / sum;

		parts[i] = (int64_t) (uint64_t) share;
		given += share;
	}
	left = (int64_t) (mag - given);	/* 0 <= left < n */

	if (left > 0)
	{
		/*
		 * Largest remainder, ties to the earlier part, without sorting: find
		 * by bisection the greatest threshold t with at least `left`
		 * remainders >= t; every part above t gets a unit, and the parts equal
		 * to t get the rest in order.  Parts with ratio 0 have no remainder
		 * and never qualify.
		 */
		__int128	lo = 1,
					hi = sum - 1,
					t;
		int64_t		above;

		while (lo < hi)
		{
			__int128	mid = lo + (hi - lo + 1) / 2;

			if (count_remainders_at_least(mag, ratios, n, sum, mid) >= left)
				lo = mid;
			else
				hi = mid - 1;
		}
		t = lo;
		above = count_remainders_at_least(mag, ratios, n, sum, t + 1);
		left -= above;
		for (int i = 0; i < n; i++)
		{
			__int128	rem;

			if (ratios[i] == 0)
				continue;
			rem = mag * ratios[i] % sum;
			if (rem > t || (rem == t && left > 0))
			{
				if (rem == t)
					left--;
				parts[i] = (int64_t) ((uint64_t) parts[i] + 1);
			}
		}
	}
	for (int i = 0; i < n; i++)
	{
		uint64_t	m = (uint64_t) parts[i];

		if (negative)
			parts[i] = (m == (uint64_t) INT64_MAX + 1) ? INT64_MIN : -(int64_t) m;
		else
			parts[i] = (int64_t) m;
	}
	return MONEY_OK;
}
