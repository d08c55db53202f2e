"""Times a /metrics scrape (and each of its database counts) over N memories, and the cost
the request metrics add to every request, in a throwaway database.

Loads --memories memories over --users users (bench/load.py's texts, through
memories.services.memory_create_batch), then prints the
median and slowest of --repeat scrapes through Django's test Client, each count's query time,
and the time of recording one request's metrics (histogram + counter), per call.

    .venv/bin/python bench/metrics.py                       # SQLite, 100,000 memories
    .venv/bin/python bench/metrics.py --database-url postgres://postgres@127.0.0.1:5432/om_metricsbench
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from throwaway import add_database_argument, throwaway_django  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    add_database_argument(parser)
    return parser.parse_args(argv)


def load(memories: int, users: int, seed: int) -> None:
    import random

    from load import TextGenerator  # bench/load.py: the same texts as the HTTP benchmark

    from memories.services import MemoryInput, memory_create_batch

    generator = TextGenerator(random.Random(seed))
    names = [f"user-{i:05d}" for i in range(1, users + 1)]
    started = time.perf_counter()
    for start in range(0, memories, 500):
        items = []
        for n in range(start, min(start + 500, memories)):
            generated = generator.memory(names[n % users])
            items.append(
                MemoryInput(content=generated.content, user_id=generated.user, tags=generated.tags)
            )
        memory_create_batch(items=items)
    print(f"  load: {memories} memories in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, max) in ms of `repeat` calls after one warm-up."""
    call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OM_EMBEDDINGS", "synthetic")  # loading speed; not what is measured
    os.environ.setdefault("OM_USER_SUMMARY_INTERVAL", "1000")
    with throwaway_django(args.database_url, "metricsbench"):
        from django.db import connection
        from django.test import Client

        from core.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS
        from memories.selectors import (
            memories_awaiting_embedding,
            memories_count,
            users_with_memories_count,
        )

        load(args.memories, args.users, args.seed)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
        client = Client(HTTP_HOST="localhost")  # no OM_API_KEY here: the scrape is open

        def scrape() -> None:
            assert client.get("/metrics").status_code == 200

        rows = [
            ("GET /metrics (whole scrape)", timed(scrape, args.repeat)),
            ("  om_memories count", timed(memories_count, args.repeat)),
            ("  om_users count", timed(users_with_memories_count, args.repeat)),
            ("  (/health: awaiting embedding)", timed(memories_awaiting_embedding, args.repeat)),
        ]
        vendor = connection.vendor

    calls = 100_000
    started = time.perf_counter()
    for _ in range(calls):
        HTTP_REQUEST_DURATION.labels("GET", "/memory/{memory_id}").observe(0.01)
        HTTP_REQUESTS.labels("GET", "/memory/{memory_id}", "200").inc()
    per_request_us = (time.perf_counter() - started) / calls * 1e6

    print(f"\n{vendor}, {args.memories:,} memories over {args.users:,} users, ms")
    print(f"{'what':<36} {'median':>8} {'max':>8}")
    for name, (median, slowest) in rows:
        print(f"{name:<36} {median:>8.1f} {slowest:>8.1f}")
    print(f"request metrics per request (single process): {per_request_us:.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
