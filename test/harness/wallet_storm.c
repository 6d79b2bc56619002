/*
 * wallet_storm.c — concurrency load generator for the wallet extension.
 * Owned by test/harness/ (built and driven by test/harness/concurrency.sh).
 *
 * N threads, one libpq connection each, fire autocommit postings
 * (`wallet.transfer` / `wallet.post`, always through PQexecParams with
 * parameters) at a database prepared by concurrency.sh, and classify every
 * error by SQLSTATE:
 *   - business errors the mode provokes on purpose are counted as such:
 *     WL001 insufficient funds; WL006 idempotency conflict only where keys
 *     are reused with a different request; WL008 hold not pending and
 *     WL010 already reversed where clients race to end one hold or
 *     reverse one transaction;
 *   - 40P01 (deadlock) and anything else are failures; the first few
 *     messages are printed to stderr.
 * The program also checks, while it runs, what only a client can see
 * (same id for the same key across clients, one winner per conflicting
 * key, hot balance exact right after each commit and never negative, a
 * hold ended at most once), and writes what it got back so the shell
 * can check the database:
 *   --keys FILE    one "key txn_id" line per successful call;
 *   --deltas FILE  one "account_id units" line: the net change each account
 *                  must have from the postings listed in the keys file.
 * Last stdout line: "mode=... posted=... wl001=... wl006=... wl008=... wl010=...
 * deadlocks=... unexpected=... check_failures=... postings_per_s=...";
 * earlier lines starting "# " are comments.  Exit 0 when no failure, 1
 * otherwise, 2 on a usage or setup error.
 *
 * Accounts are found by kind (concurrency.sh opens them, all USD):
 *   storm_bank (allow_negative, the counter-party of all funding),
 *   storm_few (a few contended), storm_many (thousands), storm_retry,
 *   storm_hot (the hot creator), storm_fee (hot fee account), storm_viewer.
 *
 * Modes:
 *   mixed  transfers both ways among the few accounts, 3-leg posts over
 *          them, transfers among the many, refills from the bank, and
 *          reversals of recent postings raced by several clients (WL010);
 *   retry  rounds behind a barrier: every client sends the same keys with
 *          the same requests (all must return one id, no error at all);
 *          every 4th round the requests differ per client (exactly one
 *          request wins, the others get WL006 or the same id if equal);
 *   hot    credits (transfers and 3-leg gifts) from viewers to one hot
 *          account and a hot fee account, debits from the hot account
 *          racing them near its balance, a folder thread calling
 *          wallet.fold_hot() every 50 ms, checker threads reading the
 *          balance right after their own commit;
 *   holds  holds on the few accounts racing transfers out of them, several
 *          clients capturing (all or part) / voiding the same hold (WL008),
 *          expiring holds and a housekeeper calling wallet.expire_holds();
 *   batch  wallet.transfer_batch with 100 items a call, items repeated
 *          across concurrent batches (see mode_batch).
 * A new mode is a thread function plus a row in modes[].
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define MAX_CLIENTS		256
#define MAX_LEGS		8
#define MAX_MESSAGES	8		/* failure messages printed in full */
#define RETRY_KEYS		8		/* requests per retry round */
#define HARNESS_NAME	"wallet_storm"

#include "harness_util.h"

/* ------------------------------------------------------------ options */

typedef struct Options
{
	const char *conninfo;
	const char *mode;
	const char *keys_path;
	const char *deltas_path;
	const char *tag;			/* prefix of every idempotency key */
	int			clients;
	double		seconds;
	long		ops;			/* per client; 0 = use seconds */
	uint64_t	seed;
} Options;

static Options opt = {
	.conninfo = "", .mode = "mixed", .clients = 16, .seconds = 10, .ops = 0, .seed = 1,
};

/* ------------------------------------------------------------ accounts */

typedef enum Role
{
	ROLE_BANK, ROLE_FEW, ROLE_MANY, ROLE_RETRY, ROLE_HOT, ROLE_FEE, ROLE_VIEWER, NROLES
} Role;

static const char *const role_kind[NROLES] = {
	"storm_bank", "storm_few", "storm_many", "storm_retry", "storm_hot", "storm_fee", "storm_viewer",
};

static int64_t *role_ids[NROLES];
static int	role_n[NROLES];

/* every storm account, sorted: index into the per-thread delta arrays */
static int64_t *all_ids;
static int	nall;

static int
account_index(int64_t id)
{
	int			lo = 0,
				hi = nall - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (all_ids[mid] == id)
			return mid;
		if (all_ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	fprintf(stderr, "wallet_storm: account %" PRId64 " is not a storm account\n", id);
	abort();
}

/* ------------------------------------------------------------ counters */

/*
 * What one call ended as: success, one of the business errors a mode may
 * provoke on purpose (counted when the caller expects it), or a failure.
 */
typedef enum Outcome
{
	OUT_OK,
	OUT_WL001,					/* insufficient funds */
	OUT_WL006,					/* idempotency conflict */
	OUT_WL008,					/* hold not pending */
	OUT_WL010,					/* already reversed */
	OUT_FAIL
} Outcome;

#define NBUSINESS (OUT_FAIL - OUT_WL001)
static const char *const business_state[NBUSINESS] = {"WL001", "WL006", "WL008", "WL010"};
static const char *const business_name[NBUSINESS] = {"wl001", "wl006", "wl008", "wl010"};

#define EXPECT(o) (1 << (o))

typedef struct Stats
{
	long		posted;			/* calls that returned a transaction id */
	long		existed;		/* batch rows that found their key posted */
	long		business[NBUSINESS];	/* expected business errors */
	long		deadlocks;
	long		unexpected;
	long		check_failures;
	long		reads;			/* balance reads checked */
	long		housekept;		/* credits folded / holds expired */
} Stats;

static atomic_bool stop_flag;
static FILE *keys_file;
static double started_at;

/* ------------------------------------------------------------ workers */

typedef struct Worker
{
	int			no;
	PGconn	   *conn;
	uint64_t	rng;
	Stats		st;
	int64_t    *delta;			/* per account index, units */
	long		seq;			/* key counter */
	pthread_t	thread;
} Worker;

static Worker workers[MAX_CLIENTS + 1];	/* + the hot mode's folder */

static uint64_t
seed_for(uint64_t a, uint64_t b)
{
	uint64_t	s = (opt.seed + 1) * 0x9E3779B97F4A7C15ULL ^ (a * 0xBF58476D1CE4E5B9ULL) ^ (b * 0x94D049BB133111EBULL);

	return s ? s : 1;
}

static int64_t
pick(Worker *w, Role r)
{
	return role_ids[r][rnd(&w->rng) % (uint64_t) role_n[r]];
}

static bool
time_is_up(long done)
{
	if (atomic_load(&stop_flag))
		return true;
	if (opt.ops > 0)
		return done >= opt.ops;
	return now_seconds() - started_at >= opt.seconds;
}

/* "12.34 USD" for units of a 2-decimal currency */
static void
fmt_amount(char *buf, size_t len, int64_t units)
{
	uint64_t	a = units < 0 ? -(uint64_t) units : (uint64_t) units;

	snprintf(buf, len, "%s%" PRIu64 ".%02" PRIu64 " USD", units < 0 ? "-" : "", a / 100, a % 100);
}

static PGconn *
connect_db(void)
{
	const char *const kw[] = {"dbname", "application_name", "options", NULL};
	/* a statement stuck for 60 s is a hang: fail it instead of waiting */
	const char *const val[] = {opt.conninfo, "wallet_storm", "-c statement_timeout=60s", NULL};
	PGconn	   *c = PQconnectdbParams(kw, val, 1);

	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "wallet_storm: connection failed: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/*
 * Runs one parameterised statement; on success *out holds the result (the
 * caller clears it).  Errors are classified and counted here: a business
 * error is expected when EXPECT(OUT_WLnnn) is in expect.
 */
static Outcome
exec(Worker *w, const char *what, const char *sql, int n, const char *const *params,
	 int expect, PGresult **out)
{
	PGresult   *res = PQexecParams(w->conn, sql, n, NULL, params, NULL, NULL, 0);
	const char *state;
	Outcome		o;

	*out = NULL;
	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		*out = res;
		return OUT_OK;
	}
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	o = OUT_FAIL;
	for (int b = 0; b < NBUSINESS && state; b++)
		if (strcmp(state, business_state[b]) == 0 && (expect & EXPECT(OUT_WL001 + b)))
		{
			w->st.business[b]++;
			o = OUT_WL001 + b;
		}
	if (o == OUT_FAIL)
	{
		if (state && strcmp(state, "40P01") == 0)
			w->st.deadlocks++;
		else
			w->st.unexpected++;
		report("client %d: %s: SQLSTATE %s: %s", w->no, what, state ? state : "(none)",
			   res ? PQresultErrorMessage(res) : PQerrorMessage(w->conn));
		if (PQstatus(w->conn) != CONNECTION_OK)
			PQreset(w->conn);
	}
	PQclear(res);
	return o;
}

typedef struct Leg
{
	int64_t		account;
	int64_t		units;
} Leg;

static void
make_key(Worker *w, char *key, size_t len, const char *what)
{
	snprintf(key, len, "%s/%s/%s/c%d/%ld", opt.tag, opt.mode, what, w->no, w->seq++);
}

static void
record_key(const char *key, int64_t txn)
{
	fprintf(keys_file, "%s %" PRId64 "\n", key, txn);
}

static void
add_deltas(int64_t *delta, const Leg *legs, int n)
{
	for (int i = 0; i < n; i++)
		delta[account_index(legs[i].account)] += legs[i].units;
}

static int64_t
first_int8(PGresult *res)
{
	int64_t		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);

	PQclear(res);
	return v;
}

/*
 * Posts legs under key: a 2-leg debit/credit pair goes through
 * wallet.transfer, anything else through wallet.post.  On success the
 * deltas are counted (unless count is false) and the key is recorded.
 */
static Outcome
posting(Worker *w, const char *key, const Leg *legs, int n, int expect, bool count, int64_t *txn)
{
	PGresult   *res;
	Outcome		o;
	char		amt[64];

	if (n == 2 && legs[0].units < 0 && legs[1].units == -legs[0].units)
	{
		char		from[24],
					to[24];
		const char *p[4] = {from, to, amt, key};

		snprintf(from, sizeof(from), "%" PRId64, legs[0].account);
		snprintf(to, sizeof(to), "%" PRId64, legs[1].account);
		fmt_amount(amt, sizeof(amt), legs[1].units);
		o = exec(w, "transfer", "SELECT wallet.transfer($1, $2, $3::wallet.amount, $4)",
				 4, p, expect, &res);
	}
	else
	{
		/* {"(1,\"-5.00 USD\")","(2,\"5.00 USD\")"} */
		char		arr[MAX_LEGS * 64 + 4];
		size_t		len = 0;
		const char *p[2] = {key, arr};

		arr[len++] = '{';
		for (int i = 0; i < n; i++)
		{
			fmt_amount(amt, sizeof(amt), legs[i].units);
			len += snprintf(arr + len, sizeof(arr) - len, "%s\"(%" PRId64 ",\\\"%s\\\")\"",
							i ? "," : "", legs[i].account, amt);
		}
		snprintf(arr + len, sizeof(arr) - len, "}");
		o = exec(w, "post", "SELECT wallet.post($1, $2::wallet.leg[])", 2, p, expect, &res);
	}
	if (o != OUT_OK)
		return o;
	*txn = first_int8(res);
	w->st.posted++;
	if (count)
		add_deltas(w->delta, legs, n);
	record_key(key, *txn);
	return OUT_OK;
}

static void
shuffle_legs(Worker *w, Leg *legs, int n)
{
	for (int i = n - 1; i > 0; i--)
	{
		int			j = (int) (rnd(&w->rng) % (uint64_t) (i + 1));
		Leg			t = legs[i];

		legs[i] = legs[j];
		legs[j] = t;
	}
}

/* three distinct accounts of a role */
static void
pick3(Worker *w, Role r, int64_t *a, int64_t *b, int64_t *c)
{
	*a = pick(w, r);
	do
		*b = pick(w, r);
	while (*b == *a);
	do
		*c = pick(w, r);
	while (*c == *a || *c == *b);
}

/* ------------------------------------------------------------ mode: mixed */

/*
 * The last postings of the mixed mode, for reversals: several clients pick
 * the same one at once, exactly one reversal may win (the others: WL010).
 */
#define RECENT	64
typedef struct Recent
{
	int64_t		txn;			/* 0: empty */
	Leg			legs[3];
	int			n;
} Recent;

static Recent recent[RECENT];
static long recent_next;
static pthread_mutex_t recent_lock = PTHREAD_MUTEX_INITIALIZER;

static void
remember(int64_t txn, const Leg *legs, int n)
{
	pthread_mutex_lock(&recent_lock);
	recent[recent_next % RECENT].txn = txn;
	memcpy(recent[recent_next % RECENT].legs, legs, sizeof(Leg) * n);
	recent[recent_next % RECENT].n = n;
	recent_next++;
	pthread_mutex_unlock(&recent_lock);
}

/* reverses one of the 8 latest postings; its legs, negated, are counted */
static void
reverse_recent(Worker *w)
{
	Recent		r;
	char		id[24],
				key[160];
	const char *p[2] = {id, key};
	PGresult   *res;

	pthread_mutex_lock(&recent_lock);
	r = recent[(recent_next + RECENT - 1 - rnd_range(&w->rng, 0, 7)) % RECENT];
	pthread_mutex_unlock(&recent_lock);
	if (r.txn == 0)
		return;
	snprintf(id, sizeof(id), "%" PRId64, r.txn);
	make_key(w, key, sizeof(key), "reverse");
	if (exec(w, "reverse", "SELECT wallet.reverse($1, $2)", 2, p,
			 EXPECT(OUT_WL001) | EXPECT(OUT_WL010), &res) != OUT_OK)
		return;
	record_key(key, first_int8(res));
	w->st.posted++;
	for (int i = 0; i < r.n; i++)
		r.legs[i].units = -r.legs[i].units;
	add_deltas(w->delta, r.legs, r.n);
}

static void *
mode_mixed(void *arg)
{
	Worker	   *w = arg;
	char		key[160];
	int64_t		txn;

	for (long done = 0; !time_is_up(done); done++)
	{
		int			r = (int) rnd_range(&w->rng, 0, 99);
		Leg			legs[3];
		int			n = 2;

		if (r < 3)
		{
			reverse_recent(w);
			continue;
		}
		if (r < 40)
		{
			/* the few contended accounts, both ways, up to 20.00 */
			pick3(w, ROLE_FEW, &legs[0].account, &legs[1].account, &legs[2].account);
			legs[1].units = rnd_range(&w->rng, 1, 2000);
			legs[0].units = -legs[1].units;
			make_key(w, key, sizeof(key), "few");
		}
		else if (r < 60)
		{
			/* 3-leg post over the few: one debit two credits or the reverse */
			int64_t		t = rnd_range(&w->rng, 2, 3000),
						x = rnd_range(&w->rng, 1, t - 1),
						sign = (r & 1) ? 1 : -1;

			pick3(w, ROLE_FEW, &legs[0].account, &legs[1].account, &legs[2].account);
			legs[0].units = -t * sign;
			legs[1].units = x * sign;
			legs[2].units = (t - x) * sign;
			n = 3;
			shuffle_legs(w, legs, n);
			make_key(w, key, sizeof(key), "post3");
		}
		else if (r < 98)
		{
			/* many accounts, little contention, up to 5.00 */
			pick3(w, ROLE_MANY, &legs[0].account, &legs[1].account, &legs[2].account);
			legs[1].units = rnd_range(&w->rng, 1, 500);
			legs[0].units = -legs[1].units;
			make_key(w, key, sizeof(key), "many");
		}
		else
		{
			/* refill from the bank (allow_negative): every lock order mixes */
			legs[0].account = role_ids[ROLE_BANK][0];
			legs[1].account = (r & 1) ? pick(w, ROLE_FEW) : pick(w, ROLE_MANY);
			legs[1].units = rnd_range(&w->rng, 1, 1000);
			legs[0].units = -legs[1].units;
			make_key(w, key, sizeof(key), "bank");
		}
		if (posting(w, key, legs, n, EXPECT(OUT_WL001), true, &txn) == OUT_OK && r < 60)
			remember(txn, legs, n);
	}
	return NULL;
}

/* ------------------------------------------------------------ mode: retry */

/*
 * Round state shared by all clients: what each client sent for each key and
 * what came back.  Reset by the barrier's serial thread between rounds.
 */
typedef struct RetrySlot
{
	Leg			legs[3];
	int			n;
	int			variant;
	Outcome		out;
	int64_t		txn;
} RetrySlot;

static pthread_barrier_t barrier;
static RetrySlot retry_slots[RETRY_KEYS][MAX_CLIENTS];
static long retry_round;
static int64_t *retry_delta;	/* the winners' legs, counted once per key */

/* Request j of this round as client c sends it (variant differs per client
 * in conflict rounds). */
static void
retry_request(long round, int j, int c, bool conflict, RetrySlot *s)
{
	uint64_t	g = seed_for((uint64_t) round + 1000, (uint64_t) j);
	int64_t		t = 1 + (int64_t) (rnd(&g) % 100);
	int64_t		a,
				b,
				cc;

	a = role_ids[ROLE_RETRY][rnd(&g) % (uint64_t) role_n[ROLE_RETRY]];
	do
		b = role_ids[ROLE_RETRY][rnd(&g) % (uint64_t) role_n[ROLE_RETRY]];
	while (b == a);
	do
		cc = role_ids[ROLE_RETRY][rnd(&g) % (uint64_t) role_n[ROLE_RETRY]];
	while (cc == a || cc == b);
	s->variant = conflict ? c % 3 : 0;
	t += s->variant;
	if (rnd(&g) % 10 < 7)
	{
		s->n = 2;
		s->legs[0] = (Leg) {a, -t};
		s->legs[1] = (Leg) {b, t};
	}
	else
	{
		s->n = 3;
		s->legs[0] = (Leg) {a, -(t + 1)};
		s->legs[1] = (Leg) {b, t};
		s->legs[2] = (Leg) {cc, 1};
	}
}

/* Serial thread, after a round: every key's outcomes must agree. */
static void
retry_check_round(Worker *w)
{
	for (int j = 0; j < RETRY_KEYS; j++)
	{
		int			winner = -1;

		for (int c = 0; c < opt.clients; c++)
			if (retry_slots[j][c].out == OUT_OK)
			{
				if (winner < 0)
					winner = c;
				else if (retry_slots[j][c].txn != retry_slots[j][winner].txn)
				{
					w->st.check_failures++;
					report("retry round %ld key %d: client %d got txn %" PRId64 ", client %d got %" PRId64,
						   retry_round, j, winner, retry_slots[j][winner].txn, c, retry_slots[j][c].txn);
				}
			}
		if (winner < 0)
		{
			/* the failures themselves were counted and printed by exec() */
			w->st.check_failures++;
			report("retry round %ld key %d: no client got a transaction id", retry_round, j);
			continue;
		}
		add_deltas(retry_delta, retry_slots[j][winner].legs, retry_slots[j][winner].n);
		for (int c = 0; c < opt.clients; c++)
		{
			RetrySlot  *s = &retry_slots[j][c];
			bool		same = s->variant == retry_slots[j][winner].variant;

			if (s->out == OUT_FAIL)
				continue;		/* counted already */
			if (same && s->out != OUT_OK)
			{
				w->st.check_failures++;
				report("retry round %ld key %d: client %d sent the winning request and got WL006",
					   retry_round, j, c);
			}
			else if (!same && s->out != OUT_WL006)
			{
				w->st.check_failures++;
				report("retry round %ld key %d: client %d sent a different request and got %s",
					   retry_round, j, c, s->out == OUT_OK ? "a transaction id" : business_state[s->out - OUT_WL001]);
			}
		}
	}
	memset(retry_slots, 0, sizeof(retry_slots));
}

static void *
mode_retry(void *arg)
{
	Worker	   *w = arg;
	int			order[RETRY_KEYS];
	char		key[160];

	for (;;)
	{
		long		round;
		bool		conflict;

		pthread_barrier_wait(&barrier);
		if (atomic_load(&stop_flag))
			break;
		round = retry_round;
		conflict = round % 4 == 3;
		/* each client walks the same keys in its own order */
		for (int j = 0; j < RETRY_KEYS; j++)
			order[j] = j;
		for (int j = RETRY_KEYS - 1; j > 0; j--)
		{
			int			k = (int) (rnd(&w->rng) % (uint64_t) (j + 1)),
						t = order[j];

			order[j] = order[k];
			order[k] = t;
		}
		for (int i = 0; i < RETRY_KEYS; i++)
		{
			int			j = order[i];
			RetrySlot  *s = &retry_slots[j][w->no];

			retry_request(round, j, w->no, conflict, s);
			snprintf(key, sizeof(key), "%s/retry/r%ld/k%d", opt.tag, round, j);
			s->out = posting(w, key, s->legs, s->n, conflict ? EXPECT(OUT_WL006) : 0, false, &s->txn);
		}
		if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
		{
			retry_check_round(w);
			retry_round++;
			if (opt.ops > 0 ? retry_round * RETRY_KEYS >= opt.ops
				: now_seconds() - started_at >= opt.seconds)
				atomic_store(&stop_flag, true);
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ mode: hot */

/*
 * Units credited to / debited from the hot account: "issued" is bumped
 * before the call is sent, "done" after it returned success.  For a read
 * of the balance B between two instants:
 *   base + done_credits(before) - issued_debits(after)
 *     <= B <= base + issued_credits(after) - done_debits(before)
 * i.e. every committed credit is visible right after its commit, and the
 * balance + debits never goes down.
 */
static atomic_llong hot_c_issued,
			hot_c_done,
			hot_d_issued,
			hot_d_done;
static int64_t hot_base;

static bool
read_units(Worker *w, const char *sql, int64_t id, int64_t *v)
{
	char		s[24];
	const char *p[1] = {s};
	PGresult   *res;

	snprintf(s, sizeof(s), "%" PRId64, id);
	if (exec(w, "read", sql, 1, p, 0, &res) != OUT_OK)
		return false;
	*v = first_int8(res);
	return true;
}

static bool
read_hot_balance(Worker *w, int64_t *v)
{
	return read_units(w, "SELECT wallet.units(wallet.balance($1))", role_ids[ROLE_HOT][0], v);
}

/* reads the hot balance and checks it against the bounds above */
static void
hot_check_read(Worker *w, int64_t *prev_low)
{
	long long	cd = atomic_load(&hot_c_done),
				dd = atomic_load(&hot_d_done);
	int64_t		b;
	long long	ci,
				di;

	if (!read_hot_balance(w, &b))
		return;
	ci = atomic_load(&hot_c_issued);
	di = atomic_load(&hot_d_issued);
	w->st.reads++;
	if (b < 0)
	{
		w->st.check_failures++;
		report("hot: balance %" PRId64 " is negative", b);
	}
	if (b < hot_base + cd - di || b > hot_base + ci - dd)
	{
		w->st.check_failures++;
		report("hot: balance %" PRId64 " outside [%lld, %lld] right after commits",
			   b, (long long) hot_base + cd - di, (long long) hot_base + ci - dd);
	}
	/* B + debits(committed) never decreases between two reads of a client */
	if (b + di < *prev_low)
	{
		w->st.check_failures++;
		report("hot: balance went down: %" PRId64 " + debits %lld < earlier %" PRId64,
			   b, di, *prev_low);
	}
	*prev_low = b + dd;
}

static void *
mode_hot(void *arg)
{
	Worker	   *w = arg;
	int64_t		hot = role_ids[ROLE_HOT][0];
	int64_t		fee = role_ids[ROLE_FEE][0];
	bool		debiter = w->no % 8 == 7;
	bool		checker = w->no % 8 == 3;
	int64_t		prev_low = INT64_MIN / 2;
	char		key[160];
	int64_t		txn;

	for (long done = 0; !time_is_up(done); done++)
	{
		Leg			legs[3];
		int			n = 2;

		if (debiter)
		{
			/* take (nearly) all of the balance: credits race, no overdraft */
			int64_t		b,
						amt;
			int			r = (int) rnd_range(&w->rng, 0, 9);

			if (!read_hot_balance(w, &b))
				continue;
			amt = r < 4 ? b : r < 7 ? b + rnd_range(&w->rng, 1, 100) : rnd_range(&w->rng, 1, b / 2 + 1);
			if (amt <= 0)
				amt = 1;
			legs[0] = (Leg) {hot, -amt};
			legs[1] = (Leg) {pick(w, ROLE_VIEWER), amt};
			make_key(w, key, sizeof(key), "debit");
			atomic_fetch_add(&hot_d_issued, amt);
			if (posting(w, key, legs, 2, EXPECT(OUT_WL001), true, &txn) == OUT_OK)
				atomic_fetch_add(&hot_d_done, amt);
			continue;
		}
		if (rnd_range(&w->rng, 0, 3) == 0)
		{
			/* a gift: viewer pays, creator and fee (both hot) are credited */
			int64_t		t = rnd_range(&w->rng, 2, 200),
						x = t / 2;

			legs[0] = (Leg) {pick(w, ROLE_VIEWER), -t};
			legs[1] = (Leg) {hot, x};
			legs[2] = (Leg) {fee, t - x};
			n = 3;
			shuffle_legs(w, legs, n);
			make_key(w, key, sizeof(key), "gift");
			atomic_fetch_add(&hot_c_issued, x);
			if (posting(w, key, legs, n, EXPECT(OUT_WL001), true, &txn) == OUT_OK)
				atomic_fetch_add(&hot_c_done, x);
		}
		else
		{
			int64_t		amt = rnd_range(&w->rng, 1, 100);

			legs[0] = (Leg) {pick(w, ROLE_VIEWER), -amt};
			legs[1] = (Leg) {hot, amt};
			make_key(w, key, sizeof(key), "credit");
			atomic_fetch_add(&hot_c_issued, amt);
			if (posting(w, key, legs, 2, EXPECT(OUT_WL001), true, &txn) == OUT_OK)
				atomic_fetch_add(&hot_c_done, amt);
		}
		if (checker)
			hot_check_read(w, &prev_low);
	}
	return NULL;
}

/*
 * The housekeeper (hot: wallet.fold_hot(), holds: wallet.expire_holds())
 * runs every ~50 ms in its own connection while the clients run.
 */
static const char *housekeeping_sql;

static void *
housekeeper(void *arg)
{
	Worker	   *w = arg;
	PGresult   *res;

	while (!atomic_load(&stop_flag))
	{
		if (exec(w, "housekeeping", housekeeping_sql, 0, NULL, 0, &res) == OUT_OK)
			w->st.housekept += first_int8(res);
		usleep(50 * 1000);
	}
	return NULL;
}

/* after the run: fold, then the balance must be exactly what was posted */
static void
hot_final_check(Worker *w)
{
	PGresult   *res;
	int64_t		b,
				pending;
	long long	expect = hot_base + atomic_load(&hot_c_done) - atomic_load(&hot_d_done);

	if (!read_hot_balance(w, &b))
		return;
	if (b != expect)
	{
		w->st.check_failures++;
		report("hot: balance %" PRId64 " before the final fold, expected %lld", b, expect);
	}
	if (exec(w, "fold_hot", "SELECT wallet.fold_hot()", 0, NULL, 0, &res) == OUT_OK)
		w->st.housekept += first_int8(res);
	if (!read_hot_balance(w, &b))
		return;
	if (b != expect)
	{
		w->st.check_failures++;
		report("hot: balance %" PRId64 " after the final fold, expected %lld", b, expect);
	}
	if (read_units(w, "SELECT count(*) FROM wallet.hot_pending WHERE account_id = $1",
				   role_ids[ROLE_HOT][0], &pending) && pending != 0)
	{
		w->st.check_failures++;
		report("hot: %" PRId64 " pending credits left after the final fold with no writer", pending);
	}
	printf("# hot: balance %" PRId64 " = start %" PRId64 " + credits %lld - debits %lld\n",
		   b, hot_base, (long long) atomic_load(&hot_c_done), (long long) atomic_load(&hot_d_done));
}

/* ------------------------------------------------------------ mode: batch */

/*
 * wallet.transfer_batch(from[], to[], amounts[], keys[]) → (idx, tx_id,
 * status), rows taken in idx order, one per item.  Items are transfers
 * among the few and the many accounts in random order; about 1 in 10
 * repeats an item (same key, same request) of a batch another client has
 * just sent, so concurrent batches wait on each other's keys while holding
 * row locks of their earlier items: the deadlock to look for.  Status ok
 * counts the item's legs; ok and exists record the key; insufficient_funds
 * counts as WL001; any other status is a failure.
 */
#define BATCH_SIZE	100
#define BATCH_SHARED 256

typedef struct BatchItem
{
	char		key[96];
	Leg			legs[2];
} BatchItem;

static BatchItem batch_shared[BATCH_SHARED];
static long batch_shared_next;
static pthread_mutex_t batch_lock = PTHREAD_MUTEX_INITIALIZER;

/* appends s to buf at *len, as an array element (quoted when asked) */
static void
append_elem(char *buf, size_t size, size_t *len, int i, const char *s, bool quote)
{
	*len += snprintf(buf + *len, size - *len, "%s%s%s%s", i ? "," : "{", quote ? "\"" : "", s,
					 quote ? "\"" : "");
}

static void *
mode_batch(void *arg)
{
	Worker	   *w = arg;
	static const size_t size = BATCH_SIZE * 100;
	char	   *from = malloc(size),
			   *to = malloc(size),
			   *amts = malloc(size),
			   *keys = malloc(size);
	BatchItem	items[BATCH_SIZE];
	const char *p[4] = {from, to, amts, keys};

	for (long done = 0; !time_is_up(done); done++)
	{
		size_t		lf = 0,
					lt = 0,
					la = 0,
					lk = 0;
		PGresult   *res;
		char		num[64];

		for (int i = 0; i < BATCH_SIZE; i++)
		{
			BatchItem  *it = &items[i];
			int			r = (int) rnd_range(&w->rng, 0, 99);

			bool		repeat = false;

			if (r < 10)
			{
				pthread_mutex_lock(&batch_lock);
				if (batch_shared_next > 0)
				{
					long		k = batch_shared_next - 1 - rnd_range(&w->rng, 0, 31);

					*it = batch_shared[(k < 0 ? 0 : k) % BATCH_SHARED];
					repeat = true;
				}
				pthread_mutex_unlock(&batch_lock);
			}
			if (!repeat)
			{
				Role		role = r < 40 ? ROLE_FEW : ROLE_MANY;
				int64_t		c;

				pick3(w, role, &it->legs[0].account, &it->legs[1].account, &c);
				it->legs[1].units = rnd_range(&w->rng, 1, role == ROLE_FEW ? 2000 : 500);
				it->legs[0].units = -it->legs[1].units;
				make_key(w, it->key, sizeof(it->key), "item");
			}
			snprintf(num, sizeof(num), "%" PRId64, it->legs[0].account);
			append_elem(from, size, &lf, i, num, false);
			snprintf(num, sizeof(num), "%" PRId64, it->legs[1].account);
			append_elem(to, size, &lt, i, num, false);
			fmt_amount(num, sizeof(num), it->legs[1].units);
			append_elem(amts, size, &la, i, num, true);
			append_elem(keys, size, &lk, i, it->key, true);
		}
		snprintf(from + lf, size - lf, "}");
		snprintf(to + lt, size - lt, "}");
		snprintf(amts + la, size - la, "}");
		snprintf(keys + lk, size - lk, "}");
		/* publish before sending: others repeat items of batches in flight */
		pthread_mutex_lock(&batch_lock);
		for (int i = 0; i < BATCH_SIZE; i += 7)
			batch_shared[batch_shared_next++ % BATCH_SHARED] = items[i];
		pthread_mutex_unlock(&batch_lock);

		if (exec(w, "transfer_batch",
				 "SELECT tx_id, status FROM wallet.transfer_batch($1::bigint[], $2::bigint[], "
				 "$3::wallet.amount[], $4::text[]) ORDER BY idx", 4, p, 0, &res) != OUT_OK)
			continue;
		if (PQntuples(res) != BATCH_SIZE)
		{
			w->st.check_failures++;
			report("transfer_batch returned %d rows for %d items", PQntuples(res), BATCH_SIZE);
			PQclear(res);
			continue;
		}
		for (int i = 0; i < BATCH_SIZE; i++)
		{
			const char *status = PQgetvalue(res, i, 1);
			int64_t		txn = strtoll(PQgetvalue(res, i, 0), NULL, 10);

			if (strcmp(status, "ok") == 0 || strcmp(status, "exists") == 0)
			{
				record_key(items[i].key, txn);
				if (status[0] == 'o')
				{
					w->st.posted++;
					add_deltas(w->delta, items[i].legs, 2);
				}
				else
					w->st.existed++;
			}
			else if (strcmp(status, "insufficient_funds") == 0)
				w->st.business[OUT_WL001 - OUT_WL001]++;
			else
			{
				w->st.unexpected++;
				report("client %d: transfer_batch item %d (%s): status %s", w->no, i,
					   items[i].key, status);
			}
		}
		PQclear(res);
	}
	free(from);
	free(to);
	free(amts);
	free(keys);
	return NULL;
}

/* ------------------------------------------------------------ mode: holds */

/*
 * Holds placed on the few accounts (to few or many), racing transfers out
 * of the same accounts (both draw on the available balance), and several
 * clients ending the same recent hold at once: full capture, partial
 * capture or void; exactly one may succeed (the others, and any end after
 * wallet.expire_holds() released it, get WL008).  Some holds expire after
 * 200 ms while the housekeeper runs wallet.expire_holds().  Readers check
 * that no available balance of a few account is ever negative.
 */
#define HOLD_CAP	(1 << 18)
typedef struct HoldRec
{
	int64_t		id,
				from,
				to,
				amount;
	atomic_int	ready;
	atomic_int	ended;			/* successful captures + voids seen */
} HoldRec;

static HoldRec *holds;
static atomic_long nholds;

static void
place_hold(Worker *w)
{
	char		from[24],
				to[24],
				amt[64],
				key[160];
	const char *p[5] = {from, to, amt, key, "200 milliseconds"};
	int64_t		units = rnd_range(&w->rng, 1, 3000),
				a = pick(w, ROLE_FEW),
				b,
				id;
	bool		expiring = rnd_range(&w->rng, 0, 4) == 0;
	PGresult   *res;
	long		slot;

	do
		b = rnd(&w->rng) & 1 ? pick(w, ROLE_FEW) : pick(w, ROLE_MANY);
	while (b == a);
	snprintf(from, sizeof(from), "%" PRId64, a);
	snprintf(to, sizeof(to), "%" PRId64, b);
	fmt_amount(amt, sizeof(amt), units);
	make_key(w, key, sizeof(key), "hold");
	if (exec(w, "hold", expiring
			 ? "SELECT wallet.hold($1, $2, $3::wallet.amount, $4, now() + $5::interval)"
			 : "SELECT wallet.hold($1, $2, $3::wallet.amount, $4)",
			 expiring ? 5 : 4, p, EXPECT(OUT_WL001), &res) != OUT_OK)
		return;
	id = first_int8(res);
	slot = atomic_fetch_add(&nholds, 1);
	if (slot >= HOLD_CAP)
		return;					/* enough holds to race on */
	holds[slot].id = id;
	holds[slot].from = a;
	holds[slot].to = b;
	holds[slot].amount = units;
	atomic_store(&holds[slot].ready, 1);
}

/* capture (all or part) or void one of the 16 latest holds */
static void
end_hold(Worker *w)
{
	long		n = atomic_load(&nholds);
	HoldRec    *h;
	char		id[24],
				amt[64],
				key[160];
	const char *p[2] = {id, amt};
	int			r = (int) rnd_range(&w->rng, 0, 9);
	int64_t		units;
	PGresult   *res;
	Outcome		o;

	if (n > HOLD_CAP)
		n = HOLD_CAP;
	if (n == 0)
		return;
	h = &holds[n - 1 - rnd_range(&w->rng, 0, n < 16 ? n - 1 : 15)];
	if (!atomic_load(&h->ready))
		return;
	snprintf(id, sizeof(id), "%" PRId64, h->id);
	units = r < 4 ? h->amount : rnd_range(&w->rng, 1, h->amount);
	fmt_amount(amt, sizeof(amt), units);
	if (r < 4)
		o = exec(w, "capture", "SELECT wallet.capture($1)", 1, p, EXPECT(OUT_WL008), &res);
	else if (r < 7)
		o = exec(w, "capture", "SELECT wallet.capture($1, $2::wallet.amount)", 2, p,
				 EXPECT(OUT_WL008), &res);
	else
		o = exec(w, "void", "SELECT wallet.void($1)", 1, p, EXPECT(OUT_WL008), &res);
	if (o != OUT_OK)
		return;
	if (atomic_fetch_add(&h->ended, 1) != 0)
	{
		w->st.check_failures++;
		report("hold %" PRId64 " ended twice (the second by %s)", h->id, r < 7 ? "capture" : "void");
	}
	if (r < 7)
	{
		Leg			legs[2] = {{h->from, -units}, {h->to, units}};

		/* the capture's key is the engine's: wallet:hold:<id>:capture */
		snprintf(key, sizeof(key), "wallet:hold:%" PRId64 ":capture", h->id);
		record_key(key, first_int8(res));
		w->st.posted++;
		add_deltas(w->delta, legs, 2);
	}
	else
		PQclear(res);
}

static void *
mode_holds(void *arg)
{
	Worker	   *w = arg;
	char		key[160];
	int64_t		txn,
				v;

	for (long done = 0; !time_is_up(done); done++)
	{
		int			r = (int) rnd_range(&w->rng, 0, 99);

		if (r < 35)
			place_hold(w);
		else if (r < 70)
			end_hold(w);
		else if (r < 92)
		{
			/* out of a few account, or a refill into one from the bank */
			Leg			legs[2];

			if (r < 85)
			{
				legs[0].account = pick(w, ROLE_FEW);
				do
					legs[1].account = rnd(&w->rng) & 1 ? pick(w, ROLE_FEW) : pick(w, ROLE_MANY);
				while (legs[1].account == legs[0].account);
				legs[1].units = rnd_range(&w->rng, 1, 2000);
			}
			else
			{
				legs[0].account = role_ids[ROLE_BANK][0];
				legs[1].account = pick(w, ROLE_FEW);
				/* less than flows out: balances hover near zero, WL001 races */
				legs[1].units = rnd_range(&w->rng, 1, 2000);
			}
			legs[0].units = -legs[1].units;
			make_key(w, key, sizeof(key), "transfer");
			posting(w, key, legs, 2, EXPECT(OUT_WL001), true, &txn);
		}
		else
		{
			int64_t		a = pick(w, ROLE_FEW);

			if (read_units(w, "SELECT wallet.units(wallet.available($1))", a, &v))
			{
				w->st.reads++;
				if (v < 0)
				{
					w->st.check_failures++;
					report("holds: available balance of account %" PRId64 " is %" PRId64, a, v);
				}
			}
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ main */

typedef struct Mode
{
	const char *name;
	void	   *(*run) (void *);
	const char *housekeeping;	/* SQL for the housekeeper thread, if any */
	Role		needs[3];		/* account kinds that must exist */
	int			nneeds;
} Mode;

/* a new mode: a thread function above plus a row here */
static const Mode modes[] = {
	{"mixed", mode_mixed, NULL, {ROLE_BANK, ROLE_FEW, ROLE_MANY}, 3},
	{"retry", mode_retry, NULL, {ROLE_RETRY}, 1},
	{"hot", mode_hot, "SELECT wallet.fold_hot()", {ROLE_HOT, ROLE_FEE, ROLE_VIEWER}, 3},
	{"holds", mode_holds, "SELECT wallet.expire_holds()", {ROLE_BANK, ROLE_FEW, ROLE_MANY}, 3},
	{"batch", mode_batch, NULL, {ROLE_FEW, ROLE_MANY}, 2},
};

static void
usage(FILE *f)
{
	fprintf(f,
			"usage: wallet_storm [options] [CONNINFO]\n"
			"  -d, --dsn CONNINFO   libpq connection string (default: PG* environment)\n"
			"  -m, --mode MODE      mixed | retry | hot | batch | holds (default mixed)\n"
			"  -c, --clients N      client threads, one connection each (default 16)\n"
			"  -s, --seconds S      run for S seconds (default 10)\n"
			"  -n, --ops N          or N operations per client\n"
			"      --seed N         random seed (default 1)\n"
			"  -t, --tag TAG        idempotency key prefix (default storm-<time>-<pid>)\n"
			"  -k, --keys FILE      write \"key txn_id\" per successful call\n"
			"  -D, --deltas FILE    write \"account_id units\": expected net changes\n");
}

static void
load_accounts(PGconn *c)
{
	int			total = 0;

	for (int r = 0; r < NROLES; r++)
	{
		const char *p[1] = {role_kind[r]};
		PGresult   *res = PQexecParams(c, "SELECT id FROM wallet.account WHERE kind = $1 ORDER BY id",
									   1, NULL, p, NULL, NULL, 0);

		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "wallet_storm: loading accounts: %s", PQresultErrorMessage(res));
			exit(2);
		}
		role_n[r] = PQntuples(res);
		role_ids[r] = calloc(role_n[r] + 1, sizeof(int64_t));
		for (int i = 0; i < role_n[r]; i++)
			role_ids[r][i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		total += role_n[r];
		PQclear(res);
	}
	all_ids = calloc(total + 1, sizeof(int64_t));
	for (int r = 0; r < NROLES; r++)
		for (int i = 0; i < role_n[r]; i++)
			all_ids[nall++] = role_ids[r][i];
	for (int i = 1; i < nall; i++)	/* insertion sort: ids come nearly sorted */
	{
		int64_t		v = all_ids[i];
		int			j = i - 1;

		while (j >= 0 && all_ids[j] > v)
		{
			all_ids[j + 1] = all_ids[j];
			j--;
		}
		all_ids[j + 1] = v;
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dsn", required_argument, NULL, 'd'},
		{"mode", required_argument, NULL, 'm'},
		{"clients", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 's'},
		{"ops", required_argument, NULL, 'n'},
		{"seed", required_argument, NULL, 'S'},
		{"tag", required_argument, NULL, 't'},
		{"keys", required_argument, NULL, 'k'},
		{"deltas", required_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const Mode *mode = NULL;
	Worker	   *keeper = NULL;
	Stats		tot = {0};
	char		tagbuf[64];
	double		elapsed;
	long		postings;
	int			ch;
	int64_t    *delta_sum;
	PGconn	   *main_conn;

	while ((ch = getopt_long(argc, argv, "d:m:c:s:n:t:k:D:h", longopts, NULL)) != -1)
	{
		switch (ch)
		{
			case 'd':
				opt.conninfo = optarg;
				break;
			case 'm':
				opt.mode = optarg;
				break;
			case 'c':
				opt.clients = atoi(optarg);
				break;
			case 's':
				opt.seconds = atof(optarg);
				break;
			case 'n':
				opt.ops = atol(optarg);
				break;
			case 'S':
				opt.seed = strtoull(optarg, NULL, 10);
				break;
			case 't':
				opt.tag = optarg;
				break;
			case 'k':
				opt.keys_path = optarg;
				break;
			case 'D':
				opt.deltas_path = optarg;
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (optind < argc)
		opt.conninfo = argv[optind++];
	if (optind < argc || opt.clients < 1 || opt.clients > MAX_CLIENTS ||
		(opt.ops <= 0 && opt.seconds <= 0))
	{
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(modes[i].name, opt.mode) == 0)
			mode = &modes[i];
	if (mode == NULL)
	{
		fprintf(stderr, "wallet_storm: unknown mode '%s'\n", opt.mode);
		usage(stderr);
		return 2;
	}
	if (opt.tag == NULL)
	{
		snprintf(tagbuf, sizeof(tagbuf), "storm-%ld-%d", (long) time(NULL), (int) getpid());
		opt.tag = tagbuf;
	}
	keys_file = fopen(opt.keys_path ? opt.keys_path : "/dev/null", "w");
	if (keys_file == NULL)
	{
		fprintf(stderr, "wallet_storm: %s: %s\n", opt.keys_path, strerror(errno));
		return 2;
	}

	if ((main_conn = connect_db()) == NULL)
		return 2;
	load_accounts(main_conn);
	for (int i = 0; i < mode->nneeds; i++)
		if (role_n[mode->needs[i]] < (mode->needs[i] == ROLE_FEW || mode->needs[i] == ROLE_RETRY ? 3 : 1))
		{
			fprintf(stderr, "wallet_storm: mode %s needs accounts of kind %s (run concurrency.sh's setup)\n",
					mode->name, role_kind[mode->needs[i]]);
			return 2;
		}
	if (mode->run == mode_retry)
	{
		retry_delta = calloc(nall + 1, sizeof(int64_t));
		pthread_barrier_init(&barrier, NULL, opt.clients);
	}

	for (int i = 0; i < opt.clients; i++)
	{
		workers[i].no = i;
		workers[i].rng = seed_for((uint64_t) i, 7);
		workers[i].delta = calloc(nall + 1, sizeof(int64_t));
		if ((workers[i].conn = connect_db()) == NULL)
			return 2;
	}
	if (mode->run == mode_hot)
	{
		Worker		probe = {.no = -1, .conn = main_conn};

		if (!read_hot_balance(&probe, &hot_base))
			return 2;
	}
	if (mode->run == mode_holds)
		holds = calloc(HOLD_CAP, sizeof(HoldRec));
	if (mode->housekeeping)
	{
		housekeeping_sql = mode->housekeeping;
		keeper = &workers[opt.clients];
		keeper->no = opt.clients;
		keeper->delta = calloc(nall + 1, sizeof(int64_t));
		if ((keeper->conn = connect_db()) == NULL)
			return 2;
	}

	started_at = now_seconds();
	for (int i = 0; i < opt.clients; i++)
		pthread_create(&workers[i].thread, NULL, mode->run, &workers[i]);
	if (keeper)
		pthread_create(&keeper->thread, NULL, housekeeper, keeper);
	for (int i = 0; i < opt.clients; i++)
		pthread_join(workers[i].thread, NULL);
	elapsed = now_seconds() - started_at;
	atomic_store(&stop_flag, true);
	if (keeper)
		pthread_join(keeper->thread, NULL);
	if (mode->run == mode_hot)
		hot_final_check(keeper);

	/* totals and the expected per-account changes */
	delta_sum = calloc(nall + 1, sizeof(int64_t));
	for (int i = 0; i <= opt.clients; i++)
	{
		Worker	   *w = &workers[i];

		if (w->delta == NULL)
			continue;
		tot.posted += w->st.posted;
		tot.existed += w->st.existed;
		for (int b = 0; b < NBUSINESS; b++)
			tot.business[b] += w->st.business[b];
		tot.deadlocks += w->st.deadlocks;
		tot.unexpected += w->st.unexpected;
		tot.check_failures += w->st.check_failures;
		tot.reads += w->st.reads;
		tot.housekept += w->st.housekept;
		for (int a = 0; a < nall; a++)
			delta_sum[a] += w->delta[a];
		if (w->conn)
			PQfinish(w->conn);
	}
	if (retry_delta)
		for (int a = 0; a < nall; a++)
			delta_sum[a] += retry_delta[a];
	if (fclose(keys_file) != 0)
	{
		fprintf(stderr, "wallet_storm: writing keys: %s\n", strerror(errno));
		tot.check_failures++;
	}
	if (opt.deltas_path)
	{
		FILE	   *f = fopen(opt.deltas_path, "w");

		if (f == NULL)
		{
			fprintf(stderr, "wallet_storm: %s: %s\n", opt.deltas_path, strerror(errno));
			return 2;
		}
		for (int a = 0; a < nall; a++)
			if (delta_sum[a] != 0)
				fprintf(f, "%" PRId64 " %" PRId64 "\n", all_ids[a], delta_sum[a]);
		if (fclose(f) != 0)
			tot.check_failures++;
	}
	PQfinish(main_conn);

	if (atomic_load(&messages_printed) > MAX_MESSAGES)
		fprintf(stderr, "wallet_storm: ... %d more failure messages not shown\n",
				atomic_load(&messages_printed) - MAX_MESSAGES);
	/* retry: every client posts each key; count each key once */
	postings = mode->run == mode_retry ? retry_round * RETRY_KEYS : tot.posted;
	printf("mode=%s clients=%d seconds=%.1f posted=%ld existed=%ld", mode->name, opt.clients, elapsed,
		   postings, tot.existed);
	for (int b = 0; b < NBUSINESS; b++)
		printf(" %s=%ld", business_name[b], tot.business[b]);
	printf(" deadlocks=%ld unexpected=%ld check_failures=%ld reads=%ld housekept=%ld "
		   "calls_per_s=%.0f postings_per_s=%.0f\n",
		   tot.deadlocks, tot.unexpected, tot.check_failures, tot.reads, tot.housekept,
		   elapsed > 0 ? tot.posted / elapsed : 0, elapsed > 0 ? postings / elapsed : 0);
	return tot.deadlocks + tot.unexpected + tot.check_failures > 0 ? 1 : 0;
}
