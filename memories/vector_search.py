"""The vector-search interface: a pgvector backend and a portable (numpy) backend."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models.expressions import RawSQL

from memories.fields import to_pgvector_text
from memories.models import MemoryQuerySet, as_uuid

# The HNSW index is built on this cast (see migration 0002); only queries that order by the
# same expression can use it, so the exact path below can never be hijacked by the index.
HNSW_DIM = 384


@dataclass(frozen=True)
class Hit:
    memory_id: uuid.UUID
    similarity: float  # cosine similarity in [-1, 1]


class VectorSearchBackend(Protocol):
    def search(self, scope: MemoryQuerySet, vector: np.ndarray, k: int) -> list[Hit]:
        """The k memories of `scope` nearest to `vector`, nearest first."""
        ...

    def similarities(
        self, scope: MemoryQuerySet, vector: np.ndarray, ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, float]:
        """The cosine similarity of each of `ids` found in `scope` (embedded memories)."""
        ...


class PortableBackend:
    """Exact cosine ranking in numpy over the scope's vectors; works on any database."""

    def search(self, scope: MemoryQuerySet, vector: np.ndarray, k: int) -> list[Hit]:
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

    @staticmethod
    def _vectors(scope: MemoryQuerySet, dim: int) -> tuple[list, np.ndarray]:
        # Raw rows: one bytes join and one frombuffer instead of a converter call per row,
        # which dominated searches over a user's few thousand memories.
        rows = scope.filter(embedding_dim=dim).raw_rows("id", "embedding")
        if not rows:
            return [], np.zeros((0, dim), np.float32)
        blob = b"".join(bytes(row[1]) for row in rows)
        return [row[0] for row in rows], np.frombuffer(blob, np.float32).reshape(len(rows), dim)


class PgvectorBackend:
    """Scope first, then rank: exact distance sort for small scopes (a user's memories,
    found through the user_id index), HNSW with iterative scan for large ones."""

    def search(self, scope: MemoryQuerySet, vector: np.ndarray, k: int) -> list[Hit]:
        qvec = to_pgvector_text(vector)
        if len(vector) == HNSW_DIM and self._scope_is_large(scope):
            # relaxed_order keeps walking the graph until k rows pass the scope's filters;
            # its output may be slightly out of order, hence the sort below.
            distance = RawSQL(f"embedding::vector({HNSW_DIM}) <=> %s::vector({HNSW_DIM})", (qvec,))
            # The index is partial on the dimension: repeat its predicate so it qualifies.
            scope = scope.filter(embedding_dim=HNSW_DIM)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                cursor.execute(f"SET LOCAL hnsw.ef_search = {int(settings.OM_HNSW_EF_SEARCH)}")
                # Ordered by distance alone: a tie-breaker would keep the index from serving
                # the ORDER BY. Ties are broken by the sort below instead.
                rows = self._nearest(scope, distance, k, order=("dist",))
            rows.sort(key=lambda row: (row[1], str(row[0])))
        else:
            rows = self._nearest(scope, RawSQL("embedding <=> %s::vector", (qvec,)), k)
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

    @staticmethod
    def _nearest(
        scope: MemoryQuerySet, distance: RawSQL, k: int, order: tuple = ("dist", "id")
    ) -> list[tuple]:
        return list(scope.annotate(dist=distance).order_by(*order).values_list("id", "dist")[:k])

    @staticmethod
    def _scope_is_large(scope: MemoryQuerySet) -> bool:
        # Bounded count: stops reading after the threshold instead of counting everything.
        limit = settings.OM_HNSW_MIN_SCOPE
        return scope.order_by().values("pk")[limit : limit + 1].exists()


@functools.cache
def get_backend() -> VectorSearchBackend:
    return PgvectorBackend() if connection.vendor == "postgresql" else PortableBackend()
