"""Reads of memories: fetch one, list, and ranked search."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from memories.embeddings import embed_query, get_provider
from memories.models import Memory
from memories.vector_search import get_backend
from openmemory.exceptions import NotFound
from openmemory.scope import ALL_USERS


def memory_get(
    *, memory_id: str, within: str | object = ALL_USERS, for_update: bool = False
) -> Memory:
    """One memory by id, looked for only among `within`'s memories (404 elsewhere)."""
    try:
        uuid.UUID(str(memory_id))
    except ValueError:
        raise NotFound("memory not found") from None
    queryset = Memory.objects.defer("embedding")
    if within is not ALL_USERS:
        queryset = queryset.for_user(within)
    queryset = queryset.select_for_update() if for_update else queryset.prefetch_related("tags")
    try:
        return queryset.get(pk=memory_id)
    except Memory.DoesNotExist:
        raise NotFound("memory not found") from None


def memory_list(
    *,
    user_id: str | object | None = ALL_USERS,
    sector: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Memory]:
    queryset = Memory.objects.all()
    if user_id is not ALL_USERS:
        queryset = queryset.for_user(user_id)
    return list(queryset.in_sector(sector).for_listing()[offset : offset + limit])


@dataclass(frozen=True)
class Match:
    memory: Memory
    score: float


def memory_query(
    *,
    query: str,
    k: int = 8,
    user_id: str | object | None = ALL_USERS,
    sector: str | None = None,
    min_score: float | None = None,
    tags: list[str] | None = None,
) -> list[Match]:
    """The k memories most similar to `query` within the scope the filters describe.

    The scope (user, sector, tags, embedding model) is applied inside the search, so a user
    with five memories gets all five back however many other users' memories exist.
    `score` is the cosine similarity clipped to [0, 1]; `min_score` filters on it.
    """
    provider = get_provider()
    scope = Memory.objects.embedded_by(provider.model_id).in_sector(sector).with_any_tag(tags)
    if user_id is not ALL_USERS:
        scope = scope.for_user(user_id)
    hits = get_backend().search(scope, embed_query(query), k)
    scores = {hit.memory_id: min(1.0, max(0.0, hit.similarity)) for hit in hits}
    if min_score is not None:
        scores = {mid: s for mid, s in scores.items() if s >= min_score}
    memories = Memory.objects.filter(pk__in=list(scores)).for_listing().in_bulk()
    return [
        Match(memories[uuid.UUID(mid)], scores[mid]) for mid in scores if uuid.UUID(mid) in memories
    ]


def user_has_memories(*, user_id: str) -> bool:
    return Memory.objects.for_user(user_id).exists()


def memories_for_export(*, user_id: str | object = ALL_USERS, chunk: int = 500):
    """Every memory of `user_id` (or of everyone), oldest first, streamed in chunks with
    their tags: memory stays flat however many there are."""
    queryset = Memory.objects.all()
    if user_id is not ALL_USERS:
        queryset = queryset.for_user(user_id)
    queryset = queryset.defer("embedding").prefetch_related("tags").order_by("created_at", "id")
    return queryset.iterator(chunk_size=chunk)
