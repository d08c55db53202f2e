"""/metrics after real traffic through the API: requests, embeddings, summaries, counts."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from memories.embeddings import get_provider
from tests.observability.conftest import total, value
from users.models import UserSummary

DURATION = "om_http_request_duration_seconds"


def test_traffic_moves_request_embedding_and_count_metrics(api, add, query, scrape):
    before = scrape()

    first = add("Alice prefers green tea in the morning", user_id="alice")
    add("Alice runs on Tuesdays", user_id="alice")
    add("Bob plays the cello", user_id="bob")
    query("what does alice drink", user_id="alice")
    query("instruments bob plays", user_id="bob")
    assert api.get(f"/memory/{first['id']}").status_code == 200
    assert api.post("/memory/add", {"content": ""}, format="json").status_code == 400
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    add_ok = {"method": "POST", "route": "/memory/add", "status": "200"}
    assert moved("om_http_requests_total", **add_ok) == 3
    assert moved("om_http_requests_total", **{**add_ok, "status": "400"}) == 1
    assert moved(f"{DURATION}_count", method="POST", route="/memory/add") == 4
    assert moved(f"{DURATION}_count", method="POST", route="/memory/query") == 2
    assert moved(f"{DURATION}_sum", method="POST", route="/memory/query") > 0
    # One series per URL pattern, whatever the id in the path.
    assert moved(f"{DURATION}_count", method="GET", route="/memory/{memory_id}") == 1
    assert not any(first["id"] in str(labels) for _, labels in after)

    model = get_provider().model_id  # the configured model labels the series
    assert moved("om_embedded_texts_total", model=model) >= 5  # three adds, two queries
    assert moved("om_embedding_duration_seconds_count", model=model) >= 5
    assert value(after, "om_embedding_duration_seconds_bucket", model=model, le="+Inf") > 0

    # Gauges are counts from the database, not per-process tallies.
    assert value(after, "om_memories") == 3
    assert value(after, "om_users") == 2


def test_unmatched_paths_share_one_label(api, scrape):
    before = scrape()
    for n in range(3):
        assert api.get(f"/no/such/page/{n}").status_code == 404
    after = scrape()

    labels = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert (
        value(after, "om_http_requests_total", **labels)
        - value(before, "om_http_requests_total", **labels)
        == 3
    )


def test_summary_regenerations_and_llm_fallbacks_are_counted(
    api, add, scrape, settings, closed_port
):
    add("Carol keeps bees", user_id="carol")  # the first memory regenerates once, in-process
    before = scrape()

    assert api.post("/users/carol/summary/regenerate").status_code == 200
    settings.OM_SUMMARIZER = "llm"
    settings.OM_LLM_BASE_URL = f"http://127.0.0.1:{closed_port}/v1"
    settings.OM_LLM_ATTEMPTS = 1
    assert api.post("/users/carol/summary/regenerate").status_code == 200
    after = scrape()

    stored = UserSummary.objects.get(user_id="carol")
    assert stored.fallback_reason.startswith("llm: unreachable")
    regenerated = total(after, "om_summary_regenerations_total") - total(
        before, "om_summary_regenerations_total"
    )
    assert regenerated == 2
    fallbacks = value(after, "om_summary_failures_total", reason="llm_fallback") - value(
        before, "om_summary_failures_total", reason="llm_fallback"
    )
    assert fallbacks == 1


def test_a_failed_regeneration_is_counted_and_answers_500(db, add, scrape, monkeypatch):
    add("Dan collects stamps", user_id="dan")
    before = scrape()

    def broken(user_id: str):
        raise RuntimeError("summarizer crashed")

    monkeypatch.setattr("users.summarizer.summarize", broken)
    client = APIClient(raise_request_exception=False)
    response = client.post("/users/dan/summary/regenerate")
    after = scrape()

    assert response.status_code == 500
    assert "err" in response.json()
    assert (
        value(after, "om_summary_failures_total", reason="error")
        - value(before, "om_summary_failures_total", reason="error")
        == 1
    )
    labels = {"method": "POST", "route": "/users/{user_id}/summary/regenerate", "status": "500"}
    assert (
        value(after, "om_http_requests_total", **labels)
        - value(before, "om_http_requests_total", **labels)
        == 1
    )


def test_no_queue_metric_without_a_broker(scrape):
    samples = scrape()

    assert not any(name.startswith("om_celery_") for name, _ in samples)


# --- Who may scrape ------------------------------------------------------------------------


@pytest.fixture
def keys(settings):
    settings.OM_API_KEYS = ["admin-key"]


def test_metrics_without_a_key_is_401(api, keys):
    response = api.get("/metrics")

    assert response.status_code == 401
    assert response.json() == {"err": "metrics need an admin API key or OM_METRICS_TOKEN"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_metrics_with_a_wrong_key_is_403(api, keys):
    response = api.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")

    assert response.status_code == 403
    assert response.json() == {"err": "invalid api key"}


def test_admin_keys_may_scrape(api, keys, scrape):
    from access.services import api_key_create

    _, stored_admin = api_key_create(user_id=None)

    assert "om_memories" in {name for name, _ in scrape(HTTP_AUTHORIZATION="Bearer admin-key")}
    assert scrape(HTTP_X_API_KEY=stored_admin)


def test_a_user_scoped_key_may_not_scrape(api, keys):
    from access.services import api_key_create

    _, raw = api_key_create(user_id="alice")
    response = api.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 403
    assert response.json() == {"err": "metrics need an admin API key"}


def test_the_metrics_token_may_scrape_but_not_use_the_api(api, keys, settings, scrape):
    settings.OM_METRICS_TOKEN = "prom-token"

    assert scrape(HTTP_AUTHORIZATION="Bearer prom-token")
    assert api.get("/memory/all", HTTP_AUTHORIZATION="Bearer prom-token").status_code == 403


def test_an_open_server_serves_metrics_unless_a_token_is_set(api, settings, scrape):
    settings.OM_API_KEYS = []
    assert scrape()

    settings.OM_METRICS_TOKEN = "prom-token"
    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", HTTP_AUTHORIZATION="Bearer guess").status_code == 401
    assert scrape(HTTP_AUTHORIZATION="Bearer prom-token")
