/*
 * test/harness/harness_util.h — what the libpq harness clients
 * (wallet_storm.c, wallet_crash.c) share: a monotonic clock, a per-thread
 * xorshift64* generator (reproducible from a seed) and failure messages
 * capped at MAX_MESSAGES a run.  Define HARNESS_NAME (the prefix of every
 * message) and MAX_MESSAGES before including it.
 */
#ifndef HARNESS_UTIL_H
#define HARNESS_UTIL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static atomic_int messages_printed;

static inline double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Prints a failure message, only the first MAX_MESSAGES of the run. */
static inline void
report(const char *fmt,...)
{
	va_list		ap;

	if (atomic_fetch_add(&messages_printed, 1) >= MAX_MESSAGES)
		return;
	va_start(ap, fmt);
	flockfile(stderr);
	fputs(HARNESS_NAME ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
	va_end(ap);
}

/* xorshift64*: one state per thread */
static inline uint64_t
rnd(uint64_t *s)
{
	uint64_t	x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* uniform in [lo, hi] */
static inline int64_t
rnd_range(uint64_t *s, int64_t lo, int64_t hi)
{
	return lo + (int64_t) (rnd(s) % (uint64_t) (hi - lo + 1));
}

#endif							/* HARNESS_UTIL_H */
