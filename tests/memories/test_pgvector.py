"""pgvector backend at a scale where the HNSW index exists and is used."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from memories.selectors import memory_query
from memories.services import MemoryInput, memory_create_batch
from memories.tasks import index_vectors
from tests.locks import memory_held
from tests.plans import search_plan

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
    # A test's transaction never commits, so the add's request for the indexer never fires.
    index_vectors.apply()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE memories_memory")


def test_hnsw_is_used_for_large_scopes(crowd, settings):
    settings.OM_HNSW_MIN_SCOPE = 1000

    with CaptureQueriesContext(connection) as captured:
        matches = memory_query(query="enjoys jazz", k=10)
    search_sql = next(q["sql"] for q in captured if "<=>" in q["sql"])

    assert "memory_embedding_hnsw_384" in search_plan(search_sql)
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


def test_a_memory_awaiting_the_index_is_found_and_then_taken_in(
    crowd, vectors_pending, add, settings
):
    settings.OM_HNSW_MIN_SCOPE = 1000  # the unfiltered query goes through the HNSW path
    assert vectors_pending() == 0
    new = add("The lighthouse keeper collects antique brass telescopes", user_id="keeper")

    # Stored outside the graph (the add's transaction has not asked the indexer yet here):
    # the search ranks it exactly beside the graph's answer.
    assert vectors_pending() == 1
    found = memory_query(query="antique brass telescopes lighthouse", k=5)
    assert found[0].memory.id == uuid.UUID(new["id"])

    assert index_vectors.apply().get() == 1

    assert vectors_pending() == 0
    # Now through the graph. (Only the first is compared: the crowd's near-ties below it
    # may come back in another order from a graph that has changed.)
    again = memory_query(query="antique brass telescopes lighthouse", k=5)
    assert again[0].memory.id == uuid.UUID(new["id"])
    assert index_vectors.apply().get() == 0  # idempotent


@pytest.mark.django_db(transaction=True)
def test_without_a_background_the_add_indexes_its_vector_when_it_commits(vectors_pending, add):
    # No broker and no scheduler thread in this process (tests, management commands): the
    # indexer runs right after the add's commit, as the insert used to run inside it.
    add("Keeps bees on the roof of the library", user_id="beekeeper")

    assert vectors_pending() == 0


def test_an_edited_memory_awaits_the_index_with_its_new_vector(
    crowd, api, settings, vectors_pending
):
    settings.OM_HNSW_MIN_SCOPE = 1000
    memory = memory_query(query="enjoys sailing", k=1)[0].memory
    edited = api.patch(
        f"/memory/{memory.id}", {"content": "Restores wooden canoes by the lake"}, format="json"
    )
    assert edited.status_code == 200

    assert vectors_pending() == 1
    assert memory_query(query="restores wooden canoes", k=3)[0].memory.id == memory.id
    index_vectors.apply()
    assert vectors_pending() == 0
    assert memory_query(query="restores wooden canoes", k=3)[0].memory.id == memory.id


@pytest.mark.django_db(transaction=True)
def test_the_indexer_leaves_a_memory_being_edited_or_deleted_for_its_next_run(
    api, add, monkeypatch, vectors_pending
):
    # Edits and deletes lock the memory row before its queue row (the database deletes the
    # queue row by cascade); the indexer must not take them in the opposite order, or each
    # would hold what the other waits for. It skips the held memory instead of waiting.
    with monkeypatch.context() as server:
        # As in a server, the adds hand the indexer to a scheduler thread (here, to nobody).
        server.setattr("core.scheduler.running", lambda: True)
        server.setattr("core.scheduler.run_soon", lambda *args, **kwargs: None)
        held = add("Tunes old pianos in the village hall", user_id="tuner")["id"]
        add("Sings in a barbershop quartet", user_id="tuner")
    assert vectors_pending() == 2
    with memory_held(held), connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '5s'")  # waiting would fail, not hang
        assert index_vectors.apply().get() == 1

    assert vectors_pending() == 1
    assert api.delete(f"/memory/{held}").status_code in (200, 204)
    assert vectors_pending() == 0  # its queue row went with it
