#!/usr/bin/env bash
# One benchmark run against a fresh server:
#
#   bench/run.sh sqlite|postgres [load.py args...]
#
# Starts bench/serve.sh in the background (log: data/bench/server-<db>.log), waits for
# /health, runs bench/load.py against it with the given arguments, stops the server and exits
# with load.py's status. The API key defaults to "bench-key" (OM_API_KEY), so the
# authentication path is part of what is measured.
#
# OM_BENCH_ANALYZE=1 (the default for postgres) refreshes the planner statistics between the
# bulk load and the timed phases (VACUUM ANALYZE; for sqlite: ANALYZE), as autovacuum would
# in a normal PostgreSQL deployment. OM_BENCH_ANALYZE=0 (the default for sqlite, where nothing
# runs ANALYZE on its own) measures the database exactly as the bulk load left it.
set -euo pipefail

cd "$(dirname "$0")/.."
db="${1:-}"
case "$db" in
  sqlite | postgres) shift ;;
  *)
    echo "usage: $0 sqlite|postgres [load.py args...]" >&2
    exit 2
    ;;
esac
export OM_PORT="${OM_PORT:-8090}"
export OM_API_KEY="${OM_API_KEY:-bench-key}"
base="http://127.0.0.1:$OM_PORT"
mkdir -p data/bench
log="data/bench/server-$db.log"

if .venv/bin/python -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $OM_PORT)) != 0)"; then
  echo "port $OM_PORT is already in use; set OM_PORT" >&2
  exit 1
fi

bench/serve.sh "$db" >"$log" 2>&1 &
server=$!
stop() {
  if kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
}
trap stop EXIT

for _ in $(seq 1 240); do
  if .venv/bin/python - "$base/health" <<'PY' 2>/dev/null; then
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
    break
  fi
  if ! kill -0 "$server" 2>/dev/null; then
    echo "server exited during start-up; see $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  sleep 0.5
done

hook=()
if [ "$db" = postgres ]; then
  if [ "${OM_BENCH_ANALYZE:-1}" = 1 ]; then
    url="${OM_BENCH_PG:-postgres://postgres@127.0.0.1:5432}/${OM_BENCH_DB:-openmemory_bench}"
    hook=(--after-bulk "psql '$url' -q -c 'VACUUM ANALYZE'")
  fi
elif [ "${OM_BENCH_ANALYZE:-0}" = 1 ]; then
  hook=(--after-bulk ".venv/bin/python -c \"import sqlite3; \
sqlite3.connect('data/bench/openmemory_bench.sqlite3', isolation_level=None).execute('ANALYZE')\"")
fi

status=0
.venv/bin/python bench/load.py --base-url "$base" "${hook[@]}" "$@" || status=$?
if ! kill -0 "$server" 2>/dev/null; then
  echo "the server (pid $server) stopped during the run; see $log:" >&2
  grep -v "No directory at\|mw_instance" "$log" | tail -n 15 >&2
  status=1
fi
exit "$status"
