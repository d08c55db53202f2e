#!/usr/bin/env bash
# Starts a fresh OpenMemory server for benchmarking, in the foreground.
#
#   bench/serve.sh sqlite|postgres [extra gunicorn args...]
#
# sqlite:   a new, empty SQLite file data/bench/openmemory_bench.sqlite3
# postgres: drops and re-creates the database $OM_BENCH_DB (default openmemory_bench) on
#           $OM_BENCH_PG (default postgres://postgres@127.0.0.1:5432)
# Then runs the migrations and gunicorn on 127.0.0.1:${OM_PORT:-8090}. Other settings come
# from the environment as usual (OM_API_KEY, OM_EMBEDDINGS, ...). CELERY_BROKER_URL is
# cleared unless OM_BENCH_KEEP_BROKER=1, so summary regeneration runs in-process (the
# default deployment) rather than queueing onto a broker nobody consumes.
set -euo pipefail

cd "$(dirname "$0")/.."
db="${1:-}"
shift || true
port="${OM_PORT:-8090}"
pg="${OM_BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
pg_db="${OM_BENCH_DB:-openmemory_bench}"

mkdir -p data/bench
case "$db" in
  sqlite)
    file="$PWD/data/bench/openmemory_bench.sqlite3"
    rm -f "$file" "$file-wal" "$file-shm" "$file-journal"
    export DATABASE_URL="sqlite:///$file"
    ;;
  postgres)
    psql "$pg/postgres" -v ON_ERROR_STOP=1 -q \
      -c "DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)" \
      -c "CREATE DATABASE \"$pg_db\""
    export DATABASE_URL="$pg/$pg_db"
    ;;
  *)
    echo "usage: $0 sqlite|postgres [extra gunicorn args...]" >&2
    exit 2
    ;;
esac

if [ "${OM_BENCH_KEEP_BROKER:-0}" != 1 ]; then
  unset CELERY_BROKER_URL
fi
export OM_LOG_LEVEL="${OM_LOG_LEVEL:-WARNING}"

echo "bench server: $db ($DATABASE_URL) on 127.0.0.1:$port" >&2
.venv/bin/python manage.py migrate --noinput -v0
# A control socket of its own: gunicorn's default (~/.gunicorn/gunicorn.ctl) is shared by every
# gunicorn of this user, so a `gunicornc` aimed at another server could reach this one.
exec .venv/bin/gunicorn openmemory.wsgi --bind "127.0.0.1:$port" --workers 3 \
  --worker-class gthread --threads 4 --control-socket "$PWD/data/bench/gunicorn-$port.ctl" "$@"
