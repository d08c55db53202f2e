"""Reading, listing, updating, deleting and reinforcing single memories."""

from __future__ import annotations

import pytest

from memories.models import Memory


def test_get_returns_the_memory(add, api):
    body = add("Owns a cat named Miso", user_id="u1", tags=["pets"], metadata={"source": "chat"})

    response = api.get(f"/memory/{body['id']}")

    assert response.status_code == 200
    item = response.json()
    assert item["content"] == "Owns a cat named Miso"
    assert item["tags"] == ["pets"]
    assert item["metadata"] == {"source": "chat"}
    assert item["user_id"] == "u1"
    assert item["version"] == 1
    assert isinstance(item["created_at"], int) and item["created_at"] > 1_600_000_000_000
    assert item["created_at"] == item["updated_at"]


def test_unknown_or_malformed_id_is_404(api):
    assert api.get("/memory/7d4ae1b6-2d64-4b2e-9a9f-000000000000").json() == {
        "err": "memory not found"
    }
    assert api.get("/memory/not-a-uuid").status_code == 404


@pytest.mark.usefixtures("vector_ranking")
def test_patch_content_reembeds_and_bumps_version(add, api, query):
    body = add("Lives in Berlin", user_id="u1")

    response = api.patch(f"/memory/{body['id']}", {"content": "Lives in Lisbon"}, format="json")

    assert response.status_code == 200
    assert response.json()["updated"] is True  # upstream OpenMemory's clients read it
    assert response.json()["ok"] is True
    assert response.json()["version"] == 2
    assert response.json()["content"] == "Lives in Lisbon"
    assert query("Lisbon", user_id="u1")[0]["score"] > 0.4
    assert query("Lives in Lisbon", user_id="u1")[0]["score"] == pytest.approx(1.0, abs=1e-5)


def test_patch_tags_and_metadata_only(add, api):
    body = add("Runs marathons", user_id="u1", tags=["sport"])
    before = Memory.objects.get(pk=body["id"]).embedding

    response = api.patch(
        f"/memory/{body['id']}",
        {"tags": ["running", "health"], "metadata": {"k": 1}},
        format="json",
    )

    assert response.json()["tags"] == ["health", "running"]
    assert response.json()["metadata"] == {"k": 1}
    assert response.json()["version"] == 2
    assert (Memory.objects.get(pk=body["id"]).embedding == before).all()


def test_patch_to_content_the_user_already_has_is_409_and_changes_nothing(add, api):
    add("Likes tea", user_id="u1")
    other = add("Likes coffee", user_id="u1")

    response = api.patch(f"/memory/{other['id']}", {"content": "likes TEA"}, format="json")

    assert response.status_code == 409
    assert "err" in response.json()
    assert Memory.objects.get(pk=other["id"]).content == "Likes coffee"


def test_empty_patch_is_rejected(add, api):
    body = add("Likes tea", user_id="u1")

    response = api.patch(f"/memory/{body['id']}", {}, format="json")

    assert response.status_code == 400
    assert response.json()["err"].startswith("nothing to update")


def test_delete_removes_memory_and_tag_links(add, api):
    body = add("Temporary", user_id="u1", tags=["tmp"])

    assert api.delete(f"/memory/{body['id']}").json() == {"ok": True, "id": body["id"]}
    assert api.get(f"/memory/{body['id']}").status_code == 404
    assert Memory.tags.through.objects.count() == 0
    assert api.delete(f"/memory/{body['id']}").status_code == 404


def test_all_lists_newest_first_with_paging_and_filters(add, api):
    ids = [add(f"Fact {i}", user_id="u1" if i % 2 else "u2")["id"] for i in range(5)]

    page = api.get("/memory/all?l=2&u=1").json()["items"]
    assert [m["id"] for m in page] == [ids[3], ids[2]]

    only_u1 = api.get("/memory/all?user_id=u1").json()["items"]
    assert {m["user_id"] for m in only_u1} == {"u1"} and len(only_u1) == 2

    add("I feel thrilled!", user_id="u3")
    emotional = api.get("/memory/all?sector=emotional").json()["items"]
    assert [m["content"] for m in emotional] == ["I feel thrilled!"]


def test_reinforce_raises_salience_up_to_one(add, api):
    body = add("Important deadline on Friday", user_id="u1")

    first = api.post("/memory/reinforce", {"id": body["id"], "boost": 0.3}, format="json")
    assert first.status_code == 200
    assert first.json()["salience"] == pytest.approx(0.8)

    capped = api.post("/memory/reinforce", {"id": body["id"], "boost": 0.9}, format="json")
    assert capped.json()["salience"] == 1.0


def test_reinforce_unknown_memory_is_404(api):
    response = api.post(
        "/memory/reinforce", {"id": "7d4ae1b6-2d64-4b2e-9a9f-000000000000"}, format="json"
    )
    assert response.status_code == 404


def test_sectors_and_health(api):
    sectors = api.get("/sectors").json()
    assert sectors["sectors"] == ["episodic", "semantic", "procedural", "emotional", "reflective"]
    assert sectors["configs"]["semantic"]["decay_lambda"] == 0.005

    health = api.get("/health").json()
    assert health["ok"] is True and health["embeddings"] == "synthetic-v2-384"
