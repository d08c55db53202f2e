"""POST /memory/context: prompt-ready context from the summary and relevant memories."""

from __future__ import annotations

import pytest

SEED = [
    "User prefers dark mode in applications",
    "User completed Python course",
    "Completed React tutorial",
    "Prefers TypeScript over JavaScript",
]


@pytest.fixture
def user_123(add):
    for content in SEED:
        add(content, user_id="user_123")


def test_context_combines_summary_and_relevant_memories(user_123, add, api):
    add("Prefers dark chocolate", user_id="someone_else")

    response = api.post(
        "/memory/context", {"user_id": "user_123", "query": "dark mode", "k": 2}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == "user_123"
    assert "TypeScript" in body["summary"]
    assert len(body["matches"]) == 2
    assert body["matches"][0]["content"] == "User prefers dark mode in applications"
    assert {m["user_id"] for m in body["matches"]} == {"user_123"}
    assert body["context"].startswith(f"User profile: {body['summary']}")
    assert "- User prefers dark mode in applications" in body["context"]
    assert "chocolate" not in body["context"]


def test_summary_only_mode_skips_retrieval(user_123, api, settings, django_assert_max_num_queries):
    settings.OM_USE_SUMMARY_ONLY = True
    api.post("/users/user_123/summary/regenerate")

    with django_assert_max_num_queries(2):  # the summary, and whether the user has memories
        body = api.post(
            "/memory/context", {"user_id": "user_123", "query": "dark mode"}, format="json"
        ).json()

    assert body["matches"] == []
    assert "dark mode" in body["summary"]
    assert body["context"] == f"User profile: {body['summary']}"


def test_context_without_query_is_the_summary(user_123, api):
    body = api.post("/memory/context", {"user_id": "user_123"}, format="json").json()

    assert body["matches"] == [] and "Python" in body["summary"]


def test_unknown_user_gets_an_empty_context(api):
    body = api.post("/memory/context", {"user_id": "newcomer", "query": "x"}, format="json").json()

    assert body == {
        "user_id": "newcomer",
        "summary": "",
        "matches": [],
        "context": "User profile: (nothing known yet)",
    }


@pytest.mark.parametrize(
    ("body", "err"),
    [
        ({}, "user_id required"),
        ({"user_id": ""}, "user_id required"),
        ({"user_id": "u1", "k": 0}, "k must be between 1 and 100"),
        ({"user_id": "u1", "query": 5}, "query must be a string"),
    ],
)
def test_context_rejects_bad_input(api, body, err):
    response = api.post("/memory/context", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"err": err}
