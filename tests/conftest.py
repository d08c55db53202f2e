"""Shared fixtures: an API client, small factories, and the database-availability gate."""

from __future__ import annotations

import os

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

IN_CI = os.environ.get("CI", "").lower() == "true"


def _postgres_problem() -> str | None:
    """Why the configured PostgreSQL cannot run the suite, or None when it can."""
    import psycopg

    db = django_settings.DATABASES["default"]
    try:
        with psycopg.connect(
            host=db.get("HOST") or None,
            port=db.get("PORT") or None,
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            dbname="postgres",
            connect_timeout=3,
        ) as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
    except psycopg.Error as exc:
        return f"PostgreSQL at {db.get('HOST')}:{db.get('PORT')} is not reachable ({exc})"
    if row is None:
        return "PostgreSQL has no pgvector extension (run .ci/install-pgvector)"
    return None


def pytest_report_header(config):
    db = django_settings.DATABASES["default"]
    return f"database: {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('HOST') or ''} {db['NAME']}"


def pytest_collection_modifyitems(config, items):
    if "postgresql" not in django_settings.DATABASES["default"]["ENGINE"]:
        return
    problem = _postgres_problem()
    if problem is None:
        return
    if IN_CI:
        pytest.exit(f"CI=true and {problem}", returncode=1)
    skip = pytest.mark.skip(reason=problem)
    for item in items:
        item.add_marker(skip)


@pytest.fixture
def api(db) -> APIClient:
    """An HTTP client speaking JSON to the API, as the real clients do."""
    return APIClient()


@pytest.fixture
def add(api):
    """add(content, user_id=..., tags=..., metadata=...) -> response JSON (asserts 2xx)."""

    def _add(content: str, **fields) -> dict:
        response = api.post("/memory/add", {"content": content, **fields}, format="json")
        assert response.status_code in (200, 201), response.content
        return response.json()

    return _add


@pytest.fixture
def query(api):
    def _query(text: str, k: int = 8, **filters) -> list[dict]:
        body = {"query": text, "k": k, "filters": filters}
        response = api.post("/memory/query", body, format="json")
        assert response.status_code == 200, response.content
        return response.json()["matches"]

    return _query


@pytest.fixture(autouse=True)
def _fresh_providers():
    """Settings overrides in a test must reach the cached provider and backend, and keys a
    test stored (then rolled back) must not close the API for the next test."""
    from django.core.cache import cache

    from access.selectors import forget_stored_keys
    from memories import lexical, search_cache
    from memories.embeddings import get_provider
    from memories.vector_search import get_backend

    search_cache.clear()
    lexical.clear_stats()
    get_provider.cache_clear()
    get_backend.cache_clear()
    forget_stored_keys()
    cache.clear()  # rate-limit counters
    yield
    get_provider.cache_clear()
    get_backend.cache_clear()
    forget_stored_keys()


@pytest.fixture(autouse=True)
def _no_scheduler_thread_here(settings):
    """The test process serves no one: tests that load the WSGI module must not start the
    embedded scheduler's thread in it. The live servers of tests/live.py run it."""
    settings.OM_EMBEDDED_SCHEDULER = False


@pytest.fixture
def vector_ranking(settings):
    """Scores are the plain cosine similarity: for tests about the stored vectors themselves
    (the default hybrid score mixes in words, salience and recency)."""
    settings.OM_RANKING = "vector"


@pytest.fixture
def deploy(transactional_db):
    """deploy(**env) -> a live Deployment (tests/live.py) with gunicorn running on the test
    database; every process it started is stopped after the test."""
    from tests.live import Deployment

    started: list[Deployment] = []

    def _deploy(**env: str) -> Deployment:
        started.append(Deployment(**env))
        started[-1].start_server()
        return started[-1]

    yield _deploy
    for deployment in started:
        deployment.stop()
