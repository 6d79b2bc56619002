# wallet — PGXS build.
#
# The version lives in META.json only; wallet.control must agree (checked
# by the `versioncheck` prerequisite of every build).  The install script
# wallet--<version>.sql is assembled from the readable parts in
# ext/install/ (numbered by load order); upgrade scripts
# wallet--<from>--<to>.sql and the frozen install scripts of released
# versions live in ext/ and are installed as they are.

PG_CONFIG ?= $(shell command -v pg_config >/dev/null 2>&1 && [ "$$(pg_config --version | sed 's/[^0-9]*\([0-9]*\).*/\1/')" = 15 ] && echo pg_config || echo /usr/lib/postgresql/15/bin/pg_config)

# wallet, and the two SQL-only extensions of a sharded wallet (doc/sharding.md)
EXTENSION  = wallet wallet_shard wallet_router
EXTVERSION := $(shell sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' META.json | head -n 1)

MODULE_big = wallet
OBJS = \
	src/money.o \
	src/currency_iso.o \
	src/currency.o \
	src/amount.o \
	src/amount_ops.o \
	src/ledger.o \
	src/rows.o \
	src/batch.o \
	src/history.o \
	src/holds.o \
	src/audit.o \
	src/worker.o

INSTALL_PARTS = $(sort $(wildcard ext/install/*.sql))
DATA_built = wallet--$(EXTVERSION).sql
DATA = $(filter-out ext/wallet--$(EXTVERSION).sql,$(wildcard ext/wallet--*.sql)) \
	$(wildcard ext/shard/wallet_shard--*.sql) $(wildcard ext/router/wallet_router--*.sql)

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=.
CONTRIB_TESTDB = wallet_regress

# -Wextra is on; these three only fire inside PostgreSQL's own headers and
# fmgr conventions (PG_FUNCTION_ARGS, designated initialisers, int/size_t).
PG_CFLAGS = -std=gnu99 -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare -Isrc
SHLIB_LINK =

EXTRA_CLEAN = test/unit/test_money test/fuzz/fuzz_parse

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
else
# No server headers yet (fresh machine): only the driver targets below work;
# `make run` / `make test` install the Debian packages first.
all:
	bash scripts/deps.sh
	$(MAKE) all
endif

wallet--$(EXTVERSION).sql: $(INSTALL_PARTS) META.json
	@{ echo "-- wallet $(EXTVERSION): generated from ext/install/*.sql by the Makefile; edit the parts."; \
	   printf '%s\n' '\echo Use "CREATE EXTENSION wallet" to load this file. \quit'; \
	   for f in $(INSTALL_PARTS); do echo; echo "-- ==== $$f ===="; cat $$f; done; } > $@

$(OBJS): src/money.h src/wallet.h src/ledger.h | versioncheck

.PHONY: versioncheck run test stop bench bench-shard stress fuzz unit
versioncheck:
	@grep -q "^default_version = '$(EXTVERSION)'" wallet.control || \
	  { echo "wallet.control default_version differs from META.json version $(EXTVERSION)" >&2; exit 1; }

# ---- the two commands, and the longer runs ----
run:
	+@bash scripts/run.sh
test:
	+@bash scripts/test.sh
stop:
	+@bash scripts/cluster.sh stop run
bench:
	+@bash test/bench/bench.sh
bench-shard:
	+@bash test/bench/shard_bench.sh
stress:
	+@bash scripts/test.sh --stress
fuzz:
	+@bash test/fuzz/fuzz.sh 600

# ---- the core alone (no server needed) ----
CORE_SRC = src/money.c src/currency_iso.c
unit: test/unit/test_money
	./test/unit/test_money
test/unit/test_money: test/unit/test_money.c $(CORE_SRC) src/money.h
	$(CC) -std=gnu99 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all -Isrc -o $@ test/unit/test_money.c $(CORE_SRC)
test/fuzz/fuzz_parse: test/fuzz/fuzz_parse.c $(CORE_SRC) src/money.h
	clang -std=gnu99 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Isrc -o $@ test/fuzz/fuzz_parse.c $(CORE_SRC)
