"""Search over scopes too large to read whole (a giant user, everyone's memories): BM25 from
the query's rare words (lexical.LargeScope), whose cost depends on the query, not on the
scope's size. The thresholds are lowered so that a few dozen memories make a large scope;
on SQLite every scope is read whole, so there the same questions check the usual path."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.scope import ALL_USERS
from memories import lexical
from memories.lexical import LargeScope, bm25
from memories.models import Memory, MemoryTerm, as_uuid


@pytest.fixture
def large(settings, monkeypatch):
    """Scopes of 10 memories or more are large; candidates come from words that 5
    memories hold at most."""
    settings.OM_HNSW_MIN_SCOPE = 10
    monkeypatch.setattr(lexical, "COMMON_POSTINGS", 5)
    monkeypatch.setattr(lexical, "SCORED_POSTINGS", 5)


@pytest.fixture
def meetings(add) -> str:
    """20 meeting notes of u1 and one memory holding the rare word "Stockholm"; its id."""
    for i in range(20):
        add(f"Stockholders meeting {i}", user_id="u1")
    for i in range(12):
        add(f"Board meeting {i} about budgets", user_id="u2")
    return add(
        "Ordered a Hasselblad from a little second-hand shop in Stockholm after months of saving",
        user_id="u1",
    )["id"]


def test_a_giant_users_search_still_finds_the_memory_holding_a_rare_word(
    large, meetings, query, settings
):
    settings.OM_HYBRID_CANDIDATES = 1  # one candidate from each search

    [best] = query("Stockholm meeting", k=1, user_id="u1")

    assert best["id"] == meetings


def test_a_search_over_everyone_still_finds_the_memory_holding_a_rare_word(
    large, meetings, query, settings
):
    settings.OM_HYBRID_CANDIDATES = 1

    [best] = query("Stockholm meeting", k=1)

    assert best["id"] == meetings


def test_a_large_scope_ranks_only_its_users_memories(large, meetings, query):
    matches = query("budgets meeting Stockholm", k=10, user_id="u1")

    assert len(matches) == 10
    assert {m["user_id"] for m in matches} == {"u1"}


def test_with_only_rare_words_the_scores_are_bm25s(large, add):
    for i in range(12):
        add(f"Note {i}: watered the ficus", user_id="u1")
    add("Repotted the bonsai", user_id="u1")
    add("The bonsai needs a bigger pot", user_id="u1")
    exact = bm25("bonsai pot", user_id="u1").as_dict()

    words = LargeScope("bonsai pot", user_id="u1")

    assert sorted(words.chosen) == ["bonsai", "pot"]
    assert words.scores(list(exact)).as_dict() == pytest.approx(exact)


@pytest.mark.parametrize("owner", ["u1", None, ALL_USERS], ids=["user", "shared", "everyone"])
def test_every_kind_of_large_scope_gets_exact_bm25_when_its_sample_is_whole(large, add, owner):
    mine = {} if owner is None else {"user_id": "u1"}
    for i in range(12):
        add(f"Note {i}: watered the ficus", **mine)
    bonsai = as_uuid(add("Watered the bonsai", **mine)["id"])
    ficus = Memory.objects.filter(content__startswith="Note 3:").get().pk
    add("Watered the lawn of the neighbours", user_id="u2")  # not in the user or shared scope

    words = LargeScope("watered bonsai", user_id=owner)
    best = words.best(10, reading=[ficus])

    exact = bm25("watered bonsai", user_id=owner).as_dict()
    assert best == [bonsai]
    assert words.scores([bonsai, ficus]).as_dict() == pytest.approx(
        {bonsai: exact[bonsai], ficus: exact[ficus]}
    )


def test_common_words_bring_no_candidates_but_count_in_the_scores(large, add):
    for i in range(12):
        add(f"Note {i}: watered the ficus", user_id="u1")
    bonsai = add("Watered the bonsai", user_id="u1")["id"]
    ficus = Memory.objects.filter(content__startswith="Note 3:").get().pk

    words = LargeScope("watered bonsai", user_id="u1")
    scores = words.scores([as_uuid(bonsai), ficus]).as_dict()

    assert words.chosen == ["bonsai"]
    assert words.best(10) == [as_uuid(bonsai)]
    assert scores[as_uuid(bonsai)] > scores[ficus] > 0


def test_a_large_scope_counts_all_its_words_in_one_statement(large, add):
    for i in range(12):
        add(f"Note {i}: watered the ficus", user_id="u1")
    add("Watered the bonsai in its new pot", user_id="u1")
    LargeScope("note", user_id="u1")  # the scope's size and totals, once

    with CaptureQueriesContext(connection) as captured:
        words = LargeScope("watered bonsai pot", user_id="u1")

    assert len(captured.captured_queries) == 1
    assert sorted(words.chosen) == ["bonsai", "pot"]  # "water" is common: 13 memories


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """The monotonic clock lexical's caches read; advance it with clock[0] += seconds."""
    now = [1000.0]
    monkeypatch.setattr(lexical, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_a_common_words_frequency_is_reused_for_a_while(large, add, clock):
    for i in range(12):
        add(f"Note {i}: watered the ficus", user_id="u1")
    add("Watered the bonsai", user_id="u1")
    before = LargeScope("watered bonsai", user_id="u1").idf
    for i in range(6):
        add(f"Watered the roses, day {i}", user_id="u1")

    with CaptureQueriesContext(connection) as captured:
        cached = LargeScope("watered bonsai", user_id="u1").idf
    clock[0] += lexical.STATS_SECONDS + 1
    after = LargeScope("watered bonsai", user_id="u1").idf

    # The rare word is counted each time (one statement); the common one is not, until
    # the scope's figures are measured again, 19 memories now hold it out of 19.
    assert len(captured.captured_queries) == 1
    assert cached == before
    assert after["water"] < before["water"]
    assert after == bm25_idf("watered bonsai", user_id="u1")


def bm25_idf(text: str, *, user_id: str) -> dict[str, float]:
    """Each query word's IDF over the user's memories, counted exactly."""
    n = Memory.objects.filter(user_id=user_id).count()
    idf = {}
    for term in lexical.query_terms(text):
        df = MemoryTerm.objects.filter(user_id=user_id, term=term).count()
        idf[term] = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf


def test_the_vector_searchs_memories_are_read_with_the_best_by_words(large, add):
    for i in range(12):
        add(f"Note {i}: watered the ficus", user_id="u1")
    bonsai = as_uuid(add("Watered the bonsai", user_id="u1")["id"])
    ficus = Memory.objects.filter(content__startswith="Note 3:").get().pk
    words = LargeScope("watered bonsai", user_id="u1")

    with CaptureQueriesContext(connection) as captured:
        best = words.best(10, reading=[ficus, bonsai])
        scores = words.scores([bonsai, ficus]).as_dict()

    assert len(captured.captured_queries) == 1
    assert best == [bonsai]  # the memory read for the vector search is not a word candidate
    exact = bm25("watered bonsai", user_id="u1").as_dict()
    assert scores == pytest.approx({bonsai: exact[bonsai], ficus: exact[ficus]})


def test_a_large_scopes_search_costs_the_same_statements_as_it_grows(large, add, query, settings):
    settings.OM_HYBRID_CANDIDATES = 1  # a few candidates and their context, never everything

    def statements_of_a_search() -> int:
        query("Stockholm meeting", k=1, user_id="u1")  # the scope's size and totals, once
        with CaptureQueriesContext(connection) as captured:
            query("Stockholm meeting", k=1, user_id="u1")
        return len(captured.captured_queries)

    for i in range(20):
        add(f"Stockholders meeting {i} in the Stockholm office", user_id="u1")
    before = statements_of_a_search()
    for i in range(60):
        add(f"Quarterly meeting {i} in the Stockholm office", user_id="u1")

    assert statements_of_a_search() == before
