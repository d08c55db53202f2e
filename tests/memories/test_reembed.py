"""Changing OM_EMBEDDINGS over an existing database: nothing is hidden while the memories of
the old model wait, re-embedding starts by itself, and /health shows how many are left."""

from __future__ import annotations

import pytest

from memories.embeddings import get_provider
from memories.models import Memory
from memories.services import memories_reembed
from tests.live import wait_for
from tests.plans import assert_uses_index


@pytest.fixture
def switch_model(settings):
    """switch_model() -> the server now embeds with another model (synthetic, 64 dims)."""

    def _switch() -> None:
        settings.OM_VECTOR_DIM = 64
        get_provider.cache_clear()

    return _switch


def test_after_a_model_change_memories_are_found_by_words_and_counted_in_health(
    add, api, query, switch_model, settings
):
    ids = [add(text, user_id="u1")["id"] for text in ("Plays the cello", "Allergic to peanuts")]
    assert api.get("/health").json()["embeddings_pending"] == 0
    switch_model()

    health = api.get("/health").json()
    [found] = query("cello", k=1, user_id="u1")

    assert health["embeddings"] == "synthetic-v2-64"
    assert health["embeddings_pending"] == 2
    assert found["id"] == ids[0]  # by its words: its old vector is never compared
    settings.OM_RANKING = "vector"
    assert query("cello", user_id="u1") == []


def test_reembedding_moves_every_memory_to_the_new_model(add, api, query, switch_model, settings):
    target = add("Plays the cello", user_id="u1")["id"]
    add("Allergic to peanuts", user_id="u1")
    switch_model()

    assert memories_reembed() == 2

    assert api.get("/health").json()["embeddings_pending"] == 0
    assert memories_reembed() == 0  # nothing left to do
    settings.OM_RANKING = "vector"
    assert query("Plays the cello", k=1, user_id="u1")[0]["id"] == target


@pytest.mark.live
def test_a_server_started_with_another_model_reembeds_by_itself(deploy):
    first = deploy()
    ids = [
        first.client.add(f"Memory number {i} about gardening", user_id="g")["id"] for i in range(5)
    ]
    first.stop()

    second = deploy(OM_VECTOR_DIM="64", OM_RANKING="vector")

    def migrated() -> bool:
        health = second.client.health()
        return health["embeddings"] == "synthetic-v2-64" and health["embeddings_pending"] == 0

    assert wait_for(migrated, timeout=30)
    matches = second.client.query("Memory number 3 about gardening", k=1, filters={"user_id": "g"})
    assert matches["matches"][0]["id"] == ids[3]


def test_counting_what_awaits_the_model_reads_the_index_not_every_memory(add):
    # /health counts this on every poll of a load balancer: at a million memories a scan
    # of the table per poll would be the server's biggest query.
    add("Plays the cello", user_id="u1")
    count = Memory.objects.not_embedded_by(get_provider().model_id)
    sql, params = count.order_by().values("pk").query.sql_with_params()

    assert_uses_index(sql, params, "memory_embedding_model", "memories_memory")
    assert count.count() == 0
