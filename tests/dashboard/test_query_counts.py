"""Admin lists and dashboard pages issue the same number of queries for 5 and 50 memories."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from users.services import user_summary_regenerate

PAGES = [
    "/admin/memories/memory/",
    "/admin/memories/memory/?q=python",
    "/admin/memories/memory/?q=user_1",
    "/admin/memories/memory/?tag=learning&primary_sector__exact=episodic",
    "/admin/memories/memory/?user_id=user_1&created_at__gte=2000-01-01+00%3A00%3A00%2B00%3A00",
    "/admin/memories/tag/",
    "/admin/users/usersummary/",
    "/dashboard/",
    "/dashboard/users/user_1/",
    "/dashboard/users/user_1/?q=python+course&k=20",
]
SEARCHES = {"/dashboard/users/user_1/?q=python+course&k=20"}


def _queries(client, path: str) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return [q["sql"] for q in ctx.captured_queries]


def _grow(make_memories, count: int, start: int) -> None:
    make_memories(count, start=start)
    for i in range(5):
        user_summary_regenerate(user_id=f"user_{i}")


@pytest.mark.parametrize("path", PAGES)
def test_query_count_does_not_grow_with_memories(staff_client, make_memories, path):
    _grow(make_memories, 5, 0)
    _queries(staff_client, path)  # warm-up: session and per-process caches
    small = _queries(staff_client, path)

    _grow(make_memories, 45, 5)
    large = _queries(staff_client, path)

    if path in SEARCHES:
        # The page's own queries plus a hybrid search, whose count depends on what its
        # searches find (at most 10: see tests/users/test_users.py), never on how many
        # memories there are.
        assert max(len(small), len(large)) <= 6 + 10, "\n".join(large)
    else:
        assert len(small) == len(large), "\n".join(large)
        assert len(large) <= 12, "\n".join(large)


@pytest.mark.parametrize("path", [p for p in PAGES if p not in SEARCHES])
def test_pages_never_load_embeddings(staff_client, make_memories, path):
    _grow(make_memories, 10, 0)

    for sql in _queries(staff_client, path):
        assert '"embedding"' not in sql and "embedding," not in sql, sql


def test_memory_change_page_never_loads_the_embedding(staff_client, make_memories):
    memory = make_memories(1)[0]

    for sql in _queries(staff_client, f"/admin/memories/memory/{memory.pk}/change/"):
        assert '"embedding"' not in sql, sql


def test_changelist_never_counts_the_whole_table(staff_client, make_memories):
    make_memories(12)

    sqls = _queries(staff_client, "/admin/memories/memory/")

    counts = [sql for sql in sqls if "COUNT(" in sql.upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts), counts
