"""Adding memories: single, batch, duplicates and sectors."""

from __future__ import annotations

import pytest

from memories.models import COPY_FROM_ROWS, Memory


def test_add_answers_200_with_id_and_sectors(api):
    response = api.post(
        "/memory/add",
        {
            "content": "User prefers dark mode in applications",
            "tags": ["preferences", "ui"],
            "user_id": "user_123",
        },
        format="json",
    )

    assert response.status_code == 200  # as upstream OpenMemory: its clients check for 200
    body = response.json()
    assert set(body) == {"id", "primary_sector", "sectors"}
    assert body["primary_sector"] == "semantic"
    assert body["sectors"][0] == "semantic"
    memory = Memory.objects.get(pk=body["id"])
    assert memory.user_id == "user_123"
    assert sorted(t.name for t in memory.tags.all()) == ["preferences", "ui"]
    assert memory.embedding is not None and memory.embedding.shape == (384,)


def test_add_without_user_goes_to_shared_pool(add):
    body = add("The office closes at 6pm on Fridays")

    assert Memory.objects.get(pk=body["id"]).user_id is None


def test_same_content_for_same_user_is_deduplicated(api, add):
    first = add("User completed Python course", user_id="user_123")
    again = api.post(
        "/memory/add",
        {"content": "  user completed   python course ", "user_id": "user_123"},
        format="json",
    )

    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert again.json()["deduplicated"] is True
    assert Memory.objects.count() == 1


def test_duplicate_detection_never_crosses_users(add):
    alice = add("User completed Python course", user_id="alice")
    bob = add("User completed Python course", user_id="bob")
    shared = add("User completed Python course")

    assert len({alice["id"], bob["id"], shared["id"]}) == 3
    assert "deduplicated" not in bob and "deduplicated" not in shared


def test_metadata_sector_overrides_classifier(add):
    body = add("I feel so happy today", metadata={"sector": "reflective"})

    assert body["primary_sector"] == "reflective"
    assert "emotional" in body["sectors"]


@pytest.mark.parametrize(
    ("content", "sector"),
    [
        ("I feel anxious and stressed about the exam", "emotional"),
        ("How to deploy: first build the image, then run the migrations", "procedural"),
        ("Yesterday we went to the museum and met Anna", "episodic"),
        ("Looking back, I realized the lesson was patience", "reflective"),
        ("Paris is the capital of France", "semantic"),
    ],
)
def test_classifier_picks_the_sector(add, content, sector):
    assert add(content)["primary_sector"] == sector


def test_batch_adds_in_order_and_dedupes_within_the_batch(api):
    items = [
        {"content": "Likes green tea", "user_id": "u1", "tags": ["drinks"]},
        {"content": "Plays chess on Sundays", "user_id": "u1"},
        {"content": "likes green tea", "user_id": "u1"},
        {"content": "Likes green tea", "user_id": "u2"},
    ]

    response = api.post("/memory/add/batch", {"items": items}, format="json")

    assert response.status_code == 201
    ids = response.json()["ids"]
    assert len(ids) == 4
    assert ids[2] == ids[0] and response.json()["items"][2]["deduplicated"] is True
    assert ids[3] != ids[0]
    assert Memory.objects.count() == 3
    assert list(Memory.objects.get(pk=ids[0]).tags.values_list("name", flat=True)) == ["drinks"]


def test_a_large_batch_is_stored_as_single_adds_are(api, query):
    """More rows than COPY_FROM_ROWS: on PostgreSQL the memories, their words and their tags
    go in through COPY rather than INSERT."""
    items = [
        {
            "content": f"Visited lighthouse number {n} on the {('north', 'south')[n % 2]} coast",
            "user_id": "u1",
            "tags": ["travel", f"coast-{n % 2}"],
            "metadata": {"n": n, "note": "tab\tand\nnewline and \\ backslash"},
        }
        for n in range(COPY_FROM_ROWS + 20)
    ]

    response = api.post("/memory/add/batch", {"items": items}, format="json")

    assert response.status_code == 201
    stored = api.get(f"/memory/{response.json()['ids'][7]}").json()
    assert stored["content"] == "Visited lighthouse number 7 on the south coast"
    assert stored["metadata"] == {"n": 7, "note": "tab\tand\nnewline and \\ backslash"}
    assert stored["tags"] == ["coast-1", "travel"]
    assert Memory.objects.for_user("u1").count() == COPY_FROM_ROWS + 20
    best = query("lighthouse number 42", user_id="u1", k=1)[0]
    assert best["content"] == "Visited lighthouse number 42 on the north coast"
    assert best["tags"] == ["coast-0", "travel"]
    again = api.post("/memory/add", items[3], format="json").json()
    assert again["deduplicated"] is True


def test_batch_is_all_or_nothing(api):
    items = [{"content": "Valid one", "user_id": "u1"}, {"content": "", "user_id": "u1"}]

    response = api.post("/memory/add/batch", {"items": items}, format="json")

    assert response.status_code == 400
    assert response.json() == {"err": "items[1]: content required"}
    assert Memory.objects.count() == 0


def test_add_counts_queries(api, django_assert_max_num_queries):
    # The user's next position and the word index (memories/lexical.py) cost one each.
    with django_assert_max_num_queries(14):
        response = api.post(
            "/memory/add",
            {"content": "Enjoys jazz", "user_id": "u9", "tags": ["music", "taste"]},
            format="json",
        )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("fields", "err"),
    [
        ({"content": "x" * 20_001}, "content must be at most 20000 characters"),
        ({"content": "ok", "tags": ["t" * 65]}, "tags must be at most 64 characters"),
        ({"content": "ok", "user_id": "../x"}, "user_id required"),
        ({"content": "ok", "user_id": "bob\n"}, "user_id required"),
        ({"content": "a\x00b"}, "content must not contain NUL characters"),
        ({"content": "ok", "metadata": {"x": float("inf")}}, "metadata numbers must be finite"),
        ({"content": "ok", "metadata": {"x": [float("nan")]}}, "metadata numbers must be finite"),
    ],
)
def test_services_enforce_the_limits_for_every_caller(db, fields, err):
    """The admin and imports call the service directly, without the API's serializers."""
    from core.exceptions import ServiceError
    from memories.services import memory_create

    with pytest.raises(ServiceError, match=err):
        memory_create(**fields)
    assert Memory.objects.count() == 0
