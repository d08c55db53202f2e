"""The vector-search interface: a pgvector backend and a portable (numpy) backend."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, Case, FloatField, Q, Value, When
from django.db.models.expressions import RawSQL

from memories.fields import to_pgvector_text
from memories.models import Memory, MemoryQuerySet, PendingVector, as_uuid

# The HNSW index is built on this cast (see migration 0002); only queries that order by the
# same expression can use it, so the exact path below can never be hijacked by the index.
HNSW_DIM = 384
HNSW_INDEX = "memory_embedding_hnsw_384"
# A drop or build of the index in another process is seen this late by this one's adds.
INDEX_SEEN_SECONDS = 10.0
# What pgvector's build holds per 384-d memory (m = 16): 64 MB held 28,365 of them. The
# default for a build is that much per memory, no more than BUILD_MB_CAP: the database's own
# memory is not the app's to know, and a larger build is slower, not wrong.
_BUILD_BYTES_PER_MEMORY = 2_400
BUILD_MB_CAP = 4_096
# What PostgreSQL accepts for maintenance_work_mem, in MB (its lower limit is 1 MB, but
# pgvector needs far more than that for any graph worth building).
BUILD_MB_RANGE = (64, 2_097_151)
# As migration 0013 created it, built concurrently: adds and queries go on meanwhile.
_CREATE_HNSW = (
    f"CREATE INDEX CONCURRENTLY {HNSW_INDEX} ON {Memory._meta.db_table} "
    f"USING hnsw ((embedding::vector({HNSW_DIM})) vector_cosine_ops) "
    "WITH (ef_construction = 200) "
    f"WHERE embedding_dim = {HNSW_DIM} AND NOT vector_pending"
)


# What scan() returns for each memory, after its key: whose it is, its place in its user's
# sequence, when it was stored and when last seen (seconds since the epoch), its salience,
# then its similarity to the query.
SCAN_FIELDS = ("id", "user_id", "position", "created_at", "salience", "last_seen_at")
Scanned = tuple[object, str | None, int, float, float, float, float]
# Timestamps as epoch seconds computed by the database: converting hundreds of datetimes per
# search in Python cost more than the search itself.
_EPOCH = {
    "sqlite": "((julianday({field}) - 2440587.5) * 86400.0)",
    "postgresql": "(EXTRACT(EPOCH FROM {field})::float8)",
}


def _epochs(scope: MemoryQuerySet) -> MemoryQuerySet:
    """The scope, unordered (the default newest-first order would make the database sort or
    walk the date index), with created_epoch and seen_epoch."""
    sql = _EPOCH[connection.vendor]
    return scope.order_by().annotate(
        created_epoch=RawSQL(sql.format(field='"memories_memory"."created_at"'), ()),
        seen_epoch=RawSQL(sql.format(field='"memories_memory"."last_seen_at"'), ()),
    )


_SCAN_COLUMNS = ("id", "user_id", "position", "created_epoch", "salience", "seen_epoch")


@dataclass(frozen=True)
class Hit:
    memory_id: uuid.UUID
    similarity: float  # cosine similarity in [-1, 1]


class VectorSearchBackend(Protocol):
    def search(
        self, scope: MemoryQuerySet, vector: np.ndarray, k: int, *, large: bool | None = None
    ) -> list[Hit]:
        """The k memories of `scope` nearest to `vector`, nearest first. `large` says whether
        the scope is too large to read whole when the caller knows (None: find out)."""
        ...

    def similarities(
        self, scope: MemoryQuerySet, vector: np.ndarray, ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, float]:
        """The cosine similarity of each of `ids` found in `scope` (embedded memories)."""
        ...

    def scan(
        self, scope: MemoryQuerySet, vector: np.ndarray, model_id: str, *, small: bool = False
    ) -> list[Scanned] | None:
        """Every memory of `scope` in one read, keyed by its id as the database returns it
        (see MemoryQuerySet.raw_rows), with its similarity to `vector` (0 for memories not
        embedded by `model_id`); None when the scope is too large to read whole. `small`:
        the caller knows it is not (a list of ids), so its size is not checked."""
        ...

    def can_scan(self, size: int) -> bool:
        """Whether a scope of `size` memories is small enough to read whole."""
        ...

    def pending(self, dim: int) -> bool:
        """Whether a memory stored now with a vector of `dim` awaits this backend's index
        (Memory.vector_pending) rather than being searchable by it as it is."""
        ...

    def index_pending(self, limit: int) -> int:
        """Takes up to `limit` pending memories into the index, in the caller's transaction;
        returns how many."""
        ...

    def drop_index(self) -> None:
        """Drops the approximate index (outside a transaction). Until create_index, memories
        leave the pending queue without joining an index, and large scopes are ranked
        exactly: slower, never wrong."""
        ...

    def create_index(self, *, memory_mb: int | None = None) -> None:
        """Builds the approximate index in one pass over the memories not pending, with up
        to `memory_mb` of the database's memory (by default what the graph needs, up to
        BUILD_MB_CAP), outside a transaction."""
        ...


class PortableBackend:
    """Exact cosine ranking in numpy over the scope's vectors; works on any database."""

    def search(
        self, scope: MemoryQuerySet, vector: np.ndarray, k: int, *, large: bool | None = None
    ) -> list[Hit]:
        ids, matrix = self._vectors(scope, len(vector))
        if not ids:
            return []
        sims = matrix @ vector
        top = np.argpartition(-sims, k - 1)[:k] if len(ids) > k else np.arange(len(ids))
        top = top[np.lexsort((top, -sims[top]))]
        return [Hit(as_uuid(ids[i]), float(sims[i])) for i in top]

    def similarities(
        self, scope: MemoryQuerySet, vector: np.ndarray, ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, float]:
        found, matrix = self._vectors(scope.filter(pk__in=list(ids)), len(vector))
        return {as_uuid(pk): float(sim) for pk, sim in zip(found, matrix @ vector, strict=True)}

    def scan(
        self, scope: MemoryQuerySet, vector: np.ndarray, model_id: str, *, small: bool = False
    ) -> list[Scanned]:
        rows = _epochs(scope).raw_rows(*_SCAN_COLUMNS, "embedding_model", "embedding")
        size = len(vector) * 4
        usable = [i for i, row in enumerate(rows) if row[6] == model_id and len(row[7]) == size]
        sims = np.zeros(len(rows), np.float32)
        if usable:
            blob = b"".join(bytes(rows[i][7]) for i in usable)
            matrix = np.frombuffer(blob, np.float32).reshape(len(usable), len(vector))
            sims[usable] = matrix @ vector
        return [(*row[:6], float(sim)) for row, sim in zip(rows, sims, strict=True)]

    def can_scan(self, size: int) -> bool:
        return True

    def pending(self, dim: int) -> bool:
        return False  # no index: every search is exact

    def index_pending(self, limit: int) -> int:
        return 0

    def drop_index(self) -> None:
        pass  # no index to drop

    def create_index(self, *, memory_mb: int | None = None) -> None:
        pass

    @staticmethod
    def _vectors(scope: MemoryQuerySet, dim: int) -> tuple[list, np.ndarray]:
        # Raw rows: one bytes join and one frombuffer instead of a converter call per row,
        # which dominated searches over a user's few thousand memories.
        rows = scope.filter(embedding_dim=dim).raw_rows("id", "embedding")
        if not rows:
            return [], np.zeros((0, dim), np.float32)
        blob = b"".join(bytes(row[1]) for row in rows)
        return [row[0] for row in rows], np.frombuffer(blob, np.float32).reshape(len(rows), dim)


# The memories awaiting the index, by primary key from their queue's ids read first as one
# array. As a join, statistics taken during a bulk load's backlog (20,000 queued, 5 by the
# time of the search) made the planner hash the queue and read the whole memory table.
_QUEUED = RawSQL(
    f"{Memory._meta.db_table}.id = ANY(ARRAY(SELECT memory_id FROM "
    f"{PendingVector._meta.db_table}))",
    (),
    output_field=BooleanField(),
)


class PgvectorBackend:
    """Scope first, then rank: exact distance sort for small scopes (a user's memories,
    found through the user_id index), HNSW with iterative scan for large ones.

    A new memory enters the HNSW graph later, not in its add: the insert cost an add 4 ms of
    database time at 20,000 memories, more as the graph grows, and held the add's row locks
    meanwhile. It is stored pending (outside the index's predicate), the indexer takes it in
    (index_pending, run in the background after adds), and searches rank pending memories
    exactly beside the graph's answer, so nothing is missed in between."""

    def __init__(self) -> None:
        # When this process last looked for the index, and whether it was there.
        self._index_seen: tuple[float, bool] = (float("-inf"), True)

    def search(
        self, scope: MemoryQuerySet, vector: np.ndarray, k: int, *, large: bool | None = None
    ) -> list[Hit]:
        qvec = to_pgvector_text(vector)
        if large is None and len(vector) == HNSW_DIM:
            large = self._scope_is_large(scope)
        if len(vector) == HNSW_DIM and large:
            # relaxed_order keeps walking the graph until k rows pass the scope's filters;
            # its output may be slightly out of order, hence the sort below.
            distance = RawSQL(f"embedding::vector({HNSW_DIM}) <=> %s::vector({HNSW_DIM})", (qvec,))
            # The index is partial: repeat its predicate so that it qualifies.
            scope = scope.filter(embedding_dim=HNSW_DIM)
            # Ordered by distance alone: a tie-breaker would keep the index from serving the
            # ORDER BY. Ties are broken by the sort below instead.
            indexed = self._nearest(scope.filter(vector_pending=False), distance, k, ("dist",))
            waiting = self._nearest(scope.filter(_QUEUED), distance, k, ("dist",))
            with transaction.atomic(), connection.cursor() as cursor:
                # For this transaction only (set_config's `true`), in one round trip. The
                # queue's statistics may still count a bulk load's backlog (until vacuum
                # shrinks it), and for that many rows the planner chose parallel workers,
                # whose start alone cost 14 ms for the eight rows really pending.
                cursor.execute(
                    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                    "set_config('hnsw.ef_search', %s, true), "
                    "set_config('max_parallel_workers_per_gather', '0', true)",
                    [str(int(settings.OM_HNSW_EF_SEARCH))],
                )
                # One statement, so one snapshot: in two, a memory the indexer took in
                # between would be in neither answer.
                rows = list(indexed.union(waiting, all=True))
            rows.sort(key=lambda row: (row[1], str(row[0])))
            rows = rows[:k]
        else:
            rows = list(self._nearest(scope, RawSQL("embedding <=> %s::vector", (qvec,)), k))
        return [Hit(mid, 1.0 - float(dist)) for mid, dist in rows]

    def similarities(
        self, scope: MemoryQuerySet, vector: np.ndarray, ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, float]:
        similarity = RawSQL("1 - (embedding <=> %s::vector)", (to_pgvector_text(vector),))
        rows = (
            scope.filter(pk__in=list(ids), embedding_dim=len(vector))
            .annotate(similarity=similarity)
            .values_list("id", "similarity")
        )
        return {pk: float(sim) for pk, sim in rows}

    def scan(
        self, scope: MemoryQuerySet, vector: np.ndarray, model_id: str, *, small: bool = False
    ) -> list[Scanned] | None:
        if not small and self._scope_is_large(scope):
            return None
        current = Q(embedding_model=model_id, embedding_dim=len(vector))
        distance = RawSQL("1 - (embedding <=> %s::vector)", (to_pgvector_text(vector),))
        similarity = Case(
            When(current, then=distance), default=Value(0.0), output_field=FloatField()
        )
        rows = _epochs(scope).annotate(similarity=similarity).raw_rows(*_SCAN_COLUMNS, "similarity")
        return [(*row[:-1], float(row[-1])) for row in rows]

    def can_scan(self, size: int) -> bool:
        return not scope_is_large(size)

    def pending(self, dim: int) -> bool:
        # Other dimensions are never in the graph. With no index (dropped for an import), a
        # memory has no graph to wait for: stored outside the queue, it needs no flag update
        # later, and the build takes it in. A process that has not yet seen the index come
        # back stores one so anyway, and PostgreSQL then inserts it into the graph with its
        # add (slower, never missed); one that has not seen it go queues it as usual.
        return dim == HNSW_DIM and self._index_exists()

    def index_pending(self, limit: int) -> int:
        queue = connection.ops.quote_name(PendingVector._meta.db_table)
        table = connection.ops.quote_name(Memory._meta.db_table)
        # The memory rows are locked first, as every edit and delete locks them before their
        # queue row (deletes through the database's cascade): taken in the other order, an
        # indexer and a delete each held what the other waited for. SKIP LOCKED: a memory
        # being edited or deleted, or taken by an indexer in another process, is left for a
        # later run. Clearing the flag moves the memory into the index's predicate, and
        # PostgreSQL inserts it into the graph; its queue row goes in the same statement, so
        # no snapshot sees one change without the other.
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH taken AS (SELECT id FROM {table} WHERE id = ANY(ARRAY("
                f"SELECT memory_id FROM {queue} LIMIT %s)) FOR UPDATE SKIP LOCKED), "
                f"flipped AS (UPDATE {table} SET vector_pending = false "
                "WHERE id IN (SELECT id FROM taken) RETURNING 1), "
                f"gone AS (DELETE FROM {queue} WHERE memory_id IN (SELECT id FROM taken) "
                "RETURNING 1) "
                "SELECT (SELECT COUNT(*) FROM taken), (SELECT COUNT(*) FROM flipped), "
                "(SELECT COUNT(*) FROM gone)",
                [limit],
            )
            return cursor.fetchone()[0]

    def drop_index(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {HNSW_INDEX}")
        self._index_seen = (time.monotonic(), False)

    def _index_exists(self) -> bool:
        """Whether the index exists, as seen at most INDEX_SEEN_SECONDS ago."""
        seen_at, exists = self._index_seen
        now = time.monotonic()
        if now - seen_at > INDEX_SEEN_SECONDS:
            with connection.cursor() as cursor:
                cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [HNSW_INDEX])
                exists = cursor.fetchone()[0]
            self._index_seen = (now, exists)
        return exists

    def create_index(self, *, memory_mb: int | None = None) -> None:
        # A graph that outgrows maintenance_work_mem is built far more slowly (pgvector says
        # so in a notice); the setting is this session's only, reset whatever happens.
        if memory_mb is None:
            size = Memory.objects.filter(embedding_dim=HNSW_DIM, vector_pending=False).count()
            needed = size * _BUILD_BYTES_PER_MEMORY // 2**20 + 1
            memory_mb = min(BUILD_MB_CAP, max(BUILD_MB_RANGE[0], needed))
        with connection.cursor() as cursor:
            cursor.execute(f"SET maintenance_work_mem = '{int(memory_mb)}MB'")
            try:
                cursor.execute(_CREATE_HNSW)
            finally:
                cursor.execute("RESET maintenance_work_mem")
        self._index_seen = (time.monotonic(), True)

    @staticmethod
    def _nearest(
        scope: MemoryQuerySet, distance: RawSQL, k: int, order: tuple = ("dist", "id")
    ) -> MemoryQuerySet:
        return scope.annotate(dist=distance).order_by(*order).values_list("id", "dist")[:k]

    @staticmethod
    def _scope_is_large(scope: MemoryQuerySet) -> bool:
        # Bounded count: stops reading after the threshold instead of counting everything.
        limit = settings.OM_HNSW_MIN_SCOPE
        return scope.order_by().values("pk")[limit : limit + 1].exists()


def scope_is_large(size: int) -> bool:
    """Whether a scope of `size` memories is searched through the HNSW index (on PostgreSQL)
    rather than read whole: more than OM_HNSW_MIN_SCOPE, the one threshold every path uses."""
    return size > settings.OM_HNSW_MIN_SCOPE


@functools.cache
def get_backend() -> VectorSearchBackend:
    return PgvectorBackend() if connection.vendor == "postgresql" else PortableBackend()
