"""Per-process cache of a user's search columns (ids, places, times, salience, term counts,
vectors) and of the memories search has answered with, valid while the user's revision
token is unchanged (memories/revisions.py): a query then reads one row instead of the
user's whole history, and every write anywhere changes the token, so no process or
instance ever ranks from a stale copy."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models.expressions import RawSQL

from memories import revisions
from memories.models import Memory, MemoryQuerySet
from memories.vector_search import _SCAN_COLUMNS, _epochs

# How each database hands over a vector as bytes: SQLite stores float32 bytes; pgvector's
# binary form is a 2-byte dimension, 2 unused bytes, then big-endian float32s.
_VECTOR_BYTES = {"sqlite": ("embedding", 0, "<f4"), "postgresql": ("vector_send", 4, ">f4")}


@dataclass
class Columns:
    """One scope's memories as columns, in the order the database returned them."""

    keys: list
    users: list
    position: np.ndarray
    created: np.ndarray
    salience: np.ndarray
    last_seen: np.ndarray
    term_count: np.ndarray
    usable: np.ndarray  # rows embedded by the current model, as indices into the columns
    matrix: np.ndarray  # their vectors, one row each
    tokens: tuple
    memories: dict[uuid.UUID, Memory] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return self.matrix.nbytes + 200 * len(self.keys)

    def similarity(self, vector: np.ndarray) -> np.ndarray:
        sims = np.zeros(len(self.keys), np.float64)
        if len(self.usable) and self.matrix.shape[1] == len(vector):
            sims[self.usable] = self.matrix @ vector
        return sims


class _Cache:
    def __init__(self) -> None:
        self.entries: OrderedDict[str, Columns] = OrderedDict()
        self.lock = threading.Lock()
        self.size = 0

    def get(self, key: str, tokens: tuple) -> Columns | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None or entry.tokens != tokens:
                return None
            self.entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: Columns) -> None:
        limit = settings.OM_SEARCH_CACHE_MB * 1024 * 1024
        if entry.nbytes > limit:
            return
        with self.lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self.size -= old.nbytes
            self.entries[key] = entry
            self.size += entry.nbytes
            while self.size > limit:
                _, evicted = self.entries.popitem(last=False)
                self.size -= evicted.nbytes

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.size = 0


_cache = _Cache()


def clear() -> None:
    _cache.clear()


def columns(
    *, user_id: str | None, scope: MemoryQuerySet, model_id: str, dim: int, fits
) -> Columns | None:
    """The columns of `scope` (all of `user_id`'s memories), from this process's copy when
    the user's token still matches, else read once and kept. None when caching is off or
    `fits(scope)` says the scope is too large to read whole."""
    if not settings.OM_SEARCH_CACHE_MB:
        return None
    # The token is read before the rows: a write landing in between makes the copy look
    # older than it is (one extra read later), never newer.
    tokens = (*revisions.current(user_id), model_id, dim)
    key = revisions.scope_key(user_id)
    entry = _cache.get(key, tokens)
    if entry is None:
        if not fits(scope):
            return None
        entry = _load(scope, model_id, dim, tokens)
        _cache.put(key, entry)
    return entry


def _load(scope: MemoryQuerySet, model_id: str, dim: int, tokens: tuple) -> Columns:
    function, skip, dtype = _VECTOR_BYTES[connection.vendor]
    vector = "embedding" if function == "embedding" else "vector_bytes"
    queryset = _epochs(scope)
    if vector != "embedding":
        queryset = queryset.annotate(vector_bytes=RawSQL(f"{function}(embedding)", ()))
    rows = queryset.raw_rows(*_SCAN_COLUMNS, "term_count", "embedding_model", vector)
    size = skip + dim * 4
    usable = [i for i, row in enumerate(rows) if row[7] == model_id and len(row[8]) == size]
    if usable:
        blob = b"".join(bytes(rows[i][8])[skip:] for i in usable)
        matrix = np.frombuffer(blob, dtype).reshape(len(usable), dim).astype(np.float32)
    else:
        matrix = np.zeros((0, dim), np.float32)
    return Columns(
        keys=[row[0] for row in rows],
        users=[row[1] for row in rows],
        position=np.array([row[2] for row in rows], dtype=np.int64),
        created=np.array([row[3] for row in rows], dtype=np.float64),
        salience=np.array([row[4] for row in rows], dtype=np.float64),
        last_seen=np.array([row[5] for row in rows], dtype=np.float64),
        term_count=np.array([row[6] for row in rows], dtype=np.int64),
        usable=np.array(usable, dtype=np.int64),
        matrix=matrix,
        tokens=tokens,
    )


def listing(entry: Columns | None, ids: Iterable[uuid.UUID], load) -> dict[uuid.UUID, Memory]:
    """The memories `ids` as an answer shows them: those already answered with from the
    same copy (same token), the rest by `load(ids)`, kept with the copy."""
    ids = list(ids)
    if entry is None:
        return load(ids)
    missing = [pk for pk in ids if pk not in entry.memories]
    if missing:
        entry.memories.update(load(missing))
    return {pk: entry.memories[pk] for pk in ids if pk in entry.memories}
