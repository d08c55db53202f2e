"""Reads of memories: fetch one, list, and ranked search."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Max, Window
from django.db.models.functions import Exp

from core.exceptions import NotFound
from core.scope import ALL_USERS
from memories import lexical, search_cache
from memories.embeddings import embed_query, get_provider
from memories.models import EpochDays, Memory, PendingVector, Tag
from memories.ranking import rank_hybrid, rank_vector
from memories.vector_search import get_backend, scope_is_large


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
    """The k best memories for `query` within the scope the filters describe, best first.

    The scope (user, sector, tags) is applied inside the search, so a user
    with five memories gets all five back however many other users' memories exist.
    `score` is in [0, 1]: the hybrid score with OM_RANKING=hybrid (memories/ranking.py), the
    clipped cosine similarity with OM_RANKING=vector. `min_score` filters on it.
    """
    scope = Memory.objects.in_sector(sector).with_any_tag(tags)
    if user_id is not ALL_USERS:
        scope = scope.for_user(user_id)
    # Vectors of another model (before or during a re-embedding) are never compared; those
    # memories are still found by their words with the hybrid ranking.
    vector_scope = scope.embedded_by(get_provider().model_id)
    vector = embed_query(query)
    columns = None
    if settings.OM_RANKING == "hybrid":
        narrowed = bool(sector or tags)
        # A scope measured large a moment ago skips the small scopes' cache and reads.
        large = not narrowed and scope_is_large(lexical.known_size(user_id) or 0)
        if user_id is not ALL_USERS and not narrowed and not large:
            columns = search_cache.columns(
                user_id=user_id,
                scope=scope,
                model_id=get_provider().model_id,
                dim=len(vector),
                fits=get_backend().can_scan,
            )
        ranked = rank_hybrid(
            scope,
            vector_scope,
            query,
            vector,
            k,
            user_id=user_id,
            narrowed=narrowed,
            columns=columns,
            large=large,
        )
    else:
        ranked = rank_vector(vector_scope, vector, k)
    if min_score is not None:
        ranked = [r for r in ranked if r.score >= min_score]
    memories = search_cache.listing(columns, [r.memory_id for r in ranked], _for_listing)
    return [Match(memories[r.memory_id], r.score) for r in ranked if r.memory_id in memories]


def _for_listing(ids: list[uuid.UUID]) -> dict[uuid.UUID, Memory]:
    """The memories `ids` with what an answer shows (all but the vector, and their tags),
    by id: one hand-written read, each memory's tags aggregated as JSON beside it, built
    into instances by raw(). For a query's ten answers, building the reads through querysets
    (for_listing(): defer, prefetch_related) cost twice what running them did, and a second
    statement for the tags a round trip more than the aggregate."""
    if not ids:
        return {}
    quote = connection.ops.quote_name
    prepared = [Memory._meta.pk.get_db_prep_value(pk, connection) for pk in ids]
    marks = ", ".join(["%s"] * len(ids))
    columns = ", ".join(f"m.{quote(column)}" for column in _LISTED_COLUMNS)
    tags = _TAGS_AS_JSON[connection.vendor].format(
        links=quote(Memory.tags.through._meta.db_table), tags=quote(Tag._meta.db_table)
    )
    memories = {}
    for memory in Memory.objects.raw(
        f"SELECT {columns}, {tags} AS tag_rows FROM {quote(Memory._meta.db_table)} m "
        f"WHERE m.id IN ({marks})",
        prepared,
    ):
        rows = memory.__dict__.pop("tag_rows")
        rows = json.loads(rows) if isinstance(rows, str) else rows or []
        memory._prefetched_objects_cache = {
            "tags": [Tag.from_db(connection.alias, ["id", "name"], row) for row in rows]
        }
        memories[memory.pk] = memory
    return memories


# A memory's tags (id, name), sorted by name, as one JSON array (NULL for none).
_TAGS_AS_JSON = {
    "postgresql": (
        "(SELECT json_agg(json_build_array(t.id, t.name) ORDER BY t.name) FROM {links} l "
        "JOIN {tags} t ON t.id = l.tag_id WHERE l.memory_id = m.id)"
    ),
    # SQLite aggregates in the subquery's order.
    "sqlite": (
        "(SELECT json_group_array(json_array(id, name)) FROM (SELECT t.id, t.name "
        "FROM {links} l JOIN {tags} t ON t.id = l.tag_id WHERE l.memory_id = m.id "
        "ORDER BY t.name))"
    ),
}


# What _for_listing() reads: every column but the vector.
_LISTED_COLUMNS = [
    field.column for field in Memory._meta.concrete_fields if field.name != "embedding"
]


def user_has_memories(*, user_id: str) -> bool:
    return Memory.objects.for_user(user_id).exists()


# What memories_by_importance returns for each memory, as the database returns it.
IMPORTANCE_FIELDS = ("id", "content", "primary_sector", "salience", "decay_lambda", "last_seen_at")


@dataclass(frozen=True)
class ByImportance:
    rows: list[tuple]  # IMPORTANCE_FIELDS of each memory chosen
    count: int  # all of the user's memories
    newest: object  # the latest last_seen_at of all of them, raw (None for a user with none)


def memories_by_importance(*, user_id: str, at_most: int) -> ByImportance:
    """The user's memories that matter most to a summary: all of them up to `at_most`, else
    the `at_most` with the highest salience times recency decay (each memory's own sector
    rate, per day between it and the user's newest memory), chosen by the database so that a
    user with a long history is not read whole for each summary. The caller ranks them.
    One statement: the count and the newest time are window aggregates over every row."""
    newest = Window(Max("last_seen_at"))
    importance = F("salience") * Exp(
        -F("decay_lambda") * (EpochDays(newest) - EpochDays("last_seen_at"))
    )
    rows = (
        Memory.objects.for_user(user_id)
        .annotate(importance=importance, everyone=Window(Count("id")), newest=newest)
        .order_by("-importance", "-last_seen_at")[:at_most]
        .raw_rows(*IMPORTANCE_FIELDS, "everyone", "newest")
    )
    if not rows:
        return ByImportance([], 0, None)
    return ByImportance([row[:-2] for row in rows], rows[0][-2], rows[0][-1])


def users_with_memories() -> list[str]:
    """Every user who has a memory, sorted (the shared pool is no user)."""
    return sorted(
        Memory.objects.filter(user_id__isnull=False)
        .order_by()
        .values_list("user_id", flat=True)
        .distinct()
    )


def memories_for_export(*, user_id: str | object = ALL_USERS, chunk: int = 500):
    """Every memory of `user_id` (or of everyone), oldest first, streamed in chunks with
    their tags: memory stays flat however many there are."""
    queryset = Memory.objects.all()
    if user_id is not ALL_USERS:
        queryset = queryset.for_user(user_id)
    queryset = queryset.defer("embedding").prefetch_related("tags").order_by("created_at", "id")
    return queryset.iterator(chunk_size=chunk)


def memories_awaiting_embedding() -> int:
    """How many memories are not yet embedded by the configured model (0 once a change of
    OM_EMBEDDINGS has been fully re-embedded)."""
    return Memory.objects.not_embedded_by(get_provider().model_id).count()


def memories_awaiting_vector_index() -> int:
    """How many memories the vector index has yet to take in (Memory.vector_pending): the
    background indexer's backlog, always 0 on SQLite (no approximate index there)."""
    return PendingVector.objects.count()


def memories_count() -> int:
    """Every stored memory, of all users and the shared pool."""
    return Memory.objects.count()


def users_with_memories_count() -> int:
    """How many distinct users have at least one memory."""
    return (
        Memory.objects.filter(user_id__isnull=False).order_by().values("user_id").distinct().count()
    )
