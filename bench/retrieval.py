"""Retrieval quality on bench/eval's conversational data set: recall@1/5/10 and MRR per mode.

Loads every turn of bench/eval/dataset.jsonl.gz as a memory of its user (through
memories.services.memory_create_batch, backdated to its session's date) into a throwaway
database, asks each question restricted to its user, and scores where the answer turns land.

    .venv/bin/python bench/retrieval.py                       # temporary SQLite file
    .venv/bin/python bench/retrieval.py --modes lexical,synthetic --json
    .venv/bin/python bench/retrieval.py --database-url postgres://postgres@127.0.0.1:5432/openmemory_evalbench

Modes:
  lexical    BM25 over the user's memories, computed here (no stemming: a plain baseline).
  synthetic  the server's search (memories.selectors.memory_query) with OM_EMBEDDINGS=synthetic
             and OM_RANKING=vector: dense only.
  local      the same with OM_EMBEDDINGS=local, when the `local` extra is installed.
  hybrid     the server's hybrid ranker (OM_RANKING=hybrid, the default), over local vectors
             when available, else synthetic ones.
  hybrid-synthetic  the hybrid ranker over synthetic vectors (the zero-configuration server).
A mode that cannot run here is reported as "not available" with the reason.

recall@k is the fraction of a question's answer turns found in the top k (averaged over
questions); MRR is 1 / rank of the first answer turn within the top 10 (0 when none is).
For PostgreSQL the named database is dropped if it exists, created, and dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "bench" / "eval" / "dataset.jsonl.gz"
ALL_MODES = ("lexical", "synthetic", "local", "hybrid", "hybrid-synthetic")
K = 10
CUTOFFS = (1, 5, 10)

sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from throwaway import add_database_argument, throwaway_django  # noqa: E402

from memories.text import words  # noqa: E402  (plain Python: no Django set-up needed)

# --- Data set ------------------------------------------------------------------------------


@dataclass
class Dataset:
    turns: list[dict]
    questions: list[dict]

    @property
    def users(self) -> list[str]:
        return sorted({t["user_id"] for t in self.turns})


def load_dataset(path: Path) -> Dataset:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    return Dataset(
        turns=[r for r in records if r["kind"] == "turn"],
        questions=[r for r in records if r["kind"] == "question"],
    )


def half_of(data: Dataset, half: str) -> Dataset:
    """The users at even ("even") or odd ("odd") positions of the sorted user list, with their
    turns and questions: tune on one half, check on the other."""
    keep = set(data.users[0 if half == "even" else 1 :: 2])
    return Dataset(
        turns=[t for t in data.turns if t["user_id"] in keep],
        questions=[q for q in data.questions if q["user_id"] in keep],
    )


# --- Lexical baseline ----------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    # The server's words and stop words (memories/text.py), unstemmed: a plain baseline.
    return words(text)


class BM25:
    """Okapi BM25 over one user's memories (k1=1.2, b=0.75)."""

    def __init__(self, docs: list[tuple[str, str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.ids = [doc_id for doc_id, _ in docs]
        self.tfs = [Counter(tokenize(text)) for _, text in docs]
        self.lens = [sum(tf.values()) for tf in self.tfs]
        self.avg = sum(self.lens) / max(1, len(self.lens))
        df: Counter[str] = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        n = len(docs)
        self.idf = {term: math.log(1 + (n - f + 0.5) / (f + 0.5)) for term, f in df.items()}
        self.k1, self.b = k1, b

    def search(self, query: str, k: int) -> list[str]:
        terms = [t for t in dict.fromkeys(tokenize(query)) if t in self.idf]
        scored = []
        for index, tf in enumerate(self.tfs):
            norm = self.k1 * (1 - self.b + self.b * self.lens[index] / self.avg)
            score = sum(
                self.idf[t] * tf[t] * (self.k1 + 1) / (tf[t] + norm) for t in terms if t in tf
            )
            if score > 0:
                scored.append((-score, index))
        scored.sort()  # ties keep insertion (conversation) order
        return [self.ids[index] for _, index in scored[:k]]


# --- Modes ---------------------------------------------------------------------------------


@dataclass
class Mode:
    name: str
    embeddings: str | None  # the OM_EMBEDDINGS value the data must be loaded with
    available: bool = True
    reason: str = ""
    model_id: str = ""
    ranks: dict[str, list[tuple[float, ...]]] = field(default_factory=lambda: defaultdict(list))


@contextlib.contextmanager
def using_embeddings(name: str) -> Iterator[None]:
    """Switches the server's embedding provider for the duration (the provider is cached)."""
    from django.test import override_settings

    from memories import embeddings

    with override_settings(OM_EMBEDDINGS=name):
        embeddings.get_provider.cache_clear()
        try:
            yield
        finally:
            embeddings.get_provider.cache_clear()


@contextlib.contextmanager
def using_ranking(value: str | None) -> Iterator[None]:
    """Pins settings.OM_RANKING for the duration (None: leaves it as it is)."""
    from django.test import override_settings

    if value is None:
        yield
        return
    with override_settings(OM_RANKING=value):
        yield


def local_status() -> tuple[bool, str]:
    """Whether OM_EMBEDDINGS=local gives a real (non-synthetic) provider here."""
    from memories import embeddings

    try:
        with using_embeddings("local"):
            provider = embeddings.get_provider()
            if provider.model_id.startswith("synthetic"):
                return False, "OM_EMBEDDINGS=local falls back to the synthetic provider"
            provider.embed(["availability check"])
            return True, provider.model_id
    except Exception as exc:  # an ImportError, ImproperlyConfigured, ... all mean "not here"
        return False, f"{type(exc).__name__}: {exc}"


def resolve_modes(names: list[str]) -> list[Mode]:
    local_ok, local_reason = local_status() if {"local", "hybrid"} & set(names) else (False, "")
    modes = []
    for name in names:
        if name == "lexical":
            modes.append(Mode(name, "synthetic"))  # reads the stored texts only
        elif name == "synthetic":
            modes.append(Mode(name, "synthetic"))
        elif name == "local":
            modes.append(Mode(name, "local", local_ok, "" if local_ok else local_reason))
        elif name == "hybrid":
            modes.append(Mode(name, "local" if local_ok else "synthetic"))
        elif name == "hybrid-synthetic":
            modes.append(Mode(name, "synthetic"))
    return modes


def lexical_ranker(user_docs: dict[str, list[tuple[str, str]]]) -> Callable[[dict], list[str]]:
    indexes = {user: BM25(docs) for user, docs in user_docs.items()}
    return lambda q: indexes[q["user_id"]].search(q["question"], K)


def server_ranker(q: dict) -> list[str]:
    from memories.selectors import memory_query

    return [str(m.memory.pk) for m in memory_query(query=q["question"], k=K, user_id=q["user_id"])]


# --- Loading and scoring -------------------------------------------------------------------


def reset_and_load(data: Dataset) -> tuple[dict[str, str], float]:
    """Stores every turn for its user with the current provider; returns memory id -> turn id.

    Memories of an earlier provider are deleted first: the same text is a duplicate for its
    user whatever model embedded it, so it would not be stored again."""
    from memories.models import Memory
    from memories.services import MemoryInput, memory_create_batch

    Memory.objects.all().delete()
    started = time.perf_counter()
    by_user: dict[str, list[dict]] = defaultdict(list)
    for turn in data.turns:
        by_user[turn["user_id"]].append(turn)
    to_turn: dict[str, str] = {}
    when: dict[str, datetime] = {}
    for user_id, turns in by_user.items():
        results = memory_create_batch(
            items=[MemoryInput(content=t["content"], user_id=user_id) for t in turns]
        )
        for turn, result in zip(turns, results, strict=True):
            to_turn[str(result.memory.pk)] = turn["id"]
            # A minute per turn on the session's day keeps the conversation's order in time.
            day = datetime.fromisoformat(turn["date"]).replace(hour=9, tzinfo=UTC)
            when[str(result.memory.pk)] = day + timedelta(minutes=turn["turn"])
    # Backdated so that anything time-aware in the ranking sees the sessions' real spacing.
    rows = list(Memory.objects.only("pk", "created_at", "updated_at", "last_seen_at"))
    for row in rows:
        row.created_at = row.updated_at = row.last_seen_at = row.decayed_at = when[str(row.pk)]
    Memory.objects.bulk_update(
        rows, ["created_at", "updated_at", "last_seen_at", "decayed_at"], batch_size=500
    )
    return to_turn, time.perf_counter() - started


def score(ranked_turns: list[str], answers: list[str]) -> tuple[float, ...]:
    wanted = set(answers)
    recalls = [len(wanted & set(ranked_turns[:k])) / len(wanted) for k in CUTOFFS]
    first = next((i for i, t in enumerate(ranked_turns[:K], start=1) if t in wanted), None)
    return (*recalls, 1.0 / first if first else 0.0)


def run_mode(mode: Mode, data: Dataset, to_turn: dict[str, str]) -> float:
    from memories.embeddings import get_provider
    from memories.models import Memory

    started = time.perf_counter()
    mode.model_id = "" if mode.name == "lexical" else get_provider().model_id
    if mode.name == "lexical":
        docs: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for pk, user_id, content in Memory.objects.order_by("created_at").values_list(
            "pk", "user_id", "content"
        ):
            docs[user_id].append((str(pk), content))
        rank = lexical_ranker(docs)
    else:
        rank = server_ranker
    ranking = "vector" if mode.name in ("synthetic", "local") else "hybrid"
    # Questions are asked the day after the last session, so recency sees the data set's own
    # timeline rather than today's date.
    asked_at = datetime.fromisoformat(max(t["date"] for t in data.turns)).replace(
        tzinfo=UTC
    ) + timedelta(days=1)
    with using_ranking(ranking), mock.patch("core.clock.now", return_value=asked_at):
        for q in data.questions:
            turns = [to_turn[mid] for mid in rank(q) if mid in to_turn]
            result = score(turns, q["answer_turn_ids"])
            mode.ranks[q["type"]].append(result)
            mode.ranks["all"].append(result)
    return time.perf_counter() - started


def summary(mode: Mode) -> dict[str, dict[str, float]]:
    out = {}
    for qtype, rows in mode.ranks.items():
        n = len(rows)
        means = [sum(r[i] for r in rows) / n for i in range(4)]
        out[qtype] = {
            "n": n,
            "recall@1": round(means[0], 4),
            "recall@5": round(means[1], 4),
            "recall@10": round(means[2], 4),
            "mrr": round(means[3], 4),
        }
    return out


def print_table(modes: list[Mode], types: list[str]) -> None:
    print(f"{'mode':<16} {'type':<17} {'n':>5} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR':>6}")
    for mode in modes:
        if not mode.available:
            print(f"{mode.name:<16} not available: {mode.reason}")
            continue
        table = summary(mode)
        for qtype in [*types, "all"]:
            row = table[qtype]
            print(
                f"{mode.name:<16} {qtype:<17} {row['n']:>5} {row['recall@1']:>6.3f}"
                f" {row['recall@5']:>6.3f} {row['recall@10']:>6.3f} {row['mrr']:>6.3f}"
            )
        print()


# --- Entry point ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument(
        "--modes",
        default=",".join(ALL_MODES),
        help="comma-separated, from %(default)s (default: all; unavailable ones are reported)",
    )
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument(
        "--half",
        choices=("even", "odd"),
        help="only the users at even or odd positions of the sorted user list",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(args.modes) - set(ALL_MODES))
    if unknown:
        parser.error(f"unknown mode(s): {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = load_dataset(args.dataset)
    if args.half:
        data = half_of(data, args.half)
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    os.environ["OM_EMBEDDINGS"] = "synthetic"  # each mode switches to its own provider
    with throwaway_django(args.database_url, "evalbench") as database_url:
        from django.db import connection

        modes = resolve_modes(args.modes)
        engine = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
        log(
            f"{engine} ({database_url}); {len(data.users)} users, {len(data.turns)} turns, "
            f"{len(data.questions)} questions"
        )
        timings: dict[str, float] = {}
        # One load per embedding provider: each mode runs over vectors of its own model.
        for provider in dict.fromkeys(m.embeddings for m in modes if m.available):
            with using_embeddings(provider):
                to_turn, seconds = reset_and_load(data)
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute("ANALYZE")
                timings[f"load:{provider}"] = round(seconds, 2)
                log(f"loaded with {provider} embeddings in {seconds:.1f} s")
                for mode in modes:
                    if mode.available and mode.embeddings == provider:
                        timings[mode.name] = round(run_mode(mode, data, to_turn), 2)
                        log(
                            f"{mode.name}: {len(data.questions)} questions in "
                            f"{timings[mode.name]:.1f} s"
                        )
        types = sorted({q["type"] for q in data.questions})
        if args.json:
            print(
                json.dumps(
                    {
                        "database": engine,
                        "users": len(data.users),
                        "turns": len(data.turns),
                        "questions": dict(Counter(q["type"] for q in data.questions)),
                        "seconds": timings,
                        "modes": {
                            m.name: {
                                "available": m.available,
                                **({"reason": m.reason} if not m.available else {}),
                                **({"model": m.model_id} if m.model_id else {}),
                                **({"metrics": summary(m)} if m.available else {}),
                            }
                            for m in modes
                        },
                    }
                )
            )
        else:
            print()
            print_table(modes, types)
    return 0


if __name__ == "__main__":
    sys.exit(main())
