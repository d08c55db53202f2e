"""Writes to memories: add (single and batch), update, delete, reinforce."""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Least

from memories import validation
from memories.embeddings import embed_one, get_provider
from memories.models import Memory, Tag
from memories.sectors import SECTORS, classify
from memories.selectors import memory_get
from openmemory import clock
from openmemory.exceptions import ServiceError
from openmemory.scope import ALL_USERS
from users import services as user_services


@dataclass(frozen=True)
class MemoryInput:
    content: str
    user_id: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CreateResult:
    memory: Memory
    deduplicated: bool


def content_hash(content: str) -> str:
    """Duplicate key: the same words, whatever the case and spacing."""
    return hashlib.sha256(" ".join(content.split()).casefold().encode()).hexdigest()


def memory_create(
    *,
    content: str,
    user_id: str | None = None,
    tags: list[str] | None = None,
    metadata: dict | None = None,
) -> CreateResult:
    item = MemoryInput(content=content, user_id=user_id, tags=tags or [], metadata=metadata or {})
    return memory_create_batch(items=[item])[0]


def memory_create_batch(*, items: list[MemoryInput]) -> list[CreateResult]:
    """Stores the items all-or-nothing; results are in input order. An item whose content its
    user (or the shared pool) already holds returns that memory with deduplicated=True."""
    items = [_clean_input(item) for item in items]
    hashes = [content_hash(item.content) for item in items]
    # Embedding may be a network call: done before the transaction opens.
    vectors = get_provider().embed([item.content for item in items])
    try:
        return _store_batch(items, hashes, vectors)
    except IntegrityError:
        # A concurrent add stored one of these contents between our duplicate check and our
        # insert; the unique constraint refused ours, so run again and find theirs.
        return _store_batch(items, hashes, vectors)


def _clean_input(item: MemoryInput) -> MemoryInput:
    # The API's serializers check the same rules first (with field-specific messages); this
    # is the guard for every other caller: the admin, imports, scripts.
    if item.user_id is not None:
        validation.clean_user_id(item.user_id)
    return replace(
        item,
        content=_clean_content(item.content),
        tags=validation.clean_tags(item.tags),
        metadata=validation.clean_metadata(item.metadata),
    )


def _clean_content(content: str) -> str:
    content = validation.clean_text(content, "content").strip()
    if not content:
        raise ServiceError("content required")
    if len(content) > settings.OM_MAX_CONTENT_CHARS:
        raise ServiceError(f"content must be at most {settings.OM_MAX_CONTENT_CHARS} characters")
    return content


@transaction.atomic
def _store_batch(items: list[MemoryInput], hashes: list[str], vectors) -> list[CreateResult]:
    now = clock.now()
    model_id = get_provider().model_id
    existing = {
        (m.user_id, m.content_hash): m
        for m in Memory.objects.filter(_same_scope_and_content(items, hashes)).defer("embedding")
    }
    results: list[CreateResult | None] = [None] * len(items)
    pending: dict[tuple[str | None, str], Memory] = {}
    new_rows: list[tuple[Memory, list[str]]] = []
    seen_again: list[Memory] = []
    for index, (item, digest, vector) in enumerate(zip(items, hashes, vectors, strict=True)):
        key = (item.user_id, digest)
        if key in existing:
            memory = existing[key]
            if memory not in seen_again:
                seen_again.append(memory)
            results[index] = CreateResult(memory, deduplicated=True)
            continue
        if key in pending:
            results[index] = CreateResult(pending[key], deduplicated=True)
            continue
        sector = classify(item.content, item.metadata)
        memory = Memory(
            user_id=item.user_id,
            content=item.content,
            content_hash=digest,
            metadata=item.metadata,
            primary_sector=sector.primary,
            sectors=sector.sectors,
            salience=_default_salience(),
            decay_lambda=SECTORS[sector.primary].decay_lambda,
            created_at=now,
            updated_at=now,
            last_seen_at=now,
            decayed_at=now,
            embedding=vector,
            embedding_model=model_id,
            embedding_dim=len(vector),
        )
        pending[key] = memory
        new_rows.append((memory, item.tags))
        results[index] = CreateResult(memory, deduplicated=False)

    if new_rows:
        Memory.objects.bulk_create([memory for memory, _ in new_rows])
        _attach_tags(new_rows)
    if seen_again:
        Memory.objects.filter(pk__in=[m.pk for m in seen_again]).update(last_seen_at=now)
        for memory in seen_again:
            memory.last_seen_at = now
    added = Counter(memory.user_id for memory, _ in new_rows if memory.user_id is not None)
    if added:
        user_services.user_summary_note_added(counts=dict(added))
    return results  # type: ignore[return-value]


def _same_scope_and_content(items: list[MemoryInput], hashes: list[str]) -> Q:
    """Matches stored memories that duplicate an item: one (user, hashes) term per user, so
    each term is served by the per-user unique index rather than a scan."""
    by_user: dict[str | None, set[str]] = defaultdict(set)
    for item, digest in zip(items, hashes, strict=True):
        by_user[item.user_id].add(digest)
    condition = Q()
    for user_id, digests in by_user.items():
        scope = Q(user_id__isnull=True) if user_id is None else Q(user_id=user_id)
        condition |= scope & Q(content_hash__in=digests)
    return condition


def _default_salience() -> float:
    return min(1.0, max(0.0, settings.OM_DEFAULT_SALIENCE))


def _tags_by_name(names: set[str]) -> dict[str, Tag]:
    if not names:
        return {}
    # ignore_conflicts: a concurrent request may create the same tag at the same moment.
    Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
    return {tag.name: tag for tag in Tag.objects.filter(name__in=names)}


def _attach_tags(rows: list[tuple[Memory, list[str]]]) -> None:
    tags = _tags_by_name({name for _, names in rows for name in names})
    through = Memory.tags.through
    links = [
        through(memory_id=memory.pk, tag_id=tags[name].pk)
        for memory, names in rows
        for name in names
    ]
    through.objects.bulk_create(links)
    for memory, names in rows:
        # Lets the response show the tags without another query.
        memory._prefetched_objects_cache = {"tags": [tags[name] for name in sorted(names)]}


@transaction.atomic
def memory_update(
    *,
    memory_id: str,
    content: str | None = None,
    tags: list[str] | None = None,
    metadata: dict | None = None,
    within: str | object = ALL_USERS,
) -> Memory:
    memory = memory_get(memory_id=memory_id, within=within, for_update=True)
    now = clock.now()
    if tags is not None:
        tags = validation.clean_tags(tags)
    if metadata is not None:
        metadata = validation.clean_metadata(metadata)
    if content is not None:
        content = _clean_content(content)
        digest = content_hash(content)
        if digest != memory.content_hash:
            clash = Memory.objects.for_user(memory.user_id).filter(content_hash=digest)
            if clash.exclude(pk=memory.pk).exists():
                raise ServiceError("an identical memory already exists for this user", 409)
            memory.content = content
            memory.content_hash = digest
            memory.embedding = embed_one(content)
            memory.embedding_model = get_provider().model_id
            memory.embedding_dim = len(memory.embedding)
            sector = classify(content, metadata if metadata is not None else memory.metadata)
            memory.primary_sector = sector.primary
            memory.sectors = sector.sectors
            memory.decay_lambda = SECTORS[sector.primary].decay_lambda
        elif content != memory.content:
            memory.content = content
    if metadata is not None:
        memory.metadata = metadata
        if content is None:
            sector = classify(memory.content, metadata)
            memory.primary_sector, memory.sectors = sector.primary, sector.sectors
            memory.decay_lambda = SECTORS[sector.primary].decay_lambda
    memory.version = F("version") + 1
    memory.updated_at = now
    memory.save()
    if tags is not None:
        found = _tags_by_name(set(tags))
        memory.tags.set([found[name] for name in tags])
    if memory.user_id is not None:
        user_services.user_summary_invalidate(user_id=memory.user_id)
    return memory_get(memory_id=memory_id)


@transaction.atomic
def memory_delete(*, memory_id: str, within: str | object = ALL_USERS) -> None:
    memory = memory_get(memory_id=memory_id, within=within, for_update=True)
    memory.delete()
    if memory.user_id is not None:
        user_services.user_summary_invalidate(user_id=memory.user_id)


def memory_reinforce(*, memory_id: str, boost: float, within: str | object = ALL_USERS) -> Memory:
    memory_get(memory_id=memory_id, within=within)
    now = clock.now()
    # Decay up to now first, so the boost lands on the current value, not a stale one.
    memories_decay(now=now, memory_ids=[memory_id])
    Memory.objects.filter(pk=memory_id).update(
        salience=Least(F("salience") + boost, 1.0), last_seen_at=now, decayed_at=now
    )
    return memory_get(memory_id=memory_id)


def memories_note_retrieved(*, memory_ids: list[str], boost: float | None = None) -> int:
    """The optional small boost a memory earns each time a query returns it
    (OM_RETRIEVAL_BOOST; 0 turns it off). Unlike reinforcement it leaves last_seen_at alone:
    being found is not being told again, and recency would otherwise feed on itself.
    Returns how many memories were boosted."""
    boost = settings.OM_RETRIEVAL_BOOST if boost is None else boost
    if boost <= 0 or not memory_ids:
        return 0
    now = clock.now()
    memories_decay(now=now, memory_ids=memory_ids)
    return Memory.objects.filter(pk__in=memory_ids).update(
        salience=Least(F("salience") + boost, 1.0), decayed_at=now
    )


def memories_delete_for_user(*, user_id: str) -> int:
    """Removes every memory of one user, with its vector and tag links; returns how many."""
    _, per_model = Memory.objects.for_user(user_id).delete()
    return per_model.get(Memory._meta.label, 0)


def memories_decay(
    *, now: datetime | None = None, memory_ids: list[str] | None = None, chunk: int = 2000
) -> int:
    """Per-sector exponential decay: salience *= exp(-decay_lambda * days since it last
    decayed), never below OM_SALIENCE_FLOOR. Idempotent in time: running it twice in a row
    changes nothing the second time. Returns how many memories changed."""
    now = now or clock.now()
    floor = settings.OM_SALIENCE_FLOOR
    queryset = Memory.objects.filter(salience__gt=floor, decayed_at__lt=now).order_by("pk")
    if memory_ids is not None:
        queryset = queryset.filter(pk__in=memory_ids)
    changed = 0
    last_pk = None
    while True:
        page = queryset if last_pk is None else queryset.filter(pk__gt=last_pk)
        rows = list(page.only("pk", "salience", "decay_lambda", "decayed_at")[:chunk])
        if not rows:
            return changed
        last_pk = rows[-1].pk
        for memory in rows:
            days = (now - memory.decayed_at).total_seconds() / 86400
            memory.salience = max(floor, memory.salience * math.exp(-memory.decay_lambda * days))
            memory.decayed_at = now
        with transaction.atomic():
            Memory.objects.bulk_update(rows, ["salience", "decayed_at"])
        changed += len(rows)


@dataclass(frozen=True)
class ImportResult:
    created: int
    skipped: int  # already present (same id), or the same content under the same user


def memories_import(*, records: list[dict]) -> ImportResult:
    """Stores exported memories under their own ids, re-embedding their content with the
    configured provider. Idempotent: ids already present are skipped, so an interrupted
    import can simply be run again."""
    ids = [record["id"] for record in records]
    present = {str(pk) for pk in Memory.objects.filter(pk__in=ids).values_list("pk", flat=True)}
    fresh = [record for record in records if str(record["id"]) not in present]
    if not fresh:
        return ImportResult(created=0, skipped=len(records))
    vectors = get_provider().embed([record["content"] for record in fresh])
    model_id = get_provider().model_id
    rows: list[tuple[Memory, list[str]]] = []
    for record, vector in zip(fresh, vectors, strict=True):
        sector = classify(record["content"], record["metadata"])
        primary = record.get("primary_sector") or sector.primary
        created = record.get("created_at") or clock.now()
        memory = Memory(
            id=record["id"],
            user_id=record["user_id"],
            content=record["content"],
            content_hash=content_hash(record["content"]),
            metadata=record["metadata"],
            primary_sector=primary,
            sectors=record.get("sectors") or sector.sectors,
            salience=record.get("salience", _default_salience()),
            decay_lambda=SECTORS[primary].decay_lambda,
            version=record.get("version", 1),
            created_at=created,
            updated_at=record.get("updated_at") or created,
            last_seen_at=record.get("last_seen_at") or created,
            decayed_at=clock.now(),
            embedding=vector,
            embedding_model=model_id,
            embedding_dim=len(vector),
        )
        rows.append((memory, record["tags"]))
    with transaction.atomic():
        # ignore_conflicts: a memory whose content its user already holds under another id
        # is a duplicate, not an error; only the rows actually inserted get their tags.
        Memory.objects.bulk_create([memory for memory, _ in rows], ignore_conflicts=True)
        stored = {
            str(pk)
            for pk in Memory.objects.filter(pk__in=[m.pk for m, _ in rows]).values_list(
                "pk", flat=True
            )
        }
        inserted = [(m, tags) for m, tags in rows if str(m.pk) in stored]
        _attach_tags(inserted)
        counts = Counter(m.user_id for m, _ in inserted if m.user_id is not None)
        if counts:
            user_services.user_summary_note_added(counts=dict(counts))
    return ImportResult(created=len(inserted), skipped=len(records) - len(inserted))


def memories_reembed(*, batch: int = 256, on_progress=None) -> int:
    """Re-embeds every memory not yet embedded by the configured provider, in batches, each
    committed on its own: an interrupted run keeps its work, and the next run continues with
    the rows still on the old model. Search only ever compares vectors of the configured
    model, so a half-migrated database answers from the migrated part. Returns the count."""
    provider = get_provider()
    stale = Memory.objects.exclude(embedding_model=provider.model_id).order_by("pk")
    total, done, last_pk = stale.count(), 0, None
    while True:
        page = stale if last_pk is None else stale.filter(pk__gt=last_pk)
        rows = list(page.only("pk", "content")[:batch])
        if not rows:
            return done
        vectors = provider.embed([memory.content for memory in rows])
        for memory, vector in zip(rows, vectors, strict=True):
            memory.embedding = vector
            memory.embedding_model = provider.model_id
            memory.embedding_dim = len(vector)
        with transaction.atomic():
            Memory.objects.bulk_update(rows, ["embedding", "embedding_model", "embedding_dim"])
        done, last_pk = done + len(rows), rows[-1].pk
        if on_progress is not None:
            on_progress(done, total)
