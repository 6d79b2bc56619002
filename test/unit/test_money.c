/*
 * test_money.c — unit tests of the money core (src/money.h contract).
 *
 * Self-contained: prints TAP ("ok N - ...", "not ok N - ...", plan "1..N"
 * at the end) and exits non-zero when any assertion failed.  Built and run
 * by `make unit` (with ASan/UBSan).  Text given to money_parse is copied
 * into a malloc'd buffer of exactly len bytes (no NUL), and money_format
 * writes into a malloc'd buffer of exactly MONEY_FORMAT_BUFLEN bytes, so
 * ASan catches any read or write past the documented lengths.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "money.h"

/* ------------------------------------------------------------ tiny TAP */

static int	n_tests;
static int	n_failed;

static bool __attribute__((format(printf, 2, 3)))
check(bool cond, const char *fmt, ...)
{
	va_list		ap;

	n_tests++;
	if (!cond)
		n_failed++;
	printf("%sok %d - ", cond ? "" : "not ", n_tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return cond;
}

#define OK(cond, ...) check((cond), __VA_ARGS__)
/* A diagnostic line (TAP comment), printed after a failed assertion. */
#define DIAG(...) (printf("#   "), printf(__VA_ARGS__), putchar('\n'))

static const char *
status_name(MoneyStatus s)
{
	switch (s)
	{
		case MONEY_OK:
			return "OK";
		case MONEY_ERR_SYNTAX:
			return "SYNTAX";
		case MONEY_ERR_CODE:
			return "CODE";
		case MONEY_ERR_UNKNOWN:
			return "UNKNOWN";
		case MONEY_ERR_PRECISION:
			return "PRECISION";
		case MONEY_ERR_OVERFLOW:
			return "OVERFLOW";
		case MONEY_ERR_MISMATCH:
			return "MISMATCH";
		case MONEY_ERR_ARGUMENT:
			return "ARGUMENT";
	}
	return "?";
}

/* Printable form of test input (escapes control and non-ASCII bytes). */
static const char *
show(const char *s, size_t len)
{
	static char buf[8][256];
	static int	which;
	char	   *out = buf[which++ % 8];
	size_t		o = 0;

	for (size_t i = 0; i < len && o < 240; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '\'' || c == '\\')
			o += sprintf(out + o, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			out[o++] = (char) c;
		else
			o += sprintf(out + o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

/* ------------------------------------------------------------- helpers */

static MoneyCode
code_of(const char *s)
{
	MoneyCode	c;

	memset(&c, 0, sizeof(c));
	memcpy(c.c, s, strnlen(s, MONEY_CODE_MAX));
	return c;
}

static bool
code_is(const MoneyCode *c, const char *s)
{
	MoneyCode	want = code_of(s);

	return memcmp(c->c, want.c, MONEY_CODE_MAX) == 0;
}

static int	lookup_calls;

/*
 * Test registry: the virtual units COIN and DIAMOND (0 decimals), an
 * 8-character code, an 18-decimal unit, then everything ISO.
 */
static int
test_lookup(const MoneyCode *code, void *arg)
{
	static const struct
	{
		const char *code;
		int			mu;
	}			extra[] = {
		{"COIN", 0}, {"DIAMOND", 0}, {"ABCDEFGH", 5}, {"MICRO", 18}, {"PTS1", 1}
	};

	if (arg != NULL)
		(*(int *) arg)++;
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
	{
		MoneyCode	c = code_of(extra[i].code);

		if (memcmp(c.c, code->c, MONEY_CODE_MAX) == 0)
			return extra[i].mu;
	}
	return money_iso_lookup(code, NULL);
}

static MoneyStatus
parse_n(const char *s, size_t len, MoneyLookupFn fn,
		int64_t *units, MoneyCode *code, int *mu)
{
	char	   *copy = malloc(len ? len : 1);
	MoneyStatus st;

	if (copy == NULL)
		abort();
	memcpy(copy, s, len);
	st = money_parse(copy, len, fn, &lookup_calls, units, code, mu);
	free(copy);
	return st;
}

static void
parse_ok_n(const char *s, size_t len, int64_t units, const char *code, int mu)
{
	int64_t		u = 0;
	MoneyCode	c;
	int			m = -99;
	MoneyStatus st;

	memset(&c, 0, sizeof(c));
	st = parse_n(s, len, test_lookup, &u, &c, &m);
	if (!OK(st == MONEY_OK && u == units && code_is(&c, code) && m == mu,
			"parse '%s' -> %" PRId64 " %s (%d)", show(s, len), units, code, mu))
	{
		char		cs[9];

		memcpy(cs, c.c, 8);
		cs[8] = '\0';
		DIAG("got %s, units %" PRId64 ", code '%s', minor_units %d",
			 status_name(st), u, show(cs, strlen(cs)), m);
	}
}

static void
parse_ok(const char *s, int64_t units, const char *code, int mu)
{
	parse_ok_n(s, strlen(s), units, code, mu);
}

static void
parse_err_n(const char *s, size_t len, MoneyStatus want)
{
	int64_t		u = 0;
	MoneyCode	c;
	int			m = 0;
	MoneyStatus st = parse_n(s, len, test_lookup, &u, &c, &m);

	if (!OK(st == want, "parse '%s' -> %s", show(s, len), status_name(want)))
		DIAG("got %s (units %" PRId64 ")", status_name(st), u);
}

static void
parse_err(const char *s, MoneyStatus want)
{
	parse_err_n(s, strlen(s), want);
}

/* Any error is acceptable (the exact kind is not pinned down by money.h). */
static void
parse_fails(const char *s)
{
	int64_t		u = 0;
	MoneyCode	c;
	int			m = 0;
	MoneyStatus st = parse_n(s, strlen(s), test_lookup, &u, &c, &m);

	if (!OK(st != MONEY_OK, "parse '%s' fails", show(s, strlen(s))))
		DIAG("got OK, units %" PRId64, u);
}

/* buf (of size bytes) holds exactly want, NUL-terminated, len its length */
static void
fmt_check(const char *buf, size_t size, size_t len, const char *want, const char *label)
{
	if (!OK(len < size && len == strlen(want) && buf[len] == '\0' && strcmp(buf, want) == 0,
			"%s -> '%s'", label, want))
		DIAG("got '%s' (returned length %zu)", show(buf, strnlen(buf, size)), len);
}

static void
fmt_is(int64_t units, int mu, const char *code, const char *want)
{
	char		buf[MONEY_FORMAT_BUFLEN];
	char		label[64];
	MoneyCode	c = code_of(code);

	memset(buf, 'Z', sizeof(buf));
	snprintf(label, sizeof(label), "format %" PRId64 " (%d) %s", units, mu, code);
	fmt_check(buf, sizeof(buf), money_format(units, mu, &c, buf), want, label);
}

static void
fmt_wide_is(__int128 units, int mu, const char *code, const char *want)
{
	char		buf[MONEY_FORMAT_WIDE_BUFLEN];
	char		label[64];
	MoneyCode	c = code_of(code);

	memset(buf, 'Z', sizeof(buf));
	snprintf(label, sizeof(label), "format wide (%d) %s", mu, code);
	fmt_check(buf, sizeof(buf), money_format_wide(units, mu, &c, buf), want, label);
}

/* Formats then parses back; true when the round trip is exact. */
static bool
round_trip(int64_t units, const char *code, int mu, char *why, size_t whylen)
{
	char		buf[MONEY_FORMAT_BUFLEN + 16];
	MoneyCode	c = code_of(code),
				c2;
	size_t		len;
	int64_t		u2 = 0;
	int			m2 = -1;
	MoneyStatus st;

	memset(buf, 'Z', sizeof(buf));
	len = money_format(units, mu, &c, buf);
	if (len >= MONEY_FORMAT_BUFLEN || buf[len] != '\0' || strlen(buf) != len)
	{
		snprintf(why, whylen, "format %" PRId64 " %s: bad length %zu", units, code, len);
		return false;
	}
	st = parse_n(buf, len, test_lookup, &u2, &c2, &m2);
	if (st != MONEY_OK || u2 != units || !money_code_eq(&c, &c2) || m2 != mu)
	{
		snprintf(why, whylen, "'%s' parsed back as %s %" PRId64 " (%d), want %" PRId64,
				 buf, status_name(st), u2, m2, units);
		return false;
	}
	return true;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t
rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* A random int64 biased toward interesting magnitudes and the edges. */
static int64_t
rng_int64(void)
{
	uint64_t	r = rng();

	switch (r % 8)
	{
		case 0:
			return (int64_t) (rng() % 201) - 100;
		case 1:
			return INT64_MAX - (int64_t) (rng() % 4);
		case 2:
			return INT64_MIN + (int64_t) (rng() % 4);
		case 3:
			return (int64_t) (rng() >> (rng() % 64));
		case 4:
			return -(int64_t) (rng() >> (1 + rng() % 63));
		default:
			return (int64_t) rng();
	}
}

/* ------------------------------------------------------------- parsing */

static void
test_parse_valid(void)
{
	int			before;

	parse_ok("12.34 USD", 1234, "USD", 2);
	parse_ok("-0.50 EUR", -50, "EUR", 2);
	parse_ok("100 JPY", 100, "JPY", 0);
	parse_ok("1.250 BHD", 1250, "BHD", 3);
	parse_ok("500 COIN", 500, "COIN", 0);
	parse_ok("7 DIAMOND", 7, "DIAMOND", 0);
	parse_ok("1.5 USD", 150, "USD", 2);	/* fewer decimals are fine */
	parse_ok("0.1 BHD", 100, "BHD", 3);
	parse_ok("3 USD", 300, "USD", 2);
	parse_ok("1.2345 CLF", 12345, "CLF", 4);
	parse_ok("-1.0001 UYW", -10001, "UYW", 4);
	parse_ok("0.00001 abcdefgh", 1, "ABCDEFGH", 5);	/* 8-char code */
	parse_ok("0.000000000000000001 MICRO", 1, "MICRO", 18);
	parse_ok("1.2 pts1", 12, "PTS1", 1);
	parse_ok("0 USD", 0, "USD", 2);
	parse_ok("-0 USD", 0, "USD", 2);
	parse_ok("-0.00 USD", 0, "USD", 2);
	parse_ok("+5 USD", 500, "USD", 2);
	parse_ok("+0.05 USD", 5, "USD", 2);
	parse_ok("-0.01 USD", -1, "USD", 2);
	parse_ok("007.10 USD", 710, "USD", 2);
	parse_ok("00000000000000000000000000000000012.34 USD", 1234, "USD", 2);
	parse_ok("10 XAU", 10, "XAU", 0);	/* ISO "N.A." minor units: 0 */

	/* normalisation of the code */
	parse_ok("12.34 usd", 1234, "USD", 2);
	parse_ok("12.34 uSd", 1234, "USD", 2);
	parse_ok("500 coin", 500, "COIN", 0);
	parse_ok("500 Diamond", 500, "DIAMOND", 0);

	/* whitespace */
	parse_ok("  12.34 USD", 1234, "USD", 2);
	parse_ok("12.34 USD   ", 1234, "USD", 2);
	parse_ok("\t\n 12.34 USD \r\n", 1234, "USD", 2);
	parse_ok("12.34     USD", 1234, "USD", 2);
	parse_ok("12.34\tUSD", 1234, "USD", 2);
	parse_ok("\v\f12.34 USD\f\v", 1234, "USD", 2);

	/* exactly len bytes are read */
	parse_ok_n("12.34 USD and more", 9, 1234, "USD", 2);
	parse_ok_n("12.34 USDX", 9, 1234, "USD", 2);
	parse_ok_n("1 JPY5", 5, 1, "JPY", 0);

	/* the lookup callback gets the caller's argument */
	before = lookup_calls;
	parse_ok("1 COIN", 1, "COIN", 0);
	OK(lookup_calls > before, "lookup callback called with lookup_arg");

	/* ISO-only lookup */
	{
		int64_t		u = 0;
		MoneyCode	c;
		int			m = -1;
		MoneyStatus st = money_parse("12.34 USD", 9, money_iso_lookup, NULL, &u, &c, &m);

		OK(st == MONEY_OK && u == 1234 && code_is(&c, "USD") && m == 2,
		   "parse with money_iso_lookup (NULL arg)");
		st = money_parse("500 COIN", 8, money_iso_lookup, NULL, &u, &c, &m);
		OK(st == MONEY_ERR_UNKNOWN, "COIN unknown to money_iso_lookup (got %s)",
		   status_name(st));
	}
}

static void
test_parse_errors(void)
{
	/* precision: never a rounding */
	parse_err("1.234 USD", MONEY_ERR_PRECISION);
	parse_err("1.5 JPY", MONEY_ERR_PRECISION);
	parse_err("1.50 JPY", MONEY_ERR_PRECISION);
	parse_err("1.0 JPY", MONEY_ERR_PRECISION);
	parse_err("1.000 USD", MONEY_ERR_PRECISION);
	parse_err("1.2500 BHD", MONEY_ERR_PRECISION);
	parse_err("1.23450 CLF", MONEY_ERR_PRECISION);
	parse_err("-0.001 USD", MONEY_ERR_PRECISION);
	parse_err("5.0 COIN", MONEY_ERR_PRECISION);
	parse_err("1.0000000000000000000000000000000 USD", MONEY_ERR_PRECISION);
	parse_err("0.0000000000000000001 MICRO", MONEY_ERR_PRECISION);

	/* unknown currency */
	parse_err("1 ABC", MONEY_ERR_UNKNOWN);
	parse_err("1 QQQ", MONEY_ERR_UNKNOWN);
	parse_err("1 abc", MONEY_ERR_UNKNOWN);
	parse_err("1 AB1", MONEY_ERR_UNKNOWN);
	parse_err("1 COINS", MONEY_ERR_UNKNOWN);
	parse_err("1 ABCDEFGZ", MONEY_ERR_UNKNOWN);
	parse_err("1.234 ABC", MONEY_ERR_UNKNOWN);	/* precision needs the currency */

	/* malformed code */
	parse_err("1 US", MONEY_ERR_CODE);
	parse_err("1 U", MONEY_ERR_CODE);
	parse_err("1 USDOLLARSX", MONEY_ERR_CODE);
	parse_err("1 ABCDEFGHI", MONEY_ERR_CODE);
	parse_err("1 U$D", MONEY_ERR_CODE);
	parse_err("1 1USD", MONEY_ERR_CODE);
	parse_err("1 _USD", MONEY_ERR_CODE);
	parse_err("1 US-D", MONEY_ERR_CODE);
	parse_err("1 \xc3\x9cSD", MONEY_ERR_CODE);	/* non-ASCII letter */

	/* syntax */
	parse_err("", MONEY_ERR_SYNTAX);
	parse_err(" ", MONEY_ERR_SYNTAX);
	parse_err(" \t\n ", MONEY_ERR_SYNTAX);
	parse_err("garbage", MONEY_ERR_SYNTAX);
	parse_err("abc USD", MONEY_ERR_SYNTAX);
	parse_err("USD", MONEY_ERR_SYNTAX);
	parse_err("USD 12.34", MONEY_ERR_SYNTAX);
	parse_err("12.34", MONEY_ERR_SYNTAX);
	parse_err("12.34 ", MONEY_ERR_SYNTAX);
	parse_err("-", MONEY_ERR_SYNTAX);
	parse_err("- USD", MONEY_ERR_SYNTAX);
	parse_err(". USD", MONEY_ERR_SYNTAX);
	parse_err("12.34USD", MONEY_ERR_SYNTAX);
	parse_err("1e3 USD", MONEY_ERR_SYNTAX);
	parse_err("1E3 USD", MONEY_ERR_SYNTAX);
	parse_err("0x10 USD", MONEY_ERR_SYNTAX);
	parse_err("inf USD", MONEY_ERR_SYNTAX);
	parse_err("NaN USD", MONEY_ERR_SYNTAX);
	parse_err("--1 USD", MONEY_ERR_SYNTAX);
	parse_err("++1 USD", MONEY_ERR_SYNTAX);
	parse_err("1- USD", MONEY_ERR_SYNTAX);
	parse_err("- 1 USD", MONEY_ERR_SYNTAX);
	parse_err("+-1 USD", MONEY_ERR_SYNTAX);
	parse_err("-+1 USD", MONEY_ERR_SYNTAX);
	parse_err("1.-5 USD", MONEY_ERR_SYNTAX);
	parse_err("1.+5 USD", MONEY_ERR_SYNTAX);
	parse_err(".5 USD", MONEY_ERR_SYNTAX);
	parse_err("-.5 USD", MONEY_ERR_SYNTAX);
	parse_err("5. USD", MONEY_ERR_SYNTAX);
	parse_err("1..5 USD", MONEY_ERR_SYNTAX);
	parse_err("1.2.3 USD", MONEY_ERR_SYNTAX);
	parse_err("1,000 USD", MONEY_ERR_SYNTAX);
	parse_err("1,5 USD", MONEY_ERR_SYNTAX);
	parse_err("1. 5 USD", MONEY_ERR_SYNTAX);
	parse_err("$1 USD", MONEY_ERR_SYNTAX);
	parse_err("1$ USD", MONEY_ERR_SYNTAX);
	parse_err("\xef\xbc\x91 USD", MONEY_ERR_SYNTAX);	/* fullwidth digit one */
	parse_err_n("1\0 USD", 6, MONEY_ERR_SYNTAX);
	parse_err_n("\0" "1 USD", 6, MONEY_ERR_SYNTAX);
	parse_err_n("12.34 USD", 5, MONEY_ERR_SYNTAX);	/* len cuts the code */
	parse_err_n("12.34 USD", 0, MONEY_ERR_SYNTAX);

	/* blanks inside the number, or extra tokens: some error */
	parse_fails("1 000 USD");
	parse_fails("1 .5 USD");
	parse_fails("1 USD X");
	parse_fails("1 USD 2");
	parse_fails("1 USD USD");
	parse_fails("- 1.5 USD");
}

static void
test_parse_limits(void)
{
	parse_ok("92233720368547758.07 USD", INT64_MAX, "USD", 2);
	parse_err("92233720368547758.08 USD", MONEY_ERR_OVERFLOW);
	parse_ok("-92233720368547758.08 USD", INT64_MIN, "USD", 2);
	parse_err("-92233720368547758.09 USD", MONEY_ERR_OVERFLOW);
	parse_err("92233720368547758.1 USD", MONEY_ERR_OVERFLOW);	/* scaled */
	parse_err("92233720368547759 USD", MONEY_ERR_OVERFLOW);
	parse_err("-92233720368547759 USD", MONEY_ERR_OVERFLOW);
	parse_ok("92233720368547758 USD", INT64_C(9223372036854775800), "USD", 2);
	parse_ok("9223372036854775807 JPY", INT64_MAX, "JPY", 0);
	parse_ok("+9223372036854775807 JPY", INT64_MAX, "JPY", 0);
	parse_err("9223372036854775808 JPY", MONEY_ERR_OVERFLOW);
	parse_ok("-9223372036854775808 JPY", INT64_MIN, "JPY", 0);
	parse_err("-9223372036854775809 JPY", MONEY_ERR_OVERFLOW);
	parse_ok("0009223372036854775807 JPY", INT64_MAX, "JPY", 0);
	parse_err("18446744073709551615 JPY", MONEY_ERR_OVERFLOW);	/* 2^64-1 */
	parse_err("18446744073709551616 JPY", MONEY_ERR_OVERFLOW);	/* 2^64 */
	parse_err("18446744073709551617 JPY", MONEY_ERR_OVERFLOW);
	parse_err("-18446744073709551616 JPY", MONEY_ERR_OVERFLOW);
	parse_err("27670116110564327424 JPY", MONEY_ERR_OVERFLOW);	/* 3*2^63 */
	parse_err("99999999999999999999 JPY", MONEY_ERR_OVERFLOW);
	parse_err("99999999999999999999999999999999999999999999999999 COIN",
			  MONEY_ERR_OVERFLOW);
	parse_err("-99999999999999999999999999999999999999999999999999.99 USD",
			  MONEY_ERR_OVERFLOW);
	parse_ok("922337203685477.5807 CLF", INT64_MAX, "CLF", 4);
	parse_err("922337203685477.5808 CLF", MONEY_ERR_OVERFLOW);
	parse_ok("-922337203685477.5808 CLF", INT64_MIN, "CLF", 4);
	parse_ok("9.223372036854775807 MICRO", INT64_MAX, "MICRO", 18);
	parse_err("9.223372036854775808 MICRO", MONEY_ERR_OVERFLOW);
	parse_ok("-9.223372036854775808 MICRO", INT64_MIN, "MICRO", 18);
	parse_ok("9 MICRO", INT64_C(9000000000000000000), "MICRO", 18);
	parse_err("10 MICRO", MONEY_ERR_OVERFLOW);
	parse_err("-10 MICRO", MONEY_ERR_OVERFLOW);
	parse_ok("92233720368547.75807 ABCDEFGH", INT64_MAX, "ABCDEFGH", 5);
}

/* ---------------------------------------------------------- formatting */

static void
test_format(void)
{
	/* 128-bit totals (overflow DETAILs): past int64 either way, and within it */
	fmt_wide_is((__int128) INT64_MAX + 1, 2, "USD", "92233720368547758.08 USD");
	fmt_wide_is((__int128) INT64_MIN - 1, 0, "JPY", "-9223372036854775809 JPY");
	fmt_wide_is((__int128) INT64_MAX * 2, 18, "ETH", "18.446744073709551614 ETH");
	fmt_wide_is((__int128) INT64_MIN * INT64_MAX, 3, "BHD",
				"-85070591730234615856620279821087277.056 BHD");
	fmt_wide_is(-((__int128) 1 << 126) * 2, 2, "DIAMOND",
				"-1701411834604692317316873037158841057.28 DIAMOND");
	fmt_wide_is(-5, 2, "USD", "-0.05 USD");
	fmt_is(1230, 2, "USD", "12.30 USD");
	fmt_is(1234, 2, "USD", "12.34 USD");
	fmt_is(-5, 2, "USD", "-0.05 USD");
	fmt_is(5, 2, "USD", "0.05 USD");
	fmt_is(-50, 2, "EUR", "-0.50 EUR");
	fmt_is(-100, 2, "USD", "-1.00 USD");
	fmt_is(0, 2, "USD", "0.00 USD");
	fmt_is(100, 0, "JPY", "100 JPY");
	fmt_is(0, 0, "JPY", "0 JPY");
	fmt_is(-1, 0, "JPY", "-1 JPY");
	fmt_is(1250, 3, "BHD", "1.250 BHD");
	fmt_is(1, 3, "BHD", "0.001 BHD");
	fmt_is(500, 0, "COIN", "500 COIN");
	fmt_is(12, 1, "PTS1", "1.2 PTS1");
	fmt_is(INT64_MAX, 2, "USD", "92233720368547758.07 USD");
	fmt_is(INT64_MIN, 2, "USD", "-92233720368547758.08 USD");
	fmt_is(INT64_MAX, 0, "JPY", "9223372036854775807 JPY");
	fmt_is(INT64_MIN, 0, "JPY", "-9223372036854775808 JPY");
	fmt_is(INT64_MAX, 4, "CLF", "922337203685477.5807 CLF");
	fmt_is(INT64_MIN, 4, "CLF", "-922337203685477.5808 CLF");
	fmt_is(0, 4, "CLF", "0.0000 CLF");
	fmt_is(INT64_MAX, 18, "MICRO", "9.223372036854775807 MICRO");
	fmt_is(INT64_MIN, 18, "MICRO", "-9.223372036854775808 MICRO");
	fmt_is(1, 18, "MICRO", "0.000000000000000001 MICRO");
	fmt_is(-1, 18, "MICRO", "-0.000000000000000001 MICRO");
	fmt_is(0, 18, "MICRO", "0.000000000000000000 MICRO");
	fmt_is(INT64_MIN, 18, "ABCDEFGH", "-9.223372036854775808 ABCDEFGH");
	fmt_is(INT64_MIN, 0, "ABCDEFGH", "-9223372036854775808 ABCDEFGH");
	fmt_is(INT64_MIN, 5, "ABCDEFGH", "-92233720368547.75808 ABCDEFGH");
}

static void
test_round_trip(void)
{
	static const struct
	{
		const char *code;
		int			mu;
	}			cur[] = {
		{"JPY", 0}, {"COIN", 0}, {"PTS1", 1}, {"USD", 2}, {"BHD", 3}, {"CLF", 4},
		{"ABCDEFGH", 5}, {"MICRO", 18}
	};
	static const int64_t edges[] = {
		0, 1, -1, 9, -9, 10, -10, 99, -99, 100, -100, 101, -101, 12345, -12345,
		INT64_C(1000000000000000000), INT64_C(-1000000000000000000),
		INT64_C(999999999999999999), INT64_C(-999999999999999999),
		INT64_MAX, INT64_MAX - 1, INT64_MIN, INT64_MIN + 1
	};

	for (size_t k = 0; k < sizeof(cur) / sizeof(cur[0]); k++)
	{
		char		why[200] = "";
		bool		good = true;

		for (size_t i = 0; good && i < sizeof(edges) / sizeof(edges[0]); i++)
			good = round_trip(edges[i], cur[k].code, cur[k].mu, why, sizeof(why));
		if (!OK(good, "round trip of edge values in %s (%d decimals)", cur[k].code, cur[k].mu))
			DIAG("%s", why);

		good = true;
		for (int i = 0; good && i < 5000; i++)
			good = round_trip(rng_int64(), cur[k].code, cur[k].mu, why, sizeof(why));
		if (!OK(good, "round trip of 5000 random values in %s", cur[k].code))
			DIAG("%s", why);
	}
}

/* ---------------------------------------------------------- arithmetic */

typedef MoneyStatus (*BinOp) (int64_t, int64_t, int64_t *);

static void
bin_is(BinOp op, const char *name, int64_t a, int64_t b, MoneyStatus want, int64_t want_out)
{
	int64_t		out = 0x5A5A;
	MoneyStatus st = op(a, b, &out);

	if (!OK(st == want && (want != MONEY_OK || out == want_out),
			"%s(%" PRId64 ", %" PRId64 ") -> %s %" PRId64,
			name, a, b, status_name(want), want == MONEY_OK ? want_out : 0))
		DIAG("got %s %" PRId64, status_name(st), out);
}

static void
un_is(MoneyStatus (*op) (int64_t, int64_t *), const char *name, int64_t a,
	  MoneyStatus want, int64_t want_out)
{
	int64_t		out = 0x5A5A;
	MoneyStatus st = op(a, &out);

	if (!OK(st == want && (want != MONEY_OK || out == want_out),
			"%s(%" PRId64 ") -> %s %" PRId64,
			name, a, status_name(want), want == MONEY_OK ? want_out : 0))
		DIAG("got %s %" PRId64, status_name(st), out);
}

static void
test_arith(void)
{
	bin_is(money_add, "add", 1, 2, MONEY_OK, 3);
	bin_is(money_add, "add", -5, 3, MONEY_OK, -2);
	bin_is(money_add, "add", INT64_MAX, 0, MONEY_OK, INT64_MAX);
	bin_is(money_add, "add", INT64_MAX, INT64_MIN, MONEY_OK, -1);
	bin_is(money_add, "add", INT64_MAX - 1, 1, MONEY_OK, INT64_MAX);
	bin_is(money_add, "add", INT64_MAX, 1, MONEY_ERR_OVERFLOW, 0);
	bin_is(money_add, "add", 1, INT64_MAX, MONEY_ERR_OVERFLOW, 0);
	bin_is(money_add, "add", INT64_MIN, -1, MONEY_ERR_OVERFLOW, 0);
	bin_is(money_add, "add", INT64_MIN, INT64_MIN, MONEY_ERR_OVERFLOW, 0);
	bin_is(money_add, "add", INT64_MAX, INT64_MAX, MONEY_ERR_OVERFLOW, 0);
	bin_is(money_add, "add", INT64_MIN + 1, -1, MONEY_OK, INT64_MIN);

	bin_is(money_sub, "sub", 5, 7, MONEY_OK, -2);
	bin_is(money_sub, "sub", INT64_MIN, INT64_MIN, MONEY_OK, 0);
	bin_is(money_sub, "sub", -1, INT64_MIN, MONEY_OK, INT64_MAX);
	bin_is(money_sub, "sub", INT64_MIN, 1, MONEY_ERR_OVERFLOW, 0);
	bin_is(money_sub, "sub", INT64_MAX, -1, MONEY_ERR_OVERFLOW, 0);
	bin_is(money_sub, "sub", 0, INT64_MIN, MONEY_ERR_OVERFLOW, 0);
	bin_is(money_sub, "sub", 0, INT64_MAX, MONEY_OK, -INT64_MAX);
	bin_is(money_sub, "sub", -2, INT64_MAX, MONEY_ERR_OVERFLOW, 0);

	bin_is(money_mul, "mul", 3, 4, MONEY_OK, 12);
	bin_is(money_mul, "mul", -3, 4, MONEY_OK, -12);
	bin_is(money_mul, "mul", 0, INT64_MIN, MONEY_OK, 0);
	bin_is(money_mul, "mul", INT64_MIN, 1, MONEY_OK, INT64_MIN);
	bin_is(money_mul, "mul", INT64_MAX, -1, MONEY_OK, -INT64_MAX);
	bin_is(money_mul, "mul", INT64_MAX, 2, MONEY_ERR_OVERFLOW, 0);
	bin_is(money_mul, "mul", INT64_MIN, -1, MONEY_ERR_OVERFLOW, 0);
	bin_is(money_mul, "mul", -1, INT64_MIN, MONEY_ERR_OVERFLOW, 0);
	bin_is(money_mul, "mul", INT64_MIN, 2, MONEY_ERR_OVERFLOW, 0);
	bin_is(money_mul, "mul", INT64_C(4294967296), INT64_C(2147483648), MONEY_ERR_OVERFLOW, 0);
	bin_is(money_mul, "mul", INT64_C(-4294967296), INT64_C(2147483648), MONEY_OK, INT64_MIN);
	bin_is(money_mul, "mul", INT64_C(3037000500), INT64_C(3037000500), MONEY_ERR_OVERFLOW, 0);
	bin_is(money_mul, "mul", INT64_C(3037000499), INT64_C(3037000499), MONEY_OK,
		   INT64_C(9223372030926249001));
	bin_is(money_mul, "mul", INT64_C(4294967297), INT64_C(4294967297), MONEY_ERR_OVERFLOW, 0);

	un_is(money_neg, "neg", 5, MONEY_OK, -5);
	un_is(money_neg, "neg", 0, MONEY_OK, 0);
	un_is(money_neg, "neg", INT64_MAX, MONEY_OK, -INT64_MAX);
	un_is(money_neg, "neg", -INT64_MAX, MONEY_OK, INT64_MAX);
	un_is(money_neg, "neg", INT64_MIN, MONEY_ERR_OVERFLOW, 0);

	un_is(money_abs, "abs", -5, MONEY_OK, 5);
	un_is(money_abs, "abs", 5, MONEY_OK, 5);
	un_is(money_abs, "abs", 0, MONEY_OK, 0);
	un_is(money_abs, "abs", INT64_MAX, MONEY_OK, INT64_MAX);
	un_is(money_abs, "abs", -INT64_MAX, MONEY_OK, INT64_MAX);
	un_is(money_abs, "abs", INT64_MIN, MONEY_ERR_OVERFLOW, 0);

	{
		bool		good = true;
		int64_t		p = 1;

		for (int n = 0; n <= 18; n++)
		{
			if (money_pow10(n) != p)
			{
				good = false;
				DIAG("money_pow10(%d) = %" PRId64 ", want %" PRId64, n, money_pow10(n), p);
				break;
			}
			if (n < 18)
				p *= 10;
		}
		OK(good, "money_pow10(0..18)");
	}
}

/* ------------------------------------------------------------ rounding */

#define I128_MAX ((__int128) (((unsigned __int128) 1 << 127) - 1))
#define I128_MIN (-I128_MAX - 1)

static const char *const mode_names[] = {"half_even", "half_up", "down", "floor", "ceiling"};

/* want[mode]; a want of WANT_OVF means MONEY_ERR_OVERFLOW. */
#define WANT_OVF INT64_C(0x7eadbeef0badf00d)

static void
div_is(const char *what, __int128 num, __int128 den, const int64_t want[5])
{
	for (int m = 0; m < 5; m++)
	{
		int64_t		out = 0x5A5A;
		MoneyStatus st = money_div_round(num, den, (MoneyRounding) m, &out);
		bool		good = want[m] == WANT_OVF ? st == MONEY_ERR_OVERFLOW
			: (st == MONEY_OK && out == want[m]);

		if (!OK(good, "div_round %s %s -> %s", what, mode_names[m],
				want[m] == WANT_OVF ? "OVERFLOW" : "value"))
		{
			if (want[m] != WANT_OVF)
				DIAG("want %" PRId64 ", got %s %" PRId64, want[m], status_name(st), out);
			else
				DIAG("got %s %" PRId64, status_name(st), out);
		}
	}
}

#define DIV(num, den, he, hu, dn, fl, ce) \
	div_is(#num " / " #den, (num), (den), (const int64_t[5]) {he, hu, dn, fl, ce})

static void
test_div_round(void)
{
	const __int128 max = INT64_MAX,
				min = INT64_MIN;

	/* mode order:  half_even half_up down floor ceiling */
	DIV(5, 2, 2, 3, 2, 2, 3);
	DIV(-5, 2, -2, -3, -2, -3, -2);
	DIV(7, 2, 4, 4, 3, 3, 4);
	DIV(-7, 2, -4, -4, -3, -4, -3);
	DIV(1, 2, 0, 1, 0, 0, 1);
	DIV(-1, 2, 0, -1, 0, -1, 0);
	DIV(3, 2, 2, 2, 1, 1, 2);
	DIV(-3, 2, -2, -2, -1, -2, -1);
	DIV(1, 3, 0, 0, 0, 0, 1);
	DIV(-1, 3, 0, 0, 0, -1, 0);
	DIV(2, 3, 1, 1, 0, 0, 1);
	DIV(-2, 3, -1, -1, 0, -1, 0);
	DIV(5, 4, 1, 1, 1, 1, 2);
	DIV(7, 4, 2, 2, 1, 1, 2);
	DIV(-7, 4, -2, -2, -1, -2, -1);
	DIV(6, 3, 2, 2, 2, 2, 2);
	DIV(-6, 3, -2, -2, -2, -2, -2);
	DIV(0, 5, 0, 0, 0, 0, 0);
	DIV(0, -5, 0, 0, 0, 0, 0);
	/* negative denominators */
	DIV(5, -2, -2, -3, -2, -3, -2);
	DIV(-5, -2, 2, 3, 2, 2, 3);
	DIV(7, -2, -4, -4, -3, -4, -3);
	DIV(1, -3, 0, 0, 0, -1, 0);
	DIV(-2, -3, 1, 1, 0, 0, 1);
	/* int64 edges */
	DIV(max, 1, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX);
	DIV(min, 1, INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN);
	DIV(min, -1, WANT_OVF, WANT_OVF, WANT_OVF, WANT_OVF, WANT_OVF);
	DIV(max + 1, 1, WANT_OVF, WANT_OVF, WANT_OVF, WANT_OVF, WANT_OVF);
	DIV(min - 1, 1, WANT_OVF, WANT_OVF, WANT_OVF, WANT_OVF, WANT_OVF);
	/* INT64_MAX + 0.5: the odd INT64_MAX ties to the even 2^63 */
	DIV(max * 10 + 5, 10, WANT_OVF, WANT_OVF, INT64_MAX, INT64_MAX, WANT_OVF);
	/* INT64_MIN - 0.5: even INT64_MIN */
	DIV(min * 10 - 5, 10, INT64_MIN, WANT_OVF, INT64_MIN, WANT_OVF, INT64_MIN);
	DIV(min * 2, 2, INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN);
	DIV(max * 3 + 1, 3, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, WANT_OVF);
	DIV((__int128) 1 << 126, (__int128) 1 << 64,
		INT64_C(4611686018427387904), INT64_C(4611686018427387904),
		INT64_C(4611686018427387904), INT64_C(4611686018427387904),
		INT64_C(4611686018427387904));
	for (int m = 0; m < 5; m++)
	{
		int64_t		out = 0;
		MoneyStatus st = money_div_round(5, 0, (MoneyRounding) m, &out);

		if (!OK(st == MONEY_ERR_ARGUMENT, "div_round 5 / 0 %s -> ARGUMENT", mode_names[m]))
			DIAG("got %s", status_name(st));
	}

	/* property: floor <= mode <= ceiling, ceiling - floor <= 1 */
	{
		bool		good = true;

		for (int i = 0; good && i < 20000; i++)
		{
			__int128	num = (__int128) rng_int64() * (int64_t) (rng() % 1000 + 1);
			__int128	den = (int64_t) (rng() % 2000) - 1000;
			int64_t		r[5];
			MoneyStatus st[5];

			if (den == 0)
				den = 7;
			for (int m = 0; m < 5; m++)
				st[m] = money_div_round(num, den, (MoneyRounding) m, &r[m]);
			/* reference floor / ceiling in 128 bits */
			{
				__int128	q = num / den,
							rem = num % den;
				__int128	fl = (rem != 0 && ((rem < 0) != (den < 0))) ? q - 1 : q;
				__int128	ce = rem != 0 ? fl + 1 : fl;
				bool		fl_fits = fl >= INT64_MIN && fl <= INT64_MAX;
				bool		ce_fits = ce >= INT64_MIN && ce <= INT64_MAX;

				if ((st[MONEY_ROUND_FLOOR] == MONEY_OK) != fl_fits ||
					(st[MONEY_ROUND_CEILING] == MONEY_OK) != ce_fits ||
					(fl_fits && r[MONEY_ROUND_FLOOR] != fl) ||
					(ce_fits && r[MONEY_ROUND_CEILING] != ce))
					good = false;
				for (int m = 0; m < 5; m++)
					if (st[m] == MONEY_OK && (r[m] < fl || r[m] > ce))
						good = false;
					else if (st[m] != MONEY_OK && st[m] != MONEY_ERR_OVERFLOW)
						good = false;
				if (!good)
					DIAG("num %" PRId64 "*k den %d: first mismatch at i=%d",
						 (int64_t) (num / 1000), (int) den, i);
			}
		}
		OK(good, "div_round agrees with 128-bit floor/ceiling on 20000 random cases");
	}
}

/*
 * Operands near the ends of the __int128 range (|num| or |den| >= 2^126).
 * Run last: an implementation that negates INT128_MIN or doubles a huge
 * remainder trips UBSan here, which aborts the program.
 */
static void
test_div_round_int128_extremes(void)
{
	DIV(I128_MIN, (__int128) 1 << 64, INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN);
	DIV(I128_MAX, (__int128) 1 << 64, WANT_OVF, WANT_OVF, INT64_MAX, INT64_MAX, WANT_OVF);
	DIV(I128_MIN, -1, WANT_OVF, WANT_OVF, WANT_OVF, WANT_OVF, WANT_OVF);
	DIV(I128_MIN, I128_MIN, 1, 1, 1, 1, 1);
	DIV(I128_MAX, I128_MAX, 1, 1, 1, 1, 1);
	DIV(I128_MAX, I128_MIN, -1, -1, 0, -1, 0);
	DIV(I128_MIN, I128_MAX, -1, -1, -1, -2, -1);
	/* 2^126 / (2^127 - 1): just above one half (2 * remainder > INT128_MAX) */
	DIV((__int128) 1 << 126, I128_MAX, 1, 1, 0, 0, 1);
	DIV(-((__int128) 1 << 126), I128_MAX, -1, -1, 0, -1, 0);
}

static void
test_rounding_names(void)
{
	static const struct
	{
		const char *name;
		MoneyRounding mode;
	}			names[] = {
		{"half_even", MONEY_ROUND_HALF_EVEN}, {"half_up", MONEY_ROUND_HALF_UP},
		{"down", MONEY_ROUND_DOWN}, {"floor", MONEY_ROUND_FLOOR},
		{"ceiling", MONEY_ROUND_CEILING}
	};
	static const char *const bad[] = {"bogus", "", "half", "half_evenx", "half_eve", "up",
	"ceil", "truncate", " down", "down "};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
	{
		MoneyRounding m = (MoneyRounding) 99;
		bool		r = money_rounding_from_name(names[i].name, &m);

		OK(r && m == names[i].mode, "rounding name '%s'", names[i].name);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		MoneyRounding m = MONEY_ROUND_DOWN;

		OK(!money_rounding_from_name(bad[i], &m), "rounding name '%s' rejected", bad[i]);
	}
}

/* ---------------------------------------------------------- allocation */

/* Reference: largest remainder on |total|, ties to the earlier part. */
static void
ref_allocate(int64_t total, const int32_t *ratios, int n, int64_t *parts)
{
	unsigned __int128 t = total < 0 ? (unsigned __int128) (-(__int128) total)
		: (unsigned __int128) total;
	unsigned __int128 sum = 0,
				given = 0;
	unsigned __int128 q[64],
				rem[64];

	for (int i = 0; i < n; i++)
		sum += (unsigned) ratios[i];
	for (int i = 0; i < n; i++)
	{
		unsigned __int128 x = t * (unsigned) ratios[i];

		q[i] = x / sum;
		rem[i] = x % sum;
		given += q[i];
	}
	for (unsigned __int128 left = t - given; left > 0; left--)
	{
		int			best = -1;

		for (int i = 0; i < n; i++)
			if (rem[i] != (unsigned __int128) -1 && (best < 0 || rem[i] > rem[best]))
				best = i;
		q[best]++;
		rem[best] = (unsigned __int128) -1;	/* each part gets at most one */
	}
	for (int i = 0; i < n; i++)
		parts[i] = (int64_t) (total < 0 ? -(__int128) q[i] : (__int128) q[i]);
}

static void
alloc_is(int64_t total, const int32_t *ratios, int n, const int64_t *want)
{
	int64_t		parts[16];
	char		desc[300];
	size_t		o = 0;
	MoneyStatus st;
	bool		good;

	for (int i = 0; i < 16; i++)
		parts[i] = 0x5A5A;
	st = money_allocate(total, ratios, n, parts);
	good = st == MONEY_OK && parts[n] == 0x5A5A;
	for (int i = 0; good && i < n; i++)
		good = parts[i] == want[i];
	o += snprintf(desc + o, sizeof(desc) - o, "allocate %" PRId64 " by [", total);
	for (int i = 0; i < n; i++)
		o += snprintf(desc + o, sizeof(desc) - o, "%s%" PRId32, i ? "," : "", ratios[i]);
	o += snprintf(desc + o, sizeof(desc) - o, "] -> [");
	for (int i = 0; i < n; i++)
		o += snprintf(desc + o, sizeof(desc) - o, "%s%" PRId64, i ? "," : "", want[i]);
	snprintf(desc + o, sizeof(desc) - o, "]");
	if (!OK(good, "%s", desc))
	{
		printf("#   got %s [", status_name(st));
		for (int i = 0; i < n; i++)
			printf("%s%" PRId64, i ? "," : "", parts[i]);
		printf("]\n");
	}
}

#define ALLOC(total, ...) do { \
	const int32_t rw_[] = {__VA_ARGS__}; \
	alloc_is_pairs((total), rw_, (int) (sizeof(rw_) / sizeof(rw_[0])) / 2); \
} while (0)

/* ratios and wants interleaved: r0, w0, r1, w1, ... (wants fit int32 here) */
static void
alloc_is_pairs(int64_t total, const int32_t *rw, int n)
{
	int32_t		r[8];
	int64_t		w[8];

	for (int i = 0; i < n; i++)
	{
		r[i] = rw[2 * i];
		w[i] = rw[2 * i + 1];
	}
	alloc_is(total, r, n, w);
}

static void
alloc_err(int64_t total, const int32_t *ratios, int n, const char *what)
{
	int64_t		parts[8];
	MoneyStatus st = money_allocate(total, ratios, n, parts);

	if (!OK(st == MONEY_ERR_ARGUMENT, "allocate %s -> ARGUMENT", what))
		DIAG("got %s", status_name(st));
}

static void
test_allocate(void)
{
	/* ratio, expected part; pairs */
	ALLOC(100, 1, 34, 1, 33, 1, 33);
	ALLOC(-100, 1, -34, 1, -33, 1, -33);
	ALLOC(5, 1, 3, 1, 2);
	ALLOC(-5, 1, -3, 1, -2);
	ALLOC(10, 0, 0, 1, 10);
	ALLOC(10, 1, 10, 0, 0);
	ALLOC(10, 1, 5, 0, 0, 1, 5);
	ALLOC(11, 1, 6, 0, 0, 1, 5);
	ALLOC(100, 1, 17, 2, 33, 3, 50);
	ALLOC(1, 1, 1, 1, 0, 1, 0);
	ALLOC(2, 1, 1, 1, 1, 1, 0);
	ALLOC(-2, 1, -1, 1, -1, 1, 0);
	ALLOC(-7, 1, -2, 1, -2, 1, -2, 1, -1);
	ALLOC(0, 1, 0, 2, 0);
	ALLOC(7, 3, 7);
	ALLOC(-7, 1, -7);
	ALLOC(1, 1, 0, 2, 1);			/* remainder 2/3 beats 1/3 */
	ALLOC(1, 2, 1, 1, 0);
	ALLOC(3, 1, 1, 1, 1, 1, 1);
	ALLOC(10, 3, 3, 3, 3, 3, 3, 1, 1);	/* 3.33 x3 + 1.11: .33 ties, first wins */
	ALLOC(4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0);

	{
		const int32_t r1[] = {INT32_MAX, 1};
		const int64_t w1[] = {INT64_C(9223372032559808511), INT64_C(4294967296)};
		const int32_t r2[] = {1, 1, 1};
		const int64_t w2[] = {INT64_C(-3074457345618258603), INT64_C(-3074457345618258603),
		INT64_C(-3074457345618258602)};
		const int32_t r3[] = {1, 1};
		const int64_t w3[] = {INT64_C(4611686018427387904), INT64_C(4611686018427387903)};
		const int64_t w4[] = {INT64_C(-4611686018427387904), INT64_C(-4611686018427387904)};
		const int32_t r5[] = {INT32_MAX, INT32_MAX, 1};
		const int64_t w5[] = {INT64_C(-4611686017353646080), INT64_C(-4611686017353646080),
		INT64_C(-2147483648)};
		const int32_t r6[] = {3, 3, 3, 1};
		const int64_t w6[] = {INT64_C(2767011611056432742), INT64_C(2767011611056432742),
		INT64_C(2767011611056432742), INT64_C(922337203685477581)};
		const int32_t r7[] = {0, 1};
		const int64_t w7[] = {0, INT64_MIN};

		alloc_is(INT64_MAX, r1, 2, w1);
		alloc_is(INT64_MIN, r2, 3, w2);
		alloc_is(INT64_MAX, r3, 2, w3);
		alloc_is(INT64_MIN, r3, 2, w4);
		alloc_is(INT64_MIN, r5, 3, w5);
		alloc_is(INT64_MAX, r6, 4, w6);
		alloc_is(INT64_MIN, r7, 2, w7);
	}

	/* errors */
	{
		const int32_t one[] = {1};
		const int32_t neg[] = {1, -1, 3};
		const int32_t neg2[] = {-1, 2};
		const int32_t zeros[] = {0, 0, 0};
		const int32_t minr[] = {INT32_MIN, 1};

		alloc_err(10, one, 0, "n = 0");
		alloc_err(10, one, -1, "n = -1");
		alloc_err(10, neg, 3, "[1,-1,3] (negative ratio)");
		alloc_err(10, neg2, 2, "[-1,2] (negative ratio, positive sum)");
		alloc_err(10, minr, 2, "[INT32_MIN,1]");
		alloc_err(10, zeros, 3, "[0,0,0] (all zero)");
		alloc_err(0, zeros, 1, "0 by [0] (all zero)");
	}

	/* properties over random totals and ratio vectors */
	{
		bool		sum_ok = true,
					ref_ok = true,
					zero_ok = true,
					sign_ok = true;
		int			iters = 20000;

		for (int it = 0; it < iters; it++)
		{
			int			n = 1 + (int) (rng() % (it % 10 == 0 ? 40 : 8));
			int32_t		ratios[64];
			int64_t		parts[64],
						want[64];
			int64_t		total;
			__int128	sum = 0;
			bool		nonzero = false;
			MoneyStatus st;

			switch (it % 6)
			{
				case 0:
					total = INT64_MAX;
					break;
				case 1:
					total = INT64_MIN;
					break;
				default:
					total = rng_int64();
			}
			for (int i = 0; i < n; i++)
			{
				switch (rng() % 5)
				{
					case 0:
						ratios[i] = 0;
						break;
					case 1:
						ratios[i] = INT32_MAX - (int32_t) (rng() % 3);
						break;
					case 2:
						ratios[i] = (int32_t) (rng() % 0x7fffffff);
						break;
					default:
						ratios[i] = (int32_t) (rng() % 10);
				}
				nonzero |= ratios[i] != 0;
			}
			if (!nonzero)
				ratios[rng() % n] = 1 + (int32_t) (rng() % 5);

			st = money_allocate(total, ratios, n, parts);
			if (st != MONEY_OK)
			{
				if (sum_ok)
					DIAG("allocate %" PRId64 " n=%d returned %s", total, n, status_name(st));
				sum_ok = ref_ok = false;
				continue;
			}
			ref_allocate(total, ratios, n, want);
			for (int i = 0; i < n; i++)
			{
				sum += parts[i];
				if (ratios[i] == 0 && parts[i] != 0)
					zero_ok = false;
				if ((total > 0 && parts[i] < 0) || (total < 0 && parts[i] > 0))
					sign_ok = false;
				if (parts[i] != want[i])
				{
					if (ref_ok)
						DIAG("allocate %" PRId64 " n=%d: part %d is %" PRId64 ", want %" PRId64,
							 total, n, i, parts[i], want[i]);
					ref_ok = false;
				}
			}
			if (sum != total)
			{
				if (sum_ok)
					DIAG("allocate %" PRId64 " n=%d: parts add up to something else", total, n);
				sum_ok = false;
			}
		}
		OK(sum_ok, "allocate: parts add up to the total (%d random cases)", iters);
		OK(ref_ok, "allocate: largest remainder, ties to earlier parts (%d random cases)", iters);
		OK(zero_ok, "allocate: a zero ratio always gets 0");
		OK(sign_ok, "allocate: no part has the opposite sign of the total");
	}
}

/* --------------------------------------------------------------- codes */

static void
code_ok(const char *s, size_t len, const char *want)
{
	MoneyCode	c;
	char	   *copy = malloc(len ? len : 1);
	MoneyStatus st;

	memcpy(copy, s, len);
	memset(&c, 'Q', sizeof(c));
	st = money_code_from_text(copy, len, &c);
	free(copy);
	if (!OK(st == MONEY_OK && code_is(&c, want), "code_from_text '%s' -> %s", show(s, len), want))
		DIAG("got %s '%s'", status_name(st), show(c.c, 8));
}

static void
code_bad(const char *s, size_t len)
{
	MoneyCode	c;
	char	   *copy = malloc(len ? len : 1);
	MoneyStatus st;

	memcpy(copy, s, len);
	st = money_code_from_text(copy, len, &c);
	free(copy);
	if (!OK(st == MONEY_ERR_CODE, "code_from_text '%s' -> CODE", show(s, len)))
		DIAG("got %s", status_name(st));
}

static int
sgn(int x)
{
	return (x > 0) - (x < 0);
}

static void
test_codes(void)
{
	code_ok("USD", 3, "USD");
	code_ok("usd", 3, "USD");
	code_ok("uSd", 3, "USD");
	code_ok("a1b", 3, "A1B");
	code_ok("coin", 4, "COIN");
	code_ok("Diamond", 7, "DIAMOND");
	code_ok("abcdefgh", 8, "ABCDEFGH");
	code_ok("Z9999999", 8, "Z9999999");
	code_ok("USDX", 3, "USD");		/* only len bytes */
	code_bad("", 0);
	code_bad("US", 2);
	code_bad("abcdefghi", 9);
	code_bad("1AB", 3);
	code_bad("U$D", 3);
	code_bad("US D", 4);
	code_bad("USD ", 4);
	code_bad(" USD", 4);
	code_bad("US_D", 4);
	code_bad("US-D", 4);
	code_bad("USD\0", 4);
	code_bad("U\0D", 3);
	code_bad("\xc3\x9cSD", 4);
	code_bad("\xe9SD", 3);

	{
		char		buf[16];
		MoneyCode	c;

		memset(buf, 'Z', sizeof(buf));
		money_code_from_text("abcdefgh", 8, &c);
		money_code_to_cstring(&c, buf);
		OK(strcmp(buf, "ABCDEFGH") == 0 && buf[9] == 'Z',
		   "code_to_cstring of an 8-char code ('%s')", show(buf, strnlen(buf, 16)));
		memset(buf, 'Z', sizeof(buf));
		money_code_from_text("usd", 3, &c);
		money_code_to_cstring(&c, buf);
		OK(strcmp(buf, "USD") == 0, "code_to_cstring of USD ('%s')", show(buf, strnlen(buf, 16)));
		OK(c.c[3] == 0 && c.c[4] == 0 && c.c[5] == 0 && c.c[6] == 0 && c.c[7] == 0,
		   "code_from_text NUL-pads");
	}

	{
		static const char *const pairs[][2] = {
			{"USD", "USD"}, {"EUR", "USD"}, {"USD", "EUR"}, {"USD", "USDA"}, {"USDA", "USD"},
			{"ABCDEFGH", "ABCDEFGZ"}, {"ABCDEFGH", "ABCDEFGH"}, {"A1B", "AAB"},
			{"AAA", "ZZZ"}, {"COIN", "DIAMOND"}, {"ZZZ", "AAAAAAAA"}
		};

		for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		{
			MoneyCode	a,
						b;
			int			want = sgn(strcmp(pairs[i][0], pairs[i][1]));

			money_code_from_text(pairs[i][0], strlen(pairs[i][0]), &a);
			money_code_from_text(pairs[i][1], strlen(pairs[i][1]), &b);
			OK(sgn(money_code_cmp(&a, &b)) == want && money_code_eq(&a, &b) == (want == 0),
			   "code cmp/eq %s vs %s (%d)", pairs[i][0], pairs[i][1], want);
		}
	}
}

/* ----------------------------------------------------------- ISO table */

static void
iso_is(const char *code, int mu)
{
	MoneyCode	c = code_of(code);
	const MoneyIsoCurrency *e = money_iso_find(&c);

	OK(e != NULL && strcmp(e->code, code) == 0 && e->minor_units == mu &&
	   money_iso_lookup(&c, NULL) == mu,
	   "ISO %s has %d minor units", code, mu);
}

static void
test_iso(void)
{
	size_t		n = money_iso_count();
	bool		sorted = true,
				shape = true,
				units = true,
				findable = true;

	OK(n > 150 && n < 400, "ISO table has %zu currencies", n);
	for (size_t i = 0; i < n; i++)
	{
		const MoneyIsoCurrency *e = money_iso_at(i);
		MoneyCode	c;

		if (e == NULL || e->code == NULL || e->name == NULL || e->name[0] == '\0' ||
			strlen(e->code) != 3 || money_code_from_text(e->code, 3, &c) != MONEY_OK ||
			!code_is(&c, e->code))
		{
			shape = false;
			DIAG("entry %zu malformed", i);
			continue;
		}
		if (e->minor_units < 0 || e->minor_units > 4)
			units = false;
		if (i > 0 && money_iso_at(i - 1) != NULL &&
			strcmp(money_iso_at(i - 1)->code, e->code) >= 0)
			sorted = false;
		if (money_iso_find(&c) != e || money_iso_lookup(&c, NULL) != e->minor_units)
			findable = false;
	}
	OK(shape, "every ISO entry has a 3-letter upper-case code and a name");
	OK(sorted, "ISO table sorted strictly ascending");
	OK(units, "every ISO minor_units in 0..4");
	OK(findable, "money_iso_find finds every entry of money_iso_at");
	OK(money_iso_at(n) == NULL, "money_iso_at(count) is NULL");

	iso_is("USD", 2);
	iso_is("EUR", 2);
	iso_is("JPY", 0);
	iso_is("BHD", 3);
	iso_is("KWD", 3);
	iso_is("CLF", 4);
	iso_is("UYW", 4);
	iso_is("ISK", 0);
	iso_is("KRW", 0);
	iso_is("VND", 0);
	iso_is("XAU", 0);
	iso_is("XXX", 0);

	{
		static const char *const absent[] = {"COIN", "AAA", "ZZZ", "USDA", "USDUSDUS", "US1"};

		for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		{
			MoneyCode	c = code_of(absent[i]);

			OK(money_iso_find(&c) == NULL && money_iso_lookup(&c, NULL) == -1,
			   "'%s' not in the ISO table", absent[i]);
		}
	}
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);	/* keep TAP lines and sanitizer reports in order */
	test_parse_valid();
	test_parse_errors();
	test_parse_limits();
	test_format();
	test_round_trip();
	test_arith();
	test_div_round();
	test_rounding_names();
	test_allocate();
	test_codes();
	test_iso();
	test_div_round_int128_extremes();

	printf("1..%d\n", n_tests);
	if (n_failed)
		printf("# %d of %d assertions failed\n", n_failed, n_tests);
	return n_failed ? 1 : 0;
}
