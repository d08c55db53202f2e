"""pgvector backend at a scale where the HNSW index exists and is used."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from memories.selectors import memory_query
from memories.services import MemoryInput, memory_create_batch

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="pgvector backend runs on PostgreSQL only"
)

TOPICS = ["coffee", "hiking", "python", "jazz", "chess", "sailing", "painting", "yoga"]


@pytest.fixture
def crowd(db):
    items = [
        MemoryInput(
            content=f"Memory {i}: enjoys {TOPICS[i % 8]} and {TOPICS[(i * 3) % 8]} weekly",
            user_id=f"user{i % 20}",
        )
        for i in range(2000)
    ]
    items += [MemoryInput(content=f"Tiny note {i} about jazz", user_id="tiny") for i in range(5)]
    memory_create_batch(items=items)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE memories_memory")


def test_hnsw_is_used_for_large_scopes(crowd, settings):
    settings.OM_HNSW_MIN_SCOPE = 1000

    with CaptureQueriesContext(connection) as captured:
        matches = memory_query(query="enjoys jazz", k=10)
    search_sql = next(q["sql"] for q in captured if "<=>" in q["sql"])
    with connection.cursor() as cursor:
        # At this size a scan plus sort is cheaper; with both disabled the planner must take
        # an index that yields the ORDER BY if the query's form matches one (bench/ shows it
        # choosing the index by itself at 100k rows). SET LOCAL ends with the test's transaction.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + search_sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "memory_embedding_hnsw_384" in plan
    assert len(matches) == 10
    assert all("jazz" in m.memory.content for m in matches)


def test_filtered_hnsw_returns_the_users_rows_on_every_repeat(crowd, settings):
    settings.OM_HNSW_MIN_SCOPE = 50  # each crowd user (100 rows) goes through HNSW
    settings.OM_HNSW_EF_SEARCH = 40
    exact = {}
    for repeat in range(8):
        for user in ("user3", "tiny"):
            matches = memory_query(query="enjoys jazz weekly", k=10, user_id=user)
            assert {m.memory.user_id for m in matches} == {user}
            assert len(matches) == (5 if user == "tiny" else 10)
            if repeat == 0:
                exact[user] = {m.memory.id for m in matches}
            assert {m.memory.id for m in matches} == exact[user]
