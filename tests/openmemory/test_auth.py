"""API keys: Bearer or x-api-key; 401 without a key, 403 with a wrong one; /health is public."""

from __future__ import annotations

import pytest


@pytest.fixture
def keys(settings):
    settings.OM_API_KEYS = ["key-one", "key-two"]


def test_missing_key_is_401(api, keys):
    response = api.get("/memory/all")

    assert response.status_code == 401
    assert response.json() == {"err": "api key required"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_wrong_key_is_403(api, keys):
    response = api.get("/memory/all", HTTP_AUTHORIZATION="Bearer nope")

    assert response.status_code == 403
    assert response.json() == {"err": "invalid api key"}


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
@pytest.mark.parametrize("key", ["key-one", "key-two"])
def test_any_configured_key_works_in_either_header(api, keys, header, key):
    value = f"Bearer {key}" if header == "HTTP_AUTHORIZATION" else key

    assert api.get("/memory/all", **{header: value}).status_code == 200


def test_rejected_write_changes_nothing(api, keys):
    from memories.models import Memory

    response = api.post("/memory/add", {"content": "sneaky"}, format="json")

    assert response.status_code == 401
    assert Memory.objects.count() == 0


def test_health_is_public(api, keys):
    assert api.get("/health").status_code == 200


def test_no_keys_configured_serves_openly(api, settings):
    settings.OM_API_KEYS = []

    assert api.get("/memory/all").status_code == 200


def _start_server_and_capture_log(capsys) -> str:
    """Loads the WSGI module as gunicorn does; returns what it logged. (Django's setup
    re-applies LOGGING, replacing caplog's handler, so the console output is read.)"""
    import importlib

    import openmemory.wsgi

    capsys.readouterr()
    importlib.reload(openmemory.wsgi)
    return capsys.readouterr().err


def test_open_api_is_announced_loudly_at_start(settings, capsys):
    settings.OM_API_KEYS = []

    assert "OM_API_KEY is not set: the API is OPEN" in _start_server_and_capture_log(capsys)


def test_no_announcement_when_a_key_is_set(keys, capsys):
    assert "OPEN" not in _start_server_and_capture_log(capsys)


def test_rate_limit_answers_429_with_headers(api, keys, settings):
    settings.OM_ADMIN_RATE_LIMIT = 3  # the keys in OM_API_KEY are admin keys
    from django.core.cache import cache

    cache.clear()
    headers = {"HTTP_AUTHORIZATION": "Bearer key-one"}

    answers = [api.get("/memory/all", **headers) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert answers[0].headers["X-RateLimit-Limit"] == "3"
    limited = answers[3]
    assert limited.json()["err"].startswith("Request was throttled")
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    # Another key has its own budget.
    assert api.get("/memory/all", HTTP_AUTHORIZATION="Bearer key-two").status_code == 200
