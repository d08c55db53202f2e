"""How many SQL statements one add and one query cost: the latency budget of the API's two
hot paths is mostly round trips to the database (bench/load.py measures the time)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from memories import search_cache

TRANSACTION = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def statements(captured: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"] for q in captured.captured_queries if not q["sql"].upper().startswith(TRANSACTION)
    ]


@pytest.fixture
def history(add):
    for n in range(30):
        add(f"Day {n}: went climbing with Sam at the quarry, then pizza", user_id="sam")


def test_an_add_is_five_statements_and_its_queueing_for_the_vector_index(history, add):
    """Duplicate check, the user's revision and places, the memory, its words, the summary
    counters; on PostgreSQL also its row in the vector index's queue (PendingVector). Nothing
    else: no re-read, no separate summary lock."""
    with CaptureQueriesContext(connection) as captured:
        add("Sam is allergic to peanuts", user_id="sam")
    expected = 6 if connection.vendor == "postgresql" else 5
    assert len(statements(captured)) == expected, statements(captured)


def test_a_duplicate_add_is_four_statements(history, add):
    """The duplicate check finds it (ids only, as for every add), its row is read, and the
    user's revision and its last_seen_at are changed."""
    with CaptureQueriesContext(connection) as captured:
        add("Day 3: went climbing with Sam at the quarry, then pizza", user_id="sam")
    assert len(statements(captured)) == 4, statements(captured)


def test_a_query_is_four_statements_then_two(history, query):
    """Cold: the revision check (which also counts the scope, telling whether it is small
    enough to read whole), the whole scope (once), the query's words, the answer's rows with
    their tags. Warm, same answer: the revision check and the words."""
    search_cache.clear()
    with CaptureQueriesContext(connection) as cold:
        query("climbing quarry", user_id="sam", k=5)
    with CaptureQueriesContext(connection) as warm:
        query("climbing quarry", user_id="sam", k=5)
    with CaptureQueriesContext(connection) as other:
        query("pizza with Sam", user_id="sam", k=5)
    assert len(statements(cold)) == 4, statements(cold)
    assert len(statements(warm)) == 2, statements(warm)
    # Another question: the answer's memories not yet shown are read.
    assert len(statements(other)) <= 3, statements(other)


def test_a_narrowed_query_skips_the_cache(history, query):
    """A tag or sector filter reads only the matching memories, as before the cache."""
    with CaptureQueriesContext(connection) as captured:
        query("climbing", user_id="sam", tags=["none"])
    assert not any("scoperevision" in sql for sql in statements(captured))
