"""The lexical index (each memory's stemmed terms) and BM25 over a user's own memories.

One implementation for every database: the terms live in an ordinary table (MemoryTerm)
indexed by (user_id, term), so SQLite and PostgreSQL return the same scores, and a user's
term statistics (how many of *their* memories hold a word) never depend on other users.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import Counter, defaultdict

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Count, Sum

from core.scope import ALL_USERS
from memories.models import (
    Memory,
    MemoryQuerySet,
    MemoryTerm,
    as_uuid,
    insert_rows,
)
from memories.text import query_terms

# Okapi BM25's usual constants (also the defaults of Lucene and of the bm25s library).
K1 = 1.5
B = 0.75


def index_terms(rows: list[tuple[Memory, Counter[str]]]) -> None:
    """Stores the terms of memories just saved (inside the caller's transaction), as plain
    multi-row INSERTs (models.insert_rows): no model instances on the add's hot path."""
    connection = connections[MemoryTerm.objects.db]
    memory_id = Memory._meta.pk
    insert_rows(
        MemoryTerm,
        ("memory_id", "user_id", "term", "frequency", "length"),
        [
            (memory_id.get_db_prep_value(memory.pk, connection), memory.user_id, term, n, length)
            for memory, counts in rows
            for length in (sum(counts.values()),)
            for term, n in counts.items()
        ],
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
    if within is None:
        # Every posting of the scope for these terms: their document frequencies too.
        rows = _postings(wanted, user_id)
        frequency: dict[str, int] = Counter(row[1] for row in rows)
    else:
        frequency = dict(_postings(wanted, user_id, counted=True))
        rows = _postings(wanted, user_id, within=within)
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


def _postings(
    wanted: list[str],
    user_id: str | object | None,
    *,
    within: MemoryQuerySet | None = None,
    counted: bool = False,
) -> list[tuple]:
    """(memory id, term, frequency, length) of every posting of these terms in the user's
    scope, from the covering (term, user_id, ...) index; only of memories `within` a
    narrower scope if given; with `counted`, (term, postings) instead. Hand-written: it
    runs on every query, and building the same statement through the ORM took 0.26 ms of
    CPU, running it 0.03 ms."""
    connection = connections[MemoryTerm.objects.db]
    params: list = sorted(wanted)
    where = f"term IN ({', '.join(['%s'] * len(wanted))})"
    if user_id is None:
        where += " AND user_id IS NULL"
    elif user_id is not ALL_USERS:
        where += " AND user_id = %s"
        params.append(user_id)
    if within is not None:
        try:
            inner, inner_params = within.order_by().values("pk").query.sql_with_params()
        except EmptyResultSet:  # a filter nothing can match
            return []
        where += f" AND memory_id IN ({inner})"
        params += inner_params
    table = connection.ops.quote_name(MemoryTerm._meta.db_table)
    select = "term, COUNT(*)" if counted else "memory_id, term, frequency, length"
    group = " GROUP BY term" if counted else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {select} FROM {table} WHERE {where}{group}", params)
        return cursor.fetchall()


# A word with at least this many postings in a large scope is common: its postings are
# never all counted, its document frequency is estimated from a sample.
COMMON_POSTINGS = 1000
# About this many of the scope's memories make that sample.
SAMPLE_MEMORIES = 5000
# Candidates come from the query's rarest words whose postings number at most this many
# together: the database scores that many postings at most, whatever the scope's size.
SCORED_POSTINGS = 5000
# How many memories, the best by those words, are then scored on every word.
SCORED_HOLDERS = 100
# How long a large scope's memory count and total length, and its common words' estimated
# document frequencies, are reused: in a scope this size they move by a fraction of a
# percent in that time (a common word's IDF by less), and questions share their common
# words, so most searches count only their rare words, in one statement.
STATS_SECONDS = 60.0

# Past this many cached words, the expired ones are dropped.
COMMON_CACHED = 10_000

_stats: dict[object, tuple[float, tuple[int, int]]] = {}
# (scope, word) -> (when, estimated document frequency) of the common words.
_common: dict[tuple[object, str], tuple[float, int]] = {}
_stats_lock = threading.Lock()


def clear_stats() -> None:
    with _stats_lock:
        _stats.clear()
        _common.clear()


def known_size(user_id: str | object | None) -> int | None:
    """The memory count of a scope a recent LargeScope measured, None when none did (or
    too long ago): searches skip what only small scopes need without asking again."""
    with _stats_lock:
        entry = _stats.get(user_id)
    if entry is None or time.monotonic() - entry[0] > STATS_SECONDS:
        return None
    return entry[1][0]


def _scope_stats(user_id: str | object | None) -> tuple[int, int]:
    with _stats_lock:
        entry = _stats.get(user_id)
    if entry is not None and time.monotonic() - entry[0] <= STATS_SECONDS:
        return entry[1]
    owned = Memory.objects.all() if user_id is ALL_USERS else Memory.objects.for_user(user_id)
    totals = owned.aggregate(n=Count("*"), length=Sum("term_count"))
    stats = (totals["n"], totals["length"] or 0)
    with _stats_lock:
        _stats[user_id] = (time.monotonic(), stats)
    return stats


class LargeScope:
    """BM25 over a scope too large for reading every posting of the query's words (a giant
    user, everyone's memories): the cost depends on the query and the candidates, not on
    the scope's size.

    Document frequencies are exact for words with fewer than COMMON_POSTINGS postings in
    the scope; a more common word's is estimated from the memories whose ids fall in the
    lowest SAMPLE_MEMORIES / N of the id space (ids are random: a uniform sample), and
    reused for STATS_SECONDS. Candidates come from the query's rarest words, as many as
    hold at most SCORED_POSTINGS postings together (`chosen`): the database scores their
    postings and returns the SCORED_HOLDERS best memories, which are then scored on every
    word; the full BM25 is computed for the memories `scores` is asked about. A memory
    holding only words more common than those is found by the vector search or not at
    all: its BM25 is low in a scope where its words are that common."""

    def __init__(self, query: str, *, user_id: str | object | None = ALL_USERS) -> None:
        self.connection = connections[MemoryTerm.objects.db]
        self.vendor = self.connection.vendor
        self.user_id = user_id
        self.idf: dict[str, float] = {}
        self.chosen: list[str] = []
        # Full BM25 and share of the query's word weight of the memories read so far.
        self.raw: dict[object, float] = {}
        self.held: dict[object, float] = {}
        self.read: set[object] = set()
        wanted = query_terms(query)
        n, length = _scope_stats(user_id)
        if not wanted or not n or not length:
            return
        self.average = length / n
        frequency = self._frequencies(wanted, n)
        self.idf = {
            term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in frequency.items() if df
        }
        total = 0
        for term in sorted(self.idf, key=lambda t: (frequency[t], t)):
            total += frequency[term]
            if total > SCORED_POSTINGS:
                break
            self.chosen.append(term)

    def _frequencies(self, wanted: list[str], n: int) -> dict[str, int]:
        """Each word's document frequency in the scope: the common words' from the cache
        when a search measured them recently, the others' in one statement."""
        now = time.monotonic()
        frequency: dict[str, int] = {}
        with _stats_lock:
            for term in wanted:
                entry = _common.get((self.user_id, term))
                if entry is not None and now - entry[0] <= STATS_SECONDS:
                    frequency[term] = entry[1]
        counted = [term for term in wanted if term not in frequency]
        if not counted:
            return frequency
        share = min(1.0, SAMPLE_MEMORIES / n)
        pivot = uuid.UUID(int=min(2**128 - 1, int(share * 2**128)))
        common: dict[str, int] = {}
        for term, (bounded, sampled) in zip(counted, self._counts(counted, pivot), strict=True):
            if bounded < COMMON_POSTINGS:
                frequency[term] = bounded
            else:
                # At least COMMON_POSTINGS: that many were seen.
                common[term] = max(COMMON_POSTINGS, min(n, round(sampled / share)))
        frequency.update(common)
        with _stats_lock:
            if len(_common) > COMMON_CACHED:
                for key in [
                    key for key, (when, _) in _common.items() if now - when > STATS_SECONDS
                ]:
                    del _common[key]
            _common.update({(self.user_id, term): (now, df) for term, df in common.items()})
        return frequency

    def _owner(self, params: list) -> str:
        """The SQL condition on the postings' user, its parameter appended to `params`."""
        if self.user_id is ALL_USERS:
            return ""
        if self.user_id is None:
            return " AND user_id IS NULL"
        params.append(self.user_id)
        return " AND user_id = %s"

    def _counts(self, terms: list[str], pivot: uuid.UUID) -> list[tuple[int, int | None]]:
        """For each word, its postings counted up to COMMON_POSTINGS and, for a word that
        has that many, the number of those of memories whose ids are below `pivot` (None
        for the others): one statement, whose CASE runs a sample only for a common word."""
        table = self.connection.ops.quote_name(MemoryTerm._meta.db_table)
        below = Memory._meta.pk.get_db_prep_value(pivot, self.connection)
        parts, params = [], []
        for i, term in enumerate(terms):
            params += [COMMON_POSTINGS, term]
            sample = f"SELECT COUNT(*) FROM {table} WHERE term = %s{self._owner(params)}"
            params += [below, term]
            bounded = f"SELECT 1 FROM {table} WHERE term = %s{self._owner(params)} LIMIT %s"
            params.append(COMMON_POSTINGS)
            parts.append(
                f"SELECT {i} AS i, n, CASE WHEN n >= %s THEN ({sample} AND memory_id < %s) END"
                # LIMIT 1 keeps PostgreSQL from pulling the count up into both its uses.
                f" FROM (SELECT (SELECT COUNT(*) FROM ({bounded}) AS p) AS n LIMIT 1) AS c{i}"
            )
        with self.connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            rows = {i: (n, sampled) for i, n, sampled in cursor.fetchall()}
        return [rows[i] for i in range(len(terms))]

    def _term(self, term: str, tf: int, dl: int) -> float:
        norm = K1 * (1 - B + B * dl / self.average)
        return self.idf[term] * tf * (K1 + 1) / (tf + norm)

    def best(self, n: int, *, reading: list[uuid.UUID] = ()) -> list[uuid.UUID]:
        """The n memories with the best BM25 (every word counted) out of the SCORED_HOLDERS
        best by the chosen words alone. The postings of the memories `reading` (the vector
        search's, scored next) are read in the same statement."""
        missing = [pk for pk in dict.fromkeys(reading) if self._key(pk) not in self.read]
        if not self.idf or not (self.chosen or missing):
            return []
        table = self.connection.ops.quote_name(MemoryTerm._meta.db_table)
        params: list = []
        top = None
        if self.chosen:
            # _term() in SQL: idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / average)).
            params += self.chosen
            owner = self._owner(params)
            for term in self.chosen:
                params += [term, self.idf[term]]
            params += [K1 + 1, K1 * (1 - B), K1 * B / self.average, SCORED_HOLDERS]
            # Floats cast: PostgreSQL would take the literals as numeric, whose arithmetic
            # made this aggregate over 5,000 postings 4 times slower.
            real = "CAST(%s AS DOUBLE PRECISION)"
            idf = " ".join([f"WHEN %s THEN {real}"] * len(self.chosen))
            top = (
                f"SELECT memory_id FROM {table}"
                f" WHERE term IN ({', '.join(['%s'] * len(self.chosen))}){owner}"
                " GROUP BY memory_id ORDER BY"
                f" SUM((CASE term {idf} END) * frequency * {real}"
                f" / (frequency + {real} + {real} * length)) DESC, memory_id LIMIT %s"
            )
        rows = self._read(missing, top, params)
        fresh = [row[:4] for row in rows if row[0] not in self.read]
        self.read.update(row[0] for row in fresh)
        self.read.update(self._key(pk) for pk in missing)
        self._add(fresh)
        held = list(dict.fromkeys(row[0] for row in rows if row[4]))
        held.sort(key=lambda pk: (-self.raw.get(pk, 0.0), str(pk)))
        return [as_uuid(pk) for pk in held[:n]]

    def scores(self, ids: list[uuid.UUID]) -> Scores:
        """BM25 (every word of the query) of the memories `ids`, as Scores: the word part
        is relative to the best of them."""
        keys = [self._key(pk) for pk in ids]
        self._complete(keys)
        raw = {pk: self.raw[pk] for pk in keys if pk in self.raw}
        return Scores(raw, {pk: self.held[pk] for pk in raw}, self.vendor)

    def _key(self, pk: uuid.UUID) -> object:
        """A memory id as the database returns it (32 hex digits on SQLite)."""
        return pk.hex if self.vendor == "sqlite" else pk

    def _listed(self, ids: list[uuid.UUID], params: list) -> str:
        """A SELECT of `ids` as memory ids, its parameters appended: one array on
        PostgreSQL (see MemoryQuerySet.with_ids)."""
        if self.vendor == "postgresql":
            params.append(list(ids))
            return "SELECT unnest(%s::uuid[])"
        params += [self._key(pk) for pk in ids]
        return "VALUES " + ", ".join(["(%s)"] * len(ids))

    def _complete(self, keys: list) -> None:
        """Reads the postings of the memories not read yet (by their keys as the database
        returns them)."""
        missing = [pk for pk in dict.fromkeys(keys) if pk not in self.read]
        if not self.idf or not missing:
            return
        self.read.update(missing)
        self._add([row[:4] for row in self._read([as_uuid(pk) for pk in missing])])

    def _read(self, ids: list[uuid.UUID], top: str | None = None, params: list = ()) -> list:
        """(memory id, term, frequency, length, whether `top` holds it) of the query's words'
        postings of the memories `ids` and of those the SELECT `top` (with its `params`)
        names, in one statement."""
        table = self.connection.ops.quote_name(MemoryTerm._meta.db_table)
        params = list(params)
        top = top or f"SELECT memory_id FROM {table} WHERE 1 = 0"
        wanted = "SELECT memory_id FROM top"
        if ids:
            wanted += f" UNION {self._listed(ids, params)}"
        terms = list(self.idf)
        params += terms
        # A join with the wanted ids, not an OR of two conditions: with the OR, PostgreSQL
        # read every posting of the query's words at a million memories (26 ms) instead
        # of each memory's own few, from the (memory, term) index.
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"WITH top AS ({top}), wanted AS ({wanted})"
                " SELECT p.memory_id, p.term, p.frequency, p.length,"
                " p.memory_id IN (SELECT memory_id FROM top)"
                f" FROM {table} p JOIN wanted w ON w.memory_id = p.memory_id"
                f" WHERE p.term IN ({', '.join(['%s'] * len(terms))})",
                params,
            )
            return cursor.fetchall()

    def _add(self, rows: list[tuple]) -> None:
        weight = sum(self.idf.values())
        for memory_id, term, tf, dl in rows:
            self.raw[memory_id] = self.raw.get(memory_id, 0.0) + self._term(term, tf, dl)
            self.held[memory_id] = self.held.get(memory_id, 0.0) + self.idf[term] / weight
