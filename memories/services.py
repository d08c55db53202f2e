"""Writes to memories: add (single and batch), update, delete, reinforce."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, FloatField, Q, Value, When
from django.db.models.functions import Exp, Greatest, Least

from core import clock, scheduler, validation
from core.exceptions import ServiceError
from core.scope import ALL_USERS
from core.write_queue import queued_write
from memories import revisions
from memories.embeddings import embed_one, get_provider
from memories.lexical import index_terms, reindex_terms
from memories.models import (
    EpochDays,
    Memory,
    PendingVector,
    Tag,
    as_uuid,
    insert_instances,
    insert_rows,
)
from memories.sectors import SECTORS, classify
from memories.selectors import memory_get
from memories.signals import (
    memories_created,
    memory_changed,
    memory_deleted,
    user_memories_deleted,
)
from memories.text import terms
from memories.vector_search import get_backend

logger = logging.getLogger("openmemory")


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
    # Everything that does not write is done before the write transaction opens: embedding
    # (may be a network call), and the duplicate check, the sectors and the words. On SQLite
    # that transaction holds the database's one write lock, and the time each add holds it
    # bounds how many adds per second all writers together get.
    vectors = get_provider().embed([item.content for item in items])
    analysed = [(classify(item.content, item.metadata), terms(item.content)) for item in items]
    existing = _stored_duplicates(items, hashes)
    try:
        with queued_write():
            return _store_batch(items, hashes, vectors, analysed, existing)
    except IntegrityError:
        # A concurrent add stored one of these contents after our duplicate check; the unique
        # constraint refused ours (on PostgreSQL once theirs committed). Run again, this time
        # locking the users' revision rows before checking (see _store_batch), which makes
        # the check final: a third add of the same content can no longer slip in between.
        with queued_write():
            return _store_batch(items, hashes, vectors, analysed, None)


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


def _stored_duplicates(
    items: list[MemoryInput], hashes: list[str]
) -> dict[tuple[str | None, str], Memory]:
    """The stored memories that these items duplicate, by (user, content hash).

    A hand-written probe first, one (user, hashes) term per user so that each is served by
    the per-user unique index: nearly every add finds nothing, and the ORM's compilation of
    the same query (with its deferred vector and default ordering) cost more than running
    it. Only duplicates found are then read as instances."""
    by_user: dict[str | None, set[str]] = defaultdict(set)
    for item, digest in zip(items, hashes, strict=True):
        by_user[item.user_id].add(digest)
    terms_sql, params = [], []
    for user_id, digests in by_user.items():
        owner = "user_id IS NULL" if user_id is None else "user_id = %s"
        placeholders = ", ".join(["%s"] * len(digests))
        terms_sql.append(f"({owner} AND content_hash IN ({placeholders}))")
        params += ([] if user_id is None else [user_id]) + sorted(digests)
    table = connection.ops.quote_name(Memory._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} WHERE {' OR '.join(terms_sql)}", params)
        found = [row[0] for row in cursor.fetchall()]
    if not found:
        return {}
    duplicates = Memory.objects.filter(pk__in=[as_uuid(pk) for pk in found]).defer("embedding")
    return {(m.user_id, m.content_hash): m for m in duplicates}


@transaction.atomic
def _store_batch(
    items: list[MemoryInput],
    hashes: list[str],
    vectors,
    analysed: list[tuple],
    existing: dict[tuple[str | None, str], Memory] | None,
) -> list[CreateResult]:
    """`existing`: the duplicates found before the transaction opened, or None to look now,
    after locking the users' revision rows. A duplicate stored since the look outside makes
    the insert fail on the unique constraint; the look inside cannot miss one, because every
    add locks its users' revision rows before inserting and holds them until it commits."""
    now = clock.now()
    model_id = get_provider().model_id
    backend = get_backend()
    if existing is None:
        revisions.touch(item.user_id for item in items)
        existing = _stored_duplicates(items, hashes)
    results: list[CreateResult | None] = [None] * len(items)
    pending: dict[tuple[str | None, str], Memory] = {}
    new_rows: list[tuple[Memory, list[str]]] = []
    indexed: list[tuple[Memory, Counter[str]]] = []
    seen_again: list[Memory] = []
    for index, (item, digest, vector, (sector, counts)) in enumerate(
        zip(items, hashes, vectors, analysed, strict=True)
    ):
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
        memory = Memory(
            user_id=item.user_id,
            content=item.content,
            content_hash=digest,
            term_count=sum(counts.values()),
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
            vector_pending=backend.pending(len(vector)),
        )
        pending[key] = memory
        new_rows.append((memory, item.tags))
        indexed.append((memory, counts))
        results[index] = CreateResult(memory, deduplicated=False)

    # The users' revision rows first, before any other write: every add locks rows in the
    # same order (revision, then memories, then summary), so concurrent adds on PostgreSQL
    # wait for each other instead of deadlocking.
    _place([memory for memory, _ in new_rows], also=[memory.user_id for memory in seen_again])
    if new_rows:
        insert_instances([memory for memory, _ in new_rows])
        _attach_tags(new_rows)
        index_terms(indexed)
        _queue_for_index([memory for memory, _ in new_rows])
    if seen_again:
        Memory.objects.filter(pk__in=[m.pk for m in seen_again]).update(last_seen_at=now)
        for memory in seen_again:
            memory.last_seen_at = now
    added = Counter(memory.user_id for memory, _ in new_rows if memory.user_id is not None)
    if added:
        memories_created.send(sender=Memory, counts=dict(added))
    return results  # type: ignore[return-value]


def _place(memories: list[Memory], also: list[str | None] = ()) -> None:
    """Gives each new memory the next place in its user's sequence (see Memory.position),
    in list order, and changes the revision token (memories/revisions.py) of the users in
    `also`, whose stored memories the write changes too. New memories alone change no token:
    caches read them as rows placed after the last they hold."""
    counts = Counter(memory.user_id for memory in memories)
    for user_id in also:
        counts[user_id] += 0
    next_position = revisions.claim_positions(dict(counts), changed=also)
    for memory in memories:
        memory.position = next_position[memory.user_id]
        next_position[memory.user_id] += 1


def _queue_for_index(memories: list[Memory]) -> None:
    """Queues the memories stored vector_pending for the index, in the caller's transaction,
    and asks for an indexer run once it commits."""
    key = Memory._meta.pk
    waiting = [(key.get_db_prep_value(m.pk, connection),) for m in memories if m.vector_pending]
    if waiting:
        # An edited memory may still be queued from its add.
        insert_rows(PendingVector, ("memory_id",), waiting, skip_existing=True)
        transaction.on_commit(_index_vectors_soon)


INDEX_VECTORS_TASK = "memories.tasks.index_vectors"
# At most one indexer run requested per process per this many seconds: a run takes in every
# memory pending when it runs, so one per burst of adds does the work of all of them.
INDEX_VECTORS_EVERY = 1.0
_index_run_at = {"latest": float("-inf")}  # monotonic time of the latest run requested
_index_lock = threading.Lock()


def _index_vectors_soon() -> None:
    """After an add committed memories pending the vector index: asks the background for an
    indexer run that starts after this moment. Without a background (tests, management
    commands) the indexer runs here at once, as the add itself used to.

    A run already requested for later than now will see this add's memories (they have
    committed), so none is asked for; otherwise one is, no sooner than a second after the
    last. A run lost with a broker is made up by the periodic one, and searches find
    pending memories exactly meanwhile."""
    if scheduler.embedded() and not scheduler.running():
        memories_index_vectors()
        return
    with _index_lock:
        now = time.monotonic()
        if _index_run_at["latest"] > now:
            return
        start = max(now, _index_run_at["latest"] + INDEX_VECTORS_EVERY)
        _index_run_at["latest"] = start
    scheduler.send(INDEX_VECTORS_TASK, countdown=start - now)


def memories_index_vectors(*, batch: int = 32) -> int:
    """Takes every memory pending the vector index into it (Memory.vector_pending), a batch
    per transaction, and returns how many. Small batches: each holds its rows' locks while
    the index takes them in (about 5 ms a memory on PostgreSQL), and an edit or a repeated
    add of one of them waits that long. Idempotent, and safe in several processes at once."""
    backend = get_backend()
    done = 0
    while True:
        with transaction.atomic():
            taken = backend.index_pending(batch)
        done += taken
        if taken < batch:
            return done


# Memories taken off the queue per transaction while the index is down: with no graph to
# insert into, each costs a flag and a queue row.
_UNINDEXED_BATCH = 5_000


def memories_drop_vector_index() -> None:
    """Drops the approximate vector index, before an import too large to take in one memory
    at a time: the indexer then only clears flags, and large scopes are ranked exactly until
    memories_build_vector_index. No-op where there is no such index (SQLite)."""
    get_backend().drop_index()


def memories_build_vector_index(*, memory_mb: int | None = None) -> int:
    """Builds the approximate vector index anew in one pass, every memory pending it taken
    in, and returns how many were pending. For after a large import: the indexer inserts
    into the graph one memory at a time (117 a second at a million memories on two cores),
    where a build reads them all at once. Adds and queries go on meanwhile (large scopes
    ranked exactly until the build ends). Outside a transaction; run again if interrupted."""
    backend = get_backend()
    backend.drop_index()
    pending = memories_index_vectors(batch=_UNINDEXED_BATCH)
    backend.create_index(memory_mb=memory_mb)
    return pending


def _default_salience() -> float:
    return min(1.0, max(0.0, settings.OM_DEFAULT_SALIENCE))


def _tags_by_name(names: set[str]) -> dict[str, Tag]:
    """The tags of these names, created where missing. Plain SQL (three statements with the
    links of _attach_tags) rather than bulk_create() and a queryset: inside an add's write
    transaction, where compiling those was a third of the time the write lock was held."""
    if not names:
        return {}
    ordered = sorted(names)
    table = connection.ops.quote_name(Tag._meta.db_table)
    with connection.cursor() as cursor:
        # DO NOTHING: a concurrent request may create the same tag at the same moment.
        cursor.execute(
            f"INSERT INTO {table} (name) VALUES {', '.join(['(%s)'] * len(ordered))} "
            "ON CONFLICT (name) DO NOTHING",
            ordered,
        )
        cursor.execute(
            f"SELECT id, name FROM {table} WHERE name IN ({', '.join(['%s'] * len(ordered))})",
            ordered,
        )
        found = cursor.fetchall()
    return {name: Tag.from_db(connection.alias, ["id", "name"], (pk, name)) for pk, name in found}


def _attach_tags(rows: list[tuple[Memory, list[str]]]) -> None:
    tags = _tags_by_name({name for _, names in rows for name in names})
    memory_id = Memory._meta.pk
    links = [
        (memory_id.get_db_prep_value(memory.pk, connection), tags[name].pk)
        for memory, names in rows
        for name in names
    ]
    insert_rows(Memory.tags.through, ("memory_id", "tag_id"), links)
    for memory, names in rows:
        # Lets the response show the tags without another query.
        memory._prefetched_objects_cache = {"tags": [tags[name] for name in sorted(names)]}


def memory_update(
    *,
    memory_id: str,
    content: str | None = None,
    tags: list[str] | None = None,
    metadata: dict | None = None,
    within: str | object = ALL_USERS,
) -> Memory:
    """Edits a memory; new content is re-embedded and re-classified.

    The embedding is made before the transaction opens: the provider may be a remote call,
    and inside the transaction it would hold the row lock (on SQLite the database's write
    lock, stalling every other write) for as long as the provider takes to answer."""
    stored = memory_get(memory_id=memory_id, within=within)
    if tags is not None:
        tags = validation.clean_tags(tags)
    if metadata is not None:
        metadata = validation.clean_metadata(metadata)
    if content is not None:
        content = _clean_content(content)
    embedded = None
    if content is not None and content_hash(content) != stored.content_hash:
        embedded = _Embedded.of(content)
    changes = _Changes(content=content, tags=tags, metadata=metadata)
    locked = {"memory_id": memory_id, "user_id": stored.user_id, "within": within}
    try:
        _update_locked(**locked, changes=changes, embedded=embedded)
    except _ContentMovedUnderUs:
        # Another edit committed between our read and our lock and changed the stored content
        # away from ours, which we had not embedded: embed it now (still outside any
        # transaction) and apply again. The vector depends on our content alone, so this
        # second attempt cannot need another.
        embedded = _Embedded.of(content)  # type: ignore[arg-type]
        _update_locked(**locked, changes=changes, embedded=embedded)
    return memory_get(memory_id=memory_id)


@dataclass(frozen=True)
class _Embedded:
    """A content's vector and the model that made it."""

    vector: np.ndarray
    model_id: str

    @classmethod
    def of(cls, content: str) -> _Embedded:
        return cls(vector=embed_one(content), model_id=get_provider().model_id)


@dataclass(frozen=True)
class _Changes:
    content: str | None
    tags: list[str] | None
    metadata: dict | None


class _ContentMovedUnderUs(Exception):
    pass


@transaction.atomic
def _update_locked(
    *,
    memory_id: str,
    user_id: str | None,
    within: str | object,
    changes: _Changes,
    embedded: _Embedded | None,
) -> None:
    # The user's revision row before the memory's: the lock order of adds (see _store_batch).
    revisions.touch([user_id])
    memory = memory_get(memory_id=memory_id, within=within, for_update=True)
    content, tags, metadata = changes.content, changes.tags, changes.metadata
    if content is not None:
        digest = content_hash(content)
        if digest != memory.content_hash:
            if embedded is None:
                raise _ContentMovedUnderUs
            clash = Memory.objects.for_user(memory.user_id).filter(content_hash=digest)
            if clash.exclude(pk=memory.pk).exists():
                raise ServiceError("an identical memory already exists for this user", 409)
            memory.content = content
            memory.content_hash = digest
            counts = terms(content)
            memory.term_count = sum(counts.values())
            reindex_terms(memory, counts)
            memory.embedding = embedded.vector
            memory.embedding_model = embedded.model_id
            memory.embedding_dim = len(embedded.vector)
            # The new vector waits for the index like a new memory's (see _store_batch).
            memory.vector_pending = get_backend().pending(len(embedded.vector))
            _queue_for_index([memory])
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
    memory.updated_at = clock.now()
    memory.save()
    if tags is not None:
        found = _tags_by_name(set(tags))
        memory.tags.set([found[name] for name in tags])
    if memory.user_id is not None:
        memory_changed.send(sender=Memory, user_id=memory.user_id)


def memory_delete(*, memory_id: str, within: str | object = ALL_USERS) -> None:
    stored = memory_get(memory_id=memory_id, within=within)
    _delete_locked(memory_id=memory_id, user_id=stored.user_id, within=within)


@transaction.atomic
def _delete_locked(*, memory_id: str, user_id: str | None, within: str | object) -> None:
    # The user's revision row before the memory's: the lock order of adds (see _store_batch).
    revisions.touch([user_id])
    memory = memory_get(memory_id=memory_id, within=within, for_update=True)
    memory.delete()
    if memory.user_id is not None:
        memory_deleted.send(sender=Memory, user_id=memory.user_id)


def memory_reinforce(*, memory_id: str, boost: float, within: str | object = ALL_USERS) -> Memory:
    stored = memory_get(memory_id=memory_id, within=within)
    now = clock.now()
    # One UPDATE: decayed up to now, then boosted, computed by the database from the row as
    # it is when written. Read-modify-write in Python would let a concurrent decay pass or
    # boost write over this one (or this one over it).
    Memory.objects.filter(pk=memory_id).update(
        salience=Least(_salience_at(now) + boost, 1.0),
        last_seen_at=now,
        decayed_at=_decay_clock_at(now),
    )
    revisions.touch([stored.user_id])
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
    boosted = Memory.objects.filter(pk__in=memory_ids)
    with transaction.atomic():
        # Revision rows first: the lock order of adds (see _store_batch).
        revisions.touch(boosted.order_by().values_list("user_id", flat=True).distinct())
        # One UPDATE for the same reason as memory_reinforce: no boost or decay is ever lost.
        return boosted.update(
            salience=Least(_salience_at(now) + boost, 1.0), decayed_at=_decay_clock_at(now)
        )


@transaction.atomic
def memories_delete_for_user(*, user_id: str) -> int:
    """Removes every memory of one user, with its vector and tag links; returns how many."""
    with transaction.atomic():
        revisions.touch([user_id])  # first: the lock order of adds (see _store_batch)
        _, per_model = Memory.objects.for_user(user_id).delete()
        deleted = per_model.get(Memory._meta.label, 0)
        user_memories_deleted.send(sender=Memory, user_id=user_id, deleted=deleted)
    return deleted


def _salience_at(now: datetime) -> Case:
    """The row's salience decayed from `decayed_at` up to `now`, as a SQL expression:
    salience * exp(-decay_lambda * days), never below OM_SALIENCE_FLOOR. Rows already at or
    below the floor, or decayed up to a later moment (another process's clock), keep theirs.
    (Django registers EXP on SQLite connections built without the math functions.)"""
    floor = settings.OM_SALIENCE_FLOOR
    days = Value(now.timestamp() / 86400, output_field=FloatField()) - EpochDays("decayed_at")
    decayed = Greatest(
        Value(floor, output_field=FloatField()), F("salience") * Exp(-F("decay_lambda") * days)
    )
    return Case(
        When(salience__gt=floor, decayed_at__lt=now, then=decayed),
        default=F("salience"),
        output_field=FloatField(),
    )


def _decay_clock_at(now: datetime) -> Case:
    """`decayed_at` moved forward to `now`, never back."""
    return Case(When(decayed_at__lt=now, then=Value(now)), default=F("decayed_at"))


def memories_decay(
    *, now: datetime | None = None, memory_ids: list[str] | None = None, chunk: int = 2000
) -> int:
    """Per-sector exponential decay: salience *= exp(-decay_lambda * days since it last
    decayed), never below OM_SALIENCE_FLOOR. Idempotent in time: running it twice in a row
    changes nothing the second time. Returns how many memories changed.

    The database computes each new value from the row as it is when written (one UPDATE per
    chunk of ids, which re-checks the conditions), so a reinforcement or retrieval boost that
    lands while the pass runs is decayed from its own moment on, never overwritten. Chunks
    keep each write short (on SQLite it holds the database's write lock)."""
    now = now or clock.now()
    due = Q(salience__gt=settings.OM_SALIENCE_FLOOR, decayed_at__lt=now)
    if memory_ids is not None:
        due &= Q(pk__in=memory_ids)
    ids = Memory.objects.filter(due).order_by("pk").values_list("pk", flat=True)
    changed = 0
    last_pk = None
    while True:
        page = list((ids if last_pk is None else ids.filter(pk__gt=last_pk))[:chunk])
        if not page:
            return changed
        last_pk = page[-1]
        with transaction.atomic():
            # Rows a request holds (an add refreshing a duplicate's last_seen_at, a boost)
            # are skipped, not waited for: one UPDATE of 2,000 rows locks them in no
            # particular order, and waiting crossed with a request that already held one of
            # them and waited for another (a deadlock, seen in the 1M load). A skipped row
            # keeps its decayed_at, so the next pass decays it by the whole time since.
            free = (
                Memory.objects.filter(due, pk__in=page)
                .order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)
            )
            updated = Memory.objects.filter(due, pk__in=list(free)).update(
                salience=_salience_at(now), decayed_at=now
            )
            if updated:
                revisions.touch_all()
        changed += updated


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
    counted: dict[str, Counter[str]] = {}
    for record, vector in zip(fresh, vectors, strict=True):
        sector = classify(record["content"], record["metadata"])
        primary = record.get("primary_sector") or sector.primary
        created = record.get("created_at") or clock.now()
        counted[str(record["id"])] = terms(record["content"])
        memory = Memory(
            id=record["id"],
            user_id=record["user_id"],
            content=record["content"],
            content_hash=content_hash(record["content"]),
            term_count=sum(counted[str(record["id"])].values()),
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
            vector_pending=get_backend().pending(len(vector)),
        )
        rows.append((memory, record["tags"]))
    with transaction.atomic():
        # Imported memories keep their order (oldest first) after the user's existing ones.
        _place([m for m, _ in sorted(rows, key=lambda row: (row[0].created_at, str(row[0].pk)))])
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
        index_terms([(m, counted[str(m.pk)]) for m, _ in inserted])
        _queue_for_index([m for m, _ in inserted])
        counts = Counter(m.user_id for m, _ in inserted if m.user_id is not None)
        if counts:
            memories_created.send(sender=Memory, counts=dict(counts))
    return ImportResult(created=len(inserted), skipped=len(records) - len(inserted))


def memories_reembed(*, batch: int = 256, on_progress=None) -> int:
    """Re-embeds every memory not yet embedded by the configured provider, in batches, each
    committed on its own: an interrupted run keeps its work, and the next run continues with
    the rows still on the old model. Search compares only vectors of the configured model
    (memories still on the old one are found by their words meanwhile). Returns the count.

    Several runs may overlap (every server process starts one after a model change, a task
    may be redelivered): each starts at a random point of the id space and re-reads what is
    still stale before every batch, so overlapping runs mostly split the work; a row done
    twice just gets the same vector again."""
    provider = get_provider()
    stale = Memory.objects.not_embedded_by(provider.model_id).order_by("pk")
    total, done = stale.count(), 0
    pivot = uuid.uuid4()
    for part in (stale.filter(pk__gte=pivot), stale.filter(pk__lt=pivot)):
        last_pk = None
        while True:
            page = part if last_pk is None else part.filter(pk__gt=last_pk)
            rows = list(page.only("pk", "content")[:batch])
            if not rows:
                break
            vectors = provider.embed([memory.content for memory in rows])
            for memory, vector in zip(rows, vectors, strict=True):
                memory.embedding = vector
                memory.embedding_model = provider.model_id
                memory.embedding_dim = len(vector)
            with transaction.atomic():
                Memory.objects.bulk_update(rows, ["embedding", "embedding_model", "embedding_dim"])
                revisions.touch_all()
            done, last_pk = done + len(rows), rows[-1].pk
            logger.info("re-embedding: %d/%d memories with %s", done, total, provider.model_id)
            if on_progress is not None:
                on_progress(done, total)
    return done
