"""Hostile input: clear 4xx answers, data unchanged, and hostile text stored as plain text."""

from __future__ import annotations

import pytest

from memories.models import Memory

HOSTILE_TEXTS = [
    "'; DROP TABLE memories_memory; --",
    "<script>alert('x')</script>",
    "Robert'); DELETE FROM users_usersummary WHERE ('1'='1",
    "{{ settings.SECRET_KEY }}",
    "\u202eevil\u202c and \U0001f600 emoji",
]


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_hostile_text_is_stored_and_returned_verbatim(add, api, text):
    memory_id = add(text, user_id="u1")["id"]

    assert api.get(f"/memory/{memory_id}").json()["content"] == text
    matches = api.post(
        "/memory/query", {"query": text, "filters": {"user_id": "u1"}}, format="json"
    ).json()["matches"]
    assert matches[0]["content"] == text
    assert Memory.objects.count() == 1


@pytest.mark.parametrize(
    "path",
    [
        "/users/..%2F..%2Fetc/memories",
        "/users/%2E%2E/memories",
        "/users/a%00b/memories",
        "/users/%F0%9F%98%80/memories",
        "/users/caf%C3%A9/summary",
        "/users/" + "x" * 200 + "/memories",
        "/users/a%20b/export",
        "/users/bob%0A/export",
        "/users/bob%0A/memories",
        "/users/" + "x" * 128 + "%0A/export",
    ],
)
def test_hostile_user_ids_in_paths_are_400_or_404(add, api, path):
    add("Untouched", user_id="u1")

    response = api.get(path)

    assert response.status_code in (400, 404)
    assert "err" in response.json()
    assert Memory.objects.count() == 1


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/memory/all?l=1e9", None),
        ("get", "/memory/all?u=-99999999999999999999", None),
        ("get", "/users/u1/memories?l=0&u=0", None),
        ("post", "/memory/query", {"query": "x", "k": 10**12}),
        ("post", "/memory/query", {"query": "x", "k": -1}),
        ("post", "/memory/query", {"query": ["x"]}),
        ("post", "/memory/add", {"content": {"nested": "object"}}),
        ("post", "/memory/add", ["not", "an", "object"]),
        ("post", "/memory/add/batch", {"items": "x" * 10}),
        ("post", "/memory/add/batch", {"items": [{"content": "ok"}] * 501}),
        ("post", "/memory/reinforce", {"id": "'; DROP TABLE x; --"}),
        ("patch", "/memory/00000000-0000-0000-0000-000000000000", {"content": 5}),
    ],
)
def test_hostile_parameters_are_rejected_and_change_nothing(add, api, method, path, body):
    add("Untouched", user_id="u1")

    response = getattr(api, method)(path, body, format="json")

    assert 400 <= response.status_code < 500
    assert set(response.json()) == {"err"}
    assert list(Memory.objects.values_list("content", flat=True)) == ["Untouched"]
