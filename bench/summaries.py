"""Summary regeneration time for users with 100, 1,000 and 10,000 memories (extractive).

Seeds one user per size into a throwaway database, then times the real service path,
users.services.user_summary_regenerate (summary text plus bookkeeping), and the summarizer
alone, printing the median (and min / max) of several runs in milliseconds.

    .venv/bin/python bench/summaries.py                      # temporary SQLite file
    .venv/bin/python bench/summaries.py --database-url postgres://postgres@127.0.0.1:5432/openmemory_sumbench

For PostgreSQL the named database is dropped if it exists, created, and dropped again at the
end. Memory texts come from bench/load.py's generator: varied sentences in several sectors,
each with a category and a topic tag.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta

from throwaway import add_database_argument, throwaway_django

CHUNK = 500


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument(
        "--sizes",
        default="100,1000,10000",
        help="memories per user, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=9, help="timed runs per size (default: 9)")
    parser.add_argument("--seed", type=int, default=7, help="random seed for the texts")
    parser.add_argument("--show", action="store_true", help="print each summary's text")
    return parser.parse_args(argv)


def seed_user(user_id: str, size: int, rng: random.Random, texts) -> None:
    """`size` distinct memories for one user, then varied salience and last-seen times so
    the ranking has real work to do (a fresh batch would tie on both)."""
    from core import clock
    from memories.models import Memory
    from memories.services import MemoryInput, memory_create_batch

    ids = []
    for start in range(0, size, CHUNK):
        items = [texts.memory(user_id) for _ in range(min(CHUNK, size - start))]
        results = memory_create_batch(
            items=[MemoryInput(item.content, user_id=user_id, tags=item.tags) for item in items]
        )
        ids += [result.memory.pk for result in results]
    now = clock.now()
    rows = list(Memory.objects.filter(pk__in=ids).only("pk", "salience", "last_seen_at"))
    for row in rows:
        row.salience = round(rng.uniform(0.05, 1.0), 3)
        row.last_seen_at = now - timedelta(days=rng.uniform(0, 400))
    Memory.objects.bulk_update(rows, ["salience", "last_seen_at"], batch_size=CHUNK)


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm-up: connection, caches, the first query plan
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    os.environ["OM_SUMMARIZER"] = "extractive"
    with throwaway_django(args.database_url, "sumbench") as database_url:
        from django.db import connection
        from load import TextGenerator

        from memories.models import Memory
        from users.services import user_summary_regenerate
        from users.summarizer import summarize

        rng = random.Random(args.seed)
        texts = TextGenerator(random.Random(args.seed))
        started = time.perf_counter()
        for size in sizes:
            seed_user(f"sumbench-{size}", size, rng, texts)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # what autovacuum would have done by now
        seeded = time.perf_counter() - started

        engine = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
        print(f"{engine} ({database_url}); seeded in {seeded:.1f} s; {args.runs} runs each")
        print(
            f"{'memories':>9}  {'regenerate median':>17}  {'min':>7}  {'max':>7}"
            f"  {'summarize median':>16}  {'words':>5}"
        )
        for size in sizes:
            user_id = f"sumbench-{size}"
            count = Memory.objects.filter(user_id=user_id).count()
            service = timed(lambda u=user_id: user_summary_regenerate(user_id=u), args.runs)
            alone = timed(lambda u=user_id: summarize(u), args.runs)
            text = summarize(user_id).text
            print(
                f"{count:>9,}  {statistics.median(service):>14.1f} ms  {min(service):>7.1f}"
                f"  {max(service):>7.1f}  {statistics.median(alone):>13.1f} ms"
                f"  {len(text.split()):>5}"
            )
            if args.show:
                print(f"           {text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
