"""Bad input: every error is a 4xx `{"err"}` body and nothing is written."""

from __future__ import annotations

import pytest

from memories.models import Memory


def post_raw(client, path: str, body: bytes, content_type: str = "application/json"):
    return client.generic("POST", path, body, content_type=content_type)


@pytest.mark.parametrize(
    ("body", "status", "err"),
    [
        ({}, 400, "content required"),
        ({"content": ""}, 400, "content required"),
        ({"content": "   "}, 400, "content required"),
        ({"content": None}, 400, "content required"),
        ({"content": 42}, 400, "content must be a string"),
        ({"content": "ok", "user_id": ""}, 400, "user_id required"),
        ({"content": "ok", "user_id": "x" * 129}, 400, "user_id required"),
        # Python's `$` also matches before a final newline: the whole id must match.
        ({"content": "ok", "user_id": "bob\n"}, 400, "user_id required"),
        ({"content": "ok", "user_id": "x" * 128 + "\n"}, 400, "user_id required"),
        ({"content": "ok", "user_id": "../etc/passwd"}, 400, "user_id required"),
        ({"content": "ok", "user_id": "a b"}, 400, "user_id required"),
        ({"content": "ok", "user_id": 7}, 400, "user_id required"),
        ({"content": "ok", "tags": "ui"}, 400, "tags must be a list of strings"),
        ({"content": "ok", "tags": [""]}, 400, "tags must be non-empty strings"),
        ({"content": "ok", "tags": [1]}, 400, "tags must be a list of strings"),
        ({"content": "ok", "metadata": []}, 400, "metadata must be an object"),
        ({"content": "a\u0000b"}, 400, "content: Null characters are not allowed."),
        (
            {"content": "ok", "metadata": {"k": "a\u0000"}},
            400,
            "metadata must not contain NUL characters",
        ),
    ],
)
def test_add_rejects_bad_input(api, body, status, err):
    response = api.post("/memory/add", body, format="json")

    assert response.status_code == status
    assert response.json() == {"err": err}
    assert Memory.objects.count() == 0


def test_content_too_long(api, settings):
    response = api.post("/memory/add", {"content": "x" * 20_001}, format="json")

    assert response.status_code == 400
    assert response.json() == {"err": "content must be at most 20000 characters"}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "malformed JSON"),
        (b'{"content": NaN}', "malformed JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b'{"content": "\\ud800"}', "Surrogate characters are not allowed"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_bodies_are_400(api, raw, fragment):
    response = post_raw(api, "/memory/add", raw)

    assert response.status_code == 400
    assert fragment in response.json()["err"]
    assert Memory.objects.count() == 0


def test_deeply_nested_metadata_is_refused(api):
    nested: dict = {}
    node = nested
    for _ in range(40):
        node["x"] = {}
        node = node["x"]

    response = api.post("/memory/add", {"content": "ok", "metadata": nested}, format="json")

    assert response.status_code == 400
    assert "nested deeper" in response.json()["err"]


def test_oversized_body_is_413(api, settings):
    settings.OM_MAX_BODY_BYTES = 2048

    response = post_raw(api, "/memory/add", b'{"content": "' + b"x" * 4096 + b'"}')

    assert response.status_code == 413
    assert response.json()["err"].startswith("body too large")


def test_curl_style_form_content_type_is_read_as_json(api):
    response = post_raw(
        api,
        "/memory/add",
        b'{"content": "Sent by curl -d", "user_id": "u1"}',
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "err"),
    [
        ({}, "query required"),
        ({"query": "x", "k": 0}, "k must be between 1 and 100"),
        ({"query": "x", "k": 101}, "k must be between 1 and 100"),
        ({"query": "x", "k": "many"}, "k must be an integer"),
        ({"query": "x", "filters": {"user_id": ""}}, "user_id required"),
        ({"query": "x", "filters": {"user_id": "bob\n"}}, "user_id required"),
        ({"query": "x", "filters": {"min_score": 2}}, "min_score must be between 0 and 1"),
        (
            {"query": "x", "filters": {"sector": "dreams"}},
            "sector must be one of episodic, semantic, procedural, emotional, reflective",
        ),
        (
            {"query": "x", "filters": "alice"},
            "filters: Invalid data. Expected a dictionary, but got str.",
        ),
    ],
)
def test_query_rejects_bad_input(api, body, err):
    response = api.post("/memory/query", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"err": err}


@pytest.mark.parametrize(
    ("params", "err"),
    [
        ("l=0", "l must be between 1 and 1000"),
        ("l=-5", "l must be between 1 and 1000"),
        ("l=99999999999999999999999", "l must be between 1 and 1000"),
        ("u=-1", "u must be between 0 and 10000000"),
        ("l=abc", "l must be an integer"),
        (
            "sector=nope",
            "sector must be one of episodic, semantic, procedural, emotional, reflective",
        ),
    ],
)
def test_listing_rejects_bad_paging(api, params, err):
    response = api.get(f"/memory/all?{params}")

    assert response.status_code == 400
    assert response.json() == {"err": err}


def test_unknown_path_and_wrong_method_are_json(api):
    missing = api.get("/nope")
    assert missing.status_code == 404
    assert missing.json() == {"err": "not found"}

    wrong = api.put("/memory/add", {}, format="json")
    assert wrong.status_code == 405
    assert wrong.json() == {"err": "method PUT not allowed"}


def test_invalid_reinforce(api, add):
    body = add("x", user_id="u1")
    assert api.post("/memory/reinforce", {}, format="json").json() == {"err": "id required"}
    bad_boost = api.post("/memory/reinforce", {"id": body["id"], "boost": 5}, format="json")
    assert bad_boost.json() == {"err": "boost must be between 0 and 1"}
    assert Memory.objects.get(pk=body["id"]).salience == 0.5


@pytest.mark.parametrize("number", [b"1e999", b"-1e999", b"1E400"])
@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("POST", "/memory/add", b'{"content": "ok", "metadata": {"x": %s}}'),
        ("POST", "/memory/add", b'{"content": "ok", "metadata": {"a": [{"b": %s}]}}'),
        ("POST", "/memory/add/batch", b'{"items": [{"content": "ok", "metadata": {"x": %s}}]}'),
        ("PATCH", None, b'{"metadata": {"x": %s}}'),
        ("POST", "/memory/query", b'{"query": "ok", "filters": {"min_score": %s}}'),
        ("POST", "/memory/reinforce", b'{"id": "%s", "boost": %s}'),
    ],
)
def test_numbers_too_large_for_a_float_are_400(add, api, method, path, template, number):
    memory_id = add("Untouched", user_id="u1", metadata={"x": 1})["id"]
    body = template % ((memory_id.encode(), number) if b'"id"' in template else (number,))

    response = api.generic(method, path or f"/memory/{memory_id}", body, "application/json")

    assert response.status_code == 400, response.content
    assert response.json() == {"err": f"number out of range: {number.decode()}"}
    assert Memory.objects.count() == 1
    assert Memory.objects.get().metadata == {"x": 1}
