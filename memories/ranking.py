"""Ranking of search candidates: dense-only, or hybrid (meaning, words, context, salience,
recency)."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.conf import settings
from django.db.models import Q

from memories.lexical import Scores, bm25
from memories.models import MemoryQuerySet
from memories.vector_search import get_backend
from openmemory import clock
from openmemory.scope import ALL_USERS

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
) -> list[Ranked]:
    """Candidates from the vector search (over `vector_scope`: the memories embedded by the
    current model) and from BM25 (over all of `scope`, so memories waiting to be re-embedded
    are still found by their words), plus the memories stored next to them; each scored

        own     = w_v*vector + w_l*lexical + w_s*salience + w_r*recency
        score   = (own + c * best own score of its context) / (1 + c)

    vector   cosine similarity / the query's best similarity (at least VECTOR_FLOOR);
    lexical  BM25 over the user's own memories / the query's best BM25 score;
    salience as stored (reinforcement raises it, decay lowers it);
    recency  0.5 ** (days since the memory was last seen / OM_RECENCY_HALF_LIFE_DAYS);
    context  the memories up to OM_CONTEXT_WINDOW places before and after it in its user's
             sequence, stored within OM_CONTEXT_GAP_SECONDS of it: the turns around it in a
             conversation ("Did you go?" / "Yes, on Friday with Anna"); c = OM_CONTEXT_WEIGHT.

    Weights come from settings, scaled to sum to 1, so scores are in [0, 1]. The vector and
    lexical parts are relative to the best match of this query in the scope (the scales of
    cosine and BM25 differ from query to query), which the README explains."""
    pool = max(k, settings.OM_HYBRID_CANDIDATES)
    found = _Candidates(scope, vector_scope, vector)
    hits = get_backend().search(vector_scope, vector, pool)
    found.similarity.update((h.memory_id, h.similarity) for h in hits)
    found.best_similarity = max([VECTOR_FLOOR, *(h.similarity for h in hits)])
    found.lexical = bm25(scope, query, user_id=user_id)
    best_lexical = found.lexical.best(pool)
    found.add(scope.filter(pk__in=list(dict.fromkeys([h.memory_id for h in hits] + best_lexical))))
    window = settings.OM_CONTEXT_WINDOW if settings.OM_CONTEXT_WEIGHT > 0 else 0
    if window:
        found.add_context(window, sources=max(k, CONTEXT_SOURCES))
    ranked = [Ranked(pk, found.score(pk, window)) for pk in found.rows]
    # Equal scores are ordered by id so that the same data always gives the same order.
    ranked.sort(key=lambda r: (-r.score, str(r.memory_id)))
    return ranked[:k]


@dataclass(frozen=True, slots=True)
class _Row:
    user_id: str | None
    position: int
    created_at: datetime
    own: float


class _Candidates:
    """The memories under consideration, with their own scores."""

    def __init__(
        self, scope: MemoryQuerySet, vector_scope: MemoryQuerySet, vector: np.ndarray
    ) -> None:
        self.scope, self.vector_scope, self.vector = scope, vector_scope, vector
        self.now: datetime = clock.now()
        self.weights = weights()
        self.similarity: dict[uuid.UUID, float] = {}
        self.best_similarity = VECTOR_FLOOR
        self.lexical = Scores({}, "")
        self.rows: dict[uuid.UUID, _Row] = {}
        self.at: dict[tuple[str | None, int], list[_Row]] = {}

    def add(self, queryset: MemoryQuerySet) -> None:
        rows = list(
            queryset.values_list(
                "id", "user_id", "position", "created_at", "salience", "last_seen_at"
            )
        )
        unscored = [pk for pk, *_ in rows if pk not in self.similarity]
        if unscored:
            # Not among the vector search's hits: their similarity is computed here (memories
            # of another embedding model, waiting to be re-embedded, keep 0).
            self.similarity.update(
                get_backend().similarities(self.vector_scope, self.vector, unscored)
            )
        w = self.weights
        half_life = settings.OM_RECENCY_HALF_LIFE_DAYS
        best_lexical = self.lexical.best_score
        for key, user_id, position, created_at, salience, last_seen_at in rows:
            age_days = max(0.0, (self.now - last_seen_at).total_seconds() / 86400)
            lexical = self.lexical.get(key) / best_lexical if best_lexical else 0.0
            own = (
                w["vector"] * _clip(self.similarity.get(key, 0.0) / self.best_similarity)
                + w["lexical"] * lexical
                + w["salience"] * _clip(salience)
                + w["recency"] * math.pow(0.5, age_days / half_life)
            )
            row = _Row(user_id, position, created_at, own)
            self.rows[key] = row
            self.at.setdefault((user_id, position), []).append(row)

    def add_context(self, window: int, sources: int) -> None:
        """Adds the memories stored around the best candidates (same user, nearby places):
        only a strong memory lifts its neighbours above the others."""
        best = sorted(self.rows.values(), key=lambda row: -row.own)[:sources]
        condition = Q()
        for row in best:
            owner = Q(user_id__isnull=True) if row.user_id is None else Q(user_id=row.user_id)
            near = (row.position - window, row.position + window)
            condition |= owner & Q(position__range=near)
        if condition:
            self.add(self.scope.filter(condition).exclude(pk__in=list(self.rows)))

    def score(self, pk: uuid.UUID, window: int) -> float:
        row = self.rows[pk]
        if not window:
            return _clip(row.own)
        gap = settings.OM_CONTEXT_GAP_SECONDS
        best = 0.0
        for offset in range(-window, window + 1):
            if offset == 0:
                continue
            for other in self.at.get((row.user_id, row.position + offset), ()):
                if (
                    other.own > best
                    and abs((other.created_at - row.created_at).total_seconds()) <= gap
                ):
                    best = other.own
        weight = settings.OM_CONTEXT_WEIGHT
        return _clip((row.own + weight * best) / (1 + weight))


def _clip(value: float) -> float:
    return min(1.0, max(0.0, float(value)))
