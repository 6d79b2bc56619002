/*
 * ledger.h — the posting engine's internal interface, shared by ledger.c
 * (transfer, post, batches, fold), holds.c and the live-streaming flows.
 */
#ifndef WALLET_LEDGER_H
#define WALLET_LEDGER_H

#include "wallet.h"
#include "access/htup.h"
#include "storage/itemptr.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

/* Limits on what callers pass in (documented in the README). */
#define LEDGER_MAX_KEY_LEN		200
#define LEDGER_MAX_KIND_LEN		64
#define LEDGER_MAX_METADATA		65536	/* bytes of jsonb */
#define LEDGER_MAX_LEGS			1000

typedef struct LedgerLeg
{
	int64		account;
	int64		units;			/* signed: negative debits, positive credits */
	MoneyCode	currency;
} LedgerLeg;

/*
 * A user's debt account, as refund_recharge opens it: kind 'debt' and
 * metadata debt_of naming its user (an account id: 1 to 19 digits, at most
 * int64's maximum, as a JSON number or string; sharded ids pass 10^18 from
 * shard 3553 on).  The one definition: this SQL expression, given the
 * account row's alias with its dot ("a."), yields the user's id or NULL;
 * plans that read accounts use it, and read_account() (rows.c) applies the
 * same rule to a row read in C.  The kind alone is not enough: before
 * 1.6.0 open_account took kind 'debt' for any account, and this library
 * serves databases still on those versions.
 */
#define LEDGER_DEBT_USER_SQL(alias) \
	"(CASE WHEN " alias "kind = 'debt' AND " alias "metadata ->> 'debt_of' ~ '^[0-9]{1,19}$' " \
	"THEN CASE WHEN (" alias "metadata ->> 'debt_of')::numeric <= 9223372036854775807 " \
	"THEN (" alias "metadata ->> 'debt_of')::bigint END END)"

typedef struct AccountState
{
	int64		id;
	bool		found;
	bool		locked;			/* row lock held by us */
	MoneyCode	currency;
	char		status;			/* 'a'ctive, 'f'rozen, 'c'losed */
	bool		allow_negative;
	bool		hot;
	bool		forced_negative;
	int64		balance;
	int64		held;
	int64		debt_account;	/* 0 if none */
	bool		is_debt;		/* a user's debt account (LEDGER_DEBT_USER_SQL):
								 * never above zero */
	/* what this posting does to it */
	int64		delta;
	int64		held_delta;
	bool		debited;		/* some leg takes money out */
	MoneyCode	leg_currency;
	/* the row (rows.c): the version read, and a copy of it when locked */
	ItemPointerData tid;
	HeapTuple	tuple;
	bool		force_lock;		/* lock the row even if hot (set by the caller) */
	bool		forced_after;	/* forced_negative to write */
	bool		unlocked_write; /* read without lock: write only if unchanged */
	bool		hot_lock_due;	/* hot, read without its hot lock (batch): take
								 * it after the writes and check the row */
	bool		stale_hot;		/* read as hot, no longer hot under its hot lock
								 * (set_hot(id, false) in between): retry */
	/* batch replay (batch.c) */
	bool		funds_loaded;	/* hot pending rows and debt looked up */
	int128		pending;		/* committed hot pending credits (not in balance) */
	bool		has_debt;		/* its debt account is negative */
} AccountState;

typedef struct PostRequest
{
	text	   *key;			/* idempotency key (validated) */
	text	   *kind;
	Jsonb	   *metadata;		/* may be NULL */
	LedgerLeg  *legs;
	int			nlegs;
	bool		force;			/* may overdraw non-negative accounts */
	int64		reverses;		/* original transaction id, or 0 */
	/* a hold being captured: its reservation is released by this posting */
	int64		release_account;
	int64		release_units;	/* > 0 when used */
	/* extra text mixed into the request fingerprint (e.g. a hold id) */
	const char *fingerprint_extra;
	/* legs the fingerprint is made of when not legs (NULL: legs) */
	LedgerLeg  *fingerprint_legs;
	int			fingerprint_nlegs;
	/* an account locked with the others though no leg names it (0: none) */
	int64		extra_account;
	/* accounts whose row is locked even when hot (0: none) */
	int64		lock_ids[2];
	/*
	 * Called once every account is locked and read, before validation: may
	 * move units between legs, adding at most one leg on extra_account
	 * (legs has room for it), and must change the states' delta to match.
	 */
	void		(*after_lock) (struct PostRequest *req, AccountState *states, int nstates);
	void	   *after_lock_arg;
} PostRequest;

typedef struct PostResult
{
	int64		txn_id;
	bool		existed;		/* same key, same request: nothing posted */
} PostResult;

/*
 * A hot account's posted balance is its stored balance plus its pending
 * credits, which postings add without reading them.  So that the sum stays
 * within int64 without that read, a credit goes to the pending rows only
 * while the stored balance is at most HOT_SAFE_BALANCE and the credit at
 * most HOT_SAFE_CREDIT; otherwise the row is locked, the account's hot lock
 * taken exclusively (credits in flight finish first, no new ones start) and
 * the credit checked against stored + pending exactly
 * (ledger_check_hot_credit).  Pending credits could then only overflow after
 * more than 2^10 credits of 2^52 minor units each between two folds; funds
 * checks add stored and pending in 128 bits, so such an account can still
 * be debited back into range, and fold_hot() leaves it pending until then.
 */
#ifndef HAVE_INT128
#error "wallet needs a 128-bit integer type (for hot accounts' posted balances)"
#endif
#define HOT_SAFE_BALANCE	(INT64CONST(1) << 62)
#define HOT_SAFE_CREDIT		(INT64CONST(1) << 52)
/*
 * A credit past the safe bounds (see above).  Debits of a hot account
 * allowed to go negative, which skip the row lock too, take no bound:
 * bounding them the same way (the exclusive hot lock) let single calls
 * deadlock with each other and with batches (a review found 40P01 in a
 * mix of transfers and batches), so past int64's minimum their posted
 * balance is reported instead (wallet.accounts shows NULL, balance() is
 * 22003, verify() names the account, fold_hot() keeps the rows pending).
 */
#define HOT_UNSAFE(balance, delta) \
	((balance) > HOT_SAFE_BALANCE || (delta) > HOT_SAFE_CREDIT)
extern void ledger_check_hot_credit(AccountState *st, int64 delta);

/* keys with this prefix are the engine's own */
#define LEDGER_RESERVED_PREFIX "wallet:"

/* Validates the shared arguments; raise 22004/22023 errors. */
extern text *ledger_check_key(text *key);
extern text *ledger_check_key_ext(text *key, bool allow_reserved);
extern text *ledger_check_kind(text *kind);
extern Jsonb *ledger_check_metadata(Jsonb *metadata);

/* Posts one transaction.  Caller must be connected to SPI. */
extern PostResult ledger_post(PostRequest *req);

/* WL004/WL005 for a frozen ('f') or closed ('c') account; no-op if active */
extern void ledger_raise_status(int64 id, char status);
extern char *ledger_code_str(const MoneyCode *c);
extern SPIPlanPtr ledger_prepare_kept(const char *sql, int nargs, Oid *argtypes);

/* Lock helpers shared with holds.c (SPI connected). */
extern void ledger_lock_hot_shared(int64 account_id);
/* committed pending credits of a hot account (int128: see HOT_SAFE_BALANCE) */
extern int128 ledger_pending(int64 account_id);
/* the hot lock in exclusive mode: waits for credits in flight (see ledger.c) */
extern void ledger_lock_hot_exclusive(int64 account_id);
extern bool ledger_lock_hot_after_writes(AccountState *states, int nstates);
extern void ledger_raise_stale_hot(AccountState *states, int nstates);
extern void ledger_check_account_unchanged(int64 id);
extern int64 ledger_stored_balance(int64 account_id);

/* ---- rows.c: direct row access ---- */

/*
 * OIDs and column numbers of the wallet tables, looked up by name once (with
 * the column types checked) and forgotten on any relcache invalidation of
 * one of them (DROP/CREATE EXTENSION in the same session, ALTER TABLE).
 */
typedef struct WalletRels
{
	bool		valid;
	Oid			account;
	Oid			account_pkey;
	Oid			txn;
	Oid			txn_pkey;		/* (id) */
	Oid			txn_seq;
	Oid			entry;
	Oid			entry_pkey;		/* (txn_id, leg) */
	Oid			history;		/* wallet.account_history */
	Oid			hot_pending;	/* wallet.hot_pending */
	/* wallet.account columns */
	AttrNumber	a_id,
				a_currency,
				a_status,
				a_allow_negative,
				a_hot,
				a_balance,
				a_held,
				a_version,
				a_forced_negative,
				a_debt_account,
				a_kind,
				a_metadata;
	/* wallet.txn columns */
	AttrNumber	t_id,
				t_key,
				t_kind,
				t_hash,
				t_metadata,
				t_reverses,
				t_forced,
				t_created_at;
	/* wallet.entry columns */
	AttrNumber	e_txn,
				e_leg,
				e_account,
				e_amount;
	/* wallet.account_history columns */
	AttrNumber	h_account,
				h_last,
				h_first,
				h_txn_ids,
				h_amounts;
	/* wallet.hot_pending columns */
	AttrNumber	p_account,
				p_txn,
				p_amount;
} WalletRels;

/* the cache, loaded (ERROR when a table or column is missing) */
extern const WalletRels *ledger_rels(void);

/*
 * A forward scan of a ledger table through its primary key from key > after
 * (the journal's txn or entry table, in id order): the sealer's and
 * verifier's journal reader and the history filing read the journal so.
 * Advance it with index_getnext_slot(s.scan, ForwardScanDirection, s.slot).
 */
typedef struct LedgerRangeScan
{
	Relation	rel;
	Relation	idx;
	struct IndexScanDescData *scan;
	struct TupleTableSlot *slot;
} LedgerRangeScan;

extern void ledger_range_scan_begin(LedgerRangeScan *s, Oid rel, Oid pkey, int64 after,
									Snapshot snap);
extern void ledger_range_scan_end(LedgerRangeScan *s);

/*
 * nrows rows of wallet.account_history (history.c's filing pass): row r is
 * account acc[r], transactions first[r] .. last[r], holding elements
 * starts[r] .. ends[r] (1-based, inclusive, as SQL array slices) of txns[]
 * and amts[].  false, writing nothing, when the table has a trigger, check
 * or extra column that needs the SQL path.
 */
extern bool ledger_append_history(int nrows, const int64 *acc, const int64 *last,
								  const int64 *first, const int32 *starts, const int32 *ends,
								  const int64 *txns, const int64 *amts);

/* sorted-by-id account states: lock/read them */
extern void ledger_load_accounts(AccountState *states, int nstates, int64 *debit_ids, int ndebit,
								 int64 *held_ids, int nheld);
/* the same without row locks (batch; see rows.c) */
extern void ledger_read_accounts_for_update(AccountState *states, int nstates,
											int64 *debit_ids, int ndebit);
/* apply delta/held_delta/forced_after to the locked ones; false: one changed */
extern bool ledger_write_accounts(AccountState *states, int nstates);
/* bulk journal rows; false = use the SQL path instead (nothing written) */
extern void ledger_draw_txn_ids(int n, int64 *ids);
extern bool ledger_append_transfers(int n, text **keys, bytea **hashes, const int64 *ids);
extern bool ledger_append_entries(int n, const int64 *txn, const int16 *leg,
								  const int64 *account, const int64 *amount);
extern bool ledger_append_pending(int n, const int64 *account, int64 txn, const int64 *amount);

extern AccountState *ledger_find_state(AccountState *states, int n, int64 id);
extern bool ledger_repays_own_debt(const AccountState *user, AccountState *states, int n);
/* sort ascending (the lock order) and drop repeats; returns the new count */
extern int	ledger_sort_unique_ids(int64 *ids, int n);

/* legs of a transfer of `units` from one account to another */
extern void ledger_transfer_legs(LedgerLeg legs[2], int64 from, int64 to, int64 units,
								 const MoneyCode *currency);
/*
 * The same, after checking the amount is positive and the accounts differ
 * (22023; `what` names the operation in the message, `hint` may be NULL).
 */
extern void ledger_checked_transfer_legs(LedgerLeg legs[2], int64 from, int64 to,
										 const Amount *amount, const char *what,
										 const char *hint);

/* fingerprint of a request: 32 bytes SHA-256 as bytea */
extern bytea *ledger_fingerprint(const char *kind, int kindlen, LedgerLeg *legs,
								 int nlegs, Jsonb *metadata, const char *extra);

/* helpers for datum arrays */
extern Datum ledger_int8_array(const int64 *values, int n);
#endif
