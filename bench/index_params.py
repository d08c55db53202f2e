"""HNSW build parameters against recall@10 and speed: one database, the index rebuilt per setting.

By hand, never in CI. Loads --memories over --users in-process (memory_create_batch, one
user's batch of 500 at a time, texts of bench/load.py's generator), then for each
`m:ef_construction` of --params builds the index (timed) and, for each ef_search of --ef,
asks --questions unfiltered questions (new texts of the same generator, as
`bench/scale.py --reuse` asks) through the product's pgvector backend, against an exact
distance sort of the same scope:

    .venv/bin/python bench/index_params.py --memories 100000 --params 16:64,16:128,32:128

With OM_EMBEDDINGS=local the memories are embedded by the local model (slow to load: a few
hundred memories a second here). The product builds with m 16 (pgvector's default) and
ef_construction 200 (migration 0013, chosen with this script); pgvector's default is 64.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from load import TextGenerator, log  # noqa: E402
from scale import recall_at_k  # noqa: E402
from throwaway import throwaway_django  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/om_bench_params"
    )
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--params", default="16:64,16:128,32:128", help="m:ef_construction,...")
    parser.add_argument("--ef", default="40,100,200", help="hnsw.ef_search values")
    parser.add_argument("--seed", type=int, default=13)
    return parser.parse_args()


def load(args) -> None:
    from memories.services import MemoryInput, memory_create_batch

    per_user = args.memories // args.users
    started = time.perf_counter()
    for number in range(args.users):
        user = f"user-{number:05d}"
        gen = TextGenerator(random.Random(f"{args.seed}:{user}"))
        for first in range(0, per_user, 500):
            items = [
                MemoryInput(content=item.content, user_id=user, tags=item.tags)
                for item in (gen.memory(user) for _ in range(min(500, per_user - first)))
            ]
            memory_create_batch(items=items)
        if (number + 1) % max(1, args.users // 10) == 0:
            done = (number + 1) * per_user
            log(f"  loaded {done:,} ({done / (time.perf_counter() - started):,.0f}/s)")


def build(m: int, ef_construction: int) -> float:
    from django.db import connection

    from memories.vector_search import _CREATE_HNSW, HNSW_INDEX

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
        cursor.execute("SET maintenance_work_mem = '2GB'")
        create = _CREATE_HNSW.replace(
            "WITH (ef_construction = 200)", f"WITH (m = {m}, ef_construction = {ef_construction})"
        )
        assert create != _CREATE_HNSW or (m, ef_construction) == (16, 200)
        cursor.execute(create)
        cursor.execute("RESET maintenance_work_mem")
    return time.perf_counter() - started


def main() -> int:
    args = parse_args()
    os.environ.setdefault("OM_EMBEDDINGS", "synthetic")
    with throwaway_django(args.database_url, "params"):
        from django.conf import settings
        from django.core.management import call_command

        log(f"loading {args.memories:,} memories over {args.users:,} users")
        call_command("vector_index", "drop")  # built once below, as for any import
        load(args)
        call_command("vector_index", "build")
        rng = random.Random(f"{args.seed}:questions")
        texts = []
        for _ in range(args.questions):
            user = f"user-{rng.randrange(args.users):05d}"
            gen = TextGenerator(random.Random(f"{args.seed}:ask:{user}:{len(texts)}"))
            texts.append(TextGenerator.question(gen.memory(user)))
        print(f"{'m':>3} {'ef_c':>5} {'build s':>8} {'ef_search':>9} {'recall':>7} "
              f"{'w/ ties':>7} {'index ms':>8} {'exact ms':>8}")  # fmt: skip
        for pair in args.params.split(","):
            m, ef_construction = (int(part) for part in pair.split(":"))
            seconds = build(m, ef_construction)
            for ef in (int(value) for value in args.ef.split(",")):
                settings.OM_HNSW_EF_SEARCH = ef
                got = recall_at_k(texts, None)
                print(f"{m:>3} {ef_construction:>5} {seconds:>8.1f} {ef:>9} {got['recall']:>7} "
                      f"{got['recall_ties']:>7} {got['index_ms']:>8} {got['exact_ms']:>8}",
                      flush=True)  # fmt: skip
        build(16, 200)  # as the migrations left it
    return 0


if __name__ == "__main__":
    sys.exit(main())
