"""Per-process cache of a user's search columns (ids, places, times, salience, term counts,
vectors) and of the memories search has answered with, valid while the user's revision
token is unchanged (memories/revisions.py): a query then reads one row instead of the
user's whole history, and every write anywhere changes the token, so no process or
instance ever ranks from a stale copy."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
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
class _Storage:
    """The vectors' buffer, shared by a copy and the copies extended from it: each uses its
    first rows, and rows past `filled` are free for the next extension (see _extended)."""

    buffer: np.ndarray
    filled: int


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
    matrix: np.ndarray  # their vectors, one row each: the first rows of storage.buffer
    tokens: tuple  # (user's token, all-users token, model, dimension)
    storage: _Storage
    memories: dict[uuid.UUID, Memory] = field(default_factory=dict)
    # What searches derive from these columns alone (see memo).
    derived: dict[str, object] = field(default_factory=dict)

    def memo(self, name: str, compute):
        """`compute()`, once per copy: for what every search of a large scope would
        otherwise derive from the columns again. Two threads may both compute it; either
        result is the same."""
        if name not in self.derived:
            self.derived[name] = compute()
        return self.derived[name]

    @property
    def nbytes(self) -> int:
        return self.storage.buffer.nbytes + 200 * len(self.keys)

    @property
    def highest(self) -> int | None:
        """The last place in the user's sequence that this copy holds."""
        return int(self.position.max()) if len(self.position) else None

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

    def claim(self, storage: _Storage, filled: int, rows: int) -> bool:
        """Whether the `rows` after the first `filled` of `storage` are free, taking them if
        so: two threads extending the same copy must not write into the same rows."""
        with self.lock:
            if storage.filled != filled or filled + rows > len(storage.buffer):
                return False
            storage.filled += rows
            return True

    def put(self, key: str, entry: Columns | None) -> None:
        """Keeps `entry` as the scope's copy; None, or an entry over the whole budget, drops
        the copy kept so far: left in place, it would be extended on every query from ever
        further behind (a user outgrowing the budget or the scan limit)."""
        limit = settings.OM_SEARCH_CACHE_MB * 1024 * 1024
        with self.lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self.size -= old.nbytes
            if entry is None or entry.nbytes > limit:
                return
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
    *,
    user_id: str | None,
    scope: MemoryQuerySet,
    model_id: str,
    dim: int,
    fits: Callable[[int], bool],
) -> Columns | None:
    """The columns of `scope` (all of `user_id`'s memories), from this process's copy when
    the user's token still matches, else read once and kept. A copy whose token matches but
    that lacks memories added since reads only those. None when caching is off or
    `fits(count)` says the scope's count of memories is too large to read whole."""
    if not settings.OM_SEARCH_CACHE_MB:
        return None
    # The token is read before the rows: a write landing in between makes the copy look
    # older than it is (one extra read later), never newer.
    revision, everyone, count, highest = revisions.current(user_id)
    tokens = (revision, everyone, model_id, dim)
    key = revisions.scope_key(user_id)
    entry = _cache.get(key, tokens)
    if entry is not None and (len(entry.keys), entry.highest) == (count, highest):
        return entry
    if entry is not None and entry.highest is not None and (highest or 0) > entry.highest:
        entry = _extended(entry, user_id, scope, model_id, dim)
    else:
        entry = None
    if entry is None and fits(count):
        entry = _load(scope, model_id, dim, tokens)
    _cache.put(key, entry)
    return entry


def _read(scope: MemoryQuerySet, *extra: str, **annotations) -> list[tuple]:
    """The search columns of `scope`'s rows, then `extra`, the vector last, as bytes."""
    function, _, _ = _VECTOR_BYTES[connection.vendor]
    vector = "embedding" if function == "embedding" else "vector_bytes"
    queryset = _epochs(scope).annotate(**annotations)
    if vector != "embedding":
        queryset = queryset.annotate(vector_bytes=RawSQL(f"{function}(embedding)", ()))
    return queryset.raw_rows(*_SCAN_COLUMNS, "term_count", "embedding_model", *extra, vector)


def _vectors(rows: list[tuple], model_id: str, dim: int) -> tuple[list[int], np.ndarray]:
    """Which rows hold a vector of `model_id` and `dim`, and those vectors, one per row."""
    _, skip, dtype = _VECTOR_BYTES[connection.vendor]
    size = skip + dim * 4
    usable = [i for i, row in enumerate(rows) if row[7] == model_id and len(row[-1]) == size]
    if not usable:
        return [], np.zeros((0, dim), np.float32)
    blob = b"".join(bytes(rows[i][-1])[skip:] for i in usable)
    return usable, np.frombuffer(blob, dtype).reshape(len(usable), dim).astype(np.float32)


def _load(scope: MemoryQuerySet, model_id: str, dim: int, tokens: tuple) -> Columns:
    rows = _read(scope)
    usable, matrix = _vectors(rows, model_id, dim)
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
        storage=_Storage(matrix, len(matrix)),
    )


def _extended(
    entry: Columns, user_id: str | None, scope: MemoryQuerySet, model_id: str, dim: int
) -> Columns | None:
    """`entry` with the memories placed after its last one, read alone; None when the
    scope holds more than that (a memory placed earlier that committed later, or rows
    written around the services), which only a whole read can tell apart.

    The scope's count comes with the new rows, from the same statement and so from the
    same moment: while the token holds, memories are only ever added, so the scope then
    holds exactly the copy's rows and the new ones when the counts agree."""
    owner, params = ("user_id IS NULL", []) if user_id is None else ("user_id = %s", [user_id])
    table = connection.ops.quote_name(Memory._meta.db_table)
    rows = _read(
        scope.filter(position__gt=entry.highest),
        "scope_count",
        scope_count=RawSQL(f"SELECT COUNT(*) FROM {table} WHERE {owner}", params),
    )
    if not rows or len(entry.keys) + len(rows) != rows[0][-2]:
        return None
    usable, vectors = _vectors(rows, model_id, dim)
    filled = len(entry.matrix)
    storage = entry.storage
    if not _cache.claim(storage, filled, len(vectors)):
        # Room for a quarter more: a user who keeps adding copies the vectors rarely.
        grown = max(filled + len(vectors), filled * 5 // 4 + 16)
        storage = _Storage(np.empty((grown, dim), np.float32), filled + len(vectors))
        storage.buffer[:filled] = entry.matrix
    storage.buffer[filled : filled + len(vectors)] = vectors
    offset = len(entry.keys)
    return Columns(
        keys=entry.keys + [row[0] for row in rows],
        users=entry.users + [row[1] for row in rows],
        position=np.concatenate([entry.position, [row[2] for row in rows]]).astype(np.int64),
        created=np.concatenate([entry.created, [row[3] for row in rows]]),
        salience=np.concatenate([entry.salience, [row[4] for row in rows]]),
        last_seen=np.concatenate([entry.last_seen, [row[5] for row in rows]]),
        term_count=np.concatenate([entry.term_count, [row[6] for row in rows]]).astype(np.int64),
        usable=np.concatenate([entry.usable, np.array(usable, np.int64) + offset]),
        matrix=storage.buffer[: filled + len(vectors)],
        tokens=entry.tokens,
        storage=storage,
        memories=dict(entry.memories),
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
