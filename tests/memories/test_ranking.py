"""Hybrid ranking on small hand-made cases: each part of the score, its calibration,
min_score, the full-text index, and the retrieval boost (run on SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.db import connection

from memories.lexical import get_lexical_backend
from memories.models import Memory
from memories.ranking import PARTS
from memories.selectors import memory_query
from openmemory import clock
from tests.live import ROOT


@pytest.fixture
def weigh(settings):
    """weigh(vector=..., lexical=..., ...) -> only the named parts count."""

    def _weigh(**parts: float) -> None:
        settings.OM_HYBRID_WEIGHTS = {part: parts.get(part, 0.0) for part in PARTS}

    return _weigh


@pytest.fixture
def travel(monkeypatch):
    """travel(days=...) moves the server's clock forward."""
    offset = timedelta()
    real_now = clock.now

    def _travel(**delta) -> None:
        nonlocal offset
        offset += timedelta(**delta)

    monkeypatch.setattr(clock, "now", lambda: real_now() + offset)
    return _travel


def scores(matches: list[dict]) -> dict[str, float]:
    return {m["content"]: m["score"] for m in matches}


def test_hybrid_is_the_default_and_its_score_is_the_weighted_sum_of_the_parts(add, query, settings):
    add("Allergic to peanuts", user_id="u1")

    [match] = query("Allergic to peanuts", user_id="u1")

    assert settings.OM_RANKING == "hybrid"
    w = settings.OM_HYBRID_WEIGHTS
    # Same text: vector 1, every word present, no link, salience 0.5, seen just now.
    expected = (w["vector"] + w["lexical"] + 0.5 * w["salience"] + w["recency"]) / sum(w.values())
    assert match["score"] == pytest.approx(expected, abs=1e-4)


def test_every_word_of_the_query_scores_above_some_of_them(add, query, weigh):
    add("Runs every morning in new trail shoes", user_id="u1")
    add("Bought new shoes for the wedding", user_id="u1")
    add("Drinks green tea", user_id="u1")
    weigh(lexical=1)

    found = scores(query("running shoes", user_id="u1"))

    # Stemmed: "running" matches "Runs", "shoes" matches "shoes".
    assert found["Runs every morning in new trail shoes"] == pytest.approx(1.0)
    assert found["Bought new shoes for the wedding"] == pytest.approx(0.5)
    assert found.get("Drinks green tea", 0.0) == 0.0


def test_a_memory_found_only_by_its_words_is_ranked(add, query, weigh, settings):
    for i in range(20):
        add(f"Stockholders meeting {i}", user_id="u1")
    target = add(
        "Ordered a Hasselblad from a little second-hand shop in Stockholm after months of saving",
        user_id="u1",
    )["id"]
    settings.OM_RANKING = "vector"
    assert query("Stockholm", k=1, user_id="u1")[0]["id"] != target  # the vectors miss it
    settings.OM_RANKING = "hybrid"
    settings.OM_HYBRID_CANDIDATES = 1  # one candidate from each search
    weigh(vector=1, lexical=1)

    [best] = query("Stockholm", k=1, user_id="u1")

    assert best["id"] == target


def test_recency_halves_every_half_life(add, query, weigh, travel, settings):
    add("Lives in Berlin", user_id="u1")
    travel(days=settings.OM_RECENCY_HALF_LIFE_DAYS)
    add("Lives in Lisbon", user_id="u1")
    weigh(recency=1)

    found = scores(query("Where does the user live?", user_id="u1"))

    assert found["Lives in Lisbon"] == pytest.approx(1.0, abs=1e-4)
    assert found["Lives in Berlin"] == pytest.approx(0.5, abs=1e-4)


def test_a_newer_statement_of_the_same_fact_wins_under_the_default_weights(
    add, query, travel, settings
):
    add("My favourite band is Bon Iver", user_id="u1")
    travel(days=200)
    add("My favourite band is Fleetwood Mac", user_id="u1")
    defaults = settings.OM_HYBRID_WEIGHTS
    settings.OM_HYBRID_WEIGHTS = {**defaults, "recency": 0.0}
    assert query("my favourite band", k=1, user_id="u1")[0]["content"].endswith("Bon Iver")
    settings.OM_HYBRID_WEIGHTS = defaults

    [first, second] = query("my favourite band", k=2, user_id="u1")

    assert first["content"] == "My favourite band is Fleetwood Mac"
    assert first["score"] > second["score"]


def test_reinforcement_raises_the_salience_part(add, api, query, weigh):
    plain = add("Takes the bus to work", user_id="u1")["id"]
    reinforced = add("Cycles to work", user_id="u1")["id"]
    api.post("/memory/reinforce", {"id": reinforced, "boost": 0.3}, format="json")
    weigh(salience=1)

    matches = query("commute", user_id="u1")

    assert [m["id"] for m in matches] == [reinforced, plain]
    assert [m["score"] for m in matches] == pytest.approx([0.8, 0.5])
    assert [m["salience"] for m in matches] == pytest.approx([0.8, 0.5])


def test_link_finds_the_second_hop(add, query, weigh):
    add("My manager Elena is very supportive about remote days", user_id="u1")
    add("Elena spent her whole childhood in Rotterdam", user_id="u1")
    add("Kenji from book club moved to Krakow last spring", user_id="u1")
    add("I grew tomatoes on the balcony", user_id="u1")
    weigh(link=1)

    found = scores(query("Where did my manager grow up?", user_id="u1"))

    # The bridge (it shares "manager" with the query) lends its names; it is not linked itself.
    assert found == {
        "Elena spent her whole childhood in Rotterdam": 1.0,
        "My manager Elena is very supportive about remote days": 0.0,
        "Kenji from book club moved to Krakow last spring": 0.0,
        "I grew tomatoes on the balcony": 0.0,
    }


def test_the_second_hop_outranks_unrelated_memories_under_the_default_weights(add, query, settings):
    add("My manager Elena is very supportive about remote days", user_id="u1")
    add("Elena spent her whole childhood in Rotterdam", user_id="u1")
    add("Kenji from book club moved to Krakow last spring", user_id="u1")
    add("I grew tomatoes on the balcony", user_id="u1")
    defaults = settings.OM_HYBRID_WEIGHTS
    settings.OM_HYBRID_WEIGHTS = {**defaults, "link": 0.0}
    unlinked = [m["content"] for m in query("Where did my manager grow up?", user_id="u1")]
    assert unlinked[1] != "Elena spent her whole childhood in Rotterdam"  # words alone miss it
    settings.OM_HYBRID_WEIGHTS = defaults

    ranked = [m["content"] for m in query("Where did my manager grow up?", user_id="u1")]

    assert ranked[:2] == [
        "My manager Elena is very supportive about remote days",
        "Elena spent her whole childhood in Rotterdam",
    ]


def test_min_score_filters_on_the_hybrid_score(add, query):
    add("Allergic to peanuts", user_id="u1")
    add("Allergic to cats", user_id="u1")
    add("Plays the cello", user_id="u1")
    everything = query("allergic to peanuts", k=10, user_id="u1")
    threshold = (everything[0]["score"] + everything[1]["score"]) / 2

    kept = query("allergic to peanuts", k=10, user_id="u1", min_score=threshold)

    assert [m["content"] for m in kept] == ["Allergic to peanuts"]
    assert query("allergic to peanuts", user_id="u1", min_score=1.0) == []


def test_scores_are_absolute_not_relative_to_the_result_set(add, query):
    """A lone weak hit keeps its low score; nothing is rescaled so that the best hit looks
    perfect (a defect of upstream OpenMemory)."""
    add("Plays the cello", user_id="u1")
    add("Allergic to peanuts", user_id="u2")
    add("Plays the cello on Sundays", user_id="u2")

    [alone] = query("allergic to peanuts", user_id="u1")
    mixed = scores(query("allergic to peanuts", user_id="u2"))

    assert alone["score"] < 0.5
    assert alone["score"] == pytest.approx(mixed["Plays the cello on Sundays"], abs=0.05)


def test_words_never_match_across_users(add, query, weigh):
    add("Flew to Reykjavik for the conference", user_id="alice")
    add("Weekend plans: none", user_id="bob")
    add("Shared note about Reykjavik", user_id=None)
    weigh(lexical=1)

    assert [m["content"] for m in query("Reykjavik", user_id="bob")] == ["Weekend plans: none"]
    assert [m["content"] for m in query("Reykjavik", user_id="alice")] == [
        "Flew to Reykjavik for the conference"
    ]
    shared_pool = memory_query(query="Reykjavik", user_id=None)
    assert [m.memory.content for m in shared_pool] == ["Shared note about Reykjavik"]
    unscoped = {m["content"] for m in query("Reykjavik", k=10)}
    assert unscoped >= {"Flew to Reykjavik for the conference", "Shared note about Reykjavik"}


def test_user_ids_of_any_shape_get_their_own_word_matches(add, query, weigh):
    odd = ["alice@example.com", "u1", "U1", "75", "a|b:c=d+e-f.g_h"]
    for user_id in odd:
        add(f"Visited Reykjavik with {user_id}", user_id=user_id)
    weigh(lexical=1)

    for user_id in odd:
        found = query("Reykjavik", k=10, user_id=user_id)
        assert [m["content"] for m in found] == [f"Visited Reykjavik with {user_id}"]


def test_the_full_text_index_follows_edits_and_deletes(add, api):
    memory = add("Adopted a greyhound named Pixel", user_id="u1")["id"]
    scope = Memory.objects.for_user("u1")
    search = get_lexical_backend().search

    assert search(scope, ["greyhound"], 5) == [memory]
    api.patch(f"/memory/{memory}", {"content": "Adopted a whippet named Pixel"}, format="json")
    assert search(scope, ["greyhound"], 5) == []
    assert search(scope, ["whippet"], 5) == [memory]
    api.delete(f"/memory/{memory}")
    assert search(scope, ["whippet", "pixel"], 5) == []


@pytest.mark.django_db(transaction=True)
def test_the_sqlite_index_survives_vacuum(add):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's FTS5 table only")
    ids = [add(f"Trip number {i} to Oslo", user_id="u1")["id"] for i in range(5)]
    Memory.objects.filter(pk__in=ids[:3]).delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM")  # may renumber memories_memory's own rowids

    found = get_lexical_backend().search(Memory.objects.for_user("u1"), ["oslo"], 10)

    assert sorted(found) == sorted(ids[3:])
    Memory.objects.filter(pk=ids[3]).delete()
    assert get_lexical_backend().search(Memory.objects.all(), ["oslo"], 10) == [ids[4]]


def test_vector_ranking_scores_by_cosine_alone(add, query, settings):
    settings.OM_RANKING = "vector"
    add("Allergic to peanuts", user_id="u1")

    [match] = query("Allergic to peanuts", user_id="u1")

    assert match["score"] == pytest.approx(1.0, abs=1e-5)


class TestRetrievalBoost:
    def test_off_by_default(self, add, api, query):
        memory = add("Speaks Portuguese", user_id="u1")["id"]

        query("Portuguese", user_id="u1")

        assert api.get(f"/memory/{memory}").json()["salience"] == 0.5

    def test_each_retrieval_adds_the_boost_and_leaves_last_seen_alone(
        self, add, api, query, settings
    ):
        settings.OM_RETRIEVAL_BOOST = 0.05
        memory = add("Speaks Portuguese", user_id="u1")
        other = add("Owns a red bicycle", user_id="u1")["id"]

        first = query("Portuguese", k=1, user_id="u1")
        query("Portuguese", k=1, user_id="u1")

        assert first[0]["id"] == memory["id"] and first[0]["salience"] == 0.5
        after = api.get(f"/memory/{memory['id']}").json()
        assert after["salience"] == pytest.approx(0.6)
        assert after["last_seen_at"] == first[0]["last_seen_at"]
        assert api.get(f"/memory/{other}").json()["salience"] == 0.5

    def test_the_context_endpoint_boosts_too(self, add, api, settings):
        settings.OM_RETRIEVAL_BOOST = 0.05
        memory = add("Speaks Portuguese", user_id="u1")["id"]

        api.post("/memory/context", {"user_id": "u1", "query": "languages"}, format="json")

        assert api.get(f"/memory/{memory}").json()["salience"] == pytest.approx(0.55)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OM_WEIGHT_LEXICAL": "-1"}, "OM_WEIGHT_LEXICAL must be >= 0, got -1"),
        ({"OM_WEIGHT_VECTOR": "nan"}, "OM_WEIGHT_VECTOR must be a finite number"),
        ({f"OM_WEIGHT_{part.upper()}": "0" for part in PARTS}, "are all 0"),
        ({"OM_RECENCY_HALF_LIFE_DAYS": "0"}, "OM_RECENCY_HALF_LIFE_DAYS must be > 0, got 0"),
        ({"OM_RANKING": "bm25"}, "OM_RANKING must be one of hybrid, vector"),
        ({"OM_RETRIEVAL_BOOST": "2"}, "OM_RETRIEVAL_BOOST must be between 0 and 1, got 2"),
        ({"OM_DEFAULT_SALIENCE": "1.5"}, "OM_DEFAULT_SALIENCE must be between 0 and 1"),
        ({"OM_LLM_TIMEOUT": "inf"}, "OM_LLM_TIMEOUT must be a finite number"),
    ],
)
def test_bad_ranking_and_salience_settings_stop_the_server_at_start(env, message):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert message in result.stderr
