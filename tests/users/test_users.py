"""Per-user endpoints: memories listing, deletion and summaries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from memories.models import Memory
from tests.callbacks import regenerations
from tests.seed import SEED_FACTS
from users.models import UserSummary


@pytest.fixture
def user_123(add):
    return [add(content, tags=tags, user_id="user_123")["id"] for content, tags in SEED_FACTS]


def test_user_memories_are_paged_and_isolated(user_123, add, api):
    add("Someone else's secret", user_id="user_999")

    first = api.get("/users/user_123/memories?l=3&u=0").json()
    rest = api.get("/users/user_123/memories?l=3&u=3").json()

    assert first["user_id"] == "user_123"
    assert len(first["items"]) == 3 and len(rest["items"]) == 1
    ids = [m["id"] for m in first["items"] + rest["items"]]
    assert sorted(ids) == sorted(user_123)
    assert {m["user_id"] for m in first["items"] + rest["items"]} == {"user_123"}


def test_unknown_user_has_no_memories(api):
    assert api.get("/users/nonexistent_user/memories").json() == {
        "user_id": "nonexistent_user",
        "items": [],
    }


def test_malformed_user_id_in_path_is_400(api):
    response = api.get("/users/%E2%9C%93bad/memories")

    assert response.status_code == 400
    assert response.json() == {"err": "user_id required"}


def test_summary_names_the_users_facts(user_123, api):
    body = api.get("/users/user_123/summary").json()

    assert set(body) == {"user_id", "summary", "reflection_count", "updated_at"}
    assert body["user_id"] == "user_123"
    assert body["reflection_count"] >= 1
    assert isinstance(body["updated_at"], int)
    for phrase in ("dark mode", "Python course", "React tutorial", "TypeScript"):
        assert phrase in body["summary"]


def test_summary_never_mentions_other_users(user_123, add, api):
    add("Collects rare orchids", user_id="user_999")

    regenerated = api.post("/users/user_123/summary/regenerate").json()

    assert "orchids" not in regenerated["summary"]


def test_regenerate_counts_reflections(user_123, api):
    before = api.get("/users/user_123/summary").json()["reflection_count"]

    response = api.post("/users/user_123/summary/regenerate")

    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["user_id"] == "user_123"
    assert body["reflection_count"] == before + 1
    assert "TypeScript" in body["summary"]


def test_first_memory_creates_a_summary_after_commit(add, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        add("Speaks Portuguese", user_id="newbie")

    assert len(regenerations(callbacks)) == 1

    summary = UserSummary.objects.get(user_id="newbie")
    assert summary.reflection_count == 1
    assert "Portuguese" in summary.summary
    assert summary.stale is False


def test_summary_regenerates_every_interval(add, settings, django_capture_on_commit_callbacks):
    settings.OM_USER_SUMMARY_INTERVAL = 5
    with django_capture_on_commit_callbacks(execute=True):
        add("Visited city 0", user_id="traveller")
    assert UserSummary.objects.get(user_id="traveller").reflection_count == 1

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for i in range(1, 5):
            add(f"Visited city {i}", user_id="traveller")
    assert regenerations(callbacks) == []
    assert UserSummary.objects.get(user_id="traveller").reflection_count == 1

    with django_capture_on_commit_callbacks(execute=True):
        add("Visited city 5", user_id="traveller")
    summary = UserSummary.objects.get(user_id="traveller")
    assert summary.reflection_count == 2
    assert summary.pending_memories == 0
    assert "city 5" in summary.summary


def test_summary_respects_max_length(api, settings):
    settings.OM_SUMMARY_MAX_LENGTH = 20
    items = [
        {"content": f"Fact {i} about a long topic with many words in it", "user_id": "verbose"}
        for i in range(30)
    ]
    api.post("/memory/add/batch", {"items": items}, format="json")

    summary = api.post("/users/verbose/summary/regenerate").json()["summary"]

    assert 0 < len(summary.split()) <= 20


def test_summary_of_unknown_user_is_404(api):
    assert api.get("/users/ghost/summary").status_code == 404
    response = api.post("/users/ghost/summary/regenerate")
    assert response.status_code == 404
    assert response.json() == {"err": "user not found"}


def test_delete_user_memories_removes_memories_and_summary(user_123, add, api):
    other = add("Keeps bees", user_id="user_999")

    response = api.delete("/users/user_123/memories")

    assert response.json() == {"ok": True, "user_id": "user_123", "deleted": 4}
    assert not Memory.objects.filter(user_id="user_123").exists()
    assert not UserSummary.objects.filter(user_id="user_123").exists()
    assert Memory.objects.filter(pk=other["id"]).exists()
    assert api.get("/users/user_123/summary").status_code == 404


def test_summary_never_quotes_a_deleted_memory(add, api):
    secret = add("User has a secret medical condition", user_id="u1")
    add("User likes tea", user_id="u1")
    assert "secret" in api.post("/users/u1/summary/regenerate").json()["summary"]

    api.delete(f"/memory/{secret['id']}")

    summary = api.get("/users/u1/summary").json()["summary"]
    assert "secret" not in summary and "tea" in summary


def test_summary_never_quotes_edited_content(add, api, django_capture_on_commit_callbacks):
    memory = add("User lives in Berlin", user_id="u1")
    api.post("/users/u1/summary/regenerate")

    with django_capture_on_commit_callbacks(execute=True):
        api.patch(f"/memory/{memory['id']}", {"content": "User lives in Lisbon"}, format="json")

    stored = UserSummary.objects.get(user_id="u1")
    assert "Lisbon" in stored.summary and "Berlin" not in stored.summary
    assert api.get("/users/u1/summary").json()["summary"] == stored.summary


def test_summary_sentences_keep_the_memory_wording(add, api):
    for content in ["User is allergic to peanuts", "Paris is lovely in spring"]:
        add(content, user_id="u1")

    summary = api.post("/users/u1/summary/regenerate").json()["summary"]

    assert "The user is allergic to peanuts." in summary
    assert "Paris is lovely in spring." in summary


@pytest.mark.parametrize("path", ["/users/busy/memories", "/memory/all?user_id=busy"])
def test_listing_query_count_does_not_grow_with_rows(api, path, django_assert_num_queries):
    def add_many(n: int, start: int) -> None:
        items = [
            {"content": f"Note {i}", "user_id": "busy", "tags": [f"t{i % 3}"]}
            for i in range(start, start + n)
        ]
        api.post("/memory/add/batch", {"items": items}, format="json")

    add_many(3, 0)
    with django_assert_num_queries(2):  # the memories, then their tags
        assert len(api.get(path).json()["items"]) == 3

    add_many(40, 3)
    with django_assert_num_queries(2):
        assert len(api.get(path).json()["items"]) == 43


def test_query_count_does_not_grow_with_k(add, query):
    for i in range(60):
        add(f"Hobby number {i}: pottery with Maria", user_id="potter", tags=["hobby"])

    def queries_for(k: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert len(query("pottery with Maria", k=k, user_id="potter")) == k
        return len(captured)

    # At most: vector search, word search (the user's counts, word frequencies, matches),
    # candidates' rows and (for those found by words alone) vectors, the same two for their
    # context, memories, tags, and on pgvector the scope-size probe. Never one per result.
    bound = 10 + (connection.vendor == "postgresql")
    assert all(queries_for(k) <= bound for k in (2, 25, 60))
