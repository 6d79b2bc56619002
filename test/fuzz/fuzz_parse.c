/*
 * fuzz_parse.c — libFuzzer target for the money core (src/money.h).
 *
 * Built by `make test/fuzz/fuzz_parse`, run by test/fuzz/fuzz.sh.  Every
 * input is used three ways:
 *   1. money_parse of all the bytes (ISO plus COIN/DIAMOND and a few test
 *      units); on success the value must format to fewer than
 *      MONEY_FORMAT_BUFLEN bytes and re-parse to the same units, code and
 *      minor units, and formatting again must give the same text;
 *   2. money_code_from_text of all the bytes: on success the code matches
 *      [A-Z][A-Z0-9]{2,7};
 *   3. money_allocate of a total (first 8 bytes) by ratios from the rest
 *      (4 bytes each, up to 32): an error exactly when the ratios are
 *      invalid, otherwise the parts add up to the total, a zero ratio gets
 *      0 and no part has the wrong sign; plus money_div_round of the same
 *      bytes, which must lie between floor and ceiling.
 * Any violated invariant calls abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "money.h"

static int
fuzz_lookup(const MoneyCode *code, void *arg)
{
	static const struct
	{
		char		code[MONEY_CODE_MAX];
		int			mu;
	}			extra[] = {
		{"COIN", 0}, {"DIAMOND", 0}, {"MICRO", 18}, {{'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'}, 5}
	};

	(void) arg;
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		if (memcmp(extra[i].code, code->c, MONEY_CODE_MAX) == 0)
			return extra[i].mu;
	return money_iso_lookup(code, NULL);
}

static void
check_code(const MoneyCode *c)
{
	size_t		len = 0;

	while (len < MONEY_CODE_MAX && c->c[len] != '\0')
		len++;
	if (len < MONEY_CODE_MIN || !(c->c[0] >= 'A' && c->c[0] <= 'Z'))
		abort();
	for (size_t i = 1; i < MONEY_CODE_MAX; i++)
	{
		char		ch = c->c[i];

		if (i < len ? !((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) : ch != '\0')
			abort();
	}
}

static void
fuzz_parse(const uint8_t *data, size_t size)
{
	int64_t		units,
				units2;
	MoneyCode	code,
				code2;
	int			mu,
				mu2;
	char		buf[MONEY_FORMAT_BUFLEN],
				buf2[MONEY_FORMAT_BUFLEN];
	size_t		len,
				len2;
	char	   *copy = malloc(size ? size : 1);		/* exact size: ASan sees over-reads */

	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	if (money_parse(copy, size, fuzz_lookup, NULL, &units, &code, &mu) != MONEY_OK)
	{
		free(copy);
		return;
	}
	free(copy);
	check_code(&code);
	if (mu < 0 || mu > MONEY_MAX_MINOR_UNITS || fuzz_lookup(&code, NULL) != mu)
		abort();

	len = money_format(units, mu, &code, buf);
	if (len >= MONEY_FORMAT_BUFLEN || strlen(buf) != len)
		abort();
	if (money_parse(buf, len, fuzz_lookup, NULL, &units2, &code2, &mu2) != MONEY_OK ||
		units2 != units || !money_code_eq(&code, &code2) || mu2 != mu)
		abort();
	len2 = money_format(units2, mu2, &code2, buf2);
	if (len2 != len || memcmp(buf, buf2, len + 1) != 0)
		abort();
}

static void
fuzz_code(const uint8_t *data, size_t size)
{
	MoneyCode	c;
	char		s[MONEY_CODE_MAX + 1];

	if (money_code_from_text((const char *) data, size, &c) != MONEY_OK)
		return;
	check_code(&c);
	money_code_to_cstring(&c, s);
	if (strlen(s) != size || money_code_cmp(&c, &c) != 0 || !money_code_eq(&c, &c))
		abort();
}

static void
fuzz_allocate(const uint8_t *data, size_t size)
{
	int64_t		total;
	int32_t		ratios[32];
	int64_t		parts[32];
	int			n;
	bool		valid = true,
				nonzero = false;
	__int128	sum = 0;
	MoneyStatus st;

	if (size < 9)
		return;
	memcpy(&total, data, 8);
	n = (int) ((size - 8) / 4);
	if (n > 32)
		n = 32;
	for (int i = 0; i < n; i++)
	{
		uint32_t	v;

		memcpy(&v, data + 8 + 4 * i, 4);
		/* low byte 0xff: keep raw (maybe negative); else mostly small ratios */
		if ((v & 0xff) == 0xff)
			ratios[i] = (int32_t) v;
		else if (v & 0x100)
			ratios[i] = (int32_t) (v & 0x7fffffff);
		else
			ratios[i] = (int32_t) ((v >> 9) % 16);
		if (ratios[i] < 0)
			valid = false;
		if (ratios[i] != 0)
			nonzero = true;
	}
	valid = valid && nonzero && n >= 1;
	st = money_allocate(total, ratios, n, parts);
	if (!valid)
	{
		if (st != MONEY_ERR_ARGUMENT)
			abort();
		return;
	}
	if (st != MONEY_OK)
		abort();
	for (int i = 0; i < n; i++)
	{
		sum += parts[i];
		if (ratios[i] == 0 && parts[i] != 0)
			abort();
		if ((total > 0 && parts[i] < 0) || (total < 0 && parts[i] > 0))
			abort();
	}
	if (sum != total)
		abort();
}

static void
fuzz_div(const uint8_t *data, size_t size)
{
	int64_t		a,
				b,
				r[5];
	MoneyStatus st[5];
	__int128	num,
				den,
				q,
				fl,
				ce;

	if (size < 16)
		return;
	memcpy(&a, data, 8);
	memcpy(&b, data + 8, 8);
	num = (__int128) a * (size > 16 ? data[16] + 1 : 1);
	den = b;
	for (int m = 0; m < 5; m++)
		st[m] = money_div_round(num, den, (MoneyRounding) m, &r[m]);
	if (den == 0)
	{
		for (int m = 0; m < 5; m++)
			if (st[m] != MONEY_ERR_ARGUMENT)
				abort();
		return;
	}
	q = num / den;
	fl = (num % den != 0 && ((num < 0) != (den < 0))) ? q - 1 : q;
	ce = (num % den != 0) ? fl + 1 : fl;
	for (int m = 0; m < 5; m++)
	{
		if (st[m] == MONEY_OK)
		{
			if (r[m] < fl || r[m] > ce)
				abort();
		}
		else if (st[m] != MONEY_ERR_OVERFLOW)
			abort();
	}
	if ((st[MONEY_ROUND_FLOOR] == MONEY_OK) != (fl >= INT64_MIN && fl <= INT64_MAX) ||
		(st[MONEY_ROUND_CEILING] == MONEY_OK) != (ce >= INT64_MIN && ce <= INT64_MAX))
		abort();
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parse(data, size);
	fuzz_code(data, size);
	fuzz_allocate(data, size);
	fuzz_div(data, size);
	return 0;
}
