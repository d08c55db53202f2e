"""Ranking of search candidates: dense-only, or hybrid (vector, words, links, salience, recency)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.conf import settings

from memories.lexical import (
    MAX_QUERY_TERMS,
    coverage,
    get_lexical_backend,
    names_in,
    query_words,
    stems,
)
from memories.models import MemoryQuerySet
from memories.vector_search import Hit, get_backend
from openmemory import clock
from openmemory.scope import ALL_USERS

PARTS = ("vector", "lexical", "link", "salience", "recency")
# How many of the best word-matching candidates lend their names to the link part.
LINK_BRIDGES = 2
LINK_LOOKAHEAD = 5


@dataclass(frozen=True)
class Ranked:
    memory_id: str
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
    query: str,
    vector: np.ndarray,
    k: int,
    *,
    user_id: str | object | None = ALL_USERS,
) -> list[Ranked]:
    """Candidates from the vector and the full-text search (the scope applied inside each),
    each scored

        score = w_v*vector + w_l*lexical + w_k*link + w_s*salience + w_r*recency

    vector   cosine similarity to the query, clipped to [0, 1];
    lexical  the fraction of the query's terms the memory contains (stemmed);
    link     1 if the memory names someone or something (a capitalised word) that one of the
             best word-matching memories names: the second hop of "where did my manager grow
             up?" -> "My manager Elena ..." -> "Elena grew up in Rotterdam";
    salience as stored (reinforcement raises it, decay lowers it);
    recency  0.5 ** (days since the memory was last seen / OM_RECENCY_HALF_LIFE_DAYS);
    weights from settings, scaled to sum to 1.

    Every part is an absolute measure in [0, 1]: nothing is normalised per query or per
    result set, so a score means the same for any query and any user, and a fixed min_score
    is meaningful. `user_id` names the user `scope` is restricted to, if any (an index hint)."""
    pool = max(k, settings.OM_HYBRID_CANDIDATES)
    lexical = get_lexical_backend()
    terms = query_words(query)
    found = _Candidates(scope, vector, query_stems={s for t in terms for s in stems(t)})
    found.add_hits(get_backend().search(scope, vector, pool))
    found.add(lexical.search(scope, terms, pool, user_id=user_id))
    w = weights()
    if w["link"] > 0:
        best = sorted(found.parts, key=lambda pk: (-found.score(pk, w), pk))[:LINK_LOOKAHEAD]
        bridges = [pk for pk in best if found.parts[pk]["lexical"] > 0][:LINK_BRIDGES]
        names = set().union(*(names_in(found.contents[pk]) for pk in bridges))
        names -= names_in(query, anywhere=True)
        names = set(sorted(names)[:MAX_QUERY_TERMS])
        if names:
            found.add(lexical.search(scope, sorted(names), pool, user_id=user_id))
            for pk, content in found.contents.items():
                if pk not in bridges and names & names_in(content, anywhere=True):
                    found.parts[pk]["link"] = 1.0
    ranked = [Ranked(pk, found.score(pk, w)) for pk in found.parts]
    # Equal scores are ordered by id so that the same data always gives the same order.
    ranked.sort(key=lambda r: (-r.score, r.memory_id))
    return ranked[:k]


class _Candidates:
    """The memories under consideration, with their parts (link is filled in afterwards)."""

    def __init__(self, scope: MemoryQuerySet, vector: np.ndarray, query_stems: set[str]) -> None:
        self.scope, self.vector, self.query_stems = scope, vector, query_stems
        self.now: datetime = clock.now()
        self.similarity: dict[str, float] = {}
        self.parts: dict[str, dict[str, float]] = {}
        self.contents: dict[str, str] = {}

    def add_hits(self, hits: list[Hit]) -> None:
        self.similarity.update((h.memory_id, h.similarity) for h in hits)
        self.add([h.memory_id for h in hits])

    def add(self, ids: list[str]) -> None:
        new = [pk for pk in dict.fromkeys(ids) if pk not in self.parts]
        if not new:
            return
        unscored = [pk for pk in new if pk not in self.similarity]
        if unscored:
            # Found by words alone: the vector search did not compute their similarity.
            for pk, embedding in self.scope.filter(pk__in=unscored).values_list("id", "embedding"):
                self.similarity[str(pk)] = float(np.asarray(embedding, np.float32) @ self.vector)
        half_life = settings.OM_RECENCY_HALF_LIFE_DAYS
        rows = self.scope.filter(pk__in=new).values_list(
            "id", "content", "salience", "last_seen_at"
        )
        for pk, content, salience, last_seen_at in rows:
            age_days = max(0.0, (self.now - last_seen_at).total_seconds() / 86400)
            self.contents[str(pk)] = content
            self.parts[str(pk)] = {
                "vector": _clip(self.similarity[str(pk)]),
                "lexical": coverage(self.query_stems, content),
                "link": 0.0,
                "salience": _clip(salience),
                "recency": math.pow(0.5, age_days / half_life),
            }

    def score(self, pk: str, w: dict[str, float]) -> float:
        return _clip(sum(w[part] * self.parts[pk][part] for part in PARTS))


def _clip(value: float) -> float:
    return min(1.0, max(0.0, float(value)))
