"""Editing a memory embeds its new content before any transaction (and row lock) is taken."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from memories import services
from memories.embeddings import SyntheticEmbeddings, get_provider
from memories.models import Memory


@pytest.fixture
def embeddings(settings, monkeypatch) -> list[tuple[list[str], bool]]:
    """Every embedding call from now on, with whether a transaction was open during it (on
    SQLite an open write transaction holds the whole database's write lock)."""
    settings.OM_EMBEDDINGS = "synthetic"
    get_provider.cache_clear()
    calls: list[tuple[list[str], bool]] = []
    embed = SyntheticEmbeddings.embed

    def watched(self, texts: list[str]) -> np.ndarray:
        calls.append((list(texts), connection.in_atomic_block))
        return embed(self, texts)

    monkeypatch.setattr(SyntheticEmbeddings, "embed", watched)
    return calls


def stored_vector(memory_id: str) -> np.ndarray:
    return np.asarray(Memory.objects.get(pk=memory_id).embedding)


def test_new_content_is_embedded_outside_any_transaction(transactional_db, embeddings, add, api):
    memory = add("Lives in Berlin", user_id="u1")["id"]
    embeddings.clear()

    response = api.patch(f"/memory/{memory}", {"content": "Lives in Lisbon"}, format="json")

    assert response.status_code == 200
    assert embeddings == [(["Lives in Lisbon"], False)]
    assert np.allclose(stored_vector(memory), get_provider().embed(["Lives in Lisbon"])[0])


def test_content_changed_by_another_edit_after_our_read_is_embedded_too(
    transactional_db, embeddings, add, api, monkeypatch
):
    memory = add("Lives in Berlin", user_id="u1")["id"]
    lisbon = get_provider().embed(["Lives in Lisbon"])[0]
    embeddings.clear()
    read = services.memory_get
    edited: list[bool] = []

    def read_then_another_edit_commits(**kwargs):
        found = read(**kwargs)
        if not edited:
            edited.append(True)
            Memory.objects.filter(pk=memory).update(
                content="Lives in Lisbon",
                content_hash=services.content_hash("Lives in Lisbon"),
                embedding=lisbon,
            )
        return found

    monkeypatch.setattr(services, "memory_get", read_then_another_edit_commits)

    # When this edit read the memory it already said "Berlin": nothing to embed, it seemed.
    response = api.patch(f"/memory/{memory}", {"content": "Lives in Berlin"}, format="json")

    assert response.json()["content"] == "Lives in Berlin"
    assert embeddings == [(["Lives in Berlin"], False)]
    assert np.allclose(stored_vector(memory), get_provider().embed(["Lives in Berlin"])[0])
