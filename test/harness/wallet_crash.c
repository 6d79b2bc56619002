/*
 * wallet_crash.c — load client of the crash-recovery harness.
 * Owned by test/harness/ (built and driven by test/harness/crash.sh).
 *
 * Load mode (default): N threads, one libpq connection each, send
 * autocommit requests with unique idempotency keys to a database that
 * crash.sh prepared (accounts found by kind, see below) until the stop file
 * appears (or --seconds pass), while crash.sh crashes and restarts the
 * server under them.  A thread that loses its connection reconnects (the
 * server is down or in recovery for a while: it keeps trying, 100 ms
 * apart) and goes on.  One more thread calls wallet.housekeeping() every
 * 400 ms, so that crashes also land in the middle of folding, sealing and
 * filing.
 *
 * Every request is written to the log (-o FILE) before it is sent, and its
 * outcome after, one tab-separated line each:
 *   S key op epoch client ref legs   sent: op is transfer, post, gift,
 *        recharge, batch (one line per item), hold, capture or void; epoch
 *        is the number read from --epoch-file when the connection was made
 *        (crash.sh bumps it before each crash); ref is the hold id of a
 *        capture or void (else 0); legs is "account:units,..." (what the
 *        request moves: for a hold, what a full capture would move; "-"
 *        for a void).  Keys are the ledger's: a recharge's is
 *        wallet:recharge:crash:<external id>, a capture's
 *        wallet:hold:<id>:capture (the engine's), a void's void:<id>.
 *   A key id      acknowledged: the statement returned (the commit is
 *        durable); id is the transaction id (hold id for a hold, 0 for a
 *        void);
 *   E key state   refused: an error with the session still alive, so the
 *        transaction rolled back; state is the SQLSTATE (a batch row's
 *        status for a batch item);
 *   U key state   outcome unknown: the connection was lost (or a FATAL
 *        error arrived) while the request was in flight; it may or may not
 *        have committed.
 * Last stdout line: "clients=... acked=... refused=... wl001=...
 * unknown=... losses=... unexpected=... deadlocks=... hk_calls=...
 * hk_errors=... hk_deadlocks=... connect_attempts=... seconds=..."
 * (hk_: the housekeeping thread; its 40P01 are counted apart).  Exit 0
 * when no unexpected error (housekeeping's 40P01 aside), 1 otherwise, 2 on
 * a usage/setup error.
 *
 * Retry mode (--retry FILE): reads S lines and sends each request again,
 * with the same key and arguments, on one connection, and logs A/E/U lines
 * (the idempotency check after recovery is crash.sh's).
 *
 * Accounts by kind (crash.sh opens them): crash_bank (USD, may go
 * negative), crash_few (USD, contended), crash_many (USD), crash_hot (USD,
 * hot), crash_viewer (COIN), crash_creator (DIAMOND, the first one hot);
 * the live flows' system accounts come from wallet.live_config.
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

#define MAX_CLIENTS		128
#define MAX_LEGS		4
#define MAX_MESSAGES	12
#define BATCH_SIZE		10
#define MAX_OWN_HOLDS	32
#define HARNESS_NAME	"wallet_crash"

#include "harness_util.h"

typedef struct Options
{
	const char *conninfo;
	const char *log_path;
	const char *epoch_path;
	const char *stop_path;
	const char *retry_path;
	const char *tag;
	int			clients;
	double		seconds;
	uint64_t	seed;
} Options;

static Options opt = {.conninfo = "", .clients = 12, .seconds = 60, .seed = 1, .tag = "crash"};

/* ------------------------------------------------------------ accounts */

typedef enum Role
{
	R_BANK, R_FEW, R_MANY, R_HOT, R_VIEWER, R_CREATOR, NROLES
} Role;

static const char *const role_kind[NROLES] = {
	"crash_bank", "crash_few", "crash_many", "crash_hot", "crash_viewer", "crash_creator",
};
static int64_t *role_ids[NROLES];
static int	role_n[NROLES];

/* wallet.live_config */
static int64_t coin_revenue, coin_issuance, diamond_issuance, cash_usd, sales_usd;

typedef enum Cur
{
	USD, COIN, DIAMOND
} Cur;

typedef struct Leg
{
	int64_t		account;
	int64_t		units;
} Leg;

typedef struct Req
{
	char		key[200];
	const char *op;
	int64_t		ref;
	Leg			legs[MAX_LEGS];
	int			n;
} Req;

/* ------------------------------------------------------------ state */

typedef struct Stats
{
	long		acked,
				refused,
				wl001,
				unknown,
				losses,
				unexpected,
				deadlocks,
				hk_calls,
				hk_errors,
				hk_deadlocks,
				connect_attempts;
} Stats;

typedef struct OwnHold
{
	int64_t		id,
				from,
				to,
				amount;
} OwnHold;

typedef struct Worker
{
	int			no;
	PGconn	   *conn;
	int			epoch;
	uint64_t	rng;
	long		seq;
	Stats		st;
	OwnHold		holds[MAX_OWN_HOLDS];
	int			nholds;
	pthread_t	thread;
} Worker;

static Worker workers[MAX_CLIENTS + 1];
static FILE *logf;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool stopping;
static double started_at;

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static bool
should_stop(void)
{
	if (atomic_load(&stopping))
		return true;
	if ((opt.stop_path && access(opt.stop_path, F_OK) == 0) ||
		now_seconds() - started_at >= opt.seconds)
	{
		atomic_store(&stopping, true);
		return true;
	}
	return false;
}

static int64_t
pick(Worker *w, Role r)
{
	return role_ids[r][rnd(&w->rng) % (uint64_t) role_n[r]];
}

static int64_t
pick_other(Worker *w, Role r, int64_t not)
{
	int64_t		a;

	do
		a = pick(w, r);
	while (a == not);
	return a;
}

static void
fmt_amount(char *buf, size_t len, int64_t units, Cur cur)
{
	uint64_t	a = units < 0 ? -(uint64_t) units : (uint64_t) units;

	if (cur == USD)
		snprintf(buf, len, "%s%" PRIu64 ".%02" PRIu64 " USD", units < 0 ? "-" : "", a / 100, a % 100);
	else
		snprintf(buf, len, "%s%" PRIu64 " %s", units < 0 ? "-" : "", a, cur == COIN ? "COIN" : "DIAMOND");
}

/* ------------------------------------------------------------ log */

static void
log_sent(Worker *w, const Req *r)
{
	pthread_mutex_lock(&log_lock);
	fprintf(logf, "S\t%s\t%s\t%d\t%d\t%" PRId64 "\t", r->key, r->op, w->epoch, w->no, r->ref);
	if (r->n == 0)
		fputc('-', logf);
	for (int i = 0; i < r->n; i++)
		fprintf(logf, "%s%" PRId64 ":%" PRId64, i ? "," : "", r->legs[i].account, r->legs[i].units);
	fputc('\n', logf);
	pthread_mutex_unlock(&log_lock);
}

static void
log_outcome(char kind, const char *key, const char *val)
{
	pthread_mutex_lock(&log_lock);
	fprintf(logf, "%c\t%s\t%s\n", kind, key, val);
	pthread_mutex_unlock(&log_lock);
}

/* ------------------------------------------------------------ connections */

static int
read_epoch(void)
{
	FILE	   *f;
	int			e = 0;

	if (opt.epoch_path == NULL || (f = fopen(opt.epoch_path, "r")) == NULL)
		return 0;
	if (fscanf(f, "%d", &e) != 1)
		e = 0;
	fclose(f);
	return e;
}

/* the server's "terminating connection because of crash ..." warnings are expected */
static void
quiet_notices(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

static PGconn *
connect_once(void)
{
	const char *const kw[] = {"dbname", "application_name", "connect_timeout", "options", NULL};
	/* a statement stuck for 30 s is a hang: fail it instead of waiting */
	const char *const val[] = {opt.conninfo, "wallet_crash", "3", "-c statement_timeout=30s", NULL};
	PGconn	   *c = PQconnectdbParams(kw, val, 1);

	if (PQstatus(c) != CONNECTION_OK)
	{
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, quiet_notices, NULL);
	return c;
}

/*
 * (Re)connects, trying every 100 ms while the server is down or in
 * recovery; false when the run is over first.
 */
static bool
ensure_conn(Worker *w)
{
	while (w->conn == NULL)
	{
		if (should_stop())
			return false;
		w->st.connect_attempts++;
		if ((w->conn = connect_once()) != NULL)
		{
			w->epoch = read_epoch();
			return true;
		}
		sleep_ms(100);
	}
	return true;
}

static void
lose_conn(Worker *w)
{
	PQfinish(w->conn);
	w->conn = NULL;
	w->st.losses++;
}

typedef enum Outcome
{
	O_ACK, O_REFUSED, O_UNKNOWN
} Outcome;

/*
 * Runs one statement.  The outcome is unknown when the connection is gone
 * or the error is a FATAL one (class 57: the server is shutting down or
 * crashed, 08: connection exception): the commit may have happened before
 * the error reached us.  Any other error leaves the session alive and its
 * transaction rolled back.  *state gets the SQLSTATE ("-" if none).
 */
static Outcome
run(Worker *w, const char *sql, int n, const char *const *params, PGresult **out, char *state,
	size_t statelen)
{
	PGresult   *res = PQexecParams(w->conn, sql, n, NULL, params, NULL, NULL, 0);
	const char *s;
	const char *sev;

	*out = NULL;
	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		*out = res;
		snprintf(state, statelen, "00000");
		return O_ACK;
	}
	s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	sev = res ? PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
	snprintf(state, statelen, "%s", s ? s : "-");
	if (PQstatus(w->conn) != CONNECTION_OK || s == NULL ||
		strncmp(s, "57", 2) == 0 || strncmp(s, "08", 2) == 0 ||
		(sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)))
	{
		PQclear(res);
		return O_UNKNOWN;
	}
	*out = res;					/* the caller reads the message */
	return O_REFUSED;
}

/*
 * Sends one logged request; on ACK returns the first column of the first
 * row in *id.  Refusals other than those in `expected` (comma-separated
 * SQLSTATEs) count as unexpected.
 */
static Outcome
request(Worker *w, const Req *r, const char *sql, int n, const char *const *params,
		const char *expected, int64_t *id)
{
	PGresult   *res;
	char		state[16];
	Outcome		o;

	log_sent(w, r);
	o = run(w, sql, n, params, &res, state, sizeof(state));
	if (o == O_ACK)
	{
		char		v[32];

		*id = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		snprintf(v, sizeof(v), "%" PRId64, *id);
		log_outcome('A', r->key, v);
		w->st.acked++;
	}
	else if (o == O_REFUSED)
	{
		log_outcome('E', r->key, state);
		w->st.refused++;
		if (strcmp(state, "WL001") == 0)
			w->st.wl001++;
		if (strstr(expected, state) == NULL)
		{
			if (strcmp(state, "40P01") == 0)
				w->st.deadlocks++;
			w->st.unexpected++;
			report("client %d: %s %s: SQLSTATE %s: %s", w->no, r->op, r->key, state,
				   PQresultErrorMessage(res));
		}
	}
	else
	{
		log_outcome('U', r->key, state);
		w->st.unknown++;
		lose_conn(w);
	}
	PQclear(res);
	return o;
}

/* a new key "<tag>/<label>/c<client>/<seq>" for a request of op */
static void
make_key(Worker *w, Req *r, const char *op, const char *label)
{
	snprintf(r->key, sizeof(r->key), "%s/%s/c%d/%ld", opt.tag, label, w->no, w->seq++);
	r->op = op;
	r->ref = 0;
}

static void
set_transfer(Req *r, int64_t from, int64_t to, int64_t units)
{
	r->legs[0] = (Leg) {from, -units};
	r->legs[1] = (Leg) {to, units};
	r->n = 2;
}

/* ------------------------------------------------------------ requests */

static Outcome
send_transfer(Worker *w, const Req *r)
{
	char		from[24],
				to[24],
				amt[64];
	const char *p[4] = {from, to, amt, r->key};
	int64_t		id;

	snprintf(from, sizeof(from), "%" PRId64, r->legs[0].account);
	snprintf(to, sizeof(to), "%" PRId64, r->legs[1].account);
	fmt_amount(amt, sizeof(amt), r->legs[1].units, USD);
	return request(w, r, "SELECT wallet.transfer($1::bigint, $2::bigint, $3::wallet.amount, $4)",
				   4, p, "WL001", &id);
}

static Outcome
send_post(Worker *w, const Req *r)
{
	char		arr[MAX_LEGS * 64 + 4],
				amt[64];
	size_t		len = 0;
	const char *p[2] = {r->key, arr};
	int64_t		id;

	arr[len++] = '{';
	for (int i = 0; i < r->n; i++)
	{
		fmt_amount(amt, sizeof(amt), r->legs[i].units, USD);
		len += snprintf(arr + len, sizeof(arr) - len, "%s\"(%" PRId64 ",\\\"%s\\\")\"",
						i ? "," : "", r->legs[i].account, amt);
	}
	snprintf(arr + len, sizeof(arr) - len, "}");
	return request(w, r, "SELECT wallet.post($1, $2::wallet.leg[])", 2, p, "WL001", &id);
}

/* legs: viewer -n, coin_revenue +n, diamond_issuance -d, creator +d */
static Outcome
send_gift(Worker *w, const Req *r)
{
	char		viewer[24],
				creator[24],
				amt[64];
	const char *p[4] = {viewer, creator, amt, r->key};
	int64_t		id;

	snprintf(viewer, sizeof(viewer), "%" PRId64, r->legs[0].account);
	snprintf(creator, sizeof(creator), "%" PRId64, r->legs[3].account);
	fmt_amount(amt, sizeof(amt), -r->legs[0].units, COIN);
	return request(w, r, "SELECT wallet.gift($1::bigint, $2::bigint, $3::wallet.amount, $4)",
				   4, p, "WL001", &id);
}

/* legs: coin_issuance -n, viewer +n, cash +paid, sales -paid */
static Outcome
send_recharge(Worker *w, const Req *r)
{
	const char *ext = r->key + strlen("wallet:recharge:crash:");
	char		user[24],
				coins[64],
				paid[64];
	const char *p[4] = {user, coins, paid, ext};
	int64_t		id;

	snprintf(user, sizeof(user), "%" PRId64, r->legs[1].account);
	fmt_amount(coins, sizeof(coins), r->legs[1].units, COIN);
	fmt_amount(paid, sizeof(paid), r->legs[2].units, USD);
	return request(w, r, "SELECT wallet.recharge($1::bigint, $2::wallet.amount, $3::wallet.amount, 'crash', $4)",
				   4, p, "", &id);
}

static Outcome
send_hold(Worker *w, const Req *r, int64_t *id)
{
	char		from[24],
				to[24],
				amt[64];
	const char *p[4] = {from, to, amt, r->key};

	snprintf(from, sizeof(from), "%" PRId64, r->legs[0].account);
	snprintf(to, sizeof(to), "%" PRId64, r->legs[1].account);
	fmt_amount(amt, sizeof(amt), r->legs[1].units, USD);
	return request(w, r, "SELECT wallet.hold($1::bigint, $2::bigint, $3::wallet.amount, $4)",
				   4, p, "WL001", id);
}

static Outcome
send_capture(Worker *w, const Req *r, const char *expected)
{
	char		hid[24],
				amt[64];
	const char *p[2] = {hid, amt};
	int64_t		id;

	snprintf(hid, sizeof(hid), "%" PRId64, r->ref);
	fmt_amount(amt, sizeof(amt), r->legs[1].units, USD);
	return request(w, r, "SELECT wallet.capture($1::bigint, $2::wallet.amount)", 2, p, expected, &id);
}

static Outcome
send_void(Worker *w, const Req *r, const char *expected)
{
	char		hid[24];
	const char *p[1] = {hid};
	int64_t		id;

	snprintf(hid, sizeof(hid), "%" PRId64, r->ref);
	return request(w, r, "SELECT wallet.void($1::bigint)", 1, p, expected, &id);
}

static void
append_elem(char *buf, size_t size, size_t *len, int i, const char *v, bool quote)
{
	*len += snprintf(buf + *len, size - *len, "%s%s%s%s", i ? "," : "{", quote ? "\"" : "", v,
					 quote ? "\"" : "");
}

/*
 * One wallet.transfer_batch call over reqs[0..n): each item its own key and
 * line.  Rows "ok" are acknowledged, "exists" too (its id is the first
 * one's), others refused with the row's status as state.
 */
static void
send_batch(Worker *w, Req *reqs, int n, bool retrying)
{
	size_t		size = (size_t) n * 220 + 8,
				lf = 0,
				lt = 0,
				la = 0,
				lk = 0;
	char	   *from = malloc(size),
			   *to = malloc(size),
			   *amts = malloc(size),
			   *keys = malloc(size);
	const char *p[4] = {from, to, amts, keys};
	char		num[64],
				state[16];
	PGresult   *res;
	Outcome		o;

	for (int i = 0; i < n; i++)
	{
		snprintf(num, sizeof(num), "%" PRId64, reqs[i].legs[0].account);
		append_elem(from, size, &lf, i, num, false);
		snprintf(num, sizeof(num), "%" PRId64, reqs[i].legs[1].account);
		append_elem(to, size, &lt, i, num, false);
		fmt_amount(num, sizeof(num), reqs[i].legs[1].units, USD);
		append_elem(amts, size, &la, i, num, true);
		append_elem(keys, size, &lk, i, reqs[i].key, true);
		log_sent(w, &reqs[i]);
	}
	snprintf(from + lf, size - lf, "}");
	snprintf(to + lt, size - lt, "}");
	snprintf(amts + la, size - la, "}");
	snprintf(keys + lk, size - lk, "}");

	o = run(w, "SELECT tx_id, status FROM wallet.transfer_batch($1::bigint[], $2::bigint[], "
			"$3::wallet.amount[], $4::text[]) ORDER BY idx", 4, p, &res, state, sizeof(state));
	if (o == O_ACK && PQntuples(res) != n)
	{
		report("client %d: transfer_batch returned %d rows for %d items", w->no, PQntuples(res), n);
		w->st.unexpected++;
		o = O_REFUSED;
		snprintf(state, sizeof(state), "rows");
	}
	for (int i = 0; i < n; i++)
	{
		if (o == O_ACK)
		{
			const char *status = PQgetvalue(res, i, 1);

			if (strcmp(status, "ok") == 0 || strcmp(status, "exists") == 0)
			{
				log_outcome('A', reqs[i].key, PQgetvalue(res, i, 0));
				w->st.acked++;
				if (status[0] == 'e' && !retrying)
				{
					w->st.unexpected++;
					report("client %d: batch item %s: status exists for a new key", w->no, reqs[i].key);
				}
			}
			else
			{
				log_outcome('E', reqs[i].key, status);
				w->st.refused++;
				if (strcmp(status, "insufficient_funds") == 0)
					w->st.wl001++;
				else if (!retrying)
				{
					w->st.unexpected++;
					report("client %d: batch item %s: status %s", w->no, reqs[i].key, status);
				}
			}
		}
		else
		{
			log_outcome(o == O_REFUSED ? 'E' : 'U', reqs[i].key, state);
			if (o == O_REFUSED)
				w->st.refused++;
			else
				w->st.unknown++;
		}
	}
	if (o == O_REFUSED && strcmp(state, "rows") != 0)
	{
		w->st.unexpected++;
		report("client %d: transfer_batch: SQLSTATE %s: %s", w->no, state, PQresultErrorMessage(res));
	}
	if (o == O_UNKNOWN)
		lose_conn(w);
	PQclear(res);
	free(from);
	free(to);
	free(amts);
	free(keys);
}

/* ------------------------------------------------------------ load */

static void
do_hold(Worker *w)
{
	Req			r;
	int64_t		id;

	make_key(w, &r, "hold", "hold");
	r.legs[0].account = rnd(&w->rng) & 1 ? pick(w, R_FEW) : pick(w, R_MANY);
	set_transfer(&r, r.legs[0].account,
				 rnd(&w->rng) & 1 ? pick_other(w, R_FEW, r.legs[0].account)
				 : pick_other(w, R_MANY, r.legs[0].account),
				 rnd_range(&w->rng, 1, 1500));
	if (send_hold(w, &r, &id) == O_ACK && w->nholds < MAX_OWN_HOLDS)
		w->holds[w->nholds++] = (OwnHold) {id, r.legs[0].account, r.legs[1].account, r.legs[1].units};
}

/* captures (all or part) or voids one of this client's pending holds */
static void
end_hold(Worker *w)
{
	int			i = (int) (rnd(&w->rng) % (uint64_t) w->nholds);
	OwnHold		h = w->holds[i];
	int			r = (int) rnd_range(&w->rng, 0, 9);
	Req			q;

	w->holds[i] = w->holds[--w->nholds];
	q.ref = h.id;
	if (r < 7)
	{
		snprintf(q.key, sizeof(q.key), "wallet:hold:%" PRId64 ":capture", h.id);
		q.op = "capture";
		set_transfer(&q, h.from, h.to, r < 4 ? h.amount : rnd_range(&w->rng, 1, h.amount));
		send_capture(w, &q, "");
	}
	else
	{
		snprintf(q.key, sizeof(q.key), "void:%" PRId64, h.id);
		q.op = "void";
		q.n = 0;
		send_void(w, &q, "");
	}
}

static void *
load_thread(void *arg)
{
	Worker	   *w = arg;

	while (ensure_conn(w) && !should_stop())
	{
		int			r = (int) rnd_range(&w->rng, 0, 99);
		Req			q;

		if (r < 22)
		{
			/* among the few (contended) or the many, both ways */
			Role		role = r < 11 ? R_FEW : R_MANY;
			int64_t		a = pick(w, role);

			make_key(w, &q, "transfer", "transfer");
			set_transfer(&q, a, pick_other(w, role, a),
						 rnd_range(&w->rng, 1, role == R_FEW ? 2000 : 500));
			send_transfer(w, &q);
		}
		else if (r < 30)
		{
			/* credits to the hot USD account */
			make_key(w, &q, "transfer", "tohot");
			set_transfer(&q, rnd(&w->rng) & 1 ? pick(w, R_FEW) : pick(w, R_MANY), role_ids[R_HOT][0],
						 rnd_range(&w->rng, 1, 300));
			send_transfer(w, &q);
		}
		else if (r < 38)
		{
			/* 3 legs over the few: one debit, two credits */
			int64_t		a = pick(w, R_FEW),
						b = pick_other(w, R_FEW, a),
						c,
						t = rnd_range(&w->rng, 2, 3000),
						x = rnd_range(&w->rng, 1, t - 1);

			do
				c = pick(w, R_FEW);
			while (c == a || c == b);
			make_key(w, &q, "post", "post");
			q.legs[0] = (Leg) {a, -t};
			q.legs[1] = (Leg) {b, x};
			q.legs[2] = (Leg) {c, t - x};
			q.n = 3;
			send_post(w, &q);
		}
		else if (r < 58)
		{
			/* a gift, mostly to the hot creator */
			int64_t		n = rnd_range(&w->rng, 2, 200);
			int64_t		creator = rnd_range(&w->rng, 0, 9) < 7 ? role_ids[R_CREATOR][0] : pick(w, R_CREATOR);

			make_key(w, &q, "gift", "gift");
			q.legs[0] = (Leg) {pick(w, R_VIEWER), -n};
			q.legs[1] = (Leg) {coin_revenue, n};
			q.legs[2] = (Leg) {diamond_issuance, -(n / 2)};
			q.legs[3] = (Leg) {creator, n / 2};
			q.n = 4;
			send_gift(w, &q);
		}
		else if (r < 62)
		{
			/* coins bought in the store: 1 coin for 1 cent */
			int64_t		n = rnd_range(&w->rng, 100, 2000);

			snprintf(q.key, sizeof(q.key), "wallet:recharge:crash:%s-c%d-%ld", opt.tag, w->no, w->seq++);
			q.op = "recharge";
			q.ref = 0;
			q.legs[0] = (Leg) {coin_issuance, -n};
			q.legs[1] = (Leg) {pick(w, R_VIEWER), n};
			q.legs[2] = (Leg) {cash_usd, n};
			q.legs[3] = (Leg) {sales_usd, -n};
			q.n = 4;
			send_recharge(w, &q);
		}
		else if (r < 72 || (r < 82 && w->nholds == 0))
			do_hold(w);
		else if (r < 82)
			end_hold(w);
		else if (r < 90)
		{
			Req			items[BATCH_SIZE];

			for (int i = 0; i < BATCH_SIZE; i++)
			{
				int64_t		a = pick(w, R_MANY);

				make_key(w, &items[i], "batch", "batch");
				set_transfer(&items[i], a, pick_other(w, R_MANY, a), rnd_range(&w->rng, 1, 400));
			}
			send_batch(w, items, BATCH_SIZE, false);
		}
		else
		{
			/* refills from the bank keep money flowing */
			make_key(w, &q, "transfer", "refill");
			set_transfer(&q, role_ids[R_BANK][0], rnd(&w->rng) & 1 ? pick(w, R_FEW) : pick(w, R_MANY),
						 rnd_range(&w->rng, 100, 3000));
			send_transfer(w, &q);
		}
	}
	return NULL;
}

/* wallet.housekeeping() every 400 ms: crashes also hit folds and seals */
static void *
housekeeper_thread(void *arg)
{
	Worker	   *w = arg;

	while (ensure_conn(w) && !should_stop())
	{
		PGresult   *res;
		char		state[16];
		Outcome		o = run(w, "SELECT wallet.housekeeping()", 0, NULL, &res, state, sizeof(state));

		w->st.hk_calls++;
		if (o == O_REFUSED)
		{
			/* 40P01 apart: crash.sh reports it on its own */
			if (strcmp(state, "40P01") == 0)
				w->st.hk_deadlocks++;
			else
				w->st.hk_errors++;
			report("housekeeper: SQLSTATE %s: %s", state, PQresultErrorMessage(res));
		}
		PQclear(res);
		if (o == O_UNKNOWN)
			lose_conn(w);
		else
			sleep_ms(400);
	}
	return NULL;
}

/* ------------------------------------------------------------ retry */

static bool
parse_sent(char *line, Req *r)
{
	char	   *f[7],
			   *save = NULL,
			   *legs;
	int			n = 0;
	static const char *const ops[] = {"transfer", "post", "gift", "recharge", "batch", "hold",
	"capture", "void"};

	line[strcspn(line, "\n")] = '\0';
	for (char *t = strtok_r(line, "\t", &save); t && n < 7; t = strtok_r(NULL, "\t", &save))
		f[n++] = t;
	if (n != 7 || strcmp(f[0], "S") != 0 || strlen(f[1]) >= sizeof(r->key))
		return false;
	snprintf(r->key, sizeof(r->key), "%s", f[1]);
	r->op = NULL;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(f[2], ops[i]) == 0)
			r->op = ops[i];
	if (r->op == NULL)
		return false;
	r->ref = strtoll(f[5], NULL, 10);
	r->n = 0;
	legs = f[6];
	if (strcmp(legs, "-") == 0)
		return true;
	for (char *t = strtok_r(legs, ",", &save); t && r->n < MAX_LEGS; t = strtok_r(NULL, ",", &save))
	{
		if (sscanf(t, "%" SCNd64 ":%" SCNd64, &r->legs[r->n].account, &r->legs[r->n].units) != 2)
			return false;
		r->n++;
	}
	return true;
}

static int
retry_main(void)
{
	FILE	   *in = fopen(opt.retry_path, "r");
	char		line[1024];
	Worker	   *w = &workers[0];
	long		lines = 0;

	if (in == NULL)
	{
		fprintf(stderr, "wallet_crash: %s: %s\n", opt.retry_path, strerror(errno));
		return 2;
	}
	started_at = now_seconds();
	while (fgets(line, sizeof(line), in))
	{
		Req			r;
		int64_t		id;

		char		copy[1024];

		snprintf(copy, sizeof(copy), "%s", line);
		if (!parse_sent(line, &r))
		{
			fprintf(stderr, "wallet_crash: bad line in %s: %s", opt.retry_path, copy);
			return 2;
		}
		if (!ensure_conn(w))
			return 2;
		lines++;
		if (strcmp(r.op, "transfer") == 0)
			send_transfer(w, &r);
		else if (strcmp(r.op, "post") == 0)
			send_post(w, &r);
		else if (strcmp(r.op, "gift") == 0)
			send_gift(w, &r);
		else if (strcmp(r.op, "recharge") == 0)
			send_recharge(w, &r);
		else if (strcmp(r.op, "hold") == 0)
			send_hold(w, &r, &id);
		else if (strcmp(r.op, "capture") == 0)
			send_capture(w, &r, "WL008");
		else if (strcmp(r.op, "void") == 0)
			send_void(w, &r, "WL008");
		else
			send_batch(w, &r, 1, true);
	}
	fclose(in);
	printf("retried=%ld acked=%ld refused=%ld unknown=%ld unexpected=%ld\n", lines, w->st.acked,
		   w->st.refused, w->st.unknown, w->st.unexpected);
	return w->st.unknown + w->st.unexpected > 0 ? 1 : 0;
}

/* ------------------------------------------------------------ main */

static void
usage(FILE *f)
{
	fprintf(f,
			"usage: wallet_crash [options]\n"
			"  -d, --dsn CONNINFO      libpq connection string (default: PG* environment)\n"
			"  -o, --log FILE          request log (S/A/E/U lines), required\n"
			"  -c, --clients N         load threads (default 12)\n"
			"  -s, --seconds S         stop after S seconds at the latest (default 60)\n"
			"      --stop-file FILE    stop when FILE exists\n"
			"      --epoch-file FILE   epoch number read at each (re)connect\n"
			"      --seed N            random seed (default 1)\n"
			"  -t, --tag TAG           idempotency key prefix (default crash)\n"
			"      --retry FILE        resend the S lines of FILE instead of the load\n");
}

static bool
load_accounts(PGconn *c)
{
	PGresult   *res;

	for (int r = 0; r < NROLES; r++)
	{
		const char *p[1] = {role_kind[r]};

		res = PQexecParams(c, "SELECT id FROM wallet.account WHERE kind = $1 ORDER BY id",
						   1, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < (r == R_FEW ? 3 : r == R_MANY ? 2 : 1))
		{
			fprintf(stderr, "wallet_crash: accounts of kind %s: %s\n", role_kind[r],
					PQresultStatus(res) == PGRES_TUPLES_OK ? "too few" : PQresultErrorMessage(res));
			PQclear(res);
			return false;
		}
		role_n[r] = PQntuples(res);
		role_ids[r] = calloc(role_n[r], sizeof(int64_t));
		for (int i = 0; i < role_n[r]; i++)
			role_ids[r][i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		PQclear(res);
	}
	res = PQexec(c, "SELECT coin_revenue, coin_issuance, diamond_issuance, "
				 "(cash_accounts -> 'USD' ->> 'cash')::bigint, (cash_accounts -> 'USD' ->> 'sales')::bigint "
				 "FROM wallet.live_config");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQgetisnull(res, 0, 3))
	{
		fprintf(stderr, "wallet_crash: wallet.live_config (live_setup and a USD recharge first): %s\n",
				PQresultErrorMessage(res));
		PQclear(res);
		return false;
	}
	coin_revenue = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	coin_issuance = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	diamond_issuance = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	cash_usd = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	sales_usd = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
	PQclear(res);
	return true;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dsn", required_argument, NULL, 'd'},
		{"log", required_argument, NULL, 'o'},
		{"clients", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 's'},
		{"stop-file", required_argument, NULL, 'X'},
		{"epoch-file", required_argument, NULL, 'E'},
		{"seed", required_argument, NULL, 'S'},
		{"tag", required_argument, NULL, 't'},
		{"retry", required_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	Stats		tot = {0};
	PGconn	   *c;
	Worker	   *keeper;
	int			ch,
				rc;

	while ((ch = getopt_long(argc, argv, "d:o:c:s:t:h", longopts, NULL)) != -1)
	{
		switch (ch)
		{
			case 'd':
				opt.conninfo = optarg;
				break;
			case 'o':
				opt.log_path = optarg;
				break;
			case 'c':
				opt.clients = atoi(optarg);
				break;
			case 's':
				opt.seconds = atof(optarg);
				break;
			case 'X':
				opt.stop_path = optarg;
				break;
			case 'E':
				opt.epoch_path = optarg;
				break;
			case 'S':
				opt.seed = strtoull(optarg, NULL, 10);
				break;
			case 't':
				opt.tag = optarg;
				break;
			case 'R':
				opt.retry_path = optarg;
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (optind != argc || opt.log_path == NULL || opt.clients < 1 || opt.clients > MAX_CLIENTS ||
		opt.seconds <= 0)
	{
		usage(stderr);
		return 2;
	}
	if ((logf = fopen(opt.log_path, "w")) == NULL)
	{
		fprintf(stderr, "wallet_crash: %s: %s\n", opt.log_path, strerror(errno));
		return 2;
	}
	if ((c = connect_once()) == NULL)
	{
		fprintf(stderr, "wallet_crash: cannot connect\n");
		return 2;
	}
	if (!load_accounts(c))
		return 2;
	PQfinish(c);

	if (opt.retry_path)
	{
		rc = retry_main();
		if (fclose(logf) != 0)
			rc = 2;
		return rc;
	}

	started_at = now_seconds();
	for (int i = 0; i <= opt.clients; i++)
	{
		workers[i].no = i;
		workers[i].rng = ((opt.seed + 1) * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t) (i + 1) * 0xBF58476D1CE4E5B9ULL);
		if (workers[i].rng == 0)
			workers[i].rng = 1;
	}
	for (int i = 0; i < opt.clients; i++)
		pthread_create(&workers[i].thread, NULL, load_thread, &workers[i]);
	keeper = &workers[opt.clients];
	pthread_create(&keeper->thread, NULL, housekeeper_thread, keeper);
	for (int i = 0; i <= opt.clients; i++)
	{
		Stats	   *s = &workers[i].st;

		pthread_join(workers[i].thread, NULL);
		tot.acked += s->acked;
		tot.refused += s->refused;
		tot.wl001 += s->wl001;
		tot.unknown += s->unknown;
		tot.losses += s->losses;
		tot.unexpected += s->unexpected;
		tot.deadlocks += s->deadlocks;
		tot.hk_calls += s->hk_calls;
		tot.hk_errors += s->hk_errors;
		tot.hk_deadlocks += s->hk_deadlocks;
		tot.connect_attempts += s->connect_attempts;
		if (workers[i].conn)
			PQfinish(workers[i].conn);
	}
	if (fclose(logf) != 0)
	{
		fprintf(stderr, "wallet_crash: writing %s: %s\n", opt.log_path, strerror(errno));
		tot.unexpected++;
	}
	if (atomic_load(&messages_printed) > MAX_MESSAGES)
		fprintf(stderr, "wallet_crash: ... %d more messages not shown\n",
				atomic_load(&messages_printed) - MAX_MESSAGES);
	printf("clients=%d acked=%ld refused=%ld wl001=%ld unknown=%ld losses=%ld unexpected=%ld "
		   "deadlocks=%ld hk_calls=%ld hk_errors=%ld hk_deadlocks=%ld connect_attempts=%ld seconds=%.1f\n",
		   opt.clients, tot.acked, tot.refused, tot.wl001, tot.unknown, tot.losses, tot.unexpected,
		   tot.deadlocks, tot.hk_calls, tot.hk_errors, tot.hk_deadlocks, tot.connect_attempts,
		   now_seconds() - started_at);
	return tot.unexpected + tot.hk_errors > 0 ? 1 : 0;
}
