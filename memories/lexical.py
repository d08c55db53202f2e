"""The lexical index (each memory's stemmed terms) and BM25 over a user's own memories.

One implementation for every database: the terms live in an ordinary table (MemoryTerm)
indexed by (user_id, term), so SQLite and PostgreSQL return the same scores, and a user's
term statistics (how many of *their* memories hold a word) never depend on other users.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict

from django.db import connections
from django.db.models import Count, Sum

from core.scope import ALL_USERS
from memories.models import Memory, MemoryQuerySet, MemoryTerm, as_uuid
from memories.text import query_terms

# Okapi BM25's usual constants (also the defaults of Lucene and of the bm25s library).
K1 = 1.5
B = 0.75


_POSTING_COLUMNS = ("memory_id", "user_id", "term", "frequency", "length")
# Rows per INSERT: 5 parameters each, well under SQLite's limit of 32,766 per statement.
_POSTINGS_PER_STATEMENT = 2000


def index_terms(rows: list[tuple[Memory, Counter[str]]]) -> None:
    """Stores the terms of memories just saved (inside the caller's transaction).

    Plain multi-row INSERTs rather than bulk_create(): the rows need no model instances, and
    building and compiling those was most of an add's time spent on its postings, inside
    the write transaction (on SQLite, the lock every other writer waits for)."""
    connection = connections[MemoryTerm.objects.db]
    memory_id = Memory._meta.pk
    values = [
        (memory_id.get_db_prep_value(memory.pk, connection), memory.user_id, term, n, length)
        for memory, counts in rows
        for length in (sum(counts.values()),)
        for term, n in counts.items()
    ]
    table = connection.ops.quote_name(MemoryTerm._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(column) for column in _POSTING_COLUMNS)
    row = "(" + ", ".join(["%s"] * len(_POSTING_COLUMNS)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(values), _POSTINGS_PER_STATEMENT):
            chunk = values[start : start + _POSTINGS_PER_STATEMENT]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(chunk))}",
                [value for posting in chunk for value in posting],
            )


def reindex_terms(memory: Memory, counts: Counter[str]) -> None:
    """Replaces the terms of a memory whose content changed."""
    MemoryTerm.objects.filter(memory_id=memory.pk).delete()
    index_terms([(memory, counts)])


class Scores:
    """BM25 scores of the memories that hold a query term, keyed as the database returned
    their ids (converting every one to a UUID would cost more than scoring them), and the
    word part of the hybrid score derived from them.

    The part is BM25 relative to the query's best match in the scope, times the square root
    of the share of the query's word weight (summed IDF) the memory holds: a memory that
    shares one ordinary word with the question does not get as much as one that holds its
    rare words, even when it is the best word match there is. On LoCoMo the square root
    gave +1.3 points of recall@10 over BM25 alone as the part (a plain share, -0.3)."""

    def __init__(self, raw: dict[object, float], coverage: dict[object, float], vendor: str):
        self.raw = raw
        self.hex_keys = vendor == "sqlite"  # Django stores UUIDs as 32 hex digits there
        best = max(raw.values(), default=0.0)
        self.part = (
            {pk: score / best * math.sqrt(coverage[pk]) for pk, score in raw.items()}
            if best
            else {}
        )

    def part_of(self, memory_id: uuid.UUID) -> float:
        return self.part.get(memory_id.hex if self.hex_keys else memory_id, 0.0)

    def best(self, n: int) -> list[uuid.UUID]:
        """The ids of the n memories with the largest word part (ties by id)."""
        top = sorted(self.part.items(), key=lambda item: (-item[1], str(item[0])))[:n]
        return [as_uuid(pk) for pk, _ in top]

    def as_dict(self) -> dict[uuid.UUID, float]:
        """BM25 by memory id."""
        return {as_uuid(pk): score for pk, score in self.raw.items()}


def bm25(
    query: str,
    *,
    user_id: str | object | None = ALL_USERS,
    within: MemoryQuerySet | None = None,
    stats: tuple[int, int] | None = None,
) -> Scores:
    """BM25 score of every memory of `user_id` (everyone's with ALL_USERS), or only of those
    `within` a narrower scope (sector, tags), that holds a term of `query`; others score 0.

    Document frequencies, the memory count and the average length are always those of the
    user's own memories: a word is as rare as it is in that user's history, and nobody
    else's memories change a score. `stats` is (memory count, total term count) of those
    memories when the caller already knows it (the search cache), saving a query."""
    vendor = connections[Memory.objects.db].vendor
    wanted = query_terms(query)
    if not wanted:
        return Scores({}, {}, vendor)
    if stats is None:
        owned = Memory.objects.all() if user_id is ALL_USERS else Memory.objects.for_user(user_id)
        totals = owned.aggregate(n=Count("*"), length=Sum("term_count"))
        stats = (totals["n"], totals["length"] or 0)
    n, length = stats
    if not n or not length:
        return Scores({}, {}, vendor)
    postings = MemoryTerm.objects.filter(term__in=wanted)
    if user_id is not ALL_USERS:
        postings = (
            postings.filter(user_id__isnull=True)
            if user_id is None
            else postings.filter(user_id=user_id)
        )
    columns = ("memory_id", "term", "frequency", "length")
    if within is None:
        # Every posting of the scope for these terms: their document frequencies too.
        rows = postings.raw_rows(*columns)
        frequency: dict[str, int] = Counter(row[1] for row in rows)
    else:
        frequency = dict(
            postings.order_by().values("term").annotate(df=Count("pk")).values_list("term", "df")
        )
        rows = postings.filter(memory__in=within.order_by().values("pk")).raw_rows(*columns)
    idf = {term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in frequency.items()}
    average = length / n
    scores: dict[object, float] = defaultdict(float)
    held: dict[object, float] = defaultdict(float)
    weight = sum(idf.values())
    for memory_id, term, tf, dl in rows:
        norm = K1 * (1 - B + B * dl / average)
        scores[memory_id] += idf[term] * tf * (K1 + 1) / (tf + norm)
        held[memory_id] += idf[term] / weight
    return Scores(dict(scores), held, vendor)
