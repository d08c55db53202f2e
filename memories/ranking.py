"""Ranking of search candidates: dense-only, or hybrid (meaning, words, context, salience,
recency)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Q

from core import clock
from core.scope import ALL_USERS
from memories.embeddings import get_provider
from memories.lexical import LargeScope, bm25
from memories.models import MemoryQuerySet, as_uuid
from memories.search_cache import Columns
from memories.vector_search import SCAN_FIELDS, Scanned, get_backend

PARTS = ("vector", "lexical", "salience", "recency")
# Context is looked up around this many of the best candidates (at least k).
CONTEXT_SOURCES = 20
# The vector part divides a similarity by the best one of the query, but never by less
# than this: when nothing is close to the query, nothing scores high.
VECTOR_FLOOR = 0.6


@dataclass(frozen=True)
class Ranked:
    memory_id: uuid.UUID
    score: float  # in [0, 1]


def weights() -> dict[str, float]:
    """The hybrid weights from settings, scaled to sum to 1 (settings refuse all-zero)."""
    raw = {part: float(settings.OM_HYBRID_WEIGHTS[part]) for part in PARTS}
    total = sum(raw.values())
    return {part: value / total for part, value in raw.items()}


def rank_vector(scope: MemoryQuerySet, vector: np.ndarray, k: int) -> list[Ranked]:
    """Nearest first; the score is the cosine similarity clipped to [0, 1]."""
    hits = get_backend().search(scope, vector, k)
    return [Ranked(h.memory_id, _clip(h.similarity)) for h in hits]


def rank_hybrid(
    scope: MemoryQuerySet,
    vector_scope: MemoryQuerySet,
    query: str,
    vector: np.ndarray,
    k: int,
    *,
    user_id: str | object | None = ALL_USERS,
    narrowed: bool = False,
    columns: Columns | None = None,
    large: bool = False,
) -> list[Ranked]:
    """Candidates from the vector search (over `vector_scope`: the memories embedded by the
    current model) and from BM25 (over all of `scope`, so memories waiting to be re-embedded
    are still found by their words), plus the memories stored next to them; each scored

        own     = w_v*vector + w_l*lexical + w_s*salience + w_r*recency
        score   = (own + c * best own score of its context) / (1 + c)

    vector   cosine similarity / the query's best similarity (at least VECTOR_FLOOR);
    lexical  BM25 over the user's own memories / the query's best BM25 score, times the
             square root of the share of the query's word weight it holds (lexical.Scores);
    salience as stored (reinforcement raises it, decay lowers it);
    recency  0.5 ** (days since the memory was last seen / OM_RECENCY_HALF_LIFE_DAYS);
    context  the memories up to OM_CONTEXT_WINDOW places before and after it in its user's
             sequence, stored within OM_CONTEXT_GAP_SECONDS of it: the turns around it in a
             conversation ("Did you go?" / "Yes, on Friday with Anna"); c = OM_CONTEXT_WEIGHT.

    Weights come from settings, scaled to sum to 1, so scores are in [0, 1]. The vector and
    lexical parts are relative to the best match of this query in the scope (the scales of
    cosine and BM25 differ from query to query), which the README explains. `user_id` is
    the user `scope` belongs to (ALL_USERS: none); `narrowed` says `scope` holds only some
    of that user's memories (a sector or tags filter); `columns`, when given, are the whole
    of `scope` as the search cache holds them; `large` says `scope` is known to be too large
    to read whole.

    A scope too large to read whole (more than OM_HNSW_MIN_SCOPE memories: a giant user,
    everyone's memories) and not narrowed is ranked by _rank_large instead, whose cost
    depends on k and the query, not on the scope's size."""
    backend = get_backend()
    window = settings.OM_CONTEXT_WINDOW if settings.OM_CONTEXT_WEIGHT > 0 else 0
    scanned = None
    if columns is None and not large:
        scanned = backend.scan(scope, vector, get_provider().model_id)
        large = scanned is None
    if large and not narrowed:
        return _rank_large(scope, vector_scope, query, vector, k, user_id=user_id, window=window)
    stats = None if columns is None else (len(columns.keys), int(columns.term_count.sum()))
    lexical = bm25(query, user_id=user_id, within=scope if narrowed else None, stats=stats)
    if columns is not None:
        found = _Candidates.of_columns(columns, columns.similarity(vector), lexical.part)
        found.score_own(max(VECTOR_FLOOR, float(found.similarity.max(initial=0.0))))
    elif scanned is not None:
        # The whole scope in one read (a user's memories): every memory is a candidate and
        # its context is already at hand.
        found = _Candidates(scanned, lexical.part.get)
        found.score_own(max([VECTOR_FLOOR, *found.similarity]))
    else:
        # Too large to read whole: the best of each search, then their context.
        pool = max(k, settings.OM_HYBRID_CANDIDATES)
        hits = backend.search(vector_scope, vector, pool)
        similarity = {h.memory_id: h.similarity for h in hits}
        best_similarity = max([VECTOR_FLOOR, *similarity.values()])
        ids = list(dict.fromkeys([h.memory_id for h in hits] + lexical.best(pool)))
        rows = _rows(scope.filter(pk__in=ids), vector_scope, vector, similarity)
        found = _Candidates(rows, lexical.part_of)
        found.score_own(best_similarity)
        if window:
            around = found.around(window, sources=max(k, CONTEXT_SOURCES))
            if around:
                nearby = scope.filter(around).exclude(pk__in=[row[0] for row in rows])
                rows += _rows(nearby, vector_scope, vector, similarity)
                found = _Candidates(rows, lexical.part_of)
                found.score_own(best_similarity)
    return _top(found, window, k)


def _rank_large(
    scope: MemoryQuerySet,
    vector_scope: MemoryQuerySet,
    query: str,
    vector: np.ndarray,
    k: int,
    *,
    user_id: str | object | None,
    window: int,
) -> list[Ranked]:
    """rank_hybrid over a large scope: the same scores, with BM25 from lexical.LargeScope
    (candidates from the query's rare words, the full BM25 computed for the candidates
    only, relative to the best of them) and the vector search told the scope is large
    unless some of its memories still wait for the current model."""
    backend = get_backend()
    model_id = get_provider().model_id
    words = LargeScope(query, user_id=user_id)
    pool = max(k, settings.OM_HYBRID_CANDIDATES)
    # Finding out whether the embedded part of a large scope is large reads every row up
    # to OM_HNSW_MIN_SCOPE; with nothing awaiting re-embedding (an index lookup) it is.
    awaiting = scope.not_embedded_by(model_id).exists()
    hits = backend.search(vector_scope, vector, pool, large=None if awaiting else True)
    best_similarity = max([VECTOR_FLOOR, *(h.similarity for h in hits)])
    near = [h.memory_id for h in hits]
    ids = list(dict.fromkeys(near + words.best(pool, reading=near)))
    # Rows and similarities in one read each: the ids are few.
    rows = backend.scan(scope.with_ids(ids), vector, model_id, small=True)
    found = _Candidates(rows, words.scores([as_uuid(row[0]) for row in rows]).part_of)
    found.score_own(best_similarity)
    if window:
        around = found.around(window, sources=max(k, CONTEXT_SOURCES))
        if around:
            seen = [as_uuid(row[0]) for row in rows]
            nearby = scope.filter(around).with_ids(seen, exclude=True)
            rows += backend.scan(nearby, vector, model_id, small=True)
            found = _Candidates(rows, words.scores([as_uuid(row[0]) for row in rows]).part_of)
            found.score_own(best_similarity)
    return _top(found, window, k)


def _top(found: _Candidates, window: int, k: int) -> list[Ranked]:
    scores = found.with_context(window)
    if not len(scores):
        return []
    # Everything that scores at least the k-th best, then equal scores ordered by id, so that
    # the same data always gives the same order.
    cutoff = -np.partition(-scores, min(k, len(scores)) - 1)[min(k, len(scores)) - 1]
    top = np.flatnonzero(scores >= cutoff)
    ranked = [Ranked(as_uuid(found.keys[i]), float(scores[i])) for i in top]
    ranked.sort(key=lambda r: (-r.score, str(r.memory_id)))
    return ranked[:k]


def _rows(
    queryset: MemoryQuerySet,
    vector_scope: MemoryQuerySet,
    vector: np.ndarray,
    similarity: dict[uuid.UUID, float],
) -> list[Scanned]:
    """The rows of `queryset` as scan() gives them; similarities not known yet (memories
    found by their words, or as context) are computed here, 0 for another model's vectors."""
    rows = list(queryset.values_list(*SCAN_FIELDS))
    unscored = [row[0] for row in rows if row[0] not in similarity]
    if unscored:
        similarity.update(get_backend().similarities(vector_scope, vector, unscored))
    return [
        (
            pk,
            user_id,
            position,
            created.timestamp(),
            salience,
            seen.timestamp(),
            similarity.get(pk, 0.0),
        )
        for pk, user_id, position, created, salience, seen in rows
    ]


class _Candidates:
    """The memories under consideration, as columns: own scores, then context."""

    def __init__(self, rows: list[Scanned], lexical_of: Callable[[object], float | None]) -> None:
        self.keys = [row[0] for row in rows]
        self.users = [row[1] for row in rows]
        self.position = np.array([row[2] for row in rows], dtype=np.int64)
        self.created = np.array([row[3] for row in rows], dtype=np.float64)
        self.salience = np.array([row[4] for row in rows], dtype=np.float64)
        self.last_seen = np.array([row[5] for row in rows], dtype=np.float64)
        self.similarity = np.array([row[6] for row in rows], dtype=np.float64)
        self.lexical = np.array([lexical_of(key) or 0.0 for key in self.keys], dtype=np.float64)
        self.order: tuple[np.ndarray, np.ndarray] | None = None
        self.own = np.zeros(len(rows))

    @classmethod
    def of_columns(
        cls, columns: Columns, similarity: np.ndarray, lexical: dict[object, float]
    ) -> _Candidates:
        """Every memory of a cached copy. The word parts are set from the few memories that
        hold a query word, and the (user, place) order is the copy's: for a user with
        50,000 memories, a lookup per memory and a sort per query were 13 ms of the 36."""
        found = cls.__new__(cls)
        found.keys, found.users = columns.keys, columns.users
        found.position, found.created = columns.position, columns.created
        found.salience, found.last_seen = columns.salience, columns.last_seen
        found.similarity = similarity
        found.lexical = np.zeros(len(found.keys))
        index = columns.memo("index", lambda: {key: i for i, key in enumerate(columns.keys)})
        for key, part in lexical.items():
            i = index.get(key)
            if i is not None:  # a memory added since the copy was read
                found.lexical[i] = part
        found.order = columns.memo("order", lambda: _sequence(columns.users, columns.position))
        found.own = np.zeros(len(found.keys))
        return found

    def score_own(self, best_similarity: float) -> None:
        w = weights()
        age_days = np.maximum(0.0, clock.now().timestamp() - self.last_seen) / 86400
        self.own = (
            w["vector"] * np.clip(self.similarity / best_similarity, 0.0, 1.0)
            + w["lexical"] * self.lexical
            + w["salience"] * np.clip(self.salience, 0.0, 1.0)
            + w["recency"] * np.power(0.5, age_days / settings.OM_RECENCY_HALF_LIFE_DAYS)
        )

    def around(self, window: int, sources: int) -> Q:
        """The memories stored around the best candidates (same user, nearby places): only
        a strong memory lifts its neighbours above the others."""
        condition = Q()
        for i in np.argsort(-self.own, kind="stable")[:sources]:
            user_id, position = self.users[i], int(self.position[i])
            owner = Q(user_id__isnull=True) if user_id is None else Q(user_id=user_id)
            condition |= owner & Q(position__range=(position - window, position + window))
        return condition

    def with_context(self, window: int) -> np.ndarray:
        """(own + c * the best own score among the memories up to `window` places away in the
        same user's sequence, stored within the gap) / (1 + c), clipped to [0, 1]."""
        if not window or not len(self.keys):
            return np.clip(self.own, 0.0, 1.0)
        # In (user, position) order, a memory's neighbours within `window` places are at
        # most `window` rows away.
        owner, order = self.order or _sequence(self.users, self.position)
        own, position = self.own[order], self.position[order]
        owner, created = owner[order], self.created[order]
        best = np.zeros(len(order))
        gap = settings.OM_CONTEXT_GAP_SECONDS
        for shift in range(1, window + 1):
            near = (
                (owner[shift:] == owner[:-shift])
                & (position[shift:] - position[:-shift] <= window)
                & (np.abs(created[shift:] - created[:-shift]) <= gap)
            )
            best[:-shift] = np.maximum(best[:-shift], np.where(near, own[shift:], 0.0))
            best[shift:] = np.maximum(best[shift:], np.where(near, own[:-shift], 0.0))
        weight = settings.OM_CONTEXT_WEIGHT
        scores = np.empty(len(order))
        scores[order] = (own + weight * best) / (1 + weight)
        return np.clip(scores, 0.0, 1.0)


def _sequence(users: list, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's user as a number, and the rows' order by (user, place)."""
    if len(set(users)) == 1:
        owner = np.zeros(len(users), np.int64)
        return owner, np.argsort(position, kind="stable")
    codes = {user: n for n, user in enumerate(sorted(set(users), key=str))}
    owner = np.array([codes[user] for user in users])
    return owner, np.lexsort((position, owner))


def _clip(value: float) -> float:
    return min(1.0, max(0.0, float(value)))
