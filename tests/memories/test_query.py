"""Querying memories: ranking, scores, filters and per-user isolation."""

from __future__ import annotations

import pytest

from memories.models import Memory


@pytest.fixture
def seed_user(add):
    for content, tags in [
        ("User prefers dark mode in applications", ["preferences", "ui"]),
        ("User completed Python course", ["learning", "achievement"]),
        ("Completed React tutorial", ["learning"]),
        ("Prefers TypeScript over JavaScript", ["preferences"]),
    ]:
        add(content, tags=tags, user_id="user_123")


def test_query_returns_the_documented_shape(seed_user, api):
    response = api.post(
        "/memory/query",
        {"query": "What are the user's preferences?", "k": 10, "filters": {"user_id": "user_123"}},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "What are the user's preferences?"
    match = body["matches"][0]
    assert set(match) >= {
        "id",
        "content",
        "score",
        "sectors",
        "primary_sector",
        "salience",
        "last_seen_at",
        "tags",
        "metadata",
        "user_id",
    }
    assert isinstance(match["last_seen_at"], int)


def test_each_match_shows_its_own_tags_sorted_by_name(add, query):
    add("Plays chess on Sundays", user_id="u1", tags=["weekend", "games", "chess"])
    add("Plays chess online at night", user_id="u1")
    add("Plays chess in the park", user_id="u2", tags=["outdoor"])

    tags = {m["content"]: m["tags"] for m in query("plays chess", user_id="u1")}

    assert tags == {
        "Plays chess on Sundays": ["chess", "games", "weekend"],
        "Plays chess online at night": [],
    }


def test_best_match_comes_first_and_scores_are_in_unit_range(seed_user, query):
    matches = query("dark mode", user_id="user_123")

    assert matches[0]["content"] == "User prefers dark mode in applications"
    scores = [m["score"] for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[0] > 0.3


@pytest.mark.usefixtures("vector_ranking")
def test_exact_content_scores_one(add, query):
    add("Allergic to peanuts", user_id="u1")

    assert query("Allergic to peanuts", user_id="u1")[0]["score"] == pytest.approx(1.0, abs=1e-5)


def test_min_score_filters_on_score_not_salience(seed_user, query):
    everything = query("dark mode", k=10, user_id="user_123")
    threshold = (everything[0]["score"] + everything[1]["score"]) / 2

    kept = query("dark mode", k=10, user_id="user_123", min_score=threshold)

    assert [m["id"] for m in kept] == [everything[0]["id"]]
    assert all(m["score"] >= threshold for m in kept)


def test_user_filter_isolates_users(add, query):
    add("Prefers dark mode", user_id="alice")
    add("Prefers light mode", user_id="bob")
    add("Prefers dark chocolate")

    alice = query("dark mode", user_id="alice")
    bob = query("dark mode", user_id="bob")

    assert [m["user_id"] for m in alice] == ["alice"]
    assert [m["user_id"] for m in bob] == ["bob"]


def test_small_user_gets_all_memories_back_among_many_others(add, api, query):
    items = [
        {"content": f"Other fact number {i} about cooking", "user_id": "big"} for i in range(300)
    ]
    assert api.post("/memory/add/batch", {"items": items}, format="json").status_code == 201
    for i in range(5):
        add(f"Small user note {i} about cooking", user_id="small")

    matches = query("cooking", k=10, user_id="small")

    assert len(matches) == 5
    assert {m["user_id"] for m in matches} == {"small"}


def test_query_without_user_filter_searches_every_user(add, query):
    add("Enjoys sailing", user_id="alice")
    add("Enjoys sailing boats", user_id="bob")

    assert {m["user_id"] for m in query("sailing")} == {"alice", "bob"}


def test_sector_filter(add, query):
    add("I feel happy about the promotion", user_id="u1")
    add("The promotion starts in March", user_id="u1")

    matches = query("promotion", user_id="u1", sector="emotional")

    assert [m["primary_sector"] for m in matches] == ["emotional"]


def test_tag_filter_matches_any_listed_tag(add, query):
    add("Likes hiking", user_id="u1", tags=["outdoor"])
    add("Likes hiking boots shopping", user_id="u1", tags=["shopping"])
    add("Likes hiking videos", user_id="u1", tags=["media"])

    matches = query("hiking", user_id="u1", tags=["outdoor", "media"])

    assert sorted(m["content"] for m in matches) == ["Likes hiking", "Likes hiking videos"]


def test_k_limits_results(add, query):
    for i in range(6):
        add(f"Reads book {i}", user_id="u1")

    assert len(query("book", k=3, user_id="u1")) == 3


def test_vectors_of_another_model_are_never_compared_but_words_still_find_them(
    add, query, settings
):
    body = add("Collects stamps", user_id="u1")
    Memory.objects.filter(pk=body["id"]).update(embedding_model="some-other-model")

    [found] = query("Collects stamps", user_id="u1")  # by its words, while it waits

    assert found["id"] == body["id"]
    settings.OM_RANKING = "vector"
    assert query("Collects stamps", user_id="u1") == []


def test_deleted_memory_is_never_served(add, api, query):
    body = add("Secret plan", user_id="u1")
    assert query("Secret plan", user_id="u1")[0]["id"] == body["id"]

    assert api.delete(f"/memory/{body['id']}").status_code == 200

    assert query("Secret plan", user_id="u1") == []


def test_repeated_queries_keep_returning_the_users_rows(add, api, query, settings):
    """Searching the same user many times (past psycopg's prepare threshold) stays correct,
    on both search paths (exact, and HNSW where the scope is large)."""
    items = [
        {"content": f"Filler memory {i} about travel", "user_id": f"x{i % 7}"} for i in range(200)
    ]
    api.post("/memory/add/batch", {"items": items}, format="json")
    for i in range(3):
        add(f"Target memory {i} about travel", user_id="target")

    for min_scope in (100_000, 2):
        settings.OM_HNSW_MIN_SCOPE = min_scope
        for _ in range(8):
            matches = query("travel", k=5, user_id="target")
            assert len(matches) == 3
            assert {m["user_id"] for m in matches} == {"target"}
