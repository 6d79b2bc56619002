#!/usr/bin/env bash
# scripts/run.sh — body of `make run`: deps, build + install, the `run`
# cluster (wallet preloaded, so the background worker runs), database
# `wallet` with a fresh CREATE EXTENSION, the demo, then how to connect.
# Safe to run again: the cluster is reused (restarted if wallet.so changed).
# Env: WALLET_PORT (54329).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO"
CLUSTER="$REPO/scripts/cluster.sh"
PORT=${WALLET_PORT:-54329}

bash scripts/deps.sh
echo "run: building"
make -s
make -s install

WALLET_PRELOAD=wallet bash "$CLUSTER" start run "$PORT"
eval "$(bash "$CLUSTER" env run)"
export PGHOST PGPORT PGUSER
unset PGPASSWORD PGSERVICE PGOPTIONS

if [ -z "$(psql -X -At -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'wallet'")" ]; then
  createdb wallet
  echo "run: created database wallet"
fi
PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -d wallet \
  -c 'DROP EXTENSION IF EXISTS wallet CASCADE; CREATE EXTENSION wallet'
echo "run: extension wallet (re)created in database wallet"

export PGDATABASE=wallet
if [ -f demo/demo.sh ]; then
  echo "run: demo/demo.sh"
  bash demo/demo.sh
elif [ -f demo/demo.sql ]; then
  echo "run: demo/demo.sql"
  psql -X -v ON_ERROR_STOP=1 -f demo/demo.sql
fi

echo
echo "Connect with:"
echo "psql \"host=$PGHOST port=$PGPORT dbname=wallet user=postgres\""
echo "'make stop' stops the cluster."
