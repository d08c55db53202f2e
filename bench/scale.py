"""Scale benchmark on PostgreSQL: a million memories over ten thousand users, one giant user.

By hand, never in CI (the full run loads for most of an hour and wants a quiet machine):

    .venv/bin/python bench/scale.py                       # 1,000,000 / 10,000 / giant 200,000
    .venv/bin/python bench/scale.py --memories 50000 --users 500 --giant 10000   # small

It drops and re-creates --database-url, migrates it (manage.py migrate), starts gunicorn on it
(--workers gthread workers x 4 threads, API key on, tasks in-process as in `make run`), and:

1. bulk load: --giant memories for one user, the rest spread evenly over the other users,
   through POST /memory/add/batch (the product's import path), --load-clients threads;
   with --index build (the default, as README advises for an import this size) the HNSW
   index is dropped before (`manage.py vector_index drop`) and built after it in one pass
   (`manage.py vector_index build`, timed); with --index rows it stays and the background
   indexer takes each memory in; then VACUUM ANALYZE, as autovacuum would, and a wait until
   the background work the load left is done (GET /health summaries_queued,
   vectors_pending);
2. user-filtered queries: POST /memory/query {k: 10, filters: {user_id}} for random users,
   one client, each match checked to be that user's (isolation);
3. unfiltered admin queries (no user filter: the HNSW index over every memory), one client;
   their recall@10 against exact search, measured in this process through the product's own
   pgvector backend: the index path the server takes for a large scope versus an exact
   distance sort over the same scope and query vector;
4. the giant user's queries, timed, and their recall@10 the same way;
5. mixed traffic: --clients threads for --mixed-seconds, each request a single add (share
   --write-share) or a user-filtered query;
then each gunicorn worker's resident memory and the database's size per memory.

--reuse skips the drop and the load and measures a database a --keep run left (the load is
the long part), asking questions of the same kind (written from new texts of the generator).
Exit status 1 on any failed request or isolation violation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from load import Client, TextGenerator, log, percentiles, wait_for_background  # noqa: E402
from throwaway import recreate_postgres  # noqa: E402

API_KEY = "bench-key"
K = 10


@dataclass
class Result:
    failures: list[str] = field(default_factory=list)
    violations: int = 0

    def fail(self, message: str) -> None:
        if len(self.failures) < 10:
            log(f"  FAILED: {message}")
        self.failures.append(message)


@dataclass
class Population:
    """Who holds what: memory id -> user index, and a few texts per user to ask about."""

    users: list[str]
    giant: str
    owner: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)


def user_ids(count: int) -> list[str]:
    return [f"user-{i:05d}" for i in range(count)]


def plan(memories: int, users: int, giant: int) -> list[tuple[str, int]]:
    """(user, how many memories) for every user: the giant first, the rest spread evenly."""
    names = user_ids(users)
    rest, others = memories - giant, names[1:]
    if giant > memories or (rest and not others):
        raise SystemExit("--giant must leave memories for the other users (and --users >= 2)")
    share, extra = divmod(rest, len(others)) if others else (0, 0)
    return [(names[0], giant)] + [(u, share + (i < extra)) for i, u in enumerate(others)]


def bulk_load(args, population: Population, result: Result) -> float:
    """Sends every user's memories in batches of --batch (a batch holds one user's memories,
    as an import or an app's backfill would); returns memories per second."""
    work = plan(args.memories, args.users, args.giant)
    jobs: list[tuple[str, int, int]] = []  # (user, first index, count)
    for user, count in work:
        jobs.extend((user, s, min(args.batch, count - s)) for s in range(0, count, args.batch))
    random.Random(args.seed).shuffle(jobs)
    lock = threading.Lock()
    done = [0]
    total = sum(count for _, count in work)
    index = {u: i for i, u in enumerate(population.users)}
    started = time.perf_counter()

    def worker(mine: list[tuple[str, int, int]]) -> None:
        client = Client(args.base_url, API_KEY, 300)
        try:
            for user, first, count in mine:
                # Texts are distinct within a user (as the product deduplicates per user);
                # the same sentence may belong to several users.
                gen = TextGenerator(random.Random(f"{args.seed}:{user}:{first}"))
                items = [gen.memory(user) for _ in range(count)]
                body = {
                    "items": [
                        {"content": it.content, "user_id": user, "tags": it.tags} for it in items
                    ]
                }
                try:
                    status, data = client.request("POST", "/memory/add/batch", body)
                except OSError as exc:
                    client.close()
                    result.fail(f"batch: {exc}")
                    continue
                if status != 201:
                    result.fail(f"batch: HTTP {status}: {data[:200]!r}")
                    continue
                ids = json.loads(data)["ids"]
                with lock:
                    if len(ids) != len(items):
                        result.fail(f"batch: {len(ids)} ids for {len(items)} items")
                    population.owner.update(dict.fromkeys(ids, index[user]))
                    population.samples.setdefault(user, []).extend(
                        TextGenerator.question(it) for it in items[:3]
                    )
                    done[0] += count
                    if done[0] * 20 // total != (done[0] - count) * 20 // total:
                        rate = done[0] / (time.perf_counter() - started)
                        log(f"  loaded {done[0]:,}/{total:,} ({rate:,.0f}/s)")
        finally:
            client.close()

    threads = [
        threading.Thread(target=worker, args=(jobs[i :: args.load_clients],))
        for i in range(args.load_clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return total / (time.perf_counter() - started)


def query(client: Client, text: str, user: str | None, result: Result) -> tuple[float, list]:
    body: dict = {"query": text, "k": K}
    if user is not None:
        body["filters"] = {"user_id": user}
    try:
        ms, status, data = client.timed("POST", "/memory/query", body)
    except OSError as exc:
        client.close()
        result.fail(f"query: {exc}")
        return 0.0, []
    if status != 200:
        result.fail(f"query: HTTP {status}: {data[:200]!r}")
        return 0.0, []
    return ms, json.loads(data)["matches"]


def check_isolation(user: str, matches: list, population: Population, result: Result) -> None:
    """Every match must be one of `user`'s memories, by what this script stored."""
    want = int(user.rsplit("-", 1)[1])
    for match in matches:
        if population.owner.get(match["id"]) != want or match.get("user_id") != user:
            result.violations += 1


def questions(population: Population, rng: random.Random, n: int, who: list[str]):
    for _ in range(n):
        user = rng.choice(who)
        yield user, rng.choice(population.samples.get(user) or ["what does the user like?"])


def filtered_queries(args, population, result, users: list[str], n: int) -> list[float]:
    client = Client(args.base_url, API_KEY, 60)
    rng = random.Random(f"{args.seed}:q:{users[0]}")
    latencies = []
    for user, text in questions(population, rng, n, users):
        ms, matches = query(client, text, user, result)
        if matches:
            latencies.append(ms)
            check_isolation(user, matches, population, result)
    client.close()
    return latencies


def unfiltered_queries(args, population, result) -> tuple[list[float], list[str]]:
    client = Client(args.base_url, API_KEY, 60)
    rng = random.Random(f"{args.seed}:admin")
    latencies, texts = [], []
    for _, text in questions(population, rng, args.admin_queries, population.users):
        ms, matches = query(client, text, None, result)
        if matches:
            latencies.append(ms)
            texts.append(text)
    client.close()
    return latencies, texts


def recall_at_k(texts: list[str], user: str | None) -> dict:
    """Recall@K of the index path the server takes for a large scope against an exact
    distance sort of the same scope, and the mean ms of each, measured in this process.
    `recall` counts the exact top K's ids found; `recall_ties` counts found memories as
    close as the exact Kth (texts shared by several users have identical vectors, so the
    exact top K is one arbitrary pick among equals)."""
    from django.db.models.expressions import RawSQL

    from memories.embeddings import embed_query, get_provider
    from memories.fields import to_pgvector_text
    from memories.models import Memory
    from memories.vector_search import PgvectorBackend

    backend = PgvectorBackend()
    scope = Memory.objects.all() if user is None else Memory.objects.for_user(user)
    scope = scope.embedded_by(get_provider().model_id)
    hits = ties = 0
    fast = slow = 0.0
    for text in texts:
        vector = embed_query(text)
        start = time.perf_counter()
        found = backend.search(scope, vector, K)
        fast += time.perf_counter() - start
        exact = RawSQL("embedding <=> %s::vector", (to_pgvector_text(vector),))
        start = time.perf_counter()
        truth = list(backend._nearest(scope, exact, K))
        slow += time.perf_counter() - start
        hits += len({hit.memory_id for hit in found} & {mid for mid, _ in truth})
        if truth:
            kth = float(truth[-1][1])
            ties += sum(1 for hit in found if 1.0 - hit.similarity <= kth + 1e-6)
    n = K * max(1, len(texts))
    return {
        "recall": round(hits / n, 4),
        "recall_ties": round(ties / n, 4),
        "index_ms": round(fast * 1000 * K / n, 1),
        "exact_ms": round(slow * 1000 * K / n, 1),
    }


def mixed(args, population, result) -> dict:
    """--clients threads for --mixed-seconds: single adds (--write-share) and user queries."""
    stop = time.monotonic() + args.mixed_seconds
    lock = threading.Lock()
    adds: list[float] = []
    reads: list[float] = []
    others = population.users[1:]

    def worker(n: int) -> None:
        client = Client(args.base_url, API_KEY, 60)
        rng = random.Random(f"{args.seed}:mixed:{n}")
        gen = TextGenerator(rng)
        while time.monotonic() < stop:
            user = rng.choice(others)
            if rng.random() < args.write_share:
                item = gen.memory(user)
                body = {"content": f"{item.content} (mixed {n})", "user_id": user}
                try:
                    ms, status, data = client.timed("POST", "/memory/add", body)
                except OSError as exc:
                    client.close()
                    result.fail(f"add: {exc}")
                    continue
                if status not in (200, 201):
                    result.fail(f"add: HTTP {status}: {data[:200]!r}")
                    continue
                with lock:
                    population.owner[json.loads(data)["id"]] = int(user.rsplit("-", 1)[1])
                    adds.append(ms)
            else:
                text = rng.choice(population.samples.get(user) or ["what does the user like?"])
                ms, matches = query(client, text, user, result)
                with lock:
                    check_isolation(user, matches, population, result)
                    reads.append(ms)
        client.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "requests_per_s": round((len(adds) + len(reads)) / elapsed, 1),
        "adds_per_s": round(len(adds) / elapsed, 1),
        "add_ms": percentiles(adds),
        "query_ms": percentiles(reads),
    }


def worker_rss(master: int) -> list[float]:
    """Resident memory (MB) of each gunicorn worker: the master's children."""
    sizes = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != master:
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(round(int(line.split()[1]) / 1024, 1))
    return sorted(sizes)


def database_size() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_database_size(current_database()), "
            "pg_total_relation_size('memories_memory'), pg_indexes_size('memories_memory'), "
            "(SELECT count(*) FROM memories_memory)"
        )
        database, table, indexes, count = cursor.fetchone()
        cursor.execute(
            "SELECT coalesce(sum(pg_relation_size(indexrelid)), 0) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE '%%hnsw%%'"
        )
        hnsw = cursor.fetchone()[0]
    per = max(1, count)
    return {
        "memories": count,
        "database_mb": round(database / 2**20, 1),
        "bytes_per_memory": round(database / per),
        "memory_table_bytes_per_memory": round(table / per),
        "memory_indexes_bytes_per_memory": round(indexes / per),
        "hnsw_bytes_per_memory": round(hnsw / per),
    }


def manage(env: dict, *command: str) -> None:
    subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True)


def start_server(args, env: dict) -> subprocess.Popen:
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn, "openmemory.wsgi", "--bind", f"127.0.0.1:{args.port}"]
    command += ["--workers", str(args.workers), "--worker-class", "gthread", "--threads", "4"]
    command += ["--log-level", "warning", "--timeout", "300"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    client = Client(args.base_url, API_KEY, 5)
    for _ in range(240):
        try:
            if client.request("GET", "/health", None)[0] == 200:
                client.close()
                return server
        except OSError:
            client.close()
        if server.poll() is not None:
            raise SystemExit("gunicorn exited during start-up")
        time.sleep(0.5)
    raise SystemExit("gunicorn did not answer /health in 120 s")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/om_bench_scale"
    )
    parser.add_argument("--memories", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--giant", type=int, default=200_000, help="memories of user-00000")
    parser.add_argument("--batch", type=int, default=500, help="memories per add/batch request")
    parser.add_argument("--load-clients", type=int, default=4)
    parser.add_argument(
        "--index",
        choices=["build", "rows"],
        default="build",
        help="build the HNSW index after the load in one pass, or keep it up row by row",
    )
    parser.add_argument("--queries", type=int, default=1000, help="user-filtered queries")
    parser.add_argument("--admin-queries", type=int, default=200, help="unfiltered queries")
    parser.add_argument("--giant-queries", type=int, default=200)
    parser.add_argument("--recall-queries", type=int, default=100, help="of the unfiltered ones")
    parser.add_argument("--clients", type=int, default=8, help="mixed-traffic threads")
    parser.add_argument("--mixed-seconds", type=float, default=30)
    parser.add_argument("--write-share", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--port", type=int, default=8097)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure a --keep run's database")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of text")
    args = parser.parse_args(argv)
    args.base_url = f"http://127.0.0.1:{args.port}"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(
        DATABASE_URL=args.database_url,
        OM_API_KEY=API_KEY,
        OM_LOG_LEVEL=env.get("OM_LOG_LEVEL", "WARNING"),
        OM_EMBEDDINGS=env.get("OM_EMBEDDINGS", "synthetic"),
        DJANGO_SETTINGS_MODULE="openmemory.settings",
    )
    os.environ.update(env)
    os.environ.pop("CELERY_BROKER_URL", None)
    if not args.reuse:
        recreate_postgres(args.database_url)
    manage(env, "migrate", "--noinput", "-v0")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    users = user_ids(args.users)
    population = Population(users=users, giant=users[0])
    result = Result()
    out: dict = {
        "memories": args.memories,
        "users": args.users,
        "giant": args.giant,
        "embeddings": env["OM_EMBEDDINGS"],
        "ranking": env.get("OM_RANKING", "hybrid"),
        "workers": args.workers,
    }
    server = start_server(args, env)
    try:
        if args.reuse:
            log("reusing the loaded database: reading who owns what")
            from memories.models import Memory

            index = {u: i for i, u in enumerate(users)}
            for mid, user in Memory.objects.values_list("id", "user_id").iterator(10_000):
                population.owner[str(mid)] = index.get(user, -1)
            # Questions of the kind a loading run keeps (written from the user's memories),
            # from new texts of the same generator: asking stored texts instead gave other
            # latencies and recall (their words are the memories' own), not comparable runs.
            for user in users:
                gen = TextGenerator(random.Random(f"{args.seed}:reuse:{user}"))
                population.samples[user] = [TextGenerator.question(gen.memory(user)) for _ in "abc"]
        else:
            log(
                f"bulk load: {args.memories:,} memories, {args.users:,} users, giant {args.giant:,}"
            )
            if args.index == "build":
                manage(env, "vector_index", "drop")
            out["bulk_memories_per_s"] = round(bulk_load(args, population, result), 1)
            if args.index == "build":
                log("building the HNSW index")
                started = time.perf_counter()
                manage(env, "vector_index", "build")
                out["index_build_seconds"] = round(time.perf_counter() - started, 1)
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
        # Untimed: the summary regenerations the load queued (one per user) finish first.
        out["background_seconds"] = round(wait_for_background(args.base_url, API_KEY), 1)
        out["worker_rss_mb_after_load"] = worker_rss(server.pid)
        others = users[1:]
        log(f"{args.queries} user-filtered queries")
        out["user_query_ms"] = percentiles(
            filtered_queries(args, population, result, others, args.queries)
        )
        log(f"{args.admin_queries} unfiltered admin queries")
        latencies, texts = unfiltered_queries(args, population, result)
        out["admin_query_ms"] = percentiles(latencies)
        out["admin_recall_at_10"] = recall_at_k(texts[: args.recall_queries], None)
        log(f"{args.giant_queries} giant-user queries")
        out["giant_query_ms"] = percentiles(
            filtered_queries(args, population, result, [population.giant], args.giant_queries)
        )
        asked = questions(population, random.Random(1), args.recall_queries, [population.giant])
        giant_texts = [text for _, text in asked]
        out["giant_recall_at_10"] = recall_at_k(giant_texts, population.giant)
        log(f"mixed traffic: {args.clients} clients, {args.mixed_seconds:.0f} s")
        out["mixed"] = mixed(args, population, result)
        out["worker_rss_mb_after_mixed"] = worker_rss(server.pid)
        out["size"] = database_size()
    finally:
        server.terminate()
        server.wait(timeout=60)
        connection.close()
    out["failures"] = len(result.failures)
    out["isolation_violations"] = result.violations
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:32} {value}")
    if not args.keep and not args.reuse:
        from throwaway import drop_postgres

        drop_postgres(args.database_url)
    return 1 if result.failures or result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
