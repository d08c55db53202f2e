"""manage.py vector_index: the HNSW index built in one pass after an import, or dropped."""

from __future__ import annotations

import importlib
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from memories.selectors import memory_query
from memories.tasks import index_vectors
from memories.vector_search import HNSW_INDEX, PgvectorBackend
from tests.plans import search_plan

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the HNSW index exists on PostgreSQL only"
)
on_sqlite = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's no-op")

TOPICS = ["coffee", "hiking", "python", "jazz", "chess", "sailing", "painting", "yoga"]


def vector_index(*args: str) -> str:
    out = io.StringIO()
    call_command("vector_index", *args, stdout=out)
    return out.getvalue()


def index_definition() -> tuple[str, bool] | None:
    """The index's definition and whether PostgreSQL may use it, or None when it is absent."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
            [HNSW_INDEX],
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def plan_of_unfiltered_search(text: str) -> str:
    with CaptureQueriesContext(connection) as captured:
        memory_query(query=text, k=5)
    return search_plan(next(q["sql"] for q in captured if "<=>" in q["sql"]))


@pytest.fixture
def as_migrated(transactional_db, monkeypatch) -> tuple[str, bool]:
    """The index's definition as the migrations made it; it is put back whatever the test
    did. Adds hand the indexer to a background (as in a server) that never runs it here, so
    the memories a test adds stay pending."""
    monkeypatch.setattr("core.scheduler.running", lambda: True)
    monkeypatch.setattr("core.scheduler.run_soon", lambda *args, **kwargs: None)
    migrated = index_definition()
    assert migrated is not None and migrated[1]
    assert "ef_construction='200'" in migrated[0]  # migration 0013: recall over build time
    yield migrated
    if index_definition() != migrated:
        vector_index("build")


def add_crowd(add, count: int) -> None:
    for i in range(count):
        add(f"Memory {i}: enjoys {TOPICS[i % 8]} and {TOPICS[(i * 3) % 8]}", user_id=f"u{i % 4}")


@on_postgres
def test_a_build_takes_in_every_pending_memory_in_one_pass(
    as_migrated, vectors_pending, add, settings
):
    settings.OM_HNSW_MIN_SCOPE = 10  # the unfiltered search takes the large-scope path
    add_crowd(add, 40)
    keeper = add("The lighthouse keeper collects antique brass telescopes", user_id="keeper")
    assert vectors_pending() == 41

    output = vector_index("build")

    assert "41 memories were awaiting it" in output
    assert vectors_pending() == 0
    # The same index the migrations made, usable, and it serves large scopes.
    assert index_definition() == as_migrated
    assert HNSW_INDEX in plan_of_unfiltered_search("antique brass telescopes")
    # A build again finds nothing waiting and leaves the same index.
    assert "0 memories were awaiting it" in vector_index("build")
    assert index_definition() == as_migrated
    found = memory_query(query="antique brass telescopes lighthouse", k=5)
    assert str(found[0].memory.id) == keeper["id"]


@on_postgres
def test_without_the_index_adds_and_large_searches_go_on_exactly(
    as_migrated, vectors_pending, add, settings
):
    settings.OM_HNSW_MIN_SCOPE = 10  # the unfiltered search takes the large-scope path
    add_crowd(add, 20)

    assert "dropped" in vector_index("drop")
    assert index_definition() is None
    assert HNSW_INDEX not in plan_of_unfiltered_search("enjoys jazz")
    # A memory added now has no graph to wait for: it is not queued. The indexer clears
    # what was queued before, with no graph to insert into.
    sailor = add("Restores wooden canoes by the lake every summer", user_id="sailor")
    assert vectors_pending() == 20
    assert index_vectors.apply().get() == 20
    assert vectors_pending() == 0
    exact = memory_query(query="restores wooden canoes by the lake", k=5)
    assert str(exact[0].memory.id) == sailor["id"]
    jazz = [m.memory.content for m in memory_query(query="enjoys jazz", k=5)]
    assert all("jazz" in content for content in jazz)

    vector_index("build")

    assert index_definition() == as_migrated
    assert HNSW_INDEX in plan_of_unfiltered_search("enjoys jazz")
    again = memory_query(query="restores wooden canoes by the lake", k=5)
    assert again[0].memory.id == exact[0].memory.id


@on_postgres
def test_an_add_that_missed_the_index_coming_back_is_in_it_all_the_same(
    as_migrated, vectors_pending, add, settings
):
    settings.OM_HNSW_MIN_SCOPE = 10
    add_crowd(add, 20)
    vector_index("drop")
    # Another process builds the index; this one saw it dropped a moment ago and stores the
    # next memory outside the queue, as if there were no graph.
    PgvectorBackend().create_index()
    keeper = add("The lighthouse keeper collects antique brass telescopes", user_id="keeper")

    assert vectors_pending() == 20  # the crowd's, queued before the drop; not the keeper's
    # PostgreSQL put it into the graph with its add: the index alone finds it.
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            found = memory_query(query="antique brass telescopes lighthouse", k=3)
        finally:
            cursor.execute("RESET enable_seqscan")
    assert str(found[0].memory.id) == keeper["id"]


@on_postgres
def test_a_build_replaces_an_index_left_broken_by_an_interrupted_one(as_migrated):
    # An interrupted CREATE INDEX CONCURRENTLY leaves an invalid index under the name; a
    # build must not stop at "already exists".
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {HNSW_INDEX}")
        cursor.execute(f"CREATE INDEX {HNSW_INDEX} ON memories_memory (user_id)")

    vector_index("build")

    assert index_definition() == as_migrated


@on_postgres
@pytest.mark.parametrize("memory_mb", ["10", "2097152"])
def test_a_build_memory_postgresql_would_refuse_is_refused_before_anything_is_dropped(
    as_migrated, memory_mb
):
    with pytest.raises(CommandError, match="between 64 and 2097151"):
        vector_index("build", "--memory-mb", memory_mb)

    assert index_definition() == as_migrated


@on_postgres
def test_the_build_uses_the_memory_asked_for_and_only_for_the_build(as_migrated):
    with connection.cursor() as cursor:
        cursor.execute("SHOW maintenance_work_mem")
        before = cursor.fetchone()[0]

    with CaptureQueriesContext(connection) as captured:
        vector_index("build", "--memory-mb", "128")

    statements = [q["sql"] for q in captured]
    setting = statements.index("SET maintenance_work_mem = '128MB'")
    assert statements[setting + 1].startswith(f"CREATE INDEX CONCURRENTLY {HNSW_INDEX}")
    assert index_definition() == as_migrated
    with connection.cursor() as cursor:
        cursor.execute("SHOW maintenance_work_mem")
        assert cursor.fetchone()[0] == before


def index_oid() -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)::oid", [HNSW_INDEX])
        return cursor.fetchone()[0]


@on_postgres
def test_migration_0013_rebuilds_an_older_index_and_keeps_one_already_built_so(as_migrated):
    migration = importlib.import_module("memories.migrations.0013_hnsw_ef_construction")
    with connection.schema_editor() as editor:
        migration.backwards(None, editor)  # the index as migration 0011 left it
    assert "ef_construction" not in index_definition()[0]

    with connection.schema_editor() as editor:
        migration.forwards(None, editor)
    assert index_definition() == as_migrated
    # Built so already (as `vector_index build` before `migrate` leaves it): kept as it is.
    built = index_oid()
    with connection.schema_editor() as editor:
        migration.forwards(None, editor)
    assert index_oid() == built


@on_sqlite
def test_on_sqlite_there_is_no_index_and_nothing_changes(api, add):
    add("Keeps bees on the roof of the library", user_id="beekeeper")

    assert "nothing to do on sqlite" in vector_index("build")
    assert "nothing to do on sqlite" in vector_index("drop")
    assert memory_query(query="bees on the roof", k=1)[0].memory.content.startswith("Keeps bees")
