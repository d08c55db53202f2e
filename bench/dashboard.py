"""Times the admin lists and the staff dashboard over N memories in a throwaway database.

Loads --memories (default 100000) memories over --users users straight through
memories.services.memory_create_batch (chunks of 500, texts from bench/load.py's generator,
creation dates spread over the last 30 days), creates a staff user, then requests each page
with Django's test Client --repeat times (after one warm-up) and prints the median, the
slowest run and the query count per page. The target is under 1000 ms per page.

    .venv/bin/python bench/dashboard.py                      # SQLite in a temporary OM_DATA_DIR
    .venv/bin/python bench/dashboard.py --database-url postgres://postgres@127.0.0.1:5432/openmemory_dashbench

A PostgreSQL database is created (dropped first if it exists) and dropped at the end, unless
--keep. Exit status 1 when a page answers non-200 or exceeds --budget-ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote_plus

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 500

sys.path.insert(0, str(ROOT / "bench"))
from throwaway import add_database_argument, throwaway_django  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--budget-ms", type=float, default=1000.0)
    add_database_argument(parser)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse",
        metavar="DIR",
        default="",
        help="measure a database kept by --keep (SQLite: its OM_DATA_DIR; PostgreSQL: pass "
        "--database-url too) without loading; implies --keep",
    )
    parser.add_argument(
        "--no-analyze", action="store_true", help="skip ANALYZE (VACUUM ANALYZE on PostgreSQL)"
    )
    return parser.parse_args(argv)


def load(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Stores the memories; returns (user_id, content) samples for the searches."""
    from load import TextGenerator  # bench/load.py: the same texts as the HTTP benchmark

    from core import clock
    from memories.models import Memory
    from memories.services import MemoryInput, memory_create_batch

    generator = TextGenerator(random.Random(args.seed))
    users = [f"user-{i:05d}" for i in range(1, args.users + 1)]
    now = clock.now()
    chunks = (args.memories + CHUNK - 1) // CHUNK
    samples: list[tuple[str, str]] = []
    started = time.perf_counter()
    for index in range(chunks):
        size = min(CHUNK, args.memories - index * CHUNK)
        items = []
        for j in range(size):
            generated = generator.memory(users[(index * CHUNK + j) % len(users)])
            items.append(
                MemoryInput(content=generated.content, user_id=generated.user, tags=generated.tags)
            )
        results = memory_create_batch(items=items)
        # Oldest chunks first, so the per-day chart covers the whole 30-day window.
        age = timedelta(days=29 * (chunks - 1 - index) / max(chunks - 1, 1), minutes=index)
        Memory.objects.filter(pk__in=[r.memory.pk for r in results]).update(created_at=now - age)
        if index % 20 == 0:
            samples.append((items[0].user_id, items[0].content))
            done = index * CHUNK + size
            rate = done / (time.perf_counter() - started)
            print(f"  loaded {done:>7} memories ({rate:,.0f}/s)", file=sys.stderr)
    print(
        f"  load: {args.memories} memories in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    return samples


def stored_samples() -> list[tuple[str, str]]:
    from memories.models import Memory

    rows = Memory.objects.filter(user_id__isnull=False).order_by("created_at")
    return list(rows.values_list("user_id", "content")[:10])


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def pages(samples: list[tuple[str, str]]) -> list[tuple[str, str]]:
    from memories.models import Tag
    from users.models import UserSummary

    user_id, content = samples[len(samples) // 2]
    words = [w.strip(".,").lower() for w in content.split() if len(w) > 4]
    word = words[0] if words else "coffee"
    tag = Tag.objects.order_by("name").values_list("name", flat=True).first() or "x"
    summary = UserSummary.objects.values_list("pk", flat=True).first()
    question = " ".join(content.split()[:6])
    memories = "/admin/memories/memory/"
    return [
        ("admin: memory list", memories),
        ("admin: memory list, page 50", f"{memories}?p=50"),
        ("admin: memory search (content)", f"{memories}?q={quote_plus(word)}"),
        ("admin: memory search (user id)", f"{memories}?q={user_id}"),
        ("admin: memory list, tag+sector", f"{memories}?tag={tag}&primary_sector=semantic"),
        ("admin: memory list sorted by salience", f"{memories}?o=5"),
        ("admin: memory change form", f"{memories}{_any_memory()}/change/"),
        ("admin: tag list", "/admin/memories/tag/"),
        ("admin: tag list by count", "/admin/memories/tag/?o=-2"),
        ("admin: summary list", "/admin/users/usersummary/"),
        ("admin: summary detail", f"/admin/users/usersummary/{summary}/change/"),
        ("dashboard: home", "/dashboard/"),
        ("dashboard: user page", f"/dashboard/users/{user_id}/"),
        ("dashboard: user page + search", f"/dashboard/users/{user_id}/?q={quote_plus(question)}"),
    ]


def _sizes() -> tuple[int, int]:
    from memories.models import Memory

    users = Memory.objects.filter(user_id__isnull=False).values("user_id").distinct().count()
    return Memory.objects.count(), users


def _any_memory() -> str:
    from memories.models import Memory

    return str(Memory.objects.order_by("-created_at").values_list("pk", flat=True).first())


def measure(targets: list[tuple[str, str]], repeat: int) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    staff, _ = get_user_model().objects.get_or_create(
        username="bench-staff", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(staff)
    rows = []
    for name, path in targets:
        with CaptureQueriesContext(connection) as ctx:
            status = client.get(path).status_code  # warm-up, and the query count
        # Read now: captured_queries is a view of the connection's log, which the next
        # request resets.
        queries = len(ctx.captured_queries)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(path)
            times.append((time.perf_counter() - started) * 1000)
        rows.append(
            {
                "page": name,
                "status": status,
                "queries": queries,
                "median_ms": statistics.median(times),
                "max_ms": max(times),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Regenerations for every user's first memory still run (eagerly, in-process); the
    # interval ones would only slow the load down without changing what is measured.
    os.environ.setdefault("OM_USER_SUMMARY_INTERVAL", "1000")
    with throwaway_django(
        args.database_url, "dashbench", keep=args.keep, reuse_dir=args.reuse or None
    ):
        from django.db import connection
        from django.urls import get_resolver

        # Imports every view now, so the pages measured are the code as it was at the start.
        get_resolver().resolve("/dashboard/")
        if args.reuse:
            samples = stored_samples()
        else:
            samples = load(args)
            if not args.no_analyze:
                analyze()
        rows = measure(pages(samples), args.repeat)
        vendor = connection.vendor
        total, users = _sizes()

    print(f"\n{vendor}, {total:,} memories over {users:,} users, "
          f"median of {args.repeat} (ms)")  # fmt: skip
    print(f"{'page':<40} {'status':>6} {'queries':>7} {'median':>8} {'max':>8}")
    failed = False
    for row in rows:
        over = row["status"] != 200 or row["median_ms"] > args.budget_ms
        failed |= over
        print(
            f"{row['page']:<40} {row['status']:>6} {row['queries']:>7} "
            f"{row['median_ms']:>8.1f} {row['max_ms']:>8.1f}{'  OVER' if over else ''}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
