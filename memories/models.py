"""Memory and Tag models, with the queryset filters every read composes."""

from __future__ import annotations

import uuid

from django.core.exceptions import EmptyResultSet
from django.db import connections, models
from django.db.models import BooleanField, FloatField, Func, Q
from django.db.models.expressions import RawSQL

from memories.fields import EmbeddingField
from memories.sectors import SECTOR_NAMES

SECTOR_CHOICES = [(name, name) for name in SECTOR_NAMES]


class Tag(models.Model):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# SQLite allows 32,766 parameters per statement; PostgreSQL 65,535.
_PARAMETERS_PER_STATEMENT = 30_000
# From this many rows on, PostgreSQL takes them through COPY: one round trip more than an
# INSERT, but psycopg binds an INSERT's parameters into its text one by one in Python, which
# for a batch of 500 memories (some 40,000 parameters with their words) took longer than
# the database's whole work.
COPY_FROM_ROWS = 100


def insert_rows(
    model: type[models.Model],
    columns: tuple[str, ...],
    rows: list[tuple],
    *,
    skip_existing: bool = False,
) -> None:
    """Plain multi-row INSERTs of `rows` (values already in the database's form) into
    `model`'s table, as few statements as the parameter limit allows, or on PostgreSQL a
    COPY from COPY_FROM_ROWS rows on. For the add's write transaction, where building model
    instances and compiling bulk_create() was most of the time the write lock was held (on
    SQLite, the lock every other writer waits for). `skip_existing`: rows whose key is
    already stored are left out (ON CONFLICT DO NOTHING, which COPY has no form of)."""
    if not rows:
        return
    connection = connections[model.objects.db]
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not skip_existing and len(rows) >= COPY_FROM_ROWS:
            # Errors as Django's (an IntegrityError stays one): COPY bypasses execute().
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
            ):
                for values in rows:
                    copy.write_row(values)
            return
        row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        per_statement = _PARAMETERS_PER_STATEMENT // len(columns)
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            cursor.execute(
                f"INSERT INTO {table} ({names}) VALUES {', '.join([row] * len(chunk))}"
                + (" ON CONFLICT DO NOTHING" if skip_existing else ""),
                [value for values in chunk for value in values],
            )


def insert_instances(objs: list[models.Model]) -> None:
    """bulk_create(objs) of new instances of one model, through insert_rows: every concrete
    field as its pre_save() value prepared for the database. Leaves the instances saved
    (a later save() updates them), as bulk_create does."""
    if not objs:
        return
    model = type(objs[0])
    connection = connections[model.objects.db]
    fields = model._meta.concrete_fields
    rows = [
        tuple(field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields)
        for obj in objs
    ]
    insert_rows(model, tuple(field.column for field in fields), rows)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias


class EpochDays(Func):
    """A timestamp column as days since 1970-01-01 (a float), on both databases."""

    output_field = FloatField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores UTC timestamps as ISO text, which julianday() reads (to the ms).
        return self.as_sql(
            compiler, connection, template="(julianday(%(expressions)s) - 2440587.5)"
        )

    def as_postgresql(self, compiler, connection, **extra_context):
        template = "(EXTRACT(EPOCH FROM %(expressions)s)::double precision / 86400.0)"
        return self.as_sql(compiler, connection, template=template)


class RawRowsQuerySet(models.QuerySet):
    def raw_rows(self, *fields: str) -> list[tuple]:
        """values_list(*fields) as the database returns them, without Django's per-value
        converters: for the search paths that read hundreds of rows per request. A UUID
        comes back as the database holds it (32 hex digits on SQLite, a uuid.UUID on
        PostgreSQL; as_uuid() reads either), an embedding as bytes on SQLite."""
        try:
            sql, params = self.values_list(*fields).query.sql_with_params()
        except EmptyResultSet:  # e.g. pk__in=[]: nothing can match
            return []
        with connections[self.db].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def with_ids(self, ids: list[uuid.UUID], field: str = "pk", *, exclude: bool = False):
        """filter(<field>__in=ids) (exclude with `exclude`), as one array parameter on
        PostgreSQL: binding a search's few hundred ids one by one cost more than the query."""
        if connections[self.db].vendor != "postgresql":
            lookup = {f"{field}__in": ids}
            return self.exclude(**lookup) if exclude else self.filter(**lookup)
        if not ids:
            return self if exclude else self.none()
        meta = self.model._meta
        column = meta.pk.column if field == "pk" else meta.get_field(field).column
        quote = connections[self.db].ops.quote_name
        condition = RawSQL(
            f"{quote(meta.db_table)}.{quote(column)} = ANY(%s)",
            (list(ids),),
            output_field=BooleanField(),
        )
        return self.exclude(condition) if exclude else self.filter(condition)


class MemoryQuerySet(RawRowsQuerySet):
    def for_user(self, user_id: str | None) -> MemoryQuerySet:
        """Memories of one user; `None` selects the shared pool (memories with no user)."""
        if user_id is None:
            return self.filter(user_id__isnull=True)
        return self.filter(user_id=user_id)

    def in_sector(self, sector: str | None) -> MemoryQuerySet:
        return self if not sector else self.filter(primary_sector=sector)

    def with_any_tag(self, tags: list[str] | None) -> MemoryQuerySet:
        if not tags:
            return self
        # A subquery rather than a join: no duplicate rows, and the vector backends can
        # keep ordering by distance on the memory table alone.
        tagged = Memory.tags.through.objects.filter(tag__name__in=tags).values("memory_id")
        return self.filter(id__in=tagged)

    def embedded_by(self, model_id: str) -> MemoryQuerySet:
        return self.filter(embedding_model=model_id)

    def not_embedded_by(self, model_id: str) -> MemoryQuerySet:
        # Two range scans of the memory_embedding_model index, either side of the model:
        # they read only the rows of other models, so once re-embedding is done /health's
        # count is instant however many memories there are (`<>` would read every row).
        return self.filter(Q(embedding_model__lt=model_id) | Q(embedding_model__gt=model_id))

    def for_listing(self) -> MemoryQuerySet:
        """Everything a response needs, without the embedding, in two queries."""
        return self.defer("embedding").prefetch_related("tags").order_by("-created_at", "-id")


def as_uuid(value: object) -> uuid.UUID:
    """A memory id from raw_rows() (or anywhere else) as a UUID."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


class Memory(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # NULL user_id is the shared pool: memories added without a user, visible to queries
    # that do not filter by user.
    # Indexed by memory_user_created (user_id first) below.
    user_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    content = models.TextField()
    # sha256 of the normalised content; drives per-user duplicate detection.
    content_hash = models.CharField(max_length=64, editable=False)
    tags = models.ManyToManyField(Tag, related_name="memories", blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    primary_sector = models.CharField(max_length=16, choices=SECTOR_CHOICES, db_index=True)
    sectors = models.JSONField(default=list)
    salience = models.FloatField(default=0.5)
    decay_lambda = models.FloatField(default=0.005)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    # `salience` is the value as of this moment; the decay job moves both forward together.
    decayed_at = models.DateTimeField(null=True, blank=True)
    embedding = EmbeddingField(null=True, editable=False)
    # Not indexed: nearly every row holds the same model, and an index here tempts the
    # planner into combining it with the user index (slower than filtering the user's rows).
    embedding_model = models.CharField(max_length=128, editable=False)
    # Kept beside the vector so the planner has statistics for the HNSW index's predicate.
    embedding_dim = models.PositiveSmallIntegerField(default=0, editable=False)
    # The memory's place in its user's sequence (1, 2, 3...): memories stored one after the
    # other (the turns of a conversation) are each other's context when ranking. Two adds for
    # one user at the same instant on PostgreSQL may share a place; both then count.
    position = models.PositiveBigIntegerField(default=0, editable=False)
    # How many terms the lexical index holds for this memory (BM25's document length).
    term_count = models.PositiveIntegerField(default=0, editable=False)
    # Stored but not yet in the approximate vector index (PostgreSQL's HNSW graph, whose
    # insert was most of an add's database time): outside the index's predicate. Such a
    # memory is in PendingVector too; the backend indexes it in the background and ranks it
    # exactly until then (vector_search.py).
    vector_pending = models.BooleanField(default=False, editable=False)

    objects = MemoryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "memories"
        constraints = [
            # Duplicates are detected per user only (never across users); the shared pool
            # (NULL user) is a scope of its own. Partial indexes work on PostgreSQL and SQLite.
            models.UniqueConstraint(
                fields=["user_id", "content_hash"],
                condition=Q(user_id__isnull=False),
                name="memory_unique_content_per_user",
            ),
            models.UniqueConstraint(
                fields=["content_hash"],
                condition=Q(user_id__isnull=True),
                name="memory_unique_content_shared",
            ),
            models.CheckConstraint(
                condition=Q(salience__gte=0) & Q(salience__lte=1), name="memory_salience_0_1"
            ),
        ]
        indexes = [
            models.Index(fields=["user_id", "-created_at"], name="memory_user_created"),
            models.Index(fields=["user_id", "position"], name="memory_user_position"),
            # Covers BM25's per-user statistics (how many memories, how long in all) without
            # reading the memories' rows.
            models.Index(fields=["user_id", "term_count"], name="memory_user_length"),
            # Finds the memories still awaiting the configured model (not_embedded_by).
            models.Index(fields=["embedding_model"], name="memory_embedding_model"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id or '(shared)'}: {self.content[:60]}"


class PendingVector(models.Model):
    """The memories awaiting the vector index (Memory.vector_pending, set in the same
    transaction): the indexer's queue, and what searches rank exactly beside the index. A
    table of its own rather than a partial index on the flag: the planner knows a small table
    is small from its size on disk, whereas statistics of the flag taken while a bulk load
    was pending made it read the whole memory table for the few pending rows."""

    # Deleted with its memory by the database (ON DELETE CASCADE, migration 0011), not by
    # Django's collector, which deleted the queue row before locking the memory: the reverse
    # of the indexer's order (memory, then queue row), and the two could deadlock.
    memory = models.OneToOneField(
        Memory,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )

    def __str__(self) -> str:
        return f"memory {self.memory_id} awaiting the vector index"


class MemoryTerm(models.Model):
    """One stemmed term of a memory and how often it occurs: the lexical index. `user_id` is
    copied from the memory so that a user's term statistics (BM25's document frequencies)
    are read from the (user_id, term) index without touching anyone else's rows."""

    memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="terms")
    user_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    term = models.CharField(max_length=64)
    frequency = models.PositiveIntegerField()
    # The memory's term_count, copied so that scoring a posting never reads the memory's row.
    length = models.PositiveIntegerField()

    objects = RawRowsQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["memory", "term"], name="memory_term_unique"),
        ]
        # Covering: a user's postings for the query's terms come from the index alone, and,
        # the term first, so do everyone's (searches without a user filter) and the first
        # few postings of a word in a large scope (lexical.LargeScope).
        indexes = [
            models.Index(
                fields=["term", "user_id", "memory", "frequency", "length"],
                name="memory_term_term_user",
            )
        ]

    def __str__(self) -> str:
        return f"{self.term} x{self.frequency}"


class ScopeRevision(models.Model):
    """A random token that changes with every write that changes a user's stored memories
    (or the shared pool's, or, for the ALL row, everyone's at once: decay, re-embedding), and
    the last place taken in that user's sequence, which new memories move on instead. Search
    processes cache a user's search columns keyed by these tokens (memories/search_cache.py):
    one indexed read tells a process, and every other process or instance on the same
    database, whether its copy still holds, or only lacks the memories placed since.
    Tokens are random rather than counted so that a restored backup or a rolled-back
    transaction can never bring an old token back with different data behind it."""

    ALL = "*all"
    SHARED = "*shared"

    # The user id, SHARED or ALL (user ids never start with "*").
    scope = models.CharField(max_length=128, primary_key=True)
    revision = models.BigIntegerField()
    last_position = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.scope} @{self.revision}"
